/*
 * The session store, one suite run against every backend: memory always,
 * embedded (SQLite) in a fresh temporary directory per test, PostgreSQL
 * when FB_TEST_PG_URL names a database the tests may wipe (the integration
 * script tests/integration/store_postgres.sh starts a throwaway server and
 * sets it). Then the checks only one backend can make: corrupt and
 * unwritable files, a full disk, an unreachable server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fb_sessions.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define T0 1800000000 /* a fixed "now": the store takes time from its callers */
#define ISS "https://kc.a.example/realms/corp"

struct fixture {
	struct fb_store_opts opts;
	struct fb_store *st;
	char dir[64];
};

/* The backend the current group runs against. */
static enum fb_conf_store_kind backend;
static const char *pg_url;

static void
rm_tree(const char *dir)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Drops every object the store makes, so each test starts from an empty database. */
static void
pg_wipe(void)
{
	PGconn *c = PQconnectdb(pg_url);
	PGresult *r;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c,
	    "SET client_min_messages = warning;"
	    "DROP TABLE IF EXISTS sessions, revocations, once_used, audit, feed_cursors,"
	    " store_identity, audit_retention, fedbridge_schema CASCADE;"
	    "DROP SEQUENCE IF EXISTS revocations_seq;"
	    "DROP FUNCTION IF EXISTS fedbridge_revocation_seq, fedbridge_audit_append_only,"
	    " fedbridge_audit_retained CASCADE");
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	struct fb_err err = { 0 };

	assert_non_null(fx);
	fx->opts.kind = backend;
	if (backend == FB_STORE_EMBEDDED) {
		(void)snprintf(fx->dir, sizeof(fx->dir), "/tmp/fb-store.XXXXXX");
		assert_non_null(mkdtemp(fx->dir));
		fx->opts.location = fx->dir;
	} else if (backend == FB_STORE_POSTGRESQL) {
		pg_wipe();
		fx->opts.location = pg_url;
		fx->opts.pool_size = 3;
	}
	if (fb_store_open(&fx->opts, &fx->st, &err) != FB_OK) {
		free(fx);
		fail_msg("open: %s", err.msg);
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	fb_store_close(fx->st);
	if (fx->dir[0] != '\0')
		rm_tree(fx->dir);
	free(fx);
	return 0;
}

static struct fb_store *
reopen(struct fixture *fx)
{
	struct fb_err err = { 0 };

	fb_store_close(fx->st);
	fx->st = NULL;
	if (fb_store_open(&fx->opts, &fx->st, &err) != FB_OK)
		fail_msg("reopen: %s", err.msg);
	return fx->st;
}

static bool
durable(void)
{
	return backend != FB_STORE_MEMORY;
}

/* A session with the given fields and fixed others; id is written. */
static struct fb_session
session(char id[FB_SESSION_ID_LEN + 1], const char *tenant, const char *fid, const char *sub,
    int64_t expires, int64_t idle)
{
	struct fb_session s = { 0 };

	assert_int_equal(fb_session_id_new(id), FB_OK);
	memcpy(s.id, id, FB_SESSION_ID_LEN + 1);
	s.fid = (char *)fid;
	s.tenant = (char *)tenant;
	s.provider = "corp-keycloak";
	s.issuer = ISS;
	s.subject = (char *)sub;
	s.idp_session = "idp-sid-1";
	s.acr = "urn:mace:incommon:iap:silver";
	s.amr = "[\"pwd\",\"otp\"]";
	s.attrs = "{\"email\":\"alice@a.example\",\"groups\":[\"federation\"]}";
	s.created = T0;
	s.last_seen = T0;
	s.expires = expires;
	s.idle_timeout = idle;
	return s;
}

static void
put(struct fb_store *st, const struct fb_session *s)
{
	struct fb_err err = { 0 };

	if (fb_store_session_put(st, s, &err) != FB_OK)
		fail_msg("put: %s", err.msg);
}

/* ---- sessions ---- */

static void
test_session_roundtrip(void **state)
{
	struct fixture *fx = *state;
	char id[FB_SESSION_ID_LEN + 1], other[FB_SESSION_ID_LEN + 1];
	struct fb_session s =
	    session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "alice", T0 + 3600, 0);
	struct fb_session got = { 0 };
	struct fb_err err = { 0 };

	put(fx->st, &s);
	assert_int_equal(fb_store_session_get(fx->st, id, &got, &err), FB_OK);
	assert_string_equal(got.id, id);
	assert_string_equal(got.fid, s.fid);
	assert_string_equal(got.tenant, s.tenant);
	assert_string_equal(got.provider, s.provider);
	assert_string_equal(got.issuer, s.issuer);
	assert_string_equal(got.subject, s.subject);
	assert_string_equal(got.idp_session, s.idp_session);
	assert_string_equal(got.acr, s.acr);
	assert_string_equal(got.amr, s.amr);
	assert_string_equal(got.attrs, s.attrs);
	assert_int_equal(got.created, T0);
	assert_int_equal(got.last_seen, T0);
	assert_int_equal(got.expires, T0 + 3600);
	assert_int_equal(got.idle_timeout, 0);
	fb_session_clear(&got);

	/* Optional fields come back NULL; a second put replaces. */
	s.idp_session = NULL;
	s.acr = NULL;
	s.amr = NULL;
	s.attrs = NULL;
	s.subject = "alice-renamed";
	put(fx->st, &s);
	if (durable())
		reopen(fx);
	assert_int_equal(fb_store_session_get(fx->st, id, &got, &err), FB_OK);
	assert_string_equal(got.subject, "alice-renamed");
	assert_null(got.idp_session);
	assert_null(got.acr);
	assert_null(got.amr);
	assert_null(got.attrs);
	fb_session_clear(&got);

	assert_int_equal(fb_session_id_new(other), FB_OK);
	assert_int_equal(fb_store_session_get(fx->st, other, &got, &err), FB_ERR_NOTFOUND);
	assert_int_equal(fb_store_session_delete(fx->st, id, &err), FB_OK);
	assert_int_equal(fb_store_session_delete(fx->st, id, &err), FB_ERR_NOTFOUND);
	assert_int_equal(fb_store_session_get(fx->st, id, &got, &err), FB_ERR_NOTFOUND);
}

