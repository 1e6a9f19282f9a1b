/*
 * Unit tests for OpenID Connect discovery documents (idp/oidc_discovery.c):
 * a Keycloak-shaped document is read whole; each broken or hostile variant
 * is refused with the reason that names it. Then the relying party
 * (idp/oidc_rp.c) against a stand-in IdP on loopback, in a thread here: a
 * slow key set holds up only the logins that need it, and a discovery that
 * answers wrong is told apart from one that does not answer. Its token
 * endpoint checks what the code exchange posts: a private_key_jwt client
 * assertion signed with RSA keys of 2048, 3072 and 4096 bits and with a
 * P-256 key verifies with the client's public key, and an ID token whose
 * at_hash is not its access token's refuses the login.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <cjose/cjose.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fb_idp.h"

#define ISS "https://kc.a.example/realms/corp"

static const char keycloak[] =
    "{\"issuer\":\"" ISS "\","
    "\"authorization_endpoint\":\"" ISS "/protocol/openid-connect/auth\","
    "\"token_endpoint\":\"" ISS "/protocol/openid-connect/token\","
    "\"userinfo_endpoint\":\"" ISS "/protocol/openid-connect/userinfo\","
    "\"end_session_endpoint\":\"" ISS "/protocol/openid-connect/logout\","
    "\"jwks_uri\":\"" ISS "/protocol/openid-connect/certs\","
    "\"response_types_supported\":[\"code\",\"none\",\"id_token\"],"
    "\"subject_types_supported\":[\"public\",\"pairwise\"],"
    "\"id_token_signing_alg_values_supported\":[\"RS256\",\"ES256\"],"
    "\"code_challenge_methods_supported\":[\"plain\",\"S256\"],"
    "\"authorization_response_iss_parameter_supported\":true}";

static void
test_keycloak(void **state)
{
	struct fb_oidc_discovery d;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_oidc_discovery_parse(keycloak, strlen(keycloak), ISS, &d, &err), FB_OK);
	assert_string_equal(d.token_endpoint, ISS "/protocol/openid-connect/token");
	assert_string_equal(d.jwks_uri, ISS "/protocol/openid-connect/certs");
	assert_string_equal(d.userinfo_endpoint, ISS "/protocol/openid-connect/userinfo");
	assert_true(d.pkce_s256);
	assert_true(d.iss_parameter);
	fb_oidc_discovery_clear(&d);
}

struct row {
	const char *from, *to, *issuer, *want;
};

static void
test_refusals(void **state)
{
	static const struct row rows[] = {
		/* a document for another issuer: the mix-up Discovery 4.3 forbids */
		{ "\"issuer\":\"" ISS "\"", "\"issuer\":\"https://evil.example\"", ISS,
		    "issuer is \"https://evil.example\", not " ISS
		    ": the configured issuer must be exactly the IdP's issuer" },
		{ "\"issuer\":\"" ISS "\"", "\"issuer\":\"" ISS "/\"", ISS, "not " ISS },
		{ "\"issuer\":\"" ISS "\",", "", ISS, "issuer is absent" },
		{ "", "", "https://kc.a.example/realms/other",
		    "not https://kc.a.example/realms/other" },
		{ "\"token_endpoint\":\"https", "\"token_endpoint\":\"http", ISS,
		    "token_endpoint must be an https URL" },
		{ "\"jwks_uri\":\"https://", "\"jwks_uri\":\"https://user:pw@", ISS,
		    "jwks_uri must be an https URL" },
		{ "/certs\"", "/certs#x\"", ISS, "jwks_uri must be" },
		{ "\"jwks_uri\":\"" ISS "/protocol/openid-connect/certs\",", "", ISS,
		    "jwks_uri must be" },
		{ "\"authorization_endpoint\":\"https", "\"authorization_endpoint\":\"javascript",
		    ISS, "authorization_endpoint must be" },
		{ "\"userinfo_endpoint\":\"https", "\"userinfo_endpoint\":\"ftp", ISS,
		    "userinfo_endpoint must be" },
		/* an https issuer's document aiming our client secret at the bridge host or an
		 * inside service */
		{ "\"token_endpoint\":\"" ISS, "\"token_endpoint\":\"https://127.0.0.1:8081", ISS,
		    "token_endpoint must be an https URL (http only toward loopback, for a "
		    "loopback "
		    "issuer), without user info or fragment: a loopback, link-local or private "
		    "address" },
		{ "\"token_endpoint\":\"" ISS, "\"token_endpoint\":\"http://127.0.0.1:8081", ISS,
		    "token_endpoint must be an https URL" },
		{ "\"token_endpoint\":\"" ISS, "\"token_endpoint\":\"https://localhost", ISS,
		    "a loopback, link-local or private address" },
		{ "\"jwks_uri\":\"" ISS, "\"jwks_uri\":\"https://169.254.169.254/latest", ISS,
		    "jwks_uri must be an https URL" },
		{ "\"userinfo_endpoint\":\"" ISS, "\"userinfo_endpoint\":\"https://10.0.0.7", ISS,
		    "a loopback, link-local or private address" },
		{ "\"end_session_endpoint\":\"" ISS, "\"end_session_endpoint\":\"https://[fd00::1]",
		    ISS, "a loopback, link-local or private address" },
		{ "\"issuer\":\"" ISS "\"", "\"issuer\":\"https://evil.example/\\u001b[2J\"", ISS,
		    "issuer is \"https://evil.example/\\x1b[2J\"" },
		{ "[\"code\",\"none\",\"id_token\"]", "[\"id_token\"]", ISS,
		    "does not offer the authorization code flow" },
		{ "\"issuer\":", "\"issuer\":\"x\",\"issuer\":", ISS, "not a JSON object" },
	};
	char doc[4096];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fb_oidc_discovery d;
		struct fb_err err = { 0 };
		const char *at = rows[i].from[0] ? strstr(keycloak, rows[i].from) : keycloak;
		fb_rc rc;
		assert_non_null(at);
		(void)snprintf(doc, sizeof(doc), "%.*s%s%s", (int)(at - keycloak), keycloak,
		    rows[i].to, at + strlen(rows[i].from));
		rc = fb_oidc_discovery_parse(doc, strlen(doc), rows[i].issuer, &d, &err);
		if (rc == FB_OK) {
			fb_oidc_discovery_clear(&d);
			fail_msg("row %zu accepted, expected \"%s\"", i, rows[i].want);
		}
		if (strstr(err.msg, rows[i].want) == NULL)
			fail_msg("row %zu: expected \"%s\", got \"%s\"", i, rows[i].want, err.msg);
	}
}

