/*
 * sendarix_tlsrpt - the "sendarix tlsrpt" command: write and send
 *	TLS-RPT reports
 *
 * SYNOPSIS
 *	sendarix tlsrpt [-s] [-d YYYY-MM-DD] [-o directory]
 *
 * DESCRIPTION
 *	Writes the TLS-RPT aggregate reports (RFC 8460 section 4) of one
 *	UTC day, one JSON file per policy domain, from what smtp-out
 *	recorded under queue_directory/data/tlsrpt/ (smtp_tls_rpt_enable),
 *	into smtp_tls_rpt_directory (or -o). The day is yesterday unless
 *	-d names one; run it once a day from cron, shortly after midnight
 *	UTC. organization-name and contact-info come from
 *	smtp_tls_rpt_organization and smtp_tls_rpt_contact; the file names
 *	begin with $mydomain (or $myhostname). Each written file is named
 *	on standard output. Store files of days that ended more than
 *	smtp_tls_rpt_store_lifetime ago are then removed.
 *
 *	With -s (--send) each report is also sent (RFC 8460 section 5) to
 *	the rua= URIs of the one "v=TLSRPTv1" TXT record of
 *	_smtp._tls.DOMAIN (looked up with dns_resolver):
 *	  mailto:  a multipart/report; report-type="tlsrpt" message with
 *	           the gzip-compressed report as application/tlsrpt+gzip
 *	           (section 5.3), submitted to cleanup on
 *	           public/sendmail from smtp_tls_rpt_sender;
 *	  https:   a POST of the same gzip data as application/tlsrpt+gzip
 *	           (section 5.4); any 2xx status is success. The server is
 *	           verified against smtp_tls_rpt_CAfile (or the system
 *	           store); its name is resolved with dns_resolver too.
 *	Each URI that took the report is recorded in the store (DAY.sent),
 *	so running the command again never sends a report twice to one
 *	URI; URIs that failed are tried again by the next run.
 *
 * BUGS
 *	RFC 8460 section 5.3 wants mailed reports DKIM-signed by the
 *	reporting domain (receivers ignore unsigned ones); Sendarix has no
 *	DKIM signer yet, so mailto: reports need a signing relay or milter.
 *	The mail carries "TLS-Required: No" (RFC 8689) so that relays
 *	deliver it despite TLS failures, but smtp-out itself does not
 *	honour that header yet: a report to a domain whose MTA-STS or DANE
 *	policy fails stays deferred like other mail.
 *
 * DIAGNOSTICS
 *	Exit status 0 (also when there was nothing to report, or a domain
 *	publishes no TLS-RPT record), 1 when the store cannot be read, a
 *	report cannot be written or a report could not be sent to one of
 *	its URIs, 2 on a usage error.
 *
 * SEE ALSO
 *	sendarix(1), smtp-out(8), tlsrpt.c, http.c, RFC 8460
 */

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <zlib.h>

#include "attr.h"
#include "cleanup_client.h"
#include "conf.h"
#include "dns.h"
#include "http.h"
#include "mail_attr.h"
#include "mail_date.h"
#include "strbuf.h"
#include "tlsrpt.h"
#include "xmalloc.h"
#include "sendarix.h"

#define TLSRPT_USAGE	"usage: sendarix tlsrpt [-s] [-d YYYY-MM-DD] " \
			"[-o directory]\n"
#define TLSRPT_MAX	(16 * 1024 * 1024)	/* longest report read */

/* What one day's sending needs. */
struct tlsrpt_send {
	struct event_base *base;
	const char *store;
	const char *outdir;
	const char *day;
	time_t  start;
	const struct tlsrpt_org *org;
	const char *from;
	int     ready;			/* DNS and HTTP set up */
	int     failed;			/* a URI did not take a report */
};

/* One asynchronous step the command waits for. */
struct tlsrpt_wait {
	int     done;
	struct strbuf *out;		/* TXT records, or the pin */
	long    status;			/* HTTP */
	struct strbuf *why;
};

