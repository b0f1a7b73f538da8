/* internal.h - what the library's files share and users never see.
 *
 * The layers, bottom up: wire.c (envelope codec, no I/O), auth.c (keys and
 * MACs), conn.c (one hiredis connection with timeouts and reconnection),
 * queue.c (the Redis key layout and scripts of the queue protocol), task.c
 * (what a kernel sees), job.c (the master's collectives), worker.c (the
 * worker loop and its lease thread), local.c (the embedded default).
 */
#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H

#include "redcoll.h"

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

/* ------------------------------------------------------------------ */
/* Envelope (wire.c).  Layout, all integers little-endian:
 *   0  'R' 'C'   magic
 *   2  u8        version (RC_WIRE_VERSION)
 *   3  u8        kind (RC_KIND_*), | RC_KIND_SEALED if the payload is encrypted
 *   4  u32       key id of the key that made the MAC
 *   8  u64       job id
 *  16  u64       rank (task index); JOB: id of the stored data (rc_data) its
 *                tasks take their input from, 0 if none; DATA: chunk index
 *  24  u64       ntasks
 *  32  u64       aux: JOB seed, RESULT/REJECT worker id, CONTROL the wall
 *                clock (ms) when it was made, TASK 0
 *  40  u32       status: RESULT status, JOB threads per task, else 0
 *  44  u16       kernel name length (<= RC_KERNEL_MAX)
 *  46  u16       RESULT: attempt number (delivery count, saturating); else 0
 *  48  u64       payload length
 *  56  kernel name, zero padding to a multiple of 8 (so the payload is
 *      8-byte aligned), payload, then the MAC over
 *      (tag string || u16 queue length || queue || bytes 0..end of payload):
 *      - payload under RC_PMAC_MIN bytes: RC_MAC_BYTES of keyed BLAKE2b-256,
 *        tag string "redcoll/1";
 *      - payload of RC_PMAC_MIN bytes or more (kind | RC_KIND_PMAC): a random
 *        24-byte nonce, then the 16-byte Poly1305 tag under the one-time key
 *        XChaCha20(pmac key, nonce) (the first 32 keystream bytes, as
 *        XChaCha20-Poly1305 and NaCl's secretbox derive theirs), tag string
 *        "redcoll/2p".  Poly1305 runs ~3x faster than BLAKE2b here (2.3 vs
 *        0.76 GB/s), which is what bounds a master reducing large results;
 *        the 0.5 us of randomness per message only pays for itself on
 *        payloads of a few KiB.
 * Version 2 added RC_KIND_PMAC; version 1 envelopes are refused by name. */
#define RC_WIRE_VERSION 2
#define RC_HDR_BYTES 56u
#define RC_MAC_BYTES 32u
#define RC_PMAC_NONCE 24u
#define RC_PMAC_BYTES 40u /* nonce + Poly1305 tag */
#define RC_PMAC_MIN 4096u
#define RC_KERNEL_MAX 64u
/* Redis' proto-max-bulk-len default; nothing larger can be stored anyway. */
#define RC_PAYLOAD_MAX ((uint64_t)512 * 1024 * 1024 - RC_HDR_BYTES - RC_KERNEL_MAX - RC_PMAC_BYTES)

enum { RC_KIND_JOB = 1, RC_KIND_TASK = 2, RC_KIND_RESULT = 3, RC_KIND_REJECT = 4, RC_KIND_CONTROL = 5,
       RC_KIND_DATA = 6 };
/* A sealed payload on the wire is nonce (24) || XChaCha20-Poly1305
   ciphertext || tag (16), with the header and kernel name as associated
   data; the MAC is computed over that, as for plaintext. */
#define RC_KIND_SEALED 0x80u
#define RC_SEAL_BYTES 40u
/* the MAC is the Poly1305 kind (RC_PMAC_BYTES of trailer) */
#define RC_KIND_PMAC 0x40u
#define RC_KIND_FLAGS (RC_KIND_SEALED | RC_KIND_PMAC)
#define RC_KEYRING_MAX 4

typedef struct rc_env {
    uint8_t kind;
    uint32_t keyid;
    uint64_t job, rank, ntasks, aux;
    uint32_t status;
    uint16_t attempt;         /* RESULT only */
    int sealed;               /* payload encrypted on the wire (decode: was; encode: make it so) */
    const char *kernel;       /* not NUL-terminated; kernel_len bytes */
    size_t kernel_len;
    const void *payload;
    uint64_t payload_len;
} rc_env;

