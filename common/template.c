/*
 * template.c - loading mail templates from disk and filling in their
 * {{placeholders}}.
 *
 * Templates are checked completely at load time (which happens at start
 * and on SIGHUP), so a typo in a file is reported with its line number
 * before any mail is built from it, rather than as a failed delivery later.
 */
#include "template.h"
#include "utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char TEMPLATE_SUBJECT_PREFIX[] = "Subject:";
static const char TEMPLATE_OPEN[] = "{{";
static const char TEMPLATE_CLOSE[] = "}}";
#define TEMPLATE_OPEN_LEN (sizeof TEMPLATE_OPEN - 1)
#define TEMPLATE_CLOSE_LEN (sizeof TEMPLATE_CLOSE - 1)

enum {
	TEMPLATE_READ_CHUNK = 4096,
	TEMPLATE_CHAR_SPACE = 0x20,
	TEMPLATE_CHAR_DEL = 0x7F,
	TEMPLATE_SUBJECT_LINE = 1,
	TEMPLATE_BLANK_LINE = 2,
};

/* Outcome of looking at a "{{" in the text. */
enum template_ph {
	TEMPLATE_PH_OK,
	TEMPLATE_PH_UNTERMINATED,
	TEMPLATE_PH_BAD_NAME,
};

/* ------------------------------------------------------------------ */

static bool template_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

/*
 * p points at "{{". Classifies the placeholder and, when it is well formed,
 * stores the name length in *name_len. A "{{" whose line (or text) ends
 * before any "}}" is unterminated.
 */
