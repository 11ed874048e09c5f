/*
 * fuzz_mime.c - common/mime.c: header encoding (RFC 2047 words, folding)
 * and the quoted-printable body, from fields split at '\x1f': from name,
 * subject, body, to address, Message-ID, language. A built mail must be
 * 7-bit, with CRLF only, header lines within their limits, and no header
 * a field could have injected.
 */
#include <string.h>

#include "common/mime.h"
#include "fuzz.h"

static void check_mail(const char *m, size_t len)
{
	if (strlen(m) != len)
		abort();
	size_t line = 0;
	bool in_head = true;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];
		if (c >= 0x80 || (c == '\r' && m[i + 1] != '\n') ||
		    (c == '\n' && (!i || m[i - 1] != '\r')))
			abort();
		if (c == '\r')
			continue;
		if (c != '\n') {
			line++;
			continue;
		}
		if (in_head && line == 0)
			in_head = false;
		/* an address or a Message-ID may not be folded (mime.h): 262 at most */
		if (in_head ? line > 262 + 14 : line > MIME_QP_LINE_MAX)
			abort();
		line = 0;
	}
	if (in_head || len < 2 || m[len - 1] != '\n')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	char *f[6];
	fuzz_fields(s, f, 6);
	struct mime_mail m = {
		.from_name = f[0],
		.from_addr = "noreply@berichtenbox.example.nl",
		.to_addr = *f[3] ? f[3] : "burger@example.nl",
		.subject = f[1],
		.body = f[2],
		.message_id = *f[4] ? f[4] : "<abc@bounce.example.nl>",
		.date_unix = 1748779200,
		.language = *f[5] ? f[5] : NULL,
	};
	size_t len = 0;
	char *mail = mime_build(&m, &len);
	if (mail)
		check_mail(mail, len);
	if (mail && (!mime_header_safe(m.subject) || !mime_addr_valid(m.to_addr)))
		abort();
	free(mail);
	(void)mime_addr_valid(s);
	(void)mime_header_safe(s);
	free(s);
	return 0;
}
