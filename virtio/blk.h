/*
 * virtio-blk (virtio 1.2, section 5.2) on a disk back end (virtio/disk.h; the raw image of
 * virtio/disk_raw.h): one request queue served by one worker thread per device, so that slow
 * disk I/O never stalls the event loop. The worker waits on the queue's kick eventfd itself
 * (own_kicks in virtio/virtio.h), hands each request's data to the back end, completes
 * requests and raises the queue interrupt itself, moderated while a batch runs
 * (virtio/blk.c, between).
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
/* Bytes of the device configuration (up to write_zeroes_may_unmap and its padding). */
#define VIRTIO_BLK_CONFIG_SIZE 60

/*
 * Opens the image per cfg (virtio/disk_raw.h: read-only, O_DIRECT, advisory lock) and builds
 * the device; hand ops and dev to virtio_pci_create, which then owns them. The sandbox policy
 * for the device process is "block_device". Errors are logged with the image path.
 */
int virtio_blk_create(const struct disk_config *cfg, const struct logger *lg,
		      const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;

/*
 * Serves one popped request chain synchronously, exactly as the worker does, and returns in
 * *written the bytes put into the chain (the used length). For the fuzz target, which feeds
 * chains without a queue. Returns 0.
 */
int virtio_blk_handle_chain(void *dev, const struct virtq_chain *c, uint32_t *written) MUST_CHECK;

#endif
