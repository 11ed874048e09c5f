/*
 * routes.h - every endpoint, per listener. The only file that knows the
 * handlers of every domain (docs/architecture.md, the layer rule): the
 * HTTP core serves whatever tables it is given.
 */
#ifndef BERICHTD_ROUTES_H
#define BERICHTD_ROUTES_H

#include "core/http.h"

/* [http] listen: agencies, the portal, the relay, and a constant /healthz. */
extern const struct http_routes routes_api;

/* [ops] listen: /healthz, /readyz, /metrics, for operators only. */
extern const struct http_routes routes_ops;

#endif
