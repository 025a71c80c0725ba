#include "virtio/queue.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#include "core/guest_mem.h"
#include "core/log.h"

/* Byte offsets inside the rings (virtio 1.2, 2.7.5-2.7.8). */
#define DESC_SIZE	  16u
#define AVAIL_IDX	  2u
#define AVAIL_RING(i)	  (4u + 2u * (uint32_t)(i))
#define USED_FLAGS	  0u
#define USED_IDX	  2u
#define USED_ELEM_SIZE	  8u
#define USED_RING(i)	  (4u + USED_ELEM_SIZE * (uint32_t)(i))
#define USED_EVENT(size)  AVAIL_RING(size) /* used_event sits after avail->ring[] */
#define AVAIL_EVENT(size) USED_RING(size)  /* avail_event sits after used->ring[] */

/* A descriptor as the device will use it: copied once out of guest memory. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/*
 * Ring fields are naturally aligned (the ring alignment rules guarantee it), so the guest's
 * concurrent writes are seen whole; the atomics also stop the compiler from reading twice.
 */
static uint16_t ld16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED));
}

static uint16_t ld16_acquire(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE));
}

static void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELAXED);
}

static void st16_release(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, htole16(v), __ATOMIC_RELEASE);
}

static void st32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

/*
 * Indirect tables need not be aligned, so a descriptor is copied bytewise; the compiler
 * barrier then forbids re-reading guest memory in place of the copy, so each field is read
 * from the guest exactly once whatever the guest does meanwhile.
 */
static void read_desc(const uint8_t *p, struct desc *d)
{
	struct vring_desc raw;

	memcpy(&raw, p, sizeof(raw));
	__asm__ __volatile__("" ::: "memory");
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
}

static int set_broken(struct virtq *q, const char *why, unsigned long a, unsigned long b)
{
	if (!q->broken)
		log_err(q->lg, "%s: virtqueue broken, stopping it: %s (%lu, %lu)", q->name, why, a,
			b);
	q->broken = true;
	return -EIO;
}

static void report_malformed(struct virtq *q, uint16_t head, const char *why)
{
	if (!log_ratelimit(&q->nr_malformed))
		return;
	log_warn(q->lg, "%s: failing malformed descriptor chain (head %u): %s [%llu so far]",
		 q->name, head, why, (unsigned long long)q->nr_malformed);
}

int virtq_init(struct virtq *q, const struct guest_mem *m, uint16_t size, uint64_t desc,
	       uint64_t avail, uint64_t used, bool event_idx, bool indirect,
	       const struct logger *lg)
{
	uint64_t avail_len = AVAIL_RING(size) + (event_idx ? 2 : 0);
	uint64_t used_len = USED_RING(size) + (event_idx ? 2 : 0);
	void *d, *a, *u;

	virtq_reset(q);
	if (!size || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		goto err_inval;
	if (!IS_ALIGNED(desc, 16) || !IS_ALIGNED(avail, 2) || !IS_ALIGNED(used, 4))
		goto err_inval;
	if (guest_mem_ptr(m, desc, (uint64_t)size * DESC_SIZE, &d) ||
	    guest_mem_ptr(m, avail, avail_len, &a) || guest_mem_ptr(m, used, used_len, &u))
		goto err_inval;
	*q = (struct virtq){
		.mem = m,
		.lg = lg,
		.name = "virtq",
		.size = size,
		.event_idx = event_idx,
		.indirect = indirect,
		.desc = d,
		.avail = a,
		.used = u,
		.desc_gpa = desc,
		.avail_gpa = avail,
		.used_gpa = used,
		.notify_enabled = true,
	};
	/* The used ring is the device's: start it in the state the indices above describe. */
	st16(q->used + USED_FLAGS, 0);
	st16_release(q->used + USED_IDX, 0);
	if (event_idx)
		st16(q->used + AVAIL_EVENT(size), 0);
	return 0;
err_inval:
	/* Guest-triggered (queue enable), so not above debug: a guest could repeat it forever. */
	log_debug(lg, "virtqueue refused: size %u desc 0x%llx avail 0x%llx used 0x%llx", size,
		  (unsigned long long)desc, (unsigned long long)avail, (unsigned long long)used);
	return -EINVAL;
}

void virtq_reset(struct virtq *q)
{
	*q = (struct virtq){.name = "virtq"};
}

bool virtq_ready(const struct virtq *q)
{
	return q->size != 0;
}

void iov_cursor_reader(struct iov_cursor *cur, const struct virtq_chain *c)
{
	iov_cursor_init(cur, c->iov, c->nr_out);
}

void iov_cursor_writer(struct iov_cursor *cur, const struct virtq_chain *c)
{
	iov_cursor_init(cur, c->iov + c->nr_out, c->nr_in);
}

int virtq_chain_alloc(struct virtq_chain *c, unsigned cap)
{
	*c = (struct virtq_chain){0};
	if (!cap)
		return -EINVAL;
	c->iov = calloc(cap, sizeof(*c->iov));
	if (!c->iov)
		return -ENOMEM;
	c->iov_cap = cap;
	return 0;
}

void virtq_chain_free(struct virtq_chain *c)
{
	free(c->iov);
	*c = (struct virtq_chain){0};
}

/*
 * Reads avail->idx and returns how many chains wait, or -EIO when the driver moved it by
 * more than a ring's worth (it cannot have: the ring would have been overwritten).
 */
static int avail_pending(struct virtq *q)
{
	uint16_t idx = ld16_acquire(q->avail + AVAIL_IDX);
	uint16_t n = (uint16_t)(idx - q->last_avail_idx);

	if (n > q->size)
		return set_broken(q, "available index moved too far (index, last seen)", idx,
				  q->last_avail_idx);
	q->avail_shadow = idx;
	return n;
}

/* Turns one guest buffer into an iovec; returns a reason when it breaks a rule. */
static const char *add_buffer(struct virtq *q, struct virtq_chain *c, const struct desc *d,
			      uint64_t *out, uint64_t *in)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	unsigned n = c->nr_out + c->nr_in;
	void *p;

	/* An empty buffer carries nothing, so neither its address nor its direction matter. */
	if (!d->len)
		return NULL;
	if (!writable && c->nr_in)
		return "device-readable buffer after a device-writable one";
	if (guest_mem_ptr(q->mem, d->addr, d->len, &p))
		return "buffer not inside one guest memory region";
	if (n >= c->iov_cap)
		return "more buffers than the device accepts";
	if (writable) {
		*in += d->len;
		c->nr_in++;
	} else {
		*out += d->len;
		c->nr_out++;
	}
	if (*in > UINT32_MAX || *out > UINT32_MAX)
		return "buffer lengths add up to 4 GiB or more";
	c->iov[n] = (struct iovec){.iov_base = p, .iov_len = d->len};
	return NULL;
}

