/*
 * qfile - queue files: records, queue IDs, paths and the commit sequence
 *
 * SYNOPSIS
 *	#include "qfile.h"
 *
 *	struct qfile_out *qfile_create(const char *queue_dir,
 *			struct strbuf *err)
 *	const char *qfile_out_id(const struct qfile_out *out)
 *	int	qfile_out_record(struct qfile_out *out, int type,
 *			const void *data, size_t len)
 *	int	qfile_out_sender(struct qfile_out *out, const char *sender)
 *	int	qfile_out_attr(struct qfile_out *out, const char *name,
 *			const char *value)
 *	int	qfile_out_rcpt(struct qfile_out *out, const char *addr,
 *			const char *params)
 *	int	qfile_out_content(struct qfile_out *out, const void *data,
 *			size_t len)
 *	int	qfile_out_late_header(struct qfile_out *out, const char *field)
 *	long long qfile_out_size(const struct qfile_out *out)
 *	int	qfile_out_finish(struct qfile_out *out, struct strbuf *err)
 *	int	qfile_out_end(struct qfile_out *out, struct strbuf *err)
 *	int	qfile_out_sync(struct qfile_out *out, struct strbuf *err)
 *	int	qfile_out_sync_to(struct qfile_out *out, const char *queue,
 *			struct strbuf *err)
 *	int	qfile_commit(struct qfile_out *out, struct strbuf *err)
 *	struct qfile_out *qfile_abort(struct qfile_out *out)
 *	struct qfile_out *qfile_out_free(struct qfile_out *out)
 *	int	qfile_dir_sync(const char *queue_dir, const char *queue,
 *			struct strbuf *err)
 *
 *	struct qfile_msg *qfile_read(const char *path, int how,
 *			struct strbuf *err)
 *	struct qfile_msg *qfile_read_fd(int fd, const char *path, int how,
 *			struct strbuf *err)
 *	struct qfile_msg *qfile_parse(const char *buf, size_t len,
 *			int how, struct strbuf *err)
 *	void	qfile_content_start(struct qfile_cursor *cur,
 *			const struct qfile_msg *msg)
 *	ssize_t	qfile_content_read(int fd, struct qfile_cursor *cur,
 *			void *buf, size_t size)
 *	struct qfile_msg *qfile_msg_free(struct qfile_msg *msg)
 *	const char *qfile_msg_attr(const struct qfile_msg *msg,
 *			const char *name)
 *	int	qfile_set_status(int fd, off_t offset, int status)
 *
 *	int	qfile_id_make(char *buf, size_t size, long sec, long usec,
 *			unsigned long long inode)
 *	int	qfile_id_valid(const char *id)
 *	char	*qfile_path(const char *queue_dir, const char *queue,
 *			const char *id)
 *	int	qfile_move(const char *queue_dir, const char *from,
 *			const char *to, const char *id)
 *	int	qfile_queue_valid(const char *queue)
 *	int	qfile_release(const char *queue_dir, const char *queue,
 *			const char *id)
 *
 * DESCRIPTION
 *	The record format is in qfile.h.
 *
 *	qfile_create() opens a new file in queue_dir/tmp/, makes its queue ID
 *	from the time and the file's inode, and writes the V, T and Z
 *	records. The qfile_out_*() calls add records, in the order of
 *	qfile.h; they return 0, or -1 with errno (EINVAL for a record out of
 *	order or a value that cannot be stored, else the write error). An
 *	error sticks: every later call fails, and qfile_out_finish() reports
 *	it. Records are buffered and written in large writes;
 *	qfile_out_content() joins small pieces into C records of up to
 *	QFILE_CHUNK bytes. qfile_out_late_header() adds an H record after
 *	the content (EINVAL for a field that is not "Name: value" with
 *	folded lines only, see qfile.h). qfile_out_size() is the content
 *	size so far.
 *
 *	qfile_out_finish() writes the E record, sets the Z record, fsyncs
 *	the file and renames it to incoming/ID; it does not fsync the
 *	directory, so that the caller may do that once for many files with
 *	qfile_dir_sync(). qfile_commit() does both. qfile_out_finish() is
 *	qfile_out_end() (the E and Z records; no fsync; once) then
 *	qfile_out_sync() (fsync, then the rename); qfile_out_sync_to() is
 *	the same into another queue (hold/ for a message held on arrival, so
 *	that it is never in incoming/ where qmgr would take it); qfile_out_sync() touches
 *	nothing but "out" and "err", so a worker thread may run it while
 *	the caller's thread goes on with other files. qfile_create() may
 *	run in several threads. After a failure (-1, with
 *	the reason in "err" and errno set; qfile_create() also sets errno
 *	when it returns NULL) the caller calls qfile_abort(), which removes
 *	the file from tmp/ if it is still there, and frees "out". After
 *	success the caller calls qfile_out_free() (qfile_abort() then does
 *	not remove the file either: it never touches incoming/).
 *	Both return NULL.
 *
 *	qfile_read() reads and checks a file, qfile_read_fd() one that is
 *	open (it reads with pread(), the file offset does not matter), and
 *	qfile_parse() one in memory. They return a new message (the caller
 *	frees it with qfile_msg_free(), which accepts NULL) or NULL with the
 *	reason in "err": no V record or an unknown version, an unknown
 *	record type, a bad length, a record out of order, bad record data,
 *	a size that does not match the content, or no E record (an
 *	incomplete file). The message ID is the file's base name for
 *	qfile_read() when that is a valid queue ID, else "". "how":
 *	QFILE_READ_ENVELOPE (0) checks the whole file but reads only what
 *	is not content: the C records are skipped by their lengths, only
 *	their framing is read; QFILE_READ_CONTENT (1) also copies the
 *	content into msg->content; QFILE_READ_HEAD (2) stops at the first
 *	record after the envelope and only checks that the file ends in an
 *	E record (msg->late is then NULL, and the size is not checked).
 *	msg->late holds the late headers as they go out (the last H record
 *	first, each field ending in CRLF; empty when there are none).
 *	msg->content_offset is the offset of the first record after the
 *	envelope (C, else H, else E).
 *
 *	qfile_content_start() and qfile_content_read() read the content of
 *	a message read before from the same file ("fd") a piece at a time:
 *	qfile_content_read() returns up to "size" bytes of content (one C
 *	record at most), 0 at its end, or -1 with errno (EINVAL: a bad
 *	record, EIO: the file is shorter than it says). Memory does not
 *	grow with the message.
 *
 *	qfile_set_status() overwrites the status byte of one recipient at
 *	"offset" (qfile_rcpt.status_offset) and fdatasyncs; 0 or -1.
 *
 *	qfile_mark() sets the status byte at "offset" to "status" when it
 *	now holds "from" (any valid status byte when "from" is 0), without
 *	a sync: the byte is in the page cache at once, so a process that
 *	dies after qfile_mark() returned has recorded the outcome; only a
 *	crash of the whole host can lose it, and then the recipient is
 *	tried again (at least once, as Postfix's delivery agents do). It
 *	returns 1 when it wrote, 0 when the byte held something else (the
 *	outcome was recorded before: leave it), or -1 with errno (EINVAL:
 *	"offset" is not a status byte).
 *
 *	qfile_committed() tells a client of cleanup whose connection broke
 *	after it sent the whole message whether cleanup committed the file
 *	before it went away. cleanup renames a file out of tmp/ only after
 *	the file is fsynced, and a file is in one folder at a time: one that
 *	has left tmp/ for incoming/ (or that qmgr already took on to active/
 *	or deferred/) is queued and will be delivered. Then the folders are
 *	fsynced, as cleanup would have, and it returns 1; 0 when the file is
 *	still in tmp/ or nowhere (removed, or even delivered already: the
 *	caller must then assume it failed), -1 when a sync failed. Paths are
 *	relative to the queue directory, the daemons' working directory.
 *
 *	qfile_lock() takes a shared lock on an open queue file
 *	(QFILE_LOCK_SHARED, waits), as a delivery agent or bounce does
 *	while it works on a message, or tries an exclusive one and lets
 *	it go at once (QFILE_LOCK_TRY): 0 when nobody holds a lock, -1
 *	with errno EWOULDBLOCK when someone does. qmgr uses the try before
 *	it hands a message out, so that a message an earlier qmgr handed
 *	out (before a crash or a reload) is not delivered twice at once.
 *
 *	qfile_id_make() formats a queue ID: 7 characters of seconds, 4 of
 *	microseconds, then the inode (at least one character), in base 32
 *	with the alphabet QFILE_ID_ALPHABET, whose ASCII order is its
 *	numeric order and which has no vowels. IDs sort by time.
 *	It returns 0, or -1 when "buf" is too small. qfile_id_valid() is 1
 *	for a well-formed ID (also safe as a file name), else 0.
 *
 *	qfile_release() disposes of the file of a message that is done
 *	(qmgr): it is renamed into free/ under its old name and emptied,
 *	while free/ holds fewer than QFILE_FREE_MAX files (counted at most
 *	once a second, and counted up in between), else removed. 0, or -1
 *	with errno. qfile_create() takes a file from free/ before it makes
 *	a new one: renamed to a new name in tmp/ and opened with O_TRUNC,
 *	it becomes the next message's file, with the same inode and so a
 *	new queue ID (a different time). That spares the inode allocation
 *	of a create, which on ext4 without a journal scans every inode
 *	freed in the last seconds (docs/decisions.md "Queue files are
 *	recycled"). Only regular files with one link are taken; a file is
 *	in one folder at a time, so nothing else sees it change.
 *
 *	qfile_path() returns "queue_dir/queue/id" (the caller frees it).
 *	qfile_move() renames a file from one queue to another; 0, or -1 with
 *	errno (EINVAL for a bad queue name or ID). qfile_queue_valid() is 1
 *	for a name in qfile_queues (tmp is not one), else 0.
 *
 * DIAGNOSTICS
 *	Nothing here logs or ends the process, except xmalloc() when memory
 *	runs out. Bad queue files are reported to the caller, which moves
 *	them to corrupt/.
 *
 * SEE ALSO
 *	qfile.h, DESIGN.md "The queue"
 */

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qfile.h"
#include "strbuf.h"
#include "xmalloc.h"

