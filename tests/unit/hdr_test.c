/*
 * hdr_test - unit tests for lib/global/hdr.c
 *
 * Every message is scanned whole, split into two chunks at every
 * position, and fed one byte at a time; all ways must give the same
 * header section, body and counts.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hdr.h"
#include "strbuf.h"

#define HDR_TEST_LIMIT	102400

/* What one scan found. */
struct scan {
	int     state;
	struct strbuf *head;		/* header section */
	struct strbuf *body;		/* everything after it */
	long    received;
	long    headers;
	int     seen;
	const char *eol;
	struct strbuf *msgid;		/* "" when none */
};

/* scan_free - release a result */
static void
scan_free(struct scan *s)
{
	strbuf_free(s->head);
	strbuf_free(s->body);
	strbuf_free(s->msgid);
}

/* scan_chunks - feed "msg" in chunks of the given sizes (0: the rest) */
static void
scan_chunks(struct scan *s, const char *msg, size_t len, size_t limit,
	    const size_t *sizes)
{
	struct hdr *h = hdr_new(limit);
	size_t  off = 0;
	size_t  n;
	size_t  used;
	int     st = HDR_MORE;
	int     done = 0;

	memset(s, 0, sizeof(*s));
	s->head = strbuf_new(0, 0);
	s->body = strbuf_new(0, 0);
	s->msgid = strbuf_new(0, 0);
	while (off < len) {
		n = (sizes && *sizes) ? *sizes++ : len - off;
		if (n > len - off)
			n = len - off;
		st = hdr_feed(h, msg + off, n, &used);
		assert_true(used <= n);
		if (st == HDR_MORE) {
			assert_int_equal(used, n);
		} else if (st == HDR_DONE) {
			if (!done) {
				done = 1;
				strbuf_append(s->head, h->buf->data, h->hdr_len);
				strbuf_append(s->body, h->buf->data + h->hdr_len,
					      h->buf->len - h->hdr_len);
			}
			strbuf_append(s->body, msg + off + used, n - used);
		} else {
			break;
		}
		off += n;
	}
	if (st == HDR_MORE) {
		st = hdr_finish(h);
		assert_int_equal(st, HDR_DONE);
		strbuf_append(s->head, h->buf->data, h->hdr_len);
		strbuf_append(s->body, h->buf->data + h->hdr_len,
			      h->buf->len - h->hdr_len);
	}
	s->state = st;
	s->received = h->received;
	s->headers = h->headers;
	s->seen = h->seen;
	s->eol = h->eol;
	hdr_msgid(h, s->msgid);
	hdr_free(h);
}

/* scan_same - two scans found the same */
static void
scan_same(const struct scan *a, const struct scan *b)
{
	assert_int_equal(a->state, b->state);
	if (a->state == HDR_TOOBIG)
		return;
	assert_int_equal(a->head->len, b->head->len);
	assert_memory_equal(a->head->data, b->head->data, a->head->len);
	assert_int_equal(a->body->len, b->body->len);
	assert_memory_equal(a->body->data, b->body->data, a->body->len);
	assert_int_equal(a->received, b->received);
	assert_int_equal(a->headers, b->headers);
	assert_int_equal(a->seen, b->seen);
	assert_string_equal(a->eol, b->eol);
	assert_string_equal(a->msgid->data, b->msgid->data);
}

/* scan_all - scan whole, at every split and bytewise; return the first */
static void
scan_all(struct scan *res, const char *msg, size_t len, size_t limit)
{
	struct scan other;
	size_t  sizes[3];
	size_t *ones;
	size_t  cut;

	scan_chunks(res, msg, len, limit, NULL);
	for (cut = 1; cut < len; cut++) {
		sizes[0] = cut;
		sizes[1] = 0;
		scan_chunks(&other, msg, len, limit, sizes);
		scan_same(res, &other);
		scan_free(&other);
	}
	/* One byte at a time: a list of ones. */
	ones = malloc((len + 1) * sizeof(size_t));
	assert_non_null(ones);
	for (cut = 0; cut < len; cut++)
		ones[cut] = 1;
	ones[len] = 0;
	scan_chunks(&other, msg, len, limit, ones);
	scan_same(res, &other);
	scan_free(&other);
	free(ones);
	/* The whole message is head + eol-less body, byte for byte. */
	if (res->state == HDR_DONE) {
		assert_int_equal(res->head->len + res->body->len, len);
		assert_memory_equal(res->head->data, msg, res->head->len);
		assert_memory_equal(res->body->data, msg + res->head->len,
				    res->body->len);
	}
}

#define SCAN(res, str, limit)	scan_all((res), (str), strlen(str), (limit))

