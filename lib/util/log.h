#ifndef SENDARIX_LOG_H
#define SENDARIX_LOG_H

#include <stdarg.h>

extern int log_verbose;

extern void log_init(const char *);
extern void log_open(const char *, const char *, const char *);
extern void log_flush(void);
extern const char *log_progname(void);

#define LOG_PRINTF(n)	__attribute__((format(printf, n, n + 1)))

extern void log_debug(const char *,...) LOG_PRINTF(1);
extern void log_info(const char *,...) LOG_PRINTF(1);
extern void log_warn(const char *,...) LOG_PRINTF(1);
extern void log_error(const char *,...) LOG_PRINTF(1);
extern void log_fatal(const char *,...) LOG_PRINTF(1)
		__attribute__((noreturn));
extern void log_panic(const char *,...) LOG_PRINTF(1)
		__attribute__((noreturn));

#endif