static void
test_loopback_http(void **state)
{
	static const char doc[] = "{\"issuer\":\"http://127.0.0.1:9000\","
	                          "\"authorization_endpoint\":\"http://127.0.0.1:9000/auth\","
	                          "\"token_endpoint\":\"http://localhost:9000/token\","
	                          "\"jwks_uri\":\"http://[::1]:9000/jwks\","
	                          "\"response_types_supported\":[\"code\"]}";
	struct fb_oidc_discovery d;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(
	    fb_oidc_discovery_parse(doc, strlen(doc), "http://127.0.0.1:9000", &d, &err), FB_OK);
	assert_false(d.pkce_s256);
	assert_false(d.iss_parameter);
	assert_null(d.userinfo_endpoint);
	fb_oidc_discovery_clear(&d);
}

/* An https issuer on an inside address names its own host: the configuration's word. */
static void
test_issuer_own_host(void **state)
{
	static const char doc[] = "{\"issuer\":\"https://10.0.0.5\","
	                          "\"authorization_endpoint\":\"https://10.0.0.5/auth\","
	                          "\"token_endpoint\":\"https://10.0.0.5/token\","
	                          "\"jwks_uri\":\"https://10.0.0.5/jwks\","
	                          "\"response_types_supported\":[\"code\"]}";
	struct fb_oidc_discovery d;
	struct fb_err err = { 0 };
	struct fb_url_rule rule;

	(void)state;
	assert_int_equal(
	    fb_oidc_discovery_parse(doc, strlen(doc), "https://10.0.0.5", &d, &err), FB_OK);
	fb_oidc_discovery_clear(&d);
	fb_oidc_endpoint_rule(ISS, "https://other.example/token", &rule);
	assert_true(rule.public_only);
	assert_false(rule.loopback_http);
	fb_oidc_endpoint_rule(ISS, ISS "/token", &rule);
	assert_false(rule.public_only);
	fb_oidc_endpoint_rule("http://127.0.0.1:9000", "http://localhost:9000/token", &rule);
	assert_true(rule.loopback_http);
	assert_string_equal(rule.scheme, "http");
}

/* ---- the relying party against a stand-in IdP ---- */

#define IDP_POLL_MS 50 /* how often the stand-in looks whether it should stop */
#define IDP_REQUEST_MAX 16384 /* a code exchange with a 4096-bit RSA client assertion fits */
#define IDP_HEAD_MAX 256
#define IDP_URL_MAX 64
#define IDP_JWKS_MAX 4096
#define HTTP_OK 200
#define HTTP_BAD_REQUEST 400
#define HTTP_NOT_FOUND 404
#define HTTP_UNAVAILABLE 503
#define STALL_MS 4000 /* the key set that does not come */
#define RP_TIMEOUT_S 2 /* the provider's time for the IdP calls of one login */
#define KNOWN_WITHIN_MS 1000 /* a login whose kid is known waits for no fetch */
#define FLIGHT_SEEN_MS 5000 /* how long the test waits for the refetch to reach the IdP */
#define STEP_MS 10
#define NOW 1800000000
#define SKEW 30
#define TOKEN_LIFETIME 300
#define MAX_AGE 600
#define REFETCH_MIN 30
#define LATER 60 /* seconds after the first login: an unknown kid may fetch again */
#define MS_PER_S 1000
#define NS_PER_MS 1000000
#define BACKLOG 8
#define SECRET "s3cret"
#define GET_DISCOVERY "GET /.well-known/openid-configuration "
#define GET_JWKS "GET /jwks "
#define POST_TOKEN "POST /token "
#define CONTENT_LENGTH "\r\ncontent-length:"
/* OpenID Connect Core 1.0, A.3 and A.4: an access token and its at_hash (SHA-256). */
#define ACCESS_TOKEN "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
#define ACCESS_TOKEN_AT_HASH "77QmUPtjPfzWtF2AnpK9RQ"
#define WRONG_AT_HASH "AAAAAAAAAAAAAAAAAAAAAA"

