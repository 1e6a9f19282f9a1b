/*
 * What one configuration means for tokens: the signing keys, our JWKS, the
 * trust table a verifier needs, and issuance toward a configured remote.
 * Built once per configuration load; immutable afterwards.
 */
#include "fb_federation.h"
#include "fb_mapping.h"
#include "fb_sessions.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JWKS_FILE_MAX 262144
#define CERT_FILE_MAX 262144

/*
 * Where one remote's keys come from: a file (read at load), its bridge's JWKS URL, or its
 * bridge found through DNS (discover), which also says the remote's issuer and relay.
 */
struct key_source {
	const char *keys; /* path or URL, from the configuration; the SRV name for discover */
	const char *remote; /* its installation, for messages */
	const struct fb_conf_trust *trust; /* the first trust naming it (discover: checks) */
	char *srv_name; /* discover: _fedbridge._tcp.DOMAIN */
	char *issuer, *relay; /* discover: as the remote's bridge said (NULL until found) */
	char *proven_ca; /* discover: the PEM of the trust's ca the bridge proved itself with */
	struct fb_verify_keyset *ks; /* current set (an empty set until a first fetch) */
	uint64_t digest; /* of the last JWKS text, to skip unchanged sets */
	int64_t fetched, next_fetch, last_attempt;
	uint64_t failures; /* fetches that failed, for metrics */
	unsigned failing; /* failures since the last success: the retry backs off with them */
	fb_rc last_rc; /* of the last fetch (FB_OK when it succeeded or none was made) */
	char last_error[FB_ERR_MSG_MAX]; /* its message when it failed */
	bool in_flight; /* a thread is fetching it: no other one takes it */
	bool kicked; /* a token named a kid we lack: due now */
};

struct fb_federation {
	struct fb_conf *conf; /* one reference */
	pthread_mutex_t lock; /* guards sources */
	struct key_source *sources;
	size_t n_sources;
	struct fb_signing_key **keys; /* keys[0] signs; all are published */
	int64_t *exps; /* per key, 0 for keys without one */
	size_t n_keys;
	char *jwks;
	struct fb_verify_keyset *own_keys; /* for trusts between local tenants */
	bool stale; /* a key set or a found issuer changed since the last trust table */
};

void
fb_federation_free(struct fb_federation *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; f->keys != NULL && i < f->n_keys; i++)
		fb_signing_key_free(f->keys[i]);
	free(f->keys);
	free(f->exps);
	free(f->jwks);
	for (size_t i = 0; i < f->n_sources; i++) {
		fb_verify_keyset_unref(f->sources[i].ks);
		free(f->sources[i].srv_name);
		free(f->sources[i].issuer);
		free(f->sources[i].relay);
		free(f->sources[i].proven_ca);
	}
	free(f->sources);
	pthread_mutex_destroy(&f->lock);
	fb_verify_keyset_unref(f->own_keys);
	fb_conf_unref(f->conf);
	free(f);
}

static fb_rc sources_load(struct fb_federation *f, struct fb_err *err);

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

/* installation.ca is published (trust export, /.well-known/fedbridge): certificates only. */
static fb_rc
ca_publishable(const struct fb_conf *conf, struct fb_err *err)
{
	struct fb_conf_pos pos;
	char *pem = NULL;
	fb_rc rc;

	if (conf->installation.ca == NULL)
		return FB_OK;
	if ((rc = fb_cert_file_pem(conf->installation.ca, &pem, err)) != FB_OK) {
		pos = fb_conf_pos_of(conf, &conf->installation.ca);
		fb_err_prefix(err, "%u:%u: installation.ca", pos.line, pos.col);
	}
	free(pem);
	return rc;
}

