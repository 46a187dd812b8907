/* Integration test harness: temp dirs, certificates, the proxy process, in-process backends,
 * a TLS client with deadlines and access-log parsing. See harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#ifndef TLSPLICE_BIN
#define TLSPLICE_BIN "tlsplice"
#endif

#define MAX_TRACKED 64

/* Per-test state; each Criterion test is its own process, so globals are per test. */
static struct {
	char dir[1024];
	bool passed;
	char **strs; /* strings handed out as const char *, freed at teardown */
	size_t nstrs;
	struct proxy *proxies[MAX_TRACKED];
	size_t nproxies;
	struct backend *backends[MAX_TRACKED];
	size_t nbackends;
	struct tlsc *clients[MAX_TRACKED * 4];
	size_t nclients;
	pthread_mutex_t lock;
} H = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void hlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void hlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("harness: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Keeps s (malloc'd) until teardown and returns it. */
static const char *keep_str(char *s)
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

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
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

static int remaining_ms(int64_t deadline)
{
	int64_t r = deadline - harness_now_ms();

	return r < 0 ? 0 : (int)r;
}

/* Short bounded pause used only inside deadline-bounded polling loops. */
static void nap_ms(int ms)
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
		hlog("mkdtemp %s: %s", H.dir, strerror(errno));
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

void harness_teardown(void)
{
	size_t i;

	for (i = 0; i < H.nclients; i++)
		tlsc_close(H.clients[i]);
	H.nclients = 0;
	for (i = 0; i < H.nproxies; i++) {
		if (proxy_running(H.proxies[i]))
			proxy_stop(H.proxies[i], 3000);
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
	return keep_str(xasprintf("%s/%s", H.dir, name));
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
		hlog("open %s: %s", path, strerror(errno));
		return NULL;
	}
	va_start(ap, fmt);
	rc = vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) != 0 || rc < 0) {
		hlog("write %s failed", path);
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

int harness_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Non-blocking connect to host:port with a deadline. Returns the connected (non-blocking)
 * fd, or -1 with errno set (ECONNREFUSED, ETIMEDOUT, ...). */
static int tcp_connect(const char *host, int port, int timeout_ms)
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
		int fd = tcp_connect(host, port, remaining_ms(deadline));

		if (fd >= 0) {
			close(fd);
			return true;
		}
		if (harness_now_ms() >= deadline)
			return false;
		nap_ms(10);
	}
}

bool harness_wait_port_closed(const char *host, int port, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		int fd = tcp_connect(host, port, remaining_ms(deadline));

		if (fd < 0 && errno == ECONNREFUSED)
			return true;
		if (fd >= 0)
			close(fd);
		if (harness_now_ms() >= deadline)
			return false;
		nap_ms(10);
	}
}

void harness_pattern(uint64_t offset, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t i;

	/* Position-dependent, so a dropped, repeated or reordered chunk changes the hash. */
	for (i = 0; i < len; i++) {
		uint64_t x = offset + i;

		p[i] = (unsigned char)((x * 131u) ^ (x >> 8) ^ (x >> 16) ^ (x >> 24));
	}
}

static void hex_digest(const unsigned char *md, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

static void sha_final_hex(EVP_MD_CTX *md, char out[65])
{
	unsigned char d[32];
	unsigned int dl = sizeof(d);

	EVP_DigestFinal_ex(md, d, &dl);
	hex_digest(d, out);
}

void harness_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char d[32];

	SHA256(data, len, d);
	hex_digest(d, out);
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
	sha_final_hex(md, out);
	EVP_MD_CTX_free(md);
}

/* ---------------------------------------------------------------- certificates */

/* Adds the subjectAltName "DNS:a,DNS:b,..." built from a comma list. */
static int cert_add_san(X509 *x, const char *sans)
{
	char *spec = NULL, *list = strdup(sans), *save = NULL, *tok;
	size_t cap = strlen(sans) * 2 + 16;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int rc = -1;

	spec = calloc(1, cap);
	if (!list || !spec)
		goto out;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (spec[0])
			strcat(spec, ",");
		strcat(spec, "DNS:");
		strcat(spec, tok);
	}
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, spec);
	if (ext && X509_add_ext(x, ext, -1) == 1)
		rc = 0;
	X509_EXTENSION_free(ext);
out:
	free(list);
	free(spec);
	return rc;
}

