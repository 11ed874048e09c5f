/*
 * test_timefmt.c - specification of common/timefmt: RFC 3339 timestamps to
 * and from epoch milliseconds, and ISO 8601 calendar dates.
 *
 * Expected epoch values were worked out by hand and checked with
 * `date -u -d <timestamp> +%s`:
 *   2026-03-29T01:00:00Z = 1774746000      2024-02-29T12:00:00Z = 1709208000
 *   2000-02-29T00:00:00Z =  951782400      1969-07-20T20:17:40Z = -14182940
 *   1900-01-01T00:00:00Z = -2208988800     9999-12-31T23:59:59Z = 253402300799
 *
 * needs: common/timefmt.c
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "common/timefmt.h"

#define T_2026_03_29_01Z 1774746000000LL

/* Parses s, which must be accepted, and returns the epoch ms. */
static int64_t parse_ok(const char *s)
{
	int64_t ms = 0;
	cr_assert(timefmt_parse_rfc3339(s, &ms), "expected \"%s\" to parse", s);
	return ms;
}

static void assert_rejected(const char *s)
{
	int64_t ms = 0;
	cr_expect_not(timefmt_parse_rfc3339(s, &ms), "expected \"%s\" to be rejected", s);
}

/* ---- RFC 3339 parse: accepted forms ---------------------------------------- */

Test(timefmt, parses_utc_with_z)
{
	cr_expect_eq(parse_ok("2026-03-29T01:00:00Z"), T_2026_03_29_01Z);
}

Test(timefmt, parses_lowercase_t_and_z)
{
	cr_expect_eq(parse_ok("2026-03-29t01:00:00z"), T_2026_03_29_01Z);
	cr_expect_eq(parse_ok("2026-03-29t01:00:00Z"), T_2026_03_29_01Z);
	cr_expect_eq(parse_ok("2026-03-29T01:00:00z"), T_2026_03_29_01Z);
}

Test(timefmt, parses_the_epoch_as_zero)
{
	cr_expect_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
}

Test(timefmt, positive_offset_is_subtracted)
{
	/* 02:00 at +01:00 is 01:00 UTC */
	cr_expect_eq(parse_ok("2026-03-29T02:00:00+01:00"), T_2026_03_29_01Z);
}

Test(timefmt, negative_offset_with_minutes_is_added)
{
	/* 19:30 on the 28th at -05:30 is 01:00 UTC on the 29th */
	cr_expect_eq(parse_ok("2026-03-28T19:30:00-05:30"), T_2026_03_29_01Z);
}

Test(timefmt, offset_crossing_a_year_boundary)
{
	/* 2027-01-01T00:30:00+01:00 = 2026-12-31T23:30:00Z */
	cr_expect_eq(parse_ok("2027-01-01T00:30:00+01:00"), parse_ok("2026-12-31T23:30:00Z"));
}

Test(timefmt, zero_offsets_equal_z)
{
	cr_expect_eq(parse_ok("2026-03-29T01:00:00+00:00"), T_2026_03_29_01Z);
	cr_expect_eq(parse_ok("2026-03-29T01:00:00-00:00"), T_2026_03_29_01Z);
}

Test(timefmt, extreme_valid_offsets)
{
	cr_expect_eq(parse_ok("2026-03-30T00:59:00+23:59"), T_2026_03_29_01Z);
	cr_expect_eq(parse_ok("2026-03-28T01:01:00-23:59"), T_2026_03_29_01Z);
}

Test(timefmt, one_fraction_digit_is_tenths)
{
	cr_expect_eq(parse_ok("2026-03-29T01:00:00.5Z"), T_2026_03_29_01Z + 500);
}

Test(timefmt, two_fraction_digits_are_hundredths)
{
	cr_expect_eq(parse_ok("2026-03-29T01:00:00.25Z"), T_2026_03_29_01Z + 250);
}

Test(timefmt, three_fraction_digits_are_milliseconds)
{
	cr_expect_eq(parse_ok("2026-03-29T01:00:00.007Z"), T_2026_03_29_01Z + 7);
	cr_expect_eq(parse_ok("2026-03-29T01:00:00.999Z"), T_2026_03_29_01Z + 999);
}

