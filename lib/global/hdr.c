/*
 * hdr - streaming scanner for a message's header section
 *
 * SYNOPSIS
 *	#include "hdr.h"
 *
 *	struct hdr *hdr_new(size_t limit)
 *	struct hdr *hdr_free(struct hdr *h)
 *	int	hdr_feed(struct hdr *h, const char *data, size_t len,
 *			size_t *used)
 *	int	hdr_finish(struct hdr *h)
 *	int	hdr_msgid(const struct hdr *h, struct strbuf *out)
 *
 * DESCRIPTION
 *	This module finds the end of the header section of a message that
 *	arrives in chunks split anywhere, and keeps that section so that
 *	the caller can add headers at its end before writing it out.
 *
 *	A header line is a field name (one or more printable ASCII bytes
 *	other than ':'), optional blanks, then ':'. A line that starts
 *	with a blank continues the previous field (folding). The header
 *	section ends at the first line that is neither: usually the empty
 *	line, but, as in Postfix, any other non-header line also starts the
 *	body. A first line that starts with a blank is not a header, so a
 *	message may have no header section at all. Lines end in LF (CRLF
 *	or a bare LF).
 *
 *	hdr_new() makes a scanner for a header section of at most "limit"
 *	bytes (line ends included). The start of a line that may be body
 *	or a header may pass the limit by a little; a "field name" without
 *	colon longer than that counts as a header over the limit. The
 *	caller owns the scanner and releases it with hdr_free(), which
 *	accepts NULL and returns NULL.
 *
 *	hdr_feed() scans the next chunk of content. It returns HDR_MORE when
 *	the whole chunk was taken into the header section; HDR_DONE when
 *	the header section has ended; HDR_TOOBIG when it grew past the
 *	limit (the scanner then stops; buf is left as it was). "used" is
 *	set to the number of bytes of "data" that were appended to buf.
 *	After HDR_DONE, the message is: buf->data[0 .. hdr_len] (the header
 *	section), then buf->data[hdr_len .. buf->len] (the start of the
 *	body, taken while deciding that its first line is not a header),
 *	then data[used .. len] and whatever follows. Once done or too big,
 *	hdr_feed() takes nothing and returns the same state again.
 *
 *	hdr_finish() is called at the end of the content. A header section
 *	still open ends there; a last line without its line end that was a
 *	header stays in the header section, and "eol" says what to add
 *	before more headers. It returns the final state.
 *
 *	A NUL byte in a header line (in the field name, before the colon,
 *	in the value or in a continuation line), or at the start of the
 *	line where the next field would start, sets HDR_SEEN_NUL in
 *	"seen"; a NUL in a field name still ends the header section there,
 *	as any other byte that cannot be in a name. The caller decides
 *	what to do about it (cleanup refuses the message).
 *
 *	The fields "seen" (HDR_SEEN_MSGID, _DATE, _FROM, _NUL), "received" (the
 *	number of Received: fields), "headers" (the number of fields) and
 *	"hdr_len" are valid after the scan. Names match case-insensitively.
 *
 *	hdr_msgid() puts the value of the first Message-ID: field, unfolded
 *	and without surrounding blanks, in "out" and returns 0; -1 when there
 *	is none (or "out" is too small).
 *
 * DIAGNOSTICS
 *	None; no function logs. Out of memory ends the process (xmalloc).
 *
 * SEE ALSO
 *	RFC 5322 section 2.2, cleanup(8)
 */

#include <stdlib.h>
#include <string.h>

#include "hdr.h"
#include "strbuf.h"
#include "xmalloc.h"

/* Where the scanner is within the current line. */
#define HDR_LS_START	0		/* at the start of a line */
#define HDR_LS_NAME	1		/* inside a would-be field name */
#define HDR_LS_BLANK	2		/* blanks after the name */
#define HDR_LS_FIELD	3		/* in a header line, up to LF */

#define HDR_SLACK	1000		/* undecided bytes past limit */

#define HDR_NAME_CHAR(c)	((c) > 32 && (c) < 127 && (c) != ':')
#define HDR_BLANK(c)		((c) == ' ' || (c) == '\t')
#define HDR_LOWER(c)	(((c) >= 'A' && (c) <= 'Z') ? (c) + 32 : (c))

/* hdr_new - make a scanner */
struct hdr *
hdr_new(size_t limit)
{
	struct hdr *h = xcalloc(1, sizeof(*h));

	h->limit = limit;
	h->buf = strbuf_new(limit < 4096 ? limit : 4096, limit + HDR_SLACK);
	h->state = HDR_MORE;
	h->line_state = HDR_LS_START;
	h->eol = "";
	return (h);
}

/* hdr_free - release a scanner; NULL is fine */
struct hdr *
hdr_free(struct hdr *h)
{
	if (h) {
		strbuf_free(h->buf);
		free(h);
	}
	return (NULL);
}

/* hdr_name_is - does the kept field name equal "lname" (lower case)? */
static int
hdr_name_is(const struct hdr *h, const char *lname)
{
	size_t  n = strlen(lname);

	return (h->namelen == n && n <= HDR_NAME_KEEP
		&& memcmp(h->name, lname, n) == 0);
}

/* hdr_field - a new header field starts at hdr_len */
static void
hdr_field(struct hdr *h)
{
	h->headers++;
	if (hdr_name_is(h, "received")) {
		h->received++;
	} else if (hdr_name_is(h, "message-id")) {
		if ((h->seen & HDR_SEEN_MSGID) == 0) {
			h->seen |= HDR_SEEN_MSGID;
			h->msgid_off = h->hdr_len;
			h->msgid_open = 1;
		}
	} else if (hdr_name_is(h, "date")) {
		h->seen |= HDR_SEEN_DATE;
	} else if (hdr_name_is(h, "from")) {
		h->seen |= HDR_SEEN_FROM;
	}
}

