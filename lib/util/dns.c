/*
 * dns - asynchronous MX and address lookups through libunbound
 *
 * SYNOPSIS
 *	#include "dns.h"
 *
 *	int	dns_init(struct event_base *base, const char *resolver,
 *			struct strbuf *err)
 *	void	dns_set_trust_anchor(const char *file)
 *	void	dns_set_timeout(long seconds)
 *	void	dns_set_families(int mask)
 *	void	dns_set_prefer(enum dns_prefer prefer)
 *	void	dns_free(void)
 *
 *	struct dns_req *dns_lookup_mx(const char *domain, dns_callback cb,
 *			void *arg)
 *	struct dns_req *dns_lookup_host(const char *host, dns_callback cb,
 *			void *arg)
 *	struct dns_req *dns_lookup_ptr(const char *addr, dns_callback cb,
 *			void *arg)
 *	struct dns_req *dns_lookup_rr(const char *name, int rrtype,
 *			dns_rr_callback cb, void *arg)
 *	void	dns_cancel(struct dns_req *req)
 *	struct dns_rrset *dns_rrset_free(struct dns_rrset *rs)
 *	int	dns_txt_decode(const unsigned char *rdata, size_t len,
 *			struct strbuf *out)
 *
 *	struct dns_result *dns_result_new(const char *name)
 *	int	dns_result_add(struct dns_result *res, const char *host,
 *			int pref, int family, const char *addr, int secure)
 *	void	dns_result_prefer(struct dns_result *res,
 *			enum dns_prefer prefer)
 *	struct dns_result *dns_result_free(struct dns_result *res)
 *	const char *dns_status_str(enum dns_status status)
 *
 *	int	dns_resolver_parse(const char *spec, struct dns_server *out,
 *			size_t max, size_t *count, struct strbuf *err)
 *	int	dns_prefer_parse(const char *str, enum dns_prefer *prefer)
 *	int	dns_families_parse(const char *str, int *mask)
 *	int	dns_name_check(const char *name, char *out, size_t size)
 *	int	dns_mx_parse(const unsigned char *rdata, size_t len, int *pref,
 *			char *host, size_t size)
 *	void	dns_mx_sort(struct dns_mx *mx, size_t count)
 *
 * DESCRIPTION
 *	dns_init() makes the one resolver of the process on the event base.
 *	"resolver" is the dns_resolver parameter: empty means the servers
 *	of /etc/resolv.conf (read now, so call it before a chroot; without
 *	that file libunbound recurses from the root itself); otherwise a
 *	list of forwarders "addr" or "addr@port" (IPv4 or IPv6), separated
 *	by blanks or commas, asked in turn. Queries to loopback servers are
 *	allowed. libunbound resolves in a thread of its own; its pipe is
 *	watched by a persistent read event that calls ub_process(), which
 *	runs the callbacks below. libunbound answers special-use names
 *	itself (localhost, .test, .invalid, .onion: RFC 6761). The lookup
 *	defaults are dns_timeout 30s, both families, preference "any"; the
 *	dns_set_*() calls change them for lookups started afterwards.
 *
 *	dns_lookup_mx() finds where mail for "domain" goes, as RFC 5321
 *	section 5.1 says. It asks for the MX set; orders it by preference,
 *	in random order among equal preferences; drops duplicate names and
 *	keeps the best DNS_MX_MAX; then asks for the A and/or AAAA records
 *	(families from dns_set_families()) of every exchanger at once. The
 *	result lists every address of every exchanger that has one, host by
 *	host in MX order; within one host the family order follows
 *	dns_set_prefer() (ipv4 or ipv6 first, or "any": random). Outcomes:
 *	  - one MX record "0 ." is a null MX (RFC 7505): DNS_NULLMX; so is
 *	    a set whose only exchangers are the root ("10 .", twice...).
 *	    A root exchanger among other MX records is ignored. A set of
 *	    only malformed records is DNS_TEMPFAIL.
 *	  - NXDOMAIN for the MX query: DNS_NOTFOUND.
 *	  - no MX records: the domain is its own exchanger with preference 0
 *	    (implicit MX, "implicit_mx" set); without addresses DNS_NOTFOUND.
 *	  - an exchanger without addresses is skipped. If no exchanger has an
 *	    address: DNS_TEMPFAIL when any of their lookups failed
 *	    temporarily (SERVFAIL, timeout), else DNS_NOTFOUND ("no MX host
 *	    for DOMAIN has an address", as Postfix bounces a domain whose MX
 *	    hosts do not exist). The same holds for an implicit MX. When some exchangers have addresses and others failed
 *	    temporarily the result is DNS_OK with "partial" set and the
 *	    reason of the failure, so that the caller may decide to wait for
 *	    a better exchanger rather than use a backup.
 *	  - SERVFAIL, REFUSED, other rcodes, DNSSEC "bogus" answers, resolver
 *	    errors and dns_timeout for the MX query: DNS_TEMPFAIL.
 *	  - at most DNS_ADDR_MAX addresses in all; the rest are dropped.
 *	dns_lookup_host() resolves A and/or AAAA of one host (relayhost,
 *	transport next hop); an IP address is returned as it is. The result
 *	has preference 0; DNS_NOTFOUND when the name does not exist or has
 *	no address, DNS_TEMPFAIL when a lookup failed and no address came.
 *	A malformed name is DNS_NOTFOUND at once, without a query.
 *	dns_lookup_ptr() finds the verified host name of an IP address, as
 *	Postfix's smtpd does for a client: it asks for the PTR records of
 *	the address (in-addr.arpa or ip6.arpa; an IPv4-mapped IPv6 address
 *	counts as IPv4), then for the A or AAAA records (the address's
 *	family) of up to DNS_PTR_MAX of the names, and accepts the first
 *	name, in answer order, whose addresses include the address
 *	(forward confirmation). DNS_OK: one entry whose "host" is that
 *	name and "addr" the address. DNS_NOTFOUND: no PTR record, or no
 *	name that resolves back to the address (the reason names the
 *	first PTR name). DNS_TEMPFAIL: a lookup failed or timed out and no
 *	name was confirmed. A malformed address is DNS_NOTFOUND at once.
 *	The loopback reverse zone is passed on to the resolver (unbound's
 *	built-in one is made transparent), except 127.0.0.1, which is
 *	"localhost" as before. Its DNS_OK and DNS_NOTFOUND results are
 *	kept for the smallest TTL of the answers they came from (at most
 *	DNS_PTR_CACHE_TTL, in DNS_PTR_CACHE slots, one per address hash),
 *	so that a client that connects again is named without a round
 *	trip through libunbound's thread, which costs more than the rest
 *	of a short SMTP session; libunbound would have answered from its
 *	own cache for as long. A TTL of 0 is not kept, nor is a failure.
 *	dns_lookup_rr() asks for the records of one type (DNS_TYPE_TXT
 *	for MTA-STS, DNS_TYPE_TLSA for DANE) of one name, no CNAME chasing
 *	beyond what the resolver does: DNS_OK with the RDATA of each record,
 *	DNS_NOTFOUND for NXDOMAIN or no record of the type, DNS_TEMPFAIL
 *	for SERVFAIL, timeouts, DNSSEC "bogus" answers ("bogus" set) and
 *	resolver errors; "secure" copies libunbound's verdict.
 *	dns_txt_decode() appends the character-strings of one TXT RDATA,
 *	joined without separator (RFC 7208 3.3, RFC 8461 3.1), to "out";
 *	-1 if the RDATA is malformed.
 *	Each returns a request handle; the callback is called exactly once,
 *	always later from the event loop (never inside dns_lookup_*()),
 *	unless the request is cancelled first. dns_timeout bounds the whole
 *	lookup: MX and addresses together.
 *
 *	dns_cancel() abandons a request: its callback is not called. It
 *	accepts NULL. A handle is invalid once its callback has started
 *	(a callback may cancel other requests and start new ones).
 *	dns_free() cancels every request (no callbacks) and deletes the
 *	resolver; dns_init() may then be called again. dns_free() must not
 *	be called from inside a dns callback. Call dns_init() in the process
 *	that does the lookups (after any fork): libunbound runs a thread.
 *
 *	DNSSEC: "secure" (result, and per address) copies libunbound's
 *	verdict. It can be 1 only with a trust anchor:
 *	dns_set_trust_anchor(), called before dns_init(), names a file of
 *	DS or DNSKEY records in zone-file form (dns_trust_anchor_file:
 *	the root key, e.g. /usr/share/dns/root.key, or a test zone's key);
 *	libunbound then validates every answer below it, and an answer
 *	that fails validation is "bogus" (a temporary failure). NULL or ""
 *	means no validation. libunbound reads the file when the first
 *	lookup starts, so it must be readable by the process then.
 *
 *	dns_result_new(), dns_result_add() (append one address; -1 after
 *	DNS_ADDR_MAX or for a bad family), dns_result_prefer() (reorder the
 *	addresses of each host by family) and dns_result_free() manage
 *	result lists; the lookups build theirs with them. dns_result_add()
 *	also refuses an address that is not in the text form of "family".
 *	dns_status_str() names a status ("OK", "TEMPFAIL", "NOTFOUND",
 *	"NULLMX").
 *
 *	dns_resolver_parse() checks a dns_resolver value and fills "out"
 *	(up to "max"); 0, or -1 with a reason in "err". dns_prefer_parse()
 *	reads smtp_address_preference (any, ipv4, ipv6) and
 *	dns_families_parse() inet_protocols (all, ipv4, ipv6, or both in a
 *	list); 0 or -1. dns_name_check() copies a host or domain name
 *	without its trailing dot into "out" if it is a well-formed name
 *	(letters, digits, "-" and "_" in labels of 1-63 octets, at most
 *	DNS_NAME_MAX); 0 or -1. dns_mx_parse() decodes the RDATA of one MX
 *	record (uncompressed, as libunbound gives it): "host" gets the
 *	exchanger in text form ("." for the root); -1 for malformed data or
 *	a name that is not a host name. dns_mx_sort() sorts by preference
 *	and shuffles each run of equal preference.
 *
 * MEMORY
 *	The result is handed over: the callback owns it and frees it with
 *	dns_result_free() (it may keep it past the callback). Every string
 *	in it belongs to it. The request handle belongs to the module; it
 *	is freed just before the callback runs, or by dns_cancel().
 *	dns_mx_sort() only moves entries.
 *
 * DIAGNOSTICS
 *	dns_init() returns -1 with a reason in "err" for a bad dns_resolver
 *	or a libunbound failure; the caller decides whether that is fatal.
 *	Answers from the network never end the process: malformed records
 *	are skipped with a warning, failures become DNS_TEMPFAIL or
 *	DNS_NOTFOUND with a reason in the Postfix wording. Out of memory
 *	ends the process (xmalloc). A lookup started before dns_init() is a
 *	bug (log_panic).
 *
 * SEE ALSO
 *	RFC 5321 section 5.1, RFC 7505, libunbound(3), smtp-out(8)
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <unbound.h>

#include "dns.h"
#include "log.h"
#include "strbuf.h"
#include "strhash.h"
#include "xmalloc.h"

#define DNS_T_A		1
#define DNS_T_PTR	12
#define DNS_T_MX	15
#define DNS_T_AAAA	28
#define DNS_C_IN	1

#define DNS_R_SERVFAIL	2
#define DNS_R_NXDOMAIN	3

#define DNS_REQ_MX	1
#define DNS_REQ_HOST	2
#define DNS_REQ_PTR	3
#define DNS_REQ_RR	4

#define DNS_PTR_MAX	4		/* PTR names checked per address */
#define DNS_PTR_CACHE	1024		/* PTR results kept, one per slot */
#define DNS_PTR_CACHE_TTL 3600		/* at most this long (seconds) */

