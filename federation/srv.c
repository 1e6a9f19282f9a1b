/*
 * DNS SRV lookups (RFC 2782) for finding a remote installation's bridge, as
 * Wire finds a federator through _wire-server-federator._tcp.<domain>:
 * glibc's resolver (libresolv), optionally aimed at one name server.
 */
#include "fb_federation.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRV_ANSWER_MAX 4096

/* "host:port" of an IPv4 name server into a sockaddr. */
static bool
server_parse(const char *hostport, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	long port;
	char *end;

	if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
		return false;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		return false;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &out->sin_addr) == 1;
}

fb_rc
fb_srv_answer_parse(const unsigned char *answer, size_t len, const char *name,
    struct fb_srv_target *out, struct fb_err *err)
{
	ns_msg msg;
	ns_rr rr;
	int best = -1;
	unsigned best_prio = 0, best_weight = 0;
	fb_rc rc = FB_OK;

	memset(out, 0, sizeof(*out));
	if (len > SRV_ANSWER_MAX)
		return FB_ERR_SET(
		    err, FB_ERR_INVALID, "%s: a DNS answer over %d bytes", name, SRV_ANSWER_MAX);
	if (ns_initparse(answer, (int)len, &msg) != 0)
		return FB_ERR_SET(err, FB_ERR_INVALID, "%s: an unreadable DNS answer", name);
	/* The lowest priority wins; among equals, the highest weight (no random spread:
	 * one bridge per installation is the rule, several are replicas behind one name). */
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		const unsigned char *rd;
		unsigned prio, weight, port;
		char target[NS_MAXDNAME];

		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_srv ||
		    ns_rr_rdlen(rr) < 7)
			continue;
		rd = ns_rr_rdata(rr);
		prio = ns_get16(rd);
		weight = ns_get16(rd + 2);
		port = ns_get16(rd + 4);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, target, sizeof(target)) <
		    0)
			continue;
		/* "." means the service is decidedly not offered (RFC 2782). A target goes into
		 * a URL: host name characters only (dn_expand escapes anything else). */
		if (target[0] == '\0' || strcmp(target, ".") == 0 || port == 0 ||
		    strspn(target,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
		        strlen(target))
			continue;
		if (best < 0 || prio < best_prio || (prio == best_prio && weight > best_weight)) {
			size_t tl = strlen(target);
			if (tl >= sizeof(out->host))
				continue;
			best = i;
			best_prio = prio;
			best_weight = weight;
			memcpy(out->host, target, tl + 1);
			out->port = port;
		}
	}
	if (best < 0)
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "%s: no usable SRV target", name);
	return rc;
}

fb_rc
fb_srv_lookup(const char *name, const char *server, struct fb_srv_target *out, struct fb_err *err)
{
	struct __res_state st;
	unsigned char answer[SRV_ANSWER_MAX];
	int len;
	fb_rc rc = FB_OK;

	memset(out, 0, sizeof(*out));
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0)
		return FB_ERR_SET(err, FB_ERR_IO, "%s: the resolver cannot start", name);
	if (server != NULL) {
		if (!server_parse(server, &st.nsaddr_list[0])) {
			res_nclose(&st);
			return FB_ERR_SET(err, FB_ERR_INVALID,
			    "resolver %s: expected an IPv4 address and port", server);
		}
		st.nscount = 1;
	}
	st.retry = 2;
	st.retrans = 2;
	len = res_nquery(&st, name, ns_c_in, ns_t_srv, answer, sizeof(answer));
	if (len < 0) {
		rc = FB_ERR_SET(err, FB_ERR_NOTFOUND, "no SRV record %s (%s)", name,
		    st.res_h_errno == HOST_NOT_FOUND ? "no such name"
		        : st.res_h_errno == NO_DATA  ? "no SRV data"
		                                     : "no answer");
		goto out;
	}
	rc = fb_srv_answer_parse(answer, (size_t)len, name, out, err);
out:
	res_nclose(&st);
	return rc;
}
