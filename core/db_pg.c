/*
 * PostgreSQL behind the core (libpq): connections, the SQLite-dialect
 * statements of the core rewritten once per connection and prepared by
 * name, results, transactions, and the schema with its versions.
 *
 * Writers are serialised as SQLite serialises them (BEGIN IMMEDIATE): a
 * write transaction takes a transaction-scoped advisory lock of the
 * store first, and a write outside a transaction runs in a short one
 * that takes it too. So every read-check-write of the core keeps the
 * meaning it has on SQLite, across processes and machines. Reading
 * transactions see one snapshot (REPEATABLE READ) and take no lock.
 */
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "db_i.h"
#include "db_pg_i.h"
#include "store_i.h"
#include "speechfs/log.h"
#include "util_i.h"

/* type OIDs (pg_type.h is the server's header) */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

/* the schema version a PostgreSQL store starts at (see pg_migrations) */
#define PG_SCHEMA_BASE 6

struct pgconn {
	PGconn *c;
	unsigned gen; /* bumped when reconnected: statements prepare again */
	unsigned next_name;
	int txn;
	/*
	 * A read transaction's BEGIN not sent yet: it goes in one round trip
	 * with the transaction's first statement (a pipeline), and a
	 * transaction that ran nothing costs none. A REPEATABLE READ
	 * transaction takes its snapshot at its first statement all the
	 * same.
	 */
	int begin_pending;
	/* a ROLLBACK sent and not waited for: read before the next command */
	int unsettled;
	int changes;
	int wrote; /* a write committed since sfsi_pg_take_wrote */
	int txn_wrote;
	int64_t last_id;
	int64_t origin;	       /* the store handle's (speechfs.origin) */
	const int64_t *domain; /* the store's generations', or NULL */
	int notify_jobs;       /* jobs queued in this transaction */
	int notify_auth;       /* credentials changed in this transaction */
	char begin_write[128];
	char channel[40]; /* the store's LISTEN/NOTIFY channel */
	char setup[256];  /* the session's settings, again after a reconnect */
};

struct pgstmt {
	struct pgconn *c;
	char *text; /* PostgreSQL's */
	char name[16];
	unsigned gen; /* connection generation it was prepared in; 0: not */
	int write;
	int np;
	char **val;
	int *len, *fmt;
	unsigned *type;
	PGresult *res;
	int row, nrows;
	/* a bytea column of the current row, decoded */
	unsigned char **dec;
	size_t *declen;
	int ndec;
};

/* ---- errors ---------------------------------------------------------- */

static enum sfs_status res_status(struct pgconn *c, const PGresult *r,
				  struct sfs_err *e, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->c);

	if (!state)
		state = "";
	if (!strncmp(state, "23", 2)) {
		sfs_debug("db", "%s: %s", what, msg);
		return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
				"conflicting change");
	}
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
	    !strcmp(state, "55P03") || !strcmp(state, "57014")) {
		sfs_warn("db", "%s: database busy: %s", what, msg);
		return sfs_errf(e, SFS_BUSY, SFS_R_NONE,
				"the store is busy, try again");
	}
	if (!strcmp(state, "53100")) {
		sfs_error("db", "%s: disk full", what);
		return sfs_errf(e, SFS_NO_SPACE, SFS_R_NONE,
				"no space left on the store's disk");
	}
	/* text that is not UTF-8 (no stored name or tag can be) */
	if (!strcmp(state, "22021")) {
		sfs_debug("db", "%s: %s", what, msg);
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"text is not valid UTF-8");
	}
	if (!strcmp(state, "53200"))
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	sfs_error("db", "%s: %s%s", what, state, msg);
	return sfs_errf(e, SFS_IO, SFS_R_NONE, "internal database error");
}

/* The session made again (its prepared statements with it). */
static void reset_conn(struct pgconn *c)
{
	PQreset(c->c);
	/* a new session: its search_path and the store's origin again */
	if (PQstatus(c->c) == CONNECTION_OK)
		PQclear(PQexec(c->c, c->setup));
	c->gen++;
	c->txn = 0;
	c->begin_pending = 0;
	c->unsettled = 0;
	c->notify_jobs = 0;
	c->notify_auth = 0;
}

/* A lost connection is made again. */
static void check_conn(struct pgconn *c)
{
	if (PQstatus(c->c) == CONNECTION_OK)
		return;
	sfs_warn("db", "connection lost, reconnecting");
	reset_conn(c);
}

/* Read the answer to what was sent without waiting (a ROLLBACK). */
static void settle(struct pgconn *c)
{
	PGresult *r;

	if (!c->unsettled)
		return;
	c->unsettled = 0;
	while ((r = PQgetResult(c->c)))
		PQclear(r);
}

static void notice(void *arg, const char *msg)
{
	(void)arg;
	sfs_debug("db", "%s", msg);
}

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

/* ---- schema ---------------------------------------------------------- */

/* Text compares bytewise, as SQLite's BINARY does. */
#define T "text COLLATE \"C\""
#define ID "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
#define I "bigint"

/*
 * The schema of SQLite's version 6 in PostgreSQL's terms. The change
 * feed's triggers are PL/pgSQL; name search uses pg_trgm's GIN indexes
 * (FTS5's table and triggers have no counterpart); COLLATE NOCASE is the
 * ICU collation `nocase` for equality (it folds case beyond ASCII, as
 * SQLite's does not), and lower(x COLLATE "C") for order (the rewrite of
 * ORDER BY … COLLATE NOCASE: ICU would order punctuation otherwise); the
 * origin of a change comes from the session's setting.
 */
