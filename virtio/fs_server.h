/*
 * The FUSE server of virtio-fs: it answers one request at a time (virtio/fuse.h parses them)
 * by acting on the shared directory through descriptors only (virtio/fs_inodes.h).
 *
 * Confinement does not rest on paths. The root is a descriptor; every name the guest sends
 * is one path component (fuse_parse refuses '/', "." and "..") opened relative to its parent's
 * descriptor with openat2's RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS
 * (O_NOFOLLOW where openat2 is missing), so no symlink is ever followed on the host, whatever
 * it points to or whenever it was swapped in; symlinks are the guest's to resolve, in its own
 * namespace. An open reopens an inode's own descriptor through /proc/self/fd, never its name.
 * In the sandbox, the process's root is the shared directory itself and its /proc shows only
 * itself (virtio/fs.c), which is a second wall behind the first.
 *
 * Bounded: the inodes and handles it keeps (fs_inodes.h), the size of a request's arguments
 * (FUSE_MAX_ARGS_LEN) and of its data (max_write), and the bytes one request can read, write
 * or copy (FS_MAX_IO) or list (FS_MAX_DIR_IO).
 */
#ifndef CROSVM_VIRTIO_FS_SERVER_H
#define CROSVM_VIRTIO_FS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

struct iov_cursor;
struct logger;
struct fs_server;

/* The most one request reads, writes or copies: max_pages of 4 KiB pages. */
#define FS_MAX_PAGES 256u
#define FS_MAX_IO    (FS_MAX_PAGES * 4096u)
/* The most one READDIR lists (Linux asks for a page; READDIRPLUS looks each entry up). */
#define FS_MAX_DIR_IO (64u << 10)

/* crosvm's cache policies: what the guest may keep of file contents. */
enum fs_cache {
	FS_CACHE_AUTO = 0, /* close-to-open: the guest drops a file's pages when it reopens it */
	FS_CACHE_NEVER,	   /* every read and write goes to the host (FOPEN_DIRECT_IO) */
	FS_CACHE_ALWAYS,   /* pages stay across opens (FOPEN_KEEP_CACHE, cached directories) */
};

struct fs_server_config {
	enum fs_cache cache;
	uint64_t timeout;	   /* seconds the guest may trust names and attributes */
	uint64_t negative_timeout; /* seconds it may trust that a name does not exist */
	bool writeback;		   /* the guest may cache writes (FUSE_WRITEBACK_CACHE) */
};

struct fs_server_params {
	const struct fs_server_config *cfg;
	const struct logger *lg;
	const char *name; /* in logs, e.g. "virtio-fs0" */
	/* O_PATH descriptor of the shared directory; the server's on success. */
	int root_fd;
	/*
	 * O_PATH descriptor of the process's /proc/self/fd, the only way an inode is reopened
	 * for I/O; the server's on success. private_proc: it belongs to a proc that shows this
	 * process alone (sandboxed), so the server may make it its working directory.
	 */
	int proc_self_fd;
	bool private_proc;
	uint32_t max_inodes, max_handles;
};

int fs_server_create(const struct fs_server_params *p, struct fs_server **out) MUST_CHECK;
void fs_server_destroy(struct fs_server *s);
/* Ends the session (a device reset): every inode but the root and every handle goes. */
void fs_server_reset(struct fs_server *s);

/*
 * Serves one request: req is the chain's device-readable part, reply its device-writable
 * part. Returns the bytes written into reply (0 for a request without a reply, or one too
 * malformed to answer). Never fails: a bad request gets an error reply.
 */
size_t fs_server_handle(struct fs_server *s, struct iov_cursor *req, struct iov_cursor *reply);

/* Inodes and handles held now (tests, and the bound they check). */
void fs_server_counts(const struct fs_server *s, uint32_t *inodes, uint32_t *handles);

#endif
