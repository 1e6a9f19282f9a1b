/*
 * Legacy pins: the users a whitelist file gave a fid keep it. The table is
 * JSON (as `fedbridge import whitelist` writes it), parsed once into an
 * open-addressing hash keyed by the ASCII-lowercased identity key.
 */
#include "fb_mapping.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PINS_MAX 10000000
#define PIN_KEY_MAX 320

struct fb_pins {
	char *tenant;
	struct fb_pin *pins;
	size_t n;
	size_t *slots; /* index + 1 into pins; 0: empty */
	size_t n_slots; /* a power of two, at least twice n */
	json_t *doc; /* holds every string the pins point to */
};

static uint64_t
key_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over lowercased bytes */

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		h = (h ^ c) * 1099511628211ULL;
	}
	return h;
}

static bool
key_equal(const char *a, const char *b, size_t blen)
{
	return strlen(a) == blen && strncasecmp(a, b, blen) == 0;
}

static bool
key_valid(const char *k, size_t len)
{
	if (len == 0 || len > PIN_KEY_MAX || !fb_utf8_valid(k, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)k[i] < 0x20 || k[i] == 0x7f)
			return false;
	return true;
}

void
fb_pins_free(struct fb_pins *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free((void *)p->pins[i].remotes);
	free(p->pins);
	free(p->slots);
	free(p->tenant);
	json_decref(p->doc);
	free(p);
}

static fb_rc
parse_remotes(json_t *arr, struct fb_pin *pin, const char *name, struct fb_err *err)
{
	const char **v;
	size_t n = json_array_size(arr);

	if (!json_is_array(arr) || n == 0 || n > 1000)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: pins[\"%s\"]: remotes must be a list of 1 to 1000 tenantIDs", name,
		    pin->key);
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	pin->remotes = v;
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(arr, i);
		if (!json_is_string(t) || !fb_conf_tenant_id_valid(json_string_value(t)))
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[\"%s\"]: remotes[%zu] is not a tenantID", name, pin->key, i);
		for (size_t j = 0; j < i; j++)
			if (strcmp(v[j], json_string_value(t)) == 0)
				return FB_ERR_SET(err, FB_ERR_INVALID,
				    "%s: pins[\"%s\"]: remote %s is listed twice", name, pin->key,
				    v[j]);
		v[i] = json_string_value(t);
	}
	pin->n_remotes = n;
	return FB_OK;
}

static fb_rc
parse_pin(struct fb_pins *p, const char *key, json_t *val, const char *name, struct fb_err *err)
{
	struct fb_pin *pin = &p->pins[p->n];
	struct fb_fid fid;
	const char *k;
	json_t *v;

	pin->key = key;
	if (!key_valid(key, strlen(key)))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: a pin key must be 1 to %d bytes of UTF-8 without control characters", name,
		    PIN_KEY_MAX);
	if (!json_is_object(val))
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: pins[\"%s\"]: expected an object", name, key);
	json_object_foreach(val, k, v)
	{
		if (strcmp(k, "fid") != 0 && strcmp(k, "remotes") != 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[\"%s\"]: unknown member \"%s\"", name, key, k);
	}
	v = json_object_get(val, "fid");
	if (v != NULL) {
		if (!json_is_string(v) ||
		    fb_fid_parse(json_string_value(v), json_string_length(v), &fid, NULL) != FB_OK)
			return FB_ERR_SET(
			    err, FB_ERR_INVALID, "%s: pins[\"%s\"]: fid is not a fid", name, key);
		if (strcmp(fid.tenant, p->tenant) != 0)
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "%s: pins[\"%s\"]: fid %s is not of tenant %s", name, key,
			    json_string_value(v), p->tenant);
		pin->fid = json_string_value(v);
	}
	v = json_object_get(val, "remotes");
	p->n++; /* counted now so fb_pins_free releases its remotes */
	if (v != NULL && parse_remotes(v, pin, name, err) != FB_OK)
		return err ? err->rc : FB_ERR_INVALID;
	if (pin->fid == NULL && pin->n_remotes == 0)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: pins[\"%s\"]: needs fid or remotes", name, key);
	return FB_OK;
}

static fb_rc
index_pins(struct fb_pins *p, const char *name, struct fb_err *err)
{
	p->n_slots = 16;
	while (p->n_slots < 2 * p->n)
		p->n_slots *= 2;
	if ((p->slots = calloc(p->n_slots, sizeof(*p->slots))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < p->n; i++) {
		const char *k = p->pins[i].key;
		size_t len = strlen(k), s = key_hash(k, len) & (p->n_slots - 1);
		for (; p->slots[s] != 0; s = (s + 1) & (p->n_slots - 1)) {
			const char *other = p->pins[p->slots[s] - 1].key;
			if (key_equal(other, k, len))
				return FB_ERR_SET(err, FB_ERR_INVALID,
				    "%s: pins[\"%s\"] and pins[\"%s\"] are the same key (keys "
				    "compare without case)",
				    name, other, k);
		}
		p->slots[s] = i + 1;
	}
	return FB_OK;
}

fb_rc
fb_pins_parse(
    const char *data, size_t len, const char *name, struct fb_pins **out, struct fb_err *err)
{
	struct fb_pins *p;
	json_error_t jerr;
	json_t *pins, *v;
	const char *key;
	fb_rc rc = FB_ERR_INVALID;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	p->doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (p->doc == NULL) {
		FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
		goto fail;
	}
	v = json_object_get(p->doc, "version");
	if (!json_is_object(p->doc) || !json_is_integer(v) || json_integer_value(v) != 1) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: not a pin table of version 1", name);
		goto fail;
	}
	json_object_foreach(p->doc, key, v)
	{
		if (strcmp(key, "version") != 0 && strcmp(key, "tenant") != 0 &&
		    strcmp(key, "pins") != 0) {
			FB_ERR_SET(err, FB_ERR_INVALID, "%s: unknown member \"%s\"", name, key);
			goto fail;
		}
	}
	v = json_object_get(p->doc, "tenant");
	if (!json_is_string(v) || !fb_conf_tenant_id_valid(json_string_value(v))) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: tenant must be a tenantID", name);
		goto fail;
	}
	if ((p->tenant = strdup(json_string_value(v))) == NULL)
		goto nomem;
	pins = json_object_get(p->doc, "pins");
	if (!json_is_object(pins) || json_object_size(pins) > PINS_MAX) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: pins must be an object of at most %d pins",
		    name, PINS_MAX);
		goto fail;
	}
	if ((p->pins = calloc(json_object_size(pins) + 1, sizeof(*p->pins))) == NULL)
		goto nomem;
	json_object_foreach(pins, key, v)
	{
		if ((rc = parse_pin(p, key, v, name, err)) != FB_OK)
			goto fail;
	}
	if ((rc = index_pins(p, name, err)) != FB_OK)
		goto fail;
	*out = p;
	return FB_OK;
nomem:
	rc = FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
fail:
	fb_pins_free(p);
	return rc == FB_OK ? FB_ERR_INVALID : rc;
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
	size_t s;

	if (p == NULL || p->n == 0)
		return NULL;
	for (s = key_hash(key, len) & (p->n_slots - 1); p->slots[s] != 0;
	     s = (s + 1) & (p->n_slots - 1))
		if (key_equal(p->pins[p->slots[s] - 1].key, key, len))
			return &p->pins[p->slots[s] - 1];
	return NULL;
}