/* A self-signed certificate for pkey with CN = first SAN. */
static X509 *cert_make(EVP_PKEY *pkey, const char *sans)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	char cn[256];
	size_t cnl = strcspn(sans, ",");

	if (!x)
		return NULL;
	snprintf(cn, sizeof(cn), "%.*s", (int)cnl, sans);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(harness_now_ms() & 0x7fffffff) + 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
	X509_set_pubkey(x, pkey);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (cert_add_san(x, sans) != 0 || X509_sign(x, pkey, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int pem_write(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0)
		ok = 0;
	return ok == 1 ? 0 : -1;
}

static int cert_create(const char *name, const char *sans, bool mismatched,
		       struct harness_cert *out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	EVP_PKEY *other = mismatched ? EVP_EC_gen("P-256") : NULL;
	X509 *x = key ? cert_make(key, sans) : NULL;
	int rc = -1;

	snprintf(out->cert, sizeof(out->cert), "%s/%.200s.crt", H.dir, name);
	snprintf(out->key, sizeof(out->key), "%s/%.200s.key", H.dir, name);
	if (!x || (mismatched && !other))
		goto out;
	if (pem_write(out->cert, x, NULL) == 0 &&
	    pem_write(out->key, NULL, mismatched ? other : key) == 0)
		rc = 0;
out:
	if (rc != 0)
		hlog("cannot create certificate %s", name);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return rc;
}

int harness_cert_create(const char *name, const char *sans, struct harness_cert *out)
{
	return cert_create(name, sans, false, out);
}

int harness_cert_create_mismatched(const char *name, const char *sans, struct harness_cert *out)
{
	return cert_create(name, sans, true, out);
}

/* ---------------------------------------------------------------- processes */

struct proxy {
	pid_t pid;
	bool collected;
	int code;
	char out[4096];
	char err[4096];
};

const char *harness_tlsplice_bin(void)
{
	const char *env = getenv("TLSPLICE_BIN");

	return env && *env ? env : TLSPLICE_BIN;
}

/* fork + exec argv with stdout/stderr redirected to files; the child dies with us. */
static pid_t spawn(char *const *argv, const char *out, const char *err)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* Child: async-signal-safe calls only, the parent has threads. */
	int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	int fi = open("/dev/null", O_RDONLY);

	if (fo < 0 || fe < 0 || fi < 0)
		_exit(126);
	dup2(fi, 0);
	dup2(fo, 1);
	dup2(fe, 2);
	close_range(3, ~0u, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* SIG_IGN and the signal mask survive exec; give the binary a clean slate. */
	signal(SIGPIPE, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	_exit(127);
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

/* Waits for pid up to timeout_ms: exit code (see decode_status) or -1 if still running. */
static int wait_pid(pid_t pid, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return decode_status(st);
		if (r < 0 && errno != EINTR)
			return -2;
		if (harness_now_ms() >= deadline)
			return -1;
		nap_ms(5);
	}
}

/* True if some socket LISTENs on TCP port (IPv4 or IPv6). Reading /proc instead of
 * connecting keeps readiness probes out of the proxy's access log. */
bool harness_port_listening(int port)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];
	size_t i;

	for (i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		bool found = false;

		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');
			unsigned lport = 0, st = 0;

			colon = colon ? strchr(colon + 1, ':') : NULL;
			if (colon && sscanf(colon + 1, "%x %*s %x", &lport, &st) == 2)
				found = (int)lport == port && st == 0x0A;
		}
		fclose(f);
		if (found)
			return true;
	}
	return false;
}

static void copy_stderr_of(const struct proxy *p)
{
	char *s = harness_read_file(p->err, NULL);

	hlog("proxy stderr (%s):\n%s", p->err, s ? s : "(unreadable)");
	free(s);
}

/* Polls until the proxy listens on port, or exits, or the deadline passes. */
static bool proxy_wait_ready(struct proxy *p, int port, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		if (harness_port_listening(port))
			return true;
		if (!proxy_running(p)) {
			hlog("proxy exited with %d before listening on %d", p->code, port);
			return false;
		}
		if (harness_now_ms() >= deadline) {
			hlog("proxy not listening on %d after %d ms", port, timeout_ms);
			return false;
		}
		nap_ms(10);
	}
}

struct proxy *proxy_start_args(const char *config, const char *const *extra, int wait_port)
{
	const char *argv[32];
	size_t n = 0;
	struct proxy *p = calloc(1, sizeof(*p));

	if (!p || H.nproxies >= MAX_TRACKED) {
		free(p);
		return NULL;
	}
	argv[n++] = harness_tlsplice_bin();
	argv[n++] = "-c";
	argv[n++] = config;
	while (extra && *extra && n < 31)
		argv[n++] = *extra++;
	argv[n] = NULL;
	snprintf(p->out, sizeof(p->out), "%s/proxy%zu.out", H.dir, H.nproxies);
	snprintf(p->err, sizeof(p->err), "%s/proxy%zu.err", H.dir, H.nproxies);
	p->pid = spawn((char *const *)argv, p->out, p->err);
	if (p->pid < 0) {
		free(p);
		return NULL;
	}
	H.proxies[H.nproxies++] = p;
	if (wait_port > 0 && !proxy_wait_ready(p, wait_port, HARNESS_TIMEOUT_MS)) {
		copy_stderr_of(p);
		return NULL;
	}
	return p;
}

struct proxy *proxy_start(const char *config, int wait_port)
{
	return proxy_start_args(config, NULL, wait_port);
}

pid_t proxy_pid(const struct proxy *p)
{
	return p->pid;
}

const char *proxy_stdout_path(const struct proxy *p)
{
	return p->out;
}

const char *proxy_stderr_path(const struct proxy *p)
{
	return p->err;
}

const char *proxy_access_log(const struct proxy *p)
{
	return p->out;
}

int proxy_signal(struct proxy *p, int sig)
{
	if (p->collected)
		return -1;
	return kill(p->pid, sig);
}

int proxy_wait(struct proxy *p, int timeout_ms)
{
	int r;

	if (p->collected)
		return p->code;
	r = wait_pid(p->pid, timeout_ms);
	if (r == -1)
		return -1;
	p->collected = true;
	p->code = r;
	return r;
}

bool proxy_running(struct proxy *p)
{
	return proxy_wait(p, 0) == -1;
}

int proxy_stop(struct proxy *p, int timeout_ms)
{
	int r;

	proxy_signal(p, SIGTERM);
	r = proxy_wait(p, timeout_ms);
	if (r == -1) {
		hlog("proxy %d still running %d ms after SIGTERM; killing it", (int)p->pid,
		     timeout_ms);
		kill(p->pid, SIGKILL);
		proxy_wait(p, HARNESS_TIMEOUT_MS);
		return -1;
	}
	return r;
}

