/*
 * cleanup_trigger - wake qmgr when new mail is in incoming/
 *
 * SYNOPSIS
 *	#include "cleanup.h"
 *
 *	void	cleanup_trigger_qmgr(void)
 *
 * DESCRIPTION
 *	cleanup_trigger_qmgr() connects to private/$qmgr_service_name
 *	(relative to queue_directory, the working directory) without
 *	blocking, writes the one byte "A" (docs/ipc.md) and closes. It is
 *	called once per group commit, however many messages that had.
 *
 *	Nothing here may block or fail a message: when qmgr is not running,
 *	its socket is missing or its backlog is full, the trigger is
 *	dropped; qmgr scans incoming/ when it starts, so no mail waits for
 *	long or is lost.
 *
 * DIAGNOSTICS
 *	A failed trigger is logged with log_debug() only.
 *
 * SEE ALSO
 *	docs/ipc.md "qmgr trigger"
 */

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#include "cleanup.h"

/* cleanup_trigger_qmgr - one byte to qmgr, never blocking */
void
cleanup_trigger_qmgr(void)
{
	struct sockaddr_un sun;
	int     fd;
	int     n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "private/%s",
		     var_qmgr_service_name);
	if (n < 0 || (size_t) n >= sizeof(sun.sun_path)) {
		log_debug("trigger: qmgr_service_name too long");
		return;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0)) < 0) {
		log_debug("trigger: socket: %s", strerror(errno));
		return;
	}
	/* A unix connect never waits: it succeeds or fails at once. */
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
		log_debug("trigger %s: %s", sun.sun_path, strerror(errno));
		(void) close(fd);
		return;
	}
	if (write(fd, "A", 1) != 1)
		log_debug("trigger %s: write: %s", sun.sun_path,
			  strerror(errno));
	(void) close(fd);
}
