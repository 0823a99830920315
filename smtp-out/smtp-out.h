#ifndef SENDARIX_SMTP_OUT_H
#define SENDARIX_SMTP_OUT_H

/*
 * smtp-out - private interfaces of the delivery agent. See smtp-out.c.
 */

#include <sys/types.h>
#include <stddef.h>

#include "dns.h"
#include "qfile.h"
#include "smtp_reply.h"
#include "stream.h"

struct bufferevent;
struct event;
struct event_base;
struct strbuf;
struct mta_sts_policy;
struct smtp_sts_job;
struct ssl_st;

/* The parameters smtp-out reads (smtp-out.c). */
struct smtp_params {
	char   *helo_name;		/* smtp_helo_name */
	long    default_port;		/* smtp_default_port */
	long    connect_timeout;
	long    helo_timeout;
	long    mail_timeout;
	long    rcpt_timeout;
	long    data_init_timeout;
	long    data_xfer_timeout;
	long    data_done_timeout;
	long    rset_timeout;
	long    quit_timeout;
	long    cache_time;		/* smtp_connection_cache_time_limit */
	long    reuse_limit;		/* smtp_connection_reuse_count_limit */
	long    request_timeout;	/* smtp_request_timeout (qmgr side) */
	int     sts_enable;		/* smtp_mta_sts_enable */
	long    sts_port;		/* smtp_mta_sts_port */
	long    sts_timeout;		/* smtp_mta_sts_timeout */
	char   *sts_cafile;		/* smtp_mta_sts_CAfile */
	int     tlsrpt_enable;		/* smtp_tls_rpt_enable */

	/* Outbound TLS (smtp_tls.c). */
	char   *tls_level;		/* smtp_tls_security_level */
	char   *tls_policy_maps;	/* smtp_tls_policy_maps */
	char   *tls_CAfile;		/* smtp_tls_CAfile */
	char   *tls_CApath;		/* smtp_tls_CApath */
	char   *tls_protocols;		/* smtp_tls_protocols */
	char   *tls_mand_protocols;	/* smtp_tls_mandatory_protocols */
	char   *tls_ciphers;		/* smtp_tls_ciphers */
	char   *tls_mand_ciphers;	/* smtp_tls_mandatory_ciphers */
	char   *tls_verify_match;	/* smtp_tls_verify_cert_match */
	char   *tls_secure_match;	/* smtp_tls_secure_cert_match */
	char   *tls_fpt_match;		/* smtp_tls_fingerprint_cert_match */
	char   *tls_fpt_digest;		/* smtp_tls_fingerprint_digest */
	char   *tls_servername;		/* smtp_tls_servername */
	long    tls_loglevel;		/* smtp_tls_loglevel */
	long    starttls_timeout;	/* smtp_starttls_timeout */
	long    tls_sess_timeout;	/* smtp_tls_session_cache_timeout */

	/* Client SASL (smtp_sasl.c). */
	int     sasl_enable;		/* smtp_sasl_auth_enable */
	char   *sasl_passwd_maps;	/* smtp_sasl_password_maps */
	char   *sasl_sec_opts;		/* smtp_sasl_security_options */
	char   *sasl_tls_sec_opts;	/* smtp_sasl_tls_security_options */
	int     sasl_soft_bounce;	/* smtp_sasl_auth_soft_bounce */
};
extern struct smtp_params smtp_var;

#define SMTP_REPLY_LIMIT	(64 * 1024)	/* longest server reply */
#define SMTP_REQUEST_LIMIT	(16 * 1024 * 1024)	/* longest request */
#define SMTP_CONTENT_HIWAT	(256 * 1024)	/* content queued at once */
#define SMTP_CONTENT_LOWAT	(64 * 1024)	/* refill below */

/* Recipient outcomes. */
#define SMTP_RCPT_TODO		0	/* no result yet */
#define SMTP_RCPT_ACCEPTED	1	/* RCPT 2xx; waiting for end of DATA */
#define SMTP_RCPT_SENT		2
#define SMTP_RCPT_DEFERRED	3
#define SMTP_RCPT_BOUNCED	4

#define SMTP_RCPT_FINAL(s)	((s) >= SMTP_RCPT_SENT)

