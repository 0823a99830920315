/*
 * map - lookup tables opened as "type:name"
 *
 * SYNOPSIS
 *	#include "map.h"
 *
 *	struct map *map_open(const char *spec, struct strbuf *err)
 *	int	map_lookup(struct map *map, const char *key,
 *			const char **result)
 *	struct map *map_close(struct map *map)
 *	const char *map_spec(const struct map *map)
 *	int	map_is_spec(const char *str)
 *	int	map_build(const char *spec, struct strbuf *err)
 *
 *	int	map_net_parse(const char *str, struct map_net *net)
 *	int	map_net_match(const struct map_net *net, const char *addr)
 *
 * DESCRIPTION
 *	The dispatcher in front of one module per table type (map_impl.h
 *	has the vtable): inline, static, texthash, hash, btree, pcre, cidr.
 *
 *	map_open() opens "type:name". A spec without ':' or with a type we
 *	do not know gives NULL with the reason in err. A known type whose
 *	file is missing or malformed still gives a map: it logs one warning
 *	saying why (the reason is also put in err) and answers MAP_RETRY
 *	to every lookup, so that a broken table means "try again later",
 *	never a crash and never a wrong answer. The caller owns the map and
 *	releases it with map_close(), which accepts NULL and returns NULL.
 *
 *	map_lookup() answers MAP_FOUND with *result pointing to memory the
 *	map owns (valid until the next lookup on that map or map_close()),
 *	MAP_NOTFOUND, or MAP_RETRY. For inline, texthash, hash and btree the
 *	key is folded to lower case first.
 *
 *	map_spec() is the spec the map was opened with. map_is_spec() says
 *	whether a string starts with "knowntype:".
 *
 *	map_build() makes the file "sendarix map build" makes: for hash: and
 *	btree: it turns the text file /path into /path.db, atomically.
 *	It returns 0, or -1 with the reason in err.
 *
 *	map_net_parse() reads an IPv4 or IPv6 address or network:
 *	"1.2.3.0/24", "1.2.3.4", "::1", "[::1]/128", "[2001:db8::]/32". Host
 *	bits beyond the prefix are masked away. It returns 0, or -1 for a
 *	bad address or a prefix out of range.
 *	map_net_match() returns 1 when the address string (IPv4, IPv6, in
 *	brackets or not) is inside the network, else 0 (also for a bad
 *	address). An IPv4-mapped IPv6 address (::ffff:1.2.3.4) matches IPv4
 *	networks, and an IPv4 address matches ::ffff:0:0/96 networks.
 *
 *	Shared by the type modules (map_impl.h): map_text_*(), the reader of
 *	table source files with '#' comments and indented continuation
 *	lines, map_text_split() and map_fold().
 *
 * DIAGNOSTICS
 *	Out of memory ends the process (xmalloc). Nothing else does.
 *
 * SEE ALSO
 *	matchlist(3), sendarix(1) "map"
 */

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

static const struct map_ops *const map_types[] = {
	&map_inline_ops,
	&map_static_ops,
	&map_texthash_ops,
	&map_hash_ops,
	&map_btree_ops,
	&map_pcre_ops,
	&map_cidr_ops,
};

#define MAP_NTYPES	(sizeof(map_types) / sizeof(map_types[0]))

/* map_find_type - the ops for the type before the ':' */
static const struct map_ops *
map_find_type(const char *spec, const char **namep)
{
	const char *colon = strchr(spec, ':');
	size_t  len;
	size_t  i;

	if (colon == NULL || colon == spec)
		return (NULL);
	len = (size_t) (colon - spec);
	for (i = 0; i < MAP_NTYPES; i++) {
		if (strlen(map_types[i]->type) == len
		    && strncmp(map_types[i]->type, spec, len) == 0) {
			if (namep)
				*namep = colon + 1;
			return (map_types[i]);
		}
	}
	return (NULL);
}

/* map_spec_error - the reason a spec is not a table */
static void
map_spec_error(const char *spec, struct strbuf *err)
{
	const char *colon = strchr(spec, ':');

	if (err == NULL)
		return;
	if (colon == NULL || colon == spec)
		strbuf_printf(err, "bad table \"%s\": expected type:name",
			      spec);
	else
		strbuf_printf(err, "unsupported table type \"%.*s\" in \"%s\"",
			      (int) (colon - spec), spec, spec);
}

/* map_is_spec - does the string start with a known "type:"? */
int
map_is_spec(const char *str)
{
	return (str != NULL && map_find_type(str, NULL) != NULL);
}

