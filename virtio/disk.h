/*
 * The disk back-end interface: where a virtio-blk disk's bytes live. A back end (the raw
 * file, virtio/disk_raw.c) implements struct disk_ops; virtio-blk only ever uses a disk
 * through it, so another back end (io_uring, an image format) plugs in without touching the
 * device.
 *
 * Requests are asynchronous in shape: disk_submit hands a request over and its completion
 * comes back through req->done, exactly once. A synchronous back end (the raw file) completes
 * inside disk_submit; an asynchronous one returns at once and calls done later, from its own
 * completion thread. The caller keeps the request and its buffers alive until done.
 *
 * Threads: requests may be submitted from one thread at a time; resize runs on another
 * thread only when the caller orders it against requests (virtio-blk holds its I/O lock).
 */
#ifndef CROSVM_VIRTIO_DISK_H
#define CROSVM_VIRTIO_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/util.h"

struct fd_list;

/* A disk as the command line describes it (--block and the older disk options). */
struct disk_config {
	char *path;
	bool ro;
	bool root;
	bool sparse;	     /* default true: discard punches holes */
	bool direct;	     /* O_DIRECT */
	bool lock;	     /* default true: advisory lock on the image */
	uint32_t block_size; /* default 512 */
	char id[21];	     /* virtio-blk serial, at most 20 bytes */
	bool has_id;
};

enum disk_op {
	DISK_READ,	   /* iov[0, nr) from off */
	DISK_WRITE,	   /* iov[0, nr) to off */
	DISK_FLUSH,	   /* done once everything completed before it is on stable storage */
	DISK_DISCARD,	   /* [off, off+len) may be deallocated (a hint: reads zeros if it is) */
	DISK_WRITE_ZEROES, /* [off, off+len) reads back zeros; unmap: it may be deallocated */
};

struct disk_req {
	enum disk_op op;
	uint64_t off, len;
	struct iovec *iov; /* READ, WRITE: the buffers (a back end may advance them in place) */
	unsigned nr;
	bool unmap;
	/*
	 * The request is over: ret is 0, or -EIO when the image ends first, -EINVAL for a range
	 * outside it, -EROFS for a change to a read-only disk, another -errno from the host.
	 */
	void (*done)(struct disk_req *req, int ret);
	void *ctx; /* the caller's */
};

struct disk;

struct disk_ops {
	/* Takes req: 0 and done follows exactly once, or -errno and done never runs. */
	int (*submit)(struct disk *d, struct disk_req *req);
	/* Grows (allocating the new space unless sparse) or shrinks the disk to size bytes. */
	int (*resize)(struct disk *d, uint64_t size);
	/* Every fd the back end needs once running, for the sandbox. */
	int (*fds)(struct disk *d, struct fd_list *out);
	/* Frees the back end (no request may be in flight). */
	void (*close)(struct disk *d);
};

/* What every back end keeps up to date for its user. */
struct disk {
	const struct disk_ops *ops;
	const char *path; /* for messages */
	uint64_t size;	  /* bytes */
	bool ro;
	bool sparse; /* discard deallocates, write-zeroes may unmap */
};

static inline int disk_submit(struct disk *d, struct disk_req *req)
{
	return d->ops->submit(d, req);
}

static inline int disk_resize(struct disk *d, uint64_t size)
{
	return d->ops->resize(d, size);
}

static inline int disk_fds(struct disk *d, struct fd_list *out)
{
	return d->ops->fds(d, out);
}

static inline void disk_close(struct disk *d)
{
	if (d)
		d->ops->close(d);
}

#endif
