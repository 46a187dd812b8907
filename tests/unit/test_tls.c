/* The OpenSSL result classifier, driven by real SSL objects over a socket pair. */
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
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

/* ---- ticket_keys ---- */

/* OpenSSL is not built with ASan, so its writes go unchecked. This copy routes the decoded
 * bytes through an instrumented memcpy: ASan then sees every write the decoder makes into
 * the caller's buffer. */
int EVP_DecodeBlock(unsigned char *t, const unsigned char *f, int n)
{
	static int (*real)(unsigned char *, const unsigned char *, int);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "EVP_DecodeBlock");
	unsigned char *tmp = malloc((size_t)n / 4 * 3 + 3);
	cr_assert(real && tmp);
	int r = real(tmp, f, n);
	if (r > 0)
		memcpy(t, tmp, (size_t)r);
	free(tmp);
	return r;
}

/* Loads a frontend whose only setting is a ticket_keys file holding text; returns the
 * errors it reported (no certificate is configured, so the frontend itself never loads). */
static void ticket_keys_errors(const char *text, struct errlist *errs)
{
	char path[] = "/tmp/tlsplice-keys-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct config cfg = { .path = (char *)"f.ini" };
	struct cfg_frontend fe = { .name = (char *)"web",
				   .line = 3,
				   .session_tickets = true,
				   .ticket_keys = path,
				   .ticket_keys_line = 7 };
	errlist_init(errs);
	cr_assert_null(tls_frontend_create(&cfg, &fe, false, errs));
	unlink(path);
}

Test(tls, overlong_ticket_key_line_is_refused_before_decoding)
{
	/* 252 base64 characters decode to 189 bytes: more than any key, and more than a
	 * buffer sized for one */
	char line[254];
	memset(line, 'A', 252);
	line[252] = '\n';
	line[253] = '\0';
	struct errlist errs;
	ticket_keys_errors(line, &errs);
	cr_assert_geq(errs.n, 1u);
	cr_assert(strstr(errs.msgs[0], "f.ini:7: [frontend web] ticket_keys:"), "%s", errs.msgs[0]);
	cr_assert(strstr(errs.msgs[0], "line 1: expected base64 of 80 bytes"), "%s", errs.msgs[0]);
	errlist_finish(&errs);
}

/* 80 bytes of base64: "0123456789" x 8 */
#define KEY_B64                                                                                    \
	"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw"                     \
	"MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODk="

Test(tls, ticket_keys_parse_comments_blank_lines_and_crlf)
{
	static const char text[] = "# shared keys\r\n\n" KEY_B64 " # newest\r\n  \n" KEY_B64 "\t\n";
	struct tls_ticket_key *keys;
	size_t n;
	char why[128] = "";
	cr_assert_eq(tls_keys_parse(text, sizeof(text) - 1, &keys, &n, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_eq(n, 2u);
	cr_assert_eq(memcmp(keys[0].name, "0123456789012345", 16), 0);
	cr_assert_eq(memcmp(keys[1].aes + 28, "6789", 4), 0);
	tls_keys_free(keys, n);
}

Test(tls, ticket_keys_parse_refuses_what_is_not_one_key_per_line)
{
	static const struct {
		const char *text;
		size_t len;
		const char *why;
	} bad[] = {
		{ "", 0, "holds no key" },
		{ "# only a comment\n", 17, "holds no key" },
		{ KEY_B64 "\nAAAA\n", sizeof(KEY_B64) + 5, "line 2: expected base64 of 80 bytes" },
		{ KEY_B64 "AAAA\n", sizeof(KEY_B64) + 4, "line 1: expected base64 of 80 bytes" },
		{ KEY_B64 "\0\n", sizeof(KEY_B64) + 1, "line 1: expected base64 of 80 bytes" },
		{ "\0\0\0\0", 4, "line 1: expected base64 of 80 bytes" },
		{ "!DEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw"
		  "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODk=",
		  sizeof(KEY_B64) - 1, "line 1: expected base64 of 80 bytes" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tls_ticket_key *keys = (void *)1;
		size_t n = 7;
		char why[128] = "";
		cr_assert_eq(tls_keys_parse(bad[i].text, bad[i].len, &keys, &n, why, sizeof(why)),
			     -1, "case %zu", i);
		cr_assert_str_eq(why, bad[i].why, "case %zu", i);
		cr_assert_null(keys);
		cr_assert_eq(n, 0u);
	}
}
