/*
 * smtp_addr - parse the <path> of SMTP MAIL FROM and RCPT TO
 *
 * SYNOPSIS
 *	#include "smtp_addr.h"
 *
 *	int	smtp_addr_parse(const char *arg, int flags, char **addr,
 *			const char **rest, const char **err)
 *	const char *smtp_addr_domain(const char *addr)
 *	int	smtp_addr_local(const char *addr, struct strbuf *out)
 *	int	smtp_addr_tricky(const char *addr)
 *	int	smtp_addr_utf8_valid(const char *str, size_t len)
 *
 * DESCRIPTION
 *	smtp_addr_parse() reads a Reverse-path or Forward-path (RFC 5321
 *	section 4.1.2) at the start of "arg" (leading blanks are skipped):
 *	"<" [A-d-l ":"] Mailbox ">", where the local part is a dot-string
 *	or a quoted-string and the domain a host name or an address literal
 *	([192.0.2.1], [IPv6:2001:db8::1]). The flags say what else is
 *	allowed: SMTP_ADDR_NULL_OK the null path "<>" (MAIL FROM),
 *	SMTP_ADDR_POSTMASTER_OK "<postmaster>" with no domain (RCPT TO),
 *	SMTP_ADDR_UTF8 UTF-8 in the local part and the domain (RFC 6531,
 *	after MAIL FROM ... SMTPUTF8), SMTP_ADDR_BARE_OK an address with no
 *	angle brackets (ended by a blank or the end of "arg").
 *
 *	A source route (<@a,@b:user@d>) is checked and removed, as RFC 5321
 *	says; the result has SMTP_ADDR_F_ROUTE so that relay control can
 *	refuse it. On success "addr" is the mailbox as the client wrote it
 *	(quotes kept, route removed; "" for the null path), "rest" points
 *	just after the closing ">" (the ESMTP parameters follow), and the
 *	result is a mask of SMTP_ADDR_F_* bits (>= 0).
 *
 *	smtp_addr_domain() returns the part after the last "@" of a parsed
 *	address, or NULL when there is none (the null path, postmaster).
 *
 *	smtp_addr_local() puts the local part, with quoting removed, in
 *	"out"; 0, or -1 when "out" would pass its limit.
 *
 *	smtp_addr_tricky() returns 1 when the unquoted local part holds
 *	"%", "!" or "@" (old-style routing that a next hop may act on),
 *	else 0.
 *
 *	smtp_addr_utf8_valid() returns 1 when the bytes are well-formed
 *	UTF-8 (no overlong forms, no surrogates), else 0.
 *
 * MEMORY
 *	The caller frees "addr" (xfree) after a successful parse; on error
 *	it is NULL. "rest" and "err" point into "arg" and static text.
 *
 * DIAGNOSTICS
 *	-1 with "err" set to a short English reason on malformed input.
 *	Nothing here logs or ends the process (except xmalloc()).
 *
 * SEE ALSO
 *	RFC 5321, RFC 6531, smtpd(8)
 */

#include <sys/types.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "smtp_addr.h"
#include "strbuf.h"
#include "xmalloc.h"

#define SMTP_ADDR_IS_ALPHA(c)	(((c) >= 'a' && (c) <= 'z') || \
				 ((c) >= 'A' && (c) <= 'Z'))
#define SMTP_ADDR_IS_DIGIT(c)	((c) >= '0' && (c) <= '9')

/* smtp_addr_utf8_len - length of one well-formed UTF-8 sequence, or 0 */
static size_t
smtp_addr_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned int cp;
	size_t  n;
	size_t  i;

	if (avail == 0)
		return (0);
	if (p[0] < 0x80)
		return (1);
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return (0);
	if (avail < n)
		return (0);
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return (0);
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
	    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return (0);
	return (n);
}

/* smtp_addr_utf8_valid - whole string is well-formed UTF-8 */
int
smtp_addr_utf8_valid(const char *str, size_t len)
{
	const unsigned char *p = (const unsigned char *) str;
	size_t  pos = 0;
	size_t  n;

	while (pos < len) {
		if ((n = smtp_addr_utf8_len(p + pos, len - pos)) == 0)
			return (0);
		pos += n;
	}
	return (1);
}

/* smtp_addr_nonascii - length of a UTF-8 char at cp when allowed, or 0 */
static size_t
smtp_addr_nonascii(const char *cp, int flags, int *result)
{
	size_t  n;

	if ((unsigned char) *cp < 0x80 || (flags & SMTP_ADDR_UTF8) == 0)
		return (0);
	n = smtp_addr_utf8_len((const unsigned char *) cp, strnlen(cp, 4));
	if (n > 0)
		*result |= SMTP_ADDR_F_UTF8;
	return (n);
}