/* tlsrpt_loop - run the loop until a step is done */
static void
tlsrpt_loop(struct tlsrpt_send *ts, struct tlsrpt_wait *w)
{
	while (!w->done)
		if (event_base_loop(ts->base, EVLOOP_ONCE) < 0)
			break;
}

/* tlsrpt_gzip - the gzip form of a buffer; 0 or -1 */
static int
tlsrpt_gzip(const char *data, size_t len, struct strbuf *out)
{
	z_stream z;
	unsigned char buf[16384];
	int     rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return (-1);
	z.next_in = (unsigned char *) data;
	z.avail_in = (uInt) len;
	do {
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		rc = deflate(&z, Z_FINISH);
		if (rc == Z_STREAM_ERROR)
			break;
		strbuf_append(out, buf, sizeof(buf) - z.avail_out);
	} while (rc != Z_STREAM_END);
	(void) deflateEnd(&z);
	return (rc == Z_STREAM_END ? 0 : -1);
}

/* tlsrpt_base64 - base64 lines of at most 76 characters, CRLF ended */
static void
tlsrpt_base64(const unsigned char *p, size_t len, struct strbuf *out)
{
	static const char tab[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned long v;
	size_t  i;
	size_t  col = 0;
	char    q[4];

	for (i = 0; i < len; i += 3) {
		v = (unsigned long) p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned long) p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? tab[v & 63] : '=';
		strbuf_append(out, q, 4);
		if ((col += 4) >= 76) {
			strbuf_appends(out, "\r\n");
			col = 0;
		}
	}
	if (col)
		strbuf_appends(out, "\r\n");
}

/* tlsrpt_read - a whole file; 0 or -1 */
static int
tlsrpt_read(const char *path, struct strbuf *out)
{
	char    buf[8192];
	ssize_t n;
	int     fd;

	if ((fd = open(path, O_RDONLY)) < 0)
		return (-1);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (STRBUF_LEN(out) + (size_t) n > TLSRPT_MAX
		    || strbuf_append(out, buf, (size_t) n) < 0) {
			n = -1;
			break;
		}
	(void) close(fd);
	return (n < 0 ? -1 : 0);
}

/* tlsrpt_txt_cb - the _smtp._tls TXT records, one a line */
static void
tlsrpt_txt_cb(struct dns_rrset *rs, void *ctx)
{
	struct tlsrpt_wait *w = ctx;
	struct strbuf *txt = strbuf_new(256, 0);
	size_t  nrpt = 0;
	size_t  i;

	for (i = 0; rs->status == DNS_OK && i < rs->count; i++) {
		strbuf_reset(txt);
		if (dns_txt_decode(rs->data[i], rs->len[i], txt) < 0
		    || strncmp(STRBUF_STR(txt), "v=TLSRPTv1", 10) != 0)
			continue;
		/* RFC 8460 3: other than one such record means none. */
		if (nrpt++ == 0)
			strbuf_sets(w->out, STRBUF_STR(txt));
		else
			strbuf_reset(w->out);
	}
	if (rs->status == DNS_TEMPFAIL)
		strbuf_sets(w->why, rs->reason);
	strbuf_free(txt);
	dns_rrset_free(rs);
	w->done = 1;
}

/* tlsrpt_host_cb - the addresses of an https: receiver, as a pin */
static void
tlsrpt_host_cb(struct dns_result *res, void *ctx)
{
	struct tlsrpt_wait *w = ctx;
	size_t  i;

	if (res->status != DNS_OK)
		strbuf_sets(w->why, res->reason);
	for (i = 0; res->status == DNS_OK && i < res->count; i++)
		strbuf_printf(w->out, res->addrs[i].family == AF_INET6 ?
			      "%s[%s]" : "%s%s", i ? "," : "",
			      res->addrs[i].addr);
	dns_result_free(res);
	w->done = 1;
}

