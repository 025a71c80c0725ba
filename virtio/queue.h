/*
 * The device side of a split virtqueue (virtio 1.2, section 2.7).
 *
 * Everything the guest wrote is hostile input: ring indices, descriptor fields, lengths and
 * addresses are checked before use and each descriptor is copied once into a local before
 * any field is looked at, since the guest may rewrite it concurrently. A chain that breaks a
 * rule fails only that request (virtq_pop returns -EBADMSG with the head filled in); a ring
 * that cannot be trusted any more (the available index or a head out of range) marks the
 * queue broken, which the transport turns into DEVICE_NEEDS_RESET.
 *
 * Threads: a queue is used by one thread at a time; the owner serialises calls with its own
 * lock. The guest is the only other party and is synchronised with through the ring
 * indices (acquire/release) and the full barriers the spec asks for.
 *
 * Memory: struct virtq holds no heap memory. A chain's iovecs live in storage the caller
 * sizes once (virtq_chain_alloc), so popping allocates nothing.
 */
#ifndef CROSVM_VIRTIO_QUEUE_H
#define CROSVM_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

#include "core/iov.h"
#include "core/util.h"

struct guest_mem;
struct logger;

#define VIRTQ_MAX_SIZE 32768

struct virtq {
	const struct guest_mem *mem;
	const struct logger *lg;
	const char *name; /* for log messages; the owner may set it after virtq_init */

	uint16_t size; /* 0: not configured */
	bool event_idx;
	bool indirect;
	bool broken;

	/* Host views of the three rings, checked to lie in guest memory at init. */
	uint8_t *desc;
	uint8_t *avail;
	uint8_t *used;
	uint64_t desc_gpa, avail_gpa, used_gpa;

	uint16_t last_avail_idx; /* next available entry to consume */
	uint16_t avail_shadow;	 /* avail->idx as last read */
	uint16_t used_idx;	 /* next used entry to fill (and the published used->idx) */
	uint16_t signalled_used; /* used_idx when the driver was last considered for a signal */
	bool signalled_valid;
	bool notify_enabled; /* the device wants available-buffer notifications */

	uint64_t nr_malformed; /* chains failed for breaking a rule; logs are rate-limited */
};

/*
 * A popped chain. iov[0, nr_out) are device-readable buffers, iov[nr_out, nr_out + nr_in)
 * device-writable ones; each points into guest memory (valid while the memory lives).
 * iov and iov_cap are the caller's storage; iov_cap >= the queue size never runs short.
 */
struct virtq_chain {
	uint16_t head;
	struct iovec *iov;
	unsigned iov_cap;
	unsigned nr_out, nr_in;
	uint32_t out_bytes, in_bytes;
};

/*
 * Configures q for the rings the driver set up: size a power of two in 1..32768, desc
 * 16-aligned, avail 2-aligned, used 4-aligned, each ring wholly inside one guest memory
 * region. event_idx/indirect: whether VIRTIO_F_EVENT_IDX / VIRTIO_F_RING_INDIRECT_DESC were
 * negotiated. -EINVAL (q left reset) when any of this does not hold.
 */
int virtq_init(struct virtq *q, const struct guest_mem *m, uint16_t size, uint64_t desc,
	       uint64_t avail, uint64_t used, bool event_idx, bool indirect,
	       const struct logger *lg) MUST_CHECK;
/* Back to the unconfigured state (device reset). */
void virtq_reset(struct virtq *q);
/* True between a successful virtq_init and the next reset. */
bool virtq_ready(const struct virtq *q);

/* Allocates (once, off the hot path) iovec storage for chains of up to cap buffers. */
int virtq_chain_alloc(struct virtq_chain *c, unsigned cap) MUST_CHECK;
void virtq_chain_free(struct virtq_chain *c);

/* A cursor over the chain's device-readable (driver to device) part. */
void iov_cursor_reader(struct iov_cursor *cur, const struct virtq_chain *c);
/* A cursor over the chain's device-writable (device to driver) part. */
void iov_cursor_writer(struct iov_cursor *cur, const struct virtq_chain *c);

