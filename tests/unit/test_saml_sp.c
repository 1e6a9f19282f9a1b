/*
 * Unit tests for the SAML service provider's IdP metadata (idp/saml_sp.c):
 * validUntil and cacheDuration at load, and the refresh that swaps in new
 * metadata only when it is due and passes every check, keeping the last
 * good one otherwise; a metadata URL that answers wrong (misconfigured) told
 * apart from one that does not answer (an outage).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../fuzz/saml_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ANSWERS_MAX 4
#define ACCEPT_WAIT_MS 10000 /* longer than the client's own timeout */
#define REQUEST_MAX 4096
#define URL_MAX 64
#define CACHE_S 7200 /* the metadata's cacheDuration, PT2H */
#define LATER_S 3600 /* past any backoff after one failure */
#define METADATA_MAX ((size_t)1 << 20)
#define HTTP_OK 200
#define HTTP_NOT_FOUND 404
#define HTTP_UNAVAILABLE 503

static struct saml_fixture fx;

static void
write_metadata(const char *entity, const char *root_attrs)
{
	char *xml = NULL;
	int n = asprintf(&xml,
	    "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" "
	    "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"%s\" %s>"
	    "<md:IDPSSODescriptor "
	    "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">"
	    "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s"
	    "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
	    "<md:SingleSignOnService "
	    "Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" "
	    "Location=\"%s/sso\"/></md:IDPSSODescriptor></md:EntityDescriptor>",
	    entity, root_attrs, fx.cert_b64, entity);

	assert_true(n > 0);
	fixture_write(fx.metadata, xml, (size_t)n, 0644);
	free(xml);
}

static const char *
load(struct fb_saml_sp **sp)
{
	static struct fb_err err;
	bool unreachable = false;

	memset(&err, 0, sizeof(err));
	*sp = NULL;
	return fb_saml_sp_new(&fx.p, "https://sp.example", sp, &unreachable, &err) == FB_OK
	    ? NULL
	    : err.msg;
}

static void
test_load(void **state)
{
	struct fb_saml_sp *sp;
	const char *why;

	(void)state;
	write_metadata(
	    "https://idp.example", "validUntil=\"2099-01-01T00:00:00Z\" cacheDuration=\"PT2H\"");
	assert_null(load(&sp));
	assert_string_equal(fb_saml_sp_idp_entity_id(sp), "https://idp.example");
	fb_saml_sp_free(sp);

	write_metadata("https://idp.example", "validUntil=\"2001-01-01T00:00:00Z\"");
	why = load(&sp);
	assert_non_null(why);
	assert_non_null(strstr(why, "has expired (validUntil)"));

	write_metadata("https://idp.example", "validUntil=\"tomorrow\"");
	assert_non_null(strstr(load(&sp), "a bad validUntil"));
	write_metadata(
	    "https://idp.example", "cacheDuration=\"P1M\""); /* months: no fixed length */
	assert_non_null(strstr(load(&sp), "a bad cacheDuration"));
	write_metadata("https://idp.example", "cacheDuration=\"PT\"");
	assert_non_null(strstr(load(&sp), "a bad cacheDuration"));
}

static void
test_refresh(void **state)
{
	struct fb_saml_sp *sp;
	struct fb_err err = { 0 };
	int64_t now = (int64_t)time(NULL);
	bool changed = true;

	(void)state;
	write_metadata("https://idp.example", "cacheDuration=\"PT2H\"");
	assert_null(load(&sp));
	/* Not due before two hours. */
	assert_int_equal(fb_saml_sp_refresh(sp, now + 3600, &changed, &err), FB_OK);
	assert_false(changed);
	/* Due, but the entity changed: refused, the last good one stays, retried in a minute. */
	write_metadata("https://other.example", "cacheDuration=\"PT2H\"");
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7300, &changed, &err), FB_ERR_CONFIG);
	assert_false(changed);
	assert_non_null(strstr(err.msg, "entityID changed"));
	assert_non_null(strstr(err.msg, "the last good one stays"));
	assert_string_equal(fb_saml_sp_idp_entity_id(sp), "https://idp.example");
	memset(&err, 0, sizeof(err));
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7330, &changed, &err), FB_OK);
	assert_false(changed); /* within the minute: not tried again */
	/* Expired metadata is not taken either. */
	write_metadata("https://idp.example", "validUntil=\"2001-01-01T00:00:00Z\"");
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7400, &changed, &err), FB_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "validUntil"));
	/* Good metadata is swapped in. */
	write_metadata("https://idp.example", "cacheDuration=\"PT10M\"");
	memset(&err, 0, sizeof(err));
	/* (a second failure in a row waits two minutes, less up to a fifth) */
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7600, &changed, &err), FB_OK);
	assert_true(changed);
	assert_int_equal(fb_saml_sp_refresh(sp, now + 7700, &changed, &err), FB_OK);
	assert_false(changed); /* next due ten minutes later */
	assert_int_equal(fb_saml_sp_refresh(sp, now + 8200, &changed, &err), FB_OK);
	assert_true(changed);
	fb_saml_sp_free(sp);
}

