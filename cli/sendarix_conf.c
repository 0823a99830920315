/*
 * sendarix_conf - show and edit main.cf parameters
 *
 * SYNOPSIS
 *	sendarix conf [-n | -d] [-x | -h] [name...]
 *	sendarix conf -e name=value...
 *
 * DESCRIPTION
 *	Without options, every parameter in the table and every name set in
 *	main.cf is printed as "name = value" with its effective value
 *	($name expanded), sorted by name. With names, only those.
 *
 *	-n	only the parameters set in main.cf, with their values as
 *		written (like postconf -n); with -x, expanded.
 *	-d	the defaults of the table, as written (not expanded).
 *	-x	expand $name (the default, except with -n and -d).
 *	-h	print the value only, without "name = ".
 *	-e	edit main.cf: each name=value replaces the setting of that
 *		name (with its continuation lines; comments and other lines
 *		are kept) or is appended at the end. The new file is written
 *		next to the old one, fsynced and renamed over it. Names that
 *		are not in the table draw a warning; a value that does not
 *		parse for the parameter's type or is out of its range (and
 *		has no $name in it) is refused and nothing is written.
 *
 * DIAGNOSTICS
 *	Exit status 0; 1 when a name is unknown or main.cf cannot be
 *	written; 2 on a usage error.
 *
 * SEE ALSO
 *	sendarix(1), sendarix-params(5)
 */

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_check.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "sendarix.h"

#define CONF_SHOW_EXPAND	1
#define CONF_SHOW_VALUE_ONLY	2

/* One -e argument. */
struct conf_edit {
	char   *name;
	char   *value;
	int     done;
};

/* sendarix_conf_usage - the conf command summary */
static int
sendarix_conf_usage(void)
{
	fprintf(stderr,
		"usage: sendarix conf [-n | -d] [-x | -h] [name...]\n"
		"       sendarix conf -e name=value...\n");
	return (2);
}

/* sendarix_conf_strcmp - qsort helper for names */
static int
sendarix_conf_strcmp(const void *a, const void *b)
{
	return (strcmp(*(const char *const *) a, *(const char *const *) b));
}

/* sendarix_conf_print - one "name = value" line */
static void
sendarix_conf_print(const char *name, const char *value, int flags)
{
	if (flags & CONF_SHOW_VALUE_ONLY)
		printf("%s\n", value);
	else if (*value == 0)
		printf("%s =\n", name);
	else
		printf("%s = %s\n", name, value);
}

/* sendarix_conf_show - print one parameter in the chosen mode */
static int
sendarix_conf_show(const char *name, int mode, int flags)
{
	const struct conf_param *param = conf_param_find(name);
	char   *exp;

	switch (mode) {
	case 'd':
		if (param == NULL) {
			cli_error("%s: unknown parameter", name);
			return (-1);
		}
		sendarix_conf_print(name, param->def, flags);
		return (0);
	case 'n':
		if (!conf_is_set(name))
			return (0);
		if (flags & CONF_SHOW_EXPAND) {
			exp = conf_expand(conf_get_raw(name));
			sendarix_conf_print(name, exp, flags);
			free(exp);
		} else {
			sendarix_conf_print(name, conf_get_raw(name), flags);
		}
		return (0);
	default:
		if (param == NULL && !conf_is_set(name)) {
			cli_error("%s: unknown parameter", name);
			return (-1);
		}
		sendarix_conf_print(name, (flags & CONF_SHOW_EXPAND) ?
				    conf_get(name) : conf_get_raw(name), flags);
		return (0);
	}
}

/* sendarix_conf_list - every known name, sorted, without duplicates */
static const char **
sendarix_conf_list(int mode, size_t *countp)
{
	size_t  total = conf_params_count + conf_user_count();
	const char **names = xcalloc(total + 1, sizeof(*names));
	size_t  n = 0;
	size_t  i;
	size_t  j;

	if (mode != 'n')
		for (i = 0; i < conf_params_count; i++)
			names[n++] = conf_params[i].name;
	if (mode != 'd')
		for (i = 0; i < conf_user_count(); i++)
			names[n++] = conf_user_name(i);
	qsort(names, n, sizeof(*names), sendarix_conf_strcmp);
	for (i = j = 0; i < n; i++)
		if (j == 0 || strcmp(names[j - 1], names[i]) != 0)
			names[j++] = names[i];
	*countp = j;
	return (names);
}

/* sendarix_conf_line_name - the name a main.cf setting line sets, or 0 */
static size_t
sendarix_conf_line_name(const char *line, size_t len)
{
	size_t  n = 0;

	while (n < len && (isalnum((unsigned char) line[n]) || line[n] == '_'))
		n++;
	return (n);
}

