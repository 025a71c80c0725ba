#include "virtio/disk_uring.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/uio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "core/log.h"
#include "virtio/disk_raw.h"

/* The image is the ring's only registered file. */
#define IMAGE_SLOT 0

struct disk_uring {
	struct disk d;
	struct disk *raw;
	struct io_uring ring;
	const struct logger *log;
	unsigned queued;      /* SQEs prepared since the last commit */
	bool buffered;	      /* not O_DIRECT: the page cache may serve a request at once */
	bool no_nowait_write; /* the file system refused RWF_NOWAIT writes once */
	uint64_t seq;	      /* of the last write submitted */
	/* Writes in the kernel, oldest first; FLUSHes waiting for them, in submission order. */
	struct disk_req *writes_head, *writes_tail;
	struct disk_req *flush_head, *flush_tail;
};

static const struct disk_ops uring_ops;

static struct disk_uring *to_uring(struct disk *d)
{
	return container_of(d, struct disk_uring, d);
}

static void list_append(struct disk_req **head, struct disk_req **tail, struct disk_req *r)
{
	r->be.next = NULL;
	r->be.prev = *tail;
	if (*tail)
		(*tail)->be.next = r;
	else
		*head = r;
	*tail = r;
}

static void list_remove(struct disk_req **head, struct disk_req **tail, struct disk_req *r)
{
	if (r->be.prev)
		r->be.prev->be.next = r->be.next;
	else
		*head = r->be.next;
	if (r->be.next)
		r->be.next->be.prev = r->be.prev;
	else
		*tail = r->be.prev;
	r->be.prev = r->be.next = NULL;
}

static int commit(struct disk *disk)
{
	struct disk_uring *u = to_uring(disk);
	int ret;

	if (!u->queued)
		return 0;
	do {
		ret = io_uring_submit(&u->ring);
	} while (ret == -EINTR);
	if (ret < 0)
		return ret;
	/* The kernel consumes every SQE it is given unless it fails outright. */
	u->queued = 0;
	return 0;
}

/* A free SQE; the full ring is handed to the kernel first. */
static int get_sqe(struct disk_uring *u, struct io_uring_sqe **out)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int ret;

	if (!sqe) {
		ret = commit(&u->d);
		if (ret < 0)
			return ret;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;
	}
	u->queued++;
	*out = sqe;
	return 0;
}

static uint64_t iov_total(const struct iovec *iov, unsigned nr)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < nr; i++)
		total += iov[i].iov_len;
	return total;
}

/* Queues the transfer as it now stands (req->iov, nr, off: advanced after a short one). */
static int queue_rw(struct disk_uring *u, struct disk_req *req)
{
	struct io_uring_sqe *sqe;
	int ret = get_sqe(u, &sqe);

	if (ret < 0)
		return ret;
	if (req->op == DISK_WRITE)
		io_uring_prep_writev(sqe, IMAGE_SLOT, req->iov, req->nr, req->off);
	else
		io_uring_prep_readv(sqe, IMAGE_SLOT, req->iov, req->nr, req->off);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	return 0;
}

static int queue_flush(struct disk_uring *u, struct disk_req *req)
{
	struct io_uring_sqe *sqe;
	int ret = get_sqe(u, &sqe);

	if (ret < 0)
		return ret;
	io_uring_prep_fsync(sqe, IMAGE_SLOT, IORING_FSYNC_DATASYNC);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	return 0;
}

/* A waiting FLUSH goes to the kernel once no write submitted before it is still running. */
static void release_flushes(struct disk_uring *u)
{
	while (u->flush_head &&
	       (!u->writes_head || u->writes_head->be.seq > u->flush_head->be.seq)) {
		struct disk_req *f = u->flush_head;
		int ret;

		list_remove(&u->flush_head, &u->flush_tail, f);
		ret = queue_flush(u, f);
		if (ret < 0)
			f->done(f, ret);
	}
}

/* The request is over: leaves the write list (which may release flushes), then done. */
static void finish(struct disk_uring *u, struct disk_req *req, int ret)
{
	bool was_write = req->op == DISK_WRITE;

	if (was_write)
		list_remove(&u->writes_head, &u->writes_tail, req);
	req->done(req, ret);
	if (was_write)
		release_flushes(u);
}

/* Drops n bytes (fewer than the iovecs hold) from the front of the request's buffers. */
static void advance(struct disk_req *req, uint64_t n)
{
	while (n) {
		size_t k = (size_t)MIN(n, (uint64_t)req->iov->iov_len);

		req->iov->iov_base = (uint8_t *)req->iov->iov_base + k;
		req->iov->iov_len -= k;
		req->off += k;
		n -= k;
		if (!req->iov->iov_len) {
			req->iov++;
			req->nr--;
		}
	}
}

