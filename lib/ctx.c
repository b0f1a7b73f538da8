/* ctx.c - the context handle: options, key, kernel registry, connection.
 *
 * Options are set through two typed setters keyed by an enum (the curl
 * pattern), so new options never change the ABI.  Defaults favour recovery
 * within seconds: a 5 s lease renewed four times per lease. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

rc_ctx *rc_ctx_create(void)
{
    if (sodium_init() < 0)
        return NULL;
    rc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->queue = strdup("redcoll");
    if (!ctx->queue) {
        free(ctx);
        return NULL;
    }
    ctx->lease_ms = 5000;
    ctx->heartbeat_ms = 0; /* 0: lease/4 */
    ctx->connect_ms = 5000;
    ctx->command_ms = 10000;
    ctx->linger_ms = 0;
    ctx->job_timeout_ms = 0;
    ctx->poll_ms = 0; /* by role: rc_master_poll_ms, worker.c's idle_slice */
    ctx->threads = 1;
    ctx->log_level = RC_LOG_WARN;
    ctx->max_republish = 10;
    ctx->max_attempts = 3;
    ctx->drain_timeout_ms = 0;
    ctx->redis_deadline_ms = 60000;
    ctx->retention_ms = 24LL * 3600 * 1000;
    ctx->max_payload = 128ULL << 20;
    ctx->max_batch = RC_BATCH_MAX;
    ctx->prefetch = 1;
    ctx->stop_wr = -1;
    ctx->stop_rd = -1;
    /* REDCOLL_LOG=error|warn|info|debug[,syslog]: the level before any -v/-q */
    const char *lv = getenv("REDCOLL_LOG");
    if (lv && *lv) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++)
            if (strncmp(lv, names[i], strlen(names[i])) == 0 || (lv[0] == '0' + i && (lv[1] == ',' || !lv[1])))
                ctx->log_level = i;
        ctx->use_syslog = strstr(lv, "syslog") != NULL;
    }
    if (gethostname(ctx->host, sizeof ctx->host) != 0)
        strcpy(ctx->host, "unknown");
    ctx->host[sizeof ctx->host - 1] = '\0';
    return ctx;
}

void rc_ctx_destroy(rc_ctx *ctx)
{
    if (!ctx)
        return;
    rc_conn_free(ctx->conn);
    if (ctx->stop_rd >= 0) {
        close(ctx->stop_rd);
        close(ctx->stop_wr);
    }
    free(ctx->url);
    free(ctx->queue);
    free(ctx->kernels);
    free(ctx->keyfile);
    sodium_memzero(&ctx->keys, sizeof ctx->keys);
    free(ctx);
}

rc_status rc_ctx_set_str(rc_ctx *ctx, rc_option opt, const char *value)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    char why[256];
    switch (opt) {
    case RC_OPT_URL: {
        rc_url u;
        if (rc_url_parse(value, &u, why, sizeof why) != RC_OK)
            return rc_seterr(ctx, RC_EINVAL, "%s", why);
        char *dup = strdup(value);
        if (!dup)
            return rc_seterr(ctx, RC_ENOMEM, "out of memory");
        free(ctx->url);
        ctx->url = dup;
        rc_conn_free(ctx->conn);
        ctx->conn = NULL;
        return RC_OK;
    }
    case RC_OPT_QUEUE: {
        /* "a,b,c": a worker serves them in this priority order */
        char part[256];
        const char *s = value ? value : "";
        do {
            const char *comma = strchr(s, ',');
            size_t n = comma ? (size_t)(comma - s) : strlen(s);
            snprintf(part, sizeof part, "%.*s", (int)(n < 255 ? n : 255), s);
            if (n > 255 || rc_queue_name_check(part, why, sizeof why) != RC_OK)
                return rc_seterr(ctx, RC_EINVAL, "%s", n > 255 ? "queue name too long" : why);
            s = comma ? comma + 1 : s + n;
        } while (*s || s[-1] == ',');
        char *dup = strdup(value);
        if (!dup)
            return rc_seterr(ctx, RC_ENOMEM, "out of memory");
        free(ctx->queue);
        ctx->queue = dup;
        return RC_OK;
    }
    case RC_OPT_KEY_FILE:
        return rc_ctx_load_key(ctx, value);
    default:
        return rc_seterr(ctx, RC_EINVAL, "option %d does not take a string", (int)opt);
    }
}

