/*
 * What a configuration means between installations: the signing keys and
 * their keyring, federation tokens, the trust table built for the verifier
 * (remote key sets fetched over HTTPS, found through DNS SRV), the admin's
 * rules, revocations from the store to the relay check, the revocation feed
 * between installations and the trust export. No HTTP server types: the
 * daemon and the command line both stand on it.
 */
#ifndef FB_FEDERATION_H
#define FB_FEDERATION_H

#include "fb_conf.h"
#include "fb_mapping.h"
#include "fb_sessions.h"
#include "fb_verify.h"

#include <jansson.h>

/* ---- signing keys (keys.c) ---- */

struct fb_signing_key;

/* Loads a PEM private key (P-256 or Ed25519) that only its owner can read. */
fb_rc fb_signing_key_load(const char *path, struct fb_signing_key **out, struct fb_err *err);
void fb_signing_key_free(struct fb_signing_key *k);
const char *fb_signing_key_kid(const struct fb_signing_key *k); /* RFC 7638 thumbprint */
enum fb_verify_alg fb_signing_key_alg(const struct fb_signing_key *k);
const char *fb_signing_key_path(const struct fb_signing_key *k);
/* base64url of {"alg":…,"typ":"fed+jwt","kid":…}, the protected header of its tokens. */
const char *fb_signing_key_header_b64(const struct fb_signing_key *k);
fb_rc fb_signing_key_sign(const struct fb_signing_key *k, const void *data, size_t len,
    unsigned char sig[64], struct fb_err *err);

/* Writes a new private key to path, created 0600, never over an existing file. */
fb_rc fb_keys_generate(const char *path, enum fb_verify_alg alg, struct fb_err *err);
/* The public JWKS of keys, with an "exp" per key where exps[i] != 0 (exps may be NULL);
 * *out is malloc'd, the caller frees it. */
fb_rc fb_keys_jwks(struct fb_signing_key *const *keys, const int64_t *exps, size_t n, char **out,
    struct fb_err *err);

/* ---- the keyring of keys.signing_dir (keyring.c) ---- */

enum fb_key_state { FB_KEY_NEXT, FB_KEY_ACTIVE, FB_KEY_RETIRED };
const char *fb_key_state_name(enum fb_key_state s);

struct fb_keyring_entry {
	char kid[44];
	enum fb_verify_alg alg;
	enum fb_key_state state;
	int64_t created, activated, retired; /* 0: not yet */
	int64_t exp; /* it signs no token issued after this */
};

struct fb_keyring {
	char *dir;
	struct fb_keyring_entry *v;
	size_t n;
};

/* Reads dir/keyring.json (an absent file is an empty keyring); create makes dir (0700). */
fb_rc fb_keyring_load(const char *dir, bool create, struct fb_keyring **out, struct fb_err *err);
void fb_keyring_free(struct fb_keyring *kr);
void fb_keyring_key_path(
    const struct fb_keyring *kr, const struct fb_keyring_entry *k, char *out, size_t size);
/* One rotation step (see keyring.c); what it did is appended to report. */
fb_rc fb_keyring_rotate(const struct fb_conf *conf, enum fb_verify_alg alg, bool force, int64_t now,
    struct fb_buf *report, struct fb_err *err);

/* ---- federation tokens (token.c) ---- */

struct fb_token_claims {
	const char *iss, *sub, *tid, *aud, *sid;
	const char *idp, *acr; /* optional */
	const char *cid; /* optional: the correlation id of the login the session began with */
	const char *const *amr;
	size_t n_amr;
	json_t *attrs; /* borrowed JSON object, or NULL for none */
	const unsigned char *cnf_sha256; /* the sending relay's client certificate, 32 bytes */
	int64_t iat, ttl;
};

/* Signs a compact JWS with exactly the contract's claims; *out is malloc'd. */
fb_rc fb_token_issue(const struct fb_signing_key *k, const struct fb_token_claims *c, char **out,
    struct fb_err *err);

/* ---- what a configuration means for tokens (federation.c) ---- */

