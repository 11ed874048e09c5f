/*
 * Unit tests for quiet hours (common/quiet.c), in Europe/Amsterdam, around
 * both daylight-saving changes.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <time.h>

#include "common/quiet.h"

static void amsterdam(void)
{
	setenv("TZ", "Europe/Amsterdam", 1);
	tzset();
}

#define Q_START (22 * 60)
#define Q_END (7 * 60)

TestSuite(quiet, .init = amsterdam);

Test(quiet, evening_inside_window_ends_next_morning_at_seven_local)
{
	/* 2026-06-10 23:30 CEST = 21:30Z; ends 2026-06-11 07:00 CEST = 05:00Z */
	time_t end;
	cr_assert(quiet_contains(1781127000, Q_START, Q_END, &end));
	cr_assert_eq(end, 1781154000);
}

Test(quiet, early_morning_inside_window_ends_same_morning)
{
	/* 2026-06-11 06:59 CEST = 04:59Z */
	time_t end;
	cr_assert(quiet_contains(1781153940, Q_START, Q_END, &end));
	cr_assert_eq(end, 1781154000);
}

Test(quiet, daytime_is_outside_window)
{
	/* 2026-06-11 07:00 CEST exactly: the end is exclusive */
	cr_assert_not(quiet_contains(1781154000, Q_START, Q_END, NULL));
	/* 12:00 CEST */
	cr_assert_not(quiet_contains(1781172000, Q_START, Q_END, NULL));
}

Test(quiet, window_over_spring_forward_ends_at_seven_summer_time)
{
	/* 2026-03-29 01:00 CET = 00:00Z, clocks jump 02:00->03:00; 07:00 CEST = 05:00Z */
	time_t end;
	cr_assert(quiet_contains(1774742400, Q_START, Q_END, &end));
	cr_assert_eq(end, 1774760400);
}

Test(quiet, window_over_fall_back_ends_at_seven_winter_time)
{
	/* 2026-10-24 23:00 CEST = 21:00Z; 2026-10-25 07:00 CET = 06:00Z */
	time_t end;
	cr_assert(quiet_contains(1792875600, Q_START, Q_END, &end));
	cr_assert_eq(end, 1792908000);
}

Test(quiet, non_wrapping_window)
{
	/* 12:00-13:00 local; 2026-06-11 12:30 CEST = 10:30Z */
	time_t end;
	cr_assert(quiet_contains(1781173800, 12 * 60, 13 * 60, &end));
	cr_assert_eq(end, 1781175600);
	cr_assert_not(quiet_contains(1781175600, 12 * 60, 13 * 60, NULL));
}

Test(quiet, empty_window_is_never_quiet)
{
	cr_assert_not(quiet_contains(1781173800, 600, 600, NULL));
}
