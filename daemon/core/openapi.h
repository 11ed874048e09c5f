/*
 * openapi.h - GET /v1/openapi.json: the API description (docs/openapi.yaml),
 * converted to JSON at build time and embedded in the binary
 * (docs/openapi-embed.py), served without authentication and, as the API
 * Design Rules want for this one document, readable from any origin (CORS).
 */
#ifndef BERICHTD_OPENAPI_H
#define BERICHTD_OPENAPI_H

#include <stddef.h>

#include "core/http.h"

/* Generated: build/.../gen/openapi_json.c */
extern const char openapi_json[];
extern const size_t openapi_json_len;

void openapi_http_get(struct http_req *r);

#endif