/* Immutable: the signing keys and the verifier's trust table built from one configuration. */
struct fb_federation;

fb_rc fb_federation_load(
    const struct fb_conf *conf, struct fb_federation **out, struct fb_err *err);
void fb_federation_free(struct fb_federation *f);
/* The public JWKS of every configured signing key (the first one signs). */
const char *fb_federation_jwks(const struct fb_federation *f);
/* Remote key sets: a trust's keys is a JWKS file (read at load) or its bridge's URL. */
#define FB_JWKS_DEFAULT_MAX_AGE 300 /* refetch interval without Cache-Control */
#define FB_JWKS_RETRY 30 /* after a first failed fetch; doubled for each one after it */
#define FB_JWKS_RETRY_MAX 900 /* the longest wait between two tries */
#define FB_KEY_EXPIRY_WARNING 604800 /* a week */

bool fb_keys_source_is_url(const char *keys);

struct fb_jwks_fetch {
	char *body; /* malloc'd, NUL-terminated */
	size_t len;
	uint64_t digest;
	int64_t max_age; /* seconds until the next fetch */
};
/*
 * GET url: status 200, at most 256 KiB, 10 s, no redirects, TLS verified, under rule (the
 * outbound URL policy, fb_net.h). The body of a failed fetch is dropped, never quoted.
 */
fb_rc fb_jwks_fetch(
    const char *url, const struct fb_url_rule *rule, struct fb_jwks_fetch *out, struct fb_err *err);
/* The same over https only, trusting the CA certificate(s) in the PEM ca_pem and nothing
 * else (not the system's store), with the server's host name verified. */
fb_rc fb_jwks_fetch_pinned(const char *url, const struct fb_url_rule *rule, const char *ca_pem,
    size_t ca_len, struct fb_jwks_fetch *out, struct fb_err *err);

struct fb_refresh_opts {
	int64_t now;
	bool force; /* fetch every URL now */
	bool unknown_kid; /* a token named a kid we lack: fetch every set not fetched lately */
};
/* Carries the fetched key sets of prev (same URLs) into f, so a reload does not lose them. */
void fb_federation_adopt(struct fb_federation *f, const struct fb_federation *prev);
/* Fetches the key sets that are due; *changed says whether a new trust table is needed.
 * A failed fetch keeps the last good set. What happened is appended to log. Each remote is
 * fetched on its own thread (FB_KEY_FETCHERS at once): the call takes the longest fetch's
 * time, not their sum. For one-shot commands; the daemon's workers use the calls below. */
#define FB_KEY_FETCHERS 4
fb_rc fb_federation_refresh(struct fb_federation *f, const struct fb_refresh_opts *ro,
    bool *changed, struct fb_buf *log, struct fb_err *err);
/*
 * One remote at a time, for threads that each fetch a different remote's keys:
 * fb_federation_claim takes the source due first at now that no thread is fetching (false:
 * none is due) and marks it in flight; fb_federation_fetch_claimed fetches it without holding
 * the federation's lock, records the result (as fb_federation_refresh does) and releases it.
 */
bool fb_federation_claim(struct fb_federation *f, int64_t now, size_t *idx);
fb_rc fb_federation_fetch_claimed(
    struct fb_federation *f, size_t idx, int64_t now, struct fb_buf *log, struct fb_err *err);
/* A token named a kid we lack: each set not tried within keys.refetch_min (rediscover_min
 * for discover) and not being fetched is due at once. */
