/*
 * routes.c - see routes.h. Each domain module exports its own
 * NULL-terminated route table; this file only lists them. Adding an
 * endpoint touches its module, and this list when it is a new module.
 */
#include "routes.h"

#include "agency/agency.h"
#include "agency/ingest_http.h"
#include "core/health.h"
#include "notify/bounce.h"
#include "portal/accounts.h"
#include "portal/box.h"
#include "portal/prompts.h"
#include "portal/representatives.h"
#include "portal/subscriptions.h"
#include "portal/verify.h"
#include "stats/stats.h"

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The operators' listener ([ops] listen) serves these and nothing else. The
 * counters of /metrics move when single mails go out, so an agency that can
 * read them learns whether one citizen opened one message before its
 * reminder fell due: they are never served on the API listener.
 */
static const struct http_route ops_routes[] = {
	{EVHTTP_REQ_GET, "/healthz", 0, false, health_healthz},
	{EVHTTP_REQ_GET, "/readyz", 0, false, health_readyz},
	{EVHTTP_REQ_GET, "/metrics", 0, false, health_metrics},
	{0, NULL, 0, false, NULL},
};

/* For load balancers in front of the API: a constant "ok", nothing else. */
static const struct http_route api_health_routes[] = {
	{EVHTTP_REQ_GET, "/healthz", 0, false, health_healthz},
	{0, NULL, 0, false, NULL},
};

static const struct http_route *const api_tables[] = {
	api_health_routes, ingest_routes,  accounts_routes,        bounce_routes,
	verify_routes,     prompts_routes, subscriptions_routes,   box_routes,
	stats_routes,      agency_routes,  representatives_routes,
};

static const struct http_route *const ops_tables[] = {
	ops_routes,
};

const struct http_routes routes_api = {api_tables, NELEMS(api_tables)};
const struct http_routes routes_ops = {ops_tables, NELEMS(ops_tables)};
