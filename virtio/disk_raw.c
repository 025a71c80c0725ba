#include "virtio/disk_raw.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/device.h"
#include "core/iov.h"
#include "core/log.h"

/* Zeros written per iovec when the file system cannot zero a range itself. */
#define ZERO_BYTES (64u << 10)
/* O_DIRECT alignment when the kernel does not say (no STATX_DIOALIGN): a page is always safe. */
#define SAFE_ALIGN 4096u

struct disk_raw {
	struct disk d;
	int fd;
	bool direct;
	uint32_t mem_align; /* O_DIRECT buffer alignment (1 when buffered) */
	uint32_t off_align; /* O_DIRECT offset/length alignment (1 when buffered) */
	uint8_t *bounce;    /* DISK_RAW_CHUNK bytes, O_DIRECT only */
	uint8_t *zeros;	    /* ZERO_BYTES of zeros for writing zeroes */
	char *path;
	const struct logger *log;
	unsigned warned; /* WARNED_* bits: each fallback is reported once */
};

static const struct disk_ops raw_ops;

enum {
	WARNED_DISCARD = 1u << 0,
	WARNED_ZERO_RANGE = 1u << 1,
	WARNED_DIRECT_TAIL = 1u << 2,
	WARNED_GROW_ALLOC = 1u << 3,
};

