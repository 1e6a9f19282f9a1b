/*
 * Unit tests for the SAML reader of idp/: real responses from AD FS and
 * Keycloak, attribute keys and values, the comment and CDATA cases, and
 * everything the hardened parse must refuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_idp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * libxml2 is private to idp/, so its headers are not on this test's include
 * path; the three calls the handler test makes, declared by hand.
 */
typedef void (*xml_handler_fn)(void *ctx, void *error);
void xmlSetStructuredErrorFunc(void *ctx, xml_handler_fn handler);
void *xmlReadMemory(const char *buf, int size, const char *url, const char *enc, int options);
void xmlFreeDoc(void *doc);

#define NS_P "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_A "urn:oasis:names:tc:SAML:2.0:assertion"

/* A Response around one Assertion whose body (after its Issuer) is body. */
#define RESPONSE_HEAD                                                                              \
	"<samlp:Response xmlns:samlp=\"" NS_P "\" xmlns:saml=\"" NS_A "\" ID=\"r1\" "              \
	"Version=\"2.0\"><saml:Issuer>https://idp.example.com/response</saml:Issuer>"              \
	"<saml:Assertion ID=\"a1\" Version=\"2.0\">"                                               \
	"<saml:Issuer>https://idp.example.com</saml:Issuer>"
#define RESPONSE_TAIL "</saml:Assertion></samlp:Response>"
#define SUBJECT "<saml:Subject><saml:NameID>jdoe</saml:NameID></saml:Subject>"
#define STATEMENT(attrs) "<saml:AttributeStatement>" attrs "</saml:AttributeStatement>"
#define WITH_ATTRS(attrs)                                                                          \
	RESPONSE_HEAD SUBJECT STATEMENT(attrs)                                                     \
	RESPONSE_TAIL

static fb_rc
read_str(const char *xml, struct fb_saml_identity *id, struct fb_err *err)
{
	memset(err, 0, sizeof(*err));
	return fb_saml_identity_read(xml, strlen(xml), id, err);
}

/* Reads xml, which must fail with rc and a message holding want. */
static void
expect_refused(const char *xml, size_t len, fb_rc rc, const char *want)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err = { 0 };

	assert_int_equal(fb_saml_identity_read(xml, len, &id, &err), rc);
	assert_int_equal(err.rc, rc);
	if (strstr(err.msg, want) == NULL)
		fail_msg("message \"%s\" does not say \"%s\"", err.msg, want);
	assert_null(id.issuer);
	assert_null(id.attrs);
}

static void
expect_refused_str(const char *xml, fb_rc rc, const char *want)
{
	expect_refused(xml, strlen(xml), rc, want);
}

/* attrs[key] is exactly the n strings that follow. */
static void
expect_values(const json_t *attrs, const char *key, size_t n, ...)
{
	const json_t *arr = json_object_get(attrs, key);
	va_list ap;

	if (!json_is_array(arr))
		fail_msg("no array under \"%s\"", key);
	if (json_array_size(arr) != n)
		fail_msg("\"%s\" has %zu values, not %zu", key, json_array_size(arr), n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		const char *want = va_arg(ap, const char *);
		const json_t *v = json_array_get(arr, i);

		assert_true(json_is_string(v));
		assert_string_equal(json_string_value(v), want);
	}
	va_end(ap);
}

static char *
fixture(const char *name, size_t *len)
{
	const char *src = getenv("FB_SOURCE_DIR");
	struct fb_err err = { 0 };
	struct fb_buf path;
	char *data = NULL;

	fb_buf_init(&path, 8192);
	if (src != NULL) {
		assert_int_equal(
		    fb_buf_printf(&path, "%s/tests/unit/fixtures/saml/%s", src, name), FB_OK);
	} else {
		/* Run by hand: the fixtures sit next to this file. */
		const char *slash = strrchr(__FILE__, '/');
		int dir = slash != NULL ? (int)(slash - __FILE__) : 1;

		assert_int_equal(fb_buf_printf(&path, "%.*s/fixtures/saml/%s", dir,
		                     slash != NULL ? __FILE__ : ".", name),
		    FB_OK);
	}
	(void)fb_file_read(path.data, 1 << 20, &data, len, &err);
	fb_buf_free(&path);
	if (data == NULL)
		fail_msg("%s", err.msg);
	return data;
}

