/*
 * qmgr_route - the nexthop of a recipient: transport_maps, relayhost, MX
 *
 * SYNOPSIS
 *	#include "qmgr.h"
 *
 *	void	qmgr_route_init(void)
 *	int	qmgr_route(const char *addr, struct strbuf *nexthop,
 *			struct strbuf *why)
 *	int	qmgr_route_value(const char *value, const char *domain,
 *			struct strbuf *nexthop, struct strbuf *why)
 *
 * DESCRIPTION
 *	qmgr_route_init() opens the tables of transport_maps (a list of
 *	type:name tables separated by commas or white space, asked in
 *	order; an inline:{...} table may hold both).
 *
 *	qmgr_route() finds where mail for "addr" goes. The recipient
 *	domain (folded to lower case) is looked up in transport_maps, then
 *	its parent forms (".example.com", ".com"); the first table that
 *	answers decides. With no answer the nexthop is relayhost (the
 *	whole list, which smtp-out tries in order), else the domain itself
 *	(smtp-out looks up its MX). It returns QMGR_ROUTE_OK with the
 *	nexthop in "nexthop", QMGR_ROUTE_DEFER when a table cannot be read
 *	now, or QMGR_ROUTE_BOUNCE (an address without a domain, an unknown
 *	transport), with "X.Y.Z text" in "why".
 *
 *	qmgr_route_value() reads one transport_maps value: "smtp:" (the
 *	domain itself), "smtp:host", "smtp:host:port", "smtp:[host]"
 *	and "smtp:[host]:port"; the part after "smtp:" is the nexthop, as
 *	smtp-out reads it (docs/ipc.md). A value without a
 *	colon is a transport name with no nexthop. Other transports are
 *	not there yet: "5.3.5 unknown transport".
 *
 * DIAGNOSTICS
 *	A transport_maps table that cannot be opened: log_fatal() (a
 *	configuration error, at start-up).
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "qmgr.h"

static struct map **qmgr_route_maps;
static size_t qmgr_route_nmaps;

/* qmgr_route_open - open one table of transport_maps */
static void
qmgr_route_open(const char *spec, struct strbuf *err)
{
	struct map *m;

	strbuf_reset(err);
	if ((m = map_open(spec, err)) == NULL)
		log_fatal("transport_maps: %s: %s", spec, err->data);
	qmgr_route_maps = xreallocarray(qmgr_route_maps, qmgr_route_nmaps + 1,
					sizeof(*qmgr_route_maps));
	qmgr_route_maps[qmgr_route_nmaps++] = m;
}

/* qmgr_route_init - open transport_maps */
void
qmgr_route_init(void)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct strbuf *item = strbuf_new(256, 0);
	const char *p = var_transport_maps;
	int     ret;

	while ((ret = map_list_next(&p, item, err)) > 0)
		qmgr_route_open(item->data, err);
	if (ret < 0)
		log_fatal("transport_maps: %s", err->data);
	strbuf_free(item);
	strbuf_free(err);
}

/* qmgr_route_value - one transport_maps value into a nexthop */
int
qmgr_route_value(const char *value, const char *domain,
		 struct strbuf *nexthop, struct strbuf *why)
{
	const char *colon;
	const char *hop;
	size_t  tlen;
	size_t  hlen;

	while (isspace((unsigned char) *value))
		value++;
	colon = strchr(value, ':');
	tlen = colon ? (size_t) (colon - value) : strlen(value);
	hop = colon ? colon + 1 : "";
	while (isspace((unsigned char) *hop))
		hop++;
	hlen = strlen(hop);
	while (hlen > 0 && isspace((unsigned char) hop[hlen - 1]))
		hlen--;
	/* An empty transport name is the default one, as in Postfix. */
	if (!(tlen == 0 || (tlen == 4 && strncasecmp(value, "smtp", 4) == 0))) {
		strbuf_sets(why, "");
		strbuf_printf(why, "5.3.5 unknown transport: %.*s", (int) tlen,
			      value);
		return (QMGR_ROUTE_BOUNCE);
	}
	strbuf_reset(nexthop);
	if (hlen == 0) {
		strbuf_sets(nexthop, domain);
	} else {
		strbuf_append(nexthop, hop, hlen);
	}
	if (nexthop->len == 0) {
		strbuf_sets(why, "5.3.5 empty nexthop in transport_maps");
		return (QMGR_ROUTE_BOUNCE);
	}
	return (QMGR_ROUTE_OK);
}

/* qmgr_route_lookup - one key in every table; MAP_* */
static int
qmgr_route_lookup(const char *key, const char **value)
{
	size_t  i;
	int     r;

	for (i = 0; i < qmgr_route_nmaps; i++) {
		r = map_lookup(qmgr_route_maps[i], key, value);
		if (r != MAP_NOTFOUND)
			return (r);
	}
	return (MAP_NOTFOUND);
}

/* qmgr_route - where mail for this recipient goes */
int
qmgr_route(const char *addr, struct strbuf *nexthop, struct strbuf *why)
{
	const char *at = strrchr(addr, '@');
	const char *value;
	const char *p;
	char   *domain;
	size_t  len;
	size_t  i;
	int     r = MAP_NOTFOUND;

	if (at == NULL || at[1] == 0) {
		strbuf_sets(why, "5.1.3 bad address syntax: no domain");
		return (QMGR_ROUTE_BOUNCE);
	}
	domain = xstrdup(at + 1);
	len = strlen(domain);
	while (len > 0 && domain[len - 1] == '.')
		domain[--len] = 0;
	for (i = 0; i < len; i++)
		domain[i] = (char) tolower((unsigned char) domain[i]);
	if (len == 0) {
		free(domain);
		strbuf_sets(why, "5.1.3 bad address syntax: no domain");
		return (QMGR_ROUTE_BOUNCE);
	}
	if (qmgr_route_nmaps > 0) {
		/* The domain, then .parent forms: .b.example, .example */
		r = qmgr_route_lookup(domain, &value);
		for (p = domain; r == MAP_NOTFOUND && (p = strchr(p, '.')) != NULL;
		     p++)
			r = qmgr_route_lookup(p, &value);
	}
	if (r == MAP_RETRY) {
		free(domain);
		strbuf_sets(why, "4.3.0 transport_maps lookup failure");
		return (QMGR_ROUTE_DEFER);
	}
	if (r == MAP_FOUND) {
		r = qmgr_route_value(value, domain, nexthop, why);
		free(domain);
		return (r);
	}
	if (*var_relayhost)
		strbuf_sets(nexthop, var_relayhost);
	else
		strbuf_sets(nexthop, domain);
	free(domain);
	return (QMGR_ROUTE_OK);
}
