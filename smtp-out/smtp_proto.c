/*
 * smtp_proto - the ESMTP client state machine
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	void	smtp_proto_transaction(struct smtp_sess *sess)
 *	int	smtp_proto_input(struct smtp_sess *sess)
 *	void	smtp_proto_event(struct smtp_sess *sess, int what, int err)
 *	void	smtp_proto_timeout(struct smtp_sess *sess)
 *	void	smtp_proto_written(struct smtp_sess *sess)
 *
 * DESCRIPTION
 *	A session goes CONNECT, GREETING (220 within smtp_helo_timeout),
 *	EHLO (HELO when EHLO gets 5xx), then one mail transaction per
 *	request: MAIL, RCPT for each recipient without a result, DATA, the
 *	content, and the end-of-data reply. With PIPELINING the MAIL, RCPT
 *	and DATA commands go out in one write and the replies are read in
 *	order (RFC 2920). Each stage has its own timeout.
 *
 *	STARTTLS (RFC 3207) and AUTH (RFC 4954) come between EHLO and the
 *	first transaction. When the session's TLS level is may or above and
 *	the server offers STARTTLS, it is sent; after "220" any byte already
 *	read from the server drops the connection, otherwise the handshake
 *	starts (smtp_tls_start()), its end is checked against the level
 *	(smtp_tls_check()) and EHLO is sent again, forgetting what the
 *	server offered in clear text. A level above may that cannot be met
 *	(STARTTLS not offered or refused, a failed handshake, a certificate
 *	that does not satisfy it) is a set-up failure with Postfix's reason
 *	("TLS is required, but was not offered by host X", 4.7.4; "Server
 *	certificate not verified", 4.7.5): never clear text. At may, a
 *	refused STARTTLS goes on in clear text, and a failed handshake
 *	tries the same address once more without STARTTLS. Then, with
 *	smtp_sasl_auth_enable, AUTH (smtp_sasl.c); a failure is a set-up
 *	failure (4.7.x; 5.7.x only with smtp_sasl_auth_soft_bounce = no).
 *
 *	DSN (RFC 3461): when the server offers DSN in its EHLO reply, MAIL
 *	gets RET= (as the sender gave it) and ENVID= (xtext-encoded again,
 *	it is kept decoded), and each RCPT gets NOTIFY= (canonical form)
 *	and ORCPT= (kept as xtext in the queue: sent in canonical form; a
 *	value that is not xtext is taken as decoded and encoded). To a
 *	server without DSN none of them is sent.
 *
 *	Results: RCPT 2xx makes a recipient wait for the end-of-data reply,
 *	which sends (2xx), defers (4xx) or bounces (5xx) every such
 *	recipient; RCPT 4xx defers and 5xx bounces that recipient. A MAIL
 *	or DATA refusal settles the recipients it concerns. Without an
 *	accepted recipient DATA is not sent (or, pipelined, its reply is
 *	ignored) and the session is RSET before it is cached.
 *
 *	Failures before the transaction (greeting, EHLO/HELO, the
 *	connection itself), a 421 reply at any point, and a lost
 *	connection, a timeout or a malformed reply before the content is
 *	sent move on to the next endpoint (smtp_nexthop_next()); recipients
 *	keep the results they already have. Once content has been sent,
 *	such a failure defers the recipients still without a result
 *	(4.4.2, 4.5.0): the message may have arrived. A reused connection
 *	that fails before its first reply is dropped and replaced by a new
 *	connection.
 *
 *	smtp_proto_transaction() starts a transaction on a ready session
 *	(new or from the cache). smtp_proto_input(), smtp_proto_event(),
 *	smtp_proto_timeout() and smtp_proto_written() are the session's
 *	callbacks (smtp_conn.c); smtp_proto_input() returns -1 when the
 *	session may be gone.
 *
 * DIAGNOSTICS
 *	Peer replies never end the process. Results use the Postfix
 *	wording: "host NAME[ADDR] said: 550 5.1.1 ... (in reply to RCPT TO
 *	command)", "connect to NAME[ADDR]:PORT: Connection refused",
 *	"conversation with NAME[ADDR] timed out while sending RCPT TO",
 *	"lost connection with NAME[ADDR] while receiving the initial server
 *	greeting".
 *
 * SEE ALSO
 *	RFC 5321, RFC 2920, RFC 1870, RFC 6152, RFC 6531, RFC 3461,
 *	RFC 3207, RFC 4954
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "dsn.h"
#include "log.h"
#include "server.h"
#include "smtp_reply.h"
#include "strbuf.h"
#include "tls.h"
#include "xmalloc.h"

#include "smtp-out.h"

/* What an ORCPT address type may be made of. */
#define SMTP_PROTO_ATOM	"abcdefghijklmnopqrstuvwxyz" \
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"

