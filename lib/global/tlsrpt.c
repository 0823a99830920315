/*
 * tlsrpt - TLS-RPT (RFC 8460): record session outcomes, write the
 *	daily aggregate report
 *
 * SYNOPSIS
 *	#include "tlsrpt.h"
 *
 *	int	tlsrpt_record(const char *dir, const struct tlsrpt_event *ev,
 *			time_t when, struct strbuf *err)
 *	int	tlsrpt_report(const char *dir, const char *outdir,
 *			const char *day, const struct tlsrpt_org *org,
 *			size_t *count, struct strbuf *err)
 *	int	tlsrpt_day_parse(const char *day, time_t *start)
 *	int	tlsrpt_rua_parse(const char *txt, struct strbuf *uris)
 *	int	tlsrpt_sent_check(const char *dir, const char *day,
 *			const char *domain, const char *uri)
 *	int	tlsrpt_sent_mark(const char *dir, const char *day,
 *			const char *domain, const char *uri,
 *			struct strbuf *err)
 *	int	tlsrpt_expire(const char *dir, long lifetime, time_t now,
 *			size_t *removed)
 *
 * DESCRIPTION
 *	tlsrpt_record() appends one outcome to the store: DIR/YYYY-MM-DD
 *	(the UTC day of "when"), one JSON object per line, written with
 *	one write() to a file opened O_APPEND, so that several smtp-out
 *	processes may record at once. The folder is made when missing.
 *	0, or -1 with the reason.
 *
 *	tlsrpt_report() reads the store of one UTC day ("YYYY-MM-DD") and
 *	writes one report per policy domain into "outdir", in the format of
 *	RFC 8460 section 4: organization-name, date-range (the whole day),
 *	contact-info, report-id, and one "policies" entry per policy seen
 *	(type, policy-string lines, domain, mx-host patterns) with the
 *	summary counts and the failure-details grouped by result type,
 *	sending and receiving address, MX host and reason. The file name
 *	is "SENDER!DOMAIN!BEGIN!END.json" (RFC 8460 section 5.1, times in
 *	seconds since the epoch), written under a temporary name and
 *	renamed. "count" gets the number of reports; "written" (NULL is
 *	fine) gets the policy domain of each, one a line. A day without a store
 *	file writes nothing and is not an error. 0, or -1 with the reason.
 *
 *	tlsrpt_day_parse() turns "YYYY-MM-DD" into the UTC time of its
 *	start; 0 or -1.
 *
 *	tlsrpt_rua_parse() reads one _smtp._tls TXT record (RFC 8460
 *	section 3): "v=TLSRPTv1" first, then a "rua" field whose
 *	comma-separated URIs are put into "uris", one a line (only
 *	mailto: and https: ones). 0 with at least one URI, or -1.
 *
 *	tlsrpt_sent_check() says whether the report of "domain" for "day"
 *	went to "uri" (1) or not (0), from DIR/DAY.sent; tlsrpt_sent_mark()
 *	records that it did (one O_APPEND write of "domain uri"), 0 or -1.
 *
 *	tlsrpt_expire() removes the store files (DIR/YYYY-MM-DD and
 *	DIR/YYYY-MM-DD.sent) of days that ended more than "lifetime"
 *	seconds before "now"; "removed" gets how many. 0, or -1 when the
 *	folder cannot be read (a missing one is fine).
 *
 * SEE ALSO
 *	RFC 8460, mta_sts.c, smtp-out(8), sendarix(1) "tlsrpt"
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "strbuf.h"
#include "tlsrpt.h"
#include "xmalloc.h"

/* tlsrpt_day - the UTC day of a time, "YYYY-MM-DD" */
static void
tlsrpt_day(time_t when, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&when, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

/* tlsrpt_day_parse - "YYYY-MM-DD" to its UTC start */
int
tlsrpt_day_parse(const char *day, time_t *start)
{
	struct tm tm;
	char    back[16];
	int     y;
	int     m;
	int     d;
	char    extra;

	if (sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3)
		return (-1);
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	*start = timegm(&tm);
	tlsrpt_day(*start, back, sizeof(back));
	return (strcmp(back, day) == 0 ? 0 : -1);
}

/* tlsrpt_set - a string member when the value is there */
static void
tlsrpt_set(json_t *o, const char *key, const char *val)
{
	if (val && *val)
		json_object_set_new(o, key, json_string(val));
}

/* tlsrpt_append - append one line to a store file, fsync it if asked */
static int
tlsrpt_append(const char *path, const struct strbuf *line, int sync,
	      struct strbuf *err)
{
	ssize_t n;
	int     fd;

	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600)) < 0) {
		strbuf_setf(err, "open %s: %s", path, strerror(errno));
		return (-1);
	}
	n = write(fd, STRBUF_STR(line), STRBUF_LEN(line));
	if (n == (ssize_t) STRBUF_LEN(line) && sync && fsync(fd) < 0)
		n = -1;
	if (close(fd) < 0 || n != (ssize_t) STRBUF_LEN(line)) {
		strbuf_setf(err, "write %s: %s", path,
			    n < 0 ? strerror(errno) : "short write");
		return (-1);
	}
	return (0);
}

