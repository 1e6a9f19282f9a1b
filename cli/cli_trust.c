/*
 * fedbridge trust: export this installation for a remote, import a remote's
 * export, show and remove trusts. Imported trusts live in a tenant's
 * trusts_dir, one NAME.yaml each, next to the files they name, so the
 * admin's own configuration file is never rewritten.
 */
#include "cli_int.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXPORT_FILE_MAX 1048576
#define PEM_MAX 262144
#define LIST_MAX 64

static const char usage_trust[] =
    "usage: fedbridge trust export -c FILE [--tenant ID]... [--out EXPORT]\n"
    "       fedbridge trust import -c FILE [--tenant ID] [--client-cert PEM --client-key PEM]\n"
    "                              [--keys url|file] [--remote-tenant ID]... [--outbound EXPR]\n"
    "                              [--release ATTR,...] [--inbound EXPR] EXPORT\n"
    "       fedbridge trust show -c FILE\n"
    "       fedbridge trust remove -c FILE [--tenant ID] REMOTE\n"
    "\n"
    "export  writes what a remote installation needs to trust this one: its name,\n"
    "        tenants, issuer, public keys (and where to fetch them again), federation\n"
    "        CA (installation.ca) and relay address. Nothing secret. Its SHA-256\n"
    "        fingerprint goes to stderr: read it to the remote's admin over another\n"
    "        channel, who compares it with what import prints.\n"
    "import  adds (or updates) a remote's export as a trust of the tenant, in the\n"
    "        tenant's trusts_dir: REMOTE.yaml, REMOTE.ca.pem and, as asked, REMOTE.jwks\n"
    "        and copies of the client certificate and key our relay presents there\n"
    "        (issued by the remote's CA, as with federation.yml). A trust made by\n"
    "        import federation keeps its certificates and gains keys and issuer.\n"
    "        Policies given here replace the trust's; unset, they stay as they were\n"
    "        (none for a new trust: nobody in, nobody out). The CA must verify the\n"
    "        client certificate and the configuration must still load, or nothing\n"
    "        changes. Reload the bridge afterwards (fedbridge reload or SIGHUP).\n"
    "show    prints every trust: where it is written, its remote tenants, relay, keys,\n"
    "        certificates with their CN and expiry, and policies.\n"
    "remove  deletes an imported trust (the kill switch: after a reload the remote's\n"
    "        tokens are refused as untrusted_issuer and no token is issued for it).\n"
    "\n"
    "  -c, --config FILE        the configuration file\n"
    "  -t, --tenant ID          the local tenant (default: the only one)\n"
    "  -o, --out FILE           export: write here (mode 0644) instead of stdout\n"
    "      --client-cert PEM    import: our relay's client certificate toward the remote\n"
    "      --client-key PEM     import: its private key (mode 0600)\n"
    "      --keys url|file      import: follow the remote's JWKS URL, so key rotation\n"
    "                           needs nothing here (default), or pin the exported keys\n"
    "      --remote-tenant ID   import: trust only these of the remote's tenants\n"
    "      --outbound EXPR      import: which local users get tokens for the remote\n"
    "      --release LIST       import: attributes the remote sees, comma-separated\n"
    "      --inbound EXPR       import: which of the remote's users may reach ours\n"
    "  -h, --help               this text\n"
    "\n"
    "Exit status: 0 done, 1 refused (the reason is printed), 2 usage error.\n";

static int refuse(const char *fmt, ...) FB_PRINTF(1, 2);

