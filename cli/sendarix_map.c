/*
 * sendarix_map - the "sendarix map" command
 *
 * SYNOPSIS
 *	sendarix map build type:/path...
 *	sendarix map query type:name key...
 *	sendarix map query type:name -
 *
 * DESCRIPTION
 *	"build" makes the file behind each hash: or btree: table: the text
 *	file /path ("key value" lines) becomes /path.db, replaced atomically.
 *
 *	"query" looks keys up in any table type, exactly as the daemons do
 *	(keys folded to lower case for inline, texthash, hash and btree).
 *	With one key it prints only the value; with several it prints
 *	"key<TAB>value" for each key found. With "-" it reads one key per
 *	line from standard input and prints "key<TAB>value" for each key
 *	found. Keys not found print nothing.
 *
 * DIAGNOSTICS
 *	Exit status: 0 when everything was built or every key found; 1 when
 *	a build failed, the table spec is bad, or a key was not found; 2 on
 *	a usage error; 75 (EX_TEMPFAIL) when the table cannot answer (file
 *	missing or malformed; the reason is on standard error).
 *
 * SEE ALSO
 *	sendarix(1), map(3)
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "sendarix.h"

#define SENDARIX_MAP_TEMPFAIL	75	/* EX_TEMPFAIL */
#define SENDARIX_MAP_KEYMAX	4096

/* sendarix_map_usage - the synopsis, on standard error */
static int
sendarix_map_usage(void)
{
	fprintf(stderr,
		"usage: sendarix map build type:/path...\n"
		"       sendarix map query type:name key...\n"
		"       sendarix map query type:name -   (keys on stdin)\n");
	return (2);
}

/* sendarix_map_build - build one or more tables */
static int
sendarix_map_build(int argc, char **argv)
{
	struct strbuf *err = strbuf_new(256, 0);
	int     status = 0;
	int     i;

	for (i = 0; i < argc; i++) {
		if (map_build(argv[i], err) < 0) {
			cli_error("build %s: %s", argv[i], STRBUF_STR(err));
			status = 1;
		}
	}
	strbuf_free(err);
	return (status);
}

/* sendarix_map_one - look up one key; print the way the caller wants */
static int
sendarix_map_one(struct map *map, const char *key, int with_key)
{
	const char *result;

	switch (map_lookup(map, key, &result)) {
	case MAP_FOUND:
		if (with_key)
			printf("%s\t%s\n", key, result);
		else
			printf("%s\n", result);
		return (0);
	case MAP_NOTFOUND:
		return (1);
	default:
		fflush(stdout);
		cli_error("table %s: lookup of \"%s\" failed; try again later",
			  map_spec(map), key);
		return (SENDARIX_MAP_TEMPFAIL);
	}
}

/* sendarix_map_stdin - one key per line from standard input */
static int
sendarix_map_stdin(struct map *map)
{
	char    line[SENDARIX_MAP_KEYMAX];
	size_t  len;
	int     status = 0;
	int     ret;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		len = strcspn(line, "\r\n");
		if (line[len] == 0 && !feof(stdin)) {
			cli_error("key longer than %d bytes",
				  SENDARIX_MAP_KEYMAX - 2);
			return (1);
		}
		line[len] = 0;
		if (len == 0)
			continue;
		ret = sendarix_map_one(map, line, 1);
		if (ret == SENDARIX_MAP_TEMPFAIL)
			return (ret);
		if (ret)
			status = 1;
	}
	if (ferror(stdin)) {
		cli_error("read standard input: %s", strerror(errno));
		return (1);
	}
	return (status);
}

/* sendarix_map_query - look keys up */
static int
sendarix_map_query(int argc, char **argv)
{
	struct strbuf *err = strbuf_new(256, 0);
	struct map *map;
	int     status = 0;
	int     ret;
	int     i;

	if ((map = map_open(argv[0], err)) == NULL) {
		cli_error("%s", STRBUF_STR(err));
		strbuf_free(err);
		return (1);
	}
	strbuf_free(err);
	if (argc == 2 && strcmp(argv[1], "-") == 0) {
		status = sendarix_map_stdin(map);
	} else {
		for (i = 1; i < argc; i++) {
			ret = sendarix_map_one(map, argv[i], argc > 2);
			if (ret == SENDARIX_MAP_TEMPFAIL) {
				status = ret;
				break;
			}
			if (ret)
				status = 1;
		}
	}
	map_close(map);
	fflush(stdout);
	return (status);
}

/* sendarix_map_main - "sendarix map build|query ..." */
int
sendarix_map_main(int argc, char **argv)
{
	if (argc < 3)
		return (sendarix_map_usage());
	if (strcmp(argv[1], "build") == 0)
		return (sendarix_map_build(argc - 2, argv + 2));
	if (strcmp(argv[1], "query") == 0 && argc >= 4)
		return (sendarix_map_query(argc - 2, argv + 2));
	return (sendarix_map_usage());
}
