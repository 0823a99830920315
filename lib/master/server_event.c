/*
 * server_event - skeleton for event-driven daemons (many sessions, one loop)
 *
 * SYNOPSIS
 *	#include "server.h"
 *
 *	int	server_event_main(int argc, char **argv, const char *program,
 *			const struct server_ops *ops)
 *	struct event_base *server_base(void)
 *	void	server_session_done(void)
 *	const char *server_service_name(void)
 *	int	server_stopping(void)
 *	int	server_chrooted(void)
 *
 * DESCRIPTION
 *	server_event_main() is the whole life of a daemon that master
 *	starts as
 *
 *	    command -n SERVICE -t inet|unix [-c CONFIG_DIR] [-v] [-C]
 *		    [-o name=value ...] [args...]
 *
 *	with its listening sockets at fds 3 .. 3+N-1 and
 *	SENDARIX_LISTEN_FDS=N in the environment. -C asks for a chroot to
 *	queue_directory (master.cf chroot=y). Options stop at the first
 *	non-option word.
 *
 *	In order: log_init(program); options; conf_load() of the config
 *	directory (-c, else $SENDARIX_CONFIG_DIR, else the built-in
 *	default); each -o with conf_override(); log_open(); take the
 *	listeners (non-blocking, close-on-exec); ops->pre_init() while still
 *	privileged; chdir(queue_directory); when running as root, drop to
 *	mail_owner (privs_drop(), with the chroot when -C); make the libevent
 *	base; ops->post_init(base); then accept connections and hand each
 *	to ops->accept() until a signal ends the process.
 *
 *	The working directory is queue_directory (or / of the chroot,
 *	which is queue_directory), so daemons open queue-relative paths
 *	such as "private/cleanup" and "incoming/". Absolute paths into the
 *	queue may not be reachable after the privilege drop.
 *
 *	SIGTERM: ops->shutdown() (when not NULL), then exit(0). SIGHUP:
 *	close the listeners, and exit(0) once ops->sessions() is 0 (checked
 *	at once, after each server_session_done(), and once a second).
 *	SIGPIPE is ignored. When master dies the process gets SIGTERM
 *	(Linux parent-death signal).
 *
 *	server_base() returns the loop (NULL before post_init).
 *	server_session_done() is called by the daemon whenever a session
 *	ends; during a graceful stop it lets the process exit at once.
 *	It also gives memory back after a burst: when the process goes
 *	idle, or the number of sessions falls to half its peak (and by at
 *	least SERVER_TRIM_DROP), a timer calls glibc's malloc_trim(0)
 *	SERVER_TRIM_DELAY seconds later, at most once per that delay. Freed
 *	session memory otherwise stays in the heap. libevent's small
 *	allocations come from lib/util/evmem.c's pool, so that the records it
 *	keeps per descriptor do not pin the heap in between.
 *	server_service_name() is the master.cf service name (-n), else the
 *	program name. server_stopping() is non-zero after SIGHUP or SIGTERM.
 *	server_chrooted() is non-zero when the process chroots (-C), also
 *	in pre_init, before it does: what lies outside queue_directory must
 *	be read then.
 *
 * DIAGNOSTICS
 *	Usage errors, a bad main.cf or -o, no listening sockets, a failed
 *	privilege drop: log_fatal() (exit 1; master restarts with backoff).
 *	accept() running out of descriptors (EMFILE, ENFILE): a warning and
 *	a pause of one second before the next accept().
 *
 * SEE ALSO
 *	server.h, master(8), docs/ipc.md
 */

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "evmem.h"
#include "log.h"
#include "privs.h"
#include "server.h"
#include "strbuf.h"
#include "xmalloc.h"

#define SERVER_MAX_LISTEN	64	/* sanity limit on SENDARIX_LISTEN_FDS */
#define SERVER_ACCEPT_BURST	1024	/* accepts per wakeup, then yield */
#define SERVER_TRIM_DELAY	1	/* seconds: trim after, at most once */
#define SERVER_TRIM_DROP	64	/* sessions gone since the peak */

static const struct server_ops *server_ops;
static struct event_base *server_evbase;
static char *server_service;
static int server_chroot;		/* -C */
static char *server_type;
static struct server_listener *server_listeners;
static struct event **server_listen_ev;
static int server_nlisteners;
static int server_paused;		/* accept paused after EMFILE */
static struct event *server_pause_ev;
static struct event *server_check_ev;	/* "maybe exit now" (deferred) */
static struct event *server_backstop_ev;	/* 1 s timer during SIGHUP stop */
static int server_stop_flag;
static struct event *server_trim_ev;	/* malloc_trim() soon */
static size_t server_trim_peak;		/* most sessions since last trim */

