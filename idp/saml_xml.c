/*
 * Reading a SAML 2.0 Response or Assertion into the parts the mapping
 * needs: Issuer, NameID, SessionIndex and every attribute value. The XML
 * parser runs with DTDs, entities and network access off and a size bound;
 * elements are matched by namespace URI and local name, never by prefix;
 * a value's text is all of its text nodes joined, so a comment inside a
 * value cannot cut it short (the CVE-2017-11427 family).
 *
 * This reads; it does not validate. Signatures, conditions, audience and
 * replay are the SAML login's job, done before it trusts what is read here.
 */
#include "fb_idp.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PROTOCOL "urn:oasis:names:tc:SAML:2.0:protocol"
#define NS_ASSERTION "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAML_XML_MAX ((size_t)1 << 20)
#define SAML_DEPTH_MAX 64
#define SAML_VALUE_MAX 4096
#define SAML_VALUES_MAX 256
#define SAML_ATTRS_MAX 256

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_init(void)
{
	xmlInitParser();
}

/* libxml2 reports through this instead of printing; the first error is kept. */
static void
xml_error(void *arg, xmlErrorPtr e)
{
	struct fb_err *err = arg;

	if (err != NULL && err->msg[0] == '\0' && e != NULL && e->message != NULL) {
		size_t n;
		FB_ERR_SET(err, FB_ERR_INVALID, "XML line %d: %s", e->line, e->message);
		n = strlen(err->msg);
		while (n > 0 && err->msg[n - 1] == '\n')
			err->msg[--n] = '\0';
	}
}

static bool
is_el(const xmlNode *n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL && n->ns->href != NULL &&
	    strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *
child(const xmlNode *parent, const char *ns, const char *name)
{
	for (const xmlNode *c = parent ? parent->children : NULL; c != NULL; c = c->next)
		if (is_el(c, ns, name))
			return c;
	return NULL;
}

static size_t
depth_of(const xmlNode *n, size_t d)
{
	size_t max = d;

	for (const xmlNode *c = n->children; c != NULL && max <= SAML_DEPTH_MAX; c = c->next) {
		size_t cd = depth_of(c, d + 1);
		if (cd > max)
			max = cd;
	}
	return max;
}

/* All text and CDATA below n, joined; NULL when over the cap. */
static bool
text_of(const xmlNode *n, struct fb_buf *out)
{
	for (const xmlNode *c = n->children; c != NULL; c = c->next) {
		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
		    c->content != NULL) {
			if (fb_buf_append(out, c->content, strlen((const char *)c->content)) !=
			    FB_OK)
				return false;
		} else if (c->type == XML_ELEMENT_NODE && !text_of(c, out)) {
			return false;
		}
	}
	return true;
}

static char *
text_dup(const xmlNode *n, struct fb_err *err, const char *what)
{
	struct fb_buf b;
	char *s;

	fb_buf_init(&b, SAML_VALUE_MAX);
	if (!text_of(n, &b)) {
		fb_buf_free(&b);
		FB_ERR_SET(err, FB_ERR_LIMIT, "%s is longer than %d bytes", what, SAML_VALUE_MAX);
		return NULL;
	}
	s = strdup(b.data ? b.data : "");
	fb_buf_free(&b);
	if (s == NULL)
		FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	return s;
}

static fb_rc
add_values(json_t *attrs, const char *key, json_t *values, struct fb_err *err)
{
	json_t *cur = json_object_get(attrs, key);

	if (cur == NULL) {
		if (json_object_size(attrs) >= SAML_ATTRS_MAX)
			return FB_ERR_SET(
			    err, FB_ERR_LIMIT, "more than %d attributes", SAML_ATTRS_MAX);
		return json_object_set(attrs, key, values) == 0
		    ? FB_OK
		    : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	/* The same Name twice: its values merge, in order. */
	if (json_array_size(cur) + json_array_size(values) > SAML_VALUES_MAX)
		return FB_ERR_SET(err, FB_ERR_LIMIT, "attribute %s has more than %d values", key,
		    SAML_VALUES_MAX);
	return json_array_extend(cur, values) == 0 ? FB_OK
	                                           : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
}

static fb_rc
read_attribute(const xmlNode *a, json_t *attrs, struct fb_err *err)
{
	xmlChar *name = xmlGetNoNsProp(a, (const xmlChar *)"Name");
	xmlChar *friendly = xmlGetNoNsProp(a, (const xmlChar *)"FriendlyName");
	json_t *values = json_array();
	fb_rc rc = FB_OK;

	if (name == NULL || name[0] == '\0' || values == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "an Attribute without a Name");
		goto done;
	}
	for (const xmlNode *v = a->children; v != NULL && rc == FB_OK; v = v->next) {
		char *text;
		if (!is_el(v, NS_ASSERTION, "AttributeValue"))
			continue;
		if (json_array_size(values) >= SAML_VALUES_MAX) {
			rc = FB_ERR_SET(err, FB_ERR_LIMIT, "attribute %s has more than %d values",
			    (const char *)name, SAML_VALUES_MAX);
			break;
		}
		if ((text = text_dup(v, err, "an attribute value")) == NULL) {
			rc = err ? err->rc : FB_ERR_LIMIT;
			break;
		}
		if (json_array_append_new(values, json_string(text)) != 0)
			rc = FB_ERR_SET(err, FB_ERR_INVALID, "attribute %s: a value is not UTF-8",
			    (const char *)name);
		free(text);
	}
	if (rc == FB_OK)
		rc = add_values(attrs, (const char *)name, values, err);
	if (rc == FB_OK && friendly != NULL && friendly[0] != '\0' &&
	    strcmp((const char *)friendly, (const char *)name) != 0)
		rc = add_values(attrs, (const char *)friendly, values, err);
done:
	json_decref(values);
	xmlFree(name);
	xmlFree(friendly);
	return rc;
}

