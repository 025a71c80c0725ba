/*
 * The FUSE server's session and dispatch (INIT, DESTROY, one request in and its reply out)
 * and the helpers every operation uses. The operations themselves are in fs_entry.c (names
 * and inodes), fs_file.c (open files and directories) and fs_xattr.c.
 */
#include "virtio/fs_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "core/log.h"

/* What the server asks of the kernel in INIT, whatever the cache policy. */
#define BASE_FLAGS                                                                                 \
	(FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |           \
	 FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES)
#define MAX_BACKGROUND	     32
#define CONGESTION_THRESHOLD 24

/* ---- helpers for the operations ---- */

int fs_put(struct fs_call *c, const void *p, size_t n)
{
	int ret = iov_write(c->out, p, n);

	if (ret == 0)
		c->len += n;
	return ret < 0 ? -EINVAL : 0;
}

struct fs_inode *fs_node(struct fs_server *s, uint64_t nodeid)
{
	return fs_inode_get(&s->inodes, nodeid);
}

struct fs_inode *fs_dir(struct fs_server *s, uint64_t nodeid, int *err)
{
	struct fs_inode *in = fs_node(s, nodeid);

	if (!in)
		*err = -ENOENT;
	else if (in->mode != S_IFDIR)
		*err = -ENOTDIR;
	return in && in->mode == S_IFDIR ? in : NULL;
}

int fs_open_below(struct fs_server *s, int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.mode = flags & O_CREAT ? mode : 0,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd;

	if (s->have_openat2) {
		fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		/* Linux < 5.6: one component that is not ".." needs only O_NOFOLLOW. */
		s->have_openat2 = false;
	}
	fd = openat(dirfd, name, (int)how.flags, (mode_t)how.mode);
	return fd < 0 ? -errno : fd;
}

void fs_fd_name(int fd, char name[16])
{
	snprintf(name, 16, "%d", fd);
}

int fs_reopen(struct fs_server *s, int fd, int flags)
{
	char name[16];
	int r;

	fs_fd_name(fd, name);
	r = openat(s->proc_fd, name, flags | O_CLOEXEC);
	return r < 0 ? -errno : r;
}

