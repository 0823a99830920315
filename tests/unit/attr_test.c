/*
 * attr_test - unit tests for lib/util/attr.c
 *
 * Fixtures: tests/unit/data/attr/bad-*.in must each be refused by
 * attr_list_parse(); good-*.in must each be one whole list, and their
 * .ref file holds one "name len" line per attribute.
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "attr.h"
#include "strbuf.h"

#define DATA_DIR	"tests/unit/data/attr"

/* test_roundtrip - encode, then decode every kind of value */
static void
test_roundtrip(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);
	struct attr_list list = {0};
	static const char bin[] = "a\0b\nc\n\n=:";
	size_t  used = 0;
	long long v;

	(void) unused_state;
	assert_int_equal(attr_puts(sb, "sender", "alice@example.com"), 0);
	assert_int_equal(attr_puts(sb, "rcpt", "b@c.d"), 0);
	assert_int_equal(attr_puts(sb, "rcpt", "e@f.g"), 0);
	assert_int_equal(attr_put(sb, "data", bin, sizeof(bin) - 1), 0);
	assert_int_equal(attr_puts(sb, "empty", ""), 0);
	assert_int_equal(attr_putl(sb, "size", 12345), 0);
	assert_int_equal(attr_putl(sb, "neg", -42), 0);
	assert_int_equal(attr_putl(sb, "big", LLONG_MAX), 0);
	assert_int_equal(attr_end(sb), 0);
	assert_memory_equal(sb->data, "sender=17:alice@example.com\nrcpt=5:b@c.d\n",
			    41);

	assert_int_equal(attr_list_parse(sb->data, sb->len, 1024, &list, &used), 1);
	assert_int_equal(used, sb->len);
	assert_int_equal(list.n, 8);
	assert_string_equal(attr_list_get(&list, "sender"), "alice@example.com");
	assert_string_equal(attr_list_get(&list, "rcpt"), "b@c.d");
	assert_string_equal(list.values[2], "e@f.g");
	assert_int_equal(list.lens[3], sizeof(bin) - 1);
	assert_memory_equal(list.values[3], bin, sizeof(bin) - 1);
	assert_int_equal(list.values[3][sizeof(bin) - 1], 0);
	assert_string_equal(attr_list_get(&list, "empty"), "");
	assert_null(attr_list_get(&list, "nope"));
	assert_int_equal(attr_list_getl(&list, "size", &v), 0);
	assert_int_equal(v, 12345);
	assert_int_equal(attr_list_getl(&list, "neg", &v), 0);
	assert_int_equal(v, -42);
	assert_int_equal(attr_list_getl(&list, "big", &v), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(attr_list_getl(&list, "sender", &v), -1);
	assert_int_equal(attr_list_getl(&list, "empty", &v), -1);
	assert_int_equal(attr_list_getl(&list, "data", &v), -1);
	assert_int_equal(attr_list_getl(&list, "nope", &v), -1);

	/* The list is reusable after a clear, and parse empties it first. */
	assert_int_equal(attr_list_parse("\n", 1, 0, &list, &used), 1);
	assert_int_equal(list.n, 0);
	assert_int_equal(used, 1);
	attr_list_clear(&list);
	strbuf_free(sb);
}

/* test_next - attr_next on single attributes */
static void
test_next(void **unused_state)
{
	struct attr a;
	size_t  used = 0;
	static const char buf[] = "queue_id=3:ABC\n\nrest";

	(void) unused_state;
	assert_int_equal(attr_next(buf, sizeof(buf) - 1, 100, &a, &used), ATTR_OK);
	assert_int_equal(used, 15);
	assert_int_equal(a.namelen, 8);
	assert_true(attr_name_is(&a, "queue_id"));
	assert_false(attr_name_is(&a, "queue"));
	assert_false(attr_name_is(&a, "queue_idx"));
	assert_int_equal(a.len, 3);
	assert_memory_equal(a.value, "ABC", 3);
	assert_ptr_equal(a.value, buf + 11);
	assert_int_equal(attr_next(buf + 15, sizeof(buf) - 16, 100, &a, &used),
			 ATTR_END);
	assert_int_equal(used, 1);
	assert_int_equal(attr_next(buf, 0, 100, &a, &used), ATTR_MORE);
	/* A zero length value. */
	assert_int_equal(attr_next("x=0:\n", 5, 0, &a, &used), ATTR_OK);
	assert_int_equal(a.len, 0);
	assert_int_equal(used, 5);
}

