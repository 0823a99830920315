/*
 * master_spawn - start, reap and restart service processes
 *
 * SYNOPSIS
 *	#include "master.h"
 *
 *	void	master_spawn_all(struct master_serv *serv)
 *	void	master_spawn_start_all(void)
 *	void	master_spawn_cancel(struct master_serv *serv)
 *	int	master_reap(int block)
 *	void	master_signal_children(int sig)
 *	void	master_retire_children(void)
 *	size_t	master_child_count(void)
 *
 * DESCRIPTION
 *	master_spawn_all() starts processes of a service until it has
 *	maxproc of them (unless a delayed restart is pending or master is
 *	stopping). master_spawn_start_all() does that for every service.
 *
 *	A child gets the service's listening sockets at fds 3, 4, ...,
 *	every other descriptor above 2 closed, default signal handling,
 *	an environment of only the import_environment names plus
 *	SENDARIX_LISTEN_FDS and SENDARIX_CONFIG_DIR (and SENDARIX_WAKEUP,
 *	the master.cf wakeup column in seconds, when it is set: the service
 *	runs its own periodic work at that interval; and, when master runs
 *	as root, SENDARIX_MAIL_OWNER: mail_owner's uid, gid and groups as
 *	master looked them up at start or at the last reload, so that the
 *	child's privilege drop needs no name service lookup, see privs(3);
 *	import_environment cannot set that one), and the arguments
 *
 *	    path -n NAME -t TYPE -c CONFIG_DIR [-v] [-C] [-o name=value]...
 *		 [args...]
 *
 *	The child gets SIGTERM when master dies (Linux parent-death
 *	signal). Privileges are dropped by the child (server skeleton), not here,
 *	so that its pre_init can read private keys.
 *
 *	master_reap() collects every child that ended (with block, it
 *	waits for one child and returns 0, or -1 when there is none). A child that was
 *	killed by a signal or exited with a non-zero status is logged and
 *	started again after a delay: master_restart_min_delay, doubled for
 *	each consecutive failure up to master_restart_max_delay; a child
 *	that ran for MASTER_STABLE_SECS resets the count. A child that
 *	exits 0 is replaced at once (a child that exits 0 within a second
 *	of its start is delayed like a failure, so a broken command cannot
 *	make master fork in a tight loop). Retired children (from before a
 *	reload) and children that end while master stops are not replaced.
 *
 *	master_signal_children() sends a signal to every child.
 *	master_retire_children() sends SIGHUP to the children retired by a
 *	reload: they stop accepting, finish their sessions and exit 0.
 *	master_child_count() counts the children still alive.
 *
 * DIAGNOSTICS
 *	"warning: process PATH pid N killed by signal S" and
 *	"warning: process PATH pid N exit status S". fork() failures are
 *	warnings; the service is tried again a second later.
 */

#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "privs.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "master.h"

extern char **environ;

/* master_spawn_restart_cb - a delayed restart is due */
static void
master_spawn_restart_cb(evutil_socket_t unused_fd, short unused_what,
			void *ctx)
{
	struct master_serv *serv = ctx;

	(void) unused_fd;
	(void) unused_what;
	serv->restart_pending = 0;
	master_spawn_all(serv);
}

/* master_spawn_later - start the missing processes after a delay */
static void
master_spawn_later(struct master_serv *serv, long delay)
{
	struct timeval tv;

	if (serv->restart_pending)
		return;
	if (serv->restart_ev == NULL) {
		serv->restart_ev = evtimer_new(master_base,
					       master_spawn_restart_cb, serv);
		if (serv->restart_ev == NULL)
			log_fatal("evtimer_new: out of memory");
	}
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	serv->restart_pending = 1;
	evtimer_add(serv->restart_ev, &tv);
}

/* master_spawn_cancel - forget a pending restart */
void
master_spawn_cancel(struct master_serv *serv)
{
	if (serv->restart_pending && serv->restart_ev)
		evtimer_del(serv->restart_ev);
	serv->restart_pending = 0;
}

