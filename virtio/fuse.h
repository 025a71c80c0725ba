/*
 * The FUSE wire protocol as virtio-fs carries it (virtio 1.2, section 5.11; <linux/fuse.h>):
 * a request is a fuse_in_header and the opcode's arguments in the chain's device-readable
 * part, its reply a fuse_out_header and the result in the device-writable part.
 *
 * fuse_parse() checks one request's arguments before anything looks at them: the opcode's
 * fixed structure has exactly its size, names are NUL-terminated and single path components
 * (no '/', never "." or ".."), a symlink target or an attribute name fits its limit, a value
 * has the size it claims, and nothing is left over. It reads only the bytes it is given
 * (copied out of guest memory first) and never touches the file system. virtio/fs_server.c
 * acts on what it returns.
 */
#ifndef CROSVM_VIRTIO_FUSE_H
#define CROSVM_VIRTIO_FUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/fuse.h>

#include "core/util.h"

/* The protocol this server speaks: 7.38 is what Linux 6.1's driver offers; 7.31 added virtio-fs. */
#define FUSE_SERVER_MAJOR     7
#define FUSE_SERVER_MINOR     38
#define FUSE_SERVER_MIN_MINOR 31

/* Limits of one request's arguments (not counting WRITE's data, which is never copied). */
#define FUSE_NAME_MAX	  255	      /* a path component (NAME_MAX) */
#define FUSE_LINK_MAX	  4095	      /* a symlink target (PATH_MAX without its NUL) */
#define FUSE_XATTR_MAX	  (64u << 10) /* an attribute's value or list (XATTR_SIZE_MAX) */
#define FUSE_XNAME_MAX	  255	      /* an attribute's name (XATTR_NAME_MAX) */
#define FUSE_MAX_ARGS_LEN (FUSE_XATTR_MAX + 512)

/* An opcode's fixed structure, copied out (aligned) of the request. */
union fuse_args {
	struct fuse_init_in init; /* zero-extended when the kernel sent an older, shorter one */
	struct fuse_forget_in forget;
	struct fuse_batch_forget_in batch_forget;
	struct fuse_getattr_in getattr;
	struct fuse_setattr_in setattr;
	struct fuse_mknod_in mknod;
	struct fuse_mkdir_in mkdir;
	struct fuse_rename_in rename;
	struct fuse_rename2_in rename2;
	struct fuse_link_in link;
	struct fuse_open_in open;
	struct fuse_create_in create;
	struct fuse_read_in read;
	struct fuse_write_in write;
	struct fuse_release_in release;
	struct fuse_flush_in flush;
	struct fuse_fsync_in fsync;
	struct fuse_setxattr_in setxattr; /* only its first 8 bytes (size, flags) are sent */
	struct fuse_getxattr_in getxattr;
	struct fuse_access_in access;
	struct fuse_interrupt_in interrupt;
	struct fuse_fallocate_in fallocate;
	struct fuse_lseek_in lseek;
	struct fuse_copy_file_range_in copy_file_range;
	struct fuse_syncfs_in syncfs;
	uint8_t raw[96];
};

/* What a request carries: its fixed structure copied, the rest pointing into its buffer. */
struct fuse_req {
	struct fuse_in_header h;
	union fuse_args in; /* zero beyond what the opcode has */
	/* Names: component names, a symlink target or an attribute name; NULL when absent. */
	const char *name, *name2;
	/* SETXATTR's value, BATCH_FORGET's array (count entries, maybe unaligned), WRITE's size */
	const uint8_t *data;
	uint32_t data_len;
	uint32_t count;
};

/* What the opcode's reply is, so that room for it is checked before anything is done. */
enum fuse_reply_kind {
	FUSE_REPLY_NONE,     /* FORGET, BATCH_FORGET, INTERRUPT: no reply at all */
	FUSE_REPLY_FIXED,    /* exactly reply_len bytes after the header (0: the header alone) */
	FUSE_REPLY_VARIABLE, /* up to what the request asks (READ, READDIR, GETXATTR ...) */
};

struct fuse_op_info {
	const char *name; /* "LOOKUP", in logs */
	enum fuse_reply_kind reply;
	uint32_t reply_len; /* FUSE_REPLY_FIXED */
};

/*
 * Describes opcode, or returns NULL for one this server does not know (the caller answers
 * ENOSYS).
 */
const struct fuse_op_info *fuse_op(uint32_t opcode);

/*
 * Parses the arguments of a request whose header is h (copied out already) from args[0,
 * len): the bytes after the header. WRITE is special: args holds only its fuse_write_in and
 * data_len is the size of the data that must follow it (the caller checks the request has
 * it). Returns 0 with *r filled in, -ENOSYS for an unknown opcode, -EINVAL for arguments
 * that break a rule (r is then unusable).
 */
int fuse_parse(const struct fuse_in_header *h, const uint8_t *args, size_t len,
	       struct fuse_req *r) MUST_CHECK;

/* A path component as LOOKUP and its kin take: 1..255 bytes, no '/', not "." or "..". */
bool fuse_name_ok(const char *name, size_t len);

#endif
