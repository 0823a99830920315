/*
 * smtp_tls_source - an SMTP load generator that can use STARTTLS
 *
 * SYNOPSIS
 *	smtp_tls_source [-S] [-N] [-s sessions] [-m messages]
 *		[-C per_session] [-l size] [-r rcpts] [-f from] [-t to]
 *		[-M helo] [-T timeout] host:port
 *
 * DESCRIPTION
 *	What Postfix's smtp-source does, plus STARTTLS, which smtp-source
 *	lacks: the TLS row of make bench (tools/bench) and load tests over
 *	TLS use it. One process, one libevent loop, up to "sessions"
 *	connections at once, until "messages" messages (default 1) have
 *	been sent; each connection sends "per_session" messages (default
 *	1, as smtp-source's -C) and then QUIT. Commands go one at a time.
 *
 *	-S says STARTTLS after EHLO and EHLO again under TLS (TLS 1.2 or
 *	newer; the server's certificate is not verified: this measures,
 *	it does not trust). -l is the size of the message body in bytes
 *	(lines of 78 characters), -r the recipients per message, -f the
 *	sender, -t the recipient; -N puts a sequence number in front of
 *	the recipient's local part (as smtp-source's -N), -M is the EHLO
 *	name, -T the idle timeout in seconds (default 60).
 *
 *	Every reply other than the expected 2xx or 3xx ends the run: the
 *	reply is printed and the exit status is 1. Exit status 0 means
 *	every message got its 250 after DATA. On exit it prints one line:
 *	"messages=N sessions=N tls=N seconds=S".
 */

#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "stream.h"
#include "strbuf.h"
#include "tls.h"
#include "xmalloc.h"

enum src_state {
	ST_CONNECT, ST_GREET, ST_EHLO, ST_STARTTLS, ST_HANDSHAKE, ST_EHLO2,
	ST_MAIL, ST_RCPT, ST_DATA, ST_DOT, ST_QUIT,
};

struct src_sess {
	struct stream *st;
	enum src_state state;
	int     rcpts_left;
	int     msgs_left;		/* in this connection */
	struct strbuf *reply;		/* lines of the current reply */
};

static struct event_base *base;
static SSL_CTX *ctx;
static struct sockaddr_in addr;
static int opt_tls;
static int opt_number;
static long opt_sessions = 1;
static long opt_messages = 1;
static long opt_per_session = 1;
static long opt_size = 1024;
static long opt_rcpts = 1;
static long opt_timeout = 60;
static const char *opt_from = "from@client.example";
static const char *opt_to = "to@server.example";
static const char *opt_helo = "client.example";
static long to_start;			/* messages not yet begun */
static long sent;			/* messages with a 250 after DATA */
static long running;			/* connections open */
static long sessions_done;
static long tls_done;
static long rcpt_seq;
static int failed;
static struct evbuffer *body;		/* the message, dot-terminated */

static void src_start(void);

/* src_fail - say what went wrong and stop */
static void
src_fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "smtp_tls_source: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	failed = 1;
	event_base_loopbreak(base);
}

/* src_close - end a connection; start the next one */
static void
src_close(struct src_sess *s)
{
	s->st = stream_close(s->st);
	strbuf_free(s->reply);
	xfree(s);
	running--;
	sessions_done++;
	if (failed)
		return;
	if (to_start > 0)
		src_start();
	else if (running == 0)
		event_base_loopbreak(base);
}

/* src_send - one command line */
static void
src_send(struct src_sess *s, enum src_state next, const char *fmt,
	 const char *arg)
{
	evbuffer_add_printf(stream_output(s->st), fmt, arg);
	evbuffer_add(stream_output(s->st), "\r\n", 2);
	s->state = next;
}

/* src_mail - begin the next message */
static void
src_mail(struct src_sess *s)
{
	s->msgs_left--;
	s->rcpts_left = (int) opt_rcpts;
	src_send(s, ST_MAIL, "MAIL FROM:<%s>", opt_from);
}

