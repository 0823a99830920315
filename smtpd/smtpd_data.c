/*
 * smtpd_data - DATA and BDAT: message content to cleanup
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	void	smtpd_data_cmd(struct smtpd_session *s, const char *arg)
 *	void	smtpd_bdat_cmd(struct smtpd_session *s, const char *arg)
 *	int	smtpd_data_input(struct smtpd_session *s)
 *	int	smtpd_bdat_input(struct smtpd_session *s)
 *	void	smtpd_data_cleanup_reply(struct smtpd_session *s,
 *			int status, const char *queue_id, const char *reason)
 *
 * DESCRIPTION
 *	smtpd_data_cmd() checks a DATA command and opens the cleanup
 *	connection; 354 goes out only once cleanup has a queue file open.
 *	smtpd_bdat_cmd() does the same for the first BDAT chunk of a
 *	transaction (RFC 3030); a BDAT that cannot be accepted still has
 *	its bytes read and thrown away, so that the client stays in step.
 *
 *	smtpd_data_input() reads DATA content from the client's buffered
 *	input through the lib/global/smtp_data.c scanner: the end is
 *	CRLF.CRLF and nothing else; a leading dot is
 *	removed; a bare LF or a bare CR (not part of CRLF) makes the
 *	message be rejected when smtpd_forbid_bare_newline is on (reading
 *	goes on to the real CRLF.CRLF), and is turned into CRLF when it is
 *	off. smtpd_bdat_input() reads exactly the announced number of bytes
 *	(no dot handling; the same bare CR/LF rule). Both return 1 when the
 *	session state changed (input may be processed further), 0 when
 *	more input is needed or cleanup must catch up (backpressure).
 *
 *	Content over message_size_limit is read and thrown away, and the
 *	cleanup connection is closed so that nothing is queued; the reply
 *	comes at the end (552 5.3.4).
 *
 *	smtpd_data_cleanup_reply() is what the cleanup client calls with a
 *	cleanup status: 0 with a queue ID, or 4/5 with a reason ("4.3.0
 *	..."). Only status 0 after the end of the content gives 250. The
 *	reply code follows the reason's enhanced status code: 4.3.1 (queue
 *	file system full) 452, other 4.x.x 451, 5.3.4 552, 5.6.x (content,
 *	such as NUL characters in headers) 550, other 5.x.x 554.
 *
 * DIAGNOSTICS
 *	"QUEUEID: client=name[addr]" once cleanup has a queue ID; one
 *	"reject:" line per rejected message.
 *
 * SEE ALSO
 *	docs/ipc.md, RFC 5321, RFC 3030
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "log.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "strbuf.h"
#include "stream.h"
#include "xmalloc.h"

#include "smtpd.h"

/* smtpd_data_flush - send stored content to cleanup */
static void
smtpd_data_flush(struct smtpd_session *s)
{
	size_t  off;
	size_t  n;

	if (s->msg->chunk == NULL)
		return;
	for (off = 0; off < s->msg->chunk->len; off += n) {
		n = s->msg->chunk->len - off;
		if (n > QFILE_CHUNK)
			n = QFILE_CHUNK;
		smtpd_cleanup_write(s, s->msg->chunk->data + off, n);
	}
	strbuf_reset(s->msg->chunk);
}

/* smtpd_data_rejected - is this message lost already? */
static int
smtpd_data_rejected(const struct smtpd_session *s)
{
	return (s->msg->too_big || s->msg->bare || s->cleanup_failed || s->msg->bdat_discard);
}

/* smtpd_data_emit - content bytes from the scanner, as they will be stored */
static void
smtpd_data_emit(void *ctx, const char *p, size_t n)
{
	struct smtpd_session *s = ctx;

	s->msg->content_size += n;
	if (smtpd_var.size_limit > 0 && s->msg->content_size > smtpd_var.size_limit
	    && !s->msg->too_big) {
		/* Abort at once: cleanup removes its file in tmp/. */
		s->msg->too_big = 1;
		smtpd_cleanup_close(s);
		if (s->msg->chunk)
			strbuf_reset(s->msg->chunk);
	}
	if (smtpd_data_rejected(s) || s->msg->chunk == NULL)
		return;
	strbuf_append(s->msg->chunk, p, n);
	if (s->msg->chunk->len >= QFILE_CHUNK)
		smtpd_data_flush(s);
}

