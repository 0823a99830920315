/*
 * smtpd - Sendarix SMTP server
 *
 * SYNOPSIS
 *	smtpd -n service -t inet|unix [-c config_dir] [-v] [-o name=value ...]
 *	(started by master(8), never by hand)
 *
 * DESCRIPTION
 *	smtpd speaks ESMTP (RFC 5321) to mail clients, many sessions in one
 *	process on one event loop, and hands each message to cleanup(8)
 *	over private/$cleanup_service_name. It says 250 only after cleanup
 *	reports that the queue file is safe on disk.
 *
 *	Supported: EHLO/HELO, MAIL, RCPT, DATA, BDAT (CHUNKING, RFC 3030),
 *	RSET, NOOP, QUIT, VRFY (252, no address is revealed), HELP; EXPN
 *	is refused. EHLO announces PIPELINING (RFC 2920), SIZE, 8BITMIME,
 *	ENHANCEDSTATUSCODES (every reply but the greeting and the EHLO
 *	lines carries an RFC 3463 code), DSN (RFC 3461: RET, ENVID,
 *	NOTIFY, ORCPT; lib/global/dsn.c checks them, cleanup stores them),
 *	CHUNKING and SMTPUTF8 (RFC 6531).
 *	STARTTLS (RFC 3207) with smtpd_tls_security_level = may or encrypt,
 *	and implicit TLS with smtpd_tls_wrappermode = yes (smtpd_tls.c).
 *	AUTH (RFC 4954; smtpd_sasl.c) with Cyrus SASL's mechanisms and
 *	XOAUTH2, with smtpd_sasl_auth_enable = yes; by default only under
 *	TLS.
 *
 *	Access restrictions (smtpd_check.c): Postfix's restriction lists per
 *	stage (client, helo, sender, relay, recipient: all at RCPT TO; data;
 *	end of data), with access tables, DNS block lists and policy
 *	servers; a check that waits suspends only its own session.
 *
 *	Relay control (smtpd_relay_restrictions, by default
 *	permit_mynetworks, permit_sasl_authenticated,
 *	reject_unauth_destination): a client in mynetworks, or one that
 *	has authenticated, may send to any recipient;
 *	any other client only to domains in relay_domains, and never with
 *	an address trick (source route, "%", "!" or quoted "@" in the local
 *	part): 554 5.7.1 Relay access denied. A client on a unix socket
 *	(a master.cf "unix" smtpd) has no IP address: it is shown as
 *	localhost[unix] and may relay, like a sendmail(1) user.
 *
 *	SMTP smuggling: the end of DATA is CRLF.CRLF only. A bare LF or
 *	bare CR in the content gets 550 5.5.2 with
 *	smtpd_forbid_bare_newline = yes (the default), or is turned into
 *	CRLF with "no".
 *
 *	smtpd puts a Received: header first in the content.
 *
 *	Client names: with smtpd_peername_lookup = yes (the default), the
 *	greeting waits for the client's name: the PTR name of its address
 *	if that name's A/AAAA records contain the address (forward
 *	confirmation, as Postfix), else "unknown"; at most
 *	smtpd_peername_lookup_timeout, while other sessions go on. The name
 *	is in the logs ("connect from name[addr]"), the Received header and
 *	the client_name sent to cleanup.
 *
 *	Queue space: MAIL FROM gets 452 4.3.1 when the queue file system
 *	has too little room (queue_minfree, as in Postfix), and so does a
 *	message that cleanup could not write because it filled up.
 *
 * CONFIGURATION PARAMETERS
 *	myhostname, mail_name, smtpd_banner, mynetworks, relay_domains,
 *	cleanup_service_name, message_size_limit, smtpd_recipient_limit,
 *	smtpd_line_length_limit (command lines), smtpd_soft_error_limit,
 *	smtpd_hard_error_limit, smtpd_timeout, smtpd_cleanup_timeout,
 *	smtpd_client_connection_count_limit,
 *	smtpd_client_connection_exceptions, smtpd_max_sessions,
 *	smtpd_forbid_bare_newline, queue_minfree, smtpd_peername_lookup,
 *	smtpd_peername_lookup_timeout, dns_resolver,
 *	smtpd_{client,helo,sender,relay,recipient,data,end_of_data}_restrictions,
 *	smtpd_policy_service_{timeout,max_idle,default_action},
 *	smtpd_tls_{security_level,wrappermode,cert_file,key_file,
 *	eccert_file,eckey_file,CAfile,protocols,mandatory_protocols,
 *	ciphers,mandatory_ciphers,exclude_ciphers,session_cache_timeout,
 *	received_header}, smtpd_starttls_timeout,
 *	smtpd_sasl_auth_enable, smtpd_sasl_path, cyrus_sasl_config_path,
 *	smtpd_sasl_service, smtpd_sasl_local_domain,
 *	smtpd_sasl_security_options, smtpd_sasl_tls_security_options,
 *	smtpd_tls_auth_only, smtpd_sasl_authenticated_header,
 *	smtpd_sender_login_maps, smtpd_auth_failure_{limit,window,lockout},
 *	smtpd_sasl_xoauth2_{token_maps,introspection_url,client_id,
 *	client_secret,scope,timeout}. See sendarix-params(5).
 *
 * DIAGNOSTICS
 *	Postfix-shaped log lines: "connect from name[addr]",
 *	"QUEUEID: client=name[addr]", "NOQUEUE: reject: RCPT from
 *	name[addr]: 554 5.7.1 ...; from=<> to=<> proto=ESMTP helo=<>",
 *	"disconnect from name[addr] ehlo=1 mail=1 ... commands=N".
 *	Bad client input never ends the process. A bad mynetworks,
 *	relay_domains or exceptions list is fatal at start-up.
 *
 * SECURITY
 *	smtpd runs as mail_owner (the skeleton drops root before any
 *	client is served; the TLS keys are read before that, in pre_init,
 *	so they may be root-only) and reads untrusted network input: every line
 *	and every byte count from a client is bounded, and input errors
 *	get an SMTP reply, never a crash. Client names come from DNS, which
 *	the client may control: a PTR name counts only once its A/AAAA
 *	records lead back to the client's address, and it is used only as
 *	a checked host name (letters, digits, "-", "_" and dots).
 *
 * SEE ALSO
 *	smtpd(8), cleanup(8), master(8), docs/ipc.md
 */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "server.h"
