/*
 * Trust between installations without whitelist files: the export document
 * one installation hands another (who it is, its tenants, issuer, public keys,
 * CA and relay), and the findings `fedbridge check` reports on trusts and keys
 * that load but are not ready (no keys yet, a CA that does not verify the
 * client certificate, certificates and keys close to expiry).
 */
#include "fb_federation.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PEM_FILE_MAX 262144
#define EXPORT_MAX 1048576
#define SOON_DAYS 30
#define PEM_BEGIN "-----BEGIN "
#define PEM_CERT_LABEL "CERTIFICATE"
#define PEM_KEY_LABEL "PRIVATE KEY" /* in every private key block's label */

/* ---- certificates ---- */

static X509 *
cert_read(const char *path, struct fb_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	X509 *x = NULL;

	if (fb_file_read(path, PEM_FILE_MAX, &pem, &len, err) != FB_OK)
		return NULL;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	free(pem);
	ERR_clear_error();
	if (x == NULL)
		FB_ERR_SET(err, FB_ERR_INVALID, "%s holds no PEM certificate", path);
	return x;
}

static int64_t
cert_not_after(const X509 *x)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

static void
cert_subject_cn(const X509 *x, char *out, size_t size)
{
	out[0] = '\0';
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, out, (int)size) < 0)
		out[0] = '\0';
}

fb_rc
fb_cert_info(const char *path, struct fb_cert_info *out, struct fb_err *err)
{
	X509 *x = cert_read(path, err);

	memset(out, 0, sizeof(*out));
	if (x == NULL)
		return err->rc;
	cert_subject_cn(x, out->cn, sizeof(out->cn));
	out->not_after = cert_not_after(x);
	out->is_ca = X509_check_ca(x) != 0;
	X509_free(x);
	return FB_OK;
}