/* smtpd_data_bare - the scanner saw a bare CR or LF */
static void
smtpd_data_bare(void *ctx)
{
	struct smtpd_session *s = ctx;

	if (!smtpd_var.forbid_bare_newline || s->msg->bare)
		return;
	s->msg->bare = 1;
	smtpd_cleanup_close(s);
	if (s->msg->chunk)
		strbuf_reset(s->msg->chunk);
}

/*
 * The SMTP reply code for a cleanup reason, by its enhanced status code
 * (the first match); as Postfix's smtpd answers its cleanup's verdicts.
 */
static const struct smtpd_data_code {
	const char *dsn;		/* prefix of the reason */
	int     code;
}       smtpd_data_codes[] = {
	{"4.3.1 ", 452},		/* queue file system full */
	{"4.", 451},
	{"5.3.4 ", 552},		/* too big */
	{"5.6.", 550},			/* content refused (NUL in headers) */
	{"5.", 554},
};

/* smtpd_data_fail_reply - a reply for a cleanup failure */
static void
smtpd_data_fail_reply(struct smtpd_session *s, const char *cmd)
{
	const struct smtpd_data_code *dc;
	const char *r = s->cleanup_reason;
	char    text[512];
	const char *cp;

	if (r != NULL && (r[0] == '4' || r[0] == '5') && r[1] == '.'
	    && strlen(r) < 400) {
		for (cp = r; *cp; cp++)
			if ((unsigned char) *cp < 32 || *cp == 127)
				break;
		for (dc = smtpd_data_codes; *cp == 0 && dc < smtpd_data_codes
		     + sizeof(smtpd_data_codes) / sizeof(*dc); dc++) {
			if (strncmp(r, dc->dsn, strlen(dc->dsn)) == 0) {
				snprintf(text, sizeof(text), "%d %s",
					 dc->code, r);
				goto done;
			}
		}
	}
	snprintf(text, sizeof(text), "451 4.3.0 Error: queue file write error");
done:
	smtpd_reply(s, "%s", text);
	smtpd_session_reject_log(s, cmd, text, NULL);
}

/* smtpd_data_received - the Received: header, first in the content */
static void
smtpd_data_received(struct smtpd_session *s)
{
	char    date[64];
	time_t  now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
	/* PREPEND results of the restrictions come first, as in Postfix. */
	if (smtpd_check_prepend(s) != NULL)
		strbuf_appends(s->msg->chunk, smtpd_check_prepend(s));
	if (s->local)
		strbuf_printf(s->msg->chunk, "Received: from %s (%s)\r\n",
			      s->helo ? s->helo : "unknown", s->name);
	else
		strbuf_printf(s->msg->chunk, "Received: from %s (%s [%s%s])\r\n",
			      s->helo ? s->helo : "unknown", s->name,
			      strchr(s->addr, ':') ? "IPv6:" : "", s->addr);
	/* Postfix's wording (smtpd_tls_received_header). */
	if (s->tls_info && smtpd_var.tls_received_header)
		strbuf_printf(s->msg->chunk, "\t(using %s)\r\n"
			      "\t(No client certificate requested)\r\n",
			      s->tls_info);
	/* Opt-in: the user's name is for the recipients to see. */
	if (smtpd_sasl_username(s) && smtpd_sasl_header())
		strbuf_printf(s->msg->chunk, "\t(Authenticated sender: %s)\r\n",
			      smtpd_sasl_username(s));
	/* RFC 6531: UTF8SMTP, UTF8SMTPA, UTF8SMTPS, UTF8SMTPSA. */
	strbuf_printf(s->msg->chunk, "\tby %s (%s) with %s%s id %s",
		      smtpd_var.myhostname, smtpd_var.mail_name,
		      s->smtputf8 ? "UTF8" : "",
		      smtpd_protocol(s) + (s->smtputf8 && s->esmtp),
		      s->queue_id);
	if (s->nrcpt == 1)
		strbuf_printf(s->msg->chunk, "\r\n\tfor <%s>; %s\r\n",
			      s->rcpts[0], date);
	else
		strbuf_printf(s->msg->chunk, ";\r\n\t%s\r\n", date);
}

/* smtpd_data_msg - the content state, made on first use */
static struct smtpd_msg *
smtpd_data_msg(struct smtpd_session *s)
{
	if (s->msg == NULL)
		s->msg = xcalloc(1, sizeof(*s->msg));
	return (s->msg);
}

