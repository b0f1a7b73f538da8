/* bench_common.c - clocks, machine facts, Redis counters and JSON for the redcoll benchmarks.
 *
 * Why: see bench_common.h; one implementation so that every benchmark counts
 * commands and CPU the same way. */
#include "bench_common.h"

#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

double bc_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

double bc_self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* utime+stime (seconds) and comm of /proc/<pid>/stat; ppid out; -1 if gone */
static double proc_cpu(const char *pid, long *ppid, char *comm, size_t commlen)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *l = strchr(buf, '('), *r = strrchr(buf, ')');
    if (!l || !r || r < l)
        return -1;
    snprintf(comm, commlen, "%.*s", (int)(r - l - 1), l + 1);
    /* after ") ": state(3) ppid(4) ... utime(14) stime(15) */
    char state;
    long pp;
    unsigned long long ut = 0, st = 0;
    if (sscanf(r + 2, "%c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &pp, &ut, &st) != 4)
        return -1;
    *ppid = pp;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU time (seconds) of every thread of process `pid`, to the nanosecond,
   from /proc/<pid>/task/<tid>/schedstat (first field); -1 without
   schedstats.  utime+stime in /proc/<pid>/stat are sampled at the clock
   tick, and a worker that runs a few hundred microseconds per job is then
   mostly never seen running: 256 of them read as no CPU at all.  *runs
   gets the third field summed: how many times its threads were put on a
   CPU, i.e. woken or resumed - what a wake-up costs is most of what a
   worker spends per task on a crowded host. */
static double proc_cpu_ns(const char *pid, unsigned long long *runs)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%s/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    unsigned long long sum = 0;
    int any = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        snprintf(path, sizeof path, "/proc/%s/task/%.20s/schedstat", pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long run, wait, slices;
        if (!f)
            continue; /* the thread ended meanwhile */
        int got = fscanf(f, "%llu %llu %llu", &run, &wait, &slices);
        if (got >= 1) {
            sum += run;
            any = 1;
        }
        if (got == 3)
            *runs += slices;
        fclose(f);
    }
    closedir(d);
    return any ? (double)sum / 1e9 : -1;
}

double bc_children_cpu(double *redis, double *kid_runs)
{
    double kids = 0, rs = 0;
    unsigned long long runs = 0;
    long me = (long)getpid();
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!isdigit((unsigned char)e->d_name[0]))
                continue;
            long pp = 0;
            char comm[64];
            double c = proc_cpu(e->d_name, &pp, comm, sizeof comm);
            if (c < 0 || pp != me)
                continue;
            unsigned long long r = 0;
            double ns = proc_cpu_ns(e->d_name, &r);
            if (ns >= 0)
                c = ns;
            if (strncmp(comm, "redis-server", 12) == 0)
                rs += c;
            else {
                kids += c;
                runs += r;
            }
        }
        closedir(d);
    }
    if (redis)
        *redis = rs;
    if (kid_runs)
        *kid_runs = (double)runs;
    return kids;
}

void bc_self_exe(char *out, size_t n)
{
    ssize_t k = readlink("/proc/self/exe", out, n - 1);
    out[k > 0 ? k : 0] = '\0';
}

int bc_signal_self_children(int sig)
{
    char self[4096];
    bc_self_exe(self, sizeof self);
    long me = (long)getpid();
    int count = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        long pp = 0;
        char comm[64], path[64], exe[4096];
        if (proc_cpu(e->d_name, &pp, comm, sizeof comm) < 0 || pp != me)
            continue;
        snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
        ssize_t k = readlink(path, exe, sizeof exe - 1);
        if (k <= 0)
            continue;
        exe[k] = '\0';
        if (strcmp(exe, self) != 0)
            continue;
        if (kill((pid_t)atol(e->d_name), sig) == 0)
            count++;
    }
    closedir(d);
    return count;
}

double bc_loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

void bc_machine_get(bc_machine *m, redisContext *c)
{
    memset(m, 0, sizeof *m);
    if (gethostname(m->host, sizeof m->host) != 0)
        snprintf(m->host, sizeof m->host, "unknown");
    m->host[sizeof m->host - 1] = '\0';
    snprintf(m->cpu, sizeof m->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *p = strchr(line, ':');
                if (p) {
                    p++;
                    while (*p == ' ' || *p == '\t')
                        p++;
                    p[strcspn(p, "\n")] = '\0';
                    snprintf(m->cpu, sizeof m->cpu, "%s", p);
                }
                break;
            }
        }
        fclose(f);
    }
    m->cores = sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
    m->load1 = bc_loadavg1();
    snprintf(m->redis_version, sizeof m->redis_version, "unknown");
    if (c) {
        redisReply *r = redisCommand(c, "INFO server");
        if (r && r->type == REDIS_REPLY_STRING) {
            const char *p = strstr(r->str, "redis_version:");
            if (p) {
                p += 14;
                size_t k = strcspn(p, "\r\n");
                snprintf(m->redis_version, sizeof m->redis_version, "%.*s", (int)k, p);
            }
        }
        if (r)
            freeReplyObject(r);
    }
}