#define DNS_STAGE_MX	1		/* waiting for the MX answer */
#define DNS_STAGE_ADDR	2		/* waiting for A/AAAA answers */
#define DNS_STAGE_PTR	3		/* waiting for the PTR answer */
#define DNS_STAGE_RR	4		/* waiting for dns_lookup_rr() */

#define DNS_IS_LDH(c)	(((c) >= 'a' && (c) <= 'z') || \
			 ((c) >= 'A' && (c) <= 'Z') || \
			 ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '_')

/* One address of one host, before ordering. */
struct dns_haddr {
	int     family;
	int     secure;
	char    addr[DNS_ADDR_STRLEN];
};

/* One host whose addresses are looked up. */
struct dns_host {
	char   *name;
	int     pref;
	int     temp;			/* a lookup failed temporarily */
	char   *why;			/* the last failure, for the reason */
	struct dns_haddr *addrs;
	size_t  count;
};

/* One query in flight in libunbound. */
struct dns_query {
	struct dns_req *req;		/* NULL: orphaned by a failed cancel */
	int     async_id;
	int     rrtype;
	size_t  host;			/* index into req->hosts */
	struct dns_query *next;		/* in req->queries or dns_orphans */
};

/* One lookup. */
struct dns_req {
	int     kind;			/* DNS_REQ_MX or DNS_REQ_HOST */
	int     stage;
	char   *name;
	dns_callback cb;
	dns_rr_callback rr_cb;		/* DNS_REQ_RR */
	int     rrtype;			/* DNS_REQ_RR */
	void   *arg;
	int     families;
	enum dns_prefer prefer;
	long    timeout;		/* seconds */
	struct event *timer;		/* deadline, or an early result */
	struct dns_result *early;	/* result known before any query */
	struct dns_query *queries;	/* in flight */
	struct dns_host *hosts;
	size_t  nhosts;
	int     secure;			/* MX answer secure */
	int     implicit_mx;
	int     ptr_family;		/* PTR: the address, binary */
	unsigned char ptr_addr[16];
	long    ttl;			/* smallest TTL of the answers; -1 */
	struct dns_req *prev;		/* all requests, for dns_free() */
	struct dns_req *next;
};

static struct ub_ctx *dns_ctx;
static struct event *dns_ev;
static struct event_base *dns_base;
static struct dns_req *dns_reqs;
static struct dns_query *dns_orphans;
static long dns_timeout = DNS_TIMEOUT_DEFAULT;
static char *dns_ta_file;
static int dns_families = DNS_FAMILY_ALL;
static enum dns_prefer dns_prefer = DNS_PREFER_ANY;

/* One remembered PTR result (dns_lookup_ptr()). */
struct dns_ptr_cached {
	char   *addr;			/* canonical text; NULL: empty slot */
	char   *host;			/* DNS_OK: the confirmed name */
	char   *reason;
	enum dns_status status;
	int     secure;
	time_t  expires;		/* CLOCK_MONOTONIC seconds */
};

static struct dns_ptr_cached dns_ptr_cache[DNS_PTR_CACHE];

static void dns_query_done(void *, int, struct ub_result *);
static void dns_rr_answer(struct dns_req *, int, struct ub_result *);
static void dns_ready(evutil_socket_t, short, void *);

/* dns_monotonic - seconds of the monotonic clock */
static time_t
dns_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec);
}

/* dns_ptr_slot - the cache slot of an address */
static struct dns_ptr_cached *
dns_ptr_slot(const char *addr)
{
	return (&dns_ptr_cache[strhash(addr) % DNS_PTR_CACHE]);
}

/* dns_ptr_forget - empty one slot */
static void
dns_ptr_forget(struct dns_ptr_cached *c)
{
	xfree(c->addr);
	xfree(c->host);
	xfree(c->reason);
	memset(c, 0, sizeof(*c));
}

