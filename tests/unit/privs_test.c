/*
 * privs_test - unit tests for lib/util/privs.c
 *
 * The drop itself needs root: those cases run in a forked child (so the
 * test process keeps its privileges) and are skipped for other users.
 * The mail owner is the "sendarix" user that tools/install-deps makes;
 * cases that need it are skipped when it does not exist.
 *
 * The handed-down credentials (SENDARIX_MAIL_OWNER) carry a group the
 * user is not in (TEST_EXTRA_GID): that group in the result shows that
 * the value was used, its absence that the name service was asked.
 */

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "privs.h"
#include "strbuf.h"

#define TEST_USER	"sendarix"
#define TEST_EXTRA_GID	54321		/* a group TEST_USER is not in */

/* test_need_root - skip unless root and the mail owner exists */
static int
test_need_root(void)
{
	return (geteuid() == 0 && getpwnam(TEST_USER) != NULL);
}

/* test_in_child - run fn in a child; its exit status */
static int
test_in_child(int (*fn) (void *), void *ctx)
{
	int     status;
	pid_t   pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(ctx));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return (WEXITSTATUS(status));
}

/* test_lookup - a known user, root, unknown and empty names */
static void
test_lookup(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);
	uid_t   uid = 1;
	gid_t   gid = 1;

	(void) unused_state;
	assert_int_equal(privs_lookup("root", &uid, &gid, err), 0);
	assert_int_equal(uid, 0);
	assert_int_equal(gid, 0);
	assert_int_equal(privs_lookup("no-such-user-xyzzy", &uid, &gid, err),
			 -1);
	assert_non_null(strstr(err->data, "unknown user"));
	strbuf_reset(err);
	assert_int_equal(privs_lookup("", &uid, &gid, err), -1);
	assert_true(err->len > 0);
	assert_int_equal(privs_lookup(NULL, &uid, &gid, NULL), -1);
	strbuf_free(err);
}

/* test_refuse_root - dropping "to root" is refused */
static void
test_refuse_root(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);

	(void) unused_state;
	assert_int_equal(privs_drop("root", NULL, err), -1);
	assert_non_null(strstr(err->data, "unprivileged"));
	assert_int_equal(privs_drop("no-such-user-xyzzy", NULL, err), -1);
	strbuf_free(err);
}

/* test_drop_child - in the child: drop, then try to get root back */
static int
test_drop_child(void *unused_ctx)
{
	struct passwd *pw = getpwnam(TEST_USER);
	uid_t   ruid, euid, suid;
	gid_t   rgid, egid, sgid;

	(void) unused_ctx;
	if (privs_drop(TEST_USER, NULL, NULL) < 0)
		return (1);
	if (getresuid(&ruid, &euid, &suid) < 0
	    || getresgid(&rgid, &egid, &sgid) < 0)
		return (2);
	if (ruid != pw->pw_uid || euid != pw->pw_uid || suid != pw->pw_uid)
		return (3);
	if (rgid != pw->pw_gid || egid != pw->pw_gid || sgid != pw->pw_gid)
		return (4);
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return (5);
	/* Supplementary groups are the user's, not root's. */
	{
		gid_t   groups[64];
		int     n = getgroups(64, groups);
		int     i;

		for (i = 0; i < n; i++)
			if (groups[i] == 0)
				return (6);
	}
	return (0);
}

/* test_drop - uid, gid and groups all change for good */
static void
test_drop(void **unused_state)
{
	(void) unused_state;
	if (!test_need_root())
		skip();
	assert_int_equal(test_in_child(test_drop_child, NULL), 0);
}

/* test_chroot_child - drop into a chroot */
static int
test_chroot_child(void *ctx)
{
	const char *dir = ctx;
	char    cwd[PATH_MAX];

	if (privs_drop(TEST_USER, dir, NULL) < 0)
		return (1);
	if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
		return (2);
	/* The marker file is at the top of the new root. */
	if (access("/marker", F_OK) < 0)
		return (3);
	if (geteuid() == 0)
		return (4);
	return (0);
}

/* test_chroot_with - run child(dir) in a child, dir a fresh chroot */
static void
test_chroot_with(int (*child) (void *))
{
	char    dir[] = "/tmp/privs_test.XXXXXX";
	char    path[sizeof(dir) + 16];
	FILE   *fp;

	if (!test_need_root())
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/marker", dir);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_int_equal(test_in_child(child, dir), 0);
	unlink(path);
	rmdir(dir);
}