/* test_split - every prefix of a valid list needs more, never bad */
static void
test_split(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 0);
	struct attr_list list = {0};
	static const char bin[] = "\n\n0:=\0\n";
	size_t  used;
	size_t  i;
	size_t  total;

	(void) unused_state;
	assert_int_equal(attr_puts(sb, "status", "0"), 0);
	assert_int_equal(attr_put(sb, "data", bin, sizeof(bin) - 1), 0);
	assert_int_equal(attr_puts(sb, "a_very_long_name_of_32_chars_xyz", "v"), 0);
	assert_int_equal(attr_putl(sb, "n", 1234567890), 0);
	assert_int_equal(attr_puts(sb, "z", ""), 0);
	assert_int_equal(attr_end(sb), 0);
	total = sb->len;
	/* Trailing bytes of a next list must not matter. */
	assert_int_equal(attr_puts(sb, "next", "x"), 0);

	for (i = 0; i < total; i++) {
		struct attr a;
		size_t  pos = 0;
		int     ret;

		used = 12345;
		assert_int_equal(attr_list_parse(sb->data, i, 100, &list, &used), 0);
		assert_int_equal(list.n, 0);
		assert_int_equal(used, 12345);

		/* attr_next over the same prefix: OK... then MORE, never BAD. */
		while ((ret = attr_next(sb->data + pos, i - pos, 100, &a, &used))
		       == ATTR_OK)
			pos += used;
		assert_int_equal(ret, ATTR_MORE);
	}
	assert_int_equal(attr_list_parse(sb->data, total, 100, &list, &used), 1);
	assert_int_equal(used, total);
	assert_int_equal(list.n, 5);
	assert_int_equal(list.lens[1], sizeof(bin) - 1);
	assert_memory_equal(list.values[1], bin, sizeof(bin) - 1);
	assert_int_equal(attr_list_parse(sb->data, sb->len, 100, &list, &used), 1);
	assert_int_equal(used, total);
	attr_list_clear(&list);
	strbuf_free(sb);
}

/* test_malformed - each kind of bad input */
static void
test_malformed(void **unused_state)
{
	static const struct {
		const char *in;
		size_t  maxval;
	}       bad[] = {
		{"A=1:x\n\n", 0},		/* upper case name */
		{"=1:x\n\n", 0},		/* empty name */
		{"a-b=1:x\n\n", 0},		/* bad name byte */
		{"a b", 0},
		{"abcdefghijabcdefghijabcdefghijabc=1:x\n\n", 0},	/* 33 */
		{"abcdefghijabcdefghijabcdefghijabc", 0},	/* 33, no '=' yet */
		{"a=01:x\n\n", 0},		/* leading zero */
		{"a=00:\n\n", 0},
		{"a=0", 0} ,			/* incomplete is fine, see below */
		{"a=12345678901:", 0},		/* 11 digits */
		{"a=12345678901", 0},
		{"a=:x\n\n", 0},		/* no digits */
		{"a=1x:x\n\n", 0},		/* not a digit */
		{"a=-1:x\n\n", 0},		/* sign */
		{"a=+1:x\n\n", 0},
		{"a= 1:x\n\n", 0},
		{"a=1:xy\n\n", 0},		/* value longer than length */
		{"a=2:x\nz\n\n", 0},	/* value "x\\n", then z not \\n */
		{"a=1:x\r\n\n", 0},
		{"a=5:abcde\n\n", 4},		/* over maxval */
		{"a=50", 4},			/* over maxval, before ':' */
		{"\r\n", 0},
		{"a=1:x\nb", 0},		/* "b" is incomplete: see below */
		{"a=1:x\n\x80=1:x\n\n", 0},
	};
	struct attr_list list = {0};
	struct attr a;
	size_t  used;
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t  len = strlen(bad[i].in);
		int     want = -1;

		if (strcmp(bad[i].in, "a=0") == 0 || strcmp(bad[i].in, "a=1:x\nb") == 0)
			want = 0;
		if (attr_list_parse(bad[i].in, len, bad[i].maxval, &list, &used)
		    != want)
			fail_msg("case %zu \"%s\": want %d", i, bad[i].in, want);
		assert_int_equal(list.n, 0);
	}
	/* Exactly at the limits is fine. */
	assert_int_equal(attr_next("a=4:abcd\n", 9, 4, &a, &used), ATTR_OK);
	assert_int_equal(attr_next("abcdefghijabcdefghijabcdefghijab=0:\n", 36, 4,
				   &a, &used), ATTR_OK);
	assert_int_equal(a.namelen, 32);
	assert_int_equal(attr_next("a=9999999999:", 13, 0, &a, &used), ATTR_MORE);
	assert_int_equal(attr_next("a=0:\n", 5, 0, &a, &used), ATTR_OK);
	/* A NUL byte is data in a value, but never a name. */
	assert_int_equal(attr_next("a\0=0:\n", 6, 0, &a, &used), ATTR_BAD);
	attr_list_clear(&list);
}

