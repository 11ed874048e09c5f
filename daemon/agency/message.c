/*
 * message.c - validation of submitted messages (see message.h).
 */
#include "agency/message.h"

#include <stdio.h>
#include <string.h>

#include "common/bsn.h"
#include "common/timefmt.h"
#include "common/utf8.h"

#define MS_DAY (24LL * 3600 * 1000)
/* clocks of agencies drift: an aanmaakTijdstip a little in the future is fine */
#define CLOCK_SKEW_MS (5LL * 60 * 1000)
#define NAME_MAX_LEN 96

static const char *const known_fields[] = {
	"bsn",
	"berichttype",
	"referentie",
	"aanmaakTijdstip",
	"publicatieTijdstip",
	"eindDatumHandelingstermijn",
	"papierenKopie",
};

/* Where the problems of one message go. */
struct check {
	const json_t *obj;
	const char *prefix;
	message_invalid_fn report;
	void *ctx;
	int problems;
};

static void invalid(struct check *c, const char *field, const char *code, const char *reason)
{
	char name[NAME_MAX_LEN];
	snprintf(name, sizeof(name), "%s%s", c->prefix, field);
	c->problems++;
	c->report(c->ctx, name, code, reason);
}

bool message_zaakkenmerk_ok(const char *s)
{
	int n = utf8_printable_chars(s);
	return n >= 1 && n <= MESSAGE_ZAAK_MAX;
}

bool message_type_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > MESSAGE_TYPE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *get_string(struct check *c, const char *key, bool required)
{
	const json_t *v = json_object_get(c->obj, key);
	if (!v) {
		if (required)
			invalid(c, key, "required", "Dit veld is verplicht.");
		return NULL;
	}
	if (!json_is_string(v)) {
		invalid(c, key, "string", "Dit veld moet een string zijn.");
		return NULL;
	}
	return json_string_value(v);
}

static void check_unknown_fields(struct check *c)
{
	const char *key;
	const json_t *val;

	json_object_foreach((json_t *)c->obj, key, val)
	{
		bool known = false;
		for (size_t i = 0; i < sizeof(known_fields) / sizeof(known_fields[0]); i++)
			known = known || strcmp(key, known_fields[i]) == 0;
		if (!known)
			invalid(c, key, "unknownField", "Onbekend veld.");
	}
}

/* bsn, berichttype and referentie: required strings. */
static void check_identity(struct check *c, const uint8_t *bsn_key, size_t keylen,
			   struct message_in *out)
{
	const char *bsn = get_string(c, "bsn", true);
	if (bsn && !bsn_valid(bsn))
		invalid(c, "bsn", "invalidBsn",
			"Een BSN bestaat uit 9 cijfers en voldoet aan de elfproef.");
	else if (bsn && !crypto_hmac_sha256_hex(bsn_key, keylen, bsn, strlen(bsn), out->bsn_hash))
		invalid(c, "bsn", "internal", "De BSN kon niet worden verwerkt.");

	const char *type = get_string(c, "berichttype", true);
	if (type && !message_type_ok(type))
		invalid(c, "berichttype", "pattern", "1 tot 8 tekens uit A-Z, a-z, 0-9, _ en -.");
	else if (type)
		snprintf(out->berichttype, sizeof(out->berichttype), "%s", type);

	const char *ref = get_string(c, "referentie", true);
	if (ref) {
		int n = utf8_printable_chars(ref);
		if (n < 1 || n > MESSAGE_REF_MAX || strlen(ref) >= sizeof(out->referentie))
			invalid(c, "referentie", "length", "1 tot 25 afdrukbare tekens.");
		else
			snprintf(out->referentie, sizeof(out->referentie), "%s", ref);
	}
}

/* The optional instants and the date, relative to now_ms. */
static void check_times(struct check *c, int64_t now_ms, struct message_in *out)
{
	const char *aanmaak = get_string(c, "aanmaakTijdstip", false);
	if (aanmaak) {
		if (!timefmt_parse_rfc3339(aanmaak, &out->aanmaak_ms))
			invalid(c, "aanmaakTijdstip", "dateTime", "Een tijdstip volgens RFC 3339.");
		else if (out->aanmaak_ms < now_ms - MESSAGE_WINDOW_DAYS * MS_DAY ||
			 out->aanmaak_ms > now_ms + CLOCK_SKEW_MS)
			invalid(c, "aanmaakTijdstip", "range",
				"Hoogstens 13 dagen in het verleden en niet in de toekomst.");
		else
			out->has_aanmaak = true;
	}

	const char *publ = get_string(c, "publicatieTijdstip", false);
	if (publ) {
		if (!timefmt_parse_rfc3339(publ, &out->publicatie_ms))
			invalid(c, "publicatieTijdstip", "dateTime",
				"Een tijdstip volgens RFC 3339.");
		else if (out->publicatie_ms > now_ms + MESSAGE_WINDOW_DAYS * MS_DAY ||
			 out->publicatie_ms < now_ms - MESSAGE_WINDOW_DAYS * MS_DAY)
			invalid(c, "publicatieTijdstip", "range",
				"Hoogstens 13 dagen in de toekomst of het verleden.");
		else
			out->has_publicatie = true;
	}

	const char *eind = get_string(c, "eindDatumHandelingstermijn", false);
	if (eind) {
		int y, m, d;
		if (!timefmt_parse_date(eind, &y, &m, &d))
			invalid(c, "eindDatumHandelingstermijn", "date", "Een datum JJJJ-MM-DD.");
		else {
			snprintf(out->eind, sizeof(out->eind), "%s", eind);
			out->has_eind = true;
		}
	}
}

/*
 * The submitted fields, not defaults (a retry must hash the same), and
 * instants rather than their spelling (Z and +01:00 may name one moment).
 */
static void content_hash(struct message_in *out)
{
	char canon[1024];
	int n = snprintf(canon, sizeof(canon), "%s\x1f%s\x1f%s\x1f%d:%lld\x1f%d:%lld\x1f%s\x1f%d",
			 out->bsn_hash, out->berichttype, out->referentie, out->has_aanmaak,
			 (long long)out->aanmaak_ms, out->has_publicatie,
			 (long long)out->publicatie_ms, out->eind, out->papieren_kopie);
	crypto_sha256_hex(canon, (size_t)n < sizeof(canon) ? (size_t)n : sizeof(canon) - 1,
			  out->content_hash);
}

bool message_parse(const json_t *obj, int64_t now_ms, const uint8_t *bsn_key, size_t keylen,
		   const char *prefix, message_invalid_fn report, void *ctx, struct message_in *out)
{
	struct check c = {obj, prefix, report, ctx, 0};

	memset(out, 0, sizeof(*out));
	check_unknown_fields(&c);
	check_identity(&c, bsn_key, keylen, out);
	check_times(&c, now_ms, out);

	const json_t *papier = json_object_get(obj, "papierenKopie");
	if (papier && !json_is_boolean(papier))
		invalid(&c, "papierenKopie", "boolean", "true of false.");
	else if (papier)
		out->papieren_kopie = json_is_true(papier);

	if (c.problems)
		return false;
	content_hash(out);
	return true;
}
