/*
 * sandbox - an SMTP sink for operators and tests
 *
 * SYNOPSIS
 *	sandbox [-v] [-l [addr:]port]... [-d maildir] [-r rules]
 *		[-n hostname] [-x ext,ext] [-p pidfile] [-s statsfile]
 *		[-m max_size] [-t idle_timeout] [-c certfile [-k keyfile]]
 *
 *	(run as "sendarix sandbox ...", which executes this program from
 *	daemon_directory with the same arguments)
 *
 *	int	sandbox_action_parse(const char *result,
 *			struct sandbox_action *act)
 *
 * DESCRIPTION
 *	A receiving MTA that keeps what it gets: one process, one libevent
 *	loop, many sessions. It speaks SMTP (EHLO, HELO, MAIL, RCPT, DATA,
 *	BDAT, RSET, NOOP, QUIT) with PIPELINING, and stores each accepted
 *	message in a maildir: the content byte for byte as received (DATA
 *	dot-unstuffed, BDAT as is) in new/NAME, and the envelope as JSON in
 *	env/NAME.env, written before new/NAME appears.
 *
 *	With -c (a PEM certificate chain; its key there or in -k) it offers
 *	STARTTLS (RFC 3207): after the handshake the session starts over,
 *	and the envelope and log name the protocol and cipher used.
 *
 *	A table (-r, a pcre: file by default, or any type:name) is asked
 *	with each recipient address; the result says what to do: OK,
 *	"4xx/5xx TEXT", "GREYLIST n", "DROP", "STALL n" or "DATA 4xx/5xx
 *	TEXT". The table is also asked with "ehlo:NAME" and "connect:ADDR";
 *	only results that start with EHLO or CONNECT are used there.
 *	Without -r a built-in rule set keyed on the local part applies.
 *	sendarix-sandbox(1) is the manual.
 *
 *	sandbox_action_parse() reads one table result into "act"; 0, or -1
 *	when the result is not an action.
 *
 * MEMORY
 *	One struct sandbox_sess per connection, freed in sandbox_sess_free()
 *	when the connection ends; the transaction's strings belong to it.
 *
 * DIAGNOSTICS
 *	Usage errors exit 2; a maildir, table or address that cannot be
 *	set up exits 1. Network input never ends the process: it gets a
 *	reply and one log line. SIGTERM and SIGINT end the loop cleanly;
 *	SIGUSR1 logs the statistics (and writes the -s file).
 *
 * SECURITY
 *	Runs as the invoking user and binds only what it is told (loopback
 *	by default). It reads SMTP from anyone who can connect, bounded by
 *	line, message, recipient and idle limits.
 *
 * SEE ALSO
 *	sendarix-sandbox(1), map(3)
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#include "log.h"
#include "map.h"
#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "smtp_data.h"
#include "strbuf.h"
#include "strhash.h"
#include "stream.h"
#include "tls.h"
#include "xmalloc.h"
#include "sandbox.h"

#define SANDBOX_DEF_LISTEN	"127.0.0.1:2526"
#define SANDBOX_DEF_MAILDIR	"sandbox-maildir"
#define SANDBOX_DEF_MAXSIZE	(50LL * 1024 * 1024)
#define SANDBOX_DEF_IDLE	300
#define SANDBOX_LINE_MAX	4096	/* command line, with CRLF */
#define SANDBOX_WBUF		65536	/* message write buffer */
#define SANDBOX_RCPT_MAX	1000	/* recipients per transaction */
#define SANDBOX_LISTEN_MAX	8
#define SANDBOX_OUT_MAX		(1024 * 1024)	/* unread replies */
#define SANDBOX_GREY_MAX	100000	/* greylist entries */
#define SANDBOX_GREY_BUCKETS	4099

/* Extensions EHLO can offer; -x takes them away. */
#define SANDBOX_EXT_PIPELINING	(1 << 0)
#define SANDBOX_EXT_SIZE	(1 << 1)
#define SANDBOX_EXT_8BITMIME	(1 << 2)
#define SANDBOX_EXT_SMTPUTF8	(1 << 3)
#define SANDBOX_EXT_ENHANCED	(1 << 4)
#define SANDBOX_EXT_CHUNKING	(1 << 5)
#define SANDBOX_EXT_EHLO	(1 << 6)	/* EHLO itself */
#define SANDBOX_EXT_STARTTLS	(1 << 7)	/* with -c only */

static const struct {
	const char *name;
	int     bit;
}       sandbox_exts[] = {
	{"pipelining", SANDBOX_EXT_PIPELINING},
	{"size", SANDBOX_EXT_SIZE},
	{"8bitmime", SANDBOX_EXT_8BITMIME},
	{"smtputf8", SANDBOX_EXT_SMTPUTF8},
	{"enhancedstatuscodes", SANDBOX_EXT_ENHANCED},
	{"chunking", SANDBOX_EXT_CHUNKING},
	{"ehlo", SANDBOX_EXT_EHLO},
	{"starttls", SANDBOX_EXT_STARTTLS},
};

#define SANDBOX_NEXTS	(sizeof(sandbox_exts) / sizeof(sandbox_exts[0]))

/*
 * The built-in rules (no -r): a prefix of the local part, matched
 * without regard to case, and the action. Listed in sendarix-sandbox(1).
 */
static const struct {
	const char *prefix;
	const char *action;
}       sandbox_default_rules[] = {
	{"defer", "450 4.2.0 Mailbox temporarily unavailable (sandbox rule)"},
	{"bounce", "550 5.1.1 No such user (sandbox rule)"},
	{"reject", "550 5.1.1 No such user (sandbox rule)"},
	{"greylist", "GREYLIST 60"},
	{"drop", "DROP"},
	{"stall", "STALL 60"},
	{"datadefer", "DATA 451 4.3.0 Message deferred after DATA (sandbox rule)"},
	{"datareject", "DATA 554 5.6.0 Message rejected after DATA (sandbox rule)"},
};

#define SANDBOX_NDEFAULTS \
	(sizeof(sandbox_default_rules) / sizeof(sandbox_default_rules[0]))

struct sandbox_grey {
	struct sandbox_grey *next;
	double  first;			/* CLOCK_MONOTONIC seconds */
	char    key[];
};

struct sandbox_stats {
	unsigned long connections;
	unsigned long connections_now;
	unsigned long max_concurrent;
	unsigned long transactions;
	unsigned long messages;
	unsigned long messages_rejected;
	unsigned long bytes;
	unsigned long rcpt_accepted;
	unsigned long rcpt_deferred;
	unsigned long rcpt_rejected;
	unsigned long dropped;
	unsigned long stalled;
	unsigned long pipelining_violations;
	unsigned long tls_sessions;
	unsigned long messages_tls;	/* stored, received under TLS */
};

struct sandbox {
	struct event_base *base;
	struct evconnlistener *listeners[SANDBOX_LISTEN_MAX];
	int     nlisteners;
	struct event *sig_term;
	struct event *sig_int;
	struct event *sig_usr1;
	struct map *rules;		/* NULL: built-in rules */
	SSL_CTX *tls_ctx;		/* -c: STARTTLS on offer */
	char   *maildir;
	char   *hostname;		/* greeting and EHLO */
	char   *filehost;		/* host part of maildir names */
	char   *pidfile;
	char   *statsfile;
	int     exts;			/* SANDBOX_EXT_* offered */
	long long max_size;
	long    idle;
	unsigned long name_seq;
	struct sandbox_grey *grey[SANDBOX_GREY_BUCKETS];
	unsigned long grey_count;
	struct sandbox_stats st;
	struct sandbox_sess *sessions;
};

/* Session states. */
#define SANDBOX_S_CMD		0	/* reading commands */
#define SANDBOX_S_DATA		1	/* reading DATA content */
#define SANDBOX_S_BDAT		2	/* reading a BDAT chunk */
#define SANDBOX_S_CLOSING	3	/* flushing replies, then close */
#define SANDBOX_S_TLS		4	/* in the TLS handshake */

struct sandbox_sess {
	struct sandbox *sb;
	struct sandbox_sess *prev;	/* all sessions, for the exit */
	struct sandbox_sess *next;
	struct stream *stream;		/* the client connection */
	unsigned long conn_no;
	char    addr[INET6_ADDRSTRLEN];
	int     port;
	int     state;
	int     esmtp;			/* EHLO was accepted */
	char   *helo;
	char   *tls;			/* protocol and cipher, or NULL */
	int     paused;			/* a STALL is running */
	int     out_blocked;		/* too many unread replies */
	struct event *stall_ev;
	struct strbuf *stall_reply;
	int     stall_greeting;
	int     skip_line;		/* discarding an over-long line */
	int     warned_pipelining;
	unsigned long commands;
	unsigned long tx_count;		/* transactions so far */
	unsigned long msg_count;	/* messages stored */
	/* transaction */
	int     in_tx;
	char    txid[48];
	char   *sender;
	char   *mail_params;
	int     smtputf8;
	char  **rcpts;
	size_t  nrcpt;
	int     data_code;		/* from a DATA rule, else 0 */
	char   *data_text;
	/* message content */
	int     fd;			/* -1: none */
	char    name[256];		/* maildir file name */
	long long size;
	int     too_big;
	int     write_err;
	struct smtp_data scan;		/* DATA content (smtp_data.h) */
	struct strbuf *wbuf;
	int     bdat_started;
	int     bdat_failed;		/* BDAT chunks are being discarded */
	const char *bdat_error;		/* reply for discarded chunks */
	long long bdat_left;
	int     bdat_last;
};

