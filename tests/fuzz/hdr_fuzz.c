/*
 * hdr_fuzz - libFuzzer target for the streaming header scanner
 *
 * Build: clang -fsanitize=fuzzer,address -Ilib tests/fuzz/hdr_fuzz.c \
 *	lib/global/hdr.c lib/util/strbuf.c lib/util/xmalloc.c lib/util/log.c
 *
 * The first input byte picks a header size limit and a chunk size; the
 * rest is the content. Checks beyond "does not crash": the scan in
 * chunks finds the same header section, body and counts as the scan of
 * the whole content; header plus body is exactly the input; the header
 * section never passes the limit.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"
#include "strbuf.h"

/* hdr_fuzz_scan - scan in chunks; head and body are the caller's */
static int
hdr_fuzz_scan(const char *msg, size_t len, size_t limit, size_t chunk,
	      struct strbuf *head, struct strbuf *body, long *counts)
{
	struct hdr *h = hdr_new(limit);
	size_t  off;
	size_t  n;
	size_t  used;
	int     st = HDR_MORE;
	int     done = 0;

	for (off = 0; off < len && st != HDR_TOOBIG; off += n) {
		n = len - off < chunk ? len - off : chunk;
		st = hdr_feed(h, msg + off, n, &used);
		if (used > n)
			abort();
		if (st == HDR_MORE && used != n)
			abort();
		if (st == HDR_DONE) {
			if (!done) {
				strbuf_append(head, h->buf->data, h->hdr_len);
				strbuf_append(body, h->buf->data + h->hdr_len,
					      h->buf->len - h->hdr_len);
				done = 1;
			}
			strbuf_append(body, msg + off + used, n - used);
		}
	}
	if (st == HDR_MORE) {
		st = hdr_finish(h);
		strbuf_append(head, h->buf->data, h->hdr_len);
		strbuf_append(body, h->buf->data + h->hdr_len,
			      h->buf->len - h->hdr_len);
	}
	if (st == HDR_DONE && h->hdr_len > limit)
		abort();
	counts[0] = h->received;
	counts[1] = h->headers;
	counts[2] = h->seen;
	hdr_free(h);
	return (st);
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf *h1;
	struct strbuf *b1;
	struct strbuf *h2;
	struct strbuf *b2;
	long    c1[3];
	long    c2[3];
	size_t  limit;
	size_t  chunk;
	int     s1;
	int     s2;

	if (size < 1)
		return (0);
	limit = 16 + (data[0] & 0x0f) * 64;
	chunk = 1 + (data[0] >> 4);
	data++;
	size--;
	h1 = strbuf_new(0, 0);
	b1 = strbuf_new(0, 0);
	h2 = strbuf_new(0, 0);
	b2 = strbuf_new(0, 0);
	s1 = hdr_fuzz_scan((const char *) data, size, limit, size ? size : 1,
			   h1, b1, c1);
	s2 = hdr_fuzz_scan((const char *) data, size, limit, chunk, h2, b2, c2);
	if (s1 != s2)
		abort();
	if (s1 == HDR_DONE) {
		if (h1->len != h2->len || memcmp(h1->data, h2->data, h1->len)
		    || b1->len != b2->len || memcmp(b1->data, b2->data, b1->len)
		    || memcmp(c1, c2, sizeof(c1)))
			abort();
		if (h1->len + b1->len != size
		    || memcmp(h1->data, data, h1->len)
		    || memcmp(b1->data, data + h1->len, b1->len))
			abort();
	}
	strbuf_free(h1);
	strbuf_free(b1);
	strbuf_free(h2);
	strbuf_free(b2);
	return (0);
}
