/* test_security.c - redcoll against someone who can write to Redis but does not hold the key.
 *
 * Why: redcoll's threat model is "Redis is shared and untrusted": anyone who
 * can reach it may rewrite, truncate, duplicate, reorder, replay or delete
 * any key, and inject envelopes made with another key.  The promises tested
 * here, end to end with real worker processes and a real redis-server:
 *   - a job never returns a wrong number: RC_OK with the exact answer, or a
 *     refusal (RC_EAUTH / RC_ECANCELED) that says why;
 *   - a worker never runs input the master did not send (the `audit` kernel
 *     of testworker.c logs a checksum of every input it runs, and every line
 *     is checked against what the masters scattered);
 *   - nothing crashes: every worker is still serving at the end and exits 0
 *     on SIGTERM;
 *   - --encrypt keeps payloads out of Redis in plaintext;
 *   - key rings rotate a running fleet without a restart;
 *   - only an authenticated removal stops workers;
 *   - Redis passwords and ACL users work, fail clearly, and stay out of ps.
 * Subtests: attacker (every key of a running job rewritten, truncated,
 * duplicated, reordered, replayed from an earlier job and another queue,
 * forged with another key; prints a table of attacks and outcomes),
 * encrypt_on_wire, key_rotation, control_markers, redis_auth; and one
 * focused case per weakness the attacker run exposed, so each fix can be
 * checked alone: removal_replay, descriptor_churn, poison_entry, lost_task,
 * forged_attempts (each names the promise and the library code at fault).
 * TLS through stunnel is test_tls.sh.
 * Each subtest (argv[1]) is its own CTest test with its own redis-server
 * (security.cmake).  argv[2] is testworker, argv[3] the redcoll CLI.  Every
 * wait polls against a deadline; the attacker's loop is bounded in count and
 * time and driven by a seeded RNG (RC_TEST_SEED overrides the seed).
 *
 * Forgeries are built here from the documented envelope layout (internal.h)
 * with libsodium, as an attacker holding *another* key would; the test first
 * proves its MAC code right by recomputing the MAC of a captured authentic
 * entry with the real key, so a forged envelope is well formed in every
 * byte but the key. */
#include "harness.h"

#include <sodium.h>
#include <sys/time.h>

static const char *const no_args[] = {NULL};
static const char *g_cli; /* the redcoll CLI (argv[3]) */
static int g_slow;        /* RC_SEC_SLOW=1: sanitizer / -O0 build, shrink the work */

/* ------------------------------------------------------------------ */
/* Small helpers                                                         */

/* Expectations that do not stop the test: a subtest that finds a library
 * bug still runs its other checks, so one run shows everything that broke. */
static int g_soft;
#define S_EXPECT(cond, ...)                                                                              \
    do {                                                                                                 \
        if (!(cond)) {                                                                                   \
            g_soft++;                                                                                    \
            fflush(stdout);                                                                              \
            fprintf(stderr, "%s:%d: FAIL [%s]: expectation failed: %s: ", __FILE__, __LINE__, H.test, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                                \
            fputc('\n', stderr);                                                                         \
        }                                                                                                \
    } while (0)
static void s_soft_verdict(void)
{
    if (g_soft)
        H_FAIL("%d expectation(s) failed (each reported above)", g_soft);
}

/* Occurrences of needle in a worker's log. */
static int log_count(pid_t pid, const char *needle)
{
    char *t = h_worker_log(pid);
    int n = 0;
    for (const char *p = t; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(t);
    return n;
}

/* Workers blocked in their take (XREADGROUP / XAUTOCLAIM): serving. */
static size_t serving(void)
{
    redisReply *r = h_cmd("CLIENT LIST");
    size_t n = 0;
    for (const char *p = r->type == REDIS_REPLY_STRING ? r->str : ""; (p = strstr(p, " cmd=")) != NULL; p++)
        n += strncmp(p, " cmd=xreadgroup ", 16) == 0 || strncmp(p, " cmd=xautoclaim ", 16) == 0;
    freeReplyObject(r);
    return n;
}

/* Bytes of a string key (malloc'd, NULL if missing). */
static unsigned char *s_get(const char *key, size_t *len)
{
    redisReply *r = h_cmd("GET %s", key);
    unsigned char *out = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        *len = r->len;
        out = malloc(r->len ? r->len : 1);
        memcpy(out, r->str, r->len);
    }
    freeReplyObject(r);
    return out;
}

static void s_set(const char *key, const void *b, size_t len)
{
    freeReplyObject(h_cmd("SET %s %b", key, b, len));
}

static void s_del(const char *key) { freeReplyObject(h_cmd("DEL %s", key)); }

/* A copy of one stream entry. */
typedef struct s_entry {
    char id[48];
    char field[8];
    unsigned char *b;
    size_t len;
} s_entry;

static void s_entries_free(s_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].b);
        e[i].b = NULL;
    }
}

/* Up to max entries of stream key (from the start). */
static size_t s_xrange(const char *key, s_entry *out, size_t max)
{
    redisReply *r = h_cmd("XRANGE %s - + COUNT %d", key, (int)max);
    size_t n = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max; i++) {
        redisReply *e = r->element[i], *f = e->element[1];
        if (f->type != REDIS_REPLY_ARRAY || f->elements < 2)
            continue;
        snprintf(out[n].id, sizeof out[n].id, "%s", e->element[0]->str);
        snprintf(out[n].field, sizeof out[n].field, "%.*s", (int)f->element[0]->len, f->element[0]->str);
        out[n].len = f->element[1]->len;
        out[n].b = malloc(out[n].len ? out[n].len : 1);
        memcpy(out[n].b, f->element[1]->str, out[n].len);
        n++;
    }
    freeReplyObject(r);
    return n;
}

static void s_xadd(const char *key, const char *field, const void *b, size_t len)
{
    freeReplyObject(h_cmd("XADD %s * %s %b", key, field, b, len));
}

/* Keep at most cap entries in a capture list, adding any new ids from key. */
static size_t s_capture(const char *key, s_entry *list, size_t n, size_t cap)
{
    s_entry tmp[64];
    size_t got = s_xrange(key, tmp, 64);
    for (size_t i = 0; i < got; i++) {
        int have = 0;
        for (size_t k = 0; k < n; k++)
            have |= strcmp(list[k].id, tmp[i].id) == 0;
        if (!have && n < cap)
            list[n++] = tmp[i];
        else
            free(tmp[i].b);
    }
    return n;
}

/* Does any value stored under rc:{queue}:* contain needle?  Strings, streams
 * (every field and value), hashes, sorted sets: each read as the values
 * themselves (DUMP would compress them and hide a match).  *where names the
 * first key found (if given). */
static int s_redis_contains(const char *queue, const void *needle, size_t nlen, char *where, size_t wlen)
{
    char pat[300];
    snprintf(pat, sizeof pat, "rc:{%s}:*", queue);
    redisReply *keys = h_cmd("KEYS %s", pat);
    int found = 0;
    for (size_t i = 0; keys->type == REDIS_REPLY_ARRAY && i < keys->elements && !found; i++) {
        const char *k = keys->element[i]->str;
        redisReply *t = h_cmd("TYPE %s", k);
        char type[16];
        snprintf(type, sizeof type, "%s", t->str ? t->str : "");
        freeReplyObject(t);
        redisReply *v = NULL;
        if (strcmp(type, "string") == 0)
            v = h_cmd("GET %s", k);
        else if (strcmp(type, "stream") == 0)
            v = h_cmd("XRANGE %s - +", k);
        else if (strcmp(type, "hash") == 0)
            v = h_cmd("HGETALL %s", k);
        else if (strcmp(type, "zset") == 0)
            v = h_cmd("ZRANGE %s 0 -1", k);
        else
            continue;
        /* walk the reply tree */
        const redisReply *stack[4096];
        int sp = 0;
        stack[sp++] = v;
        while (sp && !found) {
            const redisReply *x = stack[--sp];
            if (x->type == REDIS_REPLY_STRING && x->len >= nlen) {
                found = memmem(x->str, x->len, needle, nlen) != NULL;
            } else if (x->type == REDIS_REPLY_ARRAY) {
                for (size_t c = 0; c < x->elements && sp < 4096; c++)
                    stack[sp++] = x->element[c];
            }
        }
        if (found && where)
            snprintf(where, wlen, "%s (%s)", k, type);
        freeReplyObject(v);
    }
    freeReplyObject(keys);
    return found;
}

/* ------------------------------------------------------------------ */
/* Keys and MACs, as an attacker with libsodium and the documented layout
 * would compute them (internal.h: keyed BLAKE2b-256 over "redcoll/1" ||
 * u16 queue length || queue || the envelope up to its MAC, under
 * crypto_kdf subkey 1 of the secret, context "redcoll1"; key id = first 4
 * bytes of subkey 2, little-endian). */

typedef struct s_key {
    unsigned char secret[32];
    unsigned char mac[32];
    uint32_t keyid;
    char hex[65];
} s_key;

static void s_key_from_hex(s_key *k, const char *hex)
{
    size_t bl = 0;
    H_CHECK(sodium_hex2bin(k->secret, 32, hex, 64, NULL, &bl, NULL) == 0 && bl == 32, "bad key hex '%.64s'", hex);
    snprintf(k->hex, sizeof k->hex, "%.64s", hex);
    unsigned char id[32];
    H_CHECK(crypto_kdf_derive_from_key(k->mac, 32, 1, "redcoll1", k->secret) == 0 &&
                crypto_kdf_derive_from_key(id, 32, 2, "redcoll1", k->secret) == 0,
            "crypto_kdf_derive_from_key failed");
    k->keyid = (uint32_t)id[0] | (uint32_t)id[1] << 8 | (uint32_t)id[2] << 16 | (uint32_t)id[3] << 24;
}

/* The first key of a key file. */
static void s_key_load(s_key *k, const char *path)
{
    char *t = h_read_file(path);
    H_CHECK(t && strlen(t) >= 64, "cannot read key file %s", path);
    s_key_from_hex(k, t);
    free(t);
}

static uint32_t s_env_keyid(const unsigned char *b)
{
    return (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
}

static void s_mac(const s_key *k, const char *queue, const unsigned char *msg, size_t len, unsigned char out[32])
{
    crypto_generichash_state st;
    size_t ql = strlen(queue);
    unsigned char qlen[2] = {(unsigned char)ql, (unsigned char)(ql >> 8)};
    crypto_generichash_init(&st, k->mac, 32, 32);
    crypto_generichash_update(&st, (const unsigned char *)"redcoll/1", 9);
    crypto_generichash_update(&st, qlen, 2);
    crypto_generichash_update(&st, (const unsigned char *)queue, ql);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, out, 32);
}

/* Stamp key k's id into the envelope and MAC it with k (or, spoof_id != 0:
 * claim that key id but MAC with k). */
static void s_sign(unsigned char *b, size_t len, const s_key *k, const char *queue, uint32_t spoof_id)
{
    h_put32(b + 4, spoof_id ? spoof_id : k->keyid);
    s_mac(k, queue, b, len - H_MAC, b + len - H_MAC);
}

/* Does the MAC of a captured envelope verify under k for queue?  (Proves
 * the forging code above matches the library.) */
static int s_mac_ok(const s_key *k, const char *queue, const unsigned char *b, size_t len)
{
    unsigned char m[32];
    if (len < H_HDR + H_MAC)
        return 0;
    s_mac(k, queue, b, len - H_MAC, m);
    return memcmp(m, b + len - H_MAC, 32) == 0;
}

/* Write a key file (mode given) holding the hex keys in order, atomically
 * (temp file + rename), so a worker re-reading it never sees half of it. */
static void s_write_keyring(const char *path, mode_t mode, const s_key *const *keys, int n)
{
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    H_CHECK(fd >= 0, "open %s: %s", tmp, strerror(errno));
    for (int i = 0; i < n; i++) {
        char line[70];
        int l = snprintf(line, sizeof line, "%s\n", keys[i]->hex);
        H_CHECK(write(fd, line, (size_t)l) == l, "write %s: %s", tmp, strerror(errno));
    }
    H_CHECK(fchmod(fd, mode) == 0 && close(fd) == 0, "fchmod/close %s: %s", tmp, strerror(errno));
    H_CHECK(rename(tmp, path) == 0, "rename %s: %s", tmp, strerror(errno));
}

/* ------------------------------------------------------------------ */
/* Processes                                                             */

