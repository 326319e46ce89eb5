/*
 * The daemon's view of its connections (conn.c) and of the bytes on them
 * (wire.c): phases for the slow-client guard, our own connection limits,
 * and the replies libmicrohttpd makes by itself, replaced by ours.
 */
#ifndef SPEECHFSD_CONN_H
#define SPEECHFSD_CONN_H

#include <stdint.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "speechfs/auth.h"

enum conn_phase {
	CONN_IDLE, /* kept alive, no byte of the next request yet */
	CONN_HEAD, /* a request head is arriving (or is due) */
	CONN_BODY, /* its body is arriving */
	CONN_BUSY  /* the request is handled or answered */
};

/*
 * One accepted connection, from libmicrohttpd's "started" notice to its
 * "closed" one. The fields the request path writes are atomics: only the
 * connection's own thread writes them, the reaper reads them.
 */
struct conn {
	struct conn *next, *prev; /* every connection (conn.c's lock) */
	struct MHD_Connection *mhd;
	int fd;
	unsigned char key[16]; /* the address (conn_addr_key) */
	int closing;	       /* shut down by the guard (lock) */
	enum conn_phase phase;
	int64_t phase_ns;   /* when the phase began (monotonic; a pause of
			     * the daemon moves it on: conn.c forgive) */
	int64_t body_bytes; /* read in CONN_BODY */

	/* the replies (wire.c), touched only by the connection's thread */
	int ours;	       /* a response of ours is on the wire */
	int replaced;	       /* libmicrohttpd's own reply was replaced */
	unsigned own_status;   /* its status */
	int head_only;	       /* the request was HEAD: no body */
	char rid[SFS_ID_SIZE]; /* the request's id, if it has one */
};

/* conn.c */
int conn_init(void);
void conn_stop(void);
/* An address as 16 bytes: IPv4 (or v4-mapped) as is, IPv6 by its /64. */
int conn_addr_key(const struct sockaddr *sa, unsigned char key[16]);
struct conn *conn_of(struct MHD_Connection *mc);
struct conn *conn_of_fd(int fd);
void conn_set_phase(struct conn *c, enum conn_phase ph);
enum MHD_Result conn_accept_policy(void *cls, const struct sockaddr *addr,
				   socklen_t addrlen);
void conn_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
		 enum MHD_ConnectionNotificationCode toe);
/* The library's own connection limit: ours, with room for evictions. */
unsigned conn_mhd_limit(void);

/* wire.c */
int conn_wire_init(void);

#endif
