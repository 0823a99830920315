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
 *	Every step waits at most bounce_timeout. The wait blocks the
 *	process: bounce handles one request at a time, which suits its
 *	volume. XXX an asynchronous client (as in smtpd_cleanup.c) would
 *	let one slow cleanup not hold up other notifications.
 *
 * DIAGNOSTICS
 *	A warning for each failure, with the original's queue ID in the
 *	caller's log line.
 *
 * SEE ALSO
 *	docs/ipc.md, cleanup(8)
 */

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "log.h"
#include "mail_attr.h"
#include "qfile.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "bounce.h"

/* bounce_cleanup_now - monotonic milliseconds */
static long long
bounce_cleanup_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* bounce_cleanup_write - write it all before the deadline; 0 or -1 */
static int
bounce_cleanup_write(int fd, const char *buf, size_t len, long long deadline)
{
	struct pollfd pfd;
	long long left;
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t) n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return (-1);
		if ((left = deadline - bounce_cleanup_now()) <= 0) {
			errno = ETIMEDOUT;
			return (-1);
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int) left) < 0
		    && errno != EINTR)
			return (-1);
	}
	return (0);
}

/* bounce_cleanup_reply - read one reply: 0, else -1 with res filled */
static int
bounce_cleanup_reply(int fd, struct strbuf *in, struct bounce_result *res)
{
	struct attr_list list;
	const char *v;
	long long status;

	memset(&list, 0, sizeof(list));
	if (attr_read_fd(fd, in, 4096, (int) var_bounce_timeout, &list) < 0) {
		log_warn("cleanup service %s: %s", var_bounce_cleanup_path,
			 errno == 0 ? "connection closed" :
			 errno == ETIMEDOUT ? "timeout" :
			 errno == EPROTO ? "malformed reply" : strerror(errno));
		res->status = 4;
		snprintf(res->reason, sizeof(res->reason),
			 "4.3.0 cleanup service unavailable");
		return (-1);
	}
	if (attr_list_getl(&list, MAIL_ATTR_STATUS, &status) < 0) {
		log_warn("cleanup service %s: reply without status",
			 var_bounce_cleanup_path);
		attr_list_clear(&list);
		res->status = 4;
		snprintf(res->reason, sizeof(res->reason),
			 "4.3.0 cleanup service unavailable");
		return (-1);
	}
	if (status != 0) {
		v = attr_list_get(&list, MAIL_ATTR_REASON);
		res->status = status == 5 ? 5 : 4;
		snprintf(res->reason, sizeof(res->reason), "%s",
			 v ? v : "4.3.0 cleanup refused the notification");
		attr_list_clear(&list);
		return (-1);
	}
	v = attr_list_get(&list, MAIL_ATTR_QUEUE_ID);
	if (v == NULL || !qfile_id_valid(v)) {
		log_warn("cleanup service %s: reply without a queue ID",
			 var_bounce_cleanup_path);
		attr_list_clear(&list);
		res->status = 4;
		snprintf(res->reason, sizeof(res->reason),
			 "4.3.0 cleanup service unavailable");
		return (-1);
	}
	snprintf(res->queue_id, sizeof(res->queue_id), "%s", v);
	attr_list_clear(&list);
	return (0);
}

/* bounce_cleanup_submit - one notification through cleanup */
int
bounce_cleanup_submit(const char *rcpt, int flags,
		      bounce_compose_fn compose, void *ctx,
		      struct bounce_result *res)
{
	struct sockaddr_un sun;
	struct strbuf *out = NULL;
	struct strbuf *msg = NULL;
	struct strbuf *in = NULL;
	long long deadline;
	size_t  off;
	size_t  n;
	char    id[sizeof(res->queue_id)];
	int     fd = -1;
	int     ret = -1;

	res->status = 4;
	res->queue_id[0] = 0;
	snprintf(res->reason, sizeof(res->reason),
		 "4.3.0 cleanup service unavailable");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(var_bounce_cleanup_path) >= sizeof(sun.sun_path)) {
		log_warn("cleanup socket path too long: %s",
			 var_bounce_cleanup_path);
		return (-1);
	}
	strcpy(sun.sun_path, var_bounce_cleanup_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0)) < 0) {
		log_warn("socket: %s", strerror(errno));
		return (-1);
	}
	/* A unix socket connects at once or not at all (EAGAIN: backlog). */
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
		log_warn("connect to %s: %s", var_bounce_cleanup_path,
			 strerror(errno));
		goto done;
	}
	deadline = bounce_cleanup_now() + var_bounce_timeout * 1000;
	out = strbuf_new(256, 0);
	in = strbuf_new(256, 65536);
	attr_puts(out, MAIL_ATTR_SENDER, "");
	attr_puts(out, MAIL_ATTR_RCPT, rcpt);
	attr_puts(out, MAIL_ATTR_BODY,
		  (flags & BOUNCE_SUBMIT_8BIT) ? "8BITMIME" :
		  "7BIT");
	if (flags & BOUNCE_SUBMIT_UTF8)
		attr_puts(out, MAIL_ATTR_SMTPUTF8, "1");
	attr_end(out);
	if (bounce_cleanup_write(fd, out->data, out->len, deadline) < 0) {
		log_warn("write to %s: %s", var_bounce_cleanup_path,
			 strerror(errno));
		goto done;
	}
	if (bounce_cleanup_reply(fd, in, res) < 0)
		goto done;

	msg = strbuf_new(8192, 0);
	if (compose(res->queue_id, msg, ctx) < 0) {
		res->status = 4;
		snprintf(res->reason, sizeof(res->reason),
			 "4.3.0 cannot compose the notification");
		res->queue_id[0] = 0;
		goto done;			/* closing drops the file */
	}
	deadline = bounce_cleanup_now() + var_bounce_timeout * 1000;
	for (off = 0; off < msg->len; off += n) {
		n = msg->len - off;
		if (n > BOUNCE_DATA_CHUNK)
			n = BOUNCE_DATA_CHUNK;
		strbuf_reset(out);
		attr_put(out, MAIL_ATTR_DATA, msg->data + off, n);
		if (bounce_cleanup_write(fd, out->data, out->len,
					 deadline) < 0)
			break;
	}
	if (off < msg->len
	    || bounce_cleanup_write(fd, "\n", 1, deadline) < 0) {
		log_warn("write to %s: %s", var_bounce_cleanup_path,
			 strerror(errno));
		res->status = 4;
		res->queue_id[0] = 0;
		goto done;
	}
	snprintf(id, sizeof(id), "%s", res->queue_id);
	res->queue_id[0] = 0;
	if (bounce_cleanup_reply(fd, in, res) < 0) {
		/* cleanup died after it committed: the notice is queued. */
		if (qfile_committed(id) != 1)
			goto done;
		log_info("%s: cleanup went away after it queued the notice",
			 id);
		snprintf(res->queue_id, sizeof(res->queue_id), "%s", id);
	}
	res->status = 0;
	res->reason[0] = 0;
	ret = 0;

done:
	if (fd >= 0)
		(void) close(fd);
	strbuf_free(out);
	strbuf_free(msg);
	strbuf_free(in);
	return (ret);
}
