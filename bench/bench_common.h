/* bench_common.h - what the redcoll benchmarks share: clocks, machine facts, Redis counters, JSON.
 *
 * Why: overhead, reduce and scale each report the same things about the same
 * private Redis (commands per task from INFO commandstats, server CPU from
 * INFO cpu, the machine they ran on) and print the same two ways (text for a
 * person, one JSON object for a script).  Keeping that in one place makes the
 * numbers of the three programs comparable: the same command counting rules,
 * the same CPU arithmetic, the same machine description.
 *
 * Conventions: a "phase" is one measured stretch.  bc_phase_begin resets the
 * server's command statistics (CONFIG RESETSTAT) and snapshots every clock;
 * bc_phase_end reads them back.  Commands issued by the measuring connection
 * itself (CONFIG, INFO) are not counted.  Redis CPU is used_cpu_user +
 * used_cpu_sys of the server (main thread and its helpers); worker CPU is the
 * user+system time of this process's child processes other than redis-server,
 * read from /proc. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <hiredis/hiredis.h>
#include "redcoll.h"

#include <signal.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ */
/* clocks */

/* SIGINT/SIGTERM handler shared by the benchmarks: the first signal
   interrupts bc_ctx (the job in flight) and sets bc_stop, the second exits. */
extern volatile sig_atomic_t bc_stop;
extern rc_ctx *volatile bc_ctx;
void bc_on_signal(int sig);

double bc_now(void);          /* CLOCK_MONOTONIC, seconds */
double bc_self_cpu(void);     /* user+system CPU of this process, seconds */
/* user+system CPU of this process's live child processes, seconds;
 * redis-server children are counted in *redis (may be NULL), the rest in
 * the return value, and how many times the rest's threads were put on a
 * CPU in *kid_runs (may be NULL). */
double bc_children_cpu(double *redis, double *kid_runs);

/* ------------------------------------------------------------------ */
/* machine */

typedef struct bc_machine {
    char host[256];
    char cpu[256];
    long cores;
    char redis_version[64];
    char kernel[128];
    double load1;             /* 1-minute load average at the start */
} bc_machine;

void bc_machine_get(bc_machine *m, redisContext *c);
double bc_loadavg1(void);

/* ------------------------------------------------------------------ */
/* Redis */

/* Connect to a redcoll URL (unix:///path or redis://host:port); NULL with a
 * message on stderr on failure. */
redisContext *bc_connect(const char *url);
/* Run a command that must not fail; returns the reply (caller frees) or NULL
 * after printing what failed. */
redisReply *bc_cmd(redisContext *c, const char *fmt, ...);
/* A numeric field of INFO <section> ("used_memory", "used_cpu_sys"...); -1 if absent. */
double bc_info_num(redisContext *c, const char *section, const char *field);

#define BC_MAXCMD 64
typedef struct bc_cmdstat {
    char name[48];
    unsigned long long calls, usec;
} bc_cmdstat;

typedef struct bc_phase {
    double t0, wall;              /* seconds */
    double redis_cpu0, redis_cpu; /* server CPU seconds (delta after end) */
    double redis_wait0, redis_wait; /* seconds Redis waited on a run queue for a CPU; -1: not on this host */
    double self_cpu0, self_cpu;   /* this process */
    double kids_cpu0, kids_cpu;   /* worker processes (children except redis-server) */
    double kids_runs0, kids_runs; /* times their threads were put on a CPU (schedstat; 0 without) */
    bc_cmdstat cmd[BC_MAXCMD];    /* sorted by calls, descending */
    int ncmd;
    unsigned long long calls, usec; /* totals over cmd[] */
} bc_phase;

int bc_phase_begin(redisContext *c, bc_phase *p);
int bc_phase_end(redisContext *c, bc_phase *p);
/* "xadd 1.00 evalsha 1.00 ..." : the top `max` commands per `per` units. */
void bc_phase_breakdown(const bc_phase *p, double per, int max, char *out, size_t n);

/* ------------------------------------------------------------------ */
/* process helpers */

/* Send sig to every live child of this process whose executable is this
 * program (the workers rc_local_start runs as `self --worker`); returns how
 * many.  Used to freeze idle redcoll workers (SIGSTOP) while a raw baseline
 * runs on the same server, and to thaw them (SIGCONT) afterwards. */
int bc_signal_self_children(int sig);
/* Wait until `n` workers of queue `queue` are registered (ZCARD of
 * rc:{queue}:workers), up to timeout seconds; returns the count seen. */
long long bc_wait_workers(redisContext *c, const char *queue, long long n, double timeout);
/* Wait until every entry of queue `queue`'s task stream was handed out and
 * acked, up to timeout seconds: every task delivered, since a delivery
 * acks its tasks in the same script or MULTI that adds their results.
 * (Counting result entries would not do: a small delivery's results share
 * one; nor would an empty stream: a delivery leaves acked entries above an
 * older pending one for a later trim, and after the last delivery none
 * comes until the master's at its job's end.)  Then trims those leftovers,
 * as that job-end trim would, so a measurement of the waiting results does
 * not count them.  0 when done, -1 on a Redis error or the timeout. */
int bc_wait_delivered(redisContext *c, const char *queue, double timeout);
/* Absolute path of this executable, or "" */
void bc_self_exe(char *out, size_t n);

/* ------------------------------------------------------------------ */
/* statistics */

int bc_cmp_double(const void *a, const void *b);
/* p in [0, 100] of v[0..n) (sorts v): nearest-rank. */
double bc_percentile(double *v, size_t n, double p);

/* ------------------------------------------------------------------ */
/* JSON writer: a growing buffer with comma handling */

typedef struct bc_json {
    char *buf;
    size_t len, cap;
    int depth;
    int first[32];
} bc_json;

void bj_begin_obj(bc_json *j, const char *key); /* key NULL: top level or inside an array */
void bj_end_obj(bc_json *j);
void bj_begin_arr(bc_json *j, const char *key);
void bj_end_arr(bc_json *j);
void bj_num(bc_json *j, const char *key, double v);
void bj_int(bc_json *j, const char *key, long long v);
void bj_str(bc_json *j, const char *key, const char *v);
void bj_bool(bc_json *j, const char *key, int v);
void bj_machine(bc_json *j, const bc_machine *m);
void bj_phase(bc_json *j, const char *key, const bc_phase *p, double per_units);
void bj_free(bc_json *j);

#endif
