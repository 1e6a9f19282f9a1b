/*
 * fedbridge mapping test|diff: dry runs of the admin's rules on saved
 * identities, so a mapping can be tried, golden-tested in the admin's own
 * CI, and compared across two versions of a configuration before a reload.
 */
#include "cli_int.h"
#include "fb_idp.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDENTITY_FILE_MAX ((size_t)1 << 20)
#define SCRATCH_BYTES ((size_t)256 * 1024)
#define TRACE_MAX ((size_t)1 << 20)
#define EXPECTED_SUFFIX ".expected.json"
#define DIR_FILES_MAX 100000

static const char usage_mapping[] =
    "usage: fedbridge mapping test -c FILE [--provider NAME] [--tenant ID]\n"
    "                              (--claims FILE.json | --saml-response FILE.xml |\n"
    "                               --identity FILE.json) [--json]\n"
    "       fedbridge mapping test -c FILE [--update] DIR\n"
    "       fedbridge mapping diff -c OLD -c NEW DIR\n"
    "\n"
    "Runs the configuration's mapping on what an IdP said, as a login would:\n"
    "the fid, the attributes, for each trust whether a token would be issued\n"
    "and what it would release, then a trace of every rule and the values it\n"
    "read. Nothing is stored and nothing is sent.\n"
    "\n"
    "  --claims FILE          OIDC claims (ID token merged with userinfo), JSON\n"
    "  --saml-response FILE   a saved SAML Response (signatures are not checked)\n"
    "  --identity FILE        a saved identity: {\"provider\", \"tenant\", \"issuer\",\n"
    "                         \"subject\", \"claims\" | \"attrs\" + \"nameid\"}\n"
    "  --json                 print the result as JSON\n"
    "  DIR                    every *.json identity in DIR against its\n"
    "                         NAME.expected.json (--update writes them)\n"
    "\n"
    "Exit status: 0 login allowed (or every identity as expected; diff: no change),\n"
    "1 refused (or a mismatch; diff: changes), 2 usage or configuration errors.\n";

/* What one dry run reads: owned copies of everything the login borrows. */
struct dry_input {
	json_t *doc; /* the identity file, when one was read */
	json_t *claims;
	json_t *attrs;
	char *issuer, *subject, *nameid, *provider, *tenant;
};

static void
dry_input_clear(struct dry_input *d)
{
	json_decref(d->doc);
	json_decref(d->claims);
	json_decref(d->attrs);
	free(d->issuer);
	free(d->subject);
	free(d->nameid);
	free(d->provider);
	free(d->tenant);
	memset(d, 0, sizeof(*d));
}

static json_t *
json_file(const char *path, struct fb_err *err)
{
	json_error_t jerr;
	char *data = NULL;
	size_t len = 0;
	json_t *j;

	if (fb_file_read(path, IDENTITY_FILE_MAX, &data, &len, err) != FB_OK)
		return NULL;
	j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	free(data);
	if (j == NULL)
		FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
	else if (!json_is_object(j)) {
		FB_ERR_SET(err, FB_ERR_INVALID, "%s: expected a JSON object", path);
		json_decref(j);
		j = NULL;
	}
	return j;
}

