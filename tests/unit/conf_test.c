/*
 * conf_test - unit tests for lib/global/conf.c (main.cf) and its man page
 *
 * Run from the top of the tree: fixtures are read from
 * tests/unit/data/conf/ and the man page from man/sendarix-params.5.
 */

#include <sys/types.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

#define DATA	"tests/unit/data/conf"

static char tmpdir[] = "/tmp/conf_test.XXXXXX";

/* write_main_cf - put text in tmpdir/main.cf */
static void
write_main_cf(const char *text)
{
	char    path[256];
	FILE   *fp;

	snprintf(path, sizeof(path), "%s/main.cf", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
}

/* load_text - conf_reset, write and load a main.cf text */
static int
load_text(const char *text, struct strbuf *err)
{
	conf_reset();
	write_main_cf(text);
	return (conf_load(tmpdir, err));
}

/* count_in_file - how often a string occurs in a file */
static int
count_in_file(const char *path, const char *what)
{
	FILE   *fp = fopen(path, "r");
	char    line[4096];
	int     n = 0;

	if (fp == NULL)
		return (0);
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, what))
			n++;
	fclose(fp);
	return (n);
}

/* child_status - run fn(arg) in a child; return its wait status */
static int
child_status(void (*fn) (const char *), const char *arg)
{
	pid_t   pid;
	int     status;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		log_open("/dev/null", "conf_test", "mail");
		fn(arg);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return (status);
}

/* setup - start each case from nothing */
static int
setup(void **state)
{
	(void) state;
	conf_reset();
	return (0);
}

/* teardown - leave nothing behind */
static int
teardown(void **state)
{
	(void) state;
	conf_reset();
	return (0);
}

/* test_basic - comments, continuation, later wins, trimming */
static void
test_basic(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);

	(void) state;
	assert_int_equal(conf_load(DATA "/basic", err), 0);
	assert_string_equal(conf_get("myhostname"), "mx.example.com");
	assert_string_equal(conf_get("mail_name"), "Basic");
	assert_string_equal(conf_get_raw("smtpd_banner"),
			    "$myhostname ESMTP $mail_name");
	assert_string_equal(conf_get("smtpd_banner"),
			    "mx.example.com ESMTP Basic");
	assert_string_equal(conf_get("relay_domains"), "second.example");
	assert_string_equal(conf_get("maillog_file"), "");
	assert_true(conf_is_set("maillog_file"));
	assert_string_equal(conf_get("my_own_list"), "a, b # not a comment");
	assert_string_equal(conf_get("windows_line"), "crlf value");
	assert_string_equal(conf_get("config_directory"), DATA "/basic");
	assert_string_equal(conf_config_dir(), DATA "/basic");
	/* Not set: the default. */
	assert_false(conf_is_set("smtpd_recipient_limit"));
	assert_int_equal(conf_get_int("smtpd_recipient_limit"), 1000);
	assert_string_equal(conf_get("syslog_name"), "sendarix");
	/* Typed values from the file. */
	assert_int_equal(conf_get_time("smtpd_timeout"), 300);
	assert_int_equal(conf_get_size("message_size_limit"), 10 * 1024 * 1024);
	assert_int_equal(conf_get_bool("smtpd_forbid_bare_newline"), 0);
	assert_int_equal(conf_get_int("hopcount_limit"), 7);
	/* Names in file order, each once. */
	assert_int_equal(conf_user_count(), 11);
	assert_string_equal(conf_user_name(0), "myhostname");
	assert_string_equal(conf_user_name(3), "relay_domains");
	assert_string_equal(conf_user_name(4), "maillog_file");
	assert_string_equal(conf_user_name(5), "my_own_list");
	assert_string_equal(conf_user_name(10), "hopcount_limit");
	strbuf_free(err);
}

/* test_missing - no main.cf */
static void
test_missing(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);

	(void) state;
	assert_int_equal(conf_load(DATA "/no-such-dir", err), -1);
	assert_non_null(strstr(err->data, DATA "/no-such-dir/main.cf"));
	assert_non_null(strstr(err->data, "No such file"));
	assert_int_equal(conf_load_file(DATA, err), -1);
	assert_non_null(strstr(err->data, "not a regular file"));
	strbuf_free(err);
}

