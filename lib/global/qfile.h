#ifndef SENDARIX_QFILE_H
#define SENDARIX_QFILE_H

#include <sys/types.h>
#include <stddef.h>

struct strbuf;

/*
 * Queue file: a sequence of records
 *
 *	TYPE LENGTH ':' DATA '\n'
 *
 * TYPE is one byte, LENGTH is decimal (at most 10 digits), DATA is exactly
 * LENGTH bytes. The order of records in a file:
 *
 *	V	version, "1"
 *	T	arrival time, "seconds.microseconds"
 *	Z	content size in bytes: 15 zero-padded digits, set at commit
 *	S	envelope sender ("" for the null sender)
 *	A*	envelope attributes, "name=value" (client_addr, client_name,
 *		helo, protocol, sasl_method, sasl_username, body,
 *		smtputf8, ...)
 *	R*	one per recipient: a fixed-width status byte (QSTAT_*), then the
 *		address, then optional TAB-separated name=value parameters.
 *		The status byte is updated in place.
 *	C*	message content in chunks: lines end in CRLF, not dot-stuffed
 *	H*	late headers: header fields added once the content was known
 *		(a signature, Authentication-Results, a filter's edits), one
 *		field a record, "Name: value", folded lines joined by CRLF
 *		and a space or tab, no CRLF at the end. They go out before
 *		the content's own header section, as if each were prepended
 *		in the order of the file: the last H record is the first
 *		line of the message. Z does not count them. Files without
 *		H records (all files before them) read as before.
 *	E	end marker, empty. A file without it is incomplete.
 *
 * The content may be large: readers that do not need it skip the C
 * records by their lengths (QFILE_READ_ENVELOPE) or stop at the first
 * one (QFILE_READ_HEAD), and a delivery agent reads it a piece at a
 * time (qfile_content_read()).
 */
#define QREC_VERSION	'V'
#define QREC_TIME	'T'
#define QREC_SIZE	'Z'
#define QREC_SENDER	'S'
#define QREC_ATTR	'A'
#define QREC_RCPT	'R'
#define QREC_CONTENT	'C'
#define QREC_LATE_HEADER 'H'
#define QREC_END	'E'

#define QFILE_VERSION	"1"
#define QFILE_SIZE_WIDTH 15
#define QFILE_CHUNK	65536		/* largest C record written */
#define QFILE_ID_MAX	32

/*
 * Recipient status bytes. PENDING is the only state that is delivered;
 * FAILED and NOTIFY are final for delivery but still owe the sender a
 * notice: the delivery agent sets them the moment it learns the outcome,
 * and bounce sets the final byte (BOUNCED, SENT) once the notice is
 * queued. So each outcome and each notice happens once, also when a
 * process dies in between (docs/decisions.md "Exactly once").
 */
#define QSTAT_PENDING	'-'
#define QSTAT_SENT	'D'		/* delivered */
#define QSTAT_BOUNCED	'B'		/* failed, sender notified */
#define QSTAT_SUPPRESSED 'S'
#define QSTAT_EXPIRED	'X'		/* expired, sender notified */
#define QSTAT_FAILED	'F'		/* failed, failure notice owed */
#define QSTAT_NOTIFY	'N'		/* relayed, success notice owed */

#define QSTAT_VALID(c)	((c) == QSTAT_PENDING || (c) == QSTAT_SENT \
			 || (c) == QSTAT_BOUNCED || (c) == QSTAT_SUPPRESSED \
			 || (c) == QSTAT_EXPIRED || (c) == QSTAT_FAILED \
			 || (c) == QSTAT_NOTIFY)

/* Queue names, the subfolders of queue_directory. */
#define QUEUE_TMP	"tmp"
#define QUEUE_INCOMING	"incoming"
#define QUEUE_ACTIVE	"active"
#define QUEUE_DEFERRED	"deferred"
#define QUEUE_HOLD	"hold"
#define QUEUE_CORRUPT	"corrupt"
#define QUEUE_FREE	"free"		/* done files kept for reuse */
extern const char *const qfile_queues[];	/* NULL terminated, no tmp */

