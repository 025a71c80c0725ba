/*
 * virtio-balloon (virtio 1.2, section 5.5), as Linux's virtio_balloon driver uses it.
 *
 * The host sets a target (num_pages) with the control command DEV_CMD_BALLOON_TARGET (the
 * control socket's "balloon"); the driver inflates
 * by handing page frame numbers over inflateq and the device gives those pages back to the
 * host with madvise(MADV_REMOVE) on the shared guest mapping (which works from a sandboxed
 * child that only inherited the mapping). Deflated pages need nothing: they come back, zeroed,
 * when the guest touches them. DEV_CMD_BALLOON_STATS asks the guest for fresh statistics over
 * statsq and answers with them (struct dev_balloon_stats).
 *
 * Queues: inflateq (0), deflateq (1), statsq (2). Features: STATS_VQ and DEFLATE_ON_OOM.
 * Configuration: le32 num_pages (the host's target, read-only for the driver), le32 actual.
 */
#ifndef CROSVM_VIRTIO_BALLOON_H
#define CROSVM_VIRTIO_BALLOON_H

#include "core/util.h"

struct guest_mem;
struct logger;
struct virtio_dev_ops;

#define VIRTIO_BALLOON_QUEUE_SIZE  128
#define VIRTIO_BALLOON_CONFIG_SIZE 8
/* How long a balloon_stats request waits for the guest by default. */
#define VIRTIO_BALLOON_STATS_TIMEOUT_MS 5000u
/*
 * The most PFNs one inflate/deflate chain may carry (Linux sends at most 256), so that a huge
 * buffer cannot stall the device's loop; the rest of such a chain is ignored.
 */
#define VIRTIO_BALLOON_MAX_CHAIN_PFNS 65536u
/* The most statistics entries read from one stats buffer (Linux sends 10 or so). */
#define VIRTIO_BALLOON_MAX_STATS 64u

/*
 * A new balloon over guest memory m and its ops table, to hand to virtio_pci_create (which
 * then owns it). m must outlive the device.
 */
int virtio_balloon_create(const struct guest_mem *m, const struct logger *lg,
			  const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;
/* Sets how long later balloon_stats requests wait for the guest (1 ms at least). */
void virtio_balloon_set_stats_timeout(void *dev, unsigned timeout_ms);

#endif
