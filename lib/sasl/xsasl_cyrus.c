/*
 * xsasl_cyrus - Cyrus SASL server exchanges, off the event loop
 *
 * SYNOPSIS
 *	#include "xsasl.h"
 *
 *	int	xsasl_init(const char *app, const char *conf_path,
 *			struct strbuf *err)
 *	void	xsasl_set_base(struct event_base *base)
 *	struct xsasl_server *xsasl_server_new(const char *service,
 *			const char *fqdn, const char *realm,
 *			const char *local_ipport, const char *remote_ipport,
 *			int tls, const char *sec_opts, struct strbuf *err)
 *	const char *xsasl_server_mechs(struct xsasl_server *xs)
 *	int	xsasl_server_first(struct xsasl_server *xs, const char *mech,
 *			const char *in, size_t len, int have_in,
 *			xsasl_done done, void *ctx)
 *	int	xsasl_server_next(struct xsasl_server *xs, const char *in,
 *			size_t len, xsasl_done done, void *ctx)
 *	const char *xsasl_server_output(struct xsasl_server *xs, size_t *len)
 *	const char *xsasl_server_username(struct xsasl_server *xs)
 *	const char *xsasl_server_reason(struct xsasl_server *xs)
 *	void	xsasl_server_free(struct xsasl_server *xs)
 *	int	xsasl_security_options(const char *spec, unsigned *flags)
 *
 * DESCRIPTION
 *	xsasl_init() starts Cyrus SASL once per process, before the
 *	privilege drop: "app" names the configuration file (app.conf, as
 *	Postfix's smtpd_sasl_path), looked for in "conf_path" (a colon-
 *	separated list; empty: Cyrus's default). It sets pthread mutexes
 *	for the library, since exchanges run in worker threads. -1 and a
 *	reason in "err" if Cyrus does not start.
 *
 *	A password check may wait on a saslauthd socket, a database or a
 *	network server. So xsasl_server_first() and xsasl_server_next(),
 *	which run one step of an exchange, hand the step to a pool of
 *	XSASL_WORKERS threads and return XSASL_WAIT; the step's result
 *	(XSASL_OK, XSASL_CONTINUE, XSASL_FAIL, XSASL_TEMP, XSASL_NOMECH)
 *	comes back through "done" on the event loop (xsasl_set_base()), by
 *	way of a pipe that the workers write to. Other sessions go on
 *	meanwhile. The step's output (a challenge) is then
 *	xsasl_server_output(), the authenticated name
 *	xsasl_server_username(), the reason of a failure
 *	xsasl_server_reason(). Messages Cyrus logs during a step are logged
 *	from the loop afterwards.
 *
 *	xsasl_server_new() makes one connection context; "tls" says the
 *	session is encrypted (an external SSF, and Postfix's
 *	smtpd_sasl_tls_security_options then apply through "sec_opts").
 *	xsasl_server_free() may be called while a step runs: the context
 *	is then freed when the step ends, and "done" is not called.
 *
 *	xsasl_security_options() parses Postfix's security option words
 *	(noanonymous, noplaintext, nodictionary, noactive, mutual_auth,
 *	forward_secrecy) into Cyrus SASL_SEC_* flags; -1 on an unknown word.
 *
 * SEE ALSO
 *	sasl_server_start(3), Postfix SASL_README
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <sasl/sasl.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "xsasl.h"

#define XSASL_WORKERS	4		/* threads for password checks */
#define XSASL_LOGMAX	8		/* Cyrus messages kept per step */

struct xsasl_server {
	sasl_conn_t *conn;
	int     busy;			/* a step is with a worker */
	int     orphan;			/* freed while busy */
	/* The step. */
	char   *mech;			/* first step: the mechanism */
	char   *in;
	size_t  inlen;
	int     have_in;
	int     status;
	xsasl_done done;
	void   *ctx;
	/* Its result. */
	struct strbuf *out;
	char   *username;
	char   *reason;
	char   *log[XSASL_LOGMAX];
	int     nlog;
	struct xsasl_server *next;	/* on a job queue */
};

static pthread_mutex_t xsasl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t xsasl_cond = PTHREAD_COND_INITIALIZER;
static struct xsasl_server *xsasl_todo;		/* FIFO head */
static struct xsasl_server *xsasl_todo_tail;
static struct xsasl_server *xsasl_done_list;
static int xsasl_pipe[2] = {-1, -1};
static struct event *xsasl_pipe_ev;
static struct event_base *xsasl_base;
static int xsasl_nthreads;
static char *xsasl_conf_path;
static __thread struct xsasl_server *xsasl_current;

/* xsasl_mutex_alloc - pthread mutexes for Cyrus (sasl_set_mutex) */
static void *
xsasl_mutex_alloc(void)
{
	pthread_mutex_t *m = xmalloc(sizeof(*m));

	pthread_mutex_init(m, NULL);
	return (m);
}

