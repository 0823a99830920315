/*
 * qmgr_msg - active messages: loading, delivery results, end of a pass
 *
 * SYNOPSIS
 *	#include "qmgr.h"
 *
 *	struct qmgr_msg *qmgr_msg_load(const char *id)
 *	void	qmgr_msg_result(struct qmgr_msg *msg, size_t n,
 *			const size_t *rcpt, const char *const *status,
 *			const char *const *dsn, const char *const *relay,
 *			const char *const *reply)
 *	void	qmgr_msg_defer_all(struct qmgr_msg *msg, size_t n,
 *			const size_t *rcpt, const char *dsn,
 *			const char *reply)
 *	void	qmgr_msg_entry_done(struct qmgr_msg *msg)
 *	void	qmgr_msg_finish(struct qmgr_msg *msg)
 *	struct qmgr_msg *qmgr_msg_free(struct qmgr_msg *msg)
 *	long	qmgr_backoff(const struct qmgr_msg *msg, int greylist,
 *			long now)
 *	int	qmgr_is_greylist(const char *dsn, const char *reply)
 *
 * DESCRIPTION
 *	qmgr_msg_load() reads active/ID (the envelope; the content stays on
 *	disk), keeps the recipients whose status byte is still pending,
 *	logs "ID: from=<sender>, size=N, nrcpt=M (queue active)", finds the
 *	nexthop of each pending recipient and queues one delivery request
 *	per nexthop (qmgr_sched_add()). A recipient that cannot be routed
 *	is bounced ("5.3.5 unknown transport") or deferred (a table
 *	failure) at once. It returns NULL when the file is gone, or when it
 *	does not parse: it is then moved to corrupt/.
 *
 *	qmgr_msg_result() takes smtp-out's answer for some recipients.
 *	"sent" sets the recipient's status byte to QSTAT_SENT on disk at
 *	once (one fdatasync per answer); "bounced" and "deferred" are kept
 *	with their reply for the end of the pass. Every result goes to the
 *	history: collected in memory during the pass and appended in one
 *	write when the message is deferred (a message that is done has its
 *	history removed, so it is not written at all). qmgr_msg_defer_all() defers recipients with one
 *	reason of qmgr's own (the delivery agent was not reachable).
 *
 *	qmgr_msg_entry_done() counts one request as ended; after the last,
 *	qmgr_msg_finish() ends the pass, one step at a time (each may wait
 *	for the bounce service):
 *	failure: recipients that bounced are reported in one DSN (bounce
 *	type failure) and marked QSTAT_BOUNCED once bounce has accepted the
 *	request; expired: when the message is older than
 *	maximal_queue_lifetime, the recipients still pending are reported
 *	(type expired, with the last reply of each) and marked
 *	QSTAT_EXPIRED; delay: when delay_warning_time is set, the message is
 *	older than that and no delay notice is in its history, one is asked
 *	for (type delay) and remembered in the history; dispose: with every
 *	recipient done, the file and its history are removed ("ID:
 *	removed"); otherwise the file moves to deferred/X/ID (X: the last
 *	character of the ID) with its modification time set to the next
 *	retry, which is qmgr_backoff() from now.
 *	When bounce is not available, the recipients stay pending and are
 *	tried again on the next pass.
 *
 *	qmgr_backoff() is greylist_retry_time when every deferral of the
 *	pass looked like greylisting, else the message's age clamped to
 *	[minimal_backoff_time, maximal_backoff_time] (as Postfix: each wait
 *	about doubles the age, so the waits grow exponentially).
 *	qmgr_is_greylist() says whether a deferral looks like greylisting:
 *	the reply mentions greylist or graylist (any case, any form), or it
 *	is a 450/451 reply with enhanced code 4.7.1 that says "try again
 *	later".
 *
 * DIAGNOSTICS
 *	A queue file that vanished (deleted by an operator) is logged and
 *	dropped from memory. A failed status update is logged; the recipient
 *	is then tried again later (at least once, never lost).
 *
 * SEE ALSO
 *	qmgr(8), qhist(3), docs/ipc.md "bounce"
 */

#include <sys/stat.h>
#include <sys/time.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "log.h"
#include "mail_attr.h"
#include "qfile.h"
#include "qhist.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "qmgr.h"

/* A bounce request in flight. */
struct qmgr_bounce {
	struct qmgr_msg *msg;
	const char *type;
	size_t  n;
	size_t *rcpt;
};

static int qmgr_msg_busy(const char *, int);
static int qmgr_msg_warned(struct qmgr_msg *);
static void qmgr_msg_hist_now(struct qmgr_msg *, const struct qhist_rec *);

/* qmgr_active_path - "active/ID" in a caller buffer */
static const char *
qmgr_active_path(char *buf, size_t size, const char *id)
{
	snprintf(buf, size, "%s/%s", QUEUE_ACTIVE, id);
	return (buf);
}