/* smtp_addr_is_atext - RFC 5322 atext, ASCII part */
static int
smtp_addr_is_atext(int c)
{
	return (SMTP_ADDR_IS_ALPHA(c) || SMTP_ADDR_IS_DIGIT(c)
		|| (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL));
}

/* smtp_addr_dotstring - Atom *("." Atom); length taken, or -1 */
static ssize_t
smtp_addr_dotstring(const char *start, int flags, int *result)
{
	const char *cp = start;
	size_t  atom = 0;
	size_t  n;

	for (;;) {
		if (smtp_addr_is_atext((unsigned char) *cp)) {
			cp++;
			atom++;
		} else if ((n = smtp_addr_nonascii(cp, flags, result)) > 0) {
			cp += n;
			atom++;
		} else if (*cp == '.' && atom > 0) {
			cp++;
			atom = 0;
		} else
			break;
	}
	if (atom == 0)
		return (-1);			/* empty, or ends in "." */
	return (cp - start);
}

/* smtp_addr_quoted - DQUOTE *QcontentSMTP DQUOTE; length, or -1 */
static ssize_t
smtp_addr_quoted(const char *start, int flags, int *result)
{
	const char *cp = start + 1;
	size_t  n;
	int     c;

	for (;;) {
		c = (unsigned char) *cp;
		if (c == '"')
			return (cp + 1 - start);
		if (c == '\\') {
			c = (unsigned char) cp[1];
			if (c < 32 || c > 126)
				return (-1);
			cp += 2;
		} else if (c >= 32 && c <= 126) {
			cp++;
		} else if ((n = smtp_addr_nonascii(cp, flags, result)) > 0) {
			cp += n;
		} else
			return (-1);		/* control, NUL, bad UTF-8 */
	}
}

/* smtp_addr_domain_parse - sub-domain *("." sub-domain); length, or -1 */
static ssize_t
smtp_addr_domain_parse(const char *start, int flags, int *result)
{
	const char *cp = start;
	size_t  label = 0;
	int     last_hyphen = 0;
	size_t  n;

	for (;;) {
		if (SMTP_ADDR_IS_ALPHA(*cp) || SMTP_ADDR_IS_DIGIT(*cp)) {
			cp++;
			label++;
			last_hyphen = 0;
		} else if ((n = smtp_addr_nonascii(cp, flags, result)) > 0) {
			cp += n;
			label++;
			last_hyphen = 0;
		} else if (*cp == '-' && label > 0) {
			cp++;
			label++;
			last_hyphen = 1;
		} else if (*cp == '.' && label > 0 && !last_hyphen) {
			cp++;
			label = 0;
		} else
			break;
		if (label > SMTP_ADDR_LABEL_MAX)
			return (-1);
	}
	if (label == 0 || last_hyphen)
		return (-1);
	if ((size_t) (cp - start) > SMTP_ADDR_DOMAIN_MAX)
		return (-1);
	return (cp - start);
}

/* smtp_addr_literal - "[" IPv4 / "IPv6:" IPv6 "]"; length, or -1 */
static ssize_t
smtp_addr_literal(const char *start)
{
	const char *end = strchr(start, ']');
	char    buf[64];
	unsigned char bin[16];
	size_t  len;

	if (end == NULL)
		return (-1);
	len = end - start - 1;
	if (len == 0 || len >= sizeof(buf))
		return (-1);
	memcpy(buf, start + 1, len);
	buf[len] = 0;
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		if (inet_pton(AF_INET6, buf + 5, bin) != 1)
			return (-1);
	} else if (inet_pton(AF_INET, buf, bin) != 1)
		return (-1);		/* general literals: unsupported */
	return (end + 1 - start);
}

