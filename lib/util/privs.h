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
 */
extern int privs_lookup(const char *, uid_t *, gid_t *, struct strbuf *);
extern int privs_drop(const char *, const char *, struct strbuf *);

#endif
