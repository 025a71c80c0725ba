/*
 * Extended attributes. There are no *xattrat calls on Linux 6.1 and O_PATH descriptors
 * refuse the f*xattr ones, so the path-based calls reach an inode through its magic link in
 * /proc/self/fd, which names the inode itself (a symlink or special file included) and
 * nothing else. Sandboxed, that proc is the device's private one and the calls go relative
 * to it (it is the working directory); unsandboxed, through the VMM's own /proc.
 */
#include "virtio/fs_internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/xattr.h>
#include <unistd.h>

static int inode_path(struct fs_server *s, uint64_t nodeid, char path[40])
{
	struct fs_inode *in = fs_node(s, nodeid);

	if (!in)
		return -ENOENT;
	if (s->proc_private) {
		if (!s->cwd_in_proc && fchdir(s->proc_fd) < 0)
			return -errno;
		s->cwd_in_proc = true;
		snprintf(path, 40, "%d", in->fd);
	} else {
		snprintf(path, 40, "/proc/self/fd/%d", in->fd);
	}
	return 0;
}

/* Room for a value: what the guest asked, bounded by the limit and its buffers. */
static size_t value_room(struct fs_call *c, uint32_t size)
{
	return MIN(MIN((size_t)size, (size_t)FUSE_XATTR_MAX), iov_remaining(c->out));
}

/* GETXATTR and LISTXATTR: the size alone when asked 0, else the value if it fits. */
static int reply_sized(struct fs_server *s, struct fs_call *c, uint32_t size, ssize_t n)
{
	struct fuse_getxattr_out out = {0};

	if (n < 0)
		return -errno;
	if (size && (size_t)n > value_room(c, size))
		return -ERANGE;
	if (!size) {
		out.size = (uint32_t)n;
		return fs_put(c, &out, sizeof(out));
	}
	return fs_put(c, s->buf, (size_t)n);
}

int fs_op_getxattr(struct fs_server *s, struct fs_call *c)
{
	uint32_t size = c->r->in.getxattr.size;
	char path[40];
	int ret = inode_path(s, c->r->h.nodeid, path);

	if (ret < 0)
		return ret;
	return reply_sized(s, c, size,
			   getxattr(path, c->r->name, size ? s->buf : NULL, value_room(c, size)));
}

int fs_op_listxattr(struct fs_server *s, struct fs_call *c)
{
	uint32_t size = c->r->in.getxattr.size;
	char path[40];
	int ret = inode_path(s, c->r->h.nodeid, path);

	if (ret < 0)
		return ret;
	return reply_sized(s, c, size,
			   listxattr(path, size ? (char *)s->buf : NULL, value_room(c, size)));
}

int fs_op_setxattr(struct fs_server *s, struct fs_call *c)
{
	uint32_t flags = c->r->in.setxattr.flags;
	char path[40];
	int ret;

	if (flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	ret = inode_path(s, c->r->h.nodeid, path);
	if (ret < 0)
		return ret;
	return setxattr(path, c->r->name, c->r->data, c->r->data_len, (int)flags) < 0 ? -errno : 0;
}

int fs_op_removexattr(struct fs_server *s, struct fs_call *c)
{
	char path[40];
	int ret = inode_path(s, c->r->h.nodeid, path);

	if (ret < 0)
		return ret;
	return removexattr(path, c->r->name) < 0 ? -errno : 0;
}
