/*
 * test_tls.c - the pure parts of daemon/core/tls: the OIN in a client
 * certificate's subject serialNumber, and fingerprint lists.
 *
 * needs: daemon/core/tls.c (daemon/core/framing.c for the link)
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "daemon/core/tls.h"

static X509 *cert_with(const char *serial, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	if (cn)
		X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC, (unsigned char *)cn, -1,
					   -1, 0);
	if (serial)
		X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC,
					   (unsigned char *)serial, -1, -1, 0);
	return x;
}

Test(tls, oin_is_the_twenty_digits_of_serialNumber)
{
	char oin[TLS_OIN_LEN + 1];
	X509 *x = cert_with("00000001234567890000", "Gemeente");
	cr_assert(tls_cert_oin(x, oin));
	cr_expect_str_eq(oin, "00000001234567890000");
	X509_free(x);
}

Test(tls, no_oin_without_serialNumber_or_with_another_shape)
{
	char oin[TLS_OIN_LEN + 1];
	const char *bad[] = {NULL, "1234567890123456789", "000000012345678900001",
			     "0000000123456789000a", "OIN:0000000123456789"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		X509 *x = cert_with(bad[i], "CN");
		cr_expect(!tls_cert_oin(x, oin), "%s", bad[i] ? bad[i] : "(none)");
		X509_free(x);
	}
}

Test(tls, fingerprint_is_sha256_hex)
{
	char fp[TLS_FINGERPRINT_LEN + 1];
	X509 *x = cert_with("00000001234567890000", "a");
	EVP_PKEY *k = EVP_EC_gen("P-256");
	cr_assert(k);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_set_pubkey(x, k);
	cr_assert(X509_sign(x, k, EVP_sha256()) > 0);
	EVP_PKEY_free(k);
	tls_cert_fingerprint(x, fp);
	cr_expect_eq(strlen(fp), 64);
	for (size_t i = 0; i < 64; i++)
		cr_expect(strchr("0123456789abcdef", fp[i]) != NULL);
	X509_free(x);
}

Test(tls, fingerprint_lists_ignore_colons_spaces_and_case)
{
	const char *fp = "ab01cd";
	cr_expect(tls_fingerprint_listed("AB:01:CD", fp));
	cr_expect(tls_fingerprint_listed("ffff, ab01cd", fp));
	cr_expect(tls_fingerprint_listed(" ab 01 cd ,x", fp));
	cr_expect(!tls_fingerprint_listed("ab01c", fp));
	cr_expect(!tls_fingerprint_listed("ab01cde", fp));
	cr_expect(!tls_fingerprint_listed("", fp));
	cr_expect(!tls_fingerprint_listed(NULL, fp));
	cr_expect(!tls_fingerprint_listed("ab01cd", ""));
}
