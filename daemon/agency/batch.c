/*
 * batch.c - POST /v1/batches (see batch.h).
 *
 * The batch keeps one result object per item, pre-filled for the invalid
 * ones; each valid item is an ingest_item inside a batch_item, and the
 * batch answers when the last of them is done. All its items share the
 * batch's deadline (ingest.h), so that is within ingest_timeout too.
 */
#include "agency/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timefmt.h"
#include "agency/ingest.h"
#include "core/ratelimit.h"

#define NAME_MAX_LEN 48

enum batch_status { BS_AANGENOMEN, BS_DUBBEL, BS_GEEN_BOX, BS_ONGELDIG, BS_COUNT };

static const char *const status_names[BS_COUNT] = {
	"aangenomen",
	"dubbel",
	"geenActieveBerichtenbox",
	"ongeldig",
};

struct batch;

struct batch_item {
	struct ingest_item it; /* first: the done callback gets &it */
	struct batch *b;
	size_t index;
};

struct batch {
	struct http_req *r;
	json_t *results; /* one object per item, in request order */
	struct batch_item *items;
	size_t nitems;
	size_t pending;
	size_t counts[BS_COUNT];
	bool unavailable; /* an item is not stored (database failed, or expired unsent) */
	bool unconfirmed; /* an item may be stored: no commit result by the deadline */
};

static void set_status(struct batch *b, json_t *res, enum batch_status s)
{
	json_object_set_new(res, "status", json_string(status_names[s]));
	b->counts[s]++;
}

static void batch_free(struct batch *b)
{
	json_decref(b->results);
	free(b->items);
	free(b);
}

static void batch_answer(struct batch *b)
{
	struct http_req *r = b->r;

	log_set_request_id(r->id); /* the groups' callbacks answer many requests */
	if (b->unconfirmed) {
		/* what is unconfirmed may still commit: "not stored" would be untrue */
		log_warn("batch %s: outcome of some items unknown (no commit result in time)",
			 r->id);
		batch_free(b);
		http_problem_unavailable(
			r, "Niet bekend of alle berichten zijn opgeslagen: de database heeft niet "
			   "alles op tijd bevestigd en kan de rest nog opslaan (dan volgen de "
			   "meldingen gewoon). Stuur de batch opnieuw; dat is veilig: opgeslagen "
			   "berichten komen terug als dubbel, de andere worden alsnog opgeslagen.");
		return;
	}
	if (b->unavailable) {
		log_warn("batch %s: not all items stored (database failed or too slow)", r->id);
		batch_free(b);
		http_problem_unavailable(r,
					 "Niet alle berichten zijn opgeslagen; stuur de batch "
					 "opnieuw (opgeslagen berichten komen terug als dubbel).");
		return;
	}
	json_t *counts = json_object();
	for (int s = 0; s < BS_COUNT; s++)
		json_object_set_new(counts, status_names[s],
				    json_integer((json_int_t)b->counts[s]));
	json_t *body = json_pack("{s:o, s:O}", "aantallen", counts, "resultaten", b->results);
	log_info("batch %s: %zu items: %zu aangenomen, %zu dubbel, %zu geen box, %zu ongeldig",
		 r->id, json_array_size(b->results), b->counts[BS_AANGENOMEN], b->counts[BS_DUBBEL],
		 b->counts[BS_GEEN_BOX], b->counts[BS_ONGELDIG]);
	batch_free(b);
	http_reply_json(r, 200, body);
}

static void item_invalid(json_t *res, size_t index, const char *field, const char *code,
			 const char *reason)
{
	char name[NAME_MAX_LEN + 32];
	json_t *arr = json_object_get(res, "invalidParams");
	if (!arr) {
		arr = json_array();
		json_object_set_new(res, "invalidParams", arr);
	}
	snprintf(name, sizeof(name), "berichten[%zu].%s", index, field);
	http_invalid_add(arr, name, code, reason);
}

static void item_done(struct ingest_item *it)
{
	struct batch_item *bi = (struct batch_item *)it;
	struct batch *b = bi->b;
	json_t *res = json_array_get(b->results, bi->index);

	switch (it->outcome) {
	case INGEST_CREATED:
	case INGEST_DUPLICATE:
		json_object_set_new(res, "berichtId", json_string(it->bericht_id));
		set_status(b, res, it->outcome == INGEST_CREATED ? BS_AANGENOMEN : BS_DUBBEL);
		break;
	case INGEST_CONFLICT:
		item_invalid(res, bi->index, "referentie", "referentieBestaatAl",
			     "Deze referentie is al gebruikt voor een bericht met andere inhoud.");
		set_status(b, res, BS_ONGELDIG);
		break;
	case INGEST_UNKNOWN_TYPE:
		item_invalid(res, bi->index, "berichttype", "unregistered",
			     "Dit berichttype is niet geregistreerd voor deze afzender.");
		set_status(b, res, BS_ONGELDIG);
		break;
	case INGEST_NO_BOX: set_status(b, res, BS_GEEN_BOX); break;
	case INGEST_UNAVAILABLE:
	case INGEST_EXPIRED: b->unavailable = true; break;
	case INGEST_UNCONFIRMED: b->unconfirmed = true; break;
	}
	if (--b->pending == 0)
		batch_answer(b);
}