/* test_chroot - the chroot happens, and the drop after it */
static void
test_chroot(void **unused_state)
{
	(void) unused_state;
	test_chroot_with(test_chroot_child);
}

/* test_bad_chroot_child - a missing chroot folder fails the drop */
static int
test_bad_chroot_child(void *unused_ctx)
{
	struct strbuf *err = strbuf_new(64, 0);

	(void) unused_ctx;
	if (privs_drop(TEST_USER, "/nonexistent/privs_test", err) == 0)
		return (1);
	return (strstr(err->data, "chroot") ? 0 : 2);
}

/* test_bad_chroot - a failed chroot is reported */
static void
test_bad_chroot(void **unused_state)
{
	(void) unused_state;
	if (!test_need_root())
		skip();
	assert_int_equal(test_in_child(test_bad_chroot_child, NULL), 0);
}

/* test_not_root - an ordinary user cannot drop to someone else */
static void
test_not_root(void **unused_state)
{
	struct strbuf *err;
	struct passwd *pw;

	(void) unused_state;
	if (geteuid() == 0 || (pw = getpwnam(TEST_USER)) == NULL
	    || pw->pw_uid == geteuid())
		skip();
	err = strbuf_new(64, 0);
	assert_int_equal(privs_drop(TEST_USER, NULL, err), -1);
	assert_true(err->len > 0);
	strbuf_free(err);
}

/* test_parse_ok - values privs_creds_parse() accepts */
static void
test_parse_ok(void **unused_state)
{
	struct privs_creds c;
	struct strbuf *buf = strbuf_new(64, 0);
	int     i;

	(void) unused_state;
	assert_int_equal(privs_creds_parse("sendarix:999:995:995,4", &c, buf),
			 0);
	assert_string_equal(c.user, "sendarix");
	assert_int_equal(c.uid, 999);
	assert_int_equal(c.gid, 995);
	assert_int_equal(c.ngroups, 2);
	assert_int_equal(c.groups[0], 995);
	assert_int_equal(c.groups[1], 4);
	assert_int_equal(buf->len, 0);

	/* No supplementary groups at all. */
	assert_int_equal(privs_creds_parse("u:1:2:", &c, NULL), 0);
	assert_int_equal(c.ngroups, 0);

	/* The largest ids; (uid_t) -1 is not one. */
	assert_int_equal(privs_creds_parse("a.b-c_d:4294967294:4294967294:"
					   "0,4294967294", &c, NULL), 0);
	assert_int_equal(c.uid, 4294967294U);
	assert_int_equal(c.groups[1], 4294967294U);

	/* Exactly PRIVS_MAX_GROUPS groups, via the format function. */
	strcpy(c.user, "many");
	c.uid = 10;
	c.gid = 20;
	c.ngroups = PRIVS_MAX_GROUPS;
	for (i = 0; i < PRIVS_MAX_GROUPS; i++)
		c.groups[i] = (gid_t) (1000 + i);
	strbuf_reset(buf);
	assert_int_equal(privs_creds_format(&c, buf), 0);
	assert_true(strncmp(buf->data, "many:10:20:1000,1001,", 21) == 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(privs_creds_parse(buf->data, &c, NULL), 0);
	assert_string_equal(c.user, "many");
	assert_int_equal(c.ngroups, PRIVS_MAX_GROUPS);
	assert_int_equal(c.groups[PRIVS_MAX_GROUPS - 1],
			 1000 + PRIVS_MAX_GROUPS - 1);
	strbuf_free(buf);
}

/* test_parse_bad - everything else is refused, with a reason */
static void
test_parse_bad(void **unused_state)
{
	static const char *bad[] = {
		"", "sendarix", "sendarix:", "sendarix:1", "sendarix:1:2",
		":1:2:", "a:-1:2:", "a:+1:2:", "a: 1:2:", "a:1 :2:",
		"a::2:", "a:1::", "a:0x10:2:", "a:1:2:3,", "a:1:2:,3",
		"a:1:2:3,,4", "a:1:2:x", "a:1:2:3 ", "a:1:2:3:4", "a,b:1:2:",
		"a:4294967295:2:", "a:1:4294967295:", "a:1:2:4294967295",
		"a:4294967296:2:", "a:99999999999999999999999:2:",
		"a:000000000001:2:", "a:1:2:3;4",
	};
	struct privs_creds c;
	struct strbuf *buf = strbuf_new(64, 0);
	struct strbuf *many = strbuf_new(4096, 0);
	char    longname[PRIVS_MAX_USER + 16];
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strbuf_reset(buf);
		if (privs_creds_parse(bad[i], &c, buf) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(buf->data, "malformed "
				       PRIVS_OWNER_ENV));
	}
	/* One group too many. */
	strbuf_sets(many, "u:1:2:5");
	for (i = 1; i <= PRIVS_MAX_GROUPS; i++)
		strbuf_printf(many, ",%zu", i + 5);
	assert_int_equal(privs_creds_parse(many->data, &c, NULL), -1);
	/* A name that does not fit. */
	memset(longname, 'x', PRIVS_MAX_USER);
	strcpy(longname + PRIVS_MAX_USER, ":1:2:");
	assert_int_equal(privs_creds_parse(longname, &c, NULL), -1);
	strbuf_free(many);
	strbuf_free(buf);
}

