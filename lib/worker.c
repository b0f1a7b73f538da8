/* worker.c - the worker loop and its lease thread.
 *
 * A worker is one consumer of each of its queues' groups.  Its loop takes
 * entries: first any entry whose lease lapsed (so a task held by a dead or
 * stalled worker is run again; the pool scans once per period), else new
 * ones (XREADGROUP, blocking until work comes, a stop request, or linger;
 * a slice of IDLE_SLICE_MS bounds it).  Queues are tried in priority
 * order.  Short tasks are taken in batches that fill about 2 ms of kernel
 * time (and about 1 MiB), long ones one at a time; a batch whose tasks turn out long gives its
 * unstarted rest back at once.  Results go out together at the end of a
 * batch, and the next take rides in the same round trip, so even one task
 * at a time costs one round trip per task.  A batch expected to run 0.5 ms
 * or more, away from its job's end, sends the next take as it starts, and
 * its results go without waiting for their verdicts (read at the next
 * batch's end): then no round trip at all separates two batches.  Taking is atomic with recording the
 * owner: the entry sits in the group's pending list under this worker's name
 * from the moment it is handed out, with a delivery count that is the task's
 * attempt number.
 *
 * Nothing is trusted before its MAC verifies.  An entry that fails is never
 * run: the worker reports it on the job's result stream (the master sends a
 * fresh authentic copy), deletes it so no one else wastes time on it, says
 * loudly whether its own key looks wrong, and backs off exponentially so a
 * mis-keyed worker cannot eat the queue.
 *
 * Failures are retried elsewhere, a bounded number of times: a kernel error
 * hands the task back (its reason recorded in the job's `why` hash) and a
 * crash leaves it to lapse; a worker that takes a task already started
 * max_attempts times fails it instead of running it, naming the attempts and
 * the last reason, so a poison task cannot kill the pool one worker at a time.
 *
 * The lease thread has its own connection: an OpenMP kernel that saturates
 * every core cannot starve it, and a blocking command on the main connection
 * never delays it.  It renews the lease, keeps this worker's entry in the
 * queue's registry, scans for lapsed leases while the main thread waits
 * for work (and wakes it to take one over), gives the unstarted rest of a
 * batch back while one of its tasks runs far longer than the batch was
 * sized for, and on a second stop request (or when the drain timeout
 * passes) hands the task in hand back at once.  The job descriptor (kernel,
 * seed, broadcast blob) is fetched once per job and cached. */
#include "internal.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOB_CACHE 4
#define ID_MAX 48
#define MAXB RC_BATCH_MAX
#define BATCH_TARGET_US 2000 /* take as many short tasks as fill ~2 ms of kernel time */
#define BATCH_BYTES ((size_t)1 << 20) /* and no more tasks than move about 1 MiB in and out */
#define BATCH_HOLD_US (4 * BATCH_TARGET_US) /* a batch running longer gives its unstarted rest back */
#define PREFETCH_MIN_US 500 /* a batch expected to run this long takes the next as it starts (prefetch_worth) */
/* Results this small (in all) go through Lua: cheaper than a MULTI, whose
   XADD per result makes an entry per result.  A full batch of no-op results
   (256 x 104 bytes) must fit. */
#define SMALL_DELIVERY 65536
#define MAX_QUEUES 16
#define HANDBACK_IDLE "1000000000" /* ms: longer than any lease, shorter than the epoch */

typedef struct job_cache {
    int queue;
    uint64_t job, ntasks, seed;
    uint64_t data;            /* stored data its tasks read (0: none) */
    char kernel[RC_KERNEL_MAX + 1];
    size_t kernel_len;
    unsigned char *blob;
    size_t blob_len;
    long long used;
    int valid;
} job_cache;

/* Chunks of stored data (rc_data): an iterative job's workers fetch each
   chunk once and reuse it for every later job on the same data. */
#define CHUNK_SLOTS 1024
#define CHUNK_BUDGET ((size_t)512 << 20)
typedef struct chunk {
    int queue;
    uint64_t data, rank;
    unsigned char *bytes;
    size_t len;
    long long used;
} chunk;

typedef struct wqueue {
    char name[201];
    rc_keynames kn;
    char reg[300];            /* rc:{Q}:workers (sorted set: consumer -> last beat) */
    char info[400];           /* rc:{Q}:worker:<consumer> (expiring info string) */
    char nolapsed[300];       /* rc:{Q}:nolapsed: a scan found no lapsed lease (expires) */
    long long last_reclaim;
    uint64_t seen_ms, seen_seq; /* the newest entry id a take of ours returned */
    int have_group;
    int removed;
    int pool;                 /* workers that beat in its registry lately (0: not known yet); guarded by mu */
} wqueue;

typedef struct outbox {
    unsigned char *buf;
    size_t cap, used;
    size_t off[MAXB], len[MAXB];
    char id[MAXB][ID_MAX];
    uint64_t job[MAXB];
    int n, qi;
} outbox;

/* The result envelopes of outbox ob, in order. */
static void outbox_envs(const outbox *ob, const unsigned char **envs)
{
    for (int i = 0; i < ob->n; i++)
        envs[i] = ob->buf + ob->off[i];
}

/* n results of these lengths go through DELIVER_SMALL (else a MULTI). */
static int fits_small(const size_t *lens, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i];
    return total <= SMALL_DELIVERY;
}

typedef struct worker {
    rc_ctx *ctx;
    rc_conn *conn;
    int stop_fd;              /* readable once a stop was requested (-1: none): ends a blocking take */
    wqueue q[MAX_QUEUES];
    int nq;
    char consumer[160];
    uint64_t wid;
    long long started_ms;
    long long idle_since;     /* the last batch ended (linger counts from here) */

    pthread_t hb;
    int hb_started;
    pthread_mutex_t mu;
    int tick_fd;              /* timerfd the lease thread waits on: ticks while a batch runs, fired once to stop it */
    int ticking;              /* tick_fd is armed (lease_ticks; guarded by mu) */
    int wake_fd;              /* eventfd: the lease thread ends the main thread's wait for work */
    int poked;                /* wake_fd holds a wake-up not read yet (guarded by mu) */
    int waiting;              /* the main thread waits in Redis for work (guarded by mu) */
    int scan_now;             /* the lease thread saw a lapsed lease: take it over (guarded by mu) */
    int key_poke;             /* the lease thread saw the key file change (guarded by mu) */
    char *keypath;            /* the key file, for the lease thread (NULL: none) */
    int scan_warned;          /* idle_scan's failure said once (lease thread) */
    int beats;                /* registry beats answered (lease thread) */
    int hb_stop;
    /* the entry in hand, guarded by mu */
    char held[ID_MAX];
    int held_q;
    uint64_t held_job, held_rank;
    int handed_back;          /* the lease thread gave it back: do not deliver */
    char bids[MAXB][ID_MAX];  /* every entry taken and not yet acked (renewed together) */
    int nb;
    /* the batch in hand, for the lease thread to give its unstarted rest
       back while a task runs long: entries [sp_next, sp_end) of sp_ents
       (NULL: none to give), the current task claimed at sp_t0 (us) after
       sp_kern us of the batch's kernels; the main thread's time waiting
       for a CPU at the last look (main_wait_us, at sp_seen us) */
    redisReply **sp_ents;
    size_t sp_next, sp_end;
    int sp_qi;
    double sp_avg;
    long long sp_t0, sp_kern, sp_seen, sp_wait;
    long long nb_since;       /* when they were taken */
    uint64_t done;            /* tasks delivered (guarded by mu for the registry) */

    job_cache cache[JOB_CACHE];
    chunk chunks[CHUNK_SLOTS];
    size_t chunk_bytes;
    rc_task task;
    unsigned char *res;
    size_t rescap;
    int auth_fails;
    int verified;             /* some task verified: our key is the fleet's */
    int redis_down;
    /* results waiting to be delivered in one round trip (ob), and the
       delivery whose verdicts are on their way (fly.ob, NULL: none;
       deliver_async): two outboxes, since a delivery is remade from its
       results if its verdicts are lost */
    outbox obx[2];
    outbox *ob;
    struct {
        outbox *ob;
        int nx;               /* a MULTI's XADDs (trip_pipe); -1: DELIVER_SMALL, with ... */
        int m, gid[MAXB];     /* ... its verdict groups (small_args) */
    } fly;
    int batch;                /* entries to take next time (adapts to task length) */
    double avg_us;            /* running mean of one task's kernel time */
    long long kern_us;        /* kernel wall time of the batch in hand */
    long long cpu0;           /* this thread's CPU time when the batch started */
    long long wait0;          /* and its time runnable but not running (sched_fd), us */
    long vcsw0, ivcsw0;       /* its context switches (voluntary, involuntary), without sched_fd */
    int sched_fd;             /* the main thread's /proc/thread-self/schedstat (both threads read it), or -1 */
    int kern_n, refused_n;    /* kernels run and entries refused in it */
    uint64_t sized_job;       /* the job whose tasks' length set `batch` */
    char sized_kernel[RC_KERNEL_MAX + 1]; /* and its kernel */
    size_t sized_kernel_len;
    size_t batch_bytes;       /* task entries and results of it */
    rc_pipe pipe;             /* deliveries, sent with writev */
    char resname[MAXB][320];  /* deliver_many's result stream per entry (main thread; 80 KiB kept off its stack) */
} worker;

static int interrupted(const worker *w) { return w->ctx->interrupted != 0; }

/* The lease thread's clock, mu held: every LEASE_TICK_MS from now (on), or
 * never.  Only a batch in hand needs it looked after between beats - the
 * unstarted rest to give back, a second stop request or a drain timeout to
 * act on - and most batches are delivered before the first tick.  A timer
 * the kernel fires, set and cleared here, costs two system calls a batch;
 * waking the thread to arm its own short waits cost two wake-ups a batch,
 * a fifth of what a worker of a 256-process pool spent per no-op task.  A
 * batch of one entry has no rest, and the lease thread wakes on the first
 * stop request by itself (stop_fd), so such batches leave it off until
 * then: two system calls a task fewer, one task per take. */
#define LEASE_TICK_MS 50
static void lease_ticks(worker *w, int on)
{
    if (on == w->ticking)
        return;
    struct itimerspec t = {{0, 0}, {0, 0}};
    if (on)
        t.it_interval.tv_nsec = t.it_value.tv_nsec = LEASE_TICK_MS * 1000000L;
    (void)timerfd_settime(w->tick_fd, 0, &t, NULL);
    w->ticking = on;
}

/* Stop the lease thread, if it runs, and wait for it: its timer fires
   now, so it need not wait for its next beat. */
static void lease_stop(worker *w)
{
    if (!w->hb_started)
        return;
    struct itimerspec t = {{0, 0}, {0, 1}};
    pthread_mutex_lock(&w->mu);
    w->hb_stop = 1;
    (void)timerfd_settime(w->tick_fd, 0, &t, NULL);
    w->ticking = 0; /* the one shot replaced the ticks */
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->hb, NULL);
    w->hb_started = 0;
}

static long long thread_cpu_us(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0)
        return 0;
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* How long the main thread has waited runnable for a CPU, in us: the
 * second field of its schedstat (CONFIG_SCHED_INFO; -1 without it, or where
 * the kernel keeps no such account and prints "0 0 0": older kernels
 * without schedstats or delay accounting).  Not the first field for CPU
 * time: that lags by up to a scheduler tick for a running thread, where
 * CLOCK_THREAD_CPUTIME_ID does not.  pread at offset 0 reads the file
 * afresh, from either thread. */
static long long main_wait_us(const worker *w)
{
    char buf[96];
    ssize_t n = w->sched_fd >= 0 ? pread(w->sched_fd, buf, sizeof buf - 1, 0) : -1;
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    unsigned long long ran = strtoull(buf, &end, 10);
    if (end == buf || *end != ' ' || ran == 0) /* this thread has run: 0 means not counted */
        return -1;
    const char *p = end + 1;
    unsigned long long wait = strtoull(p, &end, 10);
    return end == p ? -1 : (long long)(wait / 1000);
}

static void batch_clock_start(worker *w)
{
    w->cpu0 = thread_cpu_us();
    if ((w->wait0 = main_wait_us(w)) >= 0)
        return;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        w->vcsw0 = ru.ru_nvcsw;
        w->ivcsw0 = ru.ru_nivcsw;
    }
}

/* How long the kernels of a batch held their tasks, for sizing batches:
 * their wall time less the time this thread waited for a CPU (many
 * workers per core), or batching would turn itself off exactly when Redis
 * is busiest.  A kernel that sleeps or waits for I/O keeps that time: it
 * holds the task.  Without schedstat, a guess from context switches: the
 * wall time unless more of them were involuntary, then the CPU time - which
 * takes a sleeping kernel preempted twice for a short one (a batch sized
 * for it is cut short when its tasks run long, at a round trip's cost). */
static long long kernel_time(const worker *w)
{
    long long cpu = thread_cpu_us() - w->cpu0;
    if (cpu > w->kern_us)
        cpu = w->kern_us;
    if (w->wait0 >= 0) {
        /* the wait counted is the whole batch's, kernels' or not */
        long long wait = main_wait_us(w), held = w->kern_us - (wait >= w->wait0 ? wait - w->wait0 : 0);
        return held > cpu ? held : cpu;
    }
    if (cpu >= w->kern_us / 2)
        return cpu;
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0 && ru.ru_nivcsw - w->ivcsw0 > ru.ru_nvcsw - w->vcsw0)
        return cpu;
    return w->kern_us;
}

/* ------------------------------------------------------------------ */
/* Lease thread */

/* How often the pool looks for lapsed leases (a busy worker's take, an idle
   worker's lease thread), and how long a scan that found none stands for the
   whole pool. */
static long long reclaim_period(const rc_ctx *ctx)
{
    long long every = ctx->lease_ms / 4 < 1000 ? ctx->lease_ms / 4 : 1000;
    return every < ctx->poll_ms ? ctx->poll_ms : every;
}

/* What a beat found of a queue's lapsed-lease scan, for idle_scan. */
enum { SCAN_SKIP, SCAN_OURS, SCAN_FORGED };

/* Keep this worker in each queue's registry; with scan (nq slots), also
 * claim this period's scan for lapsed leases of each queue in the same round
 * trip: SET `nolapsed` NX for a period, then its PTTL.  scan[i] is
 * SCAN_OURS when the SET took; SCAN_FORGED when the `nolapsed` there is no
 * scan's of ours (no expiry, or longer than a period: TAKEOVER judges it
 * so too); else SCAN_SKIP (the period's scan is done, or no reply). */
