/*
 * smtp-out - Sendarix SMTP delivery agent
 *
 * SYNOPSIS
 *	smtp-out -n service -t unix [-c config_dir] [-v] [-o name=value ...]
 *	(started by master(8), never by hand)
 *
 * DESCRIPTION
 *	smtp-out takes delivery requests from qmgr(8) on private/smtp (one
 *	request per connection, many at once on one event loop), delivers
 *	the message to the request's next hop over SMTP (RFC 5321) and
 *	answers with one result per recipient: sent, deferred or bounced,
 *	with an enhanced status code, the relay and the reply (docs/ipc.md
 *	"smtp-out"). It reads the queue file and never writes it.
 *
 *	Next hop: "domain" or "domain:port" is looked up as MX (RFC 5321
 *	order, implicit MX, RFC 7505 null MX); "[host]" or "[host]:port"
 *	is a host (or IP address) without MX lookup; a list separated by
 *	commas or blanks is tried in order (relayhost failover). The port
 *	is smtp_default_port unless given.
 *
 *	The next endpoint (next address, next MX host, next list element)
 *	is tried after a failed connect, a connect timeout, a greeting
 *	other than 220, a failed EHLO/HELO, a 421 reply at any point, or a
 *	lost connection, timeout or malformed reply before the content is
 *	sent. Once content has been sent, such a failure defers the
 *	recipients without a result (4.4.2).
 *
 *	ESMTP: EHLO (HELO when EHLO gets 5xx), PIPELINING (MAIL, every RCPT
 *	and DATA in one write, RFC 2920), SIZE (SIZE= sent; a message over
 *	the peer's limit bounces with 5.3.4), 8BITMIME (BODY=8BITMIME when
 *	the message was received so), SMTPUTF8 (a message that needs it
 *	bounces with 5.6.7 when the peer does not offer it), DSN (NOTIFY,
 *	ORCPT, RET and ENVID are passed on when the peer offers DSN).
 *	The content is sent dot-stuffed, ending with CRLF.CRLF.
 *
 *	TLS (smtp_tls.c): after EHLO, STARTTLS at the destination's level
 *	(smtp_tls_security_level, default may, or its smtp_tls_policy_maps
 *	entry): none, may, encrypt, fingerprint, verify, secure, and dane
 *	and dane-only (RFC 7672, smtp_dane.c: TLSA records per MX host,
 *	with DNSSEC from dns_trust_anchor_file). Above may a policy that is
 *	not met defers, never falls back to clear text; may retries once in
 *	clear after a failed handshake. EHLO again under TLS.
 *
 *	MTA-STS (smtp_sts.c, smtp_mta_sts_enable): the policy of an MX
 *	destination from _mta-sts.DOMAIN and https://mta-sts.DOMAIN/
 *	(lib/http, on the loop), cached in memory and in data/mta-sts/;
 *	"enforce" drops MX hosts outside it and requires verified TLS with
 *	the MX name, "testing" logs. TLS-RPT (smtp_tls_rpt_enable): every
 *	outcome under an MTA-STS or DANE policy goes to data/tlsrpt/ for
 *	"sendarix tlsrpt".
 *
 *	AUTH (smtp_sasl.c): with smtp_sasl_auth_enable, credentials from
 *	smtp_sasl_password_maps through the Cyrus SASL client, plaintext
 *	mechanisms only under TLS by default; XOAUTH2 from a token file.
 *
 *	Connection reuse: after a transaction the connection waits in a
 *	cache, keyed by the next hop and its TLS policy, for
 *	smtp_connection_cache_time_limit
 *	and serves the next request for that next hop, up to
 *	smtp_connection_reuse_count_limit transactions. After a transaction
 *	that ended early the connection is RSET first; idle connections are
 *	closed with QUIT.
 *
 *	TLS session resumption: the TLS session of each handshake (a TLS
 *	1.3 ticket included) is kept in memory for
 *	smtp_tls_session_cache_timeout, under the connection cache key
 *	plus the server's name, address and port, and offered on the next
 *	connection with that key; a resumed handshake is logged with
 *	"(resumed)". Not under DANE. At most 2000 sessions are kept.
 *
 * CONFIGURATION PARAMETERS
 *	smtp_helo_name, smtp_default_port, smtp_connect_timeout,
 *	smtp_helo_timeout, smtp_mail_timeout, smtp_rcpt_timeout,
 *	smtp_data_init_timeout, smtp_data_xfer_timeout,
 *	smtp_data_done_timeout, smtp_rset_timeout, smtp_quit_timeout,
 *	smtp_connection_cache_time_limit, smtp_connection_reuse_count_limit,
 *	smtp_request_timeout, dns_resolver, dns_timeout,
 *	smtp_address_preference, inet_protocols, smtp_tls_security_level,
 *	smtp_tls_policy_maps, smtp_tls_CAfile, smtp_tls_CApath,
 *	smtp_tls_protocols, smtp_tls_mandatory_protocols, smtp_tls_ciphers,
 *	smtp_tls_mandatory_ciphers, smtp_tls_verify_cert_match,
 *	smtp_tls_secure_cert_match, smtp_tls_fingerprint_cert_match,
 *	smtp_tls_fingerprint_digest, smtp_tls_servername, smtp_tls_loglevel,
 *	smtp_starttls_timeout, smtp_tls_session_cache_timeout,
 *	smtp_sasl_auth_enable,
 *	smtp_sasl_password_maps, smtp_sasl_security_options,
 *	smtp_sasl_tls_security_options, smtp_sasl_auth_soft_bounce,
 *	smtp_mta_sts_enable, smtp_mta_sts_port, smtp_mta_sts_timeout,
 *	smtp_mta_sts_CAfile, smtp_tls_rpt_enable, dns_trust_anchor_file.
 *	See sendarix-params(5).
 *
 * DIAGNOSTICS
 *	One Postfix-shaped line per recipient: "QUEUEID: to=<rcpt>,
 *	relay=host[addr]:port, delay=T, delays=a/b/c/d, dsn=X.Y.Z,
 *	status=sent (250 2.0.0 Ok), tls=TLSv1.3:CIPHER:Verified" (tls=none
 *	in clear text), where a is the time before qmgr took the message,
 *	b before smtp-out had the request, c the connection set-up (DNS,
 *	connect, greeting, EHLO, TLS) and d the transmission. One line per
 *	TLS connection: "Verified TLS connection established to
 *	host[addr]:port: TLSv1.3 with cipher ...".
 *	A bad request from qmgr is logged and its connection closed. A bad
 *	dns_resolver value is fatal at start-up. Nothing a remote server
 *	says ends the process.
 *
 * SECURITY
 *	smtp-out runs as mail_owner (the skeleton drops root before any
 *	request is served); trust anchors and the policy and password
 *	tables are opened before that. It reads queue files and untrusted network
 *	replies: every reply is bounded (SMTP_REPLY_LIMIT bytes), checked
 *	before use, and stripped of control characters before it is logged
 *	or passed to qmgr; every stage has a timeout.
 *
 * SEE ALSO
 *	qmgr(8), master(8), docs/ipc.md, RFC 5321, RFC 2920, RFC 7505
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "http.h"
#include "log.h"
#include "server.h"
#include "server_params.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtp-out.h"

struct smtp_params smtp_var;

/*
 * The parameters smtp-out reads (server_params(3)): defaults and ranges
 * in lib/global/conf_params.c, the ones "sendarix check" enforces.
 */
