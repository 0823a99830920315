/*
 * qmgr_queue - the active set, queue scans, timers and triggers
 *
 * SYNOPSIS
 *	#include "qmgr.h"
 *
 *	void	qmgr_queue_init(void)
 *	void	qmgr_queue_recover(void)
 *	void	qmgr_queue_trigger(int request)
 *	void	qmgr_queue_kick(void)
 *	void	qmgr_queue_defer_at(double when)
 *
 *	double	qmgr_now(void)
 *	size_t	qmgr_queue_count(void)
 *	struct qmgr_msg *qmgr_msg_find(const char *id)
 *	void	qmgr_msg_done(struct qmgr_msg *msg)
 *
 * DESCRIPTION
 *	The active set is every message qmgr holds in memory; it never
 *	holds more than qmgr_message_active_limit of them. The rest waits
 *	on disk in incoming/ and deferred/.
 *
 *	Two scans feed it, each a directory walk that goes on where it
 *	stopped whenever there is room: the incoming scan (incoming/) and
 *	the deferred scan (deferred/ and its hashed subfolders), which takes
 *	only files whose modification time (the next retry) has come, or
 *	every file when it is a flush. While both run they take turns, one
 *	message each. A file taken is renamed into active/ and read by
 *	qmgr_msg_load(). A request to scan while a scan runs makes it start
 *	over once it ends, so nothing that arrived meanwhile is missed.
 *
 *	qmgr_queue_init() makes the timer and the fill event and starts
 *	both scans. qmgr_queue_recover() (at start, before init) moves every
 *	file left in active/ by a crash back to incoming/, as Postfix does;
 *	status bytes in the file keep done recipients from going again.
 *
 *	qmgr_queue_trigger() handles one trigger byte (docs/ipc.md): 'A'
 *	starts the incoming scan; 'D' the deferred scan; 'F' a deferred
 *	scan that treats every message as due, and the incoming scan.
 *	Other bytes are ignored. qmgr_queue_kick() asks for a fill from the
 *	event loop (coalesced: many kicks, one fill).
 *
 *	The timer starts a deferred scan (and an incoming scan, in case a
 *	trigger was lost) at the earliest retry time seen, and at least
 *	every queue_run_delay. qmgr_queue_defer_at() tells it about a new
 *	retry time. There is no polling in between. Retry times are kept
 *	to the microsecond (the file's mtime has nanoseconds), so that a
 *	retry after greylisting comes when it is due, not at the next
 *	whole second (which could be too early for the greylister and
 *	cost one more round) or up to a second late.
 *
 *	qmgr_now() is the time of day in seconds, with the fraction.
 *
 *	qmgr_msg_find() finds a message of the active set by queue ID.
 *	qmgr_msg_done() removes a message from the set, frees it and asks
 *	for a fill.
 *
 * DIAGNOSTICS
 *	A queue folder that cannot be read: a warning; the scan is tried
 *	again at the next timer.
 */

#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "qfile.h"
#include "server.h"
#include "strhash.h"
#include "xmalloc.h"

#include "qmgr.h"

#define QMGR_MSG_HASH	16384

struct qmgr_scan {
	const char *queue;
	int     nested;			/* deferred/: one level of subfolders */
	int     active;
	int     again;			/* start over once done */
	int     flush;			/* every file is due */
	int     again_flush;
	DIR    *top;
	DIR    *sub;
	char    subname[256];
	double  min_due;		/* earliest future retry seen */
};

static struct qmgr_msg *qmgr_msg_hash[QMGR_MSG_HASH];
static size_t qmgr_nmsgs;
static struct qmgr_scan qmgr_scan_in = {.queue = QUEUE_INCOMING};
static struct qmgr_scan qmgr_scan_def = {.queue = QUEUE_DEFERRED,
	.nested = 1};
static struct event *qmgr_fill_ev;
static struct event *qmgr_timer_ev;
static double qmgr_timer_at;

/* qmgr_now - time of day, seconds with the fraction */
double
qmgr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
}

/* qmgr_msg_hashval - bucket of a queue ID */
static size_t
qmgr_msg_hashval(const char *id)
{
	return (strhash(id) % QMGR_MSG_HASH);
}