rc_status rc_ctx_set_int(rc_ctx *ctx, rc_option opt, long long v)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    long long lo = 0, hi = 7LL * 24 * 3600 * 1000;
    long long *slot = NULL;
    int *islot = NULL;
    const char *name = "option";
    switch (opt) {
    case RC_OPT_LEASE_MS: slot = &ctx->lease_ms; lo = 100; name = "lease"; break;
    case RC_OPT_HEARTBEAT_MS: slot = &ctx->heartbeat_ms; name = "heartbeat interval"; break;
    case RC_OPT_CONNECT_TIMEOUT_MS: slot = &ctx->connect_ms; lo = 1; name = "connect timeout"; break;
    case RC_OPT_COMMAND_TIMEOUT_MS: slot = &ctx->command_ms; lo = 100; name = "command timeout"; break;
    case RC_OPT_LINGER_MS: slot = &ctx->linger_ms; name = "linger"; break;
    case RC_OPT_JOB_TIMEOUT_MS: slot = &ctx->job_timeout_ms; name = "job timeout"; break;
    case RC_OPT_POLL_MS: slot = &ctx->poll_ms; lo = 1; hi = 5000; name = "poll interval"; break;
    case RC_OPT_THREADS: islot = &ctx->threads; lo = 1; hi = 4096; name = "threads"; break;
    case RC_OPT_LOG_LEVEL: islot = &ctx->log_level; lo = -1; hi = 3; name = "log level"; break;
    case RC_OPT_MAX_REPUBLISH: islot = &ctx->max_republish; hi = 255; name = "max republish"; break;
    case RC_OPT_MAX_ATTEMPTS: islot = &ctx->max_attempts; lo = 1; hi = 1000; name = "max attempts"; break;
    case RC_OPT_DRAIN_TIMEOUT_MS: slot = &ctx->drain_timeout_ms; name = "drain timeout"; break;
    case RC_OPT_REDIS_DEADLINE_MS: slot = &ctx->redis_deadline_ms; lo = 100; name = "Redis deadline"; break;
    case RC_OPT_ENCRYPT: islot = &ctx->encrypt; hi = 1; name = "encrypt"; break;
    case RC_OPT_MAX_BATCH: islot = &ctx->max_batch; lo = 1; hi = RC_BATCH_MAX; name = "max batch"; break;
    case RC_OPT_PREFETCH: islot = &ctx->prefetch; hi = 1; name = "prefetch"; break;
    case RC_OPT_MAX_PAYLOAD:
        if (v < 1024 || (unsigned long long)v > RC_PAYLOAD_MAX)
            return rc_seterr(ctx, RC_EINVAL, "max payload %lld out of range [1024, %llu]", v,
                             (unsigned long long)RC_PAYLOAD_MAX);
        ctx->max_payload = (unsigned long long)v;
        return RC_OK;
    case RC_OPT_RETENTION_MS: slot = &ctx->retention_ms; lo = 1000; hi = 365LL * 24 * 3600 * 1000; name = "retention"; break;
    default:
        return rc_seterr(ctx, RC_EINVAL, "option %d does not take an integer", (int)opt);
    }
    if (v < lo || v > hi)
        return rc_seterr(ctx, RC_EINVAL, "%s %lld out of range [%lld, %lld]", name, v, lo, hi);
    if (slot)
        *slot = v;
    else
        *islot = (int)v;
    return RC_OK;
}

rc_status rc_ctx_set_key(rc_ctx *ctx, const unsigned char key[RC_KEYBYTES])
{
    if (!ctx || !key)
        return RC_EINVAL;
    rc_clearerr(ctx);
    if (rc_keys_derive(&ctx->keys, key) != RC_OK)
        return rc_seterr(ctx, RC_EKEY, "key derivation failed");
    return RC_OK;
}