static const char pg_schema_v6[] =
	"CREATE TABLE setting(key " T " PRIMARY KEY, value " T " NOT NULL);"
	"CREATE TABLE tenant(id " ID ", uuid " T " NOT NULL UNIQUE,"
	" name " T " NOT NULL,"
	" max_bytes " I " NOT NULL DEFAULT 0,"
	" max_files " I " NOT NULL DEFAULT 0,"
	" used_bytes " I " NOT NULL DEFAULT 0,"
	" used_files " I " NOT NULL DEFAULT 0,"
	" created_at " I " NOT NULL);"
	"CREATE TABLE \"user\"(id " ID ", uuid " T " NOT NULL UNIQUE,"
	" tenant_id " I " NOT NULL REFERENCES tenant(id),"
	" name " T " NOT NULL,"
	" download_bps " I " NOT NULL DEFAULT -1,"
	" created_at " I " NOT NULL);"
	"CREATE INDEX user_tenant ON \"user\"(tenant_id);"
	"CREATE UNIQUE INDEX user_tenant_name ON \"user\"(tenant_id,"
	" name COLLATE nocase);"
	"CREATE TABLE api_key(id " ID ", uuid " T " NOT NULL UNIQUE,"
	" user_id " I " NOT NULL REFERENCES \"user\"(id),"
	" hash bytea NOT NULL UNIQUE, scopes " I " NOT NULL, label " T ","
	" created_at " I " NOT NULL, revoked_at " I ", last_used_at " I ");"
	"CREATE TABLE blob("
	" tenant_id " I " NOT NULL REFERENCES tenant(id),"
	" sha256 " T " NOT NULL, size " I " NOT NULL,"
	" refs " I " NOT NULL, created_at " I " NOT NULL, data bytea,"
	" PRIMARY KEY(tenant_id, sha256));"
	"CREATE TABLE file(id " ID ", uuid " T " NOT NULL UNIQUE,"
	" tenant_id " I " NOT NULL REFERENCES tenant(id),"
	" owner_id " I " NOT NULL REFERENCES \"user\"(id),"
	" name " T " NOT NULL, filename " T ", description " T ","
	" dir " T " NOT NULL, metadata " T ", mime " T ", source_uri " T ","
	" ingest_error " T ","
	" size " I ", duration double precision, sha256 " T ","
	" blob_ref " I " NOT NULL DEFAULT 0,"
	" ingestion " I " NOT NULL DEFAULT 0,"
	" is_deleted " I " NOT NULL DEFAULT 0,"
	" is_purged " I " NOT NULL DEFAULT 0,"
	" is_discarded " I " NOT NULL DEFAULT 0,"
	" created_at " I " NOT NULL, deleted_at " I ","
	" purged_at " I ", purge_at " I ", discarded_at " I ","
	" publish " I " NOT NULL DEFAULT 0, published_at " I ","
	" want_la " I " NOT NULL DEFAULT 0,"
	" la_status " I " NOT NULL DEFAULT 0, la_size " I ","
	" la_sha256 " T ", la_blob_ref " I " NOT NULL DEFAULT 0,"
	" la_created_at " I ","
	" la_deleted " I " NOT NULL DEFAULT 0,"
	" la_purged " I " NOT NULL DEFAULT 0,"
	" la_deleted_at " I ", la_purged_at " I ", la_purge_at " I ","
	" la_error " T ","
	" mtime_ns " I " NOT NULL, ctime_ns " I " NOT NULL,"
	" entry_suffix " I " NOT NULL DEFAULT 0, atime_ns " I ");"
	/* id last, as SQLite's rowid ends each of its indexes: the pages'
	 * order (created_at, id) is read from the index, not sorted */
	"CREATE INDEX file_dir ON file(owner_id, is_deleted, dir, created_at,"
	" id);"
	"CREATE INDEX file_created ON file(owner_id, is_deleted, created_at,"
	" id);"
	"CREATE INDEX file_dir_name ON file(owner_id, is_deleted, dir,"
	" lower(name COLLATE \"C\"));"
	"CREATE INDEX file_sha ON file(owner_id, sha256);"
	"CREATE INDEX file_internal ON file(tenant_id, created_at)"
	" WHERE publish = 1 AND is_deleted = 0;"
	"CREATE INDEX file_purge ON file(purge_at)"
	" WHERE is_deleted = 1 AND is_purged = 0;"
	"CREATE INDEX file_la_purge ON file(la_purge_at)"
	" WHERE la_deleted = 1 AND la_purged = 0;"
	"CREATE INDEX file_blob ON file(tenant_id, sha256) WHERE blob_ref = 1;"
	"CREATE INDEX file_la_blob ON file(tenant_id, la_sha256)"
	" WHERE la_blob_ref = 1;"
	"CREATE INDEX file_name_trgm ON file USING gin (name gin_trgm_ops);"
	"CREATE INDEX file_filename_trgm ON file"
	" USING gin (filename gin_trgm_ops);"
	"CREATE TABLE tag(id " ID ","
	" tenant_id " I " NOT NULL REFERENCES tenant(id),"
	" name text NOT NULL COLLATE nocase, UNIQUE(tenant_id, name));"
	"CREATE TABLE file_tag("
	" file_id " I " NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" tag_id " I " NOT NULL REFERENCES tag(id),"
	" PRIMARY KEY(file_id, tag_id));"
	"CREATE INDEX file_tag_tag ON file_tag(tag_id, file_id);"
	"CREATE TABLE share(id " ID ", uuid " T " NOT NULL UNIQUE,"
	" file_id " I " NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" user_id " I " NOT NULL REFERENCES \"user\"(id),"
	" perm " I " NOT NULL, created_by " I " NOT NULL,"
	" created_at " I " NOT NULL, UNIQUE(file_id, user_id));"
	"CREATE INDEX share_user ON share(user_id, created_at);"
	"CREATE TABLE dir(id " ID ","
	" owner_id " I " NOT NULL REFERENCES \"user\"(id),"
	" path " T " NOT NULL, parent " T " NOT NULL,"
	" nfiles " I " NOT NULL DEFAULT 0,"
	" explicit " I " NOT NULL DEFAULT 0,"
	" mtime_ns " I " NOT NULL, UNIQUE(owner_id, path));"
	"CREATE INDEX dir_parent ON dir(owner_id, parent, path);"
	"CREATE TABLE xattr("
	" file_id " I " NOT NULL REFERENCES file(id) ON DELETE CASCADE,"
	" name " T " NOT NULL, value bytea NOT NULL,"
	" PRIMARY KEY(file_id, name));"
	"CREATE TABLE job(id " ID ", kind " I " NOT NULL,"
	" file_id " I " REFERENCES file(id) ON DELETE CASCADE,"
	" state " I " NOT NULL, attempts " I " NOT NULL DEFAULT 0,"
	" error " T ", payload " T ", lease_token " T ", lease_until " I ","
	" created_at " I " NOT NULL, started_at " I ","
	" finished_at " I ");"
	"CREATE INDEX job_runnable ON job(state, kind, id);"
	"CREATE INDEX job_file ON job(file_id);"
	"CREATE TABLE change(seq " ID ", owner_id " I ","
	" file_id " I ", dir " T ", at " I " NOT NULL,"
	" origin " I " DEFAULT nullif(current_setting('speechfs.origin',"
	" true), '')::bigint);"
	"CREATE TABLE peaks("
	" file_id " I " PRIMARY KEY REFERENCES file(id) ON DELETE CASCADE,"
	" la_sha256 " T " NOT NULL, sample_rate " I " NOT NULL,"
	" frames " I " NOT NULL, frames_per_peak " I " NOT NULL,"
	" data bytea NOT NULL);"
	"CREATE TABLE session(id " ID ", uuid " T " NOT NULL UNIQUE,"
	" hash bytea NOT NULL UNIQUE,"
	" key_id " I " NOT NULL REFERENCES api_key(id),"
	" created_at " I " NOT NULL, idle_until " I " NOT NULL,"
	" expires_at " I " NOT NULL, revoked_at " I ");"
	"CREATE INDEX session_expires ON session(expires_at);"
	/* SQLite's substr takes any integer; the core binds 64-bit ones */
	"CREATE FUNCTION substr(s text, i bigint) RETURNS text"
	" LANGUAGE sql IMMUTABLE AS"
	" 'SELECT pg_catalog.substr(s, i::integer)';"
	"CREATE FUNCTION substr(s text, i bigint, n bigint) RETURNS text"
	" LANGUAGE sql IMMUTABLE AS"
	" 'SELECT pg_catalog.substr(s, i::integer, n::integer)';"
	/* SQLite shifts by any integer; PostgreSQL by an int4 */
	"CREATE FUNCTION shr(a bigint, b bigint) RETURNS bigint"
	" LANGUAGE sql IMMUTABLE AS 'SELECT a >> b::integer';"
	"CREATE OPERATOR >> (LEFTARG = bigint, RIGHTARG = bigint,"
	" FUNCTION = shr);"
	/* the change feed */
	"CREATE FUNCTION change_file() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (NEW.owner_id, NEW.id, NEW.dir, NEW.ctime_ns);"
	" IF TG_OP = 'UPDATE' AND OLD.dir <> NEW.dir THEN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (OLD.owner_id, OLD.id, OLD.dir, NEW.ctime_ns);"
	" END IF; RETURN NULL; END $$;"
	"CREATE TRIGGER change_file AFTER INSERT OR UPDATE ON file"
	" FOR EACH ROW EXECUTE FUNCTION change_file();"
	"CREATE FUNCTION change_share() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN IF TG_OP = 'INSERT' THEN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (NEW.user_id, NEW.file_id, NULL, NEW.created_at);"
	" ELSE INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (OLD.user_id, OLD.file_id, NULL, OLD.created_at);"
	" END IF; RETURN NULL; END $$;"
	"CREATE TRIGGER change_share AFTER INSERT OR DELETE ON share"
	" FOR EACH ROW EXECUTE FUNCTION change_share();"
	"CREATE FUNCTION change_dir() RETURNS trigger LANGUAGE plpgsql AS $$"
	" BEGIN IF TG_OP = 'INSERT' THEN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (NEW.owner_id, 0, NEW.parent, NEW.mtime_ns);"
	" ELSIF TG_OP = 'UPDATE' THEN"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (OLD.owner_id, 0, OLD.parent, NEW.mtime_ns);"
	" INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (NEW.owner_id, 0, NEW.parent, NEW.mtime_ns);"
	" ELSE INSERT INTO change(owner_id, file_id, dir, at)"
	" VALUES (OLD.owner_id, 0, OLD.parent, OLD.mtime_ns);"
	" END IF; RETURN NULL; END $$;"
	"CREATE TRIGGER change_dir_ai AFTER INSERT OR DELETE ON dir"
	" FOR EACH ROW EXECUTE FUNCTION change_dir();"
	"CREATE TRIGGER change_dir_au AFTER UPDATE OF path ON dir"
	" FOR EACH ROW EXECUTE FUNCTION change_dir();";