/* Start testworker with an explicit URL (NULL: no --redis), key file and
 * queue, extra arguments, and environment changes ("NAME=VALUE" sets,
 * "NAME" unsets), logging to H.w[i].log.  Returns once it says "ready". */
static pid_t s_spawn(const char *url, const char *keyfile, const char *queue, const char *const *extra,
                     const char *const *envmods)
{
    if (H.nw >= H_MAXW)
        H_FAIL("too many workers");
    h_worker *w = &H.w[H.nw];
    snprintf(w->log, sizeof w->log, "%s/worker-%d.log", H.dir, H.nw);
    const char *argv[64];
    int n = 0;
    argv[n++] = H.worker_bin;
    if (url) {
        argv[n++] = "--redis";
        argv[n++] = url;
    }
    argv[n++] = "--key-file";
    argv[n++] = keyfile ? keyfile : H.keyfile;
    argv[n++] = "--queue";
    argv[n++] = queue ? queue : H.queue;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        H_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        for (int i = 0; envmods && envmods[i]; i++) {
            const char *eq = strchr(envmods[i], '=');
            if (eq) {
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)(eq - envmods[i]), envmods[i]);
                setenv(name, eq + 1, 1);
            } else {
                unsetenv(envmods[i]);
            }
        }
        int fd = open(w->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    w->pid = pid;
    w->alive = 1;
    w->status = 0;
    w->killed = 0;
    H.nw++;
    long long dl = h_deadline(H_DEADLINE_MS);
    for (;;) {
        char *t = h_read_file(w->log);
        int ready = t && strstr(t, "testworker: pid ") && strstr(t, " ready\n");
        free(t);
        if (ready)
            return pid;
        int st;
        if (h_reap(pid, &st)) {
            char d[64];
            h_describe_status(st, d, sizeof d);
            H_FAIL("worker %ld ended (%s) before it was ready", (long)pid, d);
        }
        if (h_expired(dl))
            H_FAIL("worker %ld not ready after %d ms", (long)pid, H_DEADLINE_MS);
        h_nap_ms(2);
    }
}

/* Wait for pid to end within ms; its wait status. */
static int s_wait_exit(pid_t pid, long long ms)
{
    long long dl = h_deadline(ms);
    int st = 0;
    while (!h_reap(pid, &st)) {
        if (h_expired(dl))
            H_FAIL("process %ld still running after %lld ms", (long)pid, ms);
        h_nap_ms(20);
    }
    return st;
}

/* Run a program to completion (deadline), stdout+stderr into *out
 * (malloc'd); returns its exit status (-1: killed by a signal). */
static int s_run(const char *const *argv, char **out)
{
    char log[600];
    snprintf(log, sizeof log, "%s/run-%ld.log", H.dir, (long)h_now_ms());
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        H_FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    long long dl = h_deadline(H_DEADLINE_MS);
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (h_expired(dl)) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            H_FAIL("%s still running after %d ms", argv[0], H_DEADLINE_MS);
        }
        h_nap_ms(10);
    }
    if (out)
        *out = h_read_file(log);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------------ */
/* Audited jobs: the `audit` kernel (testworker.c) logs a checksum of every
 * input it runs to $RC_TEST_AUDIT and outputs the input unchanged. */

typedef struct s_job {
    const char *queue;
    uint64_t tag, seed, T, C;   /* C uint64 words per task */
    uint64_t *in, *out;
    unsigned char bcast[128];
    size_t bcast_len;
    rc_job *job;
} s_job;

static uint64_t s_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* Describe (not submit) an audited job: input words distinct per (tag,
 * rank, i); broadcast {ms, tag} then `extra` bytes. */
static void s_job_make(s_job *sj, rc_ctx *ctx, const char *queue, uint64_t tag, uint64_t T, uint64_t C, uint64_t ms,
                       const void *extra, size_t extra_len)
{
    memset(sj, 0, sizeof *sj);
    sj->queue = queue;
    sj->tag = tag;
    sj->seed = s_mix(tag * 31 + 7);
    sj->T = T;
    sj->C = C;
    sj->in = calloc(T * C, sizeof *sj->in);
    sj->out = calloc(T * C, sizeof *sj->out);
    H_CHECK(sj->in && sj->out, "out of memory");
    for (uint64_t i = 0; i < T * C; i++) {
        sj->in[i] = s_mix(tag << 40 ^ i);
        sj->out[i] = 0xEEEEEEEEEEEEEEEEull;
    }
    H_CHECK(16 + extra_len <= sizeof sj->bcast, "broadcast too long");
    memcpy(sj->bcast, &ms, 8);
    memcpy(sj->bcast + 8, &tag, 8);
    if (extra_len)
        memcpy(sj->bcast + 16, extra, extra_len);
    sj->bcast_len = 16 + extra_len;
    H_OK(ctx, rc_job_create(ctx, "audit", T, &sj->job));
    H_OK(ctx, rc_job_set_seed(sj->job, sj->seed));
    H_OK(ctx, rc_job_bcast(sj->job, sj->bcast, sj->bcast_len, RC_BYTE));
    H_OK(ctx, rc_job_scatter(sj->job, sj->in, C, RC_UINT64));
    H_OK(ctx, rc_job_gather(sj->job, sj->out, C, RC_UINT64));
}

static void s_job_check_exact(const s_job *sj)
{
    for (uint64_t i = 0; i < sj->T * sj->C; i++)
        H_CHECK(sj->out[i] == sj->in[i], "job tag %llu element %llu (task %llu): got 0x%016llx, want 0x%016llx",
                (unsigned long long)sj->tag, (unsigned long long)i, (unsigned long long)(i / sj->C),
                (unsigned long long)sj->out[i], (unsigned long long)sj->in[i]);
}

static void s_job_free(s_job *sj)
{
    rc_job_destroy(sj->job);
    free(sj->in);
    free(sj->out);
    sj->job = NULL;
    sj->in = sj->out = NULL;
}

/* Every line of the audit file names a job of `jobs` and carries exactly the
 * seed, input and broadcast that job's master sent for that rank.  Returns
 * the number of lines; per-tag counts into runs[] (parallel to jobs). */
static size_t s_audit_check(const char *path, s_job *const *jobs, int njobs, size_t *runs)
{
    char *t = h_read_file(path);
    size_t lines = 0;
    for (int k = 0; k < njobs; k++)
        runs[k] = 0;
    for (char *p = t, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        H_CHECK(nl != NULL, "audit file %s ends in a partial line: '%s'", path, p);
        *nl = '\0';
        unsigned long long tag, seed, rank, ntasks, fin, fb;
        size_t inlen, blen;
        long pid;
        H_CHECK(sscanf(p, "A %llu %llu %llu %llu %llx %zu %llx %zu %ld", &tag, &seed, &rank, &ntasks, &fin, &inlen,
                       &fb, &blen, &pid) == 9,
                "unparsable audit line '%s'", p);
        lines++;
        int k = 0;
        while (k < njobs && jobs[k]->tag != tag)
            k++;
        H_CHECK(k < njobs, "a worker (pid %ld) ran a task of unknown job tag %llu: '%s'", pid, tag, p);
        const s_job *sj = jobs[k];
        runs[k]++;
        H_CHECK(rank < sj->T && ntasks == sj->T && seed == sj->seed,
                "a worker ran job %llu task %llu/%llu with seed %llx: not what the master sent (T %llu seed %llx)",
                tag, rank, ntasks, seed, (unsigned long long)sj->T, (unsigned long long)sj->seed);
        const uint64_t *chunk = sj->in + rank * sj->C;
        H_CHECK(inlen == sj->C * 8 && fin == hk_fnv1a(chunk, sj->C * 8),
                "FORGED INPUT RUN: worker %ld ran job %llu task %llu on %zu bytes with checksum %016llx; the master "
                "sent %zu bytes with checksum %016llx",
                pid, tag, rank, inlen, fin, (size_t)(sj->C * 8), (unsigned long long)hk_fnv1a(chunk, sj->C * 8));
        H_CHECK(blen == sj->bcast_len && fb == hk_fnv1a(sj->bcast, sj->bcast_len),
                "FORGED BROADCAST RUN: worker %ld ran job %llu task %llu with a %zu-byte broadcast %016llx",
                pid, tag, rank, blen, fb);
        H_CHECK(h_find((pid_t)pid) != NULL, "audit line from pid %ld, not one of our workers", pid);
    }
    free(t);
    return lines;
}

/* ------------------------------------------------------------------ */
/* Master log, captured and classified                                   */

typedef struct s_mlog {
    int rejected_result, republished, duplicate, other_key_reject, restored, lines;
    char last_reject[300];
} s_mlog;

static void s_mlog_fn(int level, const char *line, void *user)
{
    (void)level;
    s_mlog *m = user;
    m->lines++;
    const char *p;
    if ((p = strstr(line, "rejected a result")) != NULL) {
        m->rejected_result++;
        snprintf(m->last_reject, sizeof m->last_reject, "%s", p);
    }
    m->republished += strstr(line, "sent a fresh authentic copy") != NULL;
    m->duplicate += strstr(line, "duplicate result ignored") != NULL;
    m->other_key_reject += strstr(line, "rejected task") != NULL && strstr(line, "worker with key id") != NULL;
    m->restored += strstr(line, "restoring it") != NULL;
}

/* ------------------------------------------------------------------ */
/* 1. The attacker
 *
 * Material first, all authentic under our key: an earlier job on this queue
 * (tasks, descriptor, results, end marker), a job on another queue (the
 * same), another queue's removal marker.  Then a 30-task audited job runs
 * on 3 workers while a seeded loop in this process, bounded in operations
 * and time, picks one attack at a time (a_names below) against every key
 * the job uses, calling rc_job_test between attacks as a master would.
 * Then the attacker stops and the job gets 25 s to finish.  Outcomes
 * allowed: RC_OK with every byte exact, or RC_EAUTH / RC_ECANCELED with a
 * reason.  A wrong answer, or an audit line showing a worker ran input the
 * masters never sent, fails at once; a hang (RC_ETIMEDOUT) or a kernel
 * failure that never happened (RC_EKERNEL) is reported and the remaining
 * checks still run: the workers survive, a clean job on the same queue
 * completes, every worker exits 0 on SIGTERM. */

enum {
    A_T_REWRITE, A_T_TRUNCATE, A_T_DUP, A_T_REORDER, A_T_REPLAY_OLDJOB, A_T_REPLAY_OTHERQ, A_T_WRONGKEY,
    A_T_SPOOFID, A_T_WRONGKIND, A_T_JUNK, A_M_REWRITE, A_M_TRUNCATE, A_M_OTHERJOB, A_M_OTHERQ, A_M_DELETE,
    A_M_REPLAY_SELF, A_R_REWRITE, A_R_TRUNCATE, A_R_DUP, A_R_REORDER, A_R_REPLAY_OLDJOB, A_R_REPLAY_OTHERQ,
    A_R_WRONGKEY, A_R_WRONGKEY_REJECT, A_W_WRITE, A_E_JUNK, A_E_OLDJOB, A_E_OTHERQ, A_Q_OTHERQ, A_Q_JUNK,
    A_REG_WRITE, A_COUNT
};
static const char *const a_names[A_COUNT] = {
    [A_T_REWRITE] = "tasks: rewrite one byte (XDEL + XADD altered copy)",
    [A_T_TRUNCATE] = "tasks: truncate an entry (XDEL + XADD cut copy)",
    [A_T_DUP] = "tasks: duplicate an entry (XADD copy)",
    [A_T_REORDER] = "tasks: reorder (XDEL + XADD same bytes at the end)",
    [A_T_REPLAY_OLDJOB] = "tasks: replay a task of an earlier job",
    [A_T_REPLAY_OTHERQ] = "tasks: replay a task from another queue",
    [A_T_WRONGKEY] = "tasks: inject a task for this job, wrong key",
    [A_T_SPOOFID] = "tasks: inject a task, wrong key, our key id",
    [A_T_WRONGKIND] = "tasks: replay a descriptor/result as a task",
    [A_T_JUNK] = "tasks: random bytes / wrong field name",
    [A_M_REWRITE] = "descriptor: rewrite one byte",
    [A_M_TRUNCATE] = "descriptor: truncate",
    [A_M_OTHERJOB] = "descriptor: replace by an earlier job's",
    [A_M_OTHERQ] = "descriptor: replace by another queue's",
    [A_M_DELETE] = "descriptor: delete",
    [A_M_REPLAY_SELF] = "descriptor: replay its own old bytes",
    [A_R_REWRITE] = "results: rewrite one byte",
    [A_R_TRUNCATE] = "results: truncate an entry",
    [A_R_DUP] = "results: duplicate an entry",
    [A_R_REORDER] = "results: reorder (XDEL + XADD)",
    [A_R_REPLAY_OLDJOB] = "results: replay an earlier job's result",
    [A_R_REPLAY_OTHERQ] = "results: replay another queue's result",
    [A_R_WRONGKEY] = "results: inject a result, wrong key",
    [A_R_WRONGKEY_REJECT] = "results: inject a rejection notice, wrong key",
    [A_W_WRITE] = "why hash: write/delete reasons",
    [A_E_JUNK] = "job:J:end: random bytes / delete",
    [A_E_OLDJOB] = "job:J:end: an earlier job's authentic marker",
    [A_E_OTHERQ] = "job:J:end: another queue's authentic marker",
    [A_Q_OTHERQ] = "removed: another queue's authentic removal",
    [A_Q_JUNK] = "removed: random bytes",
    [A_REG_WRITE] = "workers registry: junk entries",
};