/* Checks the envelope {"berichten": [...]}; answers 400 and returns NULL if wrong. */
static const json_t *batch_envelope(struct http_req *r)
{
	json_t *invalid = json_array();
	const char *key;
	json_t *val;

	json_object_foreach(r->body, key, val)
	{
		if (strcmp(key, "berichten") != 0)
			http_invalid_add(invalid, key, "unknownField", "Onbekend veld.");
	}
	const json_t *arr = json_object_get(r->body, "berichten");
	if (!arr)
		http_invalid_add(invalid, "berichten", "required", "Dit veld is verplicht.");
	else if (!json_is_array(arr))
		http_invalid_add(invalid, "berichten", "array", "Een lijst van berichten.");
	else if (json_array_size(arr) < 1 || json_array_size(arr) > BATCH_MAX)
		http_invalid_add(invalid, "berichten", "size", "1 tot 10000 berichten.");
	if (json_array_size(invalid) > 0) {
		http_problem_invalid(r, invalid);
		return NULL;
	}
	json_decref(invalid);
	return arr;
}

void batch_http_post(struct http_req *r)
{
	struct app *app = r->app;
	int64_t deadline = ingest_deadline(app->ingest); /* counted from arrival */
	const json_t *arr = batch_envelope(r);
	if (!arr)
		return;

	size_t n = json_array_size(arr);
	struct batch *b = calloc(1, sizeof(*b));
	if (!b || !(b->items = calloc(n, sizeof(*b->items))) || !(b->results = json_array())) {
		if (b)
			free(b->items);
		free(b);
		http_problem_internal(r);
		return;
	}
	b->r = r;
	hist_observe(&app->metrics.batch_size, &HIST_SIZE, (int64_t)n);

	int64_t now = timefmt_now_ms();
	char prefix[NAME_MAX_LEN];
	for (size_t i = 0; i < n; i++) {
		const json_t *obj = json_array_get(arr, i);
		json_t *res = json_pack("{s:I}", "index", (json_int_t)i);
		json_array_append_new(b->results, res);
		const json_t *ref = json_is_object(obj) ? json_object_get(obj, "referentie") : NULL;
		if (json_is_string(ref))
			json_object_set(res, "referentie", (json_t *)ref);
		if (!json_is_object(obj)) {
			json_t *inv = json_array();
			snprintf(prefix, sizeof(prefix), "berichten[%zu]", i);
			http_invalid_add(inv, prefix, "object", "Een bericht is een JSON-object.");
			json_object_set_new(res, "invalidParams", inv);
			set_status(b, res, BS_ONGELDIG);
			continue;
		}
		struct batch_item *bi = &b->items[b->nitems];
		json_t *inv = json_array();
		snprintf(prefix, sizeof(prefix), "berichten[%zu].", i);
		if (!message_parse(obj, now, app->cfg->bsn_key, app->cfg->bsn_key_len, prefix,
				   http_invalid_sink, inv, &bi->it.msg) ||
		    !uuid7_generate(&bi->it.id)) {
			json_object_set_new(res, "invalidParams", inv);
			set_status(b, res, BS_ONGELDIG);
			continue;
		}
		json_decref(inv);
		bi->b = b;
		bi->index = i;
		bi->it.agency_id = r->agency_id;
		bi->it.deadline_us = deadline;
		bi->it.done = item_done;
		bi->it.owner = b;
		b->nitems++;
	}

	int64_t retry_s = 0;
	if (b->nitems > 0 &&
	    !ratelimit_take(app->ratelimit, r->agency_id, (int64_t)b->nitems, now, &retry_s)) {
		batch_free(b);
		http_problem_rate_limited(r, retry_s);
		return;
	}
	if (ingest_overloaded(app->ingest, (int)b->nitems)) {
		batch_free(b);
		http_problem_unavailable(r,
					 "Te veel berichten in behandeling; probeer het opnieuw.");
		return;
	}
	if (b->nitems == 0) {
		batch_answer(b);
		return;
	}
	/* pending is set in full first: an item may finish before the last is queued */
	b->pending = b->nitems;
	size_t total = b->nitems;
	for (size_t k = 0; k < total; k++)
		ingest_submit(app->ingest, &b->items[k].it);
}
