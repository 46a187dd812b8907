/* Configuration: one table of every setting drives an inih parse into an immutable,
 * reference-counted tree. Every problem is reported, each against the line it comes from. */
#include "tlsplice/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/tls1.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlsplice/cpus.h"

#define NO_FIELD SIZE_MAX
#define ERRLEN 512
#define MAX_WORKERS 1024
#define RD_NONE (-2) /* no section header yet */
#define RD_SKIP (-1) /* a header that was reported: its keys are skipped */

enum sect_kind { SECT_GLOBAL, SECT_FRONTEND, SECT_BACKEND };
enum value_kind { V_DURATION, V_BOOL, V_INT, V_ENUM, V_STRING, V_PATH, V_ADDR, V_CUSTOM };

struct loader;
struct setting;
/* Parses val into the section struct at base; -1 with the reason in err. */
typedef int set_fn(struct loader *ld, const struct setting *st, void *base, const char *val,
		   char *err, size_t errlen);

struct enum_name {
	const char *name;
	int value;
};

/* One row per key of the contract. Defaults are value text run through the same parser. */
struct setting {
	enum sect_kind sect;
	const char *name;
	enum value_kind kind;
	size_t off;  /* field in the section's struct; NO_FIELD for keys that only validate */
	size_t size; /* sizeof the field: ints and enums are stored by size */
	const char *def;
	bool repeat;
	bool required;
	long lo, hi;    /* V_INT range; V_DURATION: lo is the minimum in ms */
	const struct enum_name *names;
	const char *hint;  /* V_ENUM: replaces the list of names after a bad value */
	size_t line_off;   /* int field recording the key's line; 0: none (offset 0 is a name) */
	int (*check)(const char *val, char *err, size_t errlen); /* V_STRING: extra validation */
	set_fn *custom;
};

/* One section header as parsed. */
struct psect {
	enum sect_kind kind;
	size_t idx;  /* into frontends / backends */
	int line;
	char *label; /* "frontend web", for messages */
	int *seen;   /* per setting: line it was first set on, 0 if never */
	bool cert_bad; /* the last cert line failed: its key lines have nothing to attach to */
};

struct loader {
	struct config *cfg;
	const char *file;
	char *text;
	size_t len, pos;
	int line; /* line most recently handed to inih; the handler reports against it */
	char *key, *value; /* that line's key and value, when it is a key line */
	char rd_label[128]; /* section the reader is in, as written; "" before the first */
	int rd_sect;        /* index into sects of that section, or RD_NONE / RD_SKIP */
	struct psect *cur;  /* section of the key being handled */
	struct psect *sects;
	size_t nsects;
	struct errlist errs; /* sorted by line before they reach the caller */
	bool oom;
};

static set_fn set_workers, set_access_log, set_listen, set_cert, set_key, set_route, set_alpn,
	set_server, set_check_send, set_check_expect;
static int check_user(const char *val, char *err, size_t errlen);
static int check_group(const char *val, char *err, size_t errlen);

static const struct enum_name log_levels[] = {
	{ "error", LOG_ERROR }, { "warn", LOG_WARN }, { "info", LOG_INFO }, { "debug", LOG_DEBUG },
	{ NULL, 0 },
};
static const struct enum_name ktls_modes[] = {
	{ "auto", KTLS_AUTO }, { "off", KTLS_OFF }, { "on", KTLS_ON }, { NULL, 0 },
};
static const struct enum_name tls_versions[] = {
	{ "TLSv1.2", TLS1_2_VERSION }, { "TLSv1.3", TLS1_3_VERSION }, { NULL, 0 },
};
static const struct enum_name proxy_protos[] = {
	{ "off", PROXY_OFF }, { "v1", PROXY_V1 }, { "v2", PROXY_V2 }, { NULL, 0 },
};
static const struct enum_name balances[] = { { "roundrobin", 0 }, { NULL, 0 } };
static const struct enum_name check_kinds[] = {
	{ "tcp", CHECK_TCP }, { "send-expect", CHECK_SEND_EXPECT }, { "none", CHECK_NONE },
	{ NULL, 0 },
};

#define FIELD(type, f) .off = offsetof(type, f), .size = sizeof(((type *)0)->f)
#define G(f) .sect = SECT_GLOBAL, FIELD(struct config, f)
#define F(f) .sect = SECT_FRONTEND, FIELD(struct cfg_frontend, f)
#define B(f) .sect = SECT_BACKEND, FIELD(struct cfg_backend, f)
#define F_LINE(f) .line_off = offsetof(struct cfg_frontend, f)
#define TLS_HINT "TLS 1.2+ only: TLSv1.2 or TLSv1.3"