/* smtp_proto_stage - what we were doing, for "... while %s" */
static const char *
smtp_proto_stage(int state)
{
	switch (state) {
	case SMTP_ST_CONNECT:
		return ("connecting");
	case SMTP_ST_GREETING:
		return ("receiving the initial server greeting");
	case SMTP_ST_EHLO:
		return ("performing the EHLO handshake");
	case SMTP_ST_HELO:
		return ("performing the HELO handshake");
	case SMTP_ST_STARTTLS:
		return ("sending STARTTLS");
	case SMTP_ST_TLS:
		return ("performing the TLS handshake");
	case SMTP_ST_AUTH:
		return ("performing the AUTH exchange");
	case SMTP_ST_MAIL:
		return ("sending MAIL FROM");
	case SMTP_ST_RCPT:
		return ("sending RCPT TO");
	case SMTP_ST_DATA:
		return ("sending DATA command");
	case SMTP_ST_CONTENT:
		return ("sending message body");
	case SMTP_ST_DOT:
		return ("sending end of data -- message may be sent more "
			"than once");
	default:
		return ("closing the session");
	}
}

/* smtp_proto_cmd - the command a reply answers */
static const char *
smtp_proto_cmd(int state)
{
	switch (state) {
	case SMTP_ST_EHLO:
		return ("EHLO");
	case SMTP_ST_HELO:
		return ("HELO");
	case SMTP_ST_STARTTLS:
		return ("STARTTLS");
	case SMTP_ST_AUTH:
		return ("AUTH");
	case SMTP_ST_MAIL:
		return ("MAIL FROM");
	case SMTP_ST_RCPT:
		return ("RCPT TO");
	case SMTP_ST_DATA:
		return ("DATA");
	default:
		return ("end of DATA");
	}
}

/* smtp_proto_dsn - the reply's enhanced code, else class.0.0 */
static void
smtp_proto_dsn(const struct smtp_reply *r, int class, char *out,
	       size_t size)
{
	if (r->dsn[0])
		snprintf(out, size, "%c%s", class, r->dsn + 1);
	else
		snprintf(out, size, "%c.0.0", class);
}

/* smtp_proto_said - "host X said: REPLY (in reply to CMD command)" */
static char *
smtp_proto_said(struct smtp_sess *sess, const char *cmd)
{
	struct strbuf *sb = strbuf_new(256, 0);
	char   *s;

	strbuf_printf(sb, "host %s said: ", sess->peer);
	smtp_reply_flat(&sess->reply, sb);
	if (cmd)
		strbuf_printf(sb, " (in reply to %s command)", cmd);
	s = strbuf_steal(sb, NULL);
	strbuf_free(sb);
	return (s);
}

/* smtp_proto_status - the recipient status for a reply code */
static int
smtp_proto_status(int code)
{
	if (code >= 200 && code < 300)
		return (SMTP_RCPT_SENT);
	return (code >= 500 ? SMTP_RCPT_BOUNCED : SMTP_RCPT_DEFERRED);
}

/* smtp_proto_detach - the session and its request part */
static struct smtp_req *
smtp_proto_detach(struct smtp_sess *sess)
{
	struct smtp_req *req = sess->req;

	if (req && req->sess == sess)
		req->sess = NULL;
	sess->req = NULL;
	return (req);
}

/* smtp_proto_setup_fail - this endpoint is no good: try the next */
static int
smtp_proto_setup_fail(struct smtp_sess *sess, int perm, const char *dsn,
		      const char *text, int relay_none, int alive)
{
	struct smtp_req *req = smtp_proto_detach(sess);

	smtp_fail_set(perm ? &req->perm : &req->temp, dsn,
		      relay_none ? NULL : sess->relay, text);
	if (alive)
		smtp_conn_quit(sess);
	else
		smtp_conn_free(sess);
	smtp_nexthop_next(req);
	return (-1);
}

/* smtp_proto_size - the message as it goes out: late headers and content */
static long long
smtp_proto_size(const struct smtp_req *req)
{
	return (req->msg->size
		+ (req->msg->late ? (long long) req->msg->late->len : 0));
}

/* smtp_proto_tx_fail - the session broke in a transaction */
static int
smtp_proto_tx_fail(struct smtp_sess *sess, const char *dsn, const char *text)
{
	struct smtp_req *req = smtp_proto_detach(sess);
	size_t  i;

	if (sess->reused && !sess->got_reply) {
		/* A cached connection the server had given up: start over. */
		if (log_verbose)
			log_debug("%s: cached connection to %s failed: %s",
				  req->queue_id, sess->relay, text);
		smtp_conn_free(sess);
		req->t_conn = 0;
		smtp_nexthop_next(req);
		return (-1);
	}
	if (sess->state < SMTP_ST_CONTENT) {
		/* Nothing was sent: the next endpoint may do better. */
		for (i = 0; i < sess->ntx; i++)
			if (req->rcpts[sess->tx[i]].status
			    == SMTP_RCPT_ACCEPTED)
				req->rcpts[sess->tx[i]].status = SMTP_RCPT_TODO;
		smtp_fail_set(&req->temp, dsn, sess->relay, text);
		smtp_conn_free(sess);
		smtp_nexthop_next(req);
		return (-1);
	}
	for (i = 0; i < sess->ntx; i++)
		if (!SMTP_RCPT_FINAL(req->rcpts[sess->tx[i]].status))
			smtp_rcpt_set(req, sess->tx[i], SMTP_RCPT_DEFERRED, dsn,
				      sess->relay, text);
	smtp_conn_free(sess);
	smtp_request_done(req);
	return (-1);
}

