/*
 * claim.c - the claim: due ids -> rows this worker sends (see
 * delivery_impl.h, and docs/architecture.md "Claim before send").
 *
 * Who gets mail is decided here, at claim time (an account can change its
 * mind between scheduling and sending). A new mail's rows are checked one
 * by one: an active account, a verified address that did not hard-bounce,
 * notifications on, the agency not turned off (unless mandatory), the
 * message not deleted; reminders also need the message unopened and
 * reminders on. A mail built before is checked as a whole: it goes again
 * unchanged while the account may still get mail at the address it was
 * built for and at least one of its messages still wants it, else all of
 * it is cancelled. Anything not eligible is cancelled.
 *
 * Representatives (issue 11): a row with a representation_id goes to the
 * representative (its account_id) while 0012's representation_in_force
 * still holds for the message; the holder's own rows also ask
 * holder_notified (a representation that says the holder is not to be
 * notified, or a death). A representative's rows make mails of their own,
 * apart from their mail as holder: the digest is per (account, kind, for a
 * representative or not).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "notify/delivery.h"
#include "notify/delivery_impl.h"

/*
 * $1 ids Redis handed out, $2 digest window, $3 quiet hours now (only
 * verification mails go out then), $4 this instance (claimed_by: whose
 * lifeline lock says the claim is alive, migration 0015), $5 this attempt's
 * token (claim_token, migration 0019: see claim_run), $6/$7 the ref key's
 * HMAC pads (mailref_ref_pads: a new mail's ref is the HMAC of its lead
 * row, so a database restored to before the mail builds the same Message-ID
 * again; ORDER BY lead, id puts the lead row first). Returns every
 * examined row with its verdict and its mail; eligible rows are now
 * 'sending', the others 'cancelled'.
 *
 *   c      the handed-out ids that are due (not locked yet)
 *   bm/bn  mails built before, and all their rows: the mail row is locked
 *          first (SKIP LOCKED: another worker has it), then its rows
 *          (waiting: only a short statement can hold one), so a mail is
 *          always claimed whole, by one worker
 *   p/s    rows without a mail, and the digest partners of new/repeat rows
 *   v      the rules: a row of a new mail on its own, a mail built before
 *          as a whole
 *   newm   one new mail per account, kind and for_rep (one per verification row)
 */
