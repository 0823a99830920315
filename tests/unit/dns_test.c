/*
 * dns_test - unit tests for lib/util/dns.c (no network)
 *
 * The parsers, the MX ordering, result lists, and the lookups that end
 * without a query (malformed names, IP addresses). Real answers are
 * tested in tests/integration/test_dns.py against a local DNS server.
 */

#include <sys/socket.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/event.h>

#include "dns.h"
#include "strbuf.h"
#include "xmalloc.h"

/* test_mx_sort_order - sorted by preference, nothing lost */
static void
test_mx_sort_order(void **unused_state)
{
	struct dns_mx mx[] = {
		{"c", 30}, {"a", 10}, {"z", 0}, {"b", 20}, {"a2", 10},
		{"y", 65535}, {"b2", 20},
	};
	size_t  n = sizeof(mx) / sizeof(mx[0]);
	int     seen[7] = {0};
	size_t  i;
	size_t  k;

	(void) unused_state;
	dns_mx_sort(mx, n);
	for (i = 1; i < n; i++)
		assert_true(mx[i - 1].pref <= mx[i].pref);
	assert_string_equal(mx[0].host, "z");
	assert_string_equal(mx[n - 1].host, "y");
	for (i = 0; i < n; i++) {
		const char *names[] = {"c", "a", "z", "b", "a2", "y", "b2"};

		for (k = 0; k < n; k++)
			if (strcmp(mx[i].host, names[k]) == 0)
				seen[k]++;
	}
	for (k = 0; k < n; k++)
		assert_int_equal(seen[k], 1);

	/* Empty and single lists are left alone. */
	dns_mx_sort(mx, 0);
	dns_mx_sort(mx, 1);
	assert_string_equal(mx[0].host, "z");
}

/* test_mx_sort_shuffle - equal preferences come in every order */
static void
test_mx_sort_shuffle(void **unused_state)
{
	int     first[3] = {0};
	int     run;
	size_t  i;

	(void) unused_state;
	for (run = 0; run < 600; run++) {
		struct dns_mx mx[] = {
			{"low", 20}, {"h0", 10}, {"h1", 10}, {"h2", 10},
			{"top", 5},
		};

		dns_mx_sort(mx, 5);
		assert_string_equal(mx[0].host, "top");
		assert_string_equal(mx[4].host, "low");
		for (i = 1; i <= 3; i++) {
			assert_int_equal(mx[i].pref, 10);
			assert_int_equal(mx[i].host[0], 'h');
		}
		/* Each of the three is first about a third of the time. */
		first[mx[1].host[1] - '0']++;
		assert_true(strcmp(mx[1].host, mx[2].host) != 0);
		assert_true(strcmp(mx[2].host, mx[3].host) != 0);
		assert_true(strcmp(mx[1].host, mx[3].host) != 0);
	}
	for (i = 0; i < 3; i++)
		assert_true(first[i] > 100);
}