static void
test_session_touch_expiry(void **state)
{
	struct fixture *fx = *state;
	char idle_id[FB_SESSION_ID_LEN + 1], abs_id[FB_SESSION_ID_LEN + 1];
	struct fb_session idle =
	    session(idle_id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "a", T0 + 3600, 300);
	struct fb_session abs =
	    session(abs_id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/2", "b", T0 + 600, 0);
	struct fb_session got = { 0 };
	struct fb_err err = { 0 };

	put(fx->st, &idle);
	put(fx->st, &abs);
	/* Used within the idle window, it lives on; last_seen follows. */
	assert_int_equal(fb_store_session_touch(fx->st, idle_id, T0 + 200, &got, &err), FB_OK);
	assert_int_equal(got.last_seen, T0 + 200);
	fb_session_clear(&got);
	assert_int_equal(fb_store_session_touch(fx->st, idle_id, T0 + 450, NULL, &err), FB_OK);
	/* An older clock never moves last_seen back. */
	assert_int_equal(fb_store_session_touch(fx->st, idle_id, T0 + 400, &got, &err), FB_OK);
	assert_int_equal(got.last_seen, T0 + 450);
	fb_session_clear(&got);
	/* 300 s idle after T0 + 450 it has ended, and a refused touch does not revive it. */
	assert_int_equal(
	    fb_store_session_touch(fx->st, idle_id, T0 + 750, NULL, &err), FB_ERR_NOTFOUND);
	assert_int_equal(
	    fb_store_session_touch(fx->st, idle_id, T0 + 760, NULL, &err), FB_ERR_NOTFOUND);
	assert_int_equal(fb_store_session_get(fx->st, idle_id, &got, &err), FB_OK);
	assert_int_equal(got.last_seen, T0 + 450);
	fb_session_clear(&got);

	/* Absolute expiry holds whatever the use. */
	assert_int_equal(fb_store_session_touch(fx->st, abs_id, T0 + 599, NULL, &err), FB_OK);
	assert_int_equal(
	    fb_store_session_touch(fx->st, abs_id, T0 + 600, NULL, &err), FB_ERR_NOTFOUND);
	/* An idle timeout never stretches past the absolute expiry either. */
	idle.last_seen = T0 + 3500;
	put(fx->st, &idle);
	assert_int_equal(
	    fb_store_session_touch(fx->st, idle_id, T0 + 3600, NULL, &err), FB_ERR_NOTFOUND);
}

static void
test_session_purge(void **state)
{
	struct fixture *fx = *state;
	char a[FB_SESSION_ID_LEN + 1], b[FB_SESSION_ID_LEN + 1], c[FB_SESSION_ID_LEN + 1];
	struct fb_session live = session(a, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "a", T0 + 3600, 0);
	struct fb_session gone = session(b, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/2", "b", T0 + 100, 0);
	struct fb_session idle = session(c, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/3", "c", T0 + 3600, 60);
	struct fb_revocation r = { .kind = FB_REVOCATION_FID, .value = "fid:0/HZnKEBoqDU/9" };
	struct fb_purge_counts n = { 0 };
	struct fb_session got = { 0 };
	struct fb_err err = { 0 };
	bool first;

	put(fx->st, &live);
	put(fx->st, &gone);
	put(fx->st, &idle);
	r.until = T0 + 150;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	r.until = T0 + 5000;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	assert_int_equal(
	    fb_store_once_consume(fx->st, FB_ONCE_OIDC_STATE, "st-1", T0 + 120, T0, &first, &err),
	    FB_OK);
	assert_int_equal(
	    fb_store_once_consume(fx->st, FB_ONCE_OIDC_STATE, "st-2", T0 + 900, T0, &first, &err),
	    FB_OK);

	assert_int_equal(fb_store_purge(fx->st, T0 + 50, &n, &err), FB_OK);
	assert_int_equal(n.sessions, 0);
	assert_int_equal(fb_store_purge(fx->st, T0 + 200, &n, &err), FB_OK);
	assert_int_equal(n.sessions, 2);
	assert_int_equal(n.revocations, 1);
	assert_int_equal(n.once, 1);
	assert_int_equal(fb_store_session_get(fx->st, a, &got, &err), FB_OK);
	fb_session_clear(&got);
	assert_int_equal(fb_store_session_get(fx->st, b, &got, &err), FB_ERR_NOTFOUND);
	assert_int_equal(fb_store_session_get(fx->st, c, &got, &err), FB_ERR_NOTFOUND);
	/* The longer revocation of the same fid still holds. */
	{
		struct fb_revocation_query q = { .fid = "fid:0/HZnKEBoqDU/9" };
		enum fb_revocation_kind k;

		assert_int_equal(fb_store_revoked(fx->st, &q, T0 + 200, &k, &err), FB_OK);
		assert_int_equal(k, FB_REVOCATION_FID);
	}
}

static void
test_session_background_purge(void **state)
{
	struct fixture *fx = *state;
	char id[FB_SESSION_ID_LEN + 1];
	int64_t now = (int64_t)time(NULL);
	struct fb_session s = session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "a", now + 1, 0);
	struct fb_session got = { 0 };
	struct fb_err err = { 0 };
	fb_rc rc = FB_OK;

	s.created = s.last_seen = now - 10;
	fx->opts.purge_interval = 1;
	reopen(fx);
	put(fx->st, &s);
	/* Gone within a few purge rounds, nobody asking. */
	for (int i = 0; i < 60 && (rc = fb_store_session_get(fx->st, id, &got, &err)) == FB_OK;
	     i++) {
		fb_session_clear(&got);
		usleep(100 * 1000);
	}
	assert_int_equal(rc, FB_ERR_NOTFOUND);
}

static void
test_session_list(void **state)
{
	struct fixture *fx = *state;
	char ids[7][FB_SESSION_ID_LEN + 1];
	struct fb_session s;
	struct fb_session_filter f = { .limit = 100 };
	struct fb_session *v = NULL;
	struct fb_err err = { 0 };
	size_t n = 0, total = 0;
	char last[FB_SESSION_ID_LEN + 1] = "";

	for (int i = 0; i < 7; i++) {
		char fid[64];

		(void)snprintf(
		    fid, sizeof(fid), "fid:0/%s/%d", i < 4 ? "HZnKEBoqDU" : "HWqHczeM2P", i % 2);
		s = session(ids[i], i < 4 ? "HZnKEBoqDU" : "HWqHczeM2P", fid,
		    i == 6 ? "bob" : "alice", T0 + 3600, 0);
		if (i == 5)
			s.idp_session = "idp-sid-2";
		s.fid = fid;
		put(fx->st, &s);
	}
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 7);
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(v[i - 1].id, v[i].id) < 0);
	fb_session_array_free(v, n);

	f.tenant = "HZnKEBoqDU";
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 4);
	fb_session_array_free(v, n);
	f.fid = "fid:0/HZnKEBoqDU/1";
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].fid, "fid:0/HZnKEBoqDU/1");
	fb_session_array_free(v, n);

	f = (struct fb_session_filter){ .issuer = ISS, .subject = "bob", .limit = 10 };
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, ids[6]);
	fb_session_array_free(v, n);
	f = (struct fb_session_filter){ .issuer = ISS, .idp_session = "idp-sid-2", .limit = 10 };
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, ids[5]);
	fb_session_array_free(v, n);
	f = (struct fb_session_filter){ .tenant = "nobody", .limit = 10 };
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 0);
	assert_null(v);

	/* Pages of 3 walk every session exactly once, in order. */
	f = (struct fb_session_filter){ .limit = 3 };
	do {
		f.after = last[0] != '\0' ? last : NULL;
		assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
		assert_true(n <= 3);
		for (size_t i = 0; i < n; i++) {
			if (last[0] != '\0')
				assert_true(strcmp(last, v[i].id) < 0);
			memcpy(last, v[i].id, sizeof(last));
		}
		total += n;
		fb_session_array_free(v, n);
	} while (n == 3);
	assert_int_equal(total, 7);
}

static fb_rc
count_session(void *arg, const char *session_id, struct fb_err *err)
{
	size_t *n = arg;

	(void)err;
	assert_int_equal(strlen(session_id), FB_SESSION_ID_LEN);
	(*n)++;
	return FB_OK;
}

/* A subject with more sessions than one list call returns: each is visited once. */
static void
test_revocation_sessions(void **state)
{
	struct fixture *fx = *state;
	const size_t many = (size_t)FB_STORE_LIST_MAX * 2 + 7;
	struct fb_revocation r = { .kind = FB_REVOCATION_SUBJECT, .issuer = ISS, .value = "carol" };
	struct fb_err err = { 0 };
	char id[FB_SESSION_ID_LEN + 1];
	struct fb_session s;
	size_t visited = 0;

	for (size_t i = 0; i < many; i++) {
		s = session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/7", "carol", T0 + 3600, 0);
		put(fx->st, &s);
	}
	s = session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/8", "dave", T0 + 3600, 0);
	put(fx->st, &s);
	assert_int_equal(
	    fb_store_revocation_sessions(fx->st, &r, count_session, &visited, &err), FB_OK);
	assert_int_equal(visited, many);
	r = (struct fb_revocation){
		.kind = FB_REVOCATION_IDP_SESSION, .issuer = ISS, .value = "idp-sid-1"
	};
	visited = 0;
	assert_int_equal(
	    fb_store_revocation_sessions(fx->st, &r, count_session, &visited, &err), FB_OK);
	assert_int_equal(visited, many + 1);
	r = (struct fb_revocation){ .kind = FB_REVOCATION_FID, .value = "fid:0/HZnKEBoqDU/7" };
	assert_int_equal(fb_store_revocation_sessions(fx->st, &r, count_session, &visited, &err),
	    FB_ERR_INVALID);
}

/* ---- revocations ---- */

static enum fb_revocation_kind
check(struct fb_store *st, const struct fb_revocation_query *q, int64_t now)
{
	enum fb_revocation_kind k = FB_REVOCATION_NONE;
	struct fb_err err = { 0 };

	if (fb_store_revoked(st, q, now, &k, &err) != FB_OK)
		fail_msg("revoked: %s", err.msg);
	return k;
}

static void
add_rev(struct fb_store *st, enum fb_revocation_kind kind, const char *issuer, const char *value,
    int64_t before, int64_t until)
{
	struct fb_revocation r = { .kind = kind,
		.issuer = issuer,
		.value = value,
		.before = before,
		.until = until,
		.reason = "test",
		.actor = "admin@a.example" };
	struct fb_err err = { 0 };

	if (fb_store_revoke(st, &r, T0, NULL, &err) != FB_OK)
		fail_msg("revoke: %s", err.msg);
}

