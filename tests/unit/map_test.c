/*
 * map_test - unit tests for lib/map*.c (lookup tables)
 *
 * Fixtures live in tests/unit/data/map/: NAME.in is a table source and
 * NAME.ref lists "key<TAB>expected" lines ("-" for not found). Run from
 * the top of the tree.
 */

#include <sys/stat.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "map.h"
#include "strbuf.h"

#define DATA	"tests/unit/data/map/"

/* expect_lookup - one lookup and its answer */
static void
expect_lookup(struct map *map, const char *key, int want, const char *value)
{
	const char *result = NULL;
	int     got = map_lookup(map, key, &result);

	if (got != want)
		fail_msg("%s: key \"%s\": got %d, want %d", map_spec(map), key,
			 got, want);
	if (want == MAP_FOUND) {
		assert_non_null(result);
		if (strcmp(result, value) != 0)
			fail_msg("%s: key \"%s\": got \"%s\", want \"%s\"",
				 map_spec(map), key, result, value);
	}
}

/* check_ref - every line of a .ref file against an open table */
static void
check_ref(struct map *map, const char *ref)
{
	FILE   *fp = fopen(ref, "r");
	char    line[1024];
	char   *tab;
	int     n = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		line[strcspn(line, "\n")] = 0;
		if ((tab = strchr(line, '\t')) == NULL)
			continue;
		*tab++ = 0;
		if (strcmp(tab, "-") == 0)
			expect_lookup(map, line, MAP_NOTFOUND, NULL);
		else
			expect_lookup(map, line, MAP_FOUND, tab);
		n++;
	}
	fclose(fp);
	assert_true(n > 0);
}

/* expect_broken - a table that opens but answers "try again" */
static void
expect_broken(const char *spec)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct map *map = map_open(spec, err);

	if (map == NULL)
		fail_msg("%s: map_open returned NULL: %s", spec,
			 STRBUF_STR(err));
	assert_true(STRBUF_LEN(err) > 0);
	expect_lookup(map, "anything", MAP_RETRY, NULL);
	expect_lookup(map, "192.168.1.7", MAP_RETRY, NULL);
	map_close(map);
	strbuf_free(err);
}

/* open_ok - open a table that must work */
static struct map *
open_ok(const char *spec)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct map *map = map_open(spec, err);

	assert_non_null(map);
	if (STRBUF_LEN(err))
		fail_msg("%s: %s", spec, STRBUF_STR(err));
	strbuf_free(err);
	return (map);
}

static void
test_bad_spec(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);

	(void) unused_state;
	assert_null(map_open("nocolon", err));
	assert_non_null(strstr(STRBUF_STR(err), "type:name"));
	assert_null(map_open(":name", err));
	assert_null(map_open("regexp:/etc/x", err));
	assert_non_null(strstr(STRBUF_STR(err), "regexp"));
	assert_null(map_open("HASH:/etc/x", err));
	assert_null(map_open("", err));
	assert_true(map_is_spec("hash:/x"));
	assert_true(map_is_spec("inline:{a}"));
	assert_true(map_is_spec("cidr:"));
	assert_false(map_is_spec("hash"));
	assert_false(map_is_spec("::1"));
	assert_false(map_is_spec("dead:beef::1"));
	assert_false(map_is_spec("hashx:/x"));
	assert_false(map_is_spec(NULL));
	assert_null(map_close(NULL));
	assert_int_equal(map_lookup(NULL, "x", NULL), MAP_RETRY);
	strbuf_free(err);
}

static void
test_inline(void **unused_state)
{
	struct map *map;

	(void) unused_state;
	map = open_ok("inline:{ Key=Value, bare,other=x y=z, "
		      "{ spaced key = value, with comma }, empty= }");
	assert_string_equal(map_spec(map),
			    "inline:{ Key=Value, bare,other=x y=z, "
			    "{ spaced key = value, with comma }, empty= }");
	expect_lookup(map, "key", MAP_FOUND, "Value");
	expect_lookup(map, "KEY", MAP_FOUND, "Value");
	expect_lookup(map, "bare", MAP_FOUND, "OK");
	expect_lookup(map, "other", MAP_FOUND, "x");
	expect_lookup(map, "y", MAP_FOUND, "z");
	expect_lookup(map, "Spaced Key", MAP_FOUND, "value, with comma");
	expect_lookup(map, "empty", MAP_FOUND, "");
	expect_lookup(map, "value", MAP_NOTFOUND, NULL);
	expect_lookup(map, "", MAP_NOTFOUND, NULL);
	map_close(map);

	map = open_ok("inline:{a=1,a=2}");
	expect_lookup(map, "a", MAP_FOUND, "1");
	map_close(map);
}

