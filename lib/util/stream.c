/*
 * stream - one network connection over a libevent bufferevent
 *
 * SYNOPSIS
 *	#include "stream.h"
 *
 *	struct stream *stream_accept(struct event_base *base, int fd)
 *	struct stream *stream_connect(struct event_base *base,
 *			const struct sockaddr *sa, socklen_t salen,
 *			long timeout)
 *	struct stream *stream_close(struct stream *st)
 *	void	stream_setcb(struct stream *st, STREAM_IO_FN read_fn,
 *			STREAM_IO_FN write_fn, STREAM_EVENT_FN event_fn,
 *			void *ctx)
 *	void	stream_timeouts(struct stream *st, long rsecs, long wsecs)
 *	void	stream_set_write_lowat(struct stream *st, size_t lowat)
 *	void	stream_enable(struct stream *st, int what)
 *	void	stream_disable(struct stream *st, int what)
 *
 *	struct evbuffer *stream_input(struct stream *st)
 *	struct evbuffer *stream_output(struct stream *st)
 *	size_t	stream_read(struct stream *st, void *buf, size_t len)
 *	void	stream_drain(struct stream *st, size_t len)
 *	int	stream_write(struct stream *st, const void *data, size_t len)
 *	int	stream_write_buffer(struct stream *st, struct evbuffer *buf)
 *	size_t	stream_pending(const struct stream *st)
 *	int	stream_flush(struct stream *st)
 *
 *	int	stream_starttls(struct stream *st, struct ssl_st *ssl,
 *			int role)
 *
 *	int	stream_addr_format(const struct sockaddr *sa, char *buf,
 *			size_t len, int *port)
 *	int	stream_peer_addr(const struct stream *st, char *buf,
 *			size_t len, int *port)
 *	int	stream_local_addr(const struct stream *st, char *buf,
 *			size_t len, int *port)
 *
 * DESCRIPTION
 *	A stream is one SMTP connection of smtpd, smtp-out or the sandbox:
 *	a socket bufferevent, and later a TLS filter on top of it. The
 *	protocol code sees only the stream's input and output buffers and
 *	its three callbacks, never the descriptor or a bufferevent, so that
 *	STARTTLS can change what lies underneath without it noticing.
 *
 *	The internal unix-socket connections (smtpd to cleanup, qmgr to
 *	smtp-out, bounce and cleanup requests) stay on plain bufferevents:
 *	they carry attribute lists between processes of one host and are
 *	never encrypted. Only network SMTP connections use streams.
 *
 *	stream_accept() makes a stream of a connected descriptor (from
 *	accept()); the stream owns the descriptor from then on and closes
 *	it in stream_close(), also when stream_accept() fails (NULL).
 *
 *	stream_connect() starts a non-blocking connection to "sa", enabled
 *	for reading and writing. The event callback is told
 *	STREAM_EV_CONNECTED once it is up, or STREAM_EV_ERROR (errno in
 *	its argument; 0 when libevent did not say: take ECONNREFUSED) or
 *	STREAM_EV_TIMEOUT after "timeout" seconds (0: none), both with
 *	STREAM_EV_CONNECTING. The timeouts of stream_timeouts() start only
 *	when the connection is up. NULL when the connection cannot even be
 *	started (errno says why).
 *
 *	stream_close() closes and frees the stream (NULL is fine) and
 *	returns NULL. It may be called from the stream's own callbacks.
 *
 *	stream_setcb() sets the callbacks and their context. read_fn runs
 *	when input arrived, write_fn when the output fell to the write low
 *	watermark (stream_set_write_lowat(), 0 by default: empty),
 *	event_fn on end of file, error, timeout or connect, with the
 *	STREAM_EV_* bits and the errno value of the moment.
 *
 *	stream_timeouts() sets the idle timeouts for reading and writing
 *	in seconds (0: none); they are reported with STREAM_EV_TIMEOUT
 *	and STREAM_EV_READING or STREAM_EV_WRITING, and that direction is
 *	then disabled. stream_enable() and stream_disable() start and stop
 *	reading (STREAM_READ) and writing (STREAM_WRITE); a stream that is
 *	not reading leaves the peer's bytes in the kernel.
 *
 *	stream_input() and stream_output() are the protocol's buffers:
 *	cleartext, also under TLS. They change when TLS starts, so do not
 *	keep them across a return to the event loop. stream_read() takes
 *	and stream_drain() drops input; stream_write() and
 *	stream_write_buffer() (which empties "buf") add output, 0 or -1.
 *
 *	stream_pending() is the number of output bytes that have not yet
 *	gone to the kernel, in every layer: 0 means all was written.
 *
 *	stream_flush() writes what is buffered now with one non-blocking
 *	write, without waiting for the loop: for a last reply just before
 *	stream_close() (smtpd's 421 at shutdown). It returns 0 when
 *	nothing is left, 1 when some is (the peer does not read), -1 on a
 *	write error. Never needed in the normal course: the loop writes.
 *
 *	stream_addr_format() writes the address of "sa" as text to "buf"
 *	(an IPv4-mapped IPv6 address as IPv4) and its port to "*port"
 *	(unless NULL); 0, or -1 for a family other than IPv4 and IPv6
 *	(a unix socket), with "buf" empty and the port 0.
 *	stream_peer_addr() and stream_local_addr() do the same for the
 *	two ends of the connection (one getpeername() or getsockname()
 *	call: use stream_addr_format() on what accept() gave when you
 *	have it).
 *
 * TLS
 *	stream_starttls() is the one place where TLS will start, in
 *	place, on a connection that spoke cleartext; it is not built yet
 *	and returns -1 with errno ENOSYS. The protocol calls it after it
 *	queued "220 Ready to start TLS" (server) or read that reply
 *	(client). It will:
 *
 *	1. Discard the cleartext input that is already buffered, in the
 *	   stream's input and in the socket bufferevent's: a client must
 *	   not pipeline past STARTTLS (RFC 3207, 4.2), and bytes read
 *	   before the handshake must never be taken as sent under TLS (the
 *	   STARTTLS command injection of CVE-2011-0411). A client that
 *	   finds bytes after the 220 drops the connection instead.
 *	2. Leave the buffered cleartext output where it is: the 220 reply
 *	   is already in the socket bufferevent's output, ahead of every
 *	   TLS record the filter will add there, so it goes out first and
 *	   in the clear.
 *	3. Push bufferevent_openssl_filter_new(base, socket_bev, ssl,
 *	   BUFFEREVENT_SSL_ACCEPTING or _CONNECTING, BEV_OPT_CLOSE_ON_FREE)
 *	   on top. libevent takes over the socket bufferevent's callbacks;
 *	   the stream moves its own callbacks, timeouts, write low
 *	   watermark and enabled directions to the filter and clears the
 *	   socket's timeouts. stream_input() and stream_output() then name
 *	   the filter's cleartext buffers, stream_close() frees the filter
 *	   and with it the socket.
 *	4. Report the handshake's end through the event callback
 *	   (STREAM_EV_CONNECTED, or STREAM_EV_ERROR with the OpenSSL error
 *	   logged), so the protocol knows when to read commands again.
 *
 *	stream_pending() already counts the bytes in the layer below, and
 *	stream_flush() moves the filter's output down before it writes.
 *	XXX write_fn is then called when the filter's buffer drains, not
 *	when the socket's does; a protocol that closes once all is out
 *	must also wait for stream_pending() to reach 0; the filter will
 *	need an evbuffer callback on the socket's output for that.
 *
 * DIAGNOSTICS
 *	None: errors are returned and reported through the callbacks.
 *	Out of memory ends the process (xmalloc).
 *
 * SEE ALSO
 *	bufferevent(3), bufferevent_openssl_filter_new(3), RFC 3207
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "stream.h"
#include "xmalloc.h"

/* The event bits are libevent's, so they pass through unchanged. */
_Static_assert(STREAM_READ == EV_READ && STREAM_WRITE == EV_WRITE,
	       "STREAM_READ/WRITE");
