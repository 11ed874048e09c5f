/*
 * timefmt.h - RFC 3339 timestamps and ISO 8601 dates as the API uses them.
 * Pure functions, thread-safe.
 */
#ifndef BERICHTD_TIMEFMT_H
#define BERICHTD_TIMEFMT_H

#include <stdbool.h>
#include <stdint.h>

#define TIMEFMT_RFC3339_LEN 32

/* Current wall-clock time in epoch milliseconds. */
int64_t timefmt_now_ms(void);

/*
 * Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" (T or t, Z or z; no
 * leap seconds) into epoch milliseconds. Rejects impossible dates.
 */
bool timefmt_parse_rfc3339(const char *s, int64_t *ms);

/* Formats epoch ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void timefmt_format_rfc3339(int64_t ms, char out[TIMEFMT_RFC3339_LEN]);

/* Parses a full date "YYYY-MM-DD" (a real calendar date). */
bool timefmt_parse_date(const char *s, int *year, int *month, int *day);

/* What timefmt_parse_date_or_time found. */
enum timefmt_kind {
	TIMEFMT_INVALID = 0,
	TIMEFMT_DATE, /* "YYYY-MM-DD": *year, *month, *day set */
	TIMEFMT_TIME, /* an RFC 3339 time: *ms set */
};

/*
 * A calendar date or an RFC 3339 time, as `berichtd token create
 * --geldig-tot` takes it (the caller decides which instant a date means).
 */
enum timefmt_kind timefmt_parse_date_or_time(const char *s, int *year, int *month, int *day,
					     int64_t *ms);

#endif
