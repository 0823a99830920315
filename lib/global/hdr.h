#ifndef SENDARIX_HDR_H
#define SENDARIX_HDR_H

#include <stddef.h>

struct strbuf;

/*
 * Streaming scanner for the header section of a message (lib/global/hdr.c).
 *
 * Content is fed in chunks of any size. The scanner keeps the header
 * section in its own buffer (bounded by the limit given to hdr_new()),
 * finds where it ends (at an empty line, or at the first line that is
 * not a header or a continuation: that line starts the body), counts
 * Received: headers and notes Message-ID:, Date: and From:.
 */
#define HDR_TOOBIG	(-1)		/* header section over limit */
#define HDR_MORE	0		/* still inside the header section */
#define HDR_DONE	1		/* the header section has ended */

#define HDR_SEEN_MSGID	(1 << 0)
#define HDR_SEEN_DATE	(1 << 1)
#define HDR_SEEN_FROM	(1 << 2)
#define HDR_SEEN_NUL	(1 << 3)	/* a NUL byte in a header line */

#define HDR_NAME_KEEP	16		/* name bytes kept to match */

struct hdr {
	/* Read-only for callers. */
	struct strbuf *buf;		/* headers, then body prefix */
	size_t  hdr_len;		/* bytes of buf that are headers */
	int     state;			/* HDR_MORE, _DONE, _TOOBIG */
	int     seen;			/* HDR_SEEN_* */
	long    received;		/* Received: headers */
	long    headers;		/* header fields (not lines) */
	const char *eol;		/* to add after headers: "", EOL */
	size_t  msgid_off;		/* first Message-ID: field in buf */
	size_t  msgid_end;
	/* Private. */
	size_t  limit;
	int     line_state;
	char    name[HDR_NAME_KEEP];
	size_t  namelen;
	int     msgid_open;
};

extern struct hdr *hdr_new(size_t);
extern struct hdr *hdr_free(struct hdr *);
extern int hdr_feed(struct hdr *, const char *, size_t, size_t *);
extern int hdr_finish(struct hdr *);
extern int hdr_msgid(const struct hdr *, struct strbuf *);

#endif