/* sendarix_conf_blank - is this line blank or a comment? */
static int
sendarix_conf_blank(const char *line, size_t len)
{
	size_t  i = 0;

	while (i < len && isspace((unsigned char) line[i]))
		i++;
	return (i == len || line[i] == '#');
}

/* sendarix_conf_edit_text - apply the edits to a main.cf text */
static void
sendarix_conf_edit_text(const char *buf, size_t len, struct conf_edit *ed,
			size_t ned, struct strbuf *out)
{
	const char *cp = buf;
	const char *end = buf + len;
	const char *nl;
	size_t  llen;
	size_t  nlen;
	size_t  i;
	int     skipping = 0;		/* in continuation lines of an edit */
	int     keep;

	while (cp < end) {
		nl = memchr(cp, '\n', (size_t) (end - cp));
		llen = (size_t) ((nl ? nl + 1 : end) - cp);
		keep = 1;
		if (sendarix_conf_blank(cp, llen)) {
			/* Comments stay, also between continuation lines. */
		} else if (isspace((unsigned char) *cp)) {
			keep = !skipping;
		} else {
			skipping = 0;
			nlen = sendarix_conf_line_name(cp, llen);
			for (i = 0; nlen > 0 && i < ned; i++) {
				const char *p = cp + nlen;

				while (p < end && (*p == ' ' || *p == '\t'))
					p++;
				if (strlen(ed[i].name) == nlen
				    && memcmp(ed[i].name, cp, nlen) == 0
				    && p < end && *p == '=')
					break;
			}
			if (nlen > 0 && i < ned) {
				/* Every setting of the name gets the value. */
				strbuf_printf(out, "%s = %s\n", ed[i].name,
					      ed[i].value);
				ed[i].done = 1;
				skipping = 1;
				keep = 0;
			}
		}
		if (keep) {
			strbuf_append(out, cp, llen);
			if (nl == NULL)
				strbuf_appendc(out, '\n');
		}
		cp += llen;
	}
	for (i = 0; i < ned; i++) {
		if (ed[i].done)
			continue;
		strbuf_printf(out, "%s = %s\n", ed[i].name, ed[i].value);
		ed[i].done = 1;
	}
}

/* sendarix_conf_write - replace a file safely: temp, fsync, rename */
static int
sendarix_conf_write(const char *path, const char *data, size_t len)
{
	struct stat st;
	char   *tmp;
	char   *dir;
	char   *slash;
	size_t  tlen = strlen(path) + 32;
	size_t  off = 0;
	ssize_t n;
	int     fd;
	int     dfd;
	mode_t  mode = 0644;

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	tmp = xmalloc(tlen);
	snprintf(tmp, tlen, "%s.tmp.%ld", path, (long) getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		cli_error("create %s: %s", tmp, strerror(errno));
		free(tmp);
		return (-1);
	}
	/* Keep owner and mode; failing to chown as non-root is fine. */
	(void) fchmod(fd, mode);
	if (geteuid() == 0 && stat(path, &st) == 0)
		(void) !fchown(fd, st.st_uid, st.st_gid);
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		off += (size_t) n;
	}
	if (off < len || fsync(fd) < 0) {
		cli_error("write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return (-1);
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		cli_error("replace %s: %s", path, strerror(errno));
		unlink(tmp);
		free(tmp);
		return (-1);
	}
	free(tmp);

	/* Make the rename durable. */
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = 0;
	else
		strcpy(dir, ".");
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void) fsync(dfd);
		close(dfd);
	}
	free(dir);
	return (0);
}

/* sendarix_conf_check_value - type and range, as sendarix check sees it */
static int
sendarix_conf_check_value(const struct conf_param *param, const char *value,
			  struct strbuf *why)
{
	if (strchr(value, '$') != NULL)
		return (0);
	return (conf_check_param(param, value, why));
}

