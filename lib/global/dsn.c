/*
 * dsn - DSN parameters (RFC 3461) and delivery status reports (RFC 3464)
 *
 * SYNOPSIS
 *	#include "dsn.h"
 *
 *	int	dsn_xtext_decode(const char *in, size_t len, struct strbuf *out)
 *	int	dsn_xtext_encode(const char *in, size_t len, struct strbuf *out)
 *
 *	int	dsn_notify_parse(const char *value, int *flags)
 *	const char *dsn_notify_str(int flags, char *buf, size_t size)
 *	int	dsn_notify_wants(int flags, int type)
 *	int	dsn_ret_parse(const char *value)
 *	const char *dsn_ret_str(int ret)
 *	int	dsn_envid_parse(const char *value, struct strbuf *out)
 *	int	dsn_orcpt_parse(const char *value, struct strbuf *out)
 *	int	dsn_orcpt_canon(const char *value, struct strbuf *out)
 *	int	dsn_type_parse(const char *value)
 *
 *	int	dsn_report_compose(const struct dsn_report *rp,
 *			struct strbuf *out)
 *
 * DESCRIPTION
 *	dsn_xtext_decode() appends the decoding of the xtext "in" (RFC 3461
 *	section 4: printable ASCII except '+' and '=' stands for itself,
 *	"+XX" for the byte with hex value XX; lower case hex is accepted)
 *	to "out". dsn_xtext_encode() appends the xtext form of any bytes
 *	(upper case hex). Both return 0, or -1 on malformed input or when
 *	"out" reaches its limit; "out" may then hold part of the result.
 *
 *	dsn_notify_parse() reads a NOTIFY= value, case-insensitive: NEVER,
 *	or a comma list of SUCCESS, FAILURE and DELAY (each at most once).
 *	It stores DSN_NOTIFY_* flags and returns 0, or -1 when malformed.
 *	dsn_notify_str() writes the canonical form ("NEVER", or the list in
 *	the order SUCCESS,FAILURE,DELAY; "" for 0) into "buf" and returns
 *	it. dsn_notify_wants() says whether a recipient with these flags
 *	asked for a notice of this DSN_TYPE_*: without NOTIFY= failures
 *	and delays are reported (RFC 3461 4.1 leaves DELAY to the MTA),
 *	success only with NOTIFY=SUCCESS.
 *
 *	dsn_ret_parse() reads a RET= value (FULL, HDRS, any case) and
 *	returns DSN_RET_FULL, DSN_RET_HDRS or -1; dsn_ret_str() is the
 *	reverse ("" for DSN_RET_NONE).
 *
 *	dsn_envid_parse() decodes an ENVID= value into "out" (reset first)
 *	and checks it: at most DSN_ENVID_MAX bytes, printable ASCII and
 *	space only. dsn_orcpt_parse() checks an ORCPT= value "addr-type;
 *	xtext" (at most DSN_ORCPT_MAX bytes, addr-type an atom, a non-empty
 *	address) and stores "addr-type;decoded-address" in "out" (reset
 *	first); the address may not decode to control characters, so the
 *	result fits on one line and holds no TAB. Both return 0 or -1.
 *	dsn_orcpt_canon() checks an ORCPT= value as dsn_orcpt_parse() does
 *	and stores it in "out" (reset first) still in xtext, re-encoded in
 *	canonical form (upper case hex, exactly the bytes that must be
 *	encoded): the form that is stored in the queue and sent on to the
 *	next MTA. It returns 0 or -1.
 *
 *	dsn_type_parse() maps the bounce request's type (failure, delay,
 *	expired, success) to DSN_TYPE_*, or -1.
 *
 *	dsn_report_compose() appends a whole notification message to
 *	"out": header section, then a multipart/report (RFC 6522) with a
 *	text/plain explanation, a message/delivery-status part (RFC 3464)
 *	and the original: message/rfc822 with the whole message when it
 *	fits in rp->size_limit and RET is not HDRS and this is a failure
 *	or expired notice, else text/rfc822-headers with its header
 *	section (cut at a line end to fit the limit): RFC 3461 4.3 has
 *	RET apply only to notices of failure, and a notice without one
 *	(delay, success) return the headers only, whatever RET says.
 *	Every line ends in CRLF.
 *
 *	The kinds differ in Action: failed (failure, expired), delayed,
 *	or relayed/delivered (success, from rcpt->action), in the Status
 *	used when a recipient has none (5.0.0, 4.4.7 for expired, 4.0.0,
 *	2.0.0), in the Subject and in the explanation: an expired notice
 *	says the message could not be delivered within rp->lifetime
 *	(maximal_queue_lifetime) and gives each recipient's last reason.
 *	Diagnostic-Code is "smtp; REPLY" when the reason holds a remote
 *	reply (also inside smtp-out's "host NAME[ADDR] said: REPLY (in
 *	reply to CMD command)"), else "X-Sendarix; REASON".
 *	Values taken from the original (addresses, replies, ENVID) have
 *	control characters replaced, so they cannot end a line or forge a
 *	field. It returns 0, or -1 when "out" reaches its limit.
 *
 * DIAGNOSTICS
 *	None: nothing here logs or ends the process (but xmalloc).
 *
 * SEE ALSO
 *	bounce(8), RFC 3461, RFC 3464, RFC 6522
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsn.h"
#include "mail_date.h"
#include "strbuf.h"
#include "xmalloc.h"

#define DSN_REPLY_MAX	800		/* reply bytes shown per recipient */
#define DSN_ADDR_MAX	500		/* address bytes shown */
#define DSN_WRAP	76		/* text part line width */
#define DSN_LINE_MAX	900		/* a word longer than this is cut */

