/*
 * For the SAML fuzz targets: a throwaway SP key and certificate (RSA 2048,
 * made with OpenSSL at start, never stored in the tree) written to a fresh
 * temporary directory, and a provider configuration pointing at them.
 */
#ifndef FB_FUZZ_SAML_FIXTURE_H
#define FB_FUZZ_SAML_FIXTURE_H

#include "fb_idp.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct saml_fixture {
	char dir[64], key[96], cert[96], metadata[96];
	char *cert_b64; /* the certificate's DER, base64, for metadata */
	struct fb_conf_provider p;
};

static inline void
fixture_write(const char *path, const char *text, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0 || chmod(path, mode) != 0)
		abort();
}

static inline void saml_fixture_remove(struct saml_fixture *fx);

/* The fixture whose files go at exit: libFuzzer and the corpus replay never
 * return to the target, so the throwaway private key is removed by atexit. */
static struct saml_fixture *saml_fixture_at_exit;

static inline void
saml_fixture_cleanup(void)
{
	if (saml_fixture_at_exit != NULL)
		saml_fixture_remove(saml_fixture_at_exit);
	saml_fixture_at_exit = NULL;
}

static inline void
saml_fixture_init(struct saml_fixture *fx)
{
	static bool registered;
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	FILE *f;
	unsigned char *der = NULL;
	int n;
	const char *tmp = getenv("TMPDIR");

	memset(fx, 0, sizeof(*fx));
	if (tmp == NULL || *tmp == '\0' ||
	    strlen(tmp) > sizeof(fx->dir) - sizeof("/fb-fuzz-saml.XXXXXX"))
		tmp = "/tmp";
	(void)snprintf(fx->dir, sizeof(fx->dir), "%s/fb-fuzz-saml.XXXXXX", tmp);
	if (k == NULL || x == NULL || mkdtemp(fx->dir) == NULL)
		abort();
	(void)snprintf(fx->key, sizeof(fx->key), "%s/sp.key", fx->dir);
	(void)snprintf(fx->cert, sizeof(fx->cert), "%s/sp.pem", fx->dir);
	(void)snprintf(fx->metadata, sizeof(fx->metadata), "%s/idp.xml", fx->dir);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(
	    X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)"fz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, k, EVP_sha256()) == 0 || (f = fopen(fx->key, "w")) == NULL ||
	    chmod(fx->key, 0600) != 0 || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) ||
	    fclose(f) != 0 || (f = fopen(fx->cert, "w")) == NULL || !PEM_write_X509(f, x) ||
	    fclose(f) != 0 || (n = i2d_X509(x, &der)) <= 0 ||
	    (fx->cert_b64 = calloc(1, (size_t)n * 2 + 4)) == NULL)
		abort();
	(void)EVP_EncodeBlock((unsigned char *)fx->cert_b64, der, n);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
	fx->p.name = "fz";
	fx->p.type = FB_PROVIDER_SAML;
	fx->p.idp_metadata = fx->metadata;
	fx->p.sp_key = fx->key;
	fx->p.sp_cert = fx->cert;
	if (!registered && atexit(saml_fixture_cleanup) != 0)
		abort();
	registered = true;
	saml_fixture_at_exit = fx;
}

/* Removes the fixture's files and directory. */
static inline void
saml_fixture_remove(struct saml_fixture *fx)
{
	(void)unlink(fx->key);
	(void)unlink(fx->cert);
	(void)unlink(fx->metadata);
	(void)rmdir(fx->dir);
	free(fx->cert_b64);
	fx->cert_b64 = NULL;
	if (saml_fixture_at_exit == fx)
		saml_fixture_at_exit = NULL;
}

/* IdP metadata naming entity with the fixture's certificate as its signing key. */
static inline void
saml_fixture_metadata(struct saml_fixture *fx, const char *entity)
{
	char *xml = NULL;
	int n = asprintf(&xml,
	    "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" "
	    "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"%s\">"
	    "<md:IDPSSODescriptor "
	    "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">"
	    "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s"
	    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
	    "<md:SingleSignOnService "
	    "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" "
	    "Location=\"%s/sso\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
	    entity, fx->cert_b64, entity);

	if (n < 0)
		abort();
	fixture_write(fx->metadata, xml, (size_t)n, 0644);
	free(xml);
}

#endif
