/*
 * tls_server - the server side of TLS: a context from the parameters
 *
 * SYNOPSIS
 *	#include "tls_server.h"
 *
 *	SSL_CTX	*tls_server_ctx_new(const struct tls_server_conf *conf,
 *			struct strbuf *err)
 *	SSL	*tls_server_ssl_new(SSL_CTX *ctx, struct strbuf *err)
 *	int	tls_server_cipherlist(const char *grade, const char *exclude,
 *			struct strbuf *out)
 *	int	tls_server_key_safe(const char *path, struct strbuf *err)
 *	int	tls_server_level(const char *level)
 *
 *	struct tls_peer_info *tls_server_peer(SSL *ssl, const EVP_MD *md)
 *	void	tls_server_peer_free(struct tls_peer_info *peer)
 *
 * DESCRIPTION
 *	tls_server_ctx_new() makes the SSL_CTX of a server (smtpd) from
 *	"conf", the smtpd_tls_* parameters:
 *
 *	- an RSA pair (cert_file, key_file) and/or an ECDSA pair
 *	  (eccert_file, eckey_file). Each certificate file may hold the
 *	  chain after the certificate, leaf first
 *	  (SSL_CTX_use_certificate_chain_file()); OpenSSL keeps one
 *	  certificate per key type and gives each client the one its
 *	  signature algorithms and ciphers allow, so an ECDSA-only client
 *	  gets the ECDSA certificate. CAfile, when set, is the trust store
 *	  that completes a chain the files leave short;
 *	- with ask_ccert, a request for a client certificate (not a
 *	  demand: a client without one goes on, as in Postfix). CAfile and
 *	  CApath are the trust anchors for it, up to ccert_depth
 *	  certificates deep; the names of CAfile's CAs go in the request.
 *	  A certificate that fails verification does not end the
 *	  handshake: the caller sees it as untrusted (tls_server_peer());
 *	- protocols (tls_ctx_set_protocols(), Postfix syntax);
 *	- a cipher grade with exclusions (tls_server_cipherlist()); TLS 1.3
 *	  cipher suites are OpenSSL's defaults, as in Postfix;
 *	- session resumption for cache_timeout seconds: OpenSSL's internal
 *	  session cache of this process plus stateless session tickets
 *	  (keys made per process, so a ticket outlives neither a restart
 *	  nor a reload); 0 turns both off;
 *	- what tls_ctx_common() sets: no compression, no client-initiated
 *	  renegotiation, buffers released while a connection is idle.
 *
 *	Key files are read now: the caller runs it while still root (smtpd
 *	from pre_init, before the skeleton drops privileges), so keys may
 *	be root-only (0600 or 0400). A key file that anyone may read is
 *	refused: tls_server_ctx_new() ends the process with log_fatal()
 *	naming the file, as a key that leaked is no key.
 *
 *	It returns NULL with one line in "err" when the context cannot be
 *	made: no certificate, a file that cannot be read, a key that does
 *	not match its certificate, a bad protocol or cipher setting.
 *
 *	tls_server_ssl_new() makes the SSL of one connection (server mode),
 *	or NULL with the reason in "err".
 *
 *	tls_server_cipherlist() turns a Postfix cipher grade and exclusion
 *	list into an OpenSSL cipher string in "out":
 *
 *	    high	HIGH:!aNULL:!eNULL
 *	    medium	HIGH:MEDIUM:!aNULL:!eNULL
 *
 *	then ":!NAME" for each word of "exclude" (comma, space or colon
 *	separated; OpenSSL cipher names or classes such as "aNULL", "SHA1").
 *	Postfix's "low", "export" and "null" are gone from OpenSSL 3 and
 *	refused. 0, or -1 with the reason in "out".
 *
 *	tls_server_key_safe() checks the mode of a key file: 0 when only
 *	its owner and group may read it, TLS_SERVER_KEY_OPEN when anyone
 *	may, -1 when it cannot be looked at; the reason is in "err".
 *
 *	tls_server_level() parses smtpd_tls_security_level: "none" (or
 *	empty), "may", "encrypt"; -1 for anything else.
 *
 *	tls_server_peer() describes the certificate the client presented
 *	on "ssl" after the handshake, or returns NULL when there is none:
 *	the common names of subject and issuer (control characters shown
 *	as "?"), the digests "md" of the certificate and of its public key
 *	(DER SubjectPublicKeyInfo) in Postfix's form, upper-case hex pairs
 *	joined by colons, and whether it was verified. A session that was
 *	resumed has the certificate and verdict of its first handshake.
 *	tls_server_peer_free() frees the result (NULL is fine).
 *
 * DIAGNOSTICS
 *	Errors are returned; a world-readable key file is fatal.
 *
 * SEE ALSO
 *	tls_stream(3), smtpd(8), sendarix-params(5), SSL_CTX_new(3)
 */

