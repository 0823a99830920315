/*
 * server_event_test - unit tests for lib/master/server_event.c
 *
 * Each case forks a daemon that runs server_event_main() with a small
 * echo service on a loopback socket passed at fd 3, the way master
 * passes it, and talks to it over TCP: greeting, echo, -o overrides,
 * the privilege drop (when run as root), SIGHUP (graceful: open
 * sessions finish, no new ones) and SIGTERM (shutdown callback, exit 0),
 * and the start-up errors (no sockets, bad options).
 */

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <event2/event.h>

#include "conf.h"
#include "server.h"

static char test_dir[PATH_MAX];
static size_t test_nsessions;
static rlim_t test_nofile;		/* descriptor limit for the daemon */

/* One session of the echo service. */
struct test_sess {
	int     fd;
	struct event *ev;
};

/* test_sess_read - echo what arrives; end on EOF */
static void
test_sess_read(evutil_socket_t fd, short unused_what, void *ctx)
{
	struct test_sess *s = ctx;
	char    buf[512];
	ssize_t n;

	(void) unused_what;
	n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		event_free(s->ev);
		close(s->fd);
		free(s);
		test_nsessions--;
		server_session_done();
		return;
	}
	if (write(fd, buf, (size_t) n) != n) {
		/* Test peer went away. */
	}
}

/* test_accept - greet with mail_name, service, uid and cwd */
static void
test_accept(int fd, const struct sockaddr *unused_sa, socklen_t unused_len,
	    const struct server_listener *lp)
{
	struct test_sess *s = calloc(1, sizeof(*s));
	char    cwd[PATH_MAX];
	char    line[PATH_MAX + 256];
	int     n;

	(void) unused_sa;
	(void) unused_len;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		strcpy(cwd, "?");
	n = snprintf(line, sizeof(line), "hello %s %s %s %ld %s\n",
		     conf_get("mail_name"), server_service_name(), lp->type,
		     (long) geteuid(), cwd);
	if (write(fd, line, (size_t) n) != n) {
		/* Test peer went away. */
	}
	s->fd = fd;
	s->ev = event_new(server_base(), fd, EV_READ | EV_PERSIST,
			  test_sess_read, s);
	event_add(s->ev, NULL);
	test_nsessions++;
}

/* test_sessions - open sessions */
static size_t
test_sessions(void)
{
	return (test_nsessions);
}

/* test_shutdown - say 421 to everyone (SIGTERM) */
static void
test_shutdown(void)
{
	/* The test only checks that the callback runs: mark it in a file. */
	char    path[PATH_MAX + 32];
	FILE   *fp;

	snprintf(path, sizeof(path), "%s/shutdown-called", test_dir);
	if ((fp = fopen(path, "w")) != NULL)
		fclose(fp);
}

static const struct server_ops test_ops = {
	NULL, NULL, test_accept, test_sessions, test_shutdown,
};

/* test_listen - a loopback listener; returns fd, sets port */
static int
test_listen(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int     fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 128), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return (fd);
}

/* test_spawn - fork a daemon; nfds < 0: no SENDARIX_LISTEN_FDS */
static pid_t
test_spawn(int lfd, int nfds, char **argv)
{
	pid_t   pid;
	int     argc = 0;

	while (argv[argc])
		argc++;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (dup2(lfd, 3) < 0)
			_exit(99);
		if (lfd != 3)
			close(lfd);
		if (nfds >= 0) {
			char    n[16];

			snprintf(n, sizeof(n), "%d", nfds);
			setenv("SENDARIX_LISTEN_FDS", n, 1);
		} else {
			unsetenv("SENDARIX_LISTEN_FDS");
		}
		setenv("SENDARIX_CONFIG_DIR", test_dir, 1);
		if (test_nofile > 0) {
			struct rlimit rl = {test_nofile, test_nofile};

			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				_exit(98);
		}
		optind = 0;
		server_event_main(argc, argv, "testd", &test_ops);
		_exit(0);
	}
	return (pid);
}

/* test_connect - connect to the daemon, with a receive timeout */
static int
test_connect(int port)
{
	struct sockaddr_in sin;
	struct timeval tv = {5, 0};
	int     fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((unsigned short) port);
	if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) < 0) {
		close(fd);
		return (-1);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return (fd);
}