fb_rc
fb_cert_verify_by_ca(const char *ca_path, const char *cert_path, int64_t now, struct fb_err *err)
{
	X509 *ca = cert_read(ca_path, err), *cert = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	fb_rc rc = FB_OK;

	if (ca == NULL || (cert = cert_read(cert_path, err)) == NULL) {
		X509_free(ca);
		return err->rc;
	}
	if ((store = X509_STORE_new()) == NULL || X509_STORE_add_cert(store, ca) != 1 ||
	    (ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	} else {
		X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
		if (X509_verify_cert(ctx) != 1)
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s does not verify %s: %s", ca_path,
			    cert_path,
			    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(cert);
	X509_free(ca);
	return rc;
}

bool
fb_cert_pem_same(const char *pem, const char *path)
{
	struct fb_err err = { 0 };
	X509 *a = cert_read(path, &err), *b = NULL;
	BIO *bio = BIO_new_mem_buf(pem, -1);
	bool same;

	if (bio != NULL)
		b = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	same = a != NULL && b != NULL && X509_cmp(a, b) == 0;
	BIO_free(bio);
	X509_free(a);
	X509_free(b);
	ERR_clear_error();
	return same;
}

/* Frees what one PEM_read_bio gave (the data wiped: a block may be a key) and clears it. */
static void
pem_block_free(char **label, char **header, unsigned char **data, long n)
{
	OPENSSL_free(*label);
	OPENSSL_free(*header);
	if (*data != NULL)
		OPENSSL_cleanse(*data, (size_t)n);
	OPENSSL_free(*data);
	*label = *header = NULL;
	*data = NULL;
}

/* Any PEM block whose label names a private key: "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED
 * PRIVATE KEY", "EC PRIVATE KEY"... Read with OpenSSL's PEM reader, not by hand. */
static bool
pem_holds_private_key(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	char *label = NULL, *header = NULL;
	unsigned char *data = NULL;
	long n = 0;
	bool found = false;

	while (bio != NULL && !found && PEM_read_bio(bio, &label, &header, &data, &n) == 1) {
		found = strstr(label, PEM_KEY_LABEL) != NULL;
		pem_block_free(&label, &header, &data, n);
	}
	BIO_free(bio);
	ERR_clear_error();
	return found;
}

fb_rc
fb_cert_file_keyless(const char *path, struct fb_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	bool key;
	fb_rc rc;

	if ((rc = fb_file_read(path, PEM_FILE_MAX, &pem, &len, err)) != FB_OK)
		return rc;
	key = pem_holds_private_key(pem, len);
	fb_cleanse(pem, len);
	free(pem);
	if (key)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s holds a private key where only certificates belong: keep the key in a "
		    "file of its own (client_key)",
		    path);
	return FB_OK;
}

/* What was written to a memory BIO, as a string (*out malloc'd). */
static fb_rc
mem_bio_text(BIO *mem, char **out, struct fb_err *err)
{
	BUF_MEM *bm = NULL;

	BIO_get_mem_ptr(mem, &bm);
	if (bm == NULL || (*out = fb_strndup(bm->data, bm->length)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	return FB_OK;
}

fb_rc
fb_cert_file_pem(const char *path, char **out, struct fb_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *in = NULL, *mem = NULL;
	X509 *x;
	int n = 0;
	fb_rc rc = FB_OK;

	*out = NULL;
	if ((rc = fb_file_read(path, PEM_FILE_MAX, &pem, &len, err)) != FB_OK)
		return rc;
	if (pem_holds_private_key(pem, len)) {
		fb_cleanse(pem, len);
		free(pem);
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s holds a private key where only certificates belong: it would be "
		    "published; keep the key in a file of its own",
		    path);
	}
	if ((in = BIO_new_mem_buf(pem, (int)len)) == NULL || (mem = BIO_new(BIO_s_mem())) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	while (rc == FB_OK && (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
		if (PEM_write_bio_X509(mem, x) != 1)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	if (rc == FB_OK && n == 0)
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s holds no PEM certificate", path);
	if (rc == FB_OK)
		rc = mem_bio_text(mem, out, err);
	BIO_free(in);
	BIO_free(mem);
	free(pem);
	return rc;
}

/* ---- findings ---- */

static void finding(struct fb_conf_diags *out, const struct fb_conf *conf, const void *field,
    const char *fmt, ...) FB_PRINTF(4, 5);

static void
finding(
    struct fb_conf_diags *out, const struct fb_conf *conf, const void *field, const char *fmt, ...)
{
	char msg[1500];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fb_conf_diag_add(out, conf, fb_conf_pos_of(conf, field), "warning: %s", msg);
}

static void
day_text(int64_t t, char *out, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, size, "%Y-%m-%d", &tm) == 0)
		(void)snprintf(out, size, "%lld", (long long)t);
}

/* A certificate that has expired or will within SOON_DAYS. */
static void
expiry_finding(struct fb_conf_diags *out, const struct fb_conf *conf, const void *field,
    const char *what, const char *path, int64_t now)
{
	struct fb_err err = { 0 };
	struct fb_cert_info ci;
	char day[32];

	if (fb_cert_info(path, &ci, &err) != FB_OK) {
		finding(out, conf, field, "%s: %s", what, err.msg);
		return;
	}
	day_text(ci.not_after, day, sizeof(day));
	if (ci.not_after != 0 && ci.not_after <= now)
		finding(out, conf, field, "%s %s expired on %s", what, path, day);
	else if (ci.not_after != 0 && ci.not_after - now < (int64_t)SOON_DAYS * 86400)
		finding(out, conf, field, "%s %s expires on %s, in %lld days", what, path, day,
		    (long long)((ci.not_after - now) / 86400));
}

static void
trust_findings(struct fb_conf_diags *out, const struct fb_conf *conf,
    const struct fb_conf_tenant *t, const struct fb_conf_trust *tr, int64_t now)
{
	struct fb_err err = { 0 };
	struct fb_cert_info ci;

	if (strcmp(tr->remote, conf->installation.name) == 0)
		return;
	if (tr->keys == NULL && tr->discover == NULL)
		finding(out, conf, &tr->remote,
		    "tenant %s's trust with %s has no keys yet: its users' tokens are refused "
		    "(untrusted_issuer) until %s's trust export is imported (fedbridge trust "
		    "import)",
		    t->id, tr->remote, tr->remote);
	if (tr->ca != NULL && tr->client_cert != NULL &&
	    fb_cert_verify_by_ca(tr->ca, tr->client_cert, now, &err) != FB_OK)
		finding(out, conf, &tr->ca,
		    "the CA of the trust with %s does not verify its client_cert, so %s's relay "
		    "will refuse ours: %s",
		    tr->remote, tr->remote, err.msg);
	if (tr->client_cert != NULL && fb_cert_info(tr->client_cert, &ci, &err) == FB_OK &&
	    ci.cn[0] != '\0' && strcmp(ci.cn, conf->installation.name) != 0)
		finding(out, conf, &tr->client_cert,
		    "client_cert %s has CN=%s, but %s's relay expects this installation's name "
		    "%s (its cert_cn for us)",
		    tr->client_cert, ci.cn, tr->remote, conf->installation.name);
	if (tr->ca != NULL)
		expiry_finding(out, conf, &tr->ca, "CA", tr->ca, now);
	if (tr->client_cert != NULL)
		expiry_finding(
		    out, conf, &tr->client_cert, "client certificate", tr->client_cert, now);
}

/* The keyring's signing key close to its end with no successor published. */
static void
key_findings(struct fb_conf_diags *out, const struct fb_conf *conf, int64_t now)
{
	struct fb_keyring *kr = NULL;
	struct fb_err err = { 0 };
	const struct fb_keyring_entry *active = NULL;
	bool next = false;
	char day[32];

	if (conf->keys.signing_dir == NULL)
		return;
	if (fb_keyring_load(conf->keys.signing_dir, false, &kr, &err) != FB_OK) {
		finding(out, conf, &conf->keys.signing_dir, "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < kr->n; i++) {
		if (kr->v[i].state == FB_KEY_ACTIVE)
			active = &kr->v[i];
		next = next || kr->v[i].state == FB_KEY_NEXT;
	}
	if (active == NULL) {
		finding(out, conf, &conf->keys.signing_dir,
		    "the keyring has no active key: run fedbridge keys rotate");
	} else if (active->exp != 0 && active->exp - now < conf->keys.publish_ahead * 2 && !next) {
		day_text(active->exp, day, sizeof(day));
		finding(out, conf, &conf->keys.signing_dir,
		    "the signing key %s %s on %s and no next key is published: run fedbridge "
		    "keys rotate",
		    active->kid, active->exp <= now ? "expired" : "expires", day);
	}
	fb_keyring_free(kr);
}

void
fb_trust_findings(const struct fb_conf *conf, int64_t now, struct fb_conf_diags *out)
{
	if (conf->installation.ca != NULL)
		expiry_finding(out, conf, &conf->installation.ca, "CA", conf->installation.ca, now);
	key_findings(out, conf, now);
	for (size_t i = 0; i < conf->n_tenants; i++)
		for (size_t k = 0; k < conf->tenants[i].n_trusts; k++)
			trust_findings(
			    out, conf, &conf->tenants[i], &conf->tenants[i].trusts[k], now);
}

/* ---- the export document ---- */

fb_rc
fb_trust_export(const struct fb_conf *conf, const struct fb_federation *fed,
    const char *const *tenants, size_t n_tenants, int64_t now, char **out, struct fb_err *err)
{
	json_t *doc = NULL, *ids = json_array(), *jwks = NULL;
	char *ca = NULL, uri[2200];
	json_error_t jerr;
	fb_rc rc = FB_OK;

	*out = NULL;
	if (conf->installation.ca == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "installation.ca is not set: a remote needs our CA to check our relay");
	/* Re-encoded certificates, not the file: what else it holds stays here. */
	if ((rc = fb_cert_file_pem(conf->installation.ca, &ca, err)) != FB_OK) {
		fb_err_prefix(err, "installation.ca");
		return rc;
	}
	for (size_t i = 0; i < n_tenants; i++)
		if (fb_conf_tenant_find(conf, tenants[i]) == NULL) {
			rc = FB_ERR_SET(
			    err, FB_ERR_NOTFOUND, "no tenant %s in this installation", tenants[i]);
			goto out;
		}
	for (size_t i = 0; ids != NULL && i < (n_tenants ? n_tenants : conf->n_tenants); i++)
		if (json_array_append_new(
		        ids, json_string(n_tenants ? tenants[i] : conf->tenants[i].id)) != 0) {
			rc = FB_ERR_NOMEM;
		}
	jwks = json_loads(fb_federation_jwks(fed), 0, &jerr);
	(void)snprintf(uri, sizeof(uri), "%s/.well-known/jwks.json", conf->installation.public_url);
	if (rc == FB_OK && ids != NULL && jwks != NULL)
		doc = json_pack("{s:i, s:s, s:s, s:O, s:s, s:s, s:O, s:s, s:s, s:I}",
		    "fedbridge_trust", 1, "installation", conf->installation.name, "domain",
		    conf->installation.domain, "tenants", ids, "issuer",
		    conf->installation.public_url, "jwks_uri", uri, "jwks", jwks, "relay",
		    conf->installation.relay, "ca", ca, "exported", (json_int_t)now);
	if (doc == NULL || (*out = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
out:
	json_decref(doc);
	json_decref(ids);
	json_decref(jwks);
	free(ca);
	return rc;
}

static const char *
doc_string(json_t *doc, const char *key, const char *name, struct fb_err *err)
{
	json_t *v = json_object_get(doc, key);

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: \"%s\" must be a non-empty string", name, key);
		return NULL;
	}
	return json_string_value(v);
}

static bool
all_space(const char *s, size_t from, size_t to)
{
	while (from < to && isspace((unsigned char)s[from]))
		from++;
	return from == to;
}

/* One PEM block of an export's "ca": a certificate, written anew into mem. */
static fb_rc
export_ca_block(const char *label, const char *header, const unsigned char *data, long n,
    const char *name, BIO *mem, struct fb_err *err)
{
	const unsigned char *p = data;
	char shown[FB_EXCERPT_MAX];
	X509 *x = NULL;
	fb_rc rc = FB_OK;

	fb_excerpt(label, strlen(label), shown, sizeof(shown));
	if (strstr(label, PEM_KEY_LABEL) != NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"ca\" holds a private key (PEM block %s) where only certificates "
		    "belong: refusing the export",
		    name, shown);
	if (strcmp(label, PEM_CERT_LABEL) != 0)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"ca\" holds a PEM block %s: only certificates belong there", name, shown);
	if (header[0] != '\0')
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"ca\" holds a certificate with PEM headers: only plain certificates "
		    "belong there",
		    name);
	if ((x = d2i_X509(NULL, &p, n)) == NULL || p != data + n)
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"ca\" holds a CERTIFICATE block that is not one X.509 certificate", name);
	else if (PEM_write_bio_X509(mem, x) != 1)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	X509_free(x);
	return rc;
}

/*
 * An export's "ca" is PEM certificates and the whitespace between them, nothing
 * else: no key, no other block, no text. *out gets the certificates re-encoded
 * (malloc'd), so what is written or compared is what was checked. The PEM reader
 * is OpenSSL's; how much of the buffer each read took tells what lay before a block.
 */
static fb_rc
export_ca_certs(const char *pem, const char *name, char **out, struct fb_err *err)
{
	size_t len = strlen(pem), at = 0, start;
	BIO *in = BIO_new_mem_buf(pem, (int)len), *mem = BIO_new(BIO_s_mem());
	char *label = NULL, *header = NULL;
	unsigned char *data = NULL;
	long n = 0;
	size_t blocks = 0;
	fb_rc rc = FB_OK;

	*out = NULL;
	if (in == NULL || mem == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	while (rc == FB_OK && PEM_read_bio(in, &label, &header, &data, &n) == 1) {
		start = at;
		at = len - (size_t)BIO_ctrl_pending(in);
		while (start < at && isspace((unsigned char)pem[start]))
			start++;
		if (strncmp(pem + start, PEM_BEGIN, strlen(PEM_BEGIN)) != 0)
			rc = FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: \"ca\" holds text outside its PEM blocks: only certificates "
			    "belong there",
			    name);
		else
			rc = export_ca_block(label, header, data, n, name, mem, err);
		pem_block_free(&label, &header, &data, n);
		blocks++;
	}
	ERR_clear_error();
	/* What the reader left: nothing but whitespace (not an unfinished or broken block). */
	if (rc == FB_OK && !all_space(pem, at, len))
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"ca\" holds something other than PEM certificates after block %zu", name,
		    blocks);
	if (rc == FB_OK && blocks == 0)
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s: \"ca\" holds no PEM certificate", name);
	if (rc == FB_OK)
		rc = mem_bio_text(mem, out, err);
	BIO_free(in);
	BIO_free(mem);
	return rc;
}

