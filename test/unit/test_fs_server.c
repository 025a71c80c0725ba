/*
 * The virtio-fs FUSE server (virtio/fs_server.c) against a scratch directory, driven by the
 * requests Linux 6.1's driver sends: the session (INIT's version and flags, requests before
 * it, DESTROY), every operation the driver uses with its effect checked on the host side,
 * node IDs and handles (one ID per file, forgotten ones dead), the bounds, the cache policies
 * as open flags, and malformed or unknown requests answered without harm.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "test/unit/fs_env.h"
#include "test/unit/testutil.h"
#include "virtio/fuse.h"

#define ROOT FUSE_ROOT_ID

static void host_read(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, cap - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
}

static bool host_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static struct fuse_attr getattr_(struct fs_env *e, uint64_t node)
{
	struct fuse_getattr_in in = {0};
	struct fuse_msg m = {
		.opcode = FUSE_GETATTR, .nodeid = node, .arg = &in, .arg_len = sizeof(in)};
	struct fuse_attr_out out;

	ck_assert_int_eq(fs_env_call(e, &m, sizeof(out)), 0);
	ck_assert_uint_eq(e->body_len, sizeof(out));
	memcpy(&out, e->body, sizeof(out));
	return out.attr;
}

START_TEST(init_negotiates_the_version)
{
	struct fuse_init_in in = {
		.major = 7, .minor = 38, .flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS};
	struct fuse_msg m = {.opcode = FUSE_INIT, .arg = &in, .arg_len = sizeof(in)};
	struct fuse_entry_out entry;
	struct fuse_init_out out;
	struct fs_env e;

	fs_env_up(&e, 64, 16);
	/* Nothing but INIT before INIT. */
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "x", &entry), -EIO);
	/* Only the flags both want: never POSIX locks (the guest keeps its own). */
	ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
	memcpy(&out, e.body, sizeof(out));
	ck_assert_uint_eq(out.major, 7);
	ck_assert_uint_eq(out.minor, 38);
	ck_assert_uint_eq(out.flags, FUSE_ASYNC_READ);
	/* A kernel speaking an older minor gets that minor; a 16-byte (pre-7.36) INIT is fine. */
	in.minor = 31;
	m.arg_len = 16;
	ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
	memcpy(&out, e.body, sizeof(out));
	ck_assert_uint_eq(out.minor, 31);
	/* Older than virtio-fs itself: refused. */
	in.minor = 30;
	ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EPROTO);
	/* A newer major: the server says 7 and waits for the kernel to come down to it. */
	in.major = 8;
	ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
	memcpy(&out, e.body, sizeof(out));
	ck_assert_uint_eq(out.major, 7);
	/* Shorter than its oldest form. */
	in.major = 7;
	in.minor = 38;
	m.arg_len = 12;
	ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EINVAL);
	fs_env_down(&e);
}
END_TEST

START_TEST(init_flags_follow_the_options)
{
	struct fs_server_config cfg = {.cache = FS_CACHE_ALWAYS, .timeout = 7, .writeback = true};
	struct fuse_init_in in = {.major = 7, .minor = 38, .flags = 0xffffffff};
	struct fuse_msg m = {.opcode = FUSE_INIT, .arg = &in, .arg_len = sizeof(in)};
	struct fuse_init_out out;
	struct fuse_entry_out entry;
	uint64_t fh;
	struct fs_env e;

	fs_env_up_cfg(&e, &cfg, 64, 16);
	ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
	memcpy(&out, e.body, sizeof(out));
	ck_assert(out.flags & FUSE_WRITEBACK_CACHE);
	ck_assert(out.flags & FUSE_CACHE_SYMLINKS);
	ck_assert(out.flags & FUSE_DO_READDIRPLUS);
	ck_assert(out.flags & FUSE_MAX_PAGES);
	ck_assert(!(out.flags & (FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_EXPORT_SUPPORT |
				 FUSE_POSIX_ACL | FUSE_SETXATTR_EXT | FUSE_DONT_MASK)));
	/* cache=always: pages and listings are kept; timeout is the entry and attribute life. */
	ck_assert_int_eq(fs_create_(&e, ROOT, "f", O_WRONLY, 0644, &entry, &fh), 0);
	ck_assert_uint_eq(entry.entry_valid, 7);
	ck_assert_uint_eq(entry.attr_valid, 7);
	ck_assert_uint_eq(((struct fuse_open_out *)(e.body + sizeof(entry)))->open_flags,
			  FOPEN_KEEP_CACHE);
	/* Write-back: a write-only open is read-write on the host (the guest reads pages). */
	{
		char buf[8];
		size_t n;

		ck_assert_int_eq(fs_write_(&e, entry.nodeid, fh, 0, "xyz", 3), 0);
		ck_assert_int_eq(fs_read_(&e, entry.nodeid, fh, 0, buf, sizeof(buf), &n), 0);
		ck_assert_uint_eq(n, 3);
	}
	ck_assert_int_eq(fs_open_(&e, ROOT, 0, true, &fh), 0);
	ck_assert_uint_eq(((struct fuse_open_out *)e.body)->open_flags,
			  FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR);
	fs_env_down(&e);

	cfg.cache = FS_CACHE_NEVER;
	fs_env_up_cfg(&e, &cfg, 64, 16);
	fs_env_init(&e);
	ck_assert_int_eq(fs_create_(&e, ROOT, "g", O_RDWR, 0600, &entry, &fh), 0);
	ck_assert_uint_eq(((struct fuse_open_out *)(e.body + sizeof(entry)))->open_flags,
			  FOPEN_DIRECT_IO);
	fs_env_down(&e);
}
END_TEST

