/*
 * smtpd_sasl - SMTP AUTH (RFC 4954): Cyrus SASL and XOAUTH2
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	void	smtpd_sasl_pre_init(void)
 *	void	smtpd_sasl_post_init(struct event_base *base)
 *	const char *smtpd_sasl_ehlo(struct smtpd_session *s)
 *	int	smtpd_auth_cmd(struct smtpd_session *s, const char *arg)
 *	int	smtpd_sasl_line(struct smtpd_session *s, int too_long)
 *	size_t	smtpd_sasl_line_limit(struct smtpd_session *s)
 *	const char *smtpd_sasl_username(const struct smtpd_session *s)
 *	const char *smtpd_sasl_method(const struct smtpd_session *s)
 *	int	smtpd_sasl_header(void)
 *	void	smtpd_sasl_free(struct smtpd_session *s)
 *
 * DESCRIPTION
 *	With smtpd_sasl_auth_enable = yes, EHLO offers "AUTH mechanisms"
 *	and the AUTH command authenticates the client: Cyrus SASL's
 *	mechanisms (smtpd_sasl_path names its smtpd.conf, found in
 *	cyrus_sasl_config_path: sasldb, saslauthd, ...) through
 *	lib/sasl/xsasl_cyrus.c, whose steps run in worker threads, and
 *	XOAUTH2 when a token table or an introspection endpoint is set
 *	(lib/sasl/xsasl_xoauth2.c). While a step waits the session reads
 *	no input (SMTPD_ST_CHECK, as a restriction that waits); other
 *	sessions go on. A step that has not come back after smtpd_timeout
 *	gets 454 4.7.0.
 *
 *	With smtpd_tls_auth_only = yes (the default) AUTH is offered and
 *	accepted only under TLS; in clear text it gets 530 5.7.0 Must
 *	issue a STARTTLS command first. smtpd_sasl_security_options apply
 *	in clear text, smtpd_sasl_tls_security_options under TLS.
 *
 *	smtpd_sasl_ehlo() is the EHLO keyword ("AUTH PLAIN LOGIN", ...) or
 *	NULL when AUTH is not offered to this session.
 *
 *	smtpd_auth_cmd() is the AUTH command: "AUTH mechanism
 *	[initial-response]" ("=" is an empty one). Replies: 334 challenge,
 *	235 2.7.0 Authentication successful, 535 5.7.8 Error:
 *	authentication failed: reason, 501 5.5.2 for bad base64, 501 5.7.0
 *	when the client cancels with "*", 503 5.5.1 for a second AUTH, 504
 *	5.5.4 for a mechanism not offered, 454 4.7.0 for a temporary
 *	failure or a locked-out client address.
 *
 *	smtpd_sasl_line() takes the command line when it is a response
 *	of an AUTH exchange under way (1), else it returns 0.
 *	smtpd_sasl_line_limit() is the longest line the session takes
 *	now: smtpd_sasl_response_limit for an AUTH command or a response,
 *	else smtpd_line_length_limit.
 *
 *	XOAUTH2 tokens not found in smtpd_sasl_xoauth2_token_maps go to
 *	the RFC 7662 endpoint smtpd_sasl_xoauth2_introspection_url:
 *	lib/sasl builds the request and reads the answer, and the POST
 *	itself goes through lib/http (http_post() on this loop), which
 *	smtpd_sasl_post_init() hands it as its transport; lib/sasl may not
 *	use lib/http itself (docs/architecture.md).
 *
 *	XOAUTH2 failures follow RFC 7628: 334 and the base64 of
 *	{"status":"invalid_token","schemes":"bearer",...}, then, after the
 *	client's (empty) answer, 535 5.7.8.
 *
 *	Failed logins are counted per client address in this process: at
 *	smtpd_auth_failure_limit failures within smtpd_auth_failure_window,
 *	AUTH from that address gets 454 4.7.0 for
 *	smtpd_auth_failure_lockout. Several smtpd processes count apart.
 *
 *	smtpd_sasl_username() and smtpd_sasl_method() are NULL until the
 *	client has authenticated; smtpd_sasl_header() says whether the
 *	Received header names the user (smtpd_sasl_authenticated_header).
 *
 * DIAGNOSTICS
 *	"warning: name[addr]: SASL PLAIN authentication failed: reason",
 *	the shape fail2ban's postfix-sasl filter matches; configuration
 *	errors at start-up are fatal.
 *
 * SEE ALSO
 *	RFC 4954, RFC 7628, smtpd(8), sendarix-params(5)
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "server.h"
#include "strbuf.h"
#include "stream.h"
#include "xmalloc.h"
#include "xsasl.h"

#include "smtpd.h"

/* Where an exchange stands. */
#define SMTPD_SASL_IDLE		0
#define SMTPD_SASL_RESPONSE	1	/* 334 sent: the next line is ours */
#define SMTPD_SASL_WORKING	2	/* a worker or the endpoint has it */
#define SMTPD_SASL_XOERROR	3	/* XOAUTH2 error sent: await the line */

