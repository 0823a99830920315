/*
 * smtpd_check - restriction lists, evaluated per stage, that may wait
 *
 * SYNOPSIS
 *	#include "smtpd.h"
 *
 *	int	smtpd_check_init(void)
 *	int	smtpd_check_need_dns(void)
 *	int	smtpd_check_empty(int stages)
 *	int	smtpd_check_run(struct smtpd_session *s, int stages,
 *			const char *cmd, const char *rcpt, int pflags,
 *			smtpd_check_done done)
 *	const char *smtpd_check_reply(struct smtpd_session *s)
 *	const char *smtpd_check_hold(struct smtpd_session *s)
 *	const char *smtpd_check_discard(struct smtpd_session *s)
 *	const char *smtpd_check_prepend(struct smtpd_session *s)
 *	void	smtpd_check_reset(struct smtpd_session *s)
 *	void	smtpd_check_free(struct smtpd_session *s)
 *
 * DESCRIPTION
 *	Postfix's SMTP access restrictions (SMTPD_ACCESS_README): one list
 *	per stage, smtpd_client_restrictions, smtpd_helo_restrictions,
 *	smtpd_sender_restrictions, smtpd_relay_restrictions,
 *	smtpd_recipient_restrictions, smtpd_data_restrictions and
 *	smtpd_end_of_data_restrictions. Each list is evaluated in order
 *	until a restriction permits (the rest of that list is skipped and
 *	the next list runs), rejects (the command gets the reply; no
 *	further list runs) or the list ends (no decision: the next list).
 *	As with Postfix's smtpd_delay_reject = yes, the client, helo and
 *	sender lists run at RCPT TO, before the relay and recipient lists.
 *
 *	smtpd_check_init() parses the lists and opens their tables (before
 *	the chroot). A restriction it does not know, or one that is not
 *	implemented yet, is a configuration error: it is logged at start
 *	and answered with 451 4.3.5 Server configuration error when it is
 *	reached, as Postfix does. It returns the number of such errors.
 *	smtpd_check_need_dns() says whether a list uses DNS (the resolver
 *	must then be started); smtpd_check_empty() whether the lists of
 *	"stages" (a mask of SMTPD_STAGE_BIT()) are all empty.
 *
 *	smtpd_check_run() evaluates the lists of "stages" for command
 *	"cmd" (RCPT: the recipient "rcpt", with smtp_addr_parse() bits
 *	"pflags"). It returns SMTPD_CHECK_OK, SMTPD_CHECK_REJECT (the reply
 *	line is smtpd_check_reply()) or SMTPD_CHECK_WAIT: a restriction
 *	asked DNS or a policy server; the session must read no more input,
 *	and "done" is called from the event loop with the verdict. Other
 *	sessions go on meanwhile.
 *
 *	The results HOLD, DISCARD and PREPEND last for the mail transaction
 *	(smtpd_check_reset() forgets them): smtpd_check_hold() and
 *	smtpd_check_discard() give their reason text (or NULL) for cleanup,
 *	smtpd_check_prepend() the header lines to put first in the message
 *	(CRLF-terminated; NULL when none). smtpd_check_free() cancels what
 *	is pending and frees the session's state.
 *
 * DIAGNOSTICS
 *	Configuration errors at start; "hold:", "discard:" and "warn:"
 *	lines in the Postfix shape; lookup failures as warnings.
 *
 * SEE ALSO
 *	smtpd_policy.c, smtpd(8), sendarix-params(5), map(3)
 */

#include <sys/types.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "rst_verb.h"
#include "smtp_addr.h"
#include "strbuf.h"
#include "tls_server.h"
#include "xmalloc.h"

#include "smtpd.h"

/* One restriction of a list. */
struct smtpd_rst {
	enum rst_verb verb;
	char   *text;			/* as configured, for logs */
	char   *arg;			/* domain, or NULL */
	char   *filter;			/* reject_rbl_client d=filter */
	struct map *map;		/* check_*_access */
	struct smtpd_policy *policy;	/* check_policy_service */
};

struct smtpd_rlist {
	struct smtpd_rst *items;
	size_t  count;
};

static const char *const smtpd_stage_params[SMTPD_STAGE_COUNT] = {
	"smtpd_client_restrictions",
	"smtpd_helo_restrictions",
	"smtpd_sender_restrictions",
	"smtpd_relay_restrictions",
	"smtpd_recipient_restrictions",
	"smtpd_data_restrictions",
	"smtpd_end_of_data_restrictions",
};

/* What the replies call the thing that a stage rejects. */
static const char *const smtpd_stage_class[SMTPD_STAGE_COUNT] = {
	"Client host", "Helo command", "Sender address", "Recipient address",
	"Recipient address", "Data command", "End-of-data",
};

static struct smtpd_rlist smtpd_lists[SMTPD_STAGE_COUNT];
static int smtpd_check_dns;
static char *smtpd_policy_default;
static struct map *smtpd_login_map;	/* smtpd_sender_login_maps */
static int smtpd_plaintext_code;	/* plaintext_reject_code */
static struct map *smtpd_relay_ccerts;	/* relay_clientcerts */

/* The evaluation state of one session. */
struct smtpd_check {
	struct smtpd_session *s;
	int     stages;			/* mask still to run */
	int     stage;			/* running now */
	size_t  index;			/* restriction in that list */
	const char *cmd;
	const char *rcpt;
	int     pflags;
	smtpd_check_done done;
	struct strbuf *reply;
	struct strbuf *dip;		/* defer_if_permit reply, or empty */
	int     dir;			/* defer_if_reject */
	struct dns_req *dns;
	struct smtpd_policy_req *preq;
	/* Per mail transaction. */
	char   *hold;
	char   *discard;
	struct strbuf *prepend;
	unsigned long transaction;	/* for the policy "instance" */
	int     ccert;			/* replies name the client certificate */
};

