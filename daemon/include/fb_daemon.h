/*
 * fedbridge's daemon: HTTP endpoints over the current configuration, which
 * SIGHUP replaces whole (a configuration that fails to load is refused and
 * the running one keeps serving).
 */
#ifndef FB_DAEMON_H
#define FB_DAEMON_H

struct fb_serve_opts {
	const char *conf_path;
	const char *listen; /* overrides installation.listen when set; port 0 picks a free one */
	const char *relay_listen; /* overrides installation.relay_listen the same way */
	const char *pid_file; /* written once listening, removed at a clean stop; may be NULL */
};

/*
 * Runs the bridge until SIGTERM or SIGINT. Returns 0 on a clean stop, 1 when
 * it could not start (the reason is logged).
 */
int fb_serve(const struct fb_serve_opts *opts);

#endif
