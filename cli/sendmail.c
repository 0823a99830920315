/*
 * sendmail - Sendarix to sendmail compatibility interface
 *
 * SYNOPSIS
 *	sendmail [options] [recipient ...]
 *	mailq
 *
 * DESCRIPTION
 *	Applications and cron hand mail to the mail system with this
 *	command. It reads a message from standard input and submits it to
 *	cleanup on queue_directory/public/sendmail (docs/ipc.md); cleanup
 *	identifies the calling user from the socket, adds the local
 *	Received: header and any missing From:, Date: and Message-ID:.
 *	When nothing answers there (the mail system is down), the message
 *	goes into queue_directory/maildrop/ for pickup(8) instead
 *	(sendmail_drop.c). authorized_submit_users and
 *	local_login_sender_maps are checked before the input is read, for a
 *	clear error (cleanup enforces them in any case).
 *	The configuration directory is -C DIR, else $SENDARIX_CONFIG_DIR,
 *	else the compiled-in default; main.cf gives queue_directory,
 *	myorigin, myhostname, header_size_limit and command_directory.
 *
 *	Input lines may end in LF or CRLF; they are stored with CRLF, and
 *	a missing final newline is added. Unless -i (or -oi) is given, a
 *	line with a single "." ends the input. A first line that starts
 *	with "From " (an mbox separator) is dropped.
 *
 *	Options (as Postfix's sendmail; see sendmail(1)):
 *	-t	take recipients from To:, Cc: and Bcc: (Resent-To:,
 *		Resent-Cc:, Resent-Bcc: when there are Resent- headers),
 *		in addition to those on the command line; Bcc: is removed
 *	-i, -oi	a lone "." does not end the input
 *	-f addr, -r addr  envelope sender (default: login@$myorigin)
 *	-F name	full name for a From: header that cleanup adds
 *	-bm	read a message and queue it (the default)
 *	-bs	SMTP on standard input and output (sendmail_smtp.c)
 *	-bp	list the queue: runs "sendarix queue list" (also mailq)
 *	-q	flush the queue: runs "sendarix queue flush"
 *	-N, -R, -V  DSN notify, ret and envid, passed to cleanup
 *	-B type	body type (7BIT, 8BITMIME)
 *	-v	say the queue ID on standard error
 *	-C dir	configuration directory (or a main.cf file in it)
 *	Other classic options (-oX, -O, -X, -L, -h, -e, -m, -n, -U, -G,
 *	-c, -x) are accepted and ignored.
 *
 * EXIT STATUS
 *	0 once the message is safe in the queue or the maildrop; EX_NOPERM
 *	when the user or the sender is not allowed (or cleanup refused with
 *	a 5.7.x reason); other <sysexits.h> codes
 *	otherwise: EX_USAGE (bad option, no recipients given), EX_DATAERR
 *	(-t and no recipient in the header), EX_TEMPFAIL (no mail system
 *	running and no maildrop, or cleanup answered 4), EX_UNAVAILABLE (cleanup answered
 *	5), EX_SOFTWARE (internal error), EX_CONFIG (bad main.cf). Every
 *	error is also printed as "sendmail: fatal: ..." on standard error.
 *
 * SECURITY
 *	Runs with the caller's privileges; it needs no set-id bit. The
 *	identity recorded in the queue file comes from the kernel
 *	(SO_PEERCRED in cleanup), not from anything this program says.
 *
 * SEE ALSO
 *	sendmail(1), cleanup(8), sendarix(1), docs/ipc.md
 */

#include <sys/stat.h>
#include <sys/types.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "dsn.h"
#include "log.h"
#include "strbuf.h"
#include "submit_acl.h"
#include "xmalloc.h"

#include "sendmail.h"

const char *sendmail_queue_dir;
const char *sendmail_myorigin = "";
const char *sendmail_myhostname = "localhost";
int     sendmail_verbose;

extern int sendmail_timeout;		/* sendmail_submit.c */

