/* test_faults.c - redcoll under failure: workers joining, dying, stalling, lying, leaving.
 *
 * Why: the promise of redcoll is an elastic, untrusted-transport pool that
 * still gives the exact answer - a worker may join mid-job, be killed -9
 * while holding a task, stall past its lease and come back, hold the wrong
 * key, or be asked to stop; Redis contents may be altered or forged.  In
 * every case the result must be exact with every task counted once, or the
 * job must fail with the documented status (RC_EAUTH, RC_ECANCELED) - never
 * a wrong number, never a hang - and workers must exit 0 when told to stop.
 * Each subtest (argv[1]) runs as its own CTest test with its own
 * redis-server.  Events are detected by polling Redis (XPENDING shows which
 * worker holds which entry) against deadlines, never by sleeping. */
#include "harness.h"

#include <sys/time.h>

static const char *const no_args[] = {NULL};
static const char *const lease1[] = {"--lease", "1", NULL};

/* Is entry id pending, and under which pid (0 if not pending)? */
static long pending_owner(const char *id)
{
    h_pend p[256];
    size_t n = h_pending(p, 256);
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].id, id) == 0)
            return p[i].pid;
    return 0;
}

/* Wait until one of the live workers in cands holds an entry; returns its
 * pid and the entry. */
static pid_t wait_holder(const pid_t *cands, int n, h_pend *held)
{
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        h_pend p[256];
        size_t np = h_pending(p, 256);
        for (size_t i = 0; i < np; i++)
            for (int k = 0; k < n; k++)
                if (cands[k] && p[i].pid == cands[k] && h_alive(cands[k])) {
                    *held = p[i];
                    return cands[k];
                }
        if (h_expired(dl))
            H_FAIL("no worker took a task within %d ms", H_DEADLINE_MS);
        h_nap_ms(5);
    }
}

static uint64_t entry_rank(const char *id)
{
    size_t len = 0;
    unsigned char *b = h_entry_bytes(id, &len);
    H_CHECK(b != NULL, "stream entry %s vanished", id);
    h_env e;
    H_CHECK(h_env_parse(b, len, &e) == 0 && e.kind == H_KIND_TASK, "entry %s is not a task envelope", id);
    free(b);
    return e.rank;
}

/* ------------------------------------------------------------------ */

static void t_worker_join_midjob(void)
{
    enum { T = 60 };
    uint64_t params[2], out[2 * T];
    rc_ctx *ctx = h_ctx();
    pid_t a = h_spawn_worker(no_args);
    rc_job *j = h_sleep_job(ctx, T, 100, 11, params, out);
    H_OK(ctx, rc_job_submit(j));
    h_wait_done(ctx, j, 3); /* visibly under way, with one worker */
    pid_t b = h_spawn_worker(no_args);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 11);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    H_EQ_U64(s.workers_seen, 2);
    int by_a = 0, by_b = 0;
    for (uint64_t r = 0; r < T; r++) {
        by_a += out[2 * r + 1] == (uint64_t)a;
        by_b += out[2 * r + 1] == (uint64_t)b;
    }
    printf("first worker ran %d tasks, the one that joined ran %d\n", by_a, by_b);
    H_CHECK(by_a > 0 && by_b > 0 && by_a + by_b == T, "tasks by worker: %d + %d of %d", by_a, by_b, T);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_kill9_midjob(void)
{
    enum { T = 30 };
    uint64_t params[2], out[2 * T];
    rc_ctx *ctx = h_ctx();
    pid_t w[3];
    h_spawn_workers(3, lease1, w);
    rc_job *j = h_sleep_job(ctx, T, 300, 12, params, out);
    H_OK(ctx, rc_job_submit(j));
    pid_t victim = 0;
    uint64_t victim_rank = 0;
    for (int attempt = 0; attempt < 5 && !victim; attempt++) {
        h_pend held;
        pid_t p = wait_holder(w, 3, &held);
        uint64_t rank = entry_rank(held.id);
        h_kill9(p);
        /* still pending after its holder is dead: it was not delivered */
        if (pending_owner(held.id)) {
            victim = p;
            victim_rank = rank;
            printf("killed worker %ld while it held entry %s (task %llu)\n", (long)p, held.id,
                   (unsigned long long)rank);
        } else {
            printf("worker %ld delivered entry %s just before the kill; trying another\n", (long)p, held.id);
        }
        for (int k = 0; k < 3; k++)
            if (w[k] == p)
                w[k] = h_spawn_worker(lease1); /* a replacement */
    }
    H_CHECK(victim != 0, "could not kill a worker while it held a task in 5 attempts");
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 12);
    H_CHECK(out[2 * victim_rank + 1] != (uint64_t)victim, "task %llu was credited to the killed worker %ld",
            (unsigned long long)victim_rank, (long)victim);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    rc_job_destroy(j);
    H_WAIT(h_xlen() == 0, H_DEADLINE_MS, "%lld stream entries left", h_xlen());
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static void t_stalled_worker(void)
{
    enum { T = 16 };
    uint64_t params[2], out[2 * T];
    rc_ctx *ctx = h_ctx();
    pid_t w[2];
    h_spawn_workers(2, lease1, w);
    rc_job *j = h_sleep_job(ctx, T, 300, 13, params, out);
    H_OK(ctx, rc_job_submit(j));
    pid_t victim = 0;
    h_pend held;
    for (int attempt = 0; attempt < 5 && !victim; attempt++) {
        pid_t p = wait_holder(w, 2, &held);
        h_signal(p, SIGSTOP);
        if (pending_owner(held.id) == p)
            victim = p;
        else
            h_signal(p, SIGCONT); /* it delivered just before the stop: again */
    }
    H_CHECK(victim != 0, "could not stop a worker while it held a task in 5 attempts");
    pid_t other = w[0] == victim ? w[1] : w[0];
    printf("stopped worker %ld holding entry %s\n", (long)victim, held.id);
    /* past the lease, the other worker takes the entry over */
    H_WAIT(pending_owner(held.id) != victim, H_DEADLINE_MS, "entry %s still held by the stopped worker", held.id);
    printf("entry %s taken over (now held by %ld)\n", held.id, pending_owner(held.id));
    h_signal(victim, SIGCONT);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 13);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    rc_job_destroy(j);
    /* the stalled worker carries on: alone, it runs the next job */
    H_CHECK(h_alive(victim), "the stalled worker died");
    h_signal(other, SIGTERM);
    H_EXPECT_EXIT0(other, H_DEADLINE_MS);
    uint64_t out2[2 * 4];
    j = h_sleep_job(ctx, 4, 10, 14, params, out2);
    H_OK(ctx, rc_job_run(j));
    h_check_sleep_out(out2, 4, 14);
    for (int r = 0; r < 4; r++)
        H_EQ_U64(out2[2 * r + 1], victim);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */

