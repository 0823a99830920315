/*
 * smtp_sts - MTA-STS policy discovery for a destination domain
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	void	smtp_sts_init(struct event_base *base)
 *	struct smtp_sts_job *smtp_sts_lookup(const char *domain,
 *			smtp_sts_callback cb, void *ctx)
 *	void	smtp_sts_cancel(struct smtp_sts_job *job)
 *	void	smtp_sts_shutdown(void)
 *	void	smtp_tlsrpt(const struct smtp_req *req, const char *domain,
 *			const char *result, const char *mx, const char *addr,
 *			const char *reason)
 *	int	smtp_sts_policy_host(struct smtp_req *req, const char *host,
 *			struct smtp_tls_policy *pol, struct strbuf *why)
 *	void	smtp_sts_raise_cached(struct smtp_req *req)
 *	void	smtp_sts_tls_outcome(struct smtp_sess *sess,
 *			const char *type, const char *detail)
 *
 * DESCRIPTION
 *	smtp_sts_lookup() finds the MTA-STS policy (RFC 8461) in force for
 *	a domain, without blocking the loop:
 *	  1. the TXT records of _mta-sts.DOMAIN (lib/util/dns.c); exactly
 *	     one that begins with "v=STSv1" gives the policy id;
 *	  2. a cached policy (memory, else data/mta-sts/DOMAIN under the
 *	     queue directory) that has not outlived its max_age and has
 *	     the same id is used as it is;
 *	  3. otherwise the policy is fetched: mta-sts.DOMAIN is resolved
 *	     with the same resolver as everything else (dns_resolver), and
 *	     https://mta-sts.DOMAIN/.well-known/mta-sts.txt is fetched with
 *	     lib/http pinned to those addresses (the port is
 *	     smtp_mta_sts_port, 443 but in tests). It must answer 200 with
 *	     text/plain and a policy that parses; it is then cached in
 *	     memory and on disk with the TXT id;
 *	  4. with no TXT record, a TXT lookup that failed, or a failed
 *	     fetch, a cached policy that has not expired stays in force
 *	     (RFC 8461 sections 3.1, 5.1); without one there is no policy.
 *	There is at most one such fetch per domain at a time: a lookup
 *	while one is in flight waits for it (every waiter gets the
 *	outcome), or, when a valid policy is cached, gets that one at once.
 *	The callback gets a copy of the policy (NULL: none; the callee
 *	frees it) and, when a fetch failed, the TLS-RPT result type
 *	("sts-policy-fetch-error", "sts-policy-invalid",
 *	"sts-webpki-invalid") and the reason; both NULL otherwise. It is
 *	always called later from the loop, unless the job is cancelled
 *	(smtp_sts_cancel(), NULL is fine); a cancelled job's fetch goes on
 *	and fills the cache.
 *
 *	smtp_sts_init() gives the loop on which cached policies are
 *	refreshed in the background (RFC 8461 section 10.2): a policy
 *	in the memory cache that a delivery used since it was fetched is
 *	fetched again (TXT record, then HTTPS even when the id is the
 *	same, which renews its max_age) halfway through its max_age, and
 *	at least daily; a failed refresh keeps the policy and is retried
 *	after SMTP_STS_RETRY seconds. One timer, armed for the next one
 *	due. A policy nobody used since its last fetch is left to expire.
 *
 *	smtp_sts_shutdown() cancels everything and empties the memory
 *	cache.
 *
 *	Enforcement (RFC 8461 sections 4, 5): smtp_nexthop.c drops MX
 *	hosts outside an "enforce" policy from the DNS answer (and defers
 *	when none is left); smtp_sts_policy_host(), asked by
 *	smtp_tls_policy_host() for each host before connecting, refuses a
 *	host outside the policy and raises the host's TLS policy to
 *	"secure" with match=hostname: STARTTLS required, a chain to a
 *	trusted CA (smtp_tls_CAfile), and the MX host's name in the
 *	certificate. smtp_sts_raise_cached() does the same to a request's
 *	policy when an enforce policy is cached in memory, before a
 *	cached connection is chosen, so that a connection made without
 *	the policy never serves the domain. Mode "testing" raises
 *	nothing: smtp_sts_tls_outcome(), told every TLS outcome by
 *	smtp_tls_outcome(), judges the certificate as enforce would (a
 *	trusted chain, the MX host's name) and logs what enforce would
 *	have refused.
 *
 *	TLS-RPT (smtp_tls_rpt_enable): smtp_tlsrpt() appends one outcome
 *	to the store (tlsrpt.c) under the policy domain: policy type
 *	"sts" with the policy text when there is a policy (or a fetch
 *	failure), else "no-policy-found". Recorded: policy fetch
 *	failures, MX hosts outside a policy ("validation-failure"), and
 *	for sessions under a policy (enforce or testing) each TLS outcome:
 *	"success", "starttls-not-supported", "certificate-not-trusted",
 *	"certificate-expired", "certificate-host-mismatch",
 *	"validation-failure" (a failed handshake). Sessions authenticated
 *	by DANE are recorded under policy type "tlsa" with their TLSA
 *	records (a failed TLSA match is "validation-failure"). Sessions to
 *	the MX hosts of domains without either are recorded once per
 *	connection under policy type "no-policy-found" ("success", or
 *	"starttls-not-supported" and the other failures of level may);
 *	sessions to a relayhost or a [host] next hop have no policy domain
 *	and are not recorded, nor are those at level none (no TLS tried).
 *
 * BUGS
 *	The memory cache has no size bound beyond SMTP_STS_CACHE_MAX (the
 *	oldest entry goes). Each smtp-out process refreshes its own
 *	memory cache.
 *
 * SEE ALSO
 *	RFC 8461, mta_sts.c, http.c, smtp-out(8)
 */

