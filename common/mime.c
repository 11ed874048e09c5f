/*
 * mime.c - renders a berichtd mail (single text/plain part) as RFC 5322 /
 * MIME text with CRLF line endings.
 *
 * Safety comes first: every field that ends up in a header is validated
 * before anything is written, so a CR or LF in user data can never start a
 * new header. Readability second: plain ASCII subjects and names are kept
 * as they are; everything else becomes RFC 2047 "B" encoded-words, which
 * any mail client decodes and which fold cleanly within 78 columns.
 *
 * The body is quoted-printable (RFC 2045 §6.7). Besides the mandatory
 * rules we also encode a '.' or "From " at the start of an encoded line,
 * so the text survives dot-stuffing bugs and mbox "From " mangling.
 */
#include "mime.h"
#include "mime_impl.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char MIME_EW_PREFIX[] = "=?UTF-8?B?";
static const char MIME_EW_SUFFIX[] = "?=";
/* Length of prefix + suffix around the base64 text of an encoded-word. */
#define MIME_EW_OVERHEAD (sizeof MIME_EW_PREFIX - 1 + sizeof MIME_EW_SUFFIX - 1)

static const char MIME_CRLF[] = "\r\n";
static const char MIME_FOLD[] = "\r\n "; /* CRLF + one space continues a header */

static const char mime_b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char mime_hex_upper[] = "0123456789ABCDEF";

static const char *const mime_wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const mime_month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* ------------------------------------------------------------------ */
/* Output buffer. Appends never fail visibly: the first allocation     */
/* failure sets `failed` and later appends are ignored, so the builder  */
/* checks once at the end.                                              */

struct mime_out {
	char *p;
	size_t len;
	size_t cap;
	size_t col; /* characters on the current line so far */
	bool failed;
};

static void mo_putn(struct mime_out *o, const char *s, size_t n)
{
	if (o->failed)
		return;
	if (o->cap - o->len < n + 1) {
		size_t cap = o->cap ? o->cap : MIME_INITIAL_CAP;
		while (cap - o->len < n + 1)
			cap *= 2;
		char *np = realloc(o->p, cap);
		if (np == NULL) {
			o->failed = true;
			return;
		}
		o->p = np;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	o->col += n;
}

static void mo_puts(struct mime_out *o, const char *s)
{
	mo_putn(o, s, strlen(s));
}

static void mo_putc(struct mime_out *o, char c)
{
	mo_putn(o, &c, 1);
}

static void mo_crlf(struct mime_out *o)
{
	mo_puts(o, MIME_CRLF);
	o->col = 0;
}

/* CRLF + space: the next text continues the current header. */
static void mo_fold(struct mime_out *o)
{
	mo_puts(o, MIME_FOLD);
	o->col = sizeof MIME_FOLD - 1 - (sizeof MIME_CRLF - 1);
}

/* ------------------------------------------------------------------ */
/* Header encoding                                                      */

static void mime_put_base64(struct mime_out *o, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i += MIME_B64_GROUP_IN) {
		const size_t k = n - i < MIME_B64_GROUP_IN ? n - i : MIME_B64_GROUP_IN;
		uint32_t v = 0;
		for (size_t j = 0; j < MIME_B64_GROUP_IN; j++)
			v = v << MIME_BITS_PER_BYTE | (j < k ? s[i + j] : 0);
		char quad[MIME_B64_GROUP_OUT];
		for (size_t j = 0; j < MIME_B64_GROUP_OUT; j++) {
			const unsigned shift =
				(unsigned)(MIME_B64_GROUP_OUT - 1 - j) * MIME_B64_BITS;
			if (j <= k)
				quad[j] = mime_b64_alphabet[(v >> shift) & MIME_B64_MASK];
			else
				quad[j] = '='; /* padding */
		}
		mo_putn(o, quad, sizeof quad);
	}
}

