/*
 * http_impl.h - what http.c and problem.c share inside core/.
 */
#ifndef BERICHTD_HTTP_IMPL_H
#define BERICHTD_HTTP_IMPL_H

#include <event2/http.h>
#include <stdbool.h>
#include <stddef.h>

struct http_req;

/* "GET", "POST", ...; NULL for a method the API does not know. */
const char *http_method_name(enum evhttp_cmd_type m);

/* Whether a client's X-Request-ID may be used as the request id (http.c). */
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

#endif
