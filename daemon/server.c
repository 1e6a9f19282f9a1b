/*
 * The HTTP side of the bridge, on GNU libmicrohttpd. Signals are handled
 * synchronously by the main thread (sigwait), so reload runs outside any
 * signal handler and the HTTP threads only ever see a whole runtime: the
 * configuration and what was derived from it (keys, JWKS, trust table).
 */
#include "server_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define SERVE_CONNECTION_TIMEOUT_S 30
#define SERVE_CONNECTION_LIMIT FB_CONF_CONNECTIONS_MAX
#define SERVE_CONNECTION_MEMORY 65536
#define SERVE_VERIFY_CACHE 100000
#define PEER_CERT_CACHE 64
#define PEER_CERT_MAX 16384

#define SERVE_URI_MAX 65536 /* longer request URIs are not kept (and SAML refuses them) */
#define SERVE_BODY_MAX 65536 /* the largest request body read (POST /token, logout) */
#define SERVE_COOKIE_MAX 16384 /* the Cookie headers read, joined */
#define READY_BODY_MAX 65536 /* /readyz and its list of what cannot be reached */
#define SERVE_ACS_BODY_MAX ((size_t)2 << 20) /* a SAML response, base64 and form-encoded */

static struct {
	pthread_mutex_t lock;
	struct runtime *rt; /* one reference held here */
	struct fb_verifier *verifier;
	struct fb_store *store; /* opened once; a new store location takes a restart */
	/* Serialises installing trust tables: reload and the key refresher both do. */
	pthread_mutex_t install_lock;
} state = { .lock = PTHREAD_MUTEX_INITIALIZER, .install_lock = PTHREAD_MUTEX_INITIALIZER };

/*
 * The key refresher: KEY_WORKERS threads fetch remote JWKS when due, or soon after an unknown
 * kid. Each takes one remote's key set at a time (fb_federation_claim), so a remote that hangs
 * holds one worker for its fetch's time limit, never the others' keys. A runtime being built
 * (start, reload) is handed to them too: its new key sets are fetched at once, together.
 */
#define KEY_WORKERS 4
#define KEYS_BUILD_WAIT_S 2 /* the longest a start or reload waits for new key sets */
#define KEYS_IDLE_S 60 /* with nothing due: look again (a reload may add sources) */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the workers: a fetch may be due */
	pthread_cond_t fetched; /* runtime_build: a fetch of the runtime being built ended */
	bool stop, unknown_kid, recheck;
	bool login_busy; /* a worker is refreshing the SAML IdP metadata */
	struct runtime *building; /* one reference, while runtime_build waits for its keys */
	pthread_t threads[KEY_WORKERS];
	size_t n_threads;
} refresher = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.fetched = PTHREAD_COND_INITIALIZER };

/* Sends what a refresh reported to the log, a line at a time. */
static void
log_lines(const struct fb_buf *b)
{
	const char *p = b->data, *nl;

	while (p != NULL && *p != '\0' && (nl = strchr(p, '\n')) != NULL) {
		bool bad = strncmp(p, "ALARM", 5) == 0 || strstr(p, "failed") != NULL;
		fb_log(bad ? FB_LOG_WARN : FB_LOG_INFO, "%.*s", (int)(nl - p), p);
		p = nl + 1;
	}
}

static void
runtime_unref(struct runtime *rt)
{
	if (rt == NULL || atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) != 1)
		return;
	fb_federation_free(rt->fed);
	fb_rules_free(rt->rules);
	fb_login_site_free(rt->login);
	fb_conf_unref(rt->conf);
	free(rt);
}

static struct runtime *
runtime_acquire(void)
{
	struct runtime *rt;

	pthread_mutex_lock(&state.lock);
	rt = state.rt;
	if (rt != NULL)
		atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&state.lock);
	return rt;
}

/*
 * Hands rt's due key sets to the key workers and waits until they are fetched, or
 * KEYS_BUILD_WAIT_S has passed: a remote that hangs delays a start or a reload by that, not by
 * its fetch's time limit. Its fetch goes on; its keys are installed when they come (until
 * then its tokens fail as unknown_key, as an unreachable remote's do).
 */
static void
keys_build_wait(struct runtime *rt)
{
	int64_t since = (int64_t)time(NULL);
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += KEYS_BUILD_WAIT_S;
	pthread_mutex_lock(&refresher.lock);
	if (refresher.n_threads == 0) {
		pthread_mutex_unlock(&refresher.lock);
		return;
	}
	atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
	refresher.building = rt;
	pthread_cond_broadcast(&refresher.wake);
	while (fb_federation_fetches_pending(rt->fed, since) > 0 &&
	    pthread_cond_timedwait(&refresher.fetched, &refresher.lock, &until) == 0)
		;
	refresher.building = NULL;
	pthread_mutex_unlock(&refresher.lock);
	/* Never the last reference: the caller holds its own. */
	atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel);
}

/* Builds everything a configuration implies; nothing is installed unless all of it works. */
static fb_rc
runtime_build(struct fb_conf *conf, struct runtime **out, struct fb_verify_trusts **trusts,
    struct fb_err *err)
{
	struct runtime *rt = calloc(1, sizeof(*rt)), *prev;
	fb_rc rc;

	if (rt == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	atomic_init(&rt->refs, 1);
	rt->conf = conf;
	if ((rc = fb_federation_load(conf, &rt->fed, err)) == FB_OK) {
		/* Keep the remote key sets already fetched; fetch the new ones now, all at
		 * once. A remote that cannot be reached is no reason to refuse the
		 * configuration: its tokens fail as unknown_key until its keys arrive. */
		if ((prev = runtime_acquire()) != NULL) {
			fb_federation_adopt(rt->fed, prev->fed);
			runtime_unref(prev);
		}
		keys_build_wait(rt);
		rc = fb_federation_trusts(rt->fed, trusts, err);
	}
	if (rc != FB_OK) {
		rt->conf = NULL; /* the caller keeps its reference */
		runtime_unref(rt);
		return rc;
	}
	*out = rt;
	return FB_OK;
}

static void
runtime_install(struct runtime *rt, struct fb_verify_trusts *trusts)
{
	struct fb_verify_opts vo;
	struct runtime *old;

	fb_federation_verify_opts(rt->conf, &vo);
	pthread_mutex_lock(&state.install_lock);
	fb_verifier_set_limits(state.verifier, &vo);
	fb_verifier_set_trusts(state.verifier, trusts);
	/* Once this returns no check uses the old rules: the old runtime may go. */
	fb_verifier_set_policy(state.verifier, fb_bridge_inbound_policy, rt->rules);
	pthread_mutex_lock(&state.lock);
	old = state.rt;
	rt->generation = old ? old->generation + 1 : 1;
	state.rt = rt;
	pthread_mutex_unlock(&state.lock);
	pthread_mutex_unlock(&state.install_lock);
	runtime_unref(old);
	/* Keys may have come for it since its trust table was built, and fetches may be due:
	 * let every key worker look again. */
	pthread_mutex_lock(&refresher.lock);
	refresher.recheck = true;
	pthread_cond_broadcast(&refresher.wake);
	pthread_mutex_unlock(&refresher.lock);
}

/* A new trust table when rt is the runtime in force and its key sets changed since its last. */
static void
keys_install(struct runtime *rt)
{
	struct fb_verify_trusts *trusts = NULL;
	struct fb_err err = { 0 };

	/* Built under install_lock: the table installed last is the one built last. */
	pthread_mutex_lock(&state.install_lock);
	if (rt != NULL && state.rt == rt && fb_federation_trusts_stale(rt->fed)) {
		if (fb_federation_trusts(rt->fed, &trusts, &err) == FB_OK)
			fb_verifier_set_trusts(state.verifier, trusts);
		else
			fb_log(FB_LOG_WARN, "new remote keys not installed: %s", err.msg);
	}
	pthread_mutex_unlock(&state.install_lock);
}

/* Fetches one due key set of rt, if there is one; true when it did. */
static bool
keys_fetch_one(struct runtime *rt, int64_t now)
{
	struct fb_err err = { 0 };
	struct fb_buf log;
	size_t idx;

	if (rt == NULL || !fb_federation_claim(rt->fed, now, &idx))
		return false;
	/* Another worker may take the next due set meanwhile. */
	pthread_mutex_lock(&refresher.lock);
	pthread_cond_broadcast(&refresher.wake);
	pthread_mutex_unlock(&refresher.lock);
	fb_buf_init(&log, 65536);
	(void)fb_federation_fetch_claimed(rt->fed, idx, now, &log, &err);
	log_lines(&log);
	fb_buf_free(&log);
	return true;
}

/* With nothing to fetch: SAML IdP metadata from URLs when due (one worker at a time). */
static void
login_refresh(struct runtime *rt)
{
	bool mine;

	if (rt == NULL)
		return;
	pthread_mutex_lock(&refresher.lock);
	mine = !refresher.login_busy;
	refresher.login_busy = true;
	pthread_mutex_unlock(&refresher.lock);
	if (!mine)
		return;
	fb_login_site_refresh(rt->login, (int64_t)time(NULL));
	pthread_mutex_lock(&refresher.lock);
	refresher.login_busy = false;
	pthread_mutex_unlock(&refresher.lock);
}

/* The earlier of a and b, where 0 is none. */
static int64_t
due_min(int64_t a, int64_t b)
{
	return a == 0 || (b != 0 && b < a) ? b : a;
}

static void *
refresher_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct runtime *building = NULL, *rt;
		struct timespec until;
		int64_t now, next;
		bool unknown_kid;

