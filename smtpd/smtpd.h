#ifndef SENDARIX_SMTPD_H
#define SENDARIX_SMTPD_H

/*
 * smtpd - private interfaces of the SMTP server. See smtpd.c.
 */

#include <sys/types.h>
#include <netinet/in.h>
#include <stddef.h>

#include "attr.h"
#include "cleanup_client.h"
#include "qfile.h"
#include "smtp_data.h"

struct bufferevent;
struct dns_req;
struct evbuffer;
struct event;
struct event_base;
struct matchlist;
struct ssl_ctx_st;
struct evp_md_st;
struct tls_peer_info;
struct strbuf;
struct stream;

/* The parameters smtpd reads (smtpd.c). */
struct smtpd_params {
	char   *myhostname;
	char   *mail_name;
	char   *banner;
	char   *cleanup_path;		/* private/$cleanup_service_name */
	long long size_limit;		/* message_size_limit; 0: none */
	long long queue_minfree;	/* queue_minfree, bytes */
	long    rcpt_limit;
	long    line_limit;
	long    soft_error_limit;
	long    hard_error_limit;
	long    timeout;		/* smtpd_timeout, seconds */
	long    cleanup_timeout;
	long    conn_limit;
	long    max_sessions;
	int     forbid_bare_newline;
	int     peername_lookup;	/* smtpd_peername_lookup */
	struct matchlist *mynetworks;
	struct matchlist *relay_domains;	/* NULL: nothing relays */
	struct matchlist *conn_exceptions;
	/* TLS (smtpd_tls.c). */
	int     tls_level;		/* TLS_SERVER_LEVEL_* */
	int     tls_wrapper;		/* smtpd_tls_wrappermode */
	int     tls_received_header;	/* smtpd_tls_received_header */
	long    starttls_timeout;	/* smtpd_starttls_timeout, seconds */
	struct ssl_ctx_st *tls_ctx;	/* NULL: TLS not available */
	int     tls_ask_ccert;		/* ask for client certificates */
	int     tls_req_ccert;		/* and refuse without a verified one */
	long    tls_loglevel;		/* smtpd_tls_loglevel */
	const struct evp_md_st *tls_md;	/* smtpd_tls_fingerprint_digest */
};
extern struct smtpd_params smtpd_var;

/* Session states. */
#define SMTPD_ST_CMD		0	/* reading commands */
#define SMTPD_ST_CLEANUP_OPEN	1	/* waiting for cleanup's queue ID */
#define SMTPD_ST_DATA		2	/* reading DATA content */
#define SMTPD_ST_BDAT		3	/* reading a BDAT chunk */
#define SMTPD_ST_CLEANUP_DONE	4	/* waiting for cleanup's verdict */
#define SMTPD_ST_CLOSING	5	/* sending the last reply */
#define SMTPD_ST_LOOKUP		6	/* client name lookup before 220 */
#define SMTPD_ST_CHECK		7	/* a restriction waits (DNS, policy) */
#define SMTPD_ST_TLS		8	/* TLS handshake in progress */

/* Per-command counters, in the order of the disconnect log line. */
#define SMTPD_CMD_EHLO		0
#define SMTPD_CMD_HELO		1
#define SMTPD_CMD_STARTTLS	2
#define SMTPD_CMD_AUTH		3
#define SMTPD_CMD_MAIL		4
#define SMTPD_CMD_RCPT		5
#define SMTPD_CMD_BDAT		6
#define SMTPD_CMD_DATA		7
#define SMTPD_CMD_RSET		8
#define SMTPD_CMD_NOOP		9
#define SMTPD_CMD_QUIT		10
#define SMTPD_CMD_VRFY		11
#define SMTPD_CMD_EXPN		12
#define SMTPD_CMD_HELP		13
#define SMTPD_CMD_UNKNOWN	14
#define SMTPD_CMD_COUNT		15

/* A client on a unix socket (smtpd_session.c). */
#define SMTPD_LOCAL_ADDR	"unix"		/* shown as the address */
#define SMTPD_LOCAL_NAME	"localhost"

struct cleanup_client;
struct smtpd_check;

/* The state of DATA or BDAT content; only while a message comes in. */
struct smtpd_msg {
	signed char data_mode;		/* SMTPD_CMD_DATA or SMTPD_CMD_BDAT */
	char    too_big;
	char    bare;			/* bare CR or LF seen (forbidden) */
	char    bdat_last;
	char    bdat_discard;		/* throw this chunk away... */
	struct smtp_data scan;		/* content scanner (smtp_data.h) */
	long long content_size;
	struct strbuf *chunk;		/* content for cleanup; NULL when idle */
	unsigned long long bdat_left;	/* bytes of this chunk still due */
	unsigned long long bdat_len;	/* size of this chunk */
	char   *bdat_reply;		/* ...and then say this */
};