/* tlsrpt_record - append one outcome to the store */
int
tlsrpt_record(const char *dir, const struct tlsrpt_event *ev, time_t when,
	              struct strbuf *err)
{
	json_t *o = json_object();
	char    day[16];
	char   *line;
	struct strbuf *path = strbuf_new(256, 0);
	struct strbuf *buf = strbuf_new(1024, 0);
	int     rc = -1;

	tlsrpt_day(when, day, sizeof(day));
	json_object_set_new(o, "time", json_integer((json_int_t) when));
	tlsrpt_set(o, "domain", ev->domain);
	tlsrpt_set(o, "policy-type", ev->policy_type);
	tlsrpt_set(o, "policy", ev->policy_text);
	tlsrpt_set(o, "result", ev->result);
	tlsrpt_set(o, "mx", ev->mx_host);
	tlsrpt_set(o, "sending-ip", ev->sending_ip);
	tlsrpt_set(o, "receiving-ip", ev->receiving_ip);
	tlsrpt_set(o, "reason", ev->reason);
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (line == NULL) {
		strbuf_sets(err, "cannot encode the record");
		goto out;
	}
	strbuf_setf(buf, "%s\n", line);
	free(line);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		strbuf_setf(err, "mkdir %s: %s", dir, strerror(errno));
		goto out;
	}
	strbuf_setf(path, "%s/%s", dir, day);
	rc = tlsrpt_append(STRBUF_STR(path), buf, 0, err);
out:
	strbuf_free(path);
	strbuf_free(buf);
	return (rc);
}

/* tlsrpt_str - a string member or "" */
static const char *
tlsrpt_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return (s ? s : "");
}

/* tlsrpt_policy_lines - the policy-string array and mx-host patterns */
static void
tlsrpt_policy_lines(json_t *pol, const char *text)
{
	json_t *lines = json_array();
	json_t *mx = json_array();
	const char *p = text;
	const char *nl;
	char   *line;
	size_t  n;

	while (*p) {
		nl = strchr(p, '\n');
		n = nl ? (size_t) (nl - p) : strlen(p);
		line = xstrndup(p, n);
		if (n && line[n - 1] == '\r')
			line[n - 1] = 0;
		if (*line) {
			json_array_append_new(lines, json_string(line));
			if (strncmp(line, "mx:", 3) == 0)
				json_array_append_new(mx, json_string(line + 3
					     + strspn(line + 3, " \t")));
		}
		xfree(line);
		p += n + (nl ? 1 : 0);
	}
	json_object_set_new(pol, "policy-string", lines);
	if (json_array_size(mx))
		json_object_set_new(pol, "mx-host", mx);
	else
		json_decref(mx);
}

