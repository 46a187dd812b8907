/* The names of close reasons, as the README's access log contract spells them. */
#include "tlsplice/close.h"

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
};

const char *close_reason_name(enum close_reason r)
{
	return (unsigned)r < CLOSE_MAX ? names[r] : "error";
}
