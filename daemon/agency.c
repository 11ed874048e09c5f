/*
 * agency.c - the agency route table (see agency.h).
 */
#include "agency.h"

#include "batch.h"
#include "lookup.h"
#include "openapi.h"

const struct http_route agency_routes[] = {
	{EVHTTP_REQ_POST, "/v1/batches", ROLE_AGENCY, true, batch_http_post},
	{EVHTTP_REQ_POST, "/v1/ontvangers/_zoek", ROLE_AGENCY, true, lookup_http_ontvangers},
	{EVHTTP_REQ_GET, "/v1/berichten/{}", ROLE_AGENCY, false, lookup_http_bericht},
	{EVHTTP_REQ_GET, "/v1/openapi.json", 0, false, openapi_http_get},
	{0, NULL, 0, false, NULL},
};
