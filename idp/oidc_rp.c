/*
 * The OpenID Connect relying party: authorization code flow with PKCE S256,
 * state and nonce, RFC 9207 iss checking, client_secret_basic,
 * client_secret_post or private_key_jwt at the token endpoint, ID token
 * validation (oidc_token.c) with the issuer's keys, and userinfo.
 *
 * The provider's discovery document and keys are fetched when a login first
 * needs them and kept. A fetch is one flight: marked under the lock, made
 * without it, its result installed under it, so that a burst of logins makes
 * one request, not one each, while logins that need nothing fetched (the
 * discovery known, their kid in the keys) never wait for a slow IdP. A login
 * that needs the fetch in flight waits for it until its own deadline, then
 * is answered "unavailable". ID tokens are checked under the lock, against
 * the key set in force (pure CPU), so no set is freed while in use.
 *
 * A failed fetch is an outage (FB_ERR_IO) or the provider's misconfiguration
 * (FB_ERR_CONFIG: a 404, a document that does not parse or names another
 * issuer, a URL the policy refuses); see oidc_status_class. Both are tried
 * again on the same spacing: the admin may fix the IdP meanwhile.
 */
#include "fb_idp.h"
#include "oidc_int.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RP_SECRET_MAX FB_SECRET_SHORT_MAX
#define RP_KEY_MAX FB_SECRET_PEM_MAX
#define RP_RETRY_S 10 /* least time between two failed discovery fetches */
#define RP_REFRESH_RETRY_MAX 900 /* the background fetch's backoff tops out at 15 minutes */
#define RP_KEYS_MAX_AGE 3600 /* keys are refetched this often */
#define RP_ASSERTION_TTL 60
#define ERROR_CODE_SHOWN 72 /* an RFC 6749 error code, bounded in messages */
#define DESCRIPTION_SHOWN 120 /* an IdP's error_description, bounded in messages */
/*
 * Said when the IdP's refusal points at PKCE: the bridge always sends it, so an IdP
 * client with PKCE turned off, or held to plain, refuses every login.
 */
#define PKCE_HINT                                                                                  \
	"fedbridge always sends PKCE (code_challenge_method S256): the IdP's client must allow it"
/*
 * Requests that may wait for this IdP at once (discovery, keys, the code
 * exchange, userinfo). Past it a request waits up to RP_SLOT_WAIT_MS for a
 * place (a burst at a healthy IdP queues briefly), then is answered
 * "unavailable": one slow IdP holds a bounded part of the login workers.
 */
#define RP_IN_FLIGHT_MAX 16
#define RP_SLOT_WAIT_MS 2000
#define HTTP_OK 200
#define HTTP_SERVER_ERROR 500 /* and above */
#define HTTP_TOO_MANY 429
#define HTTP_NOT_FOUND 404
#define NO_DISCOVERY_HINT " (no discovery document there: " OIDC_ISSUER_HINT ")"
#define URL_SHOWN 160 /* of a URL in a message: room left for the reason and its hint */
#define MS_PER_S 1000
#define NS_PER_MS 1000000

struct fb_oidc_rp {
	pthread_mutex_t lock; /* guards the state below; never held while calling the IdP */
	pthread_cond_t fetched; /* a fetch of discovery or keys ended (CLOCK_MONOTONIC) */
	pthread_mutex_t slot_lock; /* guards in_flight; never held while calling the IdP */
	pthread_cond_t slot_free;
	unsigned in_flight; /* requests in one of the entry points that call the IdP */
	const struct fb_conf_provider *p;
	char *redirect_uri;
	char *secret; /* client_secret_*; cleansed on free */
	EVP_PKEY *key; /* private_key_jwt */
	const char *key_alg; /* RS256 or ES256 */
	int64_t skew, refetch_min;
	/* under lock; disc never changes once have_disc is set, so it is read without */
	struct fb_oidc_discovery disc;
	bool have_disc;
	bool disc_fetching; /* a discovery fetch is in flight */
	int64_t disc_failed; /* last failed fetch */
	fb_rc disc_failed_rc; /* FB_ERR_IO or FB_ERR_CONFIG, with why */
	char disc_failed_msg[FB_ERR_MSG_MAX];
	struct fb_oidc_keys *keys; /* replaced and freed only under lock */
	bool keys_fetching; /* a keys fetch is in flight */
	int64_t keys_fetched, keys_tried;
	int64_t refresh_at; /* fb_oidc_rp_refresh: when next due (0: at once) */
	unsigned refresh_failing; /* its failures in a row, for the backoff */
	bool keys_stale; /* the last fetch failed */
	fb_rc keys_failed_rc; /* the last failed fetch's, with why */
	char keys_failed_msg[FB_ERR_MSG_MAX];
};

/* Takes a place among the requests waiting for the IdP; false (err set) when none came. */
static bool
in_flight_enter(struct fb_oidc_rp *rp, struct fb_err *err)
{
	struct timespec until;
	bool got = true;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += RP_SLOT_WAIT_MS / 1000;
	until.tv_nsec += (long)(RP_SLOT_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&rp->slot_lock);
	while (got && rp->in_flight >= RP_IN_FLIGHT_MAX)
		got = pthread_cond_timedwait(&rp->slot_free, &rp->slot_lock, &until) == 0 ||
		    rp->in_flight < RP_IN_FLIGHT_MAX;
	if (got)
		rp->in_flight++;
	pthread_mutex_unlock(&rp->slot_lock);
	if (!got)
		(void)FB_ERR_SET(err, FB_ERR_IO,
		    "%s: %d requests already wait for this IdP; try again shortly", rp->p->issuer,
		    RP_IN_FLIGHT_MAX);
	return got;
}

static void
in_flight_leave(struct fb_oidc_rp *rp)
{
	pthread_mutex_lock(&rp->slot_lock);
	rp->in_flight--;
	pthread_cond_signal(&rp->slot_free);
	pthread_mutex_unlock(&rp->slot_lock);
}

static int64_t
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * MS_PER_S + t.tv_nsec / NS_PER_MS;
}

/* When the IdP calls a request starts must all be done (the provider's timeout). */
static int64_t
login_deadline(const struct fb_oidc_rp *rp)
{
	return mono_ms() + rp->p->timeout * MS_PER_S;
}