static const struct setting settings[] = {
	{ G(workers), .name = "workers", .kind = V_CUSTOM, .def = "auto", .custom = set_workers },
	{ G(max_connections), .name = "max_connections", .kind = V_INT, .def = "10000", .lo = 1,
	  .hi = 10000000 },
	{ G(log_level), .name = "log_level", .kind = V_ENUM, .def = "info", .names = log_levels },
	{ G(access_log), .name = "access_log", .kind = V_CUSTOM, .def = "stdout",
	  .custom = set_access_log },
	{ G(ktls), .name = "ktls", .kind = V_ENUM, .def = "auto", .names = ktls_modes },
	{ G(splice), .name = "splice", .kind = V_BOOL, .def = "on" },
	{ G(watch), .name = "watch", .kind = V_BOOL, .def = "on" },
	{ G(shutdown_timeout_ms), .name = "shutdown_timeout", .kind = V_DURATION, .def = "30s" },
	{ G(metrics), .name = "metrics", .kind = V_ADDR },
	{ G(user), .name = "user", .kind = V_STRING, .check = check_user },
	{ G(group), .name = "group", .kind = V_STRING, .check = check_group },

	{ F(listens), .name = "listen", .kind = V_CUSTOM, .repeat = true, .required = true,
	  .custom = set_listen },
	{ F(certs), .name = "cert", .kind = V_CUSTOM, .repeat = true, .required = true,
	  .custom = set_cert },
	{ F(certs), .name = "key", .kind = V_CUSTOM, .repeat = true, .custom = set_key },
	{ F(backend_name), .name = "backend", .kind = V_STRING, .required = true,
	  F_LINE(backend_line) },
	{ F(routes), .name = "route", .kind = V_CUSTOM, .repeat = true, .custom = set_route },
	{ F(tls_min_version), .name = "tls_min_version", .kind = V_ENUM, .def = "TLSv1.2",
	  .names = tls_versions, .hint = TLS_HINT },
	{ F(tls_max_version), .name = "tls_max_version", .kind = V_ENUM, .def = "TLSv1.3",
	  .names = tls_versions, .hint = TLS_HINT },
	{ F(ciphers), .name = "ciphers", .kind = V_STRING, F_LINE(ciphers_line) },
	{ F(ciphersuites), .name = "ciphersuites", .kind = V_STRING, F_LINE(ciphersuites_line) },
	{ F(alpn), .name = "alpn", .kind = V_CUSTOM, .custom = set_alpn },
	{ F(proxy_protocol), .name = "proxy_protocol", .kind = V_ENUM, .def = "off",
	  .names = proxy_protos },
	{ F(handshake_timeout_ms), .name = "handshake_timeout", .kind = V_DURATION, .def = "10s",
	  .lo = 1 },
	{ F(idle_timeout_ms), .name = "idle_timeout", .kind = V_DURATION, .def = "5m" },
	{ F(client_ca), .name = "client_ca", .kind = V_PATH, F_LINE(client_ca_line) },
	{ F(session_tickets), .name = "session_tickets", .kind = V_BOOL, .def = "on" },
	{ F(ticket_keys), .name = "ticket_keys", .kind = V_PATH, F_LINE(ticket_keys_line) },

	{ B(servers), .name = "server", .kind = V_CUSTOM, .repeat = true, .required = true,
	  .custom = set_server },
	{ .sect = SECT_BACKEND, .off = NO_FIELD, .name = "balance", .kind = V_ENUM,
	  .def = "roundrobin", .names = balances },
	{ B(connect_timeout_ms), .name = "connect_timeout", .kind = V_DURATION, .def = "3s",
	  .lo = 1 },
	{ B(retries), .name = "retries", .kind = V_INT, .def = "2", .lo = 0, .hi = 100 },
	{ B(check), .name = "check", .kind = V_ENUM, .def = "tcp", .names = check_kinds },
	{ B(check_send), .name = "check_send", .kind = V_CUSTOM, .custom = set_check_send },
	{ B(check_expect), .name = "check_expect", .kind = V_CUSTOM, .custom = set_check_expect },
	{ B(check_interval_ms), .name = "check_interval", .kind = V_DURATION, .def = "2s",
	  .lo = 1 },
	{ B(check_timeout_ms), .name = "check_timeout", .kind = V_DURATION, .def = "1s", .lo = 1 },
	{ B(check_rise), .name = "check_rise", .kind = V_INT, .def = "2", .lo = 1, .hi = 1000 },
	{ B(check_fall), .name = "check_fall", .kind = V_INT, .def = "3", .lo = 1, .hi = 1000 },
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Ints and enums are stored through memcpy by field size; enums must be int-sized for that. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(enum proxy_proto) == sizeof(int), "enum fields are stored as int");

/* ---- value parsers ---- */

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

/* ---- loader bookkeeping ---- */

