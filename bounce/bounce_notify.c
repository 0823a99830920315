/*
 * bounce_notify - turn one bounce request into a notification
 *
 * SYNOPSIS
 *	#include "bounce.h"
 *
 *	void	bounce_notify(const struct attr_list *req,
 *			struct bounce_result *res)
 *
 * DESCRIPTION
 *	bounce_notify() carries out one request of docs/ipc.md "bounce":
 *	queue_id, queue_file (relative to queue_directory), type (failure,
 *	delay, expired or success), then per recipient rcpt, dsn, relay,
 *	reply, offset (of its status byte) and, for success, action.
 *
 *	Exactly once: the queue file is opened read-write and locked
 *	(shared) for the whole request. A recipient whose status byte no
 *	longer holds the owed state (F for failure, - for expired, N for
 *	success) is left out, and a delay notice is not sent when the
 *	history has one. After cleanup has queued the notice, or when none
 *	was needed, the final bytes are set (B, X, D) or a delay record is
 *	appended, before the reply. A request without offsets marks
 *	nothing (an older qmgr does it).
 *
 *	It reads the original queue file (lib/global/qfile.c) for the sender, the
 *	arrival time, ENVID and RET (A records), each recipient's NOTIFY
 *	and ORCPT (R record parameters), the late headers (H records) and
 *	the content, as much as a notice may quote: the late headers and
 *	the content up to one byte over bounce_size_limit (lib/global/dsn.c then
 *	returns the whole message, or only its header section when it is
 *	larger); the rest is read a piece at a time for 8-bit bytes only,
 *	so memory does not grow with the message. Recipients whose
 *	NOTIFY= excludes this kind of notice are left out; when none is
 *	left no notice goes out. The notice (lib/global/dsn.c) is submitted from
 *	the null sender to the original sender through cleanup
 *	(bounce_cleanup.c).
 *
 *	A message from the null sender is itself a notification: a failure
 *	about it (a double bounce) goes to double_bounce_recipient when
 *	that is set, else it is logged and dropped, as is one about a
 *	notice to double_bounce_recipient (no loop); a delay about it is
 *	dropped. Nothing ever goes to the null sender.
 *
 *	"res" says what to reply: status 0 (queue_id of the notice, or ""
 *	when none was needed), 4 (try again later: cleanup unavailable, the
 *	queue file unreadable for now) or 5 (a malformed request, or a
 *	queue file that does not exist or does not parse: retrying cannot
 *	help).
 *
 * DIAGNOSTICS
 *	"QUEUEID: sender non-delivery notification: NEWID",
 *	"QUEUEID: sender delay notification: NEWID",
 *	"QUEUEID: sender delivery status notification: NEWID",
 *	"QUEUEID: postmaster non-delivery notification: NEWID" (double
 *	bounce), "QUEUEID: ... double bounce, discarded", "QUEUEID: no
 *	notification: ...", "QUEUEID: to=<RCPT>: no notice owed (status
 *	C), skipped"; warnings for bad requests, cleanup trouble and a
 *	status byte that cannot be set.
 *
 * SEE ALSO
 *	bounce(8), lib/global/dsn.c, docs/ipc.md
 */

#include <sys/stat.h>
#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "dsn.h"
#include "log.h"
#include "mail_attr.h"
#include "mail_date.h"
#include "qfile.h"
#include "qhist.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "bounce.h"

/* One recipient of the request. */
struct bounce_ent {
	const char *addr;
	const char *dsn;
	const char *relay;
	const char *reply;
	const char *action;		/* success: relayed, delivered */
	off_t   offset;			/* of its status byte; -1: not given */
	int     owed;			/* the byte says a notice is owed */
	const struct qfile_rcpt *qr;	/* its record in the queue file */
};

