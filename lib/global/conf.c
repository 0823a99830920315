/*
 * conf - main.cf parameters: reading, $name expansion, typed values
 *
 * SYNOPSIS
 *	#include "conf.h"
 *
 *	int	conf_load(const char *config_dir, struct strbuf *err)
 *	int	conf_load_file(const char *path, struct strbuf *err)
 *	int	conf_override(const char *name_eq_value, struct strbuf *err)
 *	void	conf_reset(void)
 *	const char *conf_config_dir(void)
 *
 *	const char *conf_get(const char *name)
 *	const char *conf_get_raw(const char *name)
 *	long	conf_get_int(const char *name)
 *	int	conf_get_bool(const char *name)
 *	long	conf_get_time(const char *name)
 *	long long conf_get_size(const char *name)
 *	int	conf_is_set(const char *name)
 *	const struct conf_param *conf_param_find(const char *name)
 *
 *	int	conf_parse_bool(const char *str, int *result)
 *	int	conf_parse_time(const char *str, long *result)
 *	int	conf_parse_size(const char *str, long long *result)
 *	int	conf_parse_int(const char *str, long *result)
 *
 *	const struct conf_bound *conf_param_bound(const char *name)
 *	int	conf_check_value(const struct conf_param *param,
 *			const char *value, struct strbuf *why)
 *
 *	struct conf_saved *conf_save(void)
 *	void	conf_restore(struct conf_saved *saved)
 *	struct conf_saved *conf_saved_free(struct conf_saved *saved)
 *
 *	size_t	conf_user_count(void)
 *	const char *conf_user_name(size_t index)
 *
 *	char	*conf_expand(const char *str)
 *
 * DESCRIPTION
 *	main.cf holds lines "name = value". Blank lines and lines whose
 *	first non-blank character is "#" are ignored; a line that starts
 *	with white space continues the logical line before it (the pieces
 *	are joined with one space). The value is trimmed of white space at
 *	both ends; "#" inside a value is part of the value. A later setting
 *	of a name replaces an earlier one.
 *
 *	conf_load() reads config_dir/main.cf and remembers config_dir as
 *	config_directory. It replaces whatever an earlier conf_load() read;
 *	overrides stay. conf_load_file() reads one more file on top of what
 *	is there. Both apply a file only when the whole of it parses: on
 *	error nothing changes (so a reload with a bad main.cf keeps the
 *	running configuration). Names that are not in the parameter table draw a
 *	warning but are kept, so that $name works for them.
 *
 *	conf_override() applies one "name=value" (the master.cf -o form;
 *	white space around "=" is allowed); it takes precedence over
 *	main.cf. conf_reset() forgets everything (settings, overrides,
 *	cached values, config_directory).
 *
 *	conf_get() returns the effective value with $name, ${name} and
 *	$(name) expanded ("$$" is a literal "$"; ${name?text} gives text
 *	when name is not empty, ${name:text} when it is). A name that is
 *	not defined expands to nothing. The expansion is recursive; a loop
 *	(a = $b, b = $a) is reported once with a warning and the values in
 *	it stay unexpanded. Results are cached until the next load,
 *	override or reset. An empty myhostname means the system's host name
 *	(with ".localdomain" added when it has no dot); an empty mydomain
 *	means myhostname less its first label ("localdomain" when there is
 *	none). conf_get_raw() returns the value before expansion: the
 *	override, else the main.cf setting, else the table default.
 *
 *	conf_get_int(), conf_get_bool(), conf_get_time() (seconds; a number
 *	with an optional unit s, m, h, d or w) and conf_get_size() (bytes;
 *	optional k, m or g suffix, powers of 1024) read the expanded value.
 *
 *	conf_is_set() says whether main.cf or an override sets the name.
 *	conf_param_find() returns the table entry for a name, or NULL.
 *
 *	The conf_parse_*() helpers parse a string of their type into
 *	*result and return 0, or -1 (result untouched) when it does not
 *	parse or is out of range.
 *
 *	conf_param_bound() returns the range of a numeric parameter
 *	(conf_bounds[] in conf_params.c), or NULL when it has none.
 *	conf_check_value() says whether a value (already expanded) is good
 *	for a parameter: one of its type, and within its range. It returns
 *	0, or -1 with the reason in why, in the words the typed getters use
 *	when they end the process. A string parameter is always good here.
 *
 *	conf_save() keeps aside what main.cf and the overrides set now
 *	(and config_directory); conf_restore() goes back to it, as if the
 *	loads and overrides since had not happened, and frees the saved
 *	copy. A reload that fails its checks goes back this way, and a
 *	check of master.cf -o overrides applies them and undoes them.
 *	conf_saved_free() drops a saved copy that is not needed (NULL in,
 *	NULL out).
 *
 *	conf_user_count() and conf_user_name() list the names set in
 *	main.cf, each once, in the order of their first appearance.
 *
 *	conf_expand() expands $name references in any string.
 * MEMORY
 *	Strings returned by conf_get(), conf_get_raw(), conf_user_name()
 *	and conf_config_dir() belong to this module. They stay valid until
 *	conf_reset(), also across later loads and overrides (replaced
 *	strings are kept until then). conf_expand() returns a string the
 *	caller frees.
 * DIAGNOSTICS
 *	conf_load(), conf_load_file() and conf_override() return 0, or -1
 *	with a message in err ("/etc/sendarix/main.cf, line 3: ...").
 *	A typed getter whose value does not parse, or is outside its
 *	parameter's range, ends the process with log_fatal() (bad
 *	configuration). Asking for a name that is neither
 *	in the table nor set is a program bug: log_panic().
 * SEE ALSO
 *	conf_params.c, the one table of parameters; sendarix-params(5).
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "strbuf.h"
#include "strhash.h"
#include "xmalloc.h"

#define CONF_HASH_SIZE		256
#define CONF_EXPAND_DEPTH	100	/* nesting of $name within $name */
#define CONF_FILE_LIMIT		(16 * 1024 * 1024)