/* What is left of the deadline for the next call; FB_ERR_IO once it has passed. */
static fb_rc
call_budget(const struct fb_oidc_rp *rp, int64_t deadline, long *ms, struct fb_err *err)
{
	int64_t left = deadline - mono_ms();

	if (left <= 0)
		return FB_ERR_SET(err, FB_ERR_IO, "%s: the login's %llds for the IdP ran out",
		    rp->p->issuer, (long long)rp->p->timeout);
	*ms = (long)left;
	return FB_OK;
}

const char *
fb_oidc_failure_name(enum fb_oidc_failure f)
{
	static const char *const names[] = { "ok", "idp_error", "bad_response", "iss_mismatch",
		"unavailable", "token_endpoint", "id_token", "userinfo" };

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "unknown";
}

/* Reads a secret file (fb_secret_read's rules); trailing newlines dropped. */
static fb_rc
read_secret(const char *path, size_t max, char **out, size_t *len, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = fb_secret_read(path, max, out, len, err)) != FB_OK)
		return rc;
	while (*len > 0 && ((*out)[*len - 1] == '\n' || (*out)[*len - 1] == '\r'))
		(*out)[--*len] = '\0';
	return FB_OK;
}

static fb_rc
load_client_key(struct fb_oidc_rp *rp, const char *path, struct fb_err *err)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	fb_rc rc;

	if ((rc = read_secret(path, RP_KEY_MAX, &pem, &len, err)) != FB_OK)
		return rc;
	bio = BIO_new_mem_buf(pem, (int)len);
	rp->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	fb_secret_free(pem);
	if (rp->key == NULL)
		return FB_ERR_SET(err, FB_ERR_CONFIG, "%s: not a PEM private key", path);
	if (EVP_PKEY_is_a(rp->key, "RSA") && EVP_PKEY_get_bits(rp->key) >= 2048) {
		rp->key_alg = "RS256";
	} else if (EVP_PKEY_is_a(rp->key, "EC") && EVP_PKEY_get_bits(rp->key) == 256) {
		rp->key_alg = "ES256";
	} else {
		EVP_PKEY_free(rp->key);
		rp->key = NULL;
		return FB_ERR_SET(err, FB_ERR_CONFIG,
		    "%s: private_key_jwt needs an RSA (2048+) or P-256 key", path);
	}
	return FB_OK;
}

fb_rc
fb_oidc_rp_new(const struct fb_oidc_rp_opts *o, struct fb_oidc_rp **out, struct fb_err *err)
{
	const struct fb_conf_provider *p = o->provider;
	struct fb_oidc_rp *rp;
	pthread_condattr_t ca;
	size_t len = 0;
	fb_rc rc = FB_OK;

	*out = NULL;
	if (p->type != FB_PROVIDER_OIDC || p->issuer == NULL || p->client_id == NULL)
		return FB_ERR_SET(
		    err, FB_ERR_CONFIG, "provider %s: not an OpenID Connect provider", p->name);
	if ((rp = calloc(1, sizeof(*rp))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&rp->lock, NULL);
	/* Waits end at a login's deadline, which is monotonic (login_deadline). */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rp->fetched, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&rp->slot_lock, NULL);
	pthread_cond_init(&rp->slot_free, NULL);
	rp->p = p;
	rp->skew = o->skew;
	rp->refetch_min = o->refetch_min;
	if ((rp->redirect_uri = strdup(o->redirect_uri)) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	else if (p->client_auth == FB_CLIENT_AUTH_PRIVATE_KEY_JWT)
		rc = p->client_key ? load_client_key(rp, p->client_key, err)
		                   : FB_ERR_SET(err, FB_ERR_CONFIG, "no client_key");
	else if (p->client_secret_file == NULL)
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "no client_secret_file");
	else if ((rc = read_secret(p->client_secret_file, RP_SECRET_MAX, &rp->secret, &len, err)) ==
	        FB_OK &&
	    len == 0)
		rc = FB_ERR_SET(err, FB_ERR_CONFIG, "%s: empty", p->client_secret_file);
	if (rc != FB_OK) {
		fb_err_prefix(err, "provider %s", p->name);
		fb_oidc_rp_free(rp);
		return rc;
	}
	*out = rp;
	return FB_OK;
}

void
fb_oidc_rp_free(struct fb_oidc_rp *rp)
{
	if (rp == NULL)
		return;
	fb_secret_free(rp->secret);
	EVP_PKEY_free(rp->key);
	free(rp->redirect_uri);
	fb_oidc_discovery_clear(&rp->disc);
	fb_oidc_keys_free(rp->keys);
	pthread_mutex_destroy(&rp->lock);
	pthread_cond_destroy(&rp->fetched);
	pthread_mutex_destroy(&rp->slot_lock);
	pthread_cond_destroy(&rp->slot_free);
	free(rp);
}

const struct fb_conf_provider *
fb_oidc_rp_provider(const struct fb_oidc_rp *rp)
{
	return rp->p;
}

void
fb_oidc_outcome_clear(struct fb_oidc_outcome *o)
{
	fb_identity_free(o->identity);
	json_decref(o->claims);
	memset(o, 0, sizeof(*o));
}

static fb_rc
random_b64url(size_t bytes, char *out, size_t out_size)
{
	unsigned char r[32];

	if (bytes > sizeof(r) || fb_random_bytes(r, bytes) != FB_OK)
		return FB_ERR_CRYPTO;
	return fb_b64url_encode(r, bytes, out, out_size);
}

fb_rc
fb_oidc_login_new(struct fb_oidc_login *out, struct fb_err *err)
{
	if (random_b64url(16, out->state, sizeof(out->state)) != FB_OK ||
	    random_b64url(16, out->nonce, sizeof(out->nonce)) != FB_OK ||
	    random_b64url(32, out->verifier, sizeof(out->verifier)) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "no random bytes");
	return FB_OK;
}

/* ---- discovery and keys ---- */

/*
 * Waits, with the lock held, while *flying (a fetch another login makes); false
 * when the login's deadline came first.
 */
static bool
flight_wait(struct fb_oidc_rp *rp, const bool *flying, int64_t deadline)
{
	struct timespec until = { .tv_sec = deadline / MS_PER_S,
		.tv_nsec = (long)(deadline % MS_PER_S) * NS_PER_MS };

	while (*flying)
		if (pthread_cond_timedwait(&rp->fetched, &rp->lock, &until) == ETIMEDOUT && *flying)
			return false;
	return true;
}

