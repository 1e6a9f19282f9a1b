/*
 * The one outbound URL policy: every URL fedbridge fetches (remote key sets,
 * revocation feeds, fedbridge discovery documents, IdP discovery documents,
 * key sets, token and userinfo endpoints, SAML metadata, SRV targets) is
 * checked here before libcurl sees it, and the transfer is set up here so
 * that libcurl enforces the same rule: https only (plain http only toward
 * loopback, and only where the rule allows it), no redirects, and for URLs
 * named from outside, no loopback, link-local or private address, neither
 * written in the URL nor resolved at connect time.
 */
#include "fb_net.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <libpsl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define IPV4_LOOPBACK_NET 0x7f000000U /* 127.0.0.0/8 */
#define IPV4_LOOPBACK_MASK 0xff000000U
#define IPV4_PRIVATE_10_NET 0x0a000000U /* 10.0.0.0/8 */
#define IPV4_PRIVATE_10_MASK 0xff000000U
#define IPV4_PRIVATE_172_NET 0xac100000U /* 172.16.0.0/12 */
#define IPV4_PRIVATE_172_MASK 0xfff00000U
#define IPV4_PRIVATE_192_NET 0xc0a80000U /* 192.168.0.0/16 */
#define IPV4_PRIVATE_192_MASK 0xffff0000U
#define IPV4_LINK_LOCAL_NET 0xa9fe0000U /* 169.254.0.0/16: cloud metadata services */
#define IPV4_LINK_LOCAL_MASK 0xffff0000U
#define IPV4_THIS_NET_MASK 0xff000000U /* 0.0.0.0/8 reaches this host on Linux */
#define IPV6_ULA_BYTE 0xfc /* fc00::/7 */
#define IPV6_ULA_MASK 0xfe
#define IPV6_LINK_LOCAL_BYTE0 0xfe /* fe80::/10 */
#define IPV6_LINK_LOCAL_BYTE1 0x80
#define IPV6_LINK_LOCAL_MASK1 0xc0
#define HOST_MAX 256
#define DOMAIN_LEN_MAX 253 /* RFC 1035: bytes in a name */
#define DOMAIN_LABEL_MAX 63 /* RFC 1035: bytes in a label */
#define DOMAIN_MAX (DOMAIN_LEN_MAX + 1) /* and the NUL */
#define REGISTRABLE_LABELS_MIN 2
#define PORT_MAX 65535
#define LOOPBACK_NAME "localhost"
#define LOOPBACK_SUFFIX ".localhost" /* RFC 6761: names under it are loopback */

static bool
ipv4_public(uint32_t a)
{
	return (a & IPV4_LOOPBACK_MASK) != IPV4_LOOPBACK_NET &&
	    (a & IPV4_PRIVATE_10_MASK) != IPV4_PRIVATE_10_NET &&
	    (a & IPV4_PRIVATE_172_MASK) != IPV4_PRIVATE_172_NET &&
	    (a & IPV4_PRIVATE_192_MASK) != IPV4_PRIVATE_192_NET &&
	    (a & IPV4_LINK_LOCAL_MASK) != IPV4_LINK_LOCAL_NET && (a & IPV4_THIS_NET_MASK) != 0;
}

static bool
ipv6_public(const struct in6_addr *a)
{
	const unsigned char *b = a->s6_addr;
	uint32_t v4;

	if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) ||
	    (b[0] & IPV6_ULA_MASK) == IPV6_ULA_BYTE ||
	    (b[0] == IPV6_LINK_LOCAL_BYTE0 &&
	        (b[1] & IPV6_LINK_LOCAL_MASK1) == IPV6_LINK_LOCAL_BYTE1))
		return false;
	/* ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address inside. */
	if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
		memcpy(&v4, b + 12, sizeof(v4));
		return ipv4_public(ntohl(v4));
	}
	return true;
}

bool
fb_addr_is_public(const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET)
		return ipv4_public(
		    ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return ipv6_public(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false; /* no other family is an internet address */
}

static bool
addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) &
		           IPV4_LOOPBACK_MASK) == IPV4_LOOPBACK_NET;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr);
	return false;
}

