/*
 * cleanup_sync - fsync and rename finished queue files off the event loop
 *
 * SYNOPSIS
 *	#include "cleanup.h"
 *
 *	void	cleanup_sync_init(struct event_base *base)
 *	void	cleanup_sync_add(struct cleanup_sess *s)
 *	void	cleanup_sync_drain(void)
 *
 * DESCRIPTION
 *	A finished message needs its file fsynced and then renamed into
 *	incoming/ before it may join the group commit (cleanup_commit.c).
 *	An fsync takes a disk flush; done in the event loop it stalls every
 *	other session for that long. Here a few worker threads do it:
 *
 *	cleanup_sync_init() starts CLEANUP_SYNC_THREADS workers and an
 *	eventfd that the loop watches.
 *
 *	cleanup_sync_add() hands over a session whose file is ended
 *	(qfile_out_end()); the session stops reading from its client. A
 *	worker runs qfile_out_sync() (fsync, then rename; it touches only
 *	the session's qfile_out and its own error buffer), puts the session
 *	on the done list and wakes the loop. The loop's callback moves every
 *	done session to the group commit at once, so that files synced at
 *	the same time share one fsync of incoming/; a failed one gets
 *	status 4 (4.3.1 when the file system is full). The order file fsync, rename, directory fsync, reply is
 *	kept for every message. fsyncs that the workers issue at the same
 *	time overlap (a journalling file system merges them into one
 *	commit) instead of following each other.
 *
 *	A session that is cleanup's only one, while no file is with a
 *	worker, is synced in the loop instead: nobody else would wait for
 *	that flush, and the hand-over to a worker and back (two thread
 *	wake-ups) cost about as much as the directory fsync.
 *
 *	cleanup_sync_drain() (SIGTERM) waits until no file is with a worker
 *	and moves the done ones to the group commit.
 *
 *	Workers never log and never touch libevent or the session list.
 *
 * SEE ALSO
 *	cleanup_commit.c, lib/global/qfile.c
 */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "qfile.h"
#include "strbuf.h"

#include "cleanup.h"

#ifndef CLEANUP_SYNC_THREADS
#define CLEANUP_SYNC_THREADS	4
#endif

static pthread_mutex_t cleanup_sync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cleanup_sync_work = PTHREAD_COND_INITIALIZER;
static struct cleanup_sess *cleanup_sync_todo;	/* oldest first */
static struct cleanup_sess **cleanup_sync_tail = &cleanup_sync_todo;
static struct cleanup_sess *cleanup_sync_done;
static size_t cleanup_sync_busy;		/* with a worker or todo */
static int cleanup_sync_fd = -1;
static struct event *cleanup_sync_ev;

/*
 * cleanup_sync_hold - smtpd's HOLD: the file went straight from tmp/ to
 * hold/ (it is never in incoming/, where qmgr would take it); fsync
 * hold/; 0 or -1 (the file is then removed)
 */
static int
cleanup_sync_hold(struct cleanup_sess *s)
{
	char   *path;
	int     saved;

	if (qfile_dir_sync(CLEANUP_QUEUE_DIR, QUEUE_HOLD, s->sync_err) < 0) {
		saved = errno;
		path = qfile_path(CLEANUP_QUEUE_DIR, QUEUE_HOLD, s->id);
		(void) unlink(path);
		free(path);
		errno = saved;
		return (-1);
	}
	return (0);
}

/* cleanup_sync_file - fsync and rename one file; the result in s */
static void
cleanup_sync_file(struct cleanup_sess *s)
{
	s->sync_status = qfile_out_sync_to(s->qf, s->hold ?
				    QUEUE_HOLD : QUEUE_INCOMING, s->sync_err);
	if (s->sync_status == 0 && s->hold)
		s->sync_status = cleanup_sync_hold(s);
	s->sync_errno = s->sync_status < 0 ? errno : 0;
}

/* cleanup_sync_finish - in the loop: a synced file to the group commit */
static void
cleanup_sync_finish(struct cleanup_sess *s)
{
	if (s->sync_status == 0) {
		s->state = CLEANUP_ST_COMMIT;
		cleanup_commit_add(s);
	} else {
		log_warn("%s: %s", s->id, s->sync_err->data);
		cleanup_session_reply(s, 4, cleanup_write_reason(s->id,
							    s->sync_errno));
	}
}

