/*
 * accounts.h - the citizen's account, as the portal manages it:
 * POST /v1/accounts {"bsn"} (find or activate), GET/PATCH/DELETE
 * /v1/accounts/{accountId}. The BSN is stored only as a keyed hash and never
 * returned. Loop thread only.
 */
#ifndef BERICHTD_ACCOUNTS_H
#define BERICHTD_ACCOUNTS_H

#include "http.h"

void accounts_http_create(struct http_req *r);
void accounts_http_get(struct http_req *r);
void accounts_http_patch(struct http_req *r);
void accounts_http_delete(struct http_req *r);

/* The portal routes this module serves (NULL-terminated, see http.c). */
extern const struct http_route accounts_routes[];

#endif
