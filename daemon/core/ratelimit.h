/*
 * ratelimit.h - per-agency token buckets that count messages and looked-up
 * BSNs, not requests.
 *
 * Each agency has a bucket of `burst` tokens refilled at `rate` tokens per
 * second; a request that carries n messages (1 for POST /v1/berichten, the
 * number of valid items for a batch) or looks up n BSNs (POST
 * /v1/ontvangers/_zoek) needs min(n, burst) tokens and then takes n, so a
 * batch larger than the burst is possible but pays for every message by
 * leaving the bucket in debt. rate 0 switches the limit off.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_RATELIMIT_H
#define BERICHTD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* rate: tokens per second (0 = no limit); burst: bucket size (>= 1). */
struct ratelimit *ratelimit_new(int64_t rate, int64_t burst);
void ratelimit_free(struct ratelimit *rl);

/*
 * Takes n tokens from agency's bucket at now_ms. Returns true when allowed;
 * false (nothing taken) with *retry_after_s, the whole seconds until enough
 * tokens are back (at least 1), when not. Always true when rl is off.
 */
bool ratelimit_take(struct ratelimit *rl, int64_t agency, int64_t n, int64_t now_ms,
		    int64_t *retry_after_s);

#endif
