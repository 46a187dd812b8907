/* Why a connection ended: the access log's "close" field, decided once per connection (the
 * first reason wins) and read by the metrics and the access log. */
#ifndef TLSPLICE_CLOSE_H
#define TLSPLICE_CLOSE_H

#include <stdarg.h>

enum close_reason {
	CLOSE_NONE,       /* not decided yet */
	CLOSE_CLIENT_EOF, /* close_notify, FIN or reset from the client */
	CLOSE_SERVER_EOF, /* FIN or reset from the backend */
	CLOSE_IDLE_TIMEOUT,
	CLOSE_HANDSHAKE_TIMEOUT,
	CLOSE_HANDSHAKE_FAILED,
	CLOSE_NO_SERVER,
	CLOSE_CONNECT_FAILED,
	CLOSE_SHUTDOWN,
	CLOSE_KEY_UPDATE, /* a TLS 1.3 KeyUpdate the kernel cannot follow */
	CLOSE_ERROR,      /* a local error (memory, pipes) */
	/* a bad, oversized, slow or untrusted PROXY header */
	CLOSE_PROXY_HEADER,
	CLOSE_MAX,
};

/* Why a connection ends: the first reason wins, as does the first error text. The
 * connection owns it and hands it to the relay, which fills it as things end. */
struct close_cause {
	enum close_reason reason;
	char error[160];
};

void close_cause_end(struct close_cause *cc, enum close_reason reason);
void close_cause_fail(struct close_cause *cc, enum close_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void close_cause_vfail(struct close_cause *cc, enum close_reason reason, const char *fmt,
		       va_list ap) __attribute__((format(printf, 3, 0)));

/* The contract's name ("client_eof", ...); "" for CLOSE_NONE. */
const char *close_reason_name(enum close_reason r);

#endif