/*
 * qfile_dirs - every folder of the queue tree, with its mode: master makes
 * them at start (master_queue.c) and "sendarix check" compares them
 * (conf_check.c). maildrop/ is sticky and set-gid: any user may add a
 * file, none may list it or remove another's, and each file gets
 * mail_owner's group so that pickup reads it.
 */
const struct qfile_dir qfile_dirs[] = {
	{"tmp", 0700, 1},
	{"incoming", 0700, 1},
	{"active", 0700, 1},
	{"deferred", 0700, 1},
	{"hold", 0700, 1},
	{"corrupt", 0700, 1},
	{"history", 0700, 1},
	{"data", 0700, 1},		/* MTA-STS cache, TLS-RPT store */
	{"free", 0700, 1},		/* done files kept for reuse */
	{"private", 0700, 1},
	{"public", 0711, 1},		/* local users reach public/sendmail */
	{"maildrop", 03733, 1},
	{"pid", 0755, 0},
};
const size_t qfile_dirs_count = sizeof(qfile_dirs) / sizeof(qfile_dirs[0]);

const char *const qfile_queues[] = {
	QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD,
	QUEUE_CORRUPT, NULL,
};

/* 32 symbols in ASCII order, no vowels: '0'-'9', consonants, then 'z'. */
#define QFILE_ID_ALPHABET	"0123456789BCDFGHJKLMNPQRSTVWXYZz"
#define QFILE_ID_SEC_WIDTH	7
#define QFILE_ID_USEC_WIDTH	4
#define QFILE_ID_MIN		(QFILE_ID_SEC_WIDTH + QFILE_ID_USEC_WIDTH + 1)

#define QFILE_OUT_BUFSIZE	65536	/* flush the buffer past this */
#define QFILE_LEN_DIGITS	10
#define QFILE_LEN_MAX		9999999999ULL

/* Where a record type may appear: the order of qfile.h. */
static int
qfile_rank(int type)
{
	switch (type) {
	case QREC_VERSION:
		return (0);
	case QREC_TIME:
		return (1);
	case QREC_SIZE:
		return (2);
	case QREC_SENDER:
		return (3);
	case QREC_ATTR:
		return (4);
	case QREC_RCPT:
		return (5);
	case QREC_CONTENT:
		return (6);
	case QREC_LATE_HEADER:
		return (7);
	case QREC_END:
		return (8);
	default:
		return (-1);
	}
}

/* qfile_repeats - a record type that may appear more than once */
static int
qfile_repeats(int type)
{
	return (type == QREC_ATTR || type == QREC_RCPT || type == QREC_CONTENT
		|| type == QREC_LATE_HEADER);
}

static int qfile_field_ok(const char *, size_t);

struct qfile_out {
	int     fd;
	char   *queue_dir;
	char   *tmp_path;			/* NULL once renamed */
	char    id[QFILE_ID_MAX];
	struct strbuf *buf;			/* records not yet written */
	struct strbuf *chunk;			/* content not yet a record */
	off_t   written;			/* bytes in the file */
	off_t   size_offset;			/* data of the Z record */
	long long content_size;
	int     rank;				/* of the last record */
	int     error;				/* sticky errno */
};

/* qfile_out_flush - write the buffered records */
static int
qfile_out_flush(struct qfile_out *out)
{
	size_t  off = 0;
	ssize_t n;

	while (off < out->buf->len) {
		n = write(out->fd, out->buf->data + off, out->buf->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			out->error = (n < 0 ? errno : EIO);
			errno = out->error;
			return (-1);
		}
		off += (size_t) n;
	}
	out->written += (off_t) off;
	strbuf_reset(out->buf);
	return (0);
}

