/*
 * The split virtqueue (virtio 1.2, 2.7) seen from the driver: descriptor table, available
 * ring and used ring in DMA memory, chains built from buffers (directly or through an
 * indirect table), and the notification suppression of VIRTIO_F_EVENT_IDX. Whatever the
 * device writes (used ids and lengths) is checked before use.
 */
#ifndef GUEST_VIRTQ_H
#define GUEST_VIRTQ_H

#include "dma.h"

#define VIRTQ_MAX_SIZE	      256 /* we ask for no more, which bounds our bookkeeping */
#define VIRTQ_INDIRECT_MAX    16  /* descriptors in one indirect table */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_NO_OWNER	      0xffff

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
} PACKED;

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event */
} PACKED;

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
} PACKED;

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event */
} PACKED;

/* One buffer of a request: write means the device writes it. */
struct virtq_buf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

struct virtq {
	uint16_t index, size;
	bool event_idx, indirect;
	uint64_t desc_pa, avail_pa, used_pa;
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	struct virtq_desc *indirect_tables; /* VIRTQ_INDIRECT_MAX per head, or NULL */
	uint64_t notify_addr;
	uint16_t avail_idx; /* next free slot of the available ring (free-running) */
	uint16_t kicked_idx;
	uint16_t last_used;
	uint16_t num_free;
	uint16_t owner[VIRTQ_MAX_SIZE]; /* head of the chain that holds descriptor i */
	uint32_t kicks, kicks_suppressed;
};

/*
 * Allocates the rings for a queue of size entries (a power of two, at most VIRTQ_MAX_SIZE)
 * and indirect tables when indirect is set. -EINVAL, -ENOMEM.
 */
int virtq_alloc(struct virtq *q, struct dma_pool *pool, uint16_t index, uint16_t size,
		bool indirect);
/* Forgets every chain and zeroes the rings (after a device reset); event_idx for the new run. */
void virtq_reset(struct virtq *q, bool event_idx, uint64_t notify_addr);
/*
 * Adds a chain of n buffers (readable ones first, as devices expect) and makes it available;
 * through an indirect table when use_indirect (and the queue has tables). -ENOSPC when out
 * of descriptors, -EINVAL for n == 0 or too many buffers.
 */
int virtq_add(struct virtq *q, const struct virtq_buf *bufs, unsigned n, bool use_indirect,
	      uint16_t *head);
/*
 * Adds n descriptors exactly as given, for malformed-chain tests: flags are kept, a NEXT
 * descriptor's next is an index into d[] (mapped to the slot it gets), and a next outside d[]
 * is passed through unchanged.
 */
int virtq_add_raw(struct virtq *q, const struct virtq_desc *d, unsigned n, uint16_t *head);
/* Notifies the device unless EVENT_IDX says it does not want to hear about these buffers. */
void virtq_kick(struct virtq *q);
bool virtq_has_used(const struct virtq *q);
/*
 * Takes the next used element and frees its chain. -ENOENT when there is none, -EIO when the
 * device returned an id that is not the head of an outstanding chain (skipped).
 */
int virtq_pop(struct virtq *q, uint16_t *head, uint32_t *len);

static inline void virtq_mb(void)
{
	/* A locked instruction orders our stores before later loads, like mfence. */
	__asm__ volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
}

#endif
