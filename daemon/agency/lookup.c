/*
 * lookup.c - the agency's read calls (see lookup.h).
 */
#include "agency/lookup.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bsn.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "common/uuid7.h"
#include "core/pgpool.h"
#include "core/ratelimit.h"
#include "core/pgval.h"

#define NAME_MAX_LEN 32

/* The same rule as ingest's `box` CTE: active, and not turned off (migration 0011). */
static const char ONTVANGERS_SQL[] =
	"SELECT h.i, EXISTS (SELECT 1 FROM accounts a WHERE a.bsn_hash = h.bsn_hash AND a.active"
	"  AND NOT EXISTS (SELECT 1 FROM agencies_turned_off o"
	"    WHERE o.account_id = a.id AND o.agency_id = $2))"
	" FROM unnest($1::text[]) WITH ORDINALITY AS h(bsn_hash, i) ORDER BY h.i";

static const char BERICHT_SQL[] = "SELECT id, berichttype, referentie,"
				  "  (extract(epoch FROM aanmaak_tijdstip) * 1000)::bigint,"
				  "  (extract(epoch FROM publicatie_tijdstip) * 1000)::bigint,"
				  "  eind_datum_handelingstermijn::text, papieren_kopie,"
				  "  (extract(epoch FROM created_at) * 1000)::bigint, zaakkenmerk"
				  " FROM messages WHERE id = $1 AND agency_id = $2";

enum bcol { B_ID, B_TYPE, B_REF, B_AANMAAK, B_PUBL, B_EIND, B_PAPIER, B_CREATED, B_ZAAK };

struct zoek {
	struct http_req *r;
	json_t *bsns; /* the request's array, for the answer */
};

static bool store_failed(struct http_req *r, const char *err)
{
	if (!err)
		return false;
	log_warn("lookup %s: %.200s", r->id, err);
	http_problem_unavailable(r, "De database is niet bereikbaar.");
	return true;
}

static void on_ontvangers(const PGresult *res, const char *err, void *arg)
{
	struct zoek *z = arg;
	struct http_req *r = z->r;

	if (store_failed(r, err)) {
		json_decref(z->bsns);
		free(z);
		return;
	}
	json_t *list = json_array();
	int rows = PQntuples(res);
	for (int row = 0; row < rows; row++) {
		long i = (long)pg_bigint(res, row, 0) - 1; /* ORDINALITY is 1-based */
		json_t *bsn = json_array_get(z->bsns, (size_t)i);
		if (!bsn)
			continue;
		json_array_append_new(list, json_pack("{s:O, s:b}", "bsn", bsn, "berichtenbox",
						      pg_bool(res, row, 1)));
	}
	json_decref(z->bsns);
	free(z);
	http_reply_json(r, 200, json_pack("{s:o}", "ontvangers", list));
}

