/*
 * The actors of recently used API keys, so that a request with a known key
 * costs neither a SHA-256 nor a query. What could make a cached actor
 * wrong -- a key revoked, a user's rate changed -- bumps the store's
 * credential generation; a lookup reads it (a load, no system call) and
 * ignores entries made under another. An entry also lives at most a
 * minute, which bounds what a change made without the bump (an older
 * program, an edit of the database by hand) can outlive, and lets the
 * key's use be noted.
 *
 * The data generation beside it is bumped after every commit of any
 * process: caches of answers (the daemon's) keep what they made under one
 * generation only while it lasts.
 *
 * Where the two generations live and who moves them:
 * - SQLite: STORE/auth.gen, a file every process on the store maps
 *   shared; a commit bumps them at once for all (exact).
 * - PostgreSQL: processes of other machines change the store too. The
 *   same file is shared by the processes of one machine on one store
 *   directory (a commit bumps it at once for them: exact among them);
 *   each process's listening connection (db_listen.c) bumps it for what other
 *   machines commit: the credential generation on a 'credentials
 *   changed' notice (NOTIFY in the transaction of the change, so
 *   delivered at its commit), the data generation on every committed
 *   write's notice. So a key revoked or data changed through another
 *   machine is served from a cache here until the notice arrives (well
 *   under a millisecond on a LAN; tests/unit/t_auth.c measures it), and
 *   no longer after. While this process's listening connection is not up
 *   -- before it first connects, after it is lost (an idle one is pinged,
 *   so a silent loss is found within PING_MS + PING_WAIT_MS of db_listen.c),
 *   until it is back -- nothing is cached or served from a cache, and
 *   both generations move at the loss and at the reconnect, so nothing
 *   cached before survives what was said while no one listened.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include "auth_i.h"
#include "db_i.h"
#include "speechfs/log.h"
#include "store_i.h"
#include "util_i.h"

#define SLOTS 1024 /* a power of two */
#define STRIPES 16 /* locks, each over SLOTS / STRIPES slots */
#define TTL_MS 60000
#define KEY_MAX 80 /* "sfs_" and 64 hex digits, with room */
/*
 * STORE/auth.gen: the credential generation, the data generation, the
 * number of threads (of any process) waiting for the data generation to
 * move (sfs_store_data_gen_wait), and the file's own random number
 * (PostgreSQL: the notices of processes that share the file, which moved
 * the generations already, are told by it). A file of an older version,
 * two or three words long, grows to four; an older version maps the
 * words it knows.
 */
#define GEN_BYTES (4 * (off_t)sizeof(uint64_t))

struct slot {
	char key[KEY_MAX];
	size_t len;
	uint64_t gen;
	int64_t made_ms;
	struct sfs_actor actor;
};

struct sfsi_keycache {
	pthread_mutex_t lock[STRIPES];
	struct slot slot[SLOTS];
};

static const char gen_name[] = "auth.gen";

/*
 * The counter's file: made with the mode of the database (SQLite) or of
 * its record (PostgreSQL: db.url) and, when root makes it, their owner
 * (as SQLite does for its -shm), so the service user and the admin CLI
 * share it.
 */
