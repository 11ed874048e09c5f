/*
 * app.h - the context passed down from server.c to the services and stores
 * (STYLE.md: "pass a context struct instead of reading globals").
 *
 * Owned by server.c; lives as long as the event loop runs. Everything in it
 * is touched from the event-loop thread only, except the atomics in
 * `metrics`. `cfg` is the loop's current config generation: a SIGHUP
 * (reload.c) points it at a new one; the delivery threads never read it,
 * they have generations of their own (notify/delivery_impl.h).
 */
#ifndef BERICHTD_APP_H
#define BERICHTD_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common/config.h"
#include "core/metrics.h"

struct event_base;
struct http_front;
struct pgpool;
struct queue_loop;
struct auth;
struct ingest;
struct ratelimit;
struct delivery;
struct reconcile;
struct janitor;

/* Why a DSN was refused: the reason labels of berichtd_dsn_refused_total. */
enum dsn_refusal {
	DSN_REFUSED_UNATTRIBUTED, /* names no mail of ours (a Message-ID alone names nothing) */
	DSN_REFUSED_FORGED_TAG,   /* a VERP address or envelope id whose tag does not verify */
	DSN_REFUSED_UNKNOWN,      /* a genuine tag, but no such mail (any more) */
	DSN_REFUSED_TOO_OLD,      /* the mail is older than [bounce] max_age */
	DSN_REFUSED_RECIPIENT,    /* Final-Recipient is not the address the mail went to */
	DSN_REFUSALS
};
#define DSN_REFUSAL_LABELS                                                                         \
	{                                                                                          \
		"unattributed", "forged_tag", "unknown_mail", "too_old", "recipient_mismatch"      \
	}

/* Named counters behind /metrics; atomics because workers bump them too. */
struct metrics {
	atomic_llong http_requests; /* the API listener's, counted on arrival */
	atomic_llong messages_accepted;
	atomic_llong notifications_scheduled;
	atomic_llong notifications_sent; /* rows recorded as sent in PostgreSQL */
	atomic_llong notifications_retried;
	atomic_llong notifications_failed;
	atomic_llong notifications_bounced;
	atomic_llong notifications_cancelled;
	atomic_llong mails_sent; /* mails (one may cover a digest of notifications), recorded */
	atomic_llong mails[MAIL_OUTCOMES];
	atomic_llong retries[RETRY_REASONS]; /* notifications put back, by why */
	/* from the notification's first due time to the relay's acceptance, of
	 * the rows recorded as sent (migration 0018) */
	struct hist lag;
	struct hist ingest_duration; /* a message's arrival at the group commit to its answer */
	struct hist ingest_group;    /* items per group-commit statement */
	struct hist batch_size;      /* items per POST /v1/batches */
	struct metrics_http http;    /* loop thread only */
	atomic_llong dsn_applied;    /* hard-bounce DSNs applied */
	atomic_llong dsn_refused[DSN_REFUSALS];
};

struct app {
	struct config *cfg;
	struct event_base *base;
	struct pgpool *pg;
	struct queue_loop *queue;
	struct http_front *http; /* the API and the ops listener (http.c) */
	struct auth *auth;
	struct ingest *ingest;
	struct ratelimit *ratelimit;
	struct delivery *delivery;
	struct reconcile *reconcile;
	struct janitor *janitor;
	struct metrics metrics;
	bool shutting_down;
};

#endif
