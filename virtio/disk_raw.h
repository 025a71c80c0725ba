/*
 * The raw disk image back end of virtio-blk: a plain file (or block device) whose bytes are
 * the disk's bytes. It opens and locks the image as the --block options say, and moves whole
 * requests: a call either transfers everything it was asked for or fails.
 *
 * With O_DIRECT the kernel wants buffers, offsets and lengths aligned to what the file
 * system reports (statx STATX_DIOALIGN); guest buffers are not, so such transfers go
 * through an aligned bounce buffer, chunk by chunk.
 *
 * Threads: the I/O calls share the bounce buffer, so one thread at a time does I/O (the
 * device's worker); disk_raw_resize may run on another thread if the caller orders it
 * against I/O (virtio-blk holds its I/O lock).
 */
#ifndef CROSVM_VIRTIO_DISK_RAW_H
#define CROSVM_VIRTIO_DISK_RAW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/util.h"

struct disk_config;
struct logger;

/* The bounce buffer; also the largest piece a fallback zero write or O_DIRECT copy moves. */
#define DISK_RAW_CHUNK (1u << 20)

struct disk_raw {
	int fd;
	bool ro;
	bool direct;
	bool sparse;
	uint64_t size;	    /* bytes of the image */
	uint32_t mem_align; /* O_DIRECT buffer alignment (1 when buffered) */
	uint32_t off_align; /* O_DIRECT offset/length alignment (1 when buffered) */
	uint8_t *bounce;    /* DISK_RAW_CHUNK bytes, O_DIRECT only */
	uint8_t *zeros;	    /* DISK_RAW_ZERO_BYTES of zeros for writing zeroes */
	char *path;	    /* for messages */
	const struct logger *log;
	unsigned warned; /* DISK_RAW_WARNED_* bits: each fallback is reported once */
};

/*
 * Opens cfg->path read-only (cfg->ro) or read-write, with O_DIRECT when cfg->direct, and
 * takes an advisory flock when cfg->lock (shared for read-only, exclusive otherwise; -EBUSY
 * with a clear message when another process holds it). Every failure is logged with the
 * path. Only regular files and block devices are accepted.
 */
int disk_raw_open(struct disk_raw *d, const struct disk_config *cfg,
		  const struct logger *lg) MUST_CHECK;
void disk_raw_close(struct disk_raw *d);

/*
 * Read/write exactly the bytes of iov[0, nr) at byte offset off. The iovecs are consumed
 * (advanced in place on short transfers). -EIO when the image ends first, -EROFS for a write
 * to a read-only image, -errno from the kernel otherwise.
 */
int disk_raw_read(struct disk_raw *d, struct iovec *iov, unsigned nr, uint64_t off) MUST_CHECK;
int disk_raw_write(struct disk_raw *d, struct iovec *iov, unsigned nr, uint64_t off) MUST_CHECK;
/* fdatasync: returns once everything written so far is on stable storage. */
int disk_raw_flush(struct disk_raw *d) MUST_CHECK;
/*
 * Deallocates [off, off+len) (a hole that reads back zeros) when the image is sparse; a
 * hint, so a file system that cannot punch holes is not an error (reported once).
 */
int disk_raw_discard(struct disk_raw *d, uint64_t off, uint64_t len) MUST_CHECK;
/*
 * Makes [off, off+len) read back zeros: a hole when unmap is allowed and the image is
 * sparse, else FALLOC_FL_ZERO_RANGE, else by writing zeros where the file system refuses.
 */
int disk_raw_write_zeroes(struct disk_raw *d, uint64_t off, uint64_t len, bool unmap) MUST_CHECK;
/* Grows (allocating the new space unless sparse) or shrinks the image to size bytes. */
int disk_raw_resize(struct disk_raw *d, uint64_t size) MUST_CHECK;

#endif