static void
test_inline_malformed(void **unused_state)
{
	(void) unused_state;
	expect_broken("inline:{}");
	expect_broken("inline:{ , }");
	expect_broken("inline:");
	expect_broken("inline:a=b");
	expect_broken("inline:{a=b");
	expect_broken("inline:{=b}");
	expect_broken("inline:{ {a=b }");
	expect_broken("inline:{ a=b} }");
	expect_broken("inline:{ a{b }");
}

static void
test_static(void **unused_state)
{
	struct map *map;

	(void) unused_state;
	map = open_ok("static:relay:[mx.example.com]");
	expect_lookup(map, "anything", MAP_FOUND, "relay:[mx.example.com]");
	expect_lookup(map, "", MAP_FOUND, "relay:[mx.example.com]");
	map_close(map);
	map = open_ok("static:{ 550 go away, now }");
	expect_lookup(map, "X", MAP_FOUND, "550 go away, now");
	map_close(map);
	map = open_ok("static:");
	expect_lookup(map, "X", MAP_FOUND, "");
	map_close(map);
	expect_broken("static:{oops");
}

static void
test_texthash(void **unused_state)
{
	struct map *map;

	(void) unused_state;
	map = open_ok("texthash:" DATA "texthash.in");
	check_ref(map, DATA "texthash.ref");
	map_close(map);
}

static void
test_texthash_malformed(void **unused_state)
{
	(void) unused_state;
	expect_broken("texthash:" DATA "does-not-exist");
	expect_broken("texthash:" DATA "texthash_novalue.in");
	expect_broken("texthash:" DATA "texthash_indent.in");
	expect_broken("texthash:");
}

static void
test_texthash_long_line(void **unused_state)
{
	char    path[] = "/tmp/map_test_XXXXXX";
	int     fd = mkstemp(path);
	FILE   *fp;
	char    spec[64];
	int     i;

	(void) unused_state;
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	fputs("key ", fp);
	for (i = 0; i < 70000; i++)
		fputc('v', fp);
	fputc('\n', fp);
	fclose(fp);
	snprintf(spec, sizeof(spec), "texthash:%s", path);
	expect_broken(spec);
	unlink(path);
}

