/*
 * roles.h - who a bearer token speaks for (api_tokens.role). Routes name
 * the roles they allow as a bit set.
 */
#ifndef BERICHTD_ROLES_H
#define BERICHTD_ROLES_H

enum role {
	ROLE_NONE = 0,
	ROLE_AGENCY = 1 << 0,
	ROLE_PORTAL = 1 << 1,
	ROLE_MINISTRY = 1 << 2,
	ROLE_RELAY = 1 << 3,
};

#endif