/* One name we know something about: a setting, a cached value or both. */
struct conf_ent {
	char   *name;
	const struct conf_param *param;	/* NULL: user-defined */
	char   *file_value;		/* from main.cf, or NULL */
	char   *over_value;		/* from conf_override(), or NULL */
	char   *cache;			/* expanded value, or NULL */
	int     busy;			/* being expanded right now */
	int     in_loop;		/* reaches a loop: unexpanded */
	int     listed;			/* in conf_users[] */
	struct conf_ent *next;		/* hash chain */
};

static struct conf_ent *conf_hash[CONF_HASH_SIZE];
static char *conf_dir;			/* from conf_load(), or NULL */
static char **conf_users;		/* names set in main.cf, file order */
static size_t conf_nusers;
static size_t conf_users_size;
static char **conf_retired;		/* replaced strings, freed on reset */
static size_t conf_nretired;
static size_t conf_retired_size;
static const struct conf_param **conf_sorted;	/* table, sorted by name */

/* Names of the expansions in progress, for the loop warning. */
static const char *conf_stack[CONF_EXPAND_DEPTH + 1];
static int conf_depth;

/* conf_hash_name - FNV-1a */
static unsigned
conf_hash_name(const char *name)
{
	return ((unsigned) (strhash(name) % CONF_HASH_SIZE));
}

/* conf_retire - keep a replaced string alive until conf_reset() */
static void
conf_retire(char *str)
{
	if (str == NULL)
		return;
	if (conf_nretired == conf_retired_size) {
		conf_retired_size = conf_retired_size ?
			conf_retired_size * 2 : 32;
		conf_retired = xreallocarray(conf_retired, conf_retired_size,
					     sizeof(*conf_retired));
	}
	conf_retired[conf_nretired++] = str;
}

/* conf_param_cmp - order table entries by name */
static int
conf_param_cmp(const void *a, const void *b)
{
	const struct conf_param *const *pa = a;
	const struct conf_param *const *pb = b;

	return (strcmp((*pa)->name, (*pb)->name));
}

/* conf_param_key_cmp - compare a name with a table entry */
static int
conf_param_key_cmp(const void *key, const void *elem)
{
	const struct conf_param *const *pe = elem;

	return (strcmp((const char *) key, (*pe)->name));
}

/* conf_param_find - the table entry for a name, or NULL */
const struct conf_param *
conf_param_find(const char *name)
{
	const struct conf_param **found;
	size_t  i;

	if (conf_sorted == NULL) {
		conf_sorted = xcalloc(conf_params_count + 1,
				      sizeof(*conf_sorted));
		for (i = 0; i < conf_params_count; i++)
			conf_sorted[i] = &conf_params[i];
		qsort(conf_sorted, conf_params_count, sizeof(*conf_sorted),
		      conf_param_cmp);
	}
	found = bsearch(name, conf_sorted, conf_params_count,
			sizeof(*conf_sorted), conf_param_key_cmp);
	return (found ? *found : NULL);
}

/* conf_lookup - find the entry of a name; make one if asked and allowed */
static struct conf_ent *
conf_lookup(const char *name, int create)
{
	unsigned h = conf_hash_name(name);
	struct conf_ent *ent;
	const struct conf_param *param;

	for (ent = conf_hash[h]; ent; ent = ent->next)
		if (strcmp(ent->name, name) == 0)
			return (ent);
	param = conf_param_find(name);
	if (param == NULL && !create)
		return (NULL);
	ent = xcalloc(1, sizeof(*ent));
	ent->name = xstrdup(name);
	ent->param = param;
	ent->next = conf_hash[h];
	conf_hash[h] = ent;
	return (ent);
}

