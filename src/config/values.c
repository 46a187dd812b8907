/* Value parsers: text in, a typed value or a reason out. Pure (no loader, no I/O except
 * name resolution in config_parse_addr), so tests and the fuzzer can call them alone. */
#include "tlsplice/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "internal.h"

int config_parse_duration(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	static const struct {
		const char *unit;
		uint64_t mult;
	} units[] = { { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	uint64_t n = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		goto bad;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - d) / 10)
			goto bad;
		n = n * 10 + d;
	}
	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (n > UINT64_MAX / units[i].mult)
			goto bad;
		*ms = n * units[i].mult;
		return 0;
	}
bad:
	snprintf(err, errlen, "bad duration '%s'", s);
	return -1;
}

int config_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "on", "yes", "true" };
	static const char *const no[] = { "off", "no", "false" };

	for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(err, errlen, "bad boolean '%s' (on|off|yes|no|true|false)", s);
	return -1;
}

/* Splits "HOST:PORT" or "[V6]:PORT" into its host and the port text. */
static int addr_split(const char *s, char *host, size_t hostlen, const char **port, bool *v6,
		      char *err, size_t errlen)
{
	const char *hstart = s, *hend, *colon;

	*v6 = s[0] == '[';
	if (*v6) {
		hend = strchr(s, ']');
		if (hend == NULL || hend[1] != ':')
			goto bad;
		hstart = s + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			goto bad;
		hend = colon;
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			snprintf(err, errlen, "bad address '%s' (write IPv6 as [ADDR]:PORT)", s);
			return -1;
		}
	}
	if ((size_t)(hend - hstart) >= hostlen)
		goto bad;
	memcpy(host, hstart, (size_t)(hend - hstart));
	host[hend - hstart] = '\0';
	*port = colon + 1;
	return 0;
bad:
	snprintf(err, errlen, "bad address '%s' (expected HOST:PORT)", s);
	return -1;
}

/* Numeric ports only: a service name would depend on /etc/services. */
static int port_parse(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Resolves host; with several answers IPv4 wins, as local backends mostly listen on 127.0.0.1
 * while "localhost" often resolves to ::1 first. */
static int addr_resolve(const char *host, bool v6, struct sockaddr_storage *ss, socklen_t *len,
			char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *pick;
	int rc;

	hints.ai_family = v6 ? AF_INET6 : AF_UNSPEC;
	hints.ai_flags = v6 ? AI_NUMERICHOST : 0;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	pick = res;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	}
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*len = pick->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void addr_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* "unix:/run/app.sock": a Unix stream socket, for servers; its text is its name in the log
 * and the metrics. The path is absolute: a socket's place does not follow the config file. */
static int addr_unix(const char *s, bool passive, struct cfg_addr *out, char *err, size_t errlen)
{
	struct sockaddr_un *un = (struct sockaddr_un *)&out->ss;
	const char *path = s + 5;
	size_t n = strlen(path);

	if (passive) {
		snprintf(err, errlen, "bad address '%s' (HOST:PORT here; unix: is for servers)", s);
		return -1;
	}
	/* the path is a metrics label and a log field as written: plain printable text only */
	for (const char *p = path; *p; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\') {
			snprintf(err, errlen,
				 "bad address '%s' (a Unix socket path of printable "
				 "characters, no quote or backslash)",
				 s);
			return -1;
		}
	if (path[0] != '/' || n >= sizeof(un->sun_path)) {
		snprintf(err, errlen,
			 "bad address '%s' (unix: and an absolute path of at most %zu "
			 "bytes)",
			 s, sizeof(un->sun_path) - 1);
		return -1;
	}
	memset(&out->ss, 0, sizeof(out->ss));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n + 1);
	out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	snprintf(out->text, sizeof(out->text), "%s", s);
	return 0;
}

