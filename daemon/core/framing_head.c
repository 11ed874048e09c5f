/*
 * framing_head.c - the request head: checking a request line and header
 * fields against RFC 9112 before evhttp parses them, and passing a head on
 * without the fields the framing replaces (framing_impl.h).
 */
#include "core/framing.h"
#include "core/framing_impl.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CL_DIGITS_MAX 18 /* fits int64 */

static const char *const METHODS[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};

/* RFC 9110 5.6.2 token characters */
static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* The line at p without its LF or CRLF (as evhttp reads lines); *next follows it. */
static size_t line_at(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t l = (size_t)((nl ? nl : end) - p);
	*next = nl ? nl + 1 : end;
	if (l > 0 && p[l - 1] == '\r')
		l--;
	return l;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* method SP request-target SP HTTP-version, nothing else (RFC 9112 3) */
static const char *check_request_line(const char *p, size_t l, struct head *h)
{
	size_t m = 0;
	while (m < l && is_tchar((unsigned char)p[m]))
		m++;
	if (m == 0 || m >= l || p[m] != ' ')
		return FRAMING_BAD_REQUEST;
	size_t t0 = m + 1, t = t0;
	while (t < l && (unsigned char)p[t] > ' ' && (unsigned char)p[t] < 0x7f)
		t++;
	if (t == t0 || t >= l || p[t] != ' ')
		return FRAMING_BAD_REQUEST;
	const char *v = p + t + 1;
	size_t vl = l - t - 1;
	if (vl != 8 || (memcmp(v, "HTTP/1.1", 8) != 0 && memcmp(v, "HTTP/1.0", 8) != 0))
		return FRAMING_BAD_REQUEST;
	h->http11 = v[7] == '1';

	bool known = false;
	for (size_t i = 0; i < sizeof(METHODS) / sizeof(METHODS[0]) && !known; i++) {
		known = m == strlen(METHODS[i]) && memcmp(p, METHODS[i], m) == 0;
		h->head_method = known && strcmp(METHODS[i], "HEAD") == 0;
	}
	if (!known)
		return FRAMING_METHOD; /* TRACE, CONNECT and anything unknown */

	/* evhttp's own parser, with evhttp's flags: it must not refuse what passes */
	char *target = strndup(p + t0, t - t0);
	if (!target)
		return FRAMING_INTERNAL;
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
	free(target);
	if (!u)
		return FRAMING_BAD_REQUEST;
	evhttp_uri_free(u);
	return NULL;
}

/* field-name ":" OWS field-value OWS (RFC 9112 5); the framing fields noted */
static const char *check_field(const char *p, size_t l, struct head *h)
{
	if (p[0] == ' ' || p[0] == '\t')
		return FRAMING_BAD_REQUEST; /* obs-fold: refused (RFC 9112 5.2) */
	size_t n = 0;
	while (n < l && is_tchar((unsigned char)p[n]))
		n++;
	if (n == 0 || n >= l || p[n] != ':')
		return FRAMING_BAD_REQUEST; /* no whitespace before the colon either */
	const char *v = p + n + 1, *ve = p + l;
	for (const char *q = v; q < ve; q++) {
		unsigned char ch = (unsigned char)*q;
		if ((ch < ' ' && ch != '\t') || ch == 0x7f)
			return FRAMING_BAD_REQUEST; /* NUL, CR, other controls */
	}
	while (v < ve && (*v == ' ' || *v == '\t'))
		v++;
	while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
		ve--;
	size_t vl = (size_t)(ve - v);

	if (name_is(p, n, "Content-Length")) {
		int64_t x = 0;
		if (vl == 0 || vl > CL_DIGITS_MAX)
			return FRAMING_LENGTH;
		for (size_t i = 0; i < vl; i++) {
			if (v[i] < '0' || v[i] > '9')
				return FRAMING_LENGTH; /* also "5, 5" and "+5" */
			x = x * 10 + (v[i] - '0');
		}
		if (h->has_cl && x != h->cl)
			return FRAMING_LENGTH;
		h->has_cl = true;
		h->cl = x;
	} else if (name_is(p, n, "Transfer-Encoding")) {
		if (h->chunked)
			return FRAMING_LENGTH; /* chunked twice */
		if (!(vl == strlen("chunked") && strncasecmp(v, "chunked", vl) == 0))
			return FRAMING_CODING;
		h->chunked = true;
	} else if (name_is(p, n, "Expect")) {
		if (vl == strlen("100-continue") && strncasecmp(v, "100-continue", vl) == 0)
			h->expect_continue = true;
		else
			h->expect_other = true;
	} else if (name_is(p, n, FRAMING_HEADER)) {
		h->has_mark = true;
	}
	return NULL;
}

/* The head checked as a whole (framing_impl.h). */
const char *framing_check_head(const char *head, size_t len, struct head *h)
{
	const char *p = head, *end = head + len, *next;
	const char *fault;

	size_t l = line_at(p, end, &next);
	if ((fault = check_request_line(p, l, h)) != NULL)
		return fault;
	for (p = next; p < end; p = next) {
		l = line_at(p, end, &next);
		if (l == 0)
			break;
		if ((fault = check_field(p, l, h)) != NULL)
			return fault;
	}
	if (h->chunked && h->has_cl)
		return FRAMING_CL_TE; /* request smuggling's favourite (RFC 9112 6.3) */
	if (h->chunked && !h->http11)
		return FRAMING_LENGTH; /* RFC 9112 6.1: faulty framing in HTTP/1.0 */
	if (h->head_method && (h->chunked || h->cl > 0))
		return FRAMING_LENGTH; /* evhttp would read the body as the next request */
	if (h->http11 && h->expect_other)
		return FRAMING_EXPECT;
	return NULL;
}

/* The head passed on, with the framing fields dropped (framing_impl.h). */
void framing_emit_head(struct evbuffer *out, const char *head, size_t len, bool reframe,
		       const char *extra)
{
	const char *p = head, *end = head + len, *next;

	for (bool first = true; p < end; first = false, p = next) {
		size_t l = line_at(p, end, &next);
		if (l == 0)
			break;
		const char *colon = first ? NULL : memchr(p, ':', l);
		size_t n = colon ? (size_t)(colon - p) : 0;
		bool drop = colon && (name_is(p, n, FRAMING_HEADER) ||
				      (reframe && (name_is(p, n, "Content-Length") ||
						   name_is(p, n, "Transfer-Encoding") ||
						   name_is(p, n, "Expect"))));
		if (!drop)
			evbuffer_add(out, p, (size_t)(next - p));
	}
	if (extra)
		evbuffer_add(out, extra, strlen(extra));
	evbuffer_add(out, "\r\n", 2);
}