typedef struct entry {
    char id[48];
    unsigned char *b;
    size_t len;
} entry;

static size_t read_stream(entry *out, size_t max)
{
    char k[300];
    h_tasks_key(k, sizeof k);
    redisReply *r = h_cmd("XRANGE %s - +", k);
    size_t n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max; i++) {
        redisReply *e = r->element[i], *f = e->element[1];
        if (f->type != REDIS_REPLY_ARRAY || f->elements < 2)
            continue;
        snprintf(out[n].id, sizeof out[n].id, "%s", e->element[0]->str);
        out[n].len = f->element[1]->len;
        out[n].b = malloc(out[n].len);
        memcpy(out[n].b, f->element[1]->str, out[n].len);
        n++;
    }
    freeReplyObject(r);
    return n;
}

static void xadd_bytes(const char *field, const void *b, size_t len)
{
    char k[300];
    h_tasks_key(k, sizeof k);
    freeReplyObject(h_cmd("XADD %s * %s %b", k, field, b, len));
}

static void t_tamper_task(void)
{
    enum { T = 16, C = 4 };
    static int64_t in[T * C], got[T * C];
    for (size_t i = 0; i < T * C; i++)
        in[i] = (int64_t)(i * 7919) - 100;
    memset(got, 0, sizeof got);
    uint64_t blob[2] = {0xB0B, 0xCAFE};
    rc_ctx *ctx = h_ctx();
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "identity", T, &j));
    H_OK(ctx, rc_job_bcast(j, blob, 2, RC_UINT64));
    H_OK(ctx, rc_job_scatter(j, in, C, RC_INT64));
    H_OK(ctx, rc_job_gather(j, got, C, RC_INT64));
    H_OK(ctx, rc_job_submit(j));

    entry e[T];
    size_t n = read_stream(e, T);
    H_EQ_U64(n, T);
    h_env env;
    H_CHECK(h_env_parse(e[3].b, e[3].len, &env) == 0 && env.rank == 3 && env.payload_len == C * 8,
            "entry 3 is not task 3's envelope");
    size_t payload_at = h_payload_off(env.kernel_len);
    H_MEMEQ(e[3].b + payload_at, &in[3 * C], C * sizeof *in); /* we change a value, not padding */
    char k[300];
    h_tasks_key(k, sizeof k);
    /* task 3: replaced by a copy with a changed value (its MAC now lies) */
    freeReplyObject(h_cmd("XDEL %s %s", k, e[3].id));
    e[3].b[payload_at] ^= 0x01;
    xadd_bytes("e", e[3].b, e[3].len);
    /* task 5: an extra copy with a bad MAC */
    e[5].b[e[5].len - 1] ^= 0x80;
    xadd_bytes("e", e[5].b, e[5].len);
    /* task 9: an exact replay (authentic: runs twice, counted once) */
    xadd_bytes("e", e[9].b, e[9].len);
    /* garbage, a wrong field name, and an authentic envelope of the wrong
       kind (the job descriptor replayed as a task) */
    unsigned char junk[90];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 151 + 3);
    xadd_bytes("e", junk, sizeof junk);
    xadd_bytes("x", e[1].b, e[1].len);
    char meta[300];
    h_meta_key(j, meta, sizeof meta);
    redisReply *m = h_cmd("GET %s", meta);
    H_CHECK(m->type == REDIS_REPLY_STRING && m->len > H_HDR + H_MAC, "no job descriptor at %s", meta);
    size_t mlen = m->len;
    unsigned char *mb = malloc(mlen);
    memcpy(mb, m->str, mlen);
    freeReplyObject(m);
    xadd_bytes("e", mb, mlen);
    /* and the descriptor itself: one broadcast byte changed */
    mb[mlen - H_MAC - 1] ^= 0x40;
    freeReplyObject(h_cmd("SET %s %b", meta, mb, mlen));
    free(mb);
    for (int i = 0; i < T; i++)
        free(e[i].b);

    pid_t w[2];
    h_spawn_workers(2, no_args, w);
    rc_status st = rc_job_wait(j);
    rc_job_stats s = h_stats(j, "stats");
    if (st == RC_EAUTH) {
        /* allowed: refusing is never a wrong number */
        printf("job refused with RC_EAUTH: %s\n", rc_ctx_errmsg(ctx));
    } else {
        H_CHECK(st == RC_OK, "rc_job_wait returned %s, expected RC_OK or RC_EAUTH; errmsg \"%s\"", h_stname(st),
                rc_ctx_errmsg(ctx));
        for (size_t i = 0; i < T * C; i++)
            H_CHECK(got[i] == in[i], "element %zu (task %zu): got %lld, want %lld", i, i / C, (long long)got[i],
                    (long long)in[i]);
        H_EQ_U64(s.done, T);
        H_CHECK(s.republished >= 1, "task 3 can only have come from a fresh copy, yet republished = %llu",
                (unsigned long long)s.republished);
    }
    rc_job_destroy(j);
    /* the workers said so loudly, and refused entries were removed */
    H_WAIT(h_log_contains(w[0], "REFUSED") || h_log_contains(w[1], "REFUSED"), H_DEADLINE_MS,
           "no worker logged a refusal");
    H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld stream entries, %zu job keys left",
           h_xlen(), h_count_keys("job:*"));
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* The value of the first entry of an XRANGE reply: [[id, [field, value]]]. */
static const redisReply *first_value(const redisReply *r)
{
    H_CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                r->element[0]->elements == 2 && r->element[0]->element[1]->type == REDIS_REPLY_ARRAY &&
                r->element[0]->element[1]->elements == 2 &&
                r->element[0]->element[1]->element[1]->type == REDIS_REPLY_STRING,
            "unexpected XRANGE reply shape");
    return r->element[0]->element[1]->element[1];
}

