/*
 * box.h - the citizen's message box as the portal shows it:
 *   GET    /v1/accounts/{accountId}/berichten?pagina=&paginaGrootte=
 *          published, not deleted messages, newest first, with geopendOp;
 *          paginated with totals, `_links` and X-Total-Count /
 *          X-Pagination-Page / X-Pagination-Limit headers;
 *   POST   /v1/berichten/{berichtId}/openingen   first open recorded (201),
 *          later opens 200 with the first time; scheduled reminders cancelled;
 *   DELETE /v1/berichten/{berichtId}             the citizen deleted it
 *          (204); its scheduled mail is cancelled. The row stays until the
 *          janitor purges it (statistics need it until its window closes).
 * Portal role only; agencies use other paths. Loop thread only.
 */
#ifndef BERICHTD_BOX_H
#define BERICHTD_BOX_H

#include "core/http.h"

void box_http_list(struct http_req *r);
void box_http_open(struct http_req *r);
void box_http_delete(struct http_req *r);

extern const struct http_route box_routes[];

#endif
