/* The OpenSSL result classifier, driven by real SSL objects over a socket pair. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tlsplice/tls.h"

static int fds[2];
static SSL_CTX *ctx;
static SSL *ssl;

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the proxy does: a closed peer is an error, not a kill */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	ctx = SSL_CTX_new(TLS_server_method());
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fds[0]);
	SSL_set_accept_state(ssl);
}

static void teardown(void)
{
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

TestSuite(tls, .init = setup, .fini = teardown);

Test(tls, nothing_to_read_is_want_read)
{
	char err[64] = "";
	int r = SSL_do_handshake(ssl);
	cr_assert_eq(tls_classify(ssl, r, err, sizeof(err)), TLS_WANT_READ);
}

Test(tls, garbage_is_fatal_with_a_reason)
{
	char err[128] = "";
	const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	cr_assert_eq(write(fds[1], junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	int r = SSL_do_handshake(ssl);
	cr_assert_eq(tls_classify(ssl, r, err, sizeof(err)), TLS_FATAL);
	cr_assert(err[0], "no reason given");
	cr_assert(strstr(err, "http") || strstr(err, "version"), "reason: %s", err);
	cr_assert_eq(ERR_peek_error(), 0ul, "error queue left dirty");
}

Test(tls, peer_close_is_closed)
{
	char err[64] = "";
	close(fds[1]);
	fds[1] = -1;
	int r = SSL_do_handshake(ssl);
	cr_assert_eq(tls_classify(ssl, r, err, sizeof(err)), TLS_CLOSED);
}

Test(tls, success_is_ok)
{
	char err[64] = "";
	cr_assert_eq(tls_classify(ssl, 1, err, sizeof(err)), TLS_OK);
}
