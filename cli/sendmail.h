#ifndef SENDARIX_SENDMAIL_H
#define SENDARIX_SENDMAIL_H

/*
 * sendmail - private interfaces of the sendmail(1) front end
 */

#include <stddef.h>
#include <stdio.h>

struct strbuf;

#define SENDMAIL_SERVICE	"public/sendmail"
#define SENDMAIL_PICKUP		"public/pickup"	/* maildrop trigger */
#define SENDMAIL_MAILDROP	"maildrop"
#define SENDMAIL_DROP_VERSION	"1"	/* maildrop file format (ipc.md) */
#define SENDMAIL_DATA_MAX	65536	/* one "data" value (ipc.md) */
#define SENDMAIL_REASON_MAX	512
#define SENDMAIL_LINE_MAX	65536	/* one piece of an input line */
#define SENDMAIL_RCPT_MAX	10000	/* recipients per message */
#define SENDMAIL_FULL_NAME_MAX	256	/* as cleanup's limit */

/* Settings from main.cf and the command line (sendmail.c). */
extern const char *sendmail_queue_dir;
extern const char *sendmail_myorigin;
extern const char *sendmail_myhostname;
extern int sendmail_verbose;

/* Fatal errors: "sendmail: fatal: ..." on stderr, exit with a sysexit. */
extern void sendmail_fatal(int, const char *,...)
		__attribute__((format(printf, 2, 3), noreturn));
extern void sendmail_warn(const char *,...)
		__attribute__((format(printf, 1, 2)));

/* One envelope. */
struct sendmail_env {
	char   *sender;			/* "" for <> */
	char  **rcpts;
	size_t  nrcpt;
	size_t  cap;
	const char *full_name;		/* -F, or NULL */
	const char *body;		/* -B / BODY=, or NULL */
	const char *notify;		/* -N, or NULL */
	const char *ret;		/* -R, or NULL */
	const char *envid;		/* -V, or NULL */
};

extern int sendmail_env_add(struct sendmail_env *, const char *);
extern void sendmail_env_clear(struct sendmail_env *);

/* A submission to cleanup (sendmail_submit.c). */
struct cleanup_client;

struct sendmail_sub {
	int     fd;
	int     status;			/* 0, 4 or 5 */
	char    reason[SENDMAIL_REASON_MAX];
	char    queue_id[96];
	struct strbuf *chunk;		/* content not yet sent */
	struct strbuf *out;
	struct cleanup_client *cl;	/* cleanup_client.h */
	/* The system is down: the message goes to maildrop/ instead. */
	int     drop_dir;		/* maildrop/ (O_PATH), or -1 */
	char    drop_tmp[72];		/* ".NAME" while being written */
	char    drop_name[64];		/* NAME, once renamed */
};

extern int sendmail_sub_open(struct sendmail_sub *,
			             const struct sendmail_env *);
extern void sendmail_sub_write(struct sendmail_sub *, const char *, size_t);
extern int sendmail_sub_close(struct sendmail_sub *);
extern void sendmail_sub_free(struct sendmail_sub *);
extern int sendmail_sub_error(struct sendmail_sub *, int, const char *,...)
		__attribute__((format(printf, 3, 4)));
extern void sendmail_sub_envelope(struct strbuf *,
				          const struct sendmail_env *);

/* The maildrop (sendmail_drop.c). */
extern int sendmail_drop_open(struct sendmail_sub *);
extern int sendmail_drop_close(struct sendmail_sub *);
extern void sendmail_drop_free(struct sendmail_sub *);

/* Addresses (sendmail_addr.c). */
extern char *sendmail_addr_qualify(const char *);
extern int sendmail_addr_list(const char *, size_t, struct sendmail_env *);

/* Input lines (sendmail.c). */
extern int sendmail_getline(FILE *, struct strbuf *, int *);

/* -bs (sendmail_smtp.c). */
extern int sendmail_smtp(struct sendmail_env *);

#endif
