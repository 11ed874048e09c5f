/*
 * ratelimit.c - the token bucket and per-agency buckets (see ratelimit.h).
 *
 * Buckets live in an open-addressing table keyed by agency id; there are a
 * few hundred agencies at most, so the table only ever grows.
 */
#include "core/ratelimit.h"

#include <stdlib.h>

#include "common/clock.h"

#define TABLE_INITIAL 64

void token_bucket_init(struct token_bucket *b, double burst, int64_t now_ms)
{
	b->tokens = burst;
	b->last_ms = now_ms;
}

void token_bucket_refill(struct token_bucket *b, double rate, double burst, int64_t now_ms)
{
	if (now_ms <= b->last_ms)
		return;
	b->tokens += (double)(now_ms - b->last_ms) * rate / MS_PER_S;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ms = now_ms;
}

bool token_bucket_take(struct token_bucket *b, double need, double n)
{
	if (b->tokens < need)
		return false;
	b->tokens -= n;
	return true;
}

int64_t token_bucket_take_upto(struct token_bucket *b, int64_t want)
{
	int64_t got = b->tokens >= 1.0 ? (int64_t)b->tokens : 0;
	if (got > want)
		got = want;
	b->tokens -= (double)got;
	return got;
}

void token_bucket_refund(struct token_bucket *b, double n)
{
	b->tokens += n;
}

int64_t token_bucket_wait_ms(const struct token_bucket *b, double need, double rate)
{
	if (b->tokens >= need || rate <= 0)
		return 1;
	return (int64_t)((need - b->tokens) * MS_PER_S / rate) + 1;
}

struct bucket {
	int64_t agency; /* 0 = empty slot (agency ids start at 1) */
	struct token_bucket tb;
};

struct ratelimit {
	double rate, burst;
	struct bucket *slots;
	size_t cap, used;
};

void ratelimit_set(struct ratelimit *rl, int64_t rate, int64_t burst)
{
	rl->rate = (double)rate;
	rl->burst = (double)(burst > 0 ? burst : 1);
}

struct ratelimit *ratelimit_new(int64_t rate, int64_t burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	ratelimit_set(rl, rate, burst);
	rl->cap = TABLE_INITIAL;
	rl->slots = calloc(rl->cap, sizeof(*rl->slots));
	if (!rl->slots) {
		free(rl);
		return NULL;
	}
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->slots);
	free(rl);
}

static struct bucket *slot_for(struct bucket *slots, size_t cap, int64_t agency)
{
	size_t i = (size_t)((uint64_t)agency * 0x9E3779B97F4A7C15ULL) & (cap - 1);
	while (slots[i].agency && slots[i].agency != agency)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static bool grow(struct ratelimit *rl)
{
	size_t cap = rl->cap * 2;
	struct bucket *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return false;
	for (size_t i = 0; i < rl->cap; i++)
		if (rl->slots[i].agency)
			*slot_for(slots, cap, rl->slots[i].agency) = rl->slots[i];
	free(rl->slots);
	rl->slots = slots;
	rl->cap = cap;
	return true;
}

bool ratelimit_take(struct ratelimit *rl, int64_t agency, int64_t n, int64_t now_ms,
		    int64_t *retry_after_s)
{
	if (!rl || rl->rate <= 0)
		return true;
	if (rl->used * 2 >= rl->cap && !grow(rl))
		return true; /* out of memory: do not refuse service because of it */
	struct bucket *b = slot_for(rl->slots, rl->cap, agency);
	if (!b->agency) {
		b->agency = agency;
		token_bucket_init(&b->tb, rl->burst, now_ms);
		rl->used++;
	}
	token_bucket_refill(&b->tb, rl->rate, rl->burst, now_ms);
	double need = (double)n < rl->burst ? (double)n : rl->burst;
	if (token_bucket_take(&b->tb, need, (double)n))
		return true;
	/* whole seconds, rounded up past the instant the tokens are back */
	int64_t wait = (int64_t)((need - b->tb.tokens) / rl->rate) + 1;
	*retry_after_s = wait > 0 ? wait : 1;
	return false;
}