#undef T
#undef ID
#undef I

/*
 * Forward migrations after PG_SCHEMA_BASE: pg_migrations[v - BASE] takes
 * a PostgreSQL store from v to v + 1, beside SQLite's migrations[v] (a
 * version without both does not build). The last entry is NULL.
 */
static const char *const pg_migrations[] = {
	/* 7: SQLite's schema_v7 (a file's tags carry its owner) */
	"ALTER TABLE file_tag ADD COLUMN owner_id bigint NOT NULL DEFAULT 0;"
	"UPDATE file_tag ft SET owner_id = f.owner_id FROM file f"
	" WHERE f.id = ft.file_id;"
	"CREATE INDEX file_tag_owner ON file_tag(owner_id, tag_id);",
	/* 8: SQLite's schema_v8 (names indexed in bulk): pg_trgm's indexes
	 * are kept by PostgreSQL's own commits, nothing to change */
	"DO $$ BEGIN END $$;",
	/* 9: SQLite's schema_v9 (each owner's files per tag, kept by a
	 * trigger in the writer's transaction; the counter's row is
	 * changed by an upsert, which stays exact between writers even
	 * without the store's write lock) */
	"CREATE TABLE IF NOT EXISTS tag_count(owner_id bigint NOT NULL,"
	" tag_id bigint NOT NULL, n bigint NOT NULL,"
	" PRIMARY KEY(owner_id, tag_id));"
	"DELETE FROM tag_count;"
	"INSERT INTO tag_count(owner_id, tag_id, n)"
	" SELECT owner_id, tag_id, COUNT(*) FROM file_tag"
	" GROUP BY owner_id, tag_id;"
	"CREATE OR REPLACE FUNCTION tag_count() RETURNS trigger"
	" LANGUAGE plpgsql AS $$ BEGIN"
	" IF TG_OP <> 'INSERT' THEN"
	" UPDATE tag_count SET n = n - 1"
	" WHERE owner_id = OLD.owner_id AND tag_id = OLD.tag_id;"
	" END IF;"
	" IF TG_OP <> 'DELETE' THEN"
	" INSERT INTO tag_count(owner_id, tag_id, n)"
	" VALUES (NEW.owner_id, NEW.tag_id, 1)"
	" ON CONFLICT(owner_id, tag_id) DO UPDATE"
	" SET n = tag_count.n + 1;"
	" END IF; RETURN NULL; END $$;"
	"DROP TRIGGER IF EXISTS tag_count ON file_tag;"
	"CREATE TRIGGER tag_count AFTER INSERT OR DELETE"
	" OR UPDATE OF owner_id, tag_id ON file_tag"
	" FOR EACH ROW EXECUTE FUNCTION tag_count();",
	/* 10: SQLite's schema_v10 (a file's tags carry its creationDate and
	 * deletion mark; the index of a one-tag listing's pages) */
	"ALTER TABLE file_tag ADD COLUMN created_at bigint NOT NULL DEFAULT 0,"
	" ADD COLUMN is_deleted bigint NOT NULL DEFAULT 0;"
	"UPDATE file_tag ft SET created_at = f.created_at,"
	" is_deleted = f.is_deleted FROM file f WHERE f.id = ft.file_id;"
	"CREATE INDEX file_tag_page ON file_tag(owner_id, tag_id, is_deleted,"
	" created_at, file_id);"
	"CREATE FUNCTION file_tag_file() RETURNS trigger"
	" LANGUAGE plpgsql AS $$ BEGIN"
	" UPDATE file_tag SET created_at = NEW.created_at,"
	" is_deleted = NEW.is_deleted WHERE file_id = NEW.id;"
	" RETURN NULL; END $$;"
	"CREATE TRIGGER file_tag_file AFTER UPDATE OF created_at, is_deleted"
	" ON file FOR EACH ROW"
	" WHEN (OLD.created_at <> NEW.created_at"
	" OR OLD.is_deleted <> NEW.is_deleted)"
	" EXECUTE FUNCTION file_tag_file();",
	NULL
};