redisContext *bc_connect(const char *url)
{
    redisContext *c = NULL;
    struct timeval tv = {10, 0};
    if (strncmp(url, "unix://", 7) == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s", url + 7);
        char *q = strchr(path, '?');
        if (q)
            *q = '\0';
        c = redisConnectUnixWithTimeout(path, tv);
    } else {
        char host[256] = "127.0.0.1";
        int port = 6379;
        const char *p = strncmp(url, "redis://", 8) == 0 ? url + 8 : url;
        const char *at = strchr(p, '@');
        if (at)
            p = at + 1;
        if (sscanf(p, "%255[^:/]:%d", host, &port) < 1)
            snprintf(host, sizeof host, "127.0.0.1");
        c = redisConnectWithTimeout(host, port, tv);
    }
    if (!c || c->err) {
        fprintf(stderr, "bench: cannot connect to %s: %s\n", url, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    return c;
}

redisReply *bc_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) {
        fprintf(stderr, "bench: Redis command '%s' failed: %s\n", fmt, c->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "bench: Redis command '%s': %s\n", fmt, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static double info_field(const char *info, const char *field)
{
    size_t fl = strlen(field);
    for (const char *p = info; (p = strstr(p, field)) != NULL; p += fl)
        if ((p == info || p[-1] == '\n') && p[fl] == ':')
            return atof(p + fl + 1);
    return -1;
}

double bc_info_num(redisContext *c, const char *section, const char *field)
{
    redisReply *r = redisCommand(c, "INFO %s", section);
    double v = -1;
    if (r && r->type == REDIS_REPLY_STRING)
        v = info_field(r->str, field);
    if (r)
        freeReplyObject(r);
    return v;
}

static double redis_cpu(redisContext *c)
{
    redisReply *r = redisCommand(c, "INFO cpu");
    double v = -1;
    if (r && r->type == REDIS_REPLY_STRING) {
        double s = info_field(r->str, "used_cpu_sys"), u = info_field(r->str, "used_cpu_user");
        if (s >= 0 && u >= 0)
            v = s + u;
    }
    if (r)
        freeReplyObject(r);
    return v;
}

/* Seconds Redis' main thread has spent runnable but waiting for a CPU
   (/proc/<pid>/schedstat, second field), or -1 when Redis is not a process
   on this host.  On a host crowded with workers this, not Redis' own work,
   is what caps the task rate. */
static double redis_wait(redisContext *c)
{
    double pid = bc_info_num(c, "server", "process_id");
    char path[64], comm[64] = "";
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%.0f/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int named = fgets(comm, sizeof comm, f) && strncmp(comm, "redis-server", 12) == 0;
    fclose(f);
    snprintf(path, sizeof path, "/proc/%.0f/schedstat", pid);
    unsigned long long run, wait;
    if (!named || !(f = fopen(path, "r")))
        return -1;
    int got = fscanf(f, "%llu %llu", &run, &wait);
    fclose(f);
    return got == 2 ? (double)wait / 1e9 : -1;
}

int bc_phase_begin(redisContext *c, bc_phase *p)
{
    memset(p, 0, sizeof *p);
    redisReply *r = bc_cmd(c, "CONFIG RESETSTAT");
    if (!r)
        return -1;
    freeReplyObject(r);
    p->redis_cpu0 = redis_cpu(c);
    p->redis_wait0 = redis_wait(c);
    p->kids_cpu0 = bc_children_cpu(NULL, &p->kids_runs0);
    /* after that scan of /proc: with 256 workers it costs the master as much
       CPU as a no-op job of 20000 tasks adds (1.4 us a task) */
    p->self_cpu0 = bc_self_cpu();
    p->t0 = bc_now();
    return 0;
}

static int cmp_calls(const void *a, const void *b)
{
    const bc_cmdstat *x = a, *y = b;
    return x->calls < y->calls ? 1 : x->calls > y->calls ? -1 : strcmp(x->name, y->name);
}

int bc_phase_end(redisContext *c, bc_phase *p)
{
    p->wall = bc_now() - p->t0;
    p->self_cpu = bc_self_cpu() - p->self_cpu0;
    p->kids_cpu = bc_children_cpu(NULL, &p->kids_runs) - p->kids_cpu0;
    p->kids_runs -= p->kids_runs0;
    redisReply *r = bc_cmd(c, "INFO commandstats");
    if (!r)
        return -1;
    p->ncmd = 0;
    p->calls = p->usec = 0;
    if (r->type == REDIS_REPLY_STRING) {
        /* cmdstat_xadd:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0 */
        for (const char *s = r->str; (s = strstr(s, "cmdstat_")) != NULL;) {
            s += 8;
            size_t k = strcspn(s, ":");
            const char *cp = strstr(s, "calls="), *up = strstr(s, "usec=");
            if (!cp || !up || s[k] != ':')
                break;
            char name[48];
            snprintf(name, sizeof name, "%.*s", (int)(k < 47 ? k : 47), s);
            /* the measurement's own commands */
            if (strncmp(name, "config", 6) == 0 || strcmp(name, "info") == 0)
                continue;
            if (p->ncmd < BC_MAXCMD) {
                bc_cmdstat *e = &p->cmd[p->ncmd++];
                snprintf(e->name, sizeof e->name, "%s", name);
                e->calls = strtoull(cp + 6, NULL, 10);
                e->usec = strtoull(up + 5, NULL, 10);
                p->calls += e->calls;
                p->usec += e->usec;
            }
        }
    }
    freeReplyObject(r);
    qsort(p->cmd, (size_t)p->ncmd, sizeof p->cmd[0], cmp_calls);
    double rc = redis_cpu(c);
    p->redis_cpu = rc >= 0 && p->redis_cpu0 >= 0 ? rc - p->redis_cpu0 : -1;
    double rw = redis_wait(c);
    p->redis_wait = rw >= 0 && p->redis_wait0 >= 0 ? rw - p->redis_wait0 : -1;
    return 0;
}

void bc_phase_breakdown(const bc_phase *p, double per, int max, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < p->ncmd && i < max && o + 1 < n; i++) {
        int k = snprintf(out + o, n - o, "%s%s %.2f", i ? ", " : "", p->cmd[i].name,
                         per > 0 ? (double)p->cmd[i].calls / per : 0.0);
        if (k < 0)
            break;
        o += (size_t)k;
    }
}

long long bc_wait_workers(redisContext *c, const char *queue, long long n, double timeout)
{
    double end = bc_now() + timeout;
    long long seen = 0;
    for (;;) {
        redisReply *r = redisCommand(c, "ZCARD rc:{%s}:workers", queue);
        if (r && r->type == REDIS_REPLY_INTEGER)
            seen = r->integer;
        if (r)
            freeReplyObject(r);
        if (seen >= n || bc_now() > end)
            return seen;
        usleep(20000);
    }
}

/* The value of field `name` in a flat field/value array reply, or NULL. */
static const redisReply *field(const redisReply *r, const char *name)
{
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1];
    return NULL;
}

int bc_wait_delivered(redisContext *c, const char *queue, double timeout)
{
    double end = bc_now() + timeout;
    while (!bc_stop) {
        redisReply *s = redisCommand(c, "XINFO STREAM rc:{%s}:tasks", queue);
        redisReply *g = redisCommand(c, "XINFO GROUPS rc:{%s}:tasks", queue);
        if (!s || !g || s->type != REDIS_REPLY_ARRAY || g->type != REDIS_REPLY_ARRAY) {
            if (s) freeReplyObject(s);
            if (g) freeReplyObject(g);
            return -1;
        }
        /* the workers' one group: all handed out, none pending */
        const redisReply *grp = g->elements == 1 ? g->element[0] : NULL;
        const redisReply *last = field(s, "last-generated-id"), *upto = field(grp, "last-delivered-id"),
                         *pending = field(grp, "pending");
        int done = last && upto && pending && last->type == REDIS_REPLY_STRING && upto->type == REDIS_REPLY_STRING &&
                   strcmp(last->str, upto->str) == 0 && pending->type == REDIS_REPLY_INTEGER && pending->integer == 0;
        freeReplyObject(s);
        freeReplyObject(g);
        if (done) {
            redisReply *t = redisCommand(c, "XTRIM rc:{%s}:tasks MAXLEN 0", queue);
            int ok = t && t->type == REDIS_REPLY_INTEGER;
            if (t)
                freeReplyObject(t);
            return ok ? 0 : -1;
        }
        if (bc_now() > end)
            return -1;
        usleep(2000);
    }
    return -1;
}

int bc_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bc_percentile(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, bc_cmp_double);
    double rank = p / 100.0 * (double)n;
    size_t i = rank <= 1 ? 0 : (size_t)(rank + 0.999999) - 1;
    return v[i < n ? i : n - 1];
}