/* smtp_proto_421 - the server is going away: next endpoint */
static int
smtp_proto_421(struct smtp_sess *sess, const char *cmd)
{
	struct smtp_req *req = smtp_proto_detach(sess);
	char    dsn[SMTP_REPLY_DSN_MAX];
	char   *text;
	size_t  i;

	for (i = 0; i < sess->ntx; i++)
		if (req->rcpts[sess->tx[i]].status == SMTP_RCPT_ACCEPTED)
			req->rcpts[sess->tx[i]].status = SMTP_RCPT_TODO;
	text = smtp_proto_said(sess, cmd);
	smtp_proto_dsn(&sess->reply, '4', dsn, sizeof(dsn));
	smtp_fail_set(&req->temp, dsn, sess->relay, text);
	xfree(text);
	smtp_conn_free(sess);
	smtp_nexthop_next(req);
	return (-1);
}

/* smtp_proto_end - the transaction is over: release and report */
static int
smtp_proto_end(struct smtp_sess *sess, int need_rset)
{
	struct smtp_req *req = smtp_proto_detach(sess);

	smtp_conn_release(sess, need_rset);
	smtp_nexthop_next(req);
	return (-1);
}

/* smtp_proto_settle - a reply decides some recipients */
static void
smtp_proto_settle(struct smtp_sess *sess, size_t idx, const char *cmd)
{
	struct smtp_req *req = sess->req;
	struct smtp_reply *r = &sess->reply;
	char    dsn[SMTP_REPLY_DSN_MAX];
	char   *text;
	int     status = smtp_proto_status(r->code);

	smtp_proto_dsn(r, status == SMTP_RCPT_SENT ? '2' :
		       status == SMTP_RCPT_BOUNCED ? '5' : '4', dsn,
		       sizeof(dsn));
	if (status == SMTP_RCPT_SENT) {
		struct strbuf *sb = strbuf_new(128, 0);

		smtp_reply_flat(r, sb);
		smtp_rcpt_set(req, idx, status, dsn, sess->relay, sb->data);
		strbuf_free(sb);
		return;
	}
	text = smtp_proto_said(sess, cmd);
	smtp_rcpt_set(req, idx, status, dsn, sess->relay, text);
	xfree(text);
}

/* smtp_proto_xtext - append an xtext (RFC 3461) form of s */
static void
smtp_proto_xtext(struct evbuffer *out, const char *s)
{
	struct strbuf *sb = strbuf_new(64, 0);

	if (dsn_xtext_encode(s, strlen(s), sb) == 0)
		evbuffer_add(out, sb->data, sb->len);
	strbuf_free(sb);
}

/* smtp_proto_rcpt_dsn - NOTIFY= and ORCPT= of one recipient (RFC 3461) */
static void
smtp_proto_rcpt_dsn(const struct smtp_rcpt *r, struct evbuffer *out)
{
	char    notify[DSN_NOTIFY_BUFSIZE];
	struct strbuf *sb;
	const char *semi;
	size_t  tlen;
	int     flags;

	/* Sent in canonical form; a value that does not parse is left out. */
	if (*r->notify && dsn_notify_parse(r->notify, &flags) == 0)
		evbuffer_add_printf(out, " NOTIFY=%s",
				    dsn_notify_str(flags, notify,
						   sizeof(notify)));
	if (*r->orcpt == 0)
		return;

	/*
	 * The queue keeps ORCPT as "type;xtext" (docs/ipc.md), ready to go on
	 * as it is. A value that is not valid xtext came decoded from an
	 * older client: encode it.
	 */
	sb = strbuf_new(128, 0);
	if (dsn_orcpt_canon(r->orcpt, sb) == 0) {
		evbuffer_add_printf(out, " ORCPT=%s", sb->data);
	} else {
		semi = strchr(r->orcpt, ';');
		tlen = semi ? (size_t) (semi - r->orcpt) : 0;
		if (tlen == 0 || tlen > 32
		    || strspn(r->orcpt, SMTP_PROTO_ATOM) != tlen) {
			evbuffer_add_printf(out, " ORCPT=rfc822;");
			smtp_proto_xtext(out, r->orcpt);
		} else {
			evbuffer_add_printf(out, " ORCPT=%.*s;", (int) tlen,
					    r->orcpt);
			smtp_proto_xtext(out, semi + 1);
		}
	}
	strbuf_free(sb);
}

/* smtp_proto_send_rcpt - one RCPT command */
static void
smtp_proto_send_rcpt(struct smtp_sess *sess, struct evbuffer *out)
{
	struct smtp_rcpt *r = &sess->req->rcpts[sess->tx[sess->rcpt_sent++]];

	evbuffer_add_printf(out, "RCPT TO:<%s>", r->addr);
	/* Only to a next hop that offers DSN (RFC 3461 5.2). */
	if (sess->feat & SMTP_FEAT_DSN)
		smtp_proto_rcpt_dsn(r, out);
	evbuffer_add(out, "\r\n", 2);
}

