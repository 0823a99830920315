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
 *	delay or expired), then per recipient rcpt, dsn, relay and reply.
 *
 *	It reads the original queue file (lib/qfile.c) for the sender, the
 *	arrival time, ENVID and RET (A records), each recipient's NOTIFY
 *	and ORCPT (R record parameters) and the content. Recipients whose
 *	NOTIFY= excludes this kind of notice are left out; when none is
 *	left no notice goes out. The notice (lib/dsn.c) is submitted from
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
 *	"QUEUEID: postmaster non-delivery notification: NEWID" (double
 *	bounce), "QUEUEID: ... double bounce, discarded", "QUEUEID: no
 *	notification: ..."; warnings for bad requests and cleanup trouble.
 *
 * SEE ALSO
 *	bounce(8), lib/dsn.c, docs/ipc.md
 */

#include <sys/stat.h>
#include <sys/time.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "attr.h"
#include "dsn.h"
#include "log.h"
#include "qfile.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "bounce.h"

/* One request, checked, with the queue file's data. */
struct bounce_req {
	const char *queue_id;
	const char *queue_file;
	int     type;			/* DSN_TYPE_* */
	struct dsn_rcpt *rcpts;		/* to report (after NOTIFY) */
	size_t  nrcpt;
	struct qfile_msg *msg;
	int     ret;			/* DSN_RET_* */
	const char *envid;
	time_t  now;
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
	rp.message_id = msgid;
	rp.boundary = boundary;
	rp.rcpts = rq->rcpts;
	rp.nrcpt = rq->nrcpt;
	rp.content = rq->msg->content ? rq->msg->content->data : "";
	rp.content_len = rq->msg->content ? rq->msg->content->len : 0;
	rp.size_limit = (size_t) var_bounce_size_limit;
	ret = dsn_report_compose(&rp, out);
	free(msgid);
	free(boundary);
	return (ret);
}

/* bounce_req_rcpts - the request's recipients, with NOTIFY applied */
static int
bounce_req_rcpts(const struct attr_list *req, struct bounce_req *rq,
		 size_t *skipped)
{
	const struct qfile_rcpt *qr;
	struct dsn_rcpt *r = NULL;
	char   *notify;
	int     flags;
	int     keep = 0;
	size_t  i;

	*skipped = 0;
	rq->rcpts = xcalloc(req->n + 1, sizeof(*rq->rcpts));
	for (i = 0; i < req->n; i++) {
		const char *name = req->names[i];
		const char *val = req->values[i];

		if (strcmp(name, "rcpt") == 0) {
			if (*val == 0)
				return (-1);
			r = rq->rcpts + rq->nrcpt;
			memset(r, 0, sizeof(*r));
			r->addr = val;
			flags = 0;
			if ((qr = bounce_find_rcpt(rq->msg, val)) != NULL) {
				notify = bounce_param(qr->params, "notify");
				if (notify
				    && dsn_notify_parse(notify, &flags) < 0)
					flags = 0;
				free(notify);
			} else {
				log_warn("%s: bounce request for <%s>, not a "
					 "recipient of the message",
					 rq->queue_id, val);
			}
			keep = dsn_notify_wants(flags, rq->type);
			if (keep)
				rq->nrcpt++;
			else
				++*skipped;
		} else if (strcmp(name, "dsn") == 0
			   || strcmp(name, "relay") == 0
			   || strcmp(name, "reply") == 0) {
			if (r == NULL)
				return (-1);	/* before any rcpt */
			if (!keep)
				continue;
			if (name[0] == 'd')
				r->dsn = val;
			else if (name[1] == 'e' && name[2] == 'l')
				r->relay = val;
			else
				r->reply = val;
		}
	}
	return (r == NULL ? -1 : 0);
}