static fb_rc
flight_timed_out(const struct fb_oidc_rp *rp, const char *what, struct fb_err *err)
{
	return FB_ERR_SET(err, FB_ERR_IO,
	    "provider %s: unavailable: its %s, fetched for another login, did not come within "
	    "this login's %llds",
	    rp->p->name, what, (long long)rp->p->timeout);
}

/*
 * Why a fetch failed, as logins are told: a misconfiguration names the
 * provider so. The reason is cut to leave room for that (the name is at most
 * PROVIDER_SHOWN characters here).
 */
#define PROVIDER_SHOWN 64
#define FAILURE_REASON_KEPT (FB_ERR_MSG_MAX - PROVIDER_SHOWN - 96)
static void
failure_msg(const struct fb_oidc_rp *rp, fb_rc rc, const struct fb_err *why, char *out, size_t size)
{
	if (rc == FB_ERR_CONFIG)
		(void)snprintf(out, size,
		    "%.*s (provider %.*s is misconfigured: retrying will not help until it is "
		    "fixed)",
		    FAILURE_REASON_KEPT, why->msg, PROVIDER_SHOWN, rp->p->name);
	else
		(void)snprintf(out, size, "%s", why->msg);
}

/*
 * Fetches and checks the discovery document; called without the lock.
 * FB_ERR_CONFIG or FB_ERR_IO as oidc_status_class says.
 */
static fb_rc
fetch_discovery(
    const struct fb_oidc_rp *rp, int64_t deadline, struct fb_oidc_discovery *d, struct fb_err *err)
{
	long ms = 0;
	struct oidc_http_reply r = { 0 };
	/* The issuer is the configuration's word: loopback http where it says so. */
	static const struct fb_url_rule configured = { .loopback_http = true };
	char url[2200];
	size_t n = strlen(rp->p->issuer);
	fb_rc rc;

	/* Discovery 1.0, 4: the issuer with any trailing slash dropped, then the well-known path.
	 */
	while (n > 0 && rp->p->issuer[n - 1] == '/')
		n--;
	(void)snprintf(
	    url, sizeof(url), "%.*s/.well-known/openid-configuration", (int)n, rp->p->issuer);
	if ((rc = call_budget(rp, deadline, &ms, err)) == FB_OK &&
	    (rc = oidc_http_get(url, &configured, NULL, ms, &r, err)) != FB_OK)
		rc = oidc_refusal_class(rc);
	if (rc == FB_OK && r.status != HTTP_OK) {
		/* No document there: most often an issuer without the realm's path. */
		const char *hint = r.status == HTTP_NOT_FOUND ? NO_DISCOVERY_HINT : "";

		rc = FB_ERR_SET(err, oidc_status_class(r.status), "%.*s: HTTP status %ld%s",
		    URL_SHOWN, url, r.status, hint);
	}
	/*
	 * Unparseable, another issuer's, an endpoint (jwks_uri too) the URL policy refuses:
	 * said with the URL asked, so a longer or shorter issuer shows beside the document's.
	 */
	if (rc == FB_OK) {
		struct fb_err perr = { 0 };

		rc = fb_oidc_discovery_parse(r.body, r.len, rp->p->issuer, d, &perr);
		if (rc != FB_OK)
			rc = FB_ERR_SET(err, oidc_refusal_class(rc), "asked %.*s: %s", URL_SHOWN,
			    url, perr.msg);
	}
	free(r.body);
	return rc;
}

/*
 * Makes sure the discovery document is known: this login's fetch, or the one
 * in flight. Called and returns with the lock held; it is dropped while fetching.
 */
static fb_rc
need_discovery(struct fb_oidc_rp *rp, int64_t now, int64_t deadline, struct fb_err *err)
{
	struct fb_oidc_discovery d = { 0 };
	struct fb_err ferr = { 0 };
	fb_rc rc;

	if (!flight_wait(rp, &rp->disc_fetching, deadline))
		return flight_timed_out(rp, "discovery document", err);
	if (rp->have_disc)
		return FB_OK;
	if (rp->disc_failed != 0 && now - rp->disc_failed < RP_RETRY_S)
		return FB_ERR_SET(err, rp->disc_failed_rc,
		    "discovery of %s failed less than %ds ago: %s", rp->p->issuer, RP_RETRY_S,
		    rp->disc_failed_msg);
	rp->disc_fetching = true;
	pthread_mutex_unlock(&rp->lock);
	rc = fetch_discovery(rp, deadline, &d, &ferr);
	pthread_mutex_lock(&rp->lock);
	rp->disc_fetching = false;
	if (rc == FB_OK) {
		rp->disc = d;
		rp->have_disc = true;
	} else {
		rp->disc_failed = now;
		rp->disc_failed_rc = rc;
		failure_msg(rp, rc, &ferr, rp->disc_failed_msg, sizeof(rp->disc_failed_msg));
		(void)FB_ERR_SET(err, rc, "%s", rp->disc_failed_msg);
	}
	pthread_cond_broadcast(&rp->fetched);
	return rc;
}

/* Fetches and parses the key set at jwks_uri; called without the lock. */
static fb_rc
fetch_keys(const struct fb_oidc_rp *rp, const char *jwks_uri, int64_t deadline,
    struct fb_oidc_keys **k, struct fb_err *err)
{
	long ms = 0;
	struct oidc_http_reply r = { 0 };
	struct fb_url_rule rule;
	fb_rc rc;

	fb_oidc_endpoint_rule(rp->p->issuer, jwks_uri, &rule);
	if ((rc = call_budget(rp, deadline, &ms, err)) == FB_OK &&
	    (rc = oidc_http_get(jwks_uri, &rule, NULL, ms, &r, err)) != FB_OK)
		rc = oidc_refusal_class(rc);
	if (rc == FB_OK && r.status != HTTP_OK)
		rc = FB_ERR_SET(
		    err, oidc_status_class(r.status), "%s: HTTP status %ld", jwks_uri, r.status);
	if (rc == FB_OK && (rc = fb_oidc_keys_parse(r.body, r.len, k, err)) != FB_OK) {
		rc = oidc_refusal_class(rc);
		fb_err_prefix(err, "%s", jwks_uri);
	}
	free(r.body);
	return rc;
}

/*
 * Fetches the keys as this login's flight: called and returns with the lock
 * held, dropped while fetching. A failure keeps the last good set.
 */
