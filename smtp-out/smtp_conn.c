/*
 * smtp_conn - outbound SMTP connections and the idle connection cache
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	struct smtp_sess *smtp_conn_open(struct smtp_req *req,
 *			const char *host, const struct dns_addr *addr,
 *			unsigned port)
 *	struct smtp_sess *smtp_conn_cache_take(const char *nexthop)
 *	void	smtp_conn_cache_put(struct smtp_sess *sess)
 *	void	smtp_conn_release(struct smtp_sess *sess, int need_rset)
 *	void	smtp_conn_quit(struct smtp_sess *sess)
 *	void	smtp_conn_timer(struct smtp_sess *sess, long seconds)
 *	void	smtp_conn_free(struct smtp_sess *sess)
 *	void	smtp_conn_shutdown(void)
 *	size_t	smtp_conn_count(void)
 *
 * DESCRIPTION
 *	smtp_conn_open() starts a non-blocking connection to one address
 *	for "req" (a lib/util/stream.c stream, with smtp_connect_timeout as its
 *	connect timeout); the protocol goes on in smtp_proto.c and uses
 *	only the stream's buffers, so that TLS can go in underneath. It
 *	returns the new session, or NULL when the connection cannot even
 *	be started (the reason is then in the request's soft failure).
 *
 *	A session whose transaction is over is handed back with
 *	smtp_conn_release(): it is closed with QUIT when it has served
 *	smtp_connection_reuse_count_limit transactions, when caching is
 *	off (smtp_connection_cache_time_limit = 0) or the process is
 *	stopping; otherwise it is put in the cache, after an RSET answered
 *	with 2xx when "need_rset" says that the transaction ended early.
 *	A cached session waits smtp_connection_cache_time_limit for
 *	smtp_conn_cache_take() with the same next hop, then says QUIT. A
 *	cached session that the server closes, or that gets unexpected
 *	input, is dropped.
 *
 *	smtp_conn_timer() (re)arms the session's one timer. smtp_conn_free()
 *	closes at once; smtp_conn_shutdown() closes every session.
 *	smtp_conn_count() is the number of open sessions.
 *
 * MEMORY
 *	A session belongs to its request while it has one, else to this
 *	module. The caller detaches a session from its request before
 *	releasing it.
 *
 * SEE ALSO
 *	smtp_proto.c
 */

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtp-out.h"

static struct smtp_sess *smtp_sessions_all;
static size_t smtp_nsessions;

/* smtp_conn_count - open sessions */
size_t
smtp_conn_count(void)
{
	return (smtp_nsessions);
}

/* smtp_conn_free - close and forget a session */
void
smtp_conn_free(struct smtp_sess *sess)
{
	if (sess == NULL)
		return;
	if (sess->req && sess->req->sess == sess)
		sess->req->sess = NULL;
	sess->stream = stream_close(sess->stream);
	if (sess->timer)
		event_free(sess->timer);
	smtp_reply_clear(&sess->reply);
	smtp_sasl_free(sess);
	smtp_tls_policy_free(&sess->tls);
	xfree(sess->tls_info);
	xfree(sess->tls_field);
	xfree(sess->auth_mechs);
	xfree(sess->dest);
	xfree(sess->dest_host);
	xfree(sess->key);
	xfree(sess->host);
	xfree(sess->relay);
	xfree(sess->peer);
	xfree(sess->tx);
	if (sess->prev)
		sess->prev->next = sess->next;
	else
		smtp_sessions_all = sess->next;
	if (sess->next)
		sess->next->prev = sess->prev;
	smtp_nsessions--;
	xfree(sess);
}

/* smtp_conn_shutdown - close everything */
void
smtp_conn_shutdown(void)
{
	while (smtp_sessions_all)
		smtp_conn_free(smtp_sessions_all);
}

/* smtp_conn_timer - arm the session timer */
void
smtp_conn_timer(struct smtp_sess *sess, long seconds)
{
	struct timeval tv;

	tv.tv_sec = seconds;
	tv.tv_usec = 0;
	evtimer_add(sess->timer, &tv);
}

/* smtp_conn_quit - say goodbye, then close */
void
smtp_conn_quit(struct smtp_sess *sess)
{
	sess->state = SMTP_ST_QUIT;
	stream_write(sess->stream, "QUIT\r\n", 6);
	smtp_conn_timer(sess, smtp_var.quit_timeout);
}

/* smtp_conn_cache_put - keep an idle session for the next request */
void
smtp_conn_cache_put(struct smtp_sess *sess)
{
	sess->state = SMTP_ST_IDLE;
	sess->reused = 0;
	smtp_conn_timer(sess, smtp_var.cache_time);
}

/* smtp_conn_cache_take - an idle session for this next hop and policy */
struct smtp_sess *
smtp_conn_cache_take(const char *key)
{
	struct smtp_sess *sess;

	for (sess = smtp_sessions_all; sess; sess = sess->next) {
		if (sess->state == SMTP_ST_IDLE && sess->req == NULL
		    && strcmp(sess->key, key) == 0) {
			evtimer_del(sess->timer);
			return (sess);
		}
	}
	return (NULL);
}

