/*
 * worker.c - the loop of one delivery thread (see delivery.h and
 * delivery_impl.h).
 *
 * Exactly-once where it can be had, at-least-once where it cannot: a row
 * is claimed in PostgreSQL (scheduled -> sending, claim.c) before its mail
 * is sent, so two workers (or two daemons) never send one notification.
 * One batch is: take ids from Redis, claim their rows, render and send the
 * mails in one SMTP session, hand each mail's result to its outcome
 * handler (record.c), record, ack.
 *
 * The rate limits are applied before the claim: a worker takes from Redis
 * only as many ids as the global bucket has tokens (a mail takes at least
 * one id), and a mail whose recipient domain has no token left is put back
 * unsent, so no claimed row waits for a token.
 *
 * A worker takes and sends only under the lifeline's lease (lifeline.c): a
 * claim is sent only if the lease still holds, in the epoch the claim was
 * made in, when its SMTP session starts; otherwise its rows go back unsent.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/quiet.h"
#include "common/timefmt.h"
#include "notify/delivery_impl.h"
#include "notify/render.h"
#include "notify/smtp.h"

#define REQUEUE_EVERY_MS 1000
#define RECONNECT_PAUSE_MS 1000
#define NO_LEASE_PAUSE_MS 200
/* the mails of a session while the relay's pace is not known yet */
#define FIRST_SESSION_MAILS 4

/* The mails of one batch that go to the relay, and the group each came from. */
struct batch {
	struct smtp_mail *mails;
	char (*envfrom)[MAILREF_NAME_MAX];
	char (*envid)[MAILREF_NAME_MAX];
	int *gidx;
	int n;
	int tried; /* the first tried mails went to the relay; the rest go back unsent */
};

void worker_beat(struct worker *w)
{
	atomic_store(&w->d->beats[w->index], clock_mono_ms());
}

void worker_pause_ms(struct delivery *d, int64_t ms)
{
	delivery_wait_ms(d, ms, &d->stop);
}

void delivery_wait_ms(struct delivery *d, int64_t ms, atomic_bool *stop)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / MS_PER_S;
	ts.tv_nsec += (ms % MS_PER_S) * NS_PER_MS;
	if (ts.tv_nsec >= (long)MS_PER_S * NS_PER_MS) {
		ts.tv_sec++;
		ts.tv_nsec -= (long)MS_PER_S * NS_PER_MS;
	}
	pthread_mutex_lock(&d->lock);
	if (!atomic_load(stop))
		pthread_cond_timedwait(&d->wake, &d->lock, &ts);
	pthread_mutex_unlock(&d->lock);
}

/*
 * The global bucket: blocks until it has a token (or the daemon stops),
 * then takes up to want tokens and returns how many (0 when stopping).
 * Tokens not used go back with throttle_refund.
 */
static int rate_reserve(struct delivery *d, int want)
{
	for (;;) {
		int64_t wait = 0;
		int got = throttle_take(&d->throttle, want, clock_mono_ms(), &wait);
		if (got > 0)
			return got;
		if (atomic_load(&d->stop))
			return 0;
		worker_pause_ms(d, wait);
	}
}

/*
 * Quiet hours: nothing but verification mails is claimed. The taken ids go
 * back to Redis due at the window's end, and their rows are moved there too
 * so the reconciler does not put them back early.
 */
static void defer_quiet(struct worker *w, const struct queue_item *items, int n, int64_t end_ms)
{
	const struct config *cfg = delivery_cfg(w->d);
	int64_t *ids = calloc((size_t)n + 1, sizeof(*ids));
	char due[TIMEFMT_RFC3339_LEN];
	if (!ids)
		return;
	for (int i = 0; i < n; i++) {
		ids[i] = items[i].id;
		queue_sync_retry(w->rc, cfg->redis_key_prefix, &items[i], end_ms);
	}
	char *arr = conn_id_array(ids, n);
	timefmt_format_rfc3339(end_ms, due);
	const char *params[] = {arr, due};
	if (arr)
		conn_exec_discard(
			w,
			/* not late before it may go: the lag counts from the window's end */
			"UPDATE notifications SET due_at = greatest(due_at, $2::timestamptz), "
			"first_due_at = greatest(coalesce(first_due_at, due_at), $2::timestamptz) "
			"WHERE id = ANY($1::bigint[]) AND state = 'scheduled' AND kind <> 'verify'",
			2, params);
	free(arr);
	free(ids);
}

