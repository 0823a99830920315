/*
 * mta_sts - MTA-STS policies (RFC 8461): TXT record, policy text, MX
 *	matching and the on-disk cache
 *
 * SYNOPSIS
 *	#include "mta_sts.h"
 *
 *	int	mta_sts_txt_parse(const char *txt, char *id, size_t size)
 *	struct mta_sts_policy *mta_sts_parse(const char *domain,
 *			const char *text, size_t len, struct strbuf *err)
 *	struct mta_sts_policy *mta_sts_free(struct mta_sts_policy *p)
 *	struct mta_sts_policy *mta_sts_copy(const struct mta_sts_policy *p)
 *	int	mta_sts_pattern_match(const char *pattern, const char *host)
 *	int	mta_sts_mx_match(const struct mta_sts_policy *p,
 *			const char *host)
 *	const char *mta_sts_mode_str(int mode)
 *	int	mta_sts_expired(const struct mta_sts_policy *p, time_t now)
 *	int	mta_sts_cache_save(const char *dir,
 *			const struct mta_sts_policy *p, struct strbuf *err)
 *	struct mta_sts_policy *mta_sts_cache_load(const char *dir,
 *			const char *domain)
 *
 * DESCRIPTION
 *	mta_sts_txt_parse() checks one TXT record of _mta-sts.DOMAIN (its
 *	character-strings joined): "v=STSv1" first, then fields separated
 *	by ";" with optional blanks, one of them "id=" 1-32 letters or
 *	digits (RFC 8461 section 3.1). It copies the id into "id" and
 *	returns 0; -1 for a record that is not STSv1 or is malformed.
 *
 *	mta_sts_parse() reads a policy body (section 3.2): lines of
 *	"key: value" ended by CRLF or LF; "version: STSv1", "mode:
 *	enforce|testing|none" and "max_age: 0..31557600" exactly once,
 *	"mx:" one or more times (not needed with mode none) with a host
 *	name or "*." and a domain; other keys are ignored. It returns a
 *	new policy ("id" empty, "fetched" 0), or NULL with the reason in
 *	"err".
 *
 *	mta_sts_pattern_match() says whether an MX host matches one
 *	pattern, without regard to case or a final dot: a name matches
 *	itself; "*.example.net" matches a name with exactly one more label
 *	("mx.example.net", not "a.mx.example.net" nor "example.net").
 *	mta_sts_mx_match() tries every "mx" of the policy.
 *
 *	mta_sts_expired() is true once max_age has passed since "fetched".
 *
 *	mta_sts_cache_save() writes the policy to DIR/DOMAIN (a temporary
 *	file, then rename), as three header lines ("id:", "fetched:", an
 *	empty line) and the policy text; 0, or -1 with the reason.
 *	mta_sts_cache_load() reads it back (NULL when there is none or it
 *	does not parse). The domain must be a host name (no "/" or "..").
 *
 * MEMORY
 *	mta_sts_parse(), mta_sts_copy() and mta_sts_cache_load() return a
 *	new policy that the caller frees with mta_sts_free() (NULL is
 *	fine; it returns NULL).
 *
 * SEE ALSO
 *	RFC 8461, smtp-out(8), tlsrpt.c
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dns.h"
#include "mta_sts.h"
#include "strbuf.h"
#include "xmalloc.h"

#define MTA_STS_WSP(c)	((c) == ' ' || (c) == '\t')

/* mta_sts_txt_parse - check a TXT record, take its id */
int
mta_sts_txt_parse(const char *txt, char *id, size_t size)
{
	const char *p = txt;
	const char *name;
	const char *val;
	size_t  nlen;
	size_t  vlen;
	size_t  i;
	int     have_id = 0;

	if (strncmp(p, "v=STSv1", 7) != 0)
		return (-1);
	p += 7;
	while (MTA_STS_WSP(*p))
		p++;
	while (*p) {
		if (*p != ';')
			return (-1);
		p++;
		while (MTA_STS_WSP(*p))
			p++;
		if (*p == 0)
			break;
		name = p;
		while (isalnum((unsigned char) *p) || *p == '_' || *p == '-'
		       || *p == '.')
			p++;
		nlen = (size_t) (p - name);
		if (nlen == 0 || *p != '=')
			return (-1);
		val = ++p;
		while (*p > 0x20 && *p < 0x7f && *p != ';' && *p != '=')
			p++;
		vlen = (size_t) (p - val);
		if (nlen == 2 && strncmp(name, "id", 2) == 0) {
			if (have_id || vlen == 0 || vlen > MTA_STS_ID_MAX
			    || vlen >= size)
				return (-1);
			for (i = 0; i < vlen; i++)
				if (!isalnum((unsigned char) val[i]))
					return (-1);
			memcpy(id, val, vlen);
			id[vlen] = 0;
			have_id = 1;
		}
		while (MTA_STS_WSP(*p))
			p++;
	}
	return (have_id ? 0 : -1);
}

