/* What a full handshake costs beyond the cryptography: a frontend with one certificate and no
 * client CA has nothing to choose and nothing to build, so no handshake may spend time
 * matching the SNI against certificate names or building a certificate chain. The two
 * OpenSSL functions that do that work are counted here (this executable's copies take the
 * place of libcrypto's for the proxy's code and for libssl). */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tlsplice/tls.h"

static int check_host_calls, verify_calls;

int X509_check_host(X509 *x, const char *chk, size_t chklen, unsigned int flags, char **peername)
{
	static int (*real)(X509 *, const char *, size_t, unsigned int, char **);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "X509_check_host");
	check_host_calls++;
	return real(x, chk, chklen, flags, peername);
}

int X509_verify_cert(X509_STORE_CTX *ctx)
{
	static int (*real)(X509_STORE_CTX *);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "X509_verify_cert");
	verify_calls++;
	return real(ctx);
}

/* A self-signed P-256 certificate for demo.test with its key, in one PEM file at path. */
static void make_cert(const char *path)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	cr_assert(key && x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"demo.test", -1,
				   -1, 0);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:demo.test");
	cr_assert(san && X509_add_ext(x, san, -1));
	X509_EXTENSION_free(san);
	cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	cr_assert(PEM_write_X509(f, x) && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

/* The client takes any certificate without building a chain: only the server's calls count. */
static int accept_any(X509_STORE_CTX *ctx, void *arg)
{
	return 1;
}

/* Runs a whole TLS 1.3 handshake with SNI between a client and the frontend's SSL. */
static void handshake(struct tls_frontend *t)
{
	int fds[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
	SSL *srv = tls_accept(t, fds[0]);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_cert_verify_callback(cctx, accept_any, NULL);
	SSL *cli = SSL_new(cctx);
	cr_assert(srv && cli);
	SSL_set_fd(cli, fds[1]);
	SSL_set_tlsext_host_name(cli, "demo.test");
	SSL_set_connect_state(cli);
	int done = 0;
	for (int i = 0; i < 100 && done != 3; i++) {
		if (!(done & 1) && SSL_do_handshake(cli) == 1)
			done |= 1;
		if (!(done & 2) && SSL_do_handshake(srv) == 1)
			done |= 2;
	}
	cr_assert_eq(done, 3, "handshake did not complete: %s",
		     ERR_error_string(ERR_get_error(), NULL));
	SSL_free(cli);
	SSL_CTX_free(cctx);
	SSL_free(srv);
	close(fds[0]);
	close(fds[1]);
}

Test(tls_cost, one_certificate_no_client_ca_does_no_per_handshake_certificate_work)
{
	char path[] = "/tmp/tlsplice-cost-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	make_cert(path);
	signal(SIGPIPE, SIG_IGN);
	struct cfg_cert cert = { .cert_path = path, .key_path = path, .line = 5 };
	struct config cfg = { .path = (char *)"f.ini" };
	struct cfg_frontend fe = { .name = (char *)"web",
				   .line = 3,
				   .certs = &cert,
				   .ncerts = 1,
				   .tls_min_version = TLS1_3_VERSION,
				   .tls_max_version = TLS1_3_VERSION };
	struct errlist errs;
	errlist_init(&errs);
	struct tls_frontend *t = tls_frontend_create(&cfg, &fe, false, &errs);
	unlink(path);
	cr_assert_not_null(t);
	errlist_finish(&errs);
	check_host_calls = verify_calls = 0;
	handshake(t);
	cr_expect_eq(check_host_calls, 0, "SNI matched against the only certificate %d time(s)",
		     check_host_calls);
	cr_expect_eq(verify_calls, 0, "certificate chain built %d time(s) per handshake",
		     verify_calls);
	tls_frontend_destroy(t);
}
