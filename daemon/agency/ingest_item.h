/*
 * ingest_item.h - one message on its way into the group commit (ingest.h):
 * what it is, its deadline, its outcome and its owner's callback. Shared by
 * the engine (ingest.c), its pure parts (ingest_group.c) and the owners.
 */
#ifndef BERICHTD_INGEST_ITEM_H
#define BERICHTD_INGEST_ITEM_H

#include <stdint.h>

#include "agency/message.h"
#include "common/uuid7.h"

enum ingest_outcome {
	INGEST_CREATED,      /* stored now */
	INGEST_DUPLICATE,    /* the same referentie with the same content: the first id */
	INGEST_CONFLICT,     /* the same referentie with other content */
	INGEST_NO_BOX,       /* no active message box for this BSN */
	INGEST_UNKNOWN_TYPE, /* berichttype not registered for this agency */
	INGEST_UNAVAILABLE,  /* not stored: the database failed or was not reached */
	INGEST_EXPIRED,      /* not stored: its deadline passed while it was queued */
	INGEST_UNCONFIRMED,  /* may be stored: sent, but no commit result by its deadline */
};

struct ingest_item;
typedef void (*ingest_done_cb)(struct ingest_item *item);

struct ingest_item {
	struct ingest_item *next;
	struct message_in msg;
	int64_t agency_id;
	uuid_t7 id;           /* the id it gets if created */
	int64_t deadline_us;  /* monotonic, from ingest_deadline(); answered by then */
	int64_t submitted_us; /* monotonic, at its first ingest_submit (ingest latency) */
	int attempts;
	/* result */
	enum ingest_outcome outcome;
	char bericht_id[UUID_STR_LEN];
	int64_t publicatie_ms;
	/* owner */
	ingest_done_cb done;
	void *owner;
};

#endif
