/*
 * bounce_cleanup - submit a notification through cleanup
 *
 * SYNOPSIS
 *	#include "bounce.h"
 *
 *	int	bounce_cleanup_submit(const char *rcpt, int flags,
 *			bounce_compose_fn compose, void *ctx,
 *			struct bounce_result *res)
 *
 * DESCRIPTION
 *	bounce_cleanup_submit() plays smtpd's part of the cleanup protocol
 *	(docs/ipc.md) on private/$cleanup_service_name: the envelope (the
 *	null sender, one recipient "rcpt", body=8BITMIME with the flag
 *	BOUNCE_SUBMIT_8BIT, smtputf8=1 with BOUNCE_SUBMIT_UTF8),
 *	cleanup's first reply with the new queue ID, then the content that
 *	compose(queue_id, buf, ctx) writes into "buf" (it returns 0, or -1
 *	to give up), sent as "data" attributes, then the end of the list
 *	and cleanup's verdict.
 *
 *	It returns 0 with res->status 0 and res->queue_id set once cleanup
 *	says the message is in incoming/. Otherwise it returns -1 with
 *	res->status 4 (cleanup unreachable, slow, or refusing for now: try
 *	again later) or 5 (cleanup refused the message for good) and
 *	res->reason; the partial message is then gone (cleanup removes it
 *	when the connection closes early).
 *
 *	The protocol is lib/global/cleanup_client.c's, used blocking:
 *	every step waits at most bounce_timeout. The wait blocks the
 *	process: bounce handles one request at a time, which suits its
 *	volume. XXX the event-driven use of the same client (as smtpd's)
 *	would let one slow cleanup not hold up other notifications.
 *
 * DIAGNOSTICS
 *	A warning for each failure, with the original's queue ID in the
 *	caller's log line.
 *
 * SEE ALSO
 *	docs/ipc.md, cleanup(8)
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "attr.h"
#include "cleanup_client.h"
#include "log.h"
#include "mail_attr.h"
#include "strbuf.h"

#include "bounce.h"

#define BOUNCE_CLEANUP_DOWN	"4.3.0 cleanup service unavailable"

/* bounce_cleanup_result - what cleanup said, in bounce's result */
static void
bounce_cleanup_result(const struct cleanup_result *cr,
		      struct bounce_result *res)
{
	res->queue_id[0] = 0;
	if (cr->lost[0] && !cr->committed) {
		log_warn("cleanup service %s: %s", var_bounce_cleanup_path,
			 cr->lost);
		res->status = 4;
		snprintf(res->reason, sizeof(res->reason), "%s",
			 BOUNCE_CLEANUP_DOWN);
	} else if (cr->status != 0) {
		res->status = cr->status;
		snprintf(res->reason, sizeof(res->reason), "%.*s",
			 (int) sizeof(res->reason) - 1, cr->reason[0] ?
			 cr->reason :
			 "4.3.0 cleanup refused the notification");
	} else {
		if (cr->committed)
			/* cleanup died after it committed: it is queued. */
			log_info("%s: cleanup went away after it queued the "
				 "notice", cr->queue_id);
		res->status = 0;
		res->reason[0] = 0;
		snprintf(res->queue_id, sizeof(res->queue_id), "%s",
			 cr->queue_id);
	}
}

/* bounce_cleanup_submit - one notification through cleanup */
int
bounce_cleanup_submit(const char *rcpt, int flags,
		      bounce_compose_fn compose, void *ctx,
		      struct bounce_result *res)
{
	struct cleanup_client *cl;
	struct cleanup_result cr;
	struct strbuf *env;
	struct strbuf *msg;
	int     fd;
	int     ret;

	res->status = 4;
	res->queue_id[0] = 0;
	snprintf(res->reason, sizeof(res->reason), "%s", BOUNCE_CLEANUP_DOWN);
	if ((fd = cleanup_client_connect(var_bounce_cleanup_path, 1)) < 0) {
		log_warn("connect to %s: %s", var_bounce_cleanup_path,
			 strerror(errno));
		return (-1);
	}
	env = strbuf_new(256, 0);
	attr_puts(env, MAIL_ATTR_SENDER, "");
	attr_puts(env, MAIL_ATTR_RCPT, rcpt);
	attr_puts(env, MAIL_ATTR_BODY,
		  (flags & BOUNCE_SUBMIT_8BIT) ? "8BITMIME" : "7BIT");
	if (flags & BOUNCE_SUBMIT_UTF8)
		attr_puts(env, MAIL_ATTR_SMTPUTF8, "1");
	attr_end(env);
	cl = cleanup_client_start(fd, env, var_bounce_timeout, &cr);
	strbuf_free(env);
	if (cl == NULL) {
		bounce_cleanup_result(&cr, res);
		return (-1);
	}

	msg = strbuf_new(8192, 0);
	if (compose(cr.queue_id, msg, ctx) < 0) {
		res->status = 4;
		snprintf(res->reason, sizeof(res->reason),
			 "4.3.0 cannot compose the notification");
		ret = -1;			/* closing drops the file */
	} else {
		if (cleanup_client_put(cl, msg->data, msg->len, &cr) == 0)
			(void) cleanup_client_end(cl, NULL, &cr);
		bounce_cleanup_result(&cr, res);
		ret = res->status == 0 ? 0 : -1;
	}
	strbuf_free(msg);
	cleanup_client_free(cl);
	return (ret);
}
