/*
 * tls_dane - DANE TLSA authentication for SMTP (RFC 7672)
 *
 * SYNOPSIS
 *	#include "tls_dane.h"
 *
 *	int	tls_tlsa_parse(const unsigned char *rdata, size_t len,
 *			struct tls_tlsa *out)
 *	int	tls_tlsa_usable(const struct tls_tlsa *t)
 *	int	tls_dane_ctx_enable(SSL_CTX *ctx)
 *	int	tls_dane_ssl_setup(SSL *ssl, const char *mx_host,
 *			const struct tls_tlsa *recs, size_t count)
 *	int	tls_dane_verified(SSL *ssl, char *why, size_t size)
 *
 * DESCRIPTION
 *	tls_tlsa_parse() reads the RDATA of one TLSA record (certificate
 *	usage, selector, matching type, association data); "out" points
 *	into "rdata". 0, or -1 when it is too short.
 *
 *	tls_tlsa_usable() says whether SMTP may use a record (RFC 7672
 *	section 3.1.3): usage DANE-TA(2) or DANE-EE(3), selector 0 or 1,
 *	matching type 0, 1 or 2 with data of the right length (32 bytes
 *	for SHA-256, 64 for SHA-512). PKIX-TA(0) and PKIX-EE(1) records
 *	are "unusable" for SMTP; a TLSA RRset with only unusable records
 *	means "authenticate nothing, but still encrypt" (section 2.2).
 *
 *	tls_dane_ctx_enable() turns on OpenSSL's DANE support on a client
 *	context (SSL_CTX_dane_enable); call it once per context. 0 or -1.
 *
 *	tls_dane_ssl_setup() sets up DANE on one client SSL before the
 *	handshake: SSL_dane_enable() with the MX host name as the
 *	reference identifier (also SNI), the flag that makes DANE-EE(3)
 *	match without name checks (RFC 7672 3.1.1), and
 *	SSL_dane_tlsa_add() for each usable record. It returns the number
 *	of usable records added (0: none usable, DANE cannot authenticate
 *	the peer), or -1 on an OpenSSL failure (tls_errors() says why).
 *	Verification failures do not stop the handshake by themselves
 *	(SSL_VERIFY_NONE stays): the caller looks at the verdict with
 *	tls_dane_verified() and decides (dane: defer; testing: log).
 *
 *	tls_dane_verified() after the handshake: 1 when a TLSA record
 *	matched and the chain verified ("why" gets "DANE-EE(3)" or
 *	"DANE-TA(2)" and the depth), else 0 with the reason in "why"
 *	(the X509 verification error).
 *
 * SEE ALSO
 *	RFC 7672, RFC 6698, SSL_CTX_dane_enable(3), smtp-out(8)
 */

#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "tls_dane.h"

/* tls_tlsa_parse - one TLSA RDATA */
int
tls_tlsa_parse(const unsigned char *rdata, size_t len, struct tls_tlsa *out)
{
	if (len < 4)
		return (-1);
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->data = rdata + 3;
	out->len = len - 3;
	return (0);
}

/* tls_tlsa_usable - may SMTP use this record (RFC 7672 3.1.3) */
int
tls_tlsa_usable(const struct tls_tlsa *t)
{
	if (t->usage != 2 && t->usage != 3)
		return (0);
	if (t->selector > 1)
		return (0);
	switch (t->mtype) {
	case 0:
		return (t->len > 0);
	case 1:
		return (t->len == 32);
	case 2:
		return (t->len == 64);
	default:
		return (0);
	}
}

/* tls_dane_ctx_enable - DANE on a client context */
int
tls_dane_ctx_enable(SSL_CTX *ctx)
{
	return (SSL_CTX_dane_enable(ctx) > 0 ? 0 : -1);
}

/* tls_dane_ssl_setup - TLSA records on one SSL before the handshake */
int
tls_dane_ssl_setup(SSL *ssl, const char *mx_host, const struct tls_tlsa *recs,
		           size_t count)
{
	size_t  i;
	int     added = 0;
	int     rc;

	if (SSL_dane_enable(ssl, mx_host) <= 0)
		return (-1);
	(void) SSL_set_tlsext_host_name(ssl, mx_host);
	/* DANE-EE(3): the key is the identity; no name check, no expiry. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	for (i = 0; i < count; i++) {
		if (!tls_tlsa_usable(&recs[i]))
			continue;
		rc = SSL_dane_tlsa_add(ssl, recs[i].usage, recs[i].selector,
				       recs[i].mtype, recs[i].data,
				       recs[i].len);
		if (rc < 0)
			return (-1);
		if (rc > 0)
			added++;
	}
	return (added);
}

/* tls_dane_verified - did a TLSA record authenticate the peer? */
int
tls_dane_verified(SSL *ssl, char *why, size_t size)
{
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	const unsigned char *data;
	size_t  dlen;
	long    verr = SSL_get_verify_result(ssl);
	int     depth;

	depth = SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data,
				   &dlen);
	if (verr == X509_V_OK && depth >= 0) {
		snprintf(why, size, "%s(%u) %u %u at depth %d",
			 usage == 3 ? "DANE-EE" : usage == 2 ? "DANE-TA" :
			 "TLSA", usage, selector, mtype, depth);
		return (1);
	}
	snprintf(why, size, "%s", verr == X509_V_OK ?
		 "no TLSA record matched" :
		 X509_verify_cert_error_string(verr));
	return (0);
}