static const struct server_param smtp_params[] = {
	SERVER_PARAM_LONG("smtp_default_port", &smtp_var.default_port),
	SERVER_PARAM_LONG("smtp_connect_timeout", &smtp_var.connect_timeout),
	SERVER_PARAM_LONG("smtp_helo_timeout", &smtp_var.helo_timeout),
	SERVER_PARAM_LONG("smtp_mail_timeout", &smtp_var.mail_timeout),
	SERVER_PARAM_LONG("smtp_rcpt_timeout", &smtp_var.rcpt_timeout),
	SERVER_PARAM_LONG("smtp_data_init_timeout",
			  &smtp_var.data_init_timeout),
	SERVER_PARAM_LONG("smtp_data_xfer_timeout",
			  &smtp_var.data_xfer_timeout),
	SERVER_PARAM_LONG("smtp_data_done_timeout",
			  &smtp_var.data_done_timeout),
	SERVER_PARAM_LONG("smtp_rset_timeout", &smtp_var.rset_timeout),
	SERVER_PARAM_LONG("smtp_quit_timeout", &smtp_var.quit_timeout),
	SERVER_PARAM_LONG("smtp_connection_cache_time_limit",
			  &smtp_var.cache_time),
	SERVER_PARAM_LONG("smtp_connection_reuse_count_limit",
			  &smtp_var.reuse_limit),
	SERVER_PARAM_LONG("smtp_request_timeout", &smtp_var.request_timeout),
	SERVER_PARAM_BOOL("smtp_mta_sts_enable", &smtp_var.sts_enable),
	SERVER_PARAM_LONG("smtp_mta_sts_port", &smtp_var.sts_port),
	SERVER_PARAM_LONG("smtp_mta_sts_timeout", &smtp_var.sts_timeout),
	SERVER_PARAM_STR("smtp_mta_sts_CAfile", &smtp_var.sts_cafile),
	SERVER_PARAM_BOOL("smtp_tls_rpt_enable", &smtp_var.tlsrpt_enable),
	SERVER_PARAM_STR("smtp_tls_security_level", &smtp_var.tls_level),
	SERVER_PARAM_STR("smtp_tls_policy_maps", &smtp_var.tls_policy_maps),
	SERVER_PARAM_STR("smtp_tls_CAfile", &smtp_var.tls_CAfile),
	SERVER_PARAM_STR("smtp_tls_CApath", &smtp_var.tls_CApath),
	SERVER_PARAM_STR("smtp_tls_protocols", &smtp_var.tls_protocols),
	SERVER_PARAM_STR("smtp_tls_mandatory_protocols",
			 &smtp_var.tls_mand_protocols),
	SERVER_PARAM_STR("smtp_tls_ciphers", &smtp_var.tls_ciphers),
	SERVER_PARAM_STR("smtp_tls_mandatory_ciphers",
			 &smtp_var.tls_mand_ciphers),
	SERVER_PARAM_STR("smtp_tls_verify_cert_match",
			 &smtp_var.tls_verify_match),
	SERVER_PARAM_STR("smtp_tls_secure_cert_match",
			 &smtp_var.tls_secure_match),
	SERVER_PARAM_STR("smtp_tls_fingerprint_cert_match",
			 &smtp_var.tls_fpt_match),
	SERVER_PARAM_STR("smtp_tls_fingerprint_digest",
			 &smtp_var.tls_fpt_digest),
	SERVER_PARAM_STR("smtp_tls_servername", &smtp_var.tls_servername),
	SERVER_PARAM_LONG("smtp_tls_loglevel", &smtp_var.tls_loglevel),
	SERVER_PARAM_LONG("smtp_starttls_timeout", &smtp_var.starttls_timeout),
	SERVER_PARAM_LONG("smtp_tls_session_cache_timeout",
			  &smtp_var.tls_sess_timeout),
	SERVER_PARAM_BOOL("smtp_sasl_auth_enable", &smtp_var.sasl_enable),
	SERVER_PARAM_STR("smtp_sasl_password_maps",
			 &smtp_var.sasl_passwd_maps),
	SERVER_PARAM_STR("smtp_sasl_security_options",
			 &smtp_var.sasl_sec_opts),
	SERVER_PARAM_STR("smtp_sasl_tls_security_options",
			 &smtp_var.sasl_tls_sec_opts),
	SERVER_PARAM_BOOL("smtp_sasl_auth_soft_bounce",
			  &smtp_var.sasl_soft_bounce),
};

