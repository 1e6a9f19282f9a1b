/* fedbridge token: issue (for operators and tests) and verify (the relay check). */
#include "cli_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_STDIN_MAX 65536
#define PEER_CERT_MAX 262144

static const char usage_token[] =
    "usage: fedbridge token issue -c FILE --tenant TID --fid FID --audience REMOTE_TID\n"
    "                             [--attr NAME=VALUE]... [--ttl 5m] [--sid SID]\n"
    "       fedbridge token verify -c FILE --tenant RECEIVING_TID --peer-cert PEM_FILE\n"
    "                             [--sender FID] TOKEN|-\n"
    "\n"
    "issue   prints a federation token for a user of a local tenant toward a trusted\n"
    "        remote tenant, bound to the client certificate configured for that trust\n"
    "verify  runs the relay check, with the revocations of the configured store, and\n"
    "        prints the decision as one JSON object; exits 0 on allow, 1 on deny, 2 on\n"
    "        usage, configuration or store errors\n"
    "\n"
    "  -c, --config FILE      the configuration file\n"
    "  -t, --tenant TID       issue: the user's tenant; verify: the receiving tenant\n"
    "  -f, --fid FID          the user's fid, fid:0/<tenantID>/<local-id>\n"
    "  -a, --audience TID     the remote tenant the token is for\n"
    "  -A, --attr NAME=VALUE  an attribute released to the remote (repeat for lists)\n"
    "  -T, --ttl DURATION     lifetime (default tokens.ttl, at most tokens.max_ttl)\n"
    "  -s, --sid SID          the session id to carry (default: a new one)\n"
    "  -p, --peer-cert FILE   the certificate the sending relay presented (PEM)\n"
    "  -S, --sender FID       the sender the message claims\n"
    "  -h, --help             this text\n";

/* NAME=VALUE into attrs; a repeated name becomes a list. */
static int
add_attr(json_t *attrs, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char name[65];
	json_t *cur, *v;

	if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(name))
		return -1;
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	if ((v = json_string(eq + 1)) == NULL)
		return -1;
	cur = json_object_get(attrs, name);
	if (cur == NULL)
		return json_object_set_new(attrs, name, v);
	if (json_is_string(cur)) {
		json_t *list = json_pack("[O]", cur);
		if (list == NULL || json_object_set_new(attrs, name, list) != 0) {
			json_decref(v);
			return -1;
		}
		cur = list;
	}
	return json_array_append_new(cur, v);
}

static int
print_decision(const struct fb_verify_result *r)
{
	json_t *o, *attrs = NULL;
	char *s;

	if (r->reason == FB_VERIFY_ALLOW) {
		attrs = json_loads(r->attrs_json, 0, NULL);
		o = json_pack("{s:s, s:s, s:s, s:o}", "decision", "allow", "fid", r->fid, "tid",
		    r->tid, "attrs", attrs ? attrs : json_object());
	} else {
		o = json_pack(
		    "{s:s, s:s}", "decision", "deny", "reason", fb_verify_reason_name(r->reason));
	}
	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		fprintf(stderr, "fedbridge token verify: out of memory\n");
		return EXIT_USAGE;
	}
	printf("%s\n", s);
	free(s);
	json_decref(o);
	return r->reason == FB_VERIFY_ALLOW ? 0 : 1;
}

