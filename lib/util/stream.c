/*
 * stream - one network connection, raw or over libevent bufferevents
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
 *	int	stream_push_filter(struct stream *st,
 *			STREAM_FILTER_FN make, void *arg,
 *			STREAM_CLOSE_FN close_fn)
 *	struct bufferevent *stream_filter(const struct stream *st)
 *	int	stream_tls_active(const struct stream *st)
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
 *	an accepted one starts raw (below), a connected one on a socket
 *	bufferevent, and either may later get a TLS filter on top. The
 *	protocol code sees only the stream's input and output buffers and
 *	its three callbacks, never the descriptor or a bufferevent, so that
 *	STARTTLS can change what lies underneath without it noticing.
 *
 *	The internal unix-socket connections (smtpd to cleanup, qmgr to
 *	smtp-out, bounce and cleanup requests) stay on plain bufferevents:
 *	they carry attribute lists between processes of one host and are
 *	never encrypted. Only network SMTP connections use streams.
 *
 *	stream_accept() makes a stream of a connected, non-blocking
 *	descriptor (from accept()); the stream owns the descriptor from
 *	then on and closes it in stream_close(), also when stream_accept()
 *	fails (NULL).
 *	Accepted and connected TCP sockets get TCP_NODELAY: the protocols
 *	gather each batch of replies or commands into one write already,
 *	and under TLS 1.3 a server's session tickets and its next reply
 *	leave in two writes, the second of which Nagle held back until
 *	the client's delayed ACK, 40 ms a message.
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
 *	Without a filter, output is written through: when the protocol
 *	queues output (by stream_write() or straight into stream_output())
 *	and the loop is not already writing, the stream writes it at the
 *	end of the current loop turn with one non-blocking write, and only
 *	what the socket does not take waits for the loop's write event.
 *	Without it every reply cost an epoll_ctl to watch for writability,
 *	a loop turn, and another epoll_ctl to stop watching. Queued output
 *	goes out whether or not STREAM_WRITE is enabled; write_fn runs, as
 *	before, only while it is, when the output fell to the watermark.
 *	While connecting, and under a filter, the loop writes as before.
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
 * RAW STREAMS
 *	An accepted stream has no bufferevent until a filter is pushed:
 *	one event on the descriptor, registered only for what the stream
 *	needs now, and input and output buffers that exist only while they
 *	hold bytes. An idle session (smtpd with thousands of them) costs
 *	the struct and that event, about 300 bytes instead of the 1.1 KB
 *	of a socket bufferevent with its two buffers. The protocol sees
 *	no difference, with two exceptions that it must already respect:
 *	stream_input() and stream_output() may return a new buffer after
 *	a return to the loop, and a stream has one idle timeout at a time,
 *	the write timeout while output waits for the socket, else the read
 *	timeout, restarted by progress in either direction.
 *
 *	A raw stream reads until the socket is empty, up to 64 KiB a
 *	loop turn, in reads that grow from 4 KiB; libevent 2.1's socket
 *	bufferevent reads 4 KiB a loop turn (with an ioctl(FIONREAD)
 *	before each read), 25 turns for a 100 KiB message. The bound
 *	keeps what a stream that stops reading (backpressure) may have
 *	taken into memory at one loop turn's worth.
 *
 * FILTERS (TLS)
 *	stream_push_filter() is the one place where TLS starts, in place,
 *	on a connection that spoke cleartext; lib/tls (tls_stream_start())
 *	calls it with a maker of libevent's OpenSSL filter, so that this
 *	layer needs no OpenSSL. The protocol calls tls_stream_start()
 *	after it queued "220 Ready to start TLS" (server) or read that
 *	reply (client). stream_push_filter():
 *
 *	1. Discards the cleartext input that is already buffered: a client
 *	   must not pipeline past STARTTLS (RFC 3207, 4.2), and bytes read
 *	   before the handshake must never be taken as sent under TLS (the
 *	   STARTTLS command injection of CVE-2011-0411). Bytes still in
 *	   the kernel are read by the handshake, which fails on them.
 *	2. Leaves the buffered cleartext output where it is: the 220 reply
 *	   is already in the socket bufferevent's output, ahead of every
 *	   TLS record the filter will add there, so it goes out first and
 *	   in the clear.
 *	3. Calls make(socket_bufferevent, arg) for the filter, which then
 *	   owns the socket bufferevent (BEV_OPT_CLOSE_ON_FREE) and takes
 *	   over its callbacks. The stream's callbacks, timeouts and write
 *	   low watermark move to the filter; the socket's are cleared.
 *	   stream_input() and stream_output() then name the filter's
 *	   cleartext buffers. stream_filter() returns the filter (NULL
 *	   without one) and stream_tls_active() says whether there is one.
 *	4. Keeps the filter reading and writing until the handshake ends,
 *	   whatever stream_enable() and stream_disable() ask meanwhile (a
 *	   filter that does not read cannot finish a handshake); what they
 *	   asked applies from then on. The filter reports the end through
 *	   the event callback: STREAM_EV_CONNECTED, or an error, end of
 *	   file or timeout (the read timeout bounds the handshake).
 *
 *	Under a filter, write_fn runs once stream_pending(), the output of
 *	both layers, fell to the low watermark: a protocol that closes
 *	once everything is out still waits for stream_pending() to reach
 *	0 in write_fn, as without a filter. End of file and errors come
 *	to the event callback from the loop, after the read callback has
 *	had the data that came with them (libevent's filter reports them
 *	first). stream_close() calls
 *	close_fn(filter) first (TLS: queue the close_notify alert), then
 *	makes one non-blocking attempt to write what the socket still
 *	holds, then frees the filter and with it the socket.
 *
 *	A raw stream first gets its socket bufferevent here, with the
 *	unwritten cleartext output (the 220) moved into it.
 *
 *	stream_push_filter() returns -1 when a filter is already there or
 *	make() returned NULL (errno says why), else 0.
 *
 * DIAGNOSTICS
 *	None: errors are returned and reported through the callbacks.
 *	Out of memory ends the process (xmalloc).
 *
 * SEE ALSO
 *	bufferevent(3), bufferevent_openssl_filter_new(3), RFC 3207,
 *	tls_stream(3)
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "log.h"
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

/*
 * What only a stream under a filter (TLS) needs, allocated when the
 * filter is pushed: smtpd keeps thousands of idle cleartext streams.
 */
