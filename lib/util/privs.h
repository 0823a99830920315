#ifndef SENDARIX_PRIVS_H
#define SENDARIX_PRIVS_H

#include <sys/types.h>

struct strbuf;

/*
 * Privilege drop for daemons started as root.
 *
 * privs_lookup() finds a user's uid and primary gid. privs_drop() sets the
 * supplementary groups of the user, optionally chroots (root != NULL),
 * sets real, effective and saved gid and uid, and checks that root cannot
 * be regained. The user must not be root. Both return 0, or -1 with the
 * reason in err (which may be NULL).
 *
 * privs_creds_lookup() also finds the supplementary groups; master hands
 * the result down in PRIVS_OWNER_ENV as privs_creds_format() writes it
 * (user:uid:gid:g1,g2,...), and privs_drop() uses a value that
 * privs_creds_parse() accepts and that names its user instead of asking
 * the name service.
 */
#define PRIVS_OWNER_ENV		"SENDARIX_MAIL_OWNER"
#define PRIVS_MAX_GROUPS	256	/* more: not handed down */
#define PRIVS_MAX_USER		256	/* name length limit, with NUL */

struct privs_creds {
	char    user[PRIVS_MAX_USER];
	uid_t   uid;
	gid_t   gid;
	int     ngroups;
	gid_t   groups[PRIVS_MAX_GROUPS];
};

extern int privs_lookup(const char *, uid_t *, gid_t *, struct strbuf *);
extern int privs_creds_lookup(const char *, struct privs_creds *,
			              struct strbuf *);
extern int privs_creds_format(const struct privs_creds *, struct strbuf *);
extern int privs_creds_parse(const char *, struct privs_creds *,
			             struct strbuf *);
extern int privs_drop(const char *, const char *, struct strbuf *);

#endif
