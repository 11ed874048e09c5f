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

#define DSN_ADDR_MAX 320
#define DSN_STATUS_MAX 16

struct dsn_report {
	int64_t notification_id;          /* 0 when it cannot be attributed */
	bool failed;                      /* Action: failed */
	bool permanent;                   /* Status: 5.x.x */
	char status[DSN_STATUS_MAX];      /* e.g. "5.1.1" */
	char final_recipient[DSN_ADDR_MAX];
};

/*
 * Parses msg (len bytes, need not be NUL-terminated). The notification is
 * found, in this order, from: a bounce+<id>@<bounce_domain> address in the
 * top-level headers (the VERP envelope the DSN was delivered to), an
 * Original-Envelope-Id "berichtd-<id>", or the returned Message-ID
 * <notificatie.<id>@<bounce_domain>>. Returns false when the message has no
 * delivery-status part (not a DSN).
 */
bool dsn_parse(const char *msg, size_t len, const char *bounce_domain, struct dsn_report *out);

/* A hard bounce: the relay gave up on the recipient for good. */
bool dsn_is_hard(const struct dsn_report *r);

#endif
