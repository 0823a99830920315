/*
 * qhist_test - unit tests for lib/global/qhist.c
 *
 * Fixture: tests/unit/data/qhist/mixed.in, a history with good records
 * and malformed lines (not JSON, no status, a bad time, a torn last
 * write), which must be skipped and counted.
 */

#include <sys/stat.h>
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

#include "qhist.h"
#include "strbuf.h"
#include "xmalloc.h"

#define DATA_DIR	"tests/unit/data/qhist"

static char qdir[] = "/tmp/qhist_test.XXXXXX";

/* setup - a scratch queue directory */
static int
setup(void **unused_state)
{
	(void) unused_state;
	strcpy(qdir, "/tmp/qhist_test.XXXXXX");
	return (mkdtemp(qdir) ? 0 : -1);
}

/* teardown - remove it */
static int
teardown(void **unused_state)
{
	char    cmd[128];

	(void) unused_state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", qdir);
	return (system(cmd) == 0 ? 0 : -1);
}

/* test_append_read - records go out and come back, history/ made */
static void
test_append_read(void **unused_state)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct qhist_rec recs[3] = {
		{100, "a@b.example", QHIST_DEFERRED, "4.4.1", "none",
		"connect to x: refused"},
		{101, "c@d.example", QHIST_SENT, "2.0.0", "mx[1.2.3.4]:25",
		"250 2.0.0 Ok: \"quoted\"\ttab\nnewline"},
		{102, "", QHIST_DELAY, NULL, NULL, NULL},
	};
	struct qhist *h;
	const struct qhist_rec *r;

	(void) unused_state;
	assert_int_equal(qhist_append(qdir, "ID1", recs, 2, err), 0);
	assert_int_equal(qhist_append(qdir, "ID1", recs + 2, 1, err), 0);
	assert_int_equal(qhist_append(qdir, "ID1", recs, 0, err), 0);
	h = qhist_read(qdir, "ID1", err);
	assert_non_null(h);
	assert_int_equal(h->n, 3);
	assert_int_equal(h->bad, 0);
	assert_int_equal(h->recs[0].time, 100);
	assert_string_equal(h->recs[0].rcpt, "a@b.example");
	assert_string_equal(h->recs[0].status, "deferred");
	assert_string_equal(h->recs[0].dsn, "4.4.1");
	assert_string_equal(h->recs[0].relay, "none");
	assert_string_equal(h->recs[0].reply, "connect to x: refused");
	assert_string_equal(h->recs[1].reply,
			    "250 2.0.0 Ok: \"quoted\"\ttab\nnewline");
	assert_string_equal(h->recs[2].rcpt, "");
	assert_string_equal(h->recs[2].dsn, "");
	r = qhist_last(h, "c@d.example");
	assert_non_null(r);
	assert_string_equal(r->status, "sent");
	assert_null(qhist_last(h, "nobody@x"));
	assert_int_equal(qhist_has(h, QHIST_DELAY), 1);
	assert_int_equal(qhist_has(h, QHIST_EXPIRED), 0);
	assert_null(qhist_free(h));

	assert_int_equal(qhist_remove(qdir, "ID1"), 0);
	assert_int_equal(qhist_remove(qdir, "ID1"), 0);	/* already gone */
	h = qhist_read(qdir, "ID1", err);		/* none: empty */
	assert_non_null(h);
	assert_int_equal(h->n, 0);
	qhist_free(h);
	assert_null(qhist_free(NULL));
	strbuf_free(err);
}

/* test_last_wins - qhist_last is the latest record of a recipient */
static void
test_last_wins(void **unused_state)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct qhist_rec a = {1, "x@y", QHIST_DEFERRED, "4.0.0", "none", "one"};
	struct qhist_rec b = {2, "x@y", QHIST_DEFERRED, "4.0.0", "none", "two"};
	struct qhist *h;

	(void) unused_state;
	assert_int_equal(qhist_append(qdir, "ID2", &a, 1, err), 0);
	assert_int_equal(qhist_append(qdir, "ID2", &b, 1, err), 0);
	h = qhist_read(qdir, "ID2", err);
	assert_string_equal(qhist_last(h, "x@y")->reply, "two");
	qhist_free(h);
	strbuf_free(err);
}

