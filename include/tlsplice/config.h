/* Configuration: the INI file parsed into an immutable, reference-counted tree. */
#ifndef TLSPLICE_CONFIG_H
#define TLSPLICE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tlsplice/errlist.h"
#include "tlsplice/proxy_in.h"
#include "tlsplice/proxy_tlv.h"

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum ktls_mode { KTLS_AUTO = 0, KTLS_OFF, KTLS_ON };
enum check_kind { CHECK_TCP = 0, CHECK_SEND_EXPECT, CHECK_NONE };
enum proxy_proto { PROXY_OFF = 0, PROXY_V1, PROXY_V2 };
enum balance_kind { BALANCE_ROUNDROBIN = 0, BALANCE_LEASTCONN };
/* A bit set of the PROXY versions a frontend takes (PROXY_IN_V1, PROXY_IN_V2). */
enum accept_proxy {
	ACCEPT_PROXY_OFF = 0,
	ACCEPT_PROXY_V1 = 1,
	ACCEPT_PROXY_V2 = 2,
	ACCEPT_PROXY_ANY = 3
};

/* A resolved socket address plus the text the user wrote ("HOST:PORT"). */
struct cfg_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[128];
	int line;
};

struct cfg_server {
	struct cfg_addr addr; /* addr.text is the metrics/log label HOST:PORT */
	int weight;           /* 1..256 */
	bool backup;
	unsigned maxconn; /* connections open at once at most; 0: no limit */
	/* HOST is a name (resolve.h): addr has no address (len 0) and each answer becomes a
	 * server of its own, labelled "HOST:PORT (ADDR)"; answers are those found at load */
	bool dns;
	struct cfg_addr *answers;
	size_t nanswers;
};

struct cfg_cert {
	char *cert_path; /* absolute or relative to the config's folder, resolved */
	char *key_path;  /* defaults to cert_path */
	int line;        /* line of the cert key */
	int key_line;    /* line of the key key, 0 if defaulted */
	bool bad;        /* its key line was rejected: already reported, not to be loaded */
};

struct cfg_route {
	char *pattern; /* lower-cased; "*.example.com" or exact */
	char *backend_name;
	int backend; /* index into config.backends, resolved at load */
	int line;
};

struct cfg_backend {
	char *name;
	int line; /* header line */
	struct cfg_server *servers;
	size_t nservers;
	enum balance_kind balance;
	uint64_t slowstart_ms;     /* a server that comes up ramps its weight over this; 0: off */
	int maxqueue;              /* clients that may wait for a server; 0: none wait */
	uint64_t queue_timeout_ms; /* how long one may wait */
	uint64_t connect_timeout_ms;
	int retries;
	enum check_kind check;
	char *check_send; /* unescaped bytes */
	size_t check_send_len;
	char *check_expect;
	uint64_t check_interval_ms;
	uint64_t check_timeout_ms;
	int check_rise;
	int check_fall;
	uint64_t resolve_interval_ms; /* how often server names are resolved again */
	bool resolve_required;        /* a name that does not resolve at load is an error */
};

struct cfg_frontend {
	char *name;
	int line; /* header line */
	struct cfg_addr *listens;
	size_t nlistens;
	struct cfg_cert *certs;
	size_t ncerts;
	char *backend_name;
	int backend; /* index into config.backends */
	int backend_line;
	struct cfg_route *routes;
	size_t nroutes;
	int tls_min_version; /* TLS1_2_VERSION / TLS1_3_VERSION */
	int tls_max_version;
	char *ciphers;       /* NULL: OpenSSL default */
	char *ciphersuites;  /* NULL: OpenSSL default */
	unsigned char *alpn; /* wire format (length-prefixed), NULL if none */
	size_t alpn_len;
	enum proxy_proto proxy_protocol;
	uint64_t handshake_timeout_ms;
	uint64_t idle_timeout_ms; /* 0: no idle timeout */
	char *client_ca;
	bool session_tickets;
	char *ticket_keys;
	uint64_t
		key_update_bytes; /* kTLS, TLS 1.3: our own KeyUpdate after this many bytes; 0 off */
	/* lines of keys that later stages (TLS set-up) report errors against; 0 if unset */
	int ciphers_line, ciphersuites_line, client_ca_line, ticket_keys_line;
	enum accept_proxy accept_proxy;          /* a PROXY header before the TLS handshake */
	struct proxy_in_cidr *accept_proxy_from; /* the peers that may send one */
	size_t naccept_proxy_from;
	char *client_crl; /* PEM file of CRLs checked against the whole client chain */
	int client_crl_line;
	unsigned proxy_tlvs; /* PROXY_TLV_* sent after a v2 header's addresses */
	bool proxy_crc32c;   /* a CRC32c TLV seals the v2 header */
};