static int gen_open(struct sfs_store *s, const char *like)
{
	char path[4096], db[4096];
	struct stat sb;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", s->dir, gen_name);
	snprintf(db, sizeof(db), "%s/%s", s->dir, like);
	if (stat(db, &sb) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, sb.st_mode & 0666);
	if (fd < 0)
		return -1;
	if (geteuid() == 0 && fchown(fd, sb.st_uid, sb.st_gid) < 0)
		sfs_debug("auth", "cannot give '%s' the store's owner", path);
	/* the umask narrowed the mode open() made it with: widen it back */
	if (fchmod(fd, sb.st_mode & 0666) < 0)
		sfs_debug("auth", "cannot give '%s' the store's mode", path);
	/* the credential generation, then the data generation */
	if (fstat(fd, &sb) < 0 ||
	    (sb.st_size < GEN_BYTES && ftruncate(fd, GEN_BYTES) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* STORE/auth.gen mapped shared, or NULL. */
static uint64_t *gen_map(struct sfs_store *s, const char *like)
{
	void *map;
	int fd = gen_open(s, like);

	if (fd < 0)
		return NULL;
	map = mmap(NULL, GEN_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return map == MAP_FAILED ? NULL : map;
}

/*
 * The file's random number, set by the first process that finds none
 * (the others read the one it set); a process without the file goes by
 * its own origin.
 */
static int64_t gen_domain(struct sfs_store *s, uint64_t *word)
{
	uint64_t want = 0, mine;

	if (s->gen_mem)
		return s->origin | 1;
	if (sfsi_random(&mine, sizeof(mine)))
		mine = (uint64_t)s->origin;
	mine = (mine & INT64_MAX) | 1;
	__atomic_compare_exchange_n(word, &want, mine, 0, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	return (int64_t)__atomic_load_n(word, __ATOMIC_SEQ_CST);
}

/*
 * On PostgreSQL the file is shared by the processes of this machine on
 * this store directory (exact among them, as on SQLite); what other
 * machines change, the listener tells. Without the file (a directory
 * this user may not write), the words live in this process's memory and
 * the listener alone moves them.
 */
void sfsi_keycache_open(struct sfs_store *s)
{
	struct sfsi_keycache *c;
	uint64_t *map;
	int pg = sfsi_db_store_is_pg(s), i;

	map = gen_map(s, pg ? "db.url" : "speechfs.db");
	if (!map && !pg) {
		sfs_warn("auth",
			 "no credential generation in '%s': %s (API "
			 "keys are looked up every time)",
			 s->dir, strerror(errno));
		return;
	}
	if (!map) {
		s->gen_mem = calloc(1, GEN_BYTES);
		map = s->gen_mem;
	}
	c = calloc(1, sizeof(*c));
	if (!map || !c) {
		if (s->gen_mem)
			free(s->gen_mem);
		else if (map)
			munmap(map, GEN_BYTES);
		s->gen_mem = NULL;
		free(c);
		return;
	}
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&c->lock[i], NULL);
	s->auth_gen = map;
	s->data_gen = map + 1;
	s->gen_waiters = map + 2;
	s->gen_pg = pg;
	s->gen_domain = pg ? gen_domain(s, map + 3) : 0;
	s->keycache = c;
}

void sfsi_keycache_close(struct sfs_store *s)
{
	struct sfsi_keycache *c = s->keycache;
	int i;

	if (c) {
		for (i = 0; i < STRIPES; i++)
			pthread_mutex_destroy(&c->lock[i]);
		OPENSSL_cleanse(c->slot, sizeof(c->slot));
		free(c);
		s->keycache = NULL;
	}
	if (s->gen_mem) {
		free(s->gen_mem);
		s->gen_mem = NULL;
	} else if (s->auth_gen) {
		munmap((void *)s->auth_gen, GEN_BYTES);
	}
	s->auth_gen = s->data_gen = s->gen_waiters = NULL;
	s->gen_pg = 0;
}

/*
 * Whether the caches may be used now: always on SQLite (when mapped); on
 * PostgreSQL while the listener hears the store's notices, starting it
 * on first need.
 */
static int caching(struct sfs_store *s)
{
	if (!s->gen_pg || __atomic_load_n(&s->gen_live, __ATOMIC_SEQ_CST))
		return 1;
	(void)sfsi_db_listen_start(s);
	return 0;
}

/*
 * Off: off first, then both generations move (what is cached now is
 * never served again). On: both move first, then on (a lookup that sees
 * it on reads the moved generations).
 */
void sfsi_gens_live(struct sfs_store *s, int live)
{
	if (!s->gen_pg || !s->auth_gen)
		return;
	if (!live)
		__atomic_store_n(&s->gen_live, 0, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(s->auth_gen, 1, __ATOMIC_SEQ_CST);
	sfsi_data_gen_bump(s);
	if (live)
		__atomic_store_n(&s->gen_live, 1, __ATOMIC_SEQ_CST);
}

uint64_t sfsi_auth_gen(struct sfs_store *s)
{
	return s->auth_gen ? __atomic_load_n(s->auth_gen, __ATOMIC_SEQ_CST) : 0;
}

void sfsi_auth_gen_bump(struct sfs_store *s)
{
	if (s->auth_gen)
		__atomic_add_fetch(s->auth_gen, 1, __ATOMIC_SEQ_CST);
	else if (!sfsi_db_store_is_pg(s)) /* (there nothing is cached) */
		sfs_warn("auth",
			 "the change is stored, but processes running on "
			 "'%s' cannot be told (no %s): they may go on "
			 "accepting the old credentials for up to %d s",
			 s->dir, gen_name, TTL_MS / 1000);
}

uint64_t sfs_store_data_gen(struct sfs_store *s)
{
	/* never 0 while known: 0 says "unknown, cache nothing" */
	if (!s->data_gen || !caching(s))
		return 0;
	return __atomic_load_n(s->data_gen, __ATOMIC_SEQ_CST) | 1;
}

/*
 * The futex word of the data generation: its low 32 bits, which every
 * bump changes. The mapping is shared (a file), so the futex is too: a
 * commit in one process wakes a waiter in another.
 */
static uint32_t *gen_word(struct sfs_store *s)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint32_t *)s->data_gen;
#else
	return (uint32_t *)s->data_gen + 1;
#endif
}

static void gen_futex_wake(struct sfs_store *s)
{
	syscall(SYS_futex, gen_word(s), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void sfsi_data_gen_bump(struct sfs_store *s)
{
	if (!s->data_gen)
		return;
	__atomic_add_fetch(s->data_gen, 2, __ATOMIC_SEQ_CST);
	/* a system call only while someone waits (seq_cst on both sides) */
	if (__atomic_load_n(s->gen_waiters, __ATOMIC_SEQ_CST))
		gen_futex_wake(s);
}

uint64_t sfs_store_data_gen_wait(struct sfs_store *s, uint64_t gen,
				 int timeout_ms)
{
	struct timespec ts;
	uint64_t now;

	if (timeout_ms < 0)
		timeout_ms = 0;
	ts.tv_sec = timeout_ms / 1000;
	ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
	if (!s->data_gen || !caching(s)) {
		/* PostgreSQL, not listening (yet): other processes' writes
		 * are heard once it listens (or the waiter polls) */
		if (sfsi_db_listen_start(s) == 0)
			sfsi_db_note_wait(s, timeout_ms);
		else
			nanosleep(&ts, NULL);
		return sfs_store_data_gen(s);
	}
	__atomic_add_fetch(s->gen_waiters, 1, __ATOMIC_SEQ_CST);
	now = __atomic_load_n(s->data_gen, __ATOMIC_SEQ_CST);
	if ((now | 1) == gen && timeout_ms > 0)
		syscall(SYS_futex, gen_word(s), FUTEX_WAIT, (uint32_t)now, &ts,
			NULL, 0);
	__atomic_sub_fetch(s->gen_waiters, 1, __ATOMIC_SEQ_CST);
	return sfs_store_data_gen(s);
}

void sfs_store_data_gen_wake(struct sfs_store *s)
{
	if (s->data_gen)
		gen_futex_wake(s);
	if (sfsi_db_store_is_pg(s))
		sfsi_db_note_wake(s);
}

/* The key's slot: its digits are random, so they are their own hash. */
static size_t slot_of(const char *key, size_t len)
{
	size_t h = 0, i;

	for (i = 4; i < len && i < 20; i++)
		h = h * 31 + (unsigned char)key[i];
	return h & (SLOTS - 1);
}

int sfsi_keycache_get(struct sfs_store *s, const char *key, size_t len,
		      struct sfs_actor *out)
{
	struct sfsi_keycache *c = s->keycache;
	struct slot *sl;
	size_t k;
	int hit;

	if (!c || len >= KEY_MAX || !caching(s))
		return 0;
	k = slot_of(key, len);
	sl = &c->slot[k];
	pthread_mutex_lock(&c->lock[k % STRIPES]);
	hit = sl->len == len && CRYPTO_memcmp(sl->key, key, len) == 0 &&
	      sl->gen == sfsi_auth_gen(s) &&
	      sfs_now_ms() - sl->made_ms < TTL_MS;
	if (hit)
		*out = sl->actor;
	pthread_mutex_unlock(&c->lock[k % STRIPES]);
	return hit;
}

void sfsi_keycache_put(struct sfs_store *s, const char *key, size_t len,
		       uint64_t gen, const struct sfs_actor *a)
{
	struct sfsi_keycache *c = s->keycache;
	struct slot *sl;
	size_t k;

	if (!c || len >= KEY_MAX || !caching(s))
		return;
	k = slot_of(key, len);
	sl = &c->slot[k];
	pthread_mutex_lock(&c->lock[k % STRIPES]);
	memcpy(sl->key, key, len);
	sl->len = len;
	sl->gen = gen;
	sl->made_ms = sfs_now_ms();
	sl->actor = *a;
	pthread_mutex_unlock(&c->lock[k % STRIPES]);
}
