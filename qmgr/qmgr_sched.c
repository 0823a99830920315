/*
 * qmgr_sched - destinations, concurrency, round robin and dispatch
 *
 * SYNOPSIS
 *	#include "qmgr.h"
 *
 *	void	qmgr_sched_add(struct qmgr_msg *msg, const char *nexthop,
 *			size_t n, const size_t *rcpt)
 *	void	qmgr_sched_run(void)
 *	size_t	qmgr_sched_inflight(void)
 *	void	qmgr_sched_shutdown(void)
 *
 * DESCRIPTION
 *	A destination is one nexthop string (a domain, "[host]:port" or a
 *	relayhost list). Each has a FIFO of delivery requests; a request is
 *	one message's recipients for that nexthop, at most
 *	smtp_destination_recipient_limit of them.
 *
 *	qmgr_sched_add() queues the recipients "rcpt" (indexes into
 *	msg->rcpts) of "msg" for "nexthop", split into requests, and counts
 *	them in msg->nentries. It does not start deliveries.
 *
 *	qmgr_sched_run() starts deliveries while fewer than
 *	qmgr_delivery_concurrency_limit are in flight: it takes the
 *	destination at the head of a ring of destinations with work, starts
 *	its oldest request when it has fewer than
 *	default_destination_concurrency_limit in flight, and puts it at the
 *	tail of the ring. So every destination gets its turn in order, and
 *	one slow destination only ever holds its own concurrency slots. A
 *	destination at its limit leaves the ring until one of its requests
 *	ends.
 *
 *	A request goes to smtp-out over private/smtp (see
 *	docs/ipc.md) with a deadline of qmgr_delivery_timeout. The reply is
 *	handed to qmgr_msg_result(); a request that could not be made or
 *	had no valid reply defers its recipients with "4.3.0 mail transport
 *	unavailable". A destination with no work and nothing in flight is
 *	freed.
 *
 *	qmgr_sched_inflight() is the number of requests in flight.
 *
 * DIAGNOSTICS
 *	A failed request: a warning with the queue ID and the reason.
 *
 * SEE ALSO
 *	docs/ipc.md "smtp-out", qmgr(8)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "log.h"
#include "mail_attr.h"
#include "server.h"
#include "strbuf.h"
#include "strhash.h"
#include "xmalloc.h"

#include "qmgr.h"

#define QMGR_DEST_HASH	4096

static struct qmgr_dest *qmgr_dest_hash[QMGR_DEST_HASH];
static struct qmgr_dest_ring qmgr_ring = TAILQ_HEAD_INITIALIZER(qmgr_ring);
static size_t qmgr_inflight;

/* qmgr_dest_hashval - FNV-1a of the nexthop */
static size_t
qmgr_dest_hashval(const char *s)
{
	return (strhash(s) % QMGR_DEST_HASH);
}

/* qmgr_dest_get - find or make a destination */
static struct qmgr_dest *
qmgr_dest_get(const char *nexthop)
{
	size_t  h = qmgr_dest_hashval(nexthop);
	struct qmgr_dest *d;

	for (d = qmgr_dest_hash[h]; d; d = d->hnext)
		if (strcmp(d->nexthop, nexthop) == 0)
			return (d);
	d = xcalloc(1, sizeof(*d));
	d->nexthop = xstrdup(nexthop);
	TAILQ_INIT(&d->todo);
	d->hnext = qmgr_dest_hash[h];
	qmgr_dest_hash[h] = d;
	return (d);
}

/* qmgr_dest_maybe_free - forget an idle destination */
static void
qmgr_dest_maybe_free(struct qmgr_dest *d)
{
	struct qmgr_dest **pp;

	if (d->active > 0 || !TAILQ_EMPTY(&d->todo))
		return;
	if (d->in_ring) {
		TAILQ_REMOVE(&qmgr_ring, d, ring);
		d->in_ring = 0;
	}
	for (pp = &qmgr_dest_hash[qmgr_dest_hashval(d->nexthop)]; *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == d) {
			*pp = d->hnext;
			break;
		}
	}
	free(d->nexthop);
	free(d);
}