static void registry_beat(worker *w, rc_conn *c, long long ttl, long long period, int *scan)
{
    char task[64] = "-", ttl_s[32], now_s[32];
    pthread_mutex_lock(&w->mu);
    if (w->held[0]) {
        char hex[17];
        rc_hex64(w->held_job, hex);
        snprintf(task, sizeof task, "%s/%llu", hex, (unsigned long long)w->held_rank);
    }
    unsigned long long done = w->done;
    pthread_mutex_unlock(&w->mu);
    char queues[400] = "";
    for (int i = 0; i < w->nq; i++) {
        size_t l = strlen(queues);
        snprintf(queues + l, sizeof queues - l, "%s%s", i ? "," : "", w->q[i].name);
    }
    char info[900];
    long long now_ms = rc_wall_ms();
    snprintf(info, sizeof info, "host=%s pid=%ld queues=%s threads=%d task=%s done=%llu started=%lld beat=%lld",
             w->ctx->host, (long)getpid(), queues, w->ctx->threads, task, done, w->started_ms, now_ms);
    snprintf(ttl_s, sizeof ttl_s, "%lld", ttl);
    snprintf(now_s, sizeof now_s, "%lld", now_ms);
    char period_s[32];
    snprintf(period_s, sizeof period_s, "%lld", period);
    for (int i = 0; scan && i < w->nq; i++)
        scan[i] = SCAN_SKIP;
    for (int i = 0; i < w->nq; i++) {
        if (rc_conn_append(c, 5, (const char *[]){"SET", w->q[i].info, info, "PX", ttl_s}, NULL) != RC_OK ||
            rc_conn_append(c, 4, (const char *[]){"ZADD", w->q[i].reg, now_s, w->consumer}, NULL) != RC_OK)
            return;
    }
    /* the pool: whoever beat within the ttl (a dead worker's entry stays
       until someone removes it), for the main thread's prefetch, which
       must not think it smaller than it is.  Not at our first beat: the
       workers started with us may not have registered yet (a pool of 4
       once counted 1, and took tasks ahead at the end of an 8-task job) */
    char since_s[32];
    snprintf(since_s, sizeof since_s, "%lld", now_ms - ttl);
    for (int i = 0; i < w->nq; i++)
        if (rc_conn_append(c, 4, (const char *[]){"ZCOUNT", w->q[i].reg, since_s, "+inf"}, NULL) != RC_OK)
            return;
    for (int i = 0; scan && i < w->nq; i++)
        if (rc_conn_append(c, 6, (const char *[]){"SET", w->q[i].nolapsed, "1", "PX", period_s, "NX"}, NULL) !=
                RC_OK ||
            rc_conn_append(c, 2, (const char *[]){"PTTL", w->q[i].nolapsed}, NULL) != RC_OK)
            return;
    if (rc_conn_discard(c, 2 * w->nq) == RC_EREDIS && !c->c)
        return;
    for (int i = 0; i < w->nq; i++) {
        redisReply *z = NULL;
        rc_status zs = rc_conn_get(c, &z);
        long long n = zs == RC_OK && z->type == REDIS_REPLY_INTEGER ? z->integer : 0;
        rc_conn_release(c, z);
        pthread_mutex_lock(&w->mu);
        w->q[i].pool = w->beats == 0 || n < 0 ? 0 : n > INT_MAX ? INT_MAX : (int)n;
        pthread_mutex_unlock(&w->mu);
        if (!c->c)
            return;
    }
    w->beats++;
    for (int i = 0; scan && i < w->nq; i++) {
        redisReply *s = NULL, *t = NULL;
        rc_status ss = rc_conn_get(c, &s);
        rc_status ts = c->c ? rc_conn_get(c, &t) : ss;
        if (ss == RC_OK && s->type == REDIS_REPLY_STATUS)
            scan[i] = SCAN_OURS;
        else if (ts == RC_OK && t->type == REDIS_REPLY_INTEGER && (t->integer == -1 || t->integer > period))
            scan[i] = SCAN_FORGED;
        rc_conn_release(c, s);
        rc_conn_release(c, t);
        if (!c->c)
            return;
    }
}

/* End the main thread's next (or current) wait for work at once.  Called
 * with mu held: `poked` lets wait_end skip reading an empty eventfd, a
 * system call per wait - per task when each takes one. */
static void poke(worker *w)
{
    uint64_t one = 1;
    (void)!write(w->wake_fd, &one, sizeof one);
    w->poked = 1;
}

/* Raise *flag (a field of w guarded by mu) for the main thread, and end its
 * wait for work if it is waiting.  The write is under mu, as wait_end's
 * read is: a wake-up never outlives the wait it was for (it would end the
 * next one for nothing, and cost a reconnection). */
static void wake_main(worker *w, int *flag)
{
    pthread_mutex_lock(&w->mu);
    *flag = 1;
    if (w->waiting)
        poke(w);
    pthread_mutex_unlock(&w->mu);
}

/* Main thread: lower *flag (raised by wake_main); whether it was up. */
static int take_flag(worker *w, int *flag)
{
    pthread_mutex_lock(&w->mu);
    int up = *flag;
    *flag = 0;
    pthread_mutex_unlock(&w->mu);
    return up;
}

/* The scan for lapsed leases of a worker waiting for work, done by its lease
 * thread at a beat, so that the main thread's wait needs no slices: of
 * the queues whose scan the beat claimed, or found forged (registry_beat).
 * The scan looks for one entry idle past the lease.  None: `nolapsed` stands for the period.
 * One: it goes, and the main thread is woken; its next take runs TAKEOVER
 * (which claims the entry, or finds another worker was faster). */
static void idle_scan(worker *w, rc_conn *c, const int *scan)
{
    const rc_ctx *ctx = w->ctx;
    long long every = reclaim_period(ctx);
    char lease[32], period[32];
    snprintf(lease, sizeof lease, "%lld", ctx->lease_ms);
    snprintf(period, sizeof period, "%lld", every);
    for (int i = 0; i < w->nq; i++) {
        if (scan[i] == SCAN_SKIP)
            continue;
        int forged = scan[i] == SCAN_FORGED;
        redisReply *r = NULL;
        rc_status st = rc_conn_cmd(
            c, &r, 8, (const char *[]){"XPENDING", w->q[i].kn.tasks, RC_GROUP, "IDLE", lease, "-", "+", "1"}, NULL);
        int lapsed = st == RC_OK && r->type == REDIS_REPLY_ARRAY && r->elements > 0;
        int none = st == RC_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 0;
        if (st == RC_EREDIS && c->c && !strstr(c->err, "NOGROUP") && !w->scan_warned) {
            /* (an ACL without XPENDING, say): lapsed leases are then taken
               over only when a wait for work ends */
            w->scan_warned = 1;
            rc_log(ctx, RC_LOG_WARN, "cannot look for lapsed leases of queue '%s' while idle: %s", w->q[i].name,
                   c->err);
        }
        rc_conn_release(c, r);
        r = NULL; /* an error (no group: a removed queue, a new one) is no news */
        if (lapsed)
            (void)rc_conn_cmd(c, &r, 2, (const char *[]){"DEL", w->q[i].nolapsed}, NULL);
        else if (none && forged) /* ours replaces it; with none forged, the beat's SET NX stands */
            (void)rc_conn_cmd(c, &r, 5, (const char *[]){"SET", w->q[i].nolapsed, "1", "PX", period}, NULL);
        rc_conn_release(c, r);
        if (lapsed) {
            wake_main(w, &w->scan_now);
            return;
        }
    }
}

static int entry_parts(const redisReply *e, char *id, unsigned char **buf, size_t *len);
static void unbatch(worker *w, char (*ids)[ID_MAX], int n);

/* Hand the entry in hand back: immediately claimable by any other worker,
 * not counted as an attempt; optional reason recorded for the master. */
static rc_status handback_ex(worker *w, rc_conn *c, const char *id, int qi, uint64_t job, uint64_t rank,
                             int free_attempt, const char *idle)
{
    char meta[300], why[320], rank_s[32];
    wqueue *q = &w->q[qi];
    rc_job_keys(q->name, job, meta, sizeof meta, NULL, 0);
    snprintf(why, sizeof why, "%s:why", meta);
    snprintf(rank_s, sizeof rank_s, "%llu", (unsigned long long)rank);
    const char *av[] = {q->kn.tasks, meta, why, q->nolapsed, RC_GROUP, w->consumer, id, rank_s, "",
                        idle, free_attempt ? "free" : ""};
    redisReply *r = NULL;
    rc_status st = rc_script(c, RC_SCRIPT_HANDBACK, &r, 4, 7, av, NULL);
    if (r) freeReplyObject(r);
    return st;
}

/* Give back entries ents[from..n) that were never started, in one round
 * trip: their bytes go back on the stream as new entries, then the old ones
 * are acked and deleted.  New entries, not released pending ones, because
 * workers waiting in XREADGROUP are woken by new entries at once, while a
 * released pending entry waits for someone's lapsed-lease scan.  One XADD
 * per entry and no MULTI, because Redis serves its blocked readers after
 * each command: each entry goes to the next waiting worker.  In a MULTI
 * they all went to the first, which - still sized for the job before, as
 * this worker was - kept one and gave the rest back in turn: 26 XADDs per
 * task for a 200-task job meeting 256 workers.  Without the transaction a
 * worker dying halfway leaves copies of entries still pending under its
 * name; they are run twice, which is harmless: the bytes are the master's
 * authenticated envelope, untouched (never decoded here), and the master
 * keeps one result per task.  On connection c: the main loop's, or the
 * lease thread's; returns how many went back, their ids in ids. */
static int hand_back_on(worker *w, rc_conn *c, rc_pipe *pipe, int qi, redisReply **ents, size_t from, size_t n,
                        char (*ids)[ID_MAX])
{
    wqueue *q = &w->q[qi];
    const char *av[3 + MAXB];
    int k = 0;
    rc_pipe_reset(pipe);
    for (size_t m = from; m < n && k < MAXB; m++) {
        unsigned char *buf;
        size_t len;
        if (entry_parts(ents[m], ids[k], &buf, &len) != 0)
            continue;
        if (buf) {
            /* NOMKSTREAM: a queue removed meanwhile (its stream deleted)
               must not come back as a stream without its group */
            const char *xa[] = {"XADD", q->kn.tasks, "NOMKSTREAM", "*", "e", (const char *)buf};
            size_t xl[] = {4, q->kn.tasks_len, 10, 1, 1, len};
            (void)rc_pipe_cmd(pipe, 6, xa, xl);
        }
        av[3 + k] = ids[k];
        k++;
    }
    if (!k) {
        rc_pipe_reset(pipe);
        return 0;
    }
    av[0] = "XACK"; av[1] = q->kn.tasks; av[2] = RC_GROUP;
    (void)rc_pipe_cmd(pipe, 3 + k, av, NULL);
    av[1] = "XDEL"; av[2] = q->kn.tasks;
    (void)rc_pipe_cmd(pipe, 2 + k, av + 1, NULL);
    int cmds = pipe->ncmd;
    if (rc_conn_send(c, pipe) != RC_OK)
        return 0; /* still pending under our name: the leases lapse and others take them */
    if (rc_conn_discard(c, cmds) == RC_EREDIS && !c->c)
        return 0;
    return k; /* given back: nothing of theirs to renew */
}

static void unbatch_locked(worker *w, char (*ids)[ID_MAX], int n);

static void hand_back_unstarted(worker *w, int qi, redisReply **ents, size_t from, size_t n)
{
    char ids[MAXB][ID_MAX];
    unbatch(w, ids, hand_back_on(w, w->conn, &w->pipe, qi, ents, from, n, ids));
}

/* Lease thread, mu held: give the unstarted rest of the batch in hand back
 * while its task runs far longer than the batch was sized for - a new job
 * of the same kernel whose tasks are longer than the last one's, or a job
 * whose tasks vary.  After the task, the main loop would do the same
 * (below), but only then: one long task would keep the whole rest from
 * idle workers for its length.  Its time counts as the main loop's does:
 * wall time, unless the main thread spent it waiting for a CPU (many
 * workers per core), which the schedstat since the last look tells - so a
 * crowded host does not give back batches of short tasks.  The hand-back
 * goes out on this thread's connection with mu held, so the main thread
 * cannot start one of those entries or free their reply meanwhile. */
static void spill_long_batch(worker *w, rc_conn *c, rc_pipe *pipe)
{
    /* a batch of one (RC_OPT_MAX_BATCH 1 takes no more) has nothing to give */
    if (!w->sp_ents || w->sp_next == 0 || w->sp_next >= w->sp_end)
        return;
    long long now = rc_now_us(), so_far = w->sp_kern + (now - w->sp_t0);
    if (so_far <= BATCH_HOLD_US || (double)so_far <= 4.0 * w->sp_avg * (double)w->sp_next)
        return;
    long long wait = main_wait_us(w); /* -1 (not known): wall time alone decides */
    int first_look = w->sp_seen < w->sp_t0;
    long long dwait = wait >= 0 && w->sp_wait >= 0 ? wait - w->sp_wait : 0, dwall = now - w->sp_seen;
    w->sp_wait = wait;
    w->sp_seen = now;
    if (first_look || (double)dwait > 0.5 * (double)dwall)
        return; /* decide at the next look; or it waited for a CPU more than it ran or slept */
    char ids[MAXB][ID_MAX];
    size_t from = w->sp_next, to = w->sp_end;
    int k = hand_back_on(w, c, pipe, w->sp_qi, w->sp_ents, from, to, ids);
    if (!k)
        return; /* the leases lapse instead; the main loop may still try */
    unbatch_locked(w, ids, k);
    w->sp_end = from;
    rc_log(w->ctx, RC_LOG_DEBUG, "a task runs long (%lld us so far): handed the batch's %zu unstarted task(s) back",
           so_far, to - from);
}

/* Main thread: may entry k of the batch start (the lease thread did not
 * give it back)?  It is then no longer the lease thread's to give. */