/* tlsrpt_http_cb - the answer to a POST */
static void
tlsrpt_http_cb(const struct http_result *res, void *ctx)
{
	struct tlsrpt_wait *w = ctx;

	w->status = res->status;
	if (*res->error)
		strbuf_sets(w->why, res->error);
	else if (res->status < 200 || res->status > 299)
		strbuf_setf(w->why, "HTTP status %ld", res->status);
	w->done = 1;
}

/* tlsrpt_setup - the resolver and libcurl, once */
static int
tlsrpt_setup(struct tlsrpt_send *ts, struct strbuf *err)
{
	if (ts->ready)
		return (0);
	if ((ts->base = event_base_new()) == NULL) {
		strbuf_sets(err, "cannot make an event base");
		return (-1);
	}
	if (dns_init(ts->base, conf_get("dns_resolver"), err) < 0)
		return (-1);
	dns_set_timeout(conf_get_time("dns_timeout"));
	if (http_init(ts->base) < 0) {
		strbuf_sets(err, "cannot start libcurl");
		return (-1);
	}
	if (http_set_ca(conf_get("smtp_tls_rpt_CAfile"), NULL) < 0) {
		strbuf_setf(err, "smtp_tls_rpt_CAfile: %s", strerror(errno));
		return (-1);
	}
	ts->ready = 1;
	return (0);
}

/* tlsrpt_post - POST the report to an https: URI; 0 or -1 */
static int
tlsrpt_post(struct tlsrpt_send *ts, const char *uri, const struct strbuf *gz,
	            struct strbuf *why)
{
	struct tlsrpt_wait w;
	struct http_opts opts;
	struct strbuf *host = strbuf_new(256, 0);
	struct strbuf *pin = strbuf_new(256, 0);
	const char *h = uri + 8;
	size_t  n = strcspn(h, ":/?#");
	long    port = 443;
	int     rc = -1;

	memset(&w, 0, sizeof(w));
	w.why = why;
	w.out = pin;
	strbuf_set(host, h, n);
	if (h[n] == ':')
		port = strtol(h + n + 1, NULL, 10);
	if (n == 0 || *h == '[' || port <= 0 || port > 65535) {
		strbuf_sets(why, "unsupported URI");
		goto out;
	}
	strbuf_setf(pin, "%s:%ld:", STRBUF_STR(host), port);
	(void) dns_lookup_host(STRBUF_STR(host), tlsrpt_host_cb, &w);
	tlsrpt_loop(ts, &w);
	if (STRBUF_LEN(why))
		goto out;
	memset(&opts, 0, sizeof(opts));
	opts.timeout = 60;
	opts.resolve = STRBUF_STR(pin);
	w.done = 0;
	(void) http_post(uri, "application/tlsrpt+gzip", STRBUF_STR(gz),
			 STRBUF_LEN(gz), &opts, tlsrpt_http_cb, &w);
	tlsrpt_loop(ts, &w);
	rc = STRBUF_LEN(why) ? -1 : 0;
out:
	strbuf_free(host);
	strbuf_free(pin);
	return (rc);
}

/* tlsrpt_unescape - a mailto: address without %XX escapes and ?fields */
static void
tlsrpt_unescape(const char *p, struct strbuf *out)
{
	unsigned int c;

	strbuf_reset(out);
	for (; *p && *p != '?'; p++) {
		if (*p == '%' && sscanf(p + 1, "%2x", &c) == 1 && c >= 0x20
		    && c < 0x7f) {
			strbuf_appendc(out, (int) c);
			p += 2;
		} else
			strbuf_appendc(out, *p);
	}
}

/* tlsrpt_compose - the RFC 8460 5.3 message */
static void
tlsrpt_compose(struct tlsrpt_send *ts, const char *domain, const char *rcpt,
	               const char *fname, const struct strbuf *gz,
	               struct strbuf *msg)
{
	char    date[64];
	char    bound[80];
	time_t  now = time(NULL);