static char *
opt_string(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static bool
read_claims(const char *path, struct dry_input *d, struct fb_err *err)
{
	if ((d->claims = json_file(path, err)) == NULL)
		return false;
	d->issuer = opt_string(d->claims, "iss");
	d->subject = opt_string(d->claims, "sub");
	return true;
}

static bool
read_saml(const char *path, struct dry_input *d, struct fb_err *err)
{
	struct fb_saml_identity id = { 0 };
	char *data = NULL;
	size_t len = 0;
	fb_rc rc;

	if (fb_file_read(path, IDENTITY_FILE_MAX, &data, &len, err) != FB_OK)
		return false;
	rc = fb_saml_identity_read(data, len, &id, err);
	free(data);
	if (rc != FB_OK) {
		fb_err_prefix(err, "%s", path);
		return false;
	}
	d->issuer = id.issuer;
	d->nameid = id.nameid;
	d->subject = id.nameid != NULL ? strdup(id.nameid) : NULL;
	d->attrs = id.attrs;
	id.issuer = id.nameid = NULL;
	id.attrs = NULL;
	fb_saml_identity_clear(&id);
	return true;
}

/* A saved identity; unknown members are refused so typos do not pass silently. */
static bool
read_identity(const char *path, struct dry_input *d, struct fb_err *err)
{
	static const char *const known[] = { "provider", "tenant", "issuer", "subject", "claims",
		"attrs", "nameid", "comment" };
	const char *key;
	json_t *val;

	if ((d->doc = json_file(path, err)) == NULL)
		return false;
	json_object_foreach(d->doc, key, val)
	{
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]) && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok) {
			FB_ERR_SET(err, FB_ERR_INVALID, "%s: unknown member \"%s\"", path, key);
			return false;
		}
	}
	val = json_object_get(d->doc, "claims");
	if (val != NULL && !json_is_object(val))
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: claims must be an object", path), false;
	d->claims = json_incref(val);
	val = json_object_get(d->doc, "attrs");
	if (val != NULL && !json_is_object(val))
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: attrs must be an object", path), false;
	d->attrs = json_incref(val);
	if (d->claims == NULL && d->attrs == NULL)
		return FB_ERR_SET(
		           err, FB_ERR_INVALID, "%s: needs claims (OIDC) or attrs (SAML)", path),
		       false;
	d->provider = opt_string(d->doc, "provider");
	d->tenant = opt_string(d->doc, "tenant");
	d->issuer = opt_string(d->doc, "issuer");
	d->subject = opt_string(d->doc, "subject");
	d->nameid = opt_string(d->doc, "nameid");
	if (d->issuer == NULL && d->claims != NULL)
		d->issuer = opt_string(d->claims, "iss");
	if (d->subject == NULL && d->claims != NULL)
		d->subject = opt_string(d->claims, "sub");
	if (d->subject == NULL && d->nameid != NULL)
		d->subject = strdup(d->nameid);
	return true;
}

/* The tenant whose providers include name: --tenant, the identity's, or the only match. */
static const char *
tenant_for(const struct fb_conf *conf, const char *want, const char *provider, struct fb_err *err)
{
	const char *found = NULL;

	for (size_t t = 0; t < conf->n_tenants; t++) {
		const struct fb_conf_tenant *ten = &conf->tenants[t];
		if (want != NULL && strcmp(ten->id, want) != 0)
			continue;
		for (size_t p = 0; p < ten->n_providers; p++) {
			if (strcmp(ten->providers[p].name, provider) != 0)
				continue;
			if (found != NULL) {
				FB_ERR_SET(err, FB_ERR_INVALID,
				    "provider %s is in tenants %s and %s: say which with --tenant",
				    provider, found, ten->id);
				return NULL;
			}
			found = ten->id;
		}
	}
	if (found == NULL)
		FB_ERR_SET(err, FB_ERR_NOTFOUND, "no provider %s%s%s in %s", provider,
		    want ? " in tenant " : "", want ? want : "", conf->path);
	return found;
}

