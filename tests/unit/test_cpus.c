/* workers = auto: the cgroup v2 cpu.max quota and the affinity mask. */
#include <sched.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tlsplice/cpus.h"

Test(cpus, quota_lines)
{
	cr_assert_eq(cpus_parse_max("max 100000\n"), 0);
	cr_assert_eq(cpus_parse_max("200000 100000\n"), 2000);
	cr_assert_eq(cpus_parse_max("150000 100000"), 1500);
	cr_assert_eq(cpus_parse_max("50000 100000\n"), 500);
	cr_assert_eq(cpus_parse_max("1 3\n"), 334, "rounded up, never below the quota");
	cr_assert_eq(cpus_parse_max(""), 0);
	cr_assert_eq(cpus_parse_max("abc 100000"), 0);
	cr_assert_eq(cpus_parse_max("100000 0"), 0);
	cr_assert_eq(cpus_parse_max("100000"), 0);
	cr_assert_eq(cpus_parse_max("-5 100000"), 0);
}

Test(cpus, follows_the_affinity_mask)
{
	cpu_set_t now, one;
	char why[128];
	int first = 0;
	cr_assert_eq(sched_getaffinity(0, sizeof(now), &now), 0);
	while (!CPU_ISSET(first, &now))
		first++;
	CPU_ZERO(&one);
	CPU_SET(first, &one); /* a CPU this process may use (a cpuset may exclude CPU 0) */
	cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	cr_assert_eq(cpus_available(why, sizeof(why)), 1, "%s", why);
	cr_assert(strstr(why, "1 CPUs in the affinity mask"), "%s", why);
}
