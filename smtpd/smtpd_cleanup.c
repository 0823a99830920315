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
 *	One cleanup connection carries one message (docs/ipc.md).
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

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "dsn.h"
#include "log.h"
#include "mail_attr.h"
#include "qfile.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtpd.h"

#define SMTPD_CL_WAIT_OPEN	0	/* envelope sent, waiting for ID */
#define SMTPD_CL_STREAM		1	/* content flows */
#define SMTPD_CL_WAIT_DONE	2	/* content sent, waiting for verdict */

struct smtpd_cleanup {
	struct smtpd_session *session;
	struct bufferevent *bev;
	struct event *timer;
	int     state;
};

/* smtpd_cleanup_free - the connection and its state */
static void
smtpd_cleanup_free(struct smtpd_cleanup *cl)
{
	if (cl->bev)
		bufferevent_free(cl->bev);
	if (cl->timer)
		event_free(cl->timer);
	xfree(cl);
}

/* smtpd_cleanup_close - drop the connection */
void
smtpd_cleanup_close(struct smtpd_session *s)
{
	if (s->cleanup == NULL)
		return;
	smtpd_cleanup_free(s->cleanup);
	s->cleanup = NULL;
}

/* smtpd_cleanup_fail - tell the session, and let go */
static void
smtpd_cleanup_fail(struct smtpd_cleanup *cl, const char *why)
{
	struct smtpd_session *s = cl->session;
	/*
	 * cleanup went away after all the content was sent: if it committed
	 * the file before it died, the message will be delivered whatever
	 * we say, and a 451 would make the client send it twice.
	 */
	int     done = cl->state == SMTPD_CL_WAIT_DONE
		&& qfile_committed(s->queue_id) == 1;

	log_warn("%s%s%s: cleanup service %s: %s%s", s->queue_id,
		 s->queue_id[0] ? ": " : "", s->addr, smtpd_var.cleanup_path,
		 why, done ? "; the message was already queued" : "");
	smtpd_cleanup_close(s);			/* frees cl */
	if (done)
		smtpd_data_cleanup_reply(s, 0, s->queue_id, NULL);
	else
		smtpd_data_cleanup_reply(s, 4, NULL,
					 "4.3.0 Error: queue file write error");
}

/* smtpd_cleanup_timer_cb - cleanup did not answer in time */
static void
smtpd_cleanup_timer_cb(evutil_socket_t unused_fd, short unused_what,
		       void *ctx)
{
	(void) unused_fd;
	(void) unused_what;
	smtpd_cleanup_fail(ctx, "timeout");
}

/* smtpd_cleanup_read_cb - an answer from cleanup */
static void
smtpd_cleanup_read_cb(struct bufferevent *bev, void *ctx)
{
	struct smtpd_cleanup *cl = ctx;
	struct smtpd_session *s = cl->session;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct attr_list list;
	size_t  len = evbuffer_get_length(in);
	size_t  used = 0;
	long long status;
	char   *qid = NULL;
	char   *reason = NULL;
	const char *v;
	int     ret;

	memset(&list, 0, sizeof(list));
	ret = attr_list_parse((const char *) evbuffer_pullup(in, -1), len,
			      4096, &list, &used);
	if (ret == 0) {
		if (len > 65536)
			smtpd_cleanup_fail(cl, "reply too long");
		return;
	}
	if (ret < 0 || attr_list_getl(&list, MAIL_ATTR_STATUS, &status) < 0) {
		attr_list_clear(&list);
		smtpd_cleanup_fail(cl, "malformed reply");
		return;
	}
	evbuffer_drain(in, used);
	if ((v = attr_list_get(&list, MAIL_ATTR_QUEUE_ID)) != NULL)
		qid = xstrdup(v);
	if ((v = attr_list_get(&list, MAIL_ATTR_REASON)) != NULL)
		reason = xstrdup(v);
	attr_list_clear(&list);
	evtimer_del(cl->timer);

	if (status != 0) {
		/* cleanup closes after a failure; so do we. */
		smtpd_cleanup_close(s);
		smtpd_data_cleanup_reply(s, status == 5 ? 5 : 4, qid,
					 reason ? reason :
					 "4.3.0 Error: queue file write error");
	} else if (cl->state == SMTPD_CL_WAIT_OPEN) {
		if (qid == NULL || *qid == 0 || strlen(qid) > QFILE_ID_MAX) {
			xfree(qid);
			xfree(reason);
			smtpd_cleanup_fail(cl, "no queue ID in reply");
			return;
		}
		cl->state = SMTPD_CL_STREAM;
		smtpd_data_cleanup_reply(s, 0, qid, NULL);
	} else if (cl->state == SMTPD_CL_WAIT_DONE) {
		smtpd_cleanup_close(s);
		smtpd_data_cleanup_reply(s, 0, qid, NULL);
	} else {
		/* A "yes" while we still send content makes no sense. */
		xfree(qid);
		xfree(reason);
		smtpd_cleanup_fail(cl, "unexpected reply");
		return;
	}
	xfree(qid);
	xfree(reason);
}