/* smtp_conn_release - the transaction is over: cache or close */
void
smtp_conn_release(struct smtp_sess *sess, int need_rset)
{
	if (sess->req && sess->req->sess == sess)
		sess->req->sess = NULL;
	sess->req = NULL;
	if (server_stopping() || smtp_var.cache_time <= 0
	    || sess->uses >= smtp_var.reuse_limit) {
		smtp_conn_quit(sess);
	} else if (need_rset) {
		sess->state = SMTP_ST_RSET;
		stream_write(sess->stream, "RSET\r\n", 6);
		smtp_conn_timer(sess, smtp_var.rset_timeout);
	} else {
		smtp_conn_cache_put(sess);
	}
}

/* smtp_conn_read_cb - replies */
static void
smtp_conn_read_cb(struct stream *unused_st, void *ctx)
{
	(void) unused_st;
	(void) smtp_proto_input(ctx);
}

/* smtp_conn_write_cb - output drained */
static void
smtp_conn_write_cb(struct stream *unused_st, void *ctx)
{
	(void) unused_st;
	smtp_proto_written(ctx);
}

/* smtp_conn_event_cb - connected, closed, error, connect timeout */
static void
smtp_conn_event_cb(struct stream *unused_st, int what, int err, void *ctx)
{
	(void) unused_st;
	if ((what & STREAM_EV_TIMEOUT) && (what & STREAM_EV_CONNECTING))
		smtp_proto_timeout(ctx);
	else
		smtp_proto_event(ctx, what, err);
}

/* smtp_conn_timer_cb - a stage took too long */
static void
smtp_conn_timer_cb(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	(void) unused_fd;
	(void) unused_what;
	smtp_proto_timeout(ctx);
}

/* smtp_conn_open - start a connection */
struct smtp_sess *
smtp_conn_open(struct smtp_req *req, const char *host,
	       const struct dns_addr *addr, unsigned port)
{
	struct smtp_sess *sess;
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
	const struct smtp_dest *d;
	struct strbuf *sb;
	socklen_t sslen;
	int     pol_ok;

	memset(&ss, 0, sizeof(ss));
	if (addr->family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short) port);
		sslen = sizeof(*sin6);
		if (inet_pton(AF_INET6, addr->addr, &sin6->sin6_addr) != 1)
			sslen = 0;
	} else {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((unsigned short) port);
		sslen = sizeof(*sin);
		if (inet_pton(AF_INET, addr->addr, &sin->sin_addr) != 1)
			sslen = 0;
	}
	sb = strbuf_new(256, 0);
	if (sslen == 0) {
		strbuf_printf(sb, "bad address %s for host %s", addr->addr,
			      host);
		smtp_fail_set(&req->temp, "4.4.1", NULL, sb->data);
		strbuf_free(sb);
		return (NULL);
	}

	sess = xcalloc(1, sizeof(*sess));
	smtp_reply_init(&sess->reply);
	sess->req = req;
	sess->host = xstrdup(host && *host ? host : addr->addr);
	snprintf(sess->addr, sizeof(sess->addr), "%s", addr->addr);
	sess->port = port;
	strbuf_printf(sb, "%s[%s]", sess->host, sess->addr);
	sess->peer = xstrdup(sb->data);
	strbuf_printf(sb, ":%u", port);
	sess->relay = xstrdup(sb->data);
	sess->state = SMTP_ST_CONNECT;
	if (req->dest_i > 0 && req->dest_i <= req->ndest) {
		d = &req->dests[req->dest_i - 1];
		sess->dest = xstrdup(d->text);
		sess->dest_host = xstrdup(d->host);
		sess->dest_mx = d->mx;
	} else {
		sess->dest = xstrdup(req->nexthop);
		sess->dest_host = xstrdup(sess->host);
	}
	/* This host's TLS policy; the cache key says what it requires. */
	sess->no_starttls = req->tls_plain_retry;
	req->tls_plain_retry = 0;
	strbuf_reset(sb);
	pol_ok = smtp_tls_policy_host(req, sess->host, &sess->tls, sb);
	sess->key = smtp_tls_cache_key(req->nexthop, &sess->tls);
	sess->next = smtp_sessions_all;
	if (smtp_sessions_all)
		smtp_sessions_all->prev = sess;
	smtp_sessions_all = sess;
	smtp_nsessions++;

	if (pol_ok < 0)
		goto fail;
	sess->timer = evtimer_new(server_base(), smtp_conn_timer_cb, sess);
	if (sess->timer == NULL) {
		strbuf_reset(sb);
		strbuf_printf(sb, "connect to %s: cannot make a timer",
			      sess->relay);
		goto fail;
	}
	sess->stream = stream_connect(server_base(), (struct sockaddr *) &ss,
				      sslen, smtp_var.connect_timeout);
	if (sess->stream == NULL) {
		strbuf_reset(sb);
		strbuf_printf(sb, "connect to %s: %s", sess->relay,
			      strerror(errno ? errno : ECONNREFUSED));
		goto fail;
	}
	stream_setcb(sess->stream, smtp_conn_read_cb, smtp_conn_write_cb,
		     smtp_conn_event_cb, sess);
	stream_set_write_lowat(sess->stream, SMTP_CONTENT_LOWAT);
	strbuf_free(sb);
	return (sess);

fail:
	smtp_fail_set(&req->temp, "4.4.1", NULL, sb->data);
	strbuf_free(sb);
	sess->req = NULL;
	smtp_conn_free(sess);
	return (NULL);
}