/* A trust's ca or client_cert (path at field) is a certificate's place: never a key. */
static fb_rc
trust_cert_keyless(const struct fb_conf *conf, const struct fb_conf_tenant *t,
    const struct fb_conf_trust *tr, const char *const *field, const char *what, struct fb_err *err)
{
	struct fb_conf_pos pos;
	fb_rc rc;

	if (*field == NULL || (rc = fb_cert_file_keyless(*field, err)) == FB_OK)
		return FB_OK;
	pos = fb_conf_pos_of(conf, field);
	fb_err_prefix(err, "%s%s%u:%u: %s of tenant %s's trust with %s", pos.file ? pos.file : "",
	    pos.file ? ":" : "", pos.line, pos.col, what, t->id, tr->remote);
	return rc;
}

static fb_rc
trusts_keyless(const struct fb_conf *conf, struct fb_err *err)
{
	fb_rc rc = FB_OK;

	for (size_t i = 0; i < conf->n_tenants && rc == FB_OK; i++) {
		const struct fb_conf_tenant *t = &conf->tenants[i];
		for (size_t k = 0; k < t->n_trusts && rc == FB_OK; k++) {
			const struct fb_conf_trust *tr = &t->trusts[k];
			if ((rc = trust_cert_keyless(conf, t, tr, &tr->ca, "ca", err)) == FB_OK)
				rc = trust_cert_keyless(
				    conf, t, tr, &tr->client_cert, "client_cert", err);
		}
	}
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
	pthread_mutex_init(&f->lock, NULL);
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
	if ((rc = ca_publishable(conf, err)) != FB_OK || (rc = trusts_keyless(conf, err)) != FB_OK)
		goto done;
	if ((rc = fb_keys_jwks(f->keys, f->exps, f->n_keys, &f->jwks, err)) != FB_OK)
		goto done;
	if ((rc = fb_verify_keyset_from_jwks(f->jwks, strlen(f->jwks), &f->own_keys, err)) != FB_OK)
		goto done;
	rc = sources_load(f, err);
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

bool
fb_keys_source_is_url(const char *keys)
{
	return strncmp(keys, "https://", 8) == 0 || strncmp(keys, "http://", 7) == 0;
}

/* The source of a trust's keys, or NULL. */
static struct key_source *
source_find(const struct fb_federation *f, const char *keys)
{
	for (size_t i = 0; i < f->n_sources; i++)
		if (strcmp(f->sources[i].keys, keys) == 0)
			return &f->sources[i];
	return NULL;
}

static bool
source_is_fetched(const struct key_source *src)
{
	return src->srv_name != NULL || fb_keys_source_is_url(src->keys);
}

/* A trust's source (discover: by its SRV name), or NULL for pending and local trusts. */
static struct key_source *
trust_source(const struct fb_federation *f, const struct fb_conf_trust *tr)
{
	char name[300];

	if (tr->discover != NULL) {
		(void)snprintf(name, sizeof(name), "_fedbridge._tcp.%s", tr->discover);
		return source_find(f, name);
	}
	return tr->keys ? source_find(f, tr->keys) : NULL;
}

/* One source per distinct JWKS file or URL among the remote trusts; files are read now. */
static fb_rc
sources_load(struct fb_federation *f, struct fb_err *err)
{
	const struct fb_conf *conf = f->conf;
	size_t total = 0;
	fb_rc rc = FB_OK;

	for (size_t ti = 0; ti < conf->n_tenants; ti++)
		total += conf->tenants[ti].n_trusts;
	if ((f->sources = calloc(total ? total : 1, sizeof(*f->sources))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	for (size_t ti = 0; ti < conf->n_tenants; ti++) {
		const struct fb_conf_tenant *t = &conf->tenants[ti];
		for (size_t k = 0; k < t->n_trusts && rc == FB_OK; k++) {
			const struct fb_conf_trust *tr = &t->trusts[k];
			struct key_source *src;
			char *text = NULL;
			size_t len = 0;

			/* A trust still waiting for the remote's keys checks nothing. */
			if (is_local_trust(conf, tr) ||
			    (tr->keys == NULL && tr->discover == NULL) ||
			    trust_source(f, tr) != NULL)
				continue;
			src = &f->sources[f->n_sources++];
			src->keys = tr->keys;
			src->remote = tr->remote;
			src->trust = tr;
			if (tr->discover != NULL) {
				size_t n = strlen(tr->discover) + sizeof("_fedbridge._tcp.");
				if ((src->srv_name = malloc(n)) == NULL) {
					rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
					break;
				}
				(void)snprintf(
				    src->srv_name, n, "_fedbridge._tcp.%s", tr->discover);
				src->keys = src->srv_name;
				rc = fb_verify_keyset_empty(&src->ks, err);
				continue;
			}
			if (fb_keys_source_is_url(tr->keys)) {
				rc = fb_verify_keyset_empty(&src->ks, err);
				continue;
			}
			if ((rc = fb_file_read(tr->keys, JWKS_FILE_MAX, &text, &len, err)) ==
			    FB_OK) {
				rc = fb_verify_keyset_from_jwks(text, len, &src->ks, err);
				free(text);
			}
			if (rc != FB_OK)
				fb_err_prefix(
				    err, "tenants[%zu].trusts[%zu].keys %s", ti, k, tr->keys);
		}
	}
	return rc;
}

void
fb_federation_adopt(struct fb_federation *f, const struct fb_federation *prev)
{
	pthread_mutex_lock((pthread_mutex_t *)&prev->lock);
	for (size_t i = 0; i < f->n_sources; i++) {
		struct key_source *old = source_find(prev, f->sources[i].keys);
		if (old == NULL || !source_is_fetched(old) || old->fetched == 0 ||
		    (old->srv_name == NULL) != (f->sources[i].srv_name == NULL))
			continue;
		/* A remote found with another CA than the trust now names proved nothing to it:
		 * found again, with this CA, or not at all. */
		if (old->srv_name != NULL &&
		    (old->proven_ca == NULL ||
		        !fb_cert_pem_same(old->proven_ca, f->sources[i].trust->ca)))
			continue;
		if (old->issuer != NULL) {
			free(f->sources[i].issuer);
			free(f->sources[i].relay);
			free(f->sources[i].proven_ca);
			f->sources[i].issuer = strdup(old->issuer);
			f->sources[i].relay = old->relay ? strdup(old->relay) : NULL;
			f->sources[i].proven_ca = old->proven_ca ? strdup(old->proven_ca) : NULL;
			if (f->sources[i].issuer == NULL ||
			    (old->relay != NULL && f->sources[i].relay == NULL) ||
			    (old->proven_ca != NULL && f->sources[i].proven_ca == NULL)) {
				/* Out of memory: not found yet rather than half adopted. */
				free(f->sources[i].issuer);
				free(f->sources[i].relay);
				free(f->sources[i].proven_ca);
				f->sources[i].issuer = f->sources[i].relay = NULL;
				f->sources[i].proven_ca = NULL;
				continue;
			}
		}
		fb_verify_keyset_unref(f->sources[i].ks);
		f->sources[i].ks = fb_verify_keyset_ref(old->ks);
		f->sources[i].fetched = old->fetched;
		f->sources[i].next_fetch = old->next_fetch;
		f->sources[i].last_attempt = old->last_attempt;
		f->sources[i].digest = old->digest;
	}
	pthread_mutex_unlock((pthread_mutex_t *)&prev->lock);
}

bool
fb_url_under_domain(const char *issuer, const char *domain)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	bool ok = false;

	if (u == NULL)
		return false;
	if (curl_url_set(u, CURLUPART_URL, issuer, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    strcasecmp(scheme, "https") == 0) {
		size_t hl = strlen(host), dl = strlen(domain);
		ok = strcasecmp(host, domain) == 0 ||
		    (hl > dl + 1 && host[hl - dl - 1] == '.' &&
		        strcasecmp(host + hl - dl, domain) == 0);
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* What a discovery found, proven: all malloc'd, the caller frees them. */
struct discovered {
	struct fb_jwks_fetch jwks;
	char *issuer, *relay;
	char *ca_pem; /* the trust's CA the bridge proved itself with */
};

static void
discovered_free(struct discovered *d)
{
	free(d->jwks.body);
	free(d->issuer);
	free(d->relay);
	free(d->ca_pem);
	memset(d, 0, sizeof(*d));
}

/*
 * A remote found through DNS: the SRV record names its bridge. DNS is not
 * trusted to say who the remote is, and neither is what the bridge there
 * says: its /.well-known/fedbridge (its trust export) and the key set it
 * names are taken only over TLS whose server certificate chains to the
 * trust's ca alone (the remote's federation CA, not the system's store) and
 * names the host fetched, so only a holder of a certificate of that CA can
 * answer. The export must name the trust's remote, its tenants and that CA,
 * and an issuer under the trust's domain. On success *out holds it all.
 */
static fb_rc
discover_fetch(const struct key_source *src, const char *resolver, bool dev, struct discovered *out,
    struct fb_err *err)
{
	const struct fb_conf_trust *tr = src->trust;
	struct fb_srv_target t;
	struct fb_trust_export ex = { 0 };
	struct fb_jwks_fetch doc = { 0 };
	char url[600], host[270];
	size_t hl, ca_len = 0;
	/* The bridge DNS names, its documents and its keys are named from outside: no inside
	 * address unless this installation itself runs on loopback (tests, the demo). */
	struct fb_url_rule rule = { .public_only = !dev };
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if ((rc = fb_file_read(tr->ca, CERT_FILE_MAX, &out->ca_pem, &ca_len, err)) != FB_OK) {
		fb_err_prefix(err, "the trust's ca");
		return rc;
	}
	if ((rc = fb_srv_lookup(src->srv_name, resolver, &t, err)) != FB_OK) {
		discovered_free(out);
		return rc;
	}
	(void)snprintf(host, sizeof(host), "%s", t.host);
	hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		host[hl - 1] = '\0';
	/* DNS says where, not who: https with the trust's CA alone proves it. */
	(void)snprintf(url, sizeof(url), "https://%s:%u/.well-known/fedbridge", host, t.port);
	if ((rc = fb_jwks_fetch_pinned(url, &rule, out->ca_pem, ca_len, &doc, err)) != FB_OK ||
	    (rc = fb_trust_export_parse(doc.body, doc.len, url, &ex, err)) != FB_OK) {
		free(doc.body);
		discovered_free(out);
		fb_err_prefix(
		    err, "%s -> %s (with the trust's ca %s alone)", src->srv_name, url, tr->ca);
		return rc;
	}
	free(doc.body);
	if (strcmp(ex.installation, src->remote) != 0)
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s is installation %s, not %s", url,
		    ex.installation, src->remote);
	for (size_t i = 0; rc == FB_OK && i < tr->tenants.n; i++) {
		bool found = false;
		for (size_t j = 0; j < ex.n_tenants && !found; j++)
			found = strcmp(ex.tenants[j], tr->tenants.v[i]) == 0;
		if (!found)
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s does not list tenant %s", url,
			    tr->tenants.v[i]);
	}
	if (rc == FB_OK && !fb_cert_pem_same(ex.ca_pem, tr->ca))
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s names another CA than the trust's ca %s: refusing its keys", url, tr->ca);
	if (rc == FB_OK && !fb_url_under_domain(ex.issuer, tr->discover))
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s names issuer %.300s, not an https URL on %s or a host under it: refusing "
		    "its keys",
		    url, ex.issuer, tr->discover);
	/* The relay is where our relay sends users' tokens: on the domain too, like the issuer. */
	if (rc == FB_OK && !fb_hostport_under_domain(ex.relay, tr->discover)) {
		char relay[FB_EXCERPT_MAX];
		fb_excerpt(ex.relay, strlen(ex.relay), relay, sizeof(relay));
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s names relay %s, not host:port on %s or a host under it: refusing its keys",
		    url, relay, tr->discover);
	}
	if (rc == FB_OK &&
	    ((rc = fb_trust_export_check_domain(&ex, dev, err)) != FB_OK ||
	        (rc = fb_trust_export_check_urls(&ex, host, tr->discover, dev, err)) != FB_OK))
		fb_err_prefix(err, "%s", url);
	rule.host = host;
	rule.domain = tr->discover;
	if (rc == FB_OK &&
	    (rc = fb_jwks_fetch_pinned(ex.jwks_uri, &rule, out->ca_pem, ca_len, &out->jwks, err)) !=
	        FB_OK)
		fb_err_prefix(err, "%s (with the trust's ca %s alone)", ex.jwks_uri, tr->ca);
	if (rc == FB_OK &&
	    ((out->issuer = strdup(ex.issuer)) == NULL || (out->relay = strdup(ex.relay)) == NULL))
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if (rc != FB_OK)
		discovered_free(out);
	fb_trust_export_free(&ex);
	return rc;
}

/* When src is due (1: at once: never fetched, or a token named a kid it lacks); under
 * f->lock. Never 0, which fb_federation_next_refresh keeps for "no URL sources". */
static int64_t
source_due_at(const struct key_source *src)
{
	return src->kicked || src->next_fetch < 1 ? 1 : src->next_fetch;
}

/* Marks src in flight, tried at now; under f->lock. */
static void
source_claim(struct key_source *src, int64_t now)
{
	src->in_flight = true;
	src->kicked = false;
	src->last_attempt = now;
}

/*
 * Fetches the claimed source src without any lock (what it reads of src never changes after
 * load), then records the result under f->lock and releases the claim. A failed fetch keeps
 * the last good set; *changed says whether the trust table needs building again.
 */
static fb_rc
source_refresh(struct fb_federation *f, struct key_source *src, int64_t now, bool *changed,
    struct fb_buf *log, struct fb_err *err)
{
	struct fb_verify_keyset *ks = NULL;
	struct discovered d = { 0 };
	struct fb_jwks_fetch *got = &d.jwks;
	int64_t expiry;
	fb_rc rc;

	*changed = false;
	if (src->srv_name != NULL) {
		rc = discover_fetch(
		    src, f->conf->installation.resolver, fb_conf_on_loopback(f->conf), &d, err);
	} else {
		/* The configuration names this URL: loopback http allowed if it says so. */
		static const struct fb_url_rule configured = { .loopback_http = true };
		rc = fb_jwks_fetch(src->keys, &configured, got, err);
	}
	if (rc == FB_OK)
		rc = fb_verify_keyset_from_jwks(got->body, got->len, &ks, err);
	pthread_mutex_lock(&f->lock);
	src->in_flight = false;
	if (rc != FB_OK) {
		/* Keep the last good (for discover: proven) set, issuer and relay; try
		 * again, later each time it fails. */
		src->next_fetch =
		    now + fb_backoff_delay(FB_JWKS_RETRY, FB_JWKS_RETRY_MAX, src->failing);
		src->failures++;
		src->failing++;
		src->last_rc = rc;
		(void)snprintf(src->last_error, sizeof(src->last_error), "%s", err->msg);
		(void)fb_buf_printf(log,
		    "trust %s: fetching keys from %s failed (%s); keeping the "
		    "last good set (%zu keys)\n",
		    src->remote, src->keys, err->msg, fb_verify_keyset_count(src->ks));
	} else {
		src->next_fetch = now + got->max_age;
		src->failing = 0;
		src->last_rc = FB_OK;
		src->last_error[0] = '\0';
		if (d.issuer != NULL &&
		    (src->issuer == NULL || strcmp(src->issuer, d.issuer) != 0)) {
			(void)fb_buf_printf(log,
			    "trust %s: found through %s: issuer %s, relay %s\n", src->remote,
			    src->srv_name, d.issuer, d.relay ? d.relay : "-");
			*changed = true;
		}
		if (d.issuer != NULL) {
			free(src->issuer);
			free(src->relay);
			free(src->proven_ca);
			src->issuer = d.issuer;
			src->relay = d.relay;
			src->proven_ca = d.ca_pem;
			d.issuer = d.relay = d.ca_pem = NULL;
		}
		if (got->digest != src->digest || src->fetched == 0) {
			fb_verify_keyset_unref(src->ks);
			src->ks = ks;
			ks = NULL;
			src->digest = got->digest;
			*changed = true;
			(void)fb_buf_printf(log, "trust %s: %zu keys from %s\n", src->remote,
			    fb_verify_keyset_count(src->ks), src->keys);
		}
		src->fetched = now;
		expiry = fb_verify_keyset_expiry(src->ks);
		if (expiry != 0 && expiry - now < FB_KEY_EXPIRY_WARNING)
			(void)fb_buf_printf(log,
			    "ALARM trust %s: the newest key of %s stops signing in %lld s; the "
			    "remote must rotate its keys\n",
			    src->remote, src->keys, (long long)(expiry - now));
	}
	if (*changed)
		f->stale = true;
	pthread_mutex_unlock(&f->lock);
	fb_verify_keyset_unref(ks);
	discovered_free(&d);
	return rc;
}

bool
fb_federation_claim(struct fb_federation *f, int64_t now, size_t *idx)
{
	struct key_source *best = NULL;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_sources; i++) {
		struct key_source *src = &f->sources[i];
		if (source_is_fetched(src) && !src->in_flight && source_due_at(src) <= now &&
		    (best == NULL || source_due_at(src) < source_due_at(best)))
			best = src;
	}
	if (best != NULL) {
		source_claim(best, now);
		*idx = (size_t)(best - f->sources);
	}
	pthread_mutex_unlock(&f->lock);
	return best != NULL;
}

