/*
 * The schema of the store's database and its forward migrations in
 * PRAGMA user_version (core/schema.c). Only the database layer's files
 * of SQLite's (core/db.c, db_txn.c, db_batch.c) and core/schema.c include
 * sqlite3.h; this header is theirs alone.
 */
#ifndef SPEECHFS_SCHEMA_I_H
#define SPEECHFS_SCHEMA_I_H

#include "speechfs/err.h"

struct sqlite3;

/*
 * Bring the database of connection `h` from its user_version to
 * DB_SCHEMA_VERSION, in one transaction (rolled back on failure).
 * Errors: SFS_UNSUPPORTED (the schema is newer than this program's),
 * SFS_BUSY, SFS_IO (a migration failed).
 */
enum sfs_status sfsi_schema_migrate(struct sqlite3 *h,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * An SQLite result code as a status (db.c), logged with `what`; `h`, when
 * not NULL, gives the message of its last error.
 */
enum sfs_status sfsi_db_rc_status(struct sqlite3 *h, int rc, struct sfs_err *e,
				  const char *what);

#endif
