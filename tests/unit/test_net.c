/*
 * Unit tests for the one HTTPS client (net/http.c), without the internet: a
 * URL the policy refuses never leaves the host, and a tiny server on loopback
 * that this test starts (one connection, one fixed HTTP/1.1 answer) shows
 * what the client makes of an answer: its status whatever it is, a JSON
 * Content-Type, Cache-Control max-age, an answer over the limit refused, a
 * POSTed form with its secret header as sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fb_net.h"

#define REQUEST_MAX 8192
#define URL_MAX 128
#define ACCEPT_WAIT_MS 15000 /* longer than the client's own timeout */
#define SMALL_LIMIT ((size_t)1024)
#define OVER_LIMIT (4 * SMALL_LIMIT)
#define CONTENT_LENGTH "content-length:"
#define HEADERS_END "\r\n\r\n"

/* The configuration names these loopback URLs: plain http to loopback allowed. */
static const struct fb_url_rule configured = { .loopback_http = true };
/* A URL named from outside. */
static const struct fb_url_rule outside = { .public_only = true };

/* A server on 127.0.0.1 for one connection, answering response whatever it is asked. */
struct canned {
	const char *response; /* borrowed; the whole answer, headers and body */
	size_t response_len;
	char request[REQUEST_MAX]; /* what the client sent, NUL-terminated */
	size_t request_len;
	int listener;
	unsigned short port;
	pthread_t thread;
	char url[URL_MAX];
};

/* Bytes of body the request's headers announce (0 when none). */
static size_t
announced_body(const char *request)
{
	const char *p = strcasestr(request, CONTENT_LENGTH);

	return p != NULL ? strtoul(p + strlen(CONTENT_LENGTH), NULL, 10) : 0;
}

/* Reads the request: its headers and the body they announce, as far as it fits. */
static void
read_request(struct canned *s, int conn)
{
	const char *end = NULL;
	ssize_t got;

	while (s->request_len < sizeof(s->request) - 1) {
		if (end != NULL &&
		    s->request_len >= (size_t)(end - s->request) + strlen(HEADERS_END) +
		            announced_body(s->request))
			return;
		got = recv(
		    conn, s->request + s->request_len, sizeof(s->request) - 1 - s->request_len, 0);
		if (got <= 0)
			return;
		s->request_len += (size_t)got;
		s->request[s->request_len] = '\0';
		end = strstr(s->request, HEADERS_END);
	}
}

