/* pi_kernel.h - the Monte Carlo pi kernel shared by `pi --local`, pi workers
 * and the tests.
 *
 * A task's samples are cut into blocks of PI_BLOCK samples; block b of task t
 * draws from the random stream (seed, t, b), whatever thread runs it, and
 * the per-block hit counts are integers, so the count for a task is the
 * same bits for any number of threads or workers. */
#ifndef PI_KERNEL_H
#define PI_KERNEL_H
#include <stdint.h>

#define PI_BLOCK 65536u

/* Number of the `nsamples` points of task `task` that fall in the unit
 * quarter-circle, using `threads` OpenMP threads. */
uint64_t pi_count_hits(uint64_t seed, uint64_t task, uint64_t nsamples, int threads);

/* Samples given to task t when `total` are split over `ntasks` tasks:
 * total/ntasks, plus one for the first total%ntasks tasks. */
uint64_t pi_task_samples(uint64_t total, uint64_t ntasks, uint64_t t);

#endif
