/*
 * privs_test - unit tests for lib/util/privs.c
 *
 * The drop itself needs root: those cases run in a forked child (so the
 * test process keeps its privileges) and are skipped for other users.
 * The mail owner is the "sendarix" user that tools/install-deps makes;
 * cases that need it are skipped when it does not exist.
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

/* test_chroot - the chroot happens, and the drop after it */
static void
test_chroot(void **unused_state)
{
	char    dir[] = "/tmp/privs_test.XXXXXX";
	char    path[sizeof(dir) + 16];
	FILE   *fp;

	(void) unused_state;
	if (!test_need_root())
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/marker", dir);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	assert_int_equal(test_in_child(test_chroot_child, dir), 0);
	unlink(path);
	rmdir(dir);
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

int
main(void)
{
	const struct CMUnitTest privs_tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_refuse_root),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_chroot),
		cmocka_unit_test(test_bad_chroot),
		cmocka_unit_test(test_not_root),
	};

	return (cmocka_run_group_tests(privs_tests, NULL, NULL));
}