/* Base64 payload bytes that fit in an encoded-word of at most `width` chars. */
static size_t mime_ew_capacity(size_t width)
{
	if (width > MIME_ENCODED_WORD_MAX)
		width = MIME_ENCODED_WORD_MAX;
	if (width < MIME_EW_OVERHEAD + MIME_B64_GROUP_OUT)
		return 0;
	return (width - MIME_EW_OVERHEAD) / MIME_B64_GROUP_OUT * MIME_B64_GROUP_IN;
}

/* Longest prefix of s[0..n) made of whole UTF-8 characters, <= cap bytes. */
static size_t mime_utf8_prefix(const unsigned char *s, size_t n, size_t cap)
{
	size_t used = 0;
	while (used < n) {
		const size_t k = utf8_seq_len(s + used, n - used);
		if (used + k > cap)
			break;
		used += k;
	}
	return used;
}

/*
 * Writes s as a run of "=?UTF-8?B?...?=" words starting at the current
 * column (the caller has just written "Name: "). Adjacent words are
 * separated by a space or a fold; RFC 2047 §6.2 makes decoders drop that
 * whitespace, so the text may be cut anywhere between characters. s must be
 * valid UTF-8 (checked by mime_mail_valid).
 */
static void mime_put_encoded_words(struct mime_out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	bool first = true;
	while (n > 0) {
		const size_t sep = first ? 0 : 1;
		const size_t room = o->col + sep < MIME_HEADER_LINE_MAX
					    ? MIME_HEADER_LINE_MAX - o->col - sep
					    : 0;
		size_t take = mime_utf8_prefix(p, n, mime_ew_capacity(room));
		if (take == 0) {
			mo_fold(o);
			take = mime_utf8_prefix(p, n,
						mime_ew_capacity(MIME_HEADER_LINE_MAX - o->col));
		} else if (!first) {
			mo_putc(o, ' ');
		}
		mo_puts(o, MIME_EW_PREFIX);
		mime_put_base64(o, p, take);
		mo_puts(o, MIME_EW_SUFFIX);
		p += take;
		n -= take;
		first = false;
	}
}

/*
 * Start of the next fold point in s at or after `from`: the first
 * whitespace of a run that is followed by more text (folding before
 * trailing whitespace would leave a blank continuation line). Returns n if
 * there is none.
 */
static size_t mime_next_fold(const char *s, size_t n, size_t from)
{
	for (size_t i = from; i < n; i++) {
		if (!mime_is_wsp((unsigned char)s[i]) ||
		    (i > 0 && mime_is_wsp((unsigned char)s[i - 1])))
			continue;
		size_t j = i;
		while (j < n && mime_is_wsp((unsigned char)s[j]))
			j++;
		if (j < n)
			return i;
	}
	return n;
}

/*
 * True if the unstructured ASCII text s can be written verbatim after a
 * header name of `name_len` characters ("Subject: ") and folded at
 * whitespace so that every line fits. Text that looks like an encoded-word
 * is not verbatim-safe: a reader would decode it.
 */
static bool mime_ascii_foldable(const char *s, size_t name_len)
{
	const size_t n = strlen(s);
	if (strstr(s, "=?") != NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (!mime_is_print(c) && c != '\t')
			return false;
	}
	size_t start = 0, col = name_len;
	while (start < n) {
		const size_t end = mime_next_fold(s, n, start + 1);
		if (col + (end - start) > MIME_HEADER_LINE_MAX)
			return false;
		col = 0;
		start = end;
	}
	return true;
}

/* Writes foldable ASCII (see above), folding only where needed. */
static void mime_put_folded_ascii(struct mime_out *o, const char *s)
{
	const size_t n = strlen(s);
	size_t start = 0;
	while (start < n) {
		const size_t end = mime_next_fold(s, n, start + 1);
		if (start > 0 && o->col + (end - start) > MIME_HEADER_LINE_MAX)
			mo_crlf(o); /* the segment starts with whitespace: a valid fold */
		mo_putn(o, s + start, end - start);
		start = end;
	}
}

