/*
 * smtpd_tls - STARTTLS and implicit TLS (wrappermode) for smtpd
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	void	smtpd_tls_init(void)
 *	int	smtpd_tls_offered(const struct smtpd_session *s)
 *	int	smtpd_tls_required(const struct smtpd_session *s)
 *	int	smtpd_tls_start(struct smtpd_session *s)
 *	int	smtpd_tls_event(struct smtpd_session *s, int what, int err)
 *
 * DESCRIPTION
 *	smtpd_tls_init() runs in pre_init, while smtpd is still root: it
 *	reads smtpd_tls_security_level and smtpd_tls_wrappermode and, when
 *	either asks for TLS, makes the server context (lib/tls/tls_server.c)
 *	from the certificates and keys, so key files may be root-only. The
 *	"mandatory" protocols and ciphers apply where TLS is required
 *	(level encrypt, and wrappermode), the others where it is
 *	opportunistic (may), as in Postfix. A context that cannot be made
 *	is logged ("TLS library problem: ...") and TLS is then not
 *	available: STARTTLS is not offered and gets 454 4.7.0, a
 *	wrappermode connection is closed. A world-readable key file and a
 *	bad smtpd_tls_security_level are fatal. The context lives as long
 *	as the process: "sendarix reload" makes master start new smtpd
 *	processes, which read the certificates again.
 *
 *	smtpd_tls_offered() says whether the EHLO reply lists STARTTLS:
 *	level may or encrypt, a context, TLS not yet active.
 *
 *	smtpd_tls_required() says whether the session must say STARTTLS
 *	before mail commands (level encrypt, TLS not active yet).
 *
 *	smtpd_tls_start() begins the handshake on the client connection,
 *	after the caller has queued its "220 2.0.0 Ready to start TLS"
 *	(or, in wrappermode, right after the connection is accepted).
 *	Everything the client said before is forgotten (RFC 3207 4.2):
 *	the HELO/EHLO name and the mail transaction here, and all buffered
 *	cleartext input, which tls_stream_start() discards; smtpd keeps no
 *	command line of its own across commands (it takes one line at a
 *	time from the stream). The handshake has smtpd_starttls_timeout.
 *	0, or -1 when TLS cannot start (logged).
 *
 *	smtpd_tls_event() takes the stream's event during the handshake:
 *	on success it records the TLS description for the Received
 *	header, the queue file and the logs, logs "Anonymous TLS
 *	connection established from name[addr]: TLSv1.3 with cipher ...",
 *	restores smtpd_timeout and, in wrappermode, queues the 220
 *	greeting; it returns 0 and the caller reads commands again. On a
 *	failed handshake (garbage instead of a ClientHello, a protocol or
 *	cipher the server refuses, a timeout, the client gone) it logs
 *	"SSL_accept error from name[addr]: reason" and returns -1: the
 *	caller ends that session only.
 *
 * SEE ALSO
 *	smtpd(8), tls_server(3), tls_stream(3), RFC 3207, RFC 8314
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "strbuf.h"
#include "stream.h"
#include "tls.h"
#include "tls_server.h"
#include "xmalloc.h"

#include "smtpd.h"

/* smtpd_tls_init - TLS settings and the server context, as root */
void
smtpd_tls_init(void)
{
	struct tls_server_conf conf;
	struct strbuf *err;
	const char *level = conf_get("smtpd_tls_security_level");
	int     mandatory;

	if ((smtpd_var.tls_level = tls_server_level(level)) < 0)
		log_fatal("bad smtpd_tls_security_level \"%s\" (use none, "
			  "may or encrypt)", level);
	smtpd_var.tls_wrapper = conf_get_bool("smtpd_tls_wrappermode");
	smtpd_var.tls_received_header =
		conf_get_bool("smtpd_tls_received_header");
	smtpd_var.starttls_timeout = conf_get_time("smtpd_starttls_timeout");
	if (smtpd_var.tls_level == TLS_SERVER_LEVEL_NONE
	    && !smtpd_var.tls_wrapper)
		return;

	mandatory = smtpd_var.tls_wrapper
		|| smtpd_var.tls_level == TLS_SERVER_LEVEL_ENCRYPT;
	memset(&conf, 0, sizeof(conf));
	conf.cert_file = conf_get("smtpd_tls_cert_file");
	conf.key_file = conf_get("smtpd_tls_key_file");
	conf.eccert_file = conf_get("smtpd_tls_eccert_file");
	conf.eckey_file = conf_get("smtpd_tls_eckey_file");
	conf.CAfile = conf_get("smtpd_tls_CAfile");
	conf.protocols = conf_get(mandatory ? "smtpd_tls_mandatory_protocols"
				  : "smtpd_tls_protocols");
	conf.ciphers = conf_get(mandatory ? "smtpd_tls_mandatory_ciphers"
				: "smtpd_tls_ciphers");
	conf.exclude_ciphers = conf_get("smtpd_tls_exclude_ciphers");
	conf.cache_timeout = conf_get_time("smtpd_tls_session_cache_timeout");
	conf.id_context = server_service_name();
	err = strbuf_new(256, 0);
	smtpd_var.tls_ctx = tls_server_ctx_new(&conf, err);
	if (smtpd_var.tls_ctx == NULL)
		log_warn("TLS library problem: %s; TLS is not available on "
			 "service %s", STRBUF_STR(err), server_service_name());
	strbuf_free(err);
}

