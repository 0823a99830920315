#ifndef SENDARIX_MTA_STS_H
#define SENDARIX_MTA_STS_H

#include <stddef.h>
#include <time.h>

struct strbuf;

/*
 * MTA-STS (RFC 8461): the TXT record, the policy, MX matching and the
 * on-disk policy cache. The fetch itself is smtp-out's. See mta_sts.c.
 */

#define MTA_STS_MODE_NONE	0
#define MTA_STS_MODE_TESTING	1
#define MTA_STS_MODE_ENFORCE	2

#define MTA_STS_ID_MAX		32	/* 1*32(ALPHA / DIGIT) */
#define MTA_STS_MAX_AGE_MAX	31557600	/* one year, RFC 8461 3.2 */
#define MTA_STS_MX_MAX		64	/* mx lines kept */
#define MTA_STS_POLICY_MAX	(64 * 1024)	/* longest policy body */

struct mta_sts_policy {
	char   *domain;			/* the policy domain, lower case */
	char    id[MTA_STS_ID_MAX + 1];	/* of the TXT record it came with */
	int     mode;			/* MTA_STS_MODE_* */
	long    max_age;		/* seconds */
	time_t  fetched;		/* when it was fetched */
	char  **mx;			/* patterns, "*.example.net" or names */
	size_t  nmx;
	char   *text;			/* the policy as served */
};

extern int mta_sts_txt_parse(const char *, char *, size_t);
extern struct mta_sts_policy *mta_sts_parse(const char *, const char *,
					            size_t, struct strbuf *);
extern struct mta_sts_policy *mta_sts_free(struct mta_sts_policy *);
extern struct mta_sts_policy *mta_sts_copy(const struct mta_sts_policy *);
extern int mta_sts_pattern_match(const char *, const char *);
extern int mta_sts_mx_match(const struct mta_sts_policy *, const char *);
extern const char *mta_sts_mode_str(int);
extern int mta_sts_expired(const struct mta_sts_policy *, time_t);
extern int mta_sts_cache_save(const char *, const struct mta_sts_policy *,
			              struct strbuf *);
extern struct mta_sts_policy *mta_sts_cache_load(const char *,
					                 const char *);

#endif