		pthread_mutex_lock(&refresher.lock);
		if (refresher.stop) {
			pthread_mutex_unlock(&refresher.lock);
			return NULL;
		}
		unknown_kid = refresher.unknown_kid;
		refresher.unknown_kid = false;
		refresher.recheck = false;
		if ((building = refresher.building) != NULL)
			atomic_fetch_add_explicit(&building->refs, 1, memory_order_relaxed);
		pthread_mutex_unlock(&refresher.lock);
		/* Read after building: its fetches are marked as made since runtime_build began. */
		now = (int64_t)time(NULL);
		rt = runtime_acquire();
		if (unknown_kid && rt != NULL)
			fb_federation_kick(rt->fed, now);
		if (keys_fetch_one(building, now)) {
			pthread_mutex_lock(&refresher.lock);
			pthread_cond_broadcast(&refresher.fetched);
			pthread_mutex_unlock(&refresher.lock);
			/* Installed already if runtime_build took long enough. */
			keys_install(building);
		} else if (keys_fetch_one(rt, now)) {
			keys_install(rt);
		} else {
			/* Nothing due: the keys that came after its table was built (a reload's
			 * runtime, installed while they were fetched), then wait. */
			keys_install(rt);
			login_refresh(rt);
			next = due_min(rt ? fb_federation_next_refresh(rt->fed) : 0,
			    building ? fb_federation_next_refresh(building->fed) : 0);
			/* The IdPs' metadata and discovery too: one that comes back is used
			 * within its retry, not at the next minute. */
			next = due_min(next, rt ? fb_login_site_next_refresh(rt->login) : 0);
			pthread_mutex_lock(&refresher.lock);
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec = next > 0 && next < (int64_t)until.tv_sec + KEYS_IDLE_S
			    ? (time_t)next
			    : until.tv_sec + KEYS_IDLE_S;
			if (!refresher.stop && !refresher.unknown_kid && !refresher.recheck)
				(void)pthread_cond_timedwait(
				    &refresher.wake, &refresher.lock, &until);
			pthread_mutex_unlock(&refresher.lock);
		}
		runtime_unref(rt);
		runtime_unref(building);
	}
}

/* Stops the key workers and waits for them (a fetch ends within its time limit). */
static void
refreshers_stop(void)
{
	pthread_mutex_lock(&refresher.lock);
	refresher.stop = true;
	pthread_cond_broadcast(&refresher.wake);
	pthread_mutex_unlock(&refresher.lock);
	for (size_t i = 0; i < refresher.n_threads; i++)
		pthread_join(refresher.threads[i], NULL);
	refresher.n_threads = 0;
}

/*
 * Starts the key workers before the first configuration is built, which hands them its key
 * sets; they never take the signals the main thread waits for. False (with none running) when
 * a thread cannot start.
 */
static bool
refreshers_start(void)
{
	sigset_t set, old;
	bool ok = true;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	refresher.stop = false;
	for (size_t i = 0; i < KEY_WORKERS && ok; i++) {
		ok = pthread_create(&refresher.threads[i], NULL, refresher_main, NULL) == 0;
		if (ok)
			refresher.n_threads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ok)
		refreshers_stop();
	return ok;
}

/* ---- responses ---- */

static enum MHD_Result
respond_with(
    struct MHD_Connection *conn, unsigned status, const char *body, const char *const *headers)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
		(void)MHD_add_response_header(r, headers[i], headers[i + 1]);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *body, const char *allow)
{
	const char *headers[] = { MHD_HTTP_HEADER_CACHE_CONTROL, "no-store",
		allow ? MHD_HTTP_HEADER_ALLOW : NULL, allow, NULL };

	return respond_with(conn, status, body, headers);
}

/* GET /revocations?since=N: this installation's revocations after N, signed. */
static enum MHD_Result
handle_feed(struct MHD_Connection *conn)
{
	const char *since_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "since");
	static const char ctype[] = "application/" FB_FEED_TYP;
	const char *headers[] = { MHD_HTTP_HEADER_CONTENT_TYPE, ctype,
		MHD_HTTP_HEADER_CACHE_CONTROL, "no-store", NULL };
	struct runtime *rt;
	struct fb_err err = { 0 };
	enum MHD_Result ret;
	char *doc = NULL, *end = NULL;
	long long since = since_s ? strtoll(since_s, &end, 10) : 0;

	if (since_s != NULL && (end == since_s || *end != '\0' || since < 0))
		return respond(conn, MHD_HTTP_BAD_REQUEST, "{\"error\":\"bad_since\"}\n", NULL);
	if (state.store == NULL || (rt = runtime_acquire()) == NULL)
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"error\":\"store\"}\n", NULL);
	if (fb_bridge_feed_document(rt->fed, rt->conf, state.store, (int64_t)since,
	        (int64_t)time(NULL), &doc, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "revocation feed: %s", err.msg);
		ret = respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"error\":\"store\"}\n", NULL);
	} else {
		ret = respond_with(conn, MHD_HTTP_OK, doc, headers);
	}
	free(doc);
	runtime_unref(rt);
	return ret;
}

/* Ready when logins could work: the store answers. */
static void ready_feeds(struct fb_buf *b);

/*
 * One party the bridge cannot use now, as a JSON object in /readyz's
 * "unavailable"; misconfigured: what it serves is wrong (retrying will not
 * help), not that it cannot be reached.
 */
static void
ready_add(
    struct fb_buf *b, const char *kind, const char *name, const char *detail, bool misconfigured)
{
	(void)fb_buf_printf(b, "%s{\"%s\":", b->data[b->len - 1] == '[' ? "" : ",", kind);
	(void)fb_buf_append_json_string(b, name);
	if (detail != NULL) {
		(void)fb_buf_printf(b, ",\"detail\":");
		(void)fb_buf_append_json_string(b, detail);
	}
	(void)fb_buf_printf(b, "%s}", misconfigured ? ",\"misconfigured\":true" : "");
}

static void
ready_key_source(void *arg, const struct fb_key_source_info *s)
{
	char shown[FB_EXCERPT_MAX];

	if (s->last_error == NULL)
		return;
	fb_excerpt(s->last_error, strlen(s->last_error), shown, sizeof(shown));
	ready_add(arg, "trust_keys", s->remote, shown, s->last_rc != FB_ERR_IO);
}

/* An IdP whose logins cannot start: unreachable, or misconfigured (retrying will not help). */
static void
ready_provider(void *arg, const struct fb_login_unready *u)
{
	char shown[FB_EXCERPT_MAX];

	fb_excerpt(u->why, strlen(u->why), shown, sizeof(shown));
	ready_add(arg, u->what, u->provider->name, shown, u->rc == FB_ERR_CONFIG);
}

/*
 * Ready when the store answers: the relay check works. What cannot be reached
 * now (a partner's keys or feed, an IdP's metadata) is listed, not a reason
 * to take the bridge out of service.
 */
static enum MHD_Result
handle_readyz(struct MHD_Connection *conn)
{
	struct fb_err err = { 0 };
	struct runtime *rt;
	struct fb_buf b;
	enum MHD_Result ret;
	int64_t seq = 0;

	if (state.store == NULL || fb_store_revocation_seq(state.store, &seq, &err) != FB_OK)
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "{\"status\":\"unavailable\",\"reason\":\"store\"}\n", NULL);
	fb_buf_init(&b, READY_BODY_MAX);
	(void)fb_buf_printf(&b, "{\"status\":\"ready\",\"unavailable\":[");
	if ((rt = runtime_acquire()) != NULL) {
		fb_federation_key_sources(rt->fed, ready_key_source, &b);
		fb_login_site_unready(rt->login, ready_provider, &b);
		runtime_unref(rt);
	}
	ready_feeds(&b);
	/* Past READY_BODY_MAX the list is cut: the body stays JSON. */
	if (fb_buf_printf(&b, "]}\n") != FB_OK) {
		fb_buf_free(&b);
		return respond(
		    conn, MHD_HTTP_OK, "{\"status\":\"ready\",\"unavailable\":null}\n", NULL);
	}
	ret = respond(conn, MHD_HTTP_OK, b.data, NULL);
	fb_buf_free(&b);
	return ret;
}

static enum MHD_Result
handle_healthz(struct MHD_Connection *conn)
{
	struct runtime *rt = runtime_acquire();
	struct fb_buf body;
	enum MHD_Result ret;

	fb_buf_init(&body, 1024);
	(void)fb_buf_printf(&body, "{\"status\":\"ok\",\"installation\":");
	(void)fb_buf_append_json_string(&body, rt->conf->installation.name);
	(void)fb_buf_printf(&body, ",\"config_generation\":%lu}\n", rt->generation);
	ret = body.data ? respond(conn, MHD_HTTP_OK, body.data, NULL) : MHD_NO;
	fb_buf_free(&body);
	runtime_unref(rt);
	return ret;
}

/*
 * This installation's trust export, for remotes that find this bridge through DNS
 * (_fedbridge._tcp.DOMAIN): the same document fedbridge trust export writes.
 */
