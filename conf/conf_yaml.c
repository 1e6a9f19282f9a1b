/*
 * YAML text to a node tree with positions, through libyaml's event API.
 * The event API lets us cap depth and node count while parsing (libyaml's
 * own loader has no depth limit) and keep every node's line and column.
 */
#include "conf_int.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct open_node {
	struct conf_node *node;
	size_t first; /* its children start here in yaml_state.pending */
};

struct anchor {
	const char *name;
	struct conf_node *node;
	bool complete;
};

struct yaml_state {
	struct conf_ctx *c;
	const char *data; /* the document, to find where an anchored value starts */
	size_t len;
	struct open_node stack[FB_CONF_MAX_DEPTH];
	size_t depth;
	/* Children of every open node, innermost last; keys and values alternate for maps. */
	struct conf_node **pending;
	size_t n_pending, cap_pending;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	size_t n_nodes;
	struct conf_node *root;
	/* Where value_pos last stopped, as a mark and its byte: anchors come in file
	 * order, so a file of many anchors is scanned once, not once per anchor. */
	const char *seek;
	size_t seek_line, seek_col;
};

static struct fb_conf_pos
mark_pos(yaml_mark_t m)
{
	struct fb_conf_pos p = { (unsigned)m.line + 1, (unsigned)m.column + 1, NULL };

	return p;
}

/*
 * libyaml marks an anchored node at its "&name". Messages (and expression
 * columns) should point at the value itself: skip the anchor, blanks,
 * comments and line breaks after it. Marks count characters, not bytes.
 */
static struct fb_conf_pos
value_pos(struct yaml_state *st, yaml_mark_t m)
{
	struct fb_conf_pos pos = mark_pos(m);
	const char *p = st->data, *end = st->data + st->len;
	size_t line = 0, col = 0;

	pos.file = st->c->file;
	if (st->seek != NULL &&
	    (st->seek_line < m.line || (st->seek_line == m.line && st->seek_col <= m.column))) {
		p = st->seek;
		line = st->seek_line;
		col = st->seek_col;
	}
	for (; line < m.line && p < end; p++)
		if (*p == '\n') {
			line++;
			col = 0;
		}
	for (; col < m.column && p < end; col++)
		for (p++; p < end && ((unsigned char)*p & 0xc0) == 0x80; p++)
			;
	st->seek = p;
	st->seek_line = line;
	st->seek_col = col;
	if (p >= end || *p != '&')
		return pos;
	while (p < end && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
		p++;
		pos.col++;
	}
	while (p < end) {
		if (*p == ' ' || *p == '\t') {
			pos.col++;
		} else if (*p == '#') {
			while (p < end && *p != '\n')
				p++;
			continue;
		} else if (*p == '\n') {
			pos.line++;
			pos.col = 1;
		} else if (*p != '\r') {
			break;
		}
		p++;
	}
	return pos;
}

/* Keeps the first rule the text broke, for fb_yaml_parse's callers; returns false. */
static bool
refused(struct yaml_state *st, enum fb_yaml_rule rule, struct fb_conf_pos pos)
{
	if (st->c->refusal.rule == FB_YAML_RULE_NONE) {
		st->c->refusal.rule = rule;
		st->c->refusal.line = pos.line;
		st->c->refusal.col = pos.col;
	}
	return false;
}

/* Other YAML files than the configuration may say what the format needs none of. */
#define PLAIN_PROPERTY_REFUSED "anchors (&name) and tags (!tag) are not allowed here"
#define PLAIN_ALIAS_REFUSED "aliases (*name) are not allowed here"

static bool
add_child(struct yaml_state *st, struct conf_node *n)
{
	struct open_node *top;
	struct conf_node **v;
	size_t ncap;

	if (st->depth == 0) {
		st->root = n;
		return true;
	}
	top = &st->stack[st->depth - 1];
	/* Documents read through fb_yaml_parse let their reader say what a key must be. */
	if (!st->c->yaml_doc && top->node->type == CONF_NODE_MAP &&
	    (st->n_pending - top->first) % 2 == 0 && n->type != CONF_NODE_SCALAR)
		return conf_diag(st->c, n->pos, NULL, "a mapping key must be a plain string");
	if (st->n_pending == st->cap_pending) {
		ncap = st->cap_pending ? st->cap_pending * 2 : 64;
		v = realloc(st->pending, ncap * sizeof(struct conf_node *));
		if (v == NULL) {
			st->c->nomem = true;
			return false;
		}
		st->pending = v;
		st->cap_pending = ncap;
	}
	st->pending[st->n_pending++] = n;
	return true;
}

