/*
 * representatives.h - who acts for whom (issue 11), as the portal syncs it
 * from the authorisation register:
 *   PUT    /v1/accounts/{accountId}/vertegenwoordigers/{vertegenwoordigerAccountId}
 *          create (201) or replace (200; a deleted one comes back, 201);
 *   GET    the same path: one representation, not deleted (404 otherwise);
 *   DELETE the same path: deleted_at set (204; again: 204);
 *   GET    /v1/accounts/{accountId}/vertegenwoordigers    who acts for me
 *   GET    /v1/accounts/{accountId}/vertegenwoordigingen  for whom I act
 * Both accounts must exist. No BSN is ever accepted or returned. Portal
 * role only. Loop thread only.
 */
#ifndef BERICHTD_REPRESENTATIVES_H
#define BERICHTD_REPRESENTATIVES_H

#include "core/http.h"

extern const struct http_route representatives_routes[];

#endif
