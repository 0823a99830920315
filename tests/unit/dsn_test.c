/*
 * dsn_test - unit tests for lib/global/dsn.c
 *
 * xtext both ways (with malformed input), the ESMTP parameter parsers,
 * and whole reports for fixed inputs compared byte for byte with
 * tests/unit/data/dsn/NAME.ref (TZ is UTC for the dates). Set
 * DSN_TEST_WRITE=1 to rewrite the .ref files after a deliberate change,
 * and read the diff before you keep it.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "dsn.h"
#include "mail_date.h"
#include "strbuf.h"

#define DSN_TEST_DATA	"tests/unit/data/dsn/"

/* decode - xtext decode to a C string; NULL when malformed */
static char *
decode(const char *in, struct strbuf *sb)
{
	strbuf_reset(sb);
	if (dsn_xtext_decode(in, strlen(in), sb) < 0)
		return (NULL);
	return (sb->data);
}

/* test_xtext_decode - good and malformed xtext */
static void
test_xtext_decode(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);

	(void) unused_state;
	assert_string_equal(decode("", sb), "");
	assert_string_equal(decode("abc@example.com", sb), "abc@example.com");
	assert_string_equal(decode("a+2Bb@x", sb), "a+b@x");
	assert_string_equal(decode("a+3Db+20c", sb), "a=b c");
	assert_string_equal(decode("+2b+3d", sb), "+=");	/* lenient */
	strbuf_reset(sb);
	assert_int_equal(dsn_xtext_decode("+00", 3, sb), 0);
	assert_int_equal(sb->len, 1);
	assert_int_equal(sb->data[0], 0);
	/* Malformed. */
	assert_null(decode("+", sb));
	assert_null(decode("+4", sb));
	assert_null(decode("abc+", sb));
	assert_null(decode("+ZZ", sb));
	assert_null(decode("+G1", sb));
	assert_null(decode("a=b", sb));
	assert_null(decode("a b", sb));
	assert_null(decode("a\tb", sb));
	assert_null(decode("caf\xc3\xa9", sb));
	assert_null(decode("a\x7f", sb));
	strbuf_free(sb);
}

/* test_xtext_encode - encode, and round trip every byte */
static void
test_xtext_encode(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);
	struct strbuf *back = strbuf_new(0, 0);
	char    all[256];
	int     i;

	(void) unused_state;
	assert_int_equal(dsn_xtext_encode("a+b=c d\r\n", 9, sb), 0);
	assert_string_equal(sb->data, "a+2Bb+3Dc+20d+0D+0A");
	for (i = 0; i < 256; i++)
		all[i] = (char) i;
	strbuf_reset(sb);
	assert_int_equal(dsn_xtext_encode(all, sizeof(all), sb), 0);
	assert_int_equal(dsn_xtext_decode(sb->data, sb->len, back), 0);
	assert_int_equal(back->len, sizeof(all));
	assert_memory_equal(back->data, all, sizeof(all));
	/* A limit is honoured. */
	strbuf_free(sb);
	sb = strbuf_new(0, 4);
	assert_int_equal(dsn_xtext_encode("  ", 2, sb), -1);
	strbuf_free(sb);
	strbuf_free(back);
}

