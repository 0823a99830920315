/*
 * http - asynchronous HTTPS GET and POST on the event loop (libcurl multi)
 *
 * SYNOPSIS
 *	#include "http.h"
 *
 *	int	http_load(void)
 *	int	http_init(struct event_base *base)
 *	int	http_set_ca(const char *cafile, const char *capath)
 *	struct http_req *http_get(const char *url,
 *			const struct http_opts *opts, http_callback cb,
 *			void *ctx)
 *	struct http_req *http_post(const char *url, const char *ctype,
 *			const void *body, size_t len,
 *			const struct http_opts *opts, http_callback cb,
 *			void *ctx)
 *	void	http_cancel(struct http_req *req)
 *	size_t	http_count(void)
 *	void	http_free(void)
 *
 * DESCRIPTION
 *	libcurl is not linked into the programs: http_load(), or the first
 *	call of http_init() or http_set_ca(), loads libcurl.so.4 with
 *	dlopen(), so that a process that never uses HTTP does not map it
 *	and the libraries it pulls in. A daemon that chroots calls
 *	http_load() or http_set_ca() before (in pre_init), as the library
 *	is not reachable afterwards. http_load() returns 0, or -1 when the
 *	library cannot be loaded; calling it again is cheap. A library
 *	that cannot be loaded is logged once (naming libcurl.so.4 and why)
 *	and every request fails like an unreachable server: result->error
 *	says that libcurl.so.4 cannot be loaded.
 *
 *	http_init() sets up libcurl's multi interface on the event base:
 *	libcurl tells which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 *	when to wake it (CURLMOPT_TIMERFUNCTION); both become libevent
 *	events that call curl_multi_socket_action(). Nothing ever waits:
 *	the loop keeps serving everything else while a request runs.
 *	Calling it again is harmless. 0, or -1 when libcurl is loaded but
 *	cannot start; a libcurl.so.4 that cannot be loaded is not an error
 *	here (see above).
 *
 *	http_set_ca() names the trust anchors for requests started later:
 *	a CA file and/or a CA directory; NULL or "" keeps libcurl's
 *	default (the system store). The CA file is read now, into memory
 *	(CURLOPT_CAINFO_BLOB), so that a daemon may call it before it
 *	drops privileges or enters a chroot; 0, or -1 (errno) when it
 *	cannot be read. It does not need http_init(), and loads libcurl.
 *
 *	http_get() starts one GET of an https:// URL. Only HTTPS is
 *	allowed (no plain HTTP unless opts say so, no other scheme),
 *	redirects are not followed (RFC 8461 section 3.3 wants that for
 *	MTA-STS), the peer certificate is verified against the host name
 *	of the URL, and proxies from the environment are ignored. opts
 *	may be NULL: "timeout" bounds the whole request (default 30s);
 *	"max_bytes" the body (default 64 KiB; a longer body is an
 *	error); "resolve" is a libcurl CURLOPT_RESOLVE entry
 *	"host:port:address" that pins the address of the URL's host, so
 *	that callers resolve names with their own (asynchronous,
 *	DNSSEC-aware) resolver instead of libcurl's; "plain_ok" also
 *	allows http:// URLs (a local endpoint; https stays verified);
 *	"user" and "password" are HTTP Basic credentials (RFC 7617; none
 *	when "user" is NULL or ""). The callback is called exactly once,
 *	always later from the event loop (never inside http_get()),
 *	unless the request is cancelled first. result->error is "" when
 *	a response came (of any status), else why not (the libcurl error
 *	text).
 *
 *	http_post() is http_get() with a POST of "len" bytes of "body"
 *	(copied) as media type "ctype" (RFC 8460 section 5.4 report
 *	uploads, RFC 7662 token introspection for smtpd's XOAUTH2); the
 *	same rules, options and callback.
 *
 *	http_cancel() abandons a request (NULL is fine); its callback is
 *	not called. A handle is invalid once its callback has started.
 *	http_count() is the number of requests in flight. http_free()
 *	cancels all of them and releases libcurl (it stays mapped).
 *
 * MEMORY
 *	The result and everything in it belong to the module and are freed
 *	when the callback returns. The callback may start new requests.
 *
 * DIAGNOSTICS
 *	Network and TLS failures are results, never fatal, and so is a
 *	libcurl.so.4 that cannot be loaded (one warning). A request before
 *	http_init() is a bug (log_panic). Out of memory ends the process.
 *
 * SEE ALSO
 *	libcurl-multi(3), curl_multi_socket_action(3), dlopen(3), RFC 8461,
 *	RFC 7662
 */

