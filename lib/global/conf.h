#ifndef SENDARIX_CONF_H
#define SENDARIX_CONF_H

#include <stddef.h>

struct strbuf;

/*
 * Parameter types. The type says how a value is checked and read:
 * TIME takes a number with an optional unit (s, m, h, d, w; default s),
 * SIZE takes a byte count with an optional k, m or g suffix (powers of 1024),
 * BOOL takes yes/no (also true/false, on/off, 1/0).
 */
enum conf_type {
	CONF_STR,
	CONF_INT,
	CONF_BOOL,
	CONF_TIME,
	CONF_SIZE,
};

/* One entry of the one table of parameters (conf_params.c). */
struct conf_param {
	const char *name;
	enum conf_type type;
	const char *def;		/* default, before $name expansion */
	const char *desc;		/* one line */
};

extern const struct conf_param conf_params[];
extern const size_t conf_params_count;

/*
 * The range of a numeric parameter outside of which a program refuses to
 * start (conf_params.c). In its own table so that the entries of
 * conf_params[] stay four fields.
 */
struct conf_bound {
	const char *name;
	long long min;
	long long max;
};

extern const struct conf_bound conf_bounds[];
extern const size_t conf_bounds_count;

#ifndef SENDARIX_CONFIG_DIR
#define SENDARIX_CONFIG_DIR	"/etc/sendarix"
#endif

/* Loading. */
extern int conf_load(const char *, struct strbuf *);
extern int conf_load_file(const char *, struct strbuf *);
extern int conf_override(const char *, struct strbuf *);
extern void conf_reset(void);
extern const char *conf_config_dir(void);

/* Reading effective values ($name expanded). */
extern const char *conf_get(const char *);
extern const char *conf_get_raw(const char *);
extern long conf_get_int(const char *);
extern int conf_get_bool(const char *);
extern long conf_get_time(const char *);
extern long long conf_get_size(const char *);
extern int conf_is_set(const char *);
extern const struct conf_param *conf_param_find(const char *);

/* Value parsers, for checks and for callers with their own strings. */
extern int conf_parse_bool(const char *, int *);
extern int conf_parse_time(const char *, long *);
extern int conf_parse_size(const char *, long long *);
extern int conf_parse_int(const char *, long *);

/* Checking a value against its parameter's type and bounds. */
extern const struct conf_bound *conf_param_bound(const char *);
extern int conf_check_value(const struct conf_param *, const char *,
			            struct strbuf *);

/* Keeping the settings aside, to go back to them (reload, checks). */
struct conf_saved;
extern struct conf_saved *conf_save(void);
extern void conf_restore(struct conf_saved *);
extern struct conf_saved *conf_saved_free(struct conf_saved *);

/* For "sendarix conf": every name set in main.cf, in file order. */
extern size_t conf_user_count(void);
extern const char *conf_user_name(size_t);

/* The logical-line reader that main.cf and master.cf share. */
extern int conf_next_line(const char **, const char *, int *,
			          struct strbuf *, int *, struct strbuf *);

/* Expand $name and ${name} in a string; caller frees. */
extern char *conf_expand(const char *);

#endif