/* test_notify - NOTIFY= values */
static void
test_notify(void **unused_state)
{
	char    buf[DSN_NOTIFY_BUFSIZE];
	int     f = -1;

	(void) unused_state;
	assert_int_equal(dsn_notify_parse("NEVER", &f), 0);
	assert_int_equal(f, DSN_NOTIFY_NEVER);
	assert_string_equal(dsn_notify_str(f, buf, sizeof(buf)), "NEVER");
	assert_int_equal(dsn_notify_parse("delay,Success", &f), 0);
	assert_int_equal(f, DSN_NOTIFY_DELAY | DSN_NOTIFY_SUCCESS);
	assert_string_equal(dsn_notify_str(f, buf, sizeof(buf)),
			    "SUCCESS,DELAY");
	assert_int_equal(dsn_notify_parse("FAILURE,DELAY,SUCCESS", &f), 0);
	assert_string_equal(dsn_notify_str(f, buf, sizeof(buf)),
			    "SUCCESS,FAILURE,DELAY");
	assert_int_equal(dsn_notify_parse("DELAY", &f), 0);
	assert_string_equal(dsn_notify_str(f, buf, sizeof(buf)), "DELAY");
	assert_string_equal(dsn_notify_str(0, buf, sizeof(buf)), "");
	/* Malformed. */
	f = 99;
	assert_int_equal(dsn_notify_parse("", &f), -1);
	assert_int_equal(dsn_notify_parse("NEVER,FAILURE", &f), -1);
	assert_int_equal(dsn_notify_parse("FAILURE,NEVER", &f), -1);
	assert_int_equal(dsn_notify_parse("FAILURE,", &f), -1);
	assert_int_equal(dsn_notify_parse(",FAILURE", &f), -1);
	assert_int_equal(dsn_notify_parse("FAILURE,,DELAY", &f), -1);
	assert_int_equal(dsn_notify_parse("FAILURE,FAILURE", &f), -1);
	assert_int_equal(dsn_notify_parse("SUCCES", &f), -1);
	assert_int_equal(dsn_notify_parse("FAILURE DELAY", &f), -1);
	assert_int_equal(f, 99);
	/* Who gets what. */
	assert_true(dsn_notify_wants(0, DSN_TYPE_FAILURE));
	assert_true(dsn_notify_wants(0, DSN_TYPE_DELAY));
	assert_false(dsn_notify_wants(DSN_NOTIFY_NEVER, DSN_TYPE_FAILURE));
	assert_false(dsn_notify_wants(DSN_NOTIFY_NEVER, DSN_TYPE_EXPIRED));
	assert_false(dsn_notify_wants(DSN_NOTIFY_SUCCESS, DSN_TYPE_FAILURE));
	assert_true(dsn_notify_wants(DSN_NOTIFY_FAILURE, DSN_TYPE_EXPIRED));
	assert_false(dsn_notify_wants(DSN_NOTIFY_FAILURE, DSN_TYPE_DELAY));
	assert_true(dsn_notify_wants(DSN_NOTIFY_DELAY, DSN_TYPE_DELAY));
	assert_false(dsn_notify_wants(DSN_NOTIFY_DELAY, DSN_TYPE_FAILURE));
	/* Success only when asked for. */
	assert_false(dsn_notify_wants(0, DSN_TYPE_SUCCESS));
	assert_false(dsn_notify_wants(DSN_NOTIFY_FAILURE, DSN_TYPE_SUCCESS));
	assert_true(dsn_notify_wants(DSN_NOTIFY_SUCCESS, DSN_TYPE_SUCCESS));
	assert_true(dsn_notify_wants(DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY,
				     DSN_TYPE_SUCCESS));
}

/* test_ret_type - RET= and the request's type */
static void
test_ret_type(void **unused_state)
{
	(void) unused_state;
	assert_int_equal(dsn_ret_parse("FULL"), DSN_RET_FULL);
	assert_int_equal(dsn_ret_parse("hdrs"), DSN_RET_HDRS);
	assert_int_equal(dsn_ret_parse(""), -1);
	assert_int_equal(dsn_ret_parse("HEADERS"), -1);
	assert_int_equal(dsn_ret_parse("FULL "), -1);
	assert_string_equal(dsn_ret_str(DSN_RET_HDRS), "HDRS");
	assert_string_equal(dsn_ret_str(DSN_RET_NONE), "");
	assert_int_equal(dsn_type_parse("failure"), DSN_TYPE_FAILURE);
	assert_int_equal(dsn_type_parse("delay"), DSN_TYPE_DELAY);
	assert_int_equal(dsn_type_parse("expired"), DSN_TYPE_EXPIRED);
	assert_int_equal(dsn_type_parse("success"), DSN_TYPE_SUCCESS);
	assert_int_equal(dsn_type_parse("FAILURE"), -1);
	assert_int_equal(dsn_type_parse(""), -1);
}

