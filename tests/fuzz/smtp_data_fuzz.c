/*
 * smtp_data_fuzz - libFuzzer target for the DATA/BDAT content scanner
 *
 * Build: make fuzz-build (tests/fuzz/NAME_fuzz.c against the libraries)
 *
 * The first input byte picks the mode (DATA or BDAT), raw or not, and
 * how the rest is cut into pieces; the rest is what a client sends.
 * Checks beyond "does not crash" (the SMTP smuggling defence):
 *
 *	- the content is the same whatever the pieces: one call, or one
 *	  call per byte, or pieces of the chosen size;
 *	- DATA ends exactly at the first CRLF.CRLF (or "." CRLF at the
 *	  very start), never at a "." after a bare CR or LF;
 *	- "bare" is set exactly when the bytes taken hold a CR not
 *	  followed by LF or an LF not after CR;
 *	- without raw, the content holds CR only before LF and LF only
 *	  after CR; BDAT content ends with CRLF (or is empty);
 *	- raw BDAT content is the input unchanged.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

struct fuzz_out {
	char   *buf;
	size_t  len;
	size_t  cap;
	size_t  bare_calls;
};

/* fuzz_emit - collect the content */
static void
fuzz_emit(void *ctx, const char *p, size_t n)
{
	struct fuzz_out *o = ctx;

	if (n == 0)
		abort();			/* the scanner skips empty output */
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		if ((o->buf = realloc(o->buf, o->cap)) == NULL)
			abort();
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* fuzz_bare - count the bare CR/LF callbacks */
static void
fuzz_bare(void *ctx)
{
	((struct fuzz_out *) ctx)->bare_calls++;
}

/* fuzz_run - scan "in" in pieces of "step" (0: one call); bytes taken */
static size_t
fuzz_run(int mode, int flags, const char *in, size_t n, size_t step,
	 struct fuzz_out *o, int *bare, int *done)
{
	struct smtp_data sd;
	size_t  off = 0;
	size_t  k;
	size_t  used;

	memset(o, 0, sizeof(*o));
	smtp_data_init(&sd, mode, flags, fuzz_emit, fuzz_bare, o);
	*done = 0;
	while (off < n && !*done) {
		k = step == 0 || n - off < step ? n - off : step;
		used = smtp_data_scan(&sd, in + off, k, done);
		if (used > k || (!*done && used != k))
			abort();
		if (mode == SMTP_DATA_CHUNK && *done)
			abort();
		off += used;
	}
	if (mode == SMTP_DATA_CHUNK)
		smtp_data_end(&sd);
	*bare = sd.bare;
	if ((sd.bare != 0) != (o->bare_calls != 0))
		abort();
	if (o->len > 0 && sd.last_lf != (o->buf[o->len - 1] == '\n'))
		abort();
	return (off);
}

/* fuzz_has_bare - a CR not before LF or an LF not after CR in p[0..n) */
static int
fuzz_has_bare(const char *p, size_t n, int final_cr_bare)
{
	size_t  i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] != '\n')
			return (1);
		if (p[i] == '\r' && i + 1 == n && final_cr_bare)
			return (1);
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return (1);
	}
	return (0);
}

/* fuzz_end - where DATA must end: bytes up to the first CRLF.CRLF */
static size_t
fuzz_end(const char *p, size_t n)
{
	size_t  i;

	if (n >= 3 && memcmp(p, ".\r\n", 3) == 0)
		return (3);
	for (i = 0; i + 5 <= n; i++)
		if (memcmp(p + i, "\r\n.\r\n", 5) == 0)
			return (i + 5);
	return (0);
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_out whole;
	struct fuzz_out bytes;
	struct fuzz_out parts;
	const char *in = (const char *) data + 1;
	size_t  n;
	size_t  used;
	size_t  end;
	size_t  i;
	int     mode;
	int     flags;
	int     bare;
	int     bare2;
	int     done;
	int     done2;

	if (size < 1)
		return (0);
	mode = (data[0] & 1) ? SMTP_DATA_CHUNK : SMTP_DATA_DOT;
	flags = (data[0] & 2) ? SMTP_DATA_F_RAW : 0;
	n = size - 1;

	used = fuzz_run(mode, flags, in, n, 0, &whole, &bare, &done);
	if (fuzz_run(mode, flags, in, n, 1, &bytes, &bare2, &done2) != used
	    || bare2 != bare || done2 != done || bytes.len != whole.len
	    || memcmp(bytes.buf, whole.buf, whole.len) != 0)
		abort();
	free(bytes.buf);
	if (fuzz_run(mode, flags, in, n, 1 + (data[0] >> 2), &parts, &bare2,
		     &done2) != used || bare2 != bare || done2 != done
	    || parts.len != whole.len
	    || memcmp(parts.buf, whole.buf, whole.len) != 0)
		abort();
	free(parts.buf);

	if (mode == SMTP_DATA_DOT) {
		end = fuzz_end(in, n);
		if (done != (end != 0) || (done && used != end))
			abort();
		if (!done && used != n)
			abort();
		/* The terminator itself is not a bare CR/LF. */
		if (bare != fuzz_has_bare(in, used, 0))
			abort();
	} else {
		if (used != n || bare != fuzz_has_bare(in, n, 1))
			abort();
		if ((flags & SMTP_DATA_F_RAW)
		    && (whole.len != n || memcmp(whole.buf, in, n) != 0))
			abort();
		if (!(flags & SMTP_DATA_F_RAW) && whole.len > 0
		    && (whole.len < 2 || whole.buf[whole.len - 1] != '\n'
			|| whole.buf[whole.len - 2] != '\r'))
			abort();
	}
	if (!(flags & SMTP_DATA_F_RAW)) {
		/* A CR may be last only while DATA is unfinished. */
		for (i = 0; i < whole.len; i++) {
			if (whole.buf[i] == '\r' && i + 1 < whole.len
			    && whole.buf[i + 1] != '\n')
				abort();
			if (whole.buf[i] == '\n'
			    && (i == 0 || whole.buf[i - 1] != '\r'))
				abort();
		}
		if (whole.len > 0 && whole.buf[whole.len - 1] == '\r')
			abort();
	}
	free(whole.buf);
	return (0);
}
