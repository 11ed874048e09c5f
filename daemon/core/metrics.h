/*
 * metrics.h - the counters and histograms behind /metrics (issue 15), and
 * the Prometheus text they are written as.
 *
 * A histogram keeps one count per bucket (not cumulative; written
 * cumulatively), its count and its sum, all atomics, so delivery workers
 * and the loop may observe at once. Values are integers in the spec's unit
 * (microseconds, milliseconds, items); the text shows them divided by the
 * spec's scale (seconds). The per-route HTTP table is the loop's only.
 */
#ifndef BERICHTD_METRICS_H
#define BERICHTD_METRICS_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_BUCKETS_MAX 16

struct hist_spec {
	int n;                            /* bounds; one more bucket, +Inf, follows */
	int64_t bounds[HIST_BUCKETS_MAX]; /* upper bounds, ascending, in the unit */
	double scale;                     /* unit per shown unit: 1e6 for us -> s */
};

/* request and ingest durations, in microseconds, shown in seconds */
extern const struct hist_spec HIST_DURATION;
/* due-to-sent lag, in milliseconds, shown in seconds */
extern const struct hist_spec HIST_LAG;
/* batch and group sizes, in items */
extern const struct hist_spec HIST_SIZE;

struct hist {
	atomic_llong bucket[HIST_BUCKETS_MAX + 1];
	atomic_llong count;
	atomic_llong sum;
};

void hist_observe(struct hist *h, const struct hist_spec *spec, int64_t v);

/* Why a notification was put back for a later attempt: retries_total{reason}. */
enum retry_reason {
	RETRY_RELAY_UNREACHABLE, /* no session: connect, greeting or EHLO failed */
	RETRY_NO_REPLY,          /* the session broke or timed out during the mail */
	RETRY_TEMPORARY,         /* a 4xx reply */
	RETRY_SENDER_REFUSED,    /* a 5xx to MAIL FROM: our sender's problem, retried */
	RETRY_RATE_LIMITED,      /* its domain's bucket was empty: back unsent */
	RETRY_LEASE_LAPSED,      /* the lifeline's lease ran out after the claim: back unsent */
	RETRY_INTERNAL,          /* out of memory and the like */
	RETRY_SHUTDOWN,          /* the daemon stopped before its session: back unsent */
	RETRY_REASONS
};
#define RETRY_REASON_LABELS                                                                        \
	{                                                                                          \
		"relay_unreachable", "no_reply", "temporary", "sender_refused", "rate_limited",    \
			"lease_lapsed", "internal", "shutdown"                                     \
	}

/* What became of one mail: mails_total{outcome}. */
enum mail_outcome {
	MAIL_SENT,
	MAIL_BOUNCED,
	MAIL_RETRIED,
	MAIL_DEFERRED,
	MAIL_FAILED,
	MAIL_OUTCOMES
};
#define MAIL_OUTCOME_LABELS                                                                        \
	{                                                                                          \
		"sent", "bounced", "retried", "deferred", "failed"                                 \
	}

/* HTTP status classes of http_requests_total{code} */
enum {
	HTTP_CLASS_1XX,
	HTTP_CLASS_2XX,
	HTTP_CLASS_3XX,
	HTTP_CLASS_4XX,
	HTTP_CLASS_5XX,
	HTTP_CLASSES
};

/* One route of the API listener (pattern + method), or its catch-all. */
struct metrics_route {
	const void *route; /* the struct http_route it counts; NULL: a free slot */
	const char *pattern;
	const char *method;
	long long requests[HTTP_CLASSES];
	struct hist duration;
};

/* routes with their own slot; more share the catch-all (route="other") */
#define METRICS_ROUTES_MAX 96

/*
 * Requests the API listener answered on route (NULL: no route matched),
 * with status, after duration_us. Loop thread only.
 */
struct metrics_http {
	struct metrics_route routes[METRICS_ROUTES_MAX];
	struct metrics_route other; /* no route, or beyond the table */
};
void metrics_http_observe(struct metrics_http *m, const void *route, const char *pattern,
			  const char *method, int status, int64_t duration_us);

/* A growing text buffer for the exposition; on out of memory it stops growing (failed). */
struct mtext {
	char *buf;
	size_t len, cap;
	bool failed;
};
void mtext_printf(struct mtext *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "# HELP name help\n# TYPE name type\n" */
void mtext_family(struct mtext *t, const char *name, const char *type, const char *help);
/* A counter or gauge family with one sample and no labels. */
void mtext_single(struct mtext *t, const char *name, const char *type, const char *help,
		  long long v);
/* The _bucket, _sum and _count samples of h; labels ("a=\"b\"") may be "" or NULL. */
void mtext_hist(struct mtext *t, const char *name, const char *labels, const struct hist *h,
		const struct hist_spec *spec);
/* Every route's requests_total and request_duration_seconds. */
void mtext_http(struct mtext *t, const struct metrics_http *m);
/* process_resident_memory_bytes and process_open_fds, from /proc/self. */
void mtext_process(struct mtext *t);

#endif
