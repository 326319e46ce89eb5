/*
 * The SQLite dialect of the core's statements in PostgreSQL's terms: one
 * pass over a statement's text when it is prepared (db_pg.c), no libpq.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "db_pg_i.h"

/* ---- the dialect ----------------------------------------------------- */

static int is_word(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_';
}

static int word_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(w, name, n);
}

/* Past spaces. */
static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	return p;
}

/* Past a quoted literal or identifier starting at p (SQL's doubling). */
static const char *skip_quoted(const char *p)
{
	char q = *p++;

	while (*p) {
		if (*p == q && p[1] == q)
			p += 2;
		else if (*p == q)
			return p + 1;
		else
			p++;
	}
	return p;
}

/* Whether the call whose '(' is at p has a comma at its own level. */
static int has_two_args(const char *p)
{
	int depth = 0;

	for (; *p; p++) {
		if (*p == '\'' || *p == '"') {
			p = skip_quoted(p) - 1;
			continue;
		}
		if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return 0;
		else if (*p == ',' && depth == 1)
			return 1;
	}
	return 0;
}

/* Where " RETURNING" starts at the top level of out, or its end. */
static size_t returning_at(const char *out, size_t n)
{
	size_t i;

	for (i = 0; i + 10 <= n; i++)
		if (!strncasecmp(out + i, " RETURNING", 10) &&
		    (i + 10 == n || !is_word(out[i + 10])))
			return i;
	return n;
}

/*
 * Whether a '+' written after out[0, o) is a unary one: it follows an
 * opening parenthesis, a comma, an operator or a keyword that starts a
 * term (the last word written ends out, but for spaces).
 */
static int unary_plus(const char *out, size_t o, size_t last_word,
		      size_t last_len)
{
	static const char *const kw[] = { "AND",  "OR",	  "NOT",  "WHERE", "ON",
					  "WHEN", "THEN", "ELSE", "SELECT" };
	size_t i;

	while (o > 0 && out[o - 1] == ' ')
		o--;
	if (o == 0 || strchr("(,=<>", out[o - 1]))
		return 1;
	if (last_word + last_len != o)
		return 0;
	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (word_is(out + last_word, last_len, kw[i]))
			return 1;
	return 0;
}

/*
 * One pass over the text, a token at a time. The function is long on
 * purpose: every branch reads and moves the same state (the output and
 * its length, the parenthesis depth, the ORDER BY list's current item,
 * the last word written), and each branch is a rule of a few lines;
 * split, each rule would take that state as six pointers or a struct and
 * the rules would no longer read as one list.
 */