/* dsn_hexval - value of one hex digit, or -1 */
static int
dsn_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	return (-1);
}

/* dsn_xtext_decode - append the decoding of xtext */
int
dsn_xtext_decode(const char *in, size_t len, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *) in;
	size_t  i;
	int     hi;
	int     lo;

	for (i = 0; i < len; i++) {
		if (p[i] == '+') {
			if (len - i < 3 || (hi = dsn_hexval(p[i + 1])) < 0
			    || (lo = dsn_hexval(p[i + 2])) < 0)
				return (-1);
			if (strbuf_appendc(out, hi * 16 + lo) < 0)
				return (-1);
			i += 2;
		} else if (p[i] < 33 || p[i] > 126 || p[i] == '=') {
			return (-1);
		} else if (strbuf_appendc(out, p[i]) < 0) {
			return (-1);
		}
	}
	return (0);
}

/* dsn_xtext_encode - append the xtext form of bytes */
int
dsn_xtext_encode(const char *in, size_t len, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *) in;
	size_t  i;

	for (i = 0; i < len; i++) {
		if (p[i] < 33 || p[i] > 126 || p[i] == '+' || p[i] == '=') {
			if (strbuf_printf(out, "+%02X", p[i]) < 0)
				return (-1);
		} else if (strbuf_appendc(out, p[i]) < 0) {
			return (-1);
		}
	}
	return (0);
}

/* dsn_notify_parse - NOTIFY=NEVER or a list of SUCCESS,FAILURE,DELAY */
int
dsn_notify_parse(const char *value, int *flags)
{
	static const struct {
		const char *name;
		int     flag;
	} words[] = {
		{"NEVER", DSN_NOTIFY_NEVER},
		{"SUCCESS", DSN_NOTIFY_SUCCESS},
		{"FAILURE", DSN_NOTIFY_FAILURE},
		{"DELAY", DSN_NOTIFY_DELAY},
	};
	const char *cp = value;
	size_t  len;
	size_t  i;
	int     f = 0;

	for (;;) {
		len = strcspn(cp, ",");
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (len == strlen(words[i].name)
			    && strncasecmp(cp, words[i].name, len) == 0)
				break;
		if (i == sizeof(words) / sizeof(words[0])
		    || (f & words[i].flag))
			return (-1);
		f |= words[i].flag;
		if (cp[len] == 0)
			break;
		cp += len + 1;
	}
	/* NEVER stands alone. */
	if ((f & DSN_NOTIFY_NEVER) && f != DSN_NOTIFY_NEVER)
		return (-1);
	*flags = f;
	return (0);
}