/* test_bad_utf8 - a reply that is not UTF-8 is kept, with '?' */
static void
test_bad_utf8(void **unused_state)
{
	struct strbuf *sb = strbuf_new(128, 0);
	struct qhist_rec a = {1, "x@y", QHIST_BOUNCED, "5.0.0", "none",
	"bad \xff\xfe byte"};
	struct qhist_rec out;

	(void) unused_state;
	assert_int_equal(qhist_format(sb, &a), 0);
	assert_int_equal(sb->data[sb->len - 1], '\n');
	assert_int_equal(qhist_parse_line(sb->data, sb->len - 1, &out), 0);
	assert_string_equal(out.reply, "bad ?? byte");
	qhist_rec_clear(&out);
	strbuf_free(sb);
}

/* test_malformed - bad lines are skipped and counted */
static void
test_malformed(void **unused_state)
{
	struct qhist_rec rec;
	struct qhist *h;
	char    buf[8192];
	ssize_t n;
	int     fd;

	(void) unused_state;
	assert_int_equal(qhist_parse_line("", 0, &rec), -1);
	assert_int_equal(qhist_parse_line("{", 1, &rec), -1);
	assert_int_equal(qhist_parse_line("\"str\"", 5, &rec), -1);
	assert_int_equal(qhist_parse_line("{\"time\":1}", 10, &rec), -1);
	assert_null(rec.status);
	assert_int_equal(qhist_parse_line("{\"time\":1,\"status\":\"sent\","
					  "\"status\":\"x\"}", 37, &rec), -1);

	fd = open(DATA_DIR "/mixed.in", O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > 0);
	h = qhist_parse(buf, (size_t) n);
	/* Good: deferred, sent, delay, and the one with a numeric dsn. */
	assert_int_equal(h->n, 4);
	assert_int_equal(h->bad, 5);
	assert_string_equal(h->recs[0].status, "deferred");
	assert_string_equal(h->recs[1].status, "sent");
	assert_string_equal(h->recs[2].status, "delay");
	assert_string_equal(h->recs[2].rcpt, "");
	assert_string_equal(h->recs[3].dsn, "");	/* not a string */
	assert_string_equal(qhist_last(h, "a@b.example")->status, "sent");
	qhist_free(h);

	/* No newline at the end, and a lone newline. */
	h = qhist_parse("{\"time\":5,\"status\":\"sent\"}", 26);
	assert_int_equal(h->n, 1);
	qhist_free(h);
	h = qhist_parse("\n\n", 2);
	assert_int_equal(h->n, 0);
	assert_int_equal(h->bad, 0);
	qhist_free(h);
}

/* test_path_errors - a path and an unreadable history */
static void
test_path_errors(void **unused_state)
{
	struct strbuf *err = strbuf_new(128, 0);
	struct qhist_rec a = {1, "x@y", QHIST_SENT, "2.0.0", "r", "ok"};
	char   *p = qhist_path("/q", "ABC");
	char    dir[256];

	(void) unused_state;
	assert_string_equal(p, "/q/history/ABC");
	free(p);
	/* history/ID is a folder: reading and appending fail, with a reason. */
	snprintf(dir, sizeof(dir), "%s/history", qdir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof(dir), "%s/history/DIRID", qdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(qhist_append(qdir, "DIRID", &a, 1, err), -1);
	assert_non_null(strstr(err->data, "DIRID"));
	strbuf_reset(err);
	assert_null(qhist_read(qdir, "DIRID", err));
	assert_non_null(strstr(err->data, "DIRID"));
	/* No queue folder at all: append cannot make history/. */
	assert_int_equal(qhist_append("/nonexistent/queue", "X", &a, 1, err), -1);
	strbuf_free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_wins, setup, teardown),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test_setup_teardown(test_path_errors, setup, teardown),
	};

	return (cmocka_run_group_tests_name("qhist", tests, NULL, NULL));
}