static void
test_revocation_kinds(void **state)
{
	struct fixture *fx = *state;
	char id[FB_SESSION_ID_LEN + 1], other[FB_SESSION_ID_LEN + 1];
	struct fb_session s =
	    session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "alice", T0 + 9000, 0);
	struct fb_revocation_query q = { 0 };
	enum fb_revocation_kind k;
	struct fb_err err = { 0 };

	assert_int_equal(fb_session_id_new(other), FB_OK);
	q = (struct fb_revocation_query){ .session_id = id,
		.fid = s.fid,
		.tenant = s.tenant,
		.issuer = ISS,
		.subject = "alice",
		.idp_session = "idp-sid-1",
		.trust = "installation_B",
		.issued_at = T0 };
	assert_int_equal(check(fx->st, &q, T0), FB_REVOCATION_NONE);

	/* Each kind, each on something this query does not carry first: none of them hit. */
	add_rev(fx->st, FB_REVOCATION_SESSION, NULL, other, 0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_FID, NULL, "fid:0/HZnKEBoqDU/2", 0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_SUBJECT, "https://other.example", "alice", 0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_IDP_SESSION, ISS, "idp-sid-2", 0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_TENANT, NULL, "ZZZZZZZZZZ", 0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_TRUST, NULL, "installation_C", 0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_ISSUED_BEFORE, NULL, "HZnKEBoqDU", T0, T0 + 1000);
	add_rev(fx->st, FB_REVOCATION_ISSUED_BEFORE, NULL, "HWqHczeM2P", T0 + 50, T0 + 1000);
	assert_int_equal(check(fx->st, &q, T0 + 1), FB_REVOCATION_NONE);

	/* Then one hit per kind, each on a query carrying only that field. */
	add_rev(fx->st, FB_REVOCATION_SESSION, NULL, id, 0, T0 + 1000);
	assert_int_equal(check(fx->st, &(struct fb_revocation_query){ .session_id = id }, T0 + 1),
	    FB_REVOCATION_SESSION);
	add_rev(fx->st, FB_REVOCATION_FID, NULL, s.fid, 0, T0 + 1000);
	assert_int_equal(check(fx->st, &(struct fb_revocation_query){ .fid = s.fid }, T0 + 1),
	    FB_REVOCATION_FID);
	add_rev(fx->st, FB_REVOCATION_SUBJECT, ISS, "alice", 0, T0 + 1000);
	assert_int_equal(
	    check(
	        fx->st, &(struct fb_revocation_query){ .issuer = ISS, .subject = "alice" }, T0 + 1),
	    FB_REVOCATION_SUBJECT);
	/* The same subject at another IdP is someone else. */
	assert_int_equal(
	    check(fx->st,
	        &(struct fb_revocation_query){ .issuer = "https://x.example", .subject = "alice" },
	        T0 + 1),
	    FB_REVOCATION_NONE);
	add_rev(fx->st, FB_REVOCATION_IDP_SESSION, ISS, "idp-sid-1", 0, T0 + 1000);
	assert_int_equal(
	    check(fx->st,
	        &(struct fb_revocation_query){ .issuer = ISS, .idp_session = "idp-sid-1" }, T0 + 1),
	    FB_REVOCATION_IDP_SESSION);
	add_rev(fx->st, FB_REVOCATION_TENANT, NULL, "HZnKEBoqDU", 0, T0 + 1000);
	assert_int_equal(
	    check(fx->st, &(struct fb_revocation_query){ .tenant = "HZnKEBoqDU" }, T0 + 1),
	    FB_REVOCATION_TENANT);
	add_rev(fx->st, FB_REVOCATION_TRUST, NULL, "installation_B", 0, T0 + 1000);
	assert_int_equal(
	    check(fx->st, &(struct fb_revocation_query){ .trust = "installation_B" }, T0 + 1),
	    FB_REVOCATION_TRUST);

	/* Issued before T: per tenant, or every tenant with "*"; strictly before. */
	q = (struct fb_revocation_query){ .tenant = "HWqHczeM2P", .issued_at = T0 + 49 };
	assert_int_equal(check(fx->st, &q, T0 + 1), FB_REVOCATION_ISSUED_BEFORE);
	q.issued_at = T0 + 50;
	assert_int_equal(check(fx->st, &q, T0 + 1), FB_REVOCATION_NONE);
	q = (struct fb_revocation_query){ .tenant = "KKKKKKKKKK", .issued_at = T0 + 10 };
	assert_int_equal(check(fx->st, &q, T0 + 1), FB_REVOCATION_NONE);
	add_rev(fx->st, FB_REVOCATION_ISSUED_BEFORE, NULL, "*", T0 + 20, T0 + 1000);
	assert_int_equal(check(fx->st, &q, T0 + 1), FB_REVOCATION_ISSUED_BEFORE);
	q.issued_at = 0; /* not given: not checked */
	assert_int_equal(check(fx->st, &q, T0 + 1), FB_REVOCATION_NONE);

	/* The session helper puts its fields together; a revocation past until is over. */
	assert_int_equal(fb_store_session_revoked(fx->st, &s, T0 + 1, &k, &err), FB_OK);
	assert_int_not_equal(k, FB_REVOCATION_NONE);
	assert_int_equal(fb_store_session_revoked(fx->st, &s, T0 + 1000, &k, &err), FB_OK);
	assert_int_equal(k, FB_REVOCATION_NONE);

	/* Durable: every one of them is still there after a restart. */
	if (durable()) {
		reopen(fx);
		assert_int_equal(
		    check(fx->st, &(struct fb_revocation_query){ .session_id = id }, T0 + 1),
		    FB_REVOCATION_SESSION);
		assert_int_equal(
		    check(
		        fx->st, &(struct fb_revocation_query){ .trust = "installation_B" }, T0 + 1),
		    FB_REVOCATION_TRUST);
	}
}

static void
test_revocation_cursor(void **state)
{
	struct fixture *fx = *state;
	struct fb_revocation_list l = { 0 };
	struct fb_revocation r = { .kind = FB_REVOCATION_SUBJECT,
		.issuer = ISS,
		.value = "s-0",
		.until = T0 + 600,
		.reason = "offboarded",
		.actor = "admin@a.example",
		.origin = "installation_B" };
	struct fb_err err = { 0 };
	int64_t seq[10], cur = 0, max = -1;
	char v[16];
	size_t seen = 0;

	assert_int_equal(fb_store_revocation_seq(fx->st, &max, &err), FB_OK);
	assert_int_equal(max, 0);
	for (int i = 0; i < 10; i++) {
		(void)snprintf(v, sizeof(v), "s-%d", i);
		r.value = v;
		r.kind = i % 2 ? FB_REVOCATION_SUBJECT : FB_REVOCATION_TENANT;
		r.issuer = i % 2 ? ISS : NULL;
		assert_int_equal(fb_store_revoke(fx->st, &r, T0 + i, &seq[i], &err), FB_OK);
		if (i > 0)
			assert_true(seq[i] > seq[i - 1]);
	}
	assert_int_equal(fb_store_revocation_seq(fx->st, &max, &err), FB_OK);
	assert_int_equal(max, seq[9]);
	/* Pages of 4 from cursor 0 give all ten in order, fields intact. */
	do {
		assert_int_equal(fb_store_revocations_since(fx->st, cur, 4, &l, &err), FB_OK);
		for (size_t i = 0; i < l.n; i++) {
			size_t k = seen + i;

			(void)snprintf(v, sizeof(v), "s-%zu", k);
			assert_int_equal(l.v[i].seq, seq[k]);
			assert_string_equal(l.v[i].value, v);
			assert_int_equal(
			    l.v[i].kind, k % 2 ? FB_REVOCATION_SUBJECT : FB_REVOCATION_TENANT);
			if (k % 2)
				assert_string_equal(l.v[i].issuer, ISS);
			else
				assert_null(l.v[i].issuer);
			assert_int_equal(l.v[i].created, T0 + (int64_t)k);
			assert_int_equal(l.v[i].until, T0 + 600);
			assert_string_equal(l.v[i].reason, "offboarded");
			assert_string_equal(l.v[i].actor, "admin@a.example");
			assert_string_equal(l.v[i].origin, "installation_B");
			cur = l.v[i].seq;
		}
		seen += l.n;
	} while (l.n == 4);
	assert_int_equal(seen, 10);
	assert_int_equal(fb_store_revocations_since(fx->st, seq[9], 10, &l, &err), FB_OK);
	assert_int_equal(l.n, 0);
	fb_revocation_list_free(&l);

	/* The consumer's cursor per remote, with the remote store and page it counts in. */
	struct fb_feed_cursor fc = { 0 };
	static const char ea[] = "0123456789abcdef0123456789abcdef";
	static const char eb[] = "fedcba9876543210fedcba9876543210";
	fc.seq = 99;
	assert_int_equal(fb_store_cursor_get(fx->st, "installation_B", &fc, &err), FB_OK);
	assert_int_equal(fc.seq, 0);
	assert_int_equal(fc.iat, 0);
	assert_string_equal(fc.epoch, "");
	fc = (struct fb_feed_cursor){ .seq = 41, .iat = T0 };
	memcpy(fc.epoch, ea, sizeof(ea));
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_B", &fc, &err), FB_OK);
	fc.seq = 42;
	fc.iat = T0 + 2;
	memcpy(fc.epoch, eb, sizeof(eb));
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_B", &fc, &err), FB_OK);
	fc = (struct fb_feed_cursor){ .seq = 7 };
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_C", &fc, &err), FB_OK);
	if (durable())
		reopen(fx);
	assert_int_equal(fb_store_cursor_get(fx->st, "installation_B", &fc, &err), FB_OK);
	assert_int_equal(fc.seq, 42);
	assert_int_equal(fc.iat, T0 + 2);
	assert_string_equal(fc.epoch, eb);
	assert_int_equal(fb_store_cursor_get(fx->st, "installation_C", &fc, &err), FB_OK);
	assert_int_equal(fc.seq, 7);
	assert_string_equal(fc.epoch, "");
	/* Sequence numbers keep growing after a restart. */
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, &cur, &err), FB_OK);
	assert_true(cur > seq[9]);
}

