/*
 * master - the Sendarix process supervisor
 *
 * SYNOPSIS
 *	master [-c config_dir] [-f] [-v]
 *
 * DESCRIPTION
 *	master reads main.cf and master.cf, creates the queue tree, makes
 *	every listening socket that master.cf asks for (inet and unix),
 *	starts each service's processes and hands them the sockets, restarts
 *	a process that dies (with backoff), reloads on SIGHUP and stops
 *	everything on SIGTERM. Normally it is started by "sendarix start".
 *
 *	Before it forks anything (also with -f) master checks the
 *	configuration as "sendarix check" does (conf_check(3)): a parameter
 *	value that is not of its type or out of its range, also through a
 *	master.cf -o override, or a master.cf command that is not an
 *	executable program, ends it with exit status 1 and one line per
 *	problem on standard error (and in the log).
 *
 *	Without -f master puts itself in the background; the command that
 *	started it exits only once master is ready (sockets bound, pid file
 *	written): with status 0, or with status 1 and the reason on standard
 *	error.
 *
 *	When started as root, master stays root (it binds ports and forks)
 *	and the queue tree belongs to mail_owner; every service drops to
 *	mail_owner itself after its pre_init. When started as an ordinary
 *	user, everything runs as that user.
 *
 * OPTIONS
 *	-c config_dir	read main.cf and master.cf there (default: the
 *			SENDARIX_CONFIG_DIR environment variable, else the
 *			built-in configuration directory).
 *	-f		stay in the foreground (systemd, tests).
 *	-v		verbose logging; passed on to the services.
 *
 * SIGNALS
 *	SIGHUP		reload: reread main.cf and master.cf (a file that
 *			does not parse, or fails the start-up checks, is a
 *			warning and the old settings stay, with the running
 *			processes), keep the sockets of services that still
 *			exist, start fresh processes with the new settings
 *			and let the old ones finish their sessions.
 *	SIGTERM, SIGINT	stop: SIGTERM to every process, SIGKILL to those
 *			still there after master_stop_timeout, remove the
 *			unix sockets and the pid file, exit 0.
 *	SIGCHLD		reap and restart.
 *
 * FILES
 *	config_dir/main.cf, config_dir/master.cf
 *	queue_directory/pid/master.pid	pid file, locked while running
 *	queue_directory/private/, public/	unix service sockets
 *
 * CONFIGURATION PARAMETERS
 *	queue_directory, daemon_directory, mail_owner, import_environment,
 *	default_process_limit, master_restart_min_delay,
 *	master_restart_max_delay, master_stop_timeout, inet_interfaces,
 *	inet_protocols, maillog_file, syslog_name, syslog_facility.
 *
 * SECURITY
 *	master is the only program that stays root. It reads only its own
 *	configuration files (which must be trusted: they name the programs
 *	it runs) and no network input at all; it never accepts a
 *	connection. Children get a minimal environment and no descriptors
 *	other than their listening sockets and standard I/O.
 *
 * DIAGNOSTICS
 *	"daemon started -- version V, configuration DIR",
 *	"reload -- version V, configuration DIR", "terminating on signal N",
 *	"warning: process PATH pid N killed by signal S" (or "exit status S").
 *	Start-up problems (bad configuration, a port in use, another master
 *	on the same queue: "the mail system is already running (pid N)")
 *	end master with exit status 1.
 *
 * SEE ALSO
 *	master(8), sendarix(1), docs/ipc.md
 */

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "conf_check.h"
#include "log.h"
#include "mastercf.h"
#include "privs.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "master.h"

struct event_base *master_base;
char   *master_config_dir;
int     master_stopping;
int     master_is_root;
uid_t   master_owner_uid;
gid_t   master_owner_gid;
char   *master_owner_env;
struct master_serv *master_services;
struct master_proc *master_procs;

static int master_status_fd = -1;	/* to the parent, until ready */
static int master_log_on_stderr = 1;	/* do log lines reach the user? */
static char *master_queue_dir;
static struct event *master_stop_ev;