static bool
anchor_add(struct yaml_state *st, const char *name, struct conf_node *n, bool complete)
{
	struct anchor *v;
	size_t ncap;

	if (st->n_anchors == st->cap_anchors) {
		ncap = st->cap_anchors ? st->cap_anchors * 2 : 8;
		v = realloc(st->anchors, ncap * sizeof(*v));
		if (v == NULL) {
			st->c->nomem = true;
			return false;
		}
		st->anchors = v;
		st->cap_anchors = ncap;
	}
	/* A later anchor of the same name shadows the earlier one, as YAML says. */
	st->anchors[st->n_anchors].name = conf_arena_strndup(st->c->arena, name, strlen(name));
	st->anchors[st->n_anchors].node = n;
	st->anchors[st->n_anchors].complete = complete;
	st->n_anchors++;
	return true;
}

static struct conf_node *
new_node(struct yaml_state *st, enum conf_node_type type, yaml_mark_t mark)
{
	size_t max = st->c->max_nodes ? st->c->max_nodes : FB_CONF_MAX_NODES;
	struct conf_node *n;

	if (++st->n_nodes > max) {
		conf_diag(st->c, mark_pos(mark), NULL, "more than %zu YAML nodes", max);
		refused(st, FB_YAML_RULE_LIMIT, mark_pos(mark));
		return NULL;
	}
	n = conf_arena_alloc(st->c->arena, sizeof(*n));
	if (n == NULL) {
		st->c->nomem = true;
		return NULL;
	}
	n->type = type;
	n->pos = mark_pos(mark);
	n->pos.file = st->c->file;
	n->expanded = 1;
	return n;
}

static bool
refuse_tag(struct yaml_state *st, const yaml_char_t *tag, yaml_mark_t mark)
{
	if (tag == NULL)
		return true;
	refused(st, FB_YAML_RULE_TAG, mark_pos(mark));
	if (st->c->yaml_plain)
		return conf_diag(st->c, mark_pos(mark), NULL, PLAIN_PROPERTY_REFUSED);
	return conf_diag(st->c, mark_pos(mark), NULL, "YAML tags such as %.40s are not supported",
	    (const char *)tag);
}

static bool
refuse_plain_anchor(struct yaml_state *st, const yaml_char_t *anchor, yaml_mark_t mark)
{
	if (anchor == NULL || !st->c->yaml_plain)
		return true;
	refused(st, FB_YAML_RULE_ANCHOR, mark_pos(mark));
	return conf_diag(st->c, mark_pos(mark), NULL, PLAIN_PROPERTY_REFUSED);
}

static bool
on_scalar(struct yaml_state *st, const yaml_event_t *ev)
{
	struct conf_node *n;

	if (!refuse_tag(st, ev->data.scalar.tag, ev->start_mark) ||
	    !refuse_plain_anchor(st, ev->data.scalar.anchor, ev->start_mark))
		return false;
	if (ev->data.scalar.length > FB_CONF_MAX_SCALAR) {
		refused(st, FB_YAML_RULE_LIMIT, mark_pos(ev->start_mark));
		return conf_diag(st->c, mark_pos(ev->start_mark), NULL,
		    "a value of %zu bytes, more than the limit of %d", ev->data.scalar.length,
		    FB_CONF_MAX_SCALAR);
	}
	if ((n = new_node(st, CONF_NODE_SCALAR, ev->start_mark)) == NULL)
		return false;
	if (ev->data.scalar.anchor != NULL)
		n->pos = value_pos(st, ev->start_mark);
	n->value = conf_arena_strndup(
	    st->c->arena, (const char *)ev->data.scalar.value, ev->data.scalar.length);
	if (n->value == NULL) {
		st->c->nomem = true;
		return false;
	}
	n->len = ev->data.scalar.length;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	switch (ev->data.scalar.style) {
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
		n->style = '\'';
		break;
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		n->style = '"';
		break;
	case YAML_LITERAL_SCALAR_STYLE:
		n->style = '|';
		break;
	case YAML_FOLDED_SCALAR_STYLE:
		n->style = '>';
		break;
	default:
		n->style = 0;
		break;
	}
	if (!st->c->yaml_doc && memchr(n->value, '\0', n->len) != NULL)
		return conf_diag(st->c, n->pos, NULL, "a value holds a NUL character");
	if (ev->data.scalar.anchor != NULL &&
	    !anchor_add(st, (const char *)ev->data.scalar.anchor, n, true))
		return false;
	return add_child(st, n);
}

