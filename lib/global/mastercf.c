/*
 * mastercf - read master.cf, the table of services
 *
 * SYNOPSIS
 *	#include "conf.h"
#include "mastercf.h"
 *
 *	struct mastercf *mastercf_load(const char *path, struct strbuf *err)
 *	struct mastercf *mastercf_parse(const char *buf, size_t len,
 *			const char *path, struct strbuf *err)
 *	struct mastercf *mastercf_free(struct mastercf *cf)
 *
 * DESCRIPTION
 *	master.cf has one service per logical line, with the comment and
 *	continuation rules of main.cf (blank lines and "#" lines are
 *	ignored; a line that starts with white space continues the one
 *	before it):
 *
 *	  name type private unpriv chroot wakeup maxproc command [args...]
 *
 *	type is inet or unix. private, unpriv and chroot are y, n or "-"
 *	(defaults y, y, n). wakeup is "-" (none) or a number of seconds,
 *	optionally followed by "?" as in Postfix. maxproc is "-" (stored as
 *	-1: default_process_limit) or a non-negative number.
 *
 *	Arguments after the command of the form "-o name=value", "-o"
 *	"name=value" or "-oname=value" become overrides ("name=value", with
 *	white space around "=" removed); the others are kept in args. An
 *	argument "{ text with spaces }" is one word (outer spaces and the
 *	braces removed), so "-o { smtpd_banner = $myhostname hello }" works.
 *
 *	An inet service name is a port number, host:port or [ipv6]:port,
 *	where port may be a service name (smtp, submission, ...). A unix
 *	service name is a socket name: letters, digits, ".", "-" and "_".
 *	A service name and type appear at most once.
 *
 *	mastercf_load() reads a file and parses it; mastercf_parse() parses
 *	a buffer (which need not be NUL terminated), naming path in
 *	messages.
 * MEMORY
 *	The result belongs to the caller, who releases it with
 *	mastercf_free() (accepts NULL, returns NULL).
 * DIAGNOSTICS
 *	NULL with a message in err ("/etc/sendarix/master.cf, line 7: ...")
 *	when the file cannot be read or any line is wrong. Nothing here
 *	ends the process.
 * SEE ALSO
 *	master(8), conf(3) for the main.cf rules.
 */

#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "mastercf.h"
#include "strbuf.h"
#include "xmalloc.h"

#define MASTERCF_FIELDS		8	/* before the arguments */
#define MASTERCF_FILE_LIMIT	(4 * 1024 * 1024)

/*
 * mastercf_split - split a logical line into words in place; "{ ... }"
 * is one word. Returns the word count or -1 with a message in why.
 */
static int
mastercf_split(char *line, char ***wordsp, struct strbuf *why)
{
	char  **words = NULL;
	size_t  n = 0;
	size_t  size = 0;
	char   *cp = line;
	char   *w;
	char   *close;

	for (;;) {
		while (isspace((unsigned char) *cp))
			cp++;
		if (*cp == 0)
			break;
		if (*cp == '{') {
			if ((close = strchr(cp, '}')) == NULL) {
				strbuf_setf(why, "missing '}' after "
						 "\"%.40s\"", cp);
				free(words);
				return (-1);
			}
			if (close[1] != 0
			    && !isspace((unsigned char) close[1])) {
				strbuf_setf(why, "text after '}' in "
						 "\"%.40s\"", cp);
				free(words);
				return (-1);
			}
			w = cp + 1;
			cp = close[1] ? close + 2 : close + 1;
			*close = 0;
			while (isspace((unsigned char) *w))
				w++;
			while (close > w && isspace((unsigned char) close[-1]))
				*--close = 0;
		} else {
			w = cp;
			while (*cp && !isspace((unsigned char) *cp))
				cp++;
			if (*cp)
				*cp++ = 0;
		}
		if (n == size) {
			size = size ? size * 2 : 16;
			words = xreallocarray(words, size, sizeof(*words));
		}
		words[n++] = w;
		if (n > INT_MAX / 2) {
			strbuf_setf(why, "too many words");
			free(words);
			return (-1);
		}
	}
	*wordsp = words;
	return ((int) n);
}