/* smtp_addr_parse - parse one <path> */
int
smtp_addr_parse(const char *arg, int flags, char **addr, const char **rest,
		const char **err)
{
	const char *cp = arg;
	const char *start;
	const char *end;
	int     result = 0;
	int     bracket;
	ssize_t n;

	*addr = NULL;
	*rest = NULL;
	*err = NULL;

	while (*cp == ' ' || *cp == '\t')
		cp++;
	if (*cp == '<') {
		bracket = 1;
		cp++;
	} else if (*cp == 0) {
		*err = "missing address";
		return (-1);
	} else if (flags & SMTP_ADDR_BARE_OK) {
		bracket = 0;
		result |= SMTP_ADDR_F_BARE;
	} else {
		*err = "address not enclosed in <>";
		return (-1);
	}

	/* The null path. */
	if (bracket && *cp == '>') {
		if ((flags & SMTP_ADDR_NULL_OK) == 0) {
			*err = "null address not allowed here";
			return (-1);
		}
		*addr = xstrdup("");
		*rest = cp + 1;
		return (SMTP_ADDR_F_NULL);
	}

	/* A source route: checked, then dropped (RFC 5321 section 4.1.2). */
	if (*cp == '@') {
		for (;;) {
			cp++;			/* the "@" */
			if (*cp == '[')
				n = smtp_addr_literal(cp);
			else
				n = smtp_addr_domain_parse(cp, flags, &result);
			if (n < 0) {
				*err = "bad source route";
				return (-1);
			}
			cp += n;
			if (cp[0] == ',' && cp[1] == '@') {
				cp++;
				continue;
			}
			break;
		}
		if (*cp != ':') {
			*err = "bad source route";
			return (-1);
		}
		cp++;
		result |= SMTP_ADDR_F_ROUTE;
	}

	/* The local part. */
	start = cp;
	if (*cp == '"') {
		n = smtp_addr_quoted(cp, flags, &result);
		result |= SMTP_ADDR_F_QUOTED;
	} else
		n = smtp_addr_dotstring(cp, flags, &result);
	if (n < 0) {
		*err = "bad local part";
		return (-1);
	}
	cp += n;

	/* The domain, or postmaster alone. */
	if (*cp == '@') {
		cp++;
		if (*cp == '[') {
			n = smtp_addr_literal(cp);
			result |= SMTP_ADDR_F_LITERAL;
		} else
			n = smtp_addr_domain_parse(cp, flags, &result);
		if (n < 0) {
			*err = "bad domain";
			return (-1);
		}
		cp += n;
	} else if ((flags & SMTP_ADDR_POSTMASTER_OK) && cp - start == 10
		   && strncasecmp(start, "postmaster", 10) == 0) {
		result |= SMTP_ADDR_F_NODOMAIN;
	} else {
		*err = (*cp == 0 || *cp == '>' || *cp == ' ') ?
			"domain name required" : "bad address syntax";
		return (-1);
	}
	end = cp;

	if (bracket) {
		if (*cp != '>') {
			*err = "bad address syntax";
			return (-1);
		}
		cp++;
	} else if (*cp != 0 && *cp != ' ' && *cp != '\t') {
		*err = "bad address syntax";
		return (-1);
	}
	if ((size_t) (end - start) > SMTP_ADDR_LEN_MAX) {
		*err = "address too long";
		return (-1);
	}
	*addr = xstrndup(start, end - start);
	*rest = cp;
	return (result);
}

/* smtp_addr_at - the "@" that separates local part and domain, or NULL */
static const char *
smtp_addr_at(const char *addr)
{
	const char *cp;
	const char *at = NULL;
	int     quoted = 0;

	for (cp = addr; *cp; cp++) {
		if (quoted && *cp == '\\' && cp[1] != 0)
			cp++;
		else if (*cp == '"')
			quoted = !quoted;
		else if (*cp == '@' && !quoted)
			at = cp;
	}
	return (at);
}

/* smtp_addr_domain - the domain of a parsed address, or NULL */
const char *
smtp_addr_domain(const char *addr)
{
	const char *at = smtp_addr_at(addr);

	return (at ? at + 1 : NULL);
}

/* smtp_addr_local - the local part with quoting removed */
int
smtp_addr_local(const char *addr, struct strbuf *out)
{
	const char *at = smtp_addr_at(addr);
	const char *end = at ? at : addr + strlen(addr);
	const char *cp;

	strbuf_reset(out);
	for (cp = addr; cp < end; cp++) {
		if (*cp == '"')
			continue;
		if (*cp == '\\' && cp + 1 < end)
			cp++;
		if (strbuf_appendc(out, *cp) < 0)
			return (-1);
	}
	return (0);
}

/* smtp_addr_tricky - local part with %, ! or @ */
int
smtp_addr_tricky(const char *addr)
{
	struct strbuf *local = strbuf_new(64, 0);
	int     tricky;

	smtp_addr_local(addr, local);
	tricky = strpbrk(local->data, "%!@") != NULL;
	strbuf_free(local);
	return (tricky);
}
