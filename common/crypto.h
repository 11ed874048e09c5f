/*
 * crypto.h - the few primitives berichtd needs from OpenSSL libcrypto:
 * SHA-256 (idempotency keys, stored token hashes), HMAC-SHA256 (webhook and
 * link signatures), random bytes and tokens, constant-time comparison and
 * hex decoding. All functions are thread-safe (OpenSSL 3 needs no locking
 * setup) and allocate nothing the caller must free.
 */
#ifndef BERICHTD_COMMON_CRYPTO_H
#define BERICHTD_COMMON_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64 lowercase hex characters of a SHA-256 digest plus the NUL. */
#define CRYPTO_HEX256_LEN 65

/* 64 lowercase hex characters of 32 random bytes plus the NUL. */
#define CRYPTO_TOKEN_LEN 65
#define CRYPTO_TOKEN_BYTES 32

/*
 * SHA-256 of data[0..len) as lowercase hex into out. data may be NULL when
 * len is 0. Cannot fail in practice; if libcrypto itself fails (out of
 * memory inside OpenSSL) the process aborts rather than return a wrong hash.
 */
void crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_HEX256_LEN]);

/*
 * HMAC-SHA256 of data under key, as lowercase hex into out. key/data may be
 * NULL when their length is 0. Returns false if libcrypto fails (out is
 * then the empty string).
 */
bool crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t len,
			    char out[CRYPTO_HEX256_LEN]) __attribute__((warn_unused_result));

/* Fills buf[0..len) from the OpenSSL CSPRNG. False if it fails. */
bool crypto_random_bytes(void *buf, size_t len) __attribute__((warn_unused_result));

/*
 * A fresh token: 32 random bytes as 64 lowercase hex chars + NUL.
 * Returns false (out is then the empty string) if the CSPRNG fails.
 */
bool crypto_random_token(char out[CRYPTO_TOKEN_LEN]) __attribute__((warn_unused_result));

/*
 * True if a[0..len) equals b[0..len). Time depends only on len, not on the
 * contents (CRYPTO_memcmp); use it for every secret comparison.
 * len == 0 gives true.
 */
bool crypto_ct_equal(const void *a, const void *b, size_t len);

/*
 * Decodes a hex string (even length, [0-9a-fA-F] only) into out. Writes the
 * byte count to *outlen. Returns false for NULL hex, odd length, a non-hex
 * character or more than outcap bytes of output; out and *outlen may then
 * be partly written. The empty string decodes to 0 bytes.
 */
bool crypto_hex_decode(const char *hex, uint8_t *out, size_t outcap, size_t *outlen)
	__attribute__((warn_unused_result));

#endif /* BERICHTD_COMMON_CRYPTO_H */