START_TEST(files_and_directories)
{
	struct fuse_entry_out d, f, again, l;
	char buf[256], names[512];
	uint64_t fh;
	size_t n;
	struct fs_env e;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "dir", 0750, &d), 0);
	ck_assert(S_ISDIR(d.attr.mode));
	ck_assert_uint_eq(d.attr.mode & 07777, 0750);
	ck_assert(host_exists(fs_env_path(&e, e.share, "dir")));
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "dir", 0750, NULL), -EEXIST);

	ck_assert_int_eq(fs_create_(&e, d.nodeid, "file", O_RDWR, 0640, &f, &fh), 0);
	ck_assert(S_ISREG(f.attr.mode));
	ck_assert_uint_eq(f.attr.mode & 07777, 0640);
	ck_assert_int_eq(fs_write_(&e, f.nodeid, fh, 0, "hello, host", 11), 0);
	ck_assert_int_eq(fs_read_(&e, f.nodeid, fh, 7, buf, sizeof(buf), &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert(memcmp(buf, "host", 4) == 0);
	ck_assert_int_eq(fs_release_(&e, f.nodeid, fh, false), 0);
	ck_assert_int_eq(fs_release_(&e, f.nodeid, fh, false), -EBADF);
	host_read(fs_env_path(&e, e.share, "dir/file"), buf, sizeof(buf));
	ck_assert_str_eq(buf, "hello, host");

	/* One file, one node ID, however it is reached. */
	ck_assert_int_eq(fs_lookup_(&e, d.nodeid, "file", &again), 0);
	ck_assert_uint_eq(again.nodeid, f.nodeid);
	ck_assert_uint_eq(again.attr.size, 11);
	ck_assert_uint_eq(getattr_(&e, f.nodeid).size, 11);

	/* A hard link is the same inode. */
	{
		struct fuse_link_in li = {.oldnodeid = f.nodeid};
		struct fuse_msg m = {.opcode = FUSE_LINK,
				     .nodeid = ROOT,
				     .arg = &li,
				     .arg_len = sizeof(li),
				     .name = "hard"};

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(l)), 0);
		memcpy(&l, e.body, sizeof(l));
		ck_assert_uint_eq(l.nodeid, f.nodeid);
		ck_assert_uint_eq(l.attr.nlink, 2);
	}
	/* Rename moves the name; the node ID stays with the file. */
	{
		struct fuse_rename_in ri = {.newdir = ROOT};
		struct fuse_msg m = {.opcode = FUSE_RENAME,
				     .nodeid = d.nodeid,
				     .arg = &ri,
				     .arg_len = sizeof(ri),
				     .name = "file",
				     .name2 = "moved"};
		struct fuse_rename2_in r2 = {.newdir = ROOT, .flags = RENAME_NOREPLACE};
		struct fuse_msg m2 = {.opcode = FUSE_RENAME2,
				      .nodeid = ROOT,
				      .arg = &r2,
				      .arg_len = sizeof(r2),
				      .name = "moved",
				      .name2 = "hard"};

		ck_assert_int_eq(fs_env_call(&e, &m, 0), 0);
		ck_assert(!host_exists(fs_env_path(&e, e.share, "dir/file")));
		ck_assert(host_exists(fs_env_path(&e, e.share, "moved")));
		ck_assert_int_eq(fs_lookup_(&e, ROOT, "moved", &again), 0);
		ck_assert_uint_eq(again.nodeid, f.nodeid);
		ck_assert_int_eq(fs_env_call(&e, &m2, 0), -EEXIST);
		r2.flags = 1u << 7; /* no such flag */
		ck_assert_int_eq(fs_env_call(&e, &m2, 0), -EINVAL);
	}
	ck_assert_int_eq(fs_list_(&e, ROOT, false, names, sizeof(names)), 0);
	ck_assert_ptr_nonnull(strstr(names, "dir/"));
	ck_assert_ptr_nonnull(strstr(names, "moved/"));
	ck_assert_ptr_nonnull(strstr(names, "hard/"));
	ck_assert_int_eq(fs_list_(&e, ROOT, true, names, sizeof(names)), 0);
	ck_assert_ptr_nonnull(strstr(names, "moved/"));

	/* Removing names. */
	{
		struct fuse_msg un = {.opcode = FUSE_UNLINK, .nodeid = ROOT, .name = "hard"};
		struct fuse_msg rm = {.opcode = FUSE_RMDIR, .nodeid = ROOT, .name = "dir"};
		struct fuse_msg rmf = {.opcode = FUSE_RMDIR, .nodeid = ROOT, .name = "moved"};

		ck_assert_int_eq(fs_env_call(&e, &un, 0), 0);
		ck_assert_int_eq(fs_env_call(&e, &rmf, 0), -ENOTDIR);
		ck_assert_int_eq(fs_env_call(&e, &rm, 0), 0);
		ck_assert(!host_exists(fs_env_path(&e, e.share, "hard")));
		ck_assert(!host_exists(fs_env_path(&e, e.share, "dir")));
		ck_assert_int_eq(fs_lookup_(&e, ROOT, "dir", NULL), -ENOENT);
	}
	fs_env_down(&e);
}
END_TEST

