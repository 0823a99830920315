#ifndef SENDARIX_CLEANUP_CLIENT_H
#define SENDARIX_CLEANUP_CLIENT_H

#include <stddef.h>

#include "qfile.h"

struct event_base;
struct strbuf;

/*
 * The client side of the cleanup protocol (docs/ipc.md "cleanup"), for
 * every program that submits mail: smtpd (event-driven), bounce, pickup
 * and sendmail (blocking, the same state machine on a private loop).
 */
struct cleanup_client;

/* What cleanup answered, or why it did not. */
struct cleanup_result {
	int     status;			/* 0, 4 or 5 */
	int     final;			/* the verdict (else the first reply) */
	char    queue_id[QFILE_ID_MAX + 1];
	char    reason[512];		/* cleanup's, for status 4 or 5 */
	char    lost[128];		/* no reply: why; else empty */
	int     committed;		/* lost, but the file was committed */
};

typedef void (*cleanup_client_reply_fn) (struct cleanup_client *,
					         const struct cleanup_result *,
					         void *);
typedef void (*cleanup_client_drain_fn) (struct cleanup_client *, void *);

/* Backpressure: a writer should wait above HIWAT until below LOWAT. */
#define CLEANUP_CLIENT_HIWAT	(1024 * 1024)
#define CLEANUP_CLIENT_LOWAT	(256 * 1024)

/* Event-driven. */
extern int cleanup_client_connect(const char *, int);
extern struct cleanup_client *cleanup_client_open(struct event_base *, int,
						          const struct strbuf *,
						          long,
						          cleanup_client_reply_fn,
						          cleanup_client_drain_fn,
						          void *);
extern void cleanup_client_write(struct cleanup_client *, const void *,
				         size_t);
extern void cleanup_client_finish(struct cleanup_client *,
				          const struct strbuf *);
extern size_t cleanup_client_pending(const struct cleanup_client *);
extern void cleanup_client_stalled(struct cleanup_client *);
extern void cleanup_client_free(struct cleanup_client *);

/* Blocking. */
extern struct cleanup_client *cleanup_client_start(int,
						           const struct strbuf *,
						           long,
						       struct cleanup_result *);
extern int cleanup_client_put(struct cleanup_client *, const void *, size_t,
			              struct cleanup_result *);
extern int cleanup_client_end(struct cleanup_client *, const struct strbuf *,
			              struct cleanup_result *);

#endif