/* test_bad_fixtures - every bad/ file fails with its "# expect:" text */
static void
test_bad_fixtures(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	DIR    *dir = opendir(DATA "/bad");
	struct dirent *de;
	char    path[512];
	char    expect[256];
	FILE   *fp;
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
		conf_reset();
		strbuf_reset(err);
		if (conf_load_file(path, err) != -1)
			fail_msg("%s: loaded without error", path);
		if (strstr(err->data, expect + 10) == NULL
		    || strncmp(err->data, path, strlen(path)) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", path, err->data,
				 expect + 10);
		n++;
	}
	closedir(dir);
	assert_true(n >= 6);
	strbuf_free(err);
}

/* test_malformed - inline bad texts; a bad file changes nothing */
static void
test_malformed(void **state)
{
	static const struct {
		const char *text;
		const char *expect;
	}       cases[] = {
		{"a = 1\nb\n", "main.cf, line 2: missing '='"},
		{"= 1\n", "line 1: missing parameter name"},
		{" = 1\n", "line 1: continuation line without"},
		{"\n\n\n  x = 1\n", "line 4: continuation line"},
		{"a.b = 1\n", "line 1: bad parameter name \"a.b\""},
		{"a = 1\n\xff\xfe = 2\n", "line 2: bad parameter name"},
		{"a = 1\nb = x\0y\n", "line 2: NUL byte"},
	};
	struct strbuf *err = strbuf_new(256, 0);
	char    path[256];
	FILE   *fp;
	size_t  i;

	(void) state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
			/* The NUL case: write the bytes, not the C string. */
			snprintf(path, sizeof(path), "%s/main.cf", tmpdir);
			fp = fopen(path, "w");
			assert_non_null(fp);
			fwrite(cases[i].text, 1, 13, fp);
			fclose(fp);
			conf_reset();
			assert_int_equal(conf_load(tmpdir, err), -1);
		} else {
			assert_int_equal(load_text(cases[i].text, err), -1);
		}
		if (strstr(err->data, cases[i].expect) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i,
				 err->data, cases[i].expect);
	}

	/* A reload with a bad file keeps the good settings. */
	assert_int_equal(load_text("mail_name = Good\n", err), 0);
	write_main_cf("mail_name = Bad\noops\n");
	assert_int_equal(conf_load(tmpdir, err), -1);
	assert_string_equal(conf_get("mail_name"), "Good");
	strbuf_free(err);
}

/* test_reload - conf_load replaces main.cf settings, keeps overrides */
static void
test_reload(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	const char *old;

	(void) state;
	assert_int_equal(conf_load(DATA "/basic", err), 0);
	assert_int_equal(conf_override("hopcount_limit = 9", err), 0);
	old = conf_get("smtpd_banner");
	assert_int_equal(conf_load(DATA "/reload", err), 0);
	/* Strings handed out before stay valid until conf_reset(). */
	assert_string_equal(old, "mx.example.com ESMTP Basic");
	assert_string_equal(conf_get("mail_name"), "Reloaded");
	assert_false(conf_is_set("myhostname"));
	assert_false(conf_is_set("relay_domains"));
	assert_int_equal(conf_get_int("hopcount_limit"), 9);
	assert_int_equal(conf_user_count(), 1);
	assert_string_equal(conf_get("config_directory"), DATA "/reload");
	conf_reset();
	assert_int_equal(conf_get_int("hopcount_limit"), 50);
	assert_int_equal(conf_user_count(), 0);
	strbuf_free(err);
}

