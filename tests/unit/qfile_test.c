/*
 * qfile_test - unit tests for lib/global/qfile.c
 *
 * Each test works in its own queue folder under $TMPDIR. Fixtures:
 * tests/unit/data/qfile/bad-*.in must be refused by qfile_parse() with a
 * reason that contains the text of the matching .ref file; good-*.in must
 * parse, and their .ref file is the envelope as printed by dump_msg().
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "qfile.h"
#include "strbuf.h"

#define DATA_DIR	"tests/unit/data/qfile"

struct qdir {
	char    path[256];
};

/* qdir_setup - a fresh queue folder with all subfolders */
static int
qdir_setup(void **state)
{
	struct qdir *q = calloc(1, sizeof(*q));
	const char *tmp = getenv("TMPDIR");
	char    sub[300];
	int     i;

	snprintf(q->path, sizeof(q->path), "%s/qfile_test.XXXXXX",
		 tmp ? tmp : "/tmp");
	if (mkdtemp(q->path) == NULL) {
		free(q);
		return (-1);
	}
	snprintf(sub, sizeof(sub), "%s/tmp", q->path);
	mkdir(sub, 0700);
	for (i = 0; qfile_queues[i]; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", q->path, qfile_queues[i]);
		mkdir(sub, 0700);
	}
	*state = q;
	return (0);
}

/* qdir_teardown - remove the queue folder */
static int
qdir_teardown(void **state)
{
	struct qdir *q = *state;
	char    cmd[320];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", q->path);
	if (system(cmd) != 0)
		return (-1);
	free(q);
	return (0);
}

/* count_files - entries in one queue */
static int
count_files(const struct qdir *q, const char *queue)
{
	char    path[300];
	DIR    *d;
	struct dirent *de;
	int     n = 0;

	snprintf(path, sizeof(path), "%s/%s", q->path, queue);
	if ((d = opendir(path)) == NULL)
		return (-1);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return (n);
}

