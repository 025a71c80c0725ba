/*
 * The guest's side of a split virtqueue, played from the host for tests and benchmarks: it
 * lays out the rings in guest memory, adds chains of buffers, decides whether to kick as a
 * Linux driver would, and collects used entries. It may run on another thread than the
 * device; it synchronises with it only through the rings, as a real driver does.
 *
 * For malformed-input tests, the raw calls (virtq_driver_set_desc, virtq_driver_publish,
 * virtq_driver_set_avail_idx) write whatever they are given.
 */
#ifndef CROSVM_TEST_VIRTQ_DRIVER_H
#define CROSVM_TEST_VIRTQ_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;

/* One buffer of a chain: guest-physical address, length, device-writable or not. */
struct virtq_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

struct virtq_driver {
	const struct guest_mem *mem;
	uint16_t size;
	bool event_idx;
	uint64_t desc, avail, used; /* ring addresses, to hand to virtq_init */
	uint64_t data, data_len;    /* the area virtq_driver_alloc hands out */
	uint64_t data_next;
	int kick_fd; /* eventfd signalled by virtq_driver_kick, or -1 */

	uint16_t avail_idx;    /* next avail->idx to publish */
	uint16_t kicked_idx;   /* avail_idx at the last kick decision */
	uint16_t last_used;    /* next used entry to collect */
	uint16_t num_free;     /* free descriptors */
	uint16_t free_head;    /* first free descriptor */
	uint16_t *free_next;   /* free list links, host side (the device cannot corrupt them) */
	uint16_t *chain_descs; /* descriptors held by the chain at each head (0: not ours) */
	uint16_t *chain_last;  /* last descriptor of the chain at each head */
};

/*
 * Lays out desc/avail/used for a queue of `size` (power of two) from ring_gpa (16-aligned,
 * RAM) and zeroes them; data/data_len is where virtq_driver_alloc takes buffers from (may be
 * 0/0). event_idx: the driver behaves as if VIRTIO_F_EVENT_IDX was negotiated.
 */
int virtq_driver_init(struct virtq_driver *d, const struct guest_mem *m, uint16_t size,
		      uint64_t ring_gpa, uint64_t data, uint64_t data_len, bool event_idx);
void virtq_driver_destroy(struct virtq_driver *d);
/* Bytes the rings of a queue of `size` take from ring_gpa (with the alignment padding). */
uint64_t virtq_driver_ring_bytes(uint16_t size);

/* Takes len bytes (8-aligned) from the data area; -ENOSPC when exhausted. */
int virtq_driver_alloc(struct virtq_driver *d, uint32_t len, uint64_t *gpa);
/* Starts handing out the data area from its beginning again. */
void virtq_driver_free_all(struct virtq_driver *d);

/*
 * Adds a chain of nr buffers (readable ones must come first) and publishes it: descriptors,
 * then the ring entry, then avail->idx with release ordering. -ENOSPC without enough free
 * descriptors. *head receives the chain's head.
 */
int virtq_driver_add(struct virtq_driver *d, const struct virtq_buf *bufs, unsigned nr,
		     uint16_t *head);
/*
 * The same through one indirect descriptor: the table (nr entries) is written at table_gpa.
 */
int virtq_driver_add_indirect(struct virtq_driver *d, const struct virtq_buf *bufs, unsigned nr,
			      uint64_t table_gpa, uint16_t *head);

/*
 * Whether a driver would notify now (after the full barrier it must use): avail_event
 * crossed since the last kick with EVENT_IDX, else VRING_USED_F_NO_NOTIFY clear. When true
 * and kick_fd >= 0, signals kick_fd.
 */
bool virtq_driver_kick(struct virtq_driver *d);

/* Collects the next used entry; -ENOENT if none, -EPROTO for an id out of range. */
int virtq_driver_get_used(struct virtq_driver *d, uint16_t *id, uint32_t *len);
/* used->idx as the device last published it. */
uint16_t virtq_driver_used_idx(const struct virtq_driver *d);

/* Interrupt suppression: NO_INTERRUPT flag, or used_event with EVENT_IDX. */
void virtq_driver_set_no_interrupt(struct virtq_driver *d, bool on);
void virtq_driver_set_used_event(struct virtq_driver *d, uint16_t idx);

/* Raw access for malformed-input tests. */
int virtq_driver_set_desc(struct virtq_driver *d, uint16_t i, uint64_t addr, uint32_t len,
			  uint16_t flags, uint16_t next);
/* Writes a raw descriptor into an indirect table at table_gpa, entry i. */
int virtq_driver_set_table_desc(struct virtq_driver *d, uint64_t table_gpa, uint16_t i,
				uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Puts head (any value) in the next avail ring slot and publishes it. */
int virtq_driver_publish(struct virtq_driver *d, uint16_t head);
/* Stores avail->idx as given (e.g. to jump by more than the queue size). */
void virtq_driver_set_avail_idx(struct virtq_driver *d, uint16_t idx);

#endif
