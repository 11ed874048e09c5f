/*
 * ratelimit.h - token buckets: the one bucket, and the per-agency limiter
 * built on it.
 *
 * struct token_bucket is a plain value with pure functions (time is passed
 * in, no locking): the per-agency limit below and the delivery workers'
 * global and per-domain limits (notify/throttle.c) use the same refill,
 * take and refund. Tokens may go below zero (debt): a take of more than
 * is there, when allowed, is paid back by the refill.
 *
 * The per-agency limiter counts messages and looked-up BSNs, not requests.
 * Each agency has a bucket of `burst` tokens refilled at `rate` tokens per
 * second; a request that carries n messages (1 for POST /v1/berichten, the
 * number of valid items for a batch) or looks up n BSNs (POST
 * /v1/ontvangers/_zoek) needs min(n, burst) tokens and then takes n, so a
 * batch larger than the burst is possible but pays for every message by
 * leaving the bucket in debt. rate 0 switches the limit off.
 *
 * struct ratelimit: loop thread only.
 */
#ifndef BERICHTD_RATELIMIT_H
#define BERICHTD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct token_bucket {
	double tokens;   /* may be negative: debt */
	int64_t last_ms; /* when it was last refilled */
};

/* A full bucket of burst tokens at now_ms. */
void token_bucket_init(struct token_bucket *b, double burst, int64_t now_ms);

/* Adds rate tokens/s for the time since the last refill, at most up to burst. */
void token_bucket_refill(struct token_bucket *b, double rate, double burst, int64_t now_ms);

/* If at least need tokens are there, takes n (n may exceed need: debt) and returns true. */
bool token_bucket_take(struct token_bucket *b, double need, double n);

/* Takes the whole tokens there are, at most want; returns how many (0 if less than one). */
int64_t token_bucket_take_upto(struct token_bucket *b, int64_t want);

/* Gives back n tokens taken but not used (not capped: the next refill caps). */
void token_bucket_refund(struct token_bucket *b, double n);

/* Milliseconds until need tokens are there at rate tokens/s (at least 1). */
int64_t token_bucket_wait_ms(const struct token_bucket *b, double need, double rate);

struct ratelimit;

/* rate: tokens per second (0 = no limit); burst: bucket size (>= 1). */
struct ratelimit *ratelimit_new(int64_t rate, int64_t burst);
void ratelimit_free(struct ratelimit *rl);
/* New rate and burst (SIGHUP); each bucket keeps its tokens, capped by its next refill. */
void ratelimit_set(struct ratelimit *rl, int64_t rate, int64_t burst);

/*
 * Takes n tokens from agency's bucket at now_ms. Returns true when allowed;
 * false (nothing taken) with *retry_after_s, the whole seconds until enough
 * tokens are back (at least 1), when not. Always true when rl is off.
 */
bool ratelimit_take(struct ratelimit *rl, int64_t agency, int64_t n, int64_t now_ms,
		    int64_t *retry_after_s);

#endif