/*
 * A remote's revocations are its own: a session it revokes names its issuer
 * and is not one of ours, and they are counted per remote for its quota.
 */
static void
test_revocation_origin(void **state)
{
	struct fixture *fx = *state;
	struct fb_err err = { 0 };
	struct fb_revocation_list l = { 0 };
	enum fb_revocation_kind k = FB_REVOCATION_NONE;
	char id[FB_SESSION_ID_LEN + 1];
	struct fb_session s =
	    session(id, "HWqHczeM2P", "fid:0/HWqHczeM2P/1", "alice", T0 + 3600, 600);
	struct fb_revocation r = { .kind = FB_REVOCATION_SESSION,
		.issuer = "https://sso.a.example",
		.value = id,
		.until = T0 + 3600,
		.origin = "installation_A" };
	struct fb_purge_counts pc;
	int64_t n = -1, last = 0, head = 0;

	put(fx->st, &s);
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	r.kind = FB_REVOCATION_FID;
	r.issuer = NULL;
	r.value = "fid:0/HZnKEBoqDU/1";
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	r.until = T0 + 10;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	r.origin = "installation_C";
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	if (durable())
		reopen(fx);
	/* Our own session of the same id is not revoked by it. */
	assert_int_equal(fb_store_revoked(fx->st, &(struct fb_revocation_query){ .session_id = id },
	                     T0, &k, &err),
	    FB_OK);
	assert_int_equal(k, FB_REVOCATION_NONE);
	assert_int_equal(fb_store_revocations_since(fx->st, 0, 10, &l, &err), FB_OK);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.v[0].kind, FB_REVOCATION_SESSION);
	assert_non_null(l.v[0].issuer);
	assert_string_equal(l.v[0].issuer, "https://sso.a.example");
	assert_null(l.v[1].issuer);
	fb_revocation_list_free(&l);
	/* In force only, that remote's only. */
	assert_int_equal(fb_store_revocation_count(fx->st, "installation_A", T0, &n, &err), FB_OK);
	assert_int_equal(n, 3);
	assert_int_equal(
	    fb_store_revocation_count(fx->st, "installation_A", T0 + 10, &n, &err), FB_OK);
	assert_int_equal(n, 2);
	assert_int_equal(fb_store_revocation_count(fx->st, "installation_B", T0, &n, &err), FB_OK);
	assert_int_equal(n, 0);
	/* The same revocation made here does revoke our session. */
	r = (struct fb_revocation){ .kind = FB_REVOCATION_SESSION, .value = id, .until = T0 + 60 };
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_OK);
	assert_int_equal(fb_store_revoked(fx->st, &(struct fb_revocation_query){ .session_id = id },
	                     T0, &k, &err),
	    FB_OK);
	assert_int_equal(k, FB_REVOCATION_SESSION);
	/* The head is a high-water mark: purging the newest (expired) entries leaves it. */
	r = (struct fb_revocation){
		.kind = FB_REVOCATION_FID, .value = "fid:0/x/1", .until = T0 + 5
	};
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, &last, &err), FB_OK);
	assert_int_equal(fb_store_revocation_head(fx->st, &head, &err), FB_OK);
	assert_int_equal(head, last);
	assert_int_equal(fb_store_purge(fx->st, T0 + 100, &pc, &err), FB_OK);
	assert_int_equal(fb_store_revocation_seq(fx->st, &n, &err), FB_OK);
	if (durable()) /* the databases' highest row went; memory's counter is the mark itself */
		assert_true(n < last);
	assert_int_equal(fb_store_revocation_head(fx->st, &head, &err), FB_OK);
	assert_int_equal(head, last);
}

/* The store's identity: made once, kept by a durable store, another for another store. */
static void
test_store_epoch(void **state)
{
	struct fixture *fx = *state;
	char first[FB_STORE_EPOCH_LEN + 1];
	struct fixture other = { .opts = fx->opts };
	struct fb_err err = { 0 };
	size_t len = strlen(fb_store_epoch(fx->st));

	assert_int_equal(len, FB_STORE_EPOCH_LEN);
	assert_int_equal(strspn(fb_store_epoch(fx->st), "0123456789abcdef"), FB_STORE_EPOCH_LEN);
	memcpy(first, fb_store_epoch(fx->st), sizeof(first));
	reopen(fx);
	if (durable())
		assert_string_equal(fb_store_epoch(fx->st), first);
	else
		assert_string_not_equal(fb_store_epoch(fx->st), first);
	/* Another store (a new directory; PostgreSQL: the same database after a wipe). */
	if (backend == FB_STORE_EMBEDDED) {
		(void)snprintf(other.dir, sizeof(other.dir), "/tmp/fb-store.XXXXXX");
		assert_non_null(mkdtemp(other.dir));
		other.opts.location = other.dir;
	} else if (backend == FB_STORE_POSTGRESQL) {
		fb_store_close(fx->st);
		fx->st = NULL;
		pg_wipe();
	}
	if (fb_store_open(&other.opts, &other.st, &err) != FB_OK)
		fail_msg("open: %s", err.msg);
	assert_string_not_equal(fb_store_epoch(other.st), first);
	fb_store_close(other.st);
	if (other.dir[0] != '\0')
		rm_tree(other.dir);
	if (fx->st == NULL)
		reopen(fx);
}

/* ---- watch ---- */

struct seen {
	atomic_int n;
	atomic_llong last_seq;
	char last_value[64];
};

static void
on_revocation(void *arg, const struct fb_revocation *r)
{
	struct seen *s = arg;

	(void)snprintf(s->last_value, sizeof(s->last_value), "%s", r->value);
	atomic_store(&s->last_seq, r->seq);
	atomic_fetch_add(&s->n, 1);
}

static bool
wait_seen(struct seen *s, int n, int ms)
{
	for (int i = 0; i < ms / 10 && atomic_load(&s->n) < n; i++)
		usleep(10 * 1000);
	return atomic_load(&s->n) >= n;
}

