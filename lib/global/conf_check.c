/*
 * conf_check - is a configuration good enough to start (or reload)?
 *
 * SYNOPSIS
 *	#include "conf_check.h"
 *
 *	int	conf_check(const struct mastercf *cf, int flags,
 *			conf_check_fn report, void *ctx)
 *	int	conf_check_param(const struct conf_param *p,
 *			const char *value, struct strbuf *why)
 *
 * DESCRIPTION
 *	conf_check() looks at the loaded main.cf (conf_load()) and at the
 *	services of master.cf (cf, may be NULL) and calls report once per
 *	problem, with CONF_CHECK_ERROR or CONF_CHECK_WARN and a one-line
 *	message. "sendarix check", "sendarix start", "sendarix reload" and
 *	master (at start and on SIGHUP) all call it, so that whatever one
 *	refuses, all refuse; the rule lives here.
 *
 *	Errors are what would make a program refuse to start, or crash
 *	over and over, once it runs:
 *	- a parameter whose effective value (after $name expansion) is not
 *	  of its type (integer, yes/no, time, size) or is out of the range
 *	  in conf_bounds[], and the few string parameters a daemon parses
 *	  at start (inet_protocols, smtp_address_preference, mynetworks,
 *	  relay_domains, smtpd_client_connection_exceptions, the service
 *	  names, queue_directory, smtp_tls_security_level,
 *	  smtpd_tls_security_level, the smtpd_tls cipher grades, and
 *	  transport_maps, smtp_tls_policy_maps and smtp_sasl_password_maps:
 *	  every table opens) and
 *	  smtpd's restriction lists (an
 *	  unknown verb, a missing argument, a verb not in this build);
 *	- the same for each master.cf service with its -o overrides
 *	  applied (reported only where the value differs from main.cf's,
 *	  so one bad main.cf line is reported once), and an override that
 *	  does not parse;
 *	- a master.cf command that is not an executable file
 *	  (daemon_directory/command, or the absolute path given);
 *	- a mail_owner that does not exist or is root, when run as root;
 *	- with CONF_CHECK_QUEUE: a queue_directory (or a folder in it) that
 *	  is not a folder, or that is missing and cannot be created.
 *	- an smtpd service that asks for TLS (smtpd_tls_security_level,
 *	  smtpd_tls_wrappermode) with a key file anyone may read.
 *	Warnings: an unknown parameter in an -o override, an smtpd service
 *	whose cleanup service is not in master.cf, an smtpd service that
 *	asks for TLS without a certificate or with a key file that cannot
 *	be seen, and (CONF_CHECK_QUEUE)
 *	queue folders with other modes or owners than master gives them.
 *	Unknown names in main.cf are warned about by conf_load() itself.
 *
 *	conf_check_param() checks one value of one parameter by the same
 *	rules (for "sendarix conf -e"); a warning is no failure there.
 *
 *	The check changes nothing: overrides it applies are undone
 *	(conf_save(), conf_restore()).
 * DIAGNOSTICS
 *	The number of errors (0: good enough to start). Nothing here ends
 *	the process.
 * SEE ALSO
 *	conf(3), mastercf(3), sendarix(1) "check", master(8).
 */

#include <sys/stat.h>
#include <sys/types.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "conf_check.h"
#include "dns.h"
#include "rst_verb.h"
#include "map.h"
#include "mastercf.h"
#include "qfile.h"
#include "privs.h"
#include "strbuf.h"
#include "xmalloc.h"

/* The folders master makes under queue_directory (master_queue.c). */

#define CONF_CHECK_NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* One run of the check. */
struct conf_check_state {
	conf_check_fn report;
	void   *ctx;
	int     errors;
	struct strbuf *msg;
	struct strbuf *why;
};

/* conf_check_say - report one problem, with a prefix */
static void
conf_check_say(struct conf_check_state *st, int level, const char *prefix,
	       const char *text)
{
	strbuf_setf(st->msg, "%s%s", prefix ? prefix : "", text);
	if (level == CONF_CHECK_ERROR)
		st->errors++;
	st->report(level, st->msg->data, st->ctx);
}

