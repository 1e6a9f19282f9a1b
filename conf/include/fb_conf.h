/*
 * fedbridge configuration: YAML in, one immutable, fully validated value out.
 *
 * A load either yields a whole configuration or none: every problem found is
 * reported as a diagnostic "file:line:column: path: message", never only the
 * first. The value is shared across threads by reference count and replaced
 * whole on reload.
 */
#ifndef FB_CONF_H
#define FB_CONF_H

#include "fb_common.h"
#include "fb_net.h" /* the outbound URL policy: struct fb_url_rule */

/* Caps on what a configuration document may be. */
#define FB_CONF_MAX_BYTES 1048576
#define FB_CONF_MAX_DEPTH 32
#define FB_CONF_MAX_NODES 50000
#define FB_CONF_MAX_SCALAR 16384
#define FB_CONF_MAX_DIAGS 200

/*
 * The audit trail's retention (audit_retention), in seconds. The store
 * holds the same floor in its own triggers: nothing younger than a day can
 * be deleted, whatever is configured.
 */
#define FB_AUDIT_RETENTION_MIN 86400 /* one day */
#define FB_AUDIT_RETENTION_DEFAULT ((int64_t)365 * FB_AUDIT_RETENTION_MIN)
#define FB_AUDIT_RETENTION_MAX ((int64_t)3650 * FB_AUDIT_RETENTION_MIN)

/*
 * installation.request_bodies_max: at least two SAML responses (2 MiB each)
 * fit, so one slow sender cannot make every login fail; at most 4 GiB.
 * installation.connections_per_client: at most every connection the public
 * listener takes.
 */
#define FB_CONF_REQUEST_BODIES_MIN ((int64_t)4 << 20)
#define FB_CONF_REQUEST_BODIES_MAX ((int64_t)4 << 30)
#define FB_CONF_CONNECTIONS_MAX 4096

/* 1-based; 0:0 means "not from the file" (a default). */
struct fb_conf_pos {
	unsigned line;
	unsigned col;
	const char *file; /* NULL: the configuration file; else the included file (trusts_dir) */
};

/* A mapping expression, kept as source text with where it starts. */
struct fb_conf_expr {
	const char *src; /* NULL when absent */
	struct fb_conf_pos pos;
	bool quoted; /* written as a quoted or block scalar: columns inside may not map 1:1 */
	char style; /* 0 plain, '\'' or '"' quoted, '|' or '>' block */
};

/* One expression or a list of them (a scalar in the file counts as a list of one). */
struct fb_conf_exprlist {
	struct fb_conf_expr *v;
	size_t n;
};

struct fb_conf_strlist {
	const char **v;
	size_t n;
};

enum fb_conf_provider_type { FB_PROVIDER_OIDC, FB_PROVIDER_SAML };

enum fb_conf_client_auth {
	FB_CLIENT_AUTH_SECRET_BASIC,
	FB_CLIENT_AUTH_SECRET_POST,
	FB_CLIENT_AUTH_PRIVATE_KEY_JWT,
};

struct fb_conf_provider {
	const char *name;
	enum fb_conf_provider_type type;
	/* OpenID Connect */
	const char *issuer;
	const char *client_id;
	const char *client_secret_file; /* resolved path */
	const char *client_key; /* resolved path, for private_key_jwt */
	enum fb_conf_client_auth client_auth;
	struct fb_conf_strlist scopes;
	struct fb_conf_strlist allowed_algs;
	bool userinfo; /* fetch the userinfo endpoint after the ID token */
	int64_t timeout; /* seconds for all the IdP calls of one request (a login's callback) */
	/* SAML 2.0 */
	const char *idp_metadata; /* resolved path or https URL */
	const char
	    *idp_metadata_cert; /* resolved path; when set, the metadata must be signed by it */
	const char *sp_key;
	const char *sp_cert;
	bool allow_idp_initiated;
	bool allow_sha1;
};

struct fb_conf_attr {
	const char *name;
	struct fb_conf_expr expr;
};

