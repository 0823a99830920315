/*
 * matchlist_test - unit tests for lib/util/matchlist.c
 *
 * Uses the table fixtures in tests/unit/data/map/; run from the top of
 * the tree.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "map.h"
#include "strbuf.h"

#define DATA	"tests/unit/data/map/"

/* addr_list - a list that must parse */
static struct matchlist *
addr_list(const char *text)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct matchlist *ml = matchlist_addr(text, err);

	if (ml == NULL)
		fail_msg("matchlist_addr(\"%s\"): %s", text, STRBUF_STR(err));
	strbuf_free(err);
	return (ml);
}

/* domain_list - a list that must parse */
static struct matchlist *
domain_list(const char *text)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct matchlist *ml = matchlist_domain(text, err);

	if (ml == NULL)
		fail_msg("matchlist_domain(\"%s\"): %s", text, STRBUF_STR(err));
	strbuf_free(err);
	return (ml);
}

/* expect_match - one key, one answer */
static void
expect_match(struct matchlist *ml, const char *key, int want)
{
	int     got = matchlist_match(ml, key);

	if (got != want)
		fail_msg("key \"%s\": got %d, want %d", key, got, want);
}

static void
test_addr_literals(void **unused_state)
{
	struct matchlist *ml;

	(void) unused_state;
	ml = addr_list("127.0.0.0/8 [::1]/128");
	expect_match(ml, "127.0.0.1", 1);
	expect_match(ml, "127.255.0.9", 1);
	expect_match(ml, "[127.0.0.1]", 1);
	expect_match(ml, "::ffff:127.0.0.1", 1);
	expect_match(ml, "::1", 1);
	expect_match(ml, "[::1]", 1);
	expect_match(ml, "::2", 0);
	expect_match(ml, "10.0.0.1", 0);
	expect_match(ml, "not an address", 0);
	expect_match(ml, "", 0);
	matchlist_free(ml);

	ml = addr_list("  ::1,10.0.0.0/8 ,, 2001:db8::/32\t192.0.2.7\n"
		       "dead:beef::1 [2001:db8:ffff::]/48");
	expect_match(ml, "::1", 1);
	expect_match(ml, "10.9.8.7", 1);
	expect_match(ml, "2001:db8::25", 1);
	expect_match(ml, "192.0.2.7", 1);
	expect_match(ml, "192.0.2.8", 0);
	expect_match(ml, "dead:beef::1", 1);
	expect_match(ml, "dead:beef::2", 0);
	matchlist_free(ml);

	/* An empty list matches nothing. */
	ml = addr_list("");
	expect_match(ml, "127.0.0.1", 0);
	matchlist_free(ml);
	ml = addr_list(NULL);
	expect_match(ml, "127.0.0.1", 0);
	matchlist_free(ml);
	assert_null(matchlist_free(NULL));
	assert_int_equal(matchlist_match(NULL, "1.2.3.4"), 0);
}

static void
test_addr_tables(void **unused_state)
{
	struct matchlist *ml;

	(void) unused_state;
	ml = addr_list("cidr:" DATA "cidr.in, inline:{ 198.51.100.1, "
		       "2001:db8::5=x }");
	expect_match(ml, "10.1.2.3", 1);
	expect_match(ml, "[10.1.2.3]", 1);
	expect_match(ml, "198.51.100.1", 1);
	expect_match(ml, "[198.51.100.1]", 1);
	expect_match(ml, "2001:db8::5", 1);	/* cidr doc-v6 first */
	expect_match(ml, "2001:4860::1", 0);
	matchlist_free(ml);

	/* A broken table is "try again", not "no match". */
	ml = addr_list("10.0.0.0/8 cidr:/nonexistent/cidr 192.0.2.0/24");
	expect_match(ml, "10.0.0.1", 1);
	expect_match(ml, "192.0.2.1", -1);
	matchlist_free(ml);
}

static void
test_addr_negation(void **unused_state)
{
	struct matchlist *ml;

	(void) unused_state;
	ml = addr_list("!192.168.1.7 192.168.0.0/16 !inline:{10.0.0.1} "
		       "10.0.0.0/8");
	expect_match(ml, "192.168.1.7", 0);
	expect_match(ml, "192.168.1.8", 1);
	expect_match(ml, "10.0.0.1", 0);
	expect_match(ml, "10.0.0.2", 1);
	matchlist_free(ml);
}

static void
test_addr_bad(void **unused_state)
{
	static const char *bad[] = {
		"300.1.1.1", "10.0.0.0/40", "foo:bar", "regexp:/x",
		"inline:{a", "inline:{a}}", "example.com", "127.0.0.1 !",
		"/nonexistent/file", "::1 [::1",
	};
	struct strbuf *err = strbuf_new(64, 0);
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strbuf_reset(err);
		if (matchlist_addr(bad[i], err) != NULL)
			fail_msg("accepted \"%s\"", bad[i]);
		if (STRBUF_LEN(err) == 0)
			fail_msg("no reason for \"%s\"", bad[i]);
	}
	strbuf_free(err);
}