struct stream_filter_state {
	STREAM_CLOSE_FN close_fn;	/* before the filter is freed */
	struct event *drained;		/* the socket's output drained */
	struct event *late;		/* end of file or error, deferred */
	int     late_what;		/* its event bits */
	int     late_err;		/* its errno value */
	int     handshake;		/* until the filter's first event */
};

struct stream {
	struct bufferevent *top;	/* the protocol's buffers; NULL: raw */
	struct bufferevent *sock;	/* the socket (== top without TLS) */
	STREAM_IO_FN read_fn;
	STREAM_IO_FN write_fn;
	STREAM_EVENT_FN event_fn;
	void   *ctx;
	size_t  lowat;			/* write_fn threshold, both layers */
	/* Without a filter only: write-through (stream_out_cb()). */
	struct event *push;		/* deferred write, while pending */
	struct stream_filter_state *filt;	/* under a filter only */
	/* A raw stream (accepted, no filter): no bufferevent at all. */
	struct event *ev;		/* the descriptor, as registered */
	struct evbuffer *in;		/* input; NULL while there is none */
	struct evbuffer *out;		/* output; NULL while there is none */
	int     fd;
	int     rsecs;			/* read timeout; 0 none */
	int     wsecs;			/* write timeout; 0 none */
	int     ev_secs;		/* the timeout ev is registered with */
	short   want;			/* stream_enable()d directions */
	short   ev_mask;		/* what ev is registered for */
	short   off;			/* raw: directions ended (EOF, error) */
	char    connecting;		/* stream_connect() not done yet */
	char    busy;			/* raw: in its own callback */
	char    dead;			/* raw: closed in that callback */
};