/* dns_ptr_remember - keep a PTR result for its TTL */
static void
dns_ptr_remember(const struct dns_req *req, const struct dns_result *res)
{
	struct dns_ptr_cached *c;

	if (req->ttl <= 0 || (res->status != DNS_OK
			      && res->status != DNS_NOTFOUND)
	    || (res->status == DNS_OK && res->count == 0))
		return;
	c = dns_ptr_slot(req->name);
	dns_ptr_forget(c);
	c->addr = xstrdup(req->name);
	c->host = res->status == DNS_OK ? xstrdup(res->addrs[0].host) : 0;
	c->reason = xstrdup(res->reason ? res->reason : "");
	c->status = res->status;
	c->secure = res->secure;
	c->expires = dns_monotonic() + (req->ttl < DNS_PTR_CACHE_TTL ?
					req->ttl : DNS_PTR_CACHE_TTL);
}

/* dns_status_str - name of a status */
const char *
dns_status_str(enum dns_status status)
{
	switch (status) {
	case DNS_OK:
		return ("OK");
	case DNS_TEMPFAIL:
		return ("TEMPFAIL");
	case DNS_NOTFOUND:
		return ("NOTFOUND");
	case DNS_NULLMX:
		return ("NULLMX");
	}
	return ("UNKNOWN");
}

/* dns_random - uniform random number below bound (bound > 0) */
static size_t
dns_random(size_t bound)
{
	return ((size_t) arc4random_uniform((uint32_t) bound));
}

/* dns_result_new - empty result, status DNS_OK */
struct dns_result *
dns_result_new(const char *name)
{
	struct dns_result *res = xcalloc(1, sizeof(*res));

	res->status = DNS_OK;
	res->name = xstrdup(name ? name : "");
	res->reason = xstrdup("");
	return (res);
}

/* dns_result_set - set status and reason */
static void
dns_result_set(struct dns_result *res, enum dns_status status,
	               const char *reason)
{
	res->status = status;
	xfree(res->reason);
	res->reason = xstrdup(reason ? reason : "");
}

/* dns_result_add - append one address */
int
dns_result_add(struct dns_result *res, const char *host, int pref,
	               int family, const char *addr, int secure)
{
	struct dns_addr *a;
	unsigned char bin[16];

	if (res->count >= DNS_ADDR_MAX)
		return (-1);
	if (family != AF_INET && family != AF_INET6)
		return (-1);
	if (addr == 0 || strlen(addr) >= DNS_ADDR_STRLEN
	    || inet_pton(family, addr, bin) != 1)
		return (-1);
	res->addrs = xreallocarray(res->addrs, res->count + 1,
				   sizeof(*res->addrs));
	a = &res->addrs[res->count++];
	a->host = xstrdup(host ? host : "");
	a->pref = pref;
	a->family = family;
	a->secure = secure != 0;
	strcpy(a->addr, addr);
	return (0);
}

/* dns_result_prefer - order the addresses of each host by family */
void
dns_result_prefer(struct dns_result *res, enum dns_prefer prefer)
{
	struct dns_addr *tmp;
	size_t  start;
	size_t  end;
	size_t  i;
	size_t  j;
	size_t  n;
	int     first;

	/*
	 * A host's addresses are adjacent (dns_result_add() is called host by
	 * host). "any" shuffles each run; ipv4/ipv6 is a stable partition,
	 * so the order within a family stays the order of the answer.
	 */
	for (start = 0; start < res->count; start = end) {
		for (end = start + 1; end < res->count; end++)
			if (strcasecmp(res->addrs[end].host,
				       res->addrs[start].host) != 0
			    || res->addrs[end].pref != res->addrs[start].pref)
				break;
		n = end - start;
		if (n < 2)
			continue;
		if (prefer == DNS_PREFER_ANY) {
			for (i = n - 1; i > 0; i--) {
				struct dns_addr t;

				j = dns_random(i + 1);
				t = res->addrs[start + i];
				res->addrs[start + i] = res->addrs[start + j];
				res->addrs[start + j] = t;
			}
			continue;
		}
		first = prefer == DNS_PREFER_IPV4 ? AF_INET : AF_INET6;
		tmp = xreallocarray(0, n, sizeof(*tmp));
		j = 0;
		for (i = start; i < end; i++)
			if (res->addrs[i].family == first)
				tmp[j++] = res->addrs[i];
		for (i = start; i < end; i++)
			if (res->addrs[i].family != first)
				tmp[j++] = res->addrs[i];
		memcpy(res->addrs + start, tmp, n * sizeof(*tmp));
		xfree(tmp);
	}
}

/* dns_result_free - free a result; accepts NULL, returns NULL */
struct dns_result *
dns_result_free(struct dns_result *res)
{
	size_t  i;

	if (res == 0)
		return (0);
	for (i = 0; i < res->count; i++)
		xfree(res->addrs[i].host);
	xfree(res->addrs);
	xfree(res->name);
	xfree(res->reason);
	xfree(res);
	return (0);
}

/* dns_addr_parse - one address of a forwarder, into "srv" */
static int
dns_addr_parse(const char *addr, struct dns_server *srv)
{
	struct in_addr in4;
	struct in6_addr in6;

	if (strlen(addr) >= DNS_ADDR_STRLEN)
		return (-1);
	if (inet_pton(AF_INET, addr, &in4) == 1) {
		srv->family = AF_INET;
		srv->loopback = (ntohl(in4.s_addr) >> 24) == 127;
	} else if (inet_pton(AF_INET6, addr, &in6) == 1) {
		srv->family = AF_INET6;
		srv->loopback = IN6_IS_ADDR_LOOPBACK(&in6)
		    || (IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127);
	} else
		return (-1);
	strcpy(srv->addr, addr);
	return (0);
}

/* dns_resolver_parse - parse dns_resolver: "addr[@port]" list */
int
dns_resolver_parse(const char *spec, struct dns_server *out, size_t max,
		           size_t *count, struct strbuf *err)
{
	const char *cp = spec ? spec : "";
	const char *end;
	const char *at;
	char    tok[DNS_ADDR_STRLEN + 8];
	char    addr[DNS_ADDR_STRLEN + 8];
	size_t  len;
	size_t  n = 0;
	unsigned long port;
	char   *ep;

	for (;;) {
		cp += strspn(cp, " \t\r\n,");
		if (*cp == 0)
			break;
		end = cp + strcspn(cp, " \t\r\n,");
		len = end - cp;
		if (len >= sizeof(tok)) {
			if (err)
				strbuf_printf(err, "dns_resolver: entry too long: "
					      "\"%.*s...\"", 20, cp);
			return (-1);
		}
		memcpy(tok, cp, len);
		tok[len] = 0;
		cp = end;
		if (n >= max) {
			if (err)
				strbuf_printf(err, "dns_resolver: more than %zu "
					      "servers", max);
			return (-1);
		}
		out[n].port = 53;
		if ((at = strchr(tok, '@')) != 0) {
			memcpy(addr, tok, at - tok);
			addr[at - tok] = 0;
			if (at[1] < '0' || at[1] > '9'
			    || (port = strtoul(at + 1, &ep, 10), *ep != 0)
			    || port < 1 || port > 65535) {
				if (err)
					strbuf_printf(err, "dns_resolver: bad port "
						      "in \"%s\"", tok);
				return (-1);
			}
			out[n].port = (unsigned) port;
		} else
			strcpy(addr, tok);
		if (dns_addr_parse(addr, &out[n]) < 0) {
			if (err)
				strbuf_printf(err, "dns_resolver: \"%s\" is not "
					      "an IPv4 or IPv6 address", addr);
			return (-1);
		}
		n++;
	}
	*count = n;
	return (0);
}

