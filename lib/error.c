/* error.c - status messages, the per-context error buffer and the logger.
 *
 * Errors follow curl/hiredis: a fixed enum with static messages, plus one
 * detailed message per context naming what failed (key, task, Redis reply).
 * Log lines share one format for master and workers:
 *   2026-11-25T18:00:00.123Z WARN host/pid message
 * so lines from a fleet can be merged and sorted. */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *const messages[RC_STATUS_COUNT_] = {
    [RC_OK] = "success",
    [RC_EINVAL] = "invalid argument",
    [RC_ENOMEM] = "out of memory",
    [RC_EREDIS] = "Redis connection or command failed",
    [RC_ETIMEDOUT] = "timed out",
    [RC_EAUTH] = "authentication failed (wrong key or tampered data)",
    [RC_EPROTO] = "malformed or unexpected data",
    [RC_EKERNEL] = "a kernel reported an error",
    [RC_ENOKERNEL] = "kernel not registered",
    [RC_EKEY] = "key missing, unreadable or malformed",
    [RC_ECANCELED] = "interrupted or cancelled",
    [RC_EIO] = "operating-system call failed",
    [RC_EAGAIN] = "not finished yet",
    [RC_ETYPE] = "operation not defined for this datatype",
    [RC_ESTATE] = "call not valid in the current state",
    [RC_ENOTFOUND] = "not found",
};

const char *rc_strerror(rc_status st)
{
    if ((int)st < 0 || st >= RC_STATUS_COUNT_ || !messages[st])
        return "unknown status";
    return messages[st];
}

const char *rc_ctx_errmsg(const rc_ctx *ctx)
{
    return ctx ? ctx->errmsg : "no context";
}

rc_status rc_seterr(rc_ctx *ctx, rc_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    va_end(ap);
    return st;
}

void rc_clearerr(rc_ctx *ctx)
{
    ctx->errmsg[0] = '\0';
}

/* write(2) to a socket or pipe whose reader has gone raises SIGPIPE, whose
 * default action ends the process; a program using the library must not
 * have to ignore SIGPIPE.  So, as libpq does, SIGPIPE is blocked for this
 * thread around such writes (Redis going away mid-write; a log collector
 * restarted under a worker's stderr), and a SIGPIPE pending after a failed
 * write (so raised by it) is taken back before the mask is restored -
 * unless the program blocks SIGPIPE itself: then one may have been
 * pending already, and it is the program's.  Two system calls per guarded
 * write. */
int rc_sigpipe_hold(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    return pthread_sigmask(SIG_BLOCK, &set, old) == 0;
}

void rc_sigpipe_release(int held, const sigset_t *old, int failed)
{
    if (!held)
        return;
    sigset_t pending;
    if (failed && !sigismember(old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void rc_log(const rc_ctx *ctx, int level, const char *fmt, ...)
{
    if (level > ctx->log_level)
        return;
    char msg[1024], line[1200], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(line, sizeof line, "%s.%03ldZ %s %s/%ld %s", ts, now.tv_nsec / 1000000L,
             level_names[level < 0 ? 0 : level > 3 ? 3 : level], ctx->host,
             (long)getpid(), msg);
    if (ctx->logfn) {
        ctx->logfn(level, line, ctx->loguser);
    } else if (ctx->use_syslog) {
        /* syslog/journald stamp time, host and pid themselves */
        static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(prio[level < 0 ? 0 : level > 3 ? 3 : level], "%s", msg);
    } else {
        /* one write per line so lines of concurrent processes do not mix */
        size_t n = strlen(line);
        line[n] = '\n';
        int saved = errno; /* a caller may log, then look at errno */
        sigset_t old;
        int held = rc_sigpipe_hold(&old);
        ssize_t w = write(STDERR_FILENO, line, n + 1); /* on failure, nowhere left to report */
        rc_sigpipe_release(held, &old, w < 0);
        errno = saved;
    }
}

long long rc_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

long long rc_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

void rc_sleep_ms(long long ms)
{
    if (ms <= 0)
        return;
    struct timespec t = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
        /* a signal woke us: the caller's loop checks its stop flag, so
           returning early is what it wants */
        break;
    }
}
