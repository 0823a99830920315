#ifndef SENDARIX_TLS_SERVER_H
#define SENDARIX_TLS_SERVER_H

/*
 * tls_server - the server side of TLS: an SSL_CTX made from the
 * smtpd_tls_* parameters. See tls_server.c.
 */

#include <openssl/ssl.h>

struct strbuf;

/* What tls_server_ctx_new() builds the context from. */
struct tls_server_conf {
	const char *cert_file;		/* RSA certificate (and chain) */
	const char *key_file;		/* its key; may be cert_file */
	const char *eccert_file;	/* ECDSA certificate (and chain) */
	const char *eckey_file;
	const char *CAfile;		/* chains; client cert anchors; or "" */
	const char *CApath;		/* hashed directory of CAs, or "" */
	const char *protocols;		/* Postfix syntax: ">=TLSv1.2" */
	const char *ciphers;		/* grade: high or medium */
	const char *exclude_ciphers;	/* OpenSSL names, comma/space list */
	long    cache_timeout;		/* session lifetime, seconds; 0 off */
	const char *id_context;		/* session ID context (service) */
	int     ask_ccert;		/* ask clients for a certificate */
	int     ccert_depth;		/* longest client chain to verify */
};

/* A client certificate (tls_server_peer()); strings never NULL. */
struct tls_peer_info {
	char   *subject;		/* subject CN, or "" */
	char   *issuer;			/* issuer CN (or O), or "" */
	char   *cert_fp;		/* certificate digest, colon hex */
	char   *pkey_fp;		/* public key (SPKI) digest, colon hex */
	int     trusted;		/* verified against CAfile/CApath */
};

extern SSL_CTX *tls_server_ctx_new(const struct tls_server_conf *,
				           struct strbuf *);
extern SSL *tls_server_ssl_new(SSL_CTX *, struct strbuf *);
extern int tls_server_cipherlist(const char *, const char *,
				         struct strbuf *);
extern int tls_server_key_safe(const char *, struct strbuf *);
extern int tls_server_level(const char *);
extern struct tls_peer_info *tls_server_peer(SSL *, const EVP_MD *);
extern void tls_server_peer_free(struct tls_peer_info *);

/* tls_server_key_safe(): a key file anyone may read. */
#define TLS_SERVER_KEY_OPEN	(-2)

/* tls_server_level() values: smtpd_tls_security_level. */
#define TLS_SERVER_LEVEL_NONE	0
#define TLS_SERVER_LEVEL_MAY	1
#define TLS_SERVER_LEVEL_ENCRYPT 2

#endif