typedef struct s_material {
    s_entry tasks_old[16], tasks_otherq[16], res_old[16], res_otherq[16];
    size_t ntasks_old, ntasks_otherq, nres_old, nres_otherq;
    unsigned char *meta_old, *meta_otherq, *end_old, *end_otherq, *removed_otherq, *meta_self;
    size_t meta_old_len, meta_otherq_len, end_old_len, end_otherq_len, removed_otherq_len, meta_self_len;
} s_material;

static uint64_t rng_below(rc_rng *r, uint64_t n) { return n ? rc_rng_u64(r) % n : 0; }

/* Pick one entry of a stream (from its first 64); 0 if empty. */
static int s_pick(const char *key, rc_rng *rng, s_entry *out)
{
    s_entry e[64];
    size_t n = s_xrange(key, e, 64);
    if (!n)
        return 0;
    size_t k = (size_t)rng_below(rng, n);
    *out = e[k];
    e[k].b = NULL;
    s_entries_free(e, n);
    return 1;
}

static void t_attacker(void)
{
    const uint64_t T = g_slow ? 16 : 30, C = 6, MS = g_slow ? 150 : 200;
    const long long ATTACK_MS = g_slow ? 5000 : 7000;
    const int MAX_OPS = 2000;
    uint64_t seed = getenv("RC_TEST_SEED") ? strtoull(getenv("RC_TEST_SEED"), NULL, 0) : 20251125;
    rc_rng rng;
    rc_rng_seed(&rng, seed, 0, 0);
    printf("attacker seed %llu (RC_TEST_SEED=%llu reproduces the sequence of attacks)\n", (unsigned long long)seed,
           (unsigned long long)seed);

    char audit[600], otherq[128], scratchq[128], tasks[300], wrongkf[600];
    snprintf(audit, sizeof audit, "%s/audit.log", H.dir);
    setenv("RC_TEST_AUDIT", audit, 1);
    snprintf(otherq, sizeof otherq, "%s-other", H.queue);
    snprintf(scratchq, sizeof scratchq, "%s-scratch", H.queue);
    h_tasks_key(tasks, sizeof tasks);
    s_key key, wrong;
    s_key_load(&key, H.keyfile);
    h_keyfile("wrongkey", wrongkf, sizeof wrongkf);
    s_key_load(&wrong, wrongkf);
    s_material M;
    memset(&M, 0, sizeof M);

    /* --- material: an earlier job on this queue, a job on another queue,
       another queue's removal marker, all authentic under our key --- */
    rc_ctx *ctx = h_ctx();
    s_mlog mlog;
    memset(&mlog, 0, sizeof mlog);
    s_job old;
    s_job_make(&old, ctx, H.queue, 1001, 8, C, 100, NULL, 0);
    H_OK(ctx, rc_job_submit(old.job));
    M.ntasks_old = s_xrange(tasks, M.tasks_old, 16);
    H_EQ_U64(M.ntasks_old, 8);
    /* the forging code is right: it reproduces the MAC of an authentic task */
    H_CHECK(s_mac_ok(&key, H.queue, M.tasks_old[0].b, M.tasks_old[0].len),
            "recomputing the MAC of an authentic task failed: the test's envelope code is out of date");
    H_CHECK(s_env_keyid(M.tasks_old[0].b) == key.keyid, "key id %08x in the envelope, computed %08x",
            s_env_keyid(M.tasks_old[0].b), key.keyid);
    H_CHECK(!s_mac_ok(&key, otherq, M.tasks_old[0].b, M.tasks_old[0].len), "the MAC does not bind the queue");
    char meta_old[300], res_old[320], end_old[340];
    h_meta_key(old.job, meta_old, sizeof meta_old);
    h_res_key(old.job, res_old, sizeof res_old);
    snprintf(end_old, sizeof end_old, "%s:end", meta_old);
    M.meta_old = s_get(meta_old, &M.meta_old_len);
    H_CHECK(M.meta_old, "no descriptor for the earlier job");

    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = s_spawn(H.url, NULL, NULL, no_args, NULL);
    for (;;) {
        M.nres_old = s_capture(res_old, M.res_old, M.nres_old, 16);
        rc_status st = rc_job_test(old.job);
        if (st != RC_EAGAIN) {
            H_ST(ctx, st, RC_OK);
            break;
        }
        h_nap_ms(20);
    }
    s_job_check_exact(&old);
    H_CHECK(M.nres_old >= 1, "captured no result of the earlier job");
    M.end_old = s_get(end_old, &M.end_old_len);
    H_CHECK(M.end_old, "the earlier job left no end marker at %s", end_old);

    rc_ctx *octx = h_ctx();
    H_OK(octx, rc_ctx_set_str(octx, RC_OPT_QUEUE, otherq));
    s_job oq;
    s_job_make(&oq, octx, otherq, 2002, 6, C, 100, NULL, 0);
    H_OK(octx, rc_job_submit(oq.job));
    char otasks[300], ometa[300], ores[320], oend[340];
    snprintf(otasks, sizeof otasks, "rc:{%s}:tasks", otherq);
    snprintf(ometa, sizeof ometa, "rc:{%s}:job:%s", otherq, rc_job_id(oq.job));
    snprintf(ores, sizeof ores, "%s:res", ometa);
    snprintf(oend, sizeof oend, "%s:end", ometa);
    M.ntasks_otherq = s_xrange(otasks, M.tasks_otherq, 16);
    M.meta_otherq = s_get(ometa, &M.meta_otherq_len);
    H_CHECK(M.ntasks_otherq == 6 && M.meta_otherq, "cannot capture the other queue's job");
    pid_t ow = s_spawn(H.url, NULL, otherq, no_args, NULL);
    for (;;) {
        M.nres_otherq = s_capture(ores, M.res_otherq, M.nres_otherq, 16);
        rc_status st = rc_job_test(oq.job);
        if (st != RC_EAGAIN) {
            H_ST(octx, st, RC_OK);
            break;
        }
        h_nap_ms(20);
    }
    s_job_check_exact(&oq);
    H_CHECK(M.nres_otherq >= 1, "captured no result of the other queue's job");
    M.end_otherq = s_get(oend, &M.end_otherq_len);
    H_CHECK(M.end_otherq, "the other queue's job left no end marker");
    h_signal(ow, SIGTERM);
    H_EXPECT_EXIT0(ow, H_DEADLINE_MS);

    rc_ctx *sctx = h_ctx();
    H_OK(sctx, rc_ctx_set_str(sctx, RC_OPT_QUEUE, scratchq));
    H_OK(sctx, rc_queue_remove(sctx));
    char sremoved[300];
    snprintf(sremoved, sizeof sremoved, "rc:{%s}:removed", scratchq);
    M.removed_otherq = s_get(sremoved, &M.removed_otherq_len);
    H_CHECK(M.removed_otherq, "rc_queue_remove left no marker at %s", sremoved);
    rc_ctx_destroy(sctx);

    /* --- the job under attack --- */
    H_OK(ctx, rc_ctx_set_logger(ctx, s_mlog_fn, &mlog));
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, 2));
    s_job job;
    s_job_make(&job, ctx, H.queue, 3003, T, C, MS, NULL, 0);
    H_OK(ctx, rc_job_submit(job.job));
    uint64_t jid = h_job_id(job.job);
    char meta[300], res[320], why[330], end[340], removed[300], reg[300];
    h_meta_key(job.job, meta, sizeof meta);
    h_res_key(job.job, res, sizeof res);
    snprintf(why, sizeof why, "%s:why", meta);
    snprintf(end, sizeof end, "%s:end", meta);
    snprintf(removed, sizeof removed, "rc:{%s}:removed", H.queue);
    snprintf(reg, sizeof reg, "rc:{%s}:workers", H.queue);
    M.meta_self = s_get(meta, &M.meta_self_len);
    H_CHECK(M.meta_self, "no descriptor for the job under attack");

    int tries[A_COUNT] = {0};
    long long t0 = h_now_ms();
    rc_status st = RC_EAGAIN;
    int ops = 0;
    /* forged payloads carry this marker, so the audit would name them */
    uint64_t forged_in[16];
    for (size_t i = 0; i < 16; i++)
        forged_in[i] = 0xF0F0DEADBEEF0000ull + i;
    while (ops < MAX_OPS && h_now_ms() - t0 < ATTACK_MS) {
        st = rc_job_test(job.job);
        if (st != RC_EAGAIN)
            break;
        int a = (int)rng_below(&rng, A_COUNT);
        s_entry e;
        unsigned char *b = NULL;
        size_t len = 0;
        switch (a) {
        case A_T_REWRITE:
        case A_T_TRUNCATE:
        case A_T_DUP:
        case A_T_REORDER:
        case A_R_REWRITE:
        case A_R_TRUNCATE:
        case A_R_DUP:
        case A_R_REORDER: {
            const char *key = a <= A_T_REORDER ? tasks : res;
            if (!s_pick(key, &rng, &e))
                continue; /* nothing there right now */
            if (a == A_T_REWRITE || a == A_R_REWRITE)
                e.b[rng_below(&rng, e.len)] ^= (unsigned char)(1u << rng_below(&rng, 8));
            if (a == A_T_TRUNCATE || a == A_R_TRUNCATE)
                e.len = (size_t)rng_below(&rng, e.len);
            if (a != A_T_DUP && a != A_R_DUP)
                freeReplyObject(h_cmd("XDEL %s %s", key, e.id));
            s_xadd(key, e.field, e.b, e.len);
            free(e.b);
            break;
        }
        case A_T_REPLAY_OLDJOB: {
            s_entry *x = &M.tasks_old[rng_below(&rng, M.ntasks_old)];
            s_xadd(tasks, "e", x->b, x->len);
            break;
        }
        case A_T_REPLAY_OTHERQ: {
            s_entry *x = &M.tasks_otherq[rng_below(&rng, M.ntasks_otherq)];
            s_xadd(tasks, "e", x->b, x->len);
            break;
        }
        case A_T_WRONGKEY:
        case A_T_SPOOFID:
        case A_R_WRONGKEY:
        case A_R_WRONGKEY_REJECT: {
            uint64_t r = rng_below(&rng, T);
            unsigned kind = a == A_R_WRONGKEY ? H_KIND_RESULT : a == A_R_WRONGKEY_REJECT ? H_KIND_REJECT : H_KIND_TASK;
            const char *why_text = "forged: task altered";
            b = h_forge(kind, 0, jid, r, T, 0, kind == H_KIND_REJECT ? "" : "audit",
                        kind == H_KIND_REJECT ? (const void *)why_text : (const void *)forged_in,
                        kind == H_KIND_REJECT ? strlen(why_text) : C * 8, &len);
            if (kind == H_KIND_TASK)
                h_put64(b + 32, 0); /* TASK aux is 0 */
            s_sign(b, len, &wrong, H.queue, a == A_T_SPOOFID ? key.keyid : 0);
            s_xadd(kind == H_KIND_TASK ? tasks : res, "e", b, len);
            free(b);
            break;
        }
        case A_T_WRONGKIND:
            if (rng_below(&rng, 2))
                s_xadd(tasks, "e", M.meta_self, M.meta_self_len);
            else
                s_xadd(tasks, "e", M.res_old[0].b, M.res_old[0].len);
            break;
        case A_T_JUNK: {
            unsigned char junk[200];
            size_t n = (size_t)rng_below(&rng, sizeof junk);
            for (size_t i = 0; i < n; i++)
                junk[i] = (unsigned char)rc_rng_u64(&rng);
            if (n >= 2) {
                junk[0] = 'R';
                junk[1] = 'C';
            }
            s_xadd(tasks, rng_below(&rng, 4) ? "e" : "x", junk, n);
            break;
        }
        case A_M_REWRITE:
        case A_M_TRUNCATE:
            if (!(b = s_get(meta, &len)))
                continue;
            if (a == A_M_REWRITE)
                b[rng_below(&rng, len)] ^= (unsigned char)(1u << rng_below(&rng, 8));
            else
                len = (size_t)rng_below(&rng, len);
            s_set(meta, b, len);
            free(b);
            break;
        case A_M_OTHERJOB:
            s_set(meta, M.meta_old, M.meta_old_len);
            break;
        case A_M_OTHERQ:
            s_set(meta, M.meta_otherq, M.meta_otherq_len);
            break;
        case A_M_DELETE:
            s_del(meta);
            break;
        case A_M_REPLAY_SELF:
            s_set(meta, M.meta_self, M.meta_self_len);
            break;
        case A_R_REPLAY_OLDJOB: {
            s_entry *x = &M.res_old[rng_below(&rng, M.nres_old)];
            s_xadd(res, "e", x->b, x->len);
            break;
        }
        case A_R_REPLAY_OTHERQ: {
            s_entry *x = &M.res_otherq[rng_below(&rng, M.nres_otherq)];
            s_xadd(res, "e", x->b, x->len);
            break;
        }
        case A_W_WRITE:
            if (rng_below(&rng, 3))
                freeReplyObject(h_cmd("HSET %s %llu %s", why, (unsigned long long)rng_below(&rng, T),
                                      "ATTACKER-WROTE-THIS-REASON"));
            else
                s_del(why);
            break;
        case A_E_JUNK:
            if (rng_below(&rng, 2)) {
                unsigned char junk[120];
                for (size_t i = 0; i < sizeof junk; i++)
                    junk[i] = (unsigned char)rc_rng_u64(&rng);
                s_set(end, junk, sizeof junk);
            } else {
                s_del(end);
            }
            break;
        case A_E_OLDJOB:
            s_set(end, M.end_old, M.end_old_len);
            break;
        case A_E_OTHERQ:
            s_set(end, M.end_otherq, M.end_otherq_len);
            break;
        case A_Q_OTHERQ:
            s_set(removed, M.removed_otherq, M.removed_otherq_len);
            break;
        case A_Q_JUNK: {
            unsigned char junk[100];
            for (size_t i = 0; i < sizeof junk; i++)
                junk[i] = (unsigned char)rc_rng_u64(&rng);
            s_set(removed, junk, sizeof junk);
            break;
        }
        case A_REG_WRITE:
            freeReplyObject(h_cmd("ZADD %s 1 attacker:1:%llx", reg, (unsigned long long)rc_rng_u64(&rng)));
            break;
        }
        tries[a]++;
        ops++;
        h_nap_ms(g_slow ? 15 : 8);
    }
    long long attack_ms = h_now_ms() - t0;
    /* the attacker stops (a real one would not have to: but a job that is
       destroyed faster than it runs cannot finish, and the question here is
       what it returns) and leaves its garbage behind.  Recovery gets 25 s,
       five leases: more than the worst backoff of a refusing worker (8 s). */
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, (long long)h_stats(job.job, NULL).seconds * 1000 + 25000));
    if (st == RC_EAGAIN)
        st = rc_job_wait(job.job);
    rc_job_stats s = h_stats(job.job, NULL);
    char errmsg[600];
    snprintf(errmsg, sizeof errmsg, "%s", rc_ctx_errmsg(ctx));

    printf("\n%-52s %6s\n", "attack (attacker loop, seeded)", "tries");
    for (int a = 0; a < A_COUNT; a++)
        printf("%-52s %6d\n", a_names[a], tries[a]);
    printf("%-52s %6d in %lld ms\n", "total", ops, attack_ms);
    int refused = 0, keyid_msgs = 0, handed = 0;
    for (int i = 0; i < 3; i++) {
        refused += log_count(w[i], "REFUSED entry");
        keyid_msgs += log_count(w[i], "is not the key the master used");
        handed += log_count(w[i], "handing task");
    }
    printf("\noutcome of the job under attack: %s%s%s\n", h_stname(st), st == RC_OK ? "" : ": ",
           st == RC_OK ? "" : errmsg);
    printf("  rc_job_get_stats: done %llu/%llu, rejected %llu, republished %llu, duplicates %llu, redelivered %llu, "
           "workers %llu, %.2f s\n",
           (unsigned long long)s.done, (unsigned long long)s.tasks, (unsigned long long)s.rejected,
           (unsigned long long)s.republished, (unsigned long long)s.duplicates, (unsigned long long)s.redelivered,
           (unsigned long long)s.workers_seen, s.seconds);
    printf("  master log: %d results rejected, %d fresh copies sent, %d duplicates ignored, %d descriptor "
           "restores, %d other-key notices\n",
           mlog.rejected_result, mlog.republished, mlog.duplicate, mlog.restored, mlog.other_key_reject);
    printf("  workers: %d entries refused (%d naming a foreign key id), %d orphaned tasks handed back\n", refused,
           keyid_msgs, handed);
    static const char *const reasons[] = {"MAC does not verify", "MAC made with key id", "declared lengths",
                                          "shorter than the smallest", "bad magic", "envelope version",
                                          "authentic envelope of kind", "not for this job",
                                          "does not match its job descriptor", "no envelope field",
                                          "unknown envelope kind", "not zero"};
    printf("  worker refusals by reason:");
    for (size_t k = 0; k < sizeof reasons / sizeof reasons[0]; k++) {
        int c = 0;
        for (int i = 0; i < 3; i++)
            c += log_count(w[i], reasons[k]);
        if (c)
            printf(" \"%s\" %d;", reasons[k], c);
    }
    printf("\n");

    /* the promise: never a wrong number.  A wrong answer is fatal at once;
       no answer (a hang until the job timeout) is reported and the other
       checks still run. */
    if (st == RC_OK) {
        s_job_check_exact(&job);
        H_EQ_U64(s.done, T);
    } else {
        H_CHECK(st != RC_EKERNEL || !strstr(errmsg, "ATTACKER"),
                "an attacker-written reason reached the master as a kernel failure: \"%s\"", errmsg);
        S_EXPECT(st == RC_EAUTH || st == RC_ECANCELED,
                 "the job under attack returned %s (\"%s\"): expected RC_OK with the exact answer, or RC_EAUTH / "
                 "RC_ECANCELED naming the reason",
                 h_stname(st), errmsg);
        S_EXPECT(strlen(errmsg) > 10, "the job failed with %s but gave no reason", h_stname(st));
    }
    S_EXPECT(s.rejected >= 1, "the master rejected nothing although %d forgeries were pushed", ops);
    rc_job_destroy(job.job);
    job.job = NULL;

    /* the pool survives: every worker still alive, and a fresh job on the
       same queue, with the attacker's garbage still in Redis, is exact */
    for (int i = 0; i < 3; i++)
        H_CHECK(h_alive(w[i]), "worker %ld died under attack", (long)w[i]);
    H_OK(ctx, rc_ctx_set_logger(ctx, NULL, NULL));
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, 1));
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 25000));
    s_job after;
    s_job_make(&after, ctx, H.queue, 4004, 6, C, 10, NULL, 0);
    long long ta = h_now_ms();
    rc_status ast = rc_job_run(after.job);
    printf("  a clean job after the attack: %s in %.2f s%s%s\n", h_stname(ast), (double)(h_now_ms() - ta) / 1000.0,
           ast == RC_OK ? "" : ": ", ast == RC_OK ? "" : rc_ctx_errmsg(ctx));
    if (ast == RC_OK)
        s_job_check_exact(&after);
    S_EXPECT(ast == RC_OK, "a clean job on the attacked queue returned %s: %s", h_stname(ast), rc_ctx_errmsg(ctx));

    /* no worker ever ran an input the masters did not send */
    s_job *all[] = {&old, &oq, &job, &after};
    size_t runs[4];
    size_t lines = s_audit_check(audit, all, 4, runs);
    printf("  audit: %zu kernel runs, every input and broadcast authentic (earlier job %zu, other queue %zu, "
           "attacked job %zu, after %zu)\n",
           lines, runs[0], runs[1], runs[2], runs[3]);
    H_CHECK(runs[2] >= (st == RC_OK ? T : 1), "only %zu runs of the attacked job were audited", runs[2]);
    printf("  task entries left in the stream after everything: %lld\n", h_xlen());
    for (int i = 0; i < 3; i++)
        H_CHECK(!h_log_contains(w[i], "AddressSanitizer") && !h_log_contains(w[i], "runtime error"),
                "worker %ld reported a memory error", (long)w[i]);

    H_STOP_ALL();
    s_job_free(&old);
    s_job_free(&oq);
    s_job_free(&job);
    s_job_free(&after);
    s_entries_free(M.tasks_old, M.ntasks_old);
    s_entries_free(M.tasks_otherq, M.ntasks_otherq);
    s_entries_free(M.res_old, M.nres_old);
    s_entries_free(M.res_otherq, M.nres_otherq);
    free(M.meta_old);
    free(M.meta_otherq);
    free(M.end_old);
    free(M.end_otherq);
    free(M.removed_otherq);
    free(M.meta_self);
    rc_ctx_destroy(octx);
    rc_ctx_destroy(ctx);
    s_soft_verdict();
}

