/*
 * matchlist - lists of addresses, networks, domains and tables
 *
 * SYNOPSIS
 *	#include "map.h"
 *
 *	struct matchlist *matchlist_addr(const char *list, struct strbuf *err)
 *	struct matchlist *matchlist_domain(const char *list,
 *			struct strbuf *err)
 *	struct matchlist *matchlist_string(const char *list,
 *			struct strbuf *err)
 *	int	matchlist_match(struct matchlist *ml, const char *key)
 *	struct matchlist *matchlist_free(struct matchlist *ml)
 *
 * DESCRIPTION
 *	The lists behind mynetworks, relay_domains and friends. Items are
 *	separated by white space and/or commas; separators inside braces do
 *	not count, so "inline:{a=b, c}" is one item. Items are tried in
 *	order and the first that matches decides; "!item" is a negative
 *	match (the key does not match the list, and later items are not
 *	tried). An item "/file" is read as more items, one or more per
 *	line, '#' comments allowed (files inside files are refused).
 *
 *	matchlist_addr(): an item is a table when what comes before its
 *	first ':' is a known table type (map_is_spec()); otherwise it must
 *	be an address or network (127.0.0.0/8, ::1, [::1]/128,
 *	[2001:db8::]/32). The key is an IPv4 or IPv6 address, brackets
 *	allowed; tables are asked with the bare address.
 *
 *	matchlist_domain(): an item with a ':' is a table; otherwise a
 *	domain: "example.com" matches that domain only, ".example.com" any
 *	subdomain of it (not example.com itself). Tables are asked with the
 *	domain, then with its ".parent" forms (".example.com", ".com").
 *	Matching is case-insensitive and a trailing dot on the key or an
 *	item is ignored.
 *
 *	matchlist_string(): as Postfix's string lists (authorized_submit_users):
 *	an item that starts with a known table type is a table, asked with
 *	the key as it is; otherwise a literal string that matches the key
 *	case-insensitively.
 *
 *	A table answers "match" when it finds the key, whatever the value.
 *
 *	The caller owns the list and releases it with matchlist_free(),
 *	which accepts NULL and returns NULL; it closes the list's tables.
 *
 * DIAGNOSTICS
 *	matchlist_addr() and matchlist_domain() return NULL with the reason
 *	in err for a bad item, an unbalanced brace, an unknown table type or
 *	an unreadable file. A table that does not open still makes a list
 *	(map_open() logs why); matching it gives -1.
 *	matchlist_match() returns 1 (match), 0 (no match), -1 (a table failed:
 *	try again later).
 *
 * SEE ALSO
 *	map(3)
 */

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

#define MATCHLIST_NET		1
#define MATCHLIST_DOMAIN	2
#define MATCHLIST_TABLE		3
#define MATCHLIST_STRING	4

/* What the literal items of a list are. */
#define MATCHLIST_OF_DOMAINS	0
#define MATCHLIST_OF_ADDRS	1
#define MATCHLIST_OF_STRINGS	2

struct matchlist_item {
	int     kind;
	int     negate;
	struct map_net net;		/* MATCHLIST_NET */
	char   *domain;			/* MATCHLIST_DOMAIN, _STRING: folded */
	struct map *map;		/* MATCHLIST_TABLE */
};

struct matchlist {
	int     is_addr;
	size_t  count;
	struct matchlist_item *items;
	struct strbuf *key;
};

static int matchlist_parse(struct matchlist *, const char *, int,
			           struct strbuf *);

/* matchlist_domain_norm - fold and drop one trailing dot, in place */
static void
matchlist_domain_norm(char *s)
{
	size_t  len;

	map_fold(s);
	len = strlen(s);
	if (len > 1 && s[len - 1] == '.')
		s[len - 1] = 0;
}

