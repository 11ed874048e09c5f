/*
 * clock.h - the one monotonic clock and the one jittered backoff.
 *
 * clock_mono_ms is for intervals and deadlines inside the process (it never
 * jumps with the wall clock); epoch times come from common/timefmt.h.
 * backoff_jitter_ms is pure: the caller passes the random value, so tests
 * can pin it. Any thread.
 */
#ifndef BERICHTD_CLOCK_H
#define BERICHTD_CLOCK_H

#include <stdint.h>

#define MS_PER_S 1000
#define NS_PER_MS 1000000

/* CLOCK_MONOTONIC in milliseconds. */
int64_t clock_mono_ms(void);
/* The same clock in microseconds (durations in log lines). */
int64_t clock_mono_us(void);

/*
 * The delay before attempt number `attempt` (1 = the first retry):
 * d = base_ms * 2^(attempt - 1), capped at max_ms, then jittered into
 * [d/2, d] with rnd (any value, e.g. random()) so that many clients that
 * failed together do not come back together. base_ms <= 0 gives 0.
 */
int64_t backoff_jitter_ms(int64_t base_ms, int64_t max_ms, int attempt, uint64_t rnd);

#endif
