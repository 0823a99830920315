/*
 * sendarix_queue - list, show and manage queued messages
 *
 * SYNOPSIS
 *	sendarix queue list [--json]
 *	sendarix queue show [--json] queue_id
 *	sendarix queue flush [queue_id | @domain]
 *	sendarix queue delete queue_id | ALL
 *	sendarix queue hold queue_id | ALL
 *	sendarix queue release queue_id | ALL
 *	sendarix queue requeue queue_id | ALL
 *
 * DESCRIPTION
 *	Reads the queue files under queue_directory directly (no daemon
 *	needs to run). A queue folder that does not exist counts as empty.
 *
 *	list prints, like mailq, one entry per message of every queue
 *	(incoming, active, deferred, hold, corrupt), sorted by queue ID,
 *	which is arrival order: the queue ID, the queue, the content size,
 *	the arrival time (local time), the sender ("<>" for the null
 *	sender), then one indented line per recipient, with its status when
 *	it is no longer pending. A file that cannot be read or parsed is
 *	listed with the reason instead of an envelope. The last line is
 *	"-- N Kbytes in M Requests.", or "Mail queue is empty".
 *
 *	With --json, list prints a JSON array of objects: queue_id, queue,
 *	size, arrival (epoch seconds), arrival_iso (UTC), sender,
 *	recipients [{address, status, params}], attributes {name: value};
 *	an unreadable file gives {queue_id, queue, error}.
 *
 *	show prints one message: its envelope (the fields above) and then
 *	its content, with CRLF shown as LF. With --json, one object with
 *	the fields of list plus "content" (the exact bytes; invalid UTF-8
 *	is replaced by U+FFFD there and the exact bytes are given in
 *	"content_base64").
 *
 *	For a message with a delivery history (queue_directory/history/ID,
 *	written by qmgr), list shows before each pending recipient the
 *	last reason it was deferred or bounced, in parentheses, and for a
 *	deferred message its next retry time (the file's modification
 *	time). --json adds "next_retry" and "next_retry_iso" to deferred
 *	messages and "last" {time, status, dsn, relay, reply} to each
 *	recipient with a history. show adds every attempt, in text after
 *	the recipients and in JSON as "history".
 *
 *	The other commands change the queue files directly, as root or as
 *	the queue owner, and then wake qmgr with one byte on private/qmgr
 *	(docs/ipc.md); when qmgr is not running the files are still
 *	changed and qmgr picks them up when it starts.
 *
 *	flush makes deferred messages due now (their modification time
 *	becomes the current time): all of them ('F' to qmgr), one queue ID,
 *	or those with a pending recipient in a domain (@domain) ('D').
 *	delete removes messages from any queue, with their history, and
 *	logs "QUEUEID: removed". hold moves messages from incoming, active
 *	and deferred to hold/; release moves them from hold/ to deferred/,
 *	due now; requeue moves messages from active, deferred and hold back
 *	to incoming/ for a fresh pass ('A'). ALL means every message the
 *	command applies to. Each prints one line per message changed and
 *	a count. A message that qmgr holds in active/ may be deleted or
 *	moved: qmgr notices and drops it.
 *
 *	Strings from queue files that are not valid UTF-8 are shown with
 *	U+FFFD in place of the bad bytes in JSON, and control characters in
 *	envelope fields are shown as '?' in text.
 *
 * DIAGNOSTICS
 *	Exit status 0; 1 when the queue ID is not well-formed, the message
 *	does not exist or cannot be read or changed, or a queue folder or
 *	history file cannot be read (the command still does what it can);
 *	2 on a usage error.
 *
 * SECURITY
 *	The queue ID given to show is checked with qfile_id_valid() before
 *	it becomes part of a path, so it cannot name another file.
 *
 * SEE ALSO
 *	sendarix(1), qmgr(8), qfile.h, qhist.h
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "conf.h"
#include "log.h"
#include "qfile.h"
#include "qhist.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "sendarix.h"

/* One file found in a queue. */
struct queue_entry {
	char   *id;				/* file name */
	const char *queue;
	char   *path;
};

struct queue_scan {
	struct queue_entry *v;
	size_t  n;
	size_t  cap;
};

/*
 * Set by a failure that does not end the command at once (a queue folder
 * that cannot be read, a history file, a folder that cannot be made):
 * the command goes on with the rest and exits 1 at the end.
 */
static int queue_failed;

/* sendarix_queue_usage - the queue command summary */
static int
sendarix_queue_usage(void)
{
	fprintf(stderr,
		"usage: sendarix queue list [--json]\n"
		"       sendarix queue show [--json] queue_id\n"
		"       sendarix queue flush [queue_id | @domain]\n"
		"       sendarix queue delete|hold|release|requeue "
		"queue_id | ALL\n");
	return (2);
}

