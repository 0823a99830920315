#ifndef SENDARIX_MAP_IMPL_H
#define SENDARIX_MAP_IMPL_H

/*
 * Private to the map modules: the vtable between map.c (the dispatcher)
 * and one file per table type, plus helpers they share. Nothing outside
 * lib/map*.c and the map tests should include this.
 */
#include <stdio.h>

#include "map.h"

struct strbuf;

/*
 * One table type. open() fills map->priv; on failure it returns -1 with
 * the reason in "why" (map.c then logs it once and answers MAP_RETRY to
 * every lookup). lookup() gets the key already folded to lower case when
 * fold is set. close() releases map->priv. build() is set for the types
 * that "sendarix map build" makes a file for.
 */
struct map_ops {
	const char *type;
	int     fold;
	int     (*open) (struct map *, const char *, struct strbuf *);
	int     (*lookup) (struct map *, const char *, const char **);
	void    (*close) (struct map *);
	int     (*build) (const char *, struct strbuf *);
};

struct map {
	const struct map_ops *ops;	/* NULL: unknown, never handed out */
	char   *spec;			/* "type:name" as given */
	char   *name;			/* points into spec, after the ':' */
	int     broken;			/* open failed: always MAP_RETRY */
	struct strbuf *key;		/* folded key */
	struct strbuf *result;		/* per-map result space */
	void   *priv;			/* the type's state */
};

extern const struct map_ops map_inline_ops;
extern const struct map_ops map_static_ops;
extern const struct map_ops map_texthash_ops;
extern const struct map_ops map_hash_ops;
extern const struct map_ops map_btree_ops;
extern const struct map_ops map_pcre_ops;
extern const struct map_ops map_cidr_ops;

/*
 * Logical lines of a table source file: blank lines and lines whose first
 * non-blank character is '#' are skipped; a line that starts with white
 * space continues the previous logical line. map_text_next() returns 1
 * with the line in "line" (trailing white space removed) and its first
 * physical line number in *lineno, 0 at the end, -1 on a read error or a
 * line that is too long or starts with white space (reason in "why").
 */
#define MAP_TEXT_LINE_MAX	(64 * 1024)

struct map_text {
	FILE   *fp;
	const char *path;
	int     lineno;			/* physical lines read */
	struct strbuf *pending;		/* look-ahead physical line */
	int     have_pending;
	int     pending_lineno;
};

extern int map_text_open(struct map_text *, const char *, struct strbuf *);
extern int map_text_next(struct map_text *, struct strbuf *, int *,
			         struct strbuf *);
extern void map_text_close(struct map_text *);

/* "key value" split of a texthash/hash/btree source line. */
extern int map_text_split(char *, char **, char **);
extern void map_fold(char *);

/*
 * Read a "key value" file (texthash:, and the source of hash: and
 * btree:), calling fn(ctx, key, value, lineno, why) for each entry with
 * the key folded to lower case. A line without a value is an error. The
 * callback returns 0, or -1 to stop with the reason in "why".
 */
typedef int (*MAP_PAIR_FN) (void *, const char *, const char *, int,
			            struct strbuf *);
extern int map_text_pairs(const char *, MAP_PAIR_FN, void *,
			          struct strbuf *);

/*
 * map_net_parse() that also says whether host bits beyond the prefix
 * were set (and masked away).
 */
extern int map_net_parse_bits(const char *, struct map_net *, int *);

/* map_net_match() in two steps, to parse a key once for many networks. */
extern int map_net_key(const char *, struct map_net *);
extern int map_net_contains(const struct map_net *, const struct map_net *);

#endif
