/*
 * test_dp.c - specification of common/dp.c: the exact samplers (checked
 * against their exact distributions by chi-square over many draws with a
 * fixed seed), the tree decomposition, the post-processing invariants, and
 * an empirical privacy test of the two attacks through the same
 * mechanism code the daemon uses (dp_scale, dp_dlaplace, dp_leaf_release).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

static struct dp_seeded seeded;
static struct dp_rng rng(const char *label)
{
	dp_seeded_init(&seeded, "test_dp", label);
	return (struct dp_rng){dp_rng_seeded, &seeded};
}

/* chi-square critical value, upper 0.1 % tail, by the Wilson-Hilferty approximation */
static double chi2_crit(int df)
{
	double z = 3.09, k = df;
	return k * pow(1 - 2 / (9 * k) + z * sqrt(2 / (9 * k)), 3);
}

/* ---- samplers -------------------------------------------------------- */

Test(dp, seeded_stream_is_deterministic_per_label)
{
	unsigned char a[40], b[40], c[40];
	struct dp_seeded s1, s2, s3;
	dp_seeded_init(&s1, "seed", "x");
	dp_seeded_init(&s2, "seed", "x");
	dp_seeded_init(&s3, "seed", "y");
	cr_assert(dp_rng_seeded(&s1, a, 7) && dp_rng_seeded(&s1, a + 7, 33));
	cr_assert(dp_rng_seeded(&s2, b, 40));
	cr_assert(dp_rng_seeded(&s3, c, 40));
	cr_assert_eq(memcmp(a, b, 40), 0, "split reads must give the same stream");
	cr_assert_neq(memcmp(a, c, 40), 0);
}

Test(dp, uniform_is_uniform)
{
	struct dp_rng r = rng("uniform");
	enum { N = 7, DRAWS = 140000 };
	long counts[N] = {0};
	for (int i = 0; i < DRAWS; i++) {
		uint64_t u;
		cr_assert(dp_uniform(&r, N, &u));
		cr_assert_lt(u, N);
		counts[u]++;
	}
	double chi = 0, e = (double)DRAWS / N;
	for (int i = 0; i < N; i++)
		chi += (counts[i] - e) * (counts[i] - e) / e;
	cr_assert_lt(chi, chi2_crit(N - 1), "chi2 %.1f", chi);
}

static void check_bernoulli_exp(uint64_t num, uint64_t den)
{
	struct dp_rng r = rng("bexp");
	enum { DRAWS = 200000 };
	long ones = 0;
	for (int i = 0; i < DRAWS; i++) {
		bool b;
		cr_assert(dp_bernoulli_exp(&r, num, den, &b));
		ones += b;
	}
	double p = exp(-(double)num / (double)den);
	double e1 = DRAWS * p, e0 = DRAWS * (1 - p);
	double chi = (ones - e1) * (ones - e1) / e1 + (ones - e1) * (ones - e1) / e0;
	cr_assert_lt(chi, chi2_crit(1), "gamma %llu/%llu: %ld of %d, expected %.0f (chi2 %.1f)",
		     (unsigned long long)num, (unsigned long long)den, ones, DRAWS, e1, chi);
}

Test(dp, bernoulli_exp_below_one)
{
	check_bernoulli_exp(1, 3);
	check_bernoulli_exp(5, 7);
	struct dp_rng r = rng("bexp0");
	for (int i = 0; i < 1000; i++) { /* exp(0) = 1: always */
		bool b;
		cr_assert(dp_bernoulli_exp(&r, 0, 1, &b) && b);
	}
}

Test(dp, bernoulli_exp_above_one)
{
	check_bernoulli_exp(7, 3);
	check_bernoulli_exp(1, 1);
	check_bernoulli_exp(5, 2);
}

