/*
 * fedbridge's outbound network: the one URL policy every fetched URL is held
 * to (url_policy.c), on libcurl and libpsl. It depends on common/ alone;
 * conf/ and the modules that fetch (federation/, idp/) depend on it.
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

#endif