/* qmgr_param - one TAB-separated name=value of a recipient, or "" */
static char *
qmgr_param(const char *params, const char *name)
{
	size_t  nlen = strlen(name);
	const char *p = params;
	const char *end;

	while (p && *p) {
		end = strchr(p, '\t');
		if (strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return (end ? xstrndup(p + nlen + 1,
					       (size_t) (end - p - nlen - 1))
				: xstrdup(p + nlen + 1));
		p = end ? end + 1 : NULL;
	}
	return (xstrdup(""));
}

/* qmgr_rcpt_result - remember the last result of a recipient */
static void
qmgr_rcpt_result(struct qmgr_rcpt *r, int pass, const char *dsn,
		 const char *relay, const char *reply)
{
	free(r->dsn);
	free(r->relay);
	free(r->reply);
	r->pass = (char) pass;
	r->dsn = xstrdup(dsn);
	r->relay = xstrdup(relay);
	r->reply = xstrdup(reply);
}

/* qmgr_delay - seconds since arrival, for log lines */
static double
qmgr_delay(const struct qmgr_msg *msg)
{
	struct timeval now;

	gettimeofday(&now, NULL);
	return ((double) (now.tv_sec - msg->arrival_sec)
		+ (double) (now.tv_usec - msg->arrival_usec) / 1e6);
}

/* qmgr_hist_add - collect history records for the end of the pass */
static void
qmgr_hist_add(struct qmgr_msg *msg, const struct qhist_rec *recs, size_t n)
{
	size_t  i;

	if (msg->hist == NULL)
		msg->hist = strbuf_new(256 * n, 0);
	for (i = 0; i < n; i++)
		(void) qhist_format(msg->hist, recs + i);
}

/* qmgr_hist_flush - append the collected records; a failure is logged */
static void
qmgr_hist_flush(struct qmgr_msg *msg)
{
	struct strbuf *err;

	if (msg->hist == NULL || msg->hist->len == 0)
		return;
	err = strbuf_new(128, 0);
	if (qhist_write(".", msg->id, msg->hist, err) < 0)
		log_warn("%s: history: %s", msg->id, err->data);
	strbuf_reset(msg->hist);
	strbuf_free(err);
}

/* qmgr_msg_free - release a message; NULL is fine */
struct qmgr_msg *
qmgr_msg_free(struct qmgr_msg *msg)
{
	size_t  i;

	if (msg == NULL)
		return (NULL);
	for (i = 0; i < msg->nrcpts; i++) {
		free(msg->rcpts[i].addr);
		free(msg->rcpts[i].orcpt);
		free(msg->rcpts[i].notify);
		free(msg->rcpts[i].dsn);
		free(msg->rcpts[i].relay);
		free(msg->rcpts[i].reply);
	}
	free(msg->rcpts);
	strbuf_free(msg->hist);
	free(msg->sender);
	free(msg->ret);
	free(msg->envid);
	free(msg);
	return (NULL);
}

/* qmgr_msg_corrupt - a file that does not parse goes to corrupt/ */
static void
qmgr_msg_corrupt(const char *id, const char *why)
{
	if (qfile_move(".", QUEUE_ACTIVE, QUEUE_CORRUPT, id) < 0) {
		if (errno != ENOENT)
			log_warn("%s: %s; cannot move it to corrupt/: %s", id,
				 why, strerror(errno));
		return;
	}
	log_warn("%s: %s; moved to corrupt/", id, why);
}

/* qmgr_msg_load - read active/ID and queue its deliveries */
struct qmgr_msg *
qmgr_msg_load(const char *id)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct strbuf *hop = strbuf_new(256, 0);
	struct strbuf *why = strbuf_new(256, 0);
	struct qfile_msg *qm;
	struct qmgr_msg *msg;
	struct qhist_rec *hist;
	size_t  nhist = 0;
	char    path[QFILE_ID_MAX + 16];
	char  **hops;
	size_t **groups;
	size_t *glen;
	size_t  ngroups = 0;
	size_t  i;
	size_t  g;
	int     r;
	int     fd;

	/* One open for the lock probe and the envelope read. */
	qmgr_active_path(path, sizeof(path), id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			log_info("%s: queue file vanished before delivery", id);
		else
			log_warn("%s: open %s: %s", id, path, strerror(errno));
		qm = NULL;
	} else if (qmgr_msg_busy(id, fd)) {
		qm = NULL;
	} else if ((qm = qfile_read_fd(fd, path, QFILE_READ_HEAD, err))
		   == NULL) {
		qmgr_msg_corrupt(id, err->data);
	}
	if (fd >= 0)
		(void) close(fd);
	if (qm == NULL) {
		strbuf_free(err);
		strbuf_free(hop);
		strbuf_free(why);
		return (NULL);
	}
	msg = xcalloc(1, sizeof(*msg));
	snprintf(msg->id, sizeof(msg->id), "%s", id);
	msg->sender = xstrdup(qm->sender);
	msg->ret = qfile_msg_attr(qm, MAIL_ATTR_RET) ?
		xstrdup(qfile_msg_attr(qm, MAIL_ATTR_RET)) : NULL;
	msg->envid = qfile_msg_attr(qm, MAIL_ATTR_ENVID) ?
		xstrdup(qfile_msg_attr(qm, MAIL_ATTR_ENVID)) : NULL;
	msg->arrival_sec = qm->arrival_sec;
	msg->arrival_usec = qm->arrival_usec;
	msg->size = qm->size;
	gettimeofday(&msg->active_time, NULL);

	/* Keep only what is still to do: small per-message memory. */
	msg->rcpts = xcalloc(qm->nrcpts ? qm->nrcpts : 1, sizeof(*msg->rcpts));
	for (i = 0; i < qm->nrcpts; i++) {
		struct qmgr_rcpt *rp;

		/* Pending, or done but still owing the sender a notice. */
		if (qm->rcpts[i].status != QSTAT_PENDING
		    && qm->rcpts[i].status != QSTAT_FAILED
		    && qm->rcpts[i].status != QSTAT_NOTIFY)
			continue;
		rp = msg->rcpts + msg->nrcpts++;
		rp->addr = xstrdup(qm->rcpts[i].addr);
		rp->orcpt = qmgr_param(qm->rcpts[i].params, "orcpt");
		rp->notify = qmgr_param(qm->rcpts[i].params, "notify");
		rp->status = qm->rcpts[i].status;
		rp->status_offset = qm->rcpts[i].status_offset;
		if (rp->status == QSTAT_FAILED)
			rp->pass = QMGR_PASS_BOUNCED;
	}
	log_info("%s: from=<%s>, size=%lld, nrcpt=%zu (queue active)",
		 msg->id, msg->sender, msg->size, qm->nrcpts);
	qm = qfile_msg_free(qm);

	/* Group the pending recipients by nexthop. */
	hops = xcalloc(msg->nrcpts + 1, sizeof(*hops));
	groups = xcalloc(msg->nrcpts + 1, sizeof(*groups));
	glen = xcalloc(msg->nrcpts + 1, sizeof(*glen));
	hist = xcalloc(msg->nrcpts + 1, sizeof(*hist));
	for (i = 0; i < msg->nrcpts; i++) {
		struct qmgr_rcpt *rp = msg->rcpts + i;

		if (rp->status != QSTAT_PENDING)
			continue;
		strbuf_reset(why);
		r = qmgr_route(rp->addr, hop, why);
		if (r != QMGR_ROUTE_OK) {
			char    dsn[16];
			const char *text = why->data;

			snprintf(dsn, sizeof(dsn), "%.*s",
				 (int) strcspn(text, " "), text);
			text += strcspn(text, " ");
			text += *text == ' ';
			qmgr_rcpt_result(rp, r == QMGR_ROUTE_BOUNCE ?
					 QMGR_PASS_BOUNCED : QMGR_PASS_DEFERRED,
					 dsn, "none", text);
			log_info("%s: to=<%s>, relay=none, delay=%.2f, dsn=%s, "
				 "status=%s (%s)", msg->id, rp->addr,
				 qmgr_delay(msg), dsn, r == QMGR_ROUTE_BOUNCE ?
				 "bounced" : "deferred", text);
			hist[nhist].time = (long) time(NULL);
			hist[nhist].rcpt = rp->addr;
			hist[nhist].status = r == QMGR_ROUTE_BOUNCE ?
				QHIST_BOUNCED : QHIST_DEFERRED;
			hist[nhist].dsn = rp->dsn;
			hist[nhist].relay = rp->relay;
			hist[nhist].reply = rp->reply;
			nhist++;
			continue;
		}
		for (g = 0; g < ngroups; g++)
			if (strcmp(hops[g], hop->data) == 0)
				break;
		if (g == ngroups) {
			hops[g] = xstrdup(hop->data);
			groups[g] = xcalloc(msg->nrcpts, sizeof(size_t));
			ngroups++;
		}
		groups[g][glen[g]++] = i;
	}
	if (nhist > 0)
		qmgr_hist_add(msg, hist, nhist);
	for (g = 0; g < ngroups; g++) {
		qmgr_sched_add(msg, hops[g], glen[g], groups[g]);
		free(hops[g]);
		free(groups[g]);
	}
	free(hops);
	free(groups);
	free(glen);
	free(hist);
	strbuf_free(err);
	strbuf_free(hop);
	strbuf_free(why);
	return (msg);
}

