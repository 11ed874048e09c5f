/*
 * mime_check.c - what mime.c accepts before it builds a mail: character
 * classes, addresses, Message-IDs, language tags, header safety (mime.h,
 * mime_impl.h). Pure; thread-safe.
 */
#include "mime.h"
#include "mime_impl.h"
#include "utf8.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Character classes                                                   */

static bool mime_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool mime_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
bool mime_is_atext(unsigned char c)
{
	return mime_is_alpha(c) || mime_is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

bool mime_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Printable ASCII including space. */
bool mime_is_print(unsigned char c)
{
	return c >= MIME_CHAR_SPACE && c < MIME_CHAR_DEL;
}

static bool mime_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	while (n > 0) {
		const size_t k = utf8_seq_len(p, n);
		if (k == 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Validation of header fields                                         */

bool mime_header_safe(const char *s)
{
	if (s == NULL)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < MIME_CHAR_SPACE && *p != '\t') || *p == MIME_CHAR_DEL)
			return false;
	return true;
}

/* Local part: dot-separated runs of allowed printable characters. */
static bool mime_local_valid(const char *s, size_t n)
{
	if (n == 0 || n > MIME_LOCAL_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (!mime_is_print(c) || c == ' ' || strchr("<>()[],;:\"\\@", c))
			return false;
		if (c == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

/* Domain: LDH labels separated by single dots. */
static bool mime_domain_valid(const char *s, size_t n)
{
	size_t label = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (label == 0 || label > MIME_LABEL_MAX || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		const unsigned char c = (unsigned char)s[i];
		if (!mime_is_alpha(c) && !mime_is_digit(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		label++;
	}
	return true;
}

bool mime_addr_valid(const char *addr)
{
	if (addr == NULL)
		return false;
	const size_t n = strlen(addr);
	if (n < MIME_ADDR_MIN || n > MIME_ADDR_MAX)
		return false;
	const char *at = strchr(addr, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return false;
	const size_t local_len = (size_t)(at - addr);
	return mime_local_valid(addr, local_len) && mime_domain_valid(at + 1, n - local_len - 1);
}

/* RFC 5322 dot-atom-text: atext runs separated by single dots. */
static bool mime_dot_atom_valid(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !mime_is_atext(c))
			return false;
	}
	return true;
}

/* "<left@right>", both sides dot-atom-text (no '@' in either). */
static bool mime_msgid_valid(const char *s)
{
	const size_t n = strlen(s);
	if (n > MIME_MSGID_MAX || n < 2 || s[0] != '<' || s[n - 1] != '>')
		return false;
	const char *inner = s + 1;
	const size_t inner_len = n - 2;
	const char *at = memchr(inner, '@', inner_len);
	if (at == NULL)
		return false;
	const size_t left_len = (size_t)(at - inner);
	return mime_dot_atom_valid(inner, left_len) &&
	       mime_dot_atom_valid(at + 1, inner_len - left_len - 1) &&
	       memchr(at + 1, '@', inner_len - left_len - 1) == NULL;
}

/* Language tag: ALPHA{1,8} ("-" ALNUM{1,8})*, at most 35 chars. */
static bool mime_language_valid(const char *s)
{
	const size_t n = strlen(s);
	if (n == 0 || n > MIME_LANG_MAX)
		return false;
	size_t sub = 0;
	bool first = true;
	for (size_t i = 0; i <= n; i++) {
		const unsigned char c = (unsigned char)s[i];
		if (i == n || c == '-') {
			if (sub == 0)
				return false;
			sub = 0;
			first = false;
			continue;
		}
		if (!mime_is_alpha(c) && (first || !mime_is_digit(c)))
			return false;
		if (++sub > MIME_LANG_SUBTAG_MAX)
			return false;
	}
	return true;
}

bool mime_mail_valid(const struct mime_mail *m)
{
	if (m == NULL || m->subject == NULL || m->body == NULL || m->message_id == NULL)
		return false;
	if (!mime_addr_valid(m->from_addr) || !mime_addr_valid(m->to_addr))
		return false;
	if (!mime_header_safe(m->subject) || !mime_utf8_valid(m->subject))
		return false;
	if (m->from_name != NULL &&
	    (!mime_header_safe(m->from_name) || !mime_utf8_valid(m->from_name)))
		return false;
	if (!mime_header_safe(m->message_id) || !mime_msgid_valid(m->message_id))
		return false;
	if (m->language != NULL &&
	    (!mime_header_safe(m->language) || !mime_language_valid(m->language)))
		return false;
	return mime_utf8_valid(m->body);
}