static void
test_watch(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 }, s2 = { 0 };
	struct fb_store *b = NULL;
	struct fb_err err = { 0 };
	int64_t seq;

	add_rev(fx->st, FB_REVOCATION_FID, NULL, "fid:0/HZnKEBoqDU/old", 0, T0 + 100);
	assert_int_equal(
	    fb_store_watch(fx->st, FB_STORE_WATCH_NEW, on_revocation, &s, &err), FB_OK);
	assert_int_equal(fb_store_watch(fx->st, 0, on_revocation, &s, &err), FB_ERR_INVALID);
	add_rev(fx->st, FB_REVOCATION_FID, NULL, "fid:0/HZnKEBoqDU/new", 0, T0 + 100);
	assert_true(wait_seen(&s, 1, 3000));
	assert_string_equal(s.last_value, "fid:0/HZnKEBoqDU/new");
	fb_store_unwatch(fx->st);
	fb_store_unwatch(fx->st); /* twice is fine */

	/* From a cursor: both, in order. */
	assert_int_equal(fb_store_watch(fx->st, 0, on_revocation, &s2, &err), FB_OK);
	assert_true(wait_seen(&s2, 2, 3000));
	assert_string_equal(s2.last_value, "fid:0/HZnKEBoqDU/new");

	/* A second handle (another node or process) sees what this one writes. */
	if (durable()) {
		struct seen s3 = { 0 };

		if (fb_store_open(&fx->opts, &b, &err) != FB_OK)
			fail_msg("second handle: %s", err.msg);
		assert_int_equal(
		    fb_store_watch(b, FB_STORE_WATCH_NEW, on_revocation, &s3, &err), FB_OK);
		assert_int_equal(fb_store_revoke(fx->st,
		                     &(struct fb_revocation){ .kind = FB_REVOCATION_TENANT,
		                         .value = "HWqHczeM2P",
		                         .until = T0 + 100 },
		                     T0, &seq, &err),
		    FB_OK);
		assert_true(wait_seen(&s3, 1, 3000));
		assert_int_equal(atomic_load(&s3.last_seq), seq);
		assert_string_equal(s3.last_value, "HWqHczeM2P");
		/* close stops the watch thread itself */
		fb_store_close(b);
	}
	assert_true(wait_seen(&s2, 3, 3000) || !durable());
}

/* ---- one-time use ---- */

static void
test_once(void **state)
{
	struct fixture *fx = *state;
	struct fb_err err = { 0 };
	struct fb_store *b = NULL;
	bool first = false;

	assert_int_equal(fb_store_once_consume(
	                     fx->st, FB_ONCE_SAML_ASSERTION, "_a1b2c3", T0 + 300, T0, &first, &err),
	    FB_OK);
	assert_true(first);
	assert_int_equal(fb_store_once_consume(fx->st, FB_ONCE_SAML_ASSERTION, "_a1b2c3", T0 + 300,
	                     T0 + 1, &first, &err),
	    FB_OK);
	assert_false(first);
	/* The same text as another kind is another value. */
	assert_int_equal(fb_store_once_consume(
	                     fx->st, FB_ONCE_OIDC_NONCE, "_a1b2c3", T0 + 300, T0 + 1, &first, &err),
	    FB_OK);
	assert_true(first);
	/* Past its expiry it may be used again (the protocol's own check refuses it by then). */
	assert_int_equal(fb_store_once_consume(fx->st, FB_ONCE_SAML_ASSERTION, "_a1b2c3", T0 + 900,
	                     T0 + 300, &first, &err),
	    FB_OK);
	assert_true(first);

	if (!durable())
		return;
	/* Across restarts and across handles. */
	assert_int_equal(
	    fb_store_once_consume(fx->st, FB_ONCE_AUTH_CODE, "code-1", T0 + 60, T0, &first, &err),
	    FB_OK);
	assert_true(first);
	reopen(fx);
	assert_int_equal(fb_store_once_consume(
	                     fx->st, FB_ONCE_AUTH_CODE, "code-1", T0 + 60, T0 + 1, &first, &err),
	    FB_OK);
	assert_false(first);
	if (fb_store_open(&fx->opts, &b, &err) != FB_OK)
		fail_msg("second handle: %s", err.msg);
	assert_int_equal(
	    fb_store_once_consume(b, FB_ONCE_AUTH_CODE, "code-1", T0 + 60, T0 + 2, &first, &err),
	    FB_OK);
	assert_false(first);
	assert_int_equal(
	    fb_store_once_consume(b, FB_ONCE_OIDC_STATE, "state-9", T0 + 60, T0 + 2, &first, &err),
	    FB_OK);
	assert_true(first);
	assert_int_equal(fb_store_once_consume(
	                     fx->st, FB_ONCE_OIDC_STATE, "state-9", T0 + 60, T0 + 2, &first, &err),
	    FB_OK);
	assert_false(first);
	fb_store_close(b);
}

/* Several threads on one handle, as the bridge's HTTP threads use it. */
struct thread_arg {
	struct fb_store *st;
	int wins;
	int failures;
};

static void *
consume_all(void *arg)
{
	struct thread_arg *a = arg;
	struct fb_err err = { 0 };
	char v[32], id[FB_SESSION_ID_LEN + 1];
	bool first;

	for (int i = 0; i < 200; i++) {
		struct fb_session s =
		    session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/7", "t", T0 + 60, 0);
		struct fb_session got = { 0 };

		(void)snprintf(v, sizeof(v), "thread-%d", i);
		if (fb_store_once_consume(a->st, FB_ONCE_AUTH_CODE, v, T0 + 60, T0, &first, &err) !=
		        FB_OK ||
		    fb_store_session_put(a->st, &s, &err) != FB_OK ||
		    fb_store_session_touch(a->st, id, T0 + 1, &got, &err) != FB_OK)
			a->failures++;
		fb_session_clear(&got);
		a->wins += first;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct fixture *fx = *state;
	struct thread_arg a[4];
	pthread_t t[4];
	int wins = 0;

	for (int i = 0; i < 4; i++) {
		a[i] = (struct thread_arg){ .st = fx->st };
		assert_int_equal(pthread_create(&t[i], NULL, consume_all, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].failures, 0);
		wins += a[i].wins;
	}
	assert_int_equal(wins, 200);
}

/* ---- audit ---- */

static void
test_audit(void **state)
{
	struct fixture *fx = *state;
	struct fb_audit_record r = { .time = T0,
		.kind = FB_AUDIT_LOGIN_REFUSED,
		.correlation = "req-7f3a",
		.tenant = "HZnKEBoqDU",
		.fid = "fid:0/HZnKEBoqDU/1",
		.provider = "corp-keycloak",
		.rule = "require[0]: claims.email_verified",
		.detail = "{\"reason\":\"email not verified\"}" };
	struct fb_audit_list l = { 0 };
	struct fb_err err = { 0 };
	int64_t id1 = 0, id2 = 0, id3 = 0, id4 = 0, id5 = 0;
	char long_jti[FB_STORE_NAME_MAX + 100];

	assert_int_equal(fb_store_audit_append(fx->st, &r, &id1, &err), FB_OK);
	r = (struct fb_audit_record){ .time = T0 + 1,
		.kind = FB_AUDIT_TOKEN_ISSUED,
		.correlation = "req-7f3b",
		.tenant = "HZnKEBoqDU",
		.fid = "fid:0/HZnKEBoqDU/1",
		.audience = "HWqHczeM2P",
		.jti = "4a1c0f0e-jti" };
	assert_int_equal(fb_store_audit_append(fx->st, &r, &id2, &err), FB_OK);
	r = (struct fb_audit_record){ .time = T0 + 2, .kind = FB_AUDIT_ADMIN, .actor = "root" };
	assert_int_equal(fb_store_audit_append(fx->st, &r, &id3, &err), FB_OK);
	assert_true(id1 < id2 && id2 < id3);

	/* Never a whole token, wherever it hides: the record is kept with a note instead. */
	r.detail = "token=eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJmaWQ6MC9IWm5LRUJvcURVLzEifQ.c2lnbmF0dXJl";
	assert_int_equal(fb_store_audit_append(fx->st, &r, &id4, &err), FB_OK);
	/* What outsiders sent is escaped and cut, never a reason to lose the record of a refusal.
	 */
	memset(long_jti, 'j', sizeof(long_jti) - 1);
	long_jti[sizeof(long_jti) - 1] = '\0';
	r = (struct fb_audit_record){ .time = T0 + 3,
		.kind = FB_AUDIT_LOGIN_REFUSED,
		.correlation = "req-7f3c",
		.provider = "corp\nkeycloak\x1b[2J",
		.jti = long_jti,
		.detail = "error_description=bad\r\n2026-01-01 admin logged in \xff" };
	assert_int_equal(fb_store_audit_append(fx->st, &r, &id5, &err), FB_OK);

	if (durable())
		reopen(fx);
	assert_int_equal(fb_store_audit_list(fx->st, 0, 10, &l, &err), FB_OK);
	assert_int_equal(l.n, 5);
	assert_null(strstr(l.v[3].detail, "eyJ"));
	assert_non_null(strstr(l.v[3].detail, "token"));
	assert_string_equal(l.v[4].provider, "corp\\x0akeycloak\\x1b[2J");
	assert_string_equal(
	    l.v[4].detail, "error_description=bad\\x0d\\x0a2026-01-01 admin logged in \\xff");
	assert_true(strlen(l.v[4].jti) <= FB_STORE_NAME_MAX);
	assert_non_null(strstr(l.v[4].jti, FB_ESCAPE_CUT_MARKER));
	assert_int_equal(l.v[0].id, id1);
	assert_int_equal(l.v[0].kind, FB_AUDIT_LOGIN_REFUSED);
	assert_string_equal(l.v[0].rule, "require[0]: claims.email_verified");
	assert_string_equal(l.v[0].correlation, "req-7f3a");
	assert_string_equal(l.v[0].detail, "{\"reason\":\"email not verified\"}");
	assert_null(l.v[0].jti);
	assert_string_equal(l.v[1].jti, "4a1c0f0e-jti");
	assert_string_equal(l.v[1].audience, "HWqHczeM2P");
	assert_int_equal(l.v[1].time, T0 + 1);
	assert_string_equal(l.v[2].actor, "root");
	assert_string_equal(fb_audit_kind_name(l.v[2].kind), "admin");
	assert_int_equal(fb_store_audit_list(fx->st, id2, 10, &l, &err), FB_OK);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].id, id3);
	assert_true(id3 < id4 && id4 < id5);
	fb_audit_list_free(&l);
}

