/*
 * sendmail_submit - hand one message to cleanup on public/sendmail
 *
 * SYNOPSIS
 *	#include "sendmail.h"
 *
 *	int	sendmail_sub_open(struct sendmail_sub *sub,
 *			const struct sendmail_env *env)
 *	void	sendmail_sub_write(struct sendmail_sub *sub,
 *			const char *data, size_t len)
 *	int	sendmail_sub_close(struct sendmail_sub *sub)
 *	void	sendmail_sub_free(struct sendmail_sub *sub)
 *
 * DESCRIPTION
 *	This is the client side of the cleanup protocol in docs/ipc.md,
 *	spoken on queue_directory/public/sendmail, the local submission
 *	service. cleanup learns who we are from the socket (SO_PEERCRED),
 *	so nothing here claims an identity.
 *
 *	sendmail_sub_open() connects and sends the envelope (sender, rcpt
 *	..., full_name, body, and the DSN values ret, envid and, per
 *	recipient, notify), then waits for the "file is open" reply. It
 *	returns 0, or -1 with sub->status 4 or 5 and sub->reason set.
 *	When nothing listens on public/sendmail (no socket, or a refused
 *	connection: the mail system is down), the message goes to the
 *	maildrop instead (sendmail_drop.c): the envelope and the content
 *	are written to a file in maildrop/ that pickup(8) submits once the
 *	system runs. Only when that fails too is it status 4.
 *
 *	sendmail_sub_write() adds content: lines that end in CRLF, not dot
 *	stuffed. It is sent as "data" attributes of at most 64 KiB. After
 *	an error it does nothing; the error is reported by close.
 *
 *	sendmail_sub_close() sends the rest and the end of the content and
 *	waits for cleanup's final answer: 0 with sub->queue_id once the
 *	message is safe in incoming/, else -1 with status and reason. For
 *	the maildrop, 0 once the file is fsynced and renamed into place;
 *	sub->queue_id then says "maildrop/NAME".
 *
 *	sendmail_sub_envelope() appends the envelope list (both for
 *	cleanup and for a maildrop file).
 *
 *	sendmail_sub_free() closes the connection and frees the buffers,
 *	and removes a maildrop file that was not finished; the structure
 *	itself belongs to the caller.
 *
 * DIAGNOSTICS
 *	Only through sub->status and sub->reason; nothing is printed.
 *
 * SEE ALSO
 *	docs/ipc.md, cleanup(8), sendmail(1)
 */

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup_client.h"
#include "mail_attr.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "sendmail.h"

int     sendmail_timeout = 3600;	/* per reply from cleanup */

/* sendmail_sub_error - remember the first error */
int
sendmail_sub_error(struct sendmail_sub *sub, int status, const char *fmt,...)
{
	va_list ap;

	if (sub->status != 0)
		return (-1);
	sub->status = status;
	va_start(ap, fmt);
	vsnprintf(sub->reason, sizeof(sub->reason), fmt, ap);
	va_end(ap);
	return (-1);
}

/* sendmail_sub_result - cleanup's answer: 0, else -1 with the reason */
static int
sendmail_sub_result(struct sendmail_sub *sub, const struct cleanup_result *cr,
		    const char *when)
{
	if (cr->lost[0] && !cr->committed)
		return (sendmail_sub_error(sub, 4, "4.3.0 %s: %s", when,
					   strcmp(cr->lost, "connection "
						  "closed") == 0 ?
					   "lost connection with cleanup" :
					   strcmp(cr->lost, "malformed "
						  "reply") == 0 ?
					   "malformed reply from cleanup" :
					   strcmp(cr->lost, "timeout") == 0 ?
					   strerror(ETIMEDOUT) : cr->lost));
	if (cr->status != 0)
		return (sendmail_sub_error(sub, cr->status == 5 ? 5 : 4, "%s",
					   cr->reason[0] ? cr->reason :
					   "4.3.0 error without reason"));
	if (cr->queue_id[0])
		snprintf(sub->queue_id, sizeof(sub->queue_id), "%s",
			 cr->queue_id);
	return (0);
}