START_TEST(symlinks_nodes_and_attributes)
{
	struct fuse_entry_out s, fifo, f;
	struct fs_env e;
	char target[64];
	uint64_t fh;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	{
		struct fuse_msg m = {.opcode = FUSE_SYMLINK,
				     .nodeid = ROOT,
				     .name = "link",
				     .name2 = "a/b/../c"};
		struct fuse_msg rl = {.opcode = FUSE_READLINK, .nodeid = 0};

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(s)), 0);
		memcpy(&s, e.body, sizeof(s));
		ck_assert(S_ISLNK(s.attr.mode));
		rl.nodeid = s.nodeid;
		ck_assert_int_eq(fs_env_call(&e, &rl, 4096), 0);
		ck_assert_uint_eq(e.body_len, 8);
		ck_assert(memcmp(e.body, "a/b/../c", 8) == 0);
		ck_assert_int_eq(readlink(fs_env_path(&e, e.share, "link"), target, sizeof(target)),
				 8);
		/* READLINK of what is not a symlink. */
		rl.nodeid = ROOT;
		ck_assert_int_eq(fs_env_call(&e, &rl, 4096), -EINVAL);
	}
	{
		struct fuse_mknod_in mk = {.mode = S_IFIFO | 0600};
		struct fuse_msg m = {.opcode = FUSE_MKNOD,
				     .nodeid = ROOT,
				     .arg = &mk,
				     .arg_len = sizeof(mk),
				     .name = "fifo"};

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(fifo)), 0);
		memcpy(&fifo, e.body, sizeof(fifo));
		ck_assert(S_ISFIFO(fifo.attr.mode));
		/* Never opened: that would block the device until a writer came. */
		ck_assert_int_eq(fs_open_(&e, fifo.nodeid, O_RDONLY, false, &fh), -ENXIO);
		mk.mode = S_IFDIR | 0755;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(fifo)), -EINVAL);
	}
	/* SETATTR: mode, size, times, owner; the host sees each. */
	ck_assert_int_eq(fs_create_(&e, ROOT, "f", O_RDWR, 0600, &f, &fh), 0);
	{
		struct fuse_setattr_in sa = {.valid = FATTR_MODE | FATTR_SIZE | FATTR_MTIME |
						      FATTR_UID | FATTR_GID,
					     .mode = 0604,
					     .size = 12345,
					     .mtime = 1000000,
					     .mtimensec = 5,
					     .uid = 1234,
					     .gid = 4321};
		struct fuse_msg m = {.opcode = FUSE_SETATTR,
				     .nodeid = f.nodeid,
				     .arg = &sa,
				     .arg_len = sizeof(sa)};
		struct fuse_attr_out out;
		struct stat st;

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
		memcpy(&out, e.body, sizeof(out));
		ck_assert_uint_eq(out.attr.mode & 07777, 0604);
		ck_assert_uint_eq(out.attr.size, 12345);
		ck_assert_uint_eq(out.attr.mtime, 1000000);
		ck_assert_uint_eq(out.attr.uid, 1234);
		ck_assert_int_eq(stat(fs_env_path(&e, e.share, "f"), &st), 0);
		ck_assert_uint_eq(st.st_size, 12345);
		ck_assert_uint_eq(st.st_gid, 4321);
		ck_assert_uint_eq(st.st_mtim.tv_nsec, 5);
		/* Truncate through the handle. */
		sa = (struct fuse_setattr_in){.valid = FATTR_SIZE | FATTR_FH, .fh = fh, .size = 3};
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
		ck_assert_int_eq(stat(fs_env_path(&e, e.share, "f"), &st), 0);
		ck_assert_uint_eq(st.st_size, 3);
		/* A time with more than a second of nanoseconds. */
		sa = (struct fuse_setattr_in){.valid = FATTR_ATIME, .atimensec = 1000000000};
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EINVAL);
		/* The size of a directory. */
		sa = (struct fuse_setattr_in){.valid = FATTR_SIZE};
		m.nodeid = ROOT;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EISDIR);
		m.nodeid = fifo.nodeid;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EINVAL);
	}
	{
		struct fuse_msg m = {.opcode = FUSE_STATFS, .nodeid = ROOT};
		struct fuse_statfs_out out;

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
		memcpy(&out, e.body, sizeof(out));
		ck_assert_uint_gt(out.st.blocks, 0);
		ck_assert_uint_eq(out.st.namelen, 255);
	}
	{
		struct fuse_access_in a = {.mask = R_OK | W_OK};
		struct fuse_msg m = {
			.opcode = FUSE_ACCESS, .nodeid = f.nodeid, .arg = &a, .arg_len = sizeof(a)};

		ck_assert_int_eq(fs_env_call(&e, &m, 0), 0);
		a.mask = 0x80;
		ck_assert_int_eq(fs_env_call(&e, &m, 0), -EINVAL);
	}
	fs_env_down(&e);
}
END_TEST

