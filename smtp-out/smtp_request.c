/*
 * smtp_request - the qmgr side of smtp-out: requests, results, log lines
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	void	smtp_request_accept(int fd)
 *	size_t	smtp_request_count(void)
 *	void	smtp_request_shutdown(void)
 *	void	smtp_request_done(struct smtp_req *req)
 *	void	smtp_rcpt_set(struct smtp_req *req, size_t i, int status,
 *			const char *dsn, const char *relay, const char *reply)
 *	double	smtp_now(void)
 *
 * DESCRIPTION
 *	smtp_request_accept() takes one connection from qmgr and reads one
 *	request (docs/ipc.md "smtp-out") within smtp_request_timeout. A
 *	well-formed request is checked, its queue file read (all but the
 *	content, which smtp_content_fill() reads as it goes out), and the
 *	delivery started (smtp_nexthop_start()). A
 *	queue file that cannot be read defers every recipient (4.3.0).
 *
 *	smtp_rcpt_set() records the outcome of one recipient (the strings
 *	are copied). A final outcome is recorded in the queue file at once,
 *	before anything else happens, when qmgr gave the recipient's status
 *	byte offset: delivered becomes QSTAT_SENT, or QSTAT_NOTIFY when the
 *	recipient asked for NOTIFY=SUCCESS and the next hop does not speak
 *	DSN (a "relayed" notice is owed); bounced becomes QSTAT_FAILED, after
 *	the reply went into the message's history so that bounce can quote
 *	it. A qmgr that dies before it hears the reply, or a reload, then
 *	never sends the recipient again (docs/decisions.md "Exactly once").
 *	The request holds a shared lock on the queue file from start to end
 *	(qfile_lock()). smtp_request_done() ends the delivery: recipients
 *	without a result get the last soft failure (deferred), else the
 *	last hard failure (bounced), else a generic deferral; it logs one
 *	line per recipient and writes the reply, then closes the connection
 *	once the reply is out. The caller has let go of the session and of
 *	any DNS request before it calls smtp_request_done().
 *
 *	smtp_request_count() is the number of requests in progress;
 *	smtp_request_shutdown() drops them all (SIGTERM).
 *	smtp_now() is the wall clock in seconds.
 *
 * MEMORY
 *	A request owns its strings, message and results; it is freed when
 *	its reply is written, when qmgr goes away, or at shutdown.
 *
 * DIAGNOSTICS
 *	A malformed request, one over SMTP_REQUEST_LIMIT bytes, or a qmgr
 *	that does not send it in time: a warning, and the connection is
 *	closed without a reply.
 *
 * SEE ALSO
 *	docs/ipc.md, qmgr(8)
 */

#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "attr.h"
#include "log.h"
#include "mail_attr.h"
#include "mta_sts.h"
#include "qfile.h"
#include "qhist.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtp-out.h"

static struct smtp_req *smtp_requests;
static size_t smtp_nrequests;

/* smtp_now - wall clock, seconds */
double
smtp_now(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return ((double) tv.tv_sec + (double) tv.tv_usec / 1e6);
}

/* smtp_request_count - requests in progress */
size_t
smtp_request_count(void)
{
	return (smtp_nrequests);
}