#include <sys/stat.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <openssl/x509.h>

#include "log.h"
#include "strbuf.h"
#include "tls.h"
#include "tls_server.h"
#include "xmalloc.h"

/* tls_server_level - smtpd_tls_security_level as a number */
int
tls_server_level(const char *level)
{
	if (level == NULL || *level == 0 || strcasecmp(level, "none") == 0)
		return (TLS_SERVER_LEVEL_NONE);
	if (strcasecmp(level, "may") == 0)
		return (TLS_SERVER_LEVEL_MAY);
	if (strcasecmp(level, "encrypt") == 0)
		return (TLS_SERVER_LEVEL_ENCRYPT);
	return (-1);
}

/* tls_server_cipherlist - a Postfix grade as an OpenSSL cipher string */
int
tls_server_cipherlist(const char *grade, const char *exclude,
		      struct strbuf *out)
{
	const char *p;
	size_t  n;

	if (grade == NULL || strcasecmp(grade, "medium") == 0)
		strbuf_sets(out, "HIGH:MEDIUM:!aNULL:!eNULL");
	else if (strcasecmp(grade, "high") == 0)
		strbuf_sets(out, "HIGH:!aNULL:!eNULL");
	else {
		strbuf_setf(out, "unsupported cipher grade \"%s\" (use high "
			    "or medium)", grade);
		return (-1);
	}
	for (p = exclude ? exclude : ""; *p; p += n) {
		p += strspn(p, ", \t:");
		n = strcspn(p, ", \t:");
		if (n > 0)
			strbuf_printf(out, ":!%.*s", (int) n, p);
	}
	return (0);
}

/* tls_server_key_safe - a key file that only its owner may read? */
int
tls_server_key_safe(const char *path, struct strbuf *err)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		strbuf_setf(err, "cannot access key file %s: %s", path,
			    strerror(errno));
		return (-1);
	}
	if (st.st_mode & S_IROTH) {
		strbuf_setf(err, "key file %s is world-readable (mode %04o); "
			    "make it readable by root only (chmod 600)", path,
			    (unsigned) (st.st_mode & 07777));
		return (TLS_SERVER_KEY_OPEN);
	}
	return (0);
}

/* tls_server_pair - load one certificate chain and its key */
static int
tls_server_pair(SSL_CTX *ctx, const char *cert, const char *key,
		struct strbuf *err)
{
	struct strbuf *why;

	if (key == NULL || *key == 0)
		key = cert;
	why = strbuf_new(128, 0);
	switch (tls_server_key_safe(key, why)) {
	case TLS_SERVER_KEY_OPEN:
		log_fatal("%s", STRBUF_STR(why));
	case -1:
		strbuf_sets(err, STRBUF_STR(why));
		strbuf_free(why);
		return (-1);
	}
	strbuf_free(why);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		strbuf_setf(err, "cannot load certificate file %s: %s", cert,
			    tls_errors());
		return (-1);
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		strbuf_setf(err, "cannot load key file %s: %s", key,
			    tls_errors());
		return (-1);
	}
	/* Checks the pair just loaded: the key of the same type. */
	if (SSL_CTX_check_private_key(ctx) != 1) {
		strbuf_setf(err, "key file %s does not match certificate "
			    "file %s: %s", key, cert, tls_errors());
		return (-1);
	}
	return (0);
}