void fb_federation_kick(struct fb_federation *f, int64_t now);
/* Fetches due at since that have not ended: being made, or not tried since then. */
size_t fb_federation_fetches_pending(struct fb_federation *f, int64_t since);
/* Whether a key set or a found issuer changed since the last fb_federation_trusts. */
bool fb_federation_trusts_stale(struct fb_federation *f);
/* What is known of each remote key set, for metrics and check (all borrowed). */
struct fb_key_source_info {
	const char *remote, *keys;
	const struct fb_conf_trust *trust; /* the first trust naming it */
	size_t n_keys;
	int64_t expiry; /* when its newest key stops signing; 0: no exp */
	int64_t fetched; /* last successful fetch; 0 for files */
	uint64_t failures; /* failed fetches */
	fb_rc last_rc; /* of the last fetch: FB_ERR_IO when the remote could not be reached */
	const char *last_error; /* its message; NULL when the last fetch did not fail */
};
/* True when the key set fetched for a trust lacks kid (false for files and pending trusts). */
bool fb_federation_keys_lack(
    struct fb_federation *f, const struct fb_conf_trust *tr, const char *kid);
/*
 * The issuer and relay of a remote trust: as configured, or as found through discover.
 * False (and "" written) while a discover trust has not been found yet.
 */
bool fb_federation_trust_found(struct fb_federation *f, const struct fb_conf_trust *tr,
    char *issuer, size_t issuer_size, char *relay, size_t relay_size);
/* Whether url is an https URL whose host is domain or ends in "." domain (letter case
 * aside): a discovered issuer must be, so one remote's bridge cannot speak for another. */
bool fb_url_under_domain(const char *url, const char *domain);
/* GET url of a remote: for a trust found through DNS, pinned to the CA its bridge proved
 * itself with (fb_jwks_fetch_pinned); otherwise fb_jwks_fetch. */
fb_rc fb_federation_remote_fetch(struct fb_federation *f, const struct fb_conf_trust *tr,
    const char *url, const struct fb_url_rule *rule, struct fb_jwks_fetch *out, struct fb_err *err);
void fb_federation_key_sources(struct fb_federation *f,
    void (*fn)(void *arg, const struct fb_key_source_info *info), void *arg);

/* When the next fetch not under way is due (0: none; 1: at once). */
int64_t fb_federation_next_refresh(struct fb_federation *f);

/* A new trust table for a verifier (the caller owns it). */
fb_rc fb_federation_trusts(
    struct fb_federation *f, struct fb_verify_trusts **out, struct fb_err *err);
/* The verifier options the configuration asks for. */
void fb_federation_verify_opts(const struct fb_conf *conf, struct fb_verify_opts *out);

struct fb_issue_request {
	const char *tenant; /* the local tenant of the user */
	const char *fid; /* fid:0/<tenant>/<local-id> */
	const char *audience; /* the remote tenant */
	const char *sid; /* NULL: a fresh one */
	const char *cid; /* the login's correlation id, carried for logs; may be NULL */
	json_t *attrs; /* borrowed, NULL for none */
	int64_t ttl; /* 0: tokens.ttl */
	int64_t now;
};

/* Issues a token for a configured trust: iss, cnf and lifetime come from the configuration. */
fb_rc fb_federation_issue(const struct fb_federation *f, const struct fb_issue_request *req,
    char **token, struct fb_err *err);

/* ---- the admin's rules (rules_load.c) ---- */

/*
 * Compiles conf's mappings and trust policies with the installation's fid
 * secret and the pin tables they name (the files are read here; mapping/
 * does no I/O). Errors go to diags; FB_ERR_CONFIG when there was any.
 */
fb_rc fb_bridge_rules_load(
    const struct fb_conf *conf, struct fb_rules **out, struct fb_conf_diags *diags);

/*
 * The verifier's inbound policy hook: arg is the struct fb_rules in force.
 * Uses a scratch per thread; the verifier holds its lock across the call,
 * so installing new rules with fb_verifier_set_policy is safe.
 */
bool fb_bridge_inbound_policy(void *arg, const struct fb_verify_result *r);

/* ---- revocations from the store to the relay check (revocations.c) ---- */

/*
 * Makes the verifier refuse what r revokes: a session of r's issuer when it
 * names one (a remote's, from its feed), else that sid (decided here); fids
 * and tenants as they are; issued-before for all or one tenant; a trust (kill switch) as
 * every tenant of that remote; an IdP subject or IdP session as the bridge
 * sessions the store holds for it (store may be NULL: those are skipped).
 */