/* smtp_request_free - the request and everything it holds */
static void
smtp_request_free(struct smtp_req *req)
{
	size_t  i;

	if (req->sess) {
		req->sess->req = NULL;
		smtp_conn_free(req->sess);
		req->sess = NULL;
	}
	dns_cancel(req->dns);
	dns_result_free(req->addrs);
	smtp_sts_cancel(req->sts_job);
	mta_sts_free(req->sts);
	smtp_dane_free(req);
	if (req->bev)
		bufferevent_free(req->bev);
	if (req->timer)
		event_free(req->timer);
	for (i = 0; i < req->nrcpt; i++) {
		xfree(req->rcpts[i].addr);
		xfree(req->rcpts[i].orcpt);
		xfree(req->rcpts[i].notify);
		xfree(req->rcpts[i].relay);
		xfree(req->rcpts[i].reply);
		xfree(req->rcpts[i].tls);
	}
	xfree(req->rcpts);
	xfree(req->queue_id);
	xfree(req->queue_file);
	xfree(req->nexthop);
	xfree(req->sender);
	xfree(req->ret);
	xfree(req->envid);
	qfile_msg_free(req->msg);
	if (req->qfd >= 0)
		(void) close(req->qfd);
	smtp_dest_free(req->dests, req->ndest);
	smtp_fail_clear(&req->temp);
	smtp_fail_clear(&req->perm);
	smtp_tls_policy_free(&req->tls);
	xfree(req->cache_key);
	if (req->prev)
		req->prev->next = req->next;
	else
		smtp_requests = req->next;
	if (req->next)
		req->next->prev = req->prev;
	smtp_nrequests--;
	xfree(req);
	server_session_done();
}

/* smtp_request_shutdown - drop every request */
void
smtp_request_shutdown(void)
{
	while (smtp_requests)
		smtp_request_free(smtp_requests);
}

/* smtp_rcpt_notify_success - did the recipient ask for NOTIFY=SUCCESS? */
static int
smtp_rcpt_notify_success(const struct smtp_rcpt *r)
{
	return (strcasestr(r->notify, "SUCCESS") != NULL);
}

/* smtp_rcpt_record - a final outcome goes into the queue file first */
static void
smtp_rcpt_record(struct smtp_req *req, struct smtp_rcpt *r)
{
	struct qhist_rec rec;
	struct strbuf *err;
	int     to;

	if (req->qfd < 0 || r->offset < 0)
		return;
	if (r->status == SMTP_RCPT_SENT) {
		to = smtp_rcpt_notify_success(r) && !(req->sess
				  && (req->sess->feat & SMTP_FEAT_DSN)) ?
			QSTAT_NOTIFY : QSTAT_SENT;
	} else if (r->status == SMTP_RCPT_BOUNCED) {
		to = QSTAT_FAILED;
	} else {
		return;
	}
	/* The words a notice will quote, before the byte that owes it. */
	if (to != QSTAT_SENT) {
		memset(&rec, 0, sizeof(rec));
		rec.time = (long) time(NULL);
		rec.rcpt = r->addr;
		rec.status = to == QSTAT_FAILED ? QHIST_BOUNCED : QHIST_SENT;
		rec.dsn = r->dsn;
		rec.relay = r->relay;
		rec.reply = r->reply;
		err = strbuf_new(128, 0);
		if (qhist_append(".", req->queue_id, &rec, 1, err) < 0)
			log_warn("%s: history: %s", req->queue_id, err->data);
		strbuf_free(err);
	}
	if (qfile_mark(req->qfd, r->offset, QSTAT_PENDING, to) < 0)
		log_warn("%s: cannot record the outcome for <%s> in %s: %s",
			 req->queue_id, r->addr, req->queue_file,
			 strerror(errno));
}

/* smtp_rcpt_set - the outcome of one recipient */
void
smtp_rcpt_set(struct smtp_req *req, size_t i, int status, const char *dsn,
	      const char *relay, const char *reply)
{
	struct smtp_rcpt *r = &req->rcpts[i];

	r->status = status;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	xfree(r->relay);
	r->relay = xstrdup(relay ? relay : "none");
	xfree(r->reply);
	r->reply = xstrdup(reply ? reply : "");
	xfree(r->tls);
	r->tls = xstrdup(req->sess && req->sess->tls_field ?
			 req->sess->tls_field : "none");
	smtp_rcpt_record(req, r);
}