/* src_rcpt - the next recipient */
static void
src_rcpt(struct src_sess *s)
{
	char    to[512];

	s->rcpts_left--;
	if (opt_number)
		snprintf(to, sizeof(to), "%ld%s", ++rcpt_seq, opt_to);
	else
		snprintf(to, sizeof(to), "%s", opt_to);
	src_send(s, ST_RCPT, "RCPT TO:<%s>", to);
}

/* src_reply - act on one complete reply */
static void
src_reply(struct src_sess *s, int code)
{
	SSL    *ssl;

	switch (s->state) {
	case ST_GREET:
		if (code != 220)
			break;
		src_send(s, ST_EHLO, "EHLO %s", opt_helo);
		return;
	case ST_EHLO:
	case ST_EHLO2:
		if (code != 250)
			break;
		if (s->state == ST_EHLO && opt_tls) {
			src_send(s, ST_STARTTLS, "STARTTLS%s", "");
			return;
		}
		src_mail(s);
		return;
	case ST_STARTTLS:
		if (code != 220 || (ssl = SSL_new(ctx)) == NULL)
			break;
		s->state = ST_HANDSHAKE;
		if (tls_stream_start(s->st, ssl, STREAM_TLS_CLIENT) < 0) {
			src_fail("cannot start TLS: %s", strerror(errno));
			return;
		}
		return;
	case ST_MAIL:
		if (code != 250)
			break;
		src_rcpt(s);
		return;
	case ST_RCPT:
		if (code != 250)
			break;
		if (s->rcpts_left > 0)
			src_rcpt(s);
		else
			src_send(s, ST_DATA, "DATA%s", "");
		return;
	case ST_DATA:
		if (code != 354)
			break;
		evbuffer_add(stream_output(s->st), evbuffer_pullup(body, -1),
			     evbuffer_get_length(body));
		s->state = ST_DOT;
		return;
	case ST_DOT:
		if (code != 250)
			break;
		sent++;
		if (s->msgs_left > 0)
			src_mail(s);
		else
			src_send(s, ST_QUIT, "QUIT%s", "");
		return;
	case ST_QUIT:
		src_close(s);
		return;
	default:
		break;
	}
	src_fail("unexpected reply: %s", STRBUF_STR(s->reply));
}

/* src_read - replies arrived */
static void
src_read(struct stream *st, void *arg)
{
	struct src_sess *s = arg;
	struct evbuffer *in = stream_input(st);
	char   *line;
	size_t  len;

	while (!failed && s->st != NULL
	       && (line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF))) {
		strbuf_append(s->reply, line, len);
		strbuf_append(s->reply, "\n", 1);
		if (len >= 4 && line[3] == '-') {
			free(line);
			continue;
		}
		if (len < 3) {
			free(line);
			src_fail("bad reply: %s", STRBUF_STR(s->reply));
			return;
		}
		{
			int     code = atoi(line);
			enum src_state was = s->state;

			free(line);
			src_reply(s, code);
			if (was == ST_QUIT || was == ST_STARTTLS)
				return;		/* closed, or input is gone */
			strbuf_reset(s->reply);
		}
	}
}

/* src_event - connected, handshake done, or trouble */
static void
src_event(struct stream *unused_st, int what, int err, void *arg)
{
	struct src_sess *s = arg;

	(void) unused_st;
	if ((what & STREAM_EV_CONNECTED) && s->state == ST_CONNECT) {
		s->state = ST_GREET;
		return;
	}
	if ((what & STREAM_EV_CONNECTED) && s->state == ST_HANDSHAKE) {
		tls_done++;
		strbuf_reset(s->reply);
		src_send(s, ST_EHLO2, "EHLO %s", opt_helo);
		return;
	}
	if (s->state == ST_HANDSHAKE)
		src_fail("TLS handshake failed: %s",
			 tls_stream_errors(s->st));
	else if (what & STREAM_EV_EOF)
		src_fail("connection closed by the server, after: %s",
			 STRBUF_LEN(s->reply) ? STRBUF_STR(s->reply)
			 : "(no reply)");
	else if (what & STREAM_EV_TIMEOUT)
		src_fail("timeout%s", "");
	else
		src_fail("connection error: %s", strerror(err ? err
							  : ECONNREFUSED));
}

