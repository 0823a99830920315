#ifndef SENDARIX_QHIST_H
#define SENDARIX_QHIST_H

#include <stddef.h>

struct strbuf;

/*
 * Per-message delivery history: one file per message beside the queue,
 * queue_directory/history/ID, holding one JSON object per line:
 *
 *	{"time":1764115200,"rcpt":"a@b.example","status":"deferred",
 *	 "dsn":"4.4.1","relay":"none","reply":"connect to ...: refused"}
 *
 * "status" is sent, deferred, bounced, expired (one per recipient), or a
 * message event with an empty "rcpt": delay (a delay notice was sent).
 * Lines are appended with O_APPEND, whole records in one write; a line
 * that does not parse (a torn write) is skipped when reading.
 */
#define QHIST_DIR	"history"

#define QHIST_SENT	"sent"
#define QHIST_DEFERRED	"deferred"
#define QHIST_BOUNCED	"bounced"
#define QHIST_EXPIRED	"expired"
#define QHIST_DELAY	"delay"

struct qhist_rec {
	long    time;
	char   *rcpt;
	char   *status;
	char   *dsn;
	char   *relay;
	char   *reply;
};

struct qhist {
	size_t  n;
	size_t  cap;
	struct qhist_rec *recs;
	size_t  bad;			/* lines skipped */
};

extern char *qhist_path(const char *, const char *);
extern int qhist_format(struct strbuf *, const struct qhist_rec *);
extern int qhist_append(const char *, const char *, const struct qhist_rec *,
			        size_t, struct strbuf *);
extern int qhist_write(const char *, const char *, const struct strbuf *,
		               struct strbuf *);
extern int qhist_parse_line(const char *, size_t, struct qhist_rec *);
extern void qhist_rec_clear(struct qhist_rec *);
extern struct qhist *qhist_parse(const char *, size_t);
extern struct qhist *qhist_read(const char *, const char *, struct strbuf *);
extern struct qhist *qhist_free(struct qhist *);
extern const struct qhist_rec *qhist_last(const struct qhist *, const char *);
extern int qhist_has(const struct qhist *, const char *);
extern int qhist_remove(const char *, const char *);

#endif
