/*
 * smtpd_session - one SMTP session: input, commands, replies
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	void	smtpd_session_accept(int fd, const struct sockaddr *sa,
 *			socklen_t salen)
 *	size_t	smtpd_session_count(void)
 *	void	smtpd_session_shutdown(void)
 *	void	smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
 *	void	smtpd_session_resume(struct smtpd_session *s)
 *	void	smtpd_session_reset(struct smtpd_session *s)
 *	void	smtpd_session_reject_log(struct smtpd_session *s,
 *			const char *cmd, const char *reply, const char *rcpt)
 *	const char *smtpd_protocol(const struct smtpd_session *s)
 *
 * DESCRIPTION
 *	smtpd_session_accept() takes a new client connection: it checks
 *	the session limit, looks up the client's name (smtpd_peername_lookup:
 *	PTR, then forward confirmation through lib/util/dns.c, asynchronously;
 *	"unknown" unless the name resolves back to the address), then
 *	checks the per-client limit, sends the greeting and reads
 *	commands from then on. A client on a unix socket (a master.cf
 *	"unix" smtpd) has no IP address: it is shown as localhost[unix],
 *	is trusted to relay like a sendmail(1) user instead of being
 *	matched against mynetworks, and has no per-client limit. Each session is one struct smtpd_session,
 *	allocated here and freed by smtpd_session_free(), which also closes
 *	the client and any cleanup connection.
 *
 *	The client connection is a lib/util/stream.c stream: this file reads
 *	and writes only its buffers, so that TLS goes in underneath
 *	(STARTTLS, wrappermode: smtpd_tls.c). While the handshake runs
 *	(SMTPD_ST_TLS) no input is processed; its end comes to the event
 *	callback. A wrappermode client over smtpd_max_sessions or
 *	smtpd_client_connection_count_limit gets its 421 after the
 *	handshake (tls_refuse), as in Postfix, since it cannot read a
 *	reply in the clear.
 *
 *	Input is processed in order from the buffered bytes (RFC 2920
 *	pipelining): commands, then DATA content or BDAT chunks once they
 *	are accepted. Replies go to a buffer that is flushed when no
 *	complete command is left, when the session waits for cleanup, or
 *	when it ends. An idle session holds no buffer of its own: the reply
 *	buffer, the command line, the DATA/BDAT state and the timers are
 *	made when needed and the buffers freed again (docs/decisions.md).
 *
 *	smtpd_reply() adds one reply line (CRLF added); a 4xx or 5xx reply
 *	counts as an error. After smtpd_soft_error_limit errors each
 *	further error reply is held back one second (a timer; the process
 *	never sleeps); at smtpd_hard_error_limit the session ends with 421.
 *
 *	smtpd_session_resume() continues input processing after a wait
 *	(cleanup answered, backpressure relieved).
 *
 *	smtpd_session_reset() forgets the mail transaction and frees its
 *	content buffer: an idle session holds none.
 *
 *	smtpd_session_shutdown() says 421 to every session and frees them
 *	all (SIGTERM); the 421 goes out with one non-blocking write
 *	(stream_flush()), as the loop will not run for them again.
 *
 * DIAGNOSTICS
 *	"connect from", "disconnect from" with command counts, one
 *	"NOQUEUE: reject:" line per rejected command, timeouts, lost
 *	connections. Bad input never ends the process.
 *
 * SEE ALSO
 *	smtpd(8), RFC 5321, RFC 2920
 */

#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "dns.h"
#include "dsn.h"
#include "log.h"
#include "map.h"
#include "server.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "strbuf.h"
#include "strhash.h"
#include "stream.h"
#include "tls_server.h"
#include "xmalloc.h"

#include "smtpd.h"

static struct smtpd_session *smtpd_sessions;	/* all open sessions */
static size_t smtpd_nsessions;

static const char *const smtpd_cmd_names[SMTPD_CMD_COUNT] = {
	"ehlo", "helo", "starttls", "auth", "mail", "rcpt", "bdat", "data",
	"rset", "noop", "quit", "vrfy", "expn", "help", "unknown",
};

static void smtpd_session_free(struct smtpd_session *);
static void smtpd_session_run(struct smtpd_session *);
static int smtpd_session_waits(const struct smtpd_session *);
static void smtpd_session_close(struct smtpd_session *);
static void smtpd_session_greet(struct smtpd_session *);
static void smtpd_session_name_cb(struct dns_result *, void *);

/*
 * Open sessions per client address, for the connection count limit:
 * a lookup per connection instead of a walk over every session (10,000
 * string compares a connection at 10,000 sessions).
 */
struct smtpd_addr_count {
	struct smtpd_addr_count *next;
	unsigned long count;
	char    addr[];
};
static struct smtpd_addr_count **smtpd_addr_tab;
static size_t smtpd_addr_size;		/* buckets, a power of 2 */
static size_t smtpd_addr_used;		/* addresses */

