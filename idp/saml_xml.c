/*
 * Reading SAML 2.0 messages: a hardened XML parse (fb_saml_xml_parse, for
 * this reader and the SAML login), then the parts of an Assertion the
 * mapping needs: Issuer, NameID, SessionIndex and every attribute value.
 *
 * The parse refuses any DOCTYPE the moment it starts, before a single
 * declaration is read, so no entity (internal, external or parameter) is
 * ever declared or expanded; DTD loading, entity substitution, XInclude and
 * the network stay off; size and nesting are bounded. Elements are matched
 * by namespace URI and local name, never by prefix. A value's text is all of
 * its text and CDATA joined, so a comment inside a value cannot cut it short
 * (the CVE-2017-11427 family).
 *
 * This reads; it does not validate. Signatures, conditions, audience and
 * replay are the SAML login's job, done before it trusts what is read here.
 */
#include "fb_idp.h"
#include "saml_int.h"

#include <libxml/SAX2.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * No NOENT, DTDLOAD, DTDATTR, DTDVALID, XINCLUDE or HUGE. CDATA stays CDATA
 * nodes, read as text like any other. NOERROR and NOWARNING keep libxml2's
 * own printing off; errors still reach the structured handler.
 */
#define XML_OPTIONS                                                                                \
	(XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC)

#define SAML_TEXT_MAX 4096 /* bytes of one value, NameID, Issuer or XML attribute */
#define SAML_VALUES_MAX 256 /* values under one key, after merging */
#define SAML_ATTRS_MAX 256 /* Attribute elements in the Assertion */

/* The first failure of one parse: libxml2's, or a hook's refusal. */
struct parse_state {
	fb_rc rc; /* FB_OK until something failed */
	bool stopped; /* a hook refused the document and stopped the parser */
	char msg[FB_ERR_MSG_MAX];
};

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void
xml_init(void)
{
	xmlInitParser();
}

static void state_set(struct parse_state *st, fb_rc rc, const char *fmt, ...) FB_PRINTF(3, 4);

static void
state_set(struct parse_state *st, fb_rc rc, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	st->rc = rc;
	va_start(ap, fmt);
	(void)vsnprintf(st->msg, sizeof(st->msg), fmt, ap);
	va_end(ap);
	/* libxml2's messages end with a newline. */
	n = strlen(st->msg);
	while (n > 0 && (st->msg[n - 1] == '\n' || st->msg[n - 1] == ' '))
		st->msg[--n] = '\0';
}

/*
 * Installed for this thread during one parse (libxml2 keeps the handler per
 * thread), so whatever libxml2 reports lands here and nothing is printed.
 * Warnings, such as a relative namespace URI, do not fail a parse.
 */
static void
xml_error(void *arg, xmlErrorPtr e)
{
	struct parse_state *st = arg;

	if (st == NULL || e == NULL || st->rc != FB_OK || e->level < XML_ERR_ERROR)
		return;
	state_set(st, e->code == XML_ERR_NO_MEMORY ? FB_ERR_NOMEM : FB_ERR_INVALID,
	    "XML line %d: %s", e->line, e->message != NULL ? e->message : "not well-formed");
}

/* Records why and stops the parser: it reads nothing more of the input. */
static void
refuse(void *ctx, fb_rc rc, const char *why)
{
	xmlParserCtxtPtr ctxt = ctx;
	struct parse_state *st = ctxt->_private;

	if (!st->stopped) {
		st->stopped = true;
		state_set(st, rc, "XML line %d: %s", xmlSAX2GetLineNumber(ctx), why);
	}
	xmlStopParser(ctxt);
}

static void
on_doctype(void *ctx, const xmlChar *name, const xmlChar *public_id, const xmlChar *system_id)
{
	(void)name;
	(void)public_id;
	(void)system_id;
	refuse(ctx, FB_ERR_INVALID, "a DOCTYPE is not allowed in SAML messages");
}

/* Unreachable once on_doctype stops the parse; refused again in case it ever is. */
static void
on_entity(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
    const xmlChar *system_id, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)public_id;
	(void)system_id;
	(void)content;
	refuse(ctx, FB_ERR_INVALID, "an entity declaration is not allowed in SAML messages");
}

