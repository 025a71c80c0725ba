#include "test/unit/virtq_driver.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ring.h>

#include "core/guest_mem.h"
#include "core/util.h"

static uint64_t avail_bytes(uint16_t size)
{
	return 6 + 2 * (uint64_t)size;
}

static uint64_t used_bytes(uint16_t size)
{
	return 6 + 8 * (uint64_t)size;
}

uint64_t virtq_driver_ring_bytes(uint16_t size)
{
	/* desc, then avail, then used at the 4-byte alignment the spec allows. */
	return 16 * (uint64_t)size + ALIGN_UP(avail_bytes(size), 4) + used_bytes(size);
}

/* Host pointer to a ring field; the rings were checked to lie in RAM at init. */
static void *ring_ptr(const struct virtq_driver *d, uint64_t gpa, uint64_t len)
{
	void *p = NULL;

	if (guest_mem_ptr(d->mem, gpa, len, &p))
		return NULL;
	return p;
}

static uint16_t ld16(const struct virtq_driver *d, uint64_t gpa, int order)
{
	uint16_t *p = ring_ptr(d, gpa, 2);

	return le16toh(__atomic_load_n(p, order));
}

static void st16(const struct virtq_driver *d, uint64_t gpa, uint16_t v, int order)
{
	uint16_t *p = ring_ptr(d, gpa, 2);

	__atomic_store_n(p, htole16(v), order);
}

int virtq_driver_init(struct virtq_driver *d, const struct guest_mem *m, uint16_t size,
		      uint64_t ring_gpa, uint64_t data, uint64_t data_len, bool event_idx)
{
	int ret;

	*d = (struct virtq_driver){.kick_fd = -1};
	if (!size || (size & (size - 1)) || size > 32768 || !IS_ALIGNED(ring_gpa, 16))
		return -EINVAL;
	if (!guest_mem_valid(m, ring_gpa, virtq_driver_ring_bytes(size)))
		return -EFAULT;
	if (data_len && !guest_mem_valid(m, data, data_len))
		return -EFAULT;
	d->mem = m;
	d->size = size;
	d->event_idx = event_idx;
	d->desc = ring_gpa;
	d->avail = ring_gpa + 16 * (uint64_t)size;
	d->used = d->avail + ALIGN_UP(avail_bytes(size), 4);
	d->data = d->data_next = data;
	d->data_len = data_len;
	d->free_next = calloc(size, sizeof(uint16_t));
	d->chain_descs = calloc(size, sizeof(uint16_t));
	d->chain_last = calloc(size, sizeof(uint16_t));
	if (!d->free_next || !d->chain_descs || !d->chain_last) {
		ret = -ENOMEM;
		goto err_free;
	}
	for (unsigned i = 0; i < size; i++)
		d->free_next[i] = (uint16_t)(i + 1);
	d->num_free = size;
	ret = guest_mem_fill(m, ring_gpa, 0, virtq_driver_ring_bytes(size));
	if (ret)
		goto err_free;
	return 0;
err_free:
	virtq_driver_destroy(d);
	return ret;
}

void virtq_driver_destroy(struct virtq_driver *d)
{
	free(d->free_next);
	free(d->chain_descs);
	free(d->chain_last);
	*d = (struct virtq_driver){.kick_fd = -1};
}

int virtq_driver_alloc(struct virtq_driver *d, uint32_t len, uint64_t *gpa)
{
	uint64_t start = ALIGN_UP(d->data_next, 8);

	if (start < d->data_next || !range_contains(d->data, d->data_len, start, len))
		return -ENOSPC;
	*gpa = start;
	d->data_next = start + len;
	return 0;
}

void virtq_driver_free_all(struct virtq_driver *d)
{
	d->data_next = d->data;
}

static int write_desc(struct virtq_driver *d, uint64_t gpa, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	struct vring_desc v = {
		.addr = htole64(addr),
		.len = htole32(len),
		.flags = htole16(flags),
		.next = htole16(next),
	};

	return guest_mem_write(d->mem, gpa, &v, sizeof(v));
}

int virtq_driver_set_desc(struct virtq_driver *d, uint16_t i, uint64_t addr, uint32_t len,
			  uint16_t flags, uint16_t next)
{
	if (i >= d->size)
		return -EINVAL;
	return write_desc(d, d->desc + 16 * (uint64_t)i, addr, len, flags, next);
}

int virtq_driver_set_table_desc(struct virtq_driver *d, uint64_t table_gpa, uint16_t i,
				uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return write_desc(d, table_gpa + 16 * (uint64_t)i, addr, len, flags, next);
}

int virtq_driver_publish(struct virtq_driver *d, uint16_t head)
{
	uint64_t slot = d->avail + 4 + 2 * (uint64_t)(d->avail_idx & (d->size - 1));

	st16(d, slot, head, __ATOMIC_RELAXED);
	d->avail_idx++;
	/* Descriptors and the ring entry must be visible before the index exposes them. */
	st16(d, d->avail + 2, d->avail_idx, __ATOMIC_RELEASE);
	return 0;
}

