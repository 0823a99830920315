/*
 * cleanup_session - the submission protocol, one state machine per client
 *
 * SYNOPSIS
 *	#include "cleanup.h"
 *
 *	void	cleanup_session_init(struct event_base *base)
 *	void	cleanup_session_accept(int fd)
 *	size_t	cleanup_session_count(void)
 *	void	cleanup_session_shutdown(void)
 *	void	cleanup_session_reply(struct cleanup_sess *s, int status,
 *			const char *text)
 *	void	cleanup_session_refuse(struct cleanup_sess *s, int status,
 *			const char *reason)
 *	const char *cleanup_write_reason(const char *id, int errnum)
 *
 * DESCRIPTION
 *	This module speaks the cleanup protocol of docs/ipc.md on each
 *	connection: the envelope list, the "file is open" reply, the content
 *	as "data" attributes, and the final reply (sent by the group commit
 *	in cleanup_commit.c, or here after an error).
 *
 *	cleanup_session_init() remembers the event loop.
 *
 *	cleanup_session_accept() takes a new non-blocking connection. With
 *	cleanup_max_sessions open already it answers status 4 and closes.
 *
 *	cleanup_session_count() is the number of open sessions (the
 *	skeleton's sessions() callback, for a graceful stop).
 *
 *	cleanup_session_shutdown() is for SIGTERM: it completes the group
 *	commit of messages already renamed into incoming/, then removes
 *	every queue file still in tmp/ and closes every connection.
 *
 *	cleanup_session_reply() sends the final reply (status 0 with the
 *	queue ID as "text", else the reason) and closes the session once
 *	the reply is written. It may free the session at once.
 *
 *	cleanup_session_refuse() removes the queue file from tmp/ and keeps
 *	reading the content to its end (so that the client stays in step),
 *	then answers with "status" and "reason" (a static string).
 *
 *	cleanup_write_reason() is the reason to answer after a queue file
 *	operation failed with "errnum": CLEANUP_NO_SPACE ("4.3.1
 *	Insufficient system storage", which smtpd turns into 452) when
 *	the queue file system is full (ENOSPC, EDQUOT), logged as such,
 *	else CLEANUP_WRITE_ERROR. Both are static strings.
 *
 *	Each session owns its memory; cleanup_sess_free() releases all of
 *	it, removes an unfinished queue file, and tells the skeleton.
 *
 * DIAGNOSTICS
 *	Malformed input, a timeout, or a client that goes away: one warning
 *	line and the session ends; the process carries on.
 *
 * SEE ALSO
 *	docs/ipc.md, cleanup(8)
 */

#include <sys/time.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "attr.h"
#include "dsn.h"
#include "hdr.h"
#include "log.h"
#include "mail_attr.h"
#include "qfile.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "cleanup.h"

#define CLEANUP_IN_LIMIT	(2 * CLEANUP_DATA_MAX + 1024)
#define CLEANUP_READ_MIN	16384	/* read at least this at once */
#define CLEANUP_OUT_LIMIT	4096

static struct event_base *cleanup_base;
static struct cleanup_sess *cleanup_sessions;	/* all open sessions */
static size_t cleanup_nsessions;

static void cleanup_sess_read_cb(evutil_socket_t, short, void *);
static void cleanup_sess_write_cb(evutil_socket_t, short, void *);

/* cleanup_session_init - remember the loop */
void
cleanup_session_init(struct event_base *base)
{
	cleanup_base = base;
}

/* cleanup_session_count - open sessions */
size_t
cleanup_session_count(void)
{
	return (cleanup_nsessions);
}

/* cleanup_timeout_tv - cleanup_timeout as a timeval */
static struct timeval *
cleanup_timeout_tv(void)
{
	static struct timeval tv;

	tv.tv_sec = (time_t) var_cleanup_timeout;
	tv.tv_usec = 0;
	return (&tv);
}

/* cleanup_sess_free - end a session, remove its unfinished queue file */
static void
cleanup_sess_free(struct cleanup_sess *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		cleanup_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->rev)
		event_free(s->rev);
	if (s->wev)
		event_free(s->wev);
	if (s->fd >= 0)
		(void) close(s->fd);
	s->qf = qfile_abort(s->qf);
	s->hdr = hdr_free(s->hdr);
	strbuf_free(s->in);
	strbuf_free(s->out);
	strbuf_free(s->rcpts);
	strbuf_free(s->sync_err);
	free(s->sender);
	free(s->client_addr);
	free(s->client_name);
	free(s->helo);
	free(s->protocol);
	free(s->tls);
	free(s->sasl_method);
	free(s->sasl_username);
	free(s->body);
	free(s->ret);
	free(s->envid);
	free(s->hold);
	free(s->discard);
	cleanup_local_free(s);
	free(s);
	cleanup_nsessions--;
	server_session_done();
}