long long rc_file_mtime_ns(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -1;
    return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

rc_status rc_ctx_load_key(rc_ctx *ctx, const char *path)
{
    if (!ctx || !path)
        return RC_EINVAL;
    rc_clearerr(ctx);
    unsigned char ring[RC_KEYRING_MAX][RC_KEYBYTES];
    int n = 0;
    char why[400];
    long long mt = rc_file_mtime_ns(path);
    if (rc_key_read_ring(path, ring, &n, why, sizeof why) != RC_OK)
        return rc_seterr(ctx, RC_EKEY, "%s", why);
    rc_keys k;
    rc_status st = rc_keys_derive(&k, ring[0]);
    for (int i = 1; i < n && st == RC_OK; i++)
        st = rc_keys_add_old(&k, ring[i]);
    sodium_memzero(ring, sizeof ring);
    if (st != RC_OK) {
        sodium_memzero(&k, sizeof k);
        return rc_seterr(ctx, RC_EKEY, "key derivation failed");
    }
    char *dup = strdup(path);
    if (!dup) {
        sodium_memzero(&k, sizeof k);
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    }
    ctx->keys = k;
    sodium_memzero(&k, sizeof k);
    free(ctx->keyfile);
    ctx->keyfile = dup;
    ctx->keyfile_mtime_ns = mt;
    return RC_OK;
}

int rc_ctx_reload_key(rc_ctx *ctx)
{
    if (!ctx->keyfile)
        return 0;
    long long mt = rc_file_mtime_ns(ctx->keyfile);
    if (mt < 0 || mt == ctx->keyfile_mtime_ns)
        return 0;
    char *path = strdup(ctx->keyfile);
    if (!path)
        return 0;
    uint32_t before = ctx->keys.keyid;
    rc_status st = rc_ctx_load_key(ctx, path);
    if (st == RC_OK)
        rc_log(ctx, RC_LOG_WARN, "key file %s changed: reloaded (current key id %08x, was %08x; %d older key(s) "
                                 "accepted)", path, ctx->keys.keyid, before, ctx->keys.nold);
    else {
        rc_log(ctx, RC_LOG_ERROR, "key file %s changed but cannot be used (%s); keeping the keys in memory", path,
               ctx->errmsg);
        ctx->keyfile_mtime_ns = mt; /* say it once */
    }
    free(path);
    return st == RC_OK;
}

rc_status rc_ctx_set_logger(rc_ctx *ctx, rc_log_fn fn, void *user)
{
    if (!ctx)
        return RC_EINVAL;
    ctx->logfn = fn;
    ctx->loguser = user;
    return RC_OK;
}

void rc_ctx_interrupt(rc_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->interrupted < 100)
        ctx->interrupted++;
    int fd = ctx->stop_wr;
    if (fd >= 0) { /* async-signal-safe; a full pipe is readable enough */
        int e = errno;
        (void)!write(fd, "", 1);
        errno = e;
    }
}

int rc_ctx_stop_fd(rc_ctx *ctx)
{
    if (ctx->stop_rd >= 0)
        return ctx->stop_rd;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    ctx->stop_rd = p[0];
    ctx->stop_wr = p[1];
    /* a request that came before the pipe did leaves no byte in it */
    if (ctx->interrupted)
        (void)!write(p[1], "", 1);
    return p[0];
}

rc_status rc_ctx_set_abandon_handler(rc_ctx *ctx, void (*fn)(void *user), void *user)
{
    if (!ctx)
        return RC_EINVAL;
    ctx->abandon_fn = fn;
    ctx->abandon_user = user;
    return RC_OK;
}

/* REDCOLL_URL_FILE: the URL (with its password) in a file only its owner can
   read, so the password is in neither argv nor the environment of `ps e`. */
static rc_status url_from_file(rc_ctx *ctx, const char *path, char *out, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0)
        return rc_seterr(ctx, RC_EINVAL, "cannot open REDCOLL_URL_FILE %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || (sb.st_mode & 077)) {
        close(fd);
        return rc_seterr(ctx, RC_EINVAL, "REDCOLL_URL_FILE %s is readable by others (mode %03o): run chmod 600 %s",
                         path, (unsigned)(sb.st_mode & 0777), path);
    }
    ssize_t got = read(fd, out, n - 1);
    close(fd);
    if (got <= 0)
        return rc_seterr(ctx, RC_EINVAL, "REDCOLL_URL_FILE %s is empty or unreadable", path);
    out[got] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return RC_OK;
}