/* queue_scan_add - remember one file */
static void
queue_scan_add(struct queue_scan *scan, const char *queue, const char *dir,
	       const char *name)
{
	size_t  len = strlen(dir) + strlen(name) + 2;

	if (scan->n == scan->cap) {
		scan->cap = scan->cap ? scan->cap * 2 : 64;
		scan->v = xreallocarray(scan->v, scan->cap, sizeof(*scan->v));
	}
	scan->v[scan->n].id = xstrdup(name);
	scan->v[scan->n].queue = queue;
	scan->v[scan->n].path = xmalloc(len);
	snprintf(scan->v[scan->n].path, len, "%s/%s", dir, name);
	scan->n++;
}

/* queue_scan_dir - the files of one folder, one level of subfolders */
static void
queue_scan_dir(struct queue_scan *scan, const char *queue, const char *dir,
	       int depth)
{
	DIR    *d;
	struct dirent *de;
	struct stat st;
	char   *sub;
	size_t  len;

	if ((d = opendir(dir)) == NULL) {
		if (errno != ENOENT) {
			cli_error("queue: open %s: %s", dir, strerror(errno));
			queue_failed = 1;
		}
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		len = strlen(dir) + strlen(de->d_name) + 2;
		sub = xmalloc(len);
		snprintf(sub, len, "%s/%s", dir, de->d_name);
		/* deferred/ may hash files into subfolders. */
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (depth == 0)
				queue_scan_dir(scan, queue, sub, depth + 1);
		} else {
			queue_scan_add(scan, queue, dir, de->d_name);
		}
		free(sub);
	}
	closedir(d);
}

/* queue_entry_cmp - by queue ID, then by queue */
static int
queue_entry_cmp(const void *a, const void *b)
{
	const struct queue_entry *x = a;
	const struct queue_entry *y = b;
	int     r = strcmp(x->id, y->id);

	return (r ? r : strcmp(x->queue, y->queue));
}

/* queue_scan_all - every file of every queue, sorted */
static void
queue_scan_all(struct queue_scan *scan, const char *queue_dir)
{
	char   *dir;
	int     i;

	for (i = 0; qfile_queues[i]; i++) {
		dir = qfile_path(queue_dir, qfile_queues[i], "");
		dir[strlen(dir) - 1] = 0;		/* no trailing slash */
		queue_scan_dir(scan, qfile_queues[i], dir, 0);
		free(dir);
	}
	if (scan->n > 1)
		qsort(scan->v, scan->n, sizeof(*scan->v), queue_entry_cmp);
}

/* queue_scan_free - release the list */
static void
queue_scan_free(struct queue_scan *scan)
{
	size_t  i;

	for (i = 0; i < scan->n; i++) {
		free(scan->v[i].id);
		free(scan->v[i].path);
	}
	free(scan->v);
	memset(scan, 0, sizeof(*scan));
}

/* queue_status_name - a recipient status in words */
static const char *
queue_status_name(int status)
{
	switch (status) {
	case QSTAT_PENDING:
		return ("pending");
	case QSTAT_SENT:
		return ("delivered");
	case QSTAT_BOUNCED:
		return ("bounced");
	case QSTAT_SUPPRESSED:
		return ("suppressed");
	case QSTAT_EXPIRED:
		return ("expired");
	case QSTAT_FAILED:
		return ("bounced, notice pending");
	case QSTAT_NOTIFY:
		return ("delivered, notice pending");
	default:
		return ("unknown");
	}
}

/* queue_safe - a copy for a terminal: control characters become '?' */
static char *
queue_safe(const char *s)
{
	char   *copy = xstrdup(s);
	char   *p;

	for (p = copy; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = '?';
	return (copy);
}

/* queue_time_local - "Wed Nov 25 23:59:01" */
static void
queue_time_local(char *buf, size_t size, long sec, int with_year)
{
	time_t  t = (time_t) sec;
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL
	    || strftime(buf, size, with_year ? "%a %b %e %H:%M:%S %Y"
			: "%a %b %e %H:%M:%S", &tm) == 0)
		snprintf(buf, size, "%ld", sec);
}

/* queue_time_iso - "2026-11-25T23:59:01Z" */
static void
queue_time_iso(char *buf, size_t size, long sec)
{
	time_t  t = (time_t) sec;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL
	    || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "%ld", sec);
}

/* queue_utf8_len - length of a valid UTF-8 sequence at p, or 0 */
static size_t
queue_utf8_len(const unsigned char *p, size_t left)
{
	size_t  n;
	size_t  i;
	unsigned long cp;

	if (p[0] < 0x80)
		return (1);
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return (0);
	}
	if (n > left)
		return (0);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
	    || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return (0);
	return (n);
}