/* smtpd_addr_slot - where the address is, or belongs */
static struct smtpd_addr_count **
smtpd_addr_slot(const char *addr)
{
	struct smtpd_addr_count **pp;

	pp = &smtpd_addr_tab[strhash(addr) & (smtpd_addr_size - 1)];
	while (*pp && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	return (pp);
}

/* smtpd_addr_grow - twice the buckets */
static void
smtpd_addr_grow(void)
{
	struct smtpd_addr_count **old = smtpd_addr_tab;
	struct smtpd_addr_count *e;
	struct smtpd_addr_count *next;
	size_t  n = smtpd_addr_size;
	size_t  i;

	smtpd_addr_size = n ? 2 * n : 256;
	smtpd_addr_tab = xcalloc(smtpd_addr_size, sizeof(*smtpd_addr_tab));
	for (i = 0; i < n; i++)
		for (e = old[i]; e; e = next) {
			next = e->next;
			e->next = NULL;
			*smtpd_addr_slot(e->addr) = e;
		}
	xfree(old);
}

/* smtpd_addr_count_add - one more session from addr; how many before */
static unsigned long
smtpd_addr_count_add(const char *addr)
{
	struct smtpd_addr_count **pp;
	struct smtpd_addr_count *e;
	size_t  len;

	if (smtpd_addr_used >= smtpd_addr_size)
		smtpd_addr_grow();
	pp = smtpd_addr_slot(addr);
	if ((e = *pp) == NULL) {
		len = strlen(addr) + 1;
		e = xmalloc(sizeof(*e) + len);
		e->next = NULL;
		e->count = 0;
		memcpy(e->addr, addr, len);
		*pp = e;
		smtpd_addr_used++;
	}
	return (e->count++);
}

/* smtpd_session_uncount - the session no longer counts for its address */
static void
smtpd_session_uncount(struct smtpd_session *s)
{
	struct smtpd_addr_count **pp;
	struct smtpd_addr_count *e;

	if (!s->counted)
		return;
	s->counted = 0;
	pp = smtpd_addr_slot(s->addr);
	if ((e = *pp) == NULL)
		log_fatal("connection count of %s lost", s->addr);
	if (--e->count == 0) {
		*pp = e->next;
		xfree(e);
		smtpd_addr_used--;
	}
}

/* Unverified client names: shared, not copied for every session. */
static char smtpd_name_unknown[] = "unknown";
static char smtpd_name_local[] = SMTPD_LOCAL_NAME;

/* smtpd_session_name_free - forget a verified client name */
static void
smtpd_session_name_free(struct smtpd_session *s)
{
	if (s->name != smtpd_name_unknown && s->name != smtpd_name_local)
		xfree(s->name);
	s->name = NULL;
}

/* smtpd_protocol - the protocol name for Received: and the logs */
const char *
smtpd_protocol(const struct smtpd_session *s)
{
	/* RFC 3848: "S" for a session under TLS, "A" once authenticated. */
	static const char *const names[4] = {
		"ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA",
	};

	if (!s->esmtp)
		return (s->tls_info ? "SMTPS" : "SMTP");
	return (names[(s->tls_info ? 2 : 0)
		      + (smtpd_sasl_username(s) ? 1 : 0)]);
}

/* smtpd_session_count - open sessions in this process */
size_t
smtpd_session_count(void)
{
	return (smtpd_nsessions);
}

/* smtpd_reply - queue one reply line */
void
smtpd_reply(struct smtpd_session *s, const char *fmt,...)
{
	char    buf[1024];
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;		/* XXX long reply cut short */
	buf[n++] = '\r';
	buf[n++] = '\n';
	/* Made here, freed once sent: an idle session holds none. */
	if (s->reply == NULL)
		s->reply = evbuffer_new();
	evbuffer_add(s->reply, buf, n);
	if (buf[0] == '4' || buf[0] == '5')
		s->errors++;
	if (log_verbose)
		log_debug("> %s[%s]: %.*s", s->name, s->addr, n - 2, buf);
}

/*
 * smtpd_session_push - write replies now; the loop's write event only
 * for what the socket does not take at once. Without it every reply
 * cost an epoll_ctl to watch for EPOLLOUT, a loop turn, and another
 * epoll_ctl to stop watching. stream_flush() also moves what a TLS
 * layer holds; whatever is left anywhere goes out through the loop.
 */
static void
smtpd_session_push(struct smtpd_session *s)
{
	if (stream_flush(s->stream) != 0 || stream_pending(s->stream) > 0)
		stream_enable(s->stream, STREAM_WRITE);
}

/* smtpd_session_flush - send the queued replies */
static void
smtpd_session_flush(struct smtpd_session *s)
{
	if (s->reply == NULL)
		return;
	if (s->stream && evbuffer_get_length(s->reply) > 0) {
		stream_write_buffer(s->stream, s->reply);
		smtpd_session_push(s);
	}
	if (evbuffer_get_length(s->reply) == 0) {
		evbuffer_free(s->reply);
		s->reply = NULL;
	}
}

/* smtpd_session_reject_log - one "reject:" line in the Postfix shape */
void
smtpd_session_reject_log(struct smtpd_session *s, const char *cmd,
			 const char *reply, const char *rcpt)
{
	struct strbuf *sb = strbuf_new(256, 0);

	strbuf_printf(sb, "%s: reject: %s from %s[%s]: %s;",
		      s->queue_id[0] ? s->queue_id : "NOQUEUE",
		      cmd, s->name, s->addr, reply);
	if (s->sender)
		strbuf_printf(sb, " from=<%s>", s->sender);
	if (rcpt)
		strbuf_printf(sb, " to=<%s>", rcpt);
	strbuf_printf(sb, " proto=%s", smtpd_protocol(s));
	if (s->helo)
		strbuf_printf(sb, " helo=<%s>", s->helo);
	log_info("%s", sb->data);
	strbuf_free(sb);
}

/* smtpd_session_msg_free - drop the content state */
static void
smtpd_session_msg_free(struct smtpd_session *s)
{
	if (s->msg == NULL)
		return;
	strbuf_free(s->msg->chunk);
	xfree(s->msg->bdat_reply);
	s->msg = xfree(s->msg);
}

/* smtpd_session_reset - forget the mail transaction */
void
smtpd_session_reset(struct smtpd_session *s)
{
	size_t  i;

	smtpd_cleanup_close(s);
	s->sender = xfree(s->sender);
	for (i = 0; i < s->nrcpt; i++) {
		xfree(s->rcpts[i]);
		s->rcpt_notify[i] = xfree(s->rcpt_notify[i]);
		s->rcpt_orcpt[i] = xfree(s->rcpt_orcpt[i]);
	}
	s->nrcpt = 0;
	s->rcpt_tried = 0;
	s->dsn_ret = DSN_RET_NONE;
	s->dsn_envid = xfree(s->dsn_envid);
	s->declared_size = -1;
	s->body_8bit = 0;
	s->smtputf8 = 0;
	s->bdat_used = 0;
	s->cleanup_failed = 0;
	s->cleanup_reason = xfree(s->cleanup_reason);
	s->queue_id[0] = 0;
	smtpd_check_reset(s);
	/* An idle session holds no content buffer (DESIGN.md). */
	if (s->msg) {
		s->msg->data_mode = 0;
		s->msg->content_size = 0;
		s->msg->too_big = 0;
		s->msg->bare = 0;
		s->msg->bdat_reply = xfree(s->msg->bdat_reply);
		s->msg->chunk = strbuf_free(s->msg->chunk);
	}
}

/* smtpd_session_free_cb - free a session from the loop */
static void
smtpd_session_free_cb(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	(void) unused_fd;
	(void) unused_what;
	smtpd_session_free(ctx);
}

/* smtpd_session_free_later - end the session at the next loop turn */
static void
smtpd_session_free_later(struct smtpd_session *s)
{
	struct timeval tv = {0, 0};

	if (s->stream)
		stream_disable(s->stream, STREAM_READ | STREAM_WRITE);
	s->state = SMTPD_ST_CLOSING;
	smtpd_session_uncount(s);
	if (s->delayed) {
		event_del(s->delay_ev);
		s->delayed = 0;
	}
	if (s->free_ev == NULL)
		s->free_ev = evtimer_new(server_base(), smtpd_session_free_cb,
					 s);
	evtimer_add(s->free_ev, &tv);
}

/* smtpd_session_log_disconnect - the "disconnect from" line */
static void
smtpd_session_log_disconnect(struct smtpd_session *s)
{
	struct strbuf *sb;
	unsigned ok = 0;
	unsigned total = 0;
	int     i;

	if (s->closing_logged)
		return;
	s->closing_logged = 1;
	sb = strbuf_new(256, 0);
	strbuf_printf(sb, "disconnect from %s[%s]", s->name, s->addr);
	for (i = 0; i < SMTPD_CMD_COUNT; i++) {
		if (s->cmd_total[i] == 0)
			continue;
		ok += s->cmd_ok[i];
		total += s->cmd_total[i];
		if (s->cmd_ok[i] == s->cmd_total[i])
			strbuf_printf(sb, " %s=%u", smtpd_cmd_names[i],
				      s->cmd_ok[i]);
		else
			strbuf_printf(sb, " %s=%u/%u", smtpd_cmd_names[i],
				      s->cmd_ok[i], s->cmd_total[i]);
	}
	if (ok == total)
		strbuf_printf(sb, " commands=%u", ok);
	else
		strbuf_printf(sb, " commands=%u/%u", ok, total);
	log_info("%s", sb->data);
	strbuf_free(sb);
}

/* smtpd_session_free - the one place a session ends */
static void
smtpd_session_free(struct smtpd_session *s)
{
	size_t  i;

	smtpd_session_log_disconnect(s);
	smtpd_session_uncount(s);
	smtpd_cleanup_close(s);
	smtpd_check_free(s);
	smtpd_sasl_free(s);
	dns_cancel(s->dns);
	if (s->prev)
		s->prev->next = s->next;
	else
		smtpd_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	smtpd_nsessions--;
	s->stream = stream_close(s->stream);
	if (s->reply)
		evbuffer_free(s->reply);
	if (s->delay_ev)
		event_free(s->delay_ev);
	if (s->free_ev)
		event_free(s->free_ev);
	strbuf_free(s->line);
	smtpd_session_msg_free(s);
	smtpd_session_name_free(s);
	xfree(s->helo);
	xfree(s->tls_info);
	tls_server_peer_free(s->ccert);
	xfree(s->sender);
	for (i = 0; i < s->nrcpt; i++) {
		xfree(s->rcpts[i]);
		xfree(s->rcpt_notify[i]);
		xfree(s->rcpt_orcpt[i]);
	}
	xfree(s->rcpts);
	xfree(s->rcpt_notify);
	xfree(s->rcpt_orcpt);
	xfree(s->dsn_envid);
	xfree(s->cleanup_reason);
	xfree(s->pend_rcpt);
	xfree(s->pend_notify);
	xfree(s->pend_orcpt);
	xfree(s);
	server_session_done();
}

/* smtpd_session_close - send what is queued, then end the session */
static void
smtpd_session_close(struct smtpd_session *s)
{
	if (s->state == SMTPD_ST_CLOSING)
		return;
	s->state = SMTPD_ST_CLOSING;
	smtpd_session_uncount(s);
	smtpd_cleanup_close(s);
	if (s->delayed) {
		event_del(s->delay_ev);
		s->delayed = 0;
	}
	smtpd_session_flush(s);
	stream_disable(s->stream, STREAM_READ);
	if (stream_pending(s->stream) == 0)
		smtpd_session_free_later(s);
	/* else smtpd_session_write_cb() frees it once the reply is out. */
}

/* smtpd_session_write_cb - output drained */
static void
smtpd_session_write_cb(struct stream *st, void *ctx)
{
	struct smtpd_session *s = ctx;

	if (s->state == SMTPD_ST_CLOSING) {
		if (stream_pending(st) == 0)
			smtpd_session_free_later(s);
		return;
	}
	/* All out: the next reply is written at once again. */
	if (stream_pending(st) == 0)
		stream_disable(st, STREAM_WRITE);
	if (s->out_blocked) {
		s->out_blocked = 0;
		smtpd_session_run(s);
	}
}

/* smtpd_session_lost - log a connection lost mid-conversation */
static void
smtpd_session_lost(struct smtpd_session *s)
{
	if (s->state != SMTPD_ST_CMD || s->sender != NULL)
		log_info("lost connection after %s from %s[%s]",
			 s->state == SMTPD_ST_DATA ? "DATA" :
			 s->state == SMTPD_ST_BDAT ? "BDAT" :
			 s->state == SMTPD_ST_CMD ? "MAIL" : "END-OF-MESSAGE",
			 s->name, s->addr);
	smtpd_cleanup_close(s);
}

/* smtpd_session_refuse - the 421 of a refused session, then the end */
static void
smtpd_session_refuse(struct smtpd_session *s)
{
	switch (s->tls_refuse) {
	case SMTPD_REFUSE_CONN:
		smtpd_reply(s, "421 4.7.0 %s Error: too many connections "
			    "from your address", smtpd_var.myhostname);
		break;
	case SMTPD_REFUSE_BUSY:
		smtpd_reply(s, "421 4.3.2 %s Service busy, try again later",
			    smtpd_var.myhostname);
		break;
	default:
		break;				/* the reply is queued already */
	}
	smtpd_session_close(s);
}

/* smtpd_session_refuse_tls - wrappermode: the 421 once TLS is up */
static void
smtpd_session_refuse_tls(struct smtpd_session *s, int why)
{
	/*
	 * As Postfix does: the handshake first, so that the client (which
	 * speaks TLS from the first byte) can read why.
	 */
	s->tls_refuse = why;
	if (smtpd_tls_start(s) < 0) {
		smtpd_session_free_later(s);
		return;
	}
	stream_enable(s->stream, STREAM_READ);
}

/* smtpd_session_event_cb - end of file, error, timeout */
static void
smtpd_session_event_cb(struct stream *unused_st, int what, int err,
		       void *ctx)
{
	struct smtpd_session *s = ctx;

	(void) unused_st;
	if (s->state == SMTPD_ST_CLOSING) {
		smtpd_session_free_later(s);
		return;
	}
	if (s->state == SMTPD_ST_TLS) {
		/* The handshake is over, one way or the other. */
		switch (smtpd_tls_event(s, what, err)) {
		case -1:
			smtpd_session_free_later(s);
			break;
		case 1:
			smtpd_session_refuse(s);
			break;
		default:
			smtpd_session_run(s);
			break;
		}
		return;
	}
	if (what & STREAM_EV_TIMEOUT) {
		log_info("timeout after %s from %s[%s]",
			 s->state == SMTPD_ST_DATA ? "DATA" :
			 s->state == SMTPD_ST_BDAT ? "BDAT" : "command",
			 s->name, s->addr);
		/*
		 * Reading stays on during a wait (smtpd_session_run()): a
		 * silent client then is waiting for us. The event is off
		 * now, and the end of the wait turns it on again.
		 */
		if ((what & STREAM_EV_READING) && smtpd_session_waits(s))
			return;
		if (what & STREAM_EV_READING) {
			smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded",
				    smtpd_var.myhostname);
			smtpd_session_close(s);
			return;
		}
		smtpd_session_free_later(s);
		return;
	}
	if (what & STREAM_EV_ERROR) {
		smtpd_session_lost(s);
		smtpd_session_free_later(s);
		return;
	}
	if (what & STREAM_EV_EOF) {
		/* Finish what was sent before the end (pipelining). */
		s->eof = 1;
		smtpd_session_run(s);
	}
}