struct smtp_rcpt {
	char   *addr;
	char   *orcpt;			/* "" when none */
	char   *notify;			/* "" when none */
	off_t   offset;			/* status byte in the file; -1 none */
	int     status;			/* SMTP_RCPT_* */
	char    dsn[SMTP_REPLY_DSN_MAX];
	char   *relay;			/* host[addr]:port or "none" */
	char   *reply;
	char   *tls;			/* tls= of the log line */
};

/* One element of the nexthop. */
struct smtp_dest {
	char   *text;			/* as written in the next hop */
	char   *host;			/* without brackets */
	unsigned port;
	int     mx;			/* look up MX records */
};

/* A failure that did not settle recipients by itself. */
struct smtp_fail {
	int     set;
	char    dsn[SMTP_REPLY_DSN_MAX];
	char   *relay;
	char   *reply;
};

/*
 * TLS security levels (smtp_tls_security_level, smtp_tls_policy_maps),
 * in the order a policy may only be raised: none < may < encrypt < the
 * levels that authenticate the server.
 */
#define SMTP_TLS_NONE		0
#define SMTP_TLS_MAY		1
#define SMTP_TLS_ENCRYPT	2
#define SMTP_TLS_DANE		3	/* not yet supported: defers */
#define SMTP_TLS_DANE_ONLY	4	/* not yet supported: defers */
#define SMTP_TLS_FINGERPRINT	5
#define SMTP_TLS_VERIFY		6
#define SMTP_TLS_SECURE		7

/*
 * The TLS policy of one delivery: from smtp_tls_security_level, then
 * smtp_tls_policy_maps for the destination, then whatever a later
 * lookup (MTA-STS, DANE) raises it to with smtp_tls_policy_raise().
 */
struct smtp_tls_policy {
	int     level;			/* SMTP_TLS_* */
	char   *match;			/* names (":"), or pins ("|"); NULL */
	char   *protocols;		/* NULL: by level */
	char   *ciphers;		/* grade; NULL: by level */
	char   *servername;		/* SNI; NULL: smtp_tls_servername */
	char   *source;			/* where the level came from */
};

struct smtp_sess;

/* One delivery request from qmgr. */
struct smtp_req {
	struct smtp_req *next;
	struct smtp_req *prev;
	struct bufferevent *bev;	/* the qmgr connection */
	struct event *timer;
	int     state;			/* SMTP_REQ_* */

	/* The request. */
	char   *queue_id;		/* "" until known */
	char   *queue_file;
	char   *nexthop;
	char   *sender;
	char   *ret;
	char   *envid;
	double  arrival;
	double  active;
	struct smtp_rcpt *rcpts;
	size_t  nrcpt;

	/* The message. */
	int     qfd;			/* the queue file, shared lock; -1 */
	struct qfile_msg *msg;
	int     body_8bit;
	int     smtputf8;

	/* Where to go. */
	struct smtp_dest *dests;
	size_t  ndest;
	size_t  dest_i;			/* next one to resolve */
	struct dns_req *dns;
	struct dns_result *addrs;	/* addresses of the current dest */
	size_t  addr_i;			/* next one to try */
	unsigned port;			/* of the current dest */
	struct smtp_sess *sess;
	struct smtp_sts_job *sts_job;	/* MTA-STS discovery in flight */
	struct mta_sts_policy *sts;	/* MTA-STS policy of the current dest */
	struct smtp_fail temp;		/* last soft failure */
	struct smtp_fail perm;		/* last hard failure */
	struct smtp_tls_policy tls;	/* of the current destination */
	char   *cache_key;		/* next hop and TLS policy */
	struct dns_rrset *dane_rs;	/* TLSA answer for dane_host; NULL */
	char   *dane_host;		/* host whose TLSA state is known */
	int     tls_plain_retry;	/* next connect: no STARTTLS */

	/* Times, for delays=a/b/c/d. */
	double  t_recv;
	double  t_conn;			/* 0: no session was set up */
	double  t_done;
};

#define SMTP_REQ_READ		0	/* reading the request */
#define SMTP_REQ_DELIVER	1	/* delivering */
#define SMTP_REQ_REPLY		2	/* writing the reply */

