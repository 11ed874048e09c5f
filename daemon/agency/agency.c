/*
 * agency.c - the agency route table (see agency.h).
 */
#include "agency/agency.h"

#include "agency/batch.h"
#include "agency/lookup.h"
#include "core/openapi.h"

const struct http_route agency_routes[] = {
	{EVHTTP_REQ_POST, "/v1/batches", ROLE_AGENCY, true, batch_http_post},
	{EVHTTP_REQ_POST, "/v1/ontvangers/_zoek", ROLE_AGENCY, true, lookup_http_ontvangers},
	{EVHTTP_REQ_GET, "/v1/berichten/{}", ROLE_AGENCY, false, lookup_http_bericht},
	{EVHTTP_REQ_GET, "/v1/openapi.json", 0, false, openapi_http_get},
	{0, NULL, 0, false, NULL},
};
