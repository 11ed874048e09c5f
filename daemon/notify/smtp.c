/*
 * smtp.c - libesmtp session wrapper (see smtp.h).
 *
 * A mail counts as sent only when the relay answered 2xx to its end of
 * data: that is the moment responsibility passes to the relay. What every
 * other combination of replies means is decided by smtp_verdict() (the
 * table is in smtp_verdict.c); this file only collects what libesmtp
 * reports, plus two things it does not keep per mail: whether the content
 * went out and whether the message's final reply was read (event
 * callback), and the relay's refusal of the greeting or EHLO (protocol
 * monitor), so that a row's last_error names the real cause.
 */
#include "notify/smtp.h"

#include <libesmtp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "notify/smtp_verdict.h"

#define HOSTPORT_MAX 300
#define SESSION_LINE_MAX 128

/* what the callbacks learn about one message */
struct msg_track {
	bool content_sent; /* SMTP_EV_MESSAGEDATA: DATA got 3xx (or BDAT), content written */
	bool finished;     /* SMTP_EV_MESSAGESENT: libesmtp read the message's final reply */
};

/* what the protocol monitor learns about the session before the first MAIL */
struct session_track {
	bool mail_written;
	char refusal[SESSION_LINE_MAX]; /* first 4xx/5xx line before it, or "" */
};

static void on_event(smtp_session_t session, int event, void *arg, ...)
{
	(void)session;
	(void)arg;
	if (event != SMTP_EV_MESSAGEDATA && event != SMTP_EV_MESSAGESENT)
		return; /* the others keep libesmtp's defaults (an absent DSN is no error) */
	va_list ap;
	va_start(ap, arg);
	smtp_message_t msg = va_arg(ap, smtp_message_t);
	va_end(ap);
	struct msg_track *t = smtp_message_get_application_data(msg);
	if (!t)
		return;
	if (event == SMTP_EV_MESSAGEDATA)
		t->content_sent = true;
	else
		t->finished = true;
}

/* Sees the dialogue except message content; only the part before the first
 * MAIL FROM matters: the greeting's or EHLO's refusal. */
static void on_monitor(const char *buf, int len, int writing, void *arg)
{
	struct session_track *st = arg;
	if (st->mail_written || len <= 0)
		return;
	if (writing) {
		st->mail_written = memmem(buf, (size_t)len, "MAIL FROM:", 10) != NULL;
		return;
	}
	if (st->refusal[0] == '\0' && len >= 3 && (buf[0] == '4' || buf[0] == '5')) {
		int n = 0;
		while (n < len && n < SESSION_LINE_MAX - 1 && buf[n] != '\r' && buf[n] != '\n')
			n++;
		memcpy(st->refusal, buf, (size_t)n);
		st->refusal[n] = '\0';
	}
}

static void fail_all(struct smtp_mail *mails, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		mails[i].result = SMTP_TEMPFAIL;
		mails[i].code = 0;
		snprintf(mails[i].reason, sizeof(mails[i].reason), "%s", why);
	}
}

static struct smtp_reply reply_of(const smtp_status_t *st)
{
	struct smtp_reply r = {0, {0, 0, 0}, NULL};
	if (st && st->code > 0) {
		r.code = st->code;
		r.enh[0] = st->enh_class;
		r.enh[1] = st->enh_subject;
		r.enh[2] = st->enh_detail;
		r.text = st->text;
	}
	return r;
}

