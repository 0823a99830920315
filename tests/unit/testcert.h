#ifndef SENDARIX_TESTCERT_H
#define SENDARIX_TESTCERT_H

/*
 * testcert - a self-signed certificate for the TLS unit tests
 *
 * testcert_sign() makes a certificate for "key", self-signed, with
 * subject and issuer CN="cn", valid for an hour; the caller frees it.
 * testcert_make() makes a P-256 key and such a certificate for it, with
 * CN=mx.test.example; the caller frees both. Include after <cmocka.h>:
 * failures are assertions.
 */

#include <openssl/evp.h>
#include <openssl/x509.h>

/* testcert_sign - a self-signed certificate for a key */
static inline X509 *
testcert_sign(EVP_PKEY *key, const char *cn)
{
	X509   *cert = X509_new();
	X509_NAME *name;

	assert_non_null(key);
	assert_non_null(cert);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *) cn, -1, -1, 0);
	X509_set_issuer_name(cert, name);
	assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
	return (cert);
}

/* testcert_make - a self-signed P-256 certificate and its key */
static inline void
testcert_make(X509 **certp, EVP_PKEY **keyp)
{
	*keyp = EVP_EC_gen("P-256");
	*certp = testcert_sign(*keyp, "mx.test.example");
}

#endif
