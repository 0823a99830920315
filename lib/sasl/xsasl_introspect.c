/*
 * xsasl_introspect - OAuth 2.0 token introspection (RFC 7662), non-blocking
 *
 * SYNOPSIS
 *	#include "xsasl.h"
 *
 *	int	introspect_init(const char *url, const char *client_id,
 *			const char *client_secret, long timeout,
 *			struct strbuf *err)
 *	void	introspect_set_transport(xsasl_http_post_fn post,
 *			xsasl_http_cancel_fn cancel)
 *	struct introspect_req *introspect_query(const char *token,
 *			introspect_done done, void *ctx)
 *	void	introspect_cancel(struct introspect_req *req)
 *
 * DESCRIPTION
 *	introspect_init() sets the endpoint (http or https), the client
 *	credentials (HTTP Basic, RFC 7662 section 2.1; none when the id is
 *	empty) and the timeout of one request, in seconds.
 *
 *	This module speaks RFC 7662, not HTTP: lib/sasl is a layer that
 *	may not use lib/http (docs/architecture.md). The program hands it
 *	a transport with introspect_set_transport() (smtpd: an adapter
 *	over http_post() and http_cancel() of lib/http, on its event
 *	loop). post() starts one POST and returns a handle, or NULL when
 *	it cannot; it calls "done" exactly once, later, from the loop,
 *	unless cancel() is called on the handle first.
 *
 *	introspect_query() POSTs "token=...&token_type_hint=access_token"
 *	(application/x-www-form-urlencoded) through the transport.
 *	"done" gets 1, the "username" of the answer (or NULL) and its
 *	"exp" (0 when absent) for {"active": true, ...}; 0 for an inactive
 *	token; -1 when the endpoint cannot be reached or answers nonsense
 *	(a temporary failure). The answer is JSON, read with jansson, at
 *	most 64 KiB. NULL when no request could be started (no transport).
 *
 *	introspect_cancel() forgets a request; its callback is not called.
 *
 * DIAGNOSTICS
 *	Warnings for transfer errors, HTTP errors and bad JSON.
 *
 * SEE ALSO
 *	RFC 7662, xsasl_xoauth2.c, http(3) in lib/http/http.c
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "xsasl.h"

#define INTROSPECT_MAXBODY	(64 * 1024)

struct introspect_req {
	void   *hreq;			/* the transport's handle */
	introspect_done done;
	void   *ctx;
};

static char *introspect_url;
static char *introspect_id;
static char *introspect_secret;
static long introspect_timeout;
static xsasl_http_post_fn introspect_post;
static xsasl_http_cancel_fn introspect_hcancel;

/* introspect_init - the endpoint and its credentials */
int
introspect_init(const char *url, const char *client_id,
		const char *client_secret, long timeout, struct strbuf *err)
{
	if (strncasecmp(url, "http://", 7) != 0
	    && strncasecmp(url, "https://", 8) != 0) {
		strbuf_setf(err, "introspection URL \"%s\" is not http(s)", url);
		return (-1);
	}
	introspect_url = xstrdup(url);
	introspect_id = xstrdup(client_id ? client_id : "");
	introspect_secret = xstrdup(client_secret ? client_secret : "");
	introspect_timeout = timeout > 0 ? timeout : 10;
	return (0);
}

/* introspect_set_transport - the program's HTTP POST */
void
introspect_set_transport(xsasl_http_post_fn post, xsasl_http_cancel_fn cancel)
{
	introspect_post = post;
	introspect_hcancel = cancel;
}

/* introspect_escape - form-urlencode a value (RFC 3986 unreserved kept) */
static void
introspect_escape(struct strbuf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *) s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
		    || (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			strbuf_appendc(out, *p);
			continue;
		}
		strbuf_appendc(out, '%');
		strbuf_appendc(out, hex[*p >> 4]);
		strbuf_appendc(out, hex[*p & 15]);
	}
}

/* introspect_parse - the JSON answer: 1 active, 0 not, -1 bad */
static int
introspect_parse(const char *body, size_t len, char **user, time_t *exp)
{
	json_error_t jerr;
	json_t *root;
	json_t *v;
	int     ret;

	*user = NULL;
	*exp = 0;
	root = json_loadb(body, len, 0, &jerr);
	if (root == NULL || !json_is_object(root)) {
		log_warn("%s: bad introspection answer: %s", introspect_url,
			 root ? "not an object" : jerr.text);
		json_decref(root);
		return (-1);
	}
	v = json_object_get(root, "active");
	if (!json_is_boolean(v)) {
		log_warn("%s: introspection answer without \"active\"",
			 introspect_url);
		json_decref(root);
		return (-1);
	}
	ret = json_is_true(v) ? 1 : 0;
	if (ret) {
		if ((v = json_object_get(root, "username")) != NULL
		    && json_is_string(v))
			*user = xstrdup(json_string_value(v));
		if ((v = json_object_get(root, "exp")) != NULL
		    && json_is_number(v))
			*exp = (time_t) json_number_value(v);
	}
	json_decref(root);
	return (ret);
}

/* introspect_answer - the transport's result */
static void
introspect_answer(const struct xsasl_http_result *res, void *ctx)
{
	struct introspect_req *req = ctx;
	char   *user = NULL;
	time_t  exp = 0;
	int     ret = -1;

	req->hreq = NULL;
	if (*res->error)
		log_warn("%s: introspection request failed: %s",
			 introspect_url, res->error);
	else if (res->status != 200)
		log_warn("%s: introspection request: HTTP status %ld",
			 introspect_url, res->status);
	else
		ret = introspect_parse(res->body, res->len, &user, &exp);
	req->done(ret, user, exp, req->ctx);
	xfree(user);
	xfree(req);
}

/* introspect_query - ask the endpoint about a token */
struct introspect_req *
introspect_query(const char *token, introspect_done done, void *ctx)
{
	struct introspect_req *req;
	struct xsasl_http_post hp;
	struct strbuf *post;

	if (introspect_post == NULL || introspect_hcancel == NULL
	    || introspect_url == NULL)
		return (NULL);
	req = xcalloc(1, sizeof(*req));
	req->done = done;
	req->ctx = ctx;
	post = strbuf_new(256, 0);
	strbuf_sets(post, "token=");
	introspect_escape(post, token);
	strbuf_appends(post, "&token_type_hint=access_token");

	memset(&hp, 0, sizeof(hp));
	hp.url = introspect_url;
	hp.ctype = "application/x-www-form-urlencoded";
	hp.body = STRBUF_STR(post);
	hp.len = STRBUF_LEN(post);
	hp.user = introspect_id;
	hp.password = introspect_secret;
	hp.timeout = introspect_timeout;
	hp.max_bytes = INTROSPECT_MAXBODY;
	req->hreq = introspect_post(&hp, introspect_answer, req);
	strbuf_free(post);
	if (req->hreq == NULL) {
		xfree(req);
		return (NULL);
	}
	return (req);
}

/* introspect_cancel - forget a request */
void
introspect_cancel(struct introspect_req *req)
{
	if (req == NULL)
		return;
	if (req->hreq)
		introspect_hcancel(req->hreq);
	xfree(req);
}
