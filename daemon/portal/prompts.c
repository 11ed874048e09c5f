/*
 * prompts.c - prompts due for an account (see prompts.h).
 */
#include "portal/prompts.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "portal/portal.h"
#include "common/log.h"
#include "core/pgpool.h"

#define INT_TEXT_MAX 24

/* The prompt kinds, in the order they are listed; col = its column in LIST_SQL. */
static const struct prompt_kind {
	const char *soort;
	const char *ack_column; /* accounts column that the acknowledgement sets */
} kinds[] = {
	{"bevestigGeenEmail", "no_email_confirmed_at"},
	{"controleerEmail", "email_confirmed_at"},
	{"herstelEmail", "bounce_ack_at"},
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* $2 = the interval in milliseconds; one boolean column per kind above */
static const char LIST_SQL[] =
	"SELECT"
	"  a.active AND a.email IS NULL AND v.account_id IS NULL"
	"    AND (a.no_email_confirmed_at IS NULL OR a.no_email_confirmed_at <= p.since),"
	"  a.active AND a.email IS NOT NULL AND a.email_bounced_at IS NULL"
	"    AND (a.email_confirmed_at IS NULL OR a.email_confirmed_at <= p.since),"
	"  a.active AND a.email_bounced_at IS NOT NULL"
	"    AND (a.bounce_ack_at IS NULL OR a.bounce_ack_at < a.email_bounced_at"
	"         OR a.bounce_ack_at <= p.since) "
	"FROM accounts a LEFT JOIN email_verifications v ON v.account_id = a.id,"
	"  (SELECT now() - $2::bigint * interval '1 millisecond' AS since) p "
	"WHERE a.id = $1";

static void on_list(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (!portal_found(r, res, err, "Onbekend account."))
		return;
	json_t *list = json_array();
	for (size_t k = 0; k < NKINDS; k++)
		if (PQgetvalue(res, 0, (int)k)[0] == 't')
			json_array_append_new(list, json_pack("{s:s}", "soort", kinds[k].soort));
	http_reply_json(r, 200, json_pack("{s:o}", "meldingen", list));
}

void prompts_http_list(struct http_req *r)
{
	char interval[INT_TEXT_MAX];

	if (!portal_account_id_ok(r, r->params[0]))
		return;
	snprintf(interval, sizeof(interval), "%" PRId64, r->app->cfg->portal_prompt_interval_ms);
	const char *params[] = {r->params[0], interval};
	if (!pgpool_query(r->app->pg, LIST_SQL, 2, params, on_list, r))
		http_problem_internal(r);
}

static void on_ack(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (!portal_found(r, res, err, "Onbekend account."))
		return;
	log_info("prompts %s: %s acknowledged for account %s", r->id, r->params[1], r->params[0]);
	http_reply_json(r, 204, NULL);
}

void prompts_http_ack(struct http_req *r)
{
	const struct prompt_kind *kind = NULL;
	char sql[160];

	if (!portal_account_id_ok(r, r->params[0]))
		return;
	for (size_t k = 0; k < NKINDS; k++)
		if (strcmp(r->params[1], kinds[k].soort) == 0)
			kind = &kinds[k];
	if (!kind) {
		http_problem_not_found(r, "Onbekende soort melding: bevestigGeenEmail, "
					  "controleerEmail of herstelEmail.");
		return;
	}
	/* the column name comes from the table above, never from the request */
	snprintf(sql, sizeof(sql), "UPDATE accounts SET %s = now() WHERE id = $1 RETURNING id",
		 kind->ack_column);
	const char *params[] = {r->params[0]};
	if (!pgpool_query(r->app->pg, sql, 1, params, on_ack, r))
		http_problem_internal(r);
}

const struct http_route prompts_routes[] = {
	{EVHTTP_REQ_GET, "/v1/accounts/{}/meldingen", ROLE_PORTAL, false, prompts_http_list},
	{EVHTTP_REQ_POST, "/v1/accounts/{}/meldingen/{}/_afgehandeld", ROLE_PORTAL, false,
	 prompts_http_ack},
	{0, NULL, 0, false, NULL},
};