/* slurp - the bytes of a file */
static struct strbuf *
slurp(const char *path)
{
	struct strbuf *sb = strbuf_new(0, 0);
	FILE   *fp = fopen(path, "rb");
	char    buf[8192];
	size_t  n;

	if (fp == NULL) {
		fail_msg("%s: %s", path, strerror(errno));
		return (sb);
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		assert_int_equal(strbuf_append(sb, buf, n), 0);
	fclose(fp);
	return (sb);
}

/* test_roundtrip_exact - a small message, byte for byte */
static void
test_roundtrip_exact(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct strbuf *want = strbuf_new(0, 0);
	struct strbuf *got;
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;
	char    id[QFILE_ID_MAX];
	const char *tdata;
	size_t  tlen;

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_true(qfile_id_valid(qfile_out_id(out)));
	snprintf(id, sizeof(id), "%s", qfile_out_id(out));
	assert_int_equal(count_files(q, "tmp"), 1);
	assert_int_equal(qfile_out_sender(out, "alice@example.com"), 0);
	assert_int_equal(qfile_out_attr(out, "client_addr", "127.0.0.1"), 0);
	assert_int_equal(qfile_out_attr(out, "helo", "a=b"), 0);
	assert_int_equal(qfile_out_rcpt(out, "bob@example.net", NULL), 0);
	assert_int_equal(qfile_out_rcpt(out, "carol@example.org",
					"notify=FAILURE\torcpt=rfc822;carol@x"), 0);
	assert_int_equal(qfile_out_content(out, "Subject: hi\r\n", 13), 0);
	assert_int_equal(qfile_out_content(out, "\r\nbody\0\r\n", 9), 0);
	assert_int_equal(qfile_out_size(out), 22);
	assert_int_equal(qfile_commit(out, err), 0);
	out = qfile_out_free(out);
	assert_int_equal(count_files(q, "tmp"), 0);
	assert_int_equal(count_files(q, "incoming"), 1);

	path = qfile_path(q->path, "incoming", id);
	got = slurp(path);
	/* The T record is the only part we cannot know: take it over. */
	assert_memory_equal(got->data, "V1:1\nT", 6);
	tdata = strchr(got->data + 6, ':') + 1;
	tlen = (size_t) (strchr(tdata, '\n') - tdata);
	strbuf_printf(want, "V1:1\nT%zu:%.*s\n", tlen, (int) tlen, tdata);
	strbuf_appends(want, "Z15:000000000000022\n"
		       "S17:alice@example.com\n"
		       "A21:client_addr=127.0.0.1\n"
		       "A8:helo=a=b\n"
		       "R16:-bob@example.net\n"
		       "R54:-carol@example.org\tnotify=FAILURE\torcpt=rfc822;carol@x\n"
		       "C22:Subject: hi\r\n\r\nbody");
	strbuf_append(want, "\0\r\n\nE0:\n", 8);
	assert_int_equal(got->len, want->len);
	assert_memory_equal(got->data, want->data, want->len);

	msg = qfile_read(path, 1, err);
	if (msg == NULL)
		fail_msg("%s", err->data);
	assert_string_equal(msg->id, id);
	assert_string_equal(msg->sender, "alice@example.com");
	assert_int_equal(msg->size, 22);
	assert_int_equal(msg->nattrs, 2);
	assert_string_equal(qfile_msg_attr(msg, "client_addr"), "127.0.0.1");
	assert_string_equal(qfile_msg_attr(msg, "helo"), "a=b");
	assert_null(qfile_msg_attr(msg, "tls"));
	assert_int_equal(msg->nrcpts, 2);
	assert_string_equal(msg->rcpts[0].addr, "bob@example.net");
	assert_string_equal(msg->rcpts[0].params, "");
	assert_int_equal(msg->rcpts[0].status, QSTAT_PENDING);
	assert_string_equal(msg->rcpts[1].addr, "carol@example.org");
	assert_string_equal(msg->rcpts[1].params,
			    "notify=FAILURE\torcpt=rfc822;carol@x");
	assert_int_equal(got->data[msg->rcpts[0].status_offset], '-');
	assert_memory_equal(got->data + msg->rcpts[1].status_offset,
			    "-carol", 6);
	assert_memory_equal(got->data + msg->content_offset, "C22:", 4);
	assert_int_equal(msg->content->len, 22);
	assert_memory_equal(msg->content->data, "Subject: hi\r\n\r\nbody\0\r\n", 22);
	assert_true(msg->arrival_sec > 1700000000);
	assert_true(msg->arrival_usec >= 0 && msg->arrival_usec < 1000000);
	qfile_msg_free(msg);

	/* Without content. */
	msg = qfile_read(path, 0, err);
	assert_non_null(msg);
	assert_null(msg->content);
	assert_int_equal(msg->size, 22);
	qfile_msg_free(msg);

	free(path);
	strbuf_free(got);
	strbuf_free(want);
	strbuf_free(err);
}

/* test_roundtrip_large - many small appends make few full C records */
static void
test_roundtrip_large(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct strbuf *content = strbuf_new(0, 0);
	struct strbuf *file;
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;
	size_t  i;
	size_t  pos;
	int     nchunks = 0;
	char    line[100];

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, ""), 0);
	for (i = 0; i < 1000; i++) {
		snprintf(line, sizeof(line), "r%zu@example.com", i);
		assert_int_equal(qfile_out_rcpt(out, line, ""), 0);
	}
	/* 300 KB in 7-byte and odd-sized pieces, plus one big write. */
	for (i = 0; content->len < 300000; i++) {
		int     n = snprintf(line, sizeof(line), "%06zu\r\n", i);

		strbuf_append(content, line, (size_t) n);
		assert_int_equal(qfile_out_content(out, line, (size_t) n), 0);
	}
	{
		char   *big = malloc(200000);

		memset(big, 'x', 200000);
		strbuf_append(content, big, 200000);
		assert_int_equal(qfile_out_content(out, big, 200000), 0);
		free(big);
	}
	assert_int_equal(qfile_out_size(out), (long long) content->len);
	path = qfile_path(q->path, "incoming", qfile_out_id(out));
	assert_int_equal(qfile_out_finish(out, err), 0);
	assert_int_equal(qfile_dir_sync(q->path, "incoming", err), 0);
	out = qfile_out_free(out);

	msg = qfile_read(path, 1, err);
	if (msg == NULL)
		fail_msg("%s", err->data);
	assert_string_equal(msg->sender, "");
	assert_int_equal(msg->nrcpts, 1000);
	assert_string_equal(msg->rcpts[999].addr, "r999@example.com");
	assert_int_equal(msg->size, (long long) content->len);
	assert_int_equal(msg->content->len, content->len);
	assert_memory_equal(msg->content->data, content->data, content->len);

	/* Count C records: all full but the last. */
	file = slurp(path);
	for (pos = (size_t) msg->content_offset; file->data[pos] == 'C';) {
		size_t  len = strtoul(file->data + pos + 1, NULL, 10);

		assert_true(len <= QFILE_CHUNK);
		pos = (size_t) (strchr(file->data + pos, ':') - file->data) + 1
			+ len + 1;
		nchunks++;
		if (file->data[pos] == 'C')
			assert_int_equal(len, QFILE_CHUNK);
	}
	assert_int_equal(nchunks, (content->len + QFILE_CHUNK - 1) / QFILE_CHUNK);
	assert_memory_equal(file->data + pos, "E0:\n", 4);

	qfile_msg_free(msg);
	strbuf_free(file);
	free(path);
	strbuf_free(content);
	strbuf_free(err);
}