/* Switches the walk to the indirect table d points to; returns a reason if it may not. */
static const char *enter_indirect(struct virtq *q, const struct desc *d, const uint8_t **table,
				  uint32_t *tlen)
{
	void *p;

	if (!q->indirect)
		return "indirect descriptor but VIRTIO_F_RING_INDIRECT_DESC not negotiated";
	if (d->flags & VRING_DESC_F_NEXT)
		return "indirect descriptor with F_NEXT";
	if (!d->len || d->len % DESC_SIZE)
		return "indirect table length not a non-zero multiple of 16";
	/* A chain cannot use more descriptors than the queue size, so neither can a table. */
	if (d->len / DESC_SIZE > q->size)
		return "indirect table larger than the queue";
	if (guest_mem_ptr(q->mem, d->addr, d->len, &p))
		return "indirect table not inside one guest memory region";
	*table = p;
	*tlen = d->len / DESC_SIZE;
	return NULL;
}

/*
 * Walks the chain from c->head. Every step either consumes one buffer descriptor (counted
 * against the queue size, direct and indirect together) or enters the one indirect table a
 * chain may have, so a loop ends at the count and the walk is bounded by size + 1 steps.
 */
static const char *walk(struct virtq *q, struct virtq_chain *c)
{
	const uint8_t *table = q->desc;
	uint32_t tlen = q->size, count = 0;
	bool in_table = false;
	uint64_t out = 0, in = 0;
	uint16_t i = c->head;
	const char *why;
	struct desc d;

	for (;;) {
		read_desc(table + (size_t)i * DESC_SIZE, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (in_table)
				return "indirect descriptor inside an indirect table";
			why = enter_indirect(q, &d, &table, &tlen);
			if (why)
				return why;
			in_table = true;
			i = 0;
			continue;
		}
		if (++count > q->size)
			return "chain longer than the queue size (a loop?)";
		why = add_buffer(q, c, &d, &out, &in);
		if (why)
			return why;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= tlen)
			return "next index out of range";
		i = d.next;
	}
	c->out_bytes = (uint32_t)out;
	c->in_bytes = (uint32_t)in;
	return NULL;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	const char *why;
	uint16_t head;
	int ret;

	if (!q->size || q->broken)
		return -EIO;
	if (q->avail_shadow == q->last_avail_idx) {
		ret = avail_pending(q);
		/*
		 * avail_event already names last_avail_idx; a driver that read it before our
		 * store landed skipped its kick, so look again once the store is visible.
		 */
		if (ret == 0 && q->event_idx && q->notify_enabled) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			ret = avail_pending(q);
		}
		if (ret < 0)
			return ret;
		if (ret == 0)
			return -ENOENT;
	}
	head = ld16(q->avail + AVAIL_RING(q->last_avail_idx & (q->size - 1)));
	if (head >= q->size)
		return set_broken(q, "available ring names a head out of range (head, size)", head,
				  q->size);
	q->last_avail_idx++;
	if (q->event_idx && q->notify_enabled)
		st16(q->used + AVAIL_EVENT(q->size), q->last_avail_idx);

	c->head = head;
	c->nr_out = c->nr_in = 0;
	c->out_bytes = c->in_bytes = 0;
	why = walk(q, c);
	if (why) {
		c->nr_out = c->nr_in = 0;
		c->out_bytes = c->in_bytes = 0;
		report_malformed(q, head, why);
		return -EBADMSG;
	}
	return 0;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	uint8_t *elem;

	if (!q->size || q->broken)
		return -EIO;
	if (head >= q->size)
		return -EINVAL;
	elem = q->used + USED_RING(q->used_idx & (q->size - 1));
	st32(elem, head);
	st32(elem + 4, written);
	q->used_idx++;
	/* The element must be visible before the index that publishes it. */
	st16_release(q->used + USED_IDX, q->used_idx);
	return 0;
}

