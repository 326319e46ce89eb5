/*
 * Files: the model of SpeechServiceFileResponse and its lifecycle
 * (active -> deleted -> purged; discard content; restore), listening audio
 * state (ListeningAudioResponse) and new content versions. Every call takes
 * the actor and enforces tenant isolation and the permission rules:
 * owner - everything; EDIT share - read and update metadata; VIEW share or
 * INTERNAL publish in the same tenant - read. A file of another tenant is
 * SFS_NOT_FOUND; a file the actor may not use is SFS_FORBIDDEN.
 */
#ifndef SPEECHFS_FILE_H
#define SPEECHFS_FILE_H

#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "err.h"

struct sfs_store;
struct sfs_stage;
struct sfs_peaks;

/* State of an ingestion or listening-audio job, as the API shows it. */
enum sfs_jstate {
	SFS_JS_NONE = 0, /* null in the API */
	SFS_JS_PENDING,
	SFS_JS_PROCESSING,
	SFS_JS_COMPLETED,
	SFS_JS_FAILED
};
const char *sfs_jstate_name(enum sfs_jstate st); /* "PENDING" ... */
int sfs_jstate_parse(const char *s);		 /* -1 if unknown */

enum sfs_publish { SFS_PUBLISH_PRIVATE = 0, SFS_PUBLISH_INTERNAL = 1 };
const char *sfs_publish_name(enum sfs_publish p);
int sfs_publish_parse(const char *s); /* -1 if unknown */

/* What the actor may do with a file. */
enum sfs_perm {
	SFS_PERM_NONE = 0,
	SFS_PERM_VIEW = 1,
	SFS_PERM_EDIT = 2,
	SFS_PERM_OWNER = 3
};
const char *sfs_perm_name(enum sfs_perm p); /* "VIEW", "EDIT" */
int sfs_perm_parse(const char *s);	    /* -1 if unknown */

/* How the actor reached a file. */
enum sfs_access {
	SFS_ACCESS_OWNER = 0,
	SFS_ACCESS_DIRECT_SHARE,
	SFS_ACCESS_INTERNAL
};
const char *sfs_access_name(enum sfs_access a);
int sfs_access_parse(const char *s); /* -1 if unknown */

/* Timestamps are milliseconds since the epoch; 0 means null. */
struct sfs_listening {
	enum sfs_jstate status; /* SFS_JS_NONE: never requested */
	int64_t size;		/* -1: null */
	char sha256[65];	/* "" when there is no MP3 */
	int64_t created_at;
	int deleted;
	int purged;
	int64_t deleted_at;
	int64_t purged_at;
	int64_t purge_at;
	char *error; /* reason when FAILED, else NULL */
};

struct sfs_file {
	int64_t ino; /* stable row id; the mount's inode */
	char id[SFS_ID_SIZE];
	int64_t owner;
	char owner_id[SFS_ID_SIZE];
	int64_t tenant;
	char tenant_id[SFS_ID_SIZE];

	char *name;
	char *filename;	    /* NULL: null */
	char *description;  /* NULL: null */
	char *path;	    /* "/a/b/" */
	char *metadata;	    /* JSON object text, NULL: null */
	char *mime;	    /* NULL: unknown */
	char *source_uri;   /* import URI, else NULL */
	char *ingest_error; /* reason when ingestion FAILED */

	int64_t size;		   /* -1: null */
	double duration;	   /* < 0: null */
	char sha256[65];	   /* "": null */
	enum sfs_jstate ingestion; /* NONE for uploads */

	int deleted;
	int purged;
	int discarded;
	int64_t created_at;
	int64_t deleted_at;
	int64_t purged_at;
	int64_t purge_at;
	int64_t discarded_at;

	enum sfs_publish publish;
	int64_t published_at;

	char **tags; /* sorted, case-insensitively */
	size_t ntags;

	struct sfs_listening la;

	int64_t mtime_ns; /* content/metadata times for the mount */
	int64_t atime_ns; /* as set by utimens; mtime_ns until then */
	int64_t ctime_ns;
	/*
	 * The file arrived (was created, moved, renamed or restored) in its
	 * directory while another live file there had the same display
	 * name: the mount shows it with its id suffix, and keeps doing so
	 * when the other file goes away.
	 */
	int suffixed;

	/* The fetching actor's relation to the file. */
	enum sfs_access access;
	enum sfs_perm perm;
	char shared_by[SFS_ID_SIZE]; /* DIRECT_SHARE only */
	int64_t shared_at;
};

void sfs_file_init(struct sfs_file *f);
void sfs_file_release(struct sfs_file *f);

/*
 * What an actor may do to a file, decided by its permission (owner, EDIT,
 * VIEW or INTERNAL) and the file's state; the one rule every front end
 * and core itself apply before a change.
 */