static int claim_entry(worker *w, size_t k)
{
    pthread_mutex_lock(&w->mu);
    int ok = k < w->sp_end;
    if (ok) {
        w->sp_next = k + 1;
        w->sp_t0 = rc_now_us();
        w->sp_kern = w->kern_us;
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

/* Main thread: the batch's entries are its own again (done with, or to
   give back itself); returns how far those the lease thread left go. */
static size_t unshare_batch(worker *w)
{
    pthread_mutex_lock(&w->mu);
    size_t end = w->sp_end;
    w->sp_ents = NULL;
    w->sp_next = w->sp_end = 0;
    lease_ticks(w, 0);
    pthread_mutex_unlock(&w->mu);
    return end;
}

/* Main thread: give back the batch's entries from k on that the lease
   thread did not give back already; how many that was. */
static size_t give_back_rest(worker *w, int qi, redisReply **ents, size_t k)
{
    size_t end = unshare_batch(w);
    if (end <= k)
        return 0;
    hand_back_unstarted(w, qi, ents, k, end);
    return end - k;
}

/* A kernel error: counts as an attempt; anyone may retry at once. */
static rc_status handback(worker *w, rc_conn *c, const char *id, int qi, uint64_t job, uint64_t rank)
{
    return handback_ex(w, c, id, qi, job, rank, 0, HANDBACK_IDLE);
}

/* A stop request: not an attempt; anyone may take it at once. */
static rc_status hand_back_free(worker *w, rc_conn *c, const char *id, int qi)
{
    return handback_ex(w, c, id, qi, 0, 0, 1, HANDBACK_IDLE);
}

static void *lease_thread(void *arg)
{
    worker *w = arg;
    rc_ctx *ctx = w->ctx;
    rc_url u = w->conn->url;
    rc_conn *c = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms);
    long long period = ctx->heartbeat_ms > 0 ? ctx->heartbeat_ms : ctx->lease_ms / 4;
    if (period < 10)
        period = 10;
    long long next_beat = 0, stop_seen = 0;
    long long key_mtime = w->keypath ? rc_file_mtime_ns(w->keypath) : -1;
    char id[ID_MAX], lost_id[ID_MAX] = "";
    rc_pipe spill_pipe = {0};
    pthread_mutex_lock(&w->mu);
    while (!w->hb_stop && c) {
        /* until the next beat (renewals only happen at beats), or the tick
           of a batch in hand (lease_ticks): a stop request comes from a
           signal handler, noticed at the next tick, and the batch may have
           to be given back.  With no batch running - nothing taken, or its
           results on their way and the next take blocking in Redis -
           nothing needs us before the beat: 256 idle workers once woke 5120
           times a second for nothing. */
        long long to_beat = next_beat - rc_now_ms();
        pthread_mutex_unlock(&w->mu);
        /* and the first stop request itself (the pipe stays readable after
           it): a batch of one entry runs without ticks until then */
        struct pollfd p[2] = {{.fd = w->tick_fd, .events = POLLIN}, {.fd = w->stop_fd, .events = POLLIN}};
        nfds_t np = !stop_seen && w->stop_fd >= 0 ? 2 : 1;
        if (poll(p, np, to_beat <= 0 ? 0 : to_beat > INT_MAX ? INT_MAX : (int)to_beat) > 0 && p[0].revents) {
            uint64_t ticks;
            (void)!read(w->tick_fd, &ticks, sizeof ticks); /* clears it; nonblocking */
        }
        pthread_mutex_lock(&w->mu);
        if (w->hb_stop)
            break;
        spill_long_batch(w, c, &spill_pipe);
        long long now = rc_now_ms();
        int stops = (int)ctx->interrupted;
        if (stops && !stop_seen) {
            stop_seen = now;
            if (w->sp_ents)
                lease_ticks(w, 1); /* a second request or the drain timeout may come while it runs */
        }
        int give_back = w->nb > 0 && !w->handed_back &&
                        (stops >= 2 || (stops && ctx->drain_timeout_ms > 0 && now - stop_seen >= ctx->drain_timeout_ms));
        if (!give_back && now < next_beat)
            continue;
        memcpy(id, w->held, sizeof id);
        int qi = w->held_q, nb = w->nb;
        long long held_for = now - w->nb_since;
        uint64_t rank = w->held_rank;
        int waiting = w->waiting;
        char bids[MAXB][ID_MAX];
        memcpy(bids, w->bids, (size_t)nb * ID_MAX);
        pthread_mutex_unlock(&w->mu);

        if (give_back) {
            rc_status st = RC_OK;
            for (int i = 0; i < nb; i++) {
                rc_status s1 = hand_back_free(w, c, bids[i], qi);
                if (s1 != RC_OK)
                    st = s1;
            }
            rc_log(ctx, RC_LOG_WARN, "%s: handed %d task(s) back to the queue (running: task %llu)%s",
                   stops >= 2 ? "second stop request" : "drain timeout", nb, (unsigned long long)rank,
                   st == RC_OK ? "" : " (some failed: their lease will lapse instead)");
            pthread_mutex_lock(&w->mu);
            w->handed_back = 1;
            pthread_mutex_unlock(&w->mu);
            if (ctx->abandon_fn)
                ctx->abandon_fn(ctx->abandon_user); /* typically _exit(0) */
            pthread_mutex_lock(&w->mu);
            continue;
        }
        next_beat = now + period;
        /* entries taken less than a third of a lease ago are far from
           lapsing: a batch of short tasks is usually delivered before its
           first renewal would be due, and renewing each entry costs Redis
           two commands */
        if (nb && (held_for >= ctx->lease_ms / 3 || period > ctx->lease_ms / 3)) {
            const char *av[4 + MAXB] = {w->q[qi].kn.tasks, RC_GROUP, w->consumer};
            for (int i = 0; i < nb; i++)
                av[3 + i] = bids[i];
            redisReply *r = NULL;
            rc_status st = rc_script(c, RC_SCRIPT_RENEW, &r, 1, 2 + nb, av, NULL);
            /* warn only when another worker holds one of ours: an entry
               merely gone was acked by our own delivery meanwhile */
            int owned = !(st == RC_OK && r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                          r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0);
            pthread_mutex_lock(&w->mu);
            int still_held = strcmp(w->held, id) == 0; /* not delivered meanwhile */
            pthread_mutex_unlock(&w->mu);
            if (st != RC_OK)
                rc_log(ctx, RC_LOG_DEBUG, "lease renewal failed: %s", c->err);
            else if (!owned && still_held && id[0] && strcmp(lost_id, id) != 0) {
                rc_log(ctx, RC_LOG_WARN, "entry %s is no longer ours (its lease lapsed and another worker took "
                                         "it, or its job ended); finishing anyway: the master keeps one result "
                                         "per task", id);
                memcpy(lost_id, id, sizeof lost_id);
            }
            if (r) freeReplyObject(r);
        }
        int scan[MAX_QUEUES], idle = waiting && !nb;
        registry_beat(w, c, period * 3 + 1000, reclaim_period(ctx), idle ? scan : NULL);
        if (idle)
            idle_scan(w, c, scan);
        if (w->keypath) { /* key rotation, seen while the main thread waits for work */
            long long mt = rc_file_mtime_ns(w->keypath);
            if (mt >= 0 && mt != key_mtime) {
                key_mtime = mt;
                wake_main(w, &w->key_poke);
            }
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    rc_pipe_free(&spill_pipe);
    rc_conn_free(c);
    return NULL;
}

static void set_held(worker *w, const char *id, int qi, uint64_t job, uint64_t rank)
{
    pthread_mutex_lock(&w->mu);
    snprintf(w->held, sizeof w->held, "%s", id ? id : "");
    w->held_q = qi;
    w->held_job = job;
    w->held_rank = rank;
    w->handed_back = 0;
    pthread_mutex_unlock(&w->mu);
}

/* ------------------------------------------------------------------ */

static int is_nogroup(const rc_conn *c, rc_status st)
{
    /* Redis 7 unblocks a reader of a deleted stream with "UNBLOCKED ... no
       longer exists"; either way the queue was removed */
    return st == RC_EREDIS && c->c && (strstr(c->err, "NOGROUP") != NULL || strstr(c->err, "UNBLOCKED") != NULL);
}

/* Sleep ms, or less once the context has had `stops` stop requests. */
static void nap_until(const worker *w, long long ms, int stops)
{
    long long end = rc_now_ms() + ms;
    while (w->ctx->interrupted < stops) {
        long long left = end - rc_now_ms();
        if (left <= 0)
            break;
        rc_sleep_ms(left < 50 ? left : 50);
    }
}

/* Sleep up to ms, waking early on a stop request. */
static void nap(const worker *w, long long ms) { nap_until(w, ms, 1); }

/* An entry as handed out by Redis: [id, [field, value, ...]] or nil for an
 * entry deleted while pending (Redis < 7).  Everything is checked: the
 * reply's shape comes from a server we do not trust. */
static int entry_parts(const redisReply *e, char *id, unsigned char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len == 0 || e->element[0]->len >= ID_MAX)
        return -1;
    memcpy(id, e->element[0]->str, e->element[0]->len);
    id[e->element[0]->len] = '\0';
    const redisReply *f = e->element[1];
    if (f->type == REDIS_REPLY_ARRAY && (f->elements == 2 || f->elements == 4) &&
        f->element[0]->type == REDIS_REPLY_STRING && f->element[0]->len == 1 && f->element[0]->str[0] == 'e' &&
        f->element[1]->type == REDIS_REPLY_STRING) {
        *buf = (unsigned char *)f->element[1]->str;
        *len = f->element[1]->len;
    }
    return 0;
}

/* The job descriptor the master put in a job's first task entries (field
 * "d"), so a worker's first task of a job costs no GET; NULL if none.  As
 * untrusted as the rest until job_lookup verifies it. */
static unsigned char *entry_desc(const redisReply *e, size_t *len)
{
    *len = 0;
    const redisReply *f = e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 ? e->element[1] : NULL;
    if (!f || f->type != REDIS_REPLY_ARRAY || f->elements != 4 || f->element[2]->type != REDIS_REPLY_STRING ||
        f->element[2]->len != 1 || f->element[2]->str[0] != 'd' || f->element[3]->type != REDIS_REPLY_STRING)
        return NULL;
    *len = f->element[3]->len;
    return (unsigned char *)f->element[3]->str;
}

/* 1 if the task may be dropped because its job is over: an authenticated
 * end marker, or a task older than the retention time (its master died and
 * the descriptor expired); 0: hand it back; -1: Redis failed. */
static int job_over(worker *w, int qi, const char *id, uint64_t job, char *what, size_t n)
{
    int ended = rc_tombstone_check(w->conn, &w->ctx->keys, w->q[qi].name, job, 0, what, n);
    if (ended != 0)
        return ended;
    long long now = rc_wall_ms(), added = atoll(id); /* "ms-seq" */
    if (added > 0 && now - added > w->ctx->retention_ms) {
        snprintf(what, n, "queued %lld s ago, past the retention time: expired", (now - added) / 1000);
        return 1;
    }
    return 0;
}

static rc_status deliver(worker *w, int qi, const char *id, uint64_t job, const unsigned char *env, size_t len);

/* An XREADGROUP for new entries of some queues, kept whole so it can be
 * sent alone or ride behind a delivery in the same round trip. */
typedef struct read_cmd {
    const char *av[8 + 2 * MAX_QUEUES];
    int n;
    int qs[MAX_QUEUES], nqs;
    long long block_ms;
    char block[32], count[16];
} read_cmd;

/* The main thread is about to wait in Redis for work, up to block_ms: a
 * stop request, or the lease thread with a lapsed lease to take over
 * (idle_scan) or a changed key file, ends the wait; the command timeout
 * counts from the end of the block.  Returns the timeout to restore. */
static long long wait_begin(worker *w, long long block_ms)
{
    rc_conn *c = w->conn;
    long long saved = c->command_ms;
    if (c->command_ms > 0)
        c->command_ms += block_ms;
    c->cancel_fd = w->stop_fd;
    c->cancel_fd2 = w->wake_fd;
    pthread_mutex_lock(&w->mu);
    w->waiting = 1;
    pthread_mutex_unlock(&w->mu);
    return saved;
}

/* The wait is over, with status st.  A wake-up from the lease thread is no
 * error: the wait ends with no work (the dropped connection is reopened by
 * the next command) and the next take scans for lapsed leases. */
static rc_status wait_end(worker *w, long long saved, rc_status st)
{
    rc_conn *c = w->conn;
    c->command_ms = saved;
    c->cancel_fd = c->cancel_fd2 = -1;
    pthread_mutex_lock(&w->mu);
    w->waiting = 0;
    uint64_t n;
    int woken = w->poked && read(w->wake_fd, &n, sizeof n) == (ssize_t)sizeof n;
    w->poked = 0;
    pthread_mutex_unlock(&w->mu);
    if (woken && st == RC_ECANCELED && !interrupted(w))
        return RC_OK;
    return st;
}

/* Reload the key file if it changed (a wait for work may last
 * IDLE_SLICE_MS, so the lease thread watches it meanwhile: key_poke). */
static void key_check(worker *w, long long *last)
{
    *last = rc_now_ms();
    rc_ctx_reload_key(w->ctx);
}

/* block_ms < 0: do not block.  rc must not move afterwards (av points into it). */
static void read_cmd_init(const worker *w, read_cmd *rc, const int *qs, int nqs, long long block_ms)
{
    int n = 0;
    rc->nqs = nqs;
    rc->block_ms = block_ms;
    memcpy(rc->qs, qs, (size_t)nqs * sizeof *qs);
    snprintf(rc->count, sizeof rc->count, "%d", w->batch);
    rc->av[n++] = "XREADGROUP";
    rc->av[n++] = "GROUP";
    rc->av[n++] = RC_GROUP;
    rc->av[n++] = w->consumer;
    rc->av[n++] = "COUNT";
    rc->av[n++] = rc->count;
    if (block_ms >= 0) {
        snprintf(rc->block, sizeof rc->block, "%lld", block_ms);
        rc->av[n++] = "BLOCK";
        rc->av[n++] = rc->block;
    }
    rc->av[n++] = "STREAMS";
    for (int i = 0; i < nqs; i++)
        rc->av[n++] = w->q[qs[i]].kn.tasks;
    for (int i = 0; i < nqs; i++)
        rc->av[n++] = ">";
    rc->n = n;
}

/* What an XREADGROUP reply r (owned; freed unless handed on) gave:
 * [[stream, [entry, ...]], ...] or nil.  The first queue in rc's order with
 * entries wins; *reply then owns them. */
static void read_parse(worker *w, const read_cmd *rc, redisReply *r, redisReply **reply, redisReply ***ents,
                       size_t *nent, int *qi)
{
    if (r && r->type == REDIS_REPLY_ARRAY) {
        for (int x = 0; x < rc->nqs; x++)
            for (size_t k = 0; k < r->elements; k++) {
                int i = rc->qs[x];
                const redisReply *s = r->element[k];
                if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 && s->element[0]->type == REDIS_REPLY_STRING &&
                    s->element[0]->len == w->q[i].kn.tasks_len &&
                    memcmp(s->element[0]->str, w->q[i].kn.tasks, s->element[0]->len) == 0 &&
                    s->element[1]->type == REDIS_REPLY_ARRAY && s->element[1]->elements > 0) {
                    if (r->elements > 1)
                        rc_log(w->ctx, RC_LOG_WARN, "Redis handed out entries of several queues at once; those "
                                                    "of the others are redelivered after the lease");
                    *reply = r;
                    *ents = s->element[1]->element;
                    *nent = s->element[1]->elements > (size_t)MAXB ? (size_t)MAXB : s->element[1]->elements;
                    *qi = i;
                    return;
                }
            }
    }
    if (r)
        freeReplyObject(r);
}

/* The job's descriptor or result stream (`missing` says which) is gone.
 * Drop the task if the job is over, else hand it back (a master restores
 * keys deleted without the key). */
static rc_status orphaned(worker *w, int qi, const char *id, uint64_t job, uint64_t rank, const char *missing)
{
    char hex[17], what[120];
    rc_hex64(job, hex);
    int over = job_over(w, qi, id, job, what, sizeof what);
    if (over < 0)
        return RC_EREDIS;
    if (over) {
        rc_log(w->ctx, RC_LOG_INFO, "job %s is over (%s); dropping its task %llu", hex, what,
               (unsigned long long)rank);
        return deliver(w, qi, id, job, NULL, 0);
    }
    /* keep it for one more lease (not counted as an attempt): its master
       may restore the descriptor; if it never does, the task ages past the
       retention time and is dropped.  Not handed back at once, so leftovers
       of a dead master cannot crowd out live jobs. */
    rc_log(w->ctx, RC_LOG_WARN, "job %s's %s is missing without an authenticated end; leaving task %llu "
                                "for a lease for its master to restore", hex, missing, (unsigned long long)rank);
    rc_status st = handback_ex(w, w->conn, id, qi, job, rank, 1, "0");
    return is_nogroup(w->conn, st) ? st : RC_OK;
}

/* Forget entries that are acked (or given up): nothing left to renew. */
static void unbatch(worker *w, char (*ids)[ID_MAX], int n)
{
    pthread_mutex_lock(&w->mu);
    unbatch_locked(w, ids, n);
    pthread_mutex_unlock(&w->mu);
}

static void unbatch_locked(worker *w, char (*ids)[ID_MAX], int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(w->held, ids[i]) == 0)
            w->held[0] = '\0';
        for (int b = 0; b < w->nb; b++)
            if (strcmp(w->bids[b], ids[i]) == 0) {
                memmove(w->bids[b], w->bids[b + 1], (size_t)(w->nb - b - 1) * ID_MAX);
                w->nb--;
                break;
            }
    }
}

/* The EVALSHA of DELIVER into av/al (6 + 3n slots): KEYS the task stream,
 * then each entry's result stream (a plain ack names the task stream: every
 * key shares the slot); ARGV the group, then per entry its id and 'r' (its
 * result went in by XADD) or 'a' (a plain ack).  Returns the argument count. */
static int delivery_args(const wqueue *q, int n, char (*ids)[ID_MAX], char (*res)[320], const size_t *lens,
                         const char *sha, char *nk, size_t nklen, const char **av, size_t *al)
{
    int k = 0;
    snprintf(nk, nklen, "%d", 1 + n);
    av[k] = "EVALSHA"; al[k++] = 7;
    av[k] = sha; al[k++] = 40;
    av[k] = nk; al[k++] = strlen(nk);
    av[k] = q->kn.tasks; al[k++] = q->kn.tasks_len;
    for (int i = 0; i < n; i++) {
        av[k] = lens[i] ? res[i] : q->kn.tasks;
        al[k] = strlen(av[k]);
        k++;
    }
    av[k] = RC_GROUP; al[k++] = strlen(RC_GROUP);
    for (int i = 0; i < n; i++) {
        av[k] = ids[i]; al[k++] = strlen(ids[i]);
        av[k] = lens[i] ? "r" : "a"; al[k++] = 1;
    }
    return k;
}