static const char *sendmail_progname = "sendmail";

#define SM_MODE_DELIVER	'm'		/* -bm */
#define SM_MODE_SMTP	's'		/* -bs */
#define SM_MODE_LIST	'p'		/* -bp, mailq */
#define SM_MODE_FLUSH	'q'		/* -q */

/* Options that take a value, in the word or as the next word. */
#define SM_OPTS_ARG	"BCFLNORVXbefhopr"
/* Flags that are accepted and have no effect here. */
#define SM_OPTS_IGNORED	"GUcmnx"

/* sendmail_fatal - report and exit with a sysexits code */
void
sendmail_fatal(int status, const char *fmt,...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: fatal: ", sendmail_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	/* Ending on an error: no exit handlers, no leak report. */
	fflush(NULL);
	_exit(status);
}

/* sendmail_warn - report and carry on */
void
sendmail_warn(const char *fmt,...)
{
	va_list ap;

	fprintf(stderr, "%s: warning: ", sendmail_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* sendmail_getline - one input line or piece, without its line end */
int
sendmail_getline(FILE *fp, struct strbuf *sb, int *eol)
{
	int     c;

	strbuf_reset(sb);
	*eol = 0;
	while ((c = getc_unlocked(fp)) != EOF) {
		if (c == '\n') {
			if (sb->len > 0 && sb->data[sb->len - 1] == '\r')
				strbuf_truncate(sb, sb->len - 1);
			*eol = 1;
			return (0);
		}
		if (strbuf_appendc(sb, c) < 0)
			sendmail_fatal(EX_SOFTWARE, "out of memory");
		if (sb->len >= SENDMAIL_LINE_MAX) {
			/* A long line goes in pieces; never split a CRLF. */
			if (sb->data[sb->len - 1] == '\r') {
				if ((c = getc_unlocked(fp)) == '\n') {
					strbuf_truncate(sb, sb->len - 1);
					*eol = 1;
					return (0);
				}
				if (c != EOF)
					ungetc(c, fp);
			}
			return (0);
		}
	}
	if (ferror(fp))
		sendmail_fatal(EX_IOERR, "read standard input: %s",
			       strerror(errno));
	if (sb->len == 0)
		return (-1);
	*eol = 1;				/* a missing newline is added */
	return (0);
}

/* sendmail_status - the sysexit for a cleanup status and reason */
static int
sendmail_status(const struct sendmail_sub *sub)
{
	if (sub->status == 5 && strncmp(sub->reason, "5.7.", 4) == 0)
		return (EX_NOPERM);		/* a policy refusal */
	return (sub->status == 5 ? EX_UNAVAILABLE : EX_TEMPFAIL);
}

/* sendmail_usage - a bad option */
static void
sendmail_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: fatal: ", sendmail_progname);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: sendmail [-t] [-i] [-f sender] "
		"[-F full_name] [-C config_dir] [-bm|-bs|-bp] [-q] "
		"[recipient ...]\n");
	exit(EX_USAGE);
}

/* sendmail_exec_cli - run "sendarix -c DIR queue WHAT" */
static void
sendmail_exec_cli(const char *config_dir, const char *what)
{
	char    self[PATH_MAX];
	char    path[PATH_MAX + 16];
	const char *cmd_dir;
	ssize_t n;
	char   *slash;

	fflush(NULL);
	/* The sendarix next to this program first: same build, same tree. */
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = 0;
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = 0;
			snprintf(path, sizeof(path), "%s/sendarix", self);
			if (access(path, X_OK) == 0)
				execl(path, "sendarix", "-c", config_dir, "queue",
				      what, (char *) NULL);
		}
	}
	cmd_dir = conf_get("command_directory");
	snprintf(path, sizeof(path), "%s/sendarix", cmd_dir ? cmd_dir : ".");
	execl(path, "sendarix", "-c", config_dir, "queue", what,
	      (char *) NULL);
	sendmail_fatal(EX_UNAVAILABLE, "execute %s: %s", path,
		       strerror(errno));
}

