/*
 * Private to daemon/: what server.c keeps of one configuration. The
 * runtime is one configuration and everything derived from it, replaced
 * whole on reload. The login endpoints are in fb_login.h.
 */
#ifndef FB_SERVER_INT_H
#define FB_SERVER_INT_H

#include "fb_daemon.h"
#include "fb_federation.h"
#include "fb_metrics.h"
#include "fb_login.h"

#include <microhttpd.h>
#include <stdatomic.h>

/* What one configuration load produced (keys, rules, login state); see server.c. */
struct runtime {
	atomic_uint refs;
	struct fb_conf *conf;
	struct fb_federation *fed;
	struct fb_rules *rules;
	struct fb_login_site *login;
	unsigned long generation;
};

#endif
