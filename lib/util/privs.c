/*
 * privs - drop root privileges for good
 *
 * SYNOPSIS
 *	#include "privs.h"
 *
 *	int	privs_lookup(const char *user, uid_t *uid, gid_t *gid,
 *			struct strbuf *err)
 *	int	privs_creds_lookup(const char *user, struct privs_creds *creds,
 *			struct strbuf *err)
 *	int	privs_creds_format(const struct privs_creds *creds,
 *			struct strbuf *out)
 *	int	privs_creds_parse(const char *value, struct privs_creds *creds,
 *			struct strbuf *err)
 *	int	privs_drop(const char *user, const char *root,
 *			struct strbuf *err)
 *
 * DESCRIPTION
 *	privs_lookup() looks the user up in the password database and
 *	stores its uid and primary gid.
 *
 *	privs_creds_lookup() does the same and adds the user's
 *	supplementary groups (getgrouplist(3), the primary gid included):
 *	everything privs_drop() needs. master calls it as root, at start
 *	and at each reload, and hands the result to the services it
 *	starts in the environment variable PRIVS_OWNER_ENV
 *	(SENDARIX_MAIL_OWNER), formatted by privs_creds_format() as
 *
 *	    name:uid:gid:g1,g2,...
 *
 *	(decimal numbers; the group list may be empty; at most
 *	PRIVS_MAX_GROUPS groups). privs_creds_parse() reads that format
 *	back; it accepts nothing else (no signs, spaces, empty numbers or
 *	trailing text).
 *
 *	privs_drop() is called by a daemon that was started as root, after
 *	it has done what needs root (reading keys, opening maps). When
 *	PRIVS_OWNER_ENV is set, parses, and names the user asked for, it
 *	takes the uid, gid and groups from there and makes no name service
 *	call: with nsswitch.conf modules such as systemd, each lookup would
 *	load a shared library (and its dependencies) into every daemon and
 *	may ask another daemon over IPC. Otherwise (no master, a master.cf
 *	-o mail_owner override, or a value that does not parse, which is
 *	logged as a warning) it looks the user up itself, before any
 *	chroot while /etc is still visible, and sets the supplementary
 *	groups with initgroups(3). Either way it then chroots to root when
 *	that is not NULL (and changes to its top), sets the real,
 *	effective and saved group and user IDs, and checks that the change
 *	cannot be undone: setuid(0) and setgid(0) must fail.
 *
 *	A user whose uid or gid is 0 is refused: dropping to root is no
 *	drop. That holds for a handed-down value too.
 *
 * DIAGNOSTICS
 *	All return 0 on success and -1 on failure, with one line saying why
 *	in err (when err is not NULL). A failure part-way through
 *	privs_drop() leaves the process in an unknown state: the caller must
 *	not carry on serving (the skeleton calls log_fatal).
 *	privs_creds_format() fails only when out reaches its limit.
 *
 * SECURITY
 *	The environment of a daemon started as root was set by root
 *	(master, or whoever ran it by hand), like its configuration. A
 *	handed-down value is still only used for the user the daemon asks
 *	for (after a reload that changed mail_owner, a process started
 *	before it that somehow drops late would look the new name up, not
 *	use the old value), and never for uid or gid 0.
 *
 * SEE ALSO
 *	server_event(3), master(8)
 */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
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

/* privs_creds_user - a user name that fits the handed-down format */
static int
privs_creds_user(const char *user, size_t len)
{
	return (len > 0 && len < PRIVS_MAX_USER
		&& strcspn(user, ":,") >= len);
}

/* privs_creds_lookup - uid, gid and groups of a user */
int
privs_creds_lookup(const char *user, struct privs_creds *creds,
		   struct strbuf *err)
{
	int     n = PRIVS_MAX_GROUPS;

	if (privs_lookup(user, &creds->uid, &creds->gid, err) < 0)
		return (-1);
	if (!privs_creds_user(user, strlen(user))) {
		if (err)
			strbuf_printf(err, "user name %s is too long or has "
				      "a ':' or ','", user);
		return (-1);
	}
	if (getgrouplist(user, creds->gid, creds->groups, &n) < 0) {
		if (err)
			strbuf_printf(err, "user %s is in more than %d groups",
				      user, PRIVS_MAX_GROUPS);
		return (-1);
	}
	creds->ngroups = n;
	strcpy(creds->user, user);
	return (0);
}

