/*
 * smtp_tls - outbound TLS policy: levels, the policy table, STARTTLS
 *	set-up and the check of the server's certificate
 *
 * SYNOPSIS
 *	#include "smtp-out.h"
 *
 *	void	smtp_tls_pre_init(void)
 *	void	smtp_tls_shutdown(void)
 *	int	smtp_tls_level_parse(const char *name)
 *	const char *smtp_tls_level_name(int level)
 *	int	smtp_tls_policy_parse(const char *text,
 *			struct smtp_tls_policy *pol, struct strbuf *err)
 *	void	smtp_tls_policy_init(struct smtp_tls_policy *pol)
 *	void	smtp_tls_policy_free(struct smtp_tls_policy *pol)
 *	void	smtp_tls_policy_copy(struct smtp_tls_policy *dst,
 *			const struct smtp_tls_policy *src)
 *	int	smtp_tls_policy_lookup(const struct smtp_dest *d,
 *			struct smtp_tls_policy *pol, struct strbuf *err)
 *	void	smtp_tls_policy_raise(struct smtp_tls_policy *pol, int level,
 *			const char *match, const char *source)
 *	int	smtp_tls_policy_dest(struct smtp_req *req,
 *			const struct smtp_dest *d, struct strbuf *err)
 *	int	smtp_tls_policy_host(struct smtp_req *req, const char *host,
 *			struct smtp_tls_policy *pol, struct strbuf *why)
 *	char	*smtp_tls_cache_key(const char *nexthop,
 *			const struct smtp_tls_policy *pol)
 *	int	smtp_tls_start(struct smtp_sess *sess, struct strbuf *why)
 *	int	smtp_tls_check(struct smtp_sess *sess, struct strbuf *why)
 *	void	smtp_tls_failed(struct smtp_sess *sess)
 *	void	smtp_tls_outcome(struct smtp_sess *sess, const char *type,
 *			const char *detail)
 *
 * DESCRIPTION
 *	smtp_tls_pre_init() checks the settings, loads the trust anchors
 *	(smtp_tls_CAfile, smtp_tls_CApath) and opens smtp_tls_policy_maps,
 *	while smtp-out is still privileged. A bad level, protocol list,
 *	trust anchor file or table name is fatal. Without smtp_tls_CAfile
 *	and smtp_tls_CApath (the system's default store, readable by all)
 *	and without a chroot, the OpenSSL context is made at the first
 *	STARTTLS instead: it costs about 3 MB (the default store is parsed
 *	in full, and OpenSSL's set-up touches most of libcrypto), which a
 *	process that never starts TLS does not need. smtp_tls_shutdown()
 *	forgets the cached TLS sessions.
 *
 *	Levels: none (never STARTTLS), may (STARTTLS when offered; clear
 *	text when not, or once more after a failed handshake), encrypt
 *	(TLS required, any certificate), dane and dane-only (RFC 7672,
 *	per host: smtp_dane.c), fingerprint (the certificate
 *	or its public key must match a pin), verify (chain and host name),
 *	secure (chain and the names of smtp_tls_secure_cert_match).
 *	smtp_tls_level_parse() gives SMTP_TLS_* for a name (-1 unknown),
 *	smtp_tls_level_name() the reverse.
 *
 *	smtp_tls_policy_parse() reads a policy table value, Postfix's
 *	syntax: a level, then attributes match=, protocols=, ciphers=,
 *	servername= ("verify match=hostname:nexthop", "fingerprint
 *	match=AB:CD:..|EF:..."). -1 with a reason in "err".
 *
 *	smtp_tls_policy_lookup() is the policy of one next-hop element:
 *	smtp_tls_security_level, or the smtp_tls_policy_maps entry found
 *	first under the element as written ("[mx.example.com]:25",
 *	"example.com"), "[host]:port" and "[host]" for a host element, or
 *	the domain and then its parents as ".parent" for an MX element.
 *	-1 with a reason when the table fails or the entry is bad.
 *
 *	The seams for MTA-STS and DANE: smtp_tls_policy_dest() sets the
 *	request's policy for a destination before its DNS lookup (the
 *	table, then a lookup that may raise it with
 *	smtp_tls_policy_raise(), which never lowers a level); it defers
 *	the destination (the request's soft failure, -1) when the policy
 *	cannot be had or the level is not supported. smtp_tls_policy_host()
 *	is asked for each host before a connection to it: it copies the
 *	request's policy to "pol" and may raise it or refuse the host (-1
 *	with a reason), as an MTA-STS "enforce" policy does for an MX host
 *	outside its list.
 *
 *	smtp_tls_cache_key() is the connection cache key: the next hop and
 *	everything the policy requires, so that a connection made for one
 *	policy never serves a delivery that requires another (a clear-text
 *	connection never serves a delivery that requires TLS).
 *
 *	smtp_tls_start() starts the handshake after "220" to STARTTLS: an
 *	SSL with SNI (smtp_tls_servername), the protocol range and ciphers
 *	of the level, and the names to verify, pushed under the stream.
 *	It offers the session of the last handshake with the same
 *	session key (smtp_tls_session_cache_timeout; tls_client.c keeps
 *	them): the connection cache key, which holds the next hop and the
 *	whole policy, level and SNI included, plus the server's name,
 *	address and port. So a session is resumed only for the server
 *	and the policy its certificate was judged for, and the results
 *	of that judgement come with it. DANE sessions are not kept: the
 *	TLSA match is not repeated on resumption.
 *	smtp_tls_check(), once the handshake is done, logs the connection
 *	("Verified TLS connection established to HOST[ADDR]:PORT: TLSv1.3
 *	with cipher ..."; "Verified TLS connection reused to ..." with
 *	"(resumed)" at the end when a session was resumed, as Postfix)
 *	and applies the level; -1 with the deferral reason when the
 *	certificate does not satisfy it. smtp_tls_failed() is told of a
 *	failed handshake: the offered session, if any, is forgotten.
 *
 *	smtp_tls_outcome() is told the result of every connection whose
 *	policy asked for TLS: "type" is NULL for a session that met it, or
 *	an RFC 8460 result type ("starttls-not-supported",
 *	"certificate-host-mismatch", "certificate-expired",
 *	"certificate-not-trusted", "validation-failure"). It logs at
 *	smtp_tls_loglevel 2 and hands the outcome to smtp_sts_tls_outcome()
 *	for TLS-RPT (the MTA-STS or DANE policy of the session, if any).
 *
 * SEE ALSO
 *	tls_client.c, Postfix TLS_README, RFC 3207
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "log.h"
#include "map.h"
#include "server.h"
#include "strbuf.h"
#include "tls.h"
#include "tls_client.h"
#include "tls_dane.h"
#include "xmalloc.h"

#include "smtp-out.h"

static SSL_CTX *smtp_tls_ctx;
static struct map *smtp_tls_policy_map;
static int smtp_tls_default_level;

static const char *const smtp_tls_levels[] = {
	"none", "may", "encrypt", "dane", "dane-only", "fingerprint",
	"verify", "secure",
};

#define SMTP_TLS_NLEVELS (sizeof(smtp_tls_levels) / sizeof(smtp_tls_levels[0]))
#define SMTP_TLS_SEP	" \t\r\n,"

/* smtp_tls_level_parse - a level name */
int
smtp_tls_level_parse(const char *name)
{
	size_t  i;

	for (i = 0; name && i < SMTP_TLS_NLEVELS; i++)
		if (strcasecmp(name, smtp_tls_levels[i]) == 0)
			return ((int) i);
	return (-1);
}