int harness_run(struct run_result *r, int timeout_ms, const char *const *argv)
{
	const char *args[64];
	size_t n = 0;
	char out[4200], err[4200];
	static unsigned seq;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	args[n++] = harness_tlsplice_bin();
	while (argv && *argv && n < 63)
		args[n++] = *argv++;
	args[n] = NULL;
	snprintf(out, sizeof(out), "%s/run%u.out", H.dir, seq);
	snprintf(err, sizeof(err), "%s/run%u.err", H.dir, seq++);
	pid = spawn((char *const *)args, out, err);
	if (pid < 0)
		return -1;
	r->status = wait_pid(pid, timeout_ms);
	if (r->status == -1) {
		kill(pid, SIGKILL);
		wait_pid(pid, HARNESS_TIMEOUT_MS);
	}
	r->out = harness_read_file(out, NULL);
	r->err = harness_read_file(err, NULL);
	if (!r->out)
		r->out = strdup("");
	if (!r->err)
		r->err = strdup("");
	return 0;
}

void run_result_finish(struct run_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int harness_count_lines(const char *text)
{
	int n = 0;
	const char *p;

	if (!text)
		return 0;
	for (p = text; *p; p++)
		if (*p == '\n')
			n++;
	if (p > text && p[-1] != '\n')
		n++;
	return n;
}

/* ---------------------------------------------------------------- backends */

#define BCONN_BUF 65536

struct bconn {
	int fd;
	unsigned char *out; /* bytes waiting to be written */
	size_t outlen, outoff;
	uint64_t src_sent; /* SOURCE/RESET: pattern bytes queued so far */
	bool rd_eof, wr_done, replied, finished;
	EVP_MD_CTX *md; /* hash of what was read */
	uint64_t nin;
	char req[8192]; /* HELLO request */
	size_t reqlen;
};

struct backend {
	enum backend_mode mode;
	int port;
	char name[64];
	uint64_t bytes;
	char addr[32];
	int lfd;
	int wake[2];
	pthread_t th;
	bool running;
	pthread_mutex_t mu;
	struct backend_stats st;
	struct bconn **conns; /* owned by the thread */
	size_t nconns;
};

static void bstat_add(struct backend *b, unsigned *ctr, int delta)
{
	pthread_mutex_lock(&b->mu);
	*ctr += delta;
	pthread_mutex_unlock(&b->mu);
}

static void bstat_bytes(struct backend *b, uint64_t *ctr, uint64_t n)
{
	pthread_mutex_lock(&b->mu);
	*ctr += n;
	pthread_mutex_unlock(&b->mu);
}

static void bconn_free(struct backend *b, struct bconn *c)
{
	char hex[65];

	if (c->md) {
		sha_final_hex(c->md, hex);
		pthread_mutex_lock(&b->mu);
		b->st.last_in = c->nin;
		memcpy(b->st.last_sha, hex, sizeof(hex));
		pthread_mutex_unlock(&b->mu);
		EVP_MD_CTX_free(c->md);
	}
	close(c->fd);
	free(c->out);
	free(c);
	bstat_add(b, &b->st.active, -1);
}

static void bconn_accept(struct backend *b)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(b->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct bconn *c, **n;

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		n = realloc(b->conns, (b->nconns + 1) * sizeof(*n));
		if (!c || !n || !(c->out = malloc(BCONN_BUF))) {
			free(c ? c->out : NULL);
			free(c);
			if (n)
				b->conns = n;
			close(fd);
			continue;
		}
		b->conns = n;
		c->fd = fd;
		if (b->mode != BACKEND_ECHO && b->mode != BACKEND_HELLO) {
			c->md = EVP_MD_CTX_new();
			EVP_DigestInit_ex(c->md, EVP_sha256(), NULL);
		}
		b->conns[b->nconns++] = c;
		pthread_mutex_lock(&b->mu);
		b->st.accepted++;
		b->st.active++;
		pthread_mutex_unlock(&b->mu);
	}
}

static bool bconn_wants_read(const struct backend *b, const struct bconn *c)
{
	if (c->rd_eof)
		return false;
	switch (b->mode) {
	case BACKEND_ECHO:
		return c->outoff == c->outlen;
	case BACKEND_HELLO:
		return !c->replied;
	case BACKEND_SINK:
		return !c->replied;
	default:
		return true;
	}
}

static bool bconn_wants_write(const struct backend *b, const struct bconn *c)
{
	if (c->outoff < c->outlen)
		return true;
	if (b->mode == BACKEND_RESET)
		return c->nin > 0 && c->src_sent < b->bytes;
	return b->mode == BACKEND_SOURCE && c->src_sent < b->bytes;
}

static void bconn_reply(struct bconn *c, const char *data, size_t len)
{
	if (len > BCONN_BUF)
		len = BCONN_BUF;
	memcpy(c->out, data, len);
	c->outlen = len;
	c->outoff = 0;
	c->replied = true;
}

static void bconn_hello_reply(struct backend *b, struct bconn *c)
{
	char body[128], resp[512];
	int bl = snprintf(body, sizeof(body), "hello from %s\n", b->name);
	int rl = snprintf(resp, sizeof(resp),
			  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
			  "Connection: close\r\n\r\n%s",
			  bl, body);

	bconn_reply(c, resp, (size_t)rl);
}

