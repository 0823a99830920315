/*
 * tls_client - client-side TLS: the context, one SSL per connection, and
 *	the trust in the server's certificate
 *
 * SYNOPSIS
 *	#include "tls_client.h"
 *
 *	SSL_CTX *tls_client_ctx_new(const char *CAfile, const char *CApath,
 *			char *err, size_t errlen)
 *	SSL	*tls_client_ssl_new(SSL_CTX *ctx, const char *sni,
 *			const char *protocols, const char *ciphers,
 *			const char *const *names, size_t nnames,
 *			char *err, size_t errlen)
 *	int	tls_client_trust(SSL *ssl)
 *	const char *tls_client_trust_name(int trust)
 *	int	tls_client_chain_ok(SSL *ssl)
 *	int	tls_client_name_ok(SSL *ssl)
 *	const char *tls_client_verify_error(SSL *ssl)
 *	int	tls_client_chain_error(SSL *ssl)
 *	int	tls_client_fingerprint(SSL *ssl, const char *digest, int what,
 *			char *buf, size_t len)
 *	int	tls_client_pin_match(SSL *ssl, const char *digest,
 *			const char *pins)
 *
 *	void	tls_client_cache_init(SSL_CTX *ctx, long timeout)
 *	int	tls_client_cache_use(SSL *ssl, const char *key)
 *	void	tls_client_cache_drop(SSL *ssl)
 *	int	tls_client_resumed(SSL *ssl)
 *	void	tls_client_cache_flush(void)
 *
 * DESCRIPTION
 *	tls_client_ctx_new() makes the one client context of a process
 *	(call tls_init() first): trust anchors from "CAfile" and "CApath"
 *	(either may be NULL or empty; both empty: the system's default
 *	store), certificate checks recorded rather than enforced, so that
 *	the handshake completes and the caller's policy decides what an
 *	unverified certificate means. Read it before the privilege drop
 *	when the files are not readable by the mail owner. NULL with a
 *	reason in "err" when a file cannot be loaded.
 *
 *	tls_client_ssl_new() makes the SSL of one connection: SNI "sni"
 *	(NULL or empty: none; never an IP address), the protocol range
 *	"protocols" (tls_protocols_parse() syntax; NULL or empty: the
 *	context's), the TLS 1.2 cipher list "ciphers" (an OpenSSL cipher
 *	string; NULL or empty: OpenSSL's default less anonymous suites),
 *	and the names the certificate must carry ("names", any of them
 *	matches; a name that starts with "." matches any subdomain of it;
 *	none: the name is not checked; when one is an IP address, only
 *	that address is checked, against the address names). NULL with a
 *	reason in "err".
 *
 *	After the handshake: tls_client_chain_ok() says whether the chain
 *	was verified against the trust anchors, tls_client_name_ok()
 *	whether it also carried one of the names (false when none were
 *	given), tls_client_verify_error() why the chain was not verified,
 *	tls_client_chain_error() the first chain error (X509_V_ERR_*; 0
 *	none),
 *	and tls_client_trust() sums it up as TLS_TRUST_ANONYMOUS (no
 *	certificate), _UNTRUSTED, _TRUSTED (chain only) or _VERIFIED
 *	(chain and name); tls_client_trust_name() gives Postfix's word for
 *	it ("Anonymous", "Untrusted", "Trusted", "Verified").
 *
 *	tls_client_fingerprint() writes the digest ("sha256", "sha1", any
 *	OpenSSL digest name) of the server certificate's DER
 *	(TLS_FPT_CERT) or of its SubjectPublicKeyInfo DER (TLS_FPT_PKEY)
 *	to "buf" in Postfix's form, upper-case hex bytes joined by ":";
 *	-1 when there is no certificate or no such digest.
 *	tls_client_pin_match() is 1 when one of "pins" (separated by
 *	blanks, commas or "|"; colons and case do not matter) is the
 *	fingerprint of the certificate or of its public key, else 0.
 *
 *	Session resumption, in memory (one long-lived client process):
 *	tls_client_cache_init() turns it on for "ctx", sessions kept
 *	"timeout" seconds (0: off). It asks OpenSSL for every new session
 *	(SSL_SESS_CACHE_CLIENT with SSL_SESS_CACHE_NO_INTERNAL_STORE and a
 *	new-session callback, so TLS 1.3 tickets that come after the
 *	handshake are kept too) and keeps the newest per key, at most
 *	TLS_CLIENT_CACHE_MAX of them, the least recently used going first.
 *	tls_client_cache_use() names the key of an SSL before its handshake
 *	and sets the cached session of that key on it, if one is alive (1,
 *	else 0). The key must say everything a session may be used for:
 *	the server and the policy the certificate was judged by. Each
 *	session carries the results of the certificate checks of its full
 *	handshake, which a resumed handshake does not repeat; after one,
 *	tls_client_trust() and friends give those results.
 *	tls_client_cache_drop() forgets the session of an SSL's key (a
 *	handshake that failed). tls_client_resumed() says whether the
 *	handshake resumed a session. tls_client_cache_flush() frees all.
 *
 * SEE ALSO
 *	tls.h, RFC 6125, Postfix TLS_README "Server certificate verification"
 */