/* smtp_proto_transaction - MAIL, RCPT..., DATA on a ready session */
void
smtp_proto_transaction(struct smtp_sess *sess)
{
	struct smtp_req *req = sess->req;
	struct evbuffer *out = stream_output(sess->stream);
	struct strbuf *sb;
	size_t  i;

	sess->ntx = 0;
	sess->tx = xreallocarray(sess->tx, req->nrcpt, sizeof(*sess->tx));
	for (i = 0; i < req->nrcpt; i++)
		if (req->rcpts[i].status == SMTP_RCPT_TODO)
			sess->tx[sess->ntx++] = i;
	sess->rcpt_sent = sess->rcpt_recv = sess->naccepted = 0;
	sess->pipelined = sess->mail_failed = sess->data_sent = 0;
	sess->got_reply = 0;
	if (sess->ntx == 0) {
		(void) smtp_proto_end(sess, 0);
		return;
	}

	/* What the message needs that the server must offer. */
	sb = strbuf_new(256, 0);
	if (req->smtputf8 && !(sess->feat & SMTP_FEAT_SMTPUTF8))
		strbuf_printf(sb, "SMTPUTF8 not supported by the remote "
			      "server %s", sess->peer);
	else if ((sess->feat & SMTP_FEAT_SIZE) && sess->peer_size > 0
		 && smtp_proto_size(req) > sess->peer_size)
		strbuf_printf(sb, "message too big for remote: size %lld "
			      "exceeds size limit %lld of server %s",
			      smtp_proto_size(req), sess->peer_size, sess->peer);
	if (sb->len) {
		for (i = 0; i < sess->ntx; i++)
			smtp_rcpt_set(req, sess->tx[i], SMTP_RCPT_BOUNCED,
				      req->smtputf8 && !(sess->feat
				      & SMTP_FEAT_SMTPUTF8) ? "5.6.7" : "5.3.4",
				      sess->relay, sb->data);
		strbuf_free(sb);
		(void) smtp_proto_end(sess, 0);
		return;
	}
	strbuf_free(sb);

	sess->uses++;
	evbuffer_add_printf(out, "MAIL FROM:<%s>", req->sender);
	if (sess->feat & SMTP_FEAT_SIZE)
		evbuffer_add_printf(out, " SIZE=%lld", smtp_proto_size(req));
	if (req->body_8bit && (sess->feat & SMTP_FEAT_8BITMIME))
		evbuffer_add_printf(out, " BODY=8BITMIME");
	if (req->smtputf8)
		evbuffer_add_printf(out, " SMTPUTF8");
	if (sess->feat & SMTP_FEAT_DSN) {
		/* RET only when the sender gave it (RFC 3461 5.2.1). */
		if (*req->ret && dsn_ret_parse(req->ret) > 0)
			evbuffer_add_printf(out, " RET=%s",
					    dsn_ret_str(dsn_ret_parse(req->ret)));
		/* ENVID is kept decoded: xtext again on the wire. */
		if (*req->envid) {
			evbuffer_add_printf(out, " ENVID=");
			smtp_proto_xtext(out, req->envid);
		}
	}
	evbuffer_add(out, "\r\n", 2);
	sess->state = SMTP_ST_MAIL;
	if (sess->feat & SMTP_FEAT_PIPELINING) {
		sess->pipelined = 1;
		while (sess->rcpt_sent < sess->ntx)
			smtp_proto_send_rcpt(sess, out);
		evbuffer_add(out, "DATA\r\n", 6);
		sess->data_sent = 1;
	}
	smtp_conn_timer(sess, smtp_var.mail_timeout);
}

/* smtp_proto_ehlo_features - what the EHLO reply offers */
static void
smtp_proto_ehlo_features(struct smtp_sess *sess)
{
	const struct smtp_reply *r = &sess->reply;
	const char *line;
	char    buf[128];
	size_t  len;
	size_t  klen;
	size_t  i;

	sess->feat = SMTP_FEAT_ESMTP;
	sess->peer_size = 0;
	xfree(sess->auth_mechs);
	for (i = 1; i < r->nlines; i++) {
		line = smtp_reply_line(r, i, &len);
		if (line == NULL || len <= 4)
			continue;
		/* AUTH mechanisms, also in the old "AUTH=" form. */
		if (len > 9 && strncasecmp(line + 4, "AUTH", 4) == 0
		    && (line[8] == ' ' || (line[8] == '=' && !sess->auth_mechs))) {
			sess->feat |= SMTP_FEAT_AUTH;
			xfree(sess->auth_mechs);
			sess->auth_mechs = xstrndup(line + 9, len - 9);
			continue;
		}
		len -= 4;
		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line + 4, len);
		buf[len] = 0;
		klen = strcspn(buf, " =");
		buf[klen] = 0;
		if (strcasecmp(buf, "PIPELINING") == 0)
			sess->feat |= SMTP_FEAT_PIPELINING;
		else if (strcasecmp(buf, "8BITMIME") == 0)
			sess->feat |= SMTP_FEAT_8BITMIME;
		else if (strcasecmp(buf, "SMTPUTF8") == 0)
			sess->feat |= SMTP_FEAT_SMTPUTF8;
		else if (strcasecmp(buf, "DSN") == 0)
			sess->feat |= SMTP_FEAT_DSN;
		else if (strcasecmp(buf, "STARTTLS") == 0)
			sess->feat |= SMTP_FEAT_STARTTLS;
		else if (strcasecmp(buf, "SIZE") == 0) {
			sess->feat |= SMTP_FEAT_SIZE;
			if (klen < len) {
				char   *end;
				long long v;

				errno = 0;
				v = strtoll(buf + klen + 1, &end, 10);
				if (errno == 0 && v > 0 && *end == 0
				    && isdigit((unsigned char) buf[klen + 1]))
					sess->peer_size = v;
			}
		}
	}
}

