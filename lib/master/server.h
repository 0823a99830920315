#ifndef SENDARIX_SERVER_H
#define SENDARIX_SERVER_H

#include <sys/socket.h>
#include <stddef.h>

struct event_base;

/*
 * The event-driven server skeleton: many sessions on one libevent loop.
 *
 * master starts a daemon as
 *
 *	command -n SERVICE -t inet|unix [-c CONFIG_DIR] [-v] [-C]
 *		[-o name=value ...] [service args...]
 *
 * with the listening socket(s) at fds 3 .. 3+N-1 and SENDARIX_LISTEN_FDS=N
 * in the environment (also SENDARIX_CONFIG_DIR). The skeleton loads
 * main.cf (plus the -o overrides), opens the log, runs pre_init while
 * still privileged, drops to mail_owner when started as root (and chroots
 * to queue_directory if master.cf says so), makes the loop, runs
 * post_init, then calls accept() for each new connection.
 *
 * Signals: SIGTERM stops now: shutdown() is called (say 421 to clients)
 * and the process exits. SIGHUP stops gracefully: listeners are closed,
 * and the process exits once sessions() returns 0; the daemon should call
 * server_session_done() whenever a session ends so that this is noticed
 * at once. SIGPIPE is ignored.
 */
struct server_listener {
	int     fd;
	const char *service;		/* master.cf service name */
	const char *type;		/* "inet" or "unix" */
};

struct server_ops {
	void    (*pre_init) (void);
	void    (*post_init) (struct event_base *);
	void    (*accept) (int, const struct sockaddr *, socklen_t,
			           const struct server_listener *);
	size_t  (*sessions) (void);
	void    (*shutdown) (void);
};

extern int server_event_main(int, char **, const char *,
			             const struct server_ops *);
extern struct event_base *server_base(void);
extern void server_session_done(void);
extern const char *server_service_name(void);
extern int server_stopping(void);
extern int server_chrooted(void);

#endif
