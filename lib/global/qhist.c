/*
 * qhist - per-message delivery history beside the queue
 *
 * SYNOPSIS
 *	#include "qhist.h"
 *
 *	char	*qhist_path(const char *queue_dir, const char *id)
 *	int	qhist_format(struct strbuf *sb, const struct qhist_rec *rec)
 *	int	qhist_append(const char *queue_dir, const char *id,
 *			const struct qhist_rec *recs, size_t n,
 *			struct strbuf *err)
 *	int	qhist_write(const char *queue_dir, const char *id,
 *			const struct strbuf *lines, struct strbuf *err)
 *	int	qhist_parse_line(const char *line, size_t len,
 *			struct qhist_rec *rec)
 *	void	qhist_rec_clear(struct qhist_rec *rec)
 *	struct qhist *qhist_parse(const char *buf, size_t len)
 *	struct qhist *qhist_read(const char *queue_dir, const char *id,
 *			struct strbuf *err)
 *	struct qhist *qhist_free(struct qhist *hist)
 *	const struct qhist_rec *qhist_last(const struct qhist *hist,
 *			const char *rcpt)
 *	int	qhist_has(const struct qhist *hist, const char *status)
 *	int	qhist_remove(const char *queue_dir, const char *id)
 *
 * DESCRIPTION
 *	The history of a message is queue_dir/history/ID, one JSON object
 *	per line (qhist.h). qmgr appends a record for every delivery
 *	attempt of every recipient and for message events (a delay notice);
 *	"sendarix queue list" and "queue show" read it back to explain why
 *	mail waits. The history is advisory: the queue file's status bytes
 *	are the truth, so it is appended without fsync.
 *
 *	qhist_path() returns "queue_dir/history/ID" (the caller frees it).
 *	qhist_format() appends one record as a JSON line to "sb"; NULL
 *	strings are written as "". It returns 0, or -1 when the buffer's
 *	limit is reached. A string that is not valid UTF-8 is stored with
 *	its non-ASCII bytes as '?'.
 *
 *	qhist_append() writes "n" records to the history of "id" with one
 *	write() on a descriptor opened with O_APPEND, so that concurrent
 *	writers never interleave within a record. It creates history/ when
 *	it is missing. 0, or -1 with the reason in "err". qhist_write()
 *	does the same with lines made by qhist_format() (a caller may
 *	collect them and write them at once).
 *
 *	qhist_parse_line() reads one line (without its newline) into "rec",
 *	whose strings are then new copies (qhist_rec_clear() frees them);
 *	0, or -1 when the line is not a history record (not a JSON object,
 *	no string "status", "time" not an integer); "rec" is then zeroed.
 *	qhist_parse() splits a buffer into lines and keeps the records that
 *	parse; the others are counted in hist->bad. Empty lines are ignored.
 *
 *	qhist_read() reads the history of "id"; a missing file is an empty
 *	history. It returns NULL with the reason in "err" only when the file
 *	exists and cannot be read. The caller frees the result with
 *	qhist_free(), which accepts NULL and returns NULL.
 *
 *	qhist_last() is the last record about "rcpt", or NULL.
 *	qhist_has() is 1 when some record has status "status", else 0.
 *	qhist_remove() removes the history; 0 also when there was none,
 *	-1 with errno otherwise.
 *
 * DIAGNOSTICS
 *	Nothing here logs or ends the process, except xmalloc() when
 *	memory runs out.
 *
 * SEE ALSO
 *	qhist.h, qmgr(8), sendarix(1)
 */

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "qhist.h"
#include "strbuf.h"
#include "xmalloc.h"

#define QHIST_MAX_FILE	(16 * 1024 * 1024)	/* read at most this much */

/* qhist_path - queue_dir/history/ID */
char   *
qhist_path(const char *queue_dir, const char *id)
{
	size_t  len = strlen(queue_dir) + strlen(QHIST_DIR) + strlen(id) + 3;
	char   *path = xmalloc(len);

	snprintf(path, len, "%s/%s/%s", queue_dir, QHIST_DIR, id);
	return (path);
}