/* master_fatal - log, tell whoever waits for our start-up, and exit */
void
master_fatal(const char *fmt,...)
{
	char    msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (master_status_fd >= 0) {
		if (write(master_status_fd, msg, strlen(msg)) < 0) {
			/* The parent will say that we died. */
		}
	} else if (!master_log_on_stderr) {
		fprintf(stderr, "sendarix/master: fatal: %s\n", msg);
	}
	master_pid_remove();
	log_fatal("%s", msg);
}

/* master_usage - complain */
static void __attribute__((noreturn))
master_usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-c config_dir] [-f] [-v]\n", prog);
	exit(2);
}

/* master_detach_stdio - standard I/O to /dev/null */
static void
master_detach_stdio(void)
{
	int     fd;

	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

/* master_daemonize - go to the background; the parent waits for "ready" */
static void
master_daemonize(void)
{
	char    buf[1024];
	size_t  len = 0;
	ssize_t n;
	int     fds[2];
	int     status;
	pid_t   pid;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		fprintf(stderr, "sendarix/master: fatal: pipe: %s\n",
			strerror(errno));
		exit(1);
	}
	if ((pid = fork()) < 0) {
		fprintf(stderr, "sendarix/master: fatal: fork: %s\n",
			strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		close(fds[0]);
		master_status_fd = fds[1];
		if (setsid() < 0)
			master_fatal("setsid: %s", strerror(errno));

		/*
		 * Let go of the caller's terminal or pipes now: children
		 * inherit 0-2, and whoever waits for our start-up output
		 * must see EOF once the parent exits. Errors from here on go
		 * through the status pipe.
		 */
		master_detach_stdio();
		return;
	}
	close(fds[1]);
	while (len < sizeof(buf) - 1) {
		n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t) n;
	}
	buf[len] = 0;
	if (strcmp(buf, "ok") == 0)
		exit(0);
	if (len > 0) {
		fprintf(stderr, "sendarix/master: fatal: %s\n", buf);
	} else {
		/* Died before saying anything (log_fatal from a library). */
		if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status))
			fprintf(stderr, "sendarix/master: fatal: master was "
				"killed by signal %d during start-up\n",
				WTERMSIG(status));
		else
			fprintf(stderr, "sendarix/master: fatal: master did "
				"not start; see the mail log\n");
	}
	exit(1);
}

/* master_ready - tell the waiting parent that we are up */
static void
master_ready(void)
{
	if (master_status_fd < 0)
		return;
	if (write(master_status_fd, "ok", 2) != 2) {
		/* The parent is gone; nobody to tell. */
	}
	close(master_status_fd);
	master_status_fd = -1;
}

/* master_log_open - (re)open the log as main.cf says */
static void
master_log_open(void)
{
	const char *file = conf_get("maillog_file");

	log_open(file, conf_get("syslog_name"), conf_get("syslog_facility"));
	master_log_on_stderr = (strcmp(file, "/dev/stderr") == 0);
}

/* master_check_start - report a problem found before start-up */
static void
master_check_start(int level, const char *msg, void *unused_ctx)
{
	(void) unused_ctx;
	if (level != CONF_CHECK_ERROR) {
		log_warn("%s", msg);
		return;
	}
	if (!master_log_on_stderr)
		fprintf(stderr, "sendarix/master: fatal: %s\n", msg);
	log_error("%s", msg);
}

/* master_check_reload - report a problem found by a reload */
static void
master_check_reload(int level, const char *msg, void *unused_ctx)
{
	(void) unused_ctx;
	log_warn("reload: %s%s", level == CONF_CHECK_ERROR ? "" :
		 "(warning) ", msg);
}

