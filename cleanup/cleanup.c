/*
 * cleanup - canonicalize and enqueue mail
 *
 * SYNOPSIS
 *	cleanup -n SERVICE -t unix [-c CONFIG_DIR] [-v] [-o name=value ...]
 *	(started by master; see master(8))
 *
 * DESCRIPTION
 *	cleanup receives messages on private/cleanup from smtpd, bounce and
 *	pickup (and on public/sendmail from sendmail, cleanup_local.c),
 *	following docs/ipc.md: an envelope
 *	attribute list (sender, rcpt..., client_addr, client_name, helo,
 *	protocol, body, smtputf8, size), then the content as "data"
 *	attributes. It writes the queue file in tmp/ (lib/global/qfile.c): the
 *	envelope as S, A and R records, then the content.
 *
 *	While the header section streams in it is kept in memory, up to
 *	header_size_limit bytes, and checked: a larger header section is
 *	refused with "5.3.4 Message header size exceeds limit"; more
 *	Received: headers than hopcount_limit are refused with "5.4.6 Too
 *	many hops". A missing Message-ID: ("<YYYYMMDDHHMMSS.QUEUEID@
 *	myhostname>", UTC stamp) or Date: (local time, numeric zone) is
 *	added at the end of the header section. The body is written as it
 *	arrives; the content is stored byte for byte apart from the added
 *	headers. Content over message_size_limit is refused with "5.3.4
 *	Message file too big".
 *
 *	At the end of the content the file gets its end marker and size,
 *	is fsynced and renamed into incoming/. Only after the incoming/
 *	directory is fsynced does the client get status 0 with the queue
 *	ID; any error before that removes the file and answers status 4 or
 *	5 with a reason. Nothing partial ever reaches incoming/. Then
 *	cleanup wakes qmgr with one byte on private/$qmgr_service_name,
 *	without blocking; if qmgr is not there, that is not an error.
 *
 * DESIGN
 *	Unlike Postfix's cleanup (one client per process), this cleanup is
 *	event-driven: one process serves many submissions on one loop with
 *	the lib/master/server.h skeleton, as smtpd does. That lets messages that
 *	finish at the same time share one fsync of the incoming/ directory
 *	(group commit, cleanup_commit.c), which DESIGN.md's performance
 *	section asks for, and saves a process per message. master runs
 *	exactly maxproc cleanup processes.
 *
 * SIGNALS
 *	SIGTERM: answer the messages already renamed into incoming/, remove
 *	every unfinished file from tmp/, and exit. SIGHUP: stop accepting,
 *	finish the open submissions, then exit.
 *
 * SECURITY
 *	cleanup runs as mail_owner (master starts it, the skeleton drops
 *	privileges), optionally chrooted to queue_directory. It writes only
 *	to tmp/ and incoming/ and connects to private/. Its input comes from
 *	smtpd over a private socket: trusted to follow the protocol but
 *	parsed strictly (attribute syntax, value sizes, recipient count,
 *	header size, timeouts) since it carries data from the network. Bad
 *	input ends that one session with a warning, never the process.
 *
 * CONFIGURATION PARAMETERS
 *	queue_directory, myhostname, header_size_limit, hopcount_limit,
 *	message_size_limit, cleanup_timeout, cleanup_max_sessions,
 *	myorigin, authorized_submit_users, local_login_sender_maps,
 *	qmgr_service_name (see the table below and sendarix-params(5)).
 *
 * DIAGNOSTICS
 *	Postfix-shaped lines: "QUEUEID: message-id=<...>",
 *	"QUEUEID: from=<sender>, size=N, nrcpt=M (queued)",
 *	"QUEUEID: reject: REASON; from=<sender>, nrcpt=M". Bad parameter
 *	values are fatal at start-up.
 *
 * SEE ALSO
 *	cleanup(8), docs/ipc.md, smtpd(8), master(8), lib/global/hdr.c, lib/global/qfile.c
 */

#include <stddef.h>
#include <stdlib.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "server_params.h"
#include "xmalloc.h"

#include "cleanup.h"

char   *var_myhostname;
char   *var_qmgr_service_name;
long long var_header_size_limit;
long long var_message_size_limit;
long long var_hopcount_limit;
long long var_cleanup_timeout;
long long var_cleanup_max_sessions;

/*
 * The parameters cleanup reads (server_params(3)): defaults and ranges
 * in lib/global/conf_params.c, the ones "sendarix check" enforces.
 */
static const struct server_param cleanup_params[] = {
	SERVER_PARAM_STR("myhostname", &var_myhostname),
	SERVER_PARAM_NAME("qmgr_service_name", &var_qmgr_service_name),
	SERVER_PARAM_LLONG("header_size_limit", &var_header_size_limit),
	SERVER_PARAM_LLONG("message_size_limit", &var_message_size_limit),
	SERVER_PARAM_LLONG("hopcount_limit", &var_hopcount_limit),
	SERVER_PARAM_LLONG("cleanup_timeout", &var_cleanup_timeout),
	SERVER_PARAM_LLONG("cleanup_max_sessions", &var_cleanup_max_sessions),
};

/* cleanup_pre_init - read the parameters (queue_directory: skeleton) */
static void
cleanup_pre_init(void)
{
	server_params_read(cleanup_params, SERVER_PARAMS_COUNT(cleanup_params));
	cleanup_local_init();
}

/* cleanup_post_init - the loop exists: set up sessions and group commit */
static void
cleanup_post_init(struct event_base *base)
{
	cleanup_session_init(base);
	cleanup_commit_init(base);
	cleanup_sync_init(base);
}

/* cleanup_accept - a new client on private/cleanup */
static void
cleanup_accept(int fd, const struct sockaddr *unused_sa,
	       socklen_t unused_salen,
	       const struct server_listener *unused_lp)
{
	(void) unused_sa;
	(void) unused_salen;
	(void) unused_lp;
	cleanup_session_accept(fd);
}

/* cleanup_sessions - open submissions, for a graceful stop */
static size_t
cleanup_sessions(void)
{
	return (cleanup_session_count());
}

/* cleanup_shutdown - SIGTERM */
static void
cleanup_shutdown(void)
{
	cleanup_session_shutdown();
}

int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		.pre_init = cleanup_pre_init,
		.post_init = cleanup_post_init,
		.accept = cleanup_accept,
		.sessions = cleanup_sessions,
		.shutdown = cleanup_shutdown,
	};

	return (server_event_main(argc, argv, "cleanup", &ops));
}