static void sandbox_sess_input(struct sandbox_sess *);
static void sandbox_sess_free(struct sandbox_sess *);

/* sandbox_error - one line for the user, as sendarix(1) writes them */
static void
sandbox_error(const char *fmt,...)
{
	va_list ap;

	fputs("sendarix: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* sandbox_usage - the synopsis */
static void
sandbox_usage(void)
{
	fprintf(stderr,
		"usage: sendarix sandbox [-l [addr:]port]... [-d maildir]"
		" [-r rules]\n"
		"\t[-n hostname] [-x ext,ext] [-p pidfile] [-s statsfile]"
		" [-m max_size]\n"
		"\t[-t idle_timeout] [-c certfile [-k keyfile]]\n");
}

/* sandbox_parse_size - "50m", "1024", "10k"; -1 when malformed */
static long long
sandbox_parse_size(const char *str)
{
	char   *end;
	long long n;
	long long mult = 1;

	errno = 0;
	n = strtoll(str, &end, 10);
	if (errno || end == str || n < 0)
		return (-1);
	switch (tolower((unsigned char) *end)) {
	case 0:
		break;
	case 'k':
		mult = 1024;
		end++;
		break;
	case 'm':
		mult = 1024 * 1024;
		end++;
		break;
	case 'g':
		mult = 1024LL * 1024 * 1024;
		end++;
		break;
	default:
		return (-1);
	}
	if (*end != 0 || n > LLONG_MAX / mult)
		return (-1);
	return (n * mult);
}

/* sandbox_parse_secs - a count of seconds within bounds, or -1 */
static long
sandbox_parse_secs(const char *str, long max)
{
	char   *end;
	long    n;

	errno = 0;
	n = strtol(str, &end, 10);
	if (errno || end == str || *end != 0 || n < 0 || n > max)
		return (-1);
	return (n);
}

/* sandbox_action_parse - a table result to an action */
int
sandbox_action_parse(const char *result, struct sandbox_action *act)
{
	const char *p = result;
	size_t  wlen;
	char   *end;
	long    n;

	memset(act, 0, sizeof(*act));
	while (*p == ' ' || *p == '\t')
		p++;
	wlen = strcspn(p, " \t");
	if (wlen == 4 && strncasecmp(p, "EHLO", 4) == 0) {
		act->stage = SANDBOX_STAGE_EHLO;
	} else if (wlen == 7 && strncasecmp(p, "CONNECT", 7) == 0) {
		act->stage = SANDBOX_STAGE_CONNECT;
	}
	if (act->stage != SANDBOX_STAGE_RCPT) {
		p += wlen;
		while (*p == ' ' || *p == '\t')
			p++;
		wlen = strcspn(p, " \t");
	}
	if (wlen == 0)
		return (-1);
	if ((wlen == 2 && strncasecmp(p, "OK", 2) == 0)
	    || (wlen == 5 && strncasecmp(p, "DUNNO", 5) == 0)) {
		act->kind = SANDBOX_ACT_OK;
		p += wlen;
	} else if (wlen == 4 && strncasecmp(p, "DROP", 4) == 0) {
		act->kind = SANDBOX_ACT_DROP;
		p += wlen;
	} else if ((wlen == 8 && strncasecmp(p, "GREYLIST", 8) == 0)
		   || (wlen == 5 && strncasecmp(p, "STALL", 5) == 0)) {
		act->kind = wlen == 5 ? SANDBOX_ACT_STALL : SANDBOX_ACT_GREYLIST;
		p += wlen;
		errno = 0;
		n = strtol(p, &end, 10);
		if (errno || end == p || n < 0 || n > 86400)
			return (-1);
		act->secs = n;
		p = end;
	} else {
		if (wlen == 4 && strncasecmp(p, "DATA", 4) == 0) {
			act->kind = SANDBOX_ACT_DATA;
			p += wlen;
			while (*p == ' ' || *p == '\t')
				p++;
		} else {
			act->kind = SANDBOX_ACT_REPLY;
		}
		if (!(p[0] == '4' || p[0] == '5') || !isdigit((unsigned char) p[1])
		    || !isdigit((unsigned char) p[2])
		    || (p[3] != 0 && p[3] != ' ' && p[3] != '\t'))
			return (-1);
		act->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strlen(p) > SANDBOX_TEXT_MAX || strpbrk(p, "\r\n") != NULL)
			return (-1);
		snprintf(act->text, sizeof(act->text), "%s", p);
		return (0);
	}
	while (*p == ' ' || *p == '\t')
		p++;
	return (*p == 0 ? 0 : -1);
}

/* sandbox_has_esc - does the text start with an enhanced status code */
static size_t
sandbox_has_esc(const char *text)
{
	const char *p = text;
	int     part;

	for (part = 0; part < 3; part++) {
		if (!isdigit((unsigned char) *p))
			return (0);
		while (isdigit((unsigned char) *p))
			p++;
		if (part < 2 && *p++ != '.')
			return (0);
	}
	if (*p == ' ')
		return ((size_t) (p + 1 - text));
	return (*p == 0 ? (size_t) (p - text) : 0);
}

/* sandbox_reply - queue one reply line */
static void
sandbox_reply(struct sandbox_sess *s, const char *fmt,...)
{
	struct evbuffer *out = stream_output(s->stream);
	char    line[2048];
	const char *text;
	va_list ap;
	int     n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;

	/*
	 * Without ENHANCEDSTATUSCODES the "x.y.z " after the code goes, as
	 * in a server that does not have the extension.
	 */
	text = line;
	if (!(s->sb->exts & SANDBOX_EXT_ENHANCED) && strlen(line) > 4
	    && (line[3] == ' ' || line[3] == '-')) {
		size_t  skip = sandbox_has_esc(line + 4);

		if (skip) {
			evbuffer_add(out, line, 4);
			text = line + 4 + skip;
		}
	}
	evbuffer_add_printf(out, "%s\r\n", text);
}

/* sandbox_close - stop reading; close once the replies are out */
static void
sandbox_close(struct sandbox_sess *s)
{
	s->state = SANDBOX_S_CLOSING;
	stream_disable(s->stream, STREAM_READ);
}

/* sandbox_stats_json - the counters as a JSON object */
static json_t *
sandbox_stats_json(struct sandbox *sb)
{
	return (json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
			  " s:I, s:I, s:I, s:I, s:I, s:I}",
			  "connections", (json_int_t) sb->st.connections,
			  "connections_current",
			  (json_int_t) sb->st.connections_now,
			  "max_concurrent", (json_int_t) sb->st.max_concurrent,
			  "transactions", (json_int_t) sb->st.transactions,
			  "messages", (json_int_t) sb->st.messages,
			  "messages_rejected",
			  (json_int_t) sb->st.messages_rejected,
			  "bytes", (json_int_t) sb->st.bytes,
			  "recipients_accepted",
			  (json_int_t) sb->st.rcpt_accepted,
			  "recipients_deferred",
			  (json_int_t) sb->st.rcpt_deferred,
			  "recipients_rejected",
			  (json_int_t) sb->st.rcpt_rejected,
			  "dropped", (json_int_t) sb->st.dropped,
			  "stalled", (json_int_t) sb->st.stalled,
			  "pipelining_violations",
			  (json_int_t) sb->st.pipelining_violations,
			  "tls_sessions", (json_int_t) sb->st.tls_sessions,
			  "messages_tls", (json_int_t) sb->st.messages_tls));
}

/* sandbox_write_json - write a JSON document to path, atomically */
static int
sandbox_write_json(const char *path, json_t *doc)
{
	char    tmp[PATH_MAX];
	int     n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long) getpid());
	if (n < 0 || (size_t) n >= sizeof(tmp))
		return (-1);
	if (json_dump_file(doc, tmp, JSON_COMPACT | JSON_SORT_KEYS) < 0) {
		unlink(tmp);
		return (-1);
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return (-1);
	}
	return (0);
}

/* sandbox_stats_save - update the -s file */
static void
sandbox_stats_save(struct sandbox *sb)
{
	json_t *doc;

	if (sb->statsfile == NULL)
		return;
	doc = sandbox_stats_json(sb);
	if (doc == NULL || sandbox_write_json(sb->statsfile, doc) < 0)
		log_warn("cannot write statistics file %s: %m", sb->statsfile);
	json_decref(doc);
}

/* sandbox_stats_log - one line with all counters */
static void
sandbox_stats_log(struct sandbox *sb)
{
	json_t *doc = sandbox_stats_json(sb);
	char   *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	log_info("statistics: %s", text ? text : "(out of memory)");
	free(text);
	json_decref(doc);
	sandbox_stats_save(sb);
}

/* sandbox_grey_hash - FNV-1a of the greylist key */
static unsigned long
sandbox_grey_hash(const char *key)
{
	return (strhash(key) % SANDBOX_GREY_BUCKETS);
}

/* sandbox_grey_clear - forget every greylist entry */
static void
sandbox_grey_clear(struct sandbox *sb)
{
	struct sandbox_grey *g;
	size_t  i;

	for (i = 0; i < SANDBOX_GREY_BUCKETS; i++) {
		while ((g = sb->grey[i]) != NULL) {
			sb->grey[i] = g->next;
			xfree(g);
		}
	}
	sb->grey_count = 0;
}