/* dsn_notify_str - the canonical NOTIFY= value */
const char *
dsn_notify_str(int flags, char *buf, size_t size)
{
	if (size == 0)
		return (buf);
	buf[0] = 0;
	if (flags & DSN_NOTIFY_NEVER) {
		snprintf(buf, size, "NEVER");
		return (buf);
	}
	snprintf(buf, size, "%s%s%s%s%s",
		 (flags & DSN_NOTIFY_SUCCESS) ? "SUCCESS" : "",
		 (flags & DSN_NOTIFY_SUCCESS)
		 && (flags & (DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY)) ?
		 "," : "",
		 (flags & DSN_NOTIFY_FAILURE) ? "FAILURE" : "",
		 (flags & DSN_NOTIFY_FAILURE) && (flags & DSN_NOTIFY_DELAY) ?
		 "," : "",
		 (flags & DSN_NOTIFY_DELAY) ? "DELAY" : "");
	return (buf);
}

/* dsn_notify_wants - does the recipient want this kind of notice? */
int
dsn_notify_wants(int flags, int type)
{
	if (flags & DSN_NOTIFY_NEVER)
		return (0);
	/* Success notices only on request (RFC 3461 4.1). */
	if (type == DSN_TYPE_SUCCESS)
		return ((flags & DSN_NOTIFY_SUCCESS) != 0);
	if (flags == 0)
		return (1);
	if (type == DSN_TYPE_DELAY)
		return ((flags & DSN_NOTIFY_DELAY) != 0);
	return ((flags & DSN_NOTIFY_FAILURE) != 0);
}

/* dsn_ret_parse - RET=FULL or RET=HDRS */
int
dsn_ret_parse(const char *value)
{
	if (strcasecmp(value, "FULL") == 0)
		return (DSN_RET_FULL);
	if (strcasecmp(value, "HDRS") == 0)
		return (DSN_RET_HDRS);
	return (-1);
}

/* dsn_ret_str - the RET= value, "" when not given */
const char *
dsn_ret_str(int ret)
{
	return (ret == DSN_RET_FULL ? "FULL" : ret == DSN_RET_HDRS ? "HDRS" :
		"");
}

/* dsn_type_parse - failure, delay, expired */
int
dsn_type_parse(const char *value)
{
	if (strcmp(value, "failure") == 0)
		return (DSN_TYPE_FAILURE);
	if (strcmp(value, "delay") == 0)
		return (DSN_TYPE_DELAY);
	if (strcmp(value, "expired") == 0)
		return (DSN_TYPE_EXPIRED);
	if (strcmp(value, "success") == 0)
		return (DSN_TYPE_SUCCESS);
	return (-1);
}

/* dsn_envid_parse - decode and check ENVID= */
int
dsn_envid_parse(const char *value, struct strbuf *out)
{
	size_t  i;

	strbuf_reset(out);
	if (*value == 0 || dsn_xtext_decode(value, strlen(value), out) < 0
	    || out->len > DSN_ENVID_MAX)
		return (-1);
	for (i = 0; i < out->len; i++)
		if ((unsigned char) out->data[i] < 32
		    || (unsigned char) out->data[i] > 126)
			return (-1);
	return (0);
}

/* dsn_orcpt_parse - check ORCPT=addr-type;xtext, decode the address */
int
dsn_orcpt_parse(const char *value, struct strbuf *out)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~";
	const char *semi;
	const char *cp;
	size_t  start;
	size_t  i;

	strbuf_reset(out);
	if (strlen(value) > DSN_ORCPT_MAX
	    || (semi = strchr(value, ';')) == NULL || semi == value
	    || semi[1] == 0)
		return (-1);
	for (cp = value; cp < semi; cp++)
		if (!((*cp >= 'a' && *cp <= 'z') || (*cp >= 'A' && *cp <= 'Z')
		      || (*cp >= '0' && *cp <= '9') || strchr(atext, *cp)))
			return (-1);
	if (strbuf_append(out, value, (size_t) (semi - value) + 1) < 0)
		return (-1);
	start = out->len;
	if (dsn_xtext_decode(semi + 1, strlen(semi + 1), out) < 0)
		return (-1);
	for (i = start; i < out->len; i++)
		if ((unsigned char) out->data[i] < 32
		    || (unsigned char) out->data[i] == 127)
			return (-1);
	return (0);
}