/* chi-square of discrete Laplace(t/s) draws against the exact pmf */
static void check_dlaplace(uint64_t t, uint64_t s, int bins)
{
	struct dp_rng r = rng("dlaplace");
	enum { DRAWS = 200000 };
	long *counts = calloc(2 * bins + 3, sizeof(long)); /* [0] < -bins, [2b+2] > bins */
	for (int i = 0; i < DRAWS; i++) {
		int64_t z;
		cr_assert(dp_dlaplace(&r, t, s, &z));
		int k = z < -bins ? 0 : z > bins ? 2 * bins + 2 : (int)z + bins + 1;
		counts[k]++;
	}
	double b = (double)t / (double)s, q = exp(-1 / b);
	double norm = (1 - q) / (1 + q), chi = 0, tail = 0;
	for (int x = -bins; x <= bins; x++) {
		double p = norm * pow(q, abs(x)), e = DRAWS * p;
		long o = counts[x + bins + 1];
		chi += (o - e) * (o - e) / e;
		tail += p;
	}
	double et = DRAWS * (1 - tail) / 2;
	chi += (counts[0] - et) * (counts[0] - et) / et;
	chi += (counts[2 * bins + 2] - et) * (counts[2 * bins + 2] - et) / et;
	free(counts);
	cr_assert_lt(chi, chi2_crit(2 * bins + 2), "scale %llu/%llu: chi2 %.1f (crit %.1f)",
		     (unsigned long long)t, (unsigned long long)s, chi, chi2_crit(2 * bins + 2));
}

Test(dp, discrete_laplace_matches_its_pmf)
{
	check_dlaplace(1, 1, 6);
	check_dlaplace(7, 3, 8);
	check_dlaplace(24, 1, 40); /* the default: Delta 24 (m 3), epsilon 1 */
}

Test(dp, scale_is_delta_over_epsilon)
{
	uint64_t t, s;
	dp_scale(1000, 3, &t, &s); /* epsilon 1, m 3: Delta = 2 * 4 * 3 = 24 */
	cr_assert_eq(t * 1, 24 * s);
	dp_scale(250, 1, &t, &s); /* epsilon 0.25, m 1: 8 / 0.25 = 32 */
	cr_assert_eq(t, 32 * s);
	dp_scale(1500, 5, &t, &s); /* 40 / 1.5 */
	cr_assert_eq(t * 3, 80 * s);
}

/* ---- the tree -------------------------------------------------------- */

Test(dp, every_prefix_is_a_disjoint_union_of_nodes)
{
	int in_nodes[DP_MONTHS + 1] = {0};
	for (int k = 0; k < DP_NODES; k++) {
		int a, b;
		dp_node_months(dp_node_at(k), &a, &b);
		cr_assert(a >= 1 && b <= DP_MONTHS && a <= b);
		cr_assert_eq(dp_node_find(dp_node_at(k).level, dp_node_at(k).index), k);
		for (int m = a; m <= b; m++)
			in_nodes[m]++;
	}
	for (int m = 1; m <= DP_MONTHS; m++)
		cr_assert_leq(in_nodes[m], DP_LEVELS, "month %d in %d nodes", m, in_nodes[m]);
	for (int j = 0; j <= DP_MONTHS; j++) {
		int nodes[DP_LEVELS], covered[DP_MONTHS + 1] = {0};
		int n = dp_prefix_nodes(j, nodes);
		for (int i = 0; i < n; i++) {
			int a, b;
			cr_assert_geq(nodes[i], 0);
			dp_node_months(dp_node_at(nodes[i]), &a, &b);
			for (int m = a; m <= b; m++)
				covered[m]++;
		}
		for (int m = 1; m <= DP_MONTHS; m++)
			cr_assert_eq(covered[m], m <= j ? 1 : 0, "prefix %d month %d", j, m);
	}
}

/* ---- post-processing ------------------------------------------------- */

static void random_leaf(struct dp_leaf *l, unsigned *seed, int noise_scale)
{
	memset(l, 0, sizeof(*l));
	for (int m = 1; m <= DP_MONTHS; m++) {
		int r = rand_r(seed) % 4;
		l->n[m] = r == 0 ? 0 : r == 1 ? rand_r(seed) % 5 : rand_r(seed) % 200;
		l->c[0][m] = l->n[m] ? rand_r(seed) % (l->n[m] + 1) : 0;
		l->c[1][m] = l->n[m] - l->c[0][m] ? rand_r(seed) % (l->n[m] - l->c[0][m] + 1) : 0;
	}
	for (int c = 0; c < DP_COMPONENTS; c++)
		for (int k = 0; k < DP_NODES; k++)
			l->noise[c][k] = rand_r(seed) % (2 * noise_scale + 1) - noise_scale;
}

