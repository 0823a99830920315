/*
 * smtp_reply - parse SMTP server replies, multi-line and enhanced codes
 *
 * SYNOPSIS
 *	#include "smtp_reply.h"
 *
 *	void	smtp_reply_init(struct smtp_reply *r)
 *	void	smtp_reply_clear(struct smtp_reply *r)
 *	int	smtp_reply_parse(const char *buf, size_t len, size_t limit,
 *			struct smtp_reply *r, size_t *used)
 *	int	smtp_reply_dsn(const char *text, char *out, size_t size)
 *	int	smtp_reply_flat(const struct smtp_reply *r, struct strbuf *out)
 *	const char *smtp_reply_line(const struct smtp_reply *r, size_t n,
 *			size_t *len)
 *
 * DESCRIPTION
 *	smtp_reply_init() readies a reply for use; smtp_reply_clear()
 *	releases what it holds (it may be used again after init).
 *
 *	smtp_reply_parse() looks at the start of "buf" for one whole reply:
 *	lines "ddd-text" then a last line "ddd text" or "ddd", each ending
 *	in CRLF or LF, all with the same code ddd in 200..599. It returns
 *	SMTP_REPLY_OK with "r" filled and "used" set to the bytes taken,
 *	SMTP_REPLY_MORE when the bytes so far are a valid prefix of a reply
 *	no longer than "limit", or SMTP_REPLY_BAD: a line that does not
 *	start with three digits and ' ', '-' or its end, a code out of
 *	range, a code that changes between lines, or more than "limit"
 *	bytes without the end of the reply. r->dsn gets the enhanced status
 *	code of the first line when it has one whose class matches the
 *	reply code ("550 5.1.1 ..."), else "". Control characters in the
 *	text (but TAB) are stored as '?', so that the text is safe in logs
 *	and in IPC attributes.
 *
 *	smtp_reply_dsn() reads an enhanced status code at the start of
 *	"text" (class 2, 4 or 5, subject and detail of 1-3 digits, then a
 *	blank or the end) into "out"; 0, or -1 when there is none or "out"
 *	is too small.
 *
 *	smtp_reply_flat() appends the reply as one line to "out": its lines
 *	joined by a blank, as Postfix reports multi-line replies. 0 or -1
 *	(the limit of "out").
 *
 *	smtp_reply_line() returns line "n" (from 0) of the reply, codes
 *	included, with its length in "len"; not NUL terminated; NULL when
 *	there is no such line.
 *
 * MEMORY
 *	The reply owns its text; smtp_reply_clear() frees it.
 *
 * DIAGNOSTICS
 *	Nothing is logged; nothing ends the process but xmalloc().
 *
 * SEE ALSO
 *	RFC 5321 section 4.2, RFC 3463, smtp-out(8)
 */

#include <string.h>

#include "smtp_reply.h"
#include "strbuf.h"

#define SMTP_REPLY_IS_DIGIT(c)	((c) >= '0' && (c) <= '9')

/* smtp_reply_init - an empty reply */
void
smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* smtp_reply_clear - release the text */
void
smtp_reply_clear(struct smtp_reply *r)
{
	strbuf_free(r->text);
	memset(r, 0, sizeof(*r));
}

/* smtp_reply_dsn - an enhanced status code at the start of text */
int
smtp_reply_dsn(const char *text, char *out, size_t size)
{
	const char *p = text;
	size_t  n;
	int     part;

	if (*p != '2' && *p != '4' && *p != '5')
		return (-1);
	p++;
	for (part = 0; part < 2; part++) {
		if (*p++ != '.')
			return (-1);
		for (n = 0; SMTP_REPLY_IS_DIGIT(p[n]); n++)
			;
		if (n < 1 || n > 3)
			return (-1);
		p += n;
	}
	if (*p != 0 && *p != ' ' && *p != '\t')
		return (-1);
	n = (size_t) (p - text);
	if (n >= size)
		return (-1);
	memcpy(out, text, n);
	out[n] = 0;
	return (0);
}

/* smtp_reply_parse - one whole reply from the start of buf */
int
smtp_reply_parse(const char *buf, size_t len, size_t limit,
		 struct smtp_reply *r, size_t *used)
{
	const char *nl;
	const char *line;
	size_t  pos = 0;
	size_t  llen;
	size_t  i;
	size_t  nlines = 0;
	int     code = 0;
	int     c;
	int     last;
	char    first[16];

