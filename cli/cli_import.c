/*
 * fedbridge import whitelist: the legacy whitelist files into a pin table,
 * so users keep the fids those files gave them. Both formats, several files
 * at once, merged into an existing table; written atomically, and only when
 * everything read was valid.
 */
#include "cli_int.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHITELIST_FILE_MAX ((size_t)256 << 20)
#define PINS_FILE_MAX ((size_t)1 << 30)
#define WHERE_MAX 4200 /* a path and a line:col */

static const char usage_import[] =
    "usage: fedbridge import whitelist [--tenant ID] --out PINS.json FILE...\n"
    "       fedbridge import federation -c FILE [--dry-run] FEDERATION.yml\n"
    "\n"
    "(fedbridge import federation --help tells about the second.)\n"
    "\n"
    "Turns the messenger's legacy whitelist files into the pin table that a\n"
    "mapping's `pins:` names, so users who had a fid keep it. Each FILE is\n"
    "either format, told apart by what it holds:\n"
    "\n"
    "  whitelist.yaml          remoteTenant: <tenantID> and users: (e-mails).\n"
    "                          Each user's remotes gain remoteTenant; outbound\n"
    "                          rules see them as principal.legacy_remotes.\n"
    "  remote_whitelist.yaml   users: with a fid: each, as generated for your\n"
    "                          installation. Each user keeps that fid.\n"
    "\n"
    "Users are matched without regard to ASCII letter case. An existing\n"
    "PINS.json is merged into: remotes accumulate, the same fid again is fine,\n"
    "and a different fid for a user is an error naming both places. The local\n"
    "tenant is the one of the fids; every fid must be of it (a\n"
    "remote_whitelist.yaml received from another installation lists that\n"
    "installation's users and is refused). Nothing is written unless every\n"
    "file is valid; PINS.json is replaced atomically (mode 0644), keys sorted,\n"
    "one pin per line.\n"
    "\n"
    "  -t, --tenant ID   the local tenantID; required when no file holds a fid\n"
    "  -o, --out FILE    the pin table to create or merge into (JSON)\n"
    "  -h, --help        this text\n"
    "\n"
    "Exit status: 0 written, 1 a file is wrong or conflicts, 2 usage error.\n"
    "\n"
    "example:\n"
    "  fedbridge import whitelist --out /etc/fedbridge/pins.json \\\n"
    "      whitelist.yaml remote_whitelist.yaml\n";

/*
 * The table being built: lowercased key -> {"key": as first written,
 * "fid", "from": where the fid came from, "remotes": [...]}.
 */
struct merge {
	json_t *pins;
	char tenant[FB_FID_TENANT_MAX + 1]; /* empty until known */
	char tenant_from[WHERE_MAX]; /* where it was first seen, for messages */
	size_t added, fids, remotes;
};

static char *
lower_dup(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p != NULL && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + ('a' - 'A'));
	return d;
}

/* The entry for key, made when new (counted as added). NULL: out of memory. */
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

static void
set_tenant(struct merge *m, const char *tenant, const char *from)
{
	(void)snprintf(m->tenant, sizeof(m->tenant), "%s", tenant);
	(void)snprintf(m->tenant_from, sizeof(m->tenant_from), "%s", from);
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
	json_array_foreach(r, i, v)
	{
		if (strcmp(json_string_value(v), remote) == 0)
			return true;
	}
	return json_array_append_new(r, json_string(remote)) == 0;
}

/* The same fid again is fine; another is an error naming both places. */
static bool
set_fid(json_t *e, const char *key, const char *fid, const char *from, struct fb_err *err)
{
	json_t *cur = json_object_get(e, "fid");

	if (cur != NULL) {
		if (strcmp(json_string_value(cur), fid) == 0)
			return true;
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: users: \"%s\": fid %s, but %s gave it %s",
		    from, key, fid, json_string_value(json_object_get(e, "from")),
		    json_string_value(cur));
		return false;
	}
	if (json_object_set_new(e, "fid", json_string(fid)) != 0 ||
	    json_object_set_new(e, "from", json_string(from)) != 0) {
		FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		return false;
	}
	return true;
}