/* cleanup_sync_worker - fsync and rename, one file at a time */
static void *
cleanup_sync_worker(void *unused_arg)
{
	struct cleanup_sess *s;
	uint64_t one = 1;

	(void) unused_arg;
	(void) pthread_mutex_lock(&cleanup_sync_lock);
	for (;;) {
		while (cleanup_sync_todo == NULL)
			(void) pthread_cond_wait(&cleanup_sync_work,
						 &cleanup_sync_lock);
		s = cleanup_sync_todo;
		if ((cleanup_sync_todo = s->sync_next) == NULL)
			cleanup_sync_tail = &cleanup_sync_todo;
		(void) pthread_mutex_unlock(&cleanup_sync_lock);

		cleanup_sync_file(s);

		(void) pthread_mutex_lock(&cleanup_sync_lock);
		s->sync_next = cleanup_sync_done;
		cleanup_sync_done = s;
		if (write(cleanup_sync_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN only: the counter is already set. */
		}
	}
	/* NOTREACHED */
	return (NULL);
}

/* cleanup_sync_collect - move the done sessions to the group commit */
static void
cleanup_sync_collect(void)
{
	struct cleanup_sess *s;
	struct cleanup_sess *next;
	size_t  n = 0;

	(void) pthread_mutex_lock(&cleanup_sync_lock);
	s = cleanup_sync_done;
	cleanup_sync_done = NULL;
	for (next = s; next != NULL; next = next->sync_next)
		n++;
	cleanup_sync_busy -= n;
	(void) pthread_mutex_unlock(&cleanup_sync_lock);

	for (; s != NULL; s = next) {
		next = s->sync_next;
		cleanup_sync_finish(s);
	}
}

/* cleanup_sync_cb - the eventfd: workers have finished files */
static void
cleanup_sync_cb(evutil_socket_t fd, short unused_what, void *unused_ctx)
{
	uint64_t count;

	(void) unused_what;
	(void) unused_ctx;
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warn("read eventfd: %s", strerror(errno));
	cleanup_sync_collect();
}

/* cleanup_sync_init - start the workers */
void
cleanup_sync_init(struct event_base *base)
{
	pthread_attr_t attr;
	pthread_t tid;
	sigset_t all;
	sigset_t old;
	int     i;
	int     err;

	cleanup_sync_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (cleanup_sync_fd < 0)
		log_fatal("eventfd: %s", strerror(errno));
	cleanup_sync_ev = event_new(base, cleanup_sync_fd, EV_READ | EV_PERSIST,
				    cleanup_sync_cb, NULL);
	if (cleanup_sync_ev == NULL || event_add(cleanup_sync_ev, NULL) < 0)
		log_fatal("event_new: out of memory");
	(void) pthread_attr_init(&attr);
	(void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	(void) pthread_attr_setstacksize(&attr, 64 * 1024);
	/* Signals go to the loop's thread: workers block them all. */
	(void) sigfillset(&all);
	(void) pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < CLEANUP_SYNC_THREADS; i++)
		if ((err = pthread_create(&tid, &attr, cleanup_sync_worker,
					  NULL)) != 0)
			log_fatal("pthread_create: %s", strerror(err));
	(void) pthread_sigmask(SIG_SETMASK, &old, NULL);
	(void) pthread_attr_destroy(&attr);
}

/* cleanup_sync_add - give an ended file to a worker */
void
cleanup_sync_add(struct cleanup_sess *s)
{
	s->state = CLEANUP_ST_SYNC;
	event_del(s->rev);		/* nothing more to read; no timeout */
	if (s->sync_err == NULL)
		s->sync_err = strbuf_new(128, 1024);

	/*
	 * The only session, with no file at a worker: no one else would
	 * wait for the flush, so it is done here, without the two thread
	 * wake-ups (a third of the latency of one message at one session).
	 */
	if (cleanup_session_count() == 1 && cleanup_sync_busy == 0) {
		cleanup_sync_file(s);
		cleanup_sync_finish(s);
		return;
	}
	(void) pthread_mutex_lock(&cleanup_sync_lock);
	s->sync_next = NULL;
	*cleanup_sync_tail = s;
	cleanup_sync_tail = &s->sync_next;
	cleanup_sync_busy++;
	(void) pthread_cond_signal(&cleanup_sync_work);
	(void) pthread_mutex_unlock(&cleanup_sync_lock);
}

/* cleanup_sync_drain - SIGTERM: wait for the workers, then collect */
void
cleanup_sync_drain(void)
{
	struct cleanup_sess *s;
	size_t  done;

	if (cleanup_sync_fd < 0)
		return;
	(void) pthread_mutex_lock(&cleanup_sync_lock);
	for (;;) {
		done = 0;
		for (s = cleanup_sync_done; s != NULL; s = s->sync_next)
			done++;
		if (done == cleanup_sync_busy)
			break;
		/* Workers signal the eventfd, not this; poll briefly. */
		(void) pthread_mutex_unlock(&cleanup_sync_lock);
		(void) usleep(1000);
		(void) pthread_mutex_lock(&cleanup_sync_lock);
	}
	(void) pthread_mutex_unlock(&cleanup_sync_lock);
	cleanup_sync_collect();
}
