/*
 * xsasl_introspect - OAuth 2.0 token introspection (RFC 7662), non-blocking
 *
 * SYNOPSIS
 *	#include "xsasl.h"
 *
 *	int	introspect_init(const char *url, const char *client_id,
 *			const char *client_secret, long timeout,
 *			struct strbuf *err)
 *	void	introspect_set_base(struct event_base *base)
 *	struct introspect_req *introspect_query(const char *token,
 *			introspect_done done, void *ctx)
 *	void	introspect_cancel(struct introspect_req *req)
 *
 * DESCRIPTION
 *	introspect_init() sets the endpoint (http or https), the client
 *	credentials (HTTP Basic, RFC 7662 section 2.1; none when the id is
 *	empty) and the timeout of one request, in seconds. It starts
 *	libcurl; call it before the privilege drop.
 *
 *	introspect_query() POSTs "token=...&token_type_hint=access_token"
 *	through libcurl's multi interface, its sockets and timer driven by
 *	the libevent loop of introspect_set_base(): nothing blocks (libcurl
 *	resolves names in its own thread). "done" gets 1, the "username"
 *	of the answer (or NULL) and its "exp" (0 when absent) for
 *	{"active": true, ...}; 0 for an inactive token; -1 when the endpoint
 *	cannot be reached or answers nonsense (a temporary failure). The
 *	answer is JSON, read with jansson, at most 64 KiB.
 *
 *	introspect_cancel() forgets a request; its callback is not called.
 *
 * DIAGNOSTICS
 *	Warnings for transfer errors, HTTP errors and bad JSON.
 *
 * SEE ALSO
 *	RFC 7662, libcurl-multi(3), xsasl_xoauth2.c
 */

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "xsasl.h"

#define INTROSPECT_MAXBODY	(64 * 1024)

struct introspect_req {
	CURL   *easy;
	struct strbuf *body;		/* the answer */
	char   *post;
	introspect_done done;		/* NULL: cancelled */
	void   *ctx;
};

/* One socket libcurl wants watched. */
struct introspect_sock {
	struct event *ev;
};

static char *introspect_url;
static char *introspect_id;
static char *introspect_secret;
static long introspect_timeout;
static struct event_base *introspect_base;
static CURLM *introspect_multi;
static struct event *introspect_timer;

static void introspect_check_info(void);

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
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		strbuf_sets(err, "cannot initialize libcurl");
		return (-1);
	}
	introspect_url = xstrdup(url);
	introspect_id = xstrdup(client_id ? client_id : "");
	introspect_secret = xstrdup(client_secret ? client_secret : "");
	introspect_timeout = timeout > 0 ? timeout : 10;
	return (0);
}

/* introspect_set_base - the loop that drives the transfers */
void
introspect_set_base(struct event_base *base)
{
	introspect_base = base;
}

/* introspect_event_cb - a socket is ready */
static void
introspect_event_cb(evutil_socket_t fd, short what, void *unused_ctx)
{
	int     action = 0;
	int     running;

	(void) unused_ctx;
	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(introspect_multi, fd, action, &running);
	introspect_check_info();
}

/* introspect_timer_cb - libcurl's timeout */
static void
introspect_timer_cb(evutil_socket_t unused_fd, short unused_what,
		    void *unused_ctx)
{
	int     running;

	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	curl_multi_socket_action(introspect_multi, CURL_SOCKET_TIMEOUT, 0,
				 &running);
	introspect_check_info();
}

/* introspect_socket_fn - libcurl says which socket to watch, how */
static int
introspect_socket_fn(CURL *unused_easy, curl_socket_t fd, int what,
		     void *unused_userp, void *sockp)
{
	struct introspect_sock *is = sockp;
	short   kind;

	(void) unused_easy;
	(void) unused_userp;
	if (what == CURL_POLL_REMOVE) {
		if (is) {
			event_free(is->ev);
			xfree(is);
		}
		curl_multi_assign(introspect_multi, fd, NULL);
		return (0);
	}
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (is == NULL) {
		is = xcalloc(1, sizeof(*is));
		curl_multi_assign(introspect_multi, fd, is);
	} else
		event_free(is->ev);
	is->ev = event_new(introspect_base, fd, kind, introspect_event_cb, NULL);
	event_add(is->ev, NULL);
	return (0);
}

