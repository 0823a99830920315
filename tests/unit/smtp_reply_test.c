/*
 * smtp_reply_test - unit tests for lib/global/smtp_reply.c
 *
 * Whole replies, replies split at every byte, enhanced status codes, and
 * malformed input (junk, bad codes, codes that change between lines,
 * over-long replies) that must be refused without reading past the
 * buffer.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_reply.h"
#include "strbuf.h"

/* parse - parse a NUL-terminated string as one reply */
static int
parse(const char *s, size_t limit, struct smtp_reply *r, size_t *used)
{
	return (smtp_reply_parse(s, strlen(s), limit, r, used));
}

/* test_single_line - "250 2.1.0 Ok" */
static void
test_single_line(void **unused_state)
{
	struct smtp_reply r;
	size_t  used = 0;

	(void) unused_state;
	smtp_reply_init(&r);
	assert_int_equal(parse("250 2.1.0 Ok\r\nrest", 0, &r, &used),
			 SMTP_REPLY_OK);
	assert_int_equal(used, 14);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.dsn, "2.1.0");
	assert_int_equal(r.nlines, 1);
	assert_string_equal(r.text->data, "250 2.1.0 Ok");
	smtp_reply_clear(&r);
}

/* test_multi_line - an EHLO reply, lines and flattening */
static void
test_multi_line(void **unused_state)
{
	static const char ehlo[] = "250-mx.example.com Hello\r\n"
		"250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";
	struct smtp_reply r;
	struct strbuf *sb = strbuf_new(0, 0);
	const char *line;
	size_t  used = 0;
	size_t  len;

	(void) unused_state;
	smtp_reply_init(&r);
	assert_int_equal(parse(ehlo, 0, &r, &used), SMTP_REPLY_OK);
	assert_int_equal(used, sizeof(ehlo) - 1);
	assert_int_equal(r.nlines, 4);
	assert_string_equal(r.dsn, "");
	line = smtp_reply_line(&r, 2, &len);
	assert_non_null(line);
	assert_int_equal(len, 13);
	assert_memory_equal(line, "250-SIZE 1000", 13);
	line = smtp_reply_line(&r, 3, &len);
	assert_memory_equal(line, "250 8BITMIME", len);
	assert_null(smtp_reply_line(&r, 4, &len));
	assert_int_equal(smtp_reply_flat(&r, sb), 0);
	assert_string_equal(sb->data, "250-mx.example.com Hello 250-PIPELINING "
			    "250-SIZE 1000 250 8BITMIME");
	strbuf_free(sb);
	smtp_reply_clear(&r);
}

/* test_split_everywhere - a reply arriving one byte at a time */
static void
test_split_everywhere(void **unused_state)
{
	static const char text[] = "550-5.1.1 No such\r\n550 5.1.1 user\r\n";
	struct smtp_reply r;
	size_t  used = 0;
	size_t  n;

	(void) unused_state;
	smtp_reply_init(&r);
	for (n = 0; n < sizeof(text) - 1; n++)
		assert_int_equal(smtp_reply_parse(text, n, 1000, &r, &used),
				 SMTP_REPLY_MORE);
	assert_int_equal(smtp_reply_parse(text, n, 1000, &r, &used),
			 SMTP_REPLY_OK);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.dsn, "5.1.1");
	smtp_reply_clear(&r);
}

