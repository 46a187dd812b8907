/* Moving a connection to a new process (binary upgrade): whether it may move, and its
 * metadata as one line of text each way (conn_export in the old process, conn_import in the
 * new), ending with the TLS 1.3 traffic secrets where the connection follows KeyUpdates in
 * the kernel (so the line holds secrets: its holders wipe it). The sockets travel beside it
 * (SCM_RIGHTS); conn.c hands off and adopts. */
#include "tlsplice/conn.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsplice/ktls.h"
#include "tlsplice/runtime.h"

bool conn_movable(const struct conn *c)
{
	const struct relay *r = &c->relay;
	/* an adopted connection whose server left the configuration stays where it is */
	return c->state == CONN_RELAY && !c->ssl && c->pool && c->server && r->up.splice &&
	       r->down.splice && !r->up.eof && !r->down.eof && !r->up.shut && !r->down.shut &&
	       r->up.in_pipe == 0 && r->down.in_pipe == 0 && !r->up.buf && !r->down.buf;
}

static void hex_out(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	if (!p || n == 0) {
		strcpy(out, "-");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int conn_export(const struct conn *c, char *meta, size_t len)
{
	char sni[2 * 255 + 1], alpn[2 * 255 + 1];
	const char *s = c->sni ? c->sni : "";
	hex_out((const unsigned char *)s, strnlen(s, 255), sni);
	hex_out(c->alpn, c->alpn_len, alpn);
	int n = snprintf(meta, len, "conn %s %s %s %s %s %s %s %llu %llu %lld %ld %llu %llu %u",
			 conn_fe(c)->name, c->pool->cfg->name, c->server->cfg->addr.text,
			 c->tls_version ? c->tls_version : "-", c->cipher ? c->cipher : "-", sni,
			 alpn, (unsigned long long)c->t_accept_us,
			 (unsigned long long)c->t_handshake_us, (long long)c->t_accept_wall.tv_sec,
			 (long)c->t_accept_wall.tv_usec, (unsigned long long)c->relay.up.bytes,
			 (unsigned long long)c->relay.down.bytes, c->handovers + 1);
	if (n <= 0 || (size_t)n + 2 >= len)
		return -1;
	/* last, so that a process that does not know the field ignores it (and the keys) */
	meta[n] = ' ';
	if (!c->relay.tls.keys)
		return snprintf(meta + n + 1, len - (size_t)n - 1, "-") == 1 ? 0 : -1;
	return ktls_keys_export(c->relay.tls.keys, meta + n + 1, len - (size_t)n - 1);
}

/* OpenSSL's version and cipher names are static strings in the process that made the
 * handshake; an adopted connection's come from text: kept once each, for the process's
 * life (a few dozen at most). */
static const char *intern(const char *s)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static char *names[64];
	const char *found = "-";
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < 64; i++) {
		if (!names[i])
			names[i] = strdup(s);
		if (names[i] && strcmp(names[i], s) == 0) {
			found = names[i];
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	return found;
}

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static size_t hex_in(const char *in, unsigned char *out, size_t cap)
{
	size_t n = 0;
	for (; hex_digit(in[0]) >= 0 && hex_digit(in[1]) >= 0 && n < cap; in += 2)
		out[n++] = (unsigned char)(hex_digit(in[0]) * 16 + hex_digit(in[1]));
	return n;
}

/* Finds c's frontend, backend and server by name in the running generation. */
static int adopt_names(struct conn *c, const char *fe, const char *be, const char *srv)
{
	const struct config *cfg = c->rt->cfg;
	size_t i;
	for (i = 0; i < cfg->nfrontends && strcmp(cfg->frontends[i].name, fe) != 0; i++)
		;
	if (i == cfg->nfrontends)
		return -1;
	c->fe_idx = i;
	for (i = 0; i < cfg->nbackends && !c->pool; i++)
		if (strcmp(cfg->backends[i].name, be) == 0)
			c->pool = &c->rt->pools[i];
	for (unsigned k = 0; c->pool && k < c->pool->nservers; k++)
		if (strcmp(c->pool->servers[k].cfg->addr.text, srv) == 0)
			c->server = &c->pool->servers[k];
	return 0;
}

/* The traffic secrets at the end of the line: "-" (or nothing, from an older process) for
 * none; anything else must be ktls_keys_export's text, read in place (no copy to wipe). */
static int import_keys(struct conn *c, const char *rest)
{
	rest += strspn(rest, " ");
	size_t n = strcspn(rest, " ");
	if (n == 0 || (n == 1 && rest[0] == '-'))
		return rest[n] == '\0' ? 0 : -1;
	if (rest[n] != '\0' || !(c->relay.tls.keys = ktls_keys_import(rest, n)))
		return -1;
	return 0;
}

int conn_import(struct conn *c, const char *meta)
{
	char fe[64], be[64], srv[128], ver[16], cipher[64], sni[512], alpn[512];
	unsigned long long acc, hs, in, out;
	long long sec;
	long usec;
	int end = -1;
	if (sscanf(meta,
		   "conn %63s %63s %127s %15s %63s %511s %511s %llu %llu %lld %ld %llu %llu %hu%n",
		   fe, be, srv, ver, cipher, sni, alpn, &acc, &hs, &sec, &usec, &in, &out,
		   &c->handovers, &end) != 14 ||
	    end < 0 || adopt_names(c, fe, be, srv) < 0 || import_keys(c, meta + end) < 0)
		return -1;
	unsigned char raw[256];
	size_t n = hex_in(sni, raw, sizeof(raw) - 1);
	raw[n] = '\0';
	c->sni = n ? strdup((const char *)raw) : NULL;
	n = hex_in(alpn, raw, sizeof(raw));
	const struct cfg_frontend *f = conn_fe(c);
	for (size_t i = 0; n && i < f->alpn_len; i += 1u + f->alpn[i])
		if (f->alpn[i] == n && memcmp(&f->alpn[i + 1], raw, n) == 0) {
			c->alpn = &f->alpn[i + 1];
			c->alpn_len = (unsigned)n;
		}
	c->tls_version = intern(ver);
	c->cipher = intern(cipher);
	c->t_accept_us = acc;
	c->t_handshake_us = hs;
	c->t_accept_wall.tv_sec = (time_t)sec;
	c->t_accept_wall.tv_usec = (suseconds_t)usec;
	c->relay.up.bytes = in;
	c->relay.down.bytes = out;
	return 0;
}