#include "server_params.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "smtpd.h"

struct smtpd_params smtpd_var;

/* smtpd_open_list - a match list from a parameter; fatal if bad */
static struct matchlist *
smtpd_open_list(const char *name, int domains)
{
	const char *value = conf_get(name);
	struct strbuf *err;
	struct matchlist *list;

	if (value == NULL || value[strspn(value, " \t,")] == 0)
		return (NULL);
	err = strbuf_new(128, 0);
	list = domains ? matchlist_domain(value, err) :
		matchlist_addr(value, err);
	if (list == NULL)
		log_fatal("bad %s value \"%s\": %s", name, value,
			  err->len ? err->data : "syntax error");
	if (err->len)
		log_warn("%s: %s", name, err->data);
	strbuf_free(err);
	return (list);
}

/*
 * The parameters smtpd reads with the one rule of all daemons
 * (server_params(3)): defaults in lib/global/conf_params.c, ranges in
 * its conf_bounds[], the same "sendarix check" enforces.
 */
static const struct server_param smtpd_params[] = {
	SERVER_PARAM_STR("mail_name", &smtpd_var.mail_name),
	SERVER_PARAM_LLONG("message_size_limit", &smtpd_var.size_limit),
	SERVER_PARAM_BOOL("smtpd_forbid_bare_newline",
			  &smtpd_var.forbid_bare_newline),
	SERVER_PARAM_BOOL("smtpd_peername_lookup", &smtpd_var.peername_lookup),
	SERVER_PARAM_LLONG("queue_minfree", &smtpd_var.queue_minfree),
	SERVER_PARAM_LONG("smtpd_recipient_limit", &smtpd_var.rcpt_limit),
	SERVER_PARAM_LONG("smtpd_line_length_limit", &smtpd_var.line_limit),
	SERVER_PARAM_LONG("smtpd_soft_error_limit",
			  &smtpd_var.soft_error_limit),
	SERVER_PARAM_LONG("smtpd_hard_error_limit",
			  &smtpd_var.hard_error_limit),
	SERVER_PARAM_LONG("smtpd_timeout", &smtpd_var.timeout),
	SERVER_PARAM_LONG("smtpd_cleanup_timeout", &smtpd_var.cleanup_timeout),
	SERVER_PARAM_LONG("smtpd_client_connection_count_limit",
			  &smtpd_var.conn_limit),
	SERVER_PARAM_LONG("smtpd_max_sessions", &smtpd_var.max_sessions),
};

