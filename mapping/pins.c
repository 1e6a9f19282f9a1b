/*
 * Legacy pins: the users a whitelist file gave a fid keep it. The table is
 * JSON (as `fedbridge import whitelist` writes it), checked whole, then
 * copied into one arena of strings and indexed by an open-addressing hash of
 * the ASCII-lowercased key, so a login's lookup is O(1) and the parsed JSON
 * (several times the size of the file) is not kept.
 */
#include "fb_mapping.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PINS_MAX 10000000 /* pins in one table */
#define PINS_INPUT_MAX ((size_t)1 << 30) /* bytes of JSON: 10 million pins fit */
#define PIN_KEY_MAX 320 /* an e-mail address is at most 320 bytes (RFC 3696) */
#define PIN_REMOTES_MAX 1000 /* remotes of one pin */
#define QUOTE_MAX 96 /* bytes of a key shown in a message */

struct fb_pins {
	char tenant[FB_FID_TENANT_MAX + 1];
	struct fb_pin *pins;
	size_t n;
	uint32_t *slots; /* index + 1 into pins; 0: empty. PINS_MAX fits. */
	size_t mask; /* slot count - 1; the count is a power of two >= 2n */
	const char **remotes; /* every pin's remotes, one array */
	char *arena; /* every key, fid and remote, NUL-terminated */
};

/* What pass one measured, so pass two allocates once and cannot fail. */
struct pins_size {
	size_t bytes;
	size_t remotes;
};

#define QUOTE_BUF (QUOTE_MAX * 6 + 16)
#define Q(buf, s) fb_quote((buf), sizeof(buf), (s), strlen(s), QUOTE_MAX)

static unsigned char
ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static uint64_t
key_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over lowercased bytes */

	for (size_t i = 0; i < len; i++)
		h = (h ^ ascii_lower((unsigned char)s[i])) * 1099511628211ULL;
	return h;
}

/*
 * a (NUL-terminated) against b (blen bytes, maybe with NULs) in ASCII case
 * folding only, whatever the locale: what lower() in a pin_key does.
 */
static bool
key_equal(const char *a, const char *b, size_t blen)
{
	for (size_t i = 0; i < blen; i++)
		if (a[i] == '\0' ||
		    ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
			return false;
	return a[blen] == '\0';
}

/* NULL when k is a usable key, else why not. */
static const char *
key_problem(const char *k, size_t len)
{
	if (len == 0)
		return "the key is empty";
	if (len > PIN_KEY_MAX)
		return "the key is longer than 320 bytes";
	if (!fb_utf8_valid(k, len))
		return "the key is not UTF-8";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return "the key has a control character";
	return NULL;
}

static fb_rc
check_remotes(
    json_t *arr, const char *name, const char *key, struct pins_size *sz, struct fb_err *err)
{
	char qk[QUOTE_BUF], qv[QUOTE_BUF];
	size_t n = json_array_size(arr);

	if (!json_is_array(arr) || n > PIN_REMOTES_MAX)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: pins[%s]: remotes: expected a list of at most %d tenantIDs", name,
		    Q(qk, key), PIN_REMOTES_MAX);
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(arr, i);
		const char *s = json_string_value(t);
		if (s == NULL || !fb_conf_tenant_id_valid(s))
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[%s]: remotes[%zu]: %s is not a tenantID (8 to 16 letters and "
			    "digits)",
			    name, Q(qk, key), i,
			    s != NULL
			        ? fb_quote(qv, sizeof(qv), s, json_string_length(t), QUOTE_MAX)
			        : "a non-string");
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(arr, j)), s) == 0)
				return FB_ERR_SET(err, FB_ERR_INVALID,
				    "%s: pins[%s]: remotes[%zu]: %s is already remotes[%zu]", name,
				    Q(qk, key), i, s, j);
		sz->bytes += strlen(s) + 1;
	}
	sz->remotes += n;
	return FB_OK;
}

/* Pass one: everything that can be wrong with one pin, and the room it needs. */
static fb_rc
check_pin(const char *tenant, const char *key, json_t *val, const char *name, struct pins_size *sz,
    struct fb_err *err)
{
	char qk[QUOTE_BUF], qv[QUOTE_BUF];
	const char *why = key_problem(key, strlen(key)), *member;
	json_t *fid, *remotes, *v;
	struct fb_fid f;
	struct fb_err ferr = { 0 };