int config_parse_addr(const char *s, bool passive, struct cfg_addr *out, char *err, size_t errlen)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = 0;
	char host[256];
	const char *port_text;
	uint16_t port;
	bool v6;

	if (strlen(s) >= sizeof(out->text)) {
		snprintf(err, errlen, "bad address '%.40s...' (too long)", s);
		return -1;
	}
	if (strncmp(s, "unix:", 5) == 0)
		return addr_unix(s, passive, out, err, errlen);
	if (addr_split(s, host, sizeof(host), &port_text, &v6, err, errlen) < 0)
		return -1;
	if (port_parse(port_text, &port) < 0) {
		snprintf(err, errlen, "bad port '%s'", port_text);
		return -1;
	}
	if (!v6 && (host[0] == '\0' || strcmp(host, "*") == 0)) {
		if (!passive) {
			snprintf(err, errlen, "bad address '%s' (a host is required)", s);
			return -1;
		}
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(struct sockaddr_in);
	} else if (addr_resolve(host, v6, &ss, &len, err, errlen) < 0) {
		return -1;
	}
	addr_set_port(&ss, port);
	out->ss = ss;
	out->len = len;
	snprintf(out->text, sizeof(out->text), "%s", s);
	return 0;
}

/* Room a label "NAME:PORT (ADDR)" leaves for NAME:PORT: " (" ADDR ")" and the NUL. */
#define NAME_TEXT_MAX (sizeof(((struct cfg_addr *)0)->text) - INET6_ADDRSTRLEN - 4)

static bool host_is_name(const char *host)
{
	struct in_addr a4;
	bool letter = false;

	if (host[0] == '\0' || inet_pton(AF_INET, host, &a4) == 1)
		return false;
	for (const char *p = host; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
			return false;
		letter |= isalpha((unsigned char)*p) != 0;
	}
	return letter;
}

int config_parse_name(const char *s, struct cfg_addr *out, uint16_t *port, char *err, size_t errlen)
{
	char host[256];
	const char *port_text;
	bool v6;

	if (strncmp(s, "unix:", 5) == 0 || strlen(s) >= sizeof(out->text))
		return 0;
	if (addr_split(s, host, sizeof(host), &port_text, &v6, err, errlen) < 0)
		return -1;
	if (v6 || !host_is_name(host))
		return 0;
	if (port_parse(port_text, port) < 0) {
		snprintf(err, errlen, "bad port '%s'", port_text);
		return -1;
	}
	if (strlen(s) >= NAME_TEXT_MAX) {
		snprintf(err, errlen,
			 "bad address '%.40s...' (a name and port of at most %zu characters)", s,
			 NAME_TEXT_MAX - 1);
		return -1;
	}
	memset(&out->ss, 0, sizeof(out->ss));
	out->len = 0;
	snprintf(out->text, sizeof(out->text), "%s", s);
	return 1;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return tolower((unsigned char)c) - 'a' + 10;
}

/* Decodes the escape whose backslash *pp points at; leaves *pp on its last character. */
static int unescape_one(const char **pp, char *err, size_t errlen)
{
	static const char from[] = "rnt\\\"'0";
	static const char to[] = "\r\n\t\\\"'\0";
	const char *p = *pp + 1;
	const char *hit;

	if (*p == 'x' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
		*pp = p + 2;
		return hex_value(p[1]) * 16 + hex_value(p[2]);
	}
	if (*p != '\0' && (hit = strchr(from, *p)) != NULL) {
		*pp = p;
		return (unsigned char)to[hit - from];
	}
	if (*p == '\0')
		snprintf(err, errlen, "bad escape: '\\' at the end");
	else if (*p == 'x')
		snprintf(err, errlen, "bad escape '\\x%.2s' (\\xHH takes two hex digits)", p + 1);
	else
		snprintf(err, errlen, "bad escape '\\%c'", *p);
	return -1;
}

