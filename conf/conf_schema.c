/*
 * The schema table: every key fedbridge reads, with its type, bounds,
 * default and validator, and the walker that turns a node tree into the
 * typed value. One table drives loading, messages and the reference docs.
 */
#include "conf_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <curl/curl.h>

enum conf_type {
	T_STR, /* a string checked by a kind */
	T_INT, /* a plain integer within min..max */
	T_BOOL, /* true or false */
	T_DURATION, /* "5m" -> seconds within min..max */
	T_SIZE, /* "8KiB" -> bytes within min..max */
	T_ENUM, /* one of names[] -> its index */
	T_EXPR, /* an expression kept as source text */
	T_STRLIST, /* a list of strings checked by a kind, min..max items */
	T_STRUCT, /* an embedded struct */
	T_LIST, /* a list of structs, min..max items */
	T_EXPRMAP, /* name -> expression */
	T_EXPRLIST, /* one expression or a list of min..max of them */
};

enum { F_REQUIRED = 1u << 0, F_SECRET = 1u << 1 };

struct conf_field;

/* A string kind: what it is called in messages, and its check. */
struct conf_kind {
	const char *expected; /* "a tenantID (8 to 16 letters and digits)" */
	/* Returns the value to store (maybe rewritten, e.g. a resolved path) or NULL with a
	 * diagnostic. */
	const char *(*check)(struct conf_ctx *c, const struct conf_field *f,
	    const struct conf_node *n, const char *path);
};

struct conf_struct {
	const char *name;
	const struct conf_field *fields;
	size_t size;
	/* Rules between fields of one struct; runs after its fields were read. */
	bool (*check)(struct conf_ctx *c, const struct conf_node *map, const char *path, void *obj);
};

struct conf_field {
	const char *key;
	enum conf_type type;
	size_t offset;
	size_t count_offset; /* T_LIST, T_EXPRMAP: where the count goes */
	unsigned flags;
	const char *def; /* default, in the same text form a user writes */
	int64_t min, max;
	int64_t min_bytes; /* secret files: shortest acceptable content */
	size_t max_bytes; /* secret files: longest; 0 is FB_SECRET_PEM_MAX (a key) */
	const struct conf_kind *kind;
	const struct conf_struct *sub;
	const char *const *names; /* T_ENUM */
	const char *doc;
};

/* ---- small helpers ---- */

static bool
node_is_null(const struct conf_node *n)
{
	return n->type == CONF_NODE_SCALAR && n->plain &&
	    (n->len == 0 || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
	        strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0);
}

static const char *
node_what(const struct conf_node *n)
{
	if (n->type == CONF_NODE_MAP)
		return "a mapping";
	if (n->type == CONF_NODE_SEQ)
		return "a list";
	if (node_is_null(n))
		return "nothing";
	return NULL;
}

/* Renders what the user wrote, for "got ...", escaped and cut short; never a secret. */
static const char *
got(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n)
{
	struct fb_buf b;
	const char *what = node_what(n);
	char *s;

	if (what != NULL)
		return what;
	if (f != NULL && (f->flags & F_SECRET))
		return "a value (not shown)";
	fb_buf_init(&b, 256);
	(void)fb_buf_append(&b, "\"", 1);
	for (size_t i = 0; i < n->len && i < 60; i++) {
		unsigned char ch = (unsigned char)n->value[i];
		if (ch == '"' || ch == '\\')
			(void)fb_buf_printf(&b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			(void)fb_buf_printf(&b, "\\x%02x", ch);
		else
			(void)fb_buf_append(&b, &ch, 1);
	}
	(void)fb_buf_append(&b, n->len > 60 ? "...\"" : "\"", n->len > 60 ? 4 : 1);
	s = b.data ? conf_arena_strndup(c->arena, b.data, b.len) : NULL;
	fb_buf_free(&b);
	return s ? s : "a value";
}

static struct conf_node *
map_get(const struct conf_node *map, const char *key)
{
	if (map == NULL || map->type != CONF_NODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->value, key) == 0)
			return map->items[i];
	return NULL;
}

/* Optimal string alignment distance, for did-you-mean on short keys. */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[34][34];

	if (la > 32 || lb > 32)
		return SIZE_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < best)
				best = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

/* The closest of candidates to word, or NULL when none is close. */
static const char *
closest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, len = strlen(word);
	size_t limit = len <= 3 ? 1 : (len <= 6 ? 2 : 3);

	for (size_t i = 0; i < n; i++) {
		size_t dd = edit_distance(word, candidates[i]);
		if (dd <= limit && dd < best_d) {
			best = candidates[i];
			best_d = dd;
		}
	}
	return best;
}

static void
path_join(char *out, size_t size, const char *parent, const char *key)
{
	if (parent == NULL || *parent == '\0')
		(void)snprintf(out, size, "%s", key);
	else
		(void)snprintf(out, size, "%s.%s", parent, key);
}

/* ---- string kinds ---- */

static bool
scalar_required(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n,
    const char *path, const char *expected)
{
	if (n->type != CONF_NODE_SCALAR || node_is_null(n))
		return conf_diag(c, n->pos, path, "expected %s, got %s", expected, got(c, f, n));
	return true;
}

static bool
all_chars(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return false;
	return true;
}

static const char *
check_text(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	bool ok = n->len >= 1 && n->len <= 256;

	for (size_t i = 0; ok && i < n->len; i++)
		ok = (unsigned char)n->value[i] >= 0x20 && n->value[i] != 0x7f;
	if (ok)
		return n->value;
	conf_diag(
	    c, n->pos, path, "expected 1 to 256 characters on one line, got %s", got(c, f, n));
	return NULL;
}

bool
fb_conf_tenant_id_valid(const char *s)
{
	size_t len = strlen(s);

	return len >= 8 && len <= 16 && all_chars(s, "");
}

static const char *
check_tenant_id(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	if (fb_conf_tenant_id_valid(n->value))
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected a tenantID such as HZnKEBoqDU (8 to 16 letters and "
	    "digits), got %s",
	    got(c, f, n));
	return NULL;
}

bool
fb_conf_install_name_valid(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 && all_chars(s, "_.-") && isalnum((unsigned char)s[0]);
}

static const char *
check_install_name(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	if (strlen(n->value) == n->len && fb_conf_install_name_valid(n->value))
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected an installation name such as installation_A (1 to 64 letters, digits, "
	    "'_', '.', '-'), got %s",
	    got(c, f, n));
	return NULL;
}

static const char *
check_ident(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	bool ok = n->len >= 1 && n->len <= 64 && islower((unsigned char)n->value[0]);

	for (size_t i = 1; ok && i < n->len; i++) {
		unsigned char ch = (unsigned char)n->value[i];
		ok = islower(ch) || isdigit(ch) || ch == '_' || ch == '-';
	}
	if (ok)
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected a name such as corp-keycloak (lower-case letters, digits, '_', '-', "
	    "starting with a letter, at most 64), got %s",
	    got(c, f, n));
	return NULL;
}

static const char *
check_domain(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	if (fb_domain_name_valid(n->value))
		return n->value;
	conf_diag(c, n->pos, path, "expected a DNS domain such as a.example, got %s", got(c, f, n));
	return NULL;
}

/* host:port with a DNS name, an IPv4 address, or [IPv6]; port 1..65535. */
static bool
hostport_valid(const char *s)
{
	const char *colon, *host_end;
	char host[256];
	long port;
	char *end;

	if (s[0] == '[') {
		host_end = strchr(s, ']');
		if (host_end == NULL || host_end[1] != ':')
			return false;
		colon = host_end + 1;
		if ((size_t)(host_end - s - 1) >= sizeof(host) || host_end == s + 1)
			return false;
		memcpy(host, s + 1, (size_t)(host_end - s - 1));
		host[host_end - s - 1] = '\0';
		if (!all_chars(host, ":."))
			return false;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(host))
			return false;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		if (!fb_domain_name_valid(host))
			return false;
	}
	if (!isdigit((unsigned char)colon[1]))
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 1 && port <= 65535;
}

static const char *
check_hostport(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	if (hostport_valid(n->value))
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected host:port such as 127.0.0.1:8080 or federation.b.example:443, got %s",
	    got(c, f, n));
	return NULL;
}

/*
 * A URL the configuration names: the outbound URL policy, where plain http
 * toward loopback is allowed (test IdPs, a bridge behind a local proxy)
 * because the configuration itself says so.
 */
static const char *
url_problem(const char *s)
{
	static const struct fb_url_rule configured = { .loopback_http = true };

	return fb_url_problem(s, &configured);
}

bool
fb_conf_on_loopback(const struct fb_conf *conf)
{
	const char *u = conf->installation.public_url;

	return u != NULL && strncmp(u, "http://", strlen("http://")) == 0 && url_problem(u) == NULL;
}

static const char *
check_url(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	const char *problem = url_problem(n->value);

	if (problem == NULL)
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected an https URL such as https://sso.a.example, got %s: %s", got(c, f, n),
	    problem);
	return NULL;
}