static fb_rc
keys_flight(struct fb_oidc_rp *rp, int64_t now, int64_t deadline, struct fb_err *err)
{
	struct fb_oidc_keys *k = NULL;
	struct fb_err ferr = { 0 };
	fb_rc rc;

	rp->keys_fetching = true;
	rp->keys_tried = now;
	pthread_mutex_unlock(&rp->lock);
	/* disc.jwks_uri: discovery is known before any key fetch and never changes after. */
	rc = fetch_keys(rp, rp->disc.jwks_uri, deadline, &k, &ferr);
	pthread_mutex_lock(&rp->lock);
	rp->keys_fetching = false;
	if (rc == FB_OK) {
		/* Validations use the keys under the lock only: the old set is no one's now. */
		fb_oidc_keys_free(rp->keys);
		rp->keys = k;
		rp->keys_fetched = now;
		rp->keys_stale = false;
	} else {
		rp->keys_stale = true;
		rp->keys_failed_rc = rc;
		failure_msg(rp, rc, &ferr, rp->keys_failed_msg, sizeof(rp->keys_failed_msg));
		fb_log(FB_LOG_WARN, "provider %s: keys: %s%s", rp->p->name, rp->keys_failed_msg,
		    rp->keys ? " (the last good set stays in use)" : "");
		(void)FB_ERR_SET(err, rc, "%s", rp->keys_failed_msg);
	}
	pthread_cond_broadcast(&rp->fetched);
	return rc;
}

/*
 * Discovery and a key set for a login: fetched when missing, the keys again
 * once old. Called and returns with the lock held.
 */
static fb_rc
prepare(struct fb_oidc_rp *rp, int64_t now, int64_t deadline, struct fb_err *err)
{
	fb_rc rc;

	if ((rc = need_discovery(rp, now, deadline, err)) != FB_OK)
		return rc;
	/* Without any key set this login needs the fetch in flight; with one, it goes on. */
	if (rp->keys == NULL && !flight_wait(rp, &rp->keys_fetching, deadline))
		return flight_timed_out(rp, "key set", err);
	if (rp->keys_fetching)
		return FB_OK;
	if (rp->keys == NULL || now - rp->keys_fetched >= RP_KEYS_MAX_AGE) {
		if (rp->keys == NULL && rp->keys_tried != 0 && now - rp->keys_tried < RP_RETRY_S)
			return FB_ERR_SET(err, rp->keys_failed_rc,
			    "keys of %s: fetch failed less than %ds ago: %s", rp->p->issuer,
			    RP_RETRY_S, rp->keys_failed_msg);
		if ((rc = keys_flight(rp, now, deadline, err)) != FB_OK && rp->keys == NULL)
			return rc;
	}
	return FB_OK;
}

/* ---- ahead of logins ---- */

