/*
 * virtio-net (virtio 1.2, 5.1) over a host back end: a TAP interface (crosvm's tap-name=,
 * tap-fd=, host-ip=), moved by this process or by the kernel's vhost-net, or user-mode
 * networking through libslirp (`--net user`, our own: no privileges needed).
 *
 * The device offers its MAC address when given one, the link status (always up), the MTU of
 * its TAP, mergeable receive buffers, the checksum and segmentation offloads its TAP accepts
 * (TUNSETOFFLOAD), several queue pairs (IFF_MULTI_QUEUE) and a control queue where they
 * need one (queue pairs chosen by the driver, offloads it changes at run time).
 */
#ifndef CROSVM_VIRTIO_NET_H
#define CROSVM_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct logger;
struct virtio_dev_ops;

#define NET_MAX_PAIRS	  8
#define NET_MAX_HOSTFWD	  8
#define NET_QUEUE_SIZE	  256
#define NET_VHOST_DEFAULT "/dev/vhost-net"
/* The user-mode network (libslirp's usual one) and the guest's DHCP address in it. */
#define NET_USER_NETWORK   "10.0.2.0"
#define NET_USER_HOST	   "10.0.2.2"
#define NET_USER_DNS	   "10.0.2.3"
#define NET_USER_GUEST	   "10.0.2.15"
#define NET_USER_PREFIXLEN 24

enum net_mode {
	NET_TAP_NAME = 1, /* tap-name=: open (or create) the named TAP */
	NET_TAP_FD,	  /* tap-fd=: an inherited TAP fd */
	NET_TAP_CREATE,	  /* host-ip=, netmask=, mac=: create and configure a TAP */
	NET_USER,	  /* user: libslirp in the device process */
	/*
	 * Not on the command line: a packet fd given by the caller (tap_fd; a SOCK_SEQPACKET or
	 * datagram socket, one frame per message, with the virtio header when packet_vnet_hdr),
	 * duplicated; for the unit tests, the fuzz target and the back-end benchmark.
	 */
	NET_PACKET_FD,
};

struct net_hostfwd {
	uint16_t host_port;  /* on 127.0.0.1 */
	uint16_t guest_port; /* on the guest's DHCP address */
};

struct net_config {
	enum net_mode mode;
	char *tap_name;	  /* NET_TAP_NAME */
	int tap_fd;	  /* NET_TAP_FD */
	uint32_t host_ip; /* NET_TAP_CREATE, network byte order */
	uint32_t netmask; /* NET_TAP_CREATE, network byte order */
	uint8_t mac[6];	  /* the guest's (tap-name, tap-fd) or the TAP's (host-ip) */
	bool has_mac;
	bool vhost;	      /* the kernel's vhost-net moves the packets */
	char *vhost_device;   /* NULL: NET_VHOST_DEFAULT */
	unsigned vq_pairs;    /* 1..NET_MAX_PAIRS */
	bool no_mrg_rxbuf;    /* mrg_rxbuf=false: do not offer VIRTIO_NET_F_MRG_RXBUF */
	bool dns;	      /* NET_USER: answer DNS at NET_USER_DNS by forwarding it */
	bool packet_vnet_hdr; /* NET_PACKET_FD */
	struct net_hostfwd fwd[NET_MAX_HOSTFWD]; /* NET_USER */
	unsigned nr_fwd;
};

/*
 * Opens the back end the config names (logging why not, by option and capability) and
 * creates the device. `name` labels its log lines ("virtio-net0").
 */
int virtio_net_create(const struct net_config *cfg, const char *name, const struct logger *lg,
		      const struct virtio_dev_ops **ops, void **dev) MUST_CHECK;

#endif
