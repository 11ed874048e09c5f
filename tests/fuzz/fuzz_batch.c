/*
 * fuzz_batch.c - the validation of POST /v1/batches: the envelope
 * {"berichten": [...]} and every item through message_parse with the
 * "berichten[i]." prefix, as daemon/agency/batch.c does (its own code
 * needs the event loop and the database, so the loop is repeated here).
 * Checks that every reported name carries its item's prefix.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "daemon/agency/message.h"
#include "fuzz.h"

#define BATCH_MAX 10000

static const uint8_t KEY[32] = {9, 9, 9};

struct seen {
	const char *prefix;
	int n;
};

static void check(void *ctx, const char *name, const char *code, const char *reason)
{
	struct seen *s = ctx;
	if (!name || strncmp(name, s->prefix, strlen(s->prefix)) != 0 || !code || !*code ||
	    !reason || !*reason)
		abort();
	s->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!body)
		return 0;
	const json_t *arr = json_object_get(body, "berichten");
	if (json_is_array(arr) && json_array_size(arr) >= 1 && json_array_size(arr) <= BATCH_MAX) {
		char prefix[64];
		for (size_t i = 0; i < json_array_size(arr); i++) {
			const json_t *obj = json_array_get(arr, i);
			if (!json_is_object(obj))
				continue;
			snprintf(prefix, sizeof(prefix), "berichten[%zu].", i);
			struct seen s = {prefix, 0};
			struct message_in m;
			bool ok = message_parse(obj, 1748779200000LL, KEY, sizeof(KEY), prefix,
						check, &s, &m);
			if (ok != (s.n == 0))
				abort();
		}
	}
	json_decref(body);
	return 0;
}
