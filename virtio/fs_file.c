/*
 * The FUSE operations on open files and directories: open and create, I/O straight between
 * guest buffers and the host file (preadv/pwritev on the chain's iovecs: no copy), listing,
 * syncing, and the rest that takes a handle. Only regular files and directories are ever
 * opened: a FIFO's open would block the device, a device node's would reach host hardware.
 */
#include "virtio/fs_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The open flags the host open may have (the guest's, as Linux numbers them on x86_64). */
#define OPEN_FLAGS (O_ACCMODE | O_APPEND | O_TRUNC | O_NONBLOCK | O_DSYNC | O_SYNC | O_NOATIME)

static int open_flags(const struct fs_server *s, uint32_t guest, int *flags)
{
	int f = (int)guest & OPEN_FLAGS;

	if ((f & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	/*
	 * With a write-back cache the guest's kernel reads pages of files opened write-only and
	 * appends itself (it knows the size); the host file must allow both.
	 */
	if (s->flags & FUSE_WRITEBACK_CACHE) {
		if ((f & O_ACCMODE) == O_WRONLY)
			f = (f & ~O_ACCMODE) | O_RDWR;
		f &= ~O_APPEND;
	}
	*flags = f;
	return 0;
}

static uint32_t fopen_flags(const struct fs_server *s, bool dir)
{
	switch (s->cfg.cache) {
	case FS_CACHE_NEVER:
		return dir ? 0 : FOPEN_DIRECT_IO;
	case FS_CACHE_ALWAYS:
		return dir ? FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR : FOPEN_KEEP_CACHE;
	case FS_CACHE_AUTO:
	default:
		return 0;
	}
}

static struct fs_handle *file_handle(struct fs_server *s, uint64_t fh)
{
	struct fs_handle *h = fs_handle_get(&s->handles, fh);

	return h && !h->dir ? h : NULL;
}

int fs_op_open(struct fs_server *s, struct fs_call *c)
{
	bool dir = c->r->h.opcode == FUSE_OPENDIR;
	struct fs_inode *in = fs_node(s, c->r->h.nodeid);
	struct fuse_open_out out = {.open_flags = fopen_flags(s, dir)};
	int flags, fd, ret;

	if (!in)
		return -ENOENT;
	if (dir && in->mode != S_IFDIR)
		return -ENOTDIR;
	if (!dir && in->mode != S_IFREG)
		return in->mode == S_IFDIR ? -EISDIR : -ENXIO;
	if (dir) {
		flags = O_RDONLY | O_DIRECTORY;
	} else {
		ret = open_flags(s, c->r->in.open.flags, &flags);
		if (ret < 0)
			return ret;
	}
	fd = fs_reopen(s, in->fd, flags);
	if (fd < 0)
		return fd;
	ret = fs_handle_add(&s->handles, fd, dir, &out.fh);
	return ret < 0 ? ret : fs_put(c, &out, sizeof(out));
}

/*
 * CREATE of a name that exists (no O_EXCL): opened as OPEN would open it, so only when it is
 * a regular file, through a descriptor that is known to be one.
 */
static int open_existing(struct fs_server *s, int dirfd, const char *name, int flags, int *path_fd)
{
	struct stat st;
	int pfd, fd, ret;

	pfd = fs_open_below(s, dirfd, name, O_PATH, 0);
	if (pfd < 0)
		return pfd;
	ret = fs_stat(pfd, &st);
	if (ret == 0 && !S_ISREG(st.st_mode))
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EEXIST;
	fd = ret == 0 ? fs_reopen(s, pfd, flags) : ret;
	if (fd < 0) {
		close(pfd);
		return fd;
	}
	*path_fd = pfd;
	return fd;
}

int fs_op_create(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_create_in *a = &c->r->in.create;
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out = {.o.open_flags = fopen_flags(s, false)};
	struct fs_inode *dir, *in;
	int flags, fd, pfd = -1, ret;
	mode_t old_umask;
	struct stat st;

	dir = fs_dir(s, c->r->h.nodeid, &ret);
	if (!dir)
		return ret;
	ret = open_flags(s, a->flags, &flags);
	if (ret < 0)
		return ret;
	ret = fs_creds_enter(s, c->r->h.uid, c->r->h.gid);
	if (ret < 0)
		return ret;
	/* A new file, owned by the caller, with exactly the mode asked (the guest's umask is in).
	 */
	old_umask = umask(0);
	fd = fs_open_below(s, dir->fd, c->r->name, flags | O_CREAT | O_EXCL, a->mode & 07777);
	umask(old_umask);
	fs_creds_leave(s);
	if (fd == -EEXIST && !(a->flags & O_EXCL))
		fd = open_existing(s, dir->fd, c->r->name, flags, &pfd);
	else if (fd >= 0)
		pfd = fs_reopen(s, fd, O_PATH);
	if (fd < 0)
		return fd;
	if (pfd < 0) {
		close(fd);
		return pfd;
	}
	ret = fs_stat(pfd, &st);
	if (ret < 0) {
		close(pfd);
		close(fd);
		return ret;
	}
	/* The handle first: if the inode cannot be had, the handle is simply released again. */
	ret = fs_handle_add(&s->handles, fd, false, &out.o.fh);
	if (ret < 0) {
		close(pfd);
		return ret;
	}
	ret = fs_inode_lookup(&s->inodes, pfd, st.st_dev, st.st_ino, st.st_mode, &in);
	if (ret < 0) {
		if (fs_handle_release(&s->handles, out.o.fh) < 0)
			return -EIO; /* not reached: it was just added */
		return ret;
	}
	ret = fs_entry_of(s, in, &out.e);
	return ret < 0 ? ret : fs_put(c, &out, sizeof(out));
}

int fs_op_read(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_read_in *a = &c->r->in.read;
	struct fs_handle *h = file_handle(s, a->fh);
	size_t size = MIN(MIN((size_t)a->size, (size_t)FS_MAX_IO), iov_remaining(c->out));
	unsigned nr;
	ssize_t n;

	if (!h)
		return -EBADF;
	if (a->offset > INT64_MAX)
		return -EINVAL;
	if (!size)
		return 0;
	/* Straight into the guest's buffers: a chain has at most a queue's worth of them. */
	if (iov_take(c->out, size, s->iov, FS_MAX_IOV, &nr) < 0)
		return -EINVAL;
	n = preadv(h->fd, s->iov, (int)nr, (off_t)a->offset);
	if (n < 0)
		return -errno;
	c->len += (size_t)n;
	return 0;
}

int fs_op_write(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_write_in *a = &c->r->in.write;
	struct fs_handle *h = file_handle(s, a->fh);
	struct fuse_write_out out = {0};
	unsigned nr = 0;
	ssize_t n = 0;

	if (!h)
		return -EBADF;
	if (a->offset > INT64_MAX)
		return -EINVAL;
	if (c->r->data_len) {
		if (iov_take(c->data, c->r->data_len, s->iov, FS_MAX_IOV, &nr) < 0)
			return -EINVAL;
		n = pwritev(h->fd, s->iov, (int)nr, (off_t)a->offset);
		if (n < 0)
			return -errno;
	}
	out.size = (uint32_t)n;
	return fs_put(c, &out, sizeof(out));
}

int fs_op_release(struct fs_server *s, struct fs_call *c)
{
	uint64_t fh = c->r->in.release.fh;
	struct fs_handle *h = fs_handle_get(&s->handles, fh);

	if (!h || h->dir != (c->r->h.opcode == FUSE_RELEASEDIR))
		return -EBADF;
	return fs_handle_release(&s->handles, fh);
}

/* Nothing is buffered here (every write went to the host) and there are no remote locks. */
int fs_op_flush(struct fs_server *s, struct fs_call *c)
{
	return file_handle(s, c->r->in.flush.fh) ? 0 : -EBADF;
}

int fs_op_fsync(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_fsync_in *a = &c->r->in.fsync;
	struct fs_handle *h = fs_handle_get(&s->handles, a->fh);

	if (!h || h->dir != (c->r->h.opcode == FUSE_FSYNCDIR))
		return -EBADF;
	if (a->fsync_flags & FUSE_FSYNC_FDATASYNC)
		return fdatasync(h->fd) < 0 ? -errno : 0;
	return fsync(h->fd) < 0 ? -errno : 0;
}

/* One directory entry into the reply, with its entry for READDIRPLUS. */
static int put_dirent(struct fs_server *s, struct fs_call *c, int dirfd, bool plus,
		      const struct dirent64 *d, size_t *left)
{
	uint8_t rec[sizeof(struct fuse_direntplus) + FUSE_NAME_MAX + 8] = {0};
	size_t namelen = strnlen(d->d_name, FUSE_NAME_MAX + 1);
	size_t off = plus ? FUSE_NAME_OFFSET_DIRENTPLUS : FUSE_NAME_OFFSET;
	size_t len = FUSE_DIRENT_ALIGN(off + namelen);
	struct fuse_dirent de = {.ino = d->d_ino,
				 .off = (uint64_t)d->d_off,
				 .namelen = (uint32_t)namelen,
				 .type = d->d_type};
	struct fuse_entry_out e = {0};

	if (namelen > FUSE_NAME_MAX)
		return -ENAMETOOLONG; /* not on Linux, whose names are at most 255 bytes */
	if (len > *left)
		return -ENOSPC;
	/*
	 * The lookup comes only once the entry is known to fit: a lookup the guest never sees
	 * would never be forgotten. One that fails leaves node ID 0: a plain entry.
	 */
	if (plus && fuse_name_ok(d->d_name, namelen) && fs_lookup(s, dirfd, d->d_name, &e) < 0)
		e = (struct fuse_entry_out){0};
	if (plus)
		memcpy(rec, &e, sizeof(e));
	memcpy(rec + off - sizeof(de), &de, sizeof(de));
	memcpy(rec + off, d->d_name, namelen);
	*left -= len;
	return fs_put(c, rec, len);
}

int fs_op_readdir(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_read_in *a = &c->r->in.read;
	bool plus = c->r->h.opcode == FUSE_READDIRPLUS;
	struct fs_handle *h = fs_handle_get(&s->handles, a->fh);
	size_t left = MIN(MIN((size_t)a->size, (size_t)FS_MAX_DIR_IO), iov_remaining(c->out));
	ssize_t n;

	if (!h || !h->dir)
		return -EBADF;
	if (a->offset > INT64_MAX)
		return -EINVAL;
	/* The offset is a cookie getdents gave (d_off); the handle's position is ours to set. */
	if (lseek(h->fd, (off_t)a->offset, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		n = getdents64(h->fd, s->buf, sizeof(s->buf));
		if (n < 0)
			return c->len ? 0 : -errno;
		if (n == 0)
			return 0;
		for (ssize_t pos = 0; pos < n;) {
			const struct dirent64 *d = (const struct dirent64 *)(s->buf + pos);
			int ret = put_dirent(s, c, h->fd, plus, d, &left);

			/* Full: the next READDIR starts again at this entry's offset. */
			if (ret == -ENOSPC)
				return 0;
			if (ret < 0)
				return ret;
			pos += d->d_reclen;
		}
	}
}

int fs_op_fallocate(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_fallocate_in *a = &c->r->in.fallocate;
	struct fs_handle *h = file_handle(s, a->fh);

	if (!h)
		return -EBADF;
	if (a->offset > INT64_MAX || a->length > INT64_MAX)
		return -EINVAL;
	return fallocate(h->fd, (int)a->mode, (off_t)a->offset, (off_t)a->length) < 0 ? -errno : 0;
}

int fs_op_lseek(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_lseek_in *a = &c->r->in.lseek;
	struct fs_handle *h = file_handle(s, a->fh);
	struct fuse_lseek_out out;
	off_t r;

	if (!h)
		return -EBADF;
	/* Only the questions about data and holes: the guest keeps its own file positions. */
	if (a->whence != SEEK_DATA && a->whence != SEEK_HOLE)
		return -EINVAL;
	if (a->offset > INT64_MAX)
		return -EINVAL;
	r = lseek(h->fd, (off_t)a->offset, (int)a->whence);
	if (r < 0)
		return -errno;
	out.offset = (uint64_t)r;
	return fs_put(c, &out, sizeof(out));
}

int fs_op_copy_file_range(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_copy_file_range_in *a = &c->r->in.copy_file_range;
	struct fs_handle *in = file_handle(s, a->fh_in), *out = file_handle(s, a->fh_out);
	loff_t off_in = (loff_t)a->off_in, off_out = (loff_t)a->off_out;
	struct fuse_write_out res = {0};
	ssize_t n;

	if (!in || !out)
		return -EBADF;
	if (a->flags || a->off_in > INT64_MAX || a->off_out > INT64_MAX)
		return -EINVAL;
	/* At most FS_MAX_IO per request: the guest's kernel asks again for the rest. */
	n = copy_file_range(in->fd, &off_in, out->fd, &off_out, MIN(a->len, (uint64_t)FS_MAX_IO),
			    0);
	if (n < 0)
		return -errno;
	res.size = (uint32_t)n;
	return fs_put(c, &res, sizeof(res));
}

int fs_op_syncfs(struct fs_server *s, struct fs_call *c)
{
	struct fs_inode *root = fs_node(s, FUSE_ROOT_ID);
	int fd, ret = 0;

	/* syncfs takes an open file, not an O_PATH descriptor. */
	fd = fs_reopen(s, root->fd, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	if (syncfs(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}
