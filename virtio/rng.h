/*
 * virtio-rng (virtio 1.2, section 5.4): one request queue whose device-writable buffers the
 * device fills with bytes from the host's /dev/urandom (the kernel's CSPRNG, as getrandom(2)
 * gives), opened when the device is created so that its process needs nothing but read(2).
 * No configuration space, no features.
 */
#ifndef CROSVM_VIRTIO_RNG_H
#define CROSVM_VIRTIO_RNG_H

#include "core/util.h"

struct logger;
struct virtio_dev_ops;

/* The most bytes one request gets, so that a huge buffer cannot stall the device's loop. */
#define VIRTIO_RNG_MAX_REQUEST (64u * 1024u)
#define VIRTIO_RNG_QUEUE_SIZE  256
#define VIRTIO_RNG_SOURCE      "/dev/urandom"

/* A new device and its ops table, to hand to virtio_pci_create (which then owns it). */
int virtio_rng_create(const struct logger *lg, const struct virtio_dev_ops **ops,
		      void **dev) MUST_CHECK;

#endif
