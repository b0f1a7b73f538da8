/* local.c - the embedded default: a private redis-server and local workers.
 *
 * Everything lives in one fresh directory (mkdtemp under $TMPDIR): the unix
 * socket (mode 700, so other local users cannot reach the server), the
 * server's log, and the freshly generated key file the workers read.  No TCP
 * port is opened and nothing is persisted.  Children are put in their own
 * process group, so a Ctrl-C at the terminal reaches only the master, which
 * then stops them in order; and they get PR_SET_PDEATHSIG (SIGKILL) so that
 * even if the master is killed outright they do not outlive it.  SIGKILL,
 * not a stop request: the private Redis dies with the master, and a worker
 * asked to stop finishes its task and then waits for Redis to come back to
 * deliver it, which this one never does. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct rc_local {
    char dir[256];
    char sock[300];
    char keyfile[300];
    char log[300];
    char url[320];
    pid_t redis;
    pid_t *workers;
    int nworkers;
};

/* Find an executable on PATH; out gets its full path. */
static int find_program(const char *name, char *out, size_t n)
{
    if (strcmp(name, "/proc/self/exe") == 0) {
        /* resolve it here: in the child it would name whatever runs us
           (valgrind, a loader), not this program */
        ssize_t got = readlink(name, out, n - 1);
        if (got <= 0)
            return -1;
        out[got] = '\0';
        return access(out, X_OK);
    }
    if (strchr(name, '/')) {
        snprintf(out, n, "%s", name);
        return access(out, X_OK);
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        snprintf(out, n, "%.*s/%s", (int)len, path, name);
        if (len && access(out, X_OK) == 0)
            return 0;
        path += len + (end ? 1 : 0);
    }
    return -1;
}

/* In a fresh child: own process group, die with the parent. */
static void child_setup(pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127); /* the parent died before prctl took effect */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[600];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* Wait for pid up to ms; 1 if it exited. */
static int wait_exit(pid_t pid, long long ms)
{
    long long end = rc_now_ms() + ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 1;
        if (rc_now_ms() >= end)
            return 0;
        rc_sleep_ms(10);
    }
}


/* Wake workers blocked waiting for work: drop every client connection (the
   stop request is already delivered, so a woken worker exits; one that was
   delivering reconnects and finishes). */
static void wake_workers(const rc_local *loc)
{
    rc_url u;
    memset(&u, 0, sizeof u);
    u.is_unix = 1;
    snprintf(u.path, sizeof u.path, "%s", loc->sock);
    rc_conn *c = rc_conn_new(&u, 500, 500);
    if (!c)
        return;
    redisReply *r = NULL;
    (void)rc_conn_cmdf(c, &r, "CLIENT KILL TYPE normal SKIPME yes");
    if (r) freeReplyObject(r);
    rc_conn_free(c);
}

void rc_local_stop(rc_local *loc)
{
    if (!loc)
        return;
    /* workers first: SIGTERM lets each deliver its task in hand */
    for (int i = 0; i < loc->nworkers; i++)
        if (loc->workers[i] > 0)
            kill(loc->workers[i], SIGTERM);
    if (loc->nworkers && loc->redis > 0)
        wake_workers(loc);
    /* an idle worker exits at once (woken above, or by the signal); one
       deep in a long task would take as long as the task, and the caller
       is done with the pool (finished or interrupted), so it gets a short
       grace, then KILL */
    long long end = rc_now_ms() + 2000;
    for (int i = 0; i < loc->nworkers; i++) {
        long long left = end - rc_now_ms();
        if (loc->workers[i] > 0 && !wait_exit(loc->workers[i], left > 0 ? left : 0)) {
            kill(loc->workers[i], SIGKILL);
            wait_exit(loc->workers[i], 5000);
        }
    }
    /* nothing in the private server is worth a graceful shutdown */
    if (loc->redis > 0) {
        kill(loc->redis, SIGKILL);
        wait_exit(loc->redis, 5000);
    }
    if (loc->dir[0])
        remove_dir(loc->dir);
    free(loc->workers);
    free(loc);
}

int rc_local_workers(const rc_local *loc) { return loc ? loc->nworkers : 0; }
const char *rc_local_url(const rc_local *loc) { return loc ? loc->url : ""; }

static void log_tail(rc_ctx *ctx, const char *path)
{
    char buf[600];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    lseek(fd, size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0, SEEK_SET);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        size_t l = strlen(ctx->errmsg);
        snprintf(ctx->errmsg + l, sizeof ctx->errmsg - l, "; redis-server said: %s", buf);
    }
}

