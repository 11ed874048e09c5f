/*
 * bsn.h - validation of Dutch identifiers that arrive in API requests:
 * the citizen service number (BSN) and the organisation identification
 * number (OIN) of the calling organisation.
 */
#ifndef BERICHTD_COMMON_BSN_H
#define BERICHTD_COMMON_BSN_H

#include <stdbool.h>

/* Length of a BSN and of an OIN, in digits. */
#define BSN_LEN 9
#define OIN_LEN 20

/*
 * True if s is exactly 9 ASCII digits (leading zeros allowed), not
 * "000000000", and passes the eleven-check
 * 9*d1 + 8*d2 + 7*d3 + 6*d4 + 5*d5 + 4*d6 + 3*d7 + 2*d8 - 1*d9 = 0 (mod 11).
 * s == NULL gives false. Pure, thread-safe. Never log the value.
 */
bool bsn_valid(const char *s);

/* True if s is exactly 20 ASCII digits. NULL gives false. Pure. */
bool oin_valid(const char *s);

#endif /* BERICHTD_COMMON_BSN_H */
