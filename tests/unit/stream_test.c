/*
 * stream_test - unit tests for lib/util/stream.c
 *
 * Over a socketpair (and loopback TCP for connect): input reaches the
 * read callback and the input buffer; output is written by the loop
 * and counted by stream_pending(); stream_flush() writes without the
 * loop; reading can be stopped; end of file, idle timeouts, connect,
 * refused and timed-out connects reach the event callback; a callback
 * may close its stream; addresses are formatted; both ends of a TCP
 * connection have Nagle off. TLS: tls_stream_test.c.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "stream.h"

/* What the callbacks saw. */
struct seen {
	struct event_base *base;
	struct stream *st;
	int     reads;
	int     writes;
	int     events;
	int     what;			/* the last event bits */
	int     err;
	int     close_on_read;		/* stream_close() from read_fn */
};

/* seen_read - read callback */
static void
seen_read(struct stream *st, void *ctx)
{
	struct seen *sn = ctx;

	sn->reads++;
	if (sn->close_on_read) {
		assert_ptr_equal(st, sn->st);
		sn->st = stream_close(st);
	}
}

/* seen_write - write callback */
static void
seen_write(struct stream *unused_st, void *ctx)
{
	(void) unused_st;
	((struct seen *) ctx)->writes++;
}

/* seen_event - event callback */
static void
seen_event(struct stream *unused_st, int what, int err, void *ctx)
{
	struct seen *sn = ctx;

	(void) unused_st;
	sn->events++;
	sn->what = what;
	sn->err = err;
}

/* run_until - run the loop until *count passes "min"; 5s at most */
static void
run_until(struct seen *sn, const int *count, int min)
{
	struct timeval end;
	struct timeval now;

	gettimeofday(&end, NULL);
	end.tv_sec += 5;
	while (*count < min) {
		struct timeval tick = {0, 50000};

		event_base_loopexit(sn->base, &tick);
		event_base_dispatch(sn->base);
		gettimeofday(&now, NULL);
		if (timercmp(&now, &end, >))
			fail_msg("the callback did not come");
	}
}

/* nodelay - is Nagle off on this TCP socket? */
static int
nodelay(int fd)
{
	int     on = 0;
	socklen_t len = sizeof(on);

	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len),
			 0);
	return (on != 0);
}

/* pair_setup - a stream on one end of a socketpair, the peer in *peer */
static struct seen *
pair_setup(int *peer)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	int     sv[2];

	assert_non_null(sn);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	sn->base = event_base_new();
	assert_non_null(sn->base);
	sn->st = stream_accept(sn->base, sv[0]);
	assert_non_null(sn->st);
	stream_setcb(sn->st, seen_read, seen_write, seen_event, sn);
	*peer = sv[1];
	return (sn);
}

/* seen_free - close everything */
static void
seen_free(struct seen *sn, int peer)
{
	sn->st = stream_close(sn->st);
	if (peer >= 0)
		close(peer);
	event_base_free(sn->base);
	free(sn);
}

/* test_read - input reaches the callback and the input buffer */
static void
test_read(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);
	char    buf[16];

	(void) unused_state;
	stream_enable(sn->st, STREAM_READ);
	assert_int_equal(write(peer, "EHLO x\r\nQUIT\r\n", 14), 14);
	run_until(sn, &sn->reads, 1);
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 14);
	assert_int_equal(stream_read(sn->st, buf, 8), 8);
	assert_memory_equal(buf, "EHLO x\r\n", 8);
	stream_drain(sn->st, 4);
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 2);
	stream_drain(sn->st, 100);		/* more than there is */
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 0);
	seen_free(sn, peer);
}

/* test_write - the loop writes; pending counts; the callback says so */
static void
test_write(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);
	struct evbuffer *buf = evbuffer_new();
	char    got[32];
	ssize_t n;

	(void) unused_state;
	stream_enable(sn->st, STREAM_WRITE);
	assert_int_equal(stream_pending(sn->st), 0);
	assert_int_equal(stream_write(sn->st, "250 ok\r\n", 8), 0);
	evbuffer_add(buf, "221 bye\r\n", 9);
	assert_int_equal(stream_write_buffer(sn->st, buf), 0);
	assert_int_equal(evbuffer_get_length(buf), 0);
	evbuffer_add_printf(stream_output(sn->st), "%s", "!");
	assert_int_equal(stream_pending(sn->st), 18);
	run_until(sn, &sn->writes, 1);
	assert_int_equal(stream_pending(sn->st), 0);
	n = read(peer, got, sizeof(got));
	assert_int_equal(n, 18);
	assert_memory_equal(got, "250 ok\r\n221 bye\r\n!", 18);
	evbuffer_free(buf);
	seen_free(sn, peer);
}