static void mime_put_subject(struct mime_out *o, const char *subject)
{
	static const char name[] = "Subject: ";
	if (*subject == '\0') {
		mo_puts(o, "Subject:");
	} else {
		mo_puts(o, name);
		if (mime_ascii_foldable(subject, sizeof name - 1))
			mime_put_folded_ascii(o, subject);
		else
			mime_put_encoded_words(o, subject);
	}
	mo_crlf(o);
}

/* True if s is atoms separated by single spaces (an RFC 5322 phrase). */
static bool mime_is_plain_phrase(const char *s)
{
	const size_t n = strlen(s);
	if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (c == ' ') {
			if (s[i + 1] == ' ')
				return false;
		} else if (!mime_is_atext(c)) {
			return false;
		}
	}
	return true;
}

/* Printable ASCII that is not mistaken for an encoded-word. */
static bool mime_is_quotable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (!mime_is_print(*p))
			return false;
	return strstr(s, "=?") == NULL;
}

/* Length of s as a quoted-string: quotes plus a backslash per " or \. */
static size_t mime_quoted_len(const char *s)
{
	size_t n = 2;
	for (; *s; s++)
		n += (*s == '"' || *s == '\\') ? 2 : 1;
	return n;
}

static void mime_put_display_name(struct mime_out *o, const char *name)
{
	const bool plain = mime_is_plain_phrase(name) && strstr(name, "=?") == NULL;
	if (plain && o->col + strlen(name) <= MIME_HEADER_LINE_MAX) {
		mo_puts(o, name);
	} else if (mime_is_quotable(name) &&
		   o->col + mime_quoted_len(name) <= MIME_HEADER_LINE_MAX) {
		mo_putc(o, '"');
		for (const char *p = name; *p; p++) {
			if (*p == '"' || *p == '\\')
				mo_putc(o, '\\');
			mo_putc(o, *p);
		}
		mo_putc(o, '"');
	} else {
		mime_put_encoded_words(o, name);
	}
}

static void mime_put_from(struct mime_out *o, const char *name, const char *addr)
{
	mo_puts(o, "From: ");
	if (name == NULL || *name == '\0') {
		mo_puts(o, addr);
	} else {
		mime_put_display_name(o, name);
		const size_t angle_len = strlen(addr) + 2;
		if (o->col + 1 + angle_len > MIME_HEADER_LINE_MAX)
			mo_fold(o);
		else
			mo_putc(o, ' ');
		mo_putc(o, '<');
		mo_puts(o, addr);
		mo_putc(o, '>');
	}
	mo_crlf(o);
}

static void mime_put_simple(struct mime_out *o, const char *name, const char *value)
{
	mo_puts(o, name);
	mo_puts(o, ": ");
	mo_puts(o, value);
	mo_crlf(o);
}

/* RFC 5322 date in UTC, e.g. "Sun, 29 Nov 2026 20:16:13 +0000". */
static bool mime_format_date(int64_t unix_s, char out[MIME_DATE_BUF])
{
	const time_t t = (time_t)unix_s;
	struct tm tm;
	if ((int64_t)t != unix_s || gmtime_r(&t, &tm) == NULL)
		return false;
	const long year = (long)tm.tm_year + MIME_TM_YEAR_BASE;
	if (year < MIME_YEAR_MIN || year > MIME_YEAR_MAX)
		return false;
	const int n = snprintf(out, MIME_DATE_BUF, "%s, %02d %s %04ld %02d:%02d:%02d +0000",
			       mime_wday[tm.tm_wday], tm.tm_mday, mime_month[tm.tm_mon], year,
			       tm.tm_hour, tm.tm_min, tm.tm_sec);
	return n > 0 && n < MIME_DATE_BUF;
}

/* ------------------------------------------------------------------ */
/* Quoted-printable body                                                */

/*
 * Encodes the character at line[i] (of `len` bytes, `clen` bytes long) into
 * tok, as it must appear when the encoded line is at column `col`. Returns
 * the token length.
 */