/* master_owner_child - in the lookup process: report on fd, exit */
static void __attribute__((noreturn))
master_owner_child(const char *user, int fd)
{
	struct privs_creds creds;
	struct strbuf *out = strbuf_new(1024, 0);
	struct strbuf *why = strbuf_new(256, 0);
	size_t  off;
	ssize_t n;

	/* "+" and the value, or "-" and why not. */
	if (privs_creds_lookup(user, &creds, why) < 0) {
		strbuf_sets(out, "-");
		strbuf_appends(out, STRBUF_STR(why));
	} else {
		strbuf_sets(out, "+");
		(void) privs_creds_format(&creds, out);
	}
	for (off = 0; off < out->len; off += (size_t) n)
		if ((n = write(fd, out->data + off, out->len - off)) <= 0)
			_exit(1);
	_exit(0);
}

/*
 * master_owner_lookup - mail_owner's uid, gid and groups, formatted for
 * PRIVS_OWNER_ENV, looked up in a short-lived child: getgrouplist()
 * asks every group module in nsswitch.conf, and each one it loads
 * (libnss_systemd and its libraries) would stay in master for good
 */
static int
master_owner_lookup(const char *user, struct strbuf *out)
{
	char    buf[1024];
	int     fds[2];
	int     status;
	pid_t   pid;
	ssize_t n;
	sigset_t all;
	sigset_t saved_mask;

	strbuf_reset(out);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		strbuf_printf(out, "pipe: %s", strerror(errno));
		return (-1);
	}

	/*
	 * As for a service (master_spawn.c): a signal must not run master's
	 * libevent handler in the child. The child never unblocks; it only
	 * looks the user up and exits.
	 */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved_mask);
	log_flush();
	if ((pid = fork()) == 0) {
		close(fds[0]);
		master_owner_child(user, fds[1]);
	}
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		strbuf_printf(out, "fork: %s", strerror(errno));
		return (-1);
	}
	while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || strbuf_append(out, buf, (size_t) n) < 0)
			break;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		 /* until it is reaped */ ;
	if (n != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0
	    || out->len == 0 || (out->data[0] != '+' && out->data[0] != '-')) {
		strbuf_setf(out, "lookup process failed");
		return (-1);
	}
	if (out->data[0] == '-') {
		strbuf_consume(out, 1);
		return (-1);
	}
	strbuf_consume(out, 1);
	return (0);
}

/*
 * master_owner_refresh - look mail_owner up (uid, gid, groups) for the
 * children: they use that instead of asking the name service, which
 * would load its modules (libnss_systemd, ...) into every daemon
 */
static void
master_owner_refresh(void)
{
	const char *user = conf_get("mail_owner");
	struct privs_creds creds;
	struct strbuf *buf;
	struct strbuf *why;

	master_owner_env = xfree(master_owner_env);
	if (!master_is_root)
		return;
	buf = strbuf_new(1024, 16384);
	why = strbuf_new(128, 0);

	/*
	 * The services parse the value with the same code and ignore one
	 * that does not parse; checking here says so once, in master's log.
	 */
	if (master_owner_lookup(user, buf) < 0) {
		/* The services look it up themselves, and say what fails. */
		log_warn("mail_owner %s: %s; the services look it up "
			 "themselves", user, STRBUF_STR(buf));
	} else if (privs_creds_parse(STRBUF_STR(buf), &creds, why) < 0
		   || strcmp(creds.user, user) != 0) {
		log_warn("mail_owner %s: lookup gave \"%s\"; the services "
			 "look it up themselves", user, STRBUF_STR(buf));
	} else {
		master_owner_env = xmalloc(sizeof(PRIVS_OWNER_ENV) + buf->len + 1);
		sprintf(master_owner_env, "%s=%s", PRIVS_OWNER_ENV,
			STRBUF_STR(buf));
		log_debug("services get %s", master_owner_env);
	}
	strbuf_free(why);
	strbuf_free(buf);
}

/* master_load_mastercf - read config_dir/master.cf */
static struct mastercf *
master_load_mastercf(struct strbuf *err)
{
	char   *path = xmalloc(strlen(master_config_dir) + sizeof("/master.cf"));
	struct mastercf *cf;

	sprintf(path, "%s/master.cf", master_config_dir);
	cf = mastercf_load(path, err);
	xfree(path);
	return (cf);
}

