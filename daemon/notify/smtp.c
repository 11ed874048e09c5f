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

#include <openssl/err.h>
#include <openssl/x509.h>
/* before libesmtp.h, which declares the STARTTLS and AUTH calls only then */
#include <auth-client.h>
#include <libesmtp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
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
	atomic_llong *progress_ms; /* see struct smtp_relay */
	atomic_llong *pace_us;     /* see struct smtp_relay */
	int64_t last_us;           /* clock_mono_us() at the start or the last mail's answer */
	bool mail_written;
	char refusal[SESSION_LINE_MAX];     /* first 4xx/5xx line before it, or "" */
	char tls_problem[SESSION_LINE_MAX]; /* why TLS to the relay failed, or "" */
};

/* What libESMTP found wrong with TLS to the relay; the mail is not sent. */
static void on_tls_event(struct session_track *st, int event, va_list ap)
{
	switch (event) {
	case SMTP_EV_EXTNA_STARTTLS:
		snprintf(st->tls_problem, sizeof(st->tls_problem),
			 "relay offers no STARTTLS (smtp.starttls = require)");
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		long vfy = va_arg(ap, long);
		snprintf(st->tls_problem, sizeof(st->tls_problem),
			 "relay certificate not valid: %s", X509_verify_cert_error_string(vfy));
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE:
		snprintf(st->tls_problem, sizeof(st->tls_problem), "relay sent no certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		(void)va_arg(ap, int *);
		const char *name = va_arg(ap, const char *);
		snprintf(st->tls_problem, sizeof(st->tls_problem),
			 "relay certificate is for %.60s, not for smtp.host", name ? name : "?");
		break;
	}
	case SMTP_EV_WEAK_CIPHER:
		snprintf(st->tls_problem, sizeof(st->tls_problem), "relay offered a weak cipher");
		break;
	case SMTP_EV_UNUSABLE_CA_LIST:
		snprintf(st->tls_problem, sizeof(st->tls_problem), "cannot use the CA list");
		break;
	default: break;
	}
	/* every "ok" argument stays 0: libESMTP then quits the session */
}

static void on_event(smtp_session_t session, int event, void *arg, ...)
{
	va_list ap;
	(void)session;
	if (event == SMTP_EV_EXTNA_STARTTLS ||
	    (event >= SMTP_EV_WEAK_CIPHER && event != SMTP_EV_STARTTLS_OK &&
	     event <= SMTP_EV_UNUSABLE_CA_LIST)) {
		va_start(ap, arg);
		on_tls_event(arg, event, ap);
		va_end(ap);
		return;
	}
	if (event != SMTP_EV_MESSAGEDATA && event != SMTP_EV_MESSAGESENT)
		return; /* the others keep libesmtp's defaults (an absent DSN is no error) */
	va_start(ap, arg);
	smtp_message_t msg = va_arg(ap, smtp_message_t);
	va_end(ap);
	struct msg_track *t = smtp_message_get_application_data(msg);
	if (!t)
		return;
	if (event == SMTP_EV_MESSAGEDATA) {
		t->content_sent = true;
		return;
	}
	t->finished = true;
	struct session_track *st = arg;
	if (st->pace_us) {
		int64_t now = clock_mono_us();
		int64_t per = now - st->last_us > 0 ? now - st->last_us : 1;
		int64_t old = atomic_load(st->pace_us);
		atomic_store(st->pace_us, old > 0 ? (old + per) / 2 : per);
		st->last_us = now;
	}
}

/* Sees the dialogue except message content; only the part before the first
 * MAIL FROM matters: the greeting's or EHLO's refusal. */