#define SMTPD_REPLY_CONFIG	"451 4.3.5 Server configuration error"

static int smtpd_check_loop(struct smtpd_check *);
static int smtpd_check_final(struct smtpd_check *, int);

/* smtpd_check_list - parse one restriction list; errors counted */
static int
smtpd_check_list(int stage, const char *value)
{
	struct smtpd_rlist *list = &smtpd_lists[stage];
	const char *param = smtpd_stage_params[stage];
	const struct rst_verb_info *vi;
	struct smtpd_rst *r;
	struct strbuf *err = strbuf_new(128, 0);
	char   *copy = xstrdup(value ? value : "");
	char   *save;
	char   *word;
	char   *eq;
	int     errors = 0;
	size_t  cap = 0;

	for (word = strtok_r(copy, " \t\r\n,", &save); word != NULL;
	     word = strtok_r(NULL, " \t\r\n,", &save)) {
		if (list->count >= cap) {
			cap = cap ? 2 * cap : 8;
			list->items = xreallocarray(list->items, cap,
						    sizeof(*list->items));
		}
		r = &list->items[list->count++];
		memset(r, 0, sizeof(*r));
		r->text = xstrdup(word);
		r->verb = RST_BROKEN;
		if ((vi = rst_verb_find(word)) == NULL) {
			log_warn("%s: unknown smtpd restriction \"%s\"", param,
				 word);
			errors++;
			continue;
		}
		if (vi->flags & RST_F_ARG) {
			word = strtok_r(NULL, " \t\r\n,", &save);
			if (word == NULL) {
				log_warn("%s: restriction \"%s\" needs an "
					 "argument", param, vi->name);
				errors++;
				break;
			}
			r->arg = xstrdup(word);
		}
		if (vi->verb == RST_UNIMPLEMENTED) {
			log_warn("%s: restriction \"%s\" is not available in "
				 "this build", param, vi->name);
			errors++;
			continue;
		}
		if (vi->flags & RST_F_DNS)
			smtpd_check_dns = 1;
		switch (vi->verb) {
		case RST_LOGIN_MISMATCH:
		case RST_AUTH_LOGIN_MISMATCH:
		case RST_UNAUTH_LOGIN_MISMATCH:
			if (smtpd_login_map == NULL) {
				log_warn("%s: restriction \"%s\" needs "
					 "smtpd_sender_login_maps", param,
					 vi->name);
				errors++;
				continue;
			}
			break;
		case RST_CLIENT_ACCESS:
		case RST_HELO_ACCESS:
		case RST_SENDER_ACCESS:
		case RST_RCPT_ACCESS:
		case RST_CCERT_ACCESS:
			strbuf_reset(err);
			if ((r->map = map_open(r->arg, err)) == NULL) {
				log_warn("%s: %s %s: %s", param, vi->name,
					 r->arg, err->len ? err->data :
					 "cannot open table");
				errors++;
				continue;
			}
			break;
		case RST_PERMIT_CCERTS:
			if (smtpd_relay_ccerts == NULL)
				log_warn("%s: permit_tls_clientcerts without "
					 "relay_clientcerts permits nobody",
					 param);
			break;
		case RST_RBL_CLIENT:
			if ((eq = strchr(r->arg, '=')) != NULL) {
				*eq++ = 0;
				r->filter = xstrdup(eq);
			}
			break;
		case RST_POLICY:
			strbuf_reset(err);
			if ((r->policy = smtpd_policy_open(r->arg, err)) == NULL) {
				log_warn("%s: check_policy_service %s: %s",
					 param, r->arg, err->data);
				errors++;
				continue;
			}
			break;
		default:
			break;
		}
		r->verb = vi->verb;
	}
	xfree(copy);
	strbuf_free(err);
	return (errors);
}

/* smtpd_check_login_init - open smtpd_sender_login_maps; errors */
static int
smtpd_check_login_init(void)
{
	const char *spec = conf_get("smtpd_sender_login_maps");
	struct strbuf *err;

	if (spec == NULL || spec[strspn(spec, " \t,")] == 0)
		return (0);
	err = strbuf_new(128, 0);
	smtpd_login_map = map_open(spec, err);
	if (smtpd_login_map == NULL)
		log_warn("smtpd_sender_login_maps: %s", err->len ? err->data :
			 "cannot open table");
	strbuf_free(err);
	return (smtpd_login_map == NULL);
}

/* smtpd_check_ccert_init - open relay_clientcerts; errors */
static int
smtpd_check_ccert_init(void)
{
	const char *spec = conf_get("relay_clientcerts");
	struct strbuf *err;

	if (spec == NULL || spec[strspn(spec, " \t,")] == 0)
		return (0);
	err = strbuf_new(128, 0);
	smtpd_relay_ccerts = map_open(spec, err);
	if (smtpd_relay_ccerts == NULL)
		log_warn("relay_clientcerts: %s", err->len ? err->data :
			 "cannot open table");
	strbuf_free(err);
	return (smtpd_relay_ccerts == NULL);
}

/* smtpd_check_init - parse every list; the number of errors */
int
smtpd_check_init(void)
{
	int     errors = 0;
	int     i;

	smtpd_policy_set_limits(conf_get_time("smtpd_policy_service_timeout"),
				conf_get_time("smtpd_policy_service_max_idle"));
	smtpd_policy_default =
		xstrdup(conf_get("smtpd_policy_service_default_action"));
	smtpd_plaintext_code = conf_get_int("plaintext_reject_code");
	errors += smtpd_check_login_init();
	errors += smtpd_check_ccert_init();
	for (i = 0; i < SMTPD_STAGE_COUNT; i++)
		errors += smtpd_check_list(i, conf_get(smtpd_stage_params[i]));
	if (errors)
		log_warn("%d configuration error%s in the smtpd restrictions: "
			 "the affected commands get \"%s\"", errors,
			 errors == 1 ? "" : "s", SMTPD_REPLY_CONFIG);
	return (errors);
}