/* test_expand - $name, ${name}, $(name), $$, conditionals */
static void
test_expand(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	char   *s;

	(void) state;
	log_open("/dev/null", "conf_test", "mail");
	assert_int_equal(conf_load(DATA "/expand", err), 0);
	assert_string_equal(conf_get("plain"), "host.example.org");
	assert_string_equal(conf_get("braced"), "<host.example.org>");
	assert_string_equal(conf_get("parens"), "<host.example.org>");
	assert_string_equal(conf_get("dollar"), "cost $5 and $myhostname");
	assert_string_equal(conf_get_raw("dollar"),
			    "cost $$5 and $$myhostname");
	assert_string_equal(conf_get("lone"), "a $ b $");
	assert_string_equal(conf_get("nested"), "[<host.example.org>]");
	assert_string_equal(conf_get("undefined"), "xy");
	assert_string_equal(conf_get("cond_set"), "set|");
	assert_string_equal(conf_get("cond_empty"), "|empty");
	assert_string_equal(conf_get("cond_nested"), "at example.org");
	assert_string_equal(conf_get("unclosed"), "${myhostname");
	assert_string_equal(conf_get("badname"), "${my-hostname}");
	/* Defaults expand too. */
	assert_string_equal(conf_get("myorigin"), "host.example.org");
	assert_string_equal(conf_get("smtpd_client_connection_exceptions"),
			    "127.0.0.0/8 [::1]/128");
	s = conf_expand("$mail_name on ${myhostname}, $$1");
	assert_string_equal(s, "Sendarix on host.example.org, $1");
	free(s);
	s = conf_expand("");
	assert_string_equal(s, "");
	free(s);
	log_open("/dev/stderr", "conf_test", "mail");
	strbuf_free(err);
}

/* test_loop - a loop is reported once and left unexpanded */
static void
test_loop(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	char    logf[256];
	char   *s;

	(void) state;
	snprintf(logf, sizeof(logf), "%s/log", tmpdir);
	unlink(logf);
	log_open(logf, "conf_test", "mail");
	assert_int_equal(conf_load(DATA "/expand", err), 0);
	assert_string_equal(conf_get("uses_loop"), "<$loop_a>");
	assert_string_equal(conf_get("loop_a"), "A $loop_b");
	assert_string_equal(conf_get("loop_b"), "B ${loop_a}");
	assert_string_equal(conf_get("loop_a"), "A $loop_b");
	assert_int_equal(count_in_file(logf, "expansion loop"), 1);
	assert_int_equal(count_in_file(logf,
			"uses_loop -> loop_a -> loop_b -> loop_a"), 1);
	assert_string_equal(conf_get("self"), "x $self");
	assert_string_equal(conf_get("self"), "x $self");
	assert_int_equal(count_in_file(logf, "expansion loop"), 2);
	s = conf_expand("[$self]");
	assert_string_equal(s, "[$self]");
	free(s);
	/* Values outside the loop are fine. */
	assert_string_equal(conf_get("plain"), "host.example.org");

	/* A long chain that is not a loop still expands. */
	{
		struct strbuf *text = strbuf_new(4096, 0);
		int     i;

		strbuf_appends(text, "p0 = end\n");
		for (i = 1; i < 60; i++)
			strbuf_printf(text, "p%d = $p%d\n", i, i - 1);
		assert_int_equal(load_text(text->data, err), 0);
		assert_string_equal(conf_get("p59"), "end");
		/* Longer than the depth limit: treated like a loop. */
		for (; i < 150; i++)
			strbuf_printf(text, "p%d = $p%d\n", i, i - 1);
		assert_int_equal(load_text(text->data, err), 0);
		assert_string_equal(conf_get("p149"), "$p148");
		strbuf_free(text);
	}
	log_open("/dev/stderr", "conf_test", "mail");
	strbuf_free(err);
}