/* sandbox_grey_check - seconds still to wait for this triple, 0: pass */
static long
sandbox_grey_check(struct sandbox_sess *s, const char *rcpt, long secs)
{
	struct sandbox *sb = s->sb;
	struct strbuf *key = strbuf_new(128, 0);
	struct sandbox_grey *g;
	unsigned long h;
	struct timespec ts;
	double  now;
	double  left;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
	strbuf_printf(key, "%s/%s/%s", s->sender ? s->sender : "", rcpt,
		      s->addr);
	h = sandbox_grey_hash(STRBUF_STR(key));
	for (g = sb->grey[h]; g != NULL; g = g->next)
		if (strcmp(g->key, STRBUF_STR(key)) == 0)
			break;
	if (g == NULL) {
		if (sb->grey_count >= SANDBOX_GREY_MAX) {
			log_warn("greylist table full (%d entries); starting over",
				 SANDBOX_GREY_MAX);
			sandbox_grey_clear(sb);
		}
		g = xmalloc(sizeof(*g) + STRBUF_LEN(key) + 1);
		memcpy(g->key, STRBUF_STR(key), STRBUF_LEN(key) + 1);
		g->first = now;
		g->next = sb->grey[h];
		sb->grey[h] = g;
		sb->grey_count++;
	}
	strbuf_free(key);
	/* Whole seconds to go, rounded up, so that 0 means "passed". */
	left = (double) secs - (now - g->first);
	return (left > 0 ? (long) left + 1 : 0);
}

/* sandbox_tx_reset - forget the transaction; remove a partial file */
static void
sandbox_tx_reset(struct sandbox_sess *s)
{
	char    path[PATH_MAX];
	size_t  i;
	int     was_tx = s->in_tx;

	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
		snprintf(path, sizeof(path), "%s/tmp/%s", s->sb->maildir, s->name);
		unlink(path);
	}
	for (i = 0; i < s->nrcpt; i++)
		xfree(s->rcpts[i]);
	s->rcpts = xfree(s->rcpts);
	s->nrcpt = 0;
	s->sender = xfree(s->sender);
	s->mail_params = xfree(s->mail_params);
	s->data_text = xfree(s->data_text);
	s->data_code = 0;
	s->in_tx = 0;
	s->smtputf8 = 0;
	s->name[0] = 0;
	s->size = 0;
	s->too_big = 0;
	s->write_err = 0;
	s->bdat_started = 0;
	s->bdat_failed = 0;
	s->bdat_error = NULL;
	s->bdat_left = 0;
	s->bdat_last = 0;
	if (s->wbuf)
		strbuf_reset(s->wbuf);
	if (was_tx)
		sandbox_stats_save(s->sb);
}

/* sandbox_msg_open - create tmp/NAME for the content */
static int
sandbox_msg_open(struct sandbox_sess *s)
{
	struct sandbox *sb = s->sb;
	char    path[PATH_MAX];
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(s->name, sizeof(s->name), "%ld.%ld_%lu.%s",
		 (long) tv.tv_sec, (long) getpid(), ++sb->name_seq,
		 sb->filehost);
	snprintf(path, sizeof(path), "%s/tmp/%s", sb->maildir, s->name);
	s->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (s->fd < 0) {
		log_warn("%s: cannot create %s: %m", s->txid, path);
		s->write_err = 1;
		return (-1);
	}
	if (s->wbuf == NULL)
		s->wbuf = strbuf_new(SANDBOX_WBUF, 0);
	strbuf_reset(s->wbuf);
	s->size = 0;
	return (0);
}

/* sandbox_msg_flush - write the buffered content to the file */
static void
sandbox_msg_flush(struct sandbox_sess *s)
{
	const char *p = STRBUF_STR(s->wbuf);
	size_t  left = STRBUF_LEN(s->wbuf);
	ssize_t n;

	while (left > 0 && s->fd >= 0 && !s->write_err) {
		n = write(s->fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("%s: write %s: %m", s->txid, s->name);
			s->write_err = 1;
			break;
		}
		p += n;
		left -= (size_t) n;
	}
	strbuf_reset(s->wbuf);
}

/* sandbox_msg_write - append content, within the size limit */
static void
sandbox_msg_write(struct sandbox_sess *s, const char *data, size_t len)
{
	if (s->too_big || s->write_err || s->fd < 0)
		return;
	if ((long long) len > s->sb->max_size - s->size) {
		s->too_big = 1;
		return;
	}
	s->size += (long long) len;
	if (STRBUF_LEN(s->wbuf) + len > SANDBOX_WBUF)
		sandbox_msg_flush(s);
	if (len >= SANDBOX_WBUF) {
		strbuf_set(s->wbuf, data, len);
		sandbox_msg_flush(s);
	} else {
		strbuf_append(s->wbuf, data, len);
	}
}

/* sandbox_msg_envelope - write env/NAME.env */
static int
sandbox_msg_envelope(struct sandbox_sess *s)
{
	struct sandbox *sb = s->sb;
	char    path[PATH_MAX];
	json_t *doc;
	json_t *to;
	size_t  i;
	int     ret;

	to = json_array();
	for (i = 0; i < s->nrcpt; i++)
		json_array_append_new(to, json_string(s->rcpts[i]));
	doc = json_pack("{s:s, s:s, s:o, s:s, s:s, s:i, s:s, s:I, s:I, s:I,"
			" s:I, s:s, s:b, s:s}",
			"name", s->name,
			"from", s->sender,
			"to", to,
			"mail_params", s->mail_params ? s->mail_params : "",
			"client_address", s->addr,
			"client_port", s->port,
			"helo", s->helo ? s->helo : "",
			"connection", (json_int_t) s->conn_no,
			"transaction", (json_int_t) s->tx_count,
			"size", (json_int_t) s->size,
			"time", (json_int_t) time(NULL),
			"body", s->bdat_started ? "BDAT" : "DATA",
			"esmtp", s->esmtp,
			"tls", s->tls ? s->tls : "");
	if (doc == NULL)
		return (-1);
	snprintf(path, sizeof(path), "%s/env/%s.env", sb->maildir, s->name);
	ret = sandbox_write_json(path, doc);
	json_decref(doc);
	return (ret);
}

/* sandbox_msg_finish - end of content: store it or refuse it, and reply */
static void
sandbox_msg_finish(struct sandbox_sess *s)
{
	struct sandbox *sb = s->sb;
	char    from[PATH_MAX];
	char    to[PATH_MAX];

	if (s->fd >= 0 && !s->too_big && !s->write_err)
		sandbox_msg_flush(s);
	if (s->too_big) {
		sandbox_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		log_info("%s: reject: size over %lld, reply=552 5.3.4",
			 s->txid, sb->max_size);
		sb->st.messages_rejected++;
	} else if (s->write_err || s->fd < 0) {
		sandbox_reply(s, "451 4.3.0 Error: local error writing message");
		log_info("%s: defer: cannot write message, reply=451 4.3.0",
			 s->txid);
		sb->st.messages_rejected++;
	} else if (s->data_code) {
		sandbox_reply(s, "%d %s", s->data_code, s->data_text);
		log_info("%s: rule after DATA: size=%lld, reply=%d %s",
			 s->txid, s->size, s->data_code, s->data_text);
		sb->st.messages_rejected++;
	} else {
		snprintf(from, sizeof(from), "%s/tmp/%s", sb->maildir, s->name);
		snprintf(to, sizeof(to), "%s/new/%s", sb->maildir, s->name);
		close(s->fd);
		s->fd = -1;
		if (sandbox_msg_envelope(s) < 0 || rename(from, to) < 0) {
			log_warn("%s: cannot store %s: %m", s->txid, s->name);
			unlink(from);
			sandbox_reply(s, "451 4.3.0 Error: local error storing"
				      " message");
			sb->st.messages_rejected++;
		} else {
			sandbox_reply(s, "250 2.0.0 Ok: queued as %s", s->name);
			log_info("%s: stored %s: from=<%s>, nrcpt=%zu, size=%lld,"
				 " reply=250 2.0.0", s->txid, s->name, s->sender,
				 s->nrcpt, s->size);
			sb->st.messages++;
			if (s->tls)
				sb->st.messages_tls++;
			sb->st.bytes += (unsigned long) s->size;
			s->msg_count++;
		}
	}
	sandbox_tx_reset(s);
	s->state = SANDBOX_S_CMD;
}

/* sandbox_data_emit - DATA content from the scanner */
static void
sandbox_data_emit(void *ctx, const char *data, size_t len)
{
	sandbox_msg_write(ctx, data, len);
}

/* sandbox_data_input - take DATA content; 1 when more input is needed */
static int
sandbox_data_input(struct sandbox_sess *s)
{
	struct evbuffer *in = stream_input(s->stream);
	struct evbuffer_iovec v;
	size_t  used;
	int     done;

	while (evbuffer_peek(in, -1, NULL, &v, 1) > 0) {
		used = smtp_data_scan(&s->scan, v.iov_base, v.iov_len, &done);
		evbuffer_drain(in, used);
		if (done) {
			sandbox_msg_finish(s);
			return (0);
		}
	}
	return (1);
}