/* mta_sts_free - free a policy */
struct mta_sts_policy *
mta_sts_free(struct mta_sts_policy *p)
{
	size_t  i;

	if (p == NULL)
		return (NULL);
	for (i = 0; i < p->nmx; i++)
		xfree(p->mx[i]);
	xfree(p->mx);
	xfree(p->domain);
	xfree(p->text);
	xfree(p);
	return (NULL);
}

/* mta_sts_copy - a deep copy */
struct mta_sts_policy *
mta_sts_copy(const struct mta_sts_policy *p)
{
	struct mta_sts_policy *c = xcalloc(1, sizeof(*c));
	size_t  i;

	*c = *p;
	c->domain = xstrdup(p->domain);
	c->text = xstrdup(p->text);
	c->mx = xcalloc(p->nmx ? p->nmx : 1, sizeof(*c->mx));
	for (i = 0; i < p->nmx; i++)
		c->mx[i] = xstrdup(p->mx[i]);
	return (c);
}

/* mta_sts_lower - lower-case a name in place, drop a final dot */
static void
mta_sts_lower(char *s)
{
	size_t  n = strlen(s);

	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = 0;
	for (; *s; s++)
		*s = (char) tolower((unsigned char) *s);
}

/* mta_sts_mx_ok - an mx value: a host name, or "*." and a domain */
static int
mta_sts_mx_ok(const char *v)
{
	char    buf[DNS_NAME_MAX + 2];

	if (strncmp(v, "*.", 2) == 0)
		v += 2;
	if (strchr(v, '*') || strchr(v, '_'))
		return (0);
	return (dns_name_check(v, buf, sizeof(buf)) == 0);
}

/* mta_sts_field - one "key: value" line into the policy; 0 or -1 */
static int
mta_sts_field(struct mta_sts_policy *p, const char *key, const char *val,
	              int *seen, struct strbuf *err)
{
	char   *end;
	long    age;

	if (strcmp(key, "version") == 0) {
		if ((*seen & 1) || strcmp(val, "STSv1") != 0) {
			strbuf_setf(err, "bad or repeated version \"%.40s\"", val);
			return (-1);
		}
		*seen |= 1;
	} else if (strcmp(key, "mode") == 0) {
		if (*seen & 2) {
			strbuf_sets(err, "repeated mode");
			return (-1);
		}
		if (strcmp(val, "enforce") == 0)
			p->mode = MTA_STS_MODE_ENFORCE;
		else if (strcmp(val, "testing") == 0)
			p->mode = MTA_STS_MODE_TESTING;
		else if (strcmp(val, "none") == 0)
			p->mode = MTA_STS_MODE_NONE;
		else {
			strbuf_setf(err, "bad mode \"%.40s\"", val);
			return (-1);
		}
		*seen |= 2;
	} else if (strcmp(key, "max_age") == 0) {
		errno = 0;
		age = strtol(val, &end, 10);
		if ((*seen & 4) || !isdigit((unsigned char) *val) || *end
		    || errno || strlen(val) > 10 || age > MTA_STS_MAX_AGE_MAX) {
			strbuf_setf(err, "bad or repeated max_age \"%.40s\"", val);
			return (-1);
		}
		p->max_age = age;
		*seen |= 4;
	} else if (strcmp(key, "mx") == 0) {
		if (!mta_sts_mx_ok(val)) {
			strbuf_setf(err, "bad mx \"%.100s\"", val);
			return (-1);
		}
		if (p->nmx < MTA_STS_MX_MAX) {
			p->mx = xreallocarray(p->mx, p->nmx + 1, sizeof(*p->mx));
			p->mx[p->nmx] = xstrdup(val);
			mta_sts_lower(p->mx[p->nmx]);
			p->nmx++;
		}
	}
	/* Other keys are extensions: ignored (RFC 8461 3.2). */
	return (0);
}