static void
test_domain_literals(void **unused_state)
{
	struct matchlist *ml;

	(void) unused_state;
	ml = domain_list("Example.COM, .example.net. other.example");
	expect_match(ml, "example.com", 1);
	expect_match(ml, "EXAMPLE.com.", 1);
	expect_match(ml, "sub.example.com", 0);
	expect_match(ml, "example.net", 0);
	expect_match(ml, "a.example.net", 1);
	expect_match(ml, "A.B.Example.Net.", 1);
	expect_match(ml, "xexample.net", 0);
	expect_match(ml, "other.example", 1);
	expect_match(ml, "example", 0);
	expect_match(ml, "", 0);
	expect_match(ml, ".", 0);
	matchlist_free(ml);

	ml = domain_list("!bad.example.org .example.org");
	expect_match(ml, "bad.example.org", 0);
	expect_match(ml, "good.example.org", 1);
	matchlist_free(ml);
}

static void
test_domain_tables(void **unused_state)
{
	struct matchlist *ml;

	(void) unused_state;
	ml = domain_list("inline:{ .parent.example, exact.example=yes }");
	expect_match(ml, "exact.example", 1);
	expect_match(ml, "EXACT.EXAMPLE.", 1);
	expect_match(ml, "sub.exact.example", 0);
	expect_match(ml, "a.b.parent.example", 1);
	expect_match(ml, "parent.example", 0);
	expect_match(ml, "other.example", 0);
	matchlist_free(ml);

	ml = domain_list("texthash:" DATA "texthash.in");
	expect_match(ml, "example.com", 1);
	expect_match(ml, "mx.example.com", 0);
	matchlist_free(ml);

	ml = domain_list("example.com hash:/nonexistent/table");
	expect_match(ml, "example.com", 1);
	expect_match(ml, "example.org", -1);
	matchlist_free(ml);
}

static void
test_domain_bad(void **unused_state)
{
	static const char *bad[] = {
		"regexp:/x", "nocolon.example bogus:x", "inline:{a",
		"!", ".", "/nonexistent/file",
	};
	struct strbuf *err = strbuf_new(64, 0);
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strbuf_reset(err);
		if (matchlist_domain(bad[i], err) != NULL)
			fail_msg("accepted \"%s\"", bad[i]);
		if (STRBUF_LEN(err) == 0)
			fail_msg("no reason for \"%s\"", bad[i]);
	}
	strbuf_free(err);
}

/* string_list - a string list that must parse */
static struct matchlist *
string_list(const char *text)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct matchlist *ml = matchlist_string(text, err);

	if (ml == NULL)
		fail_msg("matchlist_string(\"%s\"): %s", text, STRBUF_STR(err));
	strbuf_free(err);
	return (ml);
}

static void
test_string_lists(void **unused_state)
{
	struct matchlist *ml;

	(void) unused_state;
	/* authorized_submit_users: names, exclusions and tables. */
	ml = string_list("static:anyone");
	expect_match(ml, "nobody", 1);
	expect_match(ml, "unknown", 1);
	matchlist_free(ml);

	ml = string_list("!nobody, static:anyone");
	expect_match(ml, "nobody", 0);
	expect_match(ml, "NoBody", 0);
	expect_match(ml, "root", 1);
	matchlist_free(ml);

	ml = string_list("root, Alice inline:{bob}");
	expect_match(ml, "root", 1);
	expect_match(ml, "alice", 1);
	expect_match(ml, "bob", 1);
	expect_match(ml, "bob.example", 0);
	expect_match(ml, "carol", 0);
	matchlist_free(ml);

	ml = string_list("root, !static:all");
	expect_match(ml, "root", 1);
	expect_match(ml, "daemon", 0);
	matchlist_free(ml);

	ml = string_list("");
	expect_match(ml, "root", 0);
	matchlist_free(ml);
}

static void
test_file_items(void **unused_state)
{
	char    path[] = "/tmp/matchlist_test_XXXXXX";
	char    list[128];
	int     fd = mkstemp(path);
	FILE   *fp;
	struct matchlist *ml;
	struct strbuf *err = strbuf_new(64, 0);

	(void) unused_state;
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fputs("# trusted networks\n192.0.2.0/24, 198.51.100.0/24\n"
	      "2001:db8::/32\n", fp);
	fclose(fp);
	snprintf(list, sizeof(list), "127.0.0.1 %s", path);
	ml = addr_list(list);
	expect_match(ml, "127.0.0.1", 1);
	expect_match(ml, "198.51.100.9", 1);
	expect_match(ml, "2001:db8::1", 1);
	expect_match(ml, "203.0.113.1", 0);
	matchlist_free(ml);

	/* A bad line names the file and line. */
	fp = fopen(path, "w");
	fputs("192.0.2.0/24\n\nbogus\n", fp);
	fclose(fp);
	assert_null(matchlist_addr(list, err));
	assert_non_null(strstr(STRBUF_STR(err), "line 3"));
	unlink(path);
	strbuf_free(err);
}

int
main(void)
{
	const struct CMUnitTest matchlist_tests[] = {
		cmocka_unit_test(test_addr_literals),
		cmocka_unit_test(test_addr_tables),
		cmocka_unit_test(test_addr_negation),
		cmocka_unit_test(test_addr_bad),
		cmocka_unit_test(test_domain_literals),
		cmocka_unit_test(test_domain_tables),
		cmocka_unit_test(test_domain_bad),
		cmocka_unit_test(test_string_lists),
		cmocka_unit_test(test_file_items),
	};

	return (cmocka_run_group_tests_name("matchlist", matchlist_tests,
					    NULL, NULL));
}