struct smtpd_session {
	struct smtpd_session *next;
	struct smtpd_session *prev;
	struct stream *stream;		/* the client connection */
	/* NULL while idle: made when needed (docs/decisions.md). */
	struct evbuffer *reply;		/* replies not yet flushed */
	struct strbuf *line;		/* the current command line */
	struct event *delay_ev;		/* soft error limit pause */
	struct event *free_ev;		/* deferred free */
	char   *name;			/* verified client name, or "unknown" */
	struct dns_req *dns;		/* client name lookup in progress */
	char   *helo;			/* HELO/EHLO argument or NULL */
	char   *tls_info;		/* "TLSv1.3 with cipher ..." or NULL */
	struct smtpd_check *check;	/* restriction state (smtpd_check.c) */
	struct smtpd_sasl *sasl;	/* AUTH state (smtpd_sasl.c) or NULL */
	struct tls_peer_info *ccert;	/* client certificate, or NULL */
	long    same;			/* sessions from addr at connect */
	int     errors;			/* 4xx/5xx replies so far */
	/* Small values, packed: thousands of idle sessions carry them. */
	signed char state;		/* SMTPD_ST_* */
	signed char trusted;		/* in mynetworks: 1, 0, -1 (retry) */
	signed char cmd_waiting;	/* counter of the command that waits */
	char    local;			/* on a unix socket: no IP address */
	char    esmtp;			/* EHLO seen */
	char    delayed;		/* a reply waits for delay_ev */
	char    paused;			/* cleanup backpressure */
	char    skip_line;		/* discarding an over-long line */
	char    eof;			/* the client has closed its side */
	char    out_blocked;		/* the client does not read replies */
	char    closing_logged;
	char    counted;		/* in the per-address connection count */
	char    ill_pipelining;		/* commands sent ahead of time */
	char    line_seen;		/* the last command line was not empty */
	char    tls_greet;		/* wrappermode: 220 after the handshake */
	signed char tls_refuse;		/* wrappermode: 421 after it (SMTPD_REFUSE_*) */
	char    addr[INET6_ADDRSTRLEN + 8];	/* client address, text */

	/* Counters for the disconnect line. */
	unsigned cmd_ok[SMTPD_CMD_COUNT];
	unsigned cmd_total[SMTPD_CMD_COUNT];

	/* The mail transaction. */
	char   *sender;			/* NULL: no MAIL yet; "" null sender */
	char  **rcpts;
	size_t  nrcpt;
	size_t  rcpt_cap;
	long long declared_size;	/* SIZE=, or -1 */
	char   *dsn_envid;		/* ENVID=, decoded, or NULL */
	char  **rcpt_notify;		/* per rcpt: NOTIFY= (canonical) */
	char  **rcpt_orcpt;		/* per rcpt: ORCPT= (canonical xtext) */
	char   *pend_rcpt;		/* RCPT waiting for its restrictions */
	char   *pend_notify;
	char   *pend_orcpt;
	unsigned rcpt_tried;		/* RCPT commands in this transaction */
	int     pend_pflags;
	signed char dsn_ret;		/* RET= (lib/global/dsn.h DSN_RET_*) */
	char    body_8bit;
	char    smtputf8;
	char    bdat_used;		/* BDAT seen in this transaction */
	char    cleanup_failed;

	/* Content: NULL until DATA or BDAT (docs/decisions.md). */
	struct smtpd_msg *msg;

	/* cleanup. */
	struct cleanup_client *cleanup;
	char   *cleanup_reason;		/* from cleanup, on failure */
	char    queue_id[QFILE_ID_MAX + 1];
};

/* smtpd_session.c */
extern void smtpd_session_accept(int, const struct sockaddr *, socklen_t);
extern size_t smtpd_session_count(void);
extern void smtpd_session_shutdown(void);
extern void smtpd_reply(struct smtpd_session *, const char *,...)
		__attribute__((format(printf, 2, 3)));
extern void smtpd_session_resume(struct smtpd_session *);
extern void smtpd_session_reset(struct smtpd_session *);
extern void smtpd_session_reject_log(struct smtpd_session *, const char *,
				             const char *, const char *);
extern const char *smtpd_protocol(const struct smtpd_session *);
extern void smtpd_session_cmd_done(struct smtpd_session *, int);

/* Why a wrappermode session gets 421 once TLS is up (tls_refuse). */
#define SMTPD_REFUSE_NONE	0
#define SMTPD_REFUSE_CONN	1	/* smtpd_client_connection_count_limit */
#define SMTPD_REFUSE_BUSY	2	/* smtpd_max_sessions */

/* smtpd_tls.c */
extern void smtpd_tls_init(void);
extern int smtpd_tls_offered(const struct smtpd_session *);
extern int smtpd_tls_required(const struct smtpd_session *);
extern int smtpd_tls_start(struct smtpd_session *);
extern int smtpd_tls_event(struct smtpd_session *, int, int);
extern void smtpd_tls_policy(const struct smtpd_session *, struct strbuf *);

