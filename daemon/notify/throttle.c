/*
 * throttle.c - global and per-domain delivery buckets (see throttle.h).
 *
 * A slot changes hands when another domain hashes to it: the newcomer
 * starts with a full bucket, as it would have on a table of its own.
 */
#include "notify/throttle.h"

#include <ctype.h>
#include <string.h>

#include "common/clock.h"

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

void throttle_init(struct throttle *t, int64_t rate, int64_t domain_rate, int64_t now_ms)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	atomic_init(&t->rate, rate);
	atomic_init(&t->domain_rate, domain_rate);
	/* the global bucket starts empty and fills within a second, as before */
	token_bucket_init(&t->global, 0, now_ms);
}

void throttle_set(struct throttle *t, int64_t rate, int64_t domain_rate)
{
	atomic_store(&t->rate, rate);
	atomic_store(&t->domain_rate, domain_rate);
}

void throttle_destroy(struct throttle *t)
{
	pthread_mutex_destroy(&t->lock);
}

int throttle_take(struct throttle *t, int want, int64_t now_ms, int64_t *wait_ms)
{
	int64_t rate = atomic_load(&t->rate);
	if (rate <= 0)
		return want;
	pthread_mutex_lock(&t->lock);
	token_bucket_refill(&t->global, (double)rate, (double)rate, now_ms);
	int got = (int)token_bucket_take_upto(&t->global, want);
	pthread_mutex_unlock(&t->lock);
	if (got == 0)
		*wait_ms = MS_PER_S / rate + 1;
	return got;
}

void throttle_refund(struct throttle *t, int n)
{
	if (n <= 0 || atomic_load(&t->rate) <= 0)
		return;
	pthread_mutex_lock(&t->lock);
	token_bucket_refund(&t->global, n);
	pthread_mutex_unlock(&t->lock);
}

uint64_t throttle_domain_hash(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');
	uint64_t h = FNV_OFFSET; /* FNV-1a */
	for (const char *p = at ? at + 1 : rcpt; *p; p++) {
		h ^= (uint64_t)tolower((unsigned char)*p);
		h *= FNV_PRIME;
	}
	return h ? h : 1;
}

bool throttle_domain_try(struct throttle *t, const char *rcpt, int64_t now_ms, int64_t *wait_ms)
{
	int64_t domain_rate = atomic_load(&t->domain_rate);
	if (domain_rate <= 0)
		return true;
	double rate = (double)domain_rate;
	uint64_t h = throttle_domain_hash(rcpt);
	pthread_mutex_lock(&t->lock);
	struct throttle_domain *s = &t->domains[h % THROTTLE_DOMAIN_SLOTS];
	if (s->hash != h) {
		s->hash = h;
		token_bucket_init(&s->tb, rate, now_ms);
	}
	token_bucket_refill(&s->tb, rate, rate, now_ms);
	bool ok = token_bucket_take(&s->tb, 1.0, 1.0);
	if (!ok)
		*wait_ms = token_bucket_wait_ms(&s->tb, 1.0, rate);
	pthread_mutex_unlock(&t->lock);
	return ok;
}