/* A step's outcome besides 0, -1 and SMTPD_CHECK_WAIT: 334 was sent. */
#define SMTPD_SASL_CONT		3

struct smtpd_sasl {
	struct xsasl_server *xs;	/* Cyrus context of this exchange */
	struct xoauth2_req *oreq;	/* XOAUTH2 check in progress */
	char   *mech;			/* mechanism of the exchange */
	char   *username;		/* authenticated: the user */
	char   *xo_user;		/* XOAUTH2 user= of the exchange */
	struct event *timer;		/* a step that takes too long */
	int     step;			/* SMTPD_SASL_* */
	int     xoauth2;
};

/* Failed logins of one client address. */
struct smtpd_sasl_fail {
	struct smtpd_sasl_fail *next;
	time_t  first;			/* start of the window */
	time_t  until;			/* locked out until */
	int     count;
	char    addr[INET6_ADDRSTRLEN + 8];
};

#define SMTPD_SASL_FAIL_MAX	10000	/* addresses remembered */

static int smtpd_sasl_enable;
static int smtpd_sasl_tls_only;
static int smtpd_sasl_auth_header;
static char *smtpd_sasl_service;
static char *smtpd_sasl_realm;
static char *smtpd_sasl_opts;
static char *smtpd_sasl_tls_opts;
static char *smtpd_sasl_mechs[2];	/* offered: clear, TLS */
static long smtpd_sasl_response_limit;
static long smtpd_sasl_fail_limit;
static long smtpd_sasl_fail_window;
static long smtpd_sasl_fail_lockout;
static struct smtpd_sasl_fail *smtpd_sasl_fails;
static size_t smtpd_sasl_nfails;

static int smtpd_sasl_failure(struct smtpd_session *, const char *);

/* smtpd_sasl_pre_init - read the parameters, start Cyrus (privileged) */
void
smtpd_sasl_pre_init(void)
{
	struct strbuf *err;
	struct xoauth2_conf xo;
	unsigned flags;

	smtpd_sasl_enable = conf_get_bool("smtpd_sasl_auth_enable");
	smtpd_sasl_tls_only = conf_get_bool("smtpd_tls_auth_only");
	smtpd_sasl_auth_header = conf_get_bool("smtpd_sasl_authenticated_header");
	smtpd_sasl_fail_limit = conf_get_int("smtpd_auth_failure_limit");
	smtpd_sasl_response_limit = conf_get_int("smtpd_sasl_response_limit");
	smtpd_sasl_fail_window = conf_get_time("smtpd_auth_failure_window");
	smtpd_sasl_fail_lockout = conf_get_time("smtpd_auth_failure_lockout");
	if (!smtpd_sasl_enable)
		return;
	smtpd_sasl_service = xstrdup(conf_get("smtpd_sasl_service"));
	smtpd_sasl_realm = xstrdup(conf_get("smtpd_sasl_local_domain"));
	smtpd_sasl_opts = xstrdup(conf_get("smtpd_sasl_security_options"));
	smtpd_sasl_tls_opts =
		xstrdup(conf_get("smtpd_sasl_tls_security_options"));
	if (xsasl_security_options(smtpd_sasl_opts, &flags) < 0)
		log_fatal("bad smtpd_sasl_security_options value \"%s\"",
			  smtpd_sasl_opts);
	if (xsasl_security_options(smtpd_sasl_tls_opts, &flags) < 0)
		log_fatal("bad smtpd_sasl_tls_security_options value \"%s\"",
			  smtpd_sasl_tls_opts);
	err = strbuf_new(128, 0);
	if (xsasl_init(conf_get("smtpd_sasl_path"),
		       conf_get("cyrus_sasl_config_path"), err) < 0)
		log_fatal("%s", err->data);
	memset(&xo, 0, sizeof(xo));
	xo.token_maps = conf_get("smtpd_sasl_xoauth2_token_maps");
	xo.url = conf_get("smtpd_sasl_xoauth2_introspection_url");
	xo.client_id = conf_get("smtpd_sasl_xoauth2_client_id");
	xo.client_secret = conf_get("smtpd_sasl_xoauth2_client_secret");
	xo.scope = conf_get("smtpd_sasl_xoauth2_scope");
	xo.timeout = conf_get_time("smtpd_sasl_xoauth2_timeout");
	if (xoauth2_init(&xo, err) < 0)
		log_fatal("XOAUTH2: %s", err->data);
	strbuf_free(err);
	/* lib/http loads libcurl here, while a chroot does not hide it. */
	if (xo.url && *xo.url)
		(void) http_load();
}