/* xsasl_mutex_lock - lock one */
static int
xsasl_mutex_lock(void *m)
{
	return (pthread_mutex_lock(m) ? SASL_FAIL : SASL_OK);
}

/* xsasl_mutex_unlock - unlock one */
static int
xsasl_mutex_unlock(void *m)
{
	return (pthread_mutex_unlock(m) ? SASL_FAIL : SASL_OK);
}

/* xsasl_mutex_free - free one */
static void
xsasl_mutex_free(void *m)
{
	pthread_mutex_destroy(m);
	free(m);
}

/* xsasl_log_cb - Cyrus wants to log: now, or after the step */
static int
xsasl_log_cb(void *unused_ctx, int level, const char *msg)
{
	struct xsasl_server *xs = xsasl_current;

	(void) unused_ctx;
	if (level > SASL_LOG_NOTE && !log_verbose)
		return (SASL_OK);
	if (xs != NULL) {
		/* A worker: the log is the loop's. */
		if (xs->nlog < XSASL_LOGMAX) {
			xs->log[xs->nlog++] = strdup(msg);
			if (xs->log[xs->nlog - 1] == NULL)
				xs->nlog--;
		}
		return (SASL_OK);
	}
	if (level <= SASL_LOG_WARN)
		log_warn("SASL: %s", msg);
	else
		log_info("SASL: %s", msg);
	return (SASL_OK);
}

/* xsasl_path_cb - where the application's .conf file is */
static int
xsasl_path_cb(void *unused_ctx, const char **path)
{
	(void) unused_ctx;
	*path = xsasl_conf_path;
	return (SASL_OK);
}

/* xsasl_init - start Cyrus SASL, once per process */
int
xsasl_init(const char *app, const char *conf_path, struct strbuf *err)
{
	static sasl_callback_t cbs[3];
	int     n = 0;
	int     ret;

	cbs[n].id = SASL_CB_LOG;
	cbs[n].proc = (int (*) (void)) (void (*) (void)) xsasl_log_cb;
	cbs[n++].context = NULL;
	if (conf_path && *conf_path) {
		xsasl_conf_path = xstrdup(conf_path);
		cbs[n].id = SASL_CB_GETCONFPATH;
		cbs[n].proc = (int (*) (void)) (void (*) (void)) xsasl_path_cb;
		cbs[n++].context = NULL;
	}
	cbs[n].id = SASL_CB_LIST_END;
	cbs[n].proc = NULL;
	cbs[n].context = NULL;
	sasl_set_mutex(xsasl_mutex_alloc, xsasl_mutex_lock,
		       xsasl_mutex_unlock, xsasl_mutex_free);
	if ((ret = sasl_server_init(cbs, app)) != SASL_OK) {
		strbuf_setf(err, "SASL per-process initialization failed: %s",
			    sasl_errstring(ret, NULL, NULL));
		return (-1);
	}
	return (0);
}

/* xsasl_security_options - Postfix's option words to SASL_SEC_* */
int
xsasl_security_options(const char *spec, unsigned *flags)
{
	static const struct {
		const char *name;
		unsigned flag;
	} opts[] = {
		{"noanonymous", SASL_SEC_NOANONYMOUS},
		{"noplaintext", SASL_SEC_NOPLAINTEXT},
		{"nodictionary", SASL_SEC_NODICTIONARY},
		{"noactive", SASL_SEC_NOACTIVE},
		{"mutual_auth", SASL_SEC_MUTUAL_AUTH},
		{"forward_secrecy", SASL_SEC_FORWARD_SECRECY},
	};
	char   *copy = xstrdup(spec ? spec : "");
	char   *save;
	char   *word;
	size_t  i;
	int     ret = 0;

	*flags = 0;
	for (word = strtok_r(copy, " \t\r\n,", &save); word != NULL;
	     word = strtok_r(NULL, " \t\r\n,", &save)) {
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (strcasecmp(word, opts[i].name) == 0)
				break;
		if (i == sizeof(opts) / sizeof(opts[0])) {
			ret = -1;
			break;
		}
		*flags |= opts[i].flag;
	}
	xfree(copy);
	return (ret);
}

/* xsasl_set_base - the loop that gets the results */
void
xsasl_set_base(struct event_base *base)
{
	xsasl_base = base;
}

