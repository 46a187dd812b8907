/* The settings table: one row per key of the contract, the setters of each value kind, and the
 * handler's side. Adding a key is a row here (plus its field in config.h when it stores one, and
 * a setter in setters.c when no value kind fits) and a line in the README. */
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
#include "setting.h"
#include "tlsplice/cpus.h"

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
static const struct enum_name accept_proxies[] = {
	{ "off", ACCEPT_PROXY_OFF },
	{ "v1", ACCEPT_PROXY_V1 },
	{ "v2", ACCEPT_PROXY_V2 },
	{ "any", ACCEPT_PROXY_ANY },
	{ NULL, 0 },
};
static const struct enum_name balances[] = { { "roundrobin", BALANCE_ROUNDROBIN },
					     { "leastconn", BALANCE_LEASTCONN },
					     { NULL, 0 } };
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
	{ G(ktls), .name = "ktls", .kind = V_ENUM, .def = "auto", .names = ktls_modes,
	  .line_off = offsetof(struct config, ktls_line) },
	{ G(splice), .name = "splice", .kind = V_BOOL, .def = "on" },
	{ G(watch), .name = "watch", .kind = V_BOOL, .def = "on" },
	{ G(shutdown_timeout_ms), .name = "shutdown_timeout", .kind = V_DURATION, .def = "30s" },
	{ G(metrics), .name = "metrics", .kind = V_ADDR },
	{ G(user), .name = "user", .kind = V_STRING, .check = check_user },
	{ G(group), .name = "group", .kind = V_STRING, .check = check_group },
	{ G(shutdown_grace_ms), .name = "shutdown_grace", .kind = V_DURATION, .def = "0" },
	{ G(control), .name = "control", .kind = V_CUSTOM, .custom = set_control },

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
	{ F(proxy_tlvs), .name = "proxy_protocol_tlvs", .kind = V_CUSTOM,
	  .custom = set_proxy_tlvs },
	{ F(proxy_crc32c), .name = "proxy_protocol_crc32c", .kind = V_BOOL, .def = "off" },
	{ F(client_crl), .name = "client_crl", .kind = V_PATH, F_LINE(client_crl_line) },
	{ F(accept_proxy), .name = "accept_proxy", .kind = V_ENUM, .def = "off",
	  .names = accept_proxies },
	{ F(accept_proxy_from), .name = "accept_proxy_from", .kind = V_CUSTOM,
	  .custom = set_accept_proxy_from },
	{ F(key_update_bytes), .name = "key_update_bytes", .kind = V_INT, .def = "0", .lo = 0,
	  .hi = 1L << 50 },

	{ B(servers), .name = "server", .kind = V_CUSTOM, .repeat = true, .required = true,
	  .custom = set_server },
	{ B(balance), .name = "balance", .kind = V_ENUM, .def = "roundrobin", .names = balances },
	{ B(slowstart_ms), .name = "slowstart", .kind = V_DURATION, .def = "0" },
	{ B(maxqueue), .name = "backend_maxqueue", .kind = V_INT, .def = "0", .lo = 0,
	  .hi = 1000000 },
	{ B(queue_timeout_ms), .name = "queue_timeout", .kind = V_DURATION, .def = "5s", .lo = 1 },
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
	{ B(resolve_interval_ms), .name = "resolve_interval", .kind = V_DURATION, .def = "30s",
	  .lo = 100 },
	{ B(resolve_required), .name = "resolve_required", .kind = V_BOOL, .def = "off" },
};

/* Ints and enums are stored through memcpy by field size; enums must be int-sized for that. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(enum proxy_proto) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(enum accept_proxy) == sizeof(int), "enum fields are stored as int");
_Static_assert(sizeof(enum balance_kind) == sizeof(int), "enum fields are stored as int");
_Static_assert(PROXY_TLV_ALPN == 1 && PROXY_TLV_AUTHORITY == 2 && PROXY_TLV_SSL == 4,
	       "proxy_protocol_tlvs names are in bit order");

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
		if (st->lo > 1)
			snprintf(err, errlen, "bad duration '%s' (at least %ldms)", val, st->lo);
		else
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
		return setters_oom(err, errlen);
	free(*(char **)field);
	*(char **)field = s;
	return 0;
}

static int set_path(struct loader *ld, char *field, const char *val, char *err, size_t errlen)
{
	char *path = setters_path_load(ld, val, err, errlen);

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

/* The key of section kind nearest to name by edit distance, if it is near enough to be a typo
 * (one edit for short keys, two otherwise, never more than half the key). */
static const struct setting *setting_nearest(enum sect_kind kind, const char *name)
{
	const struct setting *best = NULL;
	int best_d = 3;

	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		const struct setting *st = &settings[i];
		int d, len = (int)strlen(st->name);

		if (st->sect != kind)
			continue;
		d = values_edit_distance(name, st->name);
		if (d < best_d && d <= (len <= 4 ? 1 : 2) && 2 * d <= len) {
			best = st;
			best_d = d;
		}
	}
	return best;
}

/* "unknown key", with the key meant when it looks like a typo, or the section it belongs in. */
static void unknown_key(struct loader *ld, const struct psect *ps, const char *name)
{
	static const char *const where[] = { "[global]", "[frontend NAME]", "[backend NAME]" };
	const struct setting *near = setting_nearest(ps->kind, name);

	if (near != NULL) {
		loader_error(ld, ld->line, ps->label, name, "unknown key (did you mean '%s'?)",
			     near->name);
		return;
	}
	for (int k = SECT_GLOBAL; k <= SECT_BACKEND; k++) {
		if (k != (int)ps->kind && setting_find((enum sect_kind)k, name) != NULL) {
			loader_error(ld, ld->line, ps->label, name,
				     "unknown key (it belongs in %s)", where[k]);
			return;
		}
	}
	loader_error(ld, ld->line, ps->label, name, "unknown key");
}

void keys_handle(struct loader *ld, struct psect *ps, void *base, const char *name,
		 const char *value)
{
	const struct setting *st = setting_find(ps->kind, name);
	char err[ERRLEN];
	int *first;

	if (st == NULL) {
		unknown_key(ld, ps, name);
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

const char *keys_name(size_t i, enum sect_kind *kind)
{
	*kind = settings[i].sect;
	return settings[i].name;
}
