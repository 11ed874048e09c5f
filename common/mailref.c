/*
 * mailref.c - see mailref.h.
 */
#include "mailref.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"

#define TAG_LABEL "berichtd-mail:"
#define REF_KEY_LABEL "berichtd-ref-key"
#define HMAC_BLOCK 64

static bool is_hex_lower(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool mailref_ref_valid(const char *ref)
{
	if (!ref)
		return false;
	for (int i = 0; i < MAILREF_REF_HEX; i++)
		if (!is_hex_lower(ref[i]))
			return false;
	return ref[MAILREF_REF_HEX] == '\0';
}

bool mailref_tag(const uint8_t *key, size_t keylen, const char *ref, char tag[MAILREF_TAG_LEN])
{
	char data[sizeof(TAG_LABEL) + MAILREF_REF_HEX];
	char mac[CRYPTO_HEX256_LEN];

	tag[0] = '\0';
	if (!mailref_ref_valid(ref) || keylen == 0)
		return false;
	int n = snprintf(data, sizeof(data), "%s%s", TAG_LABEL, ref);
	if (!crypto_hmac_sha256_hex(key, keylen, data, (size_t)n, mac))
		return false;
	memcpy(tag, mac, MAILREF_TAG_HEX);
	tag[MAILREF_TAG_HEX] = '\0';
	return true;
}

bool mailref_tag_ok(const uint8_t *key, size_t keylen, const char *ref, const char *tag)
{
	char want[MAILREF_TAG_LEN], got[MAILREF_TAG_LEN];

	if (!tag || strlen(tag) != MAILREF_TAG_HEX || !mailref_tag(key, keylen, ref, want))
		return false;
	for (int i = 0; i < MAILREF_TAG_HEX; i++)
		got[i] = (char)tolower((unsigned char)tag[i]);
	got[MAILREF_TAG_HEX] = '\0';
	return crypto_ct_equal(want, got, MAILREF_TAG_HEX);
}

bool mailref_message_id(const char *ref, const char *domain, char *out, size_t cap)
{
	int n = snprintf(out, cap, "<%s@%s>", ref, domain);
	return mailref_ref_valid(ref) && n > 0 && (size_t)n < cap;
}

bool mailref_verp(const uint8_t *key, size_t keylen, const char *ref, const char *domain, char *out,
		  size_t cap)
{
	char tag[MAILREF_TAG_LEN];
	if (!mailref_tag(key, keylen, ref, tag))
		return false;
	int n = snprintf(out, cap, MAILREF_VERP_PREFIX "%s-%s@%s", ref, tag, domain);
	return n > 0 && (size_t)n < cap;
}

bool mailref_envid(const uint8_t *key, size_t keylen, const char *ref, char *out, size_t cap)
{
	char tag[MAILREF_TAG_LEN];
	if (!mailref_tag(key, keylen, ref, tag))
		return false;
	int n = snprintf(out, cap, MAILREF_ENVID_PREFIX "%s-%s", ref, tag);
	return n > 0 && (size_t)n < cap;
}

bool mailref_ref_pads(const uint8_t *key, size_t keylen, char ipad[MAILREF_PAD_HEX + 1],
		      char opad[MAILREF_PAD_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	char refkey_hex[CRYPTO_HEX256_LEN];
	uint8_t refkey[HMAC_BLOCK] = {0};
	size_t len = 0;

	ipad[0] = opad[0] = '\0';
	if (keylen == 0 ||
	    !crypto_hmac_sha256_hex(key, keylen, REF_KEY_LABEL, sizeof(REF_KEY_LABEL) - 1,
				    refkey_hex) ||
	    !crypto_hex_decode(refkey_hex, refkey, sizeof(refkey), &len))
		return false;
	for (int i = 0; i < HMAC_BLOCK; i++) {
		uint8_t in = refkey[i] ^ 0x36, out = refkey[i] ^ 0x5c;
		ipad[2 * i] = hex[in >> 4];
		ipad[2 * i + 1] = hex[in & 0xf];
		opad[2 * i] = hex[out >> 4];
		opad[2 * i + 1] = hex[out & 0xf];
	}
	ipad[MAILREF_PAD_HEX] = opad[MAILREF_PAD_HEX] = '\0';
	return true;
}

size_t mailref_scan(const char *p, const char *end, char ref[MAILREF_REF_LEN],
		    char tag[MAILREF_TAG_LEN])
{
	const size_t need = MAILREF_REF_HEX + 1 + MAILREF_TAG_HEX;
	if (end < p || (size_t)(end - p) < need)
		return 0;
	for (size_t i = 0; i < need; i++) {
		char c = (char)tolower((unsigned char)p[i]);
		if (i == MAILREF_REF_HEX ? c != '-' : !is_hex_lower(c))
			return 0;
	}
	/* a longer run of hex is someone else's name */
	if ((size_t)(end - p) > need && isxdigit((unsigned char)p[need]))
		return 0;
	for (int i = 0; i < MAILREF_REF_HEX; i++)
		ref[i] = (char)tolower((unsigned char)p[i]);
	ref[MAILREF_REF_HEX] = '\0';
	memcpy(tag, p + MAILREF_REF_HEX + 1, MAILREF_TAG_HEX);
	tag[MAILREF_TAG_HEX] = '\0';
	return need;
}