/* test_override - master.cf -o settings */
static void
test_override(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	const char *before;

	(void) state;
	assert_int_equal(conf_load(DATA "/basic", err), 0);
	before = conf_get("smtpd_banner");
	assert_int_equal(conf_override("mail_name=Over", err), 0);
	assert_string_equal(conf_get("mail_name"), "Over");
	/* The cache was dropped: the banner sees the new name. */
	assert_string_equal(conf_get("smtpd_banner"),
			    "mx.example.com ESMTP Over");
	assert_string_equal(before, "mx.example.com ESMTP Basic");
	assert_int_equal(conf_override("  smtpd_banner =  $mail_name hi  ",
				       err), 0);
	assert_string_equal(conf_get_raw("smtpd_banner"), "$mail_name hi");
	assert_string_equal(conf_get("smtpd_banner"), "Over hi");
	assert_int_equal(conf_override("user_thing=$myhostname", err), 0);
	assert_string_equal(conf_get("user_thing"), "mx.example.com");
	assert_int_equal(conf_override("relay_domains=", err), 0);
	assert_string_equal(conf_get("relay_domains"), "");
	/* An override wins over a later main.cf load. */
	assert_int_equal(conf_load(DATA "/reload", err), 0);
	assert_string_equal(conf_get("mail_name"), "Over");

	assert_int_equal(conf_override("no equals sign", err), -1);
	assert_non_null(strstr(err->data, "missing '='"));
	assert_int_equal(conf_override("=value", err), -1);
	assert_non_null(strstr(err->data, "missing parameter name"));
	assert_int_equal(conf_override("bad-name=1", err), -1);
	assert_non_null(strstr(err->data, "bad parameter name"));
	assert_int_equal(conf_override("a=b\nc=d", err), -1);
	assert_non_null(strstr(err->data, "newline"));
	assert_int_equal(conf_override("x=1", NULL), 0);
	strbuf_free(err);
}

/* test_hostname - empty myhostname and mydomain */
static void
test_hostname(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	char    host[256];
	const char *h;
	const char *d;

	(void) state;
	assert_int_equal(load_text("mail_name = x\n", err), 0);
	assert_string_equal(conf_get_raw("myhostname"), "");
	h = conf_get("myhostname");
	assert_non_null(strchr(h, '.'));
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_int_equal(strncmp(h, host, strlen(host)), 0);
	d = conf_get("mydomain");
	assert_string_equal(d, strchr(h, '.') + 1);
	assert_string_equal(conf_get("myorigin"), h);

	assert_int_equal(load_text("myhostname = single\n", err), 0);
	assert_string_equal(conf_get("myhostname"), "single");
	assert_string_equal(conf_get("mydomain"), "localdomain");

	assert_int_equal(load_text("myhostname = a.b.example\n"
				   "mydomain = other.example\n", err), 0);
	assert_string_equal(conf_get("mydomain"), "other.example");
	assert_int_equal(load_text("myhostname = a.b.example\n", err), 0);
	assert_string_equal(conf_get("mydomain"), "b.example");
	strbuf_free(err);
}

