/*
 * map_inline - the inline: table type
 *
 * SYNOPSIS
 *	inline:{ key=value, key2, { key3 = value with spaces, or commas } }
 *
 * DESCRIPTION
 *	A table written in place. Items are separated by white space and/or
 *	commas. "key=value" maps key to value; a bare "key" maps to "OK"; an
 *	item in its own braces may hold white space and commas and is split
 *	at its first '=' (white space around the key and value is dropped).
 *	Keys are folded to lower case; the first of two equal keys wins.
 *	Reached only through map_open() (map_impl.h).
 *
 * DIAGNOSTICS
 *	A table without the outer braces, with unbalanced braces, an empty
 *	key, or no items at all ("inline:{}", as in Postfix) does not open:
 *	map_open() then logs why and the map answers MAP_RETRY.
 *
 * SEE ALSO
 *	map(3)
 */

#include <ctype.h>
#include <string.h>

#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

struct map_inline {
	size_t  count;
	char  **keys;
	char  **values;
};

#define MAP_INLINE_SEP(c)	(isspace((unsigned char) (c)) || (c) == ',')

/* map_inline_trim - strip white space from both ends of [s, e) */
static char *
map_inline_trim(const char *s, const char *e)
{
	while (s < e && isspace((unsigned char) *s))
		s++;
	while (e > s && isspace((unsigned char) e[-1]))
		e--;
	return (xstrndup(s, (size_t) (e - s)));
}

/* map_inline_add - add one item */
static int
map_inline_add(struct map_inline *mi, const char *s, const char *e,
	       struct strbuf *why)
{
	const char *eq = memchr(s, '=', (size_t) (e - s));
	char   *key;
	char   *value;

	key = map_inline_trim(s, eq ? eq : e);
	if (*key == 0) {
		strbuf_printf(why, "empty key in item \"%.*s\"",
			      (int) (e - s), s);
		xfree(key);
		return (-1);
	}
	map_fold(key);
	value = eq ? map_inline_trim(eq + 1, e) : xstrdup("OK");
	mi->keys = xreallocarray(mi->keys, mi->count + 1, sizeof(char *));
	mi->values = xreallocarray(mi->values, mi->count + 1, sizeof(char *));
	mi->keys[mi->count] = key;
	mi->values[mi->count] = value;
	mi->count++;
	return (0);
}

/* map_inline_parse - read the items between the outer braces */
static int
map_inline_parse(struct map_inline *mi, const char *name, struct strbuf *why)
{
	const char *p = name;
	const char *end = name + strlen(name);
	const char *s;
	int     depth;

	while (p < end && isspace((unsigned char) *p))
		p++;
	while (end > p && isspace((unsigned char) end[-1]))
		end--;
	if (end - p < 2 || *p != '{' || end[-1] != '}') {
		strbuf_sets(why, "bad syntax: expected "
			    "inline:{key=value, ...}");
		return (-1);
	}
	p++;
	end--;
	while (p < end) {
		if (MAP_INLINE_SEP(*p)) {
			p++;
			continue;
		}
		if (*p == '{') {
			for (s = ++p, depth = 1; p < end; p++) {
				if (*p == '{')
					depth++;
				else if (*p == '}' && --depth == 0)
					break;
			}
			if (p >= end) {
				strbuf_sets(why, "unbalanced '{'");
				return (-1);
			}
			if (map_inline_add(mi, s, p, why) < 0)
				return (-1);
			p++;
			continue;
		}
		for (s = p; p < end && !MAP_INLINE_SEP(*p); p++) {
			if (*p == '{' || *p == '}') {
				strbuf_printf(why, "unexpected '%c'", *p);
				return (-1);
			}
		}
		if (map_inline_add(mi, s, p, why) < 0)
			return (-1);
	}
	if (mi->count == 0) {
		strbuf_sets(why, "empty table: expected "
			    "inline:{key=value, ...}");
		return (-1);
	}
	return (0);
}

/* map_inline_open - parse the table */
static int
map_inline_open(struct map *map, const char *name, struct strbuf *why)
{
	struct map_inline *mi = xcalloc(1, sizeof(*mi));

	map->priv = mi;
	return (map_inline_parse(mi, name, why));
}

/* map_inline_lookup - linear search; inline tables are small */
static int
map_inline_lookup(struct map *map, const char *key, const char **result)
{
	struct map_inline *mi = map->priv;
	size_t  i;

	for (i = 0; i < mi->count; i++) {
		if (strcmp(mi->keys[i], key) == 0) {
			*result = mi->values[i];
			return (MAP_FOUND);
		}
	}
	return (MAP_NOTFOUND);
}

/* map_inline_close - release the items */
static void
map_inline_close(struct map *map)
{
	struct map_inline *mi = map->priv;
	size_t  i;

	if (mi == NULL)
		return;
	for (i = 0; i < mi->count; i++) {
		xfree(mi->keys[i]);
		xfree(mi->values[i]);
	}
	xfree(mi->keys);
	xfree(mi->values);
	map->priv = xfree(mi);
}

const struct map_ops map_inline_ops = {
	"inline", 1, map_inline_open, map_inline_lookup, map_inline_close, NULL,
};
