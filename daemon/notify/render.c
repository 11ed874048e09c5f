/*
 * render.c - templates, sender lists and the MIME text of a mail (see
 * render.h).
 *
 * A mail built once is rendered the same every time: its Message-ID comes
 * from its ref and its Date from the mail row, so a retry or a resend is
 * the same mail.
 */
#include "notify/render.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/mime.h"

#define PATH_MAX_LEN 1024

static const char *const template_names[MAIL_KINDS] = {
	"nieuw-bericht", "nieuwe-berichten",  "herinnering",
	"verificatie",   "vertegenwoordiger", "vertegenwoordiger-herinnering",
};
static const char *const lang_names[LANGS] = {"nl", "en"};

static void template_path(char *path, size_t cap, const char *dir, int k, int l)
{
	snprintf(path, cap, "%s/%s.%s.txt", dir, template_names[k], lang_names[l]);
}

bool render_load_templates(const char *dir, struct template tmpl[MAIL_KINDS][LANGS], char *err,
			   size_t errlen)
{
	char path[PATH_MAX_LEN];
	for (int k = 0; k < MAIL_KINDS; k++) {
		for (int l = 0; l < LANGS; l++) {
			template_path(path, sizeof(path), dir, k, l);
			if (!template_load(path, &tmpl[k][l], err, errlen))
				return false;
		}
	}
	return true;
}

int render_check_templates(const char *dir, FILE *out)
{
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(out, "templates.dir: %s: %s\n", dir,
			S_ISDIR(st.st_mode) || errno ? strerror(errno) : "not a directory");
		return 1;
	}
	int problems = 0;
	char path[PATH_MAX_LEN], err[512];
	for (int k = 0; k < MAIL_KINDS; k++) {
		for (int l = 0; l < LANGS; l++) {
			struct template t;
			template_path(path, sizeof(path), dir, k, l);
			if (template_load(path, &t, err, sizeof(err))) {
				template_free(&t);
			} else {
				fprintf(out, "templates.dir: %s\n", err);
				problems++;
			}
		}
	}
	return problems;
}

void render_free_templates(struct template tmpl[MAIL_KINDS][LANGS])
{
	for (int k = 0; k < MAIL_KINDS; k++)
		for (int l = 0; l < LANGS; l++)
			template_free(&tmpl[k][l]);
}

int render_make_groups(const struct claimed *cl, int n, struct group *g)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (k > 0 && cl[i].mail_id == cl[g[k - 1].first].mail_id) {
			g[k - 1].count++;
		} else {
			g[k].first = i;
			g[k].count = 1;
			k++;
		}
	}
	return k;
}