/* Session states, in order: before SMTP_ST_MAIL is the set-up. */
#define SMTP_ST_CONNECT		0
#define SMTP_ST_GREETING	1
#define SMTP_ST_EHLO		2
#define SMTP_ST_HELO		3
#define SMTP_ST_STARTTLS	4	/* waiting for the STARTTLS reply */
#define SMTP_ST_TLS		5	/* in the TLS handshake */
#define SMTP_ST_AUTH		6	/* in the AUTH exchange */
#define SMTP_ST_MAIL		7
#define SMTP_ST_RCPT		8
#define SMTP_ST_DATA		9
#define SMTP_ST_CONTENT		10	/* sending the content */
#define SMTP_ST_DOT		11	/* waiting for the end-of-data reply */
#define SMTP_ST_RSET		12
#define SMTP_ST_QUIT		13
#define SMTP_ST_IDLE		14	/* in the connection cache */

/* Extensions the peer offers. */
#define SMTP_FEAT_ESMTP		(1 << 0)
#define SMTP_FEAT_PIPELINING	(1 << 1)
#define SMTP_FEAT_SIZE		(1 << 2)
#define SMTP_FEAT_8BITMIME	(1 << 3)
#define SMTP_FEAT_SMTPUTF8	(1 << 4)
#define SMTP_FEAT_DSN		(1 << 5)
#define SMTP_FEAT_STARTTLS	(1 << 6)
#define SMTP_FEAT_AUTH		(1 << 7)

/* One SMTP connection. */
struct smtp_sess {
	struct smtp_sess *next;		/* all sessions */
	struct smtp_sess *prev;
	struct stream *stream;		/* the SMTP connection */
	struct event *timer;
	struct smtp_req *req;		/* owner; NULL when idle or closing */
	char   *key;			/* the nexthop, for the cache */
	char   *host;
	char    addr[DNS_ADDR_STRLEN];
	unsigned port;
	char   *relay;			/* host[addr]:port */
	char   *peer;			/* host[addr] */
	char   *dest;			/* the next-hop element, as written */
	char   *dest_host;		/* its domain or host, no brackets */
	int     dest_mx;		/* it was looked up as MX */
	int     state;			/* SMTP_ST_* */
	int     feat;			/* SMTP_FEAT_* */
	long long peer_size;		/* SIZE limit; 0 none */
	long    uses;			/* transactions started */
	int     reused;			/* this transaction reuses it */
	int     got_reply;		/* a reply came in this transaction */
	int     freeing;
	struct smtp_reply reply;

	/* TLS and AUTH. */
	struct smtp_tls_policy tls;	/* the policy it was opened for */
	int     no_starttls;		/* plaintext retry: no STARTTLS */
	int     tls_on;			/* under TLS */
	int     tls_trust;		/* TLS_TRUST_* once under TLS */
	char   *tls_info;		/* "TLSv1.3 with cipher ..." */
	char   *tls_field;		/* tls= of the status lines */
	int     dane;			/* TLSA records set on the handshake */
	char   *auth_mechs;		/* the AUTH line of EHLO; NULL */
	int     auth_done;		/* authenticated, or did not need to */
	struct smtp_sasl *sasl;		/* the AUTH exchange in progress */

	/* The transaction. */
	size_t *tx;			/* indexes of recipients in it */
	size_t  ntx;
	size_t  rcpt_sent;		/* RCPT commands written */
	size_t  rcpt_recv;		/* RCPT replies read */
	size_t  naccepted;
	int     pipelined;		/* MAIL..DATA sent in one go */
	int     mail_failed;
	int     data_sent;

	/* The content. */
	size_t  cpos;			/* bytes queued, late headers first */
	struct qfile_cursor cur;	/* the next C record to read */
	int     bol;			/* at the beginning of a line */
	int     last_cr;		/* the last byte was CR */
};

/* smtp_request.c */
extern void smtp_request_accept(int);
extern size_t smtp_request_count(void);
extern void smtp_request_shutdown(void);
extern void smtp_request_done(struct smtp_req *);
extern void smtp_rcpt_set(struct smtp_req *, size_t, int, const char *,
			          const char *, const char *);
extern double smtp_now(void);

/* smtp_nexthop.c */
extern int smtp_nexthop_parse(const char *, unsigned, struct smtp_dest **,
			              size_t *, struct strbuf *);
extern void smtp_dest_free(struct smtp_dest *, size_t);
extern void smtp_nexthop_start(struct smtp_req *);
extern void smtp_nexthop_next(struct smtp_req *);
extern void smtp_fail_set(struct smtp_fail *, const char *, const char *,
			          const char *);
extern void smtp_fail_clear(struct smtp_fail *);

