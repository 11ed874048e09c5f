/*
 * problem.c - the answers of http.h: JSON, text, problem+json (RFC 9457),
 * and the problems many handlers share. Each one sends the reply, writes
 * the request's access line and frees the request context.
 *
 * The access line (msg=access) names the route, never what filled it in:
 * path is the route's pattern ("/v1/accounts/{}"), or for an unknown path
 * the path with each segment that could be an identifier replaced by {};
 * query lists only the names of parameters the route takes. With method,
 * status, bytes (of the body), duration_ms, role (of the token, never the
 * token) and request_id.
 */
#include "core/http.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "core/auth.h"
#include "core/framing.h"
#include "core/http_impl.h"

#define LOG_PATH_MAX 256
#define LOG_QUERY_MAX 256
/* a path segment longer than this, or with more digits, may be an identifier */
#define SEGMENT_KEEP_MAX 32
#define SEGMENT_DIGITS_MAX 2

#define RETRY_AFTER_S "5"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "";
	}
}

static void req_free(struct http_req *r)
{
	if (r->body)
		json_decref(r->body);
	free(r->path);
	free(r);
}

/* Whether a segment of an unknown path is a plain word ("v1", "berichten"), kept as is. */
static bool segment_plain(const char *s, size_t n)
{
	size_t digits = 0;

	if (n > SEGMENT_KEEP_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9')
			digits++;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
			   c == '_' || c == '.'))
			return false;
	}
	return digits <= SEGMENT_DIGITS_MAX;
}

void http_log_path(const struct http_req *r, char *out, size_t size)
{
	if (r->route) {
		const char *p = r->route->pattern;
		/* the pattern's {} captures stay: cut only at the query list */
		const char *q = strstr(p, "{?");
		snprintf(out, size, "%.*s", (int)(q ? (size_t)(q - p) : strlen(p)), p);
		return;
	}
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
	const char *path = r->path ? r->path : uri ? evhttp_uri_get_path(uri) : NULL;
	size_t n = 0;

	out[0] = '\0';
	if (!path || *path != '/') {
		snprintf(out, size, "-");
		return;
	}
	while (*path == '/' && n + 1 < size) {
		path++;
		size_t len = strcspn(path, "/");
		int w = segment_plain(path, len)
				? snprintf(out + n, size - n, "/%.*s", (int)len, path)
				: snprintf(out + n, size - n, "/{}");
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
		path += len;
	}
}

/* The names of the query parameters the matched route takes, "a,b"; "" for none. */
static void log_query(const struct http_req *r, char *out, size_t size)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	size_t n = 0;

	out[0] = '\0';
	if (!r->route || !qs || !*qs || evhttp_parse_query_str(qs, &q) != 0)
		return;
	for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next) {
		if (!route_query_listed(r->route->pattern, kv->key))
			continue; /* a name the route does not have could be anything */
		int w = snprintf(out + n, size - n, "%s%s", n ? "," : "", kv->key);
		if (w < 0 || (size_t)w >= size - n)
			break;
		n += (size_t)w;
	}
	evhttp_clear_headers(&q);
}

/* The access line of r, then r is freed; the thread has no request any more. */
static void req_done(struct http_req *r, int status, size_t bytes)
{
	if (strcmp(r->listener, "http") == 0) /* the API's; scrapes would only count themselves */
		metrics_http_observe(&r->app->metrics.http, r->route,
				     r->route ? r->route->pattern : NULL,
				     r->route ? http_method_name(r->route->method) : NULL, status,
				     clock_mono_us() - r->start_us);
	if (log_enabled(LOG_INFO)) {
		char path[LOG_PATH_MAX], query[LOG_QUERY_MAX];
		const char *method = http_method_name(evhttp_request_get_command(r->ev));
		http_log_path(r, path, sizeof(path));
		log_query(r, query, sizeof(query));
		log_set_request_id(r->id);
		log_kv(LOG_INFO, "access", LOG_STR("listener", r->listener),
		       LOG_STR("method", method ? method : "-"), LOG_STR("path", path),
		       LOG_STR("query", query), LOG_INT("status", status),
		       LOG_INT("bytes", (long long)bytes),
		       LOG_MS("duration_ms", (double)(clock_mono_us() - r->start_us) / 1000.0),
		       LOG_STR("role", auth_role_name(r->role)));
	}
	log_set_request_id(NULL);
	req_free(r);
}

static void send_body(struct http_req *r, int status, const char *ctype, json_t *body)
{
	struct evbuffer *buf = NULL;
	size_t bytes = 0;

	if (body) {
		char *text = json_dumps(body, JSON_COMPACT);
		json_decref(body);
		buf = evbuffer_new();
		if (text && buf) {
			bytes = strlen(text);
			evbuffer_add(buf, text, bytes);
			evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Type",
					  ctype);
		}
		free(text);
	}
	evhttp_send_reply(r->ev, status, status_reason(status), buf);
	if (buf)
		evbuffer_free(buf);
	req_done(r, status, bytes);
}

void http_reply_json(struct http_req *r, int status, json_t *body)
{
	send_body(r, status, "application/json", body);
}

void http_reply_text(struct http_req *r, int status, const char *ctype, const char *text,
		     size_t len)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf) {
		evbuffer_add(buf, text, len);
		evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Type", ctype);
	}
	evhttp_send_reply(r->ev, status, status_reason(status), buf);
	if (buf)
		evbuffer_free(buf);
	req_done(r, status, buf ? len : 0);
}

void http_reply_created(struct http_req *r, const char *location, json_t *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Location", location);
	send_body(r, 201, "application/json", body);
}

