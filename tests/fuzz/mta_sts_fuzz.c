/*
 * mta_sts_fuzz - libFuzzer target for the MTA-STS TXT record and policy
 *	parsers (lib/global/mta_sts.c): both read what a remote domain
 *	publishes.
 *
 * Checks beyond "does not crash": a policy that parses has a known mode,
 * a max_age within RFC 8461's bound, at least one mx unless its mode is
 * none, parses again from the text it keeps to the same values, and
 * matches each of its own literal mx names; an id from a TXT record is
 * 1-32 letters and digits.
 */

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mta_sts.h"
#include "strbuf.h"

/* LLVMFuzzerTestOneInput - one input */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf *err = strbuf_new(64, 0);
	struct mta_sts_policy *p;
	struct mta_sts_policy *q;
	char    id[MTA_STS_ID_MAX + 1];
	char   *txt;
	size_t  i;

	txt = malloc(size + 1);
	if (txt == NULL)
		abort();
	memcpy(txt, data, size);
	txt[size] = 0;
	if (mta_sts_txt_parse(txt, id, sizeof(id)) == 0) {
		if (strlen(id) == 0 || strlen(id) > MTA_STS_ID_MAX)
			abort();
		for (i = 0; id[i]; i++)
			if (!isalnum((unsigned char) id[i]))
				abort();
	}
	free(txt);

	p = mta_sts_parse("example.net", (const char *) data, size, err);
	if (p) {
		if (p->mode != MTA_STS_MODE_NONE && p->mode != MTA_STS_MODE_TESTING
		    && p->mode != MTA_STS_MODE_ENFORCE)
			abort();
		if (p->max_age < 0 || p->max_age > MTA_STS_MAX_AGE_MAX)
			abort();
		if (p->mode != MTA_STS_MODE_NONE && p->nmx == 0)
			abort();
		q = mta_sts_parse("example.net", p->text, strlen(p->text), err);
		if (q == NULL || q->mode != p->mode || q->max_age != p->max_age
		    || q->nmx != p->nmx)
			abort();
		for (i = 0; i < p->nmx; i++)
			if (strncmp(p->mx[i], "*.", 2) != 0
			    && !mta_sts_mx_match(p, p->mx[i]))
				abort();
		mta_sts_free(q);
		mta_sts_free(p);
	}
	strbuf_free(err);
	return (0);
}
