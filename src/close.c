/* Close reasons: their names, as the README's access log contract spells them, and the
 * first-wins record of why a connection ends. */
#include "tlsplice/close.h"

#include <stdio.h>

static const char *const names[CLOSE_MAX] = {
	[CLOSE_NONE] = "",
	[CLOSE_CLIENT_EOF] = "client_eof",
	[CLOSE_SERVER_EOF] = "server_eof",
	[CLOSE_IDLE_TIMEOUT] = "idle_timeout",
	[CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[CLOSE_HANDSHAKE_FAILED] = "handshake_failed",
	[CLOSE_NO_SERVER] = "no_server",
	[CLOSE_CONNECT_FAILED] = "connect_failed",
	[CLOSE_SHUTDOWN] = "shutdown",
	[CLOSE_KEY_UPDATE] = "key_update",
	[CLOSE_ERROR] = "error",
	[CLOSE_PROXY_HEADER] = "proxy_header",
};

const char *close_reason_name(enum close_reason r)
{
	return (unsigned)r < CLOSE_MAX ? names[r] : "error";
}

void close_cause_end(struct close_cause *cc, enum close_reason reason)
{
	if (cc->reason == CLOSE_NONE)
		cc->reason = reason;
}

void close_cause_vfail(struct close_cause *cc, enum close_reason reason, const char *fmt,
		       va_list ap)
{
	close_cause_end(cc, reason);
	if (!cc->error[0])
		vsnprintf(cc->error, sizeof(cc->error), fmt, ap);
}

void close_cause_fail(struct close_cause *cc, enum close_reason reason, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	close_cause_vfail(cc, reason, fmt, ap);
	va_end(ap);
}
