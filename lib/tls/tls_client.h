#ifndef SENDARIX_TLS_CLIENT_H
#define SENDARIX_TLS_CLIENT_H

/*
 * tls_client - the client side of TLS for smtp-out: one SSL_CTX, one SSL
 * per connection, and what the peer's certificate is worth afterwards.
 * See tls_client.c.
 */

#include <stddef.h>

#include <openssl/ssl.h>

/* How far the peer's certificate can be trusted (Postfix's words). */
#define TLS_TRUST_ANONYMOUS	0	/* no certificate */
#define TLS_TRUST_UNTRUSTED	1	/* chain not verified */
#define TLS_TRUST_TRUSTED	2	/* chain verified, name not checked/matched */
#define TLS_TRUST_VERIFIED	3	/* chain and name verified, or pin matched */

extern SSL_CTX *tls_client_ctx_new(const char *, const char *, char *,
				           size_t);
extern SSL *tls_client_ssl_new(SSL_CTX *, const char *, const char *,
			               const char *, const char *const *, size_t,
			               char *, size_t);
extern int tls_client_trust(SSL *);
extern const char *tls_client_trust_name(int);
extern int tls_client_chain_ok(SSL *);
extern int tls_client_name_ok(SSL *);
extern const char *tls_client_verify_error(SSL *);
extern int tls_client_chain_error(SSL *);
extern int tls_client_fingerprint(SSL *, const char *, int, char *, size_t);
extern int tls_client_pin_match(SSL *, const char *, const char *);

extern void tls_client_cache_init(SSL_CTX *, long);
extern int tls_client_cache_use(SSL *, const char *);
extern void tls_client_cache_drop(SSL *);
extern int tls_client_resumed(SSL *);
extern void tls_client_cache_flush(void);

/* Most sessions tls_client_cache_use() keeps (least recently used go). */
#define TLS_CLIENT_CACHE_MAX	2000

/* tls_client_fingerprint() what: */
#define TLS_FPT_CERT		0	/* the certificate's DER */
#define TLS_FPT_PKEY		1	/* its SubjectPublicKeyInfo DER */

#endif
