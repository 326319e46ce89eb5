/*
 * Notices from other processes (PostgreSQL, db_conn_i.h): a thread that
 * LISTENs on a connection of its own and wakes this process's waiters,
 * caches and workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "auth_i.h"
#include "db_conn_i.h"
#include "db_pg_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

/* ---- notices from other processes (PostgreSQL) ------------------------ */

/*
 * An idle listening connection is pinged after PING_MS without a byte,
 * and counts as lost when the answer takes PING_WAIT_MS: a connection
 * that died silently (a network partition) stops the caches it drives
 * within PING_MS + PING_WAIT_MS (keycache.c).
 */
#define PING_MS 5000
#define PING_WAIT_MS 5000
#define RELISTEN_MS 1000 /* between attempts to connect again */

static void note(struct sfs_store *s)
{
	uint64_t one = 1;

	pthread_mutex_lock(&s->note_mu);
	s->notes++;
	pthread_cond_broadcast(&s->note_cv);
	/* a full counter is awake already */
	if (s->note_efd >= 0 && write(s->note_efd, &one, sizeof(one)) < 0)
		sfs_debug("db", "cannot wake the change fd");
	pthread_mutex_unlock(&s->note_mu);
}

static int note_stopping(struct sfs_store *s)
{
	int stop;

	pthread_mutex_lock(&s->note_mu);
	stop = s->note_stop;
	pthread_mutex_unlock(&s->note_mu);
	return stop;
}

static void listener_lost(struct sfs_store *s, struct pgconn **c)
{
	sfsi_gens_live(s, 0); /* first: nothing cached is served again */
	__atomic_store_n(&s->note_pid, 0, __ATOMIC_SEQ_CST);
	sfsi_pg_close(*c);
	*c = NULL;
}

static void *listener(void *arg)
{
	struct sfs_store *s = arg;
	struct pgconn *c = NULL;
	struct pollfd pf = { .fd = s->note_pipe[0], .events = POLLIN };
	struct sfs_err e;
	int got, warned = 0;

	while (!note_stopping(s)) {
		if (!c) {
			sfs_err_init(&e);
			if (sfsi_pg_listen(s->cfg.db_url, s->cfg.db_schema,
					   s->origin, &c, &e)) {
				c = NULL;
				if (!warned++)
					sfs_warn("db",
						 "cannot listen for other "
						 "processes' changes (%s): "
						 "polling until it can",
						 e.message);
				poll(&pf, 1, RELISTEN_MS);
				continue;
			}
			warned = 0;
			sfsi_pg_set_domain(c, &s->gen_domain);
			/* what was said while no one listened is unknown:
			 * the caches start afresh, the waiters look */
			__atomic_store_n(&s->note_pid, sfsi_pg_backend_pid(c),
					 __ATOMIC_SEQ_CST);
			sfsi_gens_live(s, 1);
			note(s);
			sfs_workers_kick(s);
		}
		got = sfsi_pg_listen_wait(c, s->note_pipe[0], PING_MS);
		if (got == PG_NOTE_QUIET)
			got = sfsi_pg_listen_ping(c, s->note_pipe[0],
						  PING_WAIT_MS);
		if (got < 0) {
			sfs_warn("db", "the listening connection was lost");
			listener_lost(s, &c);
			continue;
		}
		if (got & PG_NOTE_AUTH)
			sfsi_auth_gen_bump(s);
		if (got & PG_NOTE_OTHERS)
			sfsi_data_gen_bump(s);
		if (got & PG_NOTE_WRITE)
			note(s);
		if (got & PG_NOTE_JOBS)
			sfs_workers_kick(s);
	}
	/* stopping: the caches end with the store, nothing to drop */
	__atomic_store_n(&s->gen_live, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->note_pid, 0, __ATOMIC_SEQ_CST);
	sfsi_pg_close(c);
	return NULL;
}

int sfsi_db_listen_start(struct sfs_store *s)
{
	int ok;

	if (!s->cfg.db_url[0])
		return -1;
	pthread_mutex_lock(&s->note_mu);
	if (!s->note_state && !s->note_stop) {
		s->note_state = 2;
		if (pipe2(s->note_pipe, O_CLOEXEC) == 0) {
			if (pthread_create(&s->note_th, NULL, listener, s) == 0)
				s->note_state = 1;
			else {
				close(s->note_pipe[0]);
				close(s->note_pipe[1]);
			}
		}
		if (s->note_state != 1)
			sfs_warn("db", "cannot start the listening thread");
	}
	ok = s->note_state == 1;
	pthread_mutex_unlock(&s->note_mu);
	return ok ? 0 : -1;
}

void sfsi_db_listen_stop(struct sfs_store *s)
{
	ssize_t n;

	pthread_mutex_lock(&s->note_mu);
	if (s->note_state != 1) {
		pthread_mutex_unlock(&s->note_mu);
		return;
	}
	s->note_stop = 1;
	pthread_cond_broadcast(&s->note_cv);
	pthread_mutex_unlock(&s->note_mu);
	n = write(s->note_pipe[1], "x", 1);
	(void)n; /* a full pipe is awake already */
	pthread_join(s->note_th, NULL);
	close(s->note_pipe[0]);
	close(s->note_pipe[1]);
	s->note_state = 0;
}

void sfsi_db_note_wait(struct sfs_store *s, int timeout_ms)
{
	struct timespec ts;

	sfs_deadline(&ts, timeout_ms);
	pthread_mutex_lock(&s->note_mu);
	while (s->notes == s->notes_seen && !s->note_stop)
		if (pthread_cond_timedwait(&s->note_cv, &s->note_mu, &ts) ==
		    ETIMEDOUT)
			break;
	s->notes_seen = s->notes;
	pthread_mutex_unlock(&s->note_mu);
}

void sfsi_db_note_wake(struct sfs_store *s)
{
	note(s);
}

int sfsi_db_change_fd(struct sfs_store *s)
{
	int fd;

	if (!s->cfg.db_url[0])
		return -1;
	pthread_mutex_lock(&s->note_mu);
	if (s->note_efd < 0)
		s->note_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fd = s->note_efd;
	pthread_mutex_unlock(&s->note_mu);
	if (fd < 0) {
		sfs_warn("db", "cannot make the change fd: %s",
			 strerror(errno));
		return -1;
	}
	/* not listening: the caller polls, as on a lost connection */
	if (sfsi_db_listen_start(s))
		sfs_warn("db", "changes of other processes are polled for");
	return fd;
}

void sfsi_db_notify_jobs(struct db *d)
{
	if (d->pg)
		sfsi_pg_notify_jobs(d->pg);
}

void sfsi_db_notify_auth(struct db *d)
{
	if (d->pg)
		sfsi_pg_notify_auth(d->pg);
}
