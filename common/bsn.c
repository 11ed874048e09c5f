/*
 * bsn.c - syntax checks for BSN (with its eleven-check) and OIN.
 *
 * Only syntax: a BSN that passes here may still not exist. The checks are
 * strict (no spaces, dots or other separators) because callers are
 * machines, and a lenient parser would let two spellings of one number
 * reach the database.
 */
#include "bsn.h"

#include <stddef.h>

enum {
	BSN_MODULUS = 11,
	BSN_FIRST_WEIGHT = BSN_LEN, /* d1 weighs 9, d8 weighs 2 */
	BSN_CHECK_WEIGHT = -1,      /* the last digit counts negatively */
};

static bool bsn_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* True if s holds exactly n ASCII digits and then the NUL. */
static bool bsn_all_digits(const char *s, size_t n)
{
	if (s == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!bsn_is_digit(s[i])) /* also stops at an early NUL */
			return false;
	return s[n] == '\0';
}

bool bsn_valid(const char *s)
{
	if (!bsn_all_digits(s, BSN_LEN))
		return false;

	int sum = 0;
	bool all_zero = true;
	for (int i = 0; i < BSN_LEN; i++) {
		const int digit = s[i] - '0';
		const int weight = (i == BSN_LEN - 1) ? BSN_CHECK_WEIGHT : BSN_FIRST_WEIGHT - i;
		sum += weight * digit;
		if (digit != 0)
			all_zero = false;
	}
	/* C's % keeps the sign, but zero is zero either way. */
	return !all_zero && sum % BSN_MODULUS == 0;
}

bool oin_valid(const char *s)
{
	return bsn_all_digits(s, OIN_LEN);
}
