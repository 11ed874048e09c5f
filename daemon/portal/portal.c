/*
 * portal.c - what the portal's calls share (see portal.h).
 */
#include "portal/portal.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/uuid7.h"
#include "core/pgpool.h"
#include "core/pgval.h"

/* What GET answers with; shared by every call that returns the account. */
static const char ACCOUNT_SQL[] =
	"SELECT a.id, a.active, coalesce(v.address, a.email),"
	"  a.email IS NOT NULL AND v.account_id IS NULL,"
	"  a.email_notifications, a.repeat_notifications, a.retention_days, a.language,"
	"  a.overleden_at IS NOT NULL "
	"FROM accounts a LEFT JOIN email_verifications v ON v.account_id = a.id "
	"WHERE a.id = $1";

enum account_col {
	A_ID,
	A_ACTIVE,
	A_EMAIL,
	A_VERIFIED,
	A_NOTIFY,
	A_REPEAT,
	A_RETENTION,
	A_LANG,
	A_DEAD
};

int64_t portal_retention_days(const struct config *cfg, const char *stored)
{
	int64_t d = (stored && *stored) ? strtoll(stored, NULL, 10) : cfg->retention_default_days;
	if (d < cfg->retention_min_days)
		d = cfg->retention_min_days;
	if (d > cfg->retention_max_days)
		d = cfg->retention_max_days;
	return d;
}

static json_t *account_json(const struct config *cfg, const PGresult *res, int row)
{
	json_t *o = json_pack(
		"{s:s, s:b, s:b, s:b, s:b, s:I, s:s}", "accountId", PQgetvalue(res, row, A_ID),
		"actief", pg_bool(res, row, A_ACTIVE), "emailGeverifieerd",
		pg_bool(res, row, A_VERIFIED), "emailNotificaties", pg_bool(res, row, A_NOTIFY),
		"herhaalNotificaties", pg_bool(res, row, A_REPEAT), "bewaartermijnDagen",
		(json_int_t)portal_retention_days(cfg, PQgetvalue(res, row, A_RETENTION)), "taal",
		PQgetvalue(res, row, A_LANG));
	if (o)
		json_object_set_new(o, "overleden", json_boolean(pg_bool(res, row, A_DEAD)));
	if (o)
		json_object_set_new(o, "emailadres",
				    PQgetisnull(res, row, A_EMAIL)
					    ? json_null()
					    : json_string(PQgetvalue(res, row, A_EMAIL)));
	return o;
}

bool portal_account_id_ok(struct http_req *r, const char *id)
{
	uuid_t7 u;
	if (uuid_parse(id, &u))
		return true;
	http_problem_not_found(r, "Onbekend account.");
	return false;
}

bool portal_store_failed(struct http_req *r, const char *err)
{
	if (!err)
		return false;
	log_warn("portal %s: %.200s", r->id, err);
	http_problem_unavailable(r, "De database is niet bereikbaar.");
	return true;
}

struct reply_ctx {
	struct http_req *r;
	int status;
};

static void on_account_row(const PGresult *res, const char *err, void *arg)
{
	struct reply_ctx *c = arg;
	struct http_req *r = c->r;
	int status = c->status;
	free(c);

	if (!portal_found(r, res, err, "Onbekend account."))
		return;
	http_reply_json(r, status, account_json(r->app->cfg, res, 0));
}

void portal_reply_account(struct http_req *r, const char *id, int status)
{
	struct reply_ctx *c = malloc(sizeof(*c));
	const char *params[] = {id};
	if (!c) {
		http_problem_internal(r);
		return;
	}
	c->r = r;
	c->status = status;
	if (!pgpool_query(r->app->pg, ACCOUNT_SQL, 1, params, on_account_row, c)) {
		free(c);
		http_problem_internal(r);
	}
}

bool portal_found(struct http_req *r, const PGresult *res, const char *err, const char *detail)
{
	if (portal_store_failed(r, err))
		return false;
	if (PQntuples(res) != 1) {
		http_problem_not_found(r, detail);
		return false;
	}
	return true;
}