static fb_rc
export_check_ca(const char *pem, const char *name, struct fb_err *err)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	fb_rc rc = FB_OK;

	if (x == NULL)
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s: \"ca\" holds no PEM certificate", name);
	else if (X509_check_ca(x) == 0)
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"ca\" is not a CA certificate (no CA basic constraint)", name);
	X509_free(x);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

fb_rc
fb_trust_export_parse(
    const char *data, size_t len, const char *name, struct fb_trust_export *out, struct fb_err *err)
{
	static const char *const known[] = { "fedbridge_trust", "installation", "domain", "tenants",
		"issuer", "jwks_uri", "jwks", "relay", "ca", "exported", NULL };
	struct fb_verify_keyset *ks = NULL;
	json_error_t jerr;
	json_t *doc, *v, *tenants;
	const char *key;
	char *ca_certs = NULL; /* the "ca" re-encoded; moves into out->ca_pem */
	fb_rc rc = FB_OK;

	memset(out, 0, sizeof(*out));
	if (len > EXPORT_MAX)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: more than %d bytes", name, EXPORT_MAX);
	if ((doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		char reason[FB_EXCERPT_MAX];
		fb_json_reason(jerr.text, reason, sizeof(reason));
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s:%d:%d: %s", name, jerr.line, jerr.column, reason);
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: not a fedbridge trust export", name);
	}
	json_object_foreach(doc, key, v)
	{
		bool ok = false;
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(known[i], key) == 0;
		if (!ok) {
			rc =
			    FB_ERR_SET(err, FB_ERR_INVALID, "%s: unknown key \"%.60s\"", name, key);
			goto out;
		}
	}
	v = json_object_get(doc, "fedbridge_trust");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: not a fedbridge trust export of version 1 (\"fedbridge_trust\": 1)", name);
		goto out;
	}
	const char *inst = doc_string(doc, "installation", name, err);
	const char *domain = doc_string(doc, "domain", name, err);
	const char *issuer = inst && domain ? doc_string(doc, "issuer", name, err) : NULL;
	const char *jwks_uri = issuer ? doc_string(doc, "jwks_uri", name, err) : NULL;
	const char *relay = jwks_uri ? doc_string(doc, "relay", name, err) : NULL;
	const char *ca = relay ? doc_string(doc, "ca", name, err) : NULL;
	if (ca == NULL) {
		rc = err->rc;
		goto out;
	}
	if (!fb_conf_install_name_valid(inst)) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: \"installation\" is not an installation name (1 to 64 letters, digits, "
		    "'_', '.', '-'): %.80s",
		    name, inst);
		goto out;
	}
	tenants = json_object_get(doc, "tenants");
	if (!json_is_array(tenants) || json_array_size(tenants) == 0 ||
	    json_array_size(tenants) > 1000) {
		rc = FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: \"tenants\" must list 1 to 1000 tenantIDs", name);
		goto out;
	}
	for (size_t i = 0; i < json_array_size(tenants); i++) {
		json_t *t = json_array_get(tenants, i);
		if (!json_is_string(t) || !fb_conf_tenant_id_valid(json_string_value(t))) {
			rc = FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: tenants[%zu] is not a tenantID (8 to 16 letters and digits)", name,
			    i);
			goto out;
		}
	}
	if ((rc = export_ca_certs(ca, name, &ca_certs, err)) != FB_OK ||
	    (rc = export_check_ca(ca_certs, name, err)) != FB_OK)
		goto out;
	v = json_object_get(doc, "jwks");
	if (!json_is_object(v)) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s: \"jwks\" must be a JWKS object", name);
		goto out;
	}
	if ((out->jwks = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = fb_verify_keyset_from_jwks(out->jwks, strlen(out->jwks), &ks, err)) != FB_OK) {
		fb_err_prefix(err, "%s: jwks", name);
		goto out;
	}
	if (fb_verify_keyset_count(ks) == 0) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s: \"jwks\" holds no usable key", name);
		goto out;
	}
	out->installation = strdup(inst);
	out->domain = strdup(domain);
	out->issuer = strdup(issuer);
	out->jwks_uri = strdup(jwks_uri);
	out->relay = strdup(relay);
	out->ca_pem = ca_certs;
	ca_certs = NULL;
	out->n_tenants = json_array_size(tenants);
	out->tenants = calloc(out->n_tenants, sizeof(char *));
	for (size_t i = 0; out->tenants != NULL && i < out->n_tenants; i++)
		if ((out->tenants[i] = strdup(json_string_value(json_array_get(tenants, i)))) ==
		    NULL)
			rc = FB_ERR_NOMEM;
	if (rc != FB_OK || !out->installation || !out->domain || !out->issuer || !out->jwks_uri ||
	    !out->relay || !out->ca_pem || !out->tenants)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