/* test_put_limits - encoding past a buffer limit changes nothing */
static void
test_put_limits(void **unused_state)
{
	struct strbuf *sb = strbuf_new(0, 16);
	char    name[ATTR_NAME_MAX + 2];

	(void) unused_state;
	assert_int_equal(attr_puts(sb, "a", "12345"), 0);	/* 10 bytes */
	assert_int_equal(sb->len, 10);
	assert_int_equal(attr_puts(sb, "b", "123"), -1);	/* 8 > 6 */
	assert_int_equal(sb->len, 10);
	assert_memory_equal(sb->data, "a=5:12345\n", 10);
	assert_int_equal(attr_puts(sb, "b", "1"), 0);		/* 6 */
	assert_int_equal(sb->len, 16);
	assert_int_equal(attr_end(sb), -1);
	strbuf_free(sb);

	sb = strbuf_new(0, 0);
	assert_int_equal(attr_puts(sb, "", "x"), -1);
	assert_int_equal(attr_puts(sb, "Bad", "x"), -1);
	assert_int_equal(attr_puts(sb, "a=b", "x"), -1);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	assert_int_equal(attr_puts(sb, name, "x"), -1);
	name[ATTR_NAME_MAX] = 0;
	assert_int_equal(attr_puts(sb, name, "x"), 0);
	strbuf_free(sb);
}