/* sendmail_default_sender - login@$myorigin of the calling user */
static char *
sendmail_default_sender(void)
{
	struct passwd *pw;

	if ((pw = getpwuid(getuid())) == NULL || pw->pw_name == NULL
	    || *pw->pw_name == 0)
		sendmail_fatal(EX_NOUSER, "no login name found for user ID "
			       "%lu", (unsigned long) getuid());
	return (sendmail_addr_qualify(pw->pw_name));
}

static struct submit_acl *sendmail_acl;	/* NULL: no early checks */

/* sendmail_login - the caller's login name, or NULL */
static const char *
sendmail_login(void)
{
	struct passwd *pw;

	if ((pw = getpwuid(getuid())) == NULL || pw->pw_name == NULL
	    || *pw->pw_name == 0)
		return (NULL);
	return (pw->pw_name);
}

/* sendmail_check_user - authorized_submit_users, before any input */
static void
sendmail_check_user(void)
{
	struct strbuf *err = strbuf_new(256, 0);
	const char *login;

	/*
	 * cleanup and pickup enforce the policy where it cannot be bypassed;
	 * this early check only gives a clear answer before the input is
	 * read. A table we cannot read here is left to them.
	 */
	sendmail_acl = submit_acl_new(conf_get("authorized_submit_users"),
				      conf_get("local_login_sender_maps"),
				      sendmail_myorigin, err);
	if (sendmail_acl == NULL)
		sendmail_fatal(EX_CONFIG, "%s", STRBUF_STR(err));
	strbuf_free(err);
	login = sendmail_login();
	if (submit_acl_user(sendmail_acl, login ? login : "unknown") == 0)
		sendmail_fatal(EX_NOPERM, "User %s(%lu) is not allowed to "
			       "submit mail", login ? login : "unknown",
			       (unsigned long) getuid());
}

/* sendmail_check_sender - local_login_sender_maps, before any input */
static void
sendmail_check_sender(const char *sender)
{
	const char *login;
	char    key[32];

	if (sendmail_acl == NULL)
		return;
	snprintf(key, sizeof(key), "uid:%lu", (unsigned long) getuid());
	login = sendmail_login();
	if (submit_acl_sender(sendmail_acl, login ? login : key, sender) == 0)
		sendmail_fatal(EX_NOPERM, "User %s(%lu) is not allowed to use "
			       "sender address <%s>", login ? login : "unknown",
			       (unsigned long) getuid(), sender);
}

/* Reading the header section for -t and Bcc: removal. */
struct sm_headers {
	struct strbuf *kept;		/* header lines to submit, CRLF */
	struct strbuf *field;		/* the field being read, unfolded */
	struct strbuf *field_raw;	/* ... as read, CRLF */
	int     extract;		/* -t */
	int     saw_resent;
	struct sendmail_env plain;	/* To/Cc/Bcc */
	struct sendmail_env resent;	/* Resent-To/Cc/Bcc */
	int     bad;			/* an address was refused */
};

/* sendmail_hdr_is - does the field have this name? */
static int
sendmail_hdr_is(const struct strbuf *field, const char *name)
{
	size_t  len = strlen(name);
	size_t  i;

	if (field->len <= len || strncasecmp(field->data, name, len) != 0)
		return (0);
	for (i = len; i < field->len && (field->data[i] == ' '
					 || field->data[i] == '\t'); i++)
		 /* obsolete "Name :" */ ;
	return (i < field->len && field->data[i] == ':');
}

