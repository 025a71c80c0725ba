/*
 * The kernel's vhost back ends (/dev/vhost-vsock, /dev/vhost-net): the one file that calls
 * their ioctls (scripts/check-layers holds every other file to that). A vhost device runs a
 * virtqueue's data path in the kernel: it reads the rings and guest memory through the
 * owner process's mapping, waits on the queue's kick eventfd and signals its call eventfd.
 *
 * Ownership: VHOST_SET_OWNER binds the device to the calling process's memory; every later
 * ioctl except the feature query and the vsock CID must come from that process. So a
 * sandboxed device sets its owner in its own process, after the fork.
 */
#ifndef CROSVM_VIRTIO_VHOST_H
#define CROSVM_VIRTIO_VHOST_H

#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct guest_mem;
struct virtq;

/* One queue as the vhost device needs it: host addresses of the rings, the eventfds. */
struct vhost_queue {
	unsigned size;
	uint64_t desc_hva, avail_hva, used_hva;
	uint16_t last_avail_idx; /* where the device starts (0 after a reset) */
	int kick_fd;		 /* signalled by the guest's notifications (the ioeventfd) */
	int call_fd;		 /* signalled by the kernel when the guest should be interrupted */
};

int vhost_get_features(int fd, uint64_t *features) MUST_CHECK;
int vhost_set_features(int fd, uint64_t features) MUST_CHECK;
int vhost_set_owner(int fd) MUST_CHECK;
/* Stops the back end and forgets its owner, memory table and queues. */
int vhost_reset_owner(int fd) MUST_CHECK;
/* Every region of guest memory, by guest-physical address and this process's mapping. */
int vhost_set_mem_table(int fd, const struct guest_mem *mem) MUST_CHECK;
int vhost_set_queue(int fd, unsigned index, const struct vhost_queue *q) MUST_CHECK;
/* Where the device got to in queue index (after it stopped). */
int vhost_get_vring_base(int fd, unsigned index, uint16_t *base) MUST_CHECK;

/* vhost-vsock: the guest's context id (the kernel refuses 0-2, U32_MAX and one in use). */
int vhost_vsock_set_guest_cid(int fd, uint64_t cid) MUST_CHECK;
int vhost_vsock_set_running(int fd, bool running) MUST_CHECK;

/* Opens a vhost device node read-write; -errno (-ENOENT: no such module loaded). */
int vhost_open(const char *path, int *fd) MUST_CHECK;
/*
 * Vring `index` of the device from a struct virtq: q's size, its rings (as mapped here), the
 * index where the kernel starts (q's next available entry), the kick fd the kernel waits on
 * and the call fd it signals.
 */
int vhost_set_vring(int fd, unsigned index, const struct virtq *q, int kick, int call) MUST_CHECK;
/* Stops vring `index` (the kernel then lets go of it and its eventfds); its next available
 * entry in *base. */
int vhost_stop_vring(int fd, unsigned index, uint16_t *base) MUST_CHECK;
/* vhost-net: the TAP fd vring `index` moves frames through (-1 detaches it). */
int vhost_net_set_backend(int fd, unsigned index, int tap_fd) MUST_CHECK;

#endif