/* qmgr_msg_open - the active file for status updates, or -1 (gone) */
static int
qmgr_msg_open(struct qmgr_msg *msg)
{
	char    path[QFILE_ID_MAX + 16];
	int     fd;

	qmgr_active_path(path, sizeof(path), msg->id);
	if ((fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			log_info("%s: queue file is gone (deleted or moved by "
				 "the operator); dropped", msg->id);
			msg->gone = 1;
		} else {
			log_warn("%s: open %s: %s", msg->id, path,
				 strerror(errno));
		}
	}
	return (fd);
}

/*
 * qmgr_msg_mark - set status bytes that hold "from" (0: any) to "status"
 *
 * No sync: the page cache outlives any process, and a host crash can
 * only make a recipient go once more, never be lost (docs/decisions.md
 * "Exactly once"). The in-memory status follows the disk.
 */
static int
qmgr_msg_mark(struct qmgr_msg *msg, size_t n, const size_t *rcpt, int from,
	      int status)
{
	size_t  i;
	int     fd;
	int     ret = 0;

	if (n == 0)
		return (0);
	if ((fd = qmgr_msg_open(msg)) < 0)
		return (-1);
	for (i = 0; i < n; i++) {
		struct qmgr_rcpt *rp = msg->rcpts + rcpt[i];

		if (qfile_mark(fd, rp->status_offset, from, status) < 0) {
			log_warn("%s: cannot update recipient status: %s",
				 msg->id, strerror(errno));
			ret = -1;
			continue;
		}
		rp->status = (char) status;
	}
	(void) close(fd);
	return (ret);
}