static void on_monitor(const char *buf, int len, int writing, void *arg)
{
	struct session_track *st = arg;
	/* a line, not a byte: a relay that trickles bytes holds us up all the same */
	if (st->progress_ms && len > 0 && (writing || memchr(buf, '\n', (size_t)len)))
		atomic_store(st->progress_ms, clock_mono_ms());
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

void smtp_fail_all(struct smtp_mail *mails, size_t n, const char *why)
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
		if (st->tls_problem[0] && !st->mail_written) {
			r.text = st->tls_problem;
		} else if (st->refusal[0] && !st->mail_written) {
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

/* SASL asks for the user and the password; nothing else is known. */
static int on_auth_interact(auth_client_request_t request, char **result, int fields, void *arg)
{
	const struct smtp_relay *relay = arg;
	for (int i = 0; i < fields; i++) {
		if (request[i].flags & AUTH_USER)
			result[i] = (char *)relay->user;
		else if (request[i].flags & AUTH_PASS)
			result[i] = (char *)relay->password;
		else
			return 0;
	}
	return 1;
}

/* STARTTLS as [smtp] starttls says, and AUTH when a user is set. */
static bool set_security(smtp_session_t session, const struct smtp_relay *relay,
			 auth_context_t *auth)
{
	if (relay->tls != SMTP_TLS_OFF) {
		if (!relay->tls_ctx || !smtp_starttls_set_ctx(session, relay->tls_ctx) ||
		    !smtp_starttls_enable(session, relay->tls == SMTP_TLS_REQUIRE
							   ? Starttls_REQUIRED
							   : Starttls_ENABLED))
			return false;
	}
	if (!relay->user || !*relay->user)
		return true;
	*auth = auth_create_context();
	/* PLAIN and LOGIN send the password as it is: allowed, since the config
	 * refuses AUTH without starttls = require */
	return *auth && auth_set_mechanism_flags(*auth, AUTH_PLUGIN_PLAIN, 0) &&
	       auth_set_interact_cb(*auth, on_auth_interact, (void *)relay) &&
	       smtp_auth_set_context(session, *auth);
}

void smtp_init(void)
{
	auth_client_init();
}

enum smtp_tls smtp_tls_mode(const char *name)
{
	if (name && strcmp(name, "off") == 0)
		return SMTP_TLS_OFF;
	if (name && strcmp(name, "require") == 0)
		return SMTP_TLS_REQUIRE;
	return SMTP_TLS_OPPORTUNISTIC;
}

/* TLS 1.2: ECDHE with AES-GCM or ChaCha20 (NCSC "good"); 1.3 keeps its defaults */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
	"ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

SSL_CTX *smtp_tls_context(const char *ca_file, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
		snprintf(err, errlen, "cannot make a TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	int ok = (ca_file && *ca_file) ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
				       : SSL_CTX_set_default_verify_paths(ctx);
	if (!ok) {
		snprintf(err, errlen, "smtp.ca_file: cannot load %s: %s", ca_file ? ca_file : "",
			 ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

bool smtp_send_batch(const struct smtp_relay *relay, struct smtp_mail *mails, size_t n, char *why,
		     size_t whylen)
{
	bool reached = true;
	char hostport[HOSTPORT_MAX];
	char errbuf[128];
	const char *session_error = NULL;
	struct session_track st = {
		relay->progress_ms, relay->pace_us, clock_mono_us(), false, "", ""};
	auth_context_t auth = NULL;
	smtp_session_t session = smtp_create_session();
	smtp_message_t *msgs = calloc(n, sizeof(*msgs));
	smtp_recipient_t *rcpts = calloc(n, sizeof(*rcpts));
	struct msg_track *track = calloc(n, sizeof(*track));

	if (!session || !msgs || !rcpts || !track) {
		smtp_fail_all(mails, n, "out of memory");
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
				 relay->timeout_ms);
	if (!smtp_set_eventcb(session, on_event, &st) ||
	    !smtp_set_monitorcb(session, on_monitor, &st, 0) ||
	    !set_security(session, relay, &auth)) {
		smtp_fail_all(mails, n, "cannot build SMTP session");
		goto out;
	}

	for (size_t i = 0; i < n; i++) {
		msgs[i] = smtp_add_message(session);
		if (!msgs[i] || !smtp_set_reverse_path(msgs[i], mails[i].envelope_from) ||
		    !(rcpts[i] = smtp_add_recipient(msgs[i], mails[i].rcpt)) ||
		    !smtp_set_message_str(msgs[i], (void *)mails[i].text) ||
		    (mails[i].envid && !smtp_dsn_set_envid(msgs[i], mails[i].envid))) {
			smtp_fail_all(mails, n, "cannot build SMTP session");
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
	if (auth)
		auth_destroy_context(auth);
	free(msgs);
	free(rcpts);
	free(track);
	return reached;
}
