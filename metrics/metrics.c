/*
 * The bridge's counters and latency histograms, rendered in the Prometheus
 * text format by GET /metrics. Label values come from the configuration
 * (providers, rules, audiences, remotes), so the set of series is bounded;
 * past METRIC_SERIES_MAX a new one is counted under the value "other".
 */
#include "fb_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define METRIC_SERIES_MAX 512
#define METRIC_LABEL_MAX 160

struct series {
	enum fb_metric family;
	char a[METRIC_LABEL_MAX], b[METRIC_LABEL_MAX];
	atomic_uint_fast64_t count;
};

static struct {
	pthread_mutex_t lock;
	struct series v[METRIC_SERIES_MAX];
	atomic_size_t n;
} reg = { .lock = PTHREAD_MUTEX_INITIALIZER };

static const struct {
	const char *name, *help, *label_a, *label_b;
} families[] = {
	[FB_METRIC_LOGIN] = { "fedbridge_logins_total", "Logins by provider and outcome.",
	    "provider", "outcome" },
	[FB_METRIC_REFUSAL] = { "fedbridge_login_refusals_total",
	    "Logins refused, by the rule that refused them.", "rule", NULL },
	[FB_METRIC_TOKEN] = { "fedbridge_tokens_issued_total",
	    "Federation tokens issued, by audience (remote tenant).", "audience", NULL },
	[FB_METRIC_IDP_REFRESH_FAILURE] = { "fedbridge_idp_refresh_failures_total",
	    "Failed refreshes of an IdP's discovery, JWKS or SAML metadata.", "provider", NULL },
	[FB_METRIC_FEED_FAILURE] = { "fedbridge_revocation_feed_failures_total",
	    "Pulls of a remote's revocation feed that failed.", "remote", NULL },
	[FB_METRIC_FEED_QUOTA] = { "fedbridge_revocation_feed_quota_total",
	    "Pages of a remote's revocation feed not taken: they would pass "
	    "remote_revocations_max.",
	    "remote", NULL },
	[FB_METRIC_ANONYMOUS_REFUSAL] = { "fedbridge_anonymous_refusals_total",
	    "Requests refused that nothing vouched for (no login state, no authenticated client "
	    "or IdP): counted here and sampled in the log, not audited one by one.",
	    "endpoint", "reason" },
	[FB_METRIC_IDP_MISCONFIGURED] = { "fedbridge_idp_misconfigured_total",
	    "Logins that failed because an IdP's discovery document, keys or SAML metadata is "
	    "wrong (404, another issuer, unparsable): retrying will not help, an admin must.",
	    "provider", NULL },
};

/* Seconds; the last bucket is +Inf. */
static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static struct {
	const char *name, *help;
	atomic_uint_fast64_t bucket[N_BOUNDS + 1];
	atomic_uint_fast64_t sum_ns;
} hists[] = {
	[FB_HIST_VALIDATE] = { .name = "fedbridge_validate_duration_seconds",
	    .help = "Time to answer one relay check at /validate." },
	[FB_HIST_LOGIN_CALLBACK] = { .name = "fedbridge_login_callback_duration_seconds",
	    .help = "Time to finish a login at /oidc/callback or /saml/acs (IdP round trips "
	            "included)." },
};

static void
label_copy(char *dst, const char *src)
{
	size_t n = src ? strnlen(src, METRIC_LABEL_MAX - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void
fb_metric_count(enum fb_metric family, const char *a, const char *b)
{
	char la[METRIC_LABEL_MAX], lb[METRIC_LABEL_MAX];
	size_t n = atomic_load(&reg.n);

	label_copy(la, a);
	label_copy(lb, b);
	/* Series are only ever appended: a lock-free look first, the lock to add. */
	for (size_t i = 0; i < n; i++) {
		struct series *s = &reg.v[i];
		if (s->family == family && strcmp(s->a, la) == 0 && strcmp(s->b, lb) == 0) {
			atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
			return;
		}
	}
	pthread_mutex_lock(&reg.lock);
	n = atomic_load(&reg.n);
	for (size_t i = 0; i < n; i++) {
		struct series *s = &reg.v[i];
		if (s->family == family && strcmp(s->a, la) == 0 && strcmp(s->b, lb) == 0) {
			atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
			pthread_mutex_unlock(&reg.lock);
			return;
		}
	}
	if (n == METRIC_SERIES_MAX) {
		pthread_mutex_unlock(&reg.lock);
		if (strcmp(la, "other") != 0)
			fb_metric_count(family, "other", b ? "other" : NULL);
		return;
	}
	reg.v[n].family = family;
	memcpy(reg.v[n].a, la, sizeof(la));
	memcpy(reg.v[n].b, lb, sizeof(lb));
	atomic_store(&reg.v[n].count, 1);
	atomic_store(&reg.n, n + 1);
	pthread_mutex_unlock(&reg.lock);
}

void
fb_metric_observe(enum fb_hist h, int64_t ns)
{
	double s;
	size_t i = 0;

	if (ns < 0)
		ns = 0;
	s = (double)ns / 1e9;
	while (i < N_BOUNDS && s > bounds[i])
		i++;
	atomic_fetch_add_explicit(&hists[h].bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&hists[h].sum_ns, (uint_fast64_t)ns, memory_order_relaxed);
}

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static void
label_value(struct fb_buf *out, const char *v)
{
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			(void)fb_buf_printf(out, "\\%c", *p);
		else if (*p == '\n')
			(void)fb_buf_append(out, "\\n", 2);
		else
			(void)fb_buf_append(out, p, 1);
	}
}

void
fb_metrics_render(struct fb_buf *out)
{
	size_t n = atomic_load(&reg.n);

	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		(void)fb_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", families[f].name,
		    families[f].help, families[f].name);
		for (size_t i = 0; i < n; i++) {
			const struct series *s = &reg.v[i];
			if ((size_t)s->family != f)
				continue;
			(void)fb_buf_printf(out, "%s{%s=\"", families[f].name, families[f].label_a);
			label_value(out, s->a);
			if (families[f].label_b != NULL) {
				(void)fb_buf_printf(out, "\",%s=\"", families[f].label_b);
				label_value(out, s->b);
			}
			(void)fb_buf_printf(
			    out, "\"} %llu\n", (unsigned long long)atomic_load(&s->count));
		}
	}
	for (size_t h = 0; h < sizeof(hists) / sizeof(hists[0]); h++) {
		uint64_t cum = 0;
		(void)fb_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", hists[h].name,
		    hists[h].help, hists[h].name);
		for (size_t i = 0; i <= N_BOUNDS; i++) {
			cum += atomic_load(&hists[h].bucket[i]);
			if (i < N_BOUNDS)
				(void)fb_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n",
				    hists[h].name, bounds[i], (unsigned long long)cum);
			else
				(void)fb_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n",
				    hists[h].name, (unsigned long long)cum);
		}
		/* The count is the +Inf bucket, as the format requires, even mid-update. */
		(void)fb_buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", hists[h].name,
		    (double)atomic_load(&hists[h].sum_ns) / 1e9, hists[h].name,
		    (unsigned long long)cum);
	}
}
