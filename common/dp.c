/*
 * dp.c - exact samplers, the tree mechanism and post-processing (dp.h).
 */
#include "dp.h"

#include <string.h>

#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/evp.h>

#define BLOCK 32
#define MILLI 1000

bool dp_rng_openssl(void *ctx, unsigned char *buf, size_t n)
{
	(void)ctx;
	return n <= INT32_MAX && RAND_bytes(buf, (int)n) == 1;
}

void dp_seeded_init(struct dp_seeded *s, const char *seed, const char *label)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = sizeof(s->key);
	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(c, seed, strlen(seed)) || !EVP_DigestUpdate(c, "", 1) ||
	    !EVP_DigestUpdate(c, label, strlen(label)) || !EVP_DigestFinal_ex(c, s->key, &len))
		memset(s->key, 0, sizeof(s->key)); /* never in practice; still deterministic */
	EVP_MD_CTX_free(c);
	s->counter = 0;
	s->used = BLOCK;
}

bool dp_rng_seeded(void *ctx, unsigned char *buf, size_t n)
{
	struct dp_seeded *s = ctx;
	while (n > 0) {
		if (s->used == BLOCK) {
			unsigned char ctr[8];
			unsigned int len = BLOCK;
			for (int i = 0; i < 8; i++)
				ctr[i] = (unsigned char)(s->counter >> (56 - 8 * i));
			s->counter++;
			if (!HMAC(EVP_sha256(), s->key, sizeof(s->key), ctr, sizeof(ctr), s->block,
				  &len))
				return false;
			s->used = 0;
		}
		size_t take = BLOCK - s->used < n ? BLOCK - s->used : n;
		memcpy(buf, s->block + s->used, take);
		s->used += take;
		buf += take;
		n -= take;
	}
	return true;
}

bool dp_uniform(const struct dp_rng *r, uint64_t n, uint64_t *out)
{
	if (n == 0)
		return false;
	/* 2^64 mod n: the draws below it are rejected, the rest is a multiple of n */
	uint64_t threshold = (0 - n) % n;
	for (;;) {
		unsigned char b[8];
		if (!r->fill(r->ctx, b, sizeof(b)))
			return false;
		uint64_t x = 0;
		for (int i = 0; i < 8; i++)
			x = x << 8 | b[i];
		if (x >= threshold) {
			*out = x % n;
			return true;
		}
	}
}

bool dp_bernoulli(const struct dp_rng *r, uint64_t num, uint64_t den, bool *out)
{
	uint64_t u;
	if (den == 0 || num > den || !dp_uniform(r, den, &u))
		return false;
	*out = u < num;
	return true;
}

/* Bernoulli(exp(-num/den)) for num <= den: K odd, K the first failure of Bernoulli(gamma/K) */
static bool bernoulli_exp_le1(const struct dp_rng *r, uint64_t num, uint64_t den, bool *out)
{
	uint64_t k = 1;
	for (;;) {
		bool a;
		if (den > UINT64_MAX / k || !dp_bernoulli(r, num, den * k, &a))
			return false;
		if (!a)
			break;
		k++;
	}
	*out = k % 2 == 1;
	return true;
}

bool dp_bernoulli_exp(const struct dp_rng *r, uint64_t num, uint64_t den, bool *out)
{
	if (den == 0)
		return false;
	for (uint64_t i = 0; i < num / den; i++) {
		bool b;
		if (!bernoulli_exp_le1(r, 1, 1, &b))
			return false;
		if (!b) {
			*out = false;
			return true;
		}
	}
	return bernoulli_exp_le1(r, num % den, den, out);
}

bool dp_dlaplace(const struct dp_rng *r, uint64_t t, uint64_t s, int64_t *out)
{
	if (t == 0 || s == 0)
		return false;
	for (;;) {
		uint64_t u, v = 0;
		bool d, a, b;
		if (!dp_uniform(r, t, &u) || !dp_bernoulli_exp(r, u, t, &d))
			return false;
		if (!d)
			continue;
		for (;;) {
			if (!dp_bernoulli_exp(r, 1, 1, &a))
				return false;
			if (!a)
				break;
			v++;
		}
		uint64_t x = u + t * v;
		uint64_t y = x / s;
		if (!dp_bernoulli(r, 1, 2, &b))
			return false;
		if (b && y == 0)
			continue;
		*out = b ? -(int64_t)y : (int64_t)y;
		return true;
	}
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

void dp_scale(int64_t epsilon_milli, int64_t m, uint64_t *t, uint64_t *s)
{
	uint64_t delta = 2 * DP_LEVELS * (uint64_t)m;
	uint64_t tt = delta * MILLI, ss = (uint64_t)epsilon_milli;
	uint64_t g = gcd(tt, ss);
	*t = tt / g;
	*s = ss / g;
}

static const int level_offset[DP_LEVELS] = {0, 12, 18, 21};

static int level_count(int level)
{
	return DP_MONTHS >> level;
}

struct dp_node dp_node_at(int k)
{
	struct dp_node n = {0, 0};
	for (int l = DP_LEVELS - 1; l >= 0; l--)
		if (k >= level_offset[l]) {
			n.level = l;
			n.index = k - level_offset[l];
			break;
		}
	return n;
}

void dp_node_months(struct dp_node n, int *first, int *last)
{
	*first = n.index * (1 << n.level) + 1;
	*last = (n.index + 1) * (1 << n.level);
}

int dp_node_find(int level, int index)
{
	if (level < 0 || level >= DP_LEVELS || index < 0 || index >= level_count(level))
		return -1;
	return level_offset[level] + index;
}

int dp_prefix_nodes(int j, int out[DP_LEVELS])
{
	int pos = 0, n = 0;
	for (int l = DP_LEVELS - 1; l >= 0; l--) {
		int size = 1 << l;
		if (j - pos >= size) {
			out[n++] = dp_node_find(l, pos / size);
			pos += size;
		}
	}
	return n;
}

int64_t dp_noisy_prefix(const struct dp_leaf *leaf, int comp, int j)
{
	int nodes[DP_LEVELS];
	int k = dp_prefix_nodes(j, nodes);
	int64_t sum = 0;
	for (int i = 0; i < k; i++) {
		int first, last;
		dp_node_months(dp_node_at(nodes[i]), &first, &last);
		for (int m = first; m <= last; m++)
			sum += leaf->c[comp][m];
		sum += leaf->noise[comp][nodes[i]];
	}
	return sum;
}

static int64_t clamp(int64_t x, int64_t lo, int64_t hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

void dp_leaf_release(const struct dp_leaf *leaf, int last, int64_t g3[DP_MONTHS + 1],
		     int64_t g6[DP_MONTHS + 1])
{
	int64_t s1 = 0, s2 = 0;
	g3[0] = g6[0] = 0;
	for (int j = 1; j <= DP_MONTHS; j++) {
		if (j <= last) {
			int64_t inc1 = clamp(dp_noisy_prefix(leaf, 0, j) - s1, 0, leaf->n[j]);
			int64_t inc2 =
				clamp(dp_noisy_prefix(leaf, 1, j) - s2, 0, leaf->n[j] - inc1);
			s1 += inc1;
			s2 += inc2;
		}
		g3[j] = s1;
		g6[j] = s1 + s2;
	}
}
