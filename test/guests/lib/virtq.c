#include "virtq.h"
#include "io.h"
#include "str.h"

static uint64_t desc_bytes(uint16_t size)
{
	return 16ull * size;
}

static uint64_t avail_bytes(uint16_t size)
{
	return 6 + 2ull * size;
}

static uint64_t used_bytes(uint16_t size)
{
	return 6 + 8ull * size;
}

int virtq_alloc(struct virtq *q, struct dma_pool *pool, uint16_t index, uint16_t size,
		bool indirect)
{
	int rc;

	*q = (struct virtq){.index = index, .size = size};
	if (!size || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	/* Each ring in its own pages: simple to reason about, cheap at these sizes. */
	rc = dma_alloc(pool, desc_bytes(size), 4096, &q->desc_pa);
	if (!rc)
		rc = dma_alloc(pool, avail_bytes(size), 4096, &q->avail_pa);
	if (!rc)
		rc = dma_alloc(pool, used_bytes(size), 4096, &q->used_pa);
	if (!rc && indirect) {
		q->indirect_tables = dma_zalloc(pool, desc_bytes(size) * VIRTQ_INDIRECT_MAX, 4096);
		if (!q->indirect_tables)
			rc = -ENOMEM;
	}
	if (rc)
		return rc;
	q->desc = phys_to_ptr(q->desc_pa);
	q->avail = phys_to_ptr(q->avail_pa);
	q->used = phys_to_ptr(q->used_pa);
	virtq_reset(q, false, 0);
	return 0;
}

void virtq_reset(struct virtq *q, bool event_idx, uint64_t notify_addr)
{
	memset((void *)q->desc, 0, desc_bytes(q->size));
	memset((void *)q->avail, 0, avail_bytes(q->size));
	memset((void *)q->used, 0, used_bytes(q->size));
	for (unsigned i = 0; i < VIRTQ_MAX_SIZE; i++)
		q->owner[i] = VIRTQ_NO_OWNER;
	q->event_idx = event_idx;
	q->notify_addr = notify_addr;
	q->avail_idx = q->kicked_idx = q->last_used = 0;
	q->num_free = q->size;
	q->kicks = q->kicks_suppressed = 0;
}

/* Claims n free descriptor slots for the chain that will start at the first of them. */
static int claim(struct virtq *q, unsigned n, uint16_t *slots)
{
	unsigned got = 0;

	if (n > q->num_free)
		return -ENOSPC;
	for (uint16_t i = 0; i < q->size && got < n; i++) {
		if (q->owner[i] == VIRTQ_NO_OWNER)
			slots[got++] = i;
	}
	if (got < n)
		return -ENOSPC;
	for (unsigned i = 0; i < n; i++)
		q->owner[slots[i]] = slots[0];
	q->num_free -= (uint16_t)n;
	return 0;
}

static void publish(struct virtq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->size] = head;
	/* The ring entry must be visible before the index that hands it over. */
	barrier();
	q->avail_idx++;
	WRITE_ONCE(q->avail->idx, q->avail_idx);
}

int virtq_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n, bool use_indirect,
	      uint16_t *head)
{
	uint16_t slots[VIRTQ_INDIRECT_MAX];
	int rc;

	if (!n || n > VIRTQ_INDIRECT_MAX)
		return -EINVAL;
	use_indirect = use_indirect && q->indirect_tables;
	rc = claim(q, use_indirect ? 1 : n, slots);
	if (rc)
		return rc;
	if (use_indirect) {
		struct virtq_desc *t = q->indirect_tables + (uint64_t)slots[0] * VIRTQ_INDIRECT_MAX;

		for (unsigned i = 0; i < n; i++)
			t[i] = (struct virtq_desc){
				.addr = bufs[i].addr,
				.len = bufs[i].len,
				.flags = (uint16_t)((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
						    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
				.next = (uint16_t)(i + 1 < n ? i + 1 : 0),
			};
		q->desc[slots[0]] = (struct virtq_desc){
			.addr = (uint64_t)(uintptr_t)t,
			.len = (uint32_t)(n * sizeof(*t)),
			.flags = VIRTQ_DESC_F_INDIRECT,
		};
	} else {
		for (unsigned i = 0; i < n; i++)
			q->desc[slots[i]] = (struct virtq_desc){
				.addr = bufs[i].addr,
				.len = bufs[i].len,
				.flags = (uint16_t)((bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
						    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
				.next = i + 1 < n ? slots[i + 1] : 0,
			};
	}
	publish(q, slots[0]);
	*head = slots[0];
	return 0;
}

int virtq_add_raw(struct virtq *q, const struct virtq_desc *d, unsigned n, uint16_t *head)
{
	uint16_t slots[VIRTQ_INDIRECT_MAX];
	int rc;

	if (!n || n > VIRTQ_INDIRECT_MAX)
		return -EINVAL;
	rc = claim(q, n, slots);
	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		struct virtq_desc e = d[i];

		if ((e.flags & VIRTQ_DESC_F_NEXT) && e.next < n)
			e.next = slots[e.next];
		q->desc[slots[i]] = e;
	}
	publish(q, slots[0]);
	*head = slots[0];
	return 0;
}

/* virtio 1.2, 2.7.10: notify when the device's avail_event lies in (old, new]. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

void virtq_kick(struct virtq *q)
{
	uint16_t old = q->kicked_idx, now = q->avail_idx;
	bool notify;

	/* The device may be reading avail_event/flags while we publish: order store -> load. */
	virtq_mb();
	if (q->event_idx)
		notify = need_event(mmio_read16(q->used_pa + 4 + 8ull * q->size), now, old);
	else
		notify = !(READ_ONCE(q->used->flags) & 1);
	q->kicked_idx = now;
	if (!notify) {
		q->kicks_suppressed++;
		return;
	}
	q->kicks++;
	mmio_write16(q->notify_addr, q->index);
}

bool virtq_has_used(const struct virtq *q)
{
	return READ_ONCE(q->used->idx) != q->last_used;
}

static void free_chain(struct virtq *q, uint16_t head)
{
	for (uint16_t i = 0; i < q->size; i++) {
		if (q->owner[i] == head) {
			q->owner[i] = VIRTQ_NO_OWNER;
			q->num_free++;
		}
	}
}

int virtq_pop(struct virtq *q, uint16_t *head, uint32_t *len)
{
	struct virtq_used_elem e;

	if (!virtq_has_used(q))
		return -ENOENT;
	/* Read the element only after seeing the index that covers it. */
	barrier();
	e = q->used->ring[q->last_used % q->size];
	q->last_used++;
	if (q->event_idx) {
		/* used_event: interrupt us again as soon as the next element is used. */
		q->avail->ring[q->size] = q->last_used;
		virtq_mb();
	}
	if (e.id >= q->size || q->owner[e.id] != e.id)
		return -EIO;
	free_chain(q, (uint16_t)e.id);
	*head = (uint16_t)e.id;
	*len = e.len;
	return 0;
}
