/*
 * libFuzzer target for virtio-fs's FUSE request parser and the server behind it. The input is
 * a sequence of raw requests (what a guest puts in a chain's readable part) with the room
 * each has for a reply:
 *
 *   per request (at most MAX_REQS):
 *   [0..1]  request length n (little-endian, at most MAX_REQ)
 *   [2..3]  reply room (little-endian, at most MAX_REPLY)
 *   [4..]   n bytes: the request, fuse_in_header first
 *
 * Every request goes to fuse_parse on its own (what it accepts must point inside the bytes it
 * was given, names NUL-terminated and single components), then to a server on a scratch
 * directory, whose session starts with a proper INIT so the fuzzer reaches the operations. To
 * get past the generation-checked IDs, a node ID or leading file handle below 16 stands for
 * the one the server handed out that many replies ago. What the server promises, checked for
 * every reply: nothing or a whole header, its length what was written, the request's unique
 * echoed, an errno the guest knows, no body with an error.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/iov.h"
#include "core/log.h"
#include "core/util.h"
#include "virtio/fs_server.h"
#include "virtio/fuse.h"

#define MAX_REQS  24
#define MAX_REQ	  8192
#define MAX_REPLY 16384
#define NR_IDS	  16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return ftw->level ? remove(path) : 0;
}

/* A fresh tree each time: a file, a directory, a symlink, a FIFO. */
static void reset_scratch(void)
{
	char path[128];
	int fd;

	if (!scratch[0]) {
		snprintf(scratch, sizeof(scratch), "/tmp/fuzz-fuse-XXXXXX");
		if (!mkdtemp(scratch))
			__builtin_trap();
	}
	nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(path, sizeof(path), "%s/file", scratch);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, "contents", 8) < 0)
			__builtin_trap();
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/dir", scratch);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/link", scratch);
	if (symlink("/etc/passwd", path) < 0)
		__builtin_trap();
	snprintf(path, sizeof(path), "%s/fifo", scratch);
	mkfifo(path, 0600);
}

/* What fuse_parse accepted must lie within what it was given. */
static void check_parse(const uint8_t *req, size_t n)
{
	struct fuse_in_header h;
	struct fuse_req r;
	const uint8_t *args = req + sizeof(h), *end = req + n;

	if (n < sizeof(h))
		return;
	memcpy(&h, req, sizeof(h));
	if (fuse_parse(&h, args, n - sizeof(h), &r) < 0)
		return;
	for (int i = 0; i < 2; i++) {
		const char *s = i ? r.name2 : r.name;

		if (!s)
			continue;
		if ((const uint8_t *)s < args || (const uint8_t *)s >= end ||
		    !memchr(s, 0, (size_t)(end - (const uint8_t *)s)))
			__builtin_trap();
		/* Names the server joins to a directory are single components. */
		if (i == 0 && h.opcode != FUSE_SETXATTR && h.opcode != FUSE_GETXATTR &&
		    h.opcode != FUSE_REMOVEXATTR && !fuse_name_ok(s, strlen(s)))
			__builtin_trap();
	}
	if (r.data && r.data_len && (r.data < args || r.data + r.data_len > end || r.data_len > n))
		__builtin_trap();
}

struct ids {
	uint64_t node[NR_IDS], fh[NR_IDS];
	unsigned nodes, fhs;
};

static bool takes_fh(uint32_t op)
{
	switch (op) {
	case FUSE_READ:
	case FUSE_WRITE:
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
	case FUSE_FLUSH:
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_FALLOCATE:
	case FUSE_LSEEK:
	case FUSE_COPY_FILE_RANGE:
		return true;
	default:
		return false;
	}
}

/* Small IDs stand for ones the server handed out (generations are not guessable). */
static void remap(uint8_t *req, size_t n, const struct ids *ids)
{
	struct fuse_in_header h;
	uint64_t fh;

	if (n < sizeof(h))
		return;
	memcpy(&h, req, sizeof(h));
	if (h.nodeid >= 2 && h.nodeid < NR_IDS && ids->nodes)
		h.nodeid = ids->node[h.nodeid % ids->nodes];
	memcpy(req, &h, sizeof(h));
	if (takes_fh(h.opcode) && n >= sizeof(h) + 8 && ids->fhs) {
		memcpy(&fh, req + sizeof(h), 8);
		if (fh < NR_IDS) {
			fh = ids->fh[fh % ids->fhs];
			memcpy(req + sizeof(h), &fh, 8);
		}
	}
}

