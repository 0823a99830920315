/*
 * mta_sts_test - unit tests for lib/global/mta_sts.c (RFC 8461)
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

#include "mta_sts.h"
#include "strbuf.h"

/* parse - a policy that must parse */
static struct mta_sts_policy *
parse(const char *text)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct mta_sts_policy *p = mta_sts_parse("Example.NET", text,
						 strlen(text), err);

	if (p == NULL)
		fail_msg("mta_sts_parse(\"%s\"): %s", text, STRBUF_STR(err));
	strbuf_free(err);
	return (p);
}

/* bad - a policy that must not parse; the reason contains "why" */
static void
bad(const char *text, const char *why)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct mta_sts_policy *p = mta_sts_parse("example.net", text,
						 strlen(text), err);

	if (p != NULL)
		fail_msg("mta_sts_parse(\"%s\") accepted it", text);
	if (strstr(STRBUF_STR(err), why) == NULL)
		fail_msg("mta_sts_parse(\"%s\"): \"%s\" lacks \"%s\"", text,
			 STRBUF_STR(err), why);
	strbuf_free(err);
}

/* test_txt - the _mta-sts TXT record */
static void
test_txt(void **unused)
{
	char    id[MTA_STS_ID_MAX + 1];

	(void) unused;
	assert_int_equal(mta_sts_txt_parse("v=STSv1; id=20160831085700Z;",
					   id, sizeof(id)), 0);
	assert_string_equal(id, "20160831085700Z");
	assert_int_equal(mta_sts_txt_parse("v=STSv1;id=abc", id, sizeof(id)),
			 0);
	assert_string_equal(id, "abc");
	assert_int_equal(mta_sts_txt_parse("v=STSv1; ext=1; id=X9 ;", id,
					   sizeof(id)), 0);
	assert_string_equal(id, "X9");
	/* Not STSv1, no id, bad id, id too long, twice. */
	assert_int_equal(mta_sts_txt_parse("v=spf1 -all", id, sizeof(id)), -1);
	assert_int_equal(mta_sts_txt_parse("v=STSv1;", id, sizeof(id)), -1);
	assert_int_equal(mta_sts_txt_parse("v=STSv1; id=a-b", id, sizeof(id)),
			 -1);
	assert_int_equal(mta_sts_txt_parse("v=STSv1; id="
			 "123456789012345678901234567890123", id, sizeof(id)),
			 -1);
	assert_int_equal(mta_sts_txt_parse("v=STSv1; id=a; id=b", id,
					   sizeof(id)), -1);
	assert_int_equal(mta_sts_txt_parse(" v=STSv1; id=a", id, sizeof(id)),
			 -1);
}

/* test_policy - the policy body */
static void
test_policy(void **unused)
{
	struct mta_sts_policy *p;

	(void) unused;
	p = parse("version: STSv1\r\nmode: enforce\r\nmx: mail.example.net\r\n"
		  "mx: *.Example.net\r\nmax_age: 604800\r\n");
	assert_string_equal(p->domain, "example.net");
	assert_int_equal(p->mode, MTA_STS_MODE_ENFORCE);
	assert_int_equal(p->max_age, 604800);
	assert_int_equal(p->nmx, 2);
	assert_string_equal(p->mx[1], "*.example.net");
	mta_sts_free(p);

	/* LF only, blanks, unknown keys, no final newline. */
	p = parse("version:STSv1\nmode:  testing  \nfoo: bar\nmx: a.example\n"
		  "max_age: 86400");
	assert_int_equal(p->mode, MTA_STS_MODE_TESTING);
	assert_string_equal(mta_sts_mode_str(p->mode), "testing");
	mta_sts_free(p);

	/* mode none needs no mx. */
	p = parse("version: STSv1\nmode: none\nmax_age: 0\n");
	assert_int_equal(p->mode, MTA_STS_MODE_NONE);
	assert_int_equal(p->nmx, 0);
	mta_sts_free(p);

	bad("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
	    "version");
	bad("mode: enforce\nmx: a.example\nmax_age: 1\n", "missing version");
	bad("version: STSv1\nmx: a.example\nmax_age: 1\n", "missing mode");
	bad("version: STSv1\nmode: enforce\nmx: a.example\n", "missing max_age");
	bad("version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
	    "bad mode");
	bad("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx");
	bad("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
	    "max_age");
	bad("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",
	    "max_age");
	bad("version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n",
	    "bad mx");
	bad("version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
	    "bad mx");
	bad("version: STSv1\nmode: enforce\nmode: none\nmx: a.example\n"
	    "max_age: 1\n", "repeated mode");
	bad("version: STSv1\ngarbage\n", "without");
}

