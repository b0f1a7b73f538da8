/* cli_worker.c - `redcoll worker`: a generic worker serving kernels loaded from plugins, and its -n N supervisor.
 *
 * Why: without it every application needs its own worker program, and every
 * site its own way of keeping N of them running.  `redcoll worker --plugin
 * libkernels.so` loads kernels from shared objects (the contract is
 * include/redcoll_plugin.h) and serves a queue exactly as a compiled-in
 * worker does: same leases, same signals (SIGTERM/SIGINT: finish and deliver
 * the task in hand, exit 0; a second one: hand it back and exit at once),
 * same --linger.
 *
 * With -n N it becomes a small supervisor: it checks the plugins load, then
 * runs N copies of itself without -n, each in its own process group (so a
 * terminal's Ctrl-C reaches them once, through the supervisor, not twice)
 * and with PR_SET_PDEATHSIG (so they stop if the supervisor is killed).  A
 * child that crashes (killed by a signal, or exits non-zero) is restarted
 * after a delay that doubles with each quick crash (0.25 s up to 30 s; reset
 * once a child ran 10 s), so a crash loop costs almost nothing; a child that
 * exits 0 (idle past --linger, or its queue was removed) is not restarted,
 * nor one that exits 2 (bad usage: it would fail the same way again).  On
 * SIGTERM, SIGINT or SIGHUP the supervisor forwards SIGTERM to every child,
 * waits for all of them and exits 0; a second signal is forwarded too (the
 * children then hand their tasks back and exit at once).
 *
 * Plugins resolve the redcoll API from this executable: it is linked with
 * its symbols exported (CMake ENABLE_EXPORTS), and the table below keeps
 * every function of the kernel API in it even if the tool itself never calls
 * it. */
#include "cli_common.h"
#include "redcoll_plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The API a plugin may call (see redcoll_plugin.h).  Referenced here so the
 * linker keeps it in this executable, which exports it to plugins. */
typedef void (*api_fn)(void);
void (*const redcoll_cli_plugin_api[])(void) = {
    (api_fn)rc_task_rank,     (api_fn)rc_task_ntasks,  (api_fn)rc_task_threads, (api_fn)rc_task_seed,
    (api_fn)rc_task_input,    (api_fn)rc_task_bcast,   (api_fn)rc_task_rng,     (api_fn)rc_task_output,
    (api_fn)rc_task_fail,     (api_fn)rc_register_kernel, (api_fn)rc_rng_seed,  (api_fn)rc_rng_u64,
    (api_fn)rc_rng_double,    (api_fn)rc_reduce_local, (api_fn)rc_datatype_size, (api_fn)rc_strerror,
    (api_fn)rc_op_builtin,    (api_fn)rc_op_user,      (api_fn)rc_ctx_errmsg,
};

#define MAX_PLUGINS 32
#define MAX_CHILDREN 1024
#define RESTART_MIN_MS 250
#define RESTART_MAX_MS 30000
#define RESTART_RESET_MS 10000

typedef struct wopts {
    const char *plugins[MAX_PLUGINS];
    int nplugins;
    unsigned long long n;             /* -n: children to supervise (0: serve here) */
    const char *url, *keyfile, *queue;
    long long linger, lease, heartbeat, drain, poll; /* poll: -1 not given */
    unsigned long long threads, max_attempts;
    int loglevel;                     /* -1: REDCOLL_LOG or warnings */
    char *child_argv[2 * 64 + 8];     /* for -n: the same options without -n */
    int nchild_argv;
} wopts;

