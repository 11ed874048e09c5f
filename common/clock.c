/*
 * clock.c - monotonic milliseconds and the jittered backoff (see clock.h).
 */
#include "common/clock.h"

#include <time.h>

int64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

int64_t clock_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t backoff_jitter_ms(int64_t base_ms, int64_t max_ms, int attempt, uint64_t rnd)
{
	if (base_ms <= 0)
		return 0;
	int64_t d = base_ms;
	/* doubling stops at the cap, so d never overflows */
	for (int i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	if (d <= 0)
		return 0;
	return d / 2 + (int64_t)(rnd % (uint64_t)(d / 2 + 1));
}