/* dsn_orcpt_canon - check ORCPT=, keep it as canonical xtext */
int
dsn_orcpt_canon(const char *value, struct strbuf *out)
{
	struct strbuf *dec = strbuf_new(128, 0);
	const char *semi;
	int     ret = -1;

	if (dsn_orcpt_parse(value, dec) == 0) {
		semi = strchr(dec->data, ';');
		strbuf_reset(out);
		if (strbuf_append(out, dec->data,
				  (size_t) (semi - dec->data) + 1) == 0
		    && dsn_xtext_encode(semi + 1, strlen(semi + 1), out) == 0)
			ret = 0;
	}
	strbuf_free(dec);
	return (ret);
}

/* dsn_put_clean - append text from outside, one line, bounded */
static int
dsn_put_clean(struct strbuf *out, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *) (s ? s : "");
	size_t  n;
	int     ret = 0;

	for (n = 0; n < max && p[n]; n++) {
		if (p[n] == '\t' || p[n] == '\r' || p[n] == '\n')
			ret |= strbuf_appendc(out, ' ');
		else if (p[n] < 32 || p[n] == 127)
			ret |= strbuf_appendc(out, '?');
		else
			ret |= strbuf_appendc(out, p[n]);
	}
	if (p[n])
		ret |= strbuf_appends(out, "...");
	return (ret ? -1 : 0);
}

/* dsn_put_wrapped - one paragraph, lines of DSN_WRAP, CRLF after each */
static int
dsn_put_wrapped(struct strbuf *out, const char *text, size_t len)
{
	size_t  start = 0;
	size_t  end;
	size_t  room;
	size_t  cut;
	int     ret = 0;

	while (start < len) {
		/* Continuation lines are indented, as in Postfix's notices. */
		room = start ? DSN_WRAP - 4 : DSN_WRAP;
		if (len - start <= room) {
			cut = end = len;
		} else {
			/* The last blank that fits; else a long word goes whole. */
			for (cut = start + room; cut > start && text[cut] != ' ';
			     cut--)
				;
			if (cut == start) {
				for (cut = start + room; cut < len
				     && text[cut] != ' '; cut++)
					;
				if (cut - start > DSN_LINE_MAX)
					cut = start + DSN_LINE_MAX;
			}
			end = cut;
		}
		if (start)
			ret |= strbuf_appends(out, "    ");
		ret |= strbuf_append(out, text + start, end - start);
		ret |= strbuf_appends(out, "\r\n");
		start = cut;
		while (start < len && text[start] == ' ')
			start++;
	}
	return (ret ? -1 : 0);
}

/* dsn_status_valid - X.Y.Z with X in 2, 4, 5 (RFC 3463) */
static int
dsn_status_valid(const char *s)
{
	int     i;
	int     n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5')
	    || s[1] != '.')
		return (0);
	s += 2;
	for (i = 0; i < 2; i++) {
		for (n = 0; *s >= '0' && *s <= '9'; s++)
			n++;
		if (n < 1 || n > 3 || *s != (i == 0 ? '.' : 0))
			return (0);
		s++;
	}
	return (1);
}

/* dsn_relay_known - a relay that was talked to */
static int
dsn_relay_known(const char *relay)
{
	return (relay != NULL && *relay != 0 && strcmp(relay, "none") != 0);
}

/* dsn_reply_is_smtp - a reply text that came from a remote server */
static int
dsn_reply_is_smtp(const struct dsn_rcpt *r)
{
	const char *p = r->reply;

	return (dsn_relay_known(r->relay) && p != NULL
		&& (p[0] == '2' || p[0] == '4' || p[0] == '5')
		&& p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'
		&& (p[3] == ' ' || p[3] == '-' || p[3] == 0));
}

