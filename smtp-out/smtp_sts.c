/*
 * smtp_sts - MTA-STS policy discovery for a destination domain
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
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
 *	The callback gets a copy of the policy (NULL: none; the callee
 *	frees it) and, when a fetch failed, the TLS-RPT result type
 *	("sts-policy-fetch-error", "sts-policy-invalid",
 *	"sts-webpki-invalid") and the reason; both NULL otherwise. It is
 *	always called later from the loop, unless the job is cancelled
 *	(smtp_sts_cancel(), NULL is fine).
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
 *	XXX Two deliveries to one domain at once may both fetch the policy;
 *	the last one wins the cache. The memory cache has no size bound
 *	beyond SMTP_STS_CACHE_MAX (the oldest entry goes).
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

struct smtp_sts_job {
	char   *domain;
	char    id[MTA_STS_ID_MAX + 1];	/* of the TXT record; "" none */
	struct dns_req *dns;
	struct http_req *http;
	struct mta_sts_policy *cached;	/* usable cached policy, or NULL */
	smtp_sts_callback cb;
	void   *ctx;
	struct smtp_sts_job *prev;
	struct smtp_sts_job *next;
};

static struct smtp_sts_job *smtp_sts_jobs;
static struct mta_sts_policy *smtp_sts_cache[SMTP_STS_CACHE_MAX];
static size_t smtp_sts_ncache;

/* smtp_sts_cache_find - index of a domain in the memory cache, or -1 */
static long
smtp_sts_cache_find(const char *domain)
{
	size_t  i;

	for (i = 0; i < smtp_sts_ncache; i++)
		if (strcasecmp(smtp_sts_cache[i]->domain, domain) == 0)
			return ((long) i);
	return (-1);
}

/* smtp_sts_cache_put - keep a policy in memory (taken over) */
static void
smtp_sts_cache_put(struct mta_sts_policy *p)
{
	long    i = smtp_sts_cache_find(p->domain);

	if (i >= 0) {
		mta_sts_free(smtp_sts_cache[i]);
		smtp_sts_cache[i] = p;
		return;
	}
	if (smtp_sts_ncache == SMTP_STS_CACHE_MAX) {
		mta_sts_free(smtp_sts_cache[0]);
		memmove(smtp_sts_cache, smtp_sts_cache + 1,
			(SMTP_STS_CACHE_MAX - 1) * sizeof(smtp_sts_cache[0]));
		smtp_sts_ncache--;
	}
	smtp_sts_cache[smtp_sts_ncache++] = p;
}

/* smtp_sts_cache_get - a copy of the cached policy, if still valid */
static struct mta_sts_policy *
smtp_sts_cache_get(const char *domain)
{
	struct mta_sts_policy *p;
	long    i = smtp_sts_cache_find(domain);

	if (i < 0) {
		if ((p = mta_sts_cache_load(SMTP_STS_DIR, domain)) == NULL)
			return (NULL);
		smtp_sts_cache_put(p);
	} else
		p = smtp_sts_cache[i];
	if (mta_sts_expired(p, time(NULL)))
		return (NULL);
	return (mta_sts_copy(p));
}

/* smtp_sts_free - unlink and free a job */
static void
smtp_sts_free(struct smtp_sts_job *job)
{
	dns_cancel(job->dns);
	http_cancel(job->http);
	mta_sts_free(job->cached);
	xfree(job->domain);
	if (job->prev)
		job->prev->next = job->next;
	else
		smtp_sts_jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	xfree(job);
}

/* smtp_sts_done - hand over the outcome, end the job */
static void
smtp_sts_done(struct smtp_sts_job *job, struct mta_sts_policy *p,
	              const char *fail_type, const char *fail_why)
{
	smtp_sts_callback cb = job->cb;
	void   *ctx = job->ctx;
	char   *type = fail_type ? xstrdup(fail_type) : NULL;
	char   *why = fail_why ? xstrdup(fail_why) : NULL;

	job->dns = NULL;
	job->http = NULL;
	smtp_sts_free(job);
	cb(p, type, why, ctx);
	xfree(type);
	xfree(why);
}