/* test_creds_lookup - what master hands down, also as a string */
static void
test_creds_lookup(void **unused_state)
{
	struct privs_creds c;
	struct privs_creds back;
	struct strbuf *buf = strbuf_new(64, 0);
	struct passwd *pw;
	int     i;

	(void) unused_state;
	assert_int_equal(privs_creds_lookup("root", &c, buf), 0);
	assert_string_equal(c.user, "root");
	assert_int_equal(c.uid, 0);
	assert_int_equal(c.gid, 0);
	assert_true(c.ngroups >= 1);
	for (i = 0; i < c.ngroups && c.groups[i] != 0; i++)
		 /* getgrouplist() lists the primary group */ ;
	assert_true(i < c.ngroups);
	strbuf_reset(buf);
	assert_int_equal(privs_creds_format(&c, buf), 0);
	assert_int_equal(strncmp(buf->data, "root:0:0:", 9), 0);
	assert_int_equal(privs_creds_parse(buf->data, &back, NULL), 0);
	assert_int_equal(back.ngroups, c.ngroups);
	assert_memory_equal(back.groups, c.groups,
			    sizeof(gid_t) * (size_t) c.ngroups);

	strbuf_reset(buf);
	assert_int_equal(privs_creds_lookup("no-such-user-xyzzy", &c, buf), -1);
	assert_non_null(strstr(buf->data, "unknown user"));
	strbuf_reset(buf);
	assert_int_equal(privs_creds_lookup("", &c, buf), -1);
	assert_true(buf->len > 0);

	if ((pw = getpwnam(TEST_USER)) != NULL) {
		assert_int_equal(privs_creds_lookup(TEST_USER, &c, NULL), 0);
		assert_int_equal(c.uid, pw->pw_uid);
		assert_int_equal(c.gid, pw->pw_gid);
	}
	strbuf_free(buf);
}

/* test_nss_loaded - is a name service module mapped in this process? */
static int
test_nss_loaded(void)
{
	char    line[4096];
	FILE   *fp = fopen("/proc/self/maps", "r");
	int     found = 0;

	if (fp == NULL)
		return (0);
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = (strstr(line, "/libnss_") != NULL);
	fclose(fp);
	return (found);
}

/* test_has_group - is gid among this process's supplementary groups? */
static int
test_has_group(gid_t gid)
{
	gid_t   groups[256];
	int     n = getgroups(256, groups);
	int     i;

	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return (1);
	return (0);
}

/* test_env_child - drop with SENDARIX_MAIL_OWNER = ctx; what happened */
static int
test_env_child(void *ctx)
{
	const char *value = ctx;
	struct passwd *pw = getpwnam(TEST_USER);
	uid_t   puid = pw->pw_uid;
	gid_t   pgid = pw->pw_gid;
	int     before = test_nss_loaded();
	uid_t   ruid, euid, suid;

	if (setenv(PRIVS_OWNER_ENV, value, 1) < 0)
		return (10);
	if (privs_drop(TEST_USER, NULL, NULL) < 0)
		return (11);
	if (getresuid(&ruid, &euid, &suid) < 0 || ruid != puid
	    || euid != puid || suid != puid || getgid() != pgid
	    || getegid() != pgid)
		return (12);
	if (setuid(0) == 0 || setgid(0) == 0)
		return (13);
	if (test_has_group(0))
		return (14);
	/* No module loaded by the drop that was not there before. */
	if (test_has_group(TEST_EXTRA_GID) && !before && test_nss_loaded())
		return (15);
	return (test_has_group(TEST_EXTRA_GID) ? 0 : 1);
}