/* queue_json_str - a JSON string; bad UTF-8 becomes U+FFFD */
static json_t *
queue_json_str(const char *s, size_t len, int *lossy)
{
	struct strbuf *sb;
	json_t *j;
	size_t  i;
	size_t  n;

	if ((j = json_stringn(s, len)) != NULL)
		return (j);
	sb = strbuf_new(len + 16, 0);
	for (i = 0; i < len; i += n) {
		n = queue_utf8_len((const unsigned char *) s + i, len - i);
		if (n == 0) {
			strbuf_append(sb, "\xef\xbf\xbd", 3);
			n = 1;
		} else {
			strbuf_append(sb, s + i, n);
		}
	}
	if (lossy)
		*lossy = 1;
	j = json_stringn(sb->data, sb->len);
	strbuf_free(sb);
	return (j ? j : json_string(""));
}

/* queue_base64 - encode bytes */
static char *
queue_base64(const char *data, size_t len)
{
	static const char tab[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *) data;
	char   *out = xmalloc((len + 2) / 3 * 4 + 1);
	char   *o = out;
	size_t  i;

	for (i = 0; i + 2 < len; i += 3) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = tab[p[i + 2] & 63];
	}
	if (i < len) {
		*o++ = tab[p[i] >> 2];
		if (i + 1 < len) {
			*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
			*o++ = tab[(p[i + 1] & 15) << 2];
		} else {
			*o++ = tab[(p[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = 0;
	return (out);
}

/* queue_json_msg - one message as a JSON object */
static json_t *
queue_json_msg(const struct queue_entry *e, const struct qfile_msg *msg,
	       const char *error)
{
	json_t *obj = json_object();
	json_t *rcpts;
	json_t *attrs;
	json_t *r;
	char    iso[64];
	size_t  i;

	json_object_set_new(obj, "queue_id",
			    queue_json_str(e->id, strlen(e->id), NULL));
	json_object_set_new(obj, "queue", json_string(e->queue));
	if (msg == NULL) {
		json_object_set_new(obj, "error",
				    queue_json_str(error, strlen(error), NULL));
		return (obj);
	}
	json_object_set_new(obj, "size", json_integer(msg->size));
	json_object_set_new(obj, "arrival", json_integer(msg->arrival_sec));
	queue_time_iso(iso, sizeof(iso), msg->arrival_sec);
	json_object_set_new(obj, "arrival_iso", json_string(iso));
	json_object_set_new(obj, "sender",
			    queue_json_str(msg->sender, strlen(msg->sender), NULL));
	rcpts = json_array();
	for (i = 0; i < msg->nrcpts; i++) {
		r = json_object();
		json_object_set_new(r, "address",
				    queue_json_str(msg->rcpts[i].addr,
						   strlen(msg->rcpts[i].addr), NULL));
		json_object_set_new(r, "status",
				  json_string(queue_status_name(msg->rcpts[i].status)));
		json_object_set_new(r, "params",
				    queue_json_str(msg->rcpts[i].params,
						   strlen(msg->rcpts[i].params), NULL));
		json_array_append_new(rcpts, r);
	}
	json_object_set_new(obj, "recipients", rcpts);
	attrs = json_object();
	for (i = 0; i < msg->nattrs; i++) {
		json_t *key = queue_json_str(msg->attr_names[i],
					     strlen(msg->attr_names[i]), NULL);

		/* The first of a repeated name wins, as qfile_msg_attr(). */
		if (json_object_get(attrs, json_string_value(key)) == NULL)
			json_object_set_new(attrs, json_string_value(key),
					    queue_json_str(msg->attr_values[i],
						 strlen(msg->attr_values[i]), NULL));
		json_decref(key);
	}
	json_object_set_new(obj, "attributes", attrs);
	return (obj);
}

/* queue_json_print - print and free a JSON value */
static int
queue_json_print(json_t *j)
{
	int     ret;

	ret = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
	return (ret == 0 ? 0 : 1);
}

/* queue_hist_json - one history record as JSON */
static json_t *
queue_hist_json(const struct qhist_rec *h)
{
	json_t *o = json_object();
	char    iso[64];

	json_object_set_new(o, "time", json_integer(h->time));
	queue_time_iso(iso, sizeof(iso), h->time);
	json_object_set_new(o, "time_iso", json_string(iso));
	if (*h->rcpt)
		json_object_set_new(o, "rcpt", queue_json_str(h->rcpt,
						       strlen(h->rcpt), NULL));
	json_object_set_new(o, "status", queue_json_str(h->status,
					       strlen(h->status), NULL));
	json_object_set_new(o, "dsn", queue_json_str(h->dsn, strlen(h->dsn),
						      NULL));
	json_object_set_new(o, "relay", queue_json_str(h->relay,
					       strlen(h->relay), NULL));
	json_object_set_new(o, "reply", queue_json_str(h->reply,
					       strlen(h->reply), NULL));
	return (o);
}

/* queue_next_retry - a deferred file's next retry (its mtime), or 0 */
static long
queue_next_retry(const struct queue_entry *e)
{
	struct stat st;

	if (strcmp(e->queue, QUEUE_DEFERRED) != 0 || stat(e->path, &st) < 0)
		return (0);
	return ((long) st.st_mtime);
}

/* queue_json_extra - next retry and last results, for list and show */
static void
queue_json_extra(json_t *obj, const struct queue_entry *e,
		 const struct qfile_msg *msg, const struct qhist *hist)
{
	json_t *rcpts = json_object_get(obj, "recipients");
	const struct qhist_rec *h;
	char    iso[64];
	long    next;
	size_t  i;

	if (msg == NULL)
		return;
	if ((next = queue_next_retry(e)) > 0) {
		json_object_set_new(obj, "next_retry", json_integer(next));
		queue_time_iso(iso, sizeof(iso), next);
		json_object_set_new(obj, "next_retry_iso", json_string(iso));
	}
	if (hist == NULL || rcpts == NULL)
		return;
	for (i = 0; i < msg->nrcpts; i++)
		if ((h = qhist_last(hist, msg->rcpts[i].addr)) != NULL)
			json_object_set_new(json_array_get(rcpts, i), "last",
					    queue_hist_json(h));
}

/* queue_hist_load - a message's history, NULL when it has none */
static struct qhist *
queue_hist_load(const char *queue_dir, const char *id)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct qhist *hist = qhist_read(queue_dir, id, err);

	if (hist == NULL) {
		cli_error("queue: %s: history: %s", id, err->data);
		queue_failed = 1;
	} else if (hist->n == 0)
		hist = qhist_free(hist);
	strbuf_free(err);
	return (hist);
}

/* queue_reason - the reason a pending recipient waits, or NULL */
static const char *
queue_reason(const struct qhist *hist, const struct qfile_rcpt *r)
{
	const struct qhist_rec *h;

	if (hist == NULL || r->status != QSTAT_PENDING
	    || (h = qhist_last(hist, r->addr)) == NULL
	    || strcmp(h->status, QHIST_SENT) == 0)
		return (NULL);
	return (h->reply);
}

/* queue_list - the list command */
static int
queue_list(const char *queue_dir, int json)
{
	struct queue_scan scan = {0};
	struct strbuf *err = strbuf_new(256, 0);
	struct qfile_msg *msg;
	struct qhist *hist;
	const char *last_reason;
	long    next;
	json_t *arr = NULL;
	long long total = 0;
	size_t  nmsgs = 0;
	size_t  i;
	size_t  r;
	char    when[64];
	char   *s;
	int     ret = 0;

	queue_scan_all(&scan, queue_dir);
	if (json)
		arr = json_array();
	else if (scan.n > 0)
		printf("%-20s %-9s %9s  %-20s %s\n", "QUEUEID", "QUEUE", "SIZE",
		       "ARRIVAL-TIME", "SENDER/RECIPIENT");
	for (i = 0; i < scan.n; i++) {
		const struct queue_entry *e = scan.v + i;

		strbuf_reset(err);
		msg = qfile_read(e->path, 0, err);
		hist = msg ? queue_hist_load(queue_dir, e->id) : NULL;
		if (json) {
			json_t *obj = queue_json_msg(e, msg, err->data);

			queue_json_extra(obj, e, msg, hist);
			json_array_append_new(arr, obj);
			msg = qfile_msg_free(msg);
			hist = qhist_free(hist);
			continue;
		}
		s = queue_safe(e->id);
		if (msg == NULL) {
			char   *why = queue_safe(err->data);

			printf("%-20s %-9s %9s  %-20s (unreadable: %s)\n", s, e->queue,
			       "-", "-", why);
			free(why);
			free(s);
			nmsgs++;
			continue;
		}
		queue_time_local(when, sizeof(when), msg->arrival_sec, 0);
		printf("%-20s %-9s %9lld  %-20s ", s, e->queue, msg->size, when);
		free(s);
		s = queue_safe(msg->sender);
		printf("%s\n", *s ? s : "<>");
		free(s);
		if ((next = queue_next_retry(e)) > 0) {
			queue_time_local(when, sizeof(when), next, 0);
			printf("%63s(next retry: %s)\n", "", when);
		}
		last_reason = NULL;
		for (r = 0; r < msg->nrcpts; r++) {
			const char *reason = queue_reason(hist, msg->rcpts + r);

			/* Postfix style: the reason, then its recipients. */
			if (reason != NULL && (last_reason == NULL
					  || strcmp(reason, last_reason) != 0)) {
				s = queue_safe(reason);
				printf("%63s(%s)\n", "", s);
				free(s);
			}
			last_reason = reason;
			s = queue_safe(msg->rcpts[r].addr);
			if (msg->rcpts[r].status == QSTAT_PENDING)
				printf("%63s%s\n", "", s);
			else
				printf("%63s%s (%s)\n", "", s,
				       queue_status_name(msg->rcpts[r].status));
			free(s);
		}
		total += msg->size;
		nmsgs++;
		msg = qfile_msg_free(msg);
		hist = qhist_free(hist);
	}
	if (json) {
		ret = queue_json_print(arr);
	} else if (nmsgs == 0 && !queue_failed) {
		printf("Mail queue is empty\n");
	} else {
		printf("\n-- %lld Kbytes in %zu Request%s.\n", (total + 1023) / 1024,
		       nmsgs, nmsgs == 1 ? "" : "s");
	}
	queue_scan_free(&scan);
	strbuf_free(err);
	return (ret);
}

/* queue_find - the file of one queue ID in any queue */
static const struct queue_entry *
queue_find(const struct queue_scan *scan, const char *id)
{
	size_t  i;

	for (i = 0; i < scan->n; i++)
		if (strcmp(scan->v[i].id, id) == 0)
			return (scan->v + i);
	return (NULL);
}

/* queue_print_content - the content, CRLF shown as LF */
static void
queue_print_content(const struct strbuf *c)
{
	size_t  i;
	size_t  start = 0;

	for (i = 0; i + 1 < c->len; i++) {
		if (c->data[i] == '\r' && c->data[i + 1] == '\n') {
			fwrite(c->data + start, 1, i - start, stdout);
			start = i + 1;			/* keep the LF */
			i++;
		}
	}
	fwrite(c->data + start, 1, c->len - start, stdout);
	if (c->len > 0 && c->data[c->len - 1] != '\n')
		fputc('\n', stdout);
}

/* queue_late_first - the content as it goes out: late headers first */
static void
queue_late_first(struct qfile_msg *msg)
{
	struct strbuf *all;

	if (msg->late == NULL || msg->late->len == 0)
		return;
	all = strbuf_new(msg->late->len + msg->content->len + 1, 0);
	(void) strbuf_append(all, msg->late->data, msg->late->len);
	(void) strbuf_append(all, msg->content->data, msg->content->len);
	strbuf_free(msg->content);
	msg->content = all;
}

/* queue_show - the show command */
static int
queue_show(const char *queue_dir, const char *id, int json)
{
	struct queue_scan scan = {0};
	struct strbuf *err;
	const struct queue_entry *e;
	struct qfile_msg *msg;
	struct qhist *hist;
	long    next;
	char    when[64];
	char    iso[64];
	char   *s;
	size_t  i;
	int     ret;

	if (!qfile_id_valid(id)) {
		s = queue_safe(id);
		cli_error("queue: invalid queue ID: %s", s);
		free(s);
		return (1);
	}
	/* Look where the file should be; scan only when it is not there. */
	for (i = 0; qfile_queues[i]; i++) {
		struct stat st;

		s = qfile_path(queue_dir, qfile_queues[i], id);
		if (stat(s, &st) == 0) {
			scan.v = xmalloc(sizeof(*scan.v));
			scan.v[0].id = xstrdup(id);
			scan.v[0].queue = qfile_queues[i];
			scan.v[0].path = s;
			scan.n = scan.cap = 1;
			break;
		}
		free(s);
	}
	if (scan.n == 0)
		queue_scan_all(&scan, queue_dir);
	if ((e = queue_find(&scan, id)) == NULL) {
		cli_error("queue: no message %s", id);
		queue_scan_free(&scan);
		return (1);
	}
	err = strbuf_new(256, 0);
	if ((msg = qfile_read(e->path, QFILE_READ_CONTENT, err)) == NULL) {
		s = queue_safe(err->data);
		cli_error("queue: %s: %s", id, s);
		free(s);
		strbuf_free(err);
		queue_scan_free(&scan);
		return (1);
	}
	queue_late_first(msg);
	hist = queue_hist_load(queue_dir, id);
	if (json) {
		json_t *obj = queue_json_msg(e, msg, NULL);
		json_t *harr = json_array();
		int     lossy = 0;

		queue_json_extra(obj, e, msg, hist);
		for (i = 0; hist && i < hist->n; i++)
			json_array_append_new(harr, queue_hist_json(hist->recs + i));
		json_object_set_new(obj, "history", harr);
		json_object_set_new(obj, "content",
				    queue_json_str(msg->content->data,
						   msg->content->len, &lossy));
		if (lossy) {
			char   *b64 = queue_base64(msg->content->data,
					     msg->content->len);

			json_object_set_new(obj, "content_base64", json_string(b64));
			free(b64);
		}
		ret = queue_json_print(obj);
	} else {
		queue_time_local(when, sizeof(when), msg->arrival_sec, 1);
		queue_time_iso(iso, sizeof(iso), msg->arrival_sec);
		printf("*** ENVELOPE ***\n");
		printf("queue_id: %s\n", id);
		printf("queue: %s\n", e->queue);
		printf("arrival: %s (%s)\n", when, iso);
		printf("size: %lld\n", msg->size);
		s = queue_safe(msg->sender);
		printf("sender: %s\n", *s ? s : "<>");
		free(s);
		if (msg->nattrs > 0)
			printf("attributes:\n");
		for (i = 0; i < msg->nattrs; i++) {
			char   *n = queue_safe(msg->attr_names[i]);

			s = queue_safe(msg->attr_values[i]);
			printf("  %s: %s\n", n, s);
			free(s);
			free(n);
		}
		for (i = 0; i < msg->nrcpts; i++) {
			s = queue_safe(msg->rcpts[i].addr);
			printf("recipient: %s (%s)", s,
			       queue_status_name(msg->rcpts[i].status));
			free(s);
			if (*msg->rcpts[i].params) {
				s = queue_safe(msg->rcpts[i].params);
				printf(" %s", s);
				free(s);
			}
			putchar('\n');
		}
		if ((next = queue_next_retry(e)) > 0) {
			queue_time_local(when, sizeof(when), next, 1);
			printf("next retry: %s\n", when);
		}
		if (hist != NULL)
			printf("*** HISTORY ***\n");
		for (i = 0; hist && i < hist->n; i++) {
			const struct qhist_rec *h = hist->recs + i;
			char   *a = queue_safe(*h->rcpt ? h->rcpt : "-");
			char   *rl = queue_safe(h->relay);

			queue_time_local(when, sizeof(when), h->time, 0);
			s = queue_safe(h->reply);
			printf("%s %s: %s%s%s, relay=%s (%s)\n", when, a, h->status,
			       *h->dsn ? " " : "", h->dsn, *rl ? rl : "none", s);
			free(s);
			free(rl);
			free(a);
		}
		printf("*** CONTENT ***\n");
		queue_print_content(msg->content);
		printf("*** END ***\n");
		ret = 0;
	}
	qfile_msg_free(msg);
	qhist_free(hist);
	strbuf_free(err);
	queue_scan_free(&scan);
	return (ret);
}

/* queue_trigger - wake qmgr with one byte; quiet when it is not there */
static int
queue_trigger(const char *queue_dir, int req)
{
	struct sockaddr_un sun;
	const char *service = conf_get("qmgr_service_name");
	char    c = (char) req;
	int     fd;
	int     n;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/private/%s",
		     queue_dir, service);
	if (n < 0 || (size_t) n >= sizeof(sun.sun_path))
		return (-1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0
	    || write(fd, &c, 1) != 1) {
		(void) close(fd);
		return (-1);
	}
	(void) close(fd);
	return (0);
}

/* queue_mkdir_like - make a folder owned like its parent */
static int
queue_mkdir_like(const char *dir, const char *parent)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0)
		return (errno == EEXIST ? 0 : -1);
	/* As root, the queue owner (qmgr) must be able to use it. */
	if (geteuid() == 0 && stat(parent, &st) == 0
	    && chown(dir, st.st_uid, st.st_gid) < 0)
		return (-1);
	return (0);
}