/* tlsrpt_policy_entry - the "policies" entry for a record, made once */
static json_t *
tlsrpt_policy_entry(json_t *policies, json_t *ev)
{
	const char *type = tlsrpt_str(ev, "policy-type");
	const char *text = tlsrpt_str(ev, "policy");
	json_t *e;
	json_t *pol;
	json_t *sum;
	size_t  i;

	json_array_foreach(policies, i, e) {
		if (strcmp(tlsrpt_str(e, "_type"), type) == 0
		    && strcmp(tlsrpt_str(e, "_text"), text) == 0)
			return (e);
	}
	e = json_object();
	json_object_set_new(e, "_type", json_string(type));
	json_object_set_new(e, "_text", json_string(text));
	pol = json_object();
	json_object_set_new(pol, "policy-type", json_string(type));
	if (*text)
		tlsrpt_policy_lines(pol, text);
	json_object_set_new(pol, "policy-domain",
			    json_string(tlsrpt_str(ev, "domain")));
	json_object_set_new(e, "policy", pol);
	sum = json_object();
	json_object_set_new(sum, "total-successful-session-count",
			    json_integer(0));
	json_object_set_new(sum, "total-failure-session-count",
			    json_integer(0));
	json_object_set_new(e, "summary", sum);
	json_object_set_new(e, "failure-details", json_array());
	json_array_append_new(policies, e);
	return (e);
}

/* tlsrpt_bump - add one to an integer member */
static void
tlsrpt_bump(json_t *o, const char *key)
{
	json_object_set_new(o, key, json_integer(json_integer_value(
					      json_object_get(o, key)) + 1));
}

/* tlsrpt_fail_key - same failure group? */
static int
tlsrpt_same(json_t *d, json_t *ev, const char *dkey, const char *ekey)
{
	return (strcmp(tlsrpt_str(d, dkey), tlsrpt_str(ev, ekey)) == 0);
}

/* tlsrpt_add_failure - one failure into its group */
static void
tlsrpt_add_failure(json_t *entry, json_t *ev)
{
	json_t *details = json_object_get(entry, "failure-details");
	json_t *d;
	size_t  i;

	json_array_foreach(details, i, d) {
		if (tlsrpt_same(d, ev, "result-type", "result")
		    && tlsrpt_same(d, ev, "sending-mta-ip", "sending-ip")
		    && tlsrpt_same(d, ev, "receiving-ip", "receiving-ip")
		    && tlsrpt_same(d, ev, "receiving-mx-hostname", "mx")
		    && tlsrpt_same(d, ev, "failure-reason-code", "reason")) {
			tlsrpt_bump(d, "failed-session-count");
			return;
		}
	}
	d = json_object();
	json_object_set_new(d, "result-type",
			    json_string(tlsrpt_str(ev, "result")));
	tlsrpt_set(d, "sending-mta-ip", tlsrpt_str(ev, "sending-ip"));
	tlsrpt_set(d, "receiving-mx-hostname", tlsrpt_str(ev, "mx"));
	tlsrpt_set(d, "receiving-ip", tlsrpt_str(ev, "receiving-ip"));
	json_object_set_new(d, "failed-session-count", json_integer(1));
	tlsrpt_set(d, "failure-reason-code", tlsrpt_str(ev, "reason"));
	json_array_append_new(details, d);
}

/* tlsrpt_iso - a time in RFC 3339 form, UTC */
static json_t *
tlsrpt_iso(time_t t)
{
	struct tm tm;
	char    buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return (json_string(buf));
}

