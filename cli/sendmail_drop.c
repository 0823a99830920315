/*
 * sendmail_drop - write a message into the maildrop when the system is down
 *
 * SYNOPSIS
 *	#include "sendmail.h"
 *
 *	int	sendmail_drop_open(struct sendmail_sub *sub)
 *	int	sendmail_drop_close(struct sendmail_sub *sub)
 *	void	sendmail_drop_free(struct sendmail_sub *sub)
 *
 * DESCRIPTION
 *	When nothing answers on public/sendmail, sendmail(1) keeps the
 *	message in queue_directory/maildrop/, which master makes mode 3733
 *	(sticky, set-group-ID, owned by mail_owner): any user can create a
 *	file there but cannot list the folder or remove another's file.
 *	pickup(8) later submits each file to cleanup as a local submission
 *	by the file's owner. The file format is in docs/ipc.md: the
 *	envelope list (with "version" first), then the content list.
 *
 *	sendmail_drop_open() creates maildrop/.NAME (O_EXCL, mode 0640, the
 *	group that of the folder, so that pickup can read it) and points
 *	sub->fd at it; sendmail_sub_write() then fills it as it would
 *	fill the socket. NAME is unique: time, pid and random bits.
 *
 *	sendmail_drop_close() writes the end of the content (in sub->out),
 *	fsyncs the file, renames .NAME to NAME (only then can pickup see
 *	it, so a half-written file is never picked up), fsyncs the folder
 *	when we may read it, and wakes pickup with one byte on
 *	public/pickup (not an error when nobody listens). It returns 0
 *	with sub->queue_id "maildrop/NAME", or -1 with sub->status 4.
 *
 *	sendmail_drop_free() removes a file that was not renamed.
 *
 * SECURITY
 *	Nothing in the file says who wrote it: pickup takes the owner from
 *	the file system. The file is never opened through a symbolic link.
 *
 * SEE ALSO
 *	pickup(8), sendmail(1), docs/ipc.md
 */

#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "strbuf.h"

#include "sendmail.h"

/* sendmail_drop_open - a new file in maildrop/ */
int
sendmail_drop_open(struct sendmail_sub *sub)
{
	char    path[4096];
	struct timeval tv;
	unsigned int rnd = 0;

	snprintf(path, sizeof(path), "%s/%s", sendmail_queue_dir,
		 SENDMAIL_MAILDROP);
	if ((sub->drop_dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return (sendmail_sub_error(sub, 4, "4.3.0 open %s: %s", path,
					   strerror(errno)));
	gettimeofday(&tv, NULL);
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
		rnd ^= (unsigned int) tv.tv_usec * 2654435761u;
	snprintf(sub->drop_name, sizeof(sub->drop_name), "%lx.%05lx.%ld.%08x",
		 (unsigned long) tv.tv_sec, (unsigned long) tv.tv_usec,
		 (long) getpid(), rnd);
	snprintf(sub->drop_tmp, sizeof(sub->drop_tmp), ".%s", sub->drop_name);
	sub->fd = openat(sub->drop_dir, sub->drop_tmp, O_WRONLY | O_CREAT
			 | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sub->fd < 0) {
		sub->drop_tmp[0] = 0;
		return (sendmail_sub_error(sub, 4, "4.3.0 create a file in "
					   "%s: %s", path, strerror(errno)));
	}
	/* The umask must not hide the file from pickup (the group). */
	if (fchmod(sub->fd, 0640) < 0)
		return (sendmail_sub_error(sub, 4, "4.3.0 chmod %s/%s: %s",
					   path, sub->drop_tmp,
					   strerror(errno)));
	return (0);
}

/* sendmail_drop_trigger - wake pickup; nobody there is fine */
static void
sendmail_drop_trigger(void)
{
	struct sockaddr_un sun;
	char    path[4096];
	int     fd;

	snprintf(path, sizeof(path), "%s/%s", sendmail_queue_dir,
		 SENDMAIL_PICKUP);
	if (strlen(path) >= sizeof(sun.sun_path))
		return;				/* pickup's own scan finds it */
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			 0)) < 0)
		return;
	/* A failure is fine: pickup scans maildrop/ on its own too. */
	if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) == 0)
		(void) !write(fd, "W", 1);
	(void) close(fd);
}

/* sendmail_drop_close - the end of the content, fsync, rename, wake pickup */
int
sendmail_drop_close(struct sendmail_sub *sub)
{
	int     dfd;

	if (attr_write_fd(sub->fd, sub->out) < 0 || fsync(sub->fd) < 0
	    || close(sub->fd) < 0) {
		sub->fd = -1;
		return (sendmail_sub_error(sub, 4, "4.3.0 write %s/%s: %s",
					   SENDMAIL_MAILDROP, sub->drop_tmp,
					   strerror(errno)));
	}
	sub->fd = -1;
	if (renameat(sub->drop_dir, sub->drop_tmp, sub->drop_dir,
		     sub->drop_name) < 0)
		return (sendmail_sub_error(sub, 4, "4.3.0 rename %s/%s: %s",
					   SENDMAIL_MAILDROP, sub->drop_tmp,
					   strerror(errno)));
	sub->drop_tmp[0] = 0;
	/* Ordinary users may not read maildrop/ (mode 3733): then no fsync. */
	if ((dfd = openat(sub->drop_dir, ".", O_RDONLY | O_DIRECTORY
			  | O_CLOEXEC)) >= 0) {
		(void) fsync(dfd);
		(void) close(dfd);
	}
	snprintf(sub->queue_id, sizeof(sub->queue_id), "%s/%s",
		 SENDMAIL_MAILDROP, sub->drop_name);
	sendmail_drop_trigger();
	return (0);
}

/* sendmail_drop_free - remove an unfinished file */
void
sendmail_drop_free(struct sendmail_sub *sub)
{
	if (sub->drop_dir < 0)
		return;
	if (sub->drop_tmp[0])
		(void) unlinkat(sub->drop_dir, sub->drop_tmp, 0);
	(void) close(sub->drop_dir);
	sub->drop_dir = -1;
}
