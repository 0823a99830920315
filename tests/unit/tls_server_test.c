/*
 * tls_server_test - unit tests for lib/tls/tls_server.c
 *
 * smtpd_tls_security_level and cipher grades parse as documented; key
 * file modes are judged as smtpd judges them; a context made from an RSA
 * and an ECDSA pair (files written here, keys 0600) holds both
 * certificates, the protocol floor and the resumption settings; and each
 * bad setting gives NULL with a reason instead of a context.
 */

#include <sys/stat.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "strbuf.h"
#include "testcert.h"
#include "tls.h"
#include "tls_server.h"

static char dir[] = "/tmp/tls_server_test.XXXXXX";
static char rsa_crt[128], rsa_key[128], ec_crt[128], ec_key[128];

/* write_pair - a self-signed certificate and its key, as PEM files */
static void
write_pair(EVP_PKEY *key, const char *cn, const char *crt_path,
	   const char *key_path)
{
	X509   *cert = testcert_sign(key, cn);
	FILE   *fp;

	assert_non_null(fp = fopen(crt_path, "w"));
	assert_int_equal(PEM_write_X509(fp, cert), 1);
	fclose(fp);
	assert_non_null(fp = fopen(key_path, "w"));
	assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL,
					      NULL), 1);
	fclose(fp);
	assert_int_equal(chmod(key_path, 0600), 0);
	X509_free(cert);
	EVP_PKEY_free(key);
}

/* setup - the two pairs in a temporary folder */
static int
setup(void **unused_state)
{
	(void) unused_state;
	tls_init();
	assert_non_null(mkdtemp(dir));
	snprintf(rsa_crt, sizeof(rsa_crt), "%s/rsa.crt", dir);
	snprintf(rsa_key, sizeof(rsa_key), "%s/rsa.key", dir);
	snprintf(ec_crt, sizeof(ec_crt), "%s/ec.crt", dir);
	snprintf(ec_key, sizeof(ec_key), "%s/ec.key", dir);
	write_pair(EVP_RSA_gen(2048), "rsa.test.example", rsa_crt, rsa_key);
	write_pair(EVP_EC_gen("P-256"), "ec.test.example", ec_crt, ec_key);
	return (0);
}

/* teardown - remove the files */
static int
teardown(void **unused_state)
{
	(void) unused_state;
	unlink(rsa_crt);
	unlink(rsa_key);
	unlink(ec_crt);
	unlink(ec_key);
	rmdir(dir);
	return (0);
}

/* base_conf - a good configuration with both pairs */
static void
base_conf(struct tls_server_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->cert_file = rsa_crt;
	conf->key_file = rsa_key;
	conf->eccert_file = ec_crt;
	conf->eckey_file = ec_key;
	conf->CAfile = "";
	conf->protocols = ">=TLSv1.2";
	conf->ciphers = "medium";
	conf->exclude_ciphers = "";
	conf->cache_timeout = 3600;
	conf->id_context = "smtpd";
}

/* test_level - smtpd_tls_security_level */
static void
test_level(void **unused_state)
{
	(void) unused_state;
	assert_int_equal(tls_server_level(""), TLS_SERVER_LEVEL_NONE);
	assert_int_equal(tls_server_level("none"), TLS_SERVER_LEVEL_NONE);
	assert_int_equal(tls_server_level("may"), TLS_SERVER_LEVEL_MAY);
	assert_int_equal(tls_server_level("ENCRYPT"), TLS_SERVER_LEVEL_ENCRYPT);
	assert_int_equal(tls_server_level("verify"), -1);
}

/* test_cipherlist - grades and exclusions */
static void
test_cipherlist(void **unused_state)
{
	struct strbuf *out = strbuf_new(64, 0);

	(void) unused_state;
	assert_int_equal(tls_server_cipherlist("high", "", out), 0);
	assert_string_equal(out->data, "HIGH:!aNULL:!eNULL");
	assert_int_equal(tls_server_cipherlist("medium", "SHA1, aDSS  RC4:",
					       out), 0);
	assert_string_equal(out->data,
			    "HIGH:MEDIUM:!aNULL:!eNULL:!SHA1:!aDSS:!RC4");
	assert_int_equal(tls_server_cipherlist("export", "", out), -1);
	assert_non_null(strstr(out->data, "unsupported cipher grade"));
	strbuf_free(out);
}