static void t_tamper_result(void)
{
    enum { T = 30 };
    uint64_t pa[2], outa[2 * 2], pb[2], out[2 * T];
    rc_ctx *ctx = h_ctx();
    pid_t w1 = h_spawn_worker(no_args);
    char res[320];

    /* an authentic result of another job, to replay */
    rc_job *ja = h_sleep_job(ctx, 2, 0, 21, pa, outa);
    H_OK(ctx, rc_job_submit(ja));
    h_res_key(ja, res, sizeof res);
    H_WAIT(h_cmd_int("XLEN %s", res) >= 1, H_DEADLINE_MS, "no result for job A");
    redisReply *r = h_cmd("XRANGE %s - + COUNT 1", res);
    const redisReply *v = first_value(r);
    size_t alen = v->len;
    unsigned char *abytes = malloc(alen);
    memcpy(abytes, v->str, alen);
    freeReplyObject(r);
    H_OK(ctx, rc_job_wait(ja));
    h_check_sleep_out(outa, 2, 21);
    rc_job_destroy(ja);

    rc_job *j = h_sleep_job(ctx, T, 100, 22, pb, out);
    H_OK(ctx, rc_job_submit(j));
    h_res_key(j, res, sizeof res);
    H_WAIT(h_cmd_int("XLEN %s", res) >= 1, H_DEADLINE_MS, "no result for job B");
    h_signal(w1, SIGSTOP); /* hold the worker while the list is forged */
    r = h_cmd("XRANGE %s - + COUNT 1", res);
    v = first_value(r);
    size_t len = v->len;
    unsigned char *real = malloc(len), *tmp = malloc(len);
    memcpy(real, v->str, len);
    freeReplyObject(r);
    h_env e;
    H_CHECK(h_env_parse(real, len, &e) == 0 && e.kind == H_KIND_RESULT && e.job == h_job_id(j),
            "the first result is not one of job B");
    size_t payload_at = h_payload_off(e.kernel_len);
    int forged = 0;
#define PUSH(buf, n)                                                      \
    do {                                                                  \
        freeReplyObject(h_cmd("XADD %s * e %b", res, (const void *)(buf), (size_t)(n))); \
        forged++;                                                         \
    } while (0)
    unsigned char junk[100];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 97 + 5);
    PUSH(junk, sizeof junk);                 /* random bytes */
    PUSH("", 0);                             /* empty */
    PUSH(real, len - 1);                     /* truncated real result */
    PUSH(real, H_HDR);                       /* its header alone */
    memcpy(tmp, real, len);
    tmp[payload_at] ^= 0x01;                 /* a value changed */
    PUSH(tmp, len);
    memcpy(tmp, real, len);
    tmp[len - 1] ^= 0x01;                    /* MAC changed */
    PUSH(tmp, len);
    memcpy(tmp, real, len);
    h_put64(tmp + 16, T - 3);                /* spliced onto another rank */
    PUSH(tmp, len);
    uint64_t lie[2] = {666, 1};
    size_t flen;
    unsigned char *f = h_forge(H_KIND_RESULT, e.keyid, h_job_id(j), T - 1, T, 0, "sleep", lie, sizeof lie, &flen);
    H_CHECK(flen == len && memcmp(f, real, 4) == 0 && memcmp(f + 44, real + 44, 2) == 0 &&
                memcmp(f + 48, real + 48, 8) == 0, /* 46: the attempt number */
            "the forged result does not look like a real one");
    PUSH(f, flen);                           /* well-formed header, wrong MAC */
    free(f);
    const char *why = "forged failure";
    f = h_forge(H_KIND_RESULT, e.keyid, h_job_id(j), T - 2, T, RC_EKERNEL, "sleep", why, strlen(why), &flen);
    PUSH(f, flen);                           /* a forged kernel error */
    free(f);
    PUSH(abytes, alen);                      /* authentic, but job A's */
    /* an exact authentic duplicate: ignored, not rejected */
    freeReplyObject(h_cmd("XADD %s * e %b", res, (const void *)real, len));
#undef PUSH
    h_signal(w1, SIGCONT);
    h_spawn_worker(no_args);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 22);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    H_EQ_U64(s.rejected, forged);
    H_CHECK(s.duplicates >= 1, "the authentic duplicate was not counted as one (duplicates %llu)",
            (unsigned long long)s.duplicates);
    rc_job_destroy(j);
    free(real);
    free(tmp);
    free(abytes);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* The 8 hex digits after "key id " in a worker's log. */
static void key_id_in_log(pid_t pid, char out[9])
{
    char *t = h_worker_log(pid);
    const char *p = t ? strstr(t, "(key id ") : NULL;
    H_CHECK(p != NULL, "worker %ld did not log its key id", (long)pid);
    snprintf(out, 9, "%.8s", p + 8);
    free(t);
}

static void t_wrong_key_worker(void)
{
    enum { T = 40 };
    uint64_t params[2], out[2 * T];
    char badkey[600];
    h_keyfile("badkey", badkey, sizeof badkey);
    static const char *const verbose[] = {"-v", NULL};
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, T, 50, 31, params, out);
    H_OK(ctx, rc_job_submit(j));
    pid_t bad = h_spawn_worker_key(badkey, verbose);
    H_WAIT(h_log_contains(bad, "REFUSED"), H_DEADLINE_MS, "the wrong-key worker refused nothing");
    pid_t good[2];
    h_spawn_workers(2, verbose, good);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 31);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    H_CHECK(s.republished >= 1, "the refused task was not re-sent (republished %llu)",
            (unsigned long long)s.republished);
    for (uint64_t r = 0; r < T; r++)
        H_CHECK(out[2 * r + 1] != (uint64_t)bad, "task %llu credited to the wrong-key worker",
                (unsigned long long)r);
    rc_job_destroy(j);
    H_STOP_ALL();
    char good_id[9], bad_id[9];
    key_id_in_log(good[0], good_id);
    key_id_in_log(bad, bad_id);
    H_CHECK(strcmp(good_id, bad_id) != 0, "both keys have id %s", good_id);
    char *log = h_worker_log(bad);
    H_CHECK(log != NULL, "no log from the wrong-key worker");
    printf("wrong-key worker said:\n%s", log);
    H_CONTAINS(log, "REFUSED");
    char want[64];
    snprintf(want, sizeof want, "key id %s", bad_id);
    H_CONTAINS(log, want);
    H_CONTAINS(log, good_id);
    free(log);
    rc_ctx_destroy(ctx);
}

