/*
 * map_pcre - the pcre: table type (PCRE2, 8-bit)
 *
 * SYNOPSIS
 *	pcre:/path/to/file
 *
 *	/regex/flags	result
 *	!/regex/flags	result
 *	if /regex/flags
 *	...
 *	endif
 *
 * DESCRIPTION
 *	Rules are tried in file order and the first that matches wins. The
 *	key is matched as given (not folded). The pattern is delimited by
 *	its first character (usually '/'; a delimiter inside the pattern is
 *	written with a backslash). "!/re/" matches when re does not.
 *	Rules between "if /re/" and its "endif" are tried only when the key
 *	matches re (or does not, for "if !/re/"); if blocks nest.
 *
 *	Flags, as in Postfix: matching is case-insensitive by default and
 *	"i" keeps it so; C makes the pattern case-sensitive (Postfix's "i"
 *	toggle is not copied: "/re/i" means caseless here, as it does in
 *	Perl); m multi-line, s dot matches newline, x extended, A anchored,
 *	E dollar matches only at the end, U ungreedy, X accepted and
 *	ignored.
 *
 *	In the result, $1 or ${1} is the text of capture group 1 (empty when
 *	the group took no part in the match) and $$ is a dollar sign; a
 *	negated rule's result is used as written. Results are built in
 *	memory the map owns. Reached only through map_open() (map_impl.h).
 *
 * DIAGNOSTICS
 *	A missing file, a bad regular expression, an unknown flag, a rule
 *	without a result, a bad $ reference or unbalanced if/endif leaves
 *	the table unopened (map_open() logs the file and line; every lookup
 *	answers MAP_RETRY). A match error (such as the match limit) is
 *	logged and the rule treated as not matching, as in Postfix.
 *
 * SEE ALSO
 *	map(3), pcre2pattern(3)
 */

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "log.h"
#include "strbuf.h"
#include "xmalloc.h"
#include "map.h"
#include "map_impl.h"

#define MAP_PCRE_MATCH	1
#define MAP_PCRE_IF	2
#define MAP_PCRE_ENDIF	3

struct map_pcre_rule {
	int     kind;
	int     negate;
	int     lineno;
	pcre2_code *re;
	char   *result;			/* MAP_PCRE_MATCH */
	size_t  endif;			/* MAP_PCRE_IF: index of its endif */
};

struct map_pcre {
	struct map_pcre_rule *rules;
	size_t  count;
	pcre2_match_data *md;
	uint32_t maxcap;
};

/* map_pcre_subst - expand $n in a result (out NULL: only check it) */
static int
map_pcre_subst(const char *text, const char *subject, PCRE2_SIZE *ov,
	       int rc, uint32_t ncap, struct strbuf *out, struct strbuf *why)
{
	const char *p = text;
	unsigned long n;
	int     brace;

	for (; *p; p++) {
		if (*p != '$') {
			if (out)
				strbuf_appendc(out, *p);
			continue;
		}
		p++;
		if (*p == '$') {
			if (out)
				strbuf_appendc(out, '$');
			continue;
		}
		brace = (*p == '{');
		if (brace)
			p++;
		if (!isdigit((unsigned char) *p)) {
			if (why)
				strbuf_printf(why, "bad '$' in result \"%s\": "
					      "expected $n, ${n} or $$", text);
			return (-1);
		}
		for (n = 0; isdigit((unsigned char) *p); p++)
			if ((n = n * 10 + (unsigned long) (*p - '0')) > 65535)
				break;
		if (brace && *p != '}') {
			if (why)
				strbuf_printf(why, "missing '}' in result "
					      "\"%s\"", text);
			return (-1);
		}
		if (!brace)
			p--;
		if (n > ncap) {
			if (why)
				strbuf_printf(why, "result \"%s\" refers to "
					      "group %lu, the pattern has %u",
					      text, n, (unsigned) ncap);
			return (-1);
		}
		if (out && (int) n < rc && ov[2 * n] != PCRE2_UNSET)
			strbuf_append(out, subject + ov[2 * n],
				      ov[2 * n + 1] - ov[2 * n]);
	}
	return (0);
}

