/*
 * conf_params - the one table of main.cf parameters
 *
 * DESCRIPTION
 *	Every parameter that any Sendarix program reads is listed here, once,
 *	with its type, its default (before $name expansion) and one line on
 *	what it means. "sendarix conf -d" prints this table; the
 *	sendarix-params(5) man page is kept in step with it by a test.
 *	A name that is not here is unknown: main.cf gets a warning for it,
 *	and a program that asks for it has a bug (log_panic).
 */

#include <stddef.h>

#include "conf.h"

#ifndef SENDARIX_DAEMON_DIR
#define SENDARIX_DAEMON_DIR	"/usr/libexec/sendarix"
#endif
#ifndef SENDARIX_COMMAND_DIR
#define SENDARIX_COMMAND_DIR	"/usr/sbin"
#endif
#ifndef SENDARIX_QUEUE_DIR
#define SENDARIX_QUEUE_DIR	"/var/spool/sendarix"
#endif

const struct conf_param conf_params[] = {
	/* Identity. */
	{"mail_name", CONF_STR, "Sendarix",
	"the name of the mail system, shown in the banner and in headers"},
	{"myhostname", CONF_STR, "",
	"this host's fully qualified name; empty: taken from the system"},
	{"mydomain", CONF_STR, "",
	"this host's domain; empty: $myhostname less its first label"},
	{"myorigin", CONF_STR, "$myhostname",
	"domain added to bare local sender addresses"},

	/* Files, directories, users. */
	{"config_directory", CONF_STR, SENDARIX_CONFIG_DIR,
	"where main.cf and master.cf live (set by -c, not in main.cf)"},
	{"queue_directory", CONF_STR, SENDARIX_QUEUE_DIR,
	"the root of the mail queue"},
	{"daemon_directory", CONF_STR, SENDARIX_DAEMON_DIR,
	"where master finds the daemon programs named in master.cf"},
	{"command_directory", CONF_STR, SENDARIX_COMMAND_DIR,
	"where the sendarix command is installed"},
	{"mail_owner", CONF_STR, "sendarix",
	"the user that every daemon but master runs as, when started as root"},
	{"import_environment", CONF_STR, "TZ LANG",
	"environment variables that master passes on to its children"},

	/* Logging. */
	{"maillog_file", CONF_STR, "",
	"log to this file instead of syslog (/dev/stderr for standard error)"},
	{"syslog_name", CONF_STR, "sendarix",
	"the name in front of every log line (syslog_name/service[pid])"},
	{"syslog_facility", CONF_STR, "mail",
	"the syslog facility to log with"},

	/* master. */
	{"default_process_limit", CONF_INT, "2",
	"processes per service when master.cf says \"-\" (each serves many sessions)"},
	{"master_restart_min_delay", CONF_TIME, "1s",
	"first wait before a crashed service process is started again"},
	{"master_restart_max_delay", CONF_TIME, "60s",
	"longest wait between restarts of a service that keeps crashing"},
	{"master_stop_timeout", CONF_TIME, "10s",
	"how long stop waits for children before killing them"},
	{"inet_interfaces", CONF_STR, "all",
	"addresses inet services listen on: all, loopback-only, or a list"},
	{"inet_protocols", CONF_STR, "all",
	"ipv4, ipv6 or all"},

	/* smtpd: identity and relay control. */
	{"smtpd_banner", CONF_STR, "$myhostname ESMTP $mail_name",
	"the text after 220 in the greeting"},
	{"mynetworks", CONF_STR, "127.0.0.0/8 [::1]/128",
	"clients trusted to relay anywhere: networks and cidr: tables"},
	{"relay_domains", CONF_STR, "",
	"domains any client may send to: names, .subdomain forms and tables"},
	{"cleanup_service_name", CONF_STR, "cleanup",
	"the socket under private/ that smtpd hands messages to"},
	{"qmgr_service_name", CONF_STR, "qmgr",
	"the socket under private/ that cleanup wakes when mail arrives"},

	/* smtpd: limits. */
	{"message_size_limit", CONF_SIZE, "52428800",
	"largest message accepted, in bytes (SIZE= and actual content)"},
	{"smtpd_recipient_limit", CONF_INT, "1000",
	"most recipients in one message"},
	{"smtpd_line_length_limit", CONF_INT, "2048",
	"longest SMTP command line or content line accepted, in bytes"},
	{"header_size_limit", CONF_SIZE, "102400",
	"largest message header section accepted, in bytes"},
	{"smtpd_soft_error_limit", CONF_INT, "10",
	"errors in one session after which each reply is delayed by a second"},
	{"smtpd_hard_error_limit", CONF_INT, "20",
	"errors in one session after which the client is disconnected"},
	{"smtpd_timeout", CONF_TIME, "300s",
	"how long smtpd waits for a command or content from a client"},
	{"smtpd_client_connection_count_limit", CONF_INT, "50",
	"most simultaneous sessions from one client address, per smtpd process (0: none)"},
	{"smtpd_client_connection_exceptions", CONF_STR, "$mynetworks",
	"clients not subject to the connection count limit"},
	{"smtpd_max_sessions", CONF_INT, "20000",
	"most simultaneous sessions in one smtpd process"},
	{"smtpd_forbid_bare_newline", CONF_BOOL, "yes",
	"reject a message whose content has a bare LF or bare CR"},
	{"smtpd_cleanup_timeout", CONF_TIME, "60s",
	"how long smtpd waits for cleanup to answer"},
	{"hopcount_limit", CONF_INT, "50",
	"most Received headers a message may carry"},

	/* cleanup. */
	{"cleanup_timeout", CONF_TIME, "300s",
	"how long cleanup waits for its client to send the next piece"},
	{"cleanup_max_sessions", CONF_INT, "2000",
	"most simultaneous submissions in one cleanup process"},

	/* Local submission: sendmail, cleanup on public/, pickup. */
	{"authorized_submit_users", CONF_STR, "static:anyone",
	"login names that may submit mail with sendmail: names, !name, type:table"},
	{"local_login_sender_maps", CONF_STR, "static:*",
	"tables: login name -> envelope senders it may use (*, <>, @domain, address)"},

	/* qmgr: routing, scheduling, retries. */
	{"relayhost", CONF_STR, "",
	"deliver all mail through these hosts, tried in order: [host]:port, ..."},
	{"transport_maps", CONF_STR, "",
	"tables of domain -> smtp:[host]:port (also .parent forms), before relayhost"},
	{"queue_run_delay", CONF_TIME, "300s",
	"how often qmgr scans deferred/ even when no retry is due"},
	{"minimal_backoff_time", CONF_TIME, "300s",
	"shortest wait before a deferred message is tried again"},
	{"maximal_backoff_time", CONF_TIME, "4000s",
	"longest wait before a deferred message is tried again"},
	{"greylist_retry_time", CONF_TIME, "120s",
	"wait before the next try when every deferral looked like greylisting"},
	{"maximal_queue_lifetime", CONF_TIME, "5d",
	"how long a message may stay queued before it is returned as undeliverable"},
	{"delay_warning_time", CONF_TIME, "0h",
	"send the sender one delay notice once mail is queued this long (0: never)"},
	{"qmgr_delivery_timeout", CONF_TIME, "3600s",
	"longest time qmgr waits for smtp-out to answer one delivery request"},
	{"default_destination_concurrency_limit", CONF_INT, "20",
	"most deliveries in flight to one destination (nexthop)"},
	{"qmgr_delivery_concurrency_limit", CONF_INT, "100",
	"most deliveries in flight in all"},
	{"qmgr_message_active_limit", CONF_INT, "20000",
	"most messages qmgr holds in memory; the rest wait on disk"},
	{"smtp_destination_recipient_limit", CONF_INT, "50",
	"most recipients in one delivery request (one SMTP transaction)"},

	/* bounce. */
	{"bounce_size_limit", CONF_SIZE, "50000",
	"largest original returned whole in a notification; larger: headers only"},
	{"double_bounce_recipient", CONF_STR, "",
	"who gets notifications about undeliverable notifications; empty: drop them"},
	{"bounce_timeout", CONF_TIME, "60s",
	"how long bounce waits for a request and for each answer from cleanup"},

	/* DNS (lib/util/dns.c, used by smtp-out). */
	{"dns_resolver", CONF_STR, "",
	"DNS servers to forward queries to, \"addr\" or \"addr@port\" (IPv4 or IPv6); empty: those of /etc/resolv.conf"},
	{"dns_trust_anchor_file", CONF_STR, "",
	"DNSSEC trust anchors (DS or DNSKEY records) that smtp-out validates answers with; empty: no validation"},
	{"dns_timeout", CONF_TIME, "30s",
	"longest time one MX or address lookup may take before it fails temporarily"},
	{"smtp_address_preference", CONF_STR, "any",
	"which family to try first among one host's addresses: any (random), ipv4 or ipv6"},

	/* smtp-out. */
	{"smtp_helo_name", CONF_STR, "$myhostname",
	"the name smtp-out sends in EHLO and HELO"},
	{"smtp_default_port", CONF_INT, "25",
	"the port smtp-out connects to when the next hop names none (also for MX hosts)"},
	{"smtp_connect_timeout", CONF_TIME, "30s",
	"how long smtp-out waits for a TCP connection to be set up"},
	{"smtp_helo_timeout", CONF_TIME, "300s",
	"how long smtp-out waits for the greeting and for the EHLO/HELO reply"},
	{"smtp_mail_timeout", CONF_TIME, "300s",
	"how long smtp-out waits for the reply to MAIL FROM"},
	{"smtp_rcpt_timeout", CONF_TIME, "300s",
	"how long smtp-out waits for the reply to each RCPT TO"},
	{"smtp_data_init_timeout", CONF_TIME, "120s",
	"how long smtp-out waits for the reply to DATA"},
	{"smtp_data_xfer_timeout", CONF_TIME, "180s",
	"how long smtp-out waits for the server to take more of the content"},
	{"smtp_data_done_timeout", CONF_TIME, "600s",
	"how long smtp-out waits for the reply to the end of the content"},
	{"smtp_rset_timeout", CONF_TIME, "20s",
	"how long smtp-out waits for the reply to RSET before a connection is cached"},
	{"smtp_quit_timeout", CONF_TIME, "300s",
	"how long smtp-out waits for the reply to QUIT"},
	{"smtp_connection_cache_time_limit", CONF_TIME, "2s",
	"how long an idle connection waits for the next message to the same next hop (0: no reuse)"},
	{"smtp_connection_reuse_count_limit", CONF_INT, "100",
	"most mail transactions over one connection"},
	{"smtp_request_timeout", CONF_TIME, "60s",
	"how long smtp-out waits for qmgr to send a request or take the reply"},

	/* smtp-out: TLS (smtp_tls.c) and SASL (smtp_sasl.c). */
	{"smtp_tls_security_level", CONF_STR, "may",
	"outbound TLS: none, may, encrypt, dane, dane-only, fingerprint, verify or secure"},
	{"smtp_tls_policy_maps", CONF_STR, "",
	"table of TLS policies per next hop or destination: \"level attr=value ...\""},
	{"smtp_tls_CAfile", CONF_STR, "",
	"file of trusted CA certificates for verify and secure (empty with smtp_tls_CApath: the system store)"},
	{"smtp_tls_CApath", CONF_STR, "",
	"directory of trusted CA certificates (c_rehash form) for verify and secure"},
	{"smtp_tls_protocols", CONF_STR, ">=TLSv1.2",
	"TLS protocols smtp-out allows with opportunistic TLS (may)"},
	{"smtp_tls_mandatory_protocols", CONF_STR, ">=TLSv1.2",
	"TLS protocols smtp-out allows when TLS is required (encrypt and above)"},
	{"smtp_tls_ciphers", CONF_STR, "medium",
	"TLS 1.2 cipher grade with opportunistic TLS: medium or high"},
	{"smtp_tls_mandatory_ciphers", CONF_STR, "medium",
	"TLS 1.2 cipher grade when TLS is required: medium or high"},
	{"smtp_tls_verify_cert_match", CONF_STR, "hostname",
	"names the certificate must carry at the verify level: hostname, nexthop, dot-nexthop or names"},
	{"smtp_tls_secure_cert_match", CONF_STR, "nexthop, dot-nexthop",
	"names the certificate must carry at the secure level: hostname, nexthop, dot-nexthop or names"},
	{"smtp_tls_fingerprint_cert_match", CONF_STR, "",
	"pins for the fingerprint level: digests of the certificate or of its public key, AB:CD:... form"},
	{"smtp_tls_fingerprint_digest", CONF_STR, "sha256",
	"the digest of smtp_tls_fingerprint_cert_match pins"},
	{"smtp_tls_servername", CONF_STR, "hostname",
	"SNI smtp-out sends: hostname (the server's name), nexthop, a literal name, or empty for none"},
	{"smtp_tls_loglevel", CONF_INT, "1",
	"0: no TLS log lines; 1: one line per TLS connection; 2: also certificate fingerprints"},
	{"smtp_starttls_timeout", CONF_TIME, "300s",
	"how long smtp-out waits for the STARTTLS reply and for the TLS handshake"},
	{"smtp_tls_session_cache_timeout", CONF_TIME, "3600s",
	"how long smtp-out keeps a TLS session to resume it on the next connection (0: no resumption)"},
	{"smtp_sasl_auth_enable", CONF_BOOL, "no",
	"authenticate to servers that smtp_sasl_password_maps has credentials for"},
	{"smtp_sasl_password_maps", CONF_STR, "",
	"table: next hop or server name -> user:password (password \"@/file\": XOAUTH2 with the token in file)"},
	{"smtp_sasl_security_options", CONF_STR, "noplaintext, noanonymous",
	"SASL mechanism restrictions on a clear-text connection (noanonymous alone: PLAIN and LOGIN in clear)"},
	{"smtp_sasl_tls_security_options", CONF_STR, "noanonymous",
	"SASL mechanism restrictions on a TLS connection"},
	{"smtp_sasl_auth_soft_bounce", CONF_BOOL, "yes",
	"an authentication failure defers (yes) rather than bounces on a 5xx reply"},

	/* smtp-out: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460). */
	{"smtp_mta_sts_enable", CONF_BOOL, "no",
	"look up, fetch and apply the MTA-STS policy of each destination domain"},
	{"smtp_mta_sts_port", CONF_INT, "443",
	"TCP port of https://mta-sts.DOMAIN/ (RFC 8461 fixes 443; change it only for tests)"},
	{"smtp_mta_sts_timeout", CONF_TIME, "30s",
	"longest time one MTA-STS policy fetch may take"},
	{"smtp_mta_sts_CAfile", CONF_STR, "",
	"CA certificates that MTA-STS policy servers are verified with (empty: the system store)"},
	{"smtp_tls_rpt_enable", CONF_BOOL, "no",
	"record TLS and policy outcomes per policy domain for TLS-RPT reports"},
	{"smtp_tls_rpt_directory", CONF_STR, "$queue_directory/tlsrpt",
	"where \"sendarix tlsrpt\" writes the daily TLS-RPT JSON reports"},
	{"smtp_tls_rpt_organization", CONF_STR, "$mydomain",
	"organization-name in TLS-RPT reports"},
	{"smtp_tls_rpt_contact", CONF_STR, "postmaster@$mydomain",
	"contact-info in TLS-RPT reports"},
	{"smtp_tls_rpt_sender", CONF_STR, "postmaster@$mydomain",
	"envelope sender and From: of TLS-RPT reports sent by mail"},
	{"smtp_tls_rpt_CAfile", CONF_STR, "$smtp_mta_sts_CAfile",
	"CA certificates that https: rua= report receivers are verified with"},
	{"smtp_tls_rpt_store_lifetime", CONF_TIME, "7d",
	"how long the TLS-RPT store keeps a day's records after the day ended"},

	/* smtpd: queue space. */
	{"queue_minfree", CONF_SIZE, "0",
	"free space the queue file system must keep; MAIL FROM gets 452 4.3.1 below it (0: only check that the message fits)"},

	/* smtpd: client names. */
	{"smtpd_peername_lookup", CONF_BOOL, "yes",
	"look up the client's host name (PTR, confirmed by A/AAAA); no: always \"unknown\""},
	{"smtpd_peername_lookup_timeout", CONF_TIME, "5s",
	"longest time the greeting waits for the client name lookup; then the name is \"unknown\""},

	/* smtpd: access restrictions (SMTPD_ACCESS_README). */
	{"smtpd_client_restrictions", CONF_STR, "",
	"restrictions on the client address and name, evaluated at RCPT TO"},
	{"smtpd_helo_restrictions", CONF_STR, "",
	"restrictions on the HELO/EHLO name, evaluated at RCPT TO"},
	{"smtpd_sender_restrictions", CONF_STR, "",
	"restrictions on the MAIL FROM address, evaluated at RCPT TO"},
	{"smtpd_relay_restrictions", CONF_STR,
	"permit_mynetworks, reject_unauth_destination",
	"relay control at RCPT TO, before smtpd_recipient_restrictions"},
	{"smtpd_recipient_restrictions", CONF_STR, "",
	"restrictions on the RCPT TO address, after smtpd_relay_restrictions"},
	{"smtpd_data_restrictions", CONF_STR, "",
	"restrictions evaluated at the DATA command"},
	{"smtpd_end_of_data_restrictions", CONF_STR, "",
	"restrictions evaluated at the end of the message content"},
	{"smtpd_policy_service_timeout", CONF_TIME, "100s",
	"longest wait for a check_policy_service answer"},
	{"smtpd_policy_service_max_idle", CONF_TIME, "300s",
	"how long an idle connection to a policy server is kept"},
	{"smtpd_policy_service_default_action", CONF_STR,
	"451 4.3.5 Server configuration problem",
	"the action when a policy server cannot be reached or times out"},

	/* smtpd: TLS (STARTTLS, RFC 3207; implicit TLS, RFC 8314). */
	{"smtpd_tls_security_level", CONF_STR, "none",
	"none: no STARTTLS; may: offer STARTTLS; encrypt: require it before mail commands (530 5.7.0)"},
	{"smtpd_tls_wrappermode", CONF_BOOL, "no",
	"implicit TLS: the handshake right after connect, then the greeting (smtps, port 465)"},
	{"smtpd_tls_cert_file", CONF_STR, "",
	"PEM file with the server's RSA certificate, followed by its chain (leaf first)"},
	{"smtpd_tls_key_file", CONF_STR, "$smtpd_tls_cert_file",
	"PEM file with the RSA private key; read as root, must not be world-readable"},
	{"smtpd_tls_eccert_file", CONF_STR, "",
	"PEM file with a second, ECDSA certificate and its chain, for clients that want ECDSA"},
	{"smtpd_tls_eckey_file", CONF_STR, "$smtpd_tls_eccert_file",
	"PEM file with the ECDSA private key; read as root, must not be world-readable"},
	{"smtpd_tls_CAfile", CONF_STR, "",
	"PEM file of CA certificates used to complete the server's chain"},
	{"smtpd_tls_protocols", CONF_STR, ">=TLSv1.2",
	"TLS versions with opportunistic TLS (level may): \">=TLSv1.2\", \"!TLSv1, !TLSv1.1\", ..."},
	{"smtpd_tls_mandatory_protocols", CONF_STR, ">=TLSv1.2",
	"TLS versions where TLS is required (level encrypt, wrappermode)"},
	{"smtpd_tls_ciphers", CONF_STR, "medium",
	"cipher grade with opportunistic TLS: high or medium (TLS 1.2 and below)"},
	{"smtpd_tls_mandatory_ciphers", CONF_STR, "medium",
	"cipher grade where TLS is required: high or medium"},
	{"smtpd_tls_exclude_ciphers", CONF_STR, "",
	"OpenSSL cipher names or classes to leave out, e.g. \"aNULL, SHA1\""},
	{"smtpd_tls_session_cache_timeout", CONF_TIME, "3600s",
	"how long a TLS session may be resumed (session cache and tickets); 0 turns resumption off"},
	{"smtpd_starttls_timeout", CONF_TIME, "300s",
	"longest time for the TLS handshake after STARTTLS or, in wrappermode, after connect"},
	{"smtpd_tls_received_header", CONF_BOOL, "yes",
	"name the TLS version and cipher in the Received: header"},
};