/* qmgr_msg_find - a message of the active set */
struct qmgr_msg *
qmgr_msg_find(const char *id)
{
	struct qmgr_msg *m;

	for (m = qmgr_msg_hash[qmgr_msg_hashval(id)]; m; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return (m);
	return (NULL);
}

/* qmgr_queue_count - messages in memory */
size_t
qmgr_queue_count(void)
{
	return (qmgr_nmsgs);
}

/* qmgr_msg_done - a message leaves the active set */
void
qmgr_msg_done(struct qmgr_msg *msg)
{
	struct qmgr_msg **pp;

	for (pp = &qmgr_msg_hash[qmgr_msg_hashval(msg->id)]; *pp;
	     pp = &(*pp)->hnext) {
		if (*pp == msg) {
			*pp = msg->hnext;
			qmgr_nmsgs--;
			break;
		}
	}
	qmgr_msg_free(msg);
	qmgr_queue_kick();
}

/* qmgr_timer_set - fire the timer at "when" (epoch seconds) */
static void
qmgr_timer_set(double when)
{
	struct timeval tv;
	double  now = qmgr_now();
	double  wait;

	if (when < now)
		when = now;
	/* At least a millisecond, so that "now" is past the due time. */
	wait = when - now + 0.001;
	tv.tv_sec = (time_t) wait;
	tv.tv_usec = (suseconds_t) ((wait - (double) tv.tv_sec) * 1e6);
	qmgr_timer_at = when;
	evtimer_add(qmgr_timer_ev, &tv);
}

/* qmgr_queue_defer_at - a message will be due at "when" */
void
qmgr_queue_defer_at(double when)
{
	if (qmgr_timer_at == 0 || when < qmgr_timer_at)
		qmgr_timer_set(when);
}

/* qmgr_scan_close - close the folders of a scan */
static void
qmgr_scan_close(struct qmgr_scan *scan)
{
	if (scan->sub) {
		closedir(scan->sub);
		scan->sub = NULL;
	}
	if (scan->top) {
		closedir(scan->top);
		scan->top = NULL;
	}
}

/* qmgr_scan_start - start a scan, or have it start over when done */
static void
qmgr_scan_start(struct qmgr_scan *scan, int flush)
{
	if (scan->active) {
		scan->again = 1;
		scan->again_flush |= flush;
		return;
	}
	scan->active = 1;
	scan->flush = flush;
	scan->min_due = 0;
	if ((scan->top = opendir(scan->queue)) == NULL) {
		log_warn("open %s/: %s", scan->queue, strerror(errno));
		scan->active = 0;
	}
}

/* qmgr_scan_end - a walk ended: start over or stop */
static void
qmgr_scan_end(struct qmgr_scan *scan)
{
	double  now = qmgr_now();
	double  next;

	qmgr_scan_close(scan);
	scan->active = 0;
	if (scan->nested) {
		next = now + var_queue_run_delay;
		if (scan->min_due > 0 && scan->min_due < next)
			next = scan->min_due;
		/* The earliest of what we saw and what was set meanwhile. */
		if (qmgr_timer_at == 0 || qmgr_timer_at <= now
		    || next < qmgr_timer_at)
			qmgr_timer_set(next);
	}
	if (scan->again) {
		int     flush = scan->again_flush;

		scan->again = 0;
		scan->again_flush = 0;
		qmgr_scan_start(scan, flush);
	}
}

/* qmgr_scan_next - the next due file of a scan: 1, or 0 at the end */
static int
qmgr_scan_next(struct qmgr_scan *scan, char *id, size_t idsize,
	       char *path, size_t pathsize)
{
	struct dirent *de;
	struct stat st;
	double  now = qmgr_now();
	double  due;
	char    sub[300];

	while (scan->active) {
		if (scan->sub != NULL) {
			if ((de = readdir(scan->sub)) == NULL) {
				closedir(scan->sub);
				scan->sub = NULL;
				continue;
			}
			if (de->d_name[0] == '.' || !qfile_id_valid(de->d_name))
				continue;
			if (snprintf(path, pathsize, "%s/%s/%s", scan->queue,
				     scan->subname, de->d_name) >= (int) pathsize)
				continue;
		} else {
			if ((de = readdir(scan->top)) == NULL) {
				qmgr_scan_end(scan);
				return (0);
			}
			if (de->d_name[0] == '.')
				continue;
			if (scan->nested && strlen(de->d_name) < sizeof(sub)
			    && (de->d_type == DT_DIR
				|| (de->d_type == DT_UNKNOWN
				    && snprintf(sub, sizeof(sub), "%s/%s",
						scan->queue, de->d_name) > 0
				    && lstat(sub, &st) == 0
				    && S_ISDIR(st.st_mode)))) {
				snprintf(sub, sizeof(sub), "%s/%s", scan->queue,
					 de->d_name);
				snprintf(scan->subname, sizeof(scan->subname),
					 "%s", de->d_name);
				if ((scan->sub = opendir(sub)) == NULL)
					log_warn("open %s/: %s", sub,
						 strerror(errno));
				continue;
			}
			if (!qfile_id_valid(de->d_name))
				continue;
			if (snprintf(path, pathsize, "%s/%s", scan->queue,
				     de->d_name) >= (int) pathsize)
				continue;
		}
		if (qmgr_msg_find(de->d_name) != NULL)
			continue;
		if (scan->nested && !scan->flush) {
			if (stat(path, &st) < 0)
				continue;
			due = (double) st.st_mtim.tv_sec
				+ (double) st.st_mtim.tv_nsec / 1e9;
			if (due > now) {
				if (scan->min_due == 0 || due < scan->min_due)
					scan->min_due = due;
				continue;
			}
		}
		if (snprintf(id, idsize, "%s", de->d_name) >= (int) idsize)
			continue;
		return (1);
	}
	return (0);
}

/* qmgr_queue_take - move one file into active/ and load it */
static void
qmgr_queue_take(const char *id, const char *path)
{
	char    dst[QFILE_ID_MAX + 16];
	struct qmgr_msg *msg;
	size_t  h;

	snprintf(dst, sizeof(dst), "%s/%s", QUEUE_ACTIVE, id);
	if (rename(path, dst) < 0) {
		if (errno != ENOENT)
			log_warn("%s: move %s to %s: %s", id, path, dst,
				 strerror(errno));
		return;
	}
	if ((msg = qmgr_msg_load(id)) == NULL)
		return;
	h = qmgr_msg_hashval(msg->id);
	msg->hnext = qmgr_msg_hash[h];
	qmgr_msg_hash[h] = msg;
	qmgr_nmsgs++;
	if (msg->nentries == 0)
		qmgr_msg_finish(msg);
}

/* qmgr_queue_fill - take messages while there is room */
static void
qmgr_queue_fill(evutil_socket_t unused_fd, short unused_what,
		void *unused_ctx)
{
	char    id[QFILE_ID_MAX];
	char    path[QFILE_ID_MAX + 300];

	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	while (!server_stopping() && qmgr_nmsgs < (size_t) var_active_limit
	       && (qmgr_scan_def.active || qmgr_scan_in.active)) {
		/* Take turns, so neither queue starves the other. */
		if (qmgr_scan_def.active
		    && qmgr_scan_next(&qmgr_scan_def, id, sizeof(id), path,
				      sizeof(path)))
			qmgr_queue_take(id, path);
		if (qmgr_nmsgs < (size_t) var_active_limit
		    && qmgr_scan_in.active
		    && qmgr_scan_next(&qmgr_scan_in, id, sizeof(id), path,
				      sizeof(path)))
			qmgr_queue_take(id, path);
	}
	qmgr_sched_run();
}

/* qmgr_queue_kick - fill from the loop, once however often asked */
void
qmgr_queue_kick(void)
{
	if (qmgr_fill_ev != NULL)
		event_active(qmgr_fill_ev, EV_TIMEOUT, 0);
}

/* qmgr_queue_timer - retry time or safety scan */
static void
qmgr_queue_timer(evutil_socket_t unused_fd, short unused_what,
		 void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	qmgr_timer_at = 0;
	qmgr_scan_start(&qmgr_scan_def, 0);
	qmgr_scan_start(&qmgr_scan_in, 0);
	/* Until the deferred scan ends and sets it: the periodic scan. */
	qmgr_timer_set(qmgr_now() + (double) var_queue_run_delay);
	qmgr_queue_kick();
}

/* qmgr_queue_trigger - one trigger byte */
void
qmgr_queue_trigger(int req)
{
	switch (req) {
	case 'A':
		qmgr_scan_start(&qmgr_scan_in, 0);
		break;
	case 'D':
		qmgr_scan_start(&qmgr_scan_def, 0);
		break;
	case 'F':
		qmgr_scan_start(&qmgr_scan_def, 1);
		qmgr_scan_start(&qmgr_scan_in, 0);
		break;
	default:
		return;
	}
	qmgr_queue_kick();
}

/* qmgr_queue_recover - files left in active/ go back to incoming/ */
void
qmgr_queue_recover(void)
{
	DIR    *d;
	struct dirent *de;
	size_t  n = 0;

	if ((d = opendir(QUEUE_ACTIVE)) == NULL) {
		log_warn("open %s/: %s", QUEUE_ACTIVE, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!qfile_id_valid(de->d_name))
			continue;
		if (qfile_move(".", QUEUE_ACTIVE, QUEUE_INCOMING, de->d_name) < 0)
			log_warn("%s: move back to %s/: %s", de->d_name,
				 QUEUE_INCOMING, strerror(errno));
		else
			n++;
	}
	closedir(d);
	if (n > 0)
		log_info("recovered %zu message%s left in %s/ by an earlier "
			 "run", n, n == 1 ? "" : "s", QUEUE_ACTIVE);
}

/* qmgr_queue_init - events, and the first scans */
void
qmgr_queue_init(void)
{
	qmgr_fill_ev = event_new(server_base(), -1, 0, qmgr_queue_fill, NULL);
	qmgr_timer_ev = evtimer_new(server_base(), qmgr_queue_timer, NULL);
	if (qmgr_fill_ev == NULL || qmgr_timer_ev == NULL)
		log_fatal("event_new: out of memory");
	qmgr_scan_start(&qmgr_scan_in, 0);
	qmgr_scan_start(&qmgr_scan_def, 0);
	qmgr_timer_set(qmgr_now() + (double) var_queue_run_delay);
	qmgr_queue_kick();
}
