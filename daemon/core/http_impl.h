/*
 * http_impl.h - what the HTTP front shares inside core/: http.c (the two
 * listeners), http_serve.c (one request: id, routing, authentication,
 * dispatch), http_input.c (its JSON body and query parameters) and
 * problem.c (replies and problems).
 */
#ifndef BERICHTD_HTTP_IMPL_H
#define BERICHTD_HTTP_IMPL_H

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct app;
struct framing;
struct http_front;
struct http_req;
struct http_route;
struct http_routes;
struct tls;

/* One listening evhttp: its routes, and whether it is the API. */
struct http_side {
	struct http_front *front;
	const char *name; /* for log lines: the config section */
	const struct http_routes *routes;
	bool api; /* counted in berichtd_http_requests_total */
	struct evhttp *evh;
	struct evhttp_bound_socket *sock;
};

struct http_front {
	struct app *app;
	struct framing *framing;     /* the API listener's connections */
	struct framing *ops_framing; /* the ops listener's: no connection limit, so an
				      * operator can look while agencies are refused */
	struct tls *tls;             /* the API listener's, or NULL: plain HTTP */
	struct http_side api, ops;
};

/*
 * evhttp's callback for every request of a listener (http.c sets it, arg
 * is the struct http_side): the request from arrival to its handler
 * (http_serve.c).
 */
void http_on_request(struct evhttp_request *ev, void *arg);

/* Draws this process's random prefix of the request ids we make (http_serve.c). */
void http_request_ids_seed(void);

/* "GET", "POST", ...; NULL for a method the API does not know. */
const char *http_method_name(enum evhttp_cmd_type m);

/* Whether a client's X-Request-ID may be used as the request id (http_serve.c). */
bool http_request_id_ok(const char *v);

/*
 * The path of r for the access line, without personal data: the route's
 * pattern when it matched (its {} for the ids, no query list), else the
 * path with every segment that could carry an identifier as {} (problem.c).
 */
void http_log_path(const struct http_req *r, char *out, size_t size);

/*
 * The answer to a request framing.c replaced or marked (its FRAMING_*
 * fault header value). Frees r.
 */
void http_problem_framing(struct http_req *r, const char *fault);

/*
 * Appends to invalid a problem for each query parameter the route does not
 * list (unknownParameter) and each listed one given twice (duplicate); a
 * query string that does not parse is reported (syntax) only when
 * `syntax`. Returns false when it found anything (http_input.c).
 */
bool http_query_problems(const struct http_req *r, const struct http_route *route, json_t *invalid,
			 bool syntax);

#endif