/* test_key_safe - who may read a key file */
static void
test_key_safe(void **unused_state)
{
	struct strbuf *err = strbuf_new(64, 0);

	(void) unused_state;
	assert_int_equal(tls_server_key_safe(rsa_key, err), 0);
	assert_int_equal(chmod(rsa_key, 0640), 0);
	assert_int_equal(tls_server_key_safe(rsa_key, err), 0);
	assert_int_equal(chmod(rsa_key, 0644), 0);
	assert_int_equal(tls_server_key_safe(rsa_key, err),
			 TLS_SERVER_KEY_OPEN);
	assert_non_null(strstr(err->data, "world-readable"));
	assert_int_equal(chmod(rsa_key, 0600), 0);
	assert_int_equal(tls_server_key_safe("/nonexistent/key", err), -1);
	assert_non_null(strstr(err->data, "cannot access"));
	strbuf_free(err);
}

/* test_ctx - both certificates, the floor, resumption */
static void
test_ctx(void **unused_state)
{
	struct tls_server_conf conf;
	struct strbuf *err = strbuf_new(64, 0);
	SSL_CTX *ctx;
	int     n = 0;
	int     ret;

	(void) unused_state;
	base_conf(&conf);
	ctx = tls_server_ctx_new(&conf, err);
	assert_non_null(ctx);
	for (ret = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); ret == 1;
	     ret = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT))
		n++;
	assert_int_equal(n, 2);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_session_cache_mode(ctx),
			 SSL_SESS_CACHE_SERVER);
	assert_int_equal(SSL_CTX_get_timeout(ctx), 3600);
	assert_int_equal(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, 0);
	SSL_CTX_free(ctx);

	/* Resumption off; one pair only. */
	conf.cache_timeout = 0;
	conf.eccert_file = "";
	ctx = tls_server_ctx_new(&conf, err);
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_session_cache_mode(ctx),
			 SSL_SESS_CACHE_OFF);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
	SSL_CTX_free(ctx);
	strbuf_free(err);
}

/* expect_fail - NULL with a reason that says "what" */
static void
expect_fail(const struct tls_server_conf *conf, const char *what)
{
	struct strbuf *err = strbuf_new(64, 0);

	assert_null(tls_server_ctx_new(conf, err));
	if (strstr(err->data, what) == NULL)
		fail_msg("want \"%s\" in \"%s\"", what, err->data);
	strbuf_free(err);
}

/* test_ctx_errors - each bad setting, one reason */
static void
test_ctx_errors(void **unused_state)
{
	struct tls_server_conf conf;

	(void) unused_state;
	base_conf(&conf);
	conf.cert_file = conf.eccert_file = "";
	expect_fail(&conf, "no server certificate");
	base_conf(&conf);
	conf.protocols = ">=TLSv2";
	expect_fail(&conf, "bad TLS protocol list");
	base_conf(&conf);
	conf.ciphers = "low";
	expect_fail(&conf, "unsupported cipher grade");
	base_conf(&conf);
	conf.key_file = ec_key;
	expect_fail(&conf, "");
	base_conf(&conf);
	conf.cert_file = "/nonexistent/cert";
	conf.key_file = rsa_key;
	expect_fail(&conf, "cannot load certificate file /nonexistent/cert");
	base_conf(&conf);
	conf.key_file = "/nonexistent/key";
	expect_fail(&conf, "cannot access key file /nonexistent/key");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level),
		cmocka_unit_test(test_cipherlist),
		cmocka_unit_test(test_key_safe),
		cmocka_unit_test(test_ctx),
		cmocka_unit_test(test_ctx_errors),
	};

	return (cmocka_run_group_tests(tests, setup, teardown));
}
