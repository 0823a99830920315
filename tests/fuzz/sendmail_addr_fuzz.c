/*
 * sendmail_addr_fuzz - libFuzzer target for the sendmail -t address parser
 *
 * Build: see the Makefile's fuzz-build (the module lives in cli/ and is
 * compiled in here).
 *
 * Checks beyond "does not crash": every address added is non-empty, has
 * no control characters, is qualified (has an '@'), and appears once.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/sendmail_addr.c"

const char *sendmail_myorigin = "origin.example";

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sendmail_env env;
	const char *cp;
	size_t  i;
	size_t  j;
	int     n;

	memset(&env, 0, sizeof(env));
	n = sendmail_addr_list((const char *) data, size, &env);
	if (n >= 0 && (size_t) n != env.nrcpt)
		abort();
	for (i = 0; i < env.nrcpt; i++) {
		if (env.rcpts[i][0] == 0 || strchr(env.rcpts[i], '@') == NULL)
			abort();
		for (cp = env.rcpts[i]; *cp; cp++)
			if ((unsigned char) *cp < 32 || *cp == 127)
				abort();
		for (j = 0; j < i; j++)
			if (strcmp(env.rcpts[i], env.rcpts[j]) == 0)
				abort();
	}
	sendmail_env_clear(&env);
	return (0);
}
