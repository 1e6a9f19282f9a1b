/* Private to conf/: the YAML node tree, the arena, the load context and the schema. */
#ifndef FB_CONF_INT_H
#define FB_CONF_INT_H

#include "fb_conf.h"

#include <stdatomic.h>

/* Bump allocator: everything of one configuration lives and dies together. */
struct conf_arena_chunk;
struct conf_arena {
	struct conf_arena_chunk *head;
};
void *conf_arena_alloc(struct conf_arena *a, size_t n); /* zeroed; NULL on ENOMEM */
char *conf_arena_strndup(struct conf_arena *a, const char *s, size_t n);
char *conf_arena_printf(struct conf_arena *a, const char *fmt, ...) FB_PRINTF(2, 3);
void conf_arena_free(struct conf_arena *a);

enum conf_node_type { CONF_NODE_SCALAR, CONF_NODE_SEQ, CONF_NODE_MAP };

struct conf_node {
	enum conf_node_type type;
	struct fb_conf_pos pos;
	/* scalar */
	const char *value; /* NUL-terminated, arena */
	size_t len;
	size_t expanded; /* nodes it stands for with aliases followed, saturating */
	bool plain; /* an unquoted scalar: may be null, a number or a boolean */
	char style; /* how the scalar was written: 0 plain, '\'', '"', '|' or '>' */
	/* sequence: items; mapping: keys[i] -> items[i] */
	struct conf_node **items;
	struct conf_node **keys;
	size_t n;
};

/* Where a typed field came from, for later messages. */
struct conf_pos_entry {
	const void *addr;
	struct fb_conf_pos pos;
};

struct fb_conf_impl;

/* State of one load. */
struct conf_ctx {
	const char *name; /* file name for messages */
	const char *file; /* NULL for the configuration file, else the included file being read */
	const char *basedir; /* for relative paths */
	unsigned flags;
	struct conf_arena *arena;
	struct fb_conf_diags *diags;
	struct conf_pos_entry *pos;
	size_t n_pos, cap_pos;
	size_t visits; /* schema nodes walked: bounds alias fan-out */
	bool nomem;
	/* Reading for fb_yaml_parse (yaml_doc.c) rather than a configuration: any
	 * node as a key, NUL in values (callers get lengths), an empty stream, and
	 * the rule a refused text broke kept in refusal. */
	bool yaml_doc;
	bool yaml_plain; /* anchors and aliases are refused as well as tags */
	size_t max_nodes; /* 0: FB_CONF_MAX_NODES */
	struct fb_yaml_refusal refusal;
};

/* Adds "name:line:col: path: message"; returns false so callers can `return conf_diag(...)`. */
bool conf_diag(struct conf_ctx *c, struct fb_conf_pos pos, const char *path, const char *fmt, ...)
    FB_PRINTF(4, 5);
void conf_pos_record(struct conf_ctx *c, const void *addr, struct fb_conf_pos pos);
struct fb_conf_pos conf_pos_lookup(const struct conf_pos_entry *v, size_t n, const void *addr);

/* YAML text -> node tree (conf_yaml.c). NULL with diagnostics on failure; with
 * yaml_doc, what was read before the failure (or NULL), the diagnostics telling. */
struct conf_node *conf_yaml_parse(struct conf_ctx *c, const char *data, size_t len);

/* Node tree -> typed value (conf_schema.c): false when any diagnostic was added. */
bool conf_schema_apply(struct conf_ctx *c, const struct conf_node *root, struct fb_conf *out);

/* Cross-references between parts of a typed value (conf_check.c). */
bool conf_check_refs(struct conf_ctx *c, const struct fb_conf *conf);

/* The value handed out: the public struct first, then what keeps it alive. */
struct fb_conf_impl {
	struct fb_conf pub;
	struct conf_arena arena;
	struct conf_pos_entry *pos; /* sorted by addr */
	size_t n_pos;
	atomic_uint refs;
};

#endif