/* smtpd_check_need_dns - does a restriction ask DNS? */
int
smtpd_check_need_dns(void)
{
	return (smtpd_check_dns);
}

/* smtpd_check_empty - no restriction in any of these stages? */
int
smtpd_check_empty(int stages)
{
	int     i;

	for (i = 0; i < SMTPD_STAGE_COUNT; i++)
		if ((stages & SMTPD_STAGE_BIT(i)) && smtpd_lists[i].count)
			return (0);
	return (1);
}

/* smtpd_check_get - the session's state, made on first use */
static struct smtpd_check *
smtpd_check_get(struct smtpd_session *s)
{
	if (s->check == NULL) {
		s->check = xcalloc(1, sizeof(*s->check));
		s->check->s = s;
		s->check->reply = strbuf_new(128, 0);
		s->check->dip = strbuf_new(128, 0);
	}
	return (s->check);
}

/* smtpd_check_name - what the reply names at this stage */
static const char *
smtpd_check_name(struct smtpd_check *c, char *buf, size_t len)
{
	struct smtpd_session *s = c->s;

	if (c->ccert) {
		snprintf(buf, len, "%s[%s]", s->name, s->addr);
		return (buf);
	}
	switch (c->stage) {
	case SMTPD_STAGE_CLIENT:
		snprintf(buf, len, "%s[%s]", s->name, s->addr);
		return (buf);
	case SMTPD_STAGE_HELO:
		return (s->helo ? s->helo : "");
	case SMTPD_STAGE_SENDER:
		return (s->sender ? s->sender : "");
	case SMTPD_STAGE_RELAY:
	case SMTPD_STAGE_RCPT:
		return (c->rcpt ? c->rcpt : "");
	case SMTPD_STAGE_DATA:
		return ("DATA");
	default:
		return ("END-OF-MESSAGE");
	}
}

/* smtpd_check_event_log - "hold:", "discard:", "warn:" lines */
static void
smtpd_check_event_log(struct smtpd_check *c, const char *what,
		      const char *text)
{
	struct smtpd_session *s = c->s;
	struct strbuf *sb = strbuf_new(256, 0);

	strbuf_printf(sb, "%s: %s: %s from %s[%s]: %s;",
		      s->queue_id[0] ? s->queue_id : "NOQUEUE", what, c->cmd,
		      s->name, s->addr, text);
	if (s->sender)
		strbuf_printf(sb, " from=<%s>", s->sender);
	if (c->rcpt)
		strbuf_printf(sb, " to=<%s>", c->rcpt);
	strbuf_printf(sb, " proto=%s", smtpd_protocol(s));
	if (s->helo)
		strbuf_printf(sb, " helo=<%s>", s->helo);
	log_info("%s", sb->data);
	strbuf_free(sb);
}

/* smtpd_check_class - what the replies call the thing rejected */
static const char *
smtpd_check_class(const struct smtpd_check *c)
{
	return (c->ccert ? "Client certificate" : smtpd_stage_class[c->stage]);
}

/* smtpd_check_reject - set the reply "code dsn <name>: Class rejected: text" */
static int
smtpd_check_reject(struct smtpd_check *c, int code, const char *dsn,
		   const char *text)
{
	char    buf[300];

	strbuf_reset(c->reply);
	strbuf_printf(c->reply, "%d %s <%s>: %s rejected: %s", code, dsn,
		      smtpd_check_name(c, buf, sizeof(buf)),
		      smtpd_check_class(c), text);
	return (SMTPD_CHECK_REJECT);
}

/* smtpd_check_config - a configuration error reached at run time */
static int
smtpd_check_config(struct smtpd_check *c, const struct smtpd_rst *r)
{
	log_warn("%s: restriction \"%s\" is a configuration error",
		 smtpd_stage_params[c->stage], r->text);
	strbuf_sets(c->reply, SMTPD_REPLY_CONFIG);
	return (SMTPD_CHECK_REJECT);
}

/* smtpd_check_dsn - an "x.y.z " status at the start of text: its length */
static size_t
smtpd_check_dsn(const char *text, int code)
{
	const char *cp = text;

	if (*cp != '0' + code / 100 || cp[1] != '.')
		return (0);
	cp += 2;
	if (!isdigit((unsigned char) *cp))
		return (0);
	while (isdigit((unsigned char) *cp))
		cp++;
	if (*cp++ != '.' || !isdigit((unsigned char) *cp))
		return (0);
	while (isdigit((unsigned char) *cp))
		cp++;
	if (*cp != ' ' && *cp != 0)
		return (0);
	return (cp - text);
}

/*
 * smtpd_check_action - an access(5) result: from a table or a policy
 * server. "source" names it for the logs.
 */
