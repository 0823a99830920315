#ifndef SENDARIX_STREAM_H
#define SENDARIX_STREAM_H

#include <sys/types.h>
#include <sys/socket.h>
#include <stddef.h>

struct event_base;
struct evbuffer;
struct bufferevent;

/*
 * One network connection (SMTP, inbound or outbound) over a libevent
 * bufferevent, so that TLS can be pushed underneath the protocol code
 * later without it noticing. See stream.c.
 */
struct stream;

/* stream_enable(), stream_disable(): the same bits as EV_READ, EV_WRITE. */
#define STREAM_READ		0x02
#define STREAM_WRITE		0x04

/* What the event callback is told: BEV_EVENT_* values, plus CONNECTING. */
#define STREAM_EV_READING	0x01	/* while reading */
#define STREAM_EV_WRITING	0x02	/* while writing */
#define STREAM_EV_EOF		0x10	/* the peer closed its side */
#define STREAM_EV_ERROR		0x20	/* see the errno argument */
#define STREAM_EV_TIMEOUT	0x40	/* a read, write or connect timeout */
#define STREAM_EV_CONNECTED	0x80	/* stream_connect() completed */
#define STREAM_EV_CONNECTING	0x100	/* with ERROR or TIMEOUT: in connect */

/* tls_stream_start() roles. */
#define STREAM_TLS_SERVER	0
#define STREAM_TLS_CLIENT	1

typedef void (*STREAM_IO_FN) (struct stream *, void *);
typedef void (*STREAM_EVENT_FN) (struct stream *, int, int, void *);
typedef struct bufferevent *(*STREAM_FILTER_FN) (struct bufferevent *,
						         void *);
typedef void (*STREAM_CLOSE_FN) (struct bufferevent *);

extern struct stream *stream_accept(struct event_base *, int);
extern struct stream *stream_connect(struct event_base *,
				             const struct sockaddr *, socklen_t,
				             long);
extern struct stream *stream_close(struct stream *);
extern void stream_setcb(struct stream *, STREAM_IO_FN, STREAM_IO_FN,
			         STREAM_EVENT_FN, void *);
extern void stream_timeouts(struct stream *, long, long);
extern void stream_set_write_lowat(struct stream *, size_t);
extern void stream_enable(struct stream *, int);
extern void stream_disable(struct stream *, int);

extern struct evbuffer *stream_input(struct stream *);
extern struct evbuffer *stream_output(struct stream *);
extern size_t stream_read(struct stream *, void *, size_t);
extern void stream_drain(struct stream *, size_t);
extern int stream_write(struct stream *, const void *, size_t);
extern int stream_write_buffer(struct stream *, struct evbuffer *);
extern size_t stream_pending(const struct stream *);
extern int stream_flush(struct stream *);

extern int stream_push_filter(struct stream *, STREAM_FILTER_FN, void *,
			              STREAM_CLOSE_FN);
extern struct bufferevent *stream_filter(const struct stream *);
extern int stream_tls_active(const struct stream *);

extern int stream_addr_format(const struct sockaddr *, char *, size_t,
			              int *);
extern int stream_peer_addr(const struct stream *, char *, size_t, int *);
extern int stream_local_addr(const struct stream *, char *, size_t, int *);

#endif