static const char worker_help[] =
    "usage: redcoll worker --plugin FILE.so [--plugin ...] [-n N] [--queue Q] [options]\n"
    "Serve queue Q with the kernels that plugins register (a plugin is a shared object\n"
    "exporting redcoll_plugin_abi and redcoll_plugin_register; see redcoll_plugin.h and\n"
    "apps/plugin_example.c).  Tasks are taken first come, first served; SIGTERM or\n"
    "SIGINT makes a worker finish and deliver the task in hand, then exit 0 (a second\n"
    "one hands the task back to the queue and exits at once).\n\n"
    "  --plugin FILE     load kernels from FILE (repeatable; a path with a '/' or a\n"
    "                    name found by the dynamic loader)\n"
    "  -n N              run and supervise N local worker processes: a crashed one is\n"
    "                    restarted (after 0.25 s, doubling for each crash within 10 s of\n"
    "                    its start, up to 30 s); one that exits 0 (--linger, queue\n"
    "                    removed) or 2 (bad usage) is not.  SIGTERM/SIGINT/SIGHUP are\n"
    "                    forwarded as SIGTERM; the supervisor exits 0 once all have\n"
    "                    stopped (1 if it gave up on a child that exited 2)\n"
    CLI_HELP_CONN
    "  --key-file F      the shared key (or REDCOLL_KEY_FILE); make one with redcoll keygen\n"
    "  --queue Q         queue(s) to serve, in priority order: \"high,low\" (default redcoll)\n"
    "  --threads K       OpenMP threads per task (default 1)\n"
    "  --linger S        exit 0 after S seconds without work (default: never)\n"
    "  --lease S         task lease before another worker may take it over (default 5)\n"
    "  --heartbeat S     lease renewal and registry period (default lease/4)\n"
    "  --poll S          how long an idle worker blocks before asking again (default 30:\n"
    "                    new work, SIGTERM and a lapsed lease to take over end a wait at\n"
    "                    once; at most 5 when set): each slice costs Redis a command\n"
    "                    (BENCHMARKS.md, section 6)\n"
    "  --max-attempts N  a task is started at most N times, then fails (default 3)\n"
    "  --drain-timeout S on SIGTERM, hand the task back if it still runs after S seconds\n"
    "                    (default: finish it)\n"
    "  -v, --verbose     more log output (repeat for debug); -q, --quiet: errors only\n"
    "  --help            this text\n\n"
    "Environment: REDCOLL_URL, REDCOLL_URL_FILE, REDCOLL_KEY_FILE (when the options are\n"
    "not given), REDCOLL_LOG=error|warn|info|debug[,syslog] (log level without -v/-q).\n"
    "Exit status: 0 stopped by a signal, --linger or queue removal; 1 failure (plugin\n"
    "does not load, key unusable, Redis unusable); 2 bad usage.\n";

enum { W_PLUGIN = 300, W_REDIS, W_KEY, W_QUEUE, W_THREADS, W_LINGER, W_LEASE, W_HEARTBEAT, W_MAXATT, W_DRAIN,
       W_POLL, W_HELP };

static void push_child(wopts *w, const char *a, const char *b)
{
    int max = (int)(sizeof w->child_argv / sizeof *w->child_argv) - 2;
    if (w->nchild_argv < max)
        w->child_argv[w->nchild_argv++] = (char *)a;
    if (b && w->nchild_argv < max)
        w->child_argv[w->nchild_argv++] = (char *)b;
}

/* The option as a child gets it back. */
static const char *dashed(int ch)
{
    switch (ch) {
    case W_PLUGIN: return "--plugin";
    case W_REDIS: return "--redis";
    case W_KEY: return "--key-file";
    case W_QUEUE: return "--queue";
    case W_THREADS: return "--threads";
    case W_LINGER: return "--linger";
    case W_LEASE: return "--lease";
    case W_HEARTBEAT: return "--heartbeat";
    case W_MAXATT: return "--max-attempts";
    case W_POLL: return "--poll";
    default: return "--drain-timeout";
    }
}

