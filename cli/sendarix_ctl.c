/*
 * sendarix_ctl - start, stop, reload and status of the mail system
 *
 * SYNOPSIS
 *	#include "sendarix.h"
 *
 *	int	sendarix_ctl_main(int argc, char **argv)
 *
 * DESCRIPTION
 *	argv[0] is the command; main.cf is already loaded.
 *
 *	start	checks the configuration as "sendarix check" does (and
 *		refuses to start when it has errors), refuses when the mail
 *		system is already running, then runs daemon_directory/master
 *		-c CONFIG_DIR, which puts itself in the background once it
 *		is ready; its exit status is ours.
 *	stop	sends SIGTERM to master and waits (up to 30 seconds) until
 *		master has let go of its pid file lock.
 *	reload	checks the configuration as start does and sends SIGHUP
 *		to master only when it has no errors (master checks again,
 *		and keeps the running configuration when it fails).
 *	status	says whether master runs, and its pid.
 *
 *	Whether master runs is decided by the lock on
 *	queue_directory/pid/master.pid, not by the pid in it, so a pid file
 *	left behind by a crash reads as "not running".
 *
 * DIAGNOSTICS
 *	Messages go to standard error as "sendarix: ...". Exit status 0 on
 *	success; 1 on failure, and for stop, reload and status when the
 *	mail system is not running; 2 on a usage error.
 *
 * SEE ALSO
 *	master(8), sendarix(1)
 */

#include <sys/file.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "mastercf.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "sendarix.h"

#define CTL_PID_FILE	"pid/master.pid"
#define CTL_STOP_WAIT	30		/* seconds */

/* ctl_path - dir/name; caller frees */
static char *
ctl_path(const char *dir, const char *name)
{
	size_t  len = strlen(dir) + strlen(name) + 2;
	char   *path = xmalloc(len);

	snprintf(path, len, "%s/%s", dir, name);
	return (path);
}

/* ctl_state - 1: master runs (pid stored), 0: it does not, -1: error */
static int
ctl_state(long *pid)
{
	char   *path = ctl_path(conf_get("queue_directory"), CTL_PID_FILE);
	char    buf[32];
	ssize_t n;
	int     fd;
	int     ret;

	*pid = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT) {
			xfree(path);
			return (0);
		}
		cli_error("open %s: %s", path, strerror(errno));
		xfree(path);
		return (-1);
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		/* Nobody holds the lock: a stale file. */
		ret = 0;
	} else if (errno == EWOULDBLOCK) {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		*pid = strtol(buf, NULL, 10);
		ret = 1;
	} else {
		cli_error("lock %s: %s", path, strerror(errno));
		ret = -1;
	}
	close(fd);
	xfree(path);
	return (ret);
}

/* ctl_start - check the configuration and start master */
static int
ctl_start(void)
{
	char   *master = ctl_path(conf_get("daemon_directory"), "master");
	char   *argv[5];
	long    pid;
	int     status;
	int     ret = 1;
	pid_t   child;

	if (cli_check_config(0) > 0) {
		cli_error("the configuration has errors; not starting");
		goto out;
	}
	switch (ctl_state(&pid)) {
	case 1:
		cli_error("the mail system is already running (pid %ld)", pid);
		goto out;
	case -1:
		goto out;
	}
	if (access(master, X_OK) < 0) {
		cli_error("cannot run %s: %s", master, strerror(errno));
		goto out;
	}
	cli_error("starting the mail system");
	argv[0] = master;
	argv[1] = "-c";
	argv[2] = (char *) conf_config_dir();
	argv[3] = log_verbose ? "-v" : NULL;
	argv[4] = NULL;
	fflush(NULL);
	if ((child = fork()) < 0) {
		cli_error("fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		execv(master, argv);
		cli_error("exec %s: %s", master, strerror(errno));
		_exit(1);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR) {
			cli_error("waitpid: %s", strerror(errno));
			goto out;
		}
	ret = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
out:
	xfree(master);
	return (ret);
}

/* ctl_running - the pid of a running master, or complain */
static int
ctl_running(long *pid)
{
	switch (ctl_state(pid)) {
	case 1:
		if (*pid <= 1) {
			cli_error("bad pid in %s/%s",
				  conf_get("queue_directory"), CTL_PID_FILE);
			return (-1);
		}
		return (0);
	case 0:
		cli_error("the mail system is not running");
		return (-1);
	default:
		return (-1);
	}
}

/* ctl_stop - SIGTERM, then wait for the lock to go */
static int
ctl_stop(void)
{
	struct timespec ts = {0, 100 * 1000 * 1000};
	long    pid;
	long    newpid;
	int     i;

	if (ctl_running(&pid) < 0)
		return (1);
	if (kill((pid_t) pid, SIGTERM) < 0) {
		cli_error("kill %ld: %s", pid, strerror(errno));
		return (1);
	}
	cli_error("stopping the mail system");
	for (i = 0; i < CTL_STOP_WAIT * 10; i++) {
		nanosleep(&ts, NULL);
		if (ctl_state(&newpid) == 0) {
			cli_error("the mail system is stopped");
			return (0);
		}
	}
	cli_error("the mail system did not stop within %d seconds (pid %ld)",
		  CTL_STOP_WAIT, pid);
	return (1);
}

/* ctl_reload - SIGHUP */
static int
ctl_reload(void)
{
	long    pid;

	if (ctl_running(&pid) < 0)
		return (1);
	if (cli_check_config(0) > 0) {
		cli_error("the configuration has errors; not reloading (the "
			  "mail system keeps running as it is)");
		return (1);
	}
	if (kill((pid_t) pid, SIGHUP) < 0) {
		cli_error("kill %ld: %s", pid, strerror(errno));
		return (1);
	}
	cli_error("refreshing the mail system");
	return (0);
}

/* ctl_status - running or not */
static int
ctl_status(void)
{
	long    pid;

	switch (ctl_state(&pid)) {
	case 1:
		cli_error("the mail system is running: PID: %ld", pid);
		return (0);
	case 0:
		cli_error("the mail system is not running");
		return (1);
	default:
		return (1);
	}
}

/* sendarix_ctl_main - start, stop, reload, status */
int
sendarix_ctl_main(int argc, char **argv)
{
	if (argc != 1) {
		cli_error("usage: sendarix %s", argv[0]);
		return (2);
	}
	if (strcmp(argv[0], "start") == 0)
		return (ctl_start());
	if (strcmp(argv[0], "stop") == 0)
		return (ctl_stop());
	if (strcmp(argv[0], "reload") == 0)
		return (ctl_reload());
	if (strcmp(argv[0], "status") == 0)
		return (ctl_status());
	cli_error("unknown command: %s", argv[0]);
	return (2);
}