fb_rc
fb_oidc_rp_refresh(struct fb_oidc_rp *rp, int64_t now, struct fb_err *err)
{
	fb_rc rc = FB_OK;

	pthread_mutex_lock(&rp->lock);
	if (now >= rp->refresh_at) {
		rc = prepare(rp, now, login_deadline(rp), err);
		rp->refresh_failing = rc == FB_OK ? 0 : rp->refresh_failing + 1;
		rp->refresh_at = rc == FB_OK ? rp->keys_fetched + RP_KEYS_MAX_AGE
		                             : now +
		        fb_backoff_delay(RP_RETRY_S, RP_REFRESH_RETRY_MAX, rp->refresh_failing - 1);
	}
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

int64_t
fb_oidc_rp_next_refresh(struct fb_oidc_rp *rp)
{
	int64_t at;

	pthread_mutex_lock(&rp->lock);
	at = rp->refresh_at;
	pthread_mutex_unlock(&rp->lock);
	return at;
}

fb_rc
fb_oidc_rp_status(struct fb_oidc_rp *rp, char *why, size_t size)
{
	fb_rc rc = FB_OK;
	const char *msg = "";

	pthread_mutex_lock(&rp->lock);
	if (!rp->have_disc && rp->disc_failed != 0) {
		rc = rp->disc_failed_rc;
		msg = rp->disc_failed_msg;
	} else if (rp->have_disc && rp->keys == NULL && rp->keys_stale) {
		rc = rp->keys_failed_rc;
		msg = rp->keys_failed_msg;
	}
	if (why != NULL && size > 0)
		(void)snprintf(why, size, "%s", msg);
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

/* ---- the authorization request ---- */

static fb_rc
s256(const char *verifier, char out[FB_OIDC_VERIFIER_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!EVP_Digest(verifier, strlen(verifier), md, &n, EVP_sha256(), NULL) || n != sizeof(md))
		return FB_ERR_CRYPTO;
	return fb_b64url_encode(md, sizeof(md), out, FB_OIDC_VERIFIER_LEN + 1);
}

static fb_rc
append_param(struct fb_buf *b, const char *name, const char *value)
{
	fb_rc rc = fb_buf_printf(b, "%s%s=", b->len == 0 ? "" : "&", name);

	return rc == FB_OK ? oidc_url_encode(b, value) : rc;
}

static fb_rc
rp_auth_url(struct fb_oidc_rp *rp, const struct fb_oidc_login *l, int64_t now, char **url,
    struct fb_err *err)
{
	char challenge[FB_OIDC_VERIFIER_LEN + 1];
	struct fb_buf q, scope;
	fb_rc rc;

	*url = NULL;
	pthread_mutex_lock(&rp->lock);
	rc = need_discovery(rp, now, login_deadline(rp), err);
	fb_buf_init(&q, 16384);
	fb_buf_init(&scope, 4096);
	if (rc == FB_OK && s256(l->verifier, challenge) != FB_OK)
		rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "no SHA-256");
	for (size_t i = 0; rc == FB_OK && i < rp->p->scopes.n; i++)
		rc = fb_buf_printf(&scope, "%s%s", i ? " " : "", rp->p->scopes.v[i]);
	if (rc == FB_OK && scope.data == NULL)
		rc = fb_buf_append(&scope, "openid", 6);
	if (rc == FB_OK)
		rc = fb_buf_printf(&q, "%s%c", rp->disc.authorization_endpoint,
		    strchr(rp->disc.authorization_endpoint, '?') ? '&' : '?');
	if (rc == FB_OK) {
		/* append_param starts with '&' once the buffer holds something: the endpoint
		 * and its '?' count as that something, so the first pair is written here. */
		rc = fb_buf_printf(&q, "response_type=code");
		if (rc == FB_OK)
			rc = append_param(&q, "client_id", rp->p->client_id);
		if (rc == FB_OK)
			rc = append_param(&q, "redirect_uri", rp->redirect_uri);
		if (rc == FB_OK)
			rc = append_param(&q, "scope", scope.data);
		if (rc == FB_OK)
			rc = append_param(&q, "state", l->state);
		if (rc == FB_OK)
			rc = append_param(&q, "nonce", l->nonce);
		if (rc == FB_OK)
			rc = append_param(&q, "code_challenge", challenge);
		if (rc == FB_OK)
			rc = append_param(&q, "code_challenge_method", "S256");
		if (rc != FB_OK)
			rc = FB_ERR_SET(err, rc, "authorization request too long");
	}
	pthread_mutex_unlock(&rp->lock);
	fb_buf_free(&scope);
	if (rc != FB_OK) {
		fb_buf_free(&q);
		return rc;
	}
	*url = q.data;
	return FB_OK;
}

fb_rc
fb_oidc_rp_end_session_url(struct fb_oidc_rp *rp, const char *post_logout_redirect_uri, int64_t now,
    char **url, struct fb_err *err)
{
	struct fb_buf q;
	fb_rc rc;

	*url = NULL;
	pthread_mutex_lock(&rp->lock);
	if ((rc = need_discovery(rp, now, login_deadline(rp), err)) != FB_OK ||
	    rp->disc.end_session_endpoint == NULL) {
		pthread_mutex_unlock(&rp->lock);
		return rc;
	}
	fb_buf_init(&q, 8192);
	rc = fb_buf_printf(&q, "%s%cclient_id=", rp->disc.end_session_endpoint,
	    strchr(rp->disc.end_session_endpoint, '?') ? '&' : '?');
	pthread_mutex_unlock(&rp->lock);
	if (rc == FB_OK)
		rc = oidc_url_encode(&q, rp->p->client_id);
	if (rc == FB_OK && post_logout_redirect_uri != NULL)
		rc = append_param(&q, "post_logout_redirect_uri", post_logout_redirect_uri);
	if (rc != FB_OK) {
		fb_buf_free(&q);
		return FB_ERR_SET(err, rc, "end session URL too long");
	}
	*url = q.data;
	return FB_OK;
}

/* ---- the token endpoint ---- */

#define ES256_COORD_LEN 32 /* r and s of a P-256 signature, each */

/*
 * A client assertion (RFC 7523): iss = sub = client_id, aud = the token endpoint.
 * The signature's buffers are sized from the key (an RSA signature is as long as
 * its modulus, and any RSA key of 2048 bits or more is accepted at load).
 */
static fb_rc
client_assertion(struct fb_oidc_rp *rp, int64_t now, struct fb_buf *out, struct fb_err *err)
{
	char jti[FB_OIDC_STATE_LEN + 1], *payload = NULL, *hdr_b64 = NULL, *pl_b64 = NULL;
	unsigned char *der = NULL, raw[2 * ES256_COORD_LEN];
	const unsigned char *sig;
	size_t der_len = 0, sig_len = 0, n;
	char *sig_b64 = NULL, hdr[64];
	EVP_MD_CTX *md = NULL;
	json_t *claims;
	int key_size = EVP_PKEY_get_size(rp->key);
	fb_rc rc = FB_ERR_CRYPTO;

	if (key_size <= 0)
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "the client key has no signature size");
	if (random_b64url(16, jti, sizeof(jti)) != FB_OK)
		return FB_ERR_SET(err, FB_ERR_CRYPTO, "no random bytes");
	claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "iss", rp->p->client_id, "sub",
	    rp->p->client_id, "aud", rp->disc.token_endpoint, "jti", jti, "iat", (json_int_t)now,
	    "exp", (json_int_t)now + RP_ASSERTION_TTL);
	payload = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
	json_decref(claims);
	(void)snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", rp->key_alg);
	n = strlen(hdr);
	hdr_b64 = malloc(FB_B64URL_ENCODED_LEN(n) + 1);
	if (payload != NULL)
		pl_b64 = malloc(FB_B64URL_ENCODED_LEN(strlen(payload)) + 1);
	der_len = (size_t)key_size;
	der = malloc(der_len);
	if (hdr_b64 == NULL || pl_b64 == NULL || der == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	(void)fb_b64url_encode(hdr, n, hdr_b64, FB_B64URL_ENCODED_LEN(n) + 1);
	(void)fb_b64url_encode(
	    payload, strlen(payload), pl_b64, FB_B64URL_ENCODED_LEN(strlen(payload)) + 1);
	fb_buf_reset(out);
	if (fb_buf_printf(out, "%s.%s", hdr_b64, pl_b64) != FB_OK) {
		rc = FB_ERR_SET(err, FB_ERR_LIMIT, "client assertion too long");
		goto done;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, rp->key) != 1 ||
	    EVP_DigestSign(md, der, &der_len, (const unsigned char *)out->data, out->len) != 1) {
		rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "cannot sign the client assertion");
		goto done;
	}
	sig = der;
	sig_len = der_len;
	if (strcmp(rp->key_alg, "ES256") == 0) {
		/* JWS wants r || s, 32 bytes each (RFC 7518 3.4), not DER. */
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
		if (es == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, ES256_COORD_LEN) != ES256_COORD_LEN ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + ES256_COORD_LEN, ES256_COORD_LEN) !=
		        ES256_COORD_LEN) {
			ECDSA_SIG_free(es);
			rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "cannot sign the client assertion");
			goto done;
		}
		ECDSA_SIG_free(es);
		sig = raw;
		sig_len = sizeof(raw);
	}
	if ((sig_b64 = malloc(FB_B64URL_ENCODED_LEN(sig_len) + 1)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	(void)fb_b64url_encode(sig, sig_len, sig_b64, FB_B64URL_ENCODED_LEN(sig_len) + 1);
	rc = fb_buf_printf(out, ".%s", sig_b64) == FB_OK
	    ? FB_OK
	    : FB_ERR_SET(err, FB_ERR_LIMIT, "client assertion too long");
done:
	EVP_MD_CTX_free(md);
	free(der);
	free(sig_b64);
	free(payload);
	free(hdr_b64);
	free(pl_b64);
	return rc;
}

/* Whether an IdP's error_description (NULL: none) is about PKCE. */
static bool
mentions_pkce(const char *description)
{
	static const char *const words[] = { "pkce", "code_verifier", "code_challenge", NULL };

	for (size_t i = 0; description != NULL && words[i] != NULL; i++)
		if (strcasestr(description, words[i]) != NULL)
			return true;
	return false;
}

/* Redeems code; *tokens is the token endpoint's JSON answer. */
static fb_rc
redeem_code(struct fb_oidc_rp *rp, const char *code, const char *verifier, int64_t now,
    int64_t deadline, json_t **tokens, struct fb_err *err)
{
	long ms = 0;
	struct oidc_http_reply r = { 0 };
	struct fb_url_rule rule;
	struct fb_buf form, assertion;
	json_t *doc = NULL, *e;
	fb_rc rc = FB_OK;

	*tokens = NULL;
	fb_buf_init(&form, 32768);
	fb_buf_init(&assertion, 16384);
	rc = append_param(&form, "grant_type", "authorization_code");
	if (rc == FB_OK)
		rc = append_param(&form, "code", code);
	if (rc == FB_OK)
		rc = append_param(&form, "redirect_uri", rp->redirect_uri);
	if (rc == FB_OK)
		rc = append_param(&form, "code_verifier", verifier);
	if (rc == FB_OK && rp->p->client_auth != FB_CLIENT_AUTH_SECRET_BASIC)
		rc = append_param(&form, "client_id", rp->p->client_id);
	if (rc == FB_OK && rp->p->client_auth == FB_CLIENT_AUTH_SECRET_POST)
		rc = append_param(&form, "client_secret", rp->secret);
	if (rc == FB_OK && rp->p->client_auth == FB_CLIENT_AUTH_PRIVATE_KEY_JWT) {
		if ((rc = client_assertion(rp, now, &assertion, err)) == FB_OK)
			rc = append_param(&form, "client_assertion_type",
			    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
		if (rc == FB_OK)
			rc = append_param(&form, "client_assertion", assertion.data);
	}
	if (rc != FB_OK) {
		if (err == NULL || err->msg[0] == '\0')
			FB_ERR_SET(err, rc, "token request too long");
		goto done;
	}
	fb_oidc_endpoint_rule(rp->p->issuer, rp->disc.token_endpoint, &rule);
	if ((rc = call_budget(rp, deadline, &ms, err)) == FB_OK)
		rc = oidc_http_post_form(rp->disc.token_endpoint, &rule, form.data,
		    rp->p->client_auth == FB_CLIENT_AUTH_SECRET_BASIC ? rp->p->client_id : NULL,
		    rp->p->client_auth == FB_CLIENT_AUTH_SECRET_BASIC ? rp->secret : NULL, ms, &r,
		    err);
	if (rc != FB_OK)
		goto done;
	doc = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, NULL);
	if (r.status != 200) {
		/* RFC 6749 5.2: error is an ASCII code; the endpoint's word, so bounded and
		 * escaped before it reaches a log. */
		char shown[ERROR_CODE_SHOWN], said[DESCRIPTION_SHOWN];
		json_t *d = json_object_get(doc, "error_description");
		bool pkce;

		e = json_object_get(doc, "error");
		shown[0] = said[0] = '\0';
		if (json_is_string(e))
			fb_excerpt(
			    json_string_value(e), json_string_length(e), shown, sizeof(shown));
		/* PKCE refused shows as invalid_request or invalid_grant naming the verifier. */
		pkce = (strcmp(shown, "invalid_request") == 0 ||
		           strcmp(shown, "invalid_grant") == 0) &&
		    json_is_string(d) && mentions_pkce(json_string_value(d));
		if (pkce)
			fb_excerpt(json_string_value(d), json_string_length(d), said, sizeof(said));
		/* A 5xx (or 429) is the IdP's trouble, not a verdict on this login: try again. */
		rc = FB_ERR_SET(err,
		    r.status >= HTTP_SERVER_ERROR || r.status == HTTP_TOO_MANY ? FB_ERR_IO
		                                                               : FB_ERR_INVALID,
		    "token endpoint: HTTP status %ld%s%s%s%s%s", r.status,
		    json_is_string(e) ? ", error " : "", shown, pkce ? " (" : "", said,
		    pkce ? "): " PKCE_HINT : "");
		goto done;
	}
	if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "id_token"))) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "token endpoint: no id_token in its answer");
		goto done;
	}
	e = json_object_get(doc, "token_type");
	if (!json_is_string(e) || strcasecmp(json_string_value(e), "Bearer") != 0) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "token endpoint: token_type is not Bearer");
		goto done;
	}
	*tokens = doc;
	doc = NULL;
