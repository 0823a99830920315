/*
 * evmem - a small-object pool for libevent's allocations
 *
 * SYNOPSIS
 *	#include "evmem.h"
 *
 *	void	evmem_init(void)
 *	void   *evmem_malloc(size_t size)
 *	void   *evmem_realloc(void *ptr, size_t size)
 *	void	evmem_free(void *ptr)
 *	size_t	evmem_cells(void)
 *
 * DESCRIPTION
 *	libevent allocates a small record for every descriptor number on
 *	which an event was ever added (its evmap) and never frees it. In a
 *	daemon that serves many sessions those records are allocated in
 *	between the sessions' own memory, so that after a burst of sessions
 *	each leaves a heap page or so that malloc_trim() cannot return.
 *	This module keeps every allocation of at most EVMEM_CELL bytes in
 *	blocks of its own, so that the heap around them can shrink.
 *
 *	evmem_init() makes libevent use the three functions below
 *	(event_set_mem_functions()); call it before any other libevent
 *	call. Memory that libevent got before is still freed correctly.
 *
 *	evmem_malloc() returns a pool cell for a size of at most EVMEM_CELL
 *	(0 included), else malloc()'s memory. evmem_realloc() and
 *	evmem_free() take either kind (and NULL). Cells go back on a free
 *	list for reuse; pool blocks are never given back. The functions are
 *	thread-safe (libunbound runs libevent in a thread of its own).
 *
 *	evmem_cells() is the number of cells in use, for tests.
 *
 * DIAGNOSTICS
 *	Out of memory ends the process (xmalloc), as everywhere. When the
 *	pool is full (EVMEM_BLOCKS blocks) small objects come from malloc().
 *
 * SEE ALSO
 *	event_set_mem_functions(3), lib/master/server_event.c
 */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "evmem.h"
#include "xmalloc.h"

#define EVMEM_BLOCK	(64 * 1024)	/* bytes per pool block */
#define EVMEM_BLOCKS	1024		/* at most 64 MB of cells */

union evmem_cell {
	union evmem_cell *next;		/* while free */
	max_align_t align;
	char    data[EVMEM_CELL];
};

static pthread_mutex_t evmem_lock = PTHREAD_MUTEX_INITIALIZER;
static char *evmem_blocks[EVMEM_BLOCKS];
static size_t evmem_nblocks;		/* under the lock; read atomically */
static uintptr_t evmem_lo;		/* all blocks are in [lo, hi) */
static uintptr_t evmem_hi;
static union evmem_cell *evmem_freelist;
static size_t evmem_carved;		/* cells used of the last block */
static size_t evmem_used;

/* evmem_owns - is this a pool cell? */
static int
evmem_owns(const void *ptr)
{
	uintptr_t p = (uintptr_t) ptr;
	size_t  n;
	size_t  i;

	if (p < __atomic_load_n(&evmem_lo, __ATOMIC_ACQUIRE)
	    || p >= __atomic_load_n(&evmem_hi, __ATOMIC_ACQUIRE))
		return (0);
	/* Blocks are only added, and never moved: no lock needed. */
	n = __atomic_load_n(&evmem_nblocks, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++)
		if (p >= (uintptr_t) evmem_blocks[i]
		    && p < (uintptr_t) evmem_blocks[i] + EVMEM_BLOCK)
			return (1);
	return (0);
}

/* evmem_cell_get - a free cell, or NULL when the pool is full */
static void *
evmem_cell_get(void)
{
	union evmem_cell *c = NULL;
	char   *b;

	(void) pthread_mutex_lock(&evmem_lock);
	if ((c = evmem_freelist) != NULL) {
		evmem_freelist = c->next;
	} else {
		if (evmem_nblocks == 0 || evmem_carved
		    == EVMEM_BLOCK / sizeof(union evmem_cell)) {
			if (evmem_nblocks == EVMEM_BLOCKS)
				goto out;
			b = xmalloc(EVMEM_BLOCK);
			evmem_blocks[evmem_nblocks] = b;
			if (evmem_lo == 0 || (uintptr_t) b < evmem_lo)
				__atomic_store_n(&evmem_lo, (uintptr_t) b,
						 __ATOMIC_RELEASE);
			if ((uintptr_t) b + EVMEM_BLOCK > evmem_hi)
				__atomic_store_n(&evmem_hi, (uintptr_t) b
						 + EVMEM_BLOCK, __ATOMIC_RELEASE);
			__atomic_store_n(&evmem_nblocks, evmem_nblocks + 1,
					 __ATOMIC_RELEASE);
			evmem_carved = 0;
		}
		c = (union evmem_cell *) evmem_blocks[evmem_nblocks - 1]
			+ evmem_carved++;
	}
	evmem_used++;
out:
	(void) pthread_mutex_unlock(&evmem_lock);
	return (c);
}

/* evmem_malloc - small sizes from the pool, the rest from malloc() */
void   *
evmem_malloc(size_t size)
{
	void   *p;

	if (size <= EVMEM_CELL && (p = evmem_cell_get()) != NULL)
		return (p);
	return (xmalloc(size ? size : 1));
}

/* evmem_free - back to the pool or to free() */
void
evmem_free(void *ptr)
{
	union evmem_cell *c = ptr;

	if (ptr == NULL)
		return;
	if (!evmem_owns(ptr)) {
		free(ptr);
		return;
	}
	(void) pthread_mutex_lock(&evmem_lock);
	c->next = evmem_freelist;
	evmem_freelist = c;
	evmem_used--;
	(void) pthread_mutex_unlock(&evmem_lock);
}

/* evmem_realloc - resize either kind */
void   *
evmem_realloc(void *ptr, size_t size)
{
	void   *p;

	if (ptr == NULL)
		return (evmem_malloc(size));
	if (!evmem_owns(ptr))
		return (xrealloc(ptr, size ? size : 1));
	if (size <= EVMEM_CELL)
		return (ptr);
	p = xmalloc(size);
	memcpy(p, ptr, EVMEM_CELL);
	evmem_free(ptr);
	return (p);
}

/* evmem_cells - cells in use */
size_t
evmem_cells(void)
{
	size_t  n;

	(void) pthread_mutex_lock(&evmem_lock);
	n = evmem_used;
	(void) pthread_mutex_unlock(&evmem_lock);
	return (n);
}

/* evmem_init - hand the functions to libevent */
void
evmem_init(void)
{
	event_set_mem_functions(evmem_malloc, evmem_realloc, evmem_free);
}
