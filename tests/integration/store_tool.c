/*
 * The store's integration helper, driven by store_postgres.sh. The store is
 * named by "embedded:<dir>" or a PostgreSQL URL (FB_TEST_PG_PASSWORD, when
 * set, is its password). Commands:
 *
 *   race STORE N DIR      touch DIR/ready-PID, wait for DIR/go, consume the
 *                         once-values race-0..N-1, print each one it won
 *   revoke-stream STORE   revoke forever, printing each acknowledged seq
 *   has-seqs STORE        read seqs on stdin; exit 1 naming any not stored
 *   outage STORE DIR      call; touch DIR/up; wait for DIR/down, expect clear
 *                         failures; touch DIR/failed; wait for DIR/back, time
 *                         until calls work again (fails past 5 s)
 *   watch STORE N         N revocations through one handle, each timed until
 *                         a second handle's watch sees it (fails past 1 s)
 */
#include "fb_sessions.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FAR_FUTURE 4000000000LL

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn static void
die(const char *what, const struct fb_err *err)
{
	fprintf(stderr, "store_tool: %s: %s\n", what, err != NULL ? err->msg : "");
	exit(2);
}

static struct fb_store *
open_store(const char *name)
{
	struct fb_store_opts o = { .password = getenv("FB_TEST_PG_PASSWORD"), .pool_size = 2 };
	struct fb_store *st = NULL;
	struct fb_err err = { 0 };

	if (strncmp(name, "embedded:", 9) == 0) {
		o.kind = FB_STORE_EMBEDDED;
		o.location = name + 9;
	} else {
		o.kind = FB_STORE_POSTGRESQL;
		o.location = name;
	}
	if (fb_store_open(&o, &st, &err) != FB_OK)
		die("open", &err);
	return st;
}

static bool
exists(const char *dir, const char *name)
{
	char path[512];
	struct stat sb;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0;
}

static void
touch(const char *dir, const char *name)
{
	char path[512];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL || fclose(f) != 0)
		die("touch", NULL);
}

/* Polls for dir/name every 5 ms for at most secs. */
static void
wait_file(const char *dir, const char *name, double secs)
{
	double end = now_s() + secs;

	while (!exists(dir, name)) {
		if (now_s() > end) {
			fprintf(stderr, "store_tool: timed out waiting for %s/%s\n", dir, name);
			exit(2);
		}
		usleep(5000);
	}
}