/* qfile_out_put - buffer one record, no checks */
static int
qfile_out_put(struct qfile_out *out, int type, const void *data, size_t len)
{
	char    head[32];
	int     n;

	n = snprintf(head, sizeof(head), "%c%zu:", type, len);
	if (strbuf_append(out->buf, head, (size_t) n) < 0
	    || strbuf_append(out->buf, data, len) < 0
	    || strbuf_appendc(out->buf, '\n') < 0) {
		out->error = ENOMEM;
		errno = out->error;
		return (-1);
	}
	if (out->buf->len >= QFILE_OUT_BUFSIZE)
		return (qfile_out_flush(out));
	return (0);
}

/* qfile_out_check - may this record come next */
static int
qfile_out_check(struct qfile_out *out, int type, size_t len)
{
	int     rank = qfile_rank(type);

	if (out->error) {
		errno = out->error;
		return (-1);
	}
	if (out->tmp_path == NULL || rank < 0 || rank < out->rank
	    || (rank == out->rank && !qfile_repeats(type))
	    || (out->rank < qfile_rank(QREC_SENDER) && rank != out->rank + 1)
	    || (unsigned long long) len > QFILE_LEN_MAX) {
		errno = EINVAL;
		return (-1);
	}
	return (0);
}

/* qfile_out_chunk_flush - make a C record of the pending content */
static int
qfile_out_chunk_flush(struct qfile_out *out)
{
	int     ret;

	if (out->chunk->len == 0)
		return (0);
	ret = qfile_out_put(out, QREC_CONTENT, out->chunk->data, out->chunk->len);
	strbuf_reset(out->chunk);
	return (ret);
}

/* qfile_out_record - add one record */
int
qfile_out_record(struct qfile_out *out, int type, const void *data,
		 size_t len)
{
	if (qfile_out_check(out, type, len) < 0)
		return (-1);
	if (qfile_out_chunk_flush(out) < 0)
		return (-1);
	if (qfile_out_put(out, type, data, len) < 0)
		return (-1);
	out->rank = qfile_rank(type);
	if (type == QREC_CONTENT)
		out->content_size += (long long) len;
	return (0);
}

/* qfile_out_sender - add the S record */
int
qfile_out_sender(struct qfile_out *out, const char *sender)
{
	return (qfile_out_record(out, QREC_SENDER, sender, strlen(sender)));
}

/* qfile_out_attr - add one A record, "name=value" */
int
qfile_out_attr(struct qfile_out *out, const char *name, const char *value)
{
	size_t  nlen = strlen(name);
	size_t  vlen = strlen(value);
	char   *rec;
	int     ret;

	if (nlen == 0 || strchr(name, '=') != NULL) {
		errno = EINVAL;
		return (-1);
	}
	rec = xmalloc(nlen + 1 + vlen);
	memcpy(rec, name, nlen);
	rec[nlen] = '=';
	memcpy(rec + nlen + 1, value, vlen);
	ret = qfile_out_record(out, QREC_ATTR, rec, nlen + 1 + vlen);
	free(rec);
	return (ret);
}

/* qfile_out_rcpt - add one R record: status, address, TAB parameters */
int
qfile_out_rcpt(struct qfile_out *out, const char *addr, const char *params)
{
	size_t  alen = strlen(addr);
	size_t  plen = params ? strlen(params) : 0;
	size_t  len = 1 + alen + (plen ? 1 + plen : 0);
	char   *rec;
	int     ret;

	/* A TAB would end the address when the file is read. */
	if (alen == 0 || strchr(addr, '\t') != NULL) {
		errno = EINVAL;
		return (-1);
	}
	rec = xmalloc(len);
	rec[0] = QSTAT_PENDING;
	memcpy(rec + 1, addr, alen);
	if (plen) {
		rec[1 + alen] = '\t';
		memcpy(rec + 2 + alen, params, plen);
	}
	ret = qfile_out_record(out, QREC_RCPT, rec, len);
	free(rec);
	return (ret);
}

/* qfile_out_content - add content, in C records of up to QFILE_CHUNK */
int
qfile_out_content(struct qfile_out *out, const void *data, size_t len)
{
	const char *p = data;
	size_t  room;

	if (qfile_out_check(out, QREC_CONTENT, 0) < 0)
		return (-1);
	out->rank = qfile_rank(QREC_CONTENT);
	out->content_size += (long long) len;
	while (len > 0) {
		/* Whole chunks straight from the caller: one copy less. */
		if (out->chunk->len == 0 && len >= QFILE_CHUNK) {
			if (qfile_out_put(out, QREC_CONTENT, p, QFILE_CHUNK) < 0)
				return (-1);
			p += QFILE_CHUNK;
			len -= QFILE_CHUNK;
			continue;
		}
		room = QFILE_CHUNK - out->chunk->len;
		if (room > len)
			room = len;
		(void) strbuf_append(out->chunk, p, room);
		p += room;
		len -= room;
		if (out->chunk->len == QFILE_CHUNK
		    && qfile_out_chunk_flush(out) < 0)
			return (-1);
	}
	return (0);
}

/* qfile_out_late_header - add one H record, after the content */
int
qfile_out_late_header(struct qfile_out *out, const char *field)
{
	size_t  len = strlen(field);

	if (!qfile_field_ok(field, len)) {
		errno = EINVAL;
		return (-1);
	}
	return (qfile_out_record(out, QREC_LATE_HEADER, field, len));
}

/* qfile_out_size - content bytes so far */
long long
qfile_out_size(const struct qfile_out *out)
{
	return (out->content_size);
}

/* qfile_out_id - the queue ID */
const char *
qfile_out_id(const struct qfile_out *out)
{
	return (out->id);
}

/* qfile_id_digits - base 32, fixed width; -1 if it does not fit */
static int
qfile_id_digits(char *p, int width, unsigned long long v)
{
	int     i;

	for (i = width - 1; i >= 0; i--) {
		p[i] = QFILE_ID_ALPHABET[v & 31];
		v >>= 5;
	}
	return (v ? -1 : 0);
}

/* qfile_id_make - format a queue ID from time and inode */
int
qfile_id_make(char *buf, size_t size, long sec, long usec,
	      unsigned long long inode)
{
	char    ino[16];
	int     n = 0;
	size_t  need;

	if (sec < 0 || usec < 0 || usec > 999999)
		return (-1);
	do {
		ino[n++] = QFILE_ID_ALPHABET[inode & 31];
		inode >>= 5;
	} while (inode);
	need = QFILE_ID_SEC_WIDTH + QFILE_ID_USEC_WIDTH + (size_t) n + 1;
	if (need > size)
		return (-1);
	if (qfile_id_digits(buf, QFILE_ID_SEC_WIDTH,
			    (unsigned long long) sec) < 0)
		return (-1);
	(void) qfile_id_digits(buf + QFILE_ID_SEC_WIDTH, QFILE_ID_USEC_WIDTH,
			       (unsigned long long) usec);
	buf += QFILE_ID_SEC_WIDTH + QFILE_ID_USEC_WIDTH;
	while (n > 0)
		*buf++ = ino[--n];
	*buf = 0;
	return (0);
}

