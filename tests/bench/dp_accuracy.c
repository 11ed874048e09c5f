/*
 * dp_accuracy.c - the agency view's accuracy at a given epsilon and
 * max_per_citizen (`make bench-dp`; docs/statistics.md): for cells of N
 * counted messages spread evenly over a year, 60 % opened within 3 weeks and
 * 70 % within 6, it releases the full year RELEASES times through the
 * daemon's own code (dp_scale, dp_dlaplace from OpenSSL's CSPRNG,
 * dp_leaf_release) and prints the median and 95th percentile absolute error
 * of the shown 3- and 6-week percentages, in percentage points.
 *
 *   dp_accuracy [epsilon_milli [max_per_citizen [releases]]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double quantile(double *v, int n, double q)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[(int)(q * (n - 1) + 0.5)];
}

int main(int argc, char **argv)
{
	long eps = argc > 1 ? atol(argv[1]) : 1000, m = argc > 2 ? atol(argv[2]) : 3;
	int runs = argc > 3 ? atoi(argv[3]) : 10000;
	static const long long sizes[] = {100, 1000, 2000, 10000, 1000000, 20000000};
	uint64_t t, s;
	struct dp_rng rng = {dp_rng_openssl, NULL};
	double *e3 = malloc(sizeof(double) * (size_t)runs), *e6 = malloc(sizeof(double) * (size_t)runs);
	if (!e3 || !e6)
		return 1;
	dp_scale(eps, m, &t, &s);
	printf("epsilon %.3f, max_per_citizen %ld: discrete Laplace scale %llu/%llu on 44 nodes "
	       "per cell; %d releases of a full year each\n\n",
	       eps / 1000.0, m, (unsigned long long)t, (unsigned long long)s, runs);
	printf("| messages in the cell | 3 weeks: median | 3 weeks: 95th pct | 6 weeks: median | "
	       "6 weeks: 95th pct |\n|---:|---:|---:|---:|---:|\n");
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		long long n = sizes[k];
		struct dp_leaf leaf;
		memset(&leaf, 0, sizeof(leaf));
		long long g3 = 0, g6 = 0;
		for (int j = 1; j <= DP_MONTHS; j++) {
			leaf.n[j] = n / DP_MONTHS + (j <= n % DP_MONTHS);
			leaf.c[0][j] = leaf.n[j] * 6 / 10;
			leaf.c[1][j] = leaf.n[j] * 7 / 10 - leaf.c[0][j];
			g3 += leaf.c[0][j];
			g6 += leaf.c[0][j] + leaf.c[1][j];
		}
		for (int r = 0; r < runs; r++) {
			for (int c = 0; c < DP_COMPONENTS; c++)
				for (int i = 0; i < DP_NODES; i++)
					if (!dp_dlaplace(&rng, t, s, &leaf.noise[c][i]))
						return 1;
			int64_t s3[DP_MONTHS + 1], s6[DP_MONTHS + 1];
			dp_leaf_release(&leaf, DP_MONTHS, s3, s6);
			double d3 = 100.0 * (double)(s3[DP_MONTHS] - g3) / (double)n;
			double d6 = 100.0 * (double)(s6[DP_MONTHS] - g6) / (double)n;
			e3[r] = d3 < 0 ? -d3 : d3;
			e6[r] = d6 < 0 ? -d6 : d6;
		}
		printf("| %lld | %.4f | %.4f | ", n, quantile(e3, runs, 0.5), quantile(e3, runs, 0.95));
		printf("%.4f | %.4f |\n", quantile(e6, runs, 0.5), quantile(e6, runs, 0.95));
	}
	free(e3);
	free(e6);
	return 0;
}
