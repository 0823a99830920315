/*
 * smtp_cmd - the grammar of SMTP server commands
 *
 * SYNOPSIS
 *	#include "smtp_cmd.h"
 *
 *	int	smtp_cmd_split(char *line, size_t len, char **verb,
 *			size_t *verb_len, char **arg)
 *	int	smtp_cmd_helo(const char *arg)
 *	int	smtp_cmd_path(const char *arg, const char *keyword,
 *			int flags, char **addr, const char **params,
 *			const char **err)
 *	int	smtp_cmd_has_param(const char *params, const char *name)
 *	char	*smtp_cmd_param(char **cursor, char **value)
 *	int	smtp_cmd_size(const char *value, long long *size)
 *	int	smtp_cmd_bdat(const char *arg, unsigned long long *count,
 *			int *last)
 *
 * DESCRIPTION
 *	The syntax of what an SMTP client sends in command mode, as smtpd
 *	enforces it; the sandbox uses the same functions, so that the two
 *	servers have one grammar. What a verb means, and the replies, stay
 *	with the servers. Nothing here replies, logs or allocates except
 *	smtp_cmd_path()'s address.
 *
 *	smtp_cmd_split() splits a command line ("len" bytes, the CRLF
 *	removed, NUL-terminated) in place: leading blanks (SP, TAB) are
 *	skipped, the verb runs to the next blank, the argument starts after
 *	the blanks that follow, and trailing blanks are removed. The verb
 *	is NUL-terminated when an argument follows it; "verb_len" is its
 *	length either way. It returns 0, or -1 when the line holds a NUL
 *	byte (nothing is split then).
 *
 *	smtp_cmd_helo() checks a HELO/EHLO argument: 0, SMTP_CMD_HELO_EMPTY,
 *	or SMTP_CMD_HELO_BAD when a byte is outside printable ASCII (33 to
 *	126; one word, no blanks).
 *
 *	smtp_cmd_path() reads "keyword" ("FROM:" or "TO:", any case) and the
 *	<path> after it (smtp_addr_parse() with "flags", blanks allowed
 *	between), which must be followed by the end or a space. It returns
 *	the smtp_addr_parse() result bits (>= 0) with "addr" (the caller
 *	frees it) and "params", the ESMTP parameters with leading spaces
 *	skipped; or SMTP_CMD_PATH_SYNTAX, SMTP_CMD_PATH_BAD with a reason in
 *	"err", or SMTP_CMD_PATH_UTF8 when the path is good but holds UTF-8
 *	that "flags" did not allow (RFC 6531: 553 5.6.7).
 *
 *	smtp_cmd_has_param() says whether the parameter words after a path
 *	name "name" (any case, with or without a value): a quick look before
 *	the path is parsed (SMTPUTF8 changes what a path may hold). It
 *	looks at every word after a space, so it may say yes when the
 *	path itself holds " SMTPUTF8": only a hint for smtp_cmd_path()'s
 *	flags, which the full parameter check confirms.
 *
 *	smtp_cmd_param() takes the next parameter from a writable copy of
 *	the parameters ("*cursor" starts at the copy): parameters are
 *	separated by spaces; "keyword=value" is split at the first "=" with
 *	"value" pointing after it, or NULL without "=". NULL at the end.
 *
 *	smtp_cmd_size() reads a SIZE= value (RFC 1870): decimal digits
 *	only, at most SMTP_CMD_SIZE_DIGITS of them, no overflow. 0, or -1.
 *
 *	smtp_cmd_bdat() reads the argument of BDAT (RFC 3030): a chunk size
 *	in decimal digits (no overflow), then optionally spaces and "LAST"
 *	(any case). 0 with "count" and "last", or -1.
 *
 * SEE ALSO
 *	smtp_addr(3), RFC 5321, RFC 1869, RFC 1870, RFC 3030, RFC 6531
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_addr.h"
#include "xmalloc.h"

#include "smtp_cmd.h"

#define SMTP_CMD_BLANK(c)	((c) == ' ' || (c) == '\t')

/* smtp_cmd_split - verb and argument of a command line, in place */
int
smtp_cmd_split(char *line, size_t len, char **verb, size_t *verb_len,
	       char **arg)
{
	char   *end;
	char   *cp;
	size_t  n;

	if (memchr(line, 0, len) != NULL)
		return (-1);
	while (SMTP_CMD_BLANK(*line))
		line++;
	n = strcspn(line, " \t");
	cp = line + n;
	while (SMTP_CMD_BLANK(*cp))
		cp++;
	/* Trailing blanks are common; ignore them. */
	end = cp + strlen(cp);
	while (end > cp && SMTP_CMD_BLANK(end[-1]))
		*--end = 0;
	line[n] = 0;
	*verb = line;
	*verb_len = n;
	*arg = cp;
	return (0);
}