/* smtpd_data_start - reset the content parser */
static void
smtpd_data_start(struct smtpd_session *s, int mode)
{
	(void) smtpd_data_msg(s);
	s->msg->data_mode = mode;
	smtp_data_init(&s->msg->scan, mode == SMTPD_CMD_DATA ? SMTP_DATA_DOT :
		       SMTP_DATA_CHUNK, 0, smtpd_data_emit, smtpd_data_bare, s);
	s->msg->content_size = 0;
	s->msg->too_big = 0;
	s->msg->bare = 0;
	s->cleanup_failed = 0;
	/* Only a message in progress holds a content buffer. */
	if (s->msg->chunk == NULL)
		s->msg->chunk = strbuf_new(QFILE_CHUNK + 1024, 0);
	strbuf_reset(s->msg->chunk);
}

/* smtpd_data_check - may a message start now? 0, or -1 with a reply */
static int
smtpd_data_check(struct smtpd_session *s, const char *cmd)
{
	if (s->sender == NULL) {
		smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
		return (-1);
	}
	if (s->nrcpt == 0) {
		if (s->rcpt_tried > 0) {
			smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
			smtpd_session_reject_log(s, cmd,
				      "554 5.5.1 Error: no valid recipients",
						 NULL);
		} else
			smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
		return (-1);
	}
	return (0);
}

/* smtpd_data_go - DATA passed its restrictions: open cleanup */
static void
smtpd_data_go(struct smtpd_session *s, int verdict)
{
	if (verdict != SMTPD_CHECK_OK) {
		smtpd_reply(s, "%s", smtpd_check_reply(s));
		smtpd_session_reject_log(s, "DATA", smtpd_check_reply(s), NULL);
		return;
	}
	smtpd_data_start(s, SMTPD_CMD_DATA);
	if (smtpd_cleanup_open(s) < 0) {
		smtpd_data_fail_reply(s, "DATA");
		smtpd_session_reset(s);
		return;
	}
	s->state = SMTPD_ST_CLEANUP_OPEN;
}

/* smtpd_data_done - smtpd_data_restrictions answered later */
static void
smtpd_data_done(struct smtpd_session *s, int verdict)
{
	s->state = SMTPD_ST_CMD;
	smtpd_data_go(s, verdict);
	smtpd_session_resume(s);
}