/*
 * Takes the next available chain.
 *   0        c describes it; complete it later with virtq_push(q, c->head, written).
 *   -ENOENT  nothing available.
 *   -EBADMSG the chain breaks a rule; c->head is valid and nothing else in c is. Complete it
 *            with virtq_push(q, c->head, 0) and carry on.
 *   -EIO     the queue is broken or not configured: stop using it until reset.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c) MUST_CHECK;
/* Returns a chain to the driver with `written` bytes written; -EIO if broken, -EINVAL bad head. */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written) MUST_CHECK;
/*
 * Gives back n chains at once: their used elements are written first and published by one
 * used->idx store, so the driver sees all or none of them (a virtio-net frame spread over
 * several receive buffers must arrive whole). -EIO if broken, -EINVAL for a bad head (then
 * nothing is published).
 */
int virtq_push_many(struct virtq *q, const uint16_t *heads, const uint32_t *written,
		    unsigned n) MUST_CHECK;
/*
 * Undoes the last n successful pops that were not pushed: those chains are available again
 * and the next pops walk them afresh (the device found it cannot use them yet, e.g. a
 * received frame needs more buffers than the driver has posted). n must not exceed the
 * chains popped since the device last pushed or unpopped them.
 */
void virtq_unpop(struct virtq *q, uint16_t n);
/* After pushing: whether the driver asked to be interrupted (EVENT_IDX or NO_INTERRUPT). */
bool virtq_should_notify(struct virtq *q);

/*
 * Available-buffer notification suppression for a device loop:
 *
 *	virtq_disable_notify(q);
 *	do {
 *		while (virtq_pop(q, &c) == 0) ...;
 *	} while (virtq_enable_notify(q));
 *
 * virtq_enable_notify re-enables kicks and then looks at the ring again; it returns true
 * when a chain arrived meanwhile (the guest may have skipped its kick), so the loop never
 * sleeps on work nobody will kick about. It also returns true for a broken or unconfigured
 * queue, so that the caller's next pop reports -EIO.
 */
void virtq_disable_notify(struct virtq *q);
bool virtq_enable_notify(struct virtq *q);
/*
 * For a device waiting for more buffers than it has seen (it unpopped some: they are not
 * enough): re-enables kicks for chains beyond those the ring already showed, then looks
 * again; true when the driver added some meanwhile (the caller retries now rather than
 * sleeping), also for a broken or unconfigured queue.
 */
bool virtq_enable_notify_more(struct virtq *q);

/* What virtq_serve does with a chain once the device has looked at it. */
enum virtq_verdict {
	VIRTQ_PUSH,   /* give it back now, with the bytes written into it */
	VIRTQ_HOLD,   /* the device keeps it and gives it back itself later */
	VIRTQ_BROKEN, /* the device found the queue broken (a push of its own failed): stop */
};

/* A device's part of the service loop (virtq_serve). */
struct virtq_server {
	/*
	 * One chain. status is 0 (c describes it) or -EBADMSG (it broke a rule: only c->head is
	 * valid and the queue has logged why; give it back empty). *written starts at 0.
	 */
	enum virtq_verdict (*serve)(void *ctx, struct virtq_chain *c, int status,
				    uint32_t *written);
	/*
	 * Optional, for a device that decides itself when to interrupt the driver (it calls
	 * virtq_should_notify then): called before each chain is taken and, with idle set, when
	 * the ring is empty, just before notifications are enabled again. Returning false stops
	 * serving at once. Without it, virtq_serve collects virtq_should_notify itself.
	 */
	bool (*between)(void *ctx, bool idle);
};

/*
 * The service loop of a device: serves every available chain, with available-buffer
 * notifications suppressed meanwhile (virtq_disable_notify / virtq_enable_notify), giving
 * each back as s->serve says; c is the device's chain storage. *notify is set when the driver
 * wants an interrupt for what was pushed (not used with s->between: may be NULL). Returns 0, or
 * -EIO when the queue is broken: stop using it until reset (and ask for one, NEEDS_RESET).
 */
int virtq_serve(struct virtq *q, struct virtq_chain *c, const struct virtq_server *s, void *ctx,
		bool *notify) MUST_CHECK;

/* vring_need_event() of the spec: does moving an index from old to new cross event? */
static inline bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