static bool
on_start(struct yaml_state *st, const yaml_event_t *ev, enum conf_node_type type)
{
	const yaml_char_t *tag, *anchor;
	struct conf_node *n;

	tag = type == CONF_NODE_MAP ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	anchor =
	    type == CONF_NODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	if (!refuse_tag(st, tag, ev->start_mark) ||
	    !refuse_plain_anchor(st, anchor, ev->start_mark))
		return false;
	if (st->depth == FB_CONF_MAX_DEPTH) {
		refused(st, FB_YAML_RULE_LIMIT, mark_pos(ev->start_mark));
		return conf_diag(st->c, mark_pos(ev->start_mark), NULL,
		    "nested deeper than %d levels", FB_CONF_MAX_DEPTH);
	}
	if ((n = new_node(st, type, ev->start_mark)) == NULL)
		return false;
	if (anchor != NULL)
		n->pos = value_pos(st, ev->start_mark);
	if (anchor != NULL && !anchor_add(st, (const char *)anchor, n, false))
		return false;
	if (!add_child(st, n))
		return false;
	st->stack[st->depth].node = n;
	st->stack[st->depth].first = st->n_pending;
	st->depth++;
	return true;
}

static bool
on_end(struct yaml_state *st)
{
	struct open_node *top;
	struct conf_node *n, **kids;
	size_t count;

	if (st->depth == 0 || (n = st->stack[st->depth - 1].node) == NULL)
		return conf_diag(st->c, (struct fb_conf_pos){ 0 }, NULL,
		    "internal error: unbalanced YAML events");
	top = &st->stack[st->depth - 1];
	count = st->n_pending - top->first;
	if (n->type == CONF_NODE_MAP)
		count /= 2;
	if (count > 0) {
		kids = st->pending + top->first; /* pending is NULL until a first child */
		n->items = conf_arena_alloc(st->c->arena, count * sizeof(struct conf_node *));
		if (n->type == CONF_NODE_MAP)
			n->keys =
			    conf_arena_alloc(st->c->arena, count * sizeof(struct conf_node *));
		if (n->items == NULL || (n->type == CONF_NODE_MAP && n->keys == NULL)) {
			st->c->nomem = true;
			return false;
		}
		for (size_t i = 0; i < count; i++) {
			if (n->type == CONF_NODE_MAP) {
				n->keys[i] = kids[2 * i];
				n->items[i] = kids[2 * i + 1];
			} else {
				n->items[i] = kids[i];
			}
		}
		/* An alias counts as all it stands for: fb_yaml_parse bounds the sum. */
		for (size_t i = 0; i < st->n_pending - top->first; i++)
			n->expanded = kids[i]->expanded > SIZE_MAX - n->expanded
			    ? SIZE_MAX
			    : n->expanded + kids[i]->expanded;
	}
	n->n = count;
	st->n_pending = top->first;
	st->depth--;
	for (size_t i = 0; i < st->n_anchors; i++)
		if (st->anchors[i].node == n)
			st->anchors[i].complete = true;
	return true;
}

