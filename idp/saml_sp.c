/*
 * The SAML 2.0 service provider on Lasso: one read-only LassoServer per
 * configured provider (this SP's metadata, key and certificate, and the
 * IdP's metadata), shared across threads; one LassoLogin per request.
 *
 * Lasso builds and signs the messages. What Lasso leaves to the application
 * in the SSO path (conditions, audience, subject confirmation, replay, the
 * strength of signature algorithms) fedbridge checks itself when it reads a
 * response.
 */
#include "fb_idp.h"
#include "oidc_int.h"
#include "saml_int.h"
#include "saml_sp_int.h"

#include <lasso/lasso.h>
#include <lasso/xml/saml-2.0/saml2_name_id.h>
#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_logout_request.h>
#include <lasso/xml/saml-2.0/samlp2_status.h>
#include <lasso/xml/saml-2.0/samlp2_status_code.h>
#include <lasso/xml/saml-2.0/samlp2_status_response.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmlsec/xmldsig.h>
#include <zlib.h>
#include <xmlsec/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define SAML_PEM_MAX 65536
#define SAML_METADATA_MAX ((size_t)1 << 20)
#define HTTP_OK 200
/* After a failed metadata fetch: soon at start, then a minute doubling to 15 minutes. */
#define SAML_METADATA_RETRY_FIRST 10
#define SAML_METADATA_RETRY 60
#define SAML_METADATA_RETRY_MAX 900

static pthread_once_t lasso_once = PTHREAD_ONCE_INIT;
static fb_rc lasso_status = FB_ERR_INTERNAL;

/* Lasso reports through GLib's log: into fedbridge's, at debug level (callers report errors). */
static void
lasso_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer arg)
{
	(void)level;
	(void)arg;
	fb_log(FB_LOG_DEBUG, "%s: %s", domain ? domain : "lasso", msg);
}

static void
lasso_start(void)
{
	(void)g_log_set_handler(
	    "Lasso", (GLogLevelFlags)(G_LOG_LEVEL_MASK & ~G_LOG_LEVEL_ERROR), lasso_log, NULL);
	lasso_status = lasso_init() == 0 ? FB_OK : FB_ERR_INTERNAL;
}

fb_rc
fb_saml_init(struct fb_err *err)
{
	/* LASSO_FLAG can switch signature verification off: never run with it set. */
	if (getenv("LASSO_FLAG") != NULL)
		return FB_ERR_SET(err, FB_ERR_CONFIG,
		    "the environment sets LASSO_FLAG, which can disable SAML signature checks: "
		    "unset it");
	(void)pthread_once(&lasso_once, lasso_start);
	if (lasso_status != FB_OK)
		return FB_ERR_SET(err, FB_ERR_INTERNAL, "lasso_init failed");
	return FB_OK;
}

/* The PEM body of a certificate, without armour or line breaks (for KeyDescriptor). */
static char *
cert_base64(const char *pem)
{
	const char *b = strstr(pem, "-----BEGIN CERTIFICATE-----"), *e;
	struct fb_buf out;

	if (b == NULL || (e = strstr(b, "-----END CERTIFICATE-----")) == NULL)
		return NULL;
	b += sizeof("-----BEGIN CERTIFICATE-----") - 1;
	fb_buf_init(&out, SAML_PEM_MAX);
	for (; b < e; b++)
		if (*b != '\n' && *b != '\r' && *b != ' ' && fb_buf_append(&out, b, 1) != FB_OK)
			break;
	if (out.data == NULL || fb_buf_append(&out, "", 0) != FB_OK) {
		fb_buf_free(&out);
		return NULL;
	}
	return out.data;
}

/* The SP's private key, by fb_secret_read's rules; handed to Lasso and xmlsec from memory. */
static fb_rc
read_key(const char *path, char **out, struct fb_err *err)
{
	size_t len = 0;

	return fb_secret_read(path, FB_SECRET_PEM_MAX, out, &len, err);
}