/* A raw stream: accepted and, so far, without a filter. */
#define STREAM_RAW(st)	((st)->top == NULL)

/* Raw streams read at most this much in one loop turn (fairness). */
#define STREAM_RAW_READ_MAX	(64 * 1024)
#define STREAM_RAW_READ_MIN	4096

static void stream_push_cb(evutil_socket_t, short, void *);
static void stream_raw_cb(evutil_socket_t, short, void *);
static void stream_raw_register(struct stream *);
static void stream_raw_done(struct stream *);
static struct event_base *stream_base(const struct stream *);
static struct evbuffer *stream_raw_input(struct stream *);

static void stream_nodelay(int);

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
	/* Under a filter, the socket's output must drain as well. */
	if (st->sock != st->top && stream_pending(st) > st->lowat)
		return;
	if (st->sock == st->top && !st->connecting) {
		/* All out: stop watching; the next write goes through. */
		if (evbuffer_get_length(bufferevent_get_output(st->sock)) == 0)
			bufferevent_disable(st->sock, EV_WRITE);
		/* Written for the write-through, not for the protocol. */
		if (!(st->want & EV_WRITE))
			return;
	}
	if (st->write_fn)
		st->write_fn(st, st->ctx);
}

/* stream_write_now - one write of the socket's output; bytes or -1 */
static int
stream_write_now(struct stream *st)
{
	struct evbuffer *out = bufferevent_get_output(st->sock);
	int     ret;

	/*
	 * The socket bufferevent keeps the start of its output frozen
	 * outside its own write handler; open it for this one write.
	 */
	evbuffer_unfreeze(out, 1);
	ret = evbuffer_write(out, bufferevent_getfd(st->sock));
	evbuffer_freeze(out, 1);
	return (ret);
}

/* stream_out_cb - without a filter: output was queued */
static void
stream_out_cb(struct evbuffer *unused_buf,
	      const struct evbuffer_cb_info *info, void *ctx)
{
	struct stream *st = ctx;

	(void) unused_buf;

	/*
	 * Write at the end of this loop turn, when the protocol has queued
	 * all it has to say, unless the loop already watches the socket.
	 */
	if (info->n_added == 0 || st->push != NULL || st->connecting
	    || (STREAM_RAW(st) ? (st->ev_mask & EV_WRITE)
		: (bufferevent_get_enabled(st->sock) & EV_WRITE)))
		return;
	st->push = event_new(stream_base(st), -1, 0, stream_push_cb, st);
	if (st->push == NULL)
		log_fatal("event_new: out of memory");
	event_active(st->push, EV_WRITE, 0);
}

/* stream_push_cb - write what was queued; the loop gets the rest */
static void
stream_push_cb(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct stream *st = ctx;
	struct evbuffer *out;
	int     ret;

	(void) unused_fd;
	(void) unused_what;
	event_free(st->push);
	st->push = NULL;
	if (STREAM_RAW(st)) {
		/* The rest, if any, waits for the loop (stream_raw_done()). */
		st->busy = 1;
		if (st->out && evbuffer_get_length(st->out) > 0
		    && !(st->ev_mask & EV_WRITE)) {
			ret = evbuffer_write(st->out, st->fd);
			if (ret > 0 && evbuffer_get_length(st->out) == 0
			    && (st->want & EV_WRITE) && st->write_fn)
				st->write_fn(st, st->ctx);
		}
		stream_raw_done(st);
		return;
	}
	out = bufferevent_get_output(st->sock);
	if (evbuffer_get_length(out) == 0
	    || (bufferevent_get_enabled(st->sock) & EV_WRITE))
		return;
	ret = stream_write_now(st);
	if (evbuffer_get_length(out) > 0) {
		/* The rest (or an error, which the loop reports) to libevent. */
		bufferevent_enable(st->sock, EV_WRITE);
		return;
	}
	/* As libevent would after its write; last: it may close the stream. */
	if (ret > 0 && (st->want & EV_WRITE) && st->write_fn
	    && evbuffer_get_length(out) <= st->lowat)
		st->write_fn(st, st->ctx);
}