/* conf_invalidate - drop every cached expansion */
static void
conf_invalidate(void)
{
	struct conf_ent *ent;
	size_t  h;

	for (h = 0; h < CONF_HASH_SIZE; h++) {
		for (ent = conf_hash[h]; ent; ent = ent->next) {
			conf_retire(ent->cache);
			ent->cache = NULL;
			ent->in_loop = 0;
		}
	}
}

/* conf_reset - forget everything */
void
conf_reset(void)
{
	struct conf_ent *ent;
	struct conf_ent *next;
	size_t  h;

	for (h = 0; h < CONF_HASH_SIZE; h++) {
		for (ent = conf_hash[h]; ent; ent = next) {
			next = ent->next;
			free(ent->name);
			free(ent->file_value);
			free(ent->over_value);
			free(ent->cache);
			free(ent);
		}
		conf_hash[h] = NULL;
	}
	while (conf_nretired > 0)
		free(conf_retired[--conf_nretired]);
	conf_retired = xfree(conf_retired);
	conf_retired_size = 0;
	conf_users = xfree(conf_users);
	conf_nusers = conf_users_size = 0;
	conf_dir = xfree(conf_dir);
	conf_depth = 0;
}

/* conf_config_dir - where main.cf came from */
const char *
conf_config_dir(void)
{
	return (conf_dir ? conf_dir : SENDARIX_CONFIG_DIR);
}

/* conf_valid_name - parameter names are [A-Za-z0-9_]+ */
static int
conf_valid_name(const char *name, size_t len)
{
	size_t  i;

	if (len == 0)
		return (0);
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char) name[i]) && name[i] != '_')
			return (0);
	return (1);
}

/* conf_trim - trim white space at both ends, in place */
static char *
conf_trim(char *str)
{
	char   *end;

	while (*str == ' ' || *str == '\t')
		str++;
	end = str + strlen(str);
	while (end > str && isspace((unsigned char) end[-1]))
		*--end = 0;
	return (str);
}

/*
 * conf_split - split "name = value" in place; NULL and a message in err
 * (without file and line) when it is malformed
 */
static int
conf_split(char *line, char **name, char **value, struct strbuf *why)
{
	char   *eq = strchr(line, '=');
	char   *n;

	if (eq == NULL) {
		strbuf_setf(why, "missing '=' after parameter name");
		return (-1);
	}
	*eq = 0;
	n = conf_trim(line);
	if (*n == 0) {
		strbuf_setf(why, "missing parameter name before '='");
		return (-1);
	}
	if (!conf_valid_name(n, strlen(n))) {
		strbuf_setf(why, "bad parameter name \"%.100s\"", n);
		return (-1);
	}
	*name = n;
	*value = conf_trim(eq + 1);
	return (0);
}

/*
 * conf_next_line - the next logical line of a main.cf or master.cf text:
 * 1 with the text in line and its first line number in start, 0 at the
 * end, -1 with a message in why. Blank and comment lines are skipped,
 * also between continuation lines; a line that starts with white space
 * continues the one before, joined with one space.
 */
int
conf_next_line(const char **cpp, const char *end, int *lineno,
	       struct strbuf *line, int *start, struct strbuf *why)
{
	const char *cp = *cpp;
	const char *nl;
	const char *s;
	const char *e;
	int     have = 0;

	strbuf_reset(line);
	while (cp < end) {
		nl = memchr(cp, '\n', (size_t) (end - cp));
		e = nl ? nl : end;
		if (memchr(cp, 0, (size_t) (e - cp)) != NULL) {
			strbuf_setf(why, "NUL byte in line");
			*start = *lineno + 1;
			return (-1);
		}
		for (s = cp; s < e && isspace((unsigned char) *s); s++)
			 /* void */ ;
		if (s == e || *s == '#') {
			/* Blank or comment: skipped, also within a line. */
			(*lineno)++;
			cp = nl ? nl + 1 : end;
			continue;
		}
		if (s == cp) {
			/* Starts a logical line: ours, or the next one. */
			if (have)
				break;
			have = 1;
			*start = *lineno + 1;
		} else if (!have) {
			strbuf_setf(why, "continuation line without a line "
				     "before it");
			*start = *lineno + 1;
			return (-1);
		} else {
			/* Continuation: join with one space. */
			while (line->len > 0
			  && isspace((unsigned char) line->data[line->len - 1]))
				strbuf_truncate(line, line->len - 1);
			(void) strbuf_appendc(line, ' ');
		}
		while (e > s && isspace((unsigned char) e[-1]))
			e--;
		if (strbuf_append(line, s, (size_t) (e - s)) < 0) {
			strbuf_setf(why, "line too long");
			*start = *lineno + 1;
			return (-1);
		}
		(*lineno)++;
		cp = nl ? nl + 1 : end;
	}
	*cpp = cp;
	return (have);
}