/* sandbox_bdat_input - take BDAT chunk bytes; 1 when more are needed */
static int
sandbox_bdat_input(struct sandbox_sess *s)
{
	struct evbuffer *in = stream_input(s->stream);
	size_t  avail;
	size_t  n;
	const char *seg;

	while (s->bdat_left > 0) {
		avail = evbuffer_get_length(in);
		if (avail == 0)
			return (1);
		n = avail;
		if ((long long) n > s->bdat_left)
			n = (size_t) s->bdat_left;
		if (n > SANDBOX_WBUF)
			n = SANDBOX_WBUF;
		if (s->bdat_failed) {
			evbuffer_drain(in, n);
		} else {
			seg = (const char *) evbuffer_pullup(in, (ev_ssize_t) n);
			sandbox_msg_write(s, seg, n);
			evbuffer_drain(in, n);
		}
		s->bdat_left -= (long long) n;
	}
	s->state = SANDBOX_S_CMD;
	if (s->bdat_failed) {
		sandbox_reply(s, "%s", s->bdat_error);
		if (s->bdat_last)
			sandbox_tx_reset(s);
	} else if (s->bdat_last) {
		sandbox_msg_finish(s);
	} else {
		sandbox_reply(s, "250 2.0.0 Ok: %lld octets received", s->size);
	}
	return (0);
}

/* sandbox_stall_done - a STALL is over: send the held reply */
static void
sandbox_stall_done(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct sandbox_sess *s = ctx;

	(void) unused_fd;
	(void) unused_what;
	s->paused = 0;
	event_free(s->stall_ev);
	s->stall_ev = NULL;
	if (STRBUF_LEN(s->stall_reply))
		sandbox_reply(s, "%s", STRBUF_STR(s->stall_reply));
	log_info("connection %lu: stall over, reply=%.*s", s->conn_no,
		 (int) strcspn(STRBUF_STR(s->stall_reply), "\r\n"),
		 STRBUF_STR(s->stall_reply));
	stream_timeouts(s->stream, s->sb->idle, 0);
	if (!s->out_blocked)
		stream_enable(s->stream, STREAM_READ);
	sandbox_sess_input(s);
}

/* sandbox_stall - hold back the reply for secs seconds */
static void
sandbox_stall(struct sandbox_sess *s, long secs, const char *fmt,...)
{
	struct timeval tv;
	va_list ap;

	strbuf_reset(s->stall_reply);
	va_start(ap, fmt);
	strbuf_vprintf(s->stall_reply, fmt, ap);
	va_end(ap);
	s->paused = 1;
	s->sb->st.stalled++;
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	s->stall_ev = evtimer_new(s->sb->base, sandbox_stall_done, s);
	evtimer_add(s->stall_ev, &tv);
	/* Leave the client's bytes in the kernel while we are silent. */
	stream_disable(s->stream, STREAM_READ);
	stream_timeouts(s->stream, 0, 0);
}

/* sandbox_lookup - ask the rule table; 0 no rule, 1 rule, -1 failure */
static int
sandbox_lookup(struct sandbox_sess *s, const char *key, int stage,
	       struct sandbox_action *act, const char **source)
{
	struct sandbox *sb = s->sb;
	const char *result = NULL;
	const char *local_end;
	size_t  i;
	size_t  plen;
	int     rc;

	*source = "default";
	if (sb->rules == NULL) {
		if (stage != SANDBOX_STAGE_RCPT)
			return (0);
		local_end = strrchr(key, '@');
		for (i = 0; i < SANDBOX_NDEFAULTS; i++) {
			plen = strlen(sandbox_default_rules[i].prefix);
			if (strncasecmp(key, sandbox_default_rules[i].prefix,
					plen) == 0
			    && (local_end == NULL || key + plen <= local_end)) {
				if (sandbox_action_parse(sandbox_default_rules[i].action,
							 act) < 0)
					log_panic("bad built-in sandbox rule");
				*source = sandbox_default_rules[i].prefix;
				return (1);
			}
		}
		return (0);
	}
	rc = map_lookup(sb->rules, key, &result);
	if (rc == MAP_NOTFOUND)
		return (0);
	if (rc != MAP_FOUND) {
		log_warn("%s: rule table %s: lookup of \"%s\" failed",
			 s->in_tx ? s->txid : "-", map_spec(sb->rules), key);
		return (-1);
	}
	*source = map_spec(sb->rules);
	if (sandbox_action_parse(result, act) < 0) {
		log_warn("rule table %s: bad action \"%s\" for \"%s\"",
			 map_spec(sb->rules), result, key);
		return (-1);
	}
	/* A result written for another stage means: no rule here. */
	if (act->stage != stage)
		return (0);
	return (1);
}

/* sandbox_default_text - the text for a bare code in a rule */
static const char *
sandbox_default_text(int code)
{
	if (code == 421)
		return ("4.3.2 Service not available, closing channel");
	return (code < 500 ? "4.0.0 Temporary failure (sandbox rule)"
		: "5.0.0 Rejected (sandbox rule)");
}

/* sandbox_cmd_ehlo - EHLO and HELO */
static void
sandbox_cmd_ehlo(struct sandbox_sess *s, const char *verb, const char *arg)
{
	struct sandbox *sb = s->sb;
	int     ehlo = strcasecmp(verb, "EHLO") == 0;
	struct sandbox_action act;
	const char *src;
	char    key[SANDBOX_LINE_MAX + 8];
	const char *lines[8];
	char    sizebuf[64];
	struct strbuf *reply;
	int     n = 0;
	int     i;
	int     rc = 0;

	switch (smtp_cmd_helo(arg)) {
	case SMTP_CMD_HELO_EMPTY:
		sandbox_reply(s, "501 5.5.4 Syntax: %s hostname", verb);
		return;
	case SMTP_CMD_HELO_BAD:
		sandbox_reply(s, "501 5.5.2 Syntax: %s hostname", verb);
		return;
	}
	if (ehlo && (sb->exts & SANDBOX_EXT_EHLO) == 0) {
		sandbox_reply(s, "502 5.5.1 Error: command not supported");
		log_info("connection %lu: EHLO %s refused by -x ehlo, reply=502",
			 s->conn_no, arg);
		return;
	}
	if (ehlo) {
		snprintf(key, sizeof(key), "ehlo:%s", arg);
		rc = sandbox_lookup(s, key, SANDBOX_STAGE_EHLO, &act, &src);
		if (rc < 0) {
			sandbox_reply(s, "451 4.3.0 Error: rule table failure");
			return;
		}
		if (rc > 0 && act.kind == SANDBOX_ACT_REPLY) {
			sandbox_reply(s, "%d %s", act.code, *act.text ? act.text
				      : sandbox_default_text(act.code));
			log_info("connection %lu: EHLO %s refused by rule (%s),"
				 " reply=%d %s", s->conn_no, arg, src, act.code,
				 act.text);
			if (act.code == 421)
				sandbox_close(s);
			return;
		}
		if (rc > 0 && act.kind == SANDBOX_ACT_DROP) {
			log_info("connection %lu: EHLO %s: rule (%s) DROP",
				 s->conn_no, arg, src);
			sb->st.dropped++;
			sandbox_close(s);
			return;
		}
	}
	sandbox_tx_reset(s);
	xfree(s->helo);
	s->helo = xstrdup(arg);
	s->esmtp = ehlo;
	if (!ehlo) {
		sandbox_reply(s, "250 %s", sb->hostname);
		return;
	}
	if (sb->exts & SANDBOX_EXT_PIPELINING)
		lines[n++] = "PIPELINING";
	if (sb->exts & SANDBOX_EXT_SIZE) {
		snprintf(sizebuf, sizeof(sizebuf), "SIZE %lld", sb->max_size);
		lines[n++] = sizebuf;
	}
	if (sb->exts & SANDBOX_EXT_8BITMIME)
		lines[n++] = "8BITMIME";
	if (sb->exts & SANDBOX_EXT_SMTPUTF8)
		lines[n++] = "SMTPUTF8";
	if (sb->exts & SANDBOX_EXT_ENHANCED)
		lines[n++] = "ENHANCEDSTATUSCODES";
	if (sb->exts & SANDBOX_EXT_CHUNKING)
		lines[n++] = "CHUNKING";
	if ((sb->exts & SANDBOX_EXT_STARTTLS) && sb->tls_ctx
	    && !stream_tls_active(s->stream))
		lines[n++] = "STARTTLS";
	reply = strbuf_new(256, 0);
	strbuf_printf(reply, "250%c%s", n ? '-' : ' ', sb->hostname);
	for (i = 0; i < n; i++)
		strbuf_printf(reply, "\r\n250%c%s", i + 1 < n ? '-' : ' ',
			      lines[i]);
	if (ehlo && rc > 0 && act.kind == SANDBOX_ACT_STALL && act.secs > 0) {
		log_info("connection %lu: EHLO %s: rule (%s) STALL %ld",
			 s->conn_no, arg, src, act.secs);
		sandbox_stall(s, act.secs, "%s", STRBUF_STR(reply));
	} else {
		sandbox_reply(s, "%s", STRBUF_STR(reply));
	}
	strbuf_free(reply);
}

