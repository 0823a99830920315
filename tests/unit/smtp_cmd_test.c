/*
 * smtp_cmd_test - unit tests for lib/global/smtp_cmd.c and smtp_data.c
 *
 * The command grammar smtpd and the sandbox share (line split, HELO,
 * paths, parameters, SIZE, BDAT) and the DATA/BDAT content scanner:
 * end detection, dot-unstuffing, bare CR/LF normalised or kept raw.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "strbuf.h"
#include "xmalloc.h"

/* test_split - verb, argument, blanks, NUL */
static void
test_split(void **unused_state)
{
	char    line[] = "  mail\t FROM:<a@b>  SIZE=10 \t";
	char    nul[] = "NOOP\0x";
	char   *verb;
	char   *arg;
	size_t  len;

	(void) unused_state;
	assert_int_equal(smtp_cmd_split(line, strlen(line), &verb, &len,
					&arg), 0);
	assert_string_equal(verb, "mail");
	assert_int_equal(len, 4);
	assert_string_equal(arg, "FROM:<a@b>  SIZE=10");
	assert_int_equal(smtp_cmd_split(nul, 6, &verb, &len, &arg), -1);
}

/* test_helo - one printable word */
static void
test_helo(void **unused_state)
{
	(void) unused_state;
	assert_int_equal(smtp_cmd_helo("client.example"), 0);
	assert_int_equal(smtp_cmd_helo(""), SMTP_CMD_HELO_EMPTY);
	assert_int_equal(smtp_cmd_helo("two words"), SMTP_CMD_HELO_BAD);
	assert_int_equal(smtp_cmd_helo("h\xc3\xa9"), SMTP_CMD_HELO_BAD);
}

/* test_path - MAIL FROM and RCPT TO arguments */
static void
test_path(void **unused_state)
{
	const char *params;
	const char *err;
	char   *addr;

	(void) unused_state;
	assert_true(smtp_cmd_path("from: <a@b.org>  SIZE=1", "FROM:",
				  SMTP_ADDR_NULL_OK, &addr, &params, &err) >= 0);
	assert_string_equal(addr, "a@b.org");
	assert_string_equal(params, "SIZE=1");
	xfree(addr);
	assert_int_equal(smtp_cmd_path("<a@b.org>", "TO:", 0, &addr, &params,
				       &err), SMTP_CMD_PATH_SYNTAX);
	assert_int_equal(smtp_cmd_path("TO:<a@b.org>X", "TO:", 0, &addr,
				       &params, &err), SMTP_CMD_PATH_BAD);
	assert_null(addr);
	assert_int_equal(smtp_cmd_path("TO:<j\xc3\xb8@b.org>", "TO:", 0, &addr,
				       &params, &err), SMTP_CMD_PATH_UTF8);
	assert_true(smtp_cmd_path("TO:<j\xc3\xb8@b.org>", "TO:",
				  SMTP_ADDR_UTF8, &addr, &params, &err) >= 0);
	xfree(addr);
	assert_int_equal(smtp_cmd_has_param("FROM:<a@b> smtputf8", "SMTPUTF8"),
			 1);
	assert_int_equal(smtp_cmd_has_param("FROM:<a@b>", "SMTPUTF8"), 0);
}

