/*
 * smtp_cmd_fuzz - libFuzzer target for the SMTP server command grammar
 *
 * Build: make fuzz-build (tests/fuzz/NAME_fuzz.c against the libraries)
 *
 * The first input byte picks the address flags and the keyword (FROM:
 * or TO:); the rest is a command line, NULs and all. Checks beyond
 * "does not crash": a split line has a verb without blanks and an
 * argument without blanks at either end, both inside the line; a HELO
 * argument is accepted only when it is printable ASCII; a parsed path
 * gives an address that parses again, in brackets, to itself, and
 * parameters that start inside the argument with no space first; each
 * parameter is one word; an accepted SIZE or BDAT argument prints back
 * to a form that parses to the same values.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_addr.h"
#include "smtp_cmd.h"
#include "xmalloc.h"

/* fuzz_blank - SP or TAB */
static int
fuzz_blank(char c)
{
	return (c == ' ' || c == '\t');
}

/* fuzz_params - walk the parameters; check each */
static void
fuzz_params(const char *params)
{
	char   *copy = xstrdup(params);
	char   *cursor = copy;
	char   *param;
	char   *value;
	char    buf[64];
	long long size;

	while ((param = smtp_cmd_param(&cursor, &value)) != NULL) {
		if (*param == 0 && value == NULL)
			abort();
		if (strchr(param, ' ') != NULL || strchr(param, '=') != NULL)
			abort();
		if (value != NULL && strchr(value, ' ') != NULL)
			abort();
		if (value != NULL && smtp_cmd_size(value, &size) == 0) {
			long long again;

			if (size < 0 || strspn(value, "0123456789")
			    != strlen(value))
				abort();
			snprintf(buf, sizeof(buf), "%lld", size);
			if (smtp_cmd_size(buf, &again) < 0 || again != size)
				abort();
		}
	}
	xfree(copy);
}

/* fuzz_path - MAIL/RCPT argument checks */
static void
fuzz_path(const char *arg, const char *keyword, int flags)
{
	const char *params;
	const char *params2;
	const char *err;
	char   *addr;
	char   *addr2;
	char   *again;
	size_t  len;
	int     ret;
	int     ret2;

	ret = smtp_cmd_path(arg, keyword, flags, &addr, &params, &err);
	if (ret < 0) {
		if (addr != NULL || params != NULL)
			abort();
		if (ret == SMTP_CMD_PATH_UTF8 && (flags & SMTP_ADDR_UTF8))
			abort();
		return;
	}
	if (addr == NULL || params == NULL)
		abort();
	if (params < arg || params > arg + strlen(arg) || *params == ' ')
		abort();
	if (params > arg && *params != 0 && params[-1] != ' ')
		abort();
	fuzz_params(params);

	/* The address, in brackets, parses to itself. */
	len = strlen(addr);
	again = xmalloc(strlen(keyword) + len + 3);
	sprintf(again, "%s<%s>", keyword, addr);
	ret2 = smtp_cmd_path(again, keyword, flags & ~SMTP_ADDR_BARE_OK,
			     &addr2, &params2, &err);
	if (ret2 < 0 || strcmp(addr, addr2) != 0 || *params2 != 0)
		abort();
	xfree(addr2);
	xfree(again);
	xfree(addr);
}

/* fuzz_bdat - BDAT argument checks */
static void
fuzz_bdat(const char *arg)
{
	unsigned long long n;
	unsigned long long n2;
	int     last;
	int     last2;
	char    buf[64];

	if (smtp_cmd_bdat(arg, &n, &last) < 0)
		return;
	if (*arg < '0' || *arg > '9')
		abort();
	snprintf(buf, sizeof(buf), "%llu%s", n, last ? " LAST" : "");
	if (smtp_cmd_bdat(buf, &n2, &last2) < 0 || n2 != n || last2 != last)
		abort();
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *keyword;
	char   *line;
	char   *verb;
	char   *arg;
	char   *end;
	size_t  verb_len;
	size_t  len;
	size_t  i;
	int     flags;

	if (size < 1)
		return (0);
	flags = data[0] & (SMTP_ADDR_NULL_OK | SMTP_ADDR_POSTMASTER_OK
			   | SMTP_ADDR_UTF8 | SMTP_ADDR_BARE_OK);
	keyword = (data[0] & 0x80) ? "TO:" : "FROM:";
	len = size - 1;
	line = xmalloc(len + 1);
	memcpy(line, data + 1, len);
	line[len] = 0;
	end = line + len;

	if (smtp_cmd_split(line, len, &verb, &verb_len, &arg) < 0) {
		if (memchr(data + 1, 0, len) == NULL)
			abort();
		xfree(line);
		return (0);
	}
	if (verb < line || arg < verb || arg > end || verb + verb_len > end)
		abort();
	if (strlen(verb) != verb_len)
		abort();
	for (i = 0; i < verb_len; i++)
		if (fuzz_blank(verb[i]))
			abort();
	if (fuzz_blank(*arg) || (*arg && fuzz_blank(arg[strlen(arg) - 1])))
		abort();

	if (smtp_cmd_helo(arg) == 0)
		for (i = 0; arg[i]; i++)
			if ((unsigned char) arg[i] < 33
			    || (unsigned char) arg[i] > 126)
				abort();
	fuzz_path(arg, keyword, flags);
	(void) smtp_cmd_has_param(arg, "SMTPUTF8");
	fuzz_params(arg);
	fuzz_bdat(arg);
	xfree(line);
	return (0);
}