typedef struct rc_subkeys {
    unsigned char mac[32];    /* keyed BLAKE2b */
    unsigned char pmac[32];   /* XChaCha20 -> one-time Poly1305 keys */
    unsigned char enc[32];    /* XChaCha20-Poly1305 */
    uint32_t keyid;           /* public fingerprint of the secret */
} rc_subkeys;

/* A key ring: the current key signs and seals; older keys (rotation) are
   still accepted on what arrives. */
typedef struct rc_keys {
    unsigned char mac[32];    /* current key: MAC */
    unsigned char pmac[32];   /* current key: Poly1305 MAC of large messages */
    unsigned char enc[32];    /* current key: AEAD */
    uint32_t keyid;           /* current key id */
    int set;
    int nold;
    rc_subkeys old[RC_KEYRING_MAX - 1];
} rc_keys;

/* Bytes after the payload of an envelope whose payload (as on the wire,
   sealing included) has payload_len bytes. */
size_t rc_wire_trailer(uint64_t payload_len);
size_t rc_wire_size(size_t kernel_len, uint64_t payload_len);
/* Size of e once encoded (sealing adds RC_SEAL_BYTES). */
size_t rc_wire_size_env(const rc_env *e);
/* Encode e into out (exactly rc_wire_size bytes) and append the MAC. */
rc_status rc_wire_encode(const rc_env *e, const rc_keys *k, const char *queue,
                         unsigned char *out, size_t outlen);
/* Check lengths, version and MAC; on RC_OK e's pointers point into buf.
 * On failure, `why` says what was wrong. */
rc_status rc_wire_decode(unsigned char *buf, size_t len, const rc_keys *k,
                         const char *queue, rc_env *e, char *why, size_t whylen)
    RC_WARN_UNUSED;
/* The same, with a payload size limit (RC_OPT_MAX_PAYLOAD) checked before the
   MAC is even computed.  A sealed payload is decrypted in place, so buf is
   written to and a second decode of the same bytes fails. */
rc_status rc_wire_decode_max(unsigned char *buf, size_t len, const rc_keys *k, const char *queue,
                             uint64_t max_payload, rc_env *e, char *why, size_t whylen) RC_WARN_UNUSED;
/* Parse only the fixed header, for logging what an unverifiable message
 * claims to be.  Nothing in it may be trusted. */
rc_status rc_wire_peek(const unsigned char *buf, size_t len, rc_env *e);

/* auth.c */
rc_status rc_keys_derive(rc_keys *k, const unsigned char secret[RC_KEYBYTES]);
/* Add an older key the ring still accepts (rotation). */
rc_status rc_keys_add_old(rc_keys *k, const unsigned char secret[RC_KEYBYTES]);
/* The sub-keys for key id `keyid`, or NULL if not in the ring. */
const rc_subkeys *rc_keys_find(const rc_keys *k, uint32_t keyid, rc_subkeys *scratch);
rc_status rc_key_read_file(const char *path, unsigned char secret[RC_KEYBYTES],
                           char *why, size_t whylen);
/* A key file holds 1..RC_KEYRING_MAX keys, one per line, current first. */
rc_status rc_key_read_ring(const char *path, unsigned char secrets[RC_KEYRING_MAX][RC_KEYBYTES], int *n,
                           char *why, size_t whylen);
void rc_mac(const rc_keys *k, const char *queue, const unsigned char *msg, size_t len,
            unsigned char out[RC_MAC_BYTES]);
void rc_mac_with(const unsigned char key[32], const char *queue, const unsigned char *msg, size_t len,
                 unsigned char out[RC_MAC_BYTES]);
/* The Poly1305 MAC of large envelopes: tag under the one-time key that
   XChaCha20(key, nonce) gives. */
void rc_pmac_with(const unsigned char key[32], const unsigned char nonce[RC_PMAC_NONCE], const char *queue,
                  const unsigned char *msg, size_t len, unsigned char tag[16]);
/* The trailer of an envelope of len bytes whose trailer space is at its end:
   BLAKE2b or nonce + Poly1305 tag, as the kind byte says (tests re-sign
   altered messages with it). */
void rc_wire_sign(const rc_keys *k, const char *queue, unsigned char *buf, size_t len);
rc_status rc_random_u64(uint64_t *out);