/* smtpd_tls_offered - list STARTTLS in the EHLO reply? */
int
smtpd_tls_offered(const struct smtpd_session *s)
{
	return (smtpd_var.tls_level != TLS_SERVER_LEVEL_NONE
		&& smtpd_var.tls_ctx != NULL && s->tls_info == NULL);
}

/* smtpd_tls_required - mail commands need STARTTLS first? */
int
smtpd_tls_required(const struct smtpd_session *s)
{
	return (smtpd_var.tls_level == TLS_SERVER_LEVEL_ENCRYPT
		&& s->tls_info == NULL);
}

/* smtpd_tls_start - forget the cleartext session, start the handshake */
int
smtpd_tls_start(struct smtpd_session *s)
{
	struct strbuf *err;
	SSL    *ssl;

	if (smtpd_var.tls_ctx == NULL) {
		log_warn("TLS is not available for %s[%s]", s->name, s->addr);
		return (-1);
	}
	err = strbuf_new(128, 0);
	ssl = tls_server_ssl_new(smtpd_var.tls_ctx, err);
	if (ssl == NULL) {
		log_warn("%s[%s]: %s", s->name, s->addr, STRBUF_STR(err));
		strbuf_free(err);
		return (-1);
	}
	strbuf_free(err);

	/* RFC 3207 4.2: nothing said in the clear counts any more. */
	smtpd_session_reset(s);
	smtpd_sasl_free(s);			/* an AUTH in the clear, too */
	s->helo = xfree(s->helo);
	s->esmtp = 0;
	s->skip_line = 0;
	s->ill_pipelining = 0;
	s->line = strbuf_free(s->line);

	stream_timeouts(s->stream, smtpd_var.starttls_timeout,
			smtpd_var.starttls_timeout);
	if (tls_stream_start(s->stream, ssl, STREAM_TLS_SERVER) < 0) {
		/* Only then is "ssl" still ours (tls_stream(3)). */
		if (errno == EALREADY)
			SSL_free(ssl);
		log_warn("cannot start TLS for %s[%s]: %s", s->name, s->addr,
			 strerror(errno));
		return (-1);
	}
	s->state = SMTPD_ST_TLS;
	return (0);
}

/* smtpd_tls_event - the handshake is over: 0 go on, -1 end the session */
int
smtpd_tls_event(struct smtpd_session *s, int what, int err)
{
	char    desc[TLS_DESCRIBE_LEN];
	const char *why;

	if (!(what & STREAM_EV_CONNECTED)) {
		why = tls_stream_errors(s->stream);
		if (*why == 0)
			why = (what & STREAM_EV_TIMEOUT) ? "timeout" :
				(what & STREAM_EV_EOF) ? "lost connection" :
				err ? strerror(err) : "handshake failed";
		log_info("SSL_accept error from %s[%s]: %s", s->name, s->addr,
			 why);
		return (-1);
	}
	tls_describe(tls_stream_ssl(s->stream), desc, sizeof(desc));
	xfree(s->tls_info);
	s->tls_info = xstrdup(desc);
	log_info("Anonymous TLS connection established from %s[%s]: %s",
		 s->name, s->addr, desc);
	stream_timeouts(s->stream, smtpd_var.timeout, smtpd_var.timeout);
	s->state = SMTPD_ST_CMD;
	if (s->tls_greet) {
		s->tls_greet = 0;
		smtpd_reply(s, "220 %s", smtpd_var.banner);
		s->errors = 0;
	}
	return (0);
}
