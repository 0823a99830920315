/*
 * cleanup_commit - group commit: one directory fsync for many messages
 *
 * SYNOPSIS
 *	#include "cleanup.h"
 *
 *	void	cleanup_commit_init(struct event_base *base)
 *	void	cleanup_commit_add(struct cleanup_sess *s)
 *	void	cleanup_commit_run(void)
 *
 * DESCRIPTION
 *	A message is safe only after its file is fsynced, renamed into
 *	incoming/ and the incoming/ directory is fsynced. The first two are
 *	per message (qfile_out_finish()); the directory fsync is shared:
 *	cleanup_commit_add() puts a finished session on the pending list
 *	and, once per batch, makes an event active. Its callback runs after
 *	the other events of the same loop pass, so every message that
 *	finished in that pass is on the list: cleanup_commit_run() fsyncs
 *	incoming/ once, then answers status 0 and the queue ID to each of
 *	them and wakes qmgr once (cleanup_trigger.c).
 *
 *	If the directory fsync fails, none of the messages is confirmed:
 *	each file is removed from incoming/ again and each client gets
 *	status 4, so that it keeps the message and tries again later.
 *
 *	cleanup_commit_run() is also called directly at SIGTERM.
 *
 * DIAGNOSTICS
 *	"QUEUEID: from=<sender>, size=N, nrcpt=M (queued)" per message.
 *	A failed fsync: one warning per message.
 *
 * SEE ALSO
 *	DESIGN.md "Performance", lib/global/qfile.c
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "qfile.h"
#include "strbuf.h"

#include "cleanup.h"

static struct event *cleanup_commit_ev;
static struct cleanup_sess *cleanup_commit_head;
static struct cleanup_sess **cleanup_commit_tail = &cleanup_commit_head;
static int cleanup_commit_scheduled;

/* cleanup_commit_cb - the deferred batch */
static void
cleanup_commit_cb(evutil_socket_t unused_fd, short unused_what,
		  void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	cleanup_commit_run();
}

/* cleanup_commit_init - make the batch event */
void
cleanup_commit_init(struct event_base *base)
{
	cleanup_commit_ev = event_new(base, -1, 0, cleanup_commit_cb, NULL);
	if (cleanup_commit_ev == NULL)
		log_fatal("event_new: out of memory");
}

/* cleanup_commit_add - a finished message waits for the directory fsync */
void
cleanup_commit_add(struct cleanup_sess *s)
{
	s->commit_next = NULL;
	*cleanup_commit_tail = s;
	cleanup_commit_tail = &s->commit_next;
	if (!cleanup_commit_scheduled) {
		cleanup_commit_scheduled = 1;
		event_active(cleanup_commit_ev, EV_TIMEOUT, 0);
	}
}

/* cleanup_commit_run - fsync incoming/ once, answer every waiting client */
void
cleanup_commit_run(void)
{
	struct cleanup_sess *s;
	struct cleanup_sess *next;
	struct strbuf *err;
	char   *path;
	int     ok;
	int     saved;
	int     n = 0;

	s = cleanup_commit_head;
	cleanup_commit_head = NULL;
	cleanup_commit_tail = &cleanup_commit_head;
	cleanup_commit_scheduled = 0;
	if (s == NULL)
		return;

	err = strbuf_new(128, 1024);
	ok = (qfile_dir_sync(CLEANUP_QUEUE_DIR, QUEUE_INCOMING, err) == 0);
	saved = ok ? 0 : errno;
	for (; s != NULL; s = next, n++) {
		next = s->commit_next;		/* the reply may free s */
		if (ok) {
			log_info("%s: from=<%s>, size=%lld, nrcpt=%zu (%s)",
				 s->id, s->sender, qfile_out_size(s->qf),
				 s->nrcpt, s->hold ? "held" : "queued");
			if (s->hold)
				log_info("%s: hold: %s", s->id, s->hold);
			s->qf = qfile_out_free(s->qf);
			cleanup_session_reply(s, 0, s->id);
		} else {
			log_warn("%s: %s; message not accepted", s->id,
				 err->data);
			s->qf = qfile_out_free(s->qf);
			path = qfile_path(CLEANUP_QUEUE_DIR, s->hold ?
					  QUEUE_HOLD : QUEUE_INCOMING, s->id);
			if (unlink(path) < 0 && errno != ENOENT)
				log_warn("%s: remove %s: %s", s->id, path,
					 strerror(errno));
			free(path);
			cleanup_session_reply(s, 4, cleanup_write_reason(s->id,
								       saved));
		}
	}
	strbuf_free(err);
	log_debug("group commit: %d message%s, %s", n, n == 1 ? "" : "s",
		  ok ? "ok" : "failed");
	if (ok)
		cleanup_trigger_qmgr();
}