#include <sys/socket.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "dns.h"
#include "http.h"
#include "log.h"
#include "mta_sts.h"
#include "strbuf.h"
#include "tls.h"
#include "tlsrpt.h"
#include "xmalloc.h"

#include "smtp-out.h"

#define SMTP_STS_CACHE_MAX	1000
#define SMTP_STS_DIR		"data/mta-sts"
#define SMTP_STS_REFRESH_MAX	86400	/* refresh a used policy daily */
#define SMTP_STS_RETRY		300	/* after a failed refresh */

/* One fetch in flight for a domain; the deliveries waiting for it. */
struct smtp_sts_fetch {
	char   *domain;
	char    id[MTA_STS_ID_MAX + 1];	/* of the TXT record; "" none */
	struct dns_req *dns;
	struct http_req *http;
	struct mta_sts_policy *cached;	/* usable cached policy, or NULL */
	int     refresh;		/* a background refresh */
	int     renewed;		/* a new policy came */
	struct smtp_sts_job *waiters;
	struct smtp_sts_fetch *prev;
	struct smtp_sts_fetch *next;
};

/* One delivery waiting for a policy. */
struct smtp_sts_job {
	struct smtp_sts_fetch *fetch;	/* waited for; NULL: "ready" */
	struct mta_sts_policy *ready;	/* answered from the cache */
	struct event *ev;		/* ... by this event */
	smtp_sts_callback cb;
	void   *ctx;
	struct smtp_sts_job *prev;
	struct smtp_sts_job *next;
};

/* A policy in the memory cache. */
struct smtp_sts_entry {
	struct mta_sts_policy *p;
	time_t  used;			/* last handed to a delivery */
	time_t  retry;			/* no refresh before */
};

static struct event_base *smtp_sts_base;
static struct event *smtp_sts_timer;
static struct smtp_sts_fetch *smtp_sts_fetches;
static struct smtp_sts_job *smtp_sts_readies;	/* jobs with "ready" */
static struct smtp_sts_entry smtp_sts_cache[SMTP_STS_CACHE_MAX];
static size_t smtp_sts_ncache;

static void smtp_sts_arm(void);
static struct smtp_sts_fetch *smtp_sts_fetch_start(const char *, int);

/* smtp_sts_cache_find - index of a domain in the memory cache, or -1 */
static long
smtp_sts_cache_find(const char *domain)
{
	size_t  i;

	for (i = 0; i < smtp_sts_ncache; i++)
		if (strcasecmp(smtp_sts_cache[i].p->domain, domain) == 0)
			return ((long) i);
	return (-1);
}

