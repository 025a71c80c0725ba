/*
 * The FUSE operations on names and inodes: lookups and forgets, attributes, making and
 * removing names. Each starts from the descriptor of an inode the guest named by ID and one
 * path component (virtio/fs_internal.h says how that stays inside the shared directory).
 */
#include "virtio/fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The kernel's encoding of a device number in FUSE (new_decode_dev). */
static dev_t decode_dev(uint32_t d)
{
	return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
}

int fs_op_lookup(struct fs_server *s, struct fs_call *c)
{
	struct fuse_entry_out e;
	struct fs_inode *dir;
	int ret;

	dir = fs_dir(s, c->r->h.nodeid, &ret);
	if (!dir)
		return ret;
	ret = fs_lookup(s, dir->fd, c->r->name, &e);
	if (ret == -ENOENT && s->cfg.negative_timeout) {
		/* Node ID 0: "no such name", which the guest may remember this long. */
		e = (struct fuse_entry_out){.entry_valid = s->cfg.negative_timeout};
		ret = 0;
	}
	return ret < 0 ? ret : fs_put(c, &e, sizeof(e));
}

int fs_op_forget(struct fs_server *s, struct fs_call *c)
{
	fs_inode_forget(&s->inodes, c->r->h.nodeid, c->r->in.forget.nlookup);
	return 0;
}

int fs_op_batch_forget(struct fs_server *s, struct fs_call *c)
{
	struct fuse_forget_one one;

	/* The parser checked the array holds exactly count entries. */
	for (uint32_t i = 0; i < c->r->count; i++) {
		memcpy(&one, c->r->data + (size_t)i * sizeof(one), sizeof(one));
		fs_inode_forget(&s->inodes, one.nodeid, one.nlookup);
	}
	return 0;
}

static int put_attr(struct fs_server *s, struct fs_call *c, int fd)
{
	struct fuse_attr_out out = {.attr_valid = s->cfg.timeout};
	struct stat st;
	int ret = fs_stat(fd, &st);

	if (ret < 0)
		return ret;
	fs_fill_attr(&st, &out.attr);
	return fs_put(c, &out, sizeof(out));
}

int fs_op_getattr(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_getattr_in *a = &c->r->in.getattr;
	struct fs_handle *h = NULL;
	struct fs_inode *in;

	if (a->getattr_flags & FUSE_GETATTR_FH)
		h = fs_handle_get(&s->handles, a->fh);
	if (h)
		return put_attr(s, c, h->fd);
	in = fs_node(s, c->r->h.nodeid);
	return in ? put_attr(s, c, in->fd) : -ENOENT;
}

/* FATTR_SIZE: through the open handle when there is one, else a write-only reopen. */
static int set_size(struct fs_server *s, struct fs_inode *in, int hfd, uint64_t size)
{
	int fd = hfd, ret = 0;

	if (size > INT64_MAX)
		return -EFBIG;
	if (fd < 0) {
		/* Never reopen anything but a regular file: a FIFO's open would block. */
		if (in->mode != S_IFREG)
			return in->mode == S_IFDIR ? -EISDIR : -EINVAL;
		fd = fs_reopen(s, in->fd, O_WRONLY);
		if (fd < 0)
			return fd;
	}
	if (ftruncate(fd, (off_t)size) < 0)
		ret = -errno;
	if (fd != hfd)
		close(fd);
	return ret;
}

static int time_of(uint32_t valid, uint32_t set, uint32_t now, uint64_t sec, uint32_t nsec,
		   struct timespec *ts)
{
	if (!(valid & set)) {
		ts->tv_nsec = UTIME_OMIT;
		return 0;
	}
	if (valid & now) {
		ts->tv_nsec = UTIME_NOW;
		return 0;
	}
	if (nsec >= 1000000000u || sec > INT64_MAX)
		return -EINVAL;
	*ts = (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = nsec};
	return 0;
}