/* dsn_smtp_reply - the remote reply in a reason, or NULL; length in *lenp */
static const char *
dsn_smtp_reply(const struct dsn_rcpt *r, size_t *lenp)
{
	static const char said[] = " said: ";
	static const char tail[] = " command)";
	const char *p = r->reply;
	const char *cp;
	const char *in;
	size_t  len;

	if (!dsn_relay_known(r->relay) || p == NULL)
		return (NULL);
	/* smtp-out's "host NAME[ADDR] said: REPLY (in reply to CMD command)" */
	if (strncmp(p, "host ", 5) == 0 && (cp = strstr(p, said)) != NULL)
		p = cp + sizeof(said) - 1;
	if (!((p[0] == '2' || p[0] == '4' || p[0] == '5')
	      && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'
	      && (p[3] == ' ' || p[3] == '-' || p[3] == 0)))
		return (NULL);
	len = strlen(p);
	if (p != r->reply && len > sizeof(tail) - 1
	    && strcmp(p + len - (sizeof(tail) - 1), tail) == 0
	    && (in = strstr(p, " (in reply to ")) != NULL)
		len = (size_t) (in - p);
	*lenp = len;
	return (p);
}

/* dsn_lifetime - "5 days", "12 hours", "90 seconds" */
static void
dsn_lifetime(long secs, char *buf, size_t size)
{
	if (secs % 86400 == 0)
		snprintf(buf, size, "%ld day%s", secs / 86400,
			 secs == 86400 ? "" : "s");
	else if (secs % 3600 == 0)
		snprintf(buf, size, "%ld hour%s", secs / 3600,
			 secs == 3600 ? "" : "s");
	else
		snprintf(buf, size, "%ld second%s", secs, secs == 1 ? "" : "s");
}

/* dsn_delivered - did a success notice's recipient reach its mailbox? */
static int
dsn_delivered(const struct dsn_rcpt *r)
{
	return (r->action != NULL && strcmp(r->action, "delivered") == 0);
}

/* dsn_relay_host - the host name part of "host[addr]:port" */
static void
dsn_relay_host(const char *relay, char *buf, size_t size)
{
	size_t  len = strcspn(relay, "[");

	if (len == 0) {
		/* "[addr]:port": the address. */
		relay++;
		len = strcspn(relay, "]");
	}
	if (len >= size)
		len = size - 1;
	memcpy(buf, relay, len);
	buf[len] = 0;
}

/* dsn_header_len - the length of the header section, with its blank line */
static size_t
dsn_header_len(const char *content, size_t len)
{
	size_t  i;

	if (len >= 2 && content[0] == '\r' && content[1] == '\n')
		return (2);
	for (i = 0; i + 3 < len; i++)
		if (content[i] == '\r' && content[i + 1] == '\n'
		    && content[i + 2] == '\r' && content[i + 3] == '\n')
			return (i + 4);
	return (len);
}

/* dsn_has_8bit - any byte with the top bit set? */
static int
dsn_has_8bit(const char *p, size_t len)
{
	size_t  i;

	for (i = 0; i < len; i++)
		if ((unsigned char) p[i] & 0x80)
			return (1);
	return (0);
}

/* dsn_compose_intro - the explanation before the recipients */
static int
dsn_compose_intro(const struct dsn_report *rp, struct strbuf *out)
{
	char    date[64];
	char    life[64];
	size_t  i;
	int     relayed = 0;
	int     ret = 0;

	switch (rp->type) {
	case DSN_TYPE_DELAY:
		ret |= strbuf_appends(out,
		   "####################################################"
		   "################\r\n"
		   "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
		   "YOUR MESSAGE. #\r\n"
		   "####################################################"
		   "################\r\n\r\n"
		   "Your message could not be delivered yet to the "
		   "recipients below.\r\n");
		if (rp->retry_until > 0) {
			mail_date(date, sizeof(date), rp->retry_until);
			ret |= strbuf_printf(out, "The mail system will keep "
					     "trying until %s.\r\n", date);
		} else
			ret |= strbuf_appends(out, "The mail system will keep "
					      "trying.\r\n");
		return (ret ? -1 : 0);
	case DSN_TYPE_SUCCESS:
		for (i = 0; i < rp->nrcpt; i++)
			if (!dsn_delivered(rp->rcpts + i))
				relayed = 1;
		ret |= strbuf_appends(out,
		   "Your message was successfully delivered to the "
		   "destinations listed\r\n"
		   "below, as you asked.\r\n");
		if (relayed)
			ret |= strbuf_appends(out, "\r\n"
			   "Where it says \"relayed\", the message was handed "
			   "to a mail system\r\n"
			   "that does not offer delivery notifications: you "
			   "will receive no\r\n"
			   "further notice of success from there, but you may "
			   "still receive\r\n"
			   "notices of delivery errors from other systems.\r\n");
		return (ret ? -1 : 0);
	case DSN_TYPE_EXPIRED:
		if (rp->lifetime > 0)
			dsn_lifetime(rp->lifetime, life, sizeof(life));
		ret |= strbuf_appends(out,
		   "I'm sorry to have to inform you that your message "
		   "could not\r\n"
		   "be delivered to one or more recipients within the "
		   "time the mail\r\n");
		if (rp->lifetime > 0)
			ret |= strbuf_printf(out, "system keeps trying "
					     "(maximal_queue_lifetime, %s).\r\n",
					     life);
		else
			ret |= strbuf_appends(out, "system keeps trying "
					      "(maximal_queue_lifetime).\r\n");
		ret |= strbuf_appends(out,
		   "It's attached below, with the last reason each "
		   "recipient could\r\n"
		   "not be reached.\r\n");
		break;
	default:
		ret |= strbuf_appends(out,
		   "I'm sorry to have to inform you that your message "
		   "could not\r\n"
		   "be delivered to one or more recipients. It's attached "
		   "below.\r\n");
		break;
	}
	ret |= strbuf_appends(out, "\r\n"
	   "For further assistance, please send mail to "
	   "postmaster.\r\n\r\n"
	   "If you do so, please include this problem report. You "
	   "can\r\n"
	   "delete your own text from the attached returned "
	   "message.\r\n");
	return (ret ? -1 : 0);
}

