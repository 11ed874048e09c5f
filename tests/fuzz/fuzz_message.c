/*
 * fuzz_message.c - daemon/agency/message.c: any JSON body of POST
 * /v1/berichten, parsed as http_input.c does, validated as ingest_http.c does.
 * Checks that a valid message has the fields the ingest stores, and that
 * an invalid one reported at least one problem with a name and a reason.
 */
#include <jansson.h>
#include <string.h>

#include "daemon/agency/message.h"
#include "fuzz.h"

static const uint8_t KEY[32] = {7, 7, 7};

struct seen {
	int n;
};

static void count(void *ctx, const char *name, const char *code, const char *reason)
{
	struct seen *s = ctx;
	if (!name || !code || !*code || !reason || !*reason)
		abort();
	s->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return 0;
	struct seen s = {0};
	struct message_in m;
	memset(&m, 0, sizeof(m));
	bool ok = message_parse(body, 1748779200000LL, KEY, sizeof(KEY), "", count, &s, &m);
	if (ok && (s.n != 0 || strlen(m.bsn_hash) != 64 || !message_type_ok(m.berichttype) ||
		   !*m.referentie || strlen(m.content_hash) != 64))
		abort();
	if (!ok && s.n == 0)
		abort();
	json_decref(body);
	return 0;
}