done:
	if (form.data != NULL)
		fb_cleanse(form.data, form.len);
	fb_buf_free(&form);
	fb_buf_free(&assertion);
	if (r.body != NULL)
		fb_cleanse(r.body, r.len);
	free(r.body);
	json_decref(doc);
	return rc;
}

/* ---- ID token and userinfo ---- */

/* Validates against the keys in force; called with the lock held, dropped while fetching. */
/* access_token: the code exchange's (its at_hash checked), or NULL. */
static fb_rc
validate_locked(struct fb_oidc_rp *rp, const char *token, const char *nonce, bool logout,
    const char *access_token, int64_t now, int64_t iat_min, int64_t deadline, json_t **claims,
    struct fb_err *err)
{
	struct fb_oidc_expect e = {
		.logout_token = logout,
		.access_token = access_token,
		.iat_min = iat_min,
		.issuer = rp->p->issuer,
		.client_id = rp->p->client_id,
		.nonce = nonce,
		.algs = rp->p->allowed_algs.v,
		.n_algs = rp->p->allowed_algs.n,
		.now = now,
		.skew = rp->skew,
	};
	bool looked = false;
	fb_rc rc;

	rc = fb_oidc_id_token_validate(rp->keys, token, strlen(token), &e, claims, err);
	if (rc == FB_ERR_NOTFOUND &&
	    (rp->keys_fetching || now - rp->keys_tried >= rp->refetch_min)) {
		/* An unknown kid: the issuer may have rotated. One fetch (this login's, or the
		 * one in flight, which is as fresh), then once more against the set now in force.
		 */
		struct fb_err ferr = { 0 };
		if (rp->keys_fetching) {
			/* Still in flight at this login's deadline: not fetched in its time. */
			looked = flight_wait(rp, &rp->keys_fetching, deadline) && !rp->keys_stale;
		} else {
			looked = keys_flight(rp, now, deadline, &ferr) == FB_OK;
		}
		if (looked)
			rc = fb_oidc_id_token_validate(
			    rp->keys, token, strlen(token), &e, claims, err);
	}
	if (rc == FB_ERR_NOTFOUND && !looked) {
		/* The key may be in a set we could not fetch, or may not fetch again yet
		 * (keys.refetch_min): the token is not proven bad, the IdP is unavailable, or
		 * misconfigured when its key set stays wrong (a 404, not a JWKS). */
		if (rp->keys_stale && !rp->keys_fetching && rp->keys_failed_rc == FB_ERR_CONFIG)
			return FB_ERR_SET(err, FB_ERR_CONFIG,
			    "%s: its key set could not be fetched: %s", rp->p->issuer,
			    rp->keys_failed_msg);
		if (rp->keys_stale || rp->keys_fetching)
			fb_err_prefix(err, "%s: its key set could not be fetched", rp->p->issuer);
		else
			fb_err_prefix(err, "%s: its key set was fetched less than %llds ago",
			    rp->p->issuer, (long long)rp->refetch_min);
		return FB_ERR_IO;
	}
	if (rc == FB_ERR_NOTFOUND)
		rc = FB_ERR_INVALID;
	return rc;
}