static int
cmd_race(const char *store, int n, const char *dir)
{
	struct fb_store *st = open_store(store);
	struct fb_err err = { 0 };
	char v[32];
	int64_t t = (int64_t)time(NULL);
	bool first;
	int won = 0, *order;

	/*
	 * Each racer takes the values in its own random order, so both keep
	 * meeting on the same values instead of one trailing the other.
	 */
	if (n < 1 || (order = malloc((size_t)n * sizeof(int))) == NULL)
		die("race: bad N", NULL);
	for (int i = 0; i < n; i++)
		order[i] = i;
	for (int i = n - 1; i > 0; i--) {
		uint32_t r;
		int j, tmp;

		if (fb_random_bytes(&r, sizeof(r)) != FB_OK)
			die("random", NULL);
		j = (int)(r % (uint32_t)(i + 1));
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	/* Both racers open their store first, then start together. */
	(void)snprintf(v, sizeof(v), "ready-%d", (int)getpid());
	touch(dir, v);
	wait_file(dir, "go", 30);
	for (int i = 0; i < n; i++) {
		(void)snprintf(v, sizeof(v), "race-%d", order[i]);
		if (fb_store_once_consume(
		        st, FB_ONCE_SAML_ASSERTION, v, t + 600, t, &first, &err) != FB_OK)
			die("consume", &err);
		if (first) {
			printf("%s\n", v);
			won++;
		}
	}
	free(order);
	fprintf(stderr, "store_tool: race: won %d of %d\n", won, n);
	fb_store_close(st);
	return 0;
}

static int
cmd_revoke_stream(const char *store)
{
	struct fb_store *st = open_store(store);
	struct fb_err err = { 0 };
	char v[64];
	int64_t seq;

	/* stdout is a pipe: each line must leave at once, after the call returned. */
	setvbuf(stdout, NULL, _IONBF, 0);
	for (long i = 0;; i++) {
		struct fb_revocation r = { .kind = FB_REVOCATION_FID,
			.value = v,
			.until = FAR_FUTURE,
			.reason = "kill test" };

		(void)snprintf(v, sizeof(v), "fid:0/HZnKEBoqDU/%ld", i);
		if (fb_store_revoke(st, &r, (int64_t)time(NULL), &seq, &err) != FB_OK)
			die("revoke", &err);
		printf("%lld\n", (long long)seq);
	}
	return 0;
}

static int
cmd_has_seqs(const char *store)
{
	struct fb_store *st = open_store(store);
	struct fb_revocation_list l = { 0 };
	struct fb_err err = { 0 };
	int64_t cur = 0, max = 0, *have = NULL;
	size_t nhave = 0, cap = 0;
	char line[64];
	long long want;
	int missing = 0, checked = 0;

	do {
		if (fb_store_revocations_since(st, cur, FB_STORE_LIST_MAX, &l, &err) != FB_OK)
			die("since", &err);
		for (size_t i = 0; i < l.n; i++) {
			if (nhave == cap) {
				cap = cap == 0 ? 4096 : cap * 2;
				if ((have = realloc(have, cap * sizeof(int64_t))) == NULL)
					die("out of memory", NULL);
			}
			have[nhave++] = l.v[i].seq;
			cur = l.v[i].seq;
		}
	} while (l.n == FB_STORE_LIST_MAX);
	fb_revocation_list_free(&l);
	if (nhave > 0)
		max = have[nhave - 1];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		size_t lo = 0, hi = nhave;
		char *end;

		want = strtoll(line, &end, 10);
		if (end == line)
			continue;

		/* have is in increasing order: binary search. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (have[mid] < want)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == nhave || have[lo] != want) {
			fprintf(
			    stderr, "store_tool: acknowledged revocation %lld is missing\n", want);
			missing++;
		}
		checked++;
	}
	printf("%d acknowledged, %zu stored (highest %lld), %d missing\n", checked, nhave,
	    (long long)max, missing);
	free(have);
	fb_store_close(st);
	return missing == 0 && checked > 0 ? 0 : 1;
}

static fb_rc
probe(struct fb_store *st, struct fb_err *err)
{
	bool first;
	char v[64];
	int64_t t = (int64_t)time(NULL);
	static int k;

	(void)snprintf(v, sizeof(v), "probe-%d-%d", (int)getpid(), k++);
	return fb_store_once_consume(st, FB_ONCE_OIDC_STATE, v, t + 60, t, &first, err);
}

static int
cmd_outage(const char *store, const char *dir)
{
	struct fb_store *st = open_store(store);
	struct fb_err err = { 0 };
	double t0, end;
	fb_rc rc;

	if (probe(st, &err) != FB_OK)
		die("first call", &err);
	touch(dir, "up");
	wait_file(dir, "down", 30);
	/* Every call fails, and says which server and why; the pool's connections are stale. */
	for (int i = 0; i < 5; i++) {
		if ((rc = probe(st, &err)) == FB_OK) {
			fprintf(stderr, "store_tool: a call worked with the server down\n");
			return 1;
		}
		if (rc != FB_ERR_IO || strstr(err.msg, "PostgreSQL ") == NULL) {
			fprintf(stderr, "store_tool: unclear failure %s: %s\n", fb_rc_name(rc),
			    err.msg);
			return 1;
		}
		if (i == 0)
			printf("server down: %s: %s\n", fb_rc_name(rc), err.msg);
	}
	touch(dir, "failed");
	wait_file(dir, "back", 60);
	/* The same handle, never reopened: it must come back by itself within 5 s. */
	t0 = now_s();
	end = t0 + 5;
	while ((rc = probe(st, &err)) != FB_OK && now_s() < end)
		usleep(20 * 1000);
	if (rc != FB_OK) {
		fprintf(stderr, "store_tool: not back 5 s after the server: %s\n", err.msg);
		return 1;
	}
	printf("server back: calls work again after %.0f ms\n", (now_s() - t0) * 1000);
	fb_store_close(st);
	return 0;
}

struct watch_seen {
	atomic_llong seq;
};

static void
on_rev(void *arg, const struct fb_revocation *r)
{
	struct watch_seen *w = arg;

	atomic_store(&w->seq, r->seq);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
cmd_watch(const char *store, int n)
{
	struct fb_store *a = open_store(store), *b = open_store(store);
	struct watch_seen w = { 0 };
	struct fb_err err = { 0 };
	double lat[100], t0;
	int64_t seq;
	char v[64];

	if (n < 1 || n > 100)
		die("watch: N is 1 to 100", NULL);
	if (fb_store_watch(b, FB_STORE_WATCH_NEW, on_rev, &w, &err) != FB_OK)
		die("watch", &err);
	for (int i = 0; i < n; i++) {
		struct fb_revocation r = {
			.kind = FB_REVOCATION_SESSION, .value = v, .until = FAR_FUTURE
		};

		if (fb_session_id_new(v) != FB_OK)
			die("session id", NULL);
		t0 = now_s();
		if (fb_store_revoke(a, &r, (int64_t)time(NULL), &seq, &err) != FB_OK)
			die("revoke", &err);
		while (atomic_load(&w.seq) < seq && now_s() - t0 < 5)
			usleep(500);
		lat[i] = (now_s() - t0) * 1000;
		if (atomic_load(&w.seq) < seq) {
			fprintf(stderr, "store_tool: revocation %lld never reached the watch\n",
			    (long long)seq);
			return 1;
		}
		/* Spread the writes over the poll period, as real revocations would be. */
		usleep(37 * 1000);
	}
	qsort(lat, (size_t)n, sizeof(double), cmp_double);
	printf("watch: %d revocations reached a second handle: median %.1f ms, max %.1f ms\n", n,
	    lat[n / 2], lat[n - 1]);
	fb_store_close(b);
	fb_store_close(a);
	return lat[n - 1] <= 1000 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "race") == 0)
		return cmd_race(argv[2], (int)strtol(argv[3], NULL, 10), argv[4]);
	if (argc == 3 && strcmp(argv[1], "revoke-stream") == 0)
		return cmd_revoke_stream(argv[2]);
	if (argc == 3 && strcmp(argv[1], "has-seqs") == 0)
		return cmd_has_seqs(argv[2]);
	if (argc == 4 && strcmp(argv[1], "outage") == 0)
		return cmd_outage(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "watch") == 0)
		return cmd_watch(argv[2], (int)strtol(argv[3], NULL, 10));
	fprintf(stderr, "usage: store_tool race|revoke-stream|has-seqs|outage|watch STORE ...\n");
	return 2;
}
