/*
 * qmgr_ipc - one request and its reply over a private socket, never blocking
 *
 * SYNOPSIS
 *	#include "qmgr.h"
 *
 *	struct qmgr_ipc *qmgr_ipc_start(const char *service,
 *			struct strbuf *request, long timeout,
 *			qmgr_ipc_cb callback, void *context)
 *	struct qmgr_ipc *qmgr_ipc_cancel(struct qmgr_ipc *ipc)
 *
 * DESCRIPTION
 *	qmgr_ipc_start() connects to private/SERVICE (non-blocking), writes
 *	"request" (an attribute list; the call takes the buffer and frees
 *	it) and reads one attribute list back. It returns a handle at once;
 *	the callback runs later, from the event loop, exactly once:
 *	callback(reply, NULL, context) with the parsed reply, or
 *	callback(NULL, reason, context) when the connection failed, the
 *	peer closed early, the reply was malformed or "timeout" seconds
 *	passed (0: no limit). The reply belongs to this module and is valid
 *	during the callback only; the handle is freed after the callback.
 *
 *	qmgr_ipc_cancel() drops a request without calling its callback and
 *	returns NULL.
 *
 * DIAGNOSTICS
 *	None: failures go to the callback. Out of memory ends the process.
 *
 * SEE ALSO
 *	docs/ipc.md, attr(3)
 */

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "attr.h"
#include "log.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "qmgr.h"

#define QMGR_IPC_MAX_REPLY	(4 * 1024 * 1024)

struct qmgr_ipc {
	int     fd;
	struct event *ev;
	struct event *timer;
	struct strbuf *out;
	size_t  off;
	struct strbuf *in;
	struct attr_list reply;
	qmgr_ipc_cb cb;
	void   *ctx;
	char    why[256];		/* a failure found before the loop */
};

static void qmgr_ipc_io(evutil_socket_t, short, void *);

/* qmgr_ipc_free - release everything, no callback */
static void
qmgr_ipc_free(struct qmgr_ipc *ipc)
{
	if (ipc->ev)
		event_free(ipc->ev);
	if (ipc->timer)
		event_free(ipc->timer);
	if (ipc->fd >= 0)
		(void) close(ipc->fd);
	strbuf_free(ipc->out);
	strbuf_free(ipc->in);
	attr_list_clear(&ipc->reply);
	free(ipc);
}

/* qmgr_ipc_end - call back once and free */
static void
qmgr_ipc_end(struct qmgr_ipc *ipc, int ok, const char *why)
{
	qmgr_ipc_cb cb = ipc->cb;
	void   *ctx = ipc->ctx;

	/* Close first: the callback may start new requests. */
	if (ipc->ev) {
		event_free(ipc->ev);
		ipc->ev = NULL;
	}
	if (ipc->fd >= 0) {
		(void) close(ipc->fd);
		ipc->fd = -1;
	}
	cb(ok ? &ipc->reply : NULL, why, ctx);
	qmgr_ipc_free(ipc);
}

/* qmgr_ipc_timer - the deadline passed, or an early failure */
static void
qmgr_ipc_timer(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct qmgr_ipc *ipc = ctx;

	(void) unused_fd;
	(void) unused_what;
	qmgr_ipc_end(ipc, 0, ipc->why[0] ? ipc->why : "timeout");
}