/* ---- audit retention ---- */

#define DAY ((int64_t)FB_AUDIT_RETENTION_MIN)
#define RETENTION_SLACK 600 /* how much younger than the retention a "young" record is */

/* Appends an audit record of time t (a refused client, the common kind); returns its id. */
static int64_t
audit_at(struct fb_store *st, int64_t t)
{
	struct fb_audit_record r = { .time = t,
		.kind = FB_AUDIT_TOKEN_REFUSED,
		.correlation = "req-ret",
		.rule = "invalid_client" };
	struct fb_err err = { 0 };
	int64_t id = 0;

	if (fb_store_audit_append(st, &r, &id, &err) != FB_OK)
		fail_msg("audit append: %s", err.msg);
	return id;
}

/* The whole trail (a few records here) into l. */
static void
audit_all(struct fb_store *st, struct fb_audit_list *l)
{
	struct fb_err err = { 0 };

	if (fb_store_audit_list(st, 0, FB_STORE_LIST_MAX, l, &err) != FB_OK)
		fail_msg("audit list: %s", err.msg);
}

static bool
audit_has(const struct fb_audit_list *l, int64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id == id)
			return true;
	return false;
}

/*
 * Runs sql on the store's own database past the store, as anyone with the
 * bridge's store access could. True when the database refused it; its
 * reason is in why.
 */
static bool
sql_refused(const struct fixture *fx, const char *sql, char *why, size_t n)
{
	bool refused;

	why[0] = '\0';
	if (backend == FB_STORE_EMBEDDED) {
		char path[128], *msg = NULL;
		sqlite3 *db = NULL;

		(void)snprintf(path, sizeof(path), "%s/fedbridge.db", fx->dir);
		assert_int_equal(
		    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
		refused = sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK;
		(void)snprintf(why, n, "%s", msg != NULL ? msg : "");
		sqlite3_free(msg);
		sqlite3_close(db);
	} else {
		PGconn *c = PQconnectdb(pg_url);
		PGresult *r;

		assert_int_equal(PQstatus(c), CONNECTION_OK);
		r = PQexec(c, sql);
		refused = PQresultStatus(r) != PGRES_COMMAND_OK;
		(void)snprintf(why, n, "%s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
	}
	return refused;
}

static void
test_audit_retention(void **state)
{
	struct fixture *fx = *state;
	/* The SQL stores judge age by the database's clock, this machine's: times from it. */
	int64_t now = (int64_t)time(NULL);
	struct fb_store_opts short_opts = fx->opts;
	struct fb_audit_list l = { 0 };
	struct fb_purge_counts n = { 0 };
	struct fb_store *st = NULL;
	struct fb_err err = { 0 };
	int64_t ancient, old, young, fresh, later;
	size_t expired = 0;
	char sql[160], why[512];

	/* The default retention (a year) purges a record of 400 days ago, keeps one of 3 days. */
	ancient = audit_at(fx->st, now - 400 * DAY);
	old = audit_at(fx->st, now - 3 * DAY);
	assert_int_equal(fb_store_purge(fx->st, now, &n, &err), FB_OK);
	assert_int_equal(n.audit, 1);
	audit_all(fx->st, &l);
	assert_false(audit_has(&l, ancient));
	assert_true(audit_has(&l, old));

	/* Below a day is refused, by any backend. */
	short_opts.audit_retention = DAY - 1;
	assert_int_equal(fb_store_open(&short_opts, &st, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "audit retention"));
	assert_null(st);

	/* A day: what is older goes (old, when the store kept it), what is younger stays. */
	fx->opts.audit_retention = DAY;
	reopen(fx);
	old = audit_at(fx->st, now - 2 * DAY);
	young = audit_at(fx->st, now - DAY + RETENTION_SLACK);
	fresh = audit_at(fx->st, now);
	audit_all(fx->st, &l);
	for (size_t i = 0; i < l.n; i++)
		expired += l.v[i].time < now - DAY;
	assert_int_equal(expired, durable() ? 2 : 1);
	assert_int_equal(fb_store_purge(fx->st, now, &n, &err), FB_OK);
	assert_int_equal(n.audit, expired);
	audit_all(fx->st, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].id, young);
	assert_int_equal(l.v[1].id, fresh);
	/* The list resumes after a purged id; ids are never given out again. */
	assert_int_equal(fb_store_audit_list(fx->st, old, 10, &l, &err), FB_OK);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].id, young);
	assert_int_equal(fb_store_purge(fx->st, now, &n, &err), FB_OK);
	assert_int_equal(n.audit, 0);
	later = audit_at(fx->st, now);
	assert_true(later > fresh);
	fb_audit_list_free(&l);
	if (!durable())
		return;

	/* Past the store, plain SQL cannot change or delete a record within the retention. */
	(void)snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE id = %lld", (long long)young);
	assert_true(sql_refused(fx, sql, why, sizeof(why)));
	assert_non_null(strstr(why, "append-only"));
	(void)snprintf(sql, sizeof(sql), "UPDATE audit SET time = %lld WHERE id = %lld",
	    (long long)(now - 10 * DAY), (long long)young);
	assert_true(sql_refused(fx, sql, why, sizeof(why)));
	assert_non_null(strstr(why, "append-only"));
	if (backend == FB_STORE_POSTGRESQL) {
		assert_true(sql_refused(fx, "TRUNCATE audit", why, sizeof(why)));
		assert_non_null(strstr(why, "append-only"));
	}
	/* Nor lower the retention below a day. */
	assert_true(sql_refused(fx, "UPDATE audit_retention SET seconds = 60", why, sizeof(why)));
	/* A statement touching old and young records alike is refused whole. */
	old = audit_at(fx->st, now - 2 * DAY);
	assert_true(sql_refused(fx, "DELETE FROM audit", why, sizeof(why)));
	audit_all(fx->st, &l);
	assert_int_equal(l.n, 4);
	/* Without the retention row the database refuses every delete, old records' too. */
	assert_false(sql_refused(fx, "DELETE FROM audit_retention", why, sizeof(why)));
	(void)snprintf(sql, sizeof(sql), "DELETE FROM audit WHERE id = %lld", (long long)old);
	assert_true(sql_refused(fx, sql, why, sizeof(why)));
	/* The store writes it back at open; then a record past the retention may go. */
	reopen(fx);
	assert_false(sql_refused(fx, sql, why, sizeof(why)));
	audit_all(fx->st, &l);
	assert_int_equal(l.n, 3);
	assert_false(audit_has(&l, old));
	assert_true(audit_has(&l, young));
	fb_audit_list_free(&l);
}

/* ---- input checks ---- */