/* server_base - the event loop of this process */
struct event_base *
server_base(void)
{
	return (server_evbase);
}

/* server_service_name - master.cf service name */
const char *
server_service_name(void)
{
	return (server_service ? server_service : log_progname());
}

/* server_chrooted - does (or will) the process run in a chroot? */
int
server_chrooted(void)
{
	return (server_chroot);
}

/* server_stopping - are we on our way out? */
int
server_stopping(void)
{
	return (server_stop_flag);
}

/* server_sessions - number of open sessions, as the daemon counts them */
static size_t
server_sessions(void)
{
	return (server_ops && server_ops->sessions ?
		server_ops->sessions() : 0);
}

/* server_exit_if_idle - end a graceful stop when no session is left */
static void
server_exit_if_idle(void)
{
	if (server_stop_flag && server_sessions() == 0) {
		log_debug("graceful stop: no sessions left, exiting");
		log_flush();
		exit(0);
	}
}

/* server_check_cb - deferred idle check, outside the daemon's callback */
static void
server_check_cb(evutil_socket_t unused_fd, short unused_what, void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	server_exit_if_idle();
}

/*
 * server_trim_cb - give the memory of ended sessions back
 *
 * libevent keeps a small record (evmap) for every descriptor number it
 * has seen; allocated between the sessions' own memory, those would pin
 * about a session's worth of heap per descriptor of the peak, which
 * malloc_trim() cannot return. lib/util/evmem.c keeps them apart.
 */
static void
server_trim_cb(evutil_socket_t unused_fd, short unused_what, void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
#ifdef __GLIBC__
	(void) malloc_trim(0);
#endif
	server_trim_peak = server_sessions();
}

/* server_trim_check - after a session ended: time to trim? */
static void
server_trim_check(void)
{
	struct timeval tv = {SERVER_TRIM_DELAY, 0};
	size_t  n;

	if (server_trim_ev == NULL || evtimer_pending(server_trim_ev, NULL))
		return;
	n = server_sessions();
	if (n == 0 || (n <= server_trim_peak / 2
		       && server_trim_peak - n >= SERVER_TRIM_DROP))
		evtimer_add(server_trim_ev, &tv);
}

/* server_session_done - a session ended; exit if stopping and idle */
void
server_session_done(void)
{
	server_trim_check();
	if (!server_stop_flag)
		return;

	/*
	 * Do not exit from inside the daemon's own callback: it may still
	 * be tearing the session down. Check from the loop instead.
	 */
	if (server_check_ev != NULL)
		event_active(server_check_ev, EV_TIMEOUT, 0);
	else
		server_exit_if_idle();
}

/* server_listen_enable - start or stop watching the listeners */
static void
server_listen_enable(int on)
{
	int     i;

	for (i = 0; i < server_nlisteners; i++) {
		if (server_listen_ev[i] == NULL)
			continue;
		if (on)
			event_add(server_listen_ev[i], NULL);
		else
			event_del(server_listen_ev[i]);
	}
}

/* server_pause_cb - resume accepting after a descriptor shortage */
static void
server_pause_cb(evutil_socket_t unused_fd, short unused_what, void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	server_paused = 0;
	if (!server_stop_flag)
		server_listen_enable(1);
}

/* server_accept_cb - accept all pending connections on one listener */
static void
server_accept_cb(evutil_socket_t fd, short unused_what, void *ctx)
{
	const struct server_listener *lp = ctx;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int     cfd;
	int     n;

	(void) unused_what;
	for (n = 0; n < SERVER_ACCEPT_BURST && !server_stop_flag; n++) {
		sslen = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		cfd = accept4(fd, (struct sockaddr *) &ss, &sslen,
			      SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			switch (errno) {
			case EAGAIN:
#if EWOULDBLOCK != EAGAIN
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case ENETDOWN:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETUNREACH:
				/* The client went away first: next one. */
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				log_warn("accept on %s: %s; not accepting for "
					 "a second", lp->service,
					 strerror(errno));
				if (!server_paused && server_pause_ev) {
					struct timeval tv = {1, 0};

					server_paused = 1;
					server_listen_enable(0);
					evtimer_add(server_pause_ev, &tv);
				}
				return;
			default:
				log_warn("accept on %s: %s", lp->service,
					 strerror(errno));
				return;
			}
		}
		server_ops->accept(cfd, (struct sockaddr *) &ss, sslen, lp);
		if (server_sessions() > server_trim_peak)
			server_trim_peak = server_sessions();
	}
}

