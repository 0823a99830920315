/*
 * dns_fuzz - libFuzzer target for the parsers of lib/util/dns.c
 *
 * Build: see "make fuzz-build" (links libsendarix.a).
 *
 * The input is used three ways: as the RDATA of an MX record
 * (dns_mx_parse), and as a string for dns_name_check() and
 * dns_resolver_parse(). Checks beyond "does not crash": a parsed MX
 * encodes back to exactly the input bytes, and its exchanger passes
 * dns_name_check(); a checked name is a prefix of the input and checks
 * again to itself; parsed forwarders have valid ports and addresses.
 */

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "strbuf.h"
#include "xmalloc.h"

/* dns_fuzz_mx - dns_mx_parse() and its round trip */
static void
dns_fuzz_mx(const uint8_t *data, size_t size)
{
	char    host[DNS_NAME_MAX + 2];
	char    again[DNS_NAME_MAX + 2];
	unsigned char wire[2 + DNS_NAME_MAX + 2];
	size_t  n = 2;
	const char *lab;
	const char *dot;
	size_t  len;
	int     pref;

	if (dns_mx_parse(data, size, &pref, host, sizeof(host)) < 0)
		return;
	if (pref < 0 || pref > 65535)
		abort();
	wire[0] = (unsigned char) (pref >> 8);
	wire[1] = (unsigned char) pref;
	if (strcmp(host, ".") != 0) {
		if (dns_name_check(host, again, sizeof(again)) < 0
		    || strcmp(host, again) != 0)
			abort();
		for (lab = host;; lab = dot + 1) {
			dot = strchr(lab, '.');
			len = dot ? (size_t) (dot - lab) : strlen(lab);
			if (n + 1 + len >= sizeof(wire))
				abort();
			wire[n++] = (unsigned char) len;
			memcpy(wire + n, lab, len);
			n += len;
			if (dot == 0)
				break;
		}
	}
	wire[n++] = 0;
	if (n != size || memcmp(wire, data, size) != 0)
		abort();
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_server srv[DNS_SERVERS_MAX];
	char    name[DNS_NAME_MAX + 2];
	char    again[DNS_NAME_MAX + 2];
	unsigned char bin[16];
	struct strbuf *err;
	char   *str;
	size_t  n;
	size_t  i;

	dns_fuzz_mx(data, size);

	str = xmalloc(size + 1);
	memcpy(str, data, size);
	str[size] = 0;

	if (dns_name_check(str, name, sizeof(name)) == 0) {
		if (strncmp(str, name, strlen(name)) != 0
		    || dns_name_check(name, again, sizeof(again)) < 0
		    || strcmp(name, again) != 0)
			abort();
	}

	err = strbuf_new(0, 1024);
	if (dns_resolver_parse(str, srv, DNS_SERVERS_MAX, &n, err) == 0) {
		if (n > DNS_SERVERS_MAX)
			abort();
		for (i = 0; i < n; i++)
			if (srv[i].port < 1 || srv[i].port > 65535
			    || inet_pton(srv[i].family, srv[i].addr, bin) != 1)
				abort();
	} else if (err->len == 0)
		abort();
	strbuf_free(err);
	xfree(str);
	return (0);
}