static const char CLAIM_SQL[] =
	"WITH c AS ("
	"  SELECT id, mail_id FROM notifications"
	"  WHERE id = ANY($1::bigint[]) AND state = 'scheduled'"
	"    AND due_at <= now() + interval '1 second' AND (NOT $3::boolean OR kind = 'verify')"
	"), bm AS ("
	"  SELECT m.id, m.ref, m.recipient, (extract(epoch FROM m.created_at) * 1000)::bigint AS ms"
	"  FROM mails m WHERE m.id IN (SELECT mail_id FROM c WHERE mail_id IS NOT NULL)"
	"  FOR UPDATE OF m SKIP LOCKED"
	"), bn AS ("
	"  SELECT n.id, n.mail_id FROM notifications n"
	"  WHERE n.mail_id IN (SELECT id FROM bm) AND n.state = 'scheduled'"
	"  FOR UPDATE OF n"
	"), p AS ("
	"  SELECT n.id, n.account_id, n.kind, n.representation_id IS NOT NULL AS for_rep"
	"  FROM notifications n WHERE n.id IN (SELECT id FROM c WHERE mail_id IS NULL)"
	"    AND n.state = 'scheduled' AND n.mail_id IS NULL"
	"  FOR UPDATE OF n SKIP LOCKED"
	"), s AS ("
	"  SELECT n.id FROM notifications n"
	"  WHERE n.state = 'scheduled' AND n.kind IN ('new', 'repeat') AND n.mail_id IS NULL"
	"    AND (n.account_id, n.kind, n.representation_id IS NOT NULL) IN"
	"      (SELECT account_id, kind, for_rep FROM p WHERE kind <> 'verify')"
	"    AND n.id <> ALL($1::bigint[]) AND n.due_at <= now() + $2::interval"
	"  FOR UPDATE OF n SKIP LOCKED"
	"), r AS (SELECT id, NULL::bigint AS mail_id FROM p UNION ALL SELECT id, NULL FROM s"
	"  UNION ALL SELECT id, mail_id FROM bn"
	"), info AS ("
	"  SELECT n.id, n.kind, n.account_id, r.mail_id, coalesce(m.agency_id, 0) AS lane,"
	"    CASE WHEN n.kind = 'verify' THEN n.recipient ELSE a.email END AS addr,"
	"    a.language, coalesce(ag.name, '') AS agency, coalesce(n.payload->>'code', '') AS code,"
	"    n.attempts + 1 AS attempts,"
	"    (extract(epoch FROM n.created_at) * 1000)::bigint AS created_ms,"
	"    (extract(epoch FROM n.created_at) * 1000000)::bigint AS created_us,"
	/* the lag is measured from the first due time (migration 0018) */
	"    (extract(epoch FROM coalesce(n.first_due_at, n.due_at)) * 1000)::bigint AS due_ms,"
	"    n.representation_id IS NOT NULL AS for_rep, coalesce(n.representation_id, 0) AS rep_id,"
	"    coalesce(rp.weergavenaam, '') AS person,"
	/* the account may get this kind of mail at all (migration 0011's rule) */
	"    a.active AND (n.kind = 'verify' OR may_get_mail(a)) AS account_ok,"
	/* the message still wants it */
	"    n.kind = 'verify' OR (m.id IS NOT NULL AND m.deleted_at IS NULL"
	"      AND NOT (n.kind = 'repeat' AND (NOT message_unread(m) OR NOT a.repeat_notifications))"
	"      AND NOT EXISTS (SELECT 1 FROM agencies_turned_off o"
	"        WHERE o.account_id = m.account_id AND o.agency_id = m.agency_id)"
	/* who is notified for the message (migration 0012): the holder unless a
	 * representation or a death says not; a representative while the
	 * representation was in force at publication and still is (0017) */
	"      AND CASE WHEN n.representation_id IS NULL"
	/* (no death and no representation that could say not: notified without
	 * asking, as in ingest.c) */
	"        THEN (a.overleden_at IS NULL AND NOT EXISTS (SELECT 1 FROM representations x"
	"            WHERE x.account_id = a.id AND NOT x.betrokkene_ook_notificeren))"
	"          OR holder_notified(m.account_id, m.agency_id, m.zaakkenmerk, m.publicatie_tijdstip)"
	"        ELSE rp.account_id = m.account_id AND representation_still_notified(n.representation_id,"
	"          m.agency_id, m.zaakkenmerk, m.publicatie_tijdstip) END)"
	"      AS message_ok"
	"  FROM r JOIN notifications n ON n.id = r.id JOIN accounts a ON a.id = n.account_id"
	"  LEFT JOIN messages m ON m.id = n.message_id LEFT JOIN agencies ag ON ag.id = m.agency_id"
	"  LEFT JOIN representations rp ON rp.id = n.representation_id"
	"), v AS ("
	"  SELECT i.*, CASE WHEN i.mail_id IS NULL"
	"    THEN i.account_ok AND i.message_ok AND i.addr IS NOT NULL"
	"    ELSE bool_and(i.account_ok) OVER w AND bool_or(i.message_ok) OVER w"
	"      AND i.addr IS NOT DISTINCT FROM (SELECT recipient FROM bm WHERE bm.id = i.mail_id)"
	"    END AS ok"
	"  FROM info i WINDOW w AS (PARTITION BY i.mail_id)"
	"), g AS ("
	"  SELECT v.*, CASE WHEN v.mail_id IS NULL AND v.ok THEN CASE WHEN v.kind = 'verify' THEN v.id"
	"    ELSE min(v.id) FILTER (WHERE v.mail_id IS NULL AND v.ok)"
	"      OVER (PARTITION BY v.account_id, v.kind, v.for_rep) END END AS lead"
	"  FROM v"
	"), newm AS ("
	"  INSERT INTO mails (ref, account_id, kind, recipient, first_notification)"
	"  SELECT DISTINCT ON (lead) left(encode(sha256(decode($7, 'hex') || sha256(decode($6, 'hex')"
	"    || convert_to(lead || ':' || created_us || ':' || account_id, 'UTF8'))), 'hex'), 32),"
	"    account_id, kind, addr, lead FROM g WHERE lead IS NOT NULL ORDER BY lead, id"
	"  RETURNING id, ref, recipient, first_notification,"
	"    (extract(epoch FROM created_at) * 1000)::bigint AS ms"
	"), upd AS ("
	"  UPDATE notifications n SET"
	"    state = CASE WHEN g.ok THEN 'sending' ELSE 'cancelled' END,"
	"    claimed_at = CASE WHEN g.ok THEN now() END,"
	"    claimed_by = CASE WHEN g.ok THEN $4::integer END,"
	"    claim_token = CASE WHEN g.ok THEN $5::bigint END,"
	"    attempts = CASE WHEN g.ok THEN g.attempts ELSE n.attempts END,"
	"    mail_id = coalesce(g.mail_id, nm.id)"
	"  FROM g LEFT JOIN newm nm ON nm.first_notification = g.lead"
	"  WHERE n.id = g.id RETURNING n.id"
	") "
	"SELECT g.id, g.kind, g.account_id, g.lane, g.language, g.agency, g.code, g.attempts,"
	"  g.created_ms, g.due_ms, g.ok, coalesce(g.mail_id, nm.id, 0), coalesce(bm.ref, nm.ref, ''),"
	"  coalesce(bm.recipient, nm.recipient, ''), coalesce(bm.ms, nm.ms, 0), g.rep_id, g.person"
	" FROM g LEFT JOIN newm nm ON nm.first_notification = g.lead LEFT JOIN bm ON bm.id = g.mail_id"
	" ORDER BY 12, 1";