static void
test_invalid_inputs(void **state)
{
	struct fixture *fx = *state;
	char id[FB_SESSION_ID_LEN + 1], big[FB_STORE_URI_MAX + 2];
	struct fb_session s = session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "alice", T0 + 60, 0);
	struct fb_session t, got = { 0 };
	struct fb_revocation r = {
		.kind = FB_REVOCATION_FID, .value = "fid:0/x", .until = T0 + 60
	};
	struct fb_revocation_list l = { 0 };
	struct fb_session_filter f = { .limit = 0 };
	struct fb_session *v = NULL;
	enum fb_revocation_kind k;
	struct fb_err err = { 0 };
	size_t n;
	bool first;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* Session ids are checked for form before any lookup. */
	assert_int_equal(fb_store_session_get(fx->st, "short", &got, &err), FB_ERR_INVALID);
	assert_int_equal(fb_store_session_get(fx->st, NULL, &got, &err), FB_ERR_INVALID);
	assert_int_equal(fb_store_session_touch(fx->st, "AAAAAAAAAAAAAAAAAAAAAB", T0, NULL, &err),
	    FB_ERR_INVALID);
	assert_int_equal(
	    fb_store_session_delete(fx->st, "AAAAAAAAAAAAAAAAAAAAA=", &err), FB_ERR_INVALID);
	t = s;
	t.id[3] = '/';
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t = s;
	t.fid = NULL;
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "fid"));
	t = s;
	t.tenant = "";
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t = s;
	t.subject = "alice\nbob";
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	assert_non_null(strstr(err.msg, "control character"));
	t = s;
	t.subject = big;
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_LIMIT);
	t = s;
	t.issuer = "\xff\xfe";
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t = s;
	t.attrs = "{\"a\":1,\"a\":2}";
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t.attrs = "[1]";
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t = s;
	t.amr = "[\"pwd\", 1]";
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t = s;
	t.expires = t.created;
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	t = s;
	t.idle_timeout = -1;
	assert_int_equal(fb_store_session_put(fx->st, &t, &err), FB_ERR_INVALID);
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_ERR_INVALID);
	f.limit = FB_STORE_LIST_MAX + 1;
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_ERR_INVALID);
	f = (struct fb_session_filter){ .limit = 5, .after = "nope" };
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_ERR_INVALID);

	/* Revocations: kinds, issuers where they belong, times. */
	r.kind = (enum fb_revocation_kind)42;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.kind = FB_REVOCATION_NONE;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.kind = FB_REVOCATION_SUBJECT;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.kind = FB_REVOCATION_FID;
	r.issuer = ISS;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.issuer = NULL;
	r.kind = FB_REVOCATION_SESSION;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.kind = FB_REVOCATION_FID;
	r.until = T0;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.until = T0 + 60;
	r.kind = FB_REVOCATION_ISSUED_BEFORE;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.kind = FB_REVOCATION_FID;
	r.before = T0;
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	r.before = 0;
	r.reason = "line\r\nbreak";
	assert_int_equal(fb_store_revoke(fx->st, &r, T0, NULL, &err), FB_ERR_INVALID);
	assert_int_equal(fb_store_revocations_since(fx->st, 0, 0, &l, &err), FB_ERR_INVALID);
	assert_int_equal(fb_store_revocations_since(fx->st, -1, 5, &l, &err), FB_ERR_INVALID);
	assert_int_equal(fb_store_revoked(fx->st,
	                     &(struct fb_revocation_query){ .subject = "alice" }, T0, &k, &err),
	    FB_ERR_INVALID);
	assert_int_equal(fb_store_revoked(fx->st,
	                     &(struct fb_revocation_query){ .session_id = "x" }, T0, &k, &err),
	    FB_ERR_INVALID);

	/* One-time values: never echoed, since some (codes) are secrets. */
	assert_int_equal(
	    fb_store_once_consume(fx->st, (enum fb_once_kind)9, "v", T0 + 1, T0, &first, &err),
	    FB_ERR_INVALID);
	assert_int_equal(
	    fb_store_once_consume(fx->st, FB_ONCE_AUTH_CODE, "", T0 + 1, T0, &first, &err),
	    FB_ERR_INVALID);
	assert_int_equal(fb_store_once_consume(fx->st, FB_ONCE_AUTH_CODE, "secret-code\x01", T0 + 1,
	                     T0, &first, &err),
	    FB_ERR_INVALID);
	assert_null(strstr(err.msg, "secret-code"));
	assert_int_equal(
	    fb_store_once_consume(fx->st, FB_ONCE_AUTH_CODE, "secret-code", T0, T0, &first, &err),
	    FB_ERR_INVALID);
	assert_int_equal(
	    fb_store_once_consume(fx->st, FB_ONCE_AUTH_CODE, big, T0 + 1, T0, &first, &err),
	    FB_ERR_LIMIT);

	assert_int_equal(
	    fb_store_audit_append(fx->st,
	        &(struct fb_audit_record){ .time = T0, .kind = (enum fb_audit_kind)0 }, NULL, &err),
	    FB_ERR_INVALID);
	assert_int_equal(fb_store_audit_append(fx->st,
	                     &(struct fb_audit_record){ .kind = FB_AUDIT_ADMIN }, NULL, &err),
	    FB_ERR_INVALID);
	struct fb_feed_cursor fc = { .seq = -1 };
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_B", &fc, &err), FB_ERR_INVALID);
	fc.seq = 1;
	assert_int_equal(fb_store_cursor_set(fx->st, "", &fc, &err), FB_ERR_INVALID);
	(void)snprintf(fc.epoch, sizeof(fc.epoch), "not-hex");
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_B", &fc, &err), FB_ERR_INVALID);
	(void)snprintf(fc.epoch, sizeof(fc.epoch), "0123456789ABCDEF0123456789ABCDEF");
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_B", &fc, &err), FB_ERR_INVALID);
	fc = (struct fb_feed_cursor){ .iat = -1 };
	assert_int_equal(fb_store_cursor_set(fx->st, "installation_B", &fc, &err), FB_ERR_INVALID);
	/* A session revoked by a remote names its issuer: any text but a URL-sized one. */
	assert_int_equal(fb_store_revoke(fx->st,
	                     &(struct fb_revocation){ .kind = FB_REVOCATION_SESSION,
	                         .issuer = "",
	                         .value = "CCCCCCCCCCCCCCCCCCCCCQ",
	                         .until = T0 + 60 },
	                     T0, NULL, &err),
	    FB_ERR_INVALID);
	int64_t count = 0;
	assert_int_equal(fb_store_revocation_count(fx->st, "", T0, &count, &err), FB_ERR_INVALID);

	/* Nothing of the above reached the store. */
	f = (struct fb_session_filter){ .limit = 10 };
	assert_int_equal(fb_store_session_list(fx->st, &f, &v, &n, &err), FB_OK);
	assert_int_equal(n, 0);
	assert_int_equal(fb_store_revocations_since(fx->st, 0, 10, &l, &err), FB_OK);
	assert_int_equal(l.n, 0);
	fb_revocation_list_free(&l);
}

/* ---- the embedded backend's own failures ---- */

