/*
 * fedbridge sessions list|show|revoke|audit: the store seen and changed by an
 * admin, with either backend. A revocation is durable once this returns,
 * and every bridge on the store applies it to its relay checks at once.
 */
#include "cli_int.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_sessions[] =
    "usage: fedbridge sessions list -c FILE [--tenant ID] [--fid FID]\n"
    "                               [--issuer URL --subject SUB] [--limit N]\n"
    "       fedbridge sessions show -c FILE [--] SESSION-ID\n"
    "       fedbridge sessions revoke -c FILE WHAT [--reason TEXT]\n"
    "       fedbridge sessions audit -c FILE [--after ID] [--limit N]\n"
    "\n"
    "audit prints the audit trail (logins allowed and refused with the rule,\n"
    "tokens issued, revocations), one JSON object per line, oldest first,\n"
    "after record ID (default 0).\n"
    "\n"
    "WHAT is one of:\n"
    "  --sid ID                      one bridge session\n"
    "  --fid FID                     every session and token of a user\n"
    "  --issuer URL --subject SUB    everything of an IdP user\n"
    "  --issuer URL --idp-session ID everything of one IdP session (logout)\n"
    "  --tenant ID                   a whole local tenant\n"
    "  --trust REMOTE                a remote installation: the kill switch\n"
    "  --issued-before TIME          every token and session issued before TIME\n"
    "                                (Unix seconds, 'now' or 2026-11-22T10:00:00Z;\n"
    "                                with --tenant: only that tenant's)\n"
    "\n"
    "A revocation lasts as long as anything it affects can live (the longest\n"
    "token or session lifetime of the configuration) and reaches every bridge\n"
    "sharing the store.\n";

static bool
parse_time(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;
	long long v;

	if (strcmp(s, "now") == 0) {
		*out = (int64_t)time(NULL);
		return true;
	}
	v = strtoll(s, &end, 10);
	if (end != s && *end == '\0' && v > 0) {
		*out = v;
		return true;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static void
print_time(const char *label, int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, sizeof(buf), "-");
	printf("%-12s %s\n", label, buf);
}

struct opts {
	const char *config, *sid, *fid, *tenant, *issuer, *subject, *idp_session, *trust, *before,
	    *reason;
	size_t limit;
	int64_t after;
};

static int
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = { { "config", required_argument, NULL, 'c' },
		{ "sid", required_argument, NULL, 's' }, { "fid", required_argument, NULL, 'f' },
		{ "tenant", required_argument, NULL, 't' },
		{ "issuer", required_argument, NULL, 'i' },
		{ "subject", required_argument, NULL, 'u' },
		{ "idp-session", required_argument, NULL, 'p' },
		{ "trust", required_argument, NULL, 'r' },
		{ "issued-before", required_argument, NULL, 'b' },
		{ "reason", required_argument, NULL, 'R' },
		{ "limit", required_argument, NULL, 'l' },
		{ "after", required_argument, NULL, 'a' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	int ch;
	char *end;

	memset(o, 0, sizeof(*o));
	o->limit = 100;
	while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 's':
			o->sid = optarg;
			break;
		case 'f':
			o->fid = optarg;
			break;
		case 't':
			o->tenant = optarg;
			break;
		case 'i':
			o->issuer = optarg;
			break;
		case 'u':
			o->subject = optarg;
			break;
		case 'p':
			o->idp_session = optarg;
			break;
		case 'r':
			o->trust = optarg;
			break;
		case 'b':
			o->before = optarg;
			break;
		case 'R':
			o->reason = optarg;
			break;
		case 'l':
			o->limit = (size_t)strtoul(optarg, &end, 10);
			if (*end != '\0' || o->limit == 0 || o->limit > FB_STORE_LIST_MAX)
				return fb_cli_usage("sessions", usage_sessions,
				    "--limit must be 1 to 1000, got %s", optarg);
			break;
		case 'a': {
			long long v = strtoll(optarg, &end, 10);
			if (*end != '\0' || end == optarg || v < 0)
				return fb_cli_usage("sessions", usage_sessions,
				    "--after must be a record id (0 or more), got %s", optarg);
			o->after = (int64_t)v;
			break;
		}
		case 'h':
			fputs(usage_sessions, stdout);
			return 0;
		default:
			fputs(usage_sessions, stderr);
			return EXIT_USAGE;
		}
	}
	if (o->config == NULL)
		return fb_cli_usage("sessions", usage_sessions, "-c FILE is required");
	return -1;
}

/* Loads the configuration and opens its store; NULL store (message printed) on failure. */
static struct fb_conf *
open_store(const char *config, struct fb_store **store)
{
	struct fb_conf *conf = fb_cli_load_conf(config, NULL);
	struct fb_err err = { 0 };

	*store = NULL;
	if (conf != NULL && fb_store_open_conf(conf, store, &err) != FB_OK) {
		fprintf(stderr, "%s: store: %s\n", config, err.msg);
		fb_conf_unref(conf);
		conf = NULL;
	}
	return conf;
}

