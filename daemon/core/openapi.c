/*
 * openapi.c - serves the embedded API description (see openapi.h).
 */
#include "core/openapi.h"

void openapi_http_get(struct http_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
	evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
	http_reply_text(r, 200, "application/json", openapi_json, openapi_json_len);
}
