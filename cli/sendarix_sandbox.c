/*
 * sendarix_sandbox - "sendarix sandbox": run the sandbox program
 *
 * SYNOPSIS
 *	#include "sendarix.h"
 *
 *	int	sendarix_sandbox_main(int argc, char **argv)
 *
 * DESCRIPTION
 *	The SMTP sink of sendarix-sandbox(1) is a program of its own
 *	(sandbox/), installed in daemon_directory beside the daemons.
 *	sendarix_sandbox_main() executes it in place of this process, with
 *	the arguments after the command word ("-v" once per -v given to
 *	sendarix), so that the process ID, standard streams and exit
 *	status are the sandbox's.
 *
 *	The program is daemon_directory/sandbox when main.cf sets
 *	daemon_directory. Otherwise a sandbox beside the running sendarix
 *	comes first when sendarix does not run from its installed place
 *	(a build tree: build/bin/sendarix and build/bin/sandbox), then
 *	the compiled-in daemon_directory.
 *
 * DIAGNOSTICS
 *	A program that cannot be executed: one line, exit status 1.
 *
 * SEE ALSO
 *	sendarix-sandbox(1), sandbox/sandbox.c
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "xmalloc.h"
#include "sendarix.h"

#define SANDBOX_PROGRAM	"sandbox"

/* sandbox_path - dir/sandbox; caller frees */
static char *
sandbox_path(const char *dir)
{
	size_t  len = strlen(dir) + sizeof(SANDBOX_PROGRAM) + 1;
	char   *path = xmalloc(len);

	snprintf(path, len, "%s/%s", dir, SANDBOX_PROGRAM);
	return (path);
}

/* sandbox_beside - the sandbox next to this program, or NULL */
static char *
sandbox_beside(void)
{
	char    self[PATH_MAX];
	char   *slash;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return (NULL);
	self[n] = 0;
	if ((slash = strrchr(self, '/')) == NULL)
		return (NULL);
	*slash = 0;
	if (strcmp(self, SENDARIX_COMMAND_DIR) == 0)
		return (NULL);
	return (sandbox_path(self));
}

/* sendarix_sandbox_main - "sendarix sandbox": exec the program */
int
sendarix_sandbox_main(int argc, char **argv)
{
	char  **args = xcalloc((size_t) argc + log_verbose + 1, sizeof(char *));
	char   *path = NULL;
	int     n = 0;
	int     i;

	if (!conf_is_set("daemon_directory")
	    && (path = sandbox_beside()) != NULL && access(path, X_OK) < 0)
		path = xfree(path);
	if (path == NULL)
		path = sandbox_path(conf_get("daemon_directory"));
	args[n++] = SANDBOX_PROGRAM;
	for (i = 0; i < log_verbose; i++)
		args[n++] = "-v";
	for (i = 1; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	execv(path, args);
	cli_error("sandbox: cannot run %s: %s", path, strerror(errno));
	xfree(path);
	xfree(args);
	return (1);
}
