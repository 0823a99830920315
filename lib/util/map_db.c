/*
 * map_db - the hash: and btree: table types (Berkeley DB)
 *
 * SYNOPSIS
 *	hash:/path/to/file	btree:/path/to/file
 *
 * DESCRIPTION
 *	Tables kept in the Berkeley DB file /path/to/file.db (DB_HASH or
 *	DB_BTREE), opened read-only. Keys are stored folded to lower case
 *	and without a trailing NUL; values are stored without one either.
 *	Reached only through map_open() and map_build() (map_impl.h).
 *
 *	The build step ("sendarix map build hash:/path", map_build()) reads
 *	the text file /path in the texthash: format ("key value" lines, '#'
 *	comments, indented continuation lines), writes /path.db.tmp, syncs
 *	it, renames it over /path.db and syncs the directory, so a reader
 *	sees either the old table or the new one, never half of one. The
 *	first of two equal keys wins, with a warning.
 *
 *	An open table notices when its .db file was replaced (checked at
 *	most once a second, on lookup) and reopens it, so a rebuilt table
 *	takes effect without a reload; if the new file does not open, the
 *	old one keeps answering (with a warning).
 *
 * DIAGNOSTICS
 *	A missing or unreadable .db file leaves the table unopened: every
 *	lookup answers MAP_RETRY. A database error during a lookup is
 *	logged and answered with MAP_RETRY. A build with a malformed source
 *	line fails with the file and line, and leaves /path.db alone.
 *
 * SEE ALSO
 *	map(3), map_texthash(3)
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <db.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

/* map_db_errcall - Berkeley DB's own messages; we report errors ourselves */
static void
map_db_errcall(const DB_ENV *unused_env, const char *unused_pfx,
	       const char *msg)
{
	(void) unused_env;
	(void) unused_pfx;
	log_debug("berkeley db: %s", msg);
}

struct map_db {
	DB     *db;
	DBTYPE  type;
	char   *file;			/* /path.db */
	struct stat st;			/* of the file we have open */
	time_t  checked;		/* last time we looked for a change */
};

/* map_db_open_file - open a database file read-only; note what we opened */
static DB *
map_db_open_file(const char *file, DBTYPE type, struct stat *st,
		 struct strbuf *why)
{
	DB     *db;
	int     ret;
	int     fd;

	if ((ret = db_create(&db, NULL, 0)) != 0) {
		strbuf_printf(why, "db_create: %s", db_strerror(ret));
		return (NULL);
	}
	db->set_errcall(db, map_db_errcall);
	ret = db->open(db, NULL, file, NULL, type, DB_RDONLY, 0);
	if (ret != 0) {
		strbuf_printf(why, "open database %s: %s", file,
			      db_strerror(ret));
		db->close(db, 0);
		return (NULL);
	}
	if (db->fd(db, &fd) != 0 || fstat(fd, st) < 0)
		memset(st, 0, sizeof(*st));
	return (db);
}

/* map_db_open_type - open /path.db read-only */
static int
map_db_open_type(struct map *map, const char *path, DBTYPE type,
		 struct strbuf *why)
{
	struct map_db *md = xcalloc(1, sizeof(*md));

	map->priv = md;
	md->type = type;
	if (*path == 0) {
		strbuf_sets(why, "no file name");
		return (-1);
	}
	md->file = xmalloc(strlen(path) + 4);
	strcpy(md->file, path);
	strcat(md->file, ".db");
	md->checked = time(NULL);
	if ((md->db = map_db_open_file(md->file, type, &md->st, why)) == NULL)
		return (-1);
	return (0);
}

/* map_hash_open - DB_HASH */
static int
map_hash_open(struct map *map, const char *path, struct strbuf *why)
{
	return (map_db_open_type(map, path, DB_HASH, why));
}

/* map_btree_open - DB_BTREE */
static int
map_btree_open(struct map *map, const char *path, struct strbuf *why)
{
	return (map_db_open_type(map, path, DB_BTREE, why));
}

/*
 * map_db_check - reopen the file when "sendarix map build" replaced it.
 * At most once a second, so a busy daemon pays one stat() per second.
 * If the new file does not open, keep answering from the old one.
 */
static void
map_db_check(struct map *map, struct map_db *md)
{
	struct stat st;
	struct strbuf *why;
	time_t  now = time(NULL);
	DB     *db;

	if (now == md->checked)
		return;
	md->checked = now;
	if (stat(md->file, &st) < 0)
		return;
	if (st.st_dev == md->st.st_dev && st.st_ino == md->st.st_ino
	    && st.st_size == md->st.st_size
	    && st.st_mtim.tv_sec == md->st.st_mtim.tv_sec
	    && st.st_mtim.tv_nsec == md->st.st_mtim.tv_nsec)
		return;
	why = strbuf_new(128, 0);
	if ((db = map_db_open_file(md->file, md->type, &st, why)) == NULL) {
		log_warn("table %s changed but does not open: %s; still "
			 "using the old one", map->spec, STRBUF_STR(why));
		md->st = st;			/* do not retry every second */
	} else {
		log_info("table %s changed: reopened", map->spec);
		md->db->close(md->db, 0);
		md->db = db;
		md->st = st;
	}
	strbuf_free(why);
}

