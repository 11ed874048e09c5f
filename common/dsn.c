/*
 * dsn.c - see dsn.h. A line scanner rather than a full MIME parser: a DSN's
 * machine-readable part is a flat list of "Field: value" lines, and the
 * attribution keys are unique strings of our own making.
 */
#include "dsn.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Case-insensitive search for needle in [h, end). */
static const char *find_ci(const char *h, const char *end, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = h; p + n <= end; p++)
		if (strncasecmp(p, needle, n) == 0)
			return p;
	return NULL;
}

/* "@domain" at p, not merely the start of a longer domain. */
static bool domain_at(const char *p, const char *end, const char *domain)
{
	size_t dl = strlen(domain);
	if (p >= end || *p != '@' || (size_t)(end - p - 1) < dl ||
	    strncasecmp(p + 1, domain, dl) != 0)
		return false;
	char after = p + 1 + dl < end ? p[1 + dl] : '\0';
	return !(isalnum((unsigned char)after) || after == '-' || after == '.');
}

/* Records a candidate ref/tag: attributed if its tag verifies, else forged. */
static void consider(struct dsn_report *out, const char *ref, const char *tag, const uint8_t *key,
		     size_t keylen)
{
	if (out->attribution == DSN_ATTRIBUTED)
		return;
	if (mailref_tag_ok(key, keylen, ref, tag)) {
		out->attribution = DSN_ATTRIBUTED;
		snprintf(out->ref, sizeof(out->ref), "%s", ref);
	} else {
		out->attribution = DSN_BAD_TAG;
	}
}

static void find_verp(const char *h, const char *end, const char *domain, const uint8_t *key,
		      size_t keylen, struct dsn_report *out)
{
	char ref[MAILREF_REF_LEN], tag[MAILREF_TAG_LEN];
	for (const char *p = h; (p = find_ci(p, end, MAILREF_VERP_PREFIX)); p++) {
		const char *q = p + strlen(MAILREF_VERP_PREFIX);
		size_t n = mailref_scan(q, end, ref, tag);
		if (n && domain_at(q + n, end, domain))
			consider(out, ref, tag, key, keylen);
	}
}

/* Copies the value of "Field:" at line start p (trimmed) into out. */
static void field_value(const char *p, const char *end, size_t namelen, char *out, size_t cap)
{
	p += namelen;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	size_t n = 0;
	while (p < end && *p != '\r' && *p != '\n' && n + 1 < cap)
		out[n++] = *p++;
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	out[n] = '\0';
}

/* Finds "Name:" at the start of a line in [from, end). */
static const char *find_field(const char *from, const char *end, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = from; p && p + n <= end;) {
		if (strncasecmp(p, name, n) == 0)
			return p;
		p = memchr(p, '\n', (size_t)(end - p));
		if (p)
			p++;
	}
	return NULL;
}

bool dsn_parse(const char *msg, size_t len, const char *domain, const uint8_t *key, size_t keylen,
	       struct dsn_report *out)
{
	const char *end = msg + len;
	char buf[DSN_ADDR_MAX];

	memset(out, 0, sizeof(*out));
	const char *ds = find_ci(msg, end, "message/delivery-status");
	if (!ds)
		return false;

	/* the top-level header block ends at the first empty line */
	const char *hend = msg;
	while (hend < end) {
		const char *nl = memchr(hend, '\n', (size_t)(end - hend));
		if (!nl)
			break;
		const char *next = nl + 1;
		if (next >= end || *next == '\n' ||
		    (*next == '\r' && next + 1 < end && next[1] == '\n')) {
			hend = next;
			break;
		}
		hend = next;
	}
	find_verp(msg, hend, domain, key, keylen, out);

	/* the per-message and per-recipient fields follow the delivery-status part header */
	const char *envid = find_field(ds, end, "Original-Envelope-Id:");
	if (envid) {
		char ref[MAILREF_REF_LEN], tag[MAILREF_TAG_LEN];
		field_value(envid, end, strlen("Original-Envelope-Id:"), buf, sizeof(buf));
		size_t pl = strlen(MAILREF_ENVID_PREFIX), bl = strlen(buf);
		if (strncasecmp(buf, MAILREF_ENVID_PREFIX, pl) == 0 &&
		    mailref_scan(buf + pl, buf + bl, ref, tag) == bl - pl)
			consider(out, ref, tag, key, keylen);
	}

	const char *action = find_field(ds, end, "Action:");
	if (action) {
		field_value(action, end, strlen("Action:"), buf, sizeof(buf));
		out->failed = strcasecmp(buf, "failed") == 0;
	}
	const char *status = find_field(ds, end, "Status:");
	if (status) {
		field_value(status, end, strlen("Status:"), out->status, sizeof(out->status));
		out->status[strcspn(out->status, " (")] = '\0';
		out->permanent = out->status[0] == '5';
	}
	const char *fr = find_field(ds, end, "Final-Recipient:");
	if (fr) {
		field_value(fr, end, strlen("Final-Recipient:"), buf, sizeof(buf));
		const char *semi = strchr(buf, ';');
		const char *addr = semi ? semi + 1 : buf;
		while (*addr == ' ')
			addr++;
		snprintf(out->final_recipient, sizeof(out->final_recipient), "%s", addr);
	}
	return action != NULL || status != NULL;
}

bool dsn_is_hard(const struct dsn_report *r)
{
	return r->failed && r->permanent;
}