/* ------------------------------------------------------------------ */

static void jput(bc_json *j, const char *s, size_t n)
{
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 1024;
        while (cap < j->len + n + 1)
            cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b)
            return;
        j->buf = b;
        j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static void jputs(bc_json *j, const char *s) { jput(j, s, strlen(s)); }

static void jstr(bc_json *j, const char *s)
{
    jputs(j, "\"");
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\';
            esc[1] = *s;
            jput(j, esc, 2);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)(unsigned char)*s);
            jputs(j, esc);
        } else {
            jput(j, s, 1);
        }
    }
    jputs(j, "\"");
}

static void jkey(bc_json *j, const char *key)
{
    if (j->depth > 0) {
        if (!j->first[j->depth])
            jputs(j, ",");
        j->first[j->depth] = 0;
    }
    if (key) {
        jstr(j, key);
        jputs(j, ":");
    }
}

void bj_begin_obj(bc_json *j, const char *key)
{
    jkey(j, key);
    jputs(j, "{");
    if (j->depth < 31)
        j->depth++;
    j->first[j->depth] = 1;
}

void bj_end_obj(bc_json *j)
{
    jputs(j, "}");
    if (j->depth > 0)
        j->depth--;
}

void bj_begin_arr(bc_json *j, const char *key)
{
    jkey(j, key);
    jputs(j, "[");
    if (j->depth < 31)
        j->depth++;
    j->first[j->depth] = 1;
}