#include <stdlib.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "http.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

#define HTTP_TIMEOUT_DEFAULT	30
#define HTTP_MAX_DEFAULT	(64 * 1024)

/*
 * libcurl is not linked: it and the twenty-odd libraries it needs
 * (libgnutls, libldap, libkrb5, ...) are mapped by dlopen() only in a
 * process that uses HTTP. These are the functions called, each pointer
 * of the type of its curl.h prototype, so that every call is checked.
 */
#define HTTP_LIBCURL	"libcurl.so.4"
#define HTTP_CURL_FUNCS(F) \
	F(global_init) F(global_cleanup) \
	F(multi_init) F(multi_setopt) F(multi_cleanup) F(multi_add_handle) \
	F(multi_remove_handle) F(multi_socket_action) F(multi_assign) \
	F(multi_info_read) \
	F(easy_init) F(easy_setopt) F(easy_getinfo) F(easy_cleanup) \
	F(easy_strerror) \
	F(slist_append) F(slist_free_all)
#define HTTP_CURL_PTR(name)	__typeof__(curl_##name) *name;

static struct {
	HTTP_CURL_FUNCS(HTTP_CURL_PTR)
}       http_curl;
static void *http_dl;			/* libcurl, once loaded */
static char *http_dl_error;		/* why it could not be, or NULL */

/* One request. */
struct http_req {
	CURL   *easy;
	struct curl_slist *resolve;
	struct curl_slist *headers;	/* POST: Content-Type */
	struct strbuf *body;
	size_t  max_bytes;
	int     too_big;
	http_callback cb;
	void   *ctx;
	struct event *early;		/* an error known before any I/O */
	char   *early_why;
	char    errbuf[CURL_ERROR_SIZE];
	struct http_req *prev;
	struct http_req *next;
};

/* One socket libcurl asked us to watch. */
struct http_sock {
	struct event *ev;
	curl_socket_t fd;
};

static CURLM *http_multi;
static struct event_base *http_base;
static struct event *http_timer;
static struct http_req *http_reqs;
static size_t http_nreqs;
static struct strbuf *http_cablob;
static char *http_capath;

/* http_req_free - unlink and free a request */
static void
http_req_free(struct http_req *req)
{
	if (req->prev)
		req->prev->next = req->next;
	else
		http_reqs = req->next;
	if (req->next)
		req->next->prev = req->prev;
	http_nreqs--;
	if (req->easy) {
		http_curl.multi_remove_handle(http_multi, req->easy);
		http_curl.easy_cleanup(req->easy);
	}
	if (req->resolve)
		http_curl.slist_free_all(req->resolve);
	if (req->headers)
		http_curl.slist_free_all(req->headers);
	strbuf_free(req->body);
	if (req->early)
		event_free(req->early);
	xfree(req->early_why);
	xfree(req);
}

/* http_finish - run the callback once, then free the request */
static void
http_finish(struct http_req *req, long status, const char *error)
{
	struct http_result res;
	http_callback cb = req->cb;
	void   *ctx = req->ctx;
	char   *ctype = NULL;
	char   *ct = NULL;
	char   *why = xstrdup(error ? error : "");
	struct strbuf *body = req->body;

	memset(&res, 0, sizeof(res));
	if (req->easy && http_curl.easy_getinfo(req->easy,
						CURLINFO_CONTENT_TYPE, &ct)
	    == CURLE_OK && ct)
		ctype = xstrdup(ct);
	req->body = NULL;
	res.status = status;
	res.body = STRBUF_STR(body);
	res.len = STRBUF_LEN(body);
	res.content_type = ctype ? ctype : "";
	res.error = why;
	http_req_free(req);
	cb(&res, ctx);
	xfree(why);
	xfree(ctype);
	strbuf_free(body);
}

