/*
 * mastercf_test - unit tests for lib/global/mastercf.c
 *
 * Run from the top of the tree: fixtures are in tests/unit/data/mastercf/.
 * Every file in bad/ starts with "# expect: line N: TEXT"; loading it
 * must fail with a message "FILE, line N: ..." that contains TEXT.
 */

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "mastercf.h"
#include "strbuf.h"

#define DATA	"tests/unit/data/mastercf"

/* find - the service of a name and type */
static const struct mastercf_service *
find(const struct mastercf *cf, const char *name, const char *type)
{
	size_t  i;

	for (i = 0; i < cf->count; i++)
		if (strcmp(cf->svc[i].name, name) == 0
		    && strcmp(cf->svc[i].type, type) == 0)
			return (&cf->svc[i]);
	fail_msg("no service %s/%s", name, type);
	return (NULL);
}

/* test_good - every field and argument form of a good file */
static void
test_good(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct mastercf *cf = mastercf_load(DATA "/good.cf", err);
	const struct mastercf_service *s;

	(void) state;
	if (cf == NULL)
		fail_msg("%s", err->data);
	assert_int_equal(cf->count, 8);

	s = find(cf, "smtp", "inet");
	assert_int_equal(s->lineno, 3);
	assert_int_equal(s->private_, 0);
	assert_int_equal(s->unpriv, 1);
	assert_int_equal(s->chroot, 0);
	assert_int_equal(s->wakeup, 0);
	assert_int_equal(s->maxproc, 1);
	assert_string_equal(s->command, "smtpd");
	assert_int_equal(s->nargs, 0);
	assert_int_equal(s->noverrides, 0);

	s = find(cf, "submission", "inet");
	assert_int_equal(s->lineno, 5);
	assert_int_equal(s->maxproc, -1);
	assert_int_equal(s->noverrides, 4);
	assert_string_equal(s->overrides[0], "syslog_name=sendarix/submission");
	assert_int_equal(s->nargs, 0);
	assert_string_equal(s->overrides[1],
			    "smtpd_tls_security_level=encrypt");
	assert_string_equal(s->overrides[2], "smtpd_sasl_auth_enable=yes");
	assert_string_equal(s->overrides[3],
			    "smtpd_banner=$myhostname ESMTP submission");

	s = find(cf, "127.0.0.1:2525", "inet");
	assert_int_equal(s->private_, 1);
	assert_int_equal(s->unpriv, 1);
	assert_int_equal(s->chroot, 1);
	assert_int_equal(s->wakeup, 60);
	assert_int_equal(s->maxproc, 10);
	assert_int_equal(s->nargs, 2);
	assert_string_equal(s->args[0], "-v");
	assert_string_equal(s->args[1], "extra");

	s = find(cf, "[::1]:2526", "inet");
	assert_int_equal(s->private_, 1);
	assert_int_equal(s->unpriv, 0);
	assert_int_equal(s->chroot, 0);
	assert_int_equal(s->wakeup, 300);
	assert_int_equal(s->maxproc, 0);

	s = find(cf, "mail.example.com:smtps", "inet");
	assert_int_equal(s->noverrides, 1);
	assert_string_equal(s->overrides[0], "smtpd_tls_wrappermode=yes");

	s = find(cf, "cleanup", "unix");
	assert_int_equal(s->private_, 1);
	assert_int_equal(s->maxproc, 0);

	s = find(cf, "qmgr", "unix");
	assert_int_equal(s->private_, 0);
	assert_int_equal(s->wakeup, 300);

	/* Same name, other type: allowed. */
	s = find(cf, "smtp", "unix");
	assert_string_equal(s->command, "smtp-out");
	assert_int_equal(s->nargs, 1);
	assert_string_equal(s->args[0], "arg with spaces");
	assert_int_equal(s->lineno, 17);

	assert_null(mastercf_free(cf));
	assert_null(mastercf_free(NULL));
	strbuf_free(err);
}