/* qmgr_dest_ring_add - give a destination with work its turn */
static void
qmgr_dest_ring_add(struct qmgr_dest *d)
{
	if (!d->in_ring && !TAILQ_EMPTY(&d->todo)
	    && d->active < var_dest_concurrency) {
		TAILQ_INSERT_TAIL(&qmgr_ring, d, ring);
		d->in_ring = 1;
	}
}

/* qmgr_sched_add - queue a message's recipients for one nexthop */
void
qmgr_sched_add(struct qmgr_msg *msg, const char *nexthop, size_t n,
	       const size_t *rcpt)
{
	struct qmgr_dest *d = qmgr_dest_get(nexthop);
	struct qmgr_entry *e;
	size_t  limit = var_rcpt_limit > 0 ? (size_t) var_rcpt_limit : 1;
	size_t  i;
	size_t  k;

	for (i = 0; i < n; i += k) {
		k = n - i < limit ? n - i : limit;
		e = xcalloc(1, sizeof(*e));
		e->msg = msg;
		e->dest = d;
		e->nrcpt = k;
		e->rcpt = xmemdup(rcpt + i, k * sizeof(*rcpt));
		TAILQ_INSERT_TAIL(&d->todo, e, link);
		msg->nentries++;
	}
	qmgr_dest_ring_add(d);
}

/* qmgr_entry_free - release one request */
static void
qmgr_entry_free(struct qmgr_entry *e)
{
	free(e->rcpt);
	free(e);
}

/* qmgr_sched_reply - smtp-out answered, or did not */
static void
qmgr_sched_reply(struct attr_list *reply, const char *why, void *ctx)
{
	struct qmgr_entry *e = ctx;
	struct qmgr_dest *d = e->dest;
	struct qmgr_msg *msg = e->msg;
	const char **status = NULL;
	const char **dsn = NULL;
	const char **relay = NULL;
	const char **text = NULL;
	long long count;
	size_t  i;
	size_t  k;
	int     ok = 0;

	e->ipc = NULL;
	d->active--;
	qmgr_inflight--;

	if (reply != NULL && attr_list_getl(reply, MAIL_ATTR_COUNT, &count) == 0
	    && count == (long long) e->nrcpt && reply->n >= 1
	    && strcmp(reply->names[0], MAIL_ATTR_COUNT) == 0
	    && reply->n == 1 + 4 * e->nrcpt) {
		status = xcalloc(e->nrcpt, sizeof(char *));
		dsn = xcalloc(e->nrcpt, sizeof(char *));
		relay = xcalloc(e->nrcpt, sizeof(char *));
		text = xcalloc(e->nrcpt, sizeof(char *));
		ok = 1;
		for (i = 0; i < e->nrcpt && ok; i++) {
			k = 1 + 4 * i;
			if (strcmp(reply->names[k], MAIL_ATTR_STATUS) != 0
			    || strcmp(reply->names[k + 1], MAIL_ATTR_DSN) != 0
			    || strcmp(reply->names[k + 2], MAIL_ATTR_RELAY) != 0
			    || strcmp(reply->names[k + 3], MAIL_ATTR_REPLY) != 0
			    || (strcmp(reply->values[k], "sent") != 0
				&& strcmp(reply->values[k], "deferred") != 0
				&& strcmp(reply->values[k], "bounced") != 0))
				ok = 0;
			status[i] = reply->values[k];
			dsn[i] = reply->values[k + 1];
			relay[i] = reply->values[k + 2];
			text[i] = reply->values[k + 3];
		}
		if (!ok)
			why = "malformed reply";
	} else if (reply != NULL) {
		why = "reply does not match the request";
	}
	if (!msg->gone) {
		if (ok) {
			qmgr_msg_result(msg, e->nrcpt, e->rcpt, status, dsn,
					relay, text);
		} else {
			log_warn("%s: delivery to %s via %s: %s", msg->id,
				 d->nexthop, var_smtp_service, why);
			qmgr_msg_defer_all(msg, e->nrcpt, e->rcpt, "4.3.0",
					   "mail transport unavailable");
		}
	}
	free(status);
	free(dsn);
	free(relay);
	free(text);
	qmgr_entry_free(e);
	qmgr_dest_ring_add(d);
	qmgr_dest_maybe_free(d);
	qmgr_msg_entry_done(msg);
	qmgr_sched_run();
	server_session_done();
}

