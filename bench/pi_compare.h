/* pi_compare.h - `pi --compare`: the embedded default against `pi --local`. */
#ifndef PI_COMPARE_H
#define PI_COMPARE_H
#include <stdint.h>

/* `runs` alternating rounds of the embedded default (self started again with
 * `workers` single-threaded workers), the kernel with `workers` OpenMP
 * threads in this process, the kernel on one thread, and a tiny embedded job
 * of `startup_samples` (start-up).  Prints per-round lines and the medians
 * and spreads (or, with json, one JSON object on stdout).  Returns pi's exit
 * status: 0, 1 if a run failed or the runs disagree on the bits, 2 on bad
 * arguments. */
int pi_compare(const char *self, int runs, uint64_t samples, uint64_t tasks, uint64_t seed, int workers,
               uint64_t startup_samples, int json);

#endif