/* One request, checked, with the queue file's data. */
struct bounce_req {
	const char *queue_id;
	const char *queue_file;
	int     type;			/* DSN_TYPE_* */
	struct bounce_ent *ents;	/* as asked */
	size_t  nent;
	int     marking;		/* offsets given: set the final bytes */
	int     fd;			/* the queue file, locked; -1 */
	struct dsn_rcpt *rcpts;		/* to report (after NOTIFY) */
	size_t  nrcpt;
	struct qfile_msg *msg;		/* the envelope */
	struct strbuf *orig;		/* what a notice may quote */
	int     eight;			/* the original has 8-bit bytes */
	int     ret;			/* DSN_RET_* */
	const char *envid;
	time_t  now;
};

/* Status bytes per kind of notice: owed before, final after. */
static const struct bounce_mark {
	int     type;
	int     from;
	int     to;
}       bounce_marks[] = {
	{DSN_TYPE_FAILURE, QSTAT_FAILED, QSTAT_BOUNCED},
	{DSN_TYPE_EXPIRED, QSTAT_PENDING, QSTAT_EXPIRED},
	{DSN_TYPE_SUCCESS, QSTAT_NOTIFY, QSTAT_SENT},
	{0, 0, 0},
};

/* bounce_path_ok - "queue/[hash/...]ID": no way out of the queue */
static int
bounce_path_ok(const char *path, const char *id)
{
	const char *slash = strchr(path, '/');
	const char *base = strrchr(path, '/');
	char    queue[32];
	const char *cp;

	if (slash == NULL || (size_t) (slash - path) >= sizeof(queue))
		return (0);
	memcpy(queue, path, (size_t) (slash - path));
	queue[slash - path] = 0;
	if (!qfile_queue_valid(queue) || strcmp(base + 1, id) != 0)
		return (0);
	for (cp = slash + 1; *cp; cp++)
		if (!((*cp >= 'a' && *cp <= 'z') || (*cp >= 'A' && *cp <= 'Z')
		      || (*cp >= '0' && *cp <= '9') || *cp == '/')
		    || (cp[0] == '/' && cp[1] == '/'))
			return (0);
	return (1);
}

/* bounce_param - the value of "name" in "n=v\tn=v"; caller frees */
static char *
bounce_param(const char *params, const char *name)
{
	size_t  nlen = strlen(name);
	const char *cp = params;
	size_t  len;

	while (*cp) {
		len = strcspn(cp, "\t");
		if (len > nlen && strncmp(cp, name, nlen) == 0
		    && cp[nlen] == '=')
			return (xstrndup(cp + nlen + 1, len - nlen - 1));
		cp += len;
		if (*cp == '\t')
			cp++;
	}
	return (NULL);
}

/* bounce_find_rcpt - the queue file's record for an address, or NULL */
static const struct qfile_rcpt *
bounce_find_rcpt(const struct qfile_msg *msg, const char *addr)
{
	size_t  i;

	for (i = 0; i < msg->nrcpts; i++)
		if (strcmp(msg->rcpts[i].addr, addr) == 0)
			return (msg->rcpts + i);
	return (NULL);
}

/* bounce_fail - fill a result */
static void
bounce_fail(struct bounce_result *res, int status, const char *reason)
{
	res->status = status;
	res->queue_id[0] = 0;
	snprintf(res->reason, sizeof(res->reason), "%s", reason);
}

