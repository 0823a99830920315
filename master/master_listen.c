/*
 * master_listen - make and close the listening sockets of a service
 *
 * SYNOPSIS
 *	#include "master.h"
 *
 *	int	master_listen_open(struct master_serv *serv, struct strbuf *err)
 *	void	master_listen_close(struct master_serv *serv, int unlink_socket)
 *
 * DESCRIPTION
 *	master_listen_open() creates the sockets of one service and stores
 *	them in serv->fds (close-on-exec in master; master_spawn puts them
 *	at fds 3.. of each child).
 *
 *	An inet service name is "port", "host:port" or "[ipv6]:port"; port
 *	is a number or a name from /etc/services. Without a host (or with
 *	"*") the service listens on inet_interfaces: "all" (0.0.0.0 and ::,
 *	as inet_protocols allows), "loopback-only" (127.0.0.1 and ::1) or a
 *	list of addresses. IPv6 sockets are IPV6_V6ONLY, so IPv4 and IPv6
 *	each get their own socket. All inet sockets have SO_REUSEADDR.
 *
 *	A unix service listens on private/NAME (mode 0600) or public/NAME
 *	(mode 0666) under the queue directory (the working directory); a
 *	stale socket there is removed first. When master runs as root the
 *	socket belongs to mail_owner.
 *
 *	master_listen_close() closes the sockets and, when asked, removes
 *	the unix socket file.
 *
 * DIAGNOSTICS
 *	master_listen_open() returns 0, or -1 with the reason in err (and
 *	nothing left open).
 */

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "master.h"

/* master_listen_add - remember one socket */
static void
master_listen_add(struct master_serv *serv, int fd)
{
	serv->fds = xreallocarray(serv->fds, (size_t) serv->nfds + 1,
				  sizeof(int));
	serv->fds[serv->nfds++] = fd;
}

/* master_listen_addr_str - "host:port" for messages */
static void
master_listen_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char    host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *) sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *) sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

/* master_listen_bind_inet - one inet socket on one address */
static int
master_listen_bind_inet(struct master_serv *serv, const struct sockaddr *sa,
			socklen_t salen, int soft, struct strbuf *err)
{
	char    where[INET6_ADDRSTRLEN + 16];
	int     on = 1;
	int     fd;
	int     i;

	master_listen_addr_str(sa, where, sizeof(where));

	/* The same address twice (a list, or a name with two records). */
	for (i = 0; i < serv->nfds; i++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);

		if (getsockname(serv->fds[i], (struct sockaddr *) &ss,
				&sslen) == 0 && sslen == salen
		    && memcmp(&ss, sa, salen) == 0)
			return (0);
	}
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		if (soft && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
			log_warn("service %s: no support for %s: %s; skipped",
				 serv->name, where, strerror(errno));
			return (0);
		}
		strbuf_printf(err, "socket for %s: %s", where, strerror(errno));
		return (-1);
	}
	(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (sa->sa_family == AF_INET6)
		(void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, sa, salen) < 0) {
		int     saved = errno;

		close(fd);
		if (soft && sa->sa_family == AF_INET6
		    && (saved == EADDRNOTAVAIL || saved == EAFNOSUPPORT)) {
			log_warn("service %s: cannot bind %s: %s; skipped",
				 serv->name, where, strerror(saved));
			return (0);
		}
		strbuf_printf(err, "bind %s: %s", where, strerror(saved));
		return (-1);
	}
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		strbuf_printf(err, "listen %s: %s", where, strerror(errno));
		close(fd);
		return (-1);
	}
	log_debug("service %s: listening on %s", serv->name, where);
	master_listen_add(serv, fd);
	return (0);
}

/* master_listen_port - port number from a number or /etc/services */
static int
master_listen_port(const char *port, struct strbuf *err)
{
	struct servent *se;
	char   *end;
	long    n;

	if (*port == 0) {
		strbuf_sets(err, "missing port");
		return (-1);
	}
	errno = 0;
	n = strtol(port, &end, 10);
	if (*end == 0) {
		if (errno != 0 || n < 1 || n > 65535) {
			strbuf_printf(err, "bad port number: %s", port);
			return (-1);
		}
		return ((int) n);
	}
	if ((se = getservbyname(port, "tcp")) == NULL) {
		strbuf_printf(err, "unknown service name: %s", port);
		return (-1);
	}
	return (ntohs((unsigned short) se->s_port));
}