const size_t conf_params_count = sizeof(conf_params) / sizeof(conf_params[0]);

/*
 * The ranges outside of which a program refuses to start (log_fatal).
 * conf_get_int(), conf_get_time() and conf_get_size() enforce them, and
 * "sendarix check", "sendarix start" and master check them before
 * anything runs, and the daemons read them with server_params_read()
 * (lib/master/server_params.c), so all of them agree on every value.
 */
const struct conf_bound conf_bounds[] = {
	/* qmgr. */
	{"queue_run_delay", 1, 86400},
	{"minimal_backoff_time", 1, 86400 * 7},
	{"maximal_backoff_time", 1, 86400 * 7},
	{"greylist_retry_time", 1, 86400},
	{"maximal_queue_lifetime", 0, 86400 * 100},
	{"delay_warning_time", 0, 86400 * 100},
	{"qmgr_delivery_timeout", 1, 86400},
	{"default_destination_concurrency_limit", 1, 100000},
	{"qmgr_delivery_concurrency_limit", 1, 100000},
	{"qmgr_message_active_limit", 1, 10000000},
	{"smtp_destination_recipient_limit", 1, 100000},

	/* cleanup. */
	{"header_size_limit", 1024, 1LL << 30},
	{"hopcount_limit", 1, 100000},
	{"cleanup_timeout", 1, 86400},
	{"cleanup_max_sessions", 1, 1000000},

	/* bounce. */
	{"bounce_size_limit", 0, 1LL << 30},
	{"bounce_timeout", 1, 3600},

	/* smtpd. */
	{"smtpd_recipient_limit", 1, 10000000},
	{"smtpd_line_length_limit", 512, 1LL << 30},
	{"smtpd_soft_error_limit", 0, 1000000},
	{"smtpd_hard_error_limit", 1, 1000000},
	{"smtpd_timeout", 1, 86400},
	{"smtpd_cleanup_timeout", 1, 86400},
	{"smtpd_client_connection_count_limit", 0, 1000000},
	{"smtpd_max_sessions", 0, 10000000},
	{"smtpd_starttls_timeout", 1, 86400},
	{"smtpd_tls_session_cache_timeout", 0, 86400 * 100},

	/* smtp-out. */
	{"smtp_default_port", 1, 65535},
	{"smtp_connect_timeout", 1, 86400},
	{"smtp_helo_timeout", 1, 86400},
	{"smtp_mail_timeout", 1, 86400},
	{"smtp_rcpt_timeout", 1, 86400},
	{"smtp_data_init_timeout", 1, 86400},
	{"smtp_data_xfer_timeout", 1, 86400},
	{"smtp_data_done_timeout", 1, 86400},
	{"smtp_rset_timeout", 1, 86400},
	{"smtp_quit_timeout", 1, 86400},
	{"smtp_connection_cache_time_limit", 0, 86400},
	{"smtp_connection_reuse_count_limit", 1, 1000000},
	{"smtp_request_timeout", 1, 86400},
	{"smtp_tls_loglevel", 0, 4},
	{"smtp_starttls_timeout", 1, 86400},
	{"smtp_tls_session_cache_timeout", 0, 8640000},
	{"smtp_mta_sts_port", 1, 65535},
	{"smtp_mta_sts_timeout", 1, 3600},
};

const size_t conf_bounds_count = sizeof(conf_bounds) / sizeof(conf_bounds[0]);
