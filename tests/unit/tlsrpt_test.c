/*
 * tlsrpt_test - unit tests for lib/global/tlsrpt.c (RFC 8460): the store
 *	and the aggregate report
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "strbuf.h"
#include "tlsrpt.h"

#define POLICY	"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.net\r\n" \
		"mx: *.example.net\r\nmax_age: 86400\r\n"

/* record - one outcome into the store, which must take it */
static void
record(const char *dir, const char *domain, const char *type,
       const char *text, const char *result, const char *mx, time_t when)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct tlsrpt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.domain = domain;
	ev.policy_type = type;
	ev.policy_text = text;
	ev.result = result;
	ev.mx_host = mx;
	ev.receiving_ip = "192.0.2.1";
	ev.reason = strcmp(result, "success") ? "why" : NULL;
	if (tlsrpt_record(dir, &ev, when, err) < 0)
		fail_msg("tlsrpt_record: %s", STRBUF_STR(err));
	strbuf_free(err);
}

/* test_day - day names */
static void
test_day(void **unused)
{
	time_t  t;

	(void) unused;
	assert_int_equal(tlsrpt_day_parse("2026-12-03", &t), 0);
	assert_int_equal(t, 1796256000);
	assert_int_equal(tlsrpt_day_parse("2026-02-30", &t), -1);
	assert_int_equal(tlsrpt_day_parse("2026-12-03x", &t), -1);
	assert_int_equal(tlsrpt_day_parse("yesterday", &t), -1);
}