/* conf_check_list - a match list parameter, as smtpd opens it */
static int
conf_check_list(const char *name, const char *value, int domains,
		struct strbuf *why, int *warn)
{
	struct strbuf *err;
	struct matchlist *list;
	int     ret = 0;

	*warn = 0;
	if (value[strspn(value, " \t,")] == 0)
		return (0);
	err = strbuf_new(128, 0);
	list = domains ? matchlist_domain(value, err) :
		matchlist_addr(value, err);
	if (list == NULL) {
		strbuf_setf(why, "parameter %s: bad value \"%s\": %s", name,
			    value, err->len ? err->data : "syntax error");
		ret = -1;
	} else if (err->len) {
		/* smtpd logs this and carries on: a warning. */
		strbuf_setf(why, "parameter %s: %s", name, err->data);
		*warn = 1;
		ret = -1;
	}
	matchlist_free(list);
	strbuf_free(err);
	return (ret);
}

/* conf_check_service_name - a socket name under private/ */
static int
conf_check_service_name(const char *name, const char *value,
			struct strbuf *why)
{
	if (*value == 0) {
		strbuf_setf(why, "parameter %s: empty value", name);
		return (-1);
	}
	if (strchr(value, '/') != NULL || strcmp(value, ".") == 0
	    || strcmp(value, "..") == 0) {
		strbuf_setf(why, "parameter %s: bad service name \"%s\"",
			    name, value);
		return (-1);
	}
	return (0);
}

/* conf_check_maps - a list of tables that a daemon opens at start */
static int
conf_check_maps(const char *name, const char *value, struct strbuf *why)
{
	struct strbuf *item = strbuf_new(128, 0);
	struct strbuf *err = strbuf_new(128, 0);
	struct map *m;
	const char *p = value;
	int     ret;

	while ((ret = map_list_next(&p, item, err)) > 0) {
		if ((m = map_open(STRBUF_STR(item), err)) == NULL) {
			ret = -1;
			break;
		}
		map_close(m);
	}
	if (ret < 0)
		strbuf_setf(why, "parameter %s: %s", name, STRBUF_STR(err));
	strbuf_free(item);
	strbuf_free(err);
	return (ret < 0 ? -1 : 0);
}

/* conf_check_digest - a fingerprint digest OpenSSL has; 0 or -1 */
static int
conf_check_digest(const char *name, const char *value, struct strbuf *why)
{
	static const char *const digests[] = {
		"md5", "sha1", "sha224", "sha256", "sha384", "sha512",
		"sha3-256", "sha3-512",
	};
	size_t  i;

	for (i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
		if (strcasecmp(value, digests[i]) == 0)
			return (0);
	strbuf_setf(why, "parameter %s: unknown digest \"%s\" (use sha256, "
		    "sha1, md5, ...)", name, value);
	return (-1);
}

/* conf_check_tls_level - one of smtp-out's TLS levels (smtp_tls.c) */
static int
conf_check_tls_level(const char *name, const char *value, struct strbuf *why)
{
	static const char *const levels[] = {
		"none", "may", "encrypt", "dane", "dane-only", "fingerprint",
		"verify", "secure",
	};
	size_t  i;

	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcasecmp(value, levels[i]) == 0)
			return (0);
	strbuf_setf(why, "parameter %s: bad value \"%s\" (use none, may, "
		    "encrypt, dane, dane-only, fingerprint, verify or secure)",
		    name, value);
	return (-1);
}

/*
 * conf_check_string - the string parameters a daemon parses at start;
 * 0, or -1 with why and *warn set when it is only a warning
 */
