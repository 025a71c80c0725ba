/*
 * The host side of the user-space virtio-vsock device: guest stream connections mapped to
 * UNIX stream sockets, with Firecracker's protocol (docs in README.md):
 *
 *  - host to guest: a host program connects to the listening socket PATH and writes
 *    "CONNECT <port>\n"; the guest gets a REQUEST from CID 2 and a local port in
 *    [2^30, 2^31); when it answers RESPONSE the program reads "OK <local port>\n", then the
 *    stream. A RST, or no answer within VSOCK_TIMEOUT_MS, closes the program's socket.
 *  - guest to host: a guest connection to CID 2 port P is connected to the UNIX socket
 *    PATH_P; RESPONSE if that works at once, RST otherwise.
 *
 * Flow control is virtio's credit scheme (virtio 1.2, 5.10.6.3): the guest may have at most
 * VSOCK_BUF_ALLOC bytes in flight towards a host socket, which is exactly what the
 * connection's buffer holds (a guest that sends more is reset); host data is read only as
 * far as the guest's credit and the receive buffer at hand go, straight into guest memory.
 * A guest that shuts a connection down both ways gets the host's rest of its data within
 * VSOCK_TIMEOUT_MS, then a RST; a host EOF is a SHUTDOWN(SEND) for the guest.
 *
 * Threads: everything runs on the event loop's thread. The device (virtio/vsock.c) calls in
 * for the guest's packets and to fill receive buffers, and is asked through want_rx to fill
 * buffers when there is something for the guest.
 */
#ifndef CROSVM_VIRTIO_VSOCK_MUX_H
#define CROSVM_VIRTIO_VSOCK_MUX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "core/util.h"

struct event_base;
struct iov_cursor;
struct logger;
struct vsock_hdr;
struct vsock_mux;

#define VSOCK_MAX_CONNS	       512 /* connections in any state, host- and guest-initiated */
#define VSOCK_BUF_ALLOC	       (128u << 10) /* per connection, guest to host: the credit we give */
#define VSOCK_TIMEOUT_MS       2000u /* CONNECT line, the guest's RESPONSE, a closing flush */
#define VSOCK_MAX_ORPHANS      64u   /* RSTs owed for packets of no connection */
#define VSOCK_LOCAL_PORT_FIRST (1u << 30)
#define VSOCK_LOCAL_PORT_END   (1u << 31)
#define VSOCK_PATH_MAX	       108 /* sizeof(sun_path) */

struct vsock_mux_params {
	uint64_t guest_cid;
	int listen_fd;	  /* bound to the UNIX socket path, listening, non-blocking */
	const char *path; /* PATH: guest connections go to PATH_<port> */
	unsigned max_conns;
	/* There is something for the guest: fill receive buffers (vsock_mux_rx) soon. */
	void (*want_rx)(void *ctx);
	void *ctx;
	const struct logger *log;
};

int vsock_mux_create(const struct vsock_mux_params *p, struct vsock_mux **out) MUST_CHECK;
/* Closes every connection; the listening fd stays the caller's. */
void vsock_mux_destroy(struct vsock_mux *m);
int vsock_mux_start(struct vsock_mux *m, struct event_base *eb) MUST_CHECK;
void vsock_mux_stop(struct vsock_mux *m);

/* A driver is there (accept host connections) or not (stop accepting). */
void vsock_mux_set_active(struct vsock_mux *m, bool active);
/* The driver went away: every connection is closed at once, no packet is owed. */
void vsock_mux_reset(struct vsock_mux *m);

/* A packet from the guest: its parsed header (vsock_pkt_parse) and a cursor at its payload. */
void vsock_mux_tx(struct vsock_mux *m, const struct vsock_hdr *h, struct iov_cursor *payload);
/* Whether vsock_mux_rx may have a packet to give. */
bool vsock_mux_has_rx(const struct vsock_mux *m);
/*
 * Writes the next packet for the guest into a receive buffer (the cursor over its writable
 * part, at least VSOCK_HDR_SIZE bytes): true and the bytes written, or false if there was
 * nothing after all (the buffer is untouched).
 */
bool vsock_mux_rx(struct vsock_mux *m, struct iov_cursor *buf, uint32_t *written);

/* For tests and logs. */
unsigned vsock_mux_nr_conns(const struct vsock_mux *m);

#endif