/*
 * A return_to: an https URL whose query, if any, carries none of the names
 * a login adds to it (the backend would see two codes, one of them the
 * configuration's).
 */
static const char *
check_return_to(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	static const char *const reserved[] = { "code", "state", "error", NULL };
	const char *q;

	if (check_url(c, f, n, path) == NULL)
		return NULL;
	if ((q = strchr(n->value, '?')) == NULL || !fb_query_has_param(q + 1, reserved))
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected a return address without code, state or error in its query (the login "
	    "adds its own code), got %s",
	    got(c, f, n));
	return NULL;
}

static const char *
resolve_path(struct conf_ctx *c, const struct conf_node *n)
{
	if (n->value[0] == '/')
		return n->value;
	return conf_arena_printf(c->arena, "%s/%s", c->basedir, n->value);
}

/*
 * A secret file: read with fb_secret_read, the very reader the bridge uses, so check and serve
 * apply one set of rules to what is opened (no stat-then-open race), then wiped.
 */
static const char *
check_secret_content(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n,
    const char *path, const char *p)
{
	struct fb_err err = { 0 };
	char *data = NULL;
	size_t len = 0;
	bool short_ok;

	if (fb_secret_read(p, f->max_bytes > 0 ? f->max_bytes : FB_SECRET_PEM_MAX, &data, &len,
	        &err) != FB_OK) {
		if (err.rc == FB_ERR_NOMEM)
			c->nomem = true;
		conf_diag(c, n->pos, path, "%s", err.msg);
		return NULL;
	}
	short_ok = f->min_bytes <= 0 || len >= (size_t)f->min_bytes;
	fb_secret_free(data);
	/* The minimum first, beside the key: a secret cut short in copying is the usual cause. */
	if (!short_ok) {
		conf_diag(c, n->pos, path,
		    "a secret of at least %lld bytes is needed; %s is too short (%zu bytes)",
		    (long long)f->min_bytes, p, len);
		return NULL;
	}
	return p;
}

static const char *
check_file_common(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n,
    const char *path, bool secret)
{
	const char *p;
	struct stat st;

	if (n->len == 0 || n->len > 1024 || memchr(n->value, '\n', n->len) != NULL) {
		conf_diag(c, n->pos, path, "expected a file path, got %s", got(c, f, n));
		return NULL;
	}
	if ((p = resolve_path(c, n)) == NULL) {
		c->nomem = true;
		return NULL;
	}
	if (c->flags & FB_CONF_NO_FS)
		return p;
	if (secret)
		return check_secret_content(c, f, n, path, p);
	if (stat(p, &st) != 0) {
		conf_diag(c, n->pos, path, "cannot use %s: %s", p, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		conf_diag(c, n->pos, path, "%s is not a regular file", p);
		return NULL;
	}
	if (access(p, R_OK) != 0) {
		conf_diag(c, n->pos, path, "cannot read %s: %s", p, strerror(errno));
		return NULL;
	}
	return p;
}

/* A path that may not exist yet (created by a command); resolved against the file's folder. */
static const char *
check_path(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	const char *p;

	if (n->len == 0 || n->len > 1024 || memchr(n->value, '\n', n->len) != NULL) {
		conf_diag(c, n->pos, path, "expected a path, got %s", got(c, f, n));
		return NULL;
	}
	if ((p = resolve_path(c, n)) == NULL)
		c->nomem = true;
	return p;
}

static const char *
check_file(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	return check_file_common(c, f, n, path, false);
}

static const char *
check_secret_file(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	return check_file_common(c, f, n, path, true);
}

/* SAML metadata comes from a file or an https URL. */
static const char *
check_file_or_url(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	if (strncmp(n->value, "https://", 8) == 0 || strncmp(n->value, "http://", 7) == 0)
		return check_url(c, f, n, path);
	return check_file(c, f, n, path);
}

/* "memory:", "embedded:/dir" or "postgresql://user@host/db" (no password: use a file). */
static const char *
check_store(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	const char *v = n->value;
	CURLU *u;
	char *pw = NULL;
	bool has_pw;

	(void)f;
	if (strcmp(v, "memory:") == 0)
		return v;
	if (strncmp(v, "embedded:", 9) == 0 && v[9] != '\0' && memchr(v, '\n', n->len) == NULL) {
		if (v[9] == '/')
			return v + 9;
		return conf_arena_printf(c->arena, "%s/%s", c->basedir, v + 9);
	}
	if (strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0) {
		u = curl_url();
		if (u == NULL) {
			c->nomem = true;
			return NULL;
		}
		if (curl_url_set(u, CURLUPART_URL, v, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
			curl_url_cleanup(u);
			/* The URL may hold a password: do not echo it. */
			conf_diag(c, n->pos, path,
			    "expected a PostgreSQL URL such as "
			    "postgresql://fedbridge@db/fedbridge, got a "
			    "malformed URL");
			return NULL;
		}
		has_pw = curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK;
		curl_free(pw);
		curl_url_cleanup(u);
		if (has_pw || strstr(v, "password=") != NULL) {
			conf_diag(c, n->pos, path,
			    "the PostgreSQL URL holds a password; put it in "
			    "a file named by store_password_file");
			return NULL;
		}
		return v;
	}
	/* Not echoed: an unrecognised connection string may well hold a password. */
	conf_diag(c, n->pos, path,
	    "expected embedded:<directory>, postgresql://<user>@<host>/<db> or memory:, got "
	    "something else (not shown)");
	return NULL;
}

static const char *
check_attr_name(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	if (n->len >= 1 && n->len <= 64 && all_chars(n->value, "_") &&
	    isalpha((unsigned char)n->value[0]))
		return n->value;
	conf_diag(c, n->pos, path,
	    "expected an attribute name such as department (letters, digits, '_'), got %s",
	    got(c, f, n));
	return NULL;
}

static const char *const jws_algs[] = { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA" };

static const char *
check_alg(
    struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n, const char *path)
{
	const char *near;

	for (size_t i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		if (strcmp(n->value, jws_algs[i]) == 0)
			return n->value;
	near = closest(n->value, jws_algs, sizeof(jws_algs) / sizeof(jws_algs[0]));
	conf_diag(c, n->pos, path,
	    "expected an asymmetric JWS algorithm (RS256, PS256, ES256, EdDSA, ...), got %s%s%s%s",
	    got(c, f, n), near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "");
	return NULL;
}

static const struct conf_kind K_TEXT = { "text", check_text };
static const struct conf_kind K_PATH = { "path", check_path };
static const struct conf_kind K_TENANT_ID = { "tenantID", check_tenant_id };
static const struct conf_kind K_INSTALL = { "installation name", check_install_name };
static const struct conf_kind K_IDENT = { "name", check_ident };
static const struct conf_kind K_DOMAIN = { "DNS domain", check_domain };
static const struct conf_kind K_HOSTPORT = { "host:port", check_hostport };
static const struct conf_kind K_URL = { "https URL", check_url };
static const struct conf_kind K_RETURN_TO = { "https URL", check_return_to };
static const struct conf_kind K_FILE = { "file", check_file };
static const struct conf_kind K_SECRET = { "secret file (mode 0600)", check_secret_file };
static const struct conf_kind K_FILE_URL = { "file or https URL", check_file_or_url };
static const struct conf_kind K_STORE = { "store URL", check_store };
static const struct conf_kind K_ATTR = { "attribute name", check_attr_name };
static const struct conf_kind K_ALG = { "JWS algorithm", check_alg };

/* ---- durations and sizes ---- */

bool
fb_conf_duration_parse(const char *s, int64_t *seconds)
{
	/* Units largest first, each at most once: "1h30m", not "30m1h" or "5m5m". */
	static const struct {
		char unit;
		int64_t mult;
	} units[] = { { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 } };
	size_t next = 0;
	int64_t total = 0, v;
	const char *p = s;

	if (*p == '\0')
		return false;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = 0;
		while (isdigit((unsigned char)*p)) {
			if (v > (INT64_MAX - 9) / 10)
				return false;
			v = v * 10 + (*p++ - '0');
		}
		while (next < sizeof(units) / sizeof(units[0]) && units[next].unit != *p)
			next++;
		if (next == sizeof(units) / sizeof(units[0]))
			return false;
		if (v > (INT64_MAX - total) / units[next].mult)
			return false;
		total += v * units[next].mult;
		next++;
		p++;
	}
	*seconds = total;
	return true;
}

static bool
size_parse(const char *s, int64_t *bytes)
{
	static const struct {
		const char *suffix;
		int64_t mult;
	} units[] = { { "", 1 }, { "B", 1 }, { "k", 1024 }, { "K", 1024 }, { "KiB", 1024 },
		{ "m", 1048576 }, { "M", 1048576 }, { "MiB", 1048576 }, { "G", 1073741824 },
		{ "GiB", 1073741824 } };
	int64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p)) {
		if (v > (INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*p++ - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix) == 0) {
			if (v > INT64_MAX / units[i].mult)
				return false;
			*bytes = v * units[i].mult;
			return true;
		}
	}
	return false;
}

static void
duration_text(int64_t s, char *out, size_t size)
{
	if (s % 86400 == 0 && s > 0)
		(void)snprintf(out, size, "%lldd", (long long)(s / 86400));
	else if (s % 3600 == 0 && s > 0)
		(void)snprintf(out, size, "%lldh", (long long)(s / 3600));
	else if (s % 60 == 0 && s > 0)
		(void)snprintf(out, size, "%lldm", (long long)(s / 60));
	else
		(void)snprintf(out, size, "%llds", (long long)s);
}

static void
size_text(int64_t b, char *out, size_t size)
{
	if (b % 1048576 == 0 && b > 0)
		(void)snprintf(out, size, "%lldMiB", (long long)(b / 1048576));
	else if (b % 1024 == 0 && b > 0)
		(void)snprintf(out, size, "%lldKiB", (long long)(b / 1024));
	else
		(void)snprintf(out, size, "%lldB", (long long)b);
}

/* ---- the walker ---- */

static bool apply_struct(struct conf_ctx *c, const struct conf_struct *s,
    const struct conf_node *map, const char *path, void *obj);

static bool
budget(struct conf_ctx *c, const struct conf_node *n)
{
	/* Aliases can make a small file walk many nodes: cap the walk as well. */
	if (++c->visits <= FB_CONF_MAX_NODES)
		return true;
	if (c->visits == FB_CONF_MAX_NODES + 1)
		conf_diag(c, n->pos, NULL, "the configuration expands to more than %d nodes",
		    FB_CONF_MAX_NODES);
	return false;
}

static bool
apply_string(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n,
    const char *path, const char **out)
{
	const char *v;

	if (!scalar_required(c, f, n, path, f->kind == &K_TEXT ? "text" : f->kind->expected))
		return false;
	if ((v = f->kind->check(c, f, n, path)) == NULL)
		return false;
	*out = v;
	conf_pos_record(c, out, n->pos);
	return true;
}

/* An expression: any scalar style, not blank, no control characters but line breaks and tabs. */
static bool
apply_expr(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n,
    const char *path, struct fb_conf_expr *e)
{
	bool blank = true;

	if (n->type != CONF_NODE_SCALAR || node_is_null(n))
		return conf_diag(c, n->pos, path, "expected an expression, got %s", got(c, f, n));
	for (size_t i = 0; i < n->len; i++) {
		unsigned char ch = (unsigned char)n->value[i];
		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f)
			return conf_diag(c, n->pos, path,
			    "an expression must not hold control characters, got %s", got(c, f, n));
		if (ch != ' ' && ch != '\n' && ch != '\t')
			blank = false;
	}
	if (blank)
		return conf_diag(c, n->pos, path, "expected an expression, got an empty string");
	e->src = n->value;
	e->pos = n->pos;
	e->quoted = !n->plain;
	e->style = n->style;
	conf_pos_record(c, e, n->pos);
	return true;
}