/* http_check_done - hand over every finished transfer */
static void
http_check_done(void)
{
	struct http_req *req;
	CURLMsg *msg;
	int     left;
	long    status;
	char    why[CURL_ERROR_SIZE + 64];

	while ((msg = http_curl.multi_info_read(http_multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		req = NULL;
		http_curl.easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				       (char **) &req);
		if (req == NULL)
			continue;
		status = 0;
		if (msg->data.result == CURLE_OK) {
			http_curl.easy_getinfo(req->easy,
					       CURLINFO_RESPONSE_CODE,
					       &status);
			http_finish(req, status, "");
			continue;
		}
		if (req->too_big)
			snprintf(why, sizeof(why), "response body exceeds %zu "
				 "bytes", req->max_bytes);
		else
			snprintf(why, sizeof(why), "%s", req->errbuf[0] ?
				 req->errbuf :
				 http_curl.easy_strerror(msg->data.result));
		http_finish(req, 0, why);
	}
}

/* http_action - let libcurl work on a socket or on its timeout */
static void
http_action(curl_socket_t fd, int what)
{
	int     running;

	if (http_curl.multi_socket_action(http_multi, fd, what, &running)
	    != CURLM_OK)
		log_warn("http: curl_multi_socket_action failed");
	http_check_done();
}

/* http_sock_event - a watched socket is ready */
static void
http_sock_event(evutil_socket_t fd, short what, void *unused_ctx)
{
	int     action = 0;

	(void) unused_ctx;
	if (what & EV_READ)
		action |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	http_action(fd, action);
}

/* http_timer_event - libcurl's timeout */
static void
http_timer_event(evutil_socket_t unused_fd, short unused_what,
		         void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	http_action(CURL_SOCKET_TIMEOUT, 0);
}

/* http_socket_cb - CURLMOPT_SOCKETFUNCTION: watch, change or drop */
static int
http_socket_cb(CURL *unused_easy, curl_socket_t fd, int what,
	               void *unused_userp, void *socketp)
{
	struct http_sock *hs = socketp;
	short   flags;

	(void) unused_easy;
	(void) unused_userp;
	if (what == CURL_POLL_REMOVE) {
		if (hs) {
			event_free(hs->ev);
			xfree(hs);
			http_curl.multi_assign(http_multi, fd, NULL);
		}
		return (0);
	}
	flags = EV_PERSIST;
	if (what & CURL_POLL_IN)
		flags |= EV_READ;
	if (what & CURL_POLL_OUT)
		flags |= EV_WRITE;
	if (hs == NULL) {
		hs = xcalloc(1, sizeof(*hs));
		hs->fd = fd;
		http_curl.multi_assign(http_multi, fd, hs);
	} else
		event_free(hs->ev);
	hs->ev = event_new(http_base, fd, flags, http_sock_event, NULL);
	if (hs->ev == NULL)
		log_fatal("http: cannot create a socket event");
	event_add(hs->ev, NULL);
	return (0);
}

/* http_timer_cb - CURLMOPT_TIMERFUNCTION: (re)arm or stop the timer */
static int
http_timer_cb(CURLM *unused_multi, long ms, void *unused_userp)
{
	struct timeval tv;

	(void) unused_multi;
	(void) unused_userp;
	if (ms < 0) {
		evtimer_del(http_timer);
		return (0);
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(http_timer, &tv);
	return (0);
}

/* http_write_cb - CURLOPT_WRITEFUNCTION: keep the body, within bounds */
static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct http_req *req = ctx;
	size_t  n = size * nmemb;

	if (STRBUF_LEN(req->body) + n > req->max_bytes) {
		req->too_big = 1;
		return (0);
	}
	strbuf_append(req->body, data, n);
	return (n);
}

/* http_load - map libcurl and find its functions, once; 0 or -1 */
int
http_load(void)
{
	/*
	 * POSIX's dlsym() idiom: each pointer written through a void **
	 * (its own type is curl.h's).
	 */
#define HTTP_CURL_SYM(name)	{"curl_" #name, (void **) &http_curl.name},
	static const struct {
		const char *name;
		void  **ptr;
	}       syms[] = {
		HTTP_CURL_FUNCS(HTTP_CURL_SYM)
	};
#undef HTTP_CURL_SYM
	const char *why = NULL;
	char    sym[256];
	char    msg[512];
	size_t  i;

	if (http_dl)
		return (0);
	if (http_dl_error)
		return (-1);
	if ((http_dl = dlopen(HTTP_LIBCURL, RTLD_NOW | RTLD_LOCAL)) == NULL)
		why = dlerror();
	for (i = 0; http_dl && i < sizeof(syms) / sizeof(syms[0]); i++) {
		(void) dlerror();
		if ((*syms[i].ptr = dlsym(http_dl, syms[i].name)) == NULL) {
			why = dlerror();
			/* dlclose() may free what dlerror() returned. */
			snprintf(sym, sizeof(sym), "%s",
				 why ? why : syms[i].name);
			why = sym;
			(void) dlclose(http_dl);
			http_dl = NULL;
		}
	}
	if (http_dl)
		return (0);
	memset(&http_curl, 0, sizeof(http_curl));
	snprintf(msg, sizeof(msg), "cannot load %s: %s", HTTP_LIBCURL,
		 why ? why : "dlopen() failed");
	http_dl_error = xstrdup(msg);
	log_warn("http: %s; every HTTP request fails", http_dl_error);
	return (-1);
}

/* http_init - libcurl's multi interface on the loop */
int
http_init(struct event_base *base)
{
	if (http_base)
		return (0);
	if (http_load() == 0) {
		if (http_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return (-1);
		if ((http_multi = http_curl.multi_init()) == NULL) {
			http_curl.global_cleanup();
			return (-1);
		}
		http_timer = evtimer_new(base, http_timer_event, NULL);
		if (http_timer == NULL)
			log_fatal("http: cannot create a timer event");
		http_curl.multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION,
				       http_socket_cb);
		http_curl.multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION,
				       http_timer_cb);
	}
	http_base = base;
	return (0);
}

