/*
 * cleanup_header - message content: header checks, added headers, body
 *
 * SYNOPSIS
 *	#include "cleanup.h"
 *
 *	int	cleanup_content(struct cleanup_sess *s, const char *data,
 *			size_t len)
 *	int	cleanup_content_end(struct cleanup_sess *s)
 *
 * DESCRIPTION
 *	cleanup_content() takes the next piece of content. While the header
 *	section lasts, it is kept in memory (lib/global/hdr.c, at most
 *	header_size_limit bytes); when it ends, it is checked (NUL bytes
 *	in a header line: 5.6.0, never queued; hopcount),
 *	written to the queue file with any missing Message-ID: and Date:
 *	added at its end, and from then on the body goes straight to the
 *	queue file. The content is stored byte for byte as received, apart
 *	from the added headers (so a NUL in the body is kept as it is). It returns 0, or -1 after the message was
 *	refused (cleanup_session_refuse(): the session then reads the rest
 *	of the content and answers with the reason).
 *
 *	cleanup_content_end() is called at the end of the content. It ends
 *	the header section if it is still open, then ends the queue file
 *	(E record, size) and hands the session to cleanup_sync.c, whose
 *	workers fsync and rename the file into incoming/ and then put the
 *	session on the group commit list; or it answers with an error. A
 *	message that smtpd marked "discard" is removed and answered as if
 *	queued; one marked "hold" goes to hold/ (cleanup_sync.c). The session
 *	may be gone when it returns; it returns -1 then, 0 when committing.
 *
 * DIAGNOSTICS
 *	"QUEUEID: message-id=<...>" for each message (as Postfix's cleanup).
 *	Refused messages: "QUEUEID: reject: reason; from=<...>".
 *	Write errors: a warning and status 4 (4.3.1 when the queue file
 *	system is full, cleanup_write_reason()).
 *
 * SEE ALSO
 *	lib/global/hdr.c, RFC 5322
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hdr.h"
#include "log.h"
#include "qfile.h"
#include "mail_date.h"
#include "strbuf.h"

#include "cleanup.h"

#define CLEANUP_LOG_MSGID_MAX	200	/* logged Message-ID bytes */

/* cleanup_log_msgid - log the Message-ID, printable and bounded */
static void
cleanup_log_msgid(const char *id, const char *val, size_t len)
{
	char    safe[CLEANUP_LOG_MSGID_MAX + 1];
	size_t  i;

	if (len > CLEANUP_LOG_MSGID_MAX)
		len = CLEANUP_LOG_MSGID_MAX;
	for (i = 0; i < len; i++)
		safe[i] = (val[i] > 32 && val[i] < 127) ? val[i] : '?';
	safe[len] = 0;
	log_info("%s: message-id=%s", id, safe);
}

/* cleanup_reject - log and refuse the message */
static int
cleanup_reject(struct cleanup_sess *s, int status, const char *reason)
{
	log_info("%s: reject: %s; from=<%s>, nrcpt=%zu", s->id, reason,
		 s->sender, s->nrcpt);
	cleanup_session_refuse(s, status, reason);
	return (-1);
}

/* cleanup_write_error - log a queue file write error and refuse */
static int
cleanup_write_error(struct cleanup_sess *s)
{
	int     saved = errno;

	log_warn("%s: write queue file: %s", s->id, strerror(saved));
	cleanup_session_refuse(s, 4, cleanup_write_reason(s->id, saved));
	return (-1);
}

/* cleanup_header_out - check and write the header section and additions */
static int
cleanup_header_out(struct cleanup_sess *s)
{
	struct hdr *h = s->hdr;
	struct strbuf *add;
	struct strbuf *msgid;
	char    stamp[32];
	char    date[64];
	time_t  now = time(NULL);
	struct tm tm;
	int     ret = 0;

	if (h->state == HDR_TOOBIG)
		return (cleanup_reject(s, 5,
				   "5.3.4 Message header size exceeds limit"));
	if (h->seen & HDR_SEEN_NUL)
		return (cleanup_reject(s, 5, "5.6.0 Message contains NUL "
				       "characters in headers"));
	if (h->received > var_hopcount_limit)
		return (cleanup_reject(s, 5, "5.4.6 Too many hops"));

	add = strbuf_new(256, 0);
	msgid = strbuf_new(128, 0);
	strbuf_appends(add, h->eol);
	if ((h->seen & HDR_SEEN_MSGID) == 0) {
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
		strbuf_printf(msgid, "<%s.%s@%s>", stamp, s->id,
			      var_myhostname);
		strbuf_printf(add, "Message-ID: %s\r\n", msgid->data);
		cleanup_log_msgid(s->id, msgid->data, msgid->len);
	} else if (hdr_msgid(h, msgid) == 0) {
		cleanup_log_msgid(s->id, msgid->data, msgid->len);
	}
	strbuf_free(msgid);
	if ((h->seen & HDR_SEEN_DATE) == 0) {
		mail_date(date, sizeof(date), now);
		strbuf_printf(add, "Date: %s\r\n", date);
	}
	cleanup_local_headers(s, h->seen, add);
	/* Headers, additions, then what was read of the body. */
	if (qfile_out_content(s->qf, h->buf->data, h->hdr_len) < 0
	    || qfile_out_content(s->qf, add->data, add->len) < 0
	    || qfile_out_content(s->qf, h->buf->data + h->hdr_len,
				 h->buf->len - h->hdr_len) < 0)
		ret = cleanup_write_error(s);
	strbuf_free(add);
	s->hdr = hdr_free(s->hdr);	/* the body needs no scanner */
	return (ret);
}

/* cleanup_content - the next piece of content */
int
cleanup_content(struct cleanup_sess *s, const char *data, size_t len)
{
	size_t  used;

	s->content_len += (long long) len;
	if (var_message_size_limit > 0
	    && s->content_len > var_message_size_limit)
		return (cleanup_reject(s, 5, "5.3.4 Message file too big"));
	if (s->hdr != NULL) {
		if (hdr_feed(s->hdr, data, len, &used) == HDR_MORE)
			return (0);
		if (cleanup_header_out(s) < 0)
			return (-1);
		data += used;
		len -= used;
	}
	if (len > 0 && qfile_out_content(s->qf, data, len) < 0)
		return (cleanup_write_error(s));
	return (0);
}

/* cleanup_content_end - finish the file and join the group commit */
int
cleanup_content_end(struct cleanup_sess *s)
{
	struct strbuf *err;
	int     saved;

	if (s->hdr != NULL) {
		(void) hdr_finish(s->hdr);
		if (cleanup_header_out(s) < 0) {
			cleanup_session_reply(s, s->status, s->reason);
			return (-1);
		}
	}
	/* smtpd's DISCARD: claim success, keep nothing (as Postfix). */
	if (s->discard) {
		log_info("%s: discard: %s", s->id, s->discard);
		cleanup_session_reply(s, 0, s->id);	/* removes the file */
		return (-1);
	}
	/* E record and size here; fsync and rename in cleanup_sync.c. */
	err = strbuf_new(128, 1024);
	if (qfile_out_end(s->qf, err) < 0) {
		saved = errno;
		log_warn("%s: %s", s->id, err->data);
		strbuf_free(err);
		cleanup_session_reply(s, 4, cleanup_write_reason(s->id, saved));
		return (-1);
	}
	strbuf_free(err);
	cleanup_sync_add(s);
	return (0);
}