/* matchlist_file - read items from a file */
static int
matchlist_file(struct matchlist *ml, const char *path, struct strbuf *err)
{
	struct map_text mt;
	struct strbuf *line;
	int     lineno = 0;
	int     ret;

	if (map_text_open(&mt, path, err) < 0)
		return (-1);
	line = strbuf_new(128, MAP_TEXT_LINE_MAX);
	while ((ret = map_text_next(&mt, line, &lineno, err)) > 0) {
		if ((ret = matchlist_parse(ml, STRBUF_STR(line), 1, err)) < 0) {
			strbuf_printf(err, " (%s, line %d)", path, lineno);
			break;
		}
	}
	strbuf_free(line);
	map_text_close(&mt);
	return (ret < 0 ? -1 : 0);
}

/* matchlist_item - add one item */
static int
matchlist_item(struct matchlist *ml, char *word, int in_file,
	       struct strbuf *err)
{
	struct matchlist_item item;
	int     hostbits;

	memset(&item, 0, sizeof(item));
	if (*word == '!') {
		item.negate = 1;
		word++;
	}
	if (*word == 0) {
		strbuf_printf(err, "empty item after '!'");
		return (-1);
	}
	if (*word == '/') {
		if (in_file || item.negate) {
			strbuf_printf(err, "file \"%s\" not allowed here",
				      word);
			return (-1);
		}
		return (matchlist_file(ml, word, err));
	}
	if (ml->is_addr != MATCHLIST_OF_DOMAINS ? map_is_spec(word)
	    : (strchr(word, ':') != NULL && *word != '[')) {
		item.kind = MATCHLIST_TABLE;
		if ((item.map = map_open(word, err)) == NULL)
			return (-1);
	} else if (ml->is_addr == MATCHLIST_OF_STRINGS) {
		item.kind = MATCHLIST_STRING;
		item.domain = xstrdup(word);
		map_fold(item.domain);
	} else if (ml->is_addr) {
		item.kind = MATCHLIST_NET;
		if (map_net_parse_bits(word, &item.net, &hostbits) < 0) {
			strbuf_printf(err, "bad address or network \"%s\"",
				      word);
			return (-1);
		}
		if (hostbits)
			log_warn("non-null host address bits in \"%s\": "
				 "using the network", word);
	} else {
		item.kind = MATCHLIST_DOMAIN;
		item.domain = xstrdup(word);
		matchlist_domain_norm(item.domain);
		if (strcmp(item.domain, ".") == 0) {
			strbuf_printf(err, "bad domain \"%s\"", word);
			xfree(item.domain);
			return (-1);
		}
	}
	ml->items = xreallocarray(ml->items, ml->count + 1, sizeof(item));
	ml->items[ml->count++] = item;
	return (0);
}

/* matchlist_parse - split a list into items, braces kept together */
static int
matchlist_parse(struct matchlist *ml, const char *list, int in_file,
		struct strbuf *err)
{
	struct strbuf *item = strbuf_new(64, 0);
	const char *p = list;
	int     ret;

	while ((ret = map_list_next(&p, item, err)) > 0)
		if ((ret = matchlist_item(ml, STRBUF_STR(item), in_file,
					  err)) < 0)
			break;
	strbuf_free(item);
	return (ret < 0 ? -1 : 0);
}

/* matchlist_new - parse a list of either kind */
static struct matchlist *
matchlist_new(const char *list, int is_addr, struct strbuf *err)
{
	struct matchlist *ml = xcalloc(1, sizeof(*ml));
	struct strbuf *why = strbuf_new(128, 0);

	ml->is_addr = is_addr;
	ml->key = strbuf_new(64, 0);
	if (matchlist_parse(ml, list ? list : "", 0, why) < 0) {
		if (err) {
			strbuf_reset(err);
			strbuf_sets(err, STRBUF_STR(why));
		}
		strbuf_free(why);
		return (matchlist_free(ml));
	}
	strbuf_free(why);
	return (ml);
}