/* dns_prefer_parse - parse smtp_address_preference */
int
dns_prefer_parse(const char *str, enum dns_prefer *prefer)
{
	if (str == 0)
		return (-1);
	if (strcasecmp(str, "any") == 0)
		*prefer = DNS_PREFER_ANY;
	else if (strcasecmp(str, "ipv4") == 0)
		*prefer = DNS_PREFER_IPV4;
	else if (strcasecmp(str, "ipv6") == 0)
		*prefer = DNS_PREFER_IPV6;
	else
		return (-1);
	return (0);
}

/* dns_families_parse - parse inet_protocols into a family mask */
int
dns_families_parse(const char *str, int *mask)
{
	const char *cp = str ? str : "";
	size_t  len;
	int     m = 0;

	for (;;) {
		cp += strspn(cp, " \t,");
		if (*cp == 0)
			break;
		len = strcspn(cp, " \t,");
		if (len == 3 && strncasecmp(cp, "all", 3) == 0)
			m |= DNS_FAMILY_ALL;
		else if (len == 4 && strncasecmp(cp, "ipv4", 4) == 0)
			m |= DNS_FAMILY_IPV4;
		else if (len == 4 && strncasecmp(cp, "ipv6", 4) == 0)
			m |= DNS_FAMILY_IPV6;
		else
			return (-1);
		cp += len;
	}
	if (m == 0)
		return (-1);
	*mask = m;
	return (0);
}

/* dns_name_check - validate a host or domain name, drop the final dot */
int
dns_name_check(const char *name, char *out, size_t size)
{
	size_t  len;
	size_t  label = 0;
	size_t  i;

	if (name == 0)
		return (-1);
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX || len >= size)
		return (-1);
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return (-1);
			label = 0;
		} else if (DNS_IS_LDH(name[i])) {
			if (++label > 63)
				return (-1);
		} else
			return (-1);
	}
	if (label == 0)
		return (-1);
	memcpy(out, name, len);
	out[len] = 0;
	return (0);
}

/* dns_rdata_name - decode the uncompressed name at rdata[pos..len] */
static int
dns_rdata_name(const unsigned char *rdata, size_t len, size_t pos,
	               char *host, size_t size)
{
	size_t  out = 0;
	size_t  need;
	size_t  lab;
	size_t  i;

	/*
	 * libunbound hands over RDATA with names uncompressed; a pointer
	 * (top bits set) or a name that runs past the RDATA is malformed.
	 */
	for (;;) {
		if (pos >= len)
			return (-1);
		lab = rdata[pos++];
		if (lab == 0)
			break;
		if (lab > 63 || pos + lab > len)
			return (-1);
		need = out + (out > 0) + lab;
		if (need > DNS_NAME_MAX || need >= size)
			return (-1);
		if (out > 0)
			host[out++] = '.';
		for (i = 0; i < lab; i++) {
			if (!DNS_IS_LDH(rdata[pos + i]))
				return (-1);
			host[out++] = (char) rdata[pos + i];
		}
		pos += lab;
	}
	if (pos != len)
		return (-1);
	if (out == 0)
		host[out++] = '.';
	host[out] = 0;
	return (0);
}

/* dns_mx_parse - decode the RDATA of one MX record */
int
dns_mx_parse(const unsigned char *rdata, size_t len, int *pref,
	             char *host, size_t size)
{
	if (rdata == 0 || len < 3 || size < 2)
		return (-1);
	*pref = (rdata[0] << 8) | rdata[1];
	return (dns_rdata_name(rdata, len, 2, host, size));
}

/* dns_mx_cmp - qsort by preference */
static int
dns_mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a;
	const struct dns_mx *y = b;

	return (x->pref < y->pref ? -1 : x->pref > y->pref);
}

/* dns_mx_sort - sort by preference, random order among equals */
void
dns_mx_sort(struct dns_mx *mx, size_t count)
{
	size_t  start;
	size_t  end;
	size_t  i;
	size_t  j;
	struct dns_mx t;

	if (count < 2)
		return;
	qsort(mx, count, sizeof(*mx), dns_mx_cmp);
	for (start = 0; start < count; start = end) {
		for (end = start + 1; end < count; end++)
			if (mx[end].pref != mx[start].pref)
				break;
		for (i = end - start - 1; i > 0; i--) {
			j = dns_random(i + 1);
			t = mx[start + i];
			mx[start + i] = mx[start + j];
			mx[start + j] = t;
		}
	}
}

/* dns_init - create the resolver on the event base */
int
dns_init(struct event_base *base, const char *spec, struct strbuf *err)
{
	struct dns_server srv[DNS_SERVERS_MAX];
	char    fwd[DNS_ADDR_STRLEN + 8];
	size_t  n;
	size_t  i;
	int     rc;

	if (dns_ctx != 0) {
		if (err)
			strbuf_sets(err, "dns: resolver already initialised");
		return (-1);
	}
	if (dns_resolver_parse(spec, srv, DNS_SERVERS_MAX, &n, err) < 0)
		return (-1);
	if ((dns_ctx = ub_ctx_create()) == 0) {
		if (err)
			strbuf_sets(err, "dns: cannot create libunbound context");
		return (-1);
	}
	if ((rc = ub_ctx_async(dns_ctx, 1)) != 0)
		goto fail;

	/*
	 * Loopback forwarders (a local cache, the test server, or the
	 * 127.0.0.53 of systemd-resolved in resolv.conf) must be asked.
	 * Allowing it is harmless when none is on loopback.
	 */
	if ((rc = ub_ctx_set_option(dns_ctx, "do-not-query-localhost:",
				    "no")) != 0)
		goto fail;

	if (n == 0) {
		if ((rc = ub_ctx_resolvconf(dns_ctx, 0)) != 0)
			log_warn("dns: cannot read /etc/resolv.conf (%s): "
				 "resolving from the root servers",
				 ub_strerror(rc));
	} else {
		for (i = 0; i < n; i++) {
			snprintf(fwd, sizeof(fwd), "%s@%u", srv[i].addr,
				 srv[i].port);
			if ((rc = ub_ctx_set_fwd(dns_ctx, fwd)) != 0)
				goto fail;
		}
	}
	if (dns_ta_file && (rc = ub_ctx_add_ta_file(dns_ctx, dns_ta_file)) != 0)
		goto fail;
	/*
	 * unbound answers all of 127.in-addr.arpa itself (NXDOMAIN but for
	 * 127.0.0.1); pass it on, so that a local resolver decides, and
	 * keep 127.0.0.1 -> localhost. This finalizes the settings: last.
	 */
	if ((rc = ub_ctx_zone_add(dns_ctx, "127.in-addr.arpa.",
				  "transparent")) != 0
	    || (rc = ub_ctx_data_add(dns_ctx, "1.0.0.127.in-addr.arpa. "
				     "PTR localhost.")) != 0)
		goto fail;
	if (ub_fd(dns_ctx) < 0) {
		rc = UB_PIPE;
		goto fail;
	}
	dns_base = base;
	if ((dns_ev = event_new(base, ub_fd(dns_ctx), EV_READ | EV_PERSIST,
				dns_ready, 0)) == 0 || event_add(dns_ev, 0) < 0) {
		if (err)
			strbuf_sets(err, "dns: cannot watch the libunbound pipe");
		if (dns_ev)
			event_free(dns_ev);
		dns_ev = 0;
		ub_ctx_delete(dns_ctx);
		dns_ctx = 0;
		return (-1);
	}
	return (0);

fail:
	if (err)
		strbuf_printf(err, "dns: libunbound: %s", ub_strerror(rc));
	ub_ctx_delete(dns_ctx);
	dns_ctx = 0;
	return (-1);
}

/* dns_set_trust_anchor - validate DNSSEC below this anchor (dns_init) */
void
dns_set_trust_anchor(const char *file)
{
	xfree(dns_ta_file);
	dns_ta_file = file && *file ? xstrdup(file) : 0;
}

