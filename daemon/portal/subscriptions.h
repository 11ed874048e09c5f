/*
 * subscriptions.h - the citizen turns agencies on or off:
 *   GET /v1/accounts/{accountId}/abonnementen          every agency, with
 *       `actief` and `verplicht`;
 *   GET /v1/accounts/{accountId}/abonnementen/{oin}    one;
 *   PUT /v1/accounts/{accountId}/abonnementen/{oin} {"actief": bool}.
 * No row means on. A mandatory agency (`berichtd agency set --mandatory yes`)
 * cannot be turned off: 409. The recipient check and ingest read the same
 * table (ingest.c), so an agency turned off gets 422 on its next message.
 * Turning an agency off cancels the scheduled mail about its messages.
 * Loop thread only.
 */
#ifndef BERICHTD_SUBSCRIPTIONS_H
#define BERICHTD_SUBSCRIPTIONS_H

#include "core/http.h"

void subscriptions_http_list(struct http_req *r);
void subscriptions_http_get(struct http_req *r);
void subscriptions_http_put(struct http_req *r);

extern const struct http_route subscriptions_routes[];

#endif
