/*
 * rst_verb - the verbs of smtpd's restriction lists
 *
 * SYNOPSIS
 *	#include "rst_verb.h"
 *
 *	const struct rst_verb_info *rst_verb_find(const char *name)
 *	int	rst_list_check(const char *param, const char *value,
 *			struct strbuf *why)
 *
 * DESCRIPTION
 *	rst_verb_find() looks a restriction up by name (any case): its
 *	verb and whether it takes the next word as its argument
 *	(RST_F_ARG: check_*_access TABLE, reject_rbl_client ZONE,
 *	check_policy_service ENDPOINT) or asks DNS (RST_F_DNS). NULL for
 *	a name that is no restriction.
 *
 *	rst_list_check() checks the words of one restriction list (the
 *	value of parameter "param"): every verb known, every argument
 *	there, no verb that this build does not have (RST_UNIMPLEMENTED,
 *	none at present). It returns 0, or -1 with the first
 *	problem in "why". Tables and policy endpoints are opened only by
 *	smtpd itself.
 *
 *	Words are separated by white space and commas, as Postfix does.
 *
 * SEE ALSO
 *	smtpd/smtpd_check.c, conf_check(3), sendarix-params(5)
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strbuf.h"
#include "xmalloc.h"

#include "rst_verb.h"

static const struct rst_verb_info rst_verbs[] = {
	{"permit", RST_PERMIT, 0},
	{"reject", RST_REJECT, 0},
	{"defer", RST_DEFER, 0},
	{"defer_if_permit", RST_DEFER_IF_PERMIT, 0},
	{"defer_if_reject", RST_DEFER_IF_REJECT, 0},
	{"permit_mynetworks", RST_PERMIT_MYNETWORKS, 0},
	{"reject_unauth_destination", RST_UNAUTH_DEST, 0},
	{"defer_unauth_destination", RST_DEFER_UNAUTH_DEST, 0},
	{"reject_unauth_pipelining", RST_UNAUTH_PIPELINING, 0},
	{"check_client_access", RST_CLIENT_ACCESS, RST_F_ARG},
	{"check_helo_access", RST_HELO_ACCESS, RST_F_ARG},
	{"check_sender_access", RST_SENDER_ACCESS, RST_F_ARG},
	{"check_recipient_access", RST_RCPT_ACCESS, RST_F_ARG},
	{"reject_non_fqdn_sender", RST_NONFQDN_SENDER, 0},
	{"reject_non_fqdn_recipient", RST_NONFQDN_RCPT, 0},
	{"reject_unknown_sender_domain", RST_UNKNOWN_SENDER_DOMAIN,
	RST_F_DNS},
	{"reject_rbl_client", RST_RBL_CLIENT, RST_F_ARG | RST_F_DNS},
	{"reject_rhsbl_sender", RST_RHSBL_SENDER, RST_F_ARG | RST_F_DNS},
	{"check_policy_service", RST_POLICY, RST_F_ARG},
	{"permit_sasl_authenticated", RST_PERMIT_SASL, 0},
	{"reject_sender_login_mismatch", RST_LOGIN_MISMATCH, 0},
	{"reject_authenticated_sender_login_mismatch",
	RST_AUTH_LOGIN_MISMATCH, 0},
	{"reject_unauthenticated_sender_login_mismatch",
	RST_UNAUTH_LOGIN_MISMATCH, 0},
	{"reject_plaintext_session", RST_PLAINTEXT, 0},
	{"permit_tls_clientcerts", RST_PERMIT_CCERTS, 0},
	{"permit_tls_all_clientcerts", RST_PERMIT_ALL_CCERTS, 0},
	{"check_ccert_access", RST_CCERT_ACCESS, RST_F_ARG},
};

/* rst_verb_find - a restriction by name, or NULL */
const struct rst_verb_info *
rst_verb_find(const char *name)
{
	size_t  i;

	for (i = 0; i < sizeof(rst_verbs) / sizeof(rst_verbs[0]); i++)
		if (strcasecmp(rst_verbs[i].name, name) == 0)
			return (&rst_verbs[i]);
	return (NULL);
}

/* rst_list_check - can smtpd run this list? */
int
rst_list_check(const char *param, const char *value, struct strbuf *why)
{
	const struct rst_verb_info *vi;
	char   *copy = xstrdup(value ? value : "");
	char   *save;
	char   *word;
	int     ret = 0;

	for (word = strtok_r(copy, RST_SEPARATORS, &save); word != NULL;
	     word = strtok_r(NULL, RST_SEPARATORS, &save)) {
		if ((vi = rst_verb_find(word)) == NULL) {
			strbuf_setf(why, "parameter %s: unknown restriction "
				    "\"%s\"", param, word);
			ret = -1;
			break;
		}
		if ((vi->flags & RST_F_ARG)
		    && strtok_r(NULL, RST_SEPARATORS, &save) == NULL) {
			strbuf_setf(why, "parameter %s: restriction \"%s\" "
				    "needs an argument", param, vi->name);
			ret = -1;
			break;
		}
		if (vi->verb == RST_UNIMPLEMENTED) {
			strbuf_setf(why, "parameter %s: restriction \"%s\" is "
				    "not available in this build", param,
				    vi->name);
			ret = -1;
			break;
		}
	}
	xfree(copy);
	return (ret);
}