/* smtpd_session_read_cb - bytes from the client */
static void
smtpd_session_read_cb(struct stream *unused_st, void *ctx)
{
	(void) unused_st;
	smtpd_session_run(ctx);
}

/* smtpd_session_delay_cb - the soft error pause is over */
static void
smtpd_session_delay_cb(evutil_socket_t unused_fd, short unused_what,
		       void *ctx)
{
	struct smtpd_session *s = ctx;

	(void) unused_fd;
	(void) unused_what;
	s->delayed = 0;
	smtpd_session_flush(s);
	smtpd_session_run(s);
}

/* smtpd_session_resume - carry on after a wait */
void
smtpd_session_resume(struct smtpd_session *s)
{
	smtpd_session_run(s);
}

/* smtpd_session_getline - take one command line; 1, 0 (need more) */
static int
smtpd_session_getline(struct smtpd_session *s, int *too_long)
{
	struct evbuffer *in = stream_input(s->stream);
	struct evbuffer_ptr eol;
	size_t  limit = smtpd_sasl_line_limit(s);
	size_t  len;

	*too_long = 0;
	eol = evbuffer_search_eol(in, NULL, &len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		len = evbuffer_get_length(in);
		if (len > limit) {
			/* Keep the peer in step: skip to the next LF. */
			evbuffer_drain(in, len);
			s->skip_line = 1;
		}
		return (0);
	}
	if (s->skip_line || (size_t) eol.pos > limit) {
		evbuffer_drain(in, eol.pos + 1);
		s->skip_line = 0;
		*too_long = 1;
		return (1);
	}
	if (s->line == NULL)
		s->line = strbuf_new(256, 0);
	strbuf_reset(s->line);
	strbuf_reserve(s->line, eol.pos + 1);
	evbuffer_remove(in, s->line->data, eol.pos);
	s->line->len = eol.pos;
	s->line->data[eol.pos] = 0;
	evbuffer_drain(in, 1);
	if (s->line->len > 0 && s->line->data[s->line->len - 1] == '\r')
		strbuf_truncate(s->line, s->line->len - 1);
	s->line_seen = s->line->len > 0;
	return (1);
}