/* queue_deferred_path - queue_dir/deferred/X/ID, making deferred/X */
static char *
queue_deferred_path(const char *queue_dir, const char *id)
{
	size_t  len = strlen(queue_dir) + strlen(id) + 32;
	char   *parent = xmalloc(len);
	char   *dir = xmalloc(len);
	char   *path = xmalloc(len);

	snprintf(parent, len, "%s/%s", queue_dir, QUEUE_DEFERRED);
	snprintf(dir, len, "%s/%c", parent, id[strlen(id) - 1]);
	snprintf(path, len, "%s/%s", dir, id);
	if (queue_mkdir_like(dir, parent) < 0) {
		cli_error("queue: create %s: %s", dir, strerror(errno));
		queue_failed = 1;
	}
	free(parent);
	free(dir);
	return (path);
}

/* queue_touch - make a file due now (its mtime is its retry time) */
static int
queue_touch(const char *path)
{
	return (utimes(path, NULL));
}

/* queue_has_domain - does a pending recipient have this domain? */
static int
queue_has_domain(const char *path, const char *domain)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct qfile_msg *msg = qfile_read(path, 0, err);
	const char *at;
	size_t  i;
	int     yes = 0;

	for (i = 0; msg && i < msg->nrcpts && !yes; i++) {
		if (msg->rcpts[i].status != QSTAT_PENDING)
			continue;
		if ((at = strrchr(msg->rcpts[i].addr, '@')) != NULL
		    && strcasecmp(at + 1, domain) == 0)
			yes = 1;
	}
	qfile_msg_free(msg);
	strbuf_free(err);
	return (yes);
}

