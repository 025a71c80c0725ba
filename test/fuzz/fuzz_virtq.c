/*
 * libFuzzer target for the split virtqueue. The input is a queue configuration, a short
 * script of device and guest actions, and the initial contents of guest memory:
 *
 *   [0]      log2 of the queue size (mod 16)
 *   [1]      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC negotiated
 *   [2..3]   number of script steps (capped by what the input holds)
 *   [4..15]  desc, avail, used guest addresses (little-endian u32, mod GPA_SPAN)
 *   [16..]   script steps of 4 bytes, then the guest memory image (region A, then B)
 *
 * Guest memory is two 64 KiB regions with a gap between them, so buffers can straddle a
 * region end or fall into the hole. After the script the queue is drained, bounded. Every
 * chain the queue accepts is checked to point only into guest memory; anything else is a
 * crash for the fuzzer to report.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/guest_mem.h"
#include "core/log.h"
#include "core/iov.h"
#include "virtio/queue.h"

#define REGION_SIZE 0x10000u
#define REGION_B    0x20000u
#define GPA_SPAN    0x40000u /* addresses beyond the end of RAM are interesting too */
#define HDR_SIZE    16u
#define STEP_SIZE   4u
#define MAX_STEPS   512u
#define MAX_HELD    64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz {
	struct guest_mem mem;
	struct virtq q;
	struct virtq_chain c;
	uint16_t held[MAX_HELD];
	unsigned nr_held;
	uint8_t scratch[4096];
};

static bool in_guest(const struct guest_mem *m, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (unsigned i = 0; i < m->nr; i++) {
		const struct guest_region *r = &m->regions[i];

		if (b >= r->hva && len <= r->size && (size_t)(b - r->hva) <= r->size - len)
			return true;
	}
	return false;
}

/* What an accepted chain promises its device; a broken promise is a bug. */
static void check_chain(struct fuzz *f)
{
	const struct virtq_chain *c = &f->c;
	uint64_t out = 0, in = 0;

	if (c->head >= f->q.size || c->nr_out + c->nr_in > f->q.size ||
	    c->nr_out + c->nr_in > c->iov_cap)
		__builtin_trap();
	for (unsigned i = 0; i < c->nr_out + c->nr_in; i++) {
		if (!c->iov[i].iov_len || !in_guest(&f->mem, c->iov[i].iov_base, c->iov[i].iov_len))
			__builtin_trap();
		if (i < c->nr_out)
			out += c->iov[i].iov_len;
		else
			in += c->iov[i].iov_len;
	}
	if (out != c->out_bytes || in != c->in_bytes)
		__builtin_trap();
}

/* Plays a device: read the request, write some reply, complete it. */
static void serve(struct fuzz *f, uint8_t reply)
{
	struct iov_cursor rd, wr;
	size_t n;

	check_chain(f);
	iov_cursor_reader(&rd, &f->c);
	iov_cursor_writer(&wr, &f->c);
	n = MIN(iov_remaining(&rd), sizeof(f->scratch));
	if (iov_read(&rd, f->scratch, n))
		__builtin_trap();
	n = MIN(iov_remaining(&wr), (size_t)reply * 16);
	memset(f->scratch, reply, MIN(n, sizeof(f->scratch)));
	if (iov_write(&wr, f->scratch, MIN(n, sizeof(f->scratch))))
		__builtin_trap();
	(void)virtq_push(&f->q, f->c.head, (uint32_t)iov_consumed(&wr));
}

static void pop_one(struct fuzz *f, bool hold, uint8_t reply)
{
	int ret = virtq_pop(&f->q, &f->c);

	if (ret == -EBADMSG) {
		(void)virtq_push(&f->q, f->c.head, 0);
		return;
	}
	if (ret)
		return;
	if (hold && f->nr_held < MAX_HELD) {
		check_chain(f);
		f->held[f->nr_held++] = f->c.head;
		return;
	}
	serve(f, reply);
}