/* test_readline - one line from the daemon */
static void
test_readline(int fd, char *buf, size_t len)
{
	size_t  n = 0;
	char    c;

	while (n < len - 1 && read(fd, &c, 1) == 1) {
		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = 0;
}

/* test_wait - wait for a pid to exit within secs; its status, or -1 */
static int
test_wait(pid_t pid, int secs)
{
	int     status;
	int     i;

	for (i = 0; i < secs * 100; i++) {
		pid_t   r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return (status);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return (-1);
}

/* test_setup - a config folder with main.cf and a queue folder */
static int
test_setup(void **unused_state)
{
	char    path[PATH_MAX + 32];
	FILE   *fp;

	(void) unused_state;
	snprintf(test_dir, sizeof(test_dir), "/tmp/server_event_test.XXXXXX");
	if (mkdtemp(test_dir) == NULL)
		return (-1);
	/* The daemon drops to mail_owner when run as root: let it write. */
	chmod(test_dir, 01777);
	snprintf(path, sizeof(path), "%s/main.cf", test_dir);
	if ((fp = fopen(path, "w")) == NULL)
		return (-1);
	fprintf(fp, "queue_directory = %s\nmaillog_file = %s/maillog\n"
		"mail_name = TestMail\n", test_dir, test_dir);
	fclose(fp);
	return (0);
}

/* test_teardown - remove the folder */
static int
test_teardown(void **unused_state)
{
	char    cmd[PATH_MAX + 16];

	(void) unused_state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
	return (system(cmd) == 0 ? 0 : -1);
}

/* test_echo - greeting, -n, -o override, uid, cwd, echo */
static void
test_echo(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc1", "-t", "inet", "-o",
	"mail_name=Overridden", NULL};
	char    line[PATH_MAX + 256];
	char    expect[PATH_MAX + 256];
	long    uid = (long) geteuid();
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid = test_spawn(lfd, 1, argv);
	int     fd;

	(void) unused_state;
	close(lfd);
	fd = test_connect(port);
	assert_true(fd >= 0);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("sendarix");

		if (pw != NULL)
			uid = (long) pw->pw_uid;
	}
	snprintf(expect, sizeof(expect), "hello Overridden svc1 inet %ld %s\n",
		 uid, test_dir);
	test_readline(fd, line, sizeof(line));
	assert_string_equal(line, expect);
	assert_int_equal(write(fd, "ping\n", 5), 5);
	test_readline(fd, line, sizeof(line));
	assert_string_equal(line, "ping\n");
	close(fd);
	kill(pid, SIGTERM);
	assert_int_equal(test_wait(pid, 5), 0);
}

/* test_many - many clients at once, all served by one process */
static void
test_many(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc2", "-t", "inet", NULL};
	char    line[PATH_MAX + 256];
	int     fds[50];
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid = test_spawn(lfd, 1, argv);
	int     i;

	(void) unused_state;
	close(lfd);
	for (i = 0; i < 50; i++) {
		fds[i] = test_connect(port);
		assert_true(fds[i] >= 0);
	}
	for (i = 0; i < 50; i++) {
		test_readline(fds[i], line, sizeof(line));
		assert_memory_equal(line, "hello TestMail svc2", 19);
		assert_int_equal(write(fds[i], "x\n", 2), 2);
	}
	for (i = 0; i < 50; i++) {
		test_readline(fds[i], line, sizeof(line));
		assert_string_equal(line, "x\n");
		close(fds[i]);
	}
	kill(pid, SIGTERM);
	assert_int_equal(test_wait(pid, 5), 0);
}

/* test_sighup - open sessions finish; no new ones; exit 0 at the end */
static void
test_sighup(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc3", "-t", "inet", NULL};
	char    line[PATH_MAX + 256];
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid = test_spawn(lfd, 1, argv);
	int     fd;
	int     fd2;
	int     status;

	(void) unused_state;
	close(lfd);
	fd = test_connect(port);
	assert_true(fd >= 0);
	test_readline(fd, line, sizeof(line));
	assert_memory_equal(line, "hello TestMail svc3", 19);

	kill(pid, SIGHUP);
	/* The listener goes away: new connections are refused. */
	for (status = 0; status < 200; status++) {
		fd2 = test_connect(port);
		if (fd2 < 0)
			break;
		close(fd2);
		usleep(10000);
	}
	assert_true(fd2 < 0);
	/* The open session still works, and the process is still there. */
	assert_int_equal(write(fd, "still\n", 6), 6);
	test_readline(fd, line, sizeof(line));
	assert_string_equal(line, "still\n");
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
	/* Closing the last session ends the process promptly (< 1 s). */
	close(fd);
	status = test_wait(pid, 1);
	assert_int_equal(status, 0);
}

/* test_sighup_idle - with no session, SIGHUP ends the process at once */
static void
test_sighup_idle(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc4", "-t", "inet", NULL};
	char    line[PATH_MAX + 256];
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid = test_spawn(lfd, 1, argv);
	int     fd;

	(void) unused_state;
	close(lfd);
	/* Wait until it serves, so that the signal handler is in place. */
	fd = test_connect(port);
	assert_true(fd >= 0);
	test_readline(fd, line, sizeof(line));
	close(fd);
	usleep(100000);
	kill(pid, SIGHUP);
	assert_int_equal(test_wait(pid, 2), 0);
}