enum claim_col {
	CC_ID,
	CC_KIND,
	CC_ACCOUNT,
	CC_LANE,
	CC_LANG,
	CC_AGENCY,
	CC_CODE,
	CC_ATTEMPTS,
	CC_CREATED,
	CC_DUE,
	CC_OK,
	CC_MAIL,
	CC_REF,
	CC_RCPT,
	CC_MAIL_MS,
	CC_REP,   /* the representation the row is for; 0: the holder's own */
	CC_PERSON /* its weergavenaam */
};

static const struct pgpool_stmt CLAIM_STMT = {"claim", CLAIM_SQL, 7};

/*
 * A claim whose result this worker did not see: it may have committed (the
 * reply lost with the connection), and then its rows are 'sending' under a
 * live instance with nobody to send them. The reconciler returns them.
 */
static void claim_lost(struct delivery *d, int64_t token)
{
	pthread_mutex_lock(&d->lost_lock);
	bool kept = d->nlost < LOST_CLAIMS_MAX;
	if (kept)
		d->lost[d->nlost++] = token;
	pthread_mutex_unlock(&d->lost_lock);
	if (!kept)
		log_warn("delivery: too many claims of unknown result; the rows of one come back "
			 "after the visibility timeout");
}

int delivery_lost_claims(struct delivery *d, int64_t *tokens, int max, int *instance)
{
	if (!d)
		return 0;
	pthread_mutex_lock(&d->lost_lock);
	int n = d->nlost < max ? d->nlost : max;
	memcpy(tokens, d->lost + d->nlost - n, (size_t)n * sizeof(*tokens));
	d->nlost -= n;
	pthread_mutex_unlock(&d->lost_lock);
	*instance = atomic_load(&d->instance_id);
	return n;
}

void delivery_lost_claims_back(struct delivery *d, const int64_t *tokens, int n)
{
	for (int i = 0; d && i < n; i++)
		claim_lost(d, tokens[i]);
}

/*
 * Runs the claim, once more on a new connection if the first had gone.
 * Each attempt writes a token of its own (the instance's next claim
 * sequence number); an attempt without a result hands its token to the
 * reconciler, which returns exactly the rows still 'sending' under it.
 * Only this worker could have sent them, and it never learned of them, so
 * returning them cannot send a mail twice. A second attempt needs a new
 * token: its rows are sent, the first attempt's are not.
 */
