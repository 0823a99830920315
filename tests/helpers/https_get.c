/*
 * https_get - run lib/http GETs on an event loop and print the results
 *
 * SYNOPSIS
 *	https_get [-c cafile] [-r host:port:addr] [-t timeout] [-m max_bytes]
 *		[-C] URL...
 *
 * DESCRIPTION
 *	A test helper for tests/integration/test_http.py. It starts one
 *	http_get() per URL at once, runs the libevent loop until every
 *	callback has come, and prints for each URL, in argument order,
 *
 *		URL status=S len=N type=T
 *		<the body>
 *
 *	or "URL error: reason". A timer ticking every 10 ms counts how
 *	often the loop ran while the requests were in flight ("ticks=N"
 *	on the last line), which shows that nothing blocked it.
 *
 *	-c is the CA file, -r a pinned address (CURLOPT_RESOLVE), -t the
 *	timeout in seconds, -m the longest body. -C cancels every request
 *	at once and checks that no callback comes ("cancelled").
 *
 *	Exit status: 0 when every URL got a response, 1 when one failed,
 *	2 on usage or setup errors.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "xmalloc.h"

struct one {
	const char *url;
	int     done;
	char   *out;
	int     failed;
};

static struct one *ones;
static int nleft;
static long ticks;
static struct event_base *base;

/* got - one callback */
static void
got(const struct http_result *res, void *ctx)
{
	struct one *o = ctx;
	size_t  need = strlen(o->url) + res->len + strlen(res->error)
	+ strlen(res->content_type) + 128;

	o->out = xmalloc(need);
	if (*res->error) {
		snprintf(o->out, need, "%s error: %s\n", o->url, res->error);
		o->failed = 1;
	} else
		snprintf(o->out, need, "%s status=%ld len=%zu type=%s\n%s\n",
			 o->url, res->status, res->len, res->content_type,
			 res->body);
	o->done = 1;
	if (--nleft == 0)
		event_base_loopbreak(base);
}

/* tick - the loop is alive */
static void
tick(evutil_socket_t unused_fd, short unused_what, void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	ticks++;
}

/* main - parse, start, loop, print */
int
main(int argc, char **argv)
{
	struct http_opts opts;
	struct http_req **reqs;
	struct event *t;
	struct timeval tv = {0, 10000};
	const char *cafile = NULL;
	int     cancel = 0;
	int     rc = 0;
	int     ch;
	int     i;
	int     n;

	memset(&opts, 0, sizeof(opts));
	while ((ch = getopt(argc, argv, "c:r:t:m:C")) != -1) {
		switch (ch) {
		case 'c':
			cafile = optarg;
			break;
		case 'r':
			opts.resolve = optarg;
			break;
		case 't':
			opts.timeout = atol(optarg);
			break;
		case 'm':
			opts.max_bytes = (size_t) atol(optarg);
			break;
		case 'C':
			cancel = 1;
			break;
		default:
			fprintf(stderr, "usage: https_get [-c cafile] [-r res] "
				"[-t timeout] [-m max] [-C] URL...\n");
			return (2);
		}
	}
	n = argc - optind;
	if (n <= 0)
		return (2);
	log_init("https_get");
	base = event_base_new();
	if (base == NULL || http_init(base) < 0) {
		fprintf(stderr, "https_get: setup failed\n");
		return (2);
	}
	if (http_set_ca(cafile, NULL) < 0) {
		perror(cafile);
		return (2);
	}
	ones = xcalloc((size_t) n, sizeof(*ones));
	reqs = xcalloc((size_t) n, sizeof(*reqs));
	nleft = n;
	for (i = 0; i < n; i++) {
		ones[i].url = argv[optind + i];
		reqs[i] = http_get(ones[i].url, &opts, got, &ones[i]);
	}
	t = event_new(base, -1, EV_PERSIST, tick, NULL);
	event_add(t, &tv);
	if (cancel) {
		for (i = 0; i < n; i++)
			http_cancel(reqs[i]);
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
		printf("%s count=%zu\n", nleft == n ? "cancelled" : "CALLED",
		       http_count());
		rc = nleft == n ? 0 : 1;
		event_free(t);
		http_free();
		event_base_free(base);
		xfree(ones);
		xfree(reqs);
		return (rc);
	}
	event_base_dispatch(base);
	for (i = 0; i < n; i++) {
		fputs(ones[i].out, stdout);
		rc |= ones[i].failed;
		xfree(ones[i].out);
	}
	printf("ticks=%ld\n", ticks);
	event_free(t);
	http_free();
	event_base_free(base);
	xfree(ones);
	xfree(reqs);
	return (rc);
}