/* Consumes n freshly read bytes at buf according to the mode. */
static void bconn_consume(struct backend *b, struct bconn *c, const unsigned char *buf, size_t n)
{
	c->nin += n;
	if (c->md)
		EVP_DigestUpdate(c->md, buf, n);
	if (b->mode == BACKEND_HELLO) {
		size_t k = n < sizeof(c->req) - 1 - c->reqlen ? n : sizeof(c->req) - 1 - c->reqlen;

		memcpy(c->req + c->reqlen, buf, k);
		c->reqlen += k;
		c->req[c->reqlen] = '\0';
		if (strstr(c->req, "\r\n\r\n") || c->reqlen == sizeof(c->req) - 1)
			bconn_hello_reply(b, c);
	}
}

static void bconn_read(struct backend *b, struct bconn *c)
{
	unsigned char scratch[16384];
	unsigned char *dst = b->mode == BACKEND_ECHO ? c->out : scratch;
	size_t cap = b->mode == BACKEND_ECHO ? BCONN_BUF : sizeof(scratch);
	ssize_t n = read(c->fd, dst, cap);

	if (n > 0) {
		bstat_bytes(b, &b->st.bytes_in, (uint64_t)n);
		if (b->mode == BACKEND_ECHO) {
			c->outlen = (size_t)n;
			c->outoff = 0;
		}
		bconn_consume(b, c, dst, (size_t)n);
	} else if (n == 0) {
		c->rd_eof = true;
		bstat_add(b, &b->st.eofs, 1);
	} else if (errno != EAGAIN && errno != EINTR) {
		c->finished = true; /* reset by the peer */
	}
}

static void bconn_write(struct backend *b, struct bconn *c)
{
	ssize_t n;

	if (c->outoff == c->outlen && c->src_sent < b->bytes &&
	    (b->mode == BACKEND_SOURCE || b->mode == BACKEND_RESET)) {
		uint64_t left = b->bytes - c->src_sent;
		size_t k = left < BCONN_BUF ? (size_t)left : BCONN_BUF;

		harness_pattern(c->src_sent, c->out, k);
		c->outlen = k;
		c->outoff = 0;
		c->src_sent += k;
	}
	if (c->outoff == c->outlen)
		return;
	n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
	if (n > 0) {
		c->outoff += (size_t)n;
		bstat_bytes(b, &b->st.bytes_out, (uint64_t)n);
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		c->finished = true;
	}
}

/* Moves a connection to its next state once its current work is done. */
static void bconn_advance(struct backend *b, struct bconn *c)
{
	bool drained = c->outoff == c->outlen && !bconn_wants_write(b, c);

	switch (b->mode) {
	case BACKEND_HELLO:
		if (c->rd_eof && !c->replied)
			bconn_hello_reply(b, c);
		else if (c->replied && drained)
			c->finished = true;
		break;
	case BACKEND_SINK:
		if (c->rd_eof && !c->replied) {
			char hex[66];

			sha_final_hex(c->md, hex);
			pthread_mutex_lock(&b->mu);
			memcpy(b->st.last_sha, hex, 65);
			b->st.last_in = c->nin;
			pthread_mutex_unlock(&b->mu);
			EVP_MD_CTX_free(c->md);
			c->md = NULL;
			hex[64] = '\n';
			bconn_reply(c, hex, 65);
		} else if (c->replied && drained) {
			c->finished = true;
		}
		break;
	case BACKEND_RESET:
		if (c->nin > 0 && drained) {
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };

			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			c->finished = true;
		}
		break;
	case BACKEND_SILENT:
		c->finished = c->finished || c->rd_eof;
		break;
	default: /* ECHO, SOURCE: half-close aware */
		if (drained && !c->wr_done && (c->rd_eof || b->mode == BACKEND_SOURCE)) {
			shutdown(c->fd, SHUT_WR);
			c->wr_done = true;
		}
		if (c->wr_done && c->rd_eof)
			c->finished = true;
	}
}

static short bconn_events(const struct backend *b, const struct bconn *c)
{
	short ev = 0;

	if (bconn_wants_read(b, c))
		ev |= POLLIN;
	if (bconn_wants_write(b, c))
		ev |= POLLOUT;
	return ev;
}

static void bconn_step(struct backend *b, struct bconn *c, short revents)
{
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && bconn_wants_read(b, c))
		bconn_read(b, c);
	if (!c->finished && (revents & (POLLOUT | POLLERR)) && bconn_wants_write(b, c))
		bconn_write(b, c);
	if (!c->finished)
		bconn_advance(b, c);
}

/* Drops finished connections from the thread's list. */
static void backend_reap(struct backend *b)
{
	size_t i = 0;

	while (i < b->nconns) {
		if (b->conns[i]->finished) {
			bconn_free(b, b->conns[i]);
			b->conns[i] = b->conns[--b->nconns];
		} else {
			i++;
		}
	}
}

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	struct pollfd *pf = NULL;

	for (;;) {
		size_t i, n = b->nconns + 2;
		struct pollfd *np = realloc(pf, n * sizeof(*pf));

		if (!np)
			break;
		pf = np;
		pf[0] = (struct pollfd){ .fd = b->wake[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = b->lfd, .events = POLLIN };
		for (i = 0; i < b->nconns; i++)
			pf[i + 2] = (struct pollfd){ .fd = b->conns[i]->fd,
						     .events = bconn_events(b, b->conns[i]) };
		if (poll(pf, n, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		for (i = 0; i < b->nconns; i++)
			if (pf[i + 2].revents)
				bconn_step(b, b->conns[i], pf[i + 2].revents);
		backend_reap(b);
		if (pf[1].revents & POLLIN)
			bconn_accept(b);
	}
	free(pf);
	while (b->nconns > 0)
		bconn_free(b, b->conns[--b->nconns]);
	return NULL;
}

static int listen_on(int port, int *port_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t sl = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 512) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		hlog("backend listen on %d: %s", port, strerror(errno));
		close(fd);
		return -1;
	}
	*port_out = ntohs(sa.sin_port);
	return fd;
}