static void
write_file(const char *path, const char *data, size_t n, long offset)
{
	FILE *f = fopen(path, offset < 0 ? "w" : "r+");

	assert_non_null(f);
	if (offset > 0)
		assert_int_equal(fseek(f, offset, SEEK_SET), 0);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void
test_sqlite_corrupt(void **state)
{
	struct fixture *fx = *state;
	struct fb_store *st = NULL;
	char path[128], junk[4096];
	struct fb_err err = { 0 };
	struct stat sb;

	(void)snprintf(path, sizeof(path), "%s/fedbridge.db", fx->dir);
	/* Created private. */
	assert_int_equal(stat(fx->dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	for (int i = 0; i < 200; i++) {
		char id[FB_SESSION_ID_LEN + 1];
		struct fb_session s =
		    session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "a", T0 + 60, 0);

		put(fx->st, &s);
	}
	fb_store_close(fx->st);
	fx->st = NULL;

	/* Pages past the header overwritten: found by the check at open. */
	memset(junk, 0x5a, sizeof(junk));
	write_file(path, junk, sizeof(junk), 4096L * 3);
	assert_int_equal(fb_store_open(&fx->opts, &st, &err), FB_ERR_IO);
	assert_null(st);
	assert_non_null(strstr(err.msg, "corrupt store file"));
	assert_non_null(strstr(err.msg, path));

	/* A file that is not a database at all. */
	write_file(path, "this is not a database, it is a text file\n", 42, -1);
	assert_int_equal(fb_store_open(&fx->opts, &st, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "corrupt store file"));
	assert_null(st);
}

static void
test_sqlite_unwritable(void **state)
{
	struct fixture *fx = *state;
	struct fb_store_opts o = { .kind = FB_STORE_EMBEDDED };
	struct fb_store *st = NULL;
	char path[128];
	struct fb_err err = { 0 };

	/* A file where the directory should be. */
	(void)snprintf(path, sizeof(path), "%s/plain-file", fx->dir);
	write_file(path, "x", 1, -1);
	o.location = path;
	assert_int_equal(fb_store_open(&o, &st, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "not a directory"));
	/* A directory that cannot be made. */
	o.location = "/proc/fedbridge-store-test/x";
	assert_int_equal(fb_store_open(&o, &st, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "store directory /proc/fedbridge-store-test/x"));
	/* The database name taken by a directory. */
	(void)snprintf(path, sizeof(path), "%s/sub", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/sub/fedbridge.db", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/sub", fx->dir);
	o.location = path;
	assert_int_equal(fb_store_open(&o, &st, &err), FB_ERR_IO);
	assert_non_null(strstr(err.msg, "fedbridge.db"));
	/* Permissions mean nothing to root; checked when not root. */
	if (geteuid() != 0) {
		(void)snprintf(path, sizeof(path), "%s/ro", fx->dir);
		assert_int_equal(mkdir(path, 0500), 0);
		o.location = path;
		assert_int_equal(fb_store_open(&o, &st, &err), FB_ERR_IO);
		assert_non_null(strstr(err.msg, "Permission denied"));
	}
	assert_null(st);
}

static void
test_sqlite_newer_schema(void **state)
{
	struct fixture *fx = *state;
	struct fb_store *st = NULL;
	struct fb_err err = { 0 };
	char path[128];
	sqlite3 *db;

	fb_store_close(fx->st);
	fx->st = NULL;
	(void)snprintf(path, sizeof(path), "%s/fedbridge.db", fx->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "INSERT INTO fedbridge_schema VALUES (99)", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(fb_store_open(&fx->opts, &st, &err), FB_ERR_CONFIG);
	assert_non_null(strstr(err.msg, "newer"));
}

/*
 * A full disk, made with a file size limit: writes fail with a clear error,
 * nothing already stored is lost, and the store works again once there is room.
 */
static void
test_sqlite_disk_full(void **state)
{
	struct fixture *fx = *state;
	char keep[FB_SESSION_ID_LEN + 1], absent[FB_SESSION_ID_LEN + 1], attrs[4096];
	struct rlimit old, lim;
	struct fb_session s, got = { 0 };
	struct fb_err err = { 0 };
	void (*old_handler)(int);
	fb_rc rc = FB_OK;
	int i;

	s = session(keep, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "keep", T0 + 60, 0);
	put(fx->st, &s);
	(void)snprintf(attrs, sizeof(attrs), "{\"pad\":\"%0*d\"}", 3000, 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	old_handler = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)256 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (i = 0; i < 1000 && rc == FB_OK; i++) {
		char id[FB_SESSION_ID_LEN + 1];

		s = session(id, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/2", "fill", T0 + 60, 0);
		s.attrs = attrs;
		rc = fb_store_session_put(fx->st, &s, &err);
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	(void)signal(SIGXFSZ, old_handler);
	assert_int_equal(rc, FB_ERR_IO);
	assert_non_null(strstr(err.msg, "store file"));
	/* The store counts its own failure, once; not an absent record. */
	assert_int_equal(fb_store_errors(fx->st, FB_STORE_OP_SESSION_PUT), 1);
	assert_int_equal(fb_session_id_new(absent), FB_OK);
	assert_int_equal(fb_store_session_get(fx->st, absent, &got, &err), FB_ERR_NOTFOUND);
	assert_int_equal(fb_store_errors(fx->st, FB_STORE_OP_SESSION_GET), 0);
	for (int op = 0; op < FB_STORE_OPS; op++) {
		assert_string_not_equal(fb_store_op_name((enum fb_store_op)op), "unknown");
		for (int other = 0; other < op; other++)
			assert_string_not_equal(fb_store_op_name((enum fb_store_op)op),
			    fb_store_op_name((enum fb_store_op)other));
	}
	/* Still usable, and what was there before is there. */
	assert_int_equal(fb_store_session_get(fx->st, keep, &got, &err), FB_OK);
	fb_session_clear(&got);
	s = session(keep, "HZnKEBoqDU", "fid:0/HZnKEBoqDU/1", "after", T0 + 60, 0);
	put(fx->st, &s);
	reopen(fx);
	assert_int_equal(fb_store_session_get(fx->st, keep, &got, &err), FB_OK);
	fb_session_clear(&got);
}

/* ---- PostgreSQL's own failures ---- */

static void
test_pg_unreachable(void **state)
{
	struct fb_store_opts o = { .kind = FB_STORE_POSTGRESQL,
		.location = "postgresql://fedbridge@/fedbridge?host=/nonexistent-fb-socket-dir",
		.password = "pw-must-not-show" };
	struct fb_store *st = NULL;
	struct fb_err err = { 0 };

	(void)state;
	assert_int_equal(fb_store_open(&o, &st, &err), FB_ERR_IO);
	assert_null(st);
	assert_non_null(strstr(err.msg, "/nonexistent-fb-socket-dir"));
	assert_non_null(strstr(err.msg, "fedbridge"));
	assert_null(strstr(err.msg, "pw-must-not-show"));
	/* A conninfo that does not parse is not echoed (it might hold a password). */
	o.location = "host='unterminated password=pw-must-not-show";
	assert_int_equal(fb_store_open(&o, &st, &err), FB_ERR_CONFIG);
	assert_null(strstr(err.msg, "pw-must-not-show"));
}

/* ---- session ids ---- */

static void
test_session_id_shape(void **state)
{
	char id[FB_SESSION_ID_LEN + 1];

	(void)state;
	/* About 1 in 32 would start with '-' or '_' if drawn once: 5,000 draws show it. */
	for (int i = 0; i < 5000; i++) {
		assert_int_equal(fb_session_id_new(id), FB_OK);
		assert_true(fb_session_id_valid(id, strlen(id)));
		assert_true(id[0] != '-' && id[0] != '_');
	}
}

/* ---- groups ---- */

#define BACKEND_TESTS                                                                              \
	cmocka_unit_test_setup_teardown(test_session_roundtrip, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(test_session_touch_expiry, setup, teardown),           \
	    cmocka_unit_test_setup_teardown(test_session_purge, setup, teardown),                  \
	    cmocka_unit_test_setup_teardown(test_session_background_purge, setup, teardown),       \
	    cmocka_unit_test_setup_teardown(test_session_list, setup, teardown),                   \
	    cmocka_unit_test_setup_teardown(test_revocation_sessions, setup, teardown),            \
	    cmocka_unit_test_setup_teardown(test_revocation_kinds, setup, teardown),               \
	    cmocka_unit_test_setup_teardown(test_revocation_cursor, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(test_revocation_origin, setup, teardown),              \
	    cmocka_unit_test_setup_teardown(test_store_epoch, setup, teardown),                    \
	    cmocka_unit_test_setup_teardown(test_watch, setup, teardown),                          \
	    cmocka_unit_test_setup_teardown(test_once, setup, teardown),                           \
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),                        \
	    cmocka_unit_test_setup_teardown(test_audit, setup, teardown),                          \
	    cmocka_unit_test_setup_teardown(test_audit_retention, setup, teardown),                \
	    cmocka_unit_test_setup_teardown(test_invalid_inputs, setup, teardown)

int
main(void)
{
	const struct CMUnitTest common[] = { BACKEND_TESTS };
	const struct CMUnitTest sqlite_only[] = {
		cmocka_unit_test_setup_teardown(test_sqlite_corrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_disk_full, setup, teardown),
	};
	const struct CMUnitTest pg_only[] = {
		cmocka_unit_test(test_pg_unreachable),
	};
	const struct CMUnitTest ids[] = {
		cmocka_unit_test(test_session_id_shape),
	};
	int failed = cmocka_run_group_tests_name("session ids", ids, NULL, NULL);

	backend = FB_STORE_MEMORY;
	failed += cmocka_run_group_tests_name("store memory", common, NULL, NULL);
	backend = FB_STORE_EMBEDDED;
	failed += cmocka_run_group_tests_name("store embedded", common, NULL, NULL);
	failed += cmocka_run_group_tests_name("store embedded only", sqlite_only, NULL, NULL);
	failed +=
	    cmocka_run_group_tests_name("store postgresql (unreachable)", pg_only, NULL, NULL);
	pg_url = getenv("FB_TEST_PG_URL");
	if (pg_url == NULL || pg_url[0] == '\0') {
		printf("[  SKIPPED ] store postgresql: FB_TEST_PG_URL is not set "
		       "(tests/integration/store_postgres.sh runs this suite on a throwaway "
		       "server)\n");
	} else {
		backend = FB_STORE_POSTGRESQL;
		failed += cmocka_run_group_tests_name("store postgresql", common, NULL, NULL);
	}
	return failed;
}