/* smtp_tls_level_name - and back */
const char *
smtp_tls_level_name(int level)
{
	if (level < 0 || (size_t) level >= SMTP_TLS_NLEVELS)
		return ("unknown");
	return (smtp_tls_levels[level]);
}

/* smtp_tls_cipherlist - an OpenSSL cipher string for a Postfix grade */
static const char *
smtp_tls_cipherlist(const char *grade)
{
	if (grade == NULL || *grade == 0)
		return (NULL);
	if (strcasecmp(grade, "high") == 0)
		return ("HIGH:!aNULL:@STRENGTH");
	if (strcasecmp(grade, "medium") == 0 || strcasecmp(grade, "low") == 0
	    || strcasecmp(grade, "export") == 0)
		return ("HIGH:MEDIUM:!aNULL:@STRENGTH");
	return (NULL);
}

/*
 * smtp_tls_digest_known - a digest every OpenSSL has. Asking OpenSSL
 * about a name sets up its digest tables (about 600 kB); a process that
 * never starts TLS need not pay that for the default name.
 */
static int
smtp_tls_digest_known(const char *name)
{
	static const char *const known[] = {
		"md5", "sha1", "sha224", "sha256", "sha384", "sha512",
	};
	size_t  i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcasecmp(name, known[i]) == 0)
			return (1);
	return (0);
}