/* test_report - two domains, two policies, grouped failures */
static void
test_report(void **unused)
{
	char    dir[] = "/tmp/tlsrpt_test.XXXXXX";
	char    store[256];
	char    out[256];
	char    path[512];
	struct strbuf *err = strbuf_new(64, 0);
	struct strbuf *written = strbuf_new(64, 0);
	struct tlsrpt_org org = {"Example Org", "postmaster@example.org",
	"example.org"};
	json_error_t jerr;
	json_t *rep;
	json_t *pol;
	json_t *det;
	time_t  day = 1796256000;		/* 2026-12-03 */
	size_t  n;

	(void) unused;
	assert_non_null(mkdtemp(dir));
	snprintf(store, sizeof(store), "%s/store", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	record(store, "example.net", "sts", POLICY, "success",
	       "mx1.example.net", day + 10);
	record(store, "example.net", "sts", POLICY, "success",
	       "mx1.example.net", day + 20);
	record(store, "example.net", "sts", POLICY, "starttls-not-supported",
	       "mx2.example.net", day + 30);
	record(store, "example.net", "sts", POLICY, "starttls-not-supported",
	       "mx2.example.net", day + 40);
	record(store, "example.net", "sts", NULL, "sts-policy-fetch-error",
	       NULL, day + 50);
	record(store, "example.com", "tlsa", "3 1 1 AB", "success",
	       "mx.example.com", day + 60);
	/* Another day: not in this report. */
	record(store, "example.net", "sts", POLICY, "success",
	       "mx1.example.net", day + 86400 + 5);

	assert_int_equal(tlsrpt_report(store, out, "2026-12-03", &org, &n,
				       written, err), 0);
	assert_string_equal(STRBUF_STR(written), "example.net\nexample.com\n");
	assert_int_equal(n, 2);
	snprintf(path, sizeof(path), "%s/example.org!example.net!%lld!%lld.json",
		 out, (long long) day, (long long) day + 86400);
	rep = json_load_file(path, 0, &jerr);
	assert_non_null(rep);
	assert_string_equal(json_string_value(json_object_get(rep,
					    "organization-name")), "Example Org");
	assert_string_equal(json_string_value(json_object_get(json_object_get(
			rep, "date-range"), "start-datetime")),
			    "2026-12-03T00:00:00Z");
	assert_string_equal(json_string_value(json_object_get(rep,
			    "contact-info")), "postmaster@example.org");
	assert_int_equal(json_array_size(json_object_get(rep, "policies")), 2);
	pol = json_array_get(json_object_get(rep, "policies"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(
			pol, "policy"), "policy-type")), "sts");
	assert_int_equal(json_array_size(json_object_get(json_object_get(pol,
						   "policy"), "policy-string")), 5);
	assert_int_equal(json_array_size(json_object_get(json_object_get(pol,
						   "policy"), "mx-host")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		     pol, "summary"), "total-successful-session-count")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		     pol, "summary"), "total-failure-session-count")), 2);
	det = json_array_get(json_object_get(pol, "failure-details"), 0);
	assert_string_equal(json_string_value(json_object_get(det,
			    "result-type")), "starttls-not-supported");
	assert_int_equal(json_integer_value(json_object_get(det,
					  "failed-session-count")), 2);
	assert_string_equal(json_string_value(json_object_get(det,
			    "receiving-mx-hostname")), "mx2.example.net");
	/* The fetch failure has a policy entry of its own, no policy text. */
	pol = json_array_get(json_object_get(rep, "policies"), 1);
	assert_null(json_object_get(json_object_get(pol, "policy"),
				    "policy-string"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
		     pol, "summary"), "total-failure-session-count")), 1);
	json_decref(rep);

	/* A day without records: nothing, no error. */
	assert_int_equal(tlsrpt_report(store, out, "2026-12-01", &org, &n,
				       NULL, err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tlsrpt_report(store, out, "bad", &org, &n, NULL,
				       err), -1);

	/* What was sent is remembered per day, domain and URI. */
	assert_int_equal(tlsrpt_sent_check(store, "2026-12-03", "example.net",
					   "mailto:a@example.net"), 0);
	assert_int_equal(tlsrpt_sent_mark(store, "2026-12-03", "example.net",
					  "mailto:a@example.net", err), 0);
	assert_int_equal(tlsrpt_sent_check(store, "2026-12-03", "example.net",
					   "mailto:a@example.net"), 1);
	assert_int_equal(tlsrpt_sent_check(store, "2026-12-03", "example.com",
					   "mailto:a@example.net"), 0);
	/* Old days go: a day is kept 2 days after it ended. */
	assert_int_equal(tlsrpt_expire(store, 2 * 86400, day + 3 * 86400 - 1,
				       &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(tlsrpt_expire(store, 2 * 86400, day + 3 * 86400,
				       &n), 0);
	assert_int_equal(n, 2);			/* 12-03 and 12-03.sent */
	assert_int_equal(tlsrpt_sent_check(store, "2026-12-03", "example.net",
					   "mailto:a@example.net"), 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	strbuf_free(err);
	strbuf_free(written);
}

/* test_rua - the rua URIs of a _smtp._tls record */
static void
test_rua(void **state)
{
	struct strbuf *u = strbuf_new(256, 0);

	(void) state;
	assert_int_equal(tlsrpt_rua_parse("v=TLSRPTv1; rua=mailto:r@example."
			 "net,https://r.example.net/up", u), 0);
	assert_string_equal(STRBUF_STR(u), "mailto:r@example.net\n"
			    "https://r.example.net/up\n");
	assert_int_equal(tlsrpt_rua_parse("v=TLSRPTv1 ; rua = mailto:a@b.c ;",
					  u), 0);
	assert_string_equal(STRBUF_STR(u), "mailto:a@b.c\n");
	assert_int_equal(tlsrpt_rua_parse("v=STSv1; id=1", u), -1);
	assert_int_equal(tlsrpt_rua_parse("v=TLSRPTv1; rua=http://x/", u), -1);
	assert_int_equal(tlsrpt_rua_parse("v=TLSRPTv1;", u), -1);
	strbuf_free(u);
}

int
main(void)
{
	const struct CMUnitTest tlsrpt_tests[] = {
		cmocka_unit_test(test_day),
		cmocka_unit_test(test_report),
		cmocka_unit_test(test_rua),
	};

	return (cmocka_run_group_tests_name("tlsrpt", tlsrpt_tests, NULL,
					    NULL));
}