/* test_match - MX patterns (RFC 8461 4.1) */
static void
test_match(void **unused)
{
	struct mta_sts_policy *p;

	(void) unused;
	assert_true(mta_sts_pattern_match("mail.example.net",
					  "MAIL.example.net."));
	assert_false(mta_sts_pattern_match("mail.example.net",
					   "mail2.example.net"));
	assert_true(mta_sts_pattern_match("*.example.net", "mx.example.net"));
	assert_false(mta_sts_pattern_match("*.example.net",
					   "a.mx.example.net"));
	assert_false(mta_sts_pattern_match("*.example.net", "example.net"));
	assert_false(mta_sts_pattern_match("*.example.net", ".example.net"));
	assert_false(mta_sts_pattern_match("*.example.net",
					   "mx.badexample.net"));
	p = parse("version: STSv1\nmode: enforce\nmx: mx1.example.net\n"
		  "mx: *.backup.example.org\nmax_age: 100\n");
	assert_true(mta_sts_mx_match(p, "mx1.example.net"));
	assert_true(mta_sts_mx_match(p, "b1.backup.example.org"));
	assert_false(mta_sts_mx_match(p, "mx2.example.net"));
	p->fetched = 1000;
	assert_false(mta_sts_expired(p, 1099));
	assert_true(mta_sts_expired(p, 1100));
	mta_sts_free(p);
}

/* test_cache - save and load */
static void
test_cache(void **unused)
{
	char    dir[] = "/tmp/mta_sts_test.XXXXXX";
	struct strbuf *err = strbuf_new(64, 0);
	struct mta_sts_policy *p;
	struct mta_sts_policy *q;
	char    path[256];

	(void) unused;
	assert_non_null(mkdtemp(dir));
	p = parse("version: STSv1\nmode: enforce\nmx: mx1.example.net\n"
		  "max_age: 100\n");
	snprintf(p->id, sizeof(p->id), "ID42");
	p->fetched = 1234567;
	snprintf(path, sizeof(path), "%s/sts", dir);
	assert_int_equal(mta_sts_cache_save(path, p, err), 0);
	q = mta_sts_cache_load(path, "EXAMPLE.net");
	assert_non_null(q);
	assert_string_equal(q->id, "ID42");
	assert_int_equal(q->fetched, 1234567);
	assert_int_equal(q->mode, MTA_STS_MODE_ENFORCE);
	assert_string_equal(q->mx[0], "mx1.example.net");
	assert_null(mta_sts_cache_load(path, "other.example"));
	assert_null(mta_sts_cache_load(path, "../etc"));
	mta_sts_free(q);
	q = mta_sts_copy(p);
	assert_string_equal(q->text, p->text);
	mta_sts_free(q);
	mta_sts_free(p);
	snprintf(path, sizeof(path), "%s/sts/example.net", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sts", dir);
	rmdir(path);
	rmdir(dir);
	strbuf_free(err);
}

int
main(void)
{
	const struct CMUnitTest mta_sts_tests[] = {
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_cache),
	};

	return (cmocka_run_group_tests_name("mta_sts", mta_sts_tests, NULL,
					    NULL));
}
