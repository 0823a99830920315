#ifndef SENDARIX_SMTP_CMD_H
#define SENDARIX_SMTP_CMD_H

#include <stddef.h>

/*
 * The grammar of SMTP server commands (RFC 5321 section 4.1, RFC 1869
 * parameters, RFC 3030 BDAT), one for smtpd and the sandbox. See
 * smtp_cmd.c.
 */

/* smtp_cmd_path() results. */
#define SMTP_CMD_PATH_SYNTAX	(-1)	/* no "FROM:" / "TO:" */
#define SMTP_CMD_PATH_BAD	(-2)	/* bad address, or junk after it */
#define SMTP_CMD_PATH_UTF8	(-3)	/* fine, but only with SMTPUTF8 */

/* smtp_cmd_helo() results. */
#define SMTP_CMD_HELO_EMPTY	(-1)	/* no argument */
#define SMTP_CMD_HELO_BAD	(-2)	/* a blank or a non-ASCII byte */

#define SMTP_CMD_SIZE_DIGITS	19	/* at most, in a SIZE= value */

extern int smtp_cmd_split(char *, size_t, char **, size_t *, char **);
extern int smtp_cmd_helo(const char *);
extern int smtp_cmd_path(const char *, const char *, int, char **,
			         const char **, const char **);
extern int smtp_cmd_has_param(const char *, const char *);
extern char *smtp_cmd_param(char **, char **);
extern int smtp_cmd_size(const char *, long long *);
extern int smtp_cmd_bdat(const char *, unsigned long long *, int *);

#endif