/* ------------------------------------------------------------------ */
/* Reply reader (resp.c) */

/* Bulk strings of this many bytes or more are received in place. */
#define RC_RESP_DIRECT ((size_t)32 << 10)
typedef struct rc_resp rc_resp;
rc_resp *rc_resp_new(void); /* NULL: out of memory; free with rc_resp_free */
void rc_resp_free(rc_resp *p);
/* Forget everything buffered and half-parsed (the connection was dropped). */
void rc_resp_reset(rc_resp *p);
/* Where the next bytes from the socket go: *room > 0 bytes at *dst.
   -1: out of memory. */
int rc_resp_want(rc_resp *p, char **dst, size_t *room);
/* n bytes (<= room) were written at the last rc_resp_want's dst. */
void rc_resp_got(rc_resp *p, size_t n);
/* rc_resp_want + copy + rc_resp_got, for bytes already in memory (tests,
 * fuzzing): how many of buf's n bytes were taken, 0 if there was no room. */
size_t rc_resp_feed(rc_resp *p, const void *buf, size_t n);
/* 1: *out is a whole reply (the caller frees it with freeReplyObject, or
   hands it back with rc_resp_release);
   0: more bytes are needed; -1: protocol error, -2: out of memory, said
   in why (the stream is then unusable: reset). */
int rc_resp_parse(rc_resp *p, redisReply **out, char *why, size_t whylen);
/* Bytes read ahead of the replies parsed so far. */
size_t rc_resp_buffered(const rc_resp *p);
/* 1 when no part of a reply is here: nothing buffered, nothing half parsed. */
int rc_resp_between(const rc_resp *p);
/* Take the whole of r back (NULL: nothing; p NULL: freeReplyObject) for
   the next replies: its small parts into the pools, its large strings
   into the pool of large buffers.  r must not be touched after. */
void rc_resp_release(rc_resp *p, redisReply *r);
/* A large string taken out of a reply (cap: its length + 1), handed back
 * when done with: into the pool, or freed. */
void rc_resp_give(rc_resp *p, char *buf, size_t cap);

/* ------------------------------------------------------------------ */
/* Connection (conn.c) */

typedef struct rc_url {
    int is_unix;
    char host[256];
    int port;
    char path[512];
    char user[128];
    char pass[256];
    int db;
} rc_url;

rc_status rc_url_parse(const char *s, rc_url *u, char *why, size_t whylen);

#define RC_SCRIPT_SLOTS 6

typedef struct rc_conn {
    redisContext *c;
    int cancel_fd;            /* >= 0: a wait for a reply none of which has arrived also ends
                                 when this fd turns readable (a stop request): RC_ECANCELED,
                                 and the connection is dropped (the reply is then unknowable) */
    int cancel_fd2;           /* a second such fd (-1: none): a worker's lease thread waking it */
    rc_url url;
    long long connect_ms, command_ms;
    int down_logged;          /* "lost connection" said once per outage */
    int deferred;             /* replies of sent fire-and-forget commands, read and dropped first */
    unsigned long drains;     /* times deferred replies were dropped unread (prefetch tickets) */
    int keep;                 /* the first `keep` deferred replies are kept, not dropped ... */
    redisReply **kept;        /* ... in this FIFO once read, for rc_conn_take_kept */
    size_t kept_head, kept_n, kept_cap;
    rc_resp *resp;            /* reply reader (allocated on first use) */
    long long last_reply_ms;  /* when the last awaited reply came (rc_now_ms) */
    int peek_after_quiet;     /* 1: rc_conn_ensure peeks only after RC_PEEK_QUIET_MS without one
                                 (a worker's loop, which retries a command that meets a dead
                                 socket); 0: before every command (a master's submit fails) */
    char sha[RC_SCRIPT_SLOTS][41]; /* SHA1 of the loaded queue scripts ("" unknown) */
    char err[256];
} rc_conn;

/* A handle that connects on first use (and again after a failure, with
 * conn->err saying why).  NULL only on ENOMEM. */
rc_conn *rc_conn_new(const rc_url *url, long long connect_ms, long long command_ms);
void rc_conn_free(rc_conn *c);
rc_status rc_conn_ensure(rc_conn *c);
/* One command; on success *reply is set (caller frees with freeReplyObject).
 * A Redis error reply is returned as RC_EREDIS with its text in c->err and
 * *reply still set, so callers can inspect it. */
