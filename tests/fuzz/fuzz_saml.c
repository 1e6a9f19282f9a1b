/*
 * Fuzz target for the SAML reader of idp/: the hardened libxml2 parse
 * (DOCTYPE refusal, size and depth bounds, UTF-8 checks), namespace matching
 * and the Issuer, NameID, SessionIndex and attribute extraction. The input is
 * the whole XML text (not NUL-terminated).
 */
#include "fb_idp.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The reader's own bounds (saml_xml.c): nothing read may exceed them. */
#define FUZZ_SAML_TEXT_MAX 4096
#define FUZZ_SAML_VALUES_MAX 256
#define FUZZ_SAML_KEYS_MAX 512 /* 256 Attributes, each under Name and FriendlyName */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, bool may_be_null)
{
	if (s == NULL) {
		if (!may_be_null)
			__builtin_trap();
		return;
	}
	if (strlen(s) > FUZZ_SAML_TEXT_MAX || !fb_utf8_valid(s, strlen(s)))
		__builtin_trap();
}

static void
check_attrs(const json_t *attrs)
{
	const char *key;
	json_t *values;

	if (!json_is_object(attrs) || json_object_size(attrs) > FUZZ_SAML_KEYS_MAX)
		__builtin_trap();
	json_object_foreach((json_t *)attrs, key, values)
	{
		size_t i;
		json_t *v;

		check_text(key, false);
		if (key[0] == '\0' || !json_is_array(values) ||
		    json_array_size(values) > FUZZ_SAML_VALUES_MAX)
			__builtin_trap();
		json_array_foreach(values, i, v)
		{
			if (!json_is_string(v))
				__builtin_trap();
			check_text(json_string_value(v), false);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err = { 0 };
	fb_rc rc;

	rc = fb_saml_identity_read((const char *)data, size, &id, &err);
	if (rc != FB_OK) {
		/* Failure writes nothing to out and says why. */
		if (id.issuer != NULL || id.nameid != NULL || id.attrs != NULL || err.rc != rc ||
		    err.msg[0] == '\0')
			__builtin_trap();
		return 0;
	}
	check_text(id.issuer, true);
	check_text(id.nameid, true);
	check_text(id.nameid_format, true);
	check_text(id.session_index, true);
	check_attrs(id.attrs);
	fb_saml_identity_clear(&id);
	return 0;
}