_Static_assert(STREAM_EV_READING == BEV_EVENT_READING
	       && STREAM_EV_WRITING == BEV_EVENT_WRITING
	       && STREAM_EV_EOF == BEV_EVENT_EOF
	       && STREAM_EV_ERROR == BEV_EVENT_ERROR
	       && STREAM_EV_TIMEOUT == BEV_EVENT_TIMEOUT
	       && STREAM_EV_CONNECTED == BEV_EVENT_CONNECTED,
	       "STREAM_EV_*");
_Static_assert((STREAM_EV_CONNECTING & 0xff) == 0, "STREAM_EV_CONNECTING");

struct stream {
	struct bufferevent *top;	/* the protocol's buffers */
	struct bufferevent *sock;	/* the socket (== top without TLS) */
	STREAM_IO_FN read_fn;
	STREAM_IO_FN write_fn;
	STREAM_EVENT_FN event_fn;
	void   *ctx;
	long    rsecs;			/* read timeout; 0 none */
	long    wsecs;			/* write timeout; 0 none */
	int     connecting;		/* stream_connect() not done yet */
};

/* stream_read_cb - input arrived */
static void
stream_read_cb(struct bufferevent *unused_bev, void *ctx)
{
	struct stream *st = ctx;

	(void) unused_bev;
	if (st->read_fn)
		st->read_fn(st, st->ctx);
}