/* The first task of a long job fails while its tasks are still being
 * added: rc_job_run fails with the kernel's message without adding the rest
 * (results are read between the blocks it sends), and takes back what went
 * in.  A user whose job is broken from the first task should not wait for a
 * million tasks to go into Redis and back out before hearing why. */
static void t_fail_while_submitting(void)
{
    enum { T = 100000 };
    static const char *const once[] = {"--max-attempts", "1", NULL};
    h_spawn_workers(2, once, NULL);
    rc_ctx *ctx = h_ctx();
    uint64_t fail_rank = 0, *out = malloc(T * sizeof *out);
    H_CHECK(out != NULL, "out of memory");
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "fail", T, &j));
    H_OK(ctx, rc_job_bcast(j, &fail_rank, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    h_reset_stats();
    H_ST(ctx, rc_job_run(j), RC_EKERNEL);
    const char *msg = rc_ctx_errmsg(ctx);
    printf("error seen: %s\n", msg);
    H_CONTAINS(msg, HK_FAIL_TEXT " 0");
    H_CONTAINS(msg, "task 0");
    long long xadds = h_calls("xadd");
    printf("%lld XADDs for a job of %d tasks\n", xadds, T);
    H_CHECK(xadds > 0 && xadds < T / 2, "%lld XADDs: the job went on adding tasks after its first one failed",
            xadds);
    rc_job_destroy(j);
    H_WAIT(h_count_keys("job:*") == 0 && h_xlen() == 0, H_DEADLINE_MS, "%zu job keys, %lld stream entries left",
           h_count_keys("job:*"), h_xlen());
    /* the pool carries on */
    fail_rank = UINT64_MAX;
    H_OK(ctx, rc_job_create(ctx, "fail", 3000, &j));
    H_OK(ctx, rc_job_bcast(j, &fail_rank, 1, RC_UINT64));
    H_OK(ctx, rc_job_gather(j, out, 1, RC_UINT64));
    H_OK(ctx, rc_job_run(j));
    for (uint64_t k = 0; k < 3000; k++)
        H_EQ_U64(out[k], k);
    rc_job_stats s = h_stats(j, "after");
    H_EQ_U64(s.duplicates, 0);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    free(out);
    H_STOP_ALL();
}

/* Where two master log lines came (1-based line numbers, 0: not seen), and
 * how many lines had come before the first progress call with results. */
typedef struct order_log {
    int first_at, then_at, n;
    const char *first, *then;
    int progress_at; /* log lines before the first progress call with results */
    int progress_calls;
} order_log;

static void order_progress_fn(const rc_job *j, const rc_job_stats *st, void *user)
{
    (void)j;
    order_log *o = user;
    if (st->done > 0 && !o->progress_calls++)
        o->progress_at = o->n;
}

static void order_log_fn(int level, const char *line, void *user)
{
    (void)level;
    order_log *o = user;
    o->n++;
    if (!o->first_at && strstr(line, o->first))
        o->first_at = o->n;
    if (!o->then_at && strstr(line, o->then))
        o->then_at = o->n;
}

/* A worker holding another key refuses the first tasks of a long job while
 * the rest are still being added: the fresh copies the master owes wait for
 * the blocks in flight (a copy's XADD sent among them would take one of
 * their replies), then go before the next block, and the answer is exact,
 * each task counted once. */
static void t_wrong_key_while_submitting(void)
{
    enum { T = 20000 };
    uint64_t params[2], *out = malloc(2 * (size_t)T * sizeof *out);
    H_CHECK(out != NULL, "out of memory");
    char badkey[600];
    h_keyfile("badkey", badkey, sizeof badkey);
    pid_t bad = h_spawn_worker_key(badkey, no_args);
    /* it must be waiting on the stream when the first block goes in */
    H_WAIT(h_blocked_readers() >= 1, H_DEADLINE_MS, "the wrong-key worker never waited for tasks");
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    order_log ol = {0, 0, 0, "sent a fresh authentic copy", "tasks of kernel", 0, 0};
    H_OK(ctx, rc_ctx_set_logger(ctx, order_log_fn, &ol));
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, 2));
    rc_job *j = h_sleep_job(ctx, T, 0, 57, params, out);
    rc_job_set_progress(j, order_progress_fn, &ol);
    H_OK(ctx, rc_job_run(j));
    h_check_sleep_out(out, T, 57);
    /* the meter moved while the tasks went in: its first call came before
       the master's "N tasks of kernel" line, which ends the submission */
    printf("first progress call after log line %d\n", ol.progress_at);
    H_CHECK(ol.progress_calls > 0 && ol.progress_at < ol.then_at,
            "no progress reported while the %d tasks were being added (first call after line %d, end at %d)", T,
            ol.progress_at, ol.then_at);
    printf("master log: fresh copy at line %d, end of submission at line %d\n", ol.first_at, ol.then_at);
    H_CHECK(ol.first_at && ol.then_at && ol.first_at < ol.then_at,
            "the refused task was re-sent only after all %d tasks were added (log lines %d, %d)", T, ol.first_at,
            ol.then_at);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    H_EQ_U64(s.duplicates, 0);
    H_CHECK(s.republished >= 1, "no refused task was re-sent (republished %llu)", (unsigned long long)s.republished);
    for (uint64_t r = 0; r < T; r++)
        H_CHECK(out[2 * r + 1] != (uint64_t)bad, "task %llu credited to the wrong-key worker",
                (unsigned long long)r);
    rc_job_destroy(j);
    H_WAIT(h_count_keys("job:*") == 0 && h_xlen() == 0, H_DEADLINE_MS, "%zu job keys, %lld stream entries left",
           h_count_keys("job:*"), h_xlen());
    rc_ctx_destroy(ctx);
    free(out);
    H_STOP_ALL();
}

