/*
 * smtp_sasl - SMTP AUTH as a client (RFC 4954): Cyrus SASL for PLAIN,
 *	LOGIN and the rest, XOAUTH2 from a token file
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	void	smtp_sasl_pre_init(void)
 *	int	smtp_sasl_start(struct smtp_sess *sess, struct strbuf *why)
 *	int	smtp_sasl_reply(struct smtp_sess *sess, struct strbuf *why)
 *	void	smtp_sasl_free(struct smtp_sess *sess)
 *
 * DESCRIPTION
 *	smtp_sasl_pre_init() opens smtp_sasl_password_maps and starts the
 *	Cyrus SASL client library when smtp_sasl_auth_enable is set.
 *
 *	smtp_sasl_start() runs after the last EHLO (after STARTTLS when TLS
 *	was started). It looks up the credentials for the server: the
 *	next-hop element as written ("[smtp.example.com]:587"), then
 *	"[host]:port", "[host]", the server's host name and the
 *	destination's domain. No entry, or a server that does not offer
 *	AUTH: 0, the mail goes without AUTH (as Postfix). Otherwise it
 *	picks a mechanism the server offers and the security options
 *	allow (smtp_sasl_tls_security_options under TLS, else
 *	smtp_sasl_security_options, whose default "noplaintext,
 *	noanonymous" keeps PLAIN and LOGIN off a clear-text connection)
 *	and sends AUTH: 1. -1 with the reason when no mechanism is left or
 *	the credentials cannot be had.
 *
 *	A password "@/path" names a file that holds an OAuth 2.0 bearer
 *	token, read again at each AUTH (an operator's refresher keeps it
 *	fresh): the mechanism is then XOAUTH2 (initial response
 *	"user=U^Aauth=Bearer T^A^A"), treated as a plaintext mechanism,
 *	and only used when the server offers it.
 *
 *	smtp_sasl_reply() takes each reply to AUTH: 334 gets the next
 *	response (1), 235 ends the exchange (0, the session is
 *	authenticated), anything else fails it (-1, the reason is
 *	"SASL authentication failed; server X said: ...").
 *	smtp_sasl_free() forgets the exchange.
 *
 * SECURITY
 *	Passwords and tokens never appear in a log line. Server challenges
 *	are bounded by the reply limit and decoded with sasl_decode64().
 *
 * SEE ALSO
 *	RFC 4954, RFC 4616, Cyrus SASL sasl_client_start(3),
 *	https://developers.google.com/gmail/imap/xoauth2-protocol
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include <event2/buffer.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtp-out.h"

#define SMTP_SASL_TOKEN_MAX	(16 * 1024)	/* longest token file */

/* Cyrus callbacks have many types; through void (*)(void) to its one. */
typedef int (*SMTP_SASL_CB) (void);
typedef void (*SMTP_SASL_ANYFN) (void);

/* One AUTH exchange. */
struct smtp_sasl {
	sasl_conn_t *conn;		/* Cyrus; NULL for XOAUTH2 */
	sasl_callback_t cb[4];
	char   *user;
	char   *pass;
	sasl_secret_t *secret;
	char   *mech;			/* the mechanism chosen */
	int     xoauth2_error;		/* XOAUTH2: the server sent its error */
};

static struct map *smtp_sasl_map;
static int smtp_sasl_inited;

/* smtp_sasl_opts - security option words as Cyrus flags */
static int
smtp_sasl_opts(const char *text, unsigned *flags)
{
	static const struct {
		const char *name;
		unsigned flag;
	}       opts[] = {
		{"noplaintext", SASL_SEC_NOPLAINTEXT},
		{"noactive", SASL_SEC_NOACTIVE},
		{"nodictionary", SASL_SEC_NODICTIONARY},
		{"noanonymous", SASL_SEC_NOANONYMOUS},
		{"mutual_auth", SASL_SEC_MUTUAL_AUTH},
	};
	const char *p = text;
	size_t  len;
	size_t  i;

	*flags = 0;
	for (;;) {
		p += strspn(p, " \t,");
		if (*p == 0)
			return (0);
		len = strcspn(p, " \t,");
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (strlen(opts[i].name) == len
			    && strncasecmp(p, opts[i].name, len) == 0)
				break;
		if (i == sizeof(opts) / sizeof(opts[0]))
			return (-1);
		*flags |= opts[i].flag;
		p += len;
	}
}

