/*
 * virtio-blk (virtio 1.2, section 5.2) on a disk back end (virtio/disk.h: io_uring, or the
 * synchronous raw file where io_uring is not available): num_queues request queues
 * (VIRTIO_BLK_F_MQ when more than one), all served by one worker thread per device, so that
 * disk I/O never stalls the event loop. The worker waits on the queues' kick eventfds itself
 * (own_kicks in virtio/virtio.h), starts each request as it pops it (many in flight, at most
 * VIRTIO_BLK_MAX_INFLIGHT: the rest wait in the guest's rings), hands each batch to the
 * back end at once, pushes completions to their queue as they come (out of order) and
 * raises each queue's interrupt itself, moderated while a batch runs (virtio/blk.c,
 * between). A reset lets what is in flight finish on the disk, then stops; a resize first
 * waits for what is in flight.
 *
 * Supported requests: IN, OUT, FLUSH, GET_ID, DISCARD (sparse images) and WRITE_ZEROES
 * (writable images). The configuration is read-only from the guest's side; the control
 * command DEV_CMD_DISK_RESIZE (core/device.h) changes the capacity at run time.
 */
#ifndef CROSVM_VIRTIO_BLK_H
#define CROSVM_VIRTIO_BLK_H

#include <stdint.h>

#include "core/util.h"

struct disk_config;
struct logger;
struct virtio_dev_ops;
struct virtq_chain;

#define VIRTIO_BLK_QUEUE_SIZE 256
/* A chain holds the header and the status besides its data buffers. */
#define VIRTIO_BLK_SEG_MAX  (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_SIZE_MAX (1u << 20)
/* Segments one DISCARD or WRITE_ZEROES request may carry (crosvm's limit). */
#define VIRTIO_BLK_MAX_DISCARD_SEG 32
/* Sectors: discard granularity the guest is told (64 KiB, as crosvm). */
#define VIRTIO_BLK_DISCARD_ALIGNMENT 128
/* Requests served at once per device, over all its queues. */
#define VIRTIO_BLK_MAX_INFLIGHT 256u
/* Request queues: crosvm's default, and the most a device takes. */
#define VIRTIO_BLK_DEFAULT_QUEUES 16u
#define VIRTIO_BLK_MAX_QUEUES	  16u
/* Bytes of the device configuration (up to write_zeroes_may_unmap and its padding). */
#define VIRTIO_BLK_CONFIG_SIZE 60

/*
 * Opens the image per cfg (virtio/disk.h disk_open: read-only, O_DIRECT, advisory lock, the
 * back end cfg->engine asks for) with cfg->num_queues queues (0: the default) and builds
 * the device; hand ops and dev to virtio_pci_create, which then owns them. The sandbox policy
 * for the device process is "block_device". Errors are logged with the image path.
 */
int virtio_blk_create(const struct disk_config *cfg, const struct logger *lg,
		      const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;

/*
 * Serves n popped request chains as the worker does (all started, in flight together, then
 * completed as the back end finishes them) and returns in written[i] the bytes put into chain
 * i (its used length). For the fuzz target, which feeds chains without a queue; the device
 * must not be active. Returns 0, -E2BIG for more than VIRTIO_BLK_MAX_INFLIGHT chains, or
 * -errno when the back end failed.
 */
int virtio_blk_handle_chains(void *dev, const struct virtq_chain *c, unsigned n,
			     uint32_t *written) MUST_CHECK;
/* One chain: virtio_blk_handle_chains with n = 1. */
int virtio_blk_handle_chain(void *dev, const struct virtq_chain *c, uint32_t *written) MUST_CHECK;

#endif
