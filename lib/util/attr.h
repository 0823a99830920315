#ifndef SENDARIX_ATTR_H
#define SENDARIX_ATTR_H

#include <stddef.h>

struct strbuf;

/*
 * IPC attribute lists. Wire form, one attribute:
 *
 *	NAME '=' LENGTH ':' VALUE '\n'
 *
 * NAME is 1..ATTR_NAME_MAX bytes of [a-z0-9_]; LENGTH is decimal, no sign,
 * no leading zeros (except "0"), at most 10 digits; VALUE is exactly
 * LENGTH bytes of anything (binary safe). A list ends with a lone '\n'.
 * Message content is streamed as a list whose attributes are all "data".
 *
 * Example: "sender=17:alice@example.com\nrcpt=5:b@c.d\n\n"
 */
#define ATTR_NAME_MAX	32

#define ATTR_BAD	(-1)		/* malformed or over a limit */
#define ATTR_MORE	0		/* need more bytes */
#define ATTR_OK		1		/* one attribute parsed */
#define ATTR_END	2		/* the end of the list */

/* One attribute, pointing into the caller's buffer (not NUL terminated). */
struct attr {
	const char *name;
	size_t  namelen;
	const char *value;
	size_t  len;
};

/* A whole list, with its own copies; each value has a NUL after it. */
struct attr_list {
	size_t  n;
	size_t  cap;
	char  **names;
	char  **values;
	size_t *lens;
};

/* Encoding: append to a buffer; -1 if the buffer's limit is reached. */
extern int attr_put(struct strbuf *, const char *, const void *, size_t);
extern int attr_puts(struct strbuf *, const char *, const char *);
extern int attr_putl(struct strbuf *, const char *, long long);
extern int attr_end(struct strbuf *);

/* Incremental decoding. */
extern int attr_next(const char *, size_t, size_t, struct attr *, size_t *);
extern int attr_name_is(const struct attr *, const char *);
extern int attr_list_parse(const char *, size_t, size_t, struct attr_list *,
			           size_t *);
extern const char *attr_list_get(const struct attr_list *, const char *);
extern int attr_list_getl(const struct attr_list *, const char *, long long *);
extern void attr_list_clear(struct attr_list *);

/* Blocking helpers for simple clients (cli, local submission). */
extern int attr_write_fd(int, const struct strbuf *);
extern int attr_read_fd(int, struct strbuf *, size_t, int,
			        struct attr_list *);

#endif
