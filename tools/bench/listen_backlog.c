/*
 * listen_backlog - raise listen()'s backlog in a program (LD_PRELOAD)
 *
 * SYNOPSIS
 *	LD_PRELOAD=BUILD/tools/listen_backlog.so [LISTEN_BACKLOG=n] program
 *
 * DESCRIPTION
 *	A shim for the benchmark: every listen(2) call of the program is
 *	made with a backlog of at least LISTEN_BACKLOG (default SOMAXCONN,
 *	4096 on Linux; the kernel still caps it at net.core.somaxconn).
 *	OpenSMTPD compiles in SMTPD_BACKLOG 5, and smtp-source's
 *	simultaneous connects then overflow its accept queue: each dropped
 *	SYN costs a one-second retransmission, so the bench would measure
 *	the backlog and not OpenSMTPD. With the shim it runs as a build
 *	with a larger SMTPD_BACKLOG would. tools/bench/benchlib.py loads
 *	it into OpenSMTPD only.
 *
 *	A smaller requested backlog is raised; a larger one is kept.
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef int (*LISTEN_FN)(int, int);

/* listen - the libc listen() with the backlog raised */

int	listen(int fd, int backlog)
{
	static LISTEN_FN real_listen;
	const char *env;
	long        want = SOMAXCONN;

	if (real_listen == 0)
		real_listen = (LISTEN_FN) dlsym(RTLD_NEXT, "listen");
	if (real_listen == 0) {
		errno = ENOSYS;
		return (-1);
	}
	if ((env = getenv("LISTEN_BACKLOG")) != 0 && atol(env) > 0)
		want = atol(env);
	if (backlog < want)
		backlog = (int) want;
	return (real_listen(fd, backlog));
}
