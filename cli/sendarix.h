#ifndef SENDARIX_CLI_H
#define SENDARIX_CLI_H

/*
 * Subcommands of the sendarix command. Each gets the words after its
 * name (argv[0] is the subcommand name), with -c CONFIG_DIR and -v
 * already taken out and main.cf already loaded (conf_get() works).
 * Each returns the process exit status: 0 success, 1 failure, 2 usage.
 * Messages for the user go to stderr as "sendarix: ...".
 */
extern int sendarix_conf_main(int, char **);
extern int sendarix_map_main(int, char **);
extern int sendarix_queue_main(int, char **);
extern int sendarix_ctl_main(int, char **);	/* start stop reload status */
extern int sendarix_sandbox_main(int, char **);
extern int sendarix_check_main(int, char **);
extern int sendarix_tlsrpt_main(int, char **);

/* sendarix_check.c: conf_check() with its problems on stderr. */
extern int cli_check_config(int);

extern void sendarix_usage(void);
extern void cli_error(const char *,...)
		__attribute__((format(printf, 1, 2)));

#endif
