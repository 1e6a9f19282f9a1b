/*
 * What one configuration means for tokens: the signing keys, our JWKS, the
 * trust table a verifier needs, and issuance toward a configured remote.
 * Built once per configuration load; immutable afterwards.
 */
#include "fb_bridge.h"
#include "fb_mapping.h"
#include "fb_sessions.h"

#include <stdlib.h>
#include <string.h>

#define JWKS_FILE_MAX 262144
#define CERT_FILE_MAX 262144

struct fb_federation {
	struct fb_conf *conf; /* one reference */
	struct fb_signing_key **keys; /* keys[0] signs; all are published */
	int64_t *exps; /* per key, 0 for keys without one */
	size_t n_keys;
	char *jwks;
	struct fb_verify_keyset *own_keys; /* for trusts between local tenants */
};

void
fb_federation_free(struct fb_federation *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n_keys; i++)
		fb_signing_key_free(f->keys[i]);
	free(f->keys);
	free(f->exps);
	free(f->jwks);
	fb_verify_keyset_unref(f->own_keys);
	fb_conf_unref(f->conf);
	free(f);
}

/* The keyring's keys: the active one first (it signs), then next and retired (published). */
static fb_rc
load_keyring(struct fb_federation *f, const char *dir, struct fb_err *err)
{
	struct fb_keyring *kr = NULL;
	char path[4200];
	fb_rc rc;

	if ((rc = fb_keyring_load(dir, false, &kr, err)) != FB_OK)
		return rc;
	f->keys = calloc(kr->n + 1, sizeof(struct fb_signing_key *));
	f->exps = calloc(kr->n + 1, sizeof(int64_t));
	if (f->keys == NULL || f->exps == NULL) {
		fb_keyring_free(kr);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	for (int pass = 0; pass < 2 && rc == FB_OK; pass++) {
		for (size_t i = 0; i < kr->n && rc == FB_OK; i++) {
			const struct fb_keyring_entry *e = &kr->v[i];
			if ((pass == 0) != (e->state == FB_KEY_ACTIVE))
				continue;
			fb_keyring_key_path(kr, e, path, sizeof(path));
			if ((rc = fb_signing_key_load(path, &f->keys[f->n_keys], err)) != FB_OK)
				break;
			if (strcmp(fb_signing_key_kid(f->keys[f->n_keys]), e->kid) != 0)
				rc = FB_ERR_SET(err, FB_ERR_INVALID,
				    "%s does not hold key %s of the keyring", path, e->kid);
			f->exps[f->n_keys++] = e->exp;
		}
		if (pass == 0 && rc == FB_OK && f->n_keys == 0)
			rc = FB_ERR_SET(err, FB_ERR_NOTFOUND,
			    "keyring %s has no active key: run fedbridge keys rotate -c FILE", dir);
	}
	fb_keyring_free(kr);
	return rc;
}

fb_rc
fb_federation_load(const struct fb_conf *conf, struct fb_federation **out, struct fb_err *err)
{
	struct fb_federation *f;
	fb_rc rc = FB_OK;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	f->conf = fb_conf_ref((struct fb_conf *)conf);
	if (conf->keys.signing_dir != NULL) {
		if ((rc = load_keyring(f, conf->keys.signing_dir, err)) != FB_OK) {
			fb_err_prefix(err, "keys.signing_dir");
			goto done;
		}
		goto publish;
	}
	if ((f->keys = calloc(conf->keys.signing.n, sizeof(struct fb_signing_key *))) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < conf->keys.signing.n; i++) {
		if ((rc = fb_signing_key_load(conf->keys.signing.v[i], &f->keys[i], err)) !=
		    FB_OK) {
			fb_err_prefix(err, "keys.signing[%zu]", i);
			goto done;
		}
		f->n_keys++;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(fb_signing_key_kid(f->keys[j]),
			        fb_signing_key_kid(f->keys[i])) == 0) {
				rc = FB_ERR_SET(err, FB_ERR_CONFIG,
				    "keys.signing[%zu] is the same key as keys.signing[%zu]", i, j);
				goto done;
			}
		}
	}
publish:
	if ((rc = fb_keys_jwks(f->keys, f->exps, f->n_keys, &f->jwks, err)) != FB_OK)
		goto done;
	rc = fb_verify_keyset_from_jwks(f->jwks, strlen(f->jwks), &f->own_keys, err);
done:
	if (rc != FB_OK) {
		fb_federation_free(f);
		return rc;
	}
	*out = f;
	return FB_OK;
}

const char *
fb_federation_jwks(const struct fb_federation *f)
{
	return f->jwks;
}

void
fb_federation_verify_opts(const struct fb_conf *conf, struct fb_verify_opts *out)
{
	memset(out, 0, sizeof(*out));
	out->clock_skew = conf->tokens.clock_skew;
	out->max_lifetime = conf->tokens.max_ttl;
	out->max_token = (size_t)conf->tokens.max_size;
	out->cache_entries = 100000;
}

static bool
is_local_trust(const struct fb_conf *conf, const struct fb_conf_trust *tr)
{
	return strcmp(tr->remote, conf->installation.name) == 0;
}

/* One keyset per remote JWKS file, shared by every trust naming it. */
struct keyfile {
	const char *path;
	struct fb_verify_keyset *ks;
};