static int
conf_check_string(const char *name, const char *value, struct strbuf *why,
		  int *warn)
{
	enum dns_prefer prefer;
	int     families;

	*warn = 0;
	if (strcmp(name, "inet_protocols") == 0) {
		if (dns_families_parse(value, &families) < 0) {
			strbuf_setf(why, "parameter %s: bad value \"%s\" (use "
				    "ipv4, ipv6 or all)", name, value);
			return (-1);
		}
	} else if (strcmp(name, "smtp_address_preference") == 0) {
		if (dns_prefer_parse(value, &prefer) < 0) {
			strbuf_setf(why, "parameter %s: bad value \"%s\" (use "
				    "any, ipv4 or ipv6)", name, value);
			return (-1);
		}
	} else if (strcmp(name, "cleanup_service_name") == 0
		   || strcmp(name, "qmgr_service_name") == 0) {
		return (conf_check_service_name(name, value, why));
	} else if (strcmp(name, "queue_directory") == 0) {
		if (*value != '/') {
			strbuf_setf(why, "parameter %s: must be an absolute "
				    "path: \"%s\"", name, value);
			return (-1);
		}
	} else if (strcmp(name, "mynetworks") == 0
		   || strcmp(name, "smtpd_client_connection_exceptions") == 0) {
		return (conf_check_list(name, value, 0, why, warn));
	} else if (strcmp(name, "relay_domains") == 0) {
		return (conf_check_list(name, value, 1, why, warn));
	} else if (strcmp(name, "transport_maps") == 0
		   || strcmp(name, "smtp_tls_policy_maps") == 0
		   || strcmp(name, "smtp_sasl_password_maps") == 0
		   || strcmp(name, "smtpd_sender_login_maps") == 0
		   || strcmp(name, "relay_clientcerts") == 0
		   || strcmp(name, "smtpd_sasl_xoauth2_token_maps") == 0) {
		return (conf_check_maps(name, value, why));
	} else if (strcmp(name, "smtp_tls_security_level") == 0) {
		return (conf_check_tls_level(name, value, why));
	} else if (strcmp(name, "smtpd_tls_security_level") == 0) {
		if (*value && strcasecmp(value, "none") != 0
		    && strcasecmp(value, "may") != 0
		    && strcasecmp(value, "encrypt") != 0) {
			strbuf_setf(why, "parameter %s: bad value \"%s\" (use "
				    "none, may or encrypt)", name, value);
			return (-1);
		}
	} else if (strcmp(name, "smtpd_tls_ciphers") == 0
		   || strcmp(name, "smtpd_tls_mandatory_ciphers") == 0) {
		if (strcasecmp(value, "high") != 0
		    && strcasecmp(value, "medium") != 0) {
			strbuf_setf(why, "parameter %s: bad value \"%s\" (use "
				    "high or medium)", name, value);
			return (-1);
		}
	} else if (strcmp(name, "smtpd_tls_fingerprint_digest") == 0) {
		return (conf_check_digest(name, value, why));
	} else if (strncmp(name, "smtpd_", 6) == 0
		   && strlen(name) > 13
		   && strcmp(name + strlen(name) - 13, "_restrictions") == 0) {
		return (rst_list_check(name, value, why));
	}
	return (0);
}

/*
 * conf_check_param - one value of one parameter, as the whole check would
 * see it (type, range, and the rules of the strings a daemon parses); 0,
 * or -1 with the reason in why. For "sendarix conf -e".
 */
int
conf_check_param(const struct conf_param *p, const char *value,
		 struct strbuf *why)
{
	int     warn;

	if (conf_check_value(p, value, why) < 0)
		return (-1);
	if (conf_check_string(p->name, value, why, &warn) < 0 && !warn)
		return (-1);
	return (0);
}

/*
 * conf_check_params - every parameter of the table, as set now; with
 * base, only those whose value differs from base[i]
 */
static void
conf_check_params(struct conf_check_state *st, const char *prefix,
		  const char **base)
{
	const struct conf_param *p;
	const char *value;
	size_t  i;
	int     warn;

	for (i = 0; i < conf_params_count; i++) {
		p = &conf_params[i];
		value = conf_get(p->name);
		if (value == NULL)
			value = "";
		if (base != NULL && strcmp(base[i], value) == 0)
			continue;
		if (conf_check_value(p, value, st->why) < 0) {
			conf_check_say(st, CONF_CHECK_ERROR, prefix,
				       st->why->data);
			continue;
		}
		if (conf_check_string(p->name, value, st->why, &warn) < 0)
			conf_check_say(st, warn ? CONF_CHECK_WARN :
				       CONF_CHECK_ERROR, prefix, st->why->data);
	}
}