/* mta_sts_parse - read a policy body */
struct mta_sts_policy *
mta_sts_parse(const char *domain, const char *text, size_t len,
	              struct strbuf *err)
{
	struct mta_sts_policy *p = xcalloc(1, sizeof(*p));
	struct strbuf *line = strbuf_new(256, 0);
	const char *s = text;
	const char *e = text + len;
	const char *nl;
	char   *key;
	char   *val;
	char   *q;
	int     seen = 0;

	p->domain = xstrdup(domain);
	mta_sts_lower(p->domain);
	p->text = xstrndup(text, len);
	if (memchr(text, 0, len) != NULL) {
		strbuf_sets(err, "policy contains a NUL byte");
		goto bad;
	}
	while (s < e) {
		nl = memchr(s, '\n', (size_t) (e - s));
		if (nl == NULL)
			nl = e;
		strbuf_set(line, s, (size_t) (nl - s));
		s = nl + 1;
		if (STRBUF_LEN(line) && STRBUF_STR(line)[STRBUF_LEN(line) - 1]
		    == '\r')
			strbuf_truncate(line, STRBUF_LEN(line) - 1);
		key = STRBUF_STR(line);
		/* Blank lines are tolerated (a final CRLF, for one). */
		if (strspn(key, " \t") == STRBUF_LEN(line))
			continue;
		if ((val = strchr(key, ':')) == NULL) {
			strbuf_setf(err, "line without \":\": \"%.60s\"", key);
			goto bad;
		}
		*val++ = 0;
		while (MTA_STS_WSP(*val))
			val++;
		q = val + strlen(val);
		while (q > val && MTA_STS_WSP(q[-1]))
			*--q = 0;
		if (mta_sts_field(p, key, val, &seen, err) < 0)
			goto bad;
	}
	if ((seen & 7) != 7) {
		strbuf_setf(err, "missing %s", !(seen & 1) ? "version" :
			    !(seen & 2) ? "mode" : "max_age");
		goto bad;
	}
	if (p->nmx == 0 && p->mode != MTA_STS_MODE_NONE) {
		strbuf_sets(err, "no mx in a policy whose mode is not none");
		goto bad;
	}
	strbuf_free(line);
	return (p);

bad:
	strbuf_free(line);
	return (mta_sts_free(p));
}

/* mta_sts_pattern_match - one MX host against one pattern */
int
mta_sts_pattern_match(const char *pattern, const char *host)
{
	size_t  hlen = strlen(host);
	size_t  plen;
	const char *dot;

	if (hlen && host[hlen - 1] == '.')
		hlen--;
	if (strncmp(pattern, "*.", 2) != 0)
		return (strlen(pattern) == hlen
			&& strncasecmp(pattern, host, hlen) == 0);
	pattern += 1;				/* ".example.net" */
	plen = strlen(pattern);
	dot = memchr(host, '.', hlen);
	if (dot == NULL || dot == host)
		return (0);
	/* Exactly one label before the pattern's domain. */
	return ((size_t) (host + hlen - dot) == plen
		&& strncasecmp(dot, pattern, plen) == 0);
}

/* mta_sts_mx_match - an MX host against every mx of a policy */
int
mta_sts_mx_match(const struct mta_sts_policy *p, const char *host)
{
	size_t  i;

	for (i = 0; i < p->nmx; i++)
		if (mta_sts_pattern_match(p->mx[i], host))
			return (1);
	return (0);
}

