/*
 * FUSE requests built by hand, as the guest's kernel (or an attacker in its place) would put
 * them in a virtio-fs chain: a fuse_in_header, the opcode's fixed structure, names with their
 * NUL, then data. For the server's and the device's unit suites.
 */
#ifndef CROSVM_TEST_FUSE_MSG_H
#define CROSVM_TEST_FUSE_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <linux/fuse.h>

struct fuse_msg {
	uint32_t opcode;
	uint64_t unique;
	uint64_t nodeid;
	uint32_t uid, gid;
	const void *arg; /* the fixed structure */
	size_t arg_len;
	const char *name, *name2; /* each followed by its NUL when not NULL */
	const void *data;	  /* then these bytes */
	size_t data_len;
};

/* Writes the request into buf (cap bytes); returns its length, or 0 if it does not fit. */
size_t fuse_msg_build(const struct fuse_msg *m, void *buf, size_t cap);

#endif
