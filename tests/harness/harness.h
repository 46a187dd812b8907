/* Integration test harness: drives the real tlsplice binary through its user-facing contract
 * (tests/../design interface: CLI, INI file, access log, metrics) from Criterion tests.
 *
 * Every test runs in its own process (Criterion forks), so the harness keeps per-test state
 * in globals. Typical use:
 *
 *     TestSuite(relay, .init = harness_setup, .fini = harness_teardown, .timeout = 60);
 *
 *     Test(relay, echo)
 *     {
 *         struct backend *be = backend_start(BACKEND_ECHO, 0, NULL, 0);
 *         int port = harness_free_port();
 *         struct harness_cert crt;
 *         cr_assert_eq(harness_cert_create("demo", "demo.test", &crt), 0);
 *         const char *ini = harness_write_file("t.ini",
 *             "[frontend web]\nlisten = 127.0.0.1:%d\ncert = %s\nkey = %s\nbackend = app\n"
 *             "[backend app]\nserver = %s\ncheck = none\n",
 *             port, crt.cert, crt.key, backend_addr(be));
 *         struct proxy *p = proxy_start(ini, port);
 *         cr_assert(p);
 *         struct tlsc *c = tlsc_connect("127.0.0.1", port, NULL);
 *         ...
 *         cr_assert_eq(alog_wait_lines(proxy_access_log(p), 1, 5000), 1);
 *         harness_pass();
 *     }
 *
 * Failures: functions return NULL / -1 and print why to stderr (prefix "harness:"); the
 * test asserts on the return value. Every wait has a bounded deadline given in ms.
 * Strings returned as `const char *` from harness_path()/harness_write_file()/backend_addr()
 * stay valid until the test ends.
 */
#ifndef TLSPLICE_TEST_HARNESS_H
#define TLSPLICE_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "bcore.h" /* enum backend_mode, struct backend_stats */

/* Deadline used by helpers that do not take one: generous, the suite also runs under ASan. */
#define HARNESS_TIMEOUT_MS 10000

/* ------------------------------------------------------------------------------------------
 * Per-test context
 * ---------------------------------------------------------------------------------------- */

/* Criterion .init: creates the test's temp dir ($TMPDIR or /tmp, "tlsplice-it.XXXXXX"),
 * ignores SIGPIPE, initialises OpenSSL. */
void harness_setup(void);
/* Criterion .fini: stops every proxy and backend the test started, frees clients, and removes
 * the temp dir if harness_pass() was reached; otherwise keeps it and prints its path. */