static bool
on_alias(struct yaml_state *st, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;

	if (st->c->yaml_plain) {
		refused(st, FB_YAML_RULE_ALIAS, mark_pos(ev->start_mark));
		return conf_diag(st->c, mark_pos(ev->start_mark), NULL, PLAIN_ALIAS_REFUSED);
	}
	for (size_t i = st->n_anchors; i-- > 0;) {
		if (strcmp(st->anchors[i].name, name) != 0)
			continue;
		if (st->anchors[i].complete)
			return add_child(st, st->anchors[i].node);
		refused(st, FB_YAML_RULE_ALIAS, mark_pos(ev->start_mark));
		return conf_diag(st->c, mark_pos(ev->start_mark), NULL,
		    "alias *%.40s refers to a node that contains it", name);
	}
	refused(st, FB_YAML_RULE_ALIAS, mark_pos(ev->start_mark));
	return conf_diag(st->c, mark_pos(ev->start_mark), NULL, "unknown alias *%.40s", name);
}

static void
syntax_error(struct yaml_state *st, const yaml_parser_t *p)
{
	struct fb_conf_pos pos = mark_pos(p->problem_mark);
	const char *problem = p->problem ? p->problem : "unknown problem";

	if (p->error == YAML_READER_ERROR && st->c->yaml_doc) {
		/* The reader knows the byte only: say where it is, in characters as marks do. */
		pos = (struct fb_conf_pos){ 1, 1, st->c->file };
		for (size_t i = 0; i < p->problem_offset && i < st->len; i++) {
			if (st->data[i] == '\n') {
				pos.line++;
				pos.col = 1;
			} else if (((unsigned char)st->data[i] & 0xc0) != 0x80) {
				pos.col++;
			}
		}
		refused(st, FB_YAML_RULE_SYNTAX, pos);
		conf_diag(
		    st->c, pos, NULL, "not a YAML file: %s (byte %zu)", problem, p->problem_offset);
		return;
	}
	refused(st, FB_YAML_RULE_SYNTAX, pos);
	if (p->error == YAML_READER_ERROR) {
		conf_diag(st->c, (struct fb_conf_pos){ 0 }, NULL, "YAML error at byte %zu: %s",
		    p->problem_offset, problem);
		return;
	}
	if (p->context != NULL)
		conf_diag(st->c, pos, NULL, "YAML syntax error: %s %s (line %u)", problem,
		    p->context, (unsigned)p->context_mark.line + 1);
	else
		conf_diag(st->c, pos, NULL, "YAML syntax error: %s", problem);
}

struct conf_node *
conf_yaml_parse(struct conf_ctx *c, const char *data, size_t len)
{
	struct yaml_state st;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool ok = true, done = false;
	int documents = 0;

	memset(&st, 0, sizeof(st));
	st.c = c;
	st.data = data;
	st.len = len;
	if (!yaml_parser_initialize(&parser)) {
		c->nomem = true;
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (ok && !done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			syntax_error(&st, &parser);
			ok = false;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++documents > 1) {
				ok = refused(&st, FB_YAML_RULE_DOCUMENTS, mark_pos(ev.start_mark));
				conf_diag(c, mark_pos(ev.start_mark), NULL,
				    "only one YAML document is allowed");
			}
			break;
		case YAML_SCALAR_EVENT:
			ok = on_scalar(&st, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			ok = on_start(&st, &ev, CONF_NODE_SEQ);
			break;
		case YAML_MAPPING_START_EVENT:
			ok = on_start(&st, &ev, CONF_NODE_MAP);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			ok = on_end(&st);
			break;
		case YAML_ALIAS_EVENT:
			ok = on_alias(&st, &ev);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	/* A document read for fb_yaml_parse keeps what came before a refusal, its open
	 * nodes closed there: a reader may report an earlier problem first. */
	while (!ok && c->yaml_doc && !c->nomem && st.depth > 0 && on_end(&st))
		;
	free(st.pending);
	free(st.anchors);
	if (!ok)
		return c->yaml_doc && !c->nomem ? st.root : NULL;
	if (st.root == NULL && !c->yaml_doc) {
		conf_diag(c, (struct fb_conf_pos){ 0 }, NULL, "the configuration is empty");
		return NULL;
	}
	return st.root;
}
