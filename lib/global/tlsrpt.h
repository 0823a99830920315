#ifndef SENDARIX_TLSRPT_H
#define SENDARIX_TLSRPT_H

#include <stddef.h>
#include <time.h>

struct strbuf;

/*
 * TLS-RPT (RFC 8460): per policy domain, what happened to each TLS
 * session, kept in a small on-disk store; the daily JSON report. See
 * tlsrpt.c.
 */

/* One session outcome (or one policy fetch failure). */
struct tlsrpt_event {
	const char *domain;		/* the policy domain */
	const char *policy_type;	/* "sts", "tlsa", "no-policy-found" */
	const char *policy_text;	/* the policy as served, or NULL */
	const char *result;		/* "success" or an RFC 8460 type */
	const char *mx_host;		/* receiving-mx-hostname, or NULL */
	const char *sending_ip;		/* or NULL */
	const char *receiving_ip;	/* or NULL */
	const char *reason;		/* failure-reason-code, or NULL */
};

/* Who writes the reports. */
struct tlsrpt_org {
	const char *name;		/* organization-name */
	const char *contact;		/* contact-info */
	const char *sender;		/* our domain, for file names */
};

#define TLSRPT_STORE		"data/tlsrpt"	/* under the queue dir */

extern int tlsrpt_record(const char *, const struct tlsrpt_event *, time_t,
			         struct strbuf *);
extern int tlsrpt_report(const char *, const char *, const char *,
			         const struct tlsrpt_org *, size_t *,
			         struct strbuf *, struct strbuf *);
extern int tlsrpt_day_parse(const char *, time_t *);
extern int tlsrpt_rua_parse(const char *, struct strbuf *);
extern int tlsrpt_sent_check(const char *, const char *, const char *,
			             const char *);
extern int tlsrpt_sent_mark(const char *, const char *, const char *,
			            const char *, struct strbuf *);
extern int tlsrpt_expire(const char *, long, time_t, size_t *);

#endif