rc_status rc_conn_cmd(rc_conn *c, redisReply **reply, int argc, const char **argv,
                      const size_t *lens);
rc_status rc_conn_cmdf(rc_conn *c, redisReply **reply, const char *fmt, ...);
/* Pipelining: append many, then get each reply in order. */
rc_status rc_conn_append(rc_conn *c, int argc, const char **argv, const size_t *lens);
rc_status rc_conn_get(rc_conn *c, redisReply **reply);
/* Read and free the next n replies; the first failure is returned (its text
   in c->err).  Stops early when the connection is lost. */
rc_status rc_conn_discard(rc_conn *c, int n);
void rc_conn_drop(rc_conn *c);  /* forget a broken connection */
/* Fire and forget: write the n commands appended so far now and return
 * without waiting; their replies are read and dropped before the next
 * reply anyone asks for (or when the connection is freed). */
rc_status rc_conn_defer(rc_conn *c, int n);

/* A pipeline sent with writev.  hiredis formats every command into a fresh
 * buffer and then appends that to its output buffer: two copies of every
 * payload, each into freshly mapped pages once it passes malloc's mmap
 * threshold.  A pipe copies small arguments into one buffer and only
 * references large ones (RC_PIPE_REF bytes or more), so a result of many
 * MiB goes from the caller's memory to the socket untouched.  Referenced
 * arguments must stay valid until rc_conn_send returns.  Replies are read
 * with rc_conn_get, one per command, in order. */
#define RC_PIPE_REF 4096u
typedef struct rc_pipe_seg { const char *ref; size_t off, len; } rc_pipe_seg;
typedef struct rc_pipe {
    char *buf;                /* small arguments and the protocol around them */
    size_t len, cap, seg_start;
    rc_pipe_seg *seg;         /* what writev sends, in order */
    size_t nseg, capseg;
    size_t bytes;             /* total bytes to send */
    int ncmd;
    int nomem;                /* an append failed: the pipe must not be sent */
} rc_pipe;
void rc_pipe_reset(rc_pipe *p);
void rc_pipe_free(rc_pipe *p);
rc_status rc_pipe_cmd(rc_pipe *p, int argc, const char *const *argv, const size_t *lens);
/* Prefetch: send one command whose reply the caller may want later, or not.
 * Until it is taken, it counts as a deferred reply, so any other command on
 * the connection drops it first (and a lost connection with it); the
 * ticket then no longer matches and rc_conn_take returns RC_EAGAIN.  The
 * caller must be able to issue the command again. */
rc_status rc_conn_prefetch(rc_conn *c, int argc, const char **argv, const size_t *lens, unsigned long *ticket);
/* Done with reply r (which may be NULL): hand it back to c's reader for
   reuse (rc_resp_release), or free it if c has none.  The replies of hot
   paths go this way; freeReplyObject remains right for any other. */
void rc_conn_release(rc_conn *c, redisReply *r);
void rc_conn_give(rc_conn *c, void *buf, size_t cap);
/* The prefetched reply of `ticket`: RC_OK (in *reply, caller frees),
 * RC_EAGAIN if it was dropped, or the command's error. */
rc_status rc_conn_take(rc_conn *c, unsigned long ticket, redisReply **reply);
/* Kept replies: commands sent now whose replies the caller reads later,
 * in order, with rc_conn_take_kept - replies that must not be lost (a
 * take: the entries it hands out are pending under the caller's name; a
 * delivery's verdicts).  Any other command on the connection reads them
 * first, as it does deferred replies, but keeps them instead of dropping
 * them.  Only a lost connection loses those not yet read: rc_conn_take_kept
 * then returns RC_EAGAIN.  rc_conn_keep_reserve(c, n) makes room for n
 * more (RC_ENOMEM: read them with rc_conn_get instead); after sending
 * them (rc_conn_send), rc_conn_keep_sent(c, n) marks them kept.  No
 * dropped deferred reply may be pending before them (the worker's
 * connection has none): they would be kept in their place.
 * rc_conn_prefetch_keep does all three for one command. */
rc_status rc_conn_keep_reserve(rc_conn *c, int n);
void rc_conn_keep_sent(rc_conn *c, int n);
rc_status rc_conn_prefetch_keep(rc_conn *c, int argc, const char **argv, const size_t *lens);
/* The oldest kept reply, read now if it has not come yet: RC_OK (in
 * *reply, caller releases), RC_EAGAIN if none is kept or the connection
 * lost it, or the command's error (*reply set for a Redis error). */
