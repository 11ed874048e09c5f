/*
 * test_report.c - specification of daemon/report: rounding of percentages.
 *
 * needs: daemon/report.c (linked into the unit tests by the Makefile)
 */
#include <criterion/criterion.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/stats/report.h"

/* ---- rounding -------------------------------------------------------- */

Test(report, tenths_round_half_away_from_zero)
{
	cr_assert_eq(report_tenths(1, 3), 333);   /* 33.3 */
	cr_assert_eq(report_tenths(2, 3), 667);   /* 66.7 */
	cr_assert_eq(report_tenths(1, 8), 125);   /* 12.5 exactly */
	cr_assert_eq(report_tenths(1, 16), 63);   /* 6.25 -> 6.3 */
	cr_assert_eq(report_tenths(-1, 16), -63); /* -6.25 -> -6.3 */
	cr_assert_eq(report_tenths(5, 5), 1000);
	cr_assert_eq(report_tenths(0, 7), 0);
	cr_assert_eq(report_tenths(3, 0), -1);
}

/* The agency view (differentially private) is specified in test_dp.c. */
