/*
 * tls.h - TLS on the API listener (issue 15), with client certificates as
 * Digikoppeling asks: an agency's PKIoverheid certificate carries its OIN in
 * the subject's serialNumber.
 *
 * Each connection of the API listener gets a bufferevent_openssl (the
 * framing of framing.c sees the decrypted bytes). TLS 1.2 and 1.3 only, the
 * NCSC guidelines' "good" ciphers for 1.2. [tls] client_auth optional or
 * require asks every client for a certificate and checks it against
 * client_ca_file in the handshake (an expired one or one from another CA
 * ends the handshake); what a request may do with or without one is
 * decided per request, after the token (certificate_allows in
 * http_serve.c's auth step).
 *
 * SIGHUP: tls_reload builds a new context from the files; connections
 * already open keep the one they started with, so none is dropped.
 *
 * Loop thread only.
 */
#ifndef BERICHTD_TLS_H
#define BERICHTD_TLS_H

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/config.h"

#define TLS_OIN_LEN 20
#define TLS_FINGERPRINT_LEN 64 /* SHA-256 of the DER certificate, lower-case hex */

enum tls_client_auth { TLS_CLIENT_OFF, TLS_CLIENT_OPTIONAL, TLS_CLIENT_REQUIRE };

struct tls;
struct framing;

/* NULL and err "" when [tls] cert_file is not set (plain HTTP); NULL with
 * the reason in err when the files do not make a context. */
struct tls *tls_new(const struct config *cfg, struct framing *fr, char *err, size_t errlen);
void tls_free(struct tls *t);

/* New connections use the certificate and key as the files are now. */
bool tls_reload(struct tls *t, const struct config *cfg, char *err, size_t errlen);

enum tls_client_auth tls_client_auth(const struct tls *t);

/* For evhttp_set_bevcb(http, tls_bev, t). */
struct bufferevent *tls_bev(struct event_base *base, void *t);

/* The verified client certificate of the request's connection, or NULL
 * (plain connection, or none sent). X509_free it. */
X509 *tls_peer_cert(struct evhttp_request *req);

/* The 20-digit OIN in the subject's serialNumber; false if there is none. */
bool tls_cert_oin(X509 *cert, char out[TLS_OIN_LEN + 1]);

void tls_cert_fingerprint(X509 *cert, char out[TLS_FINGERPRINT_LEN + 1]);

/* Is fp in the comma-separated list (spaces and colons ignored, any case)? */
bool tls_fingerprint_listed(const char *list, const char *fp);

#endif