/* bounce_compose - the notification, once cleanup gave it an ID */
static int
bounce_compose(const char *new_id, struct strbuf *out, void *ctx)
{
	struct bounce_req *rq = ctx;
	struct dsn_report rp;
	struct tm tm;
	char    stamp[32];
	char    date[MAIL_DATE_SIZE];
	char   *msgid;
	char   *boundary;
	int     ret;

	gmtime_r(&rq->now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	msgid = xmalloc(strlen(stamp) + strlen(new_id)
			+ strlen(var_bounce_myhostname) + 3);
	sprintf(msgid, "%s.%s@%s", stamp, new_id, var_bounce_myhostname);
	boundary = xmalloc(strlen(new_id) + strlen(var_bounce_myhostname)
			   + 32);
	sprintf(boundary, "%s.%lld/%s", new_id, (long long) rq->now,
		var_bounce_myhostname);

	/* The first hop of the notice is here, as for any message. */
	mail_date(date, sizeof(date), rq->now);
	if (strbuf_printf(out, "Received: by %s (Sendarix)\r\n\tid %s; %s\r\n",
			  var_bounce_myhostname, new_id, date) < 0) {
		free(msgid);
		free(boundary);
		return (-1);
	}

	memset(&rp, 0, sizeof(rp));
	rp.type = rq->type;
	rp.myhostname = var_bounce_myhostname;
	rp.queue_id = rq->queue_id;
	rp.sender = rq->msg->sender;
	rp.envid = rq->envid;
	rp.ret = rq->ret;
	rp.arrival = (time_t) rq->msg->arrival_sec;
	rp.now = rq->now;
	if (rq->type == DSN_TYPE_DELAY && var_bounce_queue_lifetime > 0)
		rp.retry_until = rp.arrival + var_bounce_queue_lifetime;
	rp.lifetime = var_bounce_queue_lifetime;
	rp.message_id = msgid;
	rp.boundary = boundary;
	rp.rcpts = rq->rcpts;
	rp.nrcpt = rq->nrcpt;
	rp.content = rq->orig->data;
	rp.content_len = rq->orig->len;
	rp.size_limit = (size_t) var_bounce_size_limit;
	ret = dsn_report_compose(&rp, out);
	free(msgid);
	free(boundary);
	return (ret);
}

/* bounce_offset_parse - a decimal file offset; 0 or -1 */
static int
bounce_offset_parse(const char *val, off_t *offset)
{
	long long v = 0;
	const char *cp;

	if (*val == 0 || strlen(val) > 15 || (val[0] == '0' && val[1] != 0))
		return (-1);
	for (cp = val; *cp; cp++) {
		if (*cp < '0' || *cp > '9')
			return (-1);
		v = v * 10 + (*cp - '0');
	}
	*offset = (off_t) v;
	return (0);
}

/* bounce_req_parse - the request's recipients, as asked; 0 or -1 */
static int
bounce_req_parse(const struct attr_list *req, struct bounce_req *rq)
{
	struct bounce_ent *e = NULL;
	size_t  noffset = 0;
	size_t  i;

	rq->ents = xcalloc(req->n + 1, sizeof(*rq->ents));
	for (i = 0; i < req->n; i++) {
		const char *name = req->names[i];
		const char *val = req->values[i];

		if (strcmp(name, MAIL_ATTR_RCPT) == 0) {
			if (*val == 0)
				return (-1);
			e = rq->ents + rq->nent++;
			e->addr = val;
			e->offset = -1;
			continue;
		}
		if (strcmp(name, MAIL_ATTR_DSN) != 0
		    && strcmp(name, MAIL_ATTR_RELAY) != 0
		    && strcmp(name, MAIL_ATTR_REPLY) != 0
		    && strcmp(name, MAIL_ATTR_OFFSET) != 0
		    && strcmp(name, MAIL_ATTR_ACTION) != 0)
			continue;
		if (e == NULL)
			return (-1);		/* before any rcpt */
		if (strcmp(name, MAIL_ATTR_DSN) == 0) {
			e->dsn = val;
		} else if (strcmp(name, MAIL_ATTR_RELAY) == 0) {
			e->relay = val;
		} else if (strcmp(name, MAIL_ATTR_REPLY) == 0) {
			e->reply = val;
		} else if (strcmp(name, MAIL_ATTR_OFFSET) == 0) {
			if (e->offset >= 0 || bounce_offset_parse(val,
							&e->offset) < 0)
				return (-1);
			noffset++;
		} else {
			if (strcmp(val, "relayed") != 0
			    && strcmp(val, "delivered") != 0)
				return (-1);
			e->action = val;
		}
	}
	/* All recipients with offsets (a qmgr that marks), or none. */
	if (noffset != 0 && noffset != rq->nent)
		return (-1);
	rq->marking = noffset != 0;
	return (rq->nent == 0 ? -1 : 0);
}

/* bounce_find_offset - the record whose status byte is at "offset" */
static const struct qfile_rcpt *
bounce_find_offset(const struct qfile_msg *msg, off_t offset)
{
	size_t  i;

	for (i = 0; i < msg->nrcpts; i++)
		if (msg->rcpts[i].status_offset == offset)
			return (msg->rcpts + i);
	return (NULL);
}

/* bounce_mark_of - the status bytes of this kind of notice, or NULL */
static const struct bounce_mark *
bounce_mark_of(int type)
{
	const struct bounce_mark *m;

	for (m = bounce_marks; m->type != 0; m++)
		if (m->type == type)
			return (m);
	return (NULL);
}

/* bounce_req_owed - match the queue file; keep those still owed a notice */
static int
bounce_req_owed(struct bounce_req *rq)
{
	const struct bounce_mark *m = bounce_mark_of(rq->type);
	struct bounce_ent *e;
	size_t  i;
	size_t  n;
	ssize_t got;
	char    c;

	for (i = n = 0; i < rq->nent; i++) {
		e = rq->ents + i;
		if (!rq->marking) {
			/* An older qmgr: report as asked, mark nothing. */
			if ((e->qr = bounce_find_rcpt(rq->msg, e->addr)) == NULL)
				log_warn("%s: bounce request for <%s>, not a "
					 "recipient of the message",
					 rq->queue_id, e->addr);
			rq->ents[n++] = *e;
			continue;
		}
		e->qr = bounce_find_offset(rq->msg, e->offset);
		if (e->qr == NULL || strcmp(e->qr->addr, e->addr) != 0) {
			log_warn("%s: bounce request: offset %lld is not the "
				 "status of <%s>", rq->queue_id,
				 (long long) e->offset, e->addr);
			return (-1);
		}
		if (m == NULL) {
			/* delay: no byte to check; the history says. */
			rq->ents[n++] = *e;
			continue;
		}
		/* The byte now, under our lock, not the parsed copy. */
		do {
			got = pread(rq->fd, &c, 1, e->offset);
		} while (got < 0 && errno == EINTR);
		if (got != 1)
			return (-1);
		if (c != m->from) {
			log_info("%s: to=<%s>: no notice owed (status %c), "
				 "skipped", rq->queue_id, e->addr, c);
			continue;
		}
		e->owed = 1;
		rq->ents[n++] = *e;
	}
	rq->nent = n;
	return (0);
}

/* bounce_req_rcpts - the recipients to report, with NOTIFY applied */
static void
bounce_req_rcpts(struct bounce_req *rq, size_t *skipped)
{
	const struct bounce_ent *e;
	struct dsn_rcpt *r;
	char   *notify;
	int     flags;
	size_t  i;

	*skipped = 0;
	rq->rcpts = xcalloc(rq->nent + 1, sizeof(*rq->rcpts));
	for (i = 0; i < rq->nent; i++) {
		e = rq->ents + i;
		flags = 0;
		if (e->qr != NULL) {
			notify = bounce_param(e->qr->params, "notify");
			if (notify && dsn_notify_parse(notify, &flags) < 0)
				flags = 0;
			free(notify);
		}
		if (!dsn_notify_wants(flags, rq->type)) {
			++*skipped;
			continue;
		}
		r = rq->rcpts + rq->nrcpt++;
		r->addr = e->addr;
		r->dsn = e->dsn;
		r->relay = e->relay;
		r->reply = e->reply;
		r->action = e->action;
	}
}

/* bounce_orcpts - ORCPT of each kept recipient, decoded, from the file */
static void
bounce_orcpts(struct bounce_req *rq, char **orcpts)
{
	const struct qfile_rcpt *qr;
	struct strbuf *dec = strbuf_new(128, 0);
	char   *raw;
	size_t  i;
	size_t  j;

	for (i = 0; i < rq->nrcpt; i++) {
		orcpts[i] = NULL;
		qr = NULL;
		for (j = 0; j < rq->nent; j++)
			if (rq->ents[j].addr == rq->rcpts[i].addr)
				qr = rq->ents[j].qr;
		if (qr != NULL
		    && (raw = bounce_param(qr->params, "orcpt")) != NULL) {
			/* Stored as xtext (docs/ipc.md); a bad one is left out. */
			if (dsn_orcpt_parse(raw, dec) == 0)
				orcpts[i] = xstrdup(dec->data);
			free(raw);
		}
		rq->rcpts[i].orcpt = orcpts[i];
	}
	strbuf_free(dec);
}

/* bounce_to_postmaster - was this a notice to double_bounce_recipient? */
static int
bounce_to_postmaster(const struct bounce_req *rq)
{
	size_t  i;

	/*
	 * A double bounce that cannot be delivered would make another one,
	 * and so on: a failed notice to double_bounce_recipient ends here.
	 */
	for (i = 0; i < rq->nrcpt; i++)
		if (strcasecmp(rq->rcpts[i].addr,
			       var_double_bounce_recipient) == 0)
			return (1);
	return (0);
}

/* bounce_delay_sent - has a delay notice gone out already (history)? */
static int
bounce_delay_sent(const struct bounce_req *rq)
{
	struct strbuf *err = strbuf_new(128, 1024);
	struct qhist *hist;
	int     sent = 1;		/* unreadable: do not risk a flood */

	if ((hist = qhist_read(".", rq->queue_id, err)) != NULL)
		sent = qhist_has(hist, QHIST_DELAY);
	else
		log_warn("%s: history: %s", rq->queue_id, err->data);
	qhist_free(hist);
	strbuf_free(err);
	return (sent);
}

/* bounce_delay_record - remember that the delay notice is done */
static void
bounce_delay_record(const struct bounce_req *rq)
{
	struct strbuf *err = strbuf_new(128, 1024);
	struct qhist_rec rec;
	char   *path;
	int     fd;

	memset(&rec, 0, sizeof(rec));
	rec.time = (long) rq->now;
	rec.rcpt = "";
	rec.status = QHIST_DELAY;
	rec.reply = "delay notice sent";
	if (qhist_append(".", rq->queue_id, &rec, 1, err) < 0) {
		log_warn("%s: history: %s", rq->queue_id, err->data);
	} else {
		/* The history is advisory, but this record stops a repeat. */
		path = qhist_path(".", rq->queue_id);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0
		    || fsync(fd) < 0)
			log_warn("%s: fsync %s: %s", rq->queue_id, path,
				 strerror(errno));
		if (fd >= 0)
			(void) close(fd);
		free(path);
	}
	strbuf_free(err);
}