/* smtp_proto_ready - greeting and EHLO/HELO done */
static int
smtp_proto_ready(struct smtp_sess *sess)
{
	sess->req->t_conn = smtp_now();
	smtp_proto_transaction(sess);
	return (-1);
}

/* smtp_proto_after_ehlo - STARTTLS and AUTH as due, then ready */
static int
smtp_proto_after_ehlo(struct smtp_sess *sess)
{
	struct strbuf *why;
	int     ret;

	if (!sess->tls_on && sess->tls.level >= SMTP_TLS_MAY
	    && !sess->no_starttls) {
		if (sess->feat & SMTP_FEAT_STARTTLS) {
			stream_write(sess->stream, "STARTTLS\r\n", 10);
			sess->state = SMTP_ST_STARTTLS;
			smtp_conn_timer(sess, smtp_var.starttls_timeout);
			return (0);
		}
	}
	/* Levels that require TLS report it below; the others here. */
	if (!sess->tls_on && sess->tls.level == SMTP_TLS_MAY
	    && !(sess->feat & SMTP_FEAT_STARTTLS))
		smtp_tls_outcome(sess, "starttls-not-supported", NULL);
	if (!sess->tls_on && sess->tls.level >= SMTP_TLS_ENCRYPT) {
		/* Never clear text when the policy requires TLS. */
		why = strbuf_new(256, 0);
		strbuf_printf(why, "TLS is required, but was not offered by "
			      "host %s", sess->peer);
		smtp_tls_outcome(sess, "starttls-not-supported", why->data);
		ret = smtp_proto_setup_fail(sess, 0, "4.7.4", why->data, 0, 1);
		strbuf_free(why);
		return (ret);
	}
	if (smtp_var.sasl_enable && !sess->auth_done) {
		why = strbuf_new(256, 0);
		ret = smtp_sasl_start(sess, why);
		if (ret > 0) {
			strbuf_free(why);
			smtp_conn_timer(sess, smtp_var.helo_timeout);
			return (0);
		}
		if (ret < 0) {
			log_warn("%s: %s", sess->req->queue_id, why->data);
			ret = smtp_proto_setup_fail(sess, 0, "4.7.0", why->data,
						    0, 1);
			strbuf_free(why);
			return (ret);
		}
		strbuf_free(why);
		sess->auth_done = 1;
	}
	return (smtp_proto_ready(sess));
}

/* smtp_proto_tls_failed - the handshake failed: next endpoint, or clear */
static int
smtp_proto_tls_failed(struct smtp_sess *sess, const char *detail)
{
	struct smtp_req *req = sess->req;
	struct strbuf *why = strbuf_new(256, 0);
	int     ret;

	log_info("%s: Cannot start TLS: handshake failure with %s%s%s",
		 req->queue_id, sess->relay, *detail ? ": " : "", detail);
	smtp_tls_failed(sess);
	strbuf_sets(why, "Cannot start TLS: handshake failure");
	smtp_tls_outcome(sess, "validation-failure", detail);

	/*
	 * Opportunistic TLS, as Postfix: once more in clear text to the same
	 * address. Any stronger level defers; never clear text.
	 */
	if (sess->tls.level == SMTP_TLS_MAY && !sess->no_starttls
	    && req->addrs && req->addr_i > 0) {
		log_info("%s: trying %s again without TLS", req->queue_id,
			 sess->relay);
		req->addr_i--;
		req->tls_plain_retry = 1;
	}
	ret = smtp_proto_setup_fail(sess, 0, "4.7.5", why->data, 0, 0);
	strbuf_free(why);
	return (ret);
}

/* smtp_proto_tls_done - the handshake is over: check, then EHLO again */
static void
smtp_proto_tls_done(struct smtp_sess *sess)
{
	struct strbuf *why = strbuf_new(256, 0);

	if (smtp_tls_check(sess, why) < 0) {
		(void) smtp_proto_setup_fail(sess, 0, "4.7.5", why->data, 0, 1);
		strbuf_free(why);
		return;
	}
	strbuf_free(why);
	/* RFC 3207 4.2: forget what the server said in clear text. */
	sess->feat = 0;
	xfree(sess->auth_mechs);
	evbuffer_add_printf(stream_output(sess->stream), "EHLO %s\r\n",
			    smtp_var.helo_name);
	sess->state = SMTP_ST_EHLO;
	smtp_conn_timer(sess, smtp_var.helo_timeout);
}

