/*
 * message.h - a "bericht" as an agency submits it: validation of the JSON
 * object (every invalid field reported at once) into a struct the ingest
 * can store. Pure: no I/O, callable from any thread.
 */
#ifndef BERICHTD_MESSAGE_H
#define BERICHTD_MESSAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/uuid7.h"

#define MESSAGE_TYPE_MAX 8
#define MESSAGE_REF_MAX 25
#define MESSAGE_WINDOW_DAYS 13
#define MESSAGE_DATE_LEN 11
#define MESSAGE_ZAAK_MAX 40

struct message_in {
	char bsn_hash[CRYPTO_HEX256_LEN];
	char berichttype[MESSAGE_TYPE_MAX + 1];
	char referentie[4 * MESSAGE_REF_MAX + 1]; /* UTF-8, up to 25 characters */
	bool has_aanmaak, has_publicatie, has_eind;
	int64_t aanmaak_ms, publicatie_ms;
	char eind[MESSAGE_DATE_LEN]; /* YYYY-MM-DD */
	bool papieren_kopie;
	char content_hash[CRYPTO_HEX256_LEN]; /* of the submitted fields */
};

/*
 * Told of one invalid field: its name (with the prefix), a code and a
 * reason for people (Dutch). ctx is message_parse's.
 */
typedef void (*message_invalid_fn)(void *ctx, const char *name, const char *code,
				   const char *reason);

/*
 * Validates `obj` (a message object) against the rules of DESIGN.md
 * section 9 at time now_ms; calls report once per problem (names prefixed
 * with `prefix`, e.g. "berichten[3]." in a batch), so every invalid field
 * is reported at once. bsn_key hashes the BSN. Returns true when the
 * message is valid.
 */
bool message_parse(const json_t *obj, int64_t now_ms, const uint8_t *bsn_key, size_t keylen,
		   const char *prefix, message_invalid_fn report, void *ctx,
		   struct message_in *out);

/*
 * A zaakkenmerk (the case a message belongs to, and the case a
 * representation may be limited to): 1 to MESSAGE_ZAAK_MAX printable
 * characters, no control characters.
 */
bool message_zaakkenmerk_ok(const char *s);

/* A berichttype code: 1 to MESSAGE_TYPE_MAX of [A-Za-z0-9_-] (the CLI registers them). */
bool message_type_ok(const char *s);

#endif