static fb_rc
rp_validate_id_token(struct fb_oidc_rp *rp, const char *token, const char *nonce, int64_t now,
    int64_t max_age, json_t **claims, struct fb_err *err)
{
	int64_t deadline = login_deadline(rp);
	fb_rc rc;

	*claims = NULL;
	pthread_mutex_lock(&rp->lock);
	rc = prepare(rp, now, deadline, err);
	if (rc == FB_OK)
		rc = validate_locked(rp, token, nonce, false, NULL, now, fb_time_sub(now, max_age),
		    deadline, claims, err);
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

static fb_rc
rp_validate_logout(
    struct fb_oidc_rp *rp, const char *token, int64_t now, json_t **claims, struct fb_err *err)
{
	int64_t deadline = login_deadline(rp);
	fb_rc rc;

	*claims = NULL;
	pthread_mutex_lock(&rp->lock);
	rc = prepare(rp, now, deadline, err);
	if (rc == FB_OK)
		/* A logout token's replay is stopped by its jti, kept until its exp. */
		rc = validate_locked(
		    rp, token, NULL, true, NULL, now, INT64_MIN, deadline, claims, err);
	pthread_mutex_unlock(&rp->lock);
	return rc;
}

/* Claims about the token itself, which userinfo has no say in. */
static bool
token_claim(const char *k)
{
	static const char *const names[] = { "iss", "aud", "exp", "iat", "nbf", "nonce", "azp",
		"at_hash", "c_hash", "auth_time", "acr", "amr", "sid", "jti" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(k, names[i]) == 0)
			return true;
	return false;
}

/* Adds userinfo's claims that the ID token lacks; a contradiction keeps the ID token's. */
static fb_rc
userinfo_merge(struct fb_oidc_rp *rp, const char *endpoint, const char *access_token,
    int64_t deadline, json_t *claims, struct fb_err *err)
{
	long ms = 0;
	struct oidc_http_reply r = { 0 };
	struct fb_url_rule rule;
	json_t *doc, *sub, *v, *mine;
	const char *k;
	fb_rc rc;

	fb_oidc_endpoint_rule(rp->p->issuer, endpoint, &rule);
	if ((rc = call_budget(rp, deadline, &ms, err)) != FB_OK ||
	    (rc = oidc_http_get(endpoint, &rule, access_token, ms, &r, err)) != FB_OK)
		return rc;
	if (r.status != 200) {
		free(r.body);
		return FB_ERR_SET(err, FB_ERR_INVALID, "userinfo: HTTP status %ld", r.status);
	}
	if (!r.json) {
		free(r.body);
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "userinfo: not application/json (signed userinfo is not accepted)");
	}
	doc = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, NULL);
	free(r.body);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return FB_ERR_SET(err, FB_ERR_INVALID, "userinfo: not a JSON object");
	}
	/* Core 5.3.2: the sub of userinfo must be the ID token's, else it is another user's. */
	sub = json_object_get(doc, "sub");
	if (!json_is_string(sub) ||
	    strcmp(json_string_value(sub), json_string_value(json_object_get(claims, "sub"))) !=
	        0) {
		json_decref(doc);
		return FB_ERR_SET(err, FB_ERR_INVALID, "userinfo: sub is not the ID token's");
	}
	json_object_foreach(doc, k, v)
	{
		if (token_claim(k))
			continue;
		if ((mine = json_object_get(claims, k)) == NULL) {
			if (json_object_set(claims, k, v) != 0) {
				json_decref(doc);
				return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			}
		} else if (!json_equal(mine, v)) {
			fb_log(FB_LOG_WARN,
			    "provider %s: userinfo contradicts the ID token on claim \"%.64s\": "
			    "the ID token's value stays",
			    rp->p->name, k);
		}
	}
	json_decref(doc);
	return FB_OK;
}

