/*
 * log - diagnostics in the Postfix shape
 *
 * SYNOPSIS
 *	int	log_verbose;
 *
 *	void	log_init(const char *service)
 *	void	log_open(const char *maillog_file, const char *syslog_name,
 *			const char *syslog_facility)
 *	void	log_flush(void)
 *	const char *log_progname(void)
 *
 *	void	log_debug(const char *fmt, ...)
 *	void	log_info(const char *fmt, ...)
 *	void	log_warn(const char *fmt, ...)
 *	void	log_error(const char *fmt, ...)
 *	void	log_fatal(const char *fmt, ...)
 *	void	log_panic(const char *fmt, ...)
 *
 * DESCRIPTION
 *	Every line carries the program tag "syslog_name/service[pid]:", so
 *	"sendarix/smtpd[1234]: 0AB12CD34EF: client=..." is what tools that
 *	parse Postfix logs expect. A line about a message starts its text
 *	with the queue ID; that is the caller's job.
 *
 *	log_init() sets the service name (the part after the slash) and logs
 *	to standard error until log_open() is called.
 *
 *	log_open() chooses where lines go: with a non-empty maillog_file, to
 *	that file (opened for append; "/dev/stderr" and "/dev/stdout" write
 *	to those streams), each line in one write(2) so that many processes
 *	can share the file; otherwise to syslog(3) with the given facility
 *	name ("mail", "local0"...). It may be called again after a reload.
 *
 *	log_debug() logs only when log_verbose is non-zero. log_warn() adds
 *	"warning: ", log_error() "error: ", log_fatal() "fatal: " and exits
 *	with status 1, log_panic() "panic: " and aborts (leaving a core).
 *
 * DIAGNOSTICS
 *	A log file that cannot be opened falls back to standard error, with
 *	one warning.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int     log_verbose;

static char log_service[64] = "sendarix";
static char log_tag[128] = "sendarix";
static char log_host[256] = "localhost";
static int log_fd = 2;			/* -1: syslog */
static int log_fd_owned;
static int log_in_fatal;

static const struct {
	const char *name;
	int     code;
}       log_facilities[] = {
	{"mail", LOG_MAIL}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},
	{"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
	{"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},
	{"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
};

/* log_make_tag - "syslog_name/service" */
static void
log_make_tag(const char *syslog_name)
{
	if (strcmp(log_service, syslog_name) == 0 || log_service[0] == 0)
		snprintf(log_tag, sizeof(log_tag), "%s", syslog_name);
	else
		snprintf(log_tag, sizeof(log_tag), "%s/%s", syslog_name,
			 log_service);
}

/* log_init - set the service name, log to stderr */
void
log_init(const char *service)
{
	const char *slash = strrchr(service, '/');

	snprintf(log_service, sizeof(log_service), "%s",
		 slash ? slash + 1 : service);
	log_make_tag("sendarix");
	if (gethostname(log_host, sizeof(log_host)) < 0)
		snprintf(log_host, sizeof(log_host), "localhost");
	log_host[sizeof(log_host) - 1] = 0;
	log_host[strcspn(log_host, ".")] = 0;
}

/* log_open - choose the log destination */
void
log_open(const char *maillog_file, const char *syslog_name,
	 const char *facility)
{
	int     fac = LOG_MAIL;
	size_t  i;
	int     fd;

	log_make_tag(syslog_name && *syslog_name ? syslog_name : "sendarix");
	if (log_fd_owned && log_fd >= 0)
		close(log_fd);
	log_fd_owned = 0;
	if (maillog_file && *maillog_file) {
		if (strcmp(maillog_file, "/dev/stderr") == 0) {
			log_fd = 2;
		} else if (strcmp(maillog_file, "/dev/stdout") == 0) {
			log_fd = 1;
		} else if ((fd = open(maillog_file,
			   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0) {
			log_fd = 2;
			log_warn("open maillog_file %s: %s; logging to stderr",
				 maillog_file, strerror(errno));
		} else {
			log_fd = fd;
			log_fd_owned = 1;
		}
		return;
	}
	for (i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (facility && strcasecmp(facility, log_facilities[i].name) == 0)
			fac = log_facilities[i].code;
	closelog();
	openlog(log_tag, LOG_PID | LOG_NDELAY, fac);
	log_fd = -1;
}

/* log_progname - the tag in front of every line */
const char *
log_progname(void)
{
	return (log_tag);
}

/* log_flush - nothing is buffered across calls; kept as a seam */
void
log_flush(void)
{
}

static pid_t log_pid;

/* log_pid_forget - a child of fork() has a pid of its own */
static void
log_pid_forget(void)
{
	log_pid = 0;
}

/* log_getpid - the pid for the tag, asked once per process, not per line */
static pid_t
log_getpid(void)
{
	static int registered;

	if (!registered) {
		/* Without the fork hook a cached pid could go stale. */
		if (pthread_atfork(NULL, NULL, log_pid_forget) != 0)
			return (getpid());
		registered = 1;
	}
	if (log_pid == 0)
		log_pid = getpid();
	return (log_pid);
}

/* log_emit - format and write one line */
static void
log_emit(int prio, const char *prefix, const char *fmt, va_list ap)
{
	char    text[4096];
	char    line[4500];
	size_t  n;
	int     saved_errno = errno;
	char   *cp;

	vsnprintf(text, sizeof(text), fmt, ap);
	/* One event, one line: never let a CR or LF from input split it. */
	for (cp = text; *cp; cp++)
		if (*cp == '\n' || *cp == '\r')
			*cp = ' ';
	if (log_fd < 0) {
		syslog(prio, "%s%s", prefix, text);
	} else {
		char    stamp[32];
		time_t  now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
		n = (size_t) snprintf(line, sizeof(line), "%s %s %s[%ld]: %s%s\n",
				      stamp, log_host, log_tag, (long) log_getpid(),
				      prefix, text);
		if (n >= sizeof(line)) {
			n = sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		if (write(log_fd, line, n) < 0) {
			/* Nowhere better to say it. */
		}
	}
	errno = saved_errno;
}

#define LOG_BODY(prio, prefix) do { \
	va_list ap; \
	va_start(ap, fmt); \
	log_emit((prio), (prefix), fmt, ap); \
	va_end(ap); \
    } while (0)

/* log_debug - verbose logging */
void
log_debug(const char *fmt,...)
{
	if (log_verbose)
		LOG_BODY(LOG_DEBUG, "");
}

/* log_info - informational */
void
log_info(const char *fmt,...)
{
	LOG_BODY(LOG_INFO, "");
}

/* log_warn - bad input or a failed request; carry on */
void
log_warn(const char *fmt,...)
{
	LOG_BODY(LOG_WARNING, "warning: ");
}

/* log_error - a real error; carry on */
void
log_error(const char *fmt,...)
{
	LOG_BODY(LOG_ERR, "error: ");
}

/* log_fatal - bad config or lost resource; exit */
void
log_fatal(const char *fmt,...)
{
	if (log_in_fatal++ == 0)
		LOG_BODY(LOG_CRIT, "fatal: ");
	/* Ending on an error: no exit handlers, no leak report. */
	fflush(NULL);
	_exit(1);
}

/* log_panic - our own bug; abort with a core */
void
log_panic(const char *fmt,...)
{
	LOG_BODY(LOG_CRIT, "panic: ");
	abort();
}