/* smtp_proto_starttls - the reply to STARTTLS */
static int
smtp_proto_starttls(struct smtp_sess *sess)
{
	struct smtp_reply *r = &sess->reply;
	struct strbuf *why;
	int     ret;

	if (r->code == 220) {
		why = strbuf_new(256, 0);
		if (evbuffer_get_length(stream_input(sess->stream)) > 0) {
			/* Bytes before the handshake (CVE-2011-0411 class). */
			strbuf_printf(why, "host %s sent data after the reply "
				      "to STARTTLS", sess->peer);
			log_warn("%s: %s", sess->req->queue_id, why->data);
			ret = smtp_proto_setup_fail(sess, 0, "4.7.5", why->data,
						    0, 0);
			strbuf_free(why);
			return (ret);
		}
		if (smtp_tls_start(sess, why) < 0) {
			ret = smtp_proto_setup_fail(sess, 0, "4.7.5", why->data,
						    0, 0);
			strbuf_free(why);
			return (ret);
		}
		strbuf_free(why);
		sess->state = SMTP_ST_TLS;
		smtp_conn_timer(sess, smtp_var.starttls_timeout);
		return (-1);
	}
	if (sess->tls.level >= SMTP_TLS_ENCRYPT || r->code == 421) {
		why = strbuf_new(256, 0);
		strbuf_printf(why, "TLS is required, but host %s refused to "
			      "start TLS: ", sess->peer);
		smtp_reply_flat(r, why);
		smtp_tls_outcome(sess, "starttls-not-supported", why->data);
		ret = smtp_proto_setup_fail(sess, 0, "4.7.5", why->data, 0,
					    r->code != 421);
		strbuf_free(why);
		return (ret);
	}
	/* Opportunistic: go on in clear text on this connection. */
	sess->no_starttls = 1;
	return (smtp_proto_after_ehlo(sess));
}

/* smtp_proto_auth - a reply in the AUTH exchange */
static int
smtp_proto_auth(struct smtp_sess *sess)
{
	struct smtp_reply *r = &sess->reply;
	struct strbuf *why = strbuf_new(256, 0);
	char    dsn[SMTP_REPLY_DSN_MAX];
	int     perm;
	int     ret;

	ret = smtp_sasl_reply(sess, why);
	if (ret > 0) {
		strbuf_free(why);
		smtp_conn_timer(sess, smtp_var.helo_timeout);
		return (0);
	}
	if (ret == 0) {
		strbuf_free(why);
		return (smtp_proto_ready(sess));
	}
	/* As Postfix: 5xx defers too, unless smtp_sasl_auth_soft_bounce = no. */
	perm = (r->code / 100 == 5 && !smtp_var.sasl_soft_bounce);
	if (r->code / 100 == 4 || r->code / 100 == 5)
		smtp_proto_dsn(r, perm ? '5' : '4', dsn, sizeof(dsn));
	else
		snprintf(dsn, sizeof(dsn), "4.7.0");
	smtp_sasl_free(sess);
	ret = smtp_proto_setup_fail(sess, perm, dsn, why->data, 0,
				    r->code != 421);
	strbuf_free(why);
	return (ret);
}

/* smtp_proto_after_rcpts - every RCPT reply is in */
static int
smtp_proto_after_rcpts(struct smtp_sess *sess)
{
	if (sess->pipelined) {
		sess->state = SMTP_ST_DATA;
		smtp_conn_timer(sess, smtp_var.data_init_timeout);
		return (0);
	}
	if (sess->naccepted == 0 || sess->mail_failed)
		return (smtp_proto_end(sess, 1));
	stream_write(sess->stream, "DATA\r\n", 6);
	sess->data_sent = 1;
	sess->state = SMTP_ST_DATA;
	smtp_conn_timer(sess, smtp_var.data_init_timeout);
	return (0);
}