static int
smtpd_check_action(struct smtpd_check *c, const char *value,
		   const char *source)
{
	char    word[32];
	char    dsn[16];
	const char *text;
	size_t  len;
	size_t  n;
	int     code;

	while (*value == ' ' || *value == '\t')
		value++;
	len = strcspn(value, " \t");
	text = value + len;
	while (*text == ' ' || *text == '\t')
		text++;
	/* A longer word is no known action: cut, it stays unknown. */
	snprintf(word, sizeof(word), "%.*s", (int) len, value);
	len = strlen(word);

	/* "4NN text", "5NN text": a reply of our own. */
	if (len == 3 && (word[0] == '4' || word[0] == '5')
	    && isdigit((unsigned char) word[1])
	    && isdigit((unsigned char) word[2])) {
		code = atoi(word);
		if ((n = smtpd_check_dsn(text, code)) > 0 && n < sizeof(dsn)) {
			memcpy(dsn, text, n);
			dsn[n] = 0;
			text += n;
			while (*text == ' ')
				text++;
		} else
			snprintf(dsn, sizeof(dsn), "%c.7.1", word[0]);
		return (smtpd_check_reject(c, code, dsn,
					   *text ? text : "Access denied"));
	}
	if (len > 0 && strspn(word, "0123456789") == len)
		return (SMTPD_CHECK_OK);	/* numerical: OK */
	if (strcasecmp(word, "OK") == 0)
		return (SMTPD_CHECK_OK);
	if (strcasecmp(word, "DUNNO") == 0)
		return (SMTPD_CHECK_DUNNO);
	if (strcasecmp(word, "REJECT") == 0)
		return (smtpd_check_reject(c, 554, "5.7.1",
					   *text ? text : "Access denied"));
	if (strcasecmp(word, "DEFER") == 0)
		return (smtpd_check_reject(c, 450, "4.7.1",
					   *text ? text : "Access denied"));
	if (strcasecmp(word, "DEFER_IF_PERMIT") == 0) {
		if (c->dip->len == 0) {
			struct strbuf *save = c->reply;

			c->reply = c->dip;
			smtpd_check_reject(c, 450, "4.7.1",
					   *text ? text : "Service unavailable");
			c->reply = save;
		}
		return (SMTPD_CHECK_DUNNO);
	}
	if (strcasecmp(word, "DEFER_IF_REJECT") == 0) {
		c->dir = 1;
		return (SMTPD_CHECK_DUNNO);
	}
	if (strcasecmp(word, "HOLD") == 0) {
		char    buf[300];
		struct strbuf *sb = strbuf_new(128, 0);

		strbuf_printf(sb, "<%s>: %s %s", smtpd_check_name(c, buf,
								 sizeof(buf)),
			      smtpd_check_class(c), *text ? text :
			      "triggers HOLD action");
		smtpd_check_event_log(c, "hold", sb->data);
		xfree(c->hold);
		c->hold = xstrdup(sb->data);
		strbuf_free(sb);
		return (SMTPD_CHECK_DUNNO);
	}
	if (strcasecmp(word, "DISCARD") == 0) {
		char    buf[300];
		struct strbuf *sb = strbuf_new(128, 0);

		strbuf_printf(sb, "<%s>: %s %s", smtpd_check_name(c, buf,
								 sizeof(buf)),
			      smtpd_check_class(c), *text ? text :
			      "triggers DISCARD action");
		smtpd_check_event_log(c, "discard", sb->data);
		xfree(c->discard);
		c->discard = xstrdup(sb->data);
		strbuf_free(sb);
		return (SMTPD_CHECK_OK);
	}
	if (strcasecmp(word, "PREPEND") == 0) {
		/* A header "Name: value", one line. */
		n = strcspn(text, ": \t\r\n");
		if (n == 0 || text[n] != ':' || strpbrk(text, "\r\n")) {
			log_warn("%s: bad PREPEND header \"%s\"", source, text);
			return (SMTPD_CHECK_DUNNO);
		}
		if (c->stage == SMTPD_STAGE_EOD) {
			log_warn("%s: PREPEND is not possible at the end of "
				 "data", source);
			return (SMTPD_CHECK_DUNNO);
		}
		if (c->prepend == NULL)
			c->prepend = strbuf_new(128, 0);
		strbuf_printf(c->prepend, "%s\r\n", text);
		return (SMTPD_CHECK_DUNNO);
	}
	if (strcasecmp(word, "WARN") == 0) {
		smtpd_check_event_log(c, "warn", *text ? text : "WARN");
		return (SMTPD_CHECK_DUNNO);
	}
	/* XXX Postfix also takes restriction names here (classes). */
	log_warn("%s: unknown access action \"%s\"", source, word);
	strbuf_sets(c->reply, SMTPD_REPLY_CONFIG);
	return (SMTPD_CHECK_REJECT);
}

/* smtpd_check_table - one lookup; 1 found (*value), 0, -1 retry */
static int
smtpd_check_table(struct smtpd_rst *r, const char *key, const char **value)
{
	int     ret = map_lookup(r->map, key, value);

	if (ret == MAP_FOUND)
		return (1);
	if (ret == MAP_RETRY)
		log_warn("%s: table lookup failed for \"%s\"", map_spec(r->map),
			 key);
	return (ret == MAP_RETRY ? -1 : 0);
}

/* smtpd_check_domain_keys - a domain, then its parents */
static int
smtpd_check_domain_keys(struct smtpd_rst *r, const char *domain,
			const char **value)
{
	const char *cp;
	int     ret;

	for (cp = domain; cp && *cp; cp = strchr(cp + 1, '.')) {
		if (*cp == '.')
			cp++;
		if ((ret = smtpd_check_table(r, cp, value)) != 0)
			return (ret);
	}
	return (0);
}

/* smtpd_check_access - check_{client,helo,sender,recipient}_access */
static int
smtpd_check_access(struct smtpd_check *c, struct smtpd_rst *r)
{
	struct smtpd_session *s = c->s;
	const char *value = NULL;
	const char *addr;
	const char *at;
	char   *key;
	char   *cp;
	int     ret = 0;

	switch (r->verb) {
	case RST_CLIENT_ACCESS:
		/* The name (and parents), then the address and its nets. */
		if (strcmp(s->name, "unknown") != 0)
			ret = smtpd_check_domain_keys(r, s->name, &value);
		if (ret == 0 && !s->local) {
			key = xstrdup(s->addr);
			for (;;) {
				if ((ret = smtpd_check_table(r, key, &value)))
					break;
				if ((cp = strrchr(key, strchr(key, ':') ? ':' :
						  '.')) == NULL || cp == key)
					break;
				*cp = 0;
			}
			xfree(key);
		}
		break;
	case RST_HELO_ACCESS:
		if (s->helo)
			ret = smtpd_check_domain_keys(r, s->helo, &value);
		break;
	default:
		addr = r->verb == RST_SENDER_ACCESS ? s->sender : c->rcpt;
		if (addr == NULL)
			return (SMTPD_CHECK_DUNNO);
		if (*addr == 0) {
			/* smtpd_null_access_lookup_key, as Postfix. */
			ret = smtpd_check_table(r, "<>", &value);
			break;
		}
		/* user@domain, domain and parents, user@ (access(5)). */
		if ((ret = smtpd_check_table(r, addr, &value)) != 0)
			break;
		if ((at = strrchr(addr, '@')) == NULL)
			break;
		if ((ret = smtpd_check_domain_keys(r, at + 1, &value)) != 0)
			break;
		key = xstrndup(addr, at - addr + 1);
		ret = smtpd_check_table(r, key, &value);
		xfree(key);
		break;
	}
	if (ret < 0) {
		return (smtpd_check_reject(c, 451, "4.3.0",
					   "Temporary lookup failure"));
	}
	if (ret == 0)
		return (SMTPD_CHECK_DUNNO);
	return (smtpd_check_action(c, value, map_spec(r->map)));
}