static int set_times(struct fs_server *s, struct fs_inode *in, const struct fuse_setattr_in *a)
{
	struct timespec ts[2];
	char name[16];
	int ret;

	ret = time_of(a->valid, FATTR_ATIME, FATTR_ATIME_NOW, a->atime, a->atimensec, &ts[0]);
	if (ret == 0)
		ret = time_of(a->valid, FATTR_MTIME, FATTR_MTIME_NOW, a->mtime, a->mtimensec,
			      &ts[1]);
	if (ret < 0)
		return ret;
	/* Through the magic link: it names the inode itself, a symlink included. */
	fs_fd_name(in->fd, name);
	return utimensat(s->proc_fd, name, ts, 0) < 0 ? -errno : 0;
}

int fs_op_setattr(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_setattr_in *a = &c->r->in.setattr;
	struct fs_inode *in = fs_node(s, c->r->h.nodeid);
	struct fs_handle *h = NULL;
	char name[16];
	int hfd = -1;

	if (!in)
		return -ENOENT;
	if (a->valid & FATTR_FH)
		h = fs_handle_get(&s->handles, a->fh);
	if (h && !h->dir)
		hfd = h->fd;
	/*
	 * The guest's kernel has checked the caller may do this (virtio-fs mounts with
	 * default_permissions); the server acts as itself.
	 */
	if (a->valid & FATTR_MODE) {
		fs_fd_name(in->fd, name);
		if ((hfd >= 0 ? fchmod(hfd, a->mode & 07777)
			      : fchmodat(s->proc_fd, name, a->mode & 07777, 0)) < 0)
			return -errno;
	}
	if ((a->valid & (FATTR_UID | FATTR_GID)) &&
	    fchownat(in->fd, "", a->valid & FATTR_UID ? a->uid : (uid_t)-1,
		     a->valid & FATTR_GID ? a->gid : (gid_t)-1,
		     AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (a->valid & FATTR_SIZE) {
		int ret = set_size(s, in, hfd, a->size);

		if (ret < 0)
			return ret;
	}
	if (a->valid & (FATTR_ATIME | FATTR_MTIME)) {
		int ret = set_times(s, in, a);

		if (ret < 0)
			return ret;
	}
	return put_attr(s, c, in->fd);
}

int fs_op_readlink(struct fs_server *s, struct fs_call *c)
{
	struct fs_inode *in = fs_node(s, c->r->h.nodeid);
	ssize_t n;

	if (!in)
		return -ENOENT;
	if (in->mode != S_IFLNK)
		return -EINVAL;
	n = readlinkat(in->fd, "", (char *)s->buf, FUSE_LINK_MAX + 1);
	if (n < 0)
		return -errno;
	if ((size_t)n > iov_remaining(c->out))
		return -ERANGE;
	return fs_put(c, s->buf, (size_t)n);
}

/*
 * What SYMLINK, MKNOD and MKDIR share: make the name as the caller (owned by it, checked as
 * it), with exactly the mode asked (the guest's kernel applied its umask), then look it up.
 */
enum make_kind { MAKE_SYMLINK, MAKE_NODE, MAKE_DIR };

static int make(struct fs_server *s, struct fs_call *c, enum make_kind kind, mode_t mode,
		dev_t rdev)
{
	const struct fuse_req *r = c->r;
	struct fuse_entry_out e;
	struct fs_inode *dir;
	mode_t old_umask;
	int ret;

	dir = fs_dir(s, r->h.nodeid, &ret);
	if (!dir)
		return ret;
	ret = fs_creds_enter(s, r->h.uid, r->h.gid);
	if (ret < 0)
		return ret;
	old_umask = umask(0);
	if (kind == MAKE_SYMLINK)
		ret = symlinkat(r->name2, dir->fd, r->name);
	else if (kind == MAKE_NODE)
		ret = mknodat(dir->fd, r->name, mode, rdev);
	else
		ret = mkdirat(dir->fd, r->name, mode);
	ret = ret < 0 ? -errno : 0;
	umask(old_umask);
	fs_creds_leave(s);
	if (ret == 0)
		ret = fs_lookup(s, dir->fd, r->name, &e);
	return ret < 0 ? ret : fs_put(c, &e, sizeof(e));
}

int fs_op_symlink(struct fs_server *s, struct fs_call *c)
{
	return make(s, c, MAKE_SYMLINK, 0, 0);
}

int fs_op_mknod(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_mknod_in *a = &c->r->in.mknod;

	switch (a->mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return make(s, c, MAKE_NODE, a->mode & (S_IFMT | 07777), decode_dev(a->rdev));
}

int fs_op_mkdir(struct fs_server *s, struct fs_call *c)
{
	return make(s, c, MAKE_DIR, c->r->in.mkdir.mode & 07777, 0);
}

static int remove_name(struct fs_server *s, struct fs_call *c, int flags)
{
	struct fs_inode *dir;
	int ret;

	dir = fs_dir(s, c->r->h.nodeid, &ret);
	if (!dir)
		return ret;
	return unlinkat(dir->fd, c->r->name, flags) < 0 ? -errno : 0;
}

int fs_op_unlink(struct fs_server *s, struct fs_call *c)
{
	return remove_name(s, c, 0);
}

int fs_op_rmdir(struct fs_server *s, struct fs_call *c)
{
	return remove_name(s, c, AT_REMOVEDIR);
}

int fs_op_rename(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_req *r = c->r;
	bool two = r->h.opcode == FUSE_RENAME2;
	uint64_t newdir = two ? r->in.rename2.newdir : r->in.rename.newdir;
	uint32_t flags = two ? r->in.rename2.flags : 0;
	struct fs_inode *from, *to;
	int ret;

	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT))
		return -EINVAL;
	from = fs_dir(s, r->h.nodeid, &ret);
	if (!from)
		return ret;
	to = fs_dir(s, newdir, &ret);
	if (!to)
		return ret;
	return renameat2(from->fd, r->name, to->fd, r->name2, flags) < 0 ? -errno : 0;
}

int fs_op_link(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_req *r = c->r;
	struct fs_inode *old = fs_node(s, r->in.link.oldnodeid), *dir;
	struct fuse_entry_out e;
	char name[16];
	int ret;

	if (!old)
		return -ENOENT;
	if (old->mode == S_IFDIR)
		return -EPERM;
	dir = fs_dir(s, r->h.nodeid, &ret);
	if (!dir)
		return ret;
	/* The inode itself through its magic link: linkat(AT_EMPTY_PATH) needs a privilege. */
	fs_fd_name(old->fd, name);
	if (linkat(s->proc_fd, name, dir->fd, r->name, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	ret = fs_lookup(s, dir->fd, r->name, &e);
	return ret < 0 ? ret : fs_put(c, &e, sizeof(e));
}

int fs_op_statfs(struct fs_server *s, struct fs_call *c)
{
	struct fs_inode *in = fs_node(s, c->r->h.nodeid);
	struct fuse_statfs_out out;
	struct statfs st;

	if (!in)
		return -ENOENT;
	if (fstatfs(in->fd, &st) < 0)
		return -errno;
	out = (struct fuse_statfs_out){.st = {
					       .blocks = st.f_blocks,
					       .bfree = st.f_bfree,
					       .bavail = st.f_bavail,
					       .files = st.f_files,
					       .ffree = st.f_ffree,
					       .bsize = (uint32_t)st.f_bsize,
					       .namelen = (uint32_t)st.f_namelen,
					       .frsize = (uint32_t)st.f_frsize,
				       }};
	return fs_put(c, &out, sizeof(out));
}

int fs_op_access(struct fs_server *s, struct fs_call *c)
{
	struct fs_inode *in = fs_node(s, c->r->h.nodeid);
	char name[16];
	int ret;

	if (!in)
		return -ENOENT;
	if (c->r->in.access.mask & ~(uint32_t)(R_OK | W_OK | X_OK))
		return -EINVAL;
	ret = fs_creds_enter(s, c->r->h.uid, c->r->h.gid);
	if (ret < 0)
		return ret;
	fs_fd_name(in->fd, name);
	/* AT_EACCESS: as the ids just taken (the file-system ids), not the real ones. */
	if (faccessat(s->proc_fd, name, (int)c->r->in.access.mask, AT_EACCESS) < 0)
		ret = -errno;
	fs_creds_leave(s);
	return ret;
}