/* test_basic - empty line ends the headers; body keeps it */
static void
test_basic(void **unused_state)
{
	struct scan r;
	const char *m = "Received: from a by b\r\nFrom: x@y\r\nSubject: hi\r\n"
	"\r\nbody line\r\n";

	(void) unused_state;
	SCAN(&r, m, HDR_TEST_LIMIT);
	assert_int_equal(r.state, HDR_DONE);
	assert_string_equal(r.head->data,
	     "Received: from a by b\r\nFrom: x@y\r\nSubject: hi\r\n");
	assert_string_equal(r.body->data, "\r\nbody line\r\n");
	assert_int_equal(r.received, 1);
	assert_int_equal(r.headers, 3);
	assert_int_equal(r.seen, HDR_SEEN_FROM);
	assert_string_equal(r.eol, "");
	assert_string_equal(r.msgid->data, "");
	scan_free(&r);
}

/* test_folded - continuation lines belong to their field */
static void
test_folded(void **unused_state)
{
	struct scan r;
	const char *m = "Subject: a\r\n b\r\n\tc\r\nMessage-ID:\r\n"
	"  <x@y.z> \r\nDate: Mon,\r\n 1 Jan 2024\r\n\r\nB\r\n";

	(void) unused_state;
	SCAN(&r, m, HDR_TEST_LIMIT);
	assert_int_equal(r.state, HDR_DONE);
	assert_int_equal(r.headers, 3);
	assert_int_equal(r.seen, HDR_SEEN_MSGID | HDR_SEEN_DATE);
	assert_string_equal(r.msgid->data, "<x@y.z>");
	assert_string_equal(r.body->data, "\r\nB\r\n");
	scan_free(&r);
}

/* test_case - field names match in any case; lookalikes do not */
static void
test_case(void **unused_state)
{
	struct scan r;
	const char *m = "MESSAGE-id: <a@b>\r\ndAtE: x\r\nfRoM: y\r\n"
	"RECEIVED: 1\r\nreceived: 2\r\nReceived-SPF: pass\r\n"
	"X-Received: 3\r\nFrom-x: z\r\nDates: q\r\n\r\n";

	(void) unused_state;
	SCAN(&r, m, HDR_TEST_LIMIT);
	assert_int_equal(r.seen, HDR_SEEN_MSGID | HDR_SEEN_DATE | HDR_SEEN_FROM);
	assert_int_equal(r.received, 2);
	assert_int_equal(r.headers, 9);
	assert_string_equal(r.msgid->data, "<a@b>");
	scan_free(&r);
}

/* test_missing - none of Message-ID, Date, From */
static void
test_missing(void **unused_state)
{
	struct scan r;
	struct hdr *h = hdr_new(100);
	struct strbuf *out = strbuf_new(0, 0);
	size_t  used;

	(void) unused_state;
	SCAN(&r, "Subject: x\r\nTo: y\r\n\r\nbody", HDR_TEST_LIMIT);
	assert_int_equal(r.seen, 0);
	assert_int_equal(r.headers, 2);
	assert_string_equal(r.msgid->data, "");
	scan_free(&r);
	assert_int_equal(hdr_feed(h, "To: y\r\n\r\n", 9, &used), HDR_DONE);
	assert_int_equal(hdr_msgid(h, out), -1);
	hdr_free(h);
	strbuf_free(out);
}

/* test_no_body - headers only, with and without the last line end */
static void
test_no_body(void **unused_state)
{
	struct scan r;

	(void) unused_state;
	SCAN(&r, "Subject: x\r\nFrom: y\r\n", HDR_TEST_LIMIT);
	assert_int_equal(r.state, HDR_DONE);
	assert_string_equal(r.head->data, "Subject: x\r\nFrom: y\r\n");
	assert_string_equal(r.body->data, "");
	assert_string_equal(r.eol, "");
	scan_free(&r);

	SCAN(&r, "Subject: x\r\nFrom: y", HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "Subject: x\r\nFrom: y");
	assert_string_equal(r.eol, "\r\n");
	assert_int_equal(r.seen, HDR_SEEN_FROM);
	scan_free(&r);

	SCAN(&r, "Subject: x\r", HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "Subject: x\r");
	assert_string_equal(r.eol, "\n");
	scan_free(&r);
}