/* smtpd_check_fprint - a fingerprint lookup: cert, then public key */
static int
smtpd_check_fprint(struct map *map, const struct tls_peer_info *p,
		   const char **value)
{
	const char *keys[2];
	int     ret = MAP_NOTFOUND;
	int     i;

	keys[0] = p->cert_fp;
	keys[1] = p->pkey_fp;
	for (i = 0; i < 2 && ret == MAP_NOTFOUND; i++)
		if (*keys[i])
			ret = map_lookup(map, keys[i], value);
	if (ret == MAP_RETRY)
		log_warn("%s: table lookup failed for \"%s\"", map_spec(map),
			 p->cert_fp);
	return (ret == MAP_FOUND ? 1 : ret == MAP_RETRY ? -1 : 0);
}

/* smtpd_check_ccerts - permit_tls_clientcerts, _all_clientcerts */
static int
smtpd_check_ccerts(struct smtpd_check *c, const struct smtpd_rst *r)
{
	const struct tls_peer_info *p = c->s->ccert;
	const char *value;
	int     ret;

	if (p == NULL)
		return (SMTPD_CHECK_DUNNO);
	if (r->verb == RST_PERMIT_ALL_CCERTS)
		return (p->trusted ? SMTPD_CHECK_OK : SMTPD_CHECK_DUNNO);
	/* A listed fingerprint is the trust: no CA needed (Postfix). */
	if (smtpd_relay_ccerts == NULL)
		return (SMTPD_CHECK_DUNNO);
	if ((ret = smtpd_check_fprint(smtpd_relay_ccerts, p, &value)) < 0)
		return (smtpd_check_reject(c, 451, "4.3.0",
					   "Temporary lookup failure"));
	if (ret == 0)
		return (SMTPD_CHECK_DUNNO);
	log_info("%s[%s]: relay_clientcerts: permitted by fingerprint %s",
		 c->s->name, c->s->addr, p->cert_fp);
	return (SMTPD_CHECK_OK);
}

/* smtpd_check_ccert_access - check_ccert_access: by fingerprint */
static int
smtpd_check_ccert_access(struct smtpd_check *c, struct smtpd_rst *r)
{
	const struct tls_peer_info *p = c->s->ccert;
	const char *value = NULL;
	int     ret;

	if (p == NULL)
		return (SMTPD_CHECK_DUNNO);
	c->ccert = 1;
	if ((ret = smtpd_check_fprint(r->map, p, &value)) < 0)
		ret = smtpd_check_reject(c, 451, "4.3.0",
					 "Temporary lookup failure");
	else if (ret == 0)
		ret = SMTPD_CHECK_DUNNO;
	else
		ret = smtpd_check_action(c, value, map_spec(r->map));
	c->ccert = 0;
	return (ret);
}

/* smtpd_check_owners - does "login" own "sender"? 1, 0 (no), -1 retry */
static int
smtpd_check_owners(const char *sender, const char *login, int *listed)
{
	const char *value = NULL;
	const char *at = strrchr(sender, '@');
	char   *key;
	char   *copy;
	char   *save;
	char   *word;
	int     ret;

	/* user@domain, then @domain (Postfix's smtpd_sender_login_maps). */
	ret = map_lookup(smtpd_login_map, sender, &value);
	if (ret == MAP_NOTFOUND && at != NULL) {
		key = xstrdup(at);
		ret = map_lookup(smtpd_login_map, key, &value);
		xfree(key);
	}
	if (ret == MAP_RETRY) {
		log_warn("%s: table lookup failed for \"%s\"",
			 map_spec(smtpd_login_map), sender);
		return (-1);
	}
	*listed = (ret == MAP_FOUND);
	if (!*listed || login == NULL)
		return (0);
	copy = xstrdup(value);
	ret = 0;
	for (word = strtok_r(copy, " \t,", &save); word != NULL && !ret;
	     word = strtok_r(NULL, " \t,", &save))
		ret = strcasecmp(word, login) == 0;
	xfree(copy);
	return (ret);
}

/* smtpd_check_login - reject_*sender_login_mismatch */
static int
smtpd_check_login(struct smtpd_check *c, const struct smtpd_rst *r)
{
	struct smtpd_session *s = c->s;
	const char *login = smtpd_sasl_username(s);
	const char *why = NULL;
	int     listed;
	int     ret;

	if (s->sender == NULL || *s->sender == 0)
		return (SMTPD_CHECK_DUNNO);
	if ((r->verb == RST_AUTH_LOGIN_MISMATCH && login == NULL)
	    || (r->verb == RST_UNAUTH_LOGIN_MISMATCH && login != NULL))
		return (SMTPD_CHECK_DUNNO);
	if ((ret = smtpd_check_owners(s->sender, login, &listed)) < 0)
		return (smtpd_check_reject(c, 451, "4.3.0",
					   "Temporary lookup failure"));
	/* Logged in: the table must give the address to this login. */
	if (login != NULL && ret == 0)
		why = "not owned by user";
	/* Not logged in: an address that has an owner needs a login. */
	if (login == NULL && listed)
		why = "not logged in";
	if (why == NULL)
		return (SMTPD_CHECK_DUNNO);
	/* Always about the sender, whichever list it is in. */
	strbuf_reset(c->reply);
	strbuf_printf(c->reply, "553 5.7.1 <%s>: Sender address rejected: %s%s%s",
		      s->sender, why, login ? " " : "", login ? login : "");
	return (SMTPD_CHECK_REJECT);
}