static void smtpd_session_ehlo(struct smtpd_session *);

/* smtpd_helo_cmd - HELO and EHLO */
static int
smtpd_helo_cmd(struct smtpd_session *s, const char *arg, int esmtp)
{
	switch (smtp_cmd_helo(arg)) {
	case SMTP_CMD_HELO_EMPTY:
		smtpd_reply(s, "501 5.5.4 Syntax: %s hostname",
			    esmtp ? "EHLO" : "HELO");
		return (-1);
	case SMTP_CMD_HELO_BAD:
		smtpd_reply(s, "501 5.5.2 Syntax: %s hostname",
			    esmtp ? "EHLO" : "HELO");
		return (-1);
	}
	smtpd_session_reset(s);
	xfree(s->helo);
	s->helo = xstrdup(arg);
	s->esmtp = esmtp;
	if (!esmtp) {
		smtpd_reply(s, "250 %s", smtpd_var.myhostname);
		return (0);
	}
	smtpd_session_ehlo(s);
	return (0);
}

/* smtpd_mail_cmd - MAIL FROM:<path> [params] */
static int
smtpd_mail_cmd(struct smtpd_session *s, const char *arg)
{
	const char *rest;
	const char *err;
	char   *addr;
	char   *params;
	char   *param;
	char   *cursor;
	char   *value;
	long long size = -1;
	int     body_8bit = 0;
	int     body_seen = 0;
	int     utf8 = 0;
	int     dsn_ret = DSN_RET_NONE;
	char   *envid = NULL;
	int     flags;
	int     ret;

	/*
	 * SMTPUTF8 changes what the address may hold, so look at the
	 * parameters first (a cheap scan of the words after the path).
	 */
	flags = SMTP_ADDR_NULL_OK;
	if (s->esmtp && smtp_cmd_has_param(arg, "SMTPUTF8"))
		flags |= SMTP_ADDR_UTF8;
	ret = smtp_cmd_path(arg, "FROM:", flags, &addr, &rest, &err);
	if (ret == SMTP_CMD_PATH_UTF8 && s->esmtp) {
		smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 "
			    "to send UTF-8 address");
		return (-1);
	}
	if (ret == SMTP_CMD_PATH_SYNTAX) {
		smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return (-1);
	}
	if (ret < 0) {
		smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
		return (-1);
	}

	/* ESMTP parameters. */
	params = cursor = xstrdup(rest);
	while ((param = smtp_cmd_param(&cursor, &value)) != NULL) {
		if (!s->esmtp)
			goto unsupported;
		if (strcasecmp(param, "SIZE") == 0 && value != NULL) {
			if (size >= 0) {
				smtpd_reply(s, "501 5.5.4 Duplicate SIZE "
					    "parameter");
				goto fail;
			}
			if (smtp_cmd_size(value, &size) < 0) {
				smtpd_reply(s, "501 5.5.4 Bad SIZE parameter");
				goto fail;
			}
		} else if (strcasecmp(param, "BODY") == 0 && value != NULL) {
			if (body_seen++) {
				smtpd_reply(s, "501 5.5.4 Duplicate BODY "
					    "parameter");
				goto fail;
			}
			if (strcasecmp(value, "8BITMIME") == 0)
				body_8bit = 1;
			else if (strcasecmp(value, "7BIT") == 0)
				body_8bit = 0;
			else {
				smtpd_reply(s, "501 5.5.4 Bad BODY parameter");
				goto fail;
			}
		} else if (strcasecmp(param, "SMTPUTF8") == 0
			   && value == NULL) {
			if (utf8++) {
				smtpd_reply(s, "501 5.5.4 Duplicate SMTPUTF8 "
					    "parameter");
				goto fail;
			}
		} else if (strcasecmp(param, "RET") == 0) {
			/* DSN, RFC 3461 4.3. */
			if (dsn_ret != DSN_RET_NONE || value == NULL
			    || (dsn_ret = dsn_ret_parse(value)) < 0) {
				smtpd_reply(s, "501 5.5.4 %s RET parameter",
					    dsn_ret > 0 ? "Duplicate" : "Bad");
				goto fail;
			}
		} else if (strcasecmp(param, "ENVID") == 0) {
			struct strbuf *dec;

			/* DSN, RFC 3461 4.4: xtext, printable when decoded. */
			if (envid != NULL || value == NULL) {
				smtpd_reply(s, "501 5.5.4 %s ENVID parameter",
					    envid ? "Duplicate" : "Bad");
				goto fail;
			}
			dec = strbuf_new(128, 4 * DSN_ENVID_MAX);
			if (dsn_envid_parse(value, dec) < 0) {
				strbuf_free(dec);
				smtpd_reply(s, "501 5.5.4 Bad ENVID parameter");
				goto fail;
			}
			envid = xstrdup(dec->data);
			strbuf_free(dec);
		} else if (strcasecmp(param, "AUTH") == 0 && value != NULL
			   && smtpd_sasl_ehlo(s) != NULL) {
			/* RFC 4954 5: accepted, not passed on (not trusted). */
		} else {
	unsupported:
			smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
				    param);
			goto fail;
		}
	}
	xfree(params);
	if ((ret & SMTP_ADDR_F_UTF8) && !utf8) {
		xfree(envid);
		xfree(addr);
		smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send "
			    "UTF-8 address");
		return (-1);
	}
	if (size >= 0 && smtpd_var.size_limit > 0
	    && size > smtpd_var.size_limit) {
		char    reply[] = "552 5.3.4 Message size exceeds fixed limit";

		xfree(envid);
		xfree(addr);
		smtpd_reply(s, "%s", reply);
		smtpd_session_reject_log(s, "MAIL", reply, NULL);
		return (-1);
	}
	if (smtpd_check_queue(size) != SMTPD_CHECK_OK) {
		char    reply[] = "452 4.3.1 Insufficient system storage";

		xfree(envid);
		xfree(addr);
		smtpd_reply(s, "%s", reply);
		smtpd_session_reject_log(s, "MAIL", reply, NULL);
		return (-1);
	}
	s->sender = addr;
	s->declared_size = size;
	s->body_8bit = body_8bit;
	s->smtputf8 = utf8;
	s->dsn_ret = dsn_ret;
	s->dsn_envid = envid;
	smtpd_reply(s, "250 2.1.0 Ok");
	return (0);

fail:
	xfree(envid);
	xfree(params);
	xfree(addr);
	return (-1);
}

