/*
 * privs - drop root privileges for good
 *
 * SYNOPSIS
 *	#include "privs.h"
 *
 *	int	privs_lookup(const char *user, uid_t *uid, gid_t *gid,
 *			struct strbuf *err)
 *	int	privs_drop(const char *user, const char *root,
 *			struct strbuf *err)
 *
 * DESCRIPTION
 *	privs_lookup() looks the user up in the password database and
 *	stores its uid and primary gid.
 *
 *	privs_drop() is called by a daemon that was started as root, after
 *	it has done what needs root (reading keys, opening maps). It looks
 *	the user up (before any chroot, while /etc is still visible), sets
 *	the user's supplementary groups with initgroups(3), chroots to root
 *	when that is not NULL (and changes to its top), then sets the real,
 *	effective and saved group and user IDs. Last it checks that the
 *	change cannot be undone: setuid(0) and setgid(0) must fail.
 *
 *	A user whose uid or gid is 0 is refused: dropping to root is no drop.
 *
 * DIAGNOSTICS
 *	Both return 0 on success and -1 on failure, with one line saying why
 *	in err (when err is not NULL). A failure part-way through
 *	privs_drop() leaves the process in an unknown state: the caller must
 *	not carry on serving (the skeleton calls log_fatal).
 *
 * SEE ALSO
 *	server_event(3), master(8)
 */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "privs.h"
#include "strbuf.h"

/* privs_lookup - uid and primary gid of a user */
int
privs_lookup(const char *user, uid_t *uid, gid_t *gid, struct strbuf *err)
{
	struct passwd *pw;

	if (user == NULL || *user == 0) {
		if (err)
			strbuf_sets(err, "mail_owner is empty");
		return (-1);
	}
	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		if (err)
			strbuf_printf(err, "unknown user: %s%s%s", user,
				      errno ? ": " : "",
				      errno ? strerror(errno) : "");
		return (-1);
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return (0);
}

/* privs_drop - become the user for good, optionally chrooted */
int
privs_drop(const char *user, const char *root, struct strbuf *err)
{
	uid_t   uid;
	gid_t   gid;

	if (privs_lookup(user, &uid, &gid, err) < 0)
		return (-1);
	if (uid == 0 || gid == 0) {
		if (err)
			strbuf_printf(err, "user %s has uid or gid 0; "
				      "mail_owner must be an unprivileged user",
				      user);
		return (-1);
	}
	if (initgroups(user, gid) < 0) {
		if (err)
			strbuf_printf(err, "initgroups %s: %s", user,
				      strerror(errno));
		return (-1);
	}
	if (root != NULL) {
		if (chroot(root) < 0) {
			if (err)
				strbuf_printf(err, "chroot %s: %s", root,
					      strerror(errno));
			return (-1);
		}
		if (chdir("/") < 0) {
			if (err)
				strbuf_printf(err, "chdir / in chroot %s: %s",
					      root, strerror(errno));
			return (-1);
		}
	}
	/* Group first: once the uid is gone we may not change the gid. */
	if (setresgid(gid, gid, gid) < 0) {
		if (err)
			strbuf_printf(err, "setresgid %ld: %s", (long) gid,
				      strerror(errno));
		return (-1);
	}
	if (setresuid(uid, uid, uid) < 0) {
		if (err)
			strbuf_printf(err, "setresuid %ld: %s", (long) uid,
				      strerror(errno));
		return (-1);
	}

	/*
	 * Check the drop is permanent: a saved set-user-ID of 0 left behind
	 * would let an attacker who gets code execution become root again.
	 */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0
	    || getuid() != uid || geteuid() != uid
	    || getgid() != gid || getegid() != gid) {
		if (err)
			strbuf_printf(err, "privileges of user %s are not "
				      "dropped for good", user);
		return (-1);
	}
	return (0);
}
