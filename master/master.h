#ifndef SENDARIX_MASTER_H
#define SENDARIX_MASTER_H

#include <sys/types.h>
#include <time.h>

struct event;
struct event_base;
struct mastercf;
struct mastercf_service;
struct strbuf;

#ifndef SENDARIX_VERSION
#define SENDARIX_VERSION	"0.1"
#endif

#define MASTER_PID_FILE		"pid/master.pid"	/* queue-relative */
#define MASTER_LISTEN_BACKLOG	4096
#define MASTER_STABLE_SECS	10	/* a child this old "ran OK" */
#define MASTER_TOO_SOON_SECS	1	/* exit 0 sooner than this: throttle */

/*
 * One master.cf service as master runs it. The listening sockets belong
 * to the service and survive a reload when a service of the same name
 * and type (and, for unix, the same folder) is still configured.
 */
struct master_serv {
	struct master_serv *next;
	char   *name;
	char   *type;			/* "inet" or "unix" */
	int     private_;
	int     chroot;
	int     wakeup;			/* seconds, 0 = none */
	int     maxproc;		/* resolved: >= 1 */
	char   *path;			/* command, resolved to a path */
	char  **extra;			/* -o name=value ... then args */
	size_t  nextra;
	int    *fds;			/* listening sockets */
	int     nfds;
	char   *sockpath;		/* unix: queue-relative socket path */
	int     nproc;			/* live children of this service */
	int     failures;		/* consecutive abnormal exits */
	int     restart_pending;
	struct event *restart_ev;
	int     lineno;
};

/* One child process. serv is NULL once the child is retired (reload). */
struct master_proc {
	struct master_proc *next;
	pid_t   pid;
	struct master_serv *serv;
	char   *path;
	time_t  started;
	int     hup_pending;		/* retired by a reload, not yet told */
};

/* master.c */
extern struct event_base *master_base;
extern char *master_config_dir;		/* absolute */
extern int master_stopping;
extern int master_is_root;
extern uid_t master_owner_uid;
extern gid_t master_owner_gid;
extern char *master_owner_env;		/* SENDARIX_MAIL_OWNER=..., or NULL */
extern struct master_serv *master_services;
extern struct master_proc *master_procs;
extern void master_fatal(const char *,...)
		__attribute__((format(printf, 1, 2), noreturn));

/* master_queue.c */
extern int master_queue_init(const char *, struct strbuf *);
extern int master_pid_lock(struct strbuf *);
extern int master_pid_write(int, struct strbuf *);
extern void master_pid_remove(void);

/* master_listen.c */
extern int master_listen_open(struct master_serv *, struct strbuf *);
extern void master_listen_close(struct master_serv *, int);

/* master_serv.c */
extern struct master_serv *master_serv_new(const struct mastercf_service *,
					           struct strbuf *);
extern struct master_serv *master_serv_free(struct master_serv *);
extern int master_serv_configure(const struct mastercf *, int);

/* master_spawn.c */
extern void master_spawn_all(struct master_serv *);
extern void master_spawn_start_all(void);
extern int master_reap(int);
extern void master_signal_children(int);
extern void master_retire_children(void);
extern size_t master_child_count(void);
extern void master_spawn_cancel(struct master_serv *);

#endif