/* A stand-in IdP on 127.0.0.1: discovery, and a key set answered once, then stalled. */
struct idp {
	int listener;
	unsigned short port;
	pthread_t thread;
	atomic_bool stop;
	atomic_int discovery_status; /* HTTP_OK: the document */
	atomic_bool other_issuer; /* the document names another issuer */
	atomic_int jwks_asked; /* the first request is answered, later ones stall */
	atomic_bool jwks_always; /* unless this is set: then every one is answered */
	char issuer[IDP_URL_MAX];
	char jwks[IDP_JWKS_MAX];
	/* The token endpoint: set before a login, read after it (under lock). */
	pthread_mutex_t lock;
	const cjose_jwk_t *signer; /* signs its ID tokens (ES256) */
	char nonce[FB_OIDC_STATE_LEN + 1]; /* the login's, put in the ID token */
	const char *at_hash; /* the ID token's at_hash; NULL: none */
	char token_form[IDP_REQUEST_MAX]; /* what the last code exchange posted */
	const char *token_error; /* not NULL: the code exchange is refused (400) with this body */
};

static int64_t
mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * MS_PER_S + t.tv_nsec / NS_PER_MS;
}

static void
idp_answer(int conn, int status, const char *body)
{
	char head[IDP_HEAD_MAX];
	int n = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    status, strlen(body));

	(void)send(conn, head, (size_t)n, MSG_NOSIGNAL);
	(void)send(conn, body, strlen(body), MSG_NOSIGNAL);
}

static void
idp_discovery(struct idp *s, int conn)
{
	char doc[IDP_REQUEST_MAX];
	int status = atomic_load(&s->discovery_status);

	if (status != HTTP_OK) {
		idp_answer(conn, status, "{}");
		return;
	}
	(void)snprintf(doc, sizeof(doc),
	    "{\"issuer\":\"%s%s\",\"authorization_endpoint\":\"%s/auth\","
	    "\"token_endpoint\":\"%s/token\",\"jwks_uri\":\"%s/jwks\","
	    "\"response_types_supported\":[\"code\"]}",
	    s->issuer, atomic_load(&s->other_issuer) ? "/other" : "", s->issuer, s->issuer,
	    s->issuer);
	idp_answer(conn, HTTP_OK, doc);
}

static char *id_token_with(
    const cjose_jwk_t *key, const char *issuer, const char *nonce, const char *at_hash);

/* The code exchange: what was posted is kept; the answer is an ID token and ACCESS_TOKEN. */
static void
idp_token(struct idp *s, int conn, const char *form)
{
	char body[IDP_REQUEST_MAX], *idt;

	pthread_mutex_lock(&s->lock);
	(void)snprintf(s->token_form, sizeof(s->token_form), "%s", form);
	if (s->token_error != NULL) {
		(void)snprintf(body, sizeof(body), "%s", s->token_error);
		pthread_mutex_unlock(&s->lock);
		idp_answer(conn, HTTP_BAD_REQUEST, body);
		return;
	}
	idt = id_token_with(s->signer, s->issuer, s->nonce, s->at_hash);
	pthread_mutex_unlock(&s->lock);
	(void)snprintf(body, sizeof(body),
	    "{\"access_token\":\"" ACCESS_TOKEN "\",\"token_type\":\"Bearer\",\"id_token\":\"%s\"}",
	    idt ? idt : "");
	free(idt);
	idp_answer(conn, HTTP_OK, body);
}

/* Reads one request, its body too when it has a Content-Length; NUL-terminated in req. */
static void
idp_read(int conn, char *req, size_t size)
{
	size_t len = 0, want = 0;
	ssize_t got;
	char *end = NULL, *cl;

	req[0] = '\0';
	while (len < size - 1 && (end == NULL || len < want) &&
	    (got = recv(conn, req + len, size - 1 - len, 0)) > 0) {
		len += (size_t)got;
		req[len] = '\0';
		if (end == NULL && (end = strstr(req, "\r\n\r\n")) != NULL) {
			cl = strcasestr(req, CONTENT_LENGTH);
			want = (size_t)(end + 4 - req) +
			    (cl != NULL && cl < end ? strtoul(cl + strlen(CONTENT_LENGTH), NULL, 10)
			                            : 0);
		}
	}
}

static void *
idp_serve(void *arg)
{
	struct idp *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->listener, .events = POLLIN };
		char req[IDP_REQUEST_MAX], *form;
		int conn;

		if (poll(&p, 1, IDP_POLL_MS) != 1 || (conn = accept(s->listener, NULL, NULL)) < 0)
			continue;
		idp_read(conn, req, sizeof(req));
		if (strncmp(req, POST_TOKEN, strlen(POST_TOKEN)) == 0 &&
		    (form = strstr(req, "\r\n\r\n")) != NULL)
			idp_token(s, conn, form + 4);
		else if (strncmp(req, GET_DISCOVERY, strlen(GET_DISCOVERY)) == 0)
			idp_discovery(s, conn);
		else if (strncmp(req, GET_JWKS, strlen(GET_JWKS)) == 0 &&
		    (atomic_fetch_add(&s->jwks_asked, 1) == 0 || atomic_load(&s->jwks_always)))
			idp_answer(conn, HTTP_OK, s->jwks);
		else if (strncmp(req, GET_JWKS, strlen(GET_JWKS)) == 0)
			(void)poll(NULL, 0, STALL_MS); /* taken, never answered */
		else
			idp_answer(conn, HTTP_NOT_FOUND, "{}");
		(void)close(conn);
	}
	return NULL;
}

/* A listening socket on 127.0.0.1 and an ephemeral port; the port goes to *port. */
static int
listen_loopback(unsigned short *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, BACKLOG), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void
idp_start(struct idp *s, const char *jwks)
{
	memset(s, 0, sizeof(*s));
	atomic_init(&s->stop, false);
	atomic_init(&s->discovery_status, HTTP_OK);
	atomic_init(&s->other_issuer, false);
	atomic_init(&s->jwks_asked, 0);
	atomic_init(&s->jwks_always, false);
	pthread_mutex_init(&s->lock, NULL);
	s->listener = listen_loopback(&s->port);
	(void)snprintf(s->issuer, sizeof(s->issuer), "http://127.0.0.1:%u", s->port);
	(void)snprintf(s->jwks, sizeof(s->jwks), "%s", jwks);
	assert_int_equal(pthread_create(&s->thread, NULL, idp_serve, s), 0);
}