/* stream_drained_cb - under a filter: the socket's output drained */
static void
stream_drained_cb(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct stream *st = ctx;

	(void) unused_fd;
	(void) unused_what;
	if (stream_pending(st) <= st->lowat && st->write_fn)
		st->write_fn(st, st->ctx);
}

/* stream_sock_out_cb - the socket's output changed (under a filter) */
static void
stream_sock_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
		   void *ctx)
{
	struct stream *st = ctx;

	/*
	 * This runs inside the socket's write: tell the protocol from the
	 * loop, where it may close the stream.
	 */
	if (info->n_deleted > 0 && evbuffer_get_length(buf) <= st->lowat
	    && stream_pending(st) <= st->lowat)
		event_active(st->filt->drained, EV_WRITE, 0);
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
	if (st->filt && st->filt->handshake) {
		/* The filter's first event ends the handshake. */
		st->filt->handshake = 0;
		if (what & BEV_EVENT_CONNECTED) {
			bufferevent_enable(st->top, st->want);
			bufferevent_disable(st->top, ~st->want & (EV_READ | EV_WRITE));
		}
	}
	if (st->connecting) {
		if (what & BEV_EVENT_CONNECTED) {
			/* The connect timeout ends; the idle ones begin. */
			st->connecting = 0;
			stream_nodelay(bufferevent_getfd(st->sock));
			stream_apply_timeouts(st);
		} else {
			ev |= STREAM_EV_CONNECTING;
		}
	}

	/*
	 * libevent's OpenSSL filter reports end of file or an error before
	 * it hands over the data it read with it (a 221 and the close_notify
	 * in one read): tell the protocol from the loop, after the data.
	 */
	if (st->sock != st->top && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) {
		st->filt->late_what = ev;
		st->filt->late_err = err;
		event_active(st->filt->late, 0, 0);
		return;
	}
	/* Last: the callback may close the stream. */
	if (st->event_fn)
		st->event_fn(st, ev, err, st->ctx);
}

/* stream_late_cb - under a filter: end of file or error, after the data */
static void
stream_late_cb(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct stream *st = ctx;

	(void) unused_fd;
	(void) unused_what;
	if (st->event_fn)
		st->event_fn(st, st->filt->late_what, st->filt->late_err,
			     st->ctx);
}

/* stream_base - the event base of a stream */
static struct event_base *
stream_base(const struct stream *st)
{
	return (STREAM_RAW(st) ? event_get_base(st->ev)
		: bufferevent_get_base(st->sock));
}

/*
 * stream_raw_register - register the descriptor for what the raw stream
 * needs now, with the timeout of that direction. Unchanged: no system
 * call. Reading while enabled; writing only when a write left output
 * behind (the write-through sends the rest).
 */
static void
stream_raw_register(struct stream *st)
{
	struct timeval tv;
	short   mask = 0;
	int     secs = 0;

	if (st->want & ~st->off & EV_READ)
		mask |= EV_READ;
	if (st->out && evbuffer_get_length(st->out) > 0 && st->push == NULL
	    && !(st->off & EV_WRITE))
		mask |= EV_WRITE;
	if (mask & EV_WRITE)
		secs = st->wsecs;
	else if (mask & EV_READ)
		secs = st->rsecs;
	if (mask == st->ev_mask && secs == st->ev_secs)
		return;
	if (st->ev_mask)
		(void) event_del(st->ev);
	st->ev_mask = mask;
	st->ev_secs = secs;
	if (mask == 0)
		return;
	if (event_assign(st->ev, event_get_base(st->ev), st->fd,
			 mask | EV_PERSIST, stream_raw_cb, st) < 0)
		log_fatal("event_assign: %s", strerror(errno));
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	if (event_add(st->ev, secs > 0 ? &tv : NULL) < 0)
		log_fatal("event_add: %s", strerror(errno));
}