Test(dp, released_figures_are_consistent_and_never_change_later)
{
	unsigned seed = 10;
	for (int round = 0; round < 5000; round++) {
		struct dp_leaf l;
		random_leaf(&l, &seed, round % 3 == 0 ? 0 : 100);
		int64_t g3[DP_MONTHS + 1], g6[DP_MONTHS + 1], full3[DP_MONTHS + 1],
			full6[DP_MONTHS + 1];
		dp_leaf_release(&l, DP_MONTHS, full3, full6);
		int64_t cum = 0;
		for (int j = 1; j <= DP_MONTHS; j++) {
			cum += l.n[j];
			cr_assert(0 <= full3[j] && full3[j] <= full6[j] && full6[j] <= cum);
			cr_assert(full3[j] >= full3[j - 1] && full6[j] - full3[j] >= full6[j - 1] -
									 full3[j - 1]);
			/* the view as of month j is the prefix of the full year's */
			dp_leaf_release(&l, j, g3, g6);
			cr_assert(g3[j] == full3[j] && g6[j] == full6[j], "round %d month %d",
				  round, j);
		}
		if (round % 3 == 0) { /* no noise: the exact figures */
			int64_t e3 = 0, e6 = 0;
			for (int j = 1; j <= DP_MONTHS; j++) {
				e3 += l.c[0][j];
				e6 += l.c[0][j] + l.c[1][j];
			}
			cr_assert(full3[DP_MONTHS] == e3 && full6[DP_MONTHS] == e6);
		}
	}
}

/* ---- empirical privacy ----------------------------------------------- */

/*
 * One release of a one-leaf year through the daemon's code: noise for every
 * node at the given scale, post-processed; the outcome is the vector of
 * shown (g3, g6) per month, folded into an index of a table.
 */
struct world {
	int64_t n[DP_MONTHS + 1], c1[DP_MONTHS + 1], c2[DP_MONTHS + 1];
};

#define OUTCOMES 4096

/*
 * The simulation's byte source: splitmix64 from a fixed seed, much faster
 * than the HMAC stream (the samplers only need uniform bytes; their
 * exactness is checked above with the daemon's seeded stream).
 */