static int
refuse(const char *fmt, ...)
{
	va_list ap;

	fputs("fedbridge trust: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* "SHA256:" and the base64url digest of data, as admins compare it aloud. */
static void
fingerprint(const void *data, size_t len, char *out, size_t size)
{
	unsigned char md[32];
	char b64[48];
	unsigned mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    fb_b64url_encode(md, mdlen, b64, sizeof(b64)) != FB_OK)
		(void)snprintf(b64, sizeof(b64), "?");
	(void)snprintf(out, size, "SHA256:%s", b64);
}

/* ---- shared by the subcommands ---- */

const struct fb_conf_tenant *
fb_cli_tenant_pick(const struct fb_conf *conf, const char *id, const char *cmd)
{
	const struct fb_conf_tenant *t;

	if (id == NULL) {
		if (conf->n_tenants == 1)
			return &conf->tenants[0];
		fprintf(stderr, "fedbridge %s: %s has %zu tenants: say which with --tenant\n", cmd,
		    conf->path, conf->n_tenants);
		return NULL;
	}
	if ((t = fb_conf_tenant_find(conf, id)) == NULL)
		fprintf(stderr, "fedbridge %s: no tenant %s in %s\n", cmd, id, conf->path);
	return t;
}

const struct fb_conf_trust *
fb_cli_trust_find(const struct fb_conf_tenant *t, const char *remote)
{
	for (size_t i = 0; i < t->n_trusts; i++)
		if (strcmp(t->trusts[i].remote, remote) == 0)
			return &t->trusts[i];
	return NULL;
}

bool
fb_cli_trusts_dir(const struct fb_conf *conf, const struct fb_conf_tenant *t, const char *cmd)
{
	struct fb_conf_pos at = fb_conf_pos_of(conf, &t->id);

	if (t->trusts_dir != NULL)
		return true;
	fprintf(stderr,
	    "fedbridge %s: %s:%u:%u: tenant %s has no trusts_dir; add one, e.g. "
	    "\"trusts_dir: trusts.d\", and create that folder\n",
	    cmd, conf->path, at.line, at.col, t->id);
	return false;
}

/* A trust written by hand is the admin's: commands never rewrite it. */
bool
fb_cli_trust_writable(const struct fb_conf *conf, const struct fb_conf_trust *tr, const char *cmd)
{
	struct fb_conf_pos at;

	if (tr == NULL || tr->imported != NULL)
		return true;
	at = fb_conf_pos_of(conf, &tr->remote);
	fprintf(stderr,
	    "fedbridge %s: %s:%u:%u: the trust with %s is written in the configuration file; "
	    "change it there, or move it out to use this command\n",
	    cmd, conf->path, at.line, at.col, tr->remote);
	return false;
}

/* After writing: the configuration must still load, or every file written is put back. */
bool
fb_cli_undo_unless_valid(const char *config, struct fb_undo *u)
{
	struct fb_rules *rules = NULL;
	struct fb_conf *conf = fb_cli_load_conf(config, &rules);
	bool ok = conf != NULL;

	fb_rules_free(rules);
	fb_conf_unref(conf);
	if (!ok)
		fprintf(stderr,
		    "fedbridge: the files written would break %s: they were taken back\n", config);
	fb_undo_finish(u, !ok);
	return ok;
}

/* ---- export ---- */

static int
trust_export(const char *config, const char *const *tenants, size_t n_tenants, const char *out)
{
	struct fb_conf *conf = NULL;
	struct fb_federation *fed = NULL;
	struct fb_err err = { 0 };
	char *doc = NULL, fp[64];
	int status = 0;

	if (!fb_cli_open(config, &conf, &fed, NULL, NULL, NULL))
		return 1;
	if (fb_trust_export(conf, fed, tenants, n_tenants, (int64_t)time(NULL), &doc, &err) !=
	    FB_OK) {
		status = refuse("export: %s", err.msg);
		goto out;
	}
	{
		size_t len = strlen(doc);
		char *text = malloc(len + 2);
		if (text == NULL) {
			status = refuse("out of memory");
			goto out;
		}
		memcpy(text, doc, len);
		text[len] = '\n';
		text[len + 1] = '\0';
		fingerprint(text, len + 1, fp, sizeof(fp));
		if (out == NULL) {
			fputs(text, stdout);
		} else if (fb_file_write_atomic(out, text, len + 1, 0644, &err) != FB_OK) {
			status = refuse("export: %s", err.msg);
		}
		free(text);
	}
	if (status == 0)
		fprintf(stderr, "fedbridge trust export: %s %s of %s\n", out ? out : "stdout", fp,
		    conf->installation.name);
out:
	free(doc);
	fb_federation_free(fed);
	fb_conf_unref(conf);
	return status;
}

/* ---- import ---- */

struct import_opts {
	const char *config, *tenant, *client_cert, *client_key, *keys_mode, *outbound, *inbound;
	const char *release; /* comma-separated */
	const char *remote_tenants[LIST_MAX];
	size_t n_remote_tenants;
	const char *file;
};

/* Copies a certificate or key file into the trusts folder. */
static fb_rc
copy_into(struct fb_undo *u, const char *from, const char *to, unsigned mode, struct fb_err *err)
{
	char *data = NULL;
	size_t len = 0;
	fb_rc rc;

	if (mode == FB_SECRET_FILE_MODE) {
		if ((rc = fb_secret_read(from, FB_SECRET_PEM_MAX, &data, &len, err)) != FB_OK)
			return rc;
		rc = fb_undo_write(u, to, data, len, mode, err);
		fb_secret_free(data);
		return rc;
	}
	if ((rc = fb_file_read(from, PEM_MAX, &data, &len, err)) != FB_OK)
		return rc;
	rc = fb_undo_write(u, to, data, len, mode, err);
	free(data);
	return rc;
}

static size_t
split_list(char *s, const char **v, size_t max)
{
	size_t n = 0;

	for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, ",", &save))
		if (*tok != '\0')
			v[n++] = tok;
	return n;
}