/* Errors keep their line (errlist stores it) so they can be handed over in file order. */
static void ld_error(struct loader *ld, int line, const char *section, const char *key,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void ld_error(struct loader *ld, int line, const char *section, const char *key,
		     const char *fmt, ...)
{
	char reason[ERRLEN + 128];
	size_t before = ld->errs.n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	errlist_add(&ld->errs, ld->file, line, section, key, "%s", reason);
	if (ld->errs.n == before)
		ld->oom = true;
}

static char *ld_strdup(struct loader *ld, const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		ld->oom = true;
	return p;
}

/* Grows arr (n elements) by one zeroed element; NULL (arr untouched) when memory runs out. */
static void *ld_grow(struct loader *ld, void *arr, size_t n, size_t size)
{
	char *grown = realloc(arr, (n + 1) * size);

	if (grown == NULL) {
		ld->oom = true;
		return NULL;
	}
	memset(grown + n * size, 0, size);
	return grown;
}

static int oom_reason(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Relative paths resolve against the config file's folder, not the working directory. */
static char *path_resolve(struct loader *ld, const char *val)
{
	char *path;

	if (val[0] == '/')
		return ld_strdup(ld, val);
	if (asprintf(&path, "%s/%s", ld->cfg->dir, val) < 0) {
		ld->oom = true;
		return NULL;
	}
	return path;
}

/* Opening is the honest readability test (access() answers for the real uid, and root passes);
 * only a regular file of bounded size is opened at all, so a FIFO or /dev/zero fails here. */
static int path_check(const char *path, const char *shown, char *err, size_t errlen)
{
	char why[160];

	if (config_file_check(path, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", shown, why);
		return -1;
	}
	return 0;
}

/* Resolved, readable path of a file the config names; NULL with a reason otherwise. */
static char *path_load(struct loader *ld, const char *val, char *err, size_t errlen)
{
	char *path = path_resolve(ld, val);

	if (path == NULL) {
		oom_reason(err, errlen);
		return NULL;
	}
	if (path_check(path, val, err, errlen) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

/* Splits a copy of val at whitespace; returns the word count, or -1 past max words. */
static int words_split(char *buf, char **words, int max)
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

/* A value in double quotes keeps its outer spaces; the quotes themselves are not part of it. */
static char *unquote(struct loader *ld, const char *val)
{
	size_t len = strlen(val);
	char *s;

	if (len < 2 || val[0] != '"' || val[len - 1] != '"')
		return ld_strdup(ld, val);
	s = strndup(val + 1, len - 2);
	if (s == NULL)
		ld->oom = true;
	return s;
}

/* ---- generic setters, one per value kind ---- */

static void store_int(void *field, size_t size, long v)
{
	if (size == sizeof(long)) {
		memcpy(field, &v, sizeof(v));
	} else {
		int i = (int)v;

		memcpy(field, &i, sizeof(i));
	}
}

/* Plain non-negative decimal: no sign, no spaces, no hex. */
static int long_parse(const char *s, long *out)
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

static int set_duration(const struct setting *st, char *field, const char *val, char *err,
			size_t errlen)
{
	uint64_t ms;

	if (config_parse_duration(val, &ms, err, errlen) < 0)
		return -1;
	if (ms < (uint64_t)st->lo) {
		snprintf(err, errlen, "bad duration '%s' (must be greater than 0)", val);
		return -1;
	}
	memcpy(field, &ms, sizeof(ms));
	return 0;
}

static int set_int(const struct setting *st, char *field, const char *val, char *err,
		   size_t errlen)
{
	long v;

	if (long_parse(val, &v) < 0 || v < st->lo || v > st->hi) {
		snprintf(err, errlen, "bad value '%s' (%ld..%ld)", val, st->lo, st->hi);
		return -1;
	}
	store_int(field, st->size, v);
	return 0;
}

static int set_enum(const struct setting *st, char *field, const char *val, char *err,
		    size_t errlen)
{
	char names[128] = "";

	for (const struct enum_name *e = st->names; e->name != NULL; e++) {
		if (strcasecmp(e->name, val) == 0) {
			if (field != NULL)
				store_int(field, st->size, e->value);
			return 0;
		}
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			 e == st->names ? "" : ", ", e->name);
	}
	snprintf(err, errlen, "bad value '%s' (%s)", val, st->hint ? st->hint : names);
	return -1;
}

static int set_string(struct loader *ld, const struct setting *st, char *field, const char *val,
		      char *err, size_t errlen)
{
	char *s;

	if (st->check != NULL && st->check(val, err, errlen) < 0)
		return -1;
	s = ld_strdup(ld, val);
	if (s == NULL)
		return oom_reason(err, errlen);
	free(*(char **)field);
	*(char **)field = s;
	return 0;
}

static int set_path(struct loader *ld, char *field, const char *val, char *err, size_t errlen)
{
	char *path = path_load(ld, val, err, errlen);

	if (path == NULL)
		return -1;
	free(*(char **)field);
	*(char **)field = path;
	return 0;
}

/* Stores val into the field st describes; on failure the reason is in err. */
static int setting_apply(struct loader *ld, const struct setting *st, void *base, const char *val,
			 char *err, size_t errlen)
{
	char *field = st->off == NO_FIELD ? NULL : (char *)base + st->off;

	switch (st->kind) {
	case V_DURATION:
		return set_duration(st, field, val, err, errlen);
	case V_BOOL:
		return config_parse_bool(val, (bool *)field, err, errlen);
	case V_INT:
		return set_int(st, field, val, err, errlen);
	case V_ENUM:
		return set_enum(st, field, val, err, errlen);
	case V_STRING:
		return set_string(ld, st, field, val, err, errlen);
	case V_PATH:
		return set_path(ld, field, val, err, errlen);
	case V_ADDR:
		return config_parse_addr(val, true, (struct cfg_addr *)field, err, errlen);
	case V_CUSTOM:
		return st->custom(ld, st, base, val, err, errlen);
	}
	return -1;
}

/* Runs every default of one section kind through its parser, as if the file said it. */
static void defaults_apply(struct loader *ld, enum sect_kind kind, void *base)
{
	char err[ERRLEN];

	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *st = &settings[i];

		if (st->sect != kind || st->def == NULL)
			continue;
		if (setting_apply(ld, st, base, st->def, err, sizeof(err)) < 0)
			ld_error(ld, 0, NULL, st->name, "bad default: %s", err);
	}
}

/* ---- custom setters ---- */

static int set_workers(struct loader *ld, const struct setting *st, void *base, const char *val,
		       char *err, size_t errlen)
{
	long v;

	struct config *cfg = base;
	cfg->workers_auto[0] = '\0';
	if (strcasecmp(val, "auto") == 0) {
		v = cpus_available(cfg->workers_auto, sizeof(cfg->workers_auto));
		v = v > MAX_WORKERS ? MAX_WORKERS : v;
	} else if (long_parse(val, &v) < 0 || v < 1 || v > MAX_WORKERS) {
		snprintf(err, errlen, "bad value '%s' (auto or 1..%d)", val, MAX_WORKERS);
		return -1;
	}
	cfg->workers = (int)v;
	return 0;
}

static int set_access_log(struct loader *ld, const struct setting *st, void *base,
			  const char *val, char *err, size_t errlen)
{
	static const char *const streams[] = { "stdout", "stderr", "off" };
	struct config *cfg = base;
	char *s = NULL;

	for (size_t i = 0; i < ARRAY_LEN(streams) && s == NULL; i++)
		if (strcasecmp(val, streams[i]) == 0)
			s = ld_strdup(ld, streams[i]);
	if (s == NULL && !ld->oom)
		s = path_resolve(ld, val);
	if (s == NULL)
		return oom_reason(err, errlen);
	free(cfg->access_log);
	cfg->access_log = s;
	return 0;
}

static int check_user(const char *val, char *err, size_t errlen)
{
	if (getpwnam(val) == NULL) {
		snprintf(err, errlen, "unknown user '%s'", val);
		return -1;
	}
	return 0;
}

static int check_group(const char *val, char *err, size_t errlen)
{
	if (getgrnam(val) == NULL) {
		snprintf(err, errlen, "unknown group '%s'", val);
		return -1;
	}
	return 0;
}

static int set_listen(struct loader *ld, const struct setting *st, void *base, const char *val,
		      char *err, size_t errlen)
{
	struct cfg_frontend *fe = base;
	struct cfg_addr addr = { .line = ld->line };
	struct cfg_addr *grown;

	if (config_parse_addr(val, true, &addr, err, errlen) < 0)
		return -1;
	grown = ld_grow(ld, fe->listens, fe->nlistens, sizeof(*grown));
	if (grown == NULL)
		return oom_reason(err, errlen);
	fe->listens = grown;
	fe->listens[fe->nlistens++] = addr;
	return 0;
}

static int set_cert(struct loader *ld, const struct setting *st, void *base, const char *val,
		    char *err, size_t errlen)
{
	struct cfg_frontend *fe = base;
	struct cfg_cert *grown;
	char *path;

	ld->cur->cert_bad = true;
	path = path_load(ld, val, err, errlen);
	if (path == NULL)
		return -1;
	grown = ld_grow(ld, fe->certs, fe->ncerts, sizeof(*grown));
	if (grown == NULL) {
		free(path);
		return oom_reason(err, errlen);
	}
	fe->certs = grown;
	fe->certs[fe->ncerts].cert_path = path;
	fe->certs[fe->ncerts].line = ld->line;
	fe->ncerts++;
	ld->cur->cert_bad = false;
	return 0;
}

/* A key belongs to the cert line before it; after a cert that failed, only its path is checked. */
static int set_key(struct loader *ld, const struct setting *st, void *base, const char *val,
		   char *err, size_t errlen)
{
	struct cfg_frontend *fe = base;
	struct cfg_cert *c = fe->ncerts ? &fe->certs[fe->ncerts - 1] : NULL;
	char *path;

	if (!ld->cur->cert_bad && c == NULL) {
		snprintf(err, errlen, "no cert line before it (a key belongs to the cert above it)");
		return -1;
	}
	if (!ld->cur->cert_bad && c->key_line != 0) {
		snprintf(err, errlen, "the cert at line %d already has a key (line %d)", c->line,
			 c->key_line);
		return -1;
	}
	path = path_load(ld, val, err, errlen);
	if (path == NULL) {
		if (c && !ld->cur->cert_bad) {
			c->key_line = ld->line;
			c->bad = true; /* reported here; nothing to load later */
		}
		return -1;
	}
	if (ld->cur->cert_bad) {
		free(path);
		return 0;
	}
	c->key_path = path;
	c->key_line = ld->line;
	return 0;
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

static int route_add(struct loader *ld, struct cfg_frontend *fe, const char *pattern,
		     const char *backend, char *err, size_t errlen)
{
	struct cfg_route r = { .backend = -1, .line = ld->line };
	struct cfg_route *grown;

	r.pattern = ld_strdup(ld, pattern);
	r.backend_name = ld_strdup(ld, backend);
	grown = r.pattern && r.backend_name ? ld_grow(ld, fe->routes, fe->nroutes, sizeof(r))
					    : NULL;
	if (grown == NULL) {
		free(r.pattern);
		free(r.backend_name);
		return oom_reason(err, errlen);
	}
	for (char *p = r.pattern; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	fe->routes = grown;
	fe->routes[fe->nroutes++] = r;
	return 0;
}

static int set_route(struct loader *ld, const struct setting *st, void *base, const char *val,
		     char *err, size_t errlen)
{
	char *buf = ld_strdup(ld, val);
	char *w[2];
	int n, rc = -1;

	if (buf == NULL)
		return oom_reason(err, errlen);
	n = words_split(buf, w, 2);
	if (n != 2)
		snprintf(err, errlen, "expected 'SNI-PATTERN BACKEND', got '%s'", val);
	else if (!(w[0][0] == '*' ? w[0][1] == '.' && hostname_ok(w[0] + 2) : hostname_ok(w[0])))
		snprintf(err, errlen, "bad pattern '%s' (a host name or *.domain)", w[0]);
	else
		rc = route_add(ld, base, w[0], w[1], err, errlen);
	free(buf);
	return rc;
}

/* "h2,http/1.1" becomes the length-prefixed wire list OpenSSL's ALPN callback works on. */
static int set_alpn(struct loader *ld, const struct setting *st, void *base, const char *val,
		    char *err, size_t errlen)
{
	struct cfg_frontend *fe = base;
	unsigned char *wire = malloc(strlen(val) + 1);
	size_t n = 0;
	const char *p = val;

	if (wire == NULL)
		return oom_reason(err, errlen);
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && isspace((unsigned char)*p))
			p++, len--;
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len < 1 || len > 255) {
			snprintf(err, errlen, "bad alpn '%s' (each protocol 1..255 bytes)", val);
			free(wire);
			return -1;
		}
		wire[n++] = (unsigned char)len;
		memcpy(wire + n, p, len);
		n += len;
		if (end == NULL)
			break;
		p = end + 1;
	}
	free(fe->alpn);
	fe->alpn = wire;
	fe->alpn_len = n;
	return 0;
}

/* Reads the words after HOST:PORT: weight=N and backup. */
static int server_options(struct cfg_server *srv, char **w, int n, char *err, size_t errlen)
{
	for (int i = 1; i < n; i++) {
		long v;

		if (strncmp(w[i], "weight=", 7) == 0) {
			if (long_parse(w[i] + 7, &v) < 0 || v < 1 || v > 256) {
				snprintf(err, errlen, "bad weight '%s' (1..256)", w[i] + 7);
				return -1;
			}
			srv->weight = (int)v;
		} else if (strcmp(w[i], "backup") == 0) {
			srv->backup = true;
		} else {
			snprintf(err, errlen, "unknown server option '%s' (weight=N, backup)", w[i]);
			return -1;
		}
	}
	return 0;
}

static int set_server(struct loader *ld, const struct setting *st, void *base, const char *val,
		      char *err, size_t errlen)
{
	struct cfg_backend *be = base;
	struct cfg_server srv = { .weight = 1, .addr.line = ld->line };
	struct cfg_server *grown;
	char *buf = ld_strdup(ld, val);
	char *w[4];
	int n, rc = -1;

	if (buf == NULL)
		return oom_reason(err, errlen);
	n = words_split(buf, w, 4);
	if (n < 1)
		snprintf(err, errlen, "expected 'HOST:PORT [weight=N] [backup]'");
	else if (config_parse_addr(w[0], false, &srv.addr, err, errlen) == 0 &&
		 server_options(&srv, w, n, err, errlen) == 0)
		rc = 0;
	free(buf);
	if (rc < 0)
		return -1;
	grown = ld_grow(ld, be->servers, be->nservers, sizeof(*grown));
	if (grown == NULL)
		return oom_reason(err, errlen);
	be->servers = grown;
	be->servers[be->nservers++] = srv;
	return 0;
}

static int set_check_send(struct loader *ld, const struct setting *st, void *base,
			  const char *val, char *err, size_t errlen)
{
	struct cfg_backend *be = base;
	char *text = unquote(ld, val);
	char *bytes;
	size_t len;
	int rc;

	if (text == NULL)
		return oom_reason(err, errlen);
	rc = config_unescape(text, &bytes, &len, err, errlen);
	free(text);
	if (rc < 0)
		return -1;
	free(be->check_send);
	be->check_send = bytes;
	be->check_send_len = len;
	return 0;
}

static int set_check_expect(struct loader *ld, const struct setting *st, void *base,
			    const char *val, char *err, size_t errlen)
{
	struct cfg_backend *be = base;
	char *text = unquote(ld, val);

	if (text == NULL)
		return oom_reason(err, errlen);
	if (text[0] == '\0') {
		free(text);
		snprintf(err, errlen, "empty value");
		return -1;
	}
	free(be->check_expect);
	be->check_expect = text;
	return 0;
}

/* ---- sections ---- */

static const char *const sect_kinds[] = { "global", "frontend", "backend" };

static void *sect_base(struct loader *ld, const struct psect *ps)
{
	if (ps->kind == SECT_FRONTEND)
		return &ld->cfg->frontends[ps->idx];
	if (ps->kind == SECT_BACKEND)
		return &ld->cfg->backends[ps->idx];
	return ld->cfg;
}

/* The earlier section of the same kind and name, if any. */
static const struct psect *sect_find(struct loader *ld, enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < ld->nsects; i++) {
		const struct psect *ps = &ld->sects[i];

		if (ps->kind != kind)
			continue;
		if (kind == SECT_GLOBAL ||
		    (kind == SECT_FRONTEND && strcmp(ld->cfg->frontends[ps->idx].name, name) == 0) ||
		    (kind == SECT_BACKEND && strcmp(ld->cfg->backends[ps->idx].name, name) == 0))
			return ps;
	}
	return NULL;
}

static bool sect_name_ok(const char *name)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";

	return name[0] != '\0' && strspn(name, ok) == strlen(name);
}

