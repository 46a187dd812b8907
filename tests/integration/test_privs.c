/* Privilege drop through the real binary: with `user =` set and every file the config names
 * readable only by root, a reload after the drop still re-reads certificates and ticket keys
 * and binds a new port below 1024, while the process runs as that user and every thread
 * holds CAP_NET_BIND_SERVICE and CAP_DAC_READ_SEARCH and nothing else. Needs root. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "harness.h"

/* CAP_DAC_READ_SEARCH (2) and CAP_NET_BIND_SERVICE (10): all the drop may keep */
#define KEPT_CAPS ((1ull << 2) | (1ull << 10))

static int file_count(const char *path, const char *needle)
{
	char *text = harness_read_file(path, NULL);
	int n = 0;

	for (const char *at = text; at && (at = strstr(at, needle)); at += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Polls the proxy's stderr until needle occurs n times or fail_needle appears. */
static bool log_wait(struct proxy *p, const char *needle, int n, const char *fail_needle,
		     int timeout_ms)
{
	int64_t end = harness_now_ms() + timeout_ms;

	do {
		if (file_count(proxy_stderr_path(p), needle) >= n)
			return true;
		if (fail_needle && file_count(proxy_stderr_path(p), fail_needle) > 0)
			return false;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	} while (harness_now_ms() < end);
	return false;
}

/* A port below 1024 on 127.0.0.1 that nothing listens on and that binds now. */
static int free_low_port(void)
{
	for (int port = 600; port <= 1000; port++) {
		struct sockaddr_in in = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		if (harness_port_listening(port))
			continue;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert(fd >= 0);
		int r = bind(fd, (struct sockaddr *)&in, sizeof(in));
		close(fd);
		if (r == 0)
			return port;
	}
	return -1;
}

/* Makes path root's, readable by root only. */
static void root_only(const char *path)
{
	cr_assert_eq(chown(path, 0, 0), 0, "chown %s: %m", path);
	cr_assert_eq(chmod(path, 0600), 0, "chmod %s: %m", path);
}

/* Moves NAME.crt/NAME.key of the harness over site.crt/site.key, root-only. */
static void install_cert(const char *name, const char *sans, struct harness_cert *site)
{
	struct harness_cert c;

	cr_assert_eq(harness_cert_create(name, sans, &c), 0);
	snprintf(site->cert, sizeof(site->cert), "%s", harness_path("site.crt"));
	snprintf(site->key, sizeof(site->key), "%s", harness_path("site.key"));
	cr_assert_eq(rename(c.cert, site->cert), 0);
	cr_assert_eq(rename(c.key, site->key), 0);
	root_only(site->cert);
	root_only(site->key);
}

/* A ticket_keys file of one fresh key, root-only. */
static const char *write_ticket_keys(void)
{
	unsigned char raw[80];
	unsigned char b64[128];

	cr_assert_eq(RAND_bytes(raw, sizeof(raw)), 1);
	cr_assert_eq(EVP_EncodeBlock(b64, raw, sizeof(raw)), 108);
	const char *path = harness_write_file("tickets.key", "%s\n", (const char *)b64);
	cr_assert_not_null(path);
	root_only(path);
	return path;
}

static const char *write_config(int port, int low_port, const struct harness_cert *site,
				const char *tickets, const struct backend *a)
{
	char fe[256] = "", be[256];

	if (low_port > 0)
		snprintf(fe, sizeof(fe), "listen = 127.0.0.1:%d\n", low_port);
	snprintf(fe + strlen(fe), sizeof(fe) - strlen(fe), "ticket_keys = %s\n", tickets);
	snprintf(be, sizeof(be), "[backend app]\nserver = %s\ncheck = tcp\ncheck_interval = 1s\n",
		 backend_addr(a));
	const char *ini = harness_config_web(
		"privs.ini", port, site, "user = nobody\nworkers = 2\nlog_level = info\n", fe, be);
	cr_assert_not_null(ini);
	root_only(ini);
	return ini;
}

/* One request through port; true if the backend answered and the served certificate
 * names dns. */
static bool fetch_with_cert(int port, const char *dns)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tlsc_opts o = { .sni = dns };
	struct tlsc *c = tlsc_connect("127.0.0.1", port, &o);
	char buf[512];
	ssize_t n = -1;
	bool named;

	if (!c)
		return false;
	named = tlsc_peer_has_dns(c, dns);
	if (tlsc_write_all(c, req, sizeof(req) - 1, 5000) == 0)
		n = tlsc_read_all(c, buf, sizeof(buf) - 1, 5000);
	tlsc_close(c);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return named && strstr(buf, "hello from a");
}

/* Hex value of field (e.g. "CapEff:") in a /proc status file; -1 if missing. */
static long long status_hex(const char *path, const char *field)
{
	char *text = harness_read_file(path, NULL);
	const char *at = text ? strstr(text, field) : NULL;
	long long v = at ? strtoll(at + strlen(field), NULL, 16) : -1;

	free(text);
	return v;
}

/* Every thread of pid runs as uid and holds exactly the kept capabilities; returns the
 * number of threads. */
static int assert_threads_reduced(pid_t pid, uid_t uid)
{
	static const char *const kept[] = { "CapEff:", "CapPrm:", "CapBnd:" };
	static const char *const none[] = { "CapInh:", "CapAmb:" };
	char dir[64], path[320], want[64];
	struct dirent *e;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	snprintf(want, sizeof(want), "Uid:\t%u\t%u\t%u\t%u", uid, uid, uid, uid);
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%.32s/status", dir, e->d_name);
		char *text = harness_read_file(path, NULL);
		cr_assert(text && strstr(text, want), "thread %s is not uid %u", e->d_name, uid);
		free(text);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(status_hex(path, kept[i]), (long long)KEPT_CAPS,
				     "thread %s %s %llx", e->d_name, kept[i],
				     status_hex(path, kept[i]));
		for (int i = 0; i < 2; i++)
			cr_assert_eq(status_hex(path, none[i]), 0, "thread %s %s", e->d_name,
				     none[i]);
		n++;
	}
	closedir(d);
	return n;
}

