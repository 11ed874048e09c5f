/*
 * smtp_verdict.c - the relay's replies to one mail -> sent, retry, bounce
 * (see smtp_verdict.h).
 *
 * What libesmtp 1.1 reports (measured against tests/harness/smtp_script.py;
 * the same with and without PIPELINING, which only changes when commands
 * are written, never what is reported):
 *
 *  - MAIL FROM is always flushed and answered before RCPT TO is written,
 *    also with PIPELINING. After a refused MAIL nothing more of that mail is
 *    sent: its RCPT and transfer codes stay 0.
 *  - After RCPT TO libesmtp sends DATA whatever RCPT got (with PIPELINING in
 *    the same write as RCPT, without it after the reply). With no accepted
 *    recipient the relay answers DATA 503 (Postfix: "503 5.5.1 Error: need
 *    RCPT command") or 554, or 354, after which libesmtp sends only the dot
 *    and gets the end of data's refusal; with CHUNKING it sends the content
 *    in BDAT chunks and each gets "554 5.5.1 no valid recipients". That
 *    second refusal is what libesmtp reports as the message's status: it
 *    says nothing about the citizen's address (issue 14: a greylisting 451
 *    became a hard bounce because the 503 was looked at first).
 *  - libesmtp keeps one status for DATA and the end of data. A lost
 *    connection clears it (code 0), but a timeout leaves the last reply it
 *    read: 354 after the final dot, or 250 of an earlier BDAT chunk with
 *    the LAST one unanswered. So smtp.c passes the status only once
 *    libesmtp has finished the message (SMTP_EV_MESSAGESENT) and tells the
 *    DATA reply from the end of data's by whether content went out
 *    (SMTP_EV_MESSAGEDATA).
 *  - A 2xx to DATA (no 354) is a protocol error: libesmtp quits without
 *    sending the content but reports the 250 as the message's status.
 *  - The greeting and EHLO have no per-mail status: refused (4xx/5xx other
 *    than the 50x that make libesmtp fall back to HELO), lost or timed
 *    out, every mail of the session is left with MAIL code 0; so is every
 *    mail after the one that lost the connection.
 *
 * The decision, first matching row wins ("lost" = code 0: the connection
 * was lost or timed out before the reply; "other" = a code no SMTP server
 * should give there; "-" = not reached):
 *
 *   MAIL   RCPT   DATA            end of data   verdict   last_error quotes
 *   lost   -      -               -             TEMPFAIL  session (why)
 *   4xx    -      -               -             TEMPFAIL  MAIL
 *   5xx    -      -               -             TEMPFAIL  MAIL     (1)
 *   other  -      -               -             TEMPFAIL  MAIL
 *   2xx    lost   -               -             TEMPFAIL  RCPT
 *   2xx    5xx    any or lost     any or lost   PERMFAIL  RCPT     (2)
 *   2xx    4xx    any or lost     any or lost   TEMPFAIL  RCPT     (3)
 *   2xx    other  any or lost     any or lost   TEMPFAIL  RCPT
 *   2xx    2xx    lost            -             TEMPFAIL  DATA
 *   2xx    2xx    4xx             -             TEMPFAIL  DATA
 *   2xx    2xx    5xx             -             PERMFAIL  DATA
 *   2xx    2xx    2xx or other    -             TEMPFAIL  DATA     (4)
 *   2xx    2xx    354             lost          TEMPFAIL  end      (5)
 *   2xx    2xx    354             4xx           TEMPFAIL  end
 *   2xx    2xx    354             5xx           PERMFAIL  end
 *   2xx    2xx    354             other         TEMPFAIL  end
 *   2xx    2xx    354             2xx           SENT      end
 *   With CHUNKING there is no DATA: the BDAT replies count as the end of
 *   data (a refused chunk ends the message; every chunk 2xx = 2xx).
 *
 * (1) A refused sender is our configuration or reputation, never the
 *     citizen's address: retried until the retry span ends (then failed).
 * (2) The recipient's 5xx came before whatever happened next.
 * (3) Greylisting: the DATA or BDAT refusal that follows is only the
 *     consequence of having no recipient.
 * (4) The content never went out.
 * (5) After the final dot, before the reply: the relay may have the mail.
 *     Sent again with the same Message-ID, so it is recognisable.
 */
#include "notify/smtp_verdict.h"

#include <stdio.h>
#include <string.h>

static int reply_class(int code)
{
	return code / 100;
}

struct smtp_verdict smtp_verdict(const struct smtp_codes *c)
{
	if (c->mail == 0)
		return (struct smtp_verdict){SMTP_TEMPFAIL, SMTP_STEP_SESSION};
	if (reply_class(c->mail) != 2)
		return (struct smtp_verdict){SMTP_TEMPFAIL, SMTP_STEP_MAIL};
	if (reply_class(c->rcpt) == 5)
		return (struct smtp_verdict){SMTP_PERMFAIL, SMTP_STEP_RCPT};
	if (reply_class(c->rcpt) != 2) /* lost, 4xx, other */
		return (struct smtp_verdict){SMTP_TEMPFAIL, SMTP_STEP_RCPT};

	enum smtp_step step = c->content_sent ? SMTP_STEP_END : SMTP_STEP_DATA;
	switch (reply_class(c->transfer)) {
	case 2: return (struct smtp_verdict){c->content_sent ? SMTP_SENT : SMTP_TEMPFAIL, step};
	case 5: return (struct smtp_verdict){SMTP_PERMFAIL, step};
	default: /* lost, 4xx, other */ return (struct smtp_verdict){SMTP_TEMPFAIL, step};
	}
}

static const char *const step_names[] = {
	[SMTP_STEP_SESSION] = "session", [SMTP_STEP_MAIL] = "MAIL FROM",
	[SMTP_STEP_RCPT] = "RCPT TO",    [SMTP_STEP_DATA] = "DATA",
	[SMTP_STEP_END] = "end of data",
};

void smtp_verdict_reason(char *buf, size_t size, enum smtp_step step,
			 const struct smtp_reply *reply)
{
	const char *name = step_names[step];
	const char *text = reply->text ? reply->text : "";
	int tlen = (int)strcspn(text, "\r\n");

	if (size == 0)
		return;
	if (reply->code == 0) {
		if (tlen > 0)
			snprintf(buf, size, "%s: %.*s", name, tlen, text);
		else if (step == SMTP_STEP_SESSION)
			snprintf(buf, size, "%s: connection lost before MAIL FROM was answered",
				 name);
		else if (step == SMTP_STEP_END)
			snprintf(buf, size,
				 "%s: no reply (connection lost or timed out); the relay may have "
				 "the mail",
				 name);
		else
			snprintf(buf, size, "%s: no reply (connection lost or timed out)", name);
		return;
	}
	/* libesmtp splits the enhanced code off when the relay announced
	 * ENHANCEDSTATUSCODES; put it back so the row reads like the relay's line */
	if (reply->enh[0] == reply_class(reply->code) && reply->enh[0] != 0)
		snprintf(buf, size, "%s: %d %d.%d.%d %.*s", name, reply->code, reply->enh[0],
			 reply->enh[1], reply->enh[2], tlen, text);
	else
		snprintf(buf, size, "%s: %d %.*s", name, reply->code, tlen, text);
	/* no trailing blank when the relay sent a bare code */
	size_t n = strlen(buf);
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = '\0';
}
