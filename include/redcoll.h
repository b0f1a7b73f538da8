/* redcoll.h - MPI-style collectives on an elastic pool of Redis-fed workers.
 *
 * A *job* is one map of a registered kernel over `ntasks` tasks.  The master
 * describes the job with the collective vocabulary MPI users know:
 *
 *     MPI_Bcast    -> rc_job_bcast     read-only blob every task sees
 *     MPI_Scatter  -> rc_job_scatter   equal chunks of a buffer, one per task
 *     MPI_Scatterv -> rc_job_scatterv  counts/displacements
 *     (the compute between them)       the kernel, run once per task (rank)
 *     MPI_Gather   -> rc_job_gather    outputs concatenated in rank order
 *     MPI_Gatherv  -> rc_job_gatherv   counts/displacements
 *     MPI_Reduce   -> rc_job_reduce    element-wise, in rank order
 *
 * then runs it with rc_job_run (blocking) or rc_job_submit / rc_job_test /
 * rc_job_wait (non-blocking, like MPI_I* + MPI_Test/MPI_Wait), so several jobs
 * can be in flight.  Workers (rc_worker_run) take tasks first come, first
 * served; they may join or leave at any time.  A task held by a worker that
 * dies is run again by another once its lease lapses; its result is counted
 * exactly once.  Tasks, results and job descriptors are authenticated with a
 * shared 32-byte key (keyed BLAKE2b); there is no unauthenticated mode.
 *
 * Conventions (curl/hiredis style):
 *  - every call returns an rc_status; RC_OK is 0.  rc_strerror() names a code,
 *    rc_ctx_errmsg() gives the detail of the last failure on a context.
 *  - handles are opaque; what the library allocates is freed by one NULL-safe
 *    call (rc_ctx_destroy, rc_job_destroy, rc_local_stop).
 *  - buffers passed to rc_job_* stay owned by the caller and must stay valid
 *    and unchanged until the job is finished (rc_job_wait returned, or
 *    rc_job_test reported done), exactly like MPI non-blocking requests.
 *  - the library never exits, aborts, or installs signal handlers, and a
 *    Redis connection closed under a write is an error, not a SIGPIPE: a
 *    program need not ignore SIGPIPE for it.
 *
 * Byte order: payloads travel as raw memory; all hosts of one pool must share
 * byte order and type sizes (x86-64 and aarch64 Linux do).
 */
#ifndef REDCOLL_H
#define REDCOLL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REDCOLL_VERSION_MAJOR 0
#define REDCOLL_VERSION_MINOR 1
#define REDCOLL_VERSION_PATCH 0
#define REDCOLL_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define RC_WARN_UNUSED __attribute__((warn_unused_result))
#define RC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RC_WARN_UNUSED
#define RC_PRINTF(a, b)
#endif

/* Status codes.  Values are fixed forever: new codes are added at the end. */
typedef enum rc_status {
    RC_OK = 0,
    RC_EINVAL = 1,      /* an argument or option value is invalid */
    RC_ENOMEM = 2,      /* an allocation failed */
    RC_EREDIS = 3,      /* Redis connection or command failed */
    RC_ETIMEDOUT = 4,   /* a deadline passed */
    RC_EAUTH = 5,       /* data failed authentication (wrong key or tampering) */
    RC_EPROTO = 6,      /* malformed or unexpected data */
    RC_EKERNEL = 7,     /* a kernel reported an error */
    RC_ENOKERNEL = 8,   /* kernel name not registered */
    RC_EKEY = 9,        /* key missing, unreadable or malformed */
    RC_ECANCELED = 10,  /* interrupted (rc_ctx_interrupt) or job cancelled */
    RC_EIO = 11,        /* an operating-system call failed */
    RC_EAGAIN = 12,     /* not finished yet (rc_job_test) */
    RC_ETYPE = 13,      /* operation not defined for this datatype */
    RC_ESTATE = 14,     /* call not valid in the handle's current state */
    RC_ENOTFOUND = 15,  /* a program (redis-server) or job was not found */
    RC_STATUS_COUNT_    /* not a status: number of codes */
} rc_status;

/* Static English message for a status; never NULL. */
const char *rc_strerror(rc_status st);