static int
cmd_list(int argc, char **argv)
{
	struct opts o;
	struct fb_session_filter f = { 0 };
	struct fb_session *v = NULL;
	struct fb_store *store;
	struct fb_conf *conf;
	struct fb_err err = { 0 };
	size_t n = 0;
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind != argc)
		return fb_cli_usage(
		    "sessions", usage_sessions, "list: unexpected argument %s", argv[optind]);
	if ((conf = open_store(o.config, &store)) == NULL)
		return 1;
	f.tenant = o.tenant;
	f.fid = o.fid;
	f.issuer = o.issuer;
	f.subject = o.subject;
	f.idp_session = o.idp_session;
	f.limit = o.limit;
	if (fb_store_session_list(store, &f, &v, &n, &err) != FB_OK) {
		fprintf(stderr, "fedbridge sessions list: %s\n", err.msg);
		rc = 1;
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%s  %s  %s  %s  %s\n", v[i].id, v[i].tenant, v[i].fid,
			    v[i].provider, v[i].subject);
		fprintf(stderr, "%zu session%s\n", n, n == 1 ? "" : "s");
		rc = 0;
	}
	fb_session_array_free(v, n);
	fb_store_close(store);
	fb_conf_unref(conf);
	return rc;
}

static int
cmd_show(int argc, char **argv)
{
	struct opts o;
	struct fb_session s = { 0 };
	struct fb_store *store;
	struct fb_conf *conf;
	struct fb_err err = { 0 };
	enum fb_revocation_kind kind = FB_REVOCATION_NONE;
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind != argc - 1)
		return fb_cli_usage("sessions", usage_sessions, "show: give one session id");
	if ((conf = open_store(o.config, &store)) == NULL)
		return 1;
	if (fb_store_session_get(store, argv[optind], &s, &err) != FB_OK) {
		fprintf(stderr, "fedbridge sessions show: %s\n", err.msg);
		rc = 1;
	} else {
		(void)fb_store_session_revoked(store, &s, (int64_t)time(NULL), &kind, &err);
		printf("%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n", "session",
		    s.id, "fid", s.fid, "tenant", s.tenant, "provider", s.provider, "issuer",
		    s.issuer, "subject", s.subject);
		printf("%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n", "idp session",
		    s.idp_session ? s.idp_session : "-", "acr", s.acr ? s.acr : "-", "amr",
		    s.amr ? s.amr : "-", "attributes", s.attrs ? s.attrs : "-");
		print_time("created", s.created);
		print_time("last seen", s.last_seen);
		print_time("expires", s.expires);
		printf("%-12s %s\n", "revoked",
		    kind == FB_REVOCATION_NONE ? "no" : fb_revocation_kind_name(kind));
		rc = 0;
	}
	fb_session_clear(&s);
	fb_store_close(store);
	fb_conf_unref(conf);
	return rc;
}

/* Exactly one WHAT, with the companions it needs. */
static const char *
revocation_of(const struct opts *o, struct fb_revocation *r, int64_t now)
{
	int what = (o->sid != NULL) + (o->fid != NULL) + (o->subject != NULL) +
	    (o->idp_session != NULL) + (o->trust != NULL) + (o->before != NULL) +
	    (o->tenant != NULL && o->before == NULL);

	if (what != 1)
		return "give exactly one of --sid, --fid, --subject, --idp-session, --tenant, "
		       "--trust, --issued-before";
	if ((o->subject != NULL || o->idp_session != NULL) != (o->issuer != NULL))
		return "--subject and --idp-session go with --issuer (and --issuer with one of "
		       "them)";
	if (o->sid != NULL) {
		r->kind = FB_REVOCATION_SESSION;
		r->value = o->sid;
	} else if (o->fid != NULL) {
		r->kind = FB_REVOCATION_FID;
		r->value = o->fid;
	} else if (o->subject != NULL) {
		r->kind = FB_REVOCATION_SUBJECT;
		r->issuer = o->issuer;
		r->value = o->subject;
	} else if (o->idp_session != NULL) {
		r->kind = FB_REVOCATION_IDP_SESSION;
		r->issuer = o->issuer;
		r->value = o->idp_session;
	} else if (o->trust != NULL) {
		r->kind = FB_REVOCATION_TRUST;
		r->value = o->trust;
	} else if (o->before != NULL) {
		r->kind = FB_REVOCATION_ISSUED_BEFORE;
		r->value = o->tenant != NULL ? o->tenant : "*";
		if (!parse_time(o->before, &r->before) || r->before > now + 60)
			return "--issued-before: expected Unix seconds, 'now' or "
			       "YYYY-MM-DDTHH:MM:SSZ, not in the future";
	} else {
		r->kind = FB_REVOCATION_TENANT;
		r->value = o->tenant;
	}
	return NULL;
}