/* smtp_sts_cache_put - keep a policy in memory (taken over) */
static void
smtp_sts_cache_put(struct mta_sts_policy *p, time_t used)
{
	long    i = smtp_sts_cache_find(p->domain);

	if (i >= 0) {
		mta_sts_free(smtp_sts_cache[i].p);
		smtp_sts_cache[i].p = p;
		smtp_sts_cache[i].retry = 0;
		if (used > smtp_sts_cache[i].used)
			smtp_sts_cache[i].used = used;
		return;
	}
	if (smtp_sts_ncache == SMTP_STS_CACHE_MAX) {
		mta_sts_free(smtp_sts_cache[0].p);
		memmove(smtp_sts_cache, smtp_sts_cache + 1,
			(SMTP_STS_CACHE_MAX - 1) * sizeof(smtp_sts_cache[0]));
		smtp_sts_ncache--;
	}
	smtp_sts_cache[smtp_sts_ncache].p = p;
	smtp_sts_cache[smtp_sts_ncache].used = used;
	smtp_sts_cache[smtp_sts_ncache].retry = 0;
	smtp_sts_ncache++;
}

/* smtp_sts_cache_get - a copy of the cached policy, if still valid */
static struct mta_sts_policy *
smtp_sts_cache_get(const char *domain)
{
	struct mta_sts_policy *p;
	long    i = smtp_sts_cache_find(domain);
	time_t  now = time(NULL);

	if (i < 0) {
		if ((p = mta_sts_cache_load(SMTP_STS_DIR, domain)) == NULL)
			return (NULL);
		smtp_sts_cache_put(p, 0);
		i = (long) smtp_sts_ncache - 1;
	}
	p = smtp_sts_cache[i].p;
	if (mta_sts_expired(p, now))
		return (NULL);
	smtp_sts_cache[i].used = now;
	smtp_sts_arm();
	return (mta_sts_copy(p));
}

/* smtp_sts_due - when a cached policy wants its background refresh:
 *	halfway through max_age, at least daily, once per use */
static time_t
smtp_sts_due(const struct smtp_sts_entry *e)
{
	long    half = e->p->max_age / 2;
	time_t  due;

	if (e->used < e->p->fetched || mta_sts_expired(e->p, time(NULL)))
		return (0);			/* unused since: let it go */
	due = e->p->fetched + (half < SMTP_STS_REFRESH_MAX ? half :
			       SMTP_STS_REFRESH_MAX);
	return (due > e->retry ? due : e->retry);
}

/* smtp_sts_fetch_find - the fetch in flight for a domain, or NULL */
static struct smtp_sts_fetch *
smtp_sts_fetch_find(const char *domain)
{
	struct smtp_sts_fetch *f;

	for (f = smtp_sts_fetches; f; f = f->next)
		if (strcmp(f->domain, domain) == 0)
			return (f);
	return (NULL);
}

/* smtp_sts_refresh_event - start the refreshes that are due */
static void
smtp_sts_refresh_event(evutil_socket_t unused_fd, short unused_what,
		               void *unused_ctx)
{
	time_t  now = time(NULL);
	time_t  due;
	size_t  i;

	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	for (i = 0; i < smtp_sts_ncache; i++) {
		due = smtp_sts_due(&smtp_sts_cache[i]);
		if (due == 0 || due > now
		    || smtp_sts_fetch_find(smtp_sts_cache[i].p->domain))
			continue;
		/* Not again before this one ends (or fails). */
		smtp_sts_cache[i].retry = now + SMTP_STS_RETRY;
		(void) smtp_sts_fetch_start(smtp_sts_cache[i].p->domain, 1);
	}
	smtp_sts_arm();
}

/* smtp_sts_arm - wake up for the next refresh that is due */
static void
smtp_sts_arm(void)
{
	struct timeval tv = {0, 0};
	time_t  now = time(NULL);
	time_t  next = 0;
	time_t  due;
	size_t  i;

	if (smtp_sts_timer == NULL)
		return;
	for (i = 0; i < smtp_sts_ncache; i++) {
		due = smtp_sts_due(&smtp_sts_cache[i]);
		if (due && (next == 0 || due < next)
		    && smtp_sts_fetch_find(smtp_sts_cache[i].p->domain) == NULL)
			next = due;
	}
	if (next == 0) {
		evtimer_del(smtp_sts_timer);
		return;
	}
	tv.tv_sec = next > now ? next - now : 0;
	evtimer_add(smtp_sts_timer, &tv);
}

/* smtp_sts_init - the loop for background refreshes */
void
smtp_sts_init(struct event_base *base)
{
	smtp_sts_base = base;
	if (smtp_sts_timer == NULL
	    && (smtp_sts_timer = evtimer_new(base, smtp_sts_refresh_event,
					     NULL)) == NULL)
		log_fatal("MTA-STS: cannot create a timer event");
}

