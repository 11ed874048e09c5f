/*
 * representation.h - a representation (vertegenwoordiging) as the portal
 * PUTs it: validation of the JSON body, every invalid field reported at
 * once through a callback that knows nothing of HTTP, into what the store
 * needs. What only the database can tell (the accounts exist, the OINs are
 * agencies, the rules of passing on against the source) is checked by the
 * PUT's statement (representatives.c). Pure: no I/O, any thread.
 */
#ifndef BERICHTD_REPRESENTATION_H
#define BERICHTD_REPRESENTATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/bsn.h"
#include "common/uuid7.h"

#define REP_NAME_MAX 100
/* the agencies one representation may be limited to, at most */
#define REP_ORGS_MAX 100
#define REP_SOORT_MAX 24
#define REP_ZAAK_BYTES (4 * 40 + 1)
#define REP_NAME_BYTES (4 * REP_NAME_MAX + 1)
/* "{" OIN "," ... "}": a PostgreSQL text[] literal of digits only */
#define REP_ORGS_LITERAL (REP_ORGS_MAX * (OIN_LEN + 1) + 3)

struct rep_in {
	char soort[REP_SOORT_MAX];
	int64_t vanaf_ms;
	bool has_tot;
	int64_t tot_ms;
	bool has_orgs;
	int n_orgs;
	char orgs[REP_ORGS_LITERAL]; /* text[] literal of the OINs, when has_orgs */
	bool has_zaak;
	char zaak[REP_ZAAK_BYTES];
	char naam[REP_NAME_BYTES];
	bool betrokkene; /* betrokkeneOokNotificeren, with its default */
	bool has_source;
	char source[UUID_STR_LEN]; /* doorgegevenDoor: the source's representative */
};

/* Told of one invalid field: its name, a code and a reason for people (Dutch). */
typedef void (*rep_invalid_fn)(void *ctx, const char *name, const char *code, const char *reason);

/*
 * Validates the body of PUT .../vertegenwoordigers/{rep}: rep_id is the
 * path's representative (a representation is not passed on from itself).
 * Calls report once per problem. Returns true when valid.
 */
bool rep_parse(const json_t *body, const char *rep_id, rep_invalid_fn report, void *ctx,
	       struct rep_in *out);

/*
 * True when s holds something that looks like a BSN: 9 digits passing the
 * elfproef, also when written with spaces, dots or dashes between them.
 * A weergavenaam must never carry one.
 */
bool rep_has_bsn(const char *s);

#endif