static bool
apply_field(struct conf_ctx *c, const struct conf_field *f, const struct conf_node *n,
    const char *path, void *obj)
{
	char *base = (char *)obj + f->offset;
	int64_t v;
	char ipath[300];

	if (!budget(c, n))
		return false;
	switch (f->type) {
	case T_STR:
		return apply_string(c, f, n, path, (const char **)(void *)base);
	case T_INT:
	case T_DURATION:
	case T_SIZE: {
		const char *expected = f->type == T_INT ? "an integer"
		    : f->type == T_DURATION             ? "a duration such as 5m"
		                                        : "a size such as 8KiB";
		char lo[32], hi[32];
		bool ok;
		char *end;

		if (n->type != CONF_NODE_SCALAR || node_is_null(n))
			return conf_diag(
			    c, n->pos, path, "expected %s, got %s", expected, got(c, f, n));
		if (f->type == T_INT) {
			errno = 0;
			v = strtoll(n->value, &end, 10);
			ok = n->plain && errno == 0 && end != n->value && *end == '\0';
		} else if (f->type == T_DURATION) {
			ok = fb_conf_duration_parse(n->value, &v);
		} else {
			ok = size_parse(n->value, &v);
		}
		if (!ok)
			return conf_diag(
			    c, n->pos, path, "expected %s, got %s", expected, got(c, f, n));
		if (v < f->min || v > f->max) {
			if (f->type == T_DURATION) {
				duration_text(f->min, lo, sizeof(lo));
				duration_text(f->max, hi, sizeof(hi));
			} else if (f->type == T_SIZE) {
				size_text(f->min, lo, sizeof(lo));
				size_text(f->max, hi, sizeof(hi));
			} else {
				(void)snprintf(lo, sizeof(lo), "%lld", (long long)f->min);
				(void)snprintf(hi, sizeof(hi), "%lld", (long long)f->max);
			}
			return conf_diag(c, n->pos, path, "%s is out of range: expected %s to %s",
			    got(c, f, n), lo, hi);
		}
		*(int64_t *)(void *)base = v;
		conf_pos_record(c, base, n->pos);
		return true;
	}
	case T_BOOL:
		if (n->type == CONF_NODE_SCALAR && n->plain && strcmp(n->value, "true") == 0)
			*(bool *)(void *)base = true;
		else if (n->type == CONF_NODE_SCALAR && n->plain && strcmp(n->value, "false") == 0)
			*(bool *)(void *)base = false;
		else
			return conf_diag(
			    c, n->pos, path, "expected true or false, got %s", got(c, f, n));
		conf_pos_record(c, base, n->pos);
		return true;
	case T_ENUM: {
		size_t count = 0;
		const char *near;
		struct fb_buf list;

		for (; f->names[count] != NULL; count++) {
			if (n->type == CONF_NODE_SCALAR && strcmp(n->value, f->names[count]) == 0) {
				*(int *)(void *)base = (int)count;
				conf_pos_record(c, base, n->pos);
				return true;
			}
		}
		near = n->type == CONF_NODE_SCALAR ? closest(n->value, f->names, count) : NULL;
		fb_buf_init(&list, 512);
		for (size_t i = 0; i < count; i++)
			(void)fb_buf_printf(&list, "%s%s", i ? ", " : "", f->names[i]);
		conf_diag(c, n->pos, path, "expected one of %s, got %s%s%s%s",
		    list.data ? list.data : "", got(c, f, n), near ? "; did you mean \"" : "",
		    near ? near : "", near ? "\"?" : "");
		fb_buf_free(&list);
		return false;
	}
	case T_EXPR:
		return apply_expr(c, f, n, path, (struct fb_conf_expr *)(void *)base);
	case T_EXPRLIST: {
		struct fb_conf_exprlist *l = (struct fb_conf_exprlist *)(void *)base;
		size_t count = n->type == CONF_NODE_SEQ ? n->n : 1;
		bool ok = true;

		if (n->type == CONF_NODE_MAP)
			return conf_diag(c, n->pos, path,
			    "expected an expression or a list of expressions, got %s",
			    got(c, f, n));
		if ((int64_t)count < f->min || (int64_t)count > f->max)
			return conf_diag(c, n->pos, path,
			    "expected %lld to %lld expressions, got %zu", (long long)f->min,
			    (long long)f->max, count);
		l->v = conf_arena_alloc(c->arena, (count ? count : 1) * sizeof(*l->v));
		if (l->v == NULL) {
			c->nomem = true;
			return false;
		}
		memset(l->v, 0, (count ? count : 1) * sizeof(*l->v));
		if (n->type != CONF_NODE_SEQ) {
			ok = apply_expr(c, f, n, path, &l->v[0]);
		} else {
			for (size_t i = 0; i < count; i++) {
				(void)snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
				if (!budget(c, n->items[i]) ||
				    !apply_expr(c, f, n->items[i], ipath, &l->v[i]))
					ok = false;
			}
		}
		l->n = count;
		conf_pos_record(c, l, n->pos);
		return ok;
	}
	case T_STRLIST: {
		struct fb_conf_strlist *l = (struct fb_conf_strlist *)(void *)base;
		bool ok = true;

		if (n->type != CONF_NODE_SEQ)
			return conf_diag(c, n->pos, path, "expected a list of items (%s), got %s",
			    f->kind->expected, got(c, f, n));
		if ((int64_t)n->n < f->min || (int64_t)n->n > f->max)
			return conf_diag(c, n->pos, path, "expected %lld to %lld items, got %zu",
			    (long long)f->min, (long long)f->max, n->n);
		l->v = conf_arena_alloc(c->arena, (n->n ? n->n : 1) * sizeof(*l->v));
		if (l->v == NULL) {
			c->nomem = true;
			return false;
		}
		for (size_t i = 0; i < n->n; i++) {
			(void)snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
			if (!budget(c, n->items[i]))
				return false;
			if (!apply_string(c, f, n->items[i], ipath, &l->v[i])) {
				ok = false;
				continue;
			}
			for (size_t j = 0; j < i; j++) {
				if (l->v[j] != NULL && strcmp(l->v[j], l->v[i]) == 0) {
					ok = conf_diag(c, n->items[i]->pos, ipath,
					    "%s is listed twice (first at %u:%u)",
					    got(c, f, n->items[i]), n->items[j]->pos.line,
					    n->items[j]->pos.col);
					break;
				}
			}
		}
		l->n = n->n;
		conf_pos_record(c, l, n->pos);
		return ok;
	}
	case T_STRUCT:
		if (n->type != CONF_NODE_MAP)
			return conf_diag(
			    c, n->pos, path, "expected a mapping, got %s", got(c, f, n));
		return apply_struct(c, f->sub, n, path, base);
	case T_LIST: {
		void **arr = (void **)(void *)base;
		size_t *count = (size_t *)(void *)((char *)obj + f->count_offset);
		bool ok = true;
		char *items;

		if (n->type != CONF_NODE_SEQ)
			return conf_diag(c, n->pos, path, "expected a list, got %s", got(c, f, n));
		if ((int64_t)n->n < f->min || (int64_t)n->n > f->max)
			return conf_diag(c, n->pos, path, "expected %lld to %lld items, got %zu",
			    (long long)f->min, (long long)f->max, n->n);
		items = conf_arena_alloc(c->arena, (n->n ? n->n : 1) * f->sub->size);
		if (items == NULL) {
			c->nomem = true;
			return false;
		}
		for (size_t i = 0; i < n->n; i++) {
			(void)snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
			if (!budget(c, n->items[i])) {
				ok = false;
				break;
			}
			if (n->items[i]->type != CONF_NODE_MAP) {
				ok = conf_diag(c, n->items[i]->pos, ipath,
				    "expected a mapping, got %s", got(c, f, n->items[i]));
				continue;
			}
			if (!apply_struct(c, f->sub, n->items[i], ipath, items + i * f->sub->size))
				ok = false;
		}
		*arr = items;
		*count = n->n;
		return ok;
	}
	case T_EXPRMAP: {
		struct fb_conf_attr *attrs;
		size_t *count = (size_t *)(void *)((char *)obj + f->count_offset);
		bool ok = true;

		if (n->type != CONF_NODE_MAP)
			return conf_diag(c, n->pos, path,
			    "expected a mapping of attribute names to expressions, got %s",
			    got(c, f, n));
		if ((int64_t)n->n > f->max)
			return conf_diag(c, n->pos, path,
			    "expected at most %lld attributes, got %zu", (long long)f->max, n->n);
		attrs = conf_arena_alloc(c->arena, (n->n ? n->n : 1) * sizeof(*attrs));
		if (attrs == NULL) {
			c->nomem = true;
			return false;
		}
		for (size_t i = 0; i < n->n; i++) {
			const struct conf_node *k = n->keys[i];
			path_join(ipath, sizeof(ipath), path, k->value);
			if (!budget(c, n->items[i]) ||
			    (attrs[i].name = check_attr_name(c, NULL, k, ipath)) == NULL ||
			    !apply_expr(c, NULL, n->items[i], ipath, &attrs[i].expr)) {
				ok = false;
				continue;
			}
			for (size_t j = 0; j < i; j++) {
				if (strcmp(n->keys[j]->value, k->value) == 0) {
					ok = conf_diag(c, k->pos, path,
					    "duplicate key %s (first at %u:%u)", got(c, NULL, k),
					    n->keys[j]->pos.line, n->keys[j]->pos.col);
					break;
				}
			}
			conf_pos_record(c, &attrs[i], k->pos);
		}
		*(struct fb_conf_attr **)(void *)base = attrs;
		*count = n->n;
		return ok;
	}
	}
	return conf_diag(c, n->pos, path, "internal error: unknown field type");
}