/* Fills in one mail's result from what libesmtp and the callbacks saw. */
static void judge(struct smtp_mail *m, smtp_message_t msg, smtp_recipient_t rcpt,
		  const struct msg_track *t, const struct session_track *st,
		  const char *session_error)
{
	const smtp_status_t *ps = smtp_reverse_path_status(msg);
	const smtp_status_t *rs = smtp_recipient_status(rcpt);
	const smtp_status_t *ms = t->finished ? smtp_message_transfer_status(msg) : NULL;
	struct smtp_codes codes = {
		.mail = ps ? ps->code : 0,
		.rcpt = rs ? rs->code : 0,
		.transfer = ms ? ms->code : 0,
		.content_sent = t->content_sent,
	};
	struct smtp_verdict v = smtp_verdict(&codes);
	struct smtp_reply r = {0, {0, 0, 0}, NULL};

	switch (v.cause) {
	case SMTP_STEP_SESSION:
		if (st->refusal[0] && !st->mail_written) {
			/* "421 4.3.2 busy" or "421-...": the code, then the rest as sent */
			r.code = atoi(st->refusal);
			r.text = st->refusal + strnlen(st->refusal, 4);
		} else if (!st->mail_written) {
			r.text = session_error; /* NULL: lost or timed out after a good start */
		}
		break;
	case SMTP_STEP_MAIL: r = reply_of(ps); break;
	case SMTP_STEP_RCPT: r = reply_of(rs); break;
	case SMTP_STEP_DATA:
	case SMTP_STEP_END: r = reply_of(ms); break;
	}
	m->result = v.result;
	m->code = r.code;
	smtp_verdict_reason(m->reason, sizeof(m->reason), v.cause, &r);
}

bool smtp_send_batch(const struct smtp_relay *relay, struct smtp_mail *mails, size_t n, char *why,
		     size_t whylen)
{
	bool reached = true;
	char hostport[HOSTPORT_MAX];
	char errbuf[128];
	const char *session_error = NULL;
	struct session_track st = {false, ""};
	smtp_session_t session = smtp_create_session();
	smtp_message_t *msgs = calloc(n, sizeof(*msgs));
	smtp_recipient_t *rcpts = calloc(n, sizeof(*rcpts));
	struct msg_track *track = calloc(n, sizeof(*track));

	if (!session || !msgs || !rcpts || !track) {
		fail_all(mails, n, "out of memory");
		goto out;
	}
	snprintf(hostport, sizeof(hostport), "%s:%d", relay->host, relay->port);
	smtp_set_server(session, hostport);
	if (relay->helo && *relay->helo)
		smtp_set_hostname(session, relay->helo);
	const int timeouts[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER,
				Timeout_DATA2};
	for (size_t i = 0; i < sizeof(timeouts) / sizeof(timeouts[0]); i++)
		smtp_set_timeout(session, timeouts[i] | Timeout_OVERRIDE_RFC2822_MINIMUM,
				 relay->timeout_s);
	if (!smtp_set_eventcb(session, on_event, NULL) ||
	    !smtp_set_monitorcb(session, on_monitor, &st, 0)) {
		fail_all(mails, n, "cannot build SMTP session");
		goto out;
	}

	for (size_t i = 0; i < n; i++) {
		msgs[i] = smtp_add_message(session);
		if (!msgs[i] || !smtp_set_reverse_path(msgs[i], mails[i].envelope_from) ||
		    !(rcpts[i] = smtp_add_recipient(msgs[i], mails[i].rcpt)) ||
		    !smtp_set_message_str(msgs[i], (void *)mails[i].text) ||
		    (mails[i].envid && !smtp_dsn_set_envid(msgs[i], mails[i].envid))) {
			fail_all(mails, n, "cannot build SMTP session");
			goto out;
		}
		smtp_message_set_application_data_release(msgs[i], &track[i], NULL);
	}

	if (!smtp_start_session(session)) {
		smtp_strerror(smtp_errno(), errbuf, sizeof(errbuf));
		session_error = errbuf;
		if (!st.mail_written) {
			/* nothing of a mail went out: the relay is unusable, an outage */
			reached = false;
			if (st.refusal[0])
				snprintf(why, whylen, "session refused: %s", st.refusal);
			else
				snprintf(why, whylen, "%s", errbuf);
		} else {
			log_warn("smtp: session to %s failed: %s%s%s", hostport, errbuf,
				 st.refusal[0] ? ": " : "", st.refusal);
		}
		/* mails whose transfer completed before the failure keep their status */
	}

	for (size_t i = 0; i < n; i++)
		judge(&mails[i], msgs[i], rcpts[i], &track[i], &st, session_error);
out:
	if (session)
		smtp_destroy_session(session);
	free(msgs);
	free(rcpts);
	free(track);
	return reached;
}