static fb_rc
sp_metadata(struct fb_saml_sp *sp, const char *cert_pem, struct fb_err *err)
{
	char *b64 = cert_base64(cert_pem);
	struct fb_buf m;

	if (b64 == NULL)
		return FB_ERR_SET(err, FB_ERR_CONFIG, "%s: not a PEM certificate", sp->p->sp_cert);
	fb_buf_init(&m, 262144);
	(void)fb_buf_printf(&m,
	    "<?xml version=\"1.0\"?>\n"
	    "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" "
	    "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"%s\">\n"
	    "  <md:SPSSODescriptor AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\" "
	    "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n",
	    sp->entity_id);
	for (int use = 0; use < 2; use++)
		(void)fb_buf_printf(&m,
		    "    <md:KeyDescriptor use=\"%s\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>"
		    "%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n",
		    use ? "encryption" : "signing", b64);
	(void)fb_buf_printf(&m,
	    "    <md:SingleLogoutService "
	    "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"%s\"/>\n"
	    "    <md:SingleLogoutService "
	    "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:SOAP\" Location=\"%s\"/>\n"
	    "    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	    "</md:NameIDFormat>\n"
	    "    <md:AssertionConsumerService index=\"0\" isDefault=\"true\" "
	    "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"%s\"/>\n"
	    "  </md:SPSSODescriptor>\n</md:EntityDescriptor>\n",
	    sp->slo_url, sp->slo_url, sp->acs_url);
	free(b64);
	if (m.data == NULL) {
		fb_buf_free(&m);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	sp->metadata = m.data;
	return FB_OK;
}

/* The IdP's metadata: a file, or an https URL fetched now. */
static bool
metadata_is_url(const struct fb_conf_provider *p)
{
	return strncmp(p->idp_metadata, "https://", 8) == 0 ||
	    strncmp(p->idp_metadata, "http://", 7) == 0;
}

static fb_rc
idp_metadata(const struct fb_conf_provider *p, char **out, struct fb_err *err)
{
	struct oidc_http_reply r = { 0 };
	size_t len = 0;
	fb_rc rc;

	if (!metadata_is_url(p))
		return fb_file_read(p->idp_metadata, SAML_METADATA_MAX, out, &len, err);
	/* The configuration names this URL: loopback http where it says so. */
	static const struct fb_url_rule configured = { .loopback_http = true };

	/* An outage (FB_ERR_IO) or an answer that stays wrong (FB_ERR_CONFIG): oidc_int.h. */
	if ((rc = oidc_http_get(p->idp_metadata, &configured, NULL, 0, &r, err)) != FB_OK)
		return oidc_refusal_class(rc);
	if (r.status != HTTP_OK) {
		free(r.body);
		rc = oidc_status_class(r.status);
		return FB_ERR_SET(err, rc, "%s: HTTP status %ld%s", p->idp_metadata, r.status,
		    rc == FB_ERR_CONFIG
		        ? " (the IdP is misconfigured: retrying will not help until "
		          "it is fixed)"
		        : "");
	}
	*out = r.body;
	return FB_OK;
}

static xmlNode *
first_child(const xmlNode *n, const char *ns, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && fb_saml_xml_is(c, ns, name))
			return c;
	return NULL;
}

static const xmlNode *
find_idpsso(const xmlNode *n, size_t *found)
{
	const xmlNode *hit = NULL, *sub;

	for (const xmlNode *c = n; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (fb_saml_xml_is(c, "urn:oasis:names:tc:SAML:2.0:metadata", "IDPSSODescriptor")) {
			(*found)++;
			hit = c;
		}
		if ((sub = find_idpsso(c->children, found)) != NULL)
			hit = sub;
	}
	return hit;
}

/*
 * Lasso 2.8 dereferences a role descriptor's protocolSupportEnumeration
 * without checking that it is there (found by fuzz_saml_metadata): every
 * role descriptor must carry one before Lasso sees the document.
 */
static bool
roles_have_protocols(const xmlNode *n)
{
	static const char md[] = "urn:oasis:names:tc:SAML:2.0:metadata";
	static const char *const roles[] = { "RoleDescriptor", "IDPSSODescriptor",
		"SPSSODescriptor", "AuthnAuthorityDescriptor", "AttributeAuthorityDescriptor",
		"PDPDescriptor" };

	for (const xmlNode *c = n; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
			xmlChar *v;
			bool ok;
			if (!fb_saml_xml_is(c, md, roles[i]))
				continue;
			v = xmlGetNoNsProp(
			    (xmlNode *)c, (const xmlChar *)"protocolSupportEnumeration");
			ok = v != NULL && v[0] != '\0';
			xmlFree(v);
			if (!ok)
				return false;
		}
		if (!roles_have_protocols(c->children))
			return false;
	}
	return true;
}

/* xs:duration as cacheDuration uses it (PnDTnHnMnS, no years or months); false otherwise. */
static bool
saml_duration(const char *s, int64_t *out)
{
	int64_t total = 0, v;
	bool time = false, any = false;

	if (s == NULL || *s++ != 'P')
		return false;
	while (*s != '\0') {
		if (*s == 'T') {
			time = true;
			s++;
			continue;
		}
		if (*s < '0' || *s > '9')
			return false;
		for (v = 0; *s >= '0' && *s <= '9'; s++)
			if ((v = v * 10 + (*s - '0')) > 100000000)
				return false;
		switch (*s++) {
		case 'D':
			total += v * 86400;
			break;
		case 'H':
			total += time ? v * 3600 : -1;
			break;
		case 'M':
			if (!time)
				return false; /* months have no fixed length */
			total += v * 60;
			break;
		case 'S':
			total += time ? v : -1;
			break;
		default:
			return false;
		}
		if (total < 0)
			return false;
		any = true;
	}
	*out = total;
	return any;
}

/* An enveloped signature of the metadata's root by the configured metadata certificate. */
static bool
metadata_signed(const struct fb_saml_sp *sp, xmlDoc *doc, xmlNode *root)
{
	static const char ds[] = "http://www.w3.org/2000/09/xmldsig#";
	xmlNode *sig = first_child(root, ds, "Signature");
	xmlSecDSigCtxPtr ctx;
	xmlAttr *id = xmlHasNsProp(root, (const xmlChar *)"ID", NULL);
	bool ok;

	if (sig == NULL)
		return false;
	if (id != NULL) {
		xmlChar *v = xmlNodeListGetString(doc, id->children, 1);
		if (v != NULL)
			(void)xmlAddID(NULL, doc, v, id);
		xmlFree(v);
	}
	if ((ctx = xmlSecDSigCtxCreate(NULL)) == NULL)
		return false;
	ctx->signKey = xmlSecKeyDuplicate(sp->metadata_key); /* never a key from KeyInfo */
	ctx->enabledReferenceUris =
	    xmlSecTransformUriTypeSameDocument | xmlSecTransformUriTypeEmpty;
	ok = ctx->signKey != NULL &&
	    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId) >= 0 &&
	    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId) >= 0 &&
	    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id) >= 0 &&
	    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha512Id) >= 0 &&
	    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId) >= 0 &&
	    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id) >= 0 &&
	    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha512Id) >= 0 &&
	    xmlSecDSigCtxVerify(ctx, sig) >= 0 && ctx->status == xmlSecDSigStatusSucceeded &&
	    xmlSecPtrListGetSize(&ctx->signedInfoReferences) == 1;
	xmlSecDSigCtxDestroy(ctx);
	return ok;
}