void harness_teardown(void);
/* Call as the last statement of a test: marks it passed so its temp dir is removed. */
void harness_pass(void);
/* The test's temp dir. */
const char *harness_dir(void);
/* "DIR/name" (kept until the test ends). */
const char *harness_path(const char *name);
/* Writes a printf-formatted file into the temp dir; returns its path, NULL on error. */
const char *harness_write_file(const char *name, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reads a whole file (NUL-terminated, malloc'd, caller frees); NULL if it cannot. */
char *harness_read_file(const char *path, size_t *len_out);
/* A TCP port on 127.0.0.1 that is free now and stays free for the proxy to bind: it lies
 * outside the kernel's ephemeral range, and no other test process of this user is handed it
 * (until the span wraps). -1 on error. */
int harness_free_port(void);
/* Milliseconds on the monotonic clock. */
int64_t harness_now_ms(void);
/* True if a socket LISTENs on this TCP port now (from /proc/net/tcp*; connects nothing). */
bool harness_port_listening(int port);
/* Polls (bounded) until a TCP connect to host:port succeeds; true if it did in time. */
bool harness_wait_port(const char *host, int port, int timeout_ms);
/* Polls (bounded) until host:port refuses connections; true if it did in time. */
bool harness_wait_port_closed(const char *host, int port, int timeout_ms);
/* Fills buf with the deterministic test pattern as seen at stream offset `offset`. */
void harness_pattern(uint64_t offset, void *buf, size_t len);
/* Lower-case hex SHA-256 of data (out gets 64 chars + NUL). */
void harness_sha256_hex(const void *data, size_t len, char out[65]);
/* Hex SHA-256 of the first n bytes of the test pattern. */
void harness_pattern_sha256_hex(uint64_t n, char out[65]);

/* Writes the config file NAME for the common case: "[global]" with global_extra lines, a
 * frontend "web" listening on 127.0.0.1:port serving crt with default backend "app" plus
 * fe_extra lines, then `backends` verbatim (the [backend ...] sections). Extra strings may be
 * NULL or several "key = value\n" lines. Returns its path, NULL on error. */
struct harness_cert;
const char *harness_config_web(const char *name, int port, const struct harness_cert *crt,
			       const char *global_extra, const char *fe_extra,
			       const char *backends);

/* ------------------------------------------------------------------------------------------
 * Certificates (generated with the OpenSSL API; EC P-256, self-signed, valid now +- 1 day)
 * ---------------------------------------------------------------------------------------- */

struct harness_cert {
	char cert[4096]; /* path of NAME.crt: the certificate PEM */
	char key[4096];  /* path of NAME.key: its private key PEM */
};

/* Writes NAME.crt and NAME.key into the temp dir. sans is a comma-separated list of DNS
 * names ("demo.test,*.api.test"); the first one is also the subject CN. 0 or -1. */
int harness_cert_create(const char *name, const char *sans, struct harness_cert *out);
/* Same, valid from a day ago until days from now (days < 0: already expired). */
int harness_cert_create_days(const char *name, const char *sans, int days,
			     struct harness_cert *out);
/* Same, but NAME.key holds a key that does NOT belong to NAME.crt (negative tests). */
int harness_cert_create_mismatched(const char *name, const char *sans, struct harness_cert *out);

/* ------------------------------------------------------------------------------------------
 * The proxy process
 * ---------------------------------------------------------------------------------------- */

/* Path of the binary: $TLSPLICE_BIN, else the build's tlsplice. */
const char *harness_tlsplice_bin(void);
/* True where the proxy says this kernel offers kernel TLS (its `-V` line "kTLS: available"):
 * then connections with a kTLS cipher log "ktls":"both","relay":"splice". */
bool harness_kernel_ktls(void);

struct proxy;

/* Starts `tlsplice -c CONFIG` with stdout (the access log by default) and stderr in files of
 * the temp dir. If wait_port > 0, waits (HARNESS_TIMEOUT_MS) until 127.0.0.1:wait_port accepts.
 * NULL if it exited or did not come up (its stderr is copied to ours). */
struct proxy *proxy_start(const char *config, int wait_port);
/* Same with extra arguments after "-c CONFIG" (NULL-terminated array, may be NULL). */
struct proxy *proxy_start_args(const char *config, const char *const *extra, int wait_port);
pid_t proxy_pid(const struct proxy *p);
/* Files that hold the process's stdout and stderr. */
const char *proxy_stdout_path(const struct proxy *p);
const char *proxy_stderr_path(const struct proxy *p);
/* The access log: its stdout file (configs that set access_log to a file use that path). */
const char *proxy_access_log(const struct proxy *p);
int proxy_signal(struct proxy *p, int sig);
/* Waits up to timeout_ms for the process to exit. Returns its exit code, 128+N if killed by
 * signal N, -1 if still running. Once collected, later calls return the same value. */
int proxy_wait(struct proxy *p, int timeout_ms);
/* SIGTERM, then proxy_wait(timeout_ms); if it is still running, SIGKILL and return -1. */
int proxy_stop(struct proxy *p, int timeout_ms);
/* True while the process has not exited. */
bool proxy_running(struct proxy *p);

/* Runs the binary once with the given arguments (NULL-terminated) and captures its output. */
struct run_result {
	int status; /* exit code, 128+N if killed by signal N, -1 if it overran the deadline */
	char *out;  /* whole stdout, NUL-terminated */
	char *err;  /* whole stderr */
};
int harness_run(struct run_result *r, int timeout_ms, const char *const *argv);
void run_result_finish(struct run_result *r);
/* Number of lines in text (a last line without '\n' counts). */
int harness_count_lines(const char *text);

/* ------------------------------------------------------------------------------------------
 * In-process backends (one thread each running the backend core of bcore.h)
 * ---------------------------------------------------------------------------------------- */

struct backend;

/* Listens on 127.0.0.1:port (0: any free port). name is used by HELLO (NULL: "backend").
 * bytes is used by SOURCE and RESET. NULL on failure. */
struct backend *backend_start(enum backend_mode mode, int port, const char *name, uint64_t bytes);
/* The same on another loopback address (ip "127.0.0.2"...); its addr is "IP:PORT". */
struct backend *backend_start_on(enum backend_mode mode, const char *ip, int port, const char *name,
				 uint64_t bytes);
int backend_port(const struct backend *b);
/* "127.0.0.1:PORT", the form used in `server =` lines and in the log's server field. */
const char *backend_addr(const struct backend *b);
unsigned backend_accepted(struct backend *b);
void backend_get_stats(struct backend *b, struct backend_stats *out);
/* Waits (bounded) until `accepted` reaches n; true if it did. */
bool backend_wait_accepted(struct backend *b, unsigned n, int timeout_ms);
/* Waits (bounded) until the backend has no open connection; true if so. */
bool backend_wait_idle(struct backend *b, int timeout_ms);
/* Closes the listener and every connection; the port then refuses connects. */
void backend_stop(struct backend *b);
/* Listens again on the same port (counters kept). 0 or -1. */
int backend_restart(struct backend *b);
/* Stops and frees (NULL is a no-op). Teardown destroys the ones a test left. */
void backend_destroy(struct backend *b);

/* ------------------------------------------------------------------------------------------
 * Blocking TLS client with deadlines (non-blocking socket + poll inside)
 * ---------------------------------------------------------------------------------------- */

struct tlsc_opts {
	int min_version;          /* TLS1_2_VERSION ...; 0: library default */
	int max_version;          /* 0: library default */
	const char *ciphers;      /* TLS 1.2 list; NULL: default */
	const char *ciphersuites; /* TLS 1.3 list; NULL: default */
	const char *sni;          /* NULL: no SNI */
	const char *alpn;         /* comma list; NULL: none */
	int timeout_ms;           /* connect + handshake deadline for tlsc_connect; 0: default */
};

struct tlsc;

/* TCP connect (bounded) and SSL set-up, no handshake yet. NULL on failure. */
struct tlsc *tlsc_open(const char *host, int port, const struct tlsc_opts *opts);
/* Drives the handshake for up to timeout_ms: 1 done, 0 not done yet (call again), -1 failed
 * (the peer closed or sent an alert; tlsc_error() says why). */
int tlsc_handshake(struct tlsc *c, int timeout_ms);
/* tlsc_open + tlsc_handshake; NULL on failure (opts may be NULL). */
struct tlsc *tlsc_connect(const char *host, int port, const struct tlsc_opts *opts);
/* Writes all of buf within timeout_ms. 0 or -1. */
int tlsc_write_all(struct tlsc *c, const void *buf, size_t len, int timeout_ms);
/* Reads what is available (waits up to timeout_ms for something): >0 bytes, 0 when the peer
 * ended the stream (close_notify or plain EOF: see tlsc_got_close_notify), -1 on error or
 * timeout (tlsc_timed_out() tells which). */
ssize_t tlsc_read(struct tlsc *c, void *buf, size_t len, int timeout_ms);
/* Reads until the peer ends the stream, at most cap bytes kept (the rest is counted and
 * dropped). Returns the total read, -1 on error/timeout. */
ssize_t tlsc_read_all(struct tlsc *c, void *buf, size_t cap, int timeout_ms);
/* Sends close_notify (our write side ends; reading still works). 0 or -1. */
int tlsc_shutdown(struct tlsc *c);
/* Half-closes the TCP connection (shutdown(SHUT_WR)) without close_notify. 0 or -1. */
int tlsc_shutdown_tcp(struct tlsc *c);
/* True once the peer's close_notify arrived; false if it ended with a bare EOF. */
bool tlsc_got_close_notify(const struct tlsc *c);
bool tlsc_timed_out(const struct tlsc *c);
/* Last failure as text ("" if none). */
const char *tlsc_error(const struct tlsc *c);
const char *tlsc_version(const struct tlsc *c); /* "TLSv1.3" */
const char *tlsc_cipher(const struct tlsc *c);  /* OpenSSL/IANA name as SSL_CIPHER_get_name */
/* True if the served certificate lists this DNS name in its SAN. */
bool tlsc_peer_has_dns(const struct tlsc *c, const char *name);
SSL *tlsc_ssl(struct tlsc *c);
int tlsc_fd(const struct tlsc *c);
/* The client's local address "127.0.0.1:PORT", as the log's client field shows it. */
const char *tlsc_local_addr(const struct tlsc *c);
/* Closes the socket without close_notify and frees (NULL is a no-op). */
void tlsc_close(struct tlsc *c);

/* Full-duplex transfer for relay tests: sends `send_bytes` pattern bytes while reading
 * concurrently; after the last byte sends close_notify (or a TCP half-close if tcp_halfclose),
 * then reads until the peer ends the stream. The SHA-256 and count of what was received are
 * returned. 0 on success, -1 on error/timeout. */
struct tlsc_transfer {
	uint64_t send_bytes;
	bool tcp_halfclose;
	int timeout_ms;
	/* results */
	uint64_t received;
	char recv_sha[65];
	bool got_close_notify;
};
int tlsc_transfer_run(struct tlsc *c, struct tlsc_transfer *t);

/* ------------------------------------------------------------------------------------------
 * Access log and JSON lines
 * ---------------------------------------------------------------------------------------- */

/* Waits until the file holds at least n complete lines; returns the number it holds
 * (less than n if the deadline passed). */
int alog_wait_lines(const char *path, int n, int timeout_ms);
/* Line idx (0-based) without its newline, malloc'd; NULL if missing. */
char *alog_line(const char *path, int idx);
/* First line whose string field `key` equals value (malloc'd), NULL if none. */
char *alog_find(const char *path, const char *key, const char *value);
/* Waits (bounded) for a line whose string field `key` equals value; malloc'd or NULL. */
char *alog_wait_find(const char *path, const char *key, const char *value, int timeout_ms);
/* Number of lines whose string field `key` equals value. */
int alog_count(const char *path, const char *key, const char *value);

/* Field extractor for flat JSON objects. */
bool json_has(const char *line, const char *key);
/* String value, unescaped into out. 0, or -1 if missing or not a string. */
int json_str(const char *line, const char *key, char *out, size_t outlen);
/* Numeric value. 0, or -1 if missing or not a number. */
int json_num(const char *line, const char *key, double *out);

/* ------------------------------------------------------------------------------------------
 * Plain HTTP (metrics endpoint)
 * ---------------------------------------------------------------------------------------- */

/* GET path from 127.0.0.1:port, read until close. Returns the whole response (status line,
 * headers, body; malloc'd) or NULL. */
char *harness_http_get(int port, const char *path, int timeout_ms);
/* Value of a Prometheus sample written exactly as `name{labels}` (or `name` without labels)
 * in text; -1 if not present. */
double metrics_value(const char *text, const char *series);

#endif
