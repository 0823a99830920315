/*
 * submit_acl_test - unit tests for lib/global/submit_acl.c
 *
 * authorized_submit_users and local_login_sender_maps as cleanup and
 * sendmail ask them; run from the top of the tree.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"
#include "submit_acl.h"

/* acl_new - policy that must parse */
static struct submit_acl *
acl_new(const char *users, const char *maps)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct submit_acl *acl = submit_acl_new(users, maps, "origin.example",
						err);

	if (acl == NULL)
		fail_msg("submit_acl_new(\"%s\", \"%s\"): %s", users, maps,
			 STRBUF_STR(err));
	strbuf_free(err);
	return (acl);
}

static void
test_defaults_allow_everything(void **unused_state)
{
	struct submit_acl *acl = acl_new("static:anyone", "static:*");

	(void) unused_state;
	assert_int_equal(submit_acl_user(acl, "nobody"), 1);
	assert_int_equal(submit_acl_user(acl, "unknown"), 1);
	assert_int_equal(submit_acl_sender(acl, "nobody", "ceo@bank.example"),
			 1);
	assert_int_equal(submit_acl_sender(acl, "uid:4242", ""), 1);
	assert_null(submit_acl_free(acl));
	assert_null(submit_acl_free(NULL));
}

static void
test_sender_patterns(void **unused_state)
{
	struct submit_acl *acl = acl_new("root, alice", "inline:{ root=*, "
			"{ alice = alice, @Lists.Example <> bob@other.example } "
			"}, static:nothing-else");

	(void) unused_state;
	assert_int_equal(submit_acl_user(acl, "alice"), 1);
	assert_int_equal(submit_acl_user(acl, "mallory"), 0);
	/* root: anything, as the map says. */
	assert_int_equal(submit_acl_sender(acl, "root", "x@y.example"), 1);
	/* alice: her bare name is alice@$myorigin. */
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "alice@origin.example"), 1);
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "ALICE@Origin.Example"), 1);
	assert_int_equal(submit_acl_sender(acl, "alice", "alice"), 0);
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "alice@other.example"), 0);
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "team@lists.example"), 1);
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "team@sub.lists.example"), 0);
	assert_int_equal(submit_acl_sender(acl, "alice", ""), 1);
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "bob@other.example"), 1);
	assert_int_equal(submit_acl_sender(acl, "alice",
					   "ceo@bank.example"), 0);
	/* Everyone else: the second table, whose "pattern" is no match. */
	assert_int_equal(submit_acl_sender(acl, "mallory",
					   "mallory@origin.example"), 0);
	submit_acl_free(acl);

	/* Not found in any table: no sender at all. */
	acl = acl_new("static:anyone", "inline:{ root=* }");
	assert_int_equal(submit_acl_sender(acl, "nobody",
					   "nobody@origin.example"), 0);
	assert_int_equal(submit_acl_sender(acl, "nobody", ""), 0);
	submit_acl_free(acl);
}

static void
test_table_failures_and_bad_lists(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct submit_acl *acl;

	(void) unused_state;
	acl = acl_new("hash:/nonexistent/users", "hash:/nonexistent/senders");
	assert_int_equal(submit_acl_user(acl, "root"), -1);
	assert_int_equal(submit_acl_sender(acl, "root", "a@b.example"), -1);
	submit_acl_free(acl);

	assert_null(submit_acl_new("inline:{a", "static:*", "o", err));
	assert_non_null(strstr(STRBUF_STR(err), "authorized_submit_users"));
	strbuf_reset(err);
	assert_null(submit_acl_new("static:anyone", "bogus:x", "o", err));
	assert_non_null(strstr(STRBUF_STR(err), "local_login_sender_maps"));
	strbuf_free(err);
}

int
main(void)
{
	const struct CMUnitTest submit_acl_tests[] = {
		cmocka_unit_test(test_defaults_allow_everything),
		cmocka_unit_test(test_sender_patterns),
		cmocka_unit_test(test_table_failures_and_bad_lists),
	};

	return (cmocka_run_group_tests_name("submit_acl", submit_acl_tests,
					    NULL, NULL));
}