/*
 * Reads the IdP's metadata into idp: the one IDPSSODescriptor, its entity
 * (*entity, malloc'd), its signing certificates, validUntil (an expired
 * document is refused) and cacheDuration (*cache, 0 when absent), and its
 * signature when idp_metadata_cert is set.
 */
static fb_rc
idp_parse(const struct fb_saml_sp *sp, const char *metadata, int64_t now, struct saml_idp *idp,
    char **entity, int64_t *cache, struct fb_err *err)
{
	static const char md[] = "urn:oasis:names:tc:SAML:2.0:metadata";
	static const char ds[] = "http://www.w3.org/2000/09/xmldsig#";
	const char *src = sp->p->idp_metadata;
	xmlDoc *doc = NULL;
	xmlNode *root;
	const xmlNode *sso;
	xmlChar *v;
	size_t found = 0;
	fb_rc rc;

	*entity = NULL;
	*cache = 0;
	if (metadata == NULL)
		return FB_ERR_SET(err, FB_ERR_CONFIG, "%s: empty", src);
	if ((rc = fb_saml_xml_parse(metadata, strlen(metadata), &doc, err)) != FB_OK)
		return rc;
	root = xmlDocGetRootElement(doc);
	if (sp->metadata_key != NULL && !metadata_signed(sp, doc, root)) {
		xmlFreeDoc(doc);
		return FB_ERR_SET(err, FB_ERR_CONFIG,
		    "%s: not signed by the certificate of idp_metadata_cert", src);
	}
	if ((v = xmlGetNoNsProp(root, (const xmlChar *)"validUntil")) != NULL) {
		int64_t t = 0;
		bool ok = fb_saml_time((const char *)v, &t);
		xmlFree(v);
		if (!ok || t <= now) {
			xmlFreeDoc(doc);
			return FB_ERR_SET(err, FB_ERR_CONFIG, "%s: %s", src,
			    ok ? "the metadata has expired (validUntil)" : "a bad validUntil");
		}
		idp->valid_until = t;
	}
	if ((v = xmlGetNoNsProp(root, (const xmlChar *)"cacheDuration")) != NULL) {
		bool ok = saml_duration((const char *)v, cache);
		xmlFree(v);
		if (!ok) {
			xmlFreeDoc(doc);
			return FB_ERR_SET(err, FB_ERR_CONFIG, "%s: a bad cacheDuration", src);
		}
	}
	if (!roles_have_protocols(root)) {
		xmlFreeDoc(doc);
		return FB_ERR_SET(err, FB_ERR_CONFIG,
		    "%s: a role descriptor without protocolSupportEnumeration", src);
	}
	sso = find_idpsso(root, &found);
	if (found != 1) {
		xmlFreeDoc(doc);
		return FB_ERR_SET(
		    err, FB_ERR_CONFIG, "%s: %zu IDPSSODescriptors, expected one", src, found);
	}
	v = sso->parent ? xmlGetNoNsProp(sso->parent, (const xmlChar *)"entityID") : NULL;
	if (v == NULL || !fb_saml_xml_is(sso->parent, md, "EntityDescriptor") ||
	    (*entity = strdup((const char *)v)) == NULL) {
		xmlFree(v);
		xmlFreeDoc(doc);
		return FB_ERR_SET(
		    err, FB_ERR_CONFIG, "%s: the IdP's EntityDescriptor has no entityID", src);
	}
	xmlFree(v);
	for (xmlNode *c = sso->children; c != NULL && idp->slo_url == NULL; c = c->next) {
		xmlChar *binding, *loc;
		if (c->type != XML_ELEMENT_NODE || !fb_saml_xml_is(c, md, "SingleLogoutService"))
			continue;
		binding = xmlGetNoNsProp(c, (const xmlChar *)"Binding");
		loc = xmlGetNoNsProp(c, (const xmlChar *)"Location");
		if (binding != NULL && loc != NULL &&
		    strcmp((const char *)binding,
		        "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect") == 0 &&
		    (strncmp((const char *)loc, "https://", 8) == 0 ||
		        strncmp((const char *)loc, "http://127.0.0.1", 16) == 0 ||
		        strncmp((const char *)loc, "http://localhost", 16) == 0))
			idp->slo_url = strdup((const char *)loc);
		xmlFree(binding);
		xmlFree(loc);
	}
	for (xmlNode *kd = sso->children; kd != NULL; kd = kd->next) {
		xmlChar *use, *b64;
		xmlNode *cert;
		unsigned char der[16384];
		char clean[22000];
		size_t k = 0;
		int n;
		if (kd->type != XML_ELEMENT_NODE || !fb_saml_xml_is(kd, md, "KeyDescriptor"))
			continue;
		use = xmlGetNoNsProp(kd, (const xmlChar *)"use");
		if (use != NULL && strcmp((const char *)use, "signing") != 0) {
			xmlFree(use);
			continue;
		}
		xmlFree(use);
		cert = first_child(first_child(first_child(kd, ds, "KeyInfo"), ds, "X509Data"), ds,
		    "X509Certificate");
		if (cert == NULL || (b64 = xmlNodeGetContent(cert)) == NULL)
			continue;
		for (const xmlChar *c = b64; *c != '\0' && k < sizeof(clean) - 1; c++)
			if (*c != ' ' && *c != '\n' && *c != '\r' && *c != '\t')
				clean[k++] = (char)*c;
		xmlFree(b64);
		n = k >= 4 && k % 4 == 0 && k / 4 * 3 <= sizeof(der)
		    ? EVP_DecodeBlock(der, (const unsigned char *)clean, (int)k)
		    : -1;
		if (n <= 0 || idp->n_keys == FB_SAML_IDP_KEYS_MAX ||
		    (idp->keys[idp->n_keys] = xmlSecCryptoAppKeyLoadMemory(der,
		         (xmlSecSize)n - (clean[k - 1] == '=') - (clean[k - 2] == '='),
		         xmlSecKeyDataFormatCertDer, NULL, NULL, NULL)) == NULL) {
			xmlFreeDoc(doc);
			return FB_ERR_SET(err, FB_ERR_CONFIG,
			    "%s: a signing certificate that cannot be read (or more than %d)", src,
			    FB_SAML_IDP_KEYS_MAX);
		}
		idp->n_keys++;
	}
	xmlFreeDoc(doc);
	if (idp->n_keys == 0)
		return FB_ERR_SET(
		    err, FB_ERR_CONFIG, "%s: the IdP has no signing certificate", src);
	return FB_OK;
}

