/* ktls_suites: the start-up log's list of the cipher suites the kernel offloads, for each
 * probe result (this machine's kernel may have no kTLS at all: the probe itself runs in the
 * VM suites and in the start-up test). */
#include <criterion/criterion.h>

#include "tlsplice/ktls.h"
#include "tlsplice/ktls_suites.h"

Test(ktls_suites, no_ktls_says_nothing_is_offloaded)
{
	char out[512];

	ktls_suites_format("kTLS: not available (no tls ULP in this kernel)", NULL, out,
			   sizeof(out));
	cr_assert_str_eq(out, "kTLS: not available (no tls ULP in this kernel); no cipher suite "
			      "is offloaded");
	struct ktls_suites none = { 0 };
	ktls_suites_format("kTLS: not available (tls ULP present, AES-GCM key refused)", &none, out,
			   sizeof(out));
	cr_assert(strstr(out, "; no cipher suite is offloaded"), "%s", out);
}

Test(ktls_suites, every_suite_both_ways)
{
	char out[512];
	struct ktls_suites all;

	for (int v = 0; v < 2; v++)
		for (int a = 0; a < KTLS_AEAD_N; a++)
			all.dirs[v][a] = KTLS_TX | KTLS_RX;
	ktls_suites_format("kTLS: available (tx, rx)", &all, out, sizeof(out));
	cr_assert_str_eq(out, "kTLS: available (tx, rx); offloads TLS 1.3 TLS_AES_128_GCM_SHA256, "
			      "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256; TLS 1.2 "
			      "with AES-128-GCM, AES-256-GCM, CHACHA20-POLY1305");
}

/* An older kernel: no ChaCha20, TLS 1.3 only for sending. */
Test(ktls_suites, what_a_kernel_lacks_is_left_out_or_marked)
{
	char out[512];
	struct ktls_suites s = { .dirs = {
					 { KTLS_TX | KTLS_RX, KTLS_TX | KTLS_RX, 0 },
					 { KTLS_TX, KTLS_TX, 0 },
				 } };

	ktls_suites_format("kTLS: available (tx, rx)", &s, out, sizeof(out));
	cr_assert_str_eq(out, "kTLS: available (tx, rx); offloads TLS 1.3 TLS_AES_128_GCM_SHA256 "
			      "(send only), TLS_AES_256_GCM_SHA384 (send only); TLS 1.2 with "
			      "AES-128-GCM, AES-256-GCM");
	s.dirs[1][0] = s.dirs[1][1] = 0;
	ktls_suites_format("kTLS: available (tx, rx)", &s, out, sizeof(out));
	cr_assert(strstr(out, "offloads TLS 1.3 none; TLS 1.2 with AES-128-GCM"), "%s", out);
}

Test(ktls_suites, a_short_buffer_is_cut_not_overrun)
{
	char out[40];
	struct ktls_suites all;

	memset(out, 'x', sizeof(out));
	for (int v = 0; v < 2; v++)
		for (int a = 0; a < KTLS_AEAD_N; a++)
			all.dirs[v][a] = KTLS_TX | KTLS_RX;
	ktls_suites_format("kTLS: available (tx, rx)", &all, out, 32);
	cr_assert_eq(strlen(out), 31);
	cr_assert_eq(out[32], 'x');
}

Test(ktls_suites, the_description_starts_with_the_probe)
{
	const char *d = ktls_suites_describe();

	cr_assert_eq(strncmp(d, ktls_probe_describe(), strlen(ktls_probe_describe())), 0, "%s", d);
	if (!ktls_probe())
		cr_assert(strstr(d, "; no cipher suite is offloaded"), "%s", d);
	else
		cr_assert(strstr(d, "offloads TLS 1.3 "), "%s", d);
}
