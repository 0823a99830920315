#ifndef SENDARIX_PICKUP_H
#define SENDARIX_PICKUP_H

/*
 * pickup - private interfaces of the pickup daemon
 */

#define PICKUP_MAILDROP		"maildrop"
#define PICKUP_DROP_VERSION	"1"	/* maildrop file format (ipc.md) */
#define PICKUP_ENV_VALUE_MAX	4096	/* one envelope value */
#define PICKUP_DATA_MAX		65536	/* one "data" value */
#define PICKUP_REASON_MAX	512
#define PICKUP_STALE_TMP	86400	/* an unfinished .NAME this old goes */

/* What became of one maildrop file. */
#define PICKUP_DONE	0		/* submitted, or refused: removed */
#define PICKUP_KEEP	1		/* try again at the next scan */
#define PICKUP_CORRUPT	2		/* moved to corrupt/ */

extern char *var_cleanup_service_name;
extern long long var_pickup_timeout;

/* pickup_file.c */
extern int pickup_file(const char *);

#endif
