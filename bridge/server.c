/*
 * The HTTP side of the bridge, on GNU libmicrohttpd. Signals are handled
 * synchronously by the main thread (sigwait), so reload runs outside any
 * signal handler and the HTTP threads only ever see a whole configuration.
 */
#include "fb_bridge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVE_CONNECTION_TIMEOUT_S 30
#define SERVE_CONNECTION_LIMIT 4096
#define SERVE_CONNECTION_MEMORY (32 * 1024)

/* The configuration in force: swapped whole under the lock, read by reference. */
struct serve_state {
	pthread_mutex_t lock;
	struct fb_conf *conf; /* one reference held here */
	unsigned long generation;
};

static struct serve_state state = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Returns a new reference to the configuration in force and its generation. */
static struct fb_conf *
conf_acquire(unsigned long *generation)
{
	struct fb_conf *c;

	pthread_mutex_lock(&state.lock);
	c = fb_conf_ref(state.conf);
	*generation = state.generation;
	pthread_mutex_unlock(&state.lock);
	return c;
}

static void
conf_install(struct fb_conf *conf)
{
	struct fb_conf *old;

	pthread_mutex_lock(&state.lock);
	old = state.conf;
	state.conf = conf;
	state.generation++;
	pthread_mutex_unlock(&state.lock);
	fb_conf_unref(old);
}

static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *body, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (allow != NULL)
		(void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
handle_healthz(struct MHD_Connection *conn)
{
	unsigned long generation;
	struct fb_conf *conf = conf_acquire(&generation);
	struct fb_buf body;
	enum MHD_Result ret;

	fb_buf_init(&body, 1024);
	(void)fb_buf_printf(&body, "{\"status\":\"ok\",\"installation\":");
	(void)fb_buf_append_json_string(&body, conf->installation.name);
	(void)fb_buf_printf(&body, ",\"config_generation\":%lu}\n", generation);
	ret = body.data ? respond(conn, MHD_HTTP_OK, body.data, NULL) : MHD_NO;
	fb_buf_free(&body);
	fb_conf_unref(conf);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	bool get =
	    strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	(void)cls;
	(void)version;
	(void)upload_data;
	/* First call per request: headers only. Bodies are not read by any endpoint yet. */
	if (*req_cls == NULL) {
		*req_cls = conn;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(url, "/healthz") == 0) {
		if (!get)
			return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "{\"error\":\"method_not_allowed\"}\n", "GET, HEAD");
		return handle_healthz(conn);
	}
	return respond(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n", NULL);
}

static int
parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[8];
	const char *colon;
	size_t hlen;
	int rc;

	colon = strrchr(listen, ':');
	if (colon == NULL || strlen(colon + 1) >= sizeof(port))
		return -1;
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && listen[0] == '[' && listen[hlen - 1] == ']') {
		listen++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, listen, hlen);
	host[hlen] = '\0';
	(void)snprintf(port, sizeof(port), "%s", colon + 1);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fb_log(FB_LOG_ERROR, "listen %s: %s", listen, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void
log_diags(const struct fb_conf_diags *d, const char *what)
{
	for (size_t i = 0; i < d->n; i++)
		fb_log(FB_LOG_ERROR, "%s: %s", what, d->v[i].msg);
	if (d->dropped)
		fb_log(FB_LOG_ERROR, "%s: %zu more errors not shown", what, d->dropped);
}

static void
reload(const char *path)
{
	struct fb_conf_diags diags = { 0 };
	struct fb_conf *next, *cur;
	unsigned long generation;

	fb_log(FB_LOG_INFO, "SIGHUP: reloading %s", path);
	next = fb_conf_load_file(path, 0, &diags);
	cur = conf_acquire(&generation);
	if (next == NULL) {
		log_diags(&diags, "reload rejected");
		fb_log(FB_LOG_ERROR, "reload rejected: still serving configuration generation %lu",
		    generation);
		fb_conf_diags_free(&diags);
		fb_conf_unref(cur);
		return;
	}
	if (strcmp(next->installation.listen, cur->installation.listen) != 0)
		fb_log(FB_LOG_WARN, "installation.listen changed to %s: takes effect on restart",
		    next->installation.listen);
	fb_conf_unref(cur);
	fb_log_setup(next->log.level, next->log.format);
	conf_install(next);
	fb_log(FB_LOG_INFO, "configuration reloaded: generation %lu", generation + 1);
}

int
fb_serve(const struct fb_serve_opts *opts)
{
	struct fb_conf_diags diags = { 0 };
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	const char *listen;
	struct fb_conf *conf;
	sigset_t set;
	long ncpu;
	int sig;

	conf = fb_conf_load_file(opts->conf_path, 0, &diags);
	if (conf == NULL) {
		log_diags(&diags, "configuration");
		fb_conf_diags_free(&diags);
		return 1;
	}
	fb_log_setup(conf->log.level, conf->log.format);
	conf_install(conf);
	listen = opts->listen ? opts->listen : conf->installation.listen;
	if (parse_listen(listen, &ss, &sslen) != 0) {
		fb_log(FB_LOG_ERROR, "cannot listen on %s: expected host:port", listen);
		conf_install(NULL);
		return 1;
	}

	/* Every thread started from here inherits a mask without these signals. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(ncpu > 0 ? ncpu : 1),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SERVE_CONNECTION_TIMEOUT_S,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)SERVE_CONNECTION_LIMIT,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)SERVE_CONNECTION_MEMORY,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
	if (d == NULL) {
		fb_log(FB_LOG_ERROR, "cannot listen on %s: %s", listen, strerror(errno));
		conf_install(NULL);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	fb_log(FB_LOG_INFO, "fedbridge %s: installation %s listening on %.*s:%u", FB_VERSION,
	    conf->installation.name, (int)(strrchr(listen, ':') - listen), listen,
	    info ? (unsigned)info->port : 0U);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			reload(opts->conf_path);
			continue;
		}
		fb_log(FB_LOG_INFO, "signal %d: stopping", sig);
		break;
	}
	MHD_stop_daemon(d);
	conf_install(NULL);
	return 0;
}
