/* cli_common.c - shared plumbing of the `redcoll` subcommands: connect, parse, format.
 *
 * Why one place: every queue command takes the same --redis / --key-file /
 * --queue options with the same environment fallbacks and must map the same
 * failures to the same exit statuses (a malformed URL is bad usage, 2; an
 * unreachable server is a runtime failure, 1), so scripts can rely on them
 * whichever subcommand they call.  Redis is reached through the library's own
 * connection layer, so AUTH, SELECT, unix sockets, timeouts and
 * REDCOLL_URL_FILE behave exactly as they do for masters and workers. */
#include "cli_common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_open(cli_conn *c, const char *cmd, const cli_opts *o, int need_key)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    const char *q = o->queue ? o->queue : "redcoll";
    char why[300];
    if (rc_queue_name_check(q, why, sizeof why) != RC_OK) {
        fprintf(stderr, "redcoll %s: %s\n", cmd, why);
        return CLI_USAGE;
    }
    snprintf(c->queue, sizeof c->queue, "%s", q);
    c->ctx = rc_ctx_create();
    if (!c->ctx) {
        fprintf(stderr, "redcoll %s: cannot create a context (out of memory or libsodium failed)\n", cmd);
        return CLI_FAIL;
    }
    rc_status st = rc_ctx_set_str(c->ctx, RC_OPT_QUEUE, q);
    if (st == RC_OK && o->url)
        st = rc_ctx_set_str(c->ctx, RC_OPT_URL, o->url);
    rc_url u;
    if (st == RC_OK)
        st = rc_ctx_url(c->ctx, &u);
    if (st != RC_OK) {
        fprintf(stderr, "redcoll %s: %s\n", cmd, rc_ctx_errmsg(c->ctx));
        cli_close(c);
        return st == RC_EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    const char *kf = o->keyfile;
    int from_env = 0;
    if (!kf && getenv("REDCOLL_KEY_FILE") && *getenv("REDCOLL_KEY_FILE")) {
        kf = getenv("REDCOLL_KEY_FILE");
        from_env = 1;
    }
    if (kf) {
        if (rc_ctx_load_key(c->ctx, kf) == RC_OK) {
            c->have_key = 1;
        } else if (need_key || !from_env) {
            fprintf(stderr, "redcoll %s: %s\n", cmd, rc_ctx_errmsg(c->ctx));
            cli_close(c);
            return CLI_FAIL;
        } else {
            fprintf(stderr, "redcoll %s: warning: REDCOLL_KEY_FILE unusable (%s); nothing will be verified\n", cmd,
                    rc_ctx_errmsg(c->ctx));
        }
    } else if (need_key) {
        fprintf(stderr, "redcoll %s: no key: give --key-file F or set REDCOLL_KEY_FILE (this command writes "
                        "what workers and masters only obey when it is authenticated)\n", cmd);
        cli_close(c);
        return CLI_FAIL;
    }
    c->conn = rc_conn_new(&u, 5000, 10000);
    if (!c->conn) {
        fprintf(stderr, "redcoll %s: out of memory\n", cmd);
        cli_close(c);
        return CLI_FAIL;
    }
    if (rc_conn_ensure(c->conn) != RC_OK) {
        fprintf(stderr, "redcoll %s: %s\n", cmd, c->conn->err);
        cli_close(c);
        return CLI_FAIL;
    }
    return CLI_OK;
}

void cli_close(cli_conn *c)
{
    rc_conn_free(c->conn);
    c->conn = NULL;
    rc_ctx_destroy(c->ctx);
    c->ctx = NULL;
}

int cli_cmd(cli_conn *c, redisReply **r, int argc, const char **argv, const size_t *lens)
{
    return rc_conn_cmd(c->conn, r, argc, argv, lens) == RC_OK ? 0 : -1;
}

long long cli_wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

long long cli_server_ms(cli_conn *c)
{
    redisReply *r = NULL;
    long long ms = -1;
    if (cli_cmd(c, &r, 1, (const char *[]){"TIME"}, NULL) == 0 && r->type == REDIS_REPLY_ARRAY &&
        r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
        ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    if (r) freeReplyObject(r);
    return ms > 0 ? ms : cli_wall_ms();
}

void cli_fmt_dur(char *out, size_t n, long long ms)
{
    if (ms < 0)
        snprintf(out, n, "-");
    else if (ms < 10000)
        snprintf(out, n, "%.1fs", (double)ms / 1000.0);
    else if (ms < 60000)
        snprintf(out, n, "%llds", ms / 1000);
    else if (ms < 3600000)
        snprintf(out, n, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    else if (ms < 86400000)
        snprintf(out, n, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
    else
        snprintf(out, n, "%lldd%02lldh", ms / 86400000, ms / 3600000 % 24);
}

void cli_clean(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            *s = '?';
}

void cli_json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

int cli_parse_secs(const char *cmd, const char *opt, const char *s, long long *ms)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !s[0] || !(d >= 0) || d > 1e7) {
        fprintf(stderr, "redcoll %s: %s: '%s' is not a number of seconds\n", cmd, opt, s);
        return -1;
    }
    *ms = (long long)(d * 1000.0 + 0.5);
    return 0;
}

int cli_parse_count(const char *cmd, const char *opt, const char *s, unsigned long long lo,
                    unsigned long long hi, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || !s[0] || s[0] == '-' || s[0] == '+' || v < lo || v > hi) {
        fprintf(stderr, "redcoll %s: %s: '%s' is not a whole number in [%llu, %llu]\n", cmd, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_jobid(const char *s, uint64_t *id)
{
    uint64_t v = 0;
    if (!s || strlen(s) != 16)
        return -1;
    for (int i = 0; i < 16; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint64_t)d;
    }
    *id = v;
    return 0;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int cli_peek_header(const unsigned char *b, size_t blen, long long total, rc_env *e)
{
    memset(e, 0, sizeof *e);
    if (blen < RC_HDR_BYTES || total < (long long)(RC_HDR_BYTES + RC_MAC_BYTES) || b[0] != 'R' || b[1] != 'C' ||
        b[2] != RC_WIRE_VERSION)
        return -1;
    e->kind = b[3] & (unsigned char)~RC_KIND_FLAGS;
    e->sealed = (b[3] & RC_KIND_SEALED) != 0;
    e->keyid = (uint32_t)le(b + 4, 4);
    e->job = le(b + 8, 8);
    e->rank = le(b + 16, 8);
    e->ntasks = le(b + 24, 8);
    e->aux = le(b + 32, 8);
    e->status = (uint32_t)le(b + 40, 4);
    e->kernel_len = (size_t)le(b + 44, 2);
    e->attempt = (uint16_t)le(b + 46, 2);
    e->payload_len = le(b + 48, 8);
    if (e->kind < RC_KIND_JOB || e->kind > RC_KIND_CONTROL || e->kernel_len > RC_KERNEL_MAX ||
        e->payload_len > RC_PAYLOAD_MAX)
        return -1;
    uint64_t pad = (8 - e->kernel_len % 8) % 8;
    if ((uint64_t)e->kernel_len + pad + e->payload_len + RC_HDR_BYTES + rc_wire_trailer(e->payload_len) !=
        (uint64_t)total)
        return -1;
    if (blen >= RC_HDR_BYTES + e->kernel_len)
        e->kernel = (const char *)b + RC_HDR_BYTES;
    return 0;
}