/* smtp_sasl_pre_init - the password table and the SASL library */
void
smtp_sasl_pre_init(void)
{
	struct strbuf *err;
	unsigned flags;
	int     ret;

	if (smtp_sasl_opts(smtp_var.sasl_sec_opts, &flags) < 0)
		log_fatal("bad smtp_sasl_security_options value \"%s\"",
			  smtp_var.sasl_sec_opts);
	if (smtp_sasl_opts(smtp_var.sasl_tls_sec_opts, &flags) < 0)
		log_fatal("bad smtp_sasl_tls_security_options value \"%s\"",
			  smtp_var.sasl_tls_sec_opts);
	if (!smtp_var.sasl_enable)
		return;
	if (*smtp_var.sasl_passwd_maps == 0)
		log_warn("smtp_sasl_auth_enable = yes, but "
			 "smtp_sasl_password_maps is empty");
	else {
		err = strbuf_new(128, 0);
		smtp_sasl_map = map_open(smtp_var.sasl_passwd_maps, err);
		if (smtp_sasl_map == NULL)
			log_fatal("smtp_sasl_password_maps: %s", err->data);
		strbuf_free(err);
	}
	if ((ret = sasl_client_init(NULL)) != SASL_OK)
		log_fatal("cannot start the SASL client library: %s",
			  sasl_errstring(ret, NULL, NULL));
	smtp_sasl_inited = 1;
}

/* smtp_sasl_free - the exchange and its secrets */
void
smtp_sasl_free(struct smtp_sess *sess)
{
	struct smtp_sasl *s = sess->sasl;

	if (s == NULL)
		return;
	if (s->conn)
		sasl_dispose(&s->conn);
	if (s->pass) {
		explicit_bzero(s->pass, strlen(s->pass));
		xfree(s->pass);
	}
	if (s->secret) {
		explicit_bzero(s->secret->data, s->secret->len);
		xfree(s->secret);
	}
	xfree(s->user);
	xfree(s->mech);
	xfree(s);
	sess->sasl = NULL;
}

/* smtp_sasl_get_simple - Cyrus asks for the user name */
static int
smtp_sasl_get_simple(void *ctx, int id, const char **result,
		     unsigned *len)
{
	struct smtp_sasl *s = ctx;

	if (id != SASL_CB_USER && id != SASL_CB_AUTHNAME)
		return (SASL_BADPARAM);
	*result = s->user;
	if (len)
		*len = (unsigned) strlen(s->user);
	return (SASL_OK);
}

/* smtp_sasl_get_secret - Cyrus asks for the password */
static int
smtp_sasl_get_secret(sasl_conn_t *unused_conn, void *ctx, int id,
		     sasl_secret_t **psecret)
{
	struct smtp_sasl *s = ctx;
	size_t  len;

	(void) unused_conn;
	if (id != SASL_CB_PASS || psecret == NULL)
		return (SASL_BADPARAM);
	if (s->secret == NULL) {
		len = strlen(s->pass);
		s->secret = xmalloc(sizeof(*s->secret) + len);
		s->secret->len = len;
		memcpy(s->secret->data, s->pass, len + 1);
	}
	*psecret = s->secret;
	return (SASL_OK);
}

/* smtp_sasl_lookup - the credentials for this server; 0 none, -1 error */
static int
smtp_sasl_lookup(struct smtp_sess *sess, const char **value,
		 struct strbuf *why)
{
	struct strbuf *key = strbuf_new(128, 0);
	const char *keys[5];
	size_t  n = 0;
	size_t  i;
	int     ret = MAP_NOTFOUND;
	char   *k2 = NULL;
	char   *k3 = NULL;