static void t_sigterm_drain(void)
{
    uint64_t params[2], out[2];
    rc_ctx *ctx = h_ctx();
    pid_t a = h_spawn_worker(no_args);
    rc_job *j = h_sleep_job(ctx, 1, 1500, 41, params, out);
    H_OK(ctx, rc_job_submit(j));
    h_pend held;
    H_CHECK(wait_holder(&a, 1, &held) == a, "the only worker is not the holder");
    pid_t idle = h_spawn_worker(no_args); /* nothing for it to do */
    h_signal(a, SIGTERM);
    h_signal(idle, SIGTERM);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, 1, 41);
    H_CHECK(out[1] == (uint64_t)a, "the task was delivered by pid %llu, not by the worker that held it (%ld)",
            (unsigned long long)out[1], (long)a);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, 1);
    H_EQ_U64(s.duplicates, 0);
    H_EQ_U64(s.workers_seen, 1);
    H_EXPECT_EXIT0(a, H_DEADLINE_MS);
    H_EXPECT_EXIT0(idle, H_DEADLINE_MS);
    H_EQ_U64(h_xlen(), 0);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
}

static void t_linger(void)
{
    static const char *const linger1[] = {"--linger", "1", NULL};
    /* no work at all: leaves */
    pid_t a = h_spawn_worker(linger1);
    H_EXPECT_EXIT0(a, H_DEADLINE_MS);
    /* a job longer than the linger time: stays until it is done, then leaves */
    enum { T = 6 };
    uint64_t params[2], out[2 * T];
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, T, 400, 51, params, out);
    H_OK(ctx, rc_job_submit(j));
    pid_t b = h_spawn_worker(linger1);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 51);
    for (int r = 0; r < T; r++)
        H_EQ_U64(out[2 * r + 1], b);
    rc_job_destroy(j);
    H_EXPECT_EXIT0(b, H_DEADLINE_MS);
    rc_ctx_destroy(ctx);
}

/* Workers serving the queue: Redis connections whose last command was a
 * take (XREADGROUP or XAUTOCLAIM).  XINFO CONSUMERS cannot tell: Redis 7.0
 * creates a consumer only once it is served an entry. */
static size_t serving(void)
{
    redisReply *r = h_cmd("CLIENT LIST");
    size_t n = 0;
    for (const char *p = r->type == REDIS_REPLY_STRING ? r->str : ""; (p = strstr(p, " cmd=")) != NULL; p++)
        n += strncmp(p, " cmd=xreadgroup ", 16) == 0 || strncmp(p, " cmd=xautoclaim ", 16) == 0;
    freeReplyObject(r);
    return n;
}

/* rc_queue_remove, as `redcoll purge --key-file` does: workers act only on
 * an authenticated removal. */
static void remove_queue(void)
{
    rc_ctx *rm = h_ctx();
    H_OK(rm, rc_queue_remove(rm));
    rc_ctx_destroy(rm);
}

static void t_queue_removed(void)
{
    pid_t w[2];
    h_spawn_workers(2, no_args, w);
    H_WAIT(serving() == 2, H_DEADLINE_MS, "%zu workers are reading the queue", serving());
    remove_queue();
    H_EXPECT_EXIT0(w[0], H_DEADLINE_MS);
    H_EXPECT_EXIT0(w[1], H_DEADLINE_MS);
    H_EQ_U64(h_count_keys("*"), 0);
}

/* A worker finds its queue's stream gone but cannot read the removal marker
 * (here its Redis user lacks GET; a dropped connection or a timeout does the
 * same).  It must not recreate the stream - that would bring the removed
 * queue back, and no later take would meet NOGROUP to look again - but look
 * again until it can read the marker, then exit. */
static void t_queue_removed_unreadable(void)
{
    redisReply *r = h_cmd("ACL SETUSER nogetter on >pw ~* &* +@all -get");
    H_CHECK(r->type != REDIS_REPLY_ERROR, "ACL SETUSER: %s", r->str);
    freeReplyObject(r);
    char url[300];
    snprintf(url, sizeof url, "redis://nogetter:pw@%s:%d", H.host, H.port);
    const char *const as_nogetter[] = {"--redis", url, NULL};
    pid_t w = h_spawn_worker(as_nogetter);
    H_WAIT(serving() == 1, H_DEADLINE_MS, "%zu workers are reading the queue", serving());
    remove_queue();
    H_WAIT(h_log_contains(w, "removal marker cannot be read") || h_log_contains(w, "recreating it"), H_DEADLINE_MS,
           "the worker never looked for the removal marker");
    char tk[300];
    h_tasks_key(tk, sizeof tk);
    r = h_cmd("EXISTS %s", tk);
    long long exists = r->integer;
    freeReplyObject(r);
    H_CHECK(exists == 0, "the worker recreated the removed queue's task stream");
    r = h_cmd("ACL SETUSER nogetter +get");
    freeReplyObject(r);
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    char *log = h_worker_log(w);
    H_CHECK(log != NULL, "no log from the worker");
    H_CONTAINS(log, "was removed (authenticated)");
    free(log);
    H_EQ_U64(h_count_keys("*"), 0);
}

static void t_queue_removed_midjob(void)
{
    enum { T = 40 };
    uint64_t params[2], out[2 * T];
    pid_t w[2];
    h_spawn_workers(2, no_args, w);
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, T, 200, 61, params, out);
    H_OK(ctx, rc_job_submit(j));
    h_wait_done(ctx, j, 2);
    remove_queue();
    H_ST(ctx, rc_job_wait(j), RC_ECANCELED);
    printf("master saw: %s\n", rc_ctx_errmsg(ctx));
    H_CONTAINS(rc_ctx_errmsg(ctx), "removed");
    rc_job_destroy(j);
    H_EXPECT_EXIT0(w[0], H_DEADLINE_MS);
    H_EXPECT_EXIT0(w[1], H_DEADLINE_MS);
    H_EQ_U64(h_count_keys("*"), 0);
    rc_ctx_destroy(ctx);
}