/* dns_set_timeout - deadline of lookups started from now on */
void
dns_set_timeout(long seconds)
{
	dns_timeout = seconds > 0 ? seconds : DNS_TIMEOUT_DEFAULT;
}

/* dns_set_families - address families looked up from now on */
void
dns_set_families(int mask)
{
	dns_families = (mask & DNS_FAMILY_ALL) ? (mask & DNS_FAMILY_ALL)
	    : DNS_FAMILY_ALL;
}

/* dns_set_prefer - family order within a host from now on */
void
dns_set_prefer(enum dns_prefer prefer)
{
	dns_prefer = prefer;
}

/* dns_req_cancel_queries - stop every query of a request in libunbound */
static void
dns_req_cancel_queries(struct dns_req *req)
{
	struct dns_query *q;

	while ((q = req->queries) != 0) {
		req->queries = q->next;

		/*
		 * If libunbound says the query is gone already, its answer may
		 * still be in the pipe: keep the query, orphaned, so that
		 * dns_query_done() can drop the answer safely.
		 */
		if (ub_cancel(dns_ctx, q->async_id) != 0) {
			q->req = 0;
			q->next = dns_orphans;
			dns_orphans = q;
		} else
			xfree(q);
	}
}

/* dns_req_free - free a request and everything it holds */
static void
dns_req_free(struct dns_req *req)
{
	size_t  i;

	dns_req_cancel_queries(req);
	if (req->prev)
		req->prev->next = req->next;
	else
		dns_reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	if (req->timer)
		event_free(req->timer);
	dns_result_free(req->early);
	for (i = 0; i < req->nhosts; i++) {
		xfree(req->hosts[i].name);
		xfree(req->hosts[i].why);
		xfree(req->hosts[i].addrs);
	}
	xfree(req->hosts);
	xfree(req->name);
	xfree(req);
}

/* dns_rrset_new - an empty record set */
static struct dns_rrset *
dns_rrset_new(const char *name, enum dns_status status, const char *why)
{
	struct dns_rrset *rs = xcalloc(1, sizeof(*rs));

	rs->name = xstrdup(name ? name : "");
	rs->status = status;
	rs->reason = xstrdup(why ? why : "");
	return (rs);
}

/* dns_rrset_free - free a record set; NULL */
struct dns_rrset *
dns_rrset_free(struct dns_rrset *rs)
{
	size_t  i;

	if (rs == 0)
		return (0);
	for (i = 0; i < rs->count; i++)
		xfree(rs->data[i]);
	xfree(rs->data);
	xfree(rs->len);
	xfree(rs->name);
	xfree(rs->reason);
	xfree(rs);
	return (0);
}

/* dns_req_finish - hand the result to the caller, free the request */
static void
dns_req_finish(struct dns_req *req, struct dns_result *res)
{
	dns_callback cb = req->cb;
	dns_rr_callback rr_cb = req->rr_cb;
	void   *arg = req->arg;
	struct dns_rrset *rs;

	if (req->kind == DNS_REQ_RR) {
		/* No records: an early result, a failure or the deadline. */
		rs = dns_rrset_new(req->name, res->status, res->reason);
		rs->secure = res->secure;
		if (rs->status == DNS_OK)
			rs->status = DNS_NOTFOUND;
		dns_result_free(res);
		dns_req_free(req);
		rr_cb(rs, arg);
		return;
	}
	if (req->kind == DNS_REQ_PTR)
		dns_ptr_remember(req, res);
	dns_req_free(req);
	cb(res, arg);
}

/* dns_ptr_assemble - the first PTR name that resolves to the address */
static void
dns_ptr_assemble(struct dns_req *req)
{
	struct dns_result *res = dns_result_new(req->name);
	const char *temp_why = 0;
	unsigned char bin[16];
	struct dns_host *h;
	struct strbuf *sb;
	size_t  alen = req->ptr_family == AF_INET ? 4 : 16;
	size_t  i;
	size_t  k;

	for (i = 0; i < req->nhosts; i++) {
		h = &req->hosts[i];
		for (k = 0; k < h->count; k++) {
			if (h->addrs[k].family != req->ptr_family
			    || inet_pton(h->addrs[k].family, h->addrs[k].addr,
					 bin) != 1
			    || memcmp(bin, req->ptr_addr, alen) != 0)
				continue;
			(void) dns_result_add(res, h->name, 0, req->ptr_family,
					      req->name, h->addrs[k].secure);
			res->secure = h->addrs[k].secure;
			dns_req_finish(req, res);
			return;
		}
		if (h->temp && h->count == 0 && temp_why == 0)
			temp_why = h->why;
	}
	if (temp_why) {
		dns_result_set(res, DNS_TEMPFAIL, temp_why);
	} else {
		sb = strbuf_new(0, 1024);
		strbuf_printf(sb, "hostname %s does not resolve to address %s",
			      req->nhosts ? req->hosts[0].name : "", req->name);
		dns_result_set(res, DNS_NOTFOUND, STRBUF_STR(sb));
		strbuf_free(sb);
	}
	dns_req_finish(req, res);
}

/* dns_req_assemble - build the result from the hosts, in order */
static void
dns_req_assemble(struct dns_req *req)
{
	struct dns_result *res = dns_result_new(req->name);
	struct dns_host *h;
	const char *temp_why = 0;
	const char *why = 0;
	size_t  i;
	size_t  k;
	struct strbuf *sb;
	int     full = 0;
	int     secure = 1;

	if (req->kind == DNS_REQ_PTR) {
		dns_result_free(res);
		dns_ptr_assemble(req);
		return;
	}
	res->implicit_mx = req->implicit_mx;
	for (i = 0; i < req->nhosts; i++) {
		h = &req->hosts[i];
		/* A host with some address (A but no AAAA...) is usable. */
		if (h->temp && h->count == 0 && temp_why == 0)
			temp_why = h->why;
		if (h->why && why == 0)
			why = h->why;
		for (k = 0; k < h->count; k++) {
			if (dns_result_add(res, h->name, h->pref,
					   h->addrs[k].family,
					   h->addrs[k].addr,
					   h->addrs[k].secure) < 0) {
				full = 1;
				break;
			}
			secure &= h->addrs[k].secure;
		}
		if (full)
			break;
	}
	dns_result_prefer(res, req->prefer);
	if (req->kind == DNS_REQ_MX)
		res->secure = req->secure;
	else
		res->secure = res->count > 0 && secure;
	if (res->count > 0) {
		if (temp_why) {
			res->partial = 1;
			dns_result_set(res, DNS_OK, temp_why);
		}
	} else if (temp_why) {
		dns_result_set(res, DNS_TEMPFAIL, temp_why);
	} else if (req->kind == DNS_REQ_MX && !req->implicit_mx) {
		sb = strbuf_new(0, 1024);
		strbuf_printf(sb, "no MX host for %s has an address", req->name);
		if (why)
			strbuf_printf(sb, " (%s)", why);
		dns_result_set(res, DNS_NOTFOUND, STRBUF_STR(sb));
		strbuf_free(sb);
	} else {
		dns_result_set(res, DNS_NOTFOUND, why ? why :
			       "Host found but no address record");
	}
	dns_req_finish(req, res);
}

/* dns_req_fail - end the request with a status and reason */
static void
dns_req_fail(struct dns_req *req, enum dns_status status, const char *why)
{
	struct dns_result *res = dns_result_new(req->name);

	res->secure = req->secure;
	dns_result_set(res, status, why);
	dns_req_finish(req, res);
}

/* dns_query_start - send one query for a request; 0 or -1 */
static int
dns_query_start(struct dns_req *req, const char *name, int rrtype,
		        size_t host, struct strbuf *why)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	int     rc;

	q->req = req;
	q->rrtype = rrtype;
	q->host = host;
	rc = ub_resolve_async(dns_ctx, name, rrtype, DNS_C_IN, q,
			      dns_query_done, &q->async_id);
	if (rc != 0) {
		strbuf_printf(why, "resolver error for name=%s: %s", name,
			      ub_strerror(rc));
		xfree(q);
		return (-1);
	}
	q->next = req->queries;
	req->queries = q;
	return (0);
}