/* The arguments of DELIVER_SMALL, laid out so that the script touches each
 * result once, in one unpack, instead of building tables entry by entry
 * (that Lua bookkeeping was two thirds of the script's time on a batch of
 * 64).  The entries are grouped by result stream - groups in order of first
 * appearance, plain acks last.  KEYS the task stream, then the m result
 * streams; ARGV group, sorted ('1': the ids below ascend, so the script may
 * search them), m, the m group sizes, the number of plain acks, the ids,
 * then 'e' and the envelope of each result.  av/al hold 8 + 5n slots;
 * returns the argument count, *ngroups m and gid[i] entry i's group (-1: a
 * plain ack). */
static int small_args(const wqueue *q, int n, char (*ids)[ID_MAX], char (*res)[320],
                      const unsigned char *const *envs, const size_t *lens, const char *sha, char (*num)[16],
                      const char **av, size_t *al, int *ngroups, int *gid)
{
    int m = 0, na = 0, first[MAXB], sizes[MAXB], order[MAXB], pos = 0;
    for (int i = 0; i < n; i++) {
        gid[i] = -1;
        if (!lens[i]) {
            na++;
            continue;
        }
        int g = 0;
        while (g < m && strcmp(res[first[g]], res[i]) != 0)
            g++;
        if (g == m) {
            first[m] = i;
            sizes[m++] = 0;
        }
        sizes[g]++;
        gid[i] = g;
    }
    for (int g = 0; g <= m; g++) /* group by group, then (g == m) the plain acks */
        for (int i = 0; i < n; i++)
            if (gid[i] == (g < m ? g : -1))
                order[pos++] = i;
    int sorted = 1;
    uint64_t pm = 0, ps = 0;
    for (int i = 0; i < n && sorted; i++) {
        uint64_t ms = 0, seq = 0;
        sorted = rc_stream_id_parse(ids[order[i]], strlen(ids[order[i]]), &ms, &seq) == 0 &&
                 (i == 0 || ms > pm || (ms == pm && seq > ps));
        pm = ms;
        ps = seq;
    }
    int k = 0;
    snprintf(num[0], sizeof num[0], "%d", 1 + m);
    snprintf(num[1], sizeof num[1], "%d", m);
    snprintf(num[2], sizeof num[2], "%d", na);
    av[k] = "EVALSHA"; al[k++] = 7;
    av[k] = sha; al[k++] = 40;
    av[k] = num[0]; al[k++] = strlen(num[0]);
    av[k] = q->kn.tasks; al[k++] = q->kn.tasks_len;
    for (int g = 0; g < m; g++) {
        av[k] = res[first[g]]; al[k++] = strlen(res[first[g]]);
    }
    av[k] = RC_GROUP; al[k++] = strlen(RC_GROUP);
    av[k] = sorted ? "1" : "0"; al[k++] = 1;
    av[k] = num[1]; al[k++] = strlen(num[1]);
    for (int g = 0; g < m; g++) {
        snprintf(num[3 + g], sizeof num[3 + g], "%d", sizes[g]);
        av[k] = num[3 + g]; al[k++] = strlen(num[3 + g]);
    }
    av[k] = num[2]; al[k++] = strlen(num[2]);
    for (int i = 0; i < n; i++) {
        av[k] = ids[order[i]]; al[k++] = strlen(ids[order[i]]);
    }
    for (int i = 0; i < n - na; i++) {
        av[k] = "e"; al[k++] = 1;
        av[k] = (const char *)envs[order[i]]; al[k++] = lens[order[i]];
    }
    *ngroups = m;
    return k;
}

/* The reply of the take `next` that rode with a delivery, into *next_reply
 * (left NULL if it failed or was woken: the delivery is in, and the
 * caller's own take meets the error, or the lost connection, again).  It
 * waits for work, so a stop request ends it.  `clean`: the delivery acked
 * every entry of the batch, which then needs no renewing while we wait (an
 * idle worker's lease thread scans for lapsed leases instead); else what
 * is left to do (a retry, entries to hand back) cannot wait for work to
 * come, so the wait ends at once unless the take's reply is already here. */
static void read_next_take(worker *w, const read_cmd *next, redisReply **next_reply, int clean)
{
    redisReply *t = NULL;
    pthread_mutex_lock(&w->mu);
    if (clean)
        w->nb = 0;
    else
        poke(w);
    pthread_mutex_unlock(&w->mu);
    long long saved = wait_begin(w, next->block_ms > 0 ? next->block_ms : 0);
    rc_status g = wait_end(w, saved, rc_conn_get(w->conn, &t));
    if (g == RC_OK && t)
        *next_reply = t;
    else if (t)
        freeReplyObject(t);
    if (!clean && g == RC_OK && !t) /* woken: what follows expects the connection the delivery used */
        (void)rc_conn_ensure(w->conn);
}

/* All n integers of array reply r are 1 (a delivery script's verdicts:
 * every result went in, every entry was acked). */
static int all_ones(const redisReply *r, size_t n)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER || r->element[i]->integer != 1)
            return 0;
    return 1;
}

/* DELIVER_SMALL's reply r (st: how it came; released here) into refused[]:
 * one verdict per result stream, gid[i] entry i's (1: its results went in
 * and were acked; plain acks, gid -1, always are). */
static rc_status small_verdicts(rc_conn *c, rc_status st, redisReply *r, int n, int m, const int *gid, int *refused)
{
    if (st == RC_OK && (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)m))
        st = RC_EPROTO;
    for (int g = 0; st == RC_OK && g < m; g++)
        if (r->element[g]->type != REDIS_REPLY_INTEGER)
            st = RC_EPROTO;
    for (int i = 0; st == RC_OK && i < n; i++)
        refused[i] = gid[i] >= 0 && r->element[gid[i]]->integer == 0;
    if (st == RC_EPROTO)
        snprintf(c->err, sizeof c->err, "unexpected reply from the delivery script");
    rc_conn_release(c, r);
    return st;
}

/* A delivery of small results: one EVALSHA of DELIVER_SMALL (and the next
 * take), the same semantics as the MULTI of deliver_trip.  On RC_OK
 * refused[i] says entry i was left alone because its result stream is gone. */
static rc_status deliver_small(worker *w, int qi, int n, char (*ids)[ID_MAX], char (*res)[320],
                               const unsigned char *const *envs, const size_t *lens, const read_cmd *next,
                               redisReply **next_reply, int *refused)
{
    wqueue *q = &w->q[qi];
    rc_conn *c = w->conn;
    rc_status st;
    const char *sha = rc_script_sha(c, RC_SCRIPT_DELIVER_SMALL, &st);
    if (!sha)
        return st;
    char num[3 + MAXB][16];
    const char *av[8 + 5 * MAXB];
    size_t al[8 + 5 * MAXB];
    int gid[MAXB], m;
    int k = small_args(q, n, ids, res, envs, lens, sha, num, av, al, &m, gid);
    if (m > 1)
        rc_log(w->ctx, RC_LOG_DEBUG, "one delivery carries the results of %d jobs", m);
    rc_pipe_reset(&w->pipe);
    (void)rc_pipe_cmd(&w->pipe, k, av, al);
    if (next)
        (void)rc_pipe_cmd(&w->pipe, next->n, next->av, NULL);
    if ((st = rc_conn_send(c, &w->pipe)) != RC_OK)
        return st;
    redisReply *r = NULL;
    st = rc_conn_get(c, &r);
    if (st == RC_EREDIS && !c->c)
        return st;
    if (next)
        read_next_take(w, next, next_reply, st == RC_OK && all_ones(r, (size_t)m));
    if (st == RC_EREDIS && r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* the server lost its scripts: nothing ran; rc_script loads and retries */
        freeReplyObject(r);
        r = NULL;
        c->sha[RC_SCRIPT_DELIVER_SMALL][0] = '\0';
        if (c->c)
            st = rc_script(c, RC_SCRIPT_DELIVER_SMALL, &r, 1 + m, k - 4 - m, av + 3, al + 3);
    }
    return small_verdicts(c, st, r, n, m, gid, refused);
}

/* The DELIVER script's array (one integer per entry, 0: its result stream
 * is gone and the entry was left alone) into refused[]; frees it. */
static rc_status verdicts(rc_conn *c, redisReply *r, int n, int *refused)
{
    rc_status st = r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)n ? RC_OK : RC_EPROTO;
    for (int i = 0; st == RC_OK && i < n; i++) {
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            st = RC_EPROTO;
        else
            refused[i] = r->element[i]->integer == 0;
    }
    if (st != RC_OK)
        snprintf(c->err, sizeof c->err, "unexpected reply from the delivery script");
    rc_conn_release(c, r);
    return st;
}

/* The MULTI of a delivery too large for DELIVER_SMALL into the worker's
 * pipe: an XADD ... NOMKSTREAM per result, DELIVER (its arguments in
 * av/al, 6 + 3n slots, kept for a NOSCRIPT retry), EXEC.  Returns the
 * number of XADDs. */
static int trip_pipe(worker *w, int qi, int n, char (*ids)[ID_MAX], char (*res)[320], const unsigned char *const *envs,
                     const size_t *lens, const char *sha, char *nk, size_t nklen, const char **av, size_t *al)
{
    rc_pipe *p = &w->pipe;
    int nx = 0;
    rc_pipe_reset(p);
    (void)rc_pipe_cmd(p, 1, (const char *[]){"MULTI"}, NULL);
    for (int i = 0; i < n; i++) {
        if (!lens[i])
            continue;
        const char *xa[] = {"XADD", res[i], "NOMKSTREAM", "*", "e", (const char *)envs[i]};
        size_t xl[] = {4, strlen(res[i]), 10, 1, 1, lens[i]};
        (void)rc_pipe_cmd(p, 6, xa, xl);
        nx++;
    }
    int k = delivery_args(&w->q[qi], n, ids, res, lens, sha, nk, nklen, av, al);
    (void)rc_pipe_cmd(p, k, av, al);
    (void)rc_pipe_cmd(p, 1, (const char *[]){"EXEC"}, NULL);
    return nx;
}

/* The nx + 3 replies of trip_pipe's MULTI, read with get (rc_conn_get,
 * or rc_conn_take_kept for a delivery in flight): +OK, +QUEUED per command
 * (an error there aborts the EXEC), the EXEC, whose reply goes to *exec.
 * Returns the first failure; with the connection gone (RC_EREDIS without
 * one, or RC_EAGAIN from a kept reply it lost), at once. */
static rc_status trip_read(rc_conn *c, int nx, rc_status (*get)(rc_conn *, redisReply **), redisReply **exec)
{
    rc_status first = RC_OK;
    *exec = NULL;
    for (int i = 0; i < nx + 3; i++) {
        redisReply *r = NULL;
        rc_status g = get(c, &r);
        if ((g == RC_EREDIS && !c->c) || g == RC_EAGAIN) {
            if (r) freeReplyObject(r);
            return g;
        }
        if (g != RC_OK && first == RC_OK)
            first = g;
        if (i == nx + 2)
            *exec = r;
        else if (r)
            freeReplyObject(r);
    }
    return first;
}

/* The EXEC of trip_pipe's MULTI (freed here; first: trip_read's status)
 * into refused[], one per entry: RC_OK, or why not - *noscript when the
 * server had lost DELIVER (the results went in; the acks did not). */