/* Adds the frontend or backend a new section fills, with its defaults; idx gets its index. */
static int sect_add_item(struct loader *ld, enum sect_kind kind, const char *name, size_t *idx)
{
	struct config *cfg = ld->cfg;
	char *copy = ld_strdup(ld, name);
	void *base;

	if (copy == NULL)
		return -1;
	if (kind == SECT_FRONTEND) {
		struct cfg_frontend *fe = ld_grow(ld, cfg->frontends, cfg->nfrontends, sizeof(*fe));

		if (fe == NULL)
			goto fail;
		cfg->frontends = fe;
		*idx = cfg->nfrontends++;
		fe[*idx] = (struct cfg_frontend){ .name = copy, .line = ld->line, .backend = -1 };
		base = &fe[*idx];
	} else {
		struct cfg_backend *be = ld_grow(ld, cfg->backends, cfg->nbackends, sizeof(*be));

		if (be == NULL)
			goto fail;
		cfg->backends = be;
		*idx = cfg->nbackends++;
		be[*idx] = (struct cfg_backend){ .name = copy, .line = ld->line };
		base = &be[*idx];
	}
	defaults_apply(ld, kind, base);
	return 0;
fail:
	free(copy);
	return -1;
}

static struct psect *sect_open(struct loader *ld, enum sect_kind kind, const char *name)
{
	struct psect ps = { .kind = kind, .line = ld->line };
	struct psect *grown;