/* ------------------------------------------------------------------ */
/* Sleep jobs (kernel `sleep`: outputs {hk_sleep_value(rank, salt), pid})  */

/* Run a small sleep job to completion on ctx and check it. */
static void run_sleep_job(rc_ctx *ctx, uint64_t T, uint64_t ms, uint64_t salt)
{
    uint64_t params[2], *out = calloc(2 * T, sizeof *out);
    rc_job *j = h_sleep_job(ctx, T, ms, salt, params, out);
    H_OK(ctx, rc_job_run(j));
    h_check_sleep_out(out, T, salt);
    rc_job_destroy(j);
    free(out);
}

/* ------------------------------------------------------------------ */
/* 2. --encrypt: no payload byte in Redis is plaintext                  */

static const char MARK[] = "RC-PLAINTEXT-MARKER-5e1f0a93"; /* 28 bytes */

/* Put MARK into every task's chunk of an audited job (before submit). */
static void mark_inputs(s_job *sj)
{
    H_CHECK(sj->C * 8 >= sizeof MARK + 8, "chunks too small for the marker");
    for (uint64_t r = 0; r < sj->T; r++)
        memcpy((unsigned char *)(sj->in + r * sj->C) + 4, MARK, sizeof MARK - 1);
}

static void t_encrypt_on_wire(void)
{
    const uint64_t T = 12, C = 8, MS = g_slow ? 150 : 120;
    char audit[600], tasks[300], where[400];
    snprintf(audit, sizeof audit, "%s/audit.log", H.dir);
    setenv("RC_TEST_AUDIT", audit, 1);
    h_tasks_key(tasks, sizeof tasks);

    /* the detector works: a signed-only job shows the marker in Redis */
    rc_ctx *plain = h_ctx();
    s_job pj;
    s_job_make(&pj, plain, H.queue, 5005, T, C, MS, MARK, sizeof MARK - 1);
    mark_inputs(&pj);
    H_OK(plain, rc_job_submit(pj.job));
    H_CHECK(s_redis_contains(H.queue, MARK, sizeof MARK - 1, where, sizeof where),
            "the marker of a signed-only job is nowhere in Redis: the scan cannot see plaintext");
    printf("signed-only job: marker visible in %s (as expected)\n", where);
    H_OK(plain, rc_job_cancel(pj.job));
    s_job_free(&pj);
    rc_ctx_destroy(plain);
    H_CHECK(!s_redis_contains(H.queue, MARK, sizeof MARK - 1, where, sizeof where),
            "the cancelled job left its plaintext in %s", where);

    /* sealed: marker in every input, in the broadcast and (identity) in every output */
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_ENCRYPT, 1));
    s_job sj;
    s_job_make(&sj, ctx, H.queue, 6006, T, C, MS, MARK, sizeof MARK - 1);
    mark_inputs(&sj);
    H_OK(ctx, rc_job_submit(sj.job));
    char meta[300], res[320];
    h_meta_key(sj.job, meta, sizeof meta);
    h_res_key(sj.job, res, sizeof res);
    s_entry e[64];
    size_t n = s_xrange(tasks, e, 64);
    H_EQ_U64(n, T);
    for (size_t i = 0; i < n; i++) {
        H_CHECK(e[i].len > H_HDR && e[i].b[3] == (H_KIND_TASK | 0x80), "task entry %s has kind byte 0x%02x, not a "
                "sealed task (0x%02x)", e[i].id, e[i].b[3], H_KIND_TASK | 0x80);
        H_CHECK(!memmem(e[i].b, e[i].len, MARK, sizeof MARK - 1), "task entry %s holds the plaintext marker", e[i].id);
    }
    s_entries_free(e, n);
    size_t mlen;
    unsigned char *mb = s_get(meta, &mlen);
    H_CHECK(mb && mb[3] == (H_KIND_JOB | 0x80), "the descriptor is not sealed (kind byte 0x%02x)", mb ? mb[3] : 0);
    free(mb);
    H_CHECK(!s_redis_contains(H.queue, MARK, sizeof MARK - 1, where, sizeof where), "plaintext marker in %s", where);

    h_spawn_workers(2, no_args, NULL);
    size_t seen_results = 0, scans = 0;
    char seen_ids[64][48];
    long long last_scan = 0;
    for (;;) {
        n = s_xrange(res, e, 64);
        for (size_t i = 0; i < n; i++) {
            H_CHECK(e[i].len > H_HDR && e[i].b[3] == (H_KIND_RESULT | 0x80),
                    "result entry %s has kind byte 0x%02x, not a sealed result", e[i].id, e[i].b[3]);
            H_CHECK(!memmem(e[i].b, e[i].len, MARK, sizeof MARK - 1), "result entry %s holds the plaintext marker",
                    e[i].id);
            int have = 0;
            for (size_t k = 0; k < seen_results && k < 64; k++)
                have |= strcmp(seen_ids[k], e[i].id) == 0;
            if (!have && seen_results < 64)
                snprintf(seen_ids[seen_results++], sizeof seen_ids[0], "%s", e[i].id);
        }
        s_entries_free(e, n);
        if (h_now_ms() - last_scan > 100) {
            H_CHECK(!s_redis_contains(H.queue, MARK, sizeof MARK - 1, where, sizeof where),
                    "plaintext marker in %s while the job runs", where);
            scans++;
            last_scan = h_now_ms();
        }
        rc_status st = rc_job_test(sj.job);
        if (st != RC_EAGAIN) {
            H_ST(ctx, st, RC_OK);
            break;
        }
        h_nap_ms(5);
    }
    s_job_check_exact(&sj);
    (void)h_stats(sj.job, "sealed job");
    printf("read %zu distinct sealed result entries and %zu full scans of the queue's keys while the job ran: no "
           "plaintext\n",
           seen_results, scans);
    H_CHECK(seen_results >= T / 2, "only %zu of %llu results were seen in Redis: the check saw too little",
            seen_results, (unsigned long long)T);
    s_job *all[] = {&sj};
    size_t runs[1];
    s_audit_check(audit, all, 1, runs);
    H_CHECK(runs[0] >= T, "%zu audited runs of %llu tasks", runs[0], (unsigned long long)T);
    /* the kernel saw the plaintext: the marker went through sealed */
    for (uint64_t r = 0; r < T; r++)
        H_CHECK(memcmp((unsigned char *)(sj.out + r * C) + 4, MARK, sizeof MARK - 1) == 0,
                "task %llu's output lost its marker", (unsigned long long)r);
    s_job_free(&sj);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */
