/*
 * tls_stream_test - unit tests for lib/tls/tls_stream.c and the filter
 * support of lib/util/stream.c
 *
 * Two streams over a socketpair in one event loop, with a certificate
 * made here: a server and a client start TLS in place after a
 * cleartext "220" and both see the handshake end; what the client
 * pipelined after STARTTLS never reaches the server under TLS; a
 * stream that stops reading during the handshake still finishes it and
 * then does not read; the write callback comes once everything reached
 * the kernel, so a server can close after a large reply and the client
 * gets all of it, before the end of file; garbage instead of a handshake is an error with the
 * OpenSSL reason; Postfix protocol lists map to OpenSSL bounds.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
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

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "stream.h"
#include "tls.h"
#include "testcert.h"

/* One end and what its callbacks saw. */
struct end {
	struct stream *st;
	int     reads;
	int     writes;
	int     connected;
	int     failed;			/* error, EOF or timeout bits */
	size_t  drained;		/* write_fn with nothing pending */
	size_t  received;		/* bytes taken by read_fn */
	size_t  received_at_eof;	/* ... when end of file came */
	int     consume;		/* read_fn drains its input */
};

static struct event_base *base;
static SSL_CTX *server_ctx;
static SSL_CTX *client_ctx;

/* end_read - read callback */
static void
end_read(struct stream *st, void *ctx)
{
	struct end *e = ctx;
	size_t  len = evbuffer_get_length(stream_input(st));

	e->reads++;
	if (e->consume) {
		e->received += len;
		stream_drain(st, len);
	}
}

/* end_write - write callback */
static void
end_write(struct stream *st, void *ctx)
{
	struct end *e = ctx;

	e->writes++;
	if (stream_pending(st) == 0)
		e->drained++;
}

/* end_event - event callback */
static void
end_event(struct stream *st, int what, int unused_err, void *ctx)
{
	struct end *e = ctx;

	(void) unused_err;
	if (what & STREAM_EV_CONNECTED)
		e->connected++;
	else
		e->failed |= what;
	if (what & STREAM_EV_EOF)
		e->received_at_eof = e->received
			+ evbuffer_get_length(stream_input(st));
}

/* run_until - run the loop until the condition holds; 10s at most */
#define run_until(cond) do { \
		struct timeval end_, now_; \
		gettimeofday(&end_, NULL); \
		end_.tv_sec += 10; \
		while (!(cond)) { \
			struct timeval tick_ = {0, 20000}; \
			event_base_loopexit(base, &tick_); \
			event_base_dispatch(base); \
			gettimeofday(&now_, NULL); \
			if (timercmp(&now_, &end_, >)) \
				fail_msg("timed out waiting for %s", #cond); \
		} \
	} while (0)