static int
trust_import(const struct import_opts *o)
{
	struct fb_conf *conf = NULL;
	struct fb_trust_export ex = { 0 };
	struct fb_err err = { 0 };
	struct fb_undo *u = NULL;
	const struct fb_conf_tenant *t;
	const struct fb_conf_trust *old;
	struct fb_trust_file tf = { 0 };
	char *data = NULL, *release_copy = NULL, fp[64], origin[600];
	char ca_path[4200], jwks_path[4200], cert_path[4200], key_path[4200];
	const char *release[LIST_MAX], *tenants[1000];
	size_t len = 0;
	int status = 1;

	if ((conf = fb_cli_load_conf(o->config, NULL)) == NULL)
		return 1;
	if ((t = fb_cli_tenant_pick(conf, o->tenant, "trust import")) == NULL ||
	    !fb_cli_trusts_dir(conf, t, "trust import"))
		goto out;
	if (fb_file_read(o->file, EXPORT_FILE_MAX, &data, &len, &err) != FB_OK ||
	    fb_trust_export_parse(data, len, o->file, &ex, &err) != FB_OK) {
		refuse("import: %s", err.msg);
		goto out;
	}
	/* What the export asks us to fetch lies under the domain it claims; loopback http only
	 * for an installation that itself runs on loopback http (tests, demos). */
	if (fb_trust_export_check_domain(&ex, fb_conf_on_loopback(conf), &err) != FB_OK ||
	    fb_trust_export_check_urls(&ex, NULL, ex.domain, fb_conf_on_loopback(conf), &err) !=
	        FB_OK) {
		char domain[FB_EXCERPT_MAX];
		fb_excerpt(ex.domain, strlen(ex.domain), domain, sizeof(domain));
		refuse("import: %s: %s (its domain is %s)", o->file, err.msg, domain);
		goto out;
	}
	fingerprint(data, len, fp, sizeof(fp));
	fprintf(stderr, "fedbridge trust import: %s %s of %s\n", o->file, fp, ex.installation);
	if (strcmp(ex.installation, conf->installation.name) == 0) {
		refuse("import: %s is this installation's own export", o->file);
		goto out;
	}
	old = fb_cli_trust_find(t, ex.installation);
	if (!fb_cli_trust_writable(conf, old, "trust import"))
		goto out;

	/* The remote's tenants: those asked for, else those trusted before, else all exported. */
	if (o->n_remote_tenants > 0) {
		tf.tenants = o->remote_tenants;
		tf.n_tenants = o->n_remote_tenants;
	} else if (old != NULL) {
		tf.tenants = old->tenants.v;
		tf.n_tenants = old->tenants.n;
	} else {
		tf.tenants = (const char *const *)ex.tenants;
		tf.n_tenants = ex.n_tenants;
	}
	for (size_t i = 0; i < tf.n_tenants; i++) {
		bool found = false;
		for (size_t j = 0; j < ex.n_tenants && !found; j++)
			found = strcmp(tf.tenants[i], ex.tenants[j]) == 0;
		if (!found) {
			refuse(
			    "import: %s does not export tenant %s", ex.installation, tf.tenants[i]);
			goto out;
		}
		tenants[i] = tf.tenants[i];
	}
	tf.tenants = tenants;

	(void)snprintf(ca_path, sizeof(ca_path), "%s/%s.ca.pem", t->trusts_dir, ex.installation);
	(void)snprintf(jwks_path, sizeof(jwks_path), "%s/%s.jwks", t->trusts_dir, ex.installation);
	(void)snprintf(
	    cert_path, sizeof(cert_path), "%s/%s.client.pem", t->trusts_dir, ex.installation);
	(void)snprintf(
	    key_path, sizeof(key_path), "%s/%s.client.key", t->trusts_dir, ex.installation);
	if ((o->client_cert == NULL) != (o->client_key == NULL)) {
		status = fb_cli_usage(
		    "trust", usage_trust, "import: --client-cert and --client-key go together");
		goto out;
	}
	if (o->client_cert == NULL && (old == NULL || old->client_cert == NULL)) {
		refuse("import: no client certificate toward %s: pass --client-cert and "
		       "--client-key (the pair %s's admin issued for %s)",
		    ex.installation, ex.installation, conf->installation.name);
		goto out;
	}
	/* Copied into the trusts folder where a certificate belongs: never with its key. */
	if (o->client_cert != NULL && fb_cert_file_keyless(o->client_cert, &err) != FB_OK) {
		refuse("import: --client-cert: %s", err.msg);
		goto out;
	}
	if ((u = fb_undo_new()) == NULL) {
		refuse("out of memory");
		goto out;
	}
	/* ex.ca_pem is the export's certificates re-encoded, not its bytes. */
	if (fb_undo_write(u, ca_path, ex.ca_pem, strlen(ex.ca_pem), 0644, &err) != FB_OK ||
	    (o->client_cert != NULL &&
	        (copy_into(u, o->client_cert, cert_path, 0644, &err) != FB_OK ||
	            copy_into(u, o->client_key, key_path, FB_SECRET_FILE_MODE, &err) != FB_OK))) {
		refuse("import: %s", err.msg);
		fb_undo_finish(u, true);
		goto out;
	}
	tf.client_cert = o->client_cert ? cert_path : old->client_cert;
	tf.client_key = o->client_key ? key_path : old->client_key;
	/* Fail closed before anything is used: the remote's CA must have issued our certificate. */
	if (fb_cert_verify_by_ca(ca_path, tf.client_cert, (int64_t)time(NULL), &err) != FB_OK) {
		refuse("import: the CA in %s does not verify the client certificate: %s", o->file,
		    err.msg);
		fb_undo_finish(u, true);
		goto out;
	}
	if (o->keys_mode != NULL && strcmp(o->keys_mode, "file") == 0) {
		if (fb_undo_write(u, jwks_path, ex.jwks, strlen(ex.jwks), 0644, &err) != FB_OK) {
			refuse("import: %s", err.msg);
			fb_undo_finish(u, true);
			goto out;
		}
		tf.keys = jwks_path;
	} else {
		tf.keys = ex.jwks_uri;
	}
	(void)snprintf(origin, sizeof(origin), "Trust with %s, imported from %s (%s).",
	    ex.installation, o->file, fp);
	tf.origin = origin;
	tf.remote = ex.installation;
	tf.relay = ex.relay;
	tf.cert_cn = old && strcmp(old->cert_cn, old->remote) != 0 ? old->cert_cn : NULL;
	tf.ca = ca_path;
	tf.issuer = ex.issuer;
	tf.outbound = o->outbound ? o->outbound : old ? old->outbound.src : NULL;
	tf.inbound = o->inbound ? o->inbound : old ? old->inbound.src : NULL;
	if (o->release != NULL) {
		if ((release_copy = strdup(o->release)) == NULL) {
			refuse("out of memory");
			fb_undo_finish(u, true);
			goto out;
		}
		tf.release = release;
		tf.n_release = split_list(release_copy, release, LIST_MAX);
	} else if (old != NULL) {
		tf.release = old->release.v;
		tf.n_release = old->release.n;
	}
	if (fb_trust_file_write(u, t->trusts_dir, &tf, &err) != FB_OK) {
		refuse("import: %s", err.msg);
		fb_undo_finish(u, true);
		goto out;
	}
	if (!fb_cli_undo_unless_valid(o->config, u))
		goto out;
	printf("%s trust with %s (tenants", old ? "updated" : "added", ex.installation);
	for (size_t i = 0; i < tf.n_tenants; i++)
		printf(" %s", tf.tenants[i]);
	printf(") for tenant %s in %s/%s.yaml; keys from %s; reload the bridge to apply\n", t->id,
	    t->trusts_dir, ex.installation, tf.keys);
	status = 0;
out:
	free(release_copy);
	free(data);
	fb_trust_export_free(&ex);
	fb_conf_unref(conf);
	return status;
}

