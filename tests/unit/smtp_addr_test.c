/*
 * smtp_addr_test - unit tests for lib/global/smtp_addr.c
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp_addr.h"
#include "strbuf.h"
#include "xmalloc.h"

/* parse_ok - parse and check the address and the rest; result bits */
static int
parse_ok(const char *arg, int flags, const char *want, const char *rest_want)
{
	char   *addr;
	const char *rest;
	const char *err;
	int     ret;

	ret = smtp_addr_parse(arg, flags, &addr, &rest, &err);
	if (ret < 0)
		fail_msg("\"%s\" rejected: %s", arg, err);
	assert_string_equal(addr, want);
	assert_string_equal(rest, rest_want);
	xfree(addr);
	return (ret);
}

/* parse_bad - parse must fail */
static void
parse_bad(const char *arg, int flags)
{
	char   *addr;
	const char *rest;
	const char *err = NULL;

	if (smtp_addr_parse(arg, flags, &addr, &rest, &err) >= 0)
		fail_msg("\"%s\" accepted as \"%s\"", arg, addr);
	assert_null(addr);
	assert_non_null(err);
}

/* test_plain - ordinary mailboxes */
static void
test_plain(void **unused_state)
{
	(void) unused_state;
	assert_int_equal(parse_ok("<a@b.c>", 0, "a@b.c", ""), 0);
	parse_ok("  <user.name+tag@Example.COM> SIZE=10", 0,
		 "user.name+tag@Example.COM", " SIZE=10");
	parse_ok("<x@localhost>", 0, "x@localhost", "");
	parse_ok("<a!#$%&'*+-/=?^_`{|}~@d-1.example>", 0,
		 "a!#$%&'*+-/=?^_`{|}~@d-1.example", "");
	parse_ok("<1@2.3>", 0, "1@2.3", "");
}

/* test_null - "<>" only where allowed */
static void
test_null(void **unused_state)
{
	(void) unused_state;
	assert_int_equal(parse_ok("<>", SMTP_ADDR_NULL_OK, "", ""),
			 SMTP_ADDR_F_NULL);
	parse_ok("<> BODY=8BITMIME", SMTP_ADDR_NULL_OK, "", " BODY=8BITMIME");
	parse_bad("<>", 0);
	parse_bad("<>", SMTP_ADDR_POSTMASTER_OK);
}

/* test_postmaster - "<postmaster>" without a domain in RCPT only */
static void
test_postmaster(void **unused_state)
{
	(void) unused_state;
	assert_int_equal(parse_ok("<Postmaster>", SMTP_ADDR_POSTMASTER_OK,
				  "Postmaster", ""), SMTP_ADDR_F_NODOMAIN);
	parse_bad("<postmaster>", 0);
	parse_bad("<postmaster>", SMTP_ADDR_NULL_OK);
	parse_bad("<postmasterx>", SMTP_ADDR_POSTMASTER_OK);
	parse_bad("<user>", SMTP_ADDR_POSTMASTER_OK);
}

/* test_quoted - quoted-string local parts */
static void
test_quoted(void **unused_state)
{
	int     ret;

	(void) unused_state;
	ret = parse_ok("<\"john doe\"@example.com>", 0,
		       "\"john doe\"@example.com", "");
	assert_true(ret & SMTP_ADDR_F_QUOTED);
	parse_ok("<\"a\\\"b\"@example.com>", 0, "\"a\\\"b\"@example.com", "");
	parse_ok("<\"user@other\"@example.com>", 0,
		 "\"user@other\"@example.com", "");
	parse_ok("<\"\"@example.com>", 0, "\"\"@example.com", "");
	parse_bad("<\"unterminated@example.com>", 0);
	parse_bad("<\"a\"b@example.com>", 0);
	parse_bad("<\"tab\there\"@example.com>", 0);
	parse_bad("<\"bad\\\x01\"@example.com>", 0);
}

/* test_routes - source routes are dropped and flagged */
static void
test_routes(void **unused_state)
{
	int     ret;

	(void) unused_state;
	ret = parse_ok("<@a.example,@b.example:user@c.example>", 0,
		       "user@c.example", "");
	assert_true(ret & SMTP_ADDR_F_ROUTE);
	ret = parse_ok("<@example.com:user@other.org>", 0,
		       "user@other.org", "");
	assert_true(ret & SMTP_ADDR_F_ROUTE);
	parse_ok("<@[192.0.2.1]:u@d.example>", 0, "u@d.example", "");
	parse_bad("<@a.example user@c.example>", 0);
	parse_bad("<@:user@c.example>", 0);
	parse_bad("<@a.example,user@c.example>", 0);
	parse_bad("<@a..b:user@c.example>", 0);
	parse_bad("<@a.example,@:u@c>", 0);
}

/* test_literals - address literals */
static void
test_literals(void **unused_state)
{
	int     ret;

	(void) unused_state;
	ret = parse_ok("<u@[192.0.2.1]>", 0, "u@[192.0.2.1]", "");
	assert_true(ret & SMTP_ADDR_F_LITERAL);
	parse_ok("<u@[IPv6:2001:db8::1]>", 0, "u@[IPv6:2001:db8::1]", "");
	parse_ok("<u@[ipv6:::1]>", 0, "u@[ipv6:::1]", "");
	parse_bad("<u@[192.0.2.256]>", 0);
	parse_bad("<u@[1.2.3]>", 0);
	parse_bad("<u@[IPv6:zz::1]>", 0);
	parse_bad("<u@[x-tag:stuff]>", 0);
	parse_bad("<u@[]>", 0);
	parse_bad("<u@[192.0.2.1>", 0);
}

