/*
 * Private to idp/: the SAML service provider shared by saml_sp.c (building
 * it, requests, metadata) and saml_acs.c (reading responses).
 */
#ifndef FB_SAML_SP_INT_H
#define FB_SAML_SP_INT_H

#include "fb_idp.h"

#include <lasso/lasso.h>
#include <xmlsec/keys.h>

#define FB_SAML_IDP_KEYS_MAX 8

struct fb_saml_sp {
	const struct fb_conf_provider *p;
	LassoServer *server; /* read-only after creation */
	char *entity_id, *acs_url, *slo_url;
	char *idp_entity_id;
	char *metadata; /* this SP's metadata document */
	/* The IdP's signing certificates from its metadata: the only keys a signature may use. */
	xmlSecKeyPtr idp_keys[FB_SAML_IDP_KEYS_MAX];
	size_t n_idp_keys;
	xmlSecKeyPtr sp_key; /* decrypts EncryptedAssertions */
};

/* xs:dateTime in UTC ("2026-11-22T10:00:00Z", fractions allowed) to Unix seconds. */
bool fb_saml_time(const char *s, int64_t *out);

#endif