static json_t *problem_body(const struct http_req *r, int status, const char *type,
			    const char *title, const char *detail)
{
	char typeuri[512];
	snprintf(typeuri, sizeof(typeuri), "%s%s", r->app->cfg->http_problem_base, type);
	json_t *p = json_pack("{s:s, s:s, s:i}", "type", typeuri, "title", title, "status", status);
	if (p && detail)
		json_object_set_new(p, "detail", json_string(detail));
	return p;
}

void http_problem(struct http_req *r, int status, const char *type, const char *title,
		  const char *detail)
{
	send_body(r, status, "application/problem+json",
		  problem_body(r, status, type, title, detail));
}

void http_problem_invalid(struct http_req *r, json_t *invalid_params)
{
	json_t *p = problem_body(r, 400, "ongeldige-invoer", "Ongeldige invoer",
				 "Een of meer velden zijn ongeldig; zie invalidParams.");
	if (p)
		json_object_set_new(p, "invalidParams", invalid_params);
	else
		json_decref(invalid_params);
	send_body(r, 400, "application/problem+json", p);
}

void http_problem_unavailable(struct http_req *r, const char *detail)
{
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Retry-After", RETRY_AFTER_S);
	http_problem(r, 503, "niet-beschikbaar", "Tijdelijk niet beschikbaar", detail);
}

void http_problem_rate_limited(struct http_req *r, int64_t retry_after_s)
{
	char secs[24];
	snprintf(secs, sizeof(secs), "%lld", (long long)retry_after_s);
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Retry-After", secs);
	http_problem(r, 429, "te-veel-verzoeken", "Te veel verzoeken",
		     "De afzender stuurt meer berichten, of zoekt meer BSN's op, per seconde dan "
		     "is toegestaan; probeer het na Retry-After seconden opnieuw.");
}

void http_invalid_add(json_t *arr, const char *name, const char *code, const char *reason)
{
	json_array_append_new(
		arr, json_pack("{s:s, s:s, s:s}", "name", name, "code", code, "reason", reason));
}

void http_problem_internal(struct http_req *r)
{
	http_problem(r, 500, "interne-fout", "Interne fout", NULL);
}

void http_problem_not_found(struct http_req *r, const char *detail)
{
	http_problem(r, 404, "niet-gevonden", "Niet gevonden", detail);
}

bool http_uuid_param(struct http_req *r, int i, uuid_t7 *out, const char *detail)
{
	uuid_t7 u;

	if (i >= 0 && i < HTTP_MAX_PARAMS && r->params[i] &&
	    uuid_parse(r->params[i], out ? out : &u))
		return true;
	http_problem_not_found(r, detail);
	return false;
}

void http_invalid_sink(void *arr, const char *name, const char *code, const char *reason)
{
	http_invalid_add(arr, name, code, reason);
}

/*
 * The answer to a request framing.c replaced or marked. All but the 413
 * close the connection (the request asked for that): after a malformed
 * head nothing on it can be trusted.
 */
void http_problem_framing(struct http_req *r, const char *fault)
{
	static const struct {
		const char *fault;
		int status;
		const char *type, *title, *detail;
	} faults[] = {
		{FRAMING_BAD_REQUEST, 400, "ongeldig-verzoek", "Ongeldig verzoek",
		 "De request-line of een header voldoet niet aan HTTP/1.1 (RFC 9112)."},
		{FRAMING_LENGTH, 400, "ongeldig-verzoek", "Ongeldig verzoek",
		 "De lengte van de body is onduidelijk: een ongeldige of dubbele Content-Length, "
		 "Transfer-Encoding in HTTP/1.0, of een body bij HEAD."},
		{FRAMING_CL_TE, 400, "ongeldig-verzoek", "Ongeldig verzoek",
		 "Content-Length en Transfer-Encoding samen zijn niet toegestaan."},
		{FRAMING_CHUNKED, 400, "ongeldig-verzoek", "Ongeldig verzoek",
		 "De chunked body is onjuist opgebouwd."},
		{FRAMING_HEAD_TOO_LARGE, 431, "headers-te-groot", "Headers te groot",
		 "De request-line en de headers zijn samen groter dan 64 KiB."},
		{FRAMING_EXPECT, 417, "expect-niet-ondersteund", "Expect niet ondersteund",
		 "Alleen Expect: 100-continue wordt ondersteund."},
		{FRAMING_METHOD, 501, "methode-niet-ondersteund", "Methode niet ondersteund",
		 "Deze API kent alleen GET, POST, PUT, PATCH, DELETE, HEAD en OPTIONS."},
		{FRAMING_CODING, 501, "codering-niet-ondersteund",
		 "Transfer-Encoding niet ondersteund",
		 "Alleen Transfer-Encoding: chunked wordt ondersteund."},
	};

	if (strcmp(fault, FRAMING_TOO_LARGE) == 0) {
		char detail[128];
		snprintf(detail, sizeof(detail), "De body is groter dan %lld bytes.",
			 (long long)r->app->cfg->http_max_body);
		http_problem(r, 413, "te-groot", "Body te groot", detail);
		return;
	}
	if (strcmp(fault, FRAMING_BUSY) == 0) {
		http_problem_unavailable(r, "Te veel verbindingen; probeer het zo opnieuw.");
		return;
	}
	if (strcmp(fault, FRAMING_INTERNAL) == 0) {
		http_problem_unavailable(r, "Geen geheugen vrij voor dit verzoek.");
		return;
	}
	for (size_t i = 0; i < NELEMS(faults); i++) {
		if (strcmp(fault, faults[i].fault) == 0) {
			http_problem(r, faults[i].status, faults[i].type, faults[i].title,
				     faults[i].detail);
			return;
		}
	}
	http_problem(r, 400, "ongeldig-verzoek", "Ongeldig verzoek", NULL);
}