	ps.seen = calloc(NSETTINGS, sizeof(*ps.seen));
	if (kind == SECT_GLOBAL)
		ps.label = ld_strdup(ld, "global");
	else if (asprintf(&ps.label, "%s %s", sect_kinds[kind], name) < 0)
		ps.label = NULL;
	grown = ps.seen && ps.label ? ld_grow(ld, ld->sects, ld->nsects, sizeof(ps)) : NULL;
	if (grown == NULL || (kind != SECT_GLOBAL && sect_add_item(ld, kind, name, &ps.idx) < 0)) {
		ld->sects = grown ? grown : ld->sects;
		ld->oom = true;
		free(ps.seen);
		free(ps.label);
		return NULL;
	}
	ld->sects = grown;
	grown[ld->nsects] = ps;
	return &grown[ld->nsects++];
}

/* Validates a header's text (between the brackets) at its own line; returns the index of the
 * section it opens, or RD_SKIP if it is unusable. */
static int header_open(struct loader *ld, char *inner)
{
	const char *label = ld->rd_label;
	char *name = inner + strcspn(inner, " \t");
	const struct psect *prev;
	struct psect *ps;
	int kind = -1;

	if (*name != '\0')
		*name++ = '\0';
	name += strspn(name, " \t");
	for (int k = 0; k < (int)ARRAY_LEN(sect_kinds); k++)
		if (strcmp(inner, sect_kinds[k]) == 0)
			kind = k;
	if (kind < 0) {
		ld_error(ld, ld->line, label, NULL, "unknown section");
		return RD_SKIP;
	}
	if ((kind == SECT_GLOBAL) != (*name == '\0')) {
		ld_error(ld, ld->line, label, NULL, kind == SECT_GLOBAL ? "[global] takes no name"
									: "missing name");
		return RD_SKIP;
	}
	if (kind != SECT_GLOBAL && !sect_name_ok(name)) {
		ld_error(ld, ld->line, label, NULL,
			 "bad name '%s' (letters, digits, '_', '.' and '-')", name);
		return RD_SKIP;
	}
	prev = sect_find(ld, (enum sect_kind)kind, name);
	if (prev != NULL) {
		ld_error(ld, ld->line, label, NULL, "duplicate section (first at line %d)",
			 prev->line);
		return RD_SKIP;
	}
	ps = sect_open(ld, (enum sect_kind)kind, name);
	if (ps == NULL)
		return RD_SKIP;
	snprintf(ld->rd_label, sizeof(ld->rd_label), "%s", ps->label);
	return (int)(ps - ld->sects);
}