static bool
apply_default(struct conf_ctx *c, const struct conf_field *f, const char *path, void *obj)
{
	struct conf_node n;
	char *copy, *tok, *save = NULL;
	struct conf_node *items[16];
	struct conf_node item_nodes[16];
	size_t count = 0;

	memset(&n, 0, sizeof(n));
	if (f->type == T_STRLIST) {
		/* A list default is written as space-separated words. */
		copy = conf_arena_strndup(c->arena, f->def, strlen(f->def));
		if (copy == NULL) {
			c->nomem = true;
			return false;
		}
		for (tok = strtok_r(copy, " ", &save); tok && count < 16;
		     tok = strtok_r(NULL, " ", &save)) {
			memset(&item_nodes[count], 0, sizeof(item_nodes[0]));
			item_nodes[count].type = CONF_NODE_SCALAR;
			item_nodes[count].value = tok;
			item_nodes[count].len = strlen(tok);
			items[count] = &item_nodes[count];
			count++;
		}
		n.type = CONF_NODE_SEQ;
		n.items = items;
		n.n = count;
	} else {
		n.type = CONF_NODE_SCALAR;
		n.value = f->def;
		n.len = strlen(f->def);
		n.plain = true;
	}
	return apply_field(c, f, &n, path, obj);
}

static bool
apply_struct(struct conf_ctx *c, const struct conf_struct *s, const struct conf_node *map,
    const char *path, void *obj)
{
	const char *names[64];
	size_t n_names = 0;
	bool ok = true;
	char fpath[300];

	for (const struct conf_field *f = s->fields; f->key != NULL && n_names < 64; f++)
		names[n_names++] = f->key;

	/* Unknown and duplicate keys first: they explain most later errors. */
	for (size_t i = 0; i < map->n; i++) {
		const struct conf_node *k = map->keys[i];
		const char *near;
		bool known = false;

		for (size_t j = 0; j < n_names; j++)
			known = known || strcmp(k->value, names[j]) == 0;
		if (!known) {
			near = closest(k->value, names, n_names);
			ok = conf_diag(c, k->pos, path && *path ? path : NULL,
			    "unknown key %s%s%s%s", got(c, NULL, k),
			    near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "");
			continue;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(map->keys[j]->value, k->value) == 0) {
				ok = conf_diag(c, k->pos, path && *path ? path : NULL,
				    "duplicate key %s (first at %u:%u)", got(c, NULL, k),
				    map->keys[j]->pos.line, map->keys[j]->pos.col);
				break;
			}
		}
	}

	for (const struct conf_field *f = s->fields; f->key != NULL; f++) {
		const struct conf_node *v = map_get(map, f->key);

		path_join(fpath, sizeof(fpath), path, f->key);
		if (v != NULL) {
			if (!apply_field(c, f, v, fpath, obj))
				ok = false;
		} else if (f->flags & F_REQUIRED) {
			ok = conf_diag(c, map->pos, path && *path ? path : NULL,
			    "missing required key \"%s\"", f->key);
		} else if (f->def != NULL) {
			if (!apply_default(c, f, fpath, obj))
				ok = false;
		}
	}
	if (ok && s->check != NULL)
		ok = s->check(c, map, path, obj);
	return ok;
}

/* ---- per-struct rules ---- */

static bool
forbid_keys(struct conf_ctx *c, const struct conf_node *map, const char *path,
    const char *const *keys, const char *why)
{
	bool ok = true;
	char fpath[300];

	for (size_t i = 0; keys[i] != NULL; i++) {
		const struct conf_node *v = map_get(map, keys[i]);
		if (v == NULL)
			continue;
		for (size_t k = 0; k < map->n; k++) {
			if (map->items[k] == v) {
				path_join(fpath, sizeof(fpath), path, keys[i]);
				ok = conf_diag(c, map->keys[k]->pos, fpath, "%s", why);
			}
		}
	}
	return ok;
}

static bool
need_keys(struct conf_ctx *c, const struct conf_node *map, const char *path,
    const char *const *keys, const char *why)
{
	bool ok = true;

	for (size_t i = 0; keys[i] != NULL; i++)
		if (map_get(map, keys[i]) == NULL)
			ok = conf_diag(
			    c, map->pos, path, "missing required key \"%s\" %s", keys[i], why);
	return ok;
}

static bool
check_provider(struct conf_ctx *c, const struct conf_node *map, const char *path, void *obj)
{
	static const char *const oidc_keys[] = { "issuer", "client_id", "client_secret_file",
		"client_key", "client_auth", "scopes", "allowed_algs", "userinfo", "timeout",
		NULL };
	static const char *const saml_keys[] = { "idp_metadata", "idp_metadata_cert", "sp_key",
		"sp_cert", "allow_idp_initiated", "allow_sha1", NULL };
	static const char *const oidc_need[] = { "issuer", "client_id", NULL };
	static const char *const saml_need[] = { "idp_metadata", "sp_key", "sp_cert", NULL };
	static const char *const secret_need[] = { "client_secret_file", NULL };
	static const char *const jwt_need[] = { "client_key", NULL };
	struct fb_conf_provider *p = obj;
	bool ok;

	if (p->type == FB_PROVIDER_OIDC) {
		ok = forbid_keys(c, map, path, saml_keys, "a SAML setting on an oidc provider");
		ok = need_keys(c, map, path, oidc_need, "for an oidc provider") && ok;
		if (p->client_auth == FB_CLIENT_AUTH_PRIVATE_KEY_JWT)
			ok = need_keys(c, map, path, jwt_need, "for client_auth private_key_jwt") &&
			    ok;
		else
			ok = need_keys(c, map, path, secret_need,
			         "for client_auth client_secret_basic or client_secret_post") &&
			    ok;
		return ok;
	}
	ok = forbid_keys(c, map, path, oidc_keys, "an OpenID Connect setting on a saml provider");
	return need_keys(c, map, path, saml_need, "for a saml provider") && ok;
}

