/* The settings table: one row per key of the contract, and the setters behind it. Adding a
 * key is a row here (plus its field in config.h when it stores one) and a line in the README. */
#include "tlsplice/config.h"

#include <ctype.h>
#include <grp.h>
#include <openssl/tls1.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "tlsplice/cpus.h"

#define NO_FIELD SIZE_MAX
#define MAX_WORKERS 1024

enum value_kind { V_DURATION, V_BOOL, V_INT, V_ENUM, V_STRING, V_PATH, V_ADDR, V_CUSTOM };

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
	long lo, hi; /* V_INT range; V_DURATION: lo is the minimum in ms */
	const struct enum_name *names;
	const char *hint; /* V_ENUM: replaces the list of names after a bad value */
	size_t line_off;  /* int field recording the key's line; 0: none (offset 0 is a name) */
	int (*check)(const char *val, char *err, size_t errlen); /* V_STRING: extra validation */
	set_fn *custom;
};

static set_fn set_workers, set_access_log, set_listen, set_cert, set_key, set_route, set_alpn,
	set_server, set_check_send, set_check_expect;
static int check_user(const char *val, char *err, size_t errlen);
static int check_group(const char *val, char *err, size_t errlen);

static const struct enum_name log_levels[] = {
	{ "error", LOG_ERROR }, { "warn", LOG_WARN }, { "info", LOG_INFO },
	{ "debug", LOG_DEBUG }, { NULL, 0 },
};
static const struct enum_name ktls_modes[] = {
	{ "auto", KTLS_AUTO },
	{ "off", KTLS_OFF },
	{ "on", KTLS_ON },
	{ NULL, 0 },
};
static const struct enum_name tls_versions[] = {
	{ "TLSv1.2", TLS1_2_VERSION },
	{ "TLSv1.3", TLS1_3_VERSION },
	{ NULL, 0 },
};
static const struct enum_name proxy_protos[] = {
	{ "off", PROXY_OFF },
	{ "v1", PROXY_V1 },
	{ "v2", PROXY_V2 },
	{ NULL, 0 },
};
static const struct enum_name balances[] = { { "roundrobin", 0 }, { NULL, 0 } };
static const struct enum_name check_kinds[] = {
	{ "tcp", CHECK_TCP },
	{ "send-expect", CHECK_SEND_EXPECT },
	{ "none", CHECK_NONE },
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
	{ F(key_update_bytes), .name = "key_update_bytes", .kind = V_INT, .def = "0", .lo = 0,
	  .hi = 1L << 50 },

	{ B(servers), .name = "server", .kind = V_CUSTOM, .repeat = true, .required = true,
	  .custom = set_server },
	{ .sect = SECT_BACKEND,
	  .off = NO_FIELD,
	  .name = "balance",
	  .kind = V_ENUM,
	  .def = "roundrobin",
	  .names = balances },
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

/* Ints and enums are stored through memcpy by field size; enums must be int-sized for that. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(enum proxy_proto) == sizeof(int), "enum fields are stored as int");

/* ---- loader helpers the setters share ---- */

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
		return loader_strdup(ld, val);
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

/* A value in double quotes keeps its outer spaces; the quotes themselves are not part of it. */
static char *unquote(struct loader *ld, const char *val)
{
	size_t len = strlen(val);
	char *s;

	if (len < 2 || val[0] != '"' || val[len - 1] != '"')
		return loader_strdup(ld, val);
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

static int set_int(const struct setting *st, char *field, const char *val, char *err, size_t errlen)
{
	long v;

	if (values_parse_long(val, &v) < 0 || v < st->lo || v > st->hi) {
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
	s = loader_strdup(ld, val);
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
void keys_defaults(struct loader *ld, enum sect_kind kind, void *base)
{
	char err[ERRLEN];

	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		const struct setting *st = &settings[i];

		if (st->sect != kind || st->def == NULL)
			continue;
		if (setting_apply(ld, st, base, st->def, err, sizeof(err)) < 0)
			loader_error(ld, 0, NULL, st->name, "bad default: %s", err);
	}
}

static int set_workers(struct loader *ld, const struct setting *st, void *base, const char *val,
		       char *err, size_t errlen)
{
	long v;

	struct config *cfg = base;
	cfg->workers_auto[0] = '\0';
	if (strcasecmp(val, "auto") == 0) {
		v = cpus_available(cfg->workers_auto, sizeof(cfg->workers_auto));
		v = v > MAX_WORKERS ? MAX_WORKERS : v;
	} else if (values_parse_long(val, &v) < 0 || v < 1 || v > MAX_WORKERS) {
		snprintf(err, errlen, "bad value '%s' (auto or 1..%d)", val, MAX_WORKERS);
		return -1;
	}
	cfg->workers = (int)v;
	return 0;
}

static int set_access_log(struct loader *ld, const struct setting *st, void *base, const char *val,
			  char *err, size_t errlen)
{
	static const char *const streams[] = { "stdout", "stderr", "off" };
	struct config *cfg = base;
	char *s = NULL;

	for (size_t i = 0; i < ARRAY_LEN(streams) && s == NULL; i++)
		if (strcasecmp(val, streams[i]) == 0)
			s = loader_strdup(ld, streams[i]);
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
	grown = loader_grow(ld, fe->listens, fe->nlistens, sizeof(*grown));
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
	grown = loader_grow(ld, fe->certs, fe->ncerts, sizeof(*grown));
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
		snprintf(err, errlen,
			 "no cert line before it (a key belongs to the cert above it)");
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

static int route_add(struct loader *ld, struct cfg_frontend *fe, const char *pattern,
		     const char *backend, char *err, size_t errlen)
{
	struct cfg_route r = { .backend = -1, .line = ld->line };
	struct cfg_route *grown;

	r.pattern = loader_strdup(ld, pattern);
	r.backend_name = loader_strdup(ld, backend);
	grown = r.pattern && r.backend_name ? loader_grow(ld, fe->routes, fe->nroutes, sizeof(r))
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
	char *buf = loader_strdup(ld, val);
	char *w[2];
	int n, rc = -1;

	if (buf == NULL)
		return oom_reason(err, errlen);
	n = values_split_words(buf, w, 2);
	if (n != 2)
		snprintf(err, errlen, "expected 'SNI-PATTERN BACKEND', got '%s'", val);
	else if (!values_sni_pattern_ok(w[0]))
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
			if (values_parse_long(w[i] + 7, &v) < 0 || v < 1 || v > 256) {
				snprintf(err, errlen, "bad weight '%s' (1..256)", w[i] + 7);
				return -1;
			}
			srv->weight = (int)v;
		} else if (strcmp(w[i], "backup") == 0) {
			srv->backup = true;
		} else {
			snprintf(err, errlen, "unknown server option '%s' (weight=N, backup)",
				 w[i]);
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
	char *buf = loader_strdup(ld, val);
	char *w[4];
	int n, rc = -1;

	if (buf == NULL)
		return oom_reason(err, errlen);
	n = values_split_words(buf, w, 4);
	if (n < 1)
		snprintf(err, errlen, "expected 'HOST:PORT [weight=N] [backup]'");
	else if (config_parse_addr(w[0], false, &srv.addr, err, errlen) == 0 &&
		 server_options(&srv, w, n, err, errlen) == 0)
		rc = 0;
	free(buf);
	if (rc < 0)
		return -1;
	grown = loader_grow(ld, be->servers, be->nservers, sizeof(*grown));
	if (grown == NULL)
		return oom_reason(err, errlen);
	be->servers = grown;
	be->servers[be->nservers++] = srv;
	return 0;
}

static int set_check_send(struct loader *ld, const struct setting *st, void *base, const char *val,
			  char *err, size_t errlen)
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

/* ---- the handler's side: one key line, defaults, required keys ---- */

size_t keys_count(void)
{
	return ARRAY_LEN(settings);
}

static const struct setting *setting_find(enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		if (settings[i].sect == kind && strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

void keys_handle(struct loader *ld, struct psect *ps, void *base, const char *name,
		 const char *value)
{
	const struct setting *st = setting_find(ps->kind, name);
	char err[ERRLEN];
	int *first;

	if (st == NULL) {
		loader_error(ld, ld->line, ps->label, name, "unknown key");
		return;
	}
	first = &ps->seen[st - settings];
	if (*first != 0 && !st->repeat) {
		loader_error(ld, ld->line, ps->label, name, "duplicate key (first at line %d)",
			     *first);
		return;
	}
	if (*first == 0)
		*first = ld->line;
	if (value[0] == '\0') {
		loader_error(ld, ld->line, ps->label, name, "missing value");
		return;
	}
	if (setting_apply(ld, st, base, value, err, sizeof(err)) < 0) {
		loader_error(ld, ld->line, ps->label, name, "%s", err);
		return;
	}
	if (st->line_off != 0)
		*(int *)((char *)base + st->line_off) = ld->line;
	if (st->kind == V_ADDR)
		((struct cfg_addr *)((char *)base + st->off))->line = ld->line;
}

void keys_required(struct loader *ld, const struct psect *ps)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		const struct setting *st = &settings[i];

		if (st->sect == ps->kind && st->required && ps->seen[i] == 0)
			loader_error(ld, ps->line, ps->label, st->name, "required");
	}
}

/* Line a key was first set on in a section, 0 if never. */
int keys_seen_line(const struct psect *ps, const char *name)
{
	const struct setting *st = setting_find(ps->kind, name);

	return st ? ps->seen[st - settings] : 0;
}
