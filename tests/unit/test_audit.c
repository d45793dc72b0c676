/* Unit tests for the audit ring: order, bounded size, drop counting. */
#include "internal.h"
#include "unit.h"

#include <stdio.h>

int main(void)
{
	nono_audit *a = nono_audit_new(3);
	CHECK(a != NULL);
	CHECK(nono_audit_new(0) == NULL);
	nono_audit_event ev = {0}, out[8];
	for (int i = 0; i < 5; i++) {
		ev.port = (uint16_t)(100 + i);
		nono_audit_push(a, &ev);
	}
	CHECK_EQ_INT(nono_audit_dropped(a), 2);
	size_t n = nono_audit_drain(a, out, 2);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(out[0].port, 102);
	CHECK_EQ_INT(out[1].port, 103);
	n = nono_audit_drain(a, out, 8);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(out[0].port, 104);
	CHECK_EQ_INT(nono_audit_drain(a, out, 8), 0);
	nono_audit_free(a);

	/* Slots grow on demand and shrink after drains (audit.c): order and drop counting stay
	 * those of a ring of the full capacity, whatever the ring wrapped over while it grew. */
	a = nono_audit_new(100);
	CHECK(a != NULL);
	uint16_t next_in = 0, next_out = 0;
	for (int round = 0; round < 6; round++) {
		int push = round % 2 ? 30 : 13; /* past the first slots, with a wrapped head */
		for (int i = 0; i < push; i++) {
			ev.port = next_in++;
			nono_audit_push(a, &ev);
		}
		size_t got = nono_audit_drain(a, out, 8); /* at most 81 held: nothing dropped */
		for (size_t i = 0; i < got; i++)
			CHECK_EQ_INT(out[i].port, next_out++);
	}
	CHECK_EQ_INT(nono_audit_dropped(a), 0);
	while ((n = nono_audit_drain(a, out, 8)) > 0)
		for (size_t i = 0; i < n; i++)
			CHECK_EQ_INT(out[i].port, next_out++);
	CHECK_EQ_INT(next_out, next_in);
	for (int i = 0; i < 250; i++) { /* full: the oldest 150 go, counted */
		ev.port = (uint16_t)(1000 + i);
		nono_audit_push(a, &ev);
	}
	CHECK_EQ_INT(nono_audit_dropped(a), 150);
	CHECK_EQ_INT(nono_audit_drain(a, out, 1), 1);
	CHECK_EQ_INT(out[0].port, 1150);
	size_t left = 0;
	while ((n = nono_audit_drain(a, out, 8)) > 0) {
		CHECK_EQ_INT(out[n - 1].port, 1151 + left + n - 1);
		left += n;
	}
	CHECK_EQ_INT(left, 99);
	nono_audit_free(a);
	UNIT_DONE();
}
