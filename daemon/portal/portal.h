/*
 * portal.h - what the portal's calls share: the account id in a path, a
 * store failure as 503, the account as GET answers it, the retention an
 * account has. Loop thread only.
 */
#ifndef BERICHTD_PORTAL_H
#define BERICHTD_PORTAL_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/http.h"

/* True if id is a UUID; else answers 404 (unknown account) and returns false. */
bool portal_account_id_ok(struct http_req *r, const char *id);

/* True (and answers 503) when err says PostgreSQL failed. */
bool portal_store_failed(struct http_req *r, const char *err);

/*
 * True when the statement gave exactly one row; else answers (503 when
 * PostgreSQL failed, 404 with detail when the row does not exist).
 */
bool portal_found(struct http_req *r, const PGresult *res, const char *err, const char *detail);

/* Answers with the account as GET /v1/accounts/{id} shows it, with status. */
void portal_reply_account(struct http_req *r, const char *id, int status);

/* bewaartermijnDagen: the stored choice (NULL/"" for none) within [retention] bounds. */
int64_t portal_retention_days(const struct config *cfg, const char *stored);

#endif