/* smtp_cmd_helo - HELO/EHLO argument syntax */
int
smtp_cmd_helo(const char *arg)
{
	const char *cp;

	if (*arg == 0)
		return (SMTP_CMD_HELO_EMPTY);
	for (cp = arg; *cp; cp++)
		if ((unsigned char) *cp < 33 || (unsigned char) *cp > 126)
			return (SMTP_CMD_HELO_BAD);
	return (0);
}

/* smtp_cmd_path - "FROM:<path> params" or "TO:<path> params" */
int
smtp_cmd_path(const char *arg, const char *keyword, int flags, char **addr,
	      const char **params, const char **err)
{
	size_t  len = strlen(keyword);
	const char *rest;
	int     ret;

	*addr = NULL;
	*params = NULL;
	*err = NULL;
	if (strncasecmp(arg, keyword, len) != 0)
		return (SMTP_CMD_PATH_SYNTAX);
	arg += len;
	while (*arg == ' ')
		arg++;
	if ((ret = smtp_addr_parse(arg, flags, addr, &rest, err)) < 0) {
		if (!(flags & SMTP_ADDR_UTF8)
		    && smtp_addr_parse(arg, flags | SMTP_ADDR_UTF8, addr,
				       &rest, err) >= 0) {
			*addr = xfree(*addr);
			return (SMTP_CMD_PATH_UTF8);
		}
		return (SMTP_CMD_PATH_BAD);
	}
	if (*rest != 0 && *rest != ' ') {
		*addr = xfree(*addr);
		*err = "junk after the address";
		return (SMTP_CMD_PATH_BAD);
	}
	while (*rest == ' ')
		rest++;
	*params = rest;
	return (ret);
}

/* smtp_cmd_has_param - does a parameter word name "name"? (a hint) */
int
smtp_cmd_has_param(const char *params, const char *name)
{
	size_t  len = strlen(name);
	const char *cp;

	for (cp = strchr(params, ' '); cp != NULL; cp = strchr(cp + 1, ' '))
		if (strncasecmp(cp + 1, name, len) == 0)
			return (1);
	return (0);
}

/* smtp_cmd_param - the next "keyword[=value]"; NULL at the end */
char   *
smtp_cmd_param(char **cursor, char **value)
{
	char   *param = *cursor;
	char   *end;

	*value = NULL;
	while (*param == ' ')
		param++;
	if (*param == 0) {
		*cursor = param;
		return (NULL);
	}
	end = param + strcspn(param, " ");
	*cursor = *end ? end + 1 : end;
	*end = 0;
	if ((*value = strchr(param, '=')) != NULL)
		*(*value)++ = 0;
	return (param);
}

/* smtp_cmd_size - a SIZE= value */
int
smtp_cmd_size(const char *value, long long *size)
{
	char   *end;

	if (*value < '0' || *value > '9'
	    || strlen(value) > SMTP_CMD_SIZE_DIGITS)
		return (-1);
	errno = 0;
	*size = strtoll(value, &end, 10);
	if (*end != 0 || errno != 0)
		return (-1);
	return (0);
}

/* smtp_cmd_bdat - "count [LAST]" */
int
smtp_cmd_bdat(const char *arg, unsigned long long *count, int *last)
{
	unsigned long long n = 0;
	const char *cp;

	for (cp = arg; *cp >= '0' && *cp <= '9'; cp++) {
		if (n > (~0ULL - 9) / 10)
			return (-1);
		n = n * 10 + (unsigned) (*cp - '0');
	}
	if (cp == arg || (*cp != 0 && *cp != ' '))
		return (-1);
	while (*cp == ' ')
		cp++;
	if (strcasecmp(cp, "LAST") == 0)
		*last = 1;
	else if (*cp == 0)
		*last = 0;
	else
		return (-1);
	*count = n;
	return (0);
}
