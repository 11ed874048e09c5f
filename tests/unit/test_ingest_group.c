/*
 * test_ingest_group.c - specification of daemon/agency/ingest_group: the
 * pure parts of the group commit, without PostgreSQL or a clock: the queue
 * in deadline order, the JSON parameter of a group, and what a result row
 * means for its item.
 *
 * needs: daemon/agency/ingest_group.c
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/agency/ingest_group.h"
#include "common/timefmt.h"

static void order_of(const struct ingest_queue *q, char *out, size_t size)
{
	size_t len = 0;
	out[0] = '\0';
	for (const struct ingest_item *it = q->head; it && len + 2 < size; it = it->next)
		len += (size_t)snprintf(out + len, size - len, "%d", it->attempts);
}

Test(ingest_group, the_queue_keeps_deadline_order)
{
	struct ingest_queue q = {0};
	struct ingest_item it[6] = {{0}};
	/* deadline and, in attempts, a label */
	int64_t deadlines[6] = {10, 20, 20, 30, 15, 5};
	char order[16];

	for (int k = 0; k < 6; k++) {
		it[k].deadline_us = deadlines[k];
		it[k].attempts = k;
		ingest_queue_push(&q, &it[k]);
	}
	cr_assert_eq(q.n, 6);
	order_of(&q, order, sizeof(order));
	/* equal deadlines keep their arrival order; older ones go before later ones */
	cr_assert_str_eq(order, "504123");
	cr_assert_eq(q.tail, &it[3]);

	cr_assert_eq(ingest_queue_pop(&q), &it[5]);
	cr_assert_eq(ingest_queue_pop(&q), &it[0]);
	cr_assert_eq(q.n, 4);
	/* going round once more with an old deadline: at the head again */
	ingest_queue_push(&q, &it[0]);
	cr_assert_eq(q.head, &it[0]);
	while (q.n > 1)
		ingest_queue_pop(&q);
	cr_assert_eq(ingest_queue_pop(&q), &it[3]);
	cr_assert_null(q.head);
	cr_assert_null(q.tail);
	cr_assert_null(it[3].next);
}

static void fill(struct ingest_item *it, int64_t agency, const char *ref)
{
	memset(it, 0, sizeof(*it));
	it->agency_id = agency;
	cr_assert(uuid_parse("01890a5d-ac96-774b-bcce-b302099a8057", &it->id));
	memset(it->msg.bsn_hash, 'a', 64);
	memset(it->msg.content_hash, 'c', 64);
	snprintf(it->msg.berichttype, sizeof(it->msg.berichttype), "AANSLAG");
	snprintf(it->msg.referentie, sizeof(it->msg.referentie), "%s", ref);
}

Test(ingest_group, the_parameter_of_a_group)
{
	struct ingest_item a, b;
	struct ingest_item *items[] = {&a, &b};
	fill(&a, 7, "r-1");
	fill(&b, 8, "r-\"2\"");
	b.msg.has_aanmaak = b.msg.has_publicatie = b.msg.has_eind = true;
	b.msg.aanmaak_ms = 1748779200000LL; /* 2025-06-01T12:00:00Z */
	b.msg.publicatie_ms = 1748779200500LL;
	snprintf(b.msg.eind, sizeof(b.msg.eind), "2025-07-01");
	b.msg.papieren_kopie = true;

	char *text = ingest_group_param(items, 2);
	cr_assert(text);
	json_error_t err;
	json_t *arr = json_loads(text, 0, &err);
	free(text);
	cr_assert(json_is_array(arr) && json_array_size(arr) == 2);

	json_t *o = json_array_get(arr, 0);
	cr_assert_eq(json_integer_value(json_object_get(o, "i")), 0);
	cr_assert_str_eq(json_string_value(json_object_get(o, "id")),
			 "01890a5d-ac96-774b-bcce-b302099a8057");
	cr_assert_eq(json_integer_value(json_object_get(o, "agency_id")), 7);
	cr_assert_str_eq(json_string_value(json_object_get(o, "berichttype")), "AANSLAG");
	cr_assert_str_eq(json_string_value(json_object_get(o, "referentie")), "r-1");
	cr_assert_eq(strlen(json_string_value(json_object_get(o, "bsn_hash"))), 64);
	cr_assert_eq(strlen(json_string_value(json_object_get(o, "content_hash"))), 64);
	cr_assert(json_is_false(json_object_get(o, "papier")));
	/* absent optional fields are absent, so PostgreSQL sees NULL */
	cr_assert_null(json_object_get(o, "aanmaak"));
	cr_assert_null(json_object_get(o, "publicatie"));
	cr_assert_null(json_object_get(o, "eind"));
	cr_assert_eq(json_object_size(o), 8);

	o = json_array_get(arr, 1);
	cr_assert_eq(json_integer_value(json_object_get(o, "i")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(o, "referentie")), "r-\"2\"");
	cr_assert(json_is_true(json_object_get(o, "papier")));
	int64_t ms = 0;
	cr_assert(timefmt_parse_rfc3339(json_string_value(json_object_get(o, "aanmaak")), &ms));
	cr_assert_eq(ms, 1748779200000LL);
	cr_assert(timefmt_parse_rfc3339(json_string_value(json_object_get(o, "publicatie")), &ms));
	cr_assert_eq(ms, 1748779200500LL);
	cr_assert_str_eq(json_string_value(json_object_get(o, "eind")), "2025-07-01");
	json_decref(arr);
}

Test(ingest_group, an_empty_group_is_an_empty_array)
{
	char *text = ingest_group_param(NULL, 0);
	cr_assert_str_eq(text, "[]");
	free(text);
}

Test(ingest_group, what_a_row_means)
{
	bool again;
	struct ingest_row r = {.created = true, .has_box = true, .type_ok = true};
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_CREATED);
	cr_assert_not(again);

	r = (struct ingest_row){.has_old = true, .same = true, .type_ok = true, .has_box = true};
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_DUPLICATE);
	r.same = false;
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_CONFLICT);
	/* an existing referentie wins over an unknown type or a missing box */
	r = (struct ingest_row){.has_old = true, .same = true};
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_DUPLICATE);

	r = (struct ingest_row){.has_box = false, .type_ok = false};
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_UNKNOWN_TYPE);
	r.type_ok = true;
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_NO_BOX);
	cr_assert_not(again);

	/* neither inserted nor found: lost a race, goes round once more */
	r.has_box = true;
	cr_assert_eq(ingest_row_outcome(&r, &again), INGEST_UNAVAILABLE);
	cr_assert(again);
}