/* dns_type_str - name of a query type */
static const char *
dns_type_str(int rrtype)
{
	return (rrtype == DNS_T_MX ? "MX" : rrtype == DNS_T_A ? "A" :
		rrtype == DNS_T_PTR ? "PTR" : rrtype == DNS_TYPE_TXT ? "TXT" :
		rrtype == DNS_TYPE_TLSA ? "TLSA" : "AAAA");
}

/* dns_rcode_why - the Postfix wording of a failed answer */
static void
dns_rcode_why(struct strbuf *sb, const char *name, int rrtype, int err,
	              const struct ub_result *r)
{
	strbuf_printf(sb, "Name service error for name=%s type=%s: ", name,
		      dns_type_str(rrtype));
	if (err != 0)
		strbuf_printf(sb, "resolver error: %s", ub_strerror(err));
	else if (r->bogus)
		strbuf_printf(sb, "DNSSEC validation failed: %.200s",
			      r->why_bogus ? r->why_bogus : "bogus");
	else if (r->nxdomain || r->rcode == DNS_R_NXDOMAIN)
		strbuf_appends(sb, "Host not found");
	else if (r->rcode == DNS_R_SERVFAIL)
		strbuf_appends(sb, "Host not found, try again");
	else if (r->rcode != 0)
		strbuf_printf(sb, "server answered rcode %d, try again",
			      r->rcode);
	else
		strbuf_appends(sb, "Host found but no data record of "
			       "requested type");
}

/* dns_req_start_addrs - ask for A/AAAA of every host; 0 or -1 */
static int
dns_req_start_addrs(struct dns_req *req, struct strbuf *why)
{
	size_t  i;

	req->stage = DNS_STAGE_ADDR;
	for (i = 0; i < req->nhosts; i++) {
		if ((req->families & DNS_FAMILY_IPV4)
		    && dns_query_start(req, req->hosts[i].name, DNS_T_A, i,
				       why) < 0)
			return (-1);
		if ((req->families & DNS_FAMILY_IPV6)
		    && dns_query_start(req, req->hosts[i].name, DNS_T_AAAA, i,
				       why) < 0)
			return (-1);
	}
	return (0);
}

/* dns_host_add - add a host to look up */
static void
dns_host_add(struct dns_req *req, const char *name, int pref)
{
	struct dns_host *h;

	req->hosts = xreallocarray(req->hosts, req->nhosts + 1,
				   sizeof(*req->hosts));
	h = &req->hosts[req->nhosts++];
	memset(h, 0, sizeof(*h));
	h->name = xstrdup(name);
	h->pref = pref;
}

/* dns_mx_answer - handle the MX answer */
static void
dns_mx_answer(struct dns_req *req, int err, struct ub_result *r)
{
	struct strbuf *why = strbuf_new(0, 1024);
	struct dns_mx *mx = 0;
	char    host[DNS_NAME_MAX + 2];
	size_t  n = 0;
	size_t  nroot = 0;
	size_t  i;
	size_t  k;
	int     pref;

	if (err != 0 || r->bogus || (r->rcode != 0
				    && r->rcode != DNS_R_NXDOMAIN)) {
		dns_rcode_why(why, req->name, DNS_T_MX, err, r);
		dns_req_fail(req, DNS_TEMPFAIL, STRBUF_STR(why));
		goto out;
	}
	req->secure = r->secure;
	if (r->nxdomain || r->rcode == DNS_R_NXDOMAIN) {
		strbuf_appends(why, "Host or domain name not found. ");
		dns_rcode_why(why, req->name, DNS_T_MX, err, r);
		dns_req_fail(req, DNS_NOTFOUND, STRBUF_STR(why));
		goto out;
	}
	if (!r->havedata) {
		/* RFC 5321 5.1: no MX, the domain is its own exchanger. */
		req->implicit_mx = 1;
		dns_host_add(req, req->name, 0);
	} else {
		for (i = 0; r->data[i] != 0; i++) {
			if (dns_mx_parse((unsigned char *) r->data[i],
				     (size_t) r->len[i], &pref, host,
					 sizeof(host)) < 0) {
				log_warn("malformed MX record for %s ignored",
					 req->name);
				continue;
			}
			if (strcmp(host, ".") == 0) {
				nroot++;
				continue;
			}
			/* The same exchanger twice: keep the best. */
			for (k = 0; k < n; k++)
				if (strcasecmp(mx[k].host, host) == 0)
					break;
			if (k < n) {
				if (pref < mx[k].pref)
					mx[k].pref = pref;
				continue;
			}
			mx = xreallocarray(mx, n + 1, sizeof(*mx));
			mx[n].host = xstrdup(host);
			mx[n++].pref = pref;
		}
		if (n == 0 && nroot > 0) {
			strbuf_printf(why, "Domain %s does not accept mail "
				      "(nullMX)", req->name);
			dns_req_fail(req, DNS_NULLMX, STRBUF_STR(why));
			goto out;
		}
		if (n == 0) {
			strbuf_printf(why, "Name service error for name=%s "
				      "type=MX: no usable MX record",
				      req->name);
			dns_req_fail(req, DNS_TEMPFAIL, STRBUF_STR(why));
			goto out;
		}
		dns_mx_sort(mx, n);
		for (i = 0; i < n && i < DNS_MX_MAX; i++)
			dns_host_add(req, mx[i].host, mx[i].pref);
	}
	if (dns_req_start_addrs(req, why) < 0)
		dns_req_fail(req, DNS_TEMPFAIL, STRBUF_STR(why));

out:
	for (i = 0; i < n; i++)
		xfree(mx[i].host);
	xfree(mx);
	strbuf_free(why);
}

/* dns_ptr_answer - handle the PTR answer: confirm the names */
static void
dns_ptr_answer(struct dns_req *req, int err, struct ub_result *r)
{
	struct strbuf *why = strbuf_new(0, 1024);
	char    host[DNS_NAME_MAX + 2];
	size_t  i;
	size_t  k;

	if (err != 0 || r->bogus || (r->rcode != 0
				    && r->rcode != DNS_R_NXDOMAIN)) {
		dns_rcode_why(why, req->name, DNS_T_PTR, err, r);
		dns_req_fail(req, DNS_TEMPFAIL, STRBUF_STR(why));
		goto out;
	}
	for (i = 0; r->havedata && r->data[i] != 0
	     && req->nhosts < DNS_PTR_MAX; i++) {
		if (dns_rdata_name((unsigned char *) r->data[i],
				   (size_t) r->len[i], 0, host,
				   sizeof(host)) < 0
		    || strcmp(host, ".") == 0) {
			log_warn("malformed PTR record for %s ignored",
				 req->name);
			continue;
		}
		for (k = 0; k < req->nhosts; k++)
			if (strcasecmp(req->hosts[k].name, host) == 0)
				break;
		if (k == req->nhosts)
			dns_host_add(req, host, 0);
	}
	if (req->nhosts == 0) {
		strbuf_printf(why, "no PTR record for address %s", req->name);
		dns_req_fail(req, DNS_NOTFOUND, STRBUF_STR(why));
		goto out;
	}
	req->families = req->ptr_family == AF_INET ? DNS_FAMILY_IPV4 :
		DNS_FAMILY_IPV6;
	if (dns_req_start_addrs(req, why) < 0)
		dns_req_fail(req, DNS_TEMPFAIL, STRBUF_STR(why));

out:
	strbuf_free(why);
}

