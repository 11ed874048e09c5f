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

/* Loads every kind x language template from cfg->templates_dir into d. */
bool render_load_templates(struct delivery *d, char *err, size_t errlen);
void render_free_templates(struct delivery *d);

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

/* Renders the mail of the n rows at c; returns the message text (caller frees) or NULL. */
char *render_mail(const struct delivery *d, const struct claimed *c, int n);

#endif
