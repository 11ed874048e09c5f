/*
 * retry.c - the retry policy of the delivery workers (see retry.h).
 */
#include "notify/retry.h"

#include "common/clock.h"

int64_t retry_delay_ms(const struct retry_policy *p, int attempts, uint64_t rnd)
{
	/* jitter so that a relay outage does not end in a thundering herd */
	return backoff_jitter_ms(p->base_ms, p->max_ms, attempts, rnd);
}

bool retry_expired(const struct retry_policy *p, int64_t created_ms, int64_t due_ms)
{
	return due_ms > created_ms + p->span_ms;
}
