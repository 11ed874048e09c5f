/*
 * quiet.c - see quiet.h.
 */
#include "quiet.h"

#define MIN_PER_HOUR 60

bool quiet_contains(time_t t, int start_min, int end_min, time_t *end_out)
{
	struct tm lt;

	if (start_min == end_min || !localtime_r(&t, &lt))
		return false;
	int now_min = lt.tm_hour * MIN_PER_HOUR + lt.tm_min;
	bool wraps = start_min > end_min;
	bool inside = wraps ? (now_min >= start_min || now_min < end_min)
			    : (now_min >= start_min && now_min < end_min);
	if (!inside)
		return false;
	if (end_out) {
		struct tm e = lt;
		/* the end is later today, or tomorrow when the window wraps and we
		 * are in its evening part */
		if (wraps && now_min >= start_min)
			e.tm_mday += 1;
		e.tm_hour = end_min / MIN_PER_HOUR;
		e.tm_min = end_min % MIN_PER_HOUR;
		e.tm_sec = 0;
		e.tm_isdst = -1; /* let mktime pick the offset valid on that day */
		time_t end = mktime(&e);
		*end_out = end > t ? end : t + 1;
	}
	return true;
}
