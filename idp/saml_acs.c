/*
 * The assertion consumer service: a SAML 2.0 Response (HTTP-POST binding)
 * checked the way mod_auth_mellon checks it, and more, before anything in it
 * is believed. Lasso processes the message too, as a second opinion, but
 * every check that decides is made here on one hardened parse of the
 * document:
 *
 *   - structure: one Response (the root), one Assertion, no encrypted or
 *     duplicated parts, IDs unique, every Signature where it belongs;
 *   - signatures: the Assertion's always, the Response's when present, each
 *     by a certificate of the IdP's metadata (a key in KeyInfo is never
 *     used), covering exactly its parent element, with SHA-256 or better;
 *     an EncryptedAssertion is decrypted only after the Response's signature
 *     has been checked over it;
 *   - Issuer, Status, Destination, InResponseTo, a bearer
 *     SubjectConfirmation (Recipient, NotOnOrAfter, InResponseTo; others
 *     beside it are ignored),
 *     Conditions (times, Audience, nothing unknown), the AuthnStatement.
 *
 * Counting elements over the whole document is what defeats signature
 * wrapping: a second Assertion or Response anywhere is refused before any
 * signature is looked at.
 */
#include "fb_idp.h"
#include "saml_int.h"
#include "saml_sp_int.h"

#include <lasso/lasso.h>
#include <lasso/id-ff/logout.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmlsec/crypto.h>
#include <xmlsec/app.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmlsec.h>

#define NS_DSIG "http://www.w3.org/2000/09/xmldsig#"
#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define SAML_B64_MAX (FB_SAML_XML_MAX / 3 * 4 + 4096)
#define STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define CM_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"

const char *
fb_saml_failure_name(enum fb_saml_failure f)
{
	static const char *const names[] = { "ok", "bad_response", "signature", "algorithm",
		"issuer", "status", "destination", "in_response_to", "subject_confirmation",
		"conditions", "audience", "unsupported", "unavailable" };

	return (unsigned)f < sizeof(names) / sizeof(names[0]) ? names[f] : "unknown";
}

void
fb_saml_outcome_clear(struct fb_saml_outcome *o)
{
	fb_saml_identity_clear(&o->id);
	free(o->assertion_id);
	memset(o, 0, sizeof(*o));
}

static fb_rc refuse(struct fb_saml_outcome *o, enum fb_saml_failure f, struct fb_err *err,
    const char *fmt, ...) FB_PRINTF(4, 5);

static fb_rc
refuse(struct fb_saml_outcome *o, enum fb_saml_failure f, struct fb_err *err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->failure = f;
	return FB_ERR_SET(err, FB_ERR_INVALID, "saml: %s", msg);
}

/* xs:dateTime in UTC ("2026-11-22T10:00:00Z", fractions allowed); false otherwise. */
bool
fb_saml_time(const char *s, int64_t *out)
{
	struct tm tm;
	const char *p;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return false;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (strcmp(p, "Z") != 0 || (t = timegm(&tm)) == (time_t)-1)
		return false;
	*out = (int64_t)t;
	return true;
}

#define SAML_ID_MAX 256 /* a LogoutRequest ID longer than this is no IdP's */

/* An xs:ID is an NCName: printable ASCII here, so the store takes it as it is. */
static bool
saml_id_ok(const char *id)
{
	size_t len = id ? strlen(id) : 0;

	if (len == 0 || len > SAML_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f)
			return false;
	return true;
}

