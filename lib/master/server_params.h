#ifndef SENDARIX_SERVER_PARAMS_H
#define SENDARIX_SERVER_PARAMS_H

#include <stddef.h>

/*
 * A daemon's parameter table: which parameters it reads into which
 * variables. How a value is parsed (integer, time, size, yes/no) and
 * its default come from the one table of parameters (conf_params[]),
 * its range from conf_bounds[]: the ranges "sendarix check" enforces.
 */
enum server_param_kind {
	SERVER_PARAM_K_LONG,		/* integer or time, into a long */
	SERVER_PARAM_K_LLONG,		/* integer, time or size, long long */
	SERVER_PARAM_K_BOOL,		/* yes/no, into an int */
	SERVER_PARAM_K_STR,		/* a string (malloc'ed copy) */
	SERVER_PARAM_K_NAME,		/* a string that may not be empty */
};

struct server_param {
	const char *name;
	enum server_param_kind kind;
	union {
		long   *l;
		long long *ll;
		int    *b;
		char  **s;
	}       var;
};

/* Table entries, so that the compiler checks each variable's type. */
#define SERVER_PARAM_LONG(n, v)	{(n), SERVER_PARAM_K_LONG, {.l = (v)}}
#define SERVER_PARAM_LLONG(n, v) {(n), SERVER_PARAM_K_LLONG, {.ll = (v)}}
#define SERVER_PARAM_BOOL(n, v)	{(n), SERVER_PARAM_K_BOOL, {.b = (v)}}
#define SERVER_PARAM_STR(n, v)	{(n), SERVER_PARAM_K_STR, {.s = (v)}}
#define SERVER_PARAM_NAME(n, v)	{(n), SERVER_PARAM_K_NAME, {.s = (v)}}

#define SERVER_PARAMS_COUNT(t)	(sizeof(t) / sizeof((t)[0]))

extern void server_params_read(const struct server_param *, size_t);

#endif