void
saml_idp_put(struct saml_idp *idp)
{
	if (idp == NULL || atomic_fetch_sub_explicit(&idp->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (idp->server != NULL)
		lasso_server_destroy(idp->server);
	for (size_t i = 0; i < idp->n_keys; i++)
		xmlSecKeyDestroy(idp->keys[i]);
	free(idp->slo_url);
	free(idp);
}

struct saml_idp *
saml_idp_get(const struct fb_saml_sp *csp)
{
	struct fb_saml_sp *sp = (struct fb_saml_sp *)csp; /* the lock is not part of its value */
	struct saml_idp *idp;

	pthread_mutex_lock(&sp->lock);
	idp = sp->idp;
	if (idp != NULL)
		atomic_fetch_add_explicit(&idp->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&sp->lock);
	return idp;
}

/* A new IdP value from metadata: parsed, checked, and loaded into a Lasso server. */
static fb_rc
idp_build(const struct fb_saml_sp *sp, const char *metadata, int64_t now, struct saml_idp **out,
    int64_t *cache, struct fb_err *err)
{
	struct saml_idp *idp = calloc(1, sizeof(*idp));
	char *entity = NULL;
	fb_rc rc;

	*out = NULL;
	if (idp == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	atomic_init(&idp->refs, 1);
	if ((rc = idp_parse(sp, metadata, now, idp, &entity, cache, err)) != FB_OK)
		goto done;
	if (entity == NULL) { /* idp_parse sets it whenever it succeeds */
		rc = FB_ERR_SET(err, FB_ERR_INTERNAL, "no entityID");
		goto done;
	}
	if (sp->idp_entity_id != NULL && strcmp(entity, sp->idp_entity_id) != 0) {
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "%s: the IdP's entityID changed from %s to %s",
		    sp->p->idp_metadata, sp->idp_entity_id, entity);
		goto done;
	}
	/* No certificate for Lasso: the IdP knows it from our metadata, and with one Lasso
	 * asks xmlsec to read it as a file name first, which leaks a BIO per signed
	 * message in xmlsec 1.2.37 (xmlSecOpenSSLAppKeyCertLoad). */
	idp->server = lasso_server_new_from_buffers(sp->metadata, sp->key_pem, NULL, NULL);
	if (idp->server == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "Lasso refused the SP key or certificate");
		goto done;
	}
	/* The SP key decrypts what the IdP encrypts to the certificate of our metadata. */
	if (lasso_server_set_encryption_private_key_with_password(idp->server, sp->key_pem, NULL) !=
	    0) {
		rc = FB_ERR_SET(
		    err, FB_ERR_CONFIG, "%s: a private key Lasso cannot use", sp->p->sp_key);
		goto done;
	}
	/* Requests are signed with RSA-SHA256 (Lasso's default is RSA-SHA1). */
	idp->server->signature_method = LASSO_SIGNATURE_METHOD_RSA_SHA256;
	if (lasso_server_add_provider_from_buffer(
	        idp->server, LASSO_PROVIDER_ROLE_IDP, metadata, NULL, NULL) != 0 ||
	    lasso_server_get_provider(idp->server, entity) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "%s: not SAML 2.0 IdP metadata Lasso can load",
		    sp->p->idp_metadata);
		goto done;
	}
	*out = idp;
	idp = NULL;
done:
	saml_idp_put(idp);
	if (rc == FB_OK && sp->idp_entity_id == NULL)
		((struct fb_saml_sp *)sp)->idp_entity_id = entity; /* the first load fixes it */
	else
		free(entity);
	return rc;
}