START_TEST(xattrs)
{
	struct fuse_entry_out f;
	struct fuse_setxattr_in sx = {.size = 5};
	struct fuse_getxattr_in gx = {.size = 64};
	struct fuse_msg set = {.opcode = FUSE_SETXATTR,
			       .arg = &sx,
			       .arg_len = 8,
			       .name = "user.crosvm",
			       .data = "value",
			       .data_len = 5};
	struct fuse_msg get = {
		.opcode = FUSE_GETXATTR, .arg = &gx, .arg_len = sizeof(gx), .name = "user.crosvm"};
	struct fuse_msg list = {.opcode = FUSE_LISTXATTR, .arg = &gx, .arg_len = sizeof(gx)};
	struct fuse_msg rm = {.opcode = FUSE_REMOVEXATTR, .name = "user.crosvm"};
	struct fs_env e;
	char host[16] = {0};
	uint64_t fh;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	ck_assert_int_eq(fs_create_(&e, ROOT, "f", O_RDWR, 0600, &f, &fh), 0);
	set.nodeid = get.nodeid = list.nodeid = rm.nodeid = f.nodeid;
	ck_assert_int_eq(fs_env_call(&e, &set, 0), 0);
	ck_assert_int_eq(getxattr(fs_env_path(&e, e.share, "f"), "user.crosvm", host, sizeof(host)),
			 5);
	ck_assert_str_eq(host, "value");
	ck_assert_int_eq(fs_env_call(&e, &get, 64), 0);
	ck_assert_uint_eq(e.body_len, 5);
	ck_assert(memcmp(e.body, "value", 5) == 0);
	/* Size 0: only the size. */
	gx.size = 0;
	ck_assert_int_eq(fs_env_call(&e, &get, 64), 0);
	ck_assert_uint_eq(((struct fuse_getxattr_out *)e.body)->size, 5);
	/* Too small a buffer. */
	gx.size = 2;
	ck_assert_int_eq(fs_env_call(&e, &get, 64), -ERANGE);
	gx.size = 64;
	ck_assert_int_eq(fs_env_call(&e, &list, 64), 0);
	ck_assert(memmem(e.body, e.body_len, "user.crosvm", 12));
	ck_assert_int_eq(fs_env_call(&e, &rm, 0), 0);
	ck_assert_int_eq(fs_env_call(&e, &get, 64), -ENODATA);
	/* The value's size must be what the request carries. */
	sx.size = 9;
	ck_assert_int_eq(fs_env_call(&e, &set, 0), -EINVAL);
	fs_env_down(&e);
}
END_TEST

