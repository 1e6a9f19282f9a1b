/* The normalized identity every IdP adapter produces. */
#include "fb_idp.h"

#include <stdlib.h>
#include <string.h>

static fb_rc
field_check(const char *name, const char *v, struct fb_err *err)
{
	size_t len;

	if (v == NULL || *v == '\0')
		return FB_ERR_SET(err, FB_ERR_INVALID, "identity: %s is missing", name);
	len = strnlen(v, FB_IDENTITY_FIELD_MAX + 1);
	if (len > FB_IDENTITY_FIELD_MAX)
		return FB_ERR_SET(err, FB_ERR_INVALID, "identity: %s is longer than %d bytes", name,
		    FB_IDENTITY_FIELD_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return FB_ERR_SET(
			    err, FB_ERR_INVALID, "identity: %s holds a control character", name);
	return FB_OK;
}

fb_rc
fb_identity_new(const char *provider, const char *issuer, const char *subject,
    const char *idp_session, struct fb_identity **out, struct fb_err *err)
{
	struct fb_identity *id;
	fb_rc rc;

	if ((rc = field_check("provider", provider, err)) != FB_OK ||
	    (rc = field_check("issuer", issuer, err)) != FB_OK ||
	    (rc = field_check("subject", subject, err)) != FB_OK ||
	    (idp_session != NULL && (rc = field_check("IdP session", idp_session, err)) != FB_OK))
		return rc;
	if ((id = calloc(1, sizeof(*id))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "identity: out of memory");
	id->provider = strdup(provider);
	id->issuer = strdup(issuer);
	id->subject = strdup(subject);
	id->idp_session = idp_session ? strdup(idp_session) : NULL;
	if (id->provider == NULL || id->issuer == NULL || id->subject == NULL ||
	    (idp_session != NULL && id->idp_session == NULL)) {
		fb_identity_free(id);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "identity: out of memory");
	}
	*out = id;
	return FB_OK;
}

void
fb_identity_free(struct fb_identity *id)
{
	if (id == NULL)
		return;
	free(id->provider);
	free(id->issuer);
	free(id->subject);
	free(id->idp_session);
	free(id);
}

bool
fb_identity_same_user(const struct fb_identity *a, const struct fb_identity *b)
{
	return strcmp(a->issuer, b->issuer) == 0 && strcmp(a->subject, b->subject) == 0;
}
