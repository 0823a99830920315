/*
 * smtpd_addr - reject_unauth_destination, room in the queue for MAIL
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	int	smtpd_check_unauth_dest(struct smtpd_session *s,
 *			const char *addr, int pflags, struct strbuf *reply)
 *	int	smtpd_check_client(const char *addr, struct matchlist *list)
 *	int	smtpd_check_queue(long long size)
 *
 * DESCRIPTION
 *	smtpd_check_unauth_dest() is the reject_unauth_destination
 *	restriction (smtpd_check.c): may "addr", a recipient parsed by
 *	smtp_addr_parse() with result bits "pflags", be sent to by a
 *	client that no earlier restriction permitted (permit_mynetworks
 *	comes first by default)? Only to a domain in relay_domains, and
 *	never with an address trick (a source route, or "%", "!" or a
 *	quoted "@" in the local part), nor to an address literal.
 *	<postmaster> with no domain is always accepted (RFC 5321 section
 *	4.5.1). It returns SMTPD_CHECK_DUNNO, or SMTPD_CHECK_REJECT with
 *	the whole reply line (code, enhanced code, text; no CRLF) in
 *	"reply": 554 5.7.1 for a denied relay, 451 4.3.0 when a table could
 *	not be read (relay_domains, or mynetworks, which might have said
 *	yes).
 *
 *	smtpd_check_client() matches a client address against a match
 *	list (mynetworks, smtpd_client_connection_exceptions): 1, 0, or
 *	-1 when a table lookup failed. A NULL list matches nothing.
 *
 *	smtpd_check_queue() says whether the queue file system (the
 *	working directory) has room for a new message of "size" bytes
 *	(MAIL FROM SIZE=, or 0 when not declared), as Postfix's smtpd
 *	does: SMTPD_CHECK_REJECT when the free space (statvfs f_bavail,
 *	in blocks) is at most queue_minfree, or the message would not
 *	leave queue_minfree free, or would fill half of what is free; the
 *	caller then answers 452 4.3.1. With queue_minfree = 0 only the
 *	last two apply, so a full file system is refused. A failed
 *	statvfs() lets the message in (the write will tell).
 *
 * DIAGNOSTICS
 *	Table failures are logged as warnings.
 *
 * SEE ALSO
 *	smtp_addr(3), map(3), smtpd(8)
 */

#include <sys/statvfs.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "smtp_addr.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtpd.h"

/* smtpd_check_client - client address in a match list? */
int
smtpd_check_client(const char *addr, struct matchlist *list)
{
	int     ret;

	if (list == NULL)
		return (0);
	ret = matchlist_match(list, addr);
	if (ret < 0)
		log_warn("table lookup failed for client address %s", addr);
	return (ret);
}

/* smtpd_check_unauth_dest - reject_unauth_destination */
int
smtpd_check_unauth_dest(struct smtpd_session *s, const char *addr,
			int pflags, struct strbuf *reply)
{
	const char *domain;
	char   *lower;
	char   *cp;
	int     ret;

	if (pflags & SMTP_ADDR_F_NODOMAIN)
		return (SMTPD_CHECK_DUNNO);	/* <postmaster> */

	/* Outsiders: never any address trick, whatever the domain. */
	if ((pflags & (SMTP_ADDR_F_ROUTE | SMTP_ADDR_F_LITERAL))
	    || smtp_addr_tricky(addr)) {
		strbuf_printf(reply, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return (SMTPD_CHECK_REJECT);
	}
	if ((domain = smtp_addr_domain(addr)) == NULL || *domain == 0) {
		strbuf_printf(reply, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return (SMTPD_CHECK_REJECT);
	}
	if (smtpd_var.relay_domains == NULL) {
		if (s->trusted < 0)
			goto retry;
		strbuf_printf(reply, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return (SMTPD_CHECK_REJECT);
	}
	lower = xstrdup(domain);
	for (cp = lower; *cp; cp++)
		*cp = tolower((unsigned char) *cp);
	ret = matchlist_match(smtpd_var.relay_domains, lower);
	xfree(lower);
	if (ret < 0) {
		log_warn("relay_domains lookup failed for %s", domain);
		goto retry;
	}
	if (ret == 0) {
		/* mynetworks could not be read: it might have said yes. */
		if (s->trusted < 0)
			goto retry;
		strbuf_printf(reply, "554 5.7.1 <%s>: Relay access denied",
			      addr);
		return (SMTPD_CHECK_REJECT);
	}
	return (SMTPD_CHECK_DUNNO);

retry:
	strbuf_printf(reply, "451 4.3.0 <%s>: Temporary lookup failure", addr);
	return (SMTPD_CHECK_REJECT);
}

/* smtpd_check_queue - room in the queue file system for "size" bytes? */
int
smtpd_check_queue(long long size)
{
	struct statvfs fs;
	unsigned long long bsize;
	unsigned long long bfree;
	unsigned long long minfree;
	unsigned long long need;

	if (statvfs(".", &fs) < 0) {
		log_warn("statvfs queue directory: %s", strerror(errno));
		return (SMTPD_CHECK_OK);
	}
	bsize = fs.f_frsize ? fs.f_frsize : fs.f_bsize;
	if (bsize == 0)
		return (SMTPD_CHECK_OK);
	bfree = fs.f_bavail;
	minfree = (unsigned long long) smtpd_var.queue_minfree / bsize;
	need = size > 0 ? (unsigned long long) size / bsize : 0;
	if (minfree >= bfree || need >= bfree - minfree || need >= bfree / 2) {
		log_warn("not enough free space in mail queue: %llu bytes "
			 "free, queue_minfree %lld, message size %lld",
			 bfree * bsize, smtpd_var.queue_minfree,
			 size > 0 ? size : 0);
		return (SMTPD_CHECK_REJECT);
	}
	return (SMTPD_CHECK_OK);
}