/* qmgr_msg_disk - read the status bytes of some recipients */
static int
qmgr_msg_disk(struct qmgr_msg *msg, size_t n, const size_t *rcpt, char *st)
{
	size_t  i;
	int     fd;

	if ((fd = qmgr_msg_open(msg)) < 0)
		return (-1);
	for (i = 0; i < n; i++)
		if (pread(fd, st + i, 1, msg->rcpts[rcpt[i]].status_offset) != 1
		    || !QSTAT_VALID(st[i]))
			st[i] = QSTAT_PENDING;
	(void) close(fd);
	return (0);
}

/* qmgr_msg_defer_file - move active/ID to deferred/, due after "delay" */
static int
qmgr_msg_defer_file(const char *id, long delay)
{
	struct timespec ts[2];
	struct stat st;
	char    path[QFILE_ID_MAX + 16];
	char    dir[16];
	char    dst[QFILE_ID_MAX + 32];

	qmgr_active_path(path, sizeof(path), id);
	snprintf(dir, sizeof(dir), "%s/%c", QUEUE_DEFERRED, id[strlen(id) - 1]);
	snprintf(dst, sizeof(dst), "%s/%s", dir, id);
	if (stat(dir, &st) < 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
		log_warn("%s: create %s: %s", id, dir, strerror(errno));
	/*
	 * Postfix's trick: the file's mtime is its next retry time, here to
	 * the nanosecond (qmgr_queue.c).
	 */
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[1] = ts[0];
	ts[1].tv_sec += delay;
	if (utimensat(AT_FDCWD, path, ts, 0) < 0) {
		if (errno == ENOENT)
			return (-1);
		log_warn("%s: utimes %s: %s", id, path, strerror(errno));
	}
	if (rename(path, dst) < 0)
		return (-1);
	qmgr_queue_defer_at((double) ts[1].tv_sec
			    + (double) ts[1].tv_nsec / 1e9);
	return (0);
}

/*
 * qmgr_msg_busy - is a delivery agent or bounce of an earlier qmgr (one
 * that crashed or was reloaded) still at work on this file? Then it waits
 * in deferred/ for a moment, so that the same recipients never go out
 * twice at once; the outcome that process records is read next time.
 */
static int
qmgr_msg_busy(const char *id, int fd)
{
	if (qfile_lock(fd, QFILE_LOCK_TRY) == 0 || errno != EWOULDBLOCK)
		return (0);
	if (qmgr_msg_defer_file(id, QMGR_BUSY_RETRY) == 0)
		log_info("%s: still in the hands of a delivery agent of an "
			 "earlier run; retry in %ds", id, QMGR_BUSY_RETRY);
	else if (errno != ENOENT)
		log_warn("%s: busy, and cannot move it to %s/: %s; left in "
			 "%s/", id, QUEUE_DEFERRED, strerror(errno),
			 QUEUE_ACTIVE);
	return (1);
}

/* qmgr_is_greylist - does a deferral look like greylisting? */
int
qmgr_is_greylist(const char *dsn, const char *reply)
{
	char   *low = xstrdup(reply ? reply : "");
	char   *p;
	int     yes;

	for (p = low; *p; p++)
		*p = (char) tolower((unsigned char) *p);
	yes = strstr(low, "greylist") != NULL || strstr(low, "graylist") != NULL
		|| strstr(low, "grey-list") != NULL
		|| strstr(low, "gray-list") != NULL;
	if (!yes && dsn && strcmp(dsn, "4.7.1") == 0
	    && strstr(low, "try again later") != NULL
	    && (strstr(low, "450") != NULL || strstr(low, "451") != NULL))
		yes = 1;
	free(low);
	return (yes);
}

/* qmgr_msg_hist_now - append one record to the history at once */
static void
qmgr_msg_hist_now(struct qmgr_msg *msg, const struct qhist_rec *rec)
{
	struct strbuf *err = strbuf_new(128, 0);

	if (qhist_append(".", msg->id, rec, 1, err) < 0)
		log_warn("%s: history: %s", msg->id, err->data);
	strbuf_free(err);
}

/*
 * qmgr_msg_result - smtp-out's answer for some recipients
 *
 * smtp-out has recorded each final outcome in the queue file before it
 * answered (QSTAT_SENT, QSTAT_NOTIFY, QSTAT_FAILED and the bounce reason
 * in the history). The disk is the truth: qmgr reads the bytes back and
 * sets those smtp-out could not (no sync either way).
 */
void
qmgr_msg_result(struct qmgr_msg *msg, size_t n, const size_t *rcpt,
		const char *const *status, const char *const *dsn,
		const char *const *relay, const char *const *reply)
{
	struct qhist_rec *hist = xcalloc(n, sizeof(*hist));
	char   *disk = xcalloc(n ? n : 1, 1);
	size_t  nhist = 0;
	long    now = (long) time(NULL);
	size_t  i;
	int     fd;

	if ((fd = qmgr_msg_open(msg)) < 0) {
		free(hist);
		free(disk);
		return;
	}
	for (i = 0; i < n; i++) {
		struct qmgr_rcpt *rp = msg->rcpts + rcpt[i];
		int     pass = QMGR_PASS_NONE;
		int     want = 0;

		if (pread(fd, disk + i, 1, rp->status_offset) != 1
		    || !QSTAT_VALID(disk[i]))
			disk[i] = QSTAT_PENDING;
		if (strcmp(status[i], "sent") == 0) {
			want = QSTAT_SENT;
		} else if (strcmp(status[i], "bounced") == 0) {
			pass = QMGR_PASS_BOUNCED;
			want = QSTAT_FAILED;
		} else {
			pass = qmgr_is_greylist(dsn[i], reply[i]) ?
				QMGR_PASS_GREYLIST : QMGR_PASS_DEFERRED;
		}
		qmgr_rcpt_result(rp, pass, dsn[i], relay[i], reply[i]);
		if (want != 0 && disk[i] == QSTAT_PENDING) {
			/* smtp-out could not record it: do it now. */
			if (want == QSTAT_FAILED) {
				struct qhist_rec rec = {now, rp->addr,
					(char *) status[i], rp->dsn, rp->relay,
				rp->reply};

				qmgr_msg_hist_now(msg, &rec);
			}
			if (qfile_mark(fd, rp->status_offset, QSTAT_PENDING,
				       want) == 1)
				disk[i] = (char) want;
			else
				log_warn("%s: cannot update recipient status: "
					 "%s", msg->id, strerror(errno));
		}
		rp->status = disk[i];
		/* A bounce reason or a relay is in the history already. */
		if (disk[i] == QSTAT_FAILED || disk[i] == QSTAT_NOTIFY)
			continue;
		hist[nhist].time = now;
		hist[nhist].rcpt = rp->addr;
		hist[nhist].status = (char *) status[i];
		hist[nhist].dsn = rp->dsn;
		hist[nhist].relay = rp->relay;
		hist[nhist].reply = rp->reply;
		nhist++;
	}
	(void) close(fd);
	if (nhist > 0)
		qmgr_hist_add(msg, hist, nhist);
	free(disk);
	free(hist);
}

/*
 * qmgr_msg_defer_all - defer recipients with one reason of our own
 *
 * Used when smtp-out's report was lost (it died, timed out, or answered
 * nonsense). What it recorded in the queue file before that stands: a
 * recipient marked delivered or failed is not deferred, and so never sent
 * again.
 */
void
qmgr_msg_defer_all(struct qmgr_msg *msg, size_t n, const size_t *rcpt,
		   const char *dsn, const char *reply)
{
	const char **st = xcalloc(n, sizeof(char *));
	const char **ds = xcalloc(n, sizeof(char *));
	const char **rl = xcalloc(n, sizeof(char *));
	const char **rp = xcalloc(n, sizeof(char *));
	char   *disk = xcalloc(n ? n : 1, 1);
	size_t  i;

	if (qmgr_msg_disk(msg, n, rcpt, disk) < 0)
		memset(disk, QSTAT_PENDING, n);
	for (i = 0; i < n; i++) {
		const char *addr = msg->rcpts[rcpt[i]].addr;

		ds[i] = dsn;
		rl[i] = "none";
		if (disk[i] == QSTAT_SENT || disk[i] == QSTAT_NOTIFY) {
			st[i] = "sent";
			ds[i] = "2.0.0";
			rp[i] = "delivered (recorded by the delivery agent "
				"before its report was lost)";
			log_info("%s: to=<%s>, relay=none, delay=%.2f, "
				 "dsn=2.0.0, status=sent (%s)", msg->id, addr,
				 qmgr_delay(msg), rp[i]);
			continue;
		}
		if (disk[i] == QSTAT_FAILED) {
			st[i] = "bounced";
			ds[i] = "5.0.0";
			rp[i] = "failed (recorded by the delivery agent "
				"before its report was lost)";
			log_info("%s: to=<%s>, relay=none, delay=%.2f, "
				 "dsn=5.0.0, status=bounced (%s)", msg->id,
				 addr, qmgr_delay(msg), rp[i]);
			continue;
		}
		st[i] = "deferred";
		rp[i] = reply;
		log_info("%s: to=<%s>, relay=none, delay=%.2f, dsn=%s, "
			 "status=deferred (%s)", msg->id, addr,
			 qmgr_delay(msg), dsn, reply);
	}
	qmgr_msg_result(msg, n, rcpt, st, ds, rl, rp);
	/* The failure notice quotes the reason smtp-out wrote down. */
	for (i = 0; i < n; i++) {
		struct qmgr_rcpt *r = msg->rcpts + rcpt[i];

		if (disk[i] == QSTAT_FAILED || r->status == QSTAT_NOTIFY) {
			r->dsn = xfree(r->dsn);
			r->relay = xfree(r->relay);
			r->reply = xfree(r->reply);
		}
	}
	free(disk);
	free(st);
	free(ds);
	free(rl);
	free(rp);
}

/* qmgr_msg_entry_done - one request ended; end the pass after the last */
void
qmgr_msg_entry_done(struct qmgr_msg *msg)
{
	if (msg->nentries > 0)
		msg->nentries--;
	if (msg->nentries == 0)
		qmgr_msg_finish(msg);
}

/* qmgr_backoff - seconds until the next try */
long
qmgr_backoff(const struct qmgr_msg *msg, int greylist, long now)
{
	long    age = now - msg->arrival_sec;

	if (greylist)
		return (var_greylist_retry > 0 ? var_greylist_retry : 1);
	if (age > var_max_backoff)
		age = var_max_backoff;
	if (age < var_min_backoff)
		age = var_min_backoff;
	return (age > 0 ? age : 1);
}

static size_t qmgr_bounce_count;		/* requests in flight */

/* qmgr_msg_bounce_inflight - bounce requests in flight */
size_t
qmgr_msg_bounce_inflight(void)
{
	return (qmgr_bounce_count);
}

/*
 * qmgr_bounce_reply - bounce answered, or did not
 *
 * bounce sets the final status bytes itself once the notice is queued and
 * before it answers, so that a qmgr that dies here never asks twice; qmgr
 * sets those bounce could not (no sync) and follows them in memory.
 */
static void
qmgr_bounce_reply(struct attr_list *reply, const char *why, void *ctx)
{
	struct qmgr_bounce *b = ctx;
	struct qmgr_msg *msg = b->msg;
	long long status = -1;
	size_t  i;

	qmgr_bounce_count--;
	if (reply != NULL
	    && attr_list_getl(reply, MAIL_ATTR_STATUS, &status) < 0)
		why = "malformed reply";
	else if (reply != NULL && status == 5)
		/* Can never succeed: asking again would loop for ever. */
		log_warn("%s: bounce service refused the %s notice: %s; "
			 "recipients are returned without one", msg->id,
			 b->type, attr_list_get(reply, MAIL_ATTR_REASON) ?
			 attr_list_get(reply, MAIL_ATTR_REASON) : "no reason");
	else if (reply != NULL && status != 0)
		why = attr_list_get(reply, MAIL_ATTR_REASON) ?
			attr_list_get(reply, MAIL_ATTR_REASON) :
			"request refused";
	if (why != NULL) {
		log_warn("%s: bounce service (%s notice): %s; recipients stay "
			 "queued and are tried again later", msg->id, b->type,
			 why);
		msg->bounce_failed = 1;
	} else if (strcmp(b->type, "success") == 0) {
		(void) qmgr_msg_mark(msg, b->n, b->rcpt, QSTAT_NOTIFY,
				     QSTAT_SENT);
	} else if (strcmp(b->type, "failure") == 0) {
		(void) qmgr_msg_mark(msg, b->n, b->rcpt, QSTAT_FAILED,
				     QSTAT_BOUNCED);
	} else if (strcmp(b->type, "expired") == 0) {
		struct qhist_rec *hist = xcalloc(b->n, sizeof(*hist));

		if (qmgr_msg_mark(msg, b->n, b->rcpt, QSTAT_PENDING,
				  QSTAT_EXPIRED) == 0) {
			for (i = 0; i < b->n; i++) {
				struct qmgr_rcpt *rp = msg->rcpts + b->rcpt[i];
				const char *dsn = rp->dsn ? rp->dsn : "4.4.7";

				log_info("%s: to=<%s>, relay=none, delay=%.0f, "
					 "dsn=%s, status=expired, returned "
					 "to sender", msg->id, rp->addr,
					 qmgr_delay(msg), dsn);
				hist[i].time = (long) time(NULL);
				hist[i].rcpt = rp->addr;
				hist[i].status = QHIST_EXPIRED;
				hist[i].dsn = (char *) dsn;
				hist[i].relay = "none";
				hist[i].reply = "delivery time expired";
			}
			qmgr_hist_add(msg, hist, b->n);
		}
		free(hist);
	} else if (!qmgr_msg_warned(msg)) {
		/* A delay notice: bounce noted it; an older bounce did not. */
		struct qhist_rec rec = {0};

		rec.time = (long) time(NULL);
		rec.rcpt = "";
		rec.status = QHIST_DELAY;
		rec.reply = "delay notice sent";
		qmgr_msg_hist_now(msg, &rec);
	}
	free(b->rcpt);
	free(b);
	msg->fin_step++;
	qmgr_msg_finish(msg);
	server_session_done();
}

/* qmgr_bounce_ask - one bounce request for some recipients */
static void
qmgr_bounce_ask(struct qmgr_msg *msg, const char *type, size_t n,
		size_t *rcpt)
{
	struct qmgr_bounce *b = xcalloc(1, sizeof(*b));
	struct strbuf *sb = strbuf_new(1024, 0);
	struct qhist *hist = NULL;
	struct strbuf *err = NULL;
	char    path[QFILE_ID_MAX + 16];
	size_t  i;

	b->msg = msg;
	b->type = type;
	b->n = n;
	b->rcpt = rcpt;
	/* The words a notice quotes must be on disk before it is owed. */
	qmgr_hist_flush(msg);
	attr_puts(sb, MAIL_ATTR_QUEUE_ID, msg->id);
	attr_puts(sb, MAIL_ATTR_QUEUE_FILE, qmgr_active_path(path, sizeof(path),
						      msg->id));
	attr_puts(sb, MAIL_ATTR_TYPE, type);
	for (i = 0; i < n; i++) {
		const struct qmgr_rcpt *rp = msg->rcpts + rcpt[i];
		const char *dsn = rp->dsn;
		const char *relay = rp->relay;
		const char *reply = rp->reply;

		/* Not tried in this pass: the last word from the history. */
		if (reply == NULL) {
			const struct qhist_rec *h;

			if (hist == NULL) {
				err = strbuf_new(128, 0);
				hist = qhist_read(".", msg->id, err);
			}
			if (hist && (h = qhist_last(hist, rp->addr)) != NULL) {
				dsn = h->dsn;
				relay = h->relay;
				reply = h->reply;
			}
		}
		attr_puts(sb, MAIL_ATTR_RCPT, rp->addr);
		attr_putl(sb, MAIL_ATTR_OFFSET, (long long) rp->status_offset);
		if (strcmp(type, "success") == 0)
			attr_puts(sb, MAIL_ATTR_ACTION, "relayed");
		attr_puts(sb, MAIL_ATTR_DSN, dsn && *dsn ? dsn :
			  strcmp(type, "expired") == 0 ? "4.4.7" :
			  strcmp(type, "success") == 0 ? "2.0.0" : "4.0.0");
		attr_puts(sb, MAIL_ATTR_RELAY, relay ? relay : "none");
		attr_puts(sb, MAIL_ATTR_REPLY, reply ? reply :
			  strcmp(type, "expired") == 0 ?
			  "delivery time expired" :
			  strcmp(type, "success") == 0 ? "delivered" :
			  "delivery delayed");
	}
	attr_end(sb);
	qhist_free(hist);
	strbuf_free(err);
	qmgr_bounce_count++;
	(void) qmgr_ipc_start(var_bounce_service, sb, 300, qmgr_bounce_reply, b);
}

/* qmgr_msg_select - recipients owing a notice of a kind; count in *np */
static size_t *
qmgr_msg_select(const struct qmgr_msg *msg, int fin, size_t *np)
{
	size_t *v = xcalloc(msg->nrcpts + 1, sizeof(size_t));
	size_t  n = 0;
	size_t  i;

	for (i = 0; i < msg->nrcpts; i++) {
		const struct qmgr_rcpt *rp = msg->rcpts + i;
		int     take;

		switch (fin) {
		case QMGR_FIN_SUCCESS:
			take = rp->status == QSTAT_NOTIFY;
			break;
		case QMGR_FIN_FAILURE:
			take = rp->status == QSTAT_FAILED
				|| (rp->status == QSTAT_PENDING
				    && rp->pass == QMGR_PASS_BOUNCED);
			break;
		default:			/* expired, delay */
			take = rp->status == QSTAT_PENDING
				&& rp->pass != QMGR_PASS_BOUNCED;
			break;
		}
		if (take)
			v[n++] = i;
	}
	*np = n;
	if (n == 0)
		v = xfree(v);
	return (v);
}

/* qmgr_msg_warned - has a delay notice been sent? (from the history) */
static int
qmgr_msg_warned(struct qmgr_msg *msg)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct qhist *hist;
	int     warned = 1;		/* unreadable: do not risk a flood */

	qmgr_hist_flush(msg);
	hist = qhist_read(".", msg->id, err);

	if (hist != NULL)
		warned = qhist_has(hist, QHIST_DELAY);
	else
		log_warn("%s: history: %s", msg->id, err->data);
	qhist_free(hist);
	strbuf_free(err);
	return (warned);
}

