/*
 * xsasl_base64 - base64 for SMTP AUTH (RFC 4648, padding required)
 *
 * SYNOPSIS
 *	#include "xsasl.h"
 *
 *	int	xsasl_b64_decode(const char *in, size_t len, struct strbuf *out)
 *	void	xsasl_b64_encode(const void *in, size_t len,
 *			struct strbuf *out)
 *
 * DESCRIPTION
 *	xsasl_b64_decode() sets "out" to the decoded bytes (binary, with
 *	a NUL after them) and returns 0, or -1 when "in" is not base64: a
 *	character outside the alphabet, a length that is not a multiple of
 *	four, or padding anywhere but at the end. RFC 4954 asks a server to
 *	refuse such a response with 501.
 *
 *	xsasl_b64_encode() sets "out" to the base64 text of "in".
 *
 * SEE ALSO
 *	RFC 4648, RFC 4954
 */

#include <string.h>

#include "strbuf.h"

#include "xsasl.h"

static const char xsasl_b64_chars[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* xsasl_b64_value - the value of one character, or -1 */
static int
xsasl_b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	if (c == '+')
		return (62);
	if (c == '/')
		return (63);
	return (-1);
}

/* xsasl_b64_decode - strict decoding; -1 if not base64 */
int
xsasl_b64_decode(const char *in, size_t len, struct strbuf *out)
{
	unsigned char b[4];
	size_t  i;
	int     j;
	int     pad;
	int     v;

	strbuf_reset(out);
	if (len % 4 != 0)
		return (-1);
	for (i = 0; i < len; i += 4) {
		pad = 0;
		for (j = 0; j < 4; j++) {
			if (in[i + j] == '=') {
				/* Only the last one or two of the last group. */
				if (i + 4 != len || j < 2)
					return (-1);
				pad++;
				b[j] = 0;
				continue;
			}
			if (pad || (v = xsasl_b64_value((unsigned char) in[i + j])) < 0)
				return (-1);
			b[j] = v;
		}
		strbuf_appendc(out, (b[0] << 2) | (b[1] >> 4));
		if (pad < 2)
			strbuf_appendc(out, ((b[1] & 15) << 4) | (b[2] >> 2));
		if (pad < 1)
			strbuf_appendc(out, ((b[2] & 3) << 6) | b[3]);
	}
	return (0);
}

/* xsasl_b64_encode - base64 text of some bytes */
void
xsasl_b64_encode(const void *in, size_t len, struct strbuf *out)
{
	const unsigned char *p = in;
	char    q[4];
	size_t  i;

	strbuf_reset(out);
	for (i = 0; i < len; i += 3) {
		q[0] = xsasl_b64_chars[p[i] >> 2];
		q[1] = xsasl_b64_chars[((p[i] & 3) << 4)
				       | (i + 1 < len ? p[i + 1] >> 4 : 0)];
		q[2] = i + 1 < len ? xsasl_b64_chars[((p[i + 1] & 15) << 2)
				     | (i + 2 < len ? p[i + 2] >> 6 : 0)] : '=';
		q[3] = i + 2 < len ? xsasl_b64_chars[p[i + 2] & 63] : '=';
		strbuf_append(out, q, 4);
	}
	if (len == 0)
		strbuf_sets(out, "");
}
