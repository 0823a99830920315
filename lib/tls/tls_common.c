/*
 * tls_common - OpenSSL set-up shared by the TLS server and client
 *
 * SYNOPSIS
 *	#include "tls.h"
 *
 *	void	tls_init(void)
 *
 *	int	tls_protocols_parse(const char *spec, int *min_version,
 *			int *max_version)
 *	int	tls_ctx_set_protocols(SSL_CTX *ctx, const char *spec)
 *	void	tls_ctx_common(SSL_CTX *ctx)
 *
 *	const char *tls_errors(void)
 *	void	tls_describe(SSL *ssl, char *buf, size_t len)
 *
 * DESCRIPTION
 *	tls_init() prepares OpenSSL once per process; later calls do
 *	nothing. Call it before the first SSL_CTX is made, as root if
 *	key files are read then.
 *
 *	tls_protocols_parse() reads a protocol list in Postfix's syntax
 *	(smtpd_tls_protocols, smtp_tls_protocols and the mandatory
 *	variants): names SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3,
 *	separated by blanks, commas or colons, each either plain (only
 *	the named ones), negated with "!" (all but those), or a bound
 *	">=TLSv1.2" or "<=TLSv1.3". It stores the lowest and highest
 *	version allowed as OpenSSL's version numbers (TLS1_2_VERSION...),
 *	0 where the list sets no bound; "" sets neither. SSLv2 is accepted
 *	and means nothing: OpenSSL has no SSLv2. It returns -1 for an
 *	unknown name or a list that allows no protocol, else 0.
 *
 *	tls_ctx_set_protocols() applies such a list to a context: the two
 *	bounds, and SSL_OP_NO_* for a protocol excluded between them
 *	("!TLSv1.2" with TLSv1.1 and TLSv1.3 allowed). -1 as above.
 *
 *	tls_ctx_common() sets what every context of Sendarix wants: no
 *	compression (CRIME), no client-initiated renegotiation, and
 *	buffers released while a connection is idle, so that thousands of
 *	idle sessions under TLS do not hold 34 KB of buffers each.
 *
 *	tls_errors() empties the thread's OpenSSL error queue into one line
 *	of text, the errors separated by "; " ("" when it was empty). The
 *	text lives in a static buffer, until the next call.
 *
 *	tls_describe() writes what a connection uses, in Postfix's words,
 *	for log lines, Received headers and queue files: "TLSv1.3 with
 *	cipher TLS_AES_256_GCM_SHA384 (256/256 bits)".
 *
 * SEE ALSO
 *	tls_stream(3), SSL_CTX_set_min_proto_version(3)
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"

static const struct tls_proto {
	const char *name;
	int     version;		/* 0: SSLv2, which OpenSSL lacks */
	long    no_op;
}       tls_protos[] = {
	{"SSLv2", 0, 0},
	{"SSLv3", SSL3_VERSION, SSL_OP_NO_SSLv3},
	{"TLSv1", TLS1_VERSION, SSL_OP_NO_TLSv1},
	{"TLSv1.1", TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
	{"TLSv1.2", TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
	{"TLSv1.3", TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
};

#define TLS_NPROTOS	(sizeof(tls_protos) / sizeof(tls_protos[0]))

/* tls_init - OpenSSL set-up, once */
void
tls_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	(void) OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS
				| OPENSSL_INIT_LOAD_CRYPTO_STRINGS, NULL);
}

/* tls_proto_index - a protocol name's place in tls_protos[], or -1 */
static int
tls_proto_index(const char *name, size_t len)
{
	size_t  i;

	for (i = 0; i < TLS_NPROTOS; i++)
		if (strlen(tls_protos[i].name) == len
		    && strncasecmp(tls_protos[i].name, name, len) == 0)
			return ((int) i);
	return (-1);
}

/* tls_protocols_mask - the set of protocols a list allows, or -1 */
static int
tls_protocols_mask(const char *spec)
{
	const char *sep = " \t,:";
	const char *cp = spec;
	unsigned include = 0;
	unsigned exclude = 0;
	unsigned all = (1u << TLS_NPROTOS) - 1;
	unsigned mask;
	size_t  len;
	int     i;
	int     lo = 0;
	int     hi = (int) TLS_NPROTOS - 1;

	while (*(cp += strspn(cp, sep))) {
		len = strcspn(cp, sep);
		if (*cp == '!') {
			if ((i = tls_proto_index(cp + 1, len - 1)) < 0)
				return (-1);
			exclude |= 1u << i;
		} else if (len > 2 && (cp[0] == '>' || cp[0] == '<')
			   && cp[1] == '=') {
			if ((i = tls_proto_index(cp + 2, len - 2)) < 0)
				return (-1);
			if (cp[0] == '>')
				lo = i > lo ? i : lo;
			else
				hi = i < hi ? i : hi;
		} else {
			if ((i = tls_proto_index(cp, len)) < 0)
				return (-1);
			include |= 1u << i;
		}
		cp += len;
	}
	mask = (include ? include : all) & ~exclude;
	for (i = 0; i < (int) TLS_NPROTOS; i++)
		if (i < lo || i > hi)
			mask &= ~(1u << i);
	/* SSLv2 alone is no protocol at all. */
	if ((mask & ~1u) == 0)
		return (-1);
	return ((int) mask);
}

/* tls_protocols_parse - a Postfix protocol list as OpenSSL bounds */
int
tls_protocols_parse(const char *spec, int *min_version, int *max_version)
{
	int     mask;
	int     i;
	int     first = -1;
	int     last = -1;

	*min_version = *max_version = 0;
	if (spec[strspn(spec, " \t,:")] == 0)
		return (0);
	if ((mask = tls_protocols_mask(spec)) < 0)
		return (-1);
	for (i = 1; i < (int) TLS_NPROTOS; i++) {
		if (mask & (1 << i)) {
			if (first < 0)
				first = i;
			last = i;
		}
	}
	/* No bound where the list reaches the end of what there is. */
	if (first > 1)
		*min_version = tls_protos[first].version;
	if (last < (int) TLS_NPROTOS - 1)
		*max_version = tls_protos[last].version;
	return (0);
}

/* tls_ctx_set_protocols - apply a Postfix protocol list to a context */
int
tls_ctx_set_protocols(SSL_CTX *ctx, const char *spec)
{
	int     min_version;
	int     max_version;
	int     mask;
	int     i;
	long    no_ops = 0;

	if (tls_protocols_parse(spec, &min_version, &max_version) < 0)
		return (-1);
	if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1
	    || SSL_CTX_set_max_proto_version(ctx, max_version) != 1)
		return (-1);
	/* Holes between the bounds. */
	if ((mask = spec[strspn(spec, " \t,:")] ? tls_protocols_mask(spec)
	     : (1 << TLS_NPROTOS) - 1) < 0)
		return (-1);
	for (i = 1; i < (int) TLS_NPROTOS; i++)
		if (!(mask & (1 << i)))
			no_ops |= tls_protos[i].no_op;
	(void) SSL_CTX_set_options(ctx, no_ops);
	return (0);
}