/* bounce_mark_done - the notice is queued or not needed: final bytes */
static void
bounce_mark_done(const struct bounce_req *rq)
{
	const struct bounce_mark *m = bounce_mark_of(rq->type);
	const struct bounce_ent *e;
	size_t  i;

	if (rq->type == DSN_TYPE_DELAY) {
		bounce_delay_record(rq);
		return;
	}
	if (!rq->marking || m == NULL)
		return;
	for (i = 0; i < rq->nent; i++) {
		e = rq->ents + i;
		if (e->owed && qfile_mark(rq->fd, e->offset, m->from, m->to) < 0)
			/* Then qmgr asks again, and the sender may get two. */
			log_warn("%s: to=<%s>: cannot set the status byte at "
				 "%lld: %s", rq->queue_id, e->addr,
				 (long long) e->offset, strerror(errno));
	}
}

/* bounce_open - open and lock the queue file; 0, or -1 with res set */
/* bounce_has_8bit - any byte with the top bit set? */
static int
bounce_has_8bit(const char *p, size_t len)
{
	size_t  i;

	for (i = 0; i < len; i++)
		if ((unsigned char) p[i] & 0x80)
			return (1);
	return (0);
}

/*
 * bounce_original - what a notice may quote: the late headers, then the
 * content, up to one byte over bounce_size_limit (which tells lib/global/dsn.c
 * that the whole does not fit); the rest is only looked at for 8-bit
 * bytes, a piece at a time.
 */