/* test_parsers - conf_parse_* good and bad values */
static void
test_parsers(void **state)
{
	static const struct {
		const char *s;
		long    v;
	}       times[] = {
		{"0", 0}, {"10", 10}, {"10s", 10}, {"5m", 300}, {"2h", 7200},
		{"1d", 86400}, {"2w", 1209600}, {"3S", 3}, {"1H", 3600},
	}, ints[] = {
		{"0", 0}, {"42", 42}, {"-1", -1}, {"+7", 7},
		{"9223372036854775807", 9223372036854775807L},
	};
	static const char *const bad_times[] = {
		"", "s", "-1", "1x", "1ms", "1 s", " 1", "1s ", "1.5h",
		"99999999999999999999", "9223372036854775807w", "10ss", "abc",
	};
	static const char *const bad_ints[] = {
		"", "-", "+", "1.0", "1k", " 1", "1 ", "0x10",
		"9223372036854775808", "--1", "abc",
	};
	static const char *const bad_sizes[] = {
		"", "k", "-1", "1t", "1kb", "1 k", "1.5m", "8589934592g",
		"99999999999999999999",
	};
	static const char *const bad_bools[] = {
		"", "y", "n", "2", "yess", "enabled", " yes",
	};
	long    l;
	long long ll;
	int     b;
	size_t  i;

	(void) state;
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		assert_int_equal(conf_parse_time(times[i].s, &l), 0);
		assert_int_equal(l, times[i].v);
	}
	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		assert_int_equal(conf_parse_int(ints[i].s, &l), 0);
		assert_int_equal(l, ints[i].v);
	}
	for (i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
		l = 12345;
		if (conf_parse_time(bad_times[i], &l) != -1)
			fail_msg("time \"%s\" parsed", bad_times[i]);
		assert_int_equal(l, 12345);
	}
	for (i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++)
		if (conf_parse_int(bad_ints[i], &l) != -1)
			fail_msg("int \"%s\" parsed", bad_ints[i]);
	assert_int_equal(conf_parse_size("0", &ll), 0);
	assert_int_equal(ll, 0);
	assert_int_equal(conf_parse_size("52428800", &ll), 0);
	assert_int_equal(ll, 52428800);
	assert_int_equal(conf_parse_size("4k", &ll), 0);
	assert_int_equal(ll, 4096);
	assert_int_equal(conf_parse_size("50M", &ll), 0);
	assert_int_equal(ll, 50LL * 1024 * 1024);
	assert_int_equal(conf_parse_size("2g", &ll), 0);
	assert_int_equal(ll, 2LL * 1024 * 1024 * 1024);
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++)
		if (conf_parse_size(bad_sizes[i], &ll) != -1)
			fail_msg("size \"%s\" parsed", bad_sizes[i]);
	for (i = 0; i < 8; i++) {
		static const char *const v[] = {"yes", "YES", "true", "On",
		"1", "no", "False", "off"};

		assert_int_equal(conf_parse_bool(v[i], &b), 0);
		assert_int_equal(b, i < 5);
	}
	assert_int_equal(conf_parse_bool("0", &b), 0);
	assert_int_equal(b, 0);
	for (i = 0; i < sizeof(bad_bools) / sizeof(bad_bools[0]); i++)
		if (conf_parse_bool(bad_bools[i], &b) != -1)
			fail_msg("bool \"%s\" parsed", bad_bools[i]);
	assert_int_equal(conf_parse_int(NULL, &l), -1);
}

/* get_int - conf_get_int in a child */
static void
get_int(const char *name)
{
	(void) conf_get_int(name);
}

/* get_bool - conf_get_bool in a child */
static void
get_bool(const char *name)
{
	(void) conf_get_bool(name);
}

/* get_time - conf_get_time in a child */
static void
get_time(const char *name)
{
	(void) conf_get_time(name);
}

/* get_size - conf_get_size in a child */
static void
get_size(const char *name)
{
	(void) conf_get_size(name);
}

/* get_str - conf_get in a child */
static void
get_str(const char *name)
{
	(void) conf_get(name);
}

/* get_raw - conf_get_raw in a child */
static void
get_raw(const char *name)
{
	(void) conf_get_raw(name);
}

/* test_bad_values - a typed getter with a bad value is fatal (exit 1) */
static void
test_bad_values(void **state)
{
	struct strbuf *err = strbuf_new(256, 0);
	char    logf[256];
	int     st;

	(void) state;
	assert_int_equal(load_text("hopcount_limit = many\n"
				   "smtpd_forbid_bare_newline = perhaps\n"
				   "smtpd_timeout = 5 minutes\n"
				   "message_size_limit = $hopcount_limit\n"
				   "smtpd_recipient_limit = 10\n", err), 0);
	st = child_status(get_int, "hopcount_limit");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	st = child_status(get_bool, "smtpd_forbid_bare_newline");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	st = child_status(get_time, "smtpd_timeout");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	st = child_status(get_size, "message_size_limit");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	st = child_status(get_int, "smtpd_recipient_limit");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* The log line names the parameter and the value. */
	snprintf(logf, sizeof(logf), "%s/fatal.log", tmpdir);
	unlink(logf);
	fflush(NULL);
	if (fork() == 0) {
		log_open(logf, "conf_test", "mail");
		(void) conf_get_time("smtpd_timeout");
		_exit(0);
	}
	wait(&st);
	assert_int_equal(count_in_file(logf, "fatal: parameter smtpd_timeout: "
				       "bad time value: \"5 minutes\""), 1);
	strbuf_free(err);
}

