/*
 * smtp_nexthop - where a delivery goes: parse the next hop, resolve it,
 *	and walk the endpoints in order
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	int	smtp_nexthop_parse(const char *nexthop, unsigned defport,
 *			struct smtp_dest **dests, size_t *count,
 *			struct strbuf *err)
 *	void	smtp_dest_free(struct smtp_dest *dests, size_t count)
 *	void	smtp_nexthop_start(struct smtp_req *req)
 *	void	smtp_nexthop_next(struct smtp_req *req)
 *	void	smtp_fail_set(struct smtp_fail *f, const char *dsn,
 *			const char *relay, const char *reply)
 *	void	smtp_fail_clear(struct smtp_fail *f)
 *
 * DESCRIPTION
 *	smtp_nexthop_parse() splits a next hop (docs/ipc.md) at commas and
 *	blanks. Each element is "[host]" or "[host]:port" (no MX lookup;
 *	"host" may be an IP address, IPv6 also as "ipv6:addr"),
 *	"domain" or "domain:port" (MX lookup), or a bare IP address (no MX
 *	lookup). The port is "defport" unless given. It returns 0 with a
 *	new array in "dests", or -1 with a reason in "err".
 *
 *	smtp_nexthop_start() begins a delivery: it parses the request's
 *	next hop, takes a cached connection made for it under the same TLS
 *	policy when there is one, and otherwise starts on the first
 *	endpoint. Each destination gets its TLS policy
 *	(smtp_tls_policy_dest()) before its DNS lookup; one that cannot
 *	have it is skipped with a soft failure. smtp_nexthop_next() moves
 *	on: the next address of the current destination, else the next
 *	destination (after its DNS lookup, which is asynchronous), else
 *	the end of the request (smtp_request_done()). It also ends the
 *	request when no recipient is left without a result.
 *
 *	DNS outcomes: a temporary failure is a soft failure (4.4.3); a
 *	domain or host that does not exist a hard one (5.1.2 for an MX
 *	lookup, 5.4.4 for a host); a null MX (RFC 7505) a hard one
 *	(5.1.10). The request keeps the last soft and the last hard
 *	failure; recipients left without a result when every endpoint has
 *	been tried are deferred with the soft one if there was one.
 *
 *	smtp_fail_set() and smtp_fail_clear() keep such a failure.
 *
 * MEMORY
 *	The request owns its destinations, its DNS request and result.
 *
 * SEE ALSO
 *	dns.h, RFC 5321 section 5.1, RFC 7505
 */

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "log.h"
#include "mta_sts.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtp-out.h"

/* smtp_fail_set - remember a failure */
void
smtp_fail_set(struct smtp_fail *f, const char *dsn, const char *relay,
	      const char *reply)
{
	smtp_fail_clear(f);
	f->set = 1;
	snprintf(f->dsn, sizeof(f->dsn), "%s", dsn);
	f->relay = xstrdup(relay ? relay : "none");
	f->reply = xstrdup(reply);
}

/* smtp_fail_clear - forget it */
void
smtp_fail_clear(struct smtp_fail *f)
{
	xfree(f->relay);
	xfree(f->reply);
	memset(f, 0, sizeof(*f));
}

/* smtp_dest_free - an array of destinations */
void
smtp_dest_free(struct smtp_dest *dests, size_t count)
{
	size_t  i;

	for (i = 0; dests && i < count; i++) {
		xfree(dests[i].text);
		xfree(dests[i].host);
	}
	xfree(dests);
}

/* smtp_nexthop_is_addr - an IPv4 or IPv6 address in text form */
static int
smtp_nexthop_is_addr(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return (inet_pton(AF_INET, s, buf) == 1
		|| inet_pton(AF_INET6, s, buf) == 1);
}