static bool
same_secret(const char *a, const char *b)
{
	size_t n = strlen(a);

	return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

static fb_rc
fail(struct fb_oidc_outcome *out, enum fb_oidc_failure f, fb_rc rc)
{
	out->failure = f;
	return rc;
}

static fb_rc
rp_finish(struct fb_oidc_rp *rp, const struct fb_oidc_login *l, const struct fb_oidc_response *resp,
    int64_t now, struct fb_oidc_outcome *out, struct fb_err *err)
{
	json_t *tokens = NULL, *claims = NULL, *at, *sid, *auth_time;
	char *userinfo = NULL;
	int64_t deadline = login_deadline(rp); /* one for every call this login makes */
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (resp->error != NULL) {
		/* invalid_request there may be PKCE refused (some IdP clients turn it off). */
		const char *hint = mentions_pkce(resp->error_description) ? "; " PKCE_HINT
		    : strcmp(resp->error, "invalid_request") == 0
		    ? "; if it refuses PKCE: " PKCE_HINT
		    : "";

		return fail(out, FB_OIDC_IDP_ERROR,
		    FB_ERR_SET(err, FB_ERR_INVALID, "the IdP answered error=%.64s%s%.200s%s",
		        resp->error, resp->error_description ? ": " : "",
		        resp->error_description ? resp->error_description : "", hint));
	}
	if (resp->state == NULL || !same_secret(resp->state, l->state))
		return fail(out, FB_OIDC_BAD_RESPONSE,
		    FB_ERR_SET(err, FB_ERR_INVALID, "state is not this login's"));
	if (resp->code == NULL || resp->code[0] == '\0' || strlen(resp->code) > 4096)
		return fail(out, FB_OIDC_BAD_RESPONSE,
		    FB_ERR_SET(err, FB_ERR_INVALID, "no authorization code"));

	pthread_mutex_lock(&rp->lock);
	if ((rc = prepare(rp, now, deadline, err)) != FB_OK) {
		pthread_mutex_unlock(&rp->lock);
		return fail(out, FB_OIDC_UNAVAILABLE, rc);
	}
	/* RFC 9207: an IdP that promises iss must send it, and any iss sent must be ours. */
	if ((resp->iss == NULL && rp->disc.iss_parameter) ||
	    (resp->iss != NULL && strcmp(resp->iss, rp->p->issuer) != 0)) {
		pthread_mutex_unlock(&rp->lock);
		return fail(out, FB_OIDC_ISS_MISMATCH,
		    FB_ERR_SET(err, FB_ERR_INVALID, "%s: the authorization response %s",
		        rp->p->issuer, resp->iss ? "names another issuer" : "lacks iss"));
	}
	if (rp->p->userinfo && rp->disc.userinfo_endpoint != NULL &&
	    (userinfo = strdup(rp->disc.userinfo_endpoint)) == NULL) {
		pthread_mutex_unlock(&rp->lock);
		return fail(
		    out, FB_OIDC_UNAVAILABLE, FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory"));
	}
	pthread_mutex_unlock(&rp->lock);

	/* The code exchange runs without the lock: other logins go on meanwhile. */
	if ((rc = redeem_code(rp, resp->code, l->verifier, now, deadline, &tokens, err)) != FB_OK) {
		free(userinfo);
		return fail(out, FB_OIDC_TOKEN_ENDPOINT, rc);
	}
	/* The access token, when the endpoint gave one, must be the one at_hash names. */
	at = json_object_get(tokens, "access_token");
	pthread_mutex_lock(&rp->lock);
	rc = validate_locked(rp, json_string_value(json_object_get(tokens, "id_token")), l->nonce,
	    false, json_is_string(at) ? json_string_value(at) : NULL, now, l->started, deadline,
	    &claims, err);
	pthread_mutex_unlock(&rp->lock);
	if (rc != FB_OK) {
		/* Keys that could not be had say nothing of the token. */
		(void)fail(out,
		    rc == FB_ERR_IO || rc == FB_ERR_CONFIG ? FB_OIDC_UNAVAILABLE : FB_OIDC_ID_TOKEN,
		    rc);
		goto done;
	}
	if (rp->p->userinfo) {
		if (userinfo == NULL || !json_is_string(at)) {
			rc = fail(out, FB_OIDC_USERINFO,
			    FB_ERR_SET(err, FB_ERR_INVALID, "userinfo: %s",
			        userinfo ? "no access_token from the token endpoint"
			                 : "the IdP offers no userinfo endpoint"));
			goto done;
		}
		if ((rc = userinfo_merge(
		         rp, userinfo, json_string_value(at), deadline, claims, err)) != FB_OK) {
			(void)fail(out, FB_OIDC_USERINFO, rc);
			goto done;
		}
	}
	sid = json_object_get(claims, "sid");
	auth_time = json_object_get(claims, "auth_time");
	if ((rc = fb_identity_new(rp->p->name, rp->p->issuer,
	         json_string_value(json_object_get(claims, "sub")),
	         json_is_string(sid) ? json_string_value(sid) : NULL, &out->identity, err)) !=
	    FB_OK) {
		(void)fail(out, FB_OIDC_ID_TOKEN, rc);
		goto done;
	}
	out->identity->authn_time =
	    json_is_integer(auth_time) ? (time_t)json_integer_value(auth_time) : 0;
	out->claims = claims;
	claims = NULL;
done:
	free(userinfo);
	json_decref(claims);
	json_decref(tokens);
	return rc;
}

fb_rc
fb_oidc_rp_auth_url(struct fb_oidc_rp *rp, const struct fb_oidc_login *l, int64_t now, char **url,
    struct fb_err *err)
{
	fb_rc rc;

	if (!in_flight_enter(rp, err)) {
		*url = NULL;
		return FB_ERR_IO;
	}
	rc = rp_auth_url(rp, l, now, url, err);
	in_flight_leave(rp);
	return rc;
}

fb_rc
fb_oidc_rp_validate_id_token(struct fb_oidc_rp *rp, const char *token, const char *nonce,
    int64_t now, int64_t max_age, json_t **claims, struct fb_err *err)
{
	fb_rc rc;

	if (!in_flight_enter(rp, err)) {
		*claims = NULL;
		return FB_ERR_IO;
	}
	rc = rp_validate_id_token(rp, token, nonce, now, max_age, claims, err);
	in_flight_leave(rp);
	return rc;
}

fb_rc
fb_oidc_rp_validate_logout(
    struct fb_oidc_rp *rp, const char *token, int64_t now, json_t **claims, struct fb_err *err)
{
	fb_rc rc;

	if (!in_flight_enter(rp, err)) {
		*claims = NULL;
		return FB_ERR_IO;
	}
	rc = rp_validate_logout(rp, token, now, claims, err);
	in_flight_leave(rp);
	return rc;
}

fb_rc
fb_oidc_rp_finish(struct fb_oidc_rp *rp, const struct fb_oidc_login *l,
    const struct fb_oidc_response *resp, int64_t now, struct fb_oidc_outcome *out,
    struct fb_err *err)
{
	fb_rc rc;

	if (!in_flight_enter(rp, err)) {
		memset(out, 0, sizeof(*out));
		return fail(out, FB_OIDC_UNAVAILABLE, FB_ERR_IO);
	}
	rc = rp_finish(rp, l, resp, now, out, err);
	in_flight_leave(rp);
	return rc;
}