/* map_db_lookup - one get() */
static int
map_db_lookup(struct map *map, const char *key, const char **result)
{
	struct map_db *md = map->priv;
	DBT     k;
	DBT     v;
	int     ret;

	map_db_check(map, md);
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *) key;
	k.size = (u_int32_t) strlen(key);
	ret = md->db->get(md->db, NULL, &k, &v, 0);
	if (ret == DB_NOTFOUND)
		return (MAP_NOTFOUND);
	if (ret != 0) {
		log_warn("table %s: lookup \"%s\": %s", map->spec, key,
			 db_strerror(ret));
		return (MAP_RETRY);
	}
	if (strbuf_set(map->result, v.data, v.size) < 0)
		return (MAP_RETRY);
	*result = STRBUF_STR(map->result);
	return (MAP_FOUND);
}

/* map_db_close - close the database */
static void
map_db_close(struct map *map)
{
	struct map_db *md = map->priv;

	if (md == NULL)
		return;
	if (md->db)
		md->db->close(md->db, 0);
	xfree(md->file);
	map->priv = xfree(md);
}

struct map_db_build {
	DB     *db;
	const char *path;
};

/* map_db_put - store one entry, the first of equal keys wins */
static int
map_db_put(void *ctx, const char *key, const char *value, int lineno,
	   struct strbuf *why)
{
	struct map_db_build *b = ctx;
	DBT     k;
	DBT     v;
	int     ret;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *) key;
	k.size = (u_int32_t) strlen(key);
	v.data = (void *) value;
	v.size = (u_int32_t) strlen(value);
	ret = b->db->put(b->db, NULL, &k, &v, DB_NOOVERWRITE);
	if (ret == DB_KEYEXIST) {
		log_warn("%s, line %d: duplicate entry \"%s\": keeping the "
			 "first", b->path, lineno, key);
		return (0);
	}
	if (ret != 0) {
		strbuf_printf(why, "%s, line %d: store \"%s\": %s", b->path,
			      lineno, key, db_strerror(ret));
		return (-1);
	}
	return (0);
}

/* map_db_fsync_path - fsync a file or directory by name */
static int
map_db_fsync_path(const char *path, struct strbuf *why)
{
	int     fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		strbuf_printf(why, "open %s: %s", path, strerror(errno));
		return (-1);
	}
	if (fsync(fd) < 0) {
		strbuf_printf(why, "fsync %s: %s", path, strerror(errno));
		close(fd);
		return (-1);
	}
	close(fd);
	return (0);
}

/* map_db_build_type - text file -> .db.tmp -> .db */
static int
map_db_build_type(const char *path, DBTYPE type, struct strbuf *why)
{
	struct map_db_build b;
	char   *file = xmalloc(strlen(path) + 8);
	char   *tmp = xmalloc(strlen(path) + 8);
	char   *dircopy;
	DB     *db;
	int     ret;
	int     status = -1;

	strcpy(file, path);
	strcat(file, ".db");
	strcpy(tmp, path);
	strcat(tmp, ".db.tmp");
	if (unlink(tmp) < 0 && errno != ENOENT) {
		strbuf_printf(why, "remove %s: %s", tmp, strerror(errno));
		goto out;
	}
	if ((ret = db_create(&db, NULL, 0)) != 0) {
		strbuf_printf(why, "db_create: %s", db_strerror(ret));
		goto out;
	}
	db->set_errcall(db, map_db_errcall);
	ret = db->open(db, NULL, tmp, NULL, type, DB_CREATE | DB_EXCL, 0644);
	if (ret != 0) {
		strbuf_printf(why, "create database %s: %s", tmp,
			      db_strerror(ret));
		db->close(db, 0);
		goto out;
	}
	b.db = db;
	b.path = path;
	if (map_text_pairs(path, map_db_put, &b, why) < 0) {
		db->close(db, 0);
		unlink(tmp);
		goto out;
	}
	if ((ret = db->close(db, 0)) != 0) {
		strbuf_printf(why, "close database %s: %s", tmp,
			      db_strerror(ret));
		unlink(tmp);
		goto out;
	}
	if (map_db_fsync_path(tmp, why) < 0) {
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, file) < 0) {
		strbuf_printf(why, "rename %s to %s: %s", tmp, file,
			      strerror(errno));
		unlink(tmp);
		goto out;
	}
	dircopy = xstrdup(file);
	status = map_db_fsync_path(dirname(dircopy), why);
	xfree(dircopy);
out:
	xfree(file);
	xfree(tmp);
	return (status);
}

/* map_hash_build - build a DB_HASH file */
static int
map_hash_build(const char *path, struct strbuf *why)
{
	return (map_db_build_type(path, DB_HASH, why));
}

/* map_btree_build - build a DB_BTREE file */
static int
map_btree_build(const char *path, struct strbuf *why)
{
	return (map_db_build_type(path, DB_BTREE, why));
}

const struct map_ops map_hash_ops = {
	"hash", 1, map_hash_open, map_db_lookup, map_db_close, map_hash_build,
};

const struct map_ops map_btree_ops = {
	"btree", 1, map_btree_open, map_db_lookup, map_db_close,
	map_btree_build,
};