/* map_open - open a table */
struct map *
map_open(const char *spec, struct strbuf *err)
{
	const struct map_ops *ops;
	const char *name;
	struct map *map;
	struct strbuf *why;

	if (err)
		strbuf_reset(err);
	if (spec == NULL || (ops = map_find_type(spec, &name)) == NULL) {
		map_spec_error(spec ? spec : "", err);
		return (NULL);
	}
	map = xcalloc(1, sizeof(*map));
	map->ops = ops;
	map->spec = xstrdup(spec);
	map->name = map->spec + (name - spec);
	map->key = strbuf_new(64, 0);
	map->result = strbuf_new(64, 0);
	why = strbuf_new(128, 0);
	if (ops->open(map, map->name, why) < 0) {
		map->broken = 1;
		if (STRBUF_LEN(why) == 0)
			strbuf_sets(why, "cannot open table");
		/* "pcre:/file, line 2: ..." rather than the file twice */
		if (*map->name && strncmp(STRBUF_STR(why), map->name,
					  strlen(map->name)) == 0)
			log_warn("%s:%s; lookups will return \"try again\"",
				 ops->type, STRBUF_STR(why));
		else
			log_warn("table %s: %s; lookups will return "
				 "\"try again\"", map->spec, STRBUF_STR(why));
		if (err)
			strbuf_sets(err, STRBUF_STR(why));
	}
	strbuf_free(why);
	return (map);
}

/* map_lookup - look a key up */
int
map_lookup(struct map *map, const char *key, const char **result)
{
	const char *dummy;

	if (result == NULL)
		result = &dummy;
	*result = NULL;
	if (map == NULL || map->broken || key == NULL)
		return (MAP_RETRY);
	if (map->ops->fold) {
		if (strbuf_sets(map->key, key) < 0)
			return (MAP_RETRY);
		map_fold(STRBUF_STR(map->key));
		key = STRBUF_STR(map->key);
	}
	return (map->ops->lookup(map, key, result));
}

/* map_close - release a table */
struct map *
map_close(struct map *map)
{
	if (map == NULL)
		return (NULL);
	/* The type's close() also cleans up after a failed open(). */
	if (map->ops->close)
		map->ops->close(map);
	strbuf_free(map->key);
	strbuf_free(map->result);
	xfree(map->spec);
	xfree(map);
	return (NULL);
}

/* map_spec - the spec a table was opened with */
const char *
map_spec(const struct map *map)
{
	return (map ? map->spec : "");
}

/* map_build - make the file behind a hash: or btree: table */
int
map_build(const char *spec, struct strbuf *err)
{
	const struct map_ops *ops;
	const char *name;

	if (err)
		strbuf_reset(err);
	if (spec == NULL || (ops = map_find_type(spec, &name)) == NULL) {
		map_spec_error(spec ? spec : "", err);
		return (-1);
	}
	if (ops->build == NULL) {
		if (err)
			strbuf_printf(err, "table type \"%s\" has nothing to "
				      "build (only hash: and btree: do)",
				      ops->type);
		return (-1);
	}
	if (*name == 0) {
		if (err)
			strbuf_printf(err, "bad table \"%s\": no file name",
				      spec);
		return (-1);
	}
	return (ops->build(name, err));
}

/* map_fold - lower-case a key in place (ASCII only) */
void
map_fold(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char) (*s - 'A' + 'a');
}

/* map_text_open - start reading a table source file */
int
map_text_open(struct map_text *mt, const char *path, struct strbuf *why)
{
	memset(mt, 0, sizeof(*mt));
	mt->path = path;
	if ((mt->fp = fopen(path, "r")) == NULL) {
		strbuf_printf(why, "open %s: %s", path, strerror(errno));
		return (-1);
	}
	mt->pending = strbuf_new(128, MAP_TEXT_LINE_MAX);
	return (0);
}

/* map_text_close - stop reading */
void
map_text_close(struct map_text *mt)
{
	if (mt->fp)
		fclose(mt->fp);
	mt->fp = NULL;
	mt->pending = strbuf_free(mt->pending);
}

/* map_text_physical - read one physical line into mt->pending */
static int
map_text_physical(struct map_text *mt, struct strbuf *why)
{
	int     ch;
	int     toolong = 0;

	strbuf_reset(mt->pending);
	if (feof(mt->fp))
		return (0);
	while ((ch = getc(mt->fp)) != EOF && ch != '\n') {
		if (ch == 0)
			ch = ' ';		/* no NULs inside keys */
		if (!toolong && strbuf_appendc(mt->pending, ch) < 0)
			toolong = 1;
	}
	if (ferror(mt->fp)) {
		strbuf_printf(why, "read %s: %s", mt->path, strerror(errno));
		return (-1);
	}
	if (ch == EOF && STRBUF_LEN(mt->pending) == 0)
		return (0);
	mt->lineno++;
	if (toolong) {
		strbuf_printf(why, "%s, line %d: line longer than %d bytes",
			      mt->path, mt->lineno, MAP_TEXT_LINE_MAX);
		return (-1);
	}
	if (STRBUF_LEN(mt->pending) > 0
	    && STRBUF_STR(mt->pending)[STRBUF_LEN(mt->pending) - 1] == '\r')
		strbuf_truncate(mt->pending, STRBUF_LEN(mt->pending) - 1);
	return (1);
}

