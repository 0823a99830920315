#ifndef SENDARIX_SMTP_REPLY_H
#define SENDARIX_SMTP_REPLY_H

#include <stddef.h>

struct strbuf;

/*
 * SMTP server replies as a client reads them (RFC 5321 section 4.2):
 * one or more lines "ddd-text" ending with "ddd text" (or "ddd"), each
 * line ending in CRLF (a bare LF is tolerated). The enhanced status code
 * (RFC 3463, RFC 2034) of the first line is taken when it is there.
 * See smtp_reply.c.
 */
#define SMTP_REPLY_BAD	(-1)		/* malformed or over the limit */
#define SMTP_REPLY_MORE	0		/* need more bytes */
#define SMTP_REPLY_OK	1		/* one whole reply */

#define SMTP_REPLY_DSN_MAX	16	/* "5.1.10" and room to spare */

struct smtp_reply {
	int     code;			/* 200..599 */
	char    dsn[SMTP_REPLY_DSN_MAX];	/* "5.1.1", or "" if none */
	size_t  nlines;
	struct strbuf *text;		/* the lines, codes included, no
					 * CRLF, joined by '\n'; control
					 * characters made '?' */
};

extern void smtp_reply_init(struct smtp_reply *);
extern void smtp_reply_clear(struct smtp_reply *);
extern int smtp_reply_parse(const char *, size_t, size_t,
			            struct smtp_reply *, size_t *);
extern int smtp_reply_dsn(const char *, char *, size_t);
extern int smtp_reply_flat(const struct smtp_reply *, struct strbuf *);
extern const char *smtp_reply_line(const struct smtp_reply *, size_t,
				           size_t *);

#endif