_Static_assert(PG_SCHEMA_BASE + ARRAY_SIZE(pg_migrations) - 1 ==
		       DB_SCHEMA_VERSION,
	       "a schema version without its PostgreSQL migration");

/* FNV-1a: an advisory lock's key from a name. */
static int64_t lock_key(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	for (p = a; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	for (p = b; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (int64_t)h;
}

/* Run SQL without parameters; the result when it is `want`. */
static PGresult *run(struct pgconn *c, const char *sql, ExecStatusType want,
		     struct sfs_err *e, const char *what)
{
	PGresult *r = PQexec(c->c, sql);

	if (PQresultStatus(r) == want)
		return r;
	res_status(c, r, e, what);
	PQclear(r);
	check_conn(c);
	return NULL;
}

static int run_ok(struct pgconn *c, const char *sql, struct sfs_err *e,
		  const char *what)
{
	PGresult *r = run(c, sql, PGRES_COMMAND_OK, e, what);

	PQclear(r);
	return r ? 0 : -1;
}

static enum sfs_status migrate(struct pgconn *c, const char *schema,
			       struct sfs_err *e)
{
	char sql[512];
	PGresult *r = NULL;
	int version = 0;
	enum sfs_status ret = SFS_OK;

	/* one migration at a time in a database (extensions are shared) */
	snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%lld)",
		 (long long)lock_key("speechfs:migrate", ""));
	PQclear(r = run(c, sql, PGRES_TUPLES_OK, e, "migrate: lock"));
	if (!r)
		return e ? e->status : SFS_IO;
	snprintf(sql, sizeof(sql),
		 "CREATE SCHEMA IF NOT EXISTS \"%s\";"
		 " CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;"
		 " CREATE TABLE IF NOT EXISTS schema_version("
		 "version integer NOT NULL)",
		 schema);
	if (run_ok(c, sql, e, "migrate: prepare")) {
		ret = e ? e->status : SFS_IO;
		goto out;
	}
	r = run(c,
		"SELECT (SELECT version FROM schema_version),"
		" EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'nocase'"
		" AND collnamespace = 'public'::regnamespace)",
		PGRES_TUPLES_OK, e, "migrate: version");
	if (!r) {
		ret = e ? e->status : SFS_IO;
		goto out;
	}
	if (!PQgetisnull(r, 0, 0))
		version = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
	if (PQgetvalue(r, 0, 1)[0] != 't' &&
	    run_ok(c,
		   "CREATE COLLATION public.nocase (provider = icu,"
		   " locale = 'und-u-ks-level2', deterministic = false)",
		   e, "migrate: collation")) {
		ret = e ? e->status : SFS_IO;
		goto out;
	}
	PQclear(r);
	r = NULL;
	if (version > DB_SCHEMA_VERSION) {
		ret = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			       "the store's schema %d is newer than this "
			       "program's %d",
			       version, DB_SCHEMA_VERSION);
		goto out;
	}
	if (version == 0) {
		if (run_ok(c, pg_schema_v6, e, "migrate: schema")) {
			ret = e ? e->status : SFS_IO;
			goto out;
		}
		version = PG_SCHEMA_BASE;
		sfs_info("db", "schema created at version %d", version);
	}
	while (version < DB_SCHEMA_VERSION) {
		if (run_ok(c, pg_migrations[version - PG_SCHEMA_BASE], e,
			   "migrate")) {
			ret = e ? e->status : SFS_IO;
			goto out;
		}
		version++;
		sfs_info("db", "schema migrated to version %d", version);
	}
	snprintf(sql, sizeof(sql),
		 "DELETE FROM schema_version;"
		 " INSERT INTO schema_version VALUES (%d); COMMIT",
		 version);
	if (run_ok(c, sql, e, "migrate: commit"))
		ret = e ? e->status : SFS_IO;
out:
	PQclear(r);
	if (ret)
		PQclear(PQexec(c->c, "ROLLBACK"));
	return ret;
}

/* ---- connections ----------------------------------------------------- */

enum sfs_status sfsi_pg_open(const char *url, const char *schema,
			     int64_t origin, int do_migrate,
			     struct pgconn **out, struct sfs_err *e)
{
	struct pgconn *c = calloc(1, sizeof(*c));
	enum sfs_status ret = SFS_OK;