static enum MHD_Result
handle_discovery(struct MHD_Connection *conn)
{
	struct runtime *rt = runtime_acquire();
	struct fb_err err = { 0 };
	struct MHD_Response *r;
	char *doc = NULL;
	enum MHD_Result ret;

	if (fb_trust_export(rt->conf, rt->fed, NULL, 0, (int64_t)time(NULL), &doc, &err) != FB_OK) {
		runtime_unref(rt);
		return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n", NULL);
	}
	runtime_unref(rt);
	r = MHD_create_response_from_buffer(strlen(doc), doc, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(doc);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=300");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle_jwks(struct MHD_Connection *conn)
{
	static const char cache[] = "public, max-age=300";
	struct runtime *rt = runtime_acquire();
	struct MHD_Response *r;
	const char *jwks = fb_federation_jwks(rt->fed);
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(jwks), (void *)jwks, MHD_RESPMEM_MUST_COPY);
	runtime_unref(rt);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/jwk-set+json");
	/* Remote bridges refetch within max-age: keys are published well ahead of use. */
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- metrics (Prometheus text format) ---- */

static atomic_uint_fast64_t relay_checks[FB_VERIFY_REASONS];
/* Checks refused before any decision: a peer-certificate header the listener does not take. */
static atomic_uint_fast64_t relay_header_refusals;
/* installation.relay_peer_cert_header of the configuration in force. */
static atomic_int relay_peer_cert_header;
/* log.attributes of the configuration in force, read on every relay decision. */
static atomic_bool log_attributes;

static void
metrics_source(void *arg, const struct fb_key_source_info *s)
{
	struct fb_buf *b = arg;

	(void)fb_buf_printf(b, "fedbridge_remote_keys{remote=\"%s\"} %zu\n", s->remote, s->n_keys);
	(void)fb_buf_printf(b,
	    "fedbridge_remote_keys_expiry_timestamp_seconds{remote=\"%s\"} %lld\n", s->remote,
	    (long long)s->expiry);
	(void)fb_buf_printf(b, "fedbridge_remote_keys_fetch_failures_total{remote=\"%s\"} %llu\n",
	    s->remote, (unsigned long long)s->failures);
}

static enum MHD_Result
handle_metrics(struct MHD_Connection *conn)
{
	struct runtime *rt = runtime_acquire();
	struct fb_verify_stats st;
	struct MHD_Response *r;
	struct fb_buf b;
	enum MHD_Result ret;

	fb_buf_init(&b, 1 << 20);
	fb_verifier_stats(state.verifier, &st);
	(void)fb_buf_printf(&b,
	    "# TYPE fedbridge_config_generation gauge\n"
	    "fedbridge_config_generation %lu\n",
	    rt->generation);
	(void)fb_buf_printf(&b, "# TYPE fedbridge_relay_checks_total counter\n");
	for (int i = 0; i < FB_VERIFY_REASONS; i++)
		(void)fb_buf_printf(&b,
		    "fedbridge_relay_checks_total{decision=\"%s\",reason=\"%s\"} %llu\n",
		    i == FB_VERIFY_ALLOW ? "allow" : "deny",
		    fb_verify_reason_name((enum fb_verify_reason)i),
		    (unsigned long long)atomic_load(&relay_checks[i]));
	(void)fb_buf_printf(&b,
	    "# TYPE fedbridge_relay_bad_requests_total counter\n"
	    "fedbridge_relay_bad_requests_total{reason=\"peer_cert_header\"} %llu\n",
	    (unsigned long long)atomic_load(&relay_header_refusals));
	(void)fb_buf_printf(&b,
	    "# TYPE fedbridge_verify_cache_hits_total counter\nfedbridge_verify_cache_hits_total "
	    "%llu\n"
	    "# TYPE fedbridge_verify_signatures_total counter\nfedbridge_verify_signatures_total "
	    "%llu\n"
	    "# TYPE fedbridge_revocations gauge\nfedbridge_revocations %zu\n",
	    (unsigned long long)st.cache_hits, (unsigned long long)st.signatures,
	    fb_verifier_revoked_count(state.verifier));
	/* A key set whose newest key stops signing soon is an alarm: alert on
	 * fedbridge_remote_keys_expiry_timestamp_seconds - time() < 7d. */
	(void)fb_buf_printf(&b,
	    "# TYPE fedbridge_remote_keys gauge\n"
	    "# TYPE fedbridge_remote_keys_expiry_timestamp_seconds gauge\n"
	    "# TYPE fedbridge_remote_keys_fetch_failures_total counter\n");
	fb_federation_key_sources(rt->fed, metrics_source, &b);
	(void)fb_buf_printf(&b,
	    "# HELP fedbridge_signing_key_expiry_timestamp_seconds When the active signing key "
	    "stops signing (0: no end set).\n"
	    "# TYPE fedbridge_signing_key_expiry_timestamp_seconds gauge\n"
	    "fedbridge_signing_key_expiry_timestamp_seconds{kid=\"%s\"} %lld\n",
	    fb_signing_key_kid(fb_federation_signing_key(rt->fed)),
	    (long long)fb_federation_signing_expiry(rt->fed));
	/* Counted by the store itself, so every call is (audit, sessions, revocations…). */
	(void)fb_buf_printf(&b,
	    "# HELP fedbridge_store_errors_total Session store calls that failed in the store "
	    "(it did not answer or broke), by operation.\n"
	    "# TYPE fedbridge_store_errors_total counter\n");
	for (int op = 0; op < FB_STORE_OPS; op++)
		(void)fb_buf_printf(&b, "fedbridge_store_errors_total{operation=\"%s\"} %llu\n",
		    fb_store_op_name((enum fb_store_op)op),
		    (unsigned long long)fb_store_errors(state.store, (enum fb_store_op)op));
	fb_metrics_render(&b);
	runtime_unref(rt);
	if (b.data == NULL) {
		fb_buf_free(&b);
		return MHD_NO;
	}
	r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		fb_buf_free(&b);
		return MHD_NO;
	}
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- the relay check over HTTP ---- */

/* One table from reason to HTTP status: token problems 401, authorization 403. */
static unsigned
reason_status(enum fb_verify_reason r)
{
	switch (r) {
	case FB_VERIFY_ALLOW:
		return MHD_HTTP_OK;
	case FB_VERIFY_WRONG_TENANT:
	case FB_VERIFY_WRONG_AUDIENCE:
	case FB_VERIFY_SENDER_MISMATCH:
	case FB_VERIFY_POLICY_DENIED:
		return MHD_HTTP_FORBIDDEN;
	default:
		return MHD_HTTP_UNAUTHORIZED;
	}
}

/* Peer certificates repeat: remember the thumbprints of the last few by their exact text. */
static struct {
	pthread_mutex_t lock;
	struct {
		char *text;
		size_t len;
		unsigned char sha[FB_VERIFY_SHA256_LEN];
	} slot[PEER_CERT_CACHE];
	size_t next;
} peer_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The URL-escaped PEM nginx gives as $ssl_client_escaped_cert. */
static bool
peer_cert_sha256(const char *escaped, unsigned char out[FB_VERIFY_SHA256_LEN])
{
	size_t len = strlen(escaped), n = 0;
	long decoded;
	char *pem;
	bool ok;

	if (len == 0 || len > PEER_CERT_MAX)
		return false;
	pthread_mutex_lock(&peer_cache.lock);
	for (size_t i = 0; i < PEER_CERT_CACHE; i++) {
		if (peer_cache.slot[i].text != NULL && peer_cache.slot[i].len == len &&
		    memcmp(peer_cache.slot[i].text, escaped, len) == 0) {
			memcpy(out, peer_cache.slot[i].sha, FB_VERIFY_SHA256_LEN);
			pthread_mutex_unlock(&peer_cache.lock);
			return true;
		}
	}
	pthread_mutex_unlock(&peer_cache.lock);
	if ((pem = malloc(len + 1)) == NULL)
		return false;
	if ((decoded = fb_percent_decode(escaped, len, pem)) < 0) {
		free(pem);
		return false;
	}
	n = (size_t)decoded;
	ok = fb_verify_cert_sha256(pem, n, out, NULL) == FB_OK;
	free(pem);
	if (ok) {
		char *copy = strdup(escaped);
		pthread_mutex_lock(&peer_cache.lock);
		free(peer_cache.slot[peer_cache.next].text);
		peer_cache.slot[peer_cache.next].text = copy;
		peer_cache.slot[peer_cache.next].len = copy ? len : 0;
		memcpy(peer_cache.slot[peer_cache.next].sha, out, FB_VERIFY_SHA256_LEN);
		peer_cache.next = (peer_cache.next + 1) % PEER_CERT_CACHE;
		pthread_mutex_unlock(&peer_cache.lock);
	}
	return ok;
}

/* X-Fed-Peer-Cert-S256: base64url (as in cnf) or hex. */
static bool
peer_s256(const char *v, unsigned char out[FB_VERIFY_SHA256_LEN])
{
	size_t len = strlen(v), n = 0;

	if (len == (size_t)2 * FB_VERIFY_SHA256_LEN) {
		for (size_t i = 0; i < FB_VERIFY_SHA256_LEN; i++) {
			int hi = fb_hex_value(v[2 * i]), lo = fb_hex_value(v[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return false;
			out[i] = (unsigned char)(hi * 16 + lo);
		}
		return true;
	}
	return fb_b64url_decode(v, len, out, FB_VERIFY_SHA256_LEN, &n) == FB_OK &&
	    n == FB_VERIFY_SHA256_LEN;
}

/* X-Request-Id when it is 1 to 64 characters of [A-Za-z0-9._-], else 22 random ones. */
static void
correlation_for(struct MHD_Connection *conn, char out[65])
{
	static const char ok[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
	const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
	unsigned char r[16];
	size_t n = id ? strlen(id) : 0;

	if (n > 0 && n <= 64 && strspn(id, ok) == n) {
		memcpy(out, id, n + 1);
		return;
	}
	if (fb_random_bytes(r, sizeof(r)) != FB_OK ||
	    fb_b64url_encode(r, sizeof(r), out, 65) != FB_OK)
		(void)snprintf(out, 65, "-");
}

static enum MHD_Result handle_validate_timed(struct MHD_Connection *conn);

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static enum MHD_Result
handle_validate(struct MHD_Connection *conn)
{
	int64_t t0 = mono_ns();
	enum MHD_Result ret = handle_validate_timed(conn);

	fb_metric_observe(FB_HIST_VALIDATE, mono_ns() - t0);
	return ret;
}

/* How often each peer-certificate header occurs in one request. */
struct peer_headers {
	unsigned n[2]; /* by enum fb_conf_peer_cert_header */
};

static const char *const peer_header_names[] = {
	[FB_PEER_CERT_PEM] = "X-Fed-Peer-Cert",
	[FB_PEER_CERT_S256] = "X-Fed-Peer-Cert-S256",
};

static enum MHD_Result
count_peer_headers(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct peer_headers *h = cls;

	(void)kind;
	(void)value;
	for (size_t i = 0; i < 2; i++)
		if (strcasecmp(key, peer_header_names[i]) == 0)
			h->n[i]++;
	return MHD_YES;
}

/*
 * A relay gives the peer's certificate through one header, the one the
 * configuration names. The other one, or either twice, can only come from a
 * relay that passes a sender's own headers on to /validate: the check is
 * refused before any decision, never answered from what the sender claims.
 */
static enum MHD_Result
refuse_peer_headers(
    struct MHD_Connection *conn, const struct peer_headers *h, enum fb_conf_peer_cert_header want)
{
	const char *headers[] = { MHD_HTTP_HEADER_CACHE_CONTROL, "no-store", "X-Fed-Reason",
		"peer_cert_header", NULL };
	char corr[65];

	correlation_for(conn, corr);
	atomic_fetch_add_explicit(&relay_header_refusals, 1, memory_order_relaxed);
	fb_log(FB_LOG_WARN,
	    "relay [%s]: refused: %u %s and %u %s header(s), this bridge takes one %s only "
	    "(installation.relay_peer_cert_header); does the relay pass a sender's headers on?",
	    corr, h->n[FB_PEER_CERT_PEM], peer_header_names[FB_PEER_CERT_PEM],
	    h->n[FB_PEER_CERT_S256], peer_header_names[FB_PEER_CERT_S256], peer_header_names[want]);
	return respond_with(conn, MHD_HTTP_BAD_REQUEST,
	    "{\"decision\":\"deny\",\"reason\":\"peer_cert_header\"}\n", headers);
}

static enum MHD_Result
handle_validate_timed(struct MHD_Connection *conn)
{
	const char *auth, *tenant, *sender, *peer;
	struct fb_verify_input in;
	struct fb_verify_result r;
	unsigned char sha[FB_VERIFY_SHA256_LEN];
	bool have_cert = false;
	char www[96], corr[65];
	struct fb_buf body;
	enum MHD_Result ret;
	unsigned status;
	struct peer_headers ph = { { 0 } };
	enum fb_conf_peer_cert_header want = (enum fb_conf_peer_cert_header)atomic_load_explicit(
	    &relay_peer_cert_header, memory_order_relaxed);

	(void)MHD_get_connection_values(conn, MHD_HEADER_KIND, count_peer_headers, &ph);
	if (ph.n[want == FB_PEER_CERT_PEM ? FB_PEER_CERT_S256 : FB_PEER_CERT_PEM] != 0 ||
	    ph.n[want] > 1)
		return refuse_peer_headers(conn, &ph, want);
	auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	tenant = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Fed-Tenant");
	sender = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Fed-Sender");
	peer = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, peer_header_names[want]);
	if (peer != NULL && *peer != '\0')
		have_cert =
		    want == FB_PEER_CERT_S256 ? peer_s256(peer, sha) : peer_cert_sha256(peer, sha);

	memset(&in, 0, sizeof(in));
	if (auth != NULL && strncasecmp(auth, "Fed ", 4) == 0) {
		in.token = auth + 4;
		while (*in.token == ' ')
			in.token++;
		in.token_len = strlen(in.token);
	}
	in.receiving_tenant = tenant && *tenant ? tenant : NULL;
	in.peer_cert_sha256 = have_cert ? sha : NULL;
	in.sender_fid = sender && *sender ? sender : NULL;
	in.now = time(NULL);
	(void)fb_verifier_check(state.verifier, &in, &r);
	atomic_fetch_add_explicit(&relay_checks[r.reason], 1, memory_order_relaxed);
	if (r.reason == FB_VERIFY_UNKNOWN_KEY) {
		/* Perhaps a remote rotated: the refresher refetches (rate-limited per source). */
		pthread_mutex_lock(&refresher.lock);
		refresher.unknown_kid = true;
		pthread_cond_signal(&refresher.wake);
		pthread_mutex_unlock(&refresher.lock);
	}

	/* A correlation id: the relay's request id when it sends a sane one, else a new one.
	 * Denials are logged with it and the token's jti and sid, which tie them to the
	 * token_issued and login records of the audit trail. */
	correlation_for(conn, corr);
	{
		/* The login the token's session began with (its cid), when the token says. */
		const char *cid = json_string_value(json_object_get(r.claims, "cid"));
		/* Personal data only where the configuration allows (log.attributes). */
		bool attrs = atomic_load_explicit(&log_attributes, memory_order_relaxed) &&
		    r.attrs_json != NULL;
		if (r.reason != FB_VERIFY_ALLOW)
			fb_log(FB_LOG_INFO,
			    "relay [%s]: deny %s: tenant %s, jti %s, sid %s, login %s%s%s", corr,
			    fb_verify_reason_name(r.reason),
			    in.receiving_tenant ? in.receiving_tenant : "-", r.jti ? r.jti : "-",
			    r.sid ? r.sid : "-", cid ? cid : "-", attrs ? ", attributes " : "",
			    attrs ? r.attrs_json : "");
		else
			fb_log(FB_LOG_DEBUG,
			    "relay [%s]: allow: tenant %s, jti %s, sid %s, login %s%s%s", corr,
			    in.receiving_tenant ? in.receiving_tenant : "-", r.jti, r.sid,
			    cid ? cid : "-", attrs ? ", attributes " : "",
			    attrs ? r.attrs_json : "");
	}
	status = reason_status(r.reason);
	fb_buf_init(&body, 16384);
	if (r.reason == FB_VERIFY_ALLOW) {
		const char *headers[] = { MHD_HTTP_HEADER_CACHE_CONTROL, "no-store", "X-Fed-Fid",
			r.fid, "X-Fed-Tid", r.tid, "X-Fed-Attrs", r.attrs_json, "X-Correlation-Id",
			corr, NULL };
		(void)fb_buf_printf(&body, "{\"decision\":\"allow\",\"fid\":");
		(void)fb_buf_append_json_string(&body, r.fid);
		(void)fb_buf_printf(&body, ",\"tid\":");
		(void)fb_buf_append_json_string(&body, r.tid);
		(void)fb_buf_printf(&body, ",\"attrs\":%s}\n", r.attrs_json);
		ret = body.data ? respond_with(conn, status, body.data, headers) : MHD_NO;
	} else {
		const char *reason = fb_verify_reason_name(r.reason);
		const char *headers[] = { MHD_HTTP_HEADER_CACHE_CONTROL, "no-store", "X-Fed-Reason",
			reason, "X-Correlation-Id", corr,
			status == MHD_HTTP_UNAUTHORIZED ? MHD_HTTP_HEADER_WWW_AUTHENTICATE : NULL,
			www, NULL };
		(void)snprintf(www, sizeof(www), "Fed error=\"%s\"", reason);
		(void)fb_buf_printf(&body, "{\"decision\":\"deny\",\"reason\":\"%s\"}\n", reason);
		ret = body.data ? respond_with(conn, status, body.data, headers) : MHD_NO;
	}
	fb_buf_free(&body);
	fb_verify_result_clear(&r);
	return ret;
}

/* Which listener a request came in on: the public one (browsers, backends,
 * remotes) or the relays' own (installation.relay_listen). */
enum listener { LISTENER_PUBLIC, LISTENER_RELAY };
static const enum listener listener_public = LISTENER_PUBLIC, listener_relay = LISTENER_RELAY;
/* Set once at start: a relays' listener serves /validate, the public one does not. */
static bool has_relay_listener;

/* Per request: the body, gathered for the endpoints that read one. */
struct login_job;
static void login_job_free(struct login_job *j);

/* The bytes of request bodies held now, over every connection. */
static atomic_size_t bodies_total;
/* installation.request_bodies_max of the runtime in force: past it a request is answered 503. */
static atomic_size_t bodies_max = FB_CONF_REQUEST_BODIES_MIN;

struct request {
	struct fb_buf body;
	bool started, keep, too_big;
	bool over_total; /* bodies_max was reached: answered 503 */
	bool no_provider; /* POST /saml/acs/NAME for no SAML provider NAME: not read, 404 */
	size_t counted; /* its bytes in bodies_total: its Content-Length, reserved at once */
	char *uri; /* the request line's URI, query included (the SAML Redirect binding signs it) */
	struct login_job *job; /* while a login worker has it, and its answer until queued */
};

/*
 * Counts n more bytes of req's body in bodies_total; false, counting
 * nothing, when that would pass bodies_max.
 */
static bool
bodies_reserve(struct request *req, size_t n)
{
	if (atomic_fetch_add_explicit(&bodies_total, n, memory_order_relaxed) + n >
	    atomic_load_explicit(&bodies_max, memory_order_relaxed)) {
		atomic_fetch_sub_explicit(&bodies_total, n, memory_order_relaxed);
		return false;
	}
	req->counted += n;
	return true;
}

/* MHD calls this first for every request: its result becomes the request's context. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct request *req = calloc(1, sizeof(*req));

	(void)cls;
	(void)conn;
	if (req != NULL && uri != NULL && strlen(uri) <= SERVE_URI_MAX)
		req->uri = strdup(uri);
	return req;
}

static void
on_completed(
    void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct request *req = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (req == NULL)
		return;
	login_job_free(req->job); /* answered but never queued (the client went away) */
	atomic_fetch_sub_explicit(&bodies_total, req->counted, memory_order_relaxed);
	if (req->body.data != NULL)
		fb_cleanse(req->body.data, req->body.len); /* it may hold client secrets */
	fb_buf_free(&req->body);
	free(req->uri);
	free(req);
	*req_cls = NULL;
}

/*
 * The one place the login side meets the HTTP library: its request made
 * from the connection (the headers it reads, the query, the body gathered),
 * and its response queued.
 */
static enum MHD_Result
login_queue(struct MHD_Connection *conn, fb_rc rc, struct fb_login_response *lr)
{
	struct MHD_Response *r = NULL;
	enum MHD_Result ret = MHD_NO;

	if (rc == FB_OK && lr->status != 0)
		r = MHD_create_response_from_buffer(
		    lr->body_len, lr->body ? lr->body : (void *)"", MHD_RESPMEM_MUST_COPY);
	if (r != NULL) {
		if (lr->content_type != NULL)
			(void)MHD_add_response_header(
			    r, MHD_HTTP_HEADER_CONTENT_TYPE, lr->content_type);
		for (size_t i = 0; i < lr->n_headers; i++)
			(void)MHD_add_response_header(r, lr->headers[i].name, lr->headers[i].value);
		ret = MHD_queue_response(conn, lr->status, r);
		MHD_destroy_response(r);
	}
	fb_login_response_clear(lr);
	return ret;
}

/* Every Cookie header of a request, joined with "; " (a proxy may split them, RFC 6265 5.4). */
static enum MHD_Result
join_cookies(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct fb_buf *b = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_COOKIE) == 0 && value != NULL &&
	    ((b->len > 0 && fb_buf_printf(b, "; ") != FB_OK) ||
	        fb_buf_printf(b, "%s", value) != FB_OK))
		return MHD_NO; /* too many: the first ones stand */
	return MHD_YES;
}

/*
 * The login side's requests that wait for an IdP (GET /login, the OpenID
 * Connect callback, back-channel logout) run on LOGIN_WORKERS threads of
 * their own while MHD suspends the connection: the listener's threads, which
 * answer the relay check, /token and health, never wait for an IdP. Each IdP
 * holds at most RP_IN_FLIGHT_MAX (idp/oidc_rp.c) of the workers, and as
 * many more for RP_SLOT_WAIT_MS; a full queue answers 503 at once.
 */
#define LOGIN_WORKERS 48
#define LOGIN_QUEUE_MAX 256

/* One login request: what it read of the connection (owned copies), then its answer. */
struct login_job {
	struct login_job *next;
	struct MHD_Connection *conn;
	char *path, *method, *query, *cookie, *content_type, *authorization; /* owned */
	const struct request *req; /* the body; MHD keeps it while the connection is suspended */
	fb_rc rc;
	struct fb_login_response lr;
	bool done;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct login_job *head, *tail; /* waiting, under lock */
	size_t queued;
	bool stop;
} login_pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static void
login_job_free(struct login_job *j)
{
	if (j == NULL)
		return;
	if (j->cookie != NULL)
		fb_cleanse(j->cookie, strlen(j->cookie)); /* it held sealed login state */
	if (j->authorization != NULL)
		fb_cleanse(j->authorization, strlen(j->authorization));
	free(j->path);
	free(j->method);
	free(j->query);
	free(j->cookie);
	free(j->content_type);
	free(j->authorization);
	fb_login_response_clear(&j->lr);
	free(j);
}

/* Runs one login endpoint, whichever thread this is. */
static fb_rc
login_run(const struct fb_login_request *lq, struct fb_login_response *lr)
{
	const char *url = lq->path;
	bool slo = strncmp(url, "/saml/slo/", 10) == 0, post = strcmp(lq->method, "POST") == 0;
	struct fb_login_env env;
	struct runtime *rt;
	fb_rc rc;

	if ((rt = runtime_acquire()) == NULL)
		return FB_ERR_IO;
	env = (struct fb_login_env){ .conf = rt->conf,
		.fed = rt->fed,
		.rules = rt->rules,
		.site = rt->login,
		.store = state.store };
	if (strcmp(url, "/token") == 0) {
		rc = fb_login_token(&env, lq, lr);
	} else if (strncmp(url, "/saml/acs/", 10) == 0) {
		int64_t t0 = mono_ns();
		rc = fb_login_saml_acs(&env, lq, lr);
		fb_metric_observe(FB_HIST_LOGIN_CALLBACK, mono_ns() - t0);
	} else if (slo && post)
		rc = fb_login_saml_slo_soap(&env, lq, lr);
	else if (slo)
		rc = fb_login_saml_slo(&env, lq, lr);
	else if (strncmp(url, "/saml/metadata", 14) == 0)
		rc = fb_login_saml_metadata(&env, lq, lr);
	else if (strcmp(url, "/logout") == 0)
		rc = fb_login_logout(&env, lq, lr);
	else if (strcmp(url, "/oidc/backchannel-logout") == 0)
		rc = fb_login_backchannel_logout(&env, lq, lr);
	else if (strcmp(url, "/oidc/frontchannel-logout") == 0)
		rc = fb_login_frontchannel_logout(&env, lq, lr);
	else if (strcmp(url, "/oidc/callback") == 0) {
		int64_t t0 = mono_ns();
		rc = fb_login_oidc_callback(&env, lq, lr);
		fb_metric_observe(FB_HIST_LOGIN_CALLBACK, mono_ns() - t0);
	} else
		rc = fb_login_start(&env, lq, lr);
	runtime_unref(rt);
	return rc;
}

/* Whether the endpoint may wait for an IdP (discovery, keys, the code exchange, userinfo). */
static bool
login_waits_for_idp(const char *url)
{
	return strncmp(url, "/login/", 7) == 0 || strcmp(url, "/oidc/callback") == 0 ||
	    strcmp(url, "/oidc/backchannel-logout") == 0 ||
	    strcmp(url, "/oidc/frontchannel-logout") == 0; /* its revocation, like back-channel's */
}

static void
login_job_request(const struct login_job *j, struct fb_login_request *lq)
{
	*lq = (struct fb_login_request){ .method = j->method,
		.path = j->path,
		.query = j->query,
		.cookie = j->cookie,
		.content_type = j->content_type,
		.authorization = j->authorization,
		.body = j->req->body.data ? j->req->body.data : "",
		.body_len = j->req->body.len };
}

static void *
login_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct login_job *j;
		struct fb_login_request lq;

		pthread_mutex_lock(&login_pool.lock);
		while (login_pool.head == NULL && !login_pool.stop)
			pthread_cond_wait(&login_pool.wake, &login_pool.lock);
		if ((j = login_pool.head) == NULL) { /* stopping, nothing left */
			pthread_mutex_unlock(&login_pool.lock);
			return NULL;
		}
		login_pool.head = j->next;
		if (login_pool.head == NULL)
			login_pool.tail = NULL;
		login_pool.queued--;
		bool stopping = login_pool.stop;
		pthread_mutex_unlock(&login_pool.lock);
		login_job_request(j, &lq);
		j->rc = stopping ? FB_ERR_IO : login_run(&lq, &j->lr);
		j->done = true;
		MHD_resume_connection(j->conn); /* MHD calls on_request again: it queues j->lr */
	}
}