fb_rc
fb_federation_trusts(
    const struct fb_federation *f, struct fb_verify_trusts **out, struct fb_err *err)
{
	const struct fb_conf *conf = f->conf;
	struct fb_verify_trust_spec *specs = NULL;
	struct keyfile *files = NULL;
	size_t n_specs = 0, n_files = 0, total = 0;
	fb_rc rc = FB_OK;

	for (size_t ti = 0; ti < conf->n_tenants; ti++)
		total += conf->tenants[ti].n_trusts;
	specs = calloc(total ? total : 1, sizeof(*specs));
	files = calloc(total ? total : 1, sizeof(*files));
	if (specs == NULL || files == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	for (size_t ti = 0; ti < conf->n_tenants; ti++) {
		const struct fb_conf_tenant *t = &conf->tenants[ti];
		for (size_t k = 0; k < t->n_trusts; k++) {
			const struct fb_conf_trust *tr = &t->trusts[k];
			struct fb_verify_trust_spec *sp = &specs[n_specs++];
			struct fb_verify_keyset *ks = NULL;

			sp->local_tenant = t->id;
			sp->remote_tenants = tr->tenants.v;
			sp->n_remote_tenants = tr->tenants.n;
			if (is_local_trust(conf, tr)) {
				sp->issuer = conf->installation.public_url;
				sp->keys = f->own_keys;
				continue;
			}
			sp->issuer = tr->issuer;
			for (size_t i = 0; i < n_files && ks == NULL; i++)
				if (strcmp(files[i].path, tr->keys) == 0)
					ks = files[i].ks;
			if (ks == NULL) {
				char *text = NULL;
				size_t len = 0;
				if ((rc = fb_file_read(
				         tr->keys, JWKS_FILE_MAX, &text, &len, err)) == FB_OK) {
					rc = fb_verify_keyset_from_jwks(text, len, &ks, err);
					free(text);
				}
				if (rc != FB_OK) {
					fb_err_prefix(err, "tenants[%zu].trusts[%zu].keys %s", ti,
					    k, tr->keys);
					goto done;
				}
				files[n_files].path = tr->keys;
				files[n_files++].ks = ks;
			}
			sp->keys = ks;
		}
	}
	rc = fb_verify_trusts_new(specs, n_specs, out, err);
done:
	for (size_t i = 0; i < n_files; i++)
		fb_verify_keyset_unref(files[i].ks);
	free(files);
	free(specs);
	return rc;
}

fb_rc
fb_federation_issue(const struct fb_federation *f, const struct fb_issue_request *req, char **token,
    struct fb_err *err)
{
	const struct fb_conf *conf = f->conf;
	const struct fb_conf_tenant *t = fb_conf_tenant_find(conf, req->tenant);
	const struct fb_conf_trust *trust = NULL;
	char sid[FB_SESSION_ID_LEN + 1];
	unsigned char cnf[FB_VERIFY_SHA256_LEN];
	struct fb_token_claims c;
	struct fb_fid fid;
	char *pem = NULL;
	size_t len = 0;
	fb_rc rc;

	if (t == NULL)
		return FB_ERR_SET(
		    err, FB_ERR_NOTFOUND, "no tenant %s in this installation", req->tenant);
	if ((rc = fb_fid_parse(req->fid, strlen(req->fid), &fid, err)) != FB_OK)
		return rc;
	if (strcmp(fid.tenant, t->id) != 0)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "fid %s does not belong to tenant %s", req->fid, t->id);
	for (size_t k = 0; k < t->n_trusts && trust == NULL; k++)
		for (size_t i = 0; i < t->trusts[k].tenants.n; i++)
			if (strcmp(t->trusts[k].tenants.v[i], req->audience) == 0)
				trust = &t->trusts[k];
	if (trust == NULL)
		return FB_ERR_SET(err, FB_ERR_NOTFOUND, "tenant %s has no trust with tenant %s",
		    t->id, req->audience);
	if (is_local_trust(conf, trust) || trust->client_cert == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "tokens toward tenants of this installation need a relay certificate to bind "
		    "to, and none is configured");
	if (f->exps != NULL && f->exps[0] != 0 && req->now > f->exps[0])
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "the active signing key %s expired %lld s ago: run fedbridge keys rotate",
		    fb_signing_key_kid(f->keys[0]), (long long)(req->now - f->exps[0]));
	/* A remote sees only what its trust releases. */
	if (req->attrs != NULL) {
		const char *name;
		json_t *val;
		json_object_foreach(req->attrs, name, val)
		{
			bool released = false;
			for (size_t i = 0; i < trust->release.n && !released; i++)
				released = strcmp(trust->release.v[i], name) == 0;
			if (!released)
				return FB_ERR_SET(err, FB_ERR_INVALID,
				    "attribute %s is not released to %s (see its trust's release)",
				    name, trust->remote);
		}
	}
	if (req->ttl < 0 || req->ttl > conf->tokens.max_ttl)
		return FB_ERR_SET(err, FB_ERR_INVALID, "ttl must be at most tokens.max_ttl (%llds)",
		    (long long)conf->tokens.max_ttl);
	/* Bound to the client certificate our relay presents to that remote. */
	if ((rc = fb_file_read(trust->client_cert, CERT_FILE_MAX, &pem, &len, err)) != FB_OK)
		return rc;
	rc = fb_verify_cert_sha256(pem, len, cnf, err);
	free(pem);
	if (rc != FB_OK) {
		fb_err_prefix(err, "%s", trust->client_cert);
		return rc;
	}
	if (req->sid == NULL && (rc = fb_session_id_new(sid)) != FB_OK)
		return FB_ERR_SET(err, rc, "no randomness for a session id");
	memset(&c, 0, sizeof(c));
	c.iss = conf->installation.public_url;
	c.sub = req->fid;
	c.tid = t->id;
	c.aud = req->audience;
	c.sid = req->sid ? req->sid : sid;
	c.attrs = req->attrs;
	c.cnf_sha256 = cnf;
	c.iat = req->now;
	c.ttl = req->ttl ? req->ttl : conf->tokens.ttl;
	return fb_token_issue(f->keys[0], &c, token, err);
}