/* queue_flush - make deferred messages due now and wake qmgr */
static int
queue_flush(const char *queue_dir, const char *arg)
{
	struct queue_scan scan = {0};
	size_t  n = 0;
	size_t  i;
	int     ret = 0;

	if (arg != NULL && *arg != '@' && !qfile_id_valid(arg)) {
		char   *s = queue_safe(arg);

		cli_error("queue: invalid queue ID: %s", s);
		free(s);
		return (1);
	}
	queue_scan_all(&scan, queue_dir);
	for (i = 0; i < scan.n; i++) {
		const struct queue_entry *e = scan.v + i;

		if (arg != NULL && *arg != '@' && strcmp(e->id, arg) != 0)
			continue;
		if (strcmp(e->queue, QUEUE_DEFERRED) != 0) {
			if (arg != NULL && *arg != '@')
				printf("%s: in %s, not deferred\n", e->id,
				       e->queue);
			continue;
		}
		if (arg != NULL && *arg == '@' && !queue_has_domain(e->path,
								    arg + 1))
			continue;
		if (queue_touch(e->path) < 0) {
			cli_error("queue: %s: %s", e->id, strerror(errno));
			ret = 1;
			continue;
		}
		n++;
	}
	if (arg != NULL && *arg != '@' && queue_find(&scan, arg) == NULL) {
		cli_error("queue: no message %s", arg);
		ret = 1;
	}
	queue_scan_free(&scan);
	printf("%zu message%s flushed\n", n, n == 1 ? "" : "s");
	if (queue_trigger(queue_dir, arg == NULL ? 'F' : 'D') < 0)
		printf("qmgr is not running: messages go when it starts\n");
	return (ret);
}