int virtq_push_many(struct virtq *q, const uint16_t *heads, const uint32_t *written, unsigned n)
{
	uint16_t idx;

	if (!q->size || q->broken)
		return -EIO;
	if (n > q->size)
		return -EINVAL;
	for (unsigned i = 0; i < n; i++)
		if (heads[i] >= q->size)
			return -EINVAL;
	idx = q->used_idx;
	for (unsigned i = 0; i < n; i++, idx++) {
		uint8_t *elem = q->used + USED_RING(idx & (q->size - 1));

		st32(elem, heads[i]);
		st32(elem + 4, written[i]);
	}
	q->used_idx = idx;
	/* Every element must be visible before the one index store that publishes them all. */
	st16_release(q->used + USED_IDX, q->used_idx);
	return 0;
}

void virtq_unpop(struct virtq *q, uint16_t n)
{
	if (!q->size || q->broken)
		return;
	q->last_avail_idx = (uint16_t)(q->last_avail_idx - n);
	if (q->event_idx && q->notify_enabled)
		st16(q->used + AVAIL_EVENT(q->size), q->last_avail_idx);
}

bool virtq_should_notify(struct virtq *q)
{
	uint16_t old;
	bool valid;

	if (!q->size || q->broken)
		return false;
	/*
	 * Order the used->idx store before reading the driver's wish, or a driver that just
	 * re-enabled interrupts and re-checked the old index would wait forever.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(ld16(q->avail) & VRING_AVAIL_F_NO_INTERRUPT);
	old = q->signalled_used;
	valid = q->signalled_valid;
	q->signalled_used = q->used_idx;
	q->signalled_valid = true;
	if (!valid)
		return true;
	return virtq_need_event(ld16(q->avail + USED_EVENT(q->size)), q->used_idx, old);
}

void virtq_disable_notify(struct virtq *q)
{
	if (!q->size || !q->notify_enabled)
		return;
	q->notify_enabled = false;
	/*
	 * With EVENT_IDX the flags must stay 0 (spec 2.7.10); avail_event simply stops
	 * following our progress, so the driver kicks at most once more.
	 */
	if (!q->event_idx)
		st16(q->used + USED_FLAGS, VRING_USED_F_NO_NOTIFY);
}

bool virtq_enable_notify(struct virtq *q)
{
	if (!q->size || q->broken)
		return true; /* let the caller's pop report -EIO */
	q->notify_enabled = true;
	if (q->event_idx)
		st16(q->used + AVAIL_EVENT(q->size), q->last_avail_idx);
	else
		st16(q->used + USED_FLAGS, 0);
	/* Publish the re-enable before re-reading avail->idx (pairs with the driver's mb). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return avail_pending(q) != 0;
}

bool virtq_enable_notify_more(struct virtq *q)
{
	uint16_t seen = q->avail_shadow;

	if (!q->size || q->broken)
		return true;
	q->notify_enabled = true;
	/*
	 * The chains up to avail_shadow are known and not enough: ask for a kick only when the
	 * driver goes past them (with EVENT_IDX, avail_event is the index whose crossing kicks).
	 */
	if (q->event_idx)
		st16(q->used + AVAIL_EVENT(q->size), seen);
	else
		st16(q->used + USED_FLAGS, 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (avail_pending(q) < 0)
		return true;
	return q->avail_shadow != seen;
}

int virtq_serve(struct virtq *q, struct virtq_chain *c, const struct virtq_server *s, void *ctx,
		bool *notify)
{
	int ret;

	virtq_disable_notify(q);
	do {
		for (;;) {
			uint32_t written = 0;

			if (s->between && !s->between(ctx, false))
				return 0;
			ret = virtq_pop(q, c);
			if (ret == -ENOENT)
				break;
			if (ret == -EIO)
				return -EIO;
			switch (s->serve(ctx, c, ret, &written)) {
			case VIRTQ_HOLD:
				continue;
			case VIRTQ_BROKEN:
				return -EIO;
			case VIRTQ_PUSH:
				break;
			}
			if (virtq_push(q, c->head, written) < 0)
				return -EIO;
			if (!s->between && virtq_should_notify(q))
				*notify = true;
		}
		if (s->between && !s->between(ctx, true))
			return 0;
	} while (virtq_enable_notify(q));
	return 0;
}