	mail_date(date, sizeof(date), now);
	snprintf(bound, sizeof(bound), "=_tlsrpt_%lld_%ld", (long long) now,
		 (long) getpid());
	strbuf_printf(msg, "From: <%s>\r\n", ts->from);
	strbuf_printf(msg, "To: <%s>\r\n", rcpt);
	strbuf_printf(msg, "Date: %s\r\n", date);
	strbuf_printf(msg, "Subject: Report Domain: %s Submitter: %s "
		      "Report-ID: <%s_%s@%s>\r\n", domain, ts->org->sender,
		      ts->day, domain, ts->org->sender);
	strbuf_printf(msg, "Message-ID: <tlsrpt.%s.%s.%lld.%ld@%s>\r\n",
		      ts->day, domain, (long long) now, (long) getpid(),
		      ts->org->sender);
	strbuf_printf(msg, "TLS-Report-Domain: %s\r\n", domain);
	strbuf_printf(msg, "TLS-Report-Submitter: %s\r\n", ts->org->sender);
	/* RFC 8460 5.3: deliver despite TLS failures (RFC 8689 header). */
	strbuf_appends(msg, "TLS-Required: No\r\n");
	strbuf_appends(msg, "MIME-Version: 1.0\r\n");
	strbuf_printf(msg, "Content-Type: multipart/report; "
		      "report-type=\"tlsrpt\";\r\n\tboundary=\"%s\"\r\n", bound);
	strbuf_appends(msg, "\r\nThis is a MIME-formatted message.\r\n");
	strbuf_printf(msg, "\r\n--%s\r\n", bound);
	strbuf_appends(msg, "Content-Type: text/plain; charset=us-ascii\r\n"
		       "Content-Transfer-Encoding: 7bit\r\n\r\n");
	strbuf_printf(msg, "This is an aggregate TLS report (RFC 8460) from "
		      "%s\r\nfor the policy domain %s, %s (UTC).\r\n",
		      ts->org->name, domain, ts->day);
	strbuf_printf(msg, "\r\n--%s\r\n", bound);
	strbuf_appends(msg, "Content-Type: application/tlsrpt+gzip\r\n"
		       "Content-Transfer-Encoding: base64\r\n");
	strbuf_printf(msg, "Content-Disposition: attachment;\r\n"
		      "\tfilename=\"%s\"\r\n\r\n", fname);
	tlsrpt_base64((const unsigned char *) STRBUF_STR(gz), STRBUF_LEN(gz),
		      msg);
	strbuf_printf(msg, "\r\n--%s--\r\n", bound);
}

/* tlsrpt_mail - submit the report to public/sendmail; 0 or -1 */
static int
tlsrpt_mail(struct tlsrpt_send *ts, const char *domain, const char *uri,
	            const char *fname, const struct strbuf *gz,
	            struct strbuf *why)
{
	struct cleanup_client *cl;
	struct cleanup_result cr;
	struct strbuf *rcpt = strbuf_new(256, 0);
	struct strbuf *env = strbuf_new(256, 0);
	struct strbuf *msg = strbuf_new(8192, 0);
	struct strbuf *path = strbuf_new(256, 0);
	int     fd;
	int     rc = -1;

	tlsrpt_unescape(uri + 7, rcpt);
	strbuf_setf(path, "%s/public/sendmail", conf_get("queue_directory"));
	if ((fd = cleanup_client_connect(STRBUF_STR(path), 1)) < 0) {
		strbuf_setf(why, "connect to %s: %s", STRBUF_STR(path),
			    strerror(errno));
		goto out;
	}
	attr_puts(env, MAIL_ATTR_SENDER, ts->from);
	attr_puts(env, MAIL_ATTR_RCPT, STRBUF_STR(rcpt));
	attr_puts(env, MAIL_ATTR_BODY, "7BIT");
	attr_end(env);
	if ((cl = cleanup_client_start(fd, env, 300, &cr)) != NULL) {
		tlsrpt_compose(ts, domain, STRBUF_STR(rcpt), fname, gz, msg);
		if (cleanup_client_put(cl, STRBUF_STR(msg), STRBUF_LEN(msg),
				       &cr) == 0)
			(void) cleanup_client_end(cl, NULL, &cr);
		cleanup_client_free(cl);
	}
	if (cr.status == 0 && (cr.lost[0] == 0 || cr.committed)) {
		strbuf_sets(why, cr.queue_id);
		rc = 0;
	} else
		strbuf_setf(why, "%s", cr.lost[0] ? cr.lost : cr.reason);
out:
	strbuf_free(rcpt);
	strbuf_free(env);
	strbuf_free(msg);
	strbuf_free(path);
	return (rc);
}