static int
token_verify(const char *config, const char *tenant, const char *peer, const char *sender,
    const char *token_arg)
{
	struct fb_err err = { 0 };
	struct fb_conf *conf = NULL;
	struct fb_rules *rules = NULL;
	struct fb_federation *fed = NULL;
	struct fb_verify_trusts *trusts = NULL;
	struct fb_verifier *v = NULL;
	struct fb_store *store = NULL;
	int64_t seq = 0;
	struct fb_verify_opts vo;
	struct fb_verify_input in;
	struct fb_verify_result r;
	unsigned char cert_hash[FB_VERIFY_SHA256_LEN];
	char *pem = NULL, *token = NULL;
	size_t len = 0;
	int status = EXIT_USAGE;

	if (fb_file_read(peer, PEER_CERT_MAX, &pem, &len, &err) != FB_OK ||
	    fb_verify_cert_sha256(pem, len, cert_hash, &err) != FB_OK) {
		fprintf(stderr, "fedbridge token verify: --peer-cert %s: %s\n", peer, err.msg);
		goto done;
	}
	if (strcmp(token_arg, "-") == 0) {
		/* stdin may be a pipe: read it plainly, bounded. */
		if ((token = malloc(TOKEN_STDIN_MAX + 1)) != NULL) {
			len = fread(token, 1, TOKEN_STDIN_MAX, stdin);
			token[len] = '\0';
		}
		if (token == NULL || ferror(stdin)) {
			fprintf(stderr, "fedbridge token verify: cannot read the token\n");
			goto done;
		}
		while (len > 0 &&
		    (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
			token[--len] = '\0';
	}
	if (!fb_cli_open(config, &conf, &fed, &trusts, &rules, NULL))
		goto done;
	fb_federation_verify_opts(conf, &vo);
	vo.cache_entries = 0;
	if (fb_verifier_new(&vo, &v, &err) != FB_OK) {
		fprintf(stderr, "%s: %s\n", config, err.msg);
		fb_verify_trusts_free(trusts);
		goto done;
	}
	fb_verifier_set_trusts(v, trusts);
	fb_verifier_set_policy(v, fb_bridge_inbound_policy, rules);
	/* The relay check honours revocations: without the store there is no decision. */
	if (fb_store_open_conf(conf, &store, &err) != FB_OK ||
	    fb_bridge_revocations_load(v, conf, store, &seq, &err) != FB_OK) {
		fprintf(stderr, "fedbridge token verify: %s: store: %s\n", config, err.msg);
		goto done;
	}
	memset(&in, 0, sizeof(in));
	in.token = token ? token : token_arg;
	in.token_len = token ? len : strlen(token_arg);
	in.receiving_tenant = tenant;
	in.peer_cert_sha256 = cert_hash;
	in.sender_fid = sender;
	in.now = time(NULL);
	(void)fb_verifier_check(v, &in, &r);
	status = print_decision(&r);
	fb_verify_result_clear(&r);
done:
	fb_store_close(store);
	fb_verifier_free(v);
	fb_rules_free(rules);
	fb_federation_free(fed);
	fb_conf_unref(conf);
	free(pem);
	free(token);
	return status;
}

static int
token_issue(const char *config, const char *tenant, const char *fid, const char *audience,
    json_t *attrs, const char *ttl_text, const char *sid)
{
	struct fb_err err = { 0 };
	struct fb_conf *conf;
	struct fb_federation *fed = NULL;
	struct fb_issue_request req;
	char *token = NULL;
	int64_t ttl = 0;
	int status = 1;

	if (ttl_text != NULL && !fb_conf_duration_parse(ttl_text, &ttl))
		return fb_cli_usage("token", usage_token, "--ttl expects a duration such as 5m");
	if (!fb_cli_open(config, &conf, &fed, NULL, NULL, NULL))
		return EXIT_USAGE;
	memset(&req, 0, sizeof(req));
	req.tenant = tenant;
	req.fid = fid;
	req.audience = audience;
	req.sid = sid;
	req.attrs = attrs;
	req.ttl = ttl;
	req.now = time(NULL);
	if (fb_federation_issue(fed, &req, &token, &err) != FB_OK) {
		fprintf(stderr, "fedbridge token issue: %s\n", err.msg);
	} else {
		printf("%s\n", token);
		status = 0;
	}
	free(token);
	fb_federation_free(fed);
	fb_conf_unref(conf);
	return status;
}

int
fb_cli_token(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
		{ "tenant", required_argument, NULL, 't' }, { "fid", required_argument, NULL, 'f' },
		{ "audience", required_argument, NULL, 'a' },
		{ "attr", required_argument, NULL, 'A' }, { "ttl", required_argument, NULL, 'T' },
		{ "sid", required_argument, NULL, 's' },
		{ "peer-cert", required_argument, NULL, 'p' },
		{ "sender", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 } };
	const char *verb, *config = NULL, *tenant = NULL, *fid = NULL, *audience = NULL,
	                  *ttl = NULL, *sid = NULL, *peer = NULL, *sender = NULL;
	json_t *attrs = json_object();
	int ch, status;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		json_decref(attrs);
		fputs(usage_token, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	verb = argv[1];
	argc--;
	argv++;
	while ((ch = getopt_long(argc, argv, "c:t:f:a:A:T:s:p:S:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 't':
			tenant = optarg;
			break;
		case 'f':
			fid = optarg;
			break;
		case 'a':
			audience = optarg;
			break;
		case 'A':
			if (attrs == NULL || add_attr(attrs, optarg) != 0) {
				json_decref(attrs);
				return fb_cli_usage(
				    "token", usage_token, "--attr expects NAME=VALUE");
			}
			break;
		case 'T':
			ttl = optarg;
			break;
		case 's':
			sid = optarg;
			break;
		case 'p':
			peer = optarg;
			break;
		case 'S':
			sender = optarg;
			break;
		case 'h':
			json_decref(attrs);
			fputs(usage_token, stdout);
			return 0;
		default:
			json_decref(attrs);
			fputs(usage_token, stderr);
			return EXIT_USAGE;
		}
	}
	if (strcmp(verb, "issue") == 0) {
		if (config == NULL || tenant == NULL || fid == NULL || audience == NULL ||
		    optind != argc)
			status = fb_cli_usage(
			    "token", usage_token, "issue needs -c, --tenant, --fid and --audience");
		else
			status = token_issue(config, tenant, fid, audience, attrs, ttl, sid);
	} else if (strcmp(verb, "verify") == 0) {
		if (config == NULL || tenant == NULL || peer == NULL || optind != argc - 1)
			status = fb_cli_usage("token", usage_token,
			    "verify needs -c, --tenant, --peer-cert and a token (or -)");
		else
			status = token_verify(config, tenant, peer, sender, argv[optind]);
	} else {
		status = fb_cli_usage("token", usage_token, "the action is issue or verify");
	}
	json_decref(attrs);
	return status;
}
