/*
 * The disk back-end interface: where a virtio-blk disk's bytes live. A back end (the raw
 * file, virtio/disk_raw.c) implements struct disk_ops; virtio-blk only ever uses a disk
 * through it, so another back end (io_uring, an image format) plugs in without touching the
 * device.
 *
 * Requests are asynchronous in shape: disk_submit hands a request over and its completion
 * comes back through req->done, exactly once. A synchronous back end (the raw file,
 * virtio/disk_raw.h) completes inside disk_submit. An asynchronous one (io_uring,
 * virtio/disk_uring.h) queues the request; disk_commit hands what was queued to the kernel in
 * one go, and disk_reap runs done for what finished, on the caller's thread; its event_fd
 * polls readable while there is something to reap. The caller keeps the request and its
 * buffers alive until done, and keeps at most max_inflight requests submitted and not done.
 *
 * FLUSH covers every write, discard and write-zeroes submitted before it: its done comes
 * only once they are done and on stable storage, whatever order they finish in.
 *
 * Threads: submit, commit and reap from one thread at a time; resize only while no request
 * is in flight (virtio-blk pauses its worker for it).
 */
#ifndef CROSVM_VIRTIO_DISK_H
#define CROSVM_VIRTIO_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/util.h"

struct fd_list;

/*
 * How requests reach the image (--block async-executor=, as crosvm names it): io_uring when
 * the kernel allows it, else the synchronous back end, chosen when the disk is opened and
 * logged once (AUTO); io_uring or fail (URING, "uring"); always synchronous (SYNC, "epoll":
 * crosvm's other executor, which also does blocking file I/O on a worker).
 */
enum disk_engine {
	DISK_ENGINE_AUTO,
	DISK_ENGINE_URING,
	DISK_ENGINE_SYNC,
};

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
	uint16_t num_queues;	 /* virtio-blk request queues; 0: the default */
	enum disk_engine engine; /* which back end moves the bytes */
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
	/* The back end's, while it holds the request. */
	struct {
		struct disk_req *prev, *next;
		uint64_t seq;
	} be;
};

struct disk;

struct disk_ops {
	/* Takes req: 0 and done follows exactly once, or -errno and done never runs. */
	int (*submit)(struct disk *d, struct disk_req *req);
	/* Asynchronous back ends: hands the queued requests to the kernel. */
	int (*commit)(struct disk *d);
	/* Asynchronous back ends: runs done for every finished request; never blocks. */
	int (*reap)(struct disk *d);
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
	bool sparse;  /* discard deallocates, write-zeroes may unmap */
	int event_fd; /* readable while disk_reap has work; -1 for a synchronous back end */
	unsigned max_inflight; /* requests submitted and not yet done, at most */
	const char *engine;    /* "io_uring" or "sync", for messages */
};

static inline int disk_submit(struct disk *d, struct disk_req *req)
{
	return d->ops->submit(d, req);
}

static inline int disk_commit(struct disk *d)
{
	return d->ops->commit ? d->ops->commit(d) : 0;
}

static inline int disk_reap(struct disk *d)
{
	return d->ops->reap ? d->ops->reap(d) : 0;
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

struct logger;

/*
 * Opens the image as cfg says (virtio/disk_raw.h) with the back end cfg->engine asks for:
 * io_uring when AUTO and the kernel lets this process use it, else the synchronous one, the
 * choice logged once per disk. Errors are logged with the path.
 */
int disk_open(const struct disk_config *cfg, const struct logger *lg, struct disk **out) MUST_CHECK;

#endif
