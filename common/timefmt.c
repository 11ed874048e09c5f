/*
 * timefmt.c - see timefmt.h. Hand-written because strptime() accepts too
 * much (and is locale-dependent) for validating input from agencies.
 */
#include "timefmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_S 1000
#define S_PER_MIN 60

int64_t timefmt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / 1000000;
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : dim[m - 1];
}

bool timefmt_parse_date(const char *s, int *year, int *month, int *day)
{
	if (strlen(s) != 10)
		return false;
	if (!digits(s, 4, year) || s[4] != '-' || !digits(s + 5, 2, month) || s[7] != '-' ||
	    !digits(s + 8, 2, day))
		return false;
	return *year >= 1 && *month >= 1 && *month <= 12 && *day >= 1 &&
	       *day <= days_in_month(*year, *month);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's method). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const int64_t yoe = y - era * 400;
	const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

bool timefmt_parse_rfc3339(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, sec, frac_ms = 0;
	char date[11];

	if (!s || strlen(s) < 20)
		return false;
	memcpy(date, s, 10);
	date[10] = '\0';
	if (!timefmt_parse_date(date, &y, &mo, &d))
		return false;
	if ((s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
	    !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return false;
	if (h > 23 || mi > 59 || sec > 59)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		int n = 0;
		while (isdigit((unsigned char)p[n])) {
			if (n < 3)
				frac_ms = frac_ms * 10 + (p[n] - '0');
			n++;
		}
		if (n == 0)
			return false;
		for (int i = n; i < 3; i++)
			frac_ms *= 10;
		p += n;
	}
	int offset_min = 0;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		offset_min = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6) {
		int oh, om;
		if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 ||
		    om > 59)
			return false;
		offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
	} else {
		return false;
	}
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
		       (int64_t)offset_min * S_PER_MIN;
	*ms = secs * MS_PER_S + frac_ms;
	return true;
}

void timefmt_format_rfc3339(int64_t ms, char out[TIMEFMT_RFC3339_LEN])
{
	time_t secs = (time_t)(ms >= 0 ? ms / MS_PER_S : (ms - (MS_PER_S - 1)) / MS_PER_S);
	int rem = (int)(ms - (int64_t)secs * MS_PER_S);
	struct tm tm;

	gmtime_r(&secs, &tm);
	/* years beyond 9999 cannot occur for int64 ms of interest; mask keeps gcc sure */
	snprintf(out, TIMEFMT_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
		 tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, rem % 1000);
}

enum timefmt_kind timefmt_parse_date_or_time(const char *s, int *year, int *month, int *day,
					     int64_t *ms)
{
	if (timefmt_parse_date(s, year, month, day))
		return TIMEFMT_DATE;
	if (timefmt_parse_rfc3339(s, ms))
		return TIMEFMT_TIME;
	return TIMEFMT_INVALID;
}
