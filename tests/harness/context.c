/* The harness's per-test context: temp dir, files, ports, the test pattern and its hashes,
 * and the shared helpers of internal.h. */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

struct harness_state H = { .lock = PTHREAD_MUTEX_INITIALIZER };

void harness_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("harness: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

const char *harness_keep_str(char *s)
{
	char **n;

	if (!s)
		return NULL;
	pthread_mutex_lock(&H.lock);
	n = realloc(H.strs, (H.nstrs + 1) * sizeof(*n));
	if (!n) {
		pthread_mutex_unlock(&H.lock);
		free(s);
		return NULL;
	}
	H.strs = n;
	H.strs[H.nstrs++] = s;
	pthread_mutex_unlock(&H.lock);
	return s;
}

char *harness_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

int64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int harness_remaining_ms(int64_t deadline)
{
	int64_t r = deadline - harness_now_ms();

	return r < 0 ? 0 : (int)r;
}

void harness_nap_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- per-test context */

void harness_setup(void)
{
	const char *base = getenv("TMPDIR");

	signal(SIGPIPE, SIG_IGN);
	OPENSSL_init_ssl(0, NULL);
	if (!base || !*base)
		base = "/tmp";
	snprintf(H.dir, sizeof(H.dir), "%s/tlsplice-it.XXXXXX", base);
	if (!mkdtemp(H.dir)) {
		harness_log("mkdtemp %s: %s", H.dir, strerror(errno));
		abort();
	}
	H.passed = false;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A failed test's files stay on disk, but not inside the VM that ran it: the end of each
 * proxy's log goes to the test's output, which the VM run brings back. */
static void print_log_tail(const struct proxy *p)
{
	size_t len = 0;
	char *text = harness_read_file(proxy_stderr_path(p), &len);
	size_t at = len, lines = 0;

	if (!text)
		return;
	while (at > 0 && lines <= 40)
		lines += text[--at] == '\n';
	fprintf(stderr, "harness: the end of %s:\n%s\n", proxy_stderr_path(p),
		text + at + (at > 0));
	free(text);
}

void harness_teardown(void)
{
	size_t i;

	for (i = 0; i < H.nclients; i++)
		tlsc_close(H.clients[i]);
	H.nclients = 0;
	for (i = 0; i < H.nproxies; i++) {
		if (proxy_running(H.proxies[i]))
			proxy_stop(H.proxies[i], 3000);
		if (!H.passed)
			print_log_tail(H.proxies[i]);
		free(H.proxies[i]);
	}
	H.nproxies = 0;
	for (i = H.nbackends; i > 0; i--)
		backend_destroy(H.backends[i - 1]);
	if (H.passed)
		nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else if (H.dir[0])
		fprintf(stderr, "harness: test did not pass; files kept in %s\n", H.dir);
	for (i = 0; i < H.nstrs; i++)
		free(H.strs[i]);
	free(H.strs);
	H.strs = NULL;
	H.nstrs = 0;
}

void harness_pass(void)
{
	H.passed = true;
}

const char *harness_dir(void)
{
	return H.dir;
}

const char *harness_path(const char *name)
{
	return harness_keep_str(harness_asprintf("%s/%s", H.dir, name));
}

const char *harness_write_file(const char *name, const char *fmt, ...)
{
	const char *path = harness_path(name);
	va_list ap;
	FILE *f;
	int rc;

	if (!path)
		return NULL;
	f = fopen(path, "w");
	if (!f) {
		harness_log("open %s: %s", path, strerror(errno));
		return NULL;
	}
	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) != 0 || rc < 0) {
		harness_log("write %s failed", path);
		return NULL;
	}
	return path;
}

char *harness_read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

/* The kernel's ephemeral range ("LO HI"); Linux's default if it cannot be read. */
static void ephemeral_range(int *lo, int *hi)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	*lo = 32768;
	*hi = 60999;
	if (f) {
		if (fscanf(f, "%d %d", lo, hi) != 2 || *lo < 1 || *hi < *lo || *hi > 65535) {
			*lo = 32768;
			*hi = 60999;
		}
		fclose(f);
	}
}

/* The ports handed out for proxies: the larger span outside the ephemeral range, above
 * 10000 (below it sit the well-known services). */
static void port_span(int *first, int *count)
{
	int lo, hi;

	ephemeral_range(&lo, &hi);
	if (lo - 10000 >= 65535 - hi) {
		*first = 10000;
		*count = lo > 10000 ? lo - 10000 : 0;
	} else {
		*first = hi + 1;
		*count = 65535 - hi;
	}
}