/* A copy of a header's value, or NULL; false when it could not be copied. */
static bool
header_copy(struct MHD_Connection *conn, const char *name, char **out)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

	*out = v != NULL ? strdup(v) : NULL;
	return v == NULL || *out != NULL;
}

/* The endpoints of the login side, which need the store. */
static enum MHD_Result
login_route(struct MHD_Connection *conn, const char *url, const char *method, bool get, bool post,
    struct request *req)
{
	const char *q = req->uri ? strchr(req->uri, '?') : NULL;
	struct fb_login_request lq;
	struct fb_login_response lr = { 0 };
	struct fb_buf cookies = { 0 };
	struct login_job *j;
	fb_rc rc;
	bool is_post = strcmp(url, "/token") == 0 || strcmp(url, "/logout") == 0 ||
	    strcmp(url, "/oidc/backchannel-logout") == 0 || strncmp(url, "/saml/acs/", 10) == 0;
	bool slo = strncmp(url, "/saml/slo/", 10) == 0; /* GET (Redirect) or POST (SOAP) */
	bool queued = false;

	if (req->job != NULL) { /* a worker answered: the connection was resumed */
		enum MHD_Result ret = login_queue(conn, req->job->rc, &req->job->lr);
		login_job_free(req->job);
		req->job = NULL;
		return ret;
	}
	if (slo ? !get && !post : is_post ? !post : !get)
		return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "{\"error\":\"method_not_allowed\"}\n", is_post ? "POST" : "GET, HEAD");
	if (req->too_big)
		return respond(conn, MHD_HTTP_CONTENT_TOO_LARGE,
		    "{\"error\":\"invalid_request\",\"error_description\":\"body too large\"}\n",
		    NULL);
	if (state.store == NULL)
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "{\"error\":\"store\"}\n", NULL);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return MHD_NO;
	fb_buf_init(&cookies, SERVE_COOKIE_MAX);
	(void)MHD_get_connection_values(conn, MHD_HEADER_KIND, join_cookies, &cookies);
	j->conn = conn;
	j->req = req;
	if ((j->path = strdup(url)) == NULL || (j->method = strdup(method)) == NULL ||
	    (q != NULL && (j->query = strdup(q + 1)) == NULL) ||
	    (cookies.len > 0 && (j->cookie = strdup(cookies.data)) == NULL) ||
	    !header_copy(conn, MHD_HTTP_HEADER_CONTENT_TYPE, &j->content_type) ||
	    !header_copy(conn, MHD_HTTP_HEADER_AUTHORIZATION, &j->authorization)) {
		if (cookies.data != NULL)
			fb_cleanse(cookies.data, cookies.len);
		fb_buf_free(&cookies);
		login_job_free(j);
		return MHD_NO;
	}
	if (cookies.data != NULL)
		fb_cleanse(cookies.data, cookies.len); /* it held sealed login state */
	fb_buf_free(&cookies);
	if (login_waits_for_idp(url)) {
		pthread_mutex_lock(&login_pool.lock);
		if (!login_pool.stop && login_pool.queued < LOGIN_QUEUE_MAX) {
			/* Suspended before a worker can see it, so its resume always follows. */
			MHD_suspend_connection(conn);
			req->job = j;
			if (login_pool.tail != NULL)
				login_pool.tail->next = j;
			else
				login_pool.head = j;
			login_pool.tail = j;
			login_pool.queued++;
			pthread_cond_signal(&login_pool.wake);
			queued = true;
		}
		pthread_mutex_unlock(&login_pool.lock);
		if (queued)
			return MHD_YES;
		login_job_free(j);
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "{\"error\":\"temporarily_unavailable\"}\n", NULL);
	}
	login_job_request(j, &lq);
	rc = login_run(&lq, &lr);
	login_job_free(j);
	return login_queue(conn, rc, &lr);
}