char *sfsi_pg_rewrite(const char *sql, int *nparams)
{
	static const char conflict[] = " ON CONFLICT DO NOTHING";
	size_t cap = strlen(sql) * 4 + sizeof(conflict) + 64, o = 0, at;
	size_t last_word = 0, last_len = 0, item = 0;
	char *out = malloc(cap);
	const char *p = sql, *w;
	int max = 0, ignore = 0, depth = 0, order = -1;

	if (!out)
		return NULL;
#define PUT(s_, n_)                                                            \
	do {                                                                   \
		memcpy(out + o, (s_), (n_));                                   \
		o += (n_);                                                     \
	} while (0)
#define PUTS(s_) PUT((s_), strlen(s_))
	while (*p) {
		if (*p == '\'' || *p == '"') {
			w = skip_quoted(p);
			PUT(p, (size_t)(w - p));
			p = w;
		} else if (*p == '?') {
			char num[16];
			long v;

			p++;
			if (*p >= '0' && *p <= '9') {
				v = strtol(p, (char **)&w, 10);
				p = w;
			} else {
				v = max + 1;
			}
			if (v > max)
				max = (int)v;
			snprintf(num, sizeof(num), "$%ld", v);
			PUTS(num);
		} else if (is_word(*p) && (p == sql || !is_word(p[-1]))) {
			size_t n;

			w = p;
			while (is_word(*p))
				p++;
			n = (size_t)(p - w);
			if (word_is(w, n, "user") &&
			    (w == sql || w[-1] != '.')) {
				PUTS("\"user\"");
			} else if (word_is(w, n, "LIKE")) {
				/* ASCII case folding, as SQLite's LIKE */
				if (last_len == 3 &&
				    !strncasecmp(out + last_word, "NOT", 3)) {
					o = last_word;
					PUTS("COLLATE \"C\" NOT ILIKE");
				} else {
					PUTS("COLLATE \"C\" ILIKE");
				}
			} else if (word_is(w, n, "INSERT") &&
				   !strncasecmp(skip_ws(p), "OR", 2) &&
				   !strncasecmp(skip_ws(skip_ws(p) + 2),
						"IGNORE", 6)) {
				PUTS("INSERT");
				p = skip_ws(skip_ws(p) + 2) + 6;
				ignore = 1;
			} else if ((word_is(w, n, "max") ||
				    word_is(w, n, "min")) &&
				   *skip_ws(p) == '(' &&
				   has_two_args(skip_ws(p))) {
				PUTS(tolower((unsigned char)w[1]) == 'a'
					     ? "greatest"
					     : "least");
			} else if (word_is(w, n, "group_concat")) {
				PUTS("string_agg");
			} else if (word_is(w, n, "char") &&
				   *skip_ws(p) == '(') {
				PUTS("chr");
			} else if (word_is(w, n, "ifnull")) {
				PUTS("coalesce");
			} else if (word_is(w, n, "INTEGER")) {
				PUTS("bigint");
			} else if (word_is(w, n, "BY") && last_len == 5 &&
				   !strncasecmp(out + last_word, "ORDER", 5)) {
				PUTS("BY");
				order = depth;
				item = o;
			} else if (word_is(w, n, "COLLATE") && order == depth &&
				   !strncasecmp(skip_ws(p), "NOCASE", 6) &&
				   !is_word(skip_ws(p)[6])) {
				/*
				 * Sorted as SQLite's NOCASE sorts: bytes
				 * with ASCII letters folded (the ICU
				 * collation orders punctuation otherwise)
				 */
				while (item < o && out[item] == ' ')
					item++;
				memmove(out + item + 6, out + item, o - item);
				memcpy(out + item, "lower(", 6);
				o += 6;
				PUTS("COLLATE \"C\")");
				p = skip_ws(p) + 6;
			} else if (word_is(w, n, "COLLATE") &&
				   !strncasecmp(skip_ws(p), "BINARY", 6) &&
				   !is_word(skip_ws(p)[6])) {
				/* SQLite's bytewise comparison */
				PUTS("COLLATE \"C\"");
				p = skip_ws(p) + 6;
			} else if (order == depth && (word_is(w, n, "LIMIT") ||
						      word_is(w, n, "OFFSET") ||
						      word_is(w, n, "UNION"))) {
				order = -1;
				PUT(w, n);
			} else {
				PUT(w, n);
			}
			/* the word just written, for NOT LIKE */
			last_word = o;
			while (last_word > 0 && is_word(out[last_word - 1]))
				last_word--;
			last_len = o - last_word;
			continue;
		} else if (*p == '+' &&
			   unary_plus(out, o, last_word, last_len) &&
			   (is_word(p[1]) && !(p[1] >= '0' && p[1] <= '9'))) {
			/* SQLite's "keep this term off the indexes" (+col):
			 * PostgreSQL plans by statistics, and a unary plus
			 * exists there for numbers only */
			p++;
		} else {
			if (*p == '(')
				depth++;
			if (*p == ')' && order == depth--)
				order = -1;
			out[o++] = *p++;
			if (p[-1] == ',' && order == depth)
				item = o;
		}
	}
	if (ignore) {
		at = returning_at(out, o);
		memmove(out + at + strlen(conflict), out + at, o - at);
		memcpy(out + at, conflict, strlen(conflict));
		o += strlen(conflict);
	}
	out[o] = '\0';
#undef PUT
#undef PUTS
	*nparams = max;
	return out;
}

int sfsi_pg_binds_pattern(const char *pgsql)
{
	const char *p = pgsql;

	while (*p) {
		if (*p == '\'' || *p == '"') {
			p = skip_quoted(p);
		} else if (!strncmp(p, "ILIKE", 5) &&
			   (p == pgsql || !is_word(p[-1])) && !is_word(p[5])) {
			p += 5;
			if (*skip_ws(p) == '$')
				return 1;
		} else {
			p++;
		}
	}
	return 0;
}

int sfsi_pg_first_word_is(const char *sql, const char *w)
{
	sql = skip_ws(sql);
	return !strncasecmp(sql, w, strlen(w)) && !is_word(sql[strlen(w)]);
}
