/*
 * route.h - matching a request path against a route pattern, and the
 * pattern's list of query parameters. Pure: no I/O, no libevent; any thread.
 *
 * A pattern is a path in which "{}" matches one non-empty segment,
 * optionally followed by the query parameters the route accepts as
 * "{?name,name}" (RFC 6570 form-style), e.g. "/v1/berichten/{}{?a,b}".
 */
#ifndef BERICHTD_ROUTE_H
#define BERICHTD_ROUTE_H

#include <stdbool.h>

/* Most {} captures a pattern may have. */
#define ROUTE_MAX_PARAMS 4

/*
 * Matches path against pattern. On success the captures are stored in
 * params[0 .. *nparams), pointing into path, whose segments are then
 * NUL-terminated; on failure path may be modified too (match on a copy).
 * A trailing slash matches only a pattern that has one.
 */
bool route_match(const char *pattern, char *path, const char **params, int *nparams);

/* Whether the pattern has a "{?...}" query list (possibly empty). */
bool route_has_query_list(const char *pattern);

/* Whether the pattern's "{?a,b}" list names this query parameter. */
bool route_query_listed(const char *pattern, const char *name);

/* A query parameter name worth echoing in invalidParams: short, printable UTF-8. */
bool route_name_echoable(const char *name);

#endif
