/*
 * ingest_group.c - queue order, statement parameter and row outcomes of the
 * group commit (ingest_group.h).
 */
#include "agency/ingest_group.h"

#include <jansson.h>

#include "common/timefmt.h"

void ingest_queue_push(struct ingest_queue *q, struct ingest_item *it)
{
	if (!q->tail || q->tail->deadline_us <= it->deadline_us) {
		/* the usual case: requests arrive in deadline order */
		it->next = NULL;
		if (q->tail)
			q->tail->next = it;
		else
			q->head = it;
		q->tail = it;
	} else {
		/* going round once more with an older deadline: before the first later one */
		struct ingest_item **p = &q->head;
		while ((*p)->deadline_us <= it->deadline_us)
			p = &(*p)->next;
		it->next = *p;
		*p = it;
	}
	q->n++;
}

struct ingest_item *ingest_queue_pop(struct ingest_queue *q)
{
	struct ingest_item *it = q->head;
	q->head = it->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	it->next = NULL;
	return it;
}

static json_t *item_json(int i, const struct ingest_item *it)
{
	char id[UUID_STR_LEN], ts[TIMEFMT_RFC3339_LEN], ts2[TIMEFMT_RFC3339_LEN];
	const struct message_in *m = &it->msg;

	uuid_format(&it->id, id);
	json_t *o = json_pack("{s:i, s:s, s:I, s:s, s:s, s:s, s:s, s:b}", "i", i, "id", id,
			      "agency_id", (json_int_t)it->agency_id, "bsn_hash", m->bsn_hash,
			      "berichttype", m->berichttype, "referentie", m->referentie,
			      "content_hash", m->content_hash, "papier", m->papieren_kopie);
	if (!o)
		return NULL;
	if (m->has_aanmaak) {
		timefmt_format_rfc3339(m->aanmaak_ms, ts);
		json_object_set_new(o, "aanmaak", json_string(ts));
	}
	if (m->has_publicatie) {
		timefmt_format_rfc3339(m->publicatie_ms, ts2);
		json_object_set_new(o, "publicatie", json_string(ts2));
	}
	if (m->has_eind)
		json_object_set_new(o, "eind", json_string(m->eind));
	if (m->zaakkenmerk[0])
		json_object_set_new(o, "zaak", json_string(m->zaakkenmerk));
	return o;
}

char *ingest_group_param(struct ingest_item *const *items, int n)
{
	json_t *arr = json_array();
	if (!arr)
		return NULL;
	for (int k = 0; k < n; k++)
		json_array_append_new(arr, item_json(k, items[k]));
	char *payload = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	return payload;
}

enum ingest_outcome ingest_row_outcome(const struct ingest_row *row, bool *again)
{
	*again = false;
	if (row->created)
		return INGEST_CREATED;
	if (row->has_old)
		return row->same ? INGEST_DUPLICATE : INGEST_CONFLICT;
	if (!row->type_ok)
		return INGEST_UNKNOWN_TYPE;
	if (!row->has_box)
		return INGEST_NO_BOX;
	*again = true; /* lost a race with a concurrent insert of the same referentie */
	return INGEST_UNAVAILABLE;
}
