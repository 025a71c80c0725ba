/*
 * libFuzzer target for virtio-blk's request path: the input is the device's options, a
 * sequence of request chains (their shape: how many readable and writable buffers of which
 * lengths) and the bytes the guest put in the readable buffers, served against a small
 * memfd image, all started together and in flight at once as the worker serves a queue
 * (virtio_blk_handle_chains), on the io_uring back end or the synchronous one. Or, with flag
 * bit 4, a control command.
 *
 *   [0]      flags: bit 0 read-only, bit 1 sparse, bit 2 has an id, bit 3 odd image size,
 *            bit 4 the rest is a control command: op (1 byte), arg (8 bytes, little-endian),
 *            bit 5 the synchronous back end (else io_uring, where the kernel allows it)
 *   then per request (at most MAX_REQS):
 *   [0]      readable buffers (low nibble, mod MAX_BUFS + 1), writable (high nibble, same)
 *   [1..]    2 bytes of length per buffer (little-endian, mod MAX_BUF_LEN + 1)
 *   [...]    the readable bytes (as many as the readable buffers hold, or what is left)
 *
 * What the device promises, checked for every request: the used length never exceeds the
 * writable bytes, a request with a writable byte gets a status (0, 1 or 2) in its last
 * byte and at least that byte counted; the image never grows; a command is answered once.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/disk.h"
#include "core/log.h"
#include "test/fuzz/chain.h"
#include "virtio/blk.h"
#include "virtio/queue.h"
#include "virtio/virtio.h"

#define IMAGE_SIZE  (64u << 10)
#define MAX_REQS    16u
#define MAX_BUFS    8u
#define MAX_BUF_LEN 8192u
#define ARENA_SIZE  (2 * MAX_BUFS * (MAX_BUF_LEN + 1))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz {
	const struct virtio_dev_ops *ops;
	void *dev;
	int memfd;
	unsigned nr;
	struct virtq_chain c[MAX_REQS];
	uint32_t written[MAX_REQS];
	struct iovec iov[MAX_REQS][2 * MAX_BUFS];
	uint8_t arena[MAX_REQS][ARENA_SIZE];
};

static void replied(void *ctx, const struct dev_reply *reply)
{
	int *calls = ctx;

	if (reply->err > 0 || (reply->err && !memchr(reply->msg, 0, sizeof(reply->msg))))
		__builtin_trap();
	++*calls;
}

static void command(struct fuzz *f, const uint8_t *p, size_t len)
{
	struct dev_cmd cmd = {0};
	uint8_t raw[9] = {0};
	int calls = 0;

	memcpy(raw, p, MIN(len, sizeof(raw)));
	cmd.op = raw[0] % 8;
	cmd.arg = get_le(raw + 1, 8);
	if (f->ops->command(f->dev, &cmd, replied, &calls) == 0 && calls != 1)
		__builtin_trap();
}

/* Parses one request at *p into chain f->nr; returns false when the input is used up. */
static bool one_request(struct fuzz *f, const uint8_t **p, const uint8_t *end)
{
	struct virtq_chain c = {.iov = f->iov[f->nr], .iov_cap = ARRAY_SIZE(f->iov[0])};
	uint8_t *arena = f->arena[f->nr];
	unsigned nr_out, nr_in;

	if (*p >= end)
		return false;
	nr_out = (**p & 0xf) % (MAX_BUFS + 1);
	nr_in = (**p >> 4) % (MAX_BUFS + 1);
	(*p)++;
	/* The guest's request bytes, then whatever garbage the guest left in its buffers. */
	if (fuzz_chain_build(&c, nr_out, nr_in, MAX_BUF_LEN, arena, ARENA_SIZE, p, end))
		return false;
	memset(arena + c.out_bytes, 0xa5, c.in_bytes);
	f->c[f->nr++] = c;
	return true;
}

/* Serves the chains together; checks what the device promises of each. */
static void serve(struct fuzz *f)
{
	if (virtio_blk_handle_chains(f->dev, f->c, f->nr, f->written))
		__builtin_trap();
	for (unsigned i = 0; i < f->nr; i++) {
		const struct virtq_chain *c = &f->c[i];
		uint32_t written = f->written[i];

		if (written > c->in_bytes || (c->in_bytes && !written) || (!c->in_bytes && written))
			__builtin_trap();
		if (c->in_bytes && f->arena[i][c->out_bytes + c->in_bytes - 1] > 2)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct logger lg;
	struct disk_config cfg = {.lock = true, .block_size = 512};
	const uint8_t *p = data + 1, *end = data + size;
	struct fuzz *f;
	char path[64];
	struct stat st;
	uint64_t img;

	if (size < 1)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return 0;
	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	f->memfd = memfd_create("fuzz-blk", MFD_CLOEXEC);
	img = IMAGE_SIZE + (data[0] & 8 ? 100 : 0);
	if (f->memfd < 0 || ftruncate(f->memfd, (off_t)img))
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", f->memfd);
	cfg.path = path;
	cfg.ro = data[0] & 1;
	/* A command may grow the image: sparse, so a huge size costs no memory. */
	cfg.sparse = (data[0] & 2) || (data[0] & 16);
	cfg.has_id = data[0] & 4;
	snprintf(cfg.id, sizeof(cfg.id), "fuzz-disk");
	cfg.engine = data[0] & 32 ? DISK_ENGINE_SYNC : DISK_ENGINE_AUTO;
	if (virtio_blk_create(&cfg, &lg, &f->ops, &f->dev))
		goto out;
	if (data[0] & 16) {
		command(f, p, (size_t)(end - p));
	} else {
		while (f->nr < MAX_REQS && one_request(f, &p, end))
			;
		serve(f);
		/* Requests never change the image's size; only a resize does. */
		if (fstat(f->memfd, &st) || (uint64_t)st.st_size != img)
			__builtin_trap();
	}
	f->ops->destroy(f->dev);
out:
	if (f->memfd >= 0)
		close(f->memfd);
	free(f);
	return 0;
}
