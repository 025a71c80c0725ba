/*
 * The FUSE server's inodes and open handles (virtio/fs_server.c). An inode is an O_PATH
 * descriptor of a file in the shared directory, found again by (device, inode number) so a
 * file has one node ID however often or by whatever name it is looked up; a handle is a
 * descriptor opened for I/O. Neither is ever a path: everything the server does starts from
 * one of these descriptors.
 *
 * IDs carry a generation: a slot reused after a FORGET or RELEASE gets a new ID, so a stale
 * or made-up ID from the guest finds nothing instead of another file. Node ID 1 is the root
 * (FUSE_ROOT_ID) for the whole session. Both tables are bounded (set at init); past the bound,
 * a new inode or handle is refused with ENFILE.
 */
#ifndef CROSVM_VIRTIO_FS_INODES_H
#define CROSVM_VIRTIO_FS_INODES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"

struct fs_inode {
	int fd;		  /* O_PATH; -1: the slot is free */
	uint32_t gen;	  /* part of the node ID */
	uint32_t next;	  /* hash chain or free list: a slot index, 0 ends it */
	uint32_t mode;	  /* the file type (S_IFMT bits): it never changes */
	uint64_t nlookup; /* lookups the guest has not forgotten */
	uint64_t dev, ino;
};

struct fs_inodes {
	struct fs_inode *v; /* slot 0 is never used; slot 1 is the root */
	uint32_t cap;	    /* slots allocated */
	uint32_t max;	    /* slots allowed: the bound on inodes (root included), plus slot 0 */
	uint32_t nr;	    /* slots in use */
	uint32_t free_head; /* first free slot below cap, 0: none */
	uint32_t *buckets;  /* hash of (dev, ino): first slot of each chain, 0: empty */
};

struct fs_handle {
	int fd; /* -1: the slot is free */
	uint32_t gen;
	uint32_t next_free;
	bool dir;
};

struct fs_handles {
	struct fs_handle *v; /* slot 0 is never used */
	uint32_t cap, max, nr, free_head;
};

/*
 * An empty table allowing max_inodes inodes (at least 2) whose root is root_fd (an O_PATH
 * directory descriptor the table then owns) with its dev/ino.
 */
int fs_inodes_init(struct fs_inodes *t, uint32_t max_inodes, int root_fd, uint64_t dev,
		   uint64_t ino) MUST_CHECK;
/* Closes every descriptor, the root's too. */
void fs_inodes_destroy(struct fs_inodes *t);
/* Forgets every inode but the root (a new session, a device reset). */
void fs_inodes_clear(struct fs_inodes *t);

/* The inode of a node ID the guest sent, or NULL (never handed out, or forgotten). */
struct fs_inode *fs_inode_get(struct fs_inodes *t, uint64_t nodeid);
/* The node ID of an inode. */
uint64_t fs_inode_id(const struct fs_inodes *t, const struct fs_inode *in);
/*
 * One more lookup of the file fd (O_PATH) refers to: the inode already known for (dev, ino)
 * gets nlookup + 1 and fd is closed, or fd becomes a new inode with nlookup 1. Returns 0 with
 * *out, or -ENFILE (fd closed) when the table is full.
 */
int fs_inode_lookup(struct fs_inodes *t, int fd, uint64_t dev, uint64_t ino, uint32_t mode,
		    struct fs_inode **out) MUST_CHECK;
/* The guest forgets n lookups; the inode goes (its fd closed) at 0. The root never goes. */
void fs_inode_forget(struct fs_inodes *t, uint64_t nodeid, uint64_t n);

int fs_handles_init(struct fs_handles *t, uint32_t max_handles) MUST_CHECK;
void fs_handles_destroy(struct fs_handles *t);
void fs_handles_clear(struct fs_handles *t);
/* A new handle for fd (taken over even on failure: -ENFILE closes it); *fh is its ID. */
int fs_handle_add(struct fs_handles *t, int fd, bool dir, uint64_t *fh) MUST_CHECK;
/* The handle of ID fh, or NULL. */
struct fs_handle *fs_handle_get(struct fs_handles *t, uint64_t fh);
/* Closes handle fh; -EBADF if there is none. */
int fs_handle_release(struct fs_handles *t, uint64_t fh) MUST_CHECK;

#endif