/* test_env_value - SENDARIX_MAIL_OWNER for TEST_USER with the extra gid */
static char *
test_env_value(const char *user, char *buf, size_t len)
{
	struct passwd *pw = getpwnam(TEST_USER);

	snprintf(buf, len, "%s:%lu:%lu:%lu,%d", user,
		 (unsigned long) pw->pw_uid, (unsigned long) pw->pw_gid,
		 (unsigned long) pw->pw_gid, TEST_EXTRA_GID);
	return (buf);
}

/* test_drop_env - the handed-down value is used, without NSS */
static void
test_drop_env(void **unused_state)
{
	char    value[256];

	(void) unused_state;
	if (!test_need_root())
		skip();
	assert_int_equal(test_in_child(test_env_child,
			       test_env_value(TEST_USER, value, sizeof(value))),
			 0);
}

/* test_drop_env_other - a value for another user is not used */
static void
test_drop_env_other(void **unused_state)
{
	char    value[256];

	(void) unused_state;
	if (!test_need_root())
		skip();
	/* Exit status 1: the drop worked, but from the name service. */
	assert_int_equal(test_in_child(test_env_child,
			       test_env_value("nobody", value, sizeof(value))),
			 1);
	assert_int_equal(test_in_child(test_env_child,
			     test_env_value(TEST_USER "x", value, sizeof(value))),
			 1);
}

/* test_drop_env_malformed - a bad value: warning, then the name service */
static void
test_drop_env_malformed(void **unused_state)
{
	char    value[256];

	(void) unused_state;
	if (!test_need_root())
		skip();
	assert_int_equal(test_in_child(test_env_child, TEST_USER ":abc"), 1);
	test_env_value(TEST_USER, value, sizeof(value));
	strcat(value, ",");
	assert_int_equal(test_in_child(test_env_child, value), 1);
	assert_int_equal(test_in_child(test_env_child, ""), 1);
}

/* test_env_root_child - a value that says uid or gid 0 */
static int
test_env_root_child(void *ctx)
{
	struct strbuf *err = strbuf_new(64, 0);

	if (setenv(PRIVS_OWNER_ENV, (const char *) ctx, 1) < 0)
		return (10);
	if (privs_drop(TEST_USER, NULL, err) == 0)
		return (1);
	if (strstr(err->data, "uid or gid 0") == NULL)
		return (2);
	/* Refused before anything changed. */
	return (geteuid() == 0 && getegid() == 0 ? 0 : 3);
}

/* test_drop_env_root - uid or gid 0 in the value is refused */
static void
test_drop_env_root(void **unused_state)
{
	char    value[256];
	struct passwd *pw;

	(void) unused_state;
	if (!test_need_root())
		skip();
	pw = getpwnam(TEST_USER);
	assert_int_equal(test_in_child(test_env_root_child,
				       TEST_USER ":0:0:0"), 0);
	snprintf(value, sizeof(value), "%s:%lu:0:", TEST_USER,
		 (unsigned long) pw->pw_uid);
	assert_int_equal(test_in_child(test_env_root_child, value), 0);
	snprintf(value, sizeof(value), "%s:0:%lu:", TEST_USER,
		 (unsigned long) pw->pw_gid);
	assert_int_equal(test_in_child(test_env_root_child, value), 0);
}

/* test_env_chroot_child - handed-down value, then the chroot */
static int
test_env_chroot_child(void *ctx)
{
	char    value[256];

	if (setenv(PRIVS_OWNER_ENV, test_env_value(TEST_USER, value,
						   sizeof(value)), 1) < 0)
		return (10);
	if (test_chroot_child(ctx) != 0)
		return (11);
	return (test_has_group(TEST_EXTRA_GID) ? 0 : 12);
}

/* test_drop_env_chroot - the chroot works with the handed-down value */
static void
test_drop_env_chroot(void **unused_state)
{
	(void) unused_state;
	test_chroot_with(test_env_chroot_child);
}

int
main(void)
{
	const struct CMUnitTest privs_tests[] = {
		/* First: no test has loaded a name service module yet. */
		cmocka_unit_test(test_drop_env),
		cmocka_unit_test(test_drop_env_other),
		cmocka_unit_test(test_drop_env_malformed),
		cmocka_unit_test(test_drop_env_root),
		cmocka_unit_test(test_drop_env_chroot),
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_creds_lookup),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_refuse_root),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_chroot),
		cmocka_unit_test(test_bad_chroot),
		cmocka_unit_test(test_not_root),
	};

	return (cmocka_run_group_tests(privs_tests, NULL, NULL));
}