/* Starts the login workers; false (none running) when a thread cannot start. */
static bool
login_pool_start(pthread_t workers[LOGIN_WORKERS])
{
	login_pool.stop = false;
	for (size_t i = 0; i < LOGIN_WORKERS; i++) {
		if (pthread_create(&workers[i], NULL, login_worker, NULL) != 0) {
			pthread_mutex_lock(&login_pool.lock);
			login_pool.stop = true;
			pthread_cond_broadcast(&login_pool.wake);
			pthread_mutex_unlock(&login_pool.lock);
			for (size_t k = 0; k < i; k++)
				pthread_join(workers[k], NULL);
			return false;
		}
	}
	return true;
}

/* Lets the workers finish what they run, answers what waits with 503, and joins them. */
static void
login_pool_stop(pthread_t workers[LOGIN_WORKERS])
{
	pthread_mutex_lock(&login_pool.lock);
	login_pool.stop = true;
	pthread_cond_broadcast(&login_pool.wake);
	pthread_mutex_unlock(&login_pool.lock);
	for (size_t i = 0; i < LOGIN_WORKERS; i++)
		pthread_join(workers[i], NULL);
}

/* Whether the configuration in force has a SAML provider of that name. */
static bool
saml_provider_known(const char *name)
{
	struct runtime *rt = runtime_acquire();
	bool known = false;

	for (size_t i = 0; rt != NULL && i < rt->conf->n_tenants && !known; i++)
		for (size_t k = 0; k < rt->conf->tenants[i].n_providers && !known; k++)
			known = rt->conf->tenants[i].providers[k].type == FB_PROVIDER_SAML &&
			    strcmp(rt->conf->tenants[i].providers[k].name, name) == 0;
	runtime_unref(rt);
	return known;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	bool get =
	    strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	struct request *req = *req_cls;
	const enum listener *at = cls;

	(void)version;
	/* First call per request: headers only. Only the form endpoints keep a body. */
	if (req == NULL)
		return MHD_NO; /* on_uri could not allocate */
	if (!req->started) {
		req->started = true;
		bool acs = strncmp(url, "/saml/acs/", 10) == 0;
		/* Routed before anything is read: 2 MiB are kept only for a provider we have. */
		req->no_provider = acs && post && !saml_provider_known(url + 10);
		req->keep = post && !req->no_provider &&
		    (strcmp(url, "/token") == 0 || strcmp(url, "/logout") == 0 ||
		        strcmp(url, "/oidc/backchannel-logout") == 0 || acs ||
		        strncmp(url, "/saml/slo/", 10) == 0);
		fb_buf_init(&req->body, acs ? SERVE_ACS_BODY_MAX : SERVE_BODY_MAX);
		/* A declared length is reserved whole before anything is read: under a
		 * flood the requests let in can finish, the others get 503 at once
		 * instead of every one holding part of a body. */
		const char *cl = MHD_lookup_connection_value(
		    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
		if (req->keep && declared > req->body.max)
			req->too_big = true;
		else if (req->keep && declared > 0 && !bodies_reserve(req, (size_t)declared))
			req->over_total = true;
		*req_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		size_t n = *upload_data_size;
		if (req->keep && !req->too_big && !req->over_total) {
			/* Beyond what was reserved (a body sent without a length): counted now. */
			size_t more =
			    req->body.len + n > req->counted ? req->body.len + n - req->counted : 0;
			if (more > 0 && !bodies_reserve(req, more))
				req->over_total = true;
			else if (fb_buf_append(&req->body, upload_data, n) != FB_OK)
				req->too_big = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->no_provider)
		return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n", NULL);
	if (req->over_total)
		return respond(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "{\"error\":\"temporarily_unavailable\"}\n", NULL);
	/* The relays' listener answers the relay check and health, nothing else; with one,
	 * the public listener no longer answers the relay check. */
	if (*at == LISTENER_RELAY && strcmp(url, "/validate") != 0 &&
	    strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0)
		return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n", NULL);
	if (*at == LISTENER_PUBLIC && has_relay_listener && strcmp(url, "/validate") == 0)
		return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n", NULL);
	if (strncmp(url, "/login/", 7) == 0 || strcmp(url, "/oidc/callback") == 0 ||
	    strcmp(url, "/token") == 0 || strcmp(url, "/logout") == 0 ||
	    strcmp(url, "/oidc/backchannel-logout") == 0 ||
	    strcmp(url, "/oidc/frontchannel-logout") == 0 || strncmp(url, "/saml/acs/", 10) == 0 ||
	    strcmp(url, "/saml/metadata") == 0 || strncmp(url, "/saml/metadata/", 15) == 0 ||
	    strncmp(url, "/saml/slo/", 10) == 0)
		return login_route(conn, url, method, get, post, req);
	if (strcmp(url, "/validate") == 0) {
		/* POST, or GET with the same headers as an nginx auth_request subrequest. */
		if (!get && !post)
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "{\"error\":\"method_not_allowed\"}\n", "GET, HEAD, POST");
		return handle_validate(conn);
	}
	if (strcmp(url, FB_FEED_PATH) == 0) {
		if (!get)
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "{\"error\":\"method_not_allowed\"}\n", "GET, HEAD");
		return handle_feed(conn);
	}
	if (strcmp(url, "/.well-known/fedbridge") == 0) {
		if (!get)
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "{\"error\":\"method_not_allowed\"}\n", "GET, HEAD");
		return handle_discovery(conn);
	}
	if (strcmp(url, "/healthz") == 0 || strcmp(url, "/.well-known/jwks.json") == 0 ||
	    strcmp(url, "/metrics") == 0 || strcmp(url, "/readyz") == 0) {
		if (!get)
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "{\"error\":\"method_not_allowed\"}\n", "GET, HEAD");
		if (url[1] == 'm')
			return handle_metrics(conn);
		if (url[1] == 'r')
			return handle_readyz(conn);
		return url[1] == 'h' ? handle_healthz(conn) : handle_jwks(conn);
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n", NULL);
}