/* test_envid_orcpt - ENVID= and ORCPT= */
static void
test_envid_orcpt(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);
	char    big[600];

	(void) unused_state;
	assert_int_equal(dsn_envid_parse("QQ314159+20x", sb), 0);
	assert_string_equal(sb->data, "QQ314159 x");
	assert_int_equal(dsn_envid_parse("", sb), -1);
	assert_int_equal(dsn_envid_parse("a+0Ab", sb), -1);	/* LF */
	assert_int_equal(dsn_envid_parse("a+09b", sb), -1);	/* TAB */
	assert_int_equal(dsn_envid_parse("a+C3+A9", sb), -1);	/* 8 bit */
	assert_int_equal(dsn_envid_parse("a=b", sb), -1);
	memset(big, 'x', 101);
	big[101] = 0;
	assert_int_equal(dsn_envid_parse(big, sb), -1);
	big[100] = 0;
	assert_int_equal(dsn_envid_parse(big, sb), 0);

	assert_int_equal(dsn_orcpt_parse("rfc822;bob@example.com", sb), 0);
	assert_string_equal(sb->data, "rfc822;bob@example.com");
	assert_int_equal(dsn_orcpt_parse("RFC822;a+2Bb+3Dc@x", sb), 0);
	assert_string_equal(sb->data, "RFC822;a+b=c@x");
	assert_int_equal(dsn_orcpt_parse("rfc822;a;b@x", sb), 0);
	assert_string_equal(sb->data, "rfc822;a;b@x");
	assert_int_equal(dsn_orcpt_parse("rfc822;", sb), -1);
	assert_int_equal(dsn_orcpt_parse(";bob@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("bob@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("rfc 822;bob@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("rfc822;bob+09@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("rfc822;bob+0D+0A@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("rfc822;bob+7F@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("rfc822;b=b@x", sb), -1);
	assert_int_equal(dsn_orcpt_parse("rfc822;b+4@x", sb), -1);
	/* Canonical xtext: what is stored and sent on. */
	assert_int_equal(dsn_orcpt_canon("rfc822;a+2bb+3Dc@x", sb), 0);
	assert_string_equal(sb->data, "rfc822;a+2Bb+3Dc@x");
	assert_int_equal(dsn_orcpt_canon("rfc822;+41+42@x", sb), 0);
	assert_string_equal(sb->data, "rfc822;AB@x");
	assert_int_equal(dsn_orcpt_canon("utf-8;caf+C3+A9@x", sb), 0);
	assert_string_equal(sb->data, "utf-8;caf+C3+A9@x");
	assert_int_equal(dsn_orcpt_canon("rfc822;a+ZZ", sb), -1);
	assert_int_equal(dsn_orcpt_canon("rfc822;a+09", sb), -1);
	assert_int_equal(dsn_orcpt_canon("norfc", sb), -1);
	memcpy(big, "rfc822;", 7);
	memset(big + 7, 'x', 500);
	big[507] = 0;
	assert_int_equal(dsn_orcpt_parse(big, sb), -1);
	strbuf_free(sb);
}

/* read_file - a whole fixture; NULL if missing */
static struct strbuf *
read_file(const char *path)
{
	struct strbuf *sb;
	char    buf[4096];
	size_t  n;
	FILE   *fp;

	if ((fp = fopen(path, "rb")) == NULL)
		return (NULL);
	sb = strbuf_new(0, 0);
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		strbuf_append(sb, buf, n);
	fclose(fp);
	return (sb);
}

/* check_ref - compare with NAME.ref (or write it) */
static void
check_ref(const char *name, const struct strbuf *got)
{
	struct strbuf *ref;
	char    path[256];
	FILE   *fp;

	snprintf(path, sizeof(path), DSN_TEST_DATA "%s.ref", name);
	if (getenv("DSN_TEST_WRITE")) {
		fp = fopen(path, "wb");
		assert_non_null(fp);
		assert_int_equal(fwrite(got->data, 1, got->len, fp), got->len);
		fclose(fp);
	}
	ref = read_file(path);
	if (ref == NULL)
		fail_msg("missing fixture %s", path);
	if (ref->len != got->len || memcmp(ref->data, got->data, got->len))
		fail_msg("%s differs from the composed report:\n%s", path,
			 got->data);
	strbuf_free(ref);
}

static const char dsn_test_msg[] =
	"Received: from c.example (unknown [127.0.0.1])\r\n"
	"\tby mx.test.example (Sendarix) with ESMTP id 3Bq5hK0001x9;\r\n"
	"\tWed, 25 Nov 2026 10:00:00 +0000\r\n"
	"From: alice@example.org\r\n"
	"To: bob@example.com, carol@example.net\r\n"
	"Subject: report me\r\n"
	"\r\n"
	"Body line one.\r\n"
	"Body line two.\r\n";

static const struct dsn_rcpt dsn_test_rcpts[] = {
	{"bob@example.com", "rfc822;Bob@Example.COM", "5.1.1",
	 "mx.example.com[192.0.2.1]:25",
	 "550 5.1.1 <bob@example.com>: Recipient address rejected", NULL},
	{"carol@example.net", NULL, "5.4.4", "none",
	"Host or domain name not found\r\nInjected: header", NULL},
	{"dave@example.org", NULL, "bogus", NULL, "", NULL},
};

/* report_base - the fixed inputs of the fixtures */
static void
report_base(struct dsn_report *rp)
{
	memset(rp, 0, sizeof(*rp));
	rp->type = DSN_TYPE_FAILURE;
	rp->myhostname = "mx.test.example";
	rp->queue_id = "3Bq5hK0001x9";
	rp->sender = "alice@example.org";
	rp->envid = "QQ314159";
	rp->arrival = 1795600800;	/* Wed, 25 Nov 2026 10:00:00 UTC */
	rp->now = 1795604400;
	rp->message_id = "20261125110000.3Bq5hK0002zz@mx.test.example";
	rp->boundary = "3Bq5hK0001x9.1795604400/mx.test.example";
	rp->rcpts = dsn_test_rcpts;
	rp->nrcpt = 3;
	rp->content = dsn_test_msg;
	rp->content_len = sizeof(dsn_test_msg) - 1;
	rp->size_limit = 50000;
}

/* test_report_failure - full message returned */
static void
test_report_failure(void **unused_state)
{
	struct dsn_report rp;
	struct strbuf *out = strbuf_new(0, 0);

	(void) unused_state;
	report_base(&rp);
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	check_ref("failure", out);
	strbuf_free(out);
}

/* test_report_hdrs - RET=HDRS, no ENVID, one recipient */
static void
test_report_hdrs(void **unused_state)
{
	struct dsn_report rp;
	struct strbuf *out = strbuf_new(0, 0);

	(void) unused_state;
	report_base(&rp);
	rp.ret = DSN_RET_HDRS;
	rp.envid = NULL;
	rp.nrcpt = 1;
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	check_ref("hdrs", out);
	strbuf_free(out);
}

/* test_report_delay - delay notice with Will-Retry-Until */
static void
test_report_delay(void **unused_state)
{
	static const struct dsn_rcpt rcpt[] = {
		{"bob@example.com", NULL, "4.2.0",
		 "mx.example.com[192.0.2.1]:25",
		"451 4.2.0 Mailbox busy, try again", NULL},
	};
	struct dsn_report rp;
	struct strbuf *out = strbuf_new(0, 0);

	(void) unused_state;
	report_base(&rp);
	rp.type = DSN_TYPE_DELAY;
	rp.rcpts = rcpt;
	rp.nrcpt = 1;
	rp.retry_until = rp.arrival + 5 * 86400;
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	check_ref("delay", out);
	strbuf_free(out);
}

/* test_report_success - relayed and delivered; headers only */
static void
test_report_success(void **unused_state)
{
	static const struct dsn_rcpt rcpt[] = {
		{"bob@example.com", "rfc822;Bob@Example.COM", "2.0.0",
		 "mx.example.com[192.0.2.1]:25", "250 2.0.0 Ok: queued as 1",
		 NULL},
		{"carol@example.net", NULL, "5.1.1", "mx.example.net[192.0.2.2]:25",
		 "250 2.0.0 Ok", "delivered"},
	};
	struct dsn_report rp;
	struct strbuf *out = strbuf_new(0, 0);

	(void) unused_state;
	report_base(&rp);
	rp.type = DSN_TYPE_SUCCESS;
	rp.ret = DSN_RET_FULL;		/* RFC 3461 4.3: headers all the same */
	rp.rcpts = rcpt;
	rp.nrcpt = 2;
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	check_ref("success", out);
	strbuf_free(out);
}

/* test_report_expired - the last reason, 4.4.7 without one */
static void
test_report_expired(void **unused_state)
{
	static const struct dsn_rcpt rcpt[] = {
		{"bob@example.com", NULL, "4.2.1",
		 "mx.example.com[192.0.2.1]:25",
		 "host mx.example.com[192.0.2.1] said: 450 4.2.1 Mailbox busy "
		 "(in reply to RCPT TO command)", NULL},
		{"carol@example.net", NULL, "", "none",
		 "connect to mx.example.net[192.0.2.2]:25: Connection refused",
		 NULL},
	};
	struct dsn_report rp;
	struct strbuf *out = strbuf_new(0, 0);

	(void) unused_state;
	report_base(&rp);
	rp.type = DSN_TYPE_EXPIRED;
	rp.rcpts = rcpt;
	rp.nrcpt = 2;
	rp.lifetime = 5 * 86400;
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	check_ref("expired", out);
	strbuf_free(out);
}

/* test_report_limits - over bounce_size_limit: headers, cut at a line */
static void
test_report_limits(void **unused_state)
{
	struct dsn_report rp;
	struct strbuf *out = strbuf_new(0, 0);

	(void) unused_state;
	report_base(&rp);
	rp.size_limit = 100;
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	assert_non_null(strstr(out->data, "Content-Type: text/rfc822-headers"
			       "\r\n\r\nReceived: from c.example (unknown "
			       "[127.0.0.1])\r\n\r\n--"));
	assert_null(strstr(out->data, "Body line"));
	assert_null(strstr(out->data, "message/rfc822"));
	/* Under the limit: the whole message. */
	strbuf_reset(out);
	rp.size_limit = rp.content_len;
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	assert_non_null(strstr(out->data, "Content-Type: message/rfc822"));
	assert_non_null(strstr(out->data, "Body line two.\r\n\r\n--"));
	/* 8-bit content is declared. */
	strbuf_reset(out);
	rp.content = "Subject: caf\xc3\xa9\r\n\r\nx\r\n";
	rp.content_len = strlen(rp.content);
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	assert_non_null(strstr(out->data, "Content-Transfer-Encoding: 8bit"));
	/* No content, no final CRLF: still well formed. */
	strbuf_reset(out);
	rp.content = "Subject: x";
	rp.content_len = strlen(rp.content);
	assert_int_equal(dsn_report_compose(&rp, out), 0);
	assert_non_null(strstr(out->data, "Subject: x\r\n\r\n--"));
	assert_null(strstr(out->data, "Content-Transfer-Encoding"));
	/* Long values: every line stays within RFC 5322's 998. */
	{
		static struct dsn_rcpt lr;
		char   *big = malloc(3001);
		char   *line;
		char   *eol;

		memset(big, 'x', 3000);
		big[3000] = 0;
		memset(big + 100, ' ', 1);
		lr.addr = big;
		lr.orcpt = big;
		lr.dsn = "5.1.1";
		lr.relay = big;
		lr.reply = big;
		rp.rcpts = &lr;
		rp.nrcpt = 1;
		rp.sender = big;
		rp.envid = big;
		strbuf_reset(out);
		assert_int_equal(dsn_report_compose(&rp, out), 0);
		for (line = out->data; (eol = strstr(line, "\r\n")) != NULL;
		     line = eol + 2)
			assert_true(eol - line <= 998);
		free(big);
		report_base(&rp);
	}
	/* An output limit is reported. */
	strbuf_free(out);
	out = strbuf_new(0, 500);
	assert_int_equal(dsn_report_compose(&rp, out), -1);
	strbuf_free(out);
}

/* test_date - RFC 5322 form */
static void
test_date(void **unused_state)
{
	char    buf[64];

	(void) unused_state;
	mail_date(buf, sizeof(buf), 1795600800);
	assert_string_equal(buf, "Wed, 25 Nov 2026 10:00:00 +0000");
}

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext_decode),
		cmocka_unit_test(test_xtext_encode),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_ret_type),
		cmocka_unit_test(test_envid_orcpt),
		cmocka_unit_test(test_report_failure),
		cmocka_unit_test(test_report_hdrs),
		cmocka_unit_test(test_report_delay),
		cmocka_unit_test(test_report_success),
		cmocka_unit_test(test_report_expired),
		cmocka_unit_test(test_report_limits),
		cmocka_unit_test(test_date),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return (cmocka_run_group_tests_name("dsn", tests, NULL, NULL));
}