/* The claimed rows that are not verification mails go back to the end of quiet hours. */
static void defer_unclaimed(struct worker *w, const struct queue_item *items, int n,
			    const struct claimed *cl, int nc, int64_t end_ms)
{
	struct queue_item *later = calloc((size_t)n, sizeof(*later));
	int nl = 0;
	for (int i = 0; later && i < n; i++) {
		bool claimed = false;
		for (int j = 0; j < nc && !claimed; j++)
			claimed = cl[j].id == items[i].id;
		if (!claimed)
			later[nl++] = items[i];
	}
	if (nl)
		defer_quiet(w, later, nl, end_ms);
	free(later);
}

static bool batch_alloc(struct batch *b, int ng)
{
	memset(b, 0, sizeof(*b));
	b->mails = calloc((size_t)ng + 1, sizeof(*b->mails));
	b->envfrom = calloc((size_t)ng + 1, sizeof(*b->envfrom));
	b->envid = calloc((size_t)ng + 1, sizeof(*b->envid));
	b->gidx = calloc((size_t)ng + 1, sizeof(*b->gidx));
	return b->mails && b->envfrom && b->envid && b->gidx;
}

static void batch_free(struct batch *b)
{
	for (int i = 0; b->mails && i < b->n; i++)
		free((void *)b->mails[i].text);
	free(b->mails);
	free(b->envfrom);
	free(b->envid);
	free(b->gidx);
}

/* Renders the mail of the n rows at c as the next mail of b; false if it cannot be built. */
static bool batch_add(struct worker *w, struct batch *b, const struct claimed *c, int n, int g)
{
	const struct config *cfg = delivery_cfg(w->d);
	int i = b->n;
	char *text = render_mail(w->d, c, n);
	if (!text ||
	    !mailref_verp(cfg->bounce_key, cfg->bounce_key_len, c->ref, cfg->smtp_bounce_domain,
			  b->envfrom[i], sizeof(b->envfrom[i])) ||
	    !mailref_envid(cfg->bounce_key, cfg->bounce_key_len, c->ref, b->envid[i],
			   sizeof(b->envid[i]))) {
		free(text);
		return false;
	}
	b->mails[i].envelope_from = b->envfrom[i];
	b->mails[i].envid = b->envid[i];
	b->mails[i].rcpt = c->rcpt;
	b->mails[i].text = text;
	b->gidx[i] = g;
	b->n++;
	return true;
}

/* Each mail to the relay, or to its outcome at once: deferred (domain bucket) or unrenderable. */
static void batch_build(struct worker *w, struct batch *b, const struct claimed *cl,
			const struct group *groups, int ng, struct outcome *o)
{
	int64_t now = timefmt_now_ms();
	for (int g = 0; g < ng; g++) {
		const struct claimed *c = &cl[groups[g].first];
		int64_t wait = 0;
		if (!throttle_domain_try(&w->d->throttle, c->rcpt, clock_mono_ms(), &wait))
			outcome_deferred(w, o, c, groups[g].count, now + wait, RETRY_RATE_LIMITED);
		else if (!batch_add(w, b, c, groups[g].count, g))
			outcome_unrenderable(w, o, c, groups[g].count);
	}
}

/* Why a mail the relay did not take is retried, for retries_total{reason}. */
static enum retry_reason retry_reason_of(int code, bool relay_down)
{
	if (code >= 500)
		return RETRY_SENDER_REFUSED; /* a 5xx that is no bounce: MAIL FROM */
	if (code >= 400)
		return RETRY_TEMPORARY;
	return relay_down ? RETRY_RELAY_UNREACHABLE : RETRY_NO_REPLY;
}

/* Hands each sent mail's result to its outcome handler. */
static void batch_outcomes(struct worker *w, const struct batch *b, const struct claimed *cl,
			   const struct group *groups, struct outcome *o)
{
	int64_t now = timefmt_now_ms();
	for (int i = 0; i < b->n; i++) {
		const struct group *g = &groups[b->gidx[i]];
		const struct claimed *c = &cl[g->first];
		if (i >= b->tried) {
			outcome_deferred(w, o, c, g->count, now, RETRY_SHUTDOWN);
			continue;
		}
		switch (b->mails[i].result) {
		case SMTP_SENT: outcome_sent(w, o, c, g->count, now); break;
		case SMTP_PERMFAIL: outcome_permfail(w, o, c, g->count, b->mails[i].reason); break;
		case SMTP_TEMPFAIL:
			outcome_tempfail(w, o, c, g->count, b->mails[i].reason,
					 retry_reason_of(b->mails[i].code, o->relay_down), now);
			break;
		}
	}
}

/*
 * How many of the left mails the next session carries: what the relay, at
 * its recent pace, sends in half of [http] shutdown_timeout, so that a
 * SIGTERM waits for one such session at most (the rest of the batch goes
 * back unsent). A relay of a few ms per mail takes the whole batch in one
 * session; until the first session has set the pace, FIRST_SESSION_MAILS.
 */