/* master_listen_host - bind every address a host name or literal gives */
static int
master_listen_host(struct master_serv *serv, const char *host, int port,
		   int want4, int want6, int soft, struct strbuf *err)
{
	struct addrinfo hints;
	struct addrinfo *res;
	struct addrinfo *ai;
	char    pbuf[8];
	char   *h = xstrdup(host);
	size_t  hl = strlen(h);
	int     rc;
	int     ret = 0;
	int     n = 0;

	/* "[::1]" in a list of interfaces. */
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		memmove(h, h + 1, hl - 2);
		h[hl - 2] = 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(pbuf, sizeof(pbuf), "%d", port);
	if ((rc = getaddrinfo(h, pbuf, &hints, &res)) != 0) {
		strbuf_printf(err, "host %s: %s", h, gai_strerror(rc));
		xfree(h);
		return (-1);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET && !want4)
		    || (ai->ai_family == AF_INET6 && !want6)
		    || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
			continue;
		n++;
		if (master_listen_bind_inet(serv, ai->ai_addr, ai->ai_addrlen,
					    soft, err) < 0) {
			ret = -1;
			break;
		}
	}
	freeaddrinfo(res);
	if (ret == 0 && n == 0 && !soft) {
		strbuf_printf(err, "host %s: no address of a protocol in "
			      "inet_protocols", h);
		ret = -1;
	}
	xfree(h);
	return (ret);
}

