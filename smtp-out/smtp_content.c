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
 *	SMTP_CONTENT_LOWAT. The stored content is CRLF lines without dot
 *	stuffing (docs/decisions.md "Queue file content"); on the way out
 *	a "." at the start of a line is doubled (RFC 5321 section 4.5.2),
 *	a bare LF becomes CRLF so that the next hop cannot read lines
 *	differently than we do, content that does not end in CRLF gets
 *	one, and ".\r\n" ends it. The session then waits for the
 *	end-of-data reply (SMTP_ST_DOT). It returns 1 when the end has
 *	been queued, else 0.
 *
 * SEE ALSO
 *	RFC 5321 section 4.5.2, smtp_proto.c
 */

#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

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
	struct evbuffer *out = stream_output(sess->stream);
	const struct strbuf *content = sess->req->msg->content;
	const char *data = content ? content->data : "";
	size_t  total = content ? content->len : 0;
	size_t  n;

	if (sess->state != SMTP_ST_CONTENT)
		return (0);
	while (sess->cpos < total
	       && evbuffer_get_length(out) < SMTP_CONTENT_HIWAT) {
		n = total - sess->cpos;
		if (n > SMTP_CONTENT_PIECE)
			n = SMTP_CONTENT_PIECE;
		smtp_content_stuff(sess, data + sess->cpos, n, out);
		sess->cpos += n;
	}
	if (sess->cpos < total)
		return (0);
	if (!sess->bol)
		evbuffer_add(out, sess->last_cr ? "\n" : "\r\n",
			     sess->last_cr ? 1 : 2);
	evbuffer_add(out, ".\r\n", 3);
	sess->state = SMTP_ST_DOT;
	return (1);
}
