/* unit.h - the check tally of the unit tests that need no Redis (test_ops,
 * test_wire, test_resp).
 *
 * Why one header: the three kept their own copy of the same counter and
 * report.  CHECK counts every check and prints file:line and the reason for
 * the first UNIT_SHOWN failures (the tally says how many more); unit_done
 * prints the tally and is main's exit status. */
#ifndef REDCOLL_TESTS_UNIT_H
#define REDCOLL_TESTS_UNIT_H

#include "redcoll.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNIT_SHOWN 40

static unsigned long n_checks;
static unsigned long n_failures;

static void check_at_(int ok, const char *file, int line, const char *fmt, ...) RC_PRINTF(4, 5);
static void check_at_(int ok, const char *file, int line, const char *fmt, ...)
{
    n_checks++;
    if (ok)
        return;
    if (++n_failures <= UNIT_SHOWN) {
        const char *base = strrchr(file, '/');
        va_list ap;
        fprintf(stderr, "%s:%d: FAIL: ", base ? base + 1 : file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
}
/* check_(ok, line, ...): for helpers that report their caller's line */
#define check_(ok, line, ...) check_at_((ok) != 0, __FILE__, (line), __VA_ARGS__)
#define CHECK(cond, ...) check_at_((cond) != 0, __FILE__, __LINE__, __VA_ARGS__)

/* The tally on stdout or stderr; 0 if every check passed, else 1. */
static int unit_done(const char *name)
{
    if (n_failures) {
        fprintf(stderr, "%s: %lu of %lu checks FAILED\n", name, n_failures, n_checks);
        return 1;
    }
    printf("%s: %lu checks passed\n", name, n_checks);
    return 0;
}

#endif
