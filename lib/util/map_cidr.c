/*
 * map_cidr - the cidr: table type
 *
 * SYNOPSIS
 *	cidr:/path/to/file
 *
 *	192.168.0.0/16		result
 *	192.0.2.7		result
 *	2001:db8::/32		result
 *	[2001:db8:1::]/48	result
 *
 * DESCRIPTION
 *	The key is an IPv4 or IPv6 address; rules are tried in file order
 *	and the first network that holds the address wins. A bare address
 *	is a /32 or /128. IPv4-mapped IPv6 keys (::ffff:192.0.2.7) match
 *	IPv4 rules. Host bits beyond the prefix are masked away with a
 *	warning, as Postfix does. A key that is not an address is not found.
 *	Reached only through map_open() (map_impl.h).
 *
 * DIAGNOSTICS
 *	A missing file, a bad network or prefix, or a rule without a result
 *	leaves the table unopened (map_open() logs the file and line; every
 *	lookup answers MAP_RETRY).
 *
 * SEE ALSO
 *	map(3)
 */

#include <string.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

struct map_cidr_rule {
	struct map_net net;
	char   *result;
};

struct map_cidr {
	struct map_cidr_rule *rules;
	size_t  count;
};

/* map_cidr_open - read the rules */
static int
map_cidr_open(struct map *map, const char *path, struct strbuf *why)
{
	struct map_cidr *mc = xcalloc(1, sizeof(*mc));
	struct map_text mt;
	struct strbuf *line;
	struct map_net net;
	int     lineno = 0;
	int     hostbits;
	int     ret;
	char   *key;
	char   *value;

	map->priv = mc;
	if (*path == 0) {
		strbuf_sets(why, "no file name");
		return (-1);
	}
	if (map_text_open(&mt, path, why) < 0)
		return (-1);
	line = strbuf_new(128, MAP_TEXT_LINE_MAX);
	while ((ret = map_text_next(&mt, line, &lineno, why)) > 0) {
		if (map_text_split(STRBUF_STR(line), &key, &value) < 0) {
			strbuf_printf(why, "%s, line %d: expected format: "
				      "network/prefix whitespace result",
				      path, lineno);
			ret = -1;
			break;
		}
		if (map_net_parse_bits(key, &net, &hostbits) < 0) {
			strbuf_printf(why, "%s, line %d: bad address or "
				      "network \"%s\"", path, lineno, key);
			ret = -1;
			break;
		}
		if (hostbits)
			log_warn("%s, line %d: non-null host address bits in "
				 "\"%s\": using the network", path, lineno,
				 key);
		mc->rules = xreallocarray(mc->rules, mc->count + 1,
					  sizeof(*mc->rules));
		mc->rules[mc->count].net = net;
		mc->rules[mc->count].result = xstrdup(value);
		mc->count++;
	}
	strbuf_free(line);
	map_text_close(&mt);
	return (ret < 0 ? -1 : 0);
}

/* map_cidr_lookup - first network that holds the address */
static int
map_cidr_lookup(struct map *map, const char *key, const char **result)
{
	struct map_cidr *mc = map->priv;
	struct map_net addr;
	size_t  i;

	if (map_net_key(key, &addr) < 0)
		return (MAP_NOTFOUND);
	for (i = 0; i < mc->count; i++) {
		if (map_net_contains(&mc->rules[i].net, &addr)) {
			*result = mc->rules[i].result;
			return (MAP_FOUND);
		}
	}
	return (MAP_NOTFOUND);
}

/* map_cidr_close - release the rules */
static void
map_cidr_close(struct map *map)
{
	struct map_cidr *mc = map->priv;
	size_t  i;

	if (mc == NULL)
		return;
	for (i = 0; i < mc->count; i++)
		xfree(mc->rules[i].result);
	xfree(mc->rules);
	map->priv = xfree(mc);
}

const struct map_ops map_cidr_ops = {
	"cidr", 0, map_cidr_open, map_cidr_lookup, map_cidr_close, NULL,
};
