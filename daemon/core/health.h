/*
 * health.h - operational endpoints, unversioned and without authentication:
 * /healthz (the process answers), /readyz (PostgreSQL and Redis reachable)
 * and /metrics (Prometheus text format). All three are served on the
 * operators' listener ([ops] listen); the API listener has only /healthz,
 * whose answer is a constant. Loop thread only.
 */
#ifndef BERICHTD_HEALTH_H
#define BERICHTD_HEALTH_H

#include "core/http.h"

void health_healthz(struct http_req *r);
void health_readyz(struct http_req *r);
void health_metrics(struct http_req *r);

#endif
