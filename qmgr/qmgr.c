/*
 * qmgr - the queue manager
 *
 * SYNOPSIS
 *	qmgr -n SERVICE -t unix [-c CONFIG_DIR] [-v] [-o name=value ...]
 *	(started by master; see master(8))
 *
 * DESCRIPTION
 *	qmgr owns the active queue. It takes new mail from incoming/ and
 *	mail whose retry time has come from deferred/ (rename into
 *	active/), finds the nexthop of each recipient (transport_maps, else
 *	relayhost, else the recipient domain for an MX lookup), and hands
 *	one delivery request per message and nexthop to smtp-out over
 *	private/smtp (docs/ipc.md). It keeps per-destination and total
 *	concurrency limits and serves destinations round robin, so that one
 *	slow domain does not hold up the others.
 *
 *	Results: a delivered recipient gets its status byte set in the
 *	queue file at once (fdatasync), so it is never sent again, also
 *	after a crash. Bounced recipients are reported to the sender in
 *	one DSN by the bounce service, then marked. Deferred recipients
 *	keep the message in deferred/ with its modification time set to
 *	the next retry: exponential backoff between minimal_backoff_time
 *	and maximal_backoff_time (the message's age, clamped), or
 *	greylist_retry_time when every deferral looked like greylisting.
 *	After maximal_queue_lifetime the pending recipients expire and are
 *	returned to the sender; with delay_warning_time set, the sender
 *	gets one delay notice. Every attempt is appended to the message's
 *	history (queue_directory/history/ID) for "sendarix queue show".
 *	A message with every recipient done is removed with its history.
 *
 *	qmgr is event-driven and never polls: it wakes on a trigger byte on
 *	private/qmgr ('A' new mail, 'F' flush: every deferred message is
 *	due, 'D' scan deferred/ for due messages), at the earliest retry
 *	time, and every queue_run_delay for a safety scan. It holds at most
 *	qmgr_message_active_limit messages in memory (envelope and pending
 *	recipients, never content); the rest waits on disk.
 *
 *	At start it moves messages left in active/ by a crash back to
 *	incoming/ and delivers them; recipients already done are skipped.
 *	smtp-out records each final outcome in the queue file before it
 *	reports it, and bounce each notice, so a crash of qmgr or a reload
 *	sends nothing twice; only a recipient whose remote reply was on the
 *	wire when smtp-out died can go twice (docs/decisions.md "Exactly
 *	once").
 *
 *	master must run exactly one qmgr (master.cf process limit 1).
 *
 * SIGNALS
 *	SIGTERM: exit at once. SIGHUP (reload): take no new mail, hand out
 *	nothing new, wait up to 5 seconds for the replies of requests in
 *	flight, then exit. The replacement waits for that exit (a lock on
 *	pid/qmgr.lock) before it recovers active/. Either way a message
 *	still in the hands of smtp-out or bounce is locked by them, and a
 *	qmgr that finds it locked leaves it alone for a moment.
 *
 * SECURITY
 *	qmgr runs as mail_owner (the skeleton drops privileges), optionally
 *	chrooted to queue_directory. It reads queue files written by
 *	cleanup and the replies of smtp-out and bounce over private
 *	sockets; a file that does not parse goes to corrupt/, a bad reply
 *	defers the recipients. Trigger connections carry single bytes;
 *	unknown bytes are ignored. Nothing from a queue file or a socket
 *	ends the process.
 *
 * CONFIGURATION PARAMETERS
 *	queue_directory, relayhost, transport_maps, queue_run_delay,
 *	minimal_backoff_time, maximal_backoff_time, greylist_retry_time,
 *	maximal_queue_lifetime, delay_warning_time, qmgr_delivery_timeout,
 *	default_destination_concurrency_limit,
 *	qmgr_delivery_concurrency_limit, qmgr_message_active_limit,
 *	smtp_destination_recipient_limit (see the table below and
 *	sendarix-params(5)).
 *
 * DIAGNOSTICS
 *	Postfix-shaped lines: "QUEUEID: from=<sender>, size=N, nrcpt=M
 *	(queue active)", "QUEUEID: removed", "QUEUEID: to=<rcpt>,
 *	relay=none, delay=N, dsn=5.4.7, status=expired, returned to
 *	sender", "QUEUEID: deferred, N recipients pending, next retry in
 *	Ns". smtp-out logs the per-recipient delivery lines. Bad parameter
 *	values are fatal at start-up.
 *
 * SEE ALSO
 *	qmgr(8), docs/ipc.md, smtp-out(8), bounce(8), master(8),
 *	lib/global/qfile.c, lib/global/qhist.c
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "privs.h"
#include "qhist.h"
#include "server.h"
#include "server_params.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "qmgr.h"

long    var_queue_run_delay;
long    var_min_backoff;
long    var_max_backoff;
long    var_greylist_retry;
long    var_max_queue_lifetime;
long    var_delay_warning_time;
long    var_delivery_timeout;
long    var_dest_concurrency;
long    var_delivery_concurrency;
long    var_active_limit;
long    var_rcpt_limit;
char   *var_relayhost;
char   *var_transport_maps;
const char *var_bounce_service;
const char *var_smtp_service;

/*
 * The parameters qmgr reads (server_params(3)): defaults and ranges in
 * lib/global/conf_params.c, the ones "sendarix check" enforces.
 */
