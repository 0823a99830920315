/*
 * smtpd_cleanup - the client side of the cleanup protocol
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	int	smtpd_cleanup_open(struct smtpd_session *s)
 *	void	smtpd_cleanup_write(struct smtpd_session *s,
 *			const void *data, size_t len)
 *	void	smtpd_cleanup_finish(struct smtpd_session *s)
 *	size_t	smtpd_cleanup_pending(struct smtpd_session *s)
 *	void	smtpd_cleanup_stalled(struct smtpd_session *s)
 *	void	smtpd_cleanup_close(struct smtpd_session *s)
 *
 * DESCRIPTION
 *	One cleanup connection carries one message (docs/ipc.md). The
 *	protocol is lib/global/cleanup_client.c's, used event-driven; this
 *	is smtpd's side of it: the envelope from the session, the HOLD and
 *	DISCARD trailer, the backpressure on the SMTP client, the log.
 *
 *	smtpd_cleanup_open() connects (non-blocking) to
 *	private/$cleanup_service_name (relative to queue_directory, the
 *	working directory) and sends the envelope. It returns 0, or -1
 *	when the connection cannot even be started. cleanup's answer comes
 *	later through smtpd_data_cleanup_reply(): status 0 and the queue
 *	ID, or a failure (status 4 or 5 and a reason; a lost connection
 *	or smtpd_cleanup_timeout is status 4).
 *
 *	smtpd_cleanup_write() sends content as "data" attributes (each at
 *	most QFILE_CHUNK bytes; the caller splits). smtpd_cleanup_pending()
 *	says how many bytes still wait to go out, for backpressure: when it
 *	drops below SMTPD_CLEANUP_LOWAT, a paused session is resumed.
 *	smtpd_cleanup_stalled() says that the session has paused: cleanup
 *	then has smtpd_cleanup_timeout to take more, or the message fails.
 *
 *	smtpd_cleanup_finish() ends the content, after the "hold" and
 *	"discard" attributes when a restriction asked for them (HOLD,
 *	DISCARD); cleanup's verdict comes through smtpd_data_cleanup_reply().
 *
 *	smtpd_cleanup_close() drops the connection (if any): before the end
 *	of the content that aborts the message, and cleanup removes its
 *	file. It may be called from within smtpd_data_cleanup_reply().
 *
 * DIAGNOSTICS
 *	Warnings for a cleanup service that cannot be reached, times out or
 *	talks nonsense.
 *
 * SEE ALSO
 *	docs/ipc.md, cleanup(8)
 */

#include <errno.h>
#include <string.h>

#include <event2/event.h>

#include "attr.h"
#include "cleanup_client.h"
#include "dsn.h"
#include "log.h"
#include "mail_attr.h"
#include "server.h"
#include "strbuf.h"

#include "smtpd.h"

/* smtpd_cleanup_close - drop the connection */
void
smtpd_cleanup_close(struct smtpd_session *s)
{
	if (s->cleanup == NULL)
		return;
	cleanup_client_free(s->cleanup);
	s->cleanup = NULL;
}

/* smtpd_cleanup_reply_cb - cleanup's answer, or why there is none */
static void
smtpd_cleanup_reply_cb(struct cleanup_client *unused_cl,
		       const struct cleanup_result *res, void *ctx)
{
	struct smtpd_session *s = ctx;
	const char *qid = res->queue_id[0] ? res->queue_id : NULL;

	(void) unused_cl;
	if (res->lost[0]) {
		log_warn("%s%s%s: cleanup service %s: %s%s", s->queue_id,
			 s->queue_id[0] ? ": " : "", s->addr,
			 smtpd_var.cleanup_path, res->lost, res->committed ?
			 "; the message was already queued" : "");
		smtpd_cleanup_close(s);
		if (res->committed)
			smtpd_data_cleanup_reply(s, 0, s->queue_id, NULL);
		else
			smtpd_data_cleanup_reply(s, 4, NULL, "4.3.0 Error: "
						 "queue file write error");
		return;
	}
	if (res->status != 0) {
		/* cleanup closes after a failure; so do we. */
		smtpd_cleanup_close(s);
		smtpd_data_cleanup_reply(s, res->status, qid,
					 res->reason[0] ? res->reason :
					 "4.3.0 Error: queue file write error");
	} else if (!res->final) {
		smtpd_data_cleanup_reply(s, 0, qid, NULL);
	} else {
		smtpd_cleanup_close(s);
		smtpd_data_cleanup_reply(s, 0, qid, NULL);
	}
}