/* stream_write_cb - output fell to the low watermark */
static void
stream_write_cb(struct bufferevent *unused_bev, void *ctx)
{
	struct stream *st = ctx;

	(void) unused_bev;
	if (st->write_fn)
		st->write_fn(st, st->ctx);
}

/* stream_apply_timeouts - give the top layer the idle timeouts */
static void
stream_apply_timeouts(struct stream *st)
{
	struct timeval rtv;
	struct timeval wtv;

	rtv.tv_sec = st->rsecs;
	rtv.tv_usec = 0;
	wtv.tv_sec = st->wsecs;
	wtv.tv_usec = 0;
	bufferevent_set_timeouts(st->top, st->rsecs > 0 ? &rtv : NULL,
				 st->wsecs > 0 ? &wtv : NULL);
}

/* stream_event_cb - end of file, error, timeout, connected */
static void
stream_event_cb(struct bufferevent *unused_bev, short what, void *ctx)
{
	struct stream *st = ctx;
	int     err = EVUTIL_SOCKET_ERROR();
	int     ev = what;

	(void) unused_bev;
	if (st->connecting) {
		if (what & BEV_EVENT_CONNECTED) {
			/* The connect timeout ends; the idle ones begin. */
			st->connecting = 0;
			stream_apply_timeouts(st);
		} else {
			ev |= STREAM_EV_CONNECTING;
		}
	}
	/* Last: the callback may close the stream. */
	if (st->event_fn)
		st->event_fn(st, ev, err, st->ctx);
}

/* stream_new - a stream over a socket bufferevent */
static struct stream *
stream_new(struct bufferevent *bev)
{
	struct stream *st = xcalloc(1, sizeof(*st));

	st->top = st->sock = bev;
	bufferevent_setcb(bev, stream_read_cb, stream_write_cb,
			  stream_event_cb, st);
	return (st);
}

/* stream_accept - a stream of an accepted connection */
struct stream *
stream_accept(struct event_base *base, int fd)
{
	struct bufferevent *bev;

	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		(void) close(fd);
		return (NULL);
	}
	return (stream_new(bev));
}

/* stream_connect - start a connection */
struct stream *
stream_connect(struct event_base *base, const struct sockaddr *sa,
	       socklen_t salen, long timeout)
{
	struct bufferevent *bev;
	struct stream *st;
	struct timeval ctv;
	int     saved;

	bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return (NULL);
	st = stream_new(bev);
	st->connecting = 1;
	if (timeout > 0) {
		/* libevent waits for the connect as for a write. */
		ctv.tv_sec = timeout;
		ctv.tv_usec = 0;
		bufferevent_set_timeouts(bev, NULL, &ctv);
	}
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	errno = 0;
	if (bufferevent_socket_connect(bev, (struct sockaddr *) sa,
				       (int) salen) < 0) {
		saved = errno ? errno : ECONNREFUSED;
		(void) stream_close(st);
		errno = saved;
		return (NULL);
	}
	return (st);
}

/* stream_close - close and free */
struct stream *
stream_close(struct stream *st)
{
	if (st == NULL)
		return (NULL);
	/* The top layer frees those below it (BEV_OPT_CLOSE_ON_FREE). */
	bufferevent_free(st->top);
	xfree(st);
	return (NULL);
}

/* stream_setcb - the protocol's callbacks */
void
stream_setcb(struct stream *st, STREAM_IO_FN read_fn, STREAM_IO_FN write_fn,
	     STREAM_EVENT_FN event_fn, void *ctx)
{
	st->read_fn = read_fn;
	st->write_fn = write_fn;
	st->event_fn = event_fn;
	st->ctx = ctx;
}

/* stream_timeouts - idle timeouts in seconds; 0 none */
void
stream_timeouts(struct stream *st, long rsecs, long wsecs)
{
	st->rsecs = rsecs > 0 ? rsecs : 0;
	st->wsecs = wsecs > 0 ? wsecs : 0;
	/* While connecting, the connect timeout stays in force. */
	if (!st->connecting)
		stream_apply_timeouts(st);
}

/* stream_set_write_lowat - when write_fn runs */
void
stream_set_write_lowat(struct stream *st, size_t lowat)
{
	bufferevent_setwatermark(st->top, EV_WRITE, lowat, 0);
}

/* stream_enable - start reading and/or writing */
void
stream_enable(struct stream *st, int what)
{
	bufferevent_enable(st->top, (short) what);
}