/* test_syntax - malformed paths */
static void
test_syntax(void **unused_state)
{
	char    longlocal[700];
	char    longlabel[100];

	(void) unused_state;
	parse_bad("", 0);
	parse_bad("   ", 0);
	parse_bad("a@b.c", 0);			/* no brackets */
	parse_bad("<a@b.c", 0);
	parse_bad("<a@>", 0);
	parse_bad("<@b.c>", 0);
	parse_bad("<a@@b.c>", 0);
	parse_bad("<a..b@c.d>", 0);
	parse_bad("<.a@c.d>", 0);
	parse_bad("<a.@c.d>", 0);
	parse_bad("<a b@c.d>", 0);
	parse_bad("<a@b..c>", 0);
	parse_bad("<a@.b.c>", 0);
	parse_bad("<a@b.c.>", 0);
	parse_bad("<a@-b.c>", 0);
	parse_bad("<a@b-.c>", 0);
	parse_bad("<a@b_c.d>", 0);
	parse_bad("<a(comment)@b.c>", 0);
	parse_bad("<a\x01@b.c>", 0);
	parse_bad("<a@b.c\x7f>", 0);
	parse_bad("<user>", 0);
	memset(longlocal, 'x', sizeof(longlocal));
	memcpy(longlocal, "<", 1);
	strcpy(longlocal + 600, "@example.com>");
	parse_bad(longlocal, 0);
	memset(longlabel, 'y', sizeof(longlabel));
	memcpy(longlabel, "<a@", 3);
	strcpy(longlabel + 70, ".com>");
	parse_bad(longlabel, 0);
}

/* test_trailing_garbage - ">" must be followed by what the caller wants */
static void
test_rest(void **unused_state)
{
	(void) unused_state;
	/* The parser stops after ">"; the caller checks the rest. */
	parse_ok("<a@b.c>x", 0, "a@b.c", "x");
	parse_ok("<a@b.c> SIZE=1 BODY=7BIT", 0, "a@b.c", " SIZE=1 BODY=7BIT");
}

/* test_bare - tolerated only with SMTP_ADDR_BARE_OK */
static void
test_bare(void **unused_state)
{
	int     ret;

	(void) unused_state;
	ret = parse_ok("a@b.c SIZE=5", SMTP_ADDR_BARE_OK, "a@b.c", " SIZE=5");
	assert_true(ret & SMTP_ADDR_F_BARE);
	parse_bad("a@b.c", 0);
	parse_bad("a@b.c>", SMTP_ADDR_BARE_OK);
}

/* test_utf8 - only with SMTPUTF8, and only well-formed */
static void
test_utf8(void **unused_state)
{
	int     ret;

	(void) unused_state;
	ret = parse_ok("<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", SMTP_ADDR_UTF8,
		       "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "");
	assert_true(ret & SMTP_ADDR_F_UTF8);
	parse_ok("<\"\xe2\x82\xac uro\"@example.com>", SMTP_ADDR_UTF8,
		 "\"\xe2\x82\xac uro\"@example.com", "");
	parse_bad("<j\xc3\xb6rg@example.com>", 0);
	parse_bad("<a@b\xc3\xbc" "cher.example>", 0);
	parse_bad("<j\xc3@example.com>", SMTP_ADDR_UTF8);
	parse_bad("<j\xc0\xaf@example.com>", SMTP_ADDR_UTF8);	/* overlong */
	/* a surrogate */
	parse_bad("<j\xed\xa0\x80@example.com>", SMTP_ADDR_UTF8);
	parse_bad("<j\xff@example.com>", SMTP_ADDR_UTF8);
	assert_int_equal(smtp_addr_utf8_valid("abc\xc3\xb6", 5), 1);
	assert_int_equal(smtp_addr_utf8_valid("\xf4\x90\x80\x80", 4), 0);
	assert_int_equal(smtp_addr_utf8_valid("\xe2\x82", 2), 0);
}

/* test_domain - the domain helper */
static void
test_domain(void **unused_state)
{
	(void) unused_state;
	assert_string_equal(smtp_addr_domain("a@b.c"), "b.c");
	assert_string_equal(smtp_addr_domain("\"x@y\"@b.c"), "b.c");
	assert_string_equal(smtp_addr_domain("\"x\\\"@y\"@z.example"),
			    "z.example");
	assert_null(smtp_addr_domain("postmaster"));
	assert_null(smtp_addr_domain(""));
	assert_null(smtp_addr_domain("\"a@b\""));
}

/* test_tricks - %, ! and quoted @ in the local part */
static void
test_tricks(void **unused_state)
{
	struct strbuf *sb = strbuf_new(16, 0);

	(void) unused_state;
	assert_int_equal(smtp_addr_tricky("user%other@example.com"), 1);
	assert_int_equal(smtp_addr_tricky("other!user@example.com"), 1);
	assert_int_equal(smtp_addr_tricky("\"user@other\"@example.com"), 1);
	assert_int_equal(smtp_addr_tricky("\"user\\@other\"@example.com"), 1);
	assert_int_equal(smtp_addr_tricky("\"us%er\"@example.com"), 1);
	assert_int_equal(smtp_addr_tricky("user@example.com"), 0);
	assert_int_equal(smtp_addr_tricky("user@ex%ample.com"), 0);
	assert_int_equal(smtp_addr_tricky("\"john doe\"@example.com"), 0);
	assert_int_equal(smtp_addr_tricky("postmaster"), 0);
	assert_int_equal(smtp_addr_local("\"a\\\"b c\"@d", sb), 0);
	assert_string_equal(sb->data, "a\"b c");
	strbuf_free(sb);
}

int
main(void)
{
	const struct CMUnitTest smtp_addr_tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_postmaster),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_rest),
		cmocka_unit_test(test_bare),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_tricks),
	};

	return (cmocka_run_group_tests_name("smtp_addr", smtp_addr_tests,
					    NULL, NULL));
}
