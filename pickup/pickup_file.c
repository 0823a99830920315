/*
 * pickup_file - submit one maildrop file to cleanup
 *
 * SYNOPSIS
 *	#include "pickup.h"
 *
 *	int	pickup_file(const char *name)
 *
 * DESCRIPTION
 *	pickup_file() opens maildrop/NAME (never through a symbolic link),
 *	checks that it is a plain file with one link, reads the envelope
 *	list and submits the message to cleanup on
 *	private/$cleanup_service_name with the cleanup protocol of
 *	docs/ipc.md, as a local submission: the first envelope attribute
 *	is "local_uid", the uid that owns the file. Of the file's
 *	envelope only what sendmail(1) itself sends is taken: version
 *	(first, "1"), sender (once), rcpt, notify, full_name, body, ret
 *	and envid; anything else (a "local_uid", "client_addr" or
 *	"protocol" in particular) makes the file corrupt. The content list
 *	follows as "data" attributes; nothing may follow its end.
 *
 *	The result is PICKUP_DONE once cleanup has confirmed the queue
 *	file and the maildrop file is removed, and also when cleanup
 *	refused the message for good (status 5: the submitter is not in
 *	authorized_submit_users, a sender local_login_sender_maps does not
 *	allow, a message over a limit); the file is then removed with a
 *	warning. PICKUP_KEEP when cleanup cannot be reached or answers 4:
 *	the file stays for the next scan. PICKUP_CORRUPT when the file is
 *	malformed or not a plain file: it moves to corrupt/ with a warning.
 *
 * SECURITY
 *	The submitter is the file's owner (fstat of the open file), never
 *	anything written in it. A user can only create files owned by
 *	himself, and a hard link to another user's file has two links.
 *
 * SEE ALSO
 *	pickup(8), docs/ipc.md
 */

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "cleanup_client.h"
#include "log.h"
#include "mail_attr.h"
#include "qfile.h"
#include "strbuf.h"

#include "pickup.h"

/* One file being submitted. */
struct pickup_state {
	const char *name;
	char    path[512];
	int     fd;				/* the maildrop file */
	struct cleanup_client *cl;		/* cleanup */
	struct cleanup_result res;		/* what cleanup said */
	unsigned long uid;
	struct strbuf *in;			/* from the file */
	size_t  in_off;
	struct strbuf *out;			/* the envelope */
	char    reason[PICKUP_REASON_MAX];
	char    queue_id[64];
};

/* The envelope attributes sendmail writes; nothing else is passed on. */
static const char *const pickup_env_names[] = {
	MAIL_ATTR_SENDER, MAIL_ATTR_RCPT, MAIL_ATTR_NOTIFY, MAIL_ATTR_FULL_NAME,
	MAIL_ATTR_BODY, MAIL_ATTR_RET, MAIL_ATTR_ENVID, 0,
};

/* pickup_corrupt - keep a bad file for inspection */
static int
pickup_corrupt(struct pickup_state *ps, const char *why)
{
	char    dst[600];

	snprintf(dst, sizeof(dst), "%s/%s", QUEUE_CORRUPT, ps->name);
	log_warn("%s: uid=%lu: %s: moved to %s", ps->name, ps->uid, why,
		 QUEUE_CORRUPT);
	if (rename(ps->path, dst) < 0) {
		log_warn("%s: rename to %s: %s; removing it", ps->name, dst,
			 strerror(errno));
		(void) unlink(ps->path);
	}
	return (PICKUP_CORRUPT);
}

/* pickup_env_ok - is this an envelope attribute a user may write? */
static int
pickup_env_ok(const char *name)
{
	const char *const *np;

	for (np = pickup_env_names; *np; np++)
		if (strcmp(*np, name) == 0)
			return (1);
	return (0);
}

/* pickup_status - cleanup's answer: 0, 4 or 5 (4 for no answer) */
static int
pickup_status(struct pickup_state *ps)
{
	const struct cleanup_result *cr = &ps->res;

	if (cr->lost[0] && !cr->committed) {
		snprintf(ps->reason, sizeof(ps->reason), "no answer from "
			 "cleanup: %s", cr->lost);
		return (4);
	}
	if (cr->status == 0) {
		snprintf(ps->queue_id, sizeof(ps->queue_id), "%s",
			 cr->queue_id);
		return (0);
	}
	snprintf(ps->reason, sizeof(ps->reason), "%.*s",
		 (int) sizeof(ps->reason) - 1, cr->reason);
	return (cr->status == 5 ? 5 : 4);
}

/* pickup_next - the next content attribute from the file */
static int
pickup_next(struct pickup_state *ps, struct attr *a)
{
	size_t  used;
	ssize_t n;
	int     r;

	for (;;) {
		r = attr_next(ps->in->data + ps->in_off,
			      ps->in->len - ps->in_off, PICKUP_DATA_MAX, a,
			      &used);
		if (r != ATTR_MORE) {
			if (r != ATTR_BAD)
				ps->in_off += used;
			return (r);
		}
		/* Keep the unparsed part at the front, then read more. */
		strbuf_consume(ps->in, ps->in_off);
		ps->in_off = 0;
		if (strbuf_reserve(ps->in, 65536) < 0)
			return (ATTR_BAD);
		n = read(ps->fd, ps->in->data + ps->in->len, 65536);
		if (n <= 0)
			return (ATTR_BAD);		/* cut short */
		ps->in->len += (size_t) n;
	}
}

