/*
 * sendarix - the operator's command
 *
 * SYNOPSIS
 *	sendarix [-c config_dir] [-v] command [args...]
 *
 * DESCRIPTION
 *	One command for operators. This file holds main(): it takes the
 *	options every command shares (-c and -v, also accepted right after
 *	the command word), loads main.cf from the configuration directory
 *	(-c, else $SENDARIX_CONFIG_DIR, else the compiled-in default), and
 *	hands the rest to the command:
 *
 *	start, stop, reload, status	sendarix_ctl.c
 *	check				sendarix_check.c
 *	conf				sendarix_conf.c
 *	map				sendarix_map.c
 *	queue				sendarix_queue.c
 *	tlsrpt				sendarix_tlsrpt.c
 *
 * DIAGNOSTICS
 *	Exit status 0 on success, 1 on failure, 2 on a usage error.
 *
 * SEE ALSO
 *	sendarix(1)
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "strbuf.h"
#include "sendarix.h"

static const struct {
	const char *name;
	int     (*fn) (int, char **);
}       sendarix_cmds[] = {
	{"start", sendarix_ctl_main},
	{"stop", sendarix_ctl_main},
	{"reload", sendarix_ctl_main},
	{"status", sendarix_ctl_main},
	{"check", sendarix_check_main},
	{"conf", sendarix_conf_main},
	{"map", sendarix_map_main},
	{"queue", sendarix_queue_main},
	{"sandbox", sendarix_sandbox_main},
	{"tlsrpt", sendarix_tlsrpt_main},
};

/* sendarix_usage - the command summary */
void
sendarix_usage(void)
{
	fprintf(stderr,
		"usage: sendarix [-c config_dir] [-v] command [args...]\n"
		"commands:\n"
		"  start | stop | reload | status   control the mail system\n"
		"  check                            check the configuration\n"
		"  conf [-n|-d] [name...]           show parameters\n"
		"  conf -e name=value...            edit main.cf\n"
		"  map build type:file              build a hash: or btree: table\n"
		"  map query type:name key...       look keys up in a table\n"
		"  queue list [--json]              list queued messages\n"
		"  queue show ID                    show one message\n"
		"  queue flush [ID|@domain]         retry deferred mail now\n"
		"  queue delete|hold|release|requeue ID|ALL\n"
		"  sandbox [-l port] [-d maildir]   run an SMTP sink for tests\n"
		"  tlsrpt [-s] [-d YYYY-MM-DD]      write (and send) the day's TLS-RPT reports\n"
		"see sendarix(1)\n");
}

/* cli_error - one line for the user */
void
cli_error(const char *fmt,...)
{
	va_list ap;

	fputs("sendarix: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
main(int argc, char **argv)
{
	const char *config_dir = getenv("SENDARIX_CONFIG_DIR");
	char  **args = calloc((size_t) argc + 1, sizeof(char *));
	int     nargs = 0;
	int     i;
	int     seen_cmd = 0;
	size_t  c;
	struct strbuf *err;
	int     ret;

	if (args == NULL)
		return (1);
	log_init("sendarix");

	/*
	 * Take -c DIR and -v from before the command and from right after
	 * the command word; everything else is the command's.
	 */
	for (i = 1; i < argc; i++) {
		if (nargs <= 1 && strcmp(argv[i], "-c") == 0) {
			if (++i >= argc) {
				sendarix_usage();
				free(args);
				return (2);
			}
			config_dir = argv[i];
		} else if (nargs <= 1 && strcmp(argv[i], "-v") == 0) {
			log_verbose++;
		} else if (nargs == 0 && argv[i][0] == '-'
			   && strcmp(argv[i], "-h") != 0
			   && strcmp(argv[i], "--help") != 0) {
			cli_error("unknown option: %s", argv[i]);
			sendarix_usage();
			free(args);
			return (2);
		} else {
			args[nargs++] = argv[i];
			seen_cmd = 1;
		}
	}
	if (!seen_cmd || strcmp(args[0], "-h") == 0
	    || strcmp(args[0], "--help") == 0 || strcmp(args[0], "help") == 0) {
		sendarix_usage();
		free(args);
		return (seen_cmd ? 0 : 2);
	}
	for (c = 0; c < sizeof(sendarix_cmds) / sizeof(sendarix_cmds[0]); c++)
		if (strcmp(args[0], sendarix_cmds[c].name) == 0)
			break;
	if (c == sizeof(sendarix_cmds) / sizeof(sendarix_cmds[0])) {
		cli_error("unknown command: %s", args[0]);
		sendarix_usage();
		free(args);
		return (2);
	}
	err = strbuf_new(256, 0);
	if (conf_load(config_dir ? config_dir : SENDARIX_CONFIG_DIR, err) < 0) {
		/* check reports every problem in one shape. */
		cli_error("%s%s", sendarix_cmds[c].fn == sendarix_check_main ?
			  "fatal: " : "", STRBUF_STR(err));
		strbuf_free(err);
		free(args);
		return (1);
	}
	strbuf_free(err);
	ret = sendarix_cmds[c].fn(nargs, args);
	/* Output that did not arrive is a failure too (a full disk). */
	if ((fflush(stdout) != 0 || ferror(stdout)) && ret == 0) {
		cli_error("write error on standard output");
		ret = 1;
	}
	free(args);
	return (ret);
}