/* stream_disable - stop reading and/or writing */
void
stream_disable(struct stream *st, int what)
{
	bufferevent_disable(st->top, (short) what);
}

/* stream_input - the protocol's input buffer */
struct evbuffer *
stream_input(struct stream *st)
{
	return (bufferevent_get_input(st->top));
}

/* stream_output - the protocol's output buffer */
struct evbuffer *
stream_output(struct stream *st)
{
	return (bufferevent_get_output(st->top));
}

/* stream_read - take buffered input */
size_t
stream_read(struct stream *st, void *buf, size_t len)
{
	return (bufferevent_read(st->top, buf, len));
}

/* stream_drain - drop buffered input */
void
stream_drain(struct stream *st, size_t len)
{
	(void) evbuffer_drain(bufferevent_get_input(st->top), len);
}

/* stream_write - queue output */
int
stream_write(struct stream *st, const void *data, size_t len)
{
	return (bufferevent_write(st->top, data, len));
}

/* stream_write_buffer - queue a whole buffer, emptying it */
int
stream_write_buffer(struct stream *st, struct evbuffer *buf)
{
	return (bufferevent_write_buffer(st->top, buf));
}

/* stream_pending - output not yet handed to the kernel */
size_t
stream_pending(const struct stream *st)
{
	size_t  n = evbuffer_get_length(bufferevent_get_output(st->top));

	if (st->sock != st->top)
		n += evbuffer_get_length(bufferevent_get_output(st->sock));
	return (n);
}

/* stream_flush - write what is buffered now, without the loop */
int
stream_flush(struct stream *st)
{
	struct evbuffer *out;
	int     ret;

	/* Under TLS, first move what the filter holds down to the socket. */
	if (st->sock != st->top)
		(void) bufferevent_flush(st->top, EV_WRITE, BEV_FLUSH);
	out = bufferevent_get_output(st->sock);
	if (evbuffer_get_length(out) == 0)
		return (0);

	/*
	 * The socket bufferevent keeps the start of its output frozen
	 * outside its own write handler; open it for this one write.
	 */
	evbuffer_unfreeze(out, 1);
	ret = evbuffer_write(out, bufferevent_getfd(st->sock));
	evbuffer_freeze(out, 1);
	if (ret < 0 && errno != EAGAIN && errno != EWOULDBLOCK
	    && errno != EINTR)
		return (-1);
	return (evbuffer_get_length(out) > 0);
}

/* stream_starttls - start TLS in place (not built yet) */
int
stream_starttls(struct stream *unused_st, struct ssl_st *unused_ssl,
		int unused_role)
{
	(void) unused_st;
	(void) unused_ssl;
	(void) unused_role;
	errno = ENOSYS;
	return (-1);
}

/* stream_addr_format - an address as text, and its port */
int
stream_addr_format(const struct sockaddr *sa, char *buf, size_t len,
		   int *port)
{
	const struct sockaddr_in *sin;
	const struct sockaddr_in6 *sin6;

	if (len > 0)
		buf[0] = 0;
	if (port)
		*port = 0;
	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *) sa;
		if (inet_ntop(AF_INET, &sin->sin_addr, buf, len) == NULL)
			return (-1);
		if (port)
			*port = ntohs(sin->sin_port);
		return (0);
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *) sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			if (inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12],
				      buf, len) == NULL)
				return (-1);
		} else if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf,
				     len) == NULL)
			return (-1);
		if (port)
			*port = ntohs(sin6->sin6_port);
		return (0);
	}
	return (-1);
}

/* stream_sock_addr - one end of the connection as text */
static int
stream_sock_addr(const struct stream *st, int peer, char *buf, size_t len,
		 int *port)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int     fd = bufferevent_getfd(st->sock);
	int     ret;

	memset(&ss, 0, sizeof(ss));
	ret = peer ? getpeername(fd, (struct sockaddr *) &ss, &sslen)
		: getsockname(fd, (struct sockaddr *) &ss, &sslen);
	if (ret < 0) {
		if (len > 0)
			buf[0] = 0;
		if (port)
			*port = 0;
		return (-1);
	}
	return (stream_addr_format((struct sockaddr *) &ss, buf, len, port));
}

/* stream_peer_addr - the remote end as text */
int
stream_peer_addr(const struct stream *st, char *buf, size_t len, int *port)
{
	return (stream_sock_addr(st, 1, buf, len, port));
}

/* stream_local_addr - the local end as text */
int
stream_local_addr(const struct stream *st, char *buf, size_t len, int *port)
{
	return (stream_sock_addr(st, 0, buf, len, port));
}
