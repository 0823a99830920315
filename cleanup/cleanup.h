#ifndef SENDARIX_CLEANUP_H
#define SENDARIX_CLEANUP_H

/*
 * cleanup - private interfaces of the cleanup daemon
 *
 * cleanup is event-driven (the lib/master/server.h skeleton), not one client
 * per process as in Postfix: many submissions share one process and one
 * loop, so that messages that finish together share one fsync of the
 * incoming/ directory (group commit, cleanup_commit.c).
 */

#include <stddef.h>
#include <time.h>

struct event;
struct event_base;
struct hdr;
struct qfile_out;
struct strbuf;

/* Parameters (cleanup.c). */
extern char *var_myhostname;
extern char *var_qmgr_service_name;
extern long long var_header_size_limit;
extern long long var_message_size_limit;
extern long long var_hopcount_limit;
extern long long var_cleanup_timeout;
extern long long var_cleanup_max_sessions;

#define CLEANUP_QUEUE_DIR	"."	/* skeleton chdirs to the queue */
#define CLEANUP_ENV_VALUE_MAX	4096	/* one envelope value */
#define CLEANUP_DATA_MAX	65536	/* one "data" value (ipc.md) */
#define CLEANUP_RCPT_MAX	100000	/* recipients per message */
#define CLEANUP_WRITE_ERROR	"4.3.0 Error: queue file write error"
#define CLEANUP_NO_SPACE	"4.3.1 Insufficient system storage"
#define CLEANUP_ENV_MAX		(16 * 1024 * 1024) /* all rcpts */

/* What the last "rcpt" has had added (notify, orcpt: once each). */
#define CLEANUP_RCPT_NONE	(-1)	/* no rcpt yet */
#define CLEANUP_RCPT_NOTIFY	(1 << 0)
#define CLEANUP_RCPT_ORCPT	(1 << 1)
#define CLEANUP_RCPT_DROPPED	(1 << 2)	/* over a limit: not kept */

/* Session states. */
#define CLEANUP_ST_ENVELOPE	0	/* reading the envelope list */
#define CLEANUP_ST_CONTENT	1	/* reading "data" attributes */
#define CLEANUP_ST_DRAIN	2	/* content refused: read to its end */
#define CLEANUP_ST_COMMIT	3	/* on the group commit list */
#define CLEANUP_ST_CLOSING	4	/* last reply queued; then close */
#define CLEANUP_ST_SYNC		5	/* file with a cleanup_sync worker */

/* One submission: one connection, one message. */
struct cleanup_sess {
	int     fd;
	int     state;
	struct event *rev;		/* read, with cleanup_timeout */
	struct event *wev;		/* write, when a reply is pending */
	struct strbuf *in;		/* unparsed input from in_off */
	size_t  in_off;
	struct strbuf *out;		/* reply not yet written */
	/* Envelope. */
	char   *sender;			/* NULL until seen */
	struct strbuf *rcpts;		/* NUL-terminated addresses */
	size_t  nrcpt;
	char   *client_addr;
	char   *client_name;
	char   *helo;
	char   *protocol;
	char   *tls;			/* smtpd's TLS description, or NULL */
	char   *sasl_method;		/* smtpd AUTH, or NULL */
	char   *sasl_username;
	char   *body;
	int     smtputf8;
	long long declared_size;	/* -1 unless size= was given */
	char   *ret;			/* DSN RET: FULL, HDRS or NULL */
	char   *envid;			/* DSN ENVID, decoded, or NULL */
	int     rcpt_dsn;		/* CLEANUP_RCPT_* of the last rcpt */
	char   *hold;			/* smtpd HOLD: commit into hold/ */
	char   *discard;		/* smtpd DISCARD: say 250, keep nothing */
	/* Content. */
	struct qfile_out *qf;
	char    id[64];			/* queue ID, or "NOQUEUE" */
	struct hdr *hdr;
	long long content_len;		/* bytes received */
	int     status;			/* 0, or 4/5 once refused */
	const char *reason;		/* with status 4/5 */
	/* Local submission on public/ (cleanup_local.c). */
	int     local;			/* on a public/ socket */
	int     local_user;		/* by an ordinary local user */
	long    local_uid;		/* peer uid, -1 if unknown */
	char   *uid_attr;		/* the uid as text, for A uid= */
	char   *login;			/* the uid's login name, or NULL */
	char   *full_name;		/* sendmail -F, or NULL */
	/* Lists. */
	struct cleanup_sess *prev;	/* all sessions */
	struct cleanup_sess *next;
	struct cleanup_sess *commit_next;	/* group commit list */
	/* cleanup_sync.c: under its lock while a worker has the file. */
	struct cleanup_sess *sync_next;
	int     sync_status;		/* qfile_out_sync() result */
	int     sync_errno;		/* its errno */
	struct strbuf *sync_err;	/* its error text */
};

/* cleanup_session.c */
extern void cleanup_session_init(struct event_base *);
extern void cleanup_session_accept(int);
extern size_t cleanup_session_count(void);
extern void cleanup_session_shutdown(void);
extern void cleanup_session_reply(struct cleanup_sess *, int, const char *);
extern void cleanup_session_refuse(struct cleanup_sess *, int, const char *);
extern const char *cleanup_write_reason(const char *, int);

/* cleanup_header.c */
extern int cleanup_content(struct cleanup_sess *, const char *, size_t);
extern int cleanup_content_end(struct cleanup_sess *);

/* cleanup_commit.c */
extern void cleanup_commit_init(struct event_base *);
extern void cleanup_commit_add(struct cleanup_sess *);
extern void cleanup_commit_run(void);

/* cleanup_sync.c */
extern void cleanup_sync_init(struct event_base *);
extern void cleanup_sync_add(struct cleanup_sess *);
extern void cleanup_sync_drain(void);

/* cleanup_trigger.c */
extern void cleanup_trigger_qmgr(void);

/* cleanup_local.c */
struct attr;
extern void cleanup_local_init(void);
extern void cleanup_local_accept(struct cleanup_sess *);
extern int cleanup_local_attr(struct cleanup_sess *, const struct attr *);
extern int cleanup_local_uid(struct cleanup_sess *, const struct attr *);
extern int cleanup_local_check(struct cleanup_sess *);
extern void cleanup_local_envelope(struct cleanup_sess *);
extern int cleanup_local_received(struct cleanup_sess *);
extern void cleanup_local_headers(struct cleanup_sess *, int,
				          struct strbuf *);
extern void cleanup_local_free(struct cleanup_sess *);

#endif