/* smtp_sts_unlink - take a job out of its list */
static void
smtp_sts_unlink(struct smtp_sts_job *job)
{
	struct smtp_sts_job **head = job->fetch ? &job->fetch->waiters :
	&smtp_sts_readies;

	if (job->prev)
		job->prev->next = job->next;
	else
		*head = job->next;
	if (job->next)
		job->next->prev = job->prev;
	job->prev = job->next = NULL;
}

/* smtp_sts_job_free - unlink and free a job */
static void
smtp_sts_job_free(struct smtp_sts_job *job)
{
	smtp_sts_unlink(job);
	if (job->ev)
		event_free(job->ev);
	mta_sts_free(job->ready);
	xfree(job);
}

/* smtp_sts_fetch_free - unlink and free a fetch (its waiters go too) */
static void
smtp_sts_fetch_free(struct smtp_sts_fetch *f)
{
	while (f->waiters)
		smtp_sts_job_free(f->waiters);
	dns_cancel(f->dns);
	http_cancel(f->http);
	mta_sts_free(f->cached);
	xfree(f->domain);
	if (f->prev)
		f->prev->next = f->next;
	else if (smtp_sts_fetches == f)
		smtp_sts_fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	xfree(f);
}

/* smtp_sts_done - hand the outcome to every waiter, end the fetch */
static void
smtp_sts_done(struct smtp_sts_fetch *f, struct mta_sts_policy *p,
	              const char *fail_type, const char *fail_why)
{
	struct smtp_sts_job *job;
	smtp_sts_callback cb;
	void   *ctx;
	long    i;

	f->dns = NULL;
	f->http = NULL;
	/* Out of the list first: a callback may start a new fetch. */
	if (f->prev)
		f->prev->next = f->next;
	else
		smtp_sts_fetches = f->next;
	if (f->next)
		f->next->prev = f->prev;
	f->prev = f->next = NULL;
	if (f->refresh && !f->renewed
	    && (i = smtp_sts_cache_find(f->domain)) >= 0)
		smtp_sts_cache[i].retry = time(NULL) + SMTP_STS_RETRY;
	while ((job = f->waiters) != NULL) {
		smtp_sts_unlink(job);
		cb = job->cb;
		ctx = job->ctx;
		xfree(job);
		cb(p ? mta_sts_copy(p) : NULL, fail_type, fail_why, ctx);
	}
	mta_sts_free(p);
	smtp_sts_fetch_free(f);
	smtp_sts_arm();
}

/* smtp_sts_fetch_failed - keep a cached policy, or none; say why */
static void
smtp_sts_fetch_failed(struct smtp_sts_fetch *f, const char *type,
		              const char *why)
{
	struct mta_sts_policy *p = f->cached;

	log_warn("MTA-STS policy %s for %s failed: %s%s",
		 f->refresh ? "refresh" : "fetch", f->domain, why,
		 p ? "; using the cached policy" : "");
	f->cached = NULL;
	smtp_sts_done(f, p, type, why);
}