static void
idp_stop(struct idp *s)
{
	atomic_store(&s->stop, true);
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	(void)close(s->listener);
	pthread_mutex_destroy(&s->lock);
}

/* One provider of the stand-in IdP, and the client secret file it reads. */
struct rp_fixture {
	struct fb_conf_provider p;
	char secret[IDP_REQUEST_MAX];
	struct fb_oidc_rp *rp;
};

static const char *es256[] = { "ES256" };

/* client_key: a PEM file for private_key_jwt; NULL: client_secret_basic. */
static void
rp_start_as(struct rp_fixture *f, const char *issuer, const char *client_key)
{
	const char *tmp = getenv("TMPDIR");
	struct fb_oidc_rp_opts o = { .provider = &f->p,
		.redirect_uri = "https://bridge.example/oidc/callback",
		.skew = SKEW,
		.refetch_min = REFETCH_MIN };
	struct fb_err err = { 0 };
	int fd;

	memset(f, 0, sizeof(*f));
	(void)snprintf(f->secret, sizeof(f->secret), "%s/fb_rp_secret_XXXXXX", tmp ? tmp : "/tmp");
	assert_true((fd = mkstemp(f->secret)) >= 0); /* 0600, as a secret file must be */
	assert_int_equal(write(fd, SECRET, strlen(SECRET)), (ssize_t)strlen(SECRET));
	(void)close(fd);
	f->p.name = "corp";
	f->p.type = FB_PROVIDER_OIDC;
	f->p.issuer = issuer;
	f->p.client_id = "fedbridge";
	f->p.client_secret_file = f->secret;
	f->p.client_auth = FB_CLIENT_AUTH_SECRET_BASIC;
	if (client_key != NULL) {
		f->p.client_auth = FB_CLIENT_AUTH_PRIVATE_KEY_JWT;
		f->p.client_key = client_key;
	}
	f->p.allowed_algs.v = es256;
	f->p.allowed_algs.n = 1;
	f->p.timeout = RP_TIMEOUT_S;
	if (fb_oidc_rp_new(&o, &f->rp, &err) != FB_OK)
		fail_msg("fb_oidc_rp_new: %s", err.msg);
}

static void
rp_start(struct rp_fixture *f, const char *issuer)
{
	rp_start_as(f, issuer, NULL);
}

static void
rp_stop(struct rp_fixture *f)
{
	fb_oidc_rp_free(f->rp);
	(void)unlink(f->secret);
}

/*
 * An ES256 ID token for the stand-in IdP, signed by key (its kid in the header),
 * with a nonce and an at_hash when not NULL; malloc'd.
 */
static char *
id_token_with(const cjose_jwk_t *key, const char *issuer, const char *nonce, const char *at_hash)
{
	cjose_err cerr;
	cjose_header_t *h = cjose_header_new(&cerr);
	cjose_jws_t *jws;
	const char *ser = NULL;
	char payload[IDP_REQUEST_MAX], *out = NULL;

	(void)snprintf(payload, sizeof(payload),
	    "{\"iss\":\"%s\",\"sub\":\"f2c1\",\"aud\":\"fedbridge\",\"exp\":%lld,\"iat\":%lld"
	    "%s%s%s%s%s%s}",
	    issuer, (long long)NOW + TOKEN_LIFETIME, (long long)NOW - SKEW / 2,
	    nonce ? ",\"nonce\":\"" : "", nonce ? nonce : "", nonce ? "\"" : "",
	    at_hash ? ",\"at_hash\":\"" : "", at_hash ? at_hash : "", at_hash ? "\"" : "");
	if (h == NULL || !cjose_header_set(h, CJOSE_HDR_ALG, "ES256", &cerr) ||
	    !cjose_header_set(h, CJOSE_HDR_KID, cjose_jwk_get_kid(key, &cerr), &cerr))
		return NULL;
	jws = cjose_jws_sign(key, h, (const uint8_t *)payload, strlen(payload), &cerr);
	if (jws != NULL && cjose_jws_export(jws, &ser, &cerr))
		out = strdup(ser);
	cjose_jws_release(jws);
	cjose_header_release(h);
	return out;
}

static char *
id_token(const cjose_jwk_t *key, const char *issuer)
{
	return id_token_with(key, issuer, NULL, NULL);
}

static cjose_jwk_t *
ec_key(const char *kid)
{
	cjose_err cerr;
	cjose_jwk_t *k = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &cerr);

	assert_non_null(k);
	assert_true(cjose_jwk_set_kid(k, kid, strlen(kid), &cerr));
	return k;
}

/* One login's ID token check, on its own thread, timed. */
struct login {
	struct fb_oidc_rp *rp;
	const char *token;
	int64_t now;
	pthread_t thread;
	fb_rc rc;
	int64_t ms;
	struct fb_err err;
};

static void *
login_run(void *arg)
{
	struct login *l = arg;
	json_t *claims = NULL;
	int64_t t0 = mono_ms();

	l->rc =
	    fb_oidc_rp_validate_id_token(l->rp, l->token, NULL, l->now, MAX_AGE, &claims, &l->err);
	l->ms = mono_ms() - t0;
	json_decref(claims);
	return NULL;
}

