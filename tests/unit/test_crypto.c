/*
 * test_crypto.c - specification of common/crypto against published test
 * vectors (FIPS 180-2 for SHA-256, RFC 4231 for HMAC-SHA256).
 *
 * needs: common/crypto.c   (link: libcrypto)
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <string.h>

#include "crypto.h"

static const char SHA256_EMPTY[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static bool is_lower_hex(const char *s)
{
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
            return false;
    return true;
}

/* ---- SHA-256 --------------------------------------------------------- */

Test(crypto, sha256_of_abc_matches_fips_180_2)
{
    char hex[CRYPTO_HEX256_LEN];
    crypto_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(crypto, sha256_of_empty_input)
{
    char hex[CRYPTO_HEX256_LEN];
    crypto_sha256_hex("", 0, hex);
    cr_assert_str_eq(hex, SHA256_EMPTY);
}

Test(crypto, sha256_accepts_null_with_zero_length)
{
    char hex[CRYPTO_HEX256_LEN];
    crypto_sha256_hex(NULL, 0, hex);
    cr_assert_str_eq(hex, SHA256_EMPTY);
}

Test(crypto, sha256_of_two_block_message)
{
    static const char msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex[CRYPTO_HEX256_LEN];
    crypto_sha256_hex(msg, strlen(msg), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* ---- HMAC-SHA256 ----------------------------------------------------- */

Test(crypto, hmac_sha256_matches_rfc_4231_case_1)
{
    uint8_t key[20];
    memset(key, 0x0b, sizeof key);
    char hex[CRYPTO_HEX256_LEN];
    cr_assert(crypto_hmac_sha256_hex(key, sizeof key, "Hi There", 8, hex));
    cr_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

Test(crypto, hmac_sha256_matches_rfc_4231_case_2)
{
    static const char data[] = "what do ya want for nothing?";
    char hex[CRYPTO_HEX256_LEN];
    cr_assert(crypto_hmac_sha256_hex("Jefe", 4, data, strlen(data), hex));
    cr_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Test(crypto, hmac_sha256_hashes_key_longer_than_block_rfc_4231_case_6)
{
    static const char data[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    uint8_t key[131];
    memset(key, 0xaa, sizeof key);
    char hex[CRYPTO_HEX256_LEN];
    cr_assert(crypto_hmac_sha256_hex(key, sizeof key, data, strlen(data), hex));
    cr_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

Test(crypto, hmac_sha256_accepts_empty_key_and_data)
{
    char hex[CRYPTO_HEX256_LEN];
    cr_assert(crypto_hmac_sha256_hex(NULL, 0, NULL, 0, hex));
    cr_assert_str_eq(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* ---- randomness ------------------------------------------------------ */

Test(crypto, random_token_is_64_lowercase_hex_chars)
{
    char tok[CRYPTO_TOKEN_LEN];
    cr_assert(crypto_random_token(tok));
    cr_assert_eq(strlen(tok), CRYPTO_TOKEN_LEN - 1);
    cr_assert(is_lower_hex(tok), "not lowercase hex: %s", tok);
}

Test(crypto, random_tokens_differ)
{
    char a[CRYPTO_TOKEN_LEN], b[CRYPTO_TOKEN_LEN];
    cr_assert(crypto_random_token(a));
    cr_assert(crypto_random_token(b));
    cr_assert_str_neq(a, b);
}

Test(crypto, random_bytes_fills_the_buffer)
{
    uint8_t buf[64] = {0};
    const uint8_t zero[64] = {0};
    cr_assert(crypto_random_bytes(buf, sizeof buf));
    cr_assert_neq(memcmp(buf, zero, sizeof buf), 0); /* 2^-512 chance of a false alarm */
}

Test(crypto, random_bytes_of_zero_length_succeeds)
{
    cr_assert(crypto_random_bytes(NULL, 0));
}

/* ---- constant-time comparison ---------------------------------------- */

Test(crypto, ct_equal_true_for_equal_buffers)
{
    cr_assert(crypto_ct_equal("secret-token", "secret-token", 12));
}

Test(crypto, ct_equal_false_when_last_byte_differs)
{
    cr_assert_not(crypto_ct_equal("secret-token", "secret-tokem", 12));
}

Test(crypto, ct_equal_false_when_first_byte_differs)
{
    cr_assert_not(crypto_ct_equal("secret-token", "Secret-token", 12));
}

Test(crypto, ct_equal_true_for_zero_length)
{
    cr_assert(crypto_ct_equal("a", "b", 0));
}

/* ---- hex decoding ---------------------------------------------------- */

Test(crypto, hex_decode_accepts_both_cases)
{
    uint8_t out[4];
    size_t n = 0;
    cr_assert(crypto_hex_decode("DeadBEef", out, sizeof out, &n));
    cr_assert_eq(n, 4);
    const uint8_t want[4] = {0xde, 0xad, 0xbe, 0xef};
    cr_assert_arr_eq(out, want, sizeof want);
}

Test(crypto, hex_decode_round_trips_a_sha256_digest)
{
    char hex[CRYPTO_HEX256_LEN];
    uint8_t raw[32];
    size_t n = 0;
    crypto_sha256_hex("abc", 3, hex);
    cr_assert(crypto_hex_decode(hex, raw, sizeof raw, &n));
    cr_assert_eq(n, 32);
    cr_assert_eq(raw[0], 0xba);
    cr_assert_eq(raw[31], 0xad);
}

Test(crypto, hex_decode_of_empty_string_is_zero_bytes)
{
    uint8_t out[1];
    size_t n = 99;
    cr_assert(crypto_hex_decode("", out, sizeof out, &n));
    cr_assert_eq(n, 0);
}

Test(crypto, hex_decode_rejects_odd_length)
{
    uint8_t out[4];
    size_t n;
    cr_assert_not(crypto_hex_decode("abc", out, sizeof out, &n));
}

Test(crypto, hex_decode_rejects_non_hex_characters)
{
    uint8_t out[4];
    size_t n;
    cr_assert_not(crypto_hex_decode("abcg", out, sizeof out, &n));
    cr_assert_not(crypto_hex_decode("ab c", out, sizeof out, &n));
    cr_assert_not(crypto_hex_decode("0x12", out, sizeof out, &n));
}

Test(crypto, hex_decode_rejects_output_larger_than_capacity)
{
    uint8_t out[2];
    size_t n;
    cr_assert_not(crypto_hex_decode("aabbcc", out, sizeof out, &n));
}

Test(crypto, hex_decode_rejects_null)
{
    uint8_t out[2];
    size_t n;
    cr_assert_not(crypto_hex_decode(NULL, out, sizeof out, &n));
}
