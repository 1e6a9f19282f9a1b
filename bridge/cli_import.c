/*
 * fedbridge import whitelist: the legacy whitelist files into a pin table,
 * so users keep the fids those files gave them. Both formats, several files
 * at once, merged into an existing table; written atomically.
 */
#include "cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHITELIST_FILE_MAX ((size_t)256 << 20)
#define PINS_FILE_MAX ((size_t)1 << 30)

static const char usage_import[] =
    "usage: fedbridge import whitelist [--tenant ID] --out PINS.json FILE...\n"
    "\n"
    "Reads whitelist.yaml files (remoteTenant + users) and remote_whitelist.yaml\n"
    "files (users with their fid) and writes the pin table a mapping's `pins:`\n"
    "names: each user keeps the fid the files gave them, and the remote tenants\n"
    "a whitelist allowed them are in principal.legacy_remotes. An existing\n"
    "PINS.json is merged into, never replaced blindly; the same fid again is\n"
    "fine, a different one is an error naming both places.\n"
    "\n"
    "  -t, --tenant ID   the local tenantID (needed when no file holds a fid)\n"
    "  -o, --out FILE    the pin table to write (JSON)\n"
    "  -h, --help        this text\n"
    "\n"
    "Exit status: 0 written, 1 a file is wrong or conflicts, 2 usage errors.\n";

static int
usage(const char *msg, const char *arg)
{
	fprintf(stderr, "fedbridge import: ");
	fprintf(stderr, msg, arg);
	fprintf(stderr, "\n%s", usage_import);
	return EXIT_USAGE;
}

/* The table being built: lowercased key -> {"key", "fid", "from", "remotes"}. */
struct merge {
	json_t *pins;
	char *tenant;
	char tenant_from[4200]; /* where the tenant was first seen, for messages */
	size_t added, fids, remotes;
};

static char *
lower_dup(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p != NULL && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	return d;
}

static json_t *
entry_for(struct merge *m, const char *key)
{
	char *k = lower_dup(key);
	json_t *e;

	if (k == NULL)
		return NULL;
	if ((e = json_object_get(m->pins, k)) == NULL) {
		e = json_pack("{s:s}", "key", key);
		if (e == NULL || json_object_set_new(m->pins, k, e) != 0)
			e = NULL;
		m->added++;
	}
	free(k);
	return e;
}

static bool
set_tenant(struct merge *m, const char *tenant, const char *from, struct fb_err *err)
{
	if (m->tenant == NULL) {
		m->tenant = strdup(tenant);
		(void)snprintf(m->tenant_from, sizeof(m->tenant_from), "%s", from);
		return m->tenant != NULL;
	}
	if (strcmp(m->tenant, tenant) == 0)
		return true;
	FB_ERR_SET(err, FB_ERR_INVALID, "%s: tenant %s, but %s says %s", from, tenant,
	    m->tenant_from, m->tenant);
	return false;
}

static bool
add_remote(json_t *e, const char *remote)
{
	json_t *r = json_object_get(e, "remotes");
	size_t i;
	json_t *v;

	if (r == NULL) {
		r = json_array();
		if (r == NULL || json_object_set_new(e, "remotes", r) != 0)
			return false;
	}
	json_array_foreach(r, i, v) if (strcmp(json_string_value(v), remote) == 0) return true;
	return json_array_append_new(r, json_string(remote)) == 0;
}

static bool
set_fid(json_t *e, const char *fid, const char *from, struct fb_err *err)
{
	json_t *cur = json_object_get(e, "fid");

	if (cur != NULL && strcmp(json_string_value(cur), fid) != 0) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: \"%s\" has fid %s, but %s gave it %s", from,
		    json_string_value(json_object_get(e, "key")), fid,
		    json_string_value(json_object_get(e, "from")), json_string_value(cur));
		return false;
	}
	return json_object_set_new(e, "fid", json_string(fid)) == 0 &&
	    json_object_set_new(e, "from", json_string(from)) == 0;
}