/* A metadata URL that cannot be reached at start: the SP exists, answers "unavailable". */
static void
test_unreachable(void **state)
{
	struct fb_saml_sp *sp = NULL;
	struct fb_saml_outcome out;
	struct fb_err err = { 0 };
	bool unreachable = false, changed = true;
	char *url = NULL, *id = NULL;
	const char *saved = fx.p.idp_metadata;

	(void)state;
	fx.p.idp_metadata = "http://127.0.0.1:1/metadata"; /* nothing listens on port 1 */
	assert_int_equal(
	    fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, &err), FB_OK);
	assert_non_null(sp);
	assert_true(unreachable);
	assert_non_null(strstr(err.msg, "IdP metadata"));
	assert_false(fb_saml_sp_ready(sp));
	assert_null(fb_saml_sp_idp_entity_id(sp));
	assert_int_equal(fb_saml_sp_authn_request(sp, "rs", &url, &id, &err), FB_ERR_IO);
	assert_null(url);
	assert_int_equal(
	    fb_saml_sp_acs(sp, "PHg+PC94Pg==", NULL, (int64_t)time(NULL), 60, &out, &err),
	    FB_ERR_INVALID);
	assert_int_equal(out.failure, FB_SAML_UNAVAILABLE);
	fb_saml_outcome_clear(&out);
	/* Still down at the retry: no change, an error to log. */
	assert_int_equal(
	    fb_saml_sp_refresh(sp, (int64_t)time(NULL) + 3600, &changed, &err), FB_ERR_IO);
	assert_false(changed);
	fb_saml_sp_free(sp);
	fx.p.idp_metadata = saved;
}

/* A metadata URL on 127.0.0.1 answering one canned HTTP answer per connection, in order. */
struct metadata_server {
	char *answers[ANSWERS_MAX];
	size_t n;
	int listener;
	unsigned short port;
	pthread_t thread;
	char url[URL_MAX];
};

static void *
metadata_serve(void *arg)
{
	struct metadata_server *m = arg;

	for (size_t i = 0; i < m->n; i++) {
		struct pollfd p = { .fd = m->listener, .events = POLLIN };
		char req[REQUEST_MAX];
		size_t len = 0;
		ssize_t got;
		int conn;

		if (poll(&p, 1, ACCEPT_WAIT_MS) != 1 ||
		    (conn = accept(m->listener, NULL, NULL)) < 0)
			return NULL;
		req[0] = '\0';
		while (strstr(req, "\r\n\r\n") == NULL && len < sizeof(req) - 1 &&
		    (got = recv(conn, req + len, sizeof(req) - 1 - len, 0)) > 0) {
			len += (size_t)got;
			req[len] = '\0';
		}
		(void)send(conn, m->answers[i], strlen(m->answers[i]), MSG_NOSIGNAL);
		(void)close(conn);
	}
	return NULL;
}

