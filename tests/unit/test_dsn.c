/*
 * Unit tests for DSN reading (common/dsn.c), with reports shaped like the
 * ones Postfix and Exim send.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dsn.h"
#include "common/mailref.h"

#define DOMAIN "berichtenbox.example"
#define REF "0123456789abcdef0123456789abcdef"
#define OTHER_REF "fedcba9876543210fedcba9876543210"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* text with every "@VERP@" replaced by ref's VERP address, "@ENVID@" by its envelope id */
static char *fill(const char *tmpl, const char *ref)
{
	static char out[8192];
	char verp[MAILREF_NAME_MAX], envid[MAILREF_NAME_MAX];
	cr_assert(mailref_verp(KEY, sizeof(KEY), ref, DOMAIN, verp, sizeof(verp)));
	cr_assert(mailref_envid(KEY, sizeof(KEY), ref, envid, sizeof(envid)));
	size_t n = 0;
	for (const char *p = tmpl; *p && n + MAILREF_NAME_MAX < sizeof(out);) {
		if (strncmp(p, "@VERP@", 6) == 0) {
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", verp);
			p += 6;
		} else if (strncmp(p, "@ENVID@", 7) == 0) {
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", envid);
			p += 7;
		} else {
			out[n++] = *p++;
		}
	}
	out[n] = '\0';
	return out;
}

static bool parse(const char *m, struct dsn_report *r)
{
	return dsn_parse(m, strlen(m), DOMAIN, KEY, sizeof(KEY), r);
}

static const char POSTFIX_HARD[] =
	"Return-Path: <>\r\n"
	"Delivered-To: @VERP@\r\n"
	"From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n"
	"Subject: Undelivered Mail Returned to Sender\r\n"
	"To: @VERP@\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/report; report-type=delivery-status;\r\n"
	"\tboundary=\"ABC123\"\r\n"
	"\r\n"
	"--ABC123\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"I'm sorry to have to inform you that your message could not be delivered.\r\n"
	"\r\n"
	"--ABC123\r\n"
	"Content-Type: message/delivery-status\r\n"
	"\r\n"
	"Reporting-MTA: dns; relay.example\r\n"
	"Arrival-Date: Sun, 29 Nov 2026 20:00:00 +0100 (CET)\r\n"
	"\r\n"
	"Final-Recipient: rfc822; jan@example.nl\r\n"
	"Original-Recipient: rfc822;jan@example.nl\r\n"
	"Action: failed\r\n"
	"Status: 5.1.1\r\n"
	"Remote-MTA: dns; mx.example.nl\r\n"
	"Diagnostic-Code: smtp; 550 5.1.1 <jan@example.nl>: Recipient address rejected\r\n"
	"\r\n"
	"--ABC123\r\n"
	"Content-Type: text/rfc822-headers\r\n"
	"\r\n"
	"Message-ID: <" REF "@berichtenbox.example>\r\n"
	"Subject: U heeft een nieuw bericht\r\n"
	"\r\n"
	"--ABC123--\r\n";

Test(dsn, postfix_hard_bounce_is_attributed_by_verp_and_hard)
{
	struct dsn_report r;
	cr_assert(parse(fill(POSTFIX_HARD, REF), &r));
	cr_assert_eq(r.attribution, DSN_ATTRIBUTED);
	cr_assert_str_eq(r.ref, REF);
	cr_assert(r.failed);
	cr_assert(r.permanent);
	cr_assert(dsn_is_hard(&r));
	cr_assert_str_eq(r.status, "5.1.1");
	cr_assert_str_eq(r.final_recipient, "jan@example.nl");
}

Test(dsn, a_returned_message_id_alone_attributes_nothing)
{
	const char *m = strstr(fill(POSTFIX_HARD, REF), "MIME-Version");
	struct dsn_report r;
	cr_assert(parse(m, &r));
	cr_assert_eq(r.attribution, DSN_UNATTRIBUTED);
	cr_assert_str_eq(r.ref, "");
}

Test(dsn, envelope_id_attributes_it)
{
	const char *m = "Content-Type: multipart/report; report-type=delivery-status\n\n"
			"--b\nContent-Type: message/delivery-status\n\n"
			"Original-Envelope-Id: @ENVID@\nReporting-MTA: dns; x\n\n"
			"Final-Recipient: rfc822; a@b.nl\nAction: failed\nStatus: 5.0.0\n--b--\n";
	struct dsn_report r;
	cr_assert(parse(fill(m, REF), &r));
	cr_assert_eq(r.attribution, DSN_ATTRIBUTED);
	cr_assert_str_eq(r.ref, REF);
	cr_assert(dsn_is_hard(&r));
}