/* cleanup_sess_flush - write what is pending; 0, or -1 when gone */
static int
cleanup_sess_flush(struct cleanup_sess *s)
{
	ssize_t n;

	while (s->out->len > 0) {
		n = write(s->fd, s->out->data, s->out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (event_add(s->wev, cleanup_timeout_tv()) < 0)
				return (-1);
			return (0);
		}
		if (n <= 0) {
			log_debug("%s: write to client: %s", s->id,
				  n < 0 ? strerror(errno) : "short write");
			return (-1);
		}
		strbuf_consume(s->out, (size_t) n);
	}
	return (0);
}

/* cleanup_sess_send - queue one reply list and try to write it */
static int
cleanup_sess_send(struct cleanup_sess *s, int status, const char *text)
{
	if (attr_putl(s->out, MAIL_ATTR_STATUS, status) < 0
	    || attr_puts(s->out, status == 0 ? MAIL_ATTR_QUEUE_ID :
			  MAIL_ATTR_REASON, text) < 0
	    || attr_end(s->out) < 0) {
		/* Not reached: the reply is small. */
		log_warn("%s: reply does not fit", s->id);
		return (-1);
	}
	return (cleanup_sess_flush(s));
}

/* cleanup_session_reply - send the last reply, close when written */
void
cleanup_session_reply(struct cleanup_sess *s, int status, const char *text)
{
	s->state = CLEANUP_ST_CLOSING;
	s->qf = qfile_abort(s->qf);	/* does not touch incoming/ */
	event_del(s->rev);
	if (cleanup_sess_send(s, status, text) < 0 || s->out->len == 0)
		cleanup_sess_free(s);
}

/* cleanup_session_refuse - drop the file, read the rest, then reply */
void
cleanup_session_refuse(struct cleanup_sess *s, int status, const char *reason)
{
	s->qf = qfile_abort(s->qf);
	s->hdr = hdr_free(s->hdr);
	s->status = status;
	s->reason = reason;
	s->state = CLEANUP_ST_DRAIN;
}

/* cleanup_write_reason - the reply reason for a failed queue file write */
const char *
cleanup_write_reason(const char *id, int errnum)
{
	if (errnum == ENOSPC || errnum == EDQUOT) {
		log_warn("%s: queue file system is full (%s); message not "
			 "accepted (4.3.1)", id, strerror(errnum));
		return (CLEANUP_NO_SPACE);
	}
	return (CLEANUP_WRITE_ERROR);
}

/* cleanup_env_value - copy a value that must be text on one line */
static char *
cleanup_env_value(const struct attr *a)
{
	if (memchr(a->value, '\0', a->len) || memchr(a->value, '\r', a->len)
	    || memchr(a->value, '\n', a->len))
		return (NULL);
	return (xstrndup(a->value, a->len));
}

/* cleanup_env_set - set a once-only string attribute */
static int
cleanup_env_set(char **var, const struct attr *a)
{
	if (*var != NULL)
		return (-1);			/* twice */
	*var = cleanup_env_value(a);
	return (*var ? 0 : -1);
}

/* cleanup_env_text - a DSN value: printable on one line, no TAB */
static char *
cleanup_env_text(const struct attr *a)
{
	size_t  i;

	for (i = 0; i < a->len; i++)
		if ((unsigned char) a->value[i] < 32
		    || (unsigned char) a->value[i] == 127)
			return (NULL);
	return (a->len ? xstrndup(a->value, a->len) : NULL);
}

