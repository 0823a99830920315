/*
 * sendmail_addr_test - unit tests for cli/sendmail_addr.c
 *
 * The module lives in cli/ (it belongs to the sendmail program, not to
 * libsendarix), so it is compiled into this test directly.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../cli/sendmail_addr.c"

const char *sendmail_myorigin = "origin.example";

/* list_is - parse text, expect count and the addresses, comma-joined */
static void
list_is(const char *text, int count, const char *want)
{
	struct sendmail_env env;
	struct strbuf *got = strbuf_new(128, 0);
	size_t  i;
	int     n;

	memset(&env, 0, sizeof(env));
	n = sendmail_addr_list(text, strlen(text), &env);
	for (i = 0; i < env.nrcpt; i++)
		strbuf_printf(got, "%s%s", i ? "," : "", env.rcpts[i]);
	if (n != count || strcmp(got->data, want) != 0)
		fail_msg("\"%s\": got %d [%s], want %d [%s]", text, n,
			 got->data, count, want);
	sendmail_env_clear(&env);
	strbuf_free(got);
}

/* test_simple - plain addresses and lists */
static void
test_simple(void **unused_state)
{
	(void) unused_state;
	list_is("a@example.com", 1, "a@example.com");
	list_is("  a@example.com  ", 1, "a@example.com");
	list_is("a@x.org, b@y.org,c@z.org", 3, "a@x.org,b@y.org,c@z.org");
	list_is("<a@x.org>", 1, "a@x.org");
	list_is("", 0, "");
	list_is(" , ,, ", 0, "");
}

/* test_name_addr - display names, quotes, comments */
static void
test_name_addr(void **unused_state)
{
	(void) unused_state;
	list_is("Alice Example <alice@example.com>", 1, "alice@example.com");
	list_is("\"Bob, the builder\" <bob@example.com>, c@d.e", 2,
		"bob@example.com,c@d.e");
	list_is("c@d.e (Carol, (nested) comment), e@f.g", 2, "c@d.e,e@f.g");
	list_is("\"q\\\"uote\" <q@x.y>", 1, "q@x.y");
	list_is("\"john doe\"@example.com", 1, "\"john doe\"@example.com");
	list_is("Name <a@b.c> (trailing)", 1, "a@b.c");
}

/* test_groups - group syntax */
static void
test_groups(void **unused_state)
{
	(void) unused_state;
	list_is("team: a@x.y, Bee <b@x.y>;", 2, "a@x.y,b@x.y");
	list_is("undisclosed-recipients:;", 0, "");
	list_is("g1: a@x.y;, g2: b@x.y;, c@x.y", 3, "a@x.y,b@x.y,c@x.y");
}

/* test_folded - continuation lines inside the value */
static void
test_folded(void **unused_state)
{
	(void) unused_state;
	list_is(" a@x.y,\r\n  B <b@x.y>,\r\n\tc@x.y\r\n", 3, "a@x.y,b@x.y,c@x.y");
	list_is("a@x.y,\n b@x.y", 2, "a@x.y,b@x.y");
}

/* test_qualify - bare names, routes, the null address, duplicates */
static void
test_qualify(void **unused_state)
{
	char   *p;

	(void) unused_state;
	list_is("alice", 1, "alice@origin.example");
	list_is("alice, bob@x.y", 2, "alice@origin.example,bob@x.y");
	list_is("<@relay1,@relay2:u@z.example>", 1, "u@z.example");
	list_is("<>", 0, "");
	list_is("a@x.y, a@x.y, A <a@x.y>", 1, "a@x.y");
	p = sendmail_addr_qualify(" <> ");
	assert_string_equal(p, "");
	free(p);
	p = sendmail_addr_qualify("root");
	assert_string_equal(p, "root@origin.example");
	free(p);
	p = sendmail_addr_qualify("<u@h.example>");
	assert_string_equal(p, "u@h.example");
	free(p);
}

/* test_malformed - bad input is refused or survives without a crash */
static void
test_malformed(void **unused_state)
{
	static const char *const junk[] = {
		"\"unterminated", "(unterminated comment", "<unterminated",
		"a@b>", ">>>", "<<<>>>", ":::;;;", "\"\\", "(\\", "((((",
		"<@only-route:>", "@", "<@x", "\\", ",\"", "a\"b\"c@d",
	};
	struct sendmail_env env;
	char    bin[] = {'a', 1, '@', 'b', 0};
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		memset(&env, 0, sizeof(env));
		(void) sendmail_addr_list(junk[i], strlen(junk[i]), &env);
		sendmail_env_clear(&env);
	}
	/* Control characters: refused. */
	memset(&env, 0, sizeof(env));
	assert_int_equal(sendmail_addr_list(bin, strlen(bin), &env), -1);
	assert_int_equal(env.nrcpt, 0);
	sendmail_env_clear(&env);
	assert_null(sendmail_addr_qualify("a\tb@c"));
	assert_null(sendmail_addr_qualify("a\r\nRCPT@c"));
	/* A value with a NUL in its length: stops nothing, crashes nothing. */
	memset(&env, 0, sizeof(env));
	assert_int_equal(sendmail_addr_list("a@b\0c@d", 7, &env), -1);
	sendmail_env_clear(&env);
}

/* test_limit - the recipient limit is enforced */
static void
test_limit(void **unused_state)
{
	struct sendmail_env env;
	char    buf[64];
	size_t  i;

	(void) unused_state;
	memset(&env, 0, sizeof(env));
	for (i = 0; i < SENDMAIL_RCPT_MAX; i++) {
		snprintf(buf, sizeof(buf), "u%zu@x.y", i);
		assert_int_equal(sendmail_addr_list(buf, strlen(buf), &env), 1);
	}
	assert_int_equal(sendmail_addr_list("one@more.y", 10, &env), -1);
	assert_int_equal(env.nrcpt, SENDMAIL_RCPT_MAX);
	sendmail_env_clear(&env);
}

/* main - run the cases */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_name_addr),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_folded),
		cmocka_unit_test(test_qualify),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limit),
	};

	return (cmocka_run_group_tests_name("sendmail_addr", tests, NULL,
					    NULL));
}