#include <sys/socket.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls.h"
#include "tls_client.h"

/* What the certificate checks found: by the verify callback, or saved. */
struct tls_client_result {
	int     chain_err;		/* first chain error; 0 none */
	int     name_err;		/* the host name check failed */
};

/* One connection. */
struct tls_client_state {
	struct tls_client_result live;	/* this handshake's checks */
	struct tls_client_result saved;	/* those of the offered session */
	int     offered;		/* a cached session was set */
	int     names;			/* names were given */
	char   *key;			/* session cache key; NULL none */
};

/* One cached session. */
struct tls_client_sess {
	struct tls_client_sess *next;	/* most recently used first */
	struct tls_client_sess *prev;
	char   *key;
	SSL_SESSION *session;
	time_t  expires;
	struct tls_client_result res;
};

static int tls_client_index = -1;

static struct tls_client_sess *tls_client_cache_head;
static struct tls_client_sess *tls_client_cache_tail;
static size_t tls_client_cache_count;
static long tls_client_cache_timeout;

/* The options that exclude one protocol version. */
#define TLS_CLIENT_NO_OPS	(SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 \
				 | SSL_OP_NO_TLSv1_2 | SSL_OP_NO_TLSv1_3)

/* tls_client_state_free - ex_data destructor */
static void
tls_client_state_free(void *unused_parent, void *ptr,
		      CRYPTO_EX_DATA *unused_ad, int unused_idx,
		      long unused_argl, void *unused_argp)
{
	(void) unused_parent;
	(void) unused_ad;
	(void) unused_idx;
	(void) unused_argl;
	(void) unused_argp;
	if (ptr)
		OPENSSL_free(((struct tls_client_state *) ptr)->key);
	OPENSSL_free(ptr);
}

/* tls_client_state - the state of one connection */
static struct tls_client_state *
tls_client_state(SSL *ssl)
{
	if (tls_client_index < 0 || ssl == NULL)
		return (NULL);
	return (SSL_get_ex_data(ssl, tls_client_index));
}

/* tls_client_verify_cb - record what is wrong, let the handshake go on */
static int
tls_client_verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL    *ssl;
	struct tls_client_state *st;
	int     err;

	if (ok)
		return (1);
	ssl = X509_STORE_CTX_get_ex_data(store,
					 SSL_get_ex_data_X509_STORE_CTX_idx());
	st = tls_client_state(ssl);
	err = X509_STORE_CTX_get_error(store);
	if (st) {
		if (err == X509_V_ERR_HOSTNAME_MISMATCH
		    || err == X509_V_ERR_IP_ADDRESS_MISMATCH)
			st->live.name_err = 1;
		else if (st->live.chain_err == 0)
			st->live.chain_err = err ? err : X509_V_ERR_UNSPECIFIED;
	}
	return (1);
}