fb_rc
fb_federation_fetch_claimed(
    struct fb_federation *f, size_t idx, int64_t now, struct fb_buf *log, struct fb_err *err)
{
	bool changed;

	return source_refresh(f, &f->sources[idx], now, &changed, log, err);
}

void
fb_federation_kick(struct fb_federation *f, int64_t now)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_sources; i++) {
		struct key_source *src = &f->sources[i];
		/* Anyone can show a token with a kid we lack: such fetches are spaced per source,
		 * and a rediscovery (DNS and the remote's bridge) by its own, longer interval. */
		int64_t min = src->srv_name != NULL ? f->conf->keys.rediscover_min
		                                    : f->conf->keys.refetch_min;
		if (source_is_fetched(src) && !src->in_flight && now >= src->last_attempt + min)
			src->kicked = true;
	}
	pthread_mutex_unlock(&f->lock);
}

size_t
fb_federation_fetches_pending(struct fb_federation *f, int64_t since)
{
	size_t n = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_sources; i++) {
		const struct key_source *src = &f->sources[i];
		if (source_is_fetched(src) &&
		    (src->in_flight || (source_due_at(src) <= since && src->last_attempt < since)))
			n++;
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

bool
fb_federation_trusts_stale(struct fb_federation *f)
{
	bool stale;

	pthread_mutex_lock(&f->lock);
	stale = f->stale;
	pthread_mutex_unlock(&f->lock);
	return stale;
}

/* One pass of fb_federation_refresh: the sources it claimed, shared by its threads. */
struct refresh_pass {
	struct fb_federation *f;
	int64_t now;
	size_t *idx; /* the claimed sources */
	size_t n;
	atomic_size_t next; /* the next one to take */
	struct refresh_result {
		fb_rc rc;
		bool changed;
		struct fb_err err;
		struct fb_buf log;
	} * res; /* per claimed source, in order */
};

static void *
refresh_pass_main(void *arg)
{
	struct refresh_pass *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n) {
		struct refresh_result *r = &p->res[i];
		r->rc = source_refresh(
		    p->f, &p->f->sources[p->idx[i]], p->now, &r->changed, &r->log, &r->err);
	}
	return NULL;
}