static bool
check_trust(struct conf_ctx *c, const struct conf_node *map, const char *path, void *obj)
{
	struct fb_conf_trust *t = obj;

	(void)c;
	(void)map;
	(void)path;
	/* The remote's relay presents a client certificate whose CN is its name, by default. */
	if (t->cert_cn == NULL)
		t->cert_cn = t->remote;
	return true;
}

static bool
check_client(struct conf_ctx *c, const struct conf_node *map, const char *path, void *obj)
{
	static const char *const secret_need[] = { "client_secret_file", NULL };
	static const char *const jwks_need[] = { "jwks", NULL };
	static const char *const secret_keys[] = { "client_secret_file", NULL };
	static const char *const jwks_keys[] = { "jwks", NULL };
	struct fb_conf_client *cl = obj;
	bool ok; /* both checks run, so one pass reports every finding */

	if (cl->auth == FB_CLIENT_AUTH_PRIVATE_KEY_JWT) {
		ok = forbid_keys(c, map, path, secret_keys, "not used with private_key_jwt");
		return need_keys(c, map, path, jwks_need, "for client_auth private_key_jwt") && ok;
	}
	ok = forbid_keys(c, map, path, jwks_keys, "only used with private_key_jwt");
	return need_keys(c, map, path, secret_need,
	           "for client_auth client_secret_basic or client_secret_post") &&
	    ok;
}

static bool
check_installation(struct conf_ctx *c, const struct conf_node *map, const char *path, void *obj)
{
	struct fb_conf *conf = obj;

	(void)map;
	(void)path;
	if (conf->installation.relay == NULL && conf->installation.domain != NULL) {
		conf->installation.relay =
		    conf_arena_printf(c->arena, "federation.%s:443", conf->installation.domain);
		if (conf->installation.relay == NULL)
			c->nomem = true;
	}
	return true;
}

#define TRUST_FILE_MAX 65536
#define TRUSTS_MAX 1000

static const struct conf_struct trust_struct;

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NAME.yaml files of a folder, sorted (strings and array from malloc). */
static bool
trust_files(struct conf_ctx *c, const char *dir, struct fb_conf_pos pos, const char *path,
    char ***out, size_t *n_out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	if (d == NULL)
		return conf_diag(
		    c, pos, path, "cannot read the folder %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char **nv;
		if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		if (n == TRUSTS_MAX) {
			closedir(d);
			for (size_t i = 0; i < n; i++)
				free(v[i]);
			free(v);
			return conf_diag(
			    c, pos, path, "%s holds more than %d trust files", dir, TRUSTS_MAX);
		}
		if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL ||
		    (nv[n] = strdup(e->d_name)) == NULL) {
			if (nv != NULL)
				v = nv;
			c->nomem = true;
			break;
		}
		v = nv;
		n++;
	}
	closedir(d);
	if (c->nomem) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return false;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), name_cmp);
	*out = v;
	*n_out = n;
	return true;
}

/* Reads one trust file into *t, with positions and relative paths of that file. */
static bool
trust_file_apply(struct conf_ctx *c, const char *dir, const char *file, const char *path,
    struct fb_conf_trust *t)
{
	const char *name = conf_arena_printf(c->arena, "%s/%s", dir, file);
	const char *saved_name = c->name, *saved_file = c->file, *saved_base = c->basedir;
	struct fb_err err = { 0 };
	struct conf_node *root;
	char *data = NULL;
	size_t len = 0;
	bool ok;

	if (name == NULL) {
		c->nomem = true;
		return false;
	}
	if (fb_file_read(name, TRUST_FILE_MAX, &data, &len, &err) != FB_OK)
		return conf_diag(c, (struct fb_conf_pos){ 0, 0, name }, NULL, "%s", err.msg);
	c->name = name;
	c->file = name;
	c->basedir = dir;
	root = conf_yaml_parse(c, data, len);
	if (root == NULL) {
		ok = false;
	} else if (root->type != CONF_NODE_MAP) {
		ok = conf_diag(c, root->pos, NULL, "expected a mapping (one trust), got %s",
		    root->type == CONF_NODE_SEQ ? "a list" : "a scalar");
	} else {
		ok = apply_struct(c, &trust_struct, root, path, t);
	}
	t->imported = name;
	c->name = saved_name;
	c->file = saved_file;
	c->basedir = saved_base;
	free(data);
	return ok;
}

/* Appends the trusts of trusts_dir to those written inline. */
static bool
check_tenant(struct conf_ctx *c, const struct conf_node *map, const char *path, void *obj)
{
	struct fb_conf_tenant *t = obj;
	const struct conf_node *at = map_get(map, "trusts_dir");
	char ipath[320];
	char **files = NULL;
	size_t n_files = 0;
	struct fb_conf_trust *all;
	struct stat st;
	bool ok = true;

	if (t->trusts_dir == NULL || (c->flags & FB_CONF_NO_FS))
		return true;
	(void)snprintf(ipath, sizeof(ipath), "%s.trusts_dir", path);
	if (stat(t->trusts_dir, &st) != 0)
		return conf_diag(
		    c, at->pos, ipath, "cannot use %s: %s", t->trusts_dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return conf_diag(c, at->pos, ipath, "%s is not a folder", t->trusts_dir);
	if (!trust_files(c, t->trusts_dir, at->pos, ipath, &files, &n_files))
		return false;
	if (n_files == 0) {
		free(files);
		return true;
	}
	if (t->n_trusts + n_files > TRUSTS_MAX) {
		ok = conf_diag(c, at->pos, ipath, "more than %d trusts with those of %s",
		    TRUSTS_MAX, t->trusts_dir);
		goto out;
	}
	if ((all = conf_arena_alloc(c->arena, (t->n_trusts + n_files) * sizeof(*all))) == NULL) {
		c->nomem = true;
		ok = false;
		goto out;
	}
	/* Moving the inline trusts moves where their fields were written. */
	if (t->n_trusts > 0) {
		const char *lo = (const char *)t->trusts, *hi = lo + t->n_trusts * sizeof(*all);
		memcpy(all, t->trusts, t->n_trusts * sizeof(*all));
		for (size_t i = 0; i < c->n_pos; i++) {
			const char *a = c->pos[i].addr;
			if (a >= lo && a < hi)
				c->pos[i].addr = (const char *)all + (a - lo);
		}
	}
	for (size_t i = 0; i < n_files; i++) {
		(void)snprintf(ipath, sizeof(ipath), "%s.trusts[%s]", path, files[i]);
		if (!trust_file_apply(c, t->trusts_dir, files[i], ipath, &all[t->n_trusts + i]))
			ok = false;
	}
	t->trusts = all;
	t->n_trusts += n_files;
out:
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	return ok;
}

/* ---- the table ---- */

/*
 * Shortest secrets accepted: an IdP's client secret (IdPs generate longer ones, so
 * shorter is most likely a typo or a secret cut short in copying), and the bridge's
 * own shared secrets (its clients', the fid key), 256 bits.
 */
#define IDP_CLIENT_SECRET_MIN 16
#define OWN_SECRET_MIN 32

#define FIELD(st, k, t, member) .key = (k), .type = (t), .offset = offsetof(st, member)

static const char *const provider_types[] = { "oidc", "saml", NULL };
static const char *const client_auths[] = { "client_secret_basic", "client_secret_post",
	"private_key_jwt", NULL };
static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "text", "json", NULL };