/* smtp_sts_http_cb - the policy body */
static void
smtp_sts_http_cb(const struct http_result *res, void *ctx)
{
	struct smtp_sts_fetch *f = ctx;
	struct strbuf *err;
	struct mta_sts_policy *p;
	size_t  n;

	f->http = NULL;
	err = strbuf_new(256, 0);
	if (*res->error) {
		strbuf_setf(err, "https://mta-sts.%s/: %s", f->domain,
			    res->error);
		smtp_sts_fetch_failed(f, strcasestr(res->error, "certificate")
				      || strcasestr(res->error, "SSL") ?
				      "sts-webpki-invalid" :
				      "sts-policy-fetch-error", STRBUF_STR(err));
		goto out;
	}
	if (res->status != 200) {
		strbuf_setf(err, "https://mta-sts.%s/: HTTP status %ld",
			    f->domain, res->status);
		smtp_sts_fetch_failed(f, "sts-policy-fetch-error",
				      STRBUF_STR(err));
		goto out;
	}
	n = strcspn(res->content_type, "; ");
	if (n != 10 || strncasecmp(res->content_type, "text/plain", n) != 0) {
		strbuf_setf(err, "https://mta-sts.%s/: media type \"%.60s\", "
			    "not text/plain", f->domain, res->content_type);
		smtp_sts_fetch_failed(f, "sts-policy-invalid",
				      STRBUF_STR(err));
		goto out;
	}
	if ((p = mta_sts_parse(f->domain, res->body, res->len, err))
	    == NULL) {
		strbuf_printf(err, " (policy of %s)", f->domain);
		smtp_sts_fetch_failed(f, "sts-policy-invalid",
				      STRBUF_STR(err));
		goto out;
	}
	snprintf(p->id, sizeof(p->id), "%s", f->id);
	p->fetched = time(NULL);
	strbuf_reset(err);
	if (mta_sts_cache_save(SMTP_STS_DIR, p, err) < 0)
		log_warn("MTA-STS policy cache: %s", STRBUF_STR(err));
	log_info("MTA-STS policy for %s fetched: id=%s mode=%s max_age=%ld%s",
		 p->domain, p->id, mta_sts_mode_str(p->mode), p->max_age,
		 f->refresh ? " (background refresh)" : "");
	f->renewed = 1;
	smtp_sts_cache_put(mta_sts_copy(p), f->waiters ? p->fetched : 0);
	smtp_sts_done(f, p, NULL, NULL);
out:
	strbuf_free(err);
}

/* smtp_sts_host_cb - the addresses of mta-sts.DOMAIN: fetch */
static void
smtp_sts_host_cb(struct dns_result *res, void *ctx)
{
	struct smtp_sts_fetch *f = ctx;
	struct strbuf *url = strbuf_new(256, 0);
	struct strbuf *pin = strbuf_new(256, 0);
	struct http_opts opts;
	size_t  i;

	f->dns = NULL;
	if (res->status != DNS_OK) {
		strbuf_setf(url, "mta-sts.%s: %s", f->domain, res->reason);
		smtp_sts_fetch_failed(f, "sts-policy-fetch-error",
				      STRBUF_STR(url));
		goto out;
	}
	strbuf_setf(pin, "mta-sts.%s:%ld:", f->domain, smtp_var.sts_port);
	for (i = 0; i < res->count; i++)
		strbuf_printf(pin, res->addrs[i].family == AF_INET6 ?
			      "%s[%s]" : "%s%s", i ? "," : "",
			      res->addrs[i].addr);
	if (smtp_var.sts_port == 443)
		strbuf_setf(url, "https://mta-sts.%s/.well-known/mta-sts.txt",
			    f->domain);
	else
		strbuf_setf(url, "https://mta-sts.%s:%ld/.well-known/"
			    "mta-sts.txt", f->domain, smtp_var.sts_port);
	memset(&opts, 0, sizeof(opts));
	opts.timeout = smtp_var.sts_timeout;
	opts.max_bytes = MTA_STS_POLICY_MAX;
	opts.resolve = STRBUF_STR(pin);
	f->http = http_get(STRBUF_STR(url), &opts, smtp_sts_http_cb, f);
out:
	dns_result_free(res);
	strbuf_free(url);
	strbuf_free(pin);
}

/* smtp_sts_txt_cb - the _mta-sts TXT records */
static void
smtp_sts_txt_cb(struct dns_rrset *rs, void *ctx)
{
	struct smtp_sts_fetch *f = ctx;
	struct strbuf *txt = strbuf_new(256, 0);
	struct strbuf *name;
	struct mta_sts_policy *p;
	char    id[MTA_STS_ID_MAX + 1];
	size_t  nsts = 0;
	size_t  i;

	f->dns = NULL;
	for (i = 0; rs->status == DNS_OK && i < rs->count; i++) {
		strbuf_reset(txt);
		if (dns_txt_decode(rs->data[i], rs->len[i], txt) < 0
		    || strncmp(STRBUF_STR(txt), "v=STSv1", 7) != 0)
			continue;
		if (nsts++ == 0 && mta_sts_txt_parse(STRBUF_STR(txt), id,
						     sizeof(id)) == 0)
			snprintf(f->id, sizeof(f->id), "%s", id);
	}
	strbuf_free(txt);
	if (nsts != 1)
		f->id[0] = 0;
	if (rs->status == DNS_TEMPFAIL)
		log_warn("MTA-STS: %s", rs->reason);
	dns_rrset_free(rs);
	/*
	 * No (valid) record: what we have stays (RFC 8461 5.1). The same id:
	 * the policy we have, unless this is a refresh, which fetches it
	 * again to renew its max_age (RFC 8461 10.2).
	 */
	if (f->id[0] == 0 || (f->cached && !f->refresh
			      && strcmp(f->cached->id, f->id) == 0)) {
		p = f->cached;
		f->cached = NULL;
		smtp_sts_done(f, p, NULL, NULL);
		return;
	}
	name = strbuf_new(256, 0);
	strbuf_setf(name, "mta-sts.%s", f->domain);
	f->dns = dns_lookup_host(STRBUF_STR(name), smtp_sts_host_cb, f);
	strbuf_free(name);
}