static void step(struct fuzz *f, const uint8_t *s)
{
	uint32_t off;

	switch (s[0] % 8) {
	case 0:
		pop_one(f, false, s[1]);
		break;
	case 1:
		pop_one(f, true, 0);
		break;
	case 2:
		if (f->nr_held) {
			unsigned i = s[1] % f->nr_held;

			(void)virtq_push(&f->q, f->held[i], (uint32_t)s[2] << 8 | s[3]);
			f->held[i] = f->held[--f->nr_held];
		}
		break;
	case 3:
		/* The guest rewrites a byte anywhere in RAM: rings, descriptors, tables. */
		off = ((uint32_t)s[1] | (uint32_t)s[2] << 8) + (s[0] & 0x80 ? REGION_B : 0);
		(void)guest_mem_write(&f->mem, off, &s[3], 1);
		break;
	case 4:
		(void)virtq_should_notify(&f->q);
		break;
	case 5:
		(void)virtq_enable_notify(&f->q);
		break;
	case 6:
		virtq_disable_notify(&f->q);
		break;
	default:
		/* The guest publishes more: avail->idx moves by a small amount. */
		if (virtq_ready(&f->q)) {
			uint16_t idx;

			if (!guest_mem_read(&f->mem, f->q.avail_gpa + 2, &idx, 2)) {
				idx = (uint16_t)(idx + (s[1] % 4));
				(void)guest_mem_write(&f->mem, f->q.avail_gpa + 2, &idx, 2);
			}
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct guest_region layout[] = {
		{.gpa = 0, .size = REGION_SIZE},
		{.gpa = REGION_B, .size = REGION_SIZE},
	};
	struct logger lg;
	struct fuzz *f;
	unsigned steps;
	size_t img;

	if (size < HDR_SIZE)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return 0;
	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	if (guest_mem_create_regions(&f->mem, layout, 2))
		goto out_free;
	steps = MIN((unsigned)(data[2] | data[3] << 8), MAX_STEPS);
	steps = MIN(steps, (unsigned)((size - HDR_SIZE) / STEP_SIZE));
	img = HDR_SIZE + (size_t)steps * STEP_SIZE;
	if (size > img && guest_mem_write(&f->mem, 0, data + img, MIN(size - img, REGION_SIZE)))
		goto out_mem;
	if (size - img > REGION_SIZE && guest_mem_write(&f->mem, REGION_B, data + img + REGION_SIZE,
							MIN(size - img - REGION_SIZE, REGION_SIZE)))
		goto out_mem;
	if (virtq_init(&f->q, &f->mem, (uint16_t)(1u << (data[0] % 16)),
		       (uint32_t)get_le(data + 4, 4) % GPA_SPAN,
		       (uint32_t)get_le(data + 8, 4) % GPA_SPAN,
		       (uint32_t)get_le(data + 12, 4) % GPA_SPAN, data[1] & 1, data[1] & 2, &lg))
		goto out_mem;
	/* A device may take fewer buffers than the queue size: exercise that limit too. */
	if (virtq_chain_alloc(&f->c, data[1] & 4 ? 4 : f->q.size))
		goto out_mem;
	for (unsigned i = 0; i < steps; i++)
		step(f, data + HDR_SIZE + (size_t)i * STEP_SIZE);
	/* Drain: each pop consumes an entry, so a ring's worth (+1 to see it empty) is enough. */
	for (unsigned i = 0; i <= f->q.size; i++) {
		int ret = virtq_pop(&f->q, &f->c);

		if (ret == -EBADMSG)
			(void)virtq_push(&f->q, f->c.head, 0);
		else if (ret == 0)
			serve(f, 1);
		else
			break;
	}
	(void)virtq_should_notify(&f->q);
	virtq_chain_free(&f->c);
out_mem:
	guest_mem_destroy(&f->mem);
out_free:
	free(f);
	return 0;
}