/* smtp_delay_fmt - a delay the way Postfix logs it */
static const char *
smtp_delay_fmt(char *buf, size_t size, double d)
{
	char   *p;

	if (d < 0.005)
		return ("0");
	if (d < 1)
		snprintf(buf, size, "%.2f", d);
	else if (d < 10)
		snprintf(buf, size, "%.1f", d);
	else
		snprintf(buf, size, "%.0f", d);
	if (strchr(buf, '.')) {
		p = buf + strlen(buf) - 1;
		while (*p == '0')
			*p-- = 0;
		if (*p == '.')
			*p = 0;
	}
	return (buf);
}

/* smtp_request_log - one Postfix-shaped line per recipient */
static void
smtp_request_log(struct smtp_req *req)
{
	static const char *const names[] = {
		"deferred", "deferred", "sent", "deferred", "bounced",
	};
	char    b0[32], b1[32], b2[32], b3[32], b4[32];
	double  recv = req->t_recv;
	double  conn = req->t_conn ? req->t_conn : req->t_done;
	double  a, b, c, d;
	size_t  i;

	if (req->arrival <= 0 || req->arrival > req->t_done)
		req->arrival = recv;
	if (req->active < req->arrival || req->active > recv)
		req->active = req->arrival;
	a = req->active - req->arrival;
	b = recv - req->active;
	c = conn - recv;
	d = req->t_done - conn;
	for (i = 0; i < req->nrcpt; i++) {
		struct smtp_rcpt *r = &req->rcpts[i];

		log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, "
			 "dsn=%s, status=%s (%s), tls=%s", req->queue_id, r->addr,
			 r->relay, smtp_delay_fmt(b0, sizeof(b0),
						  req->t_done - req->arrival),
			 smtp_delay_fmt(b1, sizeof(b1), a),
			 smtp_delay_fmt(b2, sizeof(b2), b),
			 smtp_delay_fmt(b3, sizeof(b3), c),
			 smtp_delay_fmt(b4, sizeof(b4), d), r->dsn,
			 names[r->status], r->reply, r->tls ? r->tls : "none");
	}
}

/* smtp_request_write_cb - the reply is out: done */
static void
smtp_request_write_cb(struct bufferevent *bev, void *ctx)
{
	struct smtp_req *req = ctx;

	if (req->state == SMTP_REQ_REPLY
	    && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		smtp_request_free(req);
}

/* smtp_request_done - settle every recipient, log, reply */
void
smtp_request_done(struct smtp_req *req)
{
	static const char *const names[] = {
		"deferred", "deferred", "sent", "deferred", "bounced",
	};
	struct smtp_fail *f;
	struct strbuf *out;
	struct timeval tv;
	size_t  i;

	req->t_done = smtp_now();
	f = req->temp.set ? &req->temp : req->perm.set ? &req->perm : NULL;
	for (i = 0; i < req->nrcpt; i++) {
		if (SMTP_RCPT_FINAL(req->rcpts[i].status))
			continue;
		if (f)
			smtp_rcpt_set(req, i, f == &req->temp ?
				      SMTP_RCPT_DEFERRED : SMTP_RCPT_BOUNCED,
				      f->dsn, f->relay, f->reply);
		else
			smtp_rcpt_set(req, i, SMTP_RCPT_DEFERRED, "4.4.0",
				      NULL, "delivery failed for an unknown "
				      "reason");
	}
	smtp_request_log(req);

	out = strbuf_new(1024, 0);
	attr_putl(out, MAIL_ATTR_COUNT, (long long) req->nrcpt);
	for (i = 0; i < req->nrcpt; i++) {
		attr_puts(out, MAIL_ATTR_STATUS, names[req->rcpts[i].status]);
		attr_puts(out, MAIL_ATTR_DSN, req->rcpts[i].dsn);
		attr_puts(out, MAIL_ATTR_RELAY, req->rcpts[i].relay);
		attr_puts(out, MAIL_ATTR_REPLY, req->rcpts[i].reply);
	}
	attr_end(out);
	req->state = SMTP_REQ_REPLY;
	bufferevent_write(req->bev, out->data, out->len);
	strbuf_free(out);
	bufferevent_enable(req->bev, EV_WRITE);
	tv.tv_sec = smtp_var.request_timeout;
	tv.tv_usec = 0;
	evtimer_add(req->timer, &tv);
}

/* smtp_request_bad - a request we cannot serve: log and hang up */
static int
smtp_request_bad(struct smtp_req *req, const char *why)
{
	log_warn("%s%sbad request from qmgr: %s", req->queue_id,
		 *req->queue_id ? ": " : "", why);
	smtp_request_free(req);
	return (-1);
}

/* smtp_request_time - "seconds.micro" as a double; 0 when bad */
static double
smtp_request_time(const char *s)
{
	char   *end;
	double  d;

	if (s == NULL || *s == 0)
		return (0);
	errno = 0;
	d = strtod(s, &end);
	if (errno || *end != 0 || d < 0)
		return (0);
	return (d);
}

/* smtp_request_path_ok - a queue-relative path ending in a queue ID */
static int
smtp_request_path_ok(const char *path)
{
	const char *p;
	const char *base;

	if (*path == 0 || *path == '/')
		return (0);
	for (p = path; *p; p++)
		if (*p == '.' && (p == path || p[-1] == '/')
		    && (p[1] == '.' || p[1] == '/' || p[1] == 0))
			return (0);
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	return (qfile_id_valid(base));
}

/* smtp_request_addr_ok - no byte that could break a command line */
static int
smtp_request_addr_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == 0x7f || *s == '<'
		    || *s == '>')
			return (0);
	return (1);
}