/* hdr_close_msgid - the first Message-ID: field ends at hdr_len */
static void
hdr_close_msgid(struct hdr *h)
{
	if (h->msgid_open) {
		h->msgid_end = h->hdr_len;
		h->msgid_open = 0;
	}
}

/* hdr_end - the header section ends at hdr_len */
static void
hdr_end(struct hdr *h)
{
	hdr_close_msgid(h);
	h->state = HDR_DONE;
}

/* hdr_feed - scan the next chunk of content */
int
hdr_feed(struct hdr *h, const char *data, size_t len, size_t *used)
{
	size_t  base = h->buf->len;
	size_t  i = 0;
	size_t  end;
	const char *lf;
	unsigned char c;

	*used = 0;
	if (h->state != HDR_MORE)
		return (h->state);

	while (i < len && h->state == HDR_MORE) {
		c = (unsigned char) data[i];
		switch (h->line_state) {
		case HDR_LS_START:
			if (HDR_BLANK(c)) {
				/* Folding; but a first line can't continue. */
				if (h->headers == 0) {
					hdr_end(h);
					break;
				}
				h->line_state = HDR_LS_FIELD;
				i++;
				break;
			}
			hdr_close_msgid(h);
			if (!HDR_NAME_CHAR(c)) {
				if (c == 0)
					h->seen |= HDR_SEEN_NUL;
				hdr_end(h);	/* empty line or body */
				break;
			}
			h->namelen = 0;
			h->name[h->namelen++] = (char) HDR_LOWER(c);
			h->line_state = HDR_LS_NAME;
			i++;
			break;
		case HDR_LS_NAME:
			if (c == ':') {
				hdr_field(h);
				h->line_state = HDR_LS_FIELD;
			} else if (HDR_NAME_CHAR(c)) {
				if (h->namelen < HDR_NAME_KEEP)
					h->name[h->namelen] =
						(char) HDR_LOWER(c);
				if (h->namelen <= HDR_NAME_KEEP)
					h->namelen++;
			} else if (HDR_BLANK(c)) {
				h->line_state = HDR_LS_BLANK;
			} else {
				if (c == 0)
					h->seen |= HDR_SEEN_NUL;
				hdr_end(h);	/* no colon: body */
				break;
			}
			i++;
			break;
		case HDR_LS_BLANK:
			if (c == ':') {
				hdr_field(h);
				h->line_state = HDR_LS_FIELD;
			} else if (!HDR_BLANK(c)) {
				if (c == 0)
					h->seen |= HDR_SEEN_NUL;
				hdr_end(h);	/* "word word": body */
				break;
			}
			i++;
			break;
		default:				/* HDR_LS_FIELD */
			lf = memchr(data + i, '\n', len - i);
			end = lf ? (size_t) (lf - data) + 1 : len;
			if (memchr(data + i, 0, end - i) != NULL)
				h->seen |= HDR_SEEN_NUL;
			i = end;
			if (lf != NULL) {
				h->hdr_len = base + i;
				h->line_state = HDR_LS_START;
			}
			break;
		}
		/*
		 * Bytes of a line that may yet be body get some slack; a
		 * longer "name" is refused, or the buffer could grow.
		 */
		if (h->state == HDR_MORE && base + i > h->limit
		    + ((h->line_state == HDR_LS_NAME
			|| h->line_state == HDR_LS_BLANK) ? HDR_SLACK : 0)) {
			h->state = HDR_TOOBIG;
			return (h->state);
		}
	}
	if (strbuf_append(h->buf, data, i) < 0) {
		h->state = HDR_TOOBIG;			/* not reached */
		return (h->state);
	}
	*used = i;
	return (h->state);
}

/* hdr_finish - the content has ended */
int
hdr_finish(struct hdr *h)
{
	if (h->state != HDR_MORE)
		return (h->state);
	if (h->line_state == HDR_LS_FIELD) {
		/* A header line without its line end. */
		h->hdr_len = h->buf->len;
		if (h->buf->len > 0 && h->buf->data[h->buf->len - 1] == '\r')
			h->eol = "\n";
		else
			h->eol = "\r\n";
	}
	/* HDR_LS_NAME or _BLANK: an unfinished line without colon: body. */
	hdr_end(h);
	return (h->state);
}

/* hdr_msgid - the unfolded value of the first Message-ID: field */
int
hdr_msgid(const struct hdr *h, struct strbuf *out)
{
	const char *cp;
	const char *end;
	size_t  start;

	strbuf_reset(out);
	if ((h->seen & HDR_SEEN_MSGID) == 0 || h->state == HDR_TOOBIG)
		return (-1);
	cp = h->buf->data + h->msgid_off;
	end = h->buf->data + (h->msgid_open ? h->buf->len : h->msgid_end);
	cp = memchr(cp, ':', (size_t) (end - cp));
	if (cp == NULL)
		return (-1);				/* not reached */
	for (cp++; cp < end; cp++) {
		if (*cp == '\r' || *cp == '\n')
			continue;
		if (out->len == 0 && HDR_BLANK(*cp))
			continue;
		if (strbuf_appendc(out, *cp) < 0)
			return (-1);
	}
	start = out->len;
	while (start > 0 && HDR_BLANK(out->data[start - 1]))
		start--;
	strbuf_truncate(out, start);
	return (0);
}