int backend_restart(struct backend *b)
{
	if (b->running)
		return 0;
	b->lfd = listen_on(b->port, &b->port);
	if (b->lfd < 0)
		return -1;
	if (pipe2(b->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		goto err_listen;
	if (pthread_create(&b->th, NULL, backend_main, b) != 0)
		goto err_pipe;
	b->running = true;
	return 0;
err_pipe:
	close(b->wake[0]);
	close(b->wake[1]);
err_listen:
	close(b->lfd);
	return -1;
}

struct backend *backend_start(enum backend_mode mode, int port, const char *name, uint64_t bytes)
{
	struct backend *b = calloc(1, sizeof(*b));

	if (!b || H.nbackends >= MAX_TRACKED) {
		free(b);
		return NULL;
	}
	b->mode = mode;
	b->port = port;
	b->bytes = bytes;
	snprintf(b->name, sizeof(b->name), "%s", name ? name : "backend");
	pthread_mutex_init(&b->mu, NULL);
	if (backend_restart(b) != 0) {
		free(b);
		return NULL;
	}
	snprintf(b->addr, sizeof(b->addr), "127.0.0.1:%d", b->port);
	H.backends[H.nbackends++] = b;
	return b;
}

int backend_port(const struct backend *b)
{
	return b->port;
}

const char *backend_addr(const struct backend *b)
{
	return b->addr;
}

void backend_get_stats(struct backend *b, struct backend_stats *out)
{
	pthread_mutex_lock(&b->mu);
	*out = b->st;
	pthread_mutex_unlock(&b->mu);
}

unsigned backend_accepted(struct backend *b)
{
	struct backend_stats st;

	backend_get_stats(b, &st);
	return st.accepted;
}

bool backend_wait_accepted(struct backend *b, unsigned n, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	while (backend_accepted(b) < n) {
		if (harness_now_ms() >= deadline)
			return false;
		nap_ms(5);
	}
	return true;
}

bool backend_wait_idle(struct backend *b, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	struct backend_stats st;

	for (;;) {
		backend_get_stats(b, &st);
		if (st.active == 0)
			return true;
		if (harness_now_ms() >= deadline)
			return false;
		nap_ms(5);
	}
}

void backend_stop(struct backend *b)
{
	if (!b->running)
		return;
	if (write(b->wake[1], "x", 1) != 1)
		hlog("backend wake: %s", strerror(errno));
	pthread_join(b->th, NULL);
	close(b->wake[0]);
	close(b->wake[1]);
	close(b->lfd);
	b->running = false;
}

void backend_destroy(struct backend *b)
{
	size_t i;

	if (!b)
		return;
	backend_stop(b);
	for (i = 0; i < H.nbackends; i++)
		if (H.backends[i] == b)
			H.backends[i] = H.backends[--H.nbackends];
	pthread_mutex_destroy(&b->mu);
	free(b->conns);
	free(b);
}

/* ---------------------------------------------------------------- TLS client */

struct tlsc {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	bool close_notify, eof, timed_out;
	char err[512];
	char local[64];
};

enum io { IO_WANT_READ, IO_WANT_WRITE, IO_EOF, IO_FAIL };

static void tlsc_set_err(struct tlsc *c, const char *what, const char *why)
{
	snprintf(c->err, sizeof(c->err), "%s: %s", what, why);
}

/* Classifies the result of an SSL call (the one classifier for every OpenSSL return). */
static enum io ssl_classify(struct tlsc *c, int ret, const char *what)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long q = ERR_peek_error();
	char buf[256];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return IO_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return IO_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		c->close_notify = c->eof = true;
		return IO_EOF;
	case SSL_ERROR_SYSCALL:
		if (q == 0 && errno == 0) {
			c->eof = true;
			return IO_EOF;
		}
		tlsc_set_err(c, what, q ? ERR_error_string(q, buf) : strerror(errno));
		return IO_FAIL;
	default:
		if (ERR_GET_REASON(q) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			c->eof = true;
			return IO_EOF;
		}
		ERR_error_string_n(q, buf, sizeof(buf));
		tlsc_set_err(c, what, q ? buf : "ssl error");
		return IO_FAIL;
	}
}

/* Waits for the socket; false (and timed_out set) when the deadline passes. */
static bool wait_fd(struct tlsc *c, short ev, int64_t deadline)
{
	struct pollfd pfd = { .fd = c->fd, .events = ev ? ev : POLLIN };
	int r;

	do {
		r = poll(&pfd, 1, remaining_ms(deadline));
	} while (r < 0 && errno == EINTR);
	if (r > 0)
		return true;
	c->timed_out = true;
	tlsc_set_err(c, "wait", "timed out");
	return false;
}

static void clear_errors(void)
{
	ERR_clear_error();
	errno = 0;
}

