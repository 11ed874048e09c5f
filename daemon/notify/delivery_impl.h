/*
 * delivery_impl.h - what the files of the delivery workers share; internal
 * to daemon/notify/ (the public header is delivery.h).
 *
 *   delivery.c  start/stop: templates, sender address, threads
 *   worker.c    the loop of one thread: take, claim, render+send, record, ack
 *   conn.c      a worker's blocking PostgreSQL/Redis connections and statements
 *   lifeline.c  the instance's id and advisory lock, and the lease the workers
 *               send under (docs/architecture.md "Orphaned claims")
 *   claim.c     CLAIM_SQL: due ids -> claimed rows (or cancelled)
 *   render.c    claimed rows -> mails (pure)
 *   throttle.c  the global and per-domain buckets (pure)
 *   retry.c     the retry delay policy (pure)
 *   record.c    one short handler per outcome of a send, and the record
 *               of a batch's outcome that retries until PostgreSQL has it
 */
#ifndef BERICHTD_DELIVERY_IMPL_H
#define BERICHTD_DELIVERY_IMPL_H

#include <libpq-fe.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/mailref.h"
#include "common/outage.h"
#include "common/template.h"
#include "core/app.h"
#include "core/pgpool.h" /* struct pgpool_stmt only: workers use blocking libpq */
#include "core/queue.h"
#include "notify/throttle.h"

#define ADDR_MAX 320
#define AGENCY_MAX 256
#define SENDERS_MAX 1024
#define CODE_MAX 16
#define REASON_MAX 160
#define PERSON_MAX 404      /* a weergavenaam: 100 characters of UTF-8 */
#define LOST_CLAIMS_MAX 256 /* more wait for the visibility timeout */

/* Mail kinds and languages, indexes into the template table. */
enum mail_kind {
	MAIL_NEW,
	MAIL_DIGEST,
	MAIL_REPEAT,
	MAIL_VERIFY,
	MAIL_REP_NEW,    /* to a representative: new messages of the people they act for */
	MAIL_REP_REPEAT, /* to a representative: a reminder */
	MAIL_KINDS
};
enum mail_lang { LANG_NL, LANG_EN, LANGS };

/*
 * What the workers read of the config, one generation per load (start, and
 * each SIGHUP: delivery_reload). A worker loads the current one where it
 * needs it; the rest of a generation never changes, and an older one is
 * kept until delivery_stop, since a worker may still hold it.
 */
struct delivery_gen {
	const struct config *cfg; /* owned by server.c, lives as long as d */
	struct template tmpl[MAIL_KINDS][LANGS];
	bool quiet_enabled;
	int quiet_start, quiet_end;
	struct delivery_gen *older;
};

struct delivery {
	struct app *app;
	_Atomic(struct delivery_gen *) gen;
	char from_name[ADDR_MAX];
	char from_addr[ADDR_MAX];
	pthread_t *threads;
	/* per worker: clock_mono_ms() of its last sign of progress (the
	 * watchdog's view, delivery_stalled()); written by the worker only */
	atomic_llong *beats;
	int nthreads;
	atomic_int running; /* worker threads that have not returned yet */
	atomic_bool stop;
	pthread_mutex_t lock; /* guards the condvar */
	pthread_cond_t wake;
	struct throttle throttle;
	SSL_CTX *smtp_tls; /* every session's TLS context; NULL with smtp.starttls = off */
	/* the lifeline (lifeline.c): written by its thread, read by the workers */
	pthread_t lifeline;
	bool lifeline_running;
	atomic_bool lifeline_stop;      /* set after the workers are joined */
	atomic_int instance_id;         /* 0 until registered */
	atomic_uint epoch;              /* +1 each time the lock is (re)taken */
	_Atomic int64_t lease_until_ms; /* monotonic; 0 = no lease */
	/* claim tokens (claim.c, migration 0019): the last one used, and the
	 * claims whose result no worker saw, until the reconciler returns them */
	atomic_llong claim_seq;
	pthread_mutex_t lost_lock;
	int64_t lost[LOST_CLAIMS_MAX];
	int nlost;
	/* one line per outage, not per mail or per worker (common/outage.h) */
	struct outage relay, pg, redis;
	/* the relay's recent pace, microseconds per mail of a session (0 until
	 * the first session): how many mails one session may carry (worker.c) */
	atomic_llong mail_us;
};

struct worker {
	struct delivery *d;
	int index;
	PGconn *pg;
	unsigned prepared; /* bit per WS_*: prepared on this pg connection */
	redisContext *rc;
	int64_t last_requeue_ms;
};

/* One claimed notification row. */
struct claimed {
	int64_t id;
	int64_t lane; /* agency id; 0 for verification mails */
	char kind[8];
	char account[40];
	enum mail_lang lang;
	char agency[AGENCY_MAX];
	char code[CODE_MAX];
	int attempts;
	int64_t created_ms;
	int64_t due_ms;
	/* the mail this row belongs to (the same for every row of it) */
	int64_t mail_id;
	char ref[MAILREF_REF_LEN];
	char rcpt[ADDR_MAX];     /* the address the mail was built for */
	int64_t mail_created_ms; /* its Date header */
	/* for a representative: the representation (0: the holder's own row) and
	 * how it names the represented person (weergavenaam, never a BSN) */
	int64_t rep_id;
	char person[PERSON_MAX];
};