enum sfs_action {
	SFS_ACT_READ,	/* metadata, content, listening audio: any access */
	SFS_ACT_WRITE,	/* metadata and content: owner or EDIT, not deleted */
	SFS_ACT_DELETE, /* delete, purge, discard, restore: the owner */
	SFS_ACT_SHARE	/* create, change or revoke shares: the owner */
};

/*
 * SFS_OK when f (as loaded for the actor) allows act; else SFS_FORBIDDEN
 * (the permission is too weak) or, for SFS_ACT_WRITE on a deleted file,
 * SFS_CONFLICT with SFS_R_FILE_DELETED. e may be NULL.
 */
enum sfs_status sfs_file_allows(const struct sfs_file *f, enum sfs_action act,
				struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_content { SFS_CONTENT_ORIGINAL = 0, SFS_CONTENT_LISTENING = 1 };

/*
 * Whether a file's content or its listening MP3 can be read now, and if
 * not why: the one answer for opening, the mount's attributes and
 * listings, and the API's downloads.
 */
enum sfs_content_state {
	SFS_CS_READY = 0,  /* readable */
	SFS_CS_NONE,	   /* listening audio never requested */
	SFS_CS_PENDING,	   /* an import or encode is queued */
	SFS_CS_PROCESSING, /* ... and running */
	SFS_CS_FAILED,	   /* the import or encode failed (for good) */
	SFS_CS_DISCARDED,  /* the content was discarded (original only) */
	SFS_CS_DELETED,	   /* the file (or its listening audio) is deleted */
	SFS_CS_PURGED	   /* ... and purged */
};

enum sfs_content_state sfs_file_content_state(const struct sfs_file *f,
					      enum sfs_content which);

/*
 * The status of reading content in state cs, with its reason in e:
 * SFS_OK when READY; SFS_GONE for DISCARDED, DELETED and PURGED;
 * SFS_NOT_READY for NONE, PENDING, PROCESSING and FAILED (the reason says
 * which: SFS_R_IMPORT_FAILED for a failed import, which will not change
 * by waiting).
 */
enum sfs_status sfs_content_state_check(enum sfs_content_state cs,
					enum sfs_content which,
					struct sfs_err *e) SFS_MUST_CHECK;

#define SFS_NAME_MAX 255 /* bytes of a display name */
#define SFS_FILENAME_MAX 255
#define SFS_DESCRIPTION_MAX 4096
#define SFS_METADATA_MAX 65536 /* bytes of the JSON text */
#define SFS_TAGS_MAX 64	       /* tags per file */

/* What a new file is made of. NULL pointers are "not given". */
struct sfs_dir_info; /* dir.h */

struct sfs_file_spec {
	const char *name; /* required */
	const char *filename;
	const char *description;
	const char *path;     /* default "/" */
	const char *metadata; /* JSON object text */
	const char *const *tags;
	size_t ntags;
	const char *uri;  /* an import: no content, a job */
	int listening;	  /* request listening audio */
	int64_t mtime_ns; /* 0: now */
	/* never suffixed: a front end made sure its entry is unique */
	int no_suffix;
	/*
	 * A create without content, or with an empty stage, whose commit
	 * need not wait for the disk (the mount's create, before the file's
	 * content is written; the API's POST /files?lazy=true): visible at
	 * once; durable with the file's first content commit, any later
	 * durable commit of the store, or sfs_file_sync(), whichever comes
	 * first. SFS_INVALID (field "lazy") with content or a URI.
	 */
	int lazy;
	/*
	 * A key chosen by the caller (a UUID; POST /files?idKey=), or NULL.
	 * With one, the new file's id is sfs_uuid_derive(owner's id, key):
	 * the caller knows it before the file is made (a remote mount
	 * numbers and shows a file before the server has it, and creates it
	 * at its first close with its content), and a repeat with the same
	 * key makes nothing: SFS_CONFLICT, reason SFS_R_FILE_ID_EXISTS (an
	 * earlier try's answer was lost). Another owner's key never gives
	 * the same id, so the answer tells nothing of anyone else's files.
	 * SFS_INVALID (field "idKey") when it is no UUID. NULL: a new random
	 * id.
	 */
	const char *id_key;
	/*
	 * Out (may be NULL): the state of the new file's directory as its
	 * create's commit left it (sfs_dir_stat's answer), read inside the
	 * create's transaction - no second transaction after the commit (a
	 * remote mount keeps its listing of the directory up to date from
	 * it). All zero when not read: a remote store, or a failed create.
	 */
	struct sfs_dir_info *dir_out;
};

/*
 * Create a file owned by the actor, from a stage (an upload; committed
 * durably here) or, with spec->uri and no stage, as a pending URI import.
 * Quota: SFS_QUOTA when the tenant's byte or file limit would be exceeded.
 * On success the stage is consumed (still free it). out may be NULL.
 */
enum sfs_status sfs_file_create(struct sfs_store *s, const struct sfs_actor *a,
				const struct sfs_file_spec *spec,
				struct sfs_stage *content, struct sfs_file *out,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Create many content-less or empty files in one transaction (bulk
 * metadata import, benchmarks). Each spec is validated as above.
 */
enum sfs_status sfs_file_create_many(struct sfs_store *s,
				     const struct sfs_actor *a,
				     const struct sfs_file_spec *specs,
				     size_t n,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Make every change committed so far durable (after a lazy create): the
 * store's WAL synced, shared with concurrent syncs. Owner or EDIT;
 * SFS_CONFLICT on a deleted file.
 */
enum sfs_status sfs_file_sync(struct sfs_store *s, const struct sfs_actor *a,
			      const char *id, struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_status sfs_file_get(struct sfs_store *s, const struct sfs_actor *a,
			     const char *id, struct sfs_file *out,
			     struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_file_get_ino(struct sfs_store *s, const struct sfs_actor *a,
				 int64_t ino, struct sfs_file *out,
				 struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_update_field {
	SFS_UPD_NAME = 1 << 0,
	SFS_UPD_DESCRIPTION = 1 << 1,
	SFS_UPD_PATH = 1 << 2,
	SFS_UPD_METADATA = 1 << 3,
	SFS_UPD_TAGS = 1 << 4,
	SFS_UPD_PUBLISH = 1 << 5,
	SFS_UPD_MTIME = 1 << 6,
	SFS_UPD_FILENAME = 1 << 7,
	/*
	 * Not a field: a name or path change is not marked suffixed (the
	 * front end made sure the new entry is unique).
	 */
	SFS_UPD_NO_SUFFIX = 1 << 8,
	/*
	 * Not a field: mark the file suffixed for good (a front end showed
	 * it with its suffix because of a clash of its own making).
	 */
	SFS_UPD_SUFFIX = 1 << 9,
	SFS_UPD_ATIME = 1 << 10
};

/* The fields of a PATCH; only those named in `set` change. */
struct sfs_file_update {
	unsigned set; /* enum sfs_update_field bits */
	const char *name;
	const char *description; /* NULL: becomes null */
	const char *path;
	const char *metadata;	 /* JSON object text; NULL: null */
	const char *const *tags; /* replace; ntags 0 clears */
	size_t ntags;
	enum sfs_publish publish;
	int64_t mtime_ns;
	int64_t atime_ns;
	const char *filename;
};

/*
 * Update metadata (owner or EDIT share). publishedAt is set the first time
 * a file becomes INTERNAL. SFS_CONFLICT on a deleted file.
 */
enum sfs_status sfs_file_update(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, const struct sfs_file_update *u,
				struct sfs_file *out,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Soft delete (owner only): isDeleted, deletedAt, purgeAt = now +
 * retention. A second delete is SFS_CONFLICT. With purge, the content and
 * listening audio are released at once (isPurged, purgedAt); purging a
 * deleted file is allowed, purging a purged one is a no-op.
 * Pending jobs of the file are cancelled.
 */
enum sfs_status sfs_file_delete(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, int purge,
				struct sfs_err *e) SFS_MUST_CHECK;

/* Undo a soft delete (owner; SFS_CONFLICT if not deleted, GONE if purged). */
enum sfs_status sfs_file_restore(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id, struct sfs_file *out,
				 struct sfs_err *e) SFS_MUST_CHECK;

enum sfs_rename_flags {
	/* a deleted file comes out of the trash first (owner only) */
	SFS_RENAME_RESTORE = 1 << 0
};

/*
 * rename(2) of a file onto an entry, all in one transaction: with
 * SFS_RENAME_RESTORE a deleted `id` is restored first; the live file
 * `replace_id` (NULL: none) that held the entry is soft-deleted (owner
 * only, as sfs_file_delete; one deleted meanwhile is left as it is); `id`
 * gets u's fields (as sfs_file_update). Either all of it is committed or
 * nothing: no crash can leave the entry's old file deleted with `id` not
 * yet in its place.
 */
enum sfs_status sfs_file_rename(struct sfs_store *s, const struct sfs_actor *a,
				const char *id, const struct sfs_file_update *u,
				const char *replace_id, unsigned flags,
				struct sfs_file *out,
				struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Discard the content, keep the metadata (owner). SFS_CONFLICT when the
 * file is deleted or its content already discarded.
 */
enum sfs_status sfs_file_discard(struct sfs_store *s, const struct sfs_actor *a,
				 const char *id,
				 struct sfs_err *e) SFS_MUST_CHECK;

/* How a new content version treats listening audio and the disk. */
enum sfs_content_flags {
	/* ask for listening audio (made again anyway if the file had it) */
	SFS_SET_LISTENING = 1 << 0,
	/*
	 * only for audio: content the probe does not recognise as audio
	 * gets no listening-audio job, and loses the MP3 of an older one
	 */
	SFS_SET_IF_AUDIO = 1 << 1,
	/*
	 * return without waiting for the disk: the new version becomes
	 * durable with the next sfs_store_sync (or any durable commit)
	 */
	SFS_SET_NOSYNC = 1 << 2
};

/*
 * A new content version of the same file (same id, tags, shares): the
 * mount's writes. Owner or EDIT; SFS_NOT_READY while an import runs.
 * Listening audio is made again when the file had it or `flags` asks for
 * it (enum sfs_content_flags).
 */
enum sfs_status sfs_file_set_content(struct sfs_store *s,
				     const struct sfs_actor *a, const char *id,
				     struct sfs_stage *content, unsigned flags,
				     struct sfs_file *out,
				     struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The same, on a condition checked in the transaction that commits it
 * (the REST API's If-Match): if_match is the SHA-256 (lowercase hex) the
 * caller saw, "" for a file without content, "*" for any content; NULL
 * for none. SFS_PRECONDITION when the file's content is another.
 */
/* Does f's content meet if_match (as sfs_file_set_content_if reads it)? */
int sfs_file_content_matches(const struct sfs_file *f, const char *if_match);
enum sfs_status
sfs_file_set_content_if(struct sfs_store *s, const struct sfs_actor *a,
			const char *id, struct sfs_stage *content,
			unsigned flags, const char *if_match,
			struct sfs_file *out, struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Open the original or the listening MP3 for reading after checking read
 * permission and its state (sfs_content_state_check of
 * sfs_file_content_state): SFS_GONE, SFS_NOT_READY; SFS_UNAVAILABLE when
 * the object store keeping the bytes cannot be reached. `flags` are
 * sfs_blob_open's (blob.h). Ownership: *blob is the caller's
 * (sfs_blob_close); out (may be NULL) receives the file.
 */
struct sfs_blob;
enum sfs_status sfs_file_open(struct sfs_store *s, const struct sfs_actor *a,
			      const char *id, enum sfs_content which,
			      unsigned flags, struct sfs_blob **blob,
			      struct sfs_file *out,
			      struct sfs_err *e) SFS_MUST_CHECK;
/* The same by the file's row id (the mount's inode): one load of the row. */
enum sfs_status sfs_file_open_ino(struct sfs_store *s,
				  const struct sfs_actor *a, int64_t ino,
				  enum sfs_content which, unsigned flags,
				  struct sfs_blob **blob, struct sfs_file *out,
				  struct sfs_err *e) SFS_MUST_CHECK;

/*
 * Listening audio lifecycle of one file (the API's listening-audio
 * endpoints). generate: owner or EDIT; SFS_CONFLICT when it exists, is in
 * progress or was deleted/purged; SFS_GONE when the content is discarded;
 * SFS_NOT_READY when ingestion is not completed; a FAILED one is retried.
 * delete: owner; SFS_NOT_FOUND without listening audio; SFS_CONFLICT when
 * already deleted and !purge. purge: owner; SFS_CONFLICT unless COMPLETED
 * and neither deleted nor purged.
 */
enum sfs_status sfs_listening_generate(struct sfs_store *s,
				       const struct sfs_actor *a,
				       const char *id, struct sfs_file *out,
				       struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_listening_delete(struct sfs_store *s,
				     const struct sfs_actor *a, const char *id,
				     int purge,
				     struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_listening_purge(struct sfs_store *s,
				    const struct sfs_actor *a, const char *id,
				    struct sfs_err *e) SFS_MUST_CHECK;

/*
 * The waveform peaks of a file's listening audio (speechfs/audio.h), made
 * by the listening-audio job beside the MP3: read permission and the
 * listening audio's state as for sfs_file_open (SFS_GONE, SFS_NOT_READY).
 * la_sha256 (may be NULL) receives the SHA-256 of the MP3 they belong to.
 * SFS_NOT_FOUND ("peaks_not_found") for listening audio made before the
 * store kept peaks: they come when the listening audio is made again.
 */
enum sfs_status sfs_listening_peaks(struct sfs_store *s,
				    const struct sfs_actor *a, const char *id,
				    struct sfs_peaks *out, char *la_sha256,
				    struct sfs_err *e) SFS_MUST_CHECK;

/* Check a display name / original filename / description / metadata. */
enum sfs_status sfs_name_check(const char *name, const char *field,
			       struct sfs_err *e) SFS_MUST_CHECK;
enum sfs_status sfs_metadata_check(const char *json, const char *field,
				   struct sfs_err *e) SFS_MUST_CHECK;

#endif