/* smtp_tls_ctx_make - the client context; NULL with a reason in "buf" */
static SSL_CTX *
smtp_tls_ctx_make(char *buf, size_t len)
{
	SSL_CTX *ctx;

	tls_init();
	ctx = tls_client_ctx_new(smtp_var.tls_CAfile, smtp_var.tls_CApath,
				 buf, len);
	if (ctx == NULL)
		return (NULL);
	if (tls_dane_ctx_enable(ctx) < 0) {
		snprintf(buf, len, "cannot enable DANE: %s", tls_errors());
		SSL_CTX_free(ctx);
		return (NULL);
	}
	tls_client_cache_init(ctx, smtp_var.tls_sess_timeout);
	return (ctx);
}

/* smtp_tls_pre_init - settings, trust anchors, the policy table */
void
smtp_tls_pre_init(void)
{
	struct strbuf *err = strbuf_new(128, 0);
	char    buf[512];
	int     min;
	int     max;

	smtp_tls_default_level = smtp_tls_level_parse(smtp_var.tls_level);
	if (smtp_tls_default_level < 0)
		log_fatal("bad smtp_tls_security_level value \"%s\"",
			  smtp_var.tls_level);
	if (tls_protocols_parse(smtp_var.tls_protocols, &min, &max) < 0)
		log_fatal("bad smtp_tls_protocols value \"%s\"",
			  smtp_var.tls_protocols);
	if (tls_protocols_parse(smtp_var.tls_mand_protocols, &min, &max) < 0)
		log_fatal("bad smtp_tls_mandatory_protocols value \"%s\"",
			  smtp_var.tls_mand_protocols);
	if (smtp_tls_cipherlist(smtp_var.tls_ciphers) == NULL)
		log_fatal("bad smtp_tls_ciphers value \"%s\"",
			  smtp_var.tls_ciphers);
	if (smtp_tls_cipherlist(smtp_var.tls_mand_ciphers) == NULL)
		log_fatal("bad smtp_tls_mandatory_ciphers value \"%s\"",
			  smtp_var.tls_mand_ciphers);
	if (!smtp_tls_digest_known(smtp_var.tls_fpt_digest)
	    && EVP_get_digestbyname(smtp_var.tls_fpt_digest) == NULL) {
		tls_init();
		if (EVP_get_digestbyname(smtp_var.tls_fpt_digest) == NULL)
			log_fatal("bad smtp_tls_fingerprint_digest value \"%s\"",
				  smtp_var.tls_fpt_digest);
	}
	/*
	 * Files that may be root's, or a store outside a chroot: now. The
	 * default store, readable by all: when needed.
	 */
	if ((*smtp_var.tls_CAfile || *smtp_var.tls_CApath || server_chrooted())
	    && (smtp_tls_ctx = smtp_tls_ctx_make(buf, sizeof(buf))) == NULL)
		log_fatal("smtp_tls_CAfile/smtp_tls_CApath: %s", buf);
	if (*smtp_var.tls_policy_maps) {
		smtp_tls_policy_map = map_open(smtp_var.tls_policy_maps, err);
		if (smtp_tls_policy_map == NULL)
			log_fatal("smtp_tls_policy_maps: %s", err->data);
	}
	strbuf_free(err);
}