/* server_close_listeners - stop accepting for good */
static void
server_close_listeners(void)
{
	int     i;

	for (i = 0; i < server_nlisteners; i++) {
		if (server_listen_ev[i] != NULL) {
			event_free(server_listen_ev[i]);
			server_listen_ev[i] = NULL;
		}
		if (server_listeners[i].fd >= 0) {
			close(server_listeners[i].fd);
			server_listeners[i].fd = -1;
		}
	}
}

/* server_sigterm_cb - stop now */
static void
server_sigterm_cb(evutil_socket_t unused_fd, short unused_what,
		  void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	log_debug("SIGTERM: stopping");
	server_stop_flag = 1;
	server_close_listeners();
	if (server_ops->shutdown)
		server_ops->shutdown();
	log_flush();
	exit(0);
}

/* server_backstop_cb - periodic idle check during a graceful stop */
static void
server_backstop_cb(evutil_socket_t unused_fd, short unused_what,
		   void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	server_exit_if_idle();
}

/* server_sighup_cb - stop accepting, finish open sessions, exit */
static void
server_sighup_cb(evutil_socket_t unused_fd, short unused_what,
		 void *unused_ctx)
{
	struct timeval tv = {1, 0};

	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	if (server_stop_flag)
		return;
	server_stop_flag = 1;
	server_close_listeners();
	log_debug("SIGHUP: not accepting; %zu open sessions",
		  server_sessions());
	server_exit_if_idle();
	server_backstop_ev = event_new(server_evbase, -1, EV_PERSIST,
				       server_backstop_cb, NULL);
	if (server_backstop_ev == NULL)
		log_fatal("event_new: out of memory");
	evtimer_add(server_backstop_ev, &tv);
}

/* server_take_listeners - adopt the sockets master passed at fds 3.. */
static void
server_take_listeners(void)
{
	const char *env = getenv("SENDARIX_LISTEN_FDS");
	char   *end;
	long    n;
	int     i;
	int     fd;
	int     fl;

	if (env == NULL || *env == 0)
		log_fatal("no listening sockets: SENDARIX_LISTEN_FDS is not "
			  "set (this program is started by master)");
	errno = 0;
	n = strtol(env, &end, 10);
	if (errno != 0 || *end != 0 || end == env || n < 1
	    || n > SERVER_MAX_LISTEN)
		log_fatal("bad SENDARIX_LISTEN_FDS value: \"%s\"", env);
	/* Not for our own children, should we ever have any. */
	unsetenv("SENDARIX_LISTEN_FDS");

	server_nlisteners = (int) n;
	server_listeners = xcalloc((size_t) n, sizeof(*server_listeners));
	server_listen_ev = xcalloc((size_t) n, sizeof(*server_listen_ev));
	for (i = 0; i < server_nlisteners; i++) {
		fd = 3 + i;
		if ((fl = fcntl(fd, F_GETFL)) < 0)
			log_fatal("listening socket fd %d: %s", fd,
				  strerror(errno));
		if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			log_fatal("fcntl O_NONBLOCK fd %d: %s", fd,
				  strerror(errno));
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
			log_fatal("fcntl FD_CLOEXEC fd %d: %s", fd,
				  strerror(errno));
		server_listeners[i].fd = fd;
		server_listeners[i].service = server_service;
		server_listeners[i].type = server_type;
	}
}

/* server_usage - complain and exit */
static void
server_usage(const char *prog)
{
	log_fatal("usage: %s -n service -t inet|unix [-c config_dir] [-v] "
		  "[-C] [-o name=value] [args...]", prog);
}