/* tlsrpt_write - one domain's report into outdir */
static int
tlsrpt_write(const char *outdir, const char *domain, json_t *policies,
	             const char *day, time_t start,
	             const struct tlsrpt_org *org, struct strbuf *err)
{
	json_t *rep = json_object();
	json_t *range = json_object();
	json_t *e;
	struct strbuf *path = strbuf_new(256, 0);
	struct strbuf *tmp = strbuf_new(256, 0);
	struct strbuf *id = strbuf_new(256, 0);
	size_t  i;
	int     rc = -1;

	json_array_foreach(policies, i, e) {
		json_object_del(e, "_type");
		json_object_del(e, "_text");
		if (json_array_size(json_object_get(e, "failure-details")) == 0)
			json_object_del(e, "failure-details");
	}
	strbuf_setf(id, "%s_%s@%s", day, domain, org->sender);
	json_object_set_new(rep, "organization-name", json_string(org->name));
	json_object_set_new(range, "start-datetime", tlsrpt_iso(start));
	json_object_set_new(range, "end-datetime", tlsrpt_iso(start + 86400));
	json_object_set_new(rep, "date-range", range);
	json_object_set_new(rep, "contact-info", json_string(org->contact));
	json_object_set_new(rep, "report-id", json_string(STRBUF_STR(id)));
	json_object_set_new(rep, "policies", json_incref(policies));
	strbuf_setf(path, "%s/%s!%s!%lld!%lld.json", outdir, org->sender,
		    domain, (long long) start, (long long) start + 86400);
	strbuf_setf(tmp, "%s.tmp", STRBUF_STR(path));
	if (json_dump_file(rep, STRBUF_STR(tmp), JSON_INDENT(2)) < 0) {
		strbuf_setf(err, "cannot write %s", STRBUF_STR(tmp));
		goto out;
	}
	if (rename(STRBUF_STR(tmp), STRBUF_STR(path)) < 0) {
		strbuf_setf(err, "rename %s: %s", STRBUF_STR(tmp),
			    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	json_decref(rep);
	strbuf_free(path);
	strbuf_free(tmp);
	strbuf_free(id);
	return (rc);
}

/* tlsrpt_report - the reports of one day, one file per policy domain */
int
tlsrpt_report(const char *dir, const char *outdir, const char *day,
	              const struct tlsrpt_org *org, size_t *count,
	              struct strbuf *written, struct strbuf *err)
{
	json_t *domains = json_object();
	json_t *ev;
	json_t *entry;
	json_t *policies;
	const char *domain;
	struct strbuf *path = strbuf_new(256, 0);
	json_error_t jerr;
	time_t  start;
	char   *line = NULL;
	size_t  cap = 0;
	ssize_t n;
	FILE   *fp;
	int     rc = -1;

	*count = 0;
	if (tlsrpt_day_parse(day, &start) < 0) {
		strbuf_setf(err, "bad day \"%s\" (YYYY-MM-DD)", day);
		goto out;
	}
	strbuf_setf(path, "%s/%s", dir, day);
	if ((fp = fopen(STRBUF_STR(path), "r")) == NULL) {
		rc = errno == ENOENT ? 0 : -1;
		if (rc < 0)
			strbuf_setf(err, "open %s: %s", STRBUF_STR(path),
				    strerror(errno));
		goto out;
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		if ((ev = json_loads(line, 0, &jerr)) == NULL
		    || !json_is_object(ev)) {
			json_decref(ev);
			continue;
		}
		domain = tlsrpt_str(ev, "domain");
		if (*domain == 0) {
			json_decref(ev);
			continue;
		}
		if ((policies = json_object_get(domains, domain)) == NULL) {
			policies = json_array();
			json_object_set_new(domains, domain, policies);
		}
		entry = tlsrpt_policy_entry(policies, ev);
		if (strcmp(tlsrpt_str(ev, "result"), "success") == 0)
			tlsrpt_bump(json_object_get(entry, "summary"),
				    "total-successful-session-count");
		else {
			tlsrpt_bump(json_object_get(entry, "summary"),
				    "total-failure-session-count");
			tlsrpt_add_failure(entry, ev);
		}
		json_decref(ev);
	}
	free(line);
	(void) fclose(fp);
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		strbuf_setf(err, "mkdir %s: %s", outdir, strerror(errno));
		goto out;
	}
	json_object_foreach(domains, domain, policies) {
		if (tlsrpt_write(outdir, domain, policies, day, start, org, err)
		    < 0)
			goto out;
		(*count)++;
		if (written)
			strbuf_printf(written, "%s\n", domain);
	}
	rc = 0;
out:
	json_decref(domains);
	strbuf_free(path);
	return (rc);
}

/* tlsrpt_rua_parse - the rua URIs of a _smtp._tls TXT record */
int
tlsrpt_rua_parse(const char *txt, struct strbuf *uris)
{
	const char *p = txt;
	const char *end;
	const char *u;
	size_t  n;
	size_t  found = 0;
	int     first = 1;

	strbuf_reset(uris);
	while (*p) {
		p += strspn(p, " \t");
		end = p + strcspn(p, ";");
		n = (size_t) (end - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (first) {
			if (n != 10 || strncmp(p, "v=TLSRPTv1", 10) != 0)
				return (-1);
			first = 0;
		} else if (n > 4 && strncasecmp(p, "rua", 3) == 0
			   && (p[3] == '=' || p[3] == ' ' || p[3] == '\t')) {
			u = p + 3 + strspn(p + 3, " \t");
			if (*u++ != '=')
				return (-1);
			while (u < p + n) {
				size_t  k;

				u += strspn(u, " \t");
				k = strcspn(u, ",");
				if (u + k > p + n)
					k = (size_t) (p + n - u);
				while (k && (u[k - 1] == ' ' || u[k - 1] == '\t'))
					k--;
				if ((k > 7 && strncasecmp(u, "mailto:", 7) == 0)
				    || (k > 8 && strncasecmp(u, "https://", 8)
					== 0)) {
					strbuf_append(uris, u, k);
					strbuf_append(uris, "\n", 1);
					found++;
				}
				u += strcspn(u, ",");
				if (*u == ',')
					u++;
			}
		}
		p = *end ? end + 1 : end;
	}
	return (found ? 0 : -1);
}

/* tlsrpt_sent_path - DIR/DAY.sent */
static void
tlsrpt_sent_path(struct strbuf *path, const char *dir, const char *day)
{
	strbuf_setf(path, "%s/%s.sent", dir, day);
}

/* tlsrpt_sent_check - did the report of domain go to uri? */
int
tlsrpt_sent_check(const char *dir, const char *day, const char *domain,
		          const char *uri)
{
	struct strbuf *path = strbuf_new(256, 0);
	struct strbuf *want = strbuf_new(256, 0);
	char   *line = NULL;
	size_t  cap = 0;
	ssize_t n;
	FILE   *fp;
	int     found = 0;

	tlsrpt_sent_path(path, dir, day);
	strbuf_setf(want, "%s %s\n", domain, uri);
	if ((fp = fopen(STRBUF_STR(path), "r")) != NULL) {
		while (!found && (n = getline(&line, &cap, fp)) > 0)
			found = strcmp(line, STRBUF_STR(want)) == 0;
		free(line);
		(void) fclose(fp);
	}
	strbuf_free(path);
	strbuf_free(want);
	return (found);
}

/* tlsrpt_sent_mark - remember that the report of domain went to uri */
int
tlsrpt_sent_mark(const char *dir, const char *day, const char *domain,
		         const char *uri, struct strbuf *err)
{
	struct strbuf *path = strbuf_new(256, 0);
	struct strbuf *line = strbuf_new(256, 0);
	int     rc = -1;

	tlsrpt_sent_path(path, dir, day);
	strbuf_setf(line, "%s %s\n", domain, uri);
	rc = tlsrpt_append(STRBUF_STR(path), line, 1, err);
	strbuf_free(path);
	strbuf_free(line);
	return (rc);
}

/* tlsrpt_expire - remove the store files of old days */
int
tlsrpt_expire(const char *dir, long lifetime, time_t now, size_t *removed)
{
	struct strbuf *path = strbuf_new(256, 0);
	struct dirent *de;
	char    day[11];
	time_t  start;
	DIR    *d;

	*removed = 0;
	if ((d = opendir(dir)) == NULL) {
		strbuf_free(path);
		return (errno == ENOENT ? 0 : -1);
	}
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) < 10)
			continue;
		memcpy(day, de->d_name, 10);
		day[10] = 0;
		if ((de->d_name[10] != 0 && strcmp(de->d_name + 10, ".sent") != 0)
		    || tlsrpt_day_parse(day, &start) < 0
		    || start + 86400 + lifetime > now)
			continue;
		strbuf_setf(path, "%s/%s", dir, de->d_name);
		if (unlink(STRBUF_STR(path)) == 0)
			(*removed)++;
	}
	(void) closedir(d);
	strbuf_free(path);
	return (0);
}
