/*
 * batch.h - POST /v1/batches: up to BATCH_MAX messages in one request.
 *
 * Every item is validated on its own; the valid ones go through the same
 * group commit as single messages (ingest.h), so they are stored in one
 * transaction per chunk of up to 1,000 items. The answer is 200 with one
 * result per item, in request order, and the counts per status:
 *
 *   aangenomen               stored now; berichtId
 *   dubbel                   this referentie was already stored with the same
 *                            content (earlier, or earlier in this batch); the
 *                            first berichtId, nothing scheduled twice
 *   geenActieveBerichtenbox  no active box for this BSN and agency; not stored
 *   ongeldig                 not stored; invalidParams say why, with names
 *                            "berichten[i].field". A referentie already used
 *                            with other content (409 for a single message) is
 *                            ongeldig with code "referentieBestaatAl", and an
 *                            unregistered berichttype has code "unregistered".
 *
 * Failures of the request as a whole are problems: 400 for a body that is
 * not {"berichten": [1..BATCH_MAX objects]}, 429 (rate limit, counted in
 * valid items), and 503 when the database failed for any chunk, or did not
 * commit every chunk within [postgres] ingest_timeout of the batch's arrival
 * (the whole answer comes by then). After a 503 some chunks may be stored,
 * or still be committing (the 503 then says the outcome is unknown):
 * resending the same batch is safe, those items come back as dubbel.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_BATCH_H
#define BERICHTD_BATCH_H

#include "core/http.h"

#define BATCH_MAX 10000

void batch_http_post(struct http_req *r);

#endif
