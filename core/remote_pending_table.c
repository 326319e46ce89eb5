/*
 * The remote store's table of new files not sent yet (remote_pending.c
 * says what they are and how they are sent): the table made and freed,
 * its entries found, dropped and shown as files, and what this store
 * shows of them (a stat, an open, a listing).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "remote_i.h"
#include "remote_pending_i.h"
#include "speechfs/log.h"
#include "speechfs/util.h"
#include "speechfs/banned.h"

#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum sfs_status sfsi_rpend_new(struct sfsi_rpend **out, struct sfs_err *e)
{
	struct sfsi_rpend *p = calloc(1, sizeof(*p));

	*out = p;
	if (!p)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	return SFS_OK;
}

void sfsi_rpend_pend_free(struct pend *x)
{
	free(x->name);
	free(x->filename);
	free(x->path);
	free(x);
}

void sfsi_rpend_free(struct sfsi_rpend *p)
{
	struct pend *x;

	if (!p)
		return;
	while ((x = p->list)) {
		p->list = x->next;
		if (!x->gone && x->maybe)
			sfs_warn("remote",
				 "'%s%s': its create's answer was lost: it "
				 "may be on the server, or not",
				 x->path, x->name);
		else if (!x->gone)
			sfs_warn("remote", "'%s%s' %s: not on the server",
				 x->path, x->name,
				 x->failed ? "could not be sent"
					   : "was never closed");
		sfsi_rpend_pend_free(x);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* p->mu held */
struct pend *sfsi_rpend_by_id(struct sfsi_rpend *p, const char *id)
{
	struct pend *x;

	for (x = p->list; x; x = x->next)
		if (!strcmp(x->id, id))
			return x;
	return NULL;
}

static struct pend *by_ino(struct sfsi_rpend *p, int64_t ino)
{
	struct pend *x;

	for (x = p->list; x; x = x->next)
		if (x->ino == ino)
			return x;
	return NULL;
}

/* The entry of id, once no thread sends it (NULL: not pending); mu held. */
struct pend *sfsi_rpend_settled(struct sfsi_rpend *p, const char *id)
{
	struct pend *x;

	while ((x = sfsi_rpend_by_id(p, id)) && x->busy)
		pthread_cond_wait(&p->cv, &p->mu);
	return x;
}

void sfsi_rpend_unlink_pend(struct sfsi_rpend *p, struct pend *x)
{
	struct pend **q;

	for (q = &p->list; *q; q = &(*q)->next)
		if (*q == x) {
			*q = x->next;
			return;
		}
}

/* The oldest entry unlinked goes (mu held). */
void sfsi_rpend_drop_oldest_gone(struct sfsi_rpend *p)
{
	struct pend *x, *last = NULL;

	for (x = p->list; x; x = x->next)
		if (x->gone && !x->busy)
			last = x;
	if (last) {
		sfsi_rpend_unlink_pend(p, last);
		sfsi_rpend_pend_free(last);
		p->gone--;
	}
}

/* x as the store shows it: an empty file of the caller's. */
enum sfs_status sfsi_rpend_fill(const struct pend *x, struct sfs_file *f,
				struct sfs_err *e)
{
	sfs_file_init(f);
	f->ino = x->ino;
	sfs_strlcpy(f->id, x->id, sizeof(f->id));
	f->name = strdup(x->name);
	f->path = strdup(x->path);
	f->filename = x->filename ? strdup(x->filename) : NULL;
	if (!f->name || !f->path || (x->filename && !f->filename)) {
		sfs_file_release(f);
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE, "out of memory");
	}
	f->size = 0;
	sfs_strlcpy(f->sha256, EMPTY_SHA256, sizeof(f->sha256));
	f->created_at = x->ctime_ns / 1000000;
	f->mtime_ns = x->mtime_ns;
	f->atime_ns = x->atime_ns;
	f->ctime_ns = x->ctime_ns;
	f->perm = SFS_PERM_OWNER;
	f->access = SFS_ACCESS_OWNER;
	return SFS_OK;
}

/* ---- what this store shows ---------------------------------------------- */

int sfsi_rpend_has(struct sfsi_rpend *p, const char *id)
{
	struct pend *x;
	int ret;

	pthread_mutex_lock(&p->mu);
	x = sfsi_rpend_by_id(p, id);
	ret = !x ? 0 : x->gone ? -1 : 1;
	pthread_mutex_unlock(&p->mu);
	return ret;
}

int sfsi_rpend_file(struct sfsi_rpend *p, int64_t ino, struct sfs_file *out)
{
	struct pend *x;
	int ret = 0;

	pthread_mutex_lock(&p->mu);
	x = by_ino(p, ino);
	if (x && x->gone)
		ret = -1;
	else if (x && !sfsi_rpend_fill(x, out, NULL))
		ret = 1;
	pthread_mutex_unlock(&p->mu);
	return ret;
}

static int listed(const struct sfs_file_list *l, int64_t ino)
{
	size_t i;

	for (i = 0; l && i < l->n; i++)
		if (l->files[i].ino == ino)
			return 1;
	return 0;
}

int sfsi_rpend_files(struct sfsi_rpend *p, const char *path,
		     const char *const *names, size_t n, const char *id_prefix,
		     int all, const struct sfs_file_list *l,
		     int (*fn)(void *arg, const struct sfs_file *f), void *arg)
{
	struct sfs_file *v = NULL, *nv;
	size_t k = 0, i;
	struct pend *x;
	int stop = 0;

	pthread_mutex_lock(&p->mu);
	for (x = p->list; x; x = x->next) {
		if (x->gone || strcmp(x->path, path))
			continue;
		/* sent meanwhile: the listing has it */
		if (listed(l, x->ino))
			continue;
		nv = realloc(v, (k + 1) * sizeof(*v));
		if (!nv)
			break;
		v = nv;
		if (sfsi_rpend_fill(x, &v[k], NULL))
			break;
		if (all || sfsi_remote_name_is(&v[k], names, n, id_prefix))
			k++;
		else
			sfs_file_release(&v[k]);
	}
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < k; i++) {
		if (!stop)
			stop = fn(arg, &v[i]);
		sfs_file_release(&v[i]);
	}
	free(v);
	return stop;
}
