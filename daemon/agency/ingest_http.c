/*
 * ingest_http.c - POST /v1/berichten (ingest_http.h): one message, validated
 * (message.h), rate limited, and handed to the group commit (ingest.h),
 * whose outcome becomes the answer.
 */
#include "agency/ingest_http.h"

#include <stdio.h>
#include <stdlib.h>

#include "agency/ingest.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "core/ratelimit.h"

static void single_done(struct ingest_item *it)
{
	struct http_req *r = it->owner;
	char location[64];
	json_t *body;

	log_set_request_id(r->id); /* the group's callback answers many requests */

	switch (it->outcome) {
	case INGEST_CREATED:
	case INGEST_DUPLICATE:
		body = json_pack("{s:s, s:s, s:s}", "berichtId", it->bericht_id, "referentie",
				 it->msg.referentie, "status", "aangenomen");
		snprintf(location, sizeof(location), "/v1/berichten/%s", it->bericht_id);
		if (it->outcome == INGEST_CREATED) {
			log_info("ingest %s: message %s stored", r->id, it->bericht_id);
			http_reply_created(r, location, body);
		} else {
			evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Location",
					  location);
			http_reply_json(r, 200, body);
		}
		break;
	case INGEST_CONFLICT:
		http_problem(r, 409, "referentie-bestaat-al", "Referentie bestaat al",
			     "Deze referentie is al gebruikt voor een bericht met andere inhoud.");
		break;
	case INGEST_UNKNOWN_TYPE: {
		json_t *invalid = json_array();
		http_invalid_add(invalid, "berichttype", "unregistered",
				 "Dit berichttype is niet geregistreerd voor deze afzender.");
		http_problem_invalid(r, invalid);
		break;
	}
	case INGEST_NO_BOX:
		http_problem(r, 422, "geen-actieve-berichtenbox", "Geen actieve Berichtenbox",
			     "Deze ontvanger heeft geen actieve Berichtenbox voor deze afzender.");
		break;
	case INGEST_UNAVAILABLE:
		http_problem_unavailable(r, "Het bericht is niet opgeslagen; probeer het opnieuw "
					    "met dezelfde referentie.");
		break;
	case INGEST_EXPIRED:
		log_info("ingest %s: 503, not stored (not sent in time)", r->id);
		http_problem_unavailable(r,
					 "Het bericht is niet opgeslagen: de database kon het "
					 "niet op tijd aannemen. Probeer het opnieuw met dezelfde "
					 "referentie.");
		break;
	case INGEST_UNCONFIRMED:
		log_info("ingest %s: 503, outcome unknown (no commit result in time)", r->id);
		http_problem_unavailable(
			r,
			"Niet bekend of het bericht is opgeslagen: de database heeft het niet op "
			"tijd bevestigd en kan het nog opslaan (dan volgt de melding aan de "
			"ontvanger gewoon). Opnieuw versturen met dezelfde referentie is veilig: "
			"een opgeslagen bericht komt terug met 200 en zijn berichtId, anders wordt "
			"het alsnog opgeslagen (201).");
		break;
	}
	free(it);
}

void ingest_http_post(struct http_req *r)
{
	struct app *app = r->app;
	int64_t deadline = ingest_deadline(app->ingest); /* counted from arrival */
	struct ingest_item *it = calloc(1, sizeof(*it));
	json_t *invalid = json_array();

	if (!it || !invalid || !uuid7_generate(&it->id)) {
		free(it);
		json_decref(invalid);
		http_problem_internal(r);
		return;
	}
	if (!message_parse(r->body, timefmt_now_ms(), app->cfg->bsn_key, app->cfg->bsn_key_len, "",
			   http_invalid_sink, invalid, &it->msg)) {
		free(it);
		http_problem_invalid(r, invalid);
		return;
	}
	json_decref(invalid);
	int64_t retry_s = 0;
	if (!ratelimit_take(app->ratelimit, r->agency_id, 1, timefmt_now_ms(), &retry_s)) {
		free(it);
		http_problem_rate_limited(r, retry_s);
		return;
	}
	if (ingest_overloaded(app->ingest, 1)) {
		free(it);
		http_problem_unavailable(r,
					 "Te veel berichten in behandeling; probeer het opnieuw.");
		return;
	}
	it->agency_id = r->agency_id;
	it->deadline_us = deadline;
	it->done = single_done;
	it->owner = r;
	ingest_submit(app->ingest, it);
}

const struct http_route ingest_routes[] = {
	{EVHTTP_REQ_POST, "/v1/berichten", ROLE_AGENCY, true, ingest_http_post},
	{0, NULL, 0, false, NULL},
};