/* qfile_id_valid - a well-formed queue ID */
int
qfile_id_valid(const char *id)
{
	size_t  len = strlen(id);
	size_t  i;

	if (len < QFILE_ID_MIN || len >= QFILE_ID_MAX)
		return (0);
	for (i = 0; i < len; i++)
		if (id[i] == 0 || strchr(QFILE_ID_ALPHABET, id[i]) == NULL)
			return (0);
	return (1);
}

/* qfile_queue_valid - one of the queues */
int
qfile_queue_valid(const char *queue)
{
	int     i;

	for (i = 0; qfile_queues[i]; i++)
		if (strcmp(queue, qfile_queues[i]) == 0)
			return (1);
	return (0);
}

/* qfile_path - queue_dir/queue/id */
char   *
qfile_path(const char *queue_dir, const char *queue, const char *id)
{
	size_t  len = strlen(queue_dir) + strlen(queue) + strlen(id) + 3;
	char   *path = xmalloc(len);

	snprintf(path, len, "%s/%s/%s", queue_dir, queue, id);
	return (path);
}

/* qfile_move - rename a file between queues */
int
qfile_move(const char *queue_dir, const char *from, const char *to,
	   const char *id)
{
	char   *src;
	char   *dst;
	int     ret;
	int     saved;

	if (!qfile_queue_valid(from) || !qfile_queue_valid(to)
	    || !qfile_id_valid(id)) {
		errno = EINVAL;
		return (-1);
	}
	src = qfile_path(queue_dir, from, id);
	dst = qfile_path(queue_dir, to, id);
	ret = rename(src, dst);
	saved = errno;
	free(src);
	free(dst);
	errno = saved;
	return (ret);
}

#define QFILE_FREE_MAX		512	/* files kept in free/ */
#define QFILE_FREE_BATCH	128	/* names read from free/ at once */

/* The names in free/ one process knows of, and whom they are for. */
static pthread_mutex_t qfile_free_lock = PTHREAD_MUTEX_INITIALIZER;
static char (*qfile_free_names)[QFILE_ID_MAX];
static size_t qfile_free_count;
static size_t qfile_free_next;
static struct timeval qfile_free_empty;	/* free/ was last found empty */

/* qfile_free_fill - read names from free/; how many */
static size_t
qfile_free_fill(const char *queue_dir)
{
	struct timeval now;
	struct dirent *de;
	char   *dir;
	DIR    *d;

	/* An empty pool is looked at again after 100 ms, not every time. */
	gettimeofday(&now, NULL);
	if ((now.tv_sec - qfile_free_empty.tv_sec) * 1000000L
	    + (now.tv_usec - qfile_free_empty.tv_usec) < 100000L)
		return (0);
	if (qfile_free_names == NULL)
		qfile_free_names = xcalloc(QFILE_FREE_BATCH,
					   sizeof(*qfile_free_names));
	qfile_free_count = qfile_free_next = 0;
	dir = qfile_path(queue_dir, QUEUE_FREE, "");
	if ((d = opendir(dir)) != NULL) {
		while (qfile_free_count < QFILE_FREE_BATCH
		       && (de = readdir(d)) != NULL)
			if (qfile_id_valid(de->d_name)
			    && strlen(de->d_name) < QFILE_ID_MAX)
				strcpy(qfile_free_names[qfile_free_count++],
				       de->d_name);
		closedir(d);
	}
	free(dir);
	if (qfile_free_count == 0)
		qfile_free_empty = now;
	return (qfile_free_count);
}

/*
 * qfile_free_take - a file of free/ renamed to "path" and opened, emptied:
 * its descriptor, or -1 when free/ has none.
 */
static int
qfile_free_take(const char *queue_dir, const char *path)
{
	struct stat st;
	char   *src;
	int     fd = -1;
	int     filled = 0;

	pthread_mutex_lock(&qfile_free_lock);
	while (fd < 0 && (qfile_free_next < qfile_free_count
			  || (!filled++ && qfile_free_fill(queue_dir) > 0))) {
		src = qfile_path(queue_dir, QUEUE_FREE,
				 qfile_free_names[qfile_free_next++]);
		if (rename(src, path) == 0) {
			fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW
				  | O_CLOEXEC);
			if (fd >= 0 && (fstat(fd, &st) < 0
					|| !S_ISREG(st.st_mode)
					|| st.st_nlink != 1)) {
				(void) close(fd);
				fd = -1;
			}
			if (fd < 0)
				(void) unlink(path);
		}
		/* ENOENT: another cleanup took it. */
		free(src);
	}
	pthread_mutex_unlock(&qfile_free_lock);
	return (fd);
}

/* qfile_release - a done message's file goes to free/, or is removed */
int
qfile_release(const char *queue_dir, const char *queue, const char *id)
{
	static long counted_at;
	static long kept;
	struct dirent *de;
	char   *src;
	char   *dst;
	DIR    *d;
	int     ret;
	int     saved;

	if (!qfile_queue_valid(queue) || !qfile_id_valid(id)) {
		errno = EINVAL;
		return (-1);
	}
	src = qfile_path(queue_dir, queue, id);
	if (counted_at != (long) time(NULL)) {
		counted_at = (long) time(NULL);
		kept = 0;
		dst = qfile_path(queue_dir, QUEUE_FREE, "");
		if ((d = opendir(dst)) != NULL) {
			while ((de = readdir(d)) != NULL && kept < QFILE_FREE_MAX)
				kept += de->d_name[0] != '.';
			closedir(d);
		} else
			kept = QFILE_FREE_MAX;
		free(dst);
	}
	ret = -1;
	if (kept < QFILE_FREE_MAX) {
		dst = qfile_path(queue_dir, QUEUE_FREE, id);
		if ((ret = rename(src, dst)) == 0) {
			kept++;
			/* Delivered content does not linger in the pool. */
			(void) truncate(dst, 0);
		}
		saved = errno;
		free(dst);
		errno = saved;
	}
	if (ret < 0 && errno != ENOENT)
		ret = unlink(src);
	saved = errno;
	free(src);
	errno = saved;
	return (ret);
}