/* mastercf_flag - y, n or "-" (the default) */
static int
mastercf_flag(const char *word, int def, int *result)
{
	if (strcmp(word, "-") == 0)
		*result = def;
	else if (strcmp(word, "y") == 0)
		*result = 1;
	else if (strcmp(word, "n") == 0)
		*result = 0;
	else
		return (-1);
	return (0);
}

/* mastercf_number - a non-negative decimal int */
static int
mastercf_number(const char *word, size_t len, int *result)
{
	long    val = 0;
	size_t  i;

	if (len == 0)
		return (-1);
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char) word[i]))
			return (-1);
		val = val * 10 + (word[i] - '0');
		if (val > INT_MAX)
			return (-1);
	}
	*result = (int) val;
	return (0);
}

/* mastercf_valid_port - a port number 1..65535 or a known TCP service */
static int
mastercf_valid_port(const char *port)
{
	static const char *const mail_ports[] = {
		"smtp", "submission", "submissions", "smtps", "lmtp",
	};
	const char *cp;
	int     num;
	size_t  i;

	if (*port == 0)
		return (0);
	if (isdigit((unsigned char) *port))
		return (mastercf_number(port, strlen(port), &num) == 0
			&& num >= 1 && num <= 65535);
	for (cp = port; *cp; cp++)
		if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '_')
			return (0);
	/* Known without /etc/services, which minimal systems lack. */
	for (i = 0; i < sizeof(mail_ports) / sizeof(mail_ports[0]); i++)
		if (strcmp(port, mail_ports[i]) == 0)
			return (1);
	return (getservbyname(port, "tcp") != NULL);
}

/* mastercf_valid_host - an IPv4 address or a host name */
static int
mastercf_valid_host(const char *host)
{
	struct in_addr a4;
	const char *cp;

	if (*host == 0)
		return (0);
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (1);
	for (cp = host; *cp; cp++)
		if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '.')
			return (0);
	return (1);
}

/* mastercf_check_inet - port, host:port or [ipv6]:port; NULL or why */
static const char *
mastercf_check_inet(const char *name)
{
	struct in6_addr a6;
	const char *colon;
	const char *rb;
	char   *host;
	int     ok;

	if (*name == '[') {
		if ((rb = strchr(name, ']')) == NULL)
			return ("missing ']' after the IPv6 address");
		if (rb[1] != ':')
			return ("expected ':port' after ']'");
		host = xstrndup(name + 1, (size_t) (rb - name - 1));
		ok = inet_pton(AF_INET6, host, &a6) == 1;
		free(host);
		if (!ok)
			return ("bad IPv6 address in brackets");
		return (mastercf_valid_port(rb + 2) ? NULL :
			"bad port or unknown service name");
	}
	if ((colon = strrchr(name, ':')) == NULL)
		return (mastercf_valid_port(name) ? NULL :
			"bad port or unknown service name");
	if (strchr(name, ':') != colon)
		return ("an IPv6 address needs brackets: [address]:port");
	host = xstrndup(name, (size_t) (colon - name));
	ok = mastercf_valid_host(host);
	free(host);
	if (!ok)
		return ("bad host name or address");
	return (mastercf_valid_port(colon + 1) ? NULL :
		"bad port or unknown service name");
}

/* mastercf_check_unix - a socket name without slashes */
static const char *
mastercf_check_unix(const char *name)
{
	const char *cp;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return ("bad socket name");
	for (cp = name; *cp; cp++)
		if (!isalnum((unsigned char) *cp) && *cp != '-' && *cp != '_'
		    && *cp != '.')
			return ("bad socket name (letters, digits, '.', '-', "
				"'_')");
	return (NULL);
}

/* mastercf_override - "name=value" with a good name, normalised */
static char *
mastercf_override(const char *word)
{
	const char *eq = strchr(word, '=');
	const char *ns = word;
	const char *ne;
	const char *vs;
	const char *cp;
	char   *res;
	size_t  nlen;
	size_t  vlen;

	if (eq == NULL)
		return (NULL);
	while (isspace((unsigned char) *ns))
		ns++;
	for (ne = eq; ne > ns && isspace((unsigned char) ne[-1]); ne--)
		 /* void */ ;
	if (ne == ns)
		return (NULL);
	for (cp = ns; cp < ne; cp++)
		if (!isalnum((unsigned char) *cp) && *cp != '_')
			return (NULL);
	for (vs = eq + 1; isspace((unsigned char) *vs); vs++)
		 /* void */ ;
	nlen = (size_t) (ne - ns);
	vlen = strlen(vs);
	res = xmalloc(nlen + vlen + 2);
	memcpy(res, ns, nlen);
	res[nlen] = '=';
	memcpy(res + nlen + 1, vs, vlen + 1);
	return (res);
}

