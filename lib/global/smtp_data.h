#ifndef SENDARIX_SMTP_DATA_H
#define SENDARIX_SMTP_DATA_H

#include <stddef.h>

/*
 * The content of SMTP DATA and BDAT as a server reads it: end detection,
 * dot-unstuffing, bare CR and LF. See smtp_data.c.
 */

/* Modes. */
#define SMTP_DATA_DOT		0	/* DATA: ends at CRLF.CRLF, dot-stuffed */
#define SMTP_DATA_CHUNK		1	/* BDAT: counted bytes, no dots */

/* Flags. */
#define SMTP_DATA_F_RAW		(1 << 0)	/* keep bare CR, LF as they came */

typedef void (*smtp_data_emit_fn) (void *, const char *, size_t);
typedef void (*smtp_data_bare_fn) (void *);

struct smtp_data {
	int     mode;			/* SMTP_DATA_DOT or SMTP_DATA_CHUNK */
	int     flags;			/* SMTP_DATA_F_* */
	int     state;			/* private */
	int     bare;			/* bare CR or LF seen */
	int     last_lf;		/* the last byte emitted was LF */
	smtp_data_emit_fn emit;
	smtp_data_bare_fn bare_fn;	/* may be NULL */
	void   *ctx;
};

extern void smtp_data_init(struct smtp_data *, int, int, smtp_data_emit_fn,
			           smtp_data_bare_fn, void *);
extern size_t smtp_data_scan(struct smtp_data *, const char *, size_t,
			             int *);
extern void smtp_data_end(struct smtp_data *);

#endif