/* matchlist_addr - a list of addresses, networks and tables */
struct matchlist *
matchlist_addr(const char *list, struct strbuf *err)
{
	return (matchlist_new(list, MATCHLIST_OF_ADDRS, err));
}

/* matchlist_domain - a list of domains, .subdomains and tables */
struct matchlist *
matchlist_domain(const char *list, struct strbuf *err)
{
	return (matchlist_new(list, MATCHLIST_OF_DOMAINS, err));
}

/* matchlist_string - a list of strings (user names) and tables */
struct matchlist *
matchlist_string(const char *list, struct strbuf *err)
{
	return (matchlist_new(list, MATCHLIST_OF_STRINGS, err));
}

/* matchlist_table_domain - ask a table for the domain and its parents */
static int
matchlist_table_domain(struct map *map, const char *domain)
{
	const char *p;
	const char *result;
	int     ret;

	if ((ret = map_lookup(map, domain, &result)) != MAP_NOTFOUND)
		return (ret);
	for (p = strchr(domain + 1, '.'); p; p = strchr(p + 1, '.'))
		if ((ret = map_lookup(map, p, &result)) != MAP_NOTFOUND)
			return (ret);
	return (MAP_NOTFOUND);
}

/* matchlist_match - does the key match the list? */
int
matchlist_match(struct matchlist *ml, const char *key)
{
	struct matchlist_item *item;
	struct map_net addr;
	const char *result;
	const char *k;
	size_t  klen;
	size_t  dlen;
	size_t  i;
	int     have_addr = 0;
	int     hit;
	int     ret;

	if (ml == NULL || key == NULL)
		return (0);
	if (strbuf_sets(ml->key, key) < 0)
		return (-1);
	k = STRBUF_STR(ml->key);
	if (ml->is_addr == MATCHLIST_OF_STRINGS) {
		/* Tables see the key as it is; literals are folded. */
		if (*k == 0)
			return (0);
	} else if (ml->is_addr) {
		/* Tables see the bare address. */
		klen = STRBUF_LEN(ml->key);
		if (klen >= 2 && k[0] == '[' && k[klen - 1] == ']') {
			strbuf_consume(ml->key, 1);
			strbuf_truncate(ml->key, klen - 2);
			k = STRBUF_STR(ml->key);
		}
		have_addr = map_net_key(k, &addr) == 0;
	} else {
		matchlist_domain_norm(STRBUF_STR(ml->key));
		if (*k == 0)
			return (0);
	}
	klen = strlen(k);
	for (i = 0; i < ml->count; i++) {
		item = &ml->items[i];
		hit = 0;
		switch (item->kind) {
		case MATCHLIST_NET:
			hit = have_addr && map_net_contains(&item->net, &addr);
			break;
		case MATCHLIST_DOMAIN:
			dlen = strlen(item->domain);
			if (item->domain[0] == '.')
				hit = klen > dlen && strcmp(k + klen - dlen,
							    item->domain) == 0;
			else
				hit = strcmp(k, item->domain) == 0;
			break;
		case MATCHLIST_STRING:
			hit = strcasecmp(k, item->domain) == 0;
			break;
		case MATCHLIST_TABLE:
			if (ml->is_addr != MATCHLIST_OF_DOMAINS)
				ret = map_lookup(item->map, k, &result);
			else
				ret = matchlist_table_domain(item->map, k);
			if (ret == MAP_RETRY)
				return (-1);
			hit = ret == MAP_FOUND;
			break;
		}
		if (hit)
			return (item->negate ? 0 : 1);
	}
	return (0);
}

/* matchlist_free - release a list and its tables */
struct matchlist *
matchlist_free(struct matchlist *ml)
{
	size_t  i;

	if (ml == NULL)
		return (NULL);
	for (i = 0; i < ml->count; i++) {
		map_close(ml->items[i].map);
		xfree(ml->items[i].domain);
	}
	xfree(ml->items);
	strbuf_free(ml->key);
	xfree(ml);
	return (NULL);
}