/* The store's watch thread: every revocation any process records reaches the relay check. */
static void
on_revocation(void *arg, const struct fb_revocation *r)
{
	struct runtime *rt = runtime_acquire();
	struct fb_err err = { 0 };

	(void)arg;
	if (fb_bridge_revocation_apply(
	        state.verifier, rt ? rt->conf : NULL, state.store, r, &err) != FB_OK)
		fb_log(FB_LOG_ERROR, "revocation %lld (%s): not applied: %s", (long long)r->seq,
		    fb_revocation_kind_name(r->kind), err.msg);
	else
		fb_log(FB_LOG_INFO, "revocation %lld applied: %s", (long long)r->seq,
		    fb_revocation_kind_name(r->kind));
	runtime_unref(rt);
}

/*
 * The feed consumer: pulls every remote's revocations and records them in
 * the store. FEED_WORKERS threads take whichever remote is due next, so one
 * that hangs holds one worker for its fetch's time limit, never the others'
 * revocations; a remote that keeps failing is asked less and less often.
 */
#define FEED_INTERVAL_S 2
#define FEED_RETRY_MAX_S 300
#define FEED_PAGES_MAX 20
#define FEED_WORKERS 4
#define FEED_REMOTES_MAX 4096

#define FEED_REMOTE_NAME_MAX 64 /* an installation name's longest (conf's check) */

/* What the feeder knows of one remote installation, by name, across reloads. */
struct feed_remote {
	char name[FEED_REMOTE_NAME_MAX + 1];
	int64_t next_try;
	unsigned failing; /* pulls failed in a row */
	bool busy; /* a worker is pulling it */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	struct feed_remote *remotes; /* under lock; grows (moves): held by index */
	size_t n_remotes;
} feeder = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

/* A key the remote publishes that we lack: fetch its key set now, not at its max-age. */
static void
feed_kids(struct fb_federation *fed, const struct fb_conf_trust *t, json_t *kids)
{
	json_t *k;
	size_t i;

	json_array_foreach(kids, i, k)
	{
		if (!json_is_string(k) || !fb_federation_keys_lack(fed, t, json_string_value(k)))
			continue;
		fb_log(FB_LOG_INFO, "revocation feed of %s: announces key %.64s: fetching its keys",
		    t->remote, json_string_value(k));
		pthread_mutex_lock(&refresher.lock);
		refresher.unknown_kid = true;
		pthread_cond_signal(&refresher.wake);
		pthread_mutex_unlock(&refresher.lock);
		return;
	}
}