/* Builds the ALPN wire format from a comma list. */
static int tlsc_set_alpn(SSL_CTX *ctx, const char *alpn)
{
	unsigned char wire[256];
	size_t n = 0;
	const char *p = alpn;

	while (*p) {
		size_t l = strcspn(p, ",");

		if (l == 0 || l > 255 || n + 1 + l > sizeof(wire))
			return -1;
		wire[n++] = (unsigned char)l;
		memcpy(wire + n, p, l);
		n += l;
		p += l + (p[l] == ',');
	}
	return SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n) == 0 ? 0 : -1;
}

static SSL_CTX *tlsc_ctx(const struct tlsc_opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if ((o->min_version && !SSL_CTX_set_min_proto_version(ctx, o->min_version)) ||
	    (o->max_version && !SSL_CTX_set_max_proto_version(ctx, o->max_version)) ||
	    (o->ciphers && !SSL_CTX_set_cipher_list(ctx, o->ciphers)) ||
	    (o->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, o->ciphersuites)) ||
	    (o->alpn && tlsc_set_alpn(ctx, o->alpn) != 0)) {
		hlog("bad TLS client options");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

static void tlsc_track(struct tlsc *c, bool add)
{
	size_t i;

	pthread_mutex_lock(&H.lock);
	if (add && H.nclients < sizeof(H.clients) / sizeof(H.clients[0])) {
		H.clients[H.nclients++] = c;
	} else if (!add) {
		for (i = 0; i < H.nclients; i++)
			if (H.clients[i] == c)
				H.clients[i] = H.clients[--H.nclients];
	}
	pthread_mutex_unlock(&H.lock);
}

static void tlsc_fill_local(struct tlsc *c)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char ip[INET_ADDRSTRLEN] = "?";

	if (getsockname(c->fd, (struct sockaddr *)&sa, &sl) == 0)
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
	snprintf(c->local, sizeof(c->local), "%s:%d", ip, ntohs(sa.sin_port));
}

struct tlsc *tlsc_open(const char *host, int port, const struct tlsc_opts *opts)
{
	static const struct tlsc_opts defaults;
	const struct tlsc_opts *o = opts ? opts : &defaults;
	struct tlsc *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = tcp_connect(host, port, o->timeout_ms ? o->timeout_ms : HARNESS_TIMEOUT_MS);
	if (c->fd < 0) {
		hlog("connect %s:%d: %s", host, port, strerror(errno));
		goto err_free;
	}
	c->ctx = tlsc_ctx(o);
	if (!c->ctx || !(c->ssl = SSL_new(c->ctx)))
		goto err_close;
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_connect_state(c->ssl);
	if (o->sni && !SSL_set_tlsext_host_name(c->ssl, o->sni))
		goto err_close;
	tlsc_fill_local(c);
	tlsc_track(c, true);
	return c;
err_close:
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
err_free:
	free(c);
	return NULL;
}

int tlsc_handshake(struct tlsc *c, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;

	for (;;) {
		int r;
		enum io k;

		clear_errors();
		r = SSL_do_handshake(c->ssl);
		if (r == 1)
			return 1;
		k = ssl_classify(c, r, "handshake");
		if (k == IO_EOF) {
			tlsc_set_err(c, "handshake", "peer closed the connection");
			return -1;
		}
		if (k == IO_FAIL)
			return -1;
		if (!wait_fd(c, k == IO_WANT_READ ? POLLIN : POLLOUT, deadline)) {
			c->timed_out = false; /* not a failure: the caller may go on */
			return 0;
		}
	}
}

struct tlsc *tlsc_connect(const char *host, int port, const struct tlsc_opts *opts)
{
	struct tlsc *c = tlsc_open(host, port, opts);
	int to = opts && opts->timeout_ms ? opts->timeout_ms : HARNESS_TIMEOUT_MS;
	int r;

	if (!c)
		return NULL;
	r = tlsc_handshake(c, to);
	if (r != 1) {
		hlog("TLS handshake with %s:%d: %s", host, port, r == 0 ? "timed out" : c->err);
		tlsc_close(c);
		return NULL;
	}
	return c;
}

int tlsc_write_all(struct tlsc *c, const void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	const unsigned char *p = buf;

	while (len > 0) {
		int chunk = len > (1u << 20) ? (1 << 20) : (int)len;
		int n;
		enum io k;

		clear_errors();
		n = SSL_write(c->ssl, p, chunk);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		k = ssl_classify(c, n, "write");
		if (k == IO_EOF || k == IO_FAIL)
			return -1;
		if (!wait_fd(c, k == IO_WANT_READ ? POLLIN : POLLOUT, deadline))
			return -1;
	}
	return 0;
}

ssize_t tlsc_read(struct tlsc *c, void *buf, size_t len, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int want = len > INT32_MAX ? INT32_MAX : (int)len;

	if (c->eof)
		return 0;
	for (;;) {
		int n;
		enum io k;

		clear_errors();
		n = SSL_read(c->ssl, buf, want);
		if (n > 0)
			return n;
		k = ssl_classify(c, n, "read");
		if (k == IO_EOF)
			return 0;
		if (k == IO_FAIL)
			return -1;
		if (!wait_fd(c, k == IO_WANT_READ ? POLLIN : POLLOUT, deadline))
			return -1;
	}
}

ssize_t tlsc_read_all(struct tlsc *c, void *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	unsigned char scratch[16384];
	size_t total = 0;

	for (;;) {
		size_t room = total < cap ? cap - total : 0;
		unsigned char *dst = room ? (unsigned char *)buf + total : scratch;
		ssize_t n = tlsc_read(c, dst, room ? room : sizeof(scratch), remaining_ms(deadline));

		if (n == 0)
			return (ssize_t)total;
		if (n < 0)
			return -1;
		total += (size_t)n;
	}
}