/* qmgr_msg_dispose - remove a finished message or defer it */
static void
qmgr_msg_dispose(struct qmgr_msg *msg)
{
	char    path[QFILE_ID_MAX + 16];
	size_t  pending = 0;
	size_t  grey = 0;
	size_t  i;
	long    now = (long) time(NULL);
	long    delay;

	for (i = 0; i < msg->nrcpts; i++) {
		/* Still to deliver, or a notice still owed. */
		if (msg->rcpts[i].status != QSTAT_PENDING
		    && msg->rcpts[i].status != QSTAT_FAILED
		    && msg->rcpts[i].status != QSTAT_NOTIFY)
			continue;
		pending++;
		if (msg->rcpts[i].status == QSTAT_PENDING
		    && msg->rcpts[i].pass == QMGR_PASS_GREYLIST)
			grey++;
	}
	qmgr_active_path(path, sizeof(path), msg->id);
	if (pending == 0) {
		/* Done: this pass's history would be removed at once. */
		if (msg->hist)
			strbuf_reset(msg->hist);
		/* Kept in free/ for cleanup to reuse (qfile_release()). */
		if (qfile_release(".", QUEUE_ACTIVE, msg->id) < 0
		    && errno != ENOENT)
			log_warn("%s: remove %s: %s", msg->id, path,
				 strerror(errno));
		if (qhist_remove(".", msg->id) < 0)
			log_warn("%s: remove history: %s", msg->id,
				 strerror(errno));
		log_info("%s: removed", msg->id);
		return;
	}
	delay = qmgr_backoff(msg, grey == pending && !msg->bounce_failed, now);
	if (qmgr_msg_defer_file(msg->id, delay) < 0) {
		if (errno == ENOENT) {
			log_info("%s: queue file is gone (deleted or moved by "
				 "the operator); dropped", msg->id);
		} else {
			log_warn("%s: move to %s/: %s; left in active/",
				 msg->id, QUEUE_DEFERRED, strerror(errno));
			qmgr_hist_flush(msg);
		}
		return;
	}
	qmgr_hist_flush(msg);
	log_info("%s: deferred, %zu recipient%s pending, next retry in %lds%s",
		 msg->id, pending, pending == 1 ? "" : "s", delay,
		 grey == pending && !msg->bounce_failed ? " (greylisted)" : "");
}

