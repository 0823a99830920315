/*
 * cleanup_client - submit one message to cleanup (every client's side)
 *
 * SYNOPSIS
 *	#include "cleanup_client.h"
 *
 *	int	cleanup_client_connect(const char *path, int nonblock)
 *
 *	struct cleanup_client *cleanup_client_open(struct event_base *base,
 *			int fd, const struct strbuf *envelope, long timeout,
 *			cleanup_client_reply_fn reply,
 *			cleanup_client_drain_fn drain, void *ctx)
 *	void	cleanup_client_write(struct cleanup_client *cl,
 *			const void *data, size_t len)
 *	void	cleanup_client_finish(struct cleanup_client *cl,
 *			const struct strbuf *trailer)
 *	size_t	cleanup_client_pending(const struct cleanup_client *cl)
 *	void	cleanup_client_stalled(struct cleanup_client *cl)
 *	void	cleanup_client_free(struct cleanup_client *cl)
 *
 *	struct cleanup_client *cleanup_client_start(int fd,
 *			const struct strbuf *envelope, long timeout,
 *			struct cleanup_result *res)
 *	int	cleanup_client_put(struct cleanup_client *cl,
 *			const void *data, size_t len,
 *			struct cleanup_result *res)
 *	int	cleanup_client_end(struct cleanup_client *cl,
 *			const struct strbuf *trailer,
 *			struct cleanup_result *res)
 *
 * DESCRIPTION
 *	One connection carries one message (docs/ipc.md "cleanup"): the
 *	envelope, cleanup's first reply (status 0 and the queue ID once
 *	the file is open), the content as "data" attributes, an optional
 *	trailer (hold, discard), the end of the list, and cleanup's
 *	verdict. This module is the one place that speaks it; smtpd uses
 *	it event-driven, bounce, pickup and sendmail blocking.
 *
 *	cleanup_client_connect() connects a unix stream socket to path
 *	(relative to the working directory, usually queue_directory) and
 *	returns the descriptor, or -1 with errno set. A unix socket
 *	connects at once or not at all.
 *
 *	cleanup_client_open() takes the connected fd (it is closed with
 *	the client, and on failure) and sends the envelope (an attribute
 *	list the caller built, with its end). reply() is called once for
 *	the first reply and, when that was status 0, once more for the
 *	verdict; or once when something went wrong. A result with status
 *	other than 0, with final set, or with lost set, is the last:
 *	then the caller frees the client (also from within reply()).
 *	lost says why there was no proper reply: "timeout" (no reply for
 *	timeout seconds), "connection closed", "malformed reply", "reply
 *	too long", "no queue ID in reply", "unexpected reply", or a socket
 *	error; the result is then status 4, except when cleanup went away
 *	after all the content was sent and the queue file is already
 *	committed (qfile_committed()): then it is status 0 with the queue
 *	ID and committed set, since the message will be delivered, and
 *	saying "try again" would make the sender send it twice.
 *
 *	cleanup_client_write() adds content, split into "data" attributes
 *	of at most QFILE_CHUNK bytes. cleanup_client_pending() says how
 *	many bytes still wait to go out: a writer that finds more than
 *	CLEANUP_CLIENT_HIWAT should stop and call cleanup_client_stalled()
 *	(cleanup then has timeout seconds to take more), and drain() is
 *	called once the output is below CLEANUP_CLIENT_LOWAT.
 *	cleanup_client_finish() sends the trailer (may be NULL; attributes
 *	without an end) and the end of the list, and waits for the verdict.
 *	cleanup_client_free() drops the connection: before the end of the
 *	content, that aborts the message and cleanup removes its file.
 *
 *	The blocking functions run the same state machine on a private
 *	event loop. cleanup_client_start() sends the envelope and waits for
 *	the first reply: it returns the client, or NULL with res saying why
 *	(the client is then gone). cleanup_client_put() writes content,
 *	waiting while the output is above the high-water mark, and
 *	cleanup_client_end() sends the trailer and the end and waits for
 *	the verdict; each returns 0, or -1 with res filled. A client
 *	started this way is freed with cleanup_client_free() too.
 * DIAGNOSTICS
 *	None: every outcome is a result for the caller to log in its words.
 * SEE ALSO
 *	docs/ipc.md, cleanup(8), qfile(3)
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
#include "cleanup_client.h"
#include "mail_attr.h"
#include "qfile.h"
#include "strbuf.h"
#include "xmalloc.h"

#define CL_WAIT_OPEN	0		/* envelope sent, waiting for ID */
#define CL_STREAM	1		/* content flows */
#define CL_WAIT_DONE	2		/* content sent, waiting for verdict */
#define CL_OVER		3		/* the last result is out */

