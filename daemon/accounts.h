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

#include <stdint.h>

#include "http.h"

void accounts_http_create(struct http_req *r);
void accounts_http_get(struct http_req *r);
void accounts_http_patch(struct http_req *r);
void accounts_http_delete(struct http_req *r);

/*
 * Helpers shared by the other portal modules (verify.c, prompts.c,
 * subscriptions.c, box.c):
 *  - accounts_check_id: true if id is a UUID; otherwise answers 404.
 *  - accounts_store_failed: true (and answers 503) if err is set.
 *  - accounts_reply: reads the account `id` again and answers with it
 *    (status, or 404 when it does not exist). id is copied.
 *  - accounts_retention_days: the effective bewaartermijnDagen for a stored
 *    value (NULL/empty = the configured default), bounded by min/max.
 */
bool accounts_check_id(struct http_req *r, const char *id);
bool accounts_store_failed(struct http_req *r, const char *err);
void accounts_reply(struct http_req *r, const char *id, int status);
int64_t accounts_retention_days(const struct config *cfg, const char *stored);

/* The portal routes this module serves (NULL-terminated, see http.c). */
extern const struct http_route accounts_routes[];

#endif