/* An existing table: checked by the same parser the bridge uses, then merged. */
static bool
merge_existing(struct merge *m, const char *path, struct fb_err *err)
{
	struct fb_pins *checked = NULL;
	char *data = NULL;
	size_t len = 0;
	json_t *doc, *pins, *v;
	const char *key;
	bool ok = true;

	if (access(path, F_OK) != 0)
		return true;
	if (fb_file_read(path, PINS_FILE_MAX, &data, &len, err) != FB_OK)
		return false;
	if (fb_pins_parse(data, len, path, &checked, err) != FB_OK) {
		free(data);
		return false;
	}
	fb_pins_free(checked);
	doc = json_loadb(data, len, 0, NULL);
	free(data);
	if (doc == NULL) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: unreadable", path);
		return false;
	}
	ok = set_tenant(m, json_string_value(json_object_get(doc, "tenant")), path, err);
	pins = json_object_get(doc, "pins");
	json_object_foreach(pins, key, v)
	{
		json_t *e = ok ? entry_for(m, key) : NULL, *r = json_object_get(v, "remotes"), *x;
		const char *fid = json_string_value(json_object_get(v, "fid"));
		size_t i;
		if (e == NULL || (fid != NULL && !set_fid(e, fid, path, err))) {
			ok = false;
			break;
		}
		json_array_foreach(r, i, x) ok = ok && add_remote(e, json_string_value(x));
	}
	m->added = 0; /* what the table already held is not new */
	json_decref(doc);
	return ok;
}

static bool
merge_file(struct merge *m, const char *path, struct fb_err *err)
{
	struct fb_whitelist w;
	char *data = NULL, from[4200];
	size_t len = 0;
	bool ok = true;

	if (fb_file_read(path, WHITELIST_FILE_MAX, &data, &len, err) != FB_OK)
		return false;
	if (fb_whitelist_parse(data, len, path, &w, err) != FB_OK) {
		free(data);
		return false;
	}
	free(data);
	for (size_t i = 0; ok && i < w.n; i++) {
		const struct fb_whitelist_user *u = &w.users[i];
		json_t *e = entry_for(m, u->key);
		struct fb_fid fid;
		(void)snprintf(from, sizeof(from), "%s:%u:%u", path, u->line, u->col);
		if (e == NULL) {
			FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			ok = false;
			break;
		}
		if (u->fid != NULL) {
			ok = fb_fid_parse(u->fid, strlen(u->fid), &fid, err) == FB_OK &&
			    set_tenant(m, fid.tenant, from, err) && set_fid(e, u->fid, from, err);
		}
		if (ok && w.remote_tenant != NULL)
			ok = add_remote(e, w.remote_tenant);
	}
	fb_whitelist_free(&w);
	return ok;
}

static int
key_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The pin table as fb_pins_parse reads it, keys sorted, one pin per line. */
static char *
render(struct merge *m)
{
	struct fb_buf b;
	const char **keys;
	size_t n = json_object_size(m->pins), k = 0;
	const char *key;
	json_t *e;
	char *out = NULL;

	if ((keys = calloc(n ? n : 1, sizeof(*keys))) == NULL)
		return NULL;
	json_object_foreach(m->pins, key, e) keys[k++] = key;
	qsort(keys, n, sizeof(*keys), key_cmp);
	fb_buf_init(&b, PINS_FILE_MAX);
	(void)fb_buf_printf(
	    &b, "{\n  \"version\": 1,\n  \"tenant\": \"%s\",\n  \"pins\": {", m->tenant);
	for (size_t i = 0; i < n; i++) {
		json_t *pin = json_object(), *src = json_object_get(m->pins, keys[i]);
		json_t *fid = json_object_get(src, "fid"), *rem = json_object_get(src, "remotes");
		char *k_text, *p_text;
		if (fid != NULL) {
			json_object_set(pin, "fid", fid);
			m->fids++;
		}
		if (rem != NULL) {
			json_object_set(pin, "remotes", rem);
			m->remotes++;
		}
		k_text = json_dumps(json_object_get(src, "key"), JSON_ENCODE_ANY);
		p_text = json_dumps(pin, JSON_COMPACT | JSON_SORT_KEYS);
		(void)fb_buf_printf(&b, "%s\n    %s: %s", i ? "," : "", k_text ? k_text : "\"\"",
		    p_text ? p_text : "{}");
		free(k_text);
		free(p_text);
		json_decref(pin);
	}
	if (fb_buf_printf(&b, "\n  }\n}\n") == FB_OK)
		out = strdup(b.data);
	fb_buf_free(&b);
	free(keys);
	return out;
}