/* The next number of a counter that every test process of this user shares (a file under
 * flock), so two tests running side by side never get the same port; -1 if it cannot. */
static long next_shared_count(void)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];
	unsigned char buf[8] = { 0 };
	uint64_t v = 0;
	long out = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/tlsplice-harness-ports.%u", tmp && *tmp ? tmp : "/tmp",
		 (unsigned)getuid());
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX) == 0) {
		if (pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf))
			memcpy(&v, buf, sizeof(v));
		else
			v = (uint64_t)getpid() * 7919u; /* a new file: start anywhere */
		v++;
		memcpy(buf, &v, sizeof(v));
		if (pwrite(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf))
			out = (long)(v & 0x7fffffff);
		flock(fd, LOCK_UN);
	}
	close(fd);
	return out;
}

/* True if a listener could bind 127.0.0.1:port now (with SO_REUSEADDR, as tlsplice binds,
 * so a TIME_WAIT left by an earlier test does not count; without SO_REUSEPORT, so a live
 * listener does). */
static bool port_bindable(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	bool ok;

	if (fd < 0)
		return false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* Ports come from outside the kernel's ephemeral range, so no socket bound to port 0 and no
 * outgoing connection (the test's backends, the proxy's connects) can take one between this
 * call and the proxy's bind; and in turn from a counter the test processes share, so two
 * tests running side by side cannot both pick one (tlsplice binds with SO_REUSEPORT, so both
 * would start and split the traffic). */
int harness_free_port(void)
{
	int first, count;

	port_span(&first, &count);
	if (count < 100) {
		harness_log("ephemeral range leaves no span for test ports");
		return -1;
	}
	for (int tries = 0; tries < 200; tries++) {
		long n = next_shared_count();

		if (n < 0) {
			harness_log("port counter: %s", strerror(errno));
			return -1;
		}
		int port = first + (int)(n % count);
		if (port_bindable(port))
			return port;
	}
	harness_log("no free test port in %d..%d", first, first + count - 1);
	return -1;
}

int harness_tcp_connect(const char *host, int port, int timeout_ms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct pollfd pfd;
	int fd, err = 0;
	socklen_t el = sizeof(err);

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (errno != EINPROGRESS)
		goto fail;
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, timeout_ms) != 1) {
		errno = ETIMEDOUT;
		goto fail;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
		errno = err ? err : EIO;
		goto fail;
	}
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

bool harness_wait_port(const char *host, int port, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		int fd = harness_tcp_connect(host, port, harness_remaining_ms(deadline));

		if (fd >= 0) {
			close(fd);
			return true;
		}
		if (harness_now_ms() >= deadline)
			return false;
		harness_nap_ms(10);
	}
}

bool harness_wait_port_closed(const char *host, int port, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		int fd = harness_tcp_connect(host, port, harness_remaining_ms(deadline));

		if (fd < 0 && errno == ECONNREFUSED)
			return true;
		if (fd >= 0)
			close(fd);
		if (harness_now_ms() >= deadline)
			return false;
		harness_nap_ms(10);
	}
}

void harness_pattern(uint64_t offset, void *buf, size_t len)
{
	bcore_pattern(offset, buf, len); /* the backend core's SOURCE stream, byte for byte */
}

void harness_sha_final_hex(EVP_MD_CTX *md, char out[65])
{
	unsigned char d[32];
	unsigned int dl = sizeof(d);

	EVP_DigestFinal_ex(md, d, &dl);
	bcore_hex32(d, out);
}

void harness_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];

	SHA256(data, len, d);
	bcore_hex32(d, out);
}

void harness_pattern_sha256_hex(uint64_t n, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[16384];
	uint64_t off = 0;

	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (off < n) {
		size_t k = n - off < sizeof(buf) ? (size_t)(n - off) : sizeof(buf);

		harness_pattern(off, buf, k);
		EVP_DigestUpdate(md, buf, k);
		off += k;
	}
	harness_sha_final_hex(md, out);
	EVP_MD_CTX_free(md);
}

/* ---------------------------------------------------------------- configs */

const char *harness_config_web(const char *name, int port, const struct harness_cert *crt,
			       const char *global_extra, const char *fe_extra, const char *backends)
{
	return harness_write_file(name,
				  "[global]\n%s\n"
				  "[frontend web]\n"
				  "listen = 127.0.0.1:%d\n"
				  "cert = %s\n"
				  "key = %s\n"
				  "backend = app\n"
				  "%s\n"
				  "%s",
				  global_extra ? global_extra : "", port, crt->cert, crt->key,
				  fe_extra ? fe_extra : "", backends ? backends : "");
}
