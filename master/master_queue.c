/*
 * master_queue - the queue tree and the pid file
 *
 * SYNOPSIS
 *	#include "master.h"
 *
 *	int	master_queue_init(const char *queue_dir, struct strbuf *err)
 *	int	master_pid_lock(struct strbuf *err)
 *	int	master_pid_write(int fd, struct strbuf *err)
 *	void	master_pid_remove(void)
 *
 * DESCRIPTION
 *	master_queue_init() creates queue_directory and the folders under it
 *	that are missing (tmp incoming active deferred hold corrupt private:
 *	0700, public: 0711, maildrop: 3733 so that any user can drop a file
 *	there but not list or remove others' files, and the files get
 *	mail_owner's group so that pickup can read them; pid: 0755), owned
 *	by mail_owner when master runs
 *	as root (pid/ stays root's), and makes it the working directory:
 *	from then on master uses queue-relative paths (short enough for
 *	unix socket names).
 *
 *	master_pid_lock() opens pid/master.pid and takes an exclusive
 *	flock(2) on it without waiting. The lock is held for master's life
 *	(the descriptor is close-on-exec and children close it anyway); a
 *	second master on the same queue fails here. master_pid_write()
 *	writes our pid into the locked file. master_pid_remove() removes
 *	the file at exit, before the lock goes away with the process.
 *
 * DIAGNOSTICS
 *	0 (or the descriptor) on success, -1 with the reason in err.
 */

#include <sys/file.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "qfile.h"
#include "strbuf.h"

#include "master.h"


static int master_pid_fd = -1;

/* master_queue_mkdir - make one folder if missing */
static int
master_queue_mkdir(const char *path, mode_t mode, int owned,
		   struct strbuf *err)
{
	struct stat st;

	if (mkdir(path, mode) < 0) {
		if (errno != EEXIST) {
			strbuf_printf(err, "create folder %s: %s", path,
				      strerror(errno));
			return (-1);
		}
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			strbuf_printf(err, "%s exists and is not a folder",
				      path);
			return (-1);
		}
		return (0);
	}
	if (owned && master_is_root
	    && chown(path, master_owner_uid, master_owner_gid) < 0) {
		strbuf_printf(err, "chown %s: %s", path, strerror(errno));
		return (-1);
	}
	/* mkdir() obeys the umask; say what we mean (after chown: setgid). */
	if (chmod(path, mode) < 0) {
		strbuf_printf(err, "chmod %s: %s", path, strerror(errno));
		return (-1);
	}
	return (0);
}

/* master_queue_init - create the queue tree and change into it */
int
master_queue_init(const char *queue_dir, struct strbuf *err)
{
	size_t  i;

	if (queue_dir == NULL || *queue_dir != '/') {
		strbuf_printf(err, "queue_directory must be an absolute path: "
			      "\"%s\"", queue_dir ? queue_dir : "");
		return (-1);
	}
	if (master_queue_mkdir(queue_dir, 0755, 0, err) < 0)
		return (-1);
	if (chdir(queue_dir) < 0) {
		strbuf_printf(err, "chdir %s: %s", queue_dir, strerror(errno));
		return (-1);
	}
	for (i = 0; i < qfile_dirs_count; i++)
		if (master_queue_mkdir(qfile_dirs[i].name,
				       qfile_dirs[i].mode,
				       qfile_dirs[i].owned, err) < 0)
			return (-1);
	return (0);
}

/* master_pid_lock - lock pid/master.pid, or say who holds it */
int
master_pid_lock(struct strbuf *err)
{
	char    buf[32];
	ssize_t n;
	long    pid;
	int     fd;

	fd = open(MASTER_PID_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0) {
		strbuf_printf(err, "open %s: %s", MASTER_PID_FILE,
			      strerror(errno));
		return (-1);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			n = read(fd, buf, sizeof(buf) - 1);
			buf[n > 0 ? n : 0] = 0;
			pid = strtol(buf, NULL, 10);
			if (pid > 0)
				strbuf_printf(err, "the mail system is already "
					      "running (pid %ld)", pid);
			else
				strbuf_sets(err, "the mail system is already "
					    "running");
		} else {
			strbuf_printf(err, "lock %s: %s", MASTER_PID_FILE,
				      strerror(errno));
		}
		close(fd);
		return (-1);
	}
	master_pid_fd = fd;
	return (fd);
}

/* master_pid_write - record our pid in the locked file */
int
master_pid_write(int fd, struct strbuf *err)
{
	char    buf[32];
	int     len;

	len = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) len, 0) != len) {
		strbuf_printf(err, "write %s: %s", MASTER_PID_FILE,
			      strerror(errno));
		return (-1);
	}
	return (0);
}

/* master_pid_remove - remove the pid file; the lock ends with us */
void
master_pid_remove(void)
{
	if (master_pid_fd < 0)
		return;
	if (unlink(MASTER_PID_FILE) < 0 && errno != ENOENT)
		log_warn("remove %s: %s", MASTER_PID_FILE, strerror(errno));
}