/* smtp_proto_reply - act on one whole reply */
static int
smtp_proto_reply(struct smtp_sess *sess)
{
	struct smtp_reply *r = &sess->reply;
	struct smtp_req *req = sess->req;
	char    dsn[SMTP_REPLY_DSN_MAX];
	char   *text;
	size_t  i;
	int     ret;

	if (req == NULL) {
		/* Not in a transaction: RSET, QUIT or an idle session. */
		if (sess->state == SMTP_ST_RSET && r->code / 100 == 2)
			smtp_conn_cache_put(sess);
		else if (sess->state == SMTP_ST_RSET)
			smtp_conn_quit(sess);
		else
			smtp_conn_free(sess);
		return (-1);
	}
	if (sess->state >= SMTP_ST_MAIL)
		sess->got_reply = 1;

	switch (sess->state) {
	case SMTP_ST_GREETING:
		if (r->code / 100 == 2) {
			evbuffer_add_printf(stream_output(sess->stream),
					    "EHLO %s\r\n", smtp_var.helo_name);
			sess->state = SMTP_ST_EHLO;
			smtp_conn_timer(sess, smtp_var.helo_timeout);
			return (0);
		}
		/* As Postfix, a 5xx greeting too just skips this server. */
		{
			struct strbuf *sb = strbuf_new(256, 0);

			strbuf_printf(sb, "host %s refused to talk to me: ",
				      sess->peer);
			smtp_reply_flat(r, sb);
			text = strbuf_steal(sb, NULL);
			strbuf_free(sb);
		}
		smtp_proto_dsn(r, '4', dsn, sizeof(dsn));
		ret = smtp_proto_setup_fail(sess, 0, dsn, text, 0, 0);
		xfree(text);
		return (ret);

	case SMTP_ST_EHLO:
	case SMTP_ST_HELO:
		if (r->code / 100 == 2) {
			if (sess->state == SMTP_ST_EHLO)
				smtp_proto_ehlo_features(sess);
			else
				sess->feat = 0;
			return (smtp_proto_after_ehlo(sess));
		}
		if (sess->state == SMTP_ST_EHLO && r->code / 100 == 5) {
			evbuffer_add_printf(stream_output(sess->stream),
					    "HELO %s\r\n", smtp_var.helo_name);
			sess->state = SMTP_ST_HELO;
			smtp_conn_timer(sess, smtp_var.helo_timeout);
			return (0);
		}
		text = smtp_proto_said(sess, smtp_proto_cmd(sess->state));
		smtp_proto_dsn(r, r->code / 100 == 5 ? '5' : '4', dsn,
			       sizeof(dsn));
		ret = smtp_proto_setup_fail(sess, r->code / 100 == 5, dsn, text,
					    0, r->code != 421);
		xfree(text);
		return (ret);

	case SMTP_ST_STARTTLS:
		return (smtp_proto_starttls(sess));

	case SMTP_ST_AUTH:
		return (smtp_proto_auth(sess));

	case SMTP_ST_MAIL:
		if (r->code == 421)
			return (smtp_proto_421(sess, "MAIL FROM"));
		if (r->code / 100 != 2) {
			sess->mail_failed = 1;
			for (i = 0; i < sess->ntx; i++)
				smtp_proto_settle(sess, sess->tx[i],
						  "MAIL FROM");
		}
		sess->state = SMTP_ST_RCPT;
		smtp_conn_timer(sess, smtp_var.rcpt_timeout);
		if (sess->pipelined)
			return (0);
		if (sess->mail_failed)
			return (smtp_proto_end(sess, 1));
		smtp_proto_send_rcpt(sess, stream_output(sess->stream));
		return (0);

	case SMTP_ST_RCPT:
		if (r->code == 421)
			return (smtp_proto_421(sess, "RCPT TO"));
		if (sess->rcpt_recv >= sess->rcpt_sent)
			return (smtp_proto_tx_fail(sess, "4.5.0", "unexpected "
						   "reply to RCPT TO"));
		i = sess->tx[sess->rcpt_recv++];
		if (!sess->mail_failed) {
			if (r->code / 100 == 2) {
				req->rcpts[i].status = SMTP_RCPT_ACCEPTED;
				sess->naccepted++;
			} else
				smtp_proto_settle(sess, i, "RCPT TO");
		}
		if (sess->rcpt_recv < sess->ntx) {
			if (!sess->pipelined)
				smtp_proto_send_rcpt(sess,
					    stream_output(sess->stream));
			smtp_conn_timer(sess, smtp_var.rcpt_timeout);
			return (0);
		}
		return (smtp_proto_after_rcpts(sess));

	case SMTP_ST_DATA:
		if (r->code == 421)
			return (smtp_proto_421(sess, "DATA"));
		if (sess->naccepted == 0 || sess->mail_failed) {
			if (r->code / 100 == 3) {
				/* The server wants content nobody asked for. */
				req = smtp_proto_detach(sess);
				smtp_conn_free(sess);
				smtp_nexthop_next(req);
				return (-1);
			}
			return (smtp_proto_end(sess, 1));
		}
		if (r->code != 354) {
			for (i = 0; i < sess->ntx; i++)
				if (req->rcpts[sess->tx[i]].status
				    == SMTP_RCPT_ACCEPTED)
					smtp_proto_settle(sess, sess->tx[i],
							  "DATA");
			return (smtp_proto_end(sess, 1));
		}
		sess->state = SMTP_ST_CONTENT;
		sess->cpos = 0;
		qfile_content_start(&sess->cur, req->msg);
		sess->bol = 1;
		sess->last_cr = 0;
		smtp_conn_timer(sess, smtp_var.data_xfer_timeout);
		if (smtp_content_fill(sess) < 0)
			return (smtp_proto_tx_fail(sess, "4.3.0",
						   "cannot read the queue file"));
		return (0);

	case SMTP_ST_CONTENT:
	case SMTP_ST_DOT:
		/* A reply in the middle of the content breaks the session. */
		ret = (sess->state == SMTP_ST_CONTENT);
		for (i = 0; i < sess->ntx; i++)
			if (req->rcpts[sess->tx[i]].status
			    == SMTP_RCPT_ACCEPTED)
				smtp_proto_settle(sess, sess->tx[i],
						  "end of DATA");
		if (ret || r->code == 421) {
			req = smtp_proto_detach(sess);
			smtp_conn_free(sess);
			smtp_nexthop_next(req);
			return (-1);
		}
		return (smtp_proto_end(sess, 0));

	default:
		return (smtp_proto_tx_fail(sess, "4.5.0", "unexpected reply"));
	}
}

/* smtp_proto_garbage - a reply we cannot parse */
static int
smtp_proto_garbage(struct smtp_sess *sess)
{
	struct strbuf *sb;
	int     ret;

	if (sess->req == NULL) {
		smtp_conn_free(sess);
		return (-1);
	}
	sb = strbuf_new(256, 0);
	strbuf_printf(sb, "malformed or too long reply from %s while %s",
		      sess->peer, smtp_proto_stage(sess->state));
	log_warn("%s: %s", sess->req->queue_id, sb->data);
	if (sess->state < SMTP_ST_MAIL)
		ret = smtp_proto_setup_fail(sess, 0, "4.5.0", sb->data, 0, 0);
	else
		ret = smtp_proto_tx_fail(sess, "4.5.0", sb->data);
	strbuf_free(sb);
	return (ret);
}

