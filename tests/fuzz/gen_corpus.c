/* gen_corpus.c - writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/).
 *
 * Why: the interesting envelopes carry a MAC made with the fuzz key, which
 * nobody can write by hand, and the interesting Redis replies carry such
 * envelopes inside XREADGROUP / XAUTOCLAIM-script / XREAD shaped RESP.  This
 * program makes them with the library's own encoder and the key ring and
 * queue of fuzz_common.h (plain and sealed envelopes of every kind, some
 * signed with the ring's older key, control markers, and malformed ones
 * re-MACed so they fail on their own defect), plus URL and key-file seeds, so
 * the corpus can be rebuilt whenever the envelope format changes (sealed
 * envelopes carry a random nonce, so those files differ on every run):
 *     build-fuzz/tests/fuzz/fuzz_gen_corpus tests/fuzz/corpus
 * It overwrites files of the same name and never deletes any.
 */
#include "fuzz_common.h"

#include <string.h>
#include <sys/stat.h>

static const char *root;
static rc_keys K;

static void put(const char *target, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void puts_(const char *target, const char *name, const char *s) { put(target, name, s, strlen(s)); }

typedef struct { unsigned char *p; size_t n; } blob;

static void *made[64]; /* every envelope made, freed at exit */
static size_t nmade;

static int seal; /* make the next envelopes sealed */

static blob env(uint8_t kind, const char *kernel, const void *payload, size_t plen, uint64_t rank,
                uint32_t status, uint16_t attempt, const rc_keys *k, const char *queue)
{
    rc_env e = {.kind = kind, .job = 0x0123456789abcdefull, .rank = rank, .ntasks = 4,
                .aux = kind == RC_KIND_JOB ? 42 : kind == RC_KIND_TASK ? 0 : 0x1111222233334444ull,
                .status = status, .attempt = attempt, .kernel = kernel, .kernel_len = kernel ? strlen(kernel) : 0,
                .payload = payload, .payload_len = plen, .sealed = seal};
    blob b = {NULL, rc_wire_size_env(&e)};
    b.p = malloc(b.n);
    if (nmade == sizeof made / sizeof made[0])
        exit(1);
    made[nmade++] = b.p;
    if (!b.p || rc_wire_encode(&e, k, queue, b.p, b.n) != RC_OK) {
        fprintf(stderr, "encode failed\n");
        exit(1);
    }
    return b;
}

static void remac(blob b) { rc_wire_sign(&K, FUZZ_QUEUE, b.p, b.n); }

/* RESP bulk string */
static size_t bulk(char *o, const void *p, size_t n)
{
    size_t h = (size_t)sprintf(o, "$%zu\r\n", n);
    memcpy(o + h, p, n);
    memcpy(o + h + n, "\r\n", 2);
    return h + n + 2;
}
static size_t bulks(char *o, const char *s) { return bulk(o, s, strlen(s)); }

/* one stream entry: [id, ["e", envelope]] */
static size_t entry(char *o, const char *id, blob b)
{
    size_t n = (size_t)sprintf(o, "*2\r\n");
    n += bulks(o + n, id);
    n += (size_t)sprintf(o + n, "*2\r\n");
    n += bulks(o + n, "e");
    n += bulk(o + n, b.p, b.n);
    return n;
}

static void envelopes(void)
{
    const char *T = "fuzz_envelope";
    uint64_t samples = 1000000;
    double xs[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const char *why = "MAC does not verify (data altered or forged)";
    const char *kerr = "kernel 'sumsq' failed: input is not a multiple of 8 bytes";
    static unsigned char big[RC_PMAC_MIN]; /* the smallest payload MACed with Poly1305 */
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 13);
    struct { const char *name; blob b; } good[] = {
        {"job_pi", env(RC_KIND_JOB, "pi", &samples, 8, 0, 1, 0, &K, FUZZ_QUEUE)},
        {"job_empty", env(RC_KIND_JOB, NULL, NULL, 0, 0, 0, 0, &K, FUZZ_QUEUE)},
        {"task_sumsq", env(RC_KIND_TASK, "sumsq", xs, sizeof xs, 2, 0, 0, &K, FUZZ_QUEUE)},
        {"task_empty_payload", env(RC_KIND_TASK, "sumsq", NULL, 0, 3, 0, 0, &K, FUZZ_QUEUE)},
        {"task_kernel7", env(RC_KIND_TASK, "kernel7", xs, 7, 0, 0, 0, &K, FUZZ_QUEUE)},
        {"task_kernel8", env(RC_KIND_TASK, "kernel_8", xs, 1, 0, 0, 0, &K, FUZZ_QUEUE)},
        {"task_kernel64", env(RC_KIND_TASK, "k234567890123456789012345678901234567890123456789012345678901234", xs, 16,
                              1, 0, 0, &K, FUZZ_QUEUE)},
        {"result_ok", env(RC_KIND_RESULT, "sumsq", xs, 8, 1, RC_OK, 1, &K, FUZZ_QUEUE)},
        {"result_attempt3", env(RC_KIND_RESULT, "sumsq", xs, 8, 3, RC_OK, 3, &K, FUZZ_QUEUE)},
        {"result_kernel_error", env(RC_KIND_RESULT, "sumsq", kerr, strlen(kerr), 0, RC_EKERNEL, 2, &K, FUZZ_QUEUE)},
        {"reject", env(RC_KIND_REJECT, NULL, why, strlen(why), 2, RC_EAUTH, 0, &K, FUZZ_QUEUE)},
        {"result_poly1305", env(RC_KIND_RESULT, "vec", big, sizeof big, 4, RC_OK, 1, &K, FUZZ_QUEUE)},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        put(T, good[i].name, good[i].b.p, good[i].b.n);
    rc_keys old;
    fuzz_old_keys(&old);
    blob b0;

    /* sealed (XChaCha20-Poly1305 payloads; the nonce is random, so these
       files change on every run) */
    seal = 1;
    b0 = env(RC_KIND_TASK, "sumsq", xs, sizeof xs, 2, 0, 0, &K, FUZZ_QUEUE);
    put(T, "sealed_task", b0.p, b0.n);
    b0 = env(RC_KIND_RESULT, "sumsq", xs, 8, 1, RC_OK, 2, &K, FUZZ_QUEUE);
    put(T, "sealed_result", b0.p, b0.n);
    b0 = env(RC_KIND_JOB, "pi", &samples, 8, 0, 1, 0, &K, FUZZ_QUEUE);
    put(T, "sealed_job", b0.p, b0.n);
    b0 = env(RC_KIND_TASK, "sumsq", NULL, 0, 0, 0, 0, &K, FUZZ_QUEUE);
    put(T, "sealed_empty_payload", b0.p, b0.n);
    b0.p[b0.n - RC_MAC_BYTES - 1] ^= 1; /* tag altered, MAC made again: does not open */
    remac(b0);
    put(T, "bad_sealed_tag", b0.p, b0.n);
    b0 = env(RC_KIND_TASK, "sumsq", xs, 16, 0, 0, 0, &old, FUZZ_QUEUE);
    put(T, "sealed_old_key", b0.p, b0.n);
    seal = 0;
    /* sealed flag on a payload shorter than nonce + tag */
    b0 = env(RC_KIND_TASK, "sumsq", xs, 16, 0, 0, 0, &K, FUZZ_QUEUE);
    b0.p[3] |= RC_KIND_SEALED;
    remac(b0);
    put(T, "bad_sealed_short", b0.p, b0.n);

    /* the older key of the ring (rotation) */
    b0 = env(RC_KIND_RESULT, "sumsq", xs, 8, 0, RC_OK, 1, &old, FUZZ_QUEUE);
    put(T, "result_old_key", b0.p, b0.n);

    /* control markers (rc_tombstone_write): job ended, queue removed */
    const char *ended = "job finished";
    b0 = env(RC_KIND_CONTROL, NULL, ended, strlen(ended), 0, 0, 0, &K, FUZZ_QUEUE);
    put(T, "control_job_end", b0.p, b0.n);
    const char *removed = "queue removed";
    b0 = env(RC_KIND_CONTROL, NULL, removed, strlen(removed), 0, 0, 0, &K, FUZZ_QUEUE);
    memset(b0.p + 8, 0, 8); /* job 0: the queue itself */
    remac(b0);
    put(T, "control_queue_removed", b0.p, b0.n);

    /* a chunk of stored data (rc_data_scatter): rank is the chunk index */
    b0 = env(RC_KIND_DATA, NULL, xs, sizeof xs, 1, 0, 0, &K, FUZZ_QUEUE);
    put(T, "data_chunk", b0.p, b0.n);

    rc_keys other;
    unsigned char s[RC_KEYBYTES];
    memset(s, 0x5a, sizeof s);
    if (rc_keys_derive(&other, s) != RC_OK)
        exit(1);
    blob b = env(RC_KIND_TASK, "sumsq", xs, 16, 0, 0, 0, &other, FUZZ_QUEUE);
    put(T, "bad_wrong_key", b.p, b.n);
    b = env(RC_KIND_TASK, "sumsq", xs, 16, 0, 0, 0, &K, FUZZ_OTHER_QUEUE);
    put(T, "bad_wrong_queue", b.p, b.n);
    b = env(RC_KIND_TASK, "sumsq", xs, 16, 0, 0, 0, &K, FUZZ_QUEUE);
    b.p[b.n - 1] ^= 1;
    put(T, "bad_mac", b.p, b.n);
    put(T, "bad_truncated", b.p, b.n - 1);
    put(T, "bad_short", b.p, 40);
    b.p[b.n - 1] ^= 1;
    b.p[0] = 'X';
    remac(b);
    put(T, "bad_magic", b.p, b.n);
    b.p[0] = 'R';
    b.p[2] = 1; /* the version before RC_KIND_PMAC */
    remac(b);
    put(T, "bad_version", b.p, b.n);
    b.p[2] = RC_WIRE_VERSION;
    b.p[3] = 9;
    remac(b);
    put(T, "bad_kind", b.p, b.n);
    b.p[3] = RC_KIND_TASK;
    b.p[46] = 1; /* attempt on a task */
    remac(b);
    put(T, "bad_attempt_on_task", b.p, b.n);
    b.p[46] = 0;
    b.p[RC_HDR_BYTES + 5] = 1; /* padding after "sumsq" */
    remac(b);
    put(T, "bad_padding", b.p, b.n);
    b.p[RC_HDR_BYTES + 5] = 0;
    b.p[48] += 1; /* payload length one more than present */
    remac(b);
    put(T, "bad_payload_len", b.p, b.n);
    b.p[48] -= 1;
    b.p[44] = 65; /* kernel length above the limit */
    remac(b);
    put(T, "bad_kernel_len", b.p, b.n);
    b.p[44] = 5;
    memset(b.p + 48, 0xff, 8); /* payload length 2^64-1 */
    remac(b);
    put(T, "bad_payload_len_huge", b.p, b.n);
    /* a small payload re-signed with the Poly1305 trailer: one MAC kind per size */
    blob k = {NULL, b.n - RC_MAC_BYTES + RC_PMAC_BYTES};
    unsigned char kb[512];
    if (k.n <= sizeof kb) {
        b = env(RC_KIND_TASK, "sumsq", xs, 16, 0, 0, 0, &K, FUZZ_QUEUE);
        k.p = kb;
        memcpy(kb, b.p, b.n - RC_MAC_BYTES);
        kb[3] |= RC_KIND_PMAC;
        remac(k);
        put(T, "bad_mac_kind", k.p, k.n);
    }
}

static void replies(void)
{
    const char *T = "fuzz_reply";
    const char *tasks = "rc:{" FUZZ_QUEUE "}:tasks";
    const char *res = "rc:{" FUZZ_QUEUE "}:job:0123456789abcdef:res";
    double xs[4] = {1, 2, 3, 4};
    static char o[1 << 16];
    size_t n;
    blob task = env(RC_KIND_TASK, "sumsq", xs, sizeof xs, 1, 0, 0, &K, FUZZ_QUEUE);
    blob r0 = env(RC_KIND_RESULT, "sumsq", xs, 8, 0, RC_OK, 1, &K, FUZZ_QUEUE);
    blob r1 = env(RC_KIND_RESULT, "sumsq", xs, 8, 1, RC_OK, 2, &K, FUZZ_QUEUE);
    seal = 1;
    blob sealed_task = env(RC_KIND_TASK, "sumsq", xs, sizeof xs, 0, 0, 0, &K, FUZZ_QUEUE);
    seal = 0;
    const char *ended = "job finished";
    blob marker = env(RC_KIND_CONTROL, NULL, ended, strlen(ended), 0, 0, 0, &K, FUZZ_QUEUE);
    const char *why = "MAC does not verify";
    blob rej = env(RC_KIND_REJECT, NULL, why, strlen(why), 2, RC_EAUTH, 0, &K, FUZZ_QUEUE);

    /* XREADGROUP ... STREAMS tasks >: [[stream, [entry]]] */
    n = (size_t)sprintf(o, "*1\r\n*2\r\n");
    n += bulks(o + n, tasks);
    n += (size_t)sprintf(o + n, "*1\r\n");
    n += entry(o + n, "1700000000000-0", task);
    put(T, "xreadgroup_task", o, n);

    n = (size_t)sprintf(o, "*1\r\n*2\r\n");
    n += bulks(o + n, tasks);
    n += (size_t)sprintf(o + n, "*1\r\n");
    n += entry(o + n, "1700000000000-4", sealed_task);
    put(T, "xreadgroup_sealed_task", o, n);

    /* GET rc:{Q}:job:J:end (rc_tombstone_check) */
    n = bulk(o, marker.p, marker.n);
    put(T, "get_tombstone", o, n);

    /* two queues, the second one's entry first */
    n = (size_t)sprintf(o, "*2\r\n*2\r\n");
    n += bulks(o + n, "rc:{low}:tasks");
    n += (size_t)sprintf(o + n, "*1\r\n");
    n += entry(o + n, "1700000000001-0", task);
    n += (size_t)sprintf(o + n, "*2\r\n");
    n += bulks(o + n, tasks);
    n += (size_t)sprintf(o + n, "*1\r\n");
    n += entry(o + n, "1700000000000-5", task);
    put(T, "xreadgroup_two_queues", o, n);

    /* an entry deleted while pending (Redis < 7): [id, nil] */
    n = (size_t)sprintf(o, "*1\r\n*2\r\n");
    n += bulks(o + n, tasks);
    n += (size_t)sprintf(o + n, "*1\r\n*2\r\n");
    n += bulks(o + n, "1700000000000-1");
    n += (size_t)sprintf(o + n, "*-1\r\n");
    put(T, "xreadgroup_deleted_entry", o, n);

    /* an entry with a field other than "e" */
    n = (size_t)sprintf(o, "*1\r\n*2\r\n");
    n += bulks(o + n, tasks);
    n += (size_t)sprintf(o + n, "*1\r\n*2\r\n");
    n += bulks(o + n, "1700000000000-2");
    n += (size_t)sprintf(o + n, "*2\r\n");
    n += bulks(o + n, "x");
    n += bulk(o + n, task.p, task.n);
    put(T, "xreadgroup_wrong_field", o, n);

    puts_(T, "nil_array", "*-1\r\n");
    puts_(T, "nil_bulk", "$-1\r\n");
    puts_(T, "error_nogroup", "-NOGROUP No such key 'rc:{fuzz}:tasks' or consumer group 'w'\r\n");
    puts_(T, "error_unblocked", "-UNBLOCKED the stream key no longer exists\r\n");
    puts_(T, "status_ok", "+OK\r\n");
    puts_(T, "integer_one", ":1\r\n");

    /* TAKEOVER script: {cursor, entry or false, delivery count} */
    n = (size_t)sprintf(o, "*3\r\n");
    n += bulks(o + n, "1700000000000-3");
    n += entry(o + n, "1700000000000-0", task);
    n += (size_t)sprintf(o + n, ":2\r\n");
    put(T, "takeover_entry", o, n);
    n = (size_t)sprintf(o, "*3\r\n");
    n += bulks(o + n, "0-0");
    n += (size_t)sprintf(o + n, "$-1\r\n:0\r\n");
    put(T, "takeover_none", o, n);

    /* XREAD COUNT n STREAMS res id: [[key, [entry, ...]]] */
    n = (size_t)sprintf(o, "*1\r\n*2\r\n");
    n += bulks(o + n, res);
    n += (size_t)sprintf(o + n, "*3\r\n");
    n += entry(o + n, "1700000000100-0", r0);
    n += entry(o + n, "1700000000101-0", rej);
    n += entry(o + n, "1700000000102-0", r1);
    put(T, "xread_results", o, n);

    /* several replies back to back, as a pipeline reads them */
    n = (size_t)sprintf(o, "+OK\r\n:1\r\n");
    n += bulks(o + n, "1700000000000-0");
    n += (size_t)sprintf(o + n, "*1\r\n*2\r\n");
    n += bulks(o + n, res);
    n += (size_t)sprintf(o + n, "*1\r\n");
    n += entry(o + n, "1700000000103-0", r0);
    put(T, "pipeline", o, n);
}

static void urls(void)
{
    const char *T = "fuzz_url";
    static const char *const u[][2] = {
        {"tcp_plain", "redis://localhost"},
        {"tcp_port_db", "redis://127.0.0.1:6380/2"},
        {"tcp_user_pass", "redis://alice:s%40cr%3at@redis.example:6379/0"},
        {"tcp_pass_only", "redis://hunter2@host"},
        {"tcp_empty_user", "redis://:pw@host:1"},
        {"tcp_ipv6", "redis://[::1]:6379/1"},
        {"tcp_ipv6_noport", "redis://[fe80::1%25eth0]"},
        {"tcp_max_port", "redis://h:65535/1000000"},
        {"unix_plain", "unix:///run/redis/redis.sock"},
        {"unix_db", "unix:///tmp/r.sock?db=3"},
        {"bad_scheme", "http://localhost"},
        {"bad_empty", ""},
        {"bad_port0", "redis://h:0"},
        {"bad_port_big", "redis://h:65536"},
        {"bad_port_empty", "redis://h:"},
        {"bad_db", "redis://h/x"},
        {"bad_db_big", "redis://h/1000001"},
        {"bad_escape", "redis://a:%zz@h"},
        {"bad_escape_short", "redis://a:%4@h"},
        {"bad_bracket", "redis://[::1"},
        {"bad_after_bracket", "redis://[::1]x"},
        {"bad_no_host", "redis://:6379"},
        {"bad_unix_relative", "unix://tmp/r.sock"},
        {"bad_unix_query", "unix:///tmp/r.sock?foo=1"},
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        puts_(T, u[i][0], u[i][1]);
    char longhost[400] = "redis://";
    memset(longhost + 8, 'h', 300);
    longhost[308] = '\0';
    puts_(T, "bad_long_host", longhost);
}

static void keyfiles(void)
{
    const char *T = "fuzz_keyfile";
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    char b[200];
    snprintf(b, sizeof b, "%s\n", hex);
    puts_(T, "good_newline", b);
    puts_(T, "good_bare", hex);
    snprintf(b, sizeof b, "%s\r\n", hex);
    puts_(T, "good_crlf", b);
    puts_(T, "good_upper", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n");
    snprintf(b, sizeof b, "%s\n\n\n", hex);
    puts_(T, "bad_too_long", b);
    snprintf(b, sizeof b, "%.62s\n", hex);
    puts_(T, "bad_short", b);
    snprintf(b, sizeof b, "%.63sg\n", hex);
    puts_(T, "bad_not_hex", b);
    snprintf(b, sizeof b, " %.63s\n", hex);
    puts_(T, "bad_leading_space", b);
    puts_(T, "bad_empty", "");
    /* key rings: current key first, blank lines allowed, at most 4 */
    const char *hex2 = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
    snprintf(b, sizeof b, "%s\n%s\n", hex, hex2);
    puts_(T, "ring_two", b);
    snprintf(b, sizeof b, "%s\r\n\r\n%s\r\n", hex, hex2);
    puts_(T, "ring_crlf_blank", b);
    char r[400];
    snprintf(r, sizeof r, "%s\n%s\n%s\n%s\n", hex, hex2, hex, hex2);
    puts_(T, "ring_four", r);
    snprintf(r, sizeof r, "%s\n%s\n%s\n%s\n%s\n", hex, hex2, hex, hex2, hex);
    puts_(T, "bad_ring_five", r);
    snprintf(b, sizeof b, "%s\n%.63s\n", hex, hex2);
    puts_(T, "bad_ring_second_short", b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR   (writes CORPUS_DIR/<target>/...)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    mkdir(root, 0755);
    fuzz_keys(&K);
    envelopes();
    replies();
    urls();
    keyfiles();
    for (size_t i = 0; i < nmade; i++)
        free(made[i]);
    return 0;
}