/* Key sets fetched from remote bridges: due ones, or all with force, each remote on its own
 * thread (up to FB_KEY_FETCHERS at once), so the pass takes the longest fetch's time. */
fb_rc
fb_federation_refresh(struct fb_federation *f, const struct fb_refresh_opts *ro, bool *changed,
    struct fb_buf *log, struct fb_err *err)
{
	struct refresh_pass p = { .f = f, .now = ro->now };
	pthread_t threads[FB_KEY_FETCHERS - 1];
	size_t n_threads = 0;
	fb_rc rc = FB_OK;

	*changed = false;
	p.idx = calloc(f->n_sources ? f->n_sources : 1, sizeof(*p.idx));
	p.res = calloc(f->n_sources ? f->n_sources : 1, sizeof(*p.res));
	if (p.idx == NULL || p.res == NULL) {
		free(p.idx);
		free(p.res);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	if (ro->unknown_kid)
		fb_federation_kick(f, ro->now);
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_sources; i++) {
		struct key_source *src = &f->sources[i];
		if (!source_is_fetched(src) || src->in_flight ||
		    (!ro->force && ro->now < source_due_at(src)))
			continue;
		source_claim(src, ro->now);
		p.idx[p.n] = i;
		fb_buf_init(&p.res[p.n].log, 16384);
		p.n++;
	}
	pthread_mutex_unlock(&f->lock);
	atomic_init(&p.next, 0);
	/* This thread fetches too; one that cannot start leaves its share to the others. */
	while (n_threads + 1 < p.n && n_threads < FB_KEY_FETCHERS - 1 &&
	    pthread_create(&threads[n_threads], NULL, refresh_pass_main, &p) == 0)
		n_threads++;
	(void)refresh_pass_main(&p);
	for (size_t i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);
	for (size_t i = 0; i < p.n; i++) {
		struct refresh_result *r = &p.res[i];
		if (r->log.len > 0)
			(void)fb_buf_append(log, r->log.data, r->log.len);
		fb_buf_free(&r->log);
		*changed = *changed || r->changed;
		if (r->rc != FB_OK && rc == FB_OK) {
			rc = r->rc;
			FB_ERR_SET(err, r->rc, "%s: %s", f->sources[p.idx[i]].keys, r->err.msg);
		}
	}
	free(p.idx);
	free(p.res);
	return rc;
}