/* smtpd_data.c */
extern void smtpd_data_cmd(struct smtpd_session *, const char *);
extern void smtpd_bdat_cmd(struct smtpd_session *, const char *);
extern int smtpd_data_input(struct smtpd_session *);
extern int smtpd_bdat_input(struct smtpd_session *);
extern void smtpd_data_cleanup_reply(struct smtpd_session *, int,
				             const char *, const char *);

/* smtpd_cleanup.c */
extern int smtpd_cleanup_open(struct smtpd_session *);
extern void smtpd_cleanup_write(struct smtpd_session *, const void *,
				        size_t);
extern void smtpd_cleanup_finish(struct smtpd_session *);
extern size_t smtpd_cleanup_pending(struct smtpd_session *);
extern void smtpd_cleanup_stalled(struct smtpd_session *);
extern void smtpd_cleanup_close(struct smtpd_session *);

/* Pause the client above, resume it below (lib/global/cleanup_client.h). */
#define SMTPD_CLEANUP_HIWAT	CLEANUP_CLIENT_HIWAT
#define SMTPD_CLEANUP_LOWAT	CLEANUP_CLIENT_LOWAT
#define SMTPD_OUT_HIWAT		(256 * 1024)	/* unread replies: pause */
#define SMTPD_OUT_LOWAT		(64 * 1024)	/* resume below */

/* smtpd_addr.c */
#define SMTPD_CHECK_OK		0
#define SMTPD_CHECK_REJECT	(-1)
#define SMTPD_CHECK_WAIT	1	/* the answer comes later */
#define SMTPD_CHECK_DUNNO	2	/* no decision: next restriction */
extern int smtpd_check_unauth_dest(struct smtpd_session *, const char *,
				           int, struct strbuf *);
extern int smtpd_check_client(const char *, struct matchlist *);
extern int smtpd_check_queue(long long);

/* smtpd_check.c: restriction lists, one per stage. */
#define SMTPD_STAGE_CLIENT	0	/* smtpd_client_restrictions */
#define SMTPD_STAGE_HELO	1
#define SMTPD_STAGE_SENDER	2
#define SMTPD_STAGE_RELAY	3
#define SMTPD_STAGE_RCPT	4
#define SMTPD_STAGE_DATA	5
#define SMTPD_STAGE_EOD		6	/* smtpd_end_of_data_restrictions */
#define SMTPD_STAGE_COUNT	7
#define SMTPD_STAGE_BIT(n)	(1 << (n))
/* smtpd_delay_reject = yes: everything up to RCPT is decided at RCPT. */
#define SMTPD_STAGES_RCPT	(SMTPD_STAGE_BIT(SMTPD_STAGE_CLIENT) \
				 | SMTPD_STAGE_BIT(SMTPD_STAGE_HELO) \
				 | SMTPD_STAGE_BIT(SMTPD_STAGE_SENDER) \
				 | SMTPD_STAGE_BIT(SMTPD_STAGE_RELAY) \
				 | SMTPD_STAGE_BIT(SMTPD_STAGE_RCPT))

typedef void (*smtpd_check_done) (struct smtpd_session *, int);

extern int smtpd_check_init(void);
extern int smtpd_check_need_dns(void);
extern int smtpd_check_empty(int);
extern int smtpd_check_run(struct smtpd_session *, int, const char *,
			           const char *, int, smtpd_check_done);
extern const char *smtpd_check_reply(struct smtpd_session *);
extern const char *smtpd_check_hold(struct smtpd_session *);
extern const char *smtpd_check_discard(struct smtpd_session *);
extern const char *smtpd_check_prepend(struct smtpd_session *);
extern void smtpd_check_reset(struct smtpd_session *);
extern void smtpd_check_free(struct smtpd_session *);

/* smtpd_sasl.c: SMTP AUTH (Cyrus SASL, XOAUTH2). */
struct smtpd_sasl;

extern void smtpd_sasl_pre_init(void);
extern void smtpd_sasl_post_init(struct event_base *);
extern const char *smtpd_sasl_ehlo(struct smtpd_session *);
extern int smtpd_auth_cmd(struct smtpd_session *, const char *);
extern int smtpd_sasl_line(struct smtpd_session *, int);
extern size_t smtpd_sasl_line_limit(struct smtpd_session *);
extern const char *smtpd_sasl_username(const struct smtpd_session *);
extern const char *smtpd_sasl_method(const struct smtpd_session *);
extern int smtpd_sasl_header(void);
extern int smtpd_sasl_tls(const struct smtpd_session *);
extern void smtpd_sasl_free(struct smtpd_session *);

/* smtpd_policy.c: the policy delegation protocol (SMTPD_POLICY_README). */
struct smtpd_policy;
struct smtpd_policy_req;
typedef void (*smtpd_policy_cb) (const char *, void *);

extern struct smtpd_policy *smtpd_policy_open(const char *, struct strbuf *);
extern struct smtpd_policy_req *smtpd_policy_query(struct smtpd_policy *,
					         const char *, smtpd_policy_cb,
						           void *);
extern void smtpd_policy_cancel(struct smtpd_policy_req *);
extern void smtpd_policy_set_limits(long, long);

#endif