/* test_unknown_name - asking for an unknown name is a bug: abort */
static void
test_unknown_name(void **state)
{
	int     st;

	(void) state;
	st = child_status(get_str, "no_such_parameter");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	st = child_status(get_raw, "no_such_parameter");
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
	assert_false(conf_is_set("no_such_parameter"));
	assert_null(conf_param_find("no_such_parameter"));
}

/* test_param_table - conf_param_find finds every entry, names are unique */
static void
test_param_table(void **state)
{
	size_t  i;
	size_t  j;
	long    l;
	long long ll;
	int     b;

	(void) state;
	assert_true(conf_params_count > 10);
	for (i = 0; i < conf_params_count; i++) {
		const struct conf_param *p = &conf_params[i];

		assert_ptr_equal(conf_param_find(p->name), p);
		for (j = i + 1; j < conf_params_count; j++)
			if (strcmp(p->name, conf_params[j].name) == 0)
				fail_msg("%s is in the table twice", p->name);
		/* Every default parses for its type. */
		switch (p->type) {
		case CONF_INT:
			assert_int_equal(conf_parse_int(p->def, &l), 0);
			break;
		case CONF_BOOL:
			assert_int_equal(conf_parse_bool(p->def, &b), 0);
			break;
		case CONF_TIME:
			assert_int_equal(conf_parse_time(p->def, &l), 0);
			break;
		case CONF_SIZE:
			assert_int_equal(conf_parse_size(p->def, &ll), 0);
			break;
		default:
			break;
		}
	}
}

/* man_escape - a value as written in the man page */
static void
man_escape(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			strbuf_appends(out, "\\e");
		else if (*s == '-')
			strbuf_appends(out, "\\-");
		else
			strbuf_appendc(out, *s);
	}
}

/* test_man_page - every parameter is in sendarix-params(5) with its default */
static void
test_man_page(void **state)
{
	struct strbuf *text = strbuf_new(65536, 0);
	struct strbuf *want = strbuf_new(256, 0);
	char    chunk[8192];
	size_t  n;
	size_t  i;
	int     missing = 0;
	FILE   *fp = fopen("man/sendarix-params.5", "r");

	(void) state;
	assert_non_null(fp);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		strbuf_append(text, chunk, n);
	fclose(fp);
	for (i = 0; i < conf_params_count; i++) {
		const struct conf_param *p = &conf_params[i];

		strbuf_reset(want);
		strbuf_printf(want, "\n.TP\n\\fB%s\\fR (default: ", p->name);
		if (p->def[0] == '/') {
			/* Set by the build (PREFIX): only the wording. */
			strbuf_appends(want, "set at build time");
		} else if (p->def[0] == 0) {
			strbuf_appends(want, "empty)\n");
		} else {
			strbuf_appends(want, "\\fI");
			man_escape(want, p->def);
			strbuf_appends(want, "\\fR)\n");
		}
		if (strstr(text->data, want->data) == NULL) {
			print_error("man/sendarix-params.5 lacks this entry "
				    "(keep the list sorted by name):%s%c%s.\n",
				    want->data,
				    toupper((unsigned char) *p->desc),
				    p->desc + (*p->desc != 0));
			missing++;
		}
	}
	strbuf_free(text);
	strbuf_free(want);
	assert_int_equal(missing, 0);
}

