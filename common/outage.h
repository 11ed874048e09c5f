/*
 * outage.h - one log line when a service becomes unreachable, one when it
 * is back, and at most one reminder a minute in between, however many
 * attempts fail meanwhile (issue 15: a 30 s SMTP outage wrote 4,699
 * lines, one per notification).
 *
 *   level=warn msg="SMTP relay unreachable" service=smtp reason="Connection refused"
 *   level=warn msg="SMTP relay still unreachable" service=smtp reason=... down_ms=60012 failures=12 deferred=2400
 *   level=info msg="SMTP relay reachable again" service=smtp down_ms=10234 failures=3 deferred=300 reason=...
 *
 * deferred counts what waits because of it (notifications put back for a
 * retry), failures the attempts that failed. Shared by threads: a mutex.
 */
#ifndef BERICHTD_OUTAGE_H
#define BERICHTD_OUTAGE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define OUTAGE_REASON_MAX 160
#define OUTAGE_REMIND_MS 60000

struct outage {
	pthread_mutex_t lock;
	const char *service; /* service=, e.g. "smtp" */
	const char *name;    /* the start of msg=, e.g. "SMTP relay" */
	bool down;
	int64_t since_ms, noted_ms; /* clock_mono_ms of the first failure, of the last line */
	long long failures, deferred;
	char reason[OUTAGE_REASON_MAX]; /* the latest failure's */
};

/* service and name are kept (string constants). */
void outage_init(struct outage *o, const char *service, const char *name);
void outage_destroy(struct outage *o);

/*
 * An attempt failed for reason (the real one: "Connection refused",
 * "Connection timed out", the relay's "421 ..."); deferred things wait.
 * Logs the first failure after a success, and a reminder when the last
 * line is OUTAGE_REMIND_MS old.
 */
void outage_fail(struct outage *o, const char *reason, long long deferred, int64_t now_ms);

/* An attempt succeeded: logs the summary if it was down. */
void outage_ok(struct outage *o, int64_t now_ms);

/* Adds to what waits, without a failure of its own (e.g. rows put back later). */
void outage_defer(struct outage *o, long long deferred);

bool outage_is_down(struct outage *o);

#endif
