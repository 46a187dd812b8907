/* A small test PKI made with the OpenSSL API: CAs (a root or one signed by another CA),
 * client certificates they sign, and PEM CRLs revoking chosen serials. Files go into the
 * test's temp dir. Single-threaded, per test. */
#ifndef TLSPLICE_TEST_PKI_H
#define TLSPLICE_TEST_PKI_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "harness.h"

struct pki_ca {
	EVP_PKEY *key;
	X509 *cert;
	char path[4096]; /* NAME.crt: the CA certificate PEM */
};

/* A CA named name (its CN too), self-signed if issuer is NULL, else signed by issuer with
 * the given serial. 0 or -1. */
int pki_ca_create(struct pki_ca *ca, const char *name, const struct pki_ca *issuer, long serial);
/* A client certificate (CN = name) with this serial, signed by ca: NAME.crt and NAME.key,
 * where NAME.crt also holds ca's certificate after the leaf if ca is not a root. 0 or -1. */
int pki_client_create(const struct pki_ca *ca, const char *name, long serial,
		      struct harness_cert *out);
/* Appends to file (created if missing) ca's CRL revoking the n serials, valid for a day.
 * 0 or -1. */
int pki_crl_append(const struct pki_ca *ca, const char *path, const long *serials, size_t n);
void pki_ca_finish(struct pki_ca *ca);

#endif
