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
 *	void	smtpd_tls_policy(const struct smtpd_session *s,
 *			struct strbuf *out)
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
 *	Client certificates: with smtpd_tls_ask_ccert smtpd asks for one
 *	and a client may decline; smtpd_tls_req_ccert (which implies it)
 *	also refuses a session whose client has no certificate that
 *	verifies against smtpd_tls_CAfile/smtpd_tls_CApath, but only where
 *	TLS is required (level encrypt or wrappermode), as in Postfix; at
 *	level may it is ignored with a warning. Fingerprints are made with
 *	smtpd_tls_fingerprint_digest; an unknown digest is fatal.
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
 *	header, the queue file and the logs, and the client certificate;
 *	logs "Anonymous TLS connection established from name[addr]:
 *	TLSv1.3 with cipher ..." ("Trusted" with a verified client
 *	certificate, "Untrusted" with another one; at smtpd_tls_loglevel
 *	1 and up also its subject, issuer and fingerprints), restores
 *	smtpd_timeout and, in wrappermode, queues the 220 greeting; it
 *	returns 0 and the caller reads commands again. It returns 1, with
 *	no greeting, when the session must end after a 421: a wrappermode
 *	session that tls_refuse marks (the caller says why), or one
 *	without the verified client certificate that smtpd_tls_req_ccert
 *	demands ("421 4.7.1 host Error: No verified client certificate",
 *	queued here). On a
 *	failed handshake (garbage instead of a ClientHello, a protocol or
 *	cipher the server refuses, a timeout, the client gone) it logs
 *	"SSL_accept error from name[addr]: reason" and returns -1: the
 *	caller ends that session only.
 *
 *	smtpd_tls_policy() appends the TLS attributes of the policy
 *	delegation protocol to "out": ccert_subject and ccert_issuer (of a
 *	verified certificate only, as in Postfix), ccert_fingerprint and
 *	ccert_pubkey_fingerprint (of any certificate), encryption_protocol,
 *	encryption_cipher and encryption_keysize.
 *
 * SEE ALSO
 *	smtpd(8), tls_server(3), tls_stream(3), RFC 3207, RFC 8314
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
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
	const char *digest;
	int     mandatory;

	if ((smtpd_var.tls_level = tls_server_level(level)) < 0)
		log_fatal("bad smtpd_tls_security_level \"%s\" (use none, "
			  "may or encrypt)", level);
	smtpd_var.tls_wrapper = conf_get_bool("smtpd_tls_wrappermode");
	smtpd_var.tls_received_header =
		conf_get_bool("smtpd_tls_received_header");
	smtpd_var.starttls_timeout = conf_get_time("smtpd_starttls_timeout");
	smtpd_var.tls_loglevel = conf_get_int("smtpd_tls_loglevel");
	if (smtpd_var.tls_level == TLS_SERVER_LEVEL_NONE
	    && !smtpd_var.tls_wrapper)
		return;

	mandatory = smtpd_var.tls_wrapper
		|| smtpd_var.tls_level == TLS_SERVER_LEVEL_ENCRYPT;
	smtpd_var.tls_ask_ccert = conf_get_bool("smtpd_tls_ask_ccert");
	if (conf_get_bool("smtpd_tls_req_ccert")) {
		if (mandatory)
			smtpd_var.tls_req_ccert = smtpd_var.tls_ask_ccert = 1;
		else
			log_warn("smtpd_tls_req_ccert = yes is ignored where TLS "
				 "is optional (service %s): set "
				 "smtpd_tls_security_level = encrypt",
				 server_service_name());
	}
	digest = conf_get("smtpd_tls_fingerprint_digest");
	tls_init();
	if ((smtpd_var.tls_md = EVP_get_digestbyname(digest)) == NULL)
		log_fatal("bad smtpd_tls_fingerprint_digest \"%s\" (use sha256, "
			  "sha1, ...)", digest);
	memset(&conf, 0, sizeof(conf));
	conf.cert_file = conf_get("smtpd_tls_cert_file");
	conf.key_file = conf_get("smtpd_tls_key_file");
	conf.eccert_file = conf_get("smtpd_tls_eccert_file");
	conf.eckey_file = conf_get("smtpd_tls_eckey_file");
	conf.CAfile = conf_get("smtpd_tls_CAfile");
	conf.CApath = conf_get("smtpd_tls_CApath");
	conf.ask_ccert = smtpd_var.tls_ask_ccert;
	conf.ccert_depth = (int) conf_get_int("smtpd_tls_ccert_verifydepth");
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

