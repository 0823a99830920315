#ifndef SENDARIX_SMTP_ADDR_H
#define SENDARIX_SMTP_ADDR_H

#include <stddef.h>

struct strbuf;

/*
 * The <path> of SMTP MAIL FROM and RCPT TO (RFC 5321 section 4.1.2, with
 * RFC 6531 UTF-8 when asked for). See smtp_addr.c.
 */

/* Input flags for smtp_addr_parse(). */
#define SMTP_ADDR_NULL_OK	(1 << 0)	/* "<>" is allowed (MAIL) */
#define SMTP_ADDR_POSTMASTER_OK	(1 << 1)	/* "<postmaster>" (RCPT) */
#define SMTP_ADDR_UTF8		(1 << 2)	/* UTF-8 allowed (SMTPUTF8) */
#define SMTP_ADDR_BARE_OK	(1 << 3)	/* tolerate no angle brackets */

/* Result bits returned by smtp_addr_parse(). */
#define SMTP_ADDR_F_NULL	(1 << 0)	/* the null path "<>" */
#define SMTP_ADDR_F_ROUTE	(1 << 1)	/* a source route was removed */
#define SMTP_ADDR_F_QUOTED	(1 << 2)	/* quoted-string local part */
#define SMTP_ADDR_F_LITERAL	(1 << 3)	/* [address literal] domain */
#define SMTP_ADDR_F_UTF8	(1 << 4)	/* non-ASCII seen */
#define SMTP_ADDR_F_NODOMAIN	(1 << 5)	/* "<postmaster>" */
#define SMTP_ADDR_F_BARE	(1 << 6)	/* no angle brackets */

#define SMTP_ADDR_LEN_MAX	512		/* whole address, octets */
#define SMTP_ADDR_DOMAIN_MAX	255
#define SMTP_ADDR_LABEL_MAX	63

extern int smtp_addr_parse(const char *, int, char **, const char **,
			           const char **);
extern const char *smtp_addr_domain(const char *);
extern int smtp_addr_local(const char *, struct strbuf *);
extern int smtp_addr_tricky(const char *);
extern int smtp_addr_utf8_valid(const char *, size_t);

#endif