/* smtp_sts_fetch_start - check the TXT record, fetch if needed */
static struct smtp_sts_fetch *
smtp_sts_fetch_start(const char *domain, int refresh)
{
	struct smtp_sts_fetch *f = xcalloc(1, sizeof(*f));
	struct strbuf *name = strbuf_new(256, 0);
	long    i;

	f->domain = xstrdup(domain);
	f->refresh = refresh;
	f->next = smtp_sts_fetches;
	if (smtp_sts_fetches)
		smtp_sts_fetches->prev = f;
	smtp_sts_fetches = f;
	if (refresh) {
		/* Memory only: a refresh does not count as a use. */
		i = smtp_sts_cache_find(domain);
		if (i >= 0 && !mta_sts_expired(smtp_sts_cache[i].p, time(NULL)))
			f->cached = mta_sts_copy(smtp_sts_cache[i].p);
	} else
		f->cached = smtp_sts_cache_get(domain);
	strbuf_setf(name, "_mta-sts.%s", domain);
	f->dns = dns_lookup_rr(STRBUF_STR(name), DNS_TYPE_TXT,
			       smtp_sts_txt_cb, f);
	strbuf_free(name);
	return (f);
}

/* smtp_sts_ready_event - a policy known at once, handed over later */
static void
smtp_sts_ready_event(evutil_socket_t unused_fd, short unused_what,
		             void *ctx)
{
	struct smtp_sts_job *job = ctx;
	struct mta_sts_policy *p = job->ready;
	smtp_sts_callback cb = job->cb;
	void   *cbctx = job->ctx;

	(void) unused_fd;
	(void) unused_what;
	job->ready = NULL;
	smtp_sts_job_free(job);
	cb(p, NULL, NULL, cbctx);
}

/* smtp_sts_lookup - start finding the policy of a domain */
struct smtp_sts_job *
smtp_sts_lookup(const char *domain, smtp_sts_callback cb, void *ctx)
{
	struct smtp_sts_job *job = xcalloc(1, sizeof(*job));
	struct smtp_sts_fetch *f;
	struct timeval tv = {0, 0};
	char   *name = xstrdup(domain);
	size_t  n;

	n = strlen(name);
	if (n > 1 && name[n - 1] == '.')
		name[n - 1] = 0;
	for (n = 0; name[n]; n++)
		name[n] = (char) tolower((unsigned char) name[n]);
	job->cb = cb;
	job->ctx = ctx;
	if ((f = smtp_sts_fetch_find(name)) != NULL && smtp_sts_base
	    && (job->ready = smtp_sts_cache_get(name)) != NULL) {
		/* A fetch is in flight, a valid policy cached: use it now. */
		job->next = smtp_sts_readies;
		if (smtp_sts_readies)
			smtp_sts_readies->prev = job;
		smtp_sts_readies = job;
		job->ev = evtimer_new(smtp_sts_base, smtp_sts_ready_event, job);
		if (job->ev == NULL)
			log_fatal("MTA-STS: cannot create a timer event");
		evtimer_add(job->ev, &tv);
		xfree(name);
		return (job);
	}
	/* Wait for the fetch in flight, or start one: one per domain. */
	if (f == NULL)
		f = smtp_sts_fetch_start(name, 0);
	job->fetch = f;
	job->next = f->waiters;
	if (f->waiters)
		f->waiters->prev = job;
	f->waiters = job;
	xfree(name);
	return (job);
}

/* smtp_sts_cancel - abandon a job (the fetch goes on for the cache) */
void
smtp_sts_cancel(struct smtp_sts_job *job)
{
	if (job)
		smtp_sts_job_free(job);
}