	if (why != NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: pins[%s]: %s", name, Q(qk, key), why);
	if (!json_is_object(val))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: pins[%s]: expected an object with fid and/or remotes", name, Q(qk, key));
	json_object_foreach(val, member, v)
	{
		if (strcmp(member, "fid") != 0 && strcmp(member, "remotes") != 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[%s]: unknown member %s (a pin has fid and remotes)", name,
			    Q(qk, key), Q(qv, member));
	}
	fid = json_object_get(val, "fid");
	remotes = json_object_get(val, "remotes");
	if (fid != NULL) {
		if (!json_is_string(fid))
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[%s]: fid: expected a string", name, Q(qk, key));
		if (fb_fid_parse(json_string_value(fid), json_string_length(fid), &f, &ferr) !=
		    FB_OK)
			return FB_ERR_SET(err, FB_ERR_INVALID, "%s: pins[%s]: fid %s: %s", name,
			    Q(qk, key),
			    fb_quote(qv, sizeof(qv), json_string_value(fid),
			        json_string_length(fid), QUOTE_MAX),
			    ferr.msg);
		if (strcmp(f.tenant, tenant) != 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[%s]: fid %s is of tenant %s, not the table's tenant %s", name,
			    Q(qk, key), json_string_value(fid), f.tenant, tenant);
		sz->bytes += json_string_length(fid) + 1;
	}
	if (remotes != NULL && check_remotes(remotes, name, key, sz, err) != FB_OK)
		return err != NULL ? err->rc : FB_ERR_INVALID;
	if (fid == NULL && json_array_size(remotes) == 0)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: pins[%s]: a pin needs a fid or at least one remote", name, Q(qk, key));
	sz->bytes += strlen(key) + 1;
	return FB_OK;
}

static char *
arena_put(char **at, const char *s)
{
	size_t len = strlen(s) + 1;
	char *r = *at;

	memcpy(r, s, len);
	*at += len;
	return r;
}

/* Hashes pin i in; two keys that differ only in letter case are one user twice. */
static fb_rc
insert(struct fb_pins *p, size_t i, const char *name, struct fb_err *err)
{
	char qa[QUOTE_BUF], qb[QUOTE_BUF];
	const char *k = p->pins[i].key;
	size_t len = strlen(k), s;

	for (s = key_hash(k, len) & p->mask; p->slots[s] != 0; s = (s + 1) & p->mask) {
		const char *other = p->pins[p->slots[s] - 1].key;
		if (key_equal(other, k, len))
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[%s]: the same key as pins[%s] (keys are compared without "
			    "letter case)",
			    name, Q(qa, k), Q(qb, other));
	}
	p->slots[s] = (uint32_t)(i + 1);
	return FB_OK;
}

/* Pass two: copies the checked pins out of the JSON and indexes them. */
static fb_rc
fill(struct fb_pins *p, json_t *pins, const char *name, struct fb_err *err)
{
	char *at = p->arena;
	const char **rem = p->remotes;
	const char *key;
	json_t *val;
	fb_rc rc;

	json_object_foreach(pins, key, val)
	{
		struct fb_pin *pin = &p->pins[p->n];
		json_t *fid = json_object_get(val, "fid");
		json_t *remotes = json_object_get(val, "remotes");
		size_t n = json_array_size(remotes);

		pin->key = arena_put(&at, key);
		pin->fid = fid != NULL ? arena_put(&at, json_string_value(fid)) : NULL;
		pin->remotes = rem;
		pin->n_remotes = n;
		for (size_t i = 0; i < n; i++)
			*rem++ = arena_put(&at, json_string_value(json_array_get(remotes, i)));
		if ((rc = insert(p, p->n++, name, err)) != FB_OK)
			return rc;
	}
	return FB_OK;
}

/* The top level: {"version": 1, "tenant": ..., "pins": {...}} and nothing else. */
static fb_rc
check_top(json_t *doc, const char *name, struct fb_err *err)
{
	char q[QUOTE_BUF];
	json_t *v;
	const char *member;

	if (!json_is_object(doc))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: expected a JSON object with version, tenant and pins", name);
	json_object_foreach(doc, member, v)
	{
		if (strcmp(member, "version") != 0 && strcmp(member, "tenant") != 0 &&
		    strcmp(member, "pins") != 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: unknown member %s (a pin table has version, tenant and pins)",
			    name, Q(q, member));
	}
	v = json_object_get(doc, "version");
	if (v == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: version: missing (expected 1)", name);
	if (!json_is_integer(v) || json_integer_value(v) != 1)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: version: not supported (expected 1; a newer fedbridge wrote this table?)",
		    name);
	v = json_object_get(doc, "tenant");
	if (!json_is_string(v) || !fb_conf_tenant_id_valid(json_string_value(v)))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: tenant: expected a tenantID (8 to 16 letters and digits)", name);
	v = json_object_get(doc, "pins");
	if (!json_is_object(v))
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: pins: expected an object of key -> pin", name);
	if (json_object_size(v) > PINS_MAX)
		return FB_ERR_SET(err, FB_ERR_LIMIT, "%s: pins: more than %d pins", name, PINS_MAX);
	return FB_OK;
}

/* Checks every pin, then allocates and fills the table; doc stays owned by the caller. */
static fb_rc
build(json_t *doc, const char *name, struct fb_pins *p, struct fb_err *err)
{
	struct pins_size sz = { 0 };
	json_t *pins = json_object_get(doc, "pins");
	size_t n_slots = 16;
	const char *key;
	json_t *val;
	fb_rc rc;

	if ((rc = check_top(doc, name, err)) != FB_OK)
		return rc;
	(void)snprintf(
	    p->tenant, sizeof(p->tenant), "%s", json_string_value(json_object_get(doc, "tenant")));
	json_object_foreach(pins, key, val)
	{
		if ((rc = check_pin(p->tenant, key, val, name, &sz, err)) != FB_OK)
			return rc;
	}
	/* Slots: a power of two at least twice the pins, so probes stay short. */
	while (n_slots < 2 * json_object_size(pins))
		n_slots *= 2;
	p->mask = n_slots - 1;
	p->slots = calloc(n_slots, sizeof(*p->slots));
	p->pins = calloc(json_object_size(pins) + 1, sizeof(*p->pins));
	p->remotes = calloc(sz.remotes + 1, sizeof(*p->remotes));
	p->arena = malloc(sz.bytes + 1);
	if (p->slots == NULL || p->pins == NULL || p->remotes == NULL || p->arena == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", name);
	return fill(p, pins, name, err);
}

fb_rc
fb_pins_parse(
    const char *data, size_t len, const char *name, struct fb_pins **out, struct fb_err *err)
{
	struct fb_pins *p;
	json_error_t jerr;
	json_t *doc;
	fb_rc rc;

	if (name == NULL)
		name = "pins";
	/* Refused before jansson builds a tree several times the size of the input. */
	if (len > PINS_INPUT_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: larger than %zu bytes", name, (size_t)PINS_INPUT_MAX);
	doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		json_decref(doc);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", name);
	}
	rc = build(doc, name, p, err);
	json_decref(doc);
	if (rc != FB_OK) {
		fb_pins_free(p);
		return rc;
	}
	*out = p;
	return FB_OK;
}

void
fb_pins_free(struct fb_pins *p)
{
	if (p == NULL)
		return;
	free(p->slots);
	free(p->pins);
	free(p->remotes);
	free(p->arena);
	free(p);
}

const char *
fb_pins_tenant(const struct fb_pins *p)
{
	return p->tenant;
}

size_t
fb_pins_count(const struct fb_pins *p)
{
	return p->n;
}

const struct fb_pin *
fb_pins_find(const struct fb_pins *p, const char *key, size_t len)
{
	if (p == NULL || p->n == 0 || len == 0 || len > PIN_KEY_MAX)
		return NULL;
	for (size_t s = key_hash(key, len) & p->mask; p->slots[s] != 0; s = (s + 1) & p->mask) {
		const struct fb_pin *pin = &p->pins[p->slots[s] - 1];
		if (key_equal(pin->key, key, len))
			return pin;
	}
	return NULL;
}
