/*
 * log_test - unit tests for lib/util/log.c: the line shape in maillog_file
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static char log_test_path[64];

/* log_test_read - the whole log file */
static char *
log_test_read(void)
{
	static char buf[8192];
	FILE   *fp = fopen(log_test_path, "r");
	size_t  n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = 0;
	fclose(fp);
	return (buf);
}

/* setup - a fresh log file */
static int
setup(void **unused_state)
{
	int     fd;

	(void) unused_state;
	snprintf(log_test_path, sizeof(log_test_path), "/tmp/log_test.XXXXXX");
	if ((fd = mkstemp(log_test_path)) < 0)
		return (-1);
	close(fd);
	log_init("/usr/libexec/sendarix/smtpd");
	log_open(log_test_path, "sendarix", "mail");
	return (0);
}

/* teardown - remove it */
static int
teardown(void **unused_state)
{
	(void) unused_state;
	log_open("/dev/stderr", "sendarix", "mail");
	unlink(log_test_path);
	return (0);
}

/* test_shape - "Mon DD HH:MM:SS host sendarix/smtpd[pid]: text" */
static void
test_shape(void **unused_state)
{
	char    want[64];
	char   *text;

	(void) unused_state;
	log_info("%s: client=%s", "0ABC", "unknown[127.0.0.1]");
	log_warn("bad thing %d", 7);
	log_error("worse");
	text = log_test_read();
	snprintf(want, sizeof(want), " sendarix/smtpd[%ld]: 0ABC: client=",
		 (long) getpid());
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "]: warning: bad thing 7\n"));
	assert_non_null(strstr(text, "]: error: worse\n"));
	assert_string_equal(log_progname(), "sendarix/smtpd");
}

/* test_one_line - CR and LF from input never split a log line */
static void
test_one_line(void **unused_state)
{
	char   *text;
	char   *nl;

	(void) unused_state;
	log_info("reject: %s", "evil\r\nFake: line\n");
	text = log_test_read();
	nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_null(strchr(nl + 1, '\n'));
	assert_non_null(strstr(text, "evil  Fake: line \n"));
}

/* test_debug - verbose lines only when asked */
static void
test_debug(void **unused_state)
{
	(void) unused_state;
	log_verbose = 0;
	log_debug("hidden");
	assert_null(strstr(log_test_read(), "hidden"));
	log_verbose = 1;
	log_debug("shown");
	log_verbose = 0;
	assert_non_null(strstr(log_test_read(), "shown"));
}

/* test_long - an over-long line is cut, still one line */
static void
test_long(void **unused_state)
{
	char   *big = malloc(20000);
	char   *text;

	(void) unused_state;
	memset(big, 'x', 19999);
	big[19999] = 0;
	log_info("%s", big);
	free(big);
	text = log_test_read();
	assert_int_equal(text[strlen(text) - 1], '\n');
	assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
}

/* test_syslog_name - the tag follows syslog_name */
static void
test_syslog_name(void **unused_state)
{
	(void) unused_state;
	log_open(log_test_path, "sendarix-out", "mail");
	log_info("tagged");
	assert_non_null(strstr(log_test_read(), " sendarix-out/smtpd["));
}

int
main(void)
{
	const struct CMUnitTest log_tests[] = {
		cmocka_unit_test_setup_teardown(test_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syslog_name, setup,
						teardown),
	};

	return (cmocka_run_group_tests_name("log", log_tests, NULL, NULL));
}