	keys[n++] = sess->dest;
	if (!sess->dest_mx) {
		strbuf_setf(key, "[%s]:%u", sess->dest_host, sess->port);
		k2 = xstrdup(key->data);
		keys[n++] = k2;
		strbuf_setf(key, "[%s]", sess->dest_host);
		k3 = xstrdup(key->data);
		keys[n++] = k3;
	}
	keys[n++] = sess->host;
	keys[n++] = sess->dest_host;
	for (i = 0; i < n && ret == MAP_NOTFOUND; i++)
		ret = map_lookup(smtp_sasl_map, keys[i], value);
	if (ret == MAP_RETRY)
		strbuf_setf(why, "SASL authentication failed: password table "
			    "%s is not available", map_spec(smtp_sasl_map));
	xfree(k2);
	xfree(k3);
	strbuf_free(key);
	return (ret == MAP_FOUND ? 1 : ret == MAP_RETRY ? -1 : 0);
}

/* smtp_sasl_offers - the server offers this mechanism */
static int
smtp_sasl_offers(const char *mechs, const char *mech)
{
	const char *p = mechs;
	size_t  len;
	size_t  mlen = strlen(mech);

	for (;;) {
		p += strspn(p, " ");
		if (*p == 0)
			return (0);
		len = strcspn(p, " ");
		if (len == mlen && strncasecmp(p, mech, len) == 0)
			return (1);
		p += len;
	}
}

/* smtp_sasl_token - read the bearer token, trimmed */
static char *
smtp_sasl_token(const char *path, struct strbuf *why)
{
	char    buf[SMTP_SASL_TOKEN_MAX + 1];
	ssize_t n;
	size_t  len = 0;
	size_t  start;
	int     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		strbuf_setf(why, "SASL authentication failed: cannot read "
			    "the OAuth 2.0 token file %s: %s", path,
			    strerror(errno));
		return (NULL);
	}
	while (len < sizeof(buf) - 1
	       && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t) n;
	(void) close(fd);
	buf[len] = 0;
	while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
		buf[--len] = 0;
	start = strspn(buf, " \t\r\n");
	if (buf[start] == 0 || strpbrk(buf + start, "\r\n\001")) {
		explicit_bzero(buf, sizeof(buf));
		strbuf_setf(why, "SASL authentication failed: the OAuth 2.0 "
			    "token file %s is empty or not one line", path);
		return (NULL);
	}
	{
		char   *tok = xstrdup(buf + start);

		explicit_bzero(buf, sizeof(buf));
		return (tok);
	}
}

/* smtp_sasl_send - "PREFIX base64(data)" or "PREFIX" with no data */
static int
smtp_sasl_send(struct smtp_sess *sess, const char *prefix,
	       const char *data, unsigned len, int empty_as_eq)
{
	struct evbuffer *out = stream_output(sess->stream);
	unsigned max = (len + 2) / 3 * 4 + 1;
	unsigned used = 0;
	char   *b64;

	if (data == NULL) {
		evbuffer_add_printf(out, "%s\r\n", prefix);
		return (0);
	}
	b64 = xmalloc(max);
	if (sasl_encode64(data, len, b64, max, &used) != SASL_OK) {
		xfree(b64);
		return (-1);
	}
	if (used == 0 && empty_as_eq)
		evbuffer_add_printf(out, "%s%s=\r\n", prefix, *prefix ? " " : "");
	else
		evbuffer_add_printf(out, "%s%s%.*s\r\n", prefix,
				    *prefix && used ? " " : "", (int) used, b64);
	explicit_bzero(b64, max);
	xfree(b64);
	return (0);
}