/* test_check_value - type and range, in the getters' words */
static void
test_check_value(void **unused_state)
{
	struct strbuf *why = strbuf_new(256, 0);
	const struct conf_param *p;

	(void) unused_state;
	p = conf_param_find("message_size_limit");
	assert_int_equal(conf_check_value(p, "10m", why), 0);
	assert_int_equal(conf_check_value(p, "abc", why), -1);
	assert_string_equal(why->data, "parameter message_size_limit: bad "
			    "size value: \"abc\" (use a byte count with an "
			    "optional k, m or g)");
	p = conf_param_find("hopcount_limit");
	assert_int_equal(conf_check_value(p, "0", why), -1);
	assert_string_equal(why->data, "parameter hopcount_limit: value "
			    "\"0\" out of range 1..100000");
	assert_int_equal(conf_check_value(p, "100000", why), 0);
	p = conf_param_find("maximal_backoff_time");
	assert_int_equal(conf_check_value(p, "1w", why), 0);
	assert_int_equal(conf_check_value(p, "8d", why), -1);
	p = conf_param_find("smtpd_forbid_bare_newline");
	assert_int_equal(conf_check_value(p, "maybe", why), -1);
	p = conf_param_find("mail_name");
	assert_int_equal(conf_check_value(p, "anything", why), 0);
	strbuf_free(why);
}

/* test_bounds_table - every range names a numeric parameter, default in */
static void
test_bounds_table(void **unused_state)
{
	struct strbuf *why = strbuf_new(256, 0);
	const struct conf_param *p;
	size_t  i;

	(void) unused_state;
	for (i = 0; i < conf_bounds_count; i++) {
		p = conf_param_find(conf_bounds[i].name);
		assert_non_null(p);
		assert_true(p->type == CONF_INT || p->type == CONF_TIME
			    || p->type == CONF_SIZE);
		assert_true(conf_bounds[i].min <= conf_bounds[i].max);
		assert_ptr_equal(conf_param_bound(p->name), &conf_bounds[i]);
		if (conf_check_value(p, p->def, why) < 0)
			fail_msg("default out of range: %s", why->data);
	}
	/* Every default of the table is good. */
	for (i = 0; i < conf_params_count; i++)
		if (strchr(conf_params[i].def, '$') == NULL
		    && conf_check_value(&conf_params[i], conf_params[i].def,
					why) < 0)
			fail_msg("bad default: %s", why->data);
	strbuf_free(why);
}

/* test_save_restore - back to main.cf and overrides as they were */
static void
test_save_restore(void **unused_state)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct conf_saved *saved;
	const char *before;

	(void) unused_state;
	assert_int_equal(load_text("hopcount_limit = 7\nmy_a = x\n"
				   "mail_name = $my_a\n", err), 0);
	assert_int_equal(conf_override("smtpd_timeout=10s", err), 0);
	before = conf_get("mail_name");
	assert_string_equal(before, "x");
	saved = conf_save();
	write_main_cf("hopcount_limit = 9\nmail_name = y\nmy_b = z\n");
	assert_int_equal(conf_load(tmpdir, err), 0);
	assert_int_equal(conf_override("smtpd_timeout=20s", err), 0);
	assert_int_equal(conf_override("hopcount_limit=11", err), 0);
	assert_int_equal(conf_get_int("hopcount_limit"), 11);
	assert_string_equal(conf_get("mail_name"), "y");
	conf_restore(saved);
	assert_int_equal(conf_get_int("hopcount_limit"), 7);
	assert_int_equal(conf_get_time("smtpd_timeout"), 10);
	assert_string_equal(conf_get("mail_name"), "x");
	assert_string_equal(before, "x");	/* still valid */
	assert_int_equal(conf_user_count(), 3);
	assert_string_equal(conf_user_name(0), "hopcount_limit");
	assert_string_equal(conf_user_name(2), "mail_name");
	assert_false(conf_is_set("my_b"));
	assert_null(conf_saved_free(conf_save()));
	strbuf_free(err);
}

/* main - run the cases in a scratch directory */
int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_fixtures, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_override, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostname, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parsers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unknown_name, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_param_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_man_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_value, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bounds_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_save_restore, setup,
						teardown),
	};
	char    path[256];
	int     ret;

	log_init("conf_test");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	ret = cmocka_run_group_tests_name("conf", tests, NULL, NULL);
	snprintf(path, sizeof(path), "rm -rf '%s'", tmpdir);
	if (system(path) != 0)
		ret = 1;
	return (ret);
}