/* One introspection POST through lib/http. */
struct smtpd_sasl_http {
	struct http_req *req;
	xsasl_http_done done;
	void   *ctx;
};

/* smtpd_sasl_http_done - lib/http's result, handed to lib/sasl */
static void
smtpd_sasl_http_done(const struct http_result *hr, void *ctx)
{
	struct smtpd_sasl_http *sh = ctx;
	struct xsasl_http_result res;
	xsasl_http_done done = sh->done;
	void   *dctx = sh->ctx;

	xfree(sh);
	res.status = hr->status;
	res.body = hr->body;
	res.len = hr->len;
	res.error = hr->error;
	done(&res, dctx);
}

/* smtpd_sasl_http_post - lib/sasl's transport: http_post() */
static void *
smtpd_sasl_http_post(const struct xsasl_http_post *hp, xsasl_http_done done,
		     void *ctx)
{
	struct smtpd_sasl_http *sh;
	struct http_opts opts;

	memset(&opts, 0, sizeof(opts));
	opts.timeout = hp->timeout;
	opts.max_bytes = hp->max_bytes;
	opts.plain_ok = 1;
	opts.user = hp->user;
	opts.password = hp->password;
	sh = xcalloc(1, sizeof(*sh));
	sh->done = done;
	sh->ctx = ctx;
	sh->req = http_post(hp->url, hp->ctype, hp->body, hp->len, &opts,
			    smtpd_sasl_http_done, sh);
	return (sh);
}

/* smtpd_sasl_http_cancel - lib/sasl abandons a POST */
static void
smtpd_sasl_http_cancel(void *handle)
{
	struct smtpd_sasl_http *sh = handle;

	http_cancel(sh->req);
	xfree(sh);
}

/* smtpd_sasl_post_init - results come back to this loop */
void
smtpd_sasl_post_init(struct event_base *base)
{
	const char *url = conf_get("smtpd_sasl_xoauth2_introspection_url");

	xsasl_set_base(base);
	/* Without AUTH no token is checked: no libcurl (e.g. port 25). */
	if (!smtpd_sasl_enable || url == NULL || *url == 0)
		return;
	if (http_init(base) < 0)
		log_fatal("cannot start libcurl for XOAUTH2 introspection");
	introspect_set_transport(smtpd_sasl_http_post, smtpd_sasl_http_cancel);
}

/* smtpd_sasl_tls - is the session encrypted? */
int
smtpd_sasl_tls(const struct smtpd_session *s)
{
	return (s->tls_info != NULL);
}

/* smtpd_sasl_new - a Cyrus context for this session, or NULL */
static struct xsasl_server *
smtpd_sasl_new(struct smtpd_session *s)
{
	struct xsasl_server *xs;
	struct strbuf *err = strbuf_new(128, 0);
	int     tls = smtpd_sasl_tls(s);

	xs = xsasl_server_new(smtpd_sasl_service, smtpd_var.myhostname,
			      smtpd_sasl_realm, NULL, NULL, tls,
			      tls ? smtpd_sasl_tls_opts : smtpd_sasl_opts, err);
	if (xs == NULL)
		log_warn("%s[%s]: %s", s->name, s->addr, err->data);
	strbuf_free(err);
	return (xs);
}