int tlsc_shutdown(struct tlsc *c)
{
	int64_t deadline = harness_now_ms() + HARNESS_TIMEOUT_MS;

	for (;;) {
		int r;
		enum io k;

		clear_errors();
		r = SSL_shutdown(c->ssl);
		if (r >= 0)
			return 0;
		k = ssl_classify(c, r, "shutdown");
		if (k == IO_EOF || k == IO_FAIL)
			return -1;
		if (!wait_fd(c, k == IO_WANT_READ ? POLLIN : POLLOUT, deadline))
			return -1;
	}
}

int tlsc_shutdown_tcp(struct tlsc *c)
{
	return shutdown(c->fd, SHUT_WR);
}

bool tlsc_got_close_notify(const struct tlsc *c)
{
	return c->close_notify;
}

bool tlsc_timed_out(const struct tlsc *c)
{
	return c->timed_out;
}

const char *tlsc_error(const struct tlsc *c)
{
	return c->err;
}

const char *tlsc_version(const struct tlsc *c)
{
	return SSL_get_version(c->ssl);
}

const char *tlsc_cipher(const struct tlsc *c)
{
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);

	return ci ? SSL_CIPHER_get_name(ci) : "";
}

bool tlsc_peer_has_dns(const struct tlsc *c, const char *name)
{
	X509 *x = SSL_get0_peer_certificate(c->ssl);
	GENERAL_NAMES *gens = x ? X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL) : NULL;
	bool found = false;
	int i;

	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			found = ASN1_STRING_length(g->d.dNSName) == (int)strlen(name) &&
				memcmp(ASN1_STRING_get0_data(g->d.dNSName), name, strlen(name)) == 0;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

SSL *tlsc_ssl(struct tlsc *c)
{
	return c->ssl;
}

int tlsc_fd(const struct tlsc *c)
{
	return c->fd;
}

const char *tlsc_local_addr(const struct tlsc *c)
{
	return c->local;
}

void tlsc_close(struct tlsc *c)
{
	if (!c)
		return;
	tlsc_track(c, false);
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	close(c->fd);
	free(c);
}

/* One sending step of a transfer: a chunk, then the half-close. Returns the events to wait
 * for (0 if it made progress), or -1 on failure. */
static int transfer_send(struct tlsc *c, struct tlsc_transfer *t, uint64_t *sent, bool *shut)
{
	unsigned char chunk[16384];
	int n;
	enum io k;

	if (*sent < t->send_bytes) {
		uint64_t left = t->send_bytes - *sent;
		int len = left < sizeof(chunk) ? (int)left : (int)sizeof(chunk);

		/* A retried write regenerates the same bytes: the pattern depends on the offset. */
		harness_pattern(*sent, chunk, (size_t)len);
		clear_errors();
		n = SSL_write(c->ssl, chunk, len);
		if (n > 0) {
			*sent += (uint64_t)n;
			return 0;
		}
		k = ssl_classify(c, n, "write");
	} else if (t->tcp_halfclose) {
		*shut = true;
		return shutdown(c->fd, SHUT_WR) == 0 ? 0 : -1;
	} else {
		clear_errors();
		n = SSL_shutdown(c->ssl);
		if (n >= 0) {
			*shut = true;
			return 0;
		}
		k = ssl_classify(c, n, "shutdown");
	}
	if (k == IO_WANT_READ)
		return POLLIN;
	return k == IO_WANT_WRITE ? POLLOUT : -1;
}

/* One receiving step: events to wait for (0 on progress or end), -1 on failure. */
static int transfer_recv(struct tlsc *c, struct tlsc_transfer *t, EVP_MD_CTX *md, bool *done)
{
	unsigned char buf[16384];
	int n;
	enum io k;

	clear_errors();
	n = SSL_read(c->ssl, buf, sizeof(buf));
	if (n > 0) {
		EVP_DigestUpdate(md, buf, (size_t)n);
		t->received += (uint64_t)n;
		return 0;
	}
	k = ssl_classify(c, n, "read");
	if (k == IO_EOF) {
		*done = true;
		return 0;
	}
	if (k == IO_WANT_READ)
		return POLLIN;
	return k == IO_WANT_WRITE ? POLLOUT : -1;
}

int tlsc_transfer_run(struct tlsc *c, struct tlsc_transfer *t)
{
	int64_t deadline = harness_now_ms() + (t->timeout_ms ? t->timeout_ms : 60000);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t sent = 0;
	bool shut = false, rdone = false;
	int rc = -1;

	t->received = 0;
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (!shut || !rdone) {
		int ws = shut ? 0 : transfer_send(c, t, &sent, &shut);
		int wr = rdone ? 0 : transfer_recv(c, t, md, &rdone);

		if (ws < 0 || wr < 0)
			goto out;
		if (harness_now_ms() > deadline) {
			c->timed_out = true;
			tlsc_set_err(c, "transfer", "timed out");
			goto out;
		}
		/* Wait only when neither side moved. */
		if ((shut || ws) && (rdone || wr) && !(shut && rdone) &&
		    !wait_fd(c, (short)(ws | wr), deadline))
			goto out;
	}
	rc = 0;
out:
	if (rc != 0)
		hlog("transfer: sent %llu received %llu: %s", (unsigned long long)sent,
		     (unsigned long long)t->received, c->err);
	sha_final_hex(md, t->recv_sha);
	EVP_MD_CTX_free(md);
	t->got_close_notify = c->close_notify;
	return rc;
}