/* master_finish - clean up and exit after a stop */
static void __attribute__((noreturn))
master_finish(void)
{
	struct master_serv *serv;

	for (serv = master_services; serv; serv = serv->next)
		master_listen_close(serv, 1);
	master_pid_remove();
	log_info("stopped");
	log_flush();
	exit(0);
}

/* master_stop_timeout_cb - children that ignore SIGTERM get SIGKILL */
static void
master_stop_timeout_cb(evutil_socket_t unused_fd, short unused_what,
		       void *unused_ctx)
{
	(void) unused_fd;
	(void) unused_what;
	(void) unused_ctx;
	if (master_child_count() > 0) {
		log_warn("%zu processes still running after "
			 "master_stop_timeout; killing them",
			 master_child_count());
		master_signal_children(SIGKILL);
		while (master_child_count() > 0 && master_reap(1) == 0)
			 /* until all are gone */ ;
	}
	master_finish();
}

/* master_sigterm_cb - stop */
static void
master_sigterm_cb(evutil_socket_t sig, short unused_what, void *unused_ctx)
{
	struct master_serv *serv;
	struct timeval tv;

	(void) unused_what;
	(void) unused_ctx;
	if (master_stopping)
		return;
	log_info("terminating on signal %d", (int) sig);
	master_stopping = 1;
	for (serv = master_services; serv; serv = serv->next)
		master_spawn_cancel(serv);
	master_signal_children(SIGTERM);
	if (master_child_count() == 0)
		master_finish();
	tv.tv_sec = conf_get_time("master_stop_timeout");
	tv.tv_usec = 0;
	if (tv.tv_sec < 0)
		tv.tv_sec = 0;
	master_stop_ev = evtimer_new(master_base, master_stop_timeout_cb, NULL);
	if (master_stop_ev == NULL || evtimer_add(master_stop_ev, &tv) < 0)
		master_stop_timeout_cb(-1, 0, NULL);
}

/* master_sigchld_cb - reap; finish a stop when the last child is gone */
static void
master_sigchld_cb(evutil_socket_t unused_sig, short unused_what,
		  void *unused_ctx)
{
	(void) unused_sig;
	(void) unused_what;
	(void) unused_ctx;
	master_reap(0);
	if (master_stopping && master_child_count() == 0)
		master_finish();
}

/* master_sighup_cb - reload */
static void
master_sighup_cb(evutil_socket_t unused_sig, short unused_what,
		 void *unused_ctx)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct conf_saved *saved;
	struct mastercf *cf;
	int     errors;

	(void) unused_sig;
	(void) unused_what;
	(void) unused_ctx;
	if (master_stopping) {
		strbuf_free(err);
		return;
	}
	log_info("reload -- version %s, configuration %s", SENDARIX_VERSION,
		 master_config_dir);

	/* Check both files before changing anything. */
	if ((cf = master_load_mastercf(err)) == NULL) {
		log_warn("reload: %s; keeping the old configuration",
			 STRBUF_STR(err));
		strbuf_free(err);
		return;
	}
	saved = conf_save();
	if (conf_load(master_config_dir, err) < 0) {
		/* conf_load() leaves the earlier settings alone. */
		log_warn("reload: %s; keeping the old configuration",
			 STRBUF_STR(err));
		conf_saved_free(saved);
		mastercf_free(cf);
		strbuf_free(err);
		return;
	}
	if ((errors = conf_check(cf, 0, master_check_reload, NULL)) > 0) {
		/* The processes running now keep their settings, too. */
		conf_restore(saved);
		log_warn("reload: %d error%s in the configuration; keeping the "
			 "old configuration", errors, errors == 1 ? "" : "s");
		mastercf_free(cf);
		strbuf_free(err);
		return;
	}
	conf_saved_free(saved);
	master_log_open();
	master_owner_refresh();
	if (strcmp(conf_get("queue_directory"), master_queue_dir) != 0)
		log_warn("reload: queue_directory changed to %s; that takes "
			 "a restart (still using %s)",
			 conf_get("queue_directory"), master_queue_dir);

	master_serv_configure(cf, 0);
	mastercf_free(cf);
	master_spawn_start_all();
	master_retire_children();
	strbuf_free(err);
}

