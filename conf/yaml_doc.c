/*
 * The read-only YAML document of fb_conf.h: conf_yaml_parse's node tree,
 * with its positions and caps, for files other than the configuration.
 */
#include "conf_int.h"

#include <stdlib.h>
#include <string.h>

struct fb_yaml_doc {
	struct conf_arena arena;
	const struct conf_node *root;
};

/* A node handed out is a conf_node; the public type only hides its fields. */
static const struct conf_node *
conf_of(const struct fb_yaml_node *n)
{
	return (const struct conf_node *)(const void *)n;
}

static const struct fb_yaml_node *
yaml_of(const struct conf_node *n)
{
	return (const struct fb_yaml_node *)(const void *)n;
}

fb_rc
fb_yaml_parse(const char *data, size_t len, const char *name, unsigned flags,
    struct fb_yaml_doc **out, struct fb_yaml_refusal *why, struct fb_err *err)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_yaml_doc *doc;
	struct conf_node *root;
	struct conf_ctx c;
	fb_rc rc = FB_OK;

	*out = NULL;
	if (why != NULL)
		*why = (struct fb_yaml_refusal){ FB_YAML_RULE_NONE, 0, 0 };
	if (len > FB_YAML_MAX_BYTES) {
		if (why != NULL)
			why->rule = FB_YAML_RULE_LIMIT;
		return FB_ERR_SET(
		    err, FB_ERR_LIMIT, "%s: larger than %zu bytes", name, FB_YAML_MAX_BYTES);
	}
	if ((doc = calloc(1, sizeof(*doc))) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", name);
	memset(&c, 0, sizeof(c));
	c.name = name;
	c.basedir = ".";
	c.arena = &doc->arena;
	c.diags = &diags;
	c.yaml_doc = true;
	c.yaml_plain = (flags & FB_YAML_PLAIN) != 0;
	c.max_nodes = FB_YAML_MAX_NODES;
	root = conf_yaml_parse(&c, data, len);
	if (c.nomem) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", name);
	} else if (diags.n > 0) {
		rc = FB_ERR_SET(err, FB_ERR_INVALID, "%s", diags.v[0].msg);
	} else if (diags.dropped > 0) {
		rc = FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", name);
	} else if (root != NULL && root->expanded > FB_YAML_MAX_EXPANDED) {
		/* Aliases of aliases: a small file a walk would never finish. */
		c.refusal =
		    (struct fb_yaml_refusal){ FB_YAML_RULE_LIMIT, root->pos.line, root->pos.col };
		rc = FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s:%u:%u: the document expands to more than %d nodes through aliases", name,
		    root->pos.line, root->pos.col, FB_YAML_MAX_EXPANDED);
	}
	fb_conf_diags_free(&diags);
	if (why != NULL && rc != FB_OK)
		*why = c.refusal;
	if (rc != FB_OK && (flags & FB_YAML_PARTIAL) && c.refusal.rule != FB_YAML_RULE_NONE &&
	    root != NULL && root->expanded <= FB_YAML_MAX_EXPANDED) {
		doc->root = root;
		*out = doc;
		return rc;
	}
	if (rc != FB_OK) {
		fb_yaml_free(doc);
		return rc;
	}
	doc->root = root;
	*out = doc;
	return FB_OK;
}

void
fb_yaml_free(struct fb_yaml_doc *doc)
{
	if (doc == NULL)
		return;
	conf_arena_free(&doc->arena);
	free(doc);
}

const struct fb_yaml_node *
fb_yaml_root(const struct fb_yaml_doc *doc)
{
	return yaml_of(doc->root);
}

/* YAML 1.1's spellings of null that a plain scalar may take. */
static bool
null_text(const char *s, size_t len)
{
	static const char *const spellings[] = { "~", "null", "Null", "NULL" };

	if (len == 0)
		return true;
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++)
		if (len == strlen(spellings[i]) && memcmp(s, spellings[i], len) == 0)
			return true;
	return false;
}

enum fb_yaml_kind
fb_yaml_kind(const struct fb_yaml_node *n)
{
	const struct conf_node *c = conf_of(n);

	switch (c->type) {
	case CONF_NODE_SEQ:
		return FB_YAML_SEQ;
	case CONF_NODE_MAP:
		return FB_YAML_MAP;
	default:
		return c->plain && null_text(c->value, c->len) ? FB_YAML_NULL : FB_YAML_SCALAR;
	}
}

unsigned
fb_yaml_line(const struct fb_yaml_node *n)
{
	return conf_of(n)->pos.line;
}

unsigned
fb_yaml_col(const struct fb_yaml_node *n)
{
	return conf_of(n)->pos.col;
}

const char *
fb_yaml_text(const struct fb_yaml_node *n, size_t *len)
{
	const struct conf_node *c = conf_of(n);

	if (c->type != CONF_NODE_SCALAR) {
		*len = 0;
		return NULL;
	}
	*len = c->len;
	return c->value;
}

size_t
fb_yaml_count(const struct fb_yaml_node *n)
{
	const struct conf_node *c = conf_of(n);

	return c->type == CONF_NODE_SCALAR ? 0 : c->n;
}

const struct fb_yaml_node *
fb_yaml_item(const struct fb_yaml_node *n, size_t i)
{
	const struct conf_node *c = conf_of(n);

	return c->type == CONF_NODE_SEQ && i < c->n ? yaml_of(c->items[i]) : NULL;
}

const struct fb_yaml_node *
fb_yaml_key(const struct fb_yaml_node *map, size_t i)
{
	const struct conf_node *c = conf_of(map);

	return c->type == CONF_NODE_MAP && i < c->n ? yaml_of(c->keys[i]) : NULL;
}

const struct fb_yaml_node *
fb_yaml_value(const struct fb_yaml_node *map, size_t i)
{
	const struct conf_node *c = conf_of(map);

	return c->type == CONF_NODE_MAP && i < c->n ? yaml_of(c->items[i]) : NULL;
}

size_t
fb_yaml_find(const struct fb_yaml_node *map, const char *key, size_t from)
{
	const struct conf_node *c = conf_of(map);
	size_t len = strlen(key);

	if (c->type != CONF_NODE_MAP)
		return 0;
	for (size_t i = from; i < c->n; i++) {
		const struct conf_node *k = c->keys[i];
		if (k->type == CONF_NODE_SCALAR && k->len == len && memcmp(k->value, key, len) == 0)
			return i;
	}
	return c->n;
}

const struct fb_yaml_node *
fb_yaml_get(const struct fb_yaml_node *map, const char *key)
{
	return fb_yaml_value(map, fb_yaml_find(map, key, 0));
}
