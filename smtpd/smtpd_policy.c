/*
 * smtpd_policy - the client side of the policy delegation protocol
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	struct smtpd_policy *smtpd_policy_open(const char *spec,
 *			struct strbuf *err)
 *	struct smtpd_policy_req *smtpd_policy_query(struct smtpd_policy *p,
 *			const char *request, smtpd_policy_cb cb, void *ctx)
 *	void	smtpd_policy_cancel(struct smtpd_policy_req *req)
 *	void	smtpd_policy_set_limits(long timeout, long max_idle)
 *
 * DESCRIPTION
 *	Postfix's policy delegation (SMTPD_POLICY_README): smtpd sends
 *	"name=value" lines ended by an empty line; the server answers
 *	"action=..." (and maybe other lines), ended by an empty line.
 *
 *	smtpd_policy_open() takes a check_policy_service argument:
 *	"inet:host:port", "host:port", "unix:path" or "/path" (a relative
 *	unix path is relative to the queue directory, like "private/x").
 *	A host name is resolved now, at start. The same spec twice gives
 *	the same server. It returns NULL with the reason in "err".
 *
 *	smtpd_policy_query() sends one request (already in protocol form,
 *	ending with the empty line) over an idle connection to the server,
 *	or a new one: requests of different sessions run side by side, each
 *	on its own connection, never behind each other. When the answer
 *	comes, cb(action, ctx) is called from the event loop; cb(NULL, ctx)
 *	when the server could not be reached, closed the connection, talked
 *	nonsense or took longer than smtpd_policy_service_timeout (the
 *	caller then applies smtpd_policy_service_default_action). A request
 *	on a reused connection that the server had closed is tried once
 *	more on a new one. It returns NULL, and does not call cb, when no
 *	connection can be started at all. After the answer the connection
 *	waits for the next request, at most smtpd_policy_service_max_idle.
 *
 *	smtpd_policy_cancel() forgets a request (its session ended); cb is
 *	not called, and its connection is closed.
 *
 * DIAGNOSTICS
 *	Warnings for servers that cannot be reached, time out or answer
 *	without an action.
 *
 * SEE ALSO
 *	smtpd_check.c, Postfix SMTPD_POLICY_README
 */

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtpd.h"

#define SMTPD_POLICY_REPLY_MAX	8192	/* bytes of one answer */

struct smtpd_policy_conn;

struct smtpd_policy {
	char   *spec;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct smtpd_policy_conn *idle;	/* connections without a request */
	struct smtpd_policy *next;
};

struct smtpd_policy_conn {
	struct smtpd_policy *policy;
	struct smtpd_policy_conn *next;	/* idle list */
	struct bufferevent *bev;
	struct event *timer;		/* request timeout, or idle limit */
	struct smtpd_policy_req *req;	/* NULL when idle */
	int     reused;			/* served a request before */
	char   *action;			/* of the answer being read */
};

struct smtpd_policy_req {
	struct smtpd_policy *policy;
	struct smtpd_policy_conn *conn;
	char   *request;
	int     tries;
	smtpd_policy_cb cb;
	void   *ctx;
};

static struct smtpd_policy *smtpd_policies;
static long smtpd_policy_timeout = 100;
static long smtpd_policy_max_idle = 300;

static int smtpd_policy_send(struct smtpd_policy_req *);

/* smtpd_policy_set_limits - smtpd_policy_service_timeout and _max_idle */
void
smtpd_policy_set_limits(long timeout, long max_idle)
{
	if (timeout > 0)
		smtpd_policy_timeout = timeout;
	if (max_idle > 0)
		smtpd_policy_max_idle = max_idle;
}

