/*
 * lookup.h - the agency's read calls:
 *
 *   POST /v1/ontvangers/_zoek {"bsns": [1..LOOKUP_BSNS_MAX]}
 *        -> {"ontvangers": [{"bsn", "berichtenbox": bool}]} in request order:
 *        may this agency send to them digitally (an active account that did
 *        not turn this agency off, or the agency is mandatory). The BSNs are
 *        in the body because they were in the request; never in a URI or log.
 *   GET  /v1/berichten/{berichtId}
 *        -> its own message's metadata and status "aangenomen"; another
 *        agency's id, an unknown or a malformed id: 404. Nothing about
 *        opening, deletion or notifications.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_LOOKUP_H
#define BERICHTD_LOOKUP_H

#include "core/http.h"

#define LOOKUP_BSNS_MAX 250

void lookup_http_ontvangers(struct http_req *r);
void lookup_http_bericht(struct http_req *r);

#endif