/* server_event_main - the daemon's whole life */
int
server_event_main(int argc, char **argv, const char *program,
		  const struct server_ops *ops)
{
	const char *config_dir = getenv("SENDARIX_CONFIG_DIR");
	const char *queue_dir;
	static struct strbuf *err;	/* static: reachable at a fatal exit */
	static char **overrides;
	int     noverrides = 0;
	int     want_chroot = 0;
	int     ch;
	int     i;
	pid_t   ppid = getppid();
	struct event *ev_term;
	struct event *ev_hup;

	if (ops == NULL || ops->accept == NULL)
		log_panic("server_event_main: no accept callback");
	server_ops = ops;
	/* Before any libevent call: see the XXX at server_trim_cb(). */
	evmem_init();
	if (program == NULL || *program == 0)
		program = argv[0] ? argv[0] : "server";
	log_init(program);
	signal(SIGPIPE, SIG_IGN);

	overrides = xcalloc((size_t) argc + 1, sizeof(char *));
	opterr = 0;
	while ((ch = getopt(argc, argv, "+n:t:c:vo:C")) != -1) {
		switch (ch) {
		case 'n':
			server_service = xstrdup(optarg);
			break;
		case 't':
			if (strcmp(optarg, "inet") != 0
			    && strcmp(optarg, "unix") != 0)
				log_fatal("bad service type: -t %s", optarg);
			server_type = xstrdup(optarg);
			break;
		case 'c':
			config_dir = optarg;
			break;
		case 'v':
			log_verbose++;
			break;
		case 'o':
			overrides[noverrides++] = optarg;
			break;
		case 'C':
			want_chroot = server_chroot = 1;
			break;
		default:
			server_usage(argv[0]);
		}
	}
	if (server_service == NULL)
		server_service = xstrdup(program);
	if (server_type == NULL)
		server_type = xstrdup("unix");

	err = strbuf_new(256, 0);
	if (conf_load(config_dir ? config_dir : SENDARIX_CONFIG_DIR, err) < 0)
		log_fatal("%s", STRBUF_STR(err));
	for (i = 0; i < noverrides; i++) {
		strbuf_reset(err);
		if (conf_override(overrides[i], err) < 0)
			log_fatal("-o %s: %s", overrides[i], STRBUF_STR(err));
	}
	overrides = xfree(overrides);
	log_open(conf_get("maillog_file"), conf_get("syslog_name"),
		 conf_get("syslog_facility"));
	log_debug("service %s type %s starting", server_service, server_type);

	server_take_listeners();

	/*
	 * Go away with master: if master is killed, do not keep serving
	 * sockets nobody supervises. Set again after the privilege drop,
	 * which clears it.
	 */
	prctl(PR_SET_PDEATHSIG, SIGTERM);

	if (ops->pre_init)
		ops->pre_init();

	/*
	 * Change to the queue before dropping privileges: its parent
	 * folders need not be searchable by mail_owner.
	 */
	queue_dir = conf_get("queue_directory");
	if (chdir(queue_dir) < 0)
		log_fatal("chdir %s: %s", queue_dir, strerror(errno));
	if (geteuid() == 0) {
		strbuf_reset(err);
		if (privs_drop(conf_get("mail_owner"),
			       want_chroot ? queue_dir : NULL, err) < 0)
			log_fatal("%s", STRBUF_STR(err));
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	} else if (want_chroot) {
		log_debug("not running as root: chroot %s skipped", queue_dir);
	}
	err = strbuf_free(err);
	if (getppid() != ppid)
		log_fatal("master went away during start-up");

	if ((server_evbase = event_base_new()) == NULL)
		log_fatal("event_base_new failed");
	ev_term = evsignal_new(server_evbase, SIGTERM, server_sigterm_cb, NULL);
	ev_hup = evsignal_new(server_evbase, SIGHUP, server_sighup_cb, NULL);
	server_pause_ev = evtimer_new(server_evbase, server_pause_cb, NULL);
	server_check_ev = event_new(server_evbase, -1, 0, server_check_cb, NULL);
	server_trim_ev = evtimer_new(server_evbase, server_trim_cb, NULL);
	if (ev_term == NULL || ev_hup == NULL || server_pause_ev == NULL
	    || server_check_ev == NULL || server_trim_ev == NULL
	    || event_add(ev_term, NULL) < 0 || event_add(ev_hup, NULL) < 0)
		log_fatal("cannot set up signal events");

	if (ops->post_init)
		ops->post_init(server_evbase);

	for (i = 0; i < server_nlisteners; i++) {
		server_listen_ev[i] = event_new(server_evbase,
						server_listeners[i].fd,
						EV_READ | EV_PERSIST,
						server_accept_cb,
						&server_listeners[i]);
		if (server_listen_ev[i] == NULL
		    || event_add(server_listen_ev[i], NULL) < 0)
			log_fatal("cannot watch listening socket fd %d",
				  server_listeners[i].fd);
	}

	if (event_base_dispatch(server_evbase) < 0)
		log_fatal("event loop failed");

	/* The loop ran dry or a daemon ended it: we are done. */
	log_debug("event loop ended");
	log_flush();
	return (0);
}