/* 3. Key rotation with a running fleet                                  */

/* Wait until every worker of pids logged needle at least n times. */
static void wait_logs(const pid_t *pids, int np, const char *needle, int n, long long ms)
{
    long long dl = h_deadline(ms);
    for (int i = 0; i < np; i++)
        while (log_count(pids[i], needle) < n) {
            if (h_expired(dl))
                H_FAIL("worker %ld logged \"%s\" %d time(s) within %lld ms, want %d", (long)pids[i], needle,
                       log_count(pids[i], needle), ms, n);
            h_nap_ms(50);
        }
}

/* Submit a sleep job, check which key ids sign its tasks and its results,
 * then collect it exactly. */
static void rotation_job(rc_ctx *ctx, uint64_t salt, uint32_t task_keyid, uint32_t result_keyid, const char *label)
{
    enum { T = 8 };
    uint64_t params[2], out[2 * T];
    char tasks[300], res[320];
    h_tasks_key(tasks, sizeof tasks);
    rc_job *j = h_sleep_job(ctx, T, 150, salt, params, out);
    H_OK(ctx, rc_job_submit(j));
    h_res_key(j, res, sizeof res);
    s_entry e[64];
    size_t n = s_xrange(tasks, e, 64);
    H_CHECK(n >= 1, "%s: no task entry left to inspect", label);
    for (size_t i = 0; i < n; i++)
        H_CHECK(s_env_keyid(e[i].b) == task_keyid, "%s: task entry %s signed with key id %08x, want %08x", label,
                e[i].id, s_env_keyid(e[i].b), task_keyid);
    s_entries_free(e, n);
    size_t got = 0;
    long long dl = h_deadline(H_DEADLINE_MS);
    while ((got = s_xrange(res, e, 64)) == 0) {
        H_CHECK(!h_expired(dl), "%s: no result within %d ms", label, H_DEADLINE_MS);
        h_nap_ms(10);
    }
    for (size_t i = 0; i < got; i++)
        H_CHECK(s_env_keyid(e[i].b) == result_keyid, "%s: result %s signed with key id %08x, want %08x", label,
                e[i].id, s_env_keyid(e[i].b), result_keyid);
    s_entries_free(e, got);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, salt);
    printf("%s: exact; tasks signed %08x, results signed %08x\n", label, task_keyid, result_keyid);
    rc_job_destroy(j);
}

static void t_key_rotation(void)
{
    char fa[600], fb[600], wk[600], mab[600], mba[600], mb[600], ma[600];
    h_keyfile("keyA", fa, sizeof fa);
    h_keyfile("keyB", fb, sizeof fb);
    s_key A, B;
    s_key_load(&A, fa);
    s_key_load(&B, fb);
    H_CHECK(A.keyid != B.keyid, "two fresh keys with one id %08x", A.keyid);
    printf("key A id %08x, key B id %08x\n", A.keyid, B.keyid);
    snprintf(wk, sizeof wk, "%s/worker.key", H.dir);
    snprintf(mab, sizeof mab, "%s/master-A.key", H.dir);
    snprintf(mba, sizeof mba, "%s/master-BA.key", H.dir);
    snprintf(mb, sizeof mb, "%s/master-B.key", H.dir);
    snprintf(ma, sizeof ma, "%s/master-A-only.key", H.dir);
    const s_key *ring_a[] = {&A}, *ring_ab[] = {&A, &B}, *ring_ba[] = {&B, &A}, *ring_b[] = {&B};
    s_write_keyring(wk, 0600, ring_a, 1);
    s_write_keyring(mab, 0600, ring_a, 1);
    s_write_keyring(mba, 0600, ring_ba, 2);
    s_write_keyring(mb, 0600, ring_b, 1);
    s_write_keyring(ma, 0600, ring_a, 1);

    pid_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = s_spawn(H.url, wk, NULL, no_args, NULL);
    rc_ctx *m1 = h_ctx_key(mab);
    rotation_job(m1, 101, A.keyid, A.keyid, "workers A, master A");
    rc_ctx_destroy(m1);

    /* workers: sign with A, accept B too - no restart */
    s_write_keyring(wk, 0600, ring_ab, 2);
    long long t0 = h_now_ms();
    wait_logs(w, 2, "changed: reloaded", 1, 15000);
    printf("workers reloaded A,B after %lld ms\n", h_now_ms() - t0);
    rc_ctx *m2 = h_ctx_key(mba);
    rotation_job(m2, 102, B.keyid, A.keyid, "workers A,B; master B,A");
    rc_ctx_destroy(m2);

    /* workers: B only */
    s_write_keyring(wk, 0600, ring_b, 1);
    wait_logs(w, 2, "changed: reloaded", 2, 15000);
    rc_ctx *m3 = h_ctx_key(mb);
    rotation_job(m3, 103, B.keyid, B.keyid, "workers B; master B");

    /* an unusable file (readable by others) is refused, loudly, and the
       keys in memory stay */
    s_write_keyring(wk, 0644, ring_a, 1);
    wait_logs(w, 2, "changed but cannot be used", 1, 15000);
    for (int i = 0; i < 2; i++) {
        char *log = h_worker_log(w[i]);
        const char *p = strstr(log, "changed but cannot be used");
        char line[400];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
        printf("worker %ld: ...%s\n", (long)w[i], line);
        H_CONTAINS(line, "chmod 600");
        H_CONTAINS(line, "keeping the keys in memory");
        free(log);
    }
    rotation_job(m3, 104, B.keyid, B.keyid, "workers B (file now 0644); master B");
    rc_ctx_destroy(m3);

    /* and A is really gone from the workers' ring: a master with A alone is
       refused (RC_EAUTH after one fresh copy) */
    rc_ctx *m4 = h_ctx_key(ma);
    H_OK(m4, rc_ctx_set_int(m4, RC_OPT_MAX_REPUBLISH, 1));
    uint64_t params[2], out[2 * 2];
    rc_job *j = h_sleep_job(m4, 2, 10, 105, params, out);
    H_ST(m4, rc_job_run(j), RC_EAUTH);
    printf("master A after the workers dropped A: RC_EAUTH: %s\n", rc_ctx_errmsg(m4));
    rc_job_destroy(j);
    rc_ctx_destroy(m4);

    /* the same two processes all along */
    H_EQ_U64(H.nw, 2);
    for (int i = 0; i < 2; i++)
        H_CHECK(h_alive(w[i]), "worker %ld is gone", (long)w[i]);
    H_STOP_ALL();
}

/* ------------------------------------------------------------------ */
/* 4. Control markers: only an authenticated removal stops workers       */

static const char *const NOT_AUTH = "without an authenticated removal";

/* DEL the task stream (as anyone can) and check both workers noticed,
 * stayed, and serve the next job exactly. */
static void delete_stream_round(rc_ctx *ctx, const pid_t *w, int round, const char *label)
{
    char tasks[300];
    h_tasks_key(tasks, sizeof tasks);
    H_WAIT(h_blocked_readers() >= 2, H_DEADLINE_MS, "%zu workers waiting for tasks before round %d", h_blocked_readers(),
           round);
    s_del(tasks);
    wait_logs(w, 2, NOT_AUTH, round, H_DEADLINE_MS);
    for (int i = 0; i < 2; i++)
        H_CHECK(h_alive(w[i]), "%s: worker %ld exited", label, (long)w[i]);
    run_sleep_job(ctx, 6, 20, 200 + (uint64_t)round);
    printf("%s: both workers stayed (\"%s\") and served the next job exactly\n", label, NOT_AUTH);
}

