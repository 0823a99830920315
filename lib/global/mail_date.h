#ifndef SENDARIX_MAIL_DATE_H
#define SENDARIX_MAIL_DATE_H

#include <stddef.h>
#include <time.h>

#define MAIL_DATE_SIZE	64

extern void mail_date(char *, size_t, time_t);

#endif
