/* watch = on: certificates and keys followed on disk without a SIGHUP, the way Kubernetes
 * rotates a mounted secret (a "..data" link swapped atomically), with a broken key kept out,
 * and with handshakes going on while the files change. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(watch, .init = harness_setup, .fini = harness_teardown, .timeout = 120);

/* The layout of a Kubernetes secret volume: secret/..VERSION/{tls.crt,tls.key},
 * secret/..data -> ..VERSION, secret/tls.crt -> ..data/tls.crt (and tls.key). */
static void secret_version(const char *version, const char *cert_name)
{
	struct harness_cert crt;
	char dir[4200], path[4300];
	char sans[128];
	snprintf(sans, sizeof(sans), "%s.test", cert_name);
	cr_assert_eq(harness_cert_create(cert_name, sans, &crt), 0);
	snprintf(dir, sizeof(dir), "%s/..%s", harness_path("secret"), version);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/tls.crt", dir);
	cr_assert_eq(rename(crt.cert, path), 0);
	snprintf(path, sizeof(path), "%s/tls.key", dir);
	cr_assert_eq(rename(crt.key, path), 0);
}

/* Points ..data at version in one step, as the kubelet does (symlink, then rename over). */
static void secret_swap(const char *version)
{
	char tmp[4200], data[4200], target[256];
	snprintf(tmp, sizeof(tmp), "%s/..data_tmp", harness_path("secret"));
	snprintf(data, sizeof(data), "%s/..data", harness_path("secret"));
	snprintf(target, sizeof(target), "..%s", version);
	cr_assert_eq(symlink(target, tmp), 0);
	cr_assert_eq(rename(tmp, data), 0);
}

static const char *secret_setup(const char *version, const char *cert_name)
{
	char link[4200];
	cr_assert_eq(mkdir(harness_path("secret"), 0755), 0);
	secret_version(version, cert_name);
	secret_swap(version);
	snprintf(link, sizeof(link), "%s/tls.crt", harness_path("secret"));
	cr_assert_eq(symlink("..data/tls.crt", link), 0);
	snprintf(link, sizeof(link), "%s/tls.key", harness_path("secret"));
	cr_assert_eq(symlink("..data/tls.key", link), 0);
	return harness_path("secret");
}

static const char *write_config(int port, struct backend *b, const char *extra)
{
	char fe[8400], be[256], global[256];
	snprintf(fe, sizeof(fe), "cert = %s/tls.crt\nkey = %s/tls.key\n", harness_path("secret"),
		 harness_path("secret"));
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = none\n", backend_addr(b));
	snprintf(global, sizeof(global), "workers = 1\n%s", extra ? extra : "");
	/* harness_config_web writes a cert line of its own first: ours, later, are the ones
	 * that count only if it has none, so give it none */
	FILE *f = fopen(harness_path("w.ini"), "w");
	cr_assert(f);
	fprintf(f, "[global]\n%s\n[frontend web]\nlisten = 127.0.0.1:%d\n%sbackend = app\n\n%s",
		global, port, fe, be);
	fclose(f);
	return harness_path("w.ini");
}

/* Waits until stderr holds `what` n times. */
static bool log_count(struct proxy *p, const char *what, int n)
{
	int64_t end = harness_now_ms() + HARNESS_TIMEOUT_MS;
	int seen = 0;
	while (harness_now_ms() < end) {
		char *err = harness_read_file(proxy_stderr_path(p), NULL);
		seen = 0;
		for (const char *s = err; s && (s = strstr(s, what)); s++)
			seen++;
		free(err);
		if (seen >= n)
			return seen == n;
		usleep(20000);
	}
	return false;
}

/* The certificate a new handshake gets: true if it names host. */
static bool serves(int port, const char *host)
{
	struct tlsc_opts o = { .sni = host };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(c, "TLS connect failed");
	bool yes = tlsc_peer_has_dns(c, host);
	tlsc_close(c);
	return yes;
}

