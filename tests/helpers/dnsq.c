/*
 * dnsq - run lib/dns lookups on an event loop and print the results
 *
 * SYNOPSIS
 *	dnsq [-v] [-r resolver] [-t timeout] [-p any|ipv4|ipv6]
 *		[-f inet_protocols] [-C|-F] mx|a|ptr NAME...
 *
 * DESCRIPTION
 *	A test helper for tests/integration/test_dns.py. It starts one
 *	lookup per NAME at once (dns_lookup_mx() for "mx", dns_lookup_host()
 *	for "a", dns_lookup_ptr() for "ptr", NAME an address), runs the libevent loop until every callback has come, and
 *	prints the results in argument order, one line per address in the
 *	order to try:
 *
 *		PREF HOST ipv4|ipv6 ADDRESS
 *
 *	or one line "error: TEMP|PERM|NULLMX reason". With more than one
 *	NAME each line starts with "NAME: ". With -v a line "; status=S
 *	secure=N implicit=N partial=N" comes first for each NAME.
 *
 *	-r is dns_resolver ("127.0.0.1@5353"), -t dns_timeout in seconds,
 *	-p smtp_address_preference, -f inet_protocols. -C cancels every
 *	lookup at once and checks that no callback comes within a second
 *	("cancelled"); -F calls dns_free() with the lookups in flight
 *	("freed"). Both are there to check for leaks and late callbacks.
 *
 *	Exit status: 0 when every NAME resolved, 1 when one gave an error
 *	result, 2 on usage or setup errors.
 */

#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

struct dnsq_item {
	const char *name;
	struct dns_req *req;
	struct dns_result *res;
};

static struct event_base *dnsq_base;
static size_t dnsq_pending;

/* dnsq_usage - complain and exit */
static void
dnsq_usage(void)
{
	fprintf(stderr, "usage: dnsq [-v] [-r resolver] [-t timeout] "
		"[-p any|ipv4|ipv6] [-f inet_protocols] [-C|-F] mx|a|ptr NAME...\n");
	exit(2);
}

/* dnsq_done - lookup callback: keep the result */
static void
dnsq_done(struct dns_result *res, void *arg)
{
	struct dnsq_item *it = arg;

	it->res = res;
	it->req = 0;
	if (--dnsq_pending == 0)
		event_base_loopbreak(dnsq_base);
}

/* dnsq_print - print one result */
static int
dnsq_print(const struct dnsq_item *it, int prefix, int verbose)
{
	const struct dns_result *res = it->res;
	const char *pfx = prefix ? it->name : "";
	const char *sep = prefix ? ": " : "";
	const char *kind;
	size_t  i;

	if (verbose)
		printf("%s%s; status=%s secure=%d implicit=%d partial=%d\n",
		       pfx, sep, dns_status_str(res->status), res->secure,
		       res->implicit_mx, res->partial);
	if (res->status != DNS_OK) {
		kind = res->status == DNS_TEMPFAIL ? "TEMP" :
		    res->status == DNS_NULLMX ? "NULLMX" : "PERM";
		printf("%s%serror: %s %s\n", pfx, sep, kind, res->reason);
		return (1);
	}
	for (i = 0; i < res->count; i++)
		printf("%s%s%d %s %s %s\n", pfx, sep, res->addrs[i].pref,
		       res->addrs[i].host,
		       res->addrs[i].family == AF_INET6 ? "ipv6" : "ipv4",
		       res->addrs[i].addr);
	return (0);
}

/* dnsq_stop - timer: end the loop */
static void
dnsq_stop(evutil_socket_t unused_fd, short unused_what, void *unused_arg)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_arg;
	event_base_loopbreak(dnsq_base);
}

int
main(int argc, char **argv)
{
	struct dnsq_item *items;
	struct strbuf *err = strbuf_new(0, 1024);
	const char *resolver = "";
	enum dns_prefer prefer = DNS_PREFER_ANY;
	int     families = DNS_FAMILY_ALL;
	long    timeout = DNS_TIMEOUT_DEFAULT;
	int     verbose = 0;
	int     cancel = 0;
	int     freeit = 0;
	int     mx;
	int     ch;
	int     rc = 0;
	size_t  n;
	size_t  i;
	char   *ep;

	log_init("dnsq");
	while ((ch = getopt(argc, argv, "CFf:p:r:t:v")) != -1) {
		switch (ch) {
		case 'C':
			cancel = 1;
			break;
		case 'F':
			freeit = 1;
			break;
		case 'f':
			if (dns_families_parse(optarg, &families) < 0)
				dnsq_usage();
			break;
		case 'p':
			if (dns_prefer_parse(optarg, &prefer) < 0)
				dnsq_usage();
			break;
		case 'r':
			resolver = optarg;
			break;
		case 't':
			timeout = strtol(optarg, &ep, 10);
			if (*ep != 0 || timeout <= 0)
				dnsq_usage();
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			dnsq_usage();
		}
	}
	if (argc - optind < 2)
		dnsq_usage();
	if (strcmp(argv[optind], "mx") == 0)
		mx = 1;
	else if (strcmp(argv[optind], "a") == 0)
		mx = 0;
	else if (strcmp(argv[optind], "ptr") == 0)
		mx = 2;
	else
		dnsq_usage();
	optind++;
	n = (size_t) (argc - optind);

	if ((dnsq_base = event_base_new()) == 0) {
		fprintf(stderr, "dnsq: cannot make an event base\n");
		return (2);
	}
	if (dns_init(dnsq_base, resolver, err) < 0) {
		fprintf(stderr, "dnsq: %s\n", STRBUF_STR(err));
		strbuf_free(err);
		event_base_free(dnsq_base);
		return (2);
	}
	dns_set_timeout(timeout);
	dns_set_families(families);
	dns_set_prefer(prefer);

	items = xcalloc(n, sizeof(*items));
	for (i = 0; i < n; i++) {
		items[i].name = argv[optind + i];
		items[i].req = mx == 2 ? dns_lookup_ptr(items[i].name,
							dnsq_done, &items[i])
		    : mx ? dns_lookup_mx(items[i].name, dnsq_done, &items[i])
		    : dns_lookup_host(items[i].name, dnsq_done, &items[i]);
	}
	dnsq_pending = n;

	if (cancel || freeit) {
		struct event *stop = evtimer_new(dnsq_base, dnsq_stop, 0);
		struct timeval tv = {1, 0};

		if (cancel)
			for (i = 0; i < n; i++)
				dns_cancel(items[i].req);
		else
			dns_free();
		evtimer_add(stop, &tv);
		event_base_dispatch(dnsq_base);
		event_free(stop);
		for (i = 0; i < n; i++)
			if (items[i].res != 0) {
				printf("callback after %s: %s\n",
				       cancel ? "cancel" : "free", items[i].name);
				items[i].res = dns_result_free(items[i].res);
				rc = 1;
			}
		if (rc == 0)
			printf("%s\n", cancel ? "cancelled" : "freed");
	} else {
		event_base_dispatch(dnsq_base);
		for (i = 0; i < n; i++) {
			if (items[i].res == 0) {
				printf("%s: no callback\n", items[i].name);
				rc = 2;
				continue;
			}
			if (dnsq_print(&items[i], n > 1, verbose) != 0 && rc == 0)
				rc = 1;
			items[i].res = dns_result_free(items[i].res);
		}
	}
	fflush(stdout);
	dns_free();
	xfree(items);
	strbuf_free(err);
	event_base_free(dnsq_base);
	return (rc);
}
