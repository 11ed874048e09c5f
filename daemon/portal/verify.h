/*
 * verify.h - e-mail verification for the portal:
 *   POST /v1/accounts/{accountId}/emailverificaties        new code for the
 *        address awaiting verification (a fresh mail);
 *   POST /v1/accounts/{accountId}/emailverificaties/_bevestig {"code"}.
 *
 * Setting an address (PATCH emailadres, accounts.c) starts a verification:
 * a random 6-digit code, of which only a keyed hash is stored, expiring
 * after [portal] verify_ttl and locked after [portal] verify_attempts wrong
 * tries; the code goes out as a notification of kind 'verify' to the new
 * address. Confirming moves the address into accounts.email (the one mail
 * goes to) and clears a hard bounce. Loop thread only.
 */
#ifndef BERICHTD_VERIFY_H
#define BERICHTD_VERIFY_H

#include <libpq-fe.h>

#include "common/crypto.h"
#include "core/http.h"

#define VERIFY_CODE_DIGITS 6
#define VERIFY_CODE_LEN (VERIFY_CODE_DIGITS + 1)

/*
 * A fresh uniformly random code and its keyed hash (bound to the account).
 * False if the CSPRNG or HMAC fails.
 */
bool verify_new_code(const struct config *cfg, const char *account_id, char code[VERIFY_CODE_LEN],
		     char hash[CRYPTO_HEX256_LEN]) __attribute__((warn_unused_result));

/*
 * After the commit of a statement that inserted a 'verify' notification:
 * puts it on the Redis schedule. id_col/due_col are the columns of res
 * holding the notification id and its due time (epoch ms); NULL = none.
 */
void verify_schedule(struct app *app, const PGresult *res, int row, int id_col, int due_col);

void verify_http_resend(struct http_req *r);
void verify_http_confirm(struct http_req *r);

extern const struct http_route verify_routes[];

#endif
