/*
 * test_smtp_verdict.c - specification of daemon/smtp_verdict: one test per
 * row of the decision table in smtp_verdict.c, each with the codes libesmtp
 * really reports for that row (measured with tests/harness/smtp_script.py;
 * the integration tests in test_smtp_replies.py drive the daemon through
 * the same rows), then the last_error texts.
 *
 * needs: daemon/smtp_verdict.c
 */
#include <criterion/criterion.h>

#include "daemon/notify/smtp_verdict.h"

#define LOST 0
#define NOT_SENT false
#define SENT_CONTENT true

static void expect(int mail, int rcpt, int transfer, bool content_sent, enum smtp_result result,
		   enum smtp_step cause)
{
	struct smtp_codes c = {mail, rcpt, transfer, content_sent};
	struct smtp_verdict v = smtp_verdict(&c);
	cr_assert_eq(v.result, result, "MAIL %d RCPT %d transfer %d content %d: result %d, want %d",
		     mail, rcpt, transfer, content_sent, v.result, result);
	cr_assert_eq(v.cause, cause, "MAIL %d RCPT %d transfer %d content %d: cause %d, want %d",
		     mail, rcpt, transfer, content_sent, v.cause, cause);
}

/* ------------------------------------------------------------ session, MAIL */

Test(smtp_verdict, no_reply_to_mail_is_a_tempfail_of_the_session)
{
	/* connect refused, greeting or EHLO refused or lost, MAIL unanswered,
	 * or an earlier mail of the batch lost the connection: all codes 0 */
	expect(LOST, LOST, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_SESSION);
}

Test(smtp_verdict, mail_4xx_is_a_tempfail_of_mail)
{
	expect(451, LOST, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_MAIL);
}

Test(smtp_verdict, mail_5xx_is_our_sender_never_the_citizen_so_a_tempfail)
{
	expect(554, LOST, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_MAIL);
	expect(550, LOST, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_MAIL);
}

Test(smtp_verdict, mail_other_code_is_a_tempfail_of_mail)
{
	expect(354, LOST, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_MAIL);
}

/* --------------------------------------------------------------------- RCPT */

Test(smtp_verdict, rcpt_lost_is_a_tempfail_of_rcpt)
{
	expect(250, LOST, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);
}

Test(smtp_verdict, rcpt_5xx_is_a_bounce_whatever_data_got)
{
	expect(250, 550, 503, NOT_SENT, SMTP_PERMFAIL, SMTP_STEP_RCPT);  /* DATA 503 */
	expect(250, 550, 554, NOT_SENT, SMTP_PERMFAIL, SMTP_STEP_RCPT);  /* 354, lone dot, 554 */
	expect(250, 550, LOST, NOT_SENT, SMTP_PERMFAIL, SMTP_STEP_RCPT); /* DATA lost */
	expect(250, 550, 554, SENT_CONTENT, SMTP_PERMFAIL, SMTP_STEP_RCPT); /* BDAT 554 */
	expect(250, 553, 250, NOT_SENT, SMTP_PERMFAIL, SMTP_STEP_RCPT);
}

/* issue 14: greylisting. The 503 to the pipelined DATA is no bounce. */
Test(smtp_verdict, rcpt_4xx_then_data_503_is_a_tempfail_of_rcpt)
{
	expect(250, 451, 503, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);
}

Test(smtp_verdict, rcpt_4xx_is_a_tempfail_whatever_data_got)
{
	expect(250, 451, 554, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);     /* 354, lone dot, 554 */
	expect(250, 451, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);    /* DATA lost */
	expect(250, 451, 554, SENT_CONTENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT); /* BDAT 554 */
	expect(250, 450, 451, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);
	expect(250, 421, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT); /* relay closing */
	/* even a relay that then says 250 to the empty message has not got it */
	expect(250, 451, 250, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);
}

Test(smtp_verdict, rcpt_other_code_is_a_tempfail_of_rcpt)
{
	expect(250, 354, 503, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_RCPT);
}

/* --------------------------------------------------------------------- DATA */

Test(smtp_verdict, data_lost_is_a_tempfail_of_data)
{
	expect(250, 250, LOST, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_DATA);
}

Test(smtp_verdict, data_4xx_is_a_tempfail_of_data)
{
	expect(250, 250, 451, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_DATA);
}

Test(smtp_verdict, data_5xx_with_an_accepted_recipient_is_a_bounce)
{
	expect(250, 251, 554, NOT_SENT, SMTP_PERMFAIL, SMTP_STEP_DATA);
}

Test(smtp_verdict, data_2xx_without_content_is_a_tempfail_not_sent)
{
	/* a 250 to DATA: libesmtp quits, the content never went out */
	expect(250, 250, 250, NOT_SENT, SMTP_TEMPFAIL, SMTP_STEP_DATA);
}

/* -------------------------------------------------------------- end of data */

