#ifndef SENDARIX_DNS_H
#define SENDARIX_DNS_H

#include <stddef.h>

struct event_base;
struct strbuf;

/*
 * Asynchronous DNS for the delivery agent: where does mail for a domain
 * go (MX with RFC 5321 ordering, implicit MX, RFC 7505 null MX), and what
 * are the addresses of a host; for smtpd: the verified name of a client
 * address (PTR, then forward confirmation). One resolver (libunbound) per process, run
 * from the libevent loop; a lookup never blocks the loop. See dns.c.
 */

/* The outcome of a lookup. */
enum dns_status {
	DNS_OK,				/* result->addrs holds >= 1 address */
	DNS_TEMPFAIL,			/* SERVFAIL, timeout...: retry later */
	DNS_NOTFOUND,			/* NXDOMAIN, no data: permanent */
	DNS_NULLMX,			/* "MX 0 ." (RFC 7505): permanent */
};

/* Which address family to try first for one host (smtp_address_preference). */
enum dns_prefer {
	DNS_PREFER_ANY,			/* random order within each host */
	DNS_PREFER_IPV4,
	DNS_PREFER_IPV6,
};

/* Families to look up (inet_protocols): a mask. */
#define DNS_FAMILY_IPV4		(1 << 0)
#define DNS_FAMILY_IPV6		(1 << 1)
#define DNS_FAMILY_ALL		(DNS_FAMILY_IPV4 | DNS_FAMILY_IPV6)

#define DNS_NAME_MAX		253	/* text form, no trailing dot */
#define DNS_ADDR_STRLEN		46	/* INET6_ADDRSTRLEN */
#define DNS_MX_MAX		32	/* exchangers looked up per domain */
#define DNS_ADDR_MAX		128	/* addresses in one result */
#define DNS_SERVERS_MAX		8	/* forwarders in dns_resolver */
#define DNS_TIMEOUT_DEFAULT	30	/* seconds, whole lookup */

/* One address to try, in the order to try it. */
struct dns_addr {
	char   *host;			/* exchanger or host name */
	int     pref;			/* MX preference; 0 implicit MX, host */
	int     family;			/* AF_INET or AF_INET6 */
	int     secure;			/* the A/AAAA answer was validated */
	char    addr[DNS_ADDR_STRLEN];	/* text form */
};

/* The answer to one lookup; handed to the callback, which frees it. */
struct dns_result {
	enum dns_status status;
	char   *name;			/* the domain or host looked up */
	char   *reason;			/* why, for logs and DSNs; "" if none */
	int     secure;			/* MX (or host) answer DNSSEC-secure */
	int     implicit_mx;		/* no MX: the domain is its own MX */
	int     partial;		/* an exchanger got no address: tempfail */
	size_t  count;
	struct dns_addr *addrs;
};

typedef void (*dns_callback) (struct dns_result *, void *);

/* Record types for dns_lookup_rr(). */
#define DNS_TYPE_TXT		16
#define DNS_TYPE_TLSA		52

/* The records of one name and type; handed to the callback, which frees it. */
struct dns_rrset {
	enum dns_status status;		/* OK: count >= 1; NOTFOUND; TEMPFAIL */
	char   *name;
	char   *reason;			/* why, for logs; "" if none */
	int     secure;			/* the answer was DNSSEC-validated */
	int     bogus;			/* DNSSEC validation failed */
	size_t  count;
	unsigned char **data;		/* RDATA of each record */
	size_t *len;
};

typedef void (*dns_rr_callback) (struct dns_rrset *, void *);

struct dns_req;

/* One forwarder from dns_resolver. */
struct dns_server {
	int     family;			/* AF_INET or AF_INET6 */
	unsigned port;			/* 53 unless given */
	int     loopback;		/* 127/8 or ::1 */
	char    addr[DNS_ADDR_STRLEN];
};

/* One exchanger, for dns_mx_sort(). */
struct dns_mx {
	char   *host;
	int     pref;
};

/* The resolver (one per process). */
extern int dns_init(struct event_base *, const char *, struct strbuf *);
extern void dns_set_trust_anchor(const char *);
extern void dns_set_timeout(long);
extern void dns_set_families(int);
extern void dns_set_prefer(enum dns_prefer);
extern void dns_free(void);

/* Lookups; the callback is always called later, from the event loop. */
extern struct dns_req *dns_lookup_mx(const char *, dns_callback, void *);
extern struct dns_req *dns_lookup_host(const char *, dns_callback, void *);
extern struct dns_req *dns_lookup_ptr(const char *, dns_callback, void *);
extern struct dns_req *dns_lookup_rr(const char *, int, dns_rr_callback,
				             void *);
extern void dns_cancel(struct dns_req *);
extern struct dns_rrset *dns_rrset_free(struct dns_rrset *);
extern int dns_txt_decode(const unsigned char *, size_t, struct strbuf *);

/* Results. */
extern struct dns_result *dns_result_new(const char *);
extern int dns_result_add(struct dns_result *, const char *, int, int,
			          const char *, int);
extern void dns_result_prefer(struct dns_result *, enum dns_prefer);
extern struct dns_result *dns_result_free(struct dns_result *);
extern const char *dns_status_str(enum dns_status);

/* Pure helpers (parsers and ordering), also for tests. */
extern int dns_resolver_parse(const char *, struct dns_server *, size_t,
			              size_t *, struct strbuf *);
extern int dns_prefer_parse(const char *, enum dns_prefer *);
extern int dns_families_parse(const char *, int *);
extern int dns_name_check(const char *, char *, size_t);
extern int dns_mx_parse(const unsigned char *, size_t, int *, char *,
			        size_t);
extern void dns_mx_sort(struct dns_mx *, size_t);

#endif