#define CL_REPLY_MAX	65536		/* longest reply list we wait for */

struct cleanup_client {
	struct bufferevent *bev;
	struct event *timer;
	long    timeout;
	int     state;
	char    queue_id[QFILE_ID_MAX + 1];
	cleanup_client_reply_fn reply;
	cleanup_client_drain_fn drain;
	void   *ctx;
	/* Blocking use: the private loop and what it saw. */
	struct event_base *own_base;
	struct cleanup_result sync_res;
	int     sync_got;
	int     sync_drained;
};

/* cleanup_client_connect - a connected unix stream socket, or -1 */
int
cleanup_client_connect(const char *path, int nonblock)
{
	struct sockaddr_un sun;
	int     fd;
	int     err;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return (-1);
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC
			 | (nonblock ? SOCK_NONBLOCK : 0), 0)) < 0)
		return (-1);
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
		err = errno;
		(void) close(fd);
		errno = err;
		return (-1);
	}
	return (fd);
}

/* cleanup_client_report - hand a result to the caller (may free cl) */
static void
cleanup_client_report(struct cleanup_client *cl, struct cleanup_result *res)
{
	if (res->status != 0 || res->final || res->lost[0])
		cl->state = CL_OVER;
	cl->reply(cl, res, cl->ctx);
}

/* cleanup_client_fail - no proper reply: say why (may free cl) */
static void
cleanup_client_fail(struct cleanup_client *cl, const char *why)
{
	struct cleanup_result res;

	if (cl->state == CL_OVER)
		return;
	memset(&res, 0, sizeof(res));
	snprintf(res.lost, sizeof(res.lost), "%s", why);
	snprintf(res.queue_id, sizeof(res.queue_id), "%s", cl->queue_id);
	res.final = cl->state == CL_WAIT_DONE;
	/*
	 * cleanup went away after all the content was sent: if it committed
	 * the file before it died, the message will be delivered whatever
	 * we say, and a failure would make the sender send it twice.
	 */
	res.committed = cl->state == CL_WAIT_DONE && cl->queue_id[0]
		&& qfile_committed(cl->queue_id) == 1;
	res.status = res.committed ? 0 : 4;
	cleanup_client_report(cl, &res);
}

/* cleanup_client_timer_cb - cleanup did not answer or take in time */
static void
cleanup_client_timer_cb(evutil_socket_t unused_fd, short unused_what,
			void *ctx)
{
	(void) unused_fd;
	(void) unused_what;
	cleanup_client_fail(ctx, "timeout");
}

/* cleanup_client_arm - (re)start the timer */
static void
cleanup_client_arm(struct cleanup_client *cl)
{
	struct timeval tv;

	tv.tv_sec = cl->timeout;
	tv.tv_usec = 0;
	evtimer_add(cl->timer, &tv);
}

/* cleanup_client_read_cb - a reply from cleanup */
static void
cleanup_client_read_cb(struct bufferevent *bev, void *ctx)
{
	struct cleanup_client *cl = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct cleanup_result res;
	struct attr_list list;
	size_t  len = evbuffer_get_length(in);
	size_t  used = 0;
	long long status;
	const char *v;
	int     ret;

	if (cl->state == CL_OVER)
		return;
	memset(&list, 0, sizeof(list));
	ret = attr_list_parse((const char *) evbuffer_pullup(in, -1), len,
			      4096, &list, &used);
	if (ret == 0) {
		if (len > CL_REPLY_MAX)
			cleanup_client_fail(cl, "reply too long");
		return;
	}
	if (ret < 0 || attr_list_getl(&list, MAIL_ATTR_STATUS, &status) < 0) {
		attr_list_clear(&list);
		cleanup_client_fail(cl, "malformed reply");
		return;
	}
	evbuffer_drain(in, used);
	memset(&res, 0, sizeof(res));
	if ((v = attr_list_get(&list, MAIL_ATTR_QUEUE_ID)) != NULL)
		snprintf(res.queue_id, sizeof(res.queue_id), "%s", v);
	if ((v = attr_list_get(&list, MAIL_ATTR_REASON)) != NULL)
		snprintf(res.reason, sizeof(res.reason), "%s", v);
	attr_list_clear(&list);
	evtimer_del(cl->timer);

	if (status != 0) {
		/* cleanup closes after a failure. */
		res.status = status == 5 ? 5 : 4;
		res.final = cl->state == CL_WAIT_DONE;
	} else if (cl->state == CL_WAIT_OPEN) {
		if (!qfile_id_valid(res.queue_id)) {
			cleanup_client_fail(cl, "no queue ID in reply");
			return;
		}
		snprintf(cl->queue_id, sizeof(cl->queue_id), "%s",
			 res.queue_id);
		cl->state = CL_STREAM;
	} else if (cl->state == CL_WAIT_DONE) {
		if (res.queue_id[0] == 0)
			snprintf(res.queue_id, sizeof(res.queue_id), "%s",
				 cl->queue_id);
		res.final = 1;
	} else {
		/* A "yes" while we still send content makes no sense. */
		cleanup_client_fail(cl, "unexpected reply");
		return;
	}
	cleanup_client_report(cl, &res);
}

