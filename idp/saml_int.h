/*
 * Private to idp/: the hardened XML parse under every SAML message fedbridge
 * reads, shared by the identity reader (saml_xml.c) and the SAML login. It
 * keeps libxml2 out of fb_idp.h.
 */
#ifndef FB_SAML_INT_H
#define FB_SAML_INT_H

#include "fb_common.h"

#include <libxml/tree.h>

#define FB_SAML_NS_PROTOCOL "urn:oasis:names:tc:SAML:2.0:protocol"
#define FB_SAML_NS_ASSERTION "urn:oasis:names:tc:SAML:2.0:assertion"

/* Bounds on a message: bytes before parsing, element nesting while parsing. */
#define FB_SAML_XML_MAX ((size_t)1 << 20)
#define FB_SAML_XML_DEPTH_MAX 64

/*
 * Parses data (len bytes, not NUL-terminated) into *out, which the caller
 * frees with xmlFreeDoc. Refused, with the reason in err: more than
 * FB_SAML_XML_MAX bytes, bytes that are not UTF-8 or a NUL, any DOCTYPE (so
 * no entity is ever declared, let alone expanded), nesting deeper than
 * FB_SAML_XML_DEPTH_MAX, and anything libxml2 finds not well-formed or not
 * namespace-well-formed (its first error, with the line). The encoding the
 * document declares is ignored: it is read as the UTF-8 it was checked to
 * be. Nothing is loaded from files or the network and nothing is printed.
 * Thread-safe.
 */
fb_rc fb_saml_xml_parse(const char *data, size_t len, xmlDoc **out, struct fb_err *err);

/* n is an element named name in namespace ns (URI and local name; the prefix never counts). */
bool fb_saml_xml_is(const xmlNode *n, const char *ns, const char *name);

#endif
