/* redcoll.c - the command-line tool: keys, queue control and inspection, the generic plugin worker.
 *
 * One tool for everything an operator does around a pool: make the shared
 * key (keygen), look at a queue (workers, jobs, tasks, stats, watch), act on
 * it (cancel a job, purge a queue), and run workers for kernels shipped as
 * plugins (worker, with -n to supervise several).  This file dispatches and
 * holds the two oldest commands; the others live in cli_inspect.c and
 * cli_worker.c.  Each subcommand has --help and exits with 0 on success, 1
 * on a runtime failure, 2 on bad usage, so scripts can tell a typo from an
 * outage; --json gives one machine-readable object where a script would
 * want one. */
#include "cli_common.h"
#include "redcoll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: redcoll COMMAND [args]   (redcoll COMMAND --help for each)\n\n"
            "  keygen FILE           write a fresh shared key to FILE (mode 0600; never overwrites)\n"
            "  purge QUEUE           remove QUEUE: its pending tasks and jobs; its workers exit\n"
            "                        (needs the key: workers obey only an authenticated removal)\n"
            "  workers               live workers of a queue: host, pid, task in hand, done, idle\n"
            "  jobs                  jobs in a queue: kernel, tasks done/running/queued/failed\n"
            "  tasks JOB             the state of each task of a job, its worker, its errors\n"
            "  stats                 throughput, queue depth, redeliveries, auth failures\n"
            "  watch                 a live view of workers, jobs and stats\n"
            "  cancel JOB            cancel a job by id (needs the key)\n"
            "  worker --plugin F.so  serve a queue with kernels from plugins; -n N supervises N\n"
            "  --version             print the version\n"
            "  --help                this text\n\n"
            "Queue commands take --redis URL (or REDCOLL_URL / REDCOLL_URL_FILE), --queue Q\n"
            "(default redcoll; pi uses pi), --key-file F (or REDCOLL_KEY_FILE) and --json.\n"
            "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

static int cmd_keygen(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: redcoll keygen FILE\n"
                "Writes 32 random bytes as hex to FILE with mode 0600.  Copy FILE to every\n"
                "master and worker node and pass it with --key-file or REDCOLL_KEY_FILE.\n");
        return argc == 2 ? 0 : 2;
    }
    char msg[512];
    rc_status st = rc_keygen_file(argv[1], msg, sizeof msg);
    if (st != RC_OK) {
        fprintf(stderr, "redcoll keygen: %s\n", msg);
        return 1;
    }
    fprintf(stderr, "redcoll keygen: %s (mode 0600)\n", msg);
    return 0;
}

static int cmd_purge(int argc, char **argv)
{
    const char *url = NULL, *queue = NULL, *keyfile = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: redcoll purge [--redis URL] [--key-file F] QUEUE\n"
                   "Removes QUEUE's task stream and job keys; workers serving it exit.\n"
                   "Needs the key: workers exit only on an authenticated removal.\n");
            return 0;
        } else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
            url = argv[++i];
        } else if (strcmp(argv[i], "--key-file") == 0 && i + 1 < argc) {
            keyfile = argv[++i];
        } else if (!queue && argv[i][0] != '-') {
            queue = argv[i];
        } else {
            fprintf(stderr, "redcoll purge: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!queue) {
        fprintf(stderr, "usage: redcoll purge [--redis URL] [--key-file F] QUEUE\n");
        return 2;
    }
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx) {
        fprintf(stderr, "redcoll purge: out of memory\n");
        return 1;
    }
    rc_status st = rc_ctx_set_str(ctx, RC_OPT_QUEUE, queue);
    if (st == RC_OK && url)
        st = rc_ctx_set_str(ctx, RC_OPT_URL, url);
    if (st == RC_OK && keyfile)
        st = rc_ctx_load_key(ctx, keyfile);
    if (st == RC_OK)
        st = rc_queue_remove(ctx);
    int rc = 0;
    if (st != RC_OK) {
        fprintf(stderr, "redcoll purge: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
        rc = st == RC_EINVAL ? 2 : 1;
    }
    rc_ctx_destroy(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("redcoll %s\n", REDCOLL_VERSION_STRING);
        return 0;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[1], "purge") == 0)
        return cmd_purge(argc - 1, argv + 1);
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"workers", cmd_workers}, {"jobs", cmd_jobs},     {"tasks", cmd_tasks},  {"stats", cmd_stats},
                {"watch", cmd_watch},     {"cancel", cmd_cancel}, {"worker", cmd_worker}};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "redcoll: unknown command '%s' (see redcoll --help)\n", argv[1]);
    return 2;
}
