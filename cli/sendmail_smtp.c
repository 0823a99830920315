/*
 * sendmail_smtp - sendmail -bs: SMTP on standard input and output
 *
 * SYNOPSIS
 *	#include "sendmail.h"
 *
 *	int	sendmail_smtp(struct sendmail_env *env)
 *
 * DESCRIPTION
 *	sendmail_smtp() speaks a small SMTP server dialogue on standard
 *	input and output, for programs that submit with "sendmail -bs":
 *	a 220 greeting, then EHLO/HELO, MAIL FROM, RCPT TO, DATA (dot
 *	unstuffing, "." ends it), RSET, NOOP and QUIT. Input lines may end
 *	in LF or CRLF; replies end in CRLF. Each message is handed to
 *	cleanup at DATA time (sendmail_submit.c) exactly as sendmail -bm
 *	does, and the reply to the final "." is cleanup's verdict: "250
 *	2.0.0 Ok: queued as ID" only once the message is in the queue.
 *	MAIL FROM takes BODY=; other parameters are ignored. Bare local
 *	names are qualified with @$myorigin. env gives the -F full name
 *	and -B body type defaults. It returns EX_OK at QUIT or at the end
 *	of the input.
 *
 * DIAGNOSTICS
 *	SMTP replies only; a message aborted by the end of the input is
 *	not queued.
 *
 * SEE ALSO
 *	sendmail(1), RFC 5321
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "strbuf.h"
#include "xmalloc.h"

#include "sendmail.h"

#define SM_SMTP_CMD_MAX		2048	/* longest command line */

/* sendmail_smtp_reply - one reply line, flushed */
static void
sendmail_smtp_reply(const char *fmt, const char *arg)
{
	printf(fmt, arg);
	fputs("\r\n", stdout);
	if (fflush(stdout) == EOF)
		sendmail_fatal(EX_IOERR, "write standard output failed");
}

/* sendmail_smtp_verb - does the command start with this verb? */
static int
sendmail_smtp_verb(const char *line, const char *verb)
{
	size_t  len = strlen(verb);

	return (strncasecmp(line, verb, len) == 0
		&& (line[len] == 0 || line[len] == ' '));
}

/* sendmail_smtp_path - the address of "FROM:<a> ..." / "TO:<a> ..." */
static char *
sendmail_smtp_path(const char *arg, const char *prefix, const char **params)
{
	size_t  len = strlen(prefix);
	const char *start;
	const char *end;
	char   *raw;
	char   *addr;

	if (strncasecmp(arg, prefix, len) != 0)
		return (NULL);
	for (start = arg + len; *start == ' '; start++)
		 /* void */ ;
	if (*start == '<') {
		if ((end = strchr(start, '>')) == NULL)
			return (NULL);
		raw = xstrndup(start + 1, (size_t) (end - start - 1));
		end++;
	} else {
		for (end = start; *end && *end != ' '; end++)
			 /* void */ ;
		raw = xstrndup(start, (size_t) (end - start));
	}
	while (*end == ' ')
		end++;
	*params = end;
	addr = sendmail_addr_qualify(raw);
	free(raw);
	return (addr);
}

/* sendmail_smtp_param - the value of NAME=value among the parameters */
static char *
sendmail_smtp_param(const char *params, const char *name)
{
	size_t  len = strlen(name);
	const char *cp = params;

	while (*cp) {
		while (*cp == ' ')
			cp++;
		if (strncasecmp(cp, name, len) == 0)
			return (xstrndup(cp + len, strcspn(cp + len, " ")));
		cp += strcspn(cp, " ");
	}
	return (NULL);
}

/* sendmail_smtp_data - read the message after 354 and submit it */
static int
sendmail_smtp_data(struct sendmail_env *env, struct strbuf *line)
{
	struct sendmail_sub sub;
	const char *data;
	size_t  len;
	int     opened;
	int     at_bol = 1;
	int     eol;

	opened = sendmail_sub_open(&sub, env) == 0;
	if (!opened) {
		sendmail_smtp_reply(sub.status == 5 ? "554 %s" : "451 %s",
				    sub.reason);
		sendmail_sub_free(&sub);
		return (0);
	}
	sendmail_smtp_reply("354 End data with <CR><LF>.<CR><LF>", NULL);
	for (;;) {
		if (sendmail_getline(stdin, line, &eol) < 0) {
			/* The client went away: no message. */
			sendmail_sub_free(&sub);
			return (-1);
		}
		data = line->data;
		len = line->len;
		if (at_bol && data[0] == '.') {
			if (eol && len == 1)
				break;
			data++;			/* dot unstuffing */
			len--;
		}
		sendmail_sub_write(&sub, data, len);
		if (eol)
			sendmail_sub_write(&sub, "\r\n", 2);
		at_bol = eol;
	}
	if (sendmail_sub_close(&sub) < 0)
		sendmail_smtp_reply(sub.status == 5 ? "554 %s" : "451 %s",
				    sub.reason);
	else
		sendmail_smtp_reply("250 2.0.0 Ok: queued as %s", sub.queue_id);
	sendmail_sub_free(&sub);
	return (0);
}