/* smtp_request_start - a whole request: check it and deliver */
static int
smtp_request_start(struct smtp_req *req, struct attr_list *list)
{
	struct strbuf *err;
	const char *v;
	size_t  i;
	size_t  nrcpt = 0;
	size_t  norcpt = 0;
	size_t  nnotify = 0;
	size_t  noffset = 0;

	if ((v = attr_list_get(list, MAIL_ATTR_QUEUE_ID)) == NULL
	    || !qfile_id_valid(v))
		return (smtp_request_bad(req, "missing or bad queue_id"));
	xfree(req->queue_id);
	req->queue_id = xstrdup(v);
	if ((v = attr_list_get(list, MAIL_ATTR_QUEUE_FILE)) == NULL
	    || !smtp_request_path_ok(v))
		return (smtp_request_bad(req, "missing or bad queue_file"));
	req->queue_file = xstrdup(v);
	if ((v = attr_list_get(list, MAIL_ATTR_NEXTHOP)) == NULL)
		return (smtp_request_bad(req, "missing nexthop"));
	req->nexthop = xstrdup(v);
	if ((v = attr_list_get(list, MAIL_ATTR_SENDER)) == NULL)
		return (smtp_request_bad(req, "missing sender"));
	req->sender = xstrdup(v);
	req->ret = xstrdup((v = attr_list_get(list, MAIL_ATTR_RET)) ? v : "");
	v = attr_list_get(list, MAIL_ATTR_ENVID);
	req->envid = xstrdup(v ? v : "");
	req->arrival =
		smtp_request_time(attr_list_get(list, MAIL_ATTR_ARRIVAL));
	req->active = smtp_request_time(attr_list_get(list, MAIL_ATTR_ACTIVE));

	for (i = 0; i < list->n; i++)
		if (strcmp(list->names[i], MAIL_ATTR_RCPT) == 0)
			nrcpt++;
	if (nrcpt == 0)
		return (smtp_request_bad(req, "no rcpt"));
	req->rcpts = xcalloc(nrcpt, sizeof(*req->rcpts));
	for (i = 0; i < list->n; i++) {
		if (strlen(list->values[i]) != list->lens[i])
			return (smtp_request_bad(req, "NUL byte in a value"));
		if (strcmp(list->names[i], MAIL_ATTR_RCPT) == 0) {
			req->rcpts[req->nrcpt].addr = xstrdup(list->values[i]);
			req->rcpts[req->nrcpt].orcpt = xstrdup("");
			req->rcpts[req->nrcpt].notify = xstrdup("");
			req->rcpts[req->nrcpt].offset = -1;
			req->nrcpt++;
		} else if (strcmp(list->names[i], MAIL_ATTR_ORCPT) == 0) {
			if (norcpt >= nrcpt)
				return (smtp_request_bad(req,
							 "too many orcpt"));
			xfree(req->rcpts[norcpt].orcpt);
			req->rcpts[norcpt++].orcpt = xstrdup(list->values[i]);
		} else if (strcmp(list->names[i], MAIL_ATTR_NOTIFY) == 0) {
			if (nnotify >= nrcpt)
				return (smtp_request_bad(req,
							 "too many notify"));
			xfree(req->rcpts[nnotify].notify);
			req->rcpts[nnotify++].notify = xstrdup(list->values[i]);
		} else if (strcmp(list->names[i], MAIL_ATTR_OFFSET) == 0) {
			char   *end;
			long long off;

			if (noffset >= nrcpt)
				return (smtp_request_bad(req,
							 "too many offset"));
			errno = 0;
			off = strtoll(list->values[i], &end, 10);
			if (errno || *end || end == list->values[i] || off <= 0)
				return (smtp_request_bad(req, "bad offset"));
			req->rcpts[noffset++].offset = (off_t) off;
		}
	}
	req->t_recv = smtp_now();
	req->state = SMTP_REQ_DELIVER;
	evtimer_del(req->timer);
	bufferevent_disable(req->bev, EV_READ);

	/*
	 * The queue file, locked shared while we work on it: a qmgr that
	 * starts after a crash or a reload sees the lock and leaves the
	 * message alone until we are done.
	 */
	if ((req->qfd = open(req->queue_file, O_RDWR | O_CLOEXEC)) < 0
	    || qfile_lock(req->qfd, QFILE_LOCK_SHARED) < 0) {
		log_warn("%s: cannot open queue file %s: %s", req->queue_id,
			 req->queue_file, strerror(errno));
		if (req->qfd >= 0)
			(void) close(req->qfd);
		req->qfd = -1;
		smtp_fail_set(&req->temp, "4.3.0", NULL,
			      "cannot read the queue file");
		smtp_request_done(req);
		return (0);
	}

	/* Addresses that could smuggle commands never reach the wire. */
	if (!smtp_request_addr_ok(req->sender)) {
		for (i = 0; i < req->nrcpt; i++)
			smtp_rcpt_set(req, i, SMTP_RCPT_BOUNCED, "5.1.7", NULL,
				      "bad sender address syntax");
		smtp_request_done(req);
		return (0);
	}
	for (i = 0; i < req->nrcpt; i++)
		if (!smtp_request_addr_ok(req->rcpts[i].addr))
			smtp_rcpt_set(req, i, SMTP_RCPT_BOUNCED, "5.1.3", NULL,
				      "bad recipient address syntax");

	/*
	 * The envelope and the late headers; the content stays on disk and
	 * goes out a piece at a time (smtp_content_fill()).
	 */
	err = strbuf_new(256, 0);
	req->msg = qfile_read_fd(req->qfd, req->queue_file,
				 QFILE_READ_ENVELOPE, err);
	if (req->msg == NULL) {
		log_warn("%s: cannot read queue file %s: %s", req->queue_id,
			 req->queue_file, err->len ? err->data :
			 strerror(errno));
		smtp_fail_set(&req->temp, "4.3.0", NULL,
			      "cannot read the queue file");
		strbuf_free(err);
		smtp_request_done(req);
		return (0);
	}
	strbuf_free(err);
	v = qfile_msg_attr(req->msg, MAIL_ATTR_BODY);
	req->body_8bit = (v && strcasecmp(v, "8BITMIME") == 0);
	v = qfile_msg_attr(req->msg, MAIL_ATTR_SMTPUTF8);
	req->smtputf8 = (v && strcmp(v, "1") == 0);
	smtp_nexthop_start(req);
	return (0);
}

