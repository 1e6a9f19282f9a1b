/*
 * Private to idp/: the HTTP calls the OpenID Connect relying party makes
 * (discovery, keys, token endpoint, userinfo), through the one HTTPS client
 * (fb_net.h). Bounded in time and size, TLS verified, never following
 * redirects, each URL under the outbound URL rule its caller gives (fb_net.h,
 * fb_oidc_endpoint_rule).
 */
#ifndef FB_OIDC_INT_H
#define FB_OIDC_INT_H

#include "fb_common.h"
#include "fb_conf.h"
#include "fb_net.h"

#define OIDC_HTTP_MAX ((size_t)256 * 1024)

struct oidc_http_reply {
	long status;
	char *body; /* malloc'd, NUL-terminated; the caller frees it */
	size_t len;
	bool json; /* Content-Type application/json (any parameters) */
};

/* GET url, with "Authorization: Bearer <bearer>" when bearer is not NULL. */
/* timeout_ms: the whole call's limit (0: the client's default, 10 s). */
fb_rc oidc_http_get(const char *url, const struct fb_url_rule *rule, const char *bearer,
    long timeout_ms, struct oidc_http_reply *out, struct fb_err *err);

/*
 * POST an application/x-www-form-urlencoded body to url; basic_user and
 * basic_pass (both or neither) go in an HTTP Basic header, each form-encoded
 * first as RFC 6749 2.3.1 says.
 */
fb_rc oidc_http_post_form(const char *url, const struct fb_url_rule *rule, const char *form,
    const char *basic_user, const char *basic_pass, long timeout_ms, struct oidc_http_reply *out,
    struct fb_err *err);

/*
 * What a failed fetch of a provider's own documents (discovery, keys, SAML
 * metadata) means to its callers: FB_ERR_IO, an outage worth retrying (no
 * answer in time, 5xx, 408, 429), or FB_ERR_CONFIG, an answer that stays
 * wrong until the IdP or the configuration changes (any other status, a
 * document refused, a URL the outbound policy refuses).
 */
fb_rc oidc_status_class(long status);
/* The class of rc from a fetch or from checking what it brought (FB_ERR_NOMEM stays). */
fb_rc oidc_refusal_class(fb_rc rc);

/*
 * Said when discovery finds no document or another issuer's: the usual cause is an
 * issuer configured without (or with a different) realm or tenant path.
 */
#define OIDC_ISSUER_HINT                                                                           \
	"the configured issuer must be exactly the IdP's issuer, as its discovery document "       \
	"names it"

/* Appends s percent-encoded (everything but RFC 3986 unreserved characters). */
fb_rc oidc_url_encode(struct fb_buf *b, const char *s);

#endif