/* sandbox_mail_params - check MAIL FROM parameters; 0, or -1 (replied) */
static int
sandbox_mail_params(struct sandbox_sess *s, const char *rest)
{
	struct sandbox *sb = s->sb;
	char   *copy = xstrdup(rest);
	char   *cursor = copy;
	char   *tok;
	char   *val;
	long long size;
	int     ret = 0;

	while (ret == 0 && (tok = smtp_cmd_param(&cursor, &val)) != NULL) {
		if (!s->esmtp) {
			sandbox_reply(s, "555 5.5.4 Unsupported option: %s"
				      " (no EHLO)", tok);
			ret = -1;
		} else if (strcasecmp(tok, "SIZE") == 0
			   && (sb->exts & SANDBOX_EXT_SIZE) && val) {
			if (smtp_cmd_size(val, &size) < 0) {
				sandbox_reply(s, "501 5.5.4 Bad SIZE syntax");
				ret = -1;
			} else if (size > sb->max_size) {
				sandbox_reply(s, "552 5.3.4 Message size exceeds"
					      " fixed limit");
				ret = -1;
			}
		} else if (strcasecmp(tok, "BODY") == 0 && val
			   && (strcasecmp(val, "7BIT") == 0
			       || (strcasecmp(val, "8BITMIME") == 0
				   && (sb->exts & SANDBOX_EXT_8BITMIME)))) {
			/* ok */ ;
		} else if (strcasecmp(tok, "SMTPUTF8") == 0 && val == NULL
			   && (sb->exts & SANDBOX_EXT_SMTPUTF8)) {
			s->smtputf8 = 1;
		} else {
			sandbox_reply(s, "555 5.5.4 Unsupported option: %s", tok);
			ret = -1;
		}
	}
	xfree(copy);
	return (ret);
}