static const struct conf_field provider_fields[] = {
	{ FIELD(struct fb_conf_provider, "name", T_STR, name), .flags = F_REQUIRED,
	    .kind = &K_IDENT, .doc = "Unique across the installation; used in /login/NAME." },
	{ FIELD(struct fb_conf_provider, "type", T_ENUM, type), .flags = F_REQUIRED,
	    .names = provider_types, .doc = "oidc or saml." },
	{ FIELD(struct fb_conf_provider, "issuer", T_STR, issuer), .kind = &K_URL,
	    .doc = "oidc: the issuer URL; discovery document at ISSUER/.well-known/"
	           "openid-configuration." },
	{ FIELD(struct fb_conf_provider, "client_id", T_STR, client_id), .kind = &K_TEXT,
	    .doc = "oidc: the client id registered at the IdP." },
	{ FIELD(struct fb_conf_provider, "client_secret_file", T_STR, client_secret_file),
	    .flags = F_SECRET, .min_bytes = IDP_CLIENT_SECRET_MIN, .max_bytes = FB_SECRET_SHORT_MAX,
	    .kind = &K_SECRET, .doc = "oidc: file holding the client secret (mode 0600)." },
	{ FIELD(struct fb_conf_provider, "client_key", T_STR, client_key), .flags = F_SECRET,
	    .kind = &K_SECRET, .doc = "oidc: private key (PEM, mode 0600) for private_key_jwt." },
	{ FIELD(struct fb_conf_provider, "client_auth", T_ENUM, client_auth),
	    .def = "client_secret_basic", .names = client_auths,
	    .doc = "oidc: how the bridge authenticates at the token endpoint." },
	{ FIELD(struct fb_conf_provider, "scopes", T_STRLIST, scopes), .def = "openid", .min = 1,
	    .max = 32, .kind = &K_TEXT, .doc = "oidc: scopes to request." },
	{ FIELD(struct fb_conf_provider, "allowed_algs", T_STRLIST, allowed_algs),
	    .def = "RS256 ES256", .min = 1, .max = 10, .kind = &K_ALG,
	    .doc = "oidc: ID token signature algorithms accepted (never none or HS*)." },
	{ FIELD(struct fb_conf_provider, "userinfo", T_BOOL, userinfo), .def = "false",
	    .doc = "oidc: also fetch the userinfo endpoint; its claims add to the ID token's "
	           "and may not contradict them." },
	{ FIELD(struct fb_conf_provider, "timeout", T_DURATION, timeout), .def = "15s", .min = 1,
	    .max = 120,
	    .doc =
	        "oidc: one deadline for all the calls to the IdP a login makes (discovery, "
	        "keys, the code exchange, userinfo); past it the login ends 502 (unavailable)." },
	{ FIELD(struct fb_conf_provider, "idp_metadata", T_STR, idp_metadata), .kind = &K_FILE_URL,
	    .doc = "saml: the IdP's metadata, a file or an https URL (fetched again as its "
	           "cacheDuration says, an hour by default; validUntil honoured)." },
	{ FIELD(struct fb_conf_provider, "idp_metadata_cert", T_STR, idp_metadata_cert),
	    .kind = &K_FILE,
	    .doc = "saml: the certificate that must have signed the IdP's metadata (checked at "
	           "every fetch)." },
	{ FIELD(struct fb_conf_provider, "sp_key", T_STR, sp_key), .flags = F_SECRET,
	    .kind = &K_SECRET,
	    .doc = "saml: the service provider's private key (PEM, mode 0600)." },
	{ FIELD(struct fb_conf_provider, "sp_cert", T_STR, sp_cert), .kind = &K_FILE,
	    .doc = "saml: the service provider's certificate (PEM)." },
	{ FIELD(struct fb_conf_provider, "allow_idp_initiated", T_BOOL, allow_idp_initiated),
	    .def = "false", .doc = "saml: accept unsolicited responses." },
	{ FIELD(struct fb_conf_provider, "allow_sha1", T_BOOL, allow_sha1), .def = "false",
	    .doc = "saml: accept SHA-1 signatures and digests from this IdP." },
	{ 0 },
};
static const struct conf_struct provider_struct = { "provider", provider_fields,
	sizeof(struct fb_conf_provider), check_provider };

static const struct conf_field mapping_fields[] = {
	{ FIELD(struct fb_conf_mapping, "provider", T_STR, provider), .flags = F_REQUIRED,
	    .kind = &K_IDENT, .doc = "The provider whose logins this mapping handles." },
	{ FIELD(struct fb_conf_mapping, "fid", T_EXPRLIST, fid), .flags = F_REQUIRED, .min = 1,
	    .max = 8,
	    .doc = "The local part of the fid: an expression, or a list of candidates of which "
	           "the first present wins, e.g. pairwise(claims.sub)." },
	{ .key = "attributes",
	    .type = T_EXPRMAP,
	    .offset = offsetof(struct fb_conf_mapping, attrs),
	    .count_offset = offsetof(struct fb_conf_mapping, n_attrs),
	    .max = 32,
	    .doc = "Attribute name -> expression." },
	{ FIELD(struct fb_conf_mapping, "require", T_EXPRLIST, require), .min = 1, .max = 32,
	    .doc = "Conditions every login must meet (one or a list)." },
	{ FIELD(struct fb_conf_mapping, "deny", T_EXPRLIST, deny), .min = 1, .max = 32,
	    .doc = "Conditions of which any one refuses a login (one or a list)." },
	{ FIELD(struct fb_conf_mapping, "pins", T_STR, pins), .kind = &K_FILE,
	    .doc = "A pin table from fedbridge import whitelist: users who keep their old fid." },
	{ FIELD(struct fb_conf_mapping, "pin_key", T_EXPR, pin_key),
	    .doc = "The identity key pins are looked up by (default: lower(claims.email) for "
	           "oidc, lower(nameid) for saml)." },
	{ 0 },
};
static const struct conf_struct mapping_struct = { "mapping", mapping_fields,
	sizeof(struct fb_conf_mapping), NULL };

static const struct conf_field trust_fields[] = {
	{ FIELD(struct fb_conf_trust, "remote", T_STR, remote), .flags = F_REQUIRED,
	    .kind = &K_INSTALL,
	    .doc = "The remote installation's name (this installation's own name for a trust "
	           "between local tenants)." },
	{ FIELD(struct fb_conf_trust, "tenants", T_STRLIST, tenants), .flags = F_REQUIRED, .min = 1,
	    .max = 1000, .kind = &K_TENANT_ID, .doc = "The remote tenantIDs trusted." },
	{ FIELD(struct fb_conf_trust, "relay", T_STR, relay), .kind = &K_HOSTPORT,
	    .doc = "The remote relay, e.g. federation.b.example:443." },
	{ FIELD(struct fb_conf_trust, "cert_cn", T_STR, cert_cn), .kind = &K_INSTALL,
	    .doc = "CN of the remote relay's client certificate; defaults to remote." },
	{ FIELD(struct fb_conf_trust, "ca", T_STR, ca), .kind = &K_FILE,
	    .doc = "The remote's federation CA (federation.yml cacert): it issued our "
	           "client_cert and the remote relay's server certificate; fedbridge check "
	           "says when it does not verify client_cert." },
	{ FIELD(struct fb_conf_trust, "client_cert", T_STR, client_cert), .kind = &K_FILE,
	    .doc =
	        "Our relay's client certificate toward this remote (for a trust between "
	        "local tenants: the certificate the sending side presents); tokens bind to it." },
	{ FIELD(struct fb_conf_trust, "client_key", T_STR, client_key), .flags = F_SECRET,
	    .kind = &K_SECRET, .doc = "Its private key (mode 0600)." },
	{ FIELD(struct fb_conf_trust, "keys", T_STR, keys), .kind = &K_FILE_URL,
	    .doc = "The remote bridge's public keys: a JWKS file, or the URL of its "
	           "/.well-known/jwks.json (fetched, refreshed, last good set kept)." },
	{ FIELD(struct fb_conf_trust, "issuer", T_STR, issuer), .kind = &K_URL,
	    .doc = "The remote bridge's public URL, the iss of its tokens." },
	{ FIELD(struct fb_conf_trust, "discover", T_STR, discover), .kind = &K_DOMAIN,
	    .doc = "The remote's domain: its bridge is found through the DNS SRV record "
	           "_fedbridge._tcp.DOMAIN, and relay, issuer and keys through that bridge's "
	           "/.well-known/fedbridge, taken only over TLS with a server certificate of "
	           "the trust's ca for the SRV target (which must name this remote and its CA, "
	           "and an issuer on DOMAIN). Instead of relay, keys and issuer." },
	{ FIELD(struct fb_conf_trust, "outbound", T_EXPR, outbound),
	    .doc = "Which local users get tokens for this remote (default: none)." },
	{ FIELD(struct fb_conf_trust, "release", T_STRLIST, release), .max = 32, .kind = &K_ATTR,
	    .doc = "Attributes this remote sees." },
	{ FIELD(struct fb_conf_trust, "inbound", T_EXPR, inbound),
	    .doc = "Which of the remote's users may reach local users (default: none)." },
	{ 0 },
};
static const struct conf_struct trust_struct = { "trust", trust_fields,
	sizeof(struct fb_conf_trust), check_trust };

static const struct conf_field client_fields[] = {
	{ FIELD(struct fb_conf_client, "client_id", T_STR, client_id), .flags = F_REQUIRED,
	    .kind = &K_IDENT, .doc = "The client id the messenger backend presents at /token." },
	{ FIELD(struct fb_conf_client, "client_auth", T_ENUM, auth), .def = "client_secret_basic",
	    .names = client_auths, .doc = "How the backend authenticates at /token." },
	{ FIELD(struct fb_conf_client, "client_secret_file", T_STR, secret_file), .flags = F_SECRET,
	    .min_bytes = OWN_SECRET_MIN, .max_bytes = FB_SECRET_SHORT_MAX, .kind = &K_SECRET,
	    .doc = "File holding the client secret (mode 0600)." },
	{ FIELD(struct fb_conf_client, "jwks", T_STR, jwks), .kind = &K_FILE,
	    .doc = "private_key_jwt: the backend's public keys (a JWKS file)." },
	{ 0 },
};
static const struct conf_struct client_struct = { "client", client_fields,
	sizeof(struct fb_conf_client), check_client };