/* write_file - a small file */
static void
write_file(const char *path, const char *text)
{
	FILE   *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

/* copy_file - copy a fixture */
static void
copy_file(const char *from, const char *to)
{
	FILE   *in = fopen(from, "r");
	FILE   *out = fopen(to, "w");
	int     ch;

	assert_non_null(in);
	assert_non_null(out);
	while ((ch = getc(in)) != EOF)
		putc(ch, out);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* db_roundtrip - build a hash: or btree: table and read it back */
static void
db_roundtrip(const char *type, const char *other)
{
	char    dir[] = "/tmp/map_test_XXXXXX";
	char    src[128];
	char    db[140];
	char    tmp[140];
	char    spec[160];
	struct strbuf *err = strbuf_new(64, 0);
	struct map *map;
	struct stat st;
	const char *result;
	int     i;

	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/table", dir);
	snprintf(db, sizeof(db), "%s/table.db", dir);
	snprintf(tmp, sizeof(tmp), "%s/table.db.tmp", dir);
	snprintf(spec, sizeof(spec), "%s:%s", type, src);

	/* No source, no .db: build fails, lookups try later. */
	assert_int_equal(map_build(spec, err), -1);
	assert_non_null(strstr(STRBUF_STR(err), src));
	assert_int_equal(stat(db, &st), -1);
	assert_int_equal(stat(tmp, &st), -1);
	expect_broken(spec);

	copy_file(DATA "texthash.in", src);
	assert_int_equal(map_build(spec, err), 0);
	assert_int_equal(stat(db, &st), 0);
	assert_int_equal(stat(tmp, &st), -1);
	map = open_ok(spec);
	check_ref(map, DATA "texthash.ref");
	map_close(map);

	/* The other type cannot read this file. */
	snprintf(spec, sizeof(spec), "%s:%s", other, src);
	expect_broken(spec);
	snprintf(spec, sizeof(spec), "%s:%s", type, src);

	/* Rebuild replaces the table; an open map notices within 1s. */
	map = open_ok(spec);
	expect_lookup(map, "example.com", MAP_FOUND, "relay:[mx.example.com]");
	write_file(src, "New.Key\tnew value\n");
	assert_int_equal(map_build(spec, err), 0);
	for (i = 0; i < 60; i++) {
		if (map_lookup(map, "new.key", &result) == MAP_FOUND)
			break;
		usleep(50000);
	}
	expect_lookup(map, "new.key", MAP_FOUND, "new value");
	expect_lookup(map, "example.com", MAP_NOTFOUND, NULL);
	map_close(map);
	map = open_ok(spec);
	expect_lookup(map, "new.key", MAP_FOUND, "new value");
	expect_lookup(map, "NEW.KEY", MAP_FOUND, "new value");
	expect_lookup(map, "example.com", MAP_NOTFOUND, NULL);
	map_close(map);

	/* A malformed source fails and leaves the old table alone. */
	write_file(src, "ok value\nbroken\n");
	assert_int_equal(map_build(spec, err), -1);
	assert_non_null(strstr(STRBUF_STR(err), "line 2"));
	assert_int_equal(stat(tmp, &st), -1);
	map = open_ok(spec);
	expect_lookup(map, "new.key", MAP_FOUND, "new value");
	map_close(map);

	/* Empty source: an empty table, not an error. */
	write_file(src, "# nothing\n");
	assert_int_equal(map_build(spec, err), 0);
	map = open_ok(spec);
	expect_lookup(map, "new.key", MAP_NOTFOUND, NULL);
	map_close(map);

	unlink(src);
	unlink(db);
	rmdir(dir);
	strbuf_free(err);
}

static void
test_hash(void **unused_state)
{
	(void) unused_state;
	db_roundtrip("hash", "btree");
}

static void
test_btree(void **unused_state)
{
	(void) unused_state;
	db_roundtrip("btree", "hash");
}

static void
test_build_bad(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);

	(void) unused_state;
	assert_int_equal(map_build("texthash:" DATA "texthash.in", err), -1);
	assert_non_null(strstr(STRBUF_STR(err), "texthash"));
	assert_int_equal(map_build("nosuch:/x", err), -1);
	assert_int_equal(map_build("nocolon", err), -1);
	assert_int_equal(map_build("hash:", err), -1);
	strbuf_free(err);
}

static void
test_pcre(void **unused_state)
{
	struct map *map;

	(void) unused_state;
	map = open_ok("pcre:" DATA "pcre.in");
	check_ref(map, DATA "pcre.ref");
	map_close(map);
}

static void
test_pcre_malformed(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct map *map;

	(void) unused_state;
	map = map_open("pcre:" DATA "pcre_badre.in", err);
	assert_non_null(map);
	assert_non_null(strstr(STRBUF_STR(err), "pcre_badre.in, line 2"));
	expect_lookup(map, "ok", MAP_RETRY, NULL);
	map_close(map);
	expect_broken("pcre:" DATA "pcre_badref.in");
	expect_broken("pcre:" DATA "pcre_noendif.in");
	expect_broken("pcre:" DATA "pcre_endif.in");
	expect_broken("pcre:" DATA "pcre_noresult.in");
	expect_broken("pcre:" DATA "pcre_badflag.in");
	expect_broken("pcre:" DATA "pcre_unclosed.in");
	expect_broken("pcre:" DATA "does-not-exist");
	strbuf_free(err);
}

static void
test_cidr(void **unused_state)
{
	struct map *map;

	(void) unused_state;
	map = open_ok("cidr:" DATA "cidr.in");
	check_ref(map, DATA "cidr.ref");
	map_close(map);
}

static void
test_cidr_malformed(void **unused_state)
{
	(void) unused_state;
	expect_broken("cidr:" DATA "cidr_badprefix.in");
	expect_broken("cidr:" DATA "cidr_badnet.in");
	expect_broken("cidr:" DATA "cidr_noresult.in");
	expect_broken("cidr:" DATA "cidr_badv6.in");
	expect_broken("cidr:" DATA "does-not-exist");
}

static void
test_net_parse(void **unused_state)
{
	static const char *good[] = {
		"1.2.3.0/24", "1.2.3.4", "0.0.0.0/0", "::1", "[::1]/128",
		"[2001:db8::]/32", "2001:db8::/32", "::/0", "[1.2.3.4]",
		"::ffff:1.2.3.0/120", "1.2.3.4/32", "fe80::1%eth0",
	};
	static const char *bad[] = {
		"", "1.2.3", "1.2.3.4/33", "::1/129", "1.2.3.4/", "1.2.3.4/-1",
		"1.2.3.4/1a", "1.2.3.4/0024", "[::1", "::1]", "[]", "foo",
		"1.2.3.256", "1.2.3.4 /8", "hash:/x", "/24", "1.2.3.4/8/8",
		"::1::1",
	};
	struct map_net net;
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (map_net_parse(good[i], &net) != 0)
			fail_msg("rejected \"%s\"", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (map_net_parse(bad[i], &net) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(map_net_parse(NULL, &net), -1);

	assert_int_equal(map_net_parse("1.2.3.0/24", &net), 0);
	assert_int_equal(net.family, AF_INET);
	assert_int_equal(net.prefix, 24);
	assert_int_equal(net.addr[2], 3);
	assert_int_equal(map_net_parse("[2001:db8::]/32", &net), 0);
	assert_int_equal(net.family, AF_INET6);
	assert_int_equal(net.prefix, 32);
	assert_int_equal(net.addr[0], 0x20);
	assert_int_equal(map_net_parse("::1", &net), 0);
	assert_int_equal(net.prefix, 128);
	assert_int_equal(net.addr[15], 1);

	/* Host bits are masked away. */
	assert_int_equal(map_net_parse("10.1.2.3/8", &net), 0);
	assert_int_equal(net.addr[0], 10);
	assert_int_equal(net.addr[1], 0);
	assert_int_equal(net.addr[3], 0);
	assert_int_equal(map_net_parse("10.255.0.0/9", &net), 0);
	assert_int_equal(net.addr[1], 0x80);
}

static void
test_net_match(void **unused_state)
{
	struct map_net net;

	(void) unused_state;
	assert_int_equal(map_net_parse("192.0.2.0/24", &net), 0);
	assert_int_equal(map_net_match(&net, "192.0.2.1"), 1);
	assert_int_equal(map_net_match(&net, "192.0.2.255"), 1);
	assert_int_equal(map_net_match(&net, "192.0.3.1"), 0);
	assert_int_equal(map_net_match(&net, "[192.0.2.1]"), 1);
	assert_int_equal(map_net_match(&net, "::ffff:192.0.2.9"), 1);
	assert_int_equal(map_net_match(&net, "[::ffff:192.0.2.9]"), 1);
	assert_int_equal(map_net_match(&net, "::ffff:192.0.3.9"), 0);
	assert_int_equal(map_net_match(&net, "::192.0.2.9"), 0);
	assert_int_equal(map_net_match(&net, "2001:db8::1"), 0);
	assert_int_equal(map_net_match(&net, "garbage"), 0);
	assert_int_equal(map_net_match(&net, ""), 0);
	assert_int_equal(map_net_match(&net, NULL), 0);
	assert_int_equal(map_net_match(NULL, "192.0.2.1"), 0);

	assert_int_equal(map_net_parse("10.128.0.0/9", &net), 0);
	assert_int_equal(map_net_match(&net, "10.128.0.1"), 1);
	assert_int_equal(map_net_match(&net, "10.255.255.255"), 1);
	assert_int_equal(map_net_match(&net, "10.127.255.255"), 0);

	assert_int_equal(map_net_parse("0.0.0.0/0", &net), 0);
	assert_int_equal(map_net_match(&net, "203.0.113.5"), 1);
	assert_int_equal(map_net_match(&net, "::1"), 0);

	assert_int_equal(map_net_parse("[2001:db8::]/32", &net), 0);
	assert_int_equal(map_net_match(&net, "2001:db8:ffff::1"), 1);
	assert_int_equal(map_net_match(&net, "[2001:DB8::1]"), 1);
	assert_int_equal(map_net_match(&net, "2001:db9::1"), 0);
	assert_int_equal(map_net_match(&net, "192.0.2.1"), 0);

	assert_int_equal(map_net_parse("::1", &net), 0);
	assert_int_equal(map_net_match(&net, "::1"), 1);
	assert_int_equal(map_net_match(&net, "0:0:0:0:0:0:0:1"), 1);
	assert_int_equal(map_net_match(&net, "::2"), 0);

	assert_int_equal(map_net_parse("fe80::/10", &net), 0);
	assert_int_equal(map_net_match(&net, "fe80::1%eth0"), 1);

	/* An IPv4 key matches an IPv4-mapped IPv6 network. */
	assert_int_equal(map_net_parse("::ffff:0:0/96", &net), 0);
	assert_int_equal(map_net_match(&net, "198.51.100.1"), 1);
}

static void
test_result_owned(void **unused_state)
{
	struct map *map = open_ok("pcre:" DATA "pcre.in");
	const char *r1;
	const char *r2;
	char    save[64];

	(void) unused_state;
	assert_int_equal(map_lookup(map, "a@example.com", &r1), MAP_FOUND);
	snprintf(save, sizeof(save), "%s", r1);
	assert_int_equal(map_lookup(map, "nosuch@lists.x.org", &r2),
			 MAP_FOUND);
	assert_string_equal(save, "user=a at example");
	assert_string_equal(r2, "list nosuch on x.org");
	/* A NULL result pointer is allowed. */
	assert_int_equal(map_lookup(map, "a@example.com", NULL), MAP_FOUND);
	map_close(map);
}

int
main(void)
{
	const struct CMUnitTest map_tests[] = {
		cmocka_unit_test(test_bad_spec),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_inline_malformed),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_texthash),
		cmocka_unit_test(test_texthash_malformed),
		cmocka_unit_test(test_texthash_long_line),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_btree),
		cmocka_unit_test(test_build_bad),
		cmocka_unit_test(test_pcre),
		cmocka_unit_test(test_pcre_malformed),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_malformed),
		cmocka_unit_test(test_net_parse),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_result_owned),
	};

	return (cmocka_run_group_tests_name("map", map_tests, NULL, NULL));
}