/* dsn_compose_text - the human-readable part */
static int
dsn_compose_text(const struct dsn_report *rp, struct strbuf *out)
{
	const struct dsn_rcpt *r;
	struct strbuf *entry;
	const char *rb;
	char   *rtext;
	size_t  rlen;
	size_t  i;
	int     ret = 0;

	ret |= strbuf_printf(out, "This is the mail system at host %s.\r\n"
			     "\r\n", rp->myhostname);
	ret |= dsn_compose_intro(rp, out);
	ret |= strbuf_appends(out,
			      "\r\n                   The mail system\r\n");
	entry = strbuf_new(256, 0);
	for (i = 0; i < rp->nrcpt; i++) {
		r = rp->rcpts + i;
		strbuf_reset(entry);
		strbuf_appends(entry, "<");
		dsn_put_clean(entry, r->addr, DSN_ADDR_MAX);
		strbuf_appends(entry, ">: ");
		/* "host name[addr]", as Postfix: no port. */
		rtext = NULL;
		if (dsn_relay_known(r->relay)) {
			rb = strchr(r->relay, ']');
			rlen = rb ? (size_t) (rb - r->relay) + 1 :
				strlen(r->relay);
			rtext = xstrndup(r->relay, rlen);
		}
		if (rp->type == DSN_TYPE_SUCCESS) {
			strbuf_appends(entry, dsn_delivered(r) ? "delivered" :
				       "relayed");
			if (rtext) {
				strbuf_appends(entry, " to host ");
				dsn_put_clean(entry, rtext, DSN_ADDR_MAX);
			}
			if (r->reply && *r->reply) {
				strbuf_appends(entry, rtext ? ", which said: " :
					       ": ");
				dsn_put_clean(entry, r->reply, DSN_REPLY_MAX);
			}
		} else {
			if (rtext && dsn_reply_is_smtp(r)) {
				strbuf_appends(entry, "host ");
				dsn_put_clean(entry, rtext, DSN_ADDR_MAX);
				strbuf_appends(entry, " said: ");
			}
			dsn_put_clean(entry, r->reply && *r->reply ? r->reply :
				      rp->type == DSN_TYPE_DELAY ?
				      "delivery temporarily suspended" :
				      "delivery failed", DSN_REPLY_MAX);
		}
		xfree(rtext);
		ret |= strbuf_appends(out, "\r\n");
		ret |= dsn_put_wrapped(out, entry->data, entry->len);
	}
	strbuf_free(entry);
	return (ret ? -1 : 0);
}