/* Operator commands that move or remove files. */
enum queue_op {
	QUEUE_OP_DELETE,
	QUEUE_OP_HOLD,
	QUEUE_OP_RELEASE,
	QUEUE_OP_REQUEUE,
};

/* queue_op_applies - does the command touch a file in this queue? */
static int
queue_op_applies(enum queue_op op, const char *queue)
{
	switch (op) {
	case QUEUE_OP_DELETE:
		return (1);
	case QUEUE_OP_HOLD:
		return (strcmp(queue, QUEUE_INCOMING) == 0
			|| strcmp(queue, QUEUE_ACTIVE) == 0
			|| strcmp(queue, QUEUE_DEFERRED) == 0);
	case QUEUE_OP_RELEASE:
		return (strcmp(queue, QUEUE_HOLD) == 0);
	case QUEUE_OP_REQUEUE:
		return (strcmp(queue, QUEUE_ACTIVE) == 0
			|| strcmp(queue, QUEUE_DEFERRED) == 0
			|| strcmp(queue, QUEUE_HOLD) == 0);
	}
	return (0);
}

/* queue_op_one - apply a command to one file; 0 or -1 */
static int
queue_op_one(const char *queue_dir, enum queue_op op,
	     const struct queue_entry *e)
{
	char   *dst = NULL;
	int     ret;

	switch (op) {
	case QUEUE_OP_DELETE:
		if (unlink(e->path) < 0 && errno != ENOENT)
			return (-1);
		if (qhist_remove(queue_dir, e->id) < 0) {
			cli_error("queue: %s: remove history: %s", e->id,
				  strerror(errno));
			queue_failed = 1;
		}
		log_info("%s: removed", e->id);
		printf("%s: deleted\n", e->id);
		return (0);
	case QUEUE_OP_HOLD:
		dst = qfile_path(queue_dir, QUEUE_HOLD, e->id);
		break;
	case QUEUE_OP_RELEASE:
		dst = queue_deferred_path(queue_dir, e->id);
		/* Due now: the mtime of a deferred file is its retry time. */
		(void) queue_touch(e->path);
		break;
	case QUEUE_OP_REQUEUE:
		dst = qfile_path(queue_dir, QUEUE_INCOMING, e->id);
		break;
	}
	ret = rename(e->path, dst);
	if (ret == 0)
		printf("%s: %s\n", e->id, op == QUEUE_OP_HOLD ? "placed on hold"
		       : op == QUEUE_OP_RELEASE ? "released from hold"
		       : "requeued");
	free(dst);
	return (ret);
}