static bool fast_fill(void *ctx, unsigned char *buf, size_t n)
{
	uint64_t *x = ctx;
	for (size_t i = 0; i < n; i += 8) {
		uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		for (size_t j = 0; j < 8 && i + j < n; j++)
			buf[i + j] = (unsigned char)(z >> (8 * j));
	}
	return true;
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static unsigned outcome(const struct world *w, const struct dp_rng *r, uint64_t t, uint64_t s)
{
	struct dp_leaf l;
	memset(&l, 0, sizeof(l));
	for (int m = 1; m <= DP_MONTHS; m++) {
		l.n[m] = w->n[m];
		l.c[0][m] = w->c1[m];
		l.c[1][m] = w->c2[m];
	}
	/* only the nodes over month 1 can matter (n = 0 in later months clamps
	 * their increments to 0; checked below): noise on those, 0 elsewhere */
	for (int c = 0; c < DP_COMPONENTS; c++)
		for (int level = 0; level < DP_LEVELS; level++)
			if (!dp_dlaplace(r, t, s, &l.noise[c][dp_node_find(level, 0)]))
				cr_assert_fail("sampler failed");
	int64_t g3[DP_MONTHS + 1], g6[DP_MONTHS + 1];
	dp_leaf_release(&l, DP_MONTHS, g3, g6);
	/* the attacks put everything in month 1: later months add nothing
	 * (n = 0 there), so (g3, g6) of month 1 is the whole outcome; checked */
	for (int j = 2; j <= DP_MONTHS; j++)
		cr_assert(g3[j] == g3[1] && g6[j] == g6[1]);
	return (unsigned)(g3[1] * 64 + g6[1]) % OUTCOMES;
}

/*
 * The attacker's best test between world A (target opened) and B (not):
 * the likelihood-ratio region S = {o : P_A(o) > e^eps P_B(o)}, chosen on a
 * first half of the runs and measured on the second (choosing and measuring
 * on the same runs would favour noise). Returns P_A(S) - e^eps P_B(S) and
 * the slack: 5 binomial standard deviations of that difference.
 */
static double advantage(const struct world *a, const struct world *b, uint64_t t, uint64_t s,
			double eps, int runs, double *slack, const char *label)
{
	long *ca = calloc(2 * OUTCOMES, sizeof(long)), *cb = calloc(2 * OUTCOMES, sizeof(long));
	char la[64], lb[64];
	snprintf(la, sizeof(la), "%s-A", label);
	snprintf(lb, sizeof(lb), "%s-B", label);
	uint64_t sa = fnv(la), sb = fnv(lb);
	struct dp_rng ra = {fast_fill, &sa}, rb = {fast_fill, &sb};
	for (int i = 0; i < runs; i++) {
		int half = i < runs / 2 ? 0 : OUTCOMES;
		ca[half + outcome(a, &ra, t, s)]++;
		cb[half + outcome(b, &rb, t, s)]++;
	}
	double e = exp(eps), pa = 0, pb = 0, n = runs - runs / 2;
	for (int o = 0; o < OUTCOMES; o++)
		if (ca[o] > e * cb[o]) {
			pa += ca[OUTCOMES + o] / n;
			pb += cb[OUTCOMES + o] / n;
		}
	free(ca);
	free(cb);
	*slack = 5 * (sqrt(pa * (1 - pa) / n) + e * sqrt(pb * (1 - pb) / n)) + 1.0 / n;
	return pa - e * pb;
}

/* attack 1: nine known recipients (four opened) and the target, one type, one month */
static void attack_known_others(struct world *opened, struct world *not_opened)
{
	memset(opened, 0, sizeof(*opened));
	opened->n[1] = 10;
	opened->c1[1] = 5;
	*not_opened = *opened;
	not_opened->c1[1] = 4;
}

/* attack 2: all ten messages to the target; only m = 3 are counted (all opened, or none) */
static void attack_one_citizen(struct world *opened, struct world *not_opened, int m)
{
	memset(opened, 0, sizeof(*opened));
	opened->n[1] = m;
	opened->c1[1] = m;
	*not_opened = *opened;
	not_opened->c1[1] = 0;
}

#define RUNS 200000
#define EPS_MILLI 1000
#define M 3

Test(dp, attacks_stay_within_epsilon, .timeout = 600)
{
	uint64_t t, s;
	dp_scale(EPS_MILLI, M, &t, &s);
	struct world a, b;
	double slack, adv;

	attack_known_others(&a, &b);
	adv = advantage(&a, &b, t, s, EPS_MILLI / 1000.0, RUNS, &slack, "known");
	cr_assert_leq(adv, slack, "attack 1: P_A(S) - e^eps P_B(S) = %.5f > slack %.5f", adv,
		      slack);
	adv = advantage(&b, &a, t, s, EPS_MILLI / 1000.0, RUNS, &slack, "known-rev");
	cr_assert_leq(adv, slack, "attack 1 reversed: %.5f > slack %.5f", adv, slack);

	attack_one_citizen(&a, &b, M);
	adv = advantage(&a, &b, t, s, EPS_MILLI / 1000.0, RUNS, &slack, "one");
	cr_assert_leq(adv, slack, "attack 2: %.5f > slack %.5f", adv, slack);
	adv = advantage(&b, &a, t, s, EPS_MILLI / 1000.0, RUNS, &slack, "one-rev");
	cr_assert_leq(adv, slack, "attack 2 reversed: %.5f > slack %.5f", adv, slack);
}

/* the same check must catch a mechanism with too little noise */
Test(dp, the_privacy_check_detects_too_little_noise, .timeout = 600)
{
	uint64_t t, s;
	dp_scale(50 * EPS_MILLI, M, &t, &s); /* noise for epsilon 50, checked against 1 */
	struct world a, b;
	double slack, adv;

	attack_known_others(&a, &b);
	adv = advantage(&a, &b, t, s, EPS_MILLI / 1000.0, RUNS, &slack, "weak-known");
	cr_assert_gt(adv, 10 * slack, "attack 1 with weak noise not detected: %.5f, slack %.5f",
		     adv, slack);
	attack_one_citizen(&a, &b, M);
	adv = advantage(&a, &b, t, s, EPS_MILLI / 1000.0, RUNS, &slack, "weak-one");
	cr_assert_gt(adv, 10 * slack, "attack 2 with weak noise not detected: %.5f, slack %.5f",
		     adv, slack);
}
