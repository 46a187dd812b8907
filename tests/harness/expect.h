/* Criterion helpers shared by the integration and VM tests: assertions on one access-log
 * line, and the common one-frontend proxy in front of one backend. */
#ifndef TLSPLICE_TEST_EXPECT_H
#define TLSPLICE_TEST_EXPECT_H

#include <stdbool.h>
#include <stdio.h>

#include <criterion/criterion.h>

#include "harness.h"

static inline void expect_str(const char *line, const char *key, const char *want)
{
	char v[512];

	cr_assert_eq(json_str(line, key, v, sizeof(v)), 0, "no string field %s in %s", key, line);
	cr_assert_str_eq(v, want, "field %s: got '%s', want '%s' in %s", key, v, want, line);
}

static inline void expect_num(const char *line, const char *key, double want)
{
	double v;

	cr_assert_eq(json_num(line, key, &v), 0, "no number field %s in %s", key, line);
	cr_assert_eq(v, want, "field %s: got %.0f, want %.0f in %s", key, v, want, line);
}

/* The error field: non-empty if want, else absent or "". */
static inline void expect_error(const char *line, bool want)
{
	char v[512] = "";

	if (json_has(line, "error"))
		cr_assert_eq(json_str(line, "error", v, sizeof(v)), 0);
	if (want)
		cr_assert_str_not_empty(v, "no error text in %s", line);
	else
		cr_assert_str_empty(v, "unexpected error '%s' in %s", v, line);
}

/* The proxy with frontend "web" (cert demo.test) on a free port in front of backend b
 * ("app", check = none), plus the given extra lines; its port in *port. */
static inline struct proxy *start_web(struct backend *b, const char *global_extra,
				      const char *fe_extra, int *port)
{
	struct harness_cert crt;
	char backends[512];
	const char *ini;
	struct proxy *p;

	*port = harness_free_port();
	cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
	snprintf(backends, sizeof(backends), "[backend app]\nserver = %s\ncheck = none\n",
		 backend_addr(b));
	ini = harness_config_web("web.ini", *port, &crt, global_extra, fe_extra, backends);
	cr_assert(ini);
	p = proxy_start(ini, *port);
	cr_assert(p, "proxy did not start");
	return p;
}

#endif