/* smtpd_sasl_offered - may this session use AUTH now? */
static int
smtpd_sasl_offered(const struct smtpd_session *s)
{
	return (smtpd_sasl_enable && (!smtpd_sasl_tls_only || smtpd_sasl_tls(s)));
}

/* smtpd_sasl_mech_list - the mechanisms offered (cached per TLS state) */
static const char *
smtpd_sasl_mech_list(struct smtpd_session *s)
{
	int     tls = smtpd_sasl_tls(s);
	struct xsasl_server *xs;
	struct strbuf *sb;

	if (smtpd_sasl_mechs[tls] == NULL) {
		if ((xs = smtpd_sasl_new(s)) == NULL)
			return ("");
		sb = strbuf_new(64, 0);
		strbuf_appends(sb, xsasl_server_mechs(xs));
		xsasl_server_free(xs);
		if (xoauth2_enabled())
			strbuf_printf(sb, "%sXOAUTH2", sb->len ? " " : "");
		smtpd_sasl_mechs[tls] = strbuf_steal(sb, NULL);
		strbuf_free(sb);
	}
	return (smtpd_sasl_mechs[tls]);
}

/* smtpd_sasl_ehlo - the EHLO keyword, or NULL */
const char *
smtpd_sasl_ehlo(struct smtpd_session *s)
{
	static char buf[512];
	const char *mechs;

	if (!smtpd_sasl_offered(s))
		return (NULL);
	mechs = smtpd_sasl_mech_list(s);
	if (*mechs == 0)
		return (NULL);
	snprintf(buf, sizeof(buf), "AUTH %s", mechs);
	return (buf);
}

/* smtpd_sasl_has_mech - is "mech" among the offered ones? */
static int
smtpd_sasl_has_mech(struct smtpd_session *s, const char *mech)
{
	const char *cp = smtpd_sasl_mech_list(s);
	size_t  len = strlen(mech);
	size_t  n;

	while (*cp) {
		n = strcspn(cp, " ");
		if (n == len && strncasecmp(cp, mech, len) == 0)
			return (1);
		cp += n;
		cp += strspn(cp, " ");
	}
	return (0);
}

/* smtpd_sasl_fail_find - the failure record of an address (made) */
static struct smtpd_sasl_fail *
smtpd_sasl_fail_find(const char *addr, int make)
{
	struct smtpd_sasl_fail **pp = &smtpd_sasl_fails;
	struct smtpd_sasl_fail *f;
	time_t  now = time(NULL);

	while ((f = *pp) != NULL) {
		/* Forget what is over: the window and any lockout. */
		if (f->until <= now && f->first + smtpd_sasl_fail_window <= now) {
			*pp = f->next;
			xfree(f);
			smtpd_sasl_nfails--;
			continue;
		}
		if (strcmp(f->addr, addr) == 0)
			return (f);
		pp = &f->next;
	}
	if (!make || smtpd_sasl_nfails >= SMTPD_SASL_FAIL_MAX)
		return (NULL);
	f = xcalloc(1, sizeof(*f));
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	f->first = now;
	f->next = smtpd_sasl_fails;
	smtpd_sasl_fails = f;
	smtpd_sasl_nfails++;
	return (f);
}

/* smtpd_sasl_locked - is the client locked out after failures? */
static int
smtpd_sasl_locked(struct smtpd_session *s)
{
	struct smtpd_sasl_fail *f;

	if (smtpd_sasl_fail_limit <= 0)
		return (0);
	f = smtpd_sasl_fail_find(s->addr, 0);
	return (f != NULL && f->until > time(NULL));
}

