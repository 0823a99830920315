/*
 * smtp_reply_fuzz - libFuzzer target for the SMTP reply parser
 *
 * Build: clang -fsanitize=fuzzer,address -Ilib tests/fuzz/smtp_reply_fuzz.c \
 *	lib/global/smtp_reply.c lib/util/strbuf.c lib/util/xmalloc.c lib/util/log.c
 *
 * Checks beyond "does not crash": a whole reply takes no more bytes than
 * there are, has a code in 200..599, a text without control characters
 * but TAB, as many lines as smtp_reply_line() finds, and every shorter
 * prefix of it is "need more"; the limit is never passed.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"
#include "strbuf.h"

#define FUZZ_LIMIT	512

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *) data;
	struct smtp_reply r;
	struct strbuf *flat;
	size_t  used = 0;
	size_t  len;
	size_t  n;
	size_t  i;
	int     ret;

	smtp_reply_init(&r);
	ret = smtp_reply_parse(buf, size, FUZZ_LIMIT, &r, &used);
	if (ret == SMTP_REPLY_OK) {
		if (used == 0 || used > size || used > FUZZ_LIMIT)
			abort();
		if (r.code < 200 || r.code > 599 || r.nlines == 0)
			abort();
		for (i = 0; i < r.text->len; i++) {
			unsigned char c = (unsigned char) r.text->data[i];

			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
				abort();
		}
		for (i = 0; i < r.nlines; i++)
			if (smtp_reply_line(&r, i, &len) == NULL)
				abort();
		if (smtp_reply_line(&r, r.nlines, &len) != NULL)
			abort();
		if (r.dsn[0] && r.dsn[0] != buf[0])
			abort();
		flat = strbuf_new(0, 0);
		if (smtp_reply_flat(&r, flat) < 0 || memchr(flat->data, '\n',
							   flat->len))
			abort();
		strbuf_free(flat);
		for (n = 0; n < used; n++)
			if (smtp_reply_parse(buf, n, FUZZ_LIMIT, &r, &len)
			    != SMTP_REPLY_MORE)
				abort();
	} else if (ret == SMTP_REPLY_MORE && size > FUZZ_LIMIT) {
		abort();
	}
	smtp_reply_clear(&r);
	return (0);
}