static rc_status trip_verdicts(rc_conn *c, rc_status first, redisReply *exec, int nx, int n, int *refused,
                               int *noscript)
{
    *noscript = 0;
    if (!exec || exec->type != REDIS_REPLY_ARRAY || exec->elements != (size_t)nx + 1) {
        if (exec && exec->type == REDIS_REPLY_ERROR)
            snprintf(c->err, sizeof c->err, "Redis refused the delivery: %.*s", (int)exec->len, exec->str);
        else if (first == RC_OK)
            snprintf(c->err, sizeof c->err, "unexpected reply to a delivery's EXEC");
        if (exec) freeReplyObject(exec);
        return first != RC_OK || exec ? RC_EREDIS : RC_EPROTO;
    }
    redisReply *ack = exec->element[nx];
    if (ack->type == REDIS_REPLY_ERROR && strncmp(ack->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(exec);
        c->sha[RC_SCRIPT_DELIVER][0] = '\0';
        *noscript = 1;
        return RC_EREDIS;
    }
    if (ack->type != REDIS_REPLY_ARRAY) {
        if (ack->type == REDIS_REPLY_ERROR)
            snprintf(c->err, sizeof c->err, "delivery script failed: %.*s", (int)ack->len, ack->str);
        else
            snprintf(c->err, sizeof c->err, "delivery script gave no array");
        freeReplyObject(exec);
        return RC_EREDIS;
    }
    /* keep the script's array, free the rest of the EXEC reply */
    exec->element[nx] = NULL;
    exec->elements = (size_t)nx;
    freeReplyObject(exec);
    return verdicts(c, ack, n, refused);
}

/* One delivery round trip: MULTI, an XADD ... NOMKSTREAM per result, the
 * DELIVER script (acks the entries whose result stream exists), EXEC, and
 * optionally the next take.  Results are referenced, not copied, on their
 * way to the socket.  On RC_OK refused[i] says entry i was left alone
 * because its result stream is gone. */
static rc_status deliver_trip(worker *w, int qi, int n, char (*ids)[ID_MAX], char (*res)[320],
                              const unsigned char *const *envs, const size_t *lens, const read_cmd *next,
                              redisReply **next_reply, int *refused)
{
    rc_conn *c = w->conn;
    rc_status st;
    if (fits_small(lens, n))
        return deliver_small(w, qi, n, ids, res, envs, lens, next, next_reply, refused);
    const char *sha = rc_script_sha(c, RC_SCRIPT_DELIVER, &st);
    if (!sha)
        return st;
    char nk[16];
    const char *av[6 + 3 * MAXB];
    size_t al[6 + 3 * MAXB];
    int nx = trip_pipe(w, qi, n, ids, res, envs, lens, sha, nk, sizeof nk, av, al);
    if (next)
        (void)rc_pipe_cmd(&w->pipe, next->n, next->av, NULL);
    if ((st = rc_conn_send(c, &w->pipe)) != RC_OK)
        return st;
    redisReply *exec = NULL;
    rc_status first = trip_read(c, nx, rc_conn_get, &exec);
    if (first == RC_EREDIS && !c->c)
        return first; /* connection gone: nothing more to read */
    if (next)
        read_next_take(w, next, next_reply,
                       first == RC_OK && exec && exec->type == REDIS_REPLY_ARRAY &&
                           exec->elements == (size_t)nx + 1 && all_ones(exec->element[nx], (size_t)n));
    int noscript;
    st = trip_verdicts(c, first, exec, nx, n, refused, &noscript);
    if (noscript) {
        /* the server lost its scripts (restart, SCRIPT FLUSH) after we
           loaded ours: the results went in; ack on their own */
        redisReply *r = NULL;
        st = rc_script(c, RC_SCRIPT_DELIVER, &r, 1 + n, 1 + 2 * n, av + 3, al + 3);
        if (st == RC_OK)
            return verdicts(c, r, n, refused);
        if (r) freeReplyObject(r);
    }
    return st;
}

/* Each entry's result stream name, into res (a batch is mostly one job's:
 * its name is made once). */
static void result_names(const wqueue *q, int n, const uint64_t *jobs, char (*res)[320])
{
    for (int i = 0; i < n; i++)
        if (i > 0 && jobs[i] == jobs[i - 1])
            memcpy(res[i], res[i - 1], strlen(res[i - 1]) + 1); /* not all 320: 80 KiB a full batch */
        else
            rc_job_keys(q->name, jobs[i], NULL, 0, res[i], sizeof res[i]);
}

/* A delivery went through: its entries need no renewing, and one whose
 * job's result stream is gone (refused: the job ended, or someone deleted
 * the stream) goes to orphaned(). */
static rc_status settle(worker *w, int qi, int n, char (*ids)[ID_MAX], const uint64_t *jobs,
                        const unsigned char *const *envs, const size_t *lens, const int *refused)
{
    rc_status st = RC_OK;
    unbatch(w, ids, n);
    for (int i = 0; i < n; i++)
        if (refused[i]) {
            rc_env claim;
            uint64_t rank = lens[i] && rc_wire_peek(envs[i], lens[i], &claim) == RC_OK ? claim.rank : 0;
            rc_status o = orphaned(w, qi, ids[i], jobs[i], rank, "result stream");
            if (o != RC_OK)
                st = o;
        }
    return st;
}

/* Deliver n results (or plain acks: len 0) of queue qi in one round trip;
 * with `next`, the next take rides along (*next_reply gets its reply, or
 * stays NULL). */
static rc_status deliver_many(worker *w, int qi, int n, char (*ids)[ID_MAX], const uint64_t *jobs,
                              const unsigned char *const *envs, const size_t *lens, int *refused_out,
                              const read_cmd *next, redisReply **next_reply)
{
    /* the worker's scratch: the nested deliver of orphaned() below reuses
       it, which is safe because nothing reads res after deliver_trip */
    char(*res)[320] = w->resname;
    result_names(&w->q[qi], n, jobs, res);
    long long backoff = 100;
    for (int tries = 0;; tries++) {
        int refused[MAXB] = {0};
        rc_status st = deliver_trip(w, qi, n, ids, res, envs, lens, tries == 0 ? next : NULL,
                                    tries == 0 ? next_reply : NULL, refused);
        if (st == RC_OK) {
            if (refused_out) { /* the caller decides */
                unbatch(w, ids, n);
                for (int i = 0; i < n; i++)
                    refused_out[i] = refused[i];
                return st;
            }
            return settle(w, qi, n, ids, jobs, envs, lens, refused);
        }
        if (is_nogroup(w->conn, st)) {
            unbatch(w, ids, n);
            return st;
        }
        if (st != RC_EREDIS || w->conn->c) {
            rc_log(w->ctx, RC_LOG_ERROR, "cannot deliver %d result(s) (first entry %s): %s", n, ids[0], w->conn->err);
            return st;
        }
        /* connection lost: the leases keep the tasks ours for a while, and if
           they lapse other workers run them; keep trying until stopped (a
           delivery that did land is harmless twice: the master keeps one
           result per task, and acking twice changes nothing) */
        if (!w->redis_down)
            rc_log(w->ctx, RC_LOG_WARN, "delivering %d result(s): %s; retrying", n, w->conn->err);
        w->redis_down = 1;
        if (w->ctx->interrupted >= 2)
            return st;
        /* a first stop request does not end this wait (the result is worth
           Redis coming back for), so it must not end the nap either: woken
           at once, a draining worker retried the connect in a tight loop,
           a core per worker for as long as Redis stayed down */
        nap_until(w, backoff, 2);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

static rc_status deliver(worker *w, int qi, const char *id, uint64_t job, const unsigned char *env, size_t len)
{
    char ids[1][ID_MAX];
    snprintf(ids[0], ID_MAX, "%s", id);
    const unsigned char *envs[1] = {env ? env : (const unsigned char *)""};
    return deliver_many(w, qi, 1, ids, &job, envs, &len, NULL, NULL, NULL);
}

/* A rejection notice: delivered if its job exists; RC_ENOTFOUND if not. */
static rc_status deliver_notice(worker *w, int qi, const char *id, uint64_t job, const unsigned char *env, size_t len)
{
    if (!len)
        return RC_ENOTFOUND;
    char ids[1][ID_MAX];
    snprintf(ids[0], ID_MAX, "%s", id);
    const unsigned char *envs[1] = {env};
    int refused = 0;
    rc_status st = deliver_many(w, qi, 1, ids, &job, envs, &len, &refused, NULL, NULL);
    return st == RC_OK && refused ? RC_ENOTFOUND : st;
}

/* Send everything in the outbox; with `next`, take the next entries in the
 * same round trip (*next_reply, NULL if that part failed or was not sent). */
static rc_status flush_take(worker *w, const read_cmd *next, redisReply **next_reply)
{
    int n = w->ob->n;
    if (!n)
        return RC_OK;
    const unsigned char *envs[MAXB];
    outbox_envs(w->ob, envs);
    rc_status st = deliver_many(w, w->ob->qi, n, w->ob->id, w->ob->job, envs, w->ob->len, NULL, next,
                                next_reply);
    w->ob->n = 0;
    w->ob->used = 0;
    return st;
}

static rc_status flush(worker *w) { return flush_take(w, NULL, NULL); }

/* Send the outbox's results without waiting for their verdicts, which are
 * read at the next batch's end (finish_flight) while that batch's kernels
 * run: with the next batch taken ahead (prefetch_worth), a worker then
 * waits for Redis between batches not at all.  The results go in as soon
 * as Redis reads them, as with any delivery; only the worker's knowledge
 * that they did comes a batch later.  One delivery at a time; 0: deliver
 * the usual way. */
static int deliver_async(worker *w)
{
    outbox *ob = w->ob;
    if (!ob->n || w->fly.ob)
        return 0;
    rc_conn *c = w->conn;
    rc_status st;
    int small = fits_small(ob->len, ob->n);
    const char *sha = rc_script_sha(c, small ? RC_SCRIPT_DELIVER_SMALL : RC_SCRIPT_DELIVER, &st);
    if (!sha)
        return 0;
    char(*res)[320] = w->resname;
    result_names(&w->q[ob->qi], ob->n, ob->job, res);
    const unsigned char *envs[MAXB];
    outbox_envs(ob, envs);
    char num[3 + MAXB][16], nk[16];
    const char *av[8 + 5 * MAXB];
    size_t al[8 + 5 * MAXB];
    int replies = 1;
    w->fly.nx = -1;
    if (small) {
        int k = small_args(&w->q[ob->qi], ob->n, ob->id, res, envs, ob->len, sha, num, av, al, &w->fly.m, w->fly.gid);
        rc_pipe_reset(&w->pipe);
        (void)rc_pipe_cmd(&w->pipe, k, av, al);
    } else {
        w->fly.nx = trip_pipe(w, ob->qi, ob->n, ob->id, res, envs, ob->len, sha, nk, sizeof nk, av, al);
        replies = w->fly.nx + 3;
    }
    if (rc_conn_keep_reserve(c, replies) != RC_OK || rc_conn_send(c, &w->pipe) != RC_OK)
        return 0; /* the usual way retries until Redis is back */
    rc_conn_keep_sent(c, replies);
    w->fly.ob = ob;
    w->ob = ob == &w->obx[0] ? &w->obx[1] : &w->obx[0];
    return 1;
}

/* The verdicts of the delivery in flight (deliver_async): every result
 * went in and its entry was acked (the common case), or some job's result
 * stream was gone (settle decides, as after any delivery).  A lost
 * connection, a server that lost its scripts or a reply that makes no
 * sense: the delivery is made again the usual way (deliver_many, which
 * waits for Redis to come back); what landed twice counts once, since the
 * master keeps one result per task and a second ack changes nothing. */
static rc_status finish_flight(worker *w)
{
    outbox *ob = w->fly.ob;
    if (!ob)
        return RC_OK;
    w->fly.ob = NULL;
    rc_conn *c = w->conn;
    int refused[MAXB] = {0};
    rc_status st;
    if (w->fly.nx >= 0) {
        redisReply *exec = NULL;
        rc_status first = trip_read(c, w->fly.nx, rc_conn_take_kept, &exec);
        int noscript;
        if ((first == RC_EREDIS && !c->c) || first == RC_EAGAIN) {
            if (exec) freeReplyObject(exec);
            st = first;
        } else {
            st = trip_verdicts(c, first, exec, w->fly.nx, ob->n, refused, &noscript);
        }
    } else {
        redisReply *r = NULL;
        st = rc_conn_take_kept(c, &r);
        if (st == RC_EREDIS && r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
            c->sha[RC_SCRIPT_DELIVER_SMALL][0] = '\0'; /* the retry loads it again */
        st = small_verdicts(c, st, r, ob->n, w->fly.m, w->fly.gid, refused);
    }
    const unsigned char *envs[MAXB];
    outbox_envs(ob, envs);
    if (st == RC_OK)
        st = settle(w, ob->qi, ob->n, ob->id, ob->job, envs, ob->len, refused);
    else
        st = deliver_many(w, ob->qi, ob->n, ob->id, ob->job, envs, ob->len, NULL, NULL, NULL);
    ob->n = 0;
    ob->used = 0;
    return st;
}

static rc_status ensure_res(worker *w, size_t n)
{
    if (n <= w->rescap)
        return RC_OK;
    unsigned char *p = realloc(w->res, n);
    if (!p)
        return RC_ENOMEM;
    w->res = p;
    w->rescap = n;
    return RC_OK;
}

/* Refuse an entry we cannot trust: report, delete, back off. */
static void refuse(worker *w, int qi, const char *id, const unsigned char *buf, size_t len, rc_status why_st,
                   const char *why)
{
    rc_ctx *ctx = w->ctx;
    const char *qname = w->q[qi].name;
    rc_env claim;
    int peek = buf && rc_wire_peek(buf, len, &claim) == RC_OK;
    char jobhex[17] = "?";
    if (peek)
        rc_hex64(claim.job, jobhex);
    w->auth_fails++;
    w->refused_n++;
    rc_log(ctx, RC_LOG_ERROR, "REFUSED entry %s of queue '%s' (claims job %s task %llu): %s: %s", id, qname,
           jobhex, peek ? (unsigned long long)claim.rank : 0ULL, rc_strerror(why_st), why);
    if (peek && claim.keyid != ctx->keys.keyid)
        rc_log(ctx, RC_LOG_ERROR, "this worker's key (id %08x) is not the key the master used (id %08x): "
                                  "check --key-file / REDCOLL_KEY_FILE; not running anything I cannot verify",
               ctx->keys.keyid, claim.keyid);
    size_t n = 0;
    if (peek) {
        size_t wl = strlen(why);
        rc_env e = {.kind = RC_KIND_REJECT, .job = claim.job, .rank = claim.rank, .ntasks = claim.ntasks,
                    .aux = w->wid, .status = (uint32_t)why_st, .payload = why, .payload_len = wl};
        n = rc_wire_size_env(&e);
        if (ensure_res(w, n) != RC_OK || rc_wire_encode(&e, &ctx->keys, qname, w->res, n) != RC_OK)
            n = 0;
    }
    /* a notice can only go to a job that exists; either way the entry goes:
       an unverifiable entry is never handed back (it would circle forever) */
    if (deliver_notice(w, qi, id, peek ? claim.job : 0, w->res, n) != RC_OK)
        (void)deliver(w, qi, id, 0, NULL, 0);
    /* Back off only when this worker's own key looks wrong: entries signed
       with another key and nothing ever verified here.  A worker that has
       verified work is right about its key; junk and forgeries (whatever key
       id they claim) are deleted without slowing it down, or an attacker
       could stall the pool by filling the queue with them. */
    int key_suspect = peek && claim.keyid != ctx->keys.keyid && !w->verified;
    if (!key_suspect)
        return;
    long long backoff = 250LL << (w->auth_fails - 1 < 5 ? w->auth_fails - 1 : 5);
    if (backoff > 8000)
        backoff = 8000;
    rc_log(ctx, RC_LOG_WARN, "%d refusal(s) in a row and nothing verified yet; backing off %lld ms", w->auth_fails,
           backoff);
    nap(w, backoff);
}

static job_cache *job_lookup(worker *w, int qi, uint64_t job, unsigned char *desc, size_t desc_len, int *gone,
                             char *why, size_t whylen, rc_status *st)
{
    rc_ctx *ctx = w->ctx;
    const char *qname = w->q[qi].name;
    *gone = 0;
    *st = RC_OK;
    job_cache *lru = &w->cache[0];
    for (int i = 0; i < JOB_CACHE; i++) {
        if (w->cache[i].valid && w->cache[i].job == job && w->cache[i].queue == qi) {
            w->cache[i].used = rc_now_ms();
            return &w->cache[i];
        }
        if (!w->cache[i].valid || w->cache[i].used < lru->used)
            lru = &w->cache[i];
    }
    rc_env e;
    redisReply *r = NULL;
    if (desc) { /* carried by the entry: the same checks as a descriptor read from its key */
        char why2[200];
        if (rc_wire_decode_max(desc, desc_len, &ctx->keys, qname, ctx->max_payload, &e, why2, sizeof why2) != RC_OK ||
            e.kind != RC_KIND_JOB || e.job != job) {
            rc_log(ctx, RC_LOG_WARN, "job descriptor in a task entry does not verify (%s); reading it from Redis",
                   why2);
            desc = NULL;
        }
    }
    if (!desc) {
        char meta[300];
        rc_job_keys(qname, job, meta, sizeof meta, NULL, 0);
        *st = rc_conn_cmdf(w->conn, &r, "GET %s", meta);
        if (*st != RC_OK) {
            snprintf(why, whylen, "%s", w->conn->err);
            if (r) freeReplyObject(r);
            return NULL;
        }
        if (r->type != REDIS_REPLY_STRING) {
            freeReplyObject(r);
            *gone = 1;
            return NULL;
        }
        *st = rc_wire_decode_max((unsigned char *)r->str, r->len, &ctx->keys, qname, ctx->max_payload, &e, why,
                                 whylen);
        if (*st == RC_OK && (e.kind != RC_KIND_JOB || e.job != job)) {
            snprintf(why, whylen, "job descriptor is authentic but not for this job (replayed?)");
            *st = RC_EAUTH;
        }
        if (*st != RC_OK) {
            freeReplyObject(r);
            return NULL;
        }
    }
    unsigned char *blob = malloc(e.payload_len ? (size_t)e.payload_len : 1);
    if (!blob) {
        if (r) freeReplyObject(r);
        snprintf(why, whylen, "out of memory for a %llu-byte broadcast", (unsigned long long)e.payload_len);
        *st = RC_ENOMEM;
        return NULL;
    }
    if (e.payload_len)
        memcpy(blob, e.payload, (size_t)e.payload_len);
    free(lru->blob);
    lru->blob = blob;
    lru->blob_len = (size_t)e.payload_len;
    lru->queue = qi;
    lru->job = job;
    lru->ntasks = e.ntasks;
    lru->seed = e.aux;
    lru->data = e.rank;
    memcpy(lru->kernel, e.kernel, e.kernel_len);
    lru->kernel[e.kernel_len] = '\0';
    lru->kernel_len = e.kernel_len;
    lru->used = rc_now_ms();
    lru->valid = 1;
    if (r) freeReplyObject(r);
    return lru;
}

static void list_kernels(const rc_ctx *ctx, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < ctx->nkernels && o + 1 < n; i++) {
        int k = snprintf(out + o, n - o, "%s%s", i ? ", " : "", ctx->kernels[i].name);
        if (k < 0)
            break;
        o += (size_t)k;
    }
    if (!ctx->nkernels)
        snprintf(out, n, "none");
}

/* The reason the previous attempt of a task failed, if one was recorded. */
/* Attempt records.  The delivery count of an entry is no evidence: anyone
 * with Redis access can raise it (XCLAIM under any name).  So a worker that
 * takes a task over records, MAC'd, how many take-over starts the task has
 * had and why the last attempt failed, in rc:{Q}:job:J:why field a:<rank>;
 * the next taker trusts only a record that verifies.  Starts by first
 * delivery are not recorded (the hot path pays nothing). */
static void attempt_read(worker *w, int qi, uint64_t job, uint64_t rank, uint64_t *starts, char *reason, size_t n)
{
    char meta[300], why[320], whyerr[200];
    rc_job_keys(w->q[qi].name, job, meta, sizeof meta, NULL, 0);
    snprintf(why, sizeof why, "%s:why", meta);
    *starts = 0;
    snprintf(reason, n, "its worker died, was killed or stalled past the lease");
    redisReply *r = NULL;
    if (rc_conn_cmdf(w->conn, &r, "HGET %s a:%llu", why, (unsigned long long)rank) == RC_OK &&
        r->type == REDIS_REPLY_STRING) {
        rc_env e;
        if (rc_wire_decode_max((unsigned char *)r->str, r->len, &w->ctx->keys, w->q[qi].name, 1024, &e, whyerr,
                               sizeof whyerr) == RC_OK &&
            e.kind == RC_KIND_CONTROL && e.job == job && e.rank == rank) {
            *starts = e.aux;
            if (e.payload_len)
                snprintf(reason, n, "%.*s", (int)e.payload_len, (const char *)e.payload);
        } else {
            rc_log(w->ctx, RC_LOG_WARN, "task %llu: ignoring an attempt record that does not verify (%s)",
                   (unsigned long long)rank, whyerr);
        }
    }
    if (r) freeReplyObject(r);
}

static void attempt_write(worker *w, int qi, uint64_t job, uint64_t rank, uint64_t starts, const char *reason)
{
    char meta[300], why[320], field[40], px[32];
    rc_job_keys(w->q[qi].name, job, meta, sizeof meta, NULL, 0);
    snprintf(why, sizeof why, "%s:why", meta);
    snprintf(field, sizeof field, "a:%llu", (unsigned long long)rank);
    snprintf(px, sizeof px, "%lld", w->ctx->retention_ms);
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 1000)
        rl = 1000;
    rc_env e = {.kind = RC_KIND_CONTROL, .job = job, .rank = rank, .aux = starts, .payload = reason,
                .payload_len = rl};
    unsigned char buf[RC_HDR_BYTES + RC_MAC_BYTES + 1024];
    size_t n = rc_wire_size_env(&e);
    if (n > sizeof buf || rc_wire_encode(&e, &w->ctx->keys, w->q[qi].name, buf, n) != RC_OK)
        return;
    redisReply *r = NULL;
    const char *av[] = {"HSET", why, field, (const char *)buf};
    size_t al[] = {4, strlen(why), strlen(field), n};
    (void)rc_conn_cmd(w->conn, &r, 4, av, al);
    if (r) freeReplyObject(r);
    r = NULL;
    (void)rc_conn_cmdf(w->conn, &r, "PEXPIRE %s %s", why, px);
    if (r) freeReplyObject(r);
}

static rc_status send_result(worker *w, int qi, const char *id, const rc_env *task, uint32_t attempt,
                             uint32_t status, const void *out, size_t outlen)
{
    if (status == RC_OK && outlen > w->ctx->max_payload) {
        char msg[200];
        snprintf(msg, sizeof msg, "kernel output of %zu bytes is over the %llu-byte limit (RC_OPT_MAX_PAYLOAD)",
                 outlen, w->ctx->max_payload);
        return send_result(w, qi, id, task, attempt, RC_EKERNEL, msg, strlen(msg));
    }
    rc_env r = {.kind = RC_KIND_RESULT, .job = task->job, .rank = task->rank, .ntasks = task->ntasks,
                .sealed = task->sealed,
                .aux = w->wid, .status = status, .attempt = attempt > 65535 ? 65535 : (uint16_t)attempt,
                .kernel = task->kernel, .kernel_len = task->kernel_len, .payload = out, .payload_len = outlen};
    size_t n = rc_wire_size_env(&r);
    rc_status st;
    if (w->ob->n == MAXB || (w->ob->n && w->ob->qi != qi) ||
        (w->ob->n && w->ob->used + n > BATCH_BYTES))
        if ((st = flush(w)) != RC_OK)
            return st;
    if (w->ob->used + n > w->ob->cap) {
        size_t cap = (w->ob->used + n) * 2;
        unsigned char *p = realloc(w->ob->buf, cap);
        if (!p) {
            rc_log(w->ctx, RC_LOG_ERROR, "out of memory for a %zu-byte result; leaving task %llu to another worker",
                   n, (unsigned long long)task->rank);
            return RC_OK;
        }
        w->ob->buf = p;
        w->ob->cap = cap;
    }
    int k = w->ob->n;
    if ((st = rc_wire_encode(&r, &w->ctx->keys, w->q[qi].name, w->ob->buf + w->ob->used, n)) != RC_OK)
        return st;
    w->ob->off[k] = w->ob->used;
    w->ob->len[k] = n;
    w->ob->job[k] = task->job;
    size_t il = strlen(id);
    if (il >= ID_MAX)
        il = ID_MAX - 1; /* ids were checked shorter when taken */
    memcpy(w->ob->id[k], id, il);
    w->ob->id[k][il] = '\0';
    w->ob->qi = qi;
    w->ob->used += n;
    w->ob->n++;
    w->batch_bytes += n;
    return RC_OK; /* sent at the end of the batch, with the next take */
}

/* Input of task `rank` from stored data `data`: the cache, else Redis.
 * Returns NULL with *st and why set on failure (RC_ENOTFOUND: released). */
static const chunk *data_chunk(worker *w, int qi, uint64_t data, uint64_t rank, rc_status *st, char *why, size_t n)
{
    chunk *free_slot = NULL, *lru = NULL;
    long long now = rc_now_ms();
    for (int i = 0; i < CHUNK_SLOTS; i++) {
        chunk *c = &w->chunks[i];
        if (c->bytes && c->data == data && c->rank == rank && c->queue == qi) {
            c->used = now;
            return c;
        }
        if (!c->bytes && !free_slot)
            free_slot = c;
        if (c->bytes && (!lru || c->used < lru->used))
            lru = c;
    }
    char key[320], field[32], hex[17];
    rc_hex64(data, hex);
    snprintf(key, sizeof key, "rc:{%s}:data:%s", w->q[qi].name, hex);
    snprintf(field, sizeof field, "%llu", (unsigned long long)rank);
    redisReply *r = NULL;
    *st = rc_conn_cmdf(w->conn, &r, "HGET %s %s", key, field);
    if (*st != RC_OK) {
        snprintf(why, n, "%s", w->conn->err);
        if (r) freeReplyObject(r);
        return NULL;
    }
    if (r->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        snprintf(why, n, "stored data %s has no chunk %llu (released or expired)", hex, (unsigned long long)rank);
        *st = RC_ENOTFOUND;
        return NULL;
    }
    rc_env e;
    *st = rc_wire_decode_max((unsigned char *)r->str, r->len, &w->ctx->keys, w->q[qi].name, w->ctx->max_payload, &e,
                             why, n);
    if (*st == RC_OK && (e.kind != RC_KIND_DATA || e.job != data || e.rank != rank)) {
        snprintf(why, n, "authentic data chunk, but not chunk %llu of data %s (spliced?)", (unsigned long long)rank,
                 hex);
        *st = RC_EAUTH;
    }
    if (*st != RC_OK) {
        freeReplyObject(r);
        return NULL;
    }
    /* room: evict least recently used chunks beyond the budget or slots */
    while (lru && (w->chunk_bytes + e.payload_len > CHUNK_BUDGET || !free_slot)) {
        w->chunk_bytes -= lru->len;
        free(lru->bytes);
        lru->bytes = NULL;
        free_slot = lru;
        lru = NULL;
        for (int i = 0; i < CHUNK_SLOTS; i++)
            if (w->chunks[i].bytes && (!lru || w->chunks[i].used < lru->used))
                lru = &w->chunks[i];
    }
    chunk *c = free_slot;
    c->bytes = malloc(e.payload_len ? (size_t)e.payload_len : 1);
    if (!c->bytes) {
        freeReplyObject(r);
        snprintf(why, n, "out of memory for a %llu-byte chunk", (unsigned long long)e.payload_len);
        *st = RC_ENOMEM;
        return NULL;
    }
    if (e.payload_len)
        memcpy(c->bytes, e.payload, (size_t)e.payload_len);
    c->len = (size_t)e.payload_len;
    c->queue = qi;
    c->data = data;
    c->rank = rank;
    c->used = now;
    w->chunk_bytes += c->len;
    freeReplyObject(r);
    return c;
}

/* Run one entry (attempt number `attempt`) and deliver its result. */
static rc_status run_entry(worker *w, int qi, const char *id, unsigned char *buf, size_t len, unsigned char *desc,
                           size_t desc_len, long long attempt)
{
    rc_ctx *ctx = w->ctx;
    const char *qname = w->q[qi].name;
    rc_env e;
    char why[300];
    /* decoding may decrypt the payload in place; the header stays readable
       for refuse() */
    rc_status st = rc_wire_decode_max(buf, len, &ctx->keys, qname, ctx->max_payload, &e, why, sizeof why);
    if (st == RC_OK && e.kind != RC_KIND_TASK) {
        snprintf(why, sizeof why, "authentic envelope of kind %u in the task stream (replayed?)", e.kind);
        st = RC_EAUTH;
    }
    if (st != RC_OK) {
        refuse(w, qi, id, buf, len, st, why);
        return RC_OK;
    }
    int gone;
    /* a descriptor carried by an entry older than the retention time may
       outlive its key: such a task is dropped (job_over), never run */
    if (desc && rc_wall_ms() - atoll(id) > ctx->retention_ms)
        desc = NULL;
    job_cache *jc = job_lookup(w, qi, e.job, desc, desc_len, &gone, why, sizeof why, &st);
    if (!jc && gone)
        return orphaned(w, qi, id, e.job, e.rank, "descriptor");
    if (!jc) {
        if (st == RC_EREDIS)
            return st;
        refuse(w, qi, id, buf, len, st, why);
        return RC_OK;
    }
    if (jc->ntasks != e.ntasks || e.rank >= e.ntasks || jc->kernel_len != e.kernel_len ||
        memcmp(jc->kernel, e.kernel, e.kernel_len) != 0) {
        refuse(w, qi, id, buf, len, RC_EAUTH, "task does not match its job descriptor (spliced?)");
        return RC_OK;
    }
    w->auth_fails = 0;
    w->verified = 1;
    set_held(w, id, qi, e.job, e.rank);

    char msg[700];
    uint64_t starts = 0; /* recorded take-over starts before this one */
    if (attempt > 1) {
        /* taken over: count only verified starts, not the delivery count */
        char reason[420];
        attempt_read(w, qi, e.job, e.rank, &starts, reason, sizeof reason);
        attempt = 2 + (long long)starts;
        if (attempt > ctx->max_attempts) {
            /* poison: started max_attempts times already and never finished */
            snprintf(msg, sizeof msg, "given up after %lld attempt(s) (--max-attempts %d); last: %s", attempt - 1,
                     ctx->max_attempts, reason);
            rc_log(ctx, RC_LOG_ERROR, "task %llu: %s", (unsigned long long)e.rank, msg);
            return send_result(w, qi, id, &e, (uint32_t)attempt, RC_EKERNEL, msg, strlen(msg));
        }
        attempt_write(w, qi, e.job, e.rank, ++starts, NULL);
    }

    rc_task *t = &w->task;
    t->rank = e.rank;
    t->ntasks = e.ntasks;
    t->seed = jc->seed;
    t->job = e.job;
    t->threads = ctx->threads;
    t->input = e.payload;
    t->input_len = (size_t)e.payload_len;
    if (jc->data) {
        const chunk *c = data_chunk(w, qi, jc->data, e.rank, &st, why, sizeof why);
        if (!c && st == RC_EREDIS)
            return st;
        if (!c && st == RC_EAUTH) {
            refuse(w, qi, id, buf, len, st, why);
            return RC_OK;
        }
        if (!c) { /* released or out of memory: the task cannot run */
            rc_log(ctx, RC_LOG_ERROR, "task %llu: %s", (unsigned long long)e.rank, why);
            return send_result(w, qi, id, &e, (uint32_t)attempt, RC_EKERNEL, why, strlen(why));
        }
        t->input = c->bytes;
        t->input_len = c->len;
    }
    t->bcast = jc->blob;
    t->bcast_len = jc->blob_len;
    t->out_len = 0;
    t->failed = 0;
    t->err[0] = '\0';

    const rc_kernel_entry *k = rc_kernel_find(ctx, e.kernel, e.kernel_len);
    if (!k) {
        char names[300];
        list_kernels(ctx, names, sizeof names);
        snprintf(msg, sizeof msg, "kernel '%.*s' is not registered on worker %s/%ld (it has: %s)",
                 (int)e.kernel_len, e.kernel, ctx->host, (long)getpid(), names);
        rc_log(ctx, RC_LOG_ERROR, "%s", msg);
        return send_result(w, qi, id, &e, (uint32_t)attempt, RC_ENOKERNEL, msg, strlen(msg));
    }
    w->sized_job = e.job;
    memcpy(w->sized_kernel, e.kernel, e.kernel_len);
    w->sized_kernel_len = e.kernel_len;
    long long k0 = rc_now_us();
    int rv = k->fn(t, k->user);
    w->kern_us += rc_now_us() - k0;
    w->kern_n++;
    pthread_mutex_lock(&w->mu);
    int handed_back = w->handed_back;
    pthread_mutex_unlock(&w->mu);
    if (handed_back) /* the lease thread gave it away: another worker delivers */
        return RC_OK;
    if (rv != 0 || t->failed) {
        snprintf(msg, sizeof msg, "kernel '%s' failed on %s/%ld (attempt %lld of %d): %s", k->name, ctx->host,
                 (long)getpid(), attempt, ctx->max_attempts,
                 t->err[0] ? t->err : "returned an error without a message");
        rc_log(ctx, RC_LOG_WARN, "task %llu: %s", (unsigned long long)e.rank, msg);
        if (attempt < ctx->max_attempts) {
            /* let another worker (or this one) try again; the reason stays */
            attempt_write(w, qi, e.job, e.rank, starts, msg);
            st = handback(w, w->conn, id, qi, e.job, e.rank);
            return is_nogroup(w->conn, st) ? st : RC_OK;
        }
        return send_result(w, qi, id, &e, (uint32_t)attempt, RC_EKERNEL, msg, strlen(msg));
    }
    st = send_result(w, qi, id, &e, (uint32_t)attempt, RC_OK, t->out, t->out_len);
    if (st == RC_OK) {
        pthread_mutex_lock(&w->mu);
        w->done++;
        pthread_mutex_unlock(&w->mu);
    }
    return st;
}

/* How long an idle worker's take blocks: RC_OPT_POLL_MS, or by default
 * IDLE_SLICE_MS, but no longer than its linger time has left.  Nothing
 * needs the main thread of an idle worker before work comes: new entries
 * wake it, so does a stop request, and the lease thread looks for lapsed
 * leases at its beats (idle_scan) and wakes it when there is one to take
 * over.  Each wake costs Redis a command or two and the host a process
 * wake-up: at 256 idle workers on one host, 200 ms slices cost 7% of a
 * Redis core and 18% of a CPU; 1 s slices, each with its own scan, 4.1%
 * and 13% (1200 wake-ups a second); with the scans in the lease threads'
 * beats, 2.1% and 8% (480).  The slice only bounds how long a silently
 * dead connection goes unnoticed (its timeout counts from the end of the
 * block); a task Redis hands to it meanwhile lapses and the lease thread's
 * scan has it taken over (resilience.idle_dead_connection). */
#define IDLE_SLICE_MS 30000
static long long idle_slice(const worker *w)
{
    const rc_ctx *ctx = w->ctx;
    long long ms = ctx->poll_ms > 0 ? ctx->poll_ms : IDLE_SLICE_MS;
    if (ctx->linger_ms > 0) {
        long long left = ctx->linger_ms - (rc_now_ms() - w->idle_since);
        if (left < ms)
            ms = left < 1 ? 1 : left;
    }
    return ms;
}

/* A lapsed lease of queue q, claimed, with its attempt number; or none. */
static rc_status take_over(worker *w, wqueue *q, redisReply **reply, const redisReply **entry, long long *attempt)
{
    rc_ctx *ctx = w->ctx;
    char lease[32], period[32];
    snprintf(lease, sizeof lease, "%lld", ctx->lease_ms);
    snprintf(period, sizeof period, "%lld", reclaim_period(ctx));
    const char *av[] = {q->kn.tasks, q->nolapsed, RC_GROUP, w->consumer, lease, period};
    redisReply *r = NULL;
    rc_status st = rc_script(w->conn, RC_SCRIPT_TAKEOVER, &r, 2, 4, av, NULL);
    if (st != RC_OK) {
        if (r) freeReplyObject(r);
        return st;
    }
    /* {entry or nil, attempt number} */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_ARRAY) {
        *reply = r;
        *entry = r->element[0];
        /* 1: an entry handed back unstarted (no attempt yet) */
        *attempt = r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0 ? r->element[1]->integer : 2;
        return RC_OK;
    }
    freeReplyObject(r);
    return RC_OK;
}

/* XREADGROUP over queues qs; block_ms < 0: do not block. */
static rc_status read_new(worker *w, const int *qs, int nqs, long long block_ms, redisReply **reply,
                          redisReply ***ents, size_t *nent, int *qi)
{
    read_cmd rc;
    read_cmd_init(w, &rc, qs, nqs, block_ms);
    redisReply *r = NULL;
    rc_status st;
    if (block_ms > 0) { /* waiting for work: a stop request or the lease thread ends it */
        long long saved = wait_begin(w, block_ms);
        st = wait_end(w, saved, rc_conn_cmd(w->conn, &r, rc.n, rc.av, NULL));
    } else
        st = rc_conn_cmd(w->conn, &r, rc.n, rc.av, NULL);
    if (st != RC_OK) {
        if (r) freeReplyObject(r);
        return st;
    }
    read_parse(w, &rc, r, reply, ents, nent, qi);
    return RC_OK;
}

/* Take entries: one lapsed lease first, else up to w->batch new entries of
 * the first queue (in priority order) that has some.  *reply owns them; *qi
 * says from which queue. */
static rc_status take(worker *w, redisReply **reply, redisReply ***ents, size_t *nent, int *qi, long long *attempt)
{
    rc_ctx *ctx = w->ctx;
    const redisReply *one = NULL;
    *reply = NULL;
    *ents = NULL;
    *nent = 0;
    *attempt = 1;
    long long now = rc_now_ms(), every = reclaim_period(ctx);
    int scan_now = take_flag(w, &w->scan_now); /* the lease thread saw a lapsed lease */
    for (int i = 0; i < w->nq; i++) {
        wqueue *q = &w->q[i];
        if (q->removed || (now - q->last_reclaim < every && !scan_now))
            continue;
        rc_status st = take_over(w, q, reply, &one, attempt);
        if (st != RC_OK) {
            *qi = i;
            return st;
        }
        if (one) { /* look again at once next time: a dead worker may have left several */
            *ents = &(*reply)->element[0];
            *nent = 1;
            *qi = i;
            if (*attempt > 1)
                rc_log(ctx, RC_LOG_INFO, "took over a task of queue '%s' (attempt %lld): its lease of %lld ms lapsed",
                       q->name, *attempt, ctx->lease_ms);
            else
                rc_log(ctx, RC_LOG_DEBUG, "took a task of queue '%s' another worker handed back unstarted", q->name);
            return RC_OK;
        }
        q->last_reclaim = now;
    }
    int live[MAX_QUEUES], nl = 0;
    for (int i = 0; i < w->nq; i++)
        if (!w->q[i].removed)
            live[nl++] = i;
    if (nl > 1) { /* priority: the first queue with work wins */
        for (int x = 0; x < nl; x++) {
            rc_status st = read_new(w, &live[x], 1, -1, reply, ents, nent, qi);
            if (st != RC_OK || *nent) {
                if (st != RC_OK) *qi = live[x];
                return st;
            }
        }
    }
    /* block on all live queues for one poll slice */
    rc_status st = read_new(w, live, nl, idle_slice(w), reply, ents, nent, qi);
    if (st != RC_OK) {
        *qi = live[0];
        if (nl > 1) /* which stream is gone? the error does not say */
            for (int x = 0; x < nl; x++) {
                redisReply *p = NULL;
                rc_status ps = rc_conn_cmdf(w->conn, &p, "XINFO GROUPS %s", w->q[live[x]].kn.tasks);
                if (p) freeReplyObject(p);
                if (ps != RC_OK) {
                    *qi = live[x];
                    break;
                }
            }
    }
    return st;
}

/* Is entry id ms-seq newer than any a take of ours returned from q? */
static int unseen(const wqueue *q, uint64_t ms, uint64_t seq)
{
    return ms > q->seen_ms || (ms == q->seen_ms && seq > q->seen_seq);
}

/* A take returns entries in id order; the newest a queue ever gave us. */
static void saw(wqueue *q, const char *id)
{
    uint64_t ms, seq;
    if (rc_stream_id_parse(id, strlen(id), &ms, &seq) == 0 && unseen(q, ms, seq)) {
        q->seen_ms = ms;
        q->seen_seq = seq;
    }
}

/* Entries pending under our name that no reply of ours ever carried: a
 * take whose reply we never read (a stop request dropped the connection
 * while Redis was serving it, or the connection broke on the way).  They
 * are newer than anything we saw - a take hands out only entries newer
 * than the group's last-delivered one, which is at least our newest - and
 * never started, so they go back now, no attempt counted, instead of
 * waiting out a lease.  Older pending entries of ours (parked for a
 * missing descriptor, handed back after a kernel error) keep their count. */
static void give_back_unseen(worker *w, int qi, const redisReply *pend)
{
    wqueue *q = &w->q[qi];
    int n = 0;
    for (size_t i = 0; i < pend->elements; i++) {
        const redisReply *e = pend->element[i];
        uint64_t ms, seq;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 || e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[0]->len >= ID_MAX ||
            rc_stream_id_parse(e->element[0]->str, e->element[0]->len, &ms, &seq) != 0 || !unseen(q, ms, seq))
            continue;
        if (hand_back_free(w, w->conn, e->element[0]->str, qi) == RC_OK)
            n++;
    }
    if (n)
        rc_log(w->ctx, RC_LOG_INFO, "handed back %d entr%s of queue '%s' taken for us by a read whose reply we never "
                                    "saw", n, n == 1 ? "y" : "ies", q->name);
}

