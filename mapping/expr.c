/*
 * The mapping expression language: a small subset of CEL. Source text is
 * compiled once into a flat node array with a static type per node, so
 * name, arity and type mistakes are configuration errors with an offset.
 * Evaluation walks the array recursively (depth bounded at compile time),
 * reads the inputs in place, makes new strings only in a fixed scratch area,
 * and turns every odd or missing value into "absent" or a clear error.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "fb_mapping.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* PCRE2 bounds: a pathological pattern stops with an error, not a hang. */
#define REGEX_MATCH_LIMIT 100000
#define REGEX_DEPTH_LIMIT 1000
#define REGEX_HEAP_LIMIT_KIB 1024
#define TRACE_VALUE_MAX 120

enum node_kind {
	N_LIT, /* lit */
	N_LIST, /* args[first .. first+n) */
	N_INPUT, /* input */
	N_FIELD, /* a.key */
	N_INDEX, /* a[b] */
	N_NOT,
	N_NEG,
	N_AND,
	N_OR,
	N_EQ,
	N_NE,
	N_IN,
	N_CALL, /* fn(args[first .. first+n)) */
};

enum stype { S_DYN, S_BOOL, S_INT, S_STRING, S_LIST, S_LIST_STR, S_OBJECT, S_NULL };

enum input_id { I_CLAIMS, I_ATTRS, I_NAMEID, I_ISSUER, I_PROVIDER, I_TENANT, I_PRINCIPAL, I_TOKEN };

static const struct {
	const char *name;
	unsigned flag;
	enum stype type;
	const char *where; /* where it may be used, for messages */
} inputs_tab[] = {
	{ "claims", FB_EXPR_IN_CLAIMS, S_OBJECT, "login rules" },
	{ "attrs", FB_EXPR_IN_ATTRS, S_OBJECT, "login rules" },
	{ "nameid", FB_EXPR_IN_NAMEID, S_STRING, "login rules" },
	{ "issuer", FB_EXPR_IN_ISSUER, S_STRING, "login rules" },
	{ "provider", FB_EXPR_IN_PROVIDER, S_STRING, "login and outbound rules" },
	{ "tenant", FB_EXPR_IN_TENANT, S_STRING, "every rule" },
	{ "principal", FB_EXPR_IN_PRINCIPAL, S_OBJECT, "outbound rules" },
	{ "token", FB_EXPR_IN_TOKEN, S_OBJECT, "inbound rules" },
};
#define N_INPUTS (sizeof(inputs_tab) / sizeof(inputs_tab[0]))

enum fn_id {
	F_LOWER,
	F_UPPER,
	F_TRIM,
	F_HAS,
	F_MATCHES,
	F_STARTS,
	F_ENDS,
	F_SPLIT,
	F_JOIN,
	F_FIRST,
	F_SIZE,
	F_PAIRWISE,
	F_MUTABLE,
};

/* Argument kinds a function accepts, as bit sets of static types. */
#define A_STR (1u << S_STRING)
#define A_LIST ((1u << S_LIST) | (1u << S_LIST_STR))
#define A_OBJ (1u << S_OBJECT)
#define A_ANY 0xffu

static const struct {
	const char *name;
	unsigned min, max;
	unsigned args[2]; /* accepted static types of the first two arguments */
	enum stype result;
	const char *expects[2]; /* for messages */
} fns[] = {
	[F_LOWER] = { "lower", 1, 1, { A_STR, 0 }, S_STRING, { "a string", NULL } },
	[F_UPPER] = { "upper", 1, 1, { A_STR, 0 }, S_STRING, { "a string", NULL } },
	[F_TRIM] = { "trim", 1, 1, { A_STR, 0 }, S_STRING, { "a string", NULL } },
	[F_HAS] = { "has", 1, 1, { A_ANY, 0 }, S_BOOL, { "a field path", NULL } },
	[F_MATCHES] = { "matches", 2, 2, { A_STR, A_STR }, S_BOOL, { "a string", "a pattern" } },
	[F_STARTS] = { "startsWith", 2, 2, { A_STR, A_STR }, S_BOOL, { "a string", "a string" } },
	[F_ENDS] = { "endsWith", 2, 2, { A_STR, A_STR }, S_BOOL, { "a string", "a string" } },
	[F_SPLIT] = { "split", 2, 2, { A_STR, A_STR }, S_LIST_STR, { "a string", "a string" } },
	[F_JOIN] = { "join", 2, 2, { A_LIST, A_STR }, S_STRING, { "a list", "a string" } },
	[F_FIRST] = { "first", 1, 1, { A_LIST | A_STR, 0 }, S_DYN, { "a list or a string", NULL } },
	[F_SIZE] = { "size", 1, 1, { A_STR | A_LIST | A_OBJ, 0 }, S_INT,
	    { "a string, a list or an object", NULL } },
	[F_PAIRWISE] = { "pairwise", 1, 2, { A_STR, A_STR }, S_STRING, { "a string", "a string" } },
	[F_MUTABLE] = { "mutable", 1, 1, { A_ANY, 0 }, S_DYN, { "a value", NULL } },
};
#define N_FNS (sizeof(fns) / sizeof(fns[0]))

/* Identifiers that users or admins can change: never a fid unless mutable(). */
static const char *const mutable_keys[] = { "email", "mail", "emailaddress", "upn",
	"userprincipalname", "preferred_username", "name", "given_name", "family_name", "nickname",
	"displayname", "unique_name", "samaccountname",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
	"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
	"http://schemas.microsoft.com/ws/2008/06/identity/claims/windowsaccountname",
	"urn:oid:0.9.2342.19200300.100.1.3", "urn:oid:2.16.840.1.113730.3.1.241",
	"urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "urn:oid:2.5.4.42", "urn:oid:2.5.4.4",
	"urn:oid:2.5.4.3" };

struct node {
	uint8_t kind; /* enum node_kind */
	uint8_t type; /* enum stype */
	uint8_t fn; /* N_CALL */
	uint8_t input; /* N_INPUT */
	bool path_top; /* the outermost node of a path: traced */
	bool mutable_src; /* a field named like a mutable identifier, outside mutable() */
	uint32_t start, end; /* source span */
	int32_t a, b; /* children */
	uint32_t first, n; /* N_LIST, N_CALL: into args */
	struct fb_value lit; /* N_LIT; N_FIELD: the key as a string */
	pcre2_code *re; /* N_CALL matches */
};

struct fb_expr {
	char *src;
	struct node *nodes;
	size_t n_nodes;
	int32_t *args;
	size_t n_args;
	char *strings; /* literal and key text */
	size_t n_strings;
	int32_t root;
	pcre2_match_context *mctx;
	struct fb_value *consts; /* the items of lists made only of literals */
};

struct fb_expr_scratch {
	size_t cap, used;
	pcre2_general_context *gctx;
	unsigned char *mem;
};

/* ---- scratch ---- */

static void *
scratch_alloc(struct fb_expr_scratch *s, size_t n)
{
	size_t at = (s->used + 15) & ~(size_t)15;

	if (n > s->cap || at > s->cap - n)
		return NULL;
	s->used = at + n;
	return s->mem + at;
}

/*
 * PCRE2 allocates its general context through the functions it is given:
 * that one allocation (made before s->gctx is set) comes from malloc, so
 * resetting the scratch never overwrites it; match data comes from the
 * scratch and is released wholesale by fb_expr_scratch_reset.
 */
static void *
pcre_scratch_malloc(PCRE2_SIZE n, void *data)
{
	struct fb_expr_scratch *s = data;

	return s->gctx == NULL ? malloc(n) : scratch_alloc(s, n);
}

static void
pcre_scratch_free(void *p, void *data)
{
	struct fb_expr_scratch *s = data;
	unsigned char *c = p;

	if (c != NULL && (c < s->mem || c >= s->mem + s->cap))
		free(p);
}

void *
fb_expr_scratch_alloc(struct fb_expr_scratch *s, size_t size)
{
	return scratch_alloc(s, size);
}

fb_rc
fb_expr_scratch_new(size_t bytes, struct fb_expr_scratch **out)
{
	struct fb_expr_scratch *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (s == NULL || (s->mem = malloc(bytes ? bytes : 1)) == NULL) {
		free(s);
		return FB_ERR_NOMEM;
	}
	s->cap = bytes;
	s->gctx = pcre2_general_context_create(pcre_scratch_malloc, pcre_scratch_free, s);
	if (s->gctx == NULL) {
		free(s->mem);
		free(s);
		return FB_ERR_NOMEM;
	}
	*out = s;
	return FB_OK;
}

void
fb_expr_scratch_reset(struct fb_expr_scratch *s)
{
	s->used = 0;
}

void
fb_expr_scratch_free(struct fb_expr_scratch *s)
{
	if (s == NULL)
		return;
	pcre2_general_context_free(s->gctx);
	free(s->mem);
	free(s);
}

/* ---- lexer ---- */

enum tok_kind {
	T_END,
	T_IDENT,
	T_INT,
	T_STRING,
	T_DOT,
	T_LBRACK,
	T_RBRACK,
	T_LPAREN,
	T_RPAREN,
	T_COMMA,
	T_NOT,
	T_MINUS,
	T_EQ,
	T_NE,
	T_AND,
	T_OR,
	T_IN,
	T_TRUE,
	T_FALSE,
	T_NULL,
	T_BAD,
};