/* conf_add_user - remember a name set in main.cf, once, in file order */
static void
conf_add_user(struct conf_ent *ent)
{
	if (ent->listed)
		return;
	ent->listed = 1;
	if (conf_nusers == conf_users_size) {
		conf_users_size = conf_users_size ? conf_users_size * 2 : 32;
		conf_users = xreallocarray(conf_users, conf_users_size,
					   sizeof(*conf_users));
	}
	conf_users[conf_nusers++] = ent->name;
}

/*
 * conf_parse_text - parse a whole main.cf text, apply it when it is good;
 * with replace, the settings of an earlier main.cf go first
 */
static int
conf_parse_text(const char *buf, size_t len, const char *path,
		int replace, struct strbuf *err)
{
	struct strbuf *line = strbuf_new(256, 0);
	struct strbuf *why = strbuf_new(128, 0);
	const char *cp = buf;
	const char *end = buf + len;
	int     lineno = 0;
	int     start = 0;
	int     ret = 0;
	int     got;
	char   *name;
	char   *value;
	size_t  n = 0;
	size_t  size = 0;
	size_t  i;
	struct conf_pair {
		char   *name;
		char   *value;
		int     lineno;
	}      *pairs = NULL;
	struct conf_ent *ent;

	/* First parse it all, so that a bad file changes nothing. */
	while ((got = conf_next_line(&cp, end, &lineno, line, &start,
				     why)) != 0) {
		if (got < 0 || conf_split(line->data, &name, &value, why) < 0) {
			strbuf_setf(err, "%s, line %d: %s", path, start,
				     why->data);
			ret = -1;
			break;
		}
		if (n == size) {
			size = size ? size * 2 : 64;
			pairs = xreallocarray(pairs, size, sizeof(*pairs));
		}
		pairs[n].name = xstrdup(name);
		pairs[n].value = xstrdup(value);
		pairs[n].lineno = start;
		n++;
	}
	if (ret == 0 && replace) {
		for (i = 0; i < CONF_HASH_SIZE; i++) {
			for (ent = conf_hash[i]; ent; ent = ent->next) {
				conf_retire(ent->file_value);
				ent->file_value = NULL;
				ent->listed = 0;
			}
		}
		conf_nusers = 0;
	}
	for (i = 0; i < n; i++) {
		if (ret == 0) {
			if (conf_param_find(pairs[i].name) == NULL)
				log_warn("%s, line %d: unknown parameter %s",
					 path, pairs[i].lineno, pairs[i].name);
			else if (strcmp(pairs[i].name, "config_directory") == 0)
				log_warn("%s, line %d: config_directory is set "
					 "with -c, not in main.cf; ignored",
					 path, pairs[i].lineno);
			ent = conf_lookup(pairs[i].name, 1);
			conf_retire(ent->file_value);
			ent->file_value = pairs[i].value;
			pairs[i].value = NULL;
			conf_add_user(ent);
		}
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	strbuf_free(line);
	strbuf_free(why);
	if (ret == 0)
		conf_invalidate();
	return (ret);
}

/* conf_read_file - the whole of a file, NUL terminated; caller frees */
static char *
conf_read_file(const char *path, size_t *lenp, struct strbuf *err)
{
	struct stat st;
	char   *buf;
	size_t  len = 0;
	size_t  size;
	ssize_t got;
	int     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		strbuf_setf(err, "open %s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		strbuf_setf(err, "%s: not a regular file", path);
		close(fd);
		return (NULL);
	}
	size = st.st_size > 0 && st.st_size < CONF_FILE_LIMIT ?
		(size_t) st.st_size + 1 : 4096;
	buf = xmalloc(size + 1);
	for (;;) {
		if (len == size) {
			if (size >= CONF_FILE_LIMIT) {
				strbuf_setf(err, "%s: file too large", path);
				free(buf);
				close(fd);
				return (NULL);
			}
			size *= 2;
			buf = xrealloc(buf, size + 1);
		}
		got = read(fd, buf + len, size - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			strbuf_setf(err, "read %s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return (NULL);
		}
		if (got == 0)
			break;
		len += (size_t) got;
	}
	close(fd);
	buf[len] = 0;
	*lenp = len;
	return (buf);
}

/* conf_load_file - read one main.cf-style file */
int
conf_load_file(const char *path, struct strbuf *err)
{
	char   *buf;
	size_t  len;
	int     ret;

	if ((buf = conf_read_file(path, &len, err)) == NULL)
		return (-1);
	ret = conf_parse_text(buf, len, path, 0, err);
	free(buf);
	return (ret);
}

/* conf_load - read config_dir/main.cf, replacing an earlier load */
int
conf_load(const char *dir, struct strbuf *err)
{
	char   *path;
	char   *buf;
	size_t  len;
	size_t  plen;
	int     ret;

	plen = strlen(dir) + sizeof("/main.cf");
	path = xmalloc(plen);
	snprintf(path, plen, "%s/main.cf", dir);
	if ((buf = conf_read_file(path, &len, err)) == NULL) {
		free(path);
		return (-1);
	}
	/* A file that does not parse leaves the earlier settings alone. */
	if ((ret = conf_parse_text(buf, len, path, 1, err)) == 0) {
		conf_retire(conf_dir);
		conf_dir = xstrdup(dir);
		conf_invalidate();
	}
	free(buf);
	free(path);
	return (ret);
}

/* conf_override - apply "name=value", over main.cf */
int
conf_override(const char *setting, struct strbuf *err)
{
	char   *copy = xstrdup(setting);
	struct strbuf *why = strbuf_new(128, 0);
	struct conf_ent *ent;
	char   *name;
	char   *value;

	if (strchr(copy, '\n') != NULL) {
		strbuf_setf(err, "override \"%.100s\": newline in value",
			     setting);
		goto bad;
	}
	if (conf_split(copy, &name, &value, why) < 0) {
		strbuf_setf(err, "override \"%.100s\": %s", setting,
			     why->data);
		goto bad;
	}
	ent = conf_lookup(name, 1);
	conf_retire(ent->over_value);
	ent->over_value = xstrdup(value);
	conf_invalidate();
	free(copy);
	strbuf_free(why);
	return (0);

bad:
	free(copy);
	strbuf_free(why);
	return (-1);
}

/* conf_raw - the unexpanded value of an entry, NULL if it has none */
static const char *
conf_raw(const struct conf_ent *ent)
{
	if (ent->over_value)
		return (ent->over_value);
	if (conf_dir && ent->param
	    && strcmp(ent->name, "config_directory") == 0)
		return (conf_dir);
	if (ent->file_value)
		return (ent->file_value);
	if (ent->param)
		return (ent->param->def);
	return (NULL);
}

/* conf_is_set - does main.cf or an override set the name? */
int
conf_is_set(const char *name)
{
	struct conf_ent *ent = conf_lookup(name, 0);

	return (ent != NULL && (ent->file_value || ent->over_value));
}

static const char *conf_value(struct conf_ent *, int *);

/*
 * conf_expand_into - append str to out with $name expanded; *loop is set
 * when a name is reached again while its own expansion is in progress
 * (or nesting passes the depth limit)
 */
static void
conf_expand_into(struct strbuf *out, const char *str, int nest, int *loop)
{
	const char *cp = str;
	const char *name;
	const char *text = NULL;
	size_t  nlen;
	size_t  tlen = 0;
	char    close;
	char    op = 0;
	char   *key;
	struct conf_ent *ent;
	const char *val;
	int     depth;
	const char *p;

	while (*cp) {
		if (*cp != '$') {
			p = strchr(cp, '$');
			nlen = p ? (size_t) (p - cp) : strlen(cp);
			(void) strbuf_append(out, cp, nlen);
			cp += nlen;
			continue;
		}
		cp++;
		if (*cp == '$') {
			(void) strbuf_appendc(out, '$');
			cp++;
			continue;
		}
		op = 0;
		text = NULL;
		if (*cp == '{' || *cp == '(') {
			close = *cp == '{' ? '}' : ')';
			name = ++cp;
			while (isalnum((unsigned char) *cp) || *cp == '_')
				cp++;
			nlen = (size_t) (cp - name);
			if (*cp == '?' || *cp == ':') {
				/* ${name?text}, ${name:text}; text may nest. */
				op = *cp++;
				text = cp;
				for (depth = 0; *cp; cp++) {
					if (*cp == '{' || *cp == '(')
						depth++;
					else if ((*cp == '}' || *cp == ')')
						 && depth-- == 0)
						break;
				}
				tlen = (size_t) (cp - text);
			}
			if (*cp != close || nlen == 0) {
				/* Not a reference after all: keep it. */
				(void) strbuf_appendc(out, '$');
				cp = name - 1;
				(void) strbuf_appendc(out, *cp++);
				continue;
			}
			cp++;
		} else {
			name = cp;
			while (isalnum((unsigned char) *cp) || *cp == '_')
				cp++;
			nlen = (size_t) (cp - name);
			if (nlen == 0) {
				/* A lone "$": keep it. */
				(void) strbuf_appendc(out, '$');
				continue;
			}
		}
		key = xstrndup(name, nlen);
		ent = conf_lookup(key, 0);
		free(key);
		val = ent ? conf_value(ent, loop) : NULL;
		if (val == NULL)
			val = "";
		if (op == '?' || op == ':') {
			if ((op == '?') == (*val != 0)) {
				char   *sub = xstrndup(text, tlen);

				/* Nested ${a?${b?...}}: bounded like a loop. */
				if (nest < CONF_EXPAND_DEPTH)
					conf_expand_into(out, sub, nest + 1,
							 loop);
				else
					*loop = 1;
				free(sub);
			}
		} else {
			(void) strbuf_appends(out, val);
		}
	}
}

/* conf_system_hostname - gethostname(), with a domain part */
static char *
conf_system_hostname(void)
{
	char    host[256];

	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	if (strchr(host, '.') == NULL) {
		size_t  n = strlen(host);

		snprintf(host + n, sizeof(host) - n, ".localdomain");
	}
	return (xstrdup(host));
}

/*
 * conf_warn_loop - report an expansion loop; every name on the way is
 * marked, so that the loop is found (and reported) only once
 */
static void
conf_warn_loop(void)
{
	struct strbuf *chain = strbuf_new(128, 4096);
	struct conf_ent *ent;
	int     i;

	for (i = 0; i < conf_depth; i++) {
		(void) strbuf_printf(chain, "%s%s", i ? " -> " : "",
				     conf_stack[i]);
		if ((ent = conf_lookup(conf_stack[i], 0)) != NULL)
			ent->in_loop = 1;
	}
	log_warn("main.cf: $name expansion loop (or nesting deeper than %d): "
		 "%s; leaving the value unexpanded", CONF_EXPAND_DEPTH,
		 chain->data);
	strbuf_free(chain);
}

/*
 * conf_value - the expanded value of an entry (cached), NULL when it has
 * none; *loop is set when the entry is part of an expansion in progress
 */
static const char *
conf_value(struct conf_ent *ent, int *loop)
{
	const char *raw;
	struct strbuf *out;
	int     myloop = 0;
	const char *dot;

	if ((raw = conf_raw(ent)) == NULL)
		return (NULL);
	if (ent->in_loop) {
		/* Loops and all that leads into them stay unexpanded. */
		*loop = 1;
		return (raw);
	}
	if (ent->cache)
		return (ent->cache);
	if (ent->busy || conf_depth >= CONF_EXPAND_DEPTH) {
		/* conf_depth <= CONF_EXPAND_DEPTH: room for one more. */
		conf_stack[conf_depth++] = ent->name;
		conf_warn_loop();
		conf_depth--;
		*loop = 1;
		return (raw);
	}
	ent->busy = 1;
	conf_stack[conf_depth++] = ent->name;
	out = strbuf_new(strlen(raw) + 16, 0);
	conf_expand_into(out, raw, 0, &myloop);
	conf_depth--;
	ent->busy = 0;
	if (myloop) {
		strbuf_free(out);
		ent->in_loop = 1;
		*loop = 1;
		return (raw);
	}
	if (out->len == 0 && ent->param
	    && strcmp(ent->name, "myhostname") == 0) {
		ent->cache = conf_system_hostname();
		strbuf_free(out);
		return (ent->cache);
	}
	if (out->len == 0 && ent->param
	    && strcmp(ent->name, "mydomain") == 0) {
		struct conf_ent *host = conf_lookup("myhostname", 0);
		int     hloop = 0;
		const char *hv = host ? conf_value(host, &hloop) : NULL;

		if (hv && (dot = strchr(hv, '.')) != NULL && dot[1] != 0)
			strbuf_sets(out, dot + 1);
		else
			strbuf_sets(out, "localdomain");
	}
	ent->cache = strbuf_steal(out, NULL);
	strbuf_free(out);
	return (ent->cache);
}

/* conf_expand - expand $name in any string; caller frees */
char   *
conf_expand(const char *str)
{
	struct strbuf *out = strbuf_new(strlen(str) + 16, 0);
	int     loop = 0;
	int     saved = conf_depth;
	char   *res;

	conf_expand_into(out, str, 0, &loop);
	conf_depth = saved;
	if (loop) {
		strbuf_free(out);
		return (xstrdup(str));
	}
	res = strbuf_steal(out, NULL);
	strbuf_free(out);
	return (res);
}

/* conf_need - the entry of a name that must exist */
static struct conf_ent *
conf_need(const char *name)
{
	struct conf_ent *ent = conf_lookup(name, 0);

	if (ent == NULL || conf_raw(ent) == NULL)
		log_panic("conf: unknown parameter \"%s\" requested", name);
	return (ent);
}

/* conf_get - the effective, expanded value */
const char *
conf_get(const char *name)
{
	struct conf_ent *ent = conf_need(name);
	int     loop = 0;

	return (conf_value(ent, &loop));
}

/* conf_get_raw - the value before expansion */
const char *
conf_get_raw(const char *name)
{
	return (conf_raw(conf_need(name)));
}

/* conf_parse_int - a decimal integer, optionally signed */
int
conf_parse_int(const char *str, long *result)
{
	char   *end;
	long    val;

	if (str == NULL || !(isdigit((unsigned char) *str)
			     || ((*str == '-' || *str == '+')
				 && isdigit((unsigned char) str[1]))))
		return (-1);
	errno = 0;
	val = strtol(str, &end, 10);
	if (errno != 0 || *end != 0)
		return (-1);
	*result = val;
	return (0);
}

/* conf_parse_bool - yes/no, true/false, on/off, 1/0 */
int
conf_parse_bool(const char *str, int *result)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	size_t  i;

	if (str == NULL)
		return (-1);
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(str, yes[i]) == 0) {
			*result = 1;
			return (0);
		}
		if (strcasecmp(str, no[i]) == 0) {
			*result = 0;
			return (0);
		}
	}
	return (-1);
}