static void complete(struct disk_uring *u, struct disk_req *req, int res)
{
	uint64_t left;
	int ret;

	if (req->op == DISK_FLUSH || res < 0) {
		finish(u, req, res < 0 ? res : 0);
		return;
	}
	if (res == 0) {
		finish(u, req, -EIO); /* the image ends before the request does */
		return;
	}
	left = iov_total(req->iov, req->nr);
	if ((uint64_t)res >= left) {
		finish(u, req, 0);
		return;
	}
	/* Short (a signal, a page-cache boundary): the rest goes again, at the next commit. */
	advance(req, (uint64_t)res);
	ret = queue_rw(u, req);
	if (ret < 0)
		finish(u, req, ret);
}

static int reap(struct disk *disk)
{
	struct disk_uring *u = to_uring(disk);
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct disk_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		if (req) /* a test hook's SQE carries none */
			complete(u, req, res);
		n++;
	}
	/* Short transfers resubmitted and flushes released above. */
	return commit(disk) < 0 ? -EIO : n;
}

/*
 * Buffered images: what the page cache holds is copied at once, without blocking
 * (RWF_NOWAIT), as io_uring would try first itself but without the ring's round trip; a
 * large read io_uring would otherwise hand to a kernel worker whole at the first page that
 * starts readahead. Whatever is left (not cached, a write that would block, an error) goes to
 * the ring. Returns true when the request is done.
 */
static bool try_cached(struct disk_uring *u, struct disk_req *req)
{
	int fd = disk_raw_fd(u->raw);
	bool write = req->op == DISK_WRITE;
	ssize_t n;

	if (!u->buffered || (write && u->no_nowait_write))
		return false;
	n = write ? pwritev2(fd, req->iov, (int)req->nr, (off_t)req->off, RWF_NOWAIT)
		  : preadv2(fd, req->iov, (int)req->nr, (off_t)req->off, RWF_NOWAIT);
	if (n < 0 && write && errno == EOPNOTSUPP)
		u->no_nowait_write = true;
	if (n <= 0)
		return false;
	if ((uint64_t)n >= iov_total(req->iov, req->nr)) {
		req->done(req, 0);
		return true;
	}
	advance(req, (uint64_t)n);
	return false;
}

static int submit_rw(struct disk_uring *u, struct disk_req *req)
{
	uint64_t len = iov_total(req->iov, req->nr);
	int ret;

	if (req->op == DISK_WRITE && u->d.ro) {
		req->done(req, -EROFS);
		return 0;
	}
	if (req->off > u->d.size || len > u->d.size - req->off) {
		req->done(req, -EINVAL);
		return 0;
	}
	if (!len) {
		req->done(req, 0);
		return 0;
	}
	/* O_DIRECT on buffers the kernel will not take: the raw file bounces them. */
	if (!disk_raw_direct_ok(u->raw, req->iov, req->nr, req->off))
		return disk_submit(u->raw, req);
	if (req->nr <= IOV_MAX && try_cached(u, req))
		return 0;
	/*
	 * A file system that cannot start a buffered write without blocking (ext4) has the
	 * ring hand every one to a kernel worker thread, which copies into the page cache
	 * as the synchronous back end would here, after a round trip between threads.
	 */
	if (u->buffered && req->op == DISK_WRITE && u->no_nowait_write)
		return disk_submit(u->raw, req);
	ret = queue_rw(u, req);
	if (ret < 0)
		return ret;
	if (req->op == DISK_WRITE) {
		req->be.seq = ++u->seq;
		list_append(&u->writes_head, &u->writes_tail, req);
	}
	return 0;
}

static int uring_submit(struct disk *disk, struct disk_req *req)
{
	struct disk_uring *u = to_uring(disk);

	switch (req->op) {
	case DISK_READ:
	case DISK_WRITE:
		return submit_rw(u, req);
	case DISK_FLUSH:
		/* Covers the writes submitted so far; discards and zeroes are done already. */
		req->be.seq = u->seq;
		list_append(&u->flush_head, &u->flush_tail, req);
		release_flushes(u);
		return 0;
	case DISK_DISCARD:
	case DISK_WRITE_ZEROES:
		/* Rare, and full of fallbacks: synchronous, on the raw file. */
		return disk_submit(u->raw, req);
	}
	return -EOPNOTSUPP;
}