/* tls_server_ciphers - the cipher grade, for TLS 1.2 and below */
static int
tls_server_ciphers(SSL_CTX *ctx, const struct tls_server_conf *conf,
		   struct strbuf *err)
{
	struct strbuf *list = strbuf_new(128, 0);
	int     ret = 0;

	if (tls_server_cipherlist(conf->ciphers, conf->exclude_ciphers,
				  list) < 0) {
		strbuf_sets(err, STRBUF_STR(list));
		ret = -1;
	} else if (SSL_CTX_set_cipher_list(ctx, STRBUF_STR(list)) != 1) {
		strbuf_setf(err, "no usable ciphers in \"%s\": %s",
			    STRBUF_STR(list), tls_errors());
		ret = -1;
	}
	strbuf_free(list);
	return (ret);
}

/* tls_server_resumption - session cache and tickets */
static void
tls_server_resumption(SSL_CTX *ctx, const struct tls_server_conf *conf)
{
	const char *id = conf->id_context ? conf->id_context : "sendarix";
	size_t  len = strlen(id);

	if (len > SSL_MAX_SID_CTX_LENGTH)
		len = SSL_MAX_SID_CTX_LENGTH;
	(void) SSL_CTX_set_session_id_context(ctx, (const unsigned char *) id,
					      (unsigned) len);
	if (conf->cache_timeout <= 0) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		(void) SSL_CTX_set_num_tickets(ctx, 0);
		return;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	/* Also the lifetime the tickets announce. */
	SSL_CTX_set_timeout(ctx, conf->cache_timeout);
}

/* tls_server_verify_cb - record, never abort: the restrictions decide */
static int
tls_server_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	(void) ok;
	(void) ctx;
	return (1);
}

/* tls_server_ccert - ask for client certificates; 0 or -1 */
static int
tls_server_ccert(SSL_CTX *ctx, const struct tls_server_conf *conf,
		 struct strbuf *err)
{
	STACK_OF(X509_NAME) *names;