/* test_bad_fixtures - every bad/ file fails with its expected message */
static void
test_bad_fixtures(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	DIR    *dir = opendir(DATA "/bad");
	struct dirent *de;
	char    path[512];
	char    expect[256];
	char    where[1024];
	char   *colon;
	FILE   *fp;
	struct mastercf *cf;
	int     n = 0;

	(void) state;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), DATA "/bad/%s", de->d_name);
		fp = fopen(path, "r");
		assert_non_null(fp);
		assert_non_null(fgets(expect, sizeof(expect), fp));
		fclose(fp);
		assert_true(strncmp(expect, "# expect: ", 10) == 0);
		expect[strcspn(expect, "\n")] = 0;
		strbuf_reset(err);
		if ((cf = mastercf_load(path, err)) != NULL) {
			mastercf_free(cf);
			fail_msg("%s: loaded without error", path);
		}
		/* "line N: TEXT": the message is "path, line N: ...TEXT..." */
		colon = strstr(expect + 10, ": ");
		assert_non_null(colon);
		*colon = 0;
		snprintf(where, sizeof(where), "%s, %s: ", path, expect + 10);
		if (strncmp(err->data, where, strlen(where)) != 0
		    || strstr(err->data, colon + 2) == NULL)
			fail_msg("%s: got \"%s\", want \"%s...%s\"", path,
				 err->data, where, colon + 2);
		n++;
	}
	closedir(dir);
	assert_true(n >= 30);
	strbuf_free(err);
}

/* test_parse_buffer - a buffer without NUL; NUL bytes; no path */
static void
test_parse_buffer(void **state)
{
	static const char text[] = "cleanup unix - - n - 1 cleanup\nXXXX";
	static const char nul[] = "cleanup unix - - n - 1 cleanup\n"
	"qmgr unix - - n\0 - 1 qmgr\n";
	struct strbuf *err = strbuf_new(256, 0);
	struct mastercf *cf;

	(void) state;
	/* Only the first line: the rest of the buffer is not ours. */
	cf = mastercf_parse(text, 31, "buf", err);
	assert_non_null(cf);
	assert_int_equal(cf->count, 1);
	assert_string_equal(cf->svc[0].command, "cleanup");
	mastercf_free(cf);
	/* Last line without a newline. */
	cf = mastercf_parse(text, 30, "buf", err);
	assert_non_null(cf);
	assert_int_equal(cf->count, 1);
	mastercf_free(cf);
	/* Empty and comment-only texts have no services. */
	cf = mastercf_parse("", 0, "buf", err);
	assert_non_null(cf);
	assert_int_equal(cf->count, 0);
	mastercf_free(cf);
	cf = mastercf_parse("# x\n\n  # y\n", 11, "buf", err);
	assert_non_null(cf);
	assert_int_equal(cf->count, 0);
	mastercf_free(cf);
	cf = mastercf_parse(nul, sizeof(nul) - 1, "buf", err);
	assert_null(cf);
	assert_string_equal(err->data, "buf, line 2: NUL byte in line");
	cf = mastercf_parse("x", 1, NULL, err);
	assert_null(cf);
	assert_non_null(strstr(err->data, "master.cf, line 1:"));
	/* CRLF line ends are white space. */
	cf = mastercf_parse("cleanup unix - - n - 1 cleanup\r\n", 32, "buf",
			    err);
	assert_non_null(cf);
	assert_string_equal(cf->svc[0].command, "cleanup");
	mastercf_free(cf);
	/* A NULL err is fine. */
	assert_null(mastercf_parse("x", 1, "buf", NULL));
	strbuf_free(err);
}

/* test_missing - a file that is not there, a directory */
static void
test_missing(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);

	(void) state;
	assert_null(mastercf_load(DATA "/no-such-file.cf", err));
	assert_non_null(strstr(err->data, "no-such-file.cf"));
	assert_non_null(strstr(err->data, "No such file"));
	assert_null(mastercf_load(DATA, err));
	assert_non_null(strstr(err->data, "not a regular file"));
	strbuf_free(err);
}

/* test_shipped - the master.cf in conf/ parses */
static void
test_shipped(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct mastercf *cf = mastercf_load("conf/master.cf", err);

	(void) state;
	if (cf == NULL)
		fail_msg("%s", err->data);
	assert_true(cf->count >= 2);
	mastercf_free(cf);
	strbuf_free(err);
}

/* main - run the cases */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad_fixtures),
		cmocka_unit_test(test_parse_buffer),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_shipped),
	};

	log_init("mastercf_test");
	return (cmocka_run_group_tests_name("mastercf", tests, NULL, NULL));
}