/*
 * While one login's unknown kid has the key set fetched again from an IdP
 * that takes the request and does not answer, a login whose kid is known goes
 * on at once; the first ends "unavailable" (FB_ERR_IO) at its deadline.
 */
static void
test_slow_keys_hold_up_only_their_login(void **state)
{
	cjose_jwk_t *known = ec_key("k1"), *rotated = ec_key("k2");
	struct login first = { 0 }, second = { 0 };
	struct rp_fixture f;
	static struct idp s; /* static: a failed assertion leaves its thread running */
	cjose_err cerr;
	char jwks[IDP_JWKS_MAX], *pub = cjose_jwk_to_json(known, false, &cerr);
	char *good = NULL, *unknown = NULL;
	int64_t waited = 0;

	(void)state;
	assert_non_null(pub);
	(void)snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", pub);
	free(pub);
	idp_start(&s, jwks);
	rp_start(&f, s.issuer);
	good = id_token(known, s.issuer);
	unknown = id_token(rotated, s.issuer);
	assert_non_null(good);
	assert_non_null(unknown);

	/* The first login fetches discovery and keys. */
	first = (struct login){ .rp = f.rp, .token = good, .now = NOW };
	(void)login_run(&first);
	if (first.rc != FB_OK)
		fail_msg("first login: %s", first.err.msg);

	/* An unknown kid, later: the keys are fetched again, and the IdP stalls. */
	first = (struct login){ .rp = f.rp, .token = unknown, .now = NOW + LATER };
	assert_int_equal(pthread_create(&first.thread, NULL, login_run, &first), 0);
	while (atomic_load(&s.jwks_asked) < 2 && waited < FLIGHT_SEEN_MS) {
		(void)poll(NULL, 0, STEP_MS);
		waited += STEP_MS;
	}
	assert_int_equal(atomic_load(&s.jwks_asked), 2);

	second = (struct login){ .rp = f.rp, .token = good, .now = NOW + LATER };
	assert_int_equal(pthread_create(&second.thread, NULL, login_run, &second), 0);
	assert_int_equal(pthread_join(second.thread, NULL), 0);
	assert_int_equal(pthread_join(first.thread, NULL), 0);
	printf("known kid: %lld ms (rc %s); unknown kid: %lld ms (rc %s: %s)\n",
	    (long long)second.ms, fb_rc_name(second.rc), (long long)first.ms, fb_rc_name(first.rc),
	    first.err.msg);
	if (second.rc != FB_OK)
		fail_msg("known kid: %s", second.err.msg);
	assert_true(second.ms < KNOWN_WITHIN_MS);
	assert_int_equal(first.rc, FB_ERR_IO);
	assert_true(first.ms < STALL_MS + KNOWN_WITHIN_MS);

	rp_stop(&f);
	idp_stop(&s);
	free(good);
	free(unknown);
	cjose_jwk_release(known);
	cjose_jwk_release(rotated);
}

#define RETRY_S 10 /* oidc_rp.c's RP_RETRY_S: a failed discovery is tried again after it */

/* The authorization URL's fate at now: its rc, with err's message in *msg. */
static fb_rc
auth_url(struct fb_oidc_rp *rp, int64_t now, char *msg, size_t size)
{
	struct fb_oidc_login l;
	struct fb_err err = { 0 };
	char *url = NULL;
	fb_rc rc;

	assert_int_equal(fb_oidc_login_new(&l, &err), FB_OK);
	rc = fb_oidc_rp_auth_url(rp, &l, now, &url, &err);
	free(url);
	(void)snprintf(msg, size, "%s", err.msg);
	return rc;
}

/* Discovery answering wrong is the provider's misconfiguration; not answering is an outage. */
static void
test_discovery_failure_classes(void **state)
{
	struct rp_fixture f;
	static struct idp s; /* static: a failed assertion leaves its thread running */
	char msg[FB_ERR_MSG_MAX], refused[IDP_URL_MAX], want[FB_ERR_MSG_MAX];
	unsigned short port;

	(void)state;
	idp_start(&s, "{\"keys\":[]}");

	atomic_store(&s.discovery_status, HTTP_NOT_FOUND);
	rp_start(&f, s.issuer);
	assert_int_equal(auth_url(f.rp, NOW, msg, sizeof(msg)), FB_ERR_CONFIG);
	assert_non_null(strstr(msg, "HTTP status 404"));
	assert_non_null(strstr(msg, "provider corp is misconfigured"));
	/* The likely cause named: an issuer without the realm's path finds no document. */
	assert_non_null(strstr(msg, "/.well-known/openid-configuration: HTTP status 404"));
	assert_non_null(strstr(msg, "must be exactly the IdP's issuer"));
	/* Still misconfigured until tried again, on the outage's spacing; then fixed. */
	atomic_store(&s.discovery_status, HTTP_OK);
	assert_int_equal(auth_url(f.rp, NOW + 1, msg, sizeof(msg)), FB_ERR_CONFIG);
	assert_non_null(strstr(msg, "failed less than"));
	assert_int_equal(auth_url(f.rp, NOW + RETRY_S, msg, sizeof(msg)), FB_OK);
	rp_stop(&f);

	atomic_store(&s.other_issuer, true);
	rp_start(&f, s.issuer);
	assert_int_equal(auth_url(f.rp, NOW, msg, sizeof(msg)), FB_ERR_CONFIG);
	assert_non_null(strstr(msg, "discovery: issuer is"));
	assert_non_null(strstr(msg, "provider corp is misconfigured"));
	/* The URL asked, the issuer the document names, and what to do about it. */
	(void)snprintf(want, sizeof(want),
	    "asked %s/.well-known/openid-configuration: discovery: issuer is \"%s/other\", not %s",
	    s.issuer, s.issuer, s.issuer);
	if (strstr(msg, want) == NULL)
		fail_msg("want \"%s\" in: %s", want, msg);
	assert_non_null(strstr(msg, "must be exactly the IdP's issuer"));
	rp_stop(&f);
	atomic_store(&s.other_issuer, false);

	atomic_store(&s.discovery_status, HTTP_UNAVAILABLE);
	rp_start(&f, s.issuer);
	assert_int_equal(auth_url(f.rp, NOW, msg, sizeof(msg)), FB_ERR_IO);
	assert_non_null(strstr(msg, "HTTP status 503"));
	assert_null(strstr(msg, "misconfigured"));
	rp_stop(&f);
	idp_stop(&s);

	/* Nothing listens there any more: connection refused. */
	(void)close(listen_loopback(&port));
	(void)snprintf(refused, sizeof(refused), "http://127.0.0.1:%u", port);
	rp_start(&f, refused);
	assert_int_equal(auth_url(f.rp, NOW, msg, sizeof(msg)), FB_ERR_IO);
	assert_null(strstr(msg, "misconfigured"));
	rp_stop(&f);
}