/* The result as JSON: what golden files hold and --json prints (trace added by callers). */
static json_t *
principal_json(const struct fb_principal *p)
{
	json_t *o = json_object(), *trusts = json_array();

	json_object_set_new(o, "allowed", json_boolean(p->allowed));
	if (!p->allowed) {
		json_object_set_new(o, "refused_by", json_string(p->rule ? p->rule : ""));
		json_object_set_new(o, "reason", json_string(p->reason));
		json_decref(trusts);
		return o;
	}
	json_object_set_new(o, "fid", json_string(p->fid));
	json_object_set_new(o, "fid_source", json_string(p->fid_source ? p->fid_source : ""));
	json_object_set_new(o, "attributes", fb_principal_attrs_json(p, NULL));
	for (size_t i = 0; i < p->n_trusts; i++) {
		const struct fb_trust_decision *d = &p->trusts[i];
		json_t *t = json_object(), *aud = json_array();
		for (size_t k = 0; k < d->trust->tenants.n; k++)
			json_array_append_new(aud, json_string(d->trust->tenants.v[k]));
		json_object_set_new(t, "remote", json_string(d->trust->remote));
		json_object_set_new(t, "tenants", aud);
		json_object_set_new(t, "outbound", json_boolean(d->outbound));
		if (d->outbound)
			json_object_set_new(t, "released", fb_principal_attrs_json(p, d->trust));
		json_array_append_new(trusts, t);
	}
	json_object_set_new(o, "trusts", trusts);
	return o;
}

struct dry_result {
	json_t *json; /* principal_json */
	struct fb_buf trace;
	bool allowed;
};

/* Runs rules on d; FB_OK with r filled whether allowed or refused. */
static fb_rc
dry_run(const struct fb_conf *conf, const struct fb_rules *rules, struct dry_input *d,
    const char *provider, const char *tenant, struct dry_result *r, struct fb_err *err)
{
	struct fb_expr_scratch *s = NULL;
	struct fb_principal p = { 0 };
	struct fb_login login = { 0 };
	fb_rc rc;

	memset(r, 0, sizeof(*r));
	fb_buf_init(&r->trace, TRACE_MAX);
	if (provider == NULL)
		provider = d->provider;
	if (tenant == NULL)
		tenant = d->tenant;
	if (provider == NULL)
		return FB_ERR_SET(err, FB_ERR_INVALID,
		    "which provider? give --provider or \"provider\" in the identity");
	if ((login.tenant = tenant_for(conf, tenant, provider, err)) == NULL)
		return err->rc;
	login.provider = provider;
	login.issuer = d->issuer;
	login.subject = d->subject;
	login.claims = d->claims;
	login.attrs = d->attrs;
	login.nameid = d->nameid;
	if ((rc = fb_expr_scratch_new(SCRATCH_BYTES, &s)) != FB_OK)
		return FB_ERR_SET(err, rc, "out of memory");
	rc = fb_mapping_run(rules, &login, s, &p, &r->trace, err);
	if (rc == FB_OK) {
		r->json = principal_json(&p);
		r->allowed = p.allowed;
	}
	fb_principal_clear(&p);
	fb_expr_scratch_free(s);
	return rc;
}

static void
dry_result_clear(struct dry_result *r)
{
	json_decref(r->json);
	fb_buf_free(&r->trace);
}

static void
print_value(const char *prefix, const char *name, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	printf("%s%s = %s\n", prefix, name, text ? text : "?");
	free(text);
}

static void
print_text(const struct dry_result *r)
{
	json_t *o = r->json, *attrs, *trusts, *t, *v;
	const char *key, *line, *nl;
	size_t i;

	if (!r->allowed) {
		printf("login refused by %s\n  %s\n",
		    json_string_value(json_object_get(o, "refused_by")),
		    json_string_value(json_object_get(o, "reason")));
	} else {
		printf("login allowed\nfid: %s  (from %s)\nattributes:\n",
		    json_string_value(json_object_get(o, "fid")),
		    json_string_value(json_object_get(o, "fid_source")));
		attrs = json_object_get(o, "attributes");
		if (json_object_size(attrs) == 0)
			printf("  (none)\n");
		json_object_foreach(attrs, key, v) print_value("  ", key, v);
		trusts = json_object_get(o, "trusts");
		printf("trusts:%s\n", json_array_size(trusts) == 0 ? " (none)" : "");
		json_array_foreach(trusts, i, t)
		{
			printf("  %s: %s", json_string_value(json_object_get(t, "remote")),
			    json_is_true(json_object_get(t, "outbound"))
			        ? "tokens issued, releases "
			        : "no tokens (outbound is not true)\n");
			if (json_is_true(json_object_get(t, "outbound")))
				print_value("", "", json_object_get(t, "released"));
		}
	}
	printf("trace:\n");
	for (line = r->trace.data; line != NULL && *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		printf("  %.*s\n", (int)(nl - line), line);
	}
}