/* Adds an answer: status, and the body (NULL: the metadata file the fixture wrote last). */
static void
metadata_answer(struct metadata_server *m, int status, const char *body)
{
	char *file = NULL;
	size_t len = 0;
	struct fb_err err = { 0 };

	assert_true(m->n < ANSWERS_MAX);
	if (body == NULL) {
		assert_int_equal(fb_file_read(fx.metadata, METADATA_MAX, &file, &len, &err), FB_OK);
		body = file;
	}
	assert_true(asprintf(&m->answers[m->n++],
	                "HTTP/1.1 %d X\r\nContent-Type: application/samlmetadata+xml\r\n"
	                "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	                status, strlen(body), body) > 0);
	free(file);
}

static void
metadata_start(struct metadata_server *m)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	assert_true((m->listener = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(m->listener, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(m->listener, 1), 0);
	assert_int_equal(getsockname(m->listener, (struct sockaddr *)&a, &len), 0);
	m->port = ntohs(a.sin_port);
	(void)snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%u/metadata", m->port);
	assert_int_equal(pthread_create(&m->thread, NULL, metadata_serve, m), 0);
}

static void
metadata_stop(struct metadata_server *m)
{
	assert_int_equal(pthread_join(m->thread, NULL), 0);
	(void)close(m->listener);
	for (size_t i = 0; i < m->n; i++)
		free(m->answers[i]);
}

/*
 * A metadata URL answering 404 at start is misconfigured: the SP is built
 * without metadata (the bridge starts) and says so (FB_ERR_CONFIG), and its
 * requests fail as misconfigured. Once it has metadata, a refresh answered 503
 * is an outage (FB_ERR_IO), one answered 404 or with what is not metadata is
 * misconfigured, and the last good metadata stays.
 */
static void
test_metadata_url_classes(void **state)
{
	struct metadata_server m = { 0 };
	struct fb_saml_sp *sp = NULL;
	struct fb_err err = { 0 };
	bool unreachable = true, changed = true;
	int64_t now = (int64_t)time(NULL);
	const char *saved = fx.p.idp_metadata;

	(void)state;
	write_metadata("https://idp.example", "cacheDuration=\"PT2H\"");
	metadata_answer(&m, HTTP_NOT_FOUND, "not here");
	metadata_answer(&m, HTTP_OK, NULL);
	metadata_answer(&m, HTTP_UNAVAILABLE, "busy");
	metadata_answer(&m, HTTP_NOT_FOUND, "gone");
	metadata_start(&m);
	fx.p.idp_metadata = m.url;

	assert_int_equal(
	    fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, &err), FB_OK);
	assert_non_null(sp);
	assert_true(unreachable);
	assert_false(fb_saml_sp_ready(sp));
	{
		char why[FB_ERR_MSG_MAX], *url = NULL, *rid = NULL;
		assert_int_equal(fb_saml_sp_status(sp, why, sizeof(why)), FB_ERR_CONFIG);
		assert_non_null(strstr(why, "HTTP status 404"));
		assert_non_null(strstr(why, "misconfigured"));
		memset(&err, 0, sizeof(err));
		assert_int_equal(
		    fb_saml_sp_authn_request(sp, "relay", &url, &rid, &err), FB_ERR_CONFIG);
		assert_null(url);
	}
	fb_saml_sp_free(sp);
	sp = NULL;

	memset(&err, 0, sizeof(err));
	assert_int_equal(
	    fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, &err), FB_OK);
	assert_false(unreachable);
	assert_int_equal(fb_saml_sp_status(sp, NULL, 0), FB_OK);
	assert_int_equal(fb_saml_sp_refresh(sp, now + CACHE_S, &changed, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "HTTP status 503"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(
	    fb_saml_sp_refresh(sp, now + CACHE_S + LATER_S, &changed, &err), FB_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "HTTP status 404"));
	assert_false(changed);
	assert_true(fb_saml_sp_ready(sp)); /* the last good metadata stays */
	fb_saml_sp_free(sp);
	metadata_stop(&m);

	/* What answers 200 but is not metadata. */
	memset(&m, 0, sizeof(m));
	metadata_answer(&m, HTTP_OK, "<html>a login page</html>");
	metadata_start(&m);
	fx.p.idp_metadata = m.url;
	memset(&err, 0, sizeof(err));
	assert_int_equal(
	    fb_saml_sp_new(&fx.p, "https://sp.example", &sp, &unreachable, &err), FB_OK);
	assert_true(unreachable);
	assert_int_equal(fb_saml_sp_status(sp, NULL, 0), FB_ERR_CONFIG);
	fb_saml_sp_free(sp);
	metadata_stop(&m);
	fx.p.idp_metadata = saved;
}

/* A single-logout message without any signature is refused as "not signed", on both bindings. */
static void
test_logout_unsigned(void **state)
{
	static const char soap[] =
	    "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>"
	    "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" "
	    "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_l1\" Version=\"2.0\" "
	    "IssueInstant=\"2026-01-01T00:00:00Z\"><saml:Issuer>https://idp.example</saml:Issuer>"
	    "<saml:NameID>alice</saml:NameID></samlp:LogoutRequest></s:Body></s:Envelope>";
	struct fb_saml_sp *sp;
	struct fb_saml_logout out;
	struct fb_err err;
	char *response = NULL;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	write_metadata("https://idp.example", "");
	assert_null(load(&sp));

	memset(&err, 0, sizeof(err));
	assert_int_equal(fb_saml_sp_logout_request(sp,
	                     "SAMLRequest=fZBBa8MwDIX%2FivE9sZ&RelayState=x", now, 60, &out, &err),
	    FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "the LogoutRequest is not signed"));
	/* A signature that is there but wrong is Lasso's to judge, not "not signed". */
	memset(&err, 0, sizeof(err));
	assert_int_not_equal(
	    fb_saml_sp_logout_request(sp,
	        "SAMLRequest=fZBBa8MwDIX%2FivE9sZ&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%"
	        "2F04%2Fxmldsig-more%23rsa-sha256&Signature=AAAA",
	        now, 60, &out, &err),
	    FB_OK);
	assert_null(strstr(err.msg, "not signed"));

	memset(&err, 0, sizeof(err));
	assert_int_equal(
	    fb_saml_sp_logout_soap(sp, soap, sizeof(soap) - 1, now, 60, &out, &response, &err),
	    FB_ERR_INVALID);
	assert_null(response);
	assert_non_null(strstr(err.msg, "the LogoutRequest is not signed"));
	assert_null(strstr(err.msg, "by a key"));
	fb_saml_sp_free(sp);
}

static int
setup(void **state)
{
	(void)state;
	saml_fixture_init(&fx);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	saml_fixture_remove(&fx);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_refresh),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_metadata_url_classes),
		cmocka_unit_test(test_logout_unsigned),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