/* tls_client_ctx_new - the client context */
SSL_CTX *
tls_client_ctx_new(const char *CAfile, const char *CApath, char *err,
		   size_t errlen)
{
	SSL_CTX *ctx;
	int     ok;

	if (tls_client_index < 0)
		tls_client_index = SSL_get_ex_new_index(0, "tls_client", NULL,
							NULL,
							tls_client_state_free);
	if (tls_client_index < 0 || (ctx = SSL_CTX_new(TLS_client_method()))
	    == NULL) {
		snprintf(err, errlen, "cannot make a TLS context: %s",
			 tls_errors());
		return (NULL);
	}
	tls_ctx_common(ctx);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_client_verify_cb);
	SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
	if (CAfile && *CAfile == 0)
		CAfile = NULL;
	if (CApath && *CApath == 0)
		CApath = NULL;
	if (CAfile || CApath)
		ok = SSL_CTX_load_verify_locations(ctx, CAfile, CApath);
	else
		ok = SSL_CTX_set_default_verify_paths(ctx);
	if (!ok) {
		snprintf(err, errlen, "cannot load trust anchors from %s%s%s: %s",
			 CAfile ? CAfile : "", CAfile && CApath ? " and " : "",
			 CApath ? CApath : (CAfile ? "" : "the default store"),
			 tls_errors());
		SSL_CTX_free(ctx);
		return (NULL);
	}
	return (ctx);
}

/* tls_client_is_addr - an IP address literal */
static int
tls_client_is_addr(const char *s)
{
	unsigned char buf[16];

	return (inet_pton(AF_INET, s, buf) == 1
		|| inet_pton(AF_INET6, s, buf) == 1);
}

/*
 * tls_client_protocols - what a protocol list means for one SSL: the
 * bounds and the holes between them, as tls_ctx_set_protocols() sets
 * them on a context; worked out once per list (a list comes from
 * main.cf or a policy table, so there are few).
 */
static int
tls_client_protocols(const char *spec, int *min, int *max, uint64_t *no_ops)
{
	static struct tls_client_proto {
		struct tls_client_proto *next;
		char   *spec;
		int     min;
		int     max;
		uint64_t no_ops;
	}      *known;
	struct tls_client_proto *p;
	SSL_CTX *tmp;

	for (p = known; p; p = p->next)
		if (strcmp(p->spec, spec) == 0)
			break;
	if (p == NULL) {
		if ((tmp = SSL_CTX_new(TLS_client_method())) == NULL)
			return (-1);
		SSL_CTX_clear_options(tmp, TLS_CLIENT_NO_OPS);
		if (tls_ctx_set_protocols(tmp, spec) < 0) {
			SSL_CTX_free(tmp);
			return (-1);
		}
		if ((p = OPENSSL_zalloc(sizeof(*p))) == NULL
		    || (p->spec = OPENSSL_strdup(spec)) == NULL) {
			OPENSSL_free(p);
			SSL_CTX_free(tmp);
			return (-1);
		}
		p->min = SSL_CTX_get_min_proto_version(tmp);
		p->max = SSL_CTX_get_max_proto_version(tmp);
		p->no_ops = SSL_CTX_get_options(tmp) & TLS_CLIENT_NO_OPS;
		SSL_CTX_free(tmp);
		p->next = known;
		known = p;
	}
	*min = p->min;
	*max = p->max;
	*no_ops = p->no_ops;
	return (0);
}

