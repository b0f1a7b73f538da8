/* pi_compare.c - `pi --compare R`: redcoll's embedded default against the
 * same kernel with OpenMP in this process, in one invocation.
 *
 * Why: the question a user asks first is "what does redcoll cost me compared
 * with running the kernel myself?".  `pi --local --threads W` is that
 * yardstick: the very same kernel code, no Redis, no processes, no MACs.
 * Each round runs, back to back, the embedded default (this binary started
 * again: private redis-server, W single-threaded workers, one job), the
 * kernel with W OpenMP threads here, the kernel on one thread here (the
 * per-core rate), and a tiny embedded job whose wall time is the start-up
 * figure to hold against `mpirun -np 2` (0.31 s on the reference machine).
 * Alternating means load from elsewhere on a shared machine hits both sides
 * alike; the efficiency is reported as median(redcoll) / median(local) and
 * as the median and spread of the per-round ratios.  Every run must give the
 * same hit count, bit for bit, or the comparison fails. */
#include "pi_compare.h"

#include "bench_common.h"
#include "pi_kernel.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PC_MAXRUNS 50

static double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Run argv (this binary), keep what it prints on stdout in out; -1 unless it
 * exits 0.  *wall: seconds from fork to exit. */
static int run_child(const char *const *argv, char *out, size_t outlen, double *wall)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    double t0 = mono_s();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd[0], out + n, outlen - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n == outlen - 1)
            break;
    }
    out[n] = '\0';
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *wall = mono_s() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A number from pi's one-line JSON. */
static int field(const char *json, const char *name, double *v)
{
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(json, key);
    if (!p)
        return -1;
    *v = strtod(p + strlen(key), NULL);
    return 0;
}

/* The kernel with `threads` OpenMP threads here: hits, and seconds in *secs. */
static uint64_t local_run(uint64_t seed, uint64_t samples, uint64_t tasks, int threads, double *secs)
{
    double t0 = mono_s();
    uint64_t hits = 0;
    for (uint64_t t = 0; t < tasks; t++)
        hits += pi_count_hits(seed, t, pi_task_samples(samples, tasks, t), threads);
    *secs = mono_s() - t0;
    return hits;
}

typedef struct series { double v[PC_MAXRUNS], med, min, max; int n; } series;

static void add(series *s, double v)
{
    if (s->n < PC_MAXRUNS)
        s->v[s->n++] = v;
}

static void summarize(series *s)
{
    double t[PC_MAXRUNS];
    memcpy(t, s->v, (size_t)s->n * sizeof *t);
    qsort(t, (size_t)s->n, sizeof *t, bc_cmp_double);
    s->min = s->n ? t[0] : 0;
    s->max = s->n ? t[s->n - 1] : 0;
    s->med = !s->n ? 0 : s->n % 2 ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}

static void j_series(bc_json *j, const char *key, series *s)
{
    bj_begin_obj(j, key);
    bj_begin_arr(j, "runs");
    for (int i = 0; i < s->n; i++)
        bj_num(j, NULL, s->v[i]);
    bj_end_arr(j);
    bj_num(j, "median", s->med);
    bj_num(j, "min", s->min);
    bj_num(j, "max", s->max);
    bj_end_obj(j);
}

