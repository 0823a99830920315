/*
 * smtp_content - send the message content, dot-stuffed
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	int	smtp_content_fill(struct smtp_sess *sess)
 *
 * DESCRIPTION
 *	smtp_content_fill() queues more of the request's content on the
 *	session until SMTP_CONTENT_HIWAT bytes wait to go out; it is called
 *	after 354 and again whenever the output drains below
 *	SMTP_CONTENT_LOWAT. The late headers (the queue file's H records,
 *	in memory) go first, then the content, read from the open queue
 *	file SMTP_CONTENT_PIECE bytes at a time as the output drains, so
 *	that memory does not grow with the message. The stored content is CRLF lines without dot
 *	stuffing (docs/decisions.md "Queue file content"); on the way out
 *	a "." at the start of a line is doubled (RFC 5321 section 4.5.2),
 *	a bare LF becomes CRLF so that the next hop cannot read lines
 *	differently than we do, content that does not end in CRLF gets
 *	one, and ".\r\n" ends it. The session then waits for the
 *	end-of-data reply (SMTP_ST_DOT). It returns 1 when the end has
 *	been queued, 0 when more is to come, or -1 (logged) when the
 *	queue file cannot be read or its content is not as long as its
 *	size record says: the caller then breaks the session before the
 *	end of data, so that nothing cut short is delivered.
 *
 * SEE ALSO
 *	RFC 5321 section 4.5.2, smtp_proto.c
 */

#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "log.h"
#include "qfile.h"
#include "strbuf.h"

#include "smtp-out.h"

#define SMTP_CONTENT_PIECE	65536	/* stuffed per step */

/* smtp_content_stuff - dot-stuff one piece into the output */
static void
smtp_content_stuff(struct smtp_sess *sess, const char *p, size_t len,
		   struct evbuffer *out)
{
	const char *nl;
	size_t  seg;
	int     prev_cr;

	while (len > 0) {
		if (sess->bol && *p == '.')
			evbuffer_add(out, ".", 1);
		nl = memchr(p, '\n', len);
		if (nl == NULL) {
			evbuffer_add(out, p, len);
			sess->bol = 0;
			sess->last_cr = (p[len - 1] == '\r');
			return;
		}
		seg = (size_t) (nl - p);
		prev_cr = seg > 0 ? p[seg - 1] == '\r' :
			(!sess->bol && sess->last_cr);
		evbuffer_add(out, p, seg);
		if (prev_cr)
			evbuffer_add(out, "\n", 1);
		else
			evbuffer_add(out, "\r\n", 2);
		sess->bol = 1;
		sess->last_cr = 0;
		p += seg + 1;
		len -= seg + 1;
	}
}

/* smtp_content_fill - queue more content, then the end */
int
smtp_content_fill(struct smtp_sess *sess)
{
	static char buf[SMTP_CONTENT_PIECE];
	struct smtp_req *req = sess->req;
	struct evbuffer *out = stream_output(sess->stream);
	const struct strbuf *late = req->msg->late;
	size_t  nlate = late ? late->len : 0;
	size_t  n;
	ssize_t got;

	if (sess->state != SMTP_ST_CONTENT)
		return (0);
	while (sess->cur.next >= 0
	       && evbuffer_get_length(out) < SMTP_CONTENT_HIWAT) {
		if (sess->cpos < nlate) {
			n = nlate - sess->cpos;
			if (n > SMTP_CONTENT_PIECE)
				n = SMTP_CONTENT_PIECE;
			smtp_content_stuff(sess, late->data + sess->cpos, n, out);
			sess->cpos += n;
			continue;
		}
		got = qfile_content_read(req->qfd, &sess->cur, buf, sizeof(buf));
		if (got < 0) {
			log_warn("%s: cannot read the content of %s: %s",
				 req->queue_id, req->queue_file, strerror(errno));
			return (-1);
		}
		if (got > 0)
			smtp_content_stuff(sess, buf, (size_t) got, out);
		sess->cpos += (size_t) got;
	}
	if (sess->cur.next >= 0)
		return (0);
	if ((long long) (sess->cpos - nlate) != req->msg->size) {
		log_warn("%s: content of %s is not %lld bytes long",
			 req->queue_id, req->queue_file, req->msg->size);
		return (-1);
	}
	if (!sess->bol)
		evbuffer_add(out, sess->last_cr ? "\n" : "\r\n",
			     sess->last_cr ? 1 : 2);
	evbuffer_add(out, ".\r\n", 3);
	sess->state = SMTP_ST_DOT;
	return (1);
}
