/*
 * xmalloc - memory allocators that succeed or end the process
 *
 * SYNOPSIS
 *	void *xmalloc(size_t len)
 *	void *xcalloc(size_t n, size_t len)
 *	void *xrealloc(void *ptr, size_t len)
 *	void *xreallocarray(void *ptr, size_t n, size_t len)
 *	char *xstrdup(const char *s)
 *	char *xstrndup(const char *s, size_t len)
 *	void *xmemdup(const void *p, size_t len)
 *	void *xfree(void *ptr)
 *
 * DESCRIPTION
 *	Thin wrappers around the C library allocators. The caller owns the
 *	memory returned and releases it with xfree() (or free()).
 *	xfree() accepts NULL and returns NULL, so "p = xfree(p)" is the idiom.
 *	xreallocarray() checks n * len for overflow.
 *
 * DIAGNOSTICS
 *	Out of memory or size overflow: log_fatal(), the process exits and
 *	master restarts it.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

/* xmalloc - allocate or die */
void *
xmalloc(size_t len)
{
	void   *p = malloc(len ? len : 1);

	if (p == NULL)
		log_fatal("out of memory allocating %zu bytes", len);
	return (p);
}

/* xcalloc - allocate zeroed array or die */
void *
xcalloc(size_t n, size_t len)
{
	void   *p = calloc(n ? n : 1, len ? len : 1);

	if (p == NULL)
		log_fatal("out of memory allocating %zu x %zu bytes", n, len);
	return (p);
}

/* xrealloc - resize or die */
void *
xrealloc(void *ptr, size_t len)
{
	void   *p = realloc(ptr, len ? len : 1);

	if (p == NULL)
		log_fatal("out of memory resizing to %zu bytes", len);
	return (p);
}

/* xreallocarray - resize an array with overflow check */
void *
xreallocarray(void *ptr, size_t n, size_t len)
{
	if (len && n > SIZE_MAX / len)
		log_fatal("allocation size overflow: %zu x %zu", n, len);
	return (xrealloc(ptr, n * len));
}

/* xstrdup - copy a string */
char *
xstrdup(const char *s)
{
	return (xmemdup(s, strlen(s) + 1));
}

/* xstrndup - copy at most len bytes of a string, NUL terminated */
char *
xstrndup(const char *s, size_t len)
{
	size_t  n = strnlen(s, len);
	char   *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = 0;
	return (p);
}

/* xmemdup - copy bytes, with a NUL after them */
void *
xmemdup(const void *src, size_t len)
{
	char   *p;

	if (len == SIZE_MAX)
		log_fatal("allocation size overflow");
	p = xmalloc(len + 1);
	memcpy(p, src, len);
	p[len] = 0;
	return (p);
}

/* xfree - release memory; NULL is fine */
void *
xfree(void *ptr)
{
	free(ptr);
	return (NULL);
}