/* test_no_header - the first line is not a header */
static void
test_no_header(void **unused_state)
{
	struct scan r;

	(void) unused_state;
	SCAN(&r, "hello world\r\nSubject: no\r\n", HDR_TEST_LIMIT);
	assert_int_equal(r.state, HDR_DONE);
	assert_string_equal(r.head->data, "");
	assert_int_equal(r.headers, 0);
	scan_free(&r);

	SCAN(&r, " Subject: folded first\r\n\r\n", HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "");
	assert_int_equal(r.headers, 0);
	scan_free(&r);

	SCAN(&r, "\r\nSubject: in body\r\n", HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "");
	assert_int_equal(r.headers, 0);
	scan_free(&r);

	SCAN(&r, "", HDR_TEST_LIMIT);
	assert_int_equal(r.state, HDR_DONE);
	assert_string_equal(r.head->data, "");
	assert_string_equal(r.body->data, "");
	scan_free(&r);

	/* A last line without colon nor line end is body. */
	SCAN(&r, "A: b\r\nnocolon", HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "A: b\r\n");
	assert_string_equal(r.body->data, "nocolon");
	assert_string_equal(r.eol, "");
	scan_free(&r);
}

/* test_nonheader_ends - a non-header line starts the body */
static void
test_nonheader_ends(void **unused_state)
{
	struct scan r;

	(void) unused_state;
	SCAN(&r, "Subject: x\r\nthis is body\r\nMessage-ID: <no>\r\n",
	     HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "Subject: x\r\n");
	assert_string_equal(r.body->data,
			    "this is body\r\nMessage-ID: <no>\r\n");
	assert_int_equal(r.headers, 1);
	assert_int_equal(r.seen, 0);
	scan_free(&r);

	/* Blanks before the colon are allowed (as in Postfix). */
	SCAN(&r, "Subject : x\r\nFrom\t: y\r\n\r\n", HDR_TEST_LIMIT);
	assert_int_equal(r.headers, 2);
	assert_int_equal(r.seen, HDR_SEEN_FROM);
	scan_free(&r);

	/* Bare LF line ends. */
	SCAN(&r, "A: b\nC: d\n\nbody\n", HDR_TEST_LIMIT);
	assert_string_equal(r.head->data, "A: b\nC: d\n");
	assert_string_equal(r.body->data, "\nbody\n");
	scan_free(&r);
}

/* test_malformed - control bytes, 8-bit names, NUL bytes */
static void
test_malformed(void **unused_state)
{
	struct scan r;
	static const char m1[] = "A: b\r\nX\001Y: z\r\n\r\n";
	static const char m2[] = "A: b\0c\r\n\0: x\r\n";
	static const char m3[] = "A: b\r\nN\xc3\xa4me: x\r\n";
	static const char m4[] = ":novalue\r\n";

	(void) unused_state;
	scan_all(&r, m1, sizeof(m1) - 1, HDR_TEST_LIMIT);
	assert_int_equal(r.headers, 1);
	assert_string_equal(r.head->data, "A: b\r\n");
	scan_free(&r);

	scan_all(&r, m2, sizeof(m2) - 1, HDR_TEST_LIMIT);
	assert_int_equal(r.headers, 1);
	assert_int_equal(r.head->len, 8);
	assert_int_equal(r.body->len, sizeof(m2) - 1 - 8);
	scan_free(&r);

	scan_all(&r, m3, sizeof(m3) - 1, HDR_TEST_LIMIT);
	assert_int_equal(r.headers, 1);
	scan_free(&r);

	scan_all(&r, m4, sizeof(m4) - 1, HDR_TEST_LIMIT);
	assert_int_equal(r.headers, 0);
	assert_int_equal(r.head->len, 0);
	scan_free(&r);
}

/* test_nul - NUL in a name, a value, a continuation or a line start */
static void
test_nul(void **unused_state)
{
	struct scan r;
	static const char name[] = "A: b\r\nX-Fo\0o: bar\r\n\r\nbody\r\n";
	static const char value[] = "A: b\0c\r\nB: d\r\n\r\nbody\r\n";
	static const char cont[] = "A: b\r\n c\0d\r\n\r\nbody\r\n";
	static const char blank[] = "A: b\r\nX \0: y\r\n\r\n";
	static const char start[] = "A: b\r\n\0Subject: y\r\n\r\n";
	static const char body[] = "A: b\r\n\r\nbo\0dy\r\n\0\r\n";

	(void) unused_state;
	scan_all(&r, name, sizeof(name) - 1, HDR_TEST_LIMIT);
	assert_true(r.seen & HDR_SEEN_NUL);
	assert_string_equal(r.head->data, "A: b\r\n");
	scan_free(&r);

	scan_all(&r, value, sizeof(value) - 1, HDR_TEST_LIMIT);
	assert_true(r.seen & HDR_SEEN_NUL);
	assert_int_equal(r.headers, 2);
	scan_free(&r);

	scan_all(&r, cont, sizeof(cont) - 1, HDR_TEST_LIMIT);
	assert_true(r.seen & HDR_SEEN_NUL);
	assert_int_equal(r.headers, 1);
	scan_free(&r);

	scan_all(&r, blank, sizeof(blank) - 1, HDR_TEST_LIMIT);
	assert_true(r.seen & HDR_SEEN_NUL);
	scan_free(&r);

	scan_all(&r, start, sizeof(start) - 1, HDR_TEST_LIMIT);
	assert_true(r.seen & HDR_SEEN_NUL);
	scan_free(&r);

	/* After the empty line it is body: not the scanner's business. */
	scan_all(&r, body, sizeof(body) - 1, HDR_TEST_LIMIT);
	assert_false(r.seen & HDR_SEEN_NUL);
	assert_int_equal(r.headers, 1);
	scan_free(&r);
}