/* cleanup_env_rcpt_param - add "\tname=value" to the last recipient */
static int
cleanup_env_rcpt_param(struct cleanup_sess *s, int flag, const char *name,
		       const char *value)
{
	struct strbuf *tmp;

	if (s->rcpt_dsn == CLEANUP_RCPT_NONE || (s->rcpt_dsn & flag))
		return (-1);			/* no rcpt, or twice */
	s->rcpt_dsn |= flag;
	if (s->rcpt_dsn & CLEANUP_RCPT_DROPPED)
		return (0);
	/* Replace the last NUL: "addr\tname=value\0". */
	tmp = strbuf_new(64, 0);
	strbuf_printf(tmp, "\t%s=%s", name, value);
	strbuf_appendc(tmp, 0);
	strbuf_truncate(s->rcpts, s->rcpts->len - 1);
	if (strbuf_append(s->rcpts, tmp->data, tmp->len) < 0) {
		strbuf_appendc(s->rcpts, 0);	/* fits: one byte freed */
		s->status = 5;
	}
	strbuf_free(tmp);
	return (0);
}

/* cleanup_env_attr - one envelope attribute; -1 when malformed */
static int
cleanup_env_attr(struct cleanup_sess *s, const struct attr *a)
{
	char   *val;
	char   *end;

	if (attr_name_is(a, MAIL_ATTR_SENDER))
		return (cleanup_env_set(&s->sender, a));
	if (attr_name_is(a, MAIL_ATTR_RCPT)) {
		if (a->len == 0 || memchr(a->value, '\t', a->len))
			return (-1);
		if ((val = cleanup_env_value(a)) == NULL)
			return (-1);
		/* Past a limit: keep reading, refuse at the end. */
		if (s->nrcpt >= CLEANUP_RCPT_MAX
		    || strbuf_append(s->rcpts, val, a->len + 1) < 0) {
			s->status = 5;
			s->rcpt_dsn = CLEANUP_RCPT_DROPPED;
		} else {
			s->nrcpt++;
			s->rcpt_dsn = 0;
		}
		free(val);
		return (0);
	}
	if (attr_name_is(a, MAIL_ATTR_NOTIFY)) {
		char    buf[DSN_NOTIFY_BUFSIZE];
		int     flags;
		int     ret;

		/* Stored in canonical form; it cannot hold a TAB. */
		if ((val = cleanup_env_text(a)) == NULL)
			return (-1);
		ret = dsn_notify_parse(val, &flags);
		free(val);
		if (ret < 0)
			return (-1);
		return (cleanup_env_rcpt_param(s, CLEANUP_RCPT_NOTIFY,
				MAIL_ATTR_NOTIFY, dsn_notify_str(flags, buf,
							 sizeof(buf))));
	}
	if (attr_name_is(a, MAIL_ATTR_ORCPT)) {
		struct strbuf *canon;
		int     ret = -1;

		/* "addr-type;xtext", stored in canonical xtext (no TAB). */
		if ((val = cleanup_env_text(a)) == NULL)
			return (-1);
		canon = strbuf_new(128, 0);
		if (dsn_orcpt_canon(val, canon) == 0)
			ret = cleanup_env_rcpt_param(s, CLEANUP_RCPT_ORCPT,
						     MAIL_ATTR_ORCPT,
						     canon->data);
		strbuf_free(canon);
		free(val);
		return (ret);
	}
	if (attr_name_is(a, MAIL_ATTR_RET)) {
		int     ret;

		if (s->ret != NULL || (val = cleanup_env_text(a)) == NULL)
			return (-1);
		ret = dsn_ret_parse(val);
		free(val);
		if (ret < 0)
			return (-1);
		s->ret = xstrdup(dsn_ret_str(ret));
		return (0);
	}
	if (attr_name_is(a, MAIL_ATTR_ENVID)) {
		if (s->envid != NULL || a->len > DSN_ENVID_MAX)
			return (-1);
		s->envid = cleanup_env_text(a);
		return (s->envid ? 0 : -1);
	}
	if (attr_name_is(a, MAIL_ATTR_CLIENT_ADDR))
		return (cleanup_env_set(&s->client_addr, a));
	if (attr_name_is(a, MAIL_ATTR_CLIENT_NAME))
		return (cleanup_env_set(&s->client_name, a));
	if (attr_name_is(a, MAIL_ATTR_HELO))
		return (cleanup_env_set(&s->helo, a));
	if (attr_name_is(a, MAIL_ATTR_PROTOCOL))
		return (cleanup_env_set(&s->protocol, a));
	if (attr_name_is(a, MAIL_ATTR_TLS))
		return (cleanup_env_set(&s->tls, a));
	if (attr_name_is(a, MAIL_ATTR_SASL_METHOD))
		return (cleanup_env_set(&s->sasl_method, a));
	if (attr_name_is(a, MAIL_ATTR_SASL_USERNAME))
		return (cleanup_env_set(&s->sasl_username, a));
	if (attr_name_is(a, MAIL_ATTR_BODY))
		return (cleanup_env_set(&s->body, a));
	if (attr_name_is(a, MAIL_ATTR_SMTPUTF8)) {
		if (a->len != 1 || (a->value[0] != '0' && a->value[0] != '1'))
			return (-1);
		s->smtputf8 = (a->value[0] == '1');
		return (0);
	}
	if (attr_name_is(a, MAIL_ATTR_SIZE)) {
		if ((val = cleanup_env_value(a)) == NULL)
			return (-1);
		errno = 0;
		s->declared_size = strtoll(val, &end, 10);
		if (*val < '0' || *val > '9' || *end != 0 || errno != 0) {
			free(val);
			return (-1);
		}
		free(val);
		return (0);
	}
	if (attr_name_is(a, MAIL_ATTR_FULL_NAME))
		return (cleanup_local_attr(s, a));
	if (attr_name_is(a, MAIL_ATTR_LOCAL_UID))
		return (cleanup_local_uid(s, a));
	log_debug("%s: ignoring envelope attribute %.*s", s->id,
		  (int) a->namelen, a->name);
	return (0);
}