/*
 * cleanup_client_push - write what the socket takes now; the write event
 * only for what is left. Through the event, every piece cost an epoll_ctl
 * to watch for EPOLLOUT, a loop turn and another epoll_ctl.
 */
static void
cleanup_client_push(struct cleanup_client *cl)
{
	struct evbuffer *out = bufferevent_get_output(cl->bev);

	if (evbuffer_get_length(out) == 0)
		return;
	if (!(bufferevent_get_enabled(cl->bev) & EV_WRITE)) {
		/* The bufferevent keeps its output's start frozen. */
		evbuffer_unfreeze(out, 1);
		(void) evbuffer_write(out, bufferevent_getfd(cl->bev));
		evbuffer_freeze(out, 1);
	}
	/* Left over, or an error for the event to report. */
	if (evbuffer_get_length(out) > 0)
		bufferevent_enable(cl->bev, EV_WRITE);
}

/* cleanup_client_write_cb - output drained below the low-water mark */
static void
cleanup_client_write_cb(struct bufferevent *bev, void *ctx)
{
	struct cleanup_client *cl = ctx;

	/* All out: the next piece is written at once again. */
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
	if (cl->state == CL_STREAM)
		evtimer_del(cl->timer);
	if (cl->state != CL_OVER && cl->drain)
		cl->drain(cl, cl->ctx);
}

/* cleanup_client_event_cb - lost, error */
static void
cleanup_client_event_cb(struct bufferevent *unused_bev, short what,
			void *ctx)
{
	struct cleanup_client *cl = ctx;

	(void) unused_bev;
	if (what & BEV_EVENT_EOF)
		cleanup_client_fail(cl, "connection closed");
	else if (what & BEV_EVENT_ERROR)
		cleanup_client_fail(cl, strerror(EVUTIL_SOCKET_ERROR()));
}