/* smtp_sts_shutdown - cancel everything, empty the cache */
void
smtp_sts_shutdown(void)
{
	size_t  i;

	while (smtp_sts_fetches)
		smtp_sts_fetch_free(smtp_sts_fetches);
	while (smtp_sts_readies)
		smtp_sts_job_free(smtp_sts_readies);
	for (i = 0; i < smtp_sts_ncache; i++)
		smtp_sts_cache[i].p = mta_sts_free(smtp_sts_cache[i].p);
	smtp_sts_ncache = 0;
	if (smtp_sts_timer) {
		event_free(smtp_sts_timer);
		smtp_sts_timer = NULL;
	}
	smtp_sts_base = NULL;
}

/* smtp_tlsrpt - record one outcome for TLS-RPT (smtp_tls_rpt_enable) */
void
smtp_tlsrpt(const struct smtp_req *req, const char *domain,
	            const char *result, const char *mx, const char *addr,
	            const char *reason)
{
	struct tlsrpt_event ev;
	struct strbuf *err;

	if (!smtp_var.tlsrpt_enable)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.domain = req->sts ? req->sts->domain : domain;
	ev.policy_type = req->sts || strncmp(result, "sts-", 4) == 0 ? "sts" :
		"no-policy-found";
	ev.policy_text = req->sts ? req->sts->text : NULL;
	ev.result = result;
	ev.mx_host = mx;
	ev.receiving_ip = addr;
	ev.reason = reason;
	err = strbuf_new(256, 0);
	if (tlsrpt_record(TLSRPT_STORE, &ev, time(NULL), err) < 0)
		log_warn("TLS-RPT store: %s", STRBUF_STR(err));
	strbuf_free(err);
}

/* smtp_sts_policy_host - enforce: the host must be in the policy, TLS
 *	verified with its name (the "secure" level, match=hostname) */
int
smtp_sts_policy_host(struct smtp_req *req, const char *host,
		             struct smtp_tls_policy *pol, struct strbuf *why)
{
	const struct mta_sts_policy *p = req->sts;
	struct strbuf *src;

	if (p == NULL || p->mode != MTA_STS_MODE_ENFORCE)
		return (0);
	if (!mta_sts_mx_match(p, host)) {
		strbuf_setf(why, "MTA-STS policy of %s: MX host %s is not in "
			    "the policy", p->domain, host);
		return (-1);
	}
	/* DANE, when the host has usable TLSA records, wins (RFC 8461 2). */
	if (pol->level == SMTP_TLS_DANE)
		return (0);
	src = strbuf_new(128, 0);
	strbuf_setf(src, "MTA-STS policy of %s", p->domain);
	smtp_tls_policy_raise(pol, SMTP_TLS_SECURE, "hostname",
			      STRBUF_STR(src));
	strbuf_free(src);
	return (0);
}

/* smtp_sts_raise_cached - a known enforce policy raises the request's
 *	policy before a cached connection is chosen for it */
void
smtp_sts_raise_cached(struct smtp_req *req)
{
	struct mta_sts_policy *p;

	if (!smtp_var.sts_enable || req->ndest == 0 || !req->dests[0].mx)
		return;
	if ((p = smtp_sts_cache_get(req->dests[0].host)) == NULL)
		return;
	if (p->mode == MTA_STS_MODE_ENFORCE)
		smtp_tls_policy_raise(&req->tls, SMTP_TLS_SECURE, "hostname",
				      "MTA-STS");
	mta_sts_free(p);
}

/* smtp_sts_cert_verdict - what RFC 8461 4.2 asks of the certificate
 *	(a trusted chain, the MX host's name); NULL when it holds */
static const char *
smtp_sts_cert_verdict(struct smtp_sess *sess, const char **reason)
{
	SSL    *ssl = tls_stream_ssl(sess->stream);
	X509   *peer;
	long    verr;
	const char *result = NULL;

	if (ssl == NULL)
		return (NULL);
	peer = SSL_get1_peer_certificate(ssl);
	verr = SSL_get_verify_result(ssl);
	if (peer == NULL) {
		result = "certificate-not-trusted";
		*reason = "no certificate";
	} else if (verr == X509_V_ERR_CERT_HAS_EXPIRED) {
		result = "certificate-expired";
		*reason = X509_verify_cert_error_string(verr);
	} else if (verr != X509_V_OK
		   && verr != X509_V_ERR_HOSTNAME_MISMATCH) {
		result = "certificate-not-trusted";
		*reason = X509_verify_cert_error_string(verr);
	} else if (X509_check_host(peer, sess->host, 0, 0, NULL) != 1) {
		result = "certificate-host-mismatch";
		*reason = "the certificate does not name the MX host";
	}
	X509_free(peer);
	return (result);
}

