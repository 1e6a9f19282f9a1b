/* Load entry points, diagnostics, the arena and reference counting. */
#include "conf_int.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct conf_arena_chunk {
	struct conf_arena_chunk *next;
	size_t used, size;
	max_align_t data[];
};

#define ARENA_CHUNK 16384
/* A diagnostic's text, and its line with the place and path before it. */
#define DIAG_BODY_MAX 2048
#define DIAG_LINE_MAX 4096

void *
conf_arena_alloc(struct conf_arena *a, size_t n)
{
	struct conf_arena_chunk *ch = a->head;
	size_t align = sizeof(max_align_t), need;
	char *p;

	n = (n + align - 1) / align * align;
	if (ch == NULL || ch->size - ch->used < n) {
		need = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		ch = calloc(1, sizeof(*ch) + need);
		if (ch == NULL)
			return NULL;
		ch->size = need;
		ch->next = a->head;
		a->head = ch;
	}
	p = (char *)ch->data + ch->used;
	ch->used += n;
	return p;
}

char *
conf_arena_strndup(struct conf_arena *a, const char *s, size_t n)
{
	char *p = conf_arena_alloc(a, n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

char *
conf_arena_printf(struct conf_arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (p = conf_arena_alloc(a, (size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	(void)vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void
conf_arena_free(struct conf_arena *a)
{
	struct conf_arena_chunk *ch = a->head, *next;

	for (; ch != NULL; ch = next) {
		next = ch->next;
		free(ch);
	}
	a->head = NULL;
}

static void
diags_add(struct fb_conf_diags *d, struct fb_conf_pos pos, char *msg)
{
	struct fb_conf_diag *v;

	if (msg == NULL || d->n >= FB_CONF_MAX_DIAGS) {
		d->dropped++;
		free(msg);
		return;
	}
	v = realloc(d->v, (d->n + 1) * sizeof(*v));
	if (v == NULL) {
		d->dropped++;
		free(msg);
		return;
	}
	d->v = v;
	d->v[d->n].msg = msg;
	d->v[d->n].pos = pos;
	d->n++;
}

/* The configuration file first, then included files by name; each in file order. */
static bool
pos_after(struct fb_conf_pos a, struct fb_conf_pos b)
{
	if (a.file != b.file) {
		if (a.file == NULL || b.file == NULL)
			return b.file == NULL;
		int c = strcmp(a.file, b.file);
		if (c != 0)
			return c > 0;
	}
	return a.line > b.line || (a.line == b.line && a.col > b.col);
}

/* Insertion sort keeps equal positions in the order found. */
static void
diags_sort(struct fb_conf_diags *d)
{
	for (size_t i = 1; i < d->n; i++) {
		struct fb_conf_diag x = d->v[i];
		size_t j = i;
		while (j > 0 && pos_after(d->v[j - 1].pos, x.pos)) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = x;
	}
}

/* "FILE:LINE:COL: PATH: what" (no LINE:COL without a line, no PATH when there is none). */
static void diag_vadd(struct fb_conf_diags *diags, const char *file, struct fb_conf_pos pos,
    const char *path, const char *fmt, va_list ap) FB_PRINTF(5, 0);

static void
diag_vadd(struct fb_conf_diags *diags, const char *file, struct fb_conf_pos pos, const char *path,
    const char *fmt, va_list ap)
{
	struct fb_buf b;
	char body[DIAG_BODY_MAX];

	(void)vsnprintf(body, sizeof(body), fmt, ap);
	fb_buf_init(&b, DIAG_LINE_MAX);
	if (pos.file != NULL)
		file = pos.file;
	if (pos.line > 0)
		(void)fb_buf_printf(&b, "%s:%u:%u: ", file, pos.line, pos.col);
	else
		(void)fb_buf_printf(&b, "%s: ", file);
	if (path != NULL && *path != '\0')
		(void)fb_buf_printf(&b, "%s: ", path);
	(void)fb_buf_printf(&b, "%s", body);
	diags_add(diags, pos, b.data);
}

bool
conf_diag(struct conf_ctx *c, struct fb_conf_pos pos, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(c->diags, c->name, pos, path, fmt, ap);
	va_end(ap);
	return false;
}

void
fb_conf_diag_add(struct fb_conf_diags *diags, const struct fb_conf *conf, struct fb_conf_pos pos,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(diags, conf->path, pos, NULL, fmt, ap);
	va_end(ap);
}

void
conf_pos_record(struct conf_ctx *c, const void *addr, struct fb_conf_pos pos)
{
	struct conf_pos_entry *v;
	size_t ncap;

	if (c->n_pos == c->cap_pos) {
		ncap = c->cap_pos ? c->cap_pos * 2 : 256;
		v = realloc(c->pos, ncap * sizeof(*v));
		if (v == NULL) {
			c->nomem = true;
			return;
		}
		c->pos = v;
		c->cap_pos = ncap;
	}
	c->pos[c->n_pos].addr = addr;
	c->pos[c->n_pos].pos = pos;
	c->n_pos++;
}

static int
pos_cmp(const void *a, const void *b)
{
	const struct conf_pos_entry *x = a, *y = b;

	if (x->addr == y->addr)
		return 0;
	return (uintptr_t)x->addr < (uintptr_t)y->addr ? -1 : 1;
}

struct fb_conf_pos
conf_pos_lookup(const struct conf_pos_entry *v, size_t n, const void *addr)
{
	struct conf_pos_entry key = { .addr = addr };
	const struct conf_pos_entry *e;
	struct fb_conf_pos none = { 0 };

	if (v == NULL || n == 0)
		return none;
	e = bsearch(&key, v, n, sizeof(*v), pos_cmp);
	return e ? e->pos : none;
}

struct fb_conf_pos
fb_conf_pos_of(const struct fb_conf *conf, const void *field)
{
	const struct fb_conf_impl *impl = (const struct fb_conf_impl *)conf;

	return conf_pos_lookup(impl->pos, impl->n_pos, field);
}

struct fb_conf *
fb_conf_load_buffer(const char *data, size_t len, const char *name, const char *basedir,
    unsigned flags, struct fb_conf_diags *diags)
{
	struct fb_conf_impl *impl;
	struct conf_ctx c;
	struct conf_node *root;
	bool ok;

	impl = calloc(1, sizeof(*impl));
	if (impl == NULL) {
		diags_add(diags, (struct fb_conf_pos){ 0 }, NULL);
		return NULL;
	}
	memset(&c, 0, sizeof(c));
	c.name = name;
	c.basedir = basedir;
	c.flags = flags;
	c.arena = &impl->arena;
	c.diags = diags;

	impl->pub.path = conf_arena_strndup(&impl->arena, name, strlen(name));
	impl->pub.basedir = conf_arena_strndup(&impl->arena, basedir, strlen(basedir));
	if (len > FB_CONF_MAX_BYTES) {
		ok = conf_diag(&c, (struct fb_conf_pos){ 0 }, NULL,
		    "the file is %zu bytes, more than the limit of %d", len, FB_CONF_MAX_BYTES);
	} else {
		root = conf_yaml_parse(&c, data, len);
		ok = root != NULL && conf_schema_apply(&c, root, &impl->pub);
		if (ok) {
			qsort(c.pos, c.n_pos, sizeof(*c.pos), pos_cmp);
			ok = conf_check_refs(&c, &impl->pub);
		}
	}
	if (c.nomem) {
		ok = conf_diag(&c, (struct fb_conf_pos){ 0 }, NULL, "out of memory");
	}
	if (!ok || diags->n > 0) {
		if (diags->n == 0)
			conf_diag(&c, (struct fb_conf_pos){ 0 }, NULL, "invalid configuration");
		diags_sort(diags);
		free(c.pos);
		conf_arena_free(&impl->arena);
		free(impl);
		return NULL;
	}
	impl->pos = c.pos;
	impl->n_pos = c.n_pos;
	atomic_init(&impl->refs, 1);
	return &impl->pub;
}

struct fb_conf *
fb_conf_load_file(const char *path, unsigned flags, struct fb_conf_diags *diags)
{
	struct fb_conf *conf;
	struct fb_err err = { 0 };
	char *data = NULL, *copy, *dir;
	size_t len = 0;
	struct conf_ctx c = { .name = path, .diags = diags };

	/* Read one byte past the cap so an oversized file is reported as such. */
	if (fb_file_read(path, FB_CONF_MAX_BYTES + 1, &data, &len, &err) != FB_OK) {
		if (err.rc == FB_ERR_LIMIT)
			conf_diag(&c, (struct fb_conf_pos){ 0 }, NULL,
			    "the file is larger than the limit of %d bytes", FB_CONF_MAX_BYTES);
		else
			conf_diag(&c, (struct fb_conf_pos){ 0 }, NULL, "cannot read: %s", err.msg);
		return NULL;
	}
	copy = strdup(path);
	if (copy == NULL) {
		free(data);
		conf_diag(&c, (struct fb_conf_pos){ 0 }, NULL, "out of memory");
		return NULL;
	}
	dir = dirname(copy);
	conf = fb_conf_load_buffer(data, len, path, dir, flags, diags);
	free(copy);
	free(data);
	return conf;
}

void
fb_conf_diags_free(struct fb_conf_diags *diags)
{
	if (diags == NULL)
		return;
	for (size_t i = 0; i < diags->n; i++)
		free(diags->v[i].msg);
	free(diags->v);
	memset(diags, 0, sizeof(*diags));
}

struct fb_conf *
fb_conf_ref(struct fb_conf *conf)
{
	struct fb_conf_impl *impl = (struct fb_conf_impl *)conf;

	if (impl != NULL)
		atomic_fetch_add_explicit(&impl->refs, 1, memory_order_relaxed);
	return conf;
}

void
fb_conf_unref(struct fb_conf *conf)
{
	struct fb_conf_impl *impl = (struct fb_conf_impl *)conf;

	if (impl == NULL)
		return;
	if (atomic_fetch_sub_explicit(&impl->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(impl->pos);
	conf_arena_free(&impl->arena);
	free(impl);
}

const struct fb_conf_tenant *
fb_conf_tenant_find(const struct fb_conf *conf, const char *id)
{
	for (size_t i = 0; i < conf->n_tenants; i++)
		if (strcmp(conf->tenants[i].id, id) == 0)
			return &conf->tenants[i];
	return NULL;
}