static const struct server_param qmgr_params[] = {
	SERVER_PARAM_STR("relayhost", &var_relayhost),
	SERVER_PARAM_STR("transport_maps", &var_transport_maps),
	SERVER_PARAM_LONG("queue_run_delay", &var_queue_run_delay),
	SERVER_PARAM_LONG("minimal_backoff_time", &var_min_backoff),
	SERVER_PARAM_LONG("maximal_backoff_time", &var_max_backoff),
	SERVER_PARAM_LONG("greylist_retry_time", &var_greylist_retry),
	SERVER_PARAM_LONG("maximal_queue_lifetime", &var_max_queue_lifetime),
	SERVER_PARAM_LONG("delay_warning_time", &var_delay_warning_time),
	SERVER_PARAM_LONG("qmgr_delivery_timeout", &var_delivery_timeout),
	SERVER_PARAM_LONG("default_destination_concurrency_limit",
			  &var_dest_concurrency),
	SERVER_PARAM_LONG("qmgr_delivery_concurrency_limit",
			  &var_delivery_concurrency),
	SERVER_PARAM_LONG("qmgr_message_active_limit", &var_active_limit),
	SERVER_PARAM_LONG("smtp_destination_recipient_limit", &var_rcpt_limit),
};

#define QMGR_SMTP_SERVICE	"smtp"	/* private/smtp: smtp-out */
#define QMGR_BOUNCE_SERVICE	"bounce"	/* private/bounce */
#define QMGR_TRIGGER_TIMEOUT	10	/* seconds for a trigger client */
#define QMGR_DRAIN_LIMIT	5	/* seconds a reload waits for replies */

/* A trigger connection. */
struct qmgr_trig {
	int     fd;
	struct event *ev;
};

static void qmgr_lock(const char *);

/* qmgr_pre_init - parameters; the qmgr lock while privileged */
static void
qmgr_pre_init(void)
{
	const char *queue_dir = conf_get("queue_directory");

	server_params_read(qmgr_params, SERVER_PARAMS_COUNT(qmgr_params));
	/* The master.cf service names of the transport and of bounce. */
	var_smtp_service = QMGR_SMTP_SERVICE;
	var_bounce_service = QMGR_BOUNCE_SERVICE;
	if (var_max_backoff < var_min_backoff)
		var_max_backoff = var_min_backoff;

	qmgr_route_init();
	qmgr_lock(queue_dir);
}

