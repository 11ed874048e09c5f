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

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

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

/* [smtp] starttls */
enum smtp_tls { SMTP_TLS_OFF, SMTP_TLS_OPPORTUNISTIC, SMTP_TLS_REQUIRE };

struct smtp_relay {
	const char *host;
	int port;
	const char *helo; /* NULL or "" : libesmtp's default */
	long timeout_ms; /* per protocol step; libESMTP takes milliseconds (its docs say seconds) */
	/* set to clock_mono_ms() whenever a line goes to or comes from the
	 * relay, so the watchdog sees a session that moves; NULL: not kept */
	atomic_llong *progress_ms;
	enum smtp_tls tls;
	SSL_CTX *tls_ctx;     /* from smtp_tls_context(); NULL with SMTP_TLS_OFF */
	const char *user;     /* SMTP AUTH, or NULL */
	const char *password; /* with user */
	/* the relay's pace in microseconds per mail, folded in (half old, half
	 * new) as each mail's end of data is answered, so the workers size their
	 * next sessions by it; NULL: not kept */
	atomic_llong *pace_us;
};

/* Once per process, before the first session (libESMTP's SASL client). */
void smtp_init(void);

/*
 * The TLS context of every session to the relay: TLS 1.2 or newer, the
 * NCSC "good" ciphers for 1.2, the relay's certificate checked against
 * ca_file (NULL or "": the system's store) and, by libESMTP, against the
 * relay's host name. NULL with a reason in err.
 */
SSL_CTX *smtp_tls_context(const char *ca_file, char *err, size_t errlen);

/* "off", "opportunistic", "require" (checked by the config) */
enum smtp_tls smtp_tls_mode(const char *name);

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

/* Marks the n mails a temporary failure for why, as a session that never started does. */
void smtp_fail_all(struct smtp_mail *mails, size_t n, const char *why);

#endif