/* ---- the reader inih pulls lines from ---- */

/* Why the reader below does inih's work: Debian builds inih (55 in 12, 58 in 13) with a
 * 200-byte line buffer on the stack (12 splits a longer line in two, 13 drops its tail; the
 * variables that change this are a Debian patch, not inih's interface), with no callback for
 * a section header or for a line without '=' (it returns only the first such line), and it
 * splits keys at ':' as well and joins an indented line to the key above. So every line is
 * read and checked here, against its own number; inih is handed "k=v" for a key line and
 * calls the key handler, which takes the real key and value from the loader. */

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* inih's comment rules: ';' or '#' opening the line, or ';' after whitespace. */
static void comment_cut(char *s)
{
	if (*s == ';' || *s == '#') {
		*s = '\0';
		return;
	}
	for (char *p = s; *p; p++) {
		if (*p == ';' && p > s && isspace((unsigned char)p[-1])) {
			*p = '\0';
			return;
		}
	}
}

static const char *rd_label(const struct loader *ld)
{
	return ld->rd_label[0] ? ld->rd_label : NULL;
}

/* Opens the section a header names; after a header already reported, its keys are skipped
 * rather than each reported again. */
static void header_read(struct loader *ld, char *s)
{
	char *close = strchr(s, ']');
	char *inner;

	ld->rd_sect = RD_SKIP;
	if (close == NULL) {
		snprintf(ld->rd_label, sizeof(ld->rd_label), "%s", s + 1);
		ld_error(ld, ld->line, NULL, NULL, "bad section header '%s' (no ']')", s);
		return;
	}
	*close = '\0';
	inner = lskip(s + 1);
	rstrip(inner);
	snprintf(ld->rd_label, sizeof(ld->rd_label), "%s", inner);
	if (*lskip(close + 1) != '\0')
		ld_error(ld, ld->line, rd_label(ld), NULL, "unexpected text after ']'");
	else
		ld->rd_sect = header_open(ld, inner);
}

/* Splits a key = value line in place into ld->key and ld->value. */
static void key_read(struct loader *ld, char *s)
{
	char *eq = strchr(s, '=');

	if (eq == NULL || eq == s) {
		ld_error(ld, ld->line, rd_label(ld), NULL, "expected 'key = value'");
		return;
	}
	*eq = '\0';
	rstrip(s);
	ld->key = s;
	ld->value = lskip(eq + 1);
}

/* Hands inih one line at a time; inih calls the key handler before asking for the next, so
 * ld->line, ld->key and ld->value are the handler's. Leading whitespace is dropped: an indented
 * key is a key, never a continuation of the value above. */
