/*
 * ratelimit.c - per-agency token buckets (see ratelimit.h).
 *
 * Buckets live in an open-addressing table keyed by agency id; there are a
 * few hundred agencies at most, so the table only ever grows.
 */
#include "core/ratelimit.h"

#include <stdlib.h>

#define TABLE_INITIAL 64
#define MS_PER_S 1000.0

struct bucket {
	int64_t agency; /* 0 = empty slot (agency ids start at 1) */
	double tokens;
	int64_t last_ms;
};

struct ratelimit {
	double rate, burst;
	struct bucket *slots;
	size_t cap, used;
};

struct ratelimit *ratelimit_new(int64_t rate, int64_t burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	rl->rate = (double)rate;
	rl->burst = (double)(burst > 0 ? burst : 1);
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
		b->tokens = rl->burst;
		b->last_ms = now_ms;
		rl->used++;
	}
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * rl->rate / MS_PER_S;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->last_ms = now_ms;
	}
	double need = (double)n < rl->burst ? (double)n : rl->burst;
	if (b->tokens >= need) {
		b->tokens -= (double)n;
		return true;
	}
	int64_t wait = (int64_t)((need - b->tokens) / rl->rate) + 1;
	*retry_after_s = wait > 0 ? wait : 1;
	return false;
}