/* xsasl_server_new - one connection context */
struct xsasl_server *
xsasl_server_new(const char *service, const char *fqdn, const char *realm,
		 const char *local_ipport, const char *remote_ipport, int tls,
		 const char *sec_opts, struct strbuf *err)
{
	sasl_security_properties_t props;
	struct xsasl_server *xs;
	sasl_conn_t *conn = NULL;
	unsigned flags;
	int     ret;

	if (xsasl_security_options(sec_opts, &flags) < 0) {
		strbuf_setf(err, "bad SASL security options \"%s\"", sec_opts);
		return (NULL);
	}

	ret = sasl_server_new(service, fqdn, realm && *realm ? realm : NULL,
			      local_ipport, remote_ipport, NULL, 0, &conn);
	if (ret != SASL_OK) {
		strbuf_setf(err, "per-session SASL initialization failed: %s",
			    sasl_errstring(ret, NULL, NULL));
		return (NULL);
	}
	if (tls) {
		sasl_ssf_t ssf = 1;

		/* The SSF of TLS is not told: any non-zero value will do. */
		(void) sasl_setprop(conn, SASL_SSF_EXTERNAL, &ssf);
	}
	memset(&props, 0, sizeof(props));
	props.max_ssf = 0;			/* no SASL security layer */
	props.maxbufsize = 0;
	props.security_flags = flags;
	if ((ret = sasl_setprop(conn, SASL_SEC_PROPS, &props)) != SASL_OK) {
		strbuf_setf(err, "SASL security properties: %s",
			    sasl_errstring(ret, NULL, NULL));
		sasl_dispose(&conn);
		return (NULL);
	}
	xs = xcalloc(1, sizeof(*xs));
	xs->conn = conn;
	xs->out = strbuf_new(128, 0);
	return (xs);
}

/* xsasl_server_mechs - the mechanisms offered, space-separated */
const char *
xsasl_server_mechs(struct xsasl_server *xs)
{
	const char *list = NULL;
	unsigned len;
	int     count;

	if (sasl_listmech(xs->conn, NULL, "", " ", "", &list, &len,
			  &count) != SASL_OK || list == NULL)
		return ("");
	return (list);
}

/* xsasl_step_run - one step, in a worker thread */
static void
xsasl_step_run(struct xsasl_server *xs)
{
	const char *out = NULL;
	const char *user = NULL;
	unsigned outlen = 0;
	int     ret;

	xsasl_current = xs;
	if (xs->mech)
		ret = sasl_server_start(xs->conn, xs->mech,
					xs->have_in ? xs->in : NULL,
					(unsigned) xs->inlen, &out, &outlen);
	else
		ret = sasl_server_step(xs->conn, xs->in, (unsigned) xs->inlen,
				       &out, &outlen);
	xsasl_current = NULL;
	strbuf_reset(xs->out);
	free(xs->reason);
	xs->reason = NULL;
	switch (ret) {
	case SASL_OK:
		if (out && outlen)
			strbuf_set(xs->out, out, outlen);
		if (sasl_getprop(xs->conn, SASL_USERNAME,
				 (const void **) &user) == SASL_OK && user) {
			free(xs->username);
			xs->username = strdup(user);
		}
		xs->status = xs->username ? XSASL_OK : XSASL_TEMP;
		break;
	case SASL_CONTINUE:
		if (out && outlen)
			strbuf_set(xs->out, out, outlen);
		xs->status = XSASL_CONTINUE;
		break;
	case SASL_NOMECH:
		xs->status = XSASL_NOMECH;
		break;
	case SASL_TRYAGAIN:
	case SASL_UNAVAIL:
	case SASL_NOMEM:
	case SASL_FAIL:
		xs->status = XSASL_TEMP;
		break;
	default:
		xs->status = XSASL_FAIL;
		break;
	}
	if (xs->status != XSASL_OK && xs->status != XSASL_CONTINUE)
		xs->reason = strdup(sasl_errstring(ret, NULL, NULL));
}

/* xsasl_worker - take steps off the queue until the process ends */
static void *
xsasl_worker(void *unused_arg)
{
	struct xsasl_server *xs;
	char    c = 0;

	(void) unused_arg;
	for (;;) {
		pthread_mutex_lock(&xsasl_lock);
		while (xsasl_todo == NULL)
			pthread_cond_wait(&xsasl_cond, &xsasl_lock);
		xs = xsasl_todo;
		if ((xsasl_todo = xs->next) == NULL)
			xsasl_todo_tail = NULL;
		pthread_mutex_unlock(&xsasl_lock);

		xsasl_step_run(xs);

		pthread_mutex_lock(&xsasl_lock);
		xs->next = xsasl_done_list;
		xsasl_done_list = xs;
		pthread_mutex_unlock(&xsasl_lock);
		while (write(xsasl_pipe[1], &c, 1) < 0 && errno == EINTR)
			 /* again */ ;
	}
	return (NULL);
}

/* xsasl_finish - a step is back: tell its owner */
static void
xsasl_finish(struct xsasl_server *xs)
{
	int     i;

	for (i = 0; i < xs->nlog; i++) {
		log_info("SASL: %s", xs->log[i]);
		free(xs->log[i]);
	}
	xs->nlog = 0;
	xs->busy = 0;
	xs->mech = xfree(xs->mech);
	xs->in = xfree(xs->in);
	if (xs->orphan) {
		xsasl_server_free(xs);
		return;
	}
	xs->done(xs, xs->status, xs->ctx);
}