/* test_fd - blocking helpers over a socket pair, with leftovers */
static void
test_fd(void **unused_state)
{
	int     sv[2];
	struct strbuf *out = strbuf_new(0, 0);
	struct strbuf *in = strbuf_new(0, 4 << 20);
	struct attr_list list = {0};
	char   *big = malloc(1 << 20);
	pid_t   pid;
	int     status;

	(void) unused_state;
	assert_non_null(big);
	memset(big, 'x', 1 << 20);
	big[12345] = '\n';
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(attr_puts(out, "status", "0"), 0);
	assert_int_equal(attr_put(out, "data", big, 1 << 20), 0);
	assert_int_equal(attr_end(out), 0);
	assert_int_equal(attr_puts(out, "queue_id", "ABC"), 0);
	assert_int_equal(attr_end(out), 0);
	assert_int_equal(attr_puts(out, "partial", "xyz"), 0);

	/* The writer must cope with short writes: 1 MiB > socket buffer. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(attr_write_fd(sv[1], out) == 0 ? 0 : 1);
	}
	close(sv[1]);
	assert_int_equal(attr_read_fd(sv[0], in, 2 << 20, 10, &list), 0);
	assert_int_equal(list.n, 2);
	assert_int_equal(list.lens[1], 1 << 20);
	assert_memory_equal(list.values[1], big, 1 << 20);
	/* The second list may already be in the buffer. */
	assert_int_equal(attr_read_fd(sv[0], in, 2 << 20, 10, &list), 0);
	assert_int_equal(list.n, 1);
	assert_string_equal(attr_list_get(&list, "queue_id"), "ABC");
	/* Then an incomplete list and end of file. */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(attr_read_fd(sv[0], in, 2 << 20, 10, &list), -1);
	assert_int_equal(errno, 0);
	assert_int_equal(list.n, 0);
	close(sv[0]);

	/* Timeout. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	strbuf_reset(in);
	assert_int_equal(write(sv[1], "a=1:", 4), 4);
	assert_int_equal(attr_read_fd(sv[0], in, 100, 1, &list), -1);
	assert_int_equal(errno, ETIMEDOUT);
	/* Malformed, after the rest arrives. */
	assert_int_equal(write(sv[1], "xx\n\n", 4), 4);
	assert_int_equal(attr_read_fd(sv[0], in, 100, 1, &list), -1);
	assert_int_equal(errno, EPROTO);
	close(sv[0]);
	close(sv[1]);

	/* A value over maxval is refused before it is all read. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	strbuf_reset(in);
	assert_int_equal(write(sv[1], "data=65537:", 11), 11);
	assert_int_equal(attr_read_fd(sv[0], in, 65536, 1, &list), -1);
	assert_int_equal(errno, EPROTO);
	close(sv[0]);
	close(sv[1]);

	attr_list_clear(&list);
	free(big);
	strbuf_free(in);
	strbuf_free(out);
}

/* read_fixture - the bytes of one file */
static struct strbuf *
read_fixture(const char *path)
{
	struct strbuf *sb = strbuf_new(0, 0);
	FILE   *fp = fopen(path, "rb");
	char    buf[4096];
	size_t  n;

	if (fp == NULL) {
		fail_msg("%s: %s", path, strerror(errno));
		return (sb);
	}
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		assert_int_equal(strbuf_append(sb, buf, n), 0);
	fclose(fp);
	return (sb);
}

/* test_fixtures - good-*.in parse as their .ref says, bad-*.in fail */
static void
test_fixtures(void **unused_state)
{
	DIR    *dir = opendir(DATA_DIR);
	struct dirent *de;
	int     nbad = 0;
	int     ngood = 0;

	(void) unused_state;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		char    path[512];
		struct strbuf *in;
		struct strbuf *ref;
		struct strbuf *got;
		struct attr_list list = {0};
		size_t  used;
		size_t  i;
		size_t  n = strlen(de->d_name);

		if (n < 4 || strcmp(de->d_name + n - 3, ".in") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", DATA_DIR, de->d_name);
		in = read_fixture(path);
		if (strncmp(de->d_name, "bad-", 4) == 0) {
			if (attr_list_parse(in->data, in->len, 65536, &list, &used) != -1)
				fail_msg("%s: not refused", path);
			nbad++;
		} else {
			if (attr_list_parse(in->data, in->len, 65536, &list, &used) != 1)
				fail_msg("%s: not a whole list", path);
			assert_int_equal(used, in->len);
			got = strbuf_new(0, 0);
			for (i = 0; i < list.n; i++)
				strbuf_printf(got, "%s %zu\n", list.names[i], list.lens[i]);
			snprintf(path + strlen(path) - 3, 5, ".ref");
			ref = read_fixture(path);
			if (got->len != ref->len || memcmp(got->data, ref->data, ref->len))
				fail_msg("%s: got\n%s", path, got->data);
			strbuf_free(got);
			strbuf_free(ref);
			ngood++;
		}
		attr_list_clear(&list);
		strbuf_free(in);
	}
	closedir(dir);
	assert_true(nbad > 0);
	assert_true(ngood > 0);
}

int
main(void)
{
	const struct CMUnitTest attr_tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_put_limits),
		cmocka_unit_test(test_fd),
		cmocka_unit_test(test_fixtures),
	};

	return (cmocka_run_group_tests_name("attr", attr_tests, NULL, NULL));
}
