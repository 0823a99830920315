/*
 * sendarix_tlsrpt - the "sendarix tlsrpt" command: write TLS-RPT reports
 *
 * SYNOPSIS
 *	sendarix tlsrpt [-d YYYY-MM-DD] [-o directory]
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
 *	on standard output.
 *
 *	Sending the reports to the rua= address of each domain's
 *	_smtp._tls TXT record (by mail or HTTPS POST) is not done yet.
 *
 * DIAGNOSTICS
 *	Exit status 0 (also when there was nothing to report), 1 when the
 *	store cannot be read or a report cannot be written, 2 on a usage
 *	error.
 *
 * SEE ALSO
 *	sendarix(1), smtp-out(8), tlsrpt.c, RFC 8460
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "strbuf.h"
#include "tlsrpt.h"
#include "sendarix.h"

/* sendarix_tlsrpt_main - write one day's reports */
int
sendarix_tlsrpt_main(int argc, char **argv)
{
	struct tlsrpt_org org;
	struct strbuf *store = strbuf_new(256, 0);
	struct strbuf *err = strbuf_new(256, 0);
	const char *outdir = conf_get("smtp_tls_rpt_directory");
	const char *qdir = conf_get("queue_directory");
	const char *sender;
	char    day[16];
	time_t  yesterday = time(NULL) - 86400;
	struct tm tm;
	size_t  count = 0;
	int     ch;
	int     rc = 0;

	gmtime_r(&yesterday, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	optind = 1;
	while ((ch = getopt(argc, argv, "d:o:")) != -1) {
		switch (ch) {
		case 'd':
			snprintf(day, sizeof(day), "%s", optarg);
			break;
		case 'o':
			outdir = optarg;
			break;
		default:
			fprintf(stderr, "usage: sendarix tlsrpt [-d YYYY-MM-DD] "
				"[-o directory]\n");
			rc = 2;
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: sendarix tlsrpt [-d YYYY-MM-DD] "
			"[-o directory]\n");
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
	if (tlsrpt_report(STRBUF_STR(store), outdir, day, &org, &count, err)
	    < 0) {
		cli_error("tlsrpt: %s", STRBUF_STR(err));
		rc = 1;
		goto out;
	}
	printf("%zu report%s for %s in %s\n", count, count == 1 ? "" : "s",
	       day, outdir);
out:
	strbuf_free(store);
	strbuf_free(err);
	return (rc);
}