/* qfile_create - open a new queue file in tmp/ */
struct qfile_out *
qfile_create(const char *queue_dir, struct strbuf *err)
{
	static unsigned long counter;
	struct qfile_out *out;
	struct timeval tv;
	struct stat st;
	char   *path;
	size_t  plen = strlen(queue_dir) + 64;
	char    rec[64];
	int     fd = -1;
	int     tries;
	int     saved;
	int     n;

	path = xmalloc(plen);
	for (tries = 0; tries < 100; tries++) {
		gettimeofday(&tv, NULL);
		snprintf(path, plen, "%s/" QUEUE_TMP "/%ld.%ld.%ld.%lu", queue_dir,
			 (long) getpid(), (long) tv.tv_sec, (long) tv.tv_usec,
			 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
		if (tries == 0 && (fd = qfile_free_take(queue_dir, path)) >= 0)
			break;
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		saved = errno;
		strbuf_sets(err, "");
		strbuf_printf(err, "create queue file %s: %s", path,
			      strerror(saved));
		free(path);
		errno = saved;
		return (NULL);
	}
	if (fstat(fd, &st) < 0) {
		saved = errno;
		strbuf_sets(err, "");
		strbuf_printf(err, "fstat %s: %s", path, strerror(saved));
		(void) unlink(path);
		(void) close(fd);
		free(path);
		errno = saved;
		return (NULL);
	}
	out = xcalloc(1, sizeof(*out));
	out->fd = fd;
	out->queue_dir = xstrdup(queue_dir);
	out->tmp_path = path;
	/* Small to start: cleanup may hold many files open at once. */
	out->buf = strbuf_new(8192, 0);
	out->chunk = strbuf_new(4096, QFILE_CHUNK);
	out->rank = -1;

	/* The time of the ID is the arrival time. */
	gettimeofday(&tv, NULL);
	if (qfile_id_make(out->id, sizeof(out->id), (long) tv.tv_sec,
			  (long) tv.tv_usec, (unsigned long long) st.st_ino) < 0) {
		strbuf_sets(err, "cannot make a queue ID");
		return (qfile_abort(out));
	}
	(void) qfile_out_record(out, QREC_VERSION, QFILE_VERSION,
				strlen(QFILE_VERSION));
	n = snprintf(rec, sizeof(rec), "%ld.%06ld", (long) tv.tv_sec,
		     (long) tv.tv_usec);
	(void) qfile_out_record(out, QREC_TIME, rec, (size_t) n);
	/* The Z data sits after the "Z15:" of the record we add now. */
	out->size_offset = out->written + (off_t) out->buf->len + 4;
	n = snprintf(rec, sizeof(rec), "%0*d", QFILE_SIZE_WIDTH, 0);
	(void) qfile_out_record(out, QREC_SIZE, rec, (size_t) n);
	return (out);
}

/* qfile_out_fail - report an error with errno */
static int
qfile_out_fail(struct qfile_out *out, struct strbuf *err, const char *what,
	       int errnum)
{
	if (out->error == 0)
		out->error = errnum ? errnum : EIO;
	strbuf_sets(err, "");
	/* No queue ID: the caller's log line starts with it. */
	strbuf_printf(err, "%s %s: %s", what,
		      out->tmp_path ? out->tmp_path : "queue file",
		      strerror(out->error));
	errno = out->error;
	return (-1);
}

/* qfile_out_end - write the E record and the Z size; no fsync */
int
qfile_out_end(struct qfile_out *out, struct strbuf *err)
{
	char    rec[QFILE_SIZE_WIDTH + 1];
	ssize_t n;

	if (out->error)
		return (qfile_out_fail(out, err, "write", out->error));
	if (out->rank < qfile_rank(QREC_SENDER) || out->tmp_path == NULL)
		return (qfile_out_fail(out, err, "finish incomplete", EINVAL));
	if (out->rank == qfile_rank(QREC_END)) {
		/* Ended already: refuse, but the file stays good. */
		strbuf_sets(err, "queue file already ended");
		errno = EINVAL;
		return (-1);
	}
	if (qfile_out_chunk_flush(out) < 0
	    || qfile_out_record(out, QREC_END, "", 0) < 0
	    || qfile_out_flush(out) < 0)
		return (qfile_out_fail(out, err, "write", errno));
	snprintf(rec, sizeof(rec), "%0*lld", QFILE_SIZE_WIDTH, out->content_size);
	do {
		n = pwrite(out->fd, rec, QFILE_SIZE_WIDTH, out->size_offset);
	} while (n < 0 && errno == EINTR);
	if (n != QFILE_SIZE_WIDTH)
		return (qfile_out_fail(out, err, "write", n < 0 ? errno : EIO));
	out->rank = qfile_rank(QREC_END);
	return (0);
}

/* qfile_out_sync - fsync the ended file, then rename it into incoming/ */
int
qfile_out_sync(struct qfile_out *out, struct strbuf *err)
{
	return (qfile_out_sync_to(out, QUEUE_INCOMING, err));
}

/* qfile_out_sync_to - fsync the ended file, then rename it into "queue" */
int
qfile_out_sync_to(struct qfile_out *out, const char *queue,
		  struct strbuf *err)
{
	char   *dst;
	int     ret;

	if (out->error)
		return (qfile_out_fail(out, err, "write", out->error));
	if (out->rank != qfile_rank(QREC_END) || out->tmp_path == NULL)
		return (qfile_out_fail(out, err, "sync unended", EINVAL));
	if (fsync(out->fd) < 0)
		return (qfile_out_fail(out, err, "fsync", errno));

	/*
	 * Never replace a file of the same name; such a clash needs an inode
	 * reused within one microsecond, but it would lose a message.
	 */
	if (!qfile_queue_valid(queue))
		return (qfile_out_fail(out, err, "sync to a bad queue", EINVAL));
	dst = qfile_path(out->queue_dir, queue, out->id);
	ret = renameat2(AT_FDCWD, out->tmp_path, AT_FDCWD, dst, RENAME_NOREPLACE);
	if (ret < 0 && (errno == EINVAL || errno == ENOSYS))
		ret = rename(out->tmp_path, dst);
	if (ret < 0) {
		ret = errno;
		free(dst);
		return (qfile_out_fail(out, err, "rename", ret));
	}
	free(dst);
	out->tmp_path = xfree(out->tmp_path);
	return (0);
}

/* qfile_out_finish - end, fsync and rename into incoming/ */
int
qfile_out_finish(struct qfile_out *out, struct strbuf *err)
{
	if (qfile_out_end(out, err) < 0)
		return (-1);
	return (qfile_out_sync(out, err));
}

/* qfile_dir_sync - fsync a queue folder */
int
qfile_dir_sync(const char *queue_dir, const char *queue, struct strbuf *err)
{
	size_t  len = strlen(queue_dir) + strlen(queue) + 2;
	char   *path = xmalloc(len);
	int     fd;
	int     saved;

	snprintf(path, len, "%s/%s", queue_dir, queue);
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
	    || fsync(fd) < 0) {
		saved = errno;
		strbuf_sets(err, "");
		strbuf_printf(err, "%s %s: %s", fd < 0 ? "open" : "fsync", path,
			      strerror(saved));
		if (fd >= 0)
			(void) close(fd);
		free(path);
		errno = saved;
		return (-1);
	}
	(void) close(fd);
	free(path);
	return (0);
}

/* qfile_commit - finish and fsync incoming/ */
int
qfile_commit(struct qfile_out *out, struct strbuf *err)
{
	if (qfile_out_finish(out, err) < 0)
		return (-1);
	return (qfile_dir_sync(out->queue_dir, QUEUE_INCOMING, err));
}

/* qfile_out_free - close and free, keep the file */
struct qfile_out *
qfile_out_free(struct qfile_out *out)
{
	if (out == NULL)
		return (NULL);
	if (out->fd >= 0)
		(void) close(out->fd);
	strbuf_free(out->buf);
	strbuf_free(out->chunk);
	free(out->queue_dir);
	free(out->tmp_path);
	free(out);
	return (NULL);
}