/* smtpd_sasl_count_failure - one more failed login from this address */
static void
smtpd_sasl_count_failure(struct smtpd_session *s)
{
	struct smtpd_sasl_fail *f;
	time_t  now = time(NULL);

	if (smtpd_sasl_fail_limit <= 0
	    || (f = smtpd_sasl_fail_find(s->addr, 1)) == NULL)
		return;
	/* A new window, or a lockout served: count from zero. */
	if (f->first + smtpd_sasl_fail_window <= now
	    || (f->until != 0 && f->until <= now)) {
		f->first = now;
		f->count = 0;
		f->until = 0;
	}
	if (++f->count >= smtpd_sasl_fail_limit && f->until <= now) {
		f->until = now + smtpd_sasl_fail_lockout;
		log_warn("%s[%s]: %d failed authentication attempts within "
			 "%lds: AUTH locked out for %lds", s->name, s->addr,
			 f->count, smtpd_sasl_fail_window,
			 smtpd_sasl_fail_lockout);
	}
}

/* smtpd_sasl_get - the session's SASL state, made on first use */
static struct smtpd_sasl *
smtpd_sasl_get(struct smtpd_session *s)
{
	if (s->sasl == NULL)
		s->sasl = xcalloc(1, sizeof(*s->sasl));
	return (s->sasl);
}

/* smtpd_sasl_end - the exchange is over (success or not) */
static void
smtpd_sasl_end(struct smtpd_sasl *sa)
{
	xsasl_server_free(sa->xs);
	sa->xs = NULL;
	xoauth2_cancel(sa->oreq);
	sa->oreq = NULL;
	if (sa->timer)
		evtimer_del(sa->timer);
	sa->xo_user = xfree(sa->xo_user);
	sa->step = SMTPD_SASL_IDLE;
	if (sa->username == NULL)
		sa->mech = xfree(sa->mech);
}

/* smtpd_sasl_success - 235 */
static int
smtpd_sasl_success(struct smtpd_session *s, const char *user)
{
	struct smtpd_sasl *sa = s->sasl;
	const char *cp;

	/* It goes into logs, the queue file and maybe a header. */
	for (cp = user; *cp; cp++)
		if ((unsigned char) *cp < 0x20 || *cp == 0x7f)
			return (smtpd_sasl_failure(s, "bad user name"));
	sa->username = xstrdup(user);
	smtpd_sasl_end(sa);
	if (log_verbose)
		log_debug("%s[%s]: SASL %s authentication succeeded: "
			  "sasl_username=%s", s->name, s->addr, sa->mech, user);
	smtpd_reply(s, "235 2.7.0 Authentication successful");
	return (0);
}

/* smtpd_sasl_failure - 535, logged for fail2ban, counted */
static int
smtpd_sasl_failure(struct smtpd_session *s, const char *reason)
{
	struct smtpd_sasl *sa = s->sasl;
	char    text[128];
	char   *cp;

	/*
	 * Postfix's shape, which fail2ban's filters read: after "failed: "
	 * they expect letters, digits, blanks (and base64) only.
	 */
	snprintf(text, sizeof(text), "%s", reason);
	for (cp = text; *cp; cp++)
		if (!isalnum((unsigned char) *cp) && !strchr(" +/:=", *cp))
			*cp = ' ';
	log_warn("%s[%s]: SASL %s authentication failed: %s%s%s", s->name,
		 s->addr, sa->mech, text, sa->xo_user ? ", sasl_username=" :
		 "", sa->xo_user ? sa->xo_user : "");
	smtpd_sasl_count_failure(s);
	/* Whether the user exists is for the log, not for the client. */
	if (!sa->xoauth2)
		reason = "authentication failure";
	smtpd_reply(s, "535 5.7.8 Error: authentication failed: %s", reason);
	smtpd_sasl_end(sa);
	return (-1);
}

/* smtpd_sasl_temp - 454: the failure is ours */
static int
smtpd_sasl_temp(struct smtpd_session *s, const char *reason)
{
	struct smtpd_sasl *sa = s->sasl;

	log_warn("%s[%s]: SASL %s authentication aborted: %s", s->name,
		 s->addr, sa->mech, reason);
	smtpd_reply(s, "454 4.7.0 Temporary authentication failure: %s",
		    reason);
	smtpd_sasl_end(sa);
	return (-1);
}

