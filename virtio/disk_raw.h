/*
 * The raw disk image back end (virtio/disk.h): a plain file (or block device) whose bytes are
 * the disk's bytes. It opens and locks the image as the --block options say, and moves whole
 * requests: a request either transfers everything it asks for or fails. Every request
 * completes inside disk_submit.
 *
 * With O_DIRECT the kernel wants buffers, offsets and lengths aligned to what the file
 * system reports (statx STATX_DIOALIGN); guest buffers are not, so such transfers go
 * through an aligned bounce buffer, chunk by chunk.
 *
 * Discard is a hint: a file system that cannot punch holes makes it do nothing (reported
 * once). Write-zeroes makes a hole when unmap is allowed and the image is sparse, else uses
 * FALLOC_FL_ZERO_RANGE, else writes zeros.
 */
#ifndef CROSVM_VIRTIO_DISK_RAW_H
#define CROSVM_VIRTIO_DISK_RAW_H

#include "core/util.h"
#include "virtio/disk.h"

struct logger;

/* The bounce buffer; also the largest piece a fallback zero write or O_DIRECT copy moves. */
#define DISK_RAW_CHUNK (1u << 20)

/*
 * Opens cfg->path read-only (cfg->ro) or read-write, with O_DIRECT when cfg->direct, and
 * takes an advisory flock when cfg->lock (shared for read-only, exclusive otherwise; -EBUSY
 * with a clear message when another process holds it). Every failure is logged with the
 * path. Only regular files and block devices are accepted.
 */
int disk_raw_open(const struct disk_config *cfg, const struct logger *lg,
		  struct disk **out) MUST_CHECK;

/* For a back end built on the raw file (virtio/disk_uring.h): the image's fd. */
int disk_raw_fd(const struct disk *raw);
/* Whether the kernel takes these buffers at off as they are (always, unless O_DIRECT). */
bool disk_raw_direct_ok(const struct disk *raw, const struct iovec *iov, unsigned nr, uint64_t off);

#endif