static void t_control_markers(void)
{
    char scratch[128], sremoved[300], removed[300];
    snprintf(scratch, sizeof scratch, "%s-scratch", H.queue);
    snprintf(sremoved, sizeof sremoved, "rc:{%s}:removed", scratch);
    snprintf(removed, sizeof removed, "rc:{%s}:removed", H.queue);
    rc_ctx *sc = h_ctx();
    H_OK(sc, rc_ctx_set_str(sc, RC_OPT_QUEUE, scratch));
    H_OK(sc, rc_queue_remove(sc));
    rc_ctx_destroy(sc);
    size_t other_len;
    unsigned char *other = s_get(sremoved, &other_len);
    H_CHECK(other, "rc_queue_remove wrote no marker at %s", sremoved);

    pid_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = s_spawn(H.url, NULL, NULL, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    delete_stream_round(ctx, w, 1, "DEL of the task stream alone");
    unsigned char junk[88];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 13 + 1);
    s_set(removed, junk, sizeof junk);
    delete_stream_round(ctx, w, 2, "DEL + a removal marker of random bytes");
    junk[0] = 'R';
    junk[1] = 'C';
    junk[2] = H_VERSION;
    junk[3] = 5; /* CONTROL, well-formed header, bad MAC */
    s_set(removed, junk, sizeof junk);
    delete_stream_round(ctx, w, 3, "DEL + a well-formed forged removal marker");
    s_set(removed, other, other_len);
    delete_stream_round(ctx, w, 4, "DEL + another queue's authentic removal marker");
    free(other);
    s_del(removed);

    /* a descriptor deleted without the key is restored by the master and
       the job completes exactly (repeated deletions: descriptor_churn) */
    enum { T = 20 };
    uint64_t params[2], out[2 * T];
    rc_job *j = h_sleep_job(ctx, T, 100, 250, params, out);
    H_OK(ctx, rc_job_submit(j));
    char meta[300];
    h_meta_key(j, meta, sizeof meta);
    H_WAIT(rc_job_test(j) == RC_EAGAIN && h_stats(j, NULL).done >= 2, H_DEADLINE_MS, "no task done");
    H_EQ_U64(h_cmd_int("DEL %s", meta), 1);
    H_OK(ctx, rc_job_wait(j));
    h_check_sleep_out(out, T, 250);
    rc_job_stats s = h_stats(j, NULL);
    H_EQ_U64(s.done, T);
    printf("descriptor deleted mid-job: restored by the master, job exact (redelivered %llu)\n",
           (unsigned long long)s.redelivered);
    rc_job_destroy(j);

    /* `redcoll purge --key-file` is authenticated: the workers exit 0 */
    H_CHECK(g_cli && access(g_cli, X_OK) == 0, "no redcoll CLI given (argv[3])");
    const char *argv[] = {g_cli, "purge", "--redis", H.url, "--key-file", H.keyfile, H.queue, NULL};
    char *text = NULL;
    int rc = s_run(argv, &text);
    printf("redcoll purge --key-file: exit %d%s%s", rc, text && *text ? ": " : "\n", text ? text : "");
    H_CHECK(rc == 0, "redcoll purge exited %d: %s", rc, text ? text : "");
    free(text);
    H_EXPECT_EXIT0(w[0], H_DEADLINE_MS);
    H_EXPECT_EXIT0(w[1], H_DEADLINE_MS);
    for (int i = 0; i < 2; i++)
        H_CHECK(h_log_contains(w[i], "was removed (authenticated)"), "worker %ld did not log the removal", (long)w[i]);
    H_EQ_U64(h_count_keys("*"), 0);
    rc_ctx_destroy(ctx);
}

/* ------------------------------------------------------------------ */
/* 5. Redis passwords and ACL users                                      */

/* The ACL rule set under which redcoll works with least privilege (Redis 7):
 *
 *   ACL SETUSER rcuser reset on >PASSWORD ~rc:* resetchannels -@all
 *       +@stream +@string +@hash +@sortedset +@keyspace +@connection
 *       +@transaction +eval +evalsha +script|load -@dangerous
 *
 * Why each part: ~rc:* - every key redcoll touches is rc:{queue}:... (the
 * scripts' keys are checked too); streams carry tasks and results (XADD,
 * XREADGROUP, XCLAIM, XPENDING, XACK, XDEL, XRANGE, XREAD,
 * XGROUP); strings hold descriptors and markers (GET, SET); a hash holds the
 * per-task failure reasons (HSET, HGET); a sorted set the worker registry
 * (ZADD, ZREM); @keyspace gives DEL, UNLINK, EXISTS, PEXPIRE, PTTL and the
 * SCAN of `redcoll purge`; @connection gives AUTH and SELECT; a delivery
 * and a block of tasks each go in one MULTI/EXEC (@transaction); the queue
 * protocol runs as Lua scripts (EVALSHA, with EVAL and SCRIPT LOAD to load
 * them).  -@dangerous then drops KEYS, FLUSHALL/FLUSHDB, CLIENT KILL, SORT,
 * RESTORE, MIGRATE, SWAPDB.  The coarser "+@all -@dangerous ~rc:*" works too
 * (also tested).  Channels (pub/sub) are not used. */
static const char *const ACL_RULES[] = {"reset", "on", ">pw", "~rc:*", "resetchannels", "-@all", "+@stream",
                                        "+@string", "+@hash", "+@sortedset", "+@keyspace", "+@connection",
                                        "+@transaction", "+eval",
                                        "+evalsha", "+script|load", "-@dangerous", NULL};

static void acl_setuser(const char *user, const char *const *rules)
{
    const char *argv[40];
    int n = 0;
    argv[n++] = "ACL";
    argv[n++] = "SETUSER";
    argv[n++] = user;
    for (int i = 0; rules[i] && n < 40; i++)
        argv[n++] = rules[i];
    redisReply *r = redisCommandArgv(h_redis(), n, argv, NULL);
    H_CHECK(r && r->type != REDIS_REPLY_ERROR, "ACL SETUSER %s: %s", user, r ? r->str : H.redis->errstr);
    freeReplyObject(r);
}

/* A worker on url; a master on url runs a small job exactly with it. */
static pid_t auth_round(const char *url, const char *label, uint64_t salt)
{
    pid_t w = s_spawn(url, NULL, NULL, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_str(ctx, RC_OPT_URL, url));
    run_sleep_job(ctx, 4, 10, salt);
    rc_ctx_destroy(ctx);
    printf("%s: worker and master work\n", label);
    return w;
}

/* A worker on url keeps retrying and logs `needle`; SIGTERM: exit 0.  A
 * master on url fails at submit with errmsg containing `needle`. */
static void auth_refused(const char *url, const char *needle, const char *label)
{
    pid_t w = s_spawn(url, NULL, NULL, no_args, NULL);
    H_WAIT(h_log_contains(w, needle), H_DEADLINE_MS, "%s: the worker never said \"%s\"", label, needle);
    H_CHECK(h_alive(w), "%s: the worker gave up instead of retrying", label);
    h_signal(w, SIGTERM);
    H_EXPECT_EXIT0(w, H_DEADLINE_MS);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_str(ctx, RC_OPT_URL, url));
    uint64_t params[2], out[2];
    rc_job *j = h_sleep_job(ctx, 1, 0, 1, params, out);
    rc_status st = rc_job_submit(j);
    printf("%s: master: %s: %s\n", label, h_stname(st), rc_ctx_errmsg(ctx));
    H_CHECK(st == RC_EREDIS, "%s: rc_job_submit returned %s", label, h_stname(st));
    H_CONTAINS(rc_ctx_errmsg(ctx), needle);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
}

/* Does /proc/pid/<what> (NUL-separated) contain needle? */
static int proc_contains(pid_t pid, const char *what, const char *needle)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    H_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    static char buf[1 << 16];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    H_CHECK(n > 0, "read %s: %s", path, strerror(errno));
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i])
            buf[i] = '\n';
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void write_file(const char *path, mode_t mode, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    H_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    H_CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write %s", path);
    H_CHECK(fchmod(fd, mode) == 0 && close(fd) == 0, "fchmod/close %s", path);
}

static void t_redis_auth(void)
{
    char url[300], nopass[300], wrong[300], acl[300], aclwrong[300], weak[300];
    snprintf(url, sizeof url, "redis://:s3cr3t@%s:%d", H.host, H.port);
    snprintf(nopass, sizeof nopass, "redis://%s:%d", H.host, H.port);
    snprintf(wrong, sizeof wrong, "redis://:guessed@%s:%d", H.host, H.port);
    snprintf(acl, sizeof acl, "redis://rcuser:pw@%s:%d", H.host, H.port);
    snprintf(aclwrong, sizeof aclwrong, "redis://rcuser:nope@%s:%d", H.host, H.port);
    snprintf(weak, sizeof weak, "redis://rcweak:pw@%s:%d", H.host, H.port);
    /* the harness's own connection stays authenticated after this */
    freeReplyObject(h_cmd("CONFIG SET requirepass s3cr3t"));

    pid_t w1 = auth_round(url, "redis://:PASSWORD@host", 301);
    auth_refused(nopass, "password", "no password");
    H_CHECK(h_log_contains(H.w[H.nw - 1].pid, "NOAUTH"), "the worker's message does not quote Redis' NOAUTH");
    auth_refused(wrong, "credentials", "wrong password");

    /* the URL in a 0600 file: works, and the password is in neither the
       worker's command line nor its environment */
    char uf[600], uf644[600], envset[700], env644[700];
    snprintf(uf, sizeof uf, "%s/redis-url", H.dir);
    snprintf(uf644, sizeof uf644, "%s/redis-url-644", H.dir);
    char line[400];
    snprintf(line, sizeof line, "%s\n", url);
    write_file(uf, 0600, line);
    write_file(uf644, 0644, line);
    snprintf(envset, sizeof envset, "REDCOLL_URL_FILE=%s", uf);
    snprintf(env644, sizeof env644, "REDCOLL_URL_FILE=%s", uf644);
    const char *const env_ok[] = {envset, "REDCOLL_URL", NULL};
    pid_t wf = s_spawn(NULL, NULL, NULL, no_args, env_ok);
    setenv("REDCOLL_URL_FILE", uf, 1);
    unsetenv("REDCOLL_URL");
    rc_ctx *fm = rc_ctx_create();
    H_OK(fm, rc_ctx_set_str(fm, RC_OPT_QUEUE, H.queue));
    H_OK(fm, rc_ctx_load_key(fm, H.keyfile));
    H_OK(fm, rc_ctx_set_int(fm, RC_OPT_JOB_TIMEOUT_MS, H_DEADLINE_MS));
    h_signal(w1, SIGTERM); /* the URL-file worker must do the work alone */
    H_EXPECT_EXIT0(w1, H_DEADLINE_MS);
    uint64_t params[2], out[2 * 4];
    rc_job *j = h_sleep_job(fm, 4, 10, 302, params, out);
    H_OK(fm, rc_job_run(j));
    h_check_sleep_out(out, 4, 302);
    for (int r = 0; r < 4; r++)
        H_EQ_U64(out[2 * r + 1], wf);
    rc_job_destroy(j);
    rc_ctx_destroy(fm);
    H_CHECK(!proc_contains(wf, "cmdline", "s3cr3t"), "the password is in the worker's command line");
    H_CHECK(!proc_contains(wf, "environ", "s3cr3t"), "the password is in the worker's environment");
    H_CHECK(proc_contains(wf, "environ", "REDCOLL_URL_FILE="), "the check read the wrong process");
    printf("REDCOLL_URL_FILE (0600): worker and master work; the password is in neither /proc/%ld/cmdline nor "
           "/proc/%ld/environ\n",
           (long)wf, (long)wf);

    /* the same file readable by others: refused, saying how to fix it */
    const char *const env_bad[] = {env644, "REDCOLL_URL", NULL};
    pid_t wb = s_spawn(NULL, NULL, NULL, no_args, env_bad);
    int st = s_wait_exit(wb, H_DEADLINE_MS);
    H_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a worker with a 0644 URL file ended with wait status 0x%x, "
            "want exit 1", (unsigned)st);
    H_CHECK(h_log_contains(wb, "chmod 600"), "the worker did not say chmod 600");
    setenv("REDCOLL_URL_FILE", uf644, 1);
    rc_ctx *bm = rc_ctx_create();
    H_OK(bm, rc_ctx_set_str(bm, RC_OPT_QUEUE, H.queue));
    H_OK(bm, rc_ctx_load_key(bm, H.keyfile));
    j = h_sleep_job(bm, 1, 0, 303, params, out);
    rc_status s2 = rc_job_submit(j);
    printf("REDCOLL_URL_FILE (0644): master: %s: %s\n", h_stname(s2), rc_ctx_errmsg(bm));
    H_CHECK(s2 != RC_OK, "a master used a URL file readable by others");
    H_CONTAINS(rc_ctx_errmsg(bm), "chmod 600");
    rc_job_destroy(j);
    rc_ctx_destroy(bm);
    unsetenv("REDCOLL_URL_FILE");
    h_signal(wf, SIGTERM);
    H_EXPECT_EXIT0(wf, H_DEADLINE_MS);

    /* ACL users: the least-privilege rule set, and the coarse one */
    acl_setuser("rcuser", ACL_RULES);
    pid_t wa = auth_round(acl, "ACL user rcuser (least privilege)", 304);
    {
        /* what the rule set denies */
        struct timeval tv = {5, 0};
        redisContext *c = redisConnectWithTimeout(H.host, H.port, tv);
        H_CHECK(c && !c->err, "connect");
        redisReply *r = redisCommand(c, "AUTH rcuser pw");
        H_CHECK(r && r->type == REDIS_REPLY_STATUS, "AUTH rcuser: %s", r ? r->str : c->errstr);
        freeReplyObject(r);
        const char *denied[] = {"GET notredcoll", "KEYS *", "FLUSHALL", "CONFIG GET requirepass", "SCRIPT FLUSH"};
        for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
            r = redisCommand(c, denied[i]);
            H_CHECK(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOPERM"), "rcuser may run '%s'", denied[i]);
            freeReplyObject(r);
        }
        redisFree(c);
    }
    h_signal(wa, SIGTERM);
    H_EXPECT_EXIT0(wa, H_DEADLINE_MS);
    static const char *const coarse[] = {"reset", "on", ">pw", "~rc:*", "+@all", "-@dangerous", NULL};
    acl_setuser("rcuser", coarse);
    wa = auth_round(acl, "ACL user rcuser (+@all -@dangerous)", 305);
    h_signal(wa, SIGTERM);
    H_EXPECT_EXIT0(wa, H_DEADLINE_MS);
    acl_setuser("rcuser", ACL_RULES);
    auth_refused(aclwrong, "credentials of user rcuser", "ACL user, wrong password");
    /* a user without the stream commands: the error names the permission */
    static const char *const weak_rules[] = {"reset", "on", ">pw", "~rc:*", "+@string", "+@connection", NULL};
    acl_setuser("rcweak", weak_rules);
    auth_refused(weak, "lacks a permission", "ACL user without stream commands");
}

