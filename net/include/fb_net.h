/*
 * fedbridge's outbound network: the one URL policy every fetched URL is held
 * to (url_policy.c) and the one bounded HTTPS client that fetches them
 * (http.c), on libcurl and libpsl. It depends on common/ alone; conf/ and
 * the modules that fetch (federation/, idp/) depend on it.
 */
#ifndef FB_NET_H
#define FB_NET_H

#include "fb_common.h"

/*
 * The one outbound URL policy (net/url_policy.c), applied to every URL fedbridge
 * fetches. Always: an absolute URL with a host, no user info or fragment,
 * https (plain http only toward a loopback host, and only where the rule says).
 */
struct fb_url_rule {
	bool loopback_http; /* plain http toward loopback: only when the configuration itself
	                       names such a URL (or runs on one: fb_conf_on_loopback) */
	bool public_only; /* refuse loopback, link-local and private addresses, literal in the
	                     URL and, through fb_url_curl_setup, resolved at connect time */
	const char *scheme; /* when set, the URL's scheme must be this one (the issuer's) */
	const char *host; /* when host or domain is set, the URL's host must be host, */
	const char *domain; /* or domain, or a name under domain */
};

/* Why url breaks rule (a static string), or NULL when it may be fetched. */
const char *fb_url_problem(const char *url, const struct fb_url_rule *rule);
/* FB_OK, or FB_ERR_INVALID naming the URL (escaped, bounded) and the reason. */
fb_rc fb_url_check(const char *url, const struct fb_url_rule *rule, struct fb_err *err);
/* localhost, 127.0.0.0/8 or [::1], as a URL's host; never a name that merely starts "127.". */
bool fb_url_host_is_loopback(const char *host);
struct sockaddr;
/* False for loopback, link-local (169.254/16, fe80::/10), private (10/8, 172.16/12,
 * 192.168/16, fc00::/7), unspecified addresses and non-internet families. */
bool fb_addr_is_public(const struct sockaddr *sa);

/*
 * A domain that can stand for one party: a DNS name of at least two labels that
 * is not a public suffix (the public suffix list, through libpsl): an export
 * claiming com or co.uk would let any host under it pass the domain checks.
 * With loopback_names, localhost and names under .localhost pass too (an
 * installation that itself runs on loopback: tests, the demo). FB_ERR_INVALID
 * names the domain (escaped, bounded) and the reason.
 */
fb_rc fb_domain_registrable(const char *domain, bool loopback_names, struct fb_err *err);
/* hostport ("host:port", port 1..65535) names domain or a name under it (DNS names compare
 * without case); never an address. */
bool fb_hostport_under_domain(const char *hostport, const char *domain);

/* What a guarded transfer was allowed, and whether its connection was refused. */
struct fb_url_guard {
	bool http; /* plain http: the resolved address must be loopback */
	bool public_only;
	bool refused; /* set when a connection went to a forbidden address */
};
/*
 * Checks url against rule and sets it on the libcurl handle curl (a CURL *) with
 * what enforces the rule: protocols, no redirects, no proxy, and a check of every
 * resolved address before connecting. guard must outlive the transfer.
 */
fb_rc fb_url_curl_setup(void *curl, const char *url, const struct fb_url_rule *rule,
    struct fb_url_guard *guard, struct fb_err *err);

/* A DNS name, by its syntax alone: dot-separated labels of letters, digits and inner '-',
 * each at most 63 bytes, at most 253 bytes in all. */
bool fb_domain_name_valid(const char *s);

/* Every transfer's bounds: the connection within 5 s, the whole answer within 10 s. */
#define FB_HTTP_CONNECT_TIMEOUT_MS 5000L
#define FB_HTTP_TIMEOUT_MS 10000L

enum fb_http_method {
	FB_HTTP_GET,
	FB_HTTP_POST_FORM, /* form: an application/x-www-form-urlencoded body */
};

/* One transfer; the request borrows every pointer, none is kept after fb_http_fetch. */
struct fb_http_request {
	enum fb_http_method method;
	const char *url;
	const struct fb_url_rule *rule; /* the outbound URL policy the URL is held to */
	const char *form; /* FB_HTTP_POST_FORM: the body */
	/* When set: https only, trusting the CA certificate(s) in this PEM alone (not the
	 * system's store), the server's host name verified. */
	const char *ca_pem;
	size_t ca_len;
	/* One more header line such as "Authorization: Bearer ...", a secret: never logged,
	 * the client's copies cleansed after the transfer (the caller cleanses its own). */
	const char *secret_header;
	bool accept_json; /* sends "Accept: application/json" */
	size_t max_bytes; /* a longer answer fails with FB_ERR_LIMIT */
	long timeout_ms; /* the whole transfer, connect included; 0: FB_HTTP_TIMEOUT_MS */
};

struct fb_http_reply {
	long status;
	char *body; /* malloc'd, NUL-terminated; the caller frees it (fb_http_reply_free) */
	size_t len;
	bool json; /* Content-Type application/json (any parameters) */
	int64_t max_age; /* Cache-Control max-age in seconds; -1 when not given */
};

/*
 * Performs req: TLS verified, no redirects (a redirect is an answer), no
 * proxy, every connection under req->rule (fb_url_curl_setup), bounded in
 * time and size. Any HTTP status is an answer: *out holds it, and the caller
 * judges it. Failures name the URL (escaped, bounded): FB_ERR_INVALID when
 * the URL or an address it resolves to is refused, FB_ERR_LIMIT over
 * max_bytes, FB_ERR_IO when the transfer fails (with libcurl's detail);
 * *out is then empty.
 */
fb_rc fb_http_fetch(
    const struct fb_http_request *req, struct fb_http_reply *out, struct fb_err *err);
/* Frees the body and empties reply; a no-op for an empty reply. */
void fb_http_reply_free(struct fb_http_reply *reply);

#endif
