/*
 * agency.h - the routes of the agency API beyond POST /v1/berichten
 * (ingest.c): batches (batch.c), recipient lookup and reading one's own
 * message (lookup.c), and the API description (openapi.c). One table, so
 * the HTTP layer lists it in one line.
 */
#ifndef BERICHTD_AGENCY_H
#define BERICHTD_AGENCY_H

#include "core/http.h"

extern const struct http_route agency_routes[];

#endif
