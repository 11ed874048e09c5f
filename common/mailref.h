/*
 * mailref.h - the names a mail carries: its Message-ID, its VERP envelope
 * sender and its DSN envelope id, all made from the mail's ref (128 bits in
 * hex, migrations/0009_mails.sql) and a keyed tag over it.
 *
 *   Message-ID   <ref@bounce_domain>
 *   VERP         bounce+ref-tag@bounce_domain
 *   ENVID        berichtd-ref-tag
 *
 * The tag is the first 64 bits of HMAC-SHA256(bounce key, "berichtd-mail:"
 * ref), as BATV and SRS tag their return paths: a DSN can be checked before
 * anything is looked up, and a made-up one is refused.
 *
 * The ref is keyed, not drawn: the claim that builds a mail makes it in SQL
 * as HMAC-SHA256(ref key, "<lead id>:<its created_at in us>:<account>"),
 * the first 128 bits in hex, where the ref key is HMAC-SHA256(bounce key,
 * "berichtd-ref-key"). A database restored to a point before the mail was
 * built builds it again with the same Message-ID (issue 13, the restore
 * drill), and without the key nobody can tell from a ref how many mails
 * went out before it or name a mail he did not receive. Pure; thread-safe.
 */
#ifndef BERICHTD_COMMON_MAILREF_H
#define BERICHTD_COMMON_MAILREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAILREF_REF_HEX 32 /* the ref: 16 bytes in hex */
#define MAILREF_TAG_HEX 16 /* the tag: 8 bytes of the HMAC in hex */
#define MAILREF_REF_LEN (MAILREF_REF_HEX + 1)
#define MAILREF_TAG_LEN (MAILREF_TAG_HEX + 1)
#define MAILREF_VERP_PREFIX "bounce+"
#define MAILREF_ENVID_PREFIX "berichtd-"
#define MAILREF_NAME_MAX 400 /* any of the three names, with the domain */

/* A ref is exactly MAILREF_REF_HEX lowercase hex digits. */
bool mailref_ref_valid(const char *ref);

/* The tag of ref under key, lowercase hex. False if libcrypto fails. */
bool mailref_tag(const uint8_t *key, size_t keylen, const char *ref, char tag[MAILREF_TAG_LEN])
	__attribute__((warn_unused_result));

/* True if tag (any case) is ref's tag under key; constant time in the tag. */
bool mailref_tag_ok(const uint8_t *key, size_t keylen, const char *ref, const char *tag);

/* The three names; false if out is too small or the tag cannot be made. */
bool mailref_message_id(const char *ref, const char *domain, char *out, size_t cap);
bool mailref_verp(const uint8_t *key, size_t keylen, const char *ref, const char *domain, char *out,
		  size_t cap) __attribute__((warn_unused_result));
bool mailref_envid(const uint8_t *key, size_t keylen, const char *ref, char *out, size_t cap)
	__attribute__((warn_unused_result));

/*
 * The ref key's HMAC pads for the claim statement, as hex: ipad is
 * (ref key ^ 0x36...) and opad (ref key ^ 0x5c...), 64 bytes each, so that
 * SQL's sha256(opad || sha256(ipad || m)) is HMAC-SHA256(ref key, m).
 * False if libcrypto fails.
 */
#define MAILREF_PAD_HEX 128
bool mailref_ref_pads(const uint8_t *key, size_t keylen, char ipad[MAILREF_PAD_HEX + 1],
		      char opad[MAILREF_PAD_HEX + 1]) __attribute__((warn_unused_result));

/*
 * Reads "ref-tag" at p (at most end): on success copies both (ref in
 * lowercase) and returns the number of characters read, else 0.
 */
size_t mailref_scan(const char *p, const char *end, char ref[MAILREF_REF_LEN],
		    char tag[MAILREF_TAG_LEN]);

#endif