static int session_size(const struct worker *w, int left)
{
	int64_t budget_us = delivery_cfg(w->d)->http_shutdown_timeout_ms * 1000 / 2;
	int64_t pace_us = atomic_load(&w->d->mail_us);
	int64_t fit = pace_us > 0 ? budget_us / pace_us : FIRST_SESSION_MAILS;
	if (fit < 1)
		fit = 1;
	return fit < left ? (int)fit : left;
}

/*
 * The batch's mails to the relay in sessions of session_size() mails, until
 * all are tried, the relay is down (the rest fail as it did, why says how)
 * or the daemon stops (b->tried says how far it got). False when the relay
 * was down.
 */
static bool send_sessions(struct worker *w, const struct smtp_relay *relay, struct batch *b,
			  char *why, size_t whylen)
{
	b->tried = 0;
	while (b->tried < b->n) {
		if (atomic_load(&w->d->stop))
			return true;
		int k = session_size(w, b->n - b->tried);
		struct smtp_mail *m = &b->mails[b->tried];
		bool up = smtp_send_batch(relay, m, (size_t)k, why, whylen);
		b->tried += k;
		if (!up) {
			smtp_fail_all(&b->mails[b->tried], (size_t)(b->n - b->tried), why);
			b->tried = b->n;
			return false;
		}
		worker_beat(w);
	}
	return true;
}

/*
 * Sends the mails of the claimed rows and fills in o. Returns how many
 * mails went to the relay (the global rate limit's tokens they used).
 */
static int send_mails(struct worker *w, const struct claimed *cl, const struct group *groups,
		      int ng, struct outcome *o)
{
	const struct config *cfg = delivery_cfg(w->d);
	struct batch b;

	if (!batch_alloc(&b, ng)) {
		/* out of memory: every mail is a temporary failure */
		int64_t now = timefmt_now_ms();
		for (int g = 0; g < ng; g++)
			outcome_tempfail(w, o, &cl[groups[g].first], groups[g].count,
					 "out of memory", RETRY_INTERNAL, now);
		batch_free(&b);
		return 0;
	}
	batch_build(w, &b, cl, groups, ng, o);
	if (b.n > 0) {
		struct smtp_relay relay = {
			cfg->smtp_host,         (int)cfg->smtp_port,
			cfg->smtp_helo,         (long)cfg->smtp_timeout_ms,
			&w->d->beats[w->index], smtp_tls_mode(cfg->smtp_starttls),
			w->d->smtp_tls,         cfg->smtp_user,
			cfg->smtp_password,     &w->d->mail_us};
		char why[OUTAGE_REASON_MAX];
		o->relay_down = !send_sessions(w, &relay, &b, why, sizeof(why));
		if (!o->relay_down)
			outage_ok(&w->d->relay, clock_mono_ms());
		batch_outcomes(w, &b, cl, groups, o);
		if (o->relay_down) /* after the outcomes: deferred counts their rows */
			outage_fail(&w->d->relay, why, o->nrows, clock_mono_ms());
	}
	int sent = b.tried;
	batch_free(&b);
	return sent;
}

/*
 * The lease ran out (or was lost and taken again) between the claim and the
 * send: another instance may return these rows, so they go back unsent.
 */
static void defer_lapsed(struct worker *w, const struct claimed *cl, const struct group *groups,
			 int ng, struct outcome *o)
{
	int64_t now = timefmt_now_ms();
	for (int g = 0; g < ng; g++)
		outcome_deferred(w, o, &cl[groups[g].first], groups[g].count, now,
				 RETRY_LEASE_LAPSED);
	log_warn("delivery[%d]: the lifeline's lease ran out after the claim; %d mails back "
		 "to the schedule unsent",
		 w->index, ng);
}

/*
 * Groups, sends and records the nc claimed rows, claimed in the lease's
 * epoch; returns the mails that went to the relay.
 */
static int deliver_claimed(struct worker *w, const struct claimed *cl, int nc, unsigned epoch)
{
	struct outcome o = {0};
	struct group *groups = calloc((size_t)nc + 1, sizeof(*groups));
	int used = 0;

	if (groups && outcome_alloc(&o, nc)) {
		int ng = render_make_groups(cl, nc, groups);
		if (lifeline_epoch(w->d) == epoch)
			used = send_mails(w, cl, groups, ng, &o);
		else
			defer_lapsed(w, cl, groups, ng, &o);
		if (record_outcome(w, &o)) {
			record_queue_retries(w, &o);
			if (o.nsent)
				log_debug("delivery[%d]: %d notifications sent", w->index, o.nsent);
		}
	}
	/* else out of memory: the claimed rows return after the visibility timeout */
	outcome_free(&o);
	free(groups);
	return used;
}