static void
test_adfs_response(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err = { 0 };
	size_t len;
	char *xml = fixture("adfs-response.xml", &len);

	(void)state;
	assert_int_equal(fb_saml_identity_read(xml, len, &id, &err), FB_OK);
	assert_string_equal(id.issuer, "http://adfs.corp.example.com/adfs/services/trust");
	assert_string_equal(id.nameid, "Rk9PQkFSLWpkb2UtMTIzNDU2Nzg5MA==");
	assert_string_equal(
	    id.nameid_format, "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent");
	assert_string_equal(id.session_index, "_d71a3a8e-9fcc-4c9e-9d63-2b1f5e0a7c41");
	assert_int_equal(json_object_size(id.attrs), 5);
	expect_values(id.attrs,
	    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", 1,
	    "jane.doe@corp.example.com");
	expect_values(id.attrs, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", 1,
	    "jdoe@corp.example.com");
	expect_values(id.attrs, "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", 3,
	    "Domain Users", "fedbridge-admins", "VPN Users");
	fb_saml_identity_clear(&id);
	assert_null(id.attrs);
	fb_saml_identity_clear(&id); /* twice is harmless */
	free(xml);
}

static void
test_keycloak_response(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err = { 0 };
	size_t len;
	char *xml = fixture("keycloak-response.xml", &len);

	(void)state;
	assert_int_equal(fb_saml_identity_read(xml, len, &id, &err), FB_OK);
	assert_string_equal(id.issuer, "https://sso.example.org/realms/corp");
	assert_string_equal(id.nameid, "G-6f0d3c1a-9e2b-4d7f-a8c5-3b1e0f9d2c4a");
	assert_string_equal(
	    id.nameid_format, "urn:oasis:names:tc:SAML:2.0:nameid-format:transient");
	assert_string_equal(id.session_index,
	    "8d0a5b6e-1f2c-4a3b-9c8d-7e6f5a4b3c2d::7a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d");
	/* Name and FriendlyName both present: the values under each. */
	expect_values(id.attrs, "urn:oid:1.2.840.113549.1.9.1", 1, "jane.doe@example.org");
	expect_values(id.attrs, "email", 1, "jane.doe@example.org");
	expect_values(id.attrs, "urn:oid:2.5.4.42", 1, "Jane");
	expect_values(id.attrs, "givenName", 1, "Jane");
	expect_values(id.attrs, "surname", 1, "Doe");
	/* Keycloak sends one Role element per role: merged, in order. */
	expect_values(
	    id.attrs, "Role", 3, "default-roles-corp", "offline_access", "fedbridge-user");
	expect_values(id.attrs, "groups", 2, "/engineering", "/engineering/platform");
	assert_int_equal(json_object_size(id.attrs), 8);
	fb_saml_identity_clear(&id);
	free(xml);
}

static void
test_friendly_names(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	/* Same as Name: one key. Equal to a later Name: merged, and only there. */
	assert_int_equal(
	    read_str(WITH_ATTRS("<saml:Attribute Name=\"uid\" FriendlyName=\"uid\">"
	                        "<saml:AttributeValue>jdoe</saml:AttributeValue></saml:Attribute>"
	                        "<saml:Attribute Name=\"urn:oid:0.9.2342.19200300.100.1.3\" "
	                        "FriendlyName=\"mail\"><saml:AttributeValue>a@example.com"
	                        "</saml:AttributeValue></saml:Attribute>"
	                        "<saml:Attribute Name=\"mail\"><saml:AttributeValue>b@example.com"
	                        "</saml:AttributeValue></saml:Attribute>"
	                        "<saml:Attribute Name=\"empty\" FriendlyName=\"\"/>"),
	        &id, &err),
	    FB_OK);
	assert_int_equal(json_object_size(id.attrs), 4);
	expect_values(id.attrs, "uid", 1, "jdoe");
	expect_values(id.attrs, "urn:oid:0.9.2342.19200300.100.1.3", 1, "a@example.com");
	expect_values(id.attrs, "mail", 2, "a@example.com", "b@example.com");
	expect_values(id.attrs, "empty", 0);
	fb_saml_identity_clear(&id);
}