/* Refetch interval from cacheDuration, within bounds (default an hour). */
static int64_t
refresh_interval(int64_t cache)
{
	return cache <= 0 ? 3600 : cache < 60 ? 60 : cache > 86400 ? 86400 : cache;
}

fb_rc
fb_saml_sp_refresh(struct fb_saml_sp *sp, int64_t now, bool *changed, struct fb_err *err)
{
	struct saml_idp *fresh = NULL, *old;
	char *text = NULL;
	int64_t due, cache = 0;
	fb_rc rc;

	*changed = false;
	pthread_mutex_lock(&sp->lock);
	due = sp->refresh_at;
	pthread_mutex_unlock(&sp->lock);
	if (due == 0 || now < due)
		return FB_OK;
	if ((rc = idp_metadata(sp->p, &text, err)) == FB_OK)
		rc = idp_build(sp, text, now, &fresh, &cache, err);
	free(text);
	pthread_mutex_lock(&sp->lock);
	if (rc != FB_OK && sp->idp == NULL) {
		sp->missing_rc = rc;
		(void)snprintf(sp->missing_msg, sizeof(sp->missing_msg), "%s", err->msg);
	}
	if (rc != FB_OK) {
		/* Keep the last good metadata; try again, later each time it fails. */
		sp->refresh_at = now +
		    fb_backoff_delay(SAML_METADATA_RETRY, SAML_METADATA_RETRY_MAX, sp->failing);
		sp->failing++;
		pthread_mutex_unlock(&sp->lock);
		fb_err_prefix(
		    err, "provider %s: metadata refresh (the last good one stays)", sp->p->name);
		return rc;
	}
	old = sp->idp;
	sp->idp = fresh;
	sp->refresh_at = now + refresh_interval(cache);
	sp->failing = 0;
	pthread_mutex_unlock(&sp->lock);
	saml_idp_put(old);
	*changed = true;
	return FB_OK;
}

void
fb_saml_sp_free(struct fb_saml_sp *sp)
{
	if (sp == NULL)
		return;
	saml_idp_put(sp->idp);
	if (sp->sp_key != NULL)
		xmlSecKeyDestroy(sp->sp_key);
	if (sp->metadata_key != NULL)
		xmlSecKeyDestroy(sp->metadata_key);
	fb_secret_free(sp->key_pem);
	free(sp->cert_pem);
	free(sp->entity_id);
	free(sp->acs_url);
	free(sp->slo_url);
	free(sp->idp_entity_id);
	free(sp->metadata);
	pthread_mutex_destroy(&sp->lock);
	free(sp);
}

fb_rc
fb_saml_sp_new(const struct fb_conf_provider *p, const char *public_url, struct fb_saml_sp **out,
    bool *unreachable, struct fb_err *err)
{
	struct fb_saml_sp *sp;
	char *idp = NULL, *mcert = NULL;
	size_t len = 0;
	int64_t now = (int64_t)time(NULL), cache = 0;
	fb_rc rc;

	*out = NULL;
	*unreachable = false;
	if ((rc = fb_saml_init(err)) != FB_OK)
		return rc;
	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&sp->lock, NULL);
	sp->p = p;
	if (asprintf(&sp->entity_id, "%s/saml/metadata/%s", public_url, p->name) < 0 ||
	    asprintf(&sp->acs_url, "%s/saml/acs/%s", public_url, p->name) < 0 ||
	    asprintf(&sp->slo_url, "%s/saml/slo/%s", public_url, p->name) < 0) {
		fb_saml_sp_free(sp);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	if ((rc = fb_file_read(p->sp_cert, SAML_PEM_MAX, &sp->cert_pem, &len, err)) != FB_OK ||
	    (rc = read_key(p->sp_key, &sp->key_pem, err)) != FB_OK ||
	    (rc = sp_metadata(sp, sp->cert_pem, err)) != FB_OK)
		goto done;
	if (sp->key_pem == NULL || sp->cert_pem == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "empty SP key or certificate");
		goto done;
	}
	sp->sp_key = xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)sp->key_pem,
	    (xmlSecSize)strlen(sp->key_pem), xmlSecKeyDataFormatPem, NULL, NULL, NULL);
	if (sp->sp_key == NULL) {
		rc = FB_ERR_SET(
		    err, FB_ERR_CONFIG, "%s: not a private key xmlsec can use", p->sp_key);
		goto done;
	}
	if (p->idp_metadata_cert != NULL) {
		if ((rc = fb_file_read(p->idp_metadata_cert, SAML_PEM_MAX, &mcert, &len, err)) !=
		    FB_OK)
			goto done;
		sp->metadata_key = xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)mcert,
		    (xmlSecSize)len, xmlSecKeyDataFormatCertPem, NULL, NULL, NULL);
		if (sp->metadata_key == NULL) {
			rc = FB_ERR_SET(
			    err, FB_ERR_CONFIG, "%s: not a PEM certificate", p->idp_metadata_cert);
			goto done;
		}
	}
	if ((rc = idp_metadata(p, &idp, err)) == FB_OK)
		rc = idp_build(sp, idp, now, &sp->idp, &cache, err);
	if ((rc == FB_ERR_IO || rc == FB_ERR_CONFIG) && metadata_is_url(p)) {
		/* What an IdP publishes, or that it cannot be reached now, must not keep the
		 * bridge from starting: its logins answer "unavailable" (or "misconfigured")
		 * until good metadata comes, tried again with backoff. Wrong metadata in a
		 * file is the admin's: that fails here. */
		sp->refresh_at = now +
		    fb_backoff_delay(
		        SAML_METADATA_RETRY_FIRST, SAML_METADATA_RETRY_MAX, sp->failing++);
		*unreachable = true;
		fb_err_prefix(err, "provider %s: IdP metadata", p->name);
		sp->missing_rc = rc;
		(void)snprintf(sp->missing_msg, sizeof(sp->missing_msg), "%s", err->msg);
		rc = FB_OK;
		goto done;
	}
	if (rc != FB_OK)
		goto done;
	/* Metadata is read again when its cacheDuration says (an hour by default): a URL's
	 * publisher, or the admin who replaces the file, rotates keys without a reload. */
	sp->refresh_at = now + refresh_interval(cache);