static int uring_resize(struct disk *disk, uint64_t size)
{
	struct disk_uring *u = to_uring(disk);
	int ret = disk_resize(u->raw, size);

	u->d.size = u->raw->size;
	return ret;
}

static int uring_fds(struct disk *disk, struct fd_list *out)
{
	struct disk_uring *u = to_uring(disk);
	int ret = disk_fds(u->raw, out);

	return ret ? ret : fd_list_add(out, u->ring.ring_fd);
}

static void uring_close(struct disk *disk)
{
	struct disk_uring *u = to_uring(disk);

	io_uring_queue_exit(&u->ring);
	disk_close(u->raw);
	free(u);
}

static const struct disk_ops uring_ops = {
	.submit = uring_submit,
	.commit = commit,
	.reap = reap,
	.resize = uring_resize,
	.fds = uring_fds,
	.close = uring_close,
};

/* One SQE through the ring on its own; its result. Nothing else may be in flight. */
static int one_sqe(struct disk_uring *u, const struct io_uring_sqe *tmpl)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	*sqe = *tmpl;
	io_uring_sqe_set_data(sqe, NULL);
	do {
		ret = io_uring_submit_and_wait(&u->ring, 1);
	} while (ret == -EINTR);
	if (ret < 0)
		return ret;
	do {
		ret = io_uring_wait_cqe(&u->ring, &cqe);
	} while (ret == -EINTR);
	if (ret < 0)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(&u->ring, cqe);
	return ret;
}

#ifdef CROSVM_TEST_HOOKS
int disk_uring_test_sqe(struct disk *d, const struct io_uring_sqe *sqe)
{
	if (d->ops != &uring_ops)
		return -EINVAL;
	return one_sqe(to_uring(d), sqe);
}
#endif

/*
 * The ring may do what the device needs on the image and nothing else; enabled only once
 * confined, and checked: an operation outside the list and a file outside the table are
 * both refused.
 */
static int confine(struct disk_uring *u, int fd, const char **why)
{
	static const uint8_t ops[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC};
	struct io_uring_restriction res[ARRAY_SIZE(ops) + 1];
	struct io_uring_sqe probe;
	unsigned n = 0;
	int ret;

	ret = io_uring_register_files(&u->ring, &fd, 1);
	if (ret < 0) {
		*why = "cannot register the image with the ring";
		return ret;
	}
	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = ops[i];
	}
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	/*
	 * Through io_uring_register itself: Debian's liburing 2.3 declares the wrappers for
	 * these two but does not export them.
	 */
	ret = io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res, n);
	if (ret < 0) {
		*why = "the kernel cannot restrict the ring (IORING_REGISTER_RESTRICTIONS)";
		return ret;
	}
	ret = io_uring_register((unsigned)u->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (ret < 0) {
		*why = "cannot enable the restricted ring";
		return ret;
	}
	memset(&probe, 0, sizeof(probe));
	io_uring_prep_nop(&probe);
	probe.flags |= IOSQE_FIXED_FILE;
	if (one_sqe(u, &probe) != -EACCES) {
		*why = "the ring's restrictions are not enforced (a NOP was not refused)";
		return -EOPNOTSUPP;
	}
	io_uring_prep_readv(&probe, fd, NULL, 0, 0);
	if (one_sqe(u, &probe) != -EACCES) {
		*why = "the ring's restrictions are not enforced (a plain fd was not refused)";
		return -EOPNOTSUPP;
	}
	return 0;
}

int disk_uring_wrap(struct disk *raw, const struct logger *lg, struct disk **out, const char **why)
{
	struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
	struct disk_uring *u = calloc(1, sizeof(*u));
	int ret;

	if (!u) {
		*why = "out of memory";
		return -ENOMEM;
	}
	ret = io_uring_queue_init_params(DISK_URING_ENTRIES, &u->ring, &p);
	if (ret < 0) {
		*why = "the kernel refused to create an io_uring";
		free(u);
		return ret;
	}
	ret = confine(u, disk_raw_fd(raw), why);
	if (ret < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	u->raw = raw;
	u->log = lg;
	u->buffered = !(fcntl(disk_raw_fd(raw), F_GETFL) & O_DIRECT);
	u->d = *raw;
	u->d.ops = &uring_ops;
	u->d.event_fd = u->ring.ring_fd;
	u->d.max_inflight = DISK_URING_ENTRIES;
	u->d.engine = "io_uring";
	*out = &u->d;
	return 0;
}