/* smtp_tls_shutdown - forget the cached sessions */
void
smtp_tls_shutdown(void)
{
	tls_client_cache_flush();
}

/* smtp_tls_policy_init - an empty policy */
void
smtp_tls_policy_init(struct smtp_tls_policy *pol)
{
	memset(pol, 0, sizeof(*pol));
}

/* smtp_tls_policy_free - its strings */
void
smtp_tls_policy_free(struct smtp_tls_policy *pol)
{
	xfree(pol->match);
	xfree(pol->protocols);
	xfree(pol->ciphers);
	xfree(pol->servername);
	xfree(pol->source);
	smtp_tls_policy_init(pol);
}

/* smtp_tls_strdup - a copy of a string or NULL */
static char *
smtp_tls_strdup(const char *s)
{
	return (s ? xstrdup(s) : NULL);
}

/* smtp_tls_policy_copy - a deep copy */
void
smtp_tls_policy_copy(struct smtp_tls_policy *dst,
		     const struct smtp_tls_policy *src)
{
	smtp_tls_policy_free(dst);
	dst->level = src->level;
	dst->match = smtp_tls_strdup(src->match);
	dst->protocols = smtp_tls_strdup(src->protocols);
	dst->ciphers = smtp_tls_strdup(src->ciphers);
	dst->servername = smtp_tls_strdup(src->servername);
	dst->source = smtp_tls_strdup(src->source);
}

/* smtp_tls_policy_raise - a stronger requirement; never a weaker one */
void
smtp_tls_policy_raise(struct smtp_tls_policy *pol, int level,
		      const char *match, const char *source)
{
	if (level < pol->level)
		return;
	if (level == pol->level && (match == NULL || pol->match))
		return;
	pol->level = level;
	xfree(pol->match);
	pol->match = smtp_tls_strdup(match);
	xfree(pol->source);
	pol->source = smtp_tls_strdup(source);
}

/* smtp_tls_policy_attr - one name=value of a table entry */
static int
smtp_tls_policy_attr(const char *w, size_t len, struct smtp_tls_policy *pol,
		     struct strbuf *err)
{
	static const char *const names[] = {
		"match", "protocols", "ciphers", "servername",
	};
	const char *eq = memchr(w, '=', len);
	char   *val;
	char  **slot[4];
	size_t  nlen;
	size_t  i;
	int     min;
	int     max;

	slot[0] = &pol->match;
	slot[1] = &pol->protocols;
	slot[2] = &pol->ciphers;
	slot[3] = &pol->servername;
	if (eq == NULL || eq == w || eq + 1 == w + len) {
		strbuf_setf(err, "bad attribute \"%.*s\": not name=value",
			    (int) len, w);
		return (-1);
	}
	nlen = (size_t) (eq - w);
	for (i = 0; i < 4; i++)
		if (strlen(names[i]) == nlen && strncasecmp(w, names[i], nlen)
		    == 0)
			break;
	if (i == 4) {
		strbuf_setf(err, "unknown attribute \"%.*s\"", (int) nlen, w);
		return (-1);
	}
	val = xstrndup(eq + 1, (size_t) (w + len - eq - 1));
	if ((i == 1 && tls_protocols_parse(val, &min, &max) < 0)
	    || (i == 2 && smtp_tls_cipherlist(val) == NULL)) {
		strbuf_setf(err, "bad %s value \"%s\"", names[i], val);
		xfree(val);
		return (-1);
	}
	xfree(*slot[i]);
	*slot[i] = val;
	return (0);
}

/* smtp_tls_policy_parse - "level name=value ..." */
int
smtp_tls_policy_parse(const char *text, struct smtp_tls_policy *pol,
		      struct strbuf *err)
{
	const char *p = text;
	char   *word;
	size_t  len;
	int     level;