int config_unescape(const char *s, char **out, size_t *outlen, char *err, size_t errlen)
{
	char *buf = malloc(strlen(s) + 1);
	size_t n = 0;

	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (const char *p = s; *p; p++) {
		int c = *p;

		if (c == '\\' && (c = unescape_one(&p, err, errlen)) < 0) {
			free(buf);
			return -1;
		}
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

/* "*.example.com" needs at least one whole label in front; anything else matches exactly. */
bool config_sni_match(const char *pattern, const char *name)
{
	size_t slen, nlen, plen;
	const char *suffix;

	if (pattern == NULL || name == NULL)
		return false;
	if (pattern[0] != '*' || pattern[1] != '.')
		return strcasecmp(pattern, name) == 0;
	suffix = pattern + 1;
	slen = strlen(suffix);
	nlen = strlen(name);
	if (nlen <= slen || strcasecmp(name + nlen - slen, suffix) != 0)
		return false;
	plen = nlen - slen;
	if (name[0] == '.' || name[plen - 1] == '.')
		return false;
	for (size_t i = 1; i < plen; i++)
		if (name[i] == '.' && name[i - 1] == '.')
			return false;
	return true;
}

int config_route(const struct cfg_frontend *fe, const char *sni)
{
	if (sni != NULL) {
		for (size_t i = 0; i < fe->nroutes; i++)
			if (config_sni_match(fe->routes[i].pattern, sni))
				return fe->routes[i].backend;
	}
	return fe->backend;
}

/* Plain non-negative decimal: no sign, no spaces, no hex. */
int values_parse_long(const char *s, long *out)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* Splits buf (a copy of a value) at whitespace; the word count, or -1 past max words. */
int values_split_words(char *buf, char **words, int max)
{
	char *save = NULL;
	int n = 0;

	for (char *tok = strtok_r(buf, " \t", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return -1;
		words[n++] = tok;
	}
	return n;
}

/* Hostname characters, non-empty labels of at most 63, at most 253 in all. */
static bool hostname_ok(const char *s)
{
	size_t label = 0, len = strlen(s);

	if (len == 0 || len > 253)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

/* A route's pattern: a host name, or "*." and a host name. */
bool values_sni_pattern_ok(const char *p)
{
	return p[0] == '*' ? p[1] == '.' && hostname_ok(p + 2) : hostname_ok(p);
}

/* Levenshtein distance of two short words; anything longer than VALUES_WORD_MAX counts as
 * far from everything (a key line is bounded, but a suggestion is for typos, not essays). */
int values_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[VALUES_WORD_MAX + 1];

	if (la > VALUES_WORD_MAX || lb > VALUES_WORD_MAX)
		return INT_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];

		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int best = diag + (tolower((unsigned char)a[i - 1]) !=
					   tolower((unsigned char)b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Splits buf (a copy of a value) at commas, trimming each item; the item count, or -1 for an
 * empty item or past max items. */
int values_split_list(char *buf, char **items, int max)
{
	int n = 0;

	for (char *p = buf;;) {
		char *end = strchr(p, ',');
		size_t len;

		if (end != NULL)
			*end = '\0';
		while (isspace((unsigned char)*p))
			p++;
		len = strlen(p);
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			p[--len] = '\0';
		if (len == 0 || n == max)
			return -1;
		items[n++] = p;
		if (end == NULL)
			return n;
		p = end + 1;
	}
}

/* A comma list of names (each one of names[], NULL-terminated) as a bit set, bit i for
 * names[i]; -1 with the first unknown or empty item in *bad (NULL: an empty item). */
int values_parse_flags(char *buf, const char *const *names, unsigned *out, const char **bad)
{
	char *items[32];
	int n = values_split_list(buf, items, 32);

	*out = 0;
	*bad = NULL;
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		unsigned bit = 0;

		for (unsigned k = 0; names[k] != NULL && bit == 0; k++)
			if (strcasecmp(items[i], names[k]) == 0)
				bit = 1u << k;
		if (bit == 0) {
			*bad = items[i];
			return -1;
		}
		*out |= bit;
	}
	return 0;
}