static int
bounce_original(struct bounce_req *rq, struct strbuf *err)
{
	char    buf[65536];
	struct qfile_cursor cur;
	size_t  keep = (size_t) var_bounce_size_limit + 1;
	size_t  n;
	ssize_t got;

	rq->orig = strbuf_new(4096, 0);
	if (rq->msg->late)
		(void) strbuf_append(rq->orig, rq->msg->late->data,
				     rq->msg->late->len < keep ?
				     rq->msg->late->len : keep);
	rq->eight = rq->msg->late
		&& bounce_has_8bit(rq->msg->late->data, rq->msg->late->len);
	qfile_content_start(&cur, rq->msg);
	while ((got = qfile_content_read(rq->fd, &cur, buf, sizeof(buf))) > 0) {
		n = keep - rq->orig->len;
		if (n > (size_t) got)
			n = (size_t) got;
		if (n > 0)
			(void) strbuf_append(rq->orig, buf, n);
		if (!rq->eight)
			rq->eight = bounce_has_8bit(buf, (size_t) got);
		if (rq->eight && rq->orig->len >= keep)
			break;			/* nothing more to learn */
	}
	if (got < 0) {
		strbuf_sets(err, "");
		strbuf_printf(err, "read %s: %s", rq->queue_file,
			      strerror(errno));
		return (-1);
	}
	return (0);
}