/* smtpd_check_fqdn - a fully qualified domain name? */
static int
smtpd_check_fqdn(const char *domain)
{
	const char *cp;

	if (*domain == '[')
		return (1);			/* an address literal */
	if (strchr(domain, '.') == NULL || *domain == '.')
		return (0);
	for (cp = domain; *cp; cp++)
		if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '.'
		    && *cp != '_' && !((unsigned char) *cp & 0x80))
			return (0);
	return (cp[-1] != '.');
}

/* smtpd_check_nonfqdn - reject_non_fqdn_sender/recipient */
static int
smtpd_check_nonfqdn(struct smtpd_check *c, const char *addr)
{
	const char *at;

	if (addr == NULL || *addr == 0)
		return (SMTPD_CHECK_DUNNO);	/* <>, or no recipient here */
	if ((at = strrchr(addr, '@')) != NULL && smtpd_check_fqdn(at + 1))
		return (SMTPD_CHECK_DUNNO);
	return (smtpd_check_reject(c, 504, "5.5.2",
				   "need fully-qualified address"));
}

/* smtpd_check_resume - an asynchronous restriction has its result */
static void
smtpd_check_resume(struct smtpd_check *c, int ret)
{
	struct smtpd_session *s = c->s;

	if (ret == SMTPD_CHECK_REJECT) {
		ret = smtpd_check_final(c, ret);
	} else {
		if (ret == SMTPD_CHECK_OK)
			c->stages &= ~SMTPD_STAGE_BIT(c->stage);
		else
			c->index++;
		ret = smtpd_check_loop(c);
	}
	if (ret != SMTPD_CHECK_WAIT)
		c->done(s, ret);
}

/* smtpd_check_rbl_cb - the DNS answer for reject_rbl_client */
static void
smtpd_check_rbl_cb(struct dns_result *res, void *ctx)
{
	struct smtpd_check *c = ctx;
	struct smtpd_rst *r = &smtpd_lists[c->stage].items[c->index];
	const char *what;
	size_t  i;
	int     ret = SMTPD_CHECK_DUNNO;

	c->dns = NULL;
	if (res->status == DNS_TEMPFAIL)
		log_warn("%s: RBL lookup error: %s", res->name, res->reason);
	for (i = 0; res->status == DNS_OK && i < res->count; i++) {
		if (res->addrs[i].family != AF_INET)
			continue;
		if (r->filter && strcmp(r->filter, res->addrs[i].addr) != 0)
			continue;
		what = r->verb == RST_RBL_CLIENT ? "Client host" :
			"Sender address";
		strbuf_reset(c->reply);
		strbuf_printf(c->reply, "554 5.7.1 Service unavailable; %s "
			      "[%s] blocked using %s", what,
			      r->verb == RST_RBL_CLIENT ? c->s->addr :
			      strrchr(c->s->sender, '@') + 1, r->arg);
		ret = SMTPD_CHECK_REJECT;
		break;
	}
	dns_result_free(res);
	smtpd_check_resume(c, ret);
}

/* smtpd_check_rbl - reject_rbl_client, reject_rhsbl_sender: ask DNS */
static int
smtpd_check_rbl(struct smtpd_check *c, struct smtpd_rst *r)
{
	struct smtpd_session *s = c->s;
	struct strbuf *q;
	unsigned char a[16];
	const char *at;
	int     i;

	q = strbuf_new(128, 0);
	if (r->verb == RST_RBL_CLIENT) {
		/* Reversed octets (IPv4) or nibbles (IPv6), then the zone. */
		if (s->local) {
			strbuf_free(q);
			return (SMTPD_CHECK_DUNNO);
		}
		if (inet_pton(AF_INET, s->addr, a) == 1) {
			strbuf_printf(q, "%u.%u.%u.%u", a[3], a[2], a[1], a[0]);
		} else if (inet_pton(AF_INET6, s->addr, a) == 1) {
			for (i = 15; i >= 0; i--)
				strbuf_printf(q, "%s%x.%x", i < 15 ? "." : "",
					      a[i] & 15, a[i] >> 4);
		} else {
			strbuf_free(q);
			return (SMTPD_CHECK_DUNNO);
		}
	} else {
		if (s->sender == NULL || (at = strrchr(s->sender, '@')) == NULL
		    || at[1] == 0 || at[1] == '[') {
			strbuf_free(q);
			return (SMTPD_CHECK_DUNNO);
		}
		strbuf_appends(q, at + 1);
	}
	strbuf_printf(q, ".%s", r->arg);
	c->dns = dns_lookup_host(q->data, smtpd_check_rbl_cb, c);
	strbuf_free(q);
	return (SMTPD_CHECK_WAIT);
}

