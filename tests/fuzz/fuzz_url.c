/* fuzz_url.c - libFuzzer target for the Redis URL parser (rc_url_parse).
 *
 * Why: the URL comes from the command line, REDCOLL_URL or a config that
 * another party may have written, and the parser copies its pieces (host,
 * socket path, %-decoded user and password) into fixed-size buffers of
 * rc_url, which conn.c later hands to hiredis and to AUTH.  The input bytes
 * become one NUL-terminated string in an exact-size heap buffer.  Invariants
 * checked: the status is RC_OK or RC_EINVAL with a reason; on RC_OK the port
 * is in 1..65535, the database in 0..1000000, every string field is
 * NUL-terminated inside its buffer, a unix URL has an absolute path and a TCP
 * one a host; and a URL rebuilt from the parsed fields (every credential byte
 * %-escaped, IPv6-style brackets where needed) parses back to the same fields.
 */
#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(u, f) FUZZ_CHECK(memchr((u)->f, '\0', sizeof (u)->f) != NULL, #f " not NUL-terminated")

static void check_url(const rc_url *u)
{
    TERMINATED(u, host);
    TERMINATED(u, path);
    TERMINATED(u, user);
    TERMINATED(u, pass);
    FUZZ_CHECK(u->port >= 1 && u->port <= 65535, "port %d", u->port);
    FUZZ_CHECK(u->db >= 0 && u->db <= 1000000, "db %d", u->db);
    if (u->is_unix) {
        FUZZ_CHECK(u->path[0] == '/', "unix path '%s' is not absolute", u->path);
        FUZZ_CHECK(strchr(u->path, '?') == NULL, "'?' in unix path '%s'", u->path);
        FUZZ_CHECK(!u->host[0] && !u->user[0] && !u->pass[0], "unix URL with host or credentials");
    } else {
        FUZZ_CHECK(u->host[0] != '\0', "TCP URL without a host");
        FUZZ_CHECK(!u->path[0], "TCP URL with a socket path");
        FUZZ_CHECK(strpbrk(u->host, "/@") == NULL, "host '%s' holds '/' or '@'", u->host);
    }
}

static void put_escaped(char **o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        *(*o)++ = '%';
        *(*o)++ = hex[c >> 4];
        *(*o)++ = hex[c & 15];
    }
}

/* Rebuild a URL from u (into out, big enough) in the parser's own grammar. */
static void rebuild(const rc_url *u, char *out)
{
    char *o = out;
    if (u->is_unix) {
        sprintf(o, "unix://%s?db=%d", u->path, u->db);
        return;
    }
    o += sprintf(o, "redis://");
    if (u->user[0] || u->pass[0]) {
        put_escaped(&o, u->user);
        *o++ = ':';
        put_escaped(&o, u->pass);
        *o++ = '@';
    }
    int bracket = u->host[0] == '[' || strchr(u->host, ':') != NULL;
    sprintf(o, "%s%s%s:%d/%d", bracket ? "[" : "", u->host, bracket ? "]" : "", u->port, u->db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL, "malloc");
    memcpy(s, data, size);
    s[size] = '\0';

    rc_url u;
    char why[300];
    rc_status st = rc_url_parse(s, &u, why, sizeof why);
    FUZZ_CHECK(st == RC_OK || st == RC_EINVAL, "status %d", (int)st);
    if (st == RC_OK) {
        check_url(&u);
        FUZZ_CHECK(u.is_unix == (strncmp(s, "unix://", 7) == 0), "is_unix %d for '%s'", u.is_unix, s);
        /* every credential byte as %XX: 3x the buffers, plus the rest */
        char *again = malloc(3 * (sizeof u.user + sizeof u.pass) + sizeof u.host + sizeof u.path + 64);
        FUZZ_CHECK(again != NULL, "malloc");
        rebuild(&u, again);
        rc_url v;
        rc_status st2 = rc_url_parse(again, &v, why, sizeof why);
        FUZZ_CHECK(st2 == RC_OK, "'%s' parsed, its rebuilt form '%s' does not: %s", s, again, why);
        FUZZ_CHECK(v.is_unix == u.is_unix && v.port == u.port && v.db == u.db && strcmp(v.host, u.host) == 0 &&
                       strcmp(v.path, u.path) == 0 && strcmp(v.user, u.user) == 0 && strcmp(v.pass, u.pass) == 0,
                   "'%s' and its rebuilt form '%s' parse differently", s, again);
        free(again);
    } else {
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL && why[0], "failure without a reason");
    }
    /* a 1-byte reason buffer must be respected (heap, so ASan sees an overflow) */
    char *tiny = malloc(1);
    FUZZ_CHECK(tiny != NULL, "malloc");
    rc_status st1 = rc_url_parse(s, &u, tiny, 1);
    FUZZ_CHECK(st1 == st, "status depends on the reason buffer");
    if (st1 != RC_OK)
        FUZZ_CHECK(tiny[0] == '\0', "1-byte reason buffer not NUL-terminated");
    free(tiny);
    free(s);
    return 0;
}
