/* redcoll.c - the command-line tool: key generation and queue control.
 *
 * Subcommands are few now (keygen, purge); each has --help and exits with
 * 0 on success, 1 on a runtime failure, 2 on bad usage, so scripts can tell
 * a typo from an outage. */
#include "redcoll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: redcoll COMMAND [args]\n\n"
            "  keygen FILE           write a fresh shared key to FILE (mode 0600; never overwrites)\n"
            "  purge QUEUE           remove QUEUE: its pending tasks and jobs; its workers exit\n"
            "                        (Redis from --redis URL or REDCOLL_URL; the key from\n"
            "                        --key-file or REDCOLL_KEY_FILE: workers obey only an\n"
            "                        authenticated removal)\n"
            "  --version             print the version\n"
            "  --help                this text\n\n"
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
    fprintf(stderr, "redcoll: unknown command '%s' (see redcoll --help)\n", argv[1]);
    return 2;
}