static void
test_multi_valued_and_statements(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	/* Two AttributeStatements; the same Name in both merges in document order. */
	assert_int_equal(
	    read_str(RESPONSE_HEAD SUBJECT STATEMENT(
	                 "<saml:Attribute Name=\"g\"><saml:AttributeValue>1"
	                 "</saml:AttributeValue><saml:AttributeValue>2"
	                 "</saml:AttributeValue><saml:AttributeValue/>"
	                 "</saml:Attribute>") STATEMENT("<saml:Attribute Name=\"g\">"
	                                                "<saml:AttributeValue>3"
	                                                "</saml:AttributeValue>"
	                                                "</saml:Attribute>") RESPONSE_TAIL,
	        &id, &err),
	    FB_OK);
	expect_values(id.attrs, "g", 4, "1", "2", "", "3");
	fb_saml_identity_clear(&id);
}

static void
test_comment_injection(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	assert_int_equal(
	    read_str(RESPONSE_HEAD "<saml:Subject><saml:NameID>user@user.com<!---->.evil.com"
	                           "</saml:NameID></saml:Subject>" STATEMENT(
	                               "<saml:Attribute Name=\"mail\"><saml:AttributeValue>"
	                               "admin@evil.com<!---->.good.com</saml:AttributeValue>"
	                               "<saml:AttributeValue>a<!-- x -->b<?pi data?>c"
	                               "</saml:AttributeValue></saml:Attribute>") RESPONSE_TAIL,
	        &id, &err),
	    FB_OK);
	assert_string_equal(id.nameid, "user@user.com.evil.com");
	expect_values(id.attrs, "mail", 2, "admin@evil.com.good.com", "abc");
	fb_saml_identity_clear(&id);
}

static void
test_cdata_and_references(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	assert_int_equal(read_str(WITH_ATTRS("<saml:Attribute Name=\"v\"><saml:AttributeValue>"
	                                     "<![CDATA[a<b>&c]]></saml:AttributeValue>"
	                                     "<saml:AttributeValue>x<![CDATA[y]]><!-- z -->w"
	                                     "</saml:AttributeValue><saml:AttributeValue>"
	                                     "&amp;&lt;&#x41;&#233;</saml:AttributeValue>"
	                                     "<saml:AttributeValue><x:b xmlns:x=\"urn:x\">in"
	                                     "<x:i>ner</x:i></x:b></saml:AttributeValue>"
	                                     "</saml:Attribute>"),
	                     &id, &err),
	    FB_OK);
	expect_values(id.attrs, "v", 4, "a<b>&c", "xyw", "&<A\xc3\xa9", "inner");
	fb_saml_identity_clear(&id);
}

static void
test_doctype_refused(void **state)
{
	static const char *const payloads[] = {
		/* billion laughs */
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		"<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">"
		"<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>"
		"<samlp:Response xmlns:samlp=\"" NS_P "\">&lol4;</samlp:Response>",
		/* external entity */
		"<!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" RESPONSE_HEAD
		"<saml:Subject><saml:NameID>&xxe;</saml:NameID></saml:Subject>" RESPONSE_TAIL,
		/* parameter entities */
		"<!DOCTYPE r [<!ENTITY % p SYSTEM \"file:///etc/passwd\"><!ENTITY % q \"<!ENTITY "
		"x 'y'>\">%p;%q;]>" RESPONSE_HEAD RESPONSE_TAIL,
		/* external subset */
		"<!DOCTYPE r SYSTEM \"http://127.0.0.1:9/evil.dtd\">" RESPONSE_HEAD RESPONSE_TAIL,
		"<!DOCTYPE samlp:Response>" RESPONSE_HEAD RESPONSE_TAIL,
		/* a declared encoding does not change how the bytes are read */
		"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!DOCTYPE r [<!ENTITY a \"b\">]>"
		"<r>&a;</r>",
		/* not allowed after the root either */
		RESPONSE_HEAD RESPONSE_TAIL "<!DOCTYPE r>",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		struct fb_saml_identity id = { 0 };
		struct fb_err err;
		fb_rc rc = read_str(payloads[i], &id, &err);

		if (rc != FB_ERR_INVALID)
			fail_msg("payload %zu: rc %d", i, (int)rc);
		if (i < 6 && strstr(err.msg, "DOCTYPE is not allowed") == NULL)
			fail_msg("payload %zu: \"%s\"", i, err.msg);
		assert_null(strstr(err.msg, "root:"));
	}
}