/* test_params - parameter words, SIZE, BDAT */
static void
test_params(void **unused_state)
{
	char    buf[] = "SIZE=10  BODY=8BITMIME SMTPUTF8";
	char   *cursor = buf;
	char   *value;
	char   *p;
	long long size;
	unsigned long long n;
	int     last;

	(void) unused_state;
	p = smtp_cmd_param(&cursor, &value);
	assert_string_equal(p, "SIZE");
	assert_string_equal(value, "10");
	p = smtp_cmd_param(&cursor, &value);
	assert_string_equal(p, "BODY");
	assert_string_equal(value, "8BITMIME");
	p = smtp_cmd_param(&cursor, &value);
	assert_string_equal(p, "SMTPUTF8");
	assert_null(value);
	assert_null(smtp_cmd_param(&cursor, &value));

	assert_int_equal(smtp_cmd_size("1024", &size), 0);
	assert_int_equal(size, 1024);
	assert_int_equal(smtp_cmd_size("10k", &size), -1);
	assert_int_equal(smtp_cmd_size("-1", &size), -1);
	assert_int_equal(smtp_cmd_size("99999999999999999999", &size), -1);

	assert_int_equal(smtp_cmd_bdat("6 last", &n, &last), 0);
	assert_int_equal(n, 6);
	assert_int_equal(last, 1);
	assert_int_equal(smtp_cmd_bdat("0", &n, &last), 0);
	assert_int_equal(last, 0);
	assert_int_equal(smtp_cmd_bdat("6 LASTX", &n, &last), -1);
	assert_int_equal(smtp_cmd_bdat("x", &n, &last), -1);
	assert_int_equal(smtp_cmd_bdat("99999999999999999999999", &n, &last),
			 -1);
}

/* collect - the scanner's output */
static void
collect(void *ctx, const char *p, size_t n)
{
	strbuf_append(ctx, p, n);
}

/* scan - DATA input, cut at every "step" bytes; bytes taken */
static size_t
scan(const char *in, int flags, size_t step, struct strbuf *out, int *bare,
     int *done)
{
	struct smtp_data sd;
	size_t  n = strlen(in);
	size_t  off = 0;
	size_t  k;

	strbuf_reset(out);
	smtp_data_init(&sd, SMTP_DATA_DOT, flags, collect, NULL, out);
	*done = 0;
	while (off < n && !*done) {
		k = n - off < step ? n - off : step;
		off += smtp_data_scan(&sd, in + off, k, done);
	}
	*bare = sd.bare;
	return (off);
}

/* test_data - end detection, dots, bare CR/LF */
static void
test_data(void **unused_state)
{
	struct strbuf *out = strbuf_new(256, 0);
	const char *in = "a\r\n..b\r\n.\nc\r\n\n.\r\nd\r\n.\r\nNEXT";
	size_t  step;
	int     bare;
	int     done;

	(void) unused_state;
	for (step = 1; step <= strlen(in); step++) {
		/* ".\n" and "\n.\r\n" do not end DATA: smuggling. */
		assert_int_equal(scan(in, 0, step, out, &bare, &done),
				 strlen(in) - 4);
		assert_int_equal(done, 1);
		assert_int_equal(bare, 1);
		assert_string_equal(STRBUF_STR(out),
			"a\r\n.b\r\n.\r\nc\r\n\r\n.\r\nd\r\n");
		assert_int_equal(scan(in, SMTP_DATA_F_RAW, step, out, &bare,
				      &done), strlen(in) - 4);
		assert_string_equal(STRBUF_STR(out),
			"a\r\n.b\r\n.\nc\r\n\n.\r\nd\r\n");
	}
	assert_int_equal(scan(".\r\n", 0, 1, out, &bare, &done), 3);
	assert_int_equal(done, 1);
	assert_int_equal(STRBUF_LEN(out), 0);
	strbuf_free(out);
}

/* test_chunk - BDAT: no dots, final CRLF */
static void
test_chunk(void **unused_state)
{
	struct strbuf *out = strbuf_new(256, 0);
	struct smtp_data sd;
	int     done;

	(void) unused_state;
	smtp_data_init(&sd, SMTP_DATA_CHUNK, 0, collect, NULL, out);
	assert_int_equal(smtp_data_scan(&sd, ".\r\n.x\r", 6, &done), 6);
	assert_int_equal(done, 0);
	smtp_data_end(&sd);
	assert_string_equal(STRBUF_STR(out), ".\r\n.x\r\n");
	assert_int_equal(sd.bare, 1);
	strbuf_free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_chunk),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
