/*
 * quiet.h - quiet hours: no mail is sent in a local-time window such as
 * 22:00-07:00 (DESIGN.md section 5). Local time is the process time zone,
 * which the daemon sets from [notify] timezone at start-up (TZ + tzset),
 * before any thread runs. Thread-safe after that (localtime_r, mktime).
 */
#ifndef BERICHTD_QUIET_H
#define BERICHTD_QUIET_H

#include <stdbool.h>
#include <time.h>

/*
 * True when the instant t falls in the window [start_min, end_min) of local
 * minutes after midnight (the window may wrap past midnight). *end_out then
 * gets the instant the window ends: the next local end_min, correct across
 * daylight-saving changes. A local end time that does not exist on a DST
 * spring-forward day (e.g. 02:30) is taken as the first instant after it.
 */
bool quiet_contains(time_t t, int start_min, int end_min, time_t *end_out);

#endif
