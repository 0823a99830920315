/*
 * dsn_fuzz - libFuzzer target for the DSN parameter parsers and reports
 *
 * Build: make fuzz-build (tests/fuzz/NAME_fuzz.c against libsendarix.a)
 *
 * Checks beyond "does not crash": xtext decoding of the input, encoded
 * again, decodes to the same bytes; a decoded ENVID or ORCPT has no
 * control characters; a parsed NOTIFY prints in a form that parses to
 * the same flags; a canonical ORCPT is accepted exactly when the
 * ORCPT parses, and canonicalising it again changes nothing; and a
 * report built with the input as reply, address and everything else
 * from outside keeps every line ending in CRLF, with no bare CR or LF
 * and no line longer than 998 bytes (RFC 5322).
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "strbuf.h"

/* fuzz_text - the input as a C string (NULs cut it short) */
static char *
fuzz_text(const uint8_t *data, size_t size)
{
	char   *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return (s);
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf *a = strbuf_new(0, 0);
	struct strbuf *b = strbuf_new(0, 0);
	struct strbuf *c = strbuf_new(0, 0);
	char    buf[DSN_NOTIFY_BUFSIZE];
	struct dsn_report rp;
	struct dsn_rcpt r;
	char   *s = fuzz_text(data, size);
	size_t  i;
	size_t  line;
	int     f;
	int     g;

	/* xtext round trip. */
	if (dsn_xtext_decode((const char *) data, size, a) == 0) {
		if (dsn_xtext_encode(a->data, a->len, b) < 0
		    || dsn_xtext_decode(b->data, b->len, c) < 0
		    || c->len != a->len || memcmp(c->data, a->data, a->len))
			abort();
	}

	/* Decoded values fit on one line. */
	if (dsn_envid_parse(s, a) == 0)
		for (i = 0; i < a->len; i++)
			if ((unsigned char) a->data[i] < 32
			    || (unsigned char) a->data[i] > 126)
				abort();
	if (dsn_orcpt_parse(s, a) == 0) {
		if (strchr(a->data, ';') == NULL)
			abort();
		for (i = 0; i < a->len; i++)
			if ((unsigned char) a->data[i] < 32
			    || (unsigned char) a->data[i] == 127)
				abort();
	}
	/* Canonical ORCPT: accepted exactly when parsed, and a fixed point. */
	if ((dsn_orcpt_canon(s, b) == 0) != (dsn_orcpt_parse(s, a) == 0))
		abort();
	if (dsn_orcpt_canon(s, b) == 0
	    && (dsn_orcpt_canon(b->data, c) < 0 || strcmp(b->data, c->data)))
		abort();
	if (dsn_notify_parse(s, &f) == 0) {
		if (dsn_notify_parse(dsn_notify_str(f, buf, sizeof(buf)),
				     &g) < 0 || f != g)
			abort();
	}
	(void) dsn_ret_parse(s);
	(void) dsn_type_parse(s);

	/* A report from hostile values. */
	memset(&r, 0, sizeof(r));
	r.addr = s;
	r.orcpt = s;
	r.dsn = s;
	r.relay = s;
	r.reply = s;
	memset(&rp, 0, sizeof(rp));
	rp.type = size % 3 + 1;
	rp.myhostname = "mx.example";
	rp.queue_id = "ABC";
	rp.sender = s;
	rp.envid = s;
	rp.ret = size % 2 ? DSN_RET_HDRS : DSN_RET_NONE;
	rp.message_id = "x@mx.example";
	rp.boundary = "b/mx.example";
	rp.rcpts = &r;
	rp.nrcpt = 1;
	rp.content = "Subject: x\r\n\r\nbody\r\n";
	rp.content_len = strlen(rp.content);
	rp.size_limit = 50000;
	strbuf_reset(a);
	if (dsn_report_compose(&rp, a) < 0)
		abort();
	for (i = 0, line = 0; i < a->len; i++, line++) {
		if (a->data[i] == '\r' && (i + 1 >= a->len
					   || a->data[i + 1] != '\n'))
			abort();
		if (a->data[i] == '\n' && (i == 0 || a->data[i - 1] != '\r'))
			abort();
		if (a->data[i] == '\n')
			line = 0;
		if (line > 998 + 2)	/* RFC 5322, with the CRLF */
			abort();
	}
	strbuf_free(a);
	strbuf_free(b);
	strbuf_free(c);
	free(s);
	return (0);
}
