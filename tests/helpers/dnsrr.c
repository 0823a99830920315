/*
 * dnsrr - run one dns_lookup_rr() (TXT or TLSA) and print the answer
 *
 * SYNOPSIS
 *	dnsrr [-r resolver] [-T trust_anchor_file] [-t timeout] txt|tlsa NAME
 *
 * DESCRIPTION
 *	A test helper for tests/integration/test_dane.py and friends. It
 *	prints one line "status=S secure=N bogus=N count=N", then one line
 *	per record: the TXT text (character-strings joined), or a TLSA
 *	record as "usage selector mtype HEX" (usable=0/1 at the end, as
 *	tls_tlsa_usable() says), then "reason: ..." when there is one.
 *	-T gives dns_set_trust_anchor(): DNSSEC validation below it.
 *
 *	Exit status: 0 for DNS_OK, 1 for another status, 2 on usage or
 *	setup errors.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "strbuf.h"
#include "tls_dane.h"

static struct dns_rrset *dnsrr_res;

/* dnsrr_done - keep the answer, stop the loop */
static void
dnsrr_done(struct dns_rrset *rs, void *arg)
{
	dnsrr_res = rs;
	event_base_loopbreak((struct event_base *) arg);
}

/* dnsrr_print - one record */
static void
dnsrr_print(int type, const unsigned char *data, size_t len)
{
	struct strbuf *txt = strbuf_new(256, 0);
	struct tls_tlsa t;
	size_t  i;

	if (type == DNS_TYPE_TXT) {
		if (dns_txt_decode(data, len, txt) < 0)
			printf("malformed TXT\n");
		else
			printf("%s\n", STRBUF_STR(txt));
	} else if (tls_tlsa_parse(data, len, &t) < 0) {
		printf("malformed TLSA\n");
	} else {
		printf("%u %u %u ", t.usage, t.selector, t.mtype);
		for (i = 0; i < t.len; i++)
			printf("%02x", t.data[i]);
		printf(" usable=%d\n", tls_tlsa_usable(&t));
	}
	strbuf_free(txt);
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct strbuf *err = strbuf_new(256, 0);
	const char *resolver = "";
	const char *anchor = NULL;
	long    timeout = 10;
	int     type;
	int     ch;
	int     rc;
	size_t  i;

	log_init("dnsrr");
	while ((ch = getopt(argc, argv, "r:T:t:")) != -1) {
		switch (ch) {
		case 'r':
			resolver = optarg;
			break;
		case 'T':
			anchor = optarg;
			break;
		case 't':
			timeout = atol(optarg);
			break;
		default:
			return (2);
		}
	}
	if (argc - optind != 2)
		return (2);
	if (strcmp(argv[optind], "txt") == 0)
		type = DNS_TYPE_TXT;
	else if (strcmp(argv[optind], "tlsa") == 0)
		type = DNS_TYPE_TLSA;
	else
		return (2);
	base = event_base_new();
	dns_set_trust_anchor(anchor);
	if (base == NULL || dns_init(base, resolver, err) < 0) {
		fprintf(stderr, "dnsrr: %s\n", STRBUF_STR(err));
		return (2);
	}
	dns_set_timeout(timeout);
	(void) dns_lookup_rr(argv[optind + 1], type, dnsrr_done, base);
	event_base_dispatch(base);
	if (dnsrr_res == NULL) {
		printf("no callback\n");
		return (2);
	}
	printf("status=%s secure=%d bogus=%d count=%zu\n",
	       dns_status_str(dnsrr_res->status), dnsrr_res->secure,
	       dnsrr_res->bogus, dnsrr_res->count);
	for (i = 0; i < dnsrr_res->count; i++)
		dnsrr_print(type, dnsrr_res->data[i], dnsrr_res->len[i]);
	if (*dnsrr_res->reason)
		printf("reason: %s\n", dnsrr_res->reason);
	rc = dnsrr_res->status == DNS_OK ? 0 : 1;
	dns_rrset_free(dnsrr_res);
	dns_free();
	dns_set_trust_anchor(NULL);
	event_base_free(base);
	strbuf_free(err);
	return (rc);
}
