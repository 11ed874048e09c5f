/*
 * stats.h - the statistics endpoints (DESIGN.md section 6 and 9):
 *   GET /v1/rapportages/openingspercentages?jaar=YYYY[&maand=M]  (ministry;
 *       JSON, or CSV with Accept: text/csv)
 *   GET /v1/statistieken/openingspercentages?jaar=YYYY  (agency: its own
 *       closed-window figures, small cells suppressed)
 *   GET /v1/rapportages/notificaties?jaar=YYYY  (ministry)
 * All read the rollup tables (report.c builds the bodies). Loop thread only.
 */
#ifndef BERICHTD_STATS_H
#define BERICHTD_STATS_H

#include "core/http.h"

void stats_http_ministry_rates(struct http_req *r);
void stats_http_agency_rates(struct http_req *r);
void stats_http_notifications(struct http_req *r);

/* The routes this module serves (NULL-terminated, listed in routes.c). */
extern const struct http_route stats_routes[];

#endif