/* smtp_pre_init - read the parameters */
static void
smtp_pre_init(void)
{
	char    host[256];
	const char *v;

	v = conf_get("smtp_helo_name");
	if (v == NULL || *v == 0)
		v = conf_get("myhostname");
	if (v == NULL || *v == 0) {
		if (gethostname(host, sizeof(host)) < 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = 0;
		v = host;
	}
	smtp_var.helo_name = xstrdup(v);

	server_params_read(smtp_params, SERVER_PARAMS_COUNT(smtp_params));
	/* Read while privileged: the CA file may be readable by root only. */
	if (smtp_var.sts_enable && http_set_ca(smtp_var.sts_cafile, NULL) < 0)
		log_fatal("cannot read smtp_mta_sts_CAfile %s: %s",
			  smtp_var.sts_cafile, strerror(errno));

	/* Trust anchors and tables, while still privileged. */
	smtp_tls_pre_init();
	smtp_sasl_pre_init();
}

/* smtp_post_init - start the resolver on the loop */
static void
smtp_post_init(struct event_base *base)
{
	struct strbuf *err = strbuf_new(128, 0);
	enum dns_prefer prefer;
	const char *v;
	int     families;

	dns_set_trust_anchor(conf_get("dns_trust_anchor_file"));
	if (dns_init(base, conf_get("dns_resolver"), err) < 0)
		log_fatal("cannot start the resolver: %s", err->data);
	strbuf_free(err);
	dns_set_timeout(conf_get_time("dns_timeout"));
	v = conf_get("smtp_address_preference");
	if (dns_prefer_parse(v ? v : "any", &prefer) < 0)
		log_fatal("bad smtp_address_preference value \"%s\"", v);
	dns_set_prefer(prefer);
	v = conf_get("inet_protocols");
	if (dns_families_parse(v ? v : "all", &families) < 0)
		log_fatal("bad inet_protocols value \"%s\"", v);
	dns_set_families(families);
	if (smtp_var.sts_enable && http_init(base) < 0)
		log_fatal("cannot start libcurl for MTA-STS");
	if (smtp_var.sts_enable)
		smtp_sts_init(base);
}

/* smtp_accept - a new request from qmgr */
static void
smtp_accept(int fd, const struct sockaddr *unused_sa, socklen_t unused_len,
	    const struct server_listener *unused_listener)
{
	(void) unused_sa;
	(void) unused_len;
	(void) unused_listener;
	smtp_request_accept(fd);
}

/* smtp_sessions - requests in progress, for a graceful stop */
static size_t
smtp_sessions(void)
{
	return (smtp_request_count());
}

/* smtp_shutdown - SIGTERM: drop everything */
static void
smtp_shutdown(void)
{
	smtp_request_shutdown();
	smtp_conn_shutdown();
	smtp_sts_shutdown();
	smtp_tls_shutdown();
}

/* main - hand over to the event skeleton */
int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		smtp_pre_init,
		smtp_post_init,
		smtp_accept,
		smtp_sessions,
		smtp_shutdown,
	};

	return (server_event_main(argc, argv, "smtp-out", &ops));
}