/* tls_client_ssl_new - the SSL of one connection */
SSL    *
tls_client_ssl_new(SSL_CTX *ctx, const char *sni, const char *protocols,
		   const char *ciphers, const char *const *names,
		   size_t nnames, char *err, size_t errlen)
{
	struct tls_client_state *st;
	SSL    *ssl;
	int     min = 0;
	int     max = 0;
	uint64_t no_ops = 0;
	size_t  i;

	if ((ssl = SSL_new(ctx)) == NULL) {
		snprintf(err, errlen, "cannot make a TLS connection: %s",
			 tls_errors());
		return (NULL);
	}
	st = OPENSSL_zalloc(sizeof(*st));
	if (st == NULL || !SSL_set_ex_data(ssl, tls_client_index, st)) {
		OPENSSL_free(st);
		snprintf(err, errlen, "out of memory");
		SSL_free(ssl);
		return (NULL);
	}
	if (protocols && *protocols) {
		if (tls_client_protocols(protocols, &min, &max, &no_ops) < 0) {
			snprintf(err, errlen, "bad TLS protocol list \"%s\"",
				 protocols);
			SSL_free(ssl);
			return (NULL);
		}
		SSL_set_min_proto_version(ssl, min);
		SSL_set_max_proto_version(ssl, max);
		SSL_clear_options(ssl, TLS_CLIENT_NO_OPS);
		SSL_set_options(ssl, no_ops);
	}
	if (!SSL_set_cipher_list(ssl, ciphers && *ciphers ? ciphers :
				 "DEFAULT:!aNULL")) {
		snprintf(err, errlen, "bad cipher list \"%s\": %s",
			 ciphers, tls_errors());
		SSL_free(ssl);
		return (NULL);
	}
	if (sni && *sni && !tls_client_is_addr(sni)
	    && !SSL_set_tlsext_host_name(ssl, sni)) {
		snprintf(err, errlen, "bad SNI name \"%s\"", sni);
		SSL_free(ssl);
		return (NULL);
	}
	X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl),
				    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* An address literal is matched against IP address SANs, alone. */
	for (i = 0; i < nnames; i++) {
		if (names[i] && *names[i] && tls_client_is_addr(names[i])) {
			if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
							  names[i]) != 1) {
				snprintf(err, errlen, "bad certificate address "
					 "\"%s\"", names[i]);
				SSL_free(ssl);
				return (NULL);
			}
			st->names = 1;
			return (ssl);
		}
	}
	for (i = 0; i < nnames; i++) {
		if (names[i] == NULL || *names[i] == 0)
			continue;
		if ((st->names ? SSL_add1_host(ssl, names[i])
		     : SSL_set1_host(ssl, names[i])) != 1) {
			snprintf(err, errlen, "bad certificate name \"%s\"",
				 names[i]);
			SSL_free(ssl);
			return (NULL);
		}
		st->names = 1;
	}
	return (ssl);
}

/* tls_client_result - the checks of this handshake, or of the resumed one */
static const struct tls_client_result *
tls_client_result(SSL *ssl)
{
	struct tls_client_state *st = tls_client_state(ssl);

	if (st == NULL)
		return (NULL);
	/* A resumed handshake verifies nothing: the session's results. */
	if (st->offered && SSL_session_reused(ssl))
		return (&st->saved);
	return (&st->live);
}

/* tls_client_chain_ok - the chain was verified */
int
tls_client_chain_ok(SSL *ssl)
{
	const struct tls_client_result *r = tls_client_result(ssl);

	return (r && SSL_get0_peer_certificate(ssl) != NULL
		&& r->chain_err == 0);
}

/* tls_client_name_ok - and it carried one of the names */
int
tls_client_name_ok(SSL *ssl)
{
	struct tls_client_state *st = tls_client_state(ssl);
	const struct tls_client_result *r = tls_client_result(ssl);

	return (tls_client_chain_ok(ssl) && st->names && !r->name_err);
}

/* tls_client_chain_error - the first chain error, X509_V_ERR_* */
int
tls_client_chain_error(SSL *ssl)
{
	const struct tls_client_result *r = tls_client_result(ssl);

	return (r ? r->chain_err : 0);
}

/* tls_client_verify_error - why the chain was not verified */
const char *
tls_client_verify_error(SSL *ssl)
{
	const struct tls_client_result *r = tls_client_result(ssl);

	if (SSL_get0_peer_certificate(ssl) == NULL)
		return ("no server certificate");
	if (r && r->chain_err)
		return (X509_verify_cert_error_string(r->chain_err));
	if (r && r->name_err)
		return ("certificate name mismatch");
	return ("ok");
}

/* tls_client_trust - how far the server can be trusted */
int
tls_client_trust(SSL *ssl)
{
	if (SSL_get0_peer_certificate(ssl) == NULL)
		return (TLS_TRUST_ANONYMOUS);
	if (!tls_client_chain_ok(ssl))
		return (TLS_TRUST_UNTRUSTED);
	return (tls_client_name_ok(ssl) ? TLS_TRUST_VERIFIED :
		TLS_TRUST_TRUSTED);
}

