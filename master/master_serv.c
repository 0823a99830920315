/*
 * master_serv - the table of services master runs, and reloading it
 *
 * SYNOPSIS
 *	#include "master.h"
 *
 *	struct master_serv *master_serv_new(const struct mastercf_service *svc,
 *			struct strbuf *err)
 *	struct master_serv *master_serv_free(struct master_serv *serv)
 *	int	master_serv_configure(const struct mastercf *cf, int initial)
 *
 * DESCRIPTION
 *	master_serv_new() turns one master.cf line into a service: the
 *	process limit resolved ("-" is default_process_limit), the command
 *	resolved under daemon_directory unless it is an absolute path, and
 *	the words that follow the standard options (-o name=value for each
 *	override, then the other arguments). It opens no socket.
 *	master_serv_free() closes nothing either; it cancels a pending
 *	restart and frees the memory (NULL in, NULL out).
 *
 *	master_serv_configure() makes master_services match cf. At start-up
 *	(initial) every service must open its sockets, or master ends. On a
 *	reload, a service whose name and type (and, for unix, folder) are
 *	still configured keeps its listening sockets as they are, so that
 *	connections waiting in the kernel backlog are not lost; sockets of
 *	removed services are closed (unix socket files removed); new
 *	services get new sockets (a failure there is a warning, and that
 *	service does not run). Every child of the old configuration is
 *	marked as retired (hup_pending): the caller starts fresh children
 *	and then tells the retired ones to finish (master_retire_children).
 *
 *	Changing inet_interfaces or inet_protocols takes a restart, as in
 *	Postfix: kept inet services keep their sockets.
 *
 * DIAGNOSTICS
 *	master_serv_new() returns NULL with the reason in err.
 *	master_serv_configure() returns 0, or -1 on a reload where nothing
 *	was changed; at start-up its failures are fatal.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "mastercf.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "master.h"

/* master_serv_new - one service from one master.cf line */
struct master_serv *
master_serv_new(const struct mastercf_service *svc, struct strbuf *err)
{
	struct master_serv *serv;
	const char *dir;
	long    limit;
	size_t  i;
	size_t  n;

	if (svc->command == NULL || *svc->command == 0) {
		strbuf_printf(err, "service %s: no command", svc->name);
		return (NULL);
	}
	serv = xcalloc(1, sizeof(*serv));
	serv->name = xstrdup(svc->name);
	serv->type = xstrdup(svc->type);
	serv->private_ = svc->private_;
	serv->chroot = svc->chroot;
	serv->wakeup = svc->wakeup;
	serv->lineno = svc->lineno;
	if (svc->maxproc < 0) {
		limit = conf_get_int("default_process_limit");
		if (limit < 1 || limit > 1000) {
			log_warn("default_process_limit %ld is out of range "
				 "1..1000; using 1", limit);
			limit = 1;
		}
	} else if (svc->maxproc == 0) {
		log_warn("service %s: process limit 0 (unlimited) is not "
			 "supported by event-driven services; using 1",
			 svc->name);
		limit = 1;
	} else {
		limit = svc->maxproc > 1000 ? 1000 : svc->maxproc;
	}
	serv->maxproc = (int) limit;

	if (svc->command[0] == '/') {
		serv->path = xstrdup(svc->command);
	} else {
		dir = conf_get("daemon_directory");
		n = strlen(dir) + strlen(svc->command) + 2;
		serv->path = xmalloc(n);
		snprintf(serv->path, n, "%s/%s", dir, svc->command);
	}

	serv->nextra = 2 * svc->noverrides + svc->nargs;
	serv->extra = xcalloc(serv->nextra + 1, sizeof(char *));
	n = 0;
	for (i = 0; i < svc->noverrides; i++) {
		serv->extra[n++] = xstrdup("-o");
		serv->extra[n++] = xstrdup(svc->overrides[i]);
	}
	for (i = 0; i < svc->nargs; i++)
		serv->extra[n++] = xstrdup(svc->args[i]);
	return (serv);
}