/* The body's problems: unknown fields, and bsns a list of 1 to 250 valid BSNs. */
static json_t *ontvangers_invalid(const json_t *body)
{
	json_t *invalid = json_array();
	const char *key;
	json_t *val;
	char name[NAME_MAX_LEN];

	json_object_foreach((json_t *)body, key, val)
	{
		if (strcmp(key, "bsns") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	json_t *bsns = json_object_get(body, "bsns");
	if (!bsns)
		http_invalid_add(invalid, "bsns", "required", "Dit veld is verplicht.");
	else if (!json_is_array(bsns))
		http_invalid_add(invalid, "bsns", "array", "Een lijst van BSN's.");
	else if (json_array_size(bsns) < 1 || json_array_size(bsns) > LOOKUP_BSNS_MAX)
		http_invalid_add(invalid, "bsns", "size", "1 tot 250 BSN's.");
	size_t n = json_is_array(bsns) && json_array_size(bsns) <= LOOKUP_BSNS_MAX
			   ? json_array_size(bsns)
			   : 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *b = json_array_get(bsns, i);
		if (!json_is_string(b) || !bsn_valid(json_string_value(b))) {
			snprintf(name, sizeof(name), "bsns[%zu]", i);
			http_invalid_add(
				invalid, name, "invalidBsn",
				"Een BSN bestaat uit 9 cijfers en voldoet aan de elfproef.");
		}
	}
	return invalid;
}

/*
 * "{h1,h2,...}" of the keyed hashes of the (valid) BSNs: hex hashes need no
 * quoting in an array literal. malloc'd; NULL when out of memory.
 */
static char *hash_literal(const struct config *cfg, const json_t *bsns)
{
	size_t n = json_array_size(bsns), i;
	json_t *b;
	char *lit = malloc(n * CRYPTO_HEX256_LEN + 3);
	if (!lit)
		return NULL;
	char *p = lit;
	*p++ = '{';
	json_array_foreach(bsns, i, b)
	{
		const char *bsn = json_string_value(b);
		if (i > 0)
			*p++ = ',';
		if (!crypto_hmac_sha256_hex(cfg->bsn_key, cfg->bsn_key_len, bsn, strlen(bsn), p)) {
			free(lit);
			return NULL;
		}
		p += strlen(p);
	}
	*p++ = '}';
	*p = '\0';
	return lit;
}

void lookup_http_ontvangers(struct http_req *r)
{
	json_t *invalid = ontvangers_invalid(r->body);
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);

	/*
	 * Each BSN looked up costs one token of the agency's bucket, the same
	 * one its messages draw on: a lookup says per citizen whether they have
	 * a box and whether they turned this agency off, so it is limited like
	 * sending them something (docs/architecture.md).
	 */
	json_t *bsns = json_object_get(r->body, "bsns");
	size_t n = json_array_size(bsns);
	int64_t retry_s = 0;
	if (!ratelimit_take(r->app->ratelimit, r->agency_id, (int64_t)n, timefmt_now_ms(),
			    &retry_s)) {
		http_problem_rate_limited(r, retry_s);
		return;
	}

	char *lit = hash_literal(r->app->cfg, bsns);
	struct zoek *z = calloc(1, sizeof(*z));
	if (!lit || !z) {
		free(lit);
		free(z);
		http_problem_internal(r);
		return;
	}
	char agency[24];
	snprintf(agency, sizeof(agency), "%" PRId64, r->agency_id);
	z->r = r;
	z->bsns = json_incref(bsns);
	const char *params[] = {lit, agency};
	if (!pgpool_query(r->app->pg, ONTVANGERS_SQL, 2, params, on_ontvangers, z)) {
		json_decref(z->bsns);
		free(z);
		http_problem_internal(r);
	}
	free(lit);
}

static void set_time(json_t *o, const char *key, const PGresult *res, int row, int col)
{
	char ts[TIMEFMT_RFC3339_LEN];
	if (PQgetisnull(res, row, col))
		return;
	timefmt_format_rfc3339(pg_bigint(res, row, col), ts);
	json_object_set_new(o, key, json_string(ts));
}

static void on_bericht(const PGresult *res, const char *err, void *arg)
{
	struct http_req *r = arg;

	if (store_failed(r, err))
		return;
	if (PQntuples(res) != 1) {
		http_problem_not_found(r, "Onbekend bericht.");
		return;
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s}", "berichtId", PQgetvalue(res, 0, B_ID),
			      "berichttype", PQgetvalue(res, 0, B_TYPE), "referentie",
			      PQgetvalue(res, 0, B_REF), "papierenKopie", pg_bool(res, 0, B_PAPIER),
			      "status", "aangenomen");
	if (o) {
		set_time(o, "aanmaakTijdstip", res, 0, B_AANMAAK);
		set_time(o, "publicatieTijdstip", res, 0, B_PUBL);
		set_time(o, "ontvangstTijdstip", res, 0, B_CREATED);
		if (!PQgetisnull(res, 0, B_EIND))
			json_object_set_new(o, "eindDatumHandelingstermijn",
					    json_string(PQgetvalue(res, 0, B_EIND)));
		if (!PQgetisnull(res, 0, B_ZAAK))
			json_object_set_new(o, "zaakkenmerk",
					    json_string(PQgetvalue(res, 0, B_ZAAK)));
	}
	http_reply_json(r, 200, o);
}

void lookup_http_bericht(struct http_req *r)
{
	uuid_t7 u;
	char id[UUID_STR_LEN], agency[24];

	if (!http_uuid_param(r, 0, &u, "Onbekend bericht."))
		return;
	uuid_format(&u, id);
	snprintf(agency, sizeof(agency), "%" PRId64, r->agency_id);
	const char *params[] = {id, agency};
	if (!pgpool_query(r->app->pg, BERICHT_SQL, 2, params, on_bericht, r))
		http_problem_internal(r);
}