/* qhist_jstr - a JSON string; if not valid UTF-8, non-ASCII bytes become ? */
static json_t *
qhist_jstr(const char *s)
{
	json_t *j;
	char   *copy;
	char   *p;

	if (s == NULL)
		s = "";
	if ((j = json_string(s)) != NULL)
		return (j);
	copy = xstrdup(s);
	for (p = copy; *p; p++)
		if ((unsigned char) *p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return (j ? j : json_string(""));
}

/* qhist_format - one record as a JSON line */
int
qhist_format(struct strbuf *sb, const struct qhist_rec *rec)
{
	json_t *obj = json_object();
	char   *text;
	int     ret;

	json_object_set_new(obj, "time", json_integer(rec->time));
	json_object_set_new(obj, "rcpt", qhist_jstr(rec->rcpt));
	json_object_set_new(obj, "status", qhist_jstr(rec->status));
	json_object_set_new(obj, "dsn", qhist_jstr(rec->dsn));
	json_object_set_new(obj, "relay", qhist_jstr(rec->relay));
	json_object_set_new(obj, "reply", qhist_jstr(rec->reply));
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (text == NULL)
		return (-1);
	ret = strbuf_appends(sb, text) < 0 || strbuf_appendc(sb, '\n') < 0 ?
		-1 : 0;
	free(text);
	return (ret);
}

/* qhist_open_append - open history/ID for appending, making history/ */
static int
qhist_open_append(const char *queue_dir, const char *path)
{
	char   *dir;
	size_t  len;
	int     fd;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd >= 0 || errno != ENOENT)
		return (fd);
	len = strlen(queue_dir) + strlen(QHIST_DIR) + 2;
	dir = xmalloc(len);
	snprintf(dir, len, "%s/%s", queue_dir, QHIST_DIR);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		free(dir);
		return (-1);
	}
	free(dir);
	return (open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC
		     | O_NOFOLLOW, 0600));
}

/* qhist_write - add formatted lines to a message's history in one write */
int
qhist_write(const char *queue_dir, const char *id, const struct strbuf *sb,
	    struct strbuf *err)
{
	char   *path;
	ssize_t w;
	int     fd;
	int     ret = 0;

	if (sb->len == 0)
		return (0);
	path = qhist_path(queue_dir, id);
	if ((fd = qhist_open_append(queue_dir, path)) < 0) {
		strbuf_sets(err, "");
		strbuf_printf(err, "open %s: %s", path, strerror(errno));
		ret = -1;
	} else {
		do {
			w = write(fd, sb->data, sb->len);
		} while (w < 0 && errno == EINTR);
		if (w < 0 || (size_t) w != sb->len) {
			strbuf_sets(err, "");
			strbuf_printf(err, "write %s: %s", path,
				      w < 0 ? strerror(errno) : "short write");
			ret = -1;
		}
		if (close(fd) < 0 && ret == 0) {
			strbuf_sets(err, "");
			strbuf_printf(err, "close %s: %s", path, strerror(errno));
			ret = -1;
		}
	}
	free(path);
	return (ret);
}

/* qhist_append - add records to a message's history in one write */
int
qhist_append(const char *queue_dir, const char *id,
	     const struct qhist_rec *recs, size_t n, struct strbuf *err)
{
	struct strbuf *sb;
	size_t  i;
	int     ret;

	if (n == 0)
		return (0);
	sb = strbuf_new(256 * n, 0);
	for (i = 0; i < n; i++)
		(void) qhist_format(sb, recs + i);
	ret = qhist_write(queue_dir, id, sb, err);
	strbuf_free(sb);
	return (ret);
}

/* qhist_rec_clear - free the strings of one record */
void
qhist_rec_clear(struct qhist_rec *rec)
{
	free(rec->rcpt);
	free(rec->status);
	free(rec->dsn);
	free(rec->relay);
	free(rec->reply);
	memset(rec, 0, sizeof(*rec));
}

/* qhist_get_str - a string member, "" when absent or not a string */
static char *
qhist_get_str(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);

	return (xstrdup(json_is_string(v) ? json_string_value(v) : ""));
}