/* One remote's pages since our cursor; false when the fetch or a page failed. */
static bool
feed_pull(struct fb_federation *fed, const struct fb_conf *conf, const struct fb_conf_trust *t,
    unsigned failing)
{
	struct fb_jwks_fetch got;
	struct fb_err err = { 0 };
	char url[2300], issuer[2048], relay[300];
	struct fb_feed_cursor cursor;
	struct fb_feed_taken taken = { 0 };
	json_t *doc = NULL;

	/* A trust found through DNS has an issuer once its bridge was found. */
	if (!fb_federation_trust_found(fed, t, issuer, sizeof(issuer), relay, sizeof(relay)))
		return true; /* nothing to ask yet */
	/* A configured issuer is the configuration's word; a discovered one came from outside
	 * (checked when found, and here again at connect time). */
	const bool dev = t->discover == NULL || fb_conf_on_loopback(conf);
	const struct fb_url_rule rule = { .loopback_http = dev, .public_only = !dev };
	if (fb_store_cursor_get(state.store, t->remote, &cursor, &err) != FB_OK) {
		fb_log(FB_LOG_WARN, "revocation feed of %s: %s", t->remote, err.msg);
		return false;
	}
	for (int page = 0; page < FEED_PAGES_MAX; page++) {
		int64_t was = cursor.seq;
		fb_rc rc;

		(void)snprintf(url, sizeof(url), "%s%s?since=%lld", issuer, FB_FEED_PATH,
		    (long long)cursor.seq);
		if (fb_federation_remote_fetch(fed, t, url, &rule, &got, &err) != FB_OK) {
			fb_metric_count(FB_METRIC_FEED_FAILURE, t->remote, NULL);
			fb_log(FB_LOG_WARN,
			    "revocation feed of %s: %s: %s (failed %u time%s in a row; asking "
			    "less often)",
			    t->remote, url, err.msg, failing + 1, failing == 0 ? "" : "s");
			return false;
		}
		rc = fb_verifier_verify_jws(
		    state.verifier, issuer, FB_FEED_TYP, got.body, got.len, &doc, &err);
		if (rc == FB_OK)
			rc = fb_bridge_feed_apply(state.store, conf, t->remote, issuer, doc,
			    (int64_t)time(NULL), &cursor, &taken, &err);
		if (rc != FB_OK) {
			/* Over its quota a remote waits: the cursor stays, the page comes again. */
			fb_metric_count(
			    taken.over_quota ? FB_METRIC_FEED_QUOTA : FB_METRIC_FEED_FAILURE,
			    t->remote, NULL);
			fb_log(
			    FB_LOG_WARN, "revocation feed of %s: refused: %s", t->remote, err.msg);
			free(got.body);
			json_decref(doc);
			return false;
		}
		if (taken.restarted)
			fb_log(FB_LOG_WARN,
			    "revocation feed of %s: its store was replaced or restored from a "
			    "backup (identity %s, cursor was %lld): reading it again from 0",
			    t->remote, cursor.epoch, (long long)was);
		if (taken.recorded > 0)
			fb_log(FB_LOG_INFO, "revocation feed of %s: %zu recorded (cursor %lld)",
			    t->remote, taken.recorded, (long long)cursor.seq);
		feed_kids(fed, t, json_object_get(doc, "kids"));
		bool more = json_is_true(json_object_get(doc, "more"));
		free(got.body);
		json_decref(doc);
		doc = NULL;
		if (!taken.restarted && (!more || cursor.seq == was))
			return true;
	}
	return true;
}

/* The remotes whose last feed pull failed, for /readyz. */
static void
ready_feeds(struct fb_buf *b)
{
	pthread_mutex_lock(&feeder.lock);
	for (size_t i = 0; i < feeder.n_remotes; i++)
		if (feeder.remotes[i].failing > 0)
			ready_add(b, "feed", feeder.remotes[i].name, NULL, false);
	pthread_mutex_unlock(&feeder.lock);
}

/* The remote's index (added when new; -1 past FEED_REMOTES_MAX); under feeder.lock. */
static long
feed_remote_of(const char *name)
{
	struct feed_remote *v;
	size_t len = strlen(name);

	for (size_t i = 0; i < feeder.n_remotes; i++)
		if (strcmp(feeder.remotes[i].name, name) == 0)
			return (long)i;
	if (feeder.n_remotes == FEED_REMOTES_MAX || len > FEED_REMOTE_NAME_MAX ||
	    (v = realloc(feeder.remotes, (feeder.n_remotes + 1) * sizeof(*v))) == NULL)
		return -1;
	feeder.remotes = v;
	v = &feeder.remotes[feeder.n_remotes];
	memset(v, 0, sizeof(*v));
	memcpy(v->name, name, len + 1);
	return (long)feeder.n_remotes++;
}

/*
 * The remote whose pull is due first (each remote once, however many local
 * tenants trust it), marked busy, with *trust its first trust in rt; -1 when
 * none is due, *wait_s then saying how long until one is. Under feeder.lock.
 */
static long
feed_due(const struct runtime *rt, int64_t now, const struct fb_conf_trust **trust, int64_t *wait_s)
{
	long best = -1;

	*wait_s = FEED_INTERVAL_S;
	for (size_t i = 0; i < rt->conf->n_tenants; i++) {
		for (size_t x = 0; x < rt->conf->tenants[i].n_trusts; x++) {
			const struct fb_conf_trust *t = &rt->conf->tenants[i].trusts[x];
			long k;

			if ((t->issuer == NULL && t->discover == NULL) ||
			    strcmp(t->remote, rt->conf->installation.name) == 0 ||
			    (k = feed_remote_of(t->remote)) < 0 || feeder.remotes[k].busy)
				continue;
			if (feeder.remotes[k].next_try > now) {
				if (feeder.remotes[k].next_try - now < *wait_s)
					*wait_s = feeder.remotes[k].next_try - now;
				continue;
			}
			if (best < 0 ||
			    feeder.remotes[k].next_try < feeder.remotes[best].next_try) {
				best = k;
				*trust = t;
			}
		}
	}
	if (best >= 0)
		feeder.remotes[best].busy = true;
	return best;
}

static void *
feed_worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct runtime *rt = runtime_acquire();
		const struct fb_conf_trust *t = NULL;
		struct timespec until;
		int64_t now = (int64_t)time(NULL), wait_s = FEED_INTERVAL_S;
		long k = -1;
		unsigned failing;
		bool ok, stop;

		pthread_mutex_lock(&feeder.lock);
		if (!feeder.stop && rt != NULL)
			k = feed_due(rt, now, &t, &wait_s);
		if (k < 0) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += wait_s > 0 ? wait_s : 1;
			if (!feeder.stop)
				(void)pthread_cond_timedwait(&feeder.wake, &feeder.lock, &until);
			stop = feeder.stop;
			pthread_mutex_unlock(&feeder.lock);
			runtime_unref(rt);
			if (stop)
				return NULL;
			continue;
		}
		failing = feeder.remotes[k].failing;
		pthread_mutex_unlock(&feeder.lock);
		ok = feed_pull(rt->fed, rt->conf, t, failing);
		now = (int64_t)time(NULL);
		pthread_mutex_lock(&feeder.lock);
		feeder.remotes[k].busy = false;
		feeder.remotes[k].failing = ok ? 0 : failing + 1;
		feeder.remotes[k].next_try = now +
		    (ok ? FEED_INTERVAL_S
		        : fb_backoff_delay(FEED_INTERVAL_S, FEED_RETRY_MAX_S, failing));
		pthread_cond_broadcast(&feeder.wake);
		pthread_mutex_unlock(&feeder.lock);
		runtime_unref(rt);
	}
}

/* Stops the first n feed workers and waits for them (a pull ends within its time limit). */
static void
feeders_stop(pthread_t workers[FEED_WORKERS], size_t n)
{
	pthread_mutex_lock(&feeder.lock);
	feeder.stop = true;
	pthread_cond_broadcast(&feeder.wake);
	pthread_mutex_unlock(&feeder.lock);
	for (size_t i = 0; i < n; i++)
		pthread_join(workers[i], NULL);
	free(feeder.remotes);
	feeder.remotes = NULL;
	feeder.n_remotes = 0;
}

/* Starts the feed workers; false (with none running) when a thread cannot start. */
static bool
feeders_start(pthread_t workers[FEED_WORKERS])
{
	feeder.stop = false;
	for (size_t i = 0; i < FEED_WORKERS; i++) {
		if (pthread_create(&workers[i], NULL, feed_worker, NULL) != 0) {
			feeders_stop(workers, i);
			return false;
		}
	}
	return true;
}

/* Opens the store, applies what it holds, then follows it. */
static bool
store_start(const struct fb_conf *conf)
{
	struct fb_err err = { 0 };
	int64_t seq = 0;

	if (fb_store_open_conf(conf, &state.store, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "store: %s", err.msg);
		return false;
	}
	if (fb_bridge_revocations_load(state.verifier, conf, state.store, &seq, &err) != FB_OK ||
	    fb_store_watch(state.store, seq, on_revocation, NULL, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "store: revocations: %s", err.msg);
		fb_store_close(state.store);
		state.store = NULL;
		return false;
	}
	fb_log(FB_LOG_INFO, "store: %zu revocations in force (up to %lld)",
	    fb_verifier_revoked_count(state.verifier), (long long)seq);
	return true;
}

