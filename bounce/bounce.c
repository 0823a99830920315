/*
 * bounce - send delivery status notifications
 *
 * SYNOPSIS
 *	bounce -n SERVICE -t unix [-c CONFIG_DIR] [-v] [-o name=value ...]
 *	(started by master; see master(8))
 *
 * DESCRIPTION
 *	bounce tells senders what happened to their mail. The queue manager
 *	asks it, on private/bounce, for one notification at a time
 *	(docs/ipc.md "bounce"): the message's queue ID and queue file, the
 *	kind of notice (failure, delay, expired, success) and, for each
 *	recipient to report, the enhanced status code, the relay, the
 *	reply and the offset of its status byte in the queue file.
 *
 *	bounce reads the original from the queue file and writes a
 *	delivery status notification (RFC 3464) as a multipart/report
 *	(RFC 6522): a text/plain explanation in Postfix's words, a
 *	message/delivery-status part (Reporting-MTA, X-Sendarix-Queue-ID,
 *	Original-Envelope-Id, Arrival-Date; per recipient Final-Recipient,
 *	Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *	Last-Attempt-Date, Will-Retry-Until), and the original: the whole
 *	message as message/rfc822, or only its header section as
 *	text/rfc822-headers when the sender asked for RET=HDRS, when the
 *	message is larger than bounce_size_limit, and in delay and success
 *	notices. The notice starts with bounce's own Received header.
 *
 *	Each notice is sent once: bounce holds a shared lock on the queue
 *	file, reports only recipients whose status byte still says a notice
 *	is owed (F failed, N success, - for expiry), and once cleanup has
 *	queued the notice sets the final byte (B, D, X) before it replies;
 *	a delay notice is recorded in the message's history and not sent
 *	again.
 *
 *	The notice is submitted through cleanup like any message, from the
 *	null sender to the original sender, and bounce replies with its
 *	queue ID. If cleanup cannot take it, the reply is status 4 and the
 *	queue manager asks again later.
 *
 *	The DSN parameters of RFC 3461 are honoured: a recipient with
 *	NOTIFY=NEVER, or with a NOTIFY list without FAILURE (failure and
 *	expired notices) or without DELAY (delay notices), is left out;
 *	without NOTIFY both are sent. When nobody is left, no notice goes
 *	out. ENVID comes back as Original-Envelope-Id, ORCPT as
 *	Original-Recipient.
 *
 *	A message from the null sender is a notification itself. A failure
 *	to deliver it is a double bounce: it goes to
 *	double_bounce_recipient when that is set, else it is logged and
 *	dropped; a failed notice to double_bounce_recipient is dropped
 *	too (no loop). Nothing is ever sent to the null sender.
 *
 * SIGNALS
 *	SIGTERM: close every connection and exit (an unanswered request is
 *	asked again). SIGHUP: stop accepting, finish the open requests,
 *	exit.
 *
 * SECURITY
 *	bounce runs as mail_owner (master starts it, the skeleton drops
 *	privileges), optionally chrooted to queue_directory. It reads queue
 *	files and writes only status bytes (qfile_mark(), at an offset it
 *	checked is that recipient's status byte), appends to the history,
 *	and connects to private/cleanup. Its
 *	requests come from qmgr on a private socket, but the queue file
 *	holds data from the network: the path is checked to stay inside the
 *	queue, and every value copied into the notice is made one line of
 *	text first. Bad input ends one request with a warning, never the
 *	process.
 *
 * CONFIGURATION PARAMETERS
 *	myhostname, cleanup_service_name, bounce_size_limit,
 *	double_bounce_recipient, bounce_timeout, maximal_queue_lifetime
 *	(for Will-Retry-Until, when that parameter exists); see
 *	sendarix-params(5).
 *
 * DIAGNOSTICS
 *	Postfix-shaped lines: "QUEUEID: sender non-delivery notification:
 *	NEWID", "QUEUEID: sender delay notification: NEWID",
 *	"QUEUEID: sender delivery status notification: NEWID",
 *	"QUEUEID: postmaster non-delivery notification: NEWID",
 *	"QUEUEID: undeliverable message from <>: double bounce, discarded".
 *	Bad parameter values are fatal at start-up.
 *
 * SEE ALSO
 *	bounce(8), docs/ipc.md, qmgr(8), cleanup(8), lib/global/dsn.c, RFC 3461,
 *	RFC 3464, RFC 6522
 */

#include <sys/stat.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#include "bounce.h"

char   *var_bounce_myhostname;
char   *var_bounce_cleanup_path;
char   *var_double_bounce_recipient;
long long var_bounce_size_limit;
long    var_bounce_timeout;
long    var_bounce_queue_lifetime;


/*
 * The parameters bounce reads (server_params(3)): defaults and ranges in
 * lib/global/conf_params.c, the ones "sendarix check" enforces.
 */
static const struct server_param bounce_params[] = {
	SERVER_PARAM_STR("double_bounce_recipient",
			 &var_double_bounce_recipient),
	SERVER_PARAM_LLONG("bounce_size_limit", &var_bounce_size_limit),
	SERVER_PARAM_LONG("bounce_timeout", &var_bounce_timeout),
};

/* bounce_pre_init - read the parameters */
static void
bounce_pre_init(void)
{
	char    host[256];
	const char *v;
	size_t  len;

	v = conf_get("myhostname");
	if (v == NULL || *v == 0) {
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = 0;
		v = host;
	}
	free(var_bounce_myhostname);
	var_bounce_myhostname = xstrdup(v);

	v = conf_get("cleanup_service_name");
	if (v == NULL || *v == 0)
		log_fatal("parameter cleanup_service_name: empty value");
	len = strlen(v) + sizeof("private/");
	free(var_bounce_cleanup_path);
	var_bounce_cleanup_path = xmalloc(len);
	snprintf(var_bounce_cleanup_path, len, "private/%s", v);


	server_params_read(bounce_params, SERVER_PARAMS_COUNT(bounce_params));
	/* qmgr's parameter, when qmgr is there: for Will-Retry-Until. */
	var_bounce_queue_lifetime =
		conf_param_find("maximal_queue_lifetime") ?
		conf_get_time("maximal_queue_lifetime") : 0;
}

/* bounce_post_init - the loop exists */
static void
bounce_post_init(struct event_base *base)
{
	bounce_session_init(base);
}

/* bounce_accept - a new client on private/bounce */
static void
bounce_accept(int fd, const struct sockaddr *unused_sa,
	      socklen_t unused_salen, const struct server_listener *unused_lp)
{
	(void) unused_sa;
	(void) unused_salen;
	(void) unused_lp;
	bounce_session_accept(fd);
}

/* bounce_sessions - open requests, for a graceful stop */
static size_t
bounce_sessions(void)
{
	return (bounce_session_count());
}

/* bounce_shutdown - SIGTERM */
static void
bounce_shutdown(void)
{
	bounce_session_shutdown();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_init = bounce_pre_init,
		.post_init = bounce_post_init,
		.accept = bounce_accept,
		.sessions = bounce_sessions,
		.shutdown = bounce_shutdown,
	};

	return (server_event_main(argc, argv, "bounce", &ops));
}