Test(timefmt, fraction_beyond_milliseconds_is_truncated)
{
	cr_expect_eq(parse_ok("2026-03-29T01:00:00.123456Z"), T_2026_03_29_01Z + 123);
	cr_expect_eq(parse_ok("2026-03-29T01:00:00.999999999Z"), T_2026_03_29_01Z + 999);
}

Test(timefmt, fraction_with_offset)
{
	cr_expect_eq(parse_ok("2026-03-29T02:00:00.125+01:00"), T_2026_03_29_01Z + 125);
}

Test(timefmt, parses_leap_day_of_a_leap_year)
{
	cr_expect_eq(parse_ok("2024-02-29T12:00:00Z"), 1709208000000LL);
}

Test(timefmt, parses_leap_day_of_a_400_year)
{
	cr_expect_eq(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
}

Test(timefmt, parses_pre_1970_as_negative)
{
	cr_expect_eq(parse_ok("1969-12-31T23:59:59Z"), -1000);
	cr_expect_eq(parse_ok("1969-12-31T23:59:59.999Z"), -1);
	cr_expect_eq(parse_ok("1969-07-20T20:17:40Z"), -14182940000LL);
	cr_expect_eq(parse_ok("1900-01-01T00:00:00Z"), -2208988800000LL);
}

Test(timefmt, parses_last_second_of_year_9999)
{
	cr_expect_eq(parse_ok("9999-12-31T23:59:59.999Z"), 253402300799999LL);
}

Test(timefmt, parses_last_valid_clock_values)
{
	cr_expect_eq(parse_ok("2026-03-29T23:59:59Z"), T_2026_03_29_01Z + (22 * 3600 + 59 * 60 + 59) * 1000LL);
}

/* ---- RFC 3339 parse: rejected forms ----------------------------------------- */

Test(timefmt, rejects_missing_offset)
{
	assert_rejected("2026-03-29T01:00:00");
	assert_rejected("2026-03-29T01:00:00.5");
	assert_rejected("2026-03-29T01:00:00.123456");
}

Test(timefmt, rejects_february_30)
{
	assert_rejected("2026-02-30T00:00:00Z");
}

Test(timefmt, rejects_february_29_of_a_common_year)
{
	assert_rejected("2025-02-29T00:00:00Z");
	assert_rejected("1900-02-29T00:00:00Z");
}

Test(timefmt, rejects_day_31_of_a_30_day_month)
{
	assert_rejected("2026-04-31T00:00:00Z");
}

Test(timefmt, rejects_month_0_and_13)
{
	assert_rejected("2026-00-10T00:00:00Z");
	assert_rejected("2026-13-10T00:00:00Z");
}

Test(timefmt, rejects_hour_24)
{
	assert_rejected("2026-03-29T24:00:00Z");
}

Test(timefmt, rejects_minute_60_and_leap_second)
{
	assert_rejected("2026-03-29T01:60:00Z");
	assert_rejected("2026-12-31T23:59:60Z");
}

Test(timefmt, rejects_trailing_garbage)
{
	assert_rejected("2026-03-29T01:00:00Zx");
	assert_rejected("2026-03-29T01:00:00Z ");
	assert_rejected("2026-03-29T01:00:00ZZ");
	assert_rejected("2026-03-29T01:00:00+01:00x");
	assert_rejected("2026-03-29T01:00:00+01:00:00");
	assert_rejected("2026-03-29T01:00:00.5Zx");
}

Test(timefmt, rejects_empty_and_null)
{
	int64_t ms = 0;
	assert_rejected("");
	cr_expect_not(timefmt_parse_rfc3339(NULL, &ms));
}

Test(timefmt, rejects_a_date_alone)
{
	assert_rejected("2026-03-29");
	assert_rejected("2026-03-29Z");
}

Test(timefmt, rejects_space_as_date_time_separator)
{
	assert_rejected("2026-03-29 01:00:00Z");
}

Test(timefmt, rejects_a_dot_without_fraction_digits)
{
	assert_rejected("2026-03-29T01:00:00.Z");
	assert_rejected("2026-03-29T01:00:00.+01:00");
}

Test(timefmt, rejects_malformed_offsets)
{
	assert_rejected("2026-03-29T01:00:00+0100");
	assert_rejected("2026-03-29T01:00:00+01");
	assert_rejected("2026-03-29T01:00:00+1:00");
	assert_rejected("2026-03-29T01:00:00+24:00");
	assert_rejected("2026-03-29T01:00:00+01:60");
	assert_rejected("2026-03-29T01:00:00 +01:00");
	assert_rejected("2026-03-29T01:00:00UTC");
}

Test(timefmt, rejects_short_fields)
{
	assert_rejected("2026-3-29T01:00:00Z");
	assert_rejected("2026-03-29T1:00:00Z");
	assert_rejected("2026-03-29T01:0:00Z");
	assert_rejected("2026-03-29T01:00:0Z");
}

Test(timefmt, rejects_year_zero)
{
	assert_rejected("0000-01-01T00:00:00Z");
}

/* ---- RFC 3339 format ------------------------------------------------------ */

static void assert_formats(int64_t ms, const char *expected)
{
	char out[TIMEFMT_RFC3339_LEN];
	memset(out, 'x', sizeof(out));
	timefmt_format_rfc3339(ms, out);
	cr_expect_str_eq(out, expected, "format(%lld)", (long long)ms);
}

Test(timefmt, formats_the_epoch)
{
	assert_formats(0, "1970-01-01T00:00:00.000Z");
}

Test(timefmt, formats_milliseconds_and_utc_z)
{
	assert_formats(T_2026_03_29_01Z + 123, "2026-03-29T01:00:00.123Z");
	assert_formats(T_2026_03_29_01Z + 5, "2026-03-29T01:00:00.005Z");
}

Test(timefmt, formats_a_leap_day)
{
	assert_formats(1709208000000LL, "2024-02-29T12:00:00.000Z");
}

Test(timefmt, formats_pre_1970_values)
{
	assert_formats(-1, "1969-12-31T23:59:59.999Z");
	assert_formats(-999, "1969-12-31T23:59:59.001Z");
	assert_formats(-1000, "1969-12-31T23:59:59.000Z");
	assert_formats(-1001, "1969-12-31T23:59:58.999Z");
	assert_formats(-14182940000LL, "1969-07-20T20:17:40.000Z");
	assert_formats(-2208988800000LL, "1900-01-01T00:00:00.000Z");
}

Test(timefmt, formats_last_millisecond_of_year_9999)
{
	assert_formats(253402300799999LL, "9999-12-31T23:59:59.999Z");
}

Test(timefmt, formatted_output_is_24_characters)
{
	char out[TIMEFMT_RFC3339_LEN];
	timefmt_format_rfc3339(T_2026_03_29_01Z, out);
	cr_expect_eq(strlen(out), 24);
}

Test(timefmt, format_then_parse_round_trips)
{
	static const int64_t values[] = {
		0,
		1,
		999,
		1000,
		T_2026_03_29_01Z,
		T_2026_03_29_01Z + 123,
		1709208000000LL,
		951782400000LL,
		253402300799999LL,
		-1,
		-999,
		-1000,
		-1001,
		-14182940000LL + 250,
		-2208988800000LL,
		-62135596800000LL, /* 0001-01-01T00:00:00.000Z */
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char out[TIMEFMT_RFC3339_LEN];
		int64_t back = 0;
		timefmt_format_rfc3339(values[i], out);
		cr_expect(timefmt_parse_rfc3339(out, &back), "parse(\"%s\")", out);
		cr_expect_eq(back, values[i], "%lld -> \"%s\" -> %lld", (long long)values[i], out,
			     (long long)back);
	}
}

Test(timefmt, parse_then_format_normalises_to_utc_milliseconds)
{
	char out[TIMEFMT_RFC3339_LEN];
	timefmt_format_rfc3339(parse_ok("2026-03-28T19:30:00.5-05:30"), out);
	cr_expect_str_eq(out, "2026-03-29T01:00:00.500Z");
}

/* ---- now ------------------------------------------------------------------- */

Test(timefmt, now_is_a_plausible_epoch_ms)
{
	int64_t now = timefmt_now_ms();
	cr_expect_gt(now, 1704067200000LL, "after 2024-01-01");
	cr_expect_lt(now, 4102444800000LL, "before 2100-01-01");
}

/* ---- ISO 8601 dates --------------------------------------------------------- */

Test(timefmt, date_parses_year_month_day)
{
	int y = 0, m = 0, d = 0;
	cr_assert(timefmt_parse_date("2026-03-29", &y, &m, &d));
	cr_expect_eq(y, 2026);
	cr_expect_eq(m, 3);
	cr_expect_eq(d, 29);
}

Test(timefmt, date_accepts_leap_days_of_leap_years)
{
	int y, m, d;
	cr_expect(timefmt_parse_date("2024-02-29", &y, &m, &d));
	cr_expect(timefmt_parse_date("2000-02-29", &y, &m, &d));
}

Test(timefmt, date_rejects_leap_days_of_common_years)
{
	int y, m, d;
	cr_expect_not(timefmt_parse_date("2025-02-29", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("1900-02-29", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2024-02-30", &y, &m, &d));
}

Test(timefmt, date_accepts_last_days_of_months)
{
	int y, m, d;
	cr_expect(timefmt_parse_date("2026-01-31", &y, &m, &d));
	cr_expect(timefmt_parse_date("2026-04-30", &y, &m, &d));
	cr_expect(timefmt_parse_date("2026-12-31", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-04-31", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-12-32", &y, &m, &d));
}

Test(timefmt, date_rejects_month_and_day_zero_or_too_large)
{
	int y, m, d;
	cr_expect_not(timefmt_parse_date("2026-00-10", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-13-10", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-01-00", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("0000-01-01", &y, &m, &d));
}

Test(timefmt, date_rejects_wrong_shape)
{
	int y, m, d;
	cr_expect_not(timefmt_parse_date("", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-3-29", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-03-9", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("26-03-29", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026/03/29", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("20260329", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("abcd-ef-gh", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-03-1x", &y, &m, &d));
}

Test(timefmt, date_rejects_surrounding_text)
{
	int y, m, d;
	cr_expect_not(timefmt_parse_date(" 2026-03-29", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-03-29 ", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("2026-03-29T00:00:00Z", &y, &m, &d));
	cr_expect_not(timefmt_parse_date("+026-03-29", &y, &m, &d));
}

/* --------------------------------------- a date or a time (token --geldig-tot) */

Test(timefmt, date_or_time_tells_a_date)
{
	int y = 0, m = 0, d = 0;
	int64_t ms = -1;
	cr_assert_eq(timefmt_parse_date_or_time("2027-02-28", &y, &m, &d, &ms), TIMEFMT_DATE);
	cr_expect_eq(y, 2027);
	cr_expect_eq(m, 2);
	cr_expect_eq(d, 28);
	cr_expect_eq(ms, -1, "a date sets no time");
}

Test(timefmt, date_or_time_tells_a_time)
{
	int y = 0, m = 0, d = 0;
	int64_t ms = 0;
	cr_assert_eq(timefmt_parse_date_or_time("2026-03-29T03:00:00+02:00", &y, &m, &d, &ms),
		     TIMEFMT_TIME);
	cr_expect_eq(ms, T_2026_03_29_01Z);
	cr_assert_eq(timefmt_parse_date_or_time("2026-03-29T01:00:00Z", &y, &m, &d, &ms),
		     TIMEFMT_TIME);
	cr_expect_eq(ms, T_2026_03_29_01Z);
}

Test(timefmt, date_or_time_rejects_neither)
{
	int y, m, d;
	int64_t ms;
	const char *bad[] = {"",
			     "morgen",
			     "2027-02-29",          /* not a leap year */
			     "2027-13-01",
			     "2027-01-01 ",
			     "2027-01-01T00:00:00", /* a time needs its offset */
			     "2027-01-01 00:00:00Z",
			     "1735689600",
			     "30d"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(timefmt_parse_date_or_time(bad[i], &y, &m, &d, &ms), TIMEFMT_INVALID,
			     "\"%s\" accepted", bad[i]);
}