START_TEST(open_files_ops)
{
	struct fuse_entry_out f, g;
	uint64_t fh, gh;
	struct fs_env e;
	char buf[64];
	size_t n;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	ck_assert_int_eq(fs_create_(&e, ROOT, "f", O_RDWR, 0600, &f, &fh), 0);
	ck_assert_int_eq(fs_create_(&e, ROOT, "g", O_RDWR, 0600, &g, &gh), 0);
	ck_assert_int_eq(fs_write_(&e, f.nodeid, fh, 1 << 20, "data", 4), 0);
	{
		struct fuse_lseek_in ls = {.fh = fh, .offset = 0, .whence = SEEK_DATA};
		struct fuse_msg m = {.opcode = FUSE_LSEEK,
				     .nodeid = f.nodeid,
				     .arg = &ls,
				     .arg_len = sizeof(ls)};
		struct fuse_lseek_out out;

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
		memcpy(&out, e.body, sizeof(out));
		/* ext4 and tmpfs both know the hole before the data. */
		ck_assert_uint_eq(out.offset, 1 << 20);
		ls.whence = SEEK_SET;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EINVAL);
	}
	{
		struct fuse_copy_file_range_in cp = {
			.fh_in = fh, .off_in = 1 << 20, .fh_out = gh, .off_out = 2, .len = 4};
		struct fuse_msg m = {.opcode = FUSE_COPY_FILE_RANGE,
				     .nodeid = f.nodeid,
				     .arg = &cp,
				     .arg_len = sizeof(cp)};
		struct fuse_write_out out;

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), 0);
		memcpy(&out, e.body, sizeof(out));
		ck_assert_uint_eq(out.size, 4);
		ck_assert_int_eq(fs_read_(&e, g.nodeid, gh, 0, buf, sizeof(buf), &n), 0);
		ck_assert_uint_eq(n, 6);
		ck_assert(memcmp(buf + 2, "data", 4) == 0);
		cp.flags = 1;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(out)), -EINVAL);
	}
	{
		struct fuse_fallocate_in fa = {.fh = gh, .offset = 0, .length = 65536};
		struct fuse_msg m = {.opcode = FUSE_FALLOCATE,
				     .nodeid = g.nodeid,
				     .arg = &fa,
				     .arg_len = sizeof(fa)};
		struct stat st;

		ck_assert_int_eq(fs_env_call(&e, &m, 0), 0);
		ck_assert_int_eq(stat(fs_env_path(&e, e.share, "g"), &st), 0);
		ck_assert_uint_eq(st.st_size, 65536);
	}
	{
		struct fuse_fsync_in fs = {.fh = fh, .fsync_flags = FUSE_FSYNC_FDATASYNC};
		struct fuse_flush_in fl = {.fh = fh};
		struct fuse_msg sync = {.opcode = FUSE_FSYNC,
					.nodeid = f.nodeid,
					.arg = &fs,
					.arg_len = sizeof(fs)};
		struct fuse_msg flush = {.opcode = FUSE_FLUSH,
					 .nodeid = f.nodeid,
					 .arg = &fl,
					 .arg_len = sizeof(fl)};
		struct fuse_syncfs_in sf = {0};
		struct fuse_msg syncfs = {
			.opcode = FUSE_SYNCFS, .nodeid = ROOT, .arg = &sf, .arg_len = sizeof(sf)};

		ck_assert_int_eq(fs_env_call(&e, &sync, 0), 0);
		ck_assert_int_eq(fs_env_call(&e, &flush, 0), 0);
		ck_assert_int_eq(fs_env_call(&e, &syncfs, 0), 0);
		/* FSYNCDIR of a file handle. */
		sync.opcode = FUSE_FSYNCDIR;
		ck_assert_int_eq(fs_env_call(&e, &sync, 0), -EBADF);
	}
	/* READ bounded by what the guest's buffers hold. */
	{
		struct fuse_read_in rd = {.fh = fh, .offset = (1 << 20) - 2, .size = 1 << 20};
		struct fuse_msg m = {
			.opcode = FUSE_READ, .nodeid = f.nodeid, .arg = &rd, .arg_len = sizeof(rd)};

		ck_assert_int_eq(fs_env_call(&e, &m, 3), 0);
		ck_assert_uint_eq(e.body_len, 3);
		ck_assert(memcmp(e.body, "\0\0d", 3) == 0);
	}
	/* I/O on a directory handle, READDIR on a file handle. */
	{
		uint64_t dh;
		struct fuse_read_in rd = {.size = 100};
		struct fuse_msg m = {
			.opcode = FUSE_READ, .nodeid = ROOT, .arg = &rd, .arg_len = sizeof(rd)};

		ck_assert_int_eq(fs_open_(&e, ROOT, 0, true, &dh), 0);
		rd.fh = dh;
		ck_assert_int_eq(fs_env_call(&e, &m, 100), -EBADF);
		ck_assert_int_eq(fs_release_(&e, ROOT, dh, false), -EBADF);
		ck_assert_int_eq(fs_release_(&e, ROOT, dh, true), 0);
		m.opcode = FUSE_READDIR;
		rd.fh = fh;
		ck_assert_int_eq(fs_env_call(&e, &m, 100), -EBADF);
	}
	ck_assert_int_eq(fs_open_(&e, ROOT, O_RDONLY, false, &fh), -EISDIR);
	ck_assert_int_eq(fs_open_(&e, f.nodeid, 0, true, &fh), -ENOTDIR);
	ck_assert_int_eq(fs_open_(&e, f.nodeid, O_ACCMODE, false, &fh), -EINVAL);
	fs_env_down(&e);
}
END_TEST

