#ifndef SENDARIX_DSN_H
#define SENDARIX_DSN_H

#include <stddef.h>
#include <time.h>

struct strbuf;

/*
 * Delivery status notifications: the SMTP DSN extension's parameters
 * (RFC 3461) and the report itself (RFC 3464, RFC 6522).
 */

/* NOTIFY= flags; 0 means "not given" (the MTA's default applies). */
#define DSN_NOTIFY_NEVER	(1 << 0)
#define DSN_NOTIFY_SUCCESS	(1 << 1)
#define DSN_NOTIFY_FAILURE	(1 << 2)
#define DSN_NOTIFY_DELAY	(1 << 3)

/* RET= values. */
#define DSN_RET_NONE	0		/* not given: full message */
#define DSN_RET_FULL	1
#define DSN_RET_HDRS	2

/* Report types, as in the bounce request of docs/ipc.md. */
#define DSN_TYPE_FAILURE	1
#define DSN_TYPE_DELAY		2
#define DSN_TYPE_EXPIRED	3
#define DSN_TYPE_SUCCESS	4

#define DSN_ENVID_MAX	100		/* RFC 3461 4.4, decoded */
#define DSN_ORCPT_MAX	500		/* RFC 3461 4.2, encoded */
#define DSN_NOTIFY_BUFSIZE	32	/* "SUCCESS,FAILURE,DELAY" + NUL */

/* xtext (RFC 3461 4): '+' HEX HEX for anything outside 0x21..0x7e, '+', '='. */
extern int dsn_xtext_decode(const char *, size_t, struct strbuf *);
extern int dsn_xtext_encode(const char *, size_t, struct strbuf *);

/* ESMTP parameter values. */
extern int dsn_notify_parse(const char *, int *);
extern const char *dsn_notify_str(int, char *, size_t);
extern int dsn_ret_parse(const char *);
extern const char *dsn_ret_str(int);
extern int dsn_envid_parse(const char *, struct strbuf *);
extern int dsn_orcpt_parse(const char *, struct strbuf *);
extern int dsn_orcpt_canon(const char *, struct strbuf *);
extern int dsn_type_parse(const char *);
extern int dsn_notify_wants(int, int);

/* One recipient of a report. */
struct dsn_rcpt {
	const char *addr;		/* final recipient */
	const char *orcpt;		/* "type;address" decoded, or NULL */
	const char *dsn;		/* X.Y.Z */
	const char *relay;		/* host[addr]:port, "none" or NULL */
	const char *reply;		/* remote reply or own reason */
	const char *action;		/* success: "delivered", else relayed */
};

/* Everything a report is made of; nothing here is read from outside. */
struct dsn_report {
	int     type;			/* DSN_TYPE_* */
	const char *myhostname;
	const char *queue_id;		/* of the original */
	const char *sender;		/* the original sender; To: */
	const char *envid;		/* decoded ENVID, or NULL */
	int     ret;			/* DSN_RET_* */
	time_t  arrival;		/* of the original */
	time_t  now;			/* Date:, Last-Attempt-Date: */
	time_t  retry_until;		/* Will-Retry-Until (delay); 0: none */
	long    lifetime;		/* expired: maximal_queue_lifetime; 0 */
	const char *message_id;		/* without <> */
	const char *boundary;
	const struct dsn_rcpt *rcpts;
	size_t  nrcpt;
	const char *content;		/* original message, CRLF lines */
	size_t  content_len;
	size_t  size_limit;		/* bounce_size_limit */
};

extern int dsn_report_compose(const struct dsn_report *, struct strbuf *);

#endif