static void unregister(worker *w)
{
    for (int i = 0; i < w->nq; i++) {
        wqueue *q = &w->q[i];
        redisReply *r = NULL;
        (void)rc_conn_cmdf(w->conn, &r, "DEL %s", q->info);
        if (r) freeReplyObject(r);
        r = NULL;
        (void)rc_conn_cmdf(w->conn, &r, "ZREM %s %s", q->reg, w->consumer);
        if (r) freeReplyObject(r);
        if (q->removed)
            continue;
        /* forget our consumer name only if it holds nothing: DELCONSUMER
           drops its pending entries, which would then never be redelivered */
        r = NULL;
        int holds_none = 0;
        if (rc_conn_cmdf(w->conn, &r, "XPENDING %s %s - + %d %s", q->kn.tasks, RC_GROUP, MAXB, w->consumer) == RC_OK &&
            r->type == REDIS_REPLY_ARRAY) {
            holds_none = r->elements == 0;
            if (!holds_none)
                give_back_unseen(w, i, r); /* still ours, but claimable by anyone now */
        }
        if (r) freeReplyObject(r);
        r = NULL;
        if (holds_none)
            (void)rc_conn_cmdf(w->conn, &r, "XGROUP DELCONSUMER %s %s %s", q->kn.tasks, RC_GROUP, w->consumer);
        if (r) freeReplyObject(r);
    }
}