/* tlsrpt_send_one - send one domain's report to its rua= URIs */
static void
tlsrpt_send_one(struct tlsrpt_send *ts, const char *domain)
{
	struct tlsrpt_wait w;
	struct strbuf *name = strbuf_new(256, 0);
	struct strbuf *uris = strbuf_new(256, 0);
	struct strbuf *json = strbuf_new(8192, 0);
	struct strbuf *gz = strbuf_new(8192, 0);
	struct strbuf *why = strbuf_new(256, 0);
	struct strbuf *fname = strbuf_new(256, 0);
	char   *uri;
	char   *nl;

	memset(&w, 0, sizeof(w));
	w.out = strbuf_new(256, 0);
	w.why = why;
	strbuf_setf(name, "_smtp._tls.%s", domain);
	(void) dns_lookup_rr(STRBUF_STR(name), DNS_TYPE_TXT, tlsrpt_txt_cb, &w);
	tlsrpt_loop(ts, &w);
	if (STRBUF_LEN(why)) {
		cli_error("tlsrpt: %s: %s", STRBUF_STR(name), STRBUF_STR(why));
		ts->failed = 1;
		goto out;
	}
	if (tlsrpt_rua_parse(STRBUF_STR(w.out), uris) < 0) {
		printf("%s: no TLS-RPT record, not sent\n", domain);
		goto out;
	}
	strbuf_setf(name, "%s/%s!%s!%lld!%lld.json", ts->outdir,
		    ts->org->sender, domain, (long long) ts->start,
		    (long long) ts->start + 86400);
	strbuf_setf(fname, "%s!%s!%lld!%lld.json.gz", ts->org->sender, domain,
		    (long long) ts->start, (long long) ts->start + 86400);
	if (tlsrpt_read(STRBUF_STR(name), json) < 0
	    || tlsrpt_gzip(STRBUF_STR(json), STRBUF_LEN(json), gz) < 0) {
		cli_error("tlsrpt: %s: cannot read or compress the report",
			  STRBUF_STR(name));
		ts->failed = 1;
		goto out;
	}
	for (uri = STRBUF_STR(uris); (nl = strchr(uri, '\n')) != NULL;
	     uri = nl + 1) {
		*nl = 0;
		if (tlsrpt_sent_check(ts->store, ts->day, domain, uri)) {
			printf("%s: already sent to %s\n", domain, uri);
			continue;
		}
		strbuf_reset(why);
		if ((strncasecmp(uri, "mailto:", 7) == 0 ?
		     tlsrpt_mail(ts, domain, uri, STRBUF_STR(fname), gz, why) :
		     tlsrpt_post(ts, uri, gz, why)) < 0) {
			cli_error("tlsrpt: report for %s to %s not sent: %s",
				  domain, uri, STRBUF_STR(why));
			ts->failed = 1;
			continue;
		}
		printf("%s: sent to %s%s%s\n", domain, uri, STRBUF_LEN(why) ?
		       " queue_id=" : "", STRBUF_STR(why));
		strbuf_reset(why);
		if (tlsrpt_sent_mark(ts->store, ts->day, domain, uri, why) < 0) {
			cli_error("tlsrpt: %s", STRBUF_STR(why));
			ts->failed = 1;
		}
	}
out:
	strbuf_free(w.out);
	strbuf_free(name);
	strbuf_free(uris);
	strbuf_free(json);
	strbuf_free(gz);
	strbuf_free(why);
	strbuf_free(fname);
}