/*
 * qmgr_msg_owe - recipients qmgr itself failed (no route) owe a notice:
 * their reason goes into the history and their byte becomes FAILED
 * before bounce is asked, as smtp-out does for the ones it fails.
 */
static void
qmgr_msg_owe(struct qmgr_msg *msg, size_t n, const size_t *rcpt)
{
	size_t *own = xcalloc(n + 1, sizeof(size_t));
	size_t  k = 0;
	size_t  i;

	for (i = 0; i < n; i++)
		if (msg->rcpts[rcpt[i]].status == QSTAT_PENDING)
			own[k++] = rcpt[i];
	if (k > 0) {
		qmgr_hist_flush(msg);
		(void) qmgr_msg_mark(msg, k, own, QSTAT_PENDING, QSTAT_FAILED);
	}
	free(own);
}

/* qmgr_msg_finish - end a pass: bounces, expiry, delay notice, dispose */
void
qmgr_msg_finish(struct qmgr_msg *msg)
{
	long    age;
	size_t  n;
	size_t *v;

	for (;;) {
		if (msg->gone) {
			qmgr_msg_done(msg);
			return;
		}
		age = (long) time(NULL) - msg->arrival_sec;
		switch (msg->fin_step) {
		case QMGR_FIN_NONE:
			msg->fin_step = QMGR_FIN_SUCCESS;
			break;
		case QMGR_FIN_SUCCESS:
			if ((v = qmgr_msg_select(msg, QMGR_FIN_SUCCESS, &n))
			    != NULL) {
				qmgr_bounce_ask(msg, "success", n, v);
				return;
			}
			msg->fin_step++;
			break;
		case QMGR_FIN_FAILURE:
			if ((v = qmgr_msg_select(msg, QMGR_FIN_FAILURE, &n))
			    != NULL) {
				qmgr_msg_owe(msg, n, v);
				qmgr_bounce_ask(msg, "failure", n, v);
				return;
			}
			msg->fin_step++;
			break;
		case QMGR_FIN_EXPIRED:
			if (age >= var_max_queue_lifetime
			    && (v = qmgr_msg_select(msg, QMGR_FIN_EXPIRED, &n))
			    != NULL) {
				qmgr_bounce_ask(msg, "expired", n, v);
				return;
			}
			msg->fin_step++;
			break;
		case QMGR_FIN_DELAY:
			if (var_delay_warning_time > 0
			    && age >= var_delay_warning_time
			    && age < var_max_queue_lifetime
			    && (v = qmgr_msg_select(msg, QMGR_FIN_DELAY, &n))
			    != NULL) {
				if (!qmgr_msg_warned(msg)) {
					qmgr_bounce_ask(msg, "delay", n, v);
					return;
				}
				free(v);
			}
			msg->fin_step++;
			break;
		default:
			qmgr_msg_dispose(msg);
			qmgr_msg_done(msg);
			return;
		}
	}
}
