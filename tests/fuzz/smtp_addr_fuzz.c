/*
 * smtp_addr_fuzz - libFuzzer target for the SMTP <path> parser
 *
 * Build: clang -fsanitize=fuzzer,address -Ilib tests/fuzz/smtp_addr_fuzz.c \
 *	lib/global/smtp_addr.c lib/util/strbuf.c lib/util/xmalloc.c lib/util/log.c
 *
 * The first input byte picks the flags; the rest is the argument (up to
 * the first NUL, as smtpd never passes a NUL). Checks beyond "does not
 * crash": a parsed address is a substring of the input, parses again
 * (in brackets) to itself, holds no control characters, is UTF-8 only
 * when allowed, and "rest" points inside the input.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_addr.h"
#include "strbuf.h"
#include "xmalloc.h"

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf *local;
	const char *rest;
	const char *rest2;
	const char *err;
	char   *arg;
	char   *addr;
	char   *addr2;
	char   *again;
	size_t  len;
	size_t  i;
	int     flags;
	int     ret;
	int     ret2;

	if (size < 1)
		return (0);
	flags = data[0] & (SMTP_ADDR_NULL_OK | SMTP_ADDR_POSTMASTER_OK
			   | SMTP_ADDR_UTF8 | SMTP_ADDR_BARE_OK);
	arg = xstrndup((const char *) data + 1, size - 1);
	ret = smtp_addr_parse(arg, flags, &addr, &rest, &err);
	if (ret < 0) {
		if (addr != NULL || err == NULL)
			abort();
		xfree(arg);
		return (0);
	}
	len = strlen(addr);
	if (rest < arg || rest > arg + strlen(arg))
		abort();
	if (len > 0 && strstr(arg, addr) == NULL)
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char) addr[i] < 32 || addr[i] == 127)
			abort();
	if (!(flags & SMTP_ADDR_UTF8) && (ret & SMTP_ADDR_F_UTF8))
		abort();
	if (!(flags & SMTP_ADDR_UTF8))
		for (i = 0; i < len; i++)
			if ((unsigned char) addr[i] >= 0x80)
				abort();
	if (!smtp_addr_utf8_valid(addr, len))
		abort();

	/* The canonical form parses to itself. */
	again = xmalloc(len + 3);
	again[0] = '<';
	memcpy(again + 1, addr, len);
	again[len + 1] = '>';
	again[len + 2] = 0;
	ret2 = smtp_addr_parse(again, flags & ~SMTP_ADDR_BARE_OK, &addr2,
			       &rest2, &err);
	if (ret2 < 0 || strcmp(addr, addr2) != 0 || *rest2 != 0)
		abort();
	if ((ret2 & SMTP_ADDR_F_ROUTE) != 0)
		abort();

	local = strbuf_new(64, 0);
	(void) smtp_addr_local(addr, local);
	(void) smtp_addr_tricky(addr);
	(void) smtp_addr_domain(addr);
	strbuf_free(local);
	xfree(addr2);
	xfree(again);
	xfree(addr);
	xfree(arg);
	return (0);
}