/* conf_parse_unsigned - digits, then one optional unit letter */
static int
conf_parse_unsigned(const char *str, unsigned long long *num, char *unit)
{
	unsigned long long val = 0;
	const char *cp = str;

	if (str == NULL || !isdigit((unsigned char) *cp))
		return (-1);
	for (; isdigit((unsigned char) *cp); cp++) {
		if (val > (ULLONG_MAX - 9) / 10)
			return (-1);
		val = val * 10 + (unsigned long long) (*cp - '0');
	}
	*unit = (char) tolower((unsigned char) *cp);
	if (*cp && cp[1] != 0)
		return (-1);
	*num = val;
	return (0);
}

/* conf_parse_time - seconds, with an optional unit s, m, h, d or w */
int
conf_parse_time(const char *str, long *result)
{
	unsigned long long val;
	unsigned long long mult;
	char    unit;

	if (conf_parse_unsigned(str, &val, &unit) < 0)
		return (-1);
	switch (unit) {
	case 0:
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		mult = 604800;
		break;
	default:
		return (-1);
	}
	if (val > (unsigned long long) LONG_MAX / mult)
		return (-1);
	*result = (long) (val * mult);
	return (0);
}

/* conf_parse_size - bytes, with an optional k, m or g suffix */
int
conf_parse_size(const char *str, long long *result)
{
	unsigned long long val;
	unsigned long long mult;
	char    unit;

	if (conf_parse_unsigned(str, &val, &unit) < 0)
		return (-1);
	switch (unit) {
	case 0:
		mult = 1;
		break;
	case 'k':
		mult = 1024;
		break;
	case 'm':
		mult = 1024 * 1024;
		break;
	case 'g':
		mult = 1024 * 1024 * 1024;
		break;
	default:
		return (-1);
	}
	if (val > (unsigned long long) LLONG_MAX / mult)
		return (-1);
	*result = (long long) (val * mult);
	return (0);
}

