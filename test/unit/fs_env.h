/*
 * The FUSE server (virtio/fs_server.h) on a scratch directory, driven by hand-built requests
 * as the guest's kernel sends them: for the server's suites (test_fs_server.c, test_fs_escape.c).
 *
 * The scratch directory holds share/ (the shared directory) and, next to it, outside/ with a
 * file `secret` whose contents no request may ever bring back. Checks fail the running Check
 * test.
 */
#ifndef CROSVM_TEST_FS_ENV_H
#define CROSVM_TEST_FS_ENV_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/fuse.h>

#include "core/log.h"
#include "test/unit/fuse_msg.h"
#include "virtio/fs_server.h"

#define FS_ENV_SECRET "OUTSIDE-SECRET-0123456789"
#define FS_ENV_BODY   (FS_MAX_IO + 4096)

struct fs_env {
	struct logger lg;
	char dir[64], share[80], outside[80];
	struct fs_server *s;
	struct fs_server_config cfg;
	uint64_t unique;
	uint8_t *in;   /* request buffer */
	uint8_t *out;  /* reply buffer: header and body */
	uint8_t *body; /* the last reply's body (points into out) */
	size_t body_len;
};

/* A server on a fresh scratch directory, with at most these inodes and handles; not INITed. */
void fs_env_up(struct fs_env *e, uint32_t max_inodes, uint32_t max_handles);
/* The same, with a configuration. */
void fs_env_up_cfg(struct fs_env *e, const struct fs_server_config *cfg, uint32_t max_inodes,
		   uint32_t max_handles);
void fs_env_down(struct fs_env *e);
/* INIT as Linux 6.1 sends it; checks the reply. */
void fs_env_init(struct fs_env *e);

/*
 * Sends m (its unique is set here) with room for reply_cap bytes of reply body; checks the
 * reply header is well formed (length, unique, errno range) and returns its error (0 or
 * -errno). The body is then e->body, e->body_len bytes.
 */
int fs_env_call(struct fs_env *e, struct fuse_msg *m, size_t reply_cap);
/* Sends raw bytes as a request; returns the bytes the server wrote into reply_cap of room. */
size_t fs_env_raw(struct fs_env *e, const void *req, size_t len, size_t reply_cap);

/* Shorthands: each returns the reply's error; outputs are filled on success. */
int fs_lookup_(struct fs_env *e, uint64_t dir, const char *name, struct fuse_entry_out *out);
int fs_mkdir_(struct fs_env *e, uint64_t dir, const char *name, uint32_t mode,
	      struct fuse_entry_out *out);
int fs_create_(struct fs_env *e, uint64_t dir, const char *name, uint32_t flags, uint32_t mode,
	       struct fuse_entry_out *out, uint64_t *fh);
int fs_open_(struct fs_env *e, uint64_t node, uint32_t flags, bool dir, uint64_t *fh);
int fs_release_(struct fs_env *e, uint64_t node, uint64_t fh, bool dir);
int fs_write_(struct fs_env *e, uint64_t node, uint64_t fh, uint64_t off, const void *p, size_t n);
/* Reads into buf (at most cap); the bytes read go to *n. */
int fs_read_(struct fs_env *e, uint64_t node, uint64_t fh, uint64_t off, void *buf, size_t cap,
	     size_t *n);
/* Every name READDIR(PLUS) lists, '/'-separated into names (with a trailing '/'). */
int fs_list_(struct fs_env *e, uint64_t dir, bool plus, char *names, size_t cap);
void fs_forget_(struct fs_env *e, uint64_t node, uint64_t n);

/* Path of name under the share / outside, for checks on the host side. */
const char *fs_env_path(struct fs_env *e, const char *base, const char *name);

#endif