static int
cmd_revoke(int argc, char **argv)
{
	struct opts o;
	struct fb_revocation r = { 0 };
	struct fb_audit_record a = { 0 };
	struct fb_store *store;
	struct fb_conf *conf;
	struct fb_err err = { 0 };
	const struct passwd *pw = getpwuid(getuid());
	int64_t now = (int64_t)time(NULL), seq = 0, longest;
	char actor[128], detail[512];
	const char *bad;
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind != argc)
		return fb_cli_usage(
		    "sessions", usage_sessions, "revoke: unexpected argument %s", argv[optind]);
	if ((bad = revocation_of(&o, &r, now)) != NULL)
		return fb_cli_usage("sessions", usage_sessions, "revoke: %s", bad);
	if ((conf = open_store(o.config, &store)) == NULL)
		return 1;
	/* Kept as long as the longest token or session it can affect may live. */
	longest = conf->tokens.max_ttl > conf->tokens.session_ttl ? conf->tokens.max_ttl
	                                                          : conf->tokens.session_ttl;
	r.until = now + longest + conf->tokens.clock_skew;
	(void)snprintf(actor, sizeof(actor), "cli:%s", pw ? pw->pw_name : "?");
	r.actor = actor;
	r.reason = o.reason;
	rc = 1;
	if (fb_store_revoke(store, &r, now, &seq, &err) != FB_OK) {
		fprintf(stderr, "fedbridge sessions revoke: %s\n", err.msg);
	} else {
		(void)snprintf(detail, sizeof(detail), "revocation %lld: %s %s%s%s", (long long)seq,
		    fb_revocation_kind_name(r.kind), r.issuer ? r.issuer : "", r.issuer ? " " : "",
		    r.value);
		a.time = now;
		a.kind = FB_AUDIT_REVOCATION;
		a.actor = actor;
		a.detail = detail;
		a.tenant = r.kind == FB_REVOCATION_TENANT ? r.value : NULL;
		a.fid = r.kind == FB_REVOCATION_FID ? r.value : NULL;
		if (fb_store_audit_append(store, &a, NULL, &err) != FB_OK)
			fprintf(stderr, "fedbridge sessions revoke: audit: %s\n", err.msg);
		printf("revoked: %s %s (revocation %lld, kept until %lld)\n",
		    fb_revocation_kind_name(r.kind), r.value, (long long)seq, (long long)r.until);
		rc = 0;
	}
	fb_store_close(store);
	fb_conf_unref(conf);
	return rc;
}

static void
json_field(json_t *o, const char *k, const char *v)
{
	if (v != NULL)
		(void)json_object_set_new(o, k, json_string(v));
}

static int
cmd_audit(int argc, char **argv)
{
	struct opts o;
	struct fb_audit_list l = { 0 };
	struct fb_store *store;
	struct fb_conf *conf;
	struct fb_err err = { 0 };
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (optind != argc)
		return fb_cli_usage(
		    "sessions", usage_sessions, "audit: unexpected argument %s", argv[optind]);
	if ((conf = open_store(o.config, &store)) == NULL)
		return 1;
	if (fb_store_audit_list(store, o.after, o.limit, &l, &err) != FB_OK) {
		fprintf(stderr, "fedbridge sessions audit: %s\n", err.msg);
		rc = 1;
	} else {
		for (size_t i = 0; i < l.n; i++) {
			const struct fb_audit_record *a = &l.v[i];
			json_t *j = json_pack("{s:I,s:I,s:s}", "id", (json_int_t)a->id, "time",
			    (json_int_t)a->time, "kind",
			    fb_audit_kind_name(a->kind) ? fb_audit_kind_name(a->kind) : "unknown");
			char *text;
			json_field(j, "correlation", a->correlation);
			json_field(j, "tenant", a->tenant);
			json_field(j, "fid", a->fid);
			json_field(j, "provider", a->provider);
			json_field(j, "audience", a->audience);
			json_field(j, "jti", a->jti);
			json_field(j, "rule", a->rule);
			json_field(j, "actor", a->actor);
			json_field(j, "detail", a->detail);
			if ((text = json_dumps(j, JSON_COMPACT)) != NULL)
				printf("%s\n", text);
			free(text);
			json_decref(j);
		}
		rc = 0;
	}
	fb_audit_list_free(&l);
	fb_store_close(store);
	fb_conf_unref(conf);
	return rc;
}

int
fb_cli_sessions(int argc, char **argv)
{
	if (argc < 2)
		return fb_cli_usage(
		    "sessions", usage_sessions, "which command? list, show, revoke or audit");
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_sessions, stdout);
		return 0;
	}
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return cmd_revoke(argc - 1, argv + 1);
	if (strcmp(argv[1], "audit") == 0)
		return cmd_audit(argc - 1, argv + 1);
	return fb_cli_usage("sessions", usage_sessions, "unknown command %s", argv[1]);
}
