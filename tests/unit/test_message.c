/*
 * test_message.c - specification of daemon/agency/message: a submitted
 * "bericht" is validated with every invalid field reported at once, through
 * a callback that knows nothing of HTTP.
 *
 * needs: daemon/agency/message.c
 */
#include <criterion/criterion.h>
#include <string.h>

#include "daemon/agency/message.h"
#include "common/timefmt.h"

/* 2025-06-01T12:00:00Z */
#define NOW 1748779200000LL

static const uint8_t KEY[32] = {1, 2, 3};

struct seen {
	int n;
	char names[16][96];
	char codes[16][32];
};

static void collect(void *ctx, const char *name, const char *code, const char *reason)
{
	struct seen *s = ctx;
	cr_assert(reason && *reason, "every problem has a reason");
	if (s->n < 16) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
		snprintf(s->codes[s->n], sizeof(s->codes[0]), "%s", code);
	}
	s->n++;
}

/* The code reported for name, or NULL. */
static const char *code_of(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (strcmp(s->names[i], name) == 0)
			return s->codes[i];
	return NULL;
}

static bool parse(const char *json, const char *prefix, struct seen *s, struct message_in *m)
{
	json_error_t err;
	json_t *obj = json_loads(json, 0, &err);
	cr_assert(obj, "test JSON: %s", err.text);
	memset(s, 0, sizeof(*s));
	bool ok = message_parse(obj, NOW, KEY, sizeof(KEY), prefix, collect, s, m);
	json_decref(obj);
	return ok;
}

Test(message, a_minimal_message_is_valid_and_hashed)
{
	struct seen s;
	struct message_in m;
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"AANSLAG\",\"referentie\":\"r-1\"}",
			"", &s, &m));
	cr_assert_eq(s.n, 0);
	cr_assert_str_eq(m.berichttype, "AANSLAG");
	cr_assert_str_eq(m.referentie, "r-1");
	cr_assert_eq(strlen(m.bsn_hash), 64);
	cr_assert_eq(strlen(m.content_hash), 64);
	cr_assert_not(m.has_aanmaak || m.has_publicatie || m.has_eind || m.papieren_kopie);
}

Test(message, every_invalid_field_is_reported_at_once)
{
	struct seen s;
	struct message_in m;
	cr_assert_not(parse("{\"bsn\":\"123456789\",\"berichttype\":\"TE LANG!!\","
			    "\"referentie\":\"\",\"aanmaakTijdstip\":\"gisteren\","
			    "\"publicatieTijdstip\":5,\"eindDatumHandelingstermijn\":\"2025-02-30\","
			    "\"papierenKopie\":\"ja\",\"extra\":1}",
			    "", &s, &m));
	cr_assert_eq(s.n, 8);
	cr_assert_str_eq(code_of(&s, "bsn"), "invalidBsn");
	cr_assert_str_eq(code_of(&s, "berichttype"), "pattern");
	cr_assert_str_eq(code_of(&s, "referentie"), "length");
	cr_assert_str_eq(code_of(&s, "aanmaakTijdstip"), "dateTime");
	cr_assert_str_eq(code_of(&s, "publicatieTijdstip"), "string");
	cr_assert_str_eq(code_of(&s, "eindDatumHandelingstermijn"), "date");
	cr_assert_str_eq(code_of(&s, "papierenKopie"), "boolean");
	cr_assert_str_eq(code_of(&s, "extra"), "unknownField");
}

Test(message, required_fields_and_the_prefix)
{
	struct seen s;
	struct message_in m;
	cr_assert_not(parse("{}", "berichten[3].", &s, &m));
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(code_of(&s, "berichten[3].bsn"), "required");
	cr_assert_str_eq(code_of(&s, "berichten[3].berichttype"), "required");
	cr_assert_str_eq(code_of(&s, "berichten[3].referentie"), "required");
}

Test(message, bsn_must_pass_the_elfproef)
{
	struct seen s;
	struct message_in m;
	cr_assert(parse("{\"bsn\":\"123456782\",\"berichttype\":\"A\",\"referentie\":\"x\"}", "",
			&s, &m));
	cr_assert_not(parse("{\"bsn\":\"123456781\",\"berichttype\":\"A\",\"referentie\":\"x\"}",
			    "", &s, &m));
	cr_assert_str_eq(code_of(&s, "bsn"), "invalidBsn");
	cr_assert_not(parse("{\"bsn\":\"12345678\",\"berichttype\":\"A\",\"referentie\":\"x\"}", "",
			    &s, &m));
	cr_assert_str_eq(code_of(&s, "bsn"), "invalidBsn");
	cr_assert_not(parse("{\"bsn\":111222333,\"berichttype\":\"A\",\"referentie\":\"x\"}", "",
			    &s, &m));
	cr_assert_str_eq(code_of(&s, "bsn"), "string");
}

