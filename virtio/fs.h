/*
 * virtio-fs (virtio 1.2, section 5.11): a host directory shared with the guest, which mounts
 * it by its tag (`mount -t virtiofs TAG DIR`, or as its root with rootfstype=virtiofs
 * root=TAG). The device has a high-priority queue (FORGET) and request queues that carry FUSE
 * requests, answered by the server of virtio/fs_server.h.
 *
 * Sandboxed, the device's process has the shared directory itself as its root, a user
 * namespace with the uid/gid maps of the option (crosvm's: by default the VMM's own ids are
 * the guest's root), the file capabilities it needs within that namespace only, a proc that
 * shows only itself, and room for its inodes' descriptors.
 */
#ifndef CROSVM_VIRTIO_FS_H
#define CROSVM_VIRTIO_FS_H

#include "core/util.h"
#include "virtio/fs_server.h"

struct logger;
struct virtio_dev_ops;

#define VIRTIO_FS_TAG_MAX	  36 /* bytes of the configuration's tag field */
#define VIRTIO_FS_QUEUE_SIZE	  1024
#define VIRTIO_FS_REQUEST_QUEUES  1 /* as crosvm; Linux 6.1 uses only the first anyway */
#define VIRTIO_FS_DEFAULT_TIMEOUT 5 /* seconds, crosvm's default */
/* The most inodes and open handles one device keeps (each is a descriptor). */
#define VIRTIO_FS_MAX_INODES  (1u << 17)
#define VIRTIO_FS_MAX_HANDLES (1u << 14)

/* One --shared-dir of type fs. Strings are owned by whoever owns the struct. */
struct fs_config {
	char *path; /* the shared directory */
	char *tag;  /* 1..36 bytes */
	struct fs_server_config server;
	/*
	 * The user namespace's maps, as /proc/PID/uid_map takes them ("inner outer count"
	 * lines); NULL: crosvm's default, the VMM's own uid (gid) as the guest's 0.
	 */
	char *uid_map, *gid_map;
};

/* A new device for cfg and its ops table, to hand to virtio_pci_create (which then owns it). */
int virtio_fs_create(const struct fs_config *cfg, const struct logger *lg,
		     const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;

#endif