/* smtpd_policy_open - a policy server from its spec */
struct smtpd_policy *
smtpd_policy_open(const char *spec, struct strbuf *err)
{
	struct smtpd_policy *p;
	struct sockaddr_un *sun;
	struct addrinfo hints;
	struct addrinfo *res;
	const char *path = NULL;
	char   *host;
	char   *port;
	int     ret;

	for (p = smtpd_policies; p; p = p->next)
		if (strcmp(p->spec, spec) == 0)
			return (p);
	p = xcalloc(1, sizeof(*p));
	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (*spec == '/' || strncmp(spec, "private/", 8) == 0)
		path = spec;
	if (path) {
		sun = (struct sockaddr_un *) &p->sa;
		if (*path == 0 || strlen(path) >= sizeof(sun->sun_path)) {
			strbuf_setf(err, "bad unix socket path \"%s\"", path);
			xfree(p);
			return (NULL);
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		p->salen = sizeof(*sun);
	} else {
		host = xstrdup(strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec);
		if ((port = strrchr(host, ':')) == NULL || port[1] == 0) {
			strbuf_setf(err, "expected inet:host:port or "
				    "unix:path, not \"%s\"", spec);
			xfree(host);
			xfree(p);
			return (NULL);
		}
		*port++ = 0;
		if (*host == '[' && port[-2] == ']') {
			port[-2] = 0;
			memmove(host, host + 1, strlen(host));
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		if ((ret = getaddrinfo(host, port, &hints, &res)) != 0) {
			strbuf_setf(err, "%s: %s", spec, gai_strerror(ret));
			xfree(host);
			xfree(p);
			return (NULL);
		}
		memcpy(&p->sa, res->ai_addr, res->ai_addrlen);
		p->salen = res->ai_addrlen;
		freeaddrinfo(res);
		xfree(host);
	}
	p->spec = xstrdup(spec);
	p->next = smtpd_policies;
	smtpd_policies = p;
	return (p);
}

/* smtpd_policy_conn_free - close one connection */
static void
smtpd_policy_conn_free(struct smtpd_policy_conn *pc)
{
	struct smtpd_policy_conn **pp;

	for (pp = &pc->policy->idle; *pp; pp = &(*pp)->next) {
		if (*pp == pc) {
			*pp = pc->next;
			break;
		}
	}
	if (pc->req)
		pc->req->conn = NULL;
	bufferevent_free(pc->bev);
	event_free(pc->timer);
	xfree(pc->action);
	xfree(pc);
}

/* smtpd_policy_req_free - forget a request */
static void
smtpd_policy_req_free(struct smtpd_policy_req *req)
{
	xfree(req->request);
	xfree(req);
}

/* smtpd_policy_fail - the request got no answer: retry or tell */
static void
smtpd_policy_fail(struct smtpd_policy_conn *pc, const char *why)
{
	struct smtpd_policy_req *req = pc->req;
	int     reused = pc->reused;

	smtpd_policy_conn_free(pc);
	if (req == NULL)
		return;				/* an idle one went away */
	/* A reused connection may have been closed by the server: again. */
	if (reused && req->tries++ == 0 && smtpd_policy_send(req) == 0)
		return;
	log_warn("problem talking to policy server %s: %s",
		 req->policy->spec, why);
	req->cb(NULL, req->ctx);
	smtpd_policy_req_free(req);
}

/* smtpd_policy_answer - parse a complete answer; 0, or -1 */
static int
smtpd_policy_answer(struct smtpd_policy_conn *pc)
{
	struct evbuffer *in = bufferevent_get_input(pc->bev);
	struct smtpd_policy_req *req = pc->req;
	struct evbuffer_ptr eol;
	struct timeval tv;
	char   *line;
	char   *action;
	size_t  len;

	for (;;) {
		eol = evbuffer_search_eol(in, NULL, &len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > SMTPD_POLICY_REPLY_MAX)
				smtpd_policy_fail(pc, "answer too long");
			return (-1);		/* more to come */
		}
		line = xmalloc(eol.pos + 1);
		evbuffer_remove(in, line, eol.pos);
		line[eol.pos] = 0;
		evbuffer_drain(in, 1);
		if (eol.pos > 0 && line[eol.pos - 1] == '\r')
			line[eol.pos - 1] = 0;
		if (*line == 0) {
			xfree(line);
			break;
		}
		if (strncasecmp(line, "action=", 7) == 0) {
			xfree(pc->action);
			pc->action = xstrdup(line + 7);
		}
		xfree(line);
	}
	action = pc->action;
	pc->action = NULL;
	if (action == NULL) {
		smtpd_policy_fail(pc, "answer without action");
		return (0);
	}
	pc->req = NULL;
	pc->reused = 1;
	evtimer_del(pc->timer);
	tv.tv_sec = smtpd_policy_max_idle;
	tv.tv_usec = 0;
	evtimer_add(pc->timer, &tv);
	pc->next = pc->policy->idle;
	pc->policy->idle = pc;
	req->conn = NULL;
	req->cb(action, req->ctx);
	xfree(action);
	smtpd_policy_req_free(req);
	return (0);
}

/* smtpd_policy_read_cb - bytes from the server */
static void
smtpd_policy_read_cb(struct bufferevent *unused_bev, void *ctx)
{
	struct smtpd_policy_conn *pc = ctx;

	(void) unused_bev;
	if (pc->req == NULL) {
		smtpd_policy_conn_free(pc);	/* talks out of turn */
		return;
	}
	(void) smtpd_policy_answer(pc);
}

/* smtpd_policy_event_cb - connected, closed or failed */
static void
smtpd_policy_event_cb(struct bufferevent *unused_bev, short what, void *ctx)
{
	struct smtpd_policy_conn *pc = ctx;

	(void) unused_bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	smtpd_policy_fail(pc, (what & BEV_EVENT_EOF) ? "lost connection" :
			  evutil_socket_error_to_string(
					     EVUTIL_SOCKET_ERROR()));
}

/* smtpd_policy_timer_cb - no answer in time, or idle for too long */
static void
smtpd_policy_timer_cb(evutil_socket_t unused_fd, short unused_what,
		      void *ctx)
{
	struct smtpd_policy_conn *pc = ctx;

	(void) unused_fd;
	(void) unused_what;
	if (pc->req)
		pc->reused = 0;			/* no second try: it hangs */
	smtpd_policy_fail(pc, "timeout");
}

/* smtpd_policy_connect - a new connection; NULL if it cannot start */
static struct smtpd_policy_conn *
smtpd_policy_connect(struct smtpd_policy *p)
{
	struct smtpd_policy_conn *pc;

	pc = xcalloc(1, sizeof(*pc));
	pc->policy = p;
	pc->bev = bufferevent_socket_new(server_base(), -1,
					 BEV_OPT_CLOSE_ON_FREE);
	if (pc->bev == NULL) {
		xfree(pc);
		return (NULL);
	}
	pc->timer = evtimer_new(server_base(), smtpd_policy_timer_cb, pc);
	bufferevent_setcb(pc->bev, smtpd_policy_read_cb, NULL,
			  smtpd_policy_event_cb, pc);
	if (bufferevent_socket_connect(pc->bev, (struct sockaddr *) &p->sa,
				       (int) p->salen) < 0) {
		log_warn("connect to policy server %s: %s", p->spec,
			 strerror(errno));
		bufferevent_free(pc->bev);
		event_free(pc->timer);
		xfree(pc);
		return (NULL);
	}
	bufferevent_enable(pc->bev, EV_READ | EV_WRITE);
	return (pc);
}

/* smtpd_policy_send - put a request on a connection; 0 or -1 */
static int
smtpd_policy_send(struct smtpd_policy_req *req)
{
	struct smtpd_policy *p = req->policy;
	struct smtpd_policy_conn *pc;
	struct timeval tv;

	if ((pc = p->idle) != NULL) {
		p->idle = pc->next;
		pc->next = NULL;
		evtimer_del(pc->timer);
	} else if ((pc = smtpd_policy_connect(p)) == NULL) {
		return (-1);
	}
	pc->req = req;
	req->conn = pc;
	bufferevent_write(pc->bev, req->request, strlen(req->request));
	tv.tv_sec = smtpd_policy_timeout;
	tv.tv_usec = 0;
	evtimer_add(pc->timer, &tv);
	return (0);
}

/* smtpd_policy_query - ask; the answer comes through cb */
struct smtpd_policy_req *
smtpd_policy_query(struct smtpd_policy *p, const char *request,
		   smtpd_policy_cb cb, void *ctx)
{
	struct smtpd_policy_req *req;

	req = xcalloc(1, sizeof(*req));
	req->policy = p;
	req->request = xstrdup(request);
	req->cb = cb;
	req->ctx = ctx;
	if (smtpd_policy_send(req) < 0) {
		smtpd_policy_req_free(req);
		return (NULL);
	}
	return (req);
}

/* smtpd_policy_cancel - the session that asked is gone */
void
smtpd_policy_cancel(struct smtpd_policy_req *req)
{
	if (req->conn) {
		req->conn->req = NULL;
		smtpd_policy_conn_free(req->conn);
	}
	smtpd_policy_req_free(req);
}