/* ---------------------------------------------------------------- access log, JSON */

/* Number of complete lines ('\n'-terminated) in a file; 0 if it cannot be read. */
static int file_lines(const char *path)
{
	char *s = harness_read_file(path, NULL);
	int n = 0;
	char *p;

	for (p = s; p && *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

int alog_wait_lines(const char *path, int n, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int have;

	while ((have = file_lines(path)) < n && harness_now_ms() < deadline)
		nap_ms(10);
	return have;
}

char *alog_line(const char *path, int idx)
{
	char *s = harness_read_file(path, NULL);
	char *p = s, *nl, *line = NULL;

	while (p && idx-- > 0 && (p = strchr(p, '\n')))
		p++;
	if (p && *p && (nl = strchr(p, '\n')))
		line = strndup(p, (size_t)(nl - p));
	free(s);
	return line;
}

char *alog_find(const char *path, const char *key, const char *value)
{
	char *line, val[1024];
	int i;

	for (i = 0; (line = alog_line(path, i)); i++) {
		if (json_str(line, key, val, sizeof(val)) == 0 && strcmp(val, value) == 0)
			return line;
		free(line);
	}
	return NULL;
}

char *alog_wait_find(const char *path, const char *key, const char *value, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	char *line;

	while (!(line = alog_find(path, key, value)) && harness_now_ms() < deadline)
		nap_ms(10);
	return line;
}

int alog_count(const char *path, const char *key, const char *value)
{
	char *line, val[1024];
	int i, n = 0;

	for (i = 0; (line = alog_line(path, i)); i++) {
		n += json_str(line, key, val, sizeof(val)) == 0 && strcmp(val, value) == 0;
		free(line);
	}
	return n;
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parses a JSON string at p (which points at '"'); unescapes into out if given. Returns the
 * position after the closing quote, NULL if malformed. */
static const char *json_string(const char *p, char *out, size_t outlen)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	while (*p && *p != '"') {
		char ch = *p++;

		if (ch == '\\') {
			ch = *p++;
			if (ch == 'n')
				ch = '\n';
			else if (ch == 't')
				ch = '\t';
			else if (ch == 'u' && strlen(p) >= 4)
				ch = '?', p += 4; /* only flat ASCII is expected here */
			else if (!ch)
				return NULL;
		}
		if (out && n + 1 < outlen)
			out[n++] = ch;
	}
	if (out && outlen)
		out[n] = '\0';
	return *p == '"' ? p + 1 : NULL;
}

/* Finds the value of key in a flat object: pointer to its first character or NULL. */
static const char *json_value(const char *line, const char *key)
{
	char k[256];
	const char *p = skip_ws(line);

	if (*p++ != '{')
		return NULL;
	for (;;) {
		p = skip_ws(p);
		if (*p != '"' || !(p = json_string(p, k, sizeof(k))))
			return NULL;
		p = skip_ws(p);
		if (*p++ != ':')
			return NULL;
		p = skip_ws(p);
		if (strcmp(k, key) == 0)
			return p;
		if (*p == '"') {
			if (!(p = json_string(p, NULL, 0)))
				return NULL;
		} else {
			p += strcspn(p, ",}");
		}
		p = skip_ws(p);
		if (*p++ != ',')
			return NULL;
	}
}

bool json_has(const char *line, const char *key)
{
	return json_value(line, key) != NULL;
}

int json_str(const char *line, const char *key, char *out, size_t outlen)
{
	const char *v = json_value(line, key);

	if (!v || *v != '"')
		return -1;
	return json_string(v, out, outlen) ? 0 : -1;
}

int json_num(const char *line, const char *key, double *out)
{
	const char *v = json_value(line, key);
	char *end;

	if (!v || *v == '"')
		return -1;
	*out = strtod(v, &end);
	return end == v ? -1 : 0;
}

/* ---------------------------------------------------------------- HTTP, metrics */

char *harness_http_get(int port, const char *path, int timeout_ms)
{
	int64_t deadline = harness_now_ms() + timeout_ms;
	int fd = tcp_connect("127.0.0.1", port, timeout_ms);
	char req[512];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rl;

	if (fd < 0)
		return NULL;
	rl = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, (size_t)rl) != rl)
		goto fail;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (len + 4097 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (!nb)
				goto fail;
			buf = nb;
		}
		if (poll(&pfd, 1, remaining_ms(deadline)) != 1)
			goto fail;
		n = read(fd, buf + len, cap - len - 1);
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			goto fail;
		len += n > 0 ? (size_t)n : 0;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

double metrics_value(const char *text, const char *series)
{
	size_t sl = strlen(series);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, series, sl) == 0 && p[sl] == ' ')
			return strtod(p + sl + 1, NULL);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* ---------------------------------------------------------------- configs */

const char *harness_config_web(const char *name, int port, const struct harness_cert *crt,
			       const char *global_extra, const char *fe_extra,
			       const char *backends)
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

bool harness_kernel_ktls(void)
{
	static int cached = -1;
	if (cached < 0) {
		const char *argv[] = { "-V", NULL };
		struct run_result r;
		cached = harness_run(&r, HARNESS_TIMEOUT_MS, argv) == 0 && r.out &&
			 strstr(r.out, "kTLS: available") != NULL;
		run_result_finish(&r);
	}
	return cached == 1;
}