/* One mail: the run of claimed rows with the same mail id. */
struct group {
	int first, count; /* indexes into the claimed array */
};

/* What became of one row, to be recorded. */
struct row_outcome {
	int64_t id;
	int64_t lane;
	const char *state; /* "scheduled" (retry, or deferred unsent) or "failed" */
	int64_t due_ms;
	bool unsent; /* deferred before sending: the attempt does not count */
	char reason[REASON_MAX];
};

/* A batch's outcome, kept until PostgreSQL has it; room for every claimed row. */
struct outcome {
	int64_t *sent;        /* rows of mails the relay accepted */
	int64_t *sent_lag_ms; /* for each, its first due time to the relay's acceptance */
	int nsent;
	int nmails_sent;  /* the mails of those rows */
	int64_t *bounced; /* mails the relay refused for good (5xx) */
	char (*bounce_reason)[REASON_MAX];
	int nbounced;
	struct row_outcome *rows;
	int nrows;
	bool relay_down; /* the relay was not reached: its retries are the outage's lines */
	/* progress, so that a retry does not run a step twice */
	bool sent_done;
	int bounced_done, rows_done;
};

/* The current generation and its config; any thread (app->cfg is the loop's). */
static inline const struct delivery_gen *delivery_gen_now(struct delivery *d)
{
	return atomic_load(&d->gen);
}
static inline const struct config *delivery_cfg(struct delivery *d)
{
	return atomic_load(&d->gen)->cfg;
}

/* worker.c */
void *worker_main(void *arg);
/* Sleeps up to ms, waking at once when the daemon stops. */
/* The worker shows the watchdog it is making progress (see delivery_stalled). */
void worker_beat(struct worker *w);
void worker_pause_ms(struct delivery *d, int64_t ms);
/* Sleeps up to ms on d's condition variable, waking at once when *stop is set. */
void delivery_wait_ms(struct delivery *d, int64_t ms, atomic_bool *stop);

/* lifeline.c */
bool lifeline_start(struct delivery *d);
/* After the workers are joined: ends the thread, its session and so its lock. */
void lifeline_stop(struct delivery *d);
/* The lease's epoch while it holds (mails may go out), 0 while it does not. */
unsigned lifeline_epoch(struct delivery *d);

/* conn.c: the statements prepared once per connection (bits of worker.prepared) */
enum { WS_CLAIM, WS_SENT, WS_ROW };
/* A new blocking connection to [postgres] conninfo, with keepalives; name is its application_name. */
PGconn *conn_pg_open(const struct config *cfg, const char *name);
/* (Re)connects what is not connected; false if PostgreSQL or Redis is not there. */
bool conn_connect(struct worker *w);
/* Runs sql (st NULL) or the prepared st, once more on a new connection if it had gone. */
PGresult *conn_exec(struct worker *w, const char *sql, int n, const char *const *params);
PGresult *conn_exec_stmt(struct worker *w, int which, const struct pgpool_stmt *st,
			 const char *const *params);
/* The same without the second run; with conn_reconnected for callers that retry themselves. */
PGresult *conn_exec_stmt_once(struct worker *w, int which, const struct pgpool_stmt *st,
			      const char *const *params);
/* The connection had gone and is back; false if it had not gone or cannot be had. */
bool conn_reconnected(struct worker *w);
void conn_exec_discard(struct worker *w, const char *sql, int n, const char *const *params);
/* ids as a PostgreSQL array literal "{1,2,3}"; caller frees; NULL when out of memory. */
char *conn_id_array(const int64_t *ids, int n);

/* claim.c: claims ids; *out (caller frees) gets the eligible rows. Their number, -1 on error. */
int claim_rows(struct worker *w, const int64_t *ids, int n, bool quiet, struct claimed **out);

/* record.c: one handler per outcome of a mail (its n rows at c) */
void outcome_sent(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		  int64_t now_ms);
void outcome_permfail(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      const char *reason);
void outcome_tempfail(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      const char *reason, enum retry_reason why, int64_t now_ms);
void outcome_deferred(struct worker *w, struct outcome *o, const struct claimed *c, int n,
		      int64_t due_ms, enum retry_reason why);
void outcome_unrenderable(struct worker *w, struct outcome *o, const struct claimed *c, int n);
/* Room for n rows; false when out of memory (then outcome_free). */
bool outcome_alloc(struct outcome *o, int n);
void outcome_free(struct outcome *o);
/* Records o until PostgreSQL has it (see record.c); false if given up at stop. */
bool record_outcome(struct worker *w, struct outcome *o);
/* Puts the rows that go back to 'scheduled' into the Redis schedule again. */
void record_queue_retries(struct worker *w, const struct outcome *o);

#endif