fb_rc
saml_logout_fresh(const char *id, const char *issue_instant, const char *not_on_or_after,
    int64_t now, int64_t skew, struct fb_saml_logout *out, struct fb_err *err)
{
	int64_t issued, t;

	if (!saml_id_ok(id))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "saml logout: the request's ID is missing, over %d bytes or not printable "
		    "ASCII",
		    SAML_ID_MAX);
	if (!fb_saml_time(issue_instant, &issued))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "saml logout: IssueInstant is missing or not an xs:dateTime in UTC");
	if (fb_time_sub(issued, skew) > now)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "saml logout: IssueInstant %s is in the future", issue_instant);
	/* Without this, a LogoutRequest signed once ends every later session it names. */
	if (fb_time_add(issued, FB_SAML_LOGOUT_MAX_AGE + skew) < now)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "saml logout: IssueInstant %s is more than %ds old", issue_instant,
		    FB_SAML_LOGOUT_MAX_AGE);
	if (not_on_or_after != NULL &&
	    (!fb_saml_time(not_on_or_after, &t) || fb_time_add(t, skew) <= now))
		return FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: the request has expired");
	if ((out->request_id = strdup(id)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	/* One second past the last instant IssueInstant lets it in. */
	out->id_expires = fb_time_add(issued, FB_SAML_LOGOUT_MAX_AGE + skew + 1);
	return FB_OK;
}

static xmlNode *
child(const xmlNode *n, const char *ns, const char *name)
{
	for (xmlNode *c = n ? n->children : NULL; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE && fb_saml_xml_is(c, ns, name))
			return c;
	return NULL;
}

static size_t
count(const xmlNode *n, const char *ns, const char *name)
{
	size_t k = 0;

	for (const xmlNode *c = n; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		k += fb_saml_xml_is(c, ns, name) ? 1 : 0;
		k += count(c->children, ns, name);
	}
	return k;
}

/* An attribute without namespace; NULL when absent. The caller xmlFree()s it. */
static char *
attr(const xmlNode *n, const char *name)
{
	return n ? (char *)xmlGetNoNsProp((xmlNode *)n, (const xmlChar *)name) : NULL;
}

/* All the text inside n (comments cannot split it); the caller xmlFree()s it. */
static char *
text(const xmlNode *n)
{
	return n ? (char *)xmlNodeGetContent(n) : NULL;
}

static bool
attr_is(const xmlNode *n, const char *name, const char *want)
{
	char *v = attr(n, name);
	bool eq = v != NULL && want != NULL && strcmp(v, want) == 0;

	xmlFree(v);
	return eq;
}

/* Every element with an ID: unique across the document, and registered for xmlsec. */
static bool
register_ids(xmlDoc *doc, xmlNode *n, char **dup)
{
	for (xmlNode *c = n; c != NULL; c = c->next) {
		xmlAttr *a;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if ((a = xmlHasNsProp(c, (const xmlChar *)"ID", NULL)) != NULL) {
			xmlChar *id = xmlNodeListGetString(doc, a->children, 1);
			if (id == NULL || xmlGetID(doc, id) != NULL ||
			    xmlAddID(NULL, doc, id, a) == NULL) {
				*dup = id ? strndup((const char *)id, 128) : NULL;
				xmlFree(id);
				return false;
			}
			xmlFree(id);
		}
		if (!register_ids(doc, c->children, dup))
			return false;
	}
	return true;
}

static bool
strong_alg(const char *alg, bool allow_sha1, bool digest)
{
	static const char *const sigs[] = { "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" };
	static const char *const digests[] = { "http://www.w3.org/2001/04/xmlenc#sha256",
		"http://www.w3.org/2001/04/xmldsig-more#sha384",
		"http://www.w3.org/2001/04/xmlenc#sha512" };
	const char *const *v = digest ? digests : sigs;
	size_t n = digest ? 3 : 6;

	if (alg == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(alg, v[i]) == 0)
			return true;
	return allow_sha1 &&
	    strcmp(alg,
	        digest ? "http://www.w3.org/2000/09/xmldsig#sha1"
	               : "http://www.w3.org/2000/09/xmldsig#rsa-sha1") == 0;
}

/* Every SignatureMethod and DigestMethod in the document is strong enough. */
static const char *
weak_alg(const xmlNode *n, bool allow_sha1)
{
	for (const xmlNode *c = n; c != NULL; c = c->next) {
		const char *bad;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (fb_saml_xml_is(c, NS_DSIG, "SignatureMethod") ||
		    fb_saml_xml_is(c, NS_DSIG, "DigestMethod")) {
			char *alg = attr(c, "Algorithm");
			bool ok =
			    strong_alg(alg, allow_sha1, fb_saml_xml_is(c, NS_DSIG, "DigestMethod"));
			xmlFree(alg);
			if (!ok)
				return fb_saml_xml_is(c, NS_DSIG, "DigestMethod")
				    ? "DigestMethod"
				    : "SignatureMethod";
		}
		if ((bad = weak_alg(c->children, allow_sha1)) != NULL)
			return bad;
	}
	return NULL;
}

/*
 * The Signature that is a child of el covers exactly el: one Reference,
 * URI "#<el's ID>", transforms enveloped-signature and exclusive c14n only;
 * and it verifies with one of the IdP's certificates.
 */
static bool
signature_ok(const struct fb_saml_sp *sp, const struct saml_idp *idp, xmlNode *el, xmlNode *sig,
    const char **why)
{
	xmlNode *si = child(sig, NS_DSIG, "SignedInfo"), *ref = child(si, NS_DSIG, "Reference");
	xmlSecDSigCtxPtr ctx;
	char *id = attr(el, "ID"), *uri = attr(ref, "URI");
	bool ok = false;

	*why = "its Reference is not to its own element";
	if (si == NULL || ref == NULL || count(si->children, NS_DSIG, "Reference") != 1 ||
	    id == NULL || uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0) {
		xmlFree(id);
		xmlFree(uri);
		return false;
	}
	xmlFree(id);
	xmlFree(uri);
	*why = "it does not verify with a certificate of the IdP's metadata";
	for (size_t i = 0; i < idp->n_keys && !ok; i++) {
		if ((ctx = xmlSecDSigCtxCreate(NULL)) == NULL)
			return false;
		/* The key is set: xmlsec then never takes one from KeyInfo. */
		ctx->signKey = xmlSecKeyDuplicate(idp->keys[i]);
		ctx->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
		if (ctx->signKey != NULL &&
		    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId) >= 0 &&
		    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformExclC14NId) >= 0 &&
		    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha256Id) >= 0 &&
		    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha384Id) >= 0 &&
		    xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha512Id) >= 0 &&
		    (!sp->p->allow_sha1 ||
		        xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha1Id) >= 0) &&
		    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformExclC14NId) >= 0 &&
		    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha256Id) >= 0 &&
		    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha384Id) >= 0 &&
		    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha512Id) >= 0 &&
		    xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha256Id) >= 0 &&
		    (!sp->p->allow_sha1 ||
		        xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformRsaSha1Id) >=
		            0) &&
		    xmlSecDSigCtxVerify(ctx, sig) >= 0 && ctx->status == xmlSecDSigStatusSucceeded)
			ok = true;
		xmlSecDSigCtxDestroy(ctx);
	}
	return ok;
}

