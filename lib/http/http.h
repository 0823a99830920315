#ifndef SENDARIX_HTTP_H
#define SENDARIX_HTTP_H

#include <stddef.h>

/*
 * Asynchronous HTTPS GET and POST through libcurl's multi interface,
 * driven by the process's libevent loop; a request never blocks the
 * loop. libcurl is loaded (dlopen) by the first http_init() or
 * http_set_ca(). The one HTTP client of the tree; see http.c.
 */

struct event_base;
struct http_req;

/* What one GET gave; valid only during the callback. */
struct http_result {
	long    status;			/* HTTP status; 0: no response */
	const char *body;		/* NUL-terminated; "" if none */
	size_t  len;			/* bytes in body */
	const char *content_type;	/* "" if none */
	const char *error;		/* "" when a response came */
};

typedef void (*http_callback) (const struct http_result *, void *);

/* Options of one request (zero: the defaults). */
struct http_opts {
	long    timeout;		/* seconds, whole request; 0: 30 */
	size_t  max_bytes;		/* longest body; 0: 64 KiB */
	const char *resolve;		/* "host:port:addr" pinned; NULL */
	int     plain_ok;		/* also http:// URLs; 0: https only */
	const char *user;		/* HTTP Basic user; NULL: none */
	const char *password;		/* HTTP Basic password; NULL: "" */
};

extern int http_load(void);
extern int http_init(struct event_base *);
extern int http_set_ca(const char *, const char *);
extern struct http_req *http_get(const char *, const struct http_opts *,
				         http_callback, void *);
extern struct http_req *http_post(const char *, const char *, const void *,
				          size_t, const struct http_opts *,
				          http_callback, void *);
extern void http_cancel(struct http_req *);
extern size_t http_count(void);
extern void http_free(void);

#endif