static PGresult *claim_run(struct worker *w, const char *arr, const char *digest, bool quiet,
			   const char *ipad, const char *opad)
{
	char instance[16], token[24];
	snprintf(instance, sizeof(instance), "%d", atomic_load(&w->d->instance_id));
	const char *params[] = {arr, digest, quiet ? "t" : "f", instance, token, ipad, opad};
	for (int attempt = 0; attempt < 2; attempt++) {
		int64_t t = (int64_t)atomic_fetch_add(&w->d->claim_seq, 1) + 1;
		snprintf(token, sizeof(token), "%" PRId64, t);
		PGresult *res = conn_exec_stmt_once(w, WS_CLAIM, &CLAIM_STMT, params);
		if (res)
			return res;
		claim_lost(w->d, t);
		if (!conn_reconnected(w))
			break;
	}
	return NULL;
}

/* Claims; fills out[] with the eligible rows. Returns their number, -1 on error. */
int claim_rows(struct worker *w, const int64_t *ids, int n, bool quiet, struct claimed **out)
{
	/* the worker's own config generation (reload.c); the bounce key is
	 * restart-only, so every generation holds the same one */
	const struct config *cfg = delivery_cfg(w->d);
	char digest[48], ipad[MAILREF_PAD_HEX + 1], opad[MAILREF_PAD_HEX + 1];
	if (!mailref_ref_pads(cfg->bounce_key, cfg->bounce_key_len, ipad, opad))
		return -1;
	char *arr = conn_id_array(ids, n);
	snprintf(digest, sizeof(digest), "%" PRId64 " milliseconds", cfg->notify_digest_window_ms);
	PGresult *res = arr ? claim_run(w, arr, digest, quiet, ipad, opad) : NULL;
	free(arr);
	if (!res)
		return -1;
	int rows = PQntuples(res), k = 0;
	*out = calloc((size_t)rows + 1, sizeof(**out));
	if (!*out) {
		PQclear(res);
		return -1;
	}
	long long cancelled = 0;
	for (int i = 0; i < rows; i++) {
		if (PQgetvalue(res, i, CC_OK)[0] != 't') {
			cancelled++;
			continue;
		}
		struct claimed *c = &(*out)[k++];
		c->id = strtoll(PQgetvalue(res, i, CC_ID), NULL, 10);
		snprintf(c->kind, sizeof(c->kind), "%s", PQgetvalue(res, i, CC_KIND));
		snprintf(c->account, sizeof(c->account), "%s", PQgetvalue(res, i, CC_ACCOUNT));
		c->lane = strtoll(PQgetvalue(res, i, CC_LANE), NULL, 10);
		c->lang = strcmp(PQgetvalue(res, i, CC_LANG), "en") == 0 ? LANG_EN : LANG_NL;
		snprintf(c->agency, sizeof(c->agency), "%s", PQgetvalue(res, i, CC_AGENCY));
		snprintf(c->code, sizeof(c->code), "%s", PQgetvalue(res, i, CC_CODE));
		c->attempts = atoi(PQgetvalue(res, i, CC_ATTEMPTS));
		c->created_ms = strtoll(PQgetvalue(res, i, CC_CREATED), NULL, 10);
		c->due_ms = strtoll(PQgetvalue(res, i, CC_DUE), NULL, 10);
		c->mail_id = strtoll(PQgetvalue(res, i, CC_MAIL), NULL, 10);
		snprintf(c->ref, sizeof(c->ref), "%s", PQgetvalue(res, i, CC_REF));
		snprintf(c->rcpt, sizeof(c->rcpt), "%s", PQgetvalue(res, i, CC_RCPT));
		c->mail_created_ms = strtoll(PQgetvalue(res, i, CC_MAIL_MS), NULL, 10);
		c->rep_id = strtoll(PQgetvalue(res, i, CC_REP), NULL, 10);
		snprintf(c->person, sizeof(c->person), "%s", PQgetvalue(res, i, CC_PERSON));
	}
	PQclear(res);
	if (cancelled) {
		atomic_fetch_add(&w->d->app->metrics.notifications_cancelled, cancelled);
		log_debug("delivery[%d]: %lld notifications cancelled at claim", w->index,
			  cancelled);
	}
	return k;
}
