/*
 * virtio-vsock (virtio 1.2, section 5.10): host-guest stream sockets. Two devices with the
 * same guest interface (queues rx, tx, event; the guest's CID in the configuration):
 *
 *  - vhost (virtio/vsock_vhost.c), crosvm's: the kernel's vhost-vsock moves the data, host
 *    programs use AF_VSOCK sockets (CID 2 is the host, the guest is cid);
 *  - user space (virtio/vsock.c with virtio/vsock_mux.c), Firecracker's: no kernel module,
 *    guest connections become UNIX stream sockets under uds_path (virtio/vsock_mux.h).
 *
 * Both are sandboxed; the user-space one sees only uds_path's directory in its jail.
 */
#ifndef CROSVM_VIRTIO_VSOCK_H
#define CROSVM_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct logger;
struct virtio_dev_ops;

#define VSOCK_QUEUE_SIZE    256
#define VSOCK_NR_QUEUES	    3 /* rx, tx, event */
#define VSOCK_Q_RX	    0
#define VSOCK_Q_TX	    1
#define VSOCK_Q_EVENT	    2
#define VSOCK_CONFIG_SIZE   8 /* le64 guest_cid */
#define VSOCK_VHOST_DEFAULT "/dev/vhost-vsock"

/*
 * Whether cid can be a guest's: 0, 1 and 2 (hypervisor, local, host) and U32_MAX (any) are
 * reserved, and the spec keeps the upper 32 bits zero. NULL if it can, else why not.
 */
const char *vsock_cid_invalid(uint64_t cid);

/* The user-space device; the UNIX socket uds_path is created (a stale one replaced) now. */
int virtio_vsock_create(uint64_t cid, const char *uds_path, const struct logger *lg,
			const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;
/* The user-space device's open connections (its `dev`), for tests and logs. */
unsigned virtio_vsock_nr_conns(void *dev);

/*
 * The vhost-backed device on the vhost-vsock node `device` (NULL: VSOCK_VHOST_DEFAULT). The
 * CID is claimed now, so a CID another VM has is refused here with the kernel's EADDRINUSE.
 */
int virtio_vhost_vsock_create(uint64_t cid, const char *device, const struct logger *lg,
			      const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;

#endif