/* smtpd_sasl_challenge - 334 and the base64 of a challenge */
static int
smtpd_sasl_challenge(struct smtpd_session *s, const char *data, size_t len)
{
	struct strbuf *b64 = strbuf_new(128, 0);

	xsasl_b64_encode(data, len, b64);
	smtpd_reply(s, "334 %s", b64->data);
	strbuf_free(b64);
	s->sasl->step = SMTPD_SASL_RESPONSE;
	return (SMTPD_SASL_CONT);
}

static void smtpd_sasl_resume(struct smtpd_session *, int);

/* smtpd_sasl_timeout - a step did not come back in time: 454 */
static void
smtpd_sasl_timeout(evutil_socket_t unused_fd, short unused_what, void *ctx)
{
	struct smtpd_session *s = ctx;

	(void) unused_fd;
	(void) unused_what;
	if (s->sasl == NULL || s->sasl->step != SMTPD_SASL_WORKING)
		return;
	/* The worker keeps the orphaned context until it returns. */
	smtpd_sasl_resume(s, smtpd_sasl_temp(s, "timeout"));
}

/* smtpd_sasl_wait - the answer comes later: the session waits */
static int
smtpd_sasl_wait(struct smtpd_session *s)
{
	struct smtpd_sasl *sa = s->sasl;
	struct timeval tv = {smtpd_var.timeout, 0};

	sa->step = SMTPD_SASL_WORKING;
	if (sa->timer == NULL)
		sa->timer = evtimer_new(server_base(), smtpd_sasl_timeout, s);
	evtimer_add(sa->timer, &tv);
	return (SMTPD_CHECK_WAIT);
}

/* smtpd_sasl_cyrus_result - a Cyrus step's result, as a reply */
static int
smtpd_sasl_cyrus_result(struct smtpd_session *s, int status)
{
	struct smtpd_sasl *sa = s->sasl;
	const char *out;
	size_t  len;

	switch (status) {
	case XSASL_OK:
		return (smtpd_sasl_success(s, xsasl_server_username(sa->xs)));
	case XSASL_CONTINUE:
		out = xsasl_server_output(sa->xs, &len);
		return (smtpd_sasl_challenge(s, out, len));
	case XSASL_NOMECH:
		smtpd_sasl_end(sa);
		smtpd_reply(s, "504 5.5.4 Unsupported authentication mechanism");
		return (-1);
	case XSASL_TEMP:
		return (smtpd_sasl_temp(s, xsasl_server_reason(sa->xs)));
	default:
		return (smtpd_sasl_failure(s, xsasl_server_reason(sa->xs)));
	}
}

/* smtpd_sasl_resume - a waiting step has its reply: carry on */
static void
smtpd_sasl_resume(struct smtpd_session *s, int ret)
{
	if (s->sasl && s->sasl->timer)
		evtimer_del(s->sasl->timer);
	/* 0 counts the AUTH as good; a challenge counts nothing yet. */
	if (s->state == SMTPD_ST_CHECK)
		smtpd_session_cmd_done(s, ret);
}

/* smtpd_sasl_cyrus_done - a worker finished a step */
static void
smtpd_sasl_cyrus_done(struct xsasl_server *unused_xs, int status, void *ctx)
{
	struct smtpd_session *s = ctx;

	(void) unused_xs;
	smtpd_sasl_resume(s, smtpd_sasl_cyrus_result(s, status));
}

/* smtpd_sasl_xo_error - XOAUTH2 refused: the RFC 7628 error challenge */
static int
smtpd_sasl_xo_error(struct smtpd_session *s)
{
	char   *json = xoauth2_error_json();

	smtpd_sasl_challenge(s, json, strlen(json));
	xfree(json);
	s->sasl->step = SMTPD_SASL_XOERROR;
	return (SMTPD_SASL_CONT);
}

/* smtpd_sasl_xo_result - an XOAUTH2 verdict, as a reply */
static int
smtpd_sasl_xo_result(struct smtpd_session *s, int status)
{
	struct smtpd_sasl *sa = s->sasl;
	char   *user;
	int     ret;

	switch (status) {
	case XSASL_OK:
		user = xstrdup(sa->xo_user);
		ret = smtpd_sasl_success(s, user);
		xfree(user);
		return (ret);
	case XSASL_TEMP:
		return (smtpd_sasl_temp(s, "token check failed"));
	default:
		return (smtpd_sasl_xo_error(s));
	}
}