/* http_set_ca - trust anchors for later requests */
int
http_set_ca(const char *cafile, const char *capath)
{
	char    buf[8192];
	ssize_t n;
	int     fd;

	/* Callers set this up before a chroot: libcurl must be loaded now. */
	(void) http_load();
	http_cablob = strbuf_free(http_cablob);
	xfree(http_capath);
	http_capath = capath && *capath ? xstrdup(capath) : NULL;
	if (cafile == NULL || *cafile == 0)
		return (0);
	if ((fd = open(cafile, O_RDONLY)) < 0)
		return (-1);
	http_cablob = strbuf_new(8192, 16 * 1024 * 1024);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (strbuf_append(http_cablob, buf, (size_t) n) < 0) {
			n = -1;
			errno = EFBIG;
			break;
		}
	(void) close(fd);
	if (n < 0) {
		http_cablob = strbuf_free(http_cablob);
		return (-1);
	}
	return (0);
}

/* http_early_event - deliver an error found before any I/O */
static void
http_early_event(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct http_req *req = ctx;

	(void) unused_fd;
	(void) unused_what;
	http_finish(req, 0, req->early_why);
}

/* http_setup - the options of one transfer; 0 or -1 */
static int
http_setup(struct http_req *req, const char *url,
	           const struct http_opts *opts)
{
	__typeof__(curl_easy_setopt) *setopt = http_curl.easy_setopt;
	CURL   *e = req->easy;
	long    timeout = opts && opts->timeout > 0 ? opts->timeout :
	HTTP_TIMEOUT_DEFAULT;

	if (opts && opts->resolve && *opts->resolve) {
		req->resolve = http_curl.slist_append(NULL, opts->resolve);
		if (req->resolve == NULL)
			return (-1);
	}
	if (setopt(e, CURLOPT_URL, url) != CURLE_OK
	    || setopt(e, CURLOPT_PROTOCOLS_STR, opts && opts->plain_ok ?
		      "http,https" : "https") != CURLE_OK
	    || setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK
	    || setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK
	    || setopt(e, CURLOPT_PROXY, "") != CURLE_OK
	    || setopt(e, CURLOPT_TIMEOUT, timeout) != CURLE_OK
	    || setopt(e, CURLOPT_USERAGENT, "Sendarix") != CURLE_OK
	    || setopt(e, CURLOPT_ERRORBUFFER, req->errbuf) != CURLE_OK
	    || setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb) != CURLE_OK
	    || setopt(e, CURLOPT_WRITEDATA, req) != CURLE_OK
	    || setopt(e, CURLOPT_PRIVATE, req) != CURLE_OK
	    || setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK
	    || setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK)
		return (-1);
	if (req->resolve
	    && setopt(e, CURLOPT_RESOLVE, req->resolve) != CURLE_OK)
		return (-1);
	if (http_cablob) {
		struct curl_blob blob;

		blob.data = STRBUF_STR(http_cablob);
		blob.len = STRBUF_LEN(http_cablob);
		blob.flags = CURL_BLOB_COPY;
		if (setopt(e, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK)
			return (-1);
	}
	if (http_capath && setopt(e, CURLOPT_CAPATH, http_capath) != CURLE_OK)
		return (-1);
	if (opts && opts->user && *opts->user
	    && (setopt(e, CURLOPT_HTTPAUTH, CURLAUTH_BASIC) != CURLE_OK
		|| setopt(e, CURLOPT_USERNAME, opts->user) != CURLE_OK
		|| setopt(e, CURLOPT_PASSWORD, opts->password ?
			  opts->password : "") != CURLE_OK))
		return (-1);
	return (0);
}