/* qmgr_ipc_io - write the request, then read the reply */
static void
qmgr_ipc_io(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_ipc *ipc = ctx;
	char    buf[16384];
	ssize_t n;
	size_t  used;
	int     r;

	if (what & EV_WRITE) {
		n = write(fd, ipc->out->data + ipc->off, ipc->out->len - ipc->off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			snprintf(ipc->why, sizeof(ipc->why), "write: %s",
				 strerror(errno));
			qmgr_ipc_end(ipc, 0, ipc->why);
			return;
		}
		ipc->off += (size_t) n;
		if (ipc->off < ipc->out->len)
			return;
		event_free(ipc->ev);
		ipc->ev = event_new(server_base(), ipc->fd, EV_READ | EV_PERSIST,
				    qmgr_ipc_io, ipc);
		if (ipc->ev == NULL || event_add(ipc->ev, NULL) < 0)
			log_fatal("event_new: out of memory");
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		snprintf(ipc->why, sizeof(ipc->why), "read: %s",
			 strerror(errno));
		qmgr_ipc_end(ipc, 0, ipc->why);
		return;
	}
	if (n == 0) {
		qmgr_ipc_end(ipc, 0, "connection closed before the reply");
		return;
	}
	if (strbuf_append(ipc->in, buf, (size_t) n) < 0) {
		qmgr_ipc_end(ipc, 0, "reply too large");
		return;
	}
	r = attr_list_parse(ipc->in->data, ipc->in->len, 0, &ipc->reply, &used);
	if (r < 0)
		qmgr_ipc_end(ipc, 0, "malformed reply");
	else if (r > 0)
		qmgr_ipc_end(ipc, 1, NULL);
}

/* qmgr_ipc_start - connect, send, and wait for the reply */
struct qmgr_ipc *
qmgr_ipc_start(const char *service, struct strbuf *request, long timeout,
	       qmgr_ipc_cb cb, void *ctx)
{
	struct qmgr_ipc *ipc = xcalloc(1, sizeof(*ipc));
	struct sockaddr_un sun;
	struct timeval tv;
	ssize_t w;
	int     n;

	ipc->fd = -1;
	ipc->out = request;
	ipc->in = strbuf_new(1024, QMGR_IPC_MAX_REPLY);
	ipc->cb = cb;
	ipc->ctx = ctx;
	ipc->timer = evtimer_new(server_base(), qmgr_ipc_timer, ipc);
	if (ipc->timer == NULL)
		log_fatal("evtimer_new: out of memory");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "private/%s", service);
	if (n < 0 || (size_t) n >= sizeof(sun.sun_path)) {
		snprintf(ipc->why, sizeof(ipc->why), "service name too long");
	} else if ((ipc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK
				     | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(ipc->why, sizeof(ipc->why), "socket: %s",
			 strerror(errno));
	} else if (connect(ipc->fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
		   && errno != EINPROGRESS) {
		/*
		 * A unix connect fails at once (ENOENT, ECONNREFUSED, EAGAIN).
		 * XXX EAGAIN (backlog full) is transient; master listens with
		 * a backlog of 4096, far above qmgr's concurrency, so it is
		 * treated as a failure here rather than retried.
		 */
		snprintf(ipc->why, sizeof(ipc->why), "connect to %s: %s",
			 sun.sun_path, strerror(errno));
	}
	if (ipc->why[0] == 0) {
		/*
		 * A unix socket takes the request at once, nearly always:
		 * write it now, not after a loop turn for EPOLLOUT.
		 */
		if ((w = write(ipc->fd, ipc->out->data, ipc->out->len)) > 0)
			ipc->off = (size_t) w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			snprintf(ipc->why, sizeof(ipc->why), "write: %s",
				 strerror(errno));
	}
	if (ipc->why[0]) {
		/* Report from the loop, never from inside the caller. */
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		evtimer_add(ipc->timer, &tv);
		return (ipc);
	}
	ipc->ev = event_new(server_base(), ipc->fd, ipc->off < ipc->out->len ?
			    EV_WRITE | EV_PERSIST : EV_READ | EV_PERSIST,
			    qmgr_ipc_io, ipc);
	if (ipc->ev == NULL || event_add(ipc->ev, NULL) < 0)
		log_fatal("event_new: out of memory");
	if (timeout > 0) {
		tv.tv_sec = timeout;
		tv.tv_usec = 0;
		evtimer_add(ipc->timer, &tv);
	}
	return (ipc);
}

/* qmgr_ipc_cancel - forget a request */
struct qmgr_ipc *
qmgr_ipc_cancel(struct qmgr_ipc *ipc)
{
	if (ipc != NULL)
		qmgr_ipc_free(ipc);
	return (NULL);
}