static rc_status start_redis(rc_ctx *ctx, rc_local *loc)
{
    char prog[512];
    const char *name = getenv("REDCOLL_REDIS_SERVER");
    if (!name || !*name)
        name = "redis-server";
    if (find_program(name, prog, sizeof prog) != 0)
        return rc_seterr(ctx, RC_ENOTFOUND, "cannot find '%s' on PATH: install the redis-server package, "
                                            "set REDCOLL_REDIS_SERVER, or give a Redis address", name);
    const char *argv[] = {prog, "--port", "0", "--unixsocket", loc->sock, "--unixsocketperm", "700",
                          "--save", "", "--appendonly", "no", "--dir", loc->dir, "--daemonize", "no",
                          "--loglevel", "warning", "--logfile", loc->log, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return rc_seterr(ctx, RC_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        child_setup(parent);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    loc->redis = pid;
    /* ready when it answers PING on the socket */
    rc_url u;
    memset(&u, 0, sizeof u);
    u.is_unix = 1;
    snprintf(u.path, sizeof u.path, "%s", loc->sock);
    long long end = rc_now_ms() + 10000;
    for (;;) {
        rc_conn *c = rc_conn_new(&u, 1000, 1000);
        if (!c)
            return rc_seterr(ctx, RC_ENOMEM, "out of memory");
        redisReply *r = NULL;
        rc_status st = rc_conn_cmdf(c, &r, "PING");
        if (r) freeReplyObject(r);
        rc_conn_free(c);
        if (st == RC_OK)
            return RC_OK;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            loc->redis = 0;
            rc_seterr(ctx, RC_EIO, "private redis-server (%s) exited at start-up", prog);
            log_tail(ctx, loc->log);
            return RC_EIO;
        }
        if (rc_now_ms() > end) {
            rc_seterr(ctx, RC_ETIMEDOUT, "private redis-server did not answer on %s within 10 s", loc->sock);
            log_tail(ctx, loc->log);
            return RC_ETIMEDOUT;
        }
        rc_sleep_ms(5);
    }
}

static rc_status start_workers(rc_ctx *ctx, rc_local *loc, const char *const *argv, int n)
{
    char prog[512];
    if (find_program(argv[0], prog, sizeof prog) != 0)
        return rc_seterr(ctx, RC_ENOTFOUND, "cannot find worker program '%s'", argv[0]);
    /* the environment is built before fork: only exec-safe calls after it */
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 3, sizeof *envp);
    char url[400], key[400];
    if (!envp)
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    snprintf(url, sizeof url, "REDCOLL_URL=unix://%s", loc->sock);
    snprintf(key, sizeof key, "REDCOLL_KEY_FILE=%s", loc->keyfile);
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "REDCOLL_URL=", 12) != 0 && strncmp(environ[i], "REDCOLL_KEY_FILE=", 17) != 0)
            envp[k++] = environ[i];
    envp[k++] = url;
    envp[k++] = key;
    envp[k] = NULL;
    pid_t parent = getpid();
    rc_status st = RC_OK;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            st = rc_seterr(ctx, RC_EIO, "fork: %s", strerror(errno));
            break;
        }
        if (pid == 0) {
            child_setup(parent);
            execve(prog, (char *const *)argv, envp);
            _exit(127);
        }
        loc->workers[loc->nworkers++] = pid;
    }
    free(envp);
    return st;
}

rc_status rc_local_start(rc_ctx *ctx, const char *const *worker_argv, int nworkers, rc_local **out)
{
    if (!out)
        return RC_EINVAL;
    *out = NULL;
    if (!ctx || nworkers < 0 || nworkers > 4096 || (nworkers > 0 && (!worker_argv || !worker_argv[0])))
        return ctx ? rc_seterr(ctx, RC_EINVAL, "rc_local_start: need a worker command and 0-4096 workers")
                   : RC_EINVAL;
    rc_clearerr(ctx);
    rc_local *loc = calloc(1, sizeof *loc);
    if (!loc || !(loc->workers = calloc((size_t)nworkers + 1, sizeof *loc->workers))) {
        free(loc);
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 150)
        tmp = "/tmp";
    snprintf(loc->dir, sizeof loc->dir, "%s/redcoll.XXXXXX", tmp);
    if (!mkdtemp(loc->dir)) {
        rc_status st = rc_seterr(ctx, RC_EIO, "cannot create a private directory in %s: %s", tmp, strerror(errno));
        loc->dir[0] = '\0';
        rc_local_stop(loc);
        return st;
    }
    snprintf(loc->sock, sizeof loc->sock, "%s/redis.sock", loc->dir);
    snprintf(loc->keyfile, sizeof loc->keyfile, "%s/key", loc->dir);
    snprintf(loc->log, sizeof loc->log, "%s/redis.log", loc->dir);
    char msg[300];
    rc_status st = start_redis(ctx, loc);
    if (st == RC_OK && (st = rc_keygen_file(loc->keyfile, msg, sizeof msg)) != RC_OK)
        rc_seterr(ctx, st, "%s", msg);
    if (st == RC_OK)
        st = rc_ctx_load_key(ctx, loc->keyfile);
    if (st == RC_OK) {
        snprintf(loc->url, sizeof loc->url, "unix://%s", loc->sock);
        st = rc_ctx_set_str(ctx, RC_OPT_URL, loc->url);
    }
    if (st == RC_OK && nworkers > 0)
        st = start_workers(ctx, loc, worker_argv, nworkers);
    if (st != RC_OK) {
        char keep[sizeof ctx->errmsg];
        memcpy(keep, ctx->errmsg, sizeof keep);
        rc_local_stop(loc);
        memcpy(ctx->errmsg, keep, sizeof keep);
        return st;
    }
    *out = loc;
    return RC_OK;
}