/* stream_raw_done - after a raw stream's callback: free, tidy, register */
static void
stream_raw_done(struct stream *st)
{
	st->busy = 0;
	if (st->dead) {
		xfree(st);
		return;
	}
	if (!STREAM_RAW(st))
		return;				/* a filter took over */
	/* An idle stream holds no buffers. */
	if (st->in && evbuffer_get_length(st->in) == 0) {
		evbuffer_free(st->in);
		st->in = NULL;
	}
	if (st->out && evbuffer_get_length(st->out) == 0 && st->push == NULL) {
		evbuffer_free(st->out);
		st->out = NULL;
	}
	stream_raw_register(st);
}

/* stream_raw_readable - read what the socket has; then the protocol */
static void
stream_raw_readable(struct stream *st)
{
	struct evbuffer_iovec vec[2];
	size_t  ask = STREAM_RAW_READ_MIN;
	size_t  total = 0;
	size_t  room;
	size_t  left;
	ssize_t n;
	int     nvec;
	int     i;
	int     err = 0;
	int     eof = 0;

	if (!(st->want & ~st->off & EV_READ))
		return;				/* stopped in this loop turn */
	(void) stream_raw_input(st);
	for (;;) {
		nvec = evbuffer_reserve_space(st->in, (ev_ssize_t) ask, vec, 2);
		if (nvec <= 0)
			log_fatal("evbuffer_reserve_space: out of memory");
		for (room = 0, i = 0; i < nvec; i++)
			room += vec[i].iov_len;
		n = readv(st->fd, (struct iovec *) vec, nvec);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0)
				eof = 1;
			else if (errno != EAGAIN && errno != EWOULDBLOCK)
				err = errno;
			(void) evbuffer_commit_space(st->in, vec, 0);
			break;
		}
		for (left = (size_t) n, i = 0; i < nvec && left > 0; i++) {
			if (vec[i].iov_len > left)
				vec[i].iov_len = left;
			left -= vec[i].iov_len;
		}
		(void) evbuffer_commit_space(st->in, vec, i);
		total += (size_t) n;
		/* Less than there was room for: the socket is empty. */
		if ((size_t) n < room || total >= STREAM_RAW_READ_MAX)
			break;
		if (ask < 65536)
			ask *= 4;
	}
	if (total > 0 && st->read_fn) {
		st->read_fn(st, st->ctx);
		if (st->dead || !STREAM_RAW(st))
			return;
	}
	if (eof || err) {
		/* As a bufferevent: that direction stops; the protocol decides. */
		st->off |= EV_READ;
		if (st->event_fn)
			st->event_fn(st, STREAM_EV_READING
				     | (eof ? STREAM_EV_EOF : STREAM_EV_ERROR),
				     err, st->ctx);
	}
}

/* stream_raw_writable - the socket takes output again */
static void
stream_raw_writable(struct stream *st)
{
	int     ret;

	if (st->out == NULL || evbuffer_get_length(st->out) == 0)
		return;
	ret = evbuffer_write(st->out, st->fd);
	if (ret < 0 && errno != EAGAIN && errno != EWOULDBLOCK
	    && errno != EINTR) {
		st->off |= EV_WRITE;
		if (st->event_fn)
			st->event_fn(st, STREAM_EV_WRITING | STREAM_EV_ERROR,
				     errno, st->ctx);
		return;
	}
	if (ret > 0 && (st->want & EV_WRITE) && st->write_fn
	    && evbuffer_get_length(st->out) <= st->lowat)
		st->write_fn(st, st->ctx);
}