/* Temp file in the same directory, fsync, rename: readers see old or new, never half. */
static bool
write_atomic(const char *path, const char *text, struct fb_err *err)
{
	char tmp[4200];
	size_t len = strlen(text), off = 0;
	int fd;

	(void)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) {
		FB_ERR_SET(err, FB_ERR_IO, "%s: %s", tmp, strerror(errno));
		return false;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	if (off != len || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		FB_ERR_SET(err, FB_ERR_IO, "%s: %s", tmp, strerror(errno));
		(void)close(fd);
		(void)unlink(tmp);
		return false;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		FB_ERR_SET(err, FB_ERR_IO, "%s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return false;
	}
	return true;
}

static int
import_whitelist(int argc, char **argv)
{
	static const struct option opts[] = { { "tenant", required_argument, NULL, 't' },
		{ "out", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *tenant = NULL, *out = NULL;
	struct merge m = { 0 };
	struct fb_err err = { 0 };
	char *text = NULL;
	int ch, status = 1;
	bool ok;

	while ((ch = getopt_long(argc, argv, "t:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			tenant = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			fputs(usage_import, stdout);
			return 0;
		default:
			fputs(usage_import, stderr);
			return EXIT_USAGE;
		}
	}
	if (out == NULL)
		return usage("%s", "whitelist: --out PINS.json is required");
	if (optind == argc)
		return usage("%s", "whitelist: give at least one whitelist file");
	if (tenant != NULL && !fb_conf_tenant_id_valid(tenant))
		return usage("whitelist: --tenant %s is not a tenantID", tenant);
	if ((m.pins = json_object()) == NULL)
		return 1;
	ok = merge_existing(&m, out, &err);
	for (int i = optind; ok && i < argc; i++)
		ok = merge_file(&m, argv[i], &err);
	if (ok && tenant != NULL)
		ok = set_tenant(&m, tenant, "--tenant", &err);
	if (ok && m.tenant == NULL) {
		FB_ERR_SET(&err, FB_ERR_INVALID,
		    "no file holds a fid, so the local tenant is unknown: give --tenant");
		ok = false;
	}
	if (ok && (text = render(&m)) == NULL) {
		FB_ERR_SET(&err, FB_ERR_NOMEM, "out of memory");
		ok = false;
	}
	if (ok) {
		/* Never write what the bridge would refuse to load. */
		struct fb_pins *check = NULL;
		ok = fb_pins_parse(text, strlen(text), out, &check, &err) == FB_OK &&
		    write_atomic(out, text, &err);
		if (ok)
			fprintf(stderr, "%s: %zu pins (%zu with fid, %zu with remotes), %zu new\n",
			    out, fb_pins_count(check), m.fids, m.remotes, m.added);
		fb_pins_free(check);
	}
	if (!ok)
		fprintf(stderr, "fedbridge import whitelist: %s\n", err.msg);
	else
		status = 0;
	free(text);
	free(m.tenant);
	json_decref(m.pins);
	return status;
}

int
fb_cli_import(int argc, char **argv)
{
	if (argc < 2)
		return usage("%s", "what to import? whitelist");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_import, stdout);
		return 0;
	}
	if (strcmp(argv[1], "whitelist") == 0)
		return import_whitelist(argc - 1, argv + 1);
	return usage("unknown import %s (known: whitelist)", argv[1]);
}