static size_t mime_qp_token(const unsigned char *line, size_t len, size_t i, size_t clen,
			    size_t col, char tok[MIME_QP_TOKEN_MAX])
{
	static const char from_[] = "From ";
	const size_t from_len = sizeof from_ - 1;
	const unsigned char c = line[i];
	const bool is_wsp = (c == '\t' || c == ' ');
	bool encode;
	if (is_wsp)
		encode = (i + clen == len); /* trailing whitespace is stripped in transit */
	else
		encode =
			clen > 1 || c == '=' || c < MIME_CHAR_SPACE || c == MIME_CHAR_DEL ||
			(col == 0 && c == '.') ||
			(col == 0 && len - i >= from_len && memcmp(line + i, from_, from_len) == 0);

	if (!encode) {
		tok[0] = (char)c;
		return 1;
	}
	size_t n = 0;
	for (size_t k = 0; k < clen; k++) {
		tok[n++] = '=';
		tok[n++] = mime_hex_upper[line[i + k] >> MIME_NIBBLE_BITS];
		tok[n++] = mime_hex_upper[line[i + k] & MIME_NIBBLE_MASK];
	}
	return n;
}

static void mime_qp_line(struct mime_out *o, const unsigned char *line, size_t len)
{
	size_t i = 0;
	o->col = 0;
	while (i < len) {
		const size_t clen = utf8_seq_len(line + i, len - i); /* >= 1: validated */
		const bool last = (i + clen == len);
		char tok[MIME_QP_TOKEN_MAX];
		size_t tlen = mime_qp_token(line, len, i, clen, o->col, tok);
		/* A soft break "=" needs one column unless this ends the line. */
		const size_t limit = last ? MIME_QP_LINE_MAX : MIME_QP_LINE_MAX - 1;
		if (o->col + tlen > limit) {
			mo_putc(o, '=');
			mo_crlf(o);
			tlen = mime_qp_token(line, len, i, clen, o->col, tok);
		}
		mo_putn(o, tok, tlen);
		i += clen;
	}
	mo_crlf(o);
}

/* Splits body at "\r\n", "\n" or a lone "\r"; a final line break adds no
 * empty line. Every line, the last included, ends in CRLF. */
static void mime_put_body(struct mime_out *o, const char *body)
{
	const unsigned char *p = (const unsigned char *)body;
	const size_t n = strlen(body);
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && p[i] != '\n' && p[i] != '\r')
			continue;
		if (i == n && start == n && n > 0)
			break; /* body ended with a line break */
		mime_qp_line(o, p + start, i - start);
		if (i < n && p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		start = i + 1;
	}
}

/* ------------------------------------------------------------------ */

char *mime_build(const struct mime_mail *m, size_t *len_out)
{
	char date[MIME_DATE_BUF];
	if (!mime_mail_valid(m) || !mime_format_date(m->date_unix, date))
		return NULL;

	struct mime_out o = {0};
	mime_put_simple(&o, "Date", date);
	mime_put_from(&o, m->from_name, m->from_addr);
	mime_put_simple(&o, "To", m->to_addr);
	mime_put_subject(&o, m->subject);
	mime_put_simple(&o, "Message-ID", m->message_id);
	mime_put_simple(&o, "MIME-Version", "1.0");
	mime_put_simple(&o, "Content-Type", "text/plain; charset=UTF-8");
	mime_put_simple(&o, "Content-Transfer-Encoding", "quoted-printable");
	if (m->language != NULL)
		mime_put_simple(&o, "Content-Language", m->language);
	mime_put_simple(&o, "Auto-Submitted", "auto-generated");
	mime_put_simple(&o, "X-Auto-Response-Suppress", "All");
	mo_crlf(&o);
	mime_put_body(&o, m->body);

	if (o.failed) {
		free(o.p);
		return NULL;
	}
	if (len_out != NULL)
		*len_out = o.len;
	return o.p;
}
