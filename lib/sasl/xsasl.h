#ifndef SENDARIX_XSASL_H
#define SENDARIX_XSASL_H

/*
 * xsasl - the server side of SASL authentication: Cyrus SASL for the
 * mechanisms it has (PLAIN, LOGIN, ...), run off the event loop in a small
 * pool of worker threads (xsasl_cyrus.c), and XOAUTH2, done here
 * (xsasl_xoauth2.c, with token introspection in xsasl_introspect.c).
 */

#include <stddef.h>
#include <time.h>

struct event_base;
struct strbuf;
struct xsasl_server;

/* Results of an exchange step. */
#define XSASL_OK	0		/* authenticated */
#define XSASL_CONTINUE	1		/* send the challenge, read more */
#define XSASL_FAIL	(-1)		/* authentication failed */
#define XSASL_TEMP	(-2)		/* temporary failure (server side) */
#define XSASL_NOMECH	(-3)		/* no such mechanism */
#define XSASL_WAIT	2		/* the answer comes through the callback */

typedef void (*xsasl_done) (struct xsasl_server *, int, void *);

/* xsasl_cyrus.c */
extern int xsasl_init(const char *, const char *, struct strbuf *);
extern void xsasl_set_base(struct event_base *);
extern struct xsasl_server *xsasl_server_new(const char *, const char *,
					             const char *,
					             const char *,
					             const char *, int,
					             const char *, struct strbuf *);
extern const char *xsasl_server_mechs(struct xsasl_server *);
extern int xsasl_server_first(struct xsasl_server *, const char *,
			              const char *, size_t, int, xsasl_done,
			              void *);
extern int xsasl_server_next(struct xsasl_server *, const char *, size_t,
			             xsasl_done, void *);
extern const char *xsasl_server_output(struct xsasl_server *, size_t *);
extern const char *xsasl_server_username(struct xsasl_server *);
extern const char *xsasl_server_reason(struct xsasl_server *);
extern void xsasl_server_free(struct xsasl_server *);
extern int xsasl_security_options(const char *, unsigned *);

/* xsasl_xoauth2.c */
struct xoauth2_req;
typedef void (*xoauth2_done) (int, const char *, void *);

struct xoauth2_conf {
	const char *token_maps;		/* token -> login */
	const char *url;		/* RFC 7662 introspection endpoint */
	const char *client_id;
	const char *client_secret;
	const char *scope;		/* for the RFC 7628 error */
	long    timeout;		/* seconds */
};

extern int xoauth2_init(const struct xoauth2_conf *, struct strbuf *);
extern int xoauth2_enabled(void);
extern int xoauth2_parse(const char *, size_t, char **, char **);
extern int xoauth2_check(const char *, const char *, xoauth2_done, void *,
			         struct xoauth2_req **);
extern void xoauth2_cancel(struct xoauth2_req *);
extern char *xoauth2_error_json(void);

/*
 * xsasl_introspect.c: RFC 7662. The HTTP POST is the program's (lib/sasl
 * may not use lib/http): it sets a transport with introspect_set_transport.
 */
struct introspect_req;
typedef void (*introspect_done) (int, const char *, time_t, void *);

/* One POST for the transport; valid only during the post call. */
struct xsasl_http_post {
	const char *url;
	const char *ctype;		/* media type of the body */
	const char *body;
	size_t  len;
	const char *user;		/* HTTP Basic; "": none */
	const char *password;
	long    timeout;		/* seconds, whole request */
	size_t  max_bytes;		/* longest answer body */
};

/* What the POST gave; valid only during the callback. */
struct xsasl_http_result {
	long    status;			/* HTTP status; 0: no response */
	const char *body;		/* the answer body */
	size_t  len;
	const char *error;		/* "" when a response came */
};

typedef void (*xsasl_http_done) (const struct xsasl_http_result *, void *);
typedef void *(*xsasl_http_post_fn) (const struct xsasl_http_post *,
				             xsasl_http_done, void *);
typedef void (*xsasl_http_cancel_fn) (void *);

extern int introspect_init(const char *, const char *, const char *, long,
			           struct strbuf *);
extern void introspect_set_transport(xsasl_http_post_fn,
				             xsasl_http_cancel_fn);
extern struct introspect_req *introspect_query(const char *,
					               introspect_done, void *);
extern void introspect_cancel(struct introspect_req *);

/* xsasl_base64.c */
extern int xsasl_b64_decode(const char *, size_t, struct strbuf *);
extern void xsasl_b64_encode(const void *, size_t, struct strbuf *);

#endif
