/*
 * map_fuzz - libFuzzer target for the table text formats
 *
 * SYNOPSIS
 *	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *	    -Ilib -o map_fuzz tests/fuzz/map_fuzz.c lib/map*.c \
 *	    lib/util/matchlist.c lib/util/strbuf.c lib/util/xmalloc.c lib/util/log.c \
 *	    -lpcre2-8 -ldb
 *	./map_fuzz [corpus...]
 *
 * DESCRIPTION
 *	The first input byte picks the parser; the rest is its input:
 *	0 texthash file, 1 pcre file, 2 cidr file, 3 inline: spec,
 *	4 static: spec, 5 address match list, 6 domain match list. Files
 *	are given through a memfd. Each opened table is then asked a few
 *	keys taken from the input, so the lookup paths (pcre substitution,
 *	cidr matching) run on what the parser accepted.
 */

#include <sys/mman.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"

static const char *const map_fuzz_keys[] = {
	"", "example.com", "a@Example.COM", "192.0.2.1", "::1",
	"::ffff:10.0.0.1", "2001:db8::1", "[127.0.0.1]", "x.y.z.",
};

/* map_fuzz_lookups - ask some fixed keys and the input's first word */
static void
map_fuzz_lookups(struct map *map, const char *text)
{
	char    word[256];
	const char *result;
	size_t  i;

	for (i = 0; i < sizeof(map_fuzz_keys) / sizeof(map_fuzz_keys[0]); i++)
		(void) map_lookup(map, map_fuzz_keys[i], &result);
	snprintf(word, sizeof(word), "%s", text);
	word[strcspn(word, " \t\r\n")] = 0;
	(void) map_lookup(map, word, &result);
}

/* map_fuzz_file - open a file-backed table over a memfd */
static void
map_fuzz_file(const char *type, const char *data, size_t len)
{
	int     fd = memfd_create("map_fuzz", MFD_CLOEXEC);
	char    spec[64];
	struct map *map;

	if (fd < 0)
		abort();
	if (len && write(fd, data, len) != (ssize_t) len)
		abort();
	snprintf(spec, sizeof(spec), "%s:/proc/self/fd/%d", type, fd);
	map = map_open(spec, NULL);
	if (map == NULL)
		abort();			/* a known type always opens */
	map_fuzz_lookups(map, data);
	map_close(map);
	close(fd);
}

/* map_fuzz_spec - a table written in the spec itself */
static void
map_fuzz_spec(const char *type, const char *data)
{
	struct strbuf *spec = strbuf_new(64, 0);
	struct map *map;

	strbuf_printf(spec, "%s:%s", type, data);
	map = map_open(STRBUF_STR(spec), NULL);
	if (map == NULL)
		abort();
	map_fuzz_lookups(map, data);
	map_close(map);
	strbuf_free(spec);
}

/* map_fuzz_list - a match list */
static void
map_fuzz_list(int is_addr, const char *data)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct matchlist *ml;
	size_t  nkeys = sizeof(map_fuzz_keys) / sizeof(map_fuzz_keys[0]);
	size_t  i;

	/* No "/file" items: the fuzzer must not read the file system. */
	for (i = 0; data[i]; i++) {
		if (data[i] == '/' && (i == 0 || strchr(" \t\r\n,!{",
							 data[i - 1]))) {
			strbuf_free(err);
			return;
		}
	}
	ml = is_addr ? matchlist_addr(data, err) : matchlist_domain(data, err);
	if (ml) {
		for (i = 0; i < nkeys; i++)
			(void) matchlist_match(ml, map_fuzz_keys[i]);
		matchlist_free(ml);
	}
	strbuf_free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *buf, size_t len)
{
	static int init;
	char   *data;

	if (!init) {
		log_init("map_fuzz");
		log_open("/dev/null", "map_fuzz", NULL);
		init = 1;
	}
	if (len < 1 || len > 65536)
		return (0);
	data = malloc(len);
	if (data == NULL)
		return (0);
	memcpy(data, buf + 1, len - 1);
	data[len - 1] = 0;
	switch (buf[0] % 7) {
	case 0:
		map_fuzz_file("texthash", data, len - 1);
		break;
	case 1:
		map_fuzz_file("pcre", data, len - 1);
		break;
	case 2:
		map_fuzz_file("cidr", data, len - 1);
		break;
	case 3:
		map_fuzz_spec("inline", data);
		break;
	case 4:
		map_fuzz_spec("static", data);
		break;
	case 5:
		map_fuzz_list(1, data);
		break;
	case 6:
		map_fuzz_list(0, data);
		break;
	}
	free(data);
	return (0);
}
