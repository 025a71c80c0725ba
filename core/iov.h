/*
 * A byte-stream cursor over an array of iovecs (crosvm's Reader/Writer): a device parses a
 * request header and moves data without caring how the driver split it into descriptors
 * (virtio/queue.h makes cursors over a chain's buffers), and a disk back end copies between
 * guest buffers and its own.
 *
 * The buffers are guest memory the guest may change at any time, so a device copies a
 * header out with iov_read and only then looks at it. A cursor never goes past the iovecs
 * it was given; reads and writes move exactly the asked size or nothing.
 */
#ifndef CROSVM_CORE_IOV_H
#define CROSVM_CORE_IOV_H

#include <stddef.h>
#include <sys/uio.h>

#include "core/util.h"

struct iov_cursor {
	const struct iovec *iov; /* current iovec */
	unsigned nr;		 /* iovecs left, the current one included */
	size_t off;		 /* bytes of iov[0] already consumed */
	size_t remaining;	 /* bytes the cursor may still move (may end inside an iovec) */
	size_t consumed;	 /* bytes moved so far */
};

/* A cursor over iov[0, nr). */
void iov_cursor_init(struct iov_cursor *cur, const struct iovec *iov, unsigned nr);

size_t iov_remaining(const struct iov_cursor *cur);
/* Bytes moved or skipped so far: for a writer, the `written` to push. */
size_t iov_consumed(const struct iov_cursor *cur);

/* Copy exactly len bytes out of / into the buffers; -EMSGSIZE (nothing moved) if short. */
int iov_read(struct iov_cursor *cur, void *buf, size_t len) MUST_CHECK;
int iov_write(struct iov_cursor *cur, const void *buf, size_t len) MUST_CHECK;
/* Advance by len bytes (-EMSGSIZE, nothing moved, if short). */
int iov_skip(struct iov_cursor *cur, size_t len) MUST_CHECK;
/* Write len zero bytes (-EMSGSIZE, nothing moved, if short). */
int iov_zero(struct iov_cursor *cur, size_t len) MUST_CHECK;

/*
 * Describes the next len bytes as at most max iovecs in out (no copy; for preadv/pwritev)
 * and advances past them. -EMSGSIZE if fewer than len bytes remain, -E2BIG if they need more
 * than max iovecs; nothing moves on error.
 */
int iov_take(struct iov_cursor *cur, size_t len, struct iovec *out, unsigned max,
	     unsigned *nr) MUST_CHECK;

/*
 * Splits at len bytes from the current position: cur keeps the first len bytes, tail gets
 * the rest (e.g. a data area and the status byte after it). -EMSGSIZE if fewer remain.
 */
int iov_split(struct iov_cursor *cur, size_t len, struct iov_cursor *tail) MUST_CHECK;

#endif
