/*
 * cleanup_local - local submission: the sendmail command on public/
 *
 * SYNOPSIS
 *	#include "cleanup.h"
 *
 *	void	cleanup_local_init(void)
 *	void	cleanup_local_accept(struct cleanup_sess *s)
 *	int	cleanup_local_attr(struct cleanup_sess *s,
 *			const struct attr *a)
 *	int	cleanup_local_uid(struct cleanup_sess *s,
 *			const struct attr *a)
 *	int	cleanup_local_check(struct cleanup_sess *s)
 *	void	cleanup_local_envelope(struct cleanup_sess *s)
 *	int	cleanup_local_received(struct cleanup_sess *s)
 *	void	cleanup_local_headers(struct cleanup_sess *s, int seen,
 *			struct strbuf *add)
 *	void	cleanup_local_free(struct cleanup_sess *s)
 *
 * DESCRIPTION
 *	A cleanup service whose socket is under public/ (master.cf
 *	"sendmail unix n - n - 1 cleanup" makes public/sendmail, mode
 *	0666) takes local submissions from sendmail(1). Any local user can
 *	connect there, so the client is identified by the kernel, not by
 *	what it says.
 *
 *	cleanup_local_init() reads authorized_submit_users and
 *	local_login_sender_maps and opens their tables (pre_init, while
 *	still privileged). A malformed list is fatal.
 *
 *	cleanup_local_accept() looks at a new connection: when its socket
 *	is under public/, the session is a local submission, and the peer
 *	credentials (SO_PEERCRED) give the uid of the submitting process.
 *	A uid other than root, mail_owner and cleanup's own effective uid
 *	is an ordinary local user.
 *
 *	cleanup_local_attr() takes the "full_name" envelope attribute (the
 *	sendmail -F value): text on one line, at most 256 bytes. It returns
 *	0, or -1 when the value is malformed or given twice.
 *
 *	cleanup_local_uid() takes the "local_uid" envelope attribute that
 *	pickup(8) sends on private/cleanup for a maildrop file: the uid of
 *	the file's owner. The session then is a local submission by that
 *	uid, exactly as if it had come through public/sendmail. On a
 *	public/ socket the attribute is refused (-1, malformed): there only
 *	the kernel says who the client is.
 *
 *	cleanup_local_check() runs for a local submission once the
 *	envelope is complete, before a queue file exists. It applies
 *	authorized_submit_users to the login name ("unknown" without one)
 *	and local_login_sender_maps to the login name ("uid:N" without one)
 *	and the sender. A refusal is answered with status 5 and "5.7.1 User
 *	NAME(UID) is not allowed to submit mail" or "... to use sender
 *	address <S>", a table failure with status 4; then it returns -1
 *	(the session is ending). Otherwise it returns 0.
 *
 *	cleanup_local_envelope() runs once the envelope is complete and the
 *	queue ID is known. For an ordinary user the client attributes it
 *	sent (client_addr, client_name, helo, protocol, tls) are dropped: they
 *	would be lies told to the logs and to the next hop. Every local
 *	submission is recorded with protocol=local, uid=N and, when the
 *	password file knows the uid, login=NAME (A records). The line
 *	"QUEUEID: uid=N from=<sender>" is logged, as Postfix's pickup does.
 *
 *	cleanup_local_received() writes, as the first content, the Received
 *	header that smtpd would otherwise have added:
 *
 *	    Received: by $myhostname (Sendarix, from userid N)
 *		id QUEUEID; DATE
 *
 *	cleanup_local_headers() adds "From: Full Name <sender>" (or
 *	"From: sender" without a full name; "MAILER-DAEMON" for the null
 *	sender) to the headers added at the end of the header section when
 *	a local submission has no From: header.
 *
 *	cleanup_local_free() releases what this module allocated in the
 *	session; the session itself is freed by cleanup_session.c.
 *
 *	None of this applies to sessions on private/ services: smtpd and
 *	the other daemons are trusted to send their own attributes.
 *
 * DIAGNOSTICS
 *	"QUEUEID: uid=N from=<sender>" for each local submission;
 *	"NOQUEUE: reject: uid=N: REASON; from=<sender>" for a refusal. A peer
 *	whose credentials cannot be read is handled as uid "unknown" with
 *	no privileges: treated as an ordinary user.
 *
 * SECURITY
 *	Only the kernel's view of the peer decides who is trusted. The full
 *	name is checked before it becomes part of a header: no CR, LF or
 *	NUL, bounded length, quoted when it has RFC 5322 specials.
 *	XXX: in a chroot the password file may be unreadable; then no
 *	login name is recorded and only the uid identifies the user.
 *
 * SEE ALSO
 *	sendmail(1), docs/ipc.md, cleanup(8)
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "conf.h"
#include "hdr.h"
#include "log.h"
#include "mail_date.h"
#include "qfile.h"
#include "strbuf.h"
#include "submit_acl.h"
#include "xmalloc.h"

#include "cleanup.h"

#define CLEANUP_LOCAL_DIR	"public/"
#define CLEANUP_FULL_NAME_MAX	256

static struct submit_acl *cleanup_local_acl;

/* cleanup_local_init - open the local submission policy */
void
cleanup_local_init(void)
{
	struct strbuf *err = strbuf_new(256, 0);
	const char *origin = conf_get("myorigin");

	if (origin == NULL || *origin == 0)
		origin = var_myhostname;
	cleanup_local_acl = submit_acl_free(cleanup_local_acl);
	if ((cleanup_local_acl = submit_acl_new(
				conf_get("authorized_submit_users"),
				conf_get("local_login_sender_maps"),
				origin, err)) == NULL)
		log_fatal("%s", STRBUF_STR(err));
	strbuf_free(err);
}