/* smtp_sts_fetch_failed - keep a cached policy, or none; say why */
static void
smtp_sts_fetch_failed(struct smtp_sts_job *job, const char *type,
		              const char *why)
{
	struct mta_sts_policy *p = job->cached;

	log_warn("MTA-STS policy fetch for %s failed: %s%s", job->domain, why,
		 p ? "; using the cached policy" : "");
	job->cached = NULL;
	smtp_sts_done(job, p, type, why);
}

/* smtp_sts_http_cb - the policy body */
static void
smtp_sts_http_cb(const struct http_result *res, void *ctx)
{
	struct smtp_sts_job *job = ctx;
	struct strbuf *err;
	struct mta_sts_policy *p;
	size_t  n;

	job->http = NULL;
	err = strbuf_new(256, 0);
	if (*res->error) {
		strbuf_setf(err, "https://mta-sts.%s/: %s", job->domain,
			    res->error);
		smtp_sts_fetch_failed(job, strcasestr(res->error, "certificate")
				      || strcasestr(res->error, "SSL") ?
				      "sts-webpki-invalid" :
				      "sts-policy-fetch-error", STRBUF_STR(err));
		goto out;
	}
	if (res->status != 200) {
		strbuf_setf(err, "https://mta-sts.%s/: HTTP status %ld",
			    job->domain, res->status);
		smtp_sts_fetch_failed(job, "sts-policy-fetch-error",
				      STRBUF_STR(err));
		goto out;
	}
	n = strcspn(res->content_type, "; ");
	if (n != 10 || strncasecmp(res->content_type, "text/plain", n) != 0) {
		strbuf_setf(err, "https://mta-sts.%s/: media type \"%.60s\", "
			    "not text/plain", job->domain, res->content_type);
		smtp_sts_fetch_failed(job, "sts-policy-invalid",
				      STRBUF_STR(err));
		goto out;
	}
	if ((p = mta_sts_parse(job->domain, res->body, res->len, err))
	    == NULL) {
		strbuf_printf(err, " (policy of %s)", job->domain);
		smtp_sts_fetch_failed(job, "sts-policy-invalid",
				      STRBUF_STR(err));
		goto out;
	}
	snprintf(p->id, sizeof(p->id), "%s", job->id);
	p->fetched = time(NULL);
	strbuf_reset(err);
	if (mta_sts_cache_save(SMTP_STS_DIR, p, err) < 0)
		log_warn("MTA-STS policy cache: %s", STRBUF_STR(err));
	log_info("MTA-STS policy for %s fetched: id=%s mode=%s max_age=%ld",
		 p->domain, p->id, mta_sts_mode_str(p->mode), p->max_age);
	smtp_sts_cache_put(mta_sts_copy(p));
	smtp_sts_done(job, p, NULL, NULL);
out:
	strbuf_free(err);
}

/* smtp_sts_host_cb - the addresses of mta-sts.DOMAIN: fetch */
static void
smtp_sts_host_cb(struct dns_result *res, void *ctx)
{
	struct smtp_sts_job *job = ctx;
	struct strbuf *url = strbuf_new(256, 0);
	struct strbuf *pin = strbuf_new(256, 0);
	struct http_opts opts;
	size_t  i;

	job->dns = NULL;
	if (res->status != DNS_OK) {
		strbuf_setf(url, "mta-sts.%s: %s", job->domain, res->reason);
		smtp_sts_fetch_failed(job, "sts-policy-fetch-error",
				      STRBUF_STR(url));
		goto out;
	}
	strbuf_setf(pin, "mta-sts.%s:%ld:", job->domain, smtp_var.sts_port);
	for (i = 0; i < res->count; i++)
		strbuf_printf(pin, res->addrs[i].family == AF_INET6 ?
			      "%s[%s]" : "%s%s", i ? "," : "",
			      res->addrs[i].addr);
	if (smtp_var.sts_port == 443)
		strbuf_setf(url, "https://mta-sts.%s/.well-known/mta-sts.txt",
			    job->domain);
	else
		strbuf_setf(url, "https://mta-sts.%s:%ld/.well-known/"
			    "mta-sts.txt", job->domain, smtp_var.sts_port);
	memset(&opts, 0, sizeof(opts));
	opts.timeout = smtp_var.sts_timeout;
	opts.max_bytes = MTA_STS_POLICY_MAX;
	opts.resolve = STRBUF_STR(pin);
	job->http = http_get(STRBUF_STR(url), &opts, smtp_sts_http_cb, job);
out:
	dns_result_free(res);
	strbuf_free(url);
	strbuf_free(pin);
}

