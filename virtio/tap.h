/*
 * A Linux TAP interface as virtio-net's back end: opened by name, taken from an inherited fd,
 * or created and given an address (crosvm's tap-name=, tap-fd=, host-ip=). Each queue of a
 * multiqueue TAP (IFF_MULTI_QUEUE) is its own fd, one per virtio-net queue pair. With
 * IFF_VNET_HDR every frame carries a 12-byte virtio_net_hdr_v1 (TUNSETVNETHDRSZ), which is
 * what lets checksum and segmentation offloads cross between guest and host; a TAP without
 * it moves plain Ethernet frames.
 *
 * This file and virtio/vhost.c are the only ones outside core/kvm.c that make ioctls:
 * scripts/check-layers holds each kernel interface to its one file.
 */
#ifndef CROSVM_VIRTIO_TAP_H
#define CROSVM_VIRTIO_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct logger;

#define TAP_MAX_QUEUES 8
/* The virtio 1.x header every frame carries on a vnet-header TAP. */
#define TAP_VNET_HDR_LEN 12

struct tap {
	char ifname[IFNAMSIZ];
	int fds[TAP_MAX_QUEUES];
	unsigned nr_fds;
	bool vnet_hdr;	   /* frames carry TAP_VNET_HDR_LEN bytes of virtio_net_hdr_v1 */
	bool multi_queue;  /* IFF_MULTI_QUEUE: queues can be attached and detached */
	unsigned offloads; /* TUN_F_* bits the TAP accepts (TUNSETOFFLOAD), probed */
	uint16_t mtu;	   /* the interface's MTU (1500 if it cannot be read) */
	bool attached[TAP_MAX_QUEUES];
};

/*
 * Opens (creating it when missing, which needs CAP_NET_ADMIN) the TAP called name with
 * `queues` queues (IFF_MULTI_QUEUE when more than one), vnet headers on.
 */
int tap_open_name(struct tap *t, const char *name, unsigned queues,
		  const struct logger *lg) MUST_CHECK;
/*
 * Takes a TAP fd the caller inherited (checked to be a TAP with IFF_NO_PI); keeps a duplicate
 * and leaves fd as it was. One queue; vnet headers only if the TAP was set up with them.
 */
int tap_open_fd(struct tap *t, int fd, const struct logger *lg) MUST_CHECK;
/*
 * Creates a new TAP (vmtapN) with `queues` queues, gives it the IPv4 address ip with netmask
 * mask (network byte order) and the Ethernet address mac, and brings it up: crosvm's
 * host-ip=/netmask=/mac=. Needs CAP_NET_ADMIN, and says so when it is missing.
 */
int tap_create(struct tap *t, uint32_t ip, uint32_t mask, const uint8_t mac[6], unsigned queues,
	       const struct logger *lg) MUST_CHECK;
/* TUNSETOFFLOAD: which offloaded frames (TUN_F_*) the TAP may hand us. */
int tap_set_offload(struct tap *t, unsigned flags) MUST_CHECK;
/*
 * Attaches or detaches queue q (TUNSETQUEUE) so the kernel steers frames only to the queues
 * the guest uses; a no-op on a single-queue TAP or when q is already so.
 */
int tap_enable_queue(struct tap *t, unsigned q, bool on) MUST_CHECK;
void tap_close(struct tap *t);

#endif