/* smtpd_sasl_xo_done - the introspection endpoint answered */
static void
smtpd_sasl_xo_done(int status, const char *unused_login, void *ctx)
{
	struct smtpd_session *s = ctx;

	(void) unused_login;
	s->sasl->oreq = NULL;
	smtpd_sasl_resume(s, smtpd_sasl_xo_result(s, status));
}

/* smtpd_sasl_xo_response - the XOAUTH2 client message */
static int
smtpd_sasl_xo_response(struct smtpd_session *s, const char *data,
		       size_t len)
{
	struct smtpd_sasl *sa = s->sasl;
	char   *user;
	char   *token;
	int     ret;

	if (xoauth2_parse(data, len, &user, &token) < 0)
		return (smtpd_sasl_failure(s, "malformed XOAUTH2 message"));
	sa->xo_user = user;
	ret = xoauth2_check(user, token, smtpd_sasl_xo_done, s, &sa->oreq);
	xfree(token);
	if (ret == XSASL_WAIT)
		return (smtpd_sasl_wait(s));
	return (smtpd_sasl_xo_result(s, ret));
}

/* smtpd_sasl_decode - base64 of the client; -1 after a 501 */
static int
smtpd_sasl_decode(struct smtpd_session *s, const char *text,
		  struct strbuf *out)
{
	if (strcmp(text, "=") == 0) {
		strbuf_reset(out);
		return (0);
	}
	if (xsasl_b64_decode(text, strlen(text), out) < 0) {
		smtpd_sasl_end(s->sasl);
		smtpd_reply(s, "501 5.5.2 Cannot decode response");
		return (-1);
	}
	return (0);
}

/* smtpd_auth_cmd - AUTH mechanism [initial-response] */
int
smtpd_auth_cmd(struct smtpd_session *s, const char *arg)
{
	struct smtpd_sasl *sa;
	struct strbuf *in;
	char   *mech;
	const char *ir;
	size_t  n;
	int     ret;

	if (!smtpd_sasl_enable) {
		smtpd_reply(s, "503 5.5.1 Error: authentication not enabled");
		return (-1);
	}
	if (!smtpd_sasl_offered(s)) {
		smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return (-1);
	}
	if (s->sasl && s->sasl->username) {
		smtpd_reply(s, "503 5.5.1 Error: already authenticated");
		return (-1);
	}
	n = strcspn(arg, " ");
	if (n == 0) {
		smtpd_reply(s, "501 5.5.4 Syntax: AUTH mechanism");
		return (-1);
	}
	if (smtpd_sasl_locked(s)) {
		log_warn("%s[%s]: AUTH refused: too many failed authentication "
			 "attempts", s->name, s->addr);
		smtpd_reply(s, "454 4.7.0 Too many failed authentication "
			    "attempts, try again later");
		return (-1);
	}
	mech = xstrndup(arg, n);
	for (ir = arg + n; *ir == ' '; ir++)
		 /* skip */ ;
	if (!smtpd_sasl_has_mech(s, mech)) {
		xfree(mech);
		smtpd_reply(s, "504 5.5.4 Unsupported authentication mechanism");
		return (-1);
	}
	sa = smtpd_sasl_get(s);
	xfree(sa->mech);
	sa->mech = mech;
	for (; *mech; mech++)
		*mech = (char) toupper((unsigned char) *mech);
	sa->xoauth2 = strcmp(sa->mech, "XOAUTH2") == 0;
	in = strbuf_new(256, 0);
	if (*ir && smtpd_sasl_decode(s, ir, in) < 0) {
		strbuf_free(in);
		return (-1);
	}
	if (sa->xoauth2) {
		if (*ir)
			ret = smtpd_sasl_xo_response(s, in->data, in->len);
		else
			ret = smtpd_sasl_challenge(s, "", 0);
	} else if ((sa->xs = smtpd_sasl_new(s)) == NULL) {
		ret = smtpd_sasl_temp(s, "no SASL context");
	} else {
		ret = xsasl_server_first(sa->xs, sa->mech, in->data, in->len,
					 *ir != 0, smtpd_sasl_cyrus_done, s);
		ret = ret == XSASL_WAIT ? smtpd_sasl_wait(s) :
			smtpd_sasl_cyrus_result(s, ret);
	}
	strbuf_free(in);
	/* A challenge: AUTH is not done (nor good) yet. */
	return (ret == SMTPD_SASL_CONT ? -2 : ret);
}