/* master_spawn_env - the environment of a child; caller frees */
static char **
master_spawn_env(const struct master_serv *serv)
{
	char   *names = xstrdup(conf_get("import_environment"));
	char   *save = NULL;
	char   *w;
	char  **env;
	size_t  n = 0;
	size_t  max = 4 + 1;
	const char *val;

	for (w = names; *w; w++)
		if (*w == ' ' || *w == ',' || *w == '\t')
			max++;
	max++;
	env = xcalloc(max + 1, sizeof(char *));
	for (w = strtok_r(names, ", \t", &save); w && n < max - 5;
	     w = strtok_r(NULL, ", \t", &save)) {
		/* Only master says who mail_owner is. */
		if (strncmp(w, PRIVS_OWNER_ENV, sizeof(PRIVS_OWNER_ENV) - 1) == 0
		    && (w[sizeof(PRIVS_OWNER_ENV) - 1] == 0
			|| w[sizeof(PRIVS_OWNER_ENV) - 1] == '='))
			continue;
		if (strchr(w, '=') != NULL) {
			/* NAME=VALUE sets a value, as in Postfix. */
			env[n++] = xstrdup(w);
		} else if ((val = getenv(w)) != NULL) {
			env[n] = xmalloc(strlen(w) + strlen(val) + 2);
			sprintf(env[n++], "%s=%s", w, val);
		}
	}
	env[n] = xmalloc(sizeof("SENDARIX_LISTEN_FDS=") + 12);
	sprintf(env[n++], "SENDARIX_LISTEN_FDS=%d", serv->nfds);
	env[n] = xmalloc(sizeof("SENDARIX_CONFIG_DIR=")
			 + strlen(master_config_dir));
	sprintf(env[n++], "SENDARIX_CONFIG_DIR=%s", master_config_dir);
	if (serv->wakeup > 0) {
		env[n] = xmalloc(sizeof("SENDARIX_WAKEUP=") + 12);
		sprintf(env[n++], "SENDARIX_WAKEUP=%d", serv->wakeup);
	}
	if (master_owner_env != NULL)
		env[n++] = xstrdup(master_owner_env);
	env[n] = NULL;
	xfree(names);
	return (env);
}

/* master_spawn_argv - the argument list of a child; caller frees */
static char **
master_spawn_argv(const struct master_serv *serv)
{
	char  **argv = xcalloc(serv->nextra + 12, sizeof(char *));
	size_t  n = 0;
	size_t  i;

	argv[n++] = serv->path;
	argv[n++] = "-n";
	argv[n++] = serv->name;
	argv[n++] = "-t";
	argv[n++] = serv->type;
	argv[n++] = "-c";
	argv[n++] = master_config_dir;
	if (log_verbose)
		argv[n++] = "-v";
	if (serv->chroot)
		argv[n++] = "-C";
	for (i = 0; i < serv->nextra; i++)
		argv[n++] = serv->extra[i];
	argv[n] = NULL;
	return (argv);
}

/* master_spawn_child - in the child: set up fds and exec */
static void __attribute__((noreturn))
master_spawn_child(const struct master_serv *serv, char **argv, char **envp,
		   pid_t master_pid)
{
	static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGPIPE,
	SIGUSR1, SIGUSR2};
	sigset_t set;
	int     tmp[64];
	int     nfds = serv->nfds;
	int     i;
	int     saved;

	for (i = 0; i < (int) (sizeof(sigs) / sizeof(sigs[0])); i++)
		signal(sigs[i], SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);

	/*
	 * If master dies (kill -9), its children must not keep serving
	 * sockets nobody supervises, nor keep a new master from binding
	 * them. This survives exec; the skeleton sets it again after the
	 * privilege drop, which clears it.
	 */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != master_pid)
		_exit(1);

	/*
	 * Move the sockets out of the way first, so that putting one at
	 * 3 + i never closes another one that is still to be moved.
	 */
	if (nfds > (int) (sizeof(tmp) / sizeof(tmp[0])))
		nfds = (int) (sizeof(tmp) / sizeof(tmp[0]));
	for (i = 0; i < nfds; i++)
		if ((tmp[i] = fcntl(serv->fds[i], F_DUPFD, 3 + nfds)) < 0)
			_exit(126);
	for (i = 0; i < nfds; i++)
		if (dup2(tmp[i], 3 + i) < 0)
			_exit(126);
	close_range((unsigned) (3 + nfds), ~0U, 0);

	execve(serv->path, argv, envp);
	saved = errno;
	log_open(conf_get("maillog_file"), conf_get("syslog_name"),
		 conf_get("syslog_facility"));
	log_error("service %s: exec %s: %s", serv->name, serv->path,
		  strerror(saved));
	_exit(127);
}

/* master_spawn_one - start one process of a service */
static int
master_spawn_one(struct master_serv *serv)
{
	struct master_proc *proc;
	char  **argv = master_spawn_argv(serv);
	char  **envp = master_spawn_env(serv);
	pid_t   self = getpid();
	pid_t   pid;
	sigset_t all;
	sigset_t saved_mask;
	size_t  i;

	/*
	 * Block every signal across fork(): until the child has reset its
	 * handlers, a signal to it (a SIGHUP that retires it at once) would
	 * run master's libevent handler in the child, which writes to the
	 * signal socket that master shares, and master would take the
	 * child's signal for its own (a reload storm). The child unblocks
	 * after SIG_DFL; a signal that came meanwhile is then acted on.
	 */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved_mask);
	log_flush();
	pid = fork();
	if (pid == 0)
		master_spawn_child(serv, argv, envp, self);
	sigprocmask(SIG_SETMASK, &saved_mask, NULL);
	for (i = 0; envp[i]; i++)
		xfree(envp[i]);
	xfree(envp);
	xfree(argv);
	if (pid < 0) {
		log_warn("service %s: fork: %s", serv->name, strerror(errno));
		return (-1);
	}
	proc = xcalloc(1, sizeof(*proc));
	proc->pid = pid;
	proc->serv = serv;
	proc->path = xstrdup(serv->path);
	proc->started = time(NULL);
	proc->next = master_procs;
	master_procs = proc;
	serv->nproc++;
	log_debug("service %s: started %s pid %ld", serv->name, serv->path,
		  (long) pid);
	return (0);
}

