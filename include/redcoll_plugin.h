/* redcoll_plugin.h - the contract between `redcoll worker` and a kernel plugin (a shared object).
 *
 * Why plugins: a worker can only run kernels compiled into it, so every
 * application used to need its own worker binary (pi --worker, testworker,
 * ...).  `redcoll worker --plugin libmykernels.so` is one generic, supervised
 * worker (`-n N` local processes, restarts on crash) that gets its kernels
 * from shared objects instead: build your kernels once as a plugin, ship the
 * .so to every node, and the fleet runs them.
 *
 * A plugin is a shared object (CMake: add_library(name MODULE ...), or
 * cc -shared -fPIC) that exports exactly two functions with C linkage:
 *
 *     #include <redcoll_plugin.h>
 *
 *     REDCOLL_PLUGIN_DEFINE_ABI();          // int redcoll_plugin_abi(void)
 *
 *     static int square(rc_task *t, void *user) { ... }
 *
 *     REDCOLL_PLUGIN_EXPORT int redcoll_plugin_register(rc_ctx *ctx)
 *     {
 *         return rc_register_kernel(ctx, "square", square, NULL) == RC_OK ? 0 : -1;
 *     }
 *
 * Loading (in this order; any failure stops the worker with a message naming
 * the plugin file):
 *   1. dlopen(path, RTLD_NOW | RTLD_LOCAL): every symbol must resolve now.
 *   2. redcoll_plugin_abi() must return the REDCOLL_PLUGIN_ABI the worker was
 *      built with.  The number changes only when this contract or the kernel
 *      API a plugin calls (rc_task_*, rc_rng_*, rc_register_kernel,
 *      rc_reduce_local, rc_datatype_size, rc_strerror) changes incompatibly;
 *      a plugin built against another version is refused, never run.
 *   3. redcoll_plugin_register(ctx) is called once, before the worker
 *      connects.  It registers its kernels with rc_register_kernel and returns
 *      0, or non-zero to refuse to load (say why on stderr).  It must not
 *      keep `ctx`, set options on it, or call rc_worker_run / rc_job_*: the
 *      worker owns the context.  A kernel name registered by two plugins is
 *      an error.
 *
 * The plugin calls the redcoll API it needs (rc_task_input, rc_task_output,
 * rc_task_fail, rc_task_rng, ...) and does not link libredcoll itself: those
 * symbols are resolved from the worker executable, which exports them.
 * Kernels run exactly as in a compiled-in worker: once per task, on the
 * worker's main thread, with rc_task_threads(t) OpenMP threads allowed.  The
 * plugin stays loaded until the worker exits.
 */
#ifndef REDCOLL_PLUGIN_H
#define REDCOLL_PLUGIN_H

#include "redcoll.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this contract.  A plugin returns it from redcoll_plugin_abi(). */
#define REDCOLL_PLUGIN_ABI 1

#if defined(__GNUC__)
#define REDCOLL_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define REDCOLL_PLUGIN_EXPORT
#endif

/* Exported by the plugin: the REDCOLL_PLUGIN_ABI it was compiled against. */
REDCOLL_PLUGIN_EXPORT int redcoll_plugin_abi(void);
/* Exported by the plugin: register its kernels on ctx; 0 on success. */
REDCOLL_PLUGIN_EXPORT int redcoll_plugin_register(rc_ctx *ctx);

/* Defines redcoll_plugin_abi() returning the version this header declares. */
#define REDCOLL_PLUGIN_DEFINE_ABI() \
    REDCOLL_PLUGIN_EXPORT int redcoll_plugin_abi(void) { return REDCOLL_PLUGIN_ABI; } \
    typedef int redcoll_plugin_abi_defined_

/* The names the worker looks up with dlsym. */
#define REDCOLL_PLUGIN_ABI_SYMBOL "redcoll_plugin_abi"
#define REDCOLL_PLUGIN_REGISTER_SYMBOL "redcoll_plugin_register"

#ifdef __cplusplus
}
#endif
#endif /* REDCOLL_PLUGIN_H */