/* master_config_path - the configuration directory as an absolute path */
static char *
master_config_path(const char *dir)
{
	char   *abs = realpath(dir, NULL);

	if (abs == NULL) {
		fprintf(stderr, "sendarix/master: fatal: configuration "
			"directory %s: %s\n", dir, strerror(errno));
		exit(1);
	}
	return (abs);
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("SENDARIX_CONFIG_DIR");
	static struct strbuf *err;	/* static: reachable at a fatal exit */
	struct mastercf *cf;
	struct event *ev;
	int     foreground = 0;
	int     errors;
	int     pid_fd;
	int     ch;
	static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};
	size_t  i;

	log_init("master");
	while ((ch = getopt(argc, argv, "c:fv")) != -1) {
		switch (ch) {
		case 'c':
			dir = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'v':
			log_verbose++;
			break;
		default:
			master_usage(argv[0]);
		}
	}
	if (optind != argc)
		master_usage(argv[0]);
	umask(022);
	master_config_dir = master_config_path(dir ? dir : SENDARIX_CONFIG_DIR);

	/*
	 * Read and check everything before forking anything: a bad
	 * configuration ends the start here, with the reasons on stderr,
	 * not in a child that crashes over and over.
	 */
	err = strbuf_new(256, 0);
	if (conf_load(master_config_dir, err) < 0)
		master_fatal("%s", STRBUF_STR(err));
	master_log_open();
	if ((cf = master_load_mastercf(err)) == NULL)
		master_fatal("%s", STRBUF_STR(err));
	if ((errors = conf_check(cf, 0, master_check_start, NULL)) > 0)
		master_fatal("%d error%s in the configuration; not starting",
			     errors, errors == 1 ? "" : "s");
	if (!foreground) {
		master_daemonize();
		master_log_open();
	}

	master_is_root = (geteuid() == 0);
	if (master_is_root) {
		strbuf_reset(err);
		if (privs_lookup(conf_get("mail_owner"), &master_owner_uid,
				 &master_owner_gid, err) < 0)
			master_fatal("mail_owner: %s", STRBUF_STR(err));
		if (master_owner_uid == 0)
			master_fatal("mail_owner %s must not be root",
				     conf_get("mail_owner"));
		master_owner_refresh();
	}
	master_queue_dir = xstrdup(conf_get("queue_directory"));
	strbuf_reset(err);
	if (master_queue_init(master_queue_dir, err) < 0)
		master_fatal("%s", STRBUF_STR(err));
	strbuf_reset(err);
	if ((pid_fd = master_pid_lock(err)) < 0)
		master_fatal("%s", STRBUF_STR(err));
	strbuf_reset(err);
	if (master_pid_write(pid_fd, err) < 0)
		master_fatal("%s", STRBUF_STR(err));

	signal(SIGPIPE, SIG_IGN);
	if ((master_base = event_base_new()) == NULL)
		master_fatal("event_base_new failed");
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ev = evsignal_new(master_base, sigs[i],
				  sigs[i] == SIGCHLD ? master_sigchld_cb :
				  sigs[i] == SIGHUP ? master_sighup_cb :
				  master_sigterm_cb, NULL);
		if (ev == NULL || evsignal_add(ev, NULL) < 0)
			master_fatal("cannot handle signal %d", sigs[i]);
	}

	master_serv_configure(cf, 1);
	mastercf_free(cf);
	err = strbuf_free(err);

	log_info("daemon started -- version %s, configuration %s",
		 SENDARIX_VERSION, master_config_dir);
	master_spawn_start_all();
	master_ready();

	if (event_base_dispatch(master_base) < 0)
		log_fatal("event loop failed");
	master_finish();
}
