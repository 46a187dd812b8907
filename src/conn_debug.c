/* A connection's events at log level debug (declared in conn.h): formatting only, and only
 * once the rate limit has let a line through. */
#include "tlsplice/conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tlsplice/clock.h"
#include "tlsplice/log.h"
#include "tlsplice/ktls.h"
#include "tlsplice/net.h"
#include "tlsplice/runtime.h"

/* ktls_enable's reasons, from its call to the handshake line of the same connection (both
 * within one handshake_done, on this thread). */
static _Thread_local struct {
	const struct conn *c;
	char why[192];
} note;

/* One line about c, if the rate limit lets it through. */
static void conn_line(const struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void conn_line(const struct conn *c, const char *fmt, ...)
{
	char peer[64], text[768];
	va_list ap;

	if (!log_debug_admit())
		return;
	net_addr_text((const struct sockaddr *)&c->peer, peer, sizeof(peer));
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_msg(LOG_DEBUG, __FILE__, __LINE__, "frontend %s client %s: %s",
		c->rt->cfg->frontends[c->fe_idx].name, peer, text);
}

static bool why_is_dir(const char *seg, int dir)
{
	if (dir == KTLS_TX)
		return strncmp(seg, "tx: ", 4) == 0;
	return strncmp(seg, "rx: ", 4) == 0 || strncmp(seg, "tls13-rx: ", 10) == 0;
}

bool conn_debug_why_for(const char *why, int dir, char *out, size_t outlen)
{
	size_t used = 0;

	out[0] = '\0';
	for (const char *seg = why; seg && *seg;) {
		const char *end = strstr(seg, "; ");
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (why_is_dir(seg, dir) && used < outlen)
			used += (size_t)snprintf(out + used, outlen - used, "%s%.*s",
						 used ? "; " : "", (int)len, seg);
		seg = end ? end + 2 : NULL;
	}
	return out[0] != '\0';
}

/* The path one direction takes and why: dir is KTLS_RX for client->server (the kernel
 * decrypts what the client sends), KTLS_TX for server->client. */
static void path_line(const struct conn *c, int dir, bool spliced, const char *why)
{
	const char *name = dir == KTLS_RX ? "client->server" : "server->client";
	const char *kdir = dir == KTLS_RX ? "receive" : "send";
	char seg[192];

	if (spliced)
		conn_line(c, "%s: splice (kernel TLS %s)", name, kdir);
	else if (c->ktls & dir)
		conn_line(c, "%s: userspace over kernel TLS %s (splice = off)", name, kdir);
	else if (c->rt->cfg->ktls == KTLS_OFF)
		conn_line(c, "%s: userspace (ktls = off)", name);
	else if (!(ktls_probe() & dir))
		conn_line(c, "%s: userspace (%s)", name, ktls_probe_describe());
	else if (conn_debug_why_for(why, dir, seg, sizeof(seg)))
		conn_line(c, "%s: userspace (%s)", name, seg);
	else
		conn_line(c, "%s: userspace (kernel TLS %s refused)", name, kdir);
}

static void handshake_lines(const struct conn *c)
{
	const char *why = note.c == c ? note.why : "";

	conn_line(c, "handshake done in %.1f ms: %s %s, sni %s, alpn %.*s",
		  (double)(c->t_handshake_us - c->t_accept_us) / 1000.0,
		  c->tls_version ? c->tls_version : "?", c->cipher ? c->cipher : "?",
		  c->sni ? c->sni : "-", c->alpn ? (int)c->alpn_len : 1,
		  c->alpn ? (const char *)c->alpn : "-");
	path_line(c, KTLS_RX, c->relay.up.splice, why);
	path_line(c, KTLS_TX, c->relay.down.splice, why);
	note.c = NULL;
}

static void close_lines(const struct conn *c)
{
	double ms = (double)(clock_mono_us() - c->t_accept_us) / 1000.0;
	const char *reason = close_reason_name(c->close.reason);
	const char *err = c->close.error;

	if (c->t_handshake_us == 0)
		conn_line(c, "handshake failed after %.1f ms: %s", ms, err[0] ? err : reason);
	conn_line(c, "closed: %s%s%s%s, %llu bytes in, %llu bytes out, %.1f ms, relay %s", reason,
		  err[0] ? " (" : "", err, err[0] ? ")" : "", (unsigned long long)c->relay.up.bytes,
		  (unsigned long long)c->relay.down.bytes, ms,
		  c->relayed ? relay_mode_name(&c->relay) : "none");
}

void conn_debug_event(const struct conn *c, enum conn_debug_event ev)
{
	switch (ev) {
	case CONN_DEBUG_ACCEPT:
		conn_line(c, "accepted");
		break;
	case CONN_DEBUG_HANDSHAKE:
		handshake_lines(c);
		break;
	case CONN_DEBUG_SERVER:
		conn_line(c, "backend %s: server %s chosen (attempt %d of at most %d)",
			  c->pool->cfg->name, c->server->cfg->addr.text, c->attempts,
			  c->pool->cfg->retries + 1);
		break;
	case CONN_DEBUG_CONNECTED:
		conn_line(c, "connected to server %s (attempt %d)", c->server->cfg->addr.text,
			  c->attempts);
		break;
	case CONN_DEBUG_CLOSE:
		close_lines(c);
		break;
	}
}

void conn_debug_ktls_note(const struct conn *c, const char *why)
{
	note.c = c;
	snprintf(note.why, sizeof(note.why), "%s", why);
}