rc_status rc_ctx_url(rc_ctx *ctx, rc_url *u)
{
    char buf[1024];
    const char *s = ctx->url ? ctx->url : getenv("REDCOLL_URL");
    const char *file = getenv("REDCOLL_URL_FILE");
    if ((!s || !*s) && file && *file) {
        rc_status st = url_from_file(ctx, file, buf, sizeof buf);
        if (st != RC_OK)
            return st;
        s = buf;
    }
    if (!s || !*s)
        return rc_seterr(ctx, RC_EINVAL, "no Redis address: set one (--redis URL, REDCOLL_URL or REDCOLL_URL_FILE)");
    char why[256];
    rc_status st = rc_url_parse(s, u, why, sizeof why) != RC_OK ? rc_seterr(ctx, RC_EINVAL, "%s", why) : RC_OK;
    sodium_memzero(buf, sizeof buf);
    return st;
}

rc_status rc_ctx_ensure_key(rc_ctx *ctx)
{
    if (ctx->keys.set)
        return RC_OK;
    const char *f = getenv("REDCOLL_KEY_FILE");
    if (f && *f)
        return rc_ctx_load_key(ctx, f);
    return rc_seterr(ctx, RC_EKEY, "no key: load one (--key-file, REDCOLL_KEY_FILE); "
                                   "there is no unauthenticated mode");
}

rc_status rc_connect(rc_ctx *ctx)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    rc_status kst = rc_ctx_ensure_key(ctx);
    if (kst != RC_OK)
        return kst; /* ensure_key said exactly what is wrong with the key */
    rc_url u;
    rc_status st = rc_ctx_url(ctx, &u);
    if (st != RC_OK)
        return st;
    rc_conn_free(ctx->conn);
    ctx->conn = rc_conn_new(&u, ctx->connect_ms, ctx->command_ms);
    if (!ctx->conn)
        return rc_seterr(ctx, RC_ENOMEM, "out of memory");
    st = rc_conn_ensure(ctx->conn);
    if (st != RC_OK)
        return rc_seterr(ctx, st, "%s", ctx->conn->err);
    return RC_OK;
}

static int kernel_name_ok(const char *name, size_t n)
{
    if (n == 0 || n > RC_KERNEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

rc_status rc_register_kernel(rc_ctx *ctx, const char *name, rc_kernel_fn fn, void *user)
{
    if (!ctx)
        return RC_EINVAL;
    rc_clearerr(ctx);
    if (!name || !fn || !kernel_name_ok(name, strlen(name)))
        return rc_seterr(ctx, RC_EINVAL, "kernel name '%s' invalid: 1-%u characters of [A-Za-z0-9_.-]",
                         name ? name : "(null)", RC_KERNEL_MAX);
    if (rc_kernel_find(ctx, name, strlen(name)))
        return rc_seterr(ctx, RC_EINVAL, "kernel '%s' is already registered", name);
    if (ctx->nkernels == ctx->capkernels) {
        size_t cap = ctx->capkernels ? ctx->capkernels * 2 : 8;
        rc_kernel_entry *k = realloc(ctx->kernels, cap * sizeof *k);
        if (!k)
            return rc_seterr(ctx, RC_ENOMEM, "out of memory");
        ctx->kernels = k;
        ctx->capkernels = cap;
    }
    rc_kernel_entry *e = &ctx->kernels[ctx->nkernels++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->fn = fn;
    e->user = user;
    return RC_OK;
}

const rc_kernel_entry *rc_kernel_find(const rc_ctx *ctx, const char *name, size_t len)
{
    for (size_t i = 0; i < ctx->nkernels; i++)
        if (strlen(ctx->kernels[i].name) == len && memcmp(ctx->kernels[i].name, name, len) == 0)
            return &ctx->kernels[i];
    return NULL;
}