/* smtpd_cleanup_write_cb - output drained below the low-water mark */
static void
smtpd_cleanup_write_cb(struct bufferevent *unused_bev, void *ctx)
{
	struct smtpd_cleanup *cl = ctx;
	struct smtpd_session *s = cl->session;

	(void) unused_bev;
	if (cl->state == SMTPD_CL_STREAM)
		evtimer_del(cl->timer);
	if (s->paused) {
		s->paused = 0;
		smtpd_session_resume(s);
	}
}

/* smtpd_cleanup_stalled - the session waits for cleanup to take more */
void
smtpd_cleanup_stalled(struct smtpd_session *s)
{
	struct timeval tv;

	if (s->cleanup == NULL || s->cleanup->state != SMTPD_CL_STREAM)
		return;
	tv.tv_sec = smtpd_var.cleanup_timeout;
	tv.tv_usec = 0;
	evtimer_add(s->cleanup->timer, &tv);
}

/* smtpd_cleanup_event_cb - connected, lost, error */
static void
smtpd_cleanup_event_cb(struct bufferevent *unused_bev, short what, void *ctx)
{
	struct smtpd_cleanup *cl = ctx;

	(void) unused_bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		smtpd_cleanup_fail(cl, "connection closed");
	else if (what & BEV_EVENT_ERROR)
		smtpd_cleanup_fail(cl, strerror(EVUTIL_SOCKET_ERROR()));
}

/* smtpd_cleanup_open - connect and send the envelope */
int
smtpd_cleanup_open(struct smtpd_session *s)
{
	struct smtpd_cleanup *cl;
	struct sockaddr_un sun;
	struct strbuf *env;
	struct timeval tv;
	size_t  i;
	int     fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(smtpd_var.cleanup_path) >= sizeof(sun.sun_path)) {
		log_warn("cleanup socket path too long: %s",
			 smtpd_var.cleanup_path);
		return (-1);
	}
	strcpy(sun.sun_path, smtpd_var.cleanup_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0)) < 0) {
		log_warn("socket: %s", strerror(errno));
		return (-1);
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->session = s;
	cl->state = SMTPD_CL_WAIT_OPEN;
	cl->bev = bufferevent_socket_new(server_base(), fd,
					 BEV_OPT_CLOSE_ON_FREE);
	if (cl->bev == NULL) {
		close(fd);
		xfree(cl);
		return (-1);
	}
	cl->timer = evtimer_new(server_base(), smtpd_cleanup_timer_cb, cl);
	bufferevent_setcb(cl->bev, smtpd_cleanup_read_cb,
			  smtpd_cleanup_write_cb, smtpd_cleanup_event_cb, cl);
	bufferevent_setwatermark(cl->bev, EV_WRITE, SMTPD_CLEANUP_LOWAT, 0);
	if (bufferevent_socket_connect(cl->bev, (struct sockaddr *) &sun,
				       sizeof(sun)) < 0) {
		log_warn("connect to %s: %s", smtpd_var.cleanup_path,
			 strerror(errno));
		smtpd_cleanup_free(cl);
		return (-1);
	}

	env = strbuf_new(1024, 0);
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
	bufferevent_write(cl->bev, env->data, env->len);
	strbuf_free(env);
	bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
	tv.tv_sec = smtpd_var.cleanup_timeout;
	tv.tv_usec = 0;
	evtimer_add(cl->timer, &tv);
	s->cleanup = cl;
	return (0);
}

/* smtpd_cleanup_write - content as "data" attributes */
void
smtpd_cleanup_write(struct smtpd_session *s, const void *data, size_t len)
{
	struct evbuffer *out;

	if (s->cleanup == NULL || len == 0)
		return;
	out = bufferevent_get_output(s->cleanup->bev);
	evbuffer_add_printf(out, "data=%zu:", len);
	evbuffer_add(out, data, len);
	evbuffer_add(out, "\n", 1);
}

/* smtpd_cleanup_finish - end of content; wait for the verdict */
void
smtpd_cleanup_finish(struct smtpd_session *s)
{
	struct smtpd_cleanup *cl = s->cleanup;
	struct timeval tv;

	if (cl == NULL)
		return;
	/* HOLD and DISCARD results of the restrictions (docs/ipc.md). */
	if (smtpd_check_hold(s) || smtpd_check_discard(s)) {
		struct strbuf *sb = strbuf_new(256, 0);

		if (smtpd_check_hold(s))
			attr_puts(sb, MAIL_ATTR_HOLD, smtpd_check_hold(s));
		if (smtpd_check_discard(s))
			attr_puts(sb, MAIL_ATTR_DISCARD,
				  smtpd_check_discard(s));
		bufferevent_write(cl->bev, sb->data, sb->len);
		strbuf_free(sb);
	}
	bufferevent_write(cl->bev, "\n", 1);
	cl->state = SMTPD_CL_WAIT_DONE;
	tv.tv_sec = smtpd_var.cleanup_timeout;
	tv.tv_usec = 0;
	evtimer_add(cl->timer, &tv);
}

/* smtpd_cleanup_pending - bytes not yet written to cleanup */
size_t
smtpd_cleanup_pending(struct smtpd_session *s)
{
	if (s->cleanup == NULL)
		return (0);
	return (evbuffer_get_length(bufferevent_get_output(s->cleanup->bev)));
}