/* dsn_compose_status - the message/delivery-status part */
static int
dsn_compose_status(const struct dsn_report *rp, struct strbuf *out)
{
	const struct dsn_rcpt *r;
	char    date[64];
	char    host[256];
	const char *semi;
	const char *smtp;
	size_t  slen;
	size_t  i;
	int     ret = 0;

	ret |= strbuf_appends(out, "Reporting-MTA: dns; ");
	ret |= dsn_put_clean(out, rp->myhostname, 255);
	ret |= strbuf_appends(out, "\r\nX-Sendarix-Queue-ID: ");
	ret |= dsn_put_clean(out, rp->queue_id, 64);
	ret |= strbuf_appends(out, "\r\nX-Sendarix-Sender: rfc822; ");
	ret |= dsn_put_clean(out, rp->sender, DSN_ADDR_MAX);
	ret |= strbuf_appends(out, "\r\n");
	if (rp->envid && *rp->envid) {
		ret |= strbuf_appends(out, "Original-Envelope-Id: ");
		ret |= dsn_put_clean(out, rp->envid, DSN_ENVID_MAX);
		ret |= strbuf_appends(out, "\r\n");
	}
	mail_date(date, sizeof(date), rp->arrival);
	ret |= strbuf_printf(out, "Arrival-Date: %s\r\n", date);

	for (i = 0; i < rp->nrcpt; i++) {
		r = rp->rcpts + i;
		ret |= strbuf_appends(out, "\r\nFinal-Recipient: rfc822; ");
		ret |= dsn_put_clean(out, r->addr, DSN_ADDR_MAX);
		ret |= strbuf_appends(out, "\r\n");
		if (r->orcpt && (semi = strchr(r->orcpt, ';')) != NULL) {
			char   *atype = xstrndup(r->orcpt,
						     (size_t) (semi - r->orcpt));

			ret |= strbuf_appends(out, "Original-Recipient: ");
			ret |= dsn_put_clean(out, atype, 64);
			xfree(atype);
			ret |= strbuf_appends(out, "; ");
			ret |= dsn_put_clean(out, semi + 1, DSN_ADDR_MAX);
			ret |= strbuf_appends(out, "\r\n");
		}
		ret |= strbuf_printf(out, "Action: %s\r\n",
				     rp->type == DSN_TYPE_DELAY ? "delayed" :
				     rp->type != DSN_TYPE_SUCCESS ? "failed" :
				     dsn_delivered(r) ? "delivered" :
				     "relayed");
		ret |= strbuf_printf(out, "Status: %s\r\n",
				     dsn_status_valid(r->dsn)
				     && (rp->type == DSN_TYPE_SUCCESS) ==
				     (r->dsn[0] == '2') ? r->dsn :
				     rp->type == DSN_TYPE_DELAY ? "4.0.0" :
				     rp->type == DSN_TYPE_EXPIRED ? "4.4.7" :
				     rp->type == DSN_TYPE_SUCCESS ? "2.0.0" :
				     "5.0.0");
		if (dsn_relay_known(r->relay)) {
			dsn_relay_host(r->relay, host, sizeof(host));
			ret |= strbuf_appends(out, "Remote-MTA: dns; ");
			ret |= dsn_put_clean(out, host, sizeof(host));
			ret |= strbuf_appends(out, "\r\n");
		}
		if ((smtp = dsn_smtp_reply(r, &slen)) != NULL) {
			char   *text = xstrndup(smtp, slen);

			ret |= strbuf_appends(out, "Diagnostic-Code: smtp; ");
			ret |= dsn_put_clean(out, text, DSN_REPLY_MAX);
			ret |= strbuf_appends(out, "\r\n");
			xfree(text);
		} else if (r->reply && *r->reply) {
			ret |= strbuf_appends(out, "Diagnostic-Code: "
					      "X-Sendarix; ");
			ret |= dsn_put_clean(out, r->reply, DSN_REPLY_MAX);
			ret |= strbuf_appends(out, "\r\n");
		}
		mail_date(date, sizeof(date), rp->now);
		ret |= strbuf_printf(out, "Last-Attempt-Date: %s\r\n", date);
		if (rp->type == DSN_TYPE_DELAY && rp->retry_until > 0) {
			mail_date(date, sizeof(date), rp->retry_until);
			ret |= strbuf_printf(out, "Will-Retry-Until: %s\r\n",
					     date);
		}
	}
	return (ret ? -1 : 0);
}

