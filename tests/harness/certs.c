/* Self-signed test certificates made with the OpenSSL API (see harness.h). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Adds the subjectAltName "DNS:a,DNS:b,..." built from a comma list. */
static int cert_add_san(X509 *x, const char *sans)
{
	char *spec = NULL, *list = strdup(sans), *save = NULL, *tok;
	size_t cap = strlen(sans) * 2 + 16;
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int rc = -1;

	spec = calloc(1, cap);
	if (!list || !spec)
		goto out;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (spec[0])
			strcat(spec, ",");
		strcat(spec, "DNS:");
		strcat(spec, tok);
	}
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, spec);
	if (ext && X509_add_ext(x, ext, -1) == 1)
		rc = 0;
	X509_EXTENSION_free(ext);
out:
	free(list);
	free(spec);
	return rc;
}

/* A self-signed certificate for pkey with CN = first SAN. */
static X509 *cert_make(EVP_PKEY *pkey, const char *sans, int days)
{
	X509 *x = X509_new();
	X509_NAME *nm;
	char cn[256];
	size_t cnl = strcspn(sans, ",");

	if (!x)
		return NULL;
	snprintf(cn, sizeof(cn), "%.*s", (int)cnl, sans);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(harness_now_ms() & 0x7fffffff) + 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * days);
	X509_set_pubkey(x, pkey);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	if (cert_add_san(x, sans) != 0 || X509_sign(x, pkey, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int pem_write(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0)
		ok = 0;
	return ok == 1 ? 0 : -1;
}

static int cert_create(const char *name, const char *sans, bool mismatched, int days,
		       struct harness_cert *out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	EVP_PKEY *other = mismatched ? EVP_EC_gen("P-256") : NULL;
	X509 *x = key ? cert_make(key, sans, days) : NULL;
	int rc = -1;

	snprintf(out->cert, sizeof(out->cert), "%s/%.200s.crt", H.dir, name);
	snprintf(out->key, sizeof(out->key), "%s/%.200s.key", H.dir, name);
	if (!x || (mismatched && !other))
		goto out;
	if (pem_write(out->cert, x, NULL) == 0 &&
	    pem_write(out->key, NULL, mismatched ? other : key) == 0)
		rc = 0;
out:
	if (rc != 0)
		harness_log("cannot create certificate %s", name);
	X509_free(x);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return rc;
}

int harness_cert_create(const char *name, const char *sans, struct harness_cert *out)
{
	return cert_create(name, sans, false, 30, out);
}

int harness_cert_create_days(const char *name, const char *sans, int days, struct harness_cert *out)
{
	return cert_create(name, sans, false, days, out);
}

int harness_cert_create_mismatched(const char *name, const char *sans, struct harness_cert *out)
{
	return cert_create(name, sans, true, 30, out);
}
