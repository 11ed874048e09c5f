/*
 * crypto.c - thin wrappers over OpenSSL 3 libcrypto (EVP one-shot digest,
 * HMAC one-shot, RAND_bytes, CRYPTO_memcmp) with hex in- and output.
 *
 * Kept deliberately small: the daemon should not grow its own crypto, only
 * call these, so there is one place to review.
 */
#include "crypto.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

enum {
	CRYPTO_SHA256_BYTES = 32,
	CRYPTO_NIBBLE_BITS = 4,
	CRYPTO_NIBBLE_MASK = 0x0F,
	CRYPTO_HEX_ALPHA_VALUE = 10, /* value of hex digit 'a' */
};

static const char crypto_hex_digits[] = "0123456789abcdef";

/* Something valid to point at when a caller passes NULL with length 0:
 * OpenSSL rejects a NULL HMAC key even when its length is 0. */
static const uint8_t crypto_empty[1];

/* Lowercase hex of in[0..n) into out, which has room for 2n + 1. */
static void crypto_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = crypto_hex_digits[in[i] >> CRYPTO_NIBBLE_BITS];
		out[2 * i + 1] = crypto_hex_digits[in[i] & CRYPTO_NIBBLE_MASK];
	}
	out[2 * n] = '\0';
}

void crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_HEX256_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (data == NULL)
		data = crypto_empty;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != CRYPTO_SHA256_BYTES)
		abort(); /* libcrypto broken or out of memory: no safe fallback */
	crypto_hex_encode(md, mdlen, out);
}

bool crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
			    char out[CRYPTO_HEX256_LEN])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	out[0] = '\0';
	if (keylen > INT_MAX) /* HMAC() takes the key length as int */
		return false;
	if (key == NULL)
		key = crypto_empty;
	if (data == NULL)
		data = crypto_empty;
	if (HMAC(EVP_sha256(), key, (int)keylen, data, len, md, &mdlen) == NULL ||
	    mdlen != CRYPTO_SHA256_BYTES)
		return false;
	crypto_hex_encode(md, mdlen, out);
	return true;
}

bool crypto_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;
	/* RAND_bytes takes an int length; feed larger requests in chunks. */
	while (len > 0) {
		const size_t chunk = len > INT_MAX ? INT_MAX : len;
		if (RAND_bytes(p, (int)chunk) != 1)
			return false;
		p += chunk;
		len -= chunk;
	}
	return true;
}

bool crypto_random_token(char out[CRYPTO_TOKEN_LEN])
{
	uint8_t raw[CRYPTO_TOKEN_BYTES];
	out[0] = '\0';
	if (!crypto_random_bytes(raw, sizeof raw))
		return false;
	crypto_hex_encode(raw, sizeof raw, out);
	OPENSSL_cleanse(raw, sizeof raw);
	return true;
}

bool crypto_ct_equal(const void *a, const void *b, size_t len)
{
	if (len == 0)
		return true;
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* Value of one hex digit, or -1. */
static int crypto_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + CRYPTO_HEX_ALPHA_VALUE;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + CRYPTO_HEX_ALPHA_VALUE;
	return -1;
}

bool crypto_hex_decode(const char *hex, uint8_t *out, size_t outcap, size_t *outlen)
{
	if (hex == NULL)
		return false;
	const size_t n = strlen(hex);
	if (n % 2 != 0 || n / 2 > outcap)
		return false;
	for (size_t i = 0; i < n / 2; i++) {
		const int hi = crypto_hex_value(hex[2 * i]);
		const int lo = crypto_hex_value(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << CRYPTO_NIBBLE_BITS | lo);
	}
	*outlen = n / 2;
	return true;
}