/* Times: not before (minus skew) and strictly before not-on-or-after (plus skew). */
static const char *
window(const xmlNode *n, int64_t now, int64_t skew, bool need_end, int64_t *end)
{
	char *nb = attr(n, "NotBefore"), *noa = attr(n, "NotOnOrAfter");
	int64_t t;
	const char *why = NULL;

	if (nb != NULL && (!fb_saml_time(nb, &t) || fb_time_sub(t, skew) > now))
		why = fb_saml_time(nb, &t) ? "is not valid yet (NotBefore)" : "has a bad NotBefore";
	else if (noa == NULL && need_end)
		why = "has no NotOnOrAfter";
	else if (noa != NULL && (!fb_saml_time(noa, &t) || fb_time_add(t, skew) <= now))
		why =
		    fb_saml_time(noa, &t) ? "has expired (NotOnOrAfter)" : "has a bad NotOnOrAfter";
	else if (noa != NULL && end != NULL && (*end == 0 || t < *end))
		*end = t;
	xmlFree(nb);
	xmlFree(noa);
	return why;
}

static fb_rc
check_subject(const struct fb_saml_sp *sp, xmlNode *assertion, const char *request_id, int64_t now,
    int64_t skew, struct fb_saml_outcome *out, struct fb_err *err)
{
	xmlNode *subject = child(assertion, FB_SAML_NS_ASSERTION, "Subject");
	const char *last = "no SubjectConfirmation with Method bearer";

	for (xmlNode *c = subject ? subject->children : NULL; c != NULL; c = c->next) {
		xmlNode *d;
		char *irt;
		const char *why;
		if (c->type != XML_ELEMENT_NODE ||
		    !fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "SubjectConfirmation") ||
		    !attr_is(c, "Method", CM_BEARER))
			continue;
		if ((d = child(c, FB_SAML_NS_ASSERTION, "SubjectConfirmationData")) == NULL) {
			last = "the bearer SubjectConfirmation has no SubjectConfirmationData";
			continue;
		}
		if (!attr_is(d, "Recipient", sp->acs_url)) {
			last = "SubjectConfirmationData Recipient is not this ACS";
			continue;
		}
		if ((why = window(d, now, skew, true, &out->assertion_expires)) != NULL) {
			last = why;
			continue;
		}
		irt = attr(d, "InResponseTo");
		if (request_id != NULL ? irt == NULL || strcmp(irt, request_id) != 0
		                       : irt != NULL) {
			last = "SubjectConfirmationData InResponseTo is not the request's";
			xmlFree(irt);
			continue;
		}
		xmlFree(irt);
		return FB_OK;
	}
	if (strstr(last, "NotBefore") || strstr(last, "NotOnOrAfter") || strstr(last, "expired"))
		return refuse(
		    out, FB_SAML_SUBJECT_CONFIRMATION, err, "SubjectConfirmationData %s", last);
	return refuse(out, FB_SAML_SUBJECT_CONFIRMATION, err, "%s", last);
}

static fb_rc
check_conditions(const struct fb_saml_sp *sp, xmlNode *assertion, int64_t now, int64_t skew,
    struct fb_saml_outcome *out, struct fb_err *err)
{
	xmlNode *cond = child(assertion, FB_SAML_NS_ASSERTION, "Conditions");
	size_t restrictions = 0;
	const char *why;

	if (cond == NULL)
		return refuse(out, FB_SAML_CONDITIONS, err, "the Assertion has no Conditions");
	if ((why = window(cond, now, skew, false, &out->assertion_expires)) != NULL)
		return refuse(out, FB_SAML_CONDITIONS, err, "Conditions %s", why);
	for (xmlNode *c = cond->children; c != NULL; c = c->next) {
		bool ours = false;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "OneTimeUse") ||
		    fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "ProxyRestriction"))
			continue; /* every assertion is used once here anyway; no proxying */
		if (!fb_saml_xml_is(c, FB_SAML_NS_ASSERTION, "AudienceRestriction"))
			return refuse(out, FB_SAML_CONDITIONS, err, "unknown condition <%s>",
			    (const char *)c->name);
		restrictions++;
		/* Each AudienceRestriction must name us (SAML core 2.5.1.4). */
		for (xmlNode *a = c->children; a != NULL && !ours; a = a->next) {
			char *v;
			if (a->type != XML_ELEMENT_NODE ||
			    !fb_saml_xml_is(a, FB_SAML_NS_ASSERTION, "Audience"))
				continue;
			v = text(a);
			ours = v != NULL && strcmp(v, sp->entity_id) == 0;
			xmlFree(v);
		}
		if (!ours)
			return refuse(
			    out, FB_SAML_AUDIENCE, err, "Audience is not %s", sp->entity_id);
	}
	if (restrictions == 0)
		return refuse(out, FB_SAML_AUDIENCE, err, "no AudienceRestriction");
	return FB_OK;
}