struct fb_conf_mapping {
	const char *provider;
	struct fb_conf_exprlist fid; /* candidates in order: the first present wins */
	struct fb_conf_attr *attrs;
	size_t n_attrs;
	struct fb_conf_exprlist require; /* every one must hold (n 0: none) */
	struct fb_conf_exprlist deny; /* any one that holds refuses */
	const char *pins; /* a pin table (JSON) from fedbridge import whitelist; resolved path */
	struct fb_conf_expr pin_key; /* the identity key pins are looked up by */
};

struct fb_conf_trust {
	const char *remote; /* installation name = CN of its relay client certificate */
	struct fb_conf_strlist tenants;
	const char *relay; /* host:port; NULL for a trust inside this installation */
	const char *cert_cn;
	const char *ca;
	const char *client_cert;
	const char *client_key;
	const char *keys; /* JWKS file, resolved path */
	const char *issuer;
	const char *discover; /* the remote's domain: relay, issuer and keys via DNS SRV */
	struct fb_conf_expr outbound;
	struct fb_conf_strlist release;
	struct fb_conf_expr inbound;
	const char *imported; /* the file in trusts_dir it was read from; NULL when inline */
};

/* An OAuth client of POST /token: the tenant's messenger backend. */
struct fb_conf_client {
	const char *client_id;
	enum fb_conf_client_auth auth; /* client_secret_basic, _post or private_key_jwt */
	const char *secret_file; /* resolved path; client_secret_* */
	const char *jwks; /* its public keys (JWKS file, resolved path); private_key_jwt */
};

struct fb_conf_tenant {
	const char *id;
	const char *name;
	struct fb_conf_provider *providers;
	size_t n_providers;
	struct fb_conf_mapping *mappings;
	size_t n_mappings;
	struct fb_conf_trust *trusts;
	size_t n_trusts;
	const char *trusts_dir; /* resolved path: imported trusts, one file each */
	struct fb_conf_strlist return_to;
	struct fb_conf_client *clients;
	size_t n_clients;
};

enum fb_conf_store_kind { FB_STORE_MEMORY, FB_STORE_EMBEDDED, FB_STORE_POSTGRESQL };

/* The one header through which relays give /validate the peer's certificate. */
enum fb_conf_peer_cert_header {
	FB_PEER_CERT_PEM, /* X-Fed-Peer-Cert: URL-escaped PEM (nginx $ssl_client_escaped_cert) */
	FB_PEER_CERT_S256, /* X-Fed-Peer-Cert-S256: its SHA-256, base64url or hex */
};

struct fb_conf {
	const char *path; /* the file as given */
	const char *basedir; /* relative paths resolve against it */
	struct {
		const char *name;
		const char *domain;
		const char *public_url;
		const char *listen; /* host:port */
		const char
		    *relay_listen; /* host:port serving /validate alone; NULL: listen serves it */
		enum fb_conf_peer_cert_header relay_peer_cert; /* the header relays send */
		const char *relay; /* host:port of our relay; federation.DOMAIN:443 by default */
		const char *ca; /* resolved path: our federation CA, for remotes; may be NULL */
		const char
		    *resolver; /* ip:port of the name server for SRV lookups; NULL: system's */
		int64_t request_bodies_max; /* bytes of request bodies held at once, all requests */
		int64_t connections_per_client; /* on the public listener, per client address */
	} installation;
	struct {
		struct fb_conf_strlist
		    signing; /* resolved paths: the first signs, all are published */
		const char *signing_dir; /* or a keyring managed by fedbridge keys rotate */
		int64_t publish_ahead; /* a next key is published this long before it signs */
		int64_t lifetime; /* how long a key signs before it must be rotated */
		int64_t refetch_min; /* least time between unknown-kid fetches of a remote's keys */
		int64_t rediscover_min; /* the same for a remote found through DNS (discover) */
		const char *fid_secret;
	} keys;
	struct {
		enum fb_conf_store_kind kind;
		const char *location; /* directory for embedded, conninfo URL for postgresql */
		const char *password_file; /* postgresql only */
		int64_t remote_revocations_max; /* in force, recorded from one remote's feed */
		int64_t audit_retention; /* audit records older than this are purged */
	} store;
	struct {
		int64_t ttl; /* seconds, like every duration here */
		int64_t max_ttl;
		int64_t session_ttl;
		int64_t session_idle;
		int64_t clock_skew;
		int64_t exchange_max_age; /* oldest iat of an ID token at a token exchange */
		int64_t max_size; /* bytes */
	} tokens;
	struct {
		enum fb_log_level level;
		enum fb_log_format format;
		bool attributes; /* users' mapped attributes may be logged */
	} log;
	struct fb_conf_tenant *tenants;
	size_t n_tenants;
};