static char *ini_read(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	char *s, *nl;

	if (ld->pos >= ld->len)
		return NULL;
	s = ld->text + ld->pos;
	nl = memchr(s, '\n', ld->len - ld->pos);
	if (nl != NULL)
		*nl = '\0';
	ld->pos = nl ? (size_t)(nl - ld->text) + 1 : ld->len;
	if (++ld->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s = lskip(s);
	comment_cut(s);
	rstrip(s);
	ld->key = NULL;
	if (*s == '[')
		header_read(ld, s);
	else if (*s != '\0')
		key_read(ld, s);
	snprintf(str, (size_t)num, "%s", ld->key ? "k=v\n" : "\n");
	return str;
}

/* ---- the key handler ---- */

static const struct setting *setting_find(enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (settings[i].sect == kind && strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

static void key_handle(struct loader *ld, struct psect *ps, const char *name, const char *value)
{
	const struct setting *st = setting_find(ps->kind, name);
	char err[ERRLEN];
	void *base;
	int *first;

	if (st == NULL) {
		ld_error(ld, ld->line, ps->label, name, "unknown key");
		return;
	}
	first = &ps->seen[st - settings];
	if (*first != 0 && !st->repeat) {
		ld_error(ld, ld->line, ps->label, name, "duplicate key (first at line %d)", *first);
		return;
	}
	if (*first == 0)
		*first = ld->line;
	if (value[0] == '\0') {
		ld_error(ld, ld->line, ps->label, name, "missing value");
		return;
	}
	base = sect_base(ld, ps);
	if (setting_apply(ld, st, base, value, err, sizeof(err)) < 0) {
		ld_error(ld, ld->line, ps->label, name, "%s", err);
		return;
	}
	if (st->line_off != 0)
		*(int *)((char *)base + st->line_off) = ld->line;
	if (st->kind == V_ADDR)
		((struct cfg_addr *)((char *)base + st->off))->line = ld->line;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;

	if (ld->rd_sect == RD_NONE) {
		ld_error(ld, ld->line, NULL, ld->key,
			 "outside any section ([global], [frontend NAME] or [backend NAME])");
	} else if (ld->rd_sect >= 0) {
		ld->cur = &ld->sects[ld->rd_sect];
		key_handle(ld, ld->cur, ld->key, ld->value);
	}
	return 1;
}

/* ---- checks across keys and sections, once the whole file is read ---- */

static int backend_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Line a key was first set on in a section, 0 if never. */
static int seen_line(const struct psect *ps, const char *name)
{
	const struct setting *st = setting_find(ps->kind, name);

	return st ? ps->seen[st - settings] : 0;
}

static void required_check(struct loader *ld, const struct psect *ps)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		const struct setting *st = &settings[i];

		if (st->sect == ps->kind && st->required && ps->seen[i] == 0)
			ld_error(ld, ps->line, ps->label, st->name, "required");
	}
}

static void frontend_finish(struct loader *ld, const struct psect *ps, struct cfg_frontend *fe)
{
	for (size_t i = 0; i < fe->ncerts; i++)
		if (fe->certs[i].key_path == NULL)
			fe->certs[i].key_path = ld_strdup(ld, fe->certs[i].cert_path);
	if (fe->backend_name != NULL) {
		fe->backend = backend_find(ld->cfg, fe->backend_name);
		if (fe->backend < 0)
			ld_error(ld, fe->backend_line, ps->label, "backend", "unknown backend '%s'",
				 fe->backend_name);
	}
	for (size_t i = 0; i < fe->nroutes; i++) {
		struct cfg_route *r = &fe->routes[i];

		r->backend = backend_find(ld->cfg, r->backend_name);
		if (r->backend < 0)
			ld_error(ld, r->line, ps->label, "route", "unknown backend '%s'",
				 r->backend_name);
	}
	if (fe->tls_min_version > fe->tls_max_version)
		ld_error(ld, seen_line(ps, "tls_min_version"), ps->label, "tls_min_version",
			 "TLSv1.3 is above tls_max_version TLSv1.2");
}

static void backend_finish(struct loader *ld, const struct psect *ps, struct cfg_backend *be)
{
	if (be->check == CHECK_SEND_EXPECT && seen_line(ps, "check_expect") == 0)
		ld_error(ld, seen_line(ps, "check"), ps->label, "check",
			 "send-expect requires check_expect");
}

/* An earlier listen line with the same address as frontend fi's listen li, if any. */
static const struct cfg_addr *listen_earlier(const struct config *cfg, size_t fi, size_t li)
{
	const struct cfg_addr *a = &cfg->frontends[fi].listens[li];

	for (size_t f = 0; f <= fi; f++) {
		const struct cfg_frontend *fe = &cfg->frontends[f];

		for (size_t l = 0; l < fe->nlistens && (f < fi || l < li); l++)
			if (fe->listens[l].len == a->len &&
			    memcmp(&fe->listens[l].ss, &a->ss, a->len) == 0)
				return &fe->listens[l];
	}
	return NULL;
}

/* With SO_REUSEPORT a second bind of the same address would succeed and silently split
 * its clients between two frontends, so the config refuses it. */
static void listens_check(struct loader *ld, const struct psect *ps, size_t fi)
{
	const struct cfg_frontend *fe = &ld->cfg->frontends[fi];

	for (size_t li = 0; li < fe->nlistens; li++) {
		const struct cfg_addr *prev = listen_earlier(ld->cfg, fi, li);

		if (prev != NULL)
			ld_error(ld, fe->listens[li].line, ps->label, "listen",
				 "'%s' is already used at line %d", fe->listens[li].text,
				 prev->line);
	}
}

static void config_finish(struct loader *ld)
{
	for (size_t i = 0; i < ld->nsects; i++) {
		const struct psect *ps = &ld->sects[i];

		required_check(ld, ps);
		if (ps->kind == SECT_FRONTEND) {
			frontend_finish(ld, ps, &ld->cfg->frontends[ps->idx]);
			listens_check(ld, ps, ps->idx);
		} else if (ps->kind == SECT_BACKEND) {
			backend_finish(ld, ps, &ld->cfg->backends[ps->idx]);
		}
	}
	ld->cfg->has_metrics = ld->cfg->metrics.len != 0;
}

/* ---- freeing ---- */

static void frontend_free(struct cfg_frontend *fe)
{
	for (size_t i = 0; i < fe->ncerts; i++) {
		free(fe->certs[i].cert_path);
		free(fe->certs[i].key_path);
	}
	for (size_t i = 0; i < fe->nroutes; i++) {
		free(fe->routes[i].pattern);
		free(fe->routes[i].backend_name);
	}
	free(fe->name);
	free(fe->listens);
	free(fe->certs);
	free(fe->backend_name);
	free(fe->routes);
	free(fe->ciphers);
	free(fe->ciphersuites);
	free(fe->alpn);
	free(fe->client_ca);
	free(fe->ticket_keys);
}

static void backend_free(struct cfg_backend *be)
{
	free(be->name);
	free(be->servers);
	free(be->check_send);
	free(be->check_expect);
}

static void config_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->nfrontends; i++)
		frontend_free(&cfg->frontends[i]);
	for (size_t i = 0; i < cfg->nbackends; i++)
		backend_free(&cfg->backends[i]);
	free(cfg->frontends);
	free(cfg->backends);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->access_log);
	free(cfg->user);
	free(cfg->group);
	free(cfg);
}