rc_status rc_conn_take_kept(rc_conn *c, redisReply **reply);
/* Write p (after anything appended with rc_conn_append) and reset it. */
rc_status rc_conn_send(rc_conn *c, rc_pipe *p);

/* ------------------------------------------------------------------ */
/* Queue protocol (queue.c) */

#define RC_GROUP "w"

typedef struct rc_keynames {
    char tasks[300];          /* rc:{Q}:tasks (stream) */
    size_t tasks_len;
} rc_keynames;

rc_status rc_queue_name_check(const char *q, char *why, size_t whylen);
void rc_keys_for_queue(const char *q, rc_keynames *kn);
/* rc:{Q}:job:<hex id> and rc:{Q}:job:<hex id>:res */
void rc_job_keys(const char *q, uint64_t job, char *meta, size_t metalen, char *res, size_t reslen);
void rc_hex64(uint64_t v, char out[17]);
/* A stream entry id "<ms>-<seq>" of n bytes (not NUL-terminated) into its
   two numbers: 0, or -1 for anything else (signs, spaces, empty parts,
   more than 64 bits).  Strict because ids come from Redis, and not sscanf
   because masters and workers parse one per task: sscanf was a tenth of
   their instructions. */
int rc_stream_id_parse(const char *s, size_t n, uint64_t *ms, uint64_t *seq);
/* XGROUP CREATE ... MKSTREAM, ignoring BUSYGROUP. */
rc_status rc_queue_ensure_group(rc_conn *c, const rc_keynames *kn);
/* Authenticated end-of-life markers: rc:{Q}:job:J:end (job finished,
   failed or cancelled: workers may drop its leftover tasks) and
   rc:{Q}:removed (queue removed: its workers may exit).  A deleted key
   alone proves nothing - anyone with Redis access can delete - so workers
   and masters act only on a marker whose MAC verifies. */
rc_status rc_tombstone_write(rc_conn *c, const rc_keys *k, const char *queue, uint64_t job, const char *what,
                             long long ttl_ms);
/* The same, only appended to the connection's pipeline (one reply to read). */
rc_status rc_tombstone_append(rc_conn *c, const rc_keys *k, const char *queue, uint64_t job, const char *what,
                              long long ttl_ms);
/* 1: an authentic marker (what it says in `what`); 0: none or not authentic;
   -1: Redis failed. */
int rc_tombstone_check(rc_conn *c, const rc_keys *k, const char *queue, uint64_t job, long long not_before_ms,
                       char *what, size_t n);
long long rc_wall_ms(void);
/* EVALSHA with EVAL fallback. */
enum { RC_SCRIPT_DELIVER = 0, RC_SCRIPT_RENEW = 1, RC_SCRIPT_TAKEOVER = 2, RC_SCRIPT_HANDBACK = 3,
       RC_SCRIPT_DELIVER_SMALL = 4, RC_SCRIPT_TRIM = 5, RC_SCRIPT_COUNT_ };
_Static_assert(RC_SCRIPT_COUNT_ == RC_SCRIPT_SLOTS, "one SHA slot per queue script");
rc_status rc_script(rc_conn *c, int which, redisReply **reply, int nkeys, int nargs,
                    const char **argv, const size_t *lens);
/* The SHA1 of a queue script, loading it first if this connection has not;
   NULL (and *st) if it cannot.  For EVALSHA inside a pipeline or MULTI. */
const char *rc_script_sha(rc_conn *c, int which, rc_status *st);

/* ------------------------------------------------------------------ */
/* Context */

/* ops.c: acc = acc op in for a built-in op (the left operand keeps the
 * result; same bits as rc_reduce_local(acc, in)); RC_EINVAL for a user op. */
rc_status rc_reduce_into_left(void *acc, const void *in, size_t count, rc_datatype dt, rc_op op);

/* Most tasks a worker takes in one round trip.  Only tasks of under ~8 us
   reach it (batches fill ~2 ms of kernel time), and for those every take,
   delivery and wake-up the cap saves is most of what a task costs: 256
   against 64 raised no-op tasks/s by 16-20% at 2, 64 and 256 workers on
   one host (and at 256 only a third of the pool is woken per 20000-task
   job).  A task's tail is at most one batch of them: ~2 ms. */