/* smtp_conn.c */
extern struct smtp_sess *smtp_conn_open(struct smtp_req *, const char *,
				                const struct dns_addr *,
				                unsigned);
extern struct smtp_sess *smtp_conn_cache_take(const char *);
extern void smtp_conn_cache_put(struct smtp_sess *);
extern void smtp_conn_free(struct smtp_sess *);
extern void smtp_conn_release(struct smtp_sess *, int);
extern void smtp_conn_quit(struct smtp_sess *);
extern void smtp_conn_timer(struct smtp_sess *, long);
extern void smtp_conn_shutdown(void);
extern size_t smtp_conn_count(void);

/* smtp_proto.c */
extern void smtp_proto_start(struct smtp_sess *);
extern void smtp_proto_transaction(struct smtp_sess *);
extern int smtp_proto_input(struct smtp_sess *);
extern void smtp_proto_event(struct smtp_sess *, int, int);
extern void smtp_proto_timeout(struct smtp_sess *);
extern void smtp_proto_written(struct smtp_sess *);

/* smtp_sts.c */
typedef void (*smtp_sts_callback) (struct mta_sts_policy *, const char *,
				           const char *, void *);
extern struct smtp_sts_job *smtp_sts_lookup(const char *, smtp_sts_callback,
					            void *);
extern void smtp_sts_init(struct event_base *);
extern void smtp_sts_cancel(struct smtp_sts_job *);
extern void smtp_sts_shutdown(void);
extern void smtp_tlsrpt(const struct smtp_req *, const char *, const char *,
			        const char *, const char *, const char *);
extern int smtp_sts_policy_host(struct smtp_req *, const char *,
				        struct smtp_tls_policy *,
				        struct strbuf *);
extern void smtp_sts_raise_cached(struct smtp_req *);
extern void smtp_sts_tls_outcome(struct smtp_sess *, const char *,
				         const char *);

/* smtp_dane.c */
extern int smtp_dane_lookup_due(struct smtp_req *, const struct dns_addr *);
extern int smtp_dane_policy_host(struct smtp_req *, const char *,
				         struct smtp_tls_policy *,
				         struct strbuf *);
extern int smtp_dane_ssl(struct smtp_sess *, struct ssl_st *,
			         struct strbuf *);
extern int smtp_dane_check(struct smtp_sess *, struct strbuf *);
extern void smtp_dane_free(struct smtp_req *);
/* smtp_tls.c */
extern void smtp_tls_pre_init(void);
extern void smtp_tls_shutdown(void);
extern void smtp_tls_failed(struct smtp_sess *);
extern int smtp_tls_level_parse(const char *);
extern const char *smtp_tls_level_name(int);
extern int smtp_tls_policy_parse(const char *, struct smtp_tls_policy *,
				         struct strbuf *);
extern void smtp_tls_policy_init(struct smtp_tls_policy *);
extern void smtp_tls_policy_free(struct smtp_tls_policy *);
extern void smtp_tls_policy_copy(struct smtp_tls_policy *,
				         const struct smtp_tls_policy *);
extern int smtp_tls_policy_lookup(const struct smtp_dest *,
				          struct smtp_tls_policy *,
				          struct strbuf *);
extern void smtp_tls_policy_raise(struct smtp_tls_policy *, int,
				          const char *, const char *);
extern int smtp_tls_policy_dest(struct smtp_req *, const struct smtp_dest *,
				        struct strbuf *);
extern int smtp_tls_policy_host(struct smtp_req *, const char *,
				        struct smtp_tls_policy *,
				        struct strbuf *);
extern char *smtp_tls_cache_key(const char *, const struct smtp_tls_policy *);
extern int smtp_tls_start(struct smtp_sess *, struct strbuf *);
extern int smtp_tls_check(struct smtp_sess *, struct strbuf *);
extern void smtp_tls_outcome(struct smtp_sess *, const char *,
			             const char *);

/* smtp_sasl.c */
struct smtp_sasl;
extern void smtp_sasl_pre_init(void);
extern int smtp_sasl_wanted(struct smtp_sess *);
extern int smtp_sasl_start(struct smtp_sess *, struct strbuf *);
extern int smtp_sasl_reply(struct smtp_sess *, struct strbuf *);
extern void smtp_sasl_free(struct smtp_sess *);

/* smtp_content.c */
extern int smtp_content_fill(struct smtp_sess *);

#endif
