/*
 * The one way fedbridge reads a secret file (signing and client keys, the fid
 * secret, client secrets, the store password). Every rule is checked on the
 * open descriptor, so what was checked is what is read: no stat-then-open race.
 */
#include "fb_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Permission bits a secret file may have: read and write for its owner, nothing else. */
#define SECRET_MODE_ALLOWED ((mode_t)(S_IRUSR | S_IWUSR))
#define MODE_BITS ((mode_t)07777)
#define ROOT_UID ((uid_t)0)

/*
 * Each buffer carries its capacity in front of the bytes handed out, so
 * fb_secret_free wipes all of it whatever the caller did to the text
 * (trimmed a newline, stored it without its length).
 */
struct secret_hdr {
	size_t cap;
};

static char *
secret_alloc(size_t cap)
{
	struct secret_hdr *h;

	if (cap > SIZE_MAX - sizeof(*h) || (h = malloc(sizeof(*h) + cap)) == NULL)
		return NULL;
	h->cap = cap;
	return (char *)(h + 1);
}

void
fb_secret_free(char *data)
{
	struct secret_hdr *h;

	if (data == NULL)
		return;
	h = (struct secret_hdr *)(void *)data - 1;
	fb_cleanse(data, h->cap);
	free(h);
}

static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISLNK(mode))
		return "a symbolic link";
	return "not a plain file";
}

/* The rules, on what the descriptor refers to. */
static fb_rc
secret_check(const char *path, const struct stat *st, size_t max, struct fb_err *err)
{
	mode_t mode = st->st_mode & MODE_BITS;

	if (!S_ISREG(st->st_mode))
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s is %s, not a regular file", path,
		    file_kind(st->st_mode));
	if ((mode & ~SECRET_MODE_ALLOWED) != 0)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: mode %04o, must be 0600 or 0400%s; run chmod 600 on it", path,
		    (unsigned)mode,
		    (mode & (S_IRWXG | S_IRWXO)) ? ": group or others can get at the secret" : "");
	/* Another user's file could be swapped or read by them; root's is the admin's. */
	if (st->st_uid != geteuid() && st->st_uid != ROOT_UID)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: owned by uid %u, must be owned by uid %u (the user fedbridge runs as) or "
		    "root",
		    path, (unsigned)st->st_uid, (unsigned)geteuid());
	if (st->st_size < 0 || (uintmax_t)st->st_size > (uintmax_t)max)
		return FB_ERR_SET(err, FB_ERR_LIMIT, "%s: larger than %zu bytes", path, max);
	return FB_OK;
}

/* Reads exactly the size fstat gave; a file that grows or shrinks meanwhile is refused. */
static fb_rc
secret_read_fd(int fd, const char *path, char *data, size_t size, struct fb_err *err)
{
	size_t got = 0;
	char extra;
	ssize_t n;

	while (got < size) {
		n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
		if (n == 0)
			return FB_ERR_SET(err, FB_ERR_IO, "%s: changed while being read", path);
		got += (size_t)n;
	}
	do
		n = read(fd, &extra, sizeof(extra));
	while (n < 0 && errno == EINTR);
	if (n != 0)
		return FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path,
		    n < 0 ? strerror(errno) : "changed while being read");
	return FB_OK;
}

fb_rc
fb_secret_read(const char *path, size_t max, char **out, size_t *out_len, struct fb_err *err)
{
	struct stat st;
	size_t size;
	char *data;
	fb_rc rc;
	int fd;

	*out = NULL;
	*out_len = 0;
	/* O_NOFOLLOW: a link could point anywhere its maker likes. O_NONBLOCK: opening a
	 * FIFO must not hang before fstat can refuse it; it changes nothing for a file. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s is a symbolic link: a secret is read from the file itself, never through "
		    "a link",
		    path);
	if (fd < 0)
		return FB_ERR_SET(err, FB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
		(void)close(fd);
		return rc;
	}
	if ((rc = secret_check(path, &st, max, err)) != FB_OK) {
		(void)close(fd);
		return rc;
	}
	size = (size_t)st.st_size;
	/* One allocation of the final size: growing would leave copies in freed memory. */
	if ((data = secret_alloc(size + 1)) == NULL) {
		(void)close(fd);
		return FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", path);
	}
	rc = secret_read_fd(fd, path, data, size, err);
	(void)close(fd);
	if (rc != FB_OK) {
		fb_secret_free(data);
		return rc;
	}
	data[size] = '\0';
	*out = data;
	*out_len = size;
	return FB_OK;
}