fb_rc fb_bridge_revocation_apply(struct fb_verifier *v, const struct fb_conf *conf,
    struct fb_store *store, const struct fb_revocation *r, struct fb_err *err);

/* Applies every revocation the store holds; *last_seq is the last one applied. */
fb_rc fb_bridge_revocations_load(struct fb_verifier *v, const struct fb_conf *conf,
    struct fb_store *store, int64_t *last_seq, struct fb_err *err);

/* ---- the revocation feed between installations (feed.c) ---- */

#define FB_FEED_TYP "fedrev+jwt"
#define FB_FEED_PATH "/revocations"

/* The key that signs tokens now (and the feed). */
const struct fb_signing_key *fb_federation_signing_key(const struct fb_federation *f);
/* When the active signing key stops signing (its keyring exp); 0 when it has no end. */
int64_t fb_federation_signing_expiry(const struct fb_federation *f);

/*
 * The feed after cursor since: a compact JWS (typ fedrev+jwt) signed with the
 * token key, payload {iss, iat, epoch, head, since, next, more, revocations:
 * [{kind, value, until, before?}], kids} with this installation's own
 * session, fid, tenant and issued-before revocations (IdP subjects and
 * sessions as the bridge sessions they had); epoch is the store's identity
 * (fb_store_epoch), in whose numbering head (its highest), since and next
 * count. *out is malloc'd.
 */
fb_rc fb_bridge_feed_document(const struct fb_federation *fed, const struct fb_conf *conf,
    struct fb_store *store, int64_t since, int64_t now, char **out, struct fb_err *err);

/* A page older than this (its iat) is refused: a feed is signed when asked for. */
#define FB_FEED_MAX_AGE 300

/* What taking one page did. */
struct fb_feed_taken {
	size_t recorded; /* entries written to our store */
	bool restarted; /* the remote's store was replaced: read again from 0 */
	bool over_quota; /* refused: it would pass remote_revocations_max */
};

/*
 * Takes a verified feed page of the remote installation named remote, whose
 * tokens carry iss issuer, against *cursor (as stored): refuses a page of
 * the wrong since, one whose iat is in the future, older than
 * FB_FEED_MAX_AGE or older than the last page taken; on another store
 * identity (epoch), or a head behind the cursor (a store restored from a
 * backup), it stores a cursor at 0 of that identity and sets restarted. Else it records what
 * concerns that remote's own tenants (in any of our trusts naming it; anything else is ignored),
 * sessions as that issuer's, with the remote as origin and until capped by our longest lifetime,
 * unless that would pass remote_revocations_max (then FB_ERR_LIMIT and nothing is written), then
 * stores and returns the new cursor.
 */
fb_rc fb_bridge_feed_apply(struct fb_store *store, const struct fb_conf *conf, const char *remote,
    const char *issuer, json_t *doc, int64_t now, struct fb_feed_cursor *cursor,
    struct fb_feed_taken *taken, struct fb_err *err);

/* ---- trusts between installations (trust.c) ---- */

struct fb_cert_info {
	char cn[256]; /* subject CN, "" when none */
	int64_t not_after;
	bool is_ca;
};
fb_rc fb_cert_info(const char *path, struct fb_cert_info *out, struct fb_err *err);
/* FB_OK when the CA certificate in ca_path verifies the certificate in cert_path at now. */
fb_rc fb_cert_verify_by_ca(
    const char *ca_path, const char *cert_path, int64_t now, struct fb_err *err);
/* True when pem's first certificate is the one in path. */
bool fb_cert_pem_same(const char *pem, const char *path);

/*
 * What a loadable configuration still lacks: trusts without keys, a trust's
 * CA that does not verify its client certificate, certificates and signing
 * keys at or near their end. Appended to out as "file:line:col: warning: ...".
 */
void fb_trust_findings(const struct fb_conf *conf, int64_t now, struct fb_conf_diags *out);

