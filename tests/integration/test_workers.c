/* workers = auto starts one worker per CPU the process may use, and says where the number
 * came from: the affinity mask (taskset, a cpuset) and the cgroup CPU quota. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(workers, .init = harness_setup, .fini = harness_teardown, .timeout = 60);

/* Whether the proxy's stderr says text within the harness timeout: the line is written
 * after the listeners are up, so a moment after proxy_start returns. */
static bool log_has(struct proxy *p, const char *text)
{
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	char *err = NULL;
	bool found = false;
	while (!found && harness_now_ms() < end) {
		free(err);
		err = harness_read_file(proxy_stderr_path(p), NULL);
		found = err && strstr(err, text);
		if (!found)
			usleep(10000);
	}
	if (!found)
		cr_log_error("stderr: %s", err ? err : "(none)");
	free(err);
	return found;
}

Test(workers, auto_follows_the_affinity_mask)
{
	struct harness_cert crt;
	cpu_set_t now, one;
	int first = 0, port = harness_free_port();
	cr_assert_eq(sched_getaffinity(0, sizeof(now), &now), 0);
	while (!CPU_ISSET(first, &now))
		first++;
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	cr_assert_eq(harness_cert_create("w", "w.test", &crt), 0);
	const char *cfg = harness_config_web("w.ini", port, &crt, "workers = auto\n", NULL,
					     "[backend app]\nserver = 127.0.0.1:1\ncheck = none\n");
	/* the proxy inherits this process's mask, as under `taskset -c N` */
	cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	struct proxy *p = proxy_start(cfg, port);
	cr_assert_eq(sched_setaffinity(0, sizeof(now), &now), 0);
	cr_assert_not_null(p);
	cr_assert(log_has(p, "started: 1 workers (auto: 1 CPUs in the affinity mask"));
	cr_assert_eq(proxy_stop(p, 5000), 0);
	harness_pass();
}

Test(workers, a_number_in_the_file_is_taken_as_it_is)
{
	struct harness_cert crt;
	int port = harness_free_port();
	cr_assert_eq(harness_cert_create("w", "w.test", &crt), 0);
	const char *cfg = harness_config_web("w.ini", port, &crt, "workers = 3\n", NULL,
					     "[backend app]\nserver = 127.0.0.1:1\ncheck = none\n");
	struct proxy *p = proxy_start(cfg, port);
	cr_assert_not_null(p);
	cr_assert(log_has(p, "started: 3 workers, "));
	cr_assert_eq(proxy_stop(p, 5000), 0);
	harness_pass();
}
