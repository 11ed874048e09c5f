/*
 * ingest_http.h - the HTTP side of storing one message: POST /v1/berichten
 * on top of the group commit (ingest.h). Loop thread only.
 */
#ifndef BERICHTD_INGEST_HTTP_H
#define BERICHTD_INGEST_HTTP_H

#include "core/http.h"

/* POST /v1/berichten */
void ingest_http_post(struct http_req *r);

/* The agency routes this module serves (NULL-terminated, listed in routes.c). */
extern const struct http_route ingest_routes[];

#endif