Test(smtp_verdict, end_lost_is_a_tempfail_of_the_end)
{
	expect(250, 250, LOST, SENT_CONTENT, SMTP_TEMPFAIL, SMTP_STEP_END);
}

Test(smtp_verdict, end_4xx_is_a_tempfail_of_the_end)
{
	expect(250, 250, 451, SENT_CONTENT, SMTP_TEMPFAIL, SMTP_STEP_END);
}

Test(smtp_verdict, end_5xx_with_an_accepted_recipient_is_a_bounce)
{
	expect(250, 250, 552, SENT_CONTENT, SMTP_PERMFAIL, SMTP_STEP_END);
	expect(250, 250, 554, SENT_CONTENT, SMTP_PERMFAIL, SMTP_STEP_END);
}

Test(smtp_verdict, end_other_code_is_a_tempfail_of_the_end)
{
	expect(250, 250, 354, SENT_CONTENT, SMTP_TEMPFAIL, SMTP_STEP_END);
}

Test(smtp_verdict, end_2xx_with_an_accepted_recipient_is_sent)
{
	expect(250, 250, 250, SENT_CONTENT, SMTP_SENT, SMTP_STEP_END);
	expect(250, 251, 251, SENT_CONTENT, SMTP_SENT, SMTP_STEP_END);
}

/* ------------------------------------------------------------- last_error */

static const char *reason(enum smtp_step step, int code, int c, int s, int d, const char *text)
{
	static char buf[160];
	struct smtp_reply r = {code, {c, s, d}, text};
	smtp_verdict_reason(buf, sizeof(buf), step, &r);
	return buf;
}

Test(smtp_verdict_reason, puts_the_split_off_enhanced_code_back)
{
	cr_assert_str_eq(reason(SMTP_STEP_RCPT, 451, 4, 3, 0, "try later\r\n"),
			 "RCPT TO: 451 4.3.0 try later");
}

Test(smtp_verdict_reason, keeps_a_reply_whose_text_holds_the_enhanced_code)
{
	/* no ENHANCEDSTATUSCODES announced: libesmtp leaves it in the text */
	cr_assert_str_eq(reason(SMTP_STEP_MAIL, 554, 0, 0, 0, "5.7.1 sender refused"),
			 "MAIL FROM: 554 5.7.1 sender refused");
}

Test(smtp_verdict_reason, takes_the_first_line_of_a_multiline_reply)
{
	cr_assert_str_eq(reason(SMTP_STEP_END, 552, 5, 3, 4, "too big\r\nsecond line\r\n"),
			 "end of data: 552 5.3.4 too big");
}

Test(smtp_verdict_reason, a_bare_code_has_no_trailing_blank)
{
	cr_assert_str_eq(reason(SMTP_STEP_DATA, 554, 0, 0, 0, ""), "DATA: 554");
	cr_assert_str_eq(reason(SMTP_STEP_DATA, 451, 0, 0, 0, NULL), "DATA: 451");
}

Test(smtp_verdict_reason, an_enhanced_code_of_another_class_is_not_invented)
{
	/* a triplet libesmtp parsed from garbage is not the reply's */
	cr_assert_str_eq(reason(SMTP_STEP_RCPT, 451, 5, 1, 1, "odd"), "RCPT TO: 451 odd");
}

Test(smtp_verdict_reason, says_which_step_got_no_reply)
{
	cr_assert_str_eq(reason(SMTP_STEP_RCPT, 0, 0, 0, 0, NULL),
			 "RCPT TO: no reply (connection lost or timed out)");
	cr_assert_str_eq(reason(SMTP_STEP_DATA, 0, 0, 0, 0, NULL),
			 "DATA: no reply (connection lost or timed out)");
	cr_assert_str_eq(reason(SMTP_STEP_SESSION, 0, 0, 0, 0, NULL),
			 "session: connection lost before MAIL FROM was answered");
}

Test(smtp_verdict_reason, a_lost_end_of_data_says_the_relay_may_have_the_mail)
{
	cr_assert_str_eq(reason(SMTP_STEP_END, 0, 0, 0, 0, NULL),
			 "end of data: no reply (connection lost or timed out); the relay may "
			 "have the mail");
}

Test(smtp_verdict_reason, a_session_failure_quotes_why)
{
	cr_assert_str_eq(reason(SMTP_STEP_SESSION, 0, 0, 0, 0, "Connection refused"),
			 "session: Connection refused");
	cr_assert_str_eq(reason(SMTP_STEP_SESSION, 421, 0, 0, 0, "4.3.2 busy"),
			 "session: 421 4.3.2 busy");
}

Test(smtp_verdict_reason, is_cut_to_the_buffer)
{
	char buf[12];
	struct smtp_reply r = {451, {4, 3, 0}, "a long text that does not fit"};
	smtp_verdict_reason(buf, sizeof(buf), SMTP_STEP_RCPT, &r);
	cr_assert_str_eq(buf, "RCPT TO: 45");
}