/* queue_manage - delete, hold, release or requeue */
static int
queue_manage(const char *queue_dir, enum queue_op op, const char *arg)
{
	struct queue_scan scan = {0};
	int     all = strcmp(arg, "ALL") == 0;
	size_t  n = 0;
	size_t  i;
	int     found = 0;
	int     ret = 0;

	if (!all && !qfile_id_valid(arg)) {
		char   *s = queue_safe(arg);

		cli_error("queue: invalid queue ID: %s", s);
		free(s);
		return (1);
	}
	if (op == QUEUE_OP_DELETE)
		log_open(conf_get("maillog_file"), conf_get("syslog_name"),
			 conf_get("syslog_facility"));
	queue_scan_all(&scan, queue_dir);
	for (i = 0; i < scan.n; i++) {
		const struct queue_entry *e = scan.v + i;

		if (!all && strcmp(e->id, arg) != 0)
			continue;
		found = 1;
		if (!queue_op_applies(op, e->queue)) {
			if (!all)
				printf("%s: in %s, nothing to do\n", e->id,
				       e->queue);
			continue;
		}
		if (queue_op_one(queue_dir, op, e) < 0) {
			cli_error("queue: %s: %s", e->id, strerror(errno));
			ret = 1;
			continue;
		}
		n++;
	}
	queue_scan_free(&scan);
	log_flush();
	if (!all && !found) {
		cli_error("queue: no message %s", arg);
		return (1);
	}
	printf("%zu message%s %s\n", n, n == 1 ? "" : "s",
	       op == QUEUE_OP_DELETE ? "deleted" : op == QUEUE_OP_HOLD ?
	       "placed on hold" : op == QUEUE_OP_RELEASE ? "released" :
	       "requeued");
	if (n > 0 && op != QUEUE_OP_HOLD && op != QUEUE_OP_DELETE
	    && queue_trigger(queue_dir, op == QUEUE_OP_RELEASE ? 'D' : 'A') < 0)
		printf("qmgr is not running: messages go when it starts\n");
	return (ret);
}