/* qfile_abort - remove the file from tmp/ and free */
struct qfile_out *
qfile_abort(struct qfile_out *out)
{
	if (out == NULL)
		return (NULL);
	if (out->tmp_path)
		(void) unlink(out->tmp_path);
	return (qfile_out_free(out));
}

/* Reading. */

#define QFILE_HEAD_MAX	(1 + QFILE_LEN_DIGITS + 1)	/* TYPE LENGTH ':' */
#define QFILE_READ_AHEAD 65536			/* envelope reads */

/*
 * A queue file being read: in memory (qfile_parse), or from an open file
 * through a window that holds what the parser looks at (qfile_read_fd).
 * The window never holds content that nobody asked for.
 */
struct qfile_src {
	const char *mem;			/* the whole file, or NULL */
	int     fd;
	size_t  len;				/* file size */
	char   *win;
	size_t  win_off;
	size_t  win_len;
	size_t  win_size;
};

/* qfile_src_get - "len" bytes at "off" (within the file); NULL: errno */
static const char *
qfile_src_get(struct qfile_src *src, size_t off, size_t len, size_t ahead)
{
	size_t  want = len > ahead ? len : ahead;
	size_t  got = 0;
	ssize_t n;

	if (src->mem)
		return (src->mem + off);
	if (off >= src->win_off && off + len <= src->win_off + src->win_len)
		return (src->win + (off - src->win_off));
	if (want > src->len - off)
		want = src->len - off;
	if (want > src->win_size) {
		src->win = xrealloc(src->win, want);
		src->win_size = want;
	}
	src->win_len = 0;
	while (got < want) {
		n = pread(src->fd, src->win + got, want - got,
			  (off_t) (off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;	/* the file shrank */
			return (NULL);
		}
		got += (size_t) n;
	}
	src->win_off = off;
	src->win_len = got;
	return (src->win);
}

/* qfile_bad - set the reason, return NULL */
static struct qfile_msg *
qfile_bad(struct qfile_msg *msg, struct strbuf *err, size_t off,
	  const char *reason)
{
	strbuf_sets(err, "");
	strbuf_printf(err, "%s at offset %zu", reason, off);
	return (qfile_msg_free(msg));
}

/* qfile_bad_read - a read error, return NULL */
static struct qfile_msg *
qfile_bad_read(struct qfile_msg *msg, struct strbuf *err, size_t off)
{
	strbuf_sets(err, "");
	strbuf_printf(err, "read error at offset %zu: %s", off,
		      strerror(errno));
	return (qfile_msg_free(msg));
}

/* qfile_digits - a decimal of exactly "len" digits */
static int
qfile_digits(const char *p, size_t len, unsigned long long *val)
{
	unsigned long long v = 0;
	size_t  i;

	if (len == 0 || len > 18)
		return (-1);
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return (-1);
		v = v * 10 + (unsigned long long) (p[i] - '0');
	}
	*val = v;
	return (0);
}

/*
 * qfile_head - parse LENGTH ':' after the type byte; "avail" bytes at
 * "p" (the type byte included), "at_end": the file ends there. Returns
 * the header length, 0 for a bad length, -1 for a truncated record.
 */
static ssize_t
qfile_head(const char *p, size_t avail, int at_end, unsigned long long *len)
{
	unsigned long long v = 0;
	size_t  i;
	size_t  ndigits = 0;

	for (i = 1; i < avail && p[i] != ':'; i++, ndigits++) {
		if (p[i] < '0' || p[i] > '9' || ndigits >= QFILE_LEN_DIGITS
		    || (ndigits == 1 && v == 0))
			return (0);
		v = v * 10 + (unsigned long long) (p[i] - '0');
	}
	if (i >= avail)
		return (at_end ? -1 : 0);
	if (ndigits == 0)
		return (0);
	*len = v;
	return ((ssize_t) i + 1);
}

/*
 * qfile_field_ok - an H record: "Name: value", a name of printable
 * ASCII without ':', folded lines joined by CRLF and a space or a tab,
 * no other CR or LF, no CRLF at the end.
 */
static int
qfile_field_ok(const char *p, size_t len)
{
	size_t  i;

	for (i = 0; i < len && p[i] != ':'; i++)
		if ((unsigned char) p[i] <= ' ' || (unsigned char) p[i] >= 0x7f)
			return (0);
	if (i == 0 || i == len)
		return (0);
	for (; i < len; i++) {
		if (p[i] == 0 || p[i] == '\n')
			return (0);
		if (p[i] == '\r' && (i + 2 >= len || p[i + 1] != '\n'
				     || (p[i + 2] != ' ' && p[i + 2] != '\t')))
			return (0);
		if (p[i] == '\r')
			i++;
	}
	return (1);
}

/* qfile_late_build - the H records as they go out: the last one first */
static void
qfile_late_build(struct qfile_msg *msg, char **fields, size_t n)
{
	size_t  total = 0;
	size_t  i;

	for (i = 0; i < n; i++)
		total += strlen(fields[i]) + 2;
	msg->late = strbuf_new(total + 1, 0);
	for (i = n; i > 0; i--) {
		(void) strbuf_appends(msg->late, fields[i - 1]);
		(void) strbuf_append(msg->late, "\r\n", 2);
	}
}