/* conf_param_bound - the range of a numeric parameter, or NULL */
const struct conf_bound *
conf_param_bound(const char *name)
{
	size_t  i;

	for (i = 0; i < conf_bounds_count; i++)
		if (strcmp(conf_bounds[i].name, name) == 0)
			return (&conf_bounds[i]);
	return (NULL);
}

/* conf_check_range - is a number within the parameter's range? */
static int
conf_check_range(const char *name, const char *value, long long num,
		 struct strbuf *why)
{
	const struct conf_bound *b = conf_param_bound(name);

	if (b == NULL || (num >= b->min && num <= b->max))
		return (0);
	strbuf_setf(why, "parameter %s: value \"%s\" out of range %lld..%lld",
		    name, value, b->min, b->max);
	return (-1);
}

/* conf_check_typed - check a value of a given type for a name */
static int
conf_check_typed(const char *name, enum conf_type type, const char *value,
		 struct strbuf *why, long long *num)
{
	long    l;
	int     b;

	switch (type) {
	case CONF_INT:
		if (conf_parse_int(value, &l) < 0) {
			strbuf_setf(why, "parameter %s: bad integer value: "
				    "\"%s\"", name, value ? value : "");
			return (-1);
		}
		*num = l;
		break;
	case CONF_BOOL:
		if (conf_parse_bool(value, &b) < 0) {
			strbuf_setf(why, "parameter %s: bad yes/no value: "
				    "\"%s\"", name, value ? value : "");
			return (-1);
		}
		*num = b;
		return (0);
	case CONF_TIME:
		if (conf_parse_time(value, &l) < 0) {
			strbuf_setf(why, "parameter %s: bad time value: \"%s\" "
				    "(use a number with an optional unit s, m, "
				    "h, d, w)", name, value ? value : "");
			return (-1);
		}
		*num = l;
		break;
	case CONF_SIZE:
		if (conf_parse_size(value, num) < 0) {
			strbuf_setf(why, "parameter %s: bad size value: \"%s\" "
				    "(use a byte count with an optional k, m "
				    "or g)", name, value ? value : "");
			return (-1);
		}
		break;
	default:
		*num = 0;
		return (0);
	}
	return (conf_check_range(name, value, *num, why));
}

