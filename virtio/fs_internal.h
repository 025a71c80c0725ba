/*
 * Inside the FUSE server (virtio/fs_server.c, fs_entry.c, fs_file.c): its state and the
 * helpers its operations share. Not for other files.
 */
#ifndef CROSVM_VIRTIO_FS_INTERNAL_H
#define CROSVM_VIRTIO_FS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/iov.h"
#include "virtio/fs_inodes.h"
#include "virtio/fs_server.h"
#include "virtio/fuse.h"

/* Scratch space: a getdents batch, a symlink target, an attribute value or list. */
#define FS_BUF_LEN  (FUSE_XATTR_MAX + 8)
#define FS_MAX_IOV  1024 /* a chain never has more buffers than its queue (fs.c) has slots */
#define FS_ARGS_LEN (FUSE_MAX_ARGS_LEN + 8)

struct fs_server {
	struct fs_server_config cfg;
	const struct logger *lg;
	char name[32];
	int proc_fd; /* O_PATH /proc/self/fd */
	bool proc_private;
	bool cwd_in_proc; /* proc_private: the working directory is proc_fd (fs_xattr.c) */
	bool have_openat2;
	struct fs_inodes inodes;
	struct fs_handles handles;
	/* The session: set up by INIT, ended by DESTROY or a reset. */
	bool initialized;
	uint32_t minor;
	uint64_t flags; /* FUSE_* init flags both sides agreed on */
	uint32_t max_write;
	/* The ids the server works as when it is not acting for a caller. */
	uid_t base_uid;
	gid_t base_gid;
	uint64_t nr_bad; /* malformed requests, for rate-limited logs */
	uint8_t args[FS_ARGS_LEN] __attribute__((aligned(8)));
	uint8_t buf[FS_BUF_LEN] __attribute__((aligned(8)));
	struct iovec iov[FS_MAX_IOV];
};

/* One request being served. */
struct fs_call {
	const struct fuse_req *r;
	struct iov_cursor *data; /* WRITE's data (r->data_len bytes) in the guest's buffers */
	struct iov_cursor *out;	 /* the reply's body, after its header */
	size_t len;		 /* bytes of body written so far */
};

typedef int (*fs_op_fn)(struct fs_server *s, struct fs_call *c);

/* ---- helpers (fs_server.c) ---- */

/* Appends n bytes to the reply's body; -EINVAL if they do not fit (room was checked). */
int fs_put(struct fs_call *c, const void *p, size_t n) MUST_CHECK;
/* The inode of the request's node ID; NULL if the guest named none. */
struct fs_inode *fs_node(struct fs_server *s, uint64_t nodeid);
/* A directory inode, or NULL with *err set (-ENOENT unknown, -ENOTDIR not a directory). */
struct fs_inode *fs_dir(struct fs_server *s, uint64_t nodeid, int *err);
/*
 * Opens one component below dir without following any symlink or leaving it (openat2
 * RESOLVE_BENEATH | NO_SYMLINKS | NO_MAGICLINKS, else O_NOFOLLOW): O_PATH for a lookup, or a
 * create. Returns the fd or -errno.
 */
int fs_open_below(struct fs_server *s, int dirfd, const char *name, int flags, mode_t mode);
/* Reopens an O_PATH descriptor through /proc/self/fd with flags; fd or -errno. */
int fs_reopen(struct fs_server *s, int fd, int flags);
/* The name of fd in /proc/self/fd, for the *at calls that follow magic links. */
void fs_fd_name(int fd, char name[16]);
/* fstat of any descriptor, O_PATH ones included. */
int fs_stat(int fd, struct stat *st) MUST_CHECK;
void fs_fill_attr(const struct stat *st, struct fuse_attr *a);
/*
 * Looks name up below dir: one more lookup of the file it names (a new inode or the one it
 * already has), its entry filled in for the reply.
 */
int fs_lookup(struct fs_server *s, int dirfd, const char *name,
	      struct fuse_entry_out *e) MUST_CHECK;
/* Fills an entry for an inode the caller holds a lookup of, with fresh attributes. */
int fs_entry_of(struct fs_server *s, struct fs_inode *in, struct fuse_entry_out *e) MUST_CHECK;
/*
 * Acts as the caller (the request's uid/gid): files it creates are its own, and the host
 * checks what it may do as for that user. -EPERM if the ids cannot be taken (unmapped in the
 * sandbox's user namespace, or no privilege). fs_creds_leave goes back to the server's ids.
 */
int fs_creds_enter(struct fs_server *s, uid_t uid, gid_t gid) MUST_CHECK;
void fs_creds_leave(struct fs_server *s);

/* ---- operations on names and inodes (fs_entry.c) ---- */
int fs_op_lookup(struct fs_server *s, struct fs_call *c);
int fs_op_forget(struct fs_server *s, struct fs_call *c);
int fs_op_batch_forget(struct fs_server *s, struct fs_call *c);
int fs_op_getattr(struct fs_server *s, struct fs_call *c);
int fs_op_setattr(struct fs_server *s, struct fs_call *c);
int fs_op_readlink(struct fs_server *s, struct fs_call *c);
int fs_op_symlink(struct fs_server *s, struct fs_call *c);
int fs_op_mknod(struct fs_server *s, struct fs_call *c);
int fs_op_mkdir(struct fs_server *s, struct fs_call *c);
int fs_op_unlink(struct fs_server *s, struct fs_call *c);
int fs_op_rmdir(struct fs_server *s, struct fs_call *c);
int fs_op_rename(struct fs_server *s, struct fs_call *c);
int fs_op_link(struct fs_server *s, struct fs_call *c);
int fs_op_statfs(struct fs_server *s, struct fs_call *c);
int fs_op_access(struct fs_server *s, struct fs_call *c);

/* ---- operations on open files and directories (fs_file.c) ---- */
int fs_op_open(struct fs_server *s, struct fs_call *c);
int fs_op_create(struct fs_server *s, struct fs_call *c);
int fs_op_read(struct fs_server *s, struct fs_call *c);
int fs_op_write(struct fs_server *s, struct fs_call *c);
int fs_op_release(struct fs_server *s, struct fs_call *c);
int fs_op_flush(struct fs_server *s, struct fs_call *c);
int fs_op_fsync(struct fs_server *s, struct fs_call *c);
int fs_op_readdir(struct fs_server *s, struct fs_call *c);
int fs_op_fallocate(struct fs_server *s, struct fs_call *c);
int fs_op_lseek(struct fs_server *s, struct fs_call *c);
int fs_op_copy_file_range(struct fs_server *s, struct fs_call *c);
int fs_op_syncfs(struct fs_server *s, struct fs_call *c);

/* ---- extended attributes (fs_xattr.c) ---- */
int fs_op_getxattr(struct fs_server *s, struct fs_call *c);
int fs_op_listxattr(struct fs_server *s, struct fs_call *c);
int fs_op_setxattr(struct fs_server *s, struct fs_call *c);
int fs_op_removexattr(struct fs_server *s, struct fs_call *c);

#endif