done:
	free(idp);
	free(mcert);
	if (rc != FB_OK) {
		fb_err_prefix(err, "provider %s", p->name);
		fb_saml_sp_free(sp);
		return rc;
	}
	*out = sp;
	return FB_OK;
}

fb_rc
fb_saml_sp_status(const struct fb_saml_sp *csp, char *why, size_t size)
{
	struct fb_saml_sp *sp = (struct fb_saml_sp *)csp; /* the lock is not part of its value */
	fb_rc rc;

	pthread_mutex_lock(&sp->lock);
	rc = sp->idp != NULL ? FB_OK : sp->missing_rc;
	if (why != NULL && size > 0)
		(void)snprintf(why, size, "%s", rc != FB_OK ? sp->missing_msg : "");
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

int64_t
fb_saml_sp_next_refresh(const struct fb_saml_sp *csp)
{
	struct fb_saml_sp *sp = (struct fb_saml_sp *)csp;
	int64_t at;

	pthread_mutex_lock(&sp->lock);
	at = sp->refresh_at;
	pthread_mutex_unlock(&sp->lock);
	return at;
}

/* The error of a request made while the IdP's metadata is missing: FB_ERR_IO or FB_ERR_CONFIG. */
static fb_rc
missing_metadata(const struct fb_saml_sp *sp, struct fb_err *err)
{
	char why[FB_ERR_MSG_MAX];
	fb_rc rc = fb_saml_sp_status(sp, why, sizeof(why));

	return FB_ERR_SET(err, rc == FB_ERR_CONFIG ? FB_ERR_CONFIG : FB_ERR_IO,
	    "the IdP's metadata has not been fetched yet: %s", why);
}

bool
fb_saml_sp_ready(const struct fb_saml_sp *csp)
{
	struct saml_idp *idp = saml_idp_get(csp);

	saml_idp_put(idp);
	return idp != NULL;
}

const char *
fb_saml_sp_metadata(const struct fb_saml_sp *sp)
{
	return sp->metadata;
}

const char *
fb_saml_sp_entity_id(const struct fb_saml_sp *sp)
{
	return sp->entity_id;
}

const char *
fb_saml_sp_idp_entity_id(const struct fb_saml_sp *sp)
{
	return sp->idp_entity_id;
}

const struct fb_conf_provider *
fb_saml_sp_provider(const struct fb_saml_sp *sp)
{
	return sp->p;
}

fb_rc
fb_saml_sp_authn_request(const struct fb_saml_sp *sp, const char *relay_state, char **url,
    char **request_id, struct fb_err *err)
{
	struct saml_idp *idp = saml_idp_get(sp);
	LassoLogin *login;
	LassoSamlp2AuthnRequest *req;
	fb_rc rc = FB_OK;

	*url = *request_id = NULL;
	if (idp == NULL)
		return missing_metadata(sp, err);
	if ((login = lasso_login_new(idp->server)) == NULL) {
		saml_idp_put(idp);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	if (lasso_login_init_authn_request(login, sp->idp_entity_id, LASSO_HTTP_METHOD_REDIRECT) !=
	        0 ||
	    !LASSO_IS_SAMLP2_AUTHN_REQUEST(LASSO_PROFILE(login)->request)) {
		rc = FB_ERR_SET(err, FB_ERR_INTERNAL, "Lasso cannot start an AuthnRequest");
		goto done;
	}
	req = LASSO_SAMLP2_AUTHN_REQUEST(LASSO_PROFILE(login)->request);
	g_free(req->ProtocolBinding);
	req->ProtocolBinding = g_strdup(LASSO_SAML2_METADATA_BINDING_POST);
	if (req->NameIDPolicy != NULL) {
		g_free(req->NameIDPolicy->Format);
		req->NameIDPolicy->Format = g_strdup(LASSO_SAML2_NAME_IDENTIFIER_FORMAT_PERSISTENT);
		req->NameIDPolicy->AllowCreate = TRUE;
	}
	if (relay_state != NULL)
		LASSO_PROFILE(login)->msg_relayState = g_strdup(relay_state);
	if (lasso_login_build_authn_request_msg(login) != 0 ||
	    LASSO_PROFILE(login)->msg_url == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_INTERNAL, "Lasso cannot build the AuthnRequest");
		goto done;
	}
	if ((*url = strdup(LASSO_PROFILE(login)->msg_url)) == NULL ||
	    (*request_id = strdup(LASSO_SAMLP2_REQUEST_ABSTRACT(req)->ID)) == NULL) {
		free(*url);
		*url = NULL;
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
done:
	lasso_login_destroy(login);
	saml_idp_put(idp);
	return rc;
}

/* ---- single logout initiated by the IdP ---- */

void
saml_logout_response_success(LassoLogout *logout)
{
	LassoNode *r = LASSO_PROFILE(logout)->response;
	LassoSamlp2StatusResponse *sr;
	LassoSamlp2StatusCode *code;

	if (!LASSO_IS_SAMLP2_STATUS_RESPONSE(r))
		return;
	sr = LASSO_SAMLP2_STATUS_RESPONSE(r);
	if (sr->Status == NULL || (code = sr->Status->StatusCode) == NULL)
		return;
	g_free(code->Value);
	code->Value = g_strdup(LASSO_SAML2_STATUS_CODE_SUCCESS);
	if (code->StatusCode != NULL) {
		g_object_unref(code->StatusCode);
		code->StatusCode = NULL;
	}
	g_free(sr->Status->StatusMessage);
	sr->Status->StatusMessage = NULL;
}

void
fb_saml_logout_clear(struct fb_saml_logout *l)
{
	free(l->nameid);
	free(l->session_index);
	free(l->response_url);
	free(l->request_id);
	memset(l, 0, sizeof(*l));
}

/* The query has a parameter named name (an HTTP-Redirect query: name=value joined by '&'). */
static bool
query_has(const char *query, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = query;; p++) {
		if (strncmp(p, name, n) == 0 && p[n] == '=')
			return true;
		if ((p = strchr(p, '&')) == NULL)
			return false;
	}
}

fb_rc
fb_saml_sp_logout_request(const struct fb_saml_sp *sp, const char *query, int64_t now, int64_t skew,
    struct fb_saml_logout *out, struct fb_err *err)
{
	struct saml_idp *idp = saml_idp_get(sp);
	LassoLogout *logout;
	LassoSamlp2LogoutRequest *req;
	LassoSamlp2RequestAbstract *ra;
	LassoNode *nid;
	GList *indexes = NULL;
	const char *issuer;
	int rc;
	fb_rc frc = FB_OK;

	memset(out, 0, sizeof(*out));
	if (idp == NULL)
		return missing_metadata(sp, err);
	if (query == NULL || strlen(query) > 65536) {
		saml_idp_put(idp);
		return FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: no or an oversized query");
	}
	if ((logout = lasso_logout_new(idp->server)) == NULL) {
		saml_idp_put(idp);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	/* Lasso calls a query without a signature an "invalid signature algorithm". */
	if (!query_has(query, "Signature")) {
		frc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "saml logout: the LogoutRequest is not signed (no Signature in the query)");
		goto done;
	}
	/* Signed by HTTP-Redirect rules (the query's SigAlg and Signature), by a metadata key. */
	rc = lasso_logout_process_request_msg(logout, (gchar *)query);
	if (rc != 0) {
		frc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: Lasso refuses the request: %s",
		    lasso_strerror(rc));
		goto done;
	}
	if (!LASSO_IS_SAMLP2_LOGOUT_REQUEST(LASSO_PROFILE(logout)->request)) {
		frc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: not a LogoutRequest");
		goto done;
	}
	req = LASSO_SAMLP2_LOGOUT_REQUEST(LASSO_PROFILE(logout)->request);
	ra = LASSO_SAMLP2_REQUEST_ABSTRACT(req);
	issuer = ra->Issuer ? ra->Issuer->content : NULL;
	if (issuer == NULL || strcmp(issuer, sp->idp_entity_id) != 0) {
		frc = FB_ERR_SET(
		    err, FB_ERR_INVALID, "saml logout: Issuer is not %s", sp->idp_entity_id);
		goto done;
	}
	if (ra->Destination == NULL || strcmp(ra->Destination, sp->slo_url) != 0) {
		frc = FB_ERR_SET(
		    err, FB_ERR_INVALID, "saml logout: Destination is not %s", sp->slo_url);
		goto done;
	}
	if ((frc = saml_logout_fresh(
	         ra->ID, ra->IssueInstant, req->NotOnOrAfter, now, skew, out, err)) != FB_OK)
		goto done;
	nid = LASSO_NODE(req->NameID);
	if (!LASSO_IS_SAML2_NAME_ID(nid) || LASSO_SAML2_NAME_ID(nid)->content == NULL) {
		frc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: no NameID");
		goto done;
	}
	indexes = lasso_samlp2_logout_request_get_session_indexes(req);
	if ((out->nameid = strdup(LASSO_SAML2_NAME_ID(nid)->content)) == NULL ||
	    (indexes != NULL &&
	        (out->session_index = strdup((const char *)indexes->data)) == NULL)) {
		frc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	/* Lasso keeps no session here (sessions are in the store): its "no session" is fine. */
	rc = lasso_logout_validate_request(logout);
	if (rc != 0 && rc != LASSO_PROFILE_ERROR_SESSION_NOT_FOUND &&
	    rc != LASSO_PROFILE_ERROR_IDENTITY_NOT_FOUND) {
		frc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: %s", lasso_strerror(rc));
		goto done;
	}
	saml_logout_response_success(logout);
	/* No SingleLogoutService for HTTP-Redirect in the IdP's metadata: nowhere to answer. */
	if (lasso_logout_build_response_msg(logout) == 0 &&
	    LASSO_PROFILE(logout)->msg_url != NULL &&
	    (out->response_url = strdup(LASSO_PROFILE(logout)->msg_url)) == NULL)
		frc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
done:
	if (indexes != NULL)
		g_list_free_full(indexes, g_free);
	lasso_logout_destroy(logout);
	saml_idp_put(idp);
	if (frc != FB_OK)
		fb_saml_logout_clear(out);
	return frc;
}

/* ---- single logout initiated here ---- */

/* Raw DEFLATE (RFC 1951), as the HTTP-Redirect binding wants; *out malloc'd. */
static fb_rc
deflate_raw(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
	z_stream z;
	size_t cap = len + 128;
	int rc;

	memset(&z, 0, sizeof(z));
	if ((*out = malloc(cap)) == NULL)
		return FB_ERR_NOMEM;
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(*out);
		return FB_ERR_INTERNAL;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(*out);
		return FB_ERR_INTERNAL;
	}
	return FB_OK;
}