static int
bounce_open(struct bounce_req *rq, struct bounce_result *res)
{
	struct strbuf *err;

	rq->fd = open(rq->queue_file, (rq->marking ? O_RDWR : O_RDONLY)
		      | O_CLOEXEC);
	if (rq->fd < 0 && errno == ENOENT) {
		/* Gone: no retry brings it back. */
		log_warn("%s: bounce request: no queue file %s", rq->queue_id,
			 rq->queue_file);
		bounce_fail(res, 5, "5.3.0 queue file not found");
		return (-1);
	}
	/* Shared: qmgr's try for an exclusive lock sees us at work. */
	if (rq->fd < 0 || qfile_lock(rq->fd, QFILE_LOCK_SHARED) < 0) {
		log_warn("%s: open %s: %s", rq->queue_id, rq->queue_file,
			 strerror(errno));
		bounce_fail(res, 4, "4.3.0 cannot read the queue file");
		return (-1);
	}
	err = strbuf_new(128, 1024);
	rq->msg = qfile_read_fd(rq->fd, rq->queue_file, QFILE_READ_ENVELOPE,
				err);
	if (rq->msg == NULL || bounce_original(rq, err) < 0) {
		log_warn("%s: %s", rq->queue_id, err->data);
		bounce_fail(res, 4, "4.3.0 cannot read the queue file");
		strbuf_free(err);
		return (-1);
	}
	strbuf_free(err);
	return (0);
}

/* bounce_what - the kind of notice, for the log */
static const char *
bounce_what(int type)
{
	switch (type) {
	case DSN_TYPE_DELAY:
		return ("delay");
	case DSN_TYPE_SUCCESS:
		return ("delivery status");
	default:
		return ("non-delivery");
	}
}

