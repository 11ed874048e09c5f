/*
 * render.h - claimed rows -> mails: the grouping of rows into mails, the
 * sender list, the templates and the MIME text. No PostgreSQL, Redis or
 * SMTP; any thread (the templates are read-only once loaded).
 */
#ifndef BERICHTD_RENDER_H
#define BERICHTD_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include "notify/delivery_impl.h"

/* Loads every kind x language template from dir into tmpl (free with render_free_templates). */
bool render_load_templates(const char *dir, struct template tmpl[MAIL_KINDS][LANGS], char *err,
			   size_t errlen);
void render_free_templates(struct template tmpl[MAIL_KINDS][LANGS]);

/*
 * Loads each template the daemon needs from dir, as start does, and writes
 * one line per problem (a missing directory once) to out; returns their number.
 */
int render_check_templates(const char *dir, FILE *out);

/* Groups claimed rows (sorted by mail, id) into mails; g has room for n. Returns their number. */
int render_make_groups(const struct claimed *cl, int n, struct group *g);

/*
 * The senders of the n rows at c: "A", "A en B", "A, B en C" (" and " in
 * English), each sender once, control characters turned into spaces.
 * *distinct gets how many senders there are.
 */
void render_join_senders(const struct claimed *c, int n, enum mail_lang lang, char *out, size_t cap,
			 int *distinct);

/* A representative's mail names at most this many people, then "en N anderen". */
#define REP_PERSONS_SHOWN 20
#define REP_OVERVIEW_MAX 128
#define REP_PERSONS_MAX (REP_PERSONS_SHOWN * (PERSON_MAX + SENDERS_MAX / 2) + 64)

/*
 * A representative's mail of the n rows at c (issue 11): overview gets
 * "3 nieuwe berichten voor 2 personen" ("ongelezen" for a reminder; "new",
 * "unread", "for", "people" in English), persons
 * "J. Jansen (Belastingdienst), P. de Vries (DUO en RDW)": each person once
 * (by representation, named by its weergavenaam), with their agencies each
 * once, at most REP_PERSONS_SHOWN people and then " en 4980 anderen".
 * Control characters become spaces. False when out of memory.
 */
bool render_rep_summary(const struct claimed *c, int n, enum mail_lang lang, bool reminder,
			char *overview, size_t ocap, char *persons, size_t pcap);

/* Renders the mail of the n rows at c; returns the message text (caller frees) or NULL. */
char *render_mail(struct delivery *d, const struct claimed *c, int n);

#endif