	*out = NULL;
	if (!c)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (!schema[0])
		schema = "public";
	c->gen = 1;
	c->origin = origin;
	c->c = PQconnectdb(url);
	if (!c->c || PQstatus(c->c) != CONNECTION_OK) {
		sfs_error("db", "cannot connect to PostgreSQL: %s",
			  c->c ? PQerrorMessage(c->c) : "out of memory");
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "cannot connect to the store's database");
		goto out;
	}
	PQsetNoticeProcessor(c->c, notice, NULL);
	snprintf(c->setup, sizeof(c->setup),
		 "SET search_path = \"%s\", public;"
		 " SET speechfs.origin = '%lld';"
		 " SET client_min_messages = warning;"
		 /* JIT compiling costs more than the short queries of a
		  * store spend (105 ms for a page of 20 once its plan cost
		  * crossed jit_above_cost) */
		 " SET jit = off",
		 schema, (long long)origin);
	if (run_ok(c, c->setup, e, "connect")) {
		ret = e ? e->status : SFS_IO;
		goto out;
	}
	snprintf(c->begin_write, sizeof(c->begin_write),
		 "BEGIN; SELECT pg_advisory_xact_lock(%lld)",
		 (long long)lock_key("speechfs:write:", schema));
	snprintf(c->channel, sizeof(c->channel), "speechfs_%016llx",
		 (unsigned long long)lock_key("speechfs:notify:", schema));
	if (do_migrate)
		ret = migrate(c, schema, e);
out:
	if (ret) {
		sfsi_pg_close(c);
		return ret;
	}
	*out = c;
	return SFS_OK;
}

void sfsi_pg_close(struct pgconn *c)
{
	if (!c)
		return;
	PQfinish(c->c);
	free(c);
}

int sfsi_pg_has_store(struct pgconn *c)
{
	PGresult *r =
		PQexec(c->c, "SELECT 1 FROM setting WHERE key = 'secret'");
	int has = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;

	PQclear(r);
	return has;
}

/* ---- statements ------------------------------------------------------ */

static int first_word_is(const char *sql, const char *w)
{
	sql = skip_ws(sql);
	return !strncasecmp(sql, w, strlen(w)) && !is_word(sql[strlen(w)]);
}

struct pgstmt *sfsi_pg_prep(struct pgconn *c, const char *sql,
			    struct sfs_err *e)
{
	struct pgstmt *st = calloc(1, sizeof(*st));
	int np = 0;

	if (!st)
		goto nomem;
	st->c = c;
	st->text = sfsi_pg_rewrite(sql, &np);
	if (!st->text)
		goto nomem;
	st->np = np;
	st->write = !first_word_is(sql, "SELECT") &&
		    !first_word_is(sql, "VALUES") &&
		    !first_word_is(sql, "WITH") &&
		    !first_word_is(sql, "EXPLAIN");
	snprintf(st->name, sizeof(st->name), "s%u", ++c->next_name);
	if (np) {
		st->val = calloc((size_t)np, sizeof(*st->val));
		st->len = calloc((size_t)np, sizeof(*st->len));
		st->fmt = calloc((size_t)np, sizeof(*st->fmt));
		st->type = calloc((size_t)np, sizeof(*st->type));
		if (!st->val || !st->len || !st->fmt || !st->type)
			goto nomem;
	}
	return st;
nomem:
	sfsi_pg_stmt_free(st);
	sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	return NULL;
}

static void drop_decoded(struct pgstmt *st)
{
	int i;

	for (i = 0; i < st->ndec; i++) {
		free(st->dec[i]);
		st->dec[i] = NULL;
	}
}

void sfsi_pg_reset(struct pgstmt *st)
{
	drop_decoded(st);
	PQclear(st->res);
	st->res = NULL;
	st->row = st->nrows = 0;
}

void sfsi_pg_clear(struct pgstmt *st)
{
	int i;

	for (i = 0; i < st->np; i++) {
		free(st->val[i]);
		st->val[i] = NULL;
		st->len[i] = st->fmt[i] = 0;
	}
}

void sfsi_pg_stmt_free(struct pgstmt *st)
{
	if (!st)
		return;
	sfsi_pg_reset(st);
	if (st->val)
		sfsi_pg_clear(st);
	if (st->gen && st->c && st->gen == st->c->gen) {
		char sql[40];

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
		PQclear(PQexec(st->c->c, sql));
	}
	free(st->val);
	free(st->len);
	free(st->fmt);
	free(st->type);
	free(st->dec);
	free(st->declen);
	free(st->text);
	free(st);
}

const char *sfsi_pg_sql(struct pgstmt *st)
{
	return st->text;
}

/* Set parameter i (1-based) to a copy of v; 0 when it is out of range. */
static char *slot(struct pgstmt *st, int i, unsigned type, int fmt, size_t n)
{
	if (i < 1 || i > st->np)
		return NULL;
	free(st->val[i - 1]);
	st->val[i - 1] = malloc(n + 1);
	st->len[i - 1] = (int)n;
	st->fmt[i - 1] = fmt;
	if (!st->gen || st->gen != st->c->gen)
		st->type[i - 1] = type;
	return st->val[i - 1];
}

void sfsi_pg_bind_int(struct pgstmt *st, int i, int64_t v)
{
	char *p = slot(st, i, OID_INT8, 0, 24);

	if (p)
		snprintf(p, 25, "%lld", (long long)v);
}

void sfsi_pg_bind_double(struct pgstmt *st, int i, double v)
{
	char *p = slot(st, i, OID_FLOAT8, 0, 32);

	if (p)
		snprintf(p, 33, "%.17g", v);
}

void sfsi_pg_bind_textn(struct pgstmt *st, int i, const char *v, size_t n)
{
	char *p = slot(st, i, OID_TEXT, 0, n);

	if (p) {
		memcpy(p, v, n);
		p[n] = '\0';
	}
}

void sfsi_pg_bind_blob(struct pgstmt *st, int i, const void *v, size_t n)
{
	char *p = slot(st, i, OID_BYTEA, 1, n);

	if (p && n)
		memcpy(p, v, n);
}

void sfsi_pg_bind_null(struct pgstmt *st, int i)
{
	if (i < 1 || i > st->np)
		return;
	free(st->val[i - 1]);
	st->val[i - 1] = NULL;
	st->len[i - 1] = st->fmt[i - 1] = 0;
	if (!st->gen || st->gen != st->c->gen)
		st->type[i - 1] = 0;
}

#define BEGIN_READ "BEGIN ISOLATION LEVEL REPEATABLE READ"