/* Copies s into out, control characters turned into spaces (no header injection). */
static void clean_text(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	for (; *s && n + 1 < cap; s++)
		out[n++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? ' ' : *s;
	out[n] = '\0';
}

void render_join_senders(const struct claimed *c, int n, enum mail_lang lang, char *out, size_t cap,
			 int *distinct)
{
	const char *names[SENDERS_MAX / 8];
	int k = 0;
	for (int i = 0; i < n && k < (int)(sizeof(names) / sizeof(names[0])); i++) {
		bool seen = false;
		for (int j = 0; j < k && !seen; j++)
			seen = strcmp(names[j], c[i].agency) == 0;
		if (!seen)
			names[k++] = c[i].agency;
	}
	size_t len = 0;
	out[0] = '\0';
	for (int i = 0; i < k && len < cap; i++) {
		char clean[AGENCY_MAX];
		clean_text(names[i], clean, sizeof(clean));
		const char *sep = i == 0       ? ""
				  : i == k - 1 ? (lang == LANG_EN ? " and " : " en ")
					       : ", ";
		len += (size_t)snprintf(out + len, cap - len, "%s%s", sep, clean);
	}
	*distinct = k;
}

/* Appends to out (cap bytes, len used); never past its end. Returns the new length. */
static size_t put(char *out, size_t len, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t len, size_t cap, const char *fmt, ...)
{
	if (len + 1 >= cap)
		return len;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(out + len, cap - len, fmt, ap);
	va_end(ap);
	if (k < 0)
		return len;
	return len + (size_t)k >= cap ? cap - 1 : len + (size_t)k;
}

/* Orders rows by representation, then agency: each person's agencies together. */
static int by_person(const void *a, const void *b)
{
	const struct claimed *x = *(const struct claimed *const *)a;
	const struct claimed *y = *(const struct claimed *const *)b;
	if (x->rep_id != y->rep_id)
		return x->rep_id < y->rep_id ? -1 : 1;
	int c = strcmp(x->agency, y->agency);
	return c ? c : (x < y ? -1 : x > y);
}

/* Appends one person "J. Jansen (A en B)": the rows p[from..to) are theirs, sorted. */
static size_t append_person(const struct claimed **p, int from, int to, enum mail_lang lang,
			    char *out, size_t len, size_t cap)
{
	char clean[PERSON_MAX];
	int agencies = 0;
	clean_text(p[from]->person, clean, sizeof(clean));
	len = put(out, len, cap, "%s (", clean);
	for (int k = from; k < to; k++) {
		if (k > from && strcmp(p[k]->agency, p[k - 1]->agency) == 0)
			continue;
		bool last = true; /* no other agency after this one */
		for (int j = k + 1; j < to && last; j++)
			last = strcmp(p[j]->agency, p[k]->agency) == 0;
		char ag[AGENCY_MAX];
		clean_text(p[k]->agency, ag, sizeof(ag));
		const char *sep = agencies == 0 ? ""
				  : last        ? (lang == LANG_EN ? " and " : " en ")
						: ", ";
		len = put(out, len, cap, "%s%s", sep, ag);
		agencies++;
	}
	return put(out, len, cap, ")");
}

bool render_rep_summary(const struct claimed *c, int n, enum mail_lang lang, bool reminder,
			char *overview, size_t ocap, char *persons, size_t pcap)
{
	const struct claimed **p = calloc((size_t)n + 1, sizeof(*p));
	if (!p)
		return false;
	for (int i = 0; i < n; i++)
		p[i] = &c[i];
	qsort(p, (size_t)n, sizeof(*p), by_person);
	int people = 0;
	for (int i = 0; i < n; i++)
		people += i == 0 || p[i]->rep_id != p[i - 1]->rep_id;

	size_t len = 0;
	int shown = 0;
	persons[0] = '\0';
	for (int i = 0; i < n && shown < REP_PERSONS_SHOWN;) {
		int j = i + 1;
		while (j < n && p[j]->rep_id == p[i]->rep_id)
			j++;
		if (shown > 0)
			len = put(persons, len, pcap, ", ");
		len = append_person(p, i, j, lang, persons, len, pcap);
		shown++;
		i = j;
	}
	int rest = people - shown;
	if (rest > 0 && lang == LANG_EN)
		put(persons, len, pcap, " and %d other%s", rest, rest == 1 ? "" : "s");
	else if (rest > 0)
		put(persons, len, pcap, " en %d ander%s", rest, rest == 1 ? "" : "en");
	free(p);

	const char *what, *whom;
	if (lang == LANG_EN) {
		what = reminder ? (n == 1 ? "unread message" : "unread messages")
				: (n == 1 ? "new message" : "new messages");
		whom = people == 1 ? "person" : "people";
	} else {
		what = reminder ? (n == 1 ? "ongelezen bericht" : "ongelezen berichten")
				: (n == 1 ? "nieuw bericht" : "nieuwe berichten");
		whom = people == 1 ? "persoon" : "personen";
	}
	snprintf(overview, ocap, "%d %s %s %d %s", n, what, lang == LANG_EN ? "for" : "voor",
		 people, whom);
	return true;
}

char *render_mail(struct delivery *d, const struct claimed *c, int n)
{
	const struct delivery_gen *gen = delivery_gen_now(d);
	const struct config *cfg = gen->cfg;
	bool for_rep = c->rep_id != 0 && strcmp(c->kind, "verify") != 0;
	enum mail_kind kind = strcmp(c->kind, "verify") == 0 ? MAIL_VERIFY
			      : strcmp(c->kind, "repeat") == 0
				      ? (for_rep ? MAIL_REP_REPEAT : MAIL_REPEAT)
			      : for_rep ? MAIL_REP_NEW
			      : n > 1   ? MAIL_DIGEST
					: MAIL_NEW;
	const struct template *t = &gen->tmpl[kind][c->lang];
	char senders[SENDERS_MAX], count[16], msgid[MAILREF_NAME_MAX];
	char overview[REP_OVERVIEW_MAX] = "", persons[REP_PERSONS_MAX] = "";
	int distinct = 0;

	render_join_senders(c, n, c->lang, senders, sizeof(senders), &distinct);
	snprintf(count, sizeof(count), "%d", n);
	if (for_rep && !render_rep_summary(c, n, c->lang, kind == MAIL_REP_REPEAT, overview,
					   sizeof(overview), persons, sizeof(persons)))
		return NULL;
	const struct template_var vars[] = {
		{"afzenders", senders},  {"aantal", count},     {"code", c->code},
		{"overzicht", overview}, {"personen", persons},
	};
	if (!mailref_message_id(c->ref, cfg->smtp_bounce_domain, msgid, sizeof(msgid)))
		return NULL;

	char *subject = template_render(t->subject, vars, sizeof(vars) / sizeof(vars[0]));
	char *body = template_render(t->body, vars, sizeof(vars) / sizeof(vars[0]));
	struct mime_mail m = {
		.from_name = d->from_name[0] ? d->from_name : NULL,
		.from_addr = d->from_addr,
		.to_addr = c->rcpt,
		.subject = subject,
		.body = body,
		.message_id = msgid,
		/* the mail's own date: a resend is the same mail */
		.date_unix = c->mail_created_ms / MS_PER_S,
		.language = lang_names[c->lang],
	};
	char *text = (subject && body) ? mime_build(&m, NULL) : NULL;
	free(subject);
	free(body);
	return text;
}