/* cleanup_env_write - the S, A and R records */
static int
cleanup_env_write(struct cleanup_sess *s)
{
	static const struct {
		const char *name;
		size_t  offset;
	} attrs[] = {
		{MAIL_ATTR_CLIENT_ADDR,
		offsetof(struct cleanup_sess, client_addr)},
		{MAIL_ATTR_CLIENT_NAME,
		offsetof(struct cleanup_sess, client_name)},
		{MAIL_ATTR_HELO, offsetof(struct cleanup_sess, helo)},
		{MAIL_ATTR_PROTOCOL, offsetof(struct cleanup_sess, protocol)},
		{MAIL_ATTR_TLS, offsetof(struct cleanup_sess, tls)},
		{MAIL_ATTR_SASL_METHOD,
		offsetof(struct cleanup_sess, sasl_method)},
		{MAIL_ATTR_SASL_USERNAME,
		offsetof(struct cleanup_sess, sasl_username)},
		{MAIL_ATTR_BODY, offsetof(struct cleanup_sess, body)},
		{MAIL_ATTR_UID, offsetof(struct cleanup_sess, uid_attr)},
		{MAIL_ATTR_LOGIN, offsetof(struct cleanup_sess, login)},
	};
	const char *val;
	size_t  i;
	size_t  off;
	size_t  len;

	if (qfile_out_sender(s->qf, s->sender) < 0)
		return (-1);
	for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		val = *(char **) ((char *) s + attrs[i].offset);
		if (val && qfile_out_attr(s->qf, attrs[i].name, val) < 0)
			return (-1);
	}
	if (s->smtputf8 && qfile_out_attr(s->qf, MAIL_ATTR_SMTPUTF8, "1") < 0)
		return (-1);
	if (s->ret && qfile_out_attr(s->qf, MAIL_ATTR_RET, s->ret) < 0)
		return (-1);
	if (s->envid && qfile_out_attr(s->qf, MAIL_ATTR_ENVID, s->envid) < 0)
		return (-1);
	for (off = 0; off < s->rcpts->len; off += len + 1) {
		char   *addr = s->rcpts->data + off;
		char   *tab;

		len = strlen(addr);
		/* "addr\tnotify=...\torcpt=...": the DSN parameters. */
		if ((tab = strchr(addr, '\t')) != NULL)
			*tab++ = 0;
		if (qfile_out_rcpt(s->qf, addr, tab) < 0)
			return (-1);
	}
	/* The envelope is on file; keep no second copy. */
	s->rcpts = strbuf_free(s->rcpts);
	return (0);
}

