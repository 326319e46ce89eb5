/*
 * The remote store's new files not sent yet, shared by
 * remote_pending_table.c (the table, its entries found, dropped and
 * shown) and remote_pending.c (the create kept, the sends, the store's
 * calls): an entry, the table, and the entry calls one makes of the other.
 */
#ifndef SFS_REMOTE_PENDING_I_H
#define SFS_REMOTE_PENDING_I_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "speechfs/auth.h"
#include "speechfs/err.h"
#include "speechfs/file.h"

struct pend {
	char id[SFS_ID_SIZE];  /* the id the server gives it (derived) */
	char key[SFS_ID_SIZE]; /* its idKey */
	int64_t ino;
	char *name, *filename, *path;
	int64_t ctime_ns, mtime_ns, atime_ns;
	int times_set; /* by utimens: sent after the create */
	int gone;      /* unlinked before it was sent */
	int maybe;     /* a send's outcome unknown: maybe on the server */
	int failed;    /* a send (a close's, an fsync's...) failed */
	int last;      /* the store's close tried it */
	int busy;      /* being sent (others wait on cv) */
	struct pend *next;
};

struct sfsi_rpend {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pend *list; /* newest first */
	size_t gone;	   /* entries unlinked */
};

/* The entry's memory freed (it is off the list). */
void sfsi_rpend_pend_free(struct pend *x);
/* The entry of id, or NULL (mu held). */
struct pend *sfsi_rpend_by_id(struct sfsi_rpend *p, const char *id);
/* The entry of id, once no thread sends it (NULL: not pending); mu held. */
struct pend *sfsi_rpend_settled(struct sfsi_rpend *p, const char *id);
/* x off the list (mu held; not freed). */
void sfsi_rpend_unlink_pend(struct sfsi_rpend *p, struct pend *x);
/* The oldest entry unlinked goes (mu held). */
void sfsi_rpend_drop_oldest_gone(struct sfsi_rpend *p);
/* x as the store shows it: an empty file of the caller's. */
enum sfs_status sfsi_rpend_fill(const struct pend *x, struct sfs_file *f,
				struct sfs_err *e);

#endif