/* src_start - open one more connection */
static void
src_start(void)
{
	struct src_sess *s = xcalloc(1, sizeof(*s));

	s->state = ST_CONNECT;
	/* Each connection takes its messages from the total at once. */
	s->msgs_left = (int) (to_start < opt_per_session ? to_start
			      : opt_per_session);
	to_start -= s->msgs_left;
	s->reply = strbuf_new(256, 0);
	s->st = stream_connect(base, (struct sockaddr *) &addr, sizeof(addr),
			       opt_timeout);
	if (s->st == NULL) {
		strbuf_free(s->reply);
		xfree(s);
		src_fail("cannot connect: %s", strerror(errno));
		return;
	}
	stream_setcb(s->st, src_read, NULL, src_event, s);
	stream_timeouts(s->st, opt_timeout, opt_timeout);
	running++;
}

/* src_body - the content: headers, "size" bytes of body, the dot */
static void
src_body(void)
{
	long    left = opt_size;
	long    n;
	char    line[80];

	body = evbuffer_new();
	evbuffer_add_printf(body, "From: <%s>\r\nTo: <%s>\r\nSubject: "
			    "load test\r\n\r\n", opt_from, opt_to);
	memset(line, 'x', 78);
	while (left > 0) {
		n = left > 80 ? 78 : (left > 2 ? left - 2 : 1);
		evbuffer_add(body, line, (size_t) n);
		evbuffer_add(body, "\r\n", 2);
		left -= n + 2;
	}
	evbuffer_add(body, ".\r\n", 3);
}

/* usage - the synopsis */
static void
usage(void)
{
	fprintf(stderr, "usage: smtp_tls_source [-S] [-N] [-s sessions] "
		"[-m messages] [-C per_session]\n\t[-l size] [-r rcpts] "
		"[-f from] [-t to] [-M helo] [-T timeout] host:port\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct timeval t0;
	struct timeval t1;
	char   *colon;
	long    i;
	int     ch;

	while ((ch = getopt(argc, argv, "SNs:m:C:l:r:f:t:M:T:")) != -1) {
		switch (ch) {
		case 'S':
			opt_tls = 1;
			break;
		case 'N':
			opt_number = 1;
			break;
		case 's':
			opt_sessions = atol(optarg);
			break;
		case 'm':
			opt_messages = atol(optarg);
			break;
		case 'C':
			opt_per_session = atol(optarg);
			break;
		case 'l':
			opt_size = atol(optarg);
			break;
		case 'r':
			opt_rcpts = atol(optarg);
			break;
		case 'f':
			opt_from = optarg;
			break;
		case 't':
			opt_to = optarg;
			break;
		case 'M':
			opt_helo = optarg;
			break;
		case 'T':
			opt_timeout = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || opt_sessions < 1 || opt_messages < 1
	    || opt_per_session < 1 || opt_rcpts < 1 || opt_size < 0
	    || (colon = strrchr(argv[optind], ':')) == NULL)
		usage();
	*colon = 0;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((unsigned short) atoi(colon + 1));
	if (inet_pton(AF_INET, argv[optind], &addr.sin_addr) != 1)
		usage();

	signal(SIGPIPE, SIG_IGN);
	tls_init();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		fprintf(stderr, "smtp_tls_source: %s\n", tls_errors());
		return (2);
	}
	tls_ctx_common(ctx);
	(void) tls_ctx_set_protocols(ctx, ">=TLSv1.2");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	src_body();
	base = event_base_new();
	to_start = opt_messages;
	gettimeofday(&t0, NULL);
	for (i = 0; i < opt_sessions && i < opt_messages; i++)
		src_start();
	if (!failed)
		event_base_dispatch(base);
	gettimeofday(&t1, NULL);
	printf("messages=%ld sessions=%ld tls=%ld seconds=%.3f\n", sent,
	       sessions_done, tls_done, (double) (t1.tv_sec - t0.tv_sec)
	       + (t1.tv_usec - t0.tv_usec) / 1e6);
	return (failed || sent < opt_messages);
}
