/*
 * evmem_test - unit tests for lib/util/evmem.c
 *
 * Small objects come from the pool and are reused; large ones from
 * malloc(); realloc moves between the two and keeps the contents; and
 * libevent works with the functions installed.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "evmem.h"

/* test_small_reused - cells are counted and reused after free */
static void
test_small_reused(void **unused_state)
{
	size_t  base = evmem_cells();
	char   *a = evmem_malloc(16);
	char   *b = evmem_malloc(EVMEM_CELL);
	char   *c;

	(void) unused_state;
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_int_equal(evmem_cells(), base + 2);
	memset(a, 'a', 16);
	memset(b, 'b', EVMEM_CELL);
	evmem_free(a);
	assert_int_equal(evmem_cells(), base + 1);
	c = evmem_malloc(8);
	assert_ptr_equal(c, a);			/* the freed cell again */
	evmem_free(c);
	evmem_free(b);
	evmem_free(NULL);
	assert_int_equal(evmem_cells(), base);
}

/* test_large_and_realloc - big sizes bypass the pool; realloc moves */
static void
test_large_and_realloc(void **unused_state)
{
	size_t  base = evmem_cells();
	char   *p = evmem_malloc(EVMEM_CELL + 1);
	char   *q;

	(void) unused_state;
	assert_int_equal(evmem_cells(), base);
	evmem_free(p);

	p = evmem_realloc(NULL, 10);
	assert_int_equal(evmem_cells(), base + 1);
	memcpy(p, "0123456789", 10);
	q = evmem_realloc(p, 20);		/* still fits its cell */
	assert_ptr_equal(q, p);
	p = evmem_realloc(q, 1000);		/* out of the pool */
	assert_int_equal(evmem_cells(), base);
	assert_memory_equal(p, "0123456789", 10);
	q = evmem_realloc(p, 5);		/* stays a malloc() block */
	assert_memory_equal(q, "01234", 5);
	assert_int_equal(evmem_cells(), base);
	evmem_free(q);
}

/* test_many - more cells than one block holds */
static void
test_many(void **unused_state)
{
	size_t  base = evmem_cells();
	size_t  n = 5000;
	size_t  i;
	char  **v = calloc(n, sizeof(*v));

	(void) unused_state;
	assert_non_null(v);
	for (i = 0; i < n; i++) {
		v[i] = evmem_malloc(24);
		memset(v[i], (int) (i & 0xff), 24);
	}
	assert_int_equal(evmem_cells(), base + n);
	for (i = 0; i < n; i++)
		assert_int_equal((unsigned char) v[i][23], i & 0xff);
	for (i = 0; i < n; i++)
		evmem_free(v[i]);
	assert_int_equal(evmem_cells(), base);
	free(v);
}

/* test_libevent - libevent runs on the installed functions */
static void
test_libevent(void **unused_state)
{
	struct event_base *base;
	struct evbuffer *buf;
	char    out[6];

	(void) unused_state;
	base = event_base_new();
	assert_non_null(base);
	buf = evbuffer_new();
	assert_non_null(buf);
	assert_int_equal(evbuffer_add(buf, "hello", 5), 0);
	assert_int_equal(evbuffer_remove(buf, out, 5), 5);
	out[5] = 0;
	assert_string_equal(out, "hello");
	evbuffer_free(buf);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest evmem_tests[] = {
		cmocka_unit_test(test_small_reused),
		cmocka_unit_test(test_large_and_realloc),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_libevent),
	};

	evmem_init();
	return (cmocka_run_group_tests_name("evmem", evmem_tests, NULL, NULL));
}