/* smtpd_pre_init - read the parameters and open the tables */
static void
smtpd_pre_init(void)
{
	char    host[256];
	const char *v;
	char   *path;
	size_t  len;

	v = conf_get("myhostname");
	if (v == NULL || *v == 0) {
		if (gethostname(host, sizeof(host)) < 0)
			strcpy(host, "localhost");
		host[sizeof(host) - 1] = 0;
		smtpd_var.myhostname = xstrdup(host);
	} else
		smtpd_var.myhostname = xstrdup(v);
	server_params_read(smtpd_params, SERVER_PARAMS_COUNT(smtpd_params));
	v = conf_get("smtpd_banner");
	smtpd_var.banner = xstrdup(v && *v ? v : smtpd_var.myhostname);
	v = conf_get("cleanup_service_name");
	len = strlen(v) + sizeof("private/");
	path = xmalloc(len);
	snprintf(path, len, "private/%s", v);
	smtpd_var.cleanup_path = path;
	if (smtpd_var.queue_minfree > 0 && smtpd_var.size_limit > 0
	    && smtpd_var.queue_minfree / 3 * 2 < smtpd_var.size_limit)
		log_warn("queue_minfree (%lld) should be at least "
			 "1.5*message_size_limit (%lld)",
			 smtpd_var.queue_minfree, smtpd_var.size_limit);

	/* Tables may live where the chroot cannot see them: open now. */
	smtpd_var.mynetworks = smtpd_open_list("mynetworks", 0);
	smtpd_var.relay_domains = smtpd_open_list("relay_domains", 1);
	smtpd_var.conn_exceptions =
		smtpd_open_list("smtpd_client_connection_exceptions", 0);
	/* Errors are logged; the commands they affect get 451 4.3.5. */
	(void) smtpd_check_init();

	/* Keys are read now, as root: they may be root-only files. */
	smtpd_tls_init();
	/* Cyrus loads its plugins and reads smtpd.conf while privileged. */
	smtpd_sasl_pre_init();
}

/* smtpd_post_init - start the resolver for client names and DNS lists */
static void
smtpd_post_init(struct event_base *base)
{
	struct strbuf *err;

	smtpd_sasl_post_init(base);
	if (!smtpd_var.peername_lookup && !smtpd_check_need_dns())
		return;
	err = strbuf_new(128, 0);
	if (dns_init(base, conf_get("dns_resolver"), err) < 0)
		log_fatal("cannot start the resolver: %s", err->data);
	strbuf_free(err);
	if (smtpd_var.peername_lookup)
		dns_set_timeout(conf_get_time("smtpd_peername_lookup_timeout"));
}

/* smtpd_accept - a new client connection */
static void
smtpd_accept(int fd, const struct sockaddr *sa, socklen_t salen,
	     const struct server_listener *unused_listener)
{
	(void) unused_listener;
	smtpd_session_accept(fd, sa, salen);
}

/* smtpd_sessions - open sessions, for a graceful stop */
static size_t
smtpd_sessions(void)
{
	return (smtpd_session_count());
}

/* smtpd_shutdown - SIGTERM: 421 to everyone */
static void
smtpd_shutdown(void)
{
	smtpd_session_shutdown();
}

/* main - hand over to the event skeleton */
int
main(int argc, char **argv)
{
	static const struct server_ops ops = {
		smtpd_pre_init,
		smtpd_post_init,
		smtpd_accept,
		smtpd_sessions,
		smtpd_shutdown,
	};

	return (server_event_main(argc, argv, "smtpd", &ops));
}