/* conf_check_value - is a value good for its parameter? */
int
conf_check_value(const struct conf_param *param, const char *value,
		 struct strbuf *why)
{
	long long num;

	return (conf_check_typed(param->name, param->type, value, why, &num));
}

/* conf_get_typed - a typed value, or the end of the process */
static long long
conf_get_typed(const char *name, enum conf_type type)
{
	const char *val = conf_get(name);
	struct strbuf *why;
	long long num;

	why = strbuf_new(256, 0);
	if (conf_check_typed(name, type, val, why, &num) < 0)
		log_fatal("%s", why->data);
	strbuf_free(why);
	return (num);
}

/* conf_get_int - an integer parameter */
long
conf_get_int(const char *name)
{
	return ((long) conf_get_typed(name, CONF_INT));
}

/* conf_get_bool - a yes/no parameter */
int
conf_get_bool(const char *name)
{
	return ((int) conf_get_typed(name, CONF_BOOL));
}

/* conf_get_time - a time parameter, in seconds */
long
conf_get_time(const char *name)
{
	return ((long) conf_get_typed(name, CONF_TIME));
}

/* conf_get_size - a size parameter, in bytes */
long long
conf_get_size(const char *name)
{
	return (conf_get_typed(name, CONF_SIZE));
}

/* What conf_save() keeps: one setting of main.cf or an override. */
struct conf_saved_ent {
	char   *name;
	char   *file_value;
	char   *over_value;
};