/* map_pcre_pattern - parse "[!]/re/flags", compile it; advance *pp */
static int
map_pcre_pattern(char **pp, struct map_pcre_rule *rule, const char *path,
		 int lineno, struct strbuf *why)
{
	char   *p = *pp;
	char   *start;
	char    delim;
	uint32_t opts = PCRE2_CASELESS;
	int     errcode;
	PCRE2_SIZE erroff;
	char    msg[256];

	if (*p == '!') {
		rule->negate = 1;
		p++;
	}
	delim = *p;
	if (delim == 0 || isalnum((unsigned char) delim)
	    || isspace((unsigned char) delim) || delim == '\\') {
		strbuf_printf(why, "%s, line %d: expected /pattern/ at \"%s\"",
			      path, lineno, *pp);
		return (-1);
	}
	for (start = ++p; *p && *p != delim; p++)
		if (*p == '\\' && p[1])
			p++;
	if (*p != delim) {
		strbuf_printf(why, "%s, line %d: missing closing '%c' in "
			      "pattern", path, lineno, delim);
		return (-1);
	}
	*p++ = 0;
	for (; *p && !isspace((unsigned char) *p); p++) {
		switch (*p) {
		case 'i':
			opts |= PCRE2_CASELESS;
			break;
		case 'C':
			opts &= ~PCRE2_CASELESS;
			break;
		case 'm':
			opts |= PCRE2_MULTILINE;
			break;
		case 's':
			opts |= PCRE2_DOTALL;
			break;
		case 'x':
			opts |= PCRE2_EXTENDED;
			break;
		case 'A':
			opts |= PCRE2_ANCHORED;
			break;
		case 'E':
			opts |= PCRE2_DOLLAR_ENDONLY;
			break;
		case 'U':
			opts |= PCRE2_UNGREEDY;
			break;
		case 'X':
			break;
		default:
			strbuf_printf(why, "%s, line %d: unknown flag '%c' "
				      "after pattern", path, lineno, *p);
			return (-1);
		}
	}
	rule->re = pcre2_compile((PCRE2_SPTR) start, PCRE2_ZERO_TERMINATED,
				 opts, &errcode, &erroff, NULL);
	if (rule->re == NULL) {
		pcre2_get_error_message(errcode, (PCRE2_UCHAR *) msg,
					sizeof(msg));
		strbuf_printf(why, "%s, line %d: bad regular expression "
			      "/%s/: %s at offset %lu", path, lineno, start,
			      msg, (unsigned long) erroff);
		return (-1);
	}
	(void) pcre2_jit_compile(rule->re, PCRE2_JIT_COMPLETE);
	while (*p && isspace((unsigned char) *p))
		p++;
	*pp = p;
	return (0);
}

/* map_pcre_keyword - does the line start with this word? */
static char *
map_pcre_keyword(char *line, const char *word)
{
	size_t  len = strlen(word);

	if (strncasecmp(line, word, len) != 0)
		return (NULL);
	if (line[len] != 0 && !isspace((unsigned char) line[len]))
		return (NULL);
	line += len;
	while (*line && isspace((unsigned char) *line))
		line++;
	return (line);
}