/* tls_client_trust_name - Postfix's word for it */
const char *
tls_client_trust_name(int trust)
{
	switch (trust) {
	case TLS_TRUST_VERIFIED:
		return ("Verified");
	case TLS_TRUST_TRUSTED:
		return ("Trusted");
	case TLS_TRUST_UNTRUSTED:
		return ("Untrusted");
	default:
		return ("Anonymous");
	}
}

/* tls_client_fingerprint - digest of the certificate or its key */
int
tls_client_fingerprint(SSL *ssl, const char *digest, int what, char *buf,
		       size_t len)
{
	X509   *cert = SSL_get0_peer_certificate(ssl);
	const EVP_MD *md = EVP_get_digestbyname(digest ? digest : "sha256");
	unsigned char md_buf[EVP_MAX_MD_SIZE];
	unsigned char *der = NULL;
	unsigned int md_len = 0;
	int     der_len;
	size_t  i;

	if (cert == NULL || md == NULL || len < 1)
		return (-1);
	if (what == TLS_FPT_PKEY)
		der_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	else
		der_len = i2d_X509(cert, &der);
	if (der_len <= 0)
		return (-1);
	if (!EVP_Digest(der, (size_t) der_len, md_buf, &md_len, md, NULL)) {
		OPENSSL_free(der);
		return (-1);
	}
	OPENSSL_free(der);
	if (md_len == 0 || len < (size_t) md_len * 3)
		return (-1);
	/* "AB:CD:...": three bytes per digest byte, the last ":" a NUL. */
	for (i = 0; i < md_len; i++)
		snprintf(buf + 3 * i, len - 3 * i, "%02X%s", md_buf[i],
			 i + 1 < md_len ? ":" : "");
	return (0);
}

/* tls_client_hex_eq - two fingerprints, colons and case aside */
static int
tls_client_hex_eq(const char *a, size_t alen, const char *b)
{
	size_t  i = 0;

	for (;;) {
		while (i < alen && a[i] == ':')
			i++;
		while (*b == ':')
			b++;
		if (i == alen || *b == 0)
			return (i == alen && *b == 0);
		if (tolower((unsigned char) a[i]) != tolower((unsigned char) *b))
			return (0);
		i++;
		b++;
	}
}

/* tls_client_pin_match - one of the pins is the certificate or its key */
int
tls_client_pin_match(SSL *ssl, const char *digest, const char *pins)
{
	char    cert_fp[EVP_MAX_MD_SIZE * 3 + 1];
	char    pkey_fp[EVP_MAX_MD_SIZE * 3 + 1];
	const char *p = pins;
	size_t  len;

	if (tls_client_fingerprint(ssl, digest, TLS_FPT_CERT, cert_fp,
				   sizeof(cert_fp)) < 0
	    || tls_client_fingerprint(ssl, digest, TLS_FPT_PKEY, pkey_fp,
				      sizeof(pkey_fp)) < 0)
		return (0);
	for (;;) {
		p += strspn(p, " \t\r\n,|");
		if (*p == 0)
			return (0);
		len = strcspn(p, " \t\r\n,|");
		if (tls_client_hex_eq(p, len, cert_fp)
		    || tls_client_hex_eq(p, len, pkey_fp))
			return (1);
		p += len;
	}
}

/* tls_client_cache_unlink - take an entry out of the list */
static void
tls_client_cache_unlink(struct tls_client_sess *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		tls_client_cache_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		tls_client_cache_tail = e->prev;
	e->next = e->prev = NULL;
}

/* tls_client_cache_front - make an entry the most recently used */
static void
tls_client_cache_front(struct tls_client_sess *e)
{
	e->next = tls_client_cache_head;
	e->prev = NULL;
	if (tls_client_cache_head)
		tls_client_cache_head->prev = e;
	else
		tls_client_cache_tail = e;
	tls_client_cache_head = e;
}

/* tls_client_cache_free - forget one entry */
static void
tls_client_cache_free(struct tls_client_sess *e)
{
	tls_client_cache_unlink(e);
	SSL_SESSION_free(e->session);
	OPENSSL_free(e->key);
	OPENSSL_free(e);
	tls_client_cache_count--;
}