/* privs_creds_format - name:uid:gid:g1,g2,... */
int
privs_creds_format(const struct privs_creds *creds, struct strbuf *out)
{
	int     i;

	if (strbuf_printf(out, "%s:%lu:%lu:", creds->user,
			  (unsigned long) creds->uid,
			  (unsigned long) creds->gid) < 0)
		return (-1);
	for (i = 0; i < creds->ngroups; i++)
		if (strbuf_printf(out, "%s%lu", i ? "," : "",
				  (unsigned long) creds->groups[i]) < 0)
			return (-1);
	return (0);
}

/* privs_creds_id - one decimal uid or gid; the end of it, or NULL */
static const char *
privs_creds_id(const char *cp, unsigned long *id)
{
	unsigned long val = 0;
	const char *start = cp;

	/* By hand: strtoul() takes signs and spaces, and wraps "-1". */
	for (; *cp >= '0' && *cp <= '9'; cp++) {
		if (val > (unsigned long) (id_t) -1 / 10)
			return (NULL);
		val = val * 10 + (unsigned long) (*cp - '0');
	}
	/* (id_t) -1 means "no change" to setresuid(): not an id. */
	if (cp == start || cp - start > 10 || val >= (unsigned long) (id_t) -1)
		return (NULL);
	*id = val;
	return (cp);
}

/* privs_creds_parse - read name:uid:gid:g1,g2,... */
int
privs_creds_parse(const char *value, struct privs_creds *creds,
		  struct strbuf *err)
{
	const char *cp;
	unsigned long id;
	size_t  len;

	creds->ngroups = 0;
	if ((cp = strchr(value, ':')) == NULL)
		goto bad;
	len = (size_t) (cp - value);
	if (!privs_creds_user(value, len))
		goto bad;
	memcpy(creds->user, value, len);
	creds->user[len] = 0;
	if ((cp = privs_creds_id(cp + 1, &id)) == NULL || *cp != ':')
		goto bad;
	creds->uid = (uid_t) id;
	if ((cp = privs_creds_id(cp + 1, &id)) == NULL || *cp != ':')
		goto bad;
	creds->gid = (gid_t) id;
	if (*++cp == 0)
		return (0);
	for (;;) {
		if (creds->ngroups >= PRIVS_MAX_GROUPS
		    || (cp = privs_creds_id(cp, &id)) == NULL)
			goto bad;
		creds->groups[creds->ngroups++] = (gid_t) id;
		if (*cp == 0)
			return (0);
		if (*cp++ != ',')
			goto bad;
	}

bad:
	if (err)
		strbuf_printf(err, "malformed %s value (not user:uid:gid:groups)",
			      PRIVS_OWNER_ENV);
	return (-1);
}

/* privs_drop_ids - set groups, chroot, set gid and uid, verify */
static int
privs_drop_ids(const char *user, uid_t uid, gid_t gid,
	       const struct privs_creds *creds, const char *root,
	       struct strbuf *err)
{
	if (uid == 0 || gid == 0) {
		if (err)
			strbuf_printf(err, "user %s has uid or gid 0; "
				      "mail_owner must be an unprivileged user",
				      user);
		return (-1);
	}
	if (creds != NULL) {
		if (setgroups((size_t) creds->ngroups, creds->groups) < 0) {
			if (err)
				strbuf_printf(err, "setgroups for %s: %s", user,
					      strerror(errno));
			return (-1);
		}
	} else if (initgroups(user, gid) < 0) {
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

/* privs_drop - become the user for good, optionally chrooted */
int
privs_drop(const char *user, const char *root, struct strbuf *err)
{
	struct privs_creds creds;
	const char *value = getenv(PRIVS_OWNER_ENV);
	struct strbuf *why;
	uid_t   uid;
	gid_t   gid;

	/*
	 * What master looked up for us, when it is for this user. A value
	 * that does not parse is master's bug or someone's mistake, not a
	 * reason to stop the mail: the name service still knows the answer.
	 */
	if (value != NULL && user != NULL) {
		why = strbuf_new(128, 0);
		if (privs_creds_parse(value, &creds, why) < 0)
			log_warn("%s; looking up %s instead", STRBUF_STR(why),
				 user);
		else if (strcmp(creds.user, user) == 0) {
			strbuf_free(why);
			return (privs_drop_ids(user, creds.uid, creds.gid,
					       &creds, root, err));
		}
		strbuf_free(why);
	}
	if (privs_lookup(user, &uid, &gid, err) < 0)
		return (-1);
	return (privs_drop_ids(user, uid, gid, NULL, root, err));
}