/* smtpd_tls_log_ccert - the client certificate, smtpd_tls_loglevel 1 */
static void
smtpd_tls_log_ccert(const struct smtpd_session *s)
{
	const struct tls_peer_info *p = s->ccert;

	log_info("%s[%s]: %s: subject_CN=%s, issuer_CN=%s, fingerprint=%s, "
		 "pkey_fingerprint=%s", s->name, s->addr, p->trusted ?
		 "Trusted" : "Untrusted", p->subject, p->issuer, p->cert_fp,
		 p->pkey_fp);
}

/* smtpd_tls_event - the handshake is over: 0 go on, 1 421, -1 end now */
int
smtpd_tls_event(struct smtpd_session *s, int what, int err)
{
	char    desc[TLS_DESCRIBE_LEN];
	const char *why;
	SSL    *ssl;

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
	ssl = tls_stream_ssl(s->stream);
	tls_describe(ssl, desc, sizeof(desc));
	xfree(s->tls_info);
	s->tls_info = xstrdup(desc);
	tls_server_peer_free(s->ccert);
	s->ccert = smtpd_var.tls_ask_ccert ?
		tls_server_peer(ssl, smtpd_var.tls_md) : NULL;
	log_info("%s TLS connection established from %s[%s]: %s",
		 s->ccert == NULL ? "Anonymous" : s->ccert->trusted ?
		 "Trusted" : "Untrusted", s->name, s->addr, desc);
	if (s->ccert && smtpd_var.tls_loglevel >= 1)
		smtpd_tls_log_ccert(s);
	stream_timeouts(s->stream, smtpd_var.timeout, smtpd_var.timeout);
	s->state = SMTPD_ST_CMD;
	if (s->tls_refuse != SMTPD_REFUSE_NONE) {
		s->tls_greet = 0;
		return (1);
	}
	if (smtpd_var.tls_req_ccert && (s->ccert == NULL
					|| !s->ccert->trusted)) {
		/* Postfix's words; the 421 goes out under TLS. */
		log_info("NOQUEUE: abort: TLS from %s[%s]: No verified client "
			 "certificate", s->name, s->addr);
		smtpd_reply(s, "421 4.7.1 %s Error: No verified client "
			    "certificate", smtpd_var.myhostname);
		s->tls_greet = 0;
		return (1);
	}
	if (s->tls_greet) {
		s->tls_greet = 0;
		smtpd_reply(s, "220 %s", smtpd_var.banner);
		s->errors = 0;
	}
	return (0);
}

/* smtpd_tls_policy - the TLS attributes of a policy request */
void
smtpd_tls_policy(const struct smtpd_session *s, struct strbuf *out)
{
	const struct tls_peer_info *p = s->ccert;
	SSL    *ssl = s->tls_info ? tls_stream_ssl(s->stream) : NULL;
	int     trusted = p != NULL && p->trusted;

	strbuf_printf(out, "ccert_subject=%s\nccert_issuer=%s\n"
		      "ccert_fingerprint=%s\nccert_pubkey_fingerprint=%s\n",
		      trusted ? p->subject : "", trusted ? p->issuer : "",
		      p ? p->cert_fp : "", p ? p->pkey_fp : "");
	if (ssl == NULL) {
		strbuf_appends(out, "encryption_protocol=\n"
			       "encryption_cipher=\nencryption_keysize=0\n");
		return;
	}
	strbuf_printf(out, "encryption_protocol=%s\nencryption_cipher=%s\n"
		      "encryption_keysize=%d\n", SSL_get_version(ssl),
		      SSL_get_cipher_name(ssl), SSL_get_cipher_bits(ssl, NULL));
}