/* smtp_sts_tlsa_text - the TLSA records of a DANE session, one a line */
static char *
smtp_sts_tlsa_text(const struct smtp_req *req)
{
	struct strbuf *sb = strbuf_new(256, 0);
	const struct dns_rrset *rs = req->dane_rs;
	char   *text;
	size_t  i;
	size_t  k;

	for (i = 0; rs && i < rs->count; i++) {
		if (rs->len[i] < 3)
			continue;
		strbuf_printf(sb, "%s%u %u %u ", i ? "\n" : "",
			      rs->data[i][0], rs->data[i][1], rs->data[i][2]);
		for (k = 3; k < rs->len[i]; k++)
			strbuf_printf(sb, "%02X", rs->data[i][k]);
	}
	text = strbuf_steal(sb, NULL);
	strbuf_free(sb);
	return (text);
}

/* smtp_sts_no_policy - TLS-RPT "no-policy-found": a session to an MX
 *	host of a domain without MTA-STS policy or DANE, one append per
 *	connection (smtp_tls_outcome() is told once per connection) */
static void
smtp_sts_no_policy(struct smtp_sess *sess, const char *type,
		           const char *detail)
{
	struct smtp_req *req = sess->req;
	const struct smtp_dest *dest;

	if (!smtp_var.tlsrpt_enable || req->dest_i == 0
	    || req->dest_i > req->ndest)
		return;
	dest = &req->dests[req->dest_i - 1];
	/* Only mail to a domain (MX lookup) has a policy domain. */
	if (!dest->mx)
		return;
	smtp_tlsrpt(req, dest->host, type ? type : "success", sess->host,
		    sess->addr, type ? detail : NULL);
}

/* smtp_sts_tls_outcome - one TLS outcome of a session (smtp_tls_outcome):
 *	TLS-RPT under the session's DANE or MTA-STS policy, and the log
 *	line of MTA-STS mode testing */
void
smtp_sts_tls_outcome(struct smtp_sess *sess, const char *type,
		             const char *detail)
{
	struct smtp_req *req = sess->req;
	const struct mta_sts_policy *p = req ? req->sts : NULL;
	struct tlsrpt_event ev;
	struct strbuf *err;
	char   *tlsa;

	if (req == NULL)
		return;
	if (sess->tls.level == SMTP_TLS_DANE && smtp_var.tlsrpt_enable) {
		/* RFC 8460 4.4: policy type tlsa, the records as strings. */
		memset(&ev, 0, sizeof(ev));
		tlsa = smtp_sts_tlsa_text(req);
		ev.domain = req->dest_i > 0 && req->dest_i <= req->ndest ?
			req->dests[req->dest_i - 1].host : sess->host;
		ev.policy_type = "tlsa";
		ev.policy_text = tlsa;
		ev.result = type ? type : "success";
		ev.mx_host = sess->host;
		ev.receiving_ip = sess->addr;
		ev.reason = type ? detail : NULL;
		err = strbuf_new(256, 0);
		if (tlsrpt_record(TLSRPT_STORE, &ev, time(NULL), err) < 0)
			log_warn("TLS-RPT store: %s", STRBUF_STR(err));
		strbuf_free(err);
		xfree(tlsa);
		return;
	}
	if (p == NULL) {
		smtp_sts_no_policy(sess, type, detail);
		return;
	}
	if (p->mode == MTA_STS_MODE_NONE)
		return;
	/* Testing mode: TLS was not required; judge what enforce would. */
	if (type == NULL && p->mode == MTA_STS_MODE_TESTING)
		type = smtp_sts_cert_verdict(sess, &detail);
	if (type && p->mode == MTA_STS_MODE_TESTING)
		log_info("%s: MTA-STS policy of %s (mode testing): delivery "
			 "to %s would fail in enforce mode: %s%s%s",
			 req->queue_id, p->domain, sess->relay, type,
			 detail && *detail ? ": " : "", detail ? detail : "");
	smtp_tlsrpt(req, p->domain, type ? type : "success", sess->host,
		    sess->addr, type ? detail : NULL);
}