#define RC_BATCH_MAX 256

typedef struct rc_kernel_entry {
    char name[RC_KERNEL_MAX + 1];
    rc_kernel_fn fn;
    void *user;
} rc_kernel_entry;

struct rc_ctx {
    char *url;                /* owned; NULL: REDCOLL_URL */
    char *queue;              /* owned */
    rc_keys keys;
    long long lease_ms, heartbeat_ms, connect_ms, command_ms;
    long long linger_ms, job_timeout_ms, poll_ms;
    long long drain_timeout_ms, redis_deadline_ms, retention_ms;
    unsigned long long max_payload;   /* largest task/result payload accepted */
    int encrypt;                      /* seal payloads (RC_OPT_ENCRYPT) */
    char *keyfile;                    /* where the ring came from (reloaded when it changes) */
    long long keyfile_mtime_ns;
    int threads, log_level, max_republish, max_attempts;
    int max_batch;                    /* most tasks a worker takes per round trip (RC_OPT_MAX_BATCH) */
    int prefetch;                     /* a worker's next take goes as a batch starts (RC_OPT_PREFETCH) */
    void (*abandon_fn)(void *);
    void *abandon_user;
    int use_syslog;                   /* REDCOLL_LOG=...,syslog */
    rc_log_fn logfn;
    void *loguser;
    rc_kernel_entry *kernels;
    size_t nkernels, capkernels;
    rc_conn *conn;            /* master connection */
    volatile sig_atomic_t interrupted; /* count of stop requests */
    /* A pipe that is readable once a stop was requested (rc_ctx_interrupt
       writes a byte per request, nobody reads them), so a wait on Redis can
       poll it next to its socket and end at once.  Made on first use by
       rc_ctx_stop_fd, closed by rc_ctx_destroy; -1 until then. */
    volatile sig_atomic_t stop_wr;
    int stop_rd;
    char host[64];
    char errmsg[512];
};

rc_status rc_seterr(rc_ctx *ctx, rc_status st, const char *fmt, ...) RC_PRINTF(3, 4);
/* The read end of ctx's stop pipe (made now if need be), or -1 if no pipe
   can be made: waits then see a stop at their next slice, as before. */
int rc_ctx_stop_fd(rc_ctx *ctx);
void rc_clearerr(rc_ctx *ctx);
enum { RC_LOG_ERROR = 0, RC_LOG_WARN = 1, RC_LOG_INFO = 2, RC_LOG_DEBUG = 3 };
void rc_log(const rc_ctx *ctx, int level, const char *fmt, ...) RC_PRINTF(3, 4);
rc_status rc_ctx_url(rc_ctx *ctx, rc_url *u);
/* Load REDCOLL_KEY_FILE if no key is set yet. */
rc_status rc_ctx_ensure_key(rc_ctx *ctx);
/* Reload the key file if it changed on disk (key rotation); 1 if reloaded. */
int rc_ctx_reload_key(rc_ctx *ctx);
/* A file's modification time in ns (-1: cannot stat it). */
long long rc_file_mtime_ns(const char *path);
const rc_kernel_entry *rc_kernel_find(const rc_ctx *ctx, const char *name, size_t len);
long long rc_now_ms(void);
/* A master's blocking slice: RC_OPT_POLL_MS, or 200 ms.  Results wake it at
   once and so does a stop request; the slice only paces its timeout,
   lost-task and progress checks. */
static inline long long rc_master_poll_ms(const rc_ctx *ctx) { return ctx->poll_ms > 0 ? ctx->poll_ms : 200; }
long long rc_now_us(void);
void rc_sleep_ms(long long ms);
/* Block SIGPIPE for this thread around a write to a socket or pipe
   (rc_sigpipe_hold, 1 if held) and take back one the write raised
   (rc_sigpipe_release with failed = the write failed): error.c says why. */
int rc_sigpipe_hold(sigset_t *old);
void rc_sigpipe_release(int held, const sigset_t *old, int failed);

/* ------------------------------------------------------------------ */
/* Task (task.c): the kernel's view of one task. */

struct rc_task {
    uint64_t rank, ntasks, seed, job;
    int threads;
    const void *input;
    size_t input_len;
    const void *bcast;
    size_t bcast_len;
    unsigned char *out;       /* owned by the worker, reused across tasks */
    size_t out_len, out_cap;
    char err[512];
    int failed;
};

#endif