static bool first_time(struct disk_raw *d, unsigned what)
{
	bool first = !(d->warned & what);

	d->warned |= what;
	return first;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* What O_DIRECT needs of buffers, offsets and lengths on this file. */
static int direct_alignment(struct disk_raw *d)
{
	uint32_t mem = SAFE_ALIGN, off = SAFE_ALIGN;
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(d->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		mem = MAX(stx.stx_dio_mem_align, 1u);
		off = stx.stx_dio_offset_align;
	}
#endif
	if (!pow2(mem) || !pow2(off) || mem > DISK_RAW_CHUNK || off > DISK_RAW_CHUNK) {
		log_err(d->log, "disk image %s: unusable O_DIRECT alignment (memory %u, offset %u)",
			d->path, mem, off);
		return -EINVAL;
	}
	d->mem_align = mem;
	d->off_align = off;
	if (d->d.size % off)
		log_warn(d->log,
			 "disk image %s: its size is not a multiple of the O_DIRECT block (%u "
			 "bytes); writes to its last block will fail",
			 d->path, off);
	return 0;
}

static int alloc_aligned(uint8_t **p, size_t align, size_t len)
{
	void *m;
	int ret = posix_memalign(&m, MAX(align, sizeof(void *)), len);

	if (ret)
		return -ret;
	memset(m, 0, len);
	*p = m;
	return 0;
}

static void raw_close(struct disk *disk)
{
	struct disk_raw *d = container_of(disk, struct disk_raw, d);

	close_fd(&d->fd);
	free(d->bounce);
	free(d->zeros);
	free(d->path);
	free(d);
}

int disk_raw_open(const struct disk_config *cfg, const struct logger *lg, struct disk **out)
{
	int flags = (cfg->ro ? O_RDONLY : O_RDWR) | O_CLOEXEC | (cfg->direct ? O_DIRECT : 0);
	struct disk_raw *d;
	struct stat st;
	off_t end;
	int ret;

	if (!cfg->path || !cfg->path[0]) {
		log_err(lg, "virtio-blk: a disk needs an image path");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	*d = (struct disk_raw){.d = {.ops = &raw_ops,
				     .ro = cfg->ro,
				     .sparse = cfg->sparse,
				     .event_fd = -1,
				     .max_inflight = UINT_MAX,
				     .engine = "sync"},
			       .fd = -1,
			       .direct = cfg->direct,
			       .mem_align = 1,
			       .off_align = 1,
			       .log = lg};
	d->path = strdup(cfg->path);
	if (!d->path) {
		ret = -ENOMEM;
		goto err;
	}
	d->d.path = d->path;
	d->fd = open(cfg->path, flags);
	if (d->fd < 0) {
		ret = -errno;
		if (ret == -EINVAL && cfg->direct)
			log_err(lg, "disk image %s: its file system does not support O_DIRECT",
				d->path);
		else
			log_err(lg, "cannot open disk image %s%s: %s", d->path,
				cfg->ro ? " (read-only)" : "", strerror(-ret));
		goto err;
	}
	if (fstat(d->fd, &st) < 0) {
		ret = -errno;
		log_err(lg, "disk image %s: fstat: %s", d->path, strerror(-ret));
		goto err;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		ret = -EINVAL;
		log_err(lg, "disk image %s is neither a regular file nor a block device", d->path);
		goto err;
	}
	/* The lock belongs to this open file description, so it ends when the fd closes. */
	if (cfg->lock && flock(d->fd, (cfg->ro ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK) {
			ret = -EBUSY;
			log_err(lg, "disk image %s is locked by another process (another VM?)",
				d->path);
		} else {
			log_err(lg, "cannot lock disk image %s: %s", d->path, strerror(-ret));
		}
		goto err;
	}
	/* lseek also sizes block devices, whose st_size is 0. */
	end = lseek(d->fd, 0, SEEK_END);
	if (end < 0) {
		ret = -errno;
		log_err(lg, "disk image %s: cannot find its size: %s", d->path, strerror(-ret));
		goto err;
	}
	d->d.size = (uint64_t)end;
	if (cfg->direct) {
		ret = direct_alignment(d);
		if (!ret)
			ret = alloc_aligned(&d->bounce, MAX(d->mem_align, SAFE_ALIGN),
					    DISK_RAW_CHUNK);
		if (ret)
			goto err;
	}
	ret = alloc_aligned(&d->zeros, MAX(d->mem_align, SAFE_ALIGN), ZERO_BYTES);
	if (ret)
		goto err;
	*out = &d->d;
	return 0;
err:
	raw_close(&d->d);
	return ret;
}

/* [off, off+len) lies inside the image (and so fits off_t). */
static bool in_image(const struct disk_raw *d, uint64_t off, uint64_t len)
{
	return off <= d->d.size && len <= d->d.size - off;
}

static uint64_t iov_total(const struct iovec *iov, unsigned nr)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < nr; i++)
		total += iov[i].iov_len;
	return total;
}

/* Drops n bytes (no more than the iovecs hold) from the front of *iov. */
static void iov_drop(struct iovec **iov, unsigned *nr, size_t n)
{
	while (*nr && (n || !(*iov)->iov_len)) {
		size_t k = MIN(n, (*iov)->iov_len);

		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + k;
		(*iov)->iov_len -= k;
		n -= k;
		if (!(*iov)->iov_len) {
			(*iov)++;
			(*nr)--;
		}
	}
}

/* preadv/pwritev until every byte moved; the kernel may stop short (signals, 2 GiB cap). */
static int rw_full(int fd, struct iovec *iov, unsigned nr, uint64_t off, bool write)
{
	iov_drop(&iov, &nr, 0);
	while (nr) {
		int cnt = (int)MIN(nr, (unsigned)IOV_MAX);
		ssize_t n = write ? pwritev(fd, iov, cnt, (off_t)off)
				  : preadv(fd, iov, cnt, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the image ends before the request does */
		off += (uint64_t)n;
		iov_drop(&iov, &nr, (size_t)n);
	}
	return 0;
}

/* Reads up to len bytes at off into buf; *got is short only at the end of the image. */
static int pread_upto(int fd, uint8_t *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

/* O_DIRECT takes the iovecs as they are only when each one is aligned as the kernel wants. */
static bool direct_ok(const struct disk_raw *d, const struct iovec *iov, unsigned nr, uint64_t off)
{
	if (!d->direct)
		return true;
	if (!IS_ALIGNED(off, d->off_align))
		return false;
	for (unsigned i = 0; i < nr; i++)
		if (!IS_ALIGNED((uintptr_t)iov[i].iov_base, d->mem_align) ||
		    !IS_ALIGNED(iov[i].iov_len, d->off_align))
			return false;
	return true;
}

/*
 * O_DIRECT through the bounce buffer: the aligned span around [off, off+len) moves chunk by
 * chunk; a write whose chunk is only partly the guest's reads the chunk first.
 */
static int bounce_rw(struct disk_raw *d, struct iovec *iov, unsigned nr, uint64_t off, uint64_t len,
		     bool write)
{
	uint64_t start = ALIGN_DOWN(off, d->off_align);
	uint64_t end = ALIGN_UP(off + len, d->off_align);
	struct iov_cursor cur;
	int ret = 0;

	iov_cursor_init(&cur, iov, nr);
	for (uint64_t pos = start; pos < end && !ret;) {
		uint64_t n = MIN(end - pos, (uint64_t)DISK_RAW_CHUNK);
		uint64_t lo = MAX(pos, off), hi = MIN(pos + n, off + len);
		size_t got = n;

		if (!write || lo > pos || hi < pos + n) {
			ret = pread_upto(d->fd, d->bounce, n, pos, &got);
			if (ret)
				break;
			if (got < hi - pos)
				return -EIO;
			memset(d->bounce + got, 0, n - got);
		}
		if (!write) {
			ret = iov_write(&cur, d->bounce + (lo - pos), hi - lo);
		} else if (got < n) {
			/* Writing the whole block back would grow the image. */
			if (first_time(d, WARNED_DIRECT_TAIL))
				log_warn(
					d->log,
					"disk image %s: cannot write its unaligned last block with "
					"O_DIRECT",
					d->path);
			return -EIO;
		} else {
			ret = iov_read(&cur, d->bounce + (lo - pos), hi - lo);
			if (!ret)
				ret = pwrite_full(d->fd, d->bounce, n, (off_t)pos);
		}
		pos += n;
	}
	return ret;
}

static int transfer(struct disk_raw *d, struct iovec *iov, unsigned nr, uint64_t off, bool write)
{
	uint64_t len = iov_total(iov, nr);

	if (write && d->d.ro)
		return -EROFS;
	if (!in_image(d, off, len))
		return -EINVAL;
	if (direct_ok(d, iov, nr, off))
		return rw_full(d->fd, iov, nr, off, write);
	return bounce_rw(d, iov, nr, off, len, write);
}

static int falloc(struct disk_raw *d, int mode, uint64_t off, uint64_t len)
{
	while (fallocate(d->fd, mode, (off_t)off, (off_t)len) < 0) {
		if (errno != EINTR)
			return errno == ENOSYS ? -EOPNOTSUPP : -errno;
	}
	return 0;
}

static int check_modify(const struct disk_raw *d, uint64_t off, uint64_t len)
{
	if (d->d.ro)
		return -EROFS;
	return in_image(d, off, len) ? 0 : -EINVAL;
}

static int discard(struct disk_raw *d, uint64_t off, uint64_t len)
{
	int ret = check_modify(d, off, len);

	if (ret || !len || !d->d.sparse)
		return ret;
	ret = falloc(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	if (ret == -EOPNOTSUPP) {
		if (first_time(d, WARNED_DISCARD))
			log_warn(d->log,
				 "disk image %s: its file system cannot punch holes; "
				 "discard does nothing",
				 d->path);
		ret = 0;
	}
	return ret;
}

/* The slow way: write zeros, DISK_RAW_CHUNK at a time. */
static int write_zeros(struct disk_raw *d, uint64_t off, uint64_t len)
{
	struct iovec v[DISK_RAW_CHUNK / ZERO_BYTES];
	int ret = 0;

	while (len && !ret) {
		uint64_t n = MIN(len, (uint64_t)DISK_RAW_CHUNK);
		unsigned k = 0;

		for (uint64_t done = 0; done < n; done += ZERO_BYTES)
			v[k++] = (struct iovec){.iov_base = d->zeros,
						.iov_len = (size_t)MIN(n - done, ZERO_BYTES)};
		ret = transfer(d, v, k, off, true);
		off += n;
		len -= n;
	}
	return ret;
}

static int write_zeroes(struct disk_raw *d, uint64_t off, uint64_t len, bool unmap)
{
	int ret = check_modify(d, off, len);

	if (ret || !len)
		return ret;
	if (unmap && d->d.sparse) {
		ret = falloc(d, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		if (ret != -EOPNOTSUPP)
			return ret;
	}
	ret = falloc(d, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
	if (ret != -EOPNOTSUPP)
		return ret;
	if (first_time(d, WARNED_ZERO_RANGE))
		log_info(d->log, "disk image %s: its file system cannot zero ranges; writing zeros",
			 d->path);
	return write_zeros(d, off, len);
}

static int raw_resize(struct disk *disk, uint64_t size)
{
	struct disk_raw *d = container_of(disk, struct disk_raw, d);
	int ret;

	if (d->d.ro)
		return -EROFS;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (ftruncate(d->fd, (off_t)size) < 0)
		return -errno;
	/* A non-sparse image keeps its promise of allocated space for the new part too. */
	if (size > d->d.size && !d->d.sparse) {
		ret = falloc(d, 0, d->d.size, size - d->d.size);
		if (ret && first_time(d, WARNED_GROW_ALLOC))
			log_warn(d->log, "disk image %s: cannot allocate the grown space: %s",
				 d->path, strerror(-ret));
	}
	d->d.size = size;
	return 0;
}

static int execute(struct disk_raw *d, const struct disk_req *r)
{
	switch (r->op) {
	case DISK_READ:
		return transfer(d, r->iov, r->nr, r->off, false);
	case DISK_WRITE:
		return transfer(d, r->iov, r->nr, r->off, true);
	case DISK_FLUSH:
		return fdatasync(d->fd) < 0 ? -errno : 0;
	case DISK_DISCARD:
		return discard(d, r->off, r->len);
	case DISK_WRITE_ZEROES:
		return write_zeroes(d, r->off, r->len, r->unmap);
	}
	return -EOPNOTSUPP;
}

/* Synchronous: the request is carried out and completed before this returns. */
static int raw_submit(struct disk *disk, struct disk_req *req)
{
	req->done(req, execute(container_of(disk, struct disk_raw, d), req));
	return 0;
}

int disk_raw_fd(const struct disk *disk)
{
	return container_of(disk, struct disk_raw, d)->fd;
}

bool disk_raw_direct_ok(const struct disk *disk, const struct iovec *iov, unsigned nr, uint64_t off)
{
	return direct_ok(container_of(disk, struct disk_raw, d), iov, nr, off);
}

static int raw_fds(struct disk *disk, struct fd_list *out)
{
	return fd_list_add(out, container_of(disk, struct disk_raw, d)->fd);
}

static const struct disk_ops raw_ops = {
	.submit = raw_submit,
	.resize = raw_resize,
	.fds = raw_fds,
	.close = raw_close,
};