/* bounce_orcpts - ORCPT of each kept recipient, decoded, from the file */
static void
bounce_orcpts(struct bounce_req *rq, char **orcpts)
{
	const struct qfile_rcpt *qr;
	struct strbuf *dec = strbuf_new(128, 0);
	char   *raw;
	size_t  i;

	for (i = 0; i < rq->nrcpt; i++) {
		orcpts[i] = NULL;
		if ((qr = bounce_find_rcpt(rq->msg, rq->rcpts[i].addr)) != NULL
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

/* bounce_notify - one request */
void
bounce_notify(const struct attr_list *req, struct bounce_result *res)
{
	struct bounce_req rq;
	struct stat st;
	struct strbuf *err;
	const char *type;
	const char *to;
	const char *what;
	const char *ret_attr;
	char  **orcpts = NULL;
	size_t  skipped;
	size_t  i;
	int     flags;
	const char *cp;

	memset(&rq, 0, sizeof(rq));
	memset(res, 0, sizeof(*res));
	rq.now = time(NULL);
	rq.queue_id = attr_list_get(req, "queue_id");
	rq.queue_file = attr_list_get(req, "queue_file");
	type = attr_list_get(req, "type");
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
	err = strbuf_new(128, 1024);
	rq.msg = qfile_read(rq.queue_file, 1, err);
	if (rq.msg == NULL) {
		log_warn("%s: %s", rq.queue_id, err->data);
		bounce_fail(res, 4, "4.3.0 cannot read the queue file");
		strbuf_free(err);
		return;
	}
	strbuf_free(err);
	if ((ret_attr = qfile_msg_attr(rq.msg, "ret")) != NULL)
		rq.ret = dsn_ret_parse(ret_attr) < 0 ? DSN_RET_NONE :
			dsn_ret_parse(ret_attr);
	rq.envid = qfile_msg_attr(rq.msg, "envid");

	if (bounce_req_rcpts(req, &rq, &skipped) < 0) {
		log_warn("%s: malformed bounce request", rq.queue_id);
		bounce_fail(res, 5, "5.5.4 malformed bounce request");
		goto done;
	}
	if (rq.nrcpt == 0) {
		log_info("%s: no %s notification: the recipients asked for "
			 "none (NOTIFY)", rq.queue_id,
			 rq.type == DSN_TYPE_DELAY ? "delay" :
			 "non-delivery");
		goto done;
	}

	/* Who gets it. Never the null sender. */
	if (*rq.msg->sender != 0) {
		to = rq.msg->sender;
		what = rq.type == DSN_TYPE_DELAY ? "sender delay" :
			"sender non-delivery";
	} else if (rq.type == DSN_TYPE_DELAY) {
		log_info("%s: delay notification for a message from <>, "
			 "discarded", rq.queue_id);
		goto done;
	} else if (*var_double_bounce_recipient != 0
		   && !bounce_to_postmaster(&rq)) {
		to = var_double_bounce_recipient;
		what = "postmaster non-delivery";
	} else {
		log_info("%s: undeliverable message from <>: double bounce, "
			 "discarded", rq.queue_id);
		goto done;
	}

	orcpts = xcalloc(rq.nrcpt, sizeof(*orcpts));
	bounce_orcpts(&rq, orcpts);
	/* 8-bit content, UTF-8 address: declare them as the original did. */
	flags = 0;
	if (rq.msg->content)
		for (i = 0; i < rq.msg->content->len; i++)
			if (rq.msg->content->data[i] & 0x80) {
				flags |= BOUNCE_SUBMIT_8BIT;
				break;
			}
	for (cp = to; *cp; cp++)
		if (*cp & 0x80) {
			flags |= BOUNCE_SUBMIT_UTF8 | BOUNCE_SUBMIT_8BIT;
			break;
		}
	if (bounce_cleanup_submit(to, flags, bounce_compose, &rq, res) < 0) {
		log_warn("%s: %s notification to <%s> not sent: %s",
			 rq.queue_id, what, to, res->reason);
		goto done;
	}
	log_info("%s: %s notification: %s", rq.queue_id, what, res->queue_id);

done:
	if (orcpts) {
		for (i = 0; i < rq.nrcpt; i++)
			free(orcpts[i]);
		free(orcpts);
	}
	free(rq.rcpts);
	qfile_msg_free(rq.msg);
}