/*
 * Ahead of logins: discovery and keys fetched by fb_oidc_rp_refresh, tried
 * again with a growing backoff while they fail; the status says why logins
 * cannot start (unreachable or misconfigured) until they come.
 */
static void
test_refresh_ahead(void **state)
{
	struct rp_fixture f;
	static struct idp s; /* static: a failed assertion leaves its thread running */
	struct fb_err err = { 0 };
	char why[FB_ERR_MSG_MAX];
	int64_t first_retry, second_retry;

	(void)state;
	idp_start(&s, "{\"keys\":[]}");
	atomic_store(&s.discovery_status, HTTP_UNAVAILABLE);
	rp_start(&f, s.issuer);
	assert_int_equal(fb_oidc_rp_status(f.rp, why, sizeof(why)), FB_OK); /* not tried yet */
	assert_true(fb_oidc_rp_next_refresh(f.rp) <= NOW); /* due at once */
	assert_int_equal(fb_oidc_rp_refresh(f.rp, NOW, &err), FB_ERR_IO);
	assert_int_equal(fb_oidc_rp_status(f.rp, why, sizeof(why)), FB_ERR_IO);
	assert_non_null(strstr(why, "HTTP status 503"));
	first_retry = fb_oidc_rp_next_refresh(f.rp) - NOW;
	assert_true(first_retry > 0 && first_retry <= RETRY_S);
	/* Not due yet: nothing fetched, nothing changes. */
	assert_int_equal(fb_oidc_rp_refresh(f.rp, NOW + 1, &err), FB_OK);
	assert_int_equal(fb_oidc_rp_status(f.rp, NULL, 0), FB_ERR_IO);
	/* Now answering wrong: misconfigured, and the next try later than the first. */
	atomic_store(&s.discovery_status, HTTP_NOT_FOUND);
	assert_int_equal(fb_oidc_rp_refresh(f.rp, NOW + RETRY_S, &err), FB_ERR_CONFIG);
	assert_int_equal(fb_oidc_rp_status(f.rp, why, sizeof(why)), FB_ERR_CONFIG);
	assert_non_null(strstr(why, "misconfigured"));
	second_retry = fb_oidc_rp_next_refresh(f.rp) - (NOW + RETRY_S);
	assert_true(second_retry > first_retry);
	/* Fixed: discovery and keys in hand before any login; next due when the keys age. */
	atomic_store(&s.discovery_status, HTTP_OK);
	assert_int_equal(fb_oidc_rp_refresh(f.rp, NOW + 3 * RETRY_S, &err), FB_OK);
	assert_int_equal(fb_oidc_rp_status(f.rp, NULL, 0), FB_OK);
	assert_int_equal(atomic_load(&s.jwks_asked), 1);
	assert_true(fb_oidc_rp_next_refresh(f.rp) > NOW + 3 * RETRY_S + second_retry);
	rp_stop(&f);
	idp_stop(&s);
}

/* ---- the code exchange, at the stand-in's token endpoint ---- */

#define LOGIN_AGE 60 /* the browser left for the IdP this long before the callback */
#define CLIENT_ID "fedbridge"
#define BN_BYTES_MAX 512 /* an RSA modulus of 4096 bits */
#define B64_PARAM_MAX (FB_B64URL_ENCODED_LEN(BN_BYTES_MAX) + 1)
#define EC_COORD_BYTES 32 /* P-256 */
#define PATH_MAX_TEST 256
#define ASSERTION_PARAM "&client_assertion="
#define PKCE_HINT_SAID "fedbridge always sends PKCE (code_challenge_method S256)"

/* A login ended at the stand-in (its ID token carrying at_hash when not NULL): the failure. */
static enum fb_oidc_failure
finish_login(
    struct idp *s, struct fb_oidc_rp *rp, const char *at_hash, fb_rc *rc, struct fb_err *err)
{
	struct fb_oidc_login l;
	struct fb_oidc_outcome out;
	struct fb_oidc_response resp = { .code = "code-1" };
	enum fb_oidc_failure failure;