/* sendarix_conf_edit - conf -e name=value... */
static int
sendarix_conf_edit(int argc, char **argv)
{
	struct conf_edit *ed = xcalloc((size_t) argc + 1, sizeof(*ed));
	struct strbuf *out = NULL;
	struct strbuf *why = strbuf_new(256, 0);
	const struct conf_param *param;
	char   *path = NULL;
	char   *buf = NULL;
	size_t  len = 0;
	size_t  plen;
	int     ret = 1;
	int     i;
	int     j;
	char   *eq;
	char   *p;
	char   *q;
	FILE   *fp;

	if (argc == 0) {
		free(ed);
		strbuf_free(why);
		return (sendarix_conf_usage());
	}
	for (i = 0; i < argc; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL
		    || strpbrk(argv[i], "\r\n") != NULL) {
			cli_error("bad setting \"%s\": use name=value on "
				  "one line", argv[i]);
			goto done;
		}
		for (p = argv[i]; isspace((unsigned char) *p); p++)
			 /* void */ ;
		for (q = eq; q > p && isspace((unsigned char) q[-1]); q--)
			 /* void */ ;
		ed[i].name = xstrndup(p, (size_t) (q - p));
		for (p = eq + 1; isspace((unsigned char) *p); p++)
			 /* void */ ;
		ed[i].value = xstrdup(p);
		for (q = ed[i].value + strlen(ed[i].value);
		     q > ed[i].value && isspace((unsigned char) q[-1]);)
			*--q = 0;
		if (ed[i].name[0] == 0
		    || ed[i].name[sendarix_conf_line_name(ed[i].name,
					       strlen(ed[i].name))] != 0) {
			cli_error("bad parameter name in \"%s\"", argv[i]);
			goto done;
		}
		if ((param = conf_param_find(ed[i].name)) == NULL) {
			cli_error("warning: %s: unknown parameter", ed[i].name);
		} else if (sendarix_conf_check_value(param, ed[i].value,
						     why) < 0) {
			cli_error("%s", STRBUF_STR(why));
			goto done;
		}
	}
	/* A name given twice: the last one wins, as in main.cf. */
	for (i = 0; i < argc; i++)
		for (j = i + 1; j < argc; j++)
			if (ed[i].name && ed[j].name
			    && strcmp(ed[i].name, ed[j].name) == 0) {
				ed[i].name = xfree(ed[i].name);
				ed[i].value = xfree(ed[i].value);
				break;
			}
	for (i = j = 0; i < argc; i++)
		if (ed[i].name)
			ed[j++] = ed[i];

	plen = strlen(conf_config_dir()) + sizeof("/main.cf");
	path = xmalloc(plen);
	snprintf(path, plen, "%s/main.cf", conf_config_dir());
	if ((fp = fopen(path, "r")) == NULL && errno != ENOENT) {
		cli_error("open %s: %s", path, strerror(errno));
		goto done;
	}
	out = strbuf_new(4096, 0);
	if (fp != NULL) {
		struct strbuf *in = strbuf_new(4096, 0);
		char    chunk[8192];
		size_t  n;

		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			strbuf_append(in, chunk, n);
		if (ferror(fp)) {
			cli_error("read %s: %s", path, strerror(errno));
			fclose(fp);
			strbuf_free(in);
			goto done;
		}
		fclose(fp);
		buf = strbuf_steal(in, &len);
		strbuf_free(in);
	}
	sendarix_conf_edit_text(buf ? buf : "", len, ed, (size_t) j, out);
	if (sendarix_conf_write(path, out->data, out->len) == 0)
		ret = 0;

done:
	for (i = 0; i < argc; i++) {
		free(ed[i].name);
		free(ed[i].value);
	}
	free(ed);
	free(buf);
	free(path);
	strbuf_free(out);
	strbuf_free(why);
	return (ret);
}

/* sendarix_conf_main - the conf command */
int
sendarix_conf_main(int argc, char **argv)
{
	int     mode = 0;		/* 0, 'n' or 'd' */
	int     expand = -1;		/* -1: the mode's default */
	int     value_only = 0;
	int     edit = 0;
	int     flags;
	int     i;
	int     ret = 0;
	const char *opt;
	const char **names;
	size_t  count;
	size_t  k;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != 0; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		for (opt = argv[i] + 1; *opt; opt++) {
			switch (*opt) {
			case 'n':
			case 'd':
				if (mode && mode != *opt)
					return (sendarix_conf_usage());
				mode = *opt;
				break;
			case 'x':
				expand = 1;
				break;
			case 'h':
				value_only = 1;
				break;
			case 'e':
				edit = 1;
				break;
			default:
				cli_error("conf: unknown option -%c", *opt);
				return (sendarix_conf_usage());
			}
		}
	}
	if (edit) {
		if (mode || value_only)
			return (sendarix_conf_usage());
		return (sendarix_conf_edit(argc - i, argv + i));
	}
	if (expand < 0)
		expand = (mode == 0);
	flags = (expand ? CONF_SHOW_EXPAND : 0)
		| (value_only ? CONF_SHOW_VALUE_ONLY : 0);
	if (i < argc) {
		for (; i < argc; i++)
			if (sendarix_conf_show(argv[i], mode, flags) < 0)
				ret = 1;
	} else {
		names = sendarix_conf_list(mode, &count);
		for (k = 0; k < count; k++)
			(void) sendarix_conf_show(names[k], mode, flags);
		free(names);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("write error on standard output");
		ret = 1;
	}
	return (ret);
}