/* qfile_scan - check a queue file, record by record */
static struct qfile_msg *
qfile_scan(struct qfile_src *src, int how, struct strbuf *err)
{
	struct qfile_msg *msg = xcalloc(1, sizeof(*msg));
	size_t  len = src->len;
	size_t  pos = 0;
	size_t  start;
	size_t  dlen;
	size_t  acap = 0;
	size_t  rcap = 0;
	size_t  ahead = QFILE_READ_AHEAD;
	size_t  avail;
	size_t  nlate = 0;
	char  **late = NULL;
	unsigned long long v;
	unsigned long long v2;
	long long csize = 0;
	const char *hdr;
	const char *data;
	const char *dot;
	const char *tab;
	ssize_t hlen;
	int     type;
	int     rank;
	int     last = -1;
	int     want_content = (how == QFILE_READ_CONTENT);

	msg->content_offset = -1;
	if (want_content)
		msg->content = strbuf_new(src->mem ? len : QFILE_READ_AHEAD, 0);
	while (last < qfile_rank(QREC_END)) {
		start = pos;
		if (pos >= len) {
			msg = qfile_bad(msg, err, pos, last < 0 ? "empty file" :
					"incomplete file: no end record");
			goto done;
		}
		avail = len - pos < QFILE_HEAD_MAX ? len - pos : QFILE_HEAD_MAX;
		if ((hdr = qfile_src_get(src, pos, avail, ahead)) == NULL) {
			msg = qfile_bad_read(msg, err, start);
			goto done;
		}
		type = (unsigned char) hdr[0];
		if (last < 0 && type != QREC_VERSION) {
			msg = qfile_bad(msg, err, start, "no version record");
			goto done;
		}
		if ((rank = qfile_rank(type)) < 0) {
			msg = qfile_bad(msg, err, start, "unknown record type");
			goto done;
		}
		/* Exactly V T Z S, then A* R* C* H* E. */
		if (rank < last || (rank == last && !qfile_repeats(type))
		    || (last < qfile_rank(QREC_SENDER) && rank != last + 1)) {
			msg = qfile_bad(msg, err, start, "record out of order");
			goto done;
		}
		if (msg->content_offset < 0 && rank > qfile_rank(QREC_RCPT)) {
			msg->content_offset = (off_t) start;
			/* The envelope ends here; so does the reading. */
			if (how == QFILE_READ_HEAD)
				break;
			if (!want_content)
				ahead = QFILE_HEAD_MAX + 1;
		}

		/* LENGTH ':' DATA '\n' */
		hlen = qfile_head(hdr, avail, pos + avail == len, &v);
		if (hlen == 0) {
			msg = qfile_bad(msg, err, start, "bad record length");
			goto done;
		}
		if (hlen < 0) {
			msg = qfile_bad(msg, err, start, "incomplete file: "
					"truncated record");
			goto done;
		}
		pos += (size_t) hlen;
		if (v > len - pos || len - pos - v < 1) {
			msg = qfile_bad(msg, err, start, "incomplete file: "
					"truncated record");
			goto done;
		}
		dlen = (size_t) v;
		if (type == QREC_CONTENT && !want_content) {
			/* Only the newline after it, and the next header. */
			data = NULL;
			hdr = qfile_src_get(src, pos + dlen, 1, ahead);
		} else {
			data = qfile_src_get(src, pos, dlen + 1, ahead);
			hdr = data ? data + dlen : NULL;
		}
		if (hdr == NULL) {
			msg = qfile_bad_read(msg, err, start);
			goto done;
		}
		if (*hdr != '\n') {
			msg = qfile_bad(msg, err, start, "no newline after record");
			goto done;
		}
		last = rank;

		/* NUL bytes are content only. */
		if (type != QREC_CONTENT && memchr(data, 0, dlen) != NULL) {
			msg = qfile_bad(msg, err, start, "NUL byte in record");
			goto done;
		}
		switch (type) {
		case QREC_VERSION:
			if (dlen != strlen(QFILE_VERSION)
			    || memcmp(data, QFILE_VERSION, dlen) != 0) {
				msg = qfile_bad(msg, err, start,
						"unsupported version");
				goto done;
			}
			break;
		case QREC_TIME:
			dot = memchr(data, '.', dlen);
			if (dot == NULL
			    || qfile_digits(data, (size_t) (dot - data), &v) < 0
			    || qfile_digits(dot + 1, dlen - (size_t) (dot - data) - 1,
					    &v2) < 0
			    || v > (unsigned long long) INT64_MAX / 2 || v2 > 999999) {
				msg = qfile_bad(msg, err, start, "bad arrival time");
				goto done;
			}
			msg->arrival_sec = (long) v;
			msg->arrival_usec = (long) v2;
			break;
		case QREC_SIZE:
			if (dlen != QFILE_SIZE_WIDTH
			    || qfile_digits(data, dlen, &v) < 0) {
				msg = qfile_bad(msg, err, start, "bad size record");
				goto done;
			}
			msg->size = (long long) v;
			break;
		case QREC_SENDER:
			msg->sender = xstrndup(data, dlen);
			break;
		case QREC_ATTR:
			if ((dot = memchr(data, '=', dlen)) == NULL || dot == data) {
				msg = qfile_bad(msg, err, start,
						"bad attribute record");
				goto done;
			}
			if (msg->nattrs == acap) {
				acap = acap ? acap * 2 : 8;
				msg->attr_names = xreallocarray(msg->attr_names, acap,
							      sizeof(char *));
				msg->attr_values = xreallocarray(msg->attr_values, acap,
							       sizeof(char *));
			}
			msg->attr_names[msg->nattrs] = xstrndup(data,
							 (size_t) (dot - data));
			msg->attr_values[msg->nattrs] =
				xstrndup(dot + 1, dlen - (size_t) (dot - data) - 1);
			msg->nattrs++;
			break;
		case QREC_RCPT:
			if (dlen < 2 || !QSTAT_VALID(data[0])
			    || data[1] == '\t') {
				msg = qfile_bad(msg, err, start,
						"bad recipient record");
				goto done;
			}
			if (msg->nrcpts == rcap) {
				rcap = rcap ? rcap * 2 : 8;
				msg->rcpts = xreallocarray(msg->rcpts, rcap,
							   sizeof(*msg->rcpts));
			}
			tab = memchr(data + 1, '\t', dlen - 1);
			msg->rcpts[msg->nrcpts].status = data[0];
			msg->rcpts[msg->nrcpts].status_offset = (off_t) pos;
			if (tab) {
				msg->rcpts[msg->nrcpts].addr =
					xstrndup(data + 1, (size_t) (tab - data - 1));
				msg->rcpts[msg->nrcpts].params =
					xstrndup(tab + 1, dlen - (size_t) (tab - data) - 1);
			} else {
				msg->rcpts[msg->nrcpts].addr = xstrndup(data + 1, dlen - 1);
				msg->rcpts[msg->nrcpts].params = xstrdup("");
			}
			msg->nrcpts++;
			break;
		case QREC_CONTENT:
			csize += (long long) dlen;
			if (msg->content)
				(void) strbuf_append(msg->content, data, dlen);
			break;
		case QREC_LATE_HEADER:
			if (!qfile_field_ok(data, dlen)) {
				msg = qfile_bad(msg, err, start,
						"bad late header record");
				goto done;
			}
			late = xreallocarray(late, nlate + 1, sizeof(*late));
			late[nlate++] = xstrndup(data, dlen);
			break;
		case QREC_END:
			if (dlen != 0) {
				msg = qfile_bad(msg, err, start, "bad end record");
				goto done;
			}
			break;
		}
		pos += dlen + 1;
	}
	if (how == QFILE_READ_HEAD) {
		/* Not read, but a file cut short is still found. */
		if (len < 4 || (hdr = qfile_src_get(src, len - 4, 4, 0)) == NULL
		    || memcmp(hdr, "E0:\n", 4) != 0)
			msg = qfile_bad(msg, err, len,
					"incomplete file: no end record");
		else if (msg->size > (long long) len)
			msg = qfile_bad(msg, err, len, "size record does not "
					"match content");
		goto done;
	}
	if (pos != len) {
		msg = qfile_bad(msg, err, pos, "data after end record");
		goto done;
	}
	if (csize != msg->size) {
		msg = qfile_bad(msg, err, pos, "size record does not match "
				"content");
		goto done;
	}
	qfile_late_build(msg, late, nlate);

done:
	while (nlate > 0)
		free(late[--nlate]);
	free(late);
	return (msg);
}

/* qfile_parse - check a queue file in memory */
struct qfile_msg *
qfile_parse(const char *buf, size_t len, int how, struct strbuf *err)
{
	struct qfile_src src;

	memset(&src, 0, sizeof(src));
	src.mem = buf;
	src.len = len;
	return (qfile_scan(&src, how, err));
}