/* cleanup_client_open - send the envelope on a connected socket */
struct cleanup_client *
cleanup_client_open(struct event_base *base, int fd,
		    const struct strbuf *envelope, long timeout,
		    cleanup_client_reply_fn reply,
		    cleanup_client_drain_fn drain, void *ctx)
{
	struct cleanup_client *cl;

	if (evutil_make_socket_nonblocking(fd) < 0) {
		(void) close(fd);
		return (NULL);
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->timeout = timeout;
	cl->reply = reply;
	cl->drain = drain;
	cl->ctx = ctx;
	cl->state = CL_WAIT_OPEN;
	if ((cl->bev = bufferevent_socket_new(base, fd,
					      BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		(void) close(fd);
		xfree(cl);
		return (NULL);
	}
	cl->timer = evtimer_new(base, cleanup_client_timer_cb, cl);
	bufferevent_setcb(cl->bev, cleanup_client_read_cb,
			  cleanup_client_write_cb, cleanup_client_event_cb, cl);
	bufferevent_setwatermark(cl->bev, EV_WRITE, CLEANUP_CLIENT_LOWAT, 0);
	/* Writing is on by default; cleanup_client_push() turns it on. */
	bufferevent_disable(cl->bev, EV_WRITE);
	bufferevent_write(cl->bev, envelope->data, envelope->len);
	cleanup_client_push(cl);
	bufferevent_enable(cl->bev, EV_READ);
	cleanup_client_arm(cl);
	return (cl);
}

/* cleanup_client_write - content as "data" attributes */
void
cleanup_client_write(struct cleanup_client *cl, const void *data, size_t len)
{
	struct evbuffer *out;
	const char *p = data;
	size_t  n;

	if (cl == NULL || cl->state != CL_STREAM)
		return;
	out = bufferevent_get_output(cl->bev);
	while (len > 0) {
		n = len > QFILE_CHUNK ? QFILE_CHUNK : len;
		evbuffer_add_printf(out, MAIL_ATTR_DATA "=%zu:", n);
		evbuffer_add(out, p, n);
		evbuffer_add(out, "\n", 1);
		p += n;
		len -= n;
	}
	cleanup_client_push(cl);
}

/* cleanup_client_finish - trailer, end of content; wait for the verdict */
void
cleanup_client_finish(struct cleanup_client *cl, const struct strbuf *trailer)
{
	if (cl == NULL || cl->state != CL_STREAM)
		return;
	if (trailer != NULL && trailer->len > 0)
		bufferevent_write(cl->bev, trailer->data, trailer->len);
	bufferevent_write(cl->bev, "\n", 1);
	cleanup_client_push(cl);
	cl->state = CL_WAIT_DONE;
	cleanup_client_arm(cl);
}

/* cleanup_client_pending - bytes not yet written to cleanup */
size_t
cleanup_client_pending(const struct cleanup_client *cl)
{
	if (cl == NULL)
		return (0);
	return (evbuffer_get_length(bufferevent_get_output(cl->bev)));
}

/* cleanup_client_stalled - the writer waits for cleanup to take more */
void
cleanup_client_stalled(struct cleanup_client *cl)
{
	if (cl != NULL && cl->state == CL_STREAM)
		cleanup_client_arm(cl);
}

/* cleanup_client_free - the connection and its state */
void
cleanup_client_free(struct cleanup_client *cl)
{
	if (cl == NULL)
		return;
	if (cl->bev)
		bufferevent_free(cl->bev);
	if (cl->timer)
		event_free(cl->timer);
	if (cl->own_base)
		event_base_free(cl->own_base);
	xfree(cl);
}

/* cleanup_client_sync_reply - blocking use: keep the result */
static void
cleanup_client_sync_reply(struct cleanup_client *cl,
			  const struct cleanup_result *res, void *unused_ctx)
{
	(void) unused_ctx;
	cl->sync_res = *res;
	cl->sync_got = 1;
}

/* cleanup_client_sync_drain - blocking use: room for more content */
static void
cleanup_client_sync_drain(struct cleanup_client *cl, void *unused_ctx)
{
	(void) unused_ctx;
	cl->sync_drained = 1;
}

/* cleanup_client_wait - run the private loop until a result */
static int
cleanup_client_wait(struct cleanup_client *cl, struct cleanup_result *res)
{
	cl->sync_got = 0;
	while (!cl->sync_got)
		if (event_base_loop(cl->own_base, EVLOOP_ONCE) < 0) {
			cleanup_client_fail(cl, "event loop failed");
			break;
		}
	*res = cl->sync_res;
	return (res->status == 0 && !(res->lost[0] && !res->committed) ?
		0 : -1);
}

/* cleanup_client_start - blocking: envelope, and the first reply */
struct cleanup_client *
cleanup_client_start(int fd, const struct strbuf *envelope, long timeout,
		     struct cleanup_result *res)
{
	struct event_base *base;
	struct cleanup_client *cl;

	memset(res, 0, sizeof(*res));
	res->status = 4;
	if ((base = event_base_new()) == NULL) {
		(void) close(fd);
		snprintf(res->lost, sizeof(res->lost), "cannot make a loop");
		return (NULL);
	}
	cl = cleanup_client_open(base, fd, envelope, timeout,
				 cleanup_client_sync_reply,
				 cleanup_client_sync_drain, NULL);
	if (cl == NULL) {
		event_base_free(base);
		snprintf(res->lost, sizeof(res->lost), "%s", strerror(errno));
		return (NULL);
	}
	cl->own_base = base;
	if (cleanup_client_wait(cl, res) < 0) {
		cleanup_client_free(cl);
		return (NULL);
	}
	return (cl);
}

/* cleanup_client_put - blocking: content, waiting out backpressure */
int
cleanup_client_put(struct cleanup_client *cl, const void *data, size_t len,
		   struct cleanup_result *res)
{
	if (cl->state == CL_OVER) {
		*res = cl->sync_res;
		return (-1);
	}
	cleanup_client_write(cl, data, len);
	if (cleanup_client_pending(cl) <= CLEANUP_CLIENT_HIWAT)
		return (0);
	cleanup_client_stalled(cl);
	cl->sync_drained = 0;
	cl->sync_got = 0;
	while (!cl->sync_drained && !cl->sync_got)
		if (event_base_loop(cl->own_base, EVLOOP_ONCE) < 0) {
			cleanup_client_fail(cl, "event loop failed");
			break;
		}
	if (cl->state == CL_OVER) {
		*res = cl->sync_res;
		return (-1);
	}
	return (0);
}

/* cleanup_client_end - blocking: the end of content, and the verdict */
int
cleanup_client_end(struct cleanup_client *cl, const struct strbuf *trailer,
		   struct cleanup_result *res)
{
	if (cl->state == CL_OVER) {
		*res = cl->sync_res;
		return (-1);
	}
	cleanup_client_finish(cl, trailer);
	return (cleanup_client_wait(cl, res));
}
