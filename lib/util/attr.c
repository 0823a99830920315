/*
 * attr - IPC attribute lists
 *
 * SYNOPSIS
 *	#include "attr.h"
 *
 *	int	attr_put(struct strbuf *sb, const char *name,
 *			const void *value, size_t len)
 *	int	attr_puts(struct strbuf *sb, const char *name, const char *str)
 *	int	attr_putl(struct strbuf *sb, const char *name, long long val)
 *	int	attr_end(struct strbuf *sb)
 *
 *	int	attr_next(const char *buf, size_t len, size_t maxval,
 *			struct attr *a, size_t *used)
 *	int	attr_name_is(const struct attr *a, const char *name)
 *	int	attr_list_parse(const char *buf, size_t len, size_t maxval,
 *			struct attr_list *list, size_t *used)
 *	const char *attr_list_get(const struct attr_list *list,
 *			const char *name)
 *	int	attr_list_getl(const struct attr_list *list, const char *name,
 *			long long *val)
 *	void	attr_list_clear(struct attr_list *list)
 *
 *	int	attr_write_fd(int fd, const struct strbuf *sb)
 *	int	attr_read_fd(int fd, struct strbuf *inbuf, size_t maxval,
 *			int timeout, struct attr_list *list)
 *
 * DESCRIPTION
 *	Wire form of one attribute: NAME '=' LENGTH ':' VALUE '\n'; a lone
 *	'\n' ends a list (see attr.h and docs/ipc.md).
 *
 *	attr_put() appends one attribute to "sb"; attr_puts() one with a C
 *	string value, attr_putl() one with a decimal value, attr_end() the
 *	end of the list. They return 0, or -1 when the name is not valid or
 *	the buffer's limit would be passed; the buffer is then unchanged.
 *
 *	attr_next() looks at the start of "buf" and returns ATTR_OK with "a"
 *	pointing into "buf" (one attribute), ATTR_END (the lone '\n'),
 *	ATTR_MORE (the bytes so far are a valid prefix, but not yet a whole
 *	attribute) or ATTR_BAD (a bad name, a bad length: leading zeros, more
 *	than 10 digits, over "maxval", or no '\n' after the value). "used" is
 *	set to the number of bytes taken on ATTR_OK and ATTR_END. "maxval"
 *	is the longest value accepted; 0 means no limit but the 10 digits.
 *	A prefix of a valid list is never ATTR_BAD, however it is split.
 *
 *	attr_list_parse() parses a whole list into "list", which must be
 *	zeroed (or used before); it is emptied first. It returns 1 with
 *	"used" set when the list is complete, 0 when more bytes are needed
 *	and -1 when the input is malformed; "list" is empty after 0 and -1.
 *	The list owns copies of the names and values; each value has a NUL
 *	after its length. Release them with attr_list_clear(), which leaves
 *	the list zeroed and reusable.
 *
 *	attr_list_get() returns the first value of "name" or NULL; the list
 *	owns it. attr_list_getl() stores the first value of "name" read as
 *	a decimal (optional '-') and returns 0, or -1 when it is missing,
 *	not a number or out of range.
 *
 *	attr_write_fd() writes the whole buffer, retrying after EINTR and
 *	short writes (and waiting on EAGAIN); 0 or -1 with errno.
 *
 *	attr_read_fd() reads from "fd" into "inbuf" until "inbuf" holds a
 *	whole list, parses it into "list" and removes it from "inbuf"; any
 *	bytes after the list stay in "inbuf" for the next call. "timeout" is
 *	the most seconds to wait in all (<= 0: no limit). It returns 0, or
 *	-1 on end of file (errno 0), timeout (ETIMEDOUT), malformed input or
 *	an "inbuf" limit reached (EPROTO), or a read error (errno from read).
 *
 * DIAGNOSTICS
 *	No function here logs or ends the process, except xmalloc() when
 *	memory runs out.
 *
 * SEE ALSO
 *	docs/ipc.md, strbuf(3)
 */

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "strbuf.h"
#include "xmalloc.h"

#define ATTR_LEN_DIGITS	10		/* at most 9999999999 */
#define ATTR_READ_CHUNK	16384

/* attr_name_char - a byte allowed in a name */
static int
attr_name_char(int c)
{
	return ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
}

/* attr_name_ok - check a whole name */
static int
attr_name_ok(const char *name, size_t len)
{
	size_t  i;

	if (len == 0 || len > ATTR_NAME_MAX)
		return (0);
	for (i = 0; i < len; i++)
		if (!attr_name_char((unsigned char) name[i]))
			return (0);
	return (1);
}