/* mastercf_service_free - release one service's strings */
static void
mastercf_service_free(struct mastercf_service *svc)
{
	size_t  i;

	free(svc->name);
	free(svc->type);
	free(svc->command);
	for (i = 0; i < svc->nargs; i++)
		free(svc->args[i]);
	free(svc->args);
	for (i = 0; i < svc->noverrides; i++)
		free(svc->overrides[i]);
	free(svc->overrides);
	memset(svc, 0, sizeof(*svc));
}

/* mastercf_add - append to a string vector */
static void
mastercf_add(char ***vec, size_t *n, char *str)
{
	*vec = xreallocarray(*vec, *n + 1, sizeof(**vec));
	(*vec)[(*n)++] = str;
}

/* mastercf_service - turn one logical line into a service; -1 and why */
static int
mastercf_service(char *line, struct mastercf_service *svc,
		 struct strbuf *why)
{
	char  **w = NULL;
	int     n;
	int     i;
	const char *bad;
	size_t  len;
	char   *ov;
	const char *arg;

	memset(svc, 0, sizeof(*svc));
	if ((n = mastercf_split(line, &w, why)) < 0)
		return (-1);
	if (n < MASTERCF_FIELDS) {
		strbuf_setf(why, "expected at least %d fields (service "
				 "type private unpriv chroot wakeup maxproc "
				 "command), found %d", MASTERCF_FIELDS, n);
		goto bad;
	}
	if (strcmp(w[1], "inet") == 0) {
		bad = mastercf_check_inet(w[0]);
	} else if (strcmp(w[1], "unix") == 0) {
		bad = mastercf_check_unix(w[0]);
	} else {
		strbuf_setf(why, "service %.100s: bad type \"%.40s\" "
				 "(use inet or unix)", w[0], w[1]);
		goto bad;
	}
	if (bad != NULL) {
		strbuf_setf(why, "%s service \"%.100s\": %s", w[1], w[0],
				 bad);
		goto bad;
	}
	if (mastercf_flag(w[2], 1, &svc->private_) < 0) {
		strbuf_setf(why, "service %.100s: bad private field "
				 "\"%.40s\" (use y, n or -)", w[0], w[2]);
		goto bad;
	}
	if (mastercf_flag(w[3], 1, &svc->unpriv) < 0) {
		strbuf_setf(why, "service %.100s: bad unpriv field "
				 "\"%.40s\" (use y, n or -)", w[0], w[3]);
		goto bad;
	}
	if (mastercf_flag(w[4], 0, &svc->chroot) < 0) {
		strbuf_setf(why, "service %.100s: bad chroot field "
				 "\"%.40s\" (use y, n or -)", w[0], w[4]);
		goto bad;
	}
	len = strlen(w[5]);
	if (len > 0 && w[5][len - 1] == '?')
		len--;
	if (strcmp(w[5], "-") == 0) {
		svc->wakeup = 0;
	} else if (mastercf_number(w[5], len, &svc->wakeup) < 0) {
		strbuf_setf(why, "service %.100s: bad wakeup field "
				 "\"%.40s\" (use - or seconds)", w[0], w[5]);
		goto bad;
	}
	if (strcmp(w[6], "-") == 0) {
		svc->maxproc = -1;
	} else if (mastercf_number(w[6], strlen(w[6]), &svc->maxproc) < 0) {
		strbuf_setf(why, "service %.100s: bad maxproc field "
				 "\"%.40s\" (use - or a number)", w[0], w[6]);
		goto bad;
	}
	if (*w[7] == 0 || strcmp(w[7], "-") == 0) {
		strbuf_setf(why, "service %.100s: missing command", w[0]);
		goto bad;
	}
	svc->name = xstrdup(w[0]);
	svc->type = xstrdup(w[1]);
	svc->command = xstrdup(w[7]);
	for (i = MASTERCF_FIELDS; i < n; i++) {
		if (strcmp(w[i], "-o") == 0) {
			if (i + 1 >= n) {
				strbuf_setf(why, "service %.100s: -o "
						 "without name=value", w[0]);
				goto bad;
			}
			arg = w[++i];
		} else if (strncmp(w[i], "-o", 2) == 0) {
			arg = w[i] + 2;
		} else {
			mastercf_add(&svc->args, &svc->nargs, xstrdup(w[i]));
			continue;
		}
		if ((ov = mastercf_override(arg)) == NULL) {
			strbuf_setf(why, "service %.100s: bad override "
					 "\"-o %.100s\" (use -o name=value)",
					 w[0], arg);
			goto bad;
		}
		mastercf_add(&svc->overrides, &svc->noverrides, ov);
	}
	free(w);
	return (0);

bad:
	free(w);
	mastercf_service_free(svc);
	return (-1);
}