static const struct conf_field tenant_fields[] = {
	{ FIELD(struct fb_conf_tenant, "id", T_STR, id), .flags = F_REQUIRED, .kind = &K_TENANT_ID,
	    .doc = "The tenantID, e.g. HZnKEBoqDU." },
	{ FIELD(struct fb_conf_tenant, "name", T_STR, name), .kind = &K_TEXT,
	    .doc = "A display name." },
	{ .key = "providers",
	    .type = T_LIST,
	    .offset = offsetof(struct fb_conf_tenant, providers),
	    .count_offset = offsetof(struct fb_conf_tenant, n_providers),
	    .flags = F_REQUIRED,
	    .min = 1,
	    .max = 64,
	    .sub = &provider_struct,
	    .doc = "The tenant's IdPs." },
	{ .key = "mapping",
	    .type = T_LIST,
	    .offset = offsetof(struct fb_conf_tenant, mappings),
	    .count_offset = offsetof(struct fb_conf_tenant, n_mappings),
	    .flags = F_REQUIRED,
	    .min = 1,
	    .max = 64,
	    .sub = &mapping_struct,
	    .doc = "One mapping per provider." },
	{ .key = "trusts",
	    .type = T_LIST,
	    .offset = offsetof(struct fb_conf_tenant, trusts),
	    .count_offset = offsetof(struct fb_conf_tenant, n_trusts),
	    .max = 1000,
	    .sub = &trust_struct,
	    .doc = "Remote tenants this tenant federates with." },
	{ FIELD(struct fb_conf_tenant, "trusts_dir", T_STR, trusts_dir), .kind = &K_PATH,
	    .doc = "A folder of trusts added by fedbridge trust import and import federation: "
	           "each NAME.yaml in it holds one trust, as an item of trusts would; relative "
	           "paths in it resolve against the folder. Read at every load." },
	{ FIELD(struct fb_conf_tenant, "return_to", T_STRLIST, return_to), .max = 64,
	    .kind = &K_RETURN_TO,
	    .doc = "Where a login may send the browser back to: one of these URLs exactly, "
	           "optionally followed by a query string without code, state or error "
	           "parameters (the login adds its own code)." },
	{ .key = "clients",
	    .type = T_LIST,
	    .offset = offsetof(struct fb_conf_tenant, clients),
	    .count_offset = offsetof(struct fb_conf_tenant, n_clients),
	    .max = 16,
	    .sub = &client_struct,
	    .doc = "OAuth clients of POST /token: the tenant's messenger backend." },
	{ 0 },
};
static const struct conf_struct tenant_struct = { "tenant", tenant_fields,
	sizeof(struct fb_conf_tenant), check_tenant };

static const char *const peer_cert_headers[] = { "X-Fed-Peer-Cert", "X-Fed-Peer-Cert-S256", NULL };

static const struct conf_field installation_fields[] = {
	{ FIELD(struct fb_conf, "name", T_STR, installation.name), .flags = F_REQUIRED,
	    .kind = &K_INSTALL, .doc = "This installation's name, the CN its relay presents." },
	{ FIELD(struct fb_conf, "domain", T_STR, installation.domain), .flags = F_REQUIRED,
	    .kind = &K_DOMAIN, .doc = "Its domain; the relay is federation.DOMAIN." },
	{ FIELD(struct fb_conf, "public_url", T_STR, installation.public_url), .flags = F_REQUIRED,
	    .kind = &K_URL, .doc = "The bridge's public URL: the iss of its tokens." },
	{ FIELD(struct fb_conf, "listen", T_STR, installation.listen), .def = "127.0.0.1:8080",
	    .kind = &K_HOSTPORT, .doc = "Address the bridge listens on (HTTP)." },
	{ FIELD(struct fb_conf, "relay_listen", T_STR, installation.relay_listen),
	    .kind = &K_HOSTPORT,
	    .doc = "Address of the relays' own listener (HTTP, loopback or a private network): "
	           "/validate, /healthz and /readyz only, and /validate no longer on listen. "
	           "Default: none, listen serves /validate." },
	{ FIELD(struct fb_conf, "relay_peer_cert_header", T_ENUM, installation.relay_peer_cert),
	    .def = "X-Fed-Peer-Cert", .names = peer_cert_headers,
	    .doc = "The header through which the relays give /validate the peer's certificate: "
	           "X-Fed-Peer-Cert (URL-escaped PEM, nginx $ssl_client_escaped_cert) or "
	           "X-Fed-Peer-Cert-S256 (its SHA-256). A check carrying the other one, or "
	           "either twice, is refused with 400." },
	{ FIELD(struct fb_conf, "relay", T_STR, installation.relay), .kind = &K_HOSTPORT,
	    .doc = "Our relay as remotes reach it; default federation.DOMAIN:443. Written into "
	           "fedbridge trust export." },
	{ FIELD(struct fb_conf, "resolver", T_STR, installation.resolver), .kind = &K_HOSTPORT,
	    .doc = "The name server (IPv4 address:port) asked for the SRV records of trusts with "
	           "discover; default: the system's (/etc/resolv.conf)." },
	{ FIELD(struct fb_conf, "request_bodies_max", T_SIZE, installation.request_bodies_max),
	    .def = "64MiB", .min = FB_CONF_REQUEST_BODIES_MIN, .max = FB_CONF_REQUEST_BODIES_MAX,
	    .doc = "Request bodies (SAML responses, POST /token) all clients together may have "
	           "the bridge hold at once; past it a request is answered 503 and its body "
	           "dropped. Bounds what anonymous clients can make the bridge allocate." },
	{ FIELD(
	      struct fb_conf, "connections_per_client", T_INT, installation.connections_per_client),
	    .def = "256", .min = 1, .max = FB_CONF_CONNECTIONS_MAX,
	    .doc = "Connections one client address may hold open on listen (relay_listen has no "
	           "such limit). Takes effect at the next start." },
	{ FIELD(struct fb_conf, "ca", T_STR, installation.ca), .kind = &K_FILE,
	    .doc = "Our federation CA certificate (PEM): it signs our relay's server "
	           "certificate and the client certificates we issue to remotes. Written into "
	           "fedbridge trust export." },
	{ 0 },
};

static const struct conf_field keys_fields[] = {
	{ FIELD(struct fb_conf, "signing", T_STRLIST, keys.signing), .min = 1, .max = 8,
	    .kind = &K_SECRET,
	    .doc = "Token signing keys (PEM, mode 0600): the first signs, all are published. "
	           "Or use signing_dir." },
	{ FIELD(struct fb_conf, "signing_dir", T_STR, keys.signing_dir), .kind = &K_PATH,
	    .doc = "A keyring (mode 0700) that fedbridge keys rotate manages: next, active and "
	           "retired keys. Or use signing." },
	{ FIELD(struct fb_conf, "publish_ahead", T_DURATION, keys.publish_ahead), .def = "1h",
	    .min = 600, .max = 2592000,
	    .doc = "How long a next key is published before it may sign (several JWKS refresh "
	           "intervals)." },
	{ FIELD(struct fb_conf, "lifetime", T_DURATION, keys.lifetime), .def = "90d", .min = 86400,
	    .max = 31536000,
	    .doc = "How long a key of the keyring signs; published as the key's exp." },
	{ FIELD(struct fb_conf, "refetch_min", T_DURATION, keys.refetch_min), .def = "30s",
	    .min = 1, .max = 3600,
	    .doc = "Least time between two fetches of a remote's keys prompted by unknown "
	           "kids." },
	{ FIELD(struct fb_conf, "rediscover_min", T_DURATION, keys.rediscover_min), .def = "5m",
	    .min = 1, .max = 86400,
	    .doc = "Least time between two rediscoveries of a remote found through DNS "
	           "(discover) prompted by unknown kids: anyone can show a token with a kid "
	           "we lack." },
	{ FIELD(struct fb_conf, "fid_secret", T_STR, keys.fid_secret),
	    .flags = F_REQUIRED | F_SECRET, .min_bytes = OWN_SECRET_MIN,
	    .max_bytes = FB_SECRET_SHORT_MAX, .kind = &K_SECRET,
	    .doc = "At least 32 random bytes (mode 0600) keying pairwise fids." },
	{ 0 },
};

static const struct conf_field tokens_fields[] = {
	{ FIELD(struct fb_conf, "ttl", T_DURATION, tokens.ttl), .def = "5m", .min = 10, .max = 3600,
	    .doc = "Lifetime of a federation token." },
	{ FIELD(struct fb_conf, "max_ttl", T_DURATION, tokens.max_ttl), .def = "15m", .min = 10,
	    .max = 86400, .doc = "Longest lifetime a verifier accepts (exp - iat)." },
	{ FIELD(struct fb_conf, "session_ttl", T_DURATION, tokens.session_ttl), .def = "8h",
	    .min = 60, .max = 2592000, .doc = "Absolute lifetime of a login session." },
	{ FIELD(struct fb_conf, "session_idle", T_DURATION, tokens.session_idle), .def = "1h",
	    .min = 60, .max = 2592000, .doc = "Idle timeout of a login session." },
	{ FIELD(struct fb_conf, "clock_skew", T_DURATION, tokens.clock_skew), .def = "30s",
	    .min = 0, .max = 300, .doc = "Clock difference tolerated on iat, nbf and exp." },
	{ FIELD(struct fb_conf, "exchange_max_age", T_DURATION, tokens.exchange_max_age),
	    .def = "5m", .min = 10, .max = 86400,
	    .doc = "Oldest ID token a token exchange (POST /token, RFC 8693) accepts: its iat "
	           "at most this long ago (plus clock_skew), whatever its exp says." },
	{ FIELD(struct fb_conf, "max_size", T_SIZE, tokens.max_size), .def = "8KiB", .min = 1024,
	    .max = 65536, .doc = "Largest token accepted." },
	{ 0 },
};