/* smtp_request_read_cb - more of the request */
static void
smtp_request_read_cb(struct bufferevent *bev, void *ctx)
{
	struct smtp_req *req = ctx;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct attr_list list;
	size_t  len = evbuffer_get_length(in);
	size_t  used = 0;
	int     ret;

	if (req->state != SMTP_REQ_READ) {
		evbuffer_drain(in, len);
		return;
	}
	memset(&list, 0, sizeof(list));
	ret = attr_list_parse((const char *) evbuffer_pullup(in, -1), len,
			      0, &list, &used);
	if (ret == 0) {
		if (len > SMTP_REQUEST_LIMIT)
			smtp_request_bad(req, "request too long");
		return;
	}
	if (ret < 0) {
		attr_list_clear(&list);
		smtp_request_bad(req, "malformed attribute list");
		return;
	}
	evbuffer_drain(in, used);
	(void) smtp_request_start(req, &list);
	attr_list_clear(&list);
}

/* smtp_request_event_cb - qmgr went away, or an error */
static void
smtp_request_event_cb(struct bufferevent *unused_bev, short what, void *ctx)
{
	struct smtp_req *req = ctx;

	(void) unused_bev;
	if (req->state == SMTP_REQ_READ && (what & BEV_EVENT_EOF)
	    && evbuffer_get_length(bufferevent_get_input(req->bev)) == 0) {
		/* A connection without a request: a probe. */
		smtp_request_free(req);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		log_warn("%s%slost connection with qmgr%s", req->queue_id,
			 *req->queue_id ? ": " : "",
			 req->state == SMTP_REQ_REPLY ? " before the reply" :
			 req->state == SMTP_REQ_READ ? " in the request" : "");
		smtp_request_free(req);
	}
}