/* http_post_setup - the POST body and its media type; 0 or -1 */
static int
http_post_setup(struct http_req *req, const char *ctype, const void *body,
		        size_t len)
{
	__typeof__(curl_easy_setopt) *setopt = http_curl.easy_setopt;
	CURL   *e = req->easy;
	struct strbuf *hdr = strbuf_new(128, 0);
	int     rc = 0;

	strbuf_setf(hdr, "Content-Type: %s", ctype);
	req->headers = http_curl.slist_append(NULL, STRBUF_STR(hdr));
	if (req->headers == NULL
	    || setopt(e, CURLOPT_POST, 1L) != CURLE_OK
	    || setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) len)
	    != CURLE_OK
	    || setopt(e, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK
	    || setopt(e, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK)
		rc = -1;
	strbuf_free(hdr);
	return (rc);
}

/* http_start - start one GET, or a POST when ctype is not NULL */
static struct http_req *
http_start(const char *url, const char *ctype, const void *body, size_t len,
	           const struct http_opts *opts, http_callback cb, void *ctx)
{
	struct http_req *req;
	struct timeval tv = {0, 0};

	if (http_base == NULL)
		log_panic("http_get: http_init() was not called");
	req = xcalloc(1, sizeof(*req));
	req->cb = cb;
	req->ctx = ctx;
	req->max_bytes = opts && opts->max_bytes ? opts->max_bytes :
		HTTP_MAX_DEFAULT;
	req->body = strbuf_new(1024, 0);
	req->next = http_reqs;
	if (http_reqs)
		http_reqs->prev = req;
	http_reqs = req;
	http_nreqs++;
	if (strncasecmp(url, "https://", 8) != 0
	    && !(opts && opts->plain_ok && strncasecmp(url, "http://", 7) == 0))
		req->early_why = xstrdup(opts && opts->plain_ok ?
					 "not an http(s):// URL" :
					 "not an https:// URL");
	else if (http_multi == NULL)
		req->early_why = xstrdup(http_dl_error ? http_dl_error :
					 "libcurl is not started");
	else if ((req->easy = http_curl.easy_init()) == NULL)
		req->early_why = xstrdup("cannot start a transfer");
	else if (http_setup(req, url, opts) < 0
		 || (ctype && http_post_setup(req, ctype, body, len) < 0))
		req->early_why = xstrdup("cannot set up the transfer");
	else if (http_curl.multi_add_handle(http_multi, req->easy) != CURLM_OK)
		req->early_why = xstrdup("cannot add the transfer");
	if (req->early_why) {
		if (req->easy) {
			http_curl.easy_cleanup(req->easy);
			req->easy = NULL;
		}
		req->early = evtimer_new(http_base, http_early_event, req);
		if (req->early == NULL)
			log_fatal("http: cannot create a timer event");
		evtimer_add(req->early, &tv);
	}
	return (req);
}

/* http_get - start one GET */
struct http_req *
http_get(const char *url, const struct http_opts *opts, http_callback cb,
	         void *ctx)
{
	return (http_start(url, NULL, NULL, 0, opts, cb, ctx));
}

/* http_post - start one POST */
struct http_req *
http_post(const char *url, const char *ctype, const void *body, size_t len,
	          const struct http_opts *opts, http_callback cb, void *ctx)
{
	return (http_start(url, ctype, body, len, opts, cb, ctx));
}

/* http_cancel - abandon a request */
void
http_cancel(struct http_req *req)
{
	if (req)
		http_req_free(req);
}

/* http_count - requests in flight */
size_t
http_count(void)
{
	return (http_nreqs);
}

/* http_free - cancel everything, release libcurl */
void
http_free(void)
{
	while (http_reqs)
		http_req_free(http_reqs);
	if (http_multi) {
		http_curl.multi_cleanup(http_multi);
		http_multi = NULL;
	}
	if (http_timer) {
		event_free(http_timer);
		http_timer = NULL;
	}
	if (http_base && http_dl)
		http_curl.global_cleanup();
	http_cablob = strbuf_free(http_cablob);
	http_capath = xfree(http_capath);
	http_base = NULL;
}
