/*
 * http_input.c - what a request brings besides its path (http.h,
 * http_impl.h): the JSON body, its Content-Type checked, and the query
 * parameters against the route's "{?...}" list.
 */
#include "core/http.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/http_impl.h"
#include "core/route.h"

bool http_query_problems(const struct http_req *r, const struct http_route *route, json_t *invalid,
			 bool syntax)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	bool ok = true;

	if (!qs || !*qs)
		return true;
	if (evhttp_parse_query_str(qs, &q) != 0) {
		if (syntax)
			http_invalid_add(
				invalid, "query", "syntax",
				"De query-string is ongeldig (naam=waarde, gescheiden door &).");
		evhttp_clear_headers(&q);
		return !syntax;
	}
	for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
		const char *name = route_name_echoable(kv->key) ? kv->key : "query";
		if (!route_query_listed(route->pattern, kv->key)) {
			http_invalid_add(invalid, name, "unknownParameter",
					 "Deze operatie kent deze query-parameter niet.");
			ok = false;
			continue;
		}
		for (struct evkeyval *e = q.tqh_first; e != kv; e = e->next.tqe_next) {
			if (strcmp(e->key, kv->key) == 0) {
				http_invalid_add(invalid, name, "duplicate",
						 "Geef deze parameter maar een keer.");
				ok = false;
				break;
			}
		}
	}
	evhttp_clear_headers(&q);
	return ok;
}

void http_query_check(struct http_req *r, json_t *invalid)
{
	if (r->route)
		http_query_problems(r, r->route, invalid, false);
}

static bool is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * The request's one Content-Type is application/json, optionally with
 * parameters (RFC 9110 8.3.1: type "/" subtype *( OWS ";" OWS [ parameter ] )).
 * Not a prefix: application/jsonx or application/json-seq are other types.
 * A charset, if given, must be UTF-8 (RFC 8259 8.1).
 */
static bool is_json_content_type(struct evkeyvalq *headers)
{
	static const char want[] = "application/json";
	const char *ctype = NULL;

	for (struct evkeyval *kv = headers->tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Content-Type") != 0)
			continue;
		if (ctype)
			return false; /* two of them: which one would a proxy have checked? */
		ctype = kv->value;
	}
	if (!ctype || strncasecmp(ctype, want, sizeof(want) - 1) != 0)
		return false;
	const char *p = skip_ows(ctype + sizeof(want) - 1);
	while (*p) {
		if (*p != ';')
			return false;
		p = skip_ows(p + 1);
		if (*p == ';' || *p == '\0')
			continue; /* an empty parameter is allowed */
		const char *name = p;
		while (is_tchar((unsigned char)*p))
			p++;
		size_t nlen = (size_t)(p - name);
		if (nlen == 0 || *p != '=')
			return false;
		const char *val = ++p;
		size_t vlen;
		if (*p == '"') {
			val = ++p;
			while (*p && *p != '"')
				p += (*p == '\\' && p[1]) ? 2 : 1;
			if (*p != '"')
				return false;
			vlen = (size_t)(p - val);
			p++;
		} else {
			while (is_tchar((unsigned char)*p))
				p++;
			vlen = (size_t)(p - val);
			if (vlen == 0)
				return false;
		}
		if (nlen == strlen("charset") && strncasecmp(name, "charset", nlen) == 0 &&
		    !(vlen == strlen("utf-8") && strncasecmp(val, "utf-8", vlen) == 0))
			return false;
		p = skip_ows(p);
	}
	return true;
}

bool http_read_json_body(struct http_req *r, bool optional)
{
	struct evhttp_request *ev = r->ev;
	struct evbuffer *in = evhttp_request_get_input_buffer(ev);
	size_t len = evbuffer_get_length(in);
	if (optional && len == 0)
		return true;
	if (!is_json_content_type(evhttp_request_get_input_headers(ev))) {
		http_problem(r, 415, "niet-ondersteund-mediatype", "Niet ondersteund mediatype",
			     "Stuur de body als application/json (UTF-8), met Content-Type: "
			     "application/json.");
		return false;
	}
	const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	json_error_t jerr;
	r->body = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r->body || !json_is_object(r->body)) {
		char detail[256];
		snprintf(detail, sizeof(detail), "De body is geen geldig JSON-object%s%s.",
			 r->body ? "" : ": ", r->body ? "" : jerr.text);
		http_problem(r, 400, "ongeldige-json", "Ongeldige JSON", detail);
		return false;
	}
	return true;
}