/* smtpd_data_cmd - DATA */
void
smtpd_data_cmd(struct smtpd_session *s, const char *arg)
{
	int     verdict;

	if (s->bdat_used) {
		smtpd_reply(s, "503 5.5.1 Error: DATA after BDAT in the same "
			    "transaction");
		return;
	}
	if (smtpd_data_check(s, "DATA") < 0)
		return;
	if (*arg != 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	/* BDAT has no such stage (its content follows at once). */
	verdict = smtpd_check_run(s, SMTPD_STAGE_BIT(SMTPD_STAGE_DATA),
				  "DATA", NULL, 0, smtpd_data_done);
	if (verdict == SMTPD_CHECK_WAIT) {
		s->state = SMTPD_ST_CHECK;
		return;
	}
	smtpd_data_go(s, verdict);
}

/* smtpd_bdat_discard - read this chunk and then say "reply" */
static void
smtpd_bdat_discard(struct smtpd_session *s, const char *reply)
{
	(void) smtpd_data_msg(s);
	xfree(s->msg->bdat_reply);
	s->msg->bdat_reply = xstrdup(reply);
	s->msg->bdat_discard = 1;
	s->state = SMTPD_ST_BDAT;
}

/* smtpd_bdat_cmd - BDAT size [LAST] */
void
smtpd_bdat_cmd(struct smtpd_session *s, const char *arg)
{
	unsigned long long n;
	int     last;

	if (smtp_cmd_bdat(arg, &n, &last) < 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		return;
	}
	(void) smtpd_data_msg(s);
	s->msg->bdat_len = n;
	s->msg->bdat_left = n;
	s->msg->bdat_last = last;
	s->msg->bdat_discard = 0;

	if (!s->esmtp) {
		smtpd_bdat_discard(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->sender == NULL) {
		smtpd_bdat_discard(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->nrcpt == 0) {
		smtpd_bdat_discard(s, s->rcpt_tried ?
				   "554 5.5.1 Error: no valid recipients" :
				   "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (!s->bdat_used) {
		s->bdat_used = 1;
		smtpd_data_start(s, SMTPD_CMD_BDAT);
		if (smtpd_cleanup_open(s) < 0) {
			smtpd_data_fail_reply(s, "BDAT");
			/* The reply is out; only the bytes are left. */
			smtpd_session_reset(s);
			smtpd_bdat_discard(s, "");
			return;
		}
		s->state = SMTPD_ST_CLEANUP_OPEN;
		return;
	}
	s->state = SMTPD_ST_BDAT;
}

/* smtpd_data_eod - smtpd_end_of_data_restrictions have a verdict */
static void
smtpd_data_eod(struct smtpd_session *s, int verdict)
{
	const char *cmd = s->msg->data_mode == SMTPD_CMD_BDAT ? "BDAT" : "DATA";

	s->state = SMTPD_ST_CMD;
	if (verdict != SMTPD_CHECK_OK) {
		/* Closing before the end aborts the file in cleanup. */
		smtpd_reply(s, "%s", smtpd_check_reply(s));
		smtpd_session_reject_log(s, "END-OF-MESSAGE",
					 smtpd_check_reply(s), NULL);
		smtpd_session_reset(s);
		return;
	}
	if (s->cleanup_failed || s->cleanup == NULL) {
		smtpd_data_fail_reply(s, cmd);
		smtpd_session_reset(s);
		return;
	}
	smtpd_cleanup_finish(s);
	s->state = SMTPD_ST_CLEANUP_DONE;
}

/* smtpd_data_eod_done - the end-of-data restrictions answered later */
static void
smtpd_data_eod_done(struct smtpd_session *s, int verdict)
{
	smtpd_data_eod(s, verdict);
	smtpd_session_resume(s);
}

/* smtpd_data_end - the end of the content: verdict or wait for cleanup */
static void
smtpd_data_end(struct smtpd_session *s)
{
	int     verdict;
	const char *cmd = s->msg->data_mode == SMTPD_CMD_BDAT ? "BDAT" : "DATA";
	char    text[256];

	s->state = SMTPD_ST_CMD;
	if (s->msg->too_big) {
		snprintf(text, sizeof(text),
			 "552 5.3.4 Error: message file too big");
		smtpd_reply(s, "%s", text);
		smtpd_session_reject_log(s, cmd, text, NULL);
		smtpd_session_reset(s);
		return;
	}
	if (s->msg->bare) {
		snprintf(text, sizeof(text), "550 5.5.2 Error: message "
			 "contains bare CR or LF characters");
		smtpd_reply(s, "%s", text);
		smtpd_session_reject_log(s, cmd, text, NULL);
		smtpd_session_reset(s);
		return;
	}
	if (s->cleanup_failed || s->cleanup == NULL) {
		smtpd_data_fail_reply(s, cmd);
		smtpd_session_reset(s);
		return;
	}
	smtpd_data_flush(s);
	verdict = smtpd_check_run(s, SMTPD_STAGE_BIT(SMTPD_STAGE_EOD),
				  "END-OF-MESSAGE", NULL, 0,
				  smtpd_data_eod_done);
	if (verdict == SMTPD_CHECK_WAIT) {
		s->state = SMTPD_ST_CHECK;
		return;
	}
	smtpd_data_eod(s, verdict);
}

/* smtpd_data_input - DATA content from the client */
int
smtpd_data_input(struct smtpd_session *s)
{
	struct evbuffer *in = stream_input(s->stream);
	struct evbuffer_iovec v;
	size_t  used;
	int     done;

	while (evbuffer_get_length(in) > 0) {
		if (smtpd_cleanup_pending(s) > SMTPD_CLEANUP_HIWAT) {
			s->paused = 1;
			smtpd_cleanup_stalled(s);
			return (0);
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		used = smtp_data_scan(&s->msg->scan, v.iov_base, v.iov_len, &done);
		evbuffer_drain(in, used);
		if (done) {
			smtpd_data_end(s);
			return (1);
		}
	}
	return (0);
}

/* smtpd_bdat_input - the bytes of one BDAT chunk */
int
smtpd_bdat_input(struct smtpd_session *s)
{
	struct evbuffer *in = stream_input(s->stream);
	struct evbuffer_iovec v;
	size_t  take;
	int     done;
	char    text[128];

	while (s->msg->bdat_left > 0 && evbuffer_get_length(in) > 0) {
		if (!s->msg->bdat_discard
		    && smtpd_cleanup_pending(s) > SMTPD_CLEANUP_HIWAT) {
			s->paused = 1;
			smtpd_cleanup_stalled(s);
			return (0);
		}
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		take = v.iov_len;
		if (take > s->msg->bdat_left)
			take = s->msg->bdat_left;
		if (!s->msg->bdat_discard)
			(void) smtp_data_scan(&s->msg->scan, v.iov_base, take, &done);
		evbuffer_drain(in, take);
		s->msg->bdat_left -= take;
	}
	if (s->msg->bdat_left > 0)
		return (0);

	/* The chunk is complete. */
	s->state = SMTPD_ST_CMD;
	if (s->msg->bdat_discard) {
		s->msg->bdat_discard = 0;
		if (s->msg->bdat_reply && *s->msg->bdat_reply)
			smtpd_reply(s, "%s", s->msg->bdat_reply);
		s->msg->bdat_reply = xfree(s->msg->bdat_reply);
		return (1);
	}
	if (!s->msg->bdat_last) {
		if (s->msg->too_big || s->cleanup_failed || s->cleanup == NULL) {
			/* Say so now; later chunks get 503. */
			smtpd_data_end(s);
			return (1);
		}
		snprintf(text, sizeof(text), "250 2.0.0 Ok: %llu bytes",
			 s->msg->bdat_len);
		s->cmd_ok[SMTPD_CMD_BDAT]++;
		smtpd_reply(s, "%s", text);
		return (1);
	}
	smtp_data_end(&s->msg->scan);
	smtpd_data_end(s);
	return (1);
}

/* smtpd_data_cleanup_reply - cleanup said something */
void
smtpd_data_cleanup_reply(struct smtpd_session *s, int status,
			 const char *queue_id, const char *reason)
{
	const char *cmd = s->msg->data_mode == SMTPD_CMD_BDAT ? "BDAT" : "DATA";

	if (status != 0) {
		xfree(s->cleanup_reason);
		s->cleanup_reason = reason ? xstrdup(reason) : NULL;
	}
	switch (s->state) {
	case SMTPD_ST_CLEANUP_OPEN:
		if (status != 0) {
			int     mode = s->msg->data_mode;

			smtpd_data_fail_reply(s, cmd);
			smtpd_session_reset(s);
			s->state = SMTPD_ST_CMD;
			if (mode == SMTPD_CMD_BDAT) {
				/* Replied; the chunk's bytes still come. */
				smtpd_bdat_discard(s, "");
			}
			break;
		}
		snprintf(s->queue_id, sizeof(s->queue_id), "%s",
			 queue_id ? queue_id : "");
		log_info("%s: client=%s[%s]%s%s%s%s%s%s", s->queue_id, s->name,
			 s->addr, s->tls_info ? ", tls=" : "",
			 s->tls_info ? s->tls_info : "",
			 smtpd_sasl_username(s) ? ", sasl_method=" : "",
			 smtpd_sasl_username(s) ? smtpd_sasl_method(s) : "",
			 smtpd_sasl_username(s) ? ", sasl_username=" : "",
			 smtpd_sasl_username(s) ? smtpd_sasl_username(s) : "");
		smtpd_data_received(s);
		if (s->msg->data_mode == SMTPD_CMD_DATA) {
			s->cmd_ok[SMTPD_CMD_DATA]++;
			smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
			s->state = SMTPD_ST_DATA;
		} else {
			s->state = SMTPD_ST_BDAT;
		}
		break;
	case SMTPD_ST_DATA:
	case SMTPD_ST_BDAT:
		/* Lost while content flows: say so at the end. */
		if (status == 0)
			return;
		s->cleanup_failed = 1;
		smtpd_cleanup_close(s);
		if (s->msg->chunk)
			strbuf_reset(s->msg->chunk);
		s->paused = 0;
		break;
	case SMTPD_ST_CHECK:
		/* Lost while the end-of-data restrictions run. */
		if (status == 0 || s->cleanup == NULL)
			return;
		s->cleanup_failed = 1;
		smtpd_cleanup_close(s);
		return;
	case SMTPD_ST_CLEANUP_DONE:
		s->state = SMTPD_ST_CMD;
		if (status == 0) {
			if (s->msg->data_mode == SMTPD_CMD_BDAT)
				s->cmd_ok[SMTPD_CMD_BDAT]++;
			smtpd_reply(s, "250 2.0.0 Ok: queued as %s",
				    queue_id && *queue_id ? queue_id :
				    s->queue_id);
		} else {
			smtpd_data_fail_reply(s, cmd);
		}
		smtpd_session_reset(s);
		break;
	default:
		return;
	}
	smtpd_session_resume(s);
}