static fb_rc
b64_urlencoded(struct fb_buf *b, const unsigned char *data, size_t len)
{
	char *enc = malloc(len / 3 * 4 + 8);
	fb_rc rc;

	if (enc == NULL)
		return FB_ERR_NOMEM;
	(void)EVP_EncodeBlock((unsigned char *)enc, data, (int)len);
	rc = oidc_url_encode(b, enc);
	free(enc);
	return rc;
}

fb_rc
fb_saml_sp_logout_url(const struct fb_saml_sp *sp, const char *nameid, const char *session_index,
    const char *relay_state, int64_t now, char **url, struct fb_err *err)
{
	struct saml_idp *idp = saml_idp_get(sp);
	unsigned char rnd[16], *z = NULL, sig[1024];
	char id[40], issued[32], until[32];
	struct fb_buf xml, q;
	size_t zlen = 0, siglen = sizeof(sig);
	EVP_PKEY *key = NULL;
	EVP_MD_CTX *md = NULL;
	BIO *bio = NULL;
	time_t t = (time_t)now, t5 = (time_t)(now + 300);
	struct tm tm;
	fb_rc rc = FB_OK;

	*url = NULL;
	fb_buf_init(&xml, 65536);
	fb_buf_init(&q, 262144);
	if (idp == NULL || idp->slo_url == NULL)
		goto done; /* the IdP has no SingleLogoutService for HTTP-Redirect */
	if (nameid == NULL || fb_random_bytes(rnd, sizeof(rnd)) != FB_OK) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: no NameID or no randomness");
		goto done;
	}
	(void)snprintf(id, sizeof(id), "_");
	for (size_t i = 0; i < sizeof(rnd); i++)
		(void)snprintf(id + 1 + 2 * i, sizeof(id) - 1 - 2 * i, "%02x", rnd[i]);
	(void)strftime(issued, sizeof(issued), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	(void)strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t5, &tm));
	(void)fb_buf_printf(&xml,
	    "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" "
	    "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"%s\" Version=\"2.0\" "
	    "IssueInstant=\"%s\" NotOnOrAfter=\"%s\" Destination=\"",
	    id, issued, until);
	(void)fb_buf_append_markup(&xml, idp->slo_url);
	(void)fb_buf_printf(&xml, "\"><saml:Issuer>");
	(void)fb_buf_append_markup(&xml, sp->entity_id);
	(void)fb_buf_printf(&xml, "</saml:Issuer><saml:NameID>");
	(void)fb_buf_append_markup(&xml, nameid);
	(void)fb_buf_printf(&xml, "</saml:NameID>");
	if (session_index != NULL) {
		(void)fb_buf_printf(&xml, "<samlp:SessionIndex>");
		(void)fb_buf_append_markup(&xml, session_index);
		(void)fb_buf_printf(&xml, "</samlp:SessionIndex>");
	}
	(void)fb_buf_printf(&xml, "</samlp:LogoutRequest>");
	if (xml.data == NULL || deflate_raw(xml.data, xml.len, &z, &zlen) != FB_OK) {
		rc =
		    FB_ERR_SET(err, FB_ERR_INTERNAL, "saml logout: cannot build the LogoutRequest");
		goto done;
	}
	/* HTTP-Redirect binding, 3.4.4.1: the signature covers SAMLRequest, RelayState, SigAlg. */
	(void)fb_buf_printf(&q, "SAMLRequest=");
	if (b64_urlencoded(&q, z, zlen) != FB_OK ||
	    (relay_state != NULL &&
	        (fb_buf_printf(&q, "&RelayState=") != FB_OK ||
	            oidc_url_encode(&q, relay_state) != FB_OK)) ||
	    fb_buf_printf(&q, "&SigAlg=") != FB_OK ||
	    oidc_url_encode(&q, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256") != FB_OK) {
		rc = FB_ERR_SET(err, FB_ERR_LIMIT, "saml logout: the request is too large");
		goto done;
	}
	if ((bio = BIO_new_mem_buf(sp->key_pem, -1)) == NULL ||
	    (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (const unsigned char *)q.data, q.len) != 1) {
		rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "saml logout: cannot sign the LogoutRequest");
		goto done;
	}
	if (fb_buf_printf(&q, "&Signature=") != FB_OK || b64_urlencoded(&q, sig, siglen) != FB_OK ||
	    asprintf(url, "%s%c%s", idp->slo_url, strchr(idp->slo_url, '?') ? '&' : '?', q.data) <
	        0) {
		*url = NULL;
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
done:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	BIO_free(bio);
	free(z);
	fb_buf_free(&xml);
	fb_buf_free(&q);
	saml_idp_put(idp);
	return rc;
}