	for (;;) {
		if (pos >= len)
			return (limit && len > limit ? SMTP_REPLY_BAD :
				SMTP_REPLY_MORE);
		line = buf + pos;
		nl = memchr(line, '\n', len - pos);
		if (nl == NULL) {
			/* Check what we have, so that junk is caught early. */
			llen = len - pos;
			for (i = 0; i < llen && i < 3; i++)
				if (!SMTP_REPLY_IS_DIGIT(line[i]))
					return (SMTP_REPLY_BAD);
			if (llen > 3 && line[3] != ' ' && line[3] != '-'
			    && line[3] != '\r')
				return (SMTP_REPLY_BAD);
			return (limit && len > limit ? SMTP_REPLY_BAD :
				SMTP_REPLY_MORE);
		}
		llen = (size_t) (nl - line);
		pos += llen + 1;
		if (limit && pos > limit)
			return (SMTP_REPLY_BAD);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen < 3 || !SMTP_REPLY_IS_DIGIT(line[0])
		    || !SMTP_REPLY_IS_DIGIT(line[1])
		    || !SMTP_REPLY_IS_DIGIT(line[2]))
			return (SMTP_REPLY_BAD);
		if (llen > 3 && line[3] != ' ' && line[3] != '-')
			return (SMTP_REPLY_BAD);
		c = (line[0] - '0') * 100 + (line[1] - '0') * 10
			+ line[2] - '0';
		if (c < 200 || c > 599 || (nlines > 0 && c != code))
			return (SMTP_REPLY_BAD);
		code = c;
		last = (llen == 3 || line[3] == ' ');
		nlines++;
		if (last)
			break;
	}

	/* A whole reply: now store it. */
	if (r->text == NULL)
		r->text = strbuf_new(pos + 1, 0);
	strbuf_reset(r->text);
	r->code = code;
	r->dsn[0] = 0;
	r->nlines = nlines;
	for (line = buf; line < buf + pos; line = nl + 1) {
		nl = memchr(line, '\n', (size_t) (buf + pos - line));
		llen = (size_t) (nl - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (line != buf)
			strbuf_appendc(r->text, '\n');
		for (i = 0; i < llen; i++) {
			c = (unsigned char) line[i];
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				c = '?';
			strbuf_appendc(r->text, c);
		}
	}
	/* The enhanced code of the first line, if its class matches. */
	if (r->text->len > 4) {
		llen = strcspn(r->text->data + 4, "\n");
		if (llen >= sizeof(first))
			llen = sizeof(first) - 1;
		memcpy(first, r->text->data + 4, llen);
		first[llen] = 0;
		if (smtp_reply_dsn(first, r->dsn, sizeof(r->dsn)) < 0
		    || r->dsn[0] != r->text->data[0])
			r->dsn[0] = 0;
	}
	*used = pos;
	return (SMTP_REPLY_OK);
}

/* smtp_reply_flat - the reply as one line */
int
smtp_reply_flat(const struct smtp_reply *r, struct strbuf *out)
{
	size_t  i;
	size_t  len;
	const char *line;

	for (i = 0; i < r->nlines; i++) {
		line = smtp_reply_line(r, i, &len);
		if (i > 0 && strbuf_appendc(out, ' ') < 0)
			return (-1);
		if (strbuf_append(out, line, len) < 0)
			return (-1);
	}
	return (0);
}

/* smtp_reply_line - line n of the reply */
const char *
smtp_reply_line(const struct smtp_reply *r, size_t n, size_t *len)
{
	const char *p;
	const char *end;
	const char *nl;

	if (r->text == NULL || n >= r->nlines)
		return (NULL);
	p = r->text->data;
	end = p + r->text->len;
	while (n-- > 0) {
		nl = memchr(p, '\n', (size_t) (end - p));
		if (nl == NULL)
			return (NULL);
		p = nl + 1;
	}
	nl = memchr(p, '\n', (size_t) (end - p));
	*len = nl ? (size_t) (nl - p) : (size_t) (end - p);
	return (p);
}
