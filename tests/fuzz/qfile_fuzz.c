/*
 * qfile_fuzz - libFuzzer target for the queue file parser
 *
 * Build: clang -fsanitize=fuzzer,address -Ilib tests/fuzz/qfile_fuzz.c \
 *	lib/global/qfile.c lib/util/strbuf.c lib/util/xmalloc.c lib/util/log.c
 *
 * Checks beyond "does not crash": a file that parses has its E record
 * at the very end, its status offsets point at status bytes, its content
 * is as long as its Z record says, and no shorter prefix of it parses.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qfile.h"
#include "strbuf.h"

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *) data;
	struct strbuf *err = strbuf_new(256, 0);
	struct qfile_msg *msg;
	struct qfile_msg *m2;
	size_t  i;

	msg = qfile_parse(buf, size, 1, err);
	if (msg == NULL) {
		if (err->len == 0)
			abort();			/* a reason is required */
		strbuf_free(err);
		return (0);
	}
	if (size < 4 || memcmp(buf + size - 4, "E0:\n", 4) != 0)
		abort();
	if (msg->sender == NULL || msg->content == NULL
	    || (long long) msg->content->len != msg->size)
		abort();
	if (msg->content_offset <= 0 || (size_t) msg->content_offset >= size)
		abort();
	for (i = 0; i < msg->nrcpts; i++) {
		off_t   off = msg->rcpts[i].status_offset;

		if (off <= 0 || (size_t) off >= size
		    || buf[off] != msg->rcpts[i].status || buf[off - 1] != ':'
		    || msg->rcpts[i].addr[0] == 0)
			abort();
	}
	for (i = 0; i < size; i += 1 + size / 32) {
		if ((m2 = qfile_parse(buf, i, 0, err)) != NULL)
			abort();
	}
	qfile_msg_free(msg);
	strbuf_free(err);
	return (0);
}
