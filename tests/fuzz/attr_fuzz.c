/*
 * attr_fuzz - libFuzzer target for the attribute list parser
 *
 * Build: clang -fsanitize=fuzzer,address -Ilib tests/fuzz/attr_fuzz.c \
 *	lib/util/attr.c lib/util/strbuf.c lib/util/xmalloc.c lib/util/log.c
 *
 * Checks beyond "does not crash": a parsed list encodes back to exactly
 * the bytes it came from (the wire form is canonical), every shorter
 * prefix of a complete list is "need more", and attr_next() agrees with
 * attr_list_parse().
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "strbuf.h"

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *) data;
	struct attr_list list = {0};
	struct strbuf *sb;
	struct attr a;
	size_t  used = 0;
	size_t  pos = 0;
	size_t  n;
	size_t  i;
	int     ret;
	int     step;

	ret = attr_list_parse(buf, size, 4096, &list, &used);

	/* attr_next() over the same bytes must reach the same verdict. */
	while ((step = attr_next(buf + pos, size - pos, 4096, &a, &n)) == ATTR_OK)
		pos += n;
	if ((ret == 1) != (step == ATTR_END) || (ret == 0) != (step == ATTR_MORE)
	    || (ret == -1) != (step == ATTR_BAD))
		abort();
	if (ret != 1) {
		if (list.n != 0)
			abort();
		return (0);
	}
	if (used != pos + 1 || used > size)
		abort();

	/* Canonical: encoding the list gives the input back. */
	sb = strbuf_new(used, 0);
	for (i = 0; i < list.n; i++) {
		if (list.values[i][list.lens[i]] != 0)
			abort();
		if (attr_put(sb, list.names[i], list.values[i], list.lens[i]) < 0)
			abort();
	}
	attr_end(sb);
	if (sb->len != used || memcmp(sb->data, buf, used) != 0)
		abort();
	strbuf_free(sb);

	/* Any prefix of a whole list needs more bytes. */
	for (i = 0; i < used; i += 1 + used / 64) {
		struct attr_list l2 = {0};

		if (attr_list_parse(buf, i, 4096, &l2, &n) != 0)
			abort();
		attr_list_clear(&l2);
	}
	attr_list_clear(&list);
	return (0);
}