/* sendmail_sub_connect - connect to public/sendmail; 1: nobody there */
static int
sendmail_sub_connect(struct sendmail_sub *sub)
{
	int     err;

	struct sockaddr_un sun;
	char    path[4096];

	snprintf(path, sizeof(path), "%s/%s", sendmail_queue_dir,
		 SENDMAIL_SERVICE);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		/* Too long for a socket name: go there and use the short one. */
		if (chdir(sendmail_queue_dir) < 0)
			return (sendmail_sub_error(sub, 4, "4.3.0 chdir %s: %s",
						   sendmail_queue_dir,
						   strerror(errno)));
		snprintf(path, sizeof(path), "%s", SENDMAIL_SERVICE);
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((sub->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (sendmail_sub_error(sub, 4, "4.3.0 socket: %s",
					   strerror(errno)));
	if (connect(sub->fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
		err = errno;
		sendmail_sub_error(sub, 4, "4.3.0 connect to %s: %s (is the "
				   "mail system running?)", path, strerror(err));
		return (err == ENOENT || err == ECONNREFUSED ? 1 : -1);
	}
	return (0);
}

/* sendmail_sub_envelope - the envelope list */
void
sendmail_sub_envelope(struct strbuf *out, const struct sendmail_env *env)
{
	size_t  i;

	attr_puts(out, MAIL_ATTR_SENDER, env->sender);
	for (i = 0; i < env->nrcpt; i++) {
		attr_puts(out, MAIL_ATTR_RCPT, env->rcpts[i]);
		if (env->notify)
			attr_puts(out, MAIL_ATTR_NOTIFY, env->notify);
	}
	if (env->full_name && *env->full_name)
		attr_puts(out, MAIL_ATTR_FULL_NAME, env->full_name);
	if (env->body)
		attr_puts(out, MAIL_ATTR_BODY, env->body);
	if (env->ret)
		attr_puts(out, MAIL_ATTR_RET, env->ret);
	if (env->envid)
		attr_puts(out, MAIL_ATTR_ENVID, env->envid);
	attr_end(out);
}

/* sendmail_sub_open - connect, send the envelope, wait for the queue ID */
int
sendmail_sub_open(struct sendmail_sub *sub, const struct sendmail_env *env)
{
	struct cleanup_result cr;
	char    why[SENDMAIL_REASON_MAX];
	char    drop[SENDMAIL_REASON_MAX];
	int     ret;

	memset(sub, 0, sizeof(*sub));
	sub->fd = -1;
	sub->drop_dir = -1;
	sub->chunk = strbuf_new(SENDMAIL_DATA_MAX + 1, SENDMAIL_DATA_MAX);
	sub->out = strbuf_new(SENDMAIL_DATA_MAX + 64, 0);
	if ((ret = sendmail_sub_connect(sub)) < 0)
		return (-1);
	if (ret > 0) {
		/* Nobody listens: the maildrop, for pickup to submit later. */
		if (sub->fd >= 0)
			(void) close(sub->fd);
		sub->fd = -1;
		snprintf(why, sizeof(why), "%s", sub->reason);
		sub->status = 0;
		if (sendmail_drop_open(sub) < 0) {
			/* Both ways failed: say why, direct path first. */
			snprintf(drop, sizeof(drop), "%s", sub->reason);
			snprintf(sub->reason, sizeof(sub->reason), "%.200s; "
				 "%.200s", why, strncmp(drop, "4.3.0 ", 6) == 0 ?
				 drop + 6 : drop);
			return (-1);
		}
		attr_puts(sub->out, MAIL_ATTR_VERSION, SENDMAIL_DROP_VERSION);
		sendmail_sub_envelope(sub->out, env);
		if (attr_write_fd(sub->fd, sub->out) < 0)
			return (sendmail_sub_error(sub, 4, "4.3.0 write %s/%s: "
						   "%s", SENDMAIL_MAILDROP,
						   sub->drop_tmp,
						   strerror(errno)));
		strbuf_reset(sub->out);
		return (0);
	}
	sendmail_sub_envelope(sub->out, env);
	sub->cl = cleanup_client_start(sub->fd, sub->out, sendmail_timeout,
				       &cr);
	sub->fd = -1;				/* the client's now */
	strbuf_reset(sub->out);
	return (sendmail_sub_result(sub, &cr, "envelope"));
}

/* sendmail_sub_send - one "data" attribute with what is in the chunk */
static void
sendmail_sub_send(struct sendmail_sub *sub)
{
	struct cleanup_result cr;

	if (sub->chunk->len == 0)
		return;
	if (sub->status == 0 && sub->cl != NULL) {
		/* cleanup may have said why before it closed. */
		if (cleanup_client_put(sub->cl, sub->chunk->data,
				       sub->chunk->len, &cr) < 0
		    && sendmail_sub_result(sub, &cr, "content") == 0)
			sendmail_sub_error(sub, 4, "4.3.0 lost connection "
					   "with cleanup");
	} else if (sub->status == 0) {
		strbuf_reset(sub->out);
		attr_put(sub->out, MAIL_ATTR_DATA, sub->chunk->data,
			 sub->chunk->len);
		if (attr_write_fd(sub->fd, sub->out) < 0)
			sendmail_sub_error(sub, 4, "4.3.0 write %s/%s: %s",
					   SENDMAIL_MAILDROP, sub->drop_tmp,
					   strerror(errno));
	}
	strbuf_reset(sub->chunk);
}

/* sendmail_sub_write - more content */
void
sendmail_sub_write(struct sendmail_sub *sub, const char *data, size_t len)
{
	size_t  take;

	while (len > 0 && sub->status == 0) {
		take = SENDMAIL_DATA_MAX - sub->chunk->len;
		if (take > len)
			take = len;
		strbuf_append(sub->chunk, data, take);
		data += take;
		len -= take;
		if (sub->chunk->len == SENDMAIL_DATA_MAX)
			sendmail_sub_send(sub);
	}
}

/* sendmail_sub_close - the end of the content, and cleanup's verdict */
int
sendmail_sub_close(struct sendmail_sub *sub)
{
	struct cleanup_result cr;

	if (sub->status != 0)
		return (-1);
	sendmail_sub_send(sub);
	if (sub->status != 0)
		return (-1);
	if (sub->drop_dir >= 0) {
		strbuf_reset(sub->out);
		attr_end(sub->out);
		return (sendmail_drop_close(sub));
	}
	(void) cleanup_client_end(sub->cl, NULL, &cr);
	return (sendmail_sub_result(sub, &cr, "end of data"));
}

/* sendmail_sub_free - close and release; the struct is the caller's */
void
sendmail_sub_free(struct sendmail_sub *sub)
{
	sendmail_drop_free(sub);
	cleanup_client_free(sub->cl);
	sub->cl = NULL;
	if (sub->fd >= 0)
		(void) close(sub->fd);
	sub->fd = -1;
	sub->chunk = strbuf_free(sub->chunk);
	sub->out = strbuf_free(sub->out);
}
