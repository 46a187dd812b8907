/* ktls_suites: the start-up log's list of the cipher suites the kernel offloads, for each
 * probe result (this machine's kernel may have no kTLS at all: the probe itself runs in the
 * start-up test and wherever the suite runs on a kTLS kernel). */
#include <criterion/criterion.h>

#include "tlsplice/ktls.h"
#include "tlsplice/ktls_suites.h"

static void set_all(struct ktls_suites *s, int dirs)
{
	for (int v = 0; v < 2; v++)
		for (int a = 0; a < KTLS_AEAD_N; a++)
			s->dirs[v][a] = dirs;
}

Test(ktls_suites, no_ktls_or_no_key_taken_is_none)
{
	char out[512];
	struct ktls_suites none;

	ktls_suites_format(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "none");
	set_all(&none, 0);
	ktls_suites_format(&none, out, sizeof(out));
	cr_assert_str_eq(out, "none");
}

Test(ktls_suites, every_suite_both_ways)
{
	char out[512];
	struct ktls_suites all;

	set_all(&all, KTLS_TX | KTLS_RX);
	ktls_suites_format(&all, out, sizeof(out));
	cr_assert_str_eq(out, "TLS 1.3 TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
			      "TLS_CHACHA20_POLY1305_SHA256; TLS 1.2 with AES-128-GCM, "
			      "AES-256-GCM, CHACHA20-POLY1305");
}

/* An older kernel: no ChaCha20, TLS 1.3 only for sending. */
Test(ktls_suites, what_a_kernel_lacks_is_left_out_or_marked)
{
	char out[512];
	struct ktls_suites s = { .dirs = {
					 { KTLS_TX | KTLS_RX, KTLS_TX | KTLS_RX, 0 },
					 { KTLS_TX, KTLS_RX, 0 },
				 } };

	ktls_suites_format(&s, out, sizeof(out));
	cr_assert_str_eq(out, "TLS 1.3 TLS_AES_128_GCM_SHA256 (send only), TLS_AES_256_GCM_SHA384 "
			      "(receive only); TLS 1.2 with AES-128-GCM, AES-256-GCM");
	s.dirs[1][0] = s.dirs[1][1] = 0;
	ktls_suites_format(&s, out, sizeof(out));
	cr_assert_str_eq(out, "TLS 1.3 none; TLS 1.2 with AES-128-GCM, AES-256-GCM");
}

Test(ktls_suites, a_short_buffer_is_cut_not_overrun)
{
	char out[40];
	struct ktls_suites all;

	memset(out, 'x', sizeof(out));
	set_all(&all, KTLS_TX | KTLS_RX);
	ktls_suites_format(&all, out, 32);
	cr_assert_eq(strlen(out), 31);
	cr_assert_eq(out[32], 'x');
}

/* Whatever this kernel is: no kTLS, no suite; kTLS both ways, at least AES-128-GCM. */
Test(ktls_suites, the_probe_agrees_with_ktls_probe)
{
	const char *d = ktls_suites_describe();

	if (!ktls_probe())
		cr_assert_str_eq(d, "none");
	else if (ktls_probe() == (KTLS_TX | KTLS_RX))
		cr_assert(strstr(d, "TLS 1.2 with AES-128-GCM"), "%s", d);
	cr_assert_eq(ktls_suites_describe(), d, "probed again");
}