static void *
serve_one(void *arg)
{
	struct canned *s = arg;
	struct pollfd p = { .fd = s->listener, .events = POLLIN };
	int conn;

	if (poll(&p, 1, ACCEPT_WAIT_MS) != 1 || (conn = accept(s->listener, NULL, NULL)) < 0)
		return NULL;
	read_request(s, conn);
	/* MSG_NOSIGNAL: a client that stops reading (over the limit) must not kill the test. */
	(void)send(conn, s->response, s->response_len, MSG_NOSIGNAL);
	(void)shutdown(conn, SHUT_WR);
	(void)close(conn);
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
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void
canned_start(struct canned *s, const char *response, size_t len, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->response = response;
	s->response_len = len;
	s->listener = listen_loopback(&s->port);
	(void)snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u%s", s->port, path);
	assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void
canned_stop(struct canned *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	(void)close(s->listener);
}

static fb_rc
get(const char *url, const struct fb_url_rule *rule, size_t max, struct fb_http_reply *out,
    struct fb_err *err)
{
	const struct fb_http_request req = {
		.method = FB_HTTP_GET, .url = url, .rule = rule, .max_bytes = max
	};

	return fb_http_fetch(&req, out, err);
}

/* Refused by the policy before any connection: no server runs for this. */
static void
test_refused_url(void **state)
{
	struct fb_http_reply reply;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(
	    get("http://sso.a.example/jwks", &outside, SMALL_LIMIT, &reply, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "refusing to fetch http://sso.a.example/jwks"));
	assert_null(reply.body);
	/* Loopback http only where the rule allows it. */
	assert_int_equal(
	    get("http://127.0.0.1:1/jwks", &outside, SMALL_LIMIT, &reply, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "only where the configuration itself"));
}

static void
test_status_reported(void **state)
{
	static const char answer[] = "HTTP/1.1 404 Not Found\r\n"
	                             "Content-Type: text/plain\r\n"
	                             "Content-Length: 15\r\n"
	                             "Connection: close\r\n\r\n"
	                             "no such key set";
	struct canned s;
	struct fb_http_reply reply;
	struct fb_err err = { 0 };

	(void)state;
	canned_start(&s, answer, sizeof(answer) - 1, "/missing");
	assert_int_equal(get(s.url, &configured, SMALL_LIMIT, &reply, &err), FB_OK);
	canned_stop(&s);
	assert_int_equal(reply.status, 404);
	assert_string_equal(reply.body, "no such key set");
	assert_int_equal(reply.len, strlen("no such key set"));
	assert_false(reply.json);
	assert_int_equal(reply.max_age, -1);
	assert_non_null(strstr(s.request, "GET /missing HTTP/1.1\r\n"));
	assert_null(strstr(s.request, "Accept: application/json"));
	fb_http_reply_free(&reply);
	assert_null(reply.body);
}

static void
test_json_and_max_age(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\n"
	                             "content-type: application/json; charset=utf-8\r\n"
	                             "Cache-Control: public, max-age=120\r\n"
	                             "Content-Length: 11\r\n"
	                             "Connection: close\r\n\r\n"
	                             "{\"keys\":[]}";
	static const char empty[] = "HTTP/1.1 204 No Content\r\n"
	                            "Content-Type: application/jsonx\r\n"
	                            "Connection: close\r\n\r\n";
	struct canned s;
	struct fb_http_reply reply;
	struct fb_err err = { 0 };

	(void)state;
	canned_start(&s, answer, sizeof(answer) - 1, "/jwks");
	assert_int_equal(get(s.url, &configured, SMALL_LIMIT, &reply, &err), FB_OK);
	canned_stop(&s);
	assert_int_equal(reply.status, 200);
	assert_true(reply.json);
	assert_int_equal(reply.max_age, 120);
	assert_string_equal(reply.body, "{\"keys\":[]}");
	fb_http_reply_free(&reply);

	/* Another type that merely starts alike is not JSON; an empty body is still a string. */
	canned_start(&s, empty, sizeof(empty) - 1, "/empty");
	assert_int_equal(get(s.url, &configured, SMALL_LIMIT, &reply, &err), FB_OK);
	canned_stop(&s);
	assert_int_equal(reply.status, 204);
	assert_false(reply.json);
	assert_non_null(reply.body);
	assert_int_equal(reply.len, 0);
	fb_http_reply_free(&reply);
}

/* An answer over max_bytes, announced (Content-Length) or not (read until close). */
static void
over_limit(bool announced)
{
	char *answer = malloc(OVER_LIMIT + REQUEST_MAX);
	int head;
	struct canned s;
	struct fb_http_reply reply;
	struct fb_err err = { 0 };
	char want[URL_MAX + 64];

	assert_non_null(answer);
	if (announced)
		head = snprintf(answer, REQUEST_MAX,
		    "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		    OVER_LIMIT);
	else
		head =
		    snprintf(answer, REQUEST_MAX, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
	assert_true(head > 0);
	memset(answer + head, 'k', OVER_LIMIT);
	canned_start(&s, answer, (size_t)head + OVER_LIMIT, "/big");
	assert_int_equal(get(s.url, &configured, SMALL_LIMIT, &reply, &err), FB_ERR_LIMIT);
	canned_stop(&s);
	(void)snprintf(want, sizeof(want), "%s: answer larger than %zu bytes", s.url, SMALL_LIMIT);
	assert_non_null(strstr(err.msg, want));
	assert_null(reply.body);
	free(answer);
}

static void
test_over_limit_announced(void **state)
{
	(void)state;
	over_limit(true);
}

static void
test_over_limit_streamed(void **state)
{
	(void)state;
	over_limit(false);
}

static void
test_post_form(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\n"
	                             "Content-Type: application/json\r\n"
	                             "Content-Length: 2\r\n"
	                             "Connection: close\r\n\r\n"
	                             "{}";
	struct canned s;
	struct fb_http_reply reply;
	struct fb_err err = { 0 };

	(void)state;
	canned_start(&s, answer, sizeof(answer) - 1, "/token");
	const struct fb_http_request req = {
		.method = FB_HTTP_POST_FORM,
		.url = s.url,
		.rule = &configured,
		.form = "grant_type=authorization_code&code=c0de",
		.secret_header = "Authorization: Bearer t0ken",
		.accept_json = true,
		.max_bytes = SMALL_LIMIT,
	};
	assert_int_equal(fb_http_fetch(&req, &reply, &err), FB_OK);
	canned_stop(&s);
	assert_int_equal(reply.status, 200);
	assert_true(reply.json);
	assert_non_null(strstr(s.request, "POST /token HTTP/1.1\r\n"));
	assert_non_null(strstr(s.request, "\r\nAuthorization: Bearer t0ken\r\n"));
	assert_non_null(strstr(s.request, "\r\nAccept: application/json\r\n"));
	assert_non_null(
	    strcasestr(s.request, "\r\nContent-Type: application/x-www-form-urlencoded"));
	assert_non_null(strstr(s.request, "\r\n\r\ngrant_type=authorization_code&code=c0de"));
	fb_http_reply_free(&reply);
}

/* Nothing listens: the failure names the URL and says why. */
static void
test_connect_refused(void **state)
{
	struct fb_http_reply reply;
	struct fb_err err = { 0 };
	unsigned short port;
	char url[URL_MAX];

	(void)state;
	(void)close(listen_loopback(&port));
	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%u/jwks", port);
	assert_int_equal(get(url, &configured, SMALL_LIMIT, &reply, &err), FB_ERR_IO);
	assert_true(strncmp(err.msg, url, strlen(url)) == 0);
	assert_null(reply.body);
}

/* A pinned CA means https alone: a loopback http URL the rule allows is still refused. */
static void
test_pinned_https_only(void **state)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	struct fb_http_reply reply;
	struct fb_err err = { 0 };
	const struct fb_http_request req = {
		.method = FB_HTTP_GET,
		.url = "http://127.0.0.1:1/.well-known/fedbridge",
		.rule = &configured,
		.ca_pem = pem,
		.ca_len = sizeof(pem) - 1,
		.max_bytes = SMALL_LIMIT,
	};

	(void)state;
	assert_int_equal(fb_http_fetch(&req, &reply, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "http://127.0.0.1:1/.well-known/fedbridge: "));
	assert_null(reply.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_url),
		cmocka_unit_test(test_status_reported),
		cmocka_unit_test(test_json_and_max_age),
		cmocka_unit_test(test_over_limit_announced),
		cmocka_unit_test(test_over_limit_streamed),
		cmocka_unit_test(test_post_form),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_pinned_https_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
