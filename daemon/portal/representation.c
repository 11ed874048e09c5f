/*
 * representation.c - validation of a representation (see representation.h).
 */
#include "portal/representation.h"

#include <stdio.h>
#include <string.h>

#include "agency/message.h"
#include "common/timefmt.h"
#include "common/utf8.h"

static const char *const known_fields[] = {
	"soort",
	"geldigVanaf",
	"geldigTot",
	"organisaties",
	"zaakkenmerk",
	"weergavenaam",
	"betrokkeneOokNotificeren",
	"doorgegevenDoor",
};

static const char *const soorten[] = {
	"machtiging", "ouder", "curatele", "beschermingsbewind", "mentorschap", "nabestaande",
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct check {
	const json_t *obj;
	rep_invalid_fn report;
	void *ctx;
	int problems;
};

static void invalid(struct check *c, const char *name, const char *code, const char *reason)
{
	c->problems++;
	c->report(c->ctx, name, code, reason);
}

/* The string value of key; NULL when absent (or null, if null_ok) or not a string. */
static const char *get_string(struct check *c, const char *key, bool required)
{
	const json_t *v = json_object_get(c->obj, key);
	if (!v || (!required && json_is_null(v))) {
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

bool rep_has_bsn(const char *s)
{
	const char *p = s;
	while (*p) {
		/* a run of digits and the separators people write inside numbers */
		char digits[BSN_LEN + 2];
		size_t n = 0;
		const char *q = p;
		while (*q && (strchr("0123456789 .-", *q))) {
			if (*q >= '0' && *q <= '9') {
				if (n < sizeof(digits) - 1)
					digits[n] = *q;
				n++;
			}
			q++;
		}
		if (n == BSN_LEN) {
			digits[n] = '\0';
			if (bsn_valid(digits))
				return true;
		}
		p = q > p ? q : p + 1;
	}
	return false;
}

static void check_unknown(struct check *c)
{
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)c->obj, key, val)
	{
		bool known = false;
		for (size_t i = 0; i < NELEMS(known_fields); i++)
			known = known || strcmp(key, known_fields[i]) == 0;
		if (!known)
			invalid(c, key, "unknownField", "Onbekend veld.");
	}
}

static void check_soort(struct check *c, struct rep_in *out)
{
	const char *soort = get_string(c, "soort", true);
	if (!soort)
		return;
	for (size_t i = 0; i < NELEMS(soorten); i++)
		if (strcmp(soort, soorten[i]) == 0) {
			snprintf(out->soort, sizeof(out->soort), "%s", soort);
			return;
		}
	invalid(c, "soort", "enum",
		"Een van machtiging, ouder, curatele, beschermingsbewind, mentorschap, "
		"nabestaande.");
}

static void check_times(struct check *c, struct rep_in *out)
{
	bool vanaf_ok = false;
	const char *vanaf = get_string(c, "geldigVanaf", true);
	if (vanaf && !timefmt_parse_rfc3339(vanaf, &out->vanaf_ms))
		invalid(c, "geldigVanaf", "dateTime", "Een tijdstip volgens RFC 3339.");
	else if (vanaf)
		vanaf_ok = true;
	const char *tot = get_string(c, "geldigTot", false);
	if (tot && !timefmt_parse_rfc3339(tot, &out->tot_ms))
		invalid(c, "geldigTot", "dateTime", "Een tijdstip volgens RFC 3339.");
	else if (tot && vanaf_ok && out->tot_ms <= out->vanaf_ms)
		invalid(c, "geldigTot", "range", "Na geldigVanaf.");
	else if (tot)
		out->has_tot = true;
}

static void check_orgs(struct check *c, struct rep_in *out)
{
	const json_t *v = json_object_get(c->obj, "organisaties");
	if (!v || json_is_null(v))
		return;
	size_t n = json_is_array(v) ? json_array_size(v) : 0;
	if (n < 1 || n > REP_ORGS_MAX) {
		invalid(c, "organisaties", "array",
			"Een lijst van 1 tot 100 OIN's (20 cijfers), of weglaten voor alle "
			"organisaties.");
		return;
	}
	size_t len = 0;
	bool ok = true;
	out->orgs[len++] = '{';
	for (size_t i = 0; i < n; i++) {
		const char *oin = json_string_value(json_array_get(v, i));
		if (!oin_valid(oin)) {
			char name[32];
			snprintf(name, sizeof(name), "organisaties[%zu]", i);
			invalid(c, name, "oin", "Een OIN bestaat uit 20 cijfers.");
			ok = false;
			continue;
		}
		if (i > 0)
			out->orgs[len++] = ',';
		memcpy(out->orgs + len, oin, OIN_LEN);
		len += OIN_LEN;
	}
	out->orgs[len++] = '}';
	out->orgs[len] = '\0';
	if (ok) {
		out->has_orgs = true;
		out->n_orgs = (int)n;
	}
}

static void check_text(struct check *c, struct rep_in *out)
{
	const char *zaak = get_string(c, "zaakkenmerk", false);
	if (zaak && !message_zaakkenmerk_ok(zaak))
		invalid(c, "zaakkenmerk", "length", "1 tot 40 afdrukbare tekens.");
	else if (zaak) {
		snprintf(out->zaak, sizeof(out->zaak), "%s", zaak);
		out->has_zaak = true;
	}

	const char *naam = get_string(c, "weergavenaam", true);
	if (naam) {
		int n = utf8_printable_chars(naam);
		if (n < 1 || n > REP_NAME_MAX)
			invalid(c, "weergavenaam", "length", "1 tot 100 afdrukbare tekens.");
		else if (rep_has_bsn(naam))
			invalid(c, "weergavenaam", "bsn",
				"Een weergavenaam bevat nooit een BSN: noem de persoon bij naam.");
		else
			snprintf(out->naam, sizeof(out->naam), "%s", naam);
	}
}

static void check_flags(struct check *c, const char *rep_id, struct rep_in *out)
{
	out->betrokkene = strcmp(out->soort, "nabestaande") != 0;
	const json_t *b = json_object_get(c->obj, "betrokkeneOokNotificeren");
	if (b && !json_is_boolean(b))
		invalid(c, "betrokkeneOokNotificeren", "boolean", "Dit veld is true of false.");
	else if (b)
		out->betrokkene = json_is_true(b);

	const char *src = get_string(c, "doorgegevenDoor", false);
	uuid_t7 u, self;
	char self_id[UUID_STR_LEN] = "";
	if (rep_id && uuid_parse(rep_id, &self))
		uuid_format(&self, self_id);
	if (src && !uuid_parse(src, &u))
		invalid(c, "doorgegevenDoor", "uuid",
			"Het vertegenwoordigerAccountId van de vertegenwoordiging waarvan deze is "
			"afgeleid.");
	else if (src && (uuid_format(&u, out->source), strcmp(out->source, self_id) == 0))
		invalid(c, "doorgegevenDoor", "self",
			"Een vertegenwoordiging wordt niet van zichzelf doorgegeven.");
	else if (src)
		out->has_source = true;
}

bool rep_parse(const json_t *body, const char *rep_id, rep_invalid_fn report, void *ctx,
	       struct rep_in *out)
{
	struct check c = {body, report, ctx, 0};
	memset(out, 0, sizeof(*out));
	check_unknown(&c);
	check_soort(&c, out);
	check_times(&c, out);
	check_orgs(&c, out);
	check_text(&c, out);
	check_flags(&c, rep_id, out);
	return c.problems == 0;
}
