/*
 * prompts.h - the prompts the portal shows a citizen (DESIGN.md section 5):
 *   GET  /v1/accounts/{accountId}/meldingen
 *   POST /v1/accounts/{accountId}/meldingen/{soort}/_afgehandeld
 *
 *   bevestigGeenEmail  no address (verified or pending) and the last explicit
 *                      "no e-mail" confirmation older than the interval, or none;
 *   controleerEmail    the verified address was last confirmed (verified or
 *                      acknowledged) longer ago than the interval;
 *   herstelEmail       a hard bounce on the address, not acknowledged since
 *                      the bounce or within the interval.
 * The interval is [portal] prompt_interval (six months by default). The
 * daemon only keeps the times; it never mails the citizen about them.
 * Loop thread only.
 */
#ifndef BERICHTD_PROMPTS_H
#define BERICHTD_PROMPTS_H

#include "core/http.h"

void prompts_http_list(struct http_req *r);
void prompts_http_ack(struct http_req *r);

extern const struct http_route prompts_routes[];

#endif