Test(dsn, a_made_up_tag_is_forged)
{
	const char *m = "To: bounce+" REF "-0000000000000000@berichtenbox.example\n"
			"Content-Type: multipart/report; report-type=delivery-status\n\n"
			"--b\nContent-Type: message/delivery-status\n\n"
			"Original-Envelope-Id: berichtd-" REF "-0123456789abcdef\n\n"
			"Final-Recipient: rfc822; a@b.nl\nAction: failed\nStatus: 5.1.1\n--b--\n";
	struct dsn_report r;
	cr_assert(parse(m, &r));
	cr_assert_eq(r.attribution, DSN_BAD_TAG);
	cr_assert_str_eq(r.ref, "");
}

Test(dsn, a_tag_of_another_mail_is_forged)
{
	/* the VERP address of one mail, its ref swapped for another's */
	char *m = fill("To: @VERP@\n\nContent-Type: message/delivery-status\n\n"
		       "Action: failed\nStatus: 5.1.1\n", REF);
	char *at = strstr(m, REF);
	cr_assert_not_null(at);
	memcpy(at, OTHER_REF, strlen(OTHER_REF));
	struct dsn_report r;
	cr_assert(parse(m, &r));
	cr_assert_eq(r.attribution, DSN_BAD_TAG);
}

Test(dsn, the_old_sequential_forms_attribute_nothing)
{
	const char *m = "To: bounce+4711@berichtenbox.example\n"
			"Content-Type: multipart/report; report-type=delivery-status\n\n"
			"--b\nContent-Type: message/delivery-status\n\n"
			"Original-Envelope-Id: berichtd-4711\n\n"
			"Final-Recipient: rfc822; a@b.nl\nAction: failed\nStatus: 5.1.1\n"
			"Message-ID: <notificatie.4711@berichtenbox.example>\n--b--\n";
	struct dsn_report r;
	cr_assert(parse(m, &r));
	cr_assert_eq(r.attribution, DSN_UNATTRIBUTED);
}

Test(dsn, an_upper_case_tag_from_a_relay_still_verifies)
{
	char *m = fill("To: @VERP@\n\nContent-Type: message/delivery-status\n\n"
		       "Action: failed\nStatus: 5.1.1\n", REF);
	for (char *p = strstr(m, "bounce+"); *p && *p != '@'; p++)
		*p = (char)toupper((unsigned char)*p);
	struct dsn_report r;
	cr_assert(parse(m, &r));
	cr_assert_eq(r.attribution, DSN_ATTRIBUTED);
	cr_assert_str_eq(r.ref, REF);
}

Test(dsn, delayed_report_is_not_hard)
{
	const char *m = "To: @VERP@\n"
			"Content-Type: multipart/report; report-type=delivery-status\n\n"
			"--b\nContent-Type: message/delivery-status\n\n"
			"Final-Recipient: rfc822; a@b.nl\nAction: delayed\nStatus: 4.4.1\n--b--\n";
	struct dsn_report r;
	cr_assert(parse(fill(m, REF), &r));
	cr_assert_eq(r.attribution, DSN_ATTRIBUTED);
	cr_assert_not(dsn_is_hard(&r));
}

Test(dsn, failed_with_temporary_status_is_not_hard)
{
	const char *m = "To: @VERP@\n\n"
			"Content-Type: message/delivery-status\n\n"
			"Action: failed\nStatus: 4.2.2\n";
	struct dsn_report r;
	cr_assert(parse(fill(m, REF), &r));
	cr_assert_not(dsn_is_hard(&r));
}

Test(dsn, other_domain_does_not_attribute)
{
	char *m = fill("To: @VERP@.evil\n\n"
		       "Content-Type: message/delivery-status\n\nAction: failed\nStatus: 5.1.1\n", REF);
	struct dsn_report r;
	cr_assert(parse(m, &r));
	cr_assert_eq(r.attribution, DSN_UNATTRIBUTED);
}

Test(dsn, plain_mail_is_not_a_dsn)
{
	const char *m = "To: bounce+5@berichtenbox.example\nSubject: hello\n\nJust text.\n";
	struct dsn_report r;
	cr_assert_not(parse(m, &r));
}

Test(dsn, truncated_input_does_not_overread)
{
	struct dsn_report r;
	/* every prefix, in a buffer of exactly that size, under ASan in CI */
	const char *full = fill(POSTFIX_HARD, REF);
	for (size_t n = 0; n <= strlen(full); n++) {
		char *cut = malloc(n ? n : 1);
		memcpy(cut, full, n);
		(void)dsn_parse(cut, n, DOMAIN, KEY, sizeof(KEY), &r);
		free(cut);
	}
	cr_assert(parse(full, &r));
}