/* cleanup_local_owner_uid - mail_owner's uid, or -1 when unknown */
static long
cleanup_local_owner_uid(void)
{
	static int done;
	static long uid = -1;
	struct passwd *pw;
	const char *owner;

	if (!done) {
		done = 1;
		owner = conf_get("mail_owner");
		if (owner && *owner && (pw = getpwnam(owner)) != NULL)
			uid = (long) pw->pw_uid;
	}
	return (uid);
}

/* cleanup_local_on_public - is this connection on a public/ socket? */
static int
cleanup_local_on_public(int fd)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *) &sun, &len) < 0
	    || sun.sun_family != AF_UNIX)
		return (0);
	/*
	 * master binds "public/.NAME.PID" (relative to queue_directory) and
	 * renames it to public/NAME; the bound name is what we see here.
	 */
	return (strncmp(sun.sun_path, CLEANUP_LOCAL_DIR,
			sizeof(CLEANUP_LOCAL_DIR) - 1) == 0);
}

/* cleanup_local_identity - who submits: uid, login, trust */
static void
cleanup_local_identity(struct cleanup_sess *s, long uid)
{
	struct passwd *pw;
	char    buf[32];

	s->local_uid = uid;
	s->local_user = (uid != 0 && uid != (long) geteuid()
			 && uid != cleanup_local_owner_uid());
	snprintf(buf, sizeof(buf), "%ld", uid);
	s->uid_attr = xfree(s->uid_attr);
	s->uid_attr = xstrdup(buf);
	s->login = xfree(s->login);
	if ((pw = getpwuid((uid_t) uid)) != NULL && pw->pw_name
	    && *pw->pw_name && strpbrk(pw->pw_name, "\r\n\t") == NULL)
		s->login = xstrdup(pw->pw_name);
}

/* cleanup_local_accept - note a local submission and who sends it */
void
cleanup_local_accept(struct cleanup_sess *s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!cleanup_local_on_public(s->fd))
		return;
	s->local = 1;
	memset(&cred, 0, sizeof(cred));
	if (getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0
	    || len != sizeof(cred)) {
		log_warn("NOQUEUE: cannot get peer credentials: %s",
			 strerror(errno));
		s->local_user = 1;
		s->local_uid = -1;
		s->uid_attr = xstrdup("unknown");
		return;
	}
	cleanup_local_identity(s, (long) cred.uid);
}

/* cleanup_local_uid - pickup says whose maildrop file this is */
int
cleanup_local_uid(struct cleanup_sess *s, const struct attr *a)
{
	char    buf[16];
	char   *end;
	long    uid;

	if (s->local || a->len == 0 || a->len >= sizeof(buf))
		return (-1);			/* public/, or twice */
	memcpy(buf, a->value, a->len);
	buf[a->len] = 0;
	uid = strtol(buf, &end, 10);
	if (*end != 0 || buf[0] < '0' || buf[0] > '9' || uid > 0x7fffffffL)
		return (-1);
	s->local = 1;
	cleanup_local_identity(s, uid);
	return (0);
}

/* cleanup_local_attr - the full_name envelope attribute */
int
cleanup_local_attr(struct cleanup_sess *s, const struct attr *a)
{
	if (s->full_name != NULL || a->len > CLEANUP_FULL_NAME_MAX
	    || memchr(a->value, '\0', a->len) || memchr(a->value, '\r', a->len)
	    || memchr(a->value, '\n', a->len))
		return (-1);
	s->full_name = xstrndup(a->value, a->len);
	return (0);
}