/* master_serv_free - release one service (sockets already closed) */
struct master_serv *
master_serv_free(struct master_serv *serv)
{
	size_t  i;

	if (serv == NULL)
		return (NULL);
	master_spawn_cancel(serv);
	if (serv->restart_ev)
		event_free(serv->restart_ev);
	for (i = 0; i < serv->nextra; i++)
		xfree(serv->extra[i]);
	xfree(serv->extra);
	xfree(serv->fds);
	xfree(serv->sockpath);
	xfree(serv->path);
	xfree(serv->type);
	xfree(serv->name);
	xfree(serv);
	return (NULL);
}

/* master_serv_same_socket - may new take over old's listening sockets? */
static int
master_serv_same_socket(const struct master_serv *old,
			const struct master_serv *new)
{
	if (strcmp(old->name, new->name) != 0
	    || strcmp(old->type, new->type) != 0)
		return (0);
	if (strcmp(new->type, "unix") == 0 && old->private_ != new->private_)
		return (0);
	return (1);
}

/* master_serv_configure - make the running services match master.cf */
int
master_serv_configure(const struct mastercf *cf, int initial)
{
	struct master_serv *head = NULL;
	struct master_serv **tail = &head;
	struct master_serv *serv;
	struct master_serv *old;
	struct master_serv *next;
	struct master_proc *proc;
	static struct strbuf *err;	/* kept: reachable at a fatal exit */
	size_t  i;

	if (err == NULL)
		err = strbuf_new(256, 0);

	/* Build the new table; take over the sockets of kept services. */
	for (i = 0; i < cf->count; i++) {
		strbuf_reset(err);
		if ((serv = master_serv_new(&cf->svc[i], err)) == NULL) {
			if (initial)
				master_fatal("master.cf line %d: %s",
					  cf->svc[i].lineno, STRBUF_STR(err));
			log_warn("master.cf line %d: %s; service not started",
				 cf->svc[i].lineno, STRBUF_STR(err));
			continue;
		}
		for (old = master_services; old; old = old->next) {
			if (old->nfds > 0 && master_serv_same_socket(old, serv)) {
				serv->fds = old->fds;
				serv->nfds = old->nfds;
				serv->sockpath = old->sockpath;
				old->fds = NULL;
				old->nfds = 0;
				old->sockpath = NULL;
				log_debug("service %s/%s: keeping its sockets",
					  serv->name, serv->type);
				break;
			}
		}
		*tail = serv;
		tail = &serv->next;
	}

	/*
	 * Close what is gone before binding what is new: a service may move
	 * from "2525" to "127.0.0.1:2525".
	 */
	for (old = master_services; old; old = old->next)
		if (old->nfds > 0) {
			log_info("service %s/%s: removed", old->name, old->type);
			master_listen_close(old, 1);
		}

	for (tail = &head; (serv = *tail) != NULL;) {
		if (serv->nfds > 0) {
			tail = &serv->next;
			continue;
		}
		strbuf_reset(err);
		if (master_listen_open(serv, err) < 0) {
			if (initial)
				master_fatal("service %s/%s: %s", serv->name,
					  serv->type, STRBUF_STR(err));
			log_warn("service %s/%s: %s; service not started",
				 serv->name, serv->type, STRBUF_STR(err));
			*tail = serv->next;
			master_serv_free(serv);
			continue;
		}
		if (!initial)
			log_info("service %s/%s: added", serv->name, serv->type);
		tail = &serv->next;
	}

	/* Children of the old table finish their sessions and go. */
	for (proc = master_procs; proc; proc = proc->next)
		if (proc->serv != NULL) {
			proc->serv = NULL;
			proc->hup_pending = 1;
		}
	for (old = master_services; old; old = next) {
		next = old->next;
		master_serv_free(old);
	}
	master_services = head;
	return (0);
}