/* introspect_timer_fn - libcurl sets its timer */
static int
introspect_timer_fn(CURLM *unused_multi, long ms, void *unused_userp)
{
	struct timeval tv;

	(void) unused_multi;
	(void) unused_userp;
	if (ms < 0) {
		evtimer_del(introspect_timer);
		return (0);
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(introspect_timer, &tv);
	return (0);
}

/* introspect_write_fn - the answer, bounded */
static size_t
introspect_write_fn(char *data, size_t size, size_t nmemb, void *userp)
{
	struct introspect_req *req = userp;
	size_t  len = size * nmemb;

	if (req->body->len + len > INTROSPECT_MAXBODY)
		return (0);			/* ends the transfer */
	strbuf_append(req->body, data, len);
	return (len);
}

/* introspect_free - one request's memory */
static void
introspect_free(struct introspect_req *req)
{
	curl_easy_cleanup(req->easy);
	strbuf_free(req->body);
	xfree(req->post);
	xfree(req);
}

/* introspect_parse - the JSON answer: 1 active, 0 not, -1 bad */
static int
introspect_parse(struct introspect_req *req, char **user, time_t *exp)
{
	json_error_t jerr;
	json_t *root;
	json_t *v;
	int     ret;

	*user = NULL;
	*exp = 0;
	root = json_loadb(req->body->data, req->body->len, 0, &jerr);
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

/* introspect_finish - a transfer ended */
static void
introspect_finish(struct introspect_req *req, CURLcode code)
{
	long    http = 0;
	char   *user = NULL;
	time_t  exp = 0;
	int     ret = -1;

	if (req->done == NULL) {
		introspect_free(req);
		return;
	}
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &http);
	if (code != CURLE_OK)
		log_warn("%s: introspection request failed: %s",
			 introspect_url, curl_easy_strerror(code));
	else if (http != 200)
		log_warn("%s: introspection request: HTTP status %ld",
			 introspect_url, http);
	else
		ret = introspect_parse(req, &user, &exp);
	req->done(ret, user, exp, req->ctx);
	xfree(user);
	introspect_free(req);
}

/* introspect_check_info - collect the finished transfers */
static void
introspect_check_info(void)
{
	struct introspect_req *req;
	CURLMsg *msg;
	int     left;

	while ((msg = curl_multi_info_read(introspect_multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				  (char **) &req);
		curl_multi_remove_handle(introspect_multi, msg->easy_handle);
		introspect_finish(req, msg->data.result);
	}
}

/* introspect_multi_init - the multi handle, on first use */
static int
introspect_multi_init(void)
{
	if (introspect_multi)
		return (0);
	if (introspect_base == NULL || introspect_url == NULL)
		return (-1);
	if ((introspect_multi = curl_multi_init()) == NULL)
		return (-1);
	introspect_timer = evtimer_new(introspect_base, introspect_timer_cb,
				       NULL);
	curl_multi_setopt(introspect_multi, CURLMOPT_SOCKETFUNCTION,
			  introspect_socket_fn);
	curl_multi_setopt(introspect_multi, CURLMOPT_TIMERFUNCTION,
			  introspect_timer_fn);
	return (0);
}

/* introspect_query - ask the endpoint about a token */
struct introspect_req *
introspect_query(const char *token, introspect_done done, void *ctx)
{
	struct introspect_req *req;
	struct strbuf *post;
	char   *enc;

	if (introspect_multi_init() < 0)
		return (NULL);
	req = xcalloc(1, sizeof(*req));
	if ((req->easy = curl_easy_init()) == NULL) {
		xfree(req);
		return (NULL);
	}
	req->body = strbuf_new(1024, 0);
	req->done = done;
	req->ctx = ctx;
	enc = curl_easy_escape(req->easy, token, 0);
	post = strbuf_new(256, 0);
	strbuf_printf(post, "token=%s&token_type_hint=access_token",
		      enc ? enc : "");
	curl_free(enc);
	req->post = strbuf_steal(post, NULL);
	strbuf_free(post);

	curl_easy_setopt(req->easy, CURLOPT_URL, introspect_url);
	curl_easy_setopt(req->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(req->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, req->post);
	curl_easy_setopt(req->easy, CURLOPT_TIMEOUT, introspect_timeout);
	curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION,
			 introspect_write_fn);
	curl_easy_setopt(req->easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(req->easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(req->easy, CURLOPT_USERAGENT, "Sendarix smtpd");
	if (*introspect_id) {
		curl_easy_setopt(req->easy, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(req->easy, CURLOPT_USERNAME, introspect_id);
		curl_easy_setopt(req->easy, CURLOPT_PASSWORD,
				 introspect_secret);
	}
	if (curl_multi_add_handle(introspect_multi, req->easy) != CURLM_OK) {
		introspect_free(req);
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
	/* Removing the handle here could call back into libcurl's own
	 * loop; let the transfer end and drop the answer. */
	req->done = NULL;
}