/* cleanup_local_check - authorized_submit_users, local_login_sender_maps */
int
cleanup_local_check(struct cleanup_sess *s)
{
	char    key[32];
	char    reason[512];
	const char *name;
	int     ret;

	if (!s->local)
		return (0);
	name = s->login ? s->login : "unknown";
	snprintf(key, sizeof(key), "uid:%s", s->uid_attr);
	if ((ret = submit_acl_user(cleanup_local_acl, name)) > 0) {
		ret = submit_acl_sender(cleanup_local_acl,
					s->login ? s->login : key, s->sender);
		if (ret == 0)
			snprintf(reason, sizeof(reason), "5.7.1 User %s(%s) is "
				 "not allowed to use sender address <%.300s>",
				 name, s->uid_attr, s->sender);
	} else if (ret == 0) {
		snprintf(reason, sizeof(reason), "5.7.1 User %s(%s) is not "
			 "allowed to submit mail", name, s->uid_attr);
	}
	if (ret > 0)
		return (0);
	if (ret < 0) {
		log_warn("NOQUEUE: uid=%s: local submission policy table "
			 "lookup failed; from=<%s>", s->uid_attr, s->sender);
		cleanup_session_reply(s, 4, "4.3.0 Error: temporary "
				      "lookup failure");
		return (-1);
	}
	log_info("NOQUEUE: reject: uid=%s: %s; from=<%s>", s->uid_attr,
		 reason + 6, s->sender);
	cleanup_session_reply(s, 5, reason);
	return (-1);
}

/* cleanup_local_envelope - drop what a user may not say, log the sender */
void
cleanup_local_envelope(struct cleanup_sess *s)
{
	if (!s->local)
		return;
	if (s->local_user) {
		s->client_addr = xfree(s->client_addr);
		s->client_name = xfree(s->client_name);
		s->helo = xfree(s->helo);
		s->tls = xfree(s->tls);
	}
	s->sasl_method = xfree(s->sasl_method);
	s->sasl_username = xfree(s->sasl_username);
	free(s->protocol);
	s->protocol = xstrdup("local");
	log_info("%s: uid=%s from=<%s>", s->id, s->uid_attr, s->sender);
}

/* cleanup_local_received - the first header of a local submission */
int
cleanup_local_received(struct cleanup_sess *s)
{
	struct strbuf *rcv;
	char    date[64];
	int     ret;

	if (!s->local)
		return (0);
	mail_date(date, sizeof(date), time(NULL));
	rcv = strbuf_new(256, 0);
	strbuf_printf(rcv, "Received: by %s (Sendarix, from userid %s)\r\n"
		      "\tid %s; %s\r\n", var_myhostname, s->uid_attr, s->id,
		      date);
	ret = qfile_out_content(s->qf, rcv->data, rcv->len);
	strbuf_free(rcv);
	return (ret);
}

/* cleanup_local_phrase - the full name as an RFC 5322 display name */
static void
cleanup_local_phrase(struct strbuf *out, const char *name)
{
	const char *cp;

	/* Atoms and spaces need no quotes; anything else gets them. */
	if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL) {
		strbuf_appends(out, name);
		return;
	}
	strbuf_appendc(out, '"');
	for (cp = name; *cp; cp++) {
		if (*cp == '"' || *cp == '\\')
			strbuf_appendc(out, '\\');
		strbuf_appendc(out, *cp);
	}
	strbuf_appendc(out, '"');
}

/* cleanup_local_headers - a missing From: for a local submission */
void
cleanup_local_headers(struct cleanup_sess *s, int seen, struct strbuf *add)
{
	const char *sender;

	if (!s->local || (seen & HDR_SEEN_FROM))
		return;
	sender = (s->sender && *s->sender) ? s->sender : "MAILER-DAEMON";
	strbuf_appends(add, "From: ");
	if (s->full_name && *s->full_name) {
		/* XXX Non-ASCII names should be RFC 2047 encoded. */
		cleanup_local_phrase(add, s->full_name);
		strbuf_printf(add, " <%s>\r\n", sender);
	} else {
		strbuf_printf(add, "%s\r\n", sender);
	}
}

/* cleanup_local_free - what this module keeps in a session */
void
cleanup_local_free(struct cleanup_sess *s)
{
	s->uid_attr = xfree(s->uid_attr);
	s->login = xfree(s->login);
	s->full_name = xfree(s->full_name);
}