/* The job descriptor is deleted by someone without the key (or evicted):
 * that is no cancel.  The master restores it and the job completes exactly;
 * workers meanwhile hand its tasks back instead of dropping them.  A cancel
 * by a process holding the key (rc_job_cancel) does end it. */
static void t_descriptor_deleted(void)
{
    enum { T = 40 };
    uint64_t params[2], out[2 * T];
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, T, 100, 71, params, out);
    H_OK(ctx, rc_job_submit(j));
    h_wait_done(ctx, j, 2);
    char meta[300];
    h_meta_key(j, meta, sizeof meta);
    freeReplyObject(h_cmd("DEL %s", meta));
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 71);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    rc_job_destroy(j);
    H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld entries, %zu job keys left", h_xlen(),
           h_count_keys("job:*"));
    /* an authenticated cancel does end a job; the pool serves the next one */
    j = h_sleep_job(ctx, T, 100, 73, params, out);
    H_OK(ctx, rc_job_submit(j));
    h_wait_done(ctx, j, 2);
    H_OK(ctx, rc_job_cancel(j));
    H_ST(ctx, rc_job_wait(j), RC_ECANCELED);
    rc_job_destroy(j);
    H_WAIT(h_xlen() == 0 && h_count_keys("job:*") == 0, H_DEADLINE_MS, "%lld entries, %zu job keys left", h_xlen(),
           h_count_keys("job:*"));
    j = h_sleep_job(ctx, 4, 10, 72, params, out);
    H_OK(ctx, rc_job_run(j));
    h_check_sleep_out(out, 4, 72);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* Every Redis connection (master's, workers', their lease threads') is
 * killed twice mid-job and the script cache flushed: everyone reconnects,
 * reloads scripts, and the answer is exact. */
static void t_connections_killed(void)
{
    enum { T = 30 };
    uint64_t params[2], out[2 * T];
    h_spawn_workers(2, lease1, NULL);
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, T, 50, 81, params, out);
    H_OK(ctx, rc_job_submit(j));
    int kills = 0;
    long long dl = h_deadline(H_DEADLINE_MS);
    rc_status st;
    while ((st = rc_job_test(j)) == RC_EAGAIN) {
        rc_job_stats s;
        H_OK(NULL, rc_job_get_stats(j, &s));
        if ((kills == 0 && s.done >= 5) || (kills == 1 && s.done >= 15)) {
            redisReply *r = h_cmd("CLIENT KILL TYPE normal SKIPME yes");
            printf("killed %lld connections with %llu tasks done\n", r->integer, (unsigned long long)s.done);
            freeReplyObject(r);
            freeReplyObject(h_cmd("SCRIPT FLUSH"));
            kills++;
        }
        if (h_expired(dl))
            H_FAIL("job not finished after %d ms (%llu done)", H_DEADLINE_MS, (unsigned long long)s.done);
        h_nap_ms(10);
    }
    H_CHECK(st == RC_OK, "rc_job_test returned %s; errmsg \"%s\"", h_stname(st), rc_ctx_errmsg(ctx));
    H_CHECK(kills == 2, "the job finished before the connections could be killed twice (%d)", kills);
    h_check_sleep_out(out, T, 81);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, T);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

static rc_ctx *g_master;
static void on_alarm(int sig)
{
    (void)sig;
    rc_ctx_interrupt(g_master); /* documented as async-signal-safe */
}

/* In usec microseconds (under a second), SIGALRM calls rc_ctx_interrupt(ctx),
 * as a Ctrl-C handler would. */
static void interrupt_in(rc_ctx *ctx, long usec)
{
    g_master = ctx;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A cancelled job left nothing behind: no job key, no task entry.  Frees
 * the job and the master's context. */
static void cancelled_and_gone(rc_ctx *ctx, rc_job *j)
{
    H_EQ_U64(h_count_keys("job:*"), 0);
    H_EQ_U64(h_xlen(), 0);
    rc_job_destroy(j);
    g_master = NULL;
    rc_ctx_destroy(ctx);
}

/* rc_ctx_interrupt from a signal handler makes a blocked rc_job_wait return
 * RC_ECANCELED and remove the job's tasks and keys. */
static void t_master_interrupt(void)
{
    uint64_t params[2], out[2 * 8];
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, 8, 10, 91, params, out); /* no workers: cannot finish */
    H_OK(ctx, rc_job_submit(j));
    interrupt_in(ctx, 300000);
    H_ST(ctx, rc_job_wait(j), RC_ECANCELED);
    printf("master saw: %s\n", rc_ctx_errmsg(ctx));
    cancelled_and_gone(ctx, j);
}

/* A stop request ends a wait on Redis at once, however long its slice:
 * an idle worker blocking 5 s per poll exits on SIGTERM, and a master
 * blocking 5 s per read returns RC_ECANCELED, well inside one slice (they
 * used to wait for the slice to run out). */
static void t_stop_long_poll(void)
{
    static const char *const poll5[] = {"--poll", "5000", NULL};
    pid_t a = h_spawn_worker(poll5);
    H_WAIT(h_blocked_readers() == 1, H_DEADLINE_MS, "%zu blocked readers", h_blocked_readers());
    h_nap_ms(200); /* well into its 5 s block */
    long long t0 = h_now_ms();
    h_signal(a, SIGTERM);
    H_EXPECT_EXIT0(a, H_DEADLINE_MS);
    long long worker_ms = h_now_ms() - t0;
    uint64_t params[2], out[2 * 4];
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_POLL_MS, 5000));
    rc_job *j = h_sleep_job(ctx, 4, 10, 93, params, out); /* no workers: cannot finish */
    H_OK(ctx, rc_job_submit(j));
    interrupt_in(ctx, 300000);
    t0 = h_now_ms();
    H_ST(ctx, rc_job_wait(j), RC_ECANCELED);
    long long master_ms = h_now_ms() - t0;
    printf("stop seen after %lld ms by the idle worker, %lld ms by the waiting master (slices of 5000 ms): %s\n",
           worker_ms, master_ms, rc_ctx_errmsg(ctx));
    H_CHECK(worker_ms < 2500, "the idle worker took %lld ms to exit after SIGTERM", worker_ms);
    H_CHECK(master_ms < 2500, "rc_job_wait took %lld ms to see the interrupt", master_ms);
    H_CONTAINS(rc_ctx_errmsg(ctx), "interrupted");
    cancelled_and_gone(ctx, j);
}

