/*
 * Private to bridge/: what the HTTP endpoints outside server.c (the login
 * and token endpoints, login.c) share with it. The runtime is one
 * configuration and everything derived from it, replaced whole on reload.
 */
#ifndef FB_SERVER_INT_H
#define FB_SERVER_INT_H

#include "fb_bridge.h"

#include <microhttpd.h>
#include <stdatomic.h>

/* What one configuration load produced (keys, rules, login state); see server.c. */
struct runtime {
	atomic_uint refs;
	struct fb_conf *conf;
	struct fb_federation *fed;
	struct fb_rules *rules;
	struct fb_login_site *login;
	unsigned long generation;
};

/* A request body, gathered by server.c for the endpoints that read one. */
struct fb_http_body {
	const char *data; /* NUL-terminated; "" when there was none */
	size_t len;
};

/* ---- form.c ---- */

#define FB_FORM_MAX_PARAMS 32

/* An application/x-www-form-urlencoded body, decoded; owns its strings. */
struct fb_form {
	size_t n;
	const char *name[FB_FORM_MAX_PARAMS];
	const char *value[FB_FORM_MAX_PARAMS];
	char *storage;
	size_t storage_len;
};

/*
 * Decodes body (len bytes): '+' is a space, %XX a byte. Refused with a
 * reason in err: a bad escape, a decoded NUL, a byte sequence that is not
 * UTF-8, an empty name, a parameter given twice (RFC 6749 3.1, 3.2), more
 * than FB_FORM_MAX_PARAMS. *f is written only on success.
 */
fb_rc fb_form_parse(const char *body, size_t len, struct fb_form *f, struct fb_err *err);
/* The value of name, or NULL. */
const char *fb_form_get(const struct fb_form *f, const char *name);
void fb_form_clear(struct fb_form *f);

/* ---- login.c ---- */

/*
 * The login side of one configuration: an OpenID Connect relying party per
 * oidc provider, the keys that seal login state, codes and refresh tokens
 * (derived from keys.fid_secret), and the /token clients' secrets.
 */
struct fb_login_site;
fb_rc fb_login_site_new(const struct fb_conf *conf, struct fb_login_site **out, struct fb_err *err);
void fb_login_site_free(struct fb_login_site *s);
/* Fetches again the IdP metadata that is due (from URLs); what happened is logged. */
void fb_login_site_refresh(struct fb_login_site *s, int64_t now);

/* GET /login/<provider>?return_to=... */
enum MHD_Result fb_login_start(
    struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store, const char *provider);
/* GET /oidc/callback */
enum MHD_Result fb_login_oidc_callback(
    struct MHD_Connection *conn, struct runtime *rt, struct fb_store *store);
/* POST /token */
enum MHD_Result fb_login_token(struct MHD_Connection *conn, struct runtime *rt,
    struct fb_store *store, const struct fb_http_body *body);
/* POST /logout: the backend ends a session (refresh_token) and learns where to send the
 * browser to end it at the IdP too. */
enum MHD_Result fb_login_logout(struct MHD_Connection *conn, struct runtime *rt,
    struct fb_store *store, const struct fb_http_body *body);
/* GET /saml/metadata[/<provider>] (provider NULL: the only SAML provider) */
enum MHD_Result fb_login_saml_metadata(
    struct MHD_Connection *conn, struct runtime *rt, const char *provider);
/* POST /saml/acs/<provider> */
enum MHD_Result fb_login_saml_acs(struct MHD_Connection *conn, struct runtime *rt,
    struct fb_store *store, const char *provider, const struct fb_http_body *body);
/* GET /saml/slo/<provider>?SAMLRequest=... (query: the raw query string, or NULL) */
enum MHD_Result fb_login_saml_slo(struct MHD_Connection *conn, struct runtime *rt,
    struct fb_store *store, const char *provider, const char *query);
/* POST /saml/slo/<provider>: a LogoutRequest over SOAP */
enum MHD_Result fb_login_saml_slo_soap(struct MHD_Connection *conn, struct runtime *rt,
    struct fb_store *store, const char *provider, const struct fb_http_body *body);
/* POST /oidc/backchannel-logout */
enum MHD_Result fb_login_backchannel_logout(struct MHD_Connection *conn, struct runtime *rt,
    struct fb_store *store, const struct fb_http_body *body);

#endif