/* test_flush - a last reply goes out without the loop */
static void
test_flush(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);
	static char big[1 << 20];
	char    got[64];

	(void) unused_state;
	assert_int_equal(stream_flush(sn->st), 0);	/* nothing to do */
	stream_write(sn->st, "421 shutting down\r\n", 19);
	assert_int_equal(stream_flush(sn->st), 0);
	assert_int_equal(stream_pending(sn->st), 0);
	assert_int_equal(read(peer, got, sizeof(got)), 19);
	assert_memory_equal(got, "421 shutting down\r\n", 19);

	/* A peer that does not read: some is left, no error. */
	memset(big, 'x', sizeof(big));
	stream_write(sn->st, big, sizeof(big));
	assert_int_equal(stream_flush(sn->st), 1);
	assert_true(stream_pending(sn->st) > 0);
	assert_true(stream_pending(sn->st) < sizeof(big));

	/* A peer that is gone: an error. */
	close(peer);
	assert_int_equal(stream_flush(sn->st), -1);
	seen_free(sn, -1);
}

/* test_disable - a stream that does not read leaves bytes in the kernel */
static void
test_disable(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);

	(void) unused_state;
	stream_enable(sn->st, STREAM_READ);
	stream_disable(sn->st, STREAM_READ);
	assert_int_equal(write(peer, "NOOP\r\n", 6), 6);
	event_base_loop(sn->base, EVLOOP_NONBLOCK);
	event_base_loop(sn->base, EVLOOP_NONBLOCK);
	assert_int_equal(sn->reads, 0);
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 0);
	stream_enable(sn->st, STREAM_READ);
	run_until(sn, &sn->reads, 1);
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 6);
	seen_free(sn, peer);
}

/* test_eof - the peer closes */
static void
test_eof(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);

	(void) unused_state;
	stream_enable(sn->st, STREAM_READ);
	close(peer);
	run_until(sn, &sn->events, 1);
	assert_true(sn->what & STREAM_EV_EOF);
	assert_true(sn->what & STREAM_EV_READING);
	assert_false(sn->what & STREAM_EV_CONNECTING);
	seen_free(sn, -1);
}

/* test_read_timeout - an idle peer */
static void
test_read_timeout(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);
	struct timeval t0;
	struct timeval t1;

	(void) unused_state;
	stream_timeouts(sn->st, 1, 0);
	stream_enable(sn->st, STREAM_READ);
	gettimeofday(&t0, NULL);
	run_until(sn, &sn->events, 1);
	gettimeofday(&t1, NULL);
	assert_true(sn->what & STREAM_EV_TIMEOUT);
	assert_true(sn->what & STREAM_EV_READING);
	assert_true(t1.tv_sec - t0.tv_sec >= 0);
	assert_true((t1.tv_sec - t0.tv_sec) * 1000000
		    + (t1.tv_usec - t0.tv_usec) >= 900000);
	seen_free(sn, peer);
}

/* test_big_read - what the socket holds arrives in few callbacks */
static void
test_big_read(void **unused_state)
{
	static char big[60 * 1024];
	int     peer;
	int     size = 512 * 1024;
	struct seen *sn = pair_setup(&peer);

	(void) unused_state;
	assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &size,
				    sizeof(size)), 0);
	memset(big, 'x', sizeof(big));
	assert_int_equal(write(peer, big, sizeof(big)), sizeof(big));
	stream_enable(sn->st, STREAM_READ);
	run_until(sn, &sn->reads, 1);
	/* libevent's own reads take 4 KiB a loop turn: 15 callbacks. */
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)),
			 sizeof(big));
	assert_int_equal(sn->reads, 1);
	seen_free(sn, peer);
}

/* test_write_timeout - a peer that does not read */
static void
test_write_timeout(void **unused_state)
{
	static char big[64 * 1024];
	int     peer;
	int     i;
	struct seen *sn = pair_setup(&peer);

	(void) unused_state;
	stream_timeouts(sn->st, 0, 1);
	stream_enable(sn->st, STREAM_READ | STREAM_WRITE);
	for (i = 0; i < 64; i++)
		assert_int_equal(stream_write(sn->st, big, sizeof(big)), 0);
	run_until(sn, &sn->events, 1);
	assert_true(sn->what & STREAM_EV_TIMEOUT);
	assert_true(sn->what & STREAM_EV_WRITING);
	assert_true(stream_pending(sn->st) > 0);
	seen_free(sn, peer);
}