/* sandbox_cmd_mail - MAIL FROM:<address> [params] */
static void
sandbox_cmd_mail(struct sandbox_sess *s, const char *arg)
{
	struct sandbox *sb = s->sb;
	char   *addr = NULL;
	const char *rest = NULL;
	const char *why = NULL;
	int     flags;
	int     rc;

	if (s->helo == NULL) {
		sandbox_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->in_tx) {
		sandbox_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	flags = SMTP_ADDR_NULL_OK | SMTP_ADDR_BARE_OK;
	if (sb->exts & SANDBOX_EXT_SMTPUTF8)
		flags |= SMTP_ADDR_UTF8;
	rc = smtp_cmd_path(arg, "FROM:", flags, &addr, &rest, &why);
	if (rc == SMTP_CMD_PATH_SYNTAX) {
		sandbox_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (rc == SMTP_CMD_PATH_UTF8)
		why = "UTF-8 address, SMTPUTF8 not offered";
	if (rc < 0) {
		sandbox_reply(s, "501 5.1.7 Bad sender address syntax (%s)",
			      why ? why : "malformed");
		return;
	}
	s->smtputf8 = 0;
	if (sandbox_mail_params(s, rest) < 0) {
		xfree(addr);
		return;
	}
	if ((rc & SMTP_ADDR_F_UTF8) && !s->smtputf8) {
		sandbox_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send"
			      " unicode address");
		xfree(addr);
		return;
	}
	s->in_tx = 1;
	s->sender = addr;
	s->mail_params = xstrdup(rest);
	s->tx_count++;
	sb->st.transactions++;
	snprintf(s->txid, sizeof(s->txid), "C%luT%lu", s->conn_no, s->tx_count);
	log_info("%s: client=[%s]:%d, helo=<%s>, from=<%s>%s%s", s->txid,
		 s->addr, s->port, s->helo, s->sender, *rest ? ", params=" : "",
		 rest);
	sandbox_reply(s, "250 2.1.0 Ok");
}

/* sandbox_rcpt_count - count a refused recipient by its code */
static void
sandbox_rcpt_count(struct sandbox_sess *s, int code)
{
	if (code >= 500)
		s->sb->st.rcpt_rejected++;
	else
		s->sb->st.rcpt_deferred++;
}

/* sandbox_rcpt_accept - take a recipient into the transaction */
static void
sandbox_rcpt_accept(struct sandbox_sess *s, const char *addr)
{
	s->rcpts = xreallocarray(s->rcpts, s->nrcpt + 1, sizeof(char *));
	s->rcpts[s->nrcpt++] = xstrdup(addr);
	s->sb->st.rcpt_accepted++;
}

/* sandbox_cmd_rcpt - RCPT TO:<address> and the rule for it */
static void
sandbox_cmd_rcpt(struct sandbox_sess *s, const char *arg)
{
	struct sandbox *sb = s->sb;
	struct sandbox_action act;
	char   *addr = NULL;
	const char *rest = NULL;
	const char *why = NULL;
	const char *src;
	const char *text;
	long    left;
	int     flags;
	int     rc;

	if (!s->in_tx) {
		sandbox_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	flags = SMTP_ADDR_POSTMASTER_OK | SMTP_ADDR_BARE_OK;
	if (s->smtputf8)
		flags |= SMTP_ADDR_UTF8;
	rc = smtp_cmd_path(arg, "TO:", flags, &addr, &rest, &why);
	if (rc == SMTP_CMD_PATH_SYNTAX) {
		sandbox_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (rc == SMTP_CMD_PATH_UTF8 && (sb->exts & SANDBOX_EXT_SMTPUTF8)) {
		sandbox_reply(s, "553 5.6.7 Must declare SMTPUTF8 to send"
			      " unicode address");
		return;
	}
	if (rc == SMTP_CMD_PATH_UTF8)
		why = "UTF-8 address, SMTPUTF8 not offered";
	if (rc < 0) {
		sandbox_reply(s, "501 5.1.3 Bad recipient address syntax (%s)",
			      why ? why : "malformed");
		return;
	}
	if (*rest) {
		sandbox_reply(s, "555 5.5.4 Unsupported option: %.*s",
			      (int) strcspn(rest, " \t="), rest);
		xfree(addr);
		return;
	}
	if (s->nrcpt >= SANDBOX_RCPT_MAX) {
		sandbox_reply(s, "452 4.5.3 Error: too many recipients");
		log_info("%s: to=<%s>, reply=452 4.5.3 too many recipients",
			 s->txid, addr);
		sb->st.rcpt_deferred++;
		xfree(addr);
		return;
	}
	rc = sandbox_lookup(s, addr, SANDBOX_STAGE_RCPT, &act, &src);
	if (rc < 0) {
		sandbox_reply(s, "451 4.3.0 Error: rule table failure");
		log_info("%s: to=<%s>, reply=451 4.3.0 rule table failure",
			 s->txid, addr);
		sb->st.rcpt_deferred++;
		xfree(addr);
		return;
	}
	if (rc == 0)
		act.kind = SANDBOX_ACT_OK;
	switch (act.kind) {
	case SANDBOX_ACT_REPLY:
		text = *act.text ? act.text : sandbox_default_text(act.code);
		sandbox_reply(s, "%d %s", act.code, text);
		log_info("%s: to=<%s>, rule=%s, reply=%d %s", s->txid, addr,
			 src, act.code, text);
		sandbox_rcpt_count(s, act.code);
		if (act.code == 421)
			sandbox_close(s);
		break;
	case SANDBOX_ACT_GREYLIST:
		if ((left = sandbox_grey_check(s, addr, act.secs)) > 0) {
			sandbox_reply(s, "450 4.7.1 Greylisted, try again in %ld"
				      " seconds", act.secs);
			log_info("%s: to=<%s>, rule=%s GREYLIST %ld, %ld s left,"
				 " reply=450 4.7.1", s->txid, addr, src,
				 act.secs, left);
			sb->st.rcpt_deferred++;
			break;
		}
		log_info("%s: to=<%s>, rule=%s GREYLIST %ld passed,"
			 " reply=250 2.1.5", s->txid, addr, src, act.secs);
		sandbox_rcpt_accept(s, addr);
		sandbox_reply(s, "250 2.1.5 Ok");
		break;
	case SANDBOX_ACT_DROP:
		log_info("%s: to=<%s>, rule=%s DROP, closing without reply",
			 s->txid, addr, src);
		sb->st.dropped++;
		sandbox_close(s);
		break;
	case SANDBOX_ACT_STALL:
		log_info("%s: to=<%s>, rule=%s STALL %ld, then reply=250 2.1.5",
			 s->txid, addr, src, act.secs);
		sandbox_rcpt_accept(s, addr);
		if (act.secs > 0)
			sandbox_stall(s, act.secs, "250 2.1.5 Ok");
		else
			sandbox_reply(s, "250 2.1.5 Ok");
		break;
	case SANDBOX_ACT_DATA:
		log_info("%s: to=<%s>, rule=%s DATA %d %s, reply=250 2.1.5",
			 s->txid, addr, src, act.code, act.text);
		if (s->data_code == 0) {
			s->data_code = act.code;
			s->data_text = xstrdup(*act.text ? act.text
					     : sandbox_default_text(act.code));
		}
		sandbox_rcpt_accept(s, addr);
		sandbox_reply(s, "250 2.1.5 Ok");
		break;
	default:
		log_info("%s: to=<%s>, rule=%s, reply=250 2.1.5", s->txid, addr,
			 rc ? src : "none");
		sandbox_rcpt_accept(s, addr);
		sandbox_reply(s, "250 2.1.5 Ok");
		break;
	}
	xfree(addr);
}

/* sandbox_cmd_data - DATA */
static void
sandbox_cmd_data(struct sandbox_sess *s, const char *arg)
{
	if (*arg) {
		sandbox_reply(s, "501 5.5.4 Syntax: DATA");
	} else if (!s->in_tx) {
		sandbox_reply(s, "503 5.5.1 Error: need MAIL command");
	} else if (s->nrcpt == 0) {
		sandbox_reply(s, "554 5.5.1 Error: no valid recipients");
	} else if (s->bdat_started) {
		sandbox_reply(s, "503 5.5.1 Error: DATA after BDAT");
	} else if (sandbox_msg_open(s) < 0) {
		sandbox_reply(s, "451 4.3.0 Error: cannot create message file");
		sandbox_tx_reset(s);
	} else {
		/* Stored as received: dots removed, bare CR/LF kept. */
		smtp_data_init(&s->scan, SMTP_DATA_DOT, SMTP_DATA_F_RAW,
			       sandbox_data_emit, NULL, s);
		sandbox_reply(s, "354 End data with <CR><LF>.<CR><LF>");
		s->state = SANDBOX_S_DATA;
	}
}

/* sandbox_cmd_bdat - BDAT count [LAST] */
static void
sandbox_cmd_bdat(struct sandbox_sess *s, const char *arg)
{
	unsigned long long n;
	int     last;

	if ((s->sb->exts & SANDBOX_EXT_CHUNKING) == 0 || !s->esmtp) {
		sandbox_reply(s, "502 5.5.1 Error: command not supported");
		return;
	}
	if (smtp_cmd_bdat(arg, &n, &last) < 0 || n > LLONG_MAX) {
		/* We cannot know where the chunk ends: give up the session. */
		sandbox_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		sandbox_close(s);
		return;
	}
	s->bdat_last = last;
	s->bdat_left = (long long) n;
	s->bdat_failed = 0;
	if (!s->in_tx) {
		s->bdat_failed = 1;
		s->bdat_error = "503 5.5.1 Error: need MAIL command";
	} else if (s->nrcpt == 0) {
		s->bdat_failed = 1;
		s->bdat_error = "554 5.5.1 Error: no valid recipients";
	} else if (!s->bdat_started) {
		s->bdat_started = 1;
		(void) sandbox_msg_open(s);
	}
	s->state = SANDBOX_S_BDAT;
}

/* sandbox_cmd_starttls - STARTTLS: the handshake, then a new session */
static void
sandbox_cmd_starttls(struct sandbox_sess *s, const char *arg)
{
	SSL    *ssl;

	if (*arg) {
		sandbox_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (stream_tls_active(s->stream)) {
		sandbox_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if ((ssl = SSL_new(s->sb->tls_ctx)) == NULL) {
		log_warn("connection %lu: cannot start TLS: %s", s->conn_no,
			 tls_errors());
		sandbox_reply(s, "454 4.7.0 TLS not available due to local"
			      " problem");
		return;
	}
	sandbox_reply(s, "220 2.0.0 Ready to start TLS");
	/* What the client sent after STARTTLS goes (RFC 3207, 4.2). */
	if (tls_stream_start(s->stream, ssl, STREAM_TLS_SERVER) < 0) {
		SSL_free(ssl);
		log_warn("connection %lu: cannot start TLS: %s", s->conn_no,
			 strerror(errno));
		sandbox_close(s);
		return;
	}
	s->state = SANDBOX_S_TLS;
}

/* sandbox_tls_done - the handshake succeeded: start over */
static void
sandbox_tls_done(struct sandbox_sess *s)
{
	char    desc[TLS_DESCRIBE_LEN];

	tls_describe(tls_stream_ssl(s->stream), desc, sizeof(desc));
	xfree(s->tls);
	s->tls = xstrdup(desc);
	s->sb->st.tls_sessions++;
	log_info("connection %lu: TLS connection established from [%s]:%d:"
		 " %s", s->conn_no, s->addr, s->port, desc);
	sandbox_tx_reset(s);
	xfree(s->helo);
	s->helo = NULL;
	s->esmtp = 0;
	s->state = SANDBOX_S_CMD;
}

/* sandbox_cmd - one command line */
static void
sandbox_cmd(struct sandbox_sess *s, char *line, size_t len)
{
	struct evbuffer *in = stream_input(s->stream);
	char   *verb;
	char   *arg;
	size_t  verb_len;

	s->commands++;
	if (smtp_cmd_split(line, len, &verb, &verb_len, &arg) < 0) {
		sandbox_reply(s, "500 5.5.2 Error: NUL byte in command");
		return;
	}

	/*
	 * A client that sends ahead without PIPELINING on offer breaks
	 * RFC 2920; count it so that tests of a client can see it.
	 */
	if ((s->sb->exts & SANDBOX_EXT_PIPELINING) == 0
	    && evbuffer_get_length(in) > 0 && strcasecmp(verb, "BDAT") != 0) {
		s->sb->st.pipelining_violations++;
		if (!s->warned_pipelining)
			log_warn("connection %lu: improper command pipelining"
				 " after %s from [%s]:%d", s->conn_no, verb,
				 s->addr, s->port);
		s->warned_pipelining = 1;
	}
	if (strcasecmp(verb, "EHLO") == 0 || strcasecmp(verb, "HELO") == 0) {
		sandbox_cmd_ehlo(s, verb, arg);
	} else if (strcasecmp(verb, "MAIL") == 0) {
		sandbox_cmd_mail(s, arg);
	} else if (strcasecmp(verb, "RCPT") == 0) {
		sandbox_cmd_rcpt(s, arg);
	} else if (strcasecmp(verb, "DATA") == 0) {
		sandbox_cmd_data(s, arg);
	} else if (strcasecmp(verb, "BDAT") == 0) {
		sandbox_cmd_bdat(s, arg);
	} else if (strcasecmp(verb, "RSET") == 0) {
		sandbox_tx_reset(s);
		sandbox_reply(s, "250 2.0.0 Ok");
	} else if (strcasecmp(verb, "NOOP") == 0) {
		sandbox_reply(s, "250 2.0.0 Ok");
	} else if (strcasecmp(verb, "QUIT") == 0) {
		sandbox_reply(s, "221 2.0.0 Bye");
		sandbox_close(s);
	} else if (strcasecmp(verb, "STARTTLS") == 0
		   && (s->sb->exts & SANDBOX_EXT_STARTTLS) && s->sb->tls_ctx) {
		sandbox_cmd_starttls(s, arg);
	} else if (strcasecmp(verb, "VRFY") == 0
		   || strcasecmp(verb, "EXPN") == 0
		   || strcasecmp(verb, "STARTTLS") == 0
		   || strcasecmp(verb, "AUTH") == 0
		   || strcasecmp(verb, "ETRN") == 0) {
		sandbox_reply(s, "502 5.5.1 Error: command not supported");
	} else if (strcasecmp(verb, "HELP") == 0) {
		sandbox_reply(s, "214 2.0.0 See sendarix-sandbox(1)");
	} else {
		sandbox_reply(s, "500 5.5.2 Error: command not recognized");
	}
}

/* sandbox_sess_done - free a closing session whose replies are out */
static int
sandbox_sess_done(struct sandbox_sess *s)
{
	if (s->state == SANDBOX_S_CLOSING
	    && stream_pending(s->stream) == 0) {
		sandbox_sess_free(s);
		return (1);
	}
	return (0);
}

/* sandbox_sess_input - handle what the client sent, as far as we may */
static void
sandbox_sess_input(struct sandbox_sess *s)
{
	struct evbuffer *in = stream_input(s->stream);
	struct evbuffer_ptr eol;
	size_t  eol_len;
	size_t  n;
	char   *line;

	while (!s->paused && s->state != SANDBOX_S_CLOSING
	       && s->state != SANDBOX_S_TLS) {

		/*
		 * A client that pipelines without reading its replies waits
		 * until they are out (sandbox_write_cb() goes on).
		 */
		if (stream_pending(s->stream) > SANDBOX_OUT_MAX) {
			s->out_blocked = 1;
			stream_disable(s->stream, STREAM_READ);
			break;
		}
		if (s->state == SANDBOX_S_DATA) {
			if (sandbox_data_input(s))
				break;
			continue;
		}
		if (s->state == SANDBOX_S_BDAT) {
			if (sandbox_bdat_input(s))
				break;
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (eol.pos < 0) {
			n = evbuffer_get_length(in);
			if (n >= SANDBOX_LINE_MAX) {
				evbuffer_drain(in, n);
				if (!s->skip_line)
					sandbox_reply(s, "500 5.5.0 Error: line"
						      " too long");
				s->skip_line = 1;
			}
			break;
		}
		n = (size_t) eol.pos;
		if (s->skip_line || n + eol_len > SANDBOX_LINE_MAX) {
			evbuffer_drain(in, n + eol_len);
			if (!s->skip_line)
				sandbox_reply(s, "500 5.5.0 Error: line too long");
			s->skip_line = 0;
			continue;
		}
		line = xmalloc(n + 1);
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = 0;
		if (n > 0 && line[n - 1] == '\r')
			line[--n] = 0;
		sandbox_cmd(s, line, n);
		xfree(line);
	}
	(void) sandbox_sess_done(s);
}

/* sandbox_read_cb - bytes from the client */
static void
sandbox_read_cb(struct stream *unused_st, void *ctx)
{
	(void) unused_st;
	sandbox_sess_input((struct sandbox_sess *) ctx);
}

/* sandbox_write_cb - replies are out */
static void
sandbox_write_cb(struct stream *unused_st, void *ctx)
{
	struct sandbox_sess *s = ctx;

	(void) unused_st;
	if (sandbox_sess_done(s))
		return;
	if (s->out_blocked && s->state != SANDBOX_S_CLOSING) {
		s->out_blocked = 0;
		if (!s->paused) {
			stream_enable(s->stream, STREAM_READ);
			sandbox_sess_input(s);
		}
	}
}

/* sandbox_event_cb - end of file, error or idle timeout */
static void
sandbox_event_cb(struct stream *unused_st, int what, int unused_err,
		 void *ctx)
{
	struct sandbox_sess *s = ctx;

	(void) unused_st;
	(void) unused_err;
	if (s->state == SANDBOX_S_TLS) {
		if (what & STREAM_EV_CONNECTED) {
			sandbox_tls_done(s);
			sandbox_sess_input(s);
			return;
		}
		log_info("connection %lu: TLS handshake failed from [%s]:%d:"
			 " %s", s->conn_no, s->addr, s->port,
			 (what & STREAM_EV_TIMEOUT) ? "timeout" :
			 *tls_stream_errors(s->stream) ?
			 tls_stream_errors(s->stream) : "lost connection");
		s->state = SANDBOX_S_CLOSING;
		sandbox_sess_free(s);
		return;
	}
	if ((what & STREAM_EV_TIMEOUT) && s->state != SANDBOX_S_CLOSING) {
		log_info("connection %lu: timeout after %ld s idle from [%s]:%d",
			 s->conn_no, s->sb->idle, s->addr, s->port);
		sandbox_reply(s, "421 4.4.2 %s Error: timeout exceeded",
			      s->sb->hostname);
		sandbox_close(s);
		(void) sandbox_sess_done(s);
		return;
	}
	if (what & (STREAM_EV_EOF | STREAM_EV_ERROR | STREAM_EV_TIMEOUT)) {
		if (s->state != SANDBOX_S_CLOSING)
			log_info("connection %lu: lost connection%s from [%s]:%d",
				 s->conn_no, s->in_tx ? " in transaction" : "",
				 s->addr, s->port);
		sandbox_sess_free(s);
	}
}

/* sandbox_sess_free - end a session */
static void
sandbox_sess_free(struct sandbox_sess *s)
{
	struct sandbox *sb = s->sb;

	log_info("disconnect from [%s]:%d connection=%lu commands=%lu"
		 " transactions=%lu messages=%lu", s->addr, s->port,
		 s->conn_no, s->commands, s->tx_count, s->msg_count);
	sandbox_tx_reset(s);
	if (s->stall_ev)
		event_free(s->stall_ev);
	s->stream = stream_close(s->stream);
	strbuf_free(s->stall_reply);
	strbuf_free(s->wbuf);
	xfree(s->helo);
	xfree(s->tls);
	if (s->prev)
		s->prev->next = s->next;
	else
		sb->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	xfree(s);
	sb->st.connections_now--;
	sandbox_stats_save(sb);
}

/* sandbox_accept_cb - a new connection */
static void
sandbox_accept_cb(struct evconnlistener *unused_lst, evutil_socket_t fd,
		  struct sockaddr *sa, int unused_salen, void *ctx)
{
	struct sandbox *sb = ctx;
	struct sandbox_sess *s;
	struct sandbox_action act;
	const char *src;
	char    key[INET6_ADDRSTRLEN + 16];
	int     rc;

	(void) unused_lst;
	(void) unused_salen;
	s = xcalloc(1, sizeof(*s));
	s->sb = sb;
	s->fd = -1;
	s->state = SANDBOX_S_CMD;
	s->stall_reply = strbuf_new(256, 0);
	s->conn_no = ++sb->st.connections;
	if (++sb->st.connections_now > sb->st.max_concurrent)
		sb->st.max_concurrent = sb->st.connections_now;
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, s->addr, sizeof(s->addr));
		s->port = ntohs(sin6->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *) sa;

		inet_ntop(AF_INET, &sin->sin_addr, s->addr, sizeof(s->addr));
		s->port = ntohs(sin->sin_port);
	} else {
		snprintf(s->addr, sizeof(s->addr), "unknown");
	}
	s->next = sb->sessions;
	if (sb->sessions)
		sb->sessions->prev = s;
	sb->sessions = s;
	s->stream = stream_accept(sb->base, fd);
	if (s->stream == NULL) {
		log_warn("connection %lu: cannot set up the session", s->conn_no);
		if (s->prev)
			s->prev->next = s->next;
		else
			sb->sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		strbuf_free(s->stall_reply);
		xfree(s);
		sb->st.connections_now--;
		return;
	}
	stream_setcb(s->stream, sandbox_read_cb, sandbox_write_cb,
		     sandbox_event_cb, s);
	stream_timeouts(s->stream, sb->idle, 0);
	stream_enable(s->stream, STREAM_READ | STREAM_WRITE);
	log_info("connect from [%s]:%d connection=%lu", s->addr, s->port,
		 s->conn_no);
	sandbox_stats_save(sb);

	snprintf(key, sizeof(key), "connect:%s", s->addr);
	rc = sandbox_lookup(s, key, SANDBOX_STAGE_CONNECT, &act, &src);
	if (rc > 0 && act.kind == SANDBOX_ACT_REPLY) {
		sandbox_reply(s, "%d %s", act.code, *act.text ? act.text
			      : sandbox_default_text(act.code));
		log_info("connection %lu: rule (%s) at connect, reply=%d %s",
			 s->conn_no, src, act.code, act.text);
		sandbox_close(s);
		return;
	}
	if (rc > 0 && act.kind == SANDBOX_ACT_DROP) {
		log_info("connection %lu: rule (%s) at connect: DROP",
			 s->conn_no, src);
		sb->st.dropped++;
		sandbox_close(s);
		(void) sandbox_sess_done(s);
		return;
	}
	if (rc > 0 && act.kind == SANDBOX_ACT_STALL && act.secs > 0) {
		log_info("connection %lu: rule (%s) at connect: STALL %ld",
			 s->conn_no, src, act.secs);
		sandbox_stall(s, act.secs, "220 %s ESMTP Sendarix sandbox",
			      sb->hostname);
		return;
	}
	sandbox_reply(s, "220 %s ESMTP Sendarix sandbox", sb->hostname);
}

/* sandbox_accept_error - accept() failed (out of descriptors...) */
static void
sandbox_accept_error(struct evconnlistener *unused_lst, void *unused_ctx)
{
	(void) unused_lst;
	(void) unused_ctx;
	log_warn("accept: %s",
		 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* sandbox_signal_cb - SIGTERM, SIGINT: stop; SIGUSR1: statistics */
static void
sandbox_signal_cb(evutil_socket_t sig, short unused_what, void *ctx)
{
	struct sandbox *sb = ctx;

	(void) unused_what;
	if (sig == SIGUSR1) {
		sandbox_stats_log(sb);
		return;
	}
	log_info("stopping on signal %d", (int) sig);
	event_base_loopbreak(sb->base);
}

/* sandbox_listen - bind one [addr:]port */
static int
sandbox_listen(struct sandbox *sb, const char *spec)
{
	char   *copy = xstrdup(spec);
	char   *host = NULL;
	char   *port;
	char   *colon;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	struct evconnlistener *lst;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	char    abuf[INET6_ADDRSTRLEN];
	int     err;
	int     bound_port = 0;

	if (sb->nlisteners >= SANDBOX_LISTEN_MAX) {
		sandbox_error("sandbox: too many -l options (at most %d)",
			  SANDBOX_LISTEN_MAX);
		xfree(copy);
		return (-1);
	}
	if (copy[0] == '[') {
		host = copy + 1;
		if ((colon = strchr(host, ']')) == NULL || colon[1] != ':') {
			sandbox_error("sandbox: bad listen address: %s", spec);
			xfree(copy);
			return (-1);
		}
		*colon = 0;
		port = colon + 2;
	} else if ((colon = strrchr(copy, ':')) != NULL) {
		if (strchr(copy, ':') != colon) {
			sandbox_error("sandbox: write IPv6 as [addr]:port: %s", spec);
			xfree(copy);
			return (-1);
		}
		*colon = 0;
		host = copy;
		port = colon + 1;
	} else {
		host = "127.0.0.1";
		port = copy;
	}
	if (*port == 0 || strspn(port, "0123456789") != strlen(port)) {
		sandbox_error("sandbox: bad port in %s", spec);
		xfree(copy);
		return (-1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((err = getaddrinfo(*host ? host : NULL, port, &hints, &res)) != 0) {
		sandbox_error("sandbox: %s: %s", spec, gai_strerror(err));
		xfree(copy);
		return (-1);
	}
	lst = evconnlistener_new_bind(sb->base, sandbox_accept_cb, sb,
				      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE
				      | LEV_OPT_CLOSE_ON_EXEC
				      | (res->ai_family == AF_INET6 ?
					 LEV_OPT_BIND_IPV6ONLY : 0), 511,
				      res->ai_addr, (int) res->ai_addrlen);
	freeaddrinfo(res);
	if (lst == NULL) {
		sandbox_error("sandbox: cannot listen on %s: %s", spec,
			  strerror(errno));
		xfree(copy);
		return (-1);
	}
	evconnlistener_set_error_cb(lst, sandbox_accept_error);
	sb->listeners[sb->nlisteners++] = lst;
	abuf[0] = 0;
	if (getsockname(evconnlistener_get_fd(lst), (struct sockaddr *) &ss,
			&sslen) == 0) {
		if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr,
				  abuf, sizeof(abuf));
			bound_port = ntohs(((struct sockaddr_in6 *) &ss)->sin6_port);
		} else {
			inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr,
				  abuf, sizeof(abuf));
			bound_port = ntohs(((struct sockaddr_in *) &ss)->sin_port);
		}
	}
	log_info("listening on %s%s%s:%d", strchr(abuf, ':') ? "[" : "", abuf,
		 strchr(abuf, ':') ? "]" : "", bound_port);
	xfree(copy);
	return (0);
}

/* sandbox_maildir - create DIR/{tmp,new,cur,env} */
static int
sandbox_maildir(const char *dir)
{
	static const char *subs[] = {"", "/tmp", "/new", "/cur", "/env"};
	char    path[PATH_MAX];
	char   *p;
	size_t  i;

	snprintf(path, sizeof(path), "%s", dir);
	/* mkdir -p for the folder itself */
	for (p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				return (-1);
			*p = '/';
		}
	}
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dir, subs[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return (-1);
	}
	return (0);
}

/* sandbox_set_exts - take the -x list away from the offered extensions */
static int
sandbox_set_exts(struct sandbox *sb, const char *list)
{
	char   *copy = xstrdup(list);
	char   *save = NULL;
	char   *tok;
	size_t  i;

	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		for (i = 0; i < SANDBOX_NEXTS; i++)
			if (strcasecmp(tok, sandbox_exts[i].name) == 0)
				break;
		if (i == SANDBOX_NEXTS) {
			sandbox_error("sandbox: -x: unknown extension \"%s\"", tok);
			xfree(copy);
			return (-1);
		}
		sb->exts &= ~sandbox_exts[i].bit;
	}
	xfree(copy);
	return (0);
}

/* sandbox_tls_init - the server context of -c and -k */
static int
sandbox_tls_init(struct sandbox *sb, const char *certfile,
		 const char *keyfile)
{
	tls_init();
	if ((sb->tls_ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		sandbox_error("sandbox: cannot set up TLS: %s", tls_errors());
		return (-1);
	}
	tls_ctx_common(sb->tls_ctx);
	(void) tls_ctx_set_protocols(sb->tls_ctx, ">=TLSv1.2");
	if (SSL_CTX_use_certificate_chain_file(sb->tls_ctx, certfile) != 1
	    || SSL_CTX_use_PrivateKey_file(sb->tls_ctx, keyfile,
					   SSL_FILETYPE_PEM) != 1
	    || SSL_CTX_check_private_key(sb->tls_ctx) != 1) {
		sandbox_error("sandbox: cannot use certificate %s and key %s:"
			      " %s", certfile, keyfile, tls_errors());
		return (-1);
	}
	return (0);
}

/* sandbox_free - release everything at exit */
static void
sandbox_free(struct sandbox *sb)
{
	int     i;

	while (sb->sessions)
		sandbox_sess_free(sb->sessions);
	for (i = 0; i < sb->nlisteners; i++)
		evconnlistener_free(sb->listeners[i]);
	if (sb->sig_term)
		event_free(sb->sig_term);
	if (sb->sig_int)
		event_free(sb->sig_int);
	if (sb->sig_usr1)
		event_free(sb->sig_usr1);
	map_close(sb->rules);
	if (sb->tls_ctx)
		SSL_CTX_free(sb->tls_ctx);
	sandbox_grey_clear(sb);
	if (sb->base)
		event_base_free(sb->base);
	xfree(sb->maildir);
	xfree(sb->hostname);
	xfree(sb->filehost);
	xfree(sb->pidfile);
	xfree(sb->statsfile);
}

/* main - "sendarix sandbox" */
int
main(int argc, char **argv)
{
	struct sandbox sbuf;
	struct sandbox *sb = &sbuf;
	const char *listen_specs[SANDBOX_LISTEN_MAX];
	int     nlisten = 0;
	const char *rules = NULL;
	const char *certfile = NULL;
	const char *keyfile = NULL;
	struct strbuf *err;
	char    host[256];
	char   *p;
	FILE   *fp;
	int     ch;
	int     i;
	int     ret = 1;

	memset(sb, 0, sizeof(*sb));
	sb->exts = SANDBOX_EXT_PIPELINING | SANDBOX_EXT_SIZE
		| SANDBOX_EXT_8BITMIME | SANDBOX_EXT_SMTPUTF8
		| SANDBOX_EXT_ENHANCED | SANDBOX_EXT_CHUNKING | SANDBOX_EXT_EHLO
		| SANDBOX_EXT_STARTTLS;
	sb->max_size = SANDBOX_DEF_MAXSIZE;
	sb->idle = SANDBOX_DEF_IDLE;
	log_init("sandbox");

	optind = 1;
	opterr = 0;
	while ((ch = getopt(argc, argv, "c:k:l:d:r:n:x:p:s:m:t:hv")) != -1) {
		switch (ch) {
		case 'v':
			log_verbose++;
			break;
		case 'c':
			certfile = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'l':
			if (nlisten >= SANDBOX_LISTEN_MAX) {
				sandbox_error("sandbox: too many -l options");
				goto usage;
			}
			listen_specs[nlisten++] = optarg;
			break;
		case 'd':
			xfree(sb->maildir);
			sb->maildir = xstrdup(optarg);
			break;
		case 'r':
			rules = optarg;
			break;
		case 'n':
			xfree(sb->hostname);
			sb->hostname = xstrdup(optarg);
			break;
		case 'x':
			if (sandbox_set_exts(sb, optarg) < 0)
				goto usage;
			break;
		case 'p':
			xfree(sb->pidfile);
			sb->pidfile = xstrdup(optarg);
			break;
		case 's':
			xfree(sb->statsfile);
			sb->statsfile = xstrdup(optarg);
			break;
		case 'm':
			if ((sb->max_size = sandbox_parse_size(optarg)) <= 0) {
				sandbox_error("sandbox: bad -m size: %s", optarg);
				goto usage;
			}
			break;
		case 't':
			if ((sb->idle = sandbox_parse_secs(optarg, 86400)) <= 0) {
				sandbox_error("sandbox: bad -t seconds: %s", optarg);
				goto usage;
			}
			break;
		case 'h':
			sandbox_usage();
			ret = 0;
			goto out;
		default:
			sandbox_usage();
			goto usage;
		}
	}
	if (optind < argc) {
		sandbox_error("sandbox: unexpected argument: %s", argv[optind]);
		sandbox_usage();
		goto usage;
	}
	if (nlisten == 0)
		listen_specs[nlisten++] = SANDBOX_DEF_LISTEN;
	if (sb->maildir == NULL)
		sb->maildir = xstrdup(SANDBOX_DEF_MAILDIR);
	if (gethostname(host, sizeof(host)) < 0 || host[0] == 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	if (sb->hostname == NULL)
		sb->hostname = xstrdup(host);
	if (strpbrk(sb->hostname, " \t\r\n") != NULL
	    || strlen(sb->hostname) > 255) {
		sandbox_error("sandbox: bad -n hostname");
		goto usage;
	}
	/* Maildir names must not hold '/' or ':'. */
	sb->filehost = xstrdup(host);
	for (p = sb->filehost; *p; p++)
		if (*p == '/' || *p == ':')
			*p = '_';

	if (sandbox_maildir(sb->maildir) < 0) {
		sandbox_error("sandbox: cannot create maildir %s: %s", sb->maildir,
			  strerror(errno));
		goto out;
	}
	if (rules != NULL) {
		err = strbuf_new(256, 0);
		if (map_is_spec(rules)) {
			sb->rules = map_open(rules, err);
		} else {
			struct strbuf *spec = strbuf_new(256, 0);

			strbuf_printf(spec, "pcre:%s", rules);
			sb->rules = map_open(STRBUF_STR(spec), err);
			strbuf_free(spec);
		}
		if (sb->rules == NULL || STRBUF_LEN(err) > 0
		    || map_lookup(sb->rules, "postmaster", NULL) == MAP_RETRY) {
			sandbox_error("sandbox: rules %s: %s", rules,
				  STRBUF_LEN(err) ? STRBUF_STR(err)
				  : "cannot open");
			strbuf_free(err);
			goto out;
		}
		strbuf_free(err);
	}
	if (keyfile && !certfile) {
		sandbox_error("sandbox: -k needs -c");
		goto usage;
	}
	if (certfile && sandbox_tls_init(sb, certfile,
					 keyfile ? keyfile : certfile) < 0)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if ((sb->base = event_base_new()) == NULL) {
		sandbox_error("sandbox: cannot set up the event loop");
		goto out;
	}
	for (i = 0; i < nlisten; i++)
		if (sandbox_listen(sb, listen_specs[i]) < 0)
			goto out;
	sb->sig_term = evsignal_new(sb->base, SIGTERM, sandbox_signal_cb, sb);
	sb->sig_int = evsignal_new(sb->base, SIGINT, sandbox_signal_cb, sb);
	sb->sig_usr1 = evsignal_new(sb->base, SIGUSR1, sandbox_signal_cb, sb);
	evsignal_add(sb->sig_term, NULL);
	evsignal_add(sb->sig_int, NULL);
	evsignal_add(sb->sig_usr1, NULL);
	if (sb->pidfile) {
		if ((fp = fopen(sb->pidfile, "w")) == NULL
		    || fprintf(fp, "%ld\n", (long) getpid()) < 0
		    || fclose(fp) != 0) {
			sandbox_error("sandbox: cannot write %s: %s", sb->pidfile,
				  strerror(errno));
			goto out;
		}
	}
	sandbox_stats_save(sb);
	log_info("sandbox ready: maildir=%s, rules=%s, hostname=%s",
		 sb->maildir, sb->rules ? map_spec(sb->rules) : "built-in",
		 sb->hostname);
	event_base_dispatch(sb->base);
	ret = 0;
	while (sb->sessions)
		sandbox_sess_free(sb->sessions);
	sandbox_stats_log(sb);
	if (sb->pidfile)
		unlink(sb->pidfile);
out:
	sandbox_free(sb);
	return (ret);
usage:
	sandbox_free(sb);
	return (2);
}