/* make_ctxs - a self-signed P-256 certificate and the two contexts */
static int
make_ctxs(void **unused_state)
{
	EVP_PKEY *key;
	X509   *cert;

	(void) unused_state;
	tls_init();
	testcert_make(&cert, &key);

	server_ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(server_ctx);
	tls_ctx_common(server_ctx);
	assert_int_equal(tls_ctx_set_protocols(server_ctx, ">=TLSv1.2"), 0);
	assert_int_equal(SSL_CTX_use_certificate(server_ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(server_ctx, key), 1);
	client_ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(client_ctx);
	tls_ctx_common(client_ctx);
	X509_free(cert);
	EVP_PKEY_free(key);
	base = event_base_new();
	assert_non_null(base);
	return (0);
}

/* free_ctxs - the end */
static int
free_ctxs(void **unused_state)
{
	(void) unused_state;
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	event_base_free(base);
	return (0);
}

/* pair - a server and a client stream over a socketpair */
static void
pair(struct end *srv, struct end *cli)
{
	int     sv[2];

	memset(srv, 0, sizeof(*srv));
	memset(cli, 0, sizeof(*cli));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	srv->st = stream_accept(base, sv[0]);
	cli->st = stream_accept(base, sv[1]);
	assert_non_null(srv->st);
	assert_non_null(cli->st);
	stream_setcb(srv->st, end_read, end_write, end_event, srv);
	stream_setcb(cli->st, end_read, end_write, end_event, cli);
	stream_enable(srv->st, STREAM_READ | STREAM_WRITE);
	stream_enable(cli->st, STREAM_READ | STREAM_WRITE);
}

/* input_is - the stream's buffered input equals "text" */
static int
input_is(struct stream *st, const char *text)
{
	struct evbuffer *in = stream_input(st);
	size_t  len = strlen(text);

	return (evbuffer_get_length(in) == len
		&& memcmp(evbuffer_pullup(in, -1), text, len) == 0);
}

/* starttls - the server says 220 and both sides start TLS */
static void
starttls(struct end *srv, struct end *cli)
{
	stream_write(srv->st, "220 go\r\n", 8);
	assert_int_equal(tls_stream_start(srv->st, SSL_new(server_ctx),
					  STREAM_TLS_SERVER), 0);
	assert_true(stream_tls_active(srv->st));
	run_until(input_is(cli->st, "220 go\r\n"));
	stream_drain(cli->st, 8);
	assert_int_equal(tls_stream_start(cli->st, SSL_new(client_ctx),
					  STREAM_TLS_CLIENT), 0);
	run_until(srv->connected && cli->connected);
}

/* test_handshake - TLS in place; cleartext under it both ways */
static void
test_handshake(void **unused_state)
{
	struct end srv;
	struct end cli;
	char    desc[TLS_DESCRIBE_LEN];
	SSL    *extra;

	(void) unused_state;
	pair(&srv, &cli);
	assert_null(tls_stream_ssl(srv.st));
	starttls(&srv, &cli);
	assert_int_equal(srv.failed | cli.failed, 0);
	assert_non_null(tls_stream_ssl(srv.st));
	tls_describe(tls_stream_ssl(cli.st), desc, sizeof(desc));
	assert_non_null(strstr(desc, "TLSv1.3 with cipher TLS_"));
	assert_non_null(strstr(desc, " bits)"));

	stream_write(cli.st, "EHLO c\r\n", 8);
	run_until(input_is(srv.st, "EHLO c\r\n"));
	stream_write(srv.st, "250 ok\r\n", 8);
	run_until(input_is(cli.st, "250 ok\r\n"));
	/* Once is enough; the caller keeps an SSL the stream refused. */
	extra = SSL_new(server_ctx);
	assert_int_equal(tls_stream_start(srv.st, extra, STREAM_TLS_SERVER),
			 -1);
	SSL_free(extra);
	srv.st = stream_close(srv.st);
	cli.st = stream_close(cli.st);
}

/* test_injection - what was pipelined after STARTTLS is thrown away */
static void
test_injection(void **unused_state)
{
	struct end srv;
	struct end cli;

	(void) unused_state;
	pair(&srv, &cli);
	/* One write, as an attacker in the middle would send it. */
	stream_write(cli.st, "STARTTLS\r\nRSET\r\n", 16);
	run_until(input_is(srv.st, "STARTTLS\r\nRSET\r\n"));
	stream_drain(srv.st, 10);		/* the server took STARTTLS */
	starttls(&srv, &cli);
	assert_int_equal(evbuffer_get_length(stream_input(srv.st)), 0);
	stream_write(cli.st, "NOOP\r\n", 6);
	run_until(evbuffer_get_length(stream_input(srv.st)) >= 6);
	assert_true(input_is(srv.st, "NOOP\r\n"));
	srv.st = stream_close(srv.st);
	cli.st = stream_close(cli.st);
}

/* test_disabled_handshake - not reading does not stall the handshake */
static void
test_disabled_handshake(void **unused_state)
{
	struct end srv;
	struct end cli;
	int     reads;

	(void) unused_state;
	pair(&srv, &cli);
	stream_write(srv.st, "220 go\r\n", 8);
	assert_int_equal(tls_stream_start(srv.st, SSL_new(server_ctx),
					  STREAM_TLS_SERVER), 0);
	stream_disable(srv.st, STREAM_READ);
	run_until(input_is(cli.st, "220 go\r\n"));
	stream_drain(cli.st, 8);
	assert_int_equal(tls_stream_start(cli.st, SSL_new(client_ctx),
					  STREAM_TLS_CLIENT), 0);
	run_until(srv.connected && cli.connected);

	/* The wish to not read holds after the handshake. */
	reads = srv.reads;
	stream_write(cli.st, "DATA\r\n", 6);
	run_until(stream_pending(cli.st) == 0);
	run_until(cli.writes > 0);
	{
		struct timeval tick = {0, 100000};

		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	assert_int_equal(srv.reads, reads);
	stream_enable(srv.st, STREAM_READ);
	run_until(input_is(srv.st, "DATA\r\n"));
	srv.st = stream_close(srv.st);
	cli.st = stream_close(cli.st);
}

/* test_drain_then_close - write_fn waits for the socket's output too */
static void
test_drain_then_close(void **unused_state)
{
	struct end srv;
	struct end cli;
	size_t  total = 4 * 1024 * 1024;
	char   *big = malloc(total);

	(void) unused_state;
	assert_non_null(big);
	memset(big, 'x', total);
	pair(&srv, &cli);
	starttls(&srv, &cli);
	cli.consume = 1;
	/* The client reads slowly at first: the server's output backs up. */
	stream_disable(cli.st, STREAM_READ);
	srv.drained = 0;
	stream_write(srv.st, big, total);
	{
		struct timeval tick = {0, 100000};

		event_base_loopexit(base, &tick);
		event_base_dispatch(base);
	}
	assert_int_equal(srv.drained, 0);
	assert_true(stream_pending(srv.st) > 0);
	stream_enable(cli.st, STREAM_READ);
	run_until(srv.drained > 0);
	assert_int_equal(stream_pending(srv.st), 0);
	/* Close as smtpd does once all is out: the client gets it all. */
	srv.st = stream_close(srv.st);
	run_until(cli.failed != 0);
	assert_int_equal(cli.received, total);
	/* All data first, then end of file (libevent reports it first). */
	assert_int_equal(cli.received_at_eof, total);
	assert_true(cli.failed & STREAM_EV_EOF);
	assert_false(cli.failed & STREAM_EV_ERROR);
	cli.st = stream_close(cli.st);
	free(big);
}

/* test_reply_then_close - the last reply comes before end of file */
static void
test_reply_then_close(void **unused_state)
{
	struct end srv;
	struct end cli;

	(void) unused_state;
	char    fill[4000];
	size_t  len;

	pair(&srv, &cli);
	starttls(&srv, &cli);
	/* Input the client keeps: the next read lands in two chunks. */
	memset(fill, 'f', sizeof(fill));
	stream_write(srv.st, fill, sizeof(fill));
	run_until(evbuffer_get_length(stream_input(cli.st)) == sizeof(fill));
	/* 221 and close_notify reach the client in one read. */
	stream_write(srv.st, "221 2.0.0 Bye\r\n", 15);
	srv.st = stream_close(srv.st);
	run_until(cli.failed != 0);
	assert_true(cli.failed & STREAM_EV_EOF);
	len = evbuffer_get_length(stream_input(cli.st));
	assert_int_equal(len, sizeof(fill) + 15);
	assert_int_equal(cli.received_at_eof, sizeof(fill) + 15);
	cli.st = stream_close(cli.st);
}

/* test_garbage - not a handshake: an error with the reason */
static void
test_garbage(void **unused_state)
{
	struct end srv;
	int     sv[2];
	const char *why;

	(void) unused_state;
	memset(&srv, 0, sizeof(srv));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	srv.st = stream_accept(base, sv[0]);
	stream_setcb(srv.st, end_read, end_write, end_event, &srv);
	stream_enable(srv.st, STREAM_READ | STREAM_WRITE);
	assert_int_equal(tls_stream_start(srv.st, SSL_new(server_ctx),
					  STREAM_TLS_SERVER), 0);
	assert_int_equal(write(sv[1], "GET / HTTP/1.0\r\n\r\n", 18), 18);
	run_until(srv.failed != 0);
	assert_int_equal(srv.connected, 0);
	assert_true(srv.failed & STREAM_EV_ERROR);
	why = tls_stream_errors(srv.st);
	assert_true(strlen(why) > 0);
	srv.st = stream_close(srv.st);
	close(sv[1]);
}

/* test_protocols - Postfix protocol lists as OpenSSL bounds */
static void
test_protocols(void **unused_state)
{
	int     lo;
	int     hi;

	(void) unused_state;
	assert_int_equal(tls_protocols_parse(">=TLSv1.2", &lo, &hi), 0);
	assert_int_equal(lo, TLS1_2_VERSION);
	assert_int_equal(hi, 0);
	assert_int_equal(tls_protocols_parse("!SSLv2, !SSLv3, !TLSv1, "
					     "!TLSv1.1", &lo, &hi), 0);
	assert_int_equal(lo, TLS1_2_VERSION);
	assert_int_equal(hi, 0);
	assert_int_equal(tls_protocols_parse("TLSv1.2:TLSv1.3", &lo, &hi), 0);
	assert_int_equal(lo, TLS1_2_VERSION);
	assert_int_equal(hi, 0);
	assert_int_equal(tls_protocols_parse("TLSv1.2", &lo, &hi), 0);
	assert_int_equal(lo, TLS1_2_VERSION);
	assert_int_equal(hi, TLS1_2_VERSION);
	assert_int_equal(tls_protocols_parse(">=TLSv1.1 <=TLSv1.2", &lo, &hi),
			 0);
	assert_int_equal(lo, TLS1_1_VERSION);
	assert_int_equal(hi, TLS1_2_VERSION);
	assert_int_equal(tls_protocols_parse("", &lo, &hi), 0);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 0);
	assert_int_equal(tls_protocols_parse("TLSv1.4", &lo, &hi), -1);
	assert_int_equal(tls_protocols_parse("!TLSv1.2 !TLSv1.3 !TLSv1.1 "
					     "!TLSv1 !SSLv3", &lo, &hi), -1);
	assert_int_equal(tls_protocols_parse("SSLv2", &lo, &hi), -1);
}

int
main(void)
{
	const struct CMUnitTest tls_tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_disabled_handshake),
		cmocka_unit_test(test_drain_then_close),
		cmocka_unit_test(test_reply_then_close),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_protocols),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests_name("tls_stream", tls_tests, make_ctxs,
					    free_ctxs));
}
