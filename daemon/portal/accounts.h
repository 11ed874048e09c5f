/*
 * accounts.h - the citizen's account, as the portal manages it:
 * POST /v1/accounts {"bsn"} (find or activate), GET/PATCH/DELETE
 * /v1/accounts/{accountId} with emailadres, emailGeverifieerd,
 * emailNotificaties, herhaalNotificaties, bewaartermijnDagen, taal.
 *
 * accounts.email is the *verified* address (the one mail goes to); an
 * address the citizen asked for but has not yet confirmed lives in
 * email_verifications (verify.c). `emailadres` shows the last address asked
 * for, `emailGeverifieerd` whether it is the verified one.
 *
 * The BSN is stored only as a keyed hash and never returned. Loop thread only.
 */
#ifndef BERICHTD_ACCOUNTS_H
#define BERICHTD_ACCOUNTS_H

#include "core/http.h"

void accounts_http_create(struct http_req *r);
void accounts_http_get(struct http_req *r);
void accounts_http_patch(struct http_req *r);
void accounts_http_delete(struct http_req *r);

/* The portal routes this module serves (NULL-terminated, listed in routes.c). */
extern const struct http_route accounts_routes[];

#endif