/* test_dsn - enhanced codes that count and that do not */
static void
test_dsn(void **unused_state)
{
	struct smtp_reply r;
	char    out[SMTP_REPLY_DSN_MAX];
	size_t  used;

	(void) unused_state;
	smtp_reply_init(&r);
	assert_int_equal(parse("550 5.1.10 null MX\r\n", 0, &r, &used), 1);
	assert_string_equal(r.dsn, "5.1.10");
	/* Class must match the reply code. */
	assert_int_equal(parse("450 5.1.1 odd\r\n", 0, &r, &used), 1);
	assert_string_equal(r.dsn, "");
	assert_int_equal(parse("250 Ok\n", 0, &r, &used), 1);
	assert_string_equal(r.dsn, "");
	assert_int_equal(parse("250\r\n", 0, &r, &used), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.dsn, "");
	assert_int_equal(parse("421 4.4.2 \r\n", 0, &r, &used), 1);
	assert_string_equal(r.dsn, "4.4.2");
	smtp_reply_clear(&r);

	assert_int_equal(smtp_reply_dsn("2.0.0 Ok", out, sizeof(out)), 0);
	assert_string_equal(out, "2.0.0");
	assert_int_equal(smtp_reply_dsn("5.1.1", out, sizeof(out)), 0);
	assert_int_equal(smtp_reply_dsn("3.1.1 x", out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_dsn("5.1234.1 x", out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_dsn("5..1 x", out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_dsn("5.1.1x", out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_dsn("5.1", out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_dsn("", out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_dsn("5.1.1", out, 3), -1);
}

/* test_control_chars - control bytes never reach the text */
static void
test_control_chars(void **unused_state)
{
	static const char text[] = "550 5.1.1 a\x1b[31m\0b\x7f\tc\r\n";
	struct smtp_reply r;
	size_t  used;

	(void) unused_state;
	smtp_reply_init(&r);
	assert_int_equal(smtp_reply_parse(text, sizeof(text) - 1, 0, &r, &used),
			 SMTP_REPLY_OK);
	assert_string_equal(r.text->data, "550 5.1.1 a?[31m?b?\tc");
	smtp_reply_clear(&r);
}

/* test_malformed - junk the parser must refuse */
static void
test_malformed(void **unused_state)
{
	static const char *const bad[] = {
		"hello there\r\n",
		"25\r\n",
		"2500 x\r\n",
		"250x\r\n",
		"099 x\r\n",
		"600 x\r\n",
		"250-a\r\n550 b\r\n",		/* code changes */
		"250-a\r\n\r\n",		/* empty line */
		"abc",				/* junk before the end */
		"250_",
		"\r\n",
		NULL,
	};
	const char *const *p;
	struct smtp_reply r;
	size_t  used;

	(void) unused_state;
	smtp_reply_init(&r);
	for (p = bad; *p; p++) {
		if (parse(*p, 0, &r, &used) != SMTP_REPLY_BAD)
			fail_msg("accepted: \"%s\"", *p);
	}
	smtp_reply_clear(&r);
}

/* test_limit - a reply longer than the limit, whole or in progress */
static void
test_limit(void **unused_state)
{
	struct smtp_reply r;
	char    buf[300];
	size_t  used;
	size_t  i;

	(void) unused_state;
	smtp_reply_init(&r);
	memcpy(buf, "250-", 4);
	for (i = 4; i < sizeof(buf); i++)
		buf[i] = 'x';
	/* No end of line within the limit. */
	assert_int_equal(smtp_reply_parse(buf, sizeof(buf), 100, &r, &used),
			 SMTP_REPLY_BAD);
	assert_int_equal(smtp_reply_parse(buf, 50, 100, &r, &used),
			 SMTP_REPLY_MORE);
	/* Whole lines, but too many of them. */
	for (i = 0; i + 8 <= sizeof(buf); i += 8)
		memcpy(buf + i, "250-ab\r\n", 8);
	assert_int_equal(smtp_reply_parse(buf, i, 100, &r, &used),
			 SMTP_REPLY_BAD);
	assert_int_equal(smtp_reply_parse(buf, 96, 100, &r, &used),
			 SMTP_REPLY_MORE);
	smtp_reply_clear(&r);
}

int
main(void)
{
	const struct CMUnitTest smtp_reply_tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_multi_line),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limit),
	};

	return (cmocka_run_group_tests(smtp_reply_tests, NULL, NULL));
}