static void
on_element(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
    int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
    const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = ctx;

	/* nameNr counts the open ancestors: this element is one deeper. */
	if (ctxt->nameNr >= FB_SAML_XML_DEPTH_MAX) {
		refuse(ctx, FB_ERR_LIMIT, "elements nest more than 64 levels deep");
		return;
	}
	xmlSAX2StartElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes,
	    nb_defaulted, attributes);
}

/* Runs libxml2 on the context with this thread's error handler pointed at st. */
static xmlDoc *
parse_run(xmlParserCtxtPtr ctxt, const char *data, size_t len, struct parse_state *st)
{
	xmlStructuredErrorFunc prev_fn = xmlStructuredError;
	void *prev_ctx = xmlStructuredErrorContext;
	xmlDoc *doc;

	ctxt->_private = st;
	ctxt->sax->internalSubset = on_doctype;
	ctxt->sax->externalSubset = on_doctype;
	ctxt->sax->entityDecl = on_entity;
	ctxt->sax->startElementNs = on_element;
	xmlSetStructuredErrorFunc(st, xml_error);
	doc = xmlCtxtReadMemory(ctxt, data, (int)len, NULL, "UTF-8", XML_OPTIONS);
	xmlSetStructuredErrorFunc(prev_ctx, prev_fn);
	return doc;
}

fb_rc
fb_saml_xml_parse(const char *data, size_t len, xmlDoc **out, struct fb_err *err)
{
	struct parse_state st = { .rc = FB_OK };
	xmlParserCtxtPtr ctxt;
	xmlDoc *doc;
	bool ok;

	if (len > FB_SAML_XML_MAX)
		return FB_ERR_SET(err, FB_ERR_LIMIT,
		    "the XML is %zu bytes, more than the %zu allowed", len, FB_SAML_XML_MAX);
	if (len == 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "the XML is empty");
	/*
	 * Checked here, so the encoding the document declares can be ignored
	 * and no NUL can make libxml2 guess UTF-16 or UCS-4.
	 */
	if (memchr(data, '\0', len) != NULL || !fb_utf8_valid(data, len))
		return FB_ERR_SET(err, FB_ERR_INVALID, "the XML is not UTF-8 text");
	(void)pthread_once(&xml_once, xml_init);
	if ((ctxt = xmlNewParserCtxt()) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	doc = parse_run(ctxt, data, len, &st);
	/* A stopped parse may still hand back a partial tree: the flags decide. */
	ok = doc != NULL && !st.stopped && ctxt->wellFormed && ctxt->nsWellFormed;
	xmlFreeParserCtxt(ctxt);
	if (ok && (doc->intSubset != NULL || doc->extSubset != NULL)) {
		ok = false;
		state_set(&st, FB_ERR_INVALID, "a DOCTYPE is not allowed in SAML messages");
	}
	if (!ok) {
		xmlFreeDoc(doc);
		if (st.rc == FB_OK)
			return FB_ERR_SET(err, FB_ERR_INVALID, "the XML is not well-formed");
		return FB_ERR_SET(err, st.rc, "%s", st.msg);
	}
	*out = doc;
	return FB_OK;
}

bool
fb_saml_xml_is(const xmlNode *n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL && n->ns->href != NULL &&
	    strcmp((const char *)n->ns->href, ns) == 0 && strcmp((const char *)n->name, name) == 0;
}

/* The identity being read, and the running count of Attribute elements. */
struct reader {
	struct fb_saml_identity id;
	size_t nattrs;
	struct fb_err *err;
};

/* All text and CDATA below n, in document order; comments and PIs add nothing. */
static fb_rc
text_collect(const xmlNode *n, struct fb_buf *b)
{
	for (const xmlNode *c = n->children; c != NULL; c = c->next) {
		fb_rc rc = FB_OK;

		if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
		    c->content != NULL)
			rc = fb_buf_append(b, c->content, strlen((const char *)c->content));
		else if (c->type == XML_ELEMENT_NODE)
			rc = text_collect(c, b); /* as deep as the parse allowed, no more */
		if (rc != FB_OK)
			return rc;
	}
	return FB_OK;
}

