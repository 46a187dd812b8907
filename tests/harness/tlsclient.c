/* The blocking TLS client with deadlines, and the full-duplex transfer (see harness.h). */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

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
		r = poll(&pfd, 1, harness_remaining_ms(deadline));
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
		harness_log("bad TLS client options");
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
	c->fd = harness_tcp_connect(host, port, o->timeout_ms ? o->timeout_ms : HARNESS_TIMEOUT_MS);
	if (c->fd < 0) {
		harness_log("connect %s:%d: %s", host, port, strerror(errno));
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
		harness_log("TLS handshake with %s:%d: %s", host, port,
			    r == 0 ? "timed out" : c->err);
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
		ssize_t n = tlsc_read(c, dst, room ? room : sizeof(scratch),
				      harness_remaining_ms(deadline));

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
				memcmp(ASN1_STRING_get0_data(g->d.dNSName), name, strlen(name)) ==
					0;
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
		harness_log("transfer: sent %llu received %llu: %s", (unsigned long long)sent,
			    (unsigned long long)t->received, c->err);
	harness_sha_final_hex(md, t->recv_sha);
	EVP_MD_CTX_free(md);
	t->got_close_notify = c->close_notify;
	return rc;
}
