#ifndef SENDARIX_TLS_DANE_H
#define SENDARIX_TLS_DANE_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * DANE for SMTP (RFC 7672) on OpenSSL's DANE API: TLSA records as
 * libunbound gives them, set on a client SSL; the verdict after the
 * handshake. See tls_dane.c.
 */

/* One TLSA record. */
struct tls_tlsa {
	unsigned char usage;		/* 2 DANE-TA, 3 DANE-EE (0, 1 unusable) */
	unsigned char selector;		/* 0 full cert, 1 SubjectPublicKeyInfo */
	unsigned char mtype;		/* 0 full, 1 SHA-256, 2 SHA-512 */
	const unsigned char *data;
	size_t  len;
};

extern int tls_tlsa_parse(const unsigned char *, size_t, struct tls_tlsa *);
extern int tls_tlsa_usable(const struct tls_tlsa *);
extern int tls_dane_ctx_enable(SSL_CTX *);
extern int tls_dane_ssl_setup(SSL *, const char *, const struct tls_tlsa *,
			              size_t);
extern int tls_dane_verified(SSL *, char *, size_t);

#endif