/* ---- show ---- */

static void
show_cert(const char *label, const char *path)
{
	struct fb_err err = { 0 };
	struct fb_cert_info ci;
	char day[32];
	time_t tt;
	struct tm tm;

	if (path == NULL)
		return;
	if (fb_cert_info(path, &ci, &err) != FB_OK) {
		printf("  %-12s %s (%s)\n", label, path, err.msg);
		return;
	}
	tt = (time_t)ci.not_after;
	if (gmtime_r(&tt, &tm) == NULL || strftime(day, sizeof(day), "%Y-%m-%d", &tm) == 0)
		(void)snprintf(day, sizeof(day), "?");
	printf("  %-12s %s (CN=%s, until %s)\n", label, path, ci.cn, day);
}

static int
trust_show(const char *config)
{
	struct fb_conf *conf = fb_cli_load_conf(config, NULL);
	size_t shown = 0;

	if (conf == NULL)
		return 1;
	for (size_t i = 0; i < conf->n_tenants; i++) {
		const struct fb_conf_tenant *t = &conf->tenants[i];
		for (size_t k = 0; k < t->n_trusts; k++) {
			const struct fb_conf_trust *tr = &t->trusts[k];
			struct fb_conf_pos at = fb_conf_pos_of(conf, &tr->remote);
			bool local = strcmp(tr->remote, conf->installation.name) == 0;

			printf("tenant %s trusts %s%s\n", t->id, tr->remote,
			    local ? " (this installation)" : "");
			printf("  %-12s %s:%u:%u\n", "written in", at.file ? at.file : conf->path,
			    at.line, at.col);
			printf("  %-12s", "tenants");
			for (size_t j = 0; j < tr->tenants.n; j++)
				printf(" %s", tr->tenants.v[j]);
			printf("\n");
			if (!local) {
				if (tr->discover != NULL)
					printf(
					    "  %-12s _fedbridge._tcp.%s (relay, issuer and keys)\n",
					    "discover", tr->discover);
				else
					printf("  %-12s %s\n", "relay", tr->relay);
				printf("  %-12s %s\n", "cert_cn", tr->cert_cn);
				printf("  %-12s %s\n", "issuer",
				    tr->issuer ? tr->issuer : "(none yet)");
				printf("  %-12s %s\n", "keys",
				    tr->keys ? tr->keys : "(none yet: its tokens are refused)");
				show_cert("ca", tr->ca);
			}
			show_cert("client_cert", tr->client_cert);
			printf("  %-12s %s\n", "outbound",
			    tr->outbound.src ? tr->outbound.src : "(nobody)");
			printf("  %-12s", "release");
			for (size_t j = 0; j < tr->release.n; j++)
				printf(" %s", tr->release.v[j]);
			printf("%s\n", tr->release.n ? "" : " (nothing)");
			printf("  %-12s %s\n", "inbound",
			    tr->inbound.src ? tr->inbound.src : "(nobody)");
			shown++;
		}
	}
	if (shown == 0)
		printf("%s: no trusts\n", config);
	fb_conf_unref(conf);
	return 0;
}