static enum template_ph template_scan(const char *p, size_t *name_len)
{
	const char *name = p + TEMPLATE_OPEN_LEN;
	size_t n = 0;
	while (template_is_name_char(name[n]))
		n++;
	if (n > 0 && strncmp(name + n, TEMPLATE_CLOSE, TEMPLATE_CLOSE_LEN) == 0) {
		*name_len = n;
		return TEMPLATE_PH_OK;
	}
	for (const char *q = name + n; *q != '\0' && *q != '\n'; q++)
		if (strncmp(q, TEMPLATE_CLOSE, TEMPLATE_CLOSE_LEN) == 0)
			return TEMPLATE_PH_BAD_NAME;
	return TEMPLATE_PH_UNTERMINATED;
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

static void template_err(char *err, size_t errlen, const char *path, size_t line,
			 const char *reason)
{
	if (err == NULL || errlen == 0)
		return;
	if (line == 0)
		snprintf(err, errlen, "%s: %s", path, reason);
	else
		snprintf(err, errlen, "%s:%zu: %s", path, line, reason);
}

/* Reads the whole file into a NUL-terminated malloc'd buffer. */
static bool template_read_file(const char *path, char **buf_out, size_t *len_out, char *err,
			       size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		template_err(err, errlen, path, 0, strerror(errno));
		return false;
	}
	char *buf = NULL;
	size_t len = 0;
	for (;;) {
		char *nb = realloc(buf, len + TEMPLATE_READ_CHUNK + 1);
		if (nb == NULL) {
			template_err(err, errlen, path, 0, "out of memory");
			goto fail;
		}
		buf = nb;
		const size_t got = fread(buf + len, 1, TEMPLATE_READ_CHUNK, f);
		len += got;
		if (len > TEMPLATE_MAX_BYTES) {
			template_err(err, errlen, path, 0, "file too large");
			goto fail;
		}
		if (got < TEMPLATE_READ_CHUNK)
			break;
	}
	if (ferror(f)) {
		template_err(err, errlen, path, 0, "read error");
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	*buf_out = buf;
	*len_out = len;
	return true;

fail:
	free(buf);
	fclose(f);
	return false;
}

/*
 * Checks the whole file for NUL bytes, invalid UTF-8 and malformed
 * placeholders; reports the first problem with its line number.
 */
static bool template_check_text(const char *buf, size_t len, const char *path, char *err,
				size_t errlen)
{
	size_t line = 1;
	size_t i = 0;
	while (i < len) {
		const unsigned char c = (unsigned char)buf[i];
		if (c == '\0') {
			template_err(err, errlen, path, line, "NUL byte");
			return false;
		}
		if (c == '\n') {
			line++;
			i++;
			continue;
		}
		if (strncmp(buf + i, TEMPLATE_OPEN, TEMPLATE_OPEN_LEN) == 0) {
			size_t name_len = 0;
			switch (template_scan(buf + i, &name_len)) {
			case TEMPLATE_PH_OK:
				i += TEMPLATE_OPEN_LEN + name_len + TEMPLATE_CLOSE_LEN;
				continue;
			case TEMPLATE_PH_UNTERMINATED:
				template_err(err, errlen, path, line, "unterminated {{");
				return false;
			case TEMPLATE_PH_BAD_NAME:
				template_err(err, errlen, path, line,
					     "invalid placeholder name (want {{[a-z_]+}})");
				return false;
			}
		}
		const size_t k = utf8_seq_len((const unsigned char *)buf + i, len - i);
		if (k == 0) {
			template_err(err, errlen, path, line, "invalid UTF-8");
			return false;
		}
		i += k;
	}
	return true;
}

static bool template_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

bool template_load(const char *path, struct template *out, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	memset(out, 0, sizeof *out);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (path == NULL) {
		template_err(err, errlen, "(null)", 0, "no path");
		return false;
	}
	if (!template_read_file(path, &buf, &len, err, errlen))
		return false;
	if (!template_check_text(buf, len, path, err, errlen))
		goto fail;

	/* Line 1: "Subject: text" */
	const size_t prefix_len = sizeof TEMPLATE_SUBJECT_PREFIX - 1;
	if (strncmp(buf, TEMPLATE_SUBJECT_PREFIX, prefix_len) != 0) {
		template_err(err, errlen, path, TEMPLATE_SUBJECT_LINE, "missing 'Subject:' line");
		goto fail;
	}
	const char *subj = buf + prefix_len;
	const char *eol = strchr(subj, '\n');
	if (eol == NULL) {
		template_err(err, errlen, path, TEMPLATE_BLANK_LINE,
			     "missing blank line after the Subject line");
		goto fail;
	}
	while (subj < eol && template_is_blank(*subj))
		subj++;
	const char *subj_end = eol;
	while (subj_end > subj && template_is_blank(subj_end[-1]))
		subj_end--;
	if (subj_end == subj) {
		template_err(err, errlen, path, TEMPLATE_SUBJECT_LINE, "empty subject");
		goto fail;
	}
	for (const char *p = subj; p < subj_end; p++) {
		const unsigned char c = (unsigned char)*p;
		if ((c < TEMPLATE_CHAR_SPACE && c != '\t') || c == TEMPLATE_CHAR_DEL) {
			template_err(err, errlen, path, TEMPLATE_SUBJECT_LINE,
				     "control character in subject");
			goto fail;
		}
	}

	/* Line 2: empty (a lone CR from a CRLF file counts as empty). */
	const char *line2 = eol + 1;
	const char *body;
	if (line2[0] == '\n')
		body = line2 + 1;
	else if (line2[0] == '\r' && line2[1] == '\n')
		body = line2 + 2;
	else {
		template_err(err, errlen, path, TEMPLATE_BLANK_LINE,
			     "missing blank line after the Subject line");
		goto fail;
	}

	out->subject = strndup(subj, (size_t)(subj_end - subj));
	out->body = strdup(body);
	if (out->subject == NULL || out->body == NULL) {
		template_err(err, errlen, path, 0, "out of memory");
		template_free(out);
		goto fail;
	}
	free(buf);
	return true;

fail:
	free(buf);
	return false;
}

void template_free(struct template *t)
{
	if (t == NULL)
		return;
	free(t->subject);
	free(t->body);
	t->subject = NULL;
	t->body = NULL;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */

struct template_buf {
	char *p;
	size_t len;
	size_t cap;
};

static bool template_append(struct template_buf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : TEMPLATE_READ_CHUNK;
		while (cap - b->len < n + 1) {
			if (cap > SIZE_MAX / 2)
				return false;
			cap *= 2;
		}
		char *np = realloc(b->p, cap);
		if (np == NULL)
			return false;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

static const char *template_lookup(const struct template_var *vars, size_t nvars, const char *name,
				   size_t name_len)
{
	for (size_t i = 0; i < nvars; i++)
		if (vars[i].name != NULL && strlen(vars[i].name) == name_len &&
		    memcmp(vars[i].name, name, name_len) == 0)
			return vars[i].value;
	return NULL;
}

char *template_render(const char *text, const struct template_var *vars, size_t nvars)
{
	if (text == NULL)
		return NULL;
	struct template_buf b = {0};
	const char *p = text;
	if (!template_append(&b, "", 0))
		goto fail;
	for (;;) {
		const char *open = strstr(p, TEMPLATE_OPEN);
		if (open == NULL)
			break;
		if (!template_append(&b, p, (size_t)(open - p)))
			goto fail;
		size_t name_len = 0;
		if (template_scan(open, &name_len) != TEMPLATE_PH_OK)
			goto fail;
		const char *name = open + TEMPLATE_OPEN_LEN;
		const char *value = template_lookup(vars, nvars, name, name_len);
		if (value == NULL || !template_append(&b, value, strlen(value)))
			goto fail;
		p = name + name_len + TEMPLATE_CLOSE_LEN;
	}
	if (!template_append(&b, p, strlen(p)))
		goto fail;
	return b.p;

fail:
	free(b.p);
	return NULL;
}