struct tok {
	enum tok_kind kind;
	size_t start, end;
	int64_t i;
	const char *s; /* T_STRING: decoded, in expr->strings; T_IDENT: in src */
	size_t len;
};

struct parser {
	struct fb_expr *e;
	const char *src;
	size_t len, pos;
	struct tok t; /* current token */
	unsigned inputs;
	unsigned depth, in_mutable;
	size_t cap_nodes, cap_args;
	struct fb_expr_error *where;
	bool failed;
};

static bool perr(struct parser *p, size_t offset, const char *fmt, ...) FB_PRINTF(3, 4);

static bool
perr(struct parser *p, size_t offset, const char *fmt, ...)
{
	va_list ap;

	if (p->failed)
		return false;
	p->failed = true;
	p->where->offset = offset;
	va_start(ap, fmt);
	(void)vsnprintf(p->where->msg, sizeof(p->where->msg), fmt, ap);
	va_end(ap);
	return false;
}

static bool
is_ident_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_ident(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Appends the UTF-8 of code point cp to out. */
static size_t
utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	out[0] = (char)(0xe0 | (cp >> 12));
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

static bool
lex_string(struct parser *p, struct tok *t)
{
	char q = p->src[p->pos];
	char *out = p->e->strings + p->e->n_strings;
	size_t n = 0;

	p->pos++;
	for (;;) {
		char c;
		if (p->pos >= p->len)
			return perr(p, t->start, "this string is not closed: expected %c", q);
		c = p->src[p->pos];
		if (c == q)
			break;
		if (c == '\n')
			return perr(p, p->pos, "a string must end on its line: expected %c", q);
		if (c != '\\') {
			out[n++] = c;
			p->pos++;
			continue;
		}
		if (p->pos + 1 >= p->len)
			return perr(p, p->pos, "a \\ must be followed by an escape");
		c = p->src[p->pos + 1];
		switch (c) {
		case '\\':
		case '\'':
		case '"':
			out[n++] = c;
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 'r':
			out[n++] = '\r';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case 'u': {
			uint32_t cp = 0;
			for (int i = 0; i < 4; i++) {
				int h = p->pos + 2 + (size_t)i < p->len
				    ? fb_hex_value(p->src[p->pos + 2 + (size_t)i])
				    : -1;
				if (h < 0)
					return perr(p, p->pos, "\\u needs four hex digits");
				cp = cp * 16 + (uint32_t)h;
			}
			if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
				return perr(p, p->pos,
				    "\\u%04X is not a character (NUL or a surrogate)", cp);
			n += utf8_put(cp, out + n);
			p->pos += 4;
			break;
		}
		default:
			return perr(p, p->pos,
			    "unknown escape \\%c: use \\\\ \\' \\\" \\n \\r \\t "
			    "or \\uXXXX",
			    c);
		}
		p->pos += 2;
	}
	p->pos++;
	out[n] = '\0';
	t->kind = T_STRING;
	t->s = out;
	t->len = n;
	p->e->n_strings += n + 1;
	if (memchr(out, '\0', n) != NULL)
		return perr(p, t->start, "a string must not hold NUL");
	return true;
}

static bool
lex(struct parser *p)
{
	struct tok *t = &p->t;
	const char *s = p->src;

	while (p->pos < p->len &&
	    (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r'))
		p->pos++;
	memset(t, 0, sizeof(*t));
	t->start = p->pos;
	if (p->pos >= p->len) {
		t->kind = T_END;
		t->end = p->pos;
		return true;
	}
	char c = s[p->pos];
	if (is_ident_start(c)) {
		while (p->pos < p->len && is_ident(s[p->pos]))
			p->pos++;
		t->s = s + t->start;
		t->len = p->pos - t->start;
		t->kind = T_IDENT;
		if (t->len == 2 && memcmp(t->s, "in", 2) == 0)
			t->kind = T_IN;
		else if (t->len == 4 && memcmp(t->s, "true", 4) == 0)
			t->kind = T_TRUE;
		else if (t->len == 5 && memcmp(t->s, "false", 5) == 0)
			t->kind = T_FALSE;
		else if (t->len == 4 && memcmp(t->s, "null", 4) == 0)
			t->kind = T_NULL;
	} else if (c >= '0' && c <= '9') {
		int64_t v = 0;
		while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') {
			int d = s[p->pos] - '0';
			if (v > (INT64_MAX - d) / 10)
				return perr(
				    p, t->start, "this number is too large (64-bit integers)");
			v = v * 10 + d;
			p->pos++;
		}
		if (p->pos < p->len && (is_ident(s[p->pos]) || s[p->pos] == '.'))
			return perr(p, p->pos, "only whole decimal numbers are supported");
		t->kind = T_INT;
		t->i = v;
	} else if (c == '\'' || c == '"') {
		if (!lex_string(p, t))
			return false;
	} else {
		char d = p->pos + 1 < p->len ? s[p->pos + 1] : '\0';
		p->pos++;
		switch (c) {
		case '.':
			t->kind = T_DOT;
			break;
		case '[':
			t->kind = T_LBRACK;
			break;
		case ']':
			t->kind = T_RBRACK;
			break;
		case '(':
			t->kind = T_LPAREN;
			break;
		case ')':
			t->kind = T_RPAREN;
			break;
		case ',':
			t->kind = T_COMMA;
			break;
		case '-':
			t->kind = T_MINUS;
			break;
		case '!':
			t->kind = d == '=' ? (p->pos++, T_NE) : T_NOT;
			break;
		case '=':
			if (d != '=')
				return perr(
				    p, t->start, "'=' is not an operator: use == to compare");
			p->pos++;
			t->kind = T_EQ;
			break;
		case '&':
			if (d != '&')
				return perr(p, t->start, "'&' is not an operator: use &&");
			p->pos++;
			t->kind = T_AND;
			break;
		case '|':
			if (d != '|')
				return perr(p, t->start, "'|' is not an operator: use ||");
			p->pos++;
			t->kind = T_OR;
			break;
		default:
			if ((unsigned char)c >= 0x80)
				return perr(p, t->start,
				    "unexpected character: names are ASCII; quote other text");
			return perr(p, t->start, "unexpected character '%c'", c);
		}
	}
	t->end = p->pos;
	return true;
}

/* ---- parser ---- */

static const char *
tok_text(const struct tok *t)
{
	switch (t->kind) {
	case T_END:
		return "end of expression";
	case T_IDENT:
		return "a name";
	case T_INT:
		return "a number";
	case T_STRING:
		return "a string";
	case T_DOT:
		return "'.'";
	case T_LBRACK:
		return "'['";
	case T_RBRACK:
		return "']'";
	case T_LPAREN:
		return "'('";
	case T_RPAREN:
		return "')'";
	case T_COMMA:
		return "','";
	case T_NOT:
		return "'!'";
	case T_MINUS:
		return "'-'";
	case T_EQ:
		return "'=='";
	case T_NE:
		return "'!='";
	case T_AND:
		return "'&&'";
	case T_OR:
		return "'||'";
	case T_IN:
		return "'in'";
	case T_TRUE:
	case T_FALSE:
		return "a boolean";
	case T_NULL:
		return "null";
	default:
		return "something else";
	}
}

static int32_t
new_node(struct parser *p, enum node_kind kind, size_t start)
{
	struct node *n;

	if (p->e->n_nodes >= FB_EXPR_NODES_MAX) {
		perr(p, start, "the expression is too large (at most %d parts)", FB_EXPR_NODES_MAX);
		return -1;
	}
	if (p->e->n_nodes == p->cap_nodes) {
		size_t cap = p->cap_nodes ? p->cap_nodes * 2 : 16;
		struct node *v = realloc(p->e->nodes, cap * sizeof(*v));
		if (v == NULL) {
			perr(p, start, "out of memory");
			return -1;
		}
		p->e->nodes = v;
		p->cap_nodes = cap;
	}
	n = &p->e->nodes[p->e->n_nodes];
	memset(n, 0, sizeof(*n));
	n->kind = (uint8_t)kind;
	n->start = (uint32_t)start;
	n->end = (uint32_t)start;
	n->a = n->b = -1;
	return (int32_t)p->e->n_nodes++;
}

static struct node *
N(struct parser *p, int32_t i)
{
	return &p->e->nodes[i];
}

static bool
push_arg(struct parser *p, int32_t idx)
{
	if (p->e->n_args == p->cap_args) {
		size_t cap = p->cap_args ? p->cap_args * 2 : 16;
		int32_t *v = realloc(p->e->args, cap * sizeof(*v));
		if (v == NULL)
			return perr(p, p->t.start, "out of memory");
		p->e->args = v;
		p->cap_args = cap;
	}
	p->e->args[p->e->n_args++] = idx;
	return true;
}

static size_t
edit_distance(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

/* The closest name among inputs and functions, or NULL. */
static const char *
did_you_mean(const char *s, size_t len, bool want_fn)
{
	const char *best = NULL;
	size_t bd = 3;

	for (size_t i = 0; i < N_FNS && want_fn; i++) {
		size_t d = edit_distance(s, len, fns[i].name);
		if (d < bd) {
			bd = d;
			best = fns[i].name;
		}
	}
	for (size_t i = 0; i < N_INPUTS && !want_fn; i++) {
		size_t d = edit_distance(s, len, inputs_tab[i].name);
		if (d < bd) {
			bd = d;
			best = inputs_tab[i].name;
		}
	}
	return best;
}

static bool
expect(struct parser *p, enum tok_kind k, const char *what, size_t open_at)
{
	if (p->t.kind != k) {
		if (open_at != (size_t)-1)
			return perr(p, p->t.start,
			    "expected %s to close the one at column %zu, got %s", what, open_at + 1,
			    tok_text(&p->t));
		return perr(p, p->t.start, "expected %s, got %s", what, tok_text(&p->t));
	}
	return lex(p);
}

static int32_t parse_expr(struct parser *p);

static const char *
stype_name(enum stype t)
{
	switch (t) {
	case S_BOOL:
		return "a boolean";
	case S_INT:
		return "a number";
	case S_STRING:
		return "a string";
	case S_LIST:
	case S_LIST_STR:
		return "a list";
	case S_OBJECT:
		return "an object";
	case S_NULL:
		return "null";
	default:
		return "a value";
	}
}

static bool
type_ok(unsigned accepted, enum stype t)
{
	return t == S_DYN || (accepted & (1u << t)) != 0;
}

static bool
is_path(const struct node *n)
{
	return n->kind == N_FIELD || n->kind == N_INDEX || n->kind == N_INPUT;
}

static bool
key_is_mutable(const char *key)
{
	for (size_t i = 0; i < sizeof(mutable_keys) / sizeof(mutable_keys[0]); i++)
		if (strcasecmp(key, mutable_keys[i]) == 0)
			return true;
	return false;
}

/* The input a path starts from. */
static int
path_root(struct parser *p, int32_t i)
{
	while (N(p, i)->kind == N_FIELD || N(p, i)->kind == N_INDEX)
		i = N(p, i)->a;
	return N(p, i)->kind == N_INPUT ? N(p, i)->input : -1;
}

static int32_t
make_field(struct parser *p, int32_t base, const char *key, size_t klen, size_t end)
{
	int32_t f = new_node(p, N_FIELD, N(p, base)->start);
	int root;

	if (f < 0)
		return -1;
	N(p, f)->a = base;
	N(p, f)->end = (uint32_t)end;
	N(p, f)->lit.kind = FB_V_STRING;
	N(p, f)->lit.u.s.p = key;
	N(p, f)->lit.u.s.len = klen;
	root = path_root(p, base);
	/* SAML attributes are always lists of strings; the rest is whatever the IdP sent. */
	N(p, f)->type = (root == I_ATTRS && N(p, base)->kind == N_INPUT) ? S_LIST_STR : S_DYN;
	if (root == I_PRINCIPAL && N(p, base)->kind == N_INPUT &&
	    (strcmp(key, "fid") == 0 || strcmp(key, "tenant") == 0 || strcmp(key, "provider") == 0))
		N(p, f)->type = S_STRING;
	if (root == I_PRINCIPAL && N(p, base)->kind == N_INPUT &&
	    strcmp(key, "legacy_remotes") == 0)
		N(p, f)->type = S_LIST_STR;
	if (root >= 0 && p->in_mutable == 0 && key_is_mutable(key))
		N(p, f)->mutable_src = true;
	return f;
}

static int32_t parse_call(
    struct parser *p, const char *name, size_t len, size_t start, int32_t receiver);

static int32_t
parse_postfix(struct parser *p, int32_t base)
{
	while (base >= 0 && !p->failed) {
		if (p->t.kind == T_DOT) {
			if (!lex(p))
				return -1;
			if (p->t.kind != T_IDENT && p->t.kind != T_IN && p->t.kind != T_TRUE &&
			    p->t.kind != T_FALSE && p->t.kind != T_NULL) {
				perr(p, p->t.start, "expected a field name after '.', got %s",
				    tok_text(&p->t));
				return -1;
			}
			struct tok name = p->t;
			if (!lex(p))
				return -1;
			if (p->t.kind == T_LPAREN) {
				base = parse_call(p, name.s, name.len, name.start, base);
				continue;
			}
			/* Field names live in src; copy them NUL-terminated into strings. */
			char *k = p->e->strings + p->e->n_strings;
			memcpy(k, name.s, name.len);
			k[name.len] = '\0';
			p->e->n_strings += name.len + 1;
			base = make_field(p, base, k, name.len, name.end);
		} else if (p->t.kind == T_LBRACK) {
			size_t open = p->t.start;
			int32_t idx;
			if (!lex(p))
				return -1;
			if (p->t.kind == T_STRING) {
				struct tok key = p->t;
				if (!lex(p))
					return -1;
				if (p->t.kind == T_RBRACK) {
					size_t end = p->t.end;
					if (!lex(p))
						return -1;
					base = make_field(p, base, key.s, key.len, end);
					continue;
				}
				return perr(p, p->t.start, "expected ']' after the key, got %s",
				           tok_text(&p->t)),
				       -1;
			}
			idx = parse_expr(p);
			if (idx < 0 || !expect(p, T_RBRACK, "']'", open))
				return -1;
			if (N(p, idx)->type != S_DYN && N(p, idx)->type != S_INT &&
			    N(p, idx)->type != S_STRING)
				return perr(p, N(p, idx)->start,
				           "an index must be a number or a string, "
				           "this is %s",
				           stype_name(N(p, idx)->type)),
				       -1;
			int32_t n = new_node(p, N_INDEX, N(p, base)->start);
			if (n < 0)
				return -1;
			N(p, n)->a = base;
			N(p, n)->b = idx;
			N(p, n)->end = (uint32_t)p->t.start;
			N(p, n)->type = N(p, base)->type == S_LIST_STR ? S_STRING : S_DYN;
			base = n;
		} else {
			break;
		}
	}
	return base;
}

static int32_t
parse_args(struct parser *p, int32_t call, int32_t receiver, size_t open)
{
	int32_t tmp[8];
	unsigned n = 0;

	if (receiver >= 0)
		tmp[n++] = receiver;
	if (p->t.kind != T_RPAREN) {
		for (;;) {
			int32_t a;
			if (n == 8)
				return perr(p, p->t.start, "too many arguments"), -1;
			a = parse_expr(p);
			if (a < 0)
				return -1;
			tmp[n++] = a;
			if (p->t.kind != T_COMMA)
				break;
			if (!lex(p))
				return -1;
		}
	}
	if (!expect(p, T_RPAREN, "')'", open))
		return -1;
	N(p, call)->first = (uint32_t)p->e->n_args;
	N(p, call)->n = n;
	for (unsigned i = 0; i < n; i++)
		if (!push_arg(p, tmp[i]))
			return -1;
	return call;
}

static bool
check_call(struct parser *p, int32_t call)
{
	struct node *c = N(p, call);
	const int32_t *args = c->n > 0 ? p->e->args + c->first : NULL;
	enum fn_id f = (enum fn_id)c->fn;

	if (c->n < fns[f].min || c->n > fns[f].max) {
		if (fns[f].min == fns[f].max)
			return perr(p, c->start, "%s() takes %u argument%s, got %u", fns[f].name,
			    fns[f].min, fns[f].min == 1 ? "" : "s", c->n);
		return perr(p, c->start, "%s() takes %u to %u arguments, got %u", fns[f].name,
		    fns[f].min, fns[f].max, c->n);
	}
	if (args == NULL) /* every function takes at least one argument */
		return perr(p, c->start, "%s() needs an argument", fns[f].name);
	for (unsigned i = 0; i < c->n && i < 2; i++) {
		enum stype t = (enum stype)N(p, args[i])->type;
		if (!type_ok(fns[f].args[i], t))
			return perr(p, N(p, args[i])->start, "%s() needs %s here, this is %s%s",
			    fns[f].name, fns[f].expects[i], stype_name(t),
			    t == S_LIST_STR && (fns[f].args[i] & A_STR) ? " (use first(...))" : "");
	}
	if (f == F_HAS && !is_path(N(p, args[0])))
		return perr(p, N(p, args[0])->start,
		    "has() needs a field path such as claims.email, not a computed value");
	c->type = (uint8_t)fns[f].result;
	if (f == F_MUTABLE)
		c->type = N(p, args[0])->type;
	if (f == F_FIRST && N(p, args[0])->type == S_LIST_STR)
		c->type = S_STRING;
	if (f == F_FIRST && N(p, args[0])->type == S_STRING)
		c->type = S_STRING;
	if (f == F_MATCHES) {
		const struct node *pat = N(p, args[1]);
		int code;
		PCRE2_SIZE off;
		if (pat->kind != N_LIT || pat->lit.kind != FB_V_STRING)
			return perr(p, pat->start,
			    "matches() needs its pattern as a string literal, compiled at load");
		if (pat->lit.u.s.len > FB_EXPR_REGEX_MAX)
			return perr(p, pat->start, "the pattern is longer than %d bytes",
			    FB_EXPR_REGEX_MAX);
		c->re = pcre2_compile((PCRE2_SPTR)pat->lit.u.s.p, pat->lit.u.s.len,
		    PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_NEVER_BACKSLASH_C, &code,
		    &off, NULL);
		if (c->re == NULL) {
			PCRE2_UCHAR msg[120];
			(void)pcre2_get_error_message(code, msg, sizeof(msg));
			/* +1: the opening quote; escapes in the literal may shift it further. */
			return perr(p, pat->start + 1 + off, "bad pattern: %s", (const char *)msg);
		}
	}
	return true;
}

static int32_t
parse_call(struct parser *p, const char *name, size_t len, size_t start, int32_t receiver)
{
	size_t open = p->t.start;
	int32_t call;
	size_t f;
	const char *near;

	for (f = 0; f < N_FNS; f++)
		if (strlen(fns[f].name) == len && memcmp(fns[f].name, name, len) == 0)
			break;
	if (f == N_FNS) {
		near = did_you_mean(name, len, true);
		perr(p, start, "unknown function '%.*s'%s%s%s", (int)len, name,
		    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
		return -1;
	}
	if (!lex(p)) /* past '(' */
		return -1;
	if ((call = new_node(p, N_CALL, receiver >= 0 ? N(p, receiver)->start : start)) < 0)
		return -1;
	N(p, call)->fn = (uint8_t)f;
	if (f == F_MUTABLE)
		p->in_mutable++;
	call = parse_args(p, call, receiver, open);
	if (f == F_MUTABLE)
		p->in_mutable--;
	if (call < 0)
		return -1;
	N(p, call)->end = (uint32_t)p->t.start;
	if (receiver >= 0)
		N(p, call)->start = N(p, receiver)->start;
	else
		N(p, call)->start = (uint32_t)start;
	if (!check_call(p, call))
		return -1;
	return call;
}

static int32_t
parse_primary(struct parser *p)
{
	struct tok t = p->t;
	int32_t n;

	switch (t.kind) {
	case T_INT:
	case T_STRING:
	case T_TRUE:
	case T_FALSE:
	case T_NULL:
		if ((n = new_node(p, N_LIT, t.start)) < 0)
			return -1;
		if (t.kind == T_INT) {
			N(p, n)->lit = (struct fb_value){ .kind = FB_V_INT, .u.i = t.i };
			N(p, n)->type = S_INT;
		} else if (t.kind == T_STRING) {
			N(p, n)->lit =
			    (struct fb_value){ .kind = FB_V_STRING, .u.s = { t.s, t.len } };
			N(p, n)->type = S_STRING;
		} else if (t.kind == T_NULL) {
			N(p, n)->lit.kind = FB_V_NULL;
			N(p, n)->type = S_NULL;
		} else {
			N(p, n)->lit =
			    (struct fb_value){ .kind = FB_V_BOOL, .u.b = t.kind == T_TRUE };
			N(p, n)->type = S_BOOL;
		}
		N(p, n)->end = (uint32_t)t.end;
		if (!lex(p))
			return -1;
		break;
	case T_LPAREN:
		if (!lex(p) || (n = parse_expr(p)) < 0 || !expect(p, T_RPAREN, "')'", t.start))
			return -1;
		break;
	case T_LBRACK: {
		int32_t tmp[FB_EXPR_LIST_MAX];
		unsigned cnt = 0;
		bool all_str = true;
		if (!lex(p))
			return -1;
		if (p->t.kind != T_RBRACK) {
			for (;;) {
				int32_t item;
				if (cnt == FB_EXPR_LIST_MAX)
					return perr(p, p->t.start, "a list holds at most %d items",
					           FB_EXPR_LIST_MAX),
					       -1;
				if ((item = parse_expr(p)) < 0)
					return -1;
				all_str = all_str && N(p, item)->type == S_STRING;
				tmp[cnt++] = item;
				if (p->t.kind != T_COMMA)
					break;
				if (!lex(p))
					return -1;
			}
		}
		if (!expect(p, T_RBRACK, "']'", t.start))
			return -1;
		if ((n = new_node(p, N_LIST, t.start)) < 0)
			return -1;
		N(p, n)->first = (uint32_t)p->e->n_args;
		N(p, n)->n = cnt;
		N(p, n)->type = all_str ? S_LIST_STR : S_LIST;
		for (unsigned i = 0; i < cnt; i++)
			if (!push_arg(p, tmp[i]))
				return -1;
		break;
	}
	case T_IDENT: {
		size_t i;
		if (!lex(p))
			return -1;
		if (p->t.kind == T_LPAREN) {
			n = parse_call(p, t.s, t.len, t.start, -1);
			break;
		}
		for (i = 0; i < N_INPUTS; i++)
			if (strlen(inputs_tab[i].name) == t.len &&
			    memcmp(inputs_tab[i].name, t.s, t.len) == 0)
				break;
		if (i == N_INPUTS) {
			const char *near = did_you_mean(t.s, t.len, false);
			return perr(p, t.start, "unknown name '%.*s'%s%s%s", (int)t.len, t.s,
			           near ? " (did you mean '" : "", near ? near : "",
			           near ? "'?)" : ""),
			       -1;
		}
		if ((p->inputs & inputs_tab[i].flag) == 0)
			return perr(p, t.start, "'%s' is not available here: it is for %s",
			           inputs_tab[i].name, inputs_tab[i].where),
			       -1;
		if ((n = new_node(p, N_INPUT, t.start)) < 0)
			return -1;
		N(p, n)->input = (uint8_t)i;
		N(p, n)->type = (uint8_t)inputs_tab[i].type;
		N(p, n)->end = (uint32_t)t.end;
		if (i == I_PRINCIPAL && p->t.kind != T_DOT && p->t.kind != T_LBRACK)
			return perr(p, t.start, "use a field of principal, such as principal.fid"),
			       -1;
		break;
	}
	case T_END:
		return perr(p, t.start, "the expression ends too early"), -1;
	default:
		return perr(p, t.start, "expected a value, got %s", tok_text(&t)), -1;
	}
	if (n >= 0)
		n = parse_postfix(p, n);
	return n;
}

static int32_t
parse_unary(struct parser *p)
{
	struct tok t = p->t;
	int32_t a, n;

	if (t.kind != T_NOT && t.kind != T_MINUS)
		return parse_primary(p);
	if (++p->depth > FB_EXPR_DEPTH_MAX)
		return perr(p, t.start, "the expression nests too deeply (at most %d levels)",
		           FB_EXPR_DEPTH_MAX),
		       -1;
	if (!lex(p) || (a = parse_unary(p)) < 0)
		return -1;
	p->depth--;
	if (t.kind == T_MINUS && N(p, a)->kind == N_LIT && N(p, a)->lit.kind == FB_V_INT) {
		N(p, a)->lit.u.i = -N(p, a)->lit.u.i;
		N(p, a)->start = (uint32_t)t.start;
		return a;
	}
	if (t.kind == T_NOT && N(p, a)->type != S_BOOL && N(p, a)->type != S_DYN)
		return perr(p, N(p, a)->start, "'!' needs true or false, this is %s",
		           stype_name(N(p, a)->type)),
		       -1;
	if (t.kind == T_MINUS && N(p, a)->type != S_INT && N(p, a)->type != S_DYN)
		return perr(p, N(p, a)->start, "'-' needs a number, this is %s",
		           stype_name(N(p, a)->type)),
		       -1;
	if ((n = new_node(p, t.kind == T_NOT ? N_NOT : N_NEG, t.start)) < 0)
		return -1;
	N(p, n)->a = a;
	N(p, n)->end = N(p, a)->end;
	N(p, n)->type = t.kind == T_NOT ? S_BOOL : S_INT;
	return n;
}

static int32_t
binary(struct parser *p, enum node_kind k, int32_t a, int32_t b)
{
	int32_t n = new_node(p, k, N(p, a)->start);

	if (n < 0)
		return -1;
	N(p, n)->a = a;
	N(p, n)->b = b;
	N(p, n)->end = N(p, b)->end;
	N(p, n)->type = S_BOOL;
	return n;
}

static int32_t
parse_rel(struct parser *p)
{
	int32_t a = parse_unary(p), b;

	while (a >= 0 && (p->t.kind == T_EQ || p->t.kind == T_NE || p->t.kind == T_IN)) {
		enum tok_kind op = p->t.kind;
		if (!lex(p) || (b = parse_unary(p)) < 0)
			return -1;
		if (op == T_IN) {
			enum stype rt = (enum stype)N(p, b)->type;
			if (rt != S_DYN && rt != S_LIST && rt != S_LIST_STR && rt != S_OBJECT)
				return perr(p, N(p, b)->start,
				           "'in' needs a list or an object on its right, this is "
				           "%s",
				           stype_name(rt)),
				       -1;
		}
		a = binary(p, op == T_EQ ? N_EQ : op == T_NE ? N_NE : N_IN, a, b);
	}
	return a;
}

static int32_t
parse_logic(struct parser *p, enum tok_kind op, int32_t (*sub)(struct parser *))
{
	int32_t a = sub(p), b;

	while (a >= 0 && p->t.kind == op) {
		if (!lex(p) || (b = sub(p)) < 0)
			return -1;
		for (int side = 0; side < 2; side++) {
			const struct node *x = N(p, side == 0 ? a : b);
			if (x->type != S_BOOL && x->type != S_DYN)
				return perr(p, x->start,
				           "'%s' needs true or false on both sides, this "
				           "is %s",
				           op == T_AND ? "&&" : "||",
				           stype_name((enum stype)x->type)),
				       -1;
		}
		a = binary(p, op == T_AND ? N_AND : N_OR, a, b);
	}
	return a;
}

static int32_t
parse_and(struct parser *p)
{
	return parse_logic(p, T_AND, parse_rel);
}

static int32_t
parse_expr(struct parser *p)
{
	int32_t r;

	if (++p->depth > FB_EXPR_DEPTH_MAX)
		return perr(p, p->t.start, "the expression nests too deeply (at most %d levels)",
		           FB_EXPR_DEPTH_MAX),
		       -1;
	r = parse_logic(p, T_OR, parse_and);
	p->depth--;
	return r;
}

/* Lists of literals are values already: built once here, not per evaluation. */
static bool
fold_lists(struct fb_expr *e)
{
	size_t total = 0, at = 0;

	for (size_t i = 0; i < e->n_nodes; i++)
		if (e->nodes[i].kind == N_LIST)
			total += e->nodes[i].n;
	if (total == 0)
		return true;
	if ((e->consts = calloc(total, sizeof(*e->consts))) == NULL)
		return false;
	for (size_t i = 0; i < e->n_nodes; i++) {
		struct node *n = &e->nodes[i];
		bool literal = n->kind == N_LIST;
		for (uint32_t k = 0; literal && k < n->n; k++)
			literal = e->nodes[e->args[n->first + k]].kind == N_LIT;
		if (!literal)
			continue;
		for (uint32_t k = 0; k < n->n; k++)
			e->consts[at + k] = e->nodes[e->args[n->first + k]].lit;
		n->lit.kind = FB_V_LIST;
		n->lit.u.list.v = e->consts + at;
		n->lit.u.list.n = n->n;
		at += n->n;
	}
	return true;
}

/* Marks the outermost node of every path: those are what traces show. */
static void
mark_paths(struct fb_expr *e)
{
	for (size_t i = 0; i < e->n_nodes; i++)
		if (is_path(&e->nodes[i]))
			e->nodes[i].path_top = true;
	for (size_t i = 0; i < e->n_nodes; i++) {
		const struct node *n = &e->nodes[i];
		if ((n->kind == N_FIELD || n->kind == N_INDEX) && n->a >= 0)
			e->nodes[n->a].path_top = false;
	}
}

static bool
want_ok(struct parser *p, enum fb_expr_want want)
{
	const struct node *r = N(p, p->e->root);
	enum stype t = (enum stype)r->type;

	switch (want) {
	case FB_EXPR_WANT_ANY:
		return true;
	case FB_EXPR_WANT_BOOL:
		if (t == S_BOOL || t == S_DYN)
			return true;
		return perr(
		    p, r->start, "this rule must give true or false, this is %s", stype_name(t));
	case FB_EXPR_WANT_STRING:
		if (t == S_STRING || t == S_DYN)
			return true;
		return perr(p, r->start, "this must give a string, this is %s%s", stype_name(t),
		    t == S_LIST_STR ? "; use first(...)" : "");
	case FB_EXPR_WANT_VALUE:
		if (t == S_STRING || t == S_LIST_STR || t == S_LIST || t == S_DYN)
			return true;
		return perr(p, r->start,
		    "an attribute must be a string or a list of strings, this "
		    "is %s",
		    stype_name(t));
	}
	return true;
}

void
fb_expr_free(struct fb_expr *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n_nodes; i++)
		pcre2_code_free(e->nodes[i].re);
	pcre2_match_context_free(e->mctx);
	free(e->consts);
	free(e->nodes);
	free(e->args);
	free(e->strings);
	free(e->src);
	free(e);
}

fb_rc
fb_expr_compile(const char *src, unsigned inputs, enum fb_expr_want want, struct fb_expr **out,
    struct fb_expr_error *where)
{
	struct parser p = { 0 };
	struct fb_expr *e;
	size_t len = strlen(src);

	*out = NULL;
	memset(where, 0, sizeof(*where));
	if (len > FB_EXPR_SRC_MAX) {
		(void)snprintf(where->msg, sizeof(where->msg),
		    "the expression is longer than %d bytes", FB_EXPR_SRC_MAX);
		where->offset = FB_EXPR_SRC_MAX;
		return FB_ERR_LIMIT;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL || (e->src = strdup(src)) == NULL ||
	    (e->strings = malloc(2 * len + 2)) == NULL) {
		fb_expr_free(e);
		(void)snprintf(where->msg, sizeof(where->msg), "out of memory");
		return FB_ERR_NOMEM;
	}
	p.e = e;
	p.src = e->src;
	p.len = len;
	p.inputs = inputs;
	p.where = where;
	if (lex(&p) && (e->root = parse_expr(&p)) >= 0) {
		if (p.t.kind != T_END)
			perr(&p, p.t.start, "expected an operator or the end, got %s",
			    tok_text(&p.t));
		else
			(void)want_ok(&p, want);
	}
	if (!p.failed && (e->mctx = pcre2_match_context_create(NULL)) != NULL) {
		(void)pcre2_set_match_limit(e->mctx, REGEX_MATCH_LIMIT);
		(void)pcre2_set_depth_limit(e->mctx, REGEX_DEPTH_LIMIT);
		(void)pcre2_set_heap_limit(e->mctx, REGEX_HEAP_LIMIT_KIB);
	} else if (!p.failed) {
		perr(&p, 0, "out of memory");
	}
	if (p.failed) {
		fb_expr_free(e);
		return strstr(where->msg, "out of memory") ? FB_ERR_NOMEM : FB_ERR_CONFIG;
	}
	mark_paths(e);
	if (!fold_lists(e)) {
		fb_expr_free(e);
		(void)snprintf(where->msg, sizeof(where->msg), "out of memory");
		return FB_ERR_NOMEM;
	}
	*out = e;
	return FB_OK;
}

const char *
fb_expr_source(const struct fb_expr *e)
{
	return e->src;
}

bool
fb_expr_reads_mutable(const struct fb_expr *e, size_t *offset, const char **name)
{
	for (size_t i = 0; i < e->n_nodes; i++) {
		if (!e->nodes[i].mutable_src)
			continue;
		*offset = e->nodes[i].start;
		*name = e->nodes[i].lit.u.s.p;
		return true;
	}
	return false;
}

/* ---- values ---- */

static struct fb_value
from_json(const json_t *j)
{
	struct fb_value v = { .kind = FB_V_ABSENT };

	if (j == NULL)
		return v;
	switch (json_typeof(j)) {
	case JSON_STRING:
		v.kind = FB_V_STRING;
		v.u.s.p = json_string_value(j);
		v.u.s.len = json_string_length(j);
		break;
	case JSON_INTEGER:
		v.kind = FB_V_INT;
		v.u.i = (int64_t)json_integer_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		v.kind = FB_V_BOOL;
		v.u.b = json_is_true(j);
		break;
	case JSON_NULL:
		v.kind = FB_V_NULL;
		break;
	default: /* objects, arrays, reals */
		v.kind = FB_V_JSON;
		v.u.json = j;
		break;
	}
	return v;
}

static bool
is_list(const struct fb_value *v)
{
	return v->kind == FB_V_LIST || (v->kind == FB_V_JSON && json_is_array(v->u.json));
}

static size_t
list_len(const struct fb_value *v)
{
	return v->kind == FB_V_LIST ? v->u.list.n : json_array_size(v->u.json);
}

static struct fb_value
list_get(const struct fb_value *v, size_t i)
{
	if (v->kind == FB_V_LIST)
		return v->u.list.v[i];
	return from_json(json_array_get(v->u.json, i));
}

static const char *
kind_name(const struct fb_value *v)
{
	switch (v->kind) {
	case FB_V_ABSENT:
		return "absent";
	case FB_V_NULL:
		return "null";
	case FB_V_BOOL:
		return "a boolean";
	case FB_V_INT:
		return "a number";
	case FB_V_STRING:
		return "a string";
	case FB_V_LIST:
		return "a list";
	default:
		return json_is_array(v->u.json) ? "a list"
		    : json_is_object(v->u.json) ? "an object"
		                                : "a number";
	}
}

static bool
values_equal(const struct fb_value *a, const struct fb_value *b)
{
	if (is_list(a) && is_list(b)) {
		size_t n = list_len(a);
		if (n != list_len(b))
			return false;
		for (size_t i = 0; i < n; i++) {
			struct fb_value x = list_get(a, i), y = list_get(b, i);
			if (!values_equal(&x, &y))
				return false;
		}
		return true;
	}
	if (a->kind != b->kind)
		return false;
	switch (a->kind) {
	case FB_V_NULL:
	case FB_V_ABSENT:
		return true;
	case FB_V_BOOL:
		return a->u.b == b->u.b;
	case FB_V_INT:
		return a->u.i == b->u.i;
	case FB_V_STRING:
		return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
	case FB_V_JSON:
		return json_equal(a->u.json, b->u.json);
	default:
		return false;
	}
}

/* JSON text of a string, escaped. */
static fb_rc
append_json_string(struct fb_buf *b, const char *s, size_t len)
{
	fb_rc rc = fb_buf_append(b, "\"", 1);

	for (size_t i = 0; i < len && rc == FB_OK; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			rc = fb_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			rc = fb_buf_printf(b, "\\u%04x", c);
		else
			rc = fb_buf_append(b, s + i, 1);
	}
	return rc == FB_OK ? fb_buf_append(b, "\"", 1) : rc;
}

fb_rc
fb_value_append_json(struct fb_buf *b, const struct fb_value *v)
{
	fb_rc rc = FB_OK;
	char *text;

	switch (v->kind) {
	case FB_V_ABSENT:
		return fb_buf_printf(b, "absent");
	case FB_V_NULL:
		return fb_buf_printf(b, "null");
	case FB_V_BOOL:
		return fb_buf_printf(b, "%s", v->u.b ? "true" : "false");
	case FB_V_INT:
		return fb_buf_printf(b, "%lld", (long long)v->u.i);
	case FB_V_STRING:
		return append_json_string(b, v->u.s.p, v->u.s.len);
	case FB_V_LIST:
		rc = fb_buf_append(b, "[", 1);
		for (size_t i = 0; i < v->u.list.n && rc == FB_OK; i++) {
			if (i > 0)
				rc = fb_buf_append(b, ",", 1);
			if (rc == FB_OK)
				rc = fb_value_append_json(b, &v->u.list.v[i]);
		}
		return rc == FB_OK ? fb_buf_append(b, "]", 1) : rc;
	case FB_V_JSON:
		if ((text = json_dumps(v->u.json, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
			return FB_ERR_NOMEM;
		rc = fb_buf_printf(b, "%s", text);
		free(text);
		return rc;
	}
	return FB_ERR_INTERNAL;
}

json_t *
fb_value_to_json(const struct fb_value *v)
{
	json_t *a;

	switch (v->kind) {
	case FB_V_NULL:
		return json_null();
	case FB_V_BOOL:
		return json_boolean(v->u.b);
	case FB_V_INT:
		return json_integer((json_int_t)v->u.i);
	case FB_V_STRING:
		return json_stringn(v->u.s.p, v->u.s.len);
	case FB_V_LIST:
		if ((a = json_array()) == NULL)
			return NULL;
		for (size_t i = 0; i < v->u.list.n; i++)
			if (json_array_append_new(a, fb_value_to_json(&v->u.list.v[i])) != 0) {
				json_decref(a);
				return NULL;
			}
		return a;
	case FB_V_JSON:
		return json_deep_copy(v->u.json);
	default:
		return NULL;
	}
}

/* ---- evaluation ---- */

struct eval {
	const struct fb_expr *e;
	const struct fb_expr_input *in;
	struct fb_expr_scratch *s;
	struct fb_buf *trace;
	struct fb_err *err;
};

static fb_rc eval_node(struct eval *ev, int32_t i, struct fb_value *out);

static fb_rc
runtime_error(struct eval *ev, const struct node *n, fb_rc rc, const char *what)
{
	return FB_ERR_SET(
	    ev->err, rc, "%.*s: %s", (int)(n->end - n->start), ev->e->src + n->start, what);
}

static void
trace_value(struct eval *ev, const struct node *n, const struct fb_value *v)
{
	struct fb_buf tmp;
	size_t cut;

	if (ev->trace == NULL)
		return;
	if (v->kind == FB_V_ABSENT) {
		(void)fb_buf_printf(ev->trace, "    %.*s: absent\n", (int)(n->end - n->start),
		    ev->e->src + n->start);
		return;
	}
	fb_buf_init(&tmp, 4096);
	(void)fb_value_append_json(&tmp, v);
	cut = tmp.len;
	if (cut > TRACE_VALUE_MAX) {
		cut = TRACE_VALUE_MAX;
		while (cut > 0 && ((unsigned char)tmp.data[cut] & 0xc0) == 0x80)
			cut--;
	}
	(void)fb_buf_printf(ev->trace, "    %.*s = %.*s%s\n", (int)(n->end - n->start),
	    ev->e->src + n->start, (int)cut, tmp.data ? tmp.data : "",
	    cut < tmp.len ? "\xe2\x80\xa6" : "");
	fb_buf_free(&tmp);
}

static struct fb_value
input_value(struct eval *ev, enum input_id id)
{
	const char *s = NULL;
	struct fb_value v = { .kind = FB_V_ABSENT };

	switch (id) {
	case I_CLAIMS:
		return from_json(ev->in->claims);
	case I_ATTRS:
		return from_json(ev->in->attrs);
	case I_TOKEN:
		return from_json(ev->in->token);
	case I_NAMEID:
		s = ev->in->nameid;
		break;
	case I_ISSUER:
		s = ev->in->issuer;
		break;
	case I_PROVIDER:
		s = ev->in->provider;
		break;
	case I_TENANT:
		s = ev->in->tenant;
		break;
	case I_PRINCIPAL:
		break; /* only its fields: see select_field */
	}
	if (s != NULL) {
		v.kind = FB_V_STRING;
		v.u.s.p = s;
		v.u.s.len = strlen(s);
	}
	return v;
}

static struct fb_value
principal_field(struct eval *ev, const char *key)
{
	const struct fb_expr_record *r = ev->in->principal;
	struct fb_value absent = { .kind = FB_V_ABSENT };

	for (size_t i = 0; r != NULL && i < r->n; i++)
		if (strcmp(r->names[i], key) == 0)
			return r->values[i];
	return absent;
}

static fb_rc
eval_field(struct eval *ev, const struct node *n, struct fb_value *out)
{
	struct fb_value base;
	fb_rc rc;

	out->kind = FB_V_ABSENT;
	if (ev->e->nodes[n->a].kind == N_INPUT && ev->e->nodes[n->a].input == I_PRINCIPAL) {
		*out = principal_field(ev, n->lit.u.s.p);
		return FB_OK;
	}
	if ((rc = eval_node(ev, n->a, &base)) != FB_OK)
		return rc;
	if (base.kind == FB_V_JSON && json_is_object(base.u.json))
		*out = from_json(json_object_getn(base.u.json, n->lit.u.s.p, n->lit.u.s.len));
	return FB_OK;
}

static fb_rc
eval_index(struct eval *ev, const struct node *n, struct fb_value *out)
{
	struct fb_value base, idx;
	fb_rc rc;

	out->kind = FB_V_ABSENT;
	if ((rc = eval_node(ev, n->a, &base)) != FB_OK || (rc = eval_node(ev, n->b, &idx)) != FB_OK)
		return rc;
	if (idx.kind == FB_V_INT && is_list(&base)) {
		if (idx.u.i >= 0 && (uint64_t)idx.u.i < list_len(&base))
			*out = list_get(&base, (size_t)idx.u.i);
	} else if (idx.kind == FB_V_STRING && base.kind == FB_V_JSON &&
	    json_is_object(base.u.json)) {
		*out = from_json(json_object_getn(base.u.json, idx.u.s.p, idx.u.s.len));
	} else if (idx.kind != FB_V_ABSENT && idx.kind != FB_V_INT && idx.kind != FB_V_STRING) {
		return runtime_error(
		    ev, n, FB_ERR_INVALID, "an index must be a number or a string");
	}
	return FB_OK;
}

/* false/true/absent logic with short circuits; non-booleans are errors. */
static fb_rc
eval_logic(struct eval *ev, const struct node *n, struct fb_value *out)
{
	bool is_and = n->kind == N_AND;
	struct fb_value a, b;
	fb_rc ra, rb;

	out->kind = FB_V_ABSENT;
	ra = eval_node(ev, n->a, &a);
	if (ra == FB_OK && a.kind == FB_V_BOOL && a.u.b != is_and) {
		*out = a; /* false && _, true || _ */
		return FB_OK;
	}
	if (ra == FB_OK && a.kind != FB_V_BOOL && a.kind != FB_V_ABSENT)
		return runtime_error(
		    ev, &ev->e->nodes[n->a], FB_ERR_INVALID, "needs true or false here");
	rb = eval_node(ev, n->b, &b);
	if (rb == FB_OK && b.kind == FB_V_BOOL && b.u.b != is_and) {
		*out = b;
		return FB_OK;
	}
	if (ra != FB_OK)
		return ra;
	if (rb != FB_OK)
		return rb;
	if (b.kind != FB_V_BOOL && b.kind != FB_V_ABSENT)
		return runtime_error(
		    ev, &ev->e->nodes[n->b], FB_ERR_INVALID, "needs true or false here");
	if (a.kind == FB_V_BOOL && b.kind == FB_V_BOOL)
		*out = a;
	return FB_OK;
}

static fb_rc
eval_in(struct eval *ev, const struct node *n, struct fb_value *out)
{
	struct fb_value x, c;
	fb_rc rc;

	out->kind = FB_V_ABSENT;
	if ((rc = eval_node(ev, n->a, &x)) != FB_OK || (rc = eval_node(ev, n->b, &c)) != FB_OK)
		return rc;
	if (x.kind == FB_V_ABSENT || c.kind == FB_V_ABSENT)
		return FB_OK;
	out->kind = FB_V_BOOL;
	out->u.b = false;
	if (is_list(&c)) {
		size_t len = list_len(&c);
		for (size_t i = 0; i < len && !out->u.b; i++) {
			struct fb_value item = list_get(&c, i);
			out->u.b = values_equal(&x, &item);
		}
		return FB_OK;
	}
	if (c.kind == FB_V_JSON && json_is_object(c.u.json)) {
		if (x.kind != FB_V_STRING)
			return runtime_error(ev, n, FB_ERR_INVALID, "an object's keys are strings");
		out->u.b = json_object_getn(c.u.json, x.u.s.p, x.u.s.len) != NULL;
		return FB_OK;
	}
	out->kind = FB_V_ABSENT;
	return runtime_error(
	    ev, &ev->e->nodes[n->b], FB_ERR_INVALID, "'in' needs a list or an object on its right");
}

static char *
scratch_string(struct eval *ev, const struct node *n, size_t len)
{
	char *p;

	if (len > FB_EXPR_STRING_MAX) {
		runtime_error(ev, n, FB_ERR_LIMIT, "the result is longer than the string limit");
		return NULL;
	}
	if ((p = scratch_alloc(ev->s, len + 1)) == NULL)
		runtime_error(ev, n, FB_ERR_LIMIT, "out of evaluation memory");
	return p;
}

static fb_rc
need_string(struct eval *ev, const struct node *n, const struct fb_value *v, const char *fn)
{
	char msg[96];

	if (v->kind == FB_V_STRING)
		return FB_OK;
	(void)snprintf(msg, sizeof(msg), "%s() needs a string, got %s", fn, kind_name(v));
	return runtime_error(ev, n, FB_ERR_INVALID, msg);
}

static size_t
utf8_count(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static fb_rc
fn_pairwise(struct eval *ev, const struct node *n, const struct fb_value *a, size_t na,
    struct fb_value *out)
{
	const char *ns = na == 2 ? a[1].u.s.p : ev->in->issuer;
	size_t nslen = na == 2 ? a[1].u.s.len : (ns ? strlen(ns) : 0);
	const char *tenant = ev->in->tenant;
	unsigned char mac[EVP_MAX_MD_SIZE], lenbuf[8];
	size_t maclen = 0;
	char *p;
	const struct {
		const char *p;
		size_t len;
	} parts[3] = { { tenant, tenant ? strlen(tenant) : 0 }, { ns, nslen },
		{ a[0].u.s.p, a[0].u.s.len } };
	bool ok;

	out->kind = FB_V_ABSENT;
	if (ev->in->fid_secret == NULL || tenant == NULL || ns == NULL)
		return FB_OK;
	/* Each part length-prefixed, so ("ab","c") and ("a","bc") never collide. */
	{
		EVP_MAC *mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
		EVP_MAC_CTX *ctx = mac_alg ? EVP_MAC_CTX_new(mac_alg) : NULL;
		OSSL_PARAM params[2];
		char digest[] = "SHA256";

		params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
		params[1] = OSSL_PARAM_construct_end();
		ok = ctx != NULL &&
		    EVP_MAC_init(ctx, ev->in->fid_secret, ev->in->fid_secret_len, params) == 1;
		for (size_t i = 0; ok && i < 3; i++) {
			uint64_t l = parts[i].len;
			for (int k = 0; k < 8; k++)
				lenbuf[k] = (unsigned char)(l >> (56 - 8 * k));
			ok = EVP_MAC_update(ctx, lenbuf, sizeof(lenbuf)) == 1 &&
			    EVP_MAC_update(ctx, (const unsigned char *)parts[i].p, parts[i].len) ==
			        1;
		}
		ok = ok && EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) == 1;
		EVP_MAC_CTX_free(ctx);
		EVP_MAC_free(mac_alg);
	}
	if (!ok || maclen < FB_EXPR_PAIRWISE_BYTES)
		return runtime_error(ev, n, FB_ERR_CRYPTO, "HMAC-SHA-256 failed");
	if ((p = scratch_string(ev, n, 32)) == NULL)
		return ev->err ? ev->err->rc : FB_ERR_LIMIT;
	(void)fb_b64url_encode(mac, FB_EXPR_PAIRWISE_BYTES, p, 33);
	out->kind = FB_V_STRING;
	out->u.s.p = p;
	out->u.s.len = strlen(p);
	return FB_OK;
}

static fb_rc
fn_split(struct eval *ev, const struct node *n, const struct fb_value *a, struct fb_value *out)
{
	const char *s = a[0].u.s.p, *sep = a[1].u.s.p, *hit;
	size_t len = a[0].u.s.len, sl = a[1].u.s.len, count = 1, at = 0;
	struct fb_value *items;

	if (sl == 0)
		return runtime_error(ev, n, FB_ERR_INVALID, "split() needs a non-empty separator");
	for (size_t i = 0; i + sl <= len;)
		if (memcmp(s + i, sep, sl) == 0) {
			count++;
			i += sl;
		} else {
			i++;
		}
	if (count > FB_EXPR_LIST_MAX)
		return runtime_error(ev, n, FB_ERR_LIMIT, "split() makes more than 256 items");
	if ((items = scratch_alloc(ev->s, count * sizeof(*items))) == NULL)
		return runtime_error(ev, n, FB_ERR_LIMIT, "out of evaluation memory");
	for (size_t k = 0; k < count; k++) {
		hit = NULL;
		for (size_t i = at; k + 1 < count && i + sl <= len; i++)
			if (memcmp(s + i, sep, sl) == 0) {
				hit = s + i;
				break;
			}
		size_t end = hit ? (size_t)(hit - s) : len;
		items[k] = (struct fb_value){ .kind = FB_V_STRING, .u.s = { s + at, end - at } };
		at = end + sl;
	}
	out->kind = FB_V_LIST;
	out->u.list.v = items;
	out->u.list.n = count;
	return FB_OK;
}

static fb_rc
fn_join(struct eval *ev, const struct node *n, const struct fb_value *a, struct fb_value *out)
{
	size_t len, total = 0, at = 0;
	char *p;

	if (!is_list(&a[0]))
		return runtime_error(ev, n, FB_ERR_INVALID, "join() needs a list");
	len = list_len(&a[0]);
	for (size_t i = 0; i < len; i++) {
		struct fb_value it = list_get(&a[0], i);
		if (it.kind != FB_V_STRING)
			return runtime_error(
			    ev, n, FB_ERR_INVALID, "join() needs a list of strings");
		total += it.u.s.len + (i ? a[1].u.s.len : 0);
		if (total > FB_EXPR_STRING_MAX)
			return runtime_error(ev, n, FB_ERR_LIMIT, "the result is too long");
	}
	if ((p = scratch_string(ev, n, total)) == NULL)
		return ev->err ? ev->err->rc : FB_ERR_LIMIT;
	for (size_t i = 0; i < len; i++) {
		struct fb_value it = list_get(&a[0], i);
		if (i && a[1].u.s.len > 0) {
			memcpy(p + at, a[1].u.s.p, a[1].u.s.len);
			at += a[1].u.s.len;
		}
		if (it.u.s.len > 0)
			memcpy(p + at, it.u.s.p, it.u.s.len);
		at += it.u.s.len;
	}
	p[at] = '\0';
	*out = (struct fb_value){ .kind = FB_V_STRING, .u.s = { p, at } };
	return FB_OK;
}

static fb_rc
fn_matches(struct eval *ev, const struct node *n, const struct fb_value *a, struct fb_value *out)
{
	pcre2_match_data *md;
	int r;

	if (a[0].u.s.len > FB_EXPR_STRING_MAX)
		return runtime_error(ev, n, FB_ERR_LIMIT, "matches(): the value is too long");
	if ((md = pcre2_match_data_create(1, ev->s->gctx)) == NULL)
		return runtime_error(ev, n, FB_ERR_LIMIT, "out of evaluation memory");
	r = pcre2_match(n->re, (PCRE2_SPTR)a[0].u.s.p, a[0].u.s.len, 0, 0, md, ev->e->mctx);
	if (r == PCRE2_ERROR_NOMATCH || r >= 0) {
		*out = (struct fb_value){ .kind = FB_V_BOOL, .u.b = r >= 0 };
		return FB_OK;
	}
	return runtime_error(ev, n, FB_ERR_LIMIT,
	    "matches(): the pattern could not finish on this value (match limits)");
}

static fb_rc
eval_call(struct eval *ev, const struct node *n, struct fb_value *out)
{
	struct fb_value a[8] = { { 0 } };
	enum fn_id f = (enum fn_id)n->fn;
	const int32_t *args = n->n > 0 ? ev->e->args + n->first : NULL;
	char *p;
	fb_rc rc;

	out->kind = FB_V_ABSENT;
	for (uint32_t i = 0; i < n->n; i++) {
		if ((rc = eval_node(ev, args[i], &a[i])) != FB_OK)
			return rc;
		if (f == F_HAS) {
			*out =
			    (struct fb_value){ .kind = FB_V_BOOL, .u.b = a[0].kind != FB_V_ABSENT };
			return FB_OK;
		}
		if (a[i].kind == FB_V_ABSENT)
			return FB_OK;
	}
	switch (f) {
	case F_LOWER:
	case F_UPPER:
		if ((rc = need_string(ev, n, &a[0], fns[f].name)) != FB_OK)
			return rc;
		if ((p = scratch_string(ev, n, a[0].u.s.len)) == NULL)
			return ev->err ? ev->err->rc : FB_ERR_LIMIT;
		for (size_t i = 0; i < a[0].u.s.len; i++) {
			char c = a[0].u.s.p[i];
			if (f == F_LOWER && c >= 'A' && c <= 'Z')
				c = (char)(c + 32);
			else if (f == F_UPPER && c >= 'a' && c <= 'z')
				c = (char)(c - 32);
			p[i] = c;
		}
		p[a[0].u.s.len] = '\0';
		*out = (struct fb_value){ .kind = FB_V_STRING, .u.s = { p, a[0].u.s.len } };
		return FB_OK;
	case F_TRIM: {
		size_t s = 0, e;
		if ((rc = need_string(ev, n, &a[0], "trim")) != FB_OK)
			return rc;
		e = a[0].u.s.len;
		while (s < e && strchr(" \t\r\n\f\v", a[0].u.s.p[s]) != NULL)
			s++;
		while (e > s && strchr(" \t\r\n\f\v", a[0].u.s.p[e - 1]) != NULL)
			e--;
		*out = (struct fb_value){ .kind = FB_V_STRING, .u.s = { a[0].u.s.p + s, e - s } };
		return FB_OK;
	}
	case F_MATCHES:
		if ((rc = need_string(ev, n, &a[0], "matches")) != FB_OK)
			return rc;
		return fn_matches(ev, n, a, out);
	case F_STARTS:
	case F_ENDS: {
		const struct fb_value *s = &a[0], *x = &a[1];
		if ((rc = need_string(ev, n, s, fns[f].name)) != FB_OK ||
		    (rc = need_string(ev, n, x, fns[f].name)) != FB_OK)
			return rc;
		bool r = x->u.s.len == 0 ||
		    (x->u.s.len <= s->u.s.len &&
		        memcmp(f == F_STARTS ? s->u.s.p : s->u.s.p + s->u.s.len - x->u.s.len,
		            x->u.s.p, x->u.s.len) == 0);
		*out = (struct fb_value){ .kind = FB_V_BOOL, .u.b = r };
		return FB_OK;
	}
	case F_SPLIT:
		if ((rc = need_string(ev, n, &a[0], "split")) != FB_OK ||
		    (rc = need_string(ev, n, &a[1], "split")) != FB_OK)
			return rc;
		return fn_split(ev, n, a, out);
	case F_JOIN:
		if ((rc = need_string(ev, n, &a[1], "join")) != FB_OK)
			return rc;
		return fn_join(ev, n, a, out);
	case F_FIRST:
		if (a[0].kind == FB_V_STRING) {
			*out = a[0];
		} else if (is_list(&a[0])) {
			if (list_len(&a[0]) > 0)
				*out = list_get(&a[0], 0);
		} else {
			return runtime_error(
			    ev, n, FB_ERR_INVALID, "first() needs a list or a string");
		}
		return FB_OK;
	case F_SIZE: {
		int64_t sz;
		if (a[0].kind == FB_V_STRING)
			sz = (int64_t)utf8_count(a[0].u.s.p, a[0].u.s.len);
		else if (is_list(&a[0]))
			sz = (int64_t)list_len(&a[0]);
		else if (a[0].kind == FB_V_JSON && json_is_object(a[0].u.json))
			sz = (int64_t)json_object_size(a[0].u.json);
		else
			return runtime_error(
			    ev, n, FB_ERR_INVALID, "size() needs a string, a list or an object");
		*out = (struct fb_value){ .kind = FB_V_INT, .u.i = sz };
		return FB_OK;
	}
	case F_PAIRWISE:
		for (uint32_t i = 0; i < n->n; i++)
			if ((rc = need_string(ev, n, &a[i], "pairwise")) != FB_OK)
				return rc;
		return fn_pairwise(ev, n, a, n->n, out);
	case F_MUTABLE:
		*out = a[0];
		return FB_OK;
	case F_HAS:
		break;
	}
	return runtime_error(ev, n, FB_ERR_INTERNAL, "unknown function");
}

static fb_rc
eval_list(struct eval *ev, const struct node *n, struct fb_value *out)
{
	if (n->lit.kind == FB_V_LIST) { /* all literals: built once at compile time */
		*out = n->lit;
		return FB_OK;
	}
	struct fb_value *items = scratch_alloc(ev->s, (n->n ? n->n : 1) * sizeof(*items));
	fb_rc rc;

	if (items == NULL)
		return runtime_error(ev, n, FB_ERR_LIMIT, "out of evaluation memory");
	for (uint32_t i = 0; i < n->n; i++)
		if ((rc = eval_node(ev, ev->e->args[n->first + i], &items[i])) != FB_OK)
			return rc;
	out->kind = FB_V_LIST;
	out->u.list.v = items;
	out->u.list.n = n->n;
	return FB_OK;
}

static fb_rc
eval_node(struct eval *ev, int32_t i, struct fb_value *out)
{
	const struct node *n = &ev->e->nodes[i];
	struct fb_value a, b;
	fb_rc rc = FB_OK;

	out->kind = FB_V_ABSENT;
	switch ((enum node_kind)n->kind) {
	case N_LIT:
		*out = n->lit;
		break;
	case N_LIST:
		rc = eval_list(ev, n, out);
		break;
	case N_INPUT:
		*out = input_value(ev, (enum input_id)n->input);
		break;
	case N_FIELD:
		rc = eval_field(ev, n, out);
		break;
	case N_INDEX:
		rc = eval_index(ev, n, out);
		break;
	case N_NOT:
		if ((rc = eval_node(ev, n->a, &a)) != FB_OK)
			return rc;
		if (a.kind == FB_V_BOOL)
			*out = (struct fb_value){ .kind = FB_V_BOOL, .u.b = !a.u.b };
		else if (a.kind != FB_V_ABSENT)
			return runtime_error(ev, n, FB_ERR_INVALID, "'!' needs true or false");
		break;
	case N_NEG:
		if ((rc = eval_node(ev, n->a, &a)) != FB_OK)
			return rc;
		if (a.kind == FB_V_INT && a.u.i != INT64_MIN)
			*out = (struct fb_value){ .kind = FB_V_INT, .u.i = -a.u.i };
		else if (a.kind != FB_V_ABSENT)
			return runtime_error(ev, n, FB_ERR_INVALID, "'-' needs a number");
		break;
	case N_AND:
	case N_OR:
		rc = eval_logic(ev, n, out);
		break;
	case N_EQ:
	case N_NE:
		if ((rc = eval_node(ev, n->a, &a)) != FB_OK ||
		    (rc = eval_node(ev, n->b, &b)) != FB_OK)
			return rc;
		if (a.kind != FB_V_ABSENT && b.kind != FB_V_ABSENT)
			*out = (struct fb_value){ .kind = FB_V_BOOL,
				.u.b = values_equal(&a, &b) == (n->kind == N_EQ) };
		break;
	case N_IN:
		rc = eval_in(ev, n, out);
		break;
	case N_CALL:
		rc = eval_call(ev, n, out);
		break;
	}
	if (rc == FB_OK && n->path_top)
		trace_value(ev, n, out);
	return rc;
}

/* A JSON array of strings is handed out as a list, so callers see one shape. */
static fb_rc
normalize(struct eval *ev, struct fb_value *v)
{
	struct fb_value *items;
	size_t n;

	if (!(v->kind == FB_V_JSON && json_is_array(v->u.json)))
		return FB_OK;
	n = json_array_size(v->u.json);
	for (size_t i = 0; i < n; i++)
		if (!json_is_string(json_array_get(v->u.json, i)))
			return FB_OK;
	if ((items = scratch_alloc(ev->s, (n ? n : 1) * sizeof(*items))) == NULL)
		return FB_ERR_SET(ev->err, FB_ERR_LIMIT, "out of evaluation memory");
	for (size_t i = 0; i < n; i++)
		items[i] = from_json(json_array_get(v->u.json, i));
	v->kind = FB_V_LIST;
	v->u.list.v = items;
	v->u.list.n = n;
	return FB_OK;
}

fb_rc
fb_expr_eval(const struct fb_expr *e, const struct fb_expr_input *in,
    struct fb_expr_scratch *scratch, struct fb_value *out, struct fb_buf *trace, struct fb_err *err)
{
	struct eval ev = { e, in, scratch, trace, err };
	fb_rc rc;

	out->kind = FB_V_ABSENT;
	if ((rc = eval_node(&ev, e->root, out)) != FB_OK) {
		out->kind = FB_V_ABSENT;
		return rc;
	}
	return normalize(&ev, out);
}

enum fb_truth
fb_expr_eval_truth(const struct fb_expr *e, const struct fb_expr_input *in,
    struct fb_expr_scratch *scratch, struct fb_buf *trace, struct fb_err *err)
{
	struct fb_err local; /* not zeroed: hot path, and only read after an error set it */
	struct fb_value v;
	fb_rc rc;

	if (err == NULL) {
		local.rc = FB_OK;
		local.msg[0] = '\0';
		err = &local;
	}
	rc = fb_expr_eval(e, in, scratch, &v, trace, err);
	if (rc == FB_OK && v.kind == FB_V_BOOL)
		return v.u.b ? FB_TRUTH_TRUE : FB_TRUTH_FALSE;
	if (trace != NULL) {
		if (rc != FB_OK)
			(void)fb_buf_printf(trace, "    result: error: %s\n", err->msg);
		else if (v.kind == FB_V_ABSENT)
			(void)fb_buf_printf(
			    trace, "    result: absent (a value it needs is absent)\n");
		else
			(void)fb_buf_printf(
			    trace, "    result: not true or false: %s\n", kind_name(&v));
	}
	return FB_TRUTH_UNDECIDED;
}
