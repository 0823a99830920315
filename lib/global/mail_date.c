/*
 * mail_date - RFC 5322 dates for message headers
 *
 * SYNOPSIS
 *	#include "mail_date.h"
 *
 *	void	mail_date(char *buf, size_t size, time_t when)
 *
 * DESCRIPTION
 *	mail_date() formats "when" as an RFC 5322 date-time in local time
 *	with a numeric zone, "Wed, 25 Nov 2026 10:00:00 +0100", with English
 *	day and month names whatever the locale. MAIL_DATE_SIZE bytes are
 *	always enough. Used for Date: headers, Received: headers and the
 *	dates in delivery status notifications.
 */

#include <stdio.h>
#include <time.h>

#include "mail_date.h"

/* mail_date - RFC 5322 date, local time, numeric zone */
void
mail_date(char *buf, size_t size, time_t when)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
	};
	struct tm tm;
	long    off;

	localtime_r(&when, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
		 days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
		 (off < 0 ? -off : off) % 60);
}
