/*
 * Unit tests for the names a mail carries (common/mailref.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/crypto.h"
#include "common/mailref.h"

#define REF "00112233445566778899aabbccddeeff"

static const uint8_t KEY_A[32] = {'a'};
static const uint8_t KEY_B[32] = {'b'};

Test(mailref, names_carry_the_ref_and_a_tag)
{
	char verp[MAILREF_NAME_MAX], envid[MAILREF_NAME_MAX], msgid[MAILREF_NAME_MAX];
	char tag[MAILREF_TAG_LEN];
	cr_assert(mailref_tag(KEY_A, sizeof(KEY_A), REF, tag));
	cr_assert_eq(strlen(tag), MAILREF_TAG_HEX);
	cr_assert(mailref_verp(KEY_A, sizeof(KEY_A), REF, "b.example", verp, sizeof(verp)));
	cr_assert(mailref_envid(KEY_A, sizeof(KEY_A), REF, envid, sizeof(envid)));
	cr_assert(mailref_message_id(REF, "b.example", msgid, sizeof(msgid)));
	char want[MAILREF_NAME_MAX];
	snprintf(want, sizeof(want), "bounce+" REF "-%s@b.example", tag);
	cr_assert_str_eq(verp, want);
	snprintf(want, sizeof(want), "berichtd-" REF "-%s", tag);
	cr_assert_str_eq(envid, want);
	cr_assert_str_eq(msgid, "<" REF "@b.example>");
	/* a local part stays within RFC 5321's 64 octets */
	cr_assert_lt(strchr(verp, '@') - verp, 64);
}

Test(mailref, the_tag_depends_on_key_and_ref)
{
	char a[MAILREF_TAG_LEN], b[MAILREF_TAG_LEN], c[MAILREF_TAG_LEN];
	cr_assert(mailref_tag(KEY_A, sizeof(KEY_A), REF, a));
	cr_assert(mailref_tag(KEY_B, sizeof(KEY_B), REF, b));
	cr_assert(mailref_tag(KEY_A, sizeof(KEY_A), "ffeeddccbbaa99887766554433221100", c));
	cr_assert_str_neq(a, b);
	cr_assert_str_neq(a, c);
	cr_assert(mailref_tag_ok(KEY_A, sizeof(KEY_A), REF, a));
	cr_assert_not(mailref_tag_ok(KEY_B, sizeof(KEY_B), REF, a));
	cr_assert_not(mailref_tag_ok(KEY_A, sizeof(KEY_A), REF, "0000000000000000"));
	cr_assert_not(mailref_tag_ok(KEY_A, sizeof(KEY_A), REF, ""));
	cr_assert_not(mailref_tag_ok(KEY_A, sizeof(KEY_A), REF, NULL));
}

Test(mailref, refs_are_32_lowercase_hex)
{
	cr_assert(mailref_ref_valid(REF));
	cr_assert_not(mailref_ref_valid("00112233445566778899AABBCCDDEEFF"));
	cr_assert_not(mailref_ref_valid("0011"));
	cr_assert_not(mailref_ref_valid(REF "0"));
	cr_assert_not(mailref_ref_valid(NULL));
	char tag[MAILREF_TAG_LEN];
	cr_assert_not(mailref_tag(KEY_A, sizeof(KEY_A), "4711", tag));
}

Test(mailref, scan_reads_ref_and_tag_and_nothing_longer)
{
	char ref[MAILREF_REF_LEN], tag[MAILREF_TAG_LEN];
	const char *s = "00112233445566778899AABBCCDDEEFF-0123456789ABCDEF@x";
	cr_assert_eq(mailref_scan(s, s + strlen(s), ref, tag), 49);
	cr_assert_str_eq(ref, REF);
	cr_assert_str_eq(tag, "0123456789ABCDEF");
	const char *longer = REF "-0123456789abcdef0@x";
	cr_assert_eq(mailref_scan(longer, longer + strlen(longer), ref, tag), 0);
	const char *shorter = REF "-0123456789abcde";
	cr_assert_eq(mailref_scan(shorter, shorter + strlen(shorter), ref, tag), 0);
}

/* SQL's sha256(opad || sha256(ipad || m)) over the pads is HMAC-SHA256 under
 * the ref key, HMAC(bounce key, "berichtd-ref-key"): the claim's refs */
Test(mailref, ref_pads_make_the_hmac_under_the_ref_key)
{
	char ipad[MAILREF_PAD_HEX + 1], opad[MAILREF_PAD_HEX + 1];
	cr_assert(mailref_ref_pads(KEY_A, sizeof(KEY_A), ipad, opad));
	cr_assert_eq(strlen(ipad), MAILREF_PAD_HEX);
	cr_assert_eq(strlen(opad), MAILREF_PAD_HEX);
	uint8_t ib[64], ob[64], buf[64 + 32];
	size_t n;
	cr_assert(crypto_hex_decode(ipad, ib, sizeof(ib), &n) && n == 64);
	cr_assert(crypto_hex_decode(opad, ob, sizeof(ob), &n) && n == 64);
	const char msg[] = "17:1764700000123456:0190c0de-0000-7000-8000-000000000001";
	uint8_t inner_in[64 + sizeof(msg) - 1];
	memcpy(inner_in, ib, 64);
	memcpy(inner_in + 64, msg, sizeof(msg) - 1);
	char inner[CRYPTO_HEX256_LEN], outer[CRYPTO_HEX256_LEN], want[CRYPTO_HEX256_LEN];
	crypto_sha256_hex(inner_in, sizeof(inner_in), inner);
	memcpy(buf, ob, 64);
	cr_assert(crypto_hex_decode(inner, buf + 64, 32, &n) && n == 32);
	crypto_sha256_hex(buf, sizeof(buf), outer);

	char refkey_hex[CRYPTO_HEX256_LEN];
	uint8_t refkey[32];
	cr_assert(crypto_hmac_sha256_hex(KEY_A, sizeof(KEY_A), "berichtd-ref-key", 16, refkey_hex));
	cr_assert(crypto_hex_decode(refkey_hex, refkey, sizeof(refkey), &n) && n == 32);
	cr_assert(crypto_hmac_sha256_hex(refkey, sizeof(refkey), msg, sizeof(msg) - 1, want));
	cr_assert_str_eq(outer, want);

	/* another bounce key, other pads; no key, none */
	char ipad_b[MAILREF_PAD_HEX + 1], opad_b[MAILREF_PAD_HEX + 1];
	cr_assert(mailref_ref_pads(KEY_B, sizeof(KEY_B), ipad_b, opad_b));
	cr_assert_str_neq(ipad, ipad_b);
	cr_assert_not(mailref_ref_pads(KEY_A, 0, ipad_b, opad_b));
}