/* map_text_blank - is the line empty or a comment? */
static int
map_text_blank(const char *s)
{
	while (*s && isspace((unsigned char) *s))
		s++;
	return (*s == 0 || *s == '#');
}

/* map_text_next - the next logical line */
int
map_text_next(struct map_text *mt, struct strbuf *line, int *lineno,
	      struct strbuf *why)
{
	int     have = 0;
	int     ret;
	const char *s;

	strbuf_reset(line);
	for (;;) {
		if (mt->have_pending) {
			mt->have_pending = 0;
			ret = 1;
		} else if ((ret = map_text_physical(mt, why)) < 0) {
			return (-1);
		}
		if (ret == 0)
			break;
		s = STRBUF_STR(mt->pending);
		if (map_text_blank(s))
			continue;
		if (isspace((unsigned char) *s)) {
			if (!have) {
				strbuf_printf(why, "%s, line %d: logical line "
					   "must not start with white space",
					      mt->path, mt->lineno);
				return (-1);
			}
			if (strbuf_append(line, s,
					  STRBUF_LEN(mt->pending)) < 0) {
				strbuf_printf(why, "%s, line %d: line longer "
					      "than %d bytes", mt->path,
					      *lineno, MAP_TEXT_LINE_MAX);
				return (-1);
			}
			continue;
		}
		if (have) {
			mt->have_pending = 1;	/* starts the next line */
			break;
		}
		have = 1;
		*lineno = mt->lineno;
		strbuf_set(line, s, STRBUF_LEN(mt->pending));
	}
	if (!have)
		return (0);
	while (STRBUF_LEN(line) > 0 && isspace((unsigned char)
				   STRBUF_STR(line)[STRBUF_LEN(line) - 1]))
		strbuf_truncate(line, STRBUF_LEN(line) - 1);
	return (1);
}

/* map_text_split - "key whitespace value" in place */
int
map_text_split(char *line, char **key, char **value)
{
	char   *p = line;

	while (*p && isspace((unsigned char) *p))
		p++;
	*key = p;
	while (*p && !isspace((unsigned char) *p))
		p++;
	if (*p == 0 || p == *key)
		return (-1);
	*p++ = 0;
	while (*p && isspace((unsigned char) *p))
		p++;
	if (*p == 0)
		return (-1);
	*value = p;
	return (0);
}

/* map_text_pairs - read a "key value" source file */
int
map_text_pairs(const char *path, MAP_PAIR_FN fn, void *ctx,
	       struct strbuf *why)
{
	struct map_text mt;
	struct strbuf *line;
	int     lineno = 0;
	int     ret;
	char   *key;
	char   *value;

	if (map_text_open(&mt, path, why) < 0)
		return (-1);
	line = strbuf_new(128, MAP_TEXT_LINE_MAX);
	while ((ret = map_text_next(&mt, line, &lineno, why)) > 0) {
		if (map_text_split(STRBUF_STR(line), &key, &value) < 0) {
			strbuf_printf(why, "%s, line %d: expected format: "
				      "key whitespace value", path, lineno);
			ret = -1;
			break;
		}
		map_fold(key);
		if ((ret = fn(ctx, key, value, lineno, why)) < 0)
			break;
	}
	strbuf_free(line);
	map_text_close(&mt);
	return (ret < 0 ? -1 : 0);
}

/* map_net_addr - parse a bare address, brackets allowed */
static int
map_net_addr(const char *str, size_t len, struct map_net *net)
{
	char    buf[INET6_ADDRSTRLEN + 8];
	char   *pct;

	if (len >= 2 && str[0] == '[' && str[len - 1] == ']') {
		str++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(buf))
		return (-1);
	memcpy(buf, str, len);
	buf[len] = 0;
	memset(net, 0, sizeof(*net));
	if (strchr(buf, ':') != NULL) {
		/* A zone ("fe80::1%eth0") says nothing about the network. */
		if ((pct = strchr(buf, '%')) != NULL)
			*pct = 0;
		if (inet_pton(AF_INET6, buf, net->addr) != 1)
			return (-1);
		net->family = AF_INET6;
		net->prefix = 128;
	} else {
		if (inet_pton(AF_INET, buf, net->addr) != 1)
			return (-1);
		net->family = AF_INET;
		net->prefix = 32;
	}
	return (0);
}