/* The AuthnStatement: present; its SessionNotOnOrAfter caps the session. */
static fb_rc
check_authn(
    xmlNode *assertion, int64_t now, int64_t skew, struct fb_saml_outcome *out, struct fb_err *err)
{
	xmlNode *st = child(assertion, FB_SAML_NS_ASSERTION, "AuthnStatement");
	char *snoa;
	int64_t t;

	if (st == NULL)
		return refuse(
		    out, FB_SAML_BAD_RESPONSE, err, "the Assertion has no AuthnStatement");
	if ((snoa = attr(st, "SessionNotOnOrAfter")) != NULL) {
		bool ok = fb_saml_time(snoa, &t) && fb_time_add(t, skew) > now;
		xmlFree(snoa);
		if (!ok)
			return refuse(out, FB_SAML_CONDITIONS, err,
			    "AuthnStatement SessionNotOnOrAfter is bad or past");
		out->session_not_on_or_after = t;
	}
	return FB_OK;
}

static bool
enc_alg_ok(const xmlNode *method, bool key_transport)
{
	static const char *const data[] = { "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
		"http://www.w3.org/2001/04/xmlenc#aes192-cbc",
		"http://www.w3.org/2001/04/xmlenc#aes256-cbc",
		"http://www.w3.org/2009/xmlenc11#aes128-gcm",
		"http://www.w3.org/2009/xmlenc11#aes256-gcm" };
	/* RSA 1.5 key transport is refused: it is open to Bleichenbacher's attack. */
	static const char *const transport[] = { "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
		"http://www.w3.org/2009/xmlenc11#rsa-oaep" };
	const char *const *v = key_transport ? transport : data;
	size_t n = key_transport ? 2 : 5;
	char *alg = attr(method, "Algorithm");
	bool ok = false;

	for (size_t i = 0; alg != NULL && i < n && !ok; i++)
		ok = strcmp(alg, v[i]) == 0;
	xmlFree(alg);
	return ok;
}

/*
 * Replaces the EncryptedAssertion by the Assertion it holds, decrypted with
 * the SP's key: the EncryptedKey must be inside the EncryptedData's KeyInfo,
 * with RSA-OAEP, and the data AES (CBC or GCM).
 */
static fb_rc
decrypt_assertion(
    const struct fb_saml_sp *sp, xmlNode *enc, struct fb_saml_outcome *out, struct fb_err *err)
{
	xmlNode *ed = child(enc, NS_XENC, "EncryptedData"), *ek, *plain;
	xmlSecKeysMngrPtr mngr = NULL;
	xmlSecEncCtxPtr ctx = NULL;
	xmlSecKeyPtr key = NULL;
	fb_rc rc = FB_OK;

	ek = child(child(ed, NS_DSIG, "KeyInfo"), NS_XENC, "EncryptedKey");
	if (ed == NULL || ek == NULL || count(enc->children, NS_XENC, "EncryptedData") != 1 ||
	    count(enc->children, NS_XENC, "EncryptedKey") != 1)
		return refuse(out, FB_SAML_UNSUPPORTED, err,
		    "an EncryptedAssertion must hold one EncryptedData with its EncryptedKey in "
		    "its KeyInfo");
	if (!enc_alg_ok(child(ed, NS_XENC, "EncryptionMethod"), false) ||
	    !enc_alg_ok(child(ek, NS_XENC, "EncryptionMethod"), true))
		return refuse(out, FB_SAML_ALGORITHM, err,
		    "the assertion is encrypted with an algorithm not accepted (AES and RSA-OAEP "
		    "only)");
	if ((mngr = xmlSecKeysMngrCreate()) == NULL ||
	    xmlSecCryptoAppDefaultKeysMngrInit(mngr) < 0 ||
	    (key = xmlSecKeyDuplicate(sp->sp_key)) == NULL ||
	    xmlSecCryptoAppDefaultKeysMngrAdoptKey(mngr, key) < 0) {
		xmlSecKeyDestroy(key);
		rc = FB_ERR_SET(err, FB_ERR_CRYPTO, "saml: cannot set up decryption");
		goto done;
	}
	if ((ctx = xmlSecEncCtxCreate(mngr)) == NULL || xmlSecEncCtxDecrypt(ctx, ed) < 0 ||
	    !ctx->resultReplaced) {
		rc = refuse(out, FB_SAML_BAD_RESPONSE, err,
		    "the EncryptedAssertion does not decrypt with this SP's key");
		goto done;
	}
	/* What replaced EncryptedData must be exactly one Assertion. */
	plain = child(enc, FB_SAML_NS_ASSERTION, "Assertion");
	if (plain == NULL || count(enc->children, FB_SAML_NS_ASSERTION, "Assertion") != 1 ||
	    count(plain->children, FB_SAML_NS_ASSERTION, "Assertion") != 0) {
		rc = refuse(out, FB_SAML_BAD_RESPONSE, err,
		    "the EncryptedAssertion does not hold exactly one Assertion");
		goto done;
	}
	xmlUnlinkNode(plain);
	(void)xmlReplaceNode(enc, plain);
	xmlFreeNode(enc);
done:
	if (ctx != NULL)
		xmlSecEncCtxDestroy(ctx);
	if (mngr != NULL)
		xmlSecKeysMngrDestroy(mngr);
	return rc;
}

/*
 * A Response holding an EncryptedAssertion: its Signature, when there is
 * one, was made over the EncryptedAssertion, so it is checked before
 * decryption (SAML Core 6.2) and the same way as below: IDs unique, no
 * Signature but the Response's, strong algorithms, a Reference to the root
 * and a key of the IdP's metadata. Decryption then only replaces content
 * that signature covered.
 */