void virtq_driver_set_avail_idx(struct virtq_driver *d, uint16_t idx)
{
	d->avail_idx = idx;
	st16(d, d->avail + 2, idx, __ATOMIC_RELEASE);
}

/* Takes n descriptors off the free list; they stay linked through free_next. */
static int take_descs(struct virtq_driver *d, unsigned n, uint16_t *head)
{
	uint16_t last = d->free_head;

	if (!n || n > d->num_free)
		return -ENOSPC;
	*head = d->free_head;
	for (unsigned i = 1; i < n; i++)
		last = d->free_next[last];
	d->free_head = d->free_next[last];
	d->num_free -= (uint16_t)n;
	d->chain_descs[*head] = (uint16_t)n;
	d->chain_last[*head] = last;
	return 0;
}

int virtq_driver_add(struct virtq_driver *d, const struct virtq_buf *bufs, unsigned nr,
		     uint16_t *head)
{
	uint16_t i;
	int ret;

	ret = take_descs(d, nr, head);
	if (ret)
		return ret;
	i = *head;
	for (unsigned k = 0; k < nr; k++) {
		uint16_t flags = bufs[k].writable ? VRING_DESC_F_WRITE : 0;
		uint16_t next = k + 1 < nr ? d->free_next[i] : 0;

		if (k + 1 < nr)
			flags |= VRING_DESC_F_NEXT;
		ret = virtq_driver_set_desc(d, i, bufs[k].gpa, bufs[k].len, flags, next);
		if (ret)
			return ret;
		i = next;
	}
	return virtq_driver_publish(d, *head);
}

int virtq_driver_add_indirect(struct virtq_driver *d, const struct virtq_buf *bufs, unsigned nr,
			      uint64_t table_gpa, uint16_t *head)
{
	int ret;

	if (!nr || nr > UINT16_MAX / 16)
		return -EINVAL;
	for (unsigned k = 0; k < nr; k++) {
		uint16_t flags = bufs[k].writable ? VRING_DESC_F_WRITE : 0;

		if (k + 1 < nr)
			flags |= VRING_DESC_F_NEXT;
		ret = virtq_driver_set_table_desc(d, table_gpa, (uint16_t)k, bufs[k].gpa,
						  bufs[k].len, flags, (uint16_t)(k + 1));
		if (ret)
			return ret;
	}
	ret = take_descs(d, 1, head);
	if (ret)
		return ret;
	ret = virtq_driver_set_desc(d, *head, table_gpa, nr * 16, VRING_DESC_F_INDIRECT, 0);
	if (ret)
		return ret;
	return virtq_driver_publish(d, *head);
}

bool virtq_driver_kick(struct virtq_driver *d)
{
	uint16_t old = d->kicked_idx;
	bool need;

	d->kicked_idx = d->avail_idx;
	/* The new avail->idx must be visible before we read the device's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->event_idx) {
		uint16_t event = ld16(d, d->used + 4 + 8 * (uint64_t)d->size, __ATOMIC_RELAXED);

		need = (uint16_t)(d->avail_idx - event - 1) < (uint16_t)(d->avail_idx - old);
	} else {
		need = !(ld16(d, d->used, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
	}
	if (need && d->kick_fd >= 0)
		(void)eventfd_signal(d->kick_fd);
	return need;
}

uint16_t virtq_driver_used_idx(const struct virtq_driver *d)
{
	return ld16(d, d->used + 2, __ATOMIC_ACQUIRE);
}

int virtq_driver_get_used(struct virtq_driver *d, uint16_t *id, uint32_t *len)
{
	uint64_t elem = d->used + 4 + 8 * (uint64_t)(d->last_used & (d->size - 1));
	uint32_t v[2];
	uint16_t h;
	int ret;

	if (virtq_driver_used_idx(d) == d->last_used)
		return -ENOENT;
	ret = guest_mem_read(d->mem, elem, v, sizeof(v));
	if (ret)
		return ret;
	d->last_used++;
	if (le32toh(v[0]) >= d->size)
		return -EPROTO;
	h = (uint16_t)le32toh(v[0]);
	*id = h;
	*len = le32toh(v[1]);
	/* Give a chain we built back to the free list; raw heads from tests are not ours. */
	if (d->chain_descs[h]) {
		d->free_next[d->chain_last[h]] = d->free_head;
		d->free_head = h;
		d->num_free += d->chain_descs[h];
		d->chain_descs[h] = 0;
	}
	return 0;
}

void virtq_driver_set_no_interrupt(struct virtq_driver *d, bool on)
{
	st16(d, d->avail, on ? VRING_AVAIL_F_NO_INTERRUPT : 0, __ATOMIC_RELAXED);
}

void virtq_driver_set_used_event(struct virtq_driver *d, uint16_t idx)
{
	st16(d, d->avail + 4 + 2 * (uint64_t)d->size, idx, __ATOMIC_RELAXED);
}
