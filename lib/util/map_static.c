/*
 * map_static - the static: table type
 *
 * SYNOPSIS
 *	static:value
 *	static:{value with spaces}
 *
 * DESCRIPTION
 *	Every key is found, and the result is always the value. A value in
 *	braces may hold white space and commas (so it survives a match
 *	list); white space just inside the braces is dropped. Reached only
 *	through map_open() (map_impl.h).
 *
 * DIAGNOSTICS
 *	A '{' without its '}' does not open: the map answers MAP_RETRY.
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

/* map_static_open - remember the value */
static int
map_static_open(struct map *map, const char *name, struct strbuf *why)
{
	const char *s = name;
	const char *e;

	if (*s == '{') {
		e = s + strlen(s);
		if (e[-1] != '}' || e - s < 2) {
			strbuf_sets(why, "bad syntax: missing '}'");
			return (-1);
		}
		s++;
		e--;
		while (s < e && isspace((unsigned char) *s))
			s++;
		while (e > s && isspace((unsigned char) e[-1]))
			e--;
		map->priv = xstrndup(s, (size_t) (e - s));
	} else {
		map->priv = xstrdup(name);
	}
	return (0);
}

/* map_static_lookup - always found */
static int
map_static_lookup(struct map *map, const char *unused_key,
		  const char **result)
{
	(void) unused_key;
	*result = map->priv;
	return (MAP_FOUND);
}

/* map_static_close - release the value */
static void
map_static_close(struct map *map)
{
	map->priv = xfree(map->priv);
}

const struct map_ops map_static_ops = {
	"static", 0, map_static_open, map_static_lookup, map_static_close, NULL,
};