/* tls_ctx_common - what every context wants */
void
tls_ctx_common(SSL_CTX *ctx)
{
	(void) SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION
				   | SSL_OP_NO_RENEGOTIATION);
	(void) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

/* tls_errors - the OpenSSL error queue as one line */
const char *
tls_errors(void)
{
	static char text[512];
	char    one[256];
	unsigned long err;
	size_t  used = 0;

	text[0] = 0;
	while ((err = ERR_get_error()) != 0) {
		ERR_error_string_n(err, one, sizeof(one));
		if (used + strlen(one) + 3 >= sizeof(text))
			continue;		/* keep emptying the queue */
		if (used > 0) {
			memcpy(text + used, "; ", 2);
			used += 2;
		}
		memcpy(text + used, one, strlen(one) + 1);
		used += strlen(one);
	}
	return (text);
}

/* tls_describe - protocol and cipher in Postfix's words */
void
tls_describe(SSL *ssl, char *buf, size_t len)
{
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	int     alg_bits = 0;
	int     bits;

	if (cipher == NULL) {
		(void) snprintf(buf, len, "%s", SSL_get_version(ssl));
		return;
	}
	bits = SSL_CIPHER_get_bits(cipher, &alg_bits);
	(void) snprintf(buf, len, "%s with cipher %s (%d/%d bits)",
			SSL_get_version(ssl), SSL_CIPHER_get_name(cipher),
			bits, alg_bits);
}