/* test_sigterm - shutdown() runs and the process exits 0 */
static void
test_sigterm(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc5", "-t", "inet", NULL};
	char    line[PATH_MAX + 256];
	char    path[PATH_MAX + 32];
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid = test_spawn(lfd, 1, argv);
	int     fd;

	(void) unused_state;
	close(lfd);
	snprintf(path, sizeof(path), "%s/shutdown-called", test_dir);
	unlink(path);
	fd = test_connect(port);
	assert_true(fd >= 0);
	test_readline(fd, line, sizeof(line));
	kill(pid, SIGTERM);
	assert_int_equal(test_wait(pid, 2), 0);
	close(fd);
	assert_int_equal(access(path, F_OK), 0);
}

/* test_log_has - does the maillog contain text? */
static int
test_log_has(const char *text)
{
	char    path[PATH_MAX + 32];
	char    buf[65536];
	size_t  n;
	FILE   *fp;

	snprintf(path, sizeof(path), "%s/maillog", test_dir);
	if ((fp = fopen(path, "r")) == NULL)
		return (0);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	return (strstr(buf, text) != NULL);
}

/* test_emfile - out of descriptors: warn, pause, and recover */
static void
test_emfile(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc7", "-t", "inet", NULL};
	char    line[PATH_MAX + 256];
	int     fds[40];
	int     greeted = 0;
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid;
	int     fd;
	int     i;

	(void) unused_state;
	test_nofile = 16;
	pid = test_spawn(lfd, 1, argv);
	test_nofile = 0;
	close(lfd);
	for (i = 0; i < 40; i++) {
		fds[i] = test_connect(port);
		assert_true(fds[i] >= 0);
	}
	/* Some are greeted; the rest wait in the backlog. */
	for (i = 0; i < 40; i++) {
		struct pollfd pfd = {fds[i], POLLIN, 0};

		if (poll(&pfd, 1, i == 0 ? 3000 : 50) == 1) {
			test_readline(fds[i], line, sizeof(line));
			if (strncmp(line, "hello TestMail svc7", 19) == 0)
				greeted++;
		}
	}
	assert_true(greeted > 0);
	assert_true(greeted < 40);
	for (i = 0; i < 100 && !test_log_has("not accepting for a second"); i++)
		usleep(20000);
	assert_true(test_log_has("warning: accept on svc7: Too many open files"));
	/* Free the descriptors: the process accepts again by itself. */
	for (i = 0; i < 40; i++)
		close(fds[i]);
	fd = test_connect(port);
	assert_true(fd >= 0);
	test_readline(fd, line, sizeof(line));
	assert_memory_equal(line, "hello TestMail svc7", 19);
	close(fd);
	assert_int_equal(waitpid(pid, &i, WNOHANG), 0);
	kill(pid, SIGTERM);
	assert_int_equal(test_wait(pid, 5), 0);
}

/* test_no_listeners - no SENDARIX_LISTEN_FDS is fatal (exit 1) */
static void
test_no_listeners(void **unused_state)
{
	char   *argv[] = {"testd", "-n", "svc6", "-t", "inet", NULL};
	int     port;
	int     lfd = test_listen(&port);
	pid_t   pid = test_spawn(lfd, -1, argv);
	int     status;

	(void) unused_state;
	close(lfd);
	status = test_wait(pid, 5);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
}

/* test_bad_args - malformed options and environment are fatal */
static void
test_bad_args(void **unused_state)
{
	char   *bad_opt[] = {"testd", "-x", NULL};
	char   *bad_type[] = {"testd", "-t", "tcp", NULL};
	char   *bad_override[] = {"testd", "-o", "no equals sign", NULL};
	char   *plain[] = {"testd", NULL};
	char  **cases[] = {bad_opt, bad_type, bad_override};
	int     port;
	int     lfd = test_listen(&port);
	size_t  i;
	int     status;

	(void) unused_state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		status = test_wait(test_spawn(lfd, 1, cases[i]), 5);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 1);
	}
	/* SENDARIX_LISTEN_FDS that is not a small positive number. */
	status = test_wait(test_spawn(lfd, 0, plain), 5);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	status = test_wait(test_spawn(lfd, 100000, plain), 5);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest server_event_tests[] = {
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_sighup),
		cmocka_unit_test(test_sighup_idle),
		cmocka_unit_test(test_sigterm),
		cmocka_unit_test(test_emfile),
		cmocka_unit_test(test_no_listeners),
		cmocka_unit_test(test_bad_args),
	};

	signal(SIGPIPE, SIG_IGN);
	return (cmocka_run_group_tests(server_event_tests, test_setup,
				       test_teardown));
}
