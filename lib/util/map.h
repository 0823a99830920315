#ifndef SENDARIX_MAP_H
#define SENDARIX_MAP_H

#include <stddef.h>

struct strbuf;

/*
 * Lookup tables, opened as "type:name":
 *   inline:{key=value, key2, ...}	static:value
 *   texthash:/path	hash:/path	btree:/path
 *   pcre:/path		cidr:/path
 * Keys are matched case-insensitively for the text and db types (keys
 * are folded to lower case when a table is built and when it is asked).
 */
#define MAP_FOUND	1
#define MAP_NOTFOUND	0
#define MAP_RETRY	(-1)		/* try later: table broken or missing */

struct map;

extern struct map *map_open(const char *, struct strbuf *);
extern int map_lookup(struct map *, const char *, const char **);
extern struct map *map_close(struct map *);
extern const char *map_spec(const struct map *);
extern int map_is_spec(const char *);
extern int map_list_next(const char **, struct strbuf *, struct strbuf *);

/* "sendarix map build": text source file -> .db for hash: and btree: */
extern int map_build(const char *, struct strbuf *);

/*
 * Match lists, as in mynetworks and relay_domains: items separated by
 * white space or commas; each item is a literal or a type:name table.
 *   matchlist_addr: literal items are IPv4/IPv6 addresses or networks
 *     (127.0.0.0/8, [::1]/128, ::1); tables are asked with the address.
 *   matchlist_domain: literal items are domains; "example.com" matches
 *     only that domain, ".example.com" any subdomain of it; tables are
 *     asked with the domain, then with ".parent" forms.
 *   matchlist_string: literal items are strings (user names), matched
 *     case-insensitively; tables are asked with the key as it is.
 * matchlist_match() returns 1 (match), 0 (no match), -1 (table failure).
 */
struct matchlist;

extern struct matchlist *matchlist_addr(const char *, struct strbuf *);
extern struct matchlist *matchlist_domain(const char *, struct strbuf *);
extern struct matchlist *matchlist_string(const char *, struct strbuf *);
extern int matchlist_match(struct matchlist *, const char *);
extern struct matchlist *matchlist_free(struct matchlist *);

/* Address helpers shared by cidr: and matchlist. */
struct map_net {
	int     family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int     prefix;
};
extern int map_net_parse(const char *, struct map_net *);
extern int map_net_match(const struct map_net *, const char *);

#endif
