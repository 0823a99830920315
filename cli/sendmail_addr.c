/*
 * sendmail_addr - addresses from the command line and from headers
 *
 * SYNOPSIS
 *	#include "sendmail.h"
 *
 *	char	*sendmail_addr_qualify(const char *addr)
 *	int	sendmail_addr_list(const char *text, size_t len,
 *			struct sendmail_env *env)
 *	int	sendmail_env_add(struct sendmail_env *env, const char *addr)
 *	void	sendmail_env_clear(struct sendmail_env *env)
 *
 * DESCRIPTION
 *	sendmail_addr_qualify() turns one address as a user writes it into
 *	an envelope address: surrounding white space and one pair of angle
 *	brackets go, "<>" becomes the empty (null) address, and a bare
 *	local name ("alice") gets "@$myorigin" appended, as Postfix's
 *	append_at_myorigin does. It returns a new string (caller frees),
 *	or NULL when the address has control characters.
 *
 *	sendmail_addr_list() parses an RFC 5322 address list (a To:, Cc:
 *	or Bcc: header value, folded or not, or a command-line argument):
 *	"a@b, Name <c@d>, "Quoted, Name" <e@f> (comment), group: g@h, i@j;"
 *	and adds each address, qualified, to env (empty ones, "<>" and
 *	duplicates are skipped). Source routes ("<@x,@y:u@z>") are dropped to "u@z". It
 *	returns the number of addresses added, or -1 when the text has
 *	control characters (nothing is added then) or the recipient limit
 *	was reached.
 *
 *	sendmail_env_add() appends a copy of one address to the recipient
 *	list, unless the same address is in it already (as Postfix's
 *	duplicate filter, so "-t a@x" and "To: a@x" give one copy); it
 *	returns 1 when the address was added, 0 for a duplicate;
 *	sendmail_env_clear() frees the sender and the recipients.
 *
 * SEE ALSO
 *	RFC 5322 section 3.4, sendmail(1)
 */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "xmalloc.h"

#include "sendmail.h"

/* sendmail_env_add - one more recipient, unless it is there already */
int
sendmail_env_add(struct sendmail_env *env, const char *addr)
{
	size_t  i;

	/* XXX Quadratic; fine for SENDMAIL_RCPT_MAX, not for much more. */
	for (i = 0; i < env->nrcpt; i++)
		if (strcmp(env->rcpts[i], addr) == 0)
			return (0);
	if (env->nrcpt == env->cap) {
		env->cap = env->cap ? env->cap * 2 : 8;
		env->rcpts = xreallocarray(env->rcpts, env->cap,
					   sizeof(*env->rcpts));
	}
	env->rcpts[env->nrcpt++] = xstrdup(addr);
	return (1);
}

