#ifndef SENDARIX_STRBUF_H
#define SENDARIX_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

/*
 * A growable, length-counted, binary-safe byte buffer. data[len] is always
 * a NUL byte, so a buffer that holds text can be used as a C string.
 * A buffer never grows past its limit: appends that would fail return -1
 * and leave the buffer unchanged.
 */
struct strbuf {
	char   *data;
	size_t  len;
	size_t  size;			/* allocated, including the NUL */
	size_t  limit;			/* max len; 0 = no limit but SIZE_MAX/2 */
};

#define STRBUF_STR(sb)	((sb)->data)
#define STRBUF_LEN(sb)	((sb)->len)

extern struct strbuf *strbuf_new(size_t, size_t);
extern struct strbuf *strbuf_free(struct strbuf *);
extern void strbuf_reset(struct strbuf *);
extern int strbuf_append(struct strbuf *, const void *, size_t);
extern int strbuf_appends(struct strbuf *, const char *);
extern int strbuf_appendc(struct strbuf *, int);
extern int strbuf_printf(struct strbuf *, const char *,...)
		__attribute__((format(printf, 2, 3)));
extern int strbuf_vprintf(struct strbuf *, const char *, va_list)
		__attribute__((format(printf, 2, 0)));
extern int strbuf_setf(struct strbuf *, const char *,...)
		__attribute__((format(printf, 2, 3)));
extern int strbuf_set(struct strbuf *, const void *, size_t);
extern int strbuf_sets(struct strbuf *, const char *);
extern void strbuf_truncate(struct strbuf *, size_t);
extern void strbuf_consume(struct strbuf *, size_t);
extern int strbuf_reserve(struct strbuf *, size_t);
extern char *strbuf_steal(struct strbuf *, size_t *);

#endif