int fs_stat(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* The kernel's encoding of a device number in FUSE (new_encode_dev). */
static uint32_t encode_dev(dev_t d)
{
	uint32_t ma = major(d), mi = minor(d);

	return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

void fs_fill_attr(const struct stat *st, struct fuse_attr *a)
{
	*a = (struct fuse_attr){
		.ino = st->st_ino,
		.size = (uint64_t)st->st_size,
		.blocks = (uint64_t)st->st_blocks,
		.atime = (uint64_t)st->st_atim.tv_sec,
		.mtime = (uint64_t)st->st_mtim.tv_sec,
		.ctime = (uint64_t)st->st_ctim.tv_sec,
		.atimensec = (uint32_t)st->st_atim.tv_nsec,
		.mtimensec = (uint32_t)st->st_mtim.tv_nsec,
		.ctimensec = (uint32_t)st->st_ctim.tv_nsec,
		.mode = st->st_mode,
		.nlink = (uint32_t)MIN(st->st_nlink, (nlink_t)UINT32_MAX),
		.uid = st->st_uid,
		.gid = st->st_gid,
		.rdev = encode_dev(st->st_rdev),
		.blksize = (uint32_t)st->st_blksize,
	};
}

static void fill_entry(struct fs_server *s, struct fs_inode *in, const struct stat *st,
		       struct fuse_entry_out *e)
{
	*e = (struct fuse_entry_out){
		.nodeid = fs_inode_id(&s->inodes, in),
		.generation = in->gen,
		.entry_valid = s->cfg.timeout,
		.attr_valid = s->cfg.timeout,
	};
	fs_fill_attr(st, &e->attr);
}

int fs_lookup(struct fs_server *s, int dirfd, const char *name, struct fuse_entry_out *e)
{
	struct fs_inode *in;
	struct stat st;
	int fd, ret;

	fd = fs_open_below(s, dirfd, name, O_PATH, 0);
	if (fd < 0)
		return fd;
	ret = fs_stat(fd, &st);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	ret = fs_inode_lookup(&s->inodes, fd, st.st_dev, st.st_ino, st.st_mode, &in);
	if (ret < 0)
		return ret;
	fill_entry(s, in, &st, e);
	return 0;
}

int fs_entry_of(struct fs_server *s, struct fs_inode *in, struct fuse_entry_out *e)
{
	struct stat st;
	int ret = fs_stat(in->fd, &st);

	if (ret == 0)
		fill_entry(s, in, &st, e);
	return ret;
}

int fs_creds_enter(struct fs_server *s, uid_t uid, gid_t gid)
{
	/* setfsuid/setfsgid say nothing on failure: read the ids back to know. */
	if (gid != s->base_gid) {
		setfsgid(gid);
		if ((gid_t)setfsgid((gid_t)-1) != gid) {
			fs_creds_leave(s);
			return -EPERM;
		}
	}
	if (uid != s->base_uid) {
		setfsuid(uid);
		if ((uid_t)setfsuid((uid_t)-1) != uid) {
			fs_creds_leave(s);
			return -EPERM;
		}
	}
	return 0;
}

void fs_creds_leave(struct fs_server *s)
{
	setfsuid(s->base_uid);
	setfsgid(s->base_gid);
}

/* ---- the session ---- */

static uint64_t wanted_flags(const struct fs_server *s)
{
	uint64_t f = BASE_FLAGS;

	if (s->cfg.cache == FS_CACHE_AUTO)
		f |= FUSE_AUTO_INVAL_DATA;
	if (s->cfg.cache == FS_CACHE_ALWAYS)
		f |= FUSE_CACHE_SYMLINKS;
	if (s->cfg.writeback)
		f |= FUSE_WRITEBACK_CACHE;
	return f;
}

static void end_session(struct fs_server *s)
{
	fs_handles_clear(&s->handles);
	fs_inodes_clear(&s->inodes);
	s->initialized = false;
	s->flags = 0;
}

static int op_init(struct fs_server *s, struct fs_call *c)
{
	const struct fuse_init_in *in = &c->r->in.init;
	struct fuse_init_out out = {.major = FUSE_SERVER_MAJOR};
	uint64_t kflags = in->flags;

	/* A newer major: say ours; the kernel then offers it or gives up. */
	if (in->major > FUSE_SERVER_MAJOR)
		return fs_put(c, &out, sizeof(out));
	if (in->major < FUSE_SERVER_MAJOR || in->minor < FUSE_SERVER_MIN_MINOR) {
		log_warn(s->lg, "%s: the guest speaks FUSE %u.%u; this server needs 7.%u or later",
			 s->name, in->major, in->minor, FUSE_SERVER_MIN_MINOR);
		return -EPROTO;
	}
	/* A new INIT starts a new session (a remount): nothing of the last one survives. */
	end_session(s);
	if (kflags & FUSE_INIT_EXT)
		kflags |= (uint64_t)in->flags2 << 32;
	s->minor = MIN(in->minor, (uint32_t)FUSE_SERVER_MINOR);
	s->flags = kflags & wanted_flags(s);
	s->max_write = FS_MAX_IO;
	out.minor = s->minor;
	out.max_readahead = in->max_readahead;
	out.flags = (uint32_t)s->flags;
	out.max_background = MAX_BACKGROUND;
	out.congestion_threshold = CONGESTION_THRESHOLD;
	out.max_write = s->max_write;
	out.time_gran = 1;
	out.max_pages = FS_MAX_PAGES;
	s->initialized = true;
	log_debug(s->lg, "%s: FUSE %u.%u session, flags 0x%llx", s->name, out.major, out.minor,
		  (unsigned long long)s->flags);
	return fs_put(c, &out, sizeof(out));
}

static int op_destroy(struct fs_server *s, struct fs_call *c)
{
	end_session(s);
	return 0;
}

/* Requests are served one at a time, start to end: there is never one to interrupt. */
static int op_interrupt(struct fs_server *s, struct fs_call *c)
{
	return 0;
}

static const fs_op_fn handlers[] = {
	[FUSE_LOOKUP] = fs_op_lookup,
	[FUSE_FORGET] = fs_op_forget,
	[FUSE_GETATTR] = fs_op_getattr,
	[FUSE_SETATTR] = fs_op_setattr,
	[FUSE_READLINK] = fs_op_readlink,
	[FUSE_SYMLINK] = fs_op_symlink,
	[FUSE_MKNOD] = fs_op_mknod,
	[FUSE_MKDIR] = fs_op_mkdir,
	[FUSE_UNLINK] = fs_op_unlink,
	[FUSE_RMDIR] = fs_op_rmdir,
	[FUSE_RENAME] = fs_op_rename,
	[FUSE_LINK] = fs_op_link,
	[FUSE_OPEN] = fs_op_open,
	[FUSE_READ] = fs_op_read,
	[FUSE_WRITE] = fs_op_write,
	[FUSE_STATFS] = fs_op_statfs,
	[FUSE_RELEASE] = fs_op_release,
	[FUSE_FSYNC] = fs_op_fsync,
	[FUSE_SETXATTR] = fs_op_setxattr,
	[FUSE_GETXATTR] = fs_op_getxattr,
	[FUSE_LISTXATTR] = fs_op_listxattr,
	[FUSE_REMOVEXATTR] = fs_op_removexattr,
	[FUSE_FLUSH] = fs_op_flush,
	[FUSE_INIT] = op_init,
	[FUSE_OPENDIR] = fs_op_open,
	[FUSE_READDIR] = fs_op_readdir,
	[FUSE_RELEASEDIR] = fs_op_release,
	[FUSE_FSYNCDIR] = fs_op_fsync,
	[FUSE_ACCESS] = fs_op_access,
	[FUSE_CREATE] = fs_op_create,
	[FUSE_INTERRUPT] = op_interrupt,
	[FUSE_DESTROY] = op_destroy,
	[FUSE_BATCH_FORGET] = fs_op_batch_forget,
	[FUSE_FALLOCATE] = fs_op_fallocate,
	[FUSE_READDIRPLUS] = fs_op_readdir,
	[FUSE_RENAME2] = fs_op_rename,
	[FUSE_LSEEK] = fs_op_lseek,
	[FUSE_COPY_FILE_RANGE] = fs_op_copy_file_range,
	[FUSE_SYNCFS] = fs_op_syncfs,
};

static void report_bad(struct fs_server *s, const struct fuse_in_header *h, const char *why)
{
	const struct fuse_op_info *op = h ? fuse_op(h->opcode) : NULL;

	if (!log_ratelimit(&s->nr_bad))
		return;
	log_warn(s->lg, "%s: malformed request%s%s: %s [%llu so far]", s->name, op ? " " : "",
		 op ? op->name : "", why, (unsigned long long)s->nr_bad);
}

/*
 * Copies the request's arguments out of the guest's buffers and parses them. WRITE's data
 * stays where it is: only its fuse_write_in is copied, the rest is checked for length.
 */
static int read_request(struct fs_server *s, const struct fuse_in_header *h, size_t arg_len,
			struct iov_cursor *in, struct fuse_req *r)
{
	size_t copy =
		h->opcode == FUSE_WRITE ? MIN(arg_len, sizeof(struct fuse_write_in)) : arg_len;
	int ret;

	if (copy > FUSE_MAX_ARGS_LEN)
		return -E2BIG;
	if (iov_read(in, s->args, copy) < 0)
		return -EINVAL;
	ret = fuse_parse(h, s->args, copy, r);
	if (ret < 0)
		return ret;
	if (h->opcode == FUSE_WRITE && r->data_len > FS_MAX_IO)
		return -E2BIG;
	if (h->opcode == FUSE_WRITE && r->data_len != arg_len - copy)
		return -EINVAL;
	return 0;
}

size_t fs_server_handle(struct fs_server *s, struct iov_cursor *in, struct iov_cursor *out)
{
	size_t in_bytes = iov_remaining(in), arg_len, ext;
	const struct fuse_op_info *op;
	struct fuse_out_header oh;
	struct iov_cursor hdr = *out, body;
	struct fuse_in_header h;
	struct fuse_req r;
	struct fs_call c = {.r = &r, .data = in, .out = &body};
	int err = 0;

	if (iov_read(in, &h, sizeof(h)) < 0) {
		report_bad(s, NULL, "shorter than its header");
		return 0;
	}
	op = fuse_op(h.opcode);
	ext = (size_t)h.total_extlen * 8;
	/* The request's own length must be what the driver gave (trailing bytes are ignored). */
	if (!op) {
		err = -ENOSYS; /* unknown, or not served here (locks, ioctl, poll, DAX ...) */
	} else if (h.len < sizeof(h) + ext || h.len > in_bytes) {
		report_bad(s, &h, "its length is not what the buffers hold");
		err = -EINVAL;
	} else {
		/* Extensions (security contexts, groups) come only when offered: never here. */
		arg_len = h.len - sizeof(h) - ext;
		err = read_request(s, &h, arg_len, in, &r);
		if (err == -EINVAL || err == -E2BIG)
			report_bad(s, &h, err == -E2BIG ? "too large" : "bad arguments");
	}
	if (op && op->reply == FUSE_REPLY_NONE) {
		if (err == 0 && s->initialized)
			(void)handlers[h.opcode](s, &c);
		return 0;
	}
	if (iov_split(&hdr, sizeof(oh), &body) < 0) {
		report_bad(s, &h, "no room for a reply");
		return 0;
	}
	if (err == 0 && !s->initialized && h.opcode != FUSE_INIT)
		err = -EIO;
	if (err == 0 && op->reply == FUSE_REPLY_FIXED && iov_remaining(&body) < op->reply_len) {
		report_bad(s, &h, "no room for its reply");
		err = -EINVAL;
	}
	if (err == 0)
		err = handlers[h.opcode](s, &c);
	/* Only an errno the guest's kernel knows: a host oddity becomes EIO. */
	if (err > 0 || err < -4095)
		err = -EIO;
	oh = (struct fuse_out_header){.len = (uint32_t)(sizeof(oh) + (err ? 0 : c.len)),
				      .error = err,
				      .unique = h.unique};
	if (iov_write(&hdr, &oh, sizeof(oh)) < 0)
		return 0;
	return oh.len;
}

/* ---- life ---- */

int fs_server_create(const struct fs_server_params *p, struct fs_server **out)
{
	struct fs_server *s;
	struct stat st;
	int ret;

	if (fs_stat(p->root_fd, &st) < 0 || !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *p->cfg;
	s->lg = p->lg;
	snprintf(s->name, sizeof(s->name), "%s", p->name ? p->name : "virtio-fs");
	s->have_openat2 = true;
	s->base_uid = geteuid();
	s->base_gid = getegid();
	ret = fs_handles_init(&s->handles, p->max_handles);
	if (ret < 0)
		goto err_free;
	ret = fs_inodes_init(&s->inodes, p->max_inodes, p->root_fd, st.st_dev, st.st_ino);
	if (ret < 0)
		goto err_handles;
	s->proc_fd = p->proc_self_fd;
	s->proc_private = p->private_proc;
	*out = s;
	return 0;
err_handles:
	fs_handles_destroy(&s->handles);
err_free:
	free(s);
	return ret;
}

void fs_server_reset(struct fs_server *s)
{
	end_session(s);
}

void fs_server_destroy(struct fs_server *s)
{
	if (!s)
		return;
	fs_handles_destroy(&s->handles);
	fs_inodes_destroy(&s->inodes);
	close_fd(&s->proc_fd);
	free(s);
}

void fs_server_counts(const struct fs_server *s, uint32_t *inodes, uint32_t *handles)
{
	*inodes = s->inodes.nr;
	*handles = s->handles.nr;
}
