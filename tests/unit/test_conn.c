/* The memory an idle connection costs: struct conn is allocated once per client, so its
 * size is part of the RSS every idle connection holds. */
#include <criterion/criterion.h>

#include "tlsplice/conn.h"

/* 1,288 bytes was the size before the relay pump moved into endpoint operations; the
 * structure must not cost an idle connection more than that. */
Test(conn, struct_fits_the_idle_budget)
{
	cr_assert_leq(sizeof(struct conn), 1288, "struct conn is %zu bytes, budget 1288",
		      sizeof(struct conn));
}