START_TEST(forget_ids_and_sessions)
{
	struct fuse_entry_out a, a2;
	uint32_t inodes, handles;
	uint64_t fh;
	struct fs_env e;

	fs_env_up(&e, 64, 16);
	fs_env_init(&e);
	ck_assert_int_eq(fs_create_(&e, ROOT, "a", O_RDWR, 0600, &a, &fh), 0);
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "a", &a2), 0);
	fs_server_counts(e.s, &inodes, &handles);
	ck_assert_uint_eq(inodes, 2);
	ck_assert_uint_eq(handles, 1);
	/* Two lookups: one forget leaves it, the second takes it. */
	fs_forget_(&e, a.nodeid, 1);
	ck_assert_uint_eq(getattr_(&e, a.nodeid).size, 0);
	fs_forget_(&e, a.nodeid, 1);
	fs_server_counts(e.s, &inodes, &handles);
	ck_assert_uint_eq(inodes, 1);
	/* A forgotten ID is dead, even when its slot is reused. */
	{
		struct fuse_getattr_in in = {0};
		struct fuse_msg m = {.opcode = FUSE_GETATTR,
				     .nodeid = a.nodeid,
				     .arg = &in,
				     .arg_len = sizeof(in)};

		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_attr_out)), -ENOENT);
		ck_assert_int_eq(fs_lookup_(&e, ROOT, "a", &a2), 0);
		ck_assert_uint_ne(a2.nodeid, a.nodeid);
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_attr_out)), -ENOENT);
		/* Made-up IDs. */
		m.nodeid = 0;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_attr_out)), -ENOENT);
		m.nodeid = (1ull << 32) | 1;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_attr_out)), -ENOENT);
		m.nodeid = ~0ull;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_attr_out)), -ENOENT);
	}
	/* The root is never forgotten. */
	fs_forget_(&e, ROOT, 1000);
	ck_assert(S_ISDIR(getattr_(&e, ROOT).mode));
	/* BATCH_FORGET, with a count the bytes do not back refused whole. */
	{
		struct {
			struct fuse_batch_forget_in h;
			struct fuse_forget_one one[2];
		} bf = {.h = {.count = 1}, .one = {{.nodeid = a2.nodeid, .nlookup = 1}}};
		struct fuse_msg m = {.opcode = FUSE_BATCH_FORGET,
				     .arg = &bf,
				     .arg_len = sizeof(bf.h) + sizeof(bf.one[0])};
		size_t len;

		bf.h.count = 2;
		len = fuse_msg_build(&m, e.in, 4096);
		ck_assert_uint_eq(fs_env_raw(&e, e.in, len, 4096), 0);
		fs_server_counts(e.s, &inodes, &handles);
		ck_assert_uint_eq(inodes, 2);
		bf.h.count = 1;
		len = fuse_msg_build(&m, e.in, 4096);
		ck_assert_uint_eq(fs_env_raw(&e, e.in, len, 4096), 0);
		fs_server_counts(e.s, &inodes, &handles);
		ck_assert_uint_eq(inodes, 1);
	}
	/* DESTROY ends the session: handles and inodes go; a new INIT starts over. */
	{
		struct fuse_msg m = {.opcode = FUSE_DESTROY};

		ck_assert_int_eq(fs_lookup_(&e, ROOT, "a", &a2), 0);
		ck_assert_int_eq(fs_env_call(&e, &m, 0), 0);
		fs_server_counts(e.s, &inodes, &handles);
		ck_assert_uint_eq(inodes, 1);
		ck_assert_uint_eq(handles, 0);
		ck_assert_int_eq(fs_lookup_(&e, ROOT, "a", NULL), -EIO);
		fs_env_init(&e);
		ck_assert_int_eq(fs_lookup_(&e, ROOT, "a", NULL), 0);
	}
	fs_env_down(&e);
}
END_TEST