static fb_rc
encrypted_response_signature(const struct fb_saml_sp *sp, const struct saml_idp *idp, xmlDoc *doc,
    xmlNode *root, struct fb_saml_outcome *out, struct fb_err *err)
{
	xmlNode *sig = child(root, NS_DSIG, "Signature");
	char *dup = NULL;
	const char *why, *bad;

	if (!register_ids(doc, root, &dup)) {
		fb_rc rc = refuse(
		    out, FB_SAML_BAD_RESPONSE, err, "ID \"%s\" appears twice", dup ? dup : "?");
		free(dup);
		return rc;
	}
	if (count(root, NS_DSIG, "Signature") != (size_t)(sig != NULL))
		return refuse(out, FB_SAML_SIGNATURE, err,
		    "a Signature outside the Response and Assertion elements");
	if ((bad = weak_alg(root, sp->p->allow_sha1)) != NULL)
		return refuse(out, FB_SAML_ALGORITHM, err,
		    "a %s weaker than SHA-256 (allow_sha1 is not set for this IdP)", bad);
	if (sig != NULL && !signature_ok(sp, idp, root, sig, &why))
		return refuse(out, FB_SAML_SIGNATURE, err, "the Response's signature: %s", why);
	return FB_OK;
}

/* What a refusal by Lasso is about (lasso/errors.h), named as fedbridge's own checks name it. */
static enum fb_saml_failure
lasso_failure(int rc)
{
	switch (rc) {
	case LASSO_PROFILE_ERROR_STATUS_NOT_SUCCESS:
	case LASSO_PROFILE_ERROR_MISSING_STATUS_CODE:
	case LASSO_PROFILE_ERROR_REQUEST_DENIED:
	case LASSO_LOGIN_ERROR_STATUS_NOT_SUCCESS:
	case LASSO_LOGIN_ERROR_REQUEST_DENIED:
	case LASSO_LOGIN_ERROR_FEDERATION_NOT_FOUND:
	case LASSO_LOGIN_ERROR_UNKNOWN_PRINCIPAL:
		return FB_SAML_STATUS;
	case LASSO_DS_ERROR_SIGNATURE_NOT_FOUND:
	case LASSO_DS_ERROR_INVALID_SIGNATURE:
	case LASSO_DS_ERROR_SIGNATURE_VERIFICATION_FAILED:
	case LASSO_PROFILE_ERROR_CANNOT_VERIFY_SIGNATURE:
	case LASSO_LOGIN_ERROR_INVALID_SIGNATURE:
		return FB_SAML_SIGNATURE;
	case LASSO_DS_ERROR_INVALID_SIGALG:
		return FB_SAML_ALGORITHM;
	case LASSO_PROFILE_ERROR_MISSING_ISSUER:
	case LASSO_PROFILE_ERROR_INVALID_ISSUER:
	case LASSO_PROFILE_ERROR_UNKNOWN_PROVIDER:
	case LASSO_SERVER_ERROR_PROVIDER_NOT_FOUND:
		return FB_SAML_ISSUER;
	case LASSO_PROFILE_ERROR_MISSING_SUBJECT:
	case LASSO_LOGIN_ERROR_ASSERTION_DOES_NOT_MATCH_REQUEST_ID:
		return FB_SAML_SUBJECT_CONFIRMATION;
	default: /* not a Response Lasso can read: decryption, structure, schema */
		return FB_SAML_BAD_RESPONSE;
	}
}

/*
 * Lasso's view: it must accept the message too (signatures against the
 * metadata, status). It is given the message as the IdP sent it: Lasso
 * checks the Response's signature before it decrypts, as done here.
 */
static fb_rc
lasso_opinion(const struct saml_idp *idp, const char *b64, const xmlNode *assertion,
    struct fb_saml_outcome *out, struct fb_err *err)
{
	LassoLogin *login = lasso_login_new(idp->server);
	const xmlNode *subject = child(assertion, FB_SAML_NS_ASSERTION, "Subject");
	int rc, sig_status;