/* conf_check_command - the program of a service must be executable */
static void
conf_check_command(struct conf_check_state *st, const char *prefix,
		   const struct mastercf_service *svc)
{
	const char *dir = conf_get("daemon_directory");
	struct stat sb;
	char   *path;
	size_t  len;

	if (svc->command[0] == '/') {
		path = xstrdup(svc->command);
	} else {
		len = strlen(dir) + strlen(svc->command) + 2;
		path = xmalloc(len);
		snprintf(path, len, "%s/%s", dir, svc->command);
	}
	if (stat(path, &sb) < 0) {
		/* Not ours to see (run as a user): smtpd reads it as root. */
		if (errno == EACCES)
			return;
		strbuf_setf(st->why, "command %s: %s: %s", svc->command, path,
			    strerror(errno));
		conf_check_say(st, CONF_CHECK_ERROR, prefix, st->why->data);
	} else if (!S_ISREG(sb.st_mode)) {
		strbuf_setf(st->why, "command %s: %s is not a regular file",
			    svc->command, path);
		conf_check_say(st, CONF_CHECK_ERROR, prefix, st->why->data);
	} else if (access(path, X_OK) < 0
		   || (sb.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
		strbuf_setf(st->why, "command %s: %s is not executable",
			    svc->command, path);
		conf_check_say(st, CONF_CHECK_ERROR, prefix, st->why->data);
	}
	free(path);
}

/* conf_check_has_unix - is there a private unix service of that name? */
static int
conf_check_has_unix(const struct mastercf *cf, const char *name)
{
	size_t  i;

	for (i = 0; i < cf->count; i++)
		if (strcmp(cf->svc[i].type, "unix") == 0
		    && cf->svc[i].private_
		    && strcmp(cf->svc[i].name, name) == 0)
			return (1);
	return (0);
}

/*
 * conf_check_tls_key - an smtpd key file: anyone may read it (error,
 * smtpd would not start) or it cannot be seen (warning)
 */
static void
conf_check_tls_key(struct conf_check_state *st, const char *prefix,
		   const char *name)
{
	const char *path = conf_get(name);
	struct stat sb;

	if (path == NULL || *path == 0)
		return;
	if (stat(path, &sb) < 0) {
		/* Not ours to see (run as a user): smtpd reads it as root. */
		if (errno == EACCES)
			return;
		strbuf_setf(st->why, "%s %s: %s; TLS will not be available",
			    name, path, strerror(errno));
		conf_check_say(st, CONF_CHECK_WARN, prefix, st->why->data);
	} else if (sb.st_mode & S_IROTH) {
		strbuf_setf(st->why, "%s %s is world-readable; smtpd refuses "
			    "it (chmod 600)", name, path);
		conf_check_say(st, CONF_CHECK_ERROR, prefix, st->why->data);
	}
}

/* conf_check_tls - smtpd asked for TLS: is there a certificate? */
static void
conf_check_tls(struct conf_check_state *st, const char *prefix)
{
	const char *level = conf_get("smtpd_tls_security_level");
	const char *cert = conf_get("smtpd_tls_cert_file");
	const char *eccert = conf_get("smtpd_tls_eccert_file");

	if ((level == NULL || *level == 0 || strcasecmp(level, "none") == 0)
	    && !conf_get_bool("smtpd_tls_wrappermode"))
		return;
	if ((cert == NULL || *cert == 0) && (eccert == NULL || *eccert == 0)) {
		strbuf_setf(st->why, "TLS is asked for, but smtpd_tls_cert_file "
			    "is empty: TLS will not be available");
		conf_check_say(st, CONF_CHECK_WARN, prefix, st->why->data);
		return;
	}
	if (cert && *cert)
		conf_check_tls_key(st, prefix, "smtpd_tls_key_file");
	if (eccert && *eccert)
		conf_check_tls_key(st, prefix, "smtpd_tls_eckey_file");
}

/* conf_check_service - one master.cf service, its overrides applied */
static void
conf_check_service(struct conf_check_state *st, const struct mastercf *cf,
		   const struct mastercf_service *svc, const char **base)
{
	struct strbuf *prefix = strbuf_new(128, 0);
	struct conf_saved *saved;
	const char *prog;
	const char *cleanup;
	size_t  i;
	char   *name;

	strbuf_setf(prefix, "master.cf line %d: service %s/%s: ",
		    svc->lineno, svc->name, svc->type);
	conf_check_command(st, prefix->data, svc);

	saved = conf_save();
	for (i = 0; i < svc->noverrides; i++) {
		strbuf_reset(st->why);
		if (conf_override(svc->overrides[i], st->why) < 0) {
			conf_check_say(st, CONF_CHECK_ERROR, prefix->data,
				       st->why->data);
			continue;
		}
		name = xstrndup(svc->overrides[i],
				strcspn(svc->overrides[i], "="));
		if (conf_param_find(name) == NULL) {
			strbuf_setf(st->why, "-o %s: unknown parameter %s",
				    svc->overrides[i], name);
			conf_check_say(st, CONF_CHECK_WARN, prefix->data,
				       st->why->data);
		}
		free(name);
	}
	if (svc->noverrides > 0)
		conf_check_params(st, prefix->data, base);

	/* smtpd without the cleanup it hands mail to accepts nothing. */
	prog = strrchr(svc->command, '/');
	prog = prog ? prog + 1 : svc->command;
	cleanup = conf_get("cleanup_service_name");
	if (strcmp(prog, "smtpd") == 0 && cleanup && *cleanup
	    && !conf_check_has_unix(cf, cleanup)) {
		strbuf_setf(st->why, "smtpd hands mail to private/%s, but "
			    "master.cf has no unix service %s", cleanup,
			    cleanup);
		conf_check_say(st, CONF_CHECK_WARN, prefix->data,
			       st->why->data);
	}
	if (strcmp(prog, "smtpd") == 0)
		conf_check_tls(st, prefix->data);
	conf_restore(saved);
	strbuf_free(prefix);
}

/* conf_check_owner - mail_owner, when the check runs as root */
static int
conf_check_owner(struct conf_check_state *st, uid_t *uid)
{
	const char *owner = conf_get("mail_owner");
	gid_t   gid;

	if (geteuid() != 0)
		return (-1);
	strbuf_reset(st->why);
	if (privs_lookup(owner, uid, &gid, st->why) < 0) {
		conf_check_say(st, CONF_CHECK_ERROR, "mail_owner: ",
			       st->why->data);
		return (-1);
	}
	if (*uid == 0) {
		strbuf_setf(st->why, "mail_owner %s must not be root", owner);
		conf_check_say(st, CONF_CHECK_ERROR, NULL, st->why->data);
		return (-1);
	}
	return (0);
}

/* conf_check_queue - queue_directory exists or can be made; its folders */
static void
conf_check_queue(struct conf_check_state *st, int have_owner, uid_t owner)
{
	const char *qdir = conf_get("queue_directory");
	struct strbuf *path = strbuf_new(256, 0);
	struct stat sb;
	char   *parent;
	char   *slash;
	size_t  i;

	if (qdir == NULL || *qdir != '/')
		goto out;			/* reported with the parameters */
	if (stat(qdir, &sb) < 0) {
		if (errno != ENOENT) {
			strbuf_setf(st->why, "queue_directory %s: %s", qdir,
				    strerror(errno));
			conf_check_say(st, CONF_CHECK_ERROR, NULL,
				       st->why->data);
			goto out;
		}
		/* master makes the last component only. */
		parent = xstrdup(qdir);
		slash = strrchr(parent, '/');
		while (slash != NULL && slash > parent && slash[1] == 0) {
			*slash = 0;
			slash = strrchr(parent, '/');
		}
		if (slash == parent)
			slash[1] = 0;
		else if (slash != NULL)
			*slash = 0;
		if (stat(parent, &sb) < 0)
			strbuf_sets(st->why, strerror(errno));
		else if (!S_ISDIR(sb.st_mode))
			strbuf_sets(st->why, "not a folder");
		else if (access(parent, W_OK | X_OK) < 0)
			strbuf_sets(st->why, strerror(errno));
		else
			strbuf_reset(st->why);
		if (st->why->len > 0) {
			strbuf_setf(st->msg, "queue_directory %s does not "
				    "exist and cannot be created: %s: ", qdir,
				    parent);
			strbuf_appends(st->msg, st->why->data);
			strbuf_sets(st->why, st->msg->data);
			conf_check_say(st, CONF_CHECK_ERROR, NULL,
				       st->why->data);
		}
		free(parent);
		goto out;
	}
	if (!S_ISDIR(sb.st_mode)) {
		strbuf_setf(st->why, "queue_directory %s is not a folder", qdir);
		conf_check_say(st, CONF_CHECK_ERROR, NULL, st->why->data);
		goto out;
	}
	for (i = 0; i < qfile_dirs_count; i++) {
		strbuf_setf(path, "%s/%s", qdir, qfile_dirs[i].name);
		if (stat(path->data, &sb) < 0) {
			if (errno == ENOENT)
				continue;	/* master makes it */
			strbuf_setf(st->why, "%s: %s", path->data,
				    strerror(errno));
			conf_check_say(st, CONF_CHECK_ERROR, NULL,
				       st->why->data);
			continue;
		}
		if (!S_ISDIR(sb.st_mode)) {
			strbuf_setf(st->why, "%s exists and is not a folder",
				    path->data);
			conf_check_say(st, CONF_CHECK_ERROR, NULL,
				       st->why->data);
			continue;
		}
		if ((sb.st_mode & 07777) != qfile_dirs[i].mode) {
			strbuf_setf(st->why, "folder %s has mode %04o, "
				    "expected %04o", path->data,
				    (unsigned) (sb.st_mode & 07777),
				    (unsigned) qfile_dirs[i].mode);
			conf_check_say(st, CONF_CHECK_WARN, NULL,
				       st->why->data);
		}
		if (have_owner && qfile_dirs[i].owned
		    && sb.st_uid != owner) {
			strbuf_setf(st->why, "folder %s belongs to uid %ld, "
				    "not to mail_owner %s (uid %ld)",
				    path->data, (long) sb.st_uid,
				    conf_get("mail_owner"), (long) owner);
			conf_check_say(st, CONF_CHECK_WARN, NULL,
				       st->why->data);
		}
	}
out:
	strbuf_free(path);
}

/* conf_check - check the loaded configuration; the number of errors */
int
conf_check(const struct mastercf *cf, int flags, conf_check_fn report,
	   void *ctx)
{
	struct conf_check_state st;
	const char **base;
	uid_t   owner = 0;
	int     have_owner;
	size_t  i;

	st.report = report;
	st.ctx = ctx;
	st.errors = 0;
	st.msg = strbuf_new(256, 0);
	st.why = strbuf_new(256, 0);

	conf_check_params(&st, NULL, NULL);
	have_owner = conf_check_owner(&st, &owner) == 0;

	/* The values of main.cf, to report a service's own only. */
	base = xcalloc(conf_params_count + 1, sizeof(*base));
	for (i = 0; i < conf_params_count; i++) {
		base[i] = conf_get(conf_params[i].name);
		if (base[i] == NULL)
			base[i] = "";
	}
	for (i = 0; cf != NULL && i < cf->count; i++)
		conf_check_service(&st, cf, &cf->svc[i], base);
	free(base);

	if (flags & CONF_CHECK_QUEUE)
		conf_check_queue(&st, have_owner, owner);

	strbuf_free(st.msg);
	strbuf_free(st.why);
	return (st.errors);
}
