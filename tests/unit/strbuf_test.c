/*
 * strbuf_test - unit tests for lib/util/strbuf.c
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strbuf.h"

/* test_append - bytes, strings, chars, NUL bytes inside */
static void
test_append(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);

	(void) unused_state;
	assert_int_equal(strbuf_appends(sb, "abc"), 0);
	assert_int_equal(strbuf_append(sb, "\0x", 2), 0);
	assert_int_equal(strbuf_appendc(sb, 'y'), 0);
	assert_int_equal(sb->len, 6);
	assert_memory_equal(sb->data, "abc\0xy", 6);
	assert_int_equal(sb->data[6], 0);
	strbuf_free(sb);
}

/* test_grow - many appends keep content and NUL */
static void
test_grow(void **unused_state)
{
	struct strbuf *sb = strbuf_new(1, 0);
	int     i;

	(void) unused_state;
	for (i = 0; i < 10000; i++)
		assert_int_equal(strbuf_appendc(sb, 'a' + i % 26), 0);
	assert_int_equal(sb->len, 10000);
	for (i = 0; i < 10000; i++)
		assert_int_equal(sb->data[i], 'a' + i % 26);
	assert_int_equal(sb->data[10000], 0);
	strbuf_free(sb);
}

/* test_limit - appends past the limit fail and change nothing */
static void
test_limit(void **unused_state)
{
	struct strbuf *sb = strbuf_new(4, 8);

	(void) unused_state;
	assert_int_equal(strbuf_appends(sb, "12345678"), 0);
	assert_int_equal(strbuf_appendc(sb, '9'), -1);
	assert_int_equal(strbuf_printf(sb, "%d", 5), -1);
	assert_int_equal(strbuf_append(sb, "x", 1), -1);
	assert_int_equal(sb->len, 8);
	assert_string_equal(sb->data, "12345678");
	assert_int_equal(strbuf_sets(sb, "123456789"), -1);
	assert_string_equal(sb->data, "12345678");
	strbuf_free(sb);
}

/* test_printf - formatted appends, short and long */
static void
test_printf(void **unused_state)
{
	struct strbuf *sb = strbuf_new(2, 0);
	char    big[3000];

	(void) unused_state;
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(strbuf_printf(sb, "%s=%d;", "n", 42), 0);
	assert_int_equal(strbuf_printf(sb, "%s", big), 0);
	assert_int_equal(sb->len, 5 + sizeof(big) - 1);
	assert_memory_equal(sb->data, "n=42;", 5);
	assert_int_equal(sb->data[sb->len], 0);
	strbuf_free(sb);
}

/* test_consume_truncate - drop from the front and the back */
static void
test_consume_truncate(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);
	char   *p;
	size_t  len;

	(void) unused_state;
	strbuf_sets(sb, "hello world");
	strbuf_consume(sb, 6);
	assert_string_equal(sb->data, "world");
	strbuf_truncate(sb, 3);
	assert_string_equal(sb->data, "wor");
	strbuf_truncate(sb, 10);
	assert_string_equal(sb->data, "wor");
	strbuf_consume(sb, 100);
	assert_int_equal(sb->len, 0);
	strbuf_sets(sb, "keep");
	p = strbuf_steal(sb, &len);
	assert_int_equal(len, 4);
	assert_string_equal(p, "keep");
	assert_int_equal(sb->len, 0);
	assert_int_equal(strbuf_appends(sb, "again"), 0);
	assert_string_equal(sb->data, "again");
	free(p);
	assert_null(strbuf_free(sb));
	assert_null(strbuf_free(NULL));
}

/* test_setf - replace with formatted text; NULL is a no-op */
static void
test_setf(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);

	(void) unused_state;
	strbuf_sets(sb, "old text");
	assert_int_equal(strbuf_setf(sb, "%s, line %d", "main.cf", 3), 0);
	assert_string_equal(sb->data, "main.cf, line 3");
	assert_int_equal(strbuf_setf(NULL, "ignored %d", 1), 0);
	strbuf_free(sb);
}

int
main(void)
{
	const struct CMUnitTest strbuf_tests[] = {
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_consume_truncate),
		cmocka_unit_test(test_setf),
	};

	return (cmocka_run_group_tests_name("strbuf", strbuf_tests, NULL, NULL));
}