void
fb_federation_key_sources(struct fb_federation *f,
    void (*fn)(void *arg, const struct fb_key_source_info *info), void *arg)
{
	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_sources; i++) {
		const struct key_source *src = &f->sources[i];
		struct fb_key_source_info info = { src->remote, src->keys, src->trust,
			fb_verify_keyset_count(src->ks), fb_verify_keyset_expiry(src->ks),
			src->fetched, src->failures, src->last_rc,
			src->last_rc != FB_OK ? src->last_error : NULL };
		fn(arg, &info);
	}
	pthread_mutex_unlock(&f->lock);
}

int64_t
fb_federation_next_refresh(struct fb_federation *f)
{
	int64_t next = 0;

	pthread_mutex_lock(&f->lock);
	for (size_t i = 0; i < f->n_sources; i++)
		if (source_is_fetched(&f->sources[i]) && !f->sources[i].in_flight &&
		    (next == 0 || source_due_at(&f->sources[i]) < next))
			next = source_due_at(&f->sources[i]);
	pthread_mutex_unlock(&f->lock);
	return next;
}

fb_rc
fb_federation_trusts(struct fb_federation *f, struct fb_verify_trusts **out, struct fb_err *err)
{
	const struct fb_conf *conf = f->conf;
	struct fb_verify_trust_spec *specs = NULL;
	size_t n_specs = 0, total = 0;
	fb_rc rc;

	for (size_t ti = 0; ti < conf->n_tenants; ti++)
		total += conf->tenants[ti].n_trusts;
	if ((specs = calloc(total ? total : 1, sizeof(*specs))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	pthread_mutex_lock(&f->lock);
	for (size_t ti = 0; ti < conf->n_tenants; ti++) {
		const struct fb_conf_tenant *t = &conf->tenants[ti];
		for (size_t k = 0; k < t->n_trusts; k++) {
			const struct fb_conf_trust *tr = &t->trusts[k];
			struct fb_verify_trust_spec *sp;

			const struct key_source *src = trust_source(f, tr);
			if (!is_local_trust(conf, tr) &&
			    (src == NULL || (tr->discover ? src->issuer : tr->issuer) == NULL))
				continue; /* pending: its tokens are refused as untrusted_issuer */
			sp = &specs[n_specs++];

			sp->local_tenant = t->id;
			sp->remote_tenants = tr->tenants.v;
			sp->n_remote_tenants = tr->tenants.n;
			if (is_local_trust(conf, tr)) {
				sp->issuer = conf->installation.public_url;
				sp->keys = f->own_keys;
			} else {
				sp->issuer = tr->discover ? src->issuer : tr->issuer;
				sp->keys = src->ks;
			}
		}
	}
	/* The table takes its own references: sources may be replaced after this. */
	if ((rc = fb_verify_trusts_new(specs, n_specs, out, err)) == FB_OK)
		f->stale = false;
	pthread_mutex_unlock(&f->lock);
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
	if (trust->client_cert == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "the trust of tenant %s with %s names no client_cert: a token must be bound to "
		    "the certificate its sender presents",
		    t->id, req->audience);
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
	c.cid = req->cid;
	c.attrs = req->attrs;
	c.cnf_sha256 = cnf;
	c.iat = req->now;
	c.ttl = req->ttl ? req->ttl : conf->tokens.ttl;
	return fb_token_issue(f->keys[0], &c, token, err);
}

const struct fb_signing_key *
fb_federation_signing_key(const struct fb_federation *f)
{
	return f->keys[0];
}

bool
fb_federation_keys_lack(struct fb_federation *f, const struct fb_conf_trust *tr, const char *kid)
{
	const struct key_source *src;
	bool lack = false;

	pthread_mutex_lock(&f->lock);
	src = trust_source(f, tr);
	if (src != NULL && source_is_fetched(src))
		lack = !fb_verify_keyset_has_kid(src->ks, kid);
	pthread_mutex_unlock(&f->lock);
	return lack;
}

bool
fb_federation_trust_found(struct fb_federation *f, const struct fb_conf_trust *tr, char *issuer,
    size_t issuer_size, char *relay, size_t relay_size)
{
	const struct key_source *src;
	bool found = false;

	if (tr->discover == NULL) {
		(void)snprintf(issuer, issuer_size, "%s", tr->issuer ? tr->issuer : "");
		(void)snprintf(relay, relay_size, "%s", tr->relay ? tr->relay : "");
		return tr->issuer != NULL;
	}
	pthread_mutex_lock(&f->lock);
	src = trust_source(f, tr);
	if (src != NULL && src->issuer != NULL) {
		(void)snprintf(issuer, issuer_size, "%s", src->issuer);
		(void)snprintf(relay, relay_size, "%s", src->relay ? src->relay : "");
		found = true;
	}
	pthread_mutex_unlock(&f->lock);
	return found;
}

fb_rc
fb_federation_remote_fetch(struct fb_federation *f, const struct fb_conf_trust *tr, const char *url,
    const struct fb_url_rule *rule, struct fb_jwks_fetch *out, struct fb_err *err)
{
	const struct key_source *src;
	char *ca = NULL;
	bool found = false;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (tr->discover == NULL)
		return fb_jwks_fetch(url, rule, out, err);
	/* A copy: the refresher may replace the source's CA while this fetch runs. */
	pthread_mutex_lock(&f->lock);
	src = trust_source(f, tr);
	if (src != NULL && src->proven_ca != NULL) {
		found = true;
		ca = strdup(src->proven_ca);
	}
	pthread_mutex_unlock(&f->lock);
	if (!found)
		return FB_ERR_SET(err, FB_ERR_NOTFOUND, "%s is not found through %s yet",
		    tr->remote, tr->discover);
	if (ca == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	rc = fb_jwks_fetch_pinned(url, rule, ca, strlen(ca), out, err);
	free(ca);
	return rc;
}

int64_t
fb_federation_signing_expiry(const struct fb_federation *f)
{
	return f->exps != NULL ? f->exps[0] : 0;
}