/* ------------------------------------------------------------------ */
/* Datatypes and reduce operations (MPI_Datatype, MPI_Op)              */

typedef enum rc_datatype {
    RC_BYTE = 0,   /* opaque bytes: scatter/gather only */
    RC_INT32 = 1,
    RC_INT64 = 2,
    RC_UINT32 = 3,
    RC_UINT64 = 4,
    RC_FLOAT = 5,
    RC_DOUBLE = 6,
    /* value/location pairs for MINLOC and MAXLOC (MPI_DOUBLE_INT et al.) */
    RC_INT32_LOC = 7,  /* rc_int32_loc  */
    RC_INT64_LOC = 8,  /* rc_int64_loc  */
    RC_UINT64_LOC = 9, /* rc_uint64_loc */
    RC_FLOAT_LOC = 10, /* rc_float_loc  */
    RC_DOUBLE_LOC = 11,/* rc_double_loc */
    RC_DATATYPE_COUNT_
} rc_datatype;

typedef struct rc_int32_loc { int32_t val; int32_t pad_; int64_t loc; } rc_int32_loc;
typedef struct rc_int64_loc { int64_t val; int64_t loc; } rc_int64_loc;
typedef struct rc_uint64_loc { uint64_t val; int64_t loc; } rc_uint64_loc;
typedef struct rc_float_loc { float val; int32_t pad_; int64_t loc; } rc_float_loc;
typedef struct rc_double_loc { double val; int64_t loc; } rc_double_loc;

/* Size in bytes of one element, 0 for an unknown type. */
size_t rc_datatype_size(rc_datatype dt);

typedef enum rc_op_kind {
    RC_SUM = 0, RC_PROD = 1, RC_MIN = 2, RC_MAX = 3,
    RC_LAND = 4, RC_LOR = 5, RC_LXOR = 6,  /* integer types only */
    RC_BAND = 7, RC_BOR = 8, RC_BXOR = 9,  /* integer types only */
    RC_MINLOC = 10, RC_MAXLOC = 11,        /* *_LOC types only; ties -> lower loc */
    RC_OP_COUNT_
} rc_op_kind;

/* A user-defined reduce function, with MPI_User_function's contract:
 * inout[i] = in[i] (op) inout[i] for i < count, where `in` holds the
 * combination of the lower ranks.  Must not fail. */
typedef void (*rc_user_fn)(const void *in, void *inout, size_t count,
                           rc_datatype dt, void *user);

/* An operation: a built-in kind or a user function.  A plain value the
 * caller owns; build it with rc_op_builtin or rc_op_user. */
typedef struct rc_op {
    rc_op_kind kind;   /* used when fn == NULL */
    rc_user_fn fn;     /* user function, or NULL for a built-in */
    void *user;        /* passed to fn */
    int commute;       /* user ops: non-zero if commutative (informative:
                          redcoll always combines in rank order) */
} rc_op;

rc_op rc_op_builtin(rc_op_kind kind);
rc_op rc_op_user(rc_user_fn fn, void *user, int commute);

/* inout[i] = in[i] (op) inout[i]; RC_ETYPE if the op is not defined for dt
 * (bitwise/logical ops on floating types, MINLOC on plain types...);
 * RC_EINVAL if the buffers overlap.  Float MIN/MAX keep NaNs. */
RC_WARN_UNUSED rc_status rc_reduce_local(const void *in, void *inout,
                                         size_t count, rc_datatype dt,
                                         rc_op op);

/* ------------------------------------------------------------------ */
/* Reproducible random streams                                          */

/* xoshiro256** state.  A plain value: copy it freely.  Streams are derived
 * from (seed, stream, substream) by hashing, so they are independent of
 * which worker or thread runs them. */
typedef struct rc_rng { uint64_t s[4]; } rc_rng;

