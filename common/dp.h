/*
 * dp.h - differential privacy for the agency statistics view (issue 10,
 * docs/statistics.md): exact integer samplers, the binary tree mechanism
 * over the 12 months of a year, and the online post-processing.
 *
 * No floating point anywhere: the samplers are Canonne, Kamath and Steinke
 * 2020 ("The Discrete Gaussian for Differential Privacy"), Algorithm 1
 * (Bernoulli(exp(-gamma)) for rational gamma) and Algorithm 2 (discrete
 * Laplace with rational scale t/s), built on exact Bernoulli(n/d) from
 * uniform integers by rejection sampling on 64-bit draws. The randomness
 * source is injected (struct dp_rng), so unit tests drive the same code the
 * daemon runs: OpenSSL RAND_bytes in production, a keyed HMAC-SHA256 stream
 * from a seed in tests.
 */
#ifndef BERICHTD_DP_H
#define BERICHTD_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the per-citizen sequence number is stored capped at this (migration 0013) */
#define DP_VOLGNUMMER_CAP 16
#define DP_MONTHS 12
#define DP_LEVELS 4 /* dyadic nodes of 1, 2, 4 and 8 months */
/* nodes inside months 1..12: 12 + 6 + 3 + 1 */
#define DP_NODES 22
#define DP_COMPONENTS 2 /* c1: opened within 3 weeks; c2: after 3, within 6 */

/* fills buf with n random bytes; false when the source failed */
struct dp_rng {
	bool (*fill)(void *ctx, unsigned char *buf, size_t n);
	void *ctx;
};

/* OpenSSL RAND_bytes (ctx unused) */
bool dp_rng_openssl(void *ctx, unsigned char *buf, size_t n);

/*
 * Deterministic stream for tests: HMAC-SHA256(key, counter) blocks, the key
 * being SHA-256(seed "\0" label). One stream per label (a noise node).
 */
struct dp_seeded {
	unsigned char key[32];
	uint64_t counter;
	unsigned char block[32];
	size_t used; /* bytes of block consumed; 32 = empty */
};
void dp_seeded_init(struct dp_seeded *s, const char *seed, const char *label);
bool dp_rng_seeded(void *ctx, unsigned char *buf, size_t n);

/* uniform in [0, n), n > 0 */
bool dp_uniform(const struct dp_rng *r, uint64_t n, uint64_t *out);
/* Bernoulli(num/den), 0 <= num <= den, den > 0 */
bool dp_bernoulli(const struct dp_rng *r, uint64_t num, uint64_t den, bool *out);
/* Bernoulli(exp(-num/den)), den > 0 (CKS 2020 Algorithm 1) */
bool dp_bernoulli_exp(const struct dp_rng *r, uint64_t num, uint64_t den, bool *out);
/*
 * Discrete Laplace with scale t/s: P(x) proportional to exp(-|x| s / t)
 * (CKS 2020 Algorithm 2), t, s > 0.
 */
bool dp_dlaplace(const struct dp_rng *r, uint64_t t, uint64_t s, int64_t *out);

/*
 * The mechanism's scale for epsilon (thousandths) and max_per_citizen m:
 * Delta = 2 * DP_LEVELS * m (L1 over every node of every leaf of a year),
 * scale = Delta / epsilon = t / s.
 */
void dp_scale(int64_t epsilon_milli, int64_t m, uint64_t *t, uint64_t *s);

/* node k (0 .. DP_NODES-1) of the tree: level (size 2^level) and index */
struct dp_node {
	int level, index;
};
struct dp_node dp_node_at(int k);
/* first and last month (1-based) of a node */
void dp_node_months(struct dp_node n, int *first, int *last);
/* the node number of (level, index), or -1 when it is not inside 1..12 */
int dp_node_find(int level, int index);
/*
 * The nodes whose sum is the prefix of months 1..j (binary decomposition of
 * j): writes up to DP_LEVELS node numbers into out, returns how many.
 */
int dp_prefix_nodes(int j, int out[DP_LEVELS]);

/*
 * One leaf (berichttype x papierenKopie) of an agency-year, through month
 * `last`: counted messages per month (n), the exact c1/c2 per month, the
 * noise of each node per component. Writes the shown cumulative figures:
 * g3[j] = shown c1 through month j, g6[j] = shown c1 + c2 through month j
 * (index 1..last; [0] = 0), with 0 <= g3 <= g6 <= counted messages through j
 * and every later month only adding (online: month j never uses j+1).
 */
struct dp_leaf {
	int64_t n[DP_MONTHS + 1];
	int64_t c[DP_COMPONENTS][DP_MONTHS + 1];
	int64_t noise[DP_COMPONENTS][DP_NODES];
};
void dp_leaf_release(const struct dp_leaf *leaf, int last, int64_t g3[DP_MONTHS + 1],
		     int64_t g6[DP_MONTHS + 1]);

/* the noisy prefix of component comp through month j (before post-processing) */
int64_t dp_noisy_prefix(const struct dp_leaf *leaf, int comp, int j);

#endif
