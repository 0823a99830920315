/*
 * smtp_dane - DANE for SMTP (RFC 7672): TLSA lookups per MX host, the
 *	effective TLS level of a host, TLSA records on the handshake
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	int	smtp_dane_lookup_due(struct smtp_req *req,
 *			const struct dns_addr *addr)
 *	int	smtp_dane_policy_host(struct smtp_req *req, const char *host,
 *			struct smtp_tls_policy *pol, struct strbuf *why)
 *	int	smtp_dane_ssl(struct smtp_sess *sess, SSL *ssl,
 *			struct strbuf *why)
 *	int	smtp_dane_check(struct smtp_sess *sess, struct strbuf *why)
 *	void	smtp_dane_free(struct smtp_req *req)
 *
 * DESCRIPTION
 *	With the TLS level "dane" or "dane-only" (smtp_tls_security_level
 *	or smtp_tls_policy_maps), each host is looked at before smtp-out
 *	connects to it. smtp_dane_lookup_due() is asked by smtp_nexthop.c
 *	for each address: when the destination's MX answer (or, for a
 *	host next hop, its address answer) and the address were DNSSEC-
 *	validated (dns_trust_anchor_file), and the TLSA records of
 *	_PORT._tcp.HOST have not been looked up yet, it starts that lookup
 *	and returns 1; the walk goes on from the callback. Otherwise 0.
 *
 *	smtp_dane_policy_host() (through smtp_tls_policy_host()) then
 *	sets the host's level, as Postfix does:
 *	  - secure TLSA records, one or more usable (DANE-TA, DANE-EE):
 *	    "dane": TLS required, the peer authenticated by the TLSA
 *	    records and nothing else;
 *	  - secure TLSA records, none usable: "encrypt" (dane-only: the
 *	    host is refused);
 *	  - no TLSA records (DNSSEC-proven), or an insecure MX or address:
 *	    "may" (dane-only: the host is refused);
 *	  - a TLSA lookup that failed, or a "bogus" answer: the host is
 *	    refused (the next one is tried; 4.7.5 when none is left).
 *	smtp_dane_ssl() puts the usable records on the client SSL before
 *	the handshake (tls_dane.c, OpenSSL's DANE API, the MX host name as
 *	reference identifier and SNI). smtp_dane_check(), called by
 *	smtp_tls_check() after the handshake: -1 with "Server certificate
 *	not trusted (DANE)" unless a record matched; smtp_tls_check() then
 *	logs the connection as "Verified" (or "Untrusted") and fails it.
 *	smtp_dane_free() forgets the request's TLSA state.
 *
 * SEE ALSO
 *	RFC 7672, RFC 6698, tls_dane.c, dns.c, smtp_tls.c
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "log.h"
#include "strbuf.h"
#include "tls.h"
#include "tls_dane.h"
#include "xmalloc.h"

#include "smtp-out.h"

#define SMTP_DANE_IS(level) ((level) == SMTP_TLS_DANE \
			     || (level) == SMTP_TLS_DANE_ONLY)

/* smtp_dane_free - forget the TLSA state of a request */
void
smtp_dane_free(struct smtp_req *req)
{
	req->dane_rs = dns_rrset_free(req->dane_rs);
	xfree(req->dane_host);
	req->dane_host = NULL;
}

/* smtp_dane_tlsa_cb - the TLSA records of one host: go on */
static void
smtp_dane_tlsa_cb(struct dns_rrset *rs, void *ctx)
{
	struct smtp_req *req = ctx;

	req->dns = NULL;
	req->dane_rs = rs;
	if (rs->status == DNS_TEMPFAIL)
		log_info("%s: TLSA lookup for %s: %s", req->queue_id,
			 req->dane_host, rs->reason);
	smtp_nexthop_next(req);
}

/* smtp_dane_lookup_due - start the TLSA lookup of a host if needed */
int
smtp_dane_lookup_due(struct smtp_req *req, const struct dns_addr *addr)
{
	struct strbuf *name;

	if (!SMTP_DANE_IS(req->tls.level))
		return (0);
	if (req->dane_host && strcasecmp(req->dane_host, addr->host) == 0)
		return (0);
	smtp_dane_free(req);
	req->dane_host = xstrdup(addr->host);
	/* Without DNSSEC up to the address, no TLSA lookup (RFC 7672 2.2). */
	if (!req->addrs->secure || !addr->secure)
		return (0);
	name = strbuf_new(256, 0);
	strbuf_setf(name, "_%u._tcp.%s", req->port, addr->host);
	req->dns = dns_lookup_rr(STRBUF_STR(name), DNS_TYPE_TLSA,
				 smtp_dane_tlsa_cb, req);
	strbuf_free(name);
	return (1);
}