START_TEST(bounded_inodes_and_handles)
{
	struct fuse_entry_out ent;
	uint32_t inodes, handles;
	uint64_t fh[8];
	struct fs_env e;
	char name[16];

	/* Four inodes (the root is one) and two handles. */
	fs_env_up(&e, 4, 2);
	fs_env_init(&e);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		ck_assert_int_eq(fs_mkdir_(&e, ROOT, name, 0755, &ent), 0);
	}
	ck_assert_int_eq(fs_mkdir_(&e, ROOT, "d3", 0755, &ent), -ENFILE);
	/* The directory was made; only the inode was refused. */
	ck_assert(host_exists(fs_env_path(&e, e.share, "d3")));
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "d3", &ent), -ENFILE);
	/* A name already known costs nothing. */
	ck_assert_int_eq(fs_lookup_(&e, ROOT, "d0", &ent), 0);
	ck_assert_int_eq(fs_open_(&e, ROOT, 0, true, &fh[0]), 0);
	ck_assert_int_eq(fs_open_(&e, ent.nodeid, 0, true, &fh[1]), 0);
	ck_assert_int_eq(fs_open_(&e, ROOT, 0, true, &fh[2]), -ENFILE);
	/* CREATE at the bound leaves no handle or inode behind. */
	ck_assert_int_eq(fs_create_(&e, ROOT, "new", O_RDWR, 0600, &ent, &fh[3]), -ENFILE);
	fs_server_counts(e.s, &inodes, &handles);
	ck_assert_uint_eq(inodes, 4);
	ck_assert_uint_eq(handles, 2);
	ck_assert_int_eq(fs_release_(&e, ROOT, fh[0], true), 0);
	ck_assert_int_eq(fs_open_(&e, ROOT, 0, true, &fh[2]), 0);
	ck_assert_uint_ne(fh[2], fh[0]);
	fs_env_down(&e);
}
END_TEST

