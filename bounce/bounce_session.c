/*
 * bounce_session - read bounce requests, answer them
 *
 * SYNOPSIS
 *	#include "bounce.h"
 *
 *	void	bounce_session_init(struct event_base *base)
 *	void	bounce_session_accept(int fd)
 *	size_t	bounce_session_count(void)
 *	void	bounce_session_shutdown(void)
 *
 * DESCRIPTION
 *	One connection carries one request (docs/ipc.md "bounce"). The
 *	request is read on the event loop, with bounce_timeout for the
 *	whole of it; once complete it is carried out (bounce_notify.c)
 *	and answered with "status" and "queue_id" (status 0), or "status"
 *	and "reason" (4: try again later; 5: a request that cannot
 *	succeed), then the connection is closed.
 *
 *	bounce_session_init() remembers the loop. bounce_session_accept()
 *	takes a new non-blocking connection. bounce_session_count() is the
 *	number of open ones, for a graceful stop. bounce_session_shutdown()
 *	closes them all (SIGTERM); a request cut short is asked again by
 *	qmgr, which never got a reply.
 *
 *	Each session owns its memory and bounce_sess_free() releases it.
 *
 * DIAGNOSTICS
 *	A warning for a malformed or incomplete request, a timeout, or a
 *	reply that cannot be written; only an info line when the client
 *	closed the connection before the reply (EPIPE): the status bytes
 *	already say what was done.
 *
 * SEE ALSO
 *	docs/ipc.md, bounce(8)
 */

#include <sys/time.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "attr.h"
#include "log.h"
#include "mail_attr.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "bounce.h"

struct bounce_sess {
	int     fd;
	struct event *rev;
	struct strbuf *in;
	struct bounce_sess *prev;
	struct bounce_sess *next;
};

static struct event_base *bounce_base;
static struct bounce_sess *bounce_sessions;
static size_t bounce_nsessions;

/* bounce_session_init - remember the loop */
void
bounce_session_init(struct event_base *base)
{
	bounce_base = base;
}

/* bounce_session_count - open connections */
size_t
bounce_session_count(void)
{
	return (bounce_nsessions);
}

/* bounce_sess_free - close and forget one connection */
static void
bounce_sess_free(struct bounce_sess *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		bounce_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->rev)
		event_free(s->rev);
	if (s->fd >= 0)
		(void) close(s->fd);
	strbuf_free(s->in);
	free(s);
	bounce_nsessions--;
	server_session_done();
}

/* bounce_sess_reply - send the answer; the session ends after */
static void
bounce_sess_reply(struct bounce_sess *s, const struct bounce_result *res)
{
	struct strbuf *out = strbuf_new(256, 0);

	attr_putl(out, MAIL_ATTR_STATUS, res->status);
	if (res->status == 0)
		attr_puts(out, MAIL_ATTR_QUEUE_ID, res->queue_id);
	else
		attr_puts(out, MAIL_ATTR_REASON, res->reason);
	attr_end(out);
	/*
	 * A few hundred bytes into an idle socket: no wait. A client that
	 * is gone (qmgr stopped or timed out) is no harm: what was done is
	 * in the queue file's status bytes, and what was not is asked again.
	 */
	if (attr_write_fd(s->fd, out) < 0) {
		if (errno == EPIPE || errno == ECONNRESET)
			log_info("bounce: client left before the reply (status "
				 "%d); the queue file has the outcome",
				 res->status);
		else
			log_warn("bounce: cannot write reply: %s",
				 strerror(errno));
	}
	strbuf_free(out);
	bounce_sess_free(s);
}

/* bounce_sess_read_cb - more of the request, or a timeout */
static void
bounce_sess_read_cb(evutil_socket_t unused_fd, short what, void *ctx)
{
	struct bounce_sess *s = ctx;
	struct bounce_result res;
	struct attr_list list;
	size_t  used;
	ssize_t n;
	int     ret;

	(void) unused_fd;
	if (what & EV_TIMEOUT) {
		log_warn("bounce: timeout while reading request");
		bounce_sess_free(s);
		return;
	}
	if (strbuf_reserve(s->in, 65536) < 0 && strbuf_reserve(s->in, 1) < 0) {
		log_warn("bounce: request too large");
		memset(&res, 0, sizeof(res));
		res.status = 5;
		strcpy(res.reason, "5.3.4 bounce request too large");
		bounce_sess_reply(s, &res);
		return;
	}
	n = read(s->fd, s->in->data + s->in->len,
		 s->in->size - 1 - s->in->len < s->in->limit - s->in->len ?
		 s->in->size - 1 - s->in->len : s->in->limit - s->in->len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK
		      || errno == EINTR))
		return;
	if (n <= 0) {
		if (s->in->len > 0)
			log_warn("bounce: lost connection while reading "
				 "request");
		bounce_sess_free(s);
		return;
	}
	s->in->len += (size_t) n;
	s->in->data[s->in->len] = 0;

	memset(&list, 0, sizeof(list));
	ret = attr_list_parse(s->in->data, s->in->len, BOUNCE_VALUE_MAX,
			      &list, &used);
	if (ret == 0)
		return;
	event_del(s->rev);
	memset(&res, 0, sizeof(res));
	if (ret < 0 || used != s->in->len) {
		log_warn("bounce: malformed request");
		res.status = 5;
		strcpy(res.reason, "5.5.4 malformed bounce request");
	} else {
		bounce_notify(&list, &res);
	}
	attr_list_clear(&list);
	bounce_sess_reply(s, &res);
}

/* bounce_session_accept - a new client (qmgr) */
void
bounce_session_accept(int fd)
{
	struct bounce_sess *s = xcalloc(1, sizeof(*s));
	struct timeval tv;

	s->fd = fd;
	s->in = strbuf_new(4096, BOUNCE_REQUEST_MAX);
	s->rev = event_new(bounce_base, fd, EV_READ | EV_PERSIST,
			   bounce_sess_read_cb, s);
	if (s->rev == NULL)
		log_fatal("event_new: out of memory");
	s->next = bounce_sessions;
	if (bounce_sessions)
		bounce_sessions->prev = s;
	bounce_sessions = s;
	bounce_nsessions++;
	/* The timeout starts again with each read (EV_PERSIST). */
	tv.tv_sec = var_bounce_timeout;
	tv.tv_usec = 0;
	if (event_add(s->rev, &tv) < 0)
		log_fatal("event_add: %s", strerror(errno));
}

/* bounce_session_shutdown - SIGTERM: close everything */
void
bounce_session_shutdown(void)
{
	while (bounce_sessions)
		bounce_sess_free(bounce_sessions);
}