static json_t *
trace_json(const struct fb_buf *trace)
{
	json_t *a = json_array();
	const char *line, *nl;

	for (line = trace->data; line != NULL && *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;
		json_array_append_new(a, json_stringn(line, (size_t)(nl - line)));
	}
	return a;
}

static int
test_one(const struct fb_conf *conf, const struct fb_rules *rules, const char *mode,
    const char *path, const char *provider, const char *tenant, bool as_json)
{
	struct dry_input d = { 0 };
	struct dry_result r;
	struct fb_err err = { 0 };
	bool ok;
	int status = EXIT_USAGE;

	if (strcmp(mode, "claims") == 0)
		ok = read_claims(path, &d, &err);
	else if (strcmp(mode, "saml") == 0)
		ok = read_saml(path, &d, &err);
	else
		ok = read_identity(path, &d, &err);
	if (!ok) {
		fprintf(stderr, "fedbridge mapping test: %s\n", err.msg);
		dry_input_clear(&d);
		return EXIT_USAGE;
	}
	if (dry_run(conf, rules, &d, provider, tenant, &r, &err) != FB_OK) {
		fprintf(stderr, "fedbridge mapping test: %s: %s\n", path, err.msg);
	} else {
		if (as_json) {
			json_object_set_new(r.json, "trace", trace_json(&r.trace));
			json_dumpf(r.json, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
			putchar('\n');
		} else {
			print_text(&r);
		}
		status = r.allowed ? 0 : 1;
	}
	dry_result_clear(&r);
	dry_input_clear(&d);
	return status;
}

static bool
is_identity_file(const char *name)
{
	size_t n = strlen(name), s = strlen(EXPECTED_SUFFIX);

	if (name[0] == '.' || n < 6 || strcmp(name + n - 5, ".json") != 0)
		return false;
	return n <= s || strcmp(name + n - s, EXPECTED_SUFFIX) != 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The identity files of dir, sorted, so output and exit status are reproducible. */
static char **
dir_identities(const char *dir, size_t *n, struct fb_err *err)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char **v = NULL, **nv;
	size_t cap = 0;

	*n = 0;
	if (dp == NULL) {
		FB_ERR_SET(err, FB_ERR_IO, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	while ((e = readdir(dp)) != NULL) {
		if (!is_identity_file(e->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			if (cap > DIR_FILES_MAX || (nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		if ((v[*n] = strdup(e->d_name)) == NULL)
			break;
		(*n)++;
	}
	closedir(dp);
	if (*n > 0)
		qsort(v, *n, sizeof(*v), name_cmp);
	return v;
}

static void
free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool
write_json_file(const char *path, json_t *j)
{
	char tmp[4200];
	FILE *f;
	bool ok;
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);

	if (n < 0 || (size_t)n >= sizeof(tmp) || (f = fopen(tmp, "w")) == NULL)
		return false;
	ok = json_dumpf(j, f, JSON_INDENT(2) | JSON_SORT_KEYS) == 0 && fputc('\n', f) != EOF;
	ok = fclose(f) == 0 && ok;
	if (ok && rename(tmp, path) != 0)
		ok = false;
	if (!ok)
		(void)unlink(tmp);
	return ok;
}

/* Runs one identity file of a directory; r->json NULL (message printed) on errors. */
static bool
dir_run(const struct fb_conf *conf, const struct fb_rules *rules, const char *dir, const char *name,
    struct dry_result *r)
{
	struct dry_input d = { 0 };
	struct fb_err err = { 0 };
	char path[4096];
	bool ok;

	memset(r, 0, sizeof(*r));
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	ok =
	    read_identity(path, &d, &err) && dry_run(conf, rules, &d, NULL, NULL, r, &err) == FB_OK;
	if (!ok)
		printf("ERROR %s: %s\n", name, err.msg);
	dry_input_clear(&d);
	return ok;
}

static int
test_dir(const struct fb_conf *conf, const struct fb_rules *rules, const char *dir, bool update)
{
	struct fb_err err = { 0 };
	size_t n = 0, passed = 0;
	char **names = dir_identities(dir, &n, &err);
	char expected_path[4200];

	if (names == NULL)
		n = 0;
	if (names == NULL && err.msg[0]) {
		fprintf(stderr, "fedbridge mapping test: %s\n", err.msg);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		struct dry_result r;
		json_t *want = NULL;
		size_t stem = strlen(names[i]) - 5;

		(void)snprintf(expected_path, sizeof(expected_path), "%s/%.*s%s", dir, (int)stem,
		    names[i], EXPECTED_SUFFIX);
		if (!dir_run(conf, rules, dir, names[i], &r)) {
			dry_result_clear(&r);
			continue;
		}
		if (update) {
			if (write_json_file(expected_path, r.json)) {
				printf("wrote %s\n", expected_path);
				passed++;
			} else {
				printf("ERROR %s: cannot write %s\n", names[i], expected_path);
			}
		} else if ((want = json_file(expected_path, &err)) == NULL) {
			printf("ERROR %s: %s\n", names[i], err.msg);
		} else if (json_equal(want, r.json)) {
			printf("ok   %s\n", names[i]);
			passed++;
		} else {
			char *got = json_dumps(r.json, JSON_COMPACT | JSON_SORT_KEYS);
			char *exp = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
			printf("FAIL %s\n  expected %s\n  got      %s\n", names[i], exp ? exp : "?",
			    got ? got : "?");
			free(got);
			free(exp);
		}
		json_decref(want);
		dry_result_clear(&r);
	}
	printf("%zu of %zu identities %s\n", passed, n, update ? "written" : "as expected");
	free_names(names, n);
	return passed == n && n > 0 ? 0 : 1;
}

/* Prints what changed between two results of one identity; true when anything did. */
static bool
print_changes(const char *name, json_t *a, json_t *b)
{
	static const char *const fields[] = { "allowed", "refused_by", "fid", "attributes",
		"trusts" };
	bool changed = false;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *x = json_object_get(a, fields[i]), *y = json_object_get(b, fields[i]);
		char *xs, *ys;
		if ((x == NULL && y == NULL) || (x != NULL && y != NULL && json_equal(x, y)))
			continue;
		xs = x ? json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
		ys = y ? json_dumps(y, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
		printf(
		    "%s: %s: %s -> %s\n", name, fields[i], xs ? xs : "(none)", ys ? ys : "(none)");
		free(xs);
		free(ys);
		changed = true;
	}
	return changed;
}

static int
diff_dir(const struct fb_conf *c1, const struct fb_rules *r1, const struct fb_conf *c2,
    const struct fb_rules *r2, const char *dir)
{
	struct fb_err err = { 0 };
	size_t n = 0, changed = 0, errors = 0;
	char **names = dir_identities(dir, &n, &err);

	if (names == NULL)
		n = 0;
	if (names == NULL && err.msg[0]) {
		fprintf(stderr, "fedbridge mapping diff: %s\n", err.msg);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		struct dry_result a, b;
		bool ok_a = dir_run(c1, r1, dir, names[i], &a);
		bool ok_b = dir_run(c2, r2, dir, names[i], &b);
		if (ok_a && ok_b && print_changes(names[i], a.json, b.json))
			changed++;
		if (!ok_a || !ok_b)
			errors++;
		dry_result_clear(&a);
		dry_result_clear(&b);
	}
	printf("%zu of %zu identities change\n", changed, n);
	free_names(names, n);
	if (errors > 0)
		return EXIT_USAGE;
	return changed > 0 ? 1 : 0;
}

static int
cmd_test(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "provider", required_argument, NULL, 'p' },
		{ "tenant", required_argument, NULL, 't' },
		{ "claims", required_argument, NULL, 'C' },
		{ "saml-response", required_argument, NULL, 'S' },
		{ "identity", required_argument, NULL, 'I' }, { "json", no_argument, NULL, 'j' },
		{ "update", no_argument, NULL, 'u' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *config = NULL, *provider = NULL, *tenant = NULL, *mode = NULL, *input = NULL;
	bool as_json = false, update = false;
	struct fb_rules *rules = NULL;
	struct fb_conf *conf;
	int ch, status;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'p':
			provider = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 'C':
		case 'S':
		case 'I':
			if (mode != NULL)
				return fb_cli_usage("mapping", usage_mapping,
				    "give one of --claims, --saml-response, --identity");
			mode = ch == 'C' ? "claims" : ch == 'S' ? "saml" : "identity";
			input = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'u':
			update = true;
			break;
		case 'h':
			fputs(usage_mapping, stdout);
			return 0;
		default:
			fputs(usage_mapping, stderr);
			return EXIT_USAGE;
		}
	}
	if (config == NULL)
		return fb_cli_usage("mapping", usage_mapping, "test: -c FILE is required");
	if (mode == NULL && optind != argc - 1)
		return fb_cli_usage("mapping", usage_mapping,
		    "test: give --claims, --saml-response, --identity or a DIR");
	if (mode != NULL && optind != argc)
		return fb_cli_usage(
		    "mapping", usage_mapping, "test: unexpected argument %s", argv[optind]);
	if (mode != NULL && update)
		return fb_cli_usage("mapping", usage_mapping, "test: --update goes with a DIR");
	if ((conf = fb_cli_load_conf(config, &rules)) == NULL)
		return EXIT_USAGE;
	if (mode != NULL)
		status = test_one(conf, rules, mode, input, provider, tenant, as_json);
	else
		status = test_dir(conf, rules, argv[optind], update);
	fb_rules_free(rules);
	fb_conf_unref(conf);
	return status;
}

static int
cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *configs[2] = { NULL, NULL };
	struct fb_rules *r1 = NULL, *r2 = NULL;
	struct fb_conf *c1 = NULL, *c2 = NULL;
	size_t nconf = 0;
	int ch, status = EXIT_USAGE;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (nconf == 2)
				return fb_cli_usage(
				    "mapping", usage_mapping, "diff: give -c twice: OLD then NEW");
			configs[nconf++] = optarg;
			break;
		case 'h':
			fputs(usage_mapping, stdout);
			return 0;
		default:
			fputs(usage_mapping, stderr);
			return EXIT_USAGE;
		}
	}
	if (nconf != 2)
		return fb_cli_usage("mapping", usage_mapping, "diff: give -c twice: OLD then NEW");
	if (optind != argc - 1)
		return fb_cli_usage(
		    "mapping", usage_mapping, "diff: give one DIR of saved identities");
	if ((c1 = fb_cli_load_conf(configs[0], &r1)) != NULL &&
	    (c2 = fb_cli_load_conf(configs[1], &r2)) != NULL)
		status = diff_dir(c1, r1, c2, r2, argv[optind]);
	fb_rules_free(r1);
	fb_rules_free(r2);
	fb_conf_unref(c1);
	fb_conf_unref(c2);
	return status;
}

int
fb_cli_mapping(int argc, char **argv)
{
	if (argc < 2)
		return fb_cli_usage("mapping", usage_mapping, "which command? test or diff");
	if (strcmp(argv[1], "test") == 0)
		return cmd_test(argc - 1, argv + 1);
	if (strcmp(argv[1], "diff") == 0)
		return cmd_diff(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_mapping, stdout);
		return 0;
	}
	return fb_cli_usage("mapping", usage_mapping, "unknown command %s", argv[1]);
}