/* Writes s at dst without its NUL: the buffer is not a string. */
static void
put(char *dst, const char *s)
{
	for (size_t i = 0; s[i] != '\0'; i++)
		dst[i] = s[i];
}

static void
test_size_bound(void **state)
{
	size_t big = (size_t)2 << 20;
	char *xml = malloc(big);
	const char *head = RESPONSE_HEAD SUBJECT "<!--";
	const char *tail = "-->" RESPONSE_TAIL;

	(void)state;
	assert_non_null(xml);
	/* Well-formed, padded with a comment: refused by size alone. */
	memset(xml, 'x', big);
	put(xml, head);
	put(xml + big - strlen(tail), tail);
	expect_refused(xml, big, FB_ERR_LIMIT, "more than the 1048576 allowed");
	/* The same cut to exactly 1 MiB reads. */
	put(xml + ((size_t)1 << 20) - strlen(tail), tail);
	{
		struct fb_saml_identity id = { 0 };
		struct fb_err err = { 0 };

		assert_int_equal(fb_saml_identity_read(xml, (size_t)1 << 20, &id, &err), FB_OK);
		assert_string_equal(id.nameid, "jdoe");
		fb_saml_identity_clear(&id);
	}
	free(xml);
}

/* A document whose AttributeValue holds n nested elements; the value is at depth 5. */
static char *
nested(size_t n)
{
	struct fb_buf b;

	fb_buf_init(&b, 1 << 20);
	assert_int_equal(
	    fb_buf_printf(&b, "%s",
	        RESPONSE_HEAD SUBJECT "<saml:AttributeStatement><saml:Attribute Name=\"d\">"
	                              "<saml:AttributeValue>"),
	    FB_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fb_buf_append(&b, "<e>", 3), FB_OK);
	assert_int_equal(fb_buf_append(&b, "x", 1), FB_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(fb_buf_append(&b, "</e>", 4), FB_OK);
	assert_int_equal(fb_buf_printf(&b, "%s",
	                     "</saml:AttributeValue></saml:Attribute>"
	                     "</saml:AttributeStatement>" RESPONSE_TAIL),
	    FB_OK);
	return b.data;
}

static void
test_depth_bound(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;
	char *xml;

	(void)state;
	xml = nested(59); /* 64 levels: the most allowed */
	assert_int_equal(read_str(xml, &id, &err), FB_OK);
	expect_values(id.attrs, "d", 1, "x");
	fb_saml_identity_clear(&id);
	free(xml);
	xml = nested(60);
	expect_refused_str(xml, FB_ERR_LIMIT, "nest more than 64 levels");
	free(xml);
	xml = nested(20000);
	expect_refused_str(xml, FB_ERR_LIMIT, "nest more than 64 levels");
	free(xml);
}

static void
test_assertion_count(void **state)
{
	(void)state;
	expect_refused_str(RESPONSE_HEAD SUBJECT "</saml:Assertion><saml:Assertion ID=\"a2\">"
	                                         "<saml:Subject><saml:NameID>admin</saml:NameID>"
	                                         "</saml:Subject>" RESPONSE_TAIL,
	    FB_ERR_INVALID, "exactly one Assertion; this one holds 2");
	expect_refused_str("<samlp:Response xmlns:samlp=\"" NS_P "\"><samlp:Status>"
	                   "<samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:"
	                   "Requester\"/></samlp:Status></samlp:Response>",
	    FB_ERR_INVALID,
	    "no Assertion; its status is urn:oasis:names:tc:SAML:2.0:status:Requester");
	expect_refused_str(
	    "<samlp:Response xmlns:samlp=\"" NS_P "\"/>", FB_ERR_INVALID, "this one holds 0");
	/* An Assertion anywhere but directly in the Response is not the Response's. */
	expect_refused_str(
	    "<samlp:Response xmlns:samlp=\"" NS_P "\" xmlns:saml=\"" NS_A "\">"
	    "<samlp:Extensions><saml:Assertion/></samlp:Extensions></samlp:Response>",
	    FB_ERR_INVALID, "this one holds 0");
}

static void
test_encrypted_refused(void **state)
{
	(void)state;
	expect_refused_str(
	    "<samlp:Response xmlns:samlp=\"" NS_P "\" xmlns:saml=\"" NS_A "\">"
	    "<saml:Issuer>https://idp.example.com</saml:Issuer>"
	    "<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc=\"http://www.w3."
	    "org/2001/04/xmlenc#\"/></saml:EncryptedAssertion></samlp:Response>",
	    FB_ERR_INVALID, "encrypted assertions need the SP key: not supported by this reader");
	expect_refused_str(RESPONSE_HEAD
	    "<saml:Subject><saml:EncryptedID/></saml:Subject>" RESPONSE_TAIL,
	    FB_ERR_INVALID, "encrypted NameIDs need the SP key");
	expect_refused_str(WITH_ATTRS("<saml:EncryptedAttribute/>"), FB_ERR_INVALID,
	    "encrypted attributes need the SP key");
}

static void
test_namespaces(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	/* Any prefix, or none, for the right URI; the right local name in a foreign namespace is
	 * not read. */
	assert_int_equal(
	    read_str("<p:Response xmlns:p=\"" NS_P "\"><Assertion xmlns=\"" NS_A "\">"
	             "<Subject><NameID>jdoe</NameID></Subject><AttributeStatement>"
	             "<Attribute Name=\"ok\"><AttributeValue>1</AttributeValue>"
	             "<v:AttributeValue xmlns:v=\"urn:evil\">2</v:AttributeValue></Attribute>"
	             "<saml:Attribute xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\" "
	             "Name=\"role\"><saml:AttributeValue>admin</saml:AttributeValue>"
	             "</saml:Attribute><x:Attribute xmlns:x=\"" NS_A "\" x:Name=\"ns\" Name=\"y\">"
	             "<x:AttributeValue>3</x:AttributeValue></x:Attribute>"
	             "</AttributeStatement>"
	             "<s:AttributeStatement xmlns:s=\"urn:evil\"><Attribute Name=\"role2\">"
	             "<AttributeValue>admin</AttributeValue></Attribute></s:AttributeStatement>"
	             "</Assertion></p:Response>",
	        &id, &err),
	    FB_OK);
	assert_string_equal(id.nameid, "jdoe");
	assert_int_equal(json_object_size(id.attrs), 2);
	expect_values(id.attrs, "ok", 1, "1");
	expect_values(id.attrs, "y", 1, "3");
	assert_null(json_object_get(id.attrs, "role"));
	assert_null(json_object_get(id.attrs, "role2"));
	fb_saml_identity_clear(&id);
	/* The saml prefix bound to another URI: not an Assertion at all. */
	expect_refused_str("<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\"/>",
	    FB_ERR_INVALID, "{urn:oasis:names:tc:SAML:1.0:assertion}Assertion is not a SAML 2.0");
	expect_refused_str(
	    "<Response><Assertion/></Response>", FB_ERR_INVALID, "{}Response is not a SAML 2.0");
	/* An undeclared prefix is not namespace-well-formed. */
	expect_refused_str("<samlp:Response><saml:Assertion/></samlp:Response>", FB_ERR_INVALID,
	    "XML line 1: Namespace prefix samlp");
}

static void
test_missing_parts(void **state)
{
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	/* A bare Assertion with a Subject but no NameID, no Issuer, no AuthnStatement. */
	assert_int_equal(read_str("<saml:Assertion xmlns:saml=\"" NS_A "\"><saml:Subject>"
	                          "<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:"
	                          "cm:bearer\"/></saml:Subject></saml:Assertion>",
	                     &id, &err),
	    FB_OK);
	assert_null(id.issuer);
	assert_null(id.nameid);
	assert_null(id.nameid_format);
	assert_null(id.session_index);
	assert_true(json_is_object(id.attrs));
	assert_int_equal(json_object_size(id.attrs), 0);
	fb_saml_identity_clear(&id);
	/* The Response's Issuer stands in for a missing one in the Assertion. */
	assert_int_equal(read_str("<samlp:Response xmlns:samlp=\"" NS_P "\" xmlns:saml=\"" NS_A
	                          "\"><saml:Issuer>https://idp.example.com/r</saml:Issuer>"
	                          "<saml:Assertion><saml:AuthnStatement/><saml:AuthnStatement "
	                          "SessionIndex=\"s2\"/></saml:Assertion></samlp:Response>",
	                     &id, &err),
	    FB_OK);
	assert_string_equal(id.issuer, "https://idp.example.com/r");
	assert_null(id.nameid);
	assert_string_equal(id.session_index, "s2");
	fb_saml_identity_clear(&id);
	/* An Attribute needs a Name. */
	expect_refused_str(WITH_ATTRS("<saml:Attribute FriendlyName=\"x\"/>"), FB_ERR_INVALID,
	    "an Attribute has no Name");
}

static void
test_duplicates_refused(void **state)
{
	(void)state;
	expect_refused_str(RESPONSE_HEAD
	    "<saml:Subject><saml:NameID>a</saml:NameID>"
	    "<saml:NameID>admin</saml:NameID></saml:Subject>" RESPONSE_TAIL,
	    FB_ERR_INVALID, "more than one NameID in Subject");
	expect_refused_str(RESPONSE_HEAD SUBJECT SUBJECT RESPONSE_TAIL, FB_ERR_INVALID,
	    "more than one Subject in Assertion");
	expect_refused_str(RESPONSE_HEAD
	    "<saml:Issuer>https://evil.example.com</saml:Issuer>" SUBJECT RESPONSE_TAIL,
	    FB_ERR_INVALID, "more than one Issuer in Assertion");
}

static void
test_not_utf8(void **state)
{
	static const char nul[] = RESPONSE_HEAD SUBJECT "\0" RESPONSE_TAIL;
	struct fb_saml_identity id = { 0 };
	struct fb_err err;

	(void)state;
	expect_refused_str(WITH_ATTRS("<saml:Attribute Name=\"n\"><saml:AttributeValue>caf\xe9"
	                              "</saml:AttributeValue></saml:Attribute>"),
	    FB_ERR_INVALID, "not UTF-8");
	expect_refused_str(RESPONSE_HEAD "<saml:Subject><saml:NameID>\xc0\xaf</saml:NameID>"
	                                 "</saml:Subject>" RESPONSE_TAIL,
	    FB_ERR_INVALID, "not UTF-8");
	expect_refused(nul, sizeof(nul) - 1, FB_ERR_INVALID, "not UTF-8");
	/* UTF-16 with a BOM is not UTF-8 either. */
	expect_refused("\xff\xfe<\0r\0/\0>\0", 10, FB_ERR_INVALID, "not UTF-8");
	expect_refused("", 0, FB_ERR_INVALID, "empty");
	/* A declared Latin-1 does not turn UTF-8 into mojibake: the bytes are read as UTF-8. */
	assert_int_equal(
	    read_str("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
	             "<saml:Assertion xmlns:saml=\"" NS_A "\"><saml:Subject><saml:NameID>"
	             "Jos\xc3\xa9</saml:NameID></saml:Subject></saml:Assertion>",
	        &id, &err),
	    FB_OK);
	assert_string_equal(id.nameid, "Jos\xc3\xa9");
	fb_saml_identity_clear(&id);
}

/* head, then n AttributeValue elements (values) or n Attributes a0, a1, ..., then tail. */
static char *
many(const char *head, bool values, size_t n, const char *tail)
{
	struct fb_buf b;

	fb_buf_init(&b, 1 << 20);
	assert_int_equal(fb_buf_printf(&b, "%s", head), FB_OK);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(values ? fb_buf_printf(&b,
		                              "<saml:AttributeValue>%zu"
		                              "</saml:AttributeValue>",
		                              i)
		                        : fb_buf_printf(&b, "<saml:Attribute Name=\"a%zu\"/>", i),
		    FB_OK);
	assert_int_equal(fb_buf_printf(&b, "%s", tail), FB_OK);
	return b.data;
}

static void
test_limits(void **state)
{
	static const char head[] = RESPONSE_HEAD SUBJECT "<saml:AttributeStatement>"
	                                                 "<saml:Attribute Name=\"m\">";
	static const char tail[] = "</saml:Attribute></saml:AttributeStatement>" RESPONSE_TAIL;
	static const char ahead[] = RESPONSE_HEAD SUBJECT "<saml:AttributeStatement>";
	static const char atail[] = "</saml:AttributeStatement>" RESPONSE_TAIL;
	struct fb_saml_identity id = { 0 };
	struct fb_err err;
	char value[4200], *xml;

	(void)state;
	xml = many(head, true, 256, tail);
	assert_int_equal(read_str(xml, &id, &err), FB_OK);
	assert_int_equal(json_array_size(json_object_get(id.attrs, "m")), 256);
	fb_saml_identity_clear(&id);
	free(xml);
	xml = many(head, true, 257, tail);
	expect_refused_str(xml, FB_ERR_LIMIT, "attribute m has more than 256 values");
	free(xml);
	/* 200 + 57 values under one key from two elements: refused after merging. */
	{
		char *second =
		    many("</saml:Attribute><saml:Attribute Name=\"x\" FriendlyName=\"m\">", true,
		        57, tail);

		xml = many(head, true, 200, second);
		free(second);
	}
	expect_refused_str(xml, FB_ERR_LIMIT, "attribute m has more than 256 values");
	free(xml);
	xml = many(ahead, false, 256, atail);
	assert_int_equal(read_str(xml, &id, &err), FB_OK);
	assert_int_equal(json_object_size(id.attrs), 256);
	fb_saml_identity_clear(&id);
	free(xml);
	xml = many(ahead, false, 257, atail);
	expect_refused_str(xml, FB_ERR_LIMIT, "more than 256 attributes");
	free(xml);
	/* 4096 bytes of value read; 4097 do not, even when split by a comment. */
	memset(value, 'v', 4096);
	value[4096] = '\0';
	{
		struct fb_buf b;

		fb_buf_init(&b, 1 << 20);
		assert_int_equal(
		    fb_buf_printf(
		        &b, "%s<saml:AttributeValue>%s</saml:AttributeValue>%s", head, value, tail),
		    FB_OK);
		assert_int_equal(read_str(b.data, &id, &err), FB_OK);
		assert_int_equal(
		    strlen(json_string_value(json_array_get(json_object_get(id.attrs, "m"), 0))),
		    4096);
		fb_saml_identity_clear(&id);
		fb_buf_reset(&b);
		assert_int_equal(fb_buf_printf(&b,
		                     "%s<saml:AttributeValue>%s<!---->v"
		                     "</saml:AttributeValue>%s",
		                     head, value, tail),
		    FB_OK);
		expect_refused_str(
		    b.data, FB_ERR_LIMIT, "attribute m: a value is longer than 4096 bytes");
		fb_buf_free(&b);
	}
}

static void
test_malformed(void **state)
{
	(void)state;
	expect_refused_str("<samlp:Response xmlns:samlp=\"" NS_P
	                   "\">\n<unclosed>\n</samlp:Response>",
	    FB_ERR_INVALID, "XML line 3: ");
	expect_refused_str("<r>&x;</r>", FB_ERR_INVALID, "XML line 1: Entity 'x' not defined");
	expect_refused_str("not xml at all", FB_ERR_INVALID, "XML line 1: ");
	expect_refused_str(RESPONSE_HEAD RESPONSE_TAIL "<trailing/>", FB_ERR_INVALID,
	    "Extra content at the end of the document");
}

static void
test_out_untouched_on_failure(void **state)
{
	struct fb_saml_identity id = { .issuer = (char *)"sentinel" };
	const char *bad = "<!DOCTYPE r>" RESPONSE_HEAD RESPONSE_TAIL;

	(void)state;
	assert_int_equal(fb_saml_identity_read(bad, strlen(bad), &id, NULL), FB_ERR_INVALID);
	assert_string_equal(id.issuer, "sentinel");
	assert_null(id.attrs);
	fb_saml_identity_clear(NULL);
}

static int handler_calls;

static void
caller_handler(void *arg, void *e)
{
	(void)arg;
	(void)e;
	handler_calls++;
}

/* libxml2 never prints, and the caller's own error handler is back afterwards. */
static void
test_silent_and_restores_handler(void **state)
{
	static const char *const bad[] = { "<a><b></a>", "<r>&x;</r>", "<!DOCTYPE r><r/>",
		"<samlp:Response/>", "<r xmlns:a=\"rel\"><a:b/></r>" };
	char path[] = "/tmp/test_saml_xml.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	xmlSetStructuredErrorFunc(NULL, caller_handler);
	assert_int_equal(dup2(fd, 2), 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fb_saml_identity id = { 0 };

		(void)fb_saml_identity_read(bad[i], strlen(bad[i]), &id, NULL);
		fb_saml_identity_clear(&id);
	}
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	assert_int_equal(lseek(fd, 0, SEEK_END), 0);
	assert_int_equal(handler_calls, 0);
	/* The caller's handler hears libxml2 again once the reader is done. */
	xmlFreeDoc(xmlReadMemory("<a>", 3, NULL, NULL, 0));
	assert_true(handler_calls > 0);
	xmlSetStructuredErrorFunc(NULL, NULL);
	close(fd);
	close(saved);
	unlink(path);
}

/* Each thread gets its own error, with its own line. */
static void *
parse_loop(void *arg)
{
	size_t line = (size_t)(uintptr_t)arg;
	char xml[64];
	char want[32];

	(void)snprintf(xml, sizeof(xml), "<r>%.*s<x></r>", (int)line, "\n\n\n\n\n\n\n\n");
	(void)snprintf(want, sizeof(want), "XML line %zu:", line + 1);
	for (int i = 0; i < 300; i++) {
		struct fb_saml_identity id = { 0 };
		struct fb_err err = { 0 };

		if (fb_saml_identity_read(xml, strlen(xml), &id, &err) != FB_ERR_INVALID ||
		    strstr(err.msg, want) == NULL)
			return (void *)1;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[4];

	(void)state;
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(
		    pthread_create(&t[i], NULL, parse_loop, (void *)(uintptr_t)(i * 2)), 0);
	for (size_t i = 0; i < 4; i++) {
		void *ret;

		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adfs_response),
		cmocka_unit_test(test_keycloak_response),
		cmocka_unit_test(test_friendly_names),
		cmocka_unit_test(test_multi_valued_and_statements),
		cmocka_unit_test(test_comment_injection),
		cmocka_unit_test(test_cdata_and_references),
		cmocka_unit_test(test_doctype_refused),
		cmocka_unit_test(test_size_bound),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_assertion_count),
		cmocka_unit_test(test_encrypted_refused),
		cmocka_unit_test(test_namespaces),
		cmocka_unit_test(test_missing_parts),
		cmocka_unit_test(test_duplicates_refused),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_out_untouched_on_failure),
		cmocka_unit_test(test_silent_and_restores_handler),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
