/*
 * smtp.c - libesmtp session wrapper (see smtp.h).
 *
 * A mail counts as sent only when the relay answered 2xx to its DATA: that
 * is the moment responsibility passes to the relay. Anything else is a
 * temporary failure unless the relay gave a 5xx for the recipient or the
 * transfer.
 */
#include "smtp.h"

#include <libesmtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define HOSTPORT_MAX 300

static void set_result(struct smtp_mail *m, enum smtp_result r, int code, const char *text)
{
	m->result = r;
	m->code = code;
	snprintf(m->reason, sizeof(m->reason), "%d %s", code, text ? text : "");
	m->reason[strcspn(m->reason, "\r\n")] = '\0';
}

static void fail_all(struct smtp_mail *mails, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		mails[i].result = SMTP_TEMPFAIL;
		mails[i].code = 0;
		snprintf(mails[i].reason, sizeof(mails[i].reason), "%s", why);
	}
}

void smtp_send_batch(const struct smtp_relay *relay, struct smtp_mail *mails, size_t n)
{
	char hostport[HOSTPORT_MAX];
	smtp_session_t session = smtp_create_session();
	smtp_message_t *msgs = calloc(n, sizeof(*msgs));
	smtp_recipient_t *rcpts = calloc(n, sizeof(*rcpts));

	if (!session || !msgs || !rcpts) {
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

	for (size_t i = 0; i < n; i++) {
		msgs[i] = smtp_add_message(session);
		if (!msgs[i] || !smtp_set_reverse_path(msgs[i], mails[i].envelope_from) ||
		    !(rcpts[i] = smtp_add_recipient(msgs[i], mails[i].rcpt)) ||
		    !smtp_set_message_str(msgs[i], (void *)mails[i].text) ||
		    (mails[i].envid && !smtp_dsn_set_envid(msgs[i], mails[i].envid))) {
			fail_all(mails, n, "cannot build SMTP session");
			goto out;
		}
	}

	if (!smtp_start_session(session)) {
		char buf[128];
		smtp_strerror(smtp_errno(), buf, sizeof(buf));
		log_warn("smtp: session to %s failed: %s", hostport, buf);
		/* mails whose transfer completed before the failure keep their status */
	}

	for (size_t i = 0; i < n; i++) {
		const smtp_status_t *rs = smtp_recipient_status(rcpts[i]);
		const smtp_status_t *ms = smtp_message_transfer_status(msgs[i]);
		const smtp_status_t *ps = smtp_reverse_path_status(msgs[i]);
		if (ps && ps->code >= 400) {
			/* the relay refused our sender: our problem, never the citizen's
			 * address; retried until the retry span ends */
			set_result(&mails[i], SMTP_TEMPFAIL, ps->code, ps->text);
		} else if (rs && rs->code >= 500) {
			set_result(&mails[i], SMTP_PERMFAIL, rs->code, rs->text);
		} else if (ms && ms->code >= 200 && ms->code < 300) {
			set_result(&mails[i], SMTP_SENT, ms->code, ms->text);
		} else if (ms && ms->code >= 500) {
			set_result(&mails[i], SMTP_PERMFAIL, ms->code, ms->text);
		} else if (rs && rs->code >= 400) {
			set_result(&mails[i], SMTP_TEMPFAIL, rs->code, rs->text);
		} else if (ms && ms->code > 0) {
			set_result(&mails[i], SMTP_TEMPFAIL, ms->code, ms->text);
		} else {
			mails[i].result = SMTP_TEMPFAIL;
			mails[i].code = 0;
			snprintf(mails[i].reason, sizeof(mails[i].reason), "no answer from relay");
		}
	}
out:
	if (session)
		smtp_destroy_session(session);
	free(msgs);
	free(rcpts);
}