	assert_int_equal(fb_oidc_login_new(&l, err), FB_OK);
	l.started = NOW - LOGIN_AGE;
	resp.state = l.state;
	pthread_mutex_lock(&s->lock);
	memcpy(s->nonce, l.nonce, sizeof(s->nonce));
	s->at_hash = at_hash;
	s->token_form[0] = '\0';
	pthread_mutex_unlock(&s->lock);
	*rc = fb_oidc_rp_finish(rp, &l, &resp, NOW, &out, err);
	failure = out.failure;
	fb_oidc_outcome_clear(&out);
	return failure;
}

/* A public key parameter (a big number), base64url, left-padded to pad bytes when pad > 0. */
static void
b64_param(const EVP_PKEY *k, const char *name, int pad, char *out, size_t size)
{
	BIGNUM *bn = NULL;
	unsigned char raw[BN_BYTES_MAX];
	int n;

	assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	assert_true(BN_num_bytes(bn) <= (int)sizeof(raw));
	n = pad > 0 ? BN_bn2binpad(bn, raw, pad) : BN_bn2bin(bn, raw);
	BN_free(bn);
	assert_true(n > 0);
	assert_int_equal(fb_b64url_encode(raw, (size_t)n, out, size), FB_OK);
}

/*
 * A client key (RSA of bits, or P-256 when bits is 0) in a PEM file, 0600 as
 * private_key_jwt wants it, at path; its public half as a JWKS in jwks.
 */
static void
client_key(size_t bits, char *path, size_t path_size, char *jwks, size_t jwks_size)
{
	const char *tmp = getenv("TMPDIR");
	EVP_PKEY *k = bits ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits)
	                   : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char a[B64_PARAM_MAX], b[B64_PARAM_MAX];
	FILE *fp;
	int fd;

	assert_non_null(k);
	(void)snprintf(path, path_size, "%s/fb_rp_key_XXXXXX", tmp ? tmp : "/tmp");
	assert_true((fd = mkstemp(path)) >= 0); /* 0600 */
	assert_non_null(fp = fdopen(fd, "w"));
	assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(fp), 0);
	if (bits) {
		b64_param(k, OSSL_PKEY_PARAM_RSA_N, 0, a, sizeof(a));
		b64_param(k, OSSL_PKEY_PARAM_RSA_E, 0, b, sizeof(b));
		(void)snprintf(jwks, jwks_size,
		    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}]}", a, b);
	} else {
		b64_param(k, OSSL_PKEY_PARAM_EC_PUB_X, EC_COORD_BYTES, a, sizeof(a));
		b64_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, EC_COORD_BYTES, b, sizeof(b));
		(void)snprintf(jwks, jwks_size,
		    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", a,
		    b);
	}
	EVP_PKEY_free(k);
}

/* A stand-in IdP whose token endpoint answers every login, signing with *signer. */
static void
token_idp_start(struct idp *s, cjose_jwk_t **signer)
{
	cjose_err cerr;
	char jwks[IDP_JWKS_MAX], *pub;

	*signer = ec_key("op-1");
	assert_non_null(pub = cjose_jwk_to_json(*signer, false, &cerr));
	(void)snprintf(jwks, sizeof(jwks), "{\"keys\":[%s]}", pub);
	free(pub);
	idp_start(s, jwks);
	atomic_store(&s->jwks_always, true);
	s->signer = *signer;
}

/*
 * private_key_jwt with RSA keys of 2048, 3072 and 4096 bits and a P-256 key:
 * the code exchange carries a client assertion that verifies with the
 * client's public key (the signature sized from the key, not a fixed buffer).
 */
static void
test_client_assertion_key_sizes(void **state)
{
	static const size_t sizes[] = { 2048, 3072, 4096, 0 /* P-256 */ };
	static struct idp s; /* static: a failed assertion leaves its thread running */
	cjose_jwk_t *signer;
	char endpoint[IDP_URL_MAX + 8];

	(void)state;
	token_idp_start(&s, &signer);
	(void)snprintf(endpoint, sizeof(endpoint), "%s/token", s.issuer);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char path[PATH_MAX_TEST], jwks[IDP_JWKS_MAX], assertion[IDP_REQUEST_MAX];
		struct fb_err err = { 0 };
		struct fb_oidc_keys *keys = NULL;
		struct rp_fixture f;
		json_t *claims = NULL;
		const char *at;
		fb_rc rc;

		client_key(sizes[i], path, sizeof(path), jwks, sizeof(jwks));
		rp_start_as(&f, s.issuer, path);
		if (finish_login(&s, f.rp, NULL, &rc, &err) != FB_OIDC_OK || rc != FB_OK)
			fail_msg("key %zu: %s", sizes[i], err.msg);
		pthread_mutex_lock(&s.lock);
		at = strstr(s.token_form, ASSERTION_PARAM);
		assert_non_null(at);
		/* base64url and dots: nothing in it is percent-encoded */
		(void)snprintf(assertion, sizeof(assertion), "%.*s",
		    (int)strcspn(at + strlen(ASSERTION_PARAM), "&"), at + strlen(ASSERTION_PARAM));
		pthread_mutex_unlock(&s.lock);
		assert_int_equal(fb_oidc_keys_parse(jwks, strlen(jwks), &keys, &err), FB_OK);
		if (fb_oidc_client_assertion_validate(
		        keys, assertion, CLIENT_ID, endpoint, NOW, SKEW, &claims, &err) != FB_OK)
			fail_msg("key %zu: %s", sizes[i], err.msg);
		json_decref(claims);
		fb_oidc_keys_free(keys);
		rp_stop(&f);
		(void)unlink(path);
	}
	idp_stop(&s);
	cjose_jwk_release(signer);
}