struct config *config_ref(struct config *cfg)
{
	if (cfg != NULL)
		atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

/* acq_rel: the thread that frees must see every other holder's last reads as done. */
void config_unref(struct config *cfg)
{
	if (cfg != NULL && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
		config_free(cfg);
}

/* ---- loading ---- */

/* Folder relative paths resolve against, made absolute so a later chdir cannot move it. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *real;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return NULL;
	real = realpath(dir, NULL);
	if (real == NULL)
		return dir;
	free(dir);
	return real;
}

static struct config *config_new(struct loader *ld, const char *path)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	atomic_init(&cfg->refs, 1);
	cfg->path = strdup(path);
	cfg->dir = dir_of(path);
	if (cfg->path == NULL || cfg->dir == NULL) {
		config_free(cfg);
		return NULL;
	}
	ld->cfg = cfg;
	defaults_apply(ld, SECT_GLOBAL, cfg);
	return cfg;
}

/* Errors found after the last line (missing keys, unknown backends) still read top to bottom. */
static void errors_flush(struct loader *ld, struct errlist *out)
{
	errlist_sort(&ld->errs);
	errlist_move(out, &ld->errs);
}

static void loader_finish(struct loader *ld)
{
	for (size_t i = 0; i < ld->nsects; i++) {
		free(ld->sects[i].label);
		free(ld->sects[i].seen);
	}
	free(ld->sects);
	free(ld->text);
	errlist_finish(&ld->errs);
	config_unref(ld->cfg);
}

static struct config *loader_run(struct loader *ld, struct errlist *errs, bool partial)
{
	struct config *cfg = NULL;
	size_t before = errs->n;
	bool ok;

	if (config_new(ld, ld->file) == NULL) {
		ld->oom = true;
	} else {
		/* inih is handed no line it would reject; -2 is its own buffer failing */
		if (ini_parse_stream(ini_read, ld, ini_on_key, ld) == -2)
			ld->oom = true;
		config_finish(ld);
	}
	ok = !ld->oom && ld->errs.n == 0;
	if (ld->oom)
		ld_error(ld, 0, NULL, NULL, "out of memory");
	errors_flush(ld, errs);
	if (!ok && errs->n == before)
		errlist_add(errs, ld->file, 0, NULL, NULL, "out of memory");
	if (ok || (partial && !ld->oom)) {
		cfg = ld->cfg;
		ld->cfg = NULL;
	}
	return cfg;
}

/* Parses text (len bytes, owned from here on) as the config file named path. */
static struct config *load_text(const char *path, char *text, size_t len, struct errlist *errs,
				bool partial)
{
	struct errlist spare_errs;
	struct loader ld = { .file = path, .text = text, .len = len, .rd_sect = RD_NONE };
	struct config *cfg;

	errlist_init(&spare_errs);
	errlist_init(&ld.errs);
	cfg = loader_run(&ld, errs ? errs : &spare_errs, partial);
	loader_finish(&ld);
	errlist_finish(&spare_errs);
	return cfg;
}

static struct config *load(const char *path, struct errlist *errs, bool partial)
{
	char why[160];
	char *text;
	size_t len;

	if (config_file_read(path, &text, &len, why, sizeof(why)) < 0) {
		if (errs != NULL)
			errlist_add(errs, path, 0, NULL, NULL, "cannot open: %s", why);
		return NULL;
	}
	return load_text(path, text, len, errs, partial);
}

struct config *config_load_buffer(const char *path, const char *text, size_t len,
				  struct errlist *errs, struct errlist *warns)
{
	char *copy = malloc(len + 1);

	if (copy == NULL) {
		if (errs != NULL)
			errlist_add(errs, path, 0, NULL, NULL, "out of memory");
		return NULL;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	return load_text(path, copy, len, errs, false);
}

struct config *config_load(const char *path, struct errlist *errs, struct errlist *warns)
{
	return load(path, errs, false);
}

struct config *config_load_partial(const char *path, struct errlist *errs,
				   struct errlist *warns)
{
	return load(path, errs, true);
}