/* map_pcre_parse - one logical line into one rule */
static int
map_pcre_parse(struct map_pcre *mp, char *line, const char *path,
	       int lineno, struct strbuf *why)
{
	struct map_pcre_rule *rule;
	char   *p;
	uint32_t ncap = 0;

	mp->rules = xreallocarray(mp->rules, mp->count + 1,
				  sizeof(*mp->rules));
	rule = &mp->rules[mp->count++];
	memset(rule, 0, sizeof(*rule));
	rule->lineno = lineno;
	if ((p = map_pcre_keyword(line, "endif")) != NULL) {
		rule->kind = MAP_PCRE_ENDIF;
		if (*p) {
			strbuf_printf(why, "%s, line %d: text after endif",
				      path, lineno);
			return (-1);
		}
		return (0);
	}
	if ((p = map_pcre_keyword(line, "if")) != NULL) {
		rule->kind = MAP_PCRE_IF;
		if (map_pcre_pattern(&p, rule, path, lineno, why) < 0)
			return (-1);
		if (*p) {
			strbuf_printf(why, "%s, line %d: text after "
				      "if /pattern/", path, lineno);
			return (-1);
		}
	} else {
		rule->kind = MAP_PCRE_MATCH;
		p = line;
		if (map_pcre_pattern(&p, rule, path, lineno, why) < 0)
			return (-1);
		if (*p == 0) {
			strbuf_printf(why, "%s, line %d: no result after "
				      "the pattern", path, lineno);
			return (-1);
		}
		rule->result = xstrdup(p);
		if (!rule->negate) {
			struct strbuf *tmp = strbuf_new(128, 0);
			int     bad;

			pcre2_pattern_info(rule->re, PCRE2_INFO_CAPTURECOUNT,
					   &ncap);
			bad = map_pcre_subst(p, NULL, NULL, 0, ncap, NULL, tmp);
			if (bad)
				strbuf_printf(why, "%s, line %d: %s", path,
					      lineno, STRBUF_STR(tmp));
			strbuf_free(tmp);
			if (bad)
				return (-1);
		}
	}
	pcre2_pattern_info(rule->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
	if (ncap > mp->maxcap)
		mp->maxcap = ncap;
	return (0);
}

/* map_pcre_nest - pair each if with its endif */
static int
map_pcre_nest(struct map_pcre *mp, const char *path, struct strbuf *why)
{
	size_t *stack = xcalloc(mp->count + 1, sizeof(size_t));
	size_t  depth = 0;
	size_t  i;
	int     ret = 0;

	for (i = 0; i < mp->count; i++) {
		if (mp->rules[i].kind == MAP_PCRE_IF) {
			stack[depth++] = i;
		} else if (mp->rules[i].kind == MAP_PCRE_ENDIF) {
			if (depth == 0) {
				strbuf_printf(why, "%s, line %d: endif "
					      "without if", path,
					      mp->rules[i].lineno);
				ret = -1;
				break;
			}
			mp->rules[stack[--depth]].endif = i;
		}
	}
	if (ret == 0 && depth > 0) {
		strbuf_printf(why, "%s, line %d: if without endif", path,
			      mp->rules[stack[depth - 1]].lineno);
		ret = -1;
	}
	xfree(stack);
	return (ret);
}

/* map_pcre_open - read and compile the rules */
static int
map_pcre_open(struct map *map, const char *path, struct strbuf *why)
{
	struct map_pcre *mp = xcalloc(1, sizeof(*mp));
	struct map_text mt;
	struct strbuf *line;
	int     lineno = 0;
	int     ret;

	map->priv = mp;
	if (*path == 0) {
		strbuf_sets(why, "no file name");
		return (-1);
	}
	if (map_text_open(&mt, path, why) < 0)
		return (-1);
	line = strbuf_new(128, MAP_TEXT_LINE_MAX);
	while ((ret = map_text_next(&mt, line, &lineno, why)) > 0)
		if ((ret = map_pcre_parse(mp, STRBUF_STR(line), path, lineno,
					  why)) < 0)
			break;
	strbuf_free(line);
	map_text_close(&mt);
	if (ret < 0 || map_pcre_nest(mp, path, why) < 0)
		return (-1);
	mp->md = pcre2_match_data_create(mp->maxcap + 1, NULL);
	return (0);
}

/* map_pcre_lookup - first matching rule wins */
static int
map_pcre_lookup(struct map *map, const char *key, const char **result)
{
	struct map_pcre *mp = map->priv;
	struct map_pcre_rule *rule;
	size_t  len = strlen(key);
	size_t  i = 0;
	int     rc;
	int     matched;
	char    msg[128];

	while (i < mp->count) {
		rule = &mp->rules[i];
		if (rule->kind == MAP_PCRE_ENDIF) {
			i++;
			continue;
		}
		rc = pcre2_match(rule->re, (PCRE2_SPTR) key, len, 0, 0,
				 mp->md, NULL);
		if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
			pcre2_get_error_message(rc, (PCRE2_UCHAR *) msg,
						sizeof(msg));
			log_warn("%s, line %d: matching \"%.100s\": %s",
				 map->name, rule->lineno, key, msg);
		}
		matched = (rc >= 0) != rule->negate;
		if (rule->kind == MAP_PCRE_IF) {
			i = matched ? i + 1 : rule->endif + 1;
			continue;
		}
		if (matched) {
			strbuf_reset(map->result);
			if (rule->negate) {
				strbuf_sets(map->result, rule->result);
			} else {
				PCRE2_SIZE *ov;

				ov = pcre2_get_ovector_pointer(mp->md);
				map_pcre_subst(rule->result, key, ov, rc,
					       mp->maxcap, map->result, NULL);
			}
			*result = STRBUF_STR(map->result);
			return (MAP_FOUND);
		}
		i++;
	}
	return (MAP_NOTFOUND);
}

/* map_pcre_close - release the rules */
static void
map_pcre_close(struct map *map)
{
	struct map_pcre *mp = map->priv;
	size_t  i;

	if (mp == NULL)
		return;
	for (i = 0; i < mp->count; i++) {
		if (mp->rules[i].re)
			pcre2_code_free(mp->rules[i].re);
		xfree(mp->rules[i].result);
	}
	xfree(mp->rules);
	if (mp->md)
		pcre2_match_data_free(mp->md);
	map->priv = xfree(mp);
}

const struct map_ops map_pcre_ops = {
	"pcre", 0, map_pcre_open, map_pcre_lookup, map_pcre_close, NULL,
};