/* master_spawn_all - bring a service up to its process limit */
void
master_spawn_all(struct master_serv *serv)
{
	if (master_stopping || serv->restart_pending)
		return;
	while (serv->nproc < serv->maxproc) {
		if (master_spawn_one(serv) < 0) {
			master_spawn_later(serv, 1);
			return;
		}
	}
}

/* master_spawn_start_all - bring every service up */
void
master_spawn_start_all(void)
{
	struct master_serv *serv;

	for (serv = master_services; serv; serv = serv->next)
		master_spawn_all(serv);
}

/* master_spawn_delay - backoff for the next restart */
static long
master_spawn_delay(struct master_serv *serv)
{
	long    min = conf_get_time("master_restart_min_delay");
	long    max = conf_get_time("master_restart_max_delay");
	long    delay = min;
	int     i;

	if (min < 0)
		min = delay = 0;
	if (max < min)
		max = min;
	for (i = 0; i < serv->failures && delay < max; i++)
		delay = delay ? delay * 2 : 0;
	if (delay > max)
		delay = max;
	return (delay);
}

/* master_reap_one - one child ended */
static void
master_reap_one(struct master_proc *proc, int status)
{
	struct master_serv *serv = proc->serv;
	time_t  lived = time(NULL) - proc->started;
	char    how[64];
	int     abnormal = 1;
	long    delay;

	if (WIFSIGNALED(status)) {
		snprintf(how, sizeof(how), "killed by signal %d",
			 WTERMSIG(status));
		/* A retired child told to go before it set up its handler. */
		if (serv == NULL && WTERMSIG(status) == SIGHUP)
			abnormal = 0;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
	} else {
		snprintf(how, sizeof(how), "exited");
		abnormal = 0;
	}
	if (abnormal && !master_stopping)
		log_warn("process %s pid %ld %s", proc->path, (long) proc->pid,
			 how);
	else
		log_debug("process %s pid %ld %s", proc->path,
			  (long) proc->pid, how);
	if (serv == NULL)
		return;
	serv->nproc--;
	if (master_stopping)
		return;
	if (lived >= MASTER_STABLE_SECS)
		serv->failures = 0;
	if (!abnormal && lived >= MASTER_TOO_SOON_SECS) {
		master_spawn_all(serv);
		return;
	}
	if (!abnormal)
		log_warn("process %s pid %ld exited within %d s of its start",
			 proc->path, (long) proc->pid, MASTER_TOO_SOON_SECS);
	delay = master_spawn_delay(serv);
	serv->failures++;
	if (serv->restart_pending)
		return;
	if (delay > 0) {
		log_info("service %s: restarting in %ld s", serv->name, delay);
		master_spawn_later(serv, delay);
	} else {
		master_spawn_all(serv);
	}
}

/* master_reap - collect every child that ended, or wait for one */
int
master_reap(int block)
{
	struct master_proc **pp;
	struct master_proc *proc;
	pid_t   pid;
	int     status;

	for (;;) {
		pid = waitpid(-1, &status, block ? 0 : WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return (pid < 0 ? -1 : 0);
		for (pp = &master_procs; (proc = *pp) != NULL; pp = &proc->next)
			if (proc->pid == pid)
				break;
		if (proc == NULL)
			continue;
		*pp = proc->next;
		master_reap_one(proc, status);
		xfree(proc->path);
		xfree(proc);
		if (block)
			return (0);
	}
}

/* master_signal_children - send a signal to every child */
void
master_signal_children(int sig)
{
	struct master_proc *proc;

	for (proc = master_procs; proc; proc = proc->next)
		if (kill(proc->pid, sig) < 0 && errno != ESRCH)
			log_warn("kill %ld: %s", (long) proc->pid,
				 strerror(errno));
}

/* master_retire_children - tell the retired children to finish */
void
master_retire_children(void)
{
	struct master_proc *proc;

	for (proc = master_procs; proc; proc = proc->next) {
		if (!proc->hup_pending)
			continue;
		proc->hup_pending = 0;
		if (kill(proc->pid, SIGHUP) < 0 && errno != ESRCH)
			log_warn("kill %ld: %s", (long) proc->pid,
				 strerror(errno));
	}
}

/* master_child_count - children still alive */
size_t
master_child_count(void)
{
	struct master_proc *proc;
	size_t  n = 0;

	for (proc = master_procs; proc; proc = proc->next)
		n++;
	return (n);
}
