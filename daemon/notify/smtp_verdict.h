/*
 * smtp_verdict.h - what the relay's replies to one mail mean for the
 * notification: sent, try again later, or a hard bounce of the address.
 *
 * Pure functions (no libesmtp, no I/O), so the whole decision table is
 * specified by unit tests; daemon/smtp.c feeds them what libesmtp reported.
 * The table and the libesmtp behaviour behind it are in smtp_verdict.c.
 * Thread-safe.
 */
#ifndef BERICHTD_SMTP_VERDICT_H
#define BERICHTD_SMTP_VERDICT_H

#include <stdbool.h>
#include <stddef.h>

/* What became of one mail. */
enum smtp_result {
	SMTP_SENT,     /* the relay accepted the mail (2xx to the end of data) */
	SMTP_TEMPFAIL, /* 4xx, a refused sender, or the connection failed: try again later */
	SMTP_PERMFAIL, /* a 5xx for the recipient: hard bounce (table in smtp_verdict.c) */
};

/* The step whose reply (or missing reply) decided. */
enum smtp_step {
	SMTP_STEP_SESSION, /* no reply to MAIL FROM: connect, greeting, EHLO, or lost before */
	SMTP_STEP_MAIL,    /* MAIL FROM */
	SMTP_STEP_RCPT,    /* RCPT TO */
	SMTP_STEP_DATA,    /* DATA, before any content was sent */
	SMTP_STEP_END,     /* the end of data (the final dot, or BDAT ... LAST) */
};

/* Reply codes for one mail; 0 = no reply (connection lost, timed out, or
 * the step was never reached). */
struct smtp_codes {
	int mail;          /* MAIL FROM */
	int rcpt;          /* RCPT TO (one recipient per mail) */
	int transfer;      /* the message's final reply: DATA's when it was not 3xx,
			      else the end of data's; 0 unless libesmtp finished the
			      message (see smtp.c) */
	bool content_sent; /* the content went out (DATA got 3xx, or BDAT was used) */
};

struct smtp_verdict {
	enum smtp_result result;
	enum smtp_step cause; /* the reply the row's last_error must quote */
};

/* The decision table (smtp_verdict.c). */
struct smtp_verdict smtp_verdict(const struct smtp_codes *c);

/* One reply as libesmtp splits it. */
struct smtp_reply {
	int code;         /* 0: none */
	int enh[3];       /* RFC 3463 code libesmtp split off the text ({0,0,0}: none) */
	const char *text; /* the reply text (first line used), or for code 0 an
				  explanation such as "Connection refused"; may be NULL */
};

/*
 * Writes the last_error for a verdict into buf (always NUL-terminated):
 * the step and the relay's reply as it sent it, e.g. "RCPT TO: 451 4.3.0
 * try later", or why there was none, e.g. "end of data: no reply
 * (connection lost or timed out); the relay may have the mail".
 */
void smtp_verdict_reason(char *buf, size_t size, enum smtp_step step,
			 const struct smtp_reply *reply);

#endif