/*
 * Claims, sends and records one batch of n ids under the lease's epoch;
 * reserved is its global rate-limit tokens.
 */
static void process_batch(struct worker *w, const struct queue_item *items, int n, int reserved,
			  unsigned epoch)
{
	struct delivery *d = w->d;
	const struct config *cfg = delivery_cfg(d);
	struct claimed *cl = NULL;
	int64_t *ids = calloc((size_t)n, sizeof(*ids));
	const struct delivery_gen *gen = delivery_gen_now(d);
	time_t quiet_end = 0;
	bool quiet = gen->quiet_enabled &&
		     quiet_contains(time(NULL), gen->quiet_start, gen->quiet_end, &quiet_end);

	if (!ids) {
		throttle_refund(&d->throttle, reserved);
		return;
	}
	for (int i = 0; i < n; i++)
		ids[i] = items[i].id;
	int nc = claim_rows(w, ids, n, quiet, &cl);
	free(ids);
	worker_beat(w);
	if (nc < 0) {
		/* PostgreSQL failed: leave the ids in flight, so they come back
		 * after the visibility timeout instead of waiting for the reconciler */
		throttle_refund(&d->throttle, reserved);
		return;
	}
	if (quiet) /* whatever was not a verification mail waits for the end of the window */
		defer_unclaimed(w, items, n, cl, nc, (int64_t)quiet_end * MS_PER_S);
	int used = deliver_claimed(w, cl, nc, epoch);
	throttle_refund(&d->throttle, reserved - used);

	/* ack everything taken: sent, finished, retried (already moved) or not ours */
	if (!queue_sync_ack(w->rc, cfg->redis_key_prefix, items, (size_t)n))
		log_warn("delivery[%d]: ack failed; ids come back after the visibility timeout",
			 w->index);
	free(cl);
}

/* Worker 0 returns expired in-flight ids to the schedule, once a second. */
static void maybe_requeue(struct worker *w)
{
	const struct config *cfg = delivery_cfg(w->d);
	if (w->index != 0 || clock_mono_ms() - w->last_requeue_ms < REQUEUE_EVERY_MS)
		return;
	w->last_requeue_ms = clock_mono_ms();
	int back = queue_sync_requeue_expired(w->rc, cfg->redis_key_prefix, timefmt_now_ms());
	if (back > 0)
		log_info("delivery: %d expired in-flight ids back in the schedule", back);
}

/* Takes up to the tokens' worth of due ids and processes them; one turn of the loop. */
static void worker_turn(struct worker *w, struct queue_item *items, int max)
{
	struct delivery *d = w->d;
	const struct config *cfg = delivery_cfg(d);

	maybe_requeue(w);
	/* nothing is claimed while the lifeline does not hold its lock */
	unsigned epoch = lifeline_epoch(d);
	if (epoch == 0) {
		worker_pause_ms(d, NO_LEASE_PAUSE_MS);
		return;
	}
	/* take only what the global rate limit lets go now: a mail takes at least one id */
	int want = rate_reserve(d, max);
	if (want == 0)
		return;
	int n = queue_sync_take(w->rc, cfg->redis_key_prefix, timefmt_now_ms(),
				cfg->delivery_visibility_ms, items, want);
	if (n < 0) {
		throttle_refund(&d->throttle, want);
		log_warn("delivery[%d]: Redis failed; reconnecting", w->index);
		redisFree(w->rc);
		w->rc = NULL;
		worker_pause_ms(d, RECONNECT_PAUSE_MS);
		return;
	}
	if (n == 0) {
		throttle_refund(&d->throttle, want);
		worker_pause_ms(d, cfg->delivery_poll_ms);
		return;
	}
	throttle_refund(&d->throttle, want - n);
	process_batch(w, items, n, n, epoch);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct delivery *d = w->d;
	int max = (int)delivery_cfg(d)->delivery_batch;
	struct queue_item *items = calloc((size_t)max, sizeof(*items));

	while (items && !atomic_load(&d->stop)) {
		worker_beat(w);
		if (!conn_connect(w)) {
			worker_pause_ms(d, RECONNECT_PAUSE_MS);
			continue;
		}
		worker_turn(w, items, max);
	}
	free(items);
	if (w->pg)
		PQfinish(w->pg);
	if (w->rc)
		redisFree(w->rc);
	free(w);
	atomic_fetch_sub(&d->running, 1); /* last: d may be joined and freed from here on */
	return NULL;
}
