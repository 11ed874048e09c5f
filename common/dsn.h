/*
 * dsn.h - reads a delivery status notification (RFC 3464, a
 * multipart/report; report-type=delivery-status) that the relay routed back
 * to our VERP address, and says which notification it is about and whether
 * it is a hard bounce. Pure; thread-safe.
 */
#ifndef BERICHTD_DSN_H
#define BERICHTD_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mailref.h"

#define DSN_ADDR_MAX 320
#define DSN_STATUS_MAX 16

enum dsn_attribution {
	DSN_UNATTRIBUTED, /* names none of our mails (a Message-ID alone attributes nothing) */
	DSN_BAD_TAG,      /* names one in our form, but its tag does not verify: forged */
	DSN_ATTRIBUTED,   /* names a mail by a VERP address or envelope id whose tag verifies */
};

struct dsn_report {
	enum dsn_attribution attribution;
	char ref[MAILREF_REF_LEN];   /* the mail's ref when attributed, else "" */
	bool failed;                 /* Action: failed */
	bool permanent;              /* Status: 5.x.x */
	char status[DSN_STATUS_MAX]; /* e.g. "5.1.1" */
	char final_recipient[DSN_ADDR_MAX];
};

/*
 * Parses msg (len bytes, need not be NUL-terminated). The mail is found, in
 * this order, from a bounce+<ref>-<tag>@<bounce_domain> address in the
 * top-level headers (the VERP envelope the DSN was delivered to) or an
 * Original-Envelope-Id berichtd-<ref>-<tag>; the tag must verify under key
 * (common/mailref.h). The returned Message-ID is not used: anyone can
 * write one. Returns false when the message has no delivery-status part
 * (not a DSN).
 */
bool dsn_parse(const char *msg, size_t len, const char *bounce_domain, const uint8_t *key,
	       size_t keylen, struct dsn_report *out);

/* A hard bounce: the relay gave up on the recipient for good. */
bool dsn_is_hard(const struct dsn_report *r);

#endif