/* Send a pending BEGIN now, alone; -1 when it failed. */
static int flush_begin(struct pgconn *c, struct sfs_err *e)
{
	PGresult *r;

	if (!c->begin_pending)
		return 0;
	c->begin_pending = 0;
	r = run(c, BEGIN_READ, PGRES_COMMAND_OK, e, "begin");
	if (!r) {
		c->txn = 0;
		return -1;
	}
	PQclear(r);
	return 0;
}

/*
 * The pending BEGIN and a prepared statement in one round trip (libpq's
 * pipeline mode); the statement's result, or NULL with e set when the
 * BEGIN failed or the connection broke.
 */
static PGresult *begin_and_run(struct pgstmt *st, struct sfs_err *e)
{
	struct pgconn *c = st->c;
	PGresult *r, *b = NULL, *out = NULL;
	int ends = 0, sent;

	c->begin_pending = 0;
	settle(c);
	if (!PQenterPipelineMode(c->c)) {
		c->begin_pending = 1;
		if (flush_begin(c, e))
			return NULL;
		return PQexecPrepared(c->c, st->name, st->np,
				      (const char *const *)st->val, st->len,
				      st->fmt, 0);
	}
	sent = PQsendQueryParams(c->c, BEGIN_READ, 0, NULL, NULL, NULL, NULL,
				 0) &&
	       PQsendQueryPrepared(c->c, st->name, st->np,
				   (const char *const *)st->val, st->len,
				   st->fmt, 0) &&
	       PQpipelineSync(c->c);
	/* each query's results end with a NULL; then the sync's */
	while (sent && ends < 2) {
		r = PQgetResult(c->c);
		if (!r) {
			ends++;
		} else if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			break;
		} else if (ends == 0 && !b) {
			b = r;
		} else if (ends == 1 && !out) {
			out = r;
		} else {
			PQclear(r);
		}
	}
	if (sent && ends == 2)
		PQclear(PQgetResult(c->c)); /* the sync */
	if (!PQexitPipelineMode(c->c)) {
		/* the protocol's state is not known: a new session */
		sfs_warn("db", "pipeline: %s", PQerrorMessage(c->c));
		PQclear(b);
		PQclear(out);
		reset_conn(c);
		sfs_errf(e, SFS_IO, SFS_R_NONE, "internal database error");
		return NULL;
	}
	if (!b || PQresultStatus(b) != PGRES_COMMAND_OK) {
		res_status(c, b, e, "begin");
		PQclear(b);
		PQclear(out);
		c->txn = 0;
		check_conn(c);
		return NULL;
	}
	PQclear(b);
	return out;
}

/* Run the statement; its rows wait in st->res. */
static int execute_once(struct pgstmt *st, struct sfs_err *e)
{
	struct pgconn *c = st->c;
	PGresult *r;
	int own_txn = 0, ok;
	const char *n;

	if (st->gen != c->gen && flush_begin(c, e))
		return -1;
	if (st->gen != c->gen) {
		r = PQprepare(c->c, st->name, st->text, st->np,
			      (const Oid *)st->type);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			res_status(c, r, e, st->text);
			PQclear(r);
			check_conn(c);
			return -1;
		}
		PQclear(r);
		st->gen = c->gen;
	}
	if (st->write && !c->txn) {
		if (sfsi_pg_begin(c, PG_BEGIN_WRITE, e))
			return -1;
		own_txn = 1;
	}
	if (c->begin_pending) {
		r = begin_and_run(st, e);
		if (!r)
			return -1;
	} else {
		r = PQexecPrepared(c->c, st->name, st->np,
				   (const char *const *)st->val, st->len,
				   st->fmt, 0);
	}
	ok = PQresultStatus(r) == PGRES_TUPLES_OK ||
	     PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok) {
		res_status(c, r, e, st->text);
		PQclear(r);
		if (own_txn)
			sfsi_pg_rollback(c);
		check_conn(c);
		return -1;
	}
	st->res = r;
	st->row = -1;
	st->nrows = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : 0;
	if (st->write) {
		n = PQcmdTuples(r);
		c->changes = n[0] ? (int)strtol(n, NULL, 10) : 0;
		if (c->changes)
			c->txn_wrote = 1;
		if (st->nrows > 0 && PQnfields(r) > 0 &&
		    !strcmp(PQfname(r, 0), "id") &&
		    first_word_is(st->text, "INSERT"))
			c->last_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	}
	if (PQnfields(r) > st->ndec) {
		int nf = PQnfields(r);
		unsigned char **d = realloc(st->dec, (size_t)nf * sizeof(*d));
		size_t *dl;

		if (d) {
			st->dec = d;
			dl = realloc(st->declen, (size_t)nf * sizeof(*dl));
			if (dl) {
				st->declen = dl;
				memset(d + st->ndec, 0,
				       (size_t)(nf - st->ndec) * sizeof(*d));
				st->ndec = nf;
			}
		}
	}
	if (own_txn && sfsi_pg_commit(c, e)) {
		sfsi_pg_reset(st);
		return -1;
	}
	return 0;
}

/*
 * A read that starts a transaction (its BEGIN still to send) or runs
 * outside one has done nothing yet on its session: when that session is
 * found lost (a restarted server, an idle session ended by the server,
 * the answer to a ROLLBACK sent without waiting), the read runs once
 * more on the new session instead of failing its request. A write, or a
 * read inside a transaction already begun, fails as before: what the
 * session held is gone with it.
 */
static int execute(struct pgstmt *st, struct sfs_err *e)
{
	struct pgconn *c = st->c;
	int pending = c->begin_pending,
	    fresh = !st->write && (!c->txn || c->begin_pending);
	unsigned gen = c->gen;

	if (!execute_once(st, e))
		return 0;
	if (!fresh || c->gen == gen || PQstatus(c->c) != CONNECTION_OK)
		return -1;
	sfs_warn("db", "a read's session was lost: run again on a new one");
	if (e)
		sfs_err_init(e);
	if (pending) {
		c->txn = 1;
		c->begin_pending = 1;
	}
	return execute_once(st, e);
}

int sfsi_pg_step(struct pgstmt *st, struct sfs_err *e)
{
	if (!st->res && execute(st, e))
		return -1;
	drop_decoded(st);
	if (st->row + 1 < st->nrows) {
		st->row++;
		return 1;
	}
	st->row = st->nrows;
	return 0;
}