/* smtp_proto_input - read and act on every whole reply */
int
smtp_proto_input(struct smtp_sess *sess)
{
	struct evbuffer *in;
	size_t  len;
	size_t  used;
	int     ret;

	for (;;) {
		/* The buffer changes when TLS starts. */
		in = stream_input(sess->stream);
		len = evbuffer_get_length(in);
		if (len == 0)
			return (0);
		if (sess->state == SMTP_ST_IDLE
		    || sess->state == SMTP_ST_CONNECT) {
			/* Nothing is due: a 421 on an idle session, or junk. */
			if (sess->req == NULL) {
				smtp_conn_free(sess);
				return (-1);
			}
			return (smtp_proto_garbage(sess));
		}
		if (len > SMTP_REPLY_LIMIT + 1)
			len = SMTP_REPLY_LIMIT + 1;
		ret = smtp_reply_parse((const char *) evbuffer_pullup(in,
							     (ssize_t) len),
				       len, SMTP_REPLY_LIMIT, &sess->reply,
				       &used);
		if (ret == SMTP_REPLY_MORE)
			return (0);
		if (ret == SMTP_REPLY_BAD)
			return (smtp_proto_garbage(sess));
		evbuffer_drain(in, used);
		if (smtp_proto_reply(sess) < 0)
			return (-1);
	}
}

/* smtp_proto_event - connected, closed by the server, or an error */
void
smtp_proto_event(struct smtp_sess *sess, int what, int err)
{
	struct strbuf *sb;

	if ((what & STREAM_EV_CONNECTED) && sess->state == SMTP_ST_TLS
	    && sess->req) {
		smtp_proto_tls_done(sess);
		return;
	}
	if (what & STREAM_EV_CONNECTED) {
		sess->state = SMTP_ST_GREETING;
		smtp_conn_timer(sess, smtp_var.helo_timeout);
		return;
	}
	if (!(what & (STREAM_EV_EOF | STREAM_EV_ERROR)))
		return;
	if (sess->req == NULL) {
		smtp_conn_free(sess);
		return;
	}
	if (sess->state == SMTP_ST_TLS) {
		(void) smtp_proto_tls_failed(sess, (what & STREAM_EV_EOF) ?
					     "lost connection" :
					     tls_stream_errors(sess->stream));
		return;
	}
	sb = strbuf_new(256, 0);
	if (sess->state == SMTP_ST_CONNECT) {
		strbuf_printf(sb, "connect to %s: %s", sess->relay,
			      strerror(err ? err : ECONNREFUSED));
		(void) smtp_proto_setup_fail(sess, 0, "4.4.1", sb->data, 1, 0);
	} else {
		strbuf_printf(sb, "lost connection with %s while %s",
			      sess->peer, smtp_proto_stage(sess->state));
		if (sess->state < SMTP_ST_MAIL)
			(void) smtp_proto_setup_fail(sess, 0, "4.4.2", sb->data,
						     0, 0);
		else
			(void) smtp_proto_tx_fail(sess, "4.4.2", sb->data);
	}
	strbuf_free(sb);
}

/* smtp_proto_timeout - a stage took too long */
void
smtp_proto_timeout(struct smtp_sess *sess)
{
	struct strbuf *sb;

	if (sess->req == NULL) {
		if (sess->state == SMTP_ST_IDLE)
			smtp_conn_quit(sess);
		else
			smtp_conn_free(sess);
		return;
	}
	if (sess->state == SMTP_ST_TLS) {
		(void) smtp_proto_tls_failed(sess, "timed out");
		return;
	}
	sb = strbuf_new(256, 0);
	if (sess->state == SMTP_ST_CONNECT) {
		strbuf_printf(sb, "connect to %s: Connection timed out",
			      sess->relay);
		(void) smtp_proto_setup_fail(sess, 0, "4.4.1", sb->data, 1, 0);
	} else {
		strbuf_printf(sb, "conversation with %s timed out while %s",
			      sess->peer, smtp_proto_stage(sess->state));
		if (sess->state < SMTP_ST_MAIL)
			(void) smtp_proto_setup_fail(sess, 0, "4.4.2", sb->data,
						     0, 0);
		else
			(void) smtp_proto_tx_fail(sess, "4.4.2", sb->data);
	}
	strbuf_free(sb);
}

/* smtp_proto_written - output drained: more content, or wait */
void
smtp_proto_written(struct smtp_sess *sess)
{
	if (sess->state == SMTP_ST_CONTENT) {
		smtp_conn_timer(sess, smtp_var.data_xfer_timeout);
		if (smtp_content_fill(sess) < 0)
			(void) smtp_proto_tx_fail(sess, "4.3.0",
						  "cannot read the queue file");
	} else if (sess->state == SMTP_ST_DOT
		   && evbuffer_get_length(stream_output(sess->stream))
		   == 0)
		smtp_conn_timer(sess, smtp_var.data_done_timeout);
}
