/*
 * smtp.h - sending prepared mails through the relay with libesmtp.
 *
 * libesmtp is blocking by nature, so this runs only in delivery worker
 * threads (DESIGN.md section 3). One call sends a batch of mails over one
 * SMTP session (one connection, several transactions) and reports per mail
 * what the relay said. Thread-safe: no shared state.
 */
#ifndef BERICHTD_SMTP_H
#define BERICHTD_SMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "notify/smtp_verdict.h" /* enum smtp_result */

struct smtp_mail {
	const char *envelope_from; /* VERP address */
	const char *envid;         /* DSN ENVID, returned in a DSN if the relay supports it */
	const char *rcpt;
	const char *text; /* full RFC 5322 message, CRLF line ends */
	/* out */
	enum smtp_result result;
	int code;
	char reason[160]; /* the deciding step and the relay's reply, for logs and the row */
};

struct smtp_relay {
	const char *host;
	int port;
	const char *helo; /* NULL or "" : libesmtp's default */
	long timeout_s;
};

/*
 * Sends all mails in one session; fills in each mail's result. Returns
 * false when the relay could not be used at all: not reached (the
 * connection refused, timed out, closed before the greeting) or it refused
 * the session (a 4xx/5xx greeting or EHLO); why then says which, as the
 * system or the relay put it. The caller logs that once per outage
 * (common/outage.h), not per mail.
 */
bool smtp_send_batch(const struct smtp_relay *relay, struct smtp_mail *mails, size_t n, char *why,
		     size_t whylen);

#endif