/* An existing table: checked by the same parser the bridge uses, then merged. */
static bool
merge_existing(struct merge *m, const char *path, struct fb_err *err)
{
	struct fb_pins *checked = NULL;
	char *data = NULL;
	size_t len = 0;
	json_t *doc, *v;
	const char *key;
	bool ok = true;

	if (access(path, F_OK) != 0 && errno == ENOENT)
		return true;
	if (fb_file_read(path, PINS_FILE_MAX, &data, &len, err) != FB_OK)
		return false;
	if (fb_pins_parse(data, len, path, &checked, err) != FB_OK) {
		free(data);
		return false;
	}
	if (m->tenant[0] != '\0' && strcmp(m->tenant, fb_pins_tenant(checked)) != 0) {
		FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: the pin table is for tenant %s, but %s says %s; refusing to merge", path,
		    fb_pins_tenant(checked), m->tenant_from, m->tenant);
		ok = false;
	} else {
		set_tenant(m, fb_pins_tenant(checked), path);
	}
	fb_pins_free(checked);
	/* fb_pins_parse has no iterator: read the (valid) JSON once more to walk it. */
	doc = ok ? json_loadb(data, len, 0, NULL) : NULL;
	free(data);
	if (ok && doc == NULL) {
		FB_ERR_SET(err, FB_ERR_NOMEM, "%s: out of memory", path);
		return false;
	}
	json_object_foreach(json_object_get(doc, "pins"), key, v)
	{
		json_t *e = entry_for(m, key), *r = json_object_get(v, "remotes"), *x;
		const char *fid = json_string_value(json_object_get(v, "fid"));
		size_t i;
		if (e == NULL) {
			FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			ok = false;
			break;
		}
		if (fid != NULL && !set_fid(e, key, fid, path, err)) {
			ok = false;
			break;
		}
		json_array_foreach(r, i, x)
		{
			ok = ok && add_remote(e, json_string_value(x));
		}
	}
	m->added = 0; /* what the table already held is not new */
	json_decref(doc);
	return ok;
}

/* A user's fid: of the table's tenant (the first fid decides when nothing else did). */
static bool
merge_fid(struct merge *m, json_t *e, const struct fb_whitelist_user *u, const char *path,
    const char *from, struct fb_err *err)
{
	char where[WHERE_MAX];
	struct fb_fid fid;

	if (fb_fid_parse(u->fid, strlen(u->fid), &fid, err) != FB_OK)
		return false;
	(void)snprintf(where, sizeof(where), "%s:%u:%u", path, u->fid_line, u->fid_col);
	if (m->tenant[0] == '\0')
		set_tenant(m, fid.tenant, where);
	if (strcmp(fid.tenant, m->tenant) != 0) {
		FB_ERR_SET(err, FB_ERR_INVALID,
		    "%s: users: \"%s\": fid %s is of tenant %s, but the pin table is for %s (from "
		    "%s); a remote_whitelist.yaml from another installation lists its users, not "
		    "yours",
		    where, u->key, u->fid, fid.tenant, m->tenant, m->tenant_from);
		return false;
	}
	return set_fid(e, u->key, u->fid, from, err);
}

static bool
merge_users(struct merge *m, const struct fb_whitelist *w, const char *path, struct fb_err *err)
{
	char from[WHERE_MAX];

	for (size_t i = 0; i < w->n; i++) {
		const struct fb_whitelist_user *u = &w->users[i];
		json_t *e = entry_for(m, u->key);
		(void)snprintf(from, sizeof(from), "%s:%u:%u", path, u->line, u->col);
		if (e == NULL) {
			FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			return false;
		}
		if (u->fid != NULL && !merge_fid(m, e, u, path, from, err))
			return false;
		if (w->remote_tenant != NULL && !add_remote(e, w->remote_tenant)) {
			FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
			return false;
		}
	}
	return true;
}

static bool
parse_file(const char *path, struct fb_whitelist *w, struct fb_err *err)
{
	char *data = NULL;
	size_t len = 0;
	fb_rc rc;

	if (fb_file_read(path, WHITELIST_FILE_MAX, &data, &len, err) != FB_OK)
		return false;
	rc = fb_whitelist_parse(data, len, path, w, err);
	free(data);
	return rc == FB_OK;
}

/* Once the tenant is known: a whitelist.yaml naming it as the remote is a mistake. */
static bool
check_remote(
    const struct merge *m, const struct fb_whitelist *w, const char *path, struct fb_err *err)
{
	if (w->remote_tenant == NULL || strcmp(w->remote_tenant, m->tenant) != 0)
		return true;
	FB_ERR_SET(err, FB_ERR_INVALID,
	    "%s:%u:%u: remoteTenant: %s is the local tenant (from %s), not a remote one", path,
	    w->remote_line, w->remote_col, w->remote_tenant, m->tenant_from);
	return false;
}