/* A host as libcurl gives it ("[::1]" for IPv6) as an address; false for names. */
static bool
host_literal(const char *host, struct sockaddr_storage *out)
{
	char buf[HOST_MAX];
	size_t n = strlen(host);
	struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)out;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		return true;
	}
	if (n < 2 || n >= sizeof(buf) || host[0] != '[' || host[n - 1] != ']')
		return false;
	memcpy(buf, host + 1, n - 2);
	buf[n - 2] = '\0';
	if (inet_pton(AF_INET6, buf, &v6->sin6_addr) != 1)
		return false;
	v6->sin6_family = AF_INET6;
	return true;
}

bool
fb_url_host_is_loopback(const char *host)
{
	struct sockaddr_storage ss;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	return host_literal(host, &ss) && addr_is_loopback((const struct sockaddr *)&ss);
}

/* host is domain or a name under it (DNS names compare without case; one trailing dot). */
static bool
host_under(const char *host, const char *domain)
{
	struct sockaddr_storage ss;
	size_t hl = strlen(host), dl = strlen(domain);

	/* 10.0.0.1 is not "under" 0.1: only names are. */
	if (host_literal(host, &ss))
		return false;
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (dl > 0 && domain[dl - 1] == '.')
		dl--;
	if (dl == 0 || hl < dl || strncasecmp(host + hl - dl, domain, dl) != 0)
		return false;
	return hl == dl || host[hl - dl - 1] == '.';
}

const char *
fb_url_problem(const char *url, const struct fb_url_rule *rule)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL, *frag = NULL;
	struct sockaddr_storage ss;
	const char *problem = NULL;
	bool http, loopback;

	if (u == NULL)
		return "out of memory";
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		problem = "not an absolute URL";
	else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
		problem = "no host";
	else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		problem = "user info is not allowed";
	else if (curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK)
		problem = "a fragment is not allowed";
	if (problem != NULL)
		goto out;
	http = strcmp(scheme, "http") == 0;
	loopback = fb_url_host_is_loopback(host);
	if ((strcmp(scheme, "https") != 0 && !http) || (http && !loopback))
		problem = "the scheme must be https (http only toward loopback)";
	else if (strncasecmp(url, scheme, strlen(scheme)) != 0 ||
	    strncmp(url + strlen(scheme), "://", 3) != 0)
		/* libcurl guesses a scheme for "host/path"; nothing fetched may rely on a guess. */
		problem = "it must start with https://";
	else if (rule->scheme != NULL && strcmp(scheme, rule->scheme) != 0)
		problem = "the scheme differs from the issuer's";
	else if (http && !rule->loopback_http)
		problem = "plain http to loopback only where the configuration itself names a "
		          "loopback URL";
	else if (rule->public_only &&
	    (loopback || (host_literal(host, &ss) && !fb_addr_is_public((struct sockaddr *)&ss))))
		problem = "a loopback, link-local or private address";
	else if ((rule->host != NULL || rule->domain != NULL) &&
	    !(rule->loopback_http && loopback) &&
	    !(rule->host != NULL && strcasecmp(host, rule->host) == 0) &&
	    !(rule->domain != NULL && host_under(host, rule->domain)))
		problem = "the host is neither the remote's host nor under its domain";
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(frag);
	curl_url_cleanup(u);
	return problem;
}

fb_rc
fb_url_check(const char *url, const struct fb_url_rule *rule, struct fb_err *err)
{
	const char *problem = fb_url_problem(url, rule);

	if (problem == NULL)
		return FB_OK;
	if (strcmp(problem, "out of memory") == 0)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	/* The URL may come from a hostile document: bounded and escaped. */
	char shown[FB_EXCERPT_MAX];
	fb_excerpt(url, strlen(url), shown, sizeof(shown));
	return FB_ERR_SET(err, FB_ERR_INVALID, "refusing to fetch %s: %s", shown, problem);
}