/* smtpd_rcpt_params - NOTIFY= and ORCPT= (RFC 3461); -1 after a reply */
static int
smtpd_rcpt_params(struct smtpd_session *s, const char *rest, char **notify,
		  char **orcpt)
{
	char    buf[DSN_NOTIFY_BUFSIZE];
	struct strbuf *dec;
	char   *params;
	char   *param;
	char   *cursor;
	char   *value;
	int     flags;

	*notify = *orcpt = NULL;
	params = cursor = xstrdup(rest);
	while ((param = smtp_cmd_param(&cursor, &value)) != NULL) {
		if (s->esmtp && strcasecmp(param, "NOTIFY") == 0) {
			if (*notify != NULL || value == NULL
			    || dsn_notify_parse(value, &flags) < 0) {
				smtpd_reply(s, "501 5.5.4 %s NOTIFY parameter",
					    *notify ? "Duplicate" : "Bad");
				goto fail;
			}
			*notify = xstrdup(dsn_notify_str(flags, buf,
							 sizeof(buf)));
		} else if (s->esmtp && strcasecmp(param, "ORCPT") == 0) {
			if (*orcpt != NULL || value == NULL) {
				smtpd_reply(s, "501 5.5.4 %s ORCPT parameter",
					    *orcpt ? "Duplicate" : "Bad");
				goto fail;
			}
			dec = strbuf_new(128, 2 * DSN_ORCPT_MAX);
			/* Kept as xtext: passed on to the next MTA as is. */
			if (dsn_orcpt_canon(value, dec) < 0) {
				strbuf_free(dec);
				smtpd_reply(s, "501 5.5.4 Bad ORCPT parameter");
				goto fail;
			}
			*orcpt = xstrdup(dec->data);
			strbuf_free(dec);
		} else {
			smtpd_reply(s, "555 5.5.4 Unsupported option: %s",
				    param);
			goto fail;
		}
	}
	xfree(params);
	return (0);

fail:
	xfree(params);
	*notify = xfree(*notify);
	*orcpt = xfree(*orcpt);
	return (-1);
}

/* smtpd_rcpt_checked - the restrictions' verdict on the pending RCPT */
static int
smtpd_rcpt_checked(struct smtpd_session *s, int verdict)
{
	char   *addr = s->pend_rcpt;

	s->pend_rcpt = NULL;
	if (verdict != SMTPD_CHECK_OK) {
		smtpd_reply(s, "%s", smtpd_check_reply(s));
		smtpd_session_reject_log(s, "RCPT", smtpd_check_reply(s), addr);
		xfree(addr);
		s->pend_notify = xfree(s->pend_notify);
		s->pend_orcpt = xfree(s->pend_orcpt);
		return (-1);
	}
	if (s->nrcpt >= s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? 2 * s->rcpt_cap : 8;
		s->rcpts = xreallocarray(s->rcpts, s->rcpt_cap,
					 sizeof(*s->rcpts));
		s->rcpt_notify = xreallocarray(s->rcpt_notify, s->rcpt_cap,
					       sizeof(*s->rcpt_notify));
		s->rcpt_orcpt = xreallocarray(s->rcpt_orcpt, s->rcpt_cap,
					      sizeof(*s->rcpt_orcpt));
	}
	s->rcpt_notify[s->nrcpt] = s->pend_notify;
	s->rcpt_orcpt[s->nrcpt] = s->pend_orcpt;
	s->rcpts[s->nrcpt++] = addr;
	s->pend_notify = s->pend_orcpt = NULL;
	smtpd_reply(s, "250 2.1.5 Ok");
	return (0);
}

/* smtpd_rcpt_done - the restrictions answered later */
static void
smtpd_rcpt_done(struct smtpd_session *s, int verdict)
{
	smtpd_session_cmd_done(s, smtpd_rcpt_checked(s, verdict));
}

/* smtpd_rcpt_cmd - RCPT TO:<path> [NOTIFY=...] [ORCPT=...] */
static int
smtpd_rcpt_cmd(struct smtpd_session *s, const char *arg)
{
	const char *rest;
	const char *err;
	char   *addr;
	char   *notify;
	char   *orcpt;
	int     flags;
	int     ret;

	s->rcpt_tried++;
	flags = SMTP_ADDR_POSTMASTER_OK;
	if (s->smtputf8)
		flags |= SMTP_ADDR_UTF8;
	ret = smtp_cmd_path(arg, "TO:", flags, &addr, &rest, &err);
	if (ret == SMTP_CMD_PATH_SYNTAX) {
		smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return (-1);
	}
	if (ret == SMTP_CMD_PATH_UTF8) {
		smtpd_reply(s, "553 5.6.7 Must declare SMTPUTF8 "
			    "to send UTF-8 address");
		return (-1);
	}
	if (ret < 0) {
		smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
		return (-1);
	}
	if (smtpd_rcpt_params(s, rest, &notify, &orcpt) < 0) {
		xfree(addr);
		return (-1);
	}
	if (s->nrcpt >= (size_t) smtpd_var.rcpt_limit) {
		char    text[] = "452 4.5.3 Error: too many recipients";

		smtpd_reply(s, "%s", text);
		smtpd_session_reject_log(s, "RCPT", text, addr);
		xfree(addr);
		xfree(notify);
		xfree(orcpt);
		return (-1);
	}
	/* The restrictions decide, now or later (smtpd_rcpt_checked()). */
	s->pend_rcpt = addr;
	s->pend_pflags = ret;
	s->pend_notify = notify;
	s->pend_orcpt = orcpt;
	ret = smtpd_check_run(s, SMTPD_STAGES_RCPT, "RCPT", addr, ret,
			      smtpd_rcpt_done);
	if (ret == SMTPD_CHECK_WAIT)
		return (SMTPD_CHECK_WAIT);
	return (smtpd_rcpt_checked(s, ret));
}

/* smtpd_rset_cmd - RSET */
static int
smtpd_rset_cmd(struct smtpd_session *s, const char *arg)
{
	if (*arg) {
		smtpd_reply(s, "501 5.5.4 Syntax: RSET");
		return (-1);
	}
	smtpd_session_reset(s);
	smtpd_reply(s, "250 2.0.0 Ok");
	return (0);
}

/* smtpd_noop_cmd - NOOP */
static int
smtpd_noop_cmd(struct smtpd_session *s, const char *unused_arg)
{
	(void) unused_arg;
	smtpd_reply(s, "250 2.0.0 Ok");
	return (0);
}

/* smtpd_quit_cmd - QUIT */
static int
smtpd_quit_cmd(struct smtpd_session *s, const char *unused_arg)
{
	(void) unused_arg;
	smtpd_reply(s, "221 2.0.0 Bye");
	smtpd_session_close(s);
	return (0);
}

/* smtpd_vrfy_cmd - VRFY: never reveals an address */
static int
smtpd_vrfy_cmd(struct smtpd_session *s, const char *arg)
{
	if (*arg == 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
		return (-1);
	}
	smtpd_reply(s, "252 2.0.0 Cannot VRFY user, but will accept message "
		    "and attempt delivery");
	return (0);
}

/* smtpd_expn_cmd - EXPN: refused */
static int
smtpd_expn_cmd(struct smtpd_session *s, const char *unused_arg)
{
	(void) unused_arg;
	smtpd_reply(s, "502 5.5.1 Error: command not supported");
	return (-1);
}