/* master_listen_protocols - parse inet_protocols */
static int
master_listen_protocols(int *want4, int *want6, struct strbuf *err)
{
	char   *val = xstrdup(conf_get("inet_protocols"));
	char   *save = NULL;
	char   *w;
	int     ret = 0;

	*want4 = *want6 = 0;
	for (w = strtok_r(val, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		if (strcmp(w, "all") == 0)
			*want4 = *want6 = 1;
		else if (strcmp(w, "ipv4") == 0)
			*want4 = 1;
		else if (strcmp(w, "ipv6") == 0)
			*want6 = 1;
		else {
			strbuf_printf(err, "bad inet_protocols value: %s", w);
			ret = -1;
			break;
		}
	}
	if (ret == 0 && !*want4 && !*want6) {
		strbuf_sets(err, "inet_protocols is empty");
		ret = -1;
	}
	xfree(val);
	return (ret);
}

/* master_listen_inet - the sockets of an inet service */
static int
master_listen_inet(struct master_serv *serv, struct strbuf *err)
{
	char   *name = xstrdup(serv->name);
	char   *host = NULL;
	char   *port = name;
	char   *cp;
	char   *ifs;
	char   *save = NULL;
	char   *w;
	int     want4;
	int     want6;
	int     portnum;
	int     ret = -1;

	if (name[0] == '[') {
		if ((cp = strchr(name, ']')) == NULL || cp[1] != ':') {
			strbuf_printf(err, "bad inet service name: %s "
				      "(expected [address]:port)", serv->name);
			goto out;
		}
		*cp = 0;
		host = name + 1;
		port = cp + 2;
	} else if ((cp = strchr(name, ':')) != NULL) {
		if (strchr(cp + 1, ':') != NULL) {
			strbuf_printf(err, "bad inet service name: %s "
				      "(write IPv6 addresses as [address]:port)",
				      serv->name);
			goto out;
		}
		*cp = 0;
		host = name;
		port = cp + 1;
	}
	if (host && (*host == 0 || strcmp(host, "*") == 0))
		host = NULL;
	if ((portnum = master_listen_port(port, err)) < 0)
		goto out;
	if (master_listen_protocols(&want4, &want6, err) < 0)
		goto out;

	if (host != NULL) {
		ret = master_listen_host(serv, host, portnum, want4, want6, 0,
					 err);
		goto out;
	}
	ifs = xstrdup(conf_get("inet_interfaces"));
	ret = 0;
	if (strcmp(ifs, "all") == 0) {
		if (want4)
			ret = master_listen_host(serv, "0.0.0.0", portnum,
						 1, 0, 0, err);
		if (ret == 0 && want6)
			ret = master_listen_host(serv, "::", portnum, 0, 1,
						 want4, err);
	} else if (strcmp(ifs, "loopback-only") == 0) {
		if (want4)
			ret = master_listen_host(serv, "127.0.0.1", portnum,
						 1, 0, 0, err);
		if (ret == 0 && want6)
			ret = master_listen_host(serv, "::1", portnum, 0, 1,
						 want4, err);
	} else {
		for (w = strtok_r(ifs, ", \t", &save); w && ret == 0;
		     w = strtok_r(NULL, ", \t", &save))
			ret = master_listen_host(serv, w, portnum, want4,
						 want6, 0, err);
	}
	xfree(ifs);
	if (ret == 0 && serv->nfds == 0) {
		strbuf_printf(err, "service %s: no address to listen on",
			      serv->name);
		ret = -1;
	}
out:
	xfree(name);
	if (ret < 0)
		master_listen_close(serv, 0);
	return (ret);
}

/* master_listen_unix - the socket of a unix service */
static int
master_listen_unix(struct master_serv *serv, struct strbuf *err)
{
	struct sockaddr_un sun;
	struct stat st;
	char    tmp[sizeof(sun.sun_path) + 32];
	mode_t  mode = serv->private_ ? 0600 : 0666;
	int     fd;

	if (serv->name[0] == 0 || strchr(serv->name, '/') != NULL
	    || strcmp(serv->name, ".") == 0 || strcmp(serv->name, "..") == 0) {
		strbuf_printf(err, "bad unix service name: \"%s\"", serv->name);
		return (-1);
	}
	xfree(serv->sockpath);
	serv->sockpath = xmalloc(strlen(serv->name) + 9);
	sprintf(serv->sockpath, "%s/%s", serv->private_ ? "private" : "public",
		serv->name);
	if (strlen(serv->sockpath) >= sizeof(sun.sun_path)) {
		strbuf_printf(err, "unix service name too long: %s", serv->name);
		return (-1);
	}
	/* A stale socket is replaced by the rename() below. */
	if (lstat(serv->sockpath, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		strbuf_printf(err, "%s exists and is not a socket",
			      serv->sockpath);
		return (-1);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		strbuf_printf(err, "socket: %s", strerror(errno));
		return (-1);
	}

	/*
	 * Bind under a temporary name and rename into place once the
	 * socket listens with its final owner and mode: a client that sees
	 * the name can connect at once.
	 */
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld",
		 serv->private_ ? "private" : "public", serv->name,
		 (long) getpid());
	if (strlen(tmp) >= sizeof(sun.sun_path)) {
		strbuf_printf(err, "unix service name too long: %s", serv->name);
		close(fd);
		return (-1);
	}
	(void) unlink(tmp);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, tmp, strlen(tmp) + 1);
	if (bind(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
		strbuf_printf(err, "bind %s: %s", serv->sockpath,
			      strerror(errno));
		close(fd);
		return (-1);
	}
	if (chmod(tmp, mode) < 0
	    || (master_is_root && chown(tmp, master_owner_uid,
					 master_owner_gid) < 0)) {
		strbuf_printf(err, "set owner/mode of %s: %s", serv->sockpath,
			      strerror(errno));
		close(fd);
		unlink(tmp);
		return (-1);
	}
	if (listen(fd, MASTER_LISTEN_BACKLOG) < 0) {
		strbuf_printf(err, "listen %s: %s", serv->sockpath,
			      strerror(errno));
		close(fd);
		unlink(tmp);
		return (-1);
	}
	if (rename(tmp, serv->sockpath) < 0) {
		strbuf_printf(err, "rename %s to %s: %s", tmp, serv->sockpath,
			      strerror(errno));
		close(fd);
		unlink(tmp);
		return (-1);
	}
	log_debug("service %s: listening on %s", serv->name, serv->sockpath);
	master_listen_add(serv, fd);
	return (0);
}

/* master_listen_open - make the sockets of a service */
int
master_listen_open(struct master_serv *serv, struct strbuf *err)
{
	if (strcmp(serv->type, "inet") == 0)
		return (master_listen_inet(serv, err));
	if (strcmp(serv->type, "unix") == 0)
		return (master_listen_unix(serv, err));
	strbuf_printf(err, "service %s: unknown type %s", serv->name,
		      serv->type);
	return (-1);
}

/* master_listen_close - close the sockets, maybe remove the socket file */
void
master_listen_close(struct master_serv *serv, int unlink_socket)
{
	int     i;

	for (i = 0; i < serv->nfds; i++)
		close(serv->fds[i]);
	serv->fds = xfree(serv->fds);
	serv->nfds = 0;
	if (unlink_socket && serv->sockpath != NULL
	    && unlink(serv->sockpath) < 0 && errno != ENOENT)
		log_warn("remove %s: %s", serv->sockpath, strerror(errno));
}
