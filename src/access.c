/* One JSON object per connection, per the contract; fields that do not apply are "" or 0. */
#include "tlsplice/access.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tlsplice/ktls.h"
#include "tlsplice/log.h"
#include "tlsplice/net.h"
#include "tlsplice/pool.h"
#include "tlsplice/server.h"

size_t access_json_str(char *out, size_t len, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	if (len + 2 >= cap)
		return len;
	out[len++] = '"';
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (len + 8 >= cap)
			break;
		if (*p == '"' || *p == '\\') {
			out[len++] = '\\';
			out[len++] = (char)*p;
		} else if (*p < 0x20 || *p >= 0x7f) {
			/* control and non-ASCII bytes (a client chooses the SNI) stay valid JSON */
			memcpy(out + len, "\\u00", 4);
			out[len + 4] = hex[*p >> 4];
			out[len + 5] = hex[*p & 15];
			len += 6;
		} else {
			out[len++] = (char)*p;
		}
	}
	out[len++] = '"';
	return len;
}

static size_t put(char *out, size_t len, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t len, size_t cap, const char *fmt, ...)
{
	if (len >= cap)
		return len;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out + len, cap - len, fmt, ap);
	va_end(ap);
	return n < 0 ? len : (len + (size_t)n < cap ? len + (size_t)n : cap - 1);
}

static size_t put_field(char *out, size_t len, size_t cap, const char *name, const char *val)
{
	len = put(out, len, cap, ",\"%s\":", name);
	return access_json_str(out, len, cap, val);
}

static const char *ktls_name(int k)
{
	static const char *const names[] = { "none", "tx", "rx", "both" };
	return names[k & (KTLS_TX | KTLS_RX)];
}

/* "HOST:PORT,HOST:PORT" of the servers a retried connection tried, in the backend's order;
 * "" without a retry. */
static void servers_tried(const struct access_record *a, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	if (a->attempts < 2 || a->pool == NULL || a->tried == NULL)
		return;
	for (unsigned i = 0; i < a->pool->nservers; i++) {
		const struct server *s = &a->pool->servers[i];

		if (pool_tried_has(a->tried, s))
			n = put(out, n, cap, "%s%s", n ? "," : "", s->cfg->addr.text);
	}
}

void access_log_conn(const struct access_record *a)
{
	if (!access_log_enabled())
		return;
	char line[4096], ts[40], client[128];
	struct tm tm;
	gmtime_r(&a->accepted.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(a->accepted.tv_usec / 1000));
	net_addr_text((const struct sockaddr *)a->peer, client, sizeof(client));
	char alpn_s[256];
	snprintf(alpn_s, sizeof(alpn_s), "%.*s", (int)a->alpn_len,
		 a->alpn ? (const char *)a->alpn : "");
	size_t len = put(line, 0, sizeof(line), "{\"ts\":\"%s\"", ts);
	len = put_field(line, len, sizeof(line), "frontend", a->frontend);
	len = put_field(line, len, sizeof(line), "client", client);
	len = put_field(line, len, sizeof(line), "backend", a->backend);
	len = put_field(line, len, sizeof(line), "server", a->server);
	len = put_field(line, len, sizeof(line), "sni", a->sni);
	len = put_field(line, len, sizeof(line), "alpn", alpn_s);
	len = put_field(line, len, sizeof(line), "tls_version", a->tls_version);
	len = put_field(line, len, sizeof(line), "cipher", a->cipher);
	len = put_field(line, len, sizeof(line), "ktls", ktls_name(a->ktls));
	len = put_field(line, len, sizeof(line), "relay", a->relay);
	len = put(
		line, len, sizeof(line),
		",\"bytes_in\":%llu,\"bytes_out\":%llu,\"handshake_ms\":%.3f,\"duration_ms\":%.3f",
		(unsigned long long)a->bytes_in, (unsigned long long)a->bytes_out,
		(double)a->handshake_us / 1000.0, (double)a->duration_us / 1000.0);
	len = put_field(line, len, sizeof(line), "close", close_reason_name(a->close));
	len = put_field(line, len, sizeof(line), "error", a->error);
	char tried[1024];
	servers_tried(a, tried, sizeof(tried));
	len = put(line, len, sizeof(line), ",\"attempts\":%d", a->attempts);
	len = put_field(line, len, sizeof(line), "servers_tried", tried);
	len = put(line, len, sizeof(line), ",\"handovers\":%u", a->handovers);
	len = put(line, len, sizeof(line), ",\"key_updates\":%u", a->key_updates);
	if (len + 2 >= sizeof(line))
		len = sizeof(line) - 3;
	line[len++] = '}';
	line[len++] = '\n';
	access_log_write(line, len);
}