/* smtpd_cleanup_drain_cb - output drained below the low-water mark */
static void
smtpd_cleanup_drain_cb(struct cleanup_client *unused_cl, void *ctx)
{
	struct smtpd_session *s = ctx;

	(void) unused_cl;
	if (s->paused) {
		s->paused = 0;
		smtpd_session_resume(s);
	}
}

/* smtpd_cleanup_stalled - the session waits for cleanup to take more */
void
smtpd_cleanup_stalled(struct smtpd_session *s)
{
	cleanup_client_stalled(s->cleanup);
}

/* smtpd_cleanup_envelope - the envelope list of the transaction */
static void
smtpd_cleanup_envelope(struct smtpd_session *s, struct strbuf *env)
{
	size_t  i;

	attr_puts(env, MAIL_ATTR_SENDER, s->sender);
	for (i = 0; i < s->nrcpt; i++) {
		attr_puts(env, MAIL_ATTR_RCPT, s->rcpts[i]);
		/* DSN parameters follow the recipient they belong to. */
		if (s->rcpt_notify[i])
			attr_puts(env, MAIL_ATTR_NOTIFY, s->rcpt_notify[i]);
		if (s->rcpt_orcpt[i])
			attr_puts(env, MAIL_ATTR_ORCPT, s->rcpt_orcpt[i]);
	}
	if (!s->local)
		attr_puts(env, MAIL_ATTR_CLIENT_ADDR, s->addr);
	attr_puts(env, MAIL_ATTR_CLIENT_NAME, s->name);
	attr_puts(env, MAIL_ATTR_HELO, s->helo ? s->helo : "");
	attr_puts(env, MAIL_ATTR_PROTOCOL, smtpd_protocol(s));
	if (s->tls_info)
		attr_puts(env, MAIL_ATTR_TLS, s->tls_info);
	if (smtpd_sasl_username(s)) {
		attr_puts(env, MAIL_ATTR_SASL_METHOD, smtpd_sasl_method(s));
		attr_puts(env, MAIL_ATTR_SASL_USERNAME, smtpd_sasl_username(s));
	}
	attr_puts(env, MAIL_ATTR_BODY, s->body_8bit ? "8BITMIME" : "7BIT");
	if (s->smtputf8)
		attr_puts(env, MAIL_ATTR_SMTPUTF8, "1");
	if (s->declared_size >= 0)
		attr_putl(env, MAIL_ATTR_SIZE, s->declared_size);
	if (s->dsn_ret == DSN_RET_FULL || s->dsn_ret == DSN_RET_HDRS)
		attr_puts(env, MAIL_ATTR_RET, dsn_ret_str(s->dsn_ret));
	if (s->dsn_envid)
		attr_puts(env, MAIL_ATTR_ENVID, s->dsn_envid);
	attr_end(env);
}

/* smtpd_cleanup_open - connect and send the envelope */
int
smtpd_cleanup_open(struct smtpd_session *s)
{
	struct strbuf *env;
	int     fd;

	if ((fd = cleanup_client_connect(smtpd_var.cleanup_path, 1)) < 0) {
		log_warn("connect to %s: %s", smtpd_var.cleanup_path,
			 strerror(errno));
		return (-1);
	}
	env = strbuf_new(1024, 0);
	smtpd_cleanup_envelope(s, env);
	s->cleanup = cleanup_client_open(server_base(), fd, env,
					 smtpd_var.cleanup_timeout,
					 smtpd_cleanup_reply_cb,
					 smtpd_cleanup_drain_cb, s);
	strbuf_free(env);
	return (s->cleanup ? 0 : -1);
}

/* smtpd_cleanup_write - content as "data" attributes */
void
smtpd_cleanup_write(struct smtpd_session *s, const void *data, size_t len)
{
	cleanup_client_write(s->cleanup, data, len);
}

/* smtpd_cleanup_finish - end of content; wait for the verdict */
void
smtpd_cleanup_finish(struct smtpd_session *s)
{
	struct strbuf *sb;

	if (s->cleanup == NULL)
		return;
	/* HOLD and DISCARD results of the restrictions (docs/ipc.md). */
	sb = strbuf_new(256, 0);
	if (smtpd_check_hold(s))
		attr_puts(sb, MAIL_ATTR_HOLD, smtpd_check_hold(s));
	if (smtpd_check_discard(s))
		attr_puts(sb, MAIL_ATTR_DISCARD, smtpd_check_discard(s));
	cleanup_client_finish(s->cleanup, sb);
	strbuf_free(sb);
}

/* smtpd_cleanup_pending - bytes not yet written to cleanup */
size_t
smtpd_cleanup_pending(struct smtpd_session *s)
{
	return (cleanup_client_pending(s->cleanup));
}