/* Remembers node IDs and handles from replies, for remap. */
static void learn(uint32_t op, const uint8_t *body, size_t len, struct ids *ids)
{
	struct fuse_entry_out e;
	struct fuse_open_out o;

	if ((op == FUSE_LOOKUP || op == FUSE_MKDIR || op == FUSE_MKNOD || op == FUSE_SYMLINK ||
	     op == FUSE_LINK || op == FUSE_CREATE) &&
	    len >= sizeof(e)) {
		memcpy(&e, body, sizeof(e));
		if (e.nodeid)
			ids->node[ids->nodes++ % NR_IDS] = e.nodeid;
		ids->nodes = MIN(ids->nodes, (unsigned)NR_IDS);
	}
	if ((op == FUSE_OPEN || op == FUSE_OPENDIR || op == FUSE_CREATE) && len >= sizeof(o)) {
		memcpy(&o, body + (op == FUSE_CREATE ? sizeof(e) : 0), sizeof(o));
		ids->fh[ids->fhs++ % NR_IDS] = o.fh;
		ids->fhs = MIN(ids->fhs, (unsigned)NR_IDS);
	}
}

static void serve(struct fs_server *s, uint8_t *req, size_t n, size_t room, uint8_t *reply,
		  struct ids *ids)
{
	struct iovec in = {.iov_base = req, .iov_len = n},
		     out = {.iov_base = reply, .iov_len = room};
	struct iov_cursor ic, oc;
	struct fuse_out_header oh;
	struct fuse_in_header h = {0};
	size_t written;

	memcpy(&h, req, MIN(n, sizeof(h)));
	iov_cursor_init(&ic, &in, 1);
	iov_cursor_init(&oc, &out, room ? 1 : 0);
	written = fs_server_handle(s, &ic, &oc);
	if (written > room || (written && written < sizeof(oh)))
		__builtin_trap();
	if (!written)
		return;
	memcpy(&oh, reply, sizeof(oh));
	if (oh.len != written || oh.unique != h.unique || oh.error > 0 || oh.error <= -4096 ||
	    (oh.error && oh.len != sizeof(oh)))
		__builtin_trap();
	if (!oh.error)
		learn(h.opcode, reply + sizeof(oh), written - sizeof(oh), ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fs_server_config cfg = {.cache = FS_CACHE_AUTO, .timeout = 1};
	struct fuse_init_in init = {.major = 7, .minor = 38, .flags = 0xffffffff};
	static uint8_t req[MAX_REQ + sizeof(struct fuse_in_header) + sizeof(init)];
	static uint8_t reply[MAX_REPLY];
	const uint8_t *p = data, *end = data + size;
	struct fs_server_params sp;
	struct fs_server *s;
	struct ids ids = {0};
	struct logger lg;

	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	reset_scratch();
	sp = (struct fs_server_params){
		.cfg = &cfg,
		.lg = &lg,
		.name = "fuzz",
		.root_fd = open(scratch, O_PATH | O_DIRECTORY | O_CLOEXEC),
		.proc_self_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC),
		.max_inodes = 64,
		.max_handles = 16};
	if (sp.root_fd < 0 || sp.proc_self_fd < 0 || fs_server_create(&sp, &s) < 0)
		__builtin_trap();
	/* The session's INIT, so that the rest reaches the operations. */
	{
		struct fuse_in_header h = {.len = sizeof(h) + sizeof(init), .opcode = FUSE_INIT};

		memcpy(req, &h, sizeof(h));
		memcpy(req + sizeof(h), &init, sizeof(init));
		serve(s, req, h.len, sizeof(reply), reply, &ids);
	}
	for (unsigned i = 0; i < MAX_REQS && end - p >= 4; i++) {
		size_t n = (size_t)get_le(p, 2) % (MAX_REQ + 1);
		size_t room = (size_t)get_le(p + 2, 2) % (MAX_REPLY + 1);

		p += 4;
		n = MIN(n, (size_t)(end - p));
		memcpy(req, p, n);
		p += n;
		check_parse(req, n);
		remap(req, n, &ids);
		serve(s, req, n, room, reply, &ids);
	}
	fs_server_destroy(s);
	return 0;
}