/* dsn_report_compose - the whole notification message */
int
dsn_report_compose(const struct dsn_report *rp, struct strbuf *out)
{
	const char *orig = rp->content ? rp->content : "";
	size_t  orig_len = rp->content ? rp->content_len : 0;
	size_t  hlen;
	int     full;
	int     eight;
	char    date[64];
	int     ret = 0;

	/* What goes back: the whole message, or its header section. */
	/* RET applies to failures only (RFC 3461 4.3): others get headers. */
	full = (rp->type == DSN_TYPE_FAILURE || rp->type == DSN_TYPE_EXPIRED)
		&& rp->ret != DSN_RET_HDRS && orig_len <= rp->size_limit;
	if (!full) {
		hlen = dsn_header_len(orig, orig_len);
		if (hlen > rp->size_limit) {
			/* Cut at the end of a line that fits. */
			for (hlen = rp->size_limit; hlen > 0; hlen--)
				if (orig[hlen - 1] == '\n')
					break;
		}
		orig_len = hlen;
	}
	eight = dsn_has_8bit(orig, orig_len);

	mail_date(date, sizeof(date), rp->now);
	ret |= strbuf_appends(out, "From: Mail Delivery System "
			      "<MAILER-DAEMON@");
	ret |= dsn_put_clean(out, rp->myhostname, 255);
	ret |= strbuf_appends(out, ">\r\nTo: <");
	ret |= dsn_put_clean(out, rp->sender, DSN_ADDR_MAX);
	ret |= strbuf_printf(out, ">\r\nSubject: %s\r\n",
			     rp->type == DSN_TYPE_DELAY ?
			     "Delayed Mail (still being retried)" :
			     rp->type == DSN_TYPE_SUCCESS ?
			     "Successful Mail Delivery Report" :
			     "Undelivered Mail Returned to Sender");
	ret |= strbuf_printf(out, "Date: %s\r\n", date);
	ret |= strbuf_printf(out, "Message-ID: <%s>\r\n", rp->message_id);
	ret |= strbuf_appends(out, "Auto-Submitted: auto-replied\r\n"
			      "MIME-Version: 1.0\r\n"
			      "Content-Type: multipart/report; "
			      "report-type=delivery-status;\r\n");
	ret |= strbuf_printf(out, "\tboundary=\"%s\"\r\n", rp->boundary);
	if (eight)
		ret |= strbuf_appends(out,
				      "Content-Transfer-Encoding: 8bit\r\n");
	ret |= strbuf_appends(out, "\r\nThis is a MIME-encapsulated message."
			      "\r\n\r\n");

	ret |= strbuf_printf(out, "--%s\r\n"
			     "Content-Description: Notification\r\n"
			     "Content-Type: text/plain; charset=us-ascii\r\n"
			     "\r\n", rp->boundary);
	ret |= dsn_compose_text(rp, out);

	ret |= strbuf_printf(out, "\r\n--%s\r\n"
			     "Content-Description: %s report\r\n"
			     "Content-Type: message/delivery-status\r\n"
			     "\r\n", rp->boundary,
			     rp->type == DSN_TYPE_DELAY ?
			     "Delay" : "Delivery");
	ret |= dsn_compose_status(rp, out);

	ret |= strbuf_printf(out, "\r\n--%s\r\n"
			     "Content-Description: %s\r\n"
			     "Content-Type: %s\r\n", rp->boundary,
			     full ? "Undelivered Message" :
			     rp->type == DSN_TYPE_DELAY ?
			     "Delayed Message Headers" :
			     rp->type == DSN_TYPE_SUCCESS ?
			     "Delivered Message Headers" :
			     "Undelivered Message Headers",
			     full ? "message/rfc822" : "text/rfc822-headers");
	if (eight)
		ret |= strbuf_appends(out,
				      "Content-Transfer-Encoding: 8bit\r\n");
	ret |= strbuf_appends(out, "\r\n");
	ret |= strbuf_append(out, orig, orig_len);
	if (orig_len < 2 || orig[orig_len - 2] != '\r'
	    || orig[orig_len - 1] != '\n')
		ret |= strbuf_appends(out, "\r\n");
	ret |= strbuf_printf(out, "\r\n--%s--\r\n", rp->boundary);
	return (ret ? -1 : 0);
}
