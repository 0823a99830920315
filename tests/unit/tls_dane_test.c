/*
 * tls_dane_test - unit tests for lib/tls/tls_dane.c: TLSA records
 *	matched by OpenSSL's DANE code in a real handshake
 *
 * Each test makes real keys and certificates in memory (a self-signed
 * server certificate, or a CA and a server certificate it signed), runs
 * a TLS handshake between a server SSL and a client SSL over a BIO pair,
 * and checks the verdict of tls_dane_verified() for TLSA records that
 * match and that do not.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "tls_dane.h"

struct pki {
	EVP_PKEY *ca_key;
	X509   *ca;
	EVP_PKEY *key;
	X509   *cert;			/* signed by ca, or self-signed */
};

/* make_cert - a certificate for "cn" with "key", signed by issuer */
static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
	  long serial, int ca)
{
	X509   *x = X509_new();
	X509_NAME *name;
	X509_EXTENSION *ext;
	X509V3_CTX v3;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *) cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
	return (x);
}

/* pki_new - a CA and a server certificate, or a self-signed one */
static void
pki_new(struct pki *p, int with_ca)
{
	memset(p, 0, sizeof(*p));
	p->key = EVP_EC_gen("P-256");
	assert_non_null(p->key);
	if (with_ca) {
		p->ca_key = EVP_EC_gen("P-256");
		p->ca = make_cert("Test DANE CA", p->ca_key, NULL, NULL, 1, 1);
		p->cert = make_cert("mx.example.net", p->key, p->ca, p->ca_key,
				    2, 0);
	} else
		p->cert = make_cert("mx.example.net", p->key, NULL, NULL, 3, 0);
}

/* pki_free - let it go */
static void
pki_free(struct pki *p)
{
	X509_free(p->cert);
	X509_free(p->ca);
	EVP_PKEY_free(p->key);
	EVP_PKEY_free(p->ca_key);
}

/* digest - SHA-256 of a certificate (selector 0) or its SPKI (1) */
static void
digest(X509 *x, int selector, unsigned char out[32])
{
	unsigned char *der = NULL;
	unsigned int n = 32;
	int     len;

	len = selector ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) :
		i2d_X509(x, &der);
	assert_true(len > 0);
	assert_true(EVP_Digest(der, (size_t) len, out, &n, EVP_sha256(),
			       NULL));
	OPENSSL_free(der);
}

/* handshake - run one TLS handshake with DANE; the verdict, "why" */
static int
handshake(struct pki *p, const struct tls_tlsa *recs, size_t n,
	  const char *mx, char *why, size_t size, int *added)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL    *s;
	SSL    *c;
	BIO    *b1;
	BIO    *b2;
	int     i;
	int     cs = 0;
	int     ss = 0;
	int     ok;

	assert_int_equal(SSL_CTX_use_certificate(sctx, p->cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, p->key), 1);
	if (p->ca)
		assert_int_equal(SSL_CTX_add1_chain_cert(sctx, p->ca), 1);
	assert_int_equal(tls_dane_ctx_enable(cctx), 0);
	s = SSL_new(sctx);
	c = SSL_new(cctx);
	*added = tls_dane_ssl_setup(c, mx, recs, n);
	assert_true(*added >= 0);
	assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
	SSL_set_bio(s, b1, b1);
	SSL_set_bio(c, b2, b2);
	SSL_set_accept_state(s);
	SSL_set_connect_state(c);
	for (i = 0; i < 100 && (cs != 1 || ss != 1); i++) {
		if (cs != 1)
			cs = SSL_do_handshake(c);
		if (ss != 1)
			ss = SSL_do_handshake(s);
	}
	assert_int_equal(cs, 1);
	assert_int_equal(ss, 1);
	ok = tls_dane_verified(c, why, size);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return (ok);
}