/* test_idle_after_write - output written, the stream holds nothing */
static void
test_idle_after_write(void **unused_state)
{
	char    buf[64];
	int     peer;
	struct seen *sn = pair_setup(&peer);

	(void) unused_state;
	stream_enable(sn->st, STREAM_READ);
	assert_int_equal(write(peer, "EHLO x\r\n", 8), 8);
	run_until(sn, &sn->reads, 1);
	stream_drain(sn->st, 8);
	assert_int_equal(stream_write(sn->st, "250 ok\r\n", 8), 0);
	/* The write-through sends it at the end of the loop turn. */
	while (stream_pending(sn->st) > 0)
		event_base_loop(sn->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	assert_int_equal(read(peer, buf, sizeof(buf)), 8);
	/* And the next command still arrives. */
	assert_int_equal(write(peer, "QUIT\r\n", 6), 6);
	run_until(sn, &sn->reads, 2);
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 6);
	seen_free(sn, peer);
}

/* test_close_in_callback - a callback may end its stream */
static void
test_close_in_callback(void **unused_state)
{
	int     peer;
	struct seen *sn = pair_setup(&peer);

	(void) unused_state;
	sn->close_on_read = 1;
	stream_enable(sn->st, STREAM_READ);
	assert_int_equal(write(peer, "QUIT\r\n", 6), 6);
	run_until(sn, &sn->reads, 1);
	assert_null(sn->st);
	/* The descriptor is closed: the peer sees end of file. */
	assert_int_equal(read(peer, &peer, 1), 0);
	seen_free(sn, peer);
}

/* listener - a loopback TCP listener; its port in *port */
static int
listener(int backlog, struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int     fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *) sin, sizeof(*sin)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) sin, &len), 0);
	return (fd);
}

/* test_connect - an outgoing connection and its two ends */
static void
test_connect(void **unused_state)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	struct sockaddr_in sin;
	int     lfd = listener(8, &sin);
	int     afd;
	int     port;
	char    addr[64];
	char    got[8];

	(void) unused_state;
	sn->base = event_base_new();
	sn->st = stream_connect(sn->base, (struct sockaddr *) &sin,
				sizeof(sin), 5);
	assert_non_null(sn->st);
	stream_setcb(sn->st, seen_read, seen_write, seen_event, sn);
	/* Idle timeouts wait for the connection. */
	stream_timeouts(sn->st, 60, 60);
	stream_write(sn->st, "EHLO\r\n", 6);	/* queued while connecting */
	run_until(sn, &sn->events, 1);
	assert_int_equal(sn->what, STREAM_EV_CONNECTED);

	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	run_until(sn, &sn->writes, 1);
	assert_int_equal(read(afd, got, sizeof(got)), 6);
	assert_memory_equal(got, "EHLO\r\n", 6);

	assert_int_equal(stream_peer_addr(sn->st, addr, sizeof(addr), &port), 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(port, ntohs(sin.sin_port));
	assert_int_equal(stream_local_addr(sn->st, addr, sizeof(addr), &port),
			 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_true(port > 0 && port != ntohs(sin.sin_port));

	assert_int_equal(write(afd, "220 hi\r\n", 8), 8);
	run_until(sn, &sn->reads, 1);
	assert_int_equal(evbuffer_get_length(stream_input(sn->st)), 8);

	/*
	 * No Nagle on either end: a TLS server's session tickets and its
	 * next reply leave in two writes, and the second must not wait for
	 * the client's delayed ACK (40 ms a message).
	 */
	assert_int_equal(nodelay(afd), 0);
	{
		struct stream *acc = stream_accept(sn->base, afd);

		assert_non_null(acc);
		assert_int_equal(nodelay(afd), 1);
		(void) stream_close(acc);	/* closes afd */
	}
	close(lfd);
	seen_free(sn, -1);
}

/* test_connect_nodelay - the connecting side has no Nagle either */
static void
test_connect_nodelay(void **unused_state)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	struct sockaddr_in sin;
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	int     lfd = listener(8, &sin);
	int     afd;
	int     fd;
	int     port;
	char    addr[64];

	(void) unused_state;
	sn->base = event_base_new();
	sn->st = stream_connect(sn->base, (struct sockaddr *) &sin,
				sizeof(sin), 5);
	assert_non_null(sn->st);
	stream_setcb(sn->st, seen_read, seen_write, seen_event, sn);
	run_until(sn, &sn->events, 1);
	assert_int_equal(sn->what, STREAM_EV_CONNECTED);
	afd = accept(lfd, (struct sockaddr *) &peer, &len);
	assert_true(afd >= 0);
	/* Find the stream's descriptor: the one bound to its local port. */
	assert_int_equal(stream_local_addr(sn->st, addr, sizeof(addr), &port),
			 0);
	for (fd = 3; fd < 1024; fd++) {
		struct sockaddr_in me;
		socklen_t mlen = sizeof(me);

		if (fd != afd && fd != lfd
		    && getsockname(fd, (struct sockaddr *) &me, &mlen) == 0
		    && me.sin_family == AF_INET && ntohs(me.sin_port) == port)
			break;
	}
	assert_true(fd < 1024);
	assert_int_equal(nodelay(fd), 1);
	close(afd);
	close(lfd);
	seen_free(sn, -1);
}