/* test_end_sync - qfile_out_end() then qfile_out_sync(), in that order */
static void
test_end_sync(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;

	out = qfile_create(q->path, err);
	assert_non_null(out);
	/* Not ended: neither may run. */
	assert_int_equal(qfile_out_end(out, err), -1);
	assert_int_equal(qfile_abort(out), NULL);

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_rcpt(out, "c@d", NULL), 0);
	assert_int_equal(qfile_out_content(out, "Subject: x\r\n\r\nhi\r\n",
					       19), 0);
	assert_int_equal(qfile_out_sync(out, err), -1);	/* not ended */
	assert_int_equal(errno, EINVAL);
	out = qfile_abort(out);

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_rcpt(out, "c@d", NULL), 0);
	assert_int_equal(qfile_out_content(out, "Subject: x\r\n\r\nhi\r\n",
					       19), 0);
	path = qfile_path(q->path, "incoming", qfile_out_id(out));
	assert_int_equal(qfile_out_end(out, err), 0);
	/* Ended but not synced: still in tmp/, complete on disk. */
	assert_int_equal(count_files(q, "tmp"), 1);
	assert_int_equal(count_files(q, "incoming"), 0);
	assert_int_equal(qfile_out_end(out, err), -1);	/* only once */
	assert_int_equal(qfile_out_content(out, "x", 1), -1);
	assert_int_equal(qfile_out_sync(out, err), 0);
	assert_int_equal(count_files(q, "tmp"), 0);
	assert_int_equal(count_files(q, "incoming"), 1);
	assert_int_equal(qfile_out_sync(out, err), -1);	/* renamed once */
	out = qfile_out_free(out);
	msg = qfile_read(path, 1, err);
	if (msg == NULL)
		fail_msg("%s", err->data);
	assert_int_equal(msg->size, 19);
	assert_string_equal(msg->rcpts[0].addr, "c@d");
	qfile_msg_free(msg);
	free(path);
	strbuf_free(err);
}

/* test_abort - an aborted file leaves nothing behind */
static void
test_abort(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;
	char    big[100000];

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_rcpt(out, "c@d", NULL), 0);
	memset(big, 'y', sizeof(big));
	assert_int_equal(qfile_out_content(out, big, sizeof(big)), 0);
	assert_int_equal(count_files(q, "tmp"), 1);
	assert_null(qfile_abort(out));
	assert_int_equal(count_files(q, "tmp"), 0);
	assert_int_equal(count_files(q, "incoming"), 0);
	assert_null(qfile_abort(NULL));
	assert_null(qfile_out_free(NULL));
	strbuf_free(err);
}

