/*
 * tls_stream - TLS on a stream, in place
 *
 * SYNOPSIS
 *	#include "tls.h"
 *
 *	int	tls_stream_start(struct stream *st, SSL *ssl, int role)
 *	SSL    *tls_stream_ssl(const struct stream *st)
 *	const char *tls_stream_errors(const struct stream *st)
 *
 * DESCRIPTION
 *	tls_stream_start() starts TLS on a stream that spoke cleartext:
 *	role STREAM_TLS_SERVER right after "220 2.0.0 Ready to start TLS"
 *	was queued (or, for implicit TLS, right after accept), role
 *	STREAM_TLS_CLIENT right after that reply was read (or right after
 *	connect). It pushes libevent's OpenSSL filter on the stream
 *	(stream_push_filter() in lib/util/stream.c, which says what
 *	happens to buffered input and output, callbacks and timeouts).
 *	The end of the handshake comes to the stream's event callback:
 *	STREAM_EV_CONNECTED, or STREAM_EV_ERROR, STREAM_EV_EOF or
 *	STREAM_EV_TIMEOUT. A client sets the server name (SNI) and what
 *	to verify on "ssl" first.
 *
 *	The stream owns "ssl" from then on: it is freed with the stream.
 *	At stream_close() a connection whose handshake finished gets its
 *	close_notify alert. A peer that closes without one is seen as end
 *	of file, not as an error: SMTP ends with QUIT and 221, and most
 *	clients then just close. tls_stream_start() returns -1 (with ssl
 *	still owned by the caller only when errno is EALREADY: the stream
 *	is under TLS already) or 0.
 *
 *	tls_stream_ssl() is the SSL of a stream under TLS, else NULL: for
 *	tls_describe(), the peer certificate, the verification result.
 *
 *	tls_stream_errors() is why the handshake or a later read or write
 *	failed: the OpenSSL errors the filter saw, then those left in the
 *	thread's queue, as one line (static buffer; "" if none).
 *
 * SEE ALSO
 *	stream(3), bufferevent_openssl_filter_new(3), RFC 3207
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "stream.h"
#include "tls.h"

struct tls_stream_arg {
	SSL    *ssl;
	int     role;
};

/* tls_stream_make - the OpenSSL filter over the socket bufferevent */
static struct bufferevent *
tls_stream_make(struct bufferevent *below, void *ctx)
{
	struct tls_stream_arg *arg = ctx;
	struct bufferevent *filter;

	filter = bufferevent_openssl_filter_new(bufferevent_get_base(below),
						below, arg->ssl,
						arg->role == STREAM_TLS_SERVER ?
						BUFFEREVENT_SSL_ACCEPTING :
						BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (filter == NULL) {
		errno = ENOMEM;
		return (NULL);
	}
	/* A close without close_notify is end of file (after QUIT). */
	bufferevent_openssl_set_allow_dirty_shutdown(filter, 1);
	return (filter);
}

/* tls_stream_close - queue the close_notify alert */
static void
tls_stream_close(struct bufferevent *filter)
{
	SSL    *ssl = bufferevent_openssl_get_ssl(filter);

	if (ssl != NULL && SSL_is_init_finished(ssl)) {
		(void) SSL_shutdown(ssl);
		ERR_clear_error();
	}
}

/* tls_stream_start - start TLS on a cleartext stream */
int
tls_stream_start(struct stream *st, SSL *ssl, int role)
{
	struct tls_stream_arg arg;

	arg.ssl = ssl;
	arg.role = role;
	return (stream_push_filter(st, tls_stream_make, &arg,
				   tls_stream_close));
}

/* tls_stream_ssl - the SSL of a stream under TLS */
SSL    *
tls_stream_ssl(const struct stream *st)
{
	struct bufferevent *filter = stream_filter(st);

	return (filter ? bufferevent_openssl_get_ssl(filter) : NULL);
}

/* tls_stream_errors - why TLS failed on this stream */
const char *
tls_stream_errors(const struct stream *st)
{
	static char text[768];
	struct bufferevent *filter = stream_filter(st);
	unsigned long err;
	const char *rest;
	char    one[256];
	size_t  used = 0;
	size_t  n;

	text[0] = 0;
	while (filter && (err = bufferevent_get_openssl_error(filter)) != 0) {
		/* libevent also files SSL_get_error() codes: no library. */
		if (ERR_GET_LIB(err) == 0)
			continue;
		ERR_error_string_n(err, one, sizeof(one));
		n = strlen(one);
		if (used + n + 3 >= sizeof(text))
			continue;
		if (used > 0) {
			memcpy(text + used, "; ", 2);
			used += 2;
		}
		memcpy(text + used, one, n + 1);
		used += n;
	}
	rest = tls_errors();
	(void) snprintf(text + used, sizeof(text) - used, "%s%s",
			used && *rest ? "; " : "", rest);
	return (text);
}