/* attr_put - append one attribute */
int
attr_put(struct strbuf *sb, const char *name, const void *value, size_t len)
{
	char    num[24];
	size_t  namelen = strlen(name);
	size_t  need;
	int     n;

	if (!attr_name_ok(name, namelen) || (value == NULL && len > 0))
		return (-1);
	n = snprintf(num, sizeof(num), "%zu", len);
	if (n <= 0 || n > ATTR_LEN_DIGITS)
		return (-1);
	/* Reserve it all first, so that a refused append changes nothing. */
	if (len > SIZE_MAX - namelen - (size_t) n - 3)
		return (-1);
	need = namelen + 1 + (size_t) n + 1 + len + 1;
	if (strbuf_reserve(sb, need) < 0)
		return (-1);
	(void) strbuf_append(sb, name, namelen);
	(void) strbuf_appendc(sb, '=');
	(void) strbuf_append(sb, num, (size_t) n);
	(void) strbuf_appendc(sb, ':');
	(void) strbuf_append(sb, value, len);
	(void) strbuf_appendc(sb, '\n');
	return (0);
}

/* attr_puts - append one attribute with a C string value */
int
attr_puts(struct strbuf *sb, const char *name, const char *str)
{
	return (attr_put(sb, name, str, strlen(str)));
}

/* attr_putl - append one attribute with a decimal value */
int
attr_putl(struct strbuf *sb, const char *name, long long val)
{
	char    num[24];
	int     n;

	n = snprintf(num, sizeof(num), "%lld", val);
	if (n <= 0 || (size_t) n >= sizeof(num))
		return (-1);
	return (attr_put(sb, name, num, (size_t) n));
}

/* attr_end - append the end of the list */
int
attr_end(struct strbuf *sb)
{
	return (strbuf_appendc(sb, '\n'));
}

/* attr_next - parse one attribute or the end of the list */
int
attr_next(const char *buf, size_t len, size_t maxval, struct attr *a,
	  size_t *used)
{
	size_t  pos;
	size_t  namelen;
	size_t  ndigits;
	unsigned long long vlen = 0;
	size_t  vstart;

	if (len == 0)
		return (ATTR_MORE);
	if (buf[0] == '\n') {
		*used = 1;
		return (ATTR_END);
	}

	/* NAME '=' */
	for (pos = 0; pos < len && buf[pos] != '='; pos++) {
		if (!attr_name_char((unsigned char) buf[pos]) || pos >= ATTR_NAME_MAX)
			return (ATTR_BAD);
	}
	if (pos >= len)
		return (ATTR_MORE);
	if (pos == 0)
		return (ATTR_BAD);
	namelen = pos++;

	/* LENGTH ':' */
	for (ndigits = 0; pos < len && buf[pos] != ':'; pos++, ndigits++) {
		if (buf[pos] < '0' || buf[pos] > '9')
			return (ATTR_BAD);
		if (ndigits >= ATTR_LEN_DIGITS)
			return (ATTR_BAD);
		if (ndigits == 1 && vlen == 0)
			return (ATTR_BAD);		/* leading zero */
		vlen = vlen * 10 + (unsigned long long) (buf[pos] - '0');
		/* The length only grows with more digits: reject it now. */
		if ((maxval > 0 && vlen > maxval) || vlen > SIZE_MAX / 2)
			return (ATTR_BAD);
	}
	if (pos >= len)
		return (ATTR_MORE);
	if (ndigits == 0)
		return (ATTR_BAD);
	vstart = ++pos;

	/* VALUE '\n' */
	if (len - vstart < vlen + 1)
		return (ATTR_MORE);
	if (buf[vstart + vlen] != '\n')
		return (ATTR_BAD);
	a->name = buf;
	a->namelen = namelen;
	a->value = buf + vstart;
	a->len = (size_t) vlen;
	*used = vstart + (size_t) vlen + 1;
	return (ATTR_OK);
}

/* attr_name_is - compare an attribute's name with a C string */
int
attr_name_is(const struct attr *a, const char *name)
{
	size_t  len = strlen(name);

	return (a->namelen == len && memcmp(a->name, name, len) == 0);
}

/* attr_list_add - append a copy of one attribute to a list */
static void
attr_list_add(struct attr_list *list, const struct attr *a)
{
	char   *v;

	if (list->n == list->cap) {
		size_t  ncap = list->cap ? list->cap * 2 : 8;

		list->names = xreallocarray(list->names, ncap, sizeof(char *));
		list->values = xreallocarray(list->values, ncap, sizeof(char *));
		list->lens = xreallocarray(list->lens, ncap, sizeof(size_t));
		list->cap = ncap;
	}
	v = xmalloc(a->len + 1);
	if (a->len)
		memcpy(v, a->value, a->len);
	v[a->len] = 0;
	list->names[list->n] = xstrndup(a->name, a->namelen);
	list->values[list->n] = v;
	list->lens[list->n] = a->len;
	list->n++;
}

/* attr_list_clear - release the copies, leave the list zeroed */
void
attr_list_clear(struct attr_list *list)
{
	size_t  i;

	for (i = 0; i < list->n; i++) {
		free(list->names[i]);
		free(list->values[i]);
	}
	free(list->names);
	free(list->values);
	free(list->lens);
	memset(list, 0, sizeof(*list));
}

