/*
 * xsasl_test - unit tests for lib/sasl: base64 and the XOAUTH2 message
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strbuf.h"
#include "xmalloc.h"
#include "xsasl.h"

/* test_b64_round_trip - every length, every byte value */
static void
test_b64_round_trip(void **unused_state)
{
	struct strbuf *enc = strbuf_new(64, 0);
	struct strbuf *dec = strbuf_new(64, 0);
	unsigned char in[260];
	size_t  len;
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char) (i * 7 + 3);
	for (len = 0; len < sizeof(in); len++) {
		xsasl_b64_encode(in, len, enc);
		assert_int_equal(enc->len, (len + 2) / 3 * 4);
		assert_int_equal(xsasl_b64_decode(enc->data, enc->len, dec), 0);
		assert_int_equal(dec->len, len);
		assert_memory_equal(dec->data, in, len);
	}
	xsasl_b64_encode("\0alice\0pw", 9, enc);
	assert_string_equal(enc->data, "AGFsaWNlAHB3");
	strbuf_free(enc);
	strbuf_free(dec);
}

/* test_b64_strict - RFC 4954 wants bad base64 refused */
static void
test_b64_strict(void **unused_state)
{
	static const char *const bad[] = {
		"A", "AB", "ABC", "AB=C", "=AAA", "A===", "AB==AB==", "AB C",
		"AB\nC", "AB*=", "QUJD\r",
	};
	struct strbuf *dec = strbuf_new(64, 0);
	size_t  i;

	(void) unused_state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(xsasl_b64_decode(bad[i], strlen(bad[i]), dec),
				 -1);
	assert_int_equal(xsasl_b64_decode("QQ==", 4, dec), 0);
	assert_string_equal(dec->data, "A");
	assert_int_equal(xsasl_b64_decode("", 0, dec), 0);
	assert_int_equal(dec->len, 0);
	strbuf_free(dec);
}

/* test_xoauth2_parse - user= and auth=Bearer, and what is not one */
static void
test_xoauth2_parse(void **unused_state)
{
	static const char good[] = "user=a@b.example\001auth=Bearer tok.1\001\001";
	static const char other[] = "auth=Bearer t\001host=x\001user=u\001\001";
	static const char *const bad[] = {
		"user=a\001auth=Bearer t\001",		/* one ^A short */
		"user=a\001\001",			/* no token */
		"auth=Bearer t\001\001",		/* no user */
		"user=a\001auth=Basic t\001\001",	/* not Bearer */
		"user=a\001auth=Bearer t u\001\001",	/* space in token */
		"user=a\001auth=Bearer t\001\001x",	/* trailing bytes */
		"",
	};
	char   *user;
	char   *token;
	size_t  i;

	(void) unused_state;
	assert_int_equal(xoauth2_parse(good, sizeof(good) - 1, &user, &token),
			 0);
	assert_string_equal(user, "a@b.example");
	assert_string_equal(token, "tok.1");
	xfree(user);
	xfree(token);
	assert_int_equal(xoauth2_parse(other, sizeof(other) - 1, &user,
				       &token), 0);
	assert_string_equal(user, "u");
	assert_string_equal(token, "t");
	xfree(user);
	xfree(token);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(xoauth2_parse(bad[i], strlen(bad[i]), &user,
					       &token), -1);
		assert_null(user);
		assert_null(token);
	}
	/* A NUL inside is refused too. */
	assert_int_equal(xoauth2_parse("user=a\0b\001auth=Bearer t\001\001",
				       22, &user, &token), -1);
}

/* test_xoauth2_error - the RFC 7628 error */
static void
test_xoauth2_error(void **unused_state)
{
	char   *json = xoauth2_error_json();

	(void) unused_state;
	assert_string_equal(json,
			    "{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}");
	xfree(json);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_b64_strict),
		cmocka_unit_test(test_xoauth2_parse),
		cmocka_unit_test(test_xoauth2_error),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