/* smtpd_check_domain_cb - the DNS answer for reject_unknown_sender_domain */
static void
smtpd_check_domain_cb(struct dns_result *res, void *ctx)
{
	struct smtpd_check *c = ctx;
	const char *domain = strrchr(c->s->sender, '@') + 1;
	int     ret = SMTPD_CHECK_DUNNO;
	struct strbuf *save;

	c->dns = NULL;
	switch (res->status) {
	case DNS_OK:
		break;
	case DNS_NOTFOUND:
		ret = smtpd_check_reject(c, 450, "4.1.8", "Domain not found");
		break;
	case DNS_NULLMX:
		strbuf_reset(c->dip);
		save = strbuf_new(128, 0);
		strbuf_printf(save, "Domain %s does not accept mail (nullMX)",
			      domain);
		ret = smtpd_check_reject(c, 550, "5.7.27", save->data);
		strbuf_free(save);
		break;
	default:
		/* unknown_address_tempfail_action = defer_if_permit */
		log_warn("%s: sender domain lookup: %s", domain, res->reason);
		if (c->dip->len == 0) {
			save = c->reply;
			c->reply = c->dip;
			smtpd_check_reject(c, 450, "4.1.8", "Domain not found");
			c->reply = save;
		}
		break;
	}
	dns_result_free(res);
	smtpd_check_resume(c, ret);
}

/* smtpd_check_policy_cb - the policy server answered (NULL: it failed) */
static void
smtpd_check_policy_cb(const char *action, void *ctx)
{
	struct smtpd_check *c = ctx;
	struct smtpd_rst *r = &smtpd_lists[c->stage].items[c->index];

	c->preq = NULL;
	smtpd_check_resume(c, smtpd_check_action(c, action ? action :
						 smtpd_policy_default,
						 r->arg));
}

/* smtpd_check_policy - check_policy_service: ask, answer later */
static int
smtpd_check_policy(struct smtpd_check *c, struct smtpd_rst *r)
{
	static const char *const states[SMTPD_STAGE_COUNT] = {
		"RCPT", "RCPT", "RCPT", "RCPT", "RCPT", "DATA",
		"END-OF-MESSAGE",
	};
	struct smtpd_session *s = c->s;
	struct strbuf *q = strbuf_new(512, 0);
	const char *rcpt = c->rcpt;

	if (rcpt == NULL && s->nrcpt == 1)
		rcpt = s->rcpts[0];
	strbuf_printf(q, "request=smtpd_access_policy\n"
		      "protocol_state=%s\nprotocol_name=%s\n"
		      "helo_name=%s\nqueue_id=%s\nsender=%s\nrecipient=%s\n"
		      "recipient_count=%zu\nclient_address=%s\n"
		      "client_name=%s\nreverse_client_name=%s\n"
		      "instance=%lx.%lx.%lx\nsize=%lld\n"
		      "sasl_method=%s\nsasl_username=%s\nsasl_sender=\n",
		      states[c->stage], smtpd_protocol(s),
		      s->helo ? s->helo : "", s->queue_id,
		      s->sender ? s->sender : "", rcpt ? rcpt : "",
		      s->nrcpt, s->local ? "" : s->addr, s->name, s->name,
		      (unsigned long) getpid(), (unsigned long) (uintptr_t) s,
		      c->transaction, s->declared_size > 0 ?
		      s->declared_size : 0,
		      smtpd_sasl_username(s) ? smtpd_sasl_method(s) : "",
		      smtpd_sasl_username(s) ? smtpd_sasl_username(s) : "");
	smtpd_tls_policy(s, q);
	strbuf_appends(q, "etrn_domain=\nstress=\n\n");
	c->preq = smtpd_policy_query(r->policy, q->data,
				     smtpd_check_policy_cb, c);
	strbuf_free(q);
	if (c->preq == NULL)
		return (smtpd_check_action(c, smtpd_policy_default, r->arg));
	return (SMTPD_CHECK_WAIT);
}

/* smtpd_check_one - evaluate one restriction */
static int
smtpd_check_one(struct smtpd_check *c, struct smtpd_rst *r)
{
	struct smtpd_session *s = c->s;
	const char *at;
	int     ret;

	switch (r->verb) {
	case RST_PERMIT:
		return (SMTPD_CHECK_OK);
	case RST_REJECT:
		return (smtpd_check_reject(c, 554, "5.7.1", "Access denied"));
	case RST_DEFER:
		return (smtpd_check_reject(c, 450, "4.7.1",
					   "Try again later"));
	case RST_DEFER_IF_PERMIT:
		return (smtpd_check_action(c, "DEFER_IF_PERMIT", r->text));
	case RST_DEFER_IF_REJECT:
		c->dir = 1;
		return (SMTPD_CHECK_DUNNO);
	case RST_PERMIT_MYNETWORKS:
		/* A unix-socket client counts as trusted (smtpd_session.c). */
		return (s->trusted > 0 ? SMTPD_CHECK_OK : SMTPD_CHECK_DUNNO);
	case RST_UNAUTH_DEST:
	case RST_DEFER_UNAUTH_DEST:
		if (c->rcpt == NULL)
			return (SMTPD_CHECK_DUNNO);
		ret = smtpd_check_unauth_dest(s, c->rcpt, c->pflags, c->reply);
		if (ret == SMTPD_CHECK_REJECT && r->verb ==
		    RST_DEFER_UNAUTH_DEST && c->reply->data[0] == '5') {
			c->reply->data[0] = '4';
			c->reply->data[4] = '4';
		}
		return (ret);
	case RST_UNAUTH_PIPELINING:
		if (!s->ill_pipelining)
			return (SMTPD_CHECK_DUNNO);
		return (smtpd_check_reject(c, 503, "5.5.0", "Improper use of "
					   "SMTP command pipelining"));
	case RST_CLIENT_ACCESS:
	case RST_HELO_ACCESS:
	case RST_SENDER_ACCESS:
	case RST_RCPT_ACCESS:
		return (smtpd_check_access(c, r));
	case RST_NONFQDN_SENDER:
		return (smtpd_check_nonfqdn(c, s->sender));
	case RST_NONFQDN_RCPT:
		return (smtpd_check_nonfqdn(c, c->rcpt));
	case RST_UNKNOWN_SENDER_DOMAIN:
		if (s->sender == NULL || (at = strrchr(s->sender, '@')) == NULL
		    || at[1] == 0 || at[1] == '[')
			return (SMTPD_CHECK_DUNNO);
		c->dns = dns_lookup_mx(at + 1, smtpd_check_domain_cb, c);
		return (SMTPD_CHECK_WAIT);
	case RST_RBL_CLIENT:
	case RST_RHSBL_SENDER:
		return (smtpd_check_rbl(c, r));
	case RST_POLICY:
		return (smtpd_check_policy(c, r));
	case RST_PLAINTEXT:
		if (s->tls_info != NULL)
			return (SMTPD_CHECK_DUNNO);
		return (smtpd_check_reject(c, smtpd_plaintext_code,
					   smtpd_plaintext_code >= 500 ?
					   "5.7.1" : "4.7.1",
					   "Session encryption is required"));
	case RST_PERMIT_CCERTS:
	case RST_PERMIT_ALL_CCERTS:
		return (smtpd_check_ccerts(c, r));
	case RST_CCERT_ACCESS:
		return (smtpd_check_ccert_access(c, r));
	case RST_PERMIT_SASL:
		return (smtpd_sasl_username(s) ? SMTPD_CHECK_OK :
			SMTPD_CHECK_DUNNO);
	case RST_LOGIN_MISMATCH:
	case RST_AUTH_LOGIN_MISMATCH:
	case RST_UNAUTH_LOGIN_MISMATCH:
		return (smtpd_check_login(c, r));
	default:
		return (smtpd_check_config(c, r));
	}
}