/* tls_client_cache_find - the live entry of a key; expired ones go */
static struct tls_client_sess *
tls_client_cache_find(const char *key)
{
	struct tls_client_sess *e;
	time_t  now = time(NULL);

	for (e = tls_client_cache_head; e; e = e->next) {
		if (strcmp(e->key, key) != 0)
			continue;
		if (now >= e->expires || !SSL_SESSION_is_resumable(e->session)
		    || now >= (time_t) (SSL_SESSION_get_time(e->session)
					+ SSL_SESSION_get_timeout(e->session))) {
			tls_client_cache_free(e);
			return (NULL);
		}
		return (e);
	}
	return (NULL);
}

/* tls_client_cache_new_cb - OpenSSL has a session (or a TLS 1.3 ticket) */
static int
tls_client_cache_new_cb(SSL *ssl, SSL_SESSION *session)
{
	struct tls_client_state *st = tls_client_state(ssl);
	const struct tls_client_result *r = tls_client_result(ssl);
	struct tls_client_sess *e;
	SSL_SESSION *copy;

	if (st == NULL || st->key == NULL || tls_client_cache_timeout <= 0
	    || !SSL_SESSION_is_resumable(session))
		return (0);

	/*
	 * A copy: OpenSSL marks the session of a connection freed without
	 * close_notify not resumable, and a connection that ends badly must
	 * not take the cache's session with it.
	 */
	if ((copy = SSL_SESSION_dup(session)) == NULL)
		return (0);
	if ((e = tls_client_cache_find(st->key)) != NULL) {
		/* The newest one: a TLS 1.3 ticket is best used once. */
		SSL_SESSION_free(e->session);
		tls_client_cache_unlink(e);
	} else {
		if ((e = OPENSSL_zalloc(sizeof(*e))) == NULL
		    || (e->key = OPENSSL_strdup(st->key)) == NULL) {
			OPENSSL_free(e);
			SSL_SESSION_free(copy);
			return (0);
		}
		tls_client_cache_count++;
	}
	e->session = copy;
	e->res = *r;
	e->expires = time(NULL) + tls_client_cache_timeout;
	tls_client_cache_front(e);
	while (tls_client_cache_count > TLS_CLIENT_CACHE_MAX)
		tls_client_cache_free(tls_client_cache_tail);
	/* OpenSSL keeps its reference. */
	return (0);
}

/* tls_client_cache_init - resumption for a client context */
void
tls_client_cache_init(SSL_CTX *ctx, long timeout)
{
	tls_client_cache_timeout = timeout;
	if (timeout <= 0) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		return;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT
				       | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_client_cache_new_cb);
}

/* tls_client_cache_use - name the key of an SSL; offer its session */
int
tls_client_cache_use(SSL *ssl, const char *key)
{
	struct tls_client_state *st = tls_client_state(ssl);
	struct tls_client_sess *e;
	SSL_SESSION *copy;
	int     ok;

	if (st == NULL || tls_client_cache_timeout <= 0 || key == NULL)
		return (0);
	OPENSSL_free(st->key);
	if ((st->key = OPENSSL_strdup(key)) == NULL)
		return (0);
	if ((e = tls_client_cache_find(key)) == NULL)
		return (0);
	/* The connection gets a copy; the cached one stays untouched. */
	if ((copy = SSL_SESSION_dup(e->session)) == NULL)
		return (0);
	ok = SSL_set_session(ssl, copy);
	SSL_SESSION_free(copy);
	if (!ok)
		return (0);
	st->saved = e->res;
	st->offered = 1;
	tls_client_cache_unlink(e);
	tls_client_cache_front(e);
	return (1);
}

/* tls_client_cache_drop - forget the session of this SSL's key */
void
tls_client_cache_drop(SSL *ssl)
{
	struct tls_client_state *st = tls_client_state(ssl);
	struct tls_client_sess *e;

	if (st && st->key && (e = tls_client_cache_find(st->key)) != NULL)
		tls_client_cache_free(e);
}

/* tls_client_resumed - the handshake resumed a session */
int
tls_client_resumed(SSL *ssl)
{
	return (ssl != NULL && SSL_session_reused(ssl));
}

/* tls_client_cache_flush - forget every session */
void
tls_client_cache_flush(void)
{
	while (tls_client_cache_head)
		tls_client_cache_free(tls_client_cache_head);
}
