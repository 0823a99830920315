/*
 * xsasl_xoauth2 - the XOAUTH2 mechanism, server side
 *
 * SYNOPSIS
 *	#include "xsasl.h"
 *
 *	int	xoauth2_init(const struct xoauth2_conf *conf,
 *			struct strbuf *err)
 *	int	xoauth2_enabled(void)
 *	int	xoauth2_parse(const char *buf, size_t len, char **user,
 *			char **token)
 *	int	xoauth2_check(const char *user, const char *token,
 *			xoauth2_done done, void *ctx,
 *			struct xoauth2_req **reqp)
 *	void	xoauth2_cancel(struct xoauth2_req *req)
 *	char   *xoauth2_error_json(void)
 *
 * DESCRIPTION
 *	XOAUTH2 is the SASL mechanism of Gmail and Microsoft 365: one
 *	client message, "user=" USER ^A "auth=Bearer " TOKEN ^A ^A (after
 *	base64), and no Cyrus plugin for it here, so it is done in this
 *	file.
 *
 *	xoauth2_init() opens the token table (token -> login name, any
 *	map(3) type; before the privilege drop) and/or sets the RFC 7662
 *	introspection endpoint (xsasl_introspect.c). xoauth2_enabled() says
 *	whether either is configured: only then is XOAUTH2 offered.
 *
 *	xoauth2_parse() splits a decoded client message; -1 if it is not
 *	one. The strings are the caller's to free.
 *
 *	xoauth2_check() decides whether "token" lets "user" in: the table
 *	first, then tokens remembered from earlier introspection answers
 *	(until their "exp"), then the endpoint. The login the token
 *	belongs to must be "user" (any case). It returns XSASL_OK,
 *	XSASL_FAIL, XSASL_TEMP, or XSASL_WAIT with *reqp set: "done" is
 *	then called from the event loop with one of the others and the
 *	login name. xoauth2_cancel() forgets a pending check.
 *
 *	xoauth2_error_json() is the RFC 7628 error a failed client gets
 *	(before base64): {"status":"invalid_token","schemes":"bearer",
 *	"scope":...}; the caller frees it.
 *
 * SEE ALSO
 *	RFC 7628, RFC 6750, RFC 7662,
 *	https://developers.google.com/gmail/imap/xoauth2-protocol
 */

#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "xmalloc.h"

#include "xsasl.h"

#define XOAUTH2_CACHE_MAX	4096	/* remembered tokens */

struct xoauth2_req {
	char   *user;
	char   *token;
	struct introspect_req *ireq;
	xoauth2_done done;
	void   *ctx;
};

/* A token the endpoint said was active, until it expires. */
struct xoauth2_cached {
	struct xoauth2_cached *next;
	char   *token;
	char   *login;
	time_t  exp;
};

static struct map *xoauth2_map;
static int xoauth2_url;
static char *xoauth2_scope;
static struct xoauth2_cached *xoauth2_cache;
static size_t xoauth2_ncache;

/* xoauth2_init - the token table and/or the endpoint */
int
xoauth2_init(const struct xoauth2_conf *conf, struct strbuf *err)
{
	if (conf->token_maps && *conf->token_maps) {
		if ((xoauth2_map = map_open(conf->token_maps, err)) == NULL)
			return (-1);
	}
	if (conf->url && *conf->url) {
		if (introspect_init(conf->url, conf->client_id,
				    conf->client_secret, conf->timeout, err) < 0)
			return (-1);
		xoauth2_url = 1;
	}
	if (conf->scope && *conf->scope)
		xoauth2_scope = xstrdup(conf->scope);
	return (0);
}

/* xoauth2_enabled - is XOAUTH2 offered? */
int
xoauth2_enabled(void)
{
	return (xoauth2_map != NULL || xoauth2_url);
}

/* xoauth2_parse - user= and auth=Bearer of a client message */
int
xoauth2_parse(const char *buf, size_t len, char **user, char **token)
{
	const char *end = buf + len;
	const char *cp = buf;
	const char *sep;
	size_t  n;

	*user = *token = NULL;
	if (memchr(buf, 0, len) != NULL)
		return (-1);
	/* key=value ^A ... ^A ^A */
	while (cp < end && *cp != '\001') {
		if ((sep = memchr(cp, '\001', end - cp)) == NULL)
			goto bad;
		n = sep - cp;
		if (n > 5 && strncmp(cp, "user=", 5) == 0 && *user == NULL)
			*user = xstrndup(cp + 5, n - 5);
		else if (n > 12 && strncasecmp(cp, "auth=Bearer ", 12) == 0
			 && *token == NULL)
			*token = xstrndup(cp + 12, n - 12);
		cp = sep + 1;
	}
	if (cp + 1 != end || *user == NULL || *token == NULL
	    || strlen(*user) != strcspn(*user, "\r\n")
	    || strlen(*token) != strcspn(*token, " \t\r\n"))
		goto bad;
	return (0);

bad:
	*user = xfree(*user);
	*token = xfree(*token);
	return (-1);
}