/* What one installation hands another to be trusted (fedbridge trust export / import). */
struct fb_trust_export {
	char *installation, *domain, *issuer, *jwks_uri, *relay;
	char *ca_pem; /* the installation's federation CA: its certificates, re-encoded */
	char *jwks; /* its public keys when exported (compact JSON) */
	char **tenants;
	size_t n_tenants;
};
/* The export document of this installation (n_tenants 0: every tenant); *out is malloc'd. */
fb_rc fb_trust_export(const struct fb_conf *conf, const struct fb_federation *fed,
    const char *const *tenants, size_t n_tenants, int64_t now, char **out, struct fb_err *err);
/* Parses and checks an export document (name for messages); free with fb_trust_export_free. */
fb_rc fb_trust_export_parse(const char *data, size_t len, const char *name,
    struct fb_trust_export *out, struct fb_err *err);
void fb_trust_export_free(struct fb_trust_export *e);
/*
 * The URLs an export (imported, or a discovered bridge's answer) asks us to fetch: issuer and
 * jwks_uri on host (the bridge that answered; NULL for a file) or under domain; plain http
 * toward loopback only with loopback_http (fb_conf_on_loopback), else no inside address.
 */
fb_rc fb_trust_export_check_urls(const struct fb_trust_export *ex, const char *host,
    const char *domain, bool loopback_http, struct fb_err *err);
/*
 * The export's domain can stand for one party (fb_domain_registrable: two labels or more,
 * no public suffix); localhost and *.localhost too with loopback_names (fb_conf_on_loopback).
 * Without it, an export claiming com would let any host under com pass the URL checks.
 */
fb_rc fb_trust_export_check_domain(
    const struct fb_trust_export *ex, bool loopback_names, struct fb_err *err);
/* FB_OK unless the PEM file path (a certificate's place: a trust's ca, client_cert) holds a
 * private key; the error names the file. */
fb_rc fb_cert_file_keyless(const char *path, struct fb_err *err);
/*
 * The certificates in the PEM file path, re-encoded (a malloc'd string in *out): never
 * anything else the file holds. A private key in the file is an error naming it.
 */
fb_rc fb_cert_file_pem(const char *path, char **out, struct fb_err *err);

/* ---- DNS SRV (srv.c) ---- */

struct fb_srv_target {
	char host[256];
	unsigned port;
};
/* Picks the target from a DNS answer to an SRV query (the part fb_srv_lookup parses). */
fb_rc fb_srv_answer_parse(const unsigned char *answer, size_t len, const char *name,
    struct fb_srv_target *out, struct fb_err *err);
/*
 * The SRV record name (e.g. _fedbridge._tcp.b.example) with the lowest priority (highest
 * weight among equals); server: "ip:port" of the name server to ask, NULL for the system's.
 */
fb_rc fb_srv_lookup(
    const char *name, const char *server, struct fb_srv_target *out, struct fb_err *err);

/* ---- trust files and their undo (trust_file.c) ---- */

/* Files written by one command, put back as they were when the result is refused. */
struct fb_undo;
struct fb_undo *fb_undo_new(void);
/* Writes path whole (fb_file_write_atomic), first keeping what it held. */
fb_rc fb_undo_write(struct fb_undo *u, const char *path, const void *data, size_t len,
    unsigned mode, struct fb_err *err);
/* Frees u; with restore, every file written goes back to its old content (or away). */
void fb_undo_finish(struct fb_undo *u, bool restore);

/* One trust file of a trusts_dir, as the trust commands write it (NULL fields left out). */
struct fb_trust_file {
	const char *origin; /* a comment line: where it came from */
	const char *remote, *relay, *cert_cn, *ca, *client_cert, *client_key, *keys, *issuer;
	const char *const *tenants;
	size_t n_tenants;
	const char *outbound, *inbound;
	const char *const *release;
	size_t n_release;
};
/* Writes DIR/REMOTE.yaml through u. */
fb_rc fb_trust_file_write(
    struct fb_undo *u, const char *dir, const struct fb_trust_file *t, struct fb_err *err);

#endif
