/* main.c - a program outside the redcoll tree, built against an installed redcoll.
 *
 * Why: it is what a user writes first, so it is what tests/install/test_install.sh
 * compiles with find_package(redcoll) (shared and static targets) and with
 * pkg-config.  It touches the three things a broken package breaks: the
 * header (the version macro), symbols resolved from the library (context,
 * status strings, a reduce), and the dependencies the library pulls in at
 * link and load time (libsodium for rc_ctx_create, OpenMP, hiredis).  No
 * Redis is needed.  Prints a fixed text the test compares. */
#include <redcoll.h>

#include <stdio.h>

int main(void)
{
    rc_ctx *ctx = rc_ctx_create();
    if (!ctx) {
        fprintf(stderr, "consumer: rc_ctx_create failed\n");
        return 1;
    }
    double in[3] = {1.0, 2.0, 3.0}, inout[3] = {10.0, 20.0, 30.0};
    rc_status sum = rc_reduce_local(in, inout, 3, RC_DOUBLE, rc_op_builtin(RC_SUM));
    rc_status band = rc_reduce_local(in, inout, 3, RC_DOUBLE, rc_op_builtin(RC_BAND));
    printf("redcoll %s\n", REDCOLL_VERSION_STRING);
    printf("sum: %s: %g %g %g\n", rc_strerror(sum), inout[0], inout[1], inout[2]);
    printf("band on double: %s\n", rc_strerror(band));
    rc_ctx_destroy(ctx);
    return sum == RC_OK && band == RC_ETYPE ? 0 : 1;
}
