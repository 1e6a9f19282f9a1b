/*
 * The files of a tenant's trusts_dir as the trust and import commands write
 * them (one REMOTE.yaml each, YAML quoted so no value can add a key), and
 * the undo that puts every file written back when the result is refused.
 */
#include "fb_federation.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest file kept for undo that is not a key. */
#define TRUST_FILE_MAX 1048576

/* ---- files written with a way back ---- */

struct fb_undo {
	struct undo_file {
		char *path;
		char *old; /* previous content; NULL when the file was new */
		size_t old_len;
		unsigned mode;
		bool secret; /* old came from fb_secret_read */
	} * v;
	size_t n;
};

struct fb_undo *
fb_undo_new(void)
{
	return calloc(1, sizeof(struct fb_undo));
}

fb_rc
fb_undo_write(struct fb_undo *u, const char *path, const void *data, size_t len, unsigned mode,
    struct fb_err *err)
{
	struct undo_file *v = realloc(u->v, (u->n + 1) * sizeof(*v)), *f;
	struct stat st;

	if (v == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	u->v = v;
	f = &u->v[u->n];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL)
		return FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
	f->mode = mode;
	/* A key's previous content is a secret too: read by the same rules. */
	f->secret = mode == FB_SECRET_FILE_MODE;
	if (stat(path, &st) == 0) {
		f->mode = (unsigned)(st.st_mode & 07777);
		if ((f->secret ? fb_secret_read(path, FB_SECRET_PEM_MAX, &f->old, &f->old_len, err)
		               : fb_file_read(path, TRUST_FILE_MAX, &f->old, &f->old_len, err)) !=
		    FB_OK) {
			free(f->path);
			fb_err_prefix(err, "cannot keep the previous content");
			return err->rc;
		}
	}
	u->n++;
	return fb_file_write_atomic(path, data, len, mode, err);
}

void
fb_undo_finish(struct fb_undo *u, bool restore)
{
	struct fb_err ignored = { 0 };

	if (u == NULL)
		return;
	for (size_t i = u->n; i-- > 0;) {
		struct undo_file *f = &u->v[i];
		if (restore && f->old != NULL)
			(void)fb_file_write_atomic(f->path, f->old, f->old_len, f->mode, &ignored);
		else if (restore)
			(void)unlink(f->path);
		if (f->secret) {
			fb_secret_free(f->old);
		} else {
			fb_cleanse(f->old, f->old_len); /* a trust file: not secret, but cheap */
			free(f->old);
		}
		free(f->path);
	}
	free(u->v);
	free(u);
}

/* ---- trust files ---- */

/* A YAML single-quoted scalar; false when s holds what a trust value never may. */
static bool
yaml_quoted(struct fb_buf *b, const char *s)
{
	bool ok = fb_buf_append(b, "'", 1) == FB_OK;

	for (const char *p = s; ok && *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
		ok = fb_buf_append(b, *p == '\'' ? "''" : p, *p == '\'' ? 2 : 1) == FB_OK;
	}
	return ok && fb_buf_append(b, "'", 1) == FB_OK;
}

static bool
yaml_field(struct fb_buf *b, const char *key, const char *value)
{
	if (value == NULL)
		return true;
	return fb_buf_printf(b, "%s: ", key) == FB_OK && yaml_quoted(b, value) &&
	    fb_buf_append(b, "\n", 1) == FB_OK;
}

static bool
yaml_list(struct fb_buf *b, const char *key, const char *const *v, size_t n)
{
	bool ok = fb_buf_printf(b, "%s: [", key) == FB_OK;

	for (size_t i = 0; ok && i < n; i++)
		ok = (i == 0 || fb_buf_append(b, ", ", 2) == FB_OK) && yaml_quoted(b, v[i]);
	return ok && fb_buf_append(b, "]\n", 2) == FB_OK;
}

/*
 * How a trust file names a file: by its name alone when it lives in the trusts folder
 * (the folder can move), else by its absolute path (the file is read from elsewhere).
 * URLs pass unchanged.
 */
static bool
file_ref(const char *dir, const char *path, char *out, size_t size)
{
	size_t n = strlen(dir);
	char *abs;

	if (path == NULL)
		return true;
	if (strncmp(path, dir, n) == 0 && path[n] == '/' && strchr(path + n + 1, '/') == NULL)
		return (size_t)snprintf(out, size, "%s", path + n + 1) < size;
	if (strncmp(path, "https://", 8) == 0 || strncmp(path, "http://", 7) == 0 || path[0] == '/')
		return (size_t)snprintf(out, size, "%s", path) < size;
	if ((abs = realpath(path, NULL)) == NULL)
		return false;
	n = (size_t)snprintf(out, size, "%s", abs);
	free(abs);
	return n < size;
}

fb_rc
fb_trust_file_write(
    struct fb_undo *u, const char *dir, const struct fb_trust_file *t, struct fb_err *err)
{
	char path[4200];
	struct fb_buf b;
	bool ok;
	fb_rc rc;

	char ca[4200], cert[4200], key[4200], keys[4200];

	fb_buf_init(&b, 1 << 20);
	if (!file_ref(dir, t->ca, ca, sizeof(ca)) ||
	    !file_ref(dir, t->client_cert, cert, sizeof(cert)) ||
	    !file_ref(dir, t->client_key, key, sizeof(key)) ||
	    !file_ref(dir, t->keys, keys, sizeof(keys)))
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "a path of the trust with %s cannot be resolved", t->remote);
	ok = fb_buf_printf(&b,
	         "# %s\n# Written by fedbridge trust import and import federation, which keep "
	         "the policies\n# (outbound, release, inbound) when they rewrite it.\n",
	         t->origin) == FB_OK &&
	    yaml_field(&b, "remote", t->remote) &&
	    yaml_list(&b, "tenants", t->tenants, t->n_tenants) &&
	    yaml_field(&b, "relay", t->relay) && yaml_field(&b, "cert_cn", t->cert_cn) &&
	    yaml_field(&b, "ca", t->ca ? ca : NULL) &&
	    yaml_field(&b, "client_cert", t->client_cert ? cert : NULL) &&
	    yaml_field(&b, "client_key", t->client_key ? key : NULL) &&
	    yaml_field(&b, "keys", t->keys ? keys : NULL) && yaml_field(&b, "issuer", t->issuer) &&
	    yaml_field(&b, "outbound", t->outbound) &&
	    (t->n_release == 0 || yaml_list(&b, "release", t->release, t->n_release)) &&
	    yaml_field(&b, "inbound", t->inbound);
	if (!ok) {
		fb_buf_free(&b);
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "the trust with %s holds a control character or is too large", t->remote);
	}
	(void)snprintf(path, sizeof(path), "%s/%s.yaml", dir, t->remote);
	rc = fb_undo_write(u, path, b.data, b.len, 0644, err);
	fb_buf_free(&b);
	return rc;
}