/* mta_sts_mode_str - the name of a mode */
const char *
mta_sts_mode_str(int mode)
{
	return (mode == MTA_STS_MODE_ENFORCE ? "enforce" :
		mode == MTA_STS_MODE_TESTING ? "testing" : "none");
}

/* mta_sts_expired - past max_age */
int
mta_sts_expired(const struct mta_sts_policy *p, time_t now)
{
	return (now - p->fetched >= p->max_age);
}

/* mta_sts_path - DIR/DOMAIN for a well-formed domain; 0 or -1 */
static int
mta_sts_path(const char *dir, const char *domain, struct strbuf *path)
{
	char    name[DNS_NAME_MAX + 2];

	if (dns_name_check(domain, name, sizeof(name)) < 0)
		return (-1);
	mta_sts_lower(name);
	strbuf_setf(path, "%s/%s", dir, name);
	return (0);
}

/* mta_sts_cache_save - write a policy to the cache folder */
int
mta_sts_cache_save(const char *dir, const struct mta_sts_policy *p,
		           struct strbuf *err)
{
	struct strbuf *path = strbuf_new(256, 0);
	struct strbuf *tmp = strbuf_new(256, 0);
	struct strbuf *buf = strbuf_new(1024, 0);
	ssize_t n;
	int     fd = -1;
	int     rc = -1;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		strbuf_setf(err, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	if (mta_sts_path(dir, p->domain, path) < 0) {
		strbuf_setf(err, "bad domain name \"%.100s\"", p->domain);
		goto out;
	}
	strbuf_setf(tmp, "%s.%ld.tmp", STRBUF_STR(path), (long) getpid());
	strbuf_setf(buf, "id: %s\nfetched: %lld\n\n%s", p->id,
		    (long long) p->fetched, p->text);
	if ((fd = open(STRBUF_STR(tmp), O_WRONLY | O_CREAT | O_TRUNC, 0600))
	    < 0) {
		strbuf_setf(err, "open %s: %s", STRBUF_STR(tmp), strerror(errno));
		goto out;
	}
	n = write(fd, STRBUF_STR(buf), STRBUF_LEN(buf));
	if (n != (ssize_t) STRBUF_LEN(buf) || close(fd) < 0) {
		strbuf_setf(err, "write %s: %s", STRBUF_STR(tmp),
			    n < 0 ? strerror(errno) : "short write");
		fd = -1;
		(void) unlink(STRBUF_STR(tmp));
		goto out;
	}
	fd = -1;
	if (rename(STRBUF_STR(tmp), STRBUF_STR(path)) < 0) {
		strbuf_setf(err, "rename %s: %s", STRBUF_STR(tmp),
			    strerror(errno));
		(void) unlink(STRBUF_STR(tmp));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		(void) close(fd);
	strbuf_free(path);
	strbuf_free(tmp);
	strbuf_free(buf);
	return (rc);
}

/* mta_sts_cache_load - read a cached policy, NULL if none */
struct mta_sts_policy *
mta_sts_cache_load(const char *dir, const char *domain)
{
	struct strbuf *path = strbuf_new(256, 0);
	struct strbuf *err = strbuf_new(256, 0);
	struct mta_sts_policy *p = NULL;
	char    buf[MTA_STS_POLICY_MAX + 256];
	char    id[MTA_STS_ID_MAX + 1];
	long long fetched;
	ssize_t n;
	char   *body;
	int     fd = -1;

	if (mta_sts_path(dir, domain, path) < 0
	    || (fd = open(STRBUF_STR(path), O_RDONLY)) < 0)
		goto out;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		goto out;
	buf[n] = 0;
	if (sscanf(buf, "id: %32[A-Za-z0-9]\nfetched: %lld\n", id,
		   &fetched) != 2 || (body = strstr(buf, "\n\n")) == NULL)
		goto out;
	body += 2;
	p = mta_sts_parse(domain, body, strlen(body), err);
	if (p) {
		snprintf(p->id, sizeof(p->id), "%s", id);
		p->fetched = (time_t) fetched;
	}
out:
	if (fd >= 0)
		(void) close(fd);
	strbuf_free(path);
	strbuf_free(err);
	return (p);
}