/* test_order - records out of order are refused when written */
static void
test_order(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;

	out = qfile_create(q->path, err);
	assert_non_null(out);
	/* No sender yet: cannot finish, cannot add recipients. */
	assert_int_equal(qfile_out_rcpt(out, "c@d", NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qfile_out_record(out, 'Q', "x", 1), -1);
	assert_int_equal(qfile_out_record(out, QREC_VERSION, "1", 1), -1);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_sender(out, "a@b"), -1);
	assert_int_equal(qfile_out_rcpt(out, "", NULL), -1);
	assert_int_equal(qfile_out_rcpt(out, "a\tb", NULL), -1);
	assert_int_equal(qfile_out_attr(out, "", "x"), -1);
	assert_int_equal(qfile_out_attr(out, "a=b", "x"), -1);
	assert_int_equal(qfile_out_rcpt(out, "c@d", NULL), 0);
	assert_int_equal(qfile_out_attr(out, "helo", "x"), -1);
	assert_int_equal(qfile_out_content(out, "x", 1), 0);
	assert_int_equal(qfile_out_rcpt(out, "e@f", NULL), -1);
	/* Refused records leave no trace: the file still commits. */
	assert_int_equal(qfile_commit(out, err), 0);
	assert_int_equal(qfile_out_content(out, "x", 1), -1);
	assert_int_equal(count_files(q, "incoming"), 1);
	out = qfile_abort(out);			/* never touches incoming/ */
	assert_int_equal(count_files(q, "incoming"), 1);
	strbuf_free(err);
}

/* test_failures - missing folders give errors, not crashes */
static void
test_failures(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;
	char    sub[300];

	assert_null(qfile_create("/nonexistent/queue", err));
	assert_non_null(strstr(err->data, "No such file"));

	/* Rename fails without incoming/: the caller aborts, tmp is clean. */
	snprintf(sub, sizeof(sub), "%s/incoming", q->path);
	assert_int_equal(rmdir(sub), 0);
	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_rcpt(out, "c@d", NULL), 0);
	strbuf_reset(err);
	assert_int_equal(qfile_commit(out, err), -1);
	assert_non_null(strstr(err->data, "rename"));
	assert_non_null(strstr(err->data, "/tmp/"));
	out = qfile_abort(out);
	assert_int_equal(count_files(q, "tmp"), 0);
	assert_int_equal(qfile_dir_sync(q->path, "incoming", err), -1);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_null(qfile_read(sub, 0, err));		/* a folder */
	snprintf(sub, sizeof(sub), "%s/incoming/nothing", q->path);
	assert_null(qfile_read(sub, 0, err));
	assert_non_null(strstr(err->data, "No such file"));
	strbuf_free(err);
}

/* test_truncated - every prefix of a good file is refused */
static void
test_truncated(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct strbuf *file;
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;
	size_t  i;

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_attr(out, "helo", "h"), 0);
	assert_int_equal(qfile_out_rcpt(out, "c@d", "x=y"), 0);
	assert_int_equal(qfile_out_content(out, "hello\r\n", 7), 0);
	path = qfile_path(q->path, "incoming", qfile_out_id(out));
	assert_int_equal(qfile_commit(out, err), 0);
	out = qfile_out_free(out);
	file = slurp(path);
	for (i = 0; i < file->len; i++) {
		msg = qfile_parse(file->data, i, 1, err);
		if (msg != NULL)
			fail_msg("prefix of %zu bytes accepted", i);
	}
	assert_null(qfile_parse(file->data, file->len - 1, 0, err));
	assert_non_null(strstr(err->data, "incomplete"));
	assert_null(qfile_parse(file->data, file->len - 4, 0, err));
	assert_non_null(strstr(err->data, "incomplete"));
	/* A truncated file on disk, through qfile_read. */
	assert_int_equal(truncate(path, (off_t) file->len - 4), 0);
	assert_null(qfile_read(path, 0, err));
	assert_non_null(strstr(err->data, path));
	assert_non_null(strstr(err->data, "incomplete"));
	/* And the whole thing parses. */
	msg = qfile_parse(file->data, file->len, 0, err);
	assert_non_null(msg);
	assert_string_equal(msg->id, "");
	qfile_msg_free(msg);
	strbuf_free(file);
	free(path);
	strbuf_free(err);
}