/* sendmail_env_clear - free the sender and the recipients */
void
sendmail_env_clear(struct sendmail_env *env)
{
	size_t  i;

	for (i = 0; i < env->nrcpt; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	env->rcpts = NULL;
	env->nrcpt = env->cap = 0;
	env->sender = xfree(env->sender);
}

/* sendmail_addr_qualify - an address as the envelope wants it */
char   *
sendmail_addr_qualify(const char *addr)
{
	const char *start = addr;
	const char *end = addr + strlen(addr);
	const char *cp;
	char   *out;
	size_t  len;

	for (cp = addr; *cp; cp++)
		if ((unsigned char) *cp < 32 || *cp == 127)
			return (NULL);
	while (start < end && isspace((unsigned char) *start))
		start++;
	while (end > start && isspace((unsigned char) end[-1]))
		end--;
	if (end - start >= 2 && *start == '<' && end[-1] == '>') {
		start++;
		end--;
	}
	len = (size_t) (end - start);
	if (len == 0)
		return (xstrdup(""));
	if (memchr(start, '@', len) != NULL || *sendmail_myorigin == 0)
		return (xstrndup(start, len));
	out = xmalloc(len + strlen(sendmail_myorigin) + 2);
	memcpy(out, start, len);
	out[len] = '@';
	strcpy(out + len + 1, sendmail_myorigin);
	return (out);
}

/* sendmail_addr_emit - the end of one mailbox: add its address */
static int
sendmail_addr_emit(struct strbuf *buf, struct strbuf *angle, int *have_angle,
		   struct sendmail_env *env)
{
	struct strbuf *src = *have_angle ? angle : buf;
	char   *addr;
	char   *at;
	int     ret = 0;

	*have_angle = 0;
	/* A source route "@a,@b:user@domain" is obsolete: keep the end. */
	if (src->len > 0 && src->data[0] == '@'
	    && (at = strchr(src->data, ':')) != NULL)
		strbuf_consume(src, (size_t) (at + 1 - src->data));
	if (src->len > 0) {
		if (env->nrcpt >= SENDMAIL_RCPT_MAX)
			ret = -1;
		else if ((addr = sendmail_addr_qualify(src->data)) == NULL)
			ret = -1;
		else {
			ret = *addr ? sendmail_env_add(env, addr) : 0;
			free(addr);
		}
	}
	strbuf_reset(buf);
	strbuf_reset(angle);
	return (ret);
}

/* sendmail_addr_list - the addresses of a header value or argument */
int
sendmail_addr_list(const char *text, size_t len, struct sendmail_env *env)
{
	struct strbuf *buf;
	struct strbuf *angle;
	struct strbuf *dst;
	const char *cp = text;
	const char *end = text + len;
	int     in_angle = 0;
	int     have_angle = 0;
	int     depth;
	int     count = 0;
	int     r;
	int     c;

	/* Control characters (other than folding white space): refused. */
	for (; cp < end; cp++)
		if (((unsigned char) *cp < 32 && *cp != '\t' && *cp != '\r'
		     && *cp != '\n') || *cp == 127)
			return (-1);
	buf = strbuf_new(128, 0);
	angle = strbuf_new(128, 0);
	for (cp = text; cp < end; cp++) {
		c = (unsigned char) *cp;
		dst = in_angle ? angle : buf;
		if (c == '"') {
			/* A quoted string, kept with its quotes. */
			strbuf_appendc(dst, c);
			for (cp++; cp < end && *cp != '"'; cp++) {
				if (*cp == '\\' && cp + 1 < end)
					strbuf_appendc(dst, *cp++);
				if (*cp != '\r' && *cp != '\n')
					strbuf_appendc(dst, *cp);
			}
			strbuf_appendc(dst, '"');
			if (cp >= end)
				break;
			continue;
		}
		if (c == '(') {
			/* A comment, perhaps nested: white space. */
			for (depth = 1, cp++; cp < end && depth > 0; cp++) {
				if (*cp == '\\' && cp + 1 < end)
					cp++;
				else if (*cp == '(')
					depth++;
				else if (*cp == ')')
					depth--;
			}
			cp--;
			continue;
		}
		if (isspace(c))
			continue;		/* only inside quotes it matters */
		if (in_angle) {
			if (c == '>')
				in_angle = 0;
			else
				strbuf_appendc(angle, c);
			continue;
		}
		if (c == '<') {
			in_angle = have_angle = 1;
			strbuf_reset(angle);
			continue;
		}
		if (c == ':') {
			/* "group:" - what came before is the group's name. */
			strbuf_reset(buf);
			continue;
		}
		if (c == ',' || c == ';') {
			if ((r = sendmail_addr_emit(buf, angle, &have_angle,
						    env)) < 0)
				count = -1;
			else if (count >= 0)
				count += r;
			continue;
		}
		strbuf_appendc(buf, c);
	}
	if ((r = sendmail_addr_emit(buf, angle, &have_angle, env)) < 0)
		count = -1;
	else if (count >= 0)
		count += r;
	strbuf_free(buf);
	strbuf_free(angle);
	return (count);
}