/* ---- remove ---- */

static int
trust_remove(const char *config, const char *tenant, const char *remote)
{
	struct fb_conf *conf = fb_cli_load_conf(config, NULL);
	const struct fb_conf_tenant *t;
	const struct fb_conf_trust *tr;
	char path[4200];
	int status = 1;

	if (conf == NULL)
		return 1;
	if ((t = fb_cli_tenant_pick(conf, tenant, "trust remove")) == NULL)
		goto out;
	if ((tr = fb_cli_trust_find(t, remote)) == NULL) {
		refuse("remove: tenant %s has no trust with %s", t->id, remote);
		goto out;
	}
	if (!fb_cli_trust_writable(conf, tr, "trust remove"))
		goto out;
	/* The certificates stay: only the trust goes. */
	(void)snprintf(path, sizeof(path), "%s", tr->imported);
	if (unlink(path) != 0) {
		refuse("remove: %s: %s", path, strerror(errno));
		goto out;
	}
	printf("removed the trust of tenant %s with %s (%s); reload the bridge to apply\n", t->id,
	    remote, path);
	status = 0;
out:
	fb_conf_unref(conf);
	return status;
}

int
fb_cli_trust(int argc, char **argv)
{
	enum { O_CERT = 256, O_KEY, O_KEYS, O_RTENANT, O_OUTBOUND, O_INBOUND, O_RELEASE };
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "tenant", required_argument, NULL, 't' }, { "out", required_argument, NULL, 'o' },
		{ "client-cert", required_argument, NULL, O_CERT },
		{ "client-key", required_argument, NULL, O_KEY },
		{ "keys", required_argument, NULL, O_KEYS },
		{ "remote-tenant", required_argument, NULL, O_RTENANT },
		{ "outbound", required_argument, NULL, O_OUTBOUND },
		{ "inbound", required_argument, NULL, O_INBOUND },
		{ "release", required_argument, NULL, O_RELEASE },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	struct import_opts o = { 0 };
	const char *tenants[LIST_MAX], *out = NULL, *sub;
	size_t n_tenants = 0;
	int ch;

	if (argc < 2)
		return fb_cli_usage("trust", usage_trust, "a subcommand is required");
	sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		fputs(usage_trust, stdout);
		return 0;
	}
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:t:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o.config = optarg;
			break;
		case 't':
			if (n_tenants == LIST_MAX)
				return fb_cli_usage(
				    "trust", usage_trust, "at most %d --tenant", LIST_MAX);
			tenants[n_tenants++] = optarg;
			o.tenant = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case O_CERT:
			o.client_cert = optarg;
			break;
		case O_KEY:
			o.client_key = optarg;
			break;
		case O_KEYS:
			if (strcmp(optarg, "url") != 0 && strcmp(optarg, "file") != 0)
				return fb_cli_usage(
				    "trust", usage_trust, "--keys is url or file, not %s", optarg);
			o.keys_mode = optarg;
			break;
		case O_RTENANT:
			if (o.n_remote_tenants == LIST_MAX)
				return fb_cli_usage(
				    "trust", usage_trust, "at most %d --remote-tenant", LIST_MAX);
			if (!fb_conf_tenant_id_valid(optarg))
				return fb_cli_usage("trust", usage_trust,
				    "--remote-tenant %s is not a tenantID", optarg);
			o.remote_tenants[o.n_remote_tenants++] = optarg;
			break;
		case O_OUTBOUND:
			o.outbound = optarg;
			break;
		case O_INBOUND:
			o.inbound = optarg;
			break;
		case O_RELEASE:
			o.release = optarg;
			break;
		case 'h':
			fputs(usage_trust, stdout);
			return 0;
		default:
			return fb_cli_usage("trust", usage_trust, "unknown option");
		}
	}
	if (o.config == NULL)
		return fb_cli_usage("trust", usage_trust, "%s: -c FILE is required", sub);
	if (strcmp(sub, "export") == 0) {
		if (optind != argc)
			return fb_cli_usage(
			    "trust", usage_trust, "export: unexpected argument %s", argv[optind]);
		return trust_export(o.config, tenants, n_tenants, out);
	}
	if (n_tenants > 1)
		return fb_cli_usage("trust", usage_trust, "%s: one --tenant", sub);
	if (strcmp(sub, "import") == 0) {
		if (optind + 1 != argc)
			return fb_cli_usage(
			    "trust", usage_trust, "import: one EXPORT file is required");
		o.file = argv[optind];
		return trust_import(&o);
	}
	if (strcmp(sub, "show") == 0) {
		if (optind != argc)
			return fb_cli_usage(
			    "trust", usage_trust, "show: unexpected argument %s", argv[optind]);
		return trust_show(o.config);
	}
	if (strcmp(sub, "remove") == 0) {
		if (optind + 1 != argc)
			return fb_cli_usage("trust", usage_trust, "remove: one REMOTE is required");
		return trust_remove(o.config, o.tenant, argv[optind]);
	}
	return fb_cli_usage("trust", usage_trust, "unknown subcommand %s", sub);
}
