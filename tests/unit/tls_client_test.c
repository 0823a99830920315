/*
 * tls_client_test - unit tests for the session cache of lib/tls/tls_client.c
 *
 * Real handshakes between a client SSL of tls_client_ctx_new() and a
 * server SSL over a BIO pair, with a self-signed certificate (testcert.h)
 * that the client trusts (a CA file written here): a second connection
 * with the same key resumes the session (TLS 1.3 tickets and TLS 1.2)
 * and has the trust of the first, a name mismatch included, although a
 * resumed handshake verifies nothing; another key gets no session; a
 * dropped session is not offered again; the cache holds at most
 * TLS_CLIENT_CACHE_MAX sessions, the least recently used going first;
 * timeout 0 turns it all off.
 */

#include <sys/types.h>
#include <signal.h>
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

#include "tls.h"
#include "testcert.h"
#include "tls_client.h"

static SSL_CTX *server_ctx;
static SSL_CTX *client_ctx;
static char ca_file[] = "/tmp/tls_client_test.XXXXXX";

/* make_ctxs - a self-signed P-256 certificate, trusted by the client */
static int
make_ctxs(void **unused_state)
{
	EVP_PKEY *key;
	X509   *cert;
	FILE   *fp;
	int     fd;
	char    err[256];

	(void) unused_state;
	tls_init();
	testcert_make(&cert, &key);
	fd = mkstemp(ca_file);
	assert_true(fd >= 0);
	fp = fdopen(fd, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_X509(fp, cert), 1);
	fclose(fp);

	server_ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(server_ctx);
	tls_ctx_common(server_ctx);
	assert_int_equal(SSL_CTX_use_certificate(server_ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(server_ctx, key), 1);
	client_ctx = tls_client_ctx_new(ca_file, NULL, err, sizeof(err));
	assert_non_null(client_ctx);
	tls_client_cache_init(client_ctx, 3600);
	X509_free(cert);
	EVP_PKEY_free(key);
	return (0);
}

/* free_ctxs - the end */
static int
free_ctxs(void **unused_state)
{
	(void) unused_state;
	tls_client_cache_flush();
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	unlink(ca_file);
	return (0);
}

/* The outcome of one connection. */
struct conn {
	int     offered;		/* tls_client_cache_use() */
	int     resumed;
	int     trust;
	int     chain_err;
};

/* connect_once - one handshake under "key", then the tickets, then close */
static struct conn
connect_once(const char *key, const char *name, const char *protocols)
{
	const char *names[1];
	struct conn c;
	char    err[256];
	char    buf[16];
	SSL    *cli;
	SSL    *srv;
	BIO    *cb;
	BIO    *sb;
	int     cdone = 0;
	int     sdone = 0;
	int     i;

	names[0] = name;
	cli = tls_client_ssl_new(client_ctx, NULL, protocols, NULL, names,
				 name ? 1 : 0, err, sizeof(err));
	assert_non_null(cli);
	srv = SSL_new(server_ctx);
	assert_non_null(srv);
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(cli, cb, cb);
	SSL_set_bio(srv, sb, sb);
	SSL_set_connect_state(cli);
	SSL_set_accept_state(srv);
	c.offered = key ? tls_client_cache_use(cli, key) : 0;
	for (i = 0; i < 20 && !(cdone && sdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(cli) == 1;
		if (!sdone)
			sdone = SSL_do_handshake(srv) == 1;
	}
	assert_true(cdone && sdone);
	/* TLS 1.3 tickets come after the handshake; reading takes them. */
	assert_true(SSL_read(cli, buf, sizeof(buf)) <= 0);
	c.resumed = tls_client_resumed(cli);
	c.trust = tls_client_trust(cli);
	c.chain_err = tls_client_chain_error(cli);
	/* No close_notify: the cached session must survive that. */
	SSL_free(cli);
	SSL_free(srv);
	return (c);
}

/* test_resume_tls13 - same key: resumed, with the first trust */
static void
test_resume_tls13(void **unused_state)
{
	struct conn c;

	(void) unused_state;
	c = connect_once("a", "mx.test.example", NULL);
	assert_false(c.offered);
	assert_false(c.resumed);
	assert_int_equal(c.trust, TLS_TRUST_VERIFIED);
	for (int i = 0; i < 3; i++) {
		c = connect_once("a", "mx.test.example", NULL);
		assert_true(c.offered);
		assert_true(c.resumed);
		assert_int_equal(c.trust, TLS_TRUST_VERIFIED);
	}
}

/* test_resume_keeps_failures - a name mismatch stays a mismatch */
static void
test_resume_keeps_failures(void **unused_state)
{
	struct conn c;

	(void) unused_state;
	c = connect_once("b", "other.example", NULL);
	assert_false(c.resumed);
	assert_int_equal(c.trust, TLS_TRUST_TRUSTED);
	c = connect_once("b", "other.example", NULL);
	assert_true(c.resumed);
	/* No check ran: without the saved result this would be Verified. */
	assert_int_equal(c.trust, TLS_TRUST_TRUSTED);
	assert_int_equal(c.chain_err, 0);
}

/* test_other_key - a session is never offered under another key */
static void
test_other_key(void **unused_state)
{
	struct conn c;

	(void) unused_state;
	c = connect_once("a", "mx.test.example", NULL);
	assert_true(c.resumed);
	c = connect_once("a-other", "mx.test.example", NULL);
	assert_false(c.offered);
	assert_false(c.resumed);
	/* No key: nothing offered, nothing kept. */
	c = connect_once(NULL, "mx.test.example", NULL);
	assert_false(c.offered);
	assert_false(c.resumed);
}

/* test_resume_tls12 - the TLS 1.2 session (ticket) is kept too */
static void
test_resume_tls12(void **unused_state)
{
	struct conn c;

	(void) unused_state;
	c = connect_once("c", "mx.test.example", "TLSv1.2");
	assert_false(c.resumed);
	c = connect_once("c", "mx.test.example", "TLSv1.2");
	assert_true(c.offered);
	assert_true(c.resumed);
	assert_int_equal(c.trust, TLS_TRUST_VERIFIED);
}

/* test_drop - a dropped session is not offered again */
static void
test_drop(void **unused_state)
{
	char    err[256];
	SSL    *ssl;
	struct conn c;

	(void) unused_state;
	c = connect_once("d", "mx.test.example", NULL);
	c = connect_once("d", "mx.test.example", NULL);
	assert_true(c.resumed);
	ssl = tls_client_ssl_new(client_ctx, NULL, NULL, NULL, NULL, 0, err,
				 sizeof(err));
	assert_non_null(ssl);
	assert_true(tls_client_cache_use(ssl, "d"));
	tls_client_cache_drop(ssl);
	SSL_free(ssl);
	c = connect_once("d", "mx.test.example", NULL);
	assert_false(c.offered);
	assert_false(c.resumed);
}

/* test_bound - at most TLS_CLIENT_CACHE_MAX; the least recently used go */
static void
test_bound(void **unused_state)
{
	char    key[32];
	struct conn c;
	int     i;

	(void) unused_state;
	tls_client_cache_flush();
	c = connect_once("first", "mx.test.example", NULL);
	c = connect_once("used", "mx.test.example", NULL);
	for (i = 0; i < TLS_CLIENT_CACHE_MAX - 2; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		c = connect_once(key, "mx.test.example", NULL);
	}
	/* Full: "used" becomes the most recent, then one more goes in. */
	c = connect_once("used", "mx.test.example", NULL);
	assert_true(c.resumed);
	c = connect_once("one-more", "mx.test.example", NULL);
	c = connect_once("first", "mx.test.example", NULL);
	assert_false(c.offered);
	c = connect_once("used", "mx.test.example", NULL);
	assert_true(c.offered);
}

/* test_off - timeout 0: no session kept or offered */
static void
test_off(void **unused_state)
{
	struct conn c;

	(void) unused_state;
	tls_client_cache_flush();
	tls_client_cache_init(client_ctx, 0);
	c = connect_once("e", "mx.test.example", NULL);
	c = connect_once("e", "mx.test.example", NULL);
	assert_false(c.offered);
	assert_false(c.resumed);
	tls_client_cache_init(client_ctx, 3600);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resume_tls13),
		cmocka_unit_test(test_resume_keeps_failures),
		cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_resume_tls12),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_off),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests_name("tls_client", tests, make_ctxs,
					    free_ctxs));
}