/* A checked, owned copy of s (len bytes). */
static fb_rc
string_dup(const char *s, size_t len, const char *what, char **out, struct fb_err *err)
{
	*out = NULL;
	if (len > SAML_TEXT_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s is longer than %d bytes", what, SAML_TEXT_MAX);
	/* libxml2 hands out UTF-8; checked anyway, the mapping relies on it. */
	if (!fb_utf8_valid(s, len))
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s is not UTF-8", what);
	if ((*out = fb_strndup(s, len)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	return FB_OK;
}

static fb_rc
text_dup(const xmlNode *n, const char *what, char **out, struct fb_err *err)
{
	struct fb_buf b;
	fb_rc rc;

	fb_buf_init(&b, SAML_TEXT_MAX);
	rc = text_collect(n, &b);
	if (rc == FB_ERR_LIMIT)
		rc = FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s is longer than %d bytes", what, SAML_TEXT_MAX);
	else if (rc != FB_OK)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	else
		rc = string_dup(b.data != NULL ? b.data : "", b.len, what, out, err);
	fb_buf_free(&b);
	return rc;
}

/* The unqualified XML attribute name of n, copied; *out stays NULL when absent. */
static fb_rc
prop_dup(const xmlNode *n, const char *name, const char *what, char **out, struct fb_err *err)
{
	xmlChar *v = xmlGetNoNsProp(n, (const xmlChar *)name);
	fb_rc rc = FB_OK;

	*out = NULL;
	if (v != NULL)
		rc = string_dup((const char *)v, strlen((const char *)v), what, out, err);
	xmlFree(v);
	return rc;
}

/*
 * The one child of parent named ns:name, or NULL. Two are refused: a reader
 * that takes the first while a verifier takes the last is how assertions get
 * confused.
 */
static fb_rc
only_child(const xmlNode *parent, const char *ns, const char *name, const xmlNode **out,
    struct fb_err *err)
{
	*out = NULL;
	for (const xmlNode *c = parent != NULL ? parent->children : NULL; c != NULL; c = c->next) {
		if (!fb_saml_xml_is(c, ns, name))
			continue;
		if (*out != NULL)
			return FB_ERR_SET(err, FB_ERR_INVALID, "more than one %s in %s", name,
			    (const char *)parent->name);
		*out = c;
	}
	return FB_OK;
}

static bool
has_child(const xmlNode *parent, const char *ns, const char *name)
{
	for (const xmlNode *c = parent != NULL ? parent->children : NULL; c != NULL; c = c->next)
		if (fb_saml_xml_is(c, ns, name))
			return true;
	return false;
}

/* Adds values under key, merging in order with what key already holds. */
static fb_rc
add_values(json_t *attrs, const char *key, const json_t *values, struct fb_err *err)
{
	json_t *cur = json_object_get(attrs, key);
	json_t *copy;

	if (cur != NULL && json_array_size(cur) + json_array_size(values) > SAML_VALUES_MAX)
		return FB_ERR_SET(err, FB_ERR_LIMIT, "attribute %s has more than %d values", key,
		    SAML_VALUES_MAX);
	/* Each key its own array, so merging into one never changes another. */
	if ((copy = json_deep_copy(values)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	if (cur == NULL) {
		if (json_object_set_new(attrs, key, copy) != 0)
			return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		return FB_OK;
	}
	if (json_array_extend(cur, copy) != 0) {
		json_decref(copy);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	json_decref(copy);
	return FB_OK;
}

/* Every AttributeValue of a, in order, into the array values. */
static fb_rc
read_values(const xmlNode *a, const char *name, json_t *values, struct fb_err *err)
{
	for (const xmlNode *v = a->children; v != NULL; v = v->next) {
		char *text = NULL;
		fb_rc rc;

		if (!fb_saml_xml_is(v, FB_SAML_NS_ASSERTION, "AttributeValue"))
			continue;
		if (json_array_size(values) >= SAML_VALUES_MAX)
			return FB_ERR_SET(err, FB_ERR_LIMIT, "attribute %s has more than %d values",
			    name, SAML_VALUES_MAX);
		if ((rc = text_dup(v, "a value", &text, err)) != FB_OK) {
			fb_err_prefix(err, "attribute %s", name);
			return rc;
		}
		rc = json_array_append_new(values, json_string(text)) == 0
		    ? FB_OK
		    : FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		free(text);
		if (rc != FB_OK)
			return rc;
	}
	return FB_OK;
}

static fb_rc
read_attribute(const xmlNode *a, struct reader *r)
{
	char *name = NULL, *friendly = NULL;
	json_t *values = NULL;
	fb_rc rc;

	if (++r->nattrs > SAML_ATTRS_MAX)
		return FB_ERR_SET(r->err, FB_ERR_LIMIT, "more than %d attributes", SAML_ATTRS_MAX);
	if ((rc = prop_dup(a, "Name", "an attribute's Name", &name, r->err)) != FB_OK ||
	    (rc = prop_dup(a, "FriendlyName", "an attribute's FriendlyName", &friendly, r->err)) !=
	        FB_OK)
		goto done;
	if (name == NULL || name[0] == '\0') {
		rc = FB_ERR_SET(r->err, FB_ERR_INVALID, "an Attribute has no Name");
		goto done;
	}
	if ((values = json_array()) == NULL) {
		rc = FB_ERR_SET(r->err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = read_values(a, name, values, r->err)) != FB_OK ||
	    (rc = add_values(r->id.attrs, name, values, r->err)) != FB_OK)
		goto done;
	if (friendly != NULL && friendly[0] != '\0' && strcmp(friendly, name) != 0)
		rc = add_values(r->id.attrs, friendly, values, r->err);
done:
	json_decref(values);
	free(name);
	free(friendly);
	return rc;
}

static fb_rc
read_attributes(const xmlNode *as, struct reader *r)
{
	for (const xmlNode *st = as->children; st != NULL; st = st->next) {
		if (!fb_saml_xml_is(st, FB_SAML_NS_ASSERTION, "AttributeStatement"))
			continue;
		for (const xmlNode *a = st->children; a != NULL; a = a->next) {
			fb_rc rc = FB_OK;

			/* Skipping it would make a dry run silently lose an attribute. */
			if (fb_saml_xml_is(a, FB_SAML_NS_ASSERTION, "EncryptedAttribute"))
				return FB_ERR_SET(r->err, FB_ERR_INVALID,
				    "encrypted attributes need the SP key: not supported by this "
				    "reader");
			if (fb_saml_xml_is(a, FB_SAML_NS_ASSERTION, "Attribute"))
				rc = read_attribute(a, r);
			if (rc != FB_OK)
				return rc;
		}
	}
	return FB_OK;
}

/* NameID and its Format; a Subject without a NameID leaves both NULL. */
static fb_rc
read_subject(const xmlNode *as, struct reader *r)
{
	const xmlNode *subject, *nameid;
	fb_rc rc;

	if ((rc = only_child(as, FB_SAML_NS_ASSERTION, "Subject", &subject, r->err)) != FB_OK ||
	    (rc = only_child(subject, FB_SAML_NS_ASSERTION, "NameID", &nameid, r->err)) != FB_OK)
		return rc;
	if (has_child(subject, FB_SAML_NS_ASSERTION, "EncryptedID"))
		return FB_ERR_SET(r->err, FB_ERR_INVALID,
		    "encrypted NameIDs need the SP key: not supported by this reader");
	if (nameid == NULL)
		return FB_OK;
	if ((rc = text_dup(nameid, "the NameID", &r->id.nameid, r->err)) != FB_OK)
		return rc;
	return prop_dup(nameid, "Format", "the NameID's Format", &r->id.nameid_format, r->err);
}

/* SessionIndex of the first AuthnStatement that has one. */
static fb_rc
read_session_index(const xmlNode *as, struct reader *r)
{
	for (const xmlNode *c = as->children; c != NULL; c = c->next) {
		fb_rc rc;

		if (!fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "AuthnStatement"))
			continue;
		rc = prop_dup(c, "SessionIndex", "the SessionIndex", &r->id.session_index, r->err);
		if (rc != FB_OK || r->id.session_index != NULL)
			return rc;
	}
	return FB_OK;
}

/* The Issuer child of n, when there is one, replaces what r holds. */
static fb_rc
read_issuer(const xmlNode *n, struct reader *r)
{
	const xmlNode *issuer;
	char *s = NULL;
	fb_rc rc;

	if ((rc = only_child(n, FB_SAML_NS_ASSERTION, "Issuer", &issuer, r->err)) != FB_OK ||
	    issuer == NULL)
		return rc;
	if ((rc = text_dup(issuer, "the Issuer", &s, r->err)) != FB_OK)
		return rc;
	free(r->id.issuer);
	r->id.issuer = s;
	return FB_OK;
}

static fb_rc
read_assertion(const xmlNode *as, struct reader *r)
{
	fb_rc rc;

	if ((rc = read_issuer(as, r)) != FB_OK || (rc = read_subject(as, r)) != FB_OK ||
	    (rc = read_session_index(as, r)) != FB_OK)
		return rc;
	return read_attributes(as, r);
}

/* For a Response without an Assertion: its StatusCode, when it is not Success. */
static const char *
status_failure(const xmlNode *response)
{
	const xmlNode *status = NULL, *code = NULL;
	const xmlAttr *value;

	for (const xmlNode *c = response->children; c != NULL && status == NULL; c = c->next)
		if (fb_saml_xml_is(c, FB_SAML_NS_PROTOCOL, "Status"))
			status = c;
	for (const xmlNode *c = status ? status->children : NULL; c != NULL && !code; c = c->next)
		if (fb_saml_xml_is(c, FB_SAML_NS_PROTOCOL, "StatusCode"))
			code = c;
	value = code != NULL ? xmlHasNsProp(code, (const xmlChar *)"Value", NULL) : NULL;
	if (value == NULL || value->children == NULL || value->children->content == NULL ||
	    strcmp((const char *)value->children->content,
	        "urn:oasis:names:tc:SAML:2.0:status:Success") == 0)
		return NULL;
	return (const char *)value->children->content;
}

/* The one Assertion of a Response (whose Issuer is kept as the fallback). */
static fb_rc
response_assertion(const xmlNode *root, struct reader *r, const xmlNode **out)
{
	size_t count = 0;
	const char *status;
	fb_rc rc;

	if ((rc = read_issuer(root, r)) != FB_OK)
		return rc;
	for (const xmlNode *c = root->children; c != NULL; c = c->next) {
		if (fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "EncryptedAssertion"))
			return FB_ERR_SET(r->err, FB_ERR_INVALID,
			    "encrypted assertions need the SP key: not supported by this reader");
		if (fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "Assertion")) {
			*out = c;
			count++;
		}
	}
	if (count == 0 && (status = status_failure(root)) != NULL)
		return FB_ERR_SET(r->err, FB_ERR_INVALID,
		    "the Response holds no Assertion; its status is %.200s", status);
	if (count != 1)
		return FB_ERR_SET(r->err, FB_ERR_INVALID,
		    "a Response must hold exactly one Assertion; this one holds %zu", count);
	return FB_OK;
}

static fb_rc
read_document(const xmlDoc *doc, struct reader *r)
{
	const xmlNode *root = xmlDocGetRootElement(doc), *as = NULL;
	fb_rc rc;

	if (root == NULL)
		return FB_ERR_SET(r->err, FB_ERR_INVALID, "the XML has no root element");
	if (fb_saml_xml_is(root, FB_SAML_NS_ASSERTION, "Assertion"))
		return read_assertion(root, r);
	if (!fb_saml_xml_is(root, FB_SAML_NS_PROTOCOL, "Response"))
		return FB_ERR_SET(r->err, FB_ERR_INVALID,
		    "the root element {%.200s}%.100s is not a SAML 2.0 Response or Assertion",
		    root->ns != NULL && root->ns->href != NULL ? (const char *)root->ns->href : "",
		    (const char *)root->name);
	if ((rc = response_assertion(root, r, &as)) != FB_OK)
		return rc;
	return as != NULL ? read_assertion(as, r)
	                  : FB_ERR_SET(r->err, FB_ERR_INTERNAL, "no Assertion found");
}

fb_rc
fb_saml_identity_read(const char *xml, size_t len, struct fb_saml_identity *out, struct fb_err *err)
{
	struct reader r = { .err = err };
	xmlDoc *doc = NULL;
	fb_rc rc;

	if ((rc = fb_saml_xml_parse(xml, len, &doc, err)) != FB_OK)
		return rc;
	if ((r.id.attrs = json_object()) == NULL)
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	else
		rc = read_document(doc, &r);
	xmlFreeDoc(doc);
	if (rc != FB_OK) {
		fb_saml_identity_clear(&r.id);
		return rc;
	}
	*out = r.id;
	return FB_OK;
}

void
fb_saml_identity_clear(struct fb_saml_identity *id)
{
	if (id == NULL)
		return;
	free(id->issuer);
	free(id->nameid);
	free(id->nameid_format);
	free(id->session_index);
	json_decref(id->attrs);
	memset(id, 0, sizeof(*id));
}