static int
parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[8];
	const char *colon;
	size_t hlen;
	int rc;

	colon = strrchr(listen, ':');
	if (colon == NULL || strlen(colon + 1) >= sizeof(port))
		return -1;
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		listen++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	(void)snprintf(port, sizeof(port), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fb_log(FB_LOG_ERROR, "listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* Both NULL, or the same text. */
static bool
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/*
 * One HTTP listener on LISTEN (host:port, port 0: any free one) whose
 * requests are routed as AT says, at most PER_CLIENT connections per client
 * address (0: no limit); its port goes to *port. NULL (logged) when it
 * cannot listen.
 */
static struct MHD_Daemon *
start_listener(const char *listen, const enum listener *at, unsigned threads, unsigned per_client,
    unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;

	if (parse_listen(listen, &ss, &sslen) != 0) {
		fb_log(FB_LOG_ERROR, "cannot listen on %s: expected host:port", listen);
		return NULL;
	}
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	        MHD_ALLOW_SUSPEND_RESUME,
	    0, NULL, NULL, on_request, (void *)at, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)SERVE_CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)SERVE_CONNECTION_LIMIT, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_client,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVE_CONNECTION_MEMORY,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_END);
	if (d == NULL) {
		fb_log(FB_LOG_ERROR, "cannot listen on %s: %s", listen, strerror(errno));
		return NULL;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? (unsigned)info->port : 0U;
	return d;
}

static void
log_diags(const struct fb_conf_diags *d, const char *what)
{
	for (size_t i = 0; i < d->n; i++)
		fb_log(FB_LOG_ERROR, "%s: %s", what, d->v[i].msg);
	if (d->dropped)
		fb_log(FB_LOG_ERROR, "%s: %zu more errors not shown", what, d->dropped);
}

/* Loads path and everything it implies; NULL (with the errors logged) when any of it fails. */
static struct runtime *
load_runtime(const char *path, const char *what, struct fb_verify_trusts **trusts)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_err err = { 0 };
	struct runtime *rt = NULL;
	struct fb_rules *rules = NULL;
	struct fb_conf *conf;

	conf = fb_conf_load_file(path, 0, &diags);
	if (conf != NULL && fb_bridge_rules_load(conf, &rules, &diags) != FB_OK) {
		fb_conf_unref(conf);
		conf = NULL;
	}
	if (conf == NULL) {
		log_diags(&diags, what);
		fb_conf_diags_free(&diags);
		return NULL;
	}
	if (runtime_build(conf, &rt, trusts, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "%s: %s: %s", what, path, err.msg);
		fb_rules_free(rules);
		fb_conf_unref(conf);
		return NULL;
	}
	if (rt == NULL) { /* runtime_build gives a runtime whenever it succeeds */
		fb_rules_free(rules);
		fb_conf_unref(conf);
		return NULL;
	}
	rt->rules = rules;
	if (fb_login_site_new(rt->conf, &rt->login, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "%s: %s: %s", what, path, err.msg);
		fb_verify_trusts_free(*trusts);
		*trusts = NULL;
		runtime_unref(rt);
		return NULL;
	}
	return rt;
}

static void
reload(const char *path)
{
	struct fb_verify_trusts *trusts = NULL;
	struct runtime *next, *cur;

	fb_log(FB_LOG_INFO, "SIGHUP: reloading %s", path);
	next = load_runtime(path, "reload rejected", &trusts);
	cur = runtime_acquire();
	if (next == NULL) {
		fb_log(FB_LOG_ERROR, "reload rejected: still serving configuration generation %lu",
		    cur->generation);
		runtime_unref(cur);
		return;
	}
	if (strcmp(next->conf->installation.listen, cur->conf->installation.listen) != 0)
		fb_log(FB_LOG_WARN, "installation.listen changed to %s: takes effect on restart",
		    next->conf->installation.listen);
	if (!same_str(next->conf->installation.relay_listen, cur->conf->installation.relay_listen))
		fb_log(FB_LOG_WARN,
		    "installation.relay_listen changed to %s: takes effect on restart",
		    next->conf->installation.relay_listen ? next->conf->installation.relay_listen
		                                          : "none");
	if (next->conf->installation.connections_per_client !=
	    cur->conf->installation.connections_per_client)
		fb_log(FB_LOG_WARN,
		    "installation.connections_per_client changed to %lld: takes effect on restart",
		    (long long)next->conf->installation.connections_per_client);
	runtime_unref(cur);
	fb_log_setup(next->conf->log.level, next->conf->log.format);
	atomic_store(&log_attributes, next->conf->log.attributes);
	atomic_store(&relay_peer_cert_header, (int)next->conf->installation.relay_peer_cert);
	atomic_store(&bodies_max, (size_t)next->conf->installation.request_bodies_max);
	runtime_install(next, trusts);
	fb_log(FB_LOG_INFO, "configuration reloaded: generation %lu", next->generation);
}

int
fb_serve(const struct fb_serve_opts *opts)
{
	struct fb_verify_trusts *trusts = NULL;
	struct fb_verify_opts vo;
	struct fb_err err = { 0 };
	struct MHD_Daemon *d, *relay_d = NULL;
	const char *listen, *relay_listen;
	struct runtime *rt;
	sigset_t set;
	pthread_t feeder_threads[FEED_WORKERS], login_threads[LOGIN_WORKERS];
	long ncpu;
	unsigned threads, port = 0, relay_port = 0;
	int sig, status = 1;

	/* The key workers first: the configuration's key sets are fetched by them. */
	if (!refreshers_start()) {
		fb_log(FB_LOG_ERROR, "cannot start the key refresher");
		return 1;
	}
	if ((rt = load_runtime(opts->conf_path, "configuration", &trusts)) == NULL) {
		refreshers_stop();
		return 1;
	}
	fb_log_setup(rt->conf->log.level, rt->conf->log.format);
	atomic_store(&log_attributes, rt->conf->log.attributes);
	atomic_store(&relay_peer_cert_header, (int)rt->conf->installation.relay_peer_cert);
	atomic_store(&bodies_max, (size_t)rt->conf->installation.request_bodies_max);
	fb_federation_verify_opts(rt->conf, &vo);
	vo.cache_entries = SERVE_VERIFY_CACHE;
	if (fb_verifier_new(&vo, &state.verifier, &err) != FB_OK) {
		fb_log(FB_LOG_ERROR, "verifier: %s", err.msg);
		fb_verify_trusts_free(trusts);
		runtime_unref(rt);
		refreshers_stop();
		return 1;
	}
	runtime_install(rt, trusts);
	listen = opts->listen ? opts->listen : rt->conf->installation.listen;
	relay_listen =
	    opts->relay_listen ? opts->relay_listen : rt->conf->installation.relay_listen;
	has_relay_listener = relay_listen != NULL;

	/* Every thread started from here inherits a mask without these signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	(void)signal(SIGPIPE, SIG_IGN);
	/* Without its store the bridge cannot honour revocations: it does not start. */
	if (!store_start(rt->conf))
		goto done;

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	threads = (unsigned)(ncpu > 0 ? ncpu : 1);
	if (!login_pool_start(login_threads)) {
		fb_log(FB_LOG_ERROR, "cannot start the login workers");
		goto done;
	}
	if ((d = start_listener(listen, &listener_public, threads,
	         (unsigned)rt->conf->installation.connections_per_client, &port)) == NULL) {
		login_pool_stop(login_threads);
		goto done;
	}
	if (relay_listen != NULL &&
	    (relay_d = start_listener(relay_listen, &listener_relay, threads, 0U, &relay_port)) ==
	        NULL) {
		login_pool_stop(login_threads);
		MHD_stop_daemon(d);
		goto done;
	}
	if (!feeders_start(feeder_threads)) {
		fb_log(FB_LOG_ERROR, "cannot start the revocation feed");
		login_pool_stop(login_threads);
		MHD_stop_daemon(d);
		if (relay_d != NULL)
			MHD_stop_daemon(relay_d);
		goto done;
	}
	if (opts->pid_file != NULL) {
		char pid[32];
		struct fb_err perr = { 0 };
		int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (fb_file_write_atomic(opts->pid_file, pid, (size_t)n, 0644, &perr) != FB_OK)
			fb_log(FB_LOG_WARN, "pid file: %s", perr.msg);
	}
	/* The relays' listener first: a test or an init script that waits for "listening on"
	 * then finds both. */
	if (relay_d != NULL)
		fb_log(FB_LOG_INFO, "relay checks (/validate, %s) on %.*s:%u",
		    peer_header_names[rt->conf->installation.relay_peer_cert],
		    (int)(strrchr(relay_listen, ':') - relay_listen), relay_listen, relay_port);
	fb_log(FB_LOG_INFO, "fedbridge %s: installation %s listening on %.*s:%u", FB_VERSION,
	    rt->conf->installation.name, (int)(strrchr(listen, ':') - listen), listen, port);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(opts->conf_path);
			continue;
		}
		fb_log(FB_LOG_INFO, "signal %d: stopping", sig);
		break;
	}
	/* Logins in progress end first (within their IdP's time limits): MHD stops only once
	 * no connection is suspended. */
	login_pool_stop(login_threads);
	MHD_stop_daemon(d);
	if (relay_d != NULL)
		MHD_stop_daemon(relay_d);
	if (opts->pid_file != NULL)
		(void)unlink(opts->pid_file);
	feeders_stop(feeder_threads, FEED_WORKERS);
	status = 0;
done:
	refreshers_stop(); /* they install trust tables: before the verifier goes */
	pthread_mutex_lock(&state.lock);
	rt = state.rt;
	state.rt = NULL;
	pthread_mutex_unlock(&state.lock);
	fb_store_close(state.store); /* stops the watch before the verifier goes */
	state.store = NULL;
	runtime_unref(rt);
	fb_verifier_free(state.verifier);
	state.verifier = NULL;
	for (size_t i = 0; i < PEER_CERT_CACHE; i++)
		free(peer_cache.slot[i].text);
	return status;
}