/* sendmail_hdr_end_field - one complete header field */
static void
sendmail_hdr_end_field(struct sm_headers *h)
{
	static const char *const names[] = {"to", "cc", "bcc"};
	struct sendmail_env *env;
	const char *value;
	char    rname[32];
	size_t  i;
	int     drop = 0;
	int     resent;

	if (h->field_raw->len == 0)
		return;
	if (h->extract) {
		if (strncasecmp(h->field->data, "resent-", 7) == 0)
			h->saw_resent = 1;
		for (resent = 0; resent < 2; resent++) {
			for (i = 0; i < 3; i++) {
				snprintf(rname, sizeof(rname), "%s%s",
					 resent ? "resent-" : "", names[i]);
				if (!sendmail_hdr_is(h->field, rname))
					continue;
				env = resent ? &h->resent : &h->plain;
				value = strchr(h->field->data, ':') + 1;
				if (sendmail_addr_list(value, strlen(value),
						       env) < 0)
					h->bad = 1;
				drop = (i == 2);	/* Bcc: */
			}
		}
	}
	if (!drop)
		strbuf_append(h->kept, h->field_raw->data, h->field_raw->len);
	strbuf_reset(h->field);
	strbuf_reset(h->field_raw);
}

/* sendmail_hdr_start - does a line start a header field? */
static int
sendmail_hdr_start(const char *line, size_t len)
{
	size_t  i;

	for (i = 0; i < len && line[i] > 32 && line[i] < 127
	     && line[i] != ':'; i++)
		 /* field name */ ;
	if (i == 0)
		return (0);
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return (i < len && line[i] == ':');
}

/* sendmail_deliver - -bm: read one message and submit it */
static int
sendmail_deliver(struct sendmail_env *env, int extract, int ignore_dots,
		 long long header_limit)
{
	struct sm_headers h;
	struct sendmail_sub sub;
	struct strbuf *line = strbuf_new(1024, SENDMAIL_LINE_MAX + 1);
	int     eol;
	int     at_bol = 1;
	int     first = 1;
	int     pending = 0;		/* line holds the first body line */
	int     got;
	size_t  i;
	struct sendmail_env *from;

	memset(&h, 0, sizeof(h));
	h.kept = strbuf_new(4096, 0);
	h.field = strbuf_new(256, 0);
	h.field_raw = strbuf_new(256, 0);
	h.extract = extract;

	/* The header section: kept in memory, at most header_limit. */
	while ((got = sendmail_getline(stdin, line, &eol)) == 0) {
		if (first && eol && line->len >= 5
		    && strncmp(line->data, "From ", 5) == 0) {
			first = 0;
			continue;
		}
		first = 0;
		if (!ignore_dots && eol && line->len == 1
		    && line->data[0] == '.') {
			got = -1;
			break;
		}
		if (eol && line->len > 0 && (line->data[0] == ' '
					     || line->data[0] == '\t')
		    && h.field_raw->len > 0) {
			strbuf_append(h.field, line->data, line->len);
			strbuf_append(h.field_raw, line->data, line->len);
			strbuf_append(h.field_raw, "\r\n", 2);
		} else if (eol && sendmail_hdr_start(line->data, line->len)) {
			sendmail_hdr_end_field(&h);
			strbuf_append(h.field, line->data, line->len);
			strbuf_append(h.field_raw, line->data, line->len);
			strbuf_append(h.field_raw, "\r\n", 2);
		} else {
			pending = 1;		/* empty line, or body */
			break;
		}
		if ((long long) (h.kept->len + h.field_raw->len) > header_limit) {
			/* cleanup will refuse it; stop looking. */
			break;
		}
	}
	sendmail_hdr_end_field(&h);

	if (h.bad)
		sendmail_fatal(EX_DATAERR, "bad address in message header");
	from = h.saw_resent ? &h.resent : &h.plain;
	for (i = 0; i < from->nrcpt; i++) {
		if (env->nrcpt >= SENDMAIL_RCPT_MAX)
			sendmail_fatal(EX_DATAERR, "too many recipients");
		sendmail_env_add(env, from->rcpts[i]);
	}
	if (env->nrcpt == 0) {
		/* Read it all, as a writer to a pipe expects. */
		while (got == 0 && sendmail_getline(stdin, line, &eol) == 0)
			 /* void */ ;
		sendmail_fatal(EX_DATAERR, "No recipient addresses found in "
			       "message header");
	}

	if (sendmail_sub_open(&sub, env) < 0)
		sendmail_fatal(sendmail_status(&sub), "%s", sub.reason);
	sendmail_sub_write(&sub, h.kept->data, h.kept->len);
	if (h.field_raw->len)
		sendmail_sub_write(&sub, h.field_raw->data, h.field_raw->len);
	if (pending) {
		sendmail_sub_write(&sub, line->data, line->len);
		if (eol)
			sendmail_sub_write(&sub, "\r\n", 2);
		at_bol = eol;
	}

	/* The body, streamed. */
	while (got == 0 && sendmail_getline(stdin, line, &eol) == 0) {
		if (!ignore_dots && at_bol && eol && line->len == 1
		    && line->data[0] == '.')
			break;
		sendmail_sub_write(&sub, line->data, line->len);
		if (eol)
			sendmail_sub_write(&sub, "\r\n", 2);
		at_bol = eol;
	}
	if (sendmail_sub_close(&sub) < 0)
		sendmail_fatal(sendmail_status(&sub), "%s", sub.reason);
	if (sendmail_verbose && strncmp(sub.queue_id, SENDMAIL_MAILDROP "/",
					 sizeof(SENDMAIL_MAILDROP)) == 0)
		fprintf(stderr, "%s: mail system down: queued in %s\n",
			sendmail_progname, sub.queue_id);
	else if (sendmail_verbose)
		fprintf(stderr, "%s: queued as %s\n", sendmail_progname,
			sub.queue_id);
	sendmail_sub_free(&sub);
	sendmail_env_clear(&h.plain);
	sendmail_env_clear(&h.resent);
	strbuf_free(h.kept);
	strbuf_free(h.field);
	strbuf_free(h.field_raw);
	strbuf_free(line);
	return (EX_OK);
}