/* cleanup_env_end - the envelope is complete; -1 if the session ended */
static int
cleanup_env_end(struct cleanup_sess *s)
{
	struct strbuf *err;
	int     saved;

	if (s->sender == NULL || s->nrcpt == 0) {
		log_warn("%s: envelope without %s from client", s->id,
			 s->sender == NULL ? "sender" : "recipients");
		cleanup_session_reply(s, 4, "4.3.0 Error: bad envelope");
		return (-1);
	}
	if (s->status == 5) {
		log_warn("%s: reject: too many recipients; from=<%s>",
			 s->id, s->sender);
		cleanup_session_reply(s, 5, "5.5.3 Error: too many recipients");
		return (-1);
	}
	if (cleanup_local_check(s) < 0)
		return (-1);
	err = strbuf_new(128, 1024);
	if ((s->qf = qfile_create(CLEANUP_QUEUE_DIR, err)) == NULL) {
		saved = errno;
		log_warn("%s: %s", s->id, err->data);
		strbuf_free(err);
		cleanup_session_reply(s, 4, cleanup_write_reason(s->id, saved));
		return (-1);
	}
	strbuf_free(err);
	snprintf(s->id, sizeof(s->id), "%s", qfile_out_id(s->qf));
	cleanup_local_envelope(s);
	if (cleanup_env_write(s) < 0 || cleanup_local_received(s) < 0) {
		saved = errno;
		log_warn("%s: write queue file: %s", s->id, strerror(saved));
		cleanup_session_reply(s, 4, cleanup_write_reason(s->id, saved));
		return (-1);
	}
	s->hdr = hdr_new((size_t) var_header_size_limit);
	s->state = CLEANUP_ST_CONTENT;
	if (cleanup_sess_send(s, 0, s->id) < 0) {
		log_warn("%s: lost connection after envelope", s->id);
		cleanup_sess_free(s);
		return (-1);
	}
	return (0);
}

/* cleanup_sess_input - act on the buffered input; -1 if s is gone */
static int
cleanup_sess_input(struct cleanup_sess *s)
{
	struct attr a;
	size_t  used;
	int     r;

	while (s->state <= CLEANUP_ST_DRAIN) {
		r = attr_next(s->in->data + s->in_off, s->in->len - s->in_off,
			      s->state == CLEANUP_ST_ENVELOPE ?
			      CLEANUP_ENV_VALUE_MAX : CLEANUP_DATA_MAX,
			      &a, &used);
		if (r == ATTR_MORE)
			break;
		if (r == ATTR_BAD)
			goto bad;
		s->in_off += used;
		if (s->state == CLEANUP_ST_ENVELOPE) {
			if (r == ATTR_END && cleanup_env_end(s) < 0)
				return (-1);
			if (r == ATTR_END)
				continue;	/* content may follow */
			if (cleanup_env_attr(s, &a) < 0)
				goto bad;
			continue;
		}
		if (r == ATTR_END) {
			if (s->state == CLEANUP_ST_DRAIN) {
				cleanup_session_reply(s, s->status, s->reason);
				return (-1);
			}
			cleanup_content_end(s);
			return (-1);
		}
		/* smtpd's HOLD and DISCARD, just before the end (ipc.md). */
		if (attr_name_is(&a, MAIL_ATTR_HOLD)
		    || attr_name_is(&a, MAIL_ATTR_DISCARD)) {
			char  **where = attr_name_is(&a, MAIL_ATTR_HOLD) ?
				&s->hold : &s->discard;

			free(*where);
			if ((*where = cleanup_env_value(&a)) == NULL)
				goto bad;
			continue;
		}
		if (!attr_name_is(&a, MAIL_ATTR_DATA))
			goto bad;
		if (s->state == CLEANUP_ST_CONTENT)
			(void) cleanup_content(s, a.value, a.len);
	}
	return (0);

bad:
	log_warn("%s: malformed %s from client", s->id,
		 s->state == CLEANUP_ST_ENVELOPE ? "envelope" : "content");
	cleanup_session_reply(s, 4, "4.3.0 Error: malformed request");
	return (-1);
}