/* Entries Redis handed to a worker whose reply it never read - the race of
 * a stop request with a blocking take, made here by reading in the
 * worker's name while it is stopped - go back when the worker stops: at
 * once, no attempt counted, not after a lease (120 s here, past the job's
 * timeout). */
static void t_unseen_at_exit(void)
{
    static const char *const lease120[] = {"--lease", "120", "--poll", "300", NULL};
    char reg[300], tk[300];
    snprintf(reg, sizeof reg, "rc:{%s}:workers", H.queue);
    h_tasks_key(tk, sizeof tk);
    pid_t a = h_spawn_worker(lease120);
    H_WAIT(h_blocked_readers() == 1, H_DEADLINE_MS, "%zu blocked readers", h_blocked_readers());
    H_WAIT(h_cmd_int("ZCARD %s", reg) == 1, H_DEADLINE_MS, "the worker is not in the registry");
    h_signal(a, SIGSTOP);
    H_WAIT(h_blocked_readers() == 0, H_DEADLINE_MS, "the stopped worker's take still blocks");
    redisReply *m = h_cmd("ZRANGE %s 0 -1", reg);
    H_CHECK(m->type == REDIS_REPLY_ARRAY && m->elements == 1, "%zu workers registered", m->elements);
    char consumer[200];
    snprintf(consumer, sizeof consumer, "%s", m->element[0]->str);
    freeReplyObject(m);
    uint64_t params[2], out[2];
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 30000));
    rc_job *j = h_sleep_job(ctx, 1, 0, 94, params, out);
    H_OK(ctx, rc_job_submit(j));
    redisReply *t = h_cmd("XREADGROUP GROUP w %s COUNT 1 STREAMS %s >", consumer, tk);
    H_CHECK(t->type == REDIS_REPLY_ARRAY, "the task was not there to take in the worker's name");
    freeReplyObject(t);
    h_pend p[4];
    H_CHECK(h_pending(p, 4) == 1 && p[0].pid == (long)a && p[0].deliveries == 1,
            "the task should be pending under the stopped worker, delivered once");
    h_signal(a, SIGTERM);
    h_signal(a, SIGCONT);
    H_EXPECT_EXIT0(a, H_DEADLINE_MS);
    H_CHECK(h_pending(p, 4) == 1 && p[0].deliveries == 0 && p[0].idle > 120000,
            "after the stop the entry should be claimable now with no attempt counted (deliveries %lld, idle %lld ms)",
            p[0].deliveries, p[0].idle);
    pid_t b = h_spawn_worker(lease120);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, 1, 94);
    H_EQ_U64(out[1], (uint64_t)b);
    rc_job_stats s = h_stats(j, "stats");
    H_EQ_U64(s.done, 1);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
}

/* Ctrl-C while a big job's tasks are still being added (a million take
 * seconds): rc_job_submit returns RC_ECANCELED at the next block instead of
 * adding the rest first, and what it had added is removed. */
static void t_master_interrupt_submit(void)
{
    enum { T = 1000000 };
    uint64_t params[2], *out = malloc(2 * (size_t)T * sizeof *out);
    H_CHECK(out != NULL, "out of memory");
    rc_ctx *ctx = h_ctx();
    rc_job *j = h_sleep_job(ctx, T, 10, 92, params, out); /* no workers */
    interrupt_in(ctx, 100000);
    H_ST(ctx, rc_job_submit(j), RC_ECANCELED);
    printf("master saw: %s\n", rc_ctx_errmsg(ctx));
    H_CONTAINS(rc_ctx_errmsg(ctx), "interrupted while its tasks were being added");
    cancelled_and_gone(ctx, j);
    free(out);
}

/* Redis runs out of memory while a job's tasks are being added, with
 * several blocks in flight: rc_job_submit fails with Redis' own reason and
 * takes back every task that went in - the stream is empty, no job key is
 * left - and once there is room again the next job runs.  rc_job_run does
 * the same with the reads of results it sends among the blocks. */
static void t_submit_oom(void)
{
    enum { T = 200000 };
    uint64_t params[2], *out = malloc(2 * (size_t)T * sizeof *out);
    H_CHECK(out != NULL, "out of memory");
    rc_ctx *ctx = h_ctx();
    for (int run = 0; run < 2; run++) {
        redisReply *r = h_cmd("INFO memory");
        const char *u = r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
        long long used = u ? atoll(u + 12) : 0;
        freeReplyObject(r);
        H_CHECK(used > 0, "no used_memory in INFO memory");
        /* room for about 15000 of the 200000 tasks */
        freeReplyObject(h_cmd("CONFIG SET maxmemory %lld", used + (3LL << 20)));
        freeReplyObject(h_cmd("CONFIG SET maxmemory-policy noeviction"));
        rc_job *j = h_sleep_job(ctx, T, 10, 93, params, out); /* no workers */
        rc_status st = run ? rc_job_run(j) : rc_job_submit(j);
        const char *how = run ? "rc_job_run" : "rc_job_submit";
        printf("%s under maxmemory: %s: %s\n", how, h_stname(st), rc_ctx_errmsg(ctx));
        H_CHECK(st != RC_OK, "%s: a job of %d tasks went into a Redis with room for a tenth of them", how, T);
        H_CONTAINS(rc_ctx_errmsg(ctx), "OOM");
        rc_job_destroy(j);
        freeReplyObject(h_cmd("CONFIG SET maxmemory 0"));
        H_EQ_U64(h_xlen(), 0);
        H_EQ_U64(h_count_keys("job:*"), 0);
    }
    /* a one-task job goes in one write with its first read of results; when
       that write fails, the error does not wait for the read's poll slice */
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_POLL_MS, 5000));
    freeReplyObject(h_cmd("CONFIG SET maxmemory 1"));
    rc_job *one = h_sleep_job(ctx, 1, 10, 95, params, out);
    long long t0 = h_now_ms();
    rc_status st1 = rc_job_run(one);
    long long took = h_now_ms() - t0;
    freeReplyObject(h_cmd("CONFIG SET maxmemory 0"));
    printf("one-task job under maxmemory, 5 s poll: %s after %lld ms: %s\n", h_stname(st1), took, rc_ctx_errmsg(ctx));
    H_CHECK(st1 != RC_OK, "a one-task job went into a Redis out of memory");
    H_CONTAINS(rc_ctx_errmsg(ctx), "OOM");
    H_CHECK(took < 2500, "the failed submission took %lld ms to report: it waited for the 5 s poll slice", took);
    rc_job_destroy(one);
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_POLL_MS, 200));
    h_spawn_workers(1, NULL, NULL);
    uint64_t p2[2], o2[2 * 4];
    rc_job *k = h_sleep_job(ctx, 4, 1, 94, p2, o2);
    H_OK(ctx, rc_job_run(k));
    h_check_sleep_out(o2, 4, 94);
    rc_job_destroy(k);
    rc_ctx_destroy(ctx);
    free(out);
    H_STOP_ALL();
}