static int parse_worker(int argc, char **argv, wopts *w)
{
    static const struct option opts[] = {
        {"plugin", required_argument, 0, W_PLUGIN},   {"redis", required_argument, 0, W_REDIS},
        {"key-file", required_argument, 0, W_KEY},    {"queue", required_argument, 0, W_QUEUE},
        {"threads", required_argument, 0, W_THREADS}, {"linger", required_argument, 0, W_LINGER},
        {"lease", required_argument, 0, W_LEASE},     {"heartbeat", required_argument, 0, W_HEARTBEAT},
        {"max-attempts", required_argument, 0, W_MAXATT}, {"drain-timeout", required_argument, 0, W_DRAIN},
        {"poll", required_argument, 0, W_POLL},
        {"verbose", no_argument, 0, 'v'},             {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, W_HELP},             {0, 0, 0, 0}};
    memset(w, 0, sizeof *w);
    w->loglevel = -1;
    w->poll = -1;
    w->child_argv[w->nchild_argv++] = NULL; /* the executable, filled in later */
    w->child_argv[w->nchild_argv++] = "worker";
    optind = 0;
    opterr = 0;
    int ch, idx;
    while ((ch = getopt_long(argc, argv, ":n:vqh", opts, &idx)) != -1) {
        int bad = 0;
        switch (ch) {
        case W_PLUGIN:
            if (w->nplugins == MAX_PLUGINS) {
                fprintf(stderr, "redcoll worker: at most %d plugins\n", MAX_PLUGINS);
                return CLI_USAGE;
            }
            w->plugins[w->nplugins++] = optarg;
            break;
        case 'n': bad = cli_parse_count("worker", "-n", optarg, 1, MAX_CHILDREN, &w->n); break;
        case W_REDIS: w->url = optarg; break;
        case W_KEY: w->keyfile = optarg; break;
        case W_QUEUE: w->queue = optarg; break;
        case W_THREADS: bad = cli_parse_count("worker", "--threads", optarg, 1, 4096, &w->threads); break;
        case W_LINGER: bad = cli_parse_secs("worker", "--linger", optarg, &w->linger); break;
        case W_LEASE: bad = cli_parse_secs("worker", "--lease", optarg, &w->lease); break;
        case W_HEARTBEAT: bad = cli_parse_secs("worker", "--heartbeat", optarg, &w->heartbeat); break;
        case W_DRAIN: bad = cli_parse_secs("worker", "--drain-timeout", optarg, &w->drain); break;
        case W_POLL:
            bad = cli_parse_secs("worker", "--poll", optarg, &w->poll);
            if (!bad && (w->poll < 1 || w->poll > 5000)) {
                fprintf(stderr, "redcoll worker: --poll: '%s' is not between 0.001 and 5 seconds\n", optarg);
                bad = 1;
            }
            break;
        case W_MAXATT: bad = cli_parse_count("worker", "--max-attempts", optarg, 1, 1000, &w->max_attempts); break;
        case 'v': w->loglevel = w->loglevel < 1 ? 2 : w->loglevel + 1; break;
        case 'q': w->loglevel = 0; break;
        case 'h':
        case W_HELP: fputs(worker_help, stdout); return CLI_OK;
        case ':':
            fprintf(stderr, "redcoll worker: option '%s' needs a value (see redcoll worker --help)\n",
                    argv[optind - 1]);
            return CLI_USAGE;
        default:
            fprintf(stderr, "redcoll worker: unknown option '%s' (see redcoll worker --help)\n", argv[optind - 1]);
            return CLI_USAGE;
        }
        if (bad)
            return CLI_USAGE;
        /* the children get every option but -n, as given */
        if (ch == 'v')
            push_child(w, "-v", NULL);
        else if (ch == 'q')
            push_child(w, "-q", NULL);
        else if (ch != 'n')
            push_child(w, dashed(ch), optarg);
    }
    if (optind < argc) {
        fprintf(stderr, "redcoll worker: unexpected argument '%s' (see redcoll worker --help)\n", argv[optind]);
        return CLI_USAGE;
    }
    if (!w->nplugins) {
        fprintf(stderr, "redcoll worker: no kernels: give at least one --plugin FILE.so\n");
        return CLI_USAGE;
    }
    if (w->nchild_argv > (int)(sizeof w->child_argv / sizeof *w->child_argv) - 3) {
        fprintf(stderr, "redcoll worker: too many options\n");
        return CLI_USAGE;
    }
    w->child_argv[w->nchild_argv] = NULL;
    return -1;
}

