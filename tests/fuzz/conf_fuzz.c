/*
 * conf_fuzz - libFuzzer target for the main.cf parser and $name expansion
 *
 * Build:
 *	clang -fsanitize=fuzzer,address -Ilib tests/fuzz/conf_fuzz.c \
 *	    build/libsendarix.a -o conf_fuzz
 *
 * Each input is written to a main.cf in a private temporary directory
 * and loaded; every name it sets is read back expanded and run through
 * the typed parsers, and the input itself is expanded as a string. No
 * input may crash, leak or end the process.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "strbuf.h"

static char conf_fuzz_dir[] = "/tmp/conf_fuzz.XXXXXX";
static char conf_fuzz_path[sizeof(conf_fuzz_dir) + 16];

/* conf_fuzz_init - once: a directory, quiet logging */
static void
conf_fuzz_init(void)
{
	if (mkdtemp(conf_fuzz_dir) == NULL)
		abort();
	snprintf(conf_fuzz_path, sizeof(conf_fuzz_path), "%s/main.cf",
		 conf_fuzz_dir);
	log_init("conf_fuzz");
	log_open("/dev/null", "conf_fuzz", "mail");
}

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int done_init;
	struct strbuf *err = strbuf_new(256, 0);
	FILE   *fp;
	size_t  i;
	const char *val;
	char   *str;
	long    l;
	long long ll;
	int     b;

	if (!done_init++)
		conf_fuzz_init();
	if ((fp = fopen(conf_fuzz_path, "w")) == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, fp) != size)
		abort();
	fclose(fp);

	conf_reset();
	if (conf_load(conf_fuzz_dir, err) == 0) {
		for (i = 0; i < conf_user_count(); i++) {
			val = conf_get(conf_user_name(i));
			(void) conf_get_raw(conf_user_name(i));
			(void) conf_parse_int(val, &l);
			(void) conf_parse_time(val, &l);
			(void) conf_parse_size(val, &ll);
			(void) conf_parse_bool(val, &b);
		}
		(void) conf_get("smtpd_banner");
		(void) conf_get("mydomain");
	}
	/* The input as one string to expand, up to its first NUL. */
	str = malloc(size + 1);
	if (str == NULL)
		abort();
	memcpy(str, data, size);
	str[size] = 0;
	free(conf_expand(str));
	(void) conf_override(str, err);
	free(str);
	conf_reset();
	strbuf_free(err);
	return (0);
}
