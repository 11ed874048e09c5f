/*
 * template.h - the mail texts berichtd sends, kept as files under
 * config/templates/ so that wording changes need no rebuild.
 *
 * File format (UTF-8):
 *     Subject: <subject text>
 *     <one empty line>
 *     <body ...>
 * Placeholders are written {{name}} with name = [a-z_]+, in subject and
 * body alike. There is no escape: every "{{" must open a valid placeholder.
 */
#ifndef BERICHTD_COMMON_TEMPLATE_H
#define BERICHTD_COMMON_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

/* Largest template file accepted, in bytes. */
#define TEMPLATE_MAX_BYTES ((size_t)1024 * 1024)

/* A loaded template; both strings are owned (malloc'd) by the struct. */
struct template
{
	char *subject; /* without "Subject:" and surrounding whitespace */
	char *body;    /* verbatim, line endings as in the file */
};

/*
 * Reads and checks the template file at path into *out. On failure returns
 * false, leaves *out zeroed (nothing to free) and, if err is not NULL and
 * errlen > 0, writes a NUL-terminated message "path:line: reason" into err
 * (I/O errors are "path: reason"). Reasons: missing 'Subject:' line, empty
 * subject, control character in subject, missing blank line after the
 * Subject line, invalid UTF-8, NUL byte, unterminated {{, invalid
 * placeholder name, file too large, out of memory.
 * Thread-safe (no shared state); the caller releases *out with
 * template_free().
 */
bool template_load(const char *path, struct template *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Frees both strings and zeroes *t. NULL or an already freed/zeroed
 * template is fine. */
void template_free(struct template *t);

/* One placeholder value; both strings are borrowed. */
struct template_var {
	const char *name;
	const char *value;
};

/*
 * Returns a malloc'd copy of text with each {{name}} replaced verbatim by
 * the value of the first var with that name (values are not scanned for
 * placeholders again). Returns NULL if a placeholder has no var (or a NULL
 * value), if text holds a malformed placeholder, if text is NULL, or when
 * memory runs out. vars may be NULL when nvars is 0. The caller frees the
 * result. Pure and thread-safe. Values are inserted as they are: a value
 * with a newline makes a subject that mime_build() will refuse.
 */
char *template_render(const char *text, const struct template_var *vars, size_t nvars)
	__attribute__((warn_unused_result));

#endif /* BERICHTD_COMMON_TEMPLATE_H */