/* smtpd_ehlo_cmd - EHLO */
static int
smtpd_ehlo_cmd(struct smtpd_session *s, const char *arg)
{
	return (smtpd_helo_cmd(s, arg, 1));
}

/* smtpd_helo_only_cmd - HELO */
static int
smtpd_helo_only_cmd(struct smtpd_session *s, const char *arg)
{
	return (smtpd_helo_cmd(s, arg, 0));
}

/* smtpd_data_verb - DATA (counted as good when 354 goes out) */
static int
smtpd_data_verb(struct smtpd_session *s, const char *arg)
{
	smtpd_data_cmd(s, arg);
	return (0);
}

/* smtpd_bdat_verb - BDAT (counted as good per chunk, smtpd_data.c) */
static int
smtpd_bdat_verb(struct smtpd_session *s, const char *arg)
{
	smtpd_bdat_cmd(s, arg);
	return (0);
}

/* smtpd_starttls_cmd - STARTTLS (RFC 3207) */
static int
smtpd_starttls_cmd(struct smtpd_session *s, const char *arg)
{
	if (*arg) {
		smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return (-1);
	}
	if (s->tls_info) {
		smtpd_reply(s, "503 5.5.1 Error: TLS already active");
		return (-1);
	}
	if (smtpd_var.tls_level == TLS_SERVER_LEVEL_NONE) {
		/* Not offered in EHLO either (smtpd_tls_security_level). */
		smtpd_reply(s, "502 5.5.1 Error: TLS is not offered on this "
			    "service");
		return (-1);
	}
	if (smtpd_var.tls_ctx == NULL) {
		smtpd_reply(s, "454 4.7.0 TLS not available due to local "
			    "problem");
		return (-1);
	}
	/* The 220 goes out in the clear, ahead of the handshake. */
	smtpd_reply(s, "220 2.0.0 Ready to start TLS");
	smtpd_session_flush(s);
	if (smtpd_tls_start(s) < 0) {
		smtpd_session_close(s);
		return (-1);
	}
	return (0);
}

static int smtpd_help_cmd(struct smtpd_session *, const char *);

/* Protocol states, for the table below. */
#define SMTPD_PS_START		0	/* no HELO/EHLO yet */
#define SMTPD_PS_HELO		1	/* HELO/EHLO, no MAIL */
#define SMTPD_PS_MAIL		2	/* in a mail transaction */
#define SMTPD_PS_COUNT		3

#define SMTPD_CF_SELF		(1 << 0)	/* the handler counts success */
#define SMTPD_CF_NOHELP		(1 << 1)	/* not listed by HELP */
#define SMTPD_CF_LAST		(1 << 2)	/* ends a pipelined group */
#define SMTPD_CF_TLS		(1 << 3)	/* EHLO keyword only when
						 * smtpd_tls_offered() */
#define SMTPD_CF_NEED_TLS	(1 << 4)	/* 530 before STARTTLS at
						 * level encrypt */

#define SMTPD_NEED_HELO		"503 5.5.1 Error: send HELO/EHLO first"
#define SMTPD_NEED_MAIL		"503 5.5.1 Error: need MAIL command"

/*
 * The commands: verb; the reply in each protocol state where the verb is
 * not allowed (NULL: allowed); the handler (0 success, -1 after an error
 * reply, SMTPD_CHECK_WAIT when a restriction answers later and calls
 * smtpd_session_cmd_done()); the counter of the disconnect line; EHLO
 * keywords; flags. HELP lists the verbs in this order, EHLO the
 * keywords. A new verb is one line here and a counter in smtpd.h.
 */
static const struct smtpd_cmd {
	const char *name;
	const char *refuse[SMTPD_PS_COUNT];
	int     (*handler) (struct smtpd_session *, const char *);
	int     counter;
	const char *ehlo[5];
	int     flags;
}       smtpd_cmds[] = {
	{"HELO", {0}, smtpd_helo_only_cmd, SMTPD_CMD_HELO, {0},
	SMTPD_CF_LAST},
	{"EHLO", {0}, smtpd_ehlo_cmd, SMTPD_CMD_EHLO,
	{"PIPELINING", "ENHANCEDSTATUSCODES"}, SMTPD_CF_LAST},
	/* Nothing may follow it in the same write (RFC 3207 4.2). */
	{"STARTTLS", {0}, smtpd_starttls_cmd, SMTPD_CMD_STARTTLS,
	{"STARTTLS"}, SMTPD_CF_LAST | SMTPD_CF_TLS},
	/* "AUTH mechanisms" when offered (smtpd_sasl.c). */
	{"AUTH", {SMTPD_NEED_HELO, 0, "503 5.5.1 Error: MAIL transaction in "
	"progress"}, smtpd_auth_cmd, SMTPD_CMD_AUTH, {"AUTH"},
	SMTPD_CF_LAST | SMTPD_CF_NEED_TLS},
	{"MAIL", {SMTPD_NEED_HELO, 0, "503 5.5.1 Error: nested MAIL command"},
	smtpd_mail_cmd, SMTPD_CMD_MAIL,
	{"SIZE", "8BITMIME", "DSN"}, SMTPD_CF_NEED_TLS},
	{"RCPT", {SMTPD_NEED_MAIL, SMTPD_NEED_MAIL, 0}, smtpd_rcpt_cmd,
	SMTPD_CMD_RCPT, {0}, SMTPD_CF_NEED_TLS},
	{"DATA", {0}, smtpd_data_verb, SMTPD_CMD_DATA, {0},
	SMTPD_CF_SELF | SMTPD_CF_LAST | SMTPD_CF_NEED_TLS},
	{"BDAT", {0}, smtpd_bdat_verb, SMTPD_CMD_BDAT, {"CHUNKING"},
	SMTPD_CF_SELF | SMTPD_CF_NEED_TLS},
	{"RSET", {0}, smtpd_rset_cmd, SMTPD_CMD_RSET, {0}, 0},
	{"NOOP", {0}, smtpd_noop_cmd, SMTPD_CMD_NOOP, {0}, SMTPD_CF_LAST},
	{"QUIT", {0}, smtpd_quit_cmd, SMTPD_CMD_QUIT, {0}, SMTPD_CF_LAST},
	{"EXPN", {0}, smtpd_expn_cmd, SMTPD_CMD_EXPN, {0},
	SMTPD_CF_NOHELP | SMTPD_CF_LAST},
	{"HELP", {0}, smtpd_help_cmd, SMTPD_CMD_HELP, {0}, 0},
	/* SMTPUTF8 (RFC 6531) is for MAIL and VRFY; clients look for it last. */
	{"VRFY", {0}, smtpd_vrfy_cmd, SMTPD_CMD_VRFY, {"SMTPUTF8"},
	SMTPD_CF_LAST | SMTPD_CF_NEED_TLS},
};

#define SMTPD_NCMDS	(sizeof(smtpd_cmds) / sizeof(smtpd_cmds[0]))

