#ifndef SENDARIX_MASTERCF_H
#define SENDARIX_MASTERCF_H

#include <stddef.h>

struct strbuf;

/*
 * One line of master.cf:
 *
 *   service type private unpriv chroot wakeup maxproc command [args...]
 *   smtp    inet  n       -      n      -      -       smtpd
 *     -o smtpd_banner=hello
 *
 * "-" in a column means its default. For inet services the name is
 * [host:]port (host may be [ipv6]); for unix services it is a socket name
 * under private/ (private=y) or public/ (private=n).
 */
struct mastercf_service {
	char   *name;			/* "smtp", "127.0.0.1:2525", "cleanup" */
	char   *type;			/* "inet" or "unix" */
	int     private_;		/* 1: private/ (unix); default y */
	int     unpriv;			/* 1: runs as mail_owner; default y */
	int     chroot;			/* 1: chroot to queue_directory; default n */
	int     wakeup;			/* seconds, 0 = none */
	int     maxproc;		/* -1 = default_process_limit */
	char   *command;		/* "smtpd" */
	char  **args;			/* other arguments, not -o */
	size_t  nargs;
	char  **overrides;		/* "name=value" from -o */
	size_t  noverrides;
	int     lineno;
};

struct mastercf {
	struct mastercf_service *svc;
	size_t  count;
};

extern struct mastercf *mastercf_load(const char *, struct strbuf *);
extern struct mastercf *mastercf_parse(const char *, size_t, const char *,
				               struct strbuf *);
extern struct mastercf *mastercf_free(struct mastercf *);

#endif
