/*
 * tls.c - see tls.h.
 */
#include "core/tls.h"

#include <ctype.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/framing.h"

/* TLS 1.2: forward secrecy and AEAD only (NCSC "good"); 1.3: its own three */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
	"ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
#define VERIFY_DEPTH 4

struct tls {
	SSL_CTX *ctx;
	struct framing *fr;
	enum tls_client_auth client;
};

static enum tls_client_auth client_mode(const char *s)
{
	if (s && strcmp(s, "require") == 0)
		return TLS_CLIENT_REQUIRE;
	if (s && strcmp(s, "optional") == 0)
		return TLS_CLIENT_OPTIONAL;
	return TLS_CLIENT_OFF;
}

static void ssl_error(char *err, size_t errlen, const char *what, const char *path)
{
	unsigned long e = ERR_peek_last_error();
	snprintf(err, errlen, "%s %s: %s", what, path ? path : "",
		 e ? ERR_reason_error_string(e) : "failed");
	ERR_clear_error();
}

static SSL_CTX *make_ctx(const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) ||
	    !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		ssl_error(err, errlen, "tls:", "cannot make a context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		ssl_error(err, errlen, "tls.cert_file: cannot use", cfg->tls_cert_file);
		SSL_CTX_free(ctx);
		return NULL;
	}
	const char *key =
		cfg->tls_key_file && *cfg->tls_key_file ? cfg->tls_key_file : cfg->tls_cert_file;
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, errlen, "tls.key_file: cannot use", key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (client_mode(cfg->tls_client_auth) != TLS_CLIENT_OFF) {
		const char *ca = cfg->tls_client_ca_file;
		STACK_OF(X509_NAME) *names = ca && *ca ? SSL_load_client_CA_file(ca) : NULL;
		if (!names || SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			ssl_error(err, errlen, "tls.client_ca_file: cannot load", ca);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		/* ask for a certificate, check any that comes; none is decided per request */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_verify_depth(ctx, VERIFY_DEPTH);
		/* one id for the session cache, which client certificates need */
		static const unsigned char sid[] = "berichtd";
		SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	}
	return ctx;
}

struct tls *tls_new(const struct config *cfg, struct framing *fr, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!cfg->tls_cert_file || !*cfg->tls_cert_file)
		return NULL;
	struct tls *t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->fr = fr;
	t->client = client_mode(cfg->tls_client_auth);
	t->ctx = make_ctx(cfg, err, errlen);
	if (!t->ctx) {
		free(t);
		return NULL;
	}
	return t;
}

void tls_free(struct tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

bool tls_reload(struct tls *t, const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = make_ctx(cfg, err, errlen);
	if (!ctx)
		return false;
	/* connections already open hold a reference to the old one */
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	t->client = client_mode(cfg->tls_client_auth);
	return true;
}

enum tls_client_auth tls_client_auth(const struct tls *t)
{
	return t ? t->client : TLS_CLIENT_OFF;
}

struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct tls *t = arg;
	SSL *ssl = SSL_new(t->ctx);
	if (!ssl)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* a client that closes without close_notify is no error of ours */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return framing_wrap(t->fr, bev);
}

X509 *tls_peer_cert(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return SSL_get1_peer_certificate(ssl);
}

bool tls_cert_oin(X509 *cert, char out[TLS_OIN_LEN + 1])
{
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = subj ? X509_NAME_get_index_by_NID(subj, NID_serialNumber, -1) : -1;
	if (i < 0)
		return false;
	const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);
	if (n != TLS_OIN_LEN)
		return false;
	for (int k = 0; k < n; k++)
		if (!isdigit(d[k]))
			return false;
	memcpy(out, d, TLS_OIN_LEN);
	out[TLS_OIN_LEN] = '\0';
	return true;
}

void tls_cert_fingerprint(X509 *cert, char out[TLS_FINGERPRINT_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	out[0] = '\0';
	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len * 2 > TLS_FINGERPRINT_LEN)
		return;
	for (unsigned int i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

bool tls_fingerprint_listed(const char *list, const char *fp)
{
	size_t want = strlen(fp), at = 0;
	bool match = want > 0;
	for (const char *p = list ? list : "";; p++) {
		if (*p == ',' || *p == '\0') {
			if (match && at == want)
				return true;
			if (*p == '\0')
				return false;
			match = true;
			at = 0;
			continue;
		}
		if (*p == ' ' || *p == ':' || *p == '\t')
			continue;
		if (at >= want || tolower((unsigned char)*p) != fp[at])
			match = false;
		at++;
	}
}