/* qmgr_post_init - recover active/, then scan */
static void
qmgr_post_init(struct event_base *unused_base)
{
	(void) unused_base;
	qmgr_queue_recover();
	qmgr_queue_init();
}

/* qmgr_trig_close - done with a trigger client */
static void
qmgr_trig_close(struct qmgr_trig *t)
{
	event_free(t->ev);
	(void) close(t->fd);
	free(t);
}

/* qmgr_trig_read - trigger bytes, until the client closes */
static void
qmgr_trig_read(evutil_socket_t fd, short what, void *ctx)
{
	struct qmgr_trig *t = ctx;
	char    buf[64];
	ssize_t n;
	ssize_t i;

	if (what & EV_TIMEOUT) {
		qmgr_trig_close(t);
		return;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		qmgr_trig_close(t);
		return;
	}
	for (i = 0; i < n; i++)
		qmgr_queue_trigger(buf[i]);
}

/* qmgr_accept - a trigger connection on private/qmgr */
static void
qmgr_accept(int fd, const struct sockaddr *unused_sa,
	    socklen_t unused_salen, const struct server_listener *unused_lp)
{
	struct qmgr_trig *t = xcalloc(1, sizeof(*t));
	struct timeval tv = {QMGR_TRIGGER_TIMEOUT, 0};

	(void) unused_sa;
	(void) unused_salen;
	(void) unused_lp;
	t->fd = fd;
	t->ev = event_new(server_base(), fd, EV_READ | EV_PERSIST,
			  qmgr_trig_read, t);
	if (t->ev == NULL || event_add(t->ev, &tv) < 0)
		log_fatal("event_new: out of memory");
}

/*
 * qmgr_sessions - what a reload waits for: requests in flight
 *
 * After SIGHUP qmgr takes no new mail and hands out nothing new
 * (server_stopping()), and waits up to QMGR_DRAIN_LIMIT seconds for the
 * replies of smtp-out and bounce, so that their results are recorded
 * and the messages end their pass. Whatever is still out then is safe
 * too: the delivery agents record outcomes in the queue files and hold
 * a lock that the next qmgr respects. The replacement qmgr waits for
 * this one's exit (qmgr_lock()) before it recovers active/.
 */
static size_t
qmgr_sessions(void)
{
	static time_t drain_start;
	size_t  n = qmgr_sched_inflight() + qmgr_msg_bounce_inflight();

	if (n == 0 || !server_stopping())
		return (n);
	if (drain_start == 0)
		drain_start = time(NULL);
	if (time(NULL) - drain_start >= QMGR_DRAIN_LIMIT) {
		log_info("leaving %zu request%s in flight to the next qmgr", n,
			 n == 1 ? "" : "s");
		return (0);
	}
	return (n);
}

/*
 * qmgr_lock - one qmgr owns the active queue at a time
 *
 * master starts the new qmgr of a reload while the old one still drains;
 * the new one waits here, on an exclusive lock of pid/qmgr.lock that the
 * old one holds for its whole life, and recovers active/ only after.
 */
static void
qmgr_lock(const char *queue_dir)
{
	size_t  len = strlen(queue_dir) + sizeof("/pid/qmgr.lock");
	char   *path = xmalloc(len);
	int     fd;

	snprintf(path, len, "%s/pid/qmgr.lock", queue_dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		log_fatal("open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK)
			log_fatal("lock %s: %s", path, strerror(errno));
		log_info("waiting for the previous qmgr to finish");
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR)
				log_fatal("lock %s: %s", path, strerror(errno));
	}
	/* The descriptor stays open (and locked) until we exit. */
	free(path);
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_init = qmgr_pre_init,
		.post_init = qmgr_post_init,
		.accept = qmgr_accept,
		.sessions = qmgr_sessions,
		.shutdown = NULL,
	};

	return (server_event_main(argc, argv, "qmgr", &ops));
}