/* test_set_status - recipient status is updated in place */
static void
test_set_status(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;
	int     fd;

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	assert_int_equal(qfile_out_rcpt(out, "r1@x", NULL), 0);
	assert_int_equal(qfile_out_rcpt(out, "r2@x", "notify=NEVER"), 0);
	assert_int_equal(qfile_out_rcpt(out, "r3@x", NULL), 0);
	path = qfile_path(q->path, "incoming", qfile_out_id(out));
	assert_int_equal(qfile_commit(out, err), 0);
	out = qfile_out_free(out);

	msg = qfile_read(path, 0, err);
	assert_non_null(msg);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(qfile_set_status(fd, msg->rcpts[1].status_offset,
					  QSTAT_SENT), 0);
	assert_int_equal(qfile_set_status(fd, msg->rcpts[2].status_offset,
					  QSTAT_BOUNCED), 0);
	close(fd);
	qfile_msg_free(msg);
	assert_int_equal(qfile_set_status(-1, 0, QSTAT_SENT), -1);

	msg = qfile_read(path, 0, err);
	assert_non_null(msg);
	assert_int_equal(msg->rcpts[0].status, QSTAT_PENDING);
	assert_int_equal(msg->rcpts[1].status, QSTAT_SENT);
	assert_string_equal(msg->rcpts[1].addr, "r2@x");
	assert_string_equal(msg->rcpts[1].params, "notify=NEVER");
	assert_int_equal(msg->rcpts[2].status, QSTAT_BOUNCED);
	qfile_msg_free(msg);
	free(path);
	strbuf_free(err);
}

