/*
 * retry.h - when a temporarily failed mail goes again, and when not at all
 * (DESIGN.md: 4xx and connection errors back off exponentially from
 * retry_base to retry_max with 50-100 % jitter, until retry_span after the
 * notification was created). Pure; any thread.
 */
#ifndef BERICHTD_RETRY_H
#define BERICHTD_RETRY_H

#include <stdbool.h>
#include <stdint.h>

struct retry_policy {
	int64_t base_ms; /* the first delay */
	int64_t max_ms;  /* the longest delay */
	int64_t span_ms; /* how long after creation a notification may still go */
};

/* The delay after the attempts-th attempt failed (attempts >= 1); rnd: any random value. */
int64_t retry_delay_ms(const struct retry_policy *p, int attempts, uint64_t rnd);

/*
 * Whether a notification created at created_ms is given up (failed)
 * rather than sent again at due_ms: past created_ms + span.
 */
bool retry_expired(const struct retry_policy *p, int64_t created_ms, int64_t due_ms);

#endif