struct fb_conf_diag {
	char *msg; /* "file:line:col: path: what" (owned by the diags) */
	struct fb_conf_pos pos;
};

struct fb_conf_diags {
	struct fb_conf_diag *v;
	size_t n;
	size_t dropped; /* diagnostics past FB_CONF_MAX_DIAGS */
};

enum fb_conf_flags {
	/* Do not look at the file system for referenced files (fuzzing, syntax-only checks). */
	FB_CONF_NO_FS = 1u << 0,
};

/*
 * Loads and validates a configuration. On success returns a new value with a
 * reference count of one (release with fb_conf_unref) and leaves diags empty.
 * On failure returns NULL and diags holds at least one diagnostic.
 * diags must be zero-initialised; free it with fb_conf_diags_free.
 */
struct fb_conf *fb_conf_load_file(const char *path, unsigned flags, struct fb_conf_diags *diags);

/* The same from memory; name is used in messages, basedir for relative paths. */
struct fb_conf *fb_conf_load_buffer(const char *data, size_t len, const char *name,
    const char *basedir, unsigned flags, struct fb_conf_diags *diags);

void fb_conf_diags_free(struct fb_conf_diags *diags);

/* True when installation.public_url is plain http toward loopback: a test or demo
 * installation, whose remotes may be on loopback http too. */
bool fb_conf_on_loopback(const struct fb_conf *conf);

/* Reference counting, safe across threads. fb_conf_unref(NULL) is a no-op. */
struct fb_conf *fb_conf_ref(struct fb_conf *conf);
void fb_conf_unref(struct fb_conf *conf);

/* Where a field of this configuration was written (0:0 for defaults and unknown fields). */
struct fb_conf_pos fb_conf_pos_of(const struct fb_conf *conf, const void *field);

/*
 * Appends "file:line:col: msg" (or "file: msg" for pos 0:0) to diags, for
 * checks made after loading (expressions compiled by mapping/, keys).
 */
void fb_conf_diag_add(struct fb_conf_diags *diags, const struct fb_conf *conf,
    struct fb_conf_pos pos, const char *fmt, ...) FB_PRINTF(4, 5);

/* Finds a tenant by its tenantID; NULL when absent. */
const struct fb_conf_tenant *fb_conf_tenant_find(const struct fb_conf *conf, const char *id);

/* Appends the configuration reference (a Markdown table made from the schema). */
fb_rc fb_conf_reference_markdown(struct fb_buf *out);

/* Parses a duration such as "90s", "5m", "1h30m", "7d" into seconds. */
bool fb_conf_duration_parse(const char *s, int64_t *seconds);

/* True for a tenantID in the messenger's form: 8 to 16 ASCII letters and digits. */
bool fb_conf_tenant_id_valid(const char *s);
/* True for an installation name: 1 to 64 letters, digits, '_', '.', '-', starting alphanumeric. */
bool fb_conf_install_name_valid(const char *s);

/*
 * Other YAML files, read-only (yaml_doc.c): the configuration's hardened
 * reader for formats fedbridge only reads, such as the legacy files it
 * replaces. Tags are refused, nesting, node count, value size and the
 * expansion through aliases are capped, and every node keeps its 1-based
 * line and column. Every node belongs to its document.
 */