/* smtpd_sasl_line - a response line of an exchange under way? */
int
smtpd_sasl_line(struct smtpd_session *s, int too_long)
{
	struct smtpd_sasl *sa = s->sasl;
	struct strbuf *in;
	int     ret;

	if (sa == NULL || (sa->step != SMTPD_SASL_RESPONSE
			   && sa->step != SMTPD_SASL_XOERROR))
		return (0);
	if (too_long) {
		smtpd_sasl_end(sa);
		smtpd_reply(s, "500 5.5.6 Authentication Exchange line is too "
			    "long");
		return (1);
	}
	if (sa->step == SMTPD_SASL_XOERROR) {
		(void) smtpd_sasl_failure(s, "invalid token");
		return (1);
	}
	if (strcmp(s->line->data, "*") == 0) {
		smtpd_sasl_end(sa);
		smtpd_reply(s, "501 5.7.0 Authentication aborted");
		return (1);
	}
	in = strbuf_new(256, 0);
	if (smtpd_sasl_decode(s, s->line->data, in) < 0) {
		strbuf_free(in);
		return (1);
	}
	if (sa->xoauth2) {
		ret = smtpd_sasl_xo_response(s, in->data, in->len);
	} else {
		ret = xsasl_server_next(sa->xs, in->data, in->len,
					smtpd_sasl_cyrus_done, s);
		ret = ret == XSASL_WAIT ? smtpd_sasl_wait(s) :
			smtpd_sasl_cyrus_result(s, ret);
	}
	strbuf_free(in);
	if (ret == SMTPD_CHECK_WAIT) {
		s->cmd_waiting = SMTPD_CMD_AUTH;
		s->state = SMTPD_ST_CHECK;
	} else if (ret == 0)
		s->cmd_ok[SMTPD_CMD_AUTH]++;
	return (1);
}

/*
 * smtpd_sasl_line_limit - the longest line to take now: AUTH lines and
 * responses may be longer than commands (XOAUTH2 tokens, Kerberos
 * tickets), up to smtpd_sasl_response_limit.
 */
size_t
smtpd_sasl_line_limit(struct smtpd_session *s)
{
	char    buf[5];

	if (!smtpd_sasl_enable
	    || smtpd_sasl_response_limit <= smtpd_var.line_limit)
		return ((size_t) smtpd_var.line_limit);
	if (s->sasl && (s->sasl->step == SMTPD_SASL_RESPONSE
			|| s->sasl->step == SMTPD_SASL_XOERROR))
		return ((size_t) smtpd_sasl_response_limit);
	if (evbuffer_copyout(stream_input(s->stream), buf, 5) == 5
	    && strncasecmp(buf, "AUTH ", 5) == 0)
		return ((size_t) smtpd_sasl_response_limit);
	return ((size_t) smtpd_var.line_limit);
}

/* smtpd_sasl_username - the authenticated user, or NULL */
const char *
smtpd_sasl_username(const struct smtpd_session *s)
{
	return (s->sasl ? s->sasl->username : NULL);
}

/* smtpd_sasl_method - the mechanism the client authenticated with */
const char *
smtpd_sasl_method(const struct smtpd_session *s)
{
	return (s->sasl && s->sasl->username ? s->sasl->mech : NULL);
}

/* smtpd_sasl_header - name the user in the Received header? */
int
smtpd_sasl_header(void)
{
	return (smtpd_sasl_auth_header);
}

/* smtpd_sasl_free - the session ends (or starts over after STARTTLS) */
void
smtpd_sasl_free(struct smtpd_session *s)
{
	struct smtpd_sasl *sa = s->sasl;

	if (sa == NULL)
		return;
	smtpd_sasl_end(sa);
	if (sa->timer)
		event_free(sa->timer);
	xfree(sa->mech);
	xfree(sa->username);
	xfree(sa);
	s->sasl = NULL;
}