/* test_ids - queue IDs: sorted by time, valid, path-safe */
static void
test_ids(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	char    a[QFILE_ID_MAX];
	char    b[QFILE_ID_MAX];
	char    prev[QFILE_ID_MAX] = "";
	static const long times[][2] = {
		{0, 0}, {0, 1}, {0, 999999}, {1, 0}, {31, 5}, {32, 0},
		{1700000000, 0}, {1700000000, 500000}, {1764115200, 999999},
		{1764115201, 0}, {4102444800L, 0},
	};
	static const char *bad[] = {
		"", "0", "0000000000", "../../../etc/passwd", "0000000000A0",
		"00000000000a", "0000000000E0", "000000000000000000000000000000000",
		"0000000000 0", "00000000000/", "00000000000.",
	};
	size_t  i;
	int     j;

	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		assert_int_equal(qfile_id_make(a, sizeof(a), times[i][0],
					       times[i][1], 12345), 0);
		assert_true(qfile_id_valid(a));
		assert_true(strcmp(prev, a) < 0);
		/* The time part sorts before any inode. */
		assert_int_equal(qfile_id_make(b, sizeof(b), times[i][0],
					       times[i][1], ~0ULL), 0);
		assert_true(qfile_id_valid(b));
		assert_int_equal(memcmp(a, b, 11), 0);
		snprintf(prev, sizeof(prev), "%s", b);
	}
	assert_int_equal(qfile_id_make(a, sizeof(a), 0, 0, 0), 0);
	assert_string_equal(a, "000000000000");
	assert_int_equal(qfile_id_make(a, sizeof(a), 1, 31, 32), 0);
	assert_string_equal(a, "0000001000z10");
	assert_int_equal(qfile_id_make(a, 12, 0, 0, 0), -1);
	assert_int_equal(qfile_id_make(a, sizeof(a), 0, 1000000, 0), -1);
	assert_int_equal(qfile_id_make(a, sizeof(a), -1, 0, 0), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (qfile_id_valid(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);

	/* Real files: valid, time part never goes back. */
	prev[0] = 0;
	for (j = 0; j < 20; j++) {
		struct qfile_out *out = qfile_create(q->path, err);

		assert_non_null(out);
		assert_true(qfile_id_valid(qfile_out_id(out)));
		assert_true(strncmp(prev, qfile_out_id(out), 11) <= 0);
		assert_true(strcmp(prev, qfile_out_id(out)) != 0);
		snprintf(prev, sizeof(prev), "%s", qfile_out_id(out));
		qfile_abort(out);
	}
	strbuf_free(err);
}

/* test_paths - path building, queue names, moves */
static void
test_paths(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;
	char   *p;
	char    id[QFILE_ID_MAX];

	p = qfile_path("/var/spool/sendarix", "deferred", "ABC");
	assert_string_equal(p, "/var/spool/sendarix/deferred/ABC");
	free(p);
	assert_true(qfile_queue_valid("incoming"));
	assert_true(qfile_queue_valid("corrupt"));
	assert_false(qfile_queue_valid("tmp"));
	assert_false(qfile_queue_valid("../incoming"));
	assert_false(qfile_queue_valid(""));

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@b"), 0);
	snprintf(id, sizeof(id), "%s", qfile_out_id(out));
	assert_int_equal(qfile_commit(out, err), 0);
	qfile_out_free(out);
	assert_int_equal(qfile_move(q->path, "incoming", "hold", id), 0);
	assert_int_equal(count_files(q, "incoming"), 0);
	assert_int_equal(count_files(q, "hold"), 1);
	assert_int_equal(qfile_move(q->path, "incoming", "hold", id), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(qfile_move(q->path, "hold", "tmp", id), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qfile_move(q->path, "hold", "active", "../x"), -1);
	assert_int_equal(errno, EINVAL);
	strbuf_free(err);
}

/* dump_msg - the envelope as text, for .ref files */
static void
dump_msg(struct strbuf *sb, const struct qfile_msg *msg)
{
	size_t  i;

	strbuf_printf(sb, "time %ld.%06ld\nsize %lld\nsender <%s>\n",
		      msg->arrival_sec, msg->arrival_usec, msg->size, msg->sender);
	for (i = 0; i < msg->nattrs; i++)
		strbuf_printf(sb, "attr %s=%s\n", msg->attr_names[i],
			      msg->attr_values[i]);
	for (i = 0; i < msg->nrcpts; i++)
		strbuf_printf(sb, "rcpt %c <%s> [%s] @%lld\n", msg->rcpts[i].status,
			      msg->rcpts[i].addr, msg->rcpts[i].params,
			      (long long) msg->rcpts[i].status_offset);
	strbuf_printf(sb, "content @%lld %zu\n", (long long) msg->content_offset,
		      msg->content ? msg->content->len : 0);
	if (msg->late && msg->late->len) {
		strbuf_appends(sb, "late ");
		for (i = 0; i < msg->late->len; i++) {
			if (msg->late->data[i] == '\r'
			    && msg->late->data[i + 1] == '\n') {
				strbuf_appendc(sb, '|');
				i++;
			} else
				strbuf_appendc(sb, msg->late->data[i]);
		}
		strbuf_appendc(sb, '\n');
	}
}

/* stream_all - the content through qfile_content_read() in small pieces */
static struct strbuf *
stream_all(const char *path, const struct qfile_msg *msg, size_t piece)
{
	struct strbuf *sb = strbuf_new(0, 0);
	struct qfile_cursor cur;
	char    buf[4096];
	ssize_t n;
	int     fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_true(piece <= sizeof(buf));
	qfile_content_start(&cur, msg);
	while ((n = qfile_content_read(fd, &cur, buf, piece)) > 0)
		strbuf_append(sb, buf, (size_t) n);
	assert_int_equal(n, 0);
	/* And stays at the end. */
	assert_int_equal(qfile_content_read(fd, &cur, buf, piece), 0);
	close(fd);
	return (sb);
}

/* test_late_headers - H records: written after the content, read first */
static void
test_late_headers(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct strbuf *content = strbuf_new(0, 0);
	struct strbuf *got;
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;
	char   *cut;
	size_t  i;
	int     fd;
	char    line[32];

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@example.com"), 0);
	assert_int_equal(qfile_out_rcpt(out, "b@example.net", ""), 0);
	/* 150 KB: three C records. */
	for (i = 0; content->len < 150000; i++) {
		int     n = snprintf(line, sizeof(line), ".%06zu\n", i);

		strbuf_append(content, line, (size_t) n);
		assert_int_equal(qfile_out_content(out, line, (size_t) n), 0);
	}
	/* Not a header field: refused, and nothing is written. */
	assert_int_equal(qfile_out_late_header(out, "no colon"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(qfile_out_late_header(out, ": no name"), -1);
	assert_int_equal(qfile_out_late_header(out, "X: bare\nLF"), -1);
	assert_int_equal(qfile_out_late_header(out, "X: end\r\n"), -1);
	assert_int_equal(qfile_out_late_header(out, "X: a\r\nb"), -1);
	assert_int_equal(qfile_out_late_header(out,
			 "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc"), 0);
	assert_int_equal(qfile_out_late_header(out,
			 "Authentication-Results: mx.example; none"), 0);
	/* No content after a late header. */
	assert_int_equal(qfile_out_content(out, "x", 1), -1);
	assert_int_equal(errno, EINVAL);
	path = qfile_path(q->path, "incoming", qfile_out_id(out));
	assert_int_equal(qfile_commit(out, err), 0);
	out = qfile_out_free(out);

	/* Envelope and late headers; the last one written comes first. */
	msg = qfile_read(path, QFILE_READ_ENVELOPE, err);
	if (msg == NULL)
		fail_msg("%s", err->data);
	assert_null(msg->content);
	assert_int_equal(msg->size, (long long) content->len);
	assert_non_null(msg->late);
	assert_int_equal(msg->late->len,
			 strlen("Authentication-Results: mx.example; none\r\n"
				"DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n"));
	assert_memory_equal(msg->late->data,
			    "Authentication-Results: mx.example; none\r\n"
			    "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\n",
			    msg->late->len);

	/* The content, streamed in pieces of any size. */
	got = stream_all(path, msg, 1);
	assert_int_equal(got->len, content->len);
	assert_memory_equal(got->data, content->data, content->len);
	strbuf_free(got);
	got = stream_all(path, msg, 4096);
	assert_int_equal(got->len, content->len);
	assert_memory_equal(got->data, content->data, content->len);
	strbuf_free(got);
	qfile_msg_free(msg);

	/* Whole: the content without the late headers. */
	msg = qfile_read(path, QFILE_READ_CONTENT, err);
	assert_non_null(msg);
	assert_int_equal(msg->content->len, content->len);
	assert_memory_equal(msg->content->data, content->data, content->len);
	assert_true(msg->late->len > 0);
	qfile_msg_free(msg);

	/* qmgr's read: the envelope only. */
	msg = qfile_read(path, QFILE_READ_HEAD, err);
	assert_non_null(msg);
	assert_null(msg->content);
	assert_null(msg->late);
	assert_int_equal(msg->nrcpts, 1);
	assert_string_equal(msg->rcpts[0].addr, "b@example.net");
	qfile_msg_free(msg);

	/* Cut short: every kind of read refuses it. */
	got = slurp(path);
	cut = qfile_path(q->path, "hold", "0000000000000CUT");
	fd = open(cut, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, got->data, got->len - 10),
			 (ssize_t) (got->len - 10));
	close(fd);
	assert_null(qfile_read(cut, QFILE_READ_HEAD, err));
	assert_non_null(strstr(err->data, "incomplete file"));
	assert_null(qfile_read(cut, QFILE_READ_ENVELOPE, err));
	assert_null(qfile_read(cut, QFILE_READ_CONTENT, err));
	strbuf_free(got);
	free(cut);

	free(path);
	strbuf_free(content);
	strbuf_free(err);
}

/* test_envelope_read_small - an envelope read does not read the content */
static void
test_envelope_read_small(void **state)
{
	struct qdir *q = *state;
	struct strbuf *err = strbuf_new(0, 0);
	struct qfile_out *out;
	struct qfile_msg *msg;
	char   *path;
	char   *big = malloc(QFILE_CHUNK);
	int     i;

	out = qfile_create(q->path, err);
	assert_non_null(out);
	assert_int_equal(qfile_out_sender(out, "a@example.com"), 0);
	assert_int_equal(qfile_out_rcpt(out, "b@example.net", ""), 0);
	memset(big, 'x', QFILE_CHUNK);
	for (i = 0; i < 64; i++)			/* 4 MB */
		assert_int_equal(qfile_out_content(out, big, QFILE_CHUNK), 0);
	path = qfile_path(q->path, "incoming", qfile_out_id(out));
	assert_int_equal(qfile_commit(out, err), 0);
	out = qfile_out_free(out);

	/* The envelope read walks the C records by their lengths... */
	msg = qfile_read(path, QFILE_READ_ENVELOPE, err);
	if (msg == NULL)
		fail_msg("%s", err->data);
	assert_int_equal(msg->size, 64LL * QFILE_CHUNK);
	assert_int_equal(msg->late->len, 0);
	qfile_msg_free(msg);

	/* ...but a broken record in the middle is found. */
	{
		int     fd = open(path, O_RDWR);
		char    c = 'Q';

		assert_true(fd >= 0);
		msg = qfile_read(path, QFILE_READ_HEAD, err);
		assert_non_null(msg);
		/* The 3rd C record's type byte. */
		assert_int_equal(pwrite(fd, &c, 1, msg->content_offset
					+ 2 * (off_t) (strlen("C65536:") + QFILE_CHUNK
						       + 1)), 1);
		close(fd);
		qfile_msg_free(msg);
	}
	assert_null(qfile_read(path, QFILE_READ_ENVELOPE, err));
	assert_non_null(strstr(err->data, "unknown record type"));
	/* qmgr's read stops before it. */
	msg = qfile_read(path, QFILE_READ_HEAD, err);
	assert_non_null(msg);
	qfile_msg_free(msg);

	free(big);
	free(path);
	strbuf_free(err);
}

/* test_fixtures - good and bad files under tests/unit/data/qfile */
static void
test_fixtures(void **unused_state)
{
	DIR    *dir = opendir(DATA_DIR);
	struct dirent *de;
	int     nbad = 0;
	int     ngood = 0;

	(void) unused_state;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		char    path[512];
		struct strbuf *in;
		struct strbuf *ref;
		struct strbuf *err;
		struct strbuf *got;
		struct qfile_msg *msg;
		size_t  n = strlen(de->d_name);

		if (n < 4 || strcmp(de->d_name + n - 3, ".in") != 0)
			continue;
		err = strbuf_new(0, 0);
		got = strbuf_new(0, 0);
		snprintf(path, sizeof(path), "%s/%s", DATA_DIR, de->d_name);
		in = slurp(path);
		snprintf(path + strlen(path) - 3, 5, ".ref");
		ref = slurp(path);
		while (ref->len && ref->data[ref->len - 1] == '\n')
			strbuf_truncate(ref, ref->len - 1);
		msg = qfile_parse(in->data, in->len, 1, err);
		if (strncmp(de->d_name, "bad-", 4) == 0) {
			if (msg != NULL)
				fail_msg("%s: accepted", de->d_name);
			if (strstr(err->data, ref->data) == NULL)
				fail_msg("%s: reason \"%s\", want \"%s\"", de->d_name,
					 err->data, ref->data);
			nbad++;
		} else {
			if (msg == NULL) {
				fail_msg("%s: %s", de->d_name, err->data);
				return;
			}
			dump_msg(got, msg);
			while (got->len && got->data[got->len - 1] == '\n')
				strbuf_truncate(got, got->len - 1);
			if (strcmp(got->data, ref->data) != 0)
				fail_msg("%s: got\n%s", de->d_name, got->data);
			ngood++;
		}
		qfile_msg_free(msg);
		strbuf_free(in);
		strbuf_free(ref);
		strbuf_free(err);
		strbuf_free(got);
	}
	closedir(dir);
	assert_true(nbad >= 10);
	assert_true(ngood >= 1);
}

int
main(void)
{
	const struct CMUnitTest qfile_tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_exact, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_large, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_end_sync, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_abort, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_order, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_failures, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_truncated, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_set_status, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_ids, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_paths, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_late_headers, qdir_setup,
						qdir_teardown),
		cmocka_unit_test_setup_teardown(test_envelope_read_small,
						qdir_setup, qdir_teardown),
		cmocka_unit_test(test_fixtures),
	};

	return (cmocka_run_group_tests_name("qfile", qfile_tests, NULL, NULL));
}