/* The master's connection drops after Redis executed its read of the
 * results but before the reply arrived (here: Redis closes a client whose
 * reply exceeds client-output-buffer-limit, after running the command; a
 * network drop or a command timeout at that moment does the same).  The
 * workers already acknowledged and deleted the tasks, so a destructive read
 * (LPOP) would lose those results for good.  Every task ran and delivered,
 * so the user expects the answer, not a hang until the job timeout. */
static void t_result_lost(void)
{
    enum { T = 4, C = 76800 }; /* 600 KB per task: one fits the limit, two do not */
    double *in = malloc(T * C * sizeof *in), *out = calloc(T * C, sizeof *out);
    H_CHECK(in && out, "out of memory");
    for (size_t i = 0; i < (size_t)T * C; i++)
        in[i] = (double)i + 0.5;
    freeReplyObject(h_cmd("CONFIG SET client-output-buffer-limit %s", "normal 1mb 1mb 0"));
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 20000));
    rc_job *j = NULL;
    H_OK(ctx, rc_job_create(ctx, "identity", T, &j));
    H_OK(ctx, rc_job_scatter(j, in, C, RC_DOUBLE));
    H_OK(ctx, rc_job_gather(j, out, C, RC_DOUBLE));
    H_OK(ctx, rc_job_submit(j));
    h_spawn_workers(2, lease1, NULL);
    char res[320];
    h_res_key(j, res, sizeof res);
    H_WAIT(h_cmd_int("XLEN %s", res) == T, H_DEADLINE_MS, "not all results delivered");
    H_EQ_U64(h_xlen(), 0); /* every task is acknowledged and gone */
    /* one collection step meets the fault (a library that fetches results
       differently may not: then nothing is lost, which is fine) ... */
    rc_status st = rc_job_test(j);
    H_CHECK(st == RC_EAGAIN || st == RC_OK, "rc_job_test returned %s: %s", h_stname(st), rc_ctx_errmsg(ctx));
    printf("after the first collection: %lld results left in Redis\n", h_cmd_int("XLEN %s", res));
    /* ... then the fault is gone: a transient drop, like a network blip */
    freeReplyObject(h_cmd("CONFIG SET client-output-buffer-limit %s", "normal 0 0 0"));
    st = rc_job_wait(j);
    rc_job_stats s = h_stats(j, "stats");
    H_CHECK(st == RC_OK, "rc_job_wait returned %s after every task had delivered its result: \"%s\" "
            "(%llu of %d results accepted; the results popped by the LPOP whose reply was lost are never "
            "recovered and no task is re-sent)", h_stname(st), rc_ctx_errmsg(ctx), (unsigned long long)s.done, T);
    H_MEMEQ(out, in, (size_t)T * C * sizeof *in);
    rc_job_destroy(j);
    free(in);
    free(out);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* RC_OPT_JOB_TIMEOUT_MS: a job nobody serves ends with RC_ETIMEDOUT saying
 * how far it got, and leaves nothing in Redis; rc_job_destroy of a running
 * job cancels it the same way. */
static void t_job_timeout(void)
{
    uint64_t params[2], out[2 * 8];
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 500));
    rc_job *j = h_sleep_job(ctx, 8, 10, 101, params, out);
    H_ST(ctx, rc_job_run(j), RC_ETIMEDOUT);
    printf("master saw: %s\n", rc_ctx_errmsg(ctx));
    H_CONTAINS(rc_ctx_errmsg(ctx), "0 of 8");
    H_EQ_U64(h_count_keys("job:*"), 0);
    H_EQ_U64(h_xlen(), 0);
    rc_job_destroy(j);
    j = h_sleep_job(ctx, 8, 10, 102, params, out);
    H_OK(ctx, rc_job_submit(j));
    H_EQ_U64(h_xlen(), 8);
    rc_job_destroy(j);
    H_EQ_U64(h_count_keys("job:*"), 0);
    H_EQ_U64(h_xlen(), 0);
    rc_ctx_destroy(ctx);
}

int main(int argc, char **argv)
{
    static const h_test tests[] = {
        {"worker_join_midjob", t_worker_join_midjob},
        {"kill9_midjob", t_kill9_midjob},
        {"stalled_worker", t_stalled_worker},
        {"tamper_task", t_tamper_task},
        {"tamper_result", t_tamper_result},
        {"wrong_key_worker", t_wrong_key_worker},
        {"fail_while_submitting", t_fail_while_submitting},
        {"wrong_key_while_submitting", t_wrong_key_while_submitting},
        {"sigterm_drain", t_sigterm_drain},
        {"linger", t_linger},
        {"queue_removed", t_queue_removed},
        {"queue_removed_midjob", t_queue_removed_midjob},
        {"queue_removed_unreadable", t_queue_removed_unreadable},
        {"descriptor_deleted", t_descriptor_deleted},
        {"connections_killed", t_connections_killed},
        {"master_interrupt", t_master_interrupt},
        {"master_interrupt_submit", t_master_interrupt_submit},
        {"stop_long_poll", t_stop_long_poll},
        {"unseen_at_exit", t_unseen_at_exit},
        {"submit_oom", t_submit_oom},
        {"job_timeout", t_job_timeout},
        {"result_lost", t_result_lost},
        {NULL, NULL},
    };
    return h_main(argc, argv, tests);
}