/* smtpd_check_final - the verdict, after defer_if_permit/reject */
static int
smtpd_check_final(struct smtpd_check *c, int ret)
{
	if (ret == SMTPD_CHECK_OK && c->dip->len > 0) {
		strbuf_sets(c->reply, c->dip->data);
		ret = SMTPD_CHECK_REJECT;
	} else if (ret == SMTPD_CHECK_REJECT && c->dir
		   && c->reply->data[0] == '5') {
		c->reply->data[0] = '4';
		c->reply->data[1] = '5';
		c->reply->data[2] = '0';
		if (c->reply->len > 4 && c->reply->data[4] == '5')
			c->reply->data[4] = '4';
	}
	return (ret);
}

/* smtpd_check_loop - run the lists from where they stand */
static int
smtpd_check_loop(struct smtpd_check *c)
{
	struct smtpd_rlist *list;
	int     ret;

	for (;;) {
		while (c->stage < SMTPD_STAGE_COUNT
		       && !(c->stages & SMTPD_STAGE_BIT(c->stage))) {
			c->stage++;
			c->index = 0;
		}
		if (c->stage >= SMTPD_STAGE_COUNT)
			return (smtpd_check_final(c, SMTPD_CHECK_OK));
		list = &smtpd_lists[c->stage];
		if (c->index >= list->count) {
			c->stages &= ~SMTPD_STAGE_BIT(c->stage);
			continue;
		}
		ret = smtpd_check_one(c, &list->items[c->index]);
		if (ret == SMTPD_CHECK_WAIT)
			return (ret);
		if (ret == SMTPD_CHECK_REJECT)
			return (smtpd_check_final(c, ret));
		if (ret == SMTPD_CHECK_OK)
			c->stages &= ~SMTPD_STAGE_BIT(c->stage);
		else
			c->index++;
	}
}

/* smtpd_check_run - evaluate the lists of some stages */
int
smtpd_check_run(struct smtpd_session *s, int stages, const char *cmd,
		const char *rcpt, int pflags, smtpd_check_done done)
{
	struct smtpd_check *c;
	int     ret;

	if (smtpd_check_empty(stages))
		return (SMTPD_CHECK_OK);
	c = smtpd_check_get(s);
	c->stages = stages;
	c->stage = 0;
	c->index = 0;
	c->cmd = cmd;
	c->rcpt = rcpt;
	c->pflags = pflags;
	c->done = done;
	c->dir = 0;
	strbuf_reset(c->reply);
	strbuf_reset(c->dip);
	ret = smtpd_check_loop(c);
	return (ret);
}

/* smtpd_check_reply - the reply line of the last reject */
const char *
smtpd_check_reply(struct smtpd_session *s)
{
	return (s->check ? s->check->reply->data : SMTPD_REPLY_CONFIG);
}

/* smtpd_check_hold - HOLD reason of this transaction, or NULL */
const char *
smtpd_check_hold(struct smtpd_session *s)
{
	return (s->check ? s->check->hold : NULL);
}

/* smtpd_check_discard - DISCARD reason of this transaction, or NULL */
const char *
smtpd_check_discard(struct smtpd_session *s)
{
	return (s->check ? s->check->discard : NULL);
}

/* smtpd_check_prepend - headers to put first, or NULL */
const char *
smtpd_check_prepend(struct smtpd_session *s)
{
	if (s->check == NULL || s->check->prepend == NULL
	    || s->check->prepend->len == 0)
		return (NULL);
	return (s->check->prepend->data);
}

/* smtpd_check_reset - a new mail transaction */
void
smtpd_check_reset(struct smtpd_session *s)
{
	struct smtpd_check *c = s->check;

	if (c == NULL)
		return;
	c->hold = xfree(c->hold);
	c->discard = xfree(c->discard);
	c->prepend = strbuf_free(c->prepend);
	c->transaction++;
}

/* smtpd_check_free - the session ends */
void
smtpd_check_free(struct smtpd_session *s)
{
	struct smtpd_check *c = s->check;

	if (c == NULL)
		return;
	dns_cancel(c->dns);
	if (c->preq)
		smtpd_policy_cancel(c->preq);
	smtpd_check_reset(s);
	strbuf_free(c->reply);
	strbuf_free(c->dip);
	xfree(c);
	s->check = NULL;
}
