#ifndef SENDARIX_XMALLOC_H
#define SENDARIX_XMALLOC_H

#include <stddef.h>

extern void *xmalloc(size_t);
extern void *xcalloc(size_t, size_t);
extern void *xrealloc(void *, size_t);
extern void *xreallocarray(void *, size_t, size_t);
extern char *xstrdup(const char *);
extern char *xstrndup(const char *, size_t);
extern void *xmemdup(const void *, size_t);
extern void *xfree(void *);

#endif