/* test_limit - at the limit is fine, one byte over is not */
static void
test_limit(void **unused_state)
{
	struct scan r;
	const char *m = "Subject: 123456789\r\n";	/* 20 bytes */
	char   *big;
	size_t  i;

	(void) unused_state;
	SCAN(&r, "Subject: 123456789\r\n\r\nbody that is long enough", 20);
	assert_int_equal(r.state, HDR_DONE);
	assert_string_equal(r.head->data, m);
	scan_free(&r);

	SCAN(&r, "Subject: 1234567890\r\n\r\nbody", 20);
	assert_int_equal(r.state, HDR_TOOBIG);
	scan_free(&r);

	SCAN(&r, "Subject: 1234567890AB", 20);
	assert_int_equal(r.state, HDR_TOOBIG);
	scan_free(&r);

	/* A body after a header at the limit does not count. */
	SCAN(&r, "Subject: 123456789\r\nbody line much longer than 20\r\n", 20);
	assert_int_equal(r.state, HDR_DONE);
	scan_free(&r);

	/* A huge would-be name with no colon is refused, not kept. */
	big = malloc(5001);
	for (i = 0; i < 5000; i++)
		big[i] = 'x';
	big[5000] = 0;
	SCAN(&r, big, 1000);
	assert_int_equal(r.state, HDR_TOOBIG);
	scan_free(&r);
	free(big);
}

/* test_received - many Received fields, folded ones count once */
static void
test_received(void **unused_state)
{
	struct strbuf *m = strbuf_new(0, 0);
	struct scan r;
	int     i;

	(void) unused_state;
	for (i = 0; i < 60; i++)
		strbuf_printf(m, "Received: from h%d\r\n\tby x; date\r\n", i);
	strbuf_appends(m, "\r\nReceived: in body\r\n");
	SCAN(&r, m->data, HDR_TEST_LIMIT);
	assert_int_equal(r.received, 60);
	assert_int_equal(r.headers, 60);
	scan_free(&r);
	strbuf_free(m);
}

/* test_msgid_first - the first of two Message-ID fields wins */
static void
test_msgid_first(void **unused_state)
{
	struct scan r;

	(void) unused_state;
	SCAN(&r, "Message-Id: <one@x>\r\nMessage-ID: <two@x>\r\n\r\n",
	     HDR_TEST_LIMIT);
	assert_string_equal(r.msgid->data, "<one@x>");
	scan_free(&r);

	/* Last field, no body: ends at the end of the content. */
	SCAN(&r, "A: b\r\nMessage-ID: <last@x>\r\n", HDR_TEST_LIMIT);
	assert_string_equal(r.msgid->data, "<last@x>");
	scan_free(&r);
}

/* test_after_done - nothing more is taken after the end */
static void
test_after_done(void **unused_state)
{
	struct hdr *h = hdr_new(100);
	size_t  used;

	(void) unused_state;
	assert_int_equal(hdr_feed(h, "A: b\r\n\r\nxyz", 11, &used), HDR_DONE);
	assert_int_equal(used, 6);
	assert_int_equal(h->hdr_len, 6);
	assert_int_equal(hdr_feed(h, "more", 4, &used), HDR_DONE);
	assert_int_equal(used, 0);
	assert_int_equal(hdr_finish(h), HDR_DONE);
	hdr_free(h);
	assert_null(hdr_free(NULL));

	h = hdr_new(5);
	assert_int_equal(hdr_feed(h, "A: bcdef\r\n", 10, &used), HDR_TOOBIG);
	assert_int_equal(hdr_feed(h, "\r\n", 2, &used), HDR_TOOBIG);
	assert_int_equal(used, 0);
	assert_int_equal(hdr_finish(h), HDR_TOOBIG);
	hdr_free(h);
}

int
main(void)
{
	const struct CMUnitTest hdr_tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_case),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_no_header),
		cmocka_unit_test(test_nonheader_ends),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_received),
		cmocka_unit_test(test_msgid_first),
		cmocka_unit_test(test_after_done),
	};

	return (cmocka_run_group_tests_name("hdr", hdr_tests, NULL, NULL));
}