/* qmgr_sched_request - the attribute list of one delivery request */
static struct strbuf *
qmgr_sched_request(const struct qmgr_entry *e)
{
	const struct qmgr_msg *msg = e->msg;
	struct strbuf *sb = strbuf_new(1024, 0);
	char    buf[QFILE_ID_MAX + 16];
	size_t  i;

	attr_puts(sb, MAIL_ATTR_QUEUE_ID, msg->id);
	snprintf(buf, sizeof(buf), "%s/%s", QUEUE_ACTIVE, msg->id);
	attr_puts(sb, MAIL_ATTR_QUEUE_FILE, buf);
	attr_puts(sb, MAIL_ATTR_NEXTHOP, e->dest->nexthop);
	attr_puts(sb, MAIL_ATTR_SENDER, msg->sender);
	for (i = 0; i < e->nrcpt; i++) {
		const struct qmgr_rcpt *r = msg->rcpts + e->rcpt[i];

		attr_puts(sb, MAIL_ATTR_RCPT, r->addr);
		attr_puts(sb, MAIL_ATTR_ORCPT, r->orcpt);
		attr_puts(sb, MAIL_ATTR_NOTIFY, r->notify);
		attr_putl(sb, MAIL_ATTR_OFFSET, (long long) r->status_offset);
	}
	if (msg->ret)
		attr_puts(sb, MAIL_ATTR_RET, msg->ret);
	if (msg->envid)
		attr_puts(sb, MAIL_ATTR_ENVID, msg->envid);
	snprintf(buf, sizeof(buf), "%ld.%06ld", msg->arrival_sec,
		 msg->arrival_usec);
	attr_puts(sb, MAIL_ATTR_ARRIVAL, buf);
	snprintf(buf, sizeof(buf), "%ld.%06ld", (long) msg->active_time.tv_sec,
		 (long) msg->active_time.tv_usec);
	attr_puts(sb, MAIL_ATTR_ACTIVE, buf);
	attr_end(sb);
	return (sb);
}

/* qmgr_sched_run - start deliveries, round robin over destinations */
void
qmgr_sched_run(void)
{
	struct qmgr_dest *d;
	struct qmgr_entry *e;
	struct qmgr_msg *msg;

	/* Asked to leave (reload): hand out nothing new. */
	if (server_stopping())
		return;
	while (qmgr_inflight < (size_t) var_delivery_concurrency
	       && (d = TAILQ_FIRST(&qmgr_ring)) != NULL) {
		TAILQ_REMOVE(&qmgr_ring, d, ring);
		d->in_ring = 0;
		if (d->active >= var_dest_concurrency)
			continue;		/* back when one ends */
		if ((e = TAILQ_FIRST(&d->todo)) == NULL) {
			qmgr_dest_maybe_free(d);
			continue;
		}
		TAILQ_REMOVE(&d->todo, e, link);
		msg = e->msg;
		if (msg->gone) {
			qmgr_entry_free(e);
			qmgr_dest_ring_add(d);
			qmgr_dest_maybe_free(d);
			qmgr_msg_entry_done(msg);
			continue;
		}
		d->active++;
		qmgr_inflight++;
		e->ipc = qmgr_ipc_start(var_smtp_service, qmgr_sched_request(e),
					var_delivery_timeout, qmgr_sched_reply, e);
		qmgr_dest_ring_add(d);
	}
}

/* qmgr_sched_inflight - requests in flight */
size_t
qmgr_sched_inflight(void)
{
	return (qmgr_inflight);
}
