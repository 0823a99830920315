#ifndef SENDARIX_CONF_CHECK_H
#define SENDARIX_CONF_CHECK_H

struct mastercf;

/* How bad one problem is. */
#define CONF_CHECK_WARN		0	/* reported; starts anyway */
#define CONF_CHECK_ERROR	1	/* refuses to start or reload */

/* What else to look at, besides parameters and master.cf. */
#define CONF_CHECK_QUEUE	(1 << 0)	/* queue_directory and its folders */

/* Called once per problem, with a one-line message. */
typedef void (*conf_check_fn) (int, const char *, void *);

extern int conf_check(const struct mastercf *, int, conf_check_fn, void *);

struct conf_param;
struct strbuf;
extern int conf_check_param(const struct conf_param *, const char *,
			            struct strbuf *);

#endif
