/*
 * http_impl.h - what http.c and problem.c share inside core/.
 */
#ifndef BERICHTD_HTTP_IMPL_H
#define BERICHTD_HTTP_IMPL_H

struct http_req;

/*
 * The answer to a request framing.c replaced or marked (its FRAMING_*
 * fault header value). Frees r.
 */
void http_problem_framing(struct http_req *r, const char *fault);

#endif