/* xoauth2_cache_find - a remembered token's login, or NULL */
static const char *
xoauth2_cache_find(const char *token)
{
	struct xoauth2_cached **pp = &xoauth2_cache;
	struct xoauth2_cached *c;
	time_t  now = time(NULL);

	while ((c = *pp) != NULL) {
		if (c->exp <= now) {
			*pp = c->next;
			xfree(c->token);
			xfree(c->login);
			xfree(c);
			xoauth2_ncache--;
			continue;
		}
		if (strcmp(c->token, token) == 0)
			return (c->login);
		pp = &c->next;
	}
	return (NULL);
}

/* xoauth2_cache_add - remember an active token until it expires */
static void
xoauth2_cache_add(const char *token, const char *login, time_t exp)
{
	struct xoauth2_cached *c;
	struct xoauth2_cached **pp;

	if (xoauth2_ncache >= XOAUTH2_CACHE_MAX) {
		/* Full: drop the oldest (the last one). */
		for (pp = &xoauth2_cache; (*pp)->next; pp = &(*pp)->next)
			 /* walk */ ;
		xfree((*pp)->token);
		xfree((*pp)->login);
		*pp = xfree(*pp);
		xoauth2_ncache--;
	}
	c = xcalloc(1, sizeof(*c));
	c->token = xstrdup(token);
	c->login = xstrdup(login);
	c->exp = exp;
	c->next = xoauth2_cache;
	xoauth2_cache = c;
	xoauth2_ncache++;
}

/* xoauth2_free - a request's memory */
static void
xoauth2_free(struct xoauth2_req *req)
{
	xfree(req->user);
	xfree(req->token);
	xfree(req);
}

/* xoauth2_introspected - the endpoint's verdict */
static void
xoauth2_introspected(int active, const char *login, time_t exp, void *ctx)
{
	struct xoauth2_req *req = ctx;
	int     ret;

	req->ireq = NULL;
	if (active < 0)
		ret = XSASL_TEMP;
	else if (active == 0 || login == NULL
		 || strcasecmp(login, req->user) != 0
		 || (exp != 0 && exp <= time(NULL)))
		ret = XSASL_FAIL;
	else {
		ret = XSASL_OK;
		if (exp != 0)
			xoauth2_cache_add(req->token, login, exp);
	}
	if (active > 0 && ret == XSASL_FAIL)
		log_info("XOAUTH2: token of %s%s%s is not one for %s",
			 login ? "\"" : "", login ? login : "no user",
			 login ? "\"" : "", req->user);
	req->done(ret, req->user, req->ctx);
	xoauth2_free(req);
}

/* xoauth2_check - may this token log in as this user? */
int
xoauth2_check(const char *user, const char *token, xoauth2_done done,
	      void *ctx, struct xoauth2_req **reqp)
{
	struct xoauth2_req *req;
	const char *login;
	int     ret;

	*reqp = NULL;
	if (xoauth2_map) {
		ret = map_lookup(xoauth2_map, token, &login);
		if (ret == MAP_RETRY) {
			log_warn("%s: table lookup failed",
				 map_spec(xoauth2_map));
			return (XSASL_TEMP);
		}
		if (ret == MAP_FOUND)
			return (strcasecmp(login, user) == 0 ? XSASL_OK :
				XSASL_FAIL);
	}
	if (!xoauth2_url)
		return (XSASL_FAIL);
	if ((login = xoauth2_cache_find(token)) != NULL)
		return (strcasecmp(login, user) == 0 ? XSASL_OK : XSASL_FAIL);
	req = xcalloc(1, sizeof(*req));
	req->user = xstrdup(user);
	req->token = xstrdup(token);
	req->done = done;
	req->ctx = ctx;
	if ((req->ireq = introspect_query(token, xoauth2_introspected,
					  req)) == NULL) {
		xoauth2_free(req);
		return (XSASL_TEMP);
	}
	*reqp = req;
	return (XSASL_WAIT);
}

/* xoauth2_cancel - forget a pending check */
void
xoauth2_cancel(struct xoauth2_req *req)
{
	if (req == NULL)
		return;
	introspect_cancel(req->ireq);
	xoauth2_free(req);
}

/* xoauth2_error_json - the RFC 7628 failure message */
char   *
xoauth2_error_json(void)
{
	json_t *obj = json_object();
	char   *text;
	char   *ret;

	json_object_set_new(obj, "status", json_string("invalid_token"));
	json_object_set_new(obj, "schemes", json_string("bearer"));
	if (xoauth2_scope)
		json_object_set_new(obj, "scope", json_string(xoauth2_scope));
	text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	ret = xstrdup(text ? text : "{\"status\":\"invalid_token\"}");
	free(text);
	return (ret);
}