/* smtp_nexthop_port - a decimal port 1..65535 */
static int
smtp_nexthop_port(const char *s, size_t len, unsigned *port)
{
	unsigned long v = 0;
	size_t  i;

	if (len == 0 || len > 5)
		return (-1);
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return (-1);
		v = v * 10 + (unsigned long) (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return (-1);
	*port = (unsigned) v;
	return (0);
}

/* smtp_nexthop_elem - one element of the list */
static int
smtp_nexthop_elem(const char *e, size_t len, unsigned defport,
		  struct smtp_dest *d, struct strbuf *err)
{
	const char *close;
	const char *colon;
	const char *host;
	size_t  hlen;

	d->port = defport;
	if (*e == '[') {
		close = memchr(e, ']', len);
		if (close == NULL) {
			strbuf_sets(err, "missing \"]\"");
			return (-1);
		}
		host = e + 1;
		hlen = (size_t) (close - host);
		if (hlen > 5 && strncasecmp(host, "ipv6:", 5) == 0) {
			host += 5;
			hlen -= 5;
		}
		d->mx = 0;
		if (close + 1 < e + len) {
			if (close[1] != ':' || smtp_nexthop_port(close + 2,
					  (size_t) (e + len - close - 2),
							 &d->port) < 0) {
				strbuf_sets(err, "bad port");
				return (-1);
			}
		}
	} else {
		host = e;
		hlen = len;
		colon = memchr(e, ':', len);
		/* More than one colon: a bare IPv6 address, no port. */
		if (colon && memchr(colon + 1, ':',
				    (size_t) (e + len - colon - 1)) == NULL) {
			hlen = (size_t) (colon - e);
			if (smtp_nexthop_port(colon + 1, len - hlen - 1,
					      &d->port) < 0) {
				strbuf_sets(err, "bad port");
				return (-1);
			}
		}
		d->mx = 1;
	}
	if (hlen == 0 || hlen > DNS_NAME_MAX) {
		strbuf_sets(err, "bad host name");
		return (-1);
	}
	d->host = xstrndup(host, hlen);
	d->text = xstrndup(e, len);
	if (d->mx && smtp_nexthop_is_addr(d->host))
		d->mx = 0;
	return (0);
}

/* smtp_nexthop_parse - split and check a next hop */
int
smtp_nexthop_parse(const char *nexthop, unsigned defport,
		   struct smtp_dest **dests, size_t *count,
		   struct strbuf *err)
{
	struct smtp_dest *d = NULL;
	const char *p = nexthop;
	size_t  n = 0;
	size_t  len;

	for (;;) {
		p += strspn(p, ", \t");
		if (*p == 0)
			break;
		len = strcspn(p, ", \t");
		d = xreallocarray(d, n + 1, sizeof(*d));
		memset(&d[n], 0, sizeof(d[n]));
		if (smtp_nexthop_elem(p, len, defport, &d[n], err) < 0) {
			smtp_dest_free(d, n);
			return (-1);
		}
		n++;
		p += len;
	}
	if (n == 0) {
		strbuf_sets(err, "empty next hop");
		return (-1);
	}
	*dests = d;
	*count = n;
	return (0);
}

/* smtp_nexthop_todo - recipients still without a result */
static int
smtp_nexthop_todo(const struct smtp_req *req)
{
	size_t  i;

	for (i = 0; i < req->nrcpt; i++)
		if (req->rcpts[i].status == SMTP_RCPT_TODO)
			return (1);
	return (0);
}

/* smtp_nexthop_sts_filter - MX hosts outside an MTA-STS policy */
static struct dns_result *
smtp_nexthop_sts_filter(struct smtp_req *req, struct dns_result *res)
{
	const struct mta_sts_policy *p = req->sts;
	struct dns_result *ok;
	struct strbuf *why;
	const char *last = "";
	size_t  i;

	if (p == NULL || p->mode == MTA_STS_MODE_NONE)
		return (res);
	ok = dns_result_new(res->name);
	ok->secure = res->secure;
	ok->implicit_mx = res->implicit_mx;
	ok->partial = res->partial;
	for (i = 0; i < res->count; i++) {
		const struct dns_addr *a = &res->addrs[i];

		if (mta_sts_mx_match(p, a->host)) {
			(void) dns_result_add(ok, a->host, a->pref, a->family,
					      a->addr, a->secure);
			continue;
		}
		if (strcasecmp(last, a->host) == 0)
			continue;
		last = a->host;
		log_info("%s: MTA-STS policy of %s (mode %s): MX host %s is "
			 "not in the policy%s", req->queue_id, p->domain,
			 mta_sts_mode_str(p->mode), a->host,
			 p->mode == MTA_STS_MODE_ENFORCE ? ", skipped" :
			 ", would be skipped in enforce mode");
		smtp_tlsrpt(req, p->domain, "validation-failure", a->host,
			    a->addr, "mx-not-in-sts-policy");
	}
	if (p->mode == MTA_STS_MODE_TESTING) {
		dns_result_free(ok);
		return (res);
	}
	dns_result_free(res);
	if (ok->count > 0)
		return (ok);
	why = strbuf_new(256, 0);
	strbuf_printf(why, "MTA-STS policy of %s (mode enforce): no MX host "
		      "matches the policy", p->domain);
	log_info("%s: %s", req->queue_id, STRBUF_STR(why));
	smtp_fail_set(&req->temp, "4.7.5", NULL, STRBUF_STR(why));
	strbuf_free(why);
	return (dns_result_free(ok));
}

/* smtp_nexthop_dns_cb - the addresses of one destination */
static void
smtp_nexthop_dns_cb(struct dns_result *res, void *ctx)
{
	struct smtp_req *req = ctx;
	const struct smtp_dest *d = &req->dests[req->dest_i - 1];

	req->dns = NULL;
	switch (res->status) {
	case DNS_OK:
		req->addrs = smtp_nexthop_sts_filter(req, res);
		req->addr_i = 0;
		res = NULL;
		break;
	case DNS_TEMPFAIL:
		smtp_fail_set(&req->temp, "4.4.3", NULL, res->reason);
		break;
	case DNS_NOTFOUND:
		smtp_fail_set(&req->perm, d->mx ? "5.1.2" : "5.4.4", NULL,
			      res->reason);
		break;
	case DNS_NULLMX:
		smtp_fail_set(&req->perm, "5.1.10", NULL,
		  "Recipient address rejected: domain does not accept mail "
			      "(null MX)");
		break;
	}
	dns_result_free(res);
	smtp_nexthop_next(req);
}

/* smtp_nexthop_resolve - start the DNS lookup of one destination */
static void
smtp_nexthop_resolve(struct smtp_req *req, const struct smtp_dest *d)
{
	if (d->mx)
		req->dns = dns_lookup_mx(d->host, smtp_nexthop_dns_cb, req);
	else
		req->dns = dns_lookup_host(d->host, smtp_nexthop_dns_cb, req);
}

/* smtp_nexthop_sts_cb - the MTA-STS policy of a domain: now its MX */
static void
smtp_nexthop_sts_cb(struct mta_sts_policy *p, const char *fail_type,
		            const char *fail_why, void *ctx)
{
	struct smtp_req *req = ctx;
	const struct smtp_dest *d = &req->dests[req->dest_i - 1];

	req->sts_job = NULL;
	req->sts = p;
	if (fail_type)
		smtp_tlsrpt(req, d->host, fail_type, NULL, NULL, fail_why);
	if (p && p->mode != MTA_STS_MODE_NONE)
		log_info("%s: MTA-STS policy of %s: mode %s, id %s",
			 req->queue_id, p->domain, mta_sts_mode_str(p->mode),
			 p->id);
	smtp_nexthop_resolve(req, d);
}

/* smtp_nexthop_policy - the TLS policy of a destination; -1 deferred */
static int
smtp_nexthop_policy(struct smtp_req *req, const struct smtp_dest *d)
{
	struct strbuf *err = strbuf_new(128, 0);
	int     ret;

	ret = smtp_tls_policy_dest(req, d, err);
	if (ret < 0)
		log_info("%s: %s", req->queue_id, err->data);
	strbuf_free(err);
	return (ret);
}

/* smtp_nexthop_next - try the next endpoint, or finish */
void
smtp_nexthop_next(struct smtp_req *req)
{
	const struct dns_addr *a;
	const struct smtp_dest *d;

	for (;;) {
		if (!smtp_nexthop_todo(req)) {
			req->addrs = dns_result_free(req->addrs);
			smtp_request_done(req);
			return;
		}
		while (req->addrs && req->addr_i < req->addrs->count) {
			a = &req->addrs->addrs[req->addr_i];
			/* DANE: the host's TLSA records first (smtp_dane.c). */
			if (smtp_dane_lookup_due(req, a))
				return;
			req->addr_i++;
			req->sess = smtp_conn_open(req, a->host, a, req->port);
			if (req->sess)
				return;
		}
		req->addrs = dns_result_free(req->addrs);
		if (req->dest_i >= req->ndest) {
			smtp_request_done(req);
			return;
		}
		d = &req->dests[req->dest_i++];
		req->port = d->port;
		if (smtp_nexthop_policy(req, d) < 0)
			continue;
		req->sts = mta_sts_free(req->sts);
		if (d->mx && smtp_var.sts_enable) {
			req->sts_job = smtp_sts_lookup(d->host,
						   smtp_nexthop_sts_cb, req);
			return;
		}
		smtp_nexthop_resolve(req, d);
		return;
	}
}

/* smtp_nexthop_start - parse, reuse a connection, or start resolving */
void
smtp_nexthop_start(struct smtp_req *req)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct smtp_sess *sess;

	if (smtp_nexthop_parse(req->nexthop, (unsigned) smtp_var.default_port,
			       &req->dests, &req->ndest, err) < 0) {
		log_warn("%s: bad nexthop \"%s\": %s", req->queue_id,
			 req->nexthop, err->data);
		strbuf_reset(err);
		strbuf_printf(err, "bad next hop \"%.100s\"", req->nexthop);
		smtp_fail_set(&req->temp, "4.3.5", NULL, err->data);
		strbuf_free(err);
		smtp_request_done(req);
		return;
	}
	/*
	 * A cached connection must have been made for the same policy, the
	 * one the first destination has after every lookup that may raise it.
	 */
	if (smtp_tls_policy_dest(req, &req->dests[0], err) == 0) {
		smtp_sts_raise_cached(req);
		req->cache_key = smtp_tls_cache_key(req->nexthop, &req->tls);
	}
	strbuf_free(err);
	if (smtp_nexthop_todo(req) && req->cache_key
	    && (sess = smtp_conn_cache_take(req->cache_key)) != NULL) {
		req->sess = sess;
		sess->req = req;
		sess->reused = 1;
		req->t_conn = smtp_now();
		smtp_proto_transaction(sess);
		return;
	}
	smtp_nexthop_next(req);
}