/* dlopen, check the ABI, register.  0, or -1 with the reason in err. */
static int load_plugin(rc_ctx *ctx, const char *path, char *err, size_t n)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, n, "cannot load plugin %s: %s", path, dlerror());
        return -1;
    }
    void *sym_abi = dlsym(h, REDCOLL_PLUGIN_ABI_SYMBOL), *sym_reg = dlsym(h, REDCOLL_PLUGIN_REGISTER_SYMBOL);
    if (!sym_abi || !sym_reg) {
        snprintf(err, n, "%s is not a redcoll plugin: it does not export %s() (see redcoll_plugin.h)", path,
                 !sym_abi ? REDCOLL_PLUGIN_ABI_SYMBOL : REDCOLL_PLUGIN_REGISTER_SYMBOL);
        dlclose(h);
        return -1;
    }
    int (*abi)(void);
    int (*reg)(rc_ctx *);
    memcpy(&abi, &sym_abi, sizeof abi); /* POSIX: dlsym's object pointer is the function */
    memcpy(&reg, &sym_reg, sizeof reg);
    int v = abi();
    if (v != REDCOLL_PLUGIN_ABI) {
        snprintf(err, n, "plugin %s was built for plugin ABI %d; this worker speaks ABI %d: rebuild it against "
                         "this redcoll's redcoll_plugin.h", path, v, REDCOLL_PLUGIN_ABI);
        dlclose(h);
        return -1;
    }
    size_t before = ctx->nkernels;
    rc_clearerr(ctx);
    int rv = reg(ctx);
    if (rv != 0) {
        snprintf(err, n, "plugin %s refused to register (returned %d)%s%s", path, rv,
                 rc_ctx_errmsg(ctx)[0] ? ": " : "", rc_ctx_errmsg(ctx));
        return -1; /* it may have registered kernels already: stay loaded */
    }
    if (ctx->nkernels == before) {
        snprintf(err, n, "plugin %s registered no kernel", path);
        return -1;
    }
    char names[400] = "";
    for (size_t i = before; i < ctx->nkernels; i++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", i > before ? ", " : "", ctx->kernels[i].name);
    }
    rc_log(ctx, RC_LOG_INFO, "plugin %s: kernel(s) %s", path, names);
    return 0; /* stays loaded until exit: its kernels are called from now on */
}

static int load_plugins(rc_ctx *ctx, const wopts *w)
{
    char err[600];
    for (int i = 0; i < w->nplugins; i++)
        if (load_plugin(ctx, w->plugins[i], err, sizeof err) != 0) {
            fprintf(stderr, "redcoll worker: %s\n", err);
            return -1;
        }
    return 0;
}

