/*
 * map_texthash - the texthash: table type
 *
 * SYNOPSIS
 *	texthash:/path/to/file
 *
 * DESCRIPTION
 *	A text file in the postmap source format, read once into a hash
 *	table in memory: one "key whitespace value" entry per logical line,
 *	'#' comment lines and blank lines skipped, lines starting with white
 *	space continue the line before. Keys are folded to lower case; of
 *	two equal keys the first wins (with a warning). Reached only through
 *	map_open() (map_impl.h).
 *
 * DIAGNOSTICS
 *	A missing or unreadable file, or a line without a value, leaves the
 *	table unopened (map_open() logs the file and line, and every lookup
 *	answers MAP_RETRY): half a table must not give wrong answers.
 *
 * SEE ALSO
 *	map(3), map_db(3) for the same format built into a .db file
 */

#include <stdint.h>
#include <string.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

struct map_texthash_entry {
	char   *key;
	char   *value;
};

struct map_texthash {
	const char *path;
	size_t  size;			/* slots, a power of two */
	size_t  used;
	struct map_texthash_entry *slots;
};

/* map_texthash_hash - FNV-1a */
static size_t
map_texthash_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++) {
		h ^= (unsigned char) *s;
		h *= 1099511628211ULL;
	}
	return ((size_t) h);
}

/* map_texthash_slot - the slot that holds key, or the empty one for it */
static struct map_texthash_entry *
map_texthash_slot(struct map_texthash *th, const char *key)
{
	size_t  i = map_texthash_hash(key) & (th->size - 1);

	while (th->slots[i].key && strcmp(th->slots[i].key, key) != 0)
		i = (i + 1) & (th->size - 1);
	return (&th->slots[i]);
}

/* map_texthash_grow - double the slots */
static void
map_texthash_grow(struct map_texthash *th)
{
	struct map_texthash_entry *old = th->slots;
	size_t  oldsize = th->size;
	size_t  i;

	th->size = oldsize ? oldsize * 2 : 64;
	th->slots = xcalloc(th->size, sizeof(*th->slots));
	for (i = 0; i < oldsize; i++)
		if (old[i].key)
			*map_texthash_slot(th, old[i].key) = old[i];
	xfree(old);
}

/* map_texthash_add - one entry from the file */
static int
map_texthash_add(void *ctx, const char *key, const char *value, int lineno,
		 struct strbuf *unused_why)
{
	struct map_texthash *th = ctx;
	struct map_texthash_entry *e;

	(void) unused_why;
	if ((th->used + 1) * 2 > th->size)
		map_texthash_grow(th);
	e = map_texthash_slot(th, key);
	if (e->key) {
		log_warn("%s, line %d: duplicate entry \"%s\": keeping the "
			 "first", th->path, lineno, key);
		return (0);
	}
	e->key = xstrdup(key);
	e->value = xstrdup(value);
	th->used++;
	return (0);
}

/* map_texthash_open - read the file into memory */
static int
map_texthash_open(struct map *map, const char *path, struct strbuf *why)
{
	struct map_texthash *th = xcalloc(1, sizeof(*th));

	map->priv = th;
	th->path = path;
	map_texthash_grow(th);
	if (*path == 0) {
		strbuf_sets(why, "no file name");
		return (-1);
	}
	return (map_text_pairs(path, map_texthash_add, th, why));
}

/* map_texthash_lookup - find a folded key */
static int
map_texthash_lookup(struct map *map, const char *key, const char **result)
{
	struct map_texthash *th = map->priv;
	struct map_texthash_entry *e = map_texthash_slot(th, key);

	if (e->key == NULL)
		return (MAP_NOTFOUND);
	*result = e->value;
	return (MAP_FOUND);
}

/* map_texthash_close - release the table */
static void
map_texthash_close(struct map *map)
{
	struct map_texthash *th = map->priv;
	size_t  i;

	if (th == NULL)
		return;
	for (i = 0; i < th->size; i++) {
		xfree(th->slots[i].key);
		xfree(th->slots[i].value);
	}
	xfree(th->slots);
	map->priv = xfree(th);
}

const struct map_ops map_texthash_ops = {
	"texthash", 1, map_texthash_open, map_texthash_lookup,
	map_texthash_close, NULL,
};