/* smtp_dane_usable - usable TLSA records in the answer */
static size_t
smtp_dane_usable(const struct dns_rrset *rs)
{
	struct tls_tlsa t;
	size_t  n = 0;
	size_t  i;

	for (i = 0; i < rs->count; i++)
		if (tls_tlsa_parse(rs->data[i], rs->len[i], &t) == 0
		    && tls_tlsa_usable(&t))
			n++;
	return (n);
}

/* smtp_dane_policy_host - the level DANE gives one host; -1 refused */
int
smtp_dane_policy_host(struct smtp_req *req, const char *host,
		              struct smtp_tls_policy *pol, struct strbuf *why)
{
	const struct dns_rrset *rs = req->dane_rs;
	int     only = pol->level == SMTP_TLS_DANE_ONLY;
	const char *lvl = only ? "dane-only" : "dane";

	if (!SMTP_DANE_IS(pol->level))
		return (0);
	if (req->dane_host == NULL || strcasecmp(req->dane_host, host) != 0) {
		strbuf_setf(why, "no TLSA state for %s", host);
		return (-1);
	}
	if (rs == NULL || (rs->status != DNS_TEMPFAIL && !rs->secure)) {
		if (only) {
			strbuf_setf(why, "TLS is required (%s), but the DNS "
				    "records of %s are not DNSSEC-validated",
				    lvl, host);
			return (-1);
		}
		pol->level = SMTP_TLS_MAY;
		return (0);
	}
	if (rs->status == DNS_TEMPFAIL) {
		strbuf_setf(why, "TLSA lookup error for %s: %s", host,
			    rs->reason);
		return (-1);
	}
	if (rs->status == DNS_NOTFOUND) {
		if (only) {
			strbuf_setf(why, "TLS is required (%s), but %s has no "
				    "TLSA records", lvl, host);
			return (-1);
		}
		pol->level = SMTP_TLS_MAY;
		return (0);
	}
	if (smtp_dane_usable(rs) == 0) {
		if (only) {
			strbuf_setf(why, "TLS is required (%s), but no TLSA "
				    "record of %s is usable", lvl, host);
			return (-1);
		}
		pol->level = SMTP_TLS_ENCRYPT;
		return (0);
	}
	pol->level = SMTP_TLS_DANE;
	return (0);
}

/* smtp_dane_ssl - the usable TLSA records on the client SSL */
int
smtp_dane_ssl(struct smtp_sess *sess, struct ssl_st *ssl, struct strbuf *why)
{
	const struct dns_rrset *rs;
	struct tls_tlsa *t;
	size_t  n = 0;
	size_t  i;
	int     added;

	if (sess->tls.level != SMTP_TLS_DANE || sess->req == NULL
	    || (rs = sess->req->dane_rs) == NULL
	    || sess->req->dane_host == NULL
	    || strcasecmp(sess->req->dane_host, sess->host) != 0) {
		if (sess->tls.level == SMTP_TLS_DANE) {
			strbuf_setf(why, "Cannot start TLS: no TLSA records "
				    "for %s", sess->host);
			return (-1);
		}
		return (0);
	}
	t = xcalloc(rs->count ? rs->count : 1, sizeof(*t));
	for (i = 0; i < rs->count; i++)
		if (tls_tlsa_parse(rs->data[i], rs->len[i], &t[n]) == 0)
			n++;
	added = tls_dane_ssl_setup(ssl, sess->host, t, n);
	xfree(t);
	if (added <= 0) {
		strbuf_setf(why, "Cannot start TLS: DANE set-up failed: %s",
			    added < 0 ? tls_errors() : "no usable record");
		return (-1);
	}
	sess->dane = 1;
	return (0);
}

/* smtp_dane_check - after the handshake: did a TLSA record match? */
int
smtp_dane_check(struct smtp_sess *sess, struct strbuf *why)
{
	SSL    *ssl = tls_stream_ssl(sess->stream);
	char    how[256];

	if (!sess->dane || ssl == NULL) {
		strbuf_sets(why, "Server certificate not trusted (DANE)");
		return (-1);
	}
	if (!tls_dane_verified(ssl, how, sizeof(how))) {
		log_info("%s: DANE TLSA authentication of %s failed: %s",
			 sess->req ? sess->req->queue_id : "", sess->relay, how);
		strbuf_sets(why, "Server certificate not trusted (DANE)");
		return (-1);
	}
	log_info("%s: DANE TLSA %s authenticated %s",
		 sess->req ? sess->req->queue_id : "", how, sess->relay);
	return (0);
}