/* A context with the worker options; CLI_OK or the exit status. */
static int make_ctx(const wopts *w, rc_ctx **out)
{
    rc_ctx *ctx = rc_ctx_create();
    *out = NULL;
    if (!ctx) {
        fprintf(stderr, "redcoll worker: cannot create a context (out of memory or libsodium failed)\n");
        return CLI_FAIL;
    }
    rc_status st = w->loglevel < 0 ? RC_OK : rc_ctx_set_int(ctx, RC_OPT_LOG_LEVEL, w->loglevel > 3 ? 3 : w->loglevel);
    if (st == RC_OK && w->queue) st = rc_ctx_set_str(ctx, RC_OPT_QUEUE, w->queue);
    if (st == RC_OK && w->threads) st = rc_ctx_set_int(ctx, RC_OPT_THREADS, (long long)w->threads);
    if (st == RC_OK && w->lease) st = rc_ctx_set_int(ctx, RC_OPT_LEASE_MS, w->lease);
    if (st == RC_OK && w->linger) st = rc_ctx_set_int(ctx, RC_OPT_LINGER_MS, w->linger);
    if (st == RC_OK && w->heartbeat) st = rc_ctx_set_int(ctx, RC_OPT_HEARTBEAT_MS, w->heartbeat);
    if (st == RC_OK && w->drain) st = rc_ctx_set_int(ctx, RC_OPT_DRAIN_TIMEOUT_MS, w->drain);
    if (st == RC_OK && w->poll > 0) st = rc_ctx_set_int(ctx, RC_OPT_POLL_MS, w->poll);
    if (st == RC_OK && w->max_attempts) st = rc_ctx_set_int(ctx, RC_OPT_MAX_ATTEMPTS, (long long)w->max_attempts);
    if (st == RC_OK && w->url) st = rc_ctx_set_str(ctx, RC_OPT_URL, w->url);
    rc_url u;
    if (st == RC_OK) st = rc_ctx_url(ctx, &u);
    if (st != RC_OK) {
        fprintf(stderr, "redcoll worker: %s\n", rc_ctx_errmsg(ctx));
        rc_ctx_destroy(ctx);
        return CLI_USAGE; /* only option values and addresses fail here */
    }
    st = w->keyfile ? rc_ctx_load_key(ctx, w->keyfile) : rc_ctx_ensure_key(ctx);
    if (st != RC_OK) {
        fprintf(stderr, "redcoll worker: %s\n", rc_ctx_errmsg(ctx));
        rc_ctx_destroy(ctx);
        return CLI_FAIL;
    }
    *out = ctx;
    return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* One worker                                                           */

static rc_ctx *g_ctx;
static volatile sig_atomic_t g_signals;

static void on_signal(int sig)
{
    (void)sig;
    g_signals++;
    if (g_ctx)
        rc_ctx_interrupt(g_ctx);
    if (g_signals >= 3)
        _exit(130); /* the user insists */
}

static void abandon_now(void *user)
{
    (void)user;
    _exit(0); /* the task is back in the queue; a kernel cannot be stopped otherwise */
}

static int serve(const wopts *w)
{
    rc_ctx *ctx;
    int rc = make_ctx(w, &ctx);
    if (rc != CLI_OK)
        return rc;
    if (load_plugins(ctx, w) != 0) {
        rc_ctx_destroy(ctx);
        return CLI_FAIL;
    }
    (void)rc_ctx_set_abandon_handler(ctx, abandon_now, NULL);
    g_ctx = ctx;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc_status st = rc_worker_run(ctx);
    if (st != RC_OK) {
        fprintf(stderr, "redcoll worker: %s: %s\n", rc_strerror(st), rc_ctx_errmsg(ctx));
        rc = st == RC_EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    g_ctx = NULL;
    rc_ctx_destroy(ctx);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Supervisor                                                           */

typedef struct child {
    pid_t pid;
    long long started, due, delay;
    int finished;                 /* exited 0 or 2: not restarted */
} child;

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static pid_t start_child(char *const *argv, const sigset_t *mask, pid_t parent)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child: own process group (a terminal's Ctrl-C goes to the supervisor,
       which forwards it once), die with the supervisor, default signals */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1); /* the supervisor died before prctl */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    sigprocmask(SIG_SETMASK, mask, NULL);
    execv(argv[0], argv);
    fprintf(stderr, "redcoll worker: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void describe(char *out, size_t n, int status)
{
    if (WIFSIGNALED(status))
        snprintf(out, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, n, "exited with status %d", WEXITSTATUS(status));
}

static int supervise(wopts *w)
{
    /* check everything a child would, once, with a clear message */
    rc_ctx *ctx;
    int rc = make_ctx(w, &ctx);
    if (rc != CLI_OK)
        return rc;
    if (load_plugins(ctx, w) != 0) {
        rc_ctx_destroy(ctx);
        return CLI_FAIL;
    }
    rc_ctx_destroy(ctx);
    static char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        fprintf(stderr, "redcoll worker: cannot find my own executable: %s\n", strerror(errno));
        return CLI_FAIL;
    }
    self[len] = '\0';
    w->child_argv[0] = self;

    int n = (int)w->n;
    child *kids = calloc((size_t)n, sizeof *kids);
    if (!kids) {
        fprintf(stderr, "redcoll worker: out of memory\n");
        return CLI_FAIL;
    }
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* its messages must not kill it when whatever read its stderr has gone
       (a log pipe restarted, a closed terminal): a write then fails with
       EPIPE, and the SIGPIPE it raises waits here, consumed below */
    sigaddset(&set, SIGPIPE);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t me = getpid();
    int stopping = 0, gave_up = 0;
    long long t0 = mono_ms();
    for (int i = 0; i < n; i++)
        kids[i].due = t0;
    fprintf(stderr, "redcoll worker: supervisor %ld starting %d worker(s)\n", (long)me, n);
    for (;;) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            child *k = NULL;
            for (int i = 0; i < n && !k; i++)
                if (kids[i].pid == pid)
                    k = &kids[i];
            if (!k)
                continue;
            long long now = mono_ms(), lived = now - k->started;
            char how[120];
            describe(how, sizeof how, status);
            k->pid = 0;
            if (stopping) {
                fprintf(stderr, "redcoll worker: worker %ld stopped (%s)\n", (long)pid, how);
                k->finished = 1;
            } else if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 2)) {
                fprintf(stderr, "redcoll worker: worker %ld %s%s: not restarted\n", (long)pid, how,
                        WEXITSTATUS(status) == 0 ? " (idle past --linger, or its queue was removed)"
                                                 : " (bad usage: it would fail again)");
                k->finished = 1;
                gave_up |= WEXITSTATUS(status) == 2;
            } else {
                k->delay = k->delay == 0 || lived >= RESTART_RESET_MS ? RESTART_MIN_MS
                         : k->delay * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : k->delay * 2;
                k->due = now + k->delay;
                fprintf(stderr, "redcoll worker: worker %ld %s after %.1f s; restarting it in %.2f s\n", (long)pid,
                        how, (double)lived / 1000.0, (double)k->delay / 1000.0);
            }
        }
        int running = 0, waiting = 0;
        long long now = mono_ms(), next = now + 1000;
        for (int i = 0; i < n; i++) {
            child *k = &kids[i];
            if (k->pid) {
                running++;
                continue;
            }
            if (k->finished || stopping)
                continue;
            if (k->due <= now) {
                pid = start_child(w->child_argv, &old, me);
                if (pid < 0) {
                    fprintf(stderr, "redcoll worker: fork failed: %s; retrying\n", strerror(errno));
                    k->delay = k->delay ? (k->delay * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : k->delay * 2)
                                        : RESTART_MIN_MS;
                    k->due = now + k->delay;
                    waiting++;
                } else {
                    setpgid(pid, pid); /* also here: no race with a signal to the group */
                    k->pid = pid;
                    k->started = now;
                    running++;
                    fprintf(stderr, "redcoll worker: started worker %ld (%d of %d)\n", (long)pid, i + 1, n);
                    continue;
                }
            } else {
                waiting++;
            }
            if (k->due < next)
                next = k->due;
        }
        if (!running && (stopping || !waiting))
            break;
        long long wait_ms = next - mono_ms();
        if (wait_ms < 5)
            wait_ms = 5;
        struct timespec ts = {(time_t)(wait_ms / 1000), (wait_ms % 1000) * 1000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            stopping++;
            fprintf(stderr, "redcoll worker: %s: %s %d worker(s)\n", strsignal(sig),
                    stopping == 1 ? "stopping" : "asking again (tasks in hand go back to the queue)", running);
            for (int i = 0; i < n; i++)
                if (kids[i].pid)
                    kill(kids[i].pid, SIGTERM);
        }
    }
    free(kids);
    fprintf(stderr, "redcoll worker: supervisor %ld done\n", (long)me);
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe, NULL, &zero) == SIGPIPE)
        ; /* raised by a write above: not for the program that gets the mask back */
    sigprocmask(SIG_SETMASK, &old, NULL);
    return gave_up ? CLI_FAIL : CLI_OK;
}

int cmd_worker(int argc, char **argv)
{
    wopts w;
    int st = parse_worker(argc, argv, &w);
    if (st >= 0)
        return st;
    return w.n ? supervise(&w) : serve(&w);
}
