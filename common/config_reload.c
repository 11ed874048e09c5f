/*
 * config_reload.c - what a SIGHUP needs of the key table (config.h): the
 * keys that differ between two loaded configs, and the next generation of
 * the running config (the old one with every reloadable key taken from
 * the new file). Pure; values are compared, never printed, so a secret
 * never reaches a log line.
 */
#include "config.h"
#include "config_impl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static char *const *str_at(const struct config *cfg, const struct config_key *k)
{
	return (char *const *)((const char *)cfg + k->offset);
}

static const int64_t *int_at(const struct config *cfg, const struct config_key *k)
{
	return (const int64_t *)((const char *)cfg + k->offset);
}

static bool same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool key_same(const struct config *a, const struct config *b, const struct config_key *k)
{
	if (config_type_is_string(k->type))
		return same_str(*str_at(a, k), *str_at(b, k));
	return *int_at(a, k) == *int_at(b, k);
}

static bool key_differs(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen != blen || CRYPTO_memcmp(a, b, alen) != 0;
}

static bool is(const struct config_key *k, const char *section, const char *key)
{
	return strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0;
}

/*
 * A key file whose name stayed but whose content changed: the key itself
 * changed. (A key given inline is its own value; a bounce key derived from
 * the BSN key changes with it, and that one is named.)
 */
static bool content_changed(const struct config *a, const struct config *b,
			    const struct config_key *k)
{
	if (is(k, "security", "bsn_key_file"))
		return same_str(a->security_bsn_key, b->security_bsn_key) &&
		       key_differs(a->bsn_key, a->bsn_key_len, b->bsn_key, b->bsn_key_len);
	if (is(k, "security", "bounce_key_file"))
		return a->bounce_key_derived != b->bounce_key_derived ||
		       (!a->bounce_key_derived &&
			same_str(a->security_bounce_key, b->security_bounce_key) &&
			key_differs(a->bounce_key, a->bounce_key_len, b->bounce_key,
				    b->bounce_key_len));
	if (is(k, "smtp", "password_file"))
		return strcmp(a->smtp_password, b->smtp_password) != 0;
	return false;
}

int config_changes(const struct config *old, const struct config *fresh,
		   void (*fn)(const char *section, const char *key, bool reloadable, void *arg),
		   void *arg)
{
	int n = 0;
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (key_same(old, fresh, k) && !content_changed(old, fresh, k))
			continue;
		n++;
		if (fn)
			fn(k->section, k->key, k->reloadable, arg);
	}
	return n;
}

static bool copy_str(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

bool config_next_generation(const struct config *old, const struct config *fresh,
			    bool (*hold)(const char *section, const char *key, void *arg),
			    void *arg, struct config *out)
{
	*out = *old; /* numbers and derived keys; strings below */
	bool ok = copy_str(&out->path, old->path);
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		bool take = k->reloadable && !(hold && hold(k->section, k->key, arg));
		const struct config *from = take ? fresh : old;
		if (config_type_is_string(k->type))
			ok = copy_str((char **)str_at(out, k), *str_at(from, k)) && ok;
		else
			*(int64_t *)int_at(out, k) = *int_at(from, k);
	}
	if (!ok) {
		config_free(out);
		return false;
	}
	return true;
}