/* sendmail_smtp - the SMTP dialogue */
int
sendmail_smtp(struct sendmail_env *defaults)
{
	struct sendmail_env env;
	struct strbuf *line = strbuf_new(1024, SENDMAIL_LINE_MAX + 1);
	const char *params;
	char   *addr;
	char   *cmd;
	char   *body = NULL;
	int     have_mail = 0;
	int     eol;

	memset(&env, 0, sizeof(env));
	sendmail_smtp_reply("220 %s ESMTP Sendarix (sendmail -bs)",
			    sendmail_myhostname);
	while (sendmail_getline(stdin, line, &eol) == 0) {
		if (!eol || line->len > SM_SMTP_CMD_MAX) {
			/* Skip the rest of a long line. */
			while (!eol && sendmail_getline(stdin, line, &eol) == 0)
				 /* void */ ;
			sendmail_smtp_reply("500 5.5.2 Error: line too long",
					    NULL);
			continue;
		}
		cmd = line->data;
		if (sendmail_smtp_verb(cmd, "EHLO")) {
			printf("250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
			       "250 ENHANCEDSTATUSCODES\r\n",
			       sendmail_myhostname);
			fflush(stdout);
		} else if (sendmail_smtp_verb(cmd, "HELO")) {
			sendmail_smtp_reply("250 %s", sendmail_myhostname);
		} else if (sendmail_smtp_verb(cmd, "MAIL")) {
			if (have_mail) {
				sendmail_smtp_reply("503 5.5.1 Error: nested "
						    "MAIL command", NULL);
				continue;
			}
			if ((addr = sendmail_smtp_path(cmd + 4, " FROM:",
						       &params)) == NULL) {
				sendmail_smtp_reply("501 5.5.4 Syntax: MAIL "
						    "FROM:<address>", NULL);
				continue;
			}
			sendmail_env_clear(&env);
			env.sender = addr;
			free(body);
			body = NULL;
			body = sendmail_smtp_param(params, "BODY=");
			if (body && strcasecmp(body, "7BIT") != 0
			    && strcasecmp(body, "8BITMIME") != 0) {
				free(addr);
				env.sender = NULL;
				sendmail_smtp_reply("501 5.5.4 Bad BODY "
						    "parameter", NULL);
				continue;
			}
			if (body && strcasecmp(body, "8BITMIME") == 0)
				strcpy(body, "8BITMIME");
			else if (body)
				strcpy(body, "7BIT");
			env.body = body ? body : defaults->body;
			env.full_name = defaults->full_name;
			have_mail = 1;
			sendmail_smtp_reply("250 2.1.0 Ok", NULL);
		} else if (sendmail_smtp_verb(cmd, "RCPT")) {
			if (!have_mail) {
				sendmail_smtp_reply("503 5.5.1 Error: need "
						    "MAIL command", NULL);
				continue;
			}
			if ((addr = sendmail_smtp_path(cmd + 4, " TO:",
						       &params)) == NULL
			    || *addr == 0) {
				free(addr);
				sendmail_smtp_reply("501 5.5.4 Syntax: RCPT "
						    "TO:<address>", NULL);
				continue;
			}
			if (env.nrcpt >= SENDMAIL_RCPT_MAX) {
				free(addr);
				sendmail_smtp_reply("452 4.5.3 Error: too "
						    "many recipients", NULL);
				continue;
			}
			sendmail_env_add(&env, addr);
			free(addr);
			sendmail_smtp_reply("250 2.1.5 Ok", NULL);
		} else if (sendmail_smtp_verb(cmd, "DATA")) {
			if (!have_mail || env.nrcpt == 0) {
				sendmail_smtp_reply("503 5.5.1 Error: need "
						    "RCPT command", NULL);
				continue;
			}
			if (sendmail_smtp_data(&env, line) < 0)
				break;
			sendmail_env_clear(&env);
			have_mail = 0;
		} else if (sendmail_smtp_verb(cmd, "RSET")) {
			sendmail_env_clear(&env);
			have_mail = 0;
			sendmail_smtp_reply("250 2.0.0 Ok", NULL);
		} else if (sendmail_smtp_verb(cmd, "NOOP")) {
			sendmail_smtp_reply("250 2.0.0 Ok", NULL);
		} else if (sendmail_smtp_verb(cmd, "QUIT")) {
			sendmail_smtp_reply("221 2.0.0 Bye", NULL);
			break;
		} else if (sendmail_smtp_verb(cmd, "VRFY")) {
			sendmail_smtp_reply("502 5.5.1 VRFY command is "
					    "disabled", NULL);
		} else {
			sendmail_smtp_reply("502 5.5.2 Error: command not "
					    "recognized", NULL);
		}
	}
	sendmail_env_clear(&env);
	free(body);
	strbuf_free(line);
	return (EX_OK);
}