/* ------------------------------------------------------------------ */
/* Focused cases of the weaknesses the attacker run exposes, one promise
 * each, so a fix can be checked on its own.                            */

/* When worker pid started (ms since the epoch), from its registry entry
 * (rc:{Q}:worker:<consumer>, "started="); -1 while it has none. */
static long long s_started_ms(pid_t pid)
{
    char consumer[200], info[300];
    h_consumer_of(pid, consumer, sizeof consumer);
    if (!consumer[0])
        return -1;
    snprintf(info, sizeof info, "rc:{%s}:worker:%s", H.queue, consumer);
    redisReply *r = h_cmd("GET %s", info);
    const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, " started=") : NULL;
    long long ms = p ? strtoll(p + 9, NULL, 10) : -1;
    freeReplyObject(r);
    return ms;
}

/* Where "before they started" ends: the marker, made authentic again with
 * its time set to a millisecond before either worker started, is ignored;
 * set to the very millisecond the later one started, it stops both (a
 * purge racing a worker's start: faults.queue_removed once lost it, and the
 * worker recreated the removed queue). */
static void removal_boundary(const pid_t *w, const unsigned char *marker, size_t mlen)
{
    char removed[300], tasks[300];
    snprintf(removed, sizeof removed, "rc:{%s}:removed", H.queue);
    h_tasks_key(tasks, sizeof tasks);
    long long st[2];
    for (int i = 0; i < 2; i++)
        H_WAIT((st[i] = s_started_ms(w[i])) > 0, H_DEADLINE_MS, "worker %ld has no start time in the registry",
               (long)w[i]);
    long long lo = st[0] < st[1] ? st[0] : st[1], hi = st[0] < st[1] ? st[1] : st[0];
    s_key key;
    s_key_load(&key, H.keyfile);
    unsigned char *m = malloc(mlen);
    H_CHECK(m, "out of memory");
    memcpy(m, marker, mlen);

    int seen[2];
    for (int i = 0; i < 2; i++)
        seen[i] = log_count(w[i], NOT_AUTH);
    h_put64(m + 32, (uint64_t)(lo - 1));
    s_sign(m, mlen, &key, H.queue, 0);
    s_set(removed, m, mlen);
    H_WAIT(h_blocked_readers() >= 2, H_DEADLINE_MS, "%zu workers waiting for tasks", h_blocked_readers());
    s_del(tasks);
    for (int i = 0; i < 2; i++)
        H_WAIT(log_count(w[i], NOT_AUTH) > seen[i] || !h_alive(w[i]), H_DEADLINE_MS,
               "worker %ld reacted to the deleted stream in no way", (long)w[i]);
    for (int i = 0; i < 2; i++)
        S_EXPECT(h_alive(w[i]), "worker %ld exited on a marker made 1 ms before either worker started", (long)w[i]);
    printf("marker 1 ms before the first start (%lld): both workers serve on\n", lo);

    h_put64(m + 32, (uint64_t)hi);
    s_sign(m, mlen, &key, H.queue, 0);
    s_set(removed, m, mlen);
    H_WAIT(h_blocked_readers() >= 2, H_DEADLINE_MS, "%zu workers waiting for tasks", h_blocked_readers());
    s_del(tasks);
    for (int i = 0; i < 2; i++) {
        H_EXPECT_EXIT0(w[i], H_DEADLINE_MS);
        S_EXPECT(h_log_contains(w[i], "was removed (authenticated)"),
                 "worker %ld (started %lld) did not take a marker of %lld for a removal", (long)w[i], st[i], hi);
    }
    printf("marker of the later start's millisecond (%lld): both workers exited as removed\n", hi);
    free(m);
}

/* A replayed removal marker of this very queue, written before the running
 * workers started (the operator purged the queue, then started a new
 * fleet on it: the marker stays in Redis for 10 minutes).  queue.c says "an
 * old marker replayed later cannot stop a fleet"; neither the workers nor a
 * master may take it for a removal of the queue they serve now. */
static void t_removal_replay(void)
{
    char removed[300], tasks[300];
    snprintf(removed, sizeof removed, "rc:{%s}:removed", H.queue);
    h_tasks_key(tasks, sizeof tasks);
    rc_ctx *rm = h_ctx();
    H_OK(rm, rc_queue_remove(rm));
    rc_ctx_destroy(rm);
    size_t mlen;
    unsigned char *marker = s_get(removed, &mlen);
    H_CHECK(marker, "rc_queue_remove left no marker");
    h_nap_ms(1100); /* the marker is older than everything below, by more than clock granularity */

    pid_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = s_spawn(H.url, NULL, NULL, no_args, NULL);
    H_WAIT(serving() >= 2, H_DEADLINE_MS, "%zu workers serving", serving());
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 30000));

    /* master side: the descriptor is deleted (no key needed) while the old
       marker is there; the master must restore it, not cancel the job */
    enum { T = 10 };
    uint64_t params[2], out[2 * T];
    rc_job *j = h_sleep_job(ctx, T, 100, 401, params, out);
    H_OK(ctx, rc_job_submit(j));
    char meta[300];
    h_meta_key(j, meta, sizeof meta);
    H_WAIT(rc_job_test(j) == RC_EAGAIN && h_stats(j, NULL).done >= 1, H_DEADLINE_MS, "no task done");
    s_set(removed, marker, mlen);
    s_del(meta);
    rc_status st = rc_job_wait(j);
    printf("master, descriptor deleted with the old removal marker in place: %s%s%s\n", h_stname(st),
           st == RC_OK ? "" : ": ", st == RC_OK ? "" : rc_ctx_errmsg(ctx));
    if (st == RC_OK)
        h_check_sleep_out(out, T, 401);
    S_EXPECT(st == RC_OK, "a replayed removal marker from before the job cancelled it: %s: \"%s\"", h_stname(st),
             rc_ctx_errmsg(ctx));
    rc_job_destroy(j);

    /* worker side: the stream deleted with the old marker in place */
    s_set(removed, marker, mlen);
    H_WAIT(h_blocked_readers() >= 2, H_DEADLINE_MS, "%zu workers waiting for tasks", h_blocked_readers());
    s_del(tasks);
    long long dl = h_deadline(H_DEADLINE_MS);
    for (int i = 0; i < 2; i++)
        while (!h_log_contains(w[i], NOT_AUTH) && !h_log_contains(w[i], "was removed (authenticated)")) {
            H_CHECK(!h_expired(dl), "worker %ld reacted to the deleted stream in no way", (long)w[i]);
            h_nap_ms(20);
        }
    h_nap_ms(300);
    int left = 0;
    for (int i = 0; i < 2; i++) {
        int alive = h_alive(w[i]);
        left += !alive;
        printf("worker %ld: %s\n", (long)w[i],
               alive ? "kept serving" : "EXITED, taking the replayed marker for a removal of its queue");
    }
    S_EXPECT(left == 0, "%d of 2 workers exited on a removal marker written before they started (replay)", left);
    if (!left) {
        run_sleep_job(ctx, 4, 10, 402);
        removal_boundary(w, marker, mlen);
    }
    free(marker);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    s_soft_verdict();
}

/* The descriptor deleted again and again from the moment the job is
 * submitted (no key needed).  The master restores it each time; workers
 * meanwhile hand the job's tasks back.  The job must still complete exactly
 * (or fail saying it was tampered with) - not fail as RC_EKERNEL "given up
 * after 3 attempts; its worker died", which no worker did. */
static void t_descriptor_churn(void)
{
    h_spawn_workers(2, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 30000));
    /* 2 s of work on 2 workers: the master restores the key once a second,
       so the test's deletes land at least twice (with 20 tasks, 1 s of
       work, a fast run finished before the second) */
    enum { T = 40 };
    uint64_t params[2], out[2 * T];
    rc_job *j = h_sleep_job(ctx, T, 100, 260, params, out);
    H_OK(ctx, rc_job_submit(j));
    char meta[300];
    h_meta_key(j, meta, sizeof meta);
    int dels = 0;
    long long t0 = h_now_ms();
    rc_status st = RC_EAGAIN;
    while (h_now_ms() - t0 < 2500 && (st = rc_job_test(j)) == RC_EAGAIN) {
        if (h_cmd_int("DEL %s", meta) == 1)
            dels++;
        h_nap_ms(200);
    }
    if (st == RC_EAGAIN)
        st = rc_job_wait(j);
    rc_job_stats s = h_stats(j, NULL);
    printf("descriptor deleted %d times in the first 2.5 s: %s, done %llu/%d, redelivered %llu%s%s\n", dels,
           h_stname(st), (unsigned long long)s.done, T, (unsigned long long)s.redelivered, st == RC_OK ? "" : ": ",
           st == RC_OK ? "" : rc_ctx_errmsg(ctx));
    H_CHECK(dels >= 2, "the descriptor was deleted only %d times", dels);
    if (st == RC_OK)
        h_check_sleep_out(out, T, 260);
    S_EXPECT(st == RC_OK || st == RC_EAUTH || st == RC_ECANCELED,
             "deleting the descriptor (no key needed) made the job return %s: \"%s\"", h_stname(st),
             rc_ctx_errmsg(ctx));
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    s_soft_verdict();
}

/* Entries that can never verify and claim a job this queue never had (a
 * task copied from another queue; a well-formed envelope made with another
 * key) are refused - and must then be gone: worker.c's refuse() promises to
 * delete what it cannot trust "so no one else wastes time on it". */
static void t_poison_entry(void)
{
    char otherq[128], otasks[300], tasks[300], wrongkf[600];
    snprintf(otherq, sizeof otherq, "%s-other", H.queue);
    snprintf(otasks, sizeof otasks, "rc:{%s}:tasks", otherq);
    h_tasks_key(tasks, sizeof tasks);
    rc_ctx *octx = h_ctx();
    H_OK(octx, rc_ctx_set_str(octx, RC_OPT_QUEUE, otherq));
    uint64_t params[2], out[2];
    rc_job *oj = h_sleep_job(octx, 1, 0, 501, params, out);
    H_OK(octx, rc_job_submit(oj));
    s_entry oe[4];
    H_CHECK(s_xrange(otasks, oe, 4) == 1, "the other queue's task is not there");
    H_OK(octx, rc_job_cancel(oj));
    rc_job_destroy(oj);
    rc_ctx_destroy(octx);
    s_key wrong;
    h_keyfile("wrongkey", wrongkf, sizeof wrongkf);
    s_key_load(&wrong, wrongkf);
    size_t flen;
    uint64_t in[4] = {1, 2, 3, 4};
    unsigned char *forged = h_forge(H_KIND_TASK, 0, 0x0123456789abcdefull, 0, 1, 0, "sleep", in, sizeof in, &flen);
    h_put64(forged + 32, 0);
    s_sign(forged, flen, &wrong, H.queue, 0);
    s_xadd(tasks, "e", oe[0].b, oe[0].len);
    s_xadd(tasks, "e", forged, flen);
    free(forged);
    s_entries_free(oe, 1);
    s_entry poison[2];
    H_EQ_U64(s_xrange(tasks, poison, 2), 2);

    pid_t w[2];
    for (int i = 0; i < 2; i++)
        w[i] = s_spawn(H.url, NULL, NULL, no_args, NULL);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 20000));
    enum { T = 8 };
    uint64_t p2[2], o2[2 * T];
    rc_job *j = h_sleep_job(ctx, T, 20, 502, p2, o2);
    long long t0 = h_now_ms();
    rc_status st = rc_job_run(j);
    long long took = h_now_ms() - t0;
    printf("a clean %d-task job next to the two foreign entries: %s in %lld ms\n", T, h_stname(st), took);
    if (st == RC_OK)
        h_check_sleep_out(o2, T, 502);
    S_EXPECT(st == RC_OK, "the clean job returned %s: %s", h_stname(st), rc_ctx_errmsg(ctx));
    rc_job_destroy(j);
    long long dl = h_deadline(10000);
    while (h_xlen() != 0 && !h_expired(dl))
        h_nap_ms(50);
    int refusals[2] = {0, 0}, handbacks = 0;
    for (int k = 0; k < 2; k++) {
        char needle[80];
        snprintf(needle, sizeof needle, "REFUSED entry %s ", poison[k].id);
        for (int i = 0; i < 2; i++)
            refusals[k] += log_count(w[i], needle);
    }
    for (int i = 0; i < 2; i++)
        handbacks += log_count(w[i], "handing task");
    long long left = h_xlen();
    printf("after %lld ms: %lld entries left in the stream; entry from another queue refused %d times, "
           "wrong-key entry refused %d times; %d hand-backs of unverifiable entries\n",
           h_now_ms() - t0, left, refusals[0], refusals[1], handbacks);
    S_EXPECT(left == 0, "%lld unverifiable entries are still in the task stream %lld ms later: refused and handed "
             "back instead of deleted",
             left, h_now_ms() - t0);
    S_EXPECT(refusals[0] <= 2 && refusals[1] <= 2, "the same unverifiable entries were refused %d and %d times",
             refusals[0], refusals[1]);
    S_EXPECT(took < 8000, "a job of %d 20-ms tasks on 2 workers took %lld ms: the refusals' back-off starves it", T,
             took);
    s_entries_free(poison, 2);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    s_soft_verdict();
}