START_TEST(readdir_is_bounded)
{
	struct fuse_read_in in = {.size = FS_MAX_IO};
	struct fuse_msg m = {
		.opcode = FUSE_READDIRPLUS, .nodeid = ROOT, .arg = &in, .arg_len = sizeof(in)};
	uint32_t inodes, handles;
	struct fs_env e;
	char name[16];

	/* 2000 entries: far more than one bounded READDIRPLUS may list and look up. */
	fs_env_up(&e, 4096, 4);
	fs_env_init(&e);
	for (int i = 0; i < 2000; i++) {
		int fd;

		snprintf(name, sizeof(name), "f%04d", i);
		fd = open(fs_env_path(&e, e.share, name), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	ck_assert_int_eq(fs_open_(&e, ROOT, 0, true, &in.fh), 0);
	/* The guest offers room for FS_MAX_IO; the reply stops at FS_MAX_DIR_IO, nearly full. */
	ck_assert_int_eq(fs_env_call(&e, &m, FS_MAX_IO), 0);
	ck_assert_uint_le(e.body_len, FS_MAX_DIR_IO);
	ck_assert_uint_gt(e.body_len, FS_MAX_DIR_IO - 4096);
	/* Only the entries listed were looked up: at most one inode per 152 bytes of reply. */
	fs_server_counts(e.s, &inodes, &handles);
	ck_assert_uint_le(inodes, 1 + FS_MAX_DIR_IO / (sizeof(struct fuse_entry_out) +
						       sizeof(struct fuse_dirent)));
	ck_assert_uint_gt(inodes, 100);
	fs_env_down(&e);
}
END_TEST

START_TEST(malformed_and_unknown_requests)
{
	struct fs_env e;
	struct fuse_out_header oh;
	uint8_t req[256];
	size_t len;

	fs_env_up(&e, 16, 4);
	fs_env_init(&e);
	/* Opcodes the server does not serve, and ones nobody knows: ENOSYS, no harm. */
	{
		static const uint32_t ops[] = {FUSE_GETLK,
					       FUSE_SETLK,
					       FUSE_SETLKW,
					       FUSE_BMAP,
					       FUSE_IOCTL,
					       FUSE_POLL,
					       FUSE_NOTIFY_REPLY,
					       FUSE_SETUPMAPPING,
					       FUSE_REMOVEMAPPING,
					       FUSE_TMPFILE,
					       7,
					       19,
					       52,
					       4096,
					       0xffffffff};
		uint8_t arg[64] = {0};

		for (unsigned i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			struct fuse_msg m = {.opcode = ops[i],
					     .nodeid = ROOT,
					     .arg = arg,
					     .arg_len = sizeof(arg)};

			ck_assert_int_eq(fs_env_call(&e, &m, 256), -ENOSYS);
		}
	}
	/* Names: not terminated, empty, ".", "..", with '/', too long, trailing bytes. */
	{
		static const char *const bad[] = {"", ".", "..", "a/b", "/etc", "../x"};
		char longname[300];
		struct fuse_msg m = {.opcode = FUSE_LOOKUP, .nodeid = ROOT};

		for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			m.name = bad[i];
			ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_entry_out)),
					 -EINVAL);
		}
		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		m.name = longname;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_entry_out)), -EINVAL);
		m.name = "ok";
		m.data = "junk";
		m.data_len = 4;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_entry_out)), -EINVAL);
		m.name = NULL;
		m.data = "abc";
		m.data_len = 3;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_entry_out)), -EINVAL);
	}
	/* A header whose length is not what the buffers hold, or shorter than itself. */
	{
		struct fuse_msg m = {
			.opcode = FUSE_LOOKUP, .nodeid = ROOT, .name = "x", .unique = 77};
		struct fuse_in_header h;

		len = fuse_msg_build(&m, req, sizeof(req));
		memcpy(&h, req, sizeof(h));
		h.len = (uint32_t)len + 1;
		memcpy(req, &h, sizeof(h));
		ck_assert_uint_eq(fs_env_raw(&e, req, len, 256), sizeof(oh));
		memcpy(&oh, e.out, sizeof(oh));
		ck_assert_int_eq(oh.error, -EINVAL);
		ck_assert_uint_eq(oh.unique, 77);
		h.len = 10;
		memcpy(req, &h, sizeof(h));
		ck_assert_uint_eq(fs_env_raw(&e, req, len, 256), sizeof(oh));
		memcpy(&oh, e.out, sizeof(oh));
		ck_assert_int_eq(oh.error, -EINVAL);
		/* Shorter than a header: nothing to answer. */
		ck_assert_uint_eq(fs_env_raw(&e, req, 20, 256), 0);
		/* No room for the reply's header: nothing written. */
		h.len = (uint32_t)len;
		memcpy(req, &h, sizeof(h));
		ck_assert_uint_eq(fs_env_raw(&e, req, len, 15), 0);
		/* Room for the header but not the entry: refused before anything is done. */
		ck_assert_uint_eq(fs_env_raw(&e, req, len, 40), sizeof(oh));
		memcpy(&oh, e.out, sizeof(oh));
		ck_assert_int_eq(oh.error, -EINVAL);
	}
	/* MKDIR refused for want of room leaves nothing on the host. */
	{
		struct fuse_mkdir_in mk = {.mode = 0755};
		struct fuse_msg m = {.opcode = FUSE_MKDIR,
				     .nodeid = ROOT,
				     .arg = &mk,
				     .arg_len = sizeof(mk),
				     .name = "nope"};

		ck_assert_int_eq(fs_env_call(&e, &m, 16), -EINVAL);
		ck_assert(!host_exists(fs_env_path(&e, e.share, "nope")));
		/* A fixed structure cut short. */
		m.arg_len = 4;
		m.name = NULL;
		ck_assert_int_eq(fs_env_call(&e, &m, sizeof(struct fuse_entry_out)), -EINVAL);
	}
	/* WRITE: its size must be the data's; larger than max_write is refused. */
	{
		struct fuse_entry_out f;
		uint64_t fh;
		struct fuse_write_in w = {.size = 10};
		struct fuse_msg m = {.opcode = FUSE_WRITE,
				     .arg = &w,
				     .arg_len = sizeof(w),
				     .data = "abc",
				     .data_len = 3};

		ck_assert_int_eq(fs_create_(&e, ROOT, "w", O_RDWR, 0600, &f, &fh), 0);
		m.nodeid = f.nodeid;
		w.fh = fh;
		ck_assert_int_eq(fs_env_call(&e, &m, 8), -EINVAL);
		w.size = FS_MAX_IO + 1;
		ck_assert_int_eq(fs_env_call(&e, &m, 8), -E2BIG);
		w.size = 3;
		w.fh = fh + 1;
		ck_assert_int_eq(fs_env_call(&e, &m, 8), -EBADF);
	}
	fs_env_down(&e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_server");
	TCase *tc = tcase_create("ops");

	tcase_add_test(tc, init_negotiates_the_version);
	tcase_add_test(tc, init_flags_follow_the_options);
	tcase_add_test(tc, files_and_directories);
	tcase_add_test(tc, symlinks_nodes_and_attributes);
	tcase_add_test(tc, xattrs);
	tcase_add_test(tc, open_files_ops);
	tcase_add_test(tc, forget_ids_and_sessions);
	tcase_add_test(tc, bounded_inodes_and_handles);
	tcase_add_test(tc, readdir_is_bounded);
	tcase_add_test(tc, malformed_and_unknown_requests);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
