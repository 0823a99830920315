/*
 * sendarix_check - is the configuration good enough to start?
 *
 * SYNOPSIS
 *	#include "sendarix.h"
 *
 *	int	sendarix_check_main(int argc, char **argv)
 *	int	cli_check_config(int flags)
 *
 * DESCRIPTION
 *	"sendarix check" reads master.cf and runs conf_check() (lib/) on it
 *	and on the main.cf that main() loaded, with the queue directory
 *	checks too. Like "postfix check" it prints nothing on a good
 *	configuration. Each problem is one line on standard error,
 *	"sendarix: fatal: ..." for what would keep the mail system from
 *	starting and "sendarix: warning: ..." for the rest.
 *
 *	cli_check_config() does the same for start and reload, with the
 *	given conf_check() flags, and returns the number of errors.
 *
 * DIAGNOSTICS
 *	sendarix_check_main(): exit status 0 when there is no error
 *	(warnings do not count), 1 otherwise, 2 on a usage error.
 *
 * SEE ALSO
 *	conf_check(3), sendarix(1)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_check.h"
#include "mastercf.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "sendarix.h"

/* check_report - one problem, one line */
static void
check_report(int level, const char *msg, void *unused_ctx)
{
	(void) unused_ctx;
	fprintf(stderr, "sendarix: %s: %s\n",
		level == CONF_CHECK_ERROR ? "fatal" : "warning", msg);
}

/* cli_check_config - master.cf and main.cf; the number of errors */
int
cli_check_config(int flags)
{
	struct strbuf *err = strbuf_new(256, 0);
	const char *dir = conf_config_dir();
	struct mastercf *cf;
	char   *path;
	size_t  len;
	int     errors;

	len = strlen(dir) + sizeof("/master.cf");
	path = xmalloc(len);
	snprintf(path, len, "%s/master.cf", dir);
	if ((cf = mastercf_load(path, err)) == NULL)
		check_report(CONF_CHECK_ERROR, STRBUF_STR(err), NULL);
	errors = conf_check(cf, flags, check_report, NULL) + (cf == NULL);
	mastercf_free(cf);
	free(path);
	strbuf_free(err);
	return (errors);
}

/* sendarix_check_main - "sendarix check" */
int
sendarix_check_main(int argc, char **argv)
{
	if (argc != 1) {
		cli_error("usage: sendarix %s", argv[0]);
		return (2);
	}
	return (cli_check_config(CONF_CHECK_QUEUE) > 0 ? 1 : 0);
}
