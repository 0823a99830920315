/*
 * mastercf_fuzz - libFuzzer target for the master.cf parser
 *
 * Build:
 *	clang -fsanitize=fuzzer,address -Ilib tests/fuzz/mastercf_fuzz.c \
 *	    build/libsendarix.a -o mastercf_fuzz
 *
 * The input is parsed as a master.cf text (not NUL terminated). A good
 * result must be well formed: every service has its fields and vectors.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mastercf.h"
#include "strbuf.h"

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct mastercf *cf;
	size_t  i;
	size_t  j;

	cf = mastercf_parse((const char *) data, size, "fuzz", err);
	if (cf == NULL) {
		if (err->len == 0)
			abort();		/* an error must say why */
	} else {
		for (i = 0; i < cf->count; i++) {
			const struct mastercf_service *s = &cf->svc[i];

			if (s->name == NULL || s->type == NULL
			    || s->command == NULL || s->maxproc < -1
			    || s->wakeup < 0 || s->lineno < 1)
				abort();
			for (j = 0; j < s->noverrides; j++)
				if (strchr(s->overrides[j], '=') == NULL)
					abort();
			for (j = 0; j < s->nargs; j++)
				(void) strlen(s->args[j]);
		}
	}
	mastercf_free(cf);
	strbuf_free(err);
	return (0);
}
