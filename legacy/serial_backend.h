/*
 * The host side of a UART: where transmitted bytes go (nowhere, an fd such as stdout or a
 * file, or the VMM's log one line at a time) and where received bytes come from (an input
 * fd, read on the event loop only while the receive FIFO has room). It shares the device's
 * lock: the UART's callbacks call in with the lock held, and the loop callbacks take it.
 * vCPU threads never touch libevent; they ask the loop thread through an eventfd.
 */
#ifndef CROSVM_LEGACY_SERIAL_BACKEND_H
#define CROSVM_LEGACY_SERIAL_BACKEND_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "legacy/serial.h"

struct event;
struct event_base;
struct fd_list;

/*
 * Output a non-blocking fd refused (EAGAIN) waits here, in order, until the fd drains; a
 * guest that outruns a stalled terminal by more than this loses the excess (counted, logged).
 */
#define SERIAL_BACKEND_PENDING (64u << 10)
#define SERIAL_BACKEND_LINE    256u

struct serial_backend {
	enum serial_type type;
	unsigned num;
	const struct logger *log;
	pthread_mutex_t *lock;	  /* the device's */
	struct serial_uart *uart; /* input goes here, under *lock */
	int out_fd, in_fd, wake_fd;
	struct event *in_ev, *out_ev, *wake_ev;
	bool in_pollable, in_armed, in_eof;
	bool want_rx, want_tx, out_armed;
	bool write_err_logged, drop_logged, wake_err_logged;
	uint64_t dropped;
	/* Input read while the FIFO had room, refused after all (loopback switched on). */
	unsigned held_len;
	uint8_t held[SERIAL_RX_FIFO];
	unsigned line_len;
	char line[SERIAL_BACKEND_LINE];
	unsigned pend_head, pend_len;
	uint8_t pend[SERIAL_BACKEND_PENDING];
};

/*
 * Takes p->out_fd and p->in_fd on success (a sink or syslog port closes out_fd at once);
 * on failure the caller keeps them. -EINVAL for an unknown type or stdout/file without fd.
 */
int serial_backend_init(struct serial_backend *b, const struct serial_params *p,
			struct serial_uart *u, pthread_mutex_t *lock) MUST_CHECK;
/*
 * Lock held: emits one byte. It blocks only while a blocking out_fd is full (a blocking
 * stdout, or the sandboxed port's TX pipe): the guest then waits for the host's reader.
 */
void serial_backend_put(struct serial_backend *b, uint8_t byte);
/* Lock held: the FIFO has room again, resume reading input. */
void serial_backend_rx_room(struct serial_backend *b);
/* Loop thread, lock not held. */
int serial_backend_start(struct serial_backend *b, struct event_base *eb) MUST_CHECK;
void serial_backend_stop(struct serial_backend *b);
int serial_backend_fds(const struct serial_backend *b, struct fd_list *out) MUST_CHECK;
/* Stops, writes out what it can without blocking (a partial syslog line too), closes fds. */
void serial_backend_destroy(struct serial_backend *b);

#endif