#define CFG_CONTROL_PATH_MAX 108 /* sizeof(sun_path) */

struct config {
	atomic_int refs;
	char *path; /* as given on the command line */
	char *dir;  /* folder that relative paths resolve against */

	/* [global] */
	int workers;           /* resolved: auto -> the CPUs this process may use */
	char workers_auto[96]; /* auto: where the number came from; "" when set in the file */
	long max_connections;
	enum log_level log_level;
	char *access_log; /* "stdout", "stderr", "off" or a resolved path */
	enum ktls_mode ktls;
	int ktls_line; /* line of the ktls key, 0 if defaulted */
	bool splice;
	bool watch; /* follow certificate, key, CA and ticket key files on disk */
	uint64_t shutdown_timeout_ms;
	uint64_t shutdown_grace_ms; /* after SIGTERM: /healthz 503, listeners still accepting */
	struct cfg_addr metrics;    /* metrics.len == 0: none */
	bool has_metrics;
	char *user;
	char *group;
	char *control; /* control socket path; NULL: none */

	struct cfg_frontend *frontends;
	size_t nfrontends;
	struct cfg_backend *backends;
	size_t nbackends;
};

/* Parses and validates path. Returns NULL with every problem appended to errs. warns is for
 * warnings that do not fail a load; no key gives one today. Either may be NULL. */
struct config *config_load(const char *path, struct errlist *errs, struct errlist *warns);
/* The same, but returns what could be parsed even when errs got errors, so that later checks
 * (certificates, keys, cipher lists) can report theirs in the same run. NULL only when the
 * file cannot be read or memory runs out. */
struct config *config_load_partial(const char *path, struct errlist *errs, struct errlist *warns);
/* config_load over text held in memory (len bytes, NUL bytes allowed), as if it were the
 * file path: messages name path, and relative paths resolve against its folder. */
struct config *config_load_buffer(const char *path, const char *text, size_t len,
				  struct errlist *errs, struct errlist *warns);
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg); /* NULL is a no-op */

/* Writes cfg as INI text (tlsplice -T): every key with its effective value (defaults filled
 * in, paths resolved), what a check sends elided (it may hold a password), in a fixed order
 * so that two outputs diff line by line. */
void config_dump(const struct config *cfg, FILE *f);
/* What a reload from old to cfg changes, one message per line in out (no file or line):
 * listeners, frontends and backends added or removed, servers added or removed, weights and
 * check settings changed, and the certificates read again. */
void config_diff(const struct config *old, const struct config *cfg, struct errlist *out);

/* Finds a frontend's backend for an SNI name (NULL sni: default backend). */
int config_route(const struct cfg_frontend *fe, const char *sni);

/* The largest file the config may name (certificates, keys, CA lists, ticket keys), and the
 * largest config file: anything bigger is a mistake, and an endless file must not hang a load. */
#define CONFIG_FILE_MAX (4u << 20)
#define CONFIG_FILE_MAX_TEXT "4 MiB"

/* Checks that path is a regular file of at most CONFIG_FILE_MAX bytes that we can open for
 * reading. 0, or -1 with the reason in err ("not a regular file", "larger than 4 MiB", or
 * strerror) and errno set. Opens nothing that is not a regular file (no FIFO, no device). */
int config_file_check(const char *path, char *err, size_t errlen);
/* Reads the whole of such a file, NUL-terminated (len excludes the NUL; caller frees, and
 * wipes it first if it holds secrets). 0, or -1 with the reason in err and errno set. */
int config_file_read(const char *path, char **text, size_t *len, char *err, size_t errlen);

/* Value parsers, exposed for tests. Return 0 or -1 with a reason in err. */
int config_parse_duration(const char *s, uint64_t *ms, char *err, size_t errlen);
int config_parse_bool(const char *s, bool *out, char *err, size_t errlen);
int config_parse_addr(const char *s, bool passive, struct cfg_addr *out, char *err, size_t errlen);
/* A server's "NAME:PORT" whose host is a name, not an address: 1 with out->text set and
 * out->len 0 (nothing resolved), 0 when s is no name (an address or unix:), -1 with a reason
 * in err. The label "NAME:PORT (ADDR)" must fit out->text, so names are bounded. */
int config_parse_name(const char *s, struct cfg_addr *out, uint16_t *port, char *err,
		      size_t errlen);
int config_unescape(const char *s, char **out, size_t *outlen, char *err, size_t errlen);
bool config_sni_match(const char *pattern, const char *name);

#endif