/* smtp_request_timer_cb - qmgr is too slow */
static void
smtp_request_timer_cb(evutil_socket_t unused_fd, short unused_what,
		      void *ctx)
{
	struct smtp_req *req = ctx;

	(void) unused_fd;
	(void) unused_what;
	log_warn("%s%stimeout %s qmgr", req->queue_id,
		 *req->queue_id ? ": " : "",
		 req->state == SMTP_REQ_READ ? "reading the request from" :
		 "writing the reply to");
	smtp_request_free(req);
}

/* smtp_request_accept - a new connection from qmgr */
void
smtp_request_accept(int fd)
{
	struct smtp_req *req;
	struct timeval tv;

	req = xcalloc(1, sizeof(*req));
	req->qfd = -1;
	req->queue_id = xstrdup("");
	req->bev = bufferevent_socket_new(server_base(), fd,
					  BEV_OPT_CLOSE_ON_FREE);
	if (req->bev == NULL) {
		log_warn("cannot make a buffer for a qmgr connection");
		close(fd);
		xfree(req->queue_id);
		xfree(req);
		return;
	}
	req->timer = evtimer_new(server_base(), smtp_request_timer_cb, req);
	bufferevent_setcb(req->bev, smtp_request_read_cb,
			  smtp_request_write_cb, smtp_request_event_cb, req);
	/*
	 * Nothing to write until the reply (smtp_request_done() turns
	 * writing on): watching an empty output for EPOLLOUT only costs
	 * two epoll_ctl calls and a wake-up.
	 */
	bufferevent_disable(req->bev, EV_WRITE);
	bufferevent_enable(req->bev, EV_READ);
	tv.tv_sec = smtp_var.request_timeout;
	tv.tv_usec = 0;
	evtimer_add(req->timer, &tv);
	req->next = smtp_requests;
	if (smtp_requests)
		smtp_requests->prev = req;
	smtp_requests = req;
	smtp_nrequests++;
}
