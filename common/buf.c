/* Bounded growable buffers, string and file helpers. */
#include "fb_common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
fb_buf_init(struct fb_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static fb_rc
buf_reserve(struct fb_buf *b, size_t extra)
{
	size_t want, ncap;
	char *p;

	if (extra > b->max || b->len > b->max - extra)
		return FB_ERR_LIMIT;
	want = b->len + extra + 1;
	if (want <= b->cap_alloc)
		return FB_OK;
	ncap = b->cap_alloc ? b->cap_alloc : 64;
	while (ncap < want)
		ncap *= 2;
	p = realloc(b->data, ncap);
	if (p == NULL)
		return FB_ERR_NOMEM;
	b->data = p;
	b->cap_alloc = ncap;
	return FB_OK;
}

fb_rc
fb_buf_append(struct fb_buf *b, const void *data, size_t n)
{
	fb_rc rc = buf_reserve(b, n);

	if (rc != FB_OK)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return FB_OK;
}

fb_rc
fb_buf_printf(struct fb_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	fb_rc rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return FB_ERR_INVALID;
	if ((rc = buf_reserve(b, (size_t)n)) != FB_OK)
		return rc;
	va_start(ap, fmt);
	(void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return FB_OK;
}

fb_rc
fb_buf_append_json_string(struct fb_buf *b, const char *s)
{
	fb_rc rc = fb_buf_append(b, "\"", 1);

	for (const unsigned char *p = (const unsigned char *)s; rc == FB_OK && *p; p++) {
		switch (*p) {
		case '"':
			rc = fb_buf_append(b, "\\\"", 2);
			break;
		case '\\':
			rc = fb_buf_append(b, "\\\\", 2);
			break;
		case '\n':
			rc = fb_buf_append(b, "\\n", 2);
			break;
		case '\t':
			rc = fb_buf_append(b, "\\t", 2);
			break;
		default:
			if (*p < 0x20)
				rc = fb_buf_printf(b, "\\u%04x", *p);
			else
				rc = fb_buf_append(b, p, 1);
		}
	}
	if (rc == FB_OK)
		rc = fb_buf_append(b, "\"", 1);
	return rc;
}

void
fb_buf_reset(struct fb_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void
fb_buf_free(struct fb_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap_alloc = 0;
}

char *
fb_strndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
fb_cleanse(void *p, size_t n)
{
	if (p != NULL)
		explicit_bzero(p, n);
}

fb_rc
fb_file_read(const char *path, size_t max, char **out, size_t *out_len, struct fb_err *err)
{
	struct fb_buf b;
	struct stat st;
	char chunk[8192];
	ssize_t n;
	fb_rc rc = FB_OK;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		(void)close(fd);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: not a regular file", path);
	}
	fb_buf_init(&b, max);
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((rc = fb_buf_append(&b, chunk, (size_t)n)) != FB_OK) {
			if (rc == FB_ERR_LIMIT)
				FB_ERR_SET(err, rc, "%s: larger than %zu bytes", path, max);
			else
				FB_ERR_SET(err, rc, "%s: out of memory", path);
			break;
		}
	}
	(void)close(fd);
	if (rc == FB_OK && b.data == NULL && (rc = fb_buf_append(&b, "", 0)) != FB_OK)
		FB_ERR_SET(err, rc, "%s: out of memory", path);
	if (rc != FB_OK) {
		fb_buf_free(&b);
		return rc;
	}
	*out = b.data;
	*out_len = b.len;
	return FB_OK;
}

/* So the rename itself survives a crash, not only the file's content. */
static bool
sync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd;
	bool ok;

	if (copy == NULL)
		return false;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return false;
	ok = fsync(fd) == 0;
	(void)close(fd);
	return ok;
}

fb_rc
fb_file_write_atomic(
    const char *path, const void *data, size_t len, unsigned mode, struct fb_err *err)
{
	char tmp[4200];
	size_t off = 0;
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= sizeof(tmp))
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: path too long", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", tmp, strerror(errno));
	while (off < len) {
		ssize_t w = write(fd, (const char *)data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != len || fchmod(fd, (mode_t)mode) != 0 || fsync(fd) != 0) {
		int e = errno ? errno : EIO;
		(void)close(fd);
		(void)unlink(tmp);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", tmp, strerror(e));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		int e = errno;
		(void)unlink(tmp);
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(e));
	}
	if (!sync_dir_of(path))
		return FB_ERR_SET(err, FB_ERR_IO, "%s: written, but syncing its folder failed: %s",
		    path, strerror(errno));
	return FB_OK;
}
