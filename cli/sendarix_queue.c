/*
 * sendarix_queue - list and show queued messages
 *
 * SYNOPSIS
 *	sendarix queue list [--json]
 *	sendarix queue show [--json] queue_id
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
 *	Strings from queue files that are not valid UTF-8 are shown with
 *	U+FFFD in place of the bad bytes in JSON, and control characters in
 *	envelope fields are shown as '?' in text.
 *
 * DIAGNOSTICS
 *	Exit status 0; 1 when the queue ID is not well-formed, the message
 *	does not exist or cannot be read; 2 on a usage error.
 *
 * SECURITY
 *	The queue ID given to show is checked with qfile_id_valid() before
 *	it becomes part of a path, so it cannot name another file.
 *
 * SEE ALSO
 *	sendarix(1), qfile.h
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "conf.h"
#include "qfile.h"
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

/* sendarix_queue_usage - the queue command summary */
static int
sendarix_queue_usage(void)
{
	fprintf(stderr,
		"usage: sendarix queue list [--json]\n"
		"       sendarix queue show [--json] queue_id\n");
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
		if (errno != ENOENT)
			cli_error("queue: open %s: %s", dir, strerror(errno));
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

/* queue_list - the list command */
static int
queue_list(const char *queue_dir, int json)
{
	struct queue_scan scan = {0};
	struct strbuf *err = strbuf_new(256, 0);
	struct qfile_msg *msg;
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
		if (json) {
			json_array_append_new(arr, queue_json_msg(e, msg, err->data));
			msg = qfile_msg_free(msg);
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
		for (r = 0; r < msg->nrcpts; r++) {
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
	}
	if (json) {
		ret = queue_json_print(arr);
	} else if (nmsgs == 0) {
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

/* queue_show - the show command */
static int
queue_show(const char *queue_dir, const char *id, int json)
{
	struct queue_scan scan = {0};
	struct strbuf *err;
	const struct queue_entry *e;
	struct qfile_msg *msg;
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
	if ((msg = qfile_read(e->path, 1, err)) == NULL) {
		s = queue_safe(err->data);
		cli_error("queue: %s: %s", id, s);
		free(s);
		strbuf_free(err);
		queue_scan_free(&scan);
		return (1);
	}
	if (json) {
		json_t *obj = queue_json_msg(e, msg, NULL);
		int     lossy = 0;

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
		printf("*** CONTENT ***\n");
		queue_print_content(msg->content);
		printf("*** END ***\n");
		ret = 0;
	}
	qfile_msg_free(msg);
	strbuf_free(err);
	queue_scan_free(&scan);
	return (ret);
}

/* sendarix_queue_main - sendarix queue list|show */
int
sendarix_queue_main(int argc, char **argv)
{
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
		return (queue_list(queue_dir, json));
	}
	if (strcmp(argv[1], "show") == 0) {
		if (id == NULL)
			return (sendarix_queue_usage());
		return (queue_show(queue_dir, id, json));
	}
	cli_error("queue: unknown command: %s", argv[1]);
	return (sendarix_queue_usage());
}
