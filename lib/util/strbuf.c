/*
 * strbuf - growable, length-counted, binary-safe byte buffer
 *
 * SYNOPSIS
 *	struct strbuf *strbuf_new(size_t initial, size_t limit)
 *	struct strbuf *strbuf_free(struct strbuf *sb)
 *	void	strbuf_reset(struct strbuf *sb)
 *	int	strbuf_append(struct strbuf *sb, const void *data, size_t len)
 *	int	strbuf_appends(struct strbuf *sb, const char *str)
 *	int	strbuf_appendc(struct strbuf *sb, int ch)
 *	int	strbuf_printf(struct strbuf *sb, const char *fmt, ...)
 *	int	strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
 *	int	strbuf_setf(struct strbuf *sb, const char *fmt, ...)
 *	int	strbuf_set(struct strbuf *sb, const void *data, size_t len)
 *	int	strbuf_sets(struct strbuf *sb, const char *str)
 *	void	strbuf_truncate(struct strbuf *sb, size_t len)
 *	void	strbuf_consume(struct strbuf *sb, size_t len)
 *	int	strbuf_reserve(struct strbuf *sb, size_t room)
 *	char	*strbuf_steal(struct strbuf *sb, size_t *lenp)
 *
 * DESCRIPTION
 *	strbuf_new() makes an empty buffer with room for "initial" bytes that
 *	will never hold more than "limit" bytes (0: no limit of its own).
 *	The caller owns it and releases it with strbuf_free(), which accepts
 *	NULL and returns NULL.
 *
 *	The append and set functions return 0, or -1 when the result would be
 *	longer than the limit; the buffer is then left as it was.
 *	strbuf_printf() appends formatted text. strbuf_setf() replaces the
 *	content with formatted text; it is meant for optional error buffers
 *	and does nothing (returning 0) when sb is NULL.
 *
 *	strbuf_truncate() shortens the buffer (never lengthens it).
 *	strbuf_consume() drops "len" bytes from the front.
 *	strbuf_reserve() makes room for "room" more bytes without changing
 *	the content; -1 if that passes the limit.
 *	strbuf_steal() returns the data (NUL terminated, caller frees) and
 *	leaves the buffer empty.
 *
 * DIAGNOSTICS
 *	Out of memory ends the process (xmalloc).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "xmalloc.h"

#define STRBUF_HARD_LIMIT	(SIZE_MAX / 2)

/* strbuf_new - make an empty buffer */
struct strbuf *
strbuf_new(size_t initial, size_t limit)
{
	struct strbuf *sb = xmalloc(sizeof(*sb));

	if (limit == 0 || limit > STRBUF_HARD_LIMIT)
		limit = STRBUF_HARD_LIMIT;
	if (initial > limit)
		initial = limit;
	if (initial < 16)
		initial = 16;
	sb->size = initial + 1;
	sb->data = xmalloc(sb->size);
	sb->data[0] = 0;
	sb->len = 0;
	sb->limit = limit;
	return (sb);
}

/* strbuf_free - release a buffer; NULL is fine */
struct strbuf *
strbuf_free(struct strbuf *sb)
{
	if (sb) {
		free(sb->data);
		free(sb);
	}
	return (NULL);
}

/* strbuf_reset - make the buffer empty, keep its memory */
void
strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->data[0] = 0;
}

/* strbuf_reserve - make room for more bytes within the limit */
int
strbuf_reserve(struct strbuf *sb, size_t room)
{
	size_t  need;
	size_t  nsize;

	if (room > sb->limit - sb->len)
		return (-1);
	need = sb->len + room + 1;
	if (need <= sb->size)
		return (0);
	nsize = sb->size;
	while (nsize < need)
		nsize = (nsize > STRBUF_HARD_LIMIT / 2) ? need : nsize * 2;
	sb->data = xrealloc(sb->data, nsize);
	sb->size = nsize;
	return (0);
}

/* strbuf_append - append bytes */
int
strbuf_append(struct strbuf *sb, const void *data, size_t len)
{
	if (strbuf_reserve(sb, len) < 0)
		return (-1);
	if (len)
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = 0;
	return (0);
}

/* strbuf_appends - append a C string */
int
strbuf_appends(struct strbuf *sb, const char *str)
{
	return (strbuf_append(sb, str, strlen(str)));
}

/* strbuf_appendc - append one byte */
int
strbuf_appendc(struct strbuf *sb, int ch)
{
	char    c = (char) ch;

	return (strbuf_append(sb, &c, 1));
}

/* strbuf_vprintf - append formatted text */
int
strbuf_vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	int     n;
	size_t  avail;

	va_copy(ap2, ap);
	avail = sb->size - sb->len;
	n = vsnprintf(sb->data + sb->len, avail, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		sb->data[sb->len] = 0;
		return (-1);
	}
	if ((size_t) n >= avail) {
		if (strbuf_reserve(sb, (size_t) n) < 0) {
			sb->data[sb->len] = 0;
			return (-1);
		}
		va_copy(ap2, ap);
		n = vsnprintf(sb->data + sb->len, sb->size - sb->len, fmt, ap2);
		va_end(ap2);
		if (n < 0) {
			sb->data[sb->len] = 0;
			return (-1);
		}
	} else if ((size_t) n > sb->limit - sb->len) {
		sb->data[sb->len] = 0;
		return (-1);
	}
	sb->len += (size_t) n;
	return (0);
}

/* strbuf_printf - append formatted text */
int
strbuf_printf(struct strbuf *sb, const char *fmt,...)
{
	va_list ap;
	int     ret;

	va_start(ap, fmt);
	ret = strbuf_vprintf(sb, fmt, ap);
	va_end(ap);
	return (ret);
}

/* strbuf_setf - replace the content with formatted text */
int
strbuf_setf(struct strbuf *sb, const char *fmt,...)
{
	va_list ap;
	int     ret;

	if (sb == NULL)
		return (0);
	strbuf_reset(sb);
	va_start(ap, fmt);
	ret = strbuf_vprintf(sb, fmt, ap);
	va_end(ap);
	return (ret);
}

/* strbuf_set - replace the content */
int
strbuf_set(struct strbuf *sb, const void *data, size_t len)
{
	if (len > sb->limit)
		return (-1);
	strbuf_reset(sb);
	return (strbuf_append(sb, data, len));
}

/* strbuf_sets - replace the content with a C string */
int
strbuf_sets(struct strbuf *sb, const char *str)
{
	return (strbuf_set(sb, str, strlen(str)));
}

/* strbuf_truncate - shorten the content */
void
strbuf_truncate(struct strbuf *sb, size_t len)
{
	if (len < sb->len) {
		sb->len = len;
		sb->data[len] = 0;
	}
}

/* strbuf_consume - drop bytes from the front */
void
strbuf_consume(struct strbuf *sb, size_t len)
{
	if (len >= sb->len) {
		strbuf_reset(sb);
		return;
	}
	memmove(sb->data, sb->data + len, sb->len - len);
	sb->len -= len;
	sb->data[sb->len] = 0;
}

/* strbuf_steal - take the data out, leave the buffer empty */
char   *
strbuf_steal(struct strbuf *sb, size_t *lenp)
{
	char   *p = sb->data;

	if (lenp)
		*lenp = sb->len;
	sb->size = 17;
	sb->data = xmalloc(sb->size);
	sb->data[0] = 0;
	sb->len = 0;
	return (p);
}