int pi_compare(const char *self, int runs, uint64_t samples, uint64_t tasks, uint64_t seed, int workers,
               uint64_t startup_samples, int json)
{
    if (runs < 1 || runs > PC_MAXRUNS) {
        fprintf(stderr, "pi: --compare takes 1 to %d rounds\n", PC_MAXRUNS);
        return 2;
    }
    bc_machine m;
    bc_machine_get(&m, NULL);
    FILE *rv = popen("redis-server --version 2>/dev/null", "r");
    if (rv) {
        char line[256];
        const char *p;
        if (fgets(line, sizeof line, rv) && (p = strstr(line, "v=")))
            snprintf(m.redis_version, sizeof m.redis_version, "%.*s", (int)strcspn(p + 2, " \n"), p + 2);
        pclose(rv);
    }
    char s_samples[32], s_tasks[32], s_seed[32], s_workers[32], s_startup[32], out[4096];
    snprintf(s_samples, sizeof s_samples, "%" PRIu64, samples);
    snprintf(s_tasks, sizeof s_tasks, "%" PRIu64, tasks);
    snprintf(s_seed, sizeof s_seed, "%" PRIu64, seed);
    snprintf(s_workers, sizeof s_workers, "%d", workers);
    snprintf(s_startup, sizeof s_startup, "%" PRIu64, startup_samples);
    const char *emb[] = {self, "--samples", s_samples, "--tasks", s_tasks, "--seed", s_seed, "--workers", s_workers,
                         "--threads", "1", "--json", "-q", NULL};
    const char *tiny[] = {self, "--samples", s_startup, "--tasks", "2", "--workers", s_workers, "-q", NULL};
    FILE *say = json ? stderr : stdout;
    fprintf(say, "pi --compare: %d round(s) of %s samples in %s tasks, %d worker(s); machine %s, %s, %ld cores, "
                 "Redis %s, load %.2f\n",
            runs, s_samples, s_tasks, workers, m.host, m.cpu, m.cores, m.redis_version, m.load1);
    series er = {0}, ee = {0}, lr = {0}, orate = {0}, ratio = {0}, su = {0};
    uint64_t hits0 = 0;
    for (int i = 0; i < runs && !bc_stop; i++) {
        double wall, lsec, osec, twall, rate, secs, hits;
        if (run_child(emb, out, sizeof out, &wall) != 0 || field(out, "samples_per_s", &rate) != 0 ||
            field(out, "seconds", &secs) != 0 || field(out, "hits", &hits) != 0) {
            fprintf(stderr, "pi --compare: the embedded run failed (%s)\n", out[0] ? out : "no output");
            return 1;
        }
        uint64_t lh = local_run(seed, samples, tasks, workers, &lsec);
        uint64_t oh = local_run(seed, samples, tasks, 1, &osec);
        if (run_child(tiny, out, sizeof out, &twall) != 0) {
            fprintf(stderr, "pi --compare: the start-up job failed\n");
            return 1;
        }
        if (i == 0)
            hits0 = lh;
        if ((uint64_t)hits != lh || oh != lh || lh != hits0) {
            fprintf(stderr, "pi --compare: the runs disagree: embedded %.0f hits, local %" PRIu64 " and %" PRIu64
                            ", first round %" PRIu64 "\n", hits, lh, oh, hits0);
            return 1;
        }
        double l = (double)samples / lsec, o = (double)samples / osec, e2e = (double)samples / wall;
        add(&er, rate);
        add(&ee, e2e);
        add(&lr, l);
        add(&orate, o);
        add(&ratio, rate / l);
        add(&su, twall);
        fprintf(say, "round %d: redcoll %.4e samples/s (job %.3f s, wall %.3f s, %.4e end to end)  local-%d %.4e "
                     "(%.3f s)  ratio %.3f  local-1 %.4e  start-up job %.3f s\n",
                i + 1, rate, secs, wall, e2e, workers, l, lsec, rate / l, o, twall);
    }
    if (bc_stop)
        return 130;
    summarize(&er);
    summarize(&ee);
    summarize(&lr);
    summarize(&orate);
    summarize(&ratio);
    summarize(&su);
    double eff = lr.med > 0 ? er.med / lr.med : 0, scal = orate.med > 0 ? lr.med / orate.med : 0;
    /* against perfect scaling of the one-thread rate: steadier than local-W
       on a loaded machine, where OpenMP barriers wait for descheduled threads */
    double ideal = orate.med > 0 ? er.med / ((double)workers * orate.med) : 0;
    double load1 = bc_loadavg1();
    if (json) {
        bc_json j = {0};
        bj_begin_obj(&j, NULL);
        bj_str(&j, "benchmark", "pi_compare");
        bj_num(&j, "samples", (double)samples);
        bj_int(&j, "tasks", (long long)tasks);
        bj_int(&j, "workers", workers);
        bj_int(&j, "runs", runs);
        bj_int(&j, "hits", (long long)hits0);
        bj_machine(&j, &m);
        j_series(&j, "redcoll_samples_per_s", &er);
        j_series(&j, "redcoll_end_to_end_samples_per_s", &ee);
        j_series(&j, "local_samples_per_s", &lr);
        j_series(&j, "local1_samples_per_s", &orate);
        j_series(&j, "efficiency_per_round", &ratio);
        bj_num(&j, "efficiency_median_over_median", eff);
        bj_num(&j, "local_over_local1", scal);
        bj_num(&j, "redcoll_over_workers_x_local1", ideal);
        bj_num(&j, "startup_samples", (double)startup_samples);
        j_series(&j, "startup_s", &su);
        bj_num(&j, "mpirun_reference_s", 0.31);
        bj_num(&j, "load1_at_end", load1);
        bj_end_obj(&j);
        if (j.buf)
            printf("%s\n", j.buf);
        bj_free(&j);
    } else {
        printf("\nredcoll embedded (%d workers x 1 thread): median %.4e samples/s (min %.4e, max %.4e); end to end "
               "%.4e\n", workers, er.med, er.min, er.max, ee.med);
        printf("local OpenMP, %d threads:                 median %.4e samples/s (min %.4e, max %.4e)\n", workers,
               lr.med, lr.min, lr.max);
        printf("local, 1 thread (kernel rate):           median %.4e samples/s (min %.4e, max %.4e); %d threads / 1 "
               "thread %.3f\n", orate.med, orate.min, orate.max, workers, scal);
        printf("efficiency redcoll / local: %.3f (median / median); per-round ratios median %.3f (min %.3f, max "
               "%.3f)\n", eff, ratio.med, ratio.min, ratio.max);
        printf("redcoll / (%d x single-thread rate): %.3f\n", workers, ideal);
        printf("start-up (pi --samples %s --tasks 2 --workers %d, wall): median %.3f s (min %.3f, max %.3f); mpirun "
               "-np 2 reference 0.31 s\n", s_startup, workers, su.med, su.min, su.max);
        printf("load %.2f at end\n", load1);
    }
    fflush(stdout);
    return 0;
}
