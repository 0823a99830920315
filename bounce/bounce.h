#ifndef SENDARIX_BOUNCE_H
#define SENDARIX_BOUNCE_H

/*
 * bounce - private interfaces of the bounce daemon. See bounce.c.
 */

#include <stddef.h>

struct attr_list;
struct event_base;
struct strbuf;

/* Parameters (bounce.c). */
extern char *var_bounce_myhostname;
extern char *var_bounce_cleanup_path;	/* private/$cleanup_service_name */
extern char *var_double_bounce_recipient;
extern long long var_bounce_size_limit;
extern long var_bounce_timeout;
extern long var_bounce_queue_lifetime;	/* 0: unknown */

#define BOUNCE_REQUEST_MAX	(16 * 1024 * 1024)	/* one request */
#define BOUNCE_VALUE_MAX	65536	/* one request value */

/* The outcome of one request, for the reply to qmgr. */
struct bounce_result {
	int     status;			/* 0, 4 (retry) or 5 (bad request) */
	char    queue_id[64];		/* of the notification, or "" */
	char    reason[256];		/* with status 4 or 5 */
};

/* bounce_session.c */
extern void bounce_session_init(struct event_base *);
extern void bounce_session_accept(int);
extern size_t bounce_session_count(void);
extern void bounce_session_shutdown(void);

/* bounce_notify.c */
extern void bounce_notify(const struct attr_list *, struct bounce_result *);

/* bounce_cleanup.c */
typedef int (*bounce_compose_fn) (const char *, struct strbuf *, void *);
#define BOUNCE_SUBMIT_8BIT	(1 << 0)	/* body=8BITMIME */
#define BOUNCE_SUBMIT_UTF8	(1 << 1)	/* smtputf8=1 */
extern int bounce_cleanup_submit(const char *, int, bounce_compose_fn,
				         void *, struct bounce_result *);

#endif