#define FB_YAML_MAX_BYTES ((size_t)256 << 20)
#define FB_YAML_MAX_NODES (32 << 20)
/* Nodes a walk may meet with aliases followed: an alias bomb is refused at parse time. */
#define FB_YAML_MAX_EXPANDED FB_YAML_MAX_NODES

struct fb_yaml_doc;
struct fb_yaml_node;

enum fb_yaml_kind {
	FB_YAML_NULL, /* a plain empty value, ~, null, Null or NULL */
	FB_YAML_SCALAR,
	FB_YAML_SEQ,
	FB_YAML_MAP,
};

enum fb_yaml_flags {
	/* Plain data: anchors (&name) and aliases (*name) are refused too. */
	FB_YAML_PLAIN = 1u << 0,
	/* On a refusal, *out still holds what was read before it (open nodes closed
	 * there), so that a reader can report an earlier problem first, in file order. */
	FB_YAML_PARTIAL = 1u << 1,
};

/* Which rule a refused text broke, for callers that word a rule for their format. */
enum fb_yaml_rule {
	FB_YAML_RULE_NONE,
	FB_YAML_RULE_SYNTAX, /* not YAML, or not UTF-8 */
	FB_YAML_RULE_TAG,
	FB_YAML_RULE_ANCHOR, /* FB_YAML_PLAIN */
	FB_YAML_RULE_ALIAS, /* FB_YAML_PLAIN, or an alias to no anchor or to its own container */
	FB_YAML_RULE_DOCUMENTS, /* a second document */
	FB_YAML_RULE_LIMIT,
};
struct fb_yaml_refusal {
	enum fb_yaml_rule rule;
	unsigned line, col; /* where; 0:0 when nowhere in particular */
};

/*
 * Parses len bytes (not NUL-terminated) of one YAML document. On success
 * *out is a new document (fb_yaml_free); an empty stream (only comments)
 * gives one without a root. On failure err says "name:line:col: what", why
 * (when not NULL) which rule and where, and *out is NULL but with
 * FB_YAML_PARTIAL (see there).
 */
fb_rc fb_yaml_parse(const char *data, size_t len, const char *name, unsigned flags,
    struct fb_yaml_doc **out, struct fb_yaml_refusal *why, struct fb_err *err);
void fb_yaml_free(struct fb_yaml_doc *doc); /* NULL is fine */

/* The document's one top node; NULL for an empty stream. */
const struct fb_yaml_node *fb_yaml_root(const struct fb_yaml_doc *doc);
enum fb_yaml_kind fb_yaml_kind(const struct fb_yaml_node *n);
/* Where the node's value starts, 1-based. */
unsigned fb_yaml_line(const struct fb_yaml_node *n);
unsigned fb_yaml_col(const struct fb_yaml_node *n);
/* A scalar's (or null's) text, NUL-terminated but possibly holding NUL: trust *len.
 * NULL for a sequence or a mapping. */
const char *fb_yaml_text(const struct fb_yaml_node *n, size_t *len);
/* Items of a sequence, pairs of a mapping, 0 otherwise. */
size_t fb_yaml_count(const struct fb_yaml_node *n);
/* A sequence's item i; NULL when n is no sequence or i is out of range. */
const struct fb_yaml_node *fb_yaml_item(const struct fb_yaml_node *n, size_t i);
/* A mapping's pair i, in file order: its key (any kind of node) and its value. */
const struct fb_yaml_node *fb_yaml_key(const struct fb_yaml_node *map, size_t i);
const struct fb_yaml_node *fb_yaml_value(const struct fb_yaml_node *map, size_t i);
/*
 * Keys are kept as written, a key given twice included, so that callers can
 * name both places: the index of the first pair at or after from whose key is
 * the scalar key exactly, or fb_yaml_count(map) when there is none.
 */
size_t fb_yaml_find(const struct fb_yaml_node *map, const char *key, size_t from);
/* The value of the first pair with key; NULL when none (or map is no mapping). */
const struct fb_yaml_node *fb_yaml_get(const struct fb_yaml_node *map, const char *key);

#endif