/* dns_addr_answer - record the A or AAAA answer of one host */
static void
dns_addr_answer(struct dns_req *req, struct dns_query *q, int err,
		        struct ub_result *r)
{
	struct dns_host *h = &req->hosts[q->host];
	struct dns_haddr *a;
	struct strbuf *why;
	int     family = q->rrtype == DNS_T_A ? AF_INET : AF_INET6;
	size_t  want = family == AF_INET ? 4 : 16;
	size_t  i;

	if (err != 0 || r->bogus || !r->havedata) {
		why = strbuf_new(0, 1024);
		if (err == 0 && (r->nxdomain || r->rcode == DNS_R_NXDOMAIN
				 || (r->rcode == 0 && !r->bogus))) {
			/* Not there: a permanent reason, kept if none better. */
			if (h->why == 0) {
				strbuf_appends(why, "Host or domain name not "
					       "found. ");
				dns_rcode_why(why, h->name, q->rrtype, err, r);
				h->why = xstrdup(STRBUF_STR(why));
			}
		} else {
			dns_rcode_why(why, h->name, q->rrtype, err, r);
			xfree(h->why);
			h->why = xstrdup(STRBUF_STR(why));
			h->temp = 1;
		}
		strbuf_free(why);
		return;
	}
	for (i = 0; r->data[i] != 0; i++) {
		if ((size_t) r->len[i] != want) {
			log_warn("malformed %s record for %s ignored",
				 dns_type_str(q->rrtype), h->name);
			continue;
		}
		if (h->count >= DNS_ADDR_MAX)
			break;
		h->addrs = xreallocarray(h->addrs, h->count + 1,
					 sizeof(*h->addrs));
		a = &h->addrs[h->count];
		a->family = family;
		a->secure = r->secure;
		if (inet_ntop(family, r->data[i], a->addr,
			      sizeof(a->addr)) == 0)
			continue;
		h->count++;
	}
}

/* dns_rr_answer - the records of a dns_lookup_rr() */
static void
dns_rr_answer(struct dns_req *req, int err, struct ub_result *r)
{
	struct strbuf *why = strbuf_new(0, 1024);
	struct dns_rrset *rs;
	dns_rr_callback cb = req->rr_cb;
	void   *arg = req->arg;
	size_t  n;
	size_t  i;

	if (err != 0 || r->bogus || (r->rcode != 0
				    && r->rcode != DNS_R_NXDOMAIN)) {
		dns_rcode_why(why, req->name, req->rrtype, err, r);
		rs = dns_rrset_new(req->name, DNS_TEMPFAIL, STRBUF_STR(why));
		rs->bogus = err == 0 && r->bogus;
	} else if (r->nxdomain || r->rcode == DNS_R_NXDOMAIN
		   || !r->havedata) {
		dns_rcode_why(why, req->name, req->rrtype, err, r);
		rs = dns_rrset_new(req->name, DNS_NOTFOUND, STRBUF_STR(why));
		rs->secure = r->secure;
	} else {
		rs = dns_rrset_new(req->name, DNS_OK, "");
		rs->secure = r->secure;
		for (n = 0; r->data[n] != 0; n++)
			 /* count */ ;
		rs->data = xcalloc(n, sizeof(*rs->data));
		rs->len = xcalloc(n, sizeof(*rs->len));
		for (i = 0; i < n; i++) {
			rs->len[i] = (size_t) r->len[i];
			rs->data[i] = xmalloc(rs->len[i] + 1);
			memcpy(rs->data[i], r->data[i], rs->len[i]);
			rs->data[i][rs->len[i]] = 0;
		}
		rs->count = n;
	}
	strbuf_free(why);
	dns_req_free(req);
	cb(rs, arg);
}

/* dns_query_done - libunbound callback for one query */
static void
dns_query_done(void *ctx, int err, struct ub_result *r)
{
	struct dns_query *q = ctx;
	struct dns_query **qp;
	struct dns_req *req = q->req;

	if (req == 0) {
		/* Orphaned by a cancel that came too late. */
		for (qp = &dns_orphans; *qp; qp = &(*qp)->next)
			if (*qp == q) {
				*qp = q->next;
				break;
			}
		xfree(q);
		if (r)
			ub_resolve_free(r);
		return;
	}
	for (qp = &req->queries; *qp; qp = &(*qp)->next)
		if (*qp == q) {
			*qp = q->next;
			break;
		}
	if (err == 0 && r == 0)
		err = UB_NOMEM;
	if (err == 0 && (req->ttl < 0 || r->ttl < req->ttl))
		req->ttl = r->ttl;
	if (req->stage == DNS_STAGE_MX)
		dns_mx_answer(req, err, r);
	else if (req->stage == DNS_STAGE_RR)
		dns_rr_answer(req, err, r);
	else if (req->stage == DNS_STAGE_PTR)
		dns_ptr_answer(req, err, r);
	else {
		dns_addr_answer(req, q, err, r);
		if (req->queries == 0)
			dns_req_assemble(req);
	}
	xfree(q);
	if (r)
		ub_resolve_free(r);
}

/* dns_timer_done - early result, or the deadline of a request */
static void
dns_timer_done(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct dns_req *req = ctx;
	struct dns_result *res;
	struct dns_query *q;
	struct strbuf *why;

	(void) unused_fd;
	(void) unused_what;
	if ((res = req->early) != 0) {
		req->early = 0;
		dns_req_finish(req, res);
		return;
	}
	why = strbuf_new(0, 1024);
	if (req->stage == DNS_STAGE_MX || req->stage == DNS_STAGE_PTR
	    || req->stage == DNS_STAGE_RR) {
		strbuf_printf(why, "Name service error for name=%s type=%s: "
			      "timed out after %lds", req->name,
			      req->stage == DNS_STAGE_MX ? "MX" :
			      req->stage == DNS_STAGE_PTR ? "PTR" :
			      dns_type_str(req->rrtype), req->timeout);
		dns_req_fail(req, DNS_TEMPFAIL, STRBUF_STR(why));
	} else {
		/* Hosts still waiting failed temporarily; use the rest. */
		for (q = req->queries; q; q = q->next) {
			struct dns_host *h = &req->hosts[q->host];

			strbuf_reset(why);
			strbuf_printf(why, "Name service error for name=%s "
				      "type=%s: timed out", h->name,
				      dns_type_str(q->rrtype));
			xfree(h->why);
			h->why = xstrdup(STRBUF_STR(why));
			h->temp = 1;
		}
		dns_req_assemble(req);
	}
	strbuf_free(why);
}

/* dns_ready - the libunbound pipe has answers: run their callbacks */
static void
dns_ready(evutil_socket_t unused_fd, short unused_what, void *unused_ctx)
{
	int     rc;

	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	if ((rc = ub_process(dns_ctx)) != 0)
		log_warn("dns: libunbound: %s", ub_strerror(rc));
}

/* dns_req_new - a request with its timer */
static struct dns_req *
dns_req_new(int kind, const char *name, dns_callback cb, void *arg)
{
	struct dns_req *req;

	if (dns_ctx == 0)
		log_panic("dns_lookup: dns_init() was not called");
	req = xcalloc(1, sizeof(*req));
	req->kind = kind;
	req->stage = kind == DNS_REQ_MX ? DNS_STAGE_MX :
		kind == DNS_REQ_PTR ? DNS_STAGE_PTR :
		kind == DNS_REQ_RR ? DNS_STAGE_RR : DNS_STAGE_ADDR;
	req->name = xstrdup(name ? name : "");
	req->cb = cb;
	req->arg = arg;
	req->families = dns_families;
	req->prefer = dns_prefer;
	req->timeout = dns_timeout;
	req->ttl = -1;
	req->timer = evtimer_new(dns_base, dns_timer_done, req);
	if (req->timer == 0)
		log_fatal("dns: cannot create a timer event");
	req->next = dns_reqs;
	if (dns_reqs)
		dns_reqs->prev = req;
	dns_reqs = req;
	return (req);
}

