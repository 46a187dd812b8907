/* A test PKI: CAs, client certificates and CRLs (see pki.h). */
#include "pki.h"

#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "internal.h"

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A certificate for key with CN = cn, signed by issuer (NULL: by itself). */
static X509 *cert_issue(EVP_PKEY *key, const char *cn, long serial, const struct pki_ca *issuer,
			bool ca)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509 *by = issuer ? issuer->cert : x;
	X509_set_issuer_name(x, X509_get_subject_name(by));
	int ok = add_ext(x, by, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE") == 0 &&
		 add_ext(x, by, NID_key_usage,
			 ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") == 0 &&
		 (ca || add_ext(x, by, NID_ext_key_usage, "clientAuth") == 0) &&
		 X509_sign(x, issuer ? issuer->key : key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int pem_append(const char *path, const char *mode, X509 *x, EVP_PKEY *k, X509_CRL *crl)
{
	FILE *f = fopen(path, mode);
	if (!f)
		return -1;
	int ok = x     ? PEM_write_X509(f, x)
		 : crl ? PEM_write_X509_CRL(f, crl)
		       : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0)
		ok = 0;
	return ok == 1 ? 0 : -1;
}

int pki_ca_create(struct pki_ca *ca, const char *name, const struct pki_ca *issuer, long serial)
{
	memset(ca, 0, sizeof(*ca));
	snprintf(ca->path, sizeof(ca->path), "%s/%.200s.crt", H.dir, name);
	ca->key = EVP_EC_gen("P-256");
	ca->cert = ca->key ? cert_issue(ca->key, name, serial, issuer, true) : NULL;
	if (!ca->cert || pem_append(ca->path, "w", ca->cert, NULL, NULL) < 0) {
		harness_log("cannot create CA %s", name);
		return -1;
	}
	return 0;
}

int pki_client_create(const struct pki_ca *ca, const char *name, long serial,
		      struct harness_cert *out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = key ? cert_issue(key, name, serial, ca, false) : NULL;
	bool root = X509_check_issued(ca->cert, ca->cert) == X509_V_OK;
	int rc = -1;
	snprintf(out->cert, sizeof(out->cert), "%s/%.200s.crt", H.dir, name);
	snprintf(out->key, sizeof(out->key), "%s/%.200s.key", H.dir, name);
	if (x && pem_append(out->cert, "w", x, NULL, NULL) == 0 &&
	    (root || pem_append(out->cert, "a", ca->cert, NULL, NULL) == 0) &&
	    pem_append(out->key, "w", NULL, key, NULL) == 0)
		rc = 0;
	if (rc < 0)
		harness_log("cannot create client certificate %s", name);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static int crl_revoke(X509_CRL *crl, long serial)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	ASN1_TIME *t = X509_gmtime_adj(NULL, -3600);
	int ok = r && s && t && ASN1_INTEGER_set(s, serial) &&
		 X509_REVOKED_set_serialNumber(r, s) && X509_REVOKED_set_revocationDate(r, t) &&
		 X509_CRL_add0_revoked(crl, r);
	ASN1_INTEGER_free(s);
	ASN1_TIME_free(t);
	if (!ok)
		X509_REVOKED_free(r);
	return ok ? 0 : -1;
}

int pki_crl_append(const struct pki_ca *ca, const char *path, const long *serials, size_t n)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = X509_gmtime_adj(NULL, -3600), *next = X509_gmtime_adj(NULL, 86400);
	int rc = -1;
	if (!crl || !last || !next || !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (crl_revoke(crl, serials[i]) < 0)
			goto out;
	if (X509_CRL_sort(crl) && X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0 &&
	    pem_append(path, "a", NULL, NULL, crl) == 0)
		rc = 0;
out:
	if (rc < 0)
		harness_log("cannot write a CRL to %s", path);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	return rc;
}

void pki_ca_finish(struct pki_ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	ca->cert = NULL;
	ca->key = NULL;
}
