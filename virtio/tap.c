#include "virtio/tap.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "core/log.h"

#define TUN_PATH "/dev/net/tun"

/* Offload sets to try, largest first: kernels differ in what TUNSETOFFLOAD takes. */
static const unsigned offload_sets[] = {
	TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO,
	TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN,
	TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
	TUN_F_CSUM,
};

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

/* The ioctls whose argument is a value, not a pointer (TUNSETOFFLOAD). */
static int xioctl_val(int fd, unsigned long req, unsigned long val)
{
	return ioctl(fd, req, val) < 0 ? -errno : 0;
}

static void tap_init(struct tap *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		t->fds[i] = -1;
	t->mtu = 1500;
}

void tap_close(struct tap *t)
{
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		close_fd(&t->fds[i]);
	t->nr_fds = 0;
}

/* An AF_INET datagram socket: the handle for the interface ioctls (SIOC*). */
static int inet_socket(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	return s < 0 ? -errno : s;
}

static void read_mtu(struct tap *t, const struct logger *lg)
{
	struct ifreq ifr = {0};
	int s = inet_socket();

	if (s < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", t->ifname);
	/* A TAP handed over from another network namespace is not visible here: keep 1500. */
	if (xioctl(s, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu >= 68 && ifr.ifr_mtu <= 65535)
		t->mtu = (uint16_t)ifr.ifr_mtu;
	else
		log_debug(lg, "TAP %s: cannot read its MTU, assuming 1500", t->ifname);
	close(s);
}

/* vnet header size and the offloads the TAP takes; offloads then start off. */
static int setup_vnet(struct tap *t, const struct logger *lg)
{
	int sz = TAP_VNET_HDR_LEN;
	int ret;

	if (!t->vnet_hdr)
		return 0;
	for (unsigned i = 0; i < t->nr_fds; i++) {
		ret = xioctl(t->fds[i], TUNSETVNETHDRSZ, &sz);
		if (ret < 0) {
			log_err(lg, "TAP %s: cannot set the vnet header size: %s", t->ifname,
				strerror(-ret));
			return ret;
		}
	}
	for (unsigned i = 0; i < ARRAY_SIZE(offload_sets); i++) {
		if (xioctl_val(t->fds[0], TUNSETOFFLOAD, offload_sets[i]) == 0) {
			t->offloads = offload_sets[i];
			break;
		}
	}
	/* Until the guest says what it takes, the TAP hands us whole, checksummed frames. */
	return tap_set_offload(t, 0);
}

static const char *open_hint(int err)
{
	switch (err) {
	case EPERM:
	case EACCES:
		return " (creating a TAP, or opening one this user does not own, needs "
		       "CAP_NET_ADMIN)";
	case EBUSY:
		return " (another process has it open; a single-queue TAP has one user)";
	case EINVAL:
		return " (it exists with a different IFF_MULTI_QUEUE setting than vq-pairs asks "
		       "for, or is not a TAP)";
	default:
		return "";
	}
}

/* One queue: TUNSETIFF on a fresh /dev/net/tun fd. name may be a pattern ("vmtap%d"). */
static int open_queue(struct tap *t, const char *name, bool multi, const struct logger *lg)
{
	struct ifreq ifr = {0};
	int fd, ret;

	fd = open(TUN_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err(lg, "cannot open %s: %s", TUN_PATH, strerror(-ret));
		return ret;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | (multi ? IFF_MULTI_QUEUE : 0);
	ret = xioctl(fd, TUNSETIFF, &ifr);
	if (ret < 0) {
		log_err(lg, "cannot open TAP %s: %s%s", name, strerror(-ret), open_hint(-ret));
		close(fd);
		return ret;
	}
	/* The kernel fills in the name it chose for a pattern. */
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	t->attached[t->nr_fds] = true;
	t->fds[t->nr_fds++] = fd;
	return 0;
}

static int open_queues(struct tap *t, const char *name, unsigned queues, const struct logger *lg)
{
	int ret;

	if (!queues || queues > TAP_MAX_QUEUES)
		return -EINVAL;
	tap_init(t);
	t->vnet_hdr = true;
	t->multi_queue = queues > 1;
	ret = open_queue(t, name, t->multi_queue, lg);
	/* The other queues attach to the interface the first one named (or created). */
	for (unsigned i = 1; i < queues && ret == 0; i++)
		ret = open_queue(t, t->ifname, true, lg);
	if (ret == 0)
		ret = setup_vnet(t, lg);
	if (ret < 0)
		tap_close(t);
	return ret;
}

int tap_open_name(struct tap *t, const char *name, unsigned queues, const struct logger *lg)
{
	int ret;

	if (!*name || strlen(name) >= IFNAMSIZ || strchr(name, '%')) {
		log_err(lg, "tap-name: '%s' is not a valid interface name", name);
		return -EINVAL;
	}
	ret = open_queues(t, name, queues, lg);
	if (ret == 0)
		read_mtu(t, lg);
	return ret;
}

int tap_open_fd(struct tap *t, int fd, const struct logger *lg)
{
	struct ifreq ifr = {0};
	int dup, fl, ret;

	tap_init(t);
	ret = xioctl(fd, TUNGETIFF, &ifr);
	if (ret < 0) {
		log_err(lg, "tap-fd=%d: not a TAP: %s", fd, strerror(-ret));
		return ret == -EBADF ? -EBADF : -EINVAL;
	}
	if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_NO_PI)) {
		log_err(lg, "tap-fd=%d: %s is not a TAP with IFF_NO_PI (flags 0x%x)", fd,
			ifr.ifr_name, (unsigned)ifr.ifr_flags);
		return -EINVAL;
	}
	dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup < 0)
		return -errno;
	fl = fcntl(dup, F_GETFL);
	if (fl < 0 || fcntl(dup, F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		close(dup);
		return ret;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", ifr.ifr_name);
	t->fds[0] = dup;
	t->nr_fds = 1;
	t->attached[0] = true;
	t->vnet_hdr = ifr.ifr_flags & IFF_VNET_HDR;
	/* One fd is one queue, whatever the interface has. */
	t->multi_queue = false;
	ret = setup_vnet(t, lg);
	if (ret < 0) {
		tap_close(t);
		return ret;
	}
	read_mtu(t, lg);
	return 0;
}

static void set_addr(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = addr};

	memcpy(sa, &sin, sizeof(sin));
}

/* One interface ioctl on the new TAP, with crosvm's error when a capability is missing. */
static int if_ioctl(struct tap *t, int s, unsigned long req, struct ifreq *ifr, const char *what,
		    const struct logger *lg)
{
	int ret;

	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", t->ifname);
	ret = xioctl(s, req, ifr);
	if (ret < 0)
		log_err(lg, "TAP %s: cannot set its %s: %s%s", t->ifname, what, strerror(-ret),
			ret == -EPERM ? " (configuring a TAP needs CAP_NET_ADMIN)" : "");
	return ret;
}

int tap_create(struct tap *t, uint32_t ip, uint32_t mask, const uint8_t mac[6], unsigned queues,
	       const struct logger *lg)
{
	struct ifreq ifr;
	int s, ret;

	ret = open_queues(t, "vmtap%d", queues, lg);
	if (ret < 0)
		return ret;
	s = inet_socket();
	if (s < 0) {
		ret = s;
		log_err(lg, "TAP %s: cannot create a socket to configure it: %s", t->ifname,
			strerror(-ret));
		goto err;
	}
	memset(&ifr, 0, sizeof(ifr));
	set_addr(&ifr.ifr_addr, ip);
	ret = if_ioctl(t, s, SIOCSIFADDR, &ifr, "address", lg);
	if (ret == 0) {
		memset(&ifr, 0, sizeof(ifr));
		set_addr(&ifr.ifr_netmask, mask);
		ret = if_ioctl(t, s, SIOCSIFNETMASK, &ifr, "netmask", lg);
	}
	if (ret == 0) {
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
		memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
		ret = if_ioctl(t, s, SIOCSIFHWADDR, &ifr, "MAC address", lg);
	}
	if (ret == 0) {
		memset(&ifr, 0, sizeof(ifr));
		ret = if_ioctl(t, s, SIOCGIFFLAGS, &ifr, "flags", lg);
	}
	if (ret == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		ret = if_ioctl(t, s, SIOCSIFFLAGS, &ifr, "state to up", lg);
	}
	close(s);
	if (ret < 0)
		goto err;
	read_mtu(t, lg);
	return 0;
err:
	tap_close(t);
	return ret;
}

int tap_set_offload(struct tap *t, unsigned flags)
{
	if (!t->vnet_hdr)
		return flags ? -EOPNOTSUPP : 0;
	if (flags & ~t->offloads)
		return -EOPNOTSUPP;
	/* The offloads belong to the interface: setting them on one queue sets them for all. */
	return xioctl_val(t->fds[0], TUNSETOFFLOAD, flags);
}

int tap_enable_queue(struct tap *t, unsigned q, bool on)
{
	struct ifreq ifr = {0};
	int ret;

	if (q >= t->nr_fds)
		return -EINVAL;
	if (!t->multi_queue || t->attached[q] == on)
		return 0;
	ifr.ifr_flags = on ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	ret = xioctl(t->fds[q], TUNSETQUEUE, &ifr);
	if (ret == 0)
		t->attached[q] = on;
	return ret;
}