/* qfile_read_fd - read and check an open queue file */
struct qfile_msg *
qfile_read_fd(int fd, const char *path, int how, struct strbuf *err)
{
	struct qfile_src src;
	struct qfile_msg *msg;
	struct stat st;
	const char *base;

	if (fstat(fd, &st) < 0) {
		strbuf_sets(err, "");
		strbuf_printf(err, "fstat %s: %s", path, strerror(errno));
		return (NULL);
	}
	if (!S_ISREG(st.st_mode)) {
		strbuf_sets(err, "");
		strbuf_printf(err, "%s: not a regular file", path);
		return (NULL);
	}
	memset(&src, 0, sizeof(src));
	src.fd = fd;
	src.len = (size_t) st.st_size;
	msg = qfile_scan(&src, how, err);
	free(src.win);
	if (msg == NULL) {
		struct strbuf *why = strbuf_new(err->len + 1, 0);

		strbuf_printf(why, "%s: %s", path, err->data);
		strbuf_set(err, why->data, why->len);
		strbuf_free(why);
		return (NULL);
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (qfile_id_valid(base))
		snprintf(msg->id, sizeof(msg->id), "%s", base);
	return (msg);
}

/* qfile_read - open, read and check a queue file */
struct qfile_msg *
qfile_read(const char *path, int how, struct strbuf *err)
{
	struct qfile_msg *msg;
	int     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		strbuf_sets(err, "");
		strbuf_printf(err, "open %s: %s", path, strerror(errno));
		return (NULL);
	}
	msg = qfile_read_fd(fd, path, how, err);
	(void) close(fd);
	return (msg);
}

/* qfile_content_start - a cursor at the message's first C record */
void
qfile_content_start(struct qfile_cursor *cur, const struct qfile_msg *msg)
{
	cur->next = msg->content_offset;
	cur->data = 0;
	cur->left = 0;
}

/* qfile_content_read - the next piece of content; 0 at its end */
ssize_t
qfile_content_read(int fd, struct qfile_cursor *cur, void *buf,
		   size_t size)
{
	char    hdr[QFILE_HEAD_MAX];
	unsigned long long len;
	ssize_t n;
	ssize_t hlen;

	while (cur->left == 0) {
		if (cur->next < 0)
			return (0);
		do {
			n = pread(fd, hdr, sizeof(hdr), cur->next);
		} while (n < 0 && errno == EINTR);
		if (n < 0)
			return (-1);
		if (n == 0 || hdr[0] != QREC_CONTENT) {
			cur->next = -1;		/* H or E: the content ended */
			return (0);
		}
		if ((hlen = qfile_head(hdr, (size_t) n, 1, &len)) <= 0) {
			errno = EINVAL;
			return (-1);
		}
		cur->data = cur->next + (off_t) hlen;
		cur->left = (size_t) len;
		cur->next = cur->data + (off_t) len + 1;
	}
	if (size > cur->left)
		size = cur->left;
	do {
		n = pread(fd, buf, size, cur->data);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		if (n == 0)
			errno = EIO;
		return (-1);
	}
	cur->data += n;
	cur->left -= (size_t) n;
	return (n);
}

/* qfile_msg_free - release a message; NULL is fine */
struct qfile_msg *
qfile_msg_free(struct qfile_msg *msg)
{
	size_t  i;

	if (msg == NULL)
		return (NULL);
	free(msg->sender);
	for (i = 0; i < msg->nattrs; i++) {
		free(msg->attr_names[i]);
		free(msg->attr_values[i]);
	}
	free(msg->attr_names);
	free(msg->attr_values);
	for (i = 0; i < msg->nrcpts; i++) {
		free(msg->rcpts[i].addr);
		free(msg->rcpts[i].params);
	}
	free(msg->rcpts);
	strbuf_free(msg->content);
	strbuf_free(msg->late);
	free(msg);
	return (NULL);
}

/* qfile_msg_attr - the first value of an envelope attribute */
const char *
qfile_msg_attr(const struct qfile_msg *msg, const char *name)
{
	size_t  i;

	for (i = 0; i < msg->nattrs; i++)
		if (strcmp(msg->attr_names[i], name) == 0)
			return (msg->attr_values[i]);
	return (NULL);
}

/* qfile_set_status - update one recipient's status byte in place */
int
qfile_set_status(int fd, off_t offset, int status)
{
	char    c = (char) status;
	ssize_t n;

	do {
		n = pwrite(fd, &c, 1, offset);
	} while (n < 0 && errno == EINTR);
	if (n != 1) {
		if (n >= 0)
			errno = EIO;
		return (-1);
	}
	return (fdatasync(fd));
}

/* qfile_mark - set a status byte that holds "from"; no sync */
int
qfile_mark(int fd, off_t offset, int from, int status)
{
	char    c;
	ssize_t n;

	do {
		n = pread(fd, &c, 1, offset);
	} while (n < 0 && errno == EINTR);
	if (n != 1) {
		errno = n < 0 ? errno : EINVAL;
		return (-1);
	}
	if (!QSTAT_VALID(c)) {
		errno = EINVAL;
		return (-1);
	}
	if ((from != 0 && c != from) || c == status)
		return (0);
	c = (char) status;
	do {
		n = pwrite(fd, &c, 1, offset);
	} while (n < 0 && errno == EINTR);
	if (n != 1) {
		if (n >= 0)
			errno = EIO;
		return (-1);
	}
	return (1);
}

/* qfile_lock - shared lock, or a try for an exclusive one */
int
qfile_lock(int fd, int how)
{
	int     ret;

	if (how == QFILE_LOCK_SHARED) {
		do {
			ret = flock(fd, LOCK_SH);
		} while (ret < 0 && errno == EINTR);
		return (ret);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return (-1);
	(void) flock(fd, LOCK_UN);
	return (0);
}

/* qfile_dir_fsync - fsync one queue folder; 0 or -1 */
static int
qfile_dir_fsync(const char *dir)
{
	int     fd;
	int     ret;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return (-1);
	ret = fsync(fd);
	(void) close(fd);
	return (ret);
}

/* qfile_committed - did cleanup commit message "id" before it went away? */
int
qfile_committed(const char *id)
{
	static const char *const dirs[] = {QUEUE_INCOMING, QUEUE_ACTIVE,
	QUEUE_HOLD};
	char    path[QFILE_ID_MAX + 32];
	struct stat st;
	size_t  i;

	if (!qfile_id_valid(id))
		return (0);
	snprintf(path, sizeof(path), "%s/%s", QUEUE_TMP, id);
	if (lstat(path, &st) == 0 || errno != ENOENT)
		return (0);
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], id);
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
			break;
	}
	if (i == sizeof(dirs) / sizeof(dirs[0])) {
		snprintf(path, sizeof(path), "%s/%c/%s", QUEUE_DEFERRED,
			 id[strlen(id) - 1], id);
		if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			return (0);
	}
	/* Durable as cleanup would have made it, before anyone says so. */
	if (qfile_dir_fsync(QUEUE_INCOMING) < 0
	    || qfile_dir_fsync(QUEUE_ACTIVE) < 0
	    || qfile_dir_fsync(QUEUE_HOLD) < 0)
		return (-1);
	return (1);
}