bool
fb_hostport_under_domain(const char *hostport, const char *domain)
{
	const char *colon = strrchr(hostport, ':');
	char host[HOST_MAX], *end = NULL;
	long port;

	/* A bracketed IPv6 address is no name under a domain. */
	if (colon == NULL || colon == hostport || hostport[0] == '[' ||
	    (size_t)(colon - hostport) >= sizeof(host) || !isdigit((unsigned char)colon[1]))
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > PORT_MAX)
		return false;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	return fb_domain_name_valid(host) && host_under(host, domain);
}

bool
fb_domain_name_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > DOMAIN_LEN_MAX || s[0] == '.' || s[0] == '-' || s[len - 1] == '.' ||
	    s[len - 1] == '-')
		return false;
	for (; *s; s++) {
		if (*s == '.') {
			if (label == 0 || s[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*s) && *s != '-')
			return false;
		if (*s == '-' && label == 0)
			return false;
		if (++label > DOMAIN_LABEL_MAX)
			return false;
	}
	return true;
}

static bool
loopback_name(const char *name)
{
	size_t n = strlen(name), sl = strlen(LOOPBACK_SUFFIX);

	return strcasecmp(name, LOOPBACK_NAME) == 0 ||
	    (n > sl && strcasecmp(name + n - sl, LOOPBACK_SUFFIX) == 0);
}

fb_rc
fb_domain_registrable(const char *domain, bool loopback_names, struct fb_err *err)
{
	char lower[DOMAIN_MAX], shown[FB_EXCERPT_MAX];
	size_t n = strlen(domain), labels = 1;
	const psl_ctx_t *builtin = NULL;
	psl_ctx_t *latest = NULL;
	bool suffix;

	fb_excerpt(domain, n, shown, sizeof(shown));
	if (n >= sizeof(lower) || !fb_domain_name_valid(domain))
		return FB_ERR_SET(err, FB_ERR_INVALID, "domain %s is not a DNS name", shown);
	if (loopback_names && loopback_name(domain))
		return FB_OK;
	for (size_t i = 0; i <= n; i++) {
		lower[i] = (char)tolower((unsigned char)domain[i]);
		labels += domain[i] == '.';
	}
	if (labels < REGISTRABLE_LABELS_MIN)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "domain %s has one label: a registrable domain such as a.example is needed",
		    shown);
	/* The list as the system keeps it up to date (Debian's publicsuffix), else the copy
	 * built into libpsl; without either nothing can be judged: refuse. */
	if ((latest = psl_latest(NULL)) == NULL && (builtin = psl_builtin()) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOTFOUND,
		    "no public suffix list to judge domain %s by (libpsl has none)", shown);
	suffix = psl_is_public_suffix(latest != NULL ? latest : builtin, lower) != 0;
	psl_free(latest);
	if (suffix)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "domain %s is a public suffix, under which anyone may register names: a "
		    "registrable domain such as a.example is needed",
		    shown);
	return FB_OK;
}

/* Every connection libcurl opens for a guarded transfer passes here first. */
static curl_socket_t
guard_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fb_url_guard *g = arg;
	const struct sockaddr *sa = &a->addr;

	(void)purpose;
	/* Resolved now, checked now: a name that resolves to an inside address is refused
	 * even when it resolved elsewhere a moment ago (DNS rebinding). */
	if ((g->public_only && !fb_addr_is_public(sa)) || (g->http && !addr_is_loopback(sa))) {
		g->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

fb_rc
fb_url_curl_setup(void *curl, const char *url, const struct fb_url_rule *rule,
    struct fb_url_guard *guard, struct fb_err *err)
{
	CURL *c = curl;
	fb_rc rc;

	memset(guard, 0, sizeof(*guard));
	if ((rc = fb_url_check(url, rule, err)) != FB_OK)
		return rc;
	guard->http = strncasecmp(url, "http:", strlen("http:")) == 0;
	guard->public_only = rule->public_only;
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, guard->http ? "http" : "https") !=
	        CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, guard_open) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, guard) != CURLE_OK ||
	    /* A proxy from the environment would connect for us, past guard_open. */
	    curl_easy_setopt(c, CURLOPT_PROXY, "") != CURLE_OK)
		return FB_ERR_SET(err, FB_ERR_INTERNAL, "libcurl refused an option");
	return FB_OK;
}