/* pickup_envelope - check the file's envelope, send it to cleanup */
static const char *
pickup_envelope(struct pickup_state *ps, struct attr_list *env)
{
	size_t  i;
	int     senders = 0;
	int     rcpts = 0;

	if (env->n == 0 || strcmp(env->names[0], MAIL_ATTR_VERSION) != 0
	    || strcmp(env->values[0], PICKUP_DROP_VERSION) != 0)
		return ("unknown file version");
	attr_putl(ps->out, MAIL_ATTR_LOCAL_UID, (long long) ps->uid);
	for (i = 1; i < env->n; i++) {
		if (!pickup_env_ok(env->names[i]))
			return ("unexpected envelope attribute");
		senders += strcmp(env->names[i], MAIL_ATTR_SENDER) == 0;
		rcpts += strcmp(env->names[i], MAIL_ATTR_RCPT) == 0;
		if (attr_put(ps->out, env->names[i], env->values[i],
			     env->lens[i]) < 0)
			return ("envelope too large");
	}
	if (senders != 1 || rcpts == 0)
		return ("envelope without one sender and a recipient");
	attr_end(ps->out);
	return (NULL);
}

/* pickup_content - stream the content list; NULL, or why it is corrupt */
static const char *
pickup_content(struct pickup_state *ps, int *sent)
{
	struct attr a;
	char    extra;
	int     r;

	*sent = 1;
	while ((r = pickup_next(ps, &a)) == ATTR_OK) {
		if (!attr_name_is(&a, MAIL_ATTR_DATA))
			return ("content attribute other than data");
		/* After a failure, read on: the file may still be corrupt. */
		if (*sent && cleanup_client_put(ps->cl, a.value, a.len,
						&ps->res) < 0)
			*sent = 0;		/* cleanup said why, or not */
	}
	if (r != ATTR_END)
		return ("malformed or truncated content");
	if (ps->in_off < ps->in->len || read(ps->fd, &extra, 1) != 0)
		return ("data after the end of the content");
	if (*sent)
		(void) cleanup_client_end(ps->cl, NULL, &ps->res);
	return (NULL);
}

/* pickup_submit - the open file to cleanup; PICKUP_* */
static int
pickup_submit(struct pickup_state *ps)
{
	struct attr_list env;
	char    cleanup[256];
	const char *why;
	int     status;
	int     sent;
	int     fd;

	memset(&env, 0, sizeof(env));
	if (attr_read_fd(ps->fd, ps->in, PICKUP_ENV_VALUE_MAX, 0, &env) < 0)
		return (pickup_corrupt(ps, "malformed envelope"));
	why = pickup_envelope(ps, &env);
	attr_list_clear(&env);
	if (why != NULL)
		return (pickup_corrupt(ps, why));
	snprintf(cleanup, sizeof(cleanup), "private/%s",
		 var_cleanup_service_name);
	if ((fd = cleanup_client_connect(cleanup, 1)) < 0) {
		log_warn("%s: connect to %s: %s", ps->name, cleanup,
			 strerror(errno));
		return (PICKUP_KEEP);
	}
	ps->cl = cleanup_client_start(fd, ps->out, var_pickup_timeout,
				      &ps->res);
	if ((status = pickup_status(ps)) == 4) {
		log_warn("%s: uid=%lu: cleanup: %s", ps->name, ps->uid,
			 ps->reason);
		return (PICKUP_KEEP);
	}
	if (status == 0) {
		if ((why = pickup_content(ps, &sent)) != NULL)
			return (pickup_corrupt(ps, why));
		status = pickup_status(ps);
	}
	if (status == 4) {
		log_warn("%s: uid=%lu: cleanup: %s", ps->name, ps->uid,
			 ps->reason);
		return (PICKUP_KEEP);
	}
	if (status == 5)
		log_warn("%s: uid=%lu: refused: %s; removed", ps->name,
			 ps->uid, ps->reason);
	else
		log_info("%s: uid=%lu: queued as %s", ps->name, ps->uid,
			 ps->queue_id);
	/* Only now is the message safe in incoming/ (or refused for good). */
	if (unlink(ps->path) < 0)
		log_warn("%s: remove: %s", ps->name, strerror(errno));
	return (PICKUP_DONE);
}

/* pickup_file - submit maildrop/NAME */
int
pickup_file(const char *name)
{
	struct pickup_state ps;
	struct stat st;
	int     ret;

	memset(&ps, 0, sizeof(ps));
	ps.name = name;
	ps.uid = (unsigned long) -1;
	snprintf(ps.path, sizeof(ps.path), "%s/%s", PICKUP_MAILDROP, name);
	if ((ps.fd = open(ps.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK
			  | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return (PICKUP_DONE);	/* gone meanwhile */
		if (lstat(ps.path, &st) == 0)
			ps.uid = (unsigned long) st.st_uid;
		return (pickup_corrupt(&ps, strerror(errno)));
	}
	if (fstat(ps.fd, &st) < 0 || !S_ISREG(st.st_mode)
	    || st.st_nlink != 1) {
		ps.uid = (unsigned long) st.st_uid;
		(void) close(ps.fd);
		return (pickup_corrupt(&ps, "not a plain file with one link"));
	}
	ps.uid = (unsigned long) st.st_uid;
	ps.in = strbuf_new(65536, 2 * PICKUP_DATA_MAX + 1024);
	ps.out = strbuf_new(4096, 0);
	ret = pickup_submit(&ps);
	(void) close(ps.fd);
	cleanup_client_free(ps.cl);
	strbuf_free(ps.in);
	strbuf_free(ps.out);
	return (ret);
}
