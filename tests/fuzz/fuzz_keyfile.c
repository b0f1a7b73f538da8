/* fuzz_keyfile.c - libFuzzer target for the key-file readers (rc_key_read_ring, rc_key_read_file).
 *
 * Why: the key file is read by every worker and master, often from a shared
 * or provisioned location, and its text is parsed into the secrets that all
 * authentication rests on; a reader that overran its buffer, hung, or
 * accepted a malformed key would be a hole in the one place that must be
 * exact.  Each input is written as the whole content of one file, mode 0600,
 * in a private directory made once per process (mkdtemp, removed at exit),
 * then read back with both readers.  An independent oracle says what they
 * must do: a file of at most 4 x 66 bytes with no NUL byte (refused: a
 * reader of C strings would silently ignore what follows it), split at LF, each line stripped of one trailing CR; blank lines are
 * skipped, every other line is exactly 64 hex digits, 1 to 4 of them, current
 * key first; anything else is RC_EKEY with a reason, and the ring handed back
 * is then empty and holds no key bytes.
 */
#include "fuzz_common.h"

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[4096];
static char path[4200];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rc-fuzz-keyfile.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) { /* TMPDIR gone (a cleaned build tree): fall back to /tmp */
        snprintf(dir, sizeof dir, "/tmp/rc-fuzz-keyfile.XXXXXX");
        if (!mkdtemp(dir)) {
            perror("fuzz_keyfile: mkdtemp");
            abort();
        }
    }
    snprintf(path, sizeof path, "%s/key", dir);
    atexit(cleanup);
    if (sodium_init() < 0)
        abort();
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* What the readers must return for this content; secrets[0..*count) on RC_OK. */
static rc_status oracle(const uint8_t *d, size_t n, unsigned char secrets[RC_KEYRING_MAX][RC_KEYBYTES], int *count)
{
    *count = 0;
    if (n > RC_KEYRING_MAX * (RC_KEYBYTES * 2 + 2))
        return RC_EKEY;
    if (memchr(d, 0, n))
        return RC_EKEY;
    size_t m = n;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        while (j < m && d[j] != '\n')
            j++;
        size_t len = j - i;
        if (len && d[i + len - 1] == '\r')
            len--;
        if (len) {
            if (*count == RC_KEYRING_MAX || len != RC_KEYBYTES * 2)
                return RC_EKEY;
            for (size_t b = 0; b < RC_KEYBYTES; b++) {
                int h = hexval(d[i + 2 * b]), l = hexval(d[i + 2 * b + 1]);
                if (h < 0 || l < 0)
                    return RC_EKEY;
                secrets[*count][b] = (unsigned char)(h * 16 + l);
            }
            (*count)++;
        }
        i = j + 1;
    }
    return *count ? RC_OK : RC_EKEY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    FUZZ_CHECK(fd >= 0, "cannot create %s", path);
    FUZZ_CHECK(fchmod(fd, 0600) == 0, "fchmod");
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        FUZZ_CHECK(w > 0, "write to %s", path);
        off += (size_t)w;
    }
    FUZZ_CHECK(close(fd) == 0, "close");

    unsigned char want[RC_KEYRING_MAX][RC_KEYBYTES], ring[RC_KEYRING_MAX][RC_KEYBYTES], got[RC_KEYBYTES];
    int nwant = 0, n = -1;
    rc_status exp = oracle(data, size, want, &nwant);
    memset(ring, 0xee, sizeof ring);
    char why[600];
    why[0] = '\0';
    rc_status st = rc_key_read_ring(path, ring, &n, why, sizeof why);
    FUZZ_CHECK(st == exp, "ring reader says %d, oracle %d (%s)", (int)st, (int)exp, why);
    if (st == RC_OK) {
        FUZZ_CHECK(n == nwant, "ring of %d keys, oracle %d", n, nwant);
        FUZZ_CHECK(memcmp(ring, want, (size_t)n * RC_KEYBYTES) == 0, "secrets differ from the file's hex digits");
    } else {
        FUZZ_CHECK(memchr(why, '\0', sizeof why) != NULL && why[0], "refusal without a reason");
        /* refused before reading (all still 0xee) or wiped after (all zero): no key bytes left */
        int untouched = 1, wiped = 1;
        for (size_t i = 0; i < sizeof ring; i++) {
            untouched &= ((unsigned char *)ring)[i] == 0xee;
            wiped &= ((unsigned char *)ring)[i] == 0;
        }
        FUZZ_CHECK(n == 0 && (untouched || wiped), "refused ring not emptied and wiped");
    }

    memset(got, 0xee, sizeof got);
    rc_status sf = rc_key_read_file(path, got, why, sizeof why);
    FUZZ_CHECK(sf == exp, "file reader says %d, oracle %d (%s)", (int)sf, (int)exp, why);
    if (sf == RC_OK)
        FUZZ_CHECK(memcmp(got, want[0], sizeof got) == 0, "rc_key_read_file did not return the first key");

    char *tiny = malloc(1); /* heap, so ASan sees an overflow of the reason buffer */
    FUZZ_CHECK(tiny != NULL, "malloc");
    FUZZ_CHECK(rc_key_read_ring(path, ring, &n, tiny, 1) == st, "status depends on the reason buffer");
    if (st != RC_OK)
        FUZZ_CHECK(tiny[0] == '\0', "1-byte reason buffer not NUL-terminated");
    free(tiny);
    return 0;
}
