/*
 * test_bsn.c - specification of common/bsn: the BSN eleven-check and the
 * OIN syntax.
 *
 * needs: common/bsn.c
 */
#include <criterion/criterion.h>

#include <string.h>

#include "bsn.h"

/* ---- BSN: accepted --------------------------------------------------- */

Test(bsn, accepts_111222333)
{
    /* 9+8+7+12+10+8+9+6-3 = 66 = 6*11 */
    cr_assert(bsn_valid("111222333"));
}

Test(bsn, accepts_123456782)
{
    /* 9+16+21+24+25+24+21+16-2 = 154 = 14*11 */
    cr_assert(bsn_valid("123456782"));
}

Test(bsn, accepts_999999990)
{
    /* 9*44 - 0 = 396 = 36*11 */
    cr_assert(bsn_valid("999999990"));
}

Test(bsn, accepts_leading_zero)
{
    /* 0+8+14+18+20+20+18+14-2 = 110 = 10*11 */
    cr_assert(bsn_valid("012345672"));
}

/* ---- BSN: rejected --------------------------------------------------- */

Test(bsn, rejects_number_failing_eleven_check)
{
    /* 147 = 13*11 + 4 */
    cr_assert_not(bsn_valid("123456789"));
}

Test(bsn, rejects_every_single_digit_change_of_a_valid_number)
{
    /* Weights 1..9 and digit deltas 1..9 are never a multiple of 11. */
    char s[] = "123456782";
    for (size_t pos = 0; pos < strlen(s); pos++) {
        const char orig = s[pos];
        for (int d = '0'; d <= '9'; d++) {
            if (d == orig)
                continue;
            s[pos] = (char)d;
            cr_assert_not(bsn_valid(s), "accepted %s", s);
        }
        s[pos] = orig;
    }
}

Test(bsn, rejects_all_zeros_although_it_passes_the_check)
{
    cr_assert_not(bsn_valid("000000000"));
}

Test(bsn, rejects_eight_digits)
{
    /* the digits of the valid 012345672 without its leading zero */
    cr_assert_not(bsn_valid("12345672"));
}

Test(bsn, rejects_ten_digits)
{
    cr_assert_not(bsn_valid("1234567820"));
}

Test(bsn, rejects_letters)
{
    cr_assert_not(bsn_valid("12345678a"));
    cr_assert_not(bsn_valid("A23456782"));
}

Test(bsn, rejects_separators_and_spaces)
{
    cr_assert_not(bsn_valid("1234.56.782"));
    cr_assert_not(bsn_valid(" 123456782"));
    cr_assert_not(bsn_valid("123456782 "));
    cr_assert_not(bsn_valid("123 56782"));
}

Test(bsn, rejects_sign)
{
    cr_assert_not(bsn_valid("+23456782"));
    cr_assert_not(bsn_valid("-23456782"));
}

Test(bsn, rejects_non_ascii_digits)
{
    /* FULLWIDTH DIGIT ONE (U+FF11) followed by eight ASCII digits */
    cr_assert_not(bsn_valid("\xef\xbc\x91" "23456782"));
}

Test(bsn, rejects_empty_string)
{
    cr_assert_not(bsn_valid(""));
}

Test(bsn, rejects_null)
{
    cr_assert_not(bsn_valid(NULL));
}

/* ---- OIN ------------------------------------------------------------- */

Test(oin, accepts_twenty_digits)
{
    cr_assert(oin_valid("00000001003214345000"));
}

Test(oin, rejects_nineteen_digits)
{
    cr_assert_not(oin_valid("0000000100321434500"));
}

Test(oin, rejects_twenty_one_digits)
{
    cr_assert_not(oin_valid("000000010032143450000"));
}

Test(oin, rejects_letters)
{
    cr_assert_not(oin_valid("0000000100321434500A"));
}

Test(oin, rejects_empty_and_null)
{
    cr_assert_not(oin_valid(""));
    cr_assert_not(oin_valid(NULL));
}