/* test_parse_usable - RDATA and the RFC 7672 usable subset */
static void
test_parse_usable(void **unused)
{
	unsigned char rd[3 + 32] = {3, 1, 1};
	struct tls_tlsa t;

	(void) unused;
	assert_int_equal(tls_tlsa_parse(rd, sizeof(rd), &t), 0);
	assert_int_equal(t.usage, 3);
	assert_int_equal(t.len, 32);
	assert_true(tls_tlsa_usable(&t));
	assert_int_equal(tls_tlsa_parse(rd, 3, &t), -1);
	t.usage = 1;				/* PKIX-EE: unusable for SMTP */
	assert_false(tls_tlsa_usable(&t));
	t.usage = 2;
	t.len = 31;				/* SHA-256 of the wrong size */
	assert_false(tls_tlsa_usable(&t));
	t.len = 32;
	t.mtype = 2;				/* SHA-512 needs 64 */
	assert_false(tls_tlsa_usable(&t));
	t.mtype = 3;
	assert_false(tls_tlsa_usable(&t));
}

/* test_dane_ee - 3 1 1 and 3 0 1 of a self-signed certificate */
static void
test_dane_ee(void **unused)
{
	unsigned char spki[32];
	unsigned char full[32];
	unsigned char wrong[32];
	struct tls_tlsa t[2];
	struct pki p;
	char    why[256];
	int     added;

	(void) unused;
	pki_new(&p, 0);
	digest(p.cert, 1, spki);
	digest(p.cert, 0, full);
	t[0] = (struct tls_tlsa) {3, 1, 1, spki, 32};
	assert_int_equal(handshake(&p, t, 1, "mx.example.net", why,
				   sizeof(why), &added), 1);
	assert_int_equal(added, 1);
	assert_non_null(strstr(why, "DANE-EE(3) 1 1"));
	/* The name does not matter for DANE-EE (RFC 7672 3.1.1). */
	assert_int_equal(handshake(&p, t, 1, "other.example.org", why,
				   sizeof(why), &added), 1);
	t[0] = (struct tls_tlsa) {3, 0, 1, full, 32};
	assert_int_equal(handshake(&p, t, 1, "mx.example.net", why,
				   sizeof(why), &added), 1);
	/* A wrong digest: not authenticated, with the X509 reason. */
	memcpy(wrong, spki, 32);
	wrong[0] ^= 0xff;
	t[0] = (struct tls_tlsa) {3, 1, 1, wrong, 32};
	assert_int_equal(handshake(&p, t, 1, "mx.example.net", why,
				   sizeof(why), &added), 0);
	assert_true(strlen(why) > 0);
	/* One wrong and one right record: the right one wins. */
	t[1] = (struct tls_tlsa) {3, 1, 1, spki, 32};
	assert_int_equal(handshake(&p, t, 2, "mx.example.net", why,
				   sizeof(why), &added), 1);
	assert_int_equal(added, 2);
	/* Only unusable records: nothing added, nothing authenticated. */
	t[0] = (struct tls_tlsa) {1, 1, 1, spki, 32};
	assert_int_equal(handshake(&p, t, 1, "mx.example.net", why,
				   sizeof(why), &added), 0);
	assert_int_equal(added, 0);
	pki_free(&p);
}

/* test_dane_ta - 2 0 1 of the issuing CA; the name must match */
static void
test_dane_ta(void **unused)
{
	unsigned char ca[32];
	unsigned char leaf[32];
	struct tls_tlsa t;
	struct pki p;
	char    why[256];
	int     added;

	(void) unused;
	pki_new(&p, 1);
	digest(p.ca, 0, ca);
	t = (struct tls_tlsa) {2, 0, 1, ca, 32};
	assert_int_equal(handshake(&p, &t, 1, "mx.example.net", why,
				   sizeof(why), &added), 1);
	assert_non_null(strstr(why, "DANE-TA(2)"));
	/* DANE-TA checks the name: another MX name fails. */
	assert_int_equal(handshake(&p, &t, 1, "mx2.example.net", why,
				   sizeof(why), &added), 0);
	/* The leaf's digest as DANE-TA does not anchor anything. */
	digest(p.cert, 0, leaf);
	t = (struct tls_tlsa) {2, 0, 1, leaf, 32};
	assert_int_equal(handshake(&p, &t, 1, "mx.example.net", why,
				   sizeof(why), &added), 0);
	pki_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tls_dane_tests[] = {
		cmocka_unit_test(test_parse_usable),
		cmocka_unit_test(test_dane_ee),
		cmocka_unit_test(test_dane_ta),
	};

	tls_init();
	return (cmocka_run_group_tests_name("tls_dane", tls_dane_tests, NULL,
					    NULL));
}