/* queue_status - a command's exit status, 1 after any failure on the way */
static int
queue_status(int ret)
{
	return (ret == 0 && queue_failed ? 1 : ret);
}

/* sendarix_queue_main - sendarix queue list|show|flush|delete|... */
int
sendarix_queue_main(int argc, char **argv)
{
	static const struct {
		const char *name;
		enum queue_op op;
	}       queue_ops[] = {
		{"delete", QUEUE_OP_DELETE},
		{"hold", QUEUE_OP_HOLD},
		{"release", QUEUE_OP_RELEASE},
		{"requeue", QUEUE_OP_REQUEUE},
		{NULL, QUEUE_OP_DELETE},
	};
	const char *queue_dir = conf_get("queue_directory");
	const char *id = NULL;
	int     json = 0;
	int     i;

	if (argc < 2)
		return (sendarix_queue_usage());
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			json = 1;
		else if (argv[i][0] == '-' && argv[i][1] != 0)
			return (sendarix_queue_usage());
		else if (id == NULL)
			id = argv[i];
		else
			return (sendarix_queue_usage());
	}
	if (queue_dir == NULL || *queue_dir == 0) {
		cli_error("queue: queue_directory is not set");
		return (1);
	}
	if (strcmp(argv[1], "list") == 0) {
		if (id != NULL)
			return (sendarix_queue_usage());
		return (queue_status(queue_list(queue_dir, json)));
	}
	if (strcmp(argv[1], "show") == 0) {
		if (id == NULL)
			return (sendarix_queue_usage());
		return (queue_status(queue_show(queue_dir, id, json)));
	}
	if (json)
		return (sendarix_queue_usage());
	if (strcmp(argv[1], "flush") == 0)
		return (queue_status(queue_flush(queue_dir, id)));
	for (i = 0; queue_ops[i].name; i++) {
		if (strcmp(argv[1], queue_ops[i].name) == 0) {
			if (id == NULL)
				return (sendarix_queue_usage());
			return (queue_status(queue_manage(queue_dir,
						       queue_ops[i].op, id)));
		}
	}
	cli_error("queue: unknown command: %s", argv[1]);
	return (sendarix_queue_usage());
}