/*
 * Every file is parsed before anything is merged, so a broken file is
 * reported first, and a remoteTenant can be checked against a tenant that
 * a later file's fids decide.
 */
static bool
merge_files(struct merge *m, char **paths, size_t n, struct fb_err *err)
{
	struct fb_whitelist *w = calloc(n, sizeof(*w));
	bool ok = true;

	if (w == NULL) {
		FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		return false;
	}
	for (size_t i = 0; ok && i < n; i++)
		ok = parse_file(paths[i], &w[i], err);
	for (size_t i = 0; ok && i < n; i++)
		ok = merge_users(m, &w[i], paths[i], err);
	if (ok && m->tenant[0] == '\0') {
		FB_ERR_SET(err, FB_ERR_INVALID,
		    "no file holds a fid, so the local tenant is unknown: give --tenant");
		ok = false;
	}
	for (size_t i = 0; ok && i < n; i++)
		ok = check_remote(m, &w[i], paths[i], err);
	for (size_t i = 0; i < n; i++)
		fb_whitelist_free(&w[i]); /* zeroed when not parsed */
	free(w);
	return ok;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
json_str_cmp(const void *a, const void *b)
{
	return strcmp(
	    json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* One pin as compact JSON with sorted members and sorted remotes: stable output. */
static char *
render_pin(struct merge *m, json_t *src)
{
	json_t *pin = json_object(), *fid = json_object_get(src, "fid");
	json_t *rem = json_object_get(src, "remotes");
	size_t n = json_array_size(rem);
	json_t **v = calloc(n + 1, sizeof(json_t *));
	json_t *sorted = json_array();
	char *text = NULL;

	if (pin == NULL || v == NULL || sorted == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(rem, i);
	qsort(v, n, sizeof(json_t *), json_str_cmp);
	for (size_t i = 0; i < n; i++)
		if (json_array_append(sorted, v[i]) != 0)
			goto out;
	if (fid != NULL) {
		if (json_object_set(pin, "fid", fid) != 0)
			goto out;
		m->fids++;
	}
	if (n > 0) {
		if (json_object_set(pin, "remotes", sorted) != 0)
			goto out;
		m->remotes++;
	}
	text = json_dumps(pin, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(sorted);
	json_decref(pin);
	free(v);
	return text;
}

/* The pin table as fb_pins_parse reads it: keys sorted, one pin per line, so diffs read well. */
static char *
render(struct merge *m)
{
	struct fb_buf b;
	const char **keys;
	size_t n = json_object_size(m->pins), k = 0;
	const char *key;
	json_t *e;
	char *out = NULL;
	fb_rc rc;

	if ((keys = calloc(n + 1, sizeof(*keys))) == NULL)
		return NULL;
	json_object_foreach(m->pins, key, e)
	{
		keys[k++] = key;
	}
	qsort(keys, n, sizeof(*keys), str_cmp);
	fb_buf_init(&b, PINS_FILE_MAX);
	rc = fb_buf_printf(
	    &b, "{\n  \"version\": 1,\n  \"tenant\": \"%s\",\n  \"pins\": {", m->tenant);
	for (size_t i = 0; rc == FB_OK && i < n; i++) {
		json_t *src = json_object_get(m->pins, keys[i]);
		char *k_text = json_dumps(json_object_get(src, "key"), JSON_ENCODE_ANY);
		char *p_text = render_pin(m, src);
		if (k_text == NULL || p_text == NULL)
			rc = FB_ERR_NOMEM;
		else
			rc = fb_buf_printf(&b, "%s\n    %s: %s", i ? "," : "", k_text, p_text);
		free(k_text);
		free(p_text);
	}
	if (rc == FB_OK && fb_buf_printf(&b, "%s}\n}\n", n ? "\n  " : "") == FB_OK)
		out = strdup(b.data);
	fb_buf_free(&b);
	free(keys);
	return out;
}

/* Renders, checks with the bridge's own parser (never write what it would refuse), writes. */
static bool
finish(struct merge *m, const char *out, struct fb_err *err)
{
	struct fb_pins *check = NULL;
	char *text;
	bool ok;

	if ((text = render(m)) == NULL) {
		FB_ERR_SET(err, FB_ERR_NOMEM, "out of memory");
		return false;
	}
	ok = fb_pins_parse(text, strlen(text), out, &check, err) == FB_OK &&
	    fb_file_write_atomic(out, text, strlen(text), 0644, err) == FB_OK;
	if (ok)
		fprintf(stderr, "%s: %zu pins (%zu with fid, %zu with remotes), %zu new\n", out,
		    fb_pins_count(check), m->fids, m->remotes, m->added);
	fb_pins_free(check);
	free(text);
	return ok;
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
	int ch;
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
		return fb_cli_usage(
		    "import", usage_import, "whitelist: --out PINS.json is required");
	if (optind == argc)
		return fb_cli_usage(
		    "import", usage_import, "whitelist: give at least one whitelist file");
	if (tenant != NULL && !fb_conf_tenant_id_valid(tenant))
		return fb_cli_usage("import", usage_import,
		    "whitelist: --tenant %s is not a tenantID (8 to 16 letters and digits)",
		    tenant);
	if ((m.pins = json_object()) == NULL)
		return 1;
	/* --tenant first, so a fid of another tenant is reported where it is written. */
	if (tenant != NULL)
		set_tenant(&m, tenant, "--tenant");
	ok = merge_existing(&m, out, &err) &&
	    merge_files(&m, argv + optind, (size_t)(argc - optind), &err) && finish(&m, out, &err);
	if (!ok)
		fprintf(stderr, "fedbridge import whitelist: %s\n", err.msg);
	json_decref(m.pins);
	return ok ? 0 : 1;
}

static const char usage_federation[] =
    "usage: fedbridge import federation -c FILE [--dry-run] FEDERATION.yml\n"
    "\n"
    "Turns the messenger's federation.yml into trusts of its localTenant (which\n"
    "must be a tenant of FILE with a trusts_dir): one NAME.yaml per instance, with\n"
    "its address as relay, cert_cn, cacert as ca, ssl_cert and ssl_key as our\n"
    "client certificate and key, and its tenants. The trusts have no keys yet\n"
    "(fedbridge check says so): import each remote's trust export to add them.\n"
    "An instance already imported keeps its keys, issuer and policies; a trust\n"
    "written by hand in FILE is never touched. Relative paths are taken from\n"
    "FEDERATION.yml's folder. Nothing is kept unless FILE still loads.\n"
    "\n"
    "  -c, --config FILE   the configuration file\n"
    "  -n, --dry-run       print the trusts, write nothing\n"
    "  -h, --help          this text\n"
    "\n"
    "Exit status: 0 written, 1 a file is wrong, 2 usage error.\n";

/* A federation.yml path as a trust file names it: absolute. */
static char *
vk_path(const char *base, const char *p)
{
	char *out = NULL;
	size_t n;

	if (p[0] == '/')
		return strdup(p);
	n = strlen(base) + strlen(p) + 2;
	if ((out = malloc(n)) != NULL)
		(void)snprintf(out, n, "%s/%s", base, p);
	return out;
}

static int
import_federation(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "dry-run", no_argument, NULL, 'n' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *config = NULL, *file;
	bool dry = false;
	struct fb_conf *conf = NULL;
	struct fb_vkfed vk = { 0 };
	struct fb_err err = { 0 };
	struct fb_buf notes;
	struct fb_undo *u = NULL;
	const struct fb_conf_tenant *t;
	char *data = NULL, *copy = NULL, origin[600];
	const char *base;
	size_t len = 0;
	int ch, status = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:nh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case 'h':
			fputs(usage_federation, stdout);
			return 0;
		default:
			fputs(usage_federation, stderr);
			return EXIT_USAGE;
		}
	}
	if (config == NULL || optind + 1 != argc) {
		fprintf(stderr,
		    "fedbridge import federation: -c FILE and one FEDERATION.yml are "
		    "required\n%s",
		    usage_federation);
		return EXIT_USAGE;
	}
	file = argv[optind];
	fb_buf_init(&notes, 1 << 20);
	if (fb_file_read(file, (size_t)1 << 20, &data, &len, &err) != FB_OK ||
	    fb_vkfed_parse(data, len, file, &vk, &notes, &err) != FB_OK) {
		fprintf(stderr, "fedbridge import federation: %s\n", err.msg);
		goto out;
	}
	if (notes.len > 0)
		fputs(notes.data, stderr);
	if (!vk.mtls_enabled)
		fprintf(stderr,
		    "fedbridge import federation: %s: mtlsEnabled is not true; relays "
		    "must use mTLS: tokens are bound to the client certificates\n",
		    file);
	if ((conf = fb_cli_load_conf(config, NULL)) == NULL)
		goto out;
	if ((t = fb_conf_tenant_find(conf, vk.local_tenant)) == NULL) {
		fprintf(stderr,
		    "fedbridge import federation: %s:%u:%u: localTenant %s is not a tenant of %s\n",
		    file, vk.local_line, vk.local_col, vk.local_tenant, config);
		goto out;
	}
	if (!fb_cli_trusts_dir(conf, t, "import federation"))
		goto out;
	if ((copy = strdup(file)) == NULL || (u = fb_undo_new()) == NULL)
		goto out;
	base = dirname(copy);
	for (size_t i = 0; i < vk.n; i++) {
		const struct fb_vkfed_instance *in = &vk.v[i];
		const struct fb_conf_trust *old = fb_cli_trust_find(t, in->name);
		char *ca = vk_path(base, in->cacert), *cert = vk_path(base, in->ssl_cert),
		     *key = vk_path(base, in->ssl_key);
		struct fb_trust_file tf = { 0 };
		fb_rc rc;

		if (!fb_cli_trust_writable(conf, old, "import federation")) {
			free(ca);
			free(cert);
			free(key);
			fb_undo_finish(u, true);
			u = NULL;
			goto out;
		}
		(void)snprintf(origin, sizeof(origin), "Trust with %s, from %s:%u:%u.", in->name,
		    file, in->line, in->col);
		tf.origin = origin;
		tf.remote = in->name;
		tf.tenants = (const char *const *)in->tenants;
		tf.n_tenants = in->n_tenants;
		tf.relay = in->address;
		tf.cert_cn = in->cert_cn && strcmp(in->cert_cn, in->name) != 0 ? in->cert_cn : NULL;
		tf.ca = ca;
		tf.client_cert = cert;
		tf.client_key = key;
		if (old != NULL) {
			tf.keys = old->keys;
			tf.issuer = old->issuer;
			tf.outbound = old->outbound.src;
			tf.inbound = old->inbound.src;
			tf.release = old->release.v;
			tf.n_release = old->release.n;
		}
		printf("%s trust with %s (relay %s, tenants", old ? "update" : "add", in->name,
		    in->address);
		for (size_t j = 0; j < in->n_tenants; j++)
			printf(" %s", in->tenants[j]);
		printf(") for tenant %s%s\n", t->id, tf.keys ? "" : "; no keys yet");
		rc = (ca && cert && key)
		    ? (dry ? FB_OK : fb_trust_file_write(u, t->trusts_dir, &tf, &err))
		    : FB_ERR_SET(&err, FB_ERR_NOMEM, "out of memory");
		free(ca);
		free(cert);
		free(key);
		if (rc != FB_OK) {
			fprintf(stderr, "fedbridge import federation: %s\n", err.msg);
			fb_undo_finish(u, true);
			u = NULL;
			goto out;
		}
	}
	if (dry) {
		fb_undo_finish(u, false);
		u = NULL;
		status = 0;
		goto out;
	}
	if (!fb_cli_undo_unless_valid(config, u)) {
		u = NULL;
		goto out;
	}
	u = NULL;
	printf("%zu trust%s written to %s; import each remote's trust export for its keys, then "
	       "reload the bridge\n",
	    vk.n, vk.n == 1 ? "" : "s", t->trusts_dir);
	status = 0;
out:
	fb_undo_finish(u, true);
	free(copy);
	free(data);
	fb_buf_free(&notes);
	fb_vkfed_free(&vk);
	fb_conf_unref(conf);
	return status;
}

int
fb_cli_import(int argc, char **argv)
{
	if (argc < 2)
		return fb_cli_usage(
		    "import", usage_import, "what to import? (known: whitelist, federation)");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_import, stdout);
		return 0;
	}
	if (strcmp(argv[1], "whitelist") == 0)
		return import_whitelist(argc - 1, argv + 1);
	if (strcmp(argv[1], "federation") == 0)
		return import_federation(argc - 1, argv + 1);
	return fb_cli_usage(
	    "import", usage_import, "unknown import '%s' (known: whitelist, federation)", argv[1]);
}