static const char *value(struct pgstmt *st, int i)
{
	if (!st->res || st->row < 0 || st->row >= st->nrows || i < 0 ||
	    i >= PQnfields(st->res) || PQgetisnull(st->res, st->row, i))
		return NULL;
	return PQgetvalue(st->res, st->row, i);
}

int64_t sfsi_pg_col_int(struct pgstmt *st, int i)
{
	const char *v = value(st, i);

	if (!v)
		return 0;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

double sfsi_pg_col_double(struct pgstmt *st, int i)
{
	const char *v = value(st, i);

	if (!v)
		return 0;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't';
	return strtod(v, NULL);
}

/* A bytea column's bytes (NUL-terminated); NULL when not bytea. */
static const unsigned char *decoded(struct pgstmt *st, int i, size_t *n)
{
	const char *v = value(st, i);
	unsigned char *raw;
	size_t len;

	if (!v || PQftype(st->res, i) != OID_BYTEA || i >= st->ndec)
		return NULL;
	if (!st->dec[i]) {
		raw = PQunescapeBytea((const unsigned char *)v, &len);
		if (!raw)
			return NULL;
		/* with a terminator, for a text reader */
		st->dec[i] = malloc(len + 1);
		if (st->dec[i]) {
			memcpy(st->dec[i], raw, len);
			st->dec[i][len] = '\0';
		}
		PQfreemem(raw);
		if (!st->dec[i])
			return NULL;
		st->declen[i] = len;
	}
	*n = st->declen[i];
	return st->dec[i];
}

const char *sfsi_pg_col_text(struct pgstmt *st, int i)
{
	const char *v = value(st, i);
	size_t n;

	if (!v)
		return NULL;
	if (PQftype(st->res, i) == OID_BOOL)
		return v[0] == 't' ? "1" : "0";
	if (PQftype(st->res, i) == OID_BYTEA)
		return (const char *)decoded(st, i, &n);
	return v;
}

const void *sfsi_pg_col_blob(struct pgstmt *st, int i, size_t *n)
{
	const char *v = value(st, i);

	*n = 0;
	if (!v)
		return NULL;
	if (PQftype(st->res, i) == OID_BYTEA)
		return decoded(st, i, n);
	*n = (size_t)PQgetlength(st->res, st->row, i);
	return v;
}

int sfsi_pg_col_null(struct pgstmt *st, int i)
{
	return value(st, i) == NULL;
}

int64_t sfsi_pg_last_id(struct pgconn *c)
{
	return c->last_id;
}

int sfsi_pg_changes(struct pgconn *c)
{
	return c->changes;
}

int sfsi_pg_take_wrote(struct pgconn *c)
{
	int w = c->wrote;

	c->wrote = 0;
	return w;
}

enum sfs_status sfsi_pg_exec(struct pgconn *c, const char *sql,
			     struct sfs_err *e)
{
	int np;
	char *text = sfsi_pg_rewrite(sql, &np);
	PGresult *r;
	ExecStatusType rs;
	enum sfs_status ret = SFS_OK;

	if (!text)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	if (flush_begin(c, e)) {
		free(text);
		return e ? e->status : SFS_IO;
	}
	r = PQexec(c->c, text);
	free(text);
	rs = PQresultStatus(r);

	if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
		ret = res_status(c, r, e, sql);
		check_conn(c);
	} else if (!c->txn) {
		c->wrote = 1;
	} else {
		c->txn_wrote = 1;
	}
	PQclear(r);
	return ret;
}

/* ---- transactions ---------------------------------------------------- */

/*
 * The change rows a write transaction makes carry the calling thread's
 * origin (sfsi_origin_now): set for this transaction only, so nothing of
 * one request's client is left on the pooled session for the next. The
 * session's own value is the store handle's (c->setup), so a write
 * outside these (a read transaction's) is the store's, never a client's.
 */
static int txn_origin(struct pgconn *c, struct sfs_err *e)
{
	int64_t o = sfsi_origin_now(c->origin);
	char v[24];
	const char *val[1] = { v };
	PGresult *r;
	int ok;

	if (o == c->origin)
		return 0;
	snprintf(v, sizeof(v), "%lld", (long long)o);
	r = PQexecParams(c->c, "SELECT set_config('speechfs.origin', $1, true)",
			 1, NULL, val, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		res_status(c, r, e, "origin");
	PQclear(r);
	return ok ? 0 : -1;
}

enum sfs_status sfsi_pg_begin(struct pgconn *c, int mode, struct sfs_err *e)
{
	PGresult *r;

	if (mode == PG_BEGIN_READ) {
		/* sent with the first statement (execute) */
		c->begin_pending = 1;
		c->txn = 1;
		c->txn_wrote = 0;
		return SFS_OK;
	}
	if (mode == PG_BEGIN_WRITE)
		r = run(c, c->begin_write, PGRES_TUPLES_OK, e, "begin");
	else
		r = run(c, "BEGIN ISOLATION LEVEL READ COMMITTED",
			PGRES_COMMAND_OK, e, "begin");
	if (!r) {
		PQclear(PQexec(c->c, "ROLLBACK"));
		return e ? e->status : SFS_IO;
	}
	PQclear(r);
	if (mode != PG_BEGIN_READ && txn_origin(c, e)) {
		PQclear(PQexec(c->c, "ROLLBACK"));
		check_conn(c);
		return e ? e->status : SFS_IO;
	}
	c->txn = 1;
	c->txn_wrote = 0;
	return SFS_OK;
}

void sfsi_pg_notify_jobs(struct pgconn *c)
{
	c->notify_jobs = 1;
}

void sfsi_pg_notify_auth(struct pgconn *c)
{
	c->notify_auth = 1;
}

void sfsi_pg_set_domain(struct pgconn *c, const int64_t *domain)
{
	c->domain = domain;
}

/* Who a notice says sent it: the generations' domain, else the handle. */
static int64_t sender(const struct pgconn *c)
{
	int64_t dom =
		c->domain ? __atomic_load_n(c->domain, __ATOMIC_SEQ_CST) : 0;

	return dom ? dom : c->origin;
}

/*
 * A transaction that changed rows tells the store's listeners (other
 * processes, other machines) at its commit, in the same round trip:
 * NOTIFY is delivered when, and only if, the transaction commits; the
 * payload is a letter and the sender (see sfsi_pg_set_domain). 'w':
 * something was written (the change feed's watchers look, answer caches
 * drop what they hold); 'j': jobs were queued (idle workers claim); 'a':
 * credentials changed (key caches drop what they hold).
 */
enum sfs_status sfsi_pg_commit(struct pgconn *c, struct sfs_err *e)
{
	char sql[200];
	PGresult *r;
	enum sfs_status ret = SFS_OK;

	size_t n = 0;

	if (c->begin_pending) {
		/* nothing ran: nothing to commit */
		c->begin_pending = 0;
		c->txn = 0;
		c->txn_wrote = 0;
		c->notify_jobs = 0;
		c->notify_auth = 0;
		return SFS_OK;
	}
	sql[0] = '\0';
	if (c->txn_wrote)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      "NOTIFY %s, 'w %lld'; ", c->channel,
				      (long long)sender(c));
	if (c->notify_jobs)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      "NOTIFY %s, 'j %lld'; ", c->channel,
				      (long long)sender(c));
	if (c->notify_auth)
		n += (size_t)snprintf(sql + n, sizeof(sql) - n,
				      "NOTIFY %s, 'a %lld'; ", c->channel,
				      (long long)sender(c));
	snprintf(sql + n, sizeof(sql) - n, "COMMIT");
	c->notify_jobs = 0;
	c->notify_auth = 0;
	r = PQexec(c->c, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		ret = res_status(c, r, e, "commit");
		PQclear(PQexec(c->c, "ROLLBACK"));
	} else if (strcmp(PQcmdStatus(r), "COMMIT")) {
		/* a statement of it failed: PostgreSQL rolled it back */
		sfs_error("db", "commit: the transaction was rolled back");
		ret = sfs_errf(e, SFS_IO, SFS_R_NONE,
			       "internal database error");
	} else if (c->txn_wrote) {
		c->wrote = 1;
	}
	PQclear(r);
	c->txn = 0;
	c->txn_wrote = 0;
	check_conn(c);
	return ret;
}

