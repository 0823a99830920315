#ifndef SENDARIX_RST_VERB_H
#define SENDARIX_RST_VERB_H

struct strbuf;

/*
 * The verbs of smtpd's restriction lists (smtpd_client_restrictions and
 * the others): one table for smtpd, which runs them (smtpd_check.c), and
 * for "sendarix check", which refuses a list smtpd could not run.
 */
enum rst_verb {
	RST_PERMIT,
	RST_REJECT,
	RST_DEFER,
	RST_DEFER_IF_PERMIT,
	RST_DEFER_IF_REJECT,
	RST_PERMIT_MYNETWORKS,
	RST_UNAUTH_DEST,
	RST_DEFER_UNAUTH_DEST,
	RST_UNAUTH_PIPELINING,
	RST_CLIENT_ACCESS,
	RST_HELO_ACCESS,
	RST_SENDER_ACCESS,
	RST_RCPT_ACCESS,
	RST_NONFQDN_SENDER,
	RST_NONFQDN_RCPT,
	RST_UNKNOWN_SENDER_DOMAIN,
	RST_RBL_CLIENT,
	RST_RHSBL_SENDER,
	RST_POLICY,
	RST_PERMIT_SASL,		/* permit_sasl_authenticated */
	RST_LOGIN_MISMATCH,		/* reject_sender_login_mismatch */
	RST_AUTH_LOGIN_MISMATCH,	/* ..._authenticated_... */
	RST_UNAUTH_LOGIN_MISMATCH,	/* ..._unauthenticated_... */
	RST_PLAINTEXT,			/* reject_plaintext_session */
	RST_PERMIT_CCERTS,		/* permit_tls_clientcerts */
	RST_PERMIT_ALL_CCERTS,		/* permit_tls_all_clientcerts */
	RST_CCERT_ACCESS,		/* check_ccert_access */
	RST_UNIMPLEMENTED,		/* known to Postfix, not here yet */
	RST_BROKEN,			/* unknown or unusable: 451 4.3.5 */
};

#define RST_F_ARG	(1 << 0)	/* takes the next word */
#define RST_F_DNS	(1 << 1)	/* asks DNS */

struct rst_verb_info {
	const char *name;
	enum rst_verb verb;
	int     flags;
};

#define RST_SEPARATORS	" \t\r\n,"

extern const struct rst_verb_info *rst_verb_find(const char *);
extern int rst_list_check(const char *, const char *, struct strbuf *);

#endif