/* tlsrpt_send_all - send each written report */
static int
tlsrpt_send_all(struct tlsrpt_send *ts, char *domains)
{
	struct strbuf *err = strbuf_new(256, 0);
	char   *d;
	char   *nl;
	int     rc = 0;

	if (*domains && tlsrpt_setup(ts, err) < 0) {
		cli_error("tlsrpt: %s", STRBUF_STR(err));
		rc = 1;
		goto out;
	}
	for (d = domains; (nl = strchr(d, '\n')) != NULL; d = nl + 1) {
		*nl = 0;
		tlsrpt_send_one(ts, d);
	}
	rc = ts->failed ? 1 : 0;
out:
	if (ts->ready) {
		http_free();
		dns_free();
	}
	if (ts->base)
		event_base_free(ts->base);
	strbuf_free(err);
	return (rc);
}

/* sendarix_tlsrpt_main - write one day's reports, maybe send them */
int
sendarix_tlsrpt_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"send", no_argument, NULL, 's'},
		{NULL, 0, NULL, 0},
	};
	struct tlsrpt_org org;
	struct tlsrpt_send ts;
	struct strbuf *store = strbuf_new(256, 0);
	struct strbuf *err = strbuf_new(256, 0);
	struct strbuf *written = strbuf_new(256, 0);
	const char *outdir = conf_get("smtp_tls_rpt_directory");
	const char *qdir = conf_get("queue_directory");
	const char *sender;
	char    day[16];
	time_t  yesterday = time(NULL) - 86400;
	struct tm tm;
	size_t  count = 0;
	size_t  removed = 0;
	int     send = 0;
	int     ch;
	int     rc = 0;

	gmtime_r(&yesterday, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "d:o:s", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			snprintf(day, sizeof(day), "%s", optarg);
			break;
		case 'o':
			outdir = optarg;
			break;
		case 's':
			send = 1;
			break;
		default:
			fprintf(stderr, TLSRPT_USAGE);
			rc = 2;
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, TLSRPT_USAGE);
		rc = 2;
		goto out;
	}
	sender = conf_get("mydomain");
	if (sender == NULL || *sender == 0)
		sender = conf_get("myhostname");
	org.name = conf_get("smtp_tls_rpt_organization");
	org.contact = conf_get("smtp_tls_rpt_contact");
	org.sender = sender && *sender ? sender : "localhost";
	if (org.name == NULL || *org.name == 0)
		org.name = org.sender;
	if (org.contact == NULL)
		org.contact = "";
	strbuf_setf(store, "%s/%s", qdir ? qdir : ".", TLSRPT_STORE);
	if (tlsrpt_report(STRBUF_STR(store), outdir, day, &org, &count,
			  written, err) < 0) {
		cli_error("tlsrpt: %s", STRBUF_STR(err));
		rc = 1;
		goto out;
	}
	printf("%zu report%s for %s in %s\n", count, count == 1 ? "" : "s",
	       day, outdir);
	if (send) {
		memset(&ts, 0, sizeof(ts));
		ts.store = STRBUF_STR(store);
		ts.outdir = outdir;
		ts.day = day;
		ts.org = &org;
		ts.from = conf_get("smtp_tls_rpt_sender");
		if (ts.from == NULL || *ts.from == 0)
			ts.from = "postmaster";
		(void) tlsrpt_day_parse(day, &ts.start);
		rc = tlsrpt_send_all(&ts, STRBUF_STR(written));
	}
	/* Then the store of old days goes (smtp_tls_rpt_store_lifetime). */
	if (tlsrpt_expire(STRBUF_STR(store),
			  conf_get_time("smtp_tls_rpt_store_lifetime"),
			  time(NULL), &removed) < 0)
		cli_error("tlsrpt: cannot clean %s: %s", STRBUF_STR(store),
			  strerror(errno));
	else if (removed)
		printf("%zu old store file%s removed\n", removed,
		       removed == 1 ? "" : "s");
out:
	strbuf_free(store);
	strbuf_free(err);
	strbuf_free(written);
	return (rc);
}