/* A small delivery's results share one result entry, a field each.  An
 * attacker who rewrites such an entry - one envelope altered, another
 * repeated, a field that is no envelope at all - must cost the job exactly
 * those fields: the others are accepted, the altered task is sent again,
 * and the answer is the one a clean run gives. */
static void t_packed_results(void)
{
    enum { T = 16 };
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 20000));
    uint64_t params[2], out[2 * T];
    rc_job *j = h_sleep_job(ctx, T, 0, 503, params, out);
    H_OK(ctx, rc_job_submit(j));
    (void)s_spawn(H.url, NULL, NULL, no_args, NULL);
    char res[320];
    h_res_key(j, res, sizeof res);
    H_WAIT(h_results(res) == T, H_DEADLINE_MS, "not all %d results delivered", T);

    /* every envelope, in stream order, and the entries that held them */
    redisReply *r = h_cmd("XRANGE %s - +", res);
    H_CHECK(r->type == REDIS_REPLY_ARRAY, "XRANGE of the results");
    const char *argv[2 * T + 10];
    size_t argl[2 * T + 10];
    unsigned char *forged = NULL;
    size_t na = 0, nenv = 0, widest = 0;
    argv[na] = "XADD"; argl[na++] = 4;
    argv[na] = res; argl[na++] = strlen(res);
    argv[na] = "*"; argl[na++] = 1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        widest = f->elements / 2 > widest ? f->elements / 2 : widest;
        for (size_t k = 1; k < f->elements; k += 2, nenv++) {
            H_CHECK(na + 6 <= sizeof argv / sizeof *argv, "more than %d results in the result stream", T);
            argv[na] = "e"; argl[na++] = 1;
            if (nenv == 0) { /* the first one altered: its MAC's last byte */
                forged = malloc(f->element[k]->len);
                H_CHECK(forged != NULL, "out of memory");
                memcpy(forged, f->element[k]->str, f->element[k]->len);
                forged[f->element[k]->len - 1] ^= 1;
                argv[na] = (const char *)forged;
            } else {
                argv[na] = f->element[k]->str;
            }
            argl[na++] = f->element[k]->len;
            if (nenv == 1) { /* the second one twice */
                argv[na] = "e"; argl[na++] = 1;
                argv[na] = f->element[k]->str; argl[na++] = f->element[k]->len;
            }
        }
    }
    argv[na] = "x"; argl[na++] = 1;
    argv[na] = "not an envelope"; argl[na++] = 15;
    printf("%d results in %zu entries, at most %zu in one\n", T, r->elements, widest);
    H_CHECK(widest >= 2, "no two results shared an entry: the packed form is not under test");
    H_EQ_U64(nenv, T);
    freeReplyObject(h_cmd("DEL %s", res));
    redisReply *a = redisCommandArgv(h_redis(), (int)na, argv, argl);
    H_CHECK(a && a->type == REDIS_REPLY_STRING, "XADD of the rewritten entry failed");
    freeReplyObject(a);
    freeReplyObject(r);
    free(forged);

    rc_status st = rc_job_wait(j);
    rc_job_stats s = h_stats(j, "after the rewrite");
    S_EXPECT(st == RC_OK, "the job returned %s: %s", h_stname(st), rc_ctx_errmsg(ctx));
    if (st == RC_OK)
        h_check_sleep_out(out, T, 503);
    S_EXPECT(s.rejected == 2, "%llu results rejected, want 2 (the altered envelope and the stray field)",
             (unsigned long long)s.rejected);
    S_EXPECT(s.duplicates == 1, "%llu duplicates, want 1 (the repeated envelope)", (unsigned long long)s.duplicates);
    S_EXPECT(s.republished == 1, "%llu tasks sent again, want 1 (the altered one)",
             (unsigned long long)s.republished);
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    s_soft_verdict();
}

/* A task whose entry vanishes, or whose only trace is an envelope too
 * damaged to name its task, is lost.  job.c promises "never a wrong number,
 * never a silent hang": the master must notice and send a fresh copy (or
 * fail saying so) well before a generous job timeout. */
static void t_lost_task(void)
{
    char tasks[300];
    h_tasks_key(tasks, sizeof tasks);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 20000));
    enum { T = 6 };
    uint64_t params[2], out[2 * T];

    /* (a) one task entry deleted, another replaced by a copy cut inside its
       header (the worker refuses it and cannot say which task it was) */
    rc_job *j = h_sleep_job(ctx, T, 20, 601, params, out);
    H_OK(ctx, rc_job_submit(j));
    s_entry e[T];
    H_EQ_U64(s_xrange(tasks, e, T), T);
    freeReplyObject(h_cmd("XDEL %s %s", tasks, e[1].id));
    freeReplyObject(h_cmd("XDEL %s %s", tasks, e[3].id));
    s_xadd(tasks, "e", e[3].b, 40);
    s_entries_free(e, T);
    for (int i = 0; i < 2; i++)
        s_spawn(H.url, NULL, NULL, no_args, NULL);
    long long t0 = h_now_ms();
    rc_status st = rc_job_wait(j);
    rc_job_stats s = h_stats(j, NULL);
    printf("(a) task 1 deleted, task 3 cut to 40 bytes: %s after %lld ms, done %llu/%d, republished %llu%s%s\n",
           h_stname(st), h_now_ms() - t0, (unsigned long long)s.done, T, (unsigned long long)s.republished,
           st == RC_OK ? "" : ": ", st == RC_OK ? "" : rc_ctx_errmsg(ctx));
    if (st == RC_OK)
        h_check_sleep_out(out, T, 601);
    S_EXPECT(st == RC_OK || (st != RC_ETIMEDOUT && st != RC_EKERNEL),
             "lost tasks were never re-sent: %s: \"%s\"", h_stname(st), rc_ctx_errmsg(ctx));
    rc_job_destroy(j);

    /* (b) a result replaced by a copy cut inside its header before the
       master read it */
    uint64_t p2[2], o2[2 * 3];
    j = h_sleep_job(ctx, 3, 300, 602, p2, o2);
    H_OK(ctx, rc_job_submit(j));
    char res[320];
    h_res_key(j, res, sizeof res);
    H_WAIT(h_cmd_int("XLEN %s", res) >= 1, H_DEADLINE_MS, "no result arrived");
    s_entry r0;
    H_EQ_U64(s_xrange(res, &r0, 1), 1);
    freeReplyObject(h_cmd("XDEL %s %s", res, r0.id));
    s_xadd(res, "e", r0.b, 40);
    free(r0.b);
    t0 = h_now_ms();
    st = rc_job_wait(j);
    s = h_stats(j, NULL);
    printf("(b) a result cut to 40 bytes: %s after %lld ms, done %llu/3, rejected %llu, republished %llu%s%s\n",
           h_stname(st), h_now_ms() - t0, (unsigned long long)s.done, (unsigned long long)s.rejected,
           (unsigned long long)s.republished, st == RC_OK ? "" : ": ", st == RC_OK ? "" : rc_ctx_errmsg(ctx));
    if (st == RC_OK)
        h_check_sleep_out(o2, 3, 602);
    S_EXPECT(st == RC_OK || (st != RC_ETIMEDOUT && st != RC_EKERNEL),
             "a task whose result was destroyed was never re-sent: %s: \"%s\"", h_stname(st), rc_ctx_errmsg(ctx));
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    s_soft_verdict();
}

/* The attempt count is the stream's delivery count, which anyone can raise
 * (XREADGROUP/XCLAIM under any consumer name), and the "last reason" comes
 * from the unauthenticated rc:{Q}:job:J:why hash.  So a client without the
 * key can make a job fail as RC_EKERNEL "given up after N attempts" with a
 * reason of its choosing, inside a result the master trusts. */
static void t_forged_attempts(void)
{
    char tasks[300], why[330];
    h_tasks_key(tasks, sizeof tasks);
    rc_ctx *ctx = h_ctx();
    H_OK(ctx, rc_ctx_set_int(ctx, RC_OPT_JOB_TIMEOUT_MS, 20000));
    uint64_t params[2], out[2 * 2];
    rc_job *j = h_sleep_job(ctx, 2, 10, 701, params, out);
    H_OK(ctx, rc_job_submit(j));
    char meta[300];
    h_meta_key(j, meta, sizeof meta);
    snprintf(why, sizeof why, "%s:why", meta);
    redisReply *r = h_cmd("XREADGROUP GROUP w mallory COUNT 1 STREAMS %s >", tasks);
    H_CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 1, "XREADGROUP as mallory got nothing");
    char id[48];
    snprintf(id, sizeof id, "%s", r->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(r);
    for (int i = 0; i < 3; i++)
        freeReplyObject(h_cmd("XCLAIM %s w mallory 0 %s", tasks, id));
    freeReplyObject(h_cmd("HSET %s 0 %s", why, "ATTACKER-WROTE-THIS-REASON"));
    static const char *const lease1[] = {"--lease", "1", NULL};
    h_spawn_workers(1, lease1, NULL);
    rc_status st = rc_job_wait(j);
    printf("task 0's delivery count raised by XCLAIM (no key): %s%s%s\n", h_stname(st), st == RC_OK ? "" : ": ",
           st == RC_OK ? "" : rc_ctx_errmsg(ctx));
    if (st == RC_OK)
        h_check_sleep_out(out, 2, 701);
    S_EXPECT(!strstr(rc_ctx_errmsg(ctx), "ATTACKER"),
             "text from the unauthenticated why hash reached the master as a worker's reason: \"%s\"",
             rc_ctx_errmsg(ctx));
    S_EXPECT(st != RC_EKERNEL, "no kernel failed, yet the job failed with RC_EKERNEL: \"%s\"", rc_ctx_errmsg(ctx));
    rc_job_destroy(j);
    rc_ctx_destroy(ctx);
    H_STOP_ALL();
    s_soft_verdict();
}

int main(int argc, char **argv)
{
    static const h_test tests[] = {
        {"attacker", t_attacker},
        {"encrypt_on_wire", t_encrypt_on_wire},
        {"key_rotation", t_key_rotation},
        {"control_markers", t_control_markers},
        {"redis_auth", t_redis_auth},
        {"removal_replay", t_removal_replay},
        {"descriptor_churn", t_descriptor_churn},
        {"poison_entry", t_poison_entry},
        {"packed_results", t_packed_results},
        {"lost_task", t_lost_task},
        {"forged_attempts", t_forged_attempts},
        {NULL, NULL},
    };
    g_cli = argc > 3 ? argv[3] : NULL;
    g_slow = getenv("RC_SEC_SLOW") && strcmp(getenv("RC_SEC_SLOW"), "1") == 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }
    return h_main(argc, argv, tests);
}