/* attr_list_scan - find the end of a list without copying */
static int
attr_list_scan(const char *buf, size_t len, size_t maxval, size_t *pos)
{
	struct attr a;
	size_t  used;
	int     ret;

	for (;;) {
		ret = attr_next(buf + *pos, len - *pos, maxval, &a, &used);
		if (ret == ATTR_OK) {
			*pos += used;
			continue;
		}
		if (ret == ATTR_END) {
			*pos += used;
			return (1);
		}
		return (ret == ATTR_MORE ? 0 : -1);
	}
}

/* attr_list_parse - parse a whole list into owned copies */
int
attr_list_parse(const char *buf, size_t len, size_t maxval,
		struct attr_list *list, size_t *used)
{
	struct attr a;
	size_t  pos = 0;
	size_t  n;
	int     ret;

	attr_list_clear(list);

	/* Check first, so that an incomplete list costs no copies. */
	if ((ret = attr_list_scan(buf, len, maxval, &pos)) <= 0)
		return (ret);
	*used = pos;
	for (pos = 0; attr_next(buf + pos, len - pos, maxval, &a, &n) == ATTR_OK;
	     pos += n)
		attr_list_add(list, &a);
	return (1);
}

/* attr_list_get - the first value of a name */
const char *
attr_list_get(const struct attr_list *list, const char *name)
{
	size_t  i;

	for (i = 0; i < list->n; i++)
		if (strcmp(list->names[i], name) == 0)
			return (list->values[i]);
	return (NULL);
}

/* attr_list_getl - the first value of a name, as a decimal */
int
attr_list_getl(const struct attr_list *list, const char *name,
	       long long *val)
{
	size_t  i;
	const char *s;
	char   *end;
	long long v;

	for (i = 0; i < list->n; i++)
		if (strcmp(list->names[i], name) == 0)
			break;
	if (i == list->n)
		return (-1);
	s = list->values[i];
	/* Digits only (and a sign): no spaces, no '+', no embedded NUL. */
	if (list->lens[i] == 0 || strlen(s) != list->lens[i])
		return (-1);
	if (!((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0'
					       && s[1] <= '9')))
		return (-1);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != 0)
		return (-1);
	*val = v;
	return (0);
}

/* attr_write_fd - write a whole buffer */
int
attr_write_fd(int fd, const struct strbuf *sb)
{
	size_t  off = 0;
	ssize_t n;
	struct pollfd pfd;

	while (off < sb->len) {
		n = write(fd, sb->data + off, sb->len - off);
		if (n > 0) {
			off += (size_t) n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return (-1);
		} else {
			if (n == 0)
				errno = EIO;
			return (-1);
		}
	}
	return (0);
}

/* attr_now_ms - a monotonic clock in milliseconds */
static long long
attr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* attr_read_fd - read one whole list from a descriptor */
int
attr_read_fd(int fd, struct strbuf *inbuf, size_t maxval, int timeout,
	     struct attr_list *list)
{
	long long deadline = 0;
	size_t  scanned = 0;
	size_t  used;
	struct pollfd pfd;
	ssize_t n;
	int     wait_ms;
	int     ret;

	attr_list_clear(list);
	if (timeout > 0)
		deadline = attr_now_ms() + (long long) timeout * 1000;
	for (;;) {
		/* Continue where the last look stopped: no rescans. */
		ret = attr_list_scan(inbuf->data, inbuf->len, maxval, &scanned);
		if (ret < 0) {
			errno = EPROTO;
			return (-1);
		}
		if (ret > 0)
			break;
		if (timeout > 0) {
			long long left = deadline - attr_now_ms();

			if (left <= 0) {
				errno = ETIMEDOUT;
				return (-1);
			}
			wait_ms = left > INT_MAX ? INT_MAX : (int) left;
		} else {
			wait_ms = -1;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		ret = poll(&pfd, 1, wait_ms);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		if (ret == 0)
			continue;			/* the deadline check says */
		if (strbuf_reserve(inbuf, ATTR_READ_CHUNK) < 0
		    && strbuf_reserve(inbuf, 1) < 0) {
			errno = EPROTO;
			return (-1);
		}
		n = read(fd, inbuf->data + inbuf->len,
			 inbuf->size - inbuf->len - 1 < inbuf->limit - inbuf->len ?
			 inbuf->size - inbuf->len - 1 : inbuf->limit - inbuf->len);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN
			    || errno == EWOULDBLOCK)
				continue;
			return (-1);
		}
		if (n == 0) {
			errno = 0;
			return (-1);
		}
		inbuf->len += (size_t) n;
		inbuf->data[inbuf->len] = 0;
	}
	if (attr_list_parse(inbuf->data, inbuf->len, maxval, list, &used) != 1) {
		errno = EPROTO;			/* cannot happen after the scan */
		return (-1);
	}
	strbuf_consume(inbuf, used);
	return (0);
}