/* cleanup_sess_read_cb - input, end of file or timeout */
static void
cleanup_sess_read_cb(evutil_socket_t unused_fd, short what, void *ctx)
{
	struct cleanup_sess *s = ctx;
	size_t  room;
	size_t  want;
	ssize_t n;

	(void) unused_fd;
	if (what & EV_TIMEOUT) {
		log_warn("%s: timeout while reading %s from client", s->id,
			 s->state == CLEANUP_ST_ENVELOPE ?
			 "envelope" : "content");
		cleanup_session_reply(s, 4, "4.4.2 Error: timeout exceeded");
		return;
	}
	/* Keep the unparsed part at the front; it is at most one value. */
	if (s->in_off > 0) {
		strbuf_consume(s->in, s->in_off);
		s->in_off = 0;
	}
	room = s->in->limit - s->in->len;
	if (room == 0) {
		/* Not reached: at most one value is kept. */
		log_warn("%s: input buffer full", s->id);
		cleanup_session_reply(s, 4, "4.3.0 Error: malformed request");
		return;
	}
	/* Use the memory we have, grow by steps: a value is up to 64 KiB. */
	want = s->in->size - 1 - s->in->len;
	if (want < CLEANUP_READ_MIN)
		want = CLEANUP_READ_MIN;
	if (want > room)
		want = room;
	if (strbuf_reserve(s->in, want) < 0)
		return;					/* not reached */
	n = read(s->fd, s->in->data + s->in->len, want);
	if (n < 0
	    && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		if (s->state == CLEANUP_ST_ENVELOPE && s->in->len == 0)
			log_debug("%s: client closed before envelope", s->id);
		else
			log_warn("%s: lost connection while reading %s%s%s",
				 s->id, s->state == CLEANUP_ST_ENVELOPE ?
				 "envelope" : "content", n < 0 ? ": " : "",
				 n < 0 ? strerror(errno) : "");
		cleanup_sess_free(s);
		return;
	}
	s->in->len += (size_t) n;
	s->in->data[s->in->len] = 0;
	if (cleanup_sess_input(s) < 0)
		return;
	if (s->in_off == s->in->len) {
		strbuf_reset(s->in);
		s->in_off = 0;
	}
}

/* cleanup_sess_write_cb - the socket can take more of the reply */
static void
cleanup_sess_write_cb(evutil_socket_t unused_fd, short what, void *ctx)
{
	struct cleanup_sess *s = ctx;

	(void) unused_fd;
	if ((what & EV_TIMEOUT) || cleanup_sess_flush(s) < 0) {
		log_warn("%s: cannot write reply to client", s->id);
		cleanup_sess_free(s);
		return;
	}
	if (s->out->len == 0 && s->state == CLEANUP_ST_CLOSING)
		cleanup_sess_free(s);
}

/* cleanup_session_accept - a new client */
void
cleanup_session_accept(int fd)
{
	struct cleanup_sess *s;
	struct strbuf *busy;

	if (cleanup_nsessions >= (size_t) var_cleanup_max_sessions) {
		log_warn("NOQUEUE: reject: %lld sessions already open "
			 "(cleanup_max_sessions)", var_cleanup_max_sessions);
		/* One try, no waiting: the reply is small. */
		busy = strbuf_new(128, CLEANUP_OUT_LIMIT);
		if (attr_putl(busy, MAIL_ATTR_STATUS, 4) == 0
		    && attr_puts(busy, MAIL_ATTR_REASON,
			    "4.3.2 Error: too many cleanup sessions") == 0
		    && attr_end(busy) == 0
		    && write(fd, busy->data, busy->len) < 0)
			log_debug("write: %s", strerror(errno));
		strbuf_free(busy);
		(void) close(fd);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->state = CLEANUP_ST_ENVELOPE;
	snprintf(s->id, sizeof(s->id), "NOQUEUE");
	s->in = strbuf_new(CLEANUP_READ_MIN, CLEANUP_IN_LIMIT);
	s->out = strbuf_new(256, CLEANUP_OUT_LIMIT);
	s->rcpts = strbuf_new(256, CLEANUP_ENV_MAX);
	s->declared_size = -1;
	s->rcpt_dsn = CLEANUP_RCPT_NONE;
	cleanup_local_accept(s);
	s->rev = event_new(cleanup_base, fd, EV_READ | EV_PERSIST,
			   cleanup_sess_read_cb, s);
	s->wev = event_new(cleanup_base, fd, EV_WRITE, cleanup_sess_write_cb,
			   s);
	if (s->rev == NULL || s->wev == NULL)
		log_fatal("event_new: out of memory");
	s->next = cleanup_sessions;
	if (cleanup_sessions)
		cleanup_sessions->prev = s;
	cleanup_sessions = s;
	cleanup_nsessions++;
	if (event_add(s->rev, cleanup_timeout_tv()) < 0)
		log_fatal("event_add: %s", strerror(errno));
}

/* cleanup_session_shutdown - SIGTERM: commit what is renamed, drop the rest */
void
cleanup_session_shutdown(void)
{
	cleanup_sync_drain();
	cleanup_commit_run();
	while (cleanup_sessions) {
		if (cleanup_sessions->qf)
			log_info("%s: removed: shutting down",
				 cleanup_sessions->id);
		cleanup_sess_free(cleanup_sessions);
	}
}
