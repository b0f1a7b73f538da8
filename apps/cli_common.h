/* cli_common.h - what the `redcoll` subcommands share: options, the Redis connection, JSON and time helpers.
 *
 * The tool is split by concern: redcoll.c (dispatch, keygen, purge),
 * cli_common.c (this), cli_inspect.c (workers, jobs, tasks, stats, watch,
 * cancel: read-mostly views of a queue's Redis layout) and cli_worker.c (the
 * generic plugin worker and its supervisor).  The inspection commands read
 * the key layout directly (documented in lib/queue.c), so they use the
 * library's internal connection and envelope definitions (lib/internal.h)
 * rather than growing the public API with introspection calls.
 *
 * Exit statuses everywhere: 0 success, 1 runtime failure (Redis, key, job
 * not found), 2 bad usage (unknown option, malformed value or URL). */
#ifndef REDCOLL_CLI_COMMON_H
#define REDCOLL_CLI_COMMON_H

#include "internal.h"

#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Options every queue command takes. */
typedef struct cli_opts {
    const char *url;      /* --redis (NULL: REDCOLL_URL / REDCOLL_URL_FILE) */
    const char *keyfile;  /* --key-file (NULL: REDCOLL_KEY_FILE) */
    const char *queue;    /* --queue (default "redcoll") */
    int json;             /* --json */
} cli_opts;

/* An open connection to the queue's Redis. */
typedef struct cli_conn {
    const char *cmd;      /* "workers", ... for messages */
    rc_ctx *ctx;          /* resolves the URL, holds the key */
    rc_conn *conn;
    char queue[201];
    int have_key;         /* a key was loaded: descriptors can be verified */
} cli_conn;

/* Connect for command `cmd`.  need_key: 1 the key is required, 0 optional
 * (loaded if given, to verify what is read).  Returns CLI_OK, or the exit
 * status after printing why. */
int cli_open(cli_conn *c, const char *cmd, const cli_opts *o, int need_key);
void cli_close(cli_conn *c);

/* Redis commands: 0 ok (reply in *r, caller frees), -1 failed (message
 * printed unless quiet; *r may be an error reply, freed by the caller). */
int cli_cmd(cli_conn *c, redisReply **r, int argc, const char **argv, const size_t *lens);

/* Time: this host's wall clock, and the Redis server's (stream ids are
 * stamped with the server's clock). */
long long cli_wall_ms(void);
long long cli_server_ms(cli_conn *c);

/* "1.5s", "12m03s", "3h05m", "2d04h"; "-" for ms < 0. */
void cli_fmt_dur(char *out, size_t n, long long ms);
/* Replace control bytes in text read from Redis with '?', so a hostile
 * value cannot send escape sequences to the operator's terminal. */
void cli_clean(char *s);
/* JSON string literal (escaped) of s[0..n). */
void cli_json_str(FILE *f, const char *s, size_t n);

/* Option values; print "redcoll CMD: OPT: ..." and return -1 when bad. */
int cli_parse_secs(const char *cmd, const char *opt, const char *s, long long *ms);
int cli_parse_count(const char *cmd, const char *opt, const char *s, unsigned long long lo,
                    unsigned long long hi, unsigned long long *out);
/* A job id: 16 hex digits. */
int cli_parse_jobid(const char *s, uint64_t *id);

/* Envelope header read from a prefix of a stored envelope whose full length
 * is `total`: the same checks as rc_wire_peek (magic, version, kind, lengths
 * consistent with total) without fetching the payload.  Nothing in it is
 * authenticated.  kernel points into buf when the prefix holds it (else
 * kernel_len is still set but kernel is NULL). */
int cli_peek_header(const unsigned char *buf, size_t buflen, long long total, rc_env *e);

/* Subcommands. */
int cmd_workers(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_worker(int argc, char **argv);

/* Help text lines shared by the queue commands. */
#define CLI_HELP_CONN \
    "  --redis URL       redis://[user:pass@]host[:port][/db] or unix:///path[?db=N]\n" \
    "                    (default: REDCOLL_URL, else REDCOLL_URL_FILE, a 0600 file holding it)\n"
#define CLI_HELP_QUEUE "  --queue Q         the queue (default redcoll; pi uses pi)\n"
#define CLI_HELP_ENV \
    "Environment: REDCOLL_URL, REDCOLL_URL_FILE (when --redis is not given),\n" \
    "REDCOLL_KEY_FILE (when --key-file is not given), REDCOLL_LOG (library log level).\n" \
    "Exit status: 0 success, 1 failure (Redis unreachable, key unusable, not found),\n" \
    "2 bad usage.\n"

#endif