static int live_queues(const worker *w)
{
    int n = 0;
    for (int i = 0; i < w->nq; i++)
        n += !w->q[i].removed;
    return n;
}

/* Would our next take be a plain read of queue qi, our one live queue, with
 * no lapsed-lease scan due?  Only such a take may go early: with the
 * delivery, or as a batch starts (prefetch_worth). */
static int plain_next_take(const worker *w, int qi)
{
    return live_queues(w) == 1 && !w->q[qi].removed &&
           rc_now_ms() - w->q[qi].last_reclaim < reclaim_period(w->ctx);
}

/* The task stream of queue qi vanished.  Only an authenticated removal
 * makes us stop serving it; anything else (a flush, a restart without
 * persistence, someone without the key deleting it) and we recreate it.
 * Returns 1 when no queue is left to serve. */
static int queue_gone(worker *w, int qi)
{
    wqueue *q = &w->q[qi];
    char what[96] = "";
    int removed = rc_tombstone_check(w->conn, &w->ctx->keys, q->name, 0, w->started_ms, what, sizeof what);
    if (removed == 1) {
        rc_log(w->ctx, RC_LOG_WARN, "queue '%s' was removed (authenticated): no longer serving it", q->name);
        q->removed = 1;
    } else if (removed < 0) {
        /* not known: recreating the stream now would bring a removed queue
           back for good (no later take meets NOGROUP again), so look again */
        rc_log(w->ctx, RC_LOG_WARN, "the task stream of queue '%s' is gone and its removal marker cannot be read "
                                    "(%s): checking again", q->name, w->conn->err);
        nap(w, 200);
    } else {
        rc_log(w->ctx, RC_LOG_WARN, "the task stream of queue '%s' vanished without an authenticated removal "
                                    "(%s; a flush, a restart without persistence, or tampering): recreating it",
               q->name, what);
        q->have_group = 0;
        nap(w, 200);
    }
    return !live_queues(w);
}

static rc_status setup_queues(worker *w)
{
    rc_ctx *ctx = w->ctx;
    const char *s = ctx->queue;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (w->nq == MAX_QUEUES)
            return rc_seterr(ctx, RC_EINVAL, "a worker serves at most %d queues", MAX_QUEUES);
        wqueue *q = &w->q[w->nq++];
        char name[201];
        snprintf(name, sizeof name, "%.*s", (int)n, s);
        memcpy(q->name, name, sizeof name);
        rc_keys_for_queue(name, &q->kn);
        snprintf(q->reg, sizeof q->reg, "rc:{%s}:workers", name);
        snprintf(q->info, sizeof q->info, "rc:{%s}:worker:%s", name, w->consumer);
        snprintf(q->nolapsed, sizeof q->nolapsed, "rc:{%s}:nolapsed", name);
        s += n + (comma ? 1 : 0);
    }
    return RC_OK;
}

/* Whether to send the next take now, as this batch of nent entries
 * starts, rather than with its delivery.  The next batch is then in hand
 * when this one ends, and this one's delivery goes without waiting for
 * its verdicts (deliver_async): no round trip to Redis separates the two
 * batches, where one did with the worker idle (with tasks of 0.5-2 ms,
 * one or two workers spent 0.82-0.87 of their time in kernels, 0.88-0.94
 * now: BENCHMARKS.md §1, fifteenth session; on a fleet the gap is the
 * network's round trip).  Only
 * - for a batch expected to run PREFETCH_MIN_US or more (a shorter one
 *   ends before the reply comes: two writes for one round trip), and at
 *   most an eighth of a lease: the prefetched entries are pending under
 *   our name before we know their ids, so the lease thread cannot renew
 *   them, and prefetch_end gives back any older than half a lease;
 * - where the next take would ride with the delivery anyway (one live
 *   queue, no lapsed-lease scan due);
 * - away from the job's end: with fewer than two of the pool's rounds of
 *   batches left, a prefetched batch could wait behind this one while
 *   another worker idles (a job of W tasks on W workers would run two of
 *   them one after the other).  The rank and task count come from the
 *   last entry's envelope before its MAC is checked: a forged one can
 *   only turn prefetching on or off.
 * With RC_OPT_MAX_BATCH 1 the caller asked for one task per take: none. */
static int prefetch_worth(worker *w, int qi, redisReply **ents, size_t nent)
{
    const rc_ctx *ctx = w->ctx;
    if (!ctx->prefetch || ctx->max_batch <= 1 || !nent || w->avg_us <= 0 || interrupted(w))
        return 0;
    double est = w->avg_us * (double)nent;
    if (est < PREFETCH_MIN_US || est > (double)ctx->lease_ms * 1000.0 / 8)
        return 0;
    if (!plain_next_take(w, qi))
        return 0;
    rc_env e;
    unsigned char *buf;
    size_t len;
    char id[ID_MAX];
    if (entry_parts(ents[nent - 1], id, &buf, &len) != 0 || !buf || rc_wire_peek(buf, len, &e) != RC_OK ||
        e.rank >= e.ntasks)
        return 0;
    pthread_mutex_lock(&w->mu);
    int pool = w->q[qi].pool;
    pthread_mutex_unlock(&w->mu);
    uint64_t left = e.ntasks - 1 - e.rank; /* after this batch, if tasks go out in rank order */
    return pool > 0 && w->batch > 0 && left / 2 / (uint64_t)pool >= (uint64_t)w->batch;
}

/* The batch is over: the prefetched take's reply (cmd, sent at sent_ms)
 * is the next batch, or NULL if it brought nothing (the next take waits
 * for work as usual).  Its entries go back untouched, no attempt counted,
 * if !keep - the batch was cut short (a stop request, tasks running far
 * longer than it was sized for, an error), so they were taken for tasks
 * as short as the last - or if it went more than half a lease ago, since
 * nobody renewed them: another worker may have taken them over. */
static redisReply *prefetch_end(worker *w, const read_cmd *cmd, long long sent_ms, int keep)
{
    redisReply *t = NULL;
    if (rc_conn_take_kept(w->conn, &t) != RC_OK) {
        /* lost with the connection (its entries, if any, lapse after a
           lease, or our unregister gives them back: no reply of ours
           carried them), or refused (the next take meets the error again) */
        if (t) freeReplyObject(t);
        return NULL;
    }
    redisReply *r = NULL, **ents = NULL;
    size_t n = 0;
    int qi = 0;
    read_parse(w, cmd, t, &r, &ents, &n, &qi); /* frees t if it brought nothing */
    if (!r)
        return NULL;
    if (keep && rc_now_ms() - sent_ms <= w->ctx->lease_ms / 2)
        return r;
    hand_back_unstarted(w, qi, ents, 0, n);
    rc_log(w->ctx, RC_LOG_DEBUG, "handed back %zu prefetched task(s): %s", n,
           keep ? "taken more than half a lease ago" : "the batch before them was cut short");
    freeReplyObject(r);
    return NULL;
}

