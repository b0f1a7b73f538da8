/* memory.c - Redis memory per task: what a job of many tasks costs the server.
 *
 * Starts the embedded default (private redis-server) and measures
 * used_memory from INFO before and after publishing a job of --tasks tasks
 * of --payload bytes each (a scatter), then again once --workers workers
 * have run them all and their results (--payload bytes each) wait in the
 * job's result stream.  Prints bytes per task beyond the payload itself:
 * the constant redcoll adds (envelope header, MAC, stream entry overhead).
 *   memory [--tasks N] [--payload BYTES] [--workers W] [--json] */
#include "bench_common.h"
#include "redcoll.h"

#include <hiredis/hiredis.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int echo(rc_task *t, void *user)
{
    (void)user;
    size_t n;
    const void *in = rc_task_input(t, &n);
    void *out;
    if (rc_task_output(t, n, &out) != RC_OK)
        return rc_task_fail(t, "out of memory");
    if (n)
        memcpy(out, in, n);
    return 0;
}

static long long used_memory(redisContext *c)
{
    redisReply *r = redisCommand(c, "MEMORY PURGE");
    if (r) freeReplyObject(r);
    r = redisCommand(c, "INFO memory");
    long long v = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, "used_memory:");
        if (p) v = atoll(p + 12);
    }
    if (r) freeReplyObject(r);
    return v;
}

static pid_t spawn_worker(const char *url, const char *keyfile)
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("REDCOLL_URL", url, 1);
        setenv("REDCOLL_KEY_FILE", keyfile, 1);
        execl("/proc/self/exe", "memory", "--worker", (char *)NULL);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv)
{
    uint64_t ntasks = 1000000, payload = 8;
    int workers = 2, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--worker")) {
            rc_ctx *ctx = rc_ctx_create();
            if (!ctx || rc_register_kernel(ctx, "echo", echo, NULL) != RC_OK)
                return 1;
            rc_status st = rc_worker_run(ctx);
            rc_ctx_destroy(ctx);
            return st == RC_OK ? 0 : 1;
        } else if (!strcmp(argv[i], "--tasks") && i + 1 < argc) {
            ntasks = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--payload") && i + 1 < argc) {
            payload = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            workers = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "usage: memory [--tasks N] [--payload BYTES] [--workers W] [--json]\n");
            return 2;
        }
    }
    if (ntasks == 0 || ntasks > 100000000 || payload > (1u << 20) || workers < 1 || workers > 64) {
        fprintf(stderr, "memory: need 1 <= --tasks <= 1e8, --payload <= 1 MiB, 1 <= --workers <= 64\n");
        return 2;
    }
    unsigned char *data = malloc(ntasks * payload + 1);
    rc_ctx *ctx = rc_ctx_create();
    if (!data || !ctx)
        return 1;
    for (uint64_t i = 0; i < ntasks * payload; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    char dir[] = "/tmp/rcmem.XXXXXX", keyfile[64], msg[256];
    rc_local *loc = NULL;
    rc_job *job = NULL;
    redisContext *c = NULL;
    pid_t pids[64] = {0};
    long long base = 0, queued = 0, results = 0;
    rc_status st = mkdtemp(dir) ? RC_OK : RC_EIO;
    snprintf(keyfile, sizeof keyfile, "%s/key", dir);
    if (st == RC_OK) st = rc_local_start(ctx, NULL, 0, &loc); /* the server only */
    if (st == RC_OK && (st = rc_keygen_file(keyfile, msg, sizeof msg)) == RC_OK)
        st = rc_ctx_load_key(ctx, keyfile); /* ours, so our own workers can share it */
    if (st == RC_OK) {
        c = redisConnectUnix(rc_local_url(loc) + strlen("unix://"));
        if (!c || c->err)
            st = RC_EREDIS;
    }
    if (st == RC_OK) {
        base = used_memory(c);
        st = rc_job_create(ctx, "echo", ntasks, &job);
    }
    if (st == RC_OK) st = rc_job_scatter(job, data, payload, RC_BYTE);
    if (st == RC_OK) st = rc_job_gather(job, data, payload, RC_BYTE);
    if (st == RC_OK) st = rc_job_submit(job);
    if (st == RC_OK) {
        queued = used_memory(c);
        for (int i = 0; i < workers; i++)
            pids[i] = spawn_worker(rc_local_url(loc), keyfile);
        /* every task run, every result waiting in the stream, none read yet */
        if (bc_wait_delivered(c, "redcoll", 600) != 0) {
            fprintf(stderr, "memory: results of job %s not all delivered within 600 s\n", rc_job_id(job));
            st = RC_ETIMEDOUT;
        } else {
            results = used_memory(c);
            st = rc_job_wait(job);
        }
    }
    for (int i = 0; i < workers; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    for (int i = 0; i < workers; i++)
        if (pids[i] > 0) waitpid(pids[i], NULL, 0);
    if (st == RC_OK) {
        double q = (double)(queued - base) / (double)ntasks, r = (double)(results - base) / (double)ntasks;
        if (json)
            printf("{\"tasks\":%" PRIu64 ",\"payload\":%" PRIu64 ",\"queued_bytes_per_task\":%.1f,"
                   "\"queued_overhead\":%.1f,\"result_bytes_per_task\":%.1f,\"result_overhead\":%.1f}\n",
                   ntasks, payload, q, q - (double)payload, r, r - (double)payload);
        else
            printf("%" PRIu64 " tasks of %" PRIu64 " bytes: queued, %.1f bytes each in Redis (%.1f beyond the "
                   "payload); all results waiting, %.1f bytes per task (%.1f beyond the result)\n",
                   ntasks, payload, q, q - (double)payload, r, r - (double)payload);
    } else {
        fprintf(stderr, "memory: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
    }
    if (c) redisFree(c);
    rc_job_destroy(job);
    rc_local_stop(loc);
    rc_ctx_destroy(ctx);
    unlink(keyfile);
    rmdir(dir);
    free(data);
    return st == RC_OK ? 0 : 1;
}
