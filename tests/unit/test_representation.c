/*
 * test_representation.c - specification of daemon/portal/representation:
 * the body of PUT .../vertegenwoordigers/{id} is validated with every
 * invalid field reported at once; a weergavenaam never holds a BSN.
 *
 * needs: daemon/portal/representation.c, daemon/agency/message.c
 */
#include <criterion/criterion.h>
#include <string.h>

#include "daemon/portal/representation.h"

#define SELF "0190f5a0-0000-7000-8000-000000000001"
#define OTHER "0190f5a0-0000-7000-8000-000000000002"
#define OIN1 "00000001234567890000"
#define OIN2 "00000001234567890001"

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

static const char *code_of(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n && i < 16; i++)
		if (strcmp(s->names[i], name) == 0)
			return s->codes[i];
	return NULL;
}

static bool parse(const char *json, struct seen *s, struct rep_in *in)
{
	json_error_t err;
	json_t *obj = json_loads(json, 0, &err);
	cr_assert(obj, "test JSON: %s", err.text);
	memset(s, 0, sizeof(*s));
	bool ok = rep_parse(obj, SELF, collect, s, in);
	json_decref(obj);
	return ok;
}

Test(representation, a_minimal_one_is_valid_with_the_defaults)
{
	struct seen s;
	struct rep_in in;
	cr_assert(parse("{\"soort\":\"ouder\",\"geldigVanaf\":\"2026-01-01T00:00:00Z\","
			"\"weergavenaam\":\"Kind\"}",
			&s, &in));
	cr_expect_str_eq(in.soort, "ouder");
	cr_expect(in.betrokkene, "the represented person still gets mail by default");
	cr_expect_not(in.has_tot || in.has_orgs || in.has_zaak || in.has_source);
	cr_assert(parse("{\"soort\":\"nabestaande\",\"geldigVanaf\":\"2026-01-01T00:00:00Z\","
			"\"weergavenaam\":\"wijlen P.\"}",
			&s, &in));
	cr_expect_not(in.betrokkene, "false for a nabestaande");
}

Test(representation, every_field_is_taken)
{
	struct seen s;
	struct rep_in in;
	cr_assert(parse("{\"soort\":\"curatele\",\"geldigVanaf\":\"2026-01-01T00:00:00Z\","
			"\"geldigTot\":\"2027-01-01T00:00:00+01:00\",\"organisaties\":[\"" OIN1
			"\",\"" OIN2 "\"],\"zaakkenmerk\":\"Z-1\",\"weergavenaam\":\"Ünal\","
			"\"betrokkeneOokNotificeren\":false,\"doorgegevenDoor\":\"" OTHER "\"}",
			&s, &in),
		  "%d problems, first %s", s.n, s.names[0]);
	cr_expect(in.has_tot && in.tot_ms > in.vanaf_ms);
	cr_expect_str_eq(in.orgs, "{" OIN1 "," OIN2 "}");
	cr_expect_eq(in.n_orgs, 2);
	cr_expect_str_eq(in.zaak, "Z-1");
	cr_expect_not(in.betrokkene);
	cr_expect_str_eq(in.source, OTHER);
}

Test(representation, every_invalid_field_is_reported_at_once)
{
	struct seen s;
	struct rep_in in;
	cr_assert_not(parse("{\"soort\":\"buurman\",\"geldigVanaf\":\"gisteren\",\"geldigTot\":1,"
			    "\"organisaties\":[\"12\",\"" OIN1 "\"],\"zaakkenmerk\":\"\","
			    "\"weergavenaam\":\"\",\"betrokkeneOokNotificeren\":1,"
			    "\"doorgegevenDoor\":\"" SELF "\",\"bsn\":\"111222333\"}",
			    &s, &in));
	cr_expect_eq(s.n, 9);
	cr_expect_str_eq(code_of(&s, "soort"), "enum");
	cr_expect_str_eq(code_of(&s, "geldigVanaf"), "dateTime");
	cr_expect_str_eq(code_of(&s, "geldigTot"), "string");
	cr_expect_str_eq(code_of(&s, "organisaties[0]"), "oin");
	cr_expect_str_eq(code_of(&s, "zaakkenmerk"), "length");
	cr_expect_str_eq(code_of(&s, "weergavenaam"), "length");
	cr_expect_str_eq(code_of(&s, "betrokkeneOokNotificeren"), "boolean");
	cr_expect_str_eq(code_of(&s, "doorgegevenDoor"), "self");
	cr_expect_str_eq(code_of(&s, "bsn"), "unknownField");
}

Test(representation, required_fields_times_and_lists)
{
	struct seen s;
	struct rep_in in;
	cr_assert_not(parse("{}", &s, &in));
	cr_expect_eq(s.n, 3);
	cr_expect_str_eq(code_of(&s, "soort"), "required");
	cr_expect_str_eq(code_of(&s, "geldigVanaf"), "required");
	cr_expect_str_eq(code_of(&s, "weergavenaam"), "required");
	cr_assert_not(parse("{\"soort\":\"ouder\",\"geldigVanaf\":\"2026-01-01T00:00:00Z\","
			    "\"geldigTot\":\"2026-01-01T01:00:00+01:00\",\"organisaties\":[],"
			    "\"weergavenaam\":\"K\",\"zaakkenmerk\":\"a\\u0007b\"}",
			    &s, &in));
	cr_expect_str_eq(code_of(&s, "geldigTot"), "range", "the same instant is not after");
	cr_expect_str_eq(code_of(&s, "organisaties"), "array");
	cr_expect_str_eq(code_of(&s, "zaakkenmerk"), "length");
	cr_expect_eq(s.n, 3);
}

Test(representation, a_weergavenaam_never_holds_a_bsn)
{
	cr_expect(rep_has_bsn("111222333"));
	cr_expect(rep_has_bsn("J. Jansen 123456782"));
	cr_expect(rep_has_bsn("1234.56.782"));
	cr_expect(rep_has_bsn("bsn: 123-456-782 x"));
	cr_expect_not(rep_has_bsn("123456789"), "fails the elfproef");
	cr_expect_not(rep_has_bsn("1234567820"), "ten digits");
	cr_expect_not(rep_has_bsn("J. Jansen"));
	cr_expect_not(rep_has_bsn("Kamer 12, 3 kinderen"));
	struct seen s;
	struct rep_in in;
	cr_assert_not(parse("{\"soort\":\"ouder\",\"geldigVanaf\":\"2026-01-01T00:00:00Z\","
			    "\"weergavenaam\":\"Kind 111222333\"}",
			    &s, &in));
	cr_expect_str_eq(code_of(&s, "weergavenaam"), "bsn");
}