/* mastercf_free - release a parsed master.cf; NULL is fine */
struct mastercf *
mastercf_free(struct mastercf *cf)
{
	size_t  i;

	if (cf) {
		for (i = 0; i < cf->count; i++)
			mastercf_service_free(&cf->svc[i]);
		free(cf->svc);
		free(cf);
	}
	return (NULL);
}

/* mastercf_parse - parse a master.cf text */
struct mastercf *
mastercf_parse(const char *buf, size_t len, const char *path,
	       struct strbuf *err)
{
	struct mastercf *cf = xcalloc(1, sizeof(*cf));
	struct strbuf *line = strbuf_new(256, 0);
	struct strbuf *why = strbuf_new(128, 0);
	struct mastercf_service svc;
	const char *cp = buf;
	const char *end = buf + len;
	int     lineno = 0;
	int     start = 0;
	int     got;
	size_t  size = 0;
	size_t  i;

	if (path == NULL)
		path = "master.cf";
	while ((got = conf_next_line(&cp, end, &lineno, line, &start,
					  why)) != 0) {
		if (got < 0 || mastercf_service(line->data, &svc, why) < 0) {
			strbuf_setf(err, "%s, line %d: %s", path, start,
					 why->data);
			goto bad;
		}
		svc.lineno = start;
		for (i = 0; i < cf->count; i++) {
			if (strcmp(cf->svc[i].name, svc.name) == 0
			    && strcmp(cf->svc[i].type, svc.type) == 0) {
				strbuf_setf(err, "%s, line %d: "
						 "duplicate service %s/%s "
						 "(first on line %d)", path,
						 start, svc.name, svc.type,
						 cf->svc[i].lineno);
				mastercf_service_free(&svc);
				goto bad;
			}
		}
		if (cf->count == size) {
			size = size ? size * 2 : 16;
			cf->svc = xreallocarray(cf->svc, size,
						sizeof(*cf->svc));
		}
		cf->svc[cf->count++] = svc;
	}
	strbuf_free(line);
	strbuf_free(why);
	return (cf);

bad:
	strbuf_free(line);
	strbuf_free(why);
	return (mastercf_free(cf));
}

/* mastercf_load - read and parse a master.cf file */
struct mastercf *
mastercf_load(const char *path, struct strbuf *err)
{
	struct mastercf *cf;
	struct stat st;
	char   *buf;
	size_t  len = 0;
	size_t  size = 8192;
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
	buf = xmalloc(size);
	for (;;) {
		if (len == size) {
			if (size >= MASTERCF_FILE_LIMIT) {
				strbuf_setf(err, "%s: file too large",
						 path);
				free(buf);
				close(fd);
				return (NULL);
			}
			size *= 2;
			buf = xrealloc(buf, size);
		}
		got = read(fd, buf + len, size - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			strbuf_setf(err, "read %s: %s", path,
					 strerror(errno));
			free(buf);
			close(fd);
			return (NULL);
		}
		if (got == 0)
			break;
		len += (size_t) got;
	}
	close(fd);
	cf = mastercf_parse(buf, len, path, err);
	free(buf);
	return (cf);
}