/* smtp_sts_txt_cb - the _mta-sts TXT records */
static void
smtp_sts_txt_cb(struct dns_rrset *rs, void *ctx)
{
	struct smtp_sts_job *job = ctx;
	struct strbuf *txt = strbuf_new(256, 0);
	struct strbuf *name;
	struct mta_sts_policy *p;
	char    id[MTA_STS_ID_MAX + 1];
	size_t  nsts = 0;
	size_t  i;

	job->dns = NULL;
	for (i = 0; rs->status == DNS_OK && i < rs->count; i++) {
		strbuf_reset(txt);
		if (dns_txt_decode(rs->data[i], rs->len[i], txt) < 0
		    || strncmp(STRBUF_STR(txt), "v=STSv1", 7) != 0)
			continue;
		if (nsts++ == 0 && mta_sts_txt_parse(STRBUF_STR(txt), id,
						     sizeof(id)) == 0)
			snprintf(job->id, sizeof(job->id), "%s", id);
	}
	strbuf_free(txt);
	if (nsts != 1)
		job->id[0] = 0;
	if (rs->status == DNS_TEMPFAIL)
		log_warn("MTA-STS: %s", rs->reason);
	dns_rrset_free(rs);
	if (job->id[0] == 0 || (job->cached
				&& strcmp(job->cached->id, job->id) == 0)) {
		/* No (valid) record, or the policy we have: use what we have. */
		p = job->cached;
		job->cached = NULL;
		smtp_sts_done(job, p, NULL, NULL);
		return;
	}
	name = strbuf_new(256, 0);
	strbuf_setf(name, "mta-sts.%s", job->domain);
	job->dns = dns_lookup_host(STRBUF_STR(name), smtp_sts_host_cb, job);
	strbuf_free(name);
}

/* smtp_sts_lookup - start finding the policy of a domain */
struct smtp_sts_job *
smtp_sts_lookup(const char *domain, smtp_sts_callback cb, void *ctx)
{
	struct smtp_sts_job *job = xcalloc(1, sizeof(*job));
	struct strbuf *name = strbuf_new(256, 0);
	size_t  n;

	job->domain = xstrdup(domain);
	n = strlen(job->domain);
	if (n > 1 && job->domain[n - 1] == '.')
		job->domain[n - 1] = 0;
	for (n = 0; job->domain[n]; n++)
		job->domain[n] = (char) tolower((unsigned char) job->domain[n]);
	job->cb = cb;
	job->ctx = ctx;
	job->next = smtp_sts_jobs;
	if (smtp_sts_jobs)
		smtp_sts_jobs->prev = job;
	smtp_sts_jobs = job;
	job->cached = smtp_sts_cache_get(job->domain);
	strbuf_setf(name, "_mta-sts.%s", job->domain);
	job->dns = dns_lookup_rr(STRBUF_STR(name), DNS_TYPE_TXT,
				 smtp_sts_txt_cb, job);
	strbuf_free(name);
	return (job);
}

/* smtp_sts_cancel - abandon a job */
void
smtp_sts_cancel(struct smtp_sts_job *job)
{
	if (job)
		smtp_sts_free(job);
}

/* smtp_sts_shutdown - cancel everything, empty the cache */
void
smtp_sts_shutdown(void)
{
	size_t  i;

	while (smtp_sts_jobs)
		smtp_sts_free(smtp_sts_jobs);
	for (i = 0; i < smtp_sts_ncache; i++)
		smtp_sts_cache[i] = mta_sts_free(smtp_sts_cache[i]);
	smtp_sts_ncache = 0;
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