/* smtpd_help_cmd - HELP: the verbs of the table */
static int
smtpd_help_cmd(struct smtpd_session *s, const char *unused_arg)
{
	struct strbuf *sb = strbuf_new(128, 0);
	size_t  i;

	(void) unused_arg;
	strbuf_appends(sb, "214 2.0.0 Commands:");
	for (i = 0; i < SMTPD_NCMDS; i++)
		if (!(smtpd_cmds[i].flags & SMTPD_CF_NOHELP))
			strbuf_printf(sb, " %s", smtpd_cmds[i].name);
	smtpd_reply(s, "%s", sb->data);
	strbuf_free(sb);
	return (0);
}

/* smtpd_session_ehlo - the EHLO reply: the keywords of the table */
static void
smtpd_session_ehlo(struct smtpd_session *s)
{
	const char *kw[SMTPD_NCMDS * 5];
	size_t  n = 0;
	size_t  i;
	size_t  j;

	for (i = 0; i < SMTPD_NCMDS; i++) {
		if ((smtpd_cmds[i].flags & SMTPD_CF_TLS)
		    && !smtpd_tls_offered(s))
			continue;
		for (j = 0; j < 5 && smtpd_cmds[i].ehlo[j]; j++)
			if ((kw[n] = smtpd_cmds[i].ehlo[j]) != NULL
			    && (strcmp(kw[n], "AUTH") != 0
				|| (kw[n] = smtpd_sasl_ehlo(s)) != NULL))
				n++;
	}
	smtpd_reply(s, "250%s%s", n ? "-" : " ", smtpd_var.myhostname);
	for (i = 0; i < n; i++) {
		if (strcmp(kw[i], "SIZE") == 0 && smtpd_var.size_limit > 0)
			smtpd_reply(s, "250%sSIZE %lld", i + 1 < n ? "-" : " ",
				    smtpd_var.size_limit);
		else
			smtpd_reply(s, "250%s%s", i + 1 < n ? "-" : " ", kw[i]);
	}
}

/* smtpd_session_cmd_done - a command that waited has its verdict */
void
smtpd_session_cmd_done(struct smtpd_session *s, int ret)
{
	if (ret == 0)
		s->cmd_ok[s->cmd_waiting]++;
	if (s->state == SMTPD_ST_CHECK)
		s->state = SMTPD_ST_CMD;
	smtpd_session_resume(s);
}

/* smtpd_session_pipelined - commands sent ahead of time (RFC 2920)? */
static void
smtpd_session_pipelined(struct smtpd_session *s, const char *verb,
			size_t len, const struct smtpd_cmd *cmd)
{
	/*
	 * Improper: more input behind a command that must end a group, or
	 * behind any command before PIPELINING was offered. The verdict is
	 * reject_unauth_pipelining's (smtpd_check.c).
	 *
	 * XXX Input sent before the greeting is not seen: the session reads
	 * only once the 220 is out.
	 */
	if (s->ill_pipelining
	    || evbuffer_get_length(stream_input(s->stream)) == 0)
		return;
	if (s->esmtp && (cmd == NULL || !(cmd->flags & SMTPD_CF_LAST)))
		return;
	s->ill_pipelining = 1;
	log_info("improper command pipelining after %.*s from %s[%s]",
		 (int) (len > 16 ? 16 : len), verb, s->name, s->addr);
}