	if (conf->CApath && *conf->CApath
	    && SSL_CTX_load_verify_locations(ctx, NULL, conf->CApath) != 1) {
		strbuf_setf(err, "cannot load CA directory %s: %s",
			    conf->CApath, tls_errors());
		return (-1);
	}
	if (!conf->ask_ccert)
		return (0);
	if (conf->CAfile && *conf->CAfile) {
		if ((names = SSL_load_client_CA_file(conf->CAfile)) == NULL) {
			strbuf_setf(err, "cannot read CA names from %s: %s",
				    conf->CAfile, tls_errors());
			return (-1);
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
			   tls_server_verify_cb);
	SSL_CTX_set_verify_depth(ctx, conf->ccert_depth > 0 ?
				 conf->ccert_depth : 9);
	return (0);
}

/* tls_server_ctx_new - the server context of the parameters */
SSL_CTX *
tls_server_ctx_new(const struct tls_server_conf *conf, struct strbuf *err)
{
	SSL_CTX *ctx;
	int     have_rsa = conf->cert_file && *conf->cert_file;
	int     have_ec = conf->eccert_file && *conf->eccert_file;

	tls_init();
	if (!have_rsa && !have_ec) {
		strbuf_sets(err, "no server certificate: set "
			    "smtpd_tls_cert_file (and smtpd_tls_key_file)");
		return (NULL);
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		strbuf_setf(err, "cannot make a TLS context: %s", tls_errors());
		return (NULL);
	}
	tls_ctx_common(ctx);
	(void) SSL_CTX_set_dh_auto(ctx, 1);
	if (tls_ctx_set_protocols(ctx, conf->protocols ? conf->protocols :
				  "") < 0) {
		strbuf_setf(err, "bad TLS protocol list \"%s\"",
			    conf->protocols);
		goto fail;
	}
	if (tls_server_ciphers(ctx, conf, err) < 0)
		goto fail;
	if (conf->CAfile && *conf->CAfile
	    && SSL_CTX_load_verify_locations(ctx, conf->CAfile, NULL) != 1) {
		strbuf_setf(err, "cannot load CA file %s: %s", conf->CAfile,
			    tls_errors());
		goto fail;
	}
	if (tls_server_ccert(ctx, conf, err) < 0)
		goto fail;
	if (have_rsa && tls_server_pair(ctx, conf->cert_file, conf->key_file,
					err) < 0)
		goto fail;
	if (have_ec && tls_server_pair(ctx, conf->eccert_file,
				       conf->eckey_file, err) < 0)
		goto fail;
	tls_server_resumption(ctx, conf);
	return (ctx);

fail:
	SSL_CTX_free(ctx);
	return (NULL);
}

/* tls_server_ssl_new - the TLS state of one connection */
SSL *
tls_server_ssl_new(SSL_CTX *ctx, struct strbuf *err)
{
	SSL    *ssl;

	if ((ssl = SSL_new(ctx)) == NULL) {
		strbuf_setf(err, "cannot make a TLS connection: %s",
			    tls_errors());
		return (NULL);
	}
	SSL_set_accept_state(ssl);
	return (ssl);
}

/* tls_server_fprint - a digest as colon hex, or "" */
static char *
tls_server_fprint(const unsigned char *der, size_t len, const EVP_MD *md)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char dig[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	unsigned int i;
	char   *out;

	if (der == NULL || EVP_Digest(der, len, dig, &n, md, NULL) != 1
	    || n == 0)
		return (xstrdup(""));
	out = xmalloc(3 * n);
	for (i = 0; i < n; i++) {
		out[3 * i] = hex[dig[i] >> 4];
		out[3 * i + 1] = hex[dig[i] & 15];
		out[3 * i + 2] = i + 1 < n ? ':' : 0;
	}
	return (out);
}

/* tls_server_name - the CN (or else the O) of a name, printable */
static char *
tls_server_name(const X509_NAME *name)
{
	static const int nids[] = {NID_commonName, NID_organizationName};
	unsigned char *utf8 = NULL;
	const X509_NAME_ENTRY *e;
	char   *out = NULL;
	char   *cp;
	size_t  i;
	int     pos;
	int     len;

	for (i = 0; name && out == NULL && i < 2; i++) {
		if ((pos = X509_NAME_get_index_by_NID(name, nids[i], -1)) < 0
		    || (e = X509_NAME_get_entry(name, pos)) == NULL)
			continue;
		len = ASN1_STRING_to_UTF8(&utf8,
				X509_NAME_ENTRY_get_data(e));
		if (len < 0)
			continue;
		out = xstrndup((char *) utf8, (size_t) len);
		OPENSSL_free(utf8);
		utf8 = NULL;
	}
	if (out == NULL)
		return (xstrdup(""));
	/* It goes into logs and the policy protocol: one line, no NULs. */
	for (cp = out; *cp; cp++)
		if ((unsigned char) *cp < 0x20 || *cp == 0x7f)
			*cp = '?';
	return (out);
}

/* tls_server_peer - the client's certificate after the handshake */
struct tls_peer_info *
tls_server_peer(SSL *ssl, const EVP_MD *md)
{
	struct tls_peer_info *peer;
	X509   *cert;
	unsigned char *der = NULL;
	int     len;

	if ((cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return (NULL);
	peer = xcalloc(1, sizeof(*peer));
	peer->subject = tls_server_name(X509_get_subject_name(cert));
	peer->issuer = tls_server_name(X509_get_issuer_name(cert));
	len = i2d_X509(cert, &der);
	peer->cert_fp = tls_server_fprint(len > 0 ? der : NULL,
					  len > 0 ? (size_t) len : 0, md);
	OPENSSL_free(der);
	der = NULL;
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	peer->pkey_fp = tls_server_fprint(len > 0 ? der : NULL,
					  len > 0 ? (size_t) len : 0, md);
	OPENSSL_free(der);
	peer->trusted = SSL_get_verify_result(ssl) == X509_V_OK;
	X509_free(cert);
	return (peer);
}

/* tls_server_peer_free - forget a client certificate */
void
tls_server_peer_free(struct tls_peer_info *peer)
{
	if (peer == NULL)
		return;
	xfree(peer->subject);
	xfree(peer->issuer);
	xfree(peer->cert_fp);
	xfree(peer->pkey_fp);
	xfree(peer);
}