/*
 * The ROLLBACK is sent and not waited for: the server ends the
 * transaction when it reads it, and its answer is read before the
 * connection's next command (settle, or libpq's PQexec family, which
 * discards what is pending). A transaction whose BEGIN was never sent
 * needs none.
 */
void sfsi_pg_rollback(struct pgconn *c)
{
	c->notify_jobs = 0;
	c->notify_auth = 0;
	if (c->begin_pending) {
		c->begin_pending = 0;
	} else if (c->txn) {
		settle(c);
		if (PQsendQuery(c->c, "ROLLBACK"))
			c->unsettled = 1;
		else
			PQclear(PQexec(c->c, "ROLLBACK"));
	}
	c->txn = 0;
	c->txn_wrote = 0;
	check_conn(c);
}

int sfsi_pg_in_txn(struct pgconn *c)
{
	return c->txn;
}

/* ---- notifications --------------------------------------------------- */

enum sfs_status sfsi_pg_listen(const char *url, const char *schema,
			       int64_t origin, struct pgconn **out,
			       struct sfs_err *e)
{
	enum sfs_status ret = sfsi_pg_open(url, schema, origin, 0, out, e);
	char sql[64];

	if (ret)
		return ret;
	snprintf(sql, sizeof(sql), "LISTEN %s", (*out)->channel);
	if (run_ok(*out, sql, e, "listen")) {
		sfsi_pg_close(*out);
		*out = NULL;
		return e ? e->status : SFS_IO;
	}
	return SFS_OK;
}

/*
 * The notices waiting on the connection, as PG_NOTE_* bits; those of the
 * listener's own sender (the processes sharing its generations) are
 * writes only: those processes moved the generations at their commits.
 */
static int notices(struct pgconn *c)
{
	PGnotify *n;
	int got = 0, own;
	char kind;

	while ((n = PQnotifies(c->c))) {
		kind = n->extra[0];
		own = kind && n->extra[1] == ' ' &&
		      strtoll(n->extra + 2, NULL, 10) == sender(c);
		if (kind == 'j')
			got |= PG_NOTE_JOBS;
		else if (kind == 'a')
			got |= own ? 0 : PG_NOTE_AUTH;
		else
			got |= own ? PG_NOTE_WRITE
				   : PG_NOTE_WRITE | PG_NOTE_OTHERS;
		PQfreemem(n);
	}
	return got;
}

int sfsi_pg_listen_wait(struct pgconn *c, int stop_fd, int timeout_ms)
{
	struct pollfd pf[2] = {
		{ .fd = PQsocket(c->c), .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	int rc;

	if (pf[0].fd < 0)
		return -1;
	rc = poll(pf, 2, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	if (rc == 0)
		return PG_NOTE_QUIET;
	if (pf[1].revents)
		return 0;
	if (!PQconsumeInput(c->c) || PQstatus(c->c) != CONNECTION_OK)
		return -1;
	return notices(c);
}

int sfsi_pg_listen_ping(struct pgconn *c, int stop_fd, int timeout_ms)
{
	struct pollfd pf[2] = {
		{ .fd = PQsocket(c->c), .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
	};
	int64_t deadline = sfs_mono_ns() / 1000000 + timeout_ms, left;
	PGresult *r;
	int got = 0;

	if (pf[0].fd < 0 || !PQsendQuery(c->c, "SELECT 1"))
		return -1;
	for (;;) {
		left = deadline - sfs_mono_ns() / 1000000;
		if (left <= 0)
			return -1; /* no answer: as good as lost */
		if (poll(pf, 2, (int)left) < 0 && errno != EINTR)
			return -1;
		if (pf[1].revents)
			return got; /* stopping */
		if (!pf[0].revents)
			continue;
		if (!PQconsumeInput(c->c) || PQstatus(c->c) != CONNECTION_OK)
			return -1;
		got |= notices(c);
		while (!PQisBusy(c->c)) {
			r = PQgetResult(c->c);
			if (!r)
				return got | notices(c);
			if (PQresultStatus(r) != PGRES_TUPLES_OK) {
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	}
}

int sfsi_pg_backend_pid(struct pgconn *c)
{
	return PQbackendPID(c->c);
}
