/*
 * http.h - the HTTP front: evhttp server, routing table, authentication
 * dispatch and the response helpers every handler uses.
 *
 * A handler receives a `struct http_req`, may go asynchronous (queue a
 * PostgreSQL query and return), and must eventually answer exactly once with
 * one of the http_reply_* / http_problem* functions, which also free the
 * request context. evhttp keeps an unanswered request alive even when the
 * client has gone (the reply is then dropped), so late answers are safe.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_HTTP_H
#define BERICHTD_HTTP_H

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "common/uuid7.h"
#include "core/app.h"
#include "core/roles.h"
#include "core/route.h"

#define API_VERSION "1.0.0"

#define HTTP_MAX_PARAMS ROUTE_MAX_PARAMS

struct http_route;

struct http_req {
	struct app *app;
	struct evhttp_request *ev;
	char id[LOG_REQUEST_ID_MAX + 1]; /* X-Request-ID: the client's if valid, else ours */
	int64_t start_us;                /* clock_mono_us() on arrival, for the access line */
	const char *listener;            /* "http" or "ops", for the access line */
	enum role role;
	int64_t agency_id;                   /* role agency: the token's agency */
	const char *params[HTTP_MAX_PARAMS]; /* {placeholders} of the route, in order */
	char *path;                          /* decoded path, owns the params' storage */
	json_t *body;                        /* parsed JSON body, when the route wants one */
	const struct http_route *route;      /* the route being served */
};

typedef void (*http_handler)(struct http_req *r);

struct http_route {
	enum evhttp_cmd_type method;
	/*
	 * "/v1/accounts/{}": {} matches one segment. The query parameters the
	 * route accepts follow as "{?name,name}" (RFC 6570 form-style); any
	 * other parameter, and any at all without that list, is refused with
	 * 400 before the handler runs, so that nothing (a BSN least of all)
	 * travels in a URI unnoticed.
	 */
	const char *pattern;
	unsigned roles; /* ROLE_* bits allowed; 0 = no authentication */
	bool json_body; /* parse the body as a JSON object first */
	http_handler handler;
};

/*
 * Listens on [http] listen (the API, serving api) and [ops] listen (ops:
 * /healthz, /readyz, /metrics for operators). On false, http_stop still
 * frees what was made.
 */
/* The route tables of one listener (daemon/routes.c lists them). */
struct http_routes {
	const struct http_route *const *tables;
	size_t n;
};

bool http_start(struct app *app, const struct http_routes *api, const struct http_routes *ops)
	__attribute__((warn_unused_result));
/* Closes both listening sockets; requests already received still get answers. */
/* SIGHUP: the API listener's TLS certificate and key as the files are now;
 * open connections keep theirs. False with the reason in err. */
bool http_reload_tls(struct app *app, const struct config *fresh, char *err, size_t errlen);

struct framing_stats;
/* Client connections now, and those cut off or refused (framing.h). */
void http_connection_stats(struct app *app, struct framing_stats *out);

void http_stop_accepting(struct app *app);
void http_stop(struct app *app);

/*
 * Parses the request body as a JSON object into r->body (what a route with
 * json_body gets before its handler). optional: an empty body is fine
 * (r->body stays NULL). On false it has answered (415, 400) and freed r.
 */
bool http_read_json_body(struct http_req *r, bool optional) __attribute__((warn_unused_result));

/* Answers with JSON (steals `body`; NULL means no body) and frees r. */
void http_reply_json(struct http_req *r, int status, json_t *body);

/* Answers with a text body of the given content type and frees r. */
void http_reply_text(struct http_req *r, int status, const char *ctype, const char *text,
		     size_t len);

/* Answers with extra header `Location` set (for 201). Steals body, frees r. */
void http_reply_created(struct http_req *r, const char *location, json_t *body);

/*
 * RFC 9457 problem: type is a slug appended to [http] problem_base. Frees r.
 * detail may be NULL.
 */
void http_problem(struct http_req *r, int status, const char *type, const char *title,
		  const char *detail);

/* 500 "interne-fout" without detail: out of memory and the like. Frees r. */
void http_problem_internal(struct http_req *r);

/* 404 "niet-gevonden" with the given detail (may be NULL). Frees r. */
void http_problem_not_found(struct http_req *r, const char *detail);

/*
 * The route's {} capture i as a UUID into out (may be NULL to only check).
 * When it is not one, answers 404 with detail (the resource cannot exist),
 * frees r and returns false.
 */
bool http_uuid_param(struct http_req *r, int i, uuid_t7 *out, const char *detail)
	__attribute__((warn_unused_result));

/* 400 with invalidParams (steals the array of {name, code, reason}). Frees r. */
void http_problem_invalid(struct http_req *r, json_t *invalid_params);

/* 503 with Retry-After, for a store that is down or overloaded. Frees r. */
void http_problem_unavailable(struct http_req *r, const char *detail);

/* 429 with Retry-After: the agency's rate limit (ratelimit.h), messages and lookups. Frees r. */
void http_problem_rate_limited(struct http_req *r, int64_t retry_after_s);

/*
 * For a handler whose route lists query parameters ("{?a,b}"): appends to
 * its invalidParams array a problem for each parameter the route does not
 * list (code unknownParameter) and each listed one given twice (duplicate).
 * A query string that does not parse is left to the handler, which parses
 * it for the values anyway. Routes without a list never reach their handler
 * with a query parameter.
 */
void http_query_check(struct http_req *r, json_t *invalid);

/* Appends {name, code, reason} to an invalidParams array. */
void http_invalid_add(json_t *arr, const char *name, const char *code, const char *reason);

/*
 * http_invalid_add for validators that report through a callback and know
 * nothing of HTTP (message.h): arr is the invalidParams json_t array.
 */
void http_invalid_sink(void *arr, const char *name, const char *code, const char *reason);

#endif
