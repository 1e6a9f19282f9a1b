/*
 * Unit tests for the configuration loader (conf/): what a valid file turns
 * into, and that each kind of broken file is refused with a message that
 * points at the exact line and column of the culprit.
 *
 * Every configuration is written as fedbridge.yaml into a private temporary
 * directory that also holds the key files it references, and loaded with
 * fb_conf_load_file, so relative paths resolve the way they do in production.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_conf.h"

/* The temporary directory and the configuration file inside it. */
static char g_dir[64];
static char g_conf_path[128];

/* ---- fixtures ---- */

static int
write_file_at(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd;
	size_t off = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	/* fchmod, not open's mode: the umask must not decide what the loader sees. */
	if (fchmod(fd, mode) != 0) {
		(void)close(fd);
		return -1;
	}
	return close(fd);
}

/* Writes name (relative to the temporary directory) with the given mode. */
static int
write_file(const char *name, const char *data, mode_t mode)
{
	char path[256];

	(void)snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	return write_file_at(path, data, strlen(data), mode);
}

static const struct {
	const char *name;
	const char *content;
	mode_t mode;
} fixture_files[] = {
	/* Secrets: private, and long enough where the loader asks for a minimum. */
	{ "signing.pem", "-----BEGIN PRIVATE KEY-----\nnot really a key\n", 0600 },
	{ "fid.secret", "0123456789abcdef0123456789abcdef0123456789\n", 0600 },
	{ "client.secret", "client-secret-0123456789\n", 0600 },
	{ "sp.key", "-----BEGIN PRIVATE KEY-----\n", 0600 },
	{ "client.key", "-----BEGIN PRIVATE KEY-----\n", 0600 },
	{ "pg.password", "postgres-password\n", 0600 },
	/* Public material. */
	{ "sp.crt", "-----BEGIN CERTIFICATE-----\n", 0644 },
	{ "idp-metadata.xml", "<EntityDescriptor/>\n", 0644 },
	{ "ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644 },
	{ "client.crt", "-----BEGIN CERTIFICATE-----\n", 0644 },
	{ "remote.jwks", "{\"keys\":[]}\n", 0644 },
	/* Secrets the loader must refuse: readable by others, or too short. */
	{ "open644.secret", "0123456789abcdef0123456789abcdef0123\n", 0644 },
	{ "open640.secret", "0123456789abcdef0123456789abcdef0123\n", 0640 },
	{ "short.secret", "0123456789", 0600 },
};

static int
group_setup(void **state)
{
	char path[256];

	(void)state;
	(void)snprintf(g_dir, sizeof(g_dir), "/tmp/fb-test-conf.XXXXXX");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	(void)snprintf(g_conf_path, sizeof(g_conf_path), "%s/fedbridge.yaml", g_dir);
	for (size_t i = 0; i < sizeof(fixture_files) / sizeof(fixture_files[0]); i++) {
		if (write_file(fixture_files[i].name, fixture_files[i].content,
		        fixture_files[i].mode) != 0)
			return -1;
	}
	/* A directory where a file is expected. */
	(void)snprintf(path, sizeof(path), "%s/adir", g_dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	return 0;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
group_teardown(void **state)
{
	(void)state;
	if (g_dir[0] == '\0')
		return 0;
	return nftw(g_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---- */

/* Writes yaml as fedbridge.yaml and loads it from there. */
static struct fb_conf *
load_yaml_len(const char *yaml, size_t len, struct fb_conf_diags *diags)
{
	assert_int_equal(write_file_at(g_conf_path, yaml, len, 0644), 0);
	return fb_conf_load_file(g_conf_path, 0, diags);
}

static struct fb_conf *
load_yaml(const char *yaml, struct fb_conf_diags *diags)
{
	return load_yaml_len(yaml, strlen(yaml), diags);
}

static void
print_diags(const struct fb_conf_diags *diags)
{
	for (size_t i = 0; i < diags->n; i++)
		print_error("  diag[%zu] %u:%u: %s\n", i, diags->v[i].pos.line, diags->v[i].pos.col,
		    diags->v[i].msg);
	if (diags->dropped > 0)
		print_error("  (%zu more dropped)\n", diags->dropped);
}

/* Loads what must be valid; prints the diagnostics when it is not. */
static struct fb_conf *
load_ok(const char *what, const char *yaml)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf = load_yaml(yaml, &diags);

	if (conf == NULL || diags.n != 0) {
		print_error("%s: expected to load, got:\n", what);
		print_diags(&diags);
	}
	fb_conf_diags_free(&diags);
	assert_non_null(conf);
	return conf;
}

/*
 * True when msg is "...fedbridge.yaml:L:C: ..." with want somewhere after
 * that prefix; line 0 stands for a message without a position.
 */
static bool
msg_matches(const char *msg, unsigned line, unsigned col, const char *want)
{
	char prefix[64];
	const char *p;

	if (line == 0)
		(void)snprintf(prefix, sizeof(prefix), "fedbridge.yaml: ");
	else
		(void)snprintf(prefix, sizeof(prefix), "fedbridge.yaml:%u:%u: ", line, col);
	p = strstr(msg, prefix);
	return p != NULL && strstr(p + strlen(prefix), want) != NULL;
}

/* The diagnostic at line:col whose message holds want, or NULL. */
static const struct fb_conf_diag *
find_diag(const struct fb_conf_diags *diags, unsigned line, unsigned col, const char *want)
{
	for (size_t i = 0; i < diags->n; i++) {
		const struct fb_conf_diag *d = &diags->v[i];
		if (d->pos.line == line && d->pos.col == col &&
		    msg_matches(d->msg, line, col, want))
			return d;
	}
	return NULL;
}

/* Whether some diagnostic is at line:col and holds want; prints them all when not. */
static bool
expect_diag(const struct fb_conf_diags *diags, unsigned line, unsigned col, const char *want)
{
	if (find_diag(diags, line, col, want) != NULL)
		return true;
	print_error("no diagnostic fedbridge.yaml:%u:%u: ...%s...\n", line, col, want);
	print_diags(diags);
	return false;
}

static bool
any_diag_contains(const struct fb_conf_diags *diags, const char *text)
{
	for (size_t i = 0; i < diags->n; i++)
		if (strstr(diags->v[i].msg, text) != NULL)
			return true;
	return false;
}

static void
assert_pos(struct fb_conf_pos pos, unsigned line, unsigned col)
{
	if (pos.line != line || pos.col != col)
		fail_msg("position %u:%u, expected %u:%u", pos.line, pos.col, line, col);
}

/* "<temporary directory>/name", for comparing resolved paths. */
static const char *
in_dir(const char *name)
{
	static char buf[256];

	(void)snprintf(buf, sizeof(buf), "%s/%s", g_dir, name);
	return buf;
}

/* ---- building blocks for configurations (line numbers are what rows rely on) ---- */

/* Lines 1-4. */
#define INSTALLATION                                                                               \
	"installation:\n"                                                                          \
	"  name: installation_A\n"                                                                 \
	"  domain: a.example\n"                                                                    \
	"  public_url: https://sso.a.example\n"

/* Three lines: 5-7 after INSTALLATION. */
#define KEYS                                                                                       \
	"keys:\n"                                                                                  \
	"  signing: [signing.pem]\n"                                                               \
	"  fid_secret: fid.secret\n"

/* Lines 1-7. */
#define HEAD INSTALLATION KEYS

/* Lines 8-10 after HEAD: a tenant whose provider list follows. */
#define TENANT_HEAD                                                                                \
	"tenants:\n"                                                                               \
	"  - id: HZnKEBoqDU\n"                                                                     \
	"    providers:\n"

/* Lines 11-15 after TENANT_HEAD. */
#define CORP_PROVIDER                                                                              \
	"      - name: corp\n"                                                                     \
	"        type: oidc\n"                                                                     \
	"        issuer: https://kc.a.example/realms/corp\n"                                       \
	"        client_id: fedbridge\n"                                                           \
	"        client_secret_file: client.secret\n"

/* Lines 16-18 after CORP_PROVIDER. */
#define CORP_MAPPING                                                                               \
	"    mapping:\n"                                                                           \
	"      - provider: corp\n"                                                                 \
	"        fid: pairwise(claims.sub)\n"

/* Lines 8-18. */
#define TENANTS TENANT_HEAD CORP_PROVIDER CORP_MAPPING

/* A valid configuration of 18 lines: rows append from line 19. */
#define BASE HEAD TENANTS

/* Ten lines: a second tenant, Lq8sT2mZx4, with its own provider. */
#define SECOND_TENANT                                                                              \
	"  - id: Lq8sT2mZx4\n"                                                                     \
	"    providers:\n"                                                                         \
	"      - name: sub\n"                                                                      \
	"        type: oidc\n"                                                                     \
	"        issuer: https://accounts.google.com\n"                                            \
	"        client_id: sub\n"                                                                 \
	"        client_secret_file: client.secret\n"                                              \
	"    mapping:\n"                                                                           \
	"      - provider: sub\n"                                                                  \
	"        fid: pairwise(claims.sub)\n"

/* Seven lines: what a trust with a remote installation needs besides remote and tenants. */
#define REMOTE_REST                                                                                \
	"        relay: federation.b.example:443\n"                                                \
	"        ca: ca.pem\n"                                                                     \
	"        client_cert: client.crt\n"                                                        \
	"        client_key: client.key\n"                                                         \
	"        keys: remote.jwks\n"                                                              \
	"        issuer: https://sso.b.example\n"                                                  \
	"        outbound: \"true\"\n"

/* Three lines: the mapping of a SAML provider named adfs. */
#define SAML_MAPPING                                                                               \
	"    mapping:\n"                                                                           \
	"      - provider: adfs\n"                                                                 \
	"        fid: attrs.uid[0]\n"

/* ---- the broken configurations ---- */

struct bad_row {
	const char *name;
	const char *yaml;
	unsigned line, col; /* 0:0: a message without a position */
	const char *want; /* text the message holds after "fedbridge.yaml:L:C: " */
};

/* The password rows put in store URLs: no message of any row may show it. */
#define PASSWORD "hunter2"

/* 32 opening brackets: one level deeper than the cap under the root mapping. */
#define OPEN8 "[[[[[[[["
#define CLOSE8 "]]]]]]]]"

static const struct bad_row bad_rows[] = {
	/* Keys: unknown, duplicate, missing. */
	{ "unknown key at the root with a suggestion", BASE "tokenz:\n  ttl: 5m\n", 19, 1,
	    "unknown key \"tokenz\"; did you mean \"tokens\"?" },
	{ "unknown nested key with a suggestion", BASE "tokens:\n  tll: 5m\n", 20, 3,
	    "tokens: unknown key \"tll\"; did you mean \"ttl\"?" },
	{ "unknown key in a provider with a suggestion",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        isuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    13, 9, "tenants[0].providers[0]: unknown key \"isuer\"; did you mean \"issuer\"?" },
	{ "duplicate key reports both positions",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: a.example\n"
	    "  name: installation_B\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    4, 3, "installation: duplicate key \"name\" (first at 2:3)" },
	{ "duplicate section", BASE "log:\n  level: info\nlog:\n  level: debug\n", 21, 1,
	    "duplicate key \"log\" (first at 19:1)" },
	{ "missing installation", KEYS TENANTS, 1, 1, "missing required key \"installation\"" },
	{ "missing keys", INSTALLATION TENANTS, 1, 1, "missing required key \"keys\"" },
	{ "missing tenants", HEAD, 1, 1, "missing required key \"tenants\"" },
	{ "missing installation.public_url",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: a.example\n" KEYS TENANTS,
	    2, 3, "installation: missing required key \"public_url\"" },
	{ "missing tenant id",
	    HEAD "tenants:\n  - name: A Corp\n    providers:\n" CORP_PROVIDER CORP_MAPPING, 9, 5,
	    "tenants[0]: missing required key \"id\"" },
	{ "missing provider type",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    11, 9, "tenants[0].providers[0]: missing required key \"type\"" },
	{ "missing mapping section", HEAD TENANT_HEAD CORP_PROVIDER, 9, 5,
	    "tenants[0]: missing required key \"mapping\"" },
	{ "missing fid", HEAD TENANT_HEAD CORP_PROVIDER "    mapping:\n      - provider: corp\n",
	    17, 9, "tenants[0].mapping[0]: missing required key \"fid\"" },

	/* Wrong types. */
	{ "string where a mapping is expected", "installation: installation_A\n" KEYS TENANTS, 1,
	    15, "installation: expected a mapping, got \"installation_A\"" },
	{ "mapping where a list is expected", HEAD "tenants:\n  id: HZnKEBoqDU\n", 9, 3,
	    "tenants: expected a list, got a mapping" },
	{ "scalar where a list item mapping is expected", HEAD "tenants:\n  - HZnKEBoqDU\n", 9, 5,
	    "tenants[0]: expected a mapping, got \"HZnKEBoqDU\"" },
	{ "list where a scalar is expected",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: [a.example]\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    3, 11, "installation.domain: expected DNS domain, got a list" },
	/* How the item kind is worded after "a list of" is not pinned down here. */
	{ "string where a list is expected",
	    INSTALLATION "keys:\n  signing: signing.pem\n  fid_secret: fid.secret\n" TENANTS, 6, 12,
	    "keys.signing: expected a list of" },
	{ "null value", BASE "tokens:\n  ttl:\n", 20, 7,
	    "tokens.ttl: expected a duration such as 5m, got nothing" },
	{ "empty list below its minimum", HEAD "tenants: []\n", 8, 10,
	    "tenants: expected 1 to 1000 items, got 0" },

	/* Durations and sizes. */
	{ "duration that is a word", BASE "tokens:\n  ttl: soon\n", 20, 8,
	    "tokens.ttl: expected a duration such as 5m, got \"soon\"" },
	{ "duration without a unit", BASE "tokens:\n  ttl: 10\n", 20, 8,
	    "tokens.ttl: expected a duration such as 5m, got \"10\"" },
	{ "duration out of range", BASE "tokens:\n  ttl: 2h\n", 20, 8,
	    "tokens.ttl: \"2h\" is out of range: expected 10s to 1h" },
	{ "size with an unknown unit", BASE "tokens:\n  max_size: 8 parsecs\n", 20, 13,
	    "tokens.max_size: expected a size such as 8KiB, got \"8 parsecs\"" },
	{ "size below range", BASE "tokens:\n  max_size: 1B\n", 20, 13,
	    "tokens.max_size: \"1B\" is out of range: expected 1KiB to 64KiB" },

	/* Booleans and enumerations. */
	{ "yes is not a boolean",
	    HEAD TENANT_HEAD "      - name: adfs\n"
	                     "        type: saml\n"
	                     "        idp_metadata: idp-metadata.xml\n"
	                     "        sp_key: sp.key\n"
	                     "        sp_cert: sp.crt\n"
	                     "        allow_sha1: yes\n" SAML_MAPPING,
	    16, 21, "tenants[0].providers[0].allow_sha1: expected true or false, got \"yes\"" },
	{ "provider type misspelt",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidcc\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    12, 15,
	    "tenants[0].providers[0].type: expected one of oidc, saml, got \"oidcc\"; did you mean "
	    "\"oidc\"?" },
	{ "log level unknown", BASE "log:\n  level: verbose\n", 20, 10,
	    "log.level: expected one of debug, info, warn, error, got \"verbose\"" },
	{ "log level misspelt", BASE "log:\n  level: warning\n", 20, 10,
	    "log.level: expected one of debug, info, warn, error, got \"warning\"; did you mean "
	    "\"warn\"?" },
	{ "client_auth misspelt",
	    HEAD TENANT_HEAD CORP_PROVIDER "        client_auth: private_key_jwk\n" CORP_MAPPING,
	    16, 22, "got \"private_key_jwk\"; did you mean \"private_key_jwt\"?" },

	/* Names, domains, URLs, addresses. */
	{ "tenantID too short",
	    HEAD "tenants:\n  - id: HZnK\n    providers:\n" CORP_PROVIDER CORP_MAPPING, 9, 9,
	    "tenants[0].id: expected a tenantID such as HZnKEBoqDU (8 to 16 letters and digits), "
	    "got \"HZnK\"" },
	{ "tenantID with a dash",
	    HEAD "tenants:\n  - id: HZnK-EBoqDU\n    providers:\n" CORP_PROVIDER CORP_MAPPING, 9, 9,
	    "tenants[0].id: expected a tenantID such as HZnKEBoqDU" },
	{ "installation name with a space",
	    "installation:\n"
	    "  name: installation A\n"
	    "  domain: a.example\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    2, 9,
	    "installation.name: expected an installation name such as installation_A (1 to 64 "
	    "letters, digits, '_', '.', '-'), got \"installation A\"" },
	{ "provider name in upper case",
	    HEAD TENANT_HEAD "      - name: Corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    11, 15, "tenants[0].providers[0].name: expected a name such as corp-keycloak" },
	{ "domain with an empty label",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: a..example\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    3, 11,
	    "installation.domain: expected a DNS domain such as a.example, got \"a..example\"" },
	{ "URL with an ftp scheme",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: a.example\n"
	    "  public_url: ftp://sso.a.example\n" KEYS TENANTS,
	    4, 15,
	    "installation.public_url: expected an https URL such as https://sso.a.example, got "
	    "\"ftp://sso.a.example\": the scheme must be https (http only toward loopback)" },
	{ "plain http toward a public host",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: a.example\n"
	    "  public_url: http://sso.a.example\n" KEYS TENANTS,
	    4, 15,
	    "got \"http://sso.a.example\": the scheme must be https (http only toward loopback)" },
	{ "plain http toward a DNS name starting with 127.",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: http://127.evil.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    13, 17, "the scheme must be https (http only toward loopback)" },
	{ "URL with user info",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://admin@kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    13, 17,
	    "tenants[0].providers[0].issuer: expected an https URL such as https://sso.a.example, "
	    "got \"https://admin@kc.a.example/realms/corp\": user info is not allowed" },
	{ "URL with a fragment",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://kc.a.example/realms/corp#top\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: client.secret\n" CORP_MAPPING,
	    13, 17, "got \"https://kc.a.example/realms/corp#top\": a fragment is not allowed" },
	{ "not a URL",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: a.example\n"
	    "  public_url: sso.a.example\n" KEYS TENANTS,
	    4, 15, "got \"sso.a.example\": not an absolute URL" },
	{ "return_to item that is not https",
	    HEAD "tenants:\n  - id: HZnKEBoqDU\n    return_to: [https://m.a.example, "
	         "http://m.a.example]\n    providers:\n" CORP_PROVIDER CORP_MAPPING,
	    10, 38, "tenants[0].return_to[1]: expected an https URL" },
	{ "return_to item whose query carries a code",
	    HEAD "tenants:\n  - id: HZnKEBoqDU\n    return_to: [https://m.a.example, "
	         "\"https://m.a.example/cb?x=1&code=attacker\"]\n    providers:\n" CORP_PROVIDER
	             CORP_MAPPING,
	    10, 38,
	    "tenants[0].return_to[1]: expected a return address without code, state or error in "
	    "its query (the login adds its own code), got \"https://m.a.example/cb?x=1&code=" },
	{ "return_to item whose query carries an encoded state",
	    HEAD
	    "tenants:\n  - id: HZnKEBoqDU\n    return_to: [\"https://m.a.example/cb?st%61te=1\"]"
	    "\n    providers:\n" CORP_PROVIDER CORP_MAPPING,
	    10, 17, "tenants[0].return_to[0]: expected a return address without code, state" },
	{ "listen port out of range", INSTALLATION "  listen: 127.0.0.1:70000\n" KEYS TENANTS, 5,
	    11,
	    "installation.listen: expected host:port such as 127.0.0.1:8080 or "
	    "federation.b.example:443, got \"127.0.0.1:70000\"" },
	{ "listen without a port", INSTALLATION "  listen: 127.0.0.1\n" KEYS TENANTS, 5, 11,
	    "installation.listen: expected host:port such as 127.0.0.1:8080 or "
	    "federation.b.example:443, got \"127.0.0.1\"" },

	/* The store. */
	{ "store URL holding a password",
	    BASE "store: postgresql://fedbridge:" PASSWORD "@db.a.example/fedbridge\n", 19, 8,
	    "store: the PostgreSQL URL holds a password; put it in a file named by "
	    "store_password_file" },
	{ "store URL holding a password parameter",
	    BASE "store: postgresql://fedbridge@db.a.example/fedbridge?password=" PASSWORD "\n", 19,
	    8, "store: the PostgreSQL URL holds a password" },
	{ "store with an unknown scheme", BASE "store: mysql://db.a.example/fedbridge\n", 19, 8,
	    "store: expected embedded:<directory>, postgresql://<user>@<host>/<db> or memory:, got "
	    "something else (not shown)" },
	{ "store in key=value form holding a password",
	    BASE "store: host=db user=fedbridge password=" PASSWORD "\n", 19, 8,
	    "store: expected embedded:<directory>" },
	{ "store_password_file with an embedded store",
	    BASE "store: embedded:state\nstore_password_file: pg.password\n", 20, 22,
	    "store_password_file: only used with a postgresql store" },

	/* Files and secrets. */
	{ "secret readable by others (0644)",
	    INSTALLATION "keys:\n  signing: [signing.pem]\n  fid_secret: open644.secret\n" TENANTS,
	    7, 15,
	    "open644.secret: mode 0644, must be 0600 or 0400: group or others can get at the "
	    "secret; run chmod 600 on it" },
	{ "secret readable by the group (0640)",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: open640.secret\n" CORP_MAPPING,
	    15, 29,
	    "open640.secret: mode 0640, must be 0600 or 0400: group or others can get at the "
	    "secret; run chmod 600 on it" },
	{ "missing file",
	    INSTALLATION "keys:\n  signing: [nope.pem]\n  fid_secret: fid.secret\n" TENANTS, 6, 13,
	    "/nope.pem: cannot open: No such file" },
	{ "directory where a file is expected",
	    HEAD TENANT_HEAD "      - name: adfs\n"
	                     "        type: saml\n"
	                     "        idp_metadata: idp-metadata.xml\n"
	                     "        sp_key: sp.key\n"
	                     "        sp_cert: adir\n" SAML_MAPPING,
	    15, 18, "/adir is not a regular file" },
	{ "fid secret too short",
	    INSTALLATION "keys:\n  signing: [signing.pem]\n  fid_secret: short.secret\n" TENANTS, 7,
	    15, "keys.fid_secret: a secret of at least 32 bytes is needed; " },
	{ "client secret too short",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: short.secret\n" CORP_MAPPING,
	    15, 29,
	    "tenants[0].providers[0].client_secret_file: a secret of at least 16 bytes is "
	    "needed; " },

	/* Provider rules. */
	{ "oidc provider with a SAML key",
	    HEAD TENANT_HEAD CORP_PROVIDER "        idp_metadata: idp-metadata.xml\n" CORP_MAPPING,
	    16, 9, "tenants[0].providers[0].idp_metadata: a SAML setting on an oidc provider" },
	{ "oidc provider without a client secret",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n" CORP_MAPPING,
	    11, 9,
	    "tenants[0].providers[0]: missing required key \"client_secret_file\" for client_auth "
	    "client_secret_basic or client_secret_post" },
	{ "saml provider without sp_cert",
	    HEAD TENANT_HEAD "      - name: adfs\n"
	                     "        type: saml\n"
	                     "        idp_metadata: idp-metadata.xml\n"
	                     "        sp_key: sp.key\n" SAML_MAPPING,
	    11, 9,
	    "tenants[0].providers[0]: missing required key \"sp_cert\" for a saml provider" },
	{ "saml provider with an OpenID Connect key",
	    HEAD TENANT_HEAD "      - name: adfs\n"
	                     "        type: saml\n"
	                     "        idp_metadata: idp-metadata.xml\n"
	                     "        sp_key: sp.key\n"
	                     "        sp_cert: sp.crt\n"
	                     "        client_id: fedbridge\n" SAML_MAPPING,
	    16, 9,
	    "tenants[0].providers[0].client_id: an OpenID Connect setting on a saml provider" },
	{ "private_key_jwt without client_key",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_auth: private_key_jwt\n" CORP_MAPPING,
	    11, 9, "missing required key \"client_key\" for client_auth private_key_jwt" },
	{ "allowed_algs with none",
	    HEAD TENANT_HEAD CORP_PROVIDER "        allowed_algs: [RS256, none]\n" CORP_MAPPING, 16,
	    31,
	    "tenants[0].providers[0].allowed_algs[1]: expected an asymmetric JWS algorithm (RS256, "
	    "PS256, ES256, EdDSA, ...), got \"none\"" },
	{ "allowed_algs with HS256",
	    HEAD TENANT_HEAD CORP_PROVIDER "        allowed_algs: [HS256]\n" CORP_MAPPING, 16, 24,
	    "tenants[0].providers[0].allowed_algs[0]: expected an asymmetric JWS algorithm" },

	/* Mappings. */
	{ "mapping for an unknown provider",
	    BASE "      - provider: nobody\n        fid: claims.sub\n", 19, 19,
	    "tenants[0].mapping[1].provider: no provider named \"nobody\" in tenant HZnKEBoqDU" },
	{ "provider without a mapping",
	    HEAD TENANT_HEAD CORP_PROVIDER
	    "      - name: corp2\n"
	    "        type: oidc\n"
	    "        issuer: https://kc.a.example/realms/corp2\n"
	    "        client_id: fedbridge\n"
	    "        client_secret_file: client.secret\n" CORP_MAPPING,
	    16, 15,
	    "tenants[0].providers[1]: provider \"corp2\" has no mapping: nobody could log in "
	    "through it" },
	{ "two mappings for one provider",
	    BASE "      - provider: corp\n        fid: claims.email\n", 19, 19,
	    "tenants[0].mapping[1].provider: a second mapping for provider \"corp\" (first at "
	    "17:19)" },
	{ "attribute expression missing", BASE "        attributes:\n          email:\n", 20, 17,
	    "tenants[0].mapping[0].attributes.email: expected an expression, got nothing" },
	{ "attribute name with a dash",
	    BASE "        attributes:\n          e-mail: claims.email\n", 20, 11,
	    "tenants[0].mapping[0].attributes.e-mail: expected an attribute name such as "
	    "department (letters, digits, '_'), got \"e-mail\"" },
	{ "duplicate attribute",
	    BASE "        attributes:\n          email: claims.email\n"
	         "          email: claims.mail\n",
	    21, 11, "duplicate key \"email\" (first at 20:11)" },

	/* Tenants and names across the file. */
	{ "provider name reused by another tenant",
	    BASE "  - id: Lq8sT2mZx4\n    providers:\n" CORP_PROVIDER CORP_MAPPING, 21, 15,
	    "tenants[1].providers[0].name: provider \"corp\" is defined twice (first at 11:15)" },
	{ "tenant defined twice",
	    BASE "  - id: HZnKEBoqDU\n"
	         "    providers:\n"
	         "      - name: other\n"
	         "        type: oidc\n"
	         "        issuer: https://kc.a.example/realms/other\n"
	         "        client_id: fedbridge\n"
	         "        client_secret_file: client.secret\n"
	         "    mapping:\n"
	         "      - provider: other\n"
	         "        fid: claims.sub\n",
	    19, 9, "tenants[1].id: tenant HZnKEBoqDU is defined twice (first at 9:9)" },

	/* Trusts. */
	{ "remote trust without a relay",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n"
	         "        ca: ca.pem\n"
	         "        client_cert: client.crt\n"
	         "        client_key: client.key\n"
	         "        keys: remote.jwks\n"
	         "        issuer: https://sso.b.example\n",
	    20, 17,
	    "tenants[0].trusts[0]: missing required key \"relay\" for a trust with remote "
	    "installation installation_B" },
	{ "remote trust without its CA",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n"
	         "        relay: federation.b.example:443\n",
	    20, 17,
	    "tenants[0].trusts[0]: missing required key \"ca\" for a trust with remote "
	    "installation installation_B" },
	/* discover finds the relay through DNS: naming one too would say two things. */
	{ "remote trust with discover and a relay",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n"
	         "        discover: b.example\n"
	         "        relay: federation.b.example:443\n",
	    23, 16,
	    "tenants[0].trusts[0].relay: not used with discover, which finds it through DNS" },
	/* A trust waiting for the remote's export has neither; one without the other is a slip. */
	{ "remote trust with keys but no issuer",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n"
	         "        relay: federation.b.example:443\n"
	         "        ca: ca.pem\n"
	         "        client_cert: client.crt\n"
	         "        client_key: client.key\n"
	         "        keys: remote.jwks\n",
	    26, 15,
	    "tenants[0].trusts[0]: \"keys\" is set without \"issuer\": a remote's tokens need "
	    "both" },
	{ "local trust with a relay",
	    BASE "    trusts:\n"
	         "      - remote: installation_A\n"
	         "        tenants: [Lq8sT2mZx4]\n"
	         "        relay: federation.a.example:443\n" SECOND_TENANT,
	    22, 16,
	    "tenants[0].trusts[0].relay: not used for a trust between tenants of this "
	    "installation" },
	{ "local trust naming a tenant that is not local",
	    BASE "    trusts:\n"
	         "      - remote: installation_A\n"
	         "        tenants: [HWqHczeM2P]\n",
	    21, 19,
	    "tenants[0].trusts[0].tenants[0]: HWqHczeM2P is not a tenant of this installation" },
	{ "local trust of a tenant with itself",
	    BASE "    trusts:\n"
	         "      - remote: installation_A\n"
	         "        tenants: [HZnKEBoqDU]\n",
	    21, 19, "tenants[0].trusts[0].tenants[0]: a tenant does not need a trust with itself" },
	{ "remote trust naming a local tenant",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [Lq8sT2mZx4]\n" REMOTE_REST SECOND_TENANT,
	    21, 19,
	    "tenants[0].trusts[0].tenants[0]: Lq8sT2mZx4 is a tenant of this installation; name "
	    "installation_A as remote for a local trust" },
	{ "remote tenant trusted twice",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n" REMOTE_REST "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n" REMOTE_REST,
	    30, 19, "tenants[0].trusts[1].tenants[0]: HWqHczeM2P is already trusted at 21:19" },
	{ "trusted tenant listed twice in one trust",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P, HWqHczeM2P]\n" REMOTE_REST,
	    21, 31,
	    "tenants[0].trusts[0].tenants[1]: \"HWqHczeM2P\" is listed twice (first at 21:19)" },
	{ "release of an attribute no mapping defines",
	    BASE "    trusts:\n"
	         "      - remote: installation_B\n"
	         "        tenants: [HWqHczeM2P]\n" REMOTE_REST "        release: [phone]\n",
	    29, 19,
	    "tenants[0].trusts[0].release[0]: no mapping of tenant HZnKEBoqDU defines attribute "
	    "\"phone\"" },

	/* Lifetimes. */
	{ "ttl longer than max_ttl", BASE "tokens:\n  ttl: 30m\n", 20, 8,
	    "tokens.ttl: 1800s is longer than tokens.max_ttl (900s)" },
	{ "clock_skew not less than half of ttl", BASE "tokens:\n  clock_skew: 150s\n", 20, 15,
	    "tokens.clock_skew: 150s must be less than half of tokens.ttl (300s)" },
	{ "session_idle longer than session_ttl", BASE "tokens:\n  session_idle: 10h\n", 20, 17,
	    "tokens.session_idle: 36000s is longer than tokens.session_ttl (28800s)" },

	/* YAML itself. */
	{ "unclosed flow sequence",
	    INSTALLATION "keys:\n  signing: [signing.pem\n  fid_secret: fid.secret\n" TENANTS, 7,
	    13,
	    "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence "
	    "(line 6)" },
	{ "bad indentation",
	    "installation:\n"
	    "  name: installation_A\n"
	    "   domain: a.example\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    3, 10, "YAML syntax error: mapping values are not allowed in this context" },
	{ "two documents", BASE "---\ninstallation: {}\n", 19, 1,
	    "only one YAML document is allowed" },
	{ "a YAML tag",
	    "installation:\n"
	    "  name: !!str installation_A\n"
	    "  domain: a.example\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    2, 9, "YAML tags such as tag:yaml.org,2002:str are not supported" },
	{ "unknown alias",
	    "installation:\n"
	    "  name: installation_A\n"
	    "  domain: *dom\n"
	    "  public_url: https://sso.a.example\n" KEYS TENANTS,
	    3, 11, "unknown alias *dom" },
	{ "alias inside the node it names", BASE "x: &x [*x]\n", 19, 8,
	    "alias *x refers to a node that contains it" },
	{ "nesting deeper than 32 levels",
	    BASE "x: " OPEN8 OPEN8 OPEN8 OPEN8 CLOSE8 CLOSE8 CLOSE8 CLOSE8 "\n", 19, 35,
	    "nested deeper than 32 levels" },
	{ "mapping as a key", BASE "? [a]\n: b\n", 19, 3, "a mapping key must be a plain string" },
	{ "empty document", "", 0, 0, "the configuration is empty" },
	{ "only comments", "# nothing here yet\n", 0, 0, "the configuration is empty" },
	{ "top-level list", "- installation: {}\n", 1, 1,
	    "expected a mapping with installation, keys and tenants, got a list" },
	{ "control character in text",
	    HEAD
	    "tenants:\n  - id: HZnKEBoqDU\n    name: \"A\\x01Corp\"\n    providers:\n" CORP_PROVIDER
	        CORP_MAPPING,
	    10, 11,
	    "tenants[0].name: expected 1 to 256 characters on one line, got \"A\\x01Corp\"" },
	{ "NUL character in a value",
	    HEAD
	    "tenants:\n  - id: HZnKEBoqDU\n    name: \"A\\0Corp\"\n    providers:\n" CORP_PROVIDER
	        CORP_MAPPING,
	    10, 11, "a value holds a NUL character" },
};

#define N_BAD_ROWS (sizeof(bad_rows) / sizeof(bad_rows[0]))

/* One cmocka test per row, named after it; the row comes in as the initial state. */
static void
test_bad_row(void **state)
{
	const struct bad_row *row = *state;
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	const char *problem = NULL;

	conf = load_yaml(row->yaml, &diags);
	if (conf != NULL)
		problem = "the configuration loaded";
	else if (diags.n == 0)
		problem = "the load failed without a diagnostic";
	else if (find_diag(&diags, row->line, row->col, row->want) == NULL)
		problem = "no diagnostic at that position holds the expected text";
	else if (any_diag_contains(&diags, PASSWORD))
		problem = "a diagnostic shows the password";
	if (problem != NULL) {
		print_error("row \"%s\": %s; expected fedbridge.yaml:%u:%u: ...%s...\n", row->name,
		    problem, row->line, row->col, row->want);
		print_diags(&diags);
	}
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (problem != NULL)
		fail_msg("row \"%s\": %s", row->name, problem);
}

/* A secret inside a list is checked like one in a plain key, and both are reported. */
static void
test_secret_mode_in_list(void **state)
{
	static const char hint[] = "open644.secret: mode 0644, must be 0600 or 0400: group or "
	                           "others can get at the secret; run chmod 600 on it";
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	bool ok;

	(void)state;
	conf = load_yaml(INSTALLATION "keys:\n  signing: [open644.secret]\n  fid_secret: "
	                              "open644.secret\n" TENANTS,
	    &diags);
	ok = conf == NULL && expect_diag(&diags, 6, 13, hint) && expect_diag(&diags, 7, 15, hint);
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("0644 secrets not refused with a chmod hint at 6:13 and 7:15");
}

/* ---- positive cases ---- */

static void
test_minimal_defaults(void **state)
{
	struct fb_conf *conf;
	const struct fb_conf_provider *p;

	(void)state;
	conf = load_ok("minimal", BASE);
	assert_string_equal(conf->path, g_conf_path);
	assert_string_equal(conf->basedir, g_dir);
	assert_string_equal(conf->installation.name, "installation_A");
	assert_string_equal(conf->installation.domain, "a.example");
	assert_string_equal(conf->installation.public_url, "https://sso.a.example");
	/* Defaults, from the schema table. */
	assert_string_equal(conf->installation.listen, "127.0.0.1:8080");
	assert_int_equal(conf->tokens.ttl, 300);
	assert_int_equal(conf->tokens.max_ttl, 900);
	assert_int_equal(conf->tokens.session_ttl, 28800);
	assert_int_equal(conf->tokens.session_idle, 3600);
	assert_int_equal(conf->tokens.clock_skew, 30);
	assert_int_equal(conf->tokens.max_size, 8192);
	assert_int_equal(conf->log.level, FB_LOG_INFO);
	assert_int_equal(conf->log.format, FB_LOG_TEXT);
	assert_int_equal(conf->store.kind, FB_STORE_EMBEDDED);
	assert_string_equal(conf->store.location, "/var/lib/fedbridge");
	assert_null(conf->store.password_file);
	/* Paths resolve against the configuration's directory. */
	assert_int_equal(conf->keys.signing.n, 1);
	assert_string_equal(conf->keys.signing.v[0], in_dir("signing.pem"));
	assert_string_equal(conf->keys.fid_secret, in_dir("fid.secret"));

	assert_int_equal(conf->n_tenants, 1);
	assert_string_equal(conf->tenants[0].id, "HZnKEBoqDU");
	assert_null(conf->tenants[0].name);
	assert_int_equal(conf->tenants[0].n_trusts, 0);
	assert_int_equal(conf->tenants[0].return_to.n, 0);
	assert_int_equal(conf->tenants[0].n_providers, 1);
	p = &conf->tenants[0].providers[0];
	assert_string_equal(p->name, "corp");
	assert_int_equal(p->type, FB_PROVIDER_OIDC);
	assert_int_equal(p->client_auth, FB_CLIENT_AUTH_SECRET_BASIC);
	assert_string_equal(p->client_secret_file, in_dir("client.secret"));
	assert_null(p->client_key);
	assert_int_equal(p->scopes.n, 1);
	assert_string_equal(p->scopes.v[0], "openid");
	assert_int_equal(p->allowed_algs.n, 2);
	assert_string_equal(p->allowed_algs.v[0], "RS256");
	assert_string_equal(p->allowed_algs.v[1], "ES256");
	assert_false(p->allow_idp_initiated);
	assert_false(p->allow_sha1);
	assert_int_equal(conf->tenants[0].n_mappings, 1);
	assert_string_equal(conf->tenants[0].mappings[0].provider, "corp");
	assert_string_equal(conf->tenants[0].mappings[0].fid.v[0].src, "pairwise(claims.sub)");
	assert_pos(conf->tenants[0].mappings[0].fid.v[0].pos, 18, 14);
	assert_false(conf->tenants[0].mappings[0].fid.v[0].quoted);
	assert_int_equal(conf->tenants[0].mappings[0].require.n, 0);
	assert_int_equal(conf->tenants[0].mappings[0].deny.n, 0);
	assert_int_equal(conf->tenants[0].mappings[0].n_attrs, 0);
	/* Defaults were not written anywhere. */
	assert_pos(fb_conf_pos_of(conf, &conf->tokens.ttl), 0, 0);
	assert_pos(fb_conf_pos_of(conf, &conf->installation.listen), 0, 0);
	assert_pos(fb_conf_pos_of(conf, &conf->installation.domain), 3, 11);
	fb_conf_unref(conf);
}

/* Like conf/examples/full.yaml, against the files of the temporary directory. */
static const char full_yaml[] =
    "installation:\n" /* 1 */
    "  name: installation_A\n" /* 2 */
    "  domain: a.example\n" /* 3 */
    "  public_url: https://sso.a.example\n" /* 4 */
    "  listen: 0.0.0.0:8443\n" /* 5 */
    "keys:\n" /* 6 */
    "  signing:\n" /* 7 */
    "    - signing.pem\n" /* 8 */
    "  fid_secret: fid.secret\n" /* 9 */
    "store: embedded:state\n" /* 10 */
    "tokens:\n" /* 11 */
    "  ttl: 2m\n" /* 12 */
    "  max_ttl: 10m\n" /* 13 */
    "  session_ttl: 12h\n" /* 14 */
    "  session_idle: 30m\n" /* 15 */
    "  clock_skew: 10s\n" /* 16 */
    "  max_size: 16KiB\n" /* 17 */
    "log:\n" /* 18 */
    "  level: debug\n" /* 19 */
    "  format: json\n" /* 20 */
    "tenants:\n" /* 21 */
    "  - id: HZnKEBoqDU\n" /* 22 */
    "    name: A Corp\n" /* 23 */
    "    return_to:\n" /* 24 */
    "      - https://messenger.a.example/auth/fedbridge\n" /* 25 */
    "    providers:\n" /* 26 */
    "      - name: corp-keycloak\n" /* 27 */
    "        type: oidc\n" /* 28 */
    "        issuer: https://kc.a.example/realms/corp\n" /* 29 */
    "        client_id: fedbridge\n" /* 30 */
    "        client_secret_file: client.secret\n" /* 31 */
    "        scopes: [openid, email, profile]\n" /* 32 */
    "        allowed_algs: [RS256, ES256]\n" /* 33 */
    "      - name: corp-adfs\n" /* 34 */
    "        type: saml\n" /* 35 */
    "        idp_metadata: idp-metadata.xml\n" /* 36 */
    "        sp_key: sp.key\n" /* 37 */
    "        sp_cert: sp.crt\n" /* 38 */
    "        allow_sha1: true\n" /* 39 */
    "    mapping:\n" /* 40 */
    "      - provider: corp-keycloak\n" /* 41 */
    "        fid: pairwise(claims.sub)\n" /* 42 */
    "        attributes:\n" /* 43 */
    "          email: lower(claims.email)\n" /* 44 */
    "          department: claims.department\n" /* 45 */
    "        require: claims.email_verified && 'federation' in claims.groups\n" /* 46 */
    "        deny: claims.department == 'contractors'\n" /* 47 */
    "      - provider: corp-adfs\n" /* 48 */
    "        fid: attrs.employeeNumber[0]\n" /* 49 */
    "        attributes:\n" /* 50 */
    "          email: lower(attrs.mail[0])\n" /* 51 */
    "    trusts:\n" /* 52 */
    "      - remote: installation_B\n" /* 53 */
    "        tenants: [HWqHczeM2P]\n" /* 54 */
    "        relay: federation.b.example:443\n" /* 55 */
    "        ca: ca.pem\n" /* 56 */
    "        client_cert: client.crt\n" /* 57 */
    "        client_key: client.key\n" /* 58 */
    "        keys: remote.jwks\n" /* 59 */
    "        issuer: https://sso.b.example\n" /* 60 */
    "        outbound: \"'partners-b' in principal.groups\"\n" /* 61 */
    "        release: [email, department]\n" /* 62 */
    "        inbound: token.attrs.department in ['sales', 'legal']\n" /* 63 */
    "      - remote: installation_A\n" /* 64 */
    "        tenants: [Lq8sT2mZx4]\n" /* 65 */
    "        outbound: \"true\"\n" /* 66 */
    "        release: [email]\n" /* 67 */
    "        inbound: \"true\"\n" /* 68 */
    "  - id: Lq8sT2mZx4\n" /* 69 */
    "    name: A Corp subsidiary\n" /* 70 */
    "    providers:\n" /* 71 */
    "      - name: sub-google\n" /* 72 */
    "        type: oidc\n" /* 73 */
    "        issuer: https://accounts.google.com\n" /* 74 */
    "        client_id: 1234567890-sub.apps.googleusercontent.com\n" /* 75 */
    "        client_key: client.key\n" /* 76 */
    "        client_auth: private_key_jwt\n" /* 77 */
    "    mapping:\n" /* 78 */
    "      - provider: sub-google\n" /* 79 */
    "        fid: pairwise(claims.sub)\n"; /* 80 */

static void
test_full(void **state)
{
	struct fb_conf *conf;
	const struct fb_conf_tenant *t, *u;
	const struct fb_conf_provider *kc, *adfs, *google;
	const struct fb_conf_mapping *m;
	const struct fb_conf_trust *remote, *local;

	(void)state;
	conf = load_ok("full", full_yaml);
	assert_string_equal(conf->installation.listen, "0.0.0.0:8443");
	assert_int_equal(conf->store.kind, FB_STORE_EMBEDDED);
	assert_string_equal(conf->store.location, in_dir("state"));
	assert_int_equal(conf->tokens.ttl, 120);
	assert_int_equal(conf->tokens.max_ttl, 600);
	assert_int_equal(conf->tokens.session_ttl, 43200);
	assert_int_equal(conf->tokens.session_idle, 1800);
	assert_int_equal(conf->tokens.clock_skew, 10);
	assert_int_equal(conf->tokens.max_size, 16384);
	assert_int_equal(conf->log.level, FB_LOG_DEBUG);
	assert_int_equal(conf->log.format, FB_LOG_JSON);
	assert_int_equal(conf->n_tenants, 2);

	t = &conf->tenants[0];
	assert_string_equal(t->id, "HZnKEBoqDU");
	assert_string_equal(t->name, "A Corp");
	assert_int_equal(t->return_to.n, 1);
	assert_string_equal(t->return_to.v[0], "https://messenger.a.example/auth/fedbridge");
	assert_int_equal(t->n_providers, 2);
	assert_int_equal(t->n_mappings, 2);
	assert_int_equal(t->n_trusts, 2);

	kc = &t->providers[0];
	assert_string_equal(kc->name, "corp-keycloak");
	assert_int_equal(kc->type, FB_PROVIDER_OIDC);
	assert_string_equal(kc->issuer, "https://kc.a.example/realms/corp");
	assert_string_equal(kc->client_id, "fedbridge");
	assert_string_equal(kc->client_secret_file, in_dir("client.secret"));
	assert_int_equal(kc->scopes.n, 3);
	assert_string_equal(kc->scopes.v[2], "profile");
	assert_int_equal(kc->allowed_algs.n, 2);
	assert_null(kc->idp_metadata);

	adfs = &t->providers[1];
	assert_string_equal(adfs->name, "corp-adfs");
	assert_int_equal(adfs->type, FB_PROVIDER_SAML);
	assert_string_equal(adfs->idp_metadata, in_dir("idp-metadata.xml"));
	assert_string_equal(adfs->sp_key, in_dir("sp.key"));
	assert_string_equal(adfs->sp_cert, in_dir("sp.crt"));
	assert_true(adfs->allow_sha1);
	assert_false(adfs->allow_idp_initiated);
	assert_null(adfs->issuer);
	assert_null(adfs->client_secret_file);

	m = &t->mappings[0];
	assert_string_equal(m->provider, "corp-keycloak");
	assert_string_equal(m->fid.v[0].src, "pairwise(claims.sub)");
	assert_pos(m->fid.v[0].pos, 42, 14);
	assert_int_equal(m->n_attrs, 2);
	assert_string_equal(m->attrs[0].name, "email");
	assert_string_equal(m->attrs[0].expr.src, "lower(claims.email)");
	assert_pos(m->attrs[0].expr.pos, 44, 18);
	assert_string_equal(m->attrs[1].name, "department");
	assert_pos(m->attrs[1].expr.pos, 45, 23);
	assert_string_equal(
	    m->require.v[0].src, "claims.email_verified && 'federation' in claims.groups");
	assert_pos(m->require.v[0].pos, 46, 18);
	assert_false(m->require.v[0].quoted);
	assert_string_equal(m->deny.v[0].src, "claims.department == 'contractors'");
	assert_pos(m->deny.v[0].pos, 47, 15);
	assert_string_equal(t->mappings[1].fid.v[0].src, "attrs.employeeNumber[0]");
	assert_int_equal(t->mappings[1].require.n, 0);

	remote = &t->trusts[0];
	assert_string_equal(remote->remote, "installation_B");
	assert_int_equal(remote->tenants.n, 1);
	assert_string_equal(remote->tenants.v[0], "HWqHczeM2P");
	assert_string_equal(remote->relay, "federation.b.example:443");
	/* Not written: the remote's relay certificate is expected to carry its name. */
	assert_string_equal(remote->cert_cn, "installation_B");
	assert_string_equal(remote->ca, in_dir("ca.pem"));
	assert_string_equal(remote->client_cert, in_dir("client.crt"));
	assert_string_equal(remote->client_key, in_dir("client.key"));
	assert_string_equal(remote->keys, in_dir("remote.jwks"));
	assert_string_equal(remote->issuer, "https://sso.b.example");
	/* A quoted expression: its position is the opening quote's. */
	assert_string_equal(remote->outbound.src, "'partners-b' in principal.groups");
	assert_true(remote->outbound.quoted);
	assert_pos(remote->outbound.pos, 61, 19);
	assert_int_equal(remote->release.n, 2);
	assert_string_equal(remote->release.v[1], "department");
	assert_string_equal(remote->inbound.src, "token.attrs.department in ['sales', 'legal']");
	assert_pos(remote->inbound.pos, 63, 18);

	local = &t->trusts[1];
	assert_string_equal(local->remote, "installation_A");
	assert_null(local->relay);
	assert_null(local->keys);
	assert_string_equal(local->cert_cn, "installation_A");
	assert_string_equal(local->tenants.v[0], "Lq8sT2mZx4");
	assert_string_equal(local->outbound.src, "true");

	u = &conf->tenants[1];
	assert_string_equal(u->id, "Lq8sT2mZx4");
	assert_int_equal(u->n_providers, 1);
	assert_int_equal(u->n_trusts, 0);
	google = &u->providers[0];
	assert_int_equal(google->client_auth, FB_CLIENT_AUTH_PRIVATE_KEY_JWT);
	assert_string_equal(google->client_key, in_dir("client.key"));
	assert_null(google->client_secret_file);

	/* Where things were written. */
	assert_pos(fb_conf_pos_of(conf, &conf->installation.listen), 5, 11);
	assert_pos(fb_conf_pos_of(conf, &conf->keys.signing.v[0]), 8, 7);
	assert_pos(fb_conf_pos_of(conf, &conf->tokens.ttl), 12, 8);
	assert_pos(fb_conf_pos_of(conf, &conf->tokens.max_size), 17, 13);
	assert_pos(fb_conf_pos_of(conf, &conf->log.level), 19, 10);
	assert_pos(fb_conf_pos_of(conf, &adfs->sp_cert), 38, 18);
	assert_pos(fb_conf_pos_of(conf, &kc->scopes), 32, 17);
	assert_pos(fb_conf_pos_of(conf, &remote->tenants.v[0]), 54, 19);
	assert_pos(fb_conf_pos_of(conf, &u->id), 69, 9);
	assert_pos(fb_conf_pos_of(conf, &local->cert_cn), 0, 0);
	assert_pos(fb_conf_pos_of(conf, &google->scopes), 0, 0);
	assert_pos(fb_conf_pos_of(conf, conf), 0, 0);

	assert_ptr_equal(fb_conf_tenant_find(conf, "Lq8sT2mZx4"), u);
	assert_ptr_equal(fb_conf_tenant_find(conf, "HZnKEBoqDU"), t);
	assert_null(fb_conf_tenant_find(conf, "HWqHczeM2P"));
	fb_conf_unref(conf);
}

/* A PostgreSQL store with its password in a file, and the in-memory store. */
static void
test_stores(void **state)
{
	struct fb_conf *conf;

	(void)state;
	conf = load_ok("postgresql",
	    BASE "store: postgresql://fedbridge@db.a.example/fedbridge\n"
	         "store_password_file: pg.password\n");
	assert_int_equal(conf->store.kind, FB_STORE_POSTGRESQL);
	assert_string_equal(conf->store.location, "postgresql://fedbridge@db.a.example/fedbridge");
	assert_string_equal(conf->store.password_file, in_dir("pg.password"));
	fb_conf_unref(conf);

	conf = load_ok("memory", BASE "store: \"memory:\"\n");
	assert_int_equal(conf->store.kind, FB_STORE_MEMORY);
	fb_conf_unref(conf);

	conf = load_ok("absolute embedded", BASE "store: embedded:/srv/fedbridge\n");
	assert_int_equal(conf->store.kind, FB_STORE_EMBEDDED);
	assert_string_equal(conf->store.location, "/srv/fedbridge");
	fb_conf_unref(conf);
}

static void
test_anchors_and_aliases(void **state)
{
	struct fb_conf *conf;
	const struct fb_conf_tenant *t;

	(void)state;
	conf = load_ok("anchors",
	    HEAD TENANT_HEAD "      - name: corp\n"
	                     "        type: oidc\n"
	                     "        issuer: &iss https://kc.a.example/realms/corp\n"
	                     "        client_id: fedbridge\n"
	                     "        client_secret_file: &secret client.secret\n"
	                     "        scopes: &scopes [openid, email, profile]\n"
	                     "      - name: corp2\n"
	                     "        type: oidc\n"
	                     "        issuer: *iss\n"
	                     "        client_id: fedbridge2\n"
	                     "        client_secret_file: *secret\n"
	                     "        scopes: *scopes\n"
	                     "    mapping:\n"
	                     "      - provider: corp\n"
	                     "        fid: &fid pairwise(claims.sub)\n"
	                     "      - provider: corp2\n"
	                     "        fid: *fid\n");
	t = &conf->tenants[0];
	assert_int_equal(t->n_providers, 2);
	assert_string_equal(t->providers[1].issuer, "https://kc.a.example/realms/corp");
	assert_string_equal(t->providers[1].client_secret_file, in_dir("client.secret"));
	assert_int_equal(t->providers[0].scopes.n, 3);
	assert_int_equal(t->providers[1].scopes.n, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(t->providers[1].scopes.v[i], t->providers[0].scopes.v[i]);
	assert_string_equal(t->providers[1].scopes.v[1], "email");
	assert_string_equal(t->mappings[1].fid.v[0].src, "pairwise(claims.sub)");
	/* An alias reports where its anchor's node is. */
	assert_int_equal(t->mappings[1].fid.v[0].pos.line, 25);
	assert_int_equal(t->mappings[0].fid.v[0].pos.line, 25);

	assert_int_equal(t->mappings[0].fid.v[0].pos.col, 19);
	fb_conf_unref(conf);
}

static void
test_ref_unref(void **state)
{
	struct fb_conf *conf;

	(void)state;
	conf = load_ok("minimal", BASE);
	assert_ptr_equal(fb_conf_ref(conf), conf);
	fb_conf_unref(conf);
	/* Still held by the second reference: ASan reports a use after free otherwise. */
	assert_string_equal(conf->installation.name, "installation_A");
	assert_string_equal(conf->tenants[0].providers[0].name, "corp");
	fb_conf_unref(conf);
	fb_conf_unref(NULL);
	assert_null(fb_conf_ref(NULL));
}

/* Referenced files are not looked at with FB_CONF_NO_FS, but paths still resolve. */
static void
test_no_fs(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	static const char yaml[] =
	    INSTALLATION "keys:\n  signing: [nope.pem]\n  fid_secret: short.secret\n" TENANTS;

	(void)state;
	assert_int_equal(write_file_at(g_conf_path, yaml, strlen(yaml), 0644), 0);
	conf = fb_conf_load_file(g_conf_path, FB_CONF_NO_FS, &diags);
	print_diags(&diags);
	assert_non_null(conf);
	assert_int_equal(diags.n, 0);
	assert_string_equal(conf->keys.signing.v[0], in_dir("nope.pem"));
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
}

static void
test_duration_parse(void **state)
{
	static const struct {
		const char *s;
		int64_t v;
	} good[] = {
		{ "90s", 90 },
		{ "5m", 300 },
		{ "1h30m", 5400 },
		{ "7d", 604800 },
		{ "0s", 0 },
		{ "1d2h3m4s", 93784 },
		/* The largest whole number of days that fits: overflow checks must not bite early.
		 */
		{ "106751991167300d", INT64_C(9223372036854720000) },
	};
	static const char *const bad[] = { "", "5", "5x", "m", "-5m", "5m ", " 5m", "1.5h", "5M",
		"5mm", "99999999999999999999s", "106751991167301d", "106751991167300d1d" };
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -1;
		if (!fb_conf_duration_parse(good[i].s, &v) || v != good[i].v)
			fail_msg("\"%s\": expected %lld, got %lld", good[i].s, (long long)good[i].v,
			    (long long)v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fb_conf_duration_parse(bad[i], &v))
			fail_msg("\"%s\" accepted as a duration (%lld)", bad[i], (long long)v);
}

static void
test_tenant_id_valid(void **state)
{
	static const char *const good[] = { "HZnKEBoqDU", "12345678", "abcdefghijklmnop",
		"Lq8sT2mZx4" };
	static const char *const bad[] = { "", "HZnKEBo", "abcdefghijklmnopq", "HZnK-EBoqDU",
		"HZnK EBoqDU", "HZnK_EBoqDU", "HZnKEBoqD\xc3\xbc" };

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!fb_conf_tenant_id_valid(good[i]))
			fail_msg("\"%s\" refused as a tenantID", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fb_conf_tenant_id_valid(bad[i]))
			fail_msg("\"%s\" accepted as a tenantID", bad[i]);
}

/* ---- every error, not only the first ---- */

static void
test_all_errors_reported(void **state)
{
	static const char yaml[] = "installation:\n"
	                           "  name: installation A\n" /* 2:9 */
	                           "  domain: a..example\n" /* 3:11 */
	                           "  public_url: https://sso.a.example\n"
	                           "  listen: 127.0.0.1:70000\n" /* 5:11 */
	                           "keys:\n"
	                           "  signing: [signing.pem]\n"
	                           "  fid_secret: short.secret\n" /* 8:15 */
	                           "tokens:\n"
	                           "  ttl: soon\n" /* 10:8 */
	                           "log:\n"
	                           "  level: verbose\n" /* 12:10 */
	                           "tenants:\n"
	                           "  - id: HZnK\n" /* 14:9 */
	                           "    providers:\n" CORP_PROVIDER CORP_MAPPING;
	static const struct {
		unsigned line, col;
		const char *want;
	} expected[] = {
		{ 2, 9, "installation.name: " },
		{ 3, 11, "installation.domain: " },
		{ 5, 11, "installation.listen: " },
		{ 8, 15, "keys.fid_secret: " },
		{ 10, 8, "tokens.ttl: " },
		{ 12, 10, "log.level: " },
		{ 14, 9, "tenants[0].id: " },
	};
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	const char *problem = NULL;

	(void)state;
	conf = load_yaml(yaml, &diags);
	if (conf != NULL)
		problem = "the configuration loaded";
	for (size_t i = 0; problem == NULL && i < sizeof(expected) / sizeof(expected[0]); i++)
		if (!expect_diag(&diags, expected[i].line, expected[i].col, expected[i].want))
			problem = "an error went unreported";
	/* Nothing else is wrong in the file: one diagnostic per error, no more. */
	if (problem == NULL && diags.n != sizeof(expected) / sizeof(expected[0]))
		problem = "not one diagnostic per error";
	for (size_t i = 1; problem == NULL && i < diags.n; i++) {
		const struct fb_conf_pos a = diags.v[i - 1].pos, b = diags.v[i].pos;
		if (a.line > b.line || (a.line == b.line && a.col > b.col))
			problem = "the diagnostics are not in file order";
	}
	if (problem != NULL)
		print_diags(&diags);
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (problem != NULL)
		fail_msg("%s", problem);
}

/* ---- secrets stay out of messages ---- */

static void
test_secrets_not_shown(void **state)
{
	static const char canary[] = "client-secret-canary-5b1e9d7c";
	static const char pg_canary[] = "pg-canary-4711";
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	bool ok, leaked;

	(void)state;
	/* Readable by others, so the loader has something to say about that very file. */
	assert_int_equal(write_file("canary.secret", canary, 0644), 0);
	assert_int_equal(write_file("canary600.secret", canary, 0600), 0);
	conf = load_yaml(HEAD TENANT_HEAD
	    "      - name: corp\n"
	    "        type: oidc\n"
	    "        issuer: https://kc.a.example/realms/corp\n"
	    "        client_id: fedbridge\n"
	    "        client_secret_file: canary.secret\n"
	    "      - name: corp2\n"
	    "        type: oidc\n"
	    "        issuer: https://kc.a.example/realms/corp\n"
	    "        client_id: fedbridge\n"
	    "        client_secret_file: canary600.secret\n"
	    "        client_auth: client_secret_jwt\n"
	    "    mapping:\n"
	    "      - provider: corp\n"
	    "        fid: claims.sub\n"
	    "store: postgresql://fedbridge:pg-canary-4711@db.a.example/fedbridge\n",
	    &diags);
	/* The diagnostics about the very places that hold the secrets are there... */
	ok = conf == NULL && expect_diag(&diags, 15, 29, "canary.secret: mode 0644") &&
	    expect_diag(&diags, 21, 22, "client_auth: expected one of") &&
	    expect_diag(&diags, 25, 8, "the PostgreSQL URL holds a password");
	/* ...and none shows them. */
	leaked = any_diag_contains(&diags, canary) || any_diag_contains(&diags, pg_canary);
	if (leaked)
		print_diags(&diags);
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("the expected diagnostics are missing");
	if (leaked)
		fail_msg("a secret shows in a diagnostic");

	conf = load_yaml(BASE "store: mysql://fedbridge:pg-canary-4711@db/x\n", &diags);
	assert_null(conf);
	assert_false(any_diag_contains(&diags, pg_canary));
	fb_conf_diags_free(&diags);
}

/* As root, a secret owned by another user is refused too. */
static void
test_secret_other_owner(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	bool ok;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(
	    write_file("nobody.secret", "0123456789abcdef0123456789abcdef0123", 0600), 0);
	assert_int_equal(chown(in_dir("nobody.secret"), 65534, 65534), 0);
	conf = load_yaml(INSTALLATION "keys:\n  signing: [signing.pem]\n  fid_secret: "
	                              "nobody.secret\n" TENANTS,
	    &diags);
	ok = conf == NULL &&
	    expect_diag(&diags, 7, 15,
	        "nobody.secret: owned by uid 65534, must be owned by uid 0 (the user fedbridge "
	        "runs as) or root");
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("a secret of another user was not refused at 7:15");
}

/*
 * The check reads a secret by the bridge's own rules, on the open file: a link to a good
 * key is refused (it could be repointed between check and use), and so is a fid secret
 * longer than the bridge reads.
 */
static void
test_secret_link_and_size(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	char big[FB_SECRET_SHORT_MAX + 2];
	bool ok;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(write_file("big.secret", big, 0600), 0);
	(void)unlink(in_dir("link.pem"));
	assert_int_equal(symlink("signing.pem", in_dir("link.pem")), 0);
	conf = load_yaml(INSTALLATION "keys:\n  signing: [link.pem]\n  fid_secret: "
	                              "big.secret\n" TENANTS,
	    &diags);
	ok = conf == NULL &&
	    expect_diag(&diags, 6, 13,
	        "link.pem is a symbolic link: a secret is read from the file itself") &&
	    expect_diag(&diags, 7, 15, "big.secret: larger than 4096 bytes");
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("a linked signing key or an oversize fid secret was not refused");
}

#define REFERENCE_MAX (1 << 20)

/* The shortest secret a key takes is in the reference, beside the key, not only in errors. */
static void
test_reference_secret_minimum(void **state)
{
	struct fb_buf ref = { 0 };

	(void)state;
	fb_buf_init(&ref, REFERENCE_MAX);
	assert_int_equal(fb_conf_reference_markdown(&ref), FB_OK); /* NUL-terminated */
	if (strstr(ref.data,
	        "| `tenants[].providers[].client_secret_file` | secret file (mode "
	        "0600) | at least 16 bytes |") == NULL ||
	    strstr(ref.data,
	        "| `keys.fid_secret` | secret file (mode 0600) | at least 32 bytes |") == NULL)
		fail_msg("the reference lacks a secret's minimum:\n%s", ref.data);
	fb_buf_free(&ref);
}

/* ---- limits ---- */

static double
now_seconds(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A valid configuration padded with a comment to exactly len bytes. */
static char *
padded_base(size_t len)
{
	static const char base[] = BASE "#";
	char *s = malloc(len + 1);

	assert_non_null(s);
	assert_true(len > sizeof(base));
	memcpy(s, base, sizeof(base) - 1);
	memset(s + sizeof(base) - 1, 'x', len - sizeof(base));
	s[len - 1] = '\n';
	s[len] = '\0';
	return s;
}

static void
test_limit_bytes(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	char *big;
	bool ok;

	(void)state;
	/* Exactly at the cap is fine. */
	big = padded_base(FB_CONF_MAX_BYTES);
	conf = fb_conf_load_buffer(big, FB_CONF_MAX_BYTES, "fedbridge.yaml", g_dir, 0, &diags);
	free(big);
	print_diags(&diags);
	assert_non_null(conf);
	fb_conf_unref(conf);

	/* One byte more is refused before parsing, with the size. */
	big = padded_base(FB_CONF_MAX_BYTES + 1);
	conf = fb_conf_load_buffer(big, FB_CONF_MAX_BYTES + 1, "fedbridge.yaml", g_dir, 0, &diags);
	ok = conf == NULL &&
	    expect_diag(&diags, 0, 0, "the file is 1048577 bytes, more than the limit of 1048576");
	fb_conf_diags_free(&diags);
	/* The same through a file. */
	if (ok) {
		conf = load_yaml_len(big, FB_CONF_MAX_BYTES + 1, &diags);
		ok = conf == NULL &&
		    expect_diag(
		        &diags, 0, 0, "the file is 1048577 bytes, more than the limit of 1048576");
		fb_conf_diags_free(&diags);
	}
	free(big);
	if (!ok)
		fail_msg("a document of FB_CONF_MAX_BYTES + 1 bytes was not refused");

	/* A much larger file is not even read whole. */
	big = padded_base((size_t)2 * FB_CONF_MAX_BYTES);
	conf = load_yaml_len(big, (size_t)2 * FB_CONF_MAX_BYTES, &diags);
	free(big);
	ok = conf == NULL &&
	    expect_diag(&diags, 0, 0, "the file is larger than the limit of 1048576 bytes");
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("a file of 2 MiB was not refused");
}

static void
test_limit_nodes(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	char *yaml;
	size_t len;
	FILE *f;
	bool ok;

	(void)state;
	/*
	 * The root mapping, its key and the list are nodes 1 to 3; item k is
	 * on line k + 1, so node 50001 is item 49998, on line 49999.
	 */
	f = open_memstream(&yaml, &len);
	assert_non_null(f);
	fputs("x:\n", f);
	for (int i = 0; i < FB_CONF_MAX_NODES; i++)
		fputs("- a\n", f);
	assert_int_equal(fclose(f), 0);
	conf = load_yaml(yaml, &diags);
	free(yaml);
	ok = conf == NULL && expect_diag(&diags, 49999, 3, "more than 50000 YAML nodes");
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("50001 nodes were not refused at 49999:3");
}

static void
test_limit_scalar(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	static const char head[] = BASE "        deny: \"";
	size_t hlen = sizeof(head) - 1;
	char *yaml = malloc(hlen + FB_CONF_MAX_SCALAR + 4);
	bool ok;

	(void)state;
	assert_non_null(yaml);
	/* An expression (which has no length rule of its own) of exactly the cap loads. */
	memcpy(yaml, head, hlen);
	memset(yaml + hlen, 'x', FB_CONF_MAX_SCALAR);
	memcpy(yaml + hlen + FB_CONF_MAX_SCALAR, "\"\n", 3);
	conf = load_yaml(yaml, &diags);
	print_diags(&diags);
	ok = conf != NULL &&
	    strlen(conf->tenants[0].mappings[0].deny.v[0].src) == FB_CONF_MAX_SCALAR;
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok) {
		free(yaml);
		fail_msg("a value of exactly %d bytes was not loaded whole", FB_CONF_MAX_SCALAR);
		return; /* fail_msg does not return; the analyser does not know */
	}

	/* One byte more does not. */
	memset(yaml + hlen, 'x', FB_CONF_MAX_SCALAR + 1);
	memcpy(yaml + hlen + FB_CONF_MAX_SCALAR + 1, "\"\n", 3);
	conf = load_yaml(yaml, &diags);
	free(yaml);
	ok = conf == NULL &&
	    expect_diag(&diags, 19, 15, "a value of 16385 bytes, more than the limit of 16384");
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!ok)
		fail_msg("a 16385-byte value was not refused at 19:15");
}

/*
 * Billion laughs through the schema: 1000 aliases of a tenant, each with
 * 1000 aliases of a trust that lists 1000 tenantIDs, would be 10^9 nodes to
 * walk from a file of some 30 KB. The visit budget must stop it early.
 */
static void
test_alias_bomb(void **state)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *conf;
	char *yaml;
	size_t len;
	double t0, elapsed;
	bool stopped;
	FILE *f;

	(void)state;
	f = open_memstream(&yaml, &len);
	assert_non_null(f);
	fputs(HEAD "tenants:\n"
	           "  - &t\n"
	           "    id: HZnKEBoqDU\n"
	           "    providers:\n" CORP_PROVIDER CORP_MAPPING "    trusts:\n"
	           "      - &r\n"
	           "        remote: installation_B\n"
	           "        tenants: [",
	    f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "%sT%07d", i ? ", " : "", i);
	fputs("]\n", f);
	for (int i = 1; i < 1000; i++)
		fputs("      - *r\n", f);
	for (int i = 1; i < 1000; i++)
		fputs("  - *t\n", f);
	assert_int_equal(fclose(f), 0);
	assert_true(len < (size_t)64 * 1024);

	t0 = now_seconds();
	conf = load_yaml(yaml, &diags);
	elapsed = now_seconds() - t0;
	free(yaml);
	stopped = conf == NULL &&
	    any_diag_contains(&diags, "the configuration expands to more than 50000 nodes");
	if (!stopped)
		print_diags(&diags);
	fb_conf_unref(conf);
	fb_conf_diags_free(&diags);
	if (!stopped)
		fail_msg("the alias bomb was not stopped by the visit budget");
	/* Walking it whole would take minutes; the budget (the diagnostic above, a count, not
	 * a clock) stops it early. The time is shown, not asserted: a loaded machine under
	 * the sanitizers is no measure (scripts/bench.sh holds the speed figures). */
	print_message("alias bomb stopped after %.2f s\n", elapsed);

	f = open_memstream(&yaml, &len);
	assert_non_null(f);
	fputs(BASE "    trusts: [&r {remote: installation_B, tenants: [", f);
	for (int i = 0; i < 1000; i++)
		fprintf(f, "%sT%07d", i ? ", " : "", i);
	fputs("]}", f);
	for (int i = 1; i < 45; i++)
		fputs(", *r", f);
	fputs("]\n", f);
	fclose(f);
	t0 = now_seconds();
	conf = load_yaml(yaml, &diags);
	elapsed = now_seconds() - t0;
	free(yaml);
	/* Each copy repeats the first trust's 1000 tenants: refused, messages capped. */
	assert_null(conf);
	assert_int_equal(diags.n, FB_CONF_MAX_DIAGS);
	/* 44 copies x 1000 "already trusted", all found, beyond the first 200 only counted. */
	assert_true(diags.n + diags.dropped >= 44000);
	fb_conf_diags_free(&diags);
	print_message("45 copies of a 1000-tenant trust checked in %.2f s\n", elapsed);
}

int
main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_stores),
		cmocka_unit_test(test_anchors_and_aliases),
		cmocka_unit_test(test_ref_unref),
		cmocka_unit_test(test_no_fs),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_tenant_id_valid),
		cmocka_unit_test(test_secret_mode_in_list),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_secrets_not_shown),
		cmocka_unit_test(test_secret_other_owner),
		cmocka_unit_test(test_secret_link_and_size),
		cmocka_unit_test(test_reference_secret_minimum),
		cmocka_unit_test(test_limit_bytes),
		cmocka_unit_test(test_limit_nodes),
		cmocka_unit_test(test_limit_scalar),
		cmocka_unit_test(test_alias_bomb),
	};
	/* cmocka takes the array's size from its type: one slot per fixed test and per row. */
	static struct CMUnitTest tests[sizeof(fixed) / sizeof(fixed[0]) + N_BAD_ROWS];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		tests[n++] = fixed[i];
	/* The group setup leaves the group state NULL, so each row arrives as its initial state. */
	for (size_t i = 0; i < N_BAD_ROWS; i++) {
		tests[n].name = bad_rows[i].name;
		tests[n].test_func = test_bad_row;
		tests[n].initial_state = (void *)&bad_rows[i];
		n++;
	}
	return cmocka_run_group_tests_name("conf", tests, group_setup, group_teardown);
}