/* smtpd_session_command - run one command line */
static void
smtpd_session_command(struct smtpd_session *s, int too_long)
{
	const struct smtpd_cmd *cmd;
	char   *line;
	char   *arg;
	const char *refuse;
	int     ps;
	int     ret;
	size_t  len;
	size_t  i;

	if (smtpd_sasl_line(s, too_long))
		return;				/* a response of AUTH */
	if (too_long) {
		s->cmd_total[SMTPD_CMD_UNKNOWN]++;
		smtpd_reply(s, "500 5.5.2 Error: line too long");
		return;
	}
	if (smtp_cmd_split(s->line->data, s->line->len, &line, &len,
			   &arg) < 0) {
		s->cmd_total[SMTPD_CMD_UNKNOWN]++;
		smtpd_reply(s, "500 5.5.2 Error: NUL character in command");
		return;
	}

	for (cmd = NULL, i = 0; i < SMTPD_NCMDS; i++) {
		if (strlen(smtpd_cmds[i].name) == len
		    && strncasecmp(line, smtpd_cmds[i].name, len) == 0) {
			cmd = smtpd_cmds + i;
			break;
		}
	}
	smtpd_session_pipelined(s, line, len, cmd);
	if (cmd == NULL) {
		s->cmd_total[SMTPD_CMD_UNKNOWN]++;
		smtpd_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	s->cmd_total[cmd->counter]++;
	ps = s->helo == NULL ? SMTPD_PS_START :
		s->sender == NULL ? SMTPD_PS_HELO : SMTPD_PS_MAIL;
	if ((refuse = cmd->refuse[ps]) != NULL) {
		smtpd_reply(s, "%s", refuse);
		return;
	}
	if ((cmd->flags & SMTPD_CF_NEED_TLS) && smtpd_tls_required(s)) {
		smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	ret = cmd->handler(s, arg);
	if (ret == SMTPD_CHECK_WAIT) {
		/* smtpd_session_cmd_done() counts it. */
		s->cmd_waiting = cmd->counter;
		s->state = SMTPD_ST_CHECK;
		return;
	}
	if (ret == 0 && !(cmd->flags & SMTPD_CF_SELF))
		s->cmd_ok[cmd->counter]++;
}

/* smtpd_session_errors - enforce the error limits after a reply */
static int
smtpd_session_errors(struct smtpd_session *s, int before)
{
	struct timeval tv = {1, 0};

	if (s->errors == before || s->state == SMTPD_ST_CLOSING)
		return (0);
	if (s->errors >= smtpd_var.hard_error_limit) {
		log_info("too many errors after %s from %s[%s]",
			 s->line_seen ? "command" : "connect", s->name,
			 s->addr);
		smtpd_reply(s, "421 4.7.0 %s Error: too many errors",
			    smtpd_var.myhostname);
		smtpd_session_close(s);
		return (1);
	}
	if (s->errors > smtpd_var.soft_error_limit) {
		s->delayed = 1;
		if (s->delay_ev == NULL)
			s->delay_ev = evtimer_new(server_base(),
						  smtpd_session_delay_cb, s);
		evtimer_add(s->delay_ev, &tv);
		return (1);
	}
	return (0);
}

/* smtpd_session_waits - is the session waiting for a lookup or a service? */
static int
smtpd_session_waits(const struct smtpd_session *s)
{
	return (s->state == SMTPD_ST_LOOKUP
		|| s->state == SMTPD_ST_CHECK
		|| s->state == SMTPD_ST_CLEANUP_OPEN
		|| s->state == SMTPD_ST_CLEANUP_DONE);
}

/* smtpd_session_run - process buffered input until it runs out or waits */
static void
smtpd_session_run(struct smtpd_session *s)
{
	int     too_long;
	int     before;
	int     more;
	int     waiting;
	int     throttled;

	while (!s->delayed && s->state != SMTPD_ST_CLOSING) {
		/* A client that sends but does not read gets no more. */
		if (s->reply && evbuffer_get_length(s->reply) > SMTPD_OUT_LOWAT)
			smtpd_session_flush(s);
		if (stream_pending(s->stream) > SMTPD_OUT_HIWAT) {
			s->out_blocked = 1;
			break;
		}
		before = s->errors;
		switch (s->state) {
		case SMTPD_ST_CMD:
			more = smtpd_session_getline(s, &too_long);
			if (more)
				smtpd_session_command(s, too_long);
			break;
		case SMTPD_ST_DATA:
			more = smtpd_data_input(s);
			break;
		case SMTPD_ST_BDAT:
			more = smtpd_bdat_input(s);
			break;
		default:			/* waiting: cleanup, checks */
			more = 0;
			break;
		}
		if (smtpd_session_errors(s, before))
			break;
		if (!more)
			break;
	}
	if (s->state == SMTPD_ST_CLOSING)
		return;
	if (!s->delayed)
		smtpd_session_flush(s);
	/* Between commands the line buffer goes (made again on demand). */
	if (s->state == SMTPD_ST_CMD) {
		s->line = strbuf_free(s->line);
		/* BDAT chunks of one transaction share the content state. */
		if (s->sender == NULL)
			smtpd_session_msg_free(s);
	}

	/* Read only when we would act on the input. */
	throttled = s->delayed || s->paused || s->out_blocked;
	waiting = throttled || smtpd_session_waits(s);
	if (s->eof) {
		/* All input is processed: say what is left to say. */
		if (!waiting) {
			smtpd_session_lost(s);
			smtpd_session_close(s);
		}
	} else if (waiting) {
		/*
		 * While a lookup, check or cleanup is under way the client
		 * normally waits for our reply and sends nothing: reading
		 * stays on, and goes off only once input does arrive. That
		 * saves an epoll_ctl pair per wait (two or three a message).
		 */
		if (throttled
		    || evbuffer_get_length(stream_input(s->stream)) > 0)
			stream_disable(s->stream, STREAM_READ);
	} else
		stream_enable(s->stream, STREAM_READ);
}

/* smtpd_session_greet - limits, then the greeting */
static void
smtpd_session_greet(struct smtpd_session *s)
{
	s->state = SMTPD_ST_CMD;
	log_info("connect from %s[%s]", s->name, s->addr);
	if (smtpd_var.conn_limit > 0 && !s->local
	    && s->same >= smtpd_var.conn_limit
	    && smtpd_check_client(s->addr, smtpd_var.conn_exceptions) != 1) {
		log_warn("Connection concurrency limit exceeded: %ld from "
			 "%s[%s] for service %s", s->same + 1, s->name, s->addr,
			 server_service_name());
		if (smtpd_var.tls_wrapper)
			smtpd_session_refuse_tls(s, SMTPD_REFUSE_CONN);
		else {
			s->tls_refuse = SMTPD_REFUSE_CONN;
			smtpd_session_refuse(s);
		}
		return;
	}
	/* Local processes may use sendmail(1) anyway: they may relay. */
	s->trusted = s->local ? 1 :
		smtpd_check_client(s->addr, smtpd_var.mynetworks);
	if (smtpd_var.tls_wrapper) {
		/* Implicit TLS (RFC 8314): the greeting once it is up. */
		s->tls_greet = 1;
		if (smtpd_tls_start(s) < 0) {
			smtpd_session_free_later(s);
			return;
		}
		stream_enable(s->stream, STREAM_READ);
		return;
	}
	smtpd_reply(s, "220 %s", smtpd_var.banner);
	s->errors = 0;
	smtpd_session_flush(s);
	stream_enable(s->stream, STREAM_READ);
}

/* smtpd_session_name_cb - the client name lookup is done */
static void
smtpd_session_name_cb(struct dns_result *res, void *ctx)
{
	struct smtpd_session *s = ctx;

	s->dns = NULL;
	if (res->status == DNS_OK && res->count > 0) {
		smtpd_session_name_free(s);
		s->name = xstrdup(res->addrs[0].host);
	} else if (log_verbose) {
		log_debug("%s: client name lookup: %s: %s", s->addr,
			  dns_status_str(res->status), res->reason);
	}
	dns_result_free(res);
	smtpd_session_greet(s);
}

/* smtpd_session_accept - a new client */
void
smtpd_session_accept(int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct smtpd_session *s;

	(void) salen;
	s = xcalloc(1, sizeof(*s));
	if (stream_addr_format(sa, s->addr, sizeof(s->addr), NULL) < 0) {
		/*
		 * A unix socket: a local process, with no IP address to
		 * show or to match against mynetworks (docs/decisions.md).
		 */
		s->local = 1;
		strcpy(s->addr, SMTPD_LOCAL_ADDR);
	}
	s->name = s->local ? smtpd_name_local : smtpd_name_unknown;

	s->stream = stream_accept(server_base(), fd);
	if (s->stream == NULL) {
		log_warn("cannot make a buffer event for %s", s->addr);
		xfree(s);
		return;
	}
	/* Buffers and timers are made when needed (docs/decisions.md). */
	s->declared_size = -1;
	s->state = SMTPD_ST_CMD;
	stream_setcb(s->stream, smtpd_session_read_cb, smtpd_session_write_cb,
		     smtpd_session_event_cb, s);
	stream_timeouts(s->stream, smtpd_var.timeout, smtpd_var.timeout);
	stream_set_write_lowat(s->stream, SMTPD_OUT_LOWAT);

	/* Sessions from the same address, not counting this one. */
	if (smtpd_var.conn_limit > 0 && !s->local) {
		s->same = (long) smtpd_addr_count_add(s->addr);
		s->counted = 1;
	}
	s->next = smtpd_sessions;
	if (smtpd_sessions)
		smtpd_sessions->prev = s;
	smtpd_sessions = s;
	smtpd_nsessions++;
	/* Writing is turned on when a reply does not go out at once. */
	stream_disable(s->stream, STREAM_WRITE);

	if (smtpd_var.max_sessions > 0
	    && smtpd_nsessions > (size_t) smtpd_var.max_sessions) {
		log_info("connect from %s[%s]", s->name, s->addr);
		log_warn("too many sessions (%ld): refusing %s[%s]",
			 smtpd_var.max_sessions, s->name, s->addr);
		if (smtpd_var.tls_wrapper)
			smtpd_session_refuse_tls(s, SMTPD_REFUSE_BUSY);
		else {
			s->tls_refuse = SMTPD_REFUSE_BUSY;
			smtpd_session_refuse(s);
		}
		return;
	}

	/*
	 * The client's name comes first (Postfix logs "connect from" with
	 * it); other sessions go on meanwhile. Reading waits too.
	 */
	if (smtpd_var.peername_lookup && !s->local) {
		s->state = SMTPD_ST_LOOKUP;
		s->dns = dns_lookup_ptr(s->addr, smtpd_session_name_cb, s);
		return;
	}
	smtpd_session_greet(s);
}

/* smtpd_session_shutdown - say goodbye to everyone (SIGTERM) */
void
smtpd_session_shutdown(void)
{
	struct smtpd_session *s;

	while ((s = smtpd_sessions) != NULL) {
		if (s->stream) {
			if (s->state != SMTPD_ST_CLOSING)
				smtpd_reply(s, "421 4.3.2 %s Service shutting "
					    "down", smtpd_var.myhostname);
			smtpd_session_flush(s);

			/*
			 * The session ends now, before the loop would write
			 * the 421: best effort, one non-blocking write.
			 */
			if (stream_flush(s->stream) < 0)
				log_debug("write to %s[%s]: %m", s->name,
					  s->addr);
		}
		smtpd_session_free(s);
	}
}
