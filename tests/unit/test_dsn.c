/*
 * Unit tests for DSN reading (common/dsn.c), with reports shaped like the
 * ones Postfix and Exim send.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/dsn.h"

#define DOMAIN "berichtenbox.example"

static const char POSTFIX_HARD[] =
	"Return-Path: <>\r\n"
	"Delivered-To: bounce+4711@berichtenbox.example\r\n"
	"From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n"
	"Subject: Undelivered Mail Returned to Sender\r\n"
	"To: bounce+4711@berichtenbox.example\r\n"
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
	"Message-ID: <notificatie.4711@berichtenbox.example>\r\n"
	"Subject: U heeft een nieuw bericht\r\n"
	"\r\n"
	"--ABC123--\r\n";

Test(dsn, postfix_hard_bounce_is_attributed_by_verp_and_hard)
{
	struct dsn_report r;
	cr_assert(dsn_parse(POSTFIX_HARD, strlen(POSTFIX_HARD), DOMAIN, &r));
	cr_assert_eq(r.notification_id, 4711);
	cr_assert(r.failed);
	cr_assert(r.permanent);
	cr_assert(dsn_is_hard(&r));
	cr_assert_str_eq(r.status, "5.1.1");
	cr_assert_str_eq(r.final_recipient, "jan@example.nl");
}

Test(dsn, without_verp_header_the_returned_message_id_attributes_it)
{
	const char *m = strstr(POSTFIX_HARD, "MIME-Version");
	struct dsn_report r;
	cr_assert(dsn_parse(m, strlen(m), DOMAIN, &r));
	cr_assert_eq(r.notification_id, 4711);
}

Test(dsn, envelope_id_attributes_it)
{
	const char *m = "Content-Type: multipart/report; report-type=delivery-status\n\n"
			"--b\nContent-Type: message/delivery-status\n\n"
			"Original-Envelope-Id: berichtd-99\nReporting-MTA: dns; x\n\n"
			"Final-Recipient: rfc822; a@b.nl\nAction: failed\nStatus: 5.0.0\n--b--\n";
	struct dsn_report r;
	cr_assert(dsn_parse(m, strlen(m), DOMAIN, &r));
	cr_assert_eq(r.notification_id, 99);
	cr_assert(dsn_is_hard(&r));
}

Test(dsn, delayed_report_is_not_hard)
{
	const char *m = "To: bounce+5@berichtenbox.example\n"
			"Content-Type: multipart/report; report-type=delivery-status\n\n"
			"--b\nContent-Type: message/delivery-status\n\n"
			"Final-Recipient: rfc822; a@b.nl\nAction: delayed\nStatus: 4.4.1\n--b--\n";
	struct dsn_report r;
	cr_assert(dsn_parse(m, strlen(m), DOMAIN, &r));
	cr_assert_eq(r.notification_id, 5);
	cr_assert_not(dsn_is_hard(&r));
}

Test(dsn, failed_with_temporary_status_is_not_hard)
{
	const char *m = "To: bounce+5@berichtenbox.example\n\n"
			"Content-Type: message/delivery-status\n\n"
			"Action: failed\nStatus: 4.2.2\n";
	struct dsn_report r;
	cr_assert(dsn_parse(m, strlen(m), DOMAIN, &r));
	cr_assert_not(dsn_is_hard(&r));
}

Test(dsn, other_domain_does_not_attribute)
{
	const char *m = "To: bounce+5@berichtenbox.example.evil\n\n"
			"Content-Type: message/delivery-status\n\nAction: failed\nStatus: 5.1.1\n";
	struct dsn_report r;
	cr_assert(dsn_parse(m, strlen(m), DOMAIN, &r));
	cr_assert_eq(r.notification_id, 0);
}

Test(dsn, plain_mail_is_not_a_dsn)
{
	const char *m = "To: bounce+5@berichtenbox.example\nSubject: hello\n\nJust text.\n";
	struct dsn_report r;
	cr_assert_not(dsn_parse(m, strlen(m), DOMAIN, &r));
}

Test(dsn, truncated_input_does_not_overread)
{
	struct dsn_report r;
	for (size_t n = 0; n < strlen(POSTFIX_HARD); n += 7)
		(void)dsn_parse(POSTFIX_HARD, n, DOMAIN, &r);
	cr_assert(true);
}