/* smtp_sasl_xoauth2 - the XOAUTH2 initial response */
static int
smtp_sasl_xoauth2(struct smtp_sess *sess, struct strbuf *why)
{
	struct smtp_sasl *s = sess->sasl;
	struct strbuf *ir;
	char   *token;
	int     ret;

	if ((token = smtp_sasl_token(s->pass + 1, why)) == NULL)
		return (-1);
	ir = strbuf_new(256, 0);
	strbuf_printf(ir, "user=%s\001auth=Bearer %s\001\001", s->user, token);
	explicit_bzero(token, strlen(token));
	xfree(token);
	ret = smtp_sasl_send(sess, "AUTH XOAUTH2", ir->data,
			     (unsigned) ir->len, 1);
	explicit_bzero(ir->data, ir->len);
	strbuf_free(ir);
	if (ret < 0) {
		strbuf_sets(why, "SASL authentication failed: cannot encode "
			    "the XOAUTH2 response");
		return (-1);
	}
	return (1);
}

/* smtp_sasl_start - look up, choose a mechanism, send AUTH */
int
smtp_sasl_start(struct smtp_sess *sess, struct strbuf *why)
{
	struct smtp_sasl *s;
	sasl_security_properties_t props;
	sasl_interact_t *interact = NULL;
	sasl_ssf_t ext_ssf;
	const char *value;
	const char *colon;
	const char *out = NULL;
	const char *mech = NULL;
	struct strbuf *cmd;
	unsigned outlen = 0;
	unsigned flags;
	int     ret;

	if (!smtp_var.sasl_enable || smtp_sasl_map == NULL
	    || !(sess->feat & SMTP_FEAT_AUTH) || sess->auth_mechs == NULL)
		return (0);
	if ((ret = smtp_sasl_lookup(sess, &value, why)) <= 0)
		return (ret);
	smtp_sasl_free(sess);
	s = sess->sasl = xcalloc(1, sizeof(*s));
	colon = strchr(value, ':');
	s->user = colon ? xstrndup(value, (size_t) (colon - value)) :
		xstrdup(value);
	s->pass = xstrdup(colon ? colon + 1 : "");
	(void) smtp_sasl_opts(sess->tls_on ? smtp_var.sasl_tls_sec_opts :
			      smtp_var.sasl_sec_opts, &flags);

	/* A bearer token from a file: XOAUTH2, a plaintext mechanism. */
	if (strncmp(s->pass, "@/", 2) == 0) {
		if (!smtp_sasl_offers(sess->auth_mechs, "XOAUTH2")
		    || (flags & SASL_SEC_NOPLAINTEXT)) {
			strbuf_setf(why, "SASL authentication failed; cannot "
				    "authenticate to server %s: no mechanism "
				    "available", sess->peer);
			return (-1);
		}
		s->mech = xstrdup("XOAUTH2");
		if (smtp_sasl_xoauth2(sess, why) < 0)
			return (-1);
		sess->state = SMTP_ST_AUTH;
		return (1);
	}

	s->cb[0].id = SASL_CB_USER;
	s->cb[0].proc = (SMTP_SASL_CB) (SMTP_SASL_ANYFN) smtp_sasl_get_simple;
	s->cb[0].context = s;
	s->cb[1].id = SASL_CB_AUTHNAME;
	s->cb[1].proc = (SMTP_SASL_CB) (SMTP_SASL_ANYFN) smtp_sasl_get_simple;
	s->cb[1].context = s;
	s->cb[2].id = SASL_CB_PASS;
	s->cb[2].proc = (SMTP_SASL_CB) (SMTP_SASL_ANYFN) smtp_sasl_get_secret;
	s->cb[2].context = s;
	s->cb[3].id = SASL_CB_LIST_END;
	ret = sasl_client_new("smtp", sess->host, NULL, NULL, s->cb, 0,
			      &s->conn);
	if (ret != SASL_OK) {
		strbuf_setf(why, "SASL authentication failed: cannot start "
			    "a SASL client: %s", sasl_errstring(ret, NULL, NULL));
		return (-1);
	}
	memset(&props, 0, sizeof(props));
	props.min_ssf = 0;
	props.max_ssf = 0;			/* no SASL security layer */
	props.maxbufsize = 0;
	props.security_flags = flags;
	(void) sasl_setprop(s->conn, SASL_SEC_PROPS, &props);
	ext_ssf = sess->tls_on ? 1 : 0;
	(void) sasl_setprop(s->conn, SASL_SSF_EXTERNAL, &ext_ssf);
	ret = sasl_client_start(s->conn, sess->auth_mechs, &interact, &out,
				&outlen, &mech);
	if (ret != SASL_OK && ret != SASL_CONTINUE) {
		if (ret == SASL_NOMECH)
			strbuf_setf(why, "SASL authentication failed; cannot "
				    "authenticate to server %s: no mechanism "
				    "available", sess->peer);
		else
			strbuf_setf(why, "SASL authentication failed; cannot "
				    "authenticate to server %s: %s", sess->peer,
				    sasl_errdetail(s->conn));
		return (-1);
	}
	s->mech = xstrdup(mech);
	cmd = strbuf_new(64, 0);
	strbuf_printf(cmd, "AUTH %s", mech);
	ret = smtp_sasl_send(sess, cmd->data, out, outlen, 1);
	strbuf_free(cmd);
	if (ret < 0) {
		strbuf_sets(why, "SASL authentication failed: cannot encode "
			    "the response");
		return (-1);
	}
	sess->state = SMTP_ST_AUTH;
	return (1);
}