void bj_end_arr(bc_json *j)
{
    jputs(j, "]");
    if (j->depth > 0)
        j->depth--;
}

void bj_num(bc_json *j, const char *key, double v)
{
    char b[64];
    jkey(j, key);
    if (v != v || v > 1e308 || v < -1e308)
        snprintf(b, sizeof b, "null");
    else
        snprintf(b, sizeof b, "%.6g", v);
    jputs(j, b);
}

void bj_int(bc_json *j, const char *key, long long v)
{
    char b[32];
    jkey(j, key);
    snprintf(b, sizeof b, "%lld", v);
    jputs(j, b);
}

void bj_str(bc_json *j, const char *key, const char *v)
{
    jkey(j, key);
    jstr(j, v ? v : "");
}

void bj_bool(bc_json *j, const char *key, int v)
{
    jkey(j, key);
    jputs(j, v ? "true" : "false");
}

void bj_machine(bc_json *j, const bc_machine *m)
{
    bj_begin_obj(j, "machine");
    bj_str(j, "host", m->host);
    bj_str(j, "cpu", m->cpu);
    bj_int(j, "cores", m->cores);
    bj_str(j, "kernel", m->kernel);
    bj_str(j, "redis_version", m->redis_version);
    bj_num(j, "load1_at_start", m->load1);
    bj_end_obj(j);
}

void bj_phase(bc_json *j, const char *key, const bc_phase *p, double per)
{
    bj_begin_obj(j, key);
    bj_num(j, "wall_s", p->wall);
    bj_num(j, "redis_cpu_s", p->redis_cpu);
    bj_num(j, "redis_cpu_frac", p->wall > 0 ? p->redis_cpu / p->wall : 0);
    bj_num(j, "redis_runqueue_wait_frac", p->wall > 0 && p->redis_wait >= 0 ? p->redis_wait / p->wall : -1);
    bj_num(j, "master_cpu_s", p->self_cpu);
    bj_num(j, "workers_cpu_s", p->kids_cpu);
    bj_num(j, "workers_runs", p->kids_runs);
    bj_num(j, "workers_runs_per_task", per > 0 ? p->kids_runs / per : 0);
    bj_num(j, "redis_commands", (double)p->calls);
    bj_num(j, "commands_per_task", per > 0 ? (double)p->calls / per : 0);
    bj_num(j, "redis_cpu_us_per_task", per > 0 ? p->redis_cpu * 1e6 / per : 0);
    bj_num(j, "cmd_usec_per_task", per > 0 ? (double)p->usec / per : 0);
    bj_begin_obj(j, "commands");
    for (int i = 0; i < p->ncmd; i++)
        bj_num(j, p->cmd[i].name, (double)p->cmd[i].calls);
    bj_end_obj(j);
    /* where Redis' command time goes (a script's usec includes the commands it calls) */
    bj_begin_obj(j, "commands_usec");
    for (int i = 0; i < p->ncmd; i++)
        bj_num(j, p->cmd[i].name, (double)p->cmd[i].usec);
    bj_end_obj(j);
    bj_end_obj(j);
}

void bj_free(bc_json *j)
{
    free(j->buf);
    memset(j, 0, sizeof *j);
}

volatile sig_atomic_t bc_stop;
rc_ctx *volatile bc_ctx;

void bc_on_signal(int sig)
{
    (void)sig;
    if (bc_stop++)
        _exit(130);
    if (bc_ctx)
        rc_ctx_interrupt(bc_ctx);
}