	p += strspn(p, " \t");
	len = strcspn(p, " \t");
	word = xstrndup(p, len);
	level = smtp_tls_level_parse(word);
	if (level < 0) {
		strbuf_setf(err, "unknown TLS security level \"%s\"", word);
		xfree(word);
		return (-1);
	}
	xfree(word);
	pol->level = level;
	for (p += len;;) {
		p += strspn(p, " \t");
		if (*p == 0)
			break;
		len = strcspn(p, " \t");
		if (smtp_tls_policy_attr(p, len, pol, err) < 0)
			return (-1);
		p += len;
	}
	return (0);
}

/* smtp_tls_policy_try - one table key */
static int
smtp_tls_policy_try(const char *key, struct smtp_tls_policy *pol,
		    struct strbuf *err)
{
	const char *val;
	int     ret;

	ret = map_lookup(smtp_tls_policy_map, key, &val);
	if (ret == MAP_NOTFOUND)
		return (0);
	if (ret == MAP_RETRY) {
		strbuf_setf(err, "TLS policy lookup for %s: table %s is not "
			    "available", key, map_spec(smtp_tls_policy_map));
		return (-1);
	}
	smtp_tls_policy_free(pol);
	if (smtp_tls_policy_parse(val, pol, err) < 0) {
		struct strbuf *why = strbuf_new(128, 0);

		strbuf_printf(why, "TLS policy lookup for %s: %s: %s", key,
			      map_spec(smtp_tls_policy_map), err->data);
		strbuf_sets(err, why->data);
		strbuf_free(why);
		log_warn("%s", err->data);
		return (-1);
	}
	pol->source = xstrdup("smtp_tls_policy_maps");
	return (1);
}

/* smtp_tls_policy_lookup - the policy of one next-hop element */
int
smtp_tls_policy_lookup(const struct smtp_dest *d, struct smtp_tls_policy *pol,
		       struct strbuf *err)
{
	struct strbuf *key;
	const char *dot;
	int     ret;

	smtp_tls_policy_free(pol);
	pol->level = smtp_tls_default_level;
	pol->source = xstrdup("smtp_tls_security_level");
	if (smtp_tls_policy_map == NULL)
		return (0);
	if ((ret = smtp_tls_policy_try(d->text, pol, err)) != 0)
		return (ret < 0 ? -1 : 0);
	key = strbuf_new(128, 0);
	if (!d->mx) {
		strbuf_setf(key, "[%s]:%u", d->host, d->port);
		if ((ret = smtp_tls_policy_try(key->data, pol, err)) == 0) {
			strbuf_setf(key, "[%s]", d->host);
			ret = smtp_tls_policy_try(key->data, pol, err);
		}
	} else {
		ret = smtp_tls_policy_try(d->host, pol, err);
		for (dot = strchr(d->host, '.'); ret == 0 && dot;
		     dot = strchr(dot + 1, '.'))
			ret = smtp_tls_policy_try(dot, pol, err);
	}
	strbuf_free(key);
	if (ret == 0) {
		/* Nothing found: the default, not what a failed parse left. */
		smtp_tls_policy_free(pol);
		pol->level = smtp_tls_default_level;
		pol->source = xstrdup("smtp_tls_security_level");
	}
	return (ret < 0 ? -1 : 0);
}

/* smtp_tls_policy_dest - the policy for a destination, or defer it */
int
smtp_tls_policy_dest(struct smtp_req *req, const struct smtp_dest *d,
		     struct strbuf *err)
{
	if (smtp_tls_policy_lookup(d, &req->tls, err) < 0) {
		smtp_fail_set(&req->temp, "4.3.0", NULL, err->data);
		return (-1);
	}

	/*
	 * MTA-STS (smtp_sts.c) raises the policy of each host of an MX
	 * destination in smtp_tls_policy_host(); DANE (smtp_dane.c) looks
	 * up TLSA records per host before connecting and sets its level.
	 */
	smtp_dane_free(req);
	return (0);
}