/* stream_raw_timeout - no progress for the timeout of that direction */
static void
stream_raw_timeout(struct stream *st)
{
	int     dir = (st->ev_mask & EV_WRITE) ? EV_WRITE : EV_READ;

	st->off |= (short) dir;
	if (st->event_fn)
		st->event_fn(st, STREAM_EV_TIMEOUT | (dir == EV_WRITE ?
				STREAM_EV_WRITING : STREAM_EV_READING),
			     ETIMEDOUT, st->ctx);
}

/* stream_raw_cb - the descriptor of a raw stream is ready, or idle */
static void
stream_raw_cb(evutil_socket_t unused_fd, short what, void *ctx)
{
	struct stream *st = ctx;

	(void) unused_fd;
	st->busy = 1;
	if (what & EV_TIMEOUT) {
		stream_raw_timeout(st);
	} else {
		if (what & EV_WRITE)
			stream_raw_writable(st);
		if ((what & EV_READ) && !st->dead && STREAM_RAW(st))
			stream_raw_readable(st);
	}
	stream_raw_done(st);
}

/* stream_raw_input - a raw stream's input buffer, made when needed */
static struct evbuffer *
stream_raw_input(struct stream *st)
{
	if (st->in == NULL && (st->in = evbuffer_new()) == NULL)
		log_fatal("evbuffer_new: out of memory");
	return (st->in);
}

/* stream_raw_output - a raw stream's output buffer, made when needed */
static struct evbuffer *
stream_raw_output(struct stream *st)
{
	if (st->out == NULL) {
		if ((st->out = evbuffer_new()) == NULL
		    || evbuffer_add_cb(st->out, stream_out_cb, st) == NULL)
			log_fatal("evbuffer_new: out of memory");
	}
	return (st->out);
}

/* stream_new - a stream over a socket bufferevent */
static struct stream *
stream_new(struct bufferevent *bev)
{
	struct stream *st = xcalloc(1, sizeof(*st));

	st->top = st->sock = bev;
	st->want = bufferevent_get_enabled(bev);
	bufferevent_setcb(bev, stream_read_cb, stream_write_cb,
			  stream_event_cb, st);
	if (evbuffer_add_cb(bufferevent_get_output(bev), stream_out_cb,
			    st) == NULL)
		log_fatal("evbuffer_add_cb: out of memory");
	return (st);
}

/*
 * stream_nodelay - no Nagle: the protocol writes whole replies (or TLS
 * flights) itself, and a second small write must not wait for the
 * peer's delayed ACK. Not a TCP socket (unix, socketpair): nothing.
 */
