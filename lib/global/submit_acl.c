/*
 * submit_acl - who may submit mail locally, and as which sender
 *
 * SYNOPSIS
 *	#include "submit_acl.h"
 *
 *	struct submit_acl *submit_acl_new(const char *users,
 *			const char *sender_maps, const char *myorigin,
 *			struct strbuf *err)
 *	int	submit_acl_user(struct submit_acl *acl, const char *login)
 *	int	submit_acl_sender(struct submit_acl *acl, const char *key,
 *			const char *sender)
 *	struct submit_acl *submit_acl_free(struct submit_acl *acl)
 *
 * DESCRIPTION
 *	The policy of local submission (sendmail(1), cleanup on public/,
 *	pickup for maildrop files), with Postfix's parameters:
 *
 *	"users" is authorized_submit_users: a string list (user names,
 *	"!name" exclusions, type:table items; static:anyone lets everyone
 *	in, an empty list nobody). submit_acl_user() asks it about a login
 *	name; the caller passes "unknown" for a uid without one.
 *
 *	"sender_maps" is local_login_sender_maps: tables, separated by
 *	commas or white space, searched in order by the login name (the
 *	caller passes "uid:N" for a uid without one). The first table that
 *	finds the key gives the allowed envelope senders, a list separated
 *	by commas or white space:
 *
 *	    *		any sender
 *	    <>		the null sender
 *	    @domain	any address in that domain
 *	    user@domain	that address (case-insensitive)
 *	    user	user@$myorigin, the address sendmail makes of it
 *
 *	submit_acl_sender() says whether "sender" ("" for the null sender)
 *	is allowed for "key". A key no table knows is allowed no sender.
 *	XXX Postfix ignores address extensions here; Sendarix has no
 *	recipient_delimiter yet, so an extension must be listed.
 *
 *	submit_acl_new() opens the tables; it returns NULL with the reason
 *	in "err" for a malformed list or table name. A table that is there
 *	but cannot be read makes the checks answer -1. submit_acl_free()
 *	closes everything; it accepts NULL and returns NULL.
 *
 * SEE ALSO
 *	sendarix-params(5), sendmail(1), pickup(8), cleanup(8)
 */

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "map.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "submit_acl.h"

#define SUBMIT_ACL_SEP(c)	(isspace((unsigned char) (c)) || (c) == ',')

struct submit_acl {
	struct matchlist *users;
	struct map **maps;
	size_t  nmaps;
	char   *myorigin;
};

/* submit_acl_maps - open each table of a list */
static int
submit_acl_maps(struct submit_acl *acl, const char *list, struct strbuf *err)
{
	struct strbuf *item = strbuf_new(256, 0);
	struct map *m;
	const char *p = list;
	int     ret;

	while ((ret = map_list_next(&p, item, err)) > 0) {
		if ((m = map_open(STRBUF_STR(item), err)) == NULL) {
			ret = -1;
			break;
		}
		acl->maps = xreallocarray(acl->maps, acl->nmaps + 1,
					  sizeof(*acl->maps));
		acl->maps[acl->nmaps++] = m;
	}
	strbuf_free(item);
	return (ret < 0 ? -1 : 0);
}

/* submit_acl_new - parse both parameters and open their tables */
struct submit_acl *
submit_acl_new(const char *users, const char *sender_maps,
	       const char *myorigin, struct strbuf *err)
{
	struct submit_acl *acl = xcalloc(1, sizeof(*acl));

	acl->myorigin = xstrdup(myorigin ? myorigin : "");
	if ((acl->users = matchlist_string(users ? users : "", err)) == NULL) {
		strbuf_printf(err, " (authorized_submit_users)");
		return (submit_acl_free(acl));
	}
	if (submit_acl_maps(acl, sender_maps ? sender_maps : "", err) < 0) {
		strbuf_printf(err, " (local_login_sender_maps)");
		return (submit_acl_free(acl));
	}
	return (acl);
}

/* submit_acl_user - may this login submit at all? */
int
submit_acl_user(struct submit_acl *acl, const char *login)
{
	return (matchlist_match(acl->users, login));
}

/* submit_acl_pattern - does one allowed-sender pattern cover the sender? */
static int
submit_acl_pattern(const struct submit_acl *acl, const char *pat,
		   size_t len, const char *sender)
{
	const char *at;
	size_t  slen = strlen(sender);
	size_t  llen;

	if (len == 1 && *pat == '*')
		return (1);
	if (len == 2 && strncmp(pat, "<>", 2) == 0)
		return (*sender == 0);
	if (*sender == 0)
		return (0);
	if (*pat == '@') {
		at = strrchr(sender, '@');
		return (at != NULL && strlen(at) == len
			&& strncasecmp(at, pat, len) == 0);
	}
	if (memchr(pat, '@', len) != NULL)
		return (slen == len && strncasecmp(sender, pat, len) == 0);
	/* A bare name is name@$myorigin, as sendmail qualifies it. */
	llen = strlen(acl->myorigin);
	return (slen == len + 1 + llen && strncasecmp(sender, pat, len) == 0
		&& sender[len] == '@'
		&& strcasecmp(sender + len + 1, acl->myorigin) == 0);
}

/* submit_acl_sender - may "key" use this envelope sender? */
int
submit_acl_sender(struct submit_acl *acl, const char *key,
		  const char *sender)
{
	const char *value;
	const char *p;
	const char *start;
	size_t  i;
	int     ret;

	for (i = 0; i < acl->nmaps; i++) {
		ret = map_lookup(acl->maps[i], key, &value);
		if (ret == MAP_RETRY)
			return (-1);
		if (ret != MAP_FOUND)
			continue;
		for (p = value; *p;) {
			if (SUBMIT_ACL_SEP(*p)) {
				p++;
				continue;
			}
			for (start = p; *p && !SUBMIT_ACL_SEP(*p); p++)
				 /* one pattern */ ;
			if (submit_acl_pattern(acl, start, (size_t) (p - start),
					       sender))
				return (1);
		}
		return (0);
	}
	return (0);
}

/* submit_acl_free - close the tables */
struct submit_acl *
submit_acl_free(struct submit_acl *acl)
{
	size_t  i;

	if (acl == NULL)
		return (NULL);
	matchlist_free(acl->users);
	for (i = 0; i < acl->nmaps; i++)
		map_close(acl->maps[i]);
	xfree(acl->maps);
	xfree(acl->myorigin);
	xfree(acl);
	return (NULL);
}