/* smtp_tls_policy_host - the policy for one host of the destination */
int
smtp_tls_policy_host(struct smtp_req *req, const char *host,
		     struct smtp_tls_policy *pol, struct strbuf *why)
{
	smtp_tls_policy_copy(pol, &req->tls);
	/* DANE: the level the TLSA records give this host. */
	if (smtp_dane_policy_host(req, host, pol, why) < 0)
		return (-1);
	/* MTA-STS "enforce": a host in the policy, with verified TLS. */
	return (smtp_sts_policy_host(req, host, pol, why));
}

/* smtp_tls_cache_key - the next hop and what the policy requires */
char   *
smtp_tls_cache_key(const char *nexthop, const struct smtp_tls_policy *pol)
{
	struct strbuf *sb = strbuf_new(128, 0);
	char   *s;

	strbuf_printf(sb, "%s\t%s\t%s\t%s\t%s\t%s", nexthop,
		      smtp_tls_level_name(pol->level),
		      pol->match ? pol->match : "",
		      pol->protocols ? pol->protocols : "",
		      pol->ciphers ? pol->ciphers : "",
		      pol->servername ? pol->servername : "");
	s = strbuf_steal(sb, NULL);
	strbuf_free(sb);
	return (s);
}

/* smtp_tls_name - one match keyword as a name */
static char *
smtp_tls_name(const struct smtp_sess *sess, const char *w, size_t len)
{
	if (len == 8 && strncasecmp(w, "hostname", len) == 0)
		return (xstrdup(sess->host));
	if (len == 7 && strncasecmp(w, "nexthop", len) == 0)
		return (xstrdup(sess->dest_host));
	if (len == 11 && strncasecmp(w, "dot-nexthop", len) == 0) {
		struct strbuf *sb;

		/* An address has no subdomains. */
		if (strchr(sess->dest_host, ':')
		    || strspn(sess->dest_host, "0123456789.")
		    == strlen(sess->dest_host))
			return (xstrdup(""));
		sb = strbuf_new(64, 0);
		char   *s;

		strbuf_printf(sb, ".%s", sess->dest_host);
		s = strbuf_steal(sb, NULL);
		strbuf_free(sb);
		return (s);
	}
	return (xstrndup(w, len));
}

/* smtp_tls_names - the names a verify or secure level checks */
static size_t
smtp_tls_names(const struct smtp_sess *sess, char **names, size_t max)
{
	const char *list;
	const char *sep;
	size_t  n = 0;
	size_t  len;

	if (sess->tls.level == SMTP_TLS_VERIFY) {
		list = sess->tls.match ? sess->tls.match :
			smtp_var.tls_verify_match;
	} else if (sess->tls.level == SMTP_TLS_SECURE) {
		list = sess->tls.match ? sess->tls.match :
			smtp_var.tls_secure_match;
	} else {
		return (0);
	}
	/* The table separates with ":", main.cf with blanks or commas. */
	sep = sess->tls.match ? ":" SMTP_TLS_SEP : SMTP_TLS_SEP;
	while (n < max) {
		list += strspn(list, sep);
		if (*list == 0)
			break;
		len = strcspn(list, sep);
		names[n++] = smtp_tls_name(sess, list, len);
		list += len;
	}
	return (n);
}

/* smtp_tls_sni - the name sent as SNI; NULL none */
static const char *
smtp_tls_sni(const struct smtp_sess *sess)
{
	const char *v = sess->tls.servername ? sess->tls.servername :
	smtp_var.tls_servername;

	if (v == NULL || *v == 0)
		return (NULL);
	if (strcasecmp(v, "hostname") == 0)
		return (strcmp(sess->host, sess->addr) == 0 ? NULL : sess->host);
	if (strcasecmp(v, "nexthop") == 0)
		return (sess->dest_host);
	return (v);
}

