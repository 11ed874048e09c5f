/*
 * throttle.h - the delivery workers' rate limits: one global bucket
 * (delivery.rate_limit mails/s) and one per recipient domain
 * (delivery.domain_rate_limit), both struct token_bucket from
 * core/ratelimit.h with a burst of one second's worth.
 *
 * The functions never block and take the time as an argument; the waiting
 * is the worker's (worker.c). Any thread: a mutex guards the buckets.
 */
#ifndef BERICHTD_THROTTLE_H
#define BERICHTD_THROTTLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/ratelimit.h"

#define THROTTLE_DOMAIN_SLOTS 256

struct throttle_domain {
	uint64_t hash; /* of the domain that last used the slot; 0 = unused */
	struct token_bucket tb;
};

struct throttle {
	pthread_mutex_t lock;
	_Atomic int64_t rate;        /* global, mails/s; <= 0: no limit */
	_Atomic int64_t domain_rate; /* per domain, mails/s; <= 0: no limit */
	struct token_bucket global;
	struct throttle_domain domains[THROTTLE_DOMAIN_SLOTS];
};

void throttle_init(struct throttle *t, int64_t rate, int64_t domain_rate, int64_t now_ms);
void throttle_destroy(struct throttle *t);
/* New rates (SIGHUP); the buckets keep their tokens, capped by the next refill. */
void throttle_set(struct throttle *t, int64_t rate, int64_t domain_rate);

/*
 * Takes up to want global tokens at now_ms and returns how many (0 when the
 * bucket has less than one: *wait_ms says how long to wait). Without a
 * global limit, want.
 */
int throttle_take(struct throttle *t, int want, int64_t now_ms, int64_t *wait_ms);

/* Gives back n global tokens taken but not used. */
void throttle_refund(struct throttle *t, int n);

/*
 * The per-domain bucket: true if a mail to rcpt (an address, or a bare
 * domain) may go now and takes its token; else false with *wait_ms until
 * it may. A domain shares its slot with colliding domains, which can only
 * slow sending down.
 */
bool throttle_domain_try(struct throttle *t, const char *rcpt, int64_t now_ms, int64_t *wait_ms);

/* The slot hash of rcpt's domain (case-insensitive, never 0). */
uint64_t throttle_domain_hash(const char *rcpt);

#endif