/* xsasl_pipe_cb - workers have results */
static void
xsasl_pipe_cb(evutil_socket_t fd, short unused_what, void *unused_ctx)
{
	struct xsasl_server *list;
	struct xsasl_server *xs;
	struct xsasl_server *rev = NULL;
	char    buf[64];

	(void) unused_what;
	(void) unused_ctx;
	while (read(fd, buf, sizeof(buf)) > 0)
		 /* drain */ ;
	pthread_mutex_lock(&xsasl_lock);
	list = xsasl_done_list;
	xsasl_done_list = NULL;
	pthread_mutex_unlock(&xsasl_lock);
	/* In the order they finished. */
	while ((xs = list) != NULL) {
		list = xs->next;
		xs->next = rev;
		rev = xs;
	}
	while ((xs = rev) != NULL) {
		rev = xs->next;
		xs->next = NULL;
		xsasl_finish(xs);
	}
}

/* xsasl_start_workers - the pipe and the threads, on first use */
static int
xsasl_start_workers(void)
{
	sigset_t all;
	sigset_t old;
	pthread_t tid;
	int     i;

	if (xsasl_nthreads > 0)
		return (0);
	if (xsasl_base == NULL || pipe2(xsasl_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return (-1);
	xsasl_pipe_ev = event_new(xsasl_base, xsasl_pipe[0],
				  EV_READ | EV_PERSIST, xsasl_pipe_cb, NULL);
	event_add(xsasl_pipe_ev, NULL);
	/* Signals are the loop's: the workers block them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < XSASL_WORKERS; i++) {
		if (pthread_create(&tid, NULL, xsasl_worker, NULL) != 0)
			break;
		pthread_detach(tid);
		xsasl_nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (xsasl_nthreads == 0) {
		log_warn("SASL: cannot start a worker thread");
		return (-1);
	}
	return (0);
}

/* xsasl_submit - queue a step for the workers */
static int
xsasl_submit(struct xsasl_server *xs, xsasl_done done, void *ctx)
{
	if (xs->busy)
		log_panic("xsasl: a step while another runs");
	if (xsasl_start_workers() < 0) {
		xs->mech = xfree(xs->mech);
		xs->in = xfree(xs->in);
		free(xs->reason);
		xs->reason = strdup("no worker thread");
		return (XSASL_TEMP);
	}
	xs->busy = 1;
	xs->done = done;
	xs->ctx = ctx;
	xs->next = NULL;
	pthread_mutex_lock(&xsasl_lock);
	if (xsasl_todo_tail)
		xsasl_todo_tail->next = xs;
	else
		xsasl_todo = xs;
	xsasl_todo_tail = xs;
	pthread_cond_signal(&xsasl_cond);
	pthread_mutex_unlock(&xsasl_lock);
	return (XSASL_WAIT);
}

/* xsasl_server_first - start an exchange with "mech" */
int
xsasl_server_first(struct xsasl_server *xs, const char *mech,
		   const char *in, size_t len, int have_in, xsasl_done done,
		   void *ctx)
{
	xs->mech = xstrdup(mech);
	xs->in = have_in ? xmemdup(in, len + 1) : NULL;
	xs->inlen = have_in ? len : 0;
	xs->have_in = have_in;
	return (xsasl_submit(xs, done, ctx));
}

/* xsasl_server_next - the client's next response */
int
xsasl_server_next(struct xsasl_server *xs, const char *in, size_t len,
		  xsasl_done done, void *ctx)
{
	xs->in = xmemdup(in, len + 1);
	xs->inlen = len;
	xs->have_in = 1;
	return (xsasl_submit(xs, done, ctx));
}

/* xsasl_server_output - the challenge of the last step */
const char *
xsasl_server_output(struct xsasl_server *xs, size_t *len)
{
	*len = xs->out->len;
	return (xs->out->data);
}

/* xsasl_server_username - the authenticated name, or NULL */
const char *
xsasl_server_username(struct xsasl_server *xs)
{
	return (xs->username);
}

/* xsasl_server_reason - why the last step failed */
const char *
xsasl_server_reason(struct xsasl_server *xs)
{
	return (xs->reason ? xs->reason : "authentication failure");
}

/* xsasl_server_free - done with the context (now or when its step ends) */
void
xsasl_server_free(struct xsasl_server *xs)
{
	if (xs == NULL)
		return;
	if (xs->busy) {
		xs->orphan = 1;
		return;
	}
	sasl_dispose(&xs->conn);
	strbuf_free(xs->out);
	free(xs->username);
	free(xs->reason);
	xfree(xs->mech);
	xfree(xs->in);
	xfree(xs);
}