rc_status rc_worker_run(rc_ctx *ctx)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    rc_status st = rc_ctx_ensure_key(ctx);
    if (st != RC_OK)
        return st;
    if (!ctx->nkernels)
        return rc_seterr(ctx, RC_EINVAL, "no kernels registered: a worker could run nothing");
    rc_url u;
    if ((st = rc_ctx_url(ctx, &u)) != RC_OK)
        return st;
    worker *w = calloc(1, sizeof *w);
    if (!w)
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    w->ctx = ctx;
    w->sched_fd = -1;
    w->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->tick_fd < 0) {
        int e = errno;
        free(w);
        return rc_seterr(ctx, RC_EIO, "cannot create the lease thread's timer: %s", strerror(e));
    }
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        int e = errno;
        close(w->tick_fd);
        free(w);
        return rc_seterr(ctx, RC_EIO, "cannot create the lease thread's wake-up: %s", strerror(e));
    }
    w->conn = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms);
    if (!w->conn) {
        close(w->tick_fd);
        close(w->wake_fd);
        free(w);
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    w->conn->peek_after_quiet = 1; /* the loop retries a command that meets a dead socket */
    rc_random_u64(&w->wid);
    if (!w->wid)
        w->wid = 1;
    char hex[17];
    rc_hex64(w->wid, hex);
    snprintf(w->consumer, sizeof w->consumer, "%s:%ld:%s", ctx->host, (long)getpid(), hex);
    w->started_ms = rc_wall_ms(); /* the clock removal markers are stamped with (rc_tombstone_check) */
    pthread_mutex_init(&w->mu, NULL);
    w->batch = 1;
    w->ob = &w->obx[0];
    w->sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC); /* -1: kernel_time guesses */
    w->stop_fd = rc_ctx_stop_fd(ctx);
    if ((st = setup_queues(w)) != RC_OK)
        goto out;

    long long backoff = 100;
    w->idle_since = rc_now_ms();
    if (ctx->keyfile && !(w->keypath = strdup(ctx->keyfile))) { /* the lease thread's copy */
        st = rc_seterr(ctx, RC_ENOMEM, "out of memory");
        goto out;
    }
    if (pthread_create(&w->hb, NULL, lease_thread, w) != 0) {
        st = rc_seterr(ctx, RC_EIO, "cannot start the lease thread");
        goto out;
    }
    w->hb_started = 1;
    rc_log(ctx, RC_LOG_INFO, "worker %s serving queue(s) '%s' (key id %08x, %d thread(s) per task)", w->consumer,
           ctx->queue, ctx->keys.keyid, ctx->threads);
    long long last_keycheck = rc_now_ms();
    redisReply *pre = NULL; /* entries taken with the last delivery */
    read_cmd pre_cmd;
    while (!interrupted(w)) {
        if (ctx->linger_ms > 0 && rc_now_ms() - w->idle_since >= ctx->linger_ms) {
            rc_log(ctx, RC_LOG_INFO, "idle for %lld ms (linger): exiting", ctx->linger_ms);
            break;
        }
        for (int i = 0; i < w->nq && st == RC_OK; i++)
            if (!w->q[i].have_group && !w->q[i].removed) {
                st = rc_queue_ensure_group(w->conn, &w->q[i].kn);
                w->q[i].have_group = st == RC_OK;
            }
        redisReply *r = NULL, **ents = NULL;
        size_t nent = 0;
        int qi = 0;
        long long attempt = 1;
        if (take_flag(w, &w->key_poke)) /* the lease thread saw the key file change (during a wait) */
            key_check(w, &last_keycheck);
        if (pre) {
            read_parse(w, &pre_cmd, pre, &r, &ents, &nent, &qi);
            pre = NULL;
        } else if (st == RC_OK) {
            st = finish_flight(w); /* before waiting for work: its verdicts may need acting on */
            if (st == RC_OK)
                st = take(w, &r, &ents, &nent, &qi, &attempt);
        }
        if (is_nogroup(w->conn, st)) {
            if (r) freeReplyObject(r);
            st = RC_OK;
            if (queue_gone(w, qi)) {
                rc_log(ctx, RC_LOG_WARN, "no queue left to serve: exiting");
                break;
            }
            continue;
        }
        if (st == RC_ECANCELED && interrupted(w)) { /* asked to stop while waiting for work */
            if (r) freeReplyObject(r);
            st = RC_OK;
            break;
        }
        if (st != RC_OK) {
            if (r) freeReplyObject(r);
            if (st != RC_EREDIS)
                break;
            if (interrupted(w)) { /* stopping anyway: a dropped connection is how we were woken */
                st = RC_OK;
                break;
            }
            if (!w->redis_down)
                rc_log(ctx, RC_LOG_WARN, "%s; retrying with backoff", w->conn->err);
            w->redis_down = 1;
            nap(w, backoff);
            backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
            st = RC_OK;
            continue;
        }
        if (w->redis_down)
            rc_log(ctx, RC_LOG_WARN, "Redis reachable again");
        w->redis_down = 0;
        backoff = 100;
        /* key rotation without a restart: looked at before entries run */
        if (take_flag(w, &w->key_poke) || rc_now_ms() - last_keycheck > 2000)
            key_check(w, &last_keycheck);
        if (!nent) {
            /* idle: the next job may have longer tasks, so forget how long
               they were (a batch that runs long then goes back after
               BATCH_HOLD_US, not after four times the old length), but keep
               the size: another job of the same kernel is taken as the last
               one was, another kernel's is cut to one below */
            rc_conn_release(w->conn, r);
            w->avg_us = 0;
            continue;
        }
        /* A batch sized for one kernel's tasks that brings another's:
           their length is unknown, and a batch of long tasks would keep them
           from idle workers.  Keep the first, put the rest straight back (one
           round trip; new entries wake waiting workers), and learn.  A new
           job of the kernel the batch was sized for is kept: the rounds of
           an iterative code, or of a benchmark, have tasks as long as the
           last round's, and if these run long the lease thread gives the
           rest back while the first runs (spill_long_batch).  Before, any
           new job's batch of more than 8 went back: at 256 workers each
           20000-task round of `scale` began with a dozen workers giving
           back 63 of their first 64 (760 XADDs, and 566 takes where 2
           workers need 314). */
        rc_env head;
        unsigned char *hb;
        size_t hl;
        char hid[ID_MAX];
        if (nent > 1 && entry_parts(ents[0], hid, &hb, &hl) == 0 && hb &&
            rc_wire_peek(hb, hl, &head) == RC_OK && head.job != w->sized_job &&
            (head.kernel_len != w->sized_kernel_len || memcmp(head.kernel, w->sized_kernel, head.kernel_len) != 0)) {
            hand_back_unstarted(w, qi, ents, 1, nent);
            rc_log(ctx, RC_LOG_DEBUG, "a new job's tasks: kept 1 of %zu taken until their length is known", nent);
            nent = 1;
            w->batch = 1;
            w->avg_us = 0;
        }
        /* every entry taken is ours until acked: the lease thread renews them all */
        char ids[MAXB][ID_MAX];
        int nid = 0;
        for (size_t k = 0; k < nent; k++) {
            const redisReply *e = ents[k];
            if (e && e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[0]->type == REDIS_REPLY_STRING &&
                e->element[0]->len > 0 && e->element[0]->len < ID_MAX) {
                memcpy(ids[nid], e->element[0]->str, e->element[0]->len);
                ids[nid++][e->element[0]->len] = '\0';
            }
        }
        if (nid)
            saw(&w->q[qi], ids[nid - 1]);
        w->kern_us = 0;
        /* batches are sized from CPU clocks (3-4 system calls); with one
           task per take there is nothing to size */
        const int sizing = ctx->max_batch > 1;
        pthread_mutex_lock(&w->mu);
        memcpy(w->bids, ids, (size_t)nid * ID_MAX);
        w->nb = nid;
        w->nb_since = rc_now_ms();
        w->sp_ents = ents;
        w->sp_next = 0;
        w->sp_end = nent;
        w->sp_qi = qi;
        w->sp_avg = w->avg_us;
        w->sp_seen = 0;
        if (nent > 1 || interrupted(w))
            lease_ticks(w, 1);
        pthread_mutex_unlock(&w->mu);
        /* a descriptor some entry of the batch carries (the master puts one
           in every k-th), for its job's entries that carry none: a worker's
           first batch of a job then needs no GET for it */
        unsigned char *bdesc = NULL;
        size_t bdesc_len = 0;
        uint64_t bdesc_job = 0;
        for (size_t k = 0; k < nent && !bdesc; k++) {
            rc_env dh;
            unsigned char *d = entry_desc(ents[k], &bdesc_len);
            if (d && rc_wire_peek(d, bdesc_len, &dh) == RC_OK) { /* the job it claims; job_lookup checks it */
                bdesc = d;
                bdesc_job = dh.job;
            }
        }
        /* the next take goes now, while this batch runs (prefetch_worth) */
        int pf = 0;
        long long pf_at = 0;
        if (prefetch_worth(w, qi, ents, nent)) {
            read_cmd_init(w, &pre_cmd, &qi, 1, -1);
            pf = rc_conn_prefetch_keep(w->conn, pre_cmd.n, pre_cmd.av, NULL) == RC_OK;
            pf_at = rc_now_ms();
        }
        size_t ran = 0;
        w->kern_n = w->refused_n = 0;
        w->batch_bytes = 0;
        if (sizing)
            batch_clock_start(w);
        for (size_t k = 0; k < nent && st == RC_OK; k++) {
            unsigned char *buf;
            size_t len;
            char id[ID_MAX];
            if (k > 0 && interrupted(w)) {
                /* stopping: the task in hand is done; the rest were never started */
                size_t rest = give_back_rest(w, qi, ents, k);
                if (rest)
                    rc_log(ctx, RC_LOG_INFO, "stopping: handed %zu unstarted task(s) back", rest);
                break;
            }
            long long so_far = sizing && k > 0 && w->kern_us > BATCH_HOLD_US ? kernel_time(w) : 0; /* 2 syscalls: only when long */
            if (so_far > BATCH_HOLD_US && (double)so_far > 4.0 * w->avg_us * (double)k) {
                /* these tasks run far longer than the batch was sized for
                   (a new job, or one whose tasks vary): let idle workers
                   have the rest instead of holding them here (unless the
                   lease thread did already, while one of them ran) */
                size_t rest = give_back_rest(w, qi, ents, k);
                if (rest)
                    rc_log(ctx, RC_LOG_DEBUG, "tasks run long (%lld us so far): handed %zu of a batch of %zu back",
                           so_far, rest, nent);
                break;
            }
            if (!claim_entry(w, k))
                break; /* the lease thread gave it back, and the rest */
            if (entry_parts(ents[k], id, &buf, &len) != 0) {
                rc_log(ctx, RC_LOG_ERROR, "malformed stream entry from Redis: skipped");
                continue;
            }
            if (!buf)
                refuse(w, qi, id, NULL, 0, RC_EPROTO, "stream entry has no envelope field");
            else {
                size_t dl;
                unsigned char *d = entry_desc(ents[k], &dl);
                rc_env th;
                if (!d && bdesc && rc_wire_peek(buf, len, &th) == RC_OK && th.job == bdesc_job) {
                    d = bdesc;
                    dl = bdesc_len;
                }
                st = run_entry(w, qi, id, buf, len, d, dl, attempt);
            }
            w->batch_bytes += len;
            set_held(w, NULL, 0, 0, 0);
            ran++;
        }
        (void)unshare_batch(w); /* before its reply goes */
        /* its parts make the next take's reply, which the delivery's round
           trip brings: released after it, they did not, and a worker kept
           two replies' worth of parts (a full batch's are some 1500, and
           growing to the second set cost a 256-worker pool ~100 page faults
           per worker, hypervisor trips here); now the next reply is built in
           memory this batch just warmed */
        rc_conn_release(w->conn, r);
        r = NULL;
        /* adapt: take as many short tasks as fill about BATCH_TARGET_US of
           kernel time.  Kernel time, not the time from take to delivery:
           that includes the round trips, and with many workers per core
           the time spent descheduled, which would turn batching off just
           when Redis is busiest. */
        if (w->refused_n || !w->kern_n) {
            /* entries that could not run (refused, failed, orphaned): take
               one at a time, so a worker that cannot verify the queue (a
               wrong key, backing off) holds no more than one entry */
            if (ran)
                w->batch = 1;
        } else if (ran && sizing) {
            double per = (double)kernel_time(w) / (double)w->kern_n;
            w->avg_us = w->avg_us > 0 ? 0.7 * w->avg_us + 0.3 * per : per;
            long long b = (long long)(BATCH_TARGET_US / (w->avg_us > 1 ? w->avg_us : 1));
            long long by = (long long)(BATCH_BYTES / (w->batch_bytes / ran + 1));
            if (by < b)
                b = by;
            w->batch = b < 1 ? 1 : b > ctx->max_batch ? ctx->max_batch : (int)b;
        }
        /* the last batch's verdicts, then the next batch taken ahead: in
           the order their replies come */
        rc_status ff = finish_flight(w);
        if (st == RC_OK)
            st = ff;
        if (pf)
            pre = prefetch_end(w, &pre_cmd, pf_at, st == RC_OK && ran == nent && !interrupted(w));
        if (st == RC_OK && pre && deliver_async(w)) {
            /* this batch's results are on their way; the next batch starts now */
        } else if (st == RC_OK || st == RC_EREDIS) {
            /* the next take rides with the delivery when it would be a plain
               read of our one queue (no lapsed-lease scan due) */
            int next = -1;
            if (st == RC_OK && !pre && !interrupted(w) && plain_next_take(w, qi))
                next = qi;
            if (next >= 0)
                read_cmd_init(w, &pre_cmd, &next, 1, idle_slice(w));
            rc_status fs = flush_take(w, next >= 0 ? &pre_cmd : NULL, next >= 0 ? &pre : NULL);
            if (st == RC_OK)
                st = fs;
        } else {
            w->ob->n = 0; /* queue removed: nothing to deliver to */
            w->ob->used = 0;
        }
        pthread_mutex_lock(&w->mu);
        w->nb = 0;
        pthread_mutex_unlock(&w->mu);
        w->idle_since = rc_now_ms();
        if (is_nogroup(w->conn, st)) {
            st = RC_OK;
            if (queue_gone(w, qi)) {
                rc_log(ctx, RC_LOG_WARN, "no queue left to serve: exiting");
                break;
            }
            continue;
        }
        if (st == RC_EREDIS) { /* Redis went away mid-task: keep serving */
            st = RC_OK;
            continue;
        }
        if (st != RC_OK)
            break;
    }
    if (w->fly.ob) { /* stopped with a delivery's verdicts on their way */
        rc_status ff = finish_flight(w);
        if (st == RC_OK && ff != RC_OK && !is_nogroup(w->conn, ff))
            st = ff;
    }
    if (pre) { /* stopped with entries in hand that never started: give them back */
        redisReply *pr = NULL, **pents = NULL;
        size_t pn = 0;
        int pq = 0;
        read_parse(w, &pre_cmd, pre, &pr, &pents, &pn, &pq);
        hand_back_unstarted(w, pq, pents, 0, pn);
        if (pr) freeReplyObject(pr);
    }
    lease_stop(w); /* before unregister: its beat would list us again */
    if (st == RC_OK && !w->redis_down)
        unregister(w);
    if (st != RC_OK && !ctx->errmsg[0])
        rc_seterr(ctx, st, "%s", w->conn->err);
out:
    lease_stop(w);
    rc_log(ctx, RC_LOG_INFO, "worker %s stopped after %llu task(s)", w->consumer, (unsigned long long)w->done);
    pthread_mutex_destroy(&w->mu);
    close(w->tick_fd);
    close(w->wake_fd);
    if (w->sched_fd >= 0)
        close(w->sched_fd);
    free(w->keypath);
    for (int i = 0; i < JOB_CACHE; i++)
        free(w->cache[i].blob);
    for (int i = 0; i < CHUNK_SLOTS; i++)
        free(w->chunks[i].bytes);
    free(w->task.out);
    free(w->res);
    free(w->obx[0].buf);
    free(w->obx[1].buf);
    rc_pipe_free(&w->pipe);
    rc_conn_free(w->conn);
    free(w);
    return st;
}