/*
 * at_hash: an ID token from the code exchange whose at_hash is not the
 * access token's refuses the login (id_token); the right one, or none, passes.
 */
static void
test_at_hash_checked(void **state)
{
	static struct idp s; /* static: a failed assertion leaves its thread running */
	cjose_jwk_t *signer;
	struct rp_fixture f;
	struct fb_err err = { 0 };
	enum fb_oidc_failure failure;
	fb_rc rc;

	(void)state;
	token_idp_start(&s, &signer);
	rp_start(&f, s.issuer);
	if (finish_login(&s, f.rp, ACCESS_TOKEN_AT_HASH, &rc, &err) != FB_OIDC_OK || rc != FB_OK)
		fail_msg("the right at_hash: %s", err.msg);
	if (finish_login(&s, f.rp, NULL, &rc, &err) != FB_OIDC_OK || rc != FB_OK)
		fail_msg("no at_hash: %s", err.msg);
	memset(&err, 0, sizeof(err));
	failure = finish_login(&s, f.rp, WRONG_AT_HASH, &rc, &err);
	printf("a wrong at_hash: %s (%s): %s\n", fb_oidc_failure_name(failure), fb_rc_name(rc),
	    err.msg);
	assert_int_equal(failure, FB_OIDC_ID_TOKEN);
	assert_int_equal(rc, FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "at_hash"));
	rp_stop(&f);
	idp_stop(&s);
	cjose_jwk_release(signer);
}

/* A refusal from the IdP (token endpoint: token_error; else the callback's error): the message. */
static void
refused_login(struct idp *s, struct fb_oidc_rp *rp, const char *token_error, const char *error,
    const char *description, enum fb_oidc_failure want, char *msg, size_t size)
{
	struct fb_err err = { 0 };
	struct fb_oidc_login l;
	struct fb_oidc_outcome out;
	struct fb_oidc_response resp = {
		.code = "code-1", .error = error, .error_description = description
	};

	assert_int_equal(fb_oidc_login_new(&l, &err), FB_OK);
	l.started = NOW - LOGIN_AGE;
	resp.state = l.state;
	pthread_mutex_lock(&s->lock);
	s->token_error = token_error;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(fb_oidc_rp_finish(rp, &l, &resp, NOW, &out, &err), FB_ERR_INVALID);
	assert_int_equal(out.failure, want);
	fb_oidc_outcome_clear(&out);
	pthread_mutex_lock(&s->lock);
	s->token_error = NULL;
	pthread_mutex_unlock(&s->lock);
	printf("%s\n", err.msg);
	(void)snprintf(msg, size, "%s", err.msg);
}

/*
 * PKCE turned off or held to plain at the IdP's client: the refusal says the bridge
 * always sends S256, at the token endpoint and at the callback; other refusals do not.
 */
static void
test_pkce_refusal_hint(void **state)
{
	static struct idp s; /* static: a failed assertion leaves its thread running */
	cjose_jwk_t *signer;
	struct rp_fixture f;
	char msg[FB_ERR_MSG_MAX];

	(void)state;
	token_idp_start(&s, &signer);
	rp_start(&f, s.issuer);
	refused_login(&s, f.rp,
	    "{\"error\":\"invalid_grant\",\"error_description\":\"PKCE verification failed: "
	    "Invalid code verifier\"}",
	    NULL, NULL, FB_OIDC_TOKEN_ENDPOINT, msg, sizeof(msg));
	assert_non_null(strstr(msg, "error invalid_grant (PKCE verification failed"));
	assert_non_null(strstr(msg, PKCE_HINT_SAID));
	refused_login(&s, f.rp,
	    "{\"error\":\"invalid_request\",\"error_description\":\"code_verifier not "
	    "allowed\"}",
	    NULL, NULL, FB_OIDC_TOKEN_ENDPOINT, msg, sizeof(msg));
	assert_non_null(strstr(msg, PKCE_HINT_SAID));
	/* An expired code is not about PKCE. */
	refused_login(&s, f.rp,
	    "{\"error\":\"invalid_grant\",\"error_description\":\"Code not valid\"}", NULL, NULL,
	    FB_OIDC_TOKEN_ENDPOINT, msg, sizeof(msg));
	assert_null(strstr(msg, "PKCE"));

	refused_login(&s, f.rp, NULL, "invalid_request", "Invalid parameter: code_challenge_method",
	    FB_OIDC_IDP_ERROR, msg, sizeof(msg));
	assert_non_null(strstr(msg, "error=invalid_request: Invalid parameter"));
	assert_non_null(strstr(msg, PKCE_HINT_SAID));
	refused_login(&s, f.rp, NULL, "invalid_request", NULL, FB_OIDC_IDP_ERROR, msg, sizeof(msg));
	assert_non_null(strstr(msg, PKCE_HINT_SAID));
	refused_login(
	    &s, f.rp, NULL, "access_denied", "User cancelled", FB_OIDC_IDP_ERROR, msg, sizeof(msg));
	assert_null(strstr(msg, "PKCE"));
	rp_stop(&f);
	idp_stop(&s);
	cjose_jwk_release(signer);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keycloak),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_loopback_http),
		cmocka_unit_test(test_issuer_own_host),
		cmocka_unit_test(test_slow_keys_hold_up_only_their_login),
		cmocka_unit_test(test_discovery_failure_classes),
		cmocka_unit_test(test_refresh_ahead),
		cmocka_unit_test(test_client_assertion_key_sizes),
		cmocka_unit_test(test_at_hash_checked),
		cmocka_unit_test(test_pkce_refusal_hint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
