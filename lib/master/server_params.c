/*
 * server_params - every daemon reads its parameters the same way
 *
 * SYNOPSIS
 *	#include "server_params.h"
 *
 *	static const struct server_param table[] = {
 *		SERVER_PARAM_LONG("smtpd_timeout", &var_smtpd_timeout),
 *		SERVER_PARAM_NAME("cleanup_service_name", &var_cleanup),
 *		...
 *	};
 *
 *	void	server_params_read(const struct server_param *table,
 *			size_t count)
 *
 * DESCRIPTION
 *	server_params_read() reads each parameter of the table into its
 *	variable, from the loaded main.cf and -o overrides (conf_load()),
 *	usually in a daemon's pre_init. One rule for all daemons, the one
 *	"sendarix check" applies (conf_check()):
 *
 *	- how the value is parsed (integer, time with a unit, size with a
 *	  suffix, yes/no) is the parameter's type in conf_params[], and
 *	  its default is there too;
 *	- a value that does not parse, or a number outside the parameter's
 *	  range in conf_bounds[], ends the process at start, with a message
 *	  that names the parameter, the value and the range:
 *	  parameter hopcount_limit: value "0" out of range 1..100000;
 *	- a SERVER_PARAM_NAME string may not be empty
 *	  (parameter cleanup_service_name: empty value).
 *
 *	A string variable gets a malloc'ed copy; the old value is freed,
 *	so the table may be read again (tests, reload in-process).
 *
 *	Whatever a daemon accepts, "sendarix check" accepts, and the other
 *	way round: both read the same tables with the same checks.
 * DIAGNOSTICS
 *	log_panic() for a name missing from conf_params[] or a kind that
 *	does not fit the parameter's type (a programming error);
 *	log_fatal() for a bad value.
 * SEE ALSO
 *	conf(3), conf_check(3), sendarix-params(5)
 */

#include <stdlib.h>

#include "conf.h"
#include "log.h"
#include "xmalloc.h"

#include "server_params.h"

/* server_param_number - a numeric value, checked against its range */
static long long
server_param_number(const struct conf_param *cp)
{
	switch (cp->type) {
	case CONF_INT:
		return (conf_get_int(cp->name));
	case CONF_TIME:
		return (conf_get_time(cp->name));
	case CONF_SIZE:
		return (conf_get_size(cp->name));
	case CONF_BOOL:
		return (conf_get_bool(cp->name));
	default:
		log_panic("parameter %s: not a number", cp->name);
	}
	return (0);
}

/* server_param_read - one entry of a table */
static void
server_param_read(const struct server_param *p)
{
	const struct conf_param *cp;
	const char *v;

	if ((cp = conf_param_find(p->name)) == NULL)
		log_panic("unknown parameter %s", p->name);
	switch (p->kind) {
	case SERVER_PARAM_K_LONG:
		if (cp->type == CONF_STR || cp->type == CONF_SIZE)
			log_panic("parameter %s: not an integer or time",
				  p->name);
		*p->var.l = (long) server_param_number(cp);
		break;
	case SERVER_PARAM_K_LLONG:
		if (cp->type == CONF_STR)
			log_panic("parameter %s: not a number", p->name);
		*p->var.ll = server_param_number(cp);
		break;
	case SERVER_PARAM_K_BOOL:
		if (cp->type != CONF_BOOL)
			log_panic("parameter %s: not yes/no", p->name);
		*p->var.b = conf_get_bool(p->name);
		break;
	case SERVER_PARAM_K_STR:
	case SERVER_PARAM_K_NAME:
		v = conf_get(p->name);
		if (p->kind == SERVER_PARAM_K_NAME && (v == NULL || *v == 0))
			log_fatal("parameter %s: empty value", p->name);
		free(*p->var.s);
		*p->var.s = xstrdup(v ? v : "");
		break;
	}
}

/* server_params_read - a daemon's whole table */
void
server_params_read(const struct server_param *table, size_t count)
{
	size_t  i;

	for (i = 0; i < count; i++)
		server_param_read(table + i);
}
