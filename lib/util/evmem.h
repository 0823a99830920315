#ifndef SENDARIX_EVMEM_H
#define SENDARIX_EVMEM_H

#include <stddef.h>

/*
 * A small-object pool for libevent's allocations (lib/util/evmem.c): objects
 * that libevent keeps for every descriptor number it has seen stay in
 * pool blocks of their own instead of pinning the heap between sessions.
 */
#define EVMEM_CELL	32		/* largest size kept in the pool */

extern void evmem_init(void);
extern void *evmem_malloc(size_t);
extern void *evmem_realloc(void *, size_t);
extern void evmem_free(void *);
extern size_t evmem_cells(void);

#endif
