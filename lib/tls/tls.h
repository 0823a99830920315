#ifndef SENDARIX_TLS_H
#define SENDARIX_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct stream;

/*
 * OpenSSL for the programs that speak SMTP over the network (smtpd,
 * smtp-out, the sandbox): set-up, protocol ranges in Postfix's syntax,
 * error text, and TLS on a stream (lib/util/stream.h). See tls_common.c
 * and tls_stream.c.
 */
extern void tls_init(void);
extern int tls_protocols_parse(const char *, int *, int *);
extern int tls_ctx_set_protocols(SSL_CTX *, const char *);
extern void tls_ctx_common(SSL_CTX *);
extern const char *tls_errors(void);
extern void tls_describe(SSL *, char *, size_t);

extern int tls_stream_start(struct stream *, SSL *, int);
extern SSL *tls_stream_ssl(const struct stream *);
extern const char *tls_stream_errors(const struct stream *);

/* Enough for tls_describe(). */
#define TLS_DESCRIBE_LEN	160

#endif