Test(watch, a_swapped_kubernetes_secret_is_served_without_sighup)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	secret_setup("v1", "old");
	struct proxy *p = proxy_start(write_config(port, b, NULL), port);
	cr_assert(p);
	cr_assert(serves(port, "old.test"));
	struct tlsc_opts o = { .sni = "old.test" };
	struct tlsc *open_conn = tlsc_connect("127.0.0.1", port, &o);
	cr_assert(open_conn);

	secret_version("v2", "new");
	secret_swap("v2");
	cr_assert(log_count(p, "configuration reloaded", 1), "the swap was not followed");
	cr_assert(log_count(p, "files changed: reloading", 1), "one reload for the whole swap");
	cr_assert(serves(port, "new.test"), "new handshakes get the new certificate");
	/* the connection opened before goes on untouched */
	char buf[8];
	cr_assert_eq(tlsc_write_all(open_conn, "ping", 4, HARNESS_TIMEOUT_MS), 0);
	cr_assert_eq(tlsc_read(open_conn, buf, sizeof(buf), HARNESS_TIMEOUT_MS), 4);
	tlsc_close(open_conn);
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	backend_destroy(b);
	harness_pass();
}

Test(watch, a_broken_key_keeps_the_old_pair_until_a_good_one_comes)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	int port = harness_free_port();
	struct harness_cert bad;
	char path[4300];
	secret_setup("v1", "old");
	struct proxy *p = proxy_start(write_config(port, b, NULL), port);
	cr_assert(p);

	/* v2 holds a certificate with a key that is not its own */
	cr_assert_eq(harness_cert_create_mismatched("bad", "bad.test", &bad), 0);
	snprintf(path, sizeof(path), "%s/..v2", harness_path("secret"));
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/..v2/tls.crt", harness_path("secret"));
	cr_assert_eq(rename(bad.cert, path), 0);
	snprintf(path, sizeof(path), "%s/..v2/tls.key", harness_path("secret"));
	cr_assert_eq(rename(bad.key, path), 0);
	secret_swap("v2");
	cr_assert(log_count(p, "the running configuration stays", 1),
		  "the bad pair was not refused");
	cr_assert(log_count(p, "[frontend web] key: key '", 1),
		  "the error names the file, line and key");
	cr_assert(serves(port, "old.test"), "the old pair stays in use");

	secret_version("v3", "good");
	secret_swap("v3");
	cr_assert(log_count(p, "configuration reloaded", 1), "the next change was not retried");
	cr_assert(serves(port, "good.test"));
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	backend_destroy(b);
	harness_pass();
}

struct hammer {
	int port;
	atomic_bool stop;
	atomic_int ok, failed;
};

/* Handshakes one after another until told to stop (at most 5,000). */
static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	struct tlsc_opts o = { .sni = "old.test" };
	for (int i = 0; i < 5000 && !atomic_load(&h->stop); i++) {
		struct tlsc *c = tlsc_connect("127.0.0.1", h->port, &o);
		if (c)
			atomic_fetch_add(&h->ok, 1);
		else
			atomic_fetch_add(&h->failed, 1);
		tlsc_close(c);
	}
	return NULL;
}

Test(watch, no_handshake_fails_while_the_secret_is_swapped)
{
	struct backend *b = backend_start(BACKEND_ECHO, 0, NULL, 0);
	struct hammer h = { .port = harness_free_port() };
	pthread_t t[2];
	secret_setup("v1", "old");
	struct proxy *p = proxy_start(write_config(h.port, b, NULL), h.port);
	cr_assert(p);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, hammer_main, &h), 0);
	char v[16], name[16];
	for (int i = 2; i <= 4; i++) {
		snprintf(v, sizeof(v), "v%d", i);
		snprintf(name, sizeof(name), "gen%d", i);
		secret_version(v, name);
		secret_swap(v);
		cr_assert(log_count(p, "configuration reloaded", i - 1), "swap %d not followed", i);
	}
	atomic_store(&h.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_log_info("handshakes during 3 swaps: %d ok, %d failed", h.ok, h.failed);
	cr_assert_gt(atomic_load(&h.ok), 0);
	cr_assert_eq(atomic_load(&h.failed), 0);
	cr_assert(serves(h.port, "gen4.test"));
	cr_assert_eq(proxy_stop(p, HARNESS_TIMEOUT_MS), 0);
	backend_destroy(b);
	harness_pass();
}