/* test_connect_refused - nobody listens */
static void
test_connect_refused(void **unused_state)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	struct sockaddr_in sin;
	int     lfd = listener(1, &sin);

	(void) unused_state;
	close(lfd);				/* the port is free now */
	sn->base = event_base_new();
	sn->st = stream_connect(sn->base, (struct sockaddr *) &sin,
				sizeof(sin), 5);
	if (sn->st == NULL) {
		/* Refused at once is fine too. */
		assert_int_equal(errno, ECONNREFUSED);
		seen_free(sn, -1);
		return;
	}
	stream_setcb(sn->st, seen_read, seen_write, seen_event, sn);
	run_until(sn, &sn->events, 1);
	assert_true(sn->what & STREAM_EV_ERROR);
	assert_true(sn->what & STREAM_EV_CONNECTING);
	assert_true(sn->err == ECONNREFUSED || sn->err == 0);
	seen_free(sn, -1);
}

/* test_connect_timeout - a server whose listen queue is full */
static void
test_connect_timeout(void **unused_state)
{
	struct seen *sn = calloc(1, sizeof(*sn));
	struct sockaddr_in sin;
	int     lfd = listener(0, &sin);
	int     fill[4];
	int     i;

	(void) unused_state;

	/*
	 * Linux queues backlog + 1 connections and then drops SYNs: fill
	 * the queue without accepting, so that the next connect hangs.
	 */
	for (i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(fcntl(fill[i], F_SETFL, O_NONBLOCK), 0);
		(void) connect(fill[i], (struct sockaddr *) &sin, sizeof(sin));
	}
	usleep(100000);
	sn->base = event_base_new();
	sn->st = stream_connect(sn->base, (struct sockaddr *) &sin,
				sizeof(sin), 1);
	assert_non_null(sn->st);
	stream_setcb(sn->st, seen_read, seen_write, seen_event, sn);
	run_until(sn, &sn->events, 1);
	assert_true(sn->what & STREAM_EV_TIMEOUT);
	assert_true(sn->what & STREAM_EV_CONNECTING);
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	seen_free(sn, -1);
}

/* test_addr_format - addresses as text */
static void
test_addr_format(void **unused_state)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	char    buf[64];
	int     port;

	(void) unused_state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(25);
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	assert_int_equal(stream_addr_format((struct sockaddr *) &sin, buf,
					    sizeof(buf), &port), 0);
	assert_string_equal(buf, "192.0.2.7");
	assert_int_equal(port, 25);

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(587);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	assert_int_equal(stream_addr_format((struct sockaddr *) &sin6, buf,
					    sizeof(buf), &port), 0);
	assert_string_equal(buf, "2001:db8::1");
	assert_int_equal(port, 587);

	/* IPv4-mapped: shown as IPv4, as mynetworks matches it. */
	inet_pton(AF_INET6, "::ffff:127.0.0.2", &sin6.sin6_addr);
	assert_int_equal(stream_addr_format((struct sockaddr *) &sin6, buf,
					    sizeof(buf), NULL), 0);
	assert_string_equal(buf, "127.0.0.2");

	/* A unix socket has no address. */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	assert_int_equal(stream_addr_format((struct sockaddr *) &sun, buf,
					    sizeof(buf), &port), -1);
	assert_string_equal(buf, "");
	assert_int_equal(port, 0);

	/* Too small a buffer is an error, not an overflow. */
	assert_int_equal(stream_addr_format((struct sockaddr *) &sin, buf, 4,
					    NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest stream_tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_disable),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_read_timeout),
		cmocka_unit_test(test_big_read),
		cmocka_unit_test(test_write_timeout),
		cmocka_unit_test(test_idle_after_write),
		cmocka_unit_test(test_close_in_callback),
		cmocka_unit_test(test_connect),
		cmocka_unit_test(test_connect_nodelay),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_addr_format),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests_name("stream", stream_tests, NULL,
					    NULL));
}