TestSuite(privs, .init = harness_setup, .fini = harness_teardown, .timeout = 60);

Test(privs, reload_after_the_drop_reads_root_only_keys_and_binds_low_ports)
{
	struct harness_cert site;
	struct passwd *pw = getpwnam("nobody");

	if (geteuid() != 0)
		cr_skip_test("needs root: the test drops privileges and chowns files to root");
	if (!pw)
		cr_skip_test("no user 'nobody' on this system");
	uid_t uid = pw->pw_uid;
	struct backend *a = backend_start(BACKEND_HELLO, 0, "a", 0);
	int port = harness_free_port();
	cr_assert_not_null(a);
	install_cert("one", "one.test", &site);
	const char *tickets = write_ticket_keys();
	struct proxy *p = proxy_start(write_config(port, 0, &site, tickets, a), port);
	cr_assert_not_null(p);
	cr_assert(fetch_with_cert(port, "one.test"));

	int low = free_low_port();
	cr_assert(low > 0, "no free port in 600-1000");
	install_cert("two", "two.test", &site);
	tickets = write_ticket_keys();
	write_config(port, low, &site, tickets, a);
	cr_assert_eq(proxy_signal(p, SIGHUP), 0);
	cr_assert(log_wait(p, "configuration reloaded", 1, "failed", 5000),
		  "the reload after the drop must succeed (see %s)", proxy_stderr_path(p));
	cr_assert(fetch_with_cert(port, "two.test"), "the reload re-read the certificate");
	cr_assert(harness_wait_port("127.0.0.1", low, 5000), "the reload bound port %d", low);
	cr_assert(fetch_with_cert(low, "two.test"));

	/* main, two workers and the health thread: every one reduced alike */
	cr_assert_geq(assert_threads_reduced(proxy_pid(p), uid), 4);
	harness_pass();
}