struct conf_saved {
	char   *dir;
	struct conf_saved_ent *ents;	/* main.cf names first, file order */
	size_t  count;
	size_t  nusers;			/* the first nusers are conf_users */
};

/* conf_save_add - keep one entry's settings */
static void
conf_save_add(struct conf_saved *saved, size_t *size,
	      const struct conf_ent *ent)
{
	struct conf_saved_ent *se;

	if (saved->count == *size) {
		*size = *size ? *size * 2 : 32;
		saved->ents = xreallocarray(saved->ents, *size,
					    sizeof(*saved->ents));
	}
	se = &saved->ents[saved->count++];
	se->name = xstrdup(ent->name);
	se->file_value = ent->file_value ? xstrdup(ent->file_value) : NULL;
	se->over_value = ent->over_value ? xstrdup(ent->over_value) : NULL;
}

/* conf_save - keep the current settings aside */
struct conf_saved *
conf_save(void)
{
	struct conf_saved *saved = xcalloc(1, sizeof(*saved));
	struct conf_ent *ent;
	size_t  size = 0;
	size_t  i;

	saved->dir = conf_dir ? xstrdup(conf_dir) : NULL;
	for (i = 0; i < conf_nusers; i++)
		conf_save_add(saved, &size, conf_lookup(conf_users[i], 0));
	saved->nusers = saved->count;
	for (i = 0; i < CONF_HASH_SIZE; i++)
		for (ent = conf_hash[i]; ent; ent = ent->next)
			if (!ent->listed && (ent->file_value || ent->over_value))
				conf_save_add(saved, &size, ent);
	return (saved);
}

/* conf_saved_free - drop saved settings */
struct conf_saved *
conf_saved_free(struct conf_saved *saved)
{
	size_t  i;

	if (saved == NULL)
		return (NULL);
	for (i = 0; i < saved->count; i++) {
		free(saved->ents[i].name);
		free(saved->ents[i].file_value);
		free(saved->ents[i].over_value);
	}
	free(saved->ents);
	free(saved->dir);
	free(saved);
	return (NULL);
}

/* conf_restore - go back to saved settings; frees saved */
void
conf_restore(struct conf_saved *saved)
{
	struct conf_saved_ent *se;
	struct conf_ent *ent;
	size_t  i;

	for (i = 0; i < CONF_HASH_SIZE; i++) {
		for (ent = conf_hash[i]; ent; ent = ent->next) {
			conf_retire(ent->file_value);
			conf_retire(ent->over_value);
			ent->file_value = ent->over_value = NULL;
			ent->listed = 0;
		}
	}
	conf_nusers = 0;
	for (i = 0; i < saved->count; i++) {
		se = &saved->ents[i];
		ent = conf_lookup(se->name, 1);
		ent->file_value = se->file_value;
		ent->over_value = se->over_value;
		if (i < saved->nusers)
			conf_add_user(ent);
		free(se->name);
	}
	conf_retire(conf_dir);
	conf_dir = saved->dir;
	free(saved->ents);
	free(saved);
	conf_invalidate();
}

/* conf_user_count - how many names main.cf sets */
size_t
conf_user_count(void)
{
	return (conf_nusers);
}

/* conf_user_name - the index'th name set in main.cf */
const char *
conf_user_name(size_t idx)
{
	if (idx >= conf_nusers)
		log_panic("conf_user_name: index %zu out of range", idx);
	return (conf_users[idx]);
}
