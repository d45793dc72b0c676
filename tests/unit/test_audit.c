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
	UNIT_DONE();
}