/* smtp_tls_resume - name the session key; offer a cached session */
static void
smtp_tls_resume(struct smtp_sess *sess, SSL *ssl)
{
	struct strbuf *sb = strbuf_new(256, 0);

	/* The policy (sess->key) and the server it was applied to. */
	strbuf_printf(sb, "%s\t%s\t%s\t%u", sess->key, sess->host, sess->addr,
		      sess->port);
	if (tls_client_cache_use(ssl, sb->data) && smtp_var.tls_loglevel >= 2)
		log_info("%s: offering a cached TLS session", sess->relay);
	strbuf_free(sb);
}

/* smtp_tls_failed - a failed handshake: forget its session */
void
smtp_tls_failed(struct smtp_sess *sess)
{
	SSL    *ssl = sess->stream ? tls_stream_ssl(sess->stream) : NULL;

	if (ssl)
		tls_client_cache_drop(ssl);
}

/* smtp_tls_start - the handshake, after "220" to STARTTLS */
int
smtp_tls_start(struct smtp_sess *sess, struct strbuf *why)
{
	char   *names[8];
	char    err[256];
	size_t  n;
	size_t  i;
	int     mand = sess->tls.level >= SMTP_TLS_ENCRYPT;
	const char *protocols;
	const char *grade;
	SSL    *ssl;

	protocols = sess->tls.protocols ? sess->tls.protocols : mand ?
		smtp_var.tls_mand_protocols : smtp_var.tls_protocols;
	grade = sess->tls.ciphers ? sess->tls.ciphers : mand ?
		smtp_var.tls_mand_ciphers : smtp_var.tls_ciphers;
	if (smtp_tls_ctx == NULL
	    && (smtp_tls_ctx = smtp_tls_ctx_make(err, sizeof(err))) == NULL) {
		strbuf_setf(why, "Cannot start TLS: %s", err);
		return (-1);
	}
	n = smtp_tls_names(sess, names, sizeof(names) / sizeof(names[0]));
	ssl = tls_client_ssl_new(smtp_tls_ctx, smtp_tls_sni(sess), protocols,
				 smtp_tls_cipherlist(grade),
				 (const char *const *) names, n, err,
				 sizeof(err));
	for (i = 0; i < n; i++)
		xfree(names[i]);
	if (ssl == NULL) {
		strbuf_setf(why, "Cannot start TLS: %s", err);
		return (-1);
	}
	if (smtp_dane_ssl(sess, ssl, why) < 0) {
		SSL_free(ssl);
		return (-1);
	}
	if (!sess->dane)
		smtp_tls_resume(sess, ssl);
	if (tls_stream_start(sess->stream, ssl, STREAM_TLS_CLIENT) < 0) {
		strbuf_setf(why, "Cannot start TLS: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

/* smtp_tls_check - log the connection and apply the level */
int
smtp_tls_check(struct smtp_sess *sess, struct strbuf *why)
{
	SSL    *ssl = tls_stream_ssl(sess->stream);
	char    desc[256];
	char    fp[EVP_MAX_MD_SIZE * 3 + 1];
	struct strbuf *sb;
	const char *pins;
	int     pinned = 0;
	int     dane_ok = 0;

	if (ssl == NULL) {
		strbuf_sets(why, "Cannot start TLS: no TLS state");
		return (-1);
	}
	sess->tls_on = 1;
	sess->tls_trust = tls_client_trust(ssl);
	if (sess->tls.level == SMTP_TLS_FINGERPRINT) {
		pins = sess->tls.match ? sess->tls.match :
			smtp_var.tls_fpt_match;
		pinned = tls_client_pin_match(ssl, smtp_var.tls_fpt_digest,
					      pins);
		sess->tls_trust = pinned ? TLS_TRUST_VERIFIED :
			sess->tls_trust == TLS_TRUST_ANONYMOUS ?
			TLS_TRUST_ANONYMOUS : TLS_TRUST_UNTRUSTED;
	} else if (sess->tls.level == SMTP_TLS_DANE) {
		/* RFC 7672: only the TLSA records authenticate the server. */
		dane_ok = smtp_dane_check(sess, why) == 0;
		sess->tls_trust = dane_ok ? TLS_TRUST_VERIFIED :
			sess->tls_trust == TLS_TRUST_ANONYMOUS ?
			TLS_TRUST_ANONYMOUS : TLS_TRUST_UNTRUSTED;
	} else if (sess->tls.level < SMTP_TLS_FINGERPRINT
		   && sess->tls_trust == TLS_TRUST_VERIFIED) {
		sess->tls_trust = TLS_TRUST_TRUSTED;
	}
	tls_describe(ssl, desc, sizeof(desc));
	xfree(sess->tls_info);
	sess->tls_info = xstrdup(desc);
	sb = strbuf_new(128, 0);
	strbuf_printf(sb, "%s:%s:%s", SSL_get_version(ssl),
		      SSL_get_cipher_name(ssl),
		      tls_client_trust_name(sess->tls_trust));
	xfree(sess->tls_field);
	sess->tls_field = strbuf_steal(sb, NULL);
	strbuf_free(sb);
	if (smtp_var.tls_loglevel >= 1)
		log_info("%s TLS connection %s to %s: %s%s",
			 tls_client_trust_name(sess->tls_trust),
			 tls_client_resumed(ssl) ? "reused" : "established",
			 sess->relay, desc,
			 tls_client_resumed(ssl) ? " (resumed)" : "");
	if (smtp_var.tls_loglevel >= 2) {
		if (tls_client_fingerprint(ssl, smtp_var.tls_fpt_digest,
					   TLS_FPT_CERT, fp, sizeof(fp)) == 0)
			log_info("%s: certificate %s fingerprint %s",
				 sess->relay, smtp_var.tls_fpt_digest, fp);
		if (tls_client_fingerprint(ssl, smtp_var.tls_fpt_digest,
					   TLS_FPT_PKEY, fp, sizeof(fp)) == 0)
			log_info("%s: public key %s fingerprint %s",
				 sess->relay, smtp_var.tls_fpt_digest, fp);
	}

	switch (sess->tls.level) {
	case SMTP_TLS_FINGERPRINT:
		if (!pinned) {
			log_info("%s: server certificate fingerprint does not "
				 "match %s", sess->relay, sess->tls.source);
			strbuf_sets(why, "Server certificate fingerprint "
				    "mismatch");
			smtp_tls_outcome(sess, "validation-failure", why->data);
			return (-1);
		}
		break;
	case SMTP_TLS_VERIFY:
	case SMTP_TLS_SECURE:
		if (sess->tls_trust != TLS_TRUST_VERIFIED) {
			const char *detail = tls_client_verify_error(ssl);
			int     err = tls_client_chain_error(ssl);

			log_info("%s: server certificate not verified: %s",
				 sess->relay, detail);
			strbuf_sets(why, "Server certificate not verified");
			smtp_tls_outcome(sess, err == 0 ?
					 "certificate-host-mismatch" :
					 err == X509_V_ERR_CERT_HAS_EXPIRED ?
					 "certificate-expired" :
					 "certificate-not-trusted", detail);
			return (-1);
		}
		break;
	case SMTP_TLS_DANE:
		if (!dane_ok) {
			smtp_tls_outcome(sess, "validation-failure", why->data);
			return (-1);
		}
		break;
	default:
		break;
	}
	smtp_tls_outcome(sess, NULL, desc);
	return (0);
}

/* smtp_tls_outcome - a session's TLS result (TLS-RPT seam) */
void
smtp_tls_outcome(struct smtp_sess *sess, const char *type,
		 const char *detail)
{
	/* TLS-RPT (RFC 8460) for the MTA-STS or DANE policy, if any. */
	smtp_sts_tls_outcome(sess, type, detail);
	if (smtp_var.tls_loglevel >= 2)
		log_info("%s: TLS policy %s (%s): %s%s%s", sess->relay,
			 smtp_tls_level_name(sess->tls.level),
			 sess->tls.source ? sess->tls.source : "default",
			 type ? type : "success", detail && *detail ? ": " : "",
			 detail ? detail : "");
}