/* sendmail_upper - DSN keywords in capitals */
static char *
sendmail_upper(const char *s)
{
	char   *out = xstrdup(s);
	char   *cp;

	for (cp = out; *cp; cp++)
		if (*cp >= 'a' && *cp <= 'z')
			*cp = (char) (*cp - 'a' + 'A');
	return (out);
}

/* sendmail_envid_bad - -V: printable ASCII, not too long */
static int
sendmail_envid_bad(const char *envid)
{
	const char *cp;

	if (*envid == 0 || strlen(envid) > DSN_ENVID_MAX)
		return (1);
	for (cp = envid; *cp; cp++)
		if (*cp < 33 || *cp > 126)
			return (1);
	return (0);
}

/* sendmail_config_dir - -C may name the folder or a file in it */
static char *
sendmail_config_dir(const char *arg)
{
	struct stat st;
	char   *dir;
	char   *slash;

	dir = xstrdup(arg);
	if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) {
		if ((slash = strrchr(dir, '/')) == NULL) {
			free(dir);
			return (xstrdup("."));
		}
		*slash = 0;
		if (*dir == 0) {
			free(dir);
			return (xstrdup("/"));
		}
	}
	return (dir);
}

int
main(int argc, char **argv)
{
	struct sendmail_env env;
	struct strbuf *err;
	const char *base;
	const char *optarg_;
	char   *config_dir = NULL;
	char   *sender = NULL;
	int     mode = SM_MODE_DELIVER;
	int     extract = 0;
	int     ignore_dots = 0;
	long    timeout;
	long long header_limit;
	char    notify_buf[DSN_NOTIFY_BUFSIZE];
	int     dsn_flags;
	int     dsn_ret;
	int     i;
	char   *p;
	int     c;

	memset(&env, 0, sizeof(env));
	signal(SIGPIPE, SIG_IGN);
	log_init("sendmail");		/* main.cf warnings go to stderr */
	if (argc > 0 && argv[0]) {
		base = strrchr(argv[0], '/');
		base = base ? base + 1 : argv[0];
		if (strcmp(base, "mailq") == 0) {
			mode = SM_MODE_LIST;
			sendmail_progname = "mailq";
		}
		if (strcmp(base, "newaliases") == 0)
			sendmail_fatal(EX_UNAVAILABLE, "newaliases: Sendarix "
				       "has no aliases database");
	}

	/* Classic option syntax: -fADDR or -f ADDR, flags grouped. */
	for (i = 1; i < argc; i++) {
		p = argv[i];
		if (p[0] != '-' || p[1] == 0)
			break;
		if (strcmp(p, "--") == 0) {
			i++;
			break;
		}
		for (p++; *p; p++) {
			c = *p;
			optarg_ = NULL;
			if (c == 'q') {
				/* -q, -q1h, -qR...: flush now. */
				mode = SM_MODE_FLUSH;
				break;
			}
			if (strchr(SM_OPTS_ARG, c)) {
				if (p[1])
					optarg_ = p + 1;
				else if (i + 1 < argc)
					optarg_ = argv[++i];
				else
					sendmail_usage("option requires an "
						       "argument -- %s",
						       (char[]) {(char) c, 0});
			}
			switch (c) {
			case 'b':
				switch (optarg_[0]) {
				case 'm':
				case 's':
				case 'p':
					mode = optarg_[0];
					break;
				case 'd':
					sendmail_fatal(EX_USAGE, "-bd is not "
						       "supported: start the "
						       "mail system with "
						       "\"sendarix start\"");
				case 'i':
					sendmail_fatal(EX_UNAVAILABLE, "-bi: "
						       "Sendarix has no "
						       "aliases database");
				default:
					sendmail_usage("unsupported mode: -b%s",
						       optarg_);
				}
				break;
			case 'C':
				free(config_dir);
				config_dir = sendmail_config_dir(optarg_);
				break;
			case 'F':
				if (strlen(optarg_) > SENDMAIL_FULL_NAME_MAX
				    || strpbrk(optarg_, "\r\n") != NULL)
					sendmail_usage("bad -F value: %s (one "
						       "line, at most 256 "
						       "bytes)", optarg_);
				env.full_name = optarg_;
				break;
			case 'f':
			case 'r':
				free(sender);
				sender = xstrdup(optarg_);
				break;
			case 'N':
				if (dsn_notify_parse(optarg_, &dsn_flags) < 0)
					sendmail_usage("bad -N value: %s "
						       "(never, or success,"
						       "failure,delay)",
						       optarg_);
				env.notify = dsn_notify_str(dsn_flags,
						notify_buf, sizeof(notify_buf));
				break;
			case 'R':
				if ((dsn_ret = dsn_ret_parse(optarg_)) < 0)
					sendmail_usage("bad -R value: %s "
						       "(full or hdrs)",
						       optarg_);
				env.ret = dsn_ret_str(dsn_ret);
				break;
			case 'V':
				if (sendmail_envid_bad(optarg_))
					sendmail_usage("bad -V value: %s "
						       "(at most 100 printable "
						       "characters)", optarg_);
				env.envid = optarg_;
				break;
			case 'B':
				if (strcasecmp(optarg_, "7BIT") != 0
				    && strcasecmp(optarg_, "8BITMIME") != 0)
					sendmail_usage("bad -B value: %s "
						       "(7bit or 8bitmime)",
						       optarg_);
				free((char *) env.body);
				env.body = sendmail_upper(optarg_);
				break;
			case 'o':
				/* -oi as -i; -oem, -om, -oQ... ignored. */
				if (strcmp(optarg_, "i") == 0)
					ignore_dots = 1;
				break;
			case 'I':
				sendmail_fatal(EX_UNAVAILABLE, "-I: Sendarix "
					       "has no aliases database");
			case 'i':
				ignore_dots = 1;
				break;
			case 't':
				extract = 1;
				break;
			case 'v':
				sendmail_verbose++;
				break;
			case 'O':
			case 'X':
			case 'L':
			case 'h':
			case 'e':
			case 'p':
				break;		/* accepted, no effect */
			default:
				if (strchr(SM_OPTS_IGNORED, c))
					break;
				sendmail_usage("invalid option -- %s",
					       (char[]) {(char) c, 0});
			}
			if (optarg_)
				break;		/* the rest of the word was it */
		}
	}

	/* main.cf */
	if (config_dir == NULL && getenv("SENDARIX_CONFIG_DIR"))
		config_dir = xstrdup(getenv("SENDARIX_CONFIG_DIR"));
	if (config_dir == NULL)
		config_dir = xstrdup(SENDARIX_CONFIG_DIR);
	err = strbuf_new(256, 4096);
	if (conf_load(config_dir, err) < 0)
		sendmail_fatal(EX_CONFIG, "%s", err->data);
	strbuf_free(err);
	sendmail_queue_dir = conf_get("queue_directory");
	sendmail_myorigin = conf_get("myorigin");
	sendmail_myhostname = conf_get("myhostname");
	if (sendmail_myhostname == NULL || *sendmail_myhostname == 0)
		sendmail_myhostname = "localhost";
	if (sendmail_myorigin == NULL || *sendmail_myorigin == 0)
		sendmail_myorigin = sendmail_myhostname;
	if (sendmail_queue_dir == NULL || *sendmail_queue_dir != '/')
		sendmail_fatal(EX_CONFIG, "queue_directory must be an "
			       "absolute path");
	if ((timeout = conf_get_time("cleanup_timeout")) > 0)
		sendmail_timeout = timeout > 86400 ? 86400 : (int) timeout;
	header_limit = conf_get_size("header_size_limit");
	if (header_limit <= 0)
		header_limit = 102400;
	if (mode == SM_MODE_DELIVER || mode == SM_MODE_SMTP)
		sendmail_check_user();

	switch (mode) {
	case SM_MODE_LIST:
		sendmail_exec_cli(config_dir, "list");
		break;
	case SM_MODE_FLUSH:
		sendmail_exec_cli(config_dir, "flush");
		break;
	case SM_MODE_SMTP:
		if (env.notify || env.ret || env.envid)
			sendmail_warn("-N, -R and -V are ignored with -bs");
		env.notify = env.ret = env.envid = NULL;
		c = sendmail_smtp(&env);
		sendmail_acl = submit_acl_free(sendmail_acl);
		sendmail_env_clear(&env);
		free((char *) env.body);
		free(sender);
		free(config_dir);
		return (c);
	default:
		break;
	}

	/* -bm: the envelope. */
	if (sender != NULL) {
		if ((env.sender = sendmail_addr_qualify(sender)) == NULL)
			sendmail_fatal(EX_USAGE, "bad sender address: %s",
				       sender);
		free(sender);
	} else {
		env.sender = sendmail_default_sender();
	}
	if (env.sender == NULL)
		sendmail_fatal(EX_NOUSER, "bad login name for user ID %lu",
			       (unsigned long) getuid());
	sendmail_check_sender(env.sender);
	for (; i < argc; i++) {
		if (sendmail_addr_list(argv[i], strlen(argv[i]), &env) < 0)
			sendmail_fatal(EX_USAGE, "bad recipient address: %s",
				       argv[i]);
	}
	if (env.nrcpt == 0 && !extract)
		sendmail_fatal(EX_USAGE, "Recipient addresses must be "
			       "specified on the command line or via the "
			       "-t option");
	c = sendmail_deliver(&env, extract, ignore_dots, header_limit);
	sendmail_acl = submit_acl_free(sendmail_acl);
	sendmail_env_clear(&env);
	free((char *) env.body);
	free(config_dir);
	return (c);
}