/* qhist_parse_line - one JSON line into a record */
int
qhist_parse_line(const char *line, size_t len, struct qhist_rec *rec)
{
	json_error_t jerr;
	json_t *obj;
	json_t *t;
	json_t *st;

	memset(rec, 0, sizeof(*rec));
	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL)
		return (-1);
	t = json_object_get(obj, "time");
	st = json_object_get(obj, "status");
	if (!json_is_object(obj) || !json_is_integer(t) || !json_is_string(st)
	    || *json_string_value(st) == 0) {
		json_decref(obj);
		return (-1);
	}
	rec->time = (long) json_integer_value(t);
	rec->status = xstrdup(json_string_value(st));
	rec->rcpt = qhist_get_str(obj, "rcpt");
	rec->dsn = qhist_get_str(obj, "dsn");
	rec->relay = qhist_get_str(obj, "relay");
	rec->reply = qhist_get_str(obj, "reply");
	json_decref(obj);
	return (0);
}

/* qhist_parse - split a buffer into records */
struct qhist *
qhist_parse(const char *buf, size_t len)
{
	struct qhist *hist = xcalloc(1, sizeof(*hist));
	struct qhist_rec rec;
	const char *p = buf;
	const char *end = buf + len;
	const char *nl;
	size_t  n;

	while (p < end) {
		nl = memchr(p, '\n', (size_t) (end - p));
		n = nl ? (size_t) (nl - p) : (size_t) (end - p);
		if (n > 0) {
			if (qhist_parse_line(p, n, &rec) < 0) {
				hist->bad++;
			} else {
				if (hist->n == hist->cap) {
					hist->cap = hist->cap ? 2 * hist->cap : 16;
					hist->recs = xreallocarray(hist->recs,
								   hist->cap,
							     sizeof(*hist->recs));
				}
				hist->recs[hist->n++] = rec;
			}
		}
		p += n + (nl != NULL);
	}
	return (hist);
}

/* qhist_read - the history of one message */
struct qhist *
qhist_read(const char *queue_dir, const char *id, struct strbuf *err)
{
	struct strbuf *sb;
	struct qhist *hist;
	char   *path = qhist_path(queue_dir, id);
	char    buf[8192];
	ssize_t n;
	int     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT) {
			free(path);
			return (xcalloc(1, sizeof(struct qhist)));
		}
		strbuf_sets(err, "");
		strbuf_printf(err, "open %s: %s", path, strerror(errno));
		free(path);
		return (NULL);
	}
	sb = strbuf_new(sizeof(buf), QHIST_MAX_FILE);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* Past the limit: keep what we have, the rest is lost. */
		if (strbuf_append(sb, buf, (size_t) n) < 0)
			break;
	}
	if (n < 0) {
		strbuf_sets(err, "");
		strbuf_printf(err, "read %s: %s", path, strerror(errno));
		(void) close(fd);
		strbuf_free(sb);
		free(path);
		return (NULL);
	}
	(void) close(fd);
	hist = qhist_parse(sb->data, sb->len);
	strbuf_free(sb);
	free(path);
	return (hist);
}

/* qhist_free - release a history; NULL is fine */
struct qhist *
qhist_free(struct qhist *hist)
{
	size_t  i;

	if (hist == NULL)
		return (NULL);
	for (i = 0; i < hist->n; i++)
		qhist_rec_clear(hist->recs + i);
	free(hist->recs);
	free(hist);
	return (NULL);
}

/* qhist_last - the last record about one recipient */
const struct qhist_rec *
qhist_last(const struct qhist *hist, const char *rcpt)
{
	size_t  i;

	for (i = hist->n; i > 0; i--)
		if (strcmp(hist->recs[i - 1].rcpt, rcpt) == 0)
			return (hist->recs + i - 1);
	return (NULL);
}

/* qhist_has - is there a record with this status? */
int
qhist_has(const struct qhist *hist, const char *status)
{
	size_t  i;

	for (i = 0; i < hist->n; i++)
		if (strcmp(hist->recs[i].status, status) == 0)
			return (1);
	return (0);
}

/* qhist_remove - remove a message's history */
int
qhist_remove(const char *queue_dir, const char *id)
{
	char   *path = qhist_path(queue_dir, id);
	int     ret = unlink(path);
	int     saved = errno;

	free(path);
	if (ret < 0 && saved == ENOENT)
		return (0);
	errno = saved;
	return (ret);
}