	if (login == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	rc = lasso_login_process_authn_response_msg(login, (gchar *)b64);
	sig_status = LASSO_PROFILE(login)->signature_status;
	lasso_login_destroy(login);
	/*
	 * Lasso's Subject holds one SubjectConfirmation: with more (valid SAML,
	 * SAML Core 2.4.1) it reads no Subject at all. check_subject() has found
	 * the bearer one that passes; Lasso's verdict on the signatures stands.
	 */
	if (rc == LASSO_PROFILE_ERROR_MISSING_SUBJECT && sig_status == 0 && subject != NULL &&
	    count(subject->children, FB_SAML_NS_ASSERTION, "SubjectConfirmation") > 1)
		return FB_OK;
	if (rc != 0)
		return refuse(out, lasso_failure(rc), err, "Lasso refuses the response: %s",
		    lasso_strerror(rc));
	return FB_OK;
}

static fb_rc
decode(const char *b64, char **xml, size_t *len)
{
	size_t n = strlen(b64), k = 0;
	char *clean = malloc(n + 1);
	unsigned char *raw;
	int dec;

	*xml = NULL;
	if (clean == NULL)
		return FB_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (b64[i] != '\r' && b64[i] != '\n' && b64[i] != ' ' && b64[i] != '\t')
			clean[k++] = b64[i];
	if (k == 0 || k % 4 != 0 || (raw = malloc(k / 4 * 3 + 1)) == NULL) {
		free(clean);
		return FB_ERR_INVALID;
	}
	dec = EVP_DecodeBlock(raw, (const unsigned char *)clean, (int)k);
	if (dec < 0) {
		free(clean);
		free(raw);
		return FB_ERR_INVALID;
	}
	*len = (size_t)dec - (clean[k - 1] == '=') - (clean[k - 2] == '=');
	free(clean);
	raw[*len] = '\0';
	*xml = (char *)raw;
	return FB_OK;
}

fb_rc
fb_saml_sp_acs(const struct fb_saml_sp *sp, const char *saml_response, const char *request_id,
    int64_t now, int64_t skew, struct fb_saml_outcome *out, struct fb_err *err)
{
	xmlDoc *doc = NULL;
	xmlNode *root, *assertion, *sig;
	struct saml_idp *idp = NULL;
	char *xml = NULL, *v = NULL, *dup = NULL;
	const char *why, *bad;
	size_t len = 0;
	bool response_verified = false;
	fb_rc rc;

	memset(out, 0, sizeof(*out));
	if (saml_response == NULL || strlen(saml_response) > SAML_B64_MAX)
		return refuse(out, FB_SAML_BAD_RESPONSE, err, "SAMLResponse missing or too large");
	idp = saml_idp_get(sp);
	if (idp == NULL)
		return refuse(
		    out, FB_SAML_UNAVAILABLE, err, "the IdP's metadata has not been fetched yet");
	if (idp->valid_until != 0 && idp->valid_until <= now) {
		saml_idp_put(idp);
		return refuse(out, FB_SAML_UNAVAILABLE, err,
		    "the IdP's metadata has expired (validUntil) and no fresh one could be "
		    "fetched");
	}
	if ((rc = decode(saml_response, &xml, &len)) != FB_OK) {
		saml_idp_put(idp);
		return rc == FB_ERR_NOMEM
		    ? FB_ERR_SET(err, rc, "out of memory")
		    : refuse(out, FB_SAML_BAD_RESPONSE, err, "SAMLResponse is not base64");
	}
	if ((rc = fb_saml_xml_parse(xml, len, &doc, err)) != FB_OK) {
		out->failure = FB_SAML_BAD_RESPONSE;
		goto done;
	}
	root = xmlDocGetRootElement(doc);
	/* Structure first: anything doubled anywhere is refused before signatures count. */
	if (root == NULL || !fb_saml_xml_is(root, FB_SAML_NS_PROTOCOL, "Response")) {
		rc = refuse(out, FB_SAML_BAD_RESPONSE, err, "the document is not a samlp:Response");
		goto done;
	}
	/*
	 * One assertion, in clear or encrypted. Encrypted: the Response's signature
	 * first, then decryption, then the decrypted document is read again and
	 * checked below like a clear one (the identity reader reads it too).
	 */
	if (count(root, FB_SAML_NS_PROTOCOL, "Response") == 1 &&
	    count(root, FB_SAML_NS_ASSERTION, "Assertion") == 0 &&
	    count(root, FB_SAML_NS_ASSERTION, "EncryptedAssertion") == 1 &&
	    child(root, FB_SAML_NS_ASSERTION, "EncryptedAssertion") != NULL) {
		xmlChar *dump = NULL;
		int n = 0;

		if ((rc = encrypted_response_signature(sp, idp, doc, root, out, err)) != FB_OK ||
		    (rc = decrypt_assertion(
		         sp, child(root, FB_SAML_NS_ASSERTION, "EncryptedAssertion"), out, err)) !=
		        FB_OK)
			goto done;
		response_verified = child(root, NS_DSIG, "Signature") != NULL;
		xmlDocDumpMemory(doc, &dump, &n);
		free(xml);
		xml = dump != NULL && n > 0 ? strndup((const char *)dump, (size_t)n) : NULL;
		len = xml != NULL ? (size_t)n : 0;
		xmlFree(dump);
		xmlFreeDoc(doc);
		doc = NULL;
		if (xml == NULL) {
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			goto done;
		}
		if ((rc = fb_saml_xml_parse(xml, len, &doc, err)) != FB_OK) {
			out->failure = FB_SAML_BAD_RESPONSE;
			goto done;
		}
		root = xmlDocGetRootElement(doc);
	}
	if (count(root, FB_SAML_NS_PROTOCOL, "Response") != 1 ||
	    count(root, FB_SAML_NS_ASSERTION, "Assertion") != 1 ||
	    (assertion = child(root, FB_SAML_NS_ASSERTION, "Assertion")) == NULL) {
		rc = refuse(out, FB_SAML_BAD_RESPONSE, err,
		    "a Response must hold exactly one Assertion, as its child, and nothing else "
		    "may be a Response or an Assertion");
		goto done;
	}
	if (count(root, FB_SAML_NS_ASSERTION, "EncryptedAssertion") != 0 ||
	    count(root, FB_SAML_NS_ASSERTION, "EncryptedID") != 0 ||
	    count(root, FB_SAML_NS_ASSERTION, "EncryptedAttribute") != 0) {
		rc = refuse(out, FB_SAML_UNSUPPORTED, err,
		    "encrypted NameIDs and attributes are not accepted (an encrypted assertion "
		    "is)");
		goto done;
	}
	if (!register_ids(doc, root, &dup)) {
		rc = refuse(
		    out, FB_SAML_BAD_RESPONSE, err, "ID \"%s\" appears twice", dup ? dup : "?");
		free(dup);
		goto done;
	}
	/* Signatures only where they belong: one on the Assertion, at most one on the Response. */
	if (count(root, NS_DSIG, "Signature") !=
	    (size_t)(child(root, NS_DSIG, "Signature") != NULL) +
	        (size_t)(child(assertion, NS_DSIG, "Signature") != NULL)) {
		rc = refuse(out, FB_SAML_SIGNATURE, err,
		    "a Signature outside the Response and Assertion elements");
		goto done;
	}
	if ((bad = weak_alg(root, sp->p->allow_sha1)) != NULL) {
		rc = refuse(out, FB_SAML_ALGORITHM, err,
		    "a %s weaker than SHA-256 (allow_sha1 is not set for this IdP)", bad);
		goto done;
	}
	if ((sig = child(assertion, NS_DSIG, "Signature")) == NULL) {
		rc = refuse(out, FB_SAML_SIGNATURE, err, "the Assertion is not signed");
		goto done;
	}
	if (!signature_ok(sp, idp, assertion, sig, &why)) {
		rc = refuse(out, FB_SAML_SIGNATURE, err, "the Assertion's signature: %s", why);
		goto done;
	}
	/* An encrypted response's was verified before decryption: its digest is of the
	 * EncryptedAssertion, which is no longer in this document. */
	if ((sig = child(root, NS_DSIG, "Signature")) != NULL && !response_verified &&
	    !signature_ok(sp, idp, root, sig, &why)) {
		rc = refuse(out, FB_SAML_SIGNATURE, err, "the Response's signature: %s", why);
		goto done;
	}

	/* What the signed elements say. */
	v = text(child(assertion, FB_SAML_NS_ASSERTION, "Issuer"));
	if (v == NULL || strcmp(v, sp->idp_entity_id) != 0) {
		rc = refuse(out, FB_SAML_ISSUER, err, "the Assertion's Issuer is not %s",
		    sp->idp_entity_id);
		goto done;
	}
	xmlFree(v);
	v = NULL;
	if (child(root, FB_SAML_NS_ASSERTION, "Issuer") != NULL) {
		v = text(child(root, FB_SAML_NS_ASSERTION, "Issuer"));
		if (v == NULL || strcmp(v, sp->idp_entity_id) != 0) {
			rc = refuse(out, FB_SAML_ISSUER, err, "the Response's Issuer is not %s",
			    sp->idp_entity_id);
			goto done;
		}
		xmlFree(v);
		v = NULL;
	}
	if (!attr_is(child(child(root, FB_SAML_NS_PROTOCOL, "Status"), FB_SAML_NS_PROTOCOL,
	                 "StatusCode"),
	        "Value", STATUS_SUCCESS)) {
		rc = refuse(out, FB_SAML_STATUS, err, "the IdP did not answer Success");
		goto done;
	}
	if (!attr_is(root, "Destination", sp->acs_url)) {
		rc = refuse(
		    out, FB_SAML_DESTINATION, err, "Destination is not this ACS (%s)", sp->acs_url);
		goto done;
	}
	v = attr(root, "InResponseTo");
	if (request_id != NULL ? v == NULL || strcmp(v, request_id) != 0 : v != NULL) {
		rc = refuse(out, FB_SAML_IN_RESPONSE_TO, err, "%s",
		    request_id == NULL ? "InResponseTo names a request, but no login is in progress"
		        : v == NULL    ? "no InResponseTo (an unsolicited response)"
		                       : "InResponseTo is not this login's request");
		goto done;
	}
	if ((rc = check_subject(sp, assertion, request_id, now, skew, out, err)) != FB_OK ||
	    (rc = check_conditions(sp, assertion, now, skew, out, err)) != FB_OK ||
	    (rc = check_authn(assertion, now, skew, out, err)) != FB_OK ||
	    (rc = lasso_opinion(idp, saml_response, assertion, out, err)) != FB_OK)
		goto done;
	if ((out->assertion_id = attr(assertion, "ID")) == NULL) {
		rc = refuse(out, FB_SAML_BAD_RESPONSE, err, "the Assertion has no ID");
		goto done;
	}
	/* The identity, read from the same bytes (text joined across comments). */
	if ((rc = fb_saml_identity_read(xml, len, &out->id, err)) != FB_OK ||
	    out->id.nameid == NULL || out->id.nameid[0] == '\0') {
		if (rc == FB_OK)
			rc = refuse(out, FB_SAML_BAD_RESPONSE, err, "the Subject has %s",
			    out->id.nameid == NULL ? "no NameID" : "an empty NameID");
		else
			out->failure = FB_SAML_BAD_RESPONSE;
		goto done;
	}
	out->failure = FB_SAML_OK;
done:
	xmlFree(v);
	if (rc != FB_OK) {
		char *id = out->assertion_id;
		enum fb_saml_failure f = out->failure;
		out->assertion_id = NULL;
		xmlFree(id);
		fb_saml_identity_clear(&out->id);
		out->failure = f == FB_SAML_OK ? FB_SAML_BAD_RESPONSE : f;
	} else {
		/* xmlFree'd memory into a malloc'd field: copy. */
		char *id = strdup(out->assertion_id);
		xmlFree(out->assertion_id);
		out->assertion_id = id;
		if (id == NULL)
			rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	}
	xmlFreeDoc(doc);
	free(xml);
	saml_idp_put(idp);
	return rc;
}

/* ---- single logout over SOAP (the IdP's back channel) ---- */

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"

fb_rc
fb_saml_sp_logout_soap(const struct fb_saml_sp *sp, const char *body, size_t len, int64_t now,
    int64_t skew, struct fb_saml_logout *out, char **response, struct fb_err *err)
{
	struct saml_idp *idp = saml_idp_get(sp);
	LassoLogout *logout = NULL;
	xmlDoc *doc = NULL;
	xmlNode *env, *req, *sig, *nid;
	char *v = NULL, *dup = NULL, *copy = NULL;
	const char *why, *bad;
	int lrc;
	fb_rc rc = FB_OK;

	memset(out, 0, sizeof(*out));
	*response = NULL;
	if (idp == NULL)
		return FB_ERR_SET(err, FB_ERR_IO, "the IdP's metadata has not been fetched yet");
	if ((rc = fb_saml_xml_parse(body, len, &doc, err)) != FB_OK)
		goto done;
	env = xmlDocGetRootElement(doc);
	req = child(child(env, NS_SOAP, "Body"), FB_SAML_NS_PROTOCOL, "LogoutRequest");
	if (env == NULL || !fb_saml_xml_is(env, NS_SOAP, "Envelope") || req == NULL ||
	    count(env, FB_SAML_NS_PROTOCOL, "LogoutRequest") != 1) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "saml logout: not a SOAP envelope with one "
		    "LogoutRequest");
		goto done;
	}
	if (!register_ids(doc, env, &dup)) {
		free(dup);
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: an ID appears twice");
		goto done;
	}
	/* Signed like an assertion: by a metadata key, over exactly the request. */
	if ((bad = weak_alg(env, sp->p->allow_sha1)) != NULL ||
	    count(env, NS_DSIG, "Signature") != 1 ||
	    (sig = child(req, NS_DSIG, "Signature")) == NULL ||
	    !signature_ok(sp, idp, req, sig, &why)) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: the LogoutRequest %s",
		    bad ? "uses an algorithm weaker than SHA-256"
		        : count(env, NS_DSIG, "Signature") == 0
		        ? "is not signed"
		        : "is not signed by a key of the IdP's metadata");
		goto done;
	}
	v = text(child(req, FB_SAML_NS_ASSERTION, "Issuer"));
	if (v == NULL || strcmp(v, sp->idp_entity_id) != 0) {
		rc = FB_ERR_SET(
		    err, FB_ERR_INVALID, "saml logout: Issuer is not %s", sp->idp_entity_id);
		goto done;
	}
	xmlFree(v);
	v = attr(req, "Destination");
	if (v != NULL && strcmp(v, sp->slo_url) != 0) {
		rc = FB_ERR_SET(
		    err, FB_ERR_INVALID, "saml logout: Destination is not %s", sp->slo_url);
		goto done;
	}
	xmlFree(v);
	v = NULL;
	{
		char *id = attr(req, "ID"), *issued = attr(req, "IssueInstant"),
		     *noa = attr(req, "NotOnOrAfter");
		rc = saml_logout_fresh(id, issued, noa, now, skew, out, err);
		xmlFree(id);
		xmlFree(issued);
		xmlFree(noa);
		if (rc != FB_OK)
			goto done;
	}
	nid = child(req, FB_SAML_NS_ASSERTION, "NameID");
	if (nid == NULL || (v = text(nid)) == NULL || v[0] == '\0' ||
	    (out->nameid = strdup(v)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: no NameID");
		goto done;
	}
	xmlFree(v);
	v = text(child(req, FB_SAML_NS_PROTOCOL, "SessionIndex"));
	if (v != NULL && (out->session_index = strdup(v)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	/* Lasso builds the SOAP LogoutResponse (and checks the message as well). */
	if ((logout = lasso_logout_new(idp->server)) == NULL ||
	    (copy = strndup(body, len)) == NULL) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((lrc = lasso_logout_process_request_msg(logout, copy)) != 0) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: Lasso refuses the request: %s",
		    lasso_strerror(lrc));
		goto done;
	}
	lrc = lasso_logout_validate_request(logout);
	if (lrc != 0 && lrc != LASSO_PROFILE_ERROR_SESSION_NOT_FOUND &&
	    lrc != LASSO_PROFILE_ERROR_IDENTITY_NOT_FOUND) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "saml logout: %s", lasso_strerror(lrc));
		goto done;
	}
	saml_logout_response_success(logout);
	if (lasso_logout_build_response_msg(logout) != 0 ||
	    LASSO_PROFILE(logout)->msg_body == NULL ||
	    (*response = strdup(LASSO_PROFILE(logout)->msg_body)) == NULL)
		rc =
		    FB_ERR_SET(err, FB_ERR_INTERNAL, "saml logout: cannot build the SOAP response");
done:
	xmlFree(v);
	free(copy);
	if (logout != NULL)
		lasso_logout_destroy(logout);
	xmlFreeDoc(doc);
	saml_idp_put(idp);
	if (rc != FB_OK) {
		fb_saml_logout_clear(out);
		free(*response);
		*response = NULL;
	}
	return rc;
}