/* bounce_notify - one request */
void
bounce_notify(const struct attr_list *req, struct bounce_result *res)
{
	struct bounce_req rq;
	struct stat st;
	const char *type;
	const char *to;
	const char *ret_attr;
	char    what[64];
	char  **orcpts = NULL;
	size_t  skipped;
	size_t  i;
	int     flags;
	const char *cp;

	memset(&rq, 0, sizeof(rq));
	memset(res, 0, sizeof(*res));
	rq.fd = -1;
	rq.now = time(NULL);
	rq.queue_id = attr_list_get(req, MAIL_ATTR_QUEUE_ID);
	rq.queue_file = attr_list_get(req, MAIL_ATTR_QUEUE_FILE);
	type = attr_list_get(req, MAIL_ATTR_TYPE);
	if (rq.queue_id == NULL || !qfile_id_valid(rq.queue_id)
	    || rq.queue_file == NULL
	    || !bounce_path_ok(rq.queue_file, rq.queue_id)
	    || type == NULL || (rq.type = dsn_type_parse(type)) < 0) {
		log_warn("%s: malformed bounce request",
			 rq.queue_id && qfile_id_valid(rq.queue_id) ?
			 rq.queue_id : "NOQUEUE");
		bounce_fail(res, 5, "5.5.4 malformed bounce request");
		return;
	}
	if (stat(rq.queue_file, &st) < 0 && errno == ENOENT) {
		/* Gone: no retry brings it back. */
		log_warn("%s: bounce request: no queue file %s", rq.queue_id,
			 rq.queue_file);
		bounce_fail(res, 5, "5.3.0 queue file not found");
		return;
	}
	if (bounce_req_parse(req, &rq) < 0) {
		log_warn("%s: malformed bounce request", rq.queue_id);
		bounce_fail(res, 5, "5.5.4 malformed bounce request");
		goto done;
	}
	if (bounce_open(&rq, res) < 0)
		goto done;
	if ((ret_attr = qfile_msg_attr(rq.msg, MAIL_ATTR_RET)) != NULL)
		rq.ret = dsn_ret_parse(ret_attr) < 0 ? DSN_RET_NONE :
			dsn_ret_parse(ret_attr);
	rq.envid = qfile_msg_attr(rq.msg, MAIL_ATTR_ENVID);

	/* Exactly once: only what is still owed (docs/ipc.md "bounce"). */
	if (bounce_req_owed(&rq) < 0) {
		log_warn("%s: malformed bounce request", rq.queue_id);
		bounce_fail(res, 5, "5.5.4 malformed bounce request");
		goto done;
	}
	if (rq.nent == 0) {
		log_info("%s: no %s notification: sent before", rq.queue_id,
			 bounce_what(rq.type));
		goto done;
	}
	if (rq.type == DSN_TYPE_DELAY && bounce_delay_sent(&rq)) {
		log_info("%s: no delay notification: sent before",
			 rq.queue_id);
		goto done;
	}
	bounce_req_rcpts(&rq, &skipped);
	if (rq.nrcpt == 0) {
		log_info("%s: no %s notification: the recipients asked for "
			 "none (NOTIFY)", rq.queue_id, bounce_what(rq.type));
		bounce_mark_done(&rq);
		goto done;
	}

	/* Who gets it. Never the null sender. */
	if (*rq.msg->sender != 0) {
		to = rq.msg->sender;
		snprintf(what, sizeof(what), "sender %s",
			 bounce_what(rq.type));
	} else if (rq.type == DSN_TYPE_DELAY || rq.type == DSN_TYPE_SUCCESS) {
		log_info("%s: %s notification for a message from <>, "
			 "discarded", rq.queue_id, bounce_what(rq.type));
		bounce_mark_done(&rq);
		goto done;
	} else if (*var_double_bounce_recipient != 0
		   && !bounce_to_postmaster(&rq)) {
		to = var_double_bounce_recipient;
		snprintf(what, sizeof(what), "postmaster non-delivery");
	} else {
		log_info("%s: undeliverable message from <>: double bounce, "
			 "discarded", rq.queue_id);
		bounce_mark_done(&rq);
		goto done;
	}

	orcpts = xcalloc(rq.nrcpt, sizeof(*orcpts));
	bounce_orcpts(&rq, orcpts);
	/* 8-bit content, UTF-8 address: declare them as the original did. */
	flags = rq.eight ? BOUNCE_SUBMIT_8BIT : 0;
	for (cp = to; *cp; cp++)
		if (*cp & 0x80) {
			flags |= BOUNCE_SUBMIT_UTF8 | BOUNCE_SUBMIT_8BIT;
			break;
		}
	if (bounce_cleanup_submit(to, flags, bounce_compose, &rq, res) < 0) {
		/* Nothing marked: the recipients still owe the notice. */
		log_warn("%s: %s notification to <%s> not sent: %s",
			 rq.queue_id, what, to, res->reason);
		goto done;
	}
	/* Queued in incoming/: only now are the recipients notified. */
	bounce_mark_done(&rq);
	log_info("%s: %s notification: %s", rq.queue_id, what, res->queue_id);

done:
	if (orcpts) {
		for (i = 0; i < rq.nrcpt; i++)
			free(orcpts[i]);
		free(orcpts);
	}
	if (rq.fd >= 0)
		(void) close(rq.fd);		/* and the lock */
	free(rq.rcpts);
	free(rq.ents);
	qfile_msg_free(rq.msg);
	strbuf_free(rq.orig);
}