/* test_mx_parse - MX RDATA decoding, good and malformed */
static void
test_mx_parse(void **unused_state)
{
	static const unsigned char good[] =
	"\x00\x0a\x03mx1\x07" "example\x03net\x00";
	static const unsigned char root[] = "\x00\x00\x00";
	static const unsigned char pref[] = "\xff\xff\x01x\x00";
	static const unsigned char ptr[] = "\x00\x0a\xc0\x0c";
	static const unsigned char overrun[] = "\x00\x0a\x05mx\x00";
	static const unsigned char noend[] = "\x00\x0a\x02mx";
	static const unsigned char trail[] = "\x00\x0a\x02mx\x00\x00";
	static const unsigned char badch[] = "\x00\x0a\x03m x\x00";
	static const unsigned char dot[] = "\x00\x0a\x03m.x\x00";
	unsigned char big[300];
	unsigned char lab64[70];
	char    host[DNS_NAME_MAX + 2];
	char    tiny[4];
	int     p = -1;
	size_t  i;
	size_t  n;

	(void) unused_state;
	assert_int_equal(dns_mx_parse(good, sizeof(good) - 1, &p, host,
				      sizeof(host)), 0);
	assert_int_equal(p, 10);
	assert_string_equal(host, "mx1.example.net");

	assert_int_equal(dns_mx_parse(root, sizeof(root) - 1, &p, host,
				      sizeof(host)), 0);
	assert_int_equal(p, 0);
	assert_string_equal(host, ".");

	assert_int_equal(dns_mx_parse(pref, sizeof(pref) - 1, &p, host,
				      sizeof(host)), 0);
	assert_int_equal(p, 65535);
	assert_string_equal(host, "x");

	/* Malformed. */
	assert_int_equal(dns_mx_parse(0, 0, &p, host, sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(good, 2, &p, host, sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(ptr, sizeof(ptr) - 1, &p, host,
				      sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(overrun, sizeof(overrun) - 1, &p, host,
				      sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(noend, sizeof(noend) - 1, &p, host,
				      sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(trail, sizeof(trail) - 1, &p, host,
				      sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(badch, sizeof(badch) - 1, &p, host,
				      sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(dot, sizeof(dot) - 1, &p, host,
				      sizeof(host)), -1);
	assert_int_equal(dns_mx_parse(good, sizeof(good) - 1, &p, tiny,
				      sizeof(tiny)), -1);

	/* A 64-octet label. */
	lab64[0] = 0;
	lab64[1] = 1;
	lab64[2] = 64;
	memset(lab64 + 3, 'a', 64);
	lab64[67] = 0;
	assert_int_equal(dns_mx_parse(lab64, 68, &p, host, sizeof(host)), -1);

	/* A name longer than 253 octets of text. */
	n = 2;
	big[0] = big[1] = 0;
	for (i = 0; i < 5; i++) {
		big[n++] = 50;
		memset(big + n, 'b', 50);
		n += 50;
	}
	big[n++] = 0;
	assert_int_equal(dns_mx_parse(big, n, &p, host, sizeof(host)), -1);
}

/* test_name_check - host and domain names */
static void
test_name_check(void **unused_state)
{
	char    out[DNS_NAME_MAX + 2];
	char    longname[300];
	char    lab[70];

	(void) unused_state;
	assert_int_equal(dns_name_check("example.net", out, sizeof(out)), 0);
	assert_string_equal(out, "example.net");
	assert_int_equal(dns_name_check("Mx-1.Example.NET.", out,
					sizeof(out)), 0);
	assert_string_equal(out, "Mx-1.Example.NET");
	assert_int_equal(dns_name_check("_srv.x", out, sizeof(out)), 0);
	assert_int_equal(dns_name_check("localhost", out, sizeof(out)), 0);

	assert_int_equal(dns_name_check(0, out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check(".", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("a..b", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check(".a", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("a.b..", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("a b", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("a\nb", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("[192.0.2.1]", out, sizeof(out)), -1);
	assert_int_equal(dns_name_check("caf\xc3\xa9.fr", out, sizeof(out)),
			 -1);
	assert_int_equal(dns_name_check("example.net", out, 5), -1);

	memset(lab, 'a', 64);
	lab[64] = 0;
	assert_int_equal(dns_name_check(lab, out, sizeof(out)), -1);
	lab[63] = 0;
	assert_int_equal(dns_name_check(lab, out, sizeof(out)), 0);

	memset(longname, 'a', sizeof(longname));
	for (size_t i = 50; i < sizeof(longname); i += 51)
		longname[i] = '.';
	longname[253] = 0;
	if (longname[252] == '.')
		longname[252] = 'a';
	assert_int_equal(dns_name_check(longname, out, sizeof(out)), 0);
	longname[253] = 'a';
	longname[254] = 0;
	assert_int_equal(dns_name_check(longname, out, sizeof(out)), -1);
}

/* test_resolver_parse - dns_resolver values */
static void
test_resolver_parse(void **unused_state)
{
	struct dns_server srv[DNS_SERVERS_MAX];
	struct strbuf *err = strbuf_new(0, 1024);
	size_t  n = 99;
	static const char *bad[] = {
		"127.0.0.1@", "127.0.0.1@0", "127.0.0.1@65536", "127.0.0.1@x",
		"127.0.0.1@+53", "127.0.0.1@ 53", "127.0.0.1@53x",
		"127.0.0.1@-1", "localhost", "ns.example.net", "300.1.1.1",
		"127.0.0.1@53@53", "[::1]", "::1:", "@53",
		"1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 6.6.6.6 7.7.7.7 "
		"8.8.8.8 9.9.9.9",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	size_t  i;

	(void) unused_state;
	assert_int_equal(dns_resolver_parse("", srv, DNS_SERVERS_MAX, &n,
					    err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dns_resolver_parse(0, srv, DNS_SERVERS_MAX, &n,
					    err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dns_resolver_parse("  , ", srv, DNS_SERVERS_MAX,
					    &n, err), 0);
	assert_int_equal(n, 0);

	assert_int_equal(dns_resolver_parse("192.0.2.1", srv, DNS_SERVERS_MAX,
					    &n, err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(srv[0].addr, "192.0.2.1");
	assert_int_equal(srv[0].port, 53);
	assert_int_equal(srv[0].family, AF_INET);
	assert_int_equal(srv[0].loopback, 0);

	assert_int_equal(dns_resolver_parse(" 127.0.0.1@5353, ::1@53 "
					    "2001:db8::53\t127.1.2.3",
					    srv, DNS_SERVERS_MAX, &n, err), 0);
	assert_int_equal(n, 4);
	assert_string_equal(srv[0].addr, "127.0.0.1");
	assert_int_equal(srv[0].port, 5353);
	assert_int_equal(srv[0].loopback, 1);
	assert_string_equal(srv[1].addr, "::1");
	assert_int_equal(srv[1].family, AF_INET6);
	assert_int_equal(srv[1].port, 53);
	assert_int_equal(srv[1].loopback, 1);
	assert_string_equal(srv[2].addr, "2001:db8::53");
	assert_int_equal(srv[2].loopback, 0);
	assert_int_equal(srv[3].loopback, 1);

	assert_int_equal(dns_resolver_parse("192.0.2.1@65535", srv,
					    DNS_SERVERS_MAX, &n, err), 0);
	assert_int_equal(srv[0].port, 65535);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strbuf_reset(err);
		if (dns_resolver_parse(bad[i], srv, DNS_SERVERS_MAX, &n,
				       err) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(err->len > 0);
	}
	/* The limit is the caller's. */
	assert_int_equal(dns_resolver_parse("1.1.1.1 2.2.2.2", srv, 1, &n,
					    0), -1);
	strbuf_free(err);
}

/* test_prefer_families - smtp_address_preference and inet_protocols */
static void
test_prefer_families(void **unused_state)
{
	enum dns_prefer p;
	int     m;

	(void) unused_state;
	assert_int_equal(dns_prefer_parse("any", &p), 0);
	assert_int_equal(p, DNS_PREFER_ANY);
	assert_int_equal(dns_prefer_parse("IPv4", &p), 0);
	assert_int_equal(p, DNS_PREFER_IPV4);
	assert_int_equal(dns_prefer_parse("ipv6", &p), 0);
	assert_int_equal(p, DNS_PREFER_IPV6);
	assert_int_equal(dns_prefer_parse("", &p), -1);
	assert_int_equal(dns_prefer_parse("ipv5", &p), -1);
	assert_int_equal(dns_prefer_parse("ipv4 ", &p), -1);
	assert_int_equal(dns_prefer_parse(0, &p), -1);

	assert_int_equal(dns_families_parse("all", &m), 0);
	assert_int_equal(m, DNS_FAMILY_ALL);
	assert_int_equal(dns_families_parse("ipv4", &m), 0);
	assert_int_equal(m, DNS_FAMILY_IPV4);
	assert_int_equal(dns_families_parse(" ipv6 ", &m), 0);
	assert_int_equal(m, DNS_FAMILY_IPV6);
	assert_int_equal(dns_families_parse("ipv4, ipv6", &m), 0);
	assert_int_equal(m, DNS_FAMILY_ALL);
	assert_int_equal(dns_families_parse("", &m), -1);
	assert_int_equal(dns_families_parse(" , ", &m), -1);
	assert_int_equal(dns_families_parse("ipv4 ipx", &m), -1);
	assert_int_equal(dns_families_parse("alll", &m), -1);
	assert_int_equal(dns_families_parse(0, &m), -1);
}

/* test_result_list - building and freeing results */
static void
test_result_list(void **unused_state)
{
	struct dns_result *res = dns_result_new("example.net");
	char    addr[DNS_ADDR_STRLEN + 10];
	int     i;

	(void) unused_state;
	assert_int_equal(res->status, DNS_OK);
	assert_string_equal(res->name, "example.net");
	assert_string_equal(res->reason, "");
	assert_int_equal(res->count, 0);
	assert_int_equal(dns_result_add(res, "mx1", 10, AF_INET, "192.0.2.1",
					1), 0);
	assert_int_equal(dns_result_add(res, "mx1", 10, AF_INET6,
					"2001:db8::1", 0), 0);
	assert_int_equal(res->count, 2);
	assert_string_equal(res->addrs[0].host, "mx1");
	assert_int_equal(res->addrs[0].pref, 10);
	assert_int_equal(res->addrs[0].secure, 1);
	assert_int_equal(res->addrs[1].family, AF_INET6);
	assert_string_equal(res->addrs[1].addr, "2001:db8::1");

	/* Refused: bad family, missing or oversized address, the limit. */
	assert_int_equal(dns_result_add(res, "mx", 0, AF_UNIX, "x", 0), -1);
	assert_int_equal(dns_result_add(res, "mx", 0, AF_INET, 0, 0), -1);
	assert_int_equal(dns_result_add(res, "mx", 0, AF_INET, "2001:db8::1",
					0), -1);
	assert_int_equal(dns_result_add(res, "mx", 0, AF_INET6, "192.0.2.1",
					0), -1);
	assert_int_equal(dns_result_add(res, "mx", 0, AF_INET, "192.0.2",
					0), -1);
	memset(addr, '1', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = 0;
	assert_int_equal(dns_result_add(res, "mx", 0, AF_INET, addr, 0), -1);
	assert_int_equal(res->count, 2);
	for (i = 2; i < DNS_ADDR_MAX; i++)
		assert_int_equal(dns_result_add(res, "mx2", 20, AF_INET,
						"192.0.2.2", 0), 0);
	assert_int_equal(dns_result_add(res, "mx2", 20, AF_INET, "192.0.2.2",
					0), -1);
	assert_int_equal(res->count, DNS_ADDR_MAX);
	assert_null(dns_result_free(res));
	assert_null(dns_result_free(0));

	res = dns_result_new(0);
	assert_string_equal(res->name, "");
	dns_result_free(res);

	assert_string_equal(dns_status_str(DNS_OK), "OK");
	assert_string_equal(dns_status_str(DNS_TEMPFAIL), "TEMPFAIL");
	assert_string_equal(dns_status_str(DNS_NOTFOUND), "NOTFOUND");
	assert_string_equal(dns_status_str(DNS_NULLMX), "NULLMX");
}

/* prefer_fill - two hosts with mixed families */
static struct dns_result *
prefer_fill(void)
{
	struct dns_result *res = dns_result_new("d");

	dns_result_add(res, "a", 10, AF_INET6, "2001:db8::1", 0);
	dns_result_add(res, "a", 10, AF_INET, "192.0.2.1", 0);
	dns_result_add(res, "a", 10, AF_INET6, "2001:db8::2", 0);
	dns_result_add(res, "a", 10, AF_INET, "192.0.2.2", 0);
	dns_result_add(res, "b", 20, AF_INET, "192.0.2.3", 0);
	dns_result_add(res, "b", 20, AF_INET6, "2001:db8::3", 0);
	return (res);
}

/* test_result_prefer - family order within each host */
static void
test_result_prefer(void **unused_state)
{
	static const char *v4[] = {"192.0.2.1", "192.0.2.2", "2001:db8::1",
	"2001:db8::2", "192.0.2.3", "2001:db8::3"};
	static const char *v6[] = {"2001:db8::1", "2001:db8::2", "192.0.2.1",
	"192.0.2.2", "2001:db8::3", "192.0.2.3"};
	struct dns_result *res;
	int     v6first = 0;
	int     run;
	size_t  i;

	(void) unused_state;
	res = prefer_fill();
	dns_result_prefer(res, DNS_PREFER_IPV4);
	for (i = 0; i < res->count; i++)
		assert_string_equal(res->addrs[i].addr, v4[i]);
	assert_string_equal(res->addrs[3].host, "a");
	assert_string_equal(res->addrs[4].host, "b");
	dns_result_free(res);

	res = prefer_fill();
	dns_result_prefer(res, DNS_PREFER_IPV6);
	for (i = 0; i < res->count; i++)
		assert_string_equal(res->addrs[i].addr, v6[i]);
	dns_result_free(res);

	/* "any": hosts stay in order, each host's addresses are shuffled. */
	for (run = 0; run < 200; run++) {
		res = prefer_fill();
		dns_result_prefer(res, DNS_PREFER_ANY);
		for (i = 0; i < 4; i++)
			assert_string_equal(res->addrs[i].host, "a");
		for (i = 4; i < 6; i++)
			assert_string_equal(res->addrs[i].host, "b");
		assert_int_equal(res->addrs[4].addr[0] == '1'
				 ? strcmp(res->addrs[5].addr, "2001:db8::3")
				 : strcmp(res->addrs[5].addr, "192.0.2.3"), 0);
		v6first += res->addrs[4].family == AF_INET6;
		dns_result_free(res);
	}
	assert_true(v6first > 20 && v6first < 180);

	/* Empty and one-address results. */
	res = dns_result_new("e");
	dns_result_prefer(res, DNS_PREFER_ANY);
	dns_result_add(res, "h", 0, AF_INET, "192.0.2.9", 0);
	dns_result_prefer(res, DNS_PREFER_IPV6);
	assert_string_equal(res->addrs[0].addr, "192.0.2.9");
	dns_result_free(res);
}

/* early_done - callback of test_early: keep the result */
static void
early_done(struct dns_result *res, void *arg)
{
	struct dns_result **slot = arg;

	*slot = res;
}

/* test_init_errors - bad dns_resolver values fail dns_init cleanly */
static void
test_init_errors(void **unused_state)
{
	struct event_base *base = event_base_new();
	struct strbuf *err = strbuf_new(0, 1024);

	(void) unused_state;
	assert_int_equal(dns_init(base, "not-an-address", err), -1);
	assert_non_null(strstr(err->data, "not-an-address"));
	strbuf_reset(err);
	assert_int_equal(dns_init(base, "127.0.0.1@99999", err), -1);
	assert_int_equal(dns_init(base, "127.0.0.1@5353", err), 0);
	strbuf_reset(err);
	assert_int_equal(dns_init(base, "127.0.0.1@5353", err), -1);
	assert_true(err->len > 0);
	dns_free();
	dns_free();
	assert_int_equal(dns_init(base, "127.0.0.1@5353 ::1", err), 0);
	dns_free();
	strbuf_free(err);
	event_base_free(base);
}

/* test_early - answers known without a query come from the loop */
static void
test_early(void **unused_state)
{
	struct event_base *base = event_base_new();
	struct strbuf *err = strbuf_new(0, 1024);
	struct dns_result *r1 = 0;
	struct dns_result *r2 = 0;
	struct dns_result *r3 = 0;
	struct dns_result *r4 = 0;
	struct dns_result *r5 = 0;
	struct dns_req *req;

	(void) unused_state;

	/*
	 * Port 9 on loopback: nothing answers, but nothing is asked either.
	 */
	assert_int_equal(dns_init(base, "127.0.0.1@9", err), 0);
	dns_lookup_mx("bad..name", early_done, &r1);
	dns_lookup_host("192.0.2.7", early_done, &r2);
	dns_lookup_host("2001:db8::7", early_done, &r3);
	dns_lookup_host("bad name", early_done, &r4);
	req = dns_lookup_mx("", early_done, &r5);

	/* Never called from inside dns_lookup_*(). */
	assert_null(r1);
	assert_null(r2);
	dns_cancel(req);
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_loop(base, EVLOOP_NONBLOCK);

	assert_non_null(r1);
	assert_int_equal(r1->status, DNS_NOTFOUND);
	assert_string_equal(r1->reason, "malformed domain name");
	assert_int_equal(r1->count, 0);

	assert_non_null(r2);
	assert_int_equal(r2->status, DNS_OK);
	assert_int_equal(r2->count, 1);
	assert_int_equal(r2->addrs[0].family, AF_INET);
	assert_string_equal(r2->addrs[0].addr, "192.0.2.7");
	assert_int_equal(r2->addrs[0].pref, 0);

	assert_non_null(r3);
	assert_int_equal(r3->status, DNS_OK);
	assert_int_equal(r3->addrs[0].family, AF_INET6);
	assert_string_equal(r3->addrs[0].addr, "2001:db8::7");

	assert_non_null(r4);
	assert_int_equal(r4->status, DNS_NOTFOUND);
	assert_null(r5);

	dns_result_free(r1);
	dns_result_free(r2);
	dns_result_free(r3);
	dns_result_free(r4);
	dns_free();
	strbuf_free(err);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest dns_tests[] = {
		cmocka_unit_test(test_mx_sort_order),
		cmocka_unit_test(test_mx_sort_shuffle),
		cmocka_unit_test(test_mx_parse),
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_resolver_parse),
		cmocka_unit_test(test_prefer_families),
		cmocka_unit_test(test_result_list),
		cmocka_unit_test(test_result_prefer),
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test(test_early),
	};

	return (cmocka_run_group_tests_name("dns", dns_tests, NULL, NULL));
}