void rc_rng_seed(rc_rng *rng, uint64_t seed, uint64_t stream, uint64_t substream);
uint64_t rc_rng_u64(rc_rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double rc_rng_double(rc_rng *rng);

/* ------------------------------------------------------------------ */
/* Keys                                                                  */

#define RC_KEYBYTES 32u  /* the shared secret */

/* Write a fresh random key to `path` (hex text, mode 0600).  Refuses to
 * overwrite an existing file (RC_EIO, errno text in *msg if given). */
RC_WARN_UNUSED rc_status rc_keygen_file(const char *path, char *msg, size_t msglen);

/* ------------------------------------------------------------------ */
/* Context: one connection, its options, kernels and last error.        */

typedef struct rc_ctx rc_ctx;

typedef enum rc_option {
    RC_OPT_URL = 1,              /* str: redis://[user:pass@]host:port/db or unix:///path[?db=N] */
    RC_OPT_QUEUE = 2,            /* str: queue name (default "redcoll"); a worker may
                                    serve several, "high,low", in priority order */
    RC_OPT_KEY_FILE = 3,         /* str: load the key from this file */
    RC_OPT_LEASE_MS = 4,         /* int: task lease (default 5000) */
    RC_OPT_HEARTBEAT_MS = 5,     /* int: lease renewal period (default lease/4) */
    RC_OPT_CONNECT_TIMEOUT_MS = 6, /* int: default 5000 */
    RC_OPT_COMMAND_TIMEOUT_MS = 7, /* int: default 10000 */
    RC_OPT_THREADS = 8,          /* int: OpenMP threads per task on workers (default 1) */
    RC_OPT_LINGER_MS = 9,        /* int: idle worker exits after this (0: never) */
    RC_OPT_JOB_TIMEOUT_MS = 10,  /* int: rc_job_wait gives up after this (0: never) */
    RC_OPT_LOG_LEVEL = 11,       /* int: 0 error,1 warn,2 info,3 debug (default 1, or
                                    REDCOLL_LOG=error|warn|info|debug[,syslog]) */
    RC_OPT_MAX_REPUBLISH = 12,   /* int: re-sends of one task after auth rejects (default 10) */
    RC_OPT_POLL_MS = 13,         /* int: blocking poll slice, 1..5000 (default: 200 for a
                                    master; 30000 for an idle worker, whose lease thread
                                    looks for lapsed leases and key changes and wakes it).
                                    Work, results and stop requests end a wait at once;
                                    the slice paces periodic checks */
    RC_OPT_MAX_ATTEMPTS = 14,    /* int: a task is started at most this often (default 3);
                                    then the job fails naming the task and the last reason */
    RC_OPT_DRAIN_TIMEOUT_MS = 15,/* int: after a stop request, hand the task in hand back if
                                    it is still running after this (0: finish it) */
    RC_OPT_REDIS_DEADLINE_MS = 16,/* int: a master gives up after Redis is unreachable this
                                    long (default 60000); workers retry until stopped */
    RC_OPT_RETENTION_MS = 17,    /* int: job state and results expire from Redis this long
                                    after the master last touched them (default 24 h) */
    RC_OPT_ENCRYPT = 18,         /* int: 1 seals task, broadcast and result payloads with
                                    XChaCha20-Poly1305 (default 0: authenticated only) */
    RC_OPT_MAX_PAYLOAD = 19,     /* int: largest task or result payload accepted, bytes
                                    (default 128 MiB); larger ones are rejected unread */
    RC_OPT_MAX_BATCH = 20,       /* int: most tasks a worker takes in one round trip, 1..256
                                    (default 256).  Workers take as many short tasks as fill
                                    ~2 ms of kernel time, one at a time when tasks are
                                    longer; 1 turns batching (chunking) off */
    RC_OPT_PREFETCH = 21         /* int: 1 (default): a worker asks for its next tasks as a
                                    batch of 0.5 ms or more starts, not when it ends, so
                                    the round trip to Redis overlaps its kernels - unless
                                    the job is near its end (fewer than twice the pool's
                                    worth of batches left) or RC_OPT_MAX_BATCH is 1; 0: off */
} rc_option;

/* Create a context with default options; NULL if out of memory.  Calls
 * sodium_init().  Free with rc_ctx_destroy. */
rc_ctx *rc_ctx_create(void);
/* NULL-safe.  Closes connections, wipes the key. */
void rc_ctx_destroy(rc_ctx *ctx);

/* Detail of the last failure on this context ("" if none).  Valid until the
 * next call on the context. */
const char *rc_ctx_errmsg(const rc_ctx *ctx);

rc_status rc_ctx_set_str(rc_ctx *ctx, rc_option opt, const char *value);
rc_status rc_ctx_set_int(rc_ctx *ctx, rc_option opt, long long value);
/* Use this key (copied; the caller may wipe its copy). */
rc_status rc_ctx_set_key(rc_ctx *ctx, const unsigned char key[RC_KEYBYTES]);
/* Read the key from a file written by rc_keygen_file / `redcoll keygen`.
 * The file may hold up to 4 keys, one per line: the first signs and seals,
 * the others are still accepted (key rotation).  A worker re-reads the file
 * when it changes.  RC_EKEY if the file is unreadable, malformed, not owned
 * by this user, or readable by others. */
rc_status rc_ctx_load_key(rc_ctx *ctx, const char *path);

/* Log sink; default writes one line per event to stderr. */
typedef void (*rc_log_fn)(int level, const char *line, void *user);
rc_status rc_ctx_set_logger(rc_ctx *ctx, rc_log_fn fn, void *user);

/* Connect (master side).  Uses RC_OPT_URL, or REDCOLL_URL from the
 * environment, else RC_EINVAL.  Connection and command timeouts apply.
 * Without a key set, loads REDCOLL_KEY_FILE, else RC_EKEY (rc_job_submit and
 * rc_worker_run do the same). */
RC_WARN_UNUSED rc_status rc_connect(rc_ctx *ctx);

/* Async-signal-safe: ask a blocked rc_job_wait to return RC_ECANCELED and a
 * running rc_worker_run to finish its task in hand, deliver it and return
 * RC_OK; a wait on Redis for results or for work ends at once, not at the
 * end of its poll slice.  A second call makes the worker hand the task in
 * hand back to the queue at once (as does RC_OPT_DRAIN_TIMEOUT_MS); see below.  The request
 * is sticky: later waits on this context return at once too (a program that
 * was asked to stop should stop). */
void rc_ctx_interrupt(rc_ctx *ctx);

/* Called (from the worker's lease thread) right after the task in hand was
 * handed back because of a second stop request or the drain timeout.  The
 * kernel cannot be stopped from outside, so a program that wants to exit at
 * once does it here, typically with _exit(0); without a handler the worker
 * lets the kernel finish, discards its result and returns RC_OK. */
rc_status rc_ctx_set_abandon_handler(rc_ctx *ctx, void (*fn)(void *user), void *user);

/* ------------------------------------------------------------------ */
/* Kernels                                                               */

typedef struct rc_task rc_task;

/* A kernel runs one task.  Return 0 on success; on failure return non-zero
 * after rc_task_fail() (the message reaches the master). */
typedef int (*rc_kernel_fn)(rc_task *task, void *user);

/* Register a kernel under `name` (<= 64 bytes, [A-Za-z0-9_.-]).  Workers run
 * only registered names. */
rc_status rc_register_kernel(rc_ctx *ctx, const char *name, rc_kernel_fn fn, void *user);

uint64_t rc_task_rank(const rc_task *t);     /* task index, 0..ntasks-1 */
uint64_t rc_task_ntasks(const rc_task *t);
int rc_task_threads(const rc_task *t);       /* OpenMP threads to use */
uint64_t rc_task_seed(const rc_task *t);     /* the job's seed */
/* Input chunk (scatter) and broadcast blob; valid during the kernel call,
 * 8-byte aligned (read doubles and 64-bit integers in place). */
const void *rc_task_input(const rc_task *t, size_t *size);
const void *rc_task_bcast(const rc_task *t, size_t *size);
/* The task's random stream for block `block` (use one block per chunk of
 * work so results do not depend on thread count). */
void rc_task_rng(const rc_task *t, uint64_t block, rc_rng *out);
/* Output buffer of `size` bytes, owned by the library, valid until the
 * kernel returns.  Calling again replaces the previous buffer. */
RC_WARN_UNUSED rc_status rc_task_output(rc_task *t, size_t size, void **buf);
/* Record why the task failed; returns non-zero for `return rc_task_fail(...)`. */
int rc_task_fail(rc_task *t, const char *fmt, ...) RC_PRINTF(2, 3);

/* ------------------------------------------------------------------ */
/* Jobs (master side)                                                    */

typedef struct rc_job rc_job;

/* A job mapping kernel `kernel` over `ntasks` tasks.  *out is freed with
 * rc_job_destroy.  The context must outlive the job. */
RC_WARN_UNUSED rc_status rc_job_create(rc_ctx *ctx, const char *kernel,
                                       uint64_t ntasks, rc_job **out);
void rc_job_destroy(rc_job *job);  /* NULL-safe; cancels it if still running */

rc_status rc_job_set_seed(rc_job *job, uint64_t seed);

/* MPI_Bcast: every task sees buf[0..count) of dt. */
rc_status rc_job_bcast(rc_job *job, const void *buf, size_t count, rc_datatype dt);
/* MPI_Scatter: task r gets sendbuf[r*sendcount .. (r+1)*sendcount). */
rc_status rc_job_scatter(rc_job *job, const void *sendbuf, size_t sendcount, rc_datatype dt);
/* MPI_Scatterv: task r gets sendcounts[r] elements at displs[r] (arrays of
 * ntasks entries, copied). */
rc_status rc_job_scatterv(rc_job *job, const void *sendbuf, const size_t *sendcounts,
                          const size_t *displs, rc_datatype dt);

/* Scatter once, map many: store a scatter in Redis for several jobs (an
 * iterative code re-broadcasts its parameters each iteration but never
 * re-uploads its data).  Chunk r is what task r of each job using it gets as
 * input, exactly as rc_job_scatter / rc_job_scatterv would give it; workers
 * fetch a chunk once and cache it.  The data is copied into Redis (the
 * caller's buffer is free after return), kept alive while jobs use it, and
 * removed by rc_data_release (or after the retention time unused). */
typedef struct rc_data rc_data;
RC_WARN_UNUSED rc_status rc_data_scatter(rc_ctx *ctx, const void *sendbuf, size_t sendcount, rc_datatype dt,
                                         uint64_t ntasks, rc_data **out);
RC_WARN_UNUSED rc_status rc_data_scatterv(rc_ctx *ctx, const void *sendbuf, const size_t *sendcounts,
                                          const size_t *displs, rc_datatype dt, uint64_t ntasks, rc_data **out);
/* Give the job's tasks their input from stored data (instead of a scatter);
 * the data must have as many chunks as the job has tasks. */
rc_status rc_job_use_data(rc_job *job, const rc_data *data);
/* Delete the data from Redis and free the handle; NULL-safe. */
rc_status rc_data_release(rc_data *data);

/* Where outputs go (at most one of these per job; without any, outputs are
 * kept and read with rc_job_output):
 * MPI_Gather: each task outputs recvcount elements, stored at r*recvcount. */
rc_status rc_job_gather(rc_job *job, void *recvbuf, size_t recvcount, rc_datatype dt);
/* MPI_Gatherv: task r outputs recvcounts[r] elements, stored at displs[r]. */
rc_status rc_job_gatherv(rc_job *job, void *recvbuf, const size_t *recvcounts,
                         const size_t *displs, rc_datatype dt);
/* MPI_Reduce: each task outputs count elements; recvbuf gets
 * out_0 op out_1 op ... op out_{n-1}, combined in rank order. */
rc_status rc_job_reduce(rc_job *job, void *recvbuf, size_t count, rc_datatype dt, rc_op op);

/* Non-blocking start: publishes the job and its tasks and returns. */
RC_WARN_UNUSED rc_status rc_job_submit(rc_job *job);
/* Collect what has arrived without blocking: RC_OK when finished
 * successfully, RC_EAGAIN while running, or the job's error. */
RC_WARN_UNUSED rc_status rc_job_test(rc_job *job);
/* Block until finished (or RC_OPT_JOB_TIMEOUT_MS, or rc_ctx_interrupt). */
RC_WARN_UNUSED rc_status rc_job_wait(rc_job *job);
/* submit + wait; results are collected while a long job's tasks are still
 * being added, so a task that fails the job stops the rest from being added */
RC_WARN_UNUSED rc_status rc_job_run(rc_job *job);
/* Remove the job's pending tasks and keys from Redis, leaving an
 * authenticated end marker (workers drop what they still hold of it).  Works
 * on a job from rc_job_attach too: that is how to cancel a job by id. */
rc_status rc_job_cancel(rc_job *job);

/* Re-attach to a job another master submitted (its id as printed by
 * rc_job_id), running or finished but not yet collected: reads its
 * descriptor, then the caller sets the same gather/reduce (and, so lost or
 * tampered tasks can be re-sent, the same scatter) and calls rc_job_wait.
 * Results already delivered are read back from Redis, not recomputed.
 * RC_ENOTFOUND if the job was collected, cancelled or expired. */
RC_WARN_UNUSED rc_status rc_job_attach(rc_ctx *ctx, const char *id, rc_job **out);
/* The kernel name and task count of a job (useful after rc_job_attach). */
const char *rc_job_kernel(const rc_job *job);
uint64_t rc_job_ntasks(const rc_job *job);
uint64_t rc_job_seed(const rc_job *job);
/* The job's broadcast blob (owned by the job or the caller, as given). */
void rc_job_broadcast(const rc_job *job, const void **data, size_t *size);

/* After success with no gather/reduce: task r's output (owned by the job,
 * valid until rc_job_destroy). */
rc_status rc_job_output(const rc_job *job, uint64_t rank, const void **data, size_t *size);

/* Job id as 16 hex digits (owned by the job). */
const char *rc_job_id(const rc_job *job);

typedef struct rc_job_stats {
    uint64_t tasks;             /* tasks in the job */
    uint64_t done;              /* distinct tasks with an accepted result */
    uint64_t workers_seen;      /* distinct workers that delivered accepted results */
    uint64_t duplicates;        /* authentic results for tasks already done (ignored) */
    uint64_t rejected;          /* results that failed authentication or checks */
    uint64_t republished;       /* tasks re-sent after a rejection */
    uint64_t redelivered;       /* accepted results that needed more than one attempt */
    double seconds;             /* submit to finish (or to now) */
} rc_job_stats;
/* Copy the job's counters into *st. */
rc_status rc_job_get_stats(const rc_job *job, rc_job_stats *st);

/* Progress: called from rc_job_run / rc_job_wait / rc_job_test (the
 * caller's thread) when results have arrived - with rc_job_run, already
 * while a long job's tasks are being added - at most about five times a
 * second, and once when the job ends.  For a progress bar or a log line;
 * must not call rc_job_* on this job. */
typedef void (*rc_progress_fn)(const rc_job *job, const rc_job_stats *st, void *user);
void rc_job_set_progress(rc_job *job, rc_progress_fn fn, void *user);

/* ------------------------------------------------------------------ */
/* Workers                                                               */

/* Serve the queue: take tasks first come first served, run them with the
 * registered kernels, deliver results.  Connects by itself (RC_OPT_URL or
 * REDCOLL_URL).  Returns RC_OK when stopped by rc_ctx_interrupt (after
 * delivering the task in hand), when idle for RC_OPT_LINGER_MS, or when the
 * queue is removed; an error when Redis stays unreachable. */
RC_WARN_UNUSED rc_status rc_worker_run(rc_ctx *ctx);

/* Remove a queue: its pending tasks and group; its workers exit. */
rc_status rc_queue_remove(rc_ctx *ctx);

/* ------------------------------------------------------------------ */
/* The embedded default: a private redis-server and local workers.      */

typedef struct rc_local rc_local;

/* Start a private redis-server (unix socket in a fresh temporary directory,
 * no persistence) and `nworkers` worker processes running `worker_argv`
 * (argv[0] is run as is; NULL-terminated), each with REDCOLL_URL and
 * REDCOLL_KEY_FILE in its environment.  Generates a fresh key, sets it and
 * the URL on ctx.  redis-server is found on PATH or REDCOLL_REDIS_SERVER.
 * Children die with the calling process (PR_SET_PDEATHSIG). */
RC_WARN_UNUSED rc_status rc_local_start(rc_ctx *ctx, const char *const *worker_argv,
                                        int nworkers, rc_local **out);
/* Number of worker processes started. */
int rc_local_workers(const rc_local *loc);
/* The private server's address (unix:///...), owned by loc. */
const char *rc_local_url(const rc_local *loc);
/* Stop workers (SIGTERM, then SIGKILL after 2 s), stop Redis,
 * remove the directory.  NULL-safe. */
void rc_local_stop(rc_local *loc);

#ifdef __cplusplus
}
#endif
#endif /* REDCOLL_H */