out:
	free(ca_certs);
	fb_verify_keyset_unref(ks);
	json_decref(doc);
	if (rc != FB_OK)
		fb_trust_export_free(out);
	return rc;
}

fb_rc
fb_trust_export_check_urls(const struct fb_trust_export *ex, const char *host, const char *domain,
    bool loopback_http, struct fb_err *err)
{
	const struct fb_url_rule rule = { .loopback_http = loopback_http,
		.public_only = !loopback_http,
		.host = host,
		.domain = domain };
	fb_rc rc;

	if ((rc = fb_url_check(ex->issuer, &rule, err)) != FB_OK) {
		fb_err_prefix(err, "\"issuer\"");
		return rc;
	}
	if ((rc = fb_url_check(ex->jwks_uri, &rule, err)) != FB_OK)
		fb_err_prefix(err, "\"jwks_uri\"");
	return rc;
}

fb_rc
fb_trust_export_check_domain(
    const struct fb_trust_export *ex, bool loopback_names, struct fb_err *err)
{
	fb_rc rc = fb_domain_registrable(ex->domain, loopback_names, err);

	if (rc != FB_OK)
		fb_err_prefix(err, "\"domain\"");
	return rc;
}

void
fb_trust_export_free(struct fb_trust_export *e)
{
	free(e->installation);
	free(e->domain);
	free(e->issuer);
	free(e->jwks_uri);
	free(e->relay);
	free(e->ca_pem);
	free(e->jwks);
	for (size_t i = 0; e->tenants != NULL && i < e->n_tenants; i++)
		free(e->tenants[i]);
	free(e->tenants);
	memset(e, 0, sizeof(*e));
}