/* dns_req_early - finish from the loop with a result known now */
static struct dns_req *
dns_req_early(struct dns_req *req, enum dns_status status,
	              const char *why)
{
	struct timeval tv = {0, 0};

	if (req->early == 0)
		req->early = dns_result_new(req->name);
	dns_result_set(req->early, status, why);
	dns_req_cancel_queries(req);
	evtimer_add(req->timer, &tv);
	return (req);
}

/* dns_req_arm - start the deadline */
static struct dns_req *
dns_req_arm(struct dns_req *req)
{
	struct timeval tv;

	tv.tv_sec = req->timeout;
	tv.tv_usec = 0;
	evtimer_add(req->timer, &tv);
	return (req);
}

/* dns_lookup_mx - where does mail for a domain go */
struct dns_req *
dns_lookup_mx(const char *domain, dns_callback cb, void *arg)
{
	char    name[DNS_NAME_MAX + 2];
	struct dns_req *req;
	struct strbuf *why;

	req = dns_req_new(DNS_REQ_MX, domain, cb, arg);
	if (dns_name_check(domain, name, sizeof(name)) < 0)
		return (dns_req_early(req, DNS_NOTFOUND,
				      "malformed domain name"));
	xfree(req->name);
	req->name = xstrdup(name);
	why = strbuf_new(0, 1024);
	if (dns_query_start(req, name, DNS_T_MX, 0, why) < 0)
		dns_req_early(req, DNS_TEMPFAIL, STRBUF_STR(why));
	else
		dns_req_arm(req);
	strbuf_free(why);
	return (req);
}

/* dns_lookup_host - the addresses of one host */
struct dns_req *
dns_lookup_host(const char *host, dns_callback cb, void *arg)
{
	char    name[DNS_NAME_MAX + 2];
	unsigned char bin[16];
	struct dns_req *req;
	struct strbuf *why;
	int     family = 0;

	req = dns_req_new(DNS_REQ_HOST, host, cb, arg);
	if (host && inet_pton(AF_INET, host, bin) == 1)
		family = AF_INET;
	else if (host && inet_pton(AF_INET6, host, bin) == 1)
		family = AF_INET6;
	if (family != 0) {
		/* An address is its own answer; "secure" stays 0. */
		dns_req_early(req, DNS_OK, "");
		dns_result_add(req->early, host, 0, family, host, 0);
		return (req);
	}
	if (dns_name_check(host, name, sizeof(name)) < 0)
		return (dns_req_early(req, DNS_NOTFOUND, "malformed host name"));
	xfree(req->name);
	req->name = xstrdup(name);
	dns_host_add(req, name, 0);
	why = strbuf_new(0, 1024);
	if (dns_req_start_addrs(req, why) < 0)
		dns_req_early(req, DNS_TEMPFAIL, STRBUF_STR(why));
	else
		dns_req_arm(req);
	strbuf_free(why);
	return (req);
}

/* dns_ptr_name - the reverse lookup name of an address */
static void
dns_ptr_name(int family, const unsigned char *bin, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t  n = 0;
	int     i;

	if (family == AF_INET) {
		snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", bin[3], bin[2],
			 bin[1], bin[0]);
		return;
	}
	for (i = 15; i >= 0 && n + 4 < size; i--) {
		out[n++] = hex[bin[i] & 0xf];
		out[n++] = '.';
		out[n++] = hex[bin[i] >> 4];
		out[n++] = '.';
	}
	snprintf(out + n, size - n, "ip6.arpa");
}

/* dns_lookup_ptr - the verified host name of an address */
struct dns_req *
dns_lookup_ptr(const char *addr, dns_callback cb, void *arg)
{
	char    name[80];
	char    text[DNS_ADDR_STRLEN];
	unsigned char bin[16];
	struct dns_req *req;
	struct dns_ptr_cached *c;
	struct strbuf *why;

	req = dns_req_new(DNS_REQ_PTR, addr, cb, arg);
	if (addr && inet_pton(AF_INET, addr, bin) == 1) {
		req->ptr_family = AF_INET;
		memcpy(req->ptr_addr, bin, 4);
	} else if (addr && inet_pton(AF_INET6, addr, bin) == 1) {
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) bin)) {
			req->ptr_family = AF_INET;
			memcpy(req->ptr_addr, bin + 12, 4);
		} else {
			req->ptr_family = AF_INET6;
			memcpy(req->ptr_addr, bin, 16);
		}
	} else
		return (dns_req_early(req, DNS_NOTFOUND, "malformed address"));
	/* The canonical text form, for the result and the comparison. */
	if (inet_ntop(req->ptr_family, req->ptr_addr, text,
		      sizeof(text)) != 0) {
		xfree(req->name);
		req->name = xstrdup(text);
	}
	c = dns_ptr_slot(req->name);
	if (c->addr != 0 && strcmp(c->addr, req->name) == 0) {
		if (c->expires > dns_monotonic()) {
			dns_req_early(req, c->status, c->reason);
			req->early->secure = c->secure;
			if (c->status == DNS_OK)
				(void) dns_result_add(req->early, c->host, 0,
						      req->ptr_family,
						      req->name, c->secure);
			return (req);
		}
		dns_ptr_forget(c);
	}
	dns_ptr_name(req->ptr_family, req->ptr_addr, name, sizeof(name));
	why = strbuf_new(0, 1024);
	if (dns_query_start(req, name, DNS_T_PTR, 0, why) < 0)
		dns_req_early(req, DNS_TEMPFAIL, STRBUF_STR(why));
	else
		dns_req_arm(req);
	strbuf_free(why);
	return (req);
}

/* dns_lookup_rr - the records of one type of one name */
struct dns_req *
dns_lookup_rr(const char *name, int rrtype, dns_rr_callback cb, void *arg)
{
	char    fqdn[DNS_NAME_MAX + 2];
	struct dns_req *req;
	struct strbuf *why;

	req = dns_req_new(DNS_REQ_RR, name, 0, arg);
	req->rr_cb = cb;
	req->rrtype = rrtype;
	if (dns_name_check(name, fqdn, sizeof(fqdn)) < 0)
		return (dns_req_early(req, DNS_NOTFOUND, "malformed name"));
	xfree(req->name);
	req->name = xstrdup(fqdn);
	why = strbuf_new(0, 1024);
	if (dns_query_start(req, fqdn, rrtype, 0, why) < 0)
		dns_req_early(req, DNS_TEMPFAIL, STRBUF_STR(why));
	else
		dns_req_arm(req);
	strbuf_free(why);
	return (req);
}

/* dns_txt_decode - the character-strings of one TXT record, joined */
int
dns_txt_decode(const unsigned char *rdata, size_t len, struct strbuf *out)
{
	size_t  pos = 0;
	size_t  n;

	while (pos < len) {
		n = rdata[pos++];
		if (pos + n > len)
			return (-1);
		strbuf_append(out, rdata + pos, n);
		pos += n;
	}
	return (0);
}

/* dns_cancel - abandon a request; its callback will not be called */
void
dns_cancel(struct dns_req *req)
{
	if (req != 0)
		dns_req_free(req);
}

/* dns_free - cancel everything and delete the resolver */
void
dns_free(void)
{
	struct dns_query *q;
	size_t  i;

	while (dns_reqs)
		dns_req_free(dns_reqs);
	for (i = 0; i < DNS_PTR_CACHE; i++)
		dns_ptr_forget(&dns_ptr_cache[i]);
	if (dns_ev) {
		event_free(dns_ev);
		dns_ev = 0;
	}
	if (dns_ctx) {
		ub_ctx_delete(dns_ctx);
		dns_ctx = 0;
	}
	while ((q = dns_orphans) != 0) {
		dns_orphans = q->next;
		xfree(q);
	}
	dns_base = 0;
}