static void
stream_nodelay(int fd)
{
	int     on = 1;

	(void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* stream_accept - a stream of an accepted connection */
struct stream *
stream_accept(struct event_base *base, int fd)
{
	struct stream *st = xcalloc(1, sizeof(*st));

	/* As a new bufferevent: writing enabled, reading not yet. */
	st->fd = fd;
	st->want = EV_WRITE;
	if ((st->ev = event_new(base, fd, EV_PERSIST, stream_raw_cb,
				st)) == NULL) {
		(void) close(fd);
		xfree(st);
		return (NULL);
	}
	stream_nodelay(fd);
	return (st);
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
	stream_enable(st, STREAM_READ | STREAM_WRITE);
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
	if (st->push)
		event_free(st->push);
	st->push = NULL;
	if (STREAM_RAW(st)) {
		event_free(st->ev);
		st->ev = NULL;
		if (st->in)
			evbuffer_free(st->in);
		if (st->out)
			evbuffer_free(st->out);
		st->in = st->out = NULL;
		(void) close(st->fd);
		st->fd = -1;
		/* In its own callback: freed when that returns. */
		if (st->busy)
			st->dead = 1;
		else
			xfree(st);
		return (NULL);
	}
	if (st->sock != st->top) {
		if (st->filt->close_fn)
			st->filt->close_fn(st->top);
		(void) stream_flush(st);
		event_free(st->filt->drained);
		event_free(st->filt->late);
		xfree(st->filt);
	}
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
	st->rsecs = rsecs > 0 ? (rsecs < INT_MAX ? (int) rsecs : INT_MAX) : 0;
	st->wsecs = wsecs > 0 ? (wsecs < INT_MAX ? (int) wsecs : INT_MAX) : 0;
	if (STREAM_RAW(st))
		stream_raw_register(st);
	/* While connecting, the connect timeout stays in force. */
	else if (!st->connecting)
		stream_apply_timeouts(st);
}

/* stream_set_write_lowat - when write_fn runs */
void
stream_set_write_lowat(struct stream *st, size_t lowat)
{
	st->lowat = lowat;
	if (!STREAM_RAW(st))
		bufferevent_setwatermark(st->top, EV_WRITE, lowat, 0);
}

/* stream_enable - start reading and/or writing */
void
stream_enable(struct stream *st, int what)
{
	st->want |= (short) what;
	if (STREAM_RAW(st)) {
		st->off &= (short) ~what;
		stream_raw_register(st);
		return;
	}
	/* Without a filter, the loop watches for writing only with output. */
	if (st->sock == st->top && !st->connecting
	    && evbuffer_get_length(bufferevent_get_output(st->sock)) == 0)
		what &= ~EV_WRITE;
	if (what)
		bufferevent_enable(st->top, (short) what);
}

/* stream_disable - stop reading and/or writing */
void
stream_disable(struct stream *st, int what)
{
	st->want &= (short) ~what;
	if (STREAM_RAW(st)) {
		stream_raw_register(st);
		return;
	}
	/* A handshake needs both directions; the wish applies after it. */
	if (st->filt == NULL || !st->filt->handshake)
		bufferevent_disable(st->top, (short) what);
}

/* stream_input - the protocol's input buffer */
struct evbuffer *
stream_input(struct stream *st)
{
	if (STREAM_RAW(st))
		return (stream_raw_input(st));
	return (bufferevent_get_input(st->top));
}

/* stream_output - the protocol's output buffer */
struct evbuffer *
stream_output(struct stream *st)
{
	if (STREAM_RAW(st))
		return (stream_raw_output(st));
	return (bufferevent_get_output(st->top));
}

/* stream_read - take buffered input */
size_t
stream_read(struct stream *st, void *buf, size_t len)
{
	int     ret;

	if (STREAM_RAW(st)) {
		if (st->in == NULL)
			return (0);
		ret = evbuffer_remove(st->in, buf, len);
		return (ret > 0 ? (size_t) ret : 0);
	}
	return (bufferevent_read(st->top, buf, len));
}

/* stream_drain - drop buffered input */
void
stream_drain(struct stream *st, size_t len)
{
	if (STREAM_RAW(st)) {
		if (st->in)
			(void) evbuffer_drain(st->in, len);
		return;
	}
	(void) evbuffer_drain(bufferevent_get_input(st->top), len);
}

/* stream_write - queue output */
int
stream_write(struct stream *st, const void *data, size_t len)
{
	if (STREAM_RAW(st))
		return (evbuffer_add(stream_raw_output(st), data, len));
	return (bufferevent_write(st->top, data, len));
}

/* stream_write_buffer - queue a whole buffer, emptying it */
int
stream_write_buffer(struct stream *st, struct evbuffer *buf)
{
	if (STREAM_RAW(st))
		return (evbuffer_add_buffer(stream_raw_output(st), buf));
	return (bufferevent_write_buffer(st->top, buf));
}

/* stream_pending - output not yet handed to the kernel */
size_t
stream_pending(const struct stream *st)
{
	size_t  n;

	if (STREAM_RAW(st))
		return (st->out ? evbuffer_get_length(st->out) : 0);
	n = evbuffer_get_length(bufferevent_get_output(st->top));
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

	if (STREAM_RAW(st)) {
		if (st->out == NULL || evbuffer_get_length(st->out) == 0)
			return (0);
		ret = evbuffer_write(st->out, st->fd);
		if (ret < 0 && errno != EAGAIN && errno != EWOULDBLOCK
		    && errno != EINTR)
			return (-1);
		/* What is left waits for the loop. */
		stream_raw_register(st);
		return (evbuffer_get_length(st->out) > 0);
	}
	/* Under TLS, first move what the filter holds down to the socket. */
	if (st->sock != st->top)
		(void) bufferevent_flush(st->top, EV_WRITE, BEV_FLUSH);
	out = bufferevent_get_output(st->sock);
	if (evbuffer_get_length(out) == 0)
		return (0);
	ret = stream_write_now(st);
	if (ret < 0 && errno != EAGAIN && errno != EWOULDBLOCK
	    && errno != EINTR)
		return (-1);
	return (evbuffer_get_length(out) > 0);
}

/* stream_push_filter - put a filter (TLS) on top of the socket */
int
stream_push_filter(struct stream *st, STREAM_FILTER_FN make, void *arg,
		   STREAM_CLOSE_FN close_fn)
{
	struct event_base *base = stream_base(st);
	struct evbuffer *in;
	struct bufferevent *filter;
	struct bufferevent *bev;

	if (STREAM_RAW(st)) {
		/* The socket gets a bufferevent for the filter to sit on. */
		if ((bev = bufferevent_socket_new(base, st->fd,
						  BEV_OPT_CLOSE_ON_FREE)) == NULL)
			return (-1);
		/* The 220 goes out first, in the clear. */
		if (st->out && bufferevent_write_buffer(bev, st->out) < 0) {
			bufferevent_free(bev);	/* and with it the descriptor */
			st->fd = -1;
			return (-1);
		}
		event_free(st->ev);
		st->ev = NULL;
		st->ev_mask = 0;
		if (st->in)
			evbuffer_free(st->in);
		if (st->out)
			evbuffer_free(st->out);
		st->in = st->out = NULL;
		st->top = st->sock = bev;
		bufferevent_setcb(bev, stream_read_cb, stream_write_cb,
				  stream_event_cb, st);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
	}
	in = bufferevent_get_input(st->sock);
	if (st->sock != st->top) {
		errno = EALREADY;
		return (-1);
	}
	/* Nothing read before the handshake counts (CVE-2011-0411). */
	(void) evbuffer_drain(in, evbuffer_get_length(in));
	if ((filter = make(st->sock, arg)) == NULL)
		return (-1);

	/* The socket is the filter's now: no callbacks, timeouts of ours. */
	(void) evbuffer_remove_cb(bufferevent_get_output(st->sock),
				  stream_out_cb, st);
	if (st->push) {
		event_free(st->push);
		st->push = NULL;
	}
	bufferevent_set_timeouts(st->sock, NULL, NULL);
	bufferevent_setwatermark(st->sock, EV_WRITE, 0, 0);
	st->top = filter;
	st->filt = xcalloc(1, sizeof(*st->filt));
	st->filt->close_fn = close_fn;
	st->filt->drained = event_new(base, -1, 0, stream_drained_cb, st);
	st->filt->late = event_new(base, -1, 0, stream_late_cb, st);
	if (st->filt->drained == NULL || st->filt->late == NULL)
		log_fatal("event_new: out of memory");
	evbuffer_add_cb(bufferevent_get_output(st->sock), stream_sock_out_cb,
			st);
	bufferevent_setcb(filter, stream_read_cb, stream_write_cb,
			  stream_event_cb, st);
	bufferevent_setwatermark(filter, EV_WRITE, st->lowat, 0);
	stream_apply_timeouts(st);
	st->filt->handshake = 1;
	bufferevent_enable(filter, EV_READ | EV_WRITE);
	return (0);
}

/* stream_filter - the filter on top of the socket, if any */
struct bufferevent *
stream_filter(const struct stream *st)
{
	return (st->sock != st->top ? st->top : NULL);
}

/* stream_tls_active - is there a filter (TLS) on top of the socket? */
int
stream_tls_active(const struct stream *st)
{
	return (st->sock != st->top);
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
	int     fd = STREAM_RAW(st) ? st->fd : bufferevent_getfd(st->sock);
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