/* smtp_sasl_failed - "SASL authentication failed; server X said: ..." */
static int
smtp_sasl_failed(struct smtp_sess *sess, struct strbuf *why)
{
	strbuf_setf(why, "SASL authentication failed; server %s said: ",
		    sess->peer);
	smtp_reply_flat(&sess->reply, why);
	log_warn("%s: SASL %s authentication failed: %s", sess->relay,
		 sess->sasl && sess->sasl->mech ? sess->sasl->mech : "",
		 why->data);
	return (-1);
}

/* smtp_sasl_reply - one reply to AUTH or to a response */
int
smtp_sasl_reply(struct smtp_sess *sess, struct strbuf *why)
{
	struct smtp_sasl *s = sess->sasl;
	const struct smtp_reply *r = &sess->reply;
	sasl_interact_t *interact = NULL;
	const char *line;
	const char *out = NULL;
	unsigned outlen = 0;
	unsigned inlen = 0;
	char   *in;
	size_t  len;
	int     ret;

	if (s == NULL)
		return (smtp_sasl_failed(sess, why));
	if (r->code == 235) {
		if (smtp_var.tls_loglevel >= 1)
			log_info("%s: authenticated with SASL %s as %s",
				 sess->relay, s->mech, s->user);
		smtp_sasl_free(sess);
		sess->auth_done = 1;
		return (0);
	}
	if (r->code != 334)
		return (smtp_sasl_failed(sess, why));
	if (s->conn == NULL) {
		/* XOAUTH2: the error challenge; an empty line ends it. */
		s->xoauth2_error = 1;
		stream_write(sess->stream, "\r\n", 2);
		return (1);
	}
	line = smtp_reply_line(r, 0, &len);
	if (line == NULL || len < 4) {
		line = "";
		len = 0;
	} else {
		line += 4;
		len -= 4;
	}
	in = xmalloc(len + 1);
	if (len > 0 && sasl_decode64(line, (unsigned) len, in,
				     (unsigned) len + 1, &inlen) != SASL_OK) {
		xfree(in);
		strbuf_setf(why, "SASL authentication failed; server %s sent "
			    "a malformed challenge", sess->peer);
		return (-1);
	}
	ret = sasl_client_step(s->conn, in, inlen, &interact, &out, &outlen);
	xfree(in);
	if (ret != SASL_OK && ret != SASL_CONTINUE) {
		strbuf_setf(why, "SASL authentication failed; cannot "
			    "authenticate to server %s: %s", sess->peer,
			    sasl_errdetail(s->conn));
		return (-1);
	}
	if (smtp_sasl_send(sess, "", out ? out : "", outlen, 0) < 0) {
		strbuf_sets(why, "SASL authentication failed: cannot encode "
			    "the response");
		return (-1);
	}
	return (1);
}
