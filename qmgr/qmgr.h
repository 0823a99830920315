#ifndef SENDARIX_QMGR_H
#define SENDARIX_QMGR_H

#include <sys/queue.h>
#include <sys/time.h>
#include <stddef.h>

#include "qfile.h"

struct event_base;
struct attr_list;
struct strbuf;

/* Parameters (qmgr.c). */
extern long var_queue_run_delay;
extern long var_min_backoff;
extern long var_max_backoff;
extern long var_greylist_retry;
extern long var_max_queue_lifetime;
extern long var_delay_warning_time;
extern long var_delivery_timeout;
extern long var_dest_concurrency;
extern long var_delivery_concurrency;
extern long var_active_limit;
extern long var_rcpt_limit;
extern char *var_relayhost;
extern char *var_transport_maps;
extern const char *var_bounce_service;
extern const char *var_smtp_service;

/* One recipient of an active message. */
struct qmgr_rcpt {
	char   *addr;
	char   *orcpt;			/* DSN, "" when none */
	char   *notify;
	off_t   status_offset;
	char    status;			/* QSTAT_* as on disk */
	char    pass;			/* QMGR_PASS_* this pass */
	char   *dsn;			/* last result, this pass */
	char   *relay;
	char   *reply;
};

#define QMGR_PASS_NONE		0	/* not tried yet */
#define QMGR_PASS_DEFERRED	1
#define QMGR_PASS_BOUNCED	2	/* bounce it when the pass ends */
#define QMGR_PASS_GREYLIST	3	/* deferred, looks like greylisting */

/* Steps of a message's end of pass (qmgr_msg_finish). */
#define QMGR_FIN_NONE		0
#define QMGR_FIN_SUCCESS	1
#define QMGR_FIN_FAILURE	2
#define QMGR_FIN_EXPIRED	3
#define QMGR_FIN_DELAY		4
#define QMGR_FIN_DISPOSE	5

#define QMGR_BUSY_RETRY		2	/* seconds: a file still in use */

/* A message in the active queue: the envelope, not the content. */
struct qmgr_msg {
	char    id[QFILE_ID_MAX];
	char   *sender;
	char   *ret;
	char   *envid;
	long    arrival_sec;
	long    arrival_usec;
	struct timeval active_time;
	long long size;
	size_t  nrcpts;
	struct qmgr_rcpt *rcpts;
	size_t  nentries;		/* requests queued or in flight */
	int     fin_step;		/* QMGR_FIN_* while ending the pass */
	int     gone;			/* the file vanished: drop */
	int     bounce_failed;		/* a bounce request failed */
	struct strbuf *hist;		/* history lines of this pass */
	struct qmgr_msg *hnext;		/* hash chain */
};

/* A destination: one nexthop, its queue of delivery requests. */
struct qmgr_entry;
TAILQ_HEAD(qmgr_entry_list, qmgr_entry);

struct qmgr_dest {
	char   *nexthop;
	int     active;			/* requests in flight */
	struct qmgr_entry_list todo;
	int     in_ring;
	TAILQ_ENTRY(qmgr_dest) ring;
	struct qmgr_dest *hnext;
};

TAILQ_HEAD(qmgr_dest_ring, qmgr_dest);

/* One delivery request: a message's recipients for one nexthop. */
struct qmgr_entry {
	struct qmgr_msg *msg;
	struct qmgr_dest *dest;
	size_t  nrcpt;
	size_t *rcpt;			/* indexes into msg->rcpts */
	struct qmgr_ipc *ipc;		/* while in flight */
	TAILQ_ENTRY(qmgr_entry) link;
};

/* qmgr_ipc.c: one request/reply over private/SERVICE, non-blocking. */
typedef void (*qmgr_ipc_cb) (struct attr_list *, const char *, void *);
struct qmgr_ipc;
extern struct qmgr_ipc *qmgr_ipc_start(const char *, struct strbuf *, long,
				               qmgr_ipc_cb, void *);
extern struct qmgr_ipc *qmgr_ipc_cancel(struct qmgr_ipc *);

/* qmgr_queue.c: scanning the queues, the active set. */
extern void qmgr_queue_init(void);
extern void qmgr_queue_recover(void);
extern void qmgr_queue_trigger(int);
extern void qmgr_queue_kick(void);
extern void qmgr_queue_defer_at(double);
extern double qmgr_now(void);
extern size_t qmgr_queue_count(void);
extern struct qmgr_msg *qmgr_msg_find(const char *);
extern void qmgr_msg_done(struct qmgr_msg *);

/* qmgr_msg.c: loading, results, end of pass. */
extern struct qmgr_msg *qmgr_msg_load(const char *);
extern void qmgr_msg_result(struct qmgr_msg *, size_t, const size_t *,
			            const char *const *, const char *const *,
			            const char *const *, const char *const *);
extern void qmgr_msg_defer_all(struct qmgr_msg *, size_t, const size_t *,
			               const char *, const char *);
extern void qmgr_msg_entry_done(struct qmgr_msg *);
extern void qmgr_msg_finish(struct qmgr_msg *);
extern struct qmgr_msg *qmgr_msg_free(struct qmgr_msg *);
extern long qmgr_backoff(const struct qmgr_msg *, int, long);
extern size_t qmgr_msg_bounce_inflight(void);
extern int qmgr_is_greylist(const char *, const char *);

/* qmgr_route.c: the nexthop of a recipient. */
#define QMGR_ROUTE_OK		0
#define QMGR_ROUTE_DEFER	1	/* table failure: try later */
#define QMGR_ROUTE_BOUNCE	2	/* unknown transport, bad address */
extern void qmgr_route_init(void);
extern int qmgr_route(const char *, struct strbuf *, struct strbuf *);
extern int qmgr_route_value(const char *, const char *, struct strbuf *,
			            struct strbuf *);

/* qmgr_sched.c: destinations, round robin, dispatch. */
extern void qmgr_sched_add(struct qmgr_msg *, const char *, size_t,
			           const size_t *);
extern void qmgr_sched_run(void);
extern size_t qmgr_sched_inflight(void);

#endif