static fb_rc
read_assertion(const xmlNode *as, struct fb_saml_identity *out, struct fb_err *err)
{
	const xmlNode *issuer = child(as, NS_ASSERTION, "Issuer");
	const xmlNode *subject = child(as, NS_ASSERTION, "Subject");
	const xmlNode *nameid = child(subject, NS_ASSERTION, "NameID");
	const xmlNode *authn = child(as, NS_ASSERTION, "AuthnStatement");
	fb_rc rc = FB_OK;

	if (issuer != NULL) {
		free(out->issuer);
		if ((out->issuer = text_dup(issuer, err, "Issuer")) == NULL)
			return err ? err->rc : FB_ERR_INVALID;
	}
	if (nameid != NULL) {
		xmlChar *fmt = xmlGetNoNsProp(nameid, (const xmlChar *)"Format");
		if ((out->nameid = text_dup(nameid, err, "NameID")) == NULL) {
			xmlFree(fmt);
			return err ? err->rc : FB_ERR_INVALID;
		}
		out->nameid_format = fmt ? strdup((const char *)fmt) : NULL;
		xmlFree(fmt);
	}
	if (authn != NULL) {
		xmlChar *si = xmlGetNoNsProp(authn, (const xmlChar *)"SessionIndex");
		out->session_index = si ? strdup((const char *)si) : NULL;
		xmlFree(si);
	}
	for (const xmlNode *st = as->children; st != NULL && rc == FB_OK; st = st->next) {
		if (!is_el(st, NS_ASSERTION, "AttributeStatement"))
			continue;
		for (const xmlNode *a = st->children; a != NULL && rc == FB_OK; a = a->next)
			if (is_el(a, NS_ASSERTION, "Attribute"))
				rc = read_attribute(a, out->attrs, err);
	}
	return rc;
}

static fb_rc
read_document(xmlDoc *doc, struct fb_saml_identity *out, struct fb_err *err)
{
	const xmlNode *root = xmlDocGetRootElement(doc), *as = NULL;
	size_t count = 0;

	if (doc->intSubset != NULL || doc->extSubset != NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a DOCTYPE is not allowed in SAML messages");
	if (root == NULL || depth_of(root, 1) > SAML_DEPTH_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "the XML nests deeper than %d levels", SAML_DEPTH_MAX);
	if (is_el(root, NS_ASSERTION, "Assertion")) {
		as = root;
		count = 1;
	} else if (is_el(root, NS_PROTOCOL, "Response")) {
		const xmlNode *issuer = child(root, NS_ASSERTION, "Issuer");
		if (issuer != NULL && (out->issuer = text_dup(issuer, err, "Issuer")) == NULL)
			return err ? err->rc : FB_ERR_INVALID;
		for (const xmlNode *c = root->children; c != NULL; c = c->next) {
			if (is_el(c, NS_ASSERTION, "EncryptedAssertion"))
				return FB_ERR_SET(err, FB_ERR_INVALID,
				    "encrypted assertions need the SP key: not supported by this "
				    "reader");
			if (is_el(c, NS_ASSERTION, "Assertion")) {
				as = c;
				count++;
			}
		}
	} else {
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "not a SAML 2.0 Response or Assertion (namespace and name of the root "
		    "element)");
	}
	if (count != 1)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "a Response must hold exactly one Assertion, "
		    "this one holds %zu",
		    count);
	return read_assertion(as, out, err);
}

fb_rc
fb_saml_identity_read(const char *xml, size_t len, struct fb_saml_identity *out, struct fb_err *err)
{
	xmlParserCtxtPtr ctx;
	xmlDoc *doc;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (len > SAML_XML_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "the XML is larger than %zu bytes", SAML_XML_MAX);
	if (len > INT32_MAX || !fb_utf8_valid(xml, len))
		return FB_ERR_SET(err, FB_ERR_INVALID, "the XML is not UTF-8");
	(void)pthread_once(&xml_once, xml_init);
	/* Refused before parsing: no entity of a DTD is ever expanded, or even declared. */
	if (memmem(xml, len, "<!DOCTYPE", 9) != NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "a DOCTYPE is not allowed in SAML messages");
	if ((ctx = xmlNewParserCtxt()) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if (err != NULL)
		err->msg[0] = '\0';
	/* Per thread in libxml2: errors of this parse come here, not to stderr. */
	xmlSetStructuredErrorFunc(err, xml_error);
	/* No entity substitution, no DTD loading, no network; warnings are not printed. */
	doc = xmlCtxtReadMemory(ctx, xml, (int)len, "saml.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
	if (doc == NULL) {
		if (err == NULL || err->msg[0] == '\0')
			FB_ERR_SET(err, FB_ERR_INVALID, "not well-formed XML");
		xmlFreeParserCtxt(ctx);
		xmlSetStructuredErrorFunc(NULL, NULL);
		return FB_ERR_INVALID;
	}
	if ((out->attrs = json_object()) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	else
		rc = read_document(doc, out, err);
	xmlFreeDoc(doc);
	xmlFreeParserCtxt(ctx);
	xmlSetStructuredErrorFunc(NULL, NULL);
	if (rc != FB_OK)
		fb_saml_identity_clear(out);
	return rc;
}

void
fb_saml_identity_clear(struct fb_saml_identity *id)
{
	free(id->issuer);
	free(id->nameid);
	free(id->nameid_format);
	free(id->session_index);
	json_decref(id->attrs);
	memset(id, 0, sizeof(*id));
}
