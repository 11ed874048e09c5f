/*
 * ingest_group.h - the pure parts of the group commit (ingest.c): the
 * queue in deadline order, the JSON parameter of one group's statement, and
 * what a result row of that statement means for its item. No I/O, no
 * clock, no PostgreSQL: unit-tested on their own.
 */
#ifndef BERICHTD_INGEST_GROUP_H
#define BERICHTD_INGEST_GROUP_H

#include <stdbool.h>

#include "agency/ingest_item.h"

/* Items waiting for a statement, in deadline order (earliest first). */
struct ingest_queue {
	struct ingest_item *head, *tail;
	int n;
};

/*
 * Appends it (its deadline_us set) after every item whose deadline is not
 * later: the usual arrival is in deadline order (O(1)); an item going round
 * once more with an older deadline is put back before the first later one.
 */
void ingest_queue_push(struct ingest_queue *q, struct ingest_item *it);

/* Removes and returns the head (the earliest deadline); q must not be empty. */
struct ingest_item *ingest_queue_pop(struct ingest_queue *q);

/*
 * The statement's $1 for items[0 .. n): a JSON array of one object per
 * item, "i" its index in items, the optional fields only when given.
 * malloc'd text, NULL when memory ran out.
 */
char *ingest_group_param(struct ingest_item *const *items, int n);

/* The flags of one result row of the ingest statement. */
struct ingest_row {
	bool created; /* inserted by this statement */
	bool has_old; /* the (agency, referentie) existed: old.id */
	bool same;    /* ... with the same content hash */
	bool type_ok; /* the berichttype is registered for the agency */
	bool has_box; /* an active account that takes this agency's messages */
};

/*
 * The outcome a committed row means. *again is set when the item lost a
 * race with a concurrent insert of its referentie and should go round once
 * more (then the outcome returned is the one for giving up: unavailable).
 */
enum ingest_outcome ingest_row_outcome(const struct ingest_row *row, bool *again);

#endif
