/*
 * pickup - submit the files of the maildrop
 *
 * SYNOPSIS
 *	pickup -n SERVICE -t unix [-c CONFIG_DIR] [-v] [-o name=value ...]
 *	(started by master; see master(8))
 *
 * DESCRIPTION
 *	When the mail system is down, sendmail(1) leaves each message as a
 *	file in queue_directory/maildrop/ (format: docs/ipc.md). pickup
 *	submits those files to cleanup on private/$cleanup_service_name
 *	as local submissions by each file's owner (pickup_file.c), and
 *	removes a file only once cleanup has confirmed the queue file.
 *
 *	pickup scans maildrop/ when it starts, whenever somebody connects
 *	to its socket (public/pickup: sendmail writes one byte there after
 *	it drops a file), and every SENDARIX_WAKEUP seconds (the master.cf
 *	wakeup column; 60 without it). Files are taken in name order, one
 *	at a time; names that start with "." are being written and are
 *	left alone (removed once they are a day old: a sendmail that died).
 *
 * SIGNALS
 *	SIGTERM and SIGHUP: stop after the file being submitted; an
 *	unfinished submission is dropped by cleanup and the file stays.
 *
 * SECURITY
 *	pickup runs as mail_owner, which owns maildrop/ (mode 3733: any
 *	user may add a file, nobody else may list or remove it; files get
 *	mail_owner's group and are readable by it). Every file is
 *	untrusted: its owner uid (from the file system, never from the
 *	file) is the submitter, and cleanup applies authorized_submit_users
 *	and local_login_sender_maps to that user. Only the envelope
 *	attributes sendmail may send are accepted; a file that is not a
 *	plain file with one link, or that does not parse, goes to corrupt/.
 *
 * CONFIGURATION PARAMETERS
 *	queue_directory, cleanup_service_name, cleanup_timeout (the wait
 *	for each cleanup reply).
 *
 * DIAGNOSTICS
 *	"QUEUEID: uid=N from=<sender>" is logged by cleanup;
 *	"NAME: uid=N: ..." warnings for refused and corrupt files.
 *
 * SEE ALSO
 *	pickup(8), sendmail(1), cleanup(8), docs/ipc.md
 */

#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "server_params.h"
#include "xmalloc.h"

#include "pickup.h"

#define PICKUP_WAKEUP_DEFAULT	60

char   *var_cleanup_service_name;
long long var_pickup_timeout;

static struct event *pickup_scan_ev;	/* the periodic and triggered scan */
static struct timeval pickup_wakeup;

/*
 * The parameters pickup reads (server_params(3)): defaults and ranges in
 * lib/global/conf_params.c, the ones "sendarix check" enforces. pickup
 * waits for cleanup as long as cleanup waits for a client.
 */
static const struct server_param pickup_params[] = {
	SERVER_PARAM_NAME("cleanup_service_name", &var_cleanup_service_name),
	SERVER_PARAM_LLONG("cleanup_timeout", &var_pickup_timeout),
};

/* pickup_pre_init - the parameters */
static void
pickup_pre_init(void)
{
	const char *v;
	long    secs;

	server_params_read(pickup_params, SERVER_PARAMS_COUNT(pickup_params));
	secs = PICKUP_WAKEUP_DEFAULT;
	if ((v = getenv("SENDARIX_WAKEUP")) != NULL && atol(v) > 0)
		secs = atol(v);
	pickup_wakeup.tv_sec = secs;
	pickup_wakeup.tv_usec = 0;
}

/* pickup_name_cmp - file names in order (they start with the time) */
static int
pickup_name_cmp(const void *a, const void *b)
{
	return (strcmp(*(char *const *) a, *(char *const *) b));
}

/* pickup_stale - remove an unfinished file a dead sendmail left */
static void
pickup_stale(const char *name)
{
	struct stat st;
	char    path[512];

	snprintf(path, sizeof(path), "%s/%s", PICKUP_MAILDROP, name);
	if (lstat(path, &st) == 0 && st.st_mtime + PICKUP_STALE_TMP
	    < time(NULL)) {
		log_warn("%s: removing an unfinished maildrop file of uid %lu",
			 name, (unsigned long) st.st_uid);
		(void) unlink(path);
	}
}

/* pickup_scan - submit every finished file in maildrop/ */
static void
pickup_scan(void)
{
	DIR    *dir;
	struct dirent *de;
	char  **names = NULL;
	size_t  n = 0;
	size_t  i;

	if ((dir = opendir(PICKUP_MAILDROP)) == NULL) {
		log_warn("open %s: %s", PICKUP_MAILDROP, strerror(errno));
		return;
	}
	while ((de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0
		    || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == '.') {
			pickup_stale(de->d_name);
			continue;
		}
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	if (n > 1)
		qsort(names, n, sizeof(*names), pickup_name_cmp);
	for (i = 0; i < n; i++) {
		/* A stop request waits for the file in hand, not the rest. */
		if (!server_stopping()
		    && pickup_file(names[i]) == PICKUP_KEEP)
			log_debug("%s: kept for the next scan", names[i]);
		xfree(names[i]);
	}
	xfree(names);
}

/* pickup_scan_cb - timer or trigger: scan, then wait for the next */
static void
pickup_scan_cb(evutil_socket_t unused_fd, short unused_what, void *unused)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused;
	pickup_scan();
	if (!server_stopping())
		evtimer_add(pickup_scan_ev, &pickup_wakeup);
}

/* pickup_post_init - the first scan comes at once */
static void
pickup_post_init(struct event_base *base)
{
	if ((pickup_scan_ev = evtimer_new(base, pickup_scan_cb, NULL)) == NULL)
		log_fatal("evtimer_new: out of memory");
	event_active(pickup_scan_ev, EV_TIMEOUT, 0);
}

/* pickup_accept - a trigger on public/pickup: scan now */
static void
pickup_accept(int fd, const struct sockaddr *unused_sa,
	      socklen_t unused_salen, const struct server_listener *unused_lp)
{
	(void) unused_sa;
	(void) unused_salen;
	(void) unused_lp;
	/* The byte itself says nothing more; the file is there already. */
	(void) close(fd);
	server_session_done();
	if (!server_stopping()) {
		evtimer_del(pickup_scan_ev);
		event_active(pickup_scan_ev, EV_TIMEOUT, 0);
	}
}

/* pickup_sessions - nothing stays open between events */
static size_t
pickup_sessions(void)
{
	return (0);
}

/* pickup_shutdown - SIGTERM: nothing is in flight between events */
static void
pickup_shutdown(void)
{
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_init = pickup_pre_init,
		.post_init = pickup_post_init,
		.accept = pickup_accept,
		.sessions = pickup_sessions,
		.shutdown = pickup_shutdown,
	};

	return (server_event_main(argc, argv, "pickup", &ops));
}