/* map_net_parse_bits - parse a network; say if host bits were set */
int
map_net_parse_bits(const char *str, struct map_net *net, int *hostbits)
{
	const char *slash;
	size_t  alen;
	int     prefix = -1;
	int     maxbits;
	int     i;
	int     bits = 0;
	const char *p;

	if (hostbits)
		*hostbits = 0;
	if (str == NULL)
		return (-1);
	slash = strrchr(str, '/');
	alen = slash ? (size_t) (slash - str) : strlen(str);
	if (slash) {
		p = slash + 1;
		if (*p == 0 || strlen(p) > 3)
			return (-1);
		for (prefix = 0; *p; p++) {
			if (!isdigit((unsigned char) *p))
				return (-1);
			prefix = prefix * 10 + (*p - '0');
		}
	}
	if (map_net_addr(str, alen, net) < 0)
		return (-1);
	maxbits = net->family == AF_INET ? 32 : 128;
	if (prefix > maxbits)
		return (-1);
	if (prefix >= 0)
		net->prefix = prefix;
	for (i = 0; i < maxbits / 8; i++) {
		int     keep = net->prefix - i * 8;
		unsigned char mask;

		if (keep >= 8)
			continue;
		mask = keep <= 0 ? 0 : (unsigned char) (0xff << (8 - keep));
		if (net->addr[i] & ~mask)
			bits = 1;
		net->addr[i] &= mask;
	}
	if (hostbits)
		*hostbits = bits;
	return (0);
}

/* map_net_parse - parse an address or network */
int
map_net_parse(const char *str, struct map_net *net)
{
	return (map_net_parse_bits(str, net, NULL));
}

/* map_net_key - parse an address to be matched (no prefix) */
int
map_net_key(const char *addr, struct map_net *key)
{
	if (addr == NULL)
		return (-1);
	return (map_net_addr(addr, strlen(addr), key));
}

/* map_net_contains - is the parsed address inside the network? */
int
map_net_contains(const struct map_net *net, const struct map_net *key)
{
	static const unsigned char v4mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};
	unsigned char a[16];
	int     nbytes;
	int     rem;
	unsigned char mask;

	memset(a, 0, sizeof(a));
	if (net->family == AF_INET && key->family == AF_INET6) {
		if (memcmp(key->addr, v4mapped, 12) != 0)
			return (0);
		memcpy(a, key->addr + 12, 4);
	} else if (net->family == AF_INET6 && key->family == AF_INET) {
		memcpy(a, v4mapped, 12);
		memcpy(a + 12, key->addr, 4);
	} else if (net->family == key->family) {
		memcpy(a, key->addr, 16);
	} else {
		return (0);
	}
	nbytes = net->prefix / 8;
	rem = net->prefix % 8;
	if (memcmp(a, net->addr, (size_t) nbytes) != 0)
		return (0);
	if (rem) {
		mask = (unsigned char) (0xff << (8 - rem));
		if ((a[nbytes] & mask) != net->addr[nbytes])
			return (0);
	}
	return (1);
}

/* map_net_match - is the address inside the network? */
int
map_net_match(const struct map_net *net, const char *addr)
{
	struct map_net key;

	if (net == NULL || map_net_key(addr, &key) < 0)
		return (0);
	return (map_net_contains(net, &key));
}

/*
 * map_list_next - the next item of a list such as mynetworks or
 * transport_maps: items are separated by white space or commas, except
 * inside {...} (inline:{a=b, c}). It puts the item in "item" and returns
 * 1, returns 0 at the end of the list, or -1 with the reason in "err"
 * for an unbalanced brace. *cursor moves past the item.
 */
int
map_list_next(const char **cursor, struct strbuf *item, struct strbuf *err)
{
	const char *p = *cursor;
	const char *start;
	int     depth = 0;

#define MAP_LIST_SEP(c) (isspace((unsigned char) (c)) || (c) == ',')

	while (*p && MAP_LIST_SEP(*p))
		p++;
	if (*p == 0) {
		*cursor = p;
		return (0);
	}
	for (start = p; *p; p++) {
		if (*p == '{')
			depth++;
		else if (*p == '}' && --depth < 0)
			break;
		else if (depth == 0 && MAP_LIST_SEP(*p))
			break;
	}
	if (depth != 0) {
		strbuf_reset(err);
		strbuf_printf(err, "unbalanced brace in \"%.*s\"",
			      (int) (p - start + (*p != 0)), start);
		return (-1);
	}
	strbuf_reset(item);
	strbuf_append(item, start, (size_t) (p - start));
	*cursor = p;
	return (1);
}