Test(message, lengths_of_berichttype_and_referentie)
{
	struct seen s;
	struct message_in m;
	/* 8 type characters and 25 reference characters (multi-byte counted once) */
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"ABCDEFGH\","
			"\"referentie\":\"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
			"\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
			"\u00e9\u00e9\"}",
			"", &s, &m));
	cr_assert_not(parse("{\"bsn\":\"111222333\",\"berichttype\":\"ABCDEFGHI\","
			    "\"referentie\":\"12345678901234567890123456\"}",
			    "", &s, &m));
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(code_of(&s, "berichttype"), "pattern");
	cr_assert_str_eq(code_of(&s, "referentie"), "length");
	cr_assert_not(parse("{\"bsn\":\"111222333\",\"berichttype\":\"A\",\"referentie\":\"a\\tb\"}",
			    "", &s, &m));
	cr_assert_str_eq(code_of(&s, "referentie"), "length");
}

Test(message, dates_and_instants_in_their_windows)
{
	struct seen s;
	struct message_in m;
	/* 12 days back, publication 12 days ahead, a real date */
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"A\",\"referentie\":\"x\","
			"\"aanmaakTijdstip\":\"2025-05-20T12:00:00Z\","
			"\"publicatieTijdstip\":\"2025-06-13T14:00:00+02:00\","
			"\"eindDatumHandelingstermijn\":\"2025-07-01\",\"papierenKopie\":true}",
			"", &s, &m));
	cr_assert(m.has_aanmaak && m.has_publicatie && m.has_eind && m.papieren_kopie);
	cr_assert_eq(m.publicatie_ms, NOW + 12LL * 86400000);
	cr_assert_str_eq(m.eind, "2025-07-01");
	/* 14 days back, and aanmaak an hour ahead */
	cr_assert_not(parse("{\"bsn\":\"111222333\",\"berichttype\":\"A\",\"referentie\":\"x\","
			    "\"aanmaakTijdstip\":\"2025-06-01T13:00:00Z\","
			    "\"publicatieTijdstip\":\"2025-05-18T12:00:00Z\"}",
			    "", &s, &m));
	cr_assert_str_eq(code_of(&s, "aanmaakTijdstip"), "range");
	cr_assert_str_eq(code_of(&s, "publicatieTijdstip"), "range");
	/* a few minutes of clock skew is fine */
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"A\",\"referentie\":\"x\","
			"\"aanmaakTijdstip\":\"2025-06-01T12:03:00Z\"}",
			"", &s, &m));
}

Test(message, the_content_hash_names_instants_not_their_spelling)
{
	struct seen s;
	struct message_in a, b, c;
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"A\",\"referentie\":\"x\","
			"\"publicatieTijdstip\":\"2025-06-02T12:00:00Z\"}", "", &s, &a));
	cr_assert(parse("{\"referentie\":\"x\",\"berichttype\":\"A\",\"bsn\":\"111222333\","
			"\"publicatieTijdstip\":\"2025-06-02T14:00:00+02:00\"}", "", &s, &b));
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"A\",\"referentie\":\"x\","
			"\"publicatieTijdstip\":\"2025-06-02T12:00:01Z\"}", "", &s, &c));
	cr_assert_str_eq(a.content_hash, b.content_hash);
	cr_assert_str_neq(a.content_hash, c.content_hash);
}

Test(message, zaakkenmerk_is_optional_checked_and_part_of_the_hash)
{
	struct seen s;
	struct message_in plain, zaak, other;
	const char *base = "{\"bsn\":\"111222333\",\"berichttype\":\"T1\",\"referentie\":\"r-1\"";
	char json[256];
	cr_assert(parse("{\"bsn\":\"111222333\",\"berichttype\":\"T1\",\"referentie\":\"r-1\"}", "",
			&s, &plain));
	cr_assert_str_eq(plain.zaakkenmerk, "");
	snprintf(json, sizeof(json), "%s,\"zaakkenmerk\":\"Z-2026/1 é\"}", base);
	cr_assert(parse(json, "", &s, &zaak));
	cr_assert_str_eq(zaak.zaakkenmerk, "Z-2026/1 é");
	snprintf(json, sizeof(json), "%s,\"zaakkenmerk\":\"Z-2026/2\"}", base);
	cr_assert(parse(json, "", &s, &other));
	cr_expect_str_neq(plain.content_hash, zaak.content_hash);
	cr_expect_str_neq(zaak.content_hash, other.content_hash);

	const char *bad[] = {"\"\"", "\"a\\nb\"", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "7"};
	const char *codes[] = {"length", "length", "length", "string"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json), "%s,\"zaakkenmerk\":%s}", base, bad[i]);
		cr_assert_not(parse(json, "berichten[2].", &s, &other), "%s", bad[i]);
		cr_expect_str_eq(code_of(&s, "berichten[2].zaakkenmerk"), codes[i], "%s", bad[i]);
	}
	cr_expect(message_zaakkenmerk_ok("ééééééééééééééééééééééééééééééééééééééé4"), "40 characters");
}