/* Every folder of queue_directory, as master makes it. */
struct qfile_dir {
	const char *name;
	mode_t  mode;
	int     owned;			/* by mail_owner when master is root */
};
extern const struct qfile_dir qfile_dirs[];
extern const size_t qfile_dirs_count;

/* Writing a new message (cleanup). */
struct qfile_out;

extern struct qfile_out *qfile_create(const char *, struct strbuf *);
extern const char *qfile_out_id(const struct qfile_out *);
extern int qfile_out_record(struct qfile_out *, int, const void *, size_t);
extern int qfile_out_sender(struct qfile_out *, const char *);
extern int qfile_out_attr(struct qfile_out *, const char *, const char *);
extern int qfile_out_rcpt(struct qfile_out *, const char *, const char *);
extern int qfile_out_content(struct qfile_out *, const void *, size_t);
extern int qfile_out_late_header(struct qfile_out *, const char *);
extern long long qfile_out_size(const struct qfile_out *);
extern int qfile_out_finish(struct qfile_out *, struct strbuf *);
extern int qfile_out_end(struct qfile_out *, struct strbuf *);
extern int qfile_out_sync(struct qfile_out *, struct strbuf *);
extern int qfile_out_sync_to(struct qfile_out *, const char *,
			             struct strbuf *);
extern int qfile_commit(struct qfile_out *, struct strbuf *);
extern struct qfile_out *qfile_abort(struct qfile_out *);
extern struct qfile_out *qfile_out_free(struct qfile_out *);
extern int qfile_dir_sync(const char *, const char *, struct strbuf *);

/* Reading. */
struct qfile_rcpt {
	char   *addr;
	char   *params;			/* "" when none */
	char    status;
	off_t   status_offset;		/* byte offset of the status byte */
};

struct qfile_msg {
	char    id[QFILE_ID_MAX];
	long    arrival_sec;
	long    arrival_usec;
	long long size;
	char   *sender;
	size_t  nattrs;
	char  **attr_names;
	char  **attr_values;
	size_t  nrcpts;
	struct qfile_rcpt *rcpts;
	off_t   content_offset;		/* first C record */
	struct strbuf *content;		/* NULL unless asked for */
	struct strbuf *late;		/* H records as they go out; NULL
					 * with QFILE_READ_HEAD */
};

/* What qfile_read() reads. */
#define QFILE_READ_ENVELOPE	0	/* all but the content */
#define QFILE_READ_CONTENT	1	/* the content too, in memory */
#define QFILE_READ_HEAD		2	/* the envelope, up to the content */

/* Reading the content a piece at a time. */
struct qfile_cursor {
	off_t   next;			/* next record; -1 at the end */
	off_t   data;			/* next byte of the current record */
	size_t  left;			/* bytes left in it */
};

extern struct qfile_msg *qfile_read(const char *, int, struct strbuf *);
extern struct qfile_msg *qfile_read_fd(int, const char *, int,
				               struct strbuf *);
extern struct qfile_msg *qfile_parse(const char *, size_t, int,
				             struct strbuf *);
extern void qfile_content_start(struct qfile_cursor *,
				        const struct qfile_msg *);
extern ssize_t qfile_content_read(int, struct qfile_cursor *, void *,
				          size_t);
extern struct qfile_msg *qfile_msg_free(struct qfile_msg *);
extern const char *qfile_msg_attr(const struct qfile_msg *, const char *);
extern int qfile_set_status(int, off_t, int);
extern int qfile_mark(int, off_t, int, int);
extern int qfile_lock(int, int);
extern int qfile_committed(const char *);
extern int qfile_release(const char *, const char *, const char *);

#define QFILE_LOCK_SHARED	0	/* a delivery agent or bounce */
#define QFILE_LOCK_TRY		1	/* qmgr: is anyone working on it? */

/* Queue IDs and paths. */
extern int qfile_id_make(char *, size_t, long, long, unsigned long long);
extern int qfile_id_valid(const char *);
extern char *qfile_path(const char *, const char *, const char *);
extern int qfile_move(const char *, const char *, const char *,
		              const char *);
extern int qfile_queue_valid(const char *);

#endif
