/*
 * The io_uring disk back end (virtio/disk.h), on top of the raw image (virtio/disk_raw.h):
 * reads, writes and flushes are queued as SQEs at disk_submit, handed to the kernel by
 * disk_commit (one io_uring_enter for a batch) and completed from the CQ ring by disk_reap,
 * out of order. The ring's fd is the disk's event_fd: it polls readable when CQEs wait.
 *
 * A FLUSH waits in the back end until every write submitted before it has completed, then
 * goes to the kernel as a datasync fsync: what the guest saw flushed is on stable storage.
 * Discard, write-zeroes and O_DIRECT transfers whose guest buffers are not aligned as the
 * kernel wants are rare; they run synchronously on the raw back end (bounce buffer, hole
 * punching and their fallbacks), which completes them inside disk_submit.
 *
 * The ring is confined before it is enabled (IORING_REGISTER_RESTRICTIONS): the image is its
 * only (registered) file, every SQE must name it as a fixed file, only READV, WRITEV and
 * FSYNC are accepted, and no io_uring_register operation is. Anything else is refused by the
 * kernel with -EACCES and never runs; the restrictions are checked when the ring is made. So
 * a sandboxed device process needs io_uring_enter alone: the ring is set up before the
 * sandbox, in the process that opened the image.
 */
#ifndef CROSVM_VIRTIO_DISK_URING_H
#define CROSVM_VIRTIO_DISK_URING_H

#include <stdint.h>

#include "core/util.h"
#include "virtio/disk.h"

struct logger;

/* SQ entries; also the disk's max_inflight. */
#define DISK_URING_ENTRIES 256u

/*
 * Puts a confined io_uring in front of the raw disk raw (from disk_raw_open), which the new
 * disk then owns. On failure (-ENOSYS: no io_uring; -EPERM: not allowed here, e.g. a seccomp
 * filter or kernel.io_uring_disabled; -EOPNOTSUPP: the restrictions did not take) raw stays
 * the caller's and *why says what failed, for the caller's one message.
 */
int disk_uring_wrap(struct disk *raw, const struct logger *lg, struct disk **out,
		    const char **why) MUST_CHECK;

#ifdef CROSVM_TEST_HOOKS
struct io_uring_sqe;
/*
 * Tests only: puts a copy of *sqe on the ring (nothing else may be in flight), waits for its
 * completion and returns its result, e.g. -EACCES for what the restrictions forbid.
 */
int disk_uring_test_sqe(struct disk *d, const struct io_uring_sqe *sqe) MUST_CHECK;
#endif

#endif