static const struct conf_field log_fields[] = {
	{ FIELD(struct fb_conf, "level", T_ENUM, log.level), .def = "info", .names = log_levels,
	    .doc = "Least severe level logged." },
	{ FIELD(struct fb_conf, "format", T_ENUM, log.format), .def = "text", .names = log_formats,
	    .doc = "text lines or JSON lines on stderr." },
	{ FIELD(struct fb_conf, "attributes", T_BOOL, log.attributes), .def = "false",
	    .doc = "Log users' mapped attributes (e-mail, department, ...) with each login and "
	           "relay decision. They are personal data: off unless your policy allows it." },
	{ 0 },
};

/* Sections embedded in struct fb_conf: their fields' offsets are from the root. */
static const struct conf_struct installation_struct = { "installation", installation_fields, 0,
	check_installation };
static const struct conf_struct keys_struct = { "keys", keys_fields, 0, NULL };
static const struct conf_struct tokens_struct = { "tokens", tokens_fields, 0, NULL };
static const struct conf_struct log_struct = { "log", log_fields, 0, NULL };

static const struct conf_field root_fields[] = {
	{ .key = "installation",
	    .type = T_STRUCT,
	    .flags = F_REQUIRED,
	    .sub = &installation_struct,
	    .doc = "Who this installation is." },
	{ .key = "keys",
	    .type = T_STRUCT,
	    .flags = F_REQUIRED,
	    .sub = &keys_struct,
	    .doc = "Key files." },
	{ FIELD(struct fb_conf, "store", T_STR, store.location),
	    .def = "embedded:/var/lib/fedbridge", .kind = &K_STORE,
	    .doc = "Where sessions and revocations live." },
	{ FIELD(struct fb_conf, "store_password_file", T_STR, store.password_file),
	    .flags = F_SECRET, .max_bytes = FB_SECRET_SHORT_MAX, .kind = &K_SECRET,
	    .doc = "PostgreSQL password (mode 0600), for a postgresql store." },
	{ FIELD(struct fb_conf, "remote_revocations_max", T_INT, store.remote_revocations_max),
	    .def = "100000", .min = 1, .max = 10000000,
	    .doc = "Most revocations in force one remote's feed may have recorded in our store. "
	           "A page that would pass it is not taken (it is retried; the cursor stays), "
	           "logged and counted (fedbridge_revocation_feed_quota_total)." },
	{ FIELD(struct fb_conf, "audit_retention", T_DURATION, store.audit_retention),
	    .def = "365d", .min = FB_AUDIT_RETENTION_MIN, .max = FB_AUDIT_RETENTION_MAX,
	    .doc = "How long audit records are kept. The store's purge (every 5 minutes) deletes "
	           "older ones; the store's triggers refuse to change or delete younger ones, "
	           "plain SQL included (not a database owner who drops the triggers). Nodes "
	           "sharing a PostgreSQL store should set the same value." },
	{ .key = "tokens",
	    .type = T_STRUCT,
	    .sub = &tokens_struct,
	    .doc = "Lifetimes and limits." },
	{ .key = "log", .type = T_STRUCT, .sub = &log_struct, .doc = "Logging." },
	{ .key = "tenants",
	    .type = T_LIST,
	    .offset = offsetof(struct fb_conf, tenants),
	    .count_offset = offsetof(struct fb_conf, n_tenants),
	    .flags = F_REQUIRED,
	    .min = 1,
	    .max = 1000,
	    .sub = &tenant_struct,
	    .doc = "The tenants this bridge serves." },
	{ 0 },
};
static const struct conf_struct root_struct = { "", root_fields, sizeof(struct fb_conf), NULL };

/* An absent optional section still gets its defaults. */
static const struct conf_node empty_map = { .type = CONF_NODE_MAP };

bool
conf_schema_apply(struct conf_ctx *c, const struct conf_node *root, struct fb_conf *out)
{
	bool ok;

	if (root->type != CONF_NODE_MAP)
		return conf_diag(c, root->pos, NULL,
		    "expected a mapping with installation, keys and tenants, got %s",
		    got(c, NULL, root));
	ok = apply_struct(c, &root_struct, root, "", out);
	/* Sections left out get their defaults too. */
	for (const struct conf_field *f = root_fields; f->key != NULL; f++) {
		if (f->type == T_STRUCT && !(f->flags & F_REQUIRED) &&
		    map_get(root, f->key) == NULL)
			ok = apply_struct(c, f->sub, &empty_map, f->key, out) && ok;
	}
	if (ok && out->store.location != NULL) {
		const char *v =
		    map_get(root, "store") ? map_get(root, "store")->value : "embedded:";
		if (strcmp(v, "memory:") == 0)
			out->store.kind = FB_STORE_MEMORY;
		else if (strncmp(v, "embedded:", 9) == 0)
			out->store.kind = FB_STORE_EMBEDDED;
		else
			out->store.kind = FB_STORE_POSTGRESQL;
	}
	return ok;
}

/* ---- the reference, from the same table ---- */

static fb_rc
reference_struct(struct fb_buf *out, const struct conf_struct *s, const char *prefix)
{
	char path[300];
	fb_rc rc = FB_OK;

	for (const struct conf_field *f = s->fields; rc == FB_OK && f->key != NULL; f++) {
		const char *type = "";
		char bounds[96] = "";
		char lo[32], hi[32];

		path_join(path, sizeof(path), prefix, f->key);
		switch (f->type) {
		case T_STR:
			type = f->kind->expected;
			if (f->min_bytes > 0)
				(void)snprintf(bounds, sizeof(bounds), "at least %lld bytes",
				    (long long)f->min_bytes);
			break;
		case T_INT:
			type = "integer";
			break;
		case T_BOOL:
			type = "boolean";
			break;
		case T_DURATION:
			type = "duration";
			duration_text(f->min, lo, sizeof(lo));
			duration_text(f->max, hi, sizeof(hi));
			(void)snprintf(bounds, sizeof(bounds), "%s to %s", lo, hi);
			break;
		case T_SIZE:
			type = "size";
			size_text(f->min, lo, sizeof(lo));
			size_text(f->max, hi, sizeof(hi));
			(void)snprintf(bounds, sizeof(bounds), "%s to %s", lo, hi);
			break;
		case T_ENUM:
			type = "one of";
			for (size_t i = 0; f->names[i] != NULL; i++) {
				size_t used = strlen(bounds);
				(void)snprintf(bounds + used, sizeof(bounds) - used, "%s%s",
				    i ? ", " : "", f->names[i]);
			}
			break;
		case T_EXPR:
			type = "expression";
			break;
		case T_STRLIST:
			type = "list";
			(void)snprintf(bounds, sizeof(bounds), "%lld to %lld items (%s)",
			    (long long)f->min, (long long)f->max, f->kind->expected);
			break;
		case T_STRUCT:
			type = "mapping";
			break;
		case T_LIST:
			type = "list of mappings";
			(void)snprintf(bounds, sizeof(bounds), "%lld to %lld", (long long)f->min,
			    (long long)f->max);
			break;
		case T_EXPRMAP:
			type = "mapping of expressions";
			(void)snprintf(bounds, sizeof(bounds), "at most %lld", (long long)f->max);
			break;
		case T_EXPRLIST:
			type = "expression or list";
			(void)snprintf(bounds, sizeof(bounds), "%lld to %lld expressions",
			    (long long)f->min, (long long)f->max);
			break;
		}
		rc = fb_buf_printf(out, "| `%s` | %s | %s | %s | %s |\n", path, type, bounds,
		    (f->flags & F_REQUIRED) ? "required" : (f->def ? f->def : "-"),
		    f->doc ? f->doc : "");
		if (rc == FB_OK && (f->type == T_STRUCT || f->type == T_LIST)) {
			char sub[304];
			(void)snprintf(
			    sub, sizeof(sub), "%s%s", path, f->type == T_LIST ? "[]" : "");
			rc = reference_struct(out, f->sub, sub);
		}
	}
	return rc;
}

fb_rc
fb_conf_reference_markdown(struct fb_buf *out)
{
	fb_rc rc = fb_buf_printf(out,
	    "| key | type | allowed | default | meaning |\n"
	    "|---|---|---|---|---|\n");

	return rc == FB_OK ? reference_struct(out, &root_struct, "") : rc;
}
