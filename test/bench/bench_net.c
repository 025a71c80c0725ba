/*
 * virtio-net's user-space back end against a raw TAP read/write loop, on this machine, with
 * no guest: the host-side figure of scripts/bench-net.
 *
 * Everything happens in a network namespace of its own (unshare(CLONE_NEWNET) first thing:
 * no frame can leave it), on TAPs made alike (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, the same
 * offloads): DEV_TAP carries the device, RAW_TAP the raw loop, SBX_TAP (--sandboxed) a second
 * device running in its jailed process exactly as the VMM runs it (sandbox_jail_device, the
 * built-in seccomp policy), its registers reached through the proxy.
 *
 * The device is built as the VMM builds it for `--net tap-name=`: virtio_net_create behind
 * the virtio-pci transport, started on an event loop thread, kicked through the queues'
 * ioeventfds, interrupting through their MSI-X eventfds. This thread plays the Linux driver
 * with virtq_driver (EVENT_IDX, mergeable receive buffers, the checksum and TSO offloads the
 * TAP takes): it keeps the transmit ring full of frames and the receive ring full of 4 KiB
 * buffers, re-arming used_event and sleeping on the interrupt eventfd as Linux does.
 *
 * Transmit: a frame the device (or the raw loop, write() of the same bytes with the same
 * virtio header) writes to its TAP enters the namespace's stack, which counts and drops it
 * (addressed to another host's MAC, PACKET_OTHERHOST); the kernel's receive counters are
 * printed next to what was sent, to show every frame got there. Receive: a thread floods the TAP
 * through a packet socket bound to it (PACKET_VNET_HDR, so a 64 KiB TCP frame crosses whole when
 * the TAP takes TSO); the figure is what the reader got: the driver's used receive buffers, or the
 * raw loop's read()s. The flood is the same for both; what the TAP's queue cannot hold it drops.
 *
 * Besides frames/s and Gbit/s, the CPU time per frame of the thread that moves the frames:
 * the device's event loop (the driver's thread, the guest's share, excluded) or the raw loop.
 * With --sandboxed the device process's whole CPU time is counted. Rounds alternate the variants;
 * medians are reported. The machine's other work comes and goes, so compare figures of one run
 * only. No thresholds: a report.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "core/device.h"
#include "core/guest_mem.h"
#include "core/log.h"
#include "core/util.h"
#include "test/bench/bench_jail.h"
#include "test/unit/virtio_env.h"
#include "test/unit/virtq_driver.h"
#include "virtio/net.h"
#include "virtio/tap.h"
#include "virtio/virtio.h"

#define RAM_SIZE   (64ULL << 20)
#define RING_GPA   0x10000ULL
#define RX_GPA	   0x100000ULL /* QSIZE receive buffers of RX_BUF_LEN */
#define RX_BUF_LEN 4096u
#define TX_GPA	   0x200000ULL /* QSIZE transmit slots of TX_SLOT: header, then the frame */
#define TX_SLOT	   0x11000ULL
#define QSIZE	   256
#define RXQ	   0
#define TXQ	   1
#define HDR_LEN	   12 /* virtio_net_hdr_v1 */
#define PKT_HDR	   10 /* virtio_net_hdr, what PACKET_VNET_HDR takes */
#define MAX_FRAME  65014u
#define MAX_ROUNDS 15
#define STALL_MS   5000
#define IDLE_MS	   50
#define BIT(n)	   (1ULL << (n))
#define DEV_TAP	   "nbdev0"
#define RAW_TAP	   "nbraw0"
#define SBX_TAP	   "nbsbx0"

_Static_assert(RX_GPA + (uint64_t)QSIZE * RX_BUF_LEN <= TX_GPA, "receive buffers");
_Static_assert(TX_GPA + (uint64_t)QSIZE * TX_SLOT <= RAM_SIZE, "transmit slots");
_Static_assert(HDR_LEN + MAX_FRAME <= TX_SLOT, "a frame fits its slot");

struct options {
	const char *only;
	double seconds;
	unsigned rounds;
	bool sandboxed;
};

struct pattern {
	const char *name;
	uint32_t len; /* the Ethernet frame, without the virtio header */
	bool tso;     /* one TCP frame the TAP's user segments (TSO), else a UDP frame */
};

struct result {
	uint64_t frames, bytes;
	uint64_t offered; /* receive: frames the flood put into the TAP */
	double secs;
	double cpu; /* CPU seconds of the thread that moves the frames: the device's loop, or
		     * the raw loop's */
};

/* Medians of one variant's rounds. */
struct summary {
	double fps, gbps, cpu_us, offered_fps;
};

/* The device in this process, and (--sandboxed) in its jailed process as the VMM runs it. */
enum { PLAIN, SBX, NR_SIDES };
enum { DEV_TX, SBX_TX, RAW_TX, DEV_RX, SBX_RX, RAW_RX, NR_VARIANTS };

#define NR_PATTERNS 3

struct injector {
	pthread_t thread;
	atomic_bool run;
	int sock;	    /* packet socket bound to the TAP */
	const uint8_t *pkt; /* PKT_HDR header, then the frame */
	size_t len;
	uint64_t sent;
};

/* One device, its TAP and the driver state this thread keeps for it. */
struct side {
	const char *label, *tap;
	bool sandboxed;
	struct virtio_env env; /* its memory, transport, interrupts and queue drivers */
	pthread_t loop;	       /* runs the unsandboxed device's loop */
	bool loop_running;
	pid_t pid;		    /* its device process, when sandboxed */
	int sock;		    /* packet socket bound to its TAP */
	uint16_t slot_of[2][QSIZE]; /* per queue: head -> buffer slot */
	unsigned rx_left;	    /* buffers still due of the frame being received */
	uint64_t sent;		    /* frames written to the TAP, for the sink check */
};

struct bench {
	struct options o;
	struct logger lg;
	struct side side[NR_SIDES];
	struct tap raw;
	int raw_sock;
	uint64_t raw_sent;
	struct bench_jail jail;		    /* for the sandboxed device */
	uint8_t frame[PKT_HDR + MAX_FRAME]; /* for the injector */
	uint8_t txbuf[HDR_LEN + MAX_FRAME]; /* copied into every transmit slot */
	uint8_t rbuf[HDR_LEN + 65536 + 64]; /* the raw reader's */
};

static double clock_secs(clockid_t c)
{
	struct timespec t;

	if (clock_gettime(c, &t) < 0)
		return 0;
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_secs(CLOCK_MONOTONIC);
}

/*
 * CPU seconds of the device's event loop thread, which does all of its datapath work; of its
 * whole process when sandboxed.
 */
static double side_cpu(const struct side *s)
{
	clockid_t c;

	if (s->sandboxed)
		return clock_getcpuclockid(s->pid, &c) == 0 ? clock_secs(c) : 0;
	return pthread_getcpuclockid(s->loop, &c) == 0 ? clock_secs(c) : 0;
}

/* ---- the namespace and its interfaces ---- */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w;

	if (fd < 0)
		return -errno;
	w = write(fd, text, strlen(text));
	close(fd);
	return w == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* Brings an interface up through rtnetlink (RTM_NEWLINK with IFF_UP) and waits for the ack. */
static int link_up(const char *ifname)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = {.nlmsg_len = sizeof(req),
		       .nlmsg_type = RTM_NEWLINK,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
		       .nlmsg_seq = 1},
		.ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP},
	};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	union {
		struct nlmsghdr nh;
		char buf[512];
	} ack;
	int s, ret = 0;
	ssize_t r;

	req.ifi.ifi_index = (int)if_nametoindex(ifname);
	if (!req.ifi.ifi_index)
		return -ENODEV;
	s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -errno;
	if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		ret = -errno;
		goto out;
	}
	r = recv(s, &ack, sizeof(ack), 0);
	if (r < 0)
		ret = -errno;
	else if ((size_t)r < sizeof(struct nlmsghdr) + sizeof(struct nlmsgerr) ||
		 ack.nh.nlmsg_type != NLMSG_ERROR)
		ret = -EPROTO;
	else
		ret = ((struct nlmsgerr *)NLMSG_DATA(&ack.nh))->error;
out:
	close(s);
	return ret;
}

/* A packet socket bound to ifname that sends frames led by a virtio_net_hdr. */
static int packet_socket(const char *ifname)
{
	struct sockaddr_ll sll = {.sll_family = AF_PACKET};
	int one = 1, s, ret;

	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (!sll.sll_ifindex)
		return -ENODEV;
	/* Protocol 0: it only sends, so it takes no copy of the frames the TAP receives. */
	s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		ret = -errno;
		close(s);
		return ret;
	}
	return s;
}

/* The frames the kernel received on ifname so far (/proc/self/net/dev: this namespace's). */
static int64_t kernel_rx_frames(const char *ifname)
{
	FILE *f = fopen("/proc/self/net/dev", "r");
	char line[512];
	int64_t frames = -1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *name = line, *end = NULL;
		unsigned long long pkts;

		if (!colon)
			continue;
		*colon = 0;
		while (*name == ' ')
			name++;
		if (strcmp(name, ifname) != 0)
			continue;
		/* "bytes packets ...": skip the bytes. */
		(void)strtoull(colon + 1, &end, 10);
		pkts = strtoull(end, &end, 10);
		if (end && (*end == ' ' || *end == '\n'))
			frames = (int64_t)pkts;
	}
	fclose(f);
	return frames;
}

/* ---- frames ---- */

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put_be(uint8_t *p, uint32_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/*
 * Writes the virtio_net_hdr_v1 (HDR_LEN bytes) and the frame of pattern p at out: Ethernet to
 * a MAC no interface here has (the stack drops it as another host's), IPv4 10.99.0.2 ->
 * 10.99.0.1, then UDP with a zero payload, or for TSO a TCP segment of 64 KiB the TAP's user
 * is asked to cut into 1448-byte segments, its checksum left to it (NEEDS_CSUM).
 */
static void build_frame(uint8_t *out, const struct pattern *p)
{
	static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
	uint8_t *h = out, *eth = out + HDR_LEN, *ip = eth + 14, *l4 = ip + 20;
	uint32_t ip_len = p->len - 14, pseudo;

	memset(out, 0, HDR_LEN + p->len);
	memcpy(eth, macs, sizeof(macs));
	put_be(eth + 12, ETH_P_IP, 2);
	ip[0] = 0x45;
	put_be(ip + 2, ip_len, 2);
	put_be(ip + 6, 0x4000, 2); /* don't fragment */
	ip[8] = 64;
	ip[9] = p->tso ? IPPROTO_TCP : IPPROTO_UDP;
	put_be(ip + 12, 0x0a630002, 4);
	put_be(ip + 16, 0x0a630001, 4);
	put_be(ip + 10, ip_checksum(ip, 20), 2);
	put_be(l4, 40000, 2);
	put_be(l4 + 2, 9, 2); /* discard */
	if (!p->tso) {
		put_be(l4 + 4, ip_len - 20, 2); /* checksum 0: none (IPv4) */
		return;
	}
	put_be(l4 + 4, 1, 4);	   /* seq */
	put_be(l4 + 8, 1, 4);	   /* ack */
	l4[12] = 5 << 4;	   /* data offset */
	l4[13] = 0x18;		   /* PSH | ACK */
	put_be(l4 + 14, 65535, 2); /* window */
	/* The pseudo-header's sum, which NEEDS_CSUM leaves in the field for the segmenter. */
	pseudo = 0x0a63 + 0x0002 + 0x0a63 + 0x0001 + IPPROTO_TCP + (ip_len - 20);
	while (pseudo >> 16)
		pseudo = (pseudo & 0xffff) + (pseudo >> 16);
	put_be(l4 + 16, pseudo, 2);
	h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h[1] = VIRTIO_NET_HDR_GSO_TCPV4;
	put_le(h + 2, 14 + 20 + 20, 2); /* hdr_len */
	put_le(h + 4, 1448, 2);		/* gso_size */
	put_le(h + 6, 14 + 20, 2);	/* csum_start */
	put_le(h + 8, 16, 2);		/* csum_offset */
}

/* ---- the injector: floods a TAP through its packet socket ---- */

static void *inject_thread(void *arg)
{
	struct injector *in = arg;

	while (atomic_load_explicit(&in->run, memory_order_relaxed))
		if (send(in->sock, in->pkt, in->len, 0) == (ssize_t)in->len)
			in->sent++;
	return NULL;
}

static int inject_start(struct injector *in, int sock, const uint8_t *pkt, size_t len)
{
	in->sock = sock;
	in->pkt = pkt;
	in->len = len;
	in->sent = 0;
	atomic_store(&in->run, true);
	return -pthread_create(&in->thread, NULL, inject_thread, in);
}

static void inject_stop(struct injector *in)
{
	atomic_store(&in->run, false);
	pthread_join(in->thread, NULL);
}

/* ---- the device ---- */

static void *loop_thread(void *arg)
{
	struct side *s = arg;

	event_base_dispatch(s->env.eb);
	return NULL;
}

static int rx_post(struct side *s, unsigned slot)
{
	struct virtq_buf buf = {
		.gpa = RX_GPA + (uint64_t)slot * RX_BUF_LEN, .len = RX_BUF_LEN, .writable = true};
	uint16_t head;
	int ret = virtq_driver_add(&s->env.drv[RXQ], &buf, 1, &head);

	if (!ret)
		s->slot_of[RXQ][head] = (uint16_t)slot;
	return ret;
}

/* One descriptor per frame, its header in front, as Linux sends a linear skb. */
static int tx_post(struct side *s, unsigned slot, uint32_t len)
{
	struct virtq_buf buf = {.gpa = TX_GPA + (uint64_t)slot * TX_SLOT, .len = HDR_LEN + len};
	uint16_t head;
	int ret = virtq_driver_add(&s->env.drv[TXQ], &buf, 1, &head);

	if (!ret)
		s->slot_of[TXQ][head] = (uint16_t)slot;
	return ret;
}

/*
 * What a Linux driver on this TAP negotiates of what the device offers: mergeable receive
 * buffers, and the checksum and segmentation offloads both ways.
 */
static uint64_t wanted_features(void)
{
	static const unsigned bits[] = {
		VIRTIO_NET_F_MRG_RXBUF,	 VIRTIO_NET_F_MAC,	  VIRTIO_NET_F_MTU,
		VIRTIO_NET_F_STATUS,	 VIRTIO_NET_F_CSUM,	  VIRTIO_NET_F_HOST_TSO4,
		VIRTIO_NET_F_HOST_TSO6,	 VIRTIO_NET_F_HOST_ECN,	  VIRTIO_NET_F_GUEST_CSUM,
		VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_ECN,
	};
	uint64_t f = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bits); i++)
		f |= BIT(bits[i]);
	return f;
}

/*
 * Creates one device on its TAP, as the VMM does. A sandboxed one moves into its jailed
 * process here, which must happen before this process has any other thread.
 */
static int side_create(struct bench *b, struct side *s, uint64_t *features)
{
	const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};
	struct net_config cfg = {.mode = NET_TAP_NAME,
				 .tap_name = (char *)s->tap,
				 .vq_pairs = 1,
				 .has_mac = true,
				 .mac = {0x52, 0x54, 0x00, 0x0e, 0x00, 0x02}};
	const struct virtio_dev_ops *ops;
	void *dev;
	int ret;

	ret = virtio_env_create(&s->env, &(struct virtio_env_params){.ram = ram,
								     .nr_ram = 1,
								     .log_level = LOG_LVL_WARN,
								     .queue_size = QSIZE,
								     .ring_gpa = RING_GPA});
	if (ret)
		return ret;
	ret = virtio_net_create(&cfg, s->label, &s->env.lg, &ops, &dev);
	if (ret)
		return ret;
	/* The transport offers VERSION_1 and EVENT_IDX; the device the rest. */
	*features = (ops->features(dev) & wanted_features()) | BIT(VIRTIO_F_VERSION_1) |
		    BIT(VIRTIO_RING_F_EVENT_IDX);
	ret = virtio_env_attach(&s->env, ops, dev, s->label);
	if (ret) {
		ops->destroy(dev);
		return ret;
	}
	if (s->sandboxed) {
		/* Nothing turns its proxy's loop: a death of its process shows as a stall. */
		ret = bench_jail_device(&b->jail, s->env.dev, &s->env.lg, &s->pid);
	} else {
		ret = virtio_env_start(&s->env, true);
	}
	if (!ret)
		ret = virtio_env_negotiate(&s->env, *features);
	if (!ret)
		ret = virtio_env_setup_queue(&s->env, RXQ);
	if (!ret)
		ret = virtio_env_setup_queue(&s->env, TXQ);
	if (!ret)
		ret = virtio_env_driver_ok(&s->env);
	for (unsigned slot = 0; slot < QSIZE && !ret; slot++)
		ret = rx_post(s, slot);
	if (ret)
		return ret;
	(void)virtq_driver_kick(&s->env.drv[RXQ]);
	if (s->sandboxed)
		return 0;
	ret = -pthread_create(&s->loop, NULL, loop_thread, s);
	if (!ret)
		s->loop_running = true;
	return ret;
}

static void sides_destroy(struct bench *b)
{
	for (unsigned i = 0; i < NR_SIDES; i++)
		if (b->side[i].loop_running) {
			event_base_loopbreak(b->side[i].env.eb);
			pthread_join(b->side[i].loop, NULL);
		}
	/* A device process stops when its proxy closes, and is reaped when it is destroyed. */
	bench_jail_stopping(&b->jail);
	for (unsigned i = 0; i < NR_SIDES; i++) {
		if (b->side[i].env.dev)
			device_stop(b->side[i].env.dev);
		virtio_env_destroy(&b->side[i].env);
		if (b->side[i].sock >= 0)
			close(b->side[i].sock);
	}
	bench_jail_destroy(&b->jail);
}

/* Asks for an interrupt at the next used entry; true if one came meanwhile (Linux's order). */
static bool rearm(struct virtq_driver *d)
{
	virtq_driver_set_used_event(d, d->last_used);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_driver_used_idx(d) != d->last_used;
}

static int wait_irq(struct side *s, unsigned q, int ms)
{
	struct pollfd pf = {.fd = s->env.irq.vector_fds[VIRTIO_ENV_Q_VECTOR(q)], .events = POLLIN};
	uint64_t n;
	int r = poll(&pf, 1, ms);

	if (r < 0)
		return -errno;
	if (r == 1)
		(void)eventfd_drain(pf.fd, &n);
	return r;
}

/* Collects used receive buffers, counting frames and bytes, and posts each buffer again. */
static int rx_reap(struct side *s, struct result *r)
{
	struct virtq_driver *d = &s->env.drv[RXQ];
	uint16_t head;
	uint32_t len;
	int ret;

	while ((ret = virtq_driver_get_used(d, &head, &len)) == 0) {
		unsigned slot = s->slot_of[RXQ][head];

		if (len > RX_BUF_LEN)
			return -EPROTO;
		if (!s->rx_left) {
			uint8_t nb[2];

			/* The first buffer of a frame: its header says how many it took. */
			ret = guest_mem_read(&s->env.mem, RX_GPA + (uint64_t)slot * RX_BUF_LEN + 10,
					     nb, 2);
			if (ret || len < HDR_LEN || !get_le(nb, 2))
				return ret ? ret : -EPROTO;
			s->rx_left = (unsigned)get_le(nb, 2);
			r->frames++;
			len -= HDR_LEN;
		}
		s->rx_left--;
		r->bytes += len;
		ret = rx_post(s, slot);
		if (ret)
			return ret;
	}
	if (ret != -ENOENT)
		return ret;
	(void)virtq_driver_kick(d);
	return 0;
}

/* Takes every frame the device still delivers until it has been quiet for IDLE_MS. */
static int rx_drain(struct side *s)
{
	struct result junk = {0};
	int ret;

	for (;;) {
		ret = rx_reap(s, &junk);
		if (ret)
			return ret;
		if (rearm(&s->env.drv[RXQ]))
			continue;
		ret = wait_irq(s, RXQ, IDLE_MS);
		if (ret <= 0)
			return ret;
	}
}

static int run_dev_rx(struct bench *b, struct side *s, const struct pattern *p, struct result *r)
{
	struct injector in;
	double start, end, cpu;
	int ret = rx_drain(s);

	if (ret)
		return ret;
	s->rx_left = 0;
	*r = (struct result){0};
	ret = inject_start(&in, s->sock, b->frame, PKT_HDR + p->len);
	if (ret)
		return ret;
	cpu = side_cpu(s);
	start = now();
	end = start + b->o.seconds;
	while (now() < end) {
		ret = rx_reap(s, r);
		if (ret)
			break;
		if (rearm(&s->env.drv[RXQ]))
			continue;
		ret = wait_irq(s, RXQ, 100);
		if (ret > 0)
			ret = 0;
		if (ret)
			break;
	}
	r->secs = now() - start;
	r->cpu = side_cpu(s) - cpu;
	inject_stop(&in);
	r->offered = in.sent;
	return ret;
}

/* Keeps the transmit ring full of the frame for the round; every chain comes back first. */
static int run_dev_tx(struct bench *b, struct side *s, const struct pattern *p, struct result *r)
{
	struct virtq_driver *d = &s->env.drv[TXQ];
	unsigned inflight = 0;
	double start, end, cpu;
	int ret = 0;

	*r = (struct result){0};
	for (unsigned slot = 0; slot < QSIZE && !ret; slot++, inflight++)
		ret = tx_post(s, slot, p->len);
	if (ret)
		return ret;
	cpu = side_cpu(s);
	start = now();
	end = start + b->o.seconds;
	(void)virtq_driver_kick(d);
	while (inflight) {
		bool more = now() < end;
		uint16_t head;
		uint32_t len;

		while ((ret = virtq_driver_get_used(d, &head, &len)) == 0) {
			r->frames++;
			inflight--;
			if (more) {
				ret = tx_post(s, s->slot_of[TXQ][head], p->len);
				if (ret)
					return ret;
				inflight++;
			}
		}
		if (ret != -ENOENT)
			return ret;
		if (more)
			(void)virtq_driver_kick(d);
		if (!inflight || rearm(d))
			continue;
		ret = wait_irq(s, TXQ, STALL_MS);
		if (ret == 0) {
			fprintf(stderr, "bench_net: transmit stalled (%u frames in flight)\n",
				inflight);
			return -ETIMEDOUT;
		}
		if (ret < 0)
			return ret;
	}
	r->secs = now() - start;
	r->cpu = side_cpu(s) - cpu;
	r->bytes = r->frames * p->len;
	s->sent += r->frames;
	return 0;
}

/* ---- raw ---- */

static int raw_drain(struct bench *b)
{
	struct pollfd pf = {.fd = b->raw.fds[0], .events = POLLIN};

	for (;;) {
		ssize_t n = read(pf.fd, b->rbuf, sizeof(b->rbuf));

		if (n >= 0)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (poll(&pf, 1, IDLE_MS) <= 0)
			return 0;
	}
}

/* The host's best single reader: read() until EAGAIN, then poll. */
static int run_raw_rx(struct bench *b, const struct pattern *p, struct result *r)
{
	struct pollfd pf = {.fd = b->raw.fds[0], .events = POLLIN};
	struct injector in;
	double start, end, cpu;
	int ret = raw_drain(b);

	if (ret)
		return ret;
	*r = (struct result){0};
	ret = inject_start(&in, b->raw_sock, b->frame, PKT_HDR + p->len);
	if (ret)
		return ret;
	cpu = clock_secs(CLOCK_THREAD_CPUTIME_ID);
	start = now();
	end = start + b->o.seconds;
	while (now() < end) {
		ssize_t n = read(pf.fd, b->rbuf, sizeof(b->rbuf));

		if (n > HDR_LEN) {
			r->frames++;
			r->bytes += (uint64_t)n - HDR_LEN;
		} else if (n < 0 && errno == EAGAIN) {
			(void)poll(&pf, 1, 100);
		} else if (n < 0) {
			ret = -errno;
			break;
		}
	}
	r->secs = now() - start;
	r->cpu = clock_secs(CLOCK_THREAD_CPUTIME_ID) - cpu;
	inject_stop(&in);
	r->offered = in.sent;
	return ret;
}

/*
 * The host's best single writer: write() of the same header and frame, poll when full. Like
 * the driver, it cycles through the QSIZE transmit slots in guest memory, so both read the
 * same memory (a 64 KiB frame's slots span 17 MiB, more than a cache holds).
 */
static int run_raw_tx(struct bench *b, const struct pattern *p, struct result *r)
{
	struct pollfd pf = {.fd = b->raw.fds[0], .events = POLLOUT};
	double start, end, cpu;
	unsigned slot = 0;
	void *hva;
	int ret = guest_mem_ptr(&b->side[PLAIN].env.mem, TX_GPA, QSIZE * TX_SLOT, &hva);

	if (ret)
		return ret;
	*r = (struct result){0};
	cpu = clock_secs(CLOCK_THREAD_CPUTIME_ID);
	start = now();
	end = start + b->o.seconds;
	while (now() < end) {
		ssize_t n = write(pf.fd, (uint8_t *)hva + slot * TX_SLOT, HDR_LEN + p->len);

		if (n == (ssize_t)(HDR_LEN + p->len)) {
			r->frames++;
			slot = (slot + 1) % QSIZE;
		} else if (n < 0 && errno == EAGAIN) {
			(void)poll(&pf, 1, 100);
		} else {
			return n < 0 ? -errno : -EIO;
		}
	}
	r->secs = now() - start;
	r->cpu = clock_secs(CLOCK_THREAD_CPUTIME_ID) - cpu;
	r->bytes = r->frames * p->len;
	b->raw_sent += r->frames;
	return 0;
}

/* ---- report ---- */

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return (a > c) - (a < c);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void summarize(const struct result *r, unsigned n, struct summary *out)
{
	double f[MAX_ROUNDS], g[MAX_ROUNDS], c[MAX_ROUNDS], o[MAX_ROUNDS];

	for (unsigned i = 0; i < n; i++) {
		f[i] = (double)r[i].frames / r[i].secs;
		g[i] = (double)r[i].bytes * 8 / r[i].secs / 1e9;
		c[i] = r[i].cpu * 1e6 / (double)(r[i].frames ? r[i].frames : 1);
		o[i] = (double)r[i].offered / r[i].secs;
	}
	out->fps = median(f, n);
	out->gbps = median(g, n);
	out->cpu_us = median(c, n);
	out->offered_fps = median(o, n);
}

static void cpu_model(char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(out, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon) {
			snprintf(out, len, "%s", colon + 2);
			out[strcspn(out, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

static void print_machine(const struct bench *b, uint64_t features)
{
	struct utsname u;
	char cpu[128];

	cpu_model(cpu, sizeof(cpu));
	uname(&u);
	printf("machine:  %s, %ld CPUs online\n", cpu, sysconf(_SC_NPROCESSORS_ONLN));
	printf("kernel:   %s %s %s\n", u.sysname, u.release, u.machine);
	printf("setup:    TAPs alike (vnet_hdr, offloads 0x%x) in a network namespace of its own; "
	       "%u rounds of %.1f s,\n          the variants in turn (each round led by the "
	       "next); medians shown\n",
	       b->raw.offloads, b->o.rounds, b->o.seconds);
	printf("device:   virtio-net (tap-name) through the virtio-pci transport, ioeventfd kicks, "
	       "MSI-X eventfds,\n          driven by a host thread playing the Linux driver "
	       "(features 0x%llx: EVENT_IDX,\n          MRG_RXBUF with 4 KiB receive buffers, "
	       "csum/TSO both ways); %u-entry rings\n",
	       (unsigned long long)features, QSIZE);
	printf("transmit: frames to another host's MAC, dropped by the namespace's stack after "
	       "counting;\n          raw = one thread write()ing the same header and frame to "
	       "its TAP from the\n          same %u transmit slots in guest memory, in turn\n",
	       QSIZE);
	printf("receive:  one thread floods the TAP through a packet socket (PACKET_VNET_HDR); "
	       "raw = one\n          thread read()ing its TAP (poll when empty)\n\n");
}

/* One row: a device variant against the raw one; rx adds the flood's rates. */
static void print_row(const struct pattern *p, const char *tag, const struct summary *d,
		      const struct summary *r, bool rx)
{
	char name[32];

	snprintf(name, sizeof(name), "%s%s", p->name, tag);
	printf("%-15s %6u  %10.0f %6.2f %6.2f", name, p->len, d->fps, d->gbps, d->cpu_us);
	if (rx)
		printf(" %10.0f", d->offered_fps);
	printf("  %10.0f %6.2f %6.2f", r->fps, r->gbps, r->cpu_us);
	if (rx)
		printf(" %10.0f", r->offered_fps);
	printf("  %7.2f\n", d->fps / r->fps);
}

static void print_tables(const struct bench *b, const struct pattern *pats, const bool *ran,
			 struct summary sum[][NR_VARIANTS])
{
	printf("%-15s %6s  %10s %6s %6s  %10s %6s %6s  %7s\n", "transmit", "bytes", "device f/s",
	       "Gbit/s", "cpu us", "raw f/s", "Gbit/s", "cpu us", "dev/raw");
	for (unsigned i = 0; i < NR_PATTERNS; i++) {
		if (!ran[i])
			continue;
		print_row(&pats[i], "", &sum[i][DEV_TX], &sum[i][RAW_TX], false);
		if (b->o.sandboxed)
			print_row(&pats[i], " sbx", &sum[i][SBX_TX], &sum[i][RAW_TX], false);
	}
	printf("\n%-15s %6s  %10s %6s %6s %10s  %10s %6s %6s %10s  %7s\n", "receive", "bytes",
	       "device f/s", "Gbit/s", "cpu us", "flood f/s", "raw f/s", "Gbit/s", "cpu us",
	       "flood f/s", "dev/raw");
	for (unsigned i = 0; i < NR_PATTERNS; i++) {
		if (!ran[i])
			continue;
		print_row(&pats[i], "", &sum[i][DEV_RX], &sum[i][RAW_RX], true);
		if (b->o.sandboxed)
			print_row(&pats[i], " sbx", &sum[i][SBX_RX], &sum[i][RAW_RX], true);
	}
}

static int run_variant(struct bench *b, unsigned v, const struct pattern *p, struct result *r)
{
	switch (v) {
	case DEV_TX:
		return run_dev_tx(b, &b->side[PLAIN], p, r);
	case SBX_TX:
		return run_dev_tx(b, &b->side[SBX], p, r);
	case RAW_TX:
		return run_raw_tx(b, p, r);
	case DEV_RX:
		return run_dev_rx(b, &b->side[PLAIN], p, r);
	case SBX_RX:
		return run_dev_rx(b, &b->side[SBX], p, r);
	default:
		return run_raw_rx(b, p, r);
	}
}

static int run_pattern(struct bench *b, const struct pattern *p, struct summary *sum)
{
	struct result res[NR_VARIANTS][MAX_ROUNDS];
	unsigned order[NR_VARIANTS], n = 0;
	int ret = 0;

	for (unsigned v = 0; v < NR_VARIANTS; v++)
		if (b->o.sandboxed || (v != SBX_TX && v != SBX_RX))
			order[n++] = v;
	/* The frame: in every transmit slot (the driver's and the raw writer's), for the flood. */
	build_frame(b->txbuf, p);
	for (unsigned slot = 0; slot < QSIZE && !ret; slot++)
		for (unsigned i = 0; i < NR_SIDES && !ret; i++)
			if (i == PLAIN || b->o.sandboxed)
				ret = guest_mem_write(&b->side[i].env.mem,
						      TX_GPA + (uint64_t)slot * TX_SLOT, b->txbuf,
						      HDR_LEN + p->len);
	/* virtio_net_hdr_v1 is virtio_net_hdr and num_buffers (unused on transmit). */
	memcpy(b->frame, b->txbuf, PKT_HDR);
	memcpy(b->frame + PKT_HDR, b->txbuf + HDR_LEN, p->len);
	for (unsigned r = 0; r < b->o.rounds && !ret; r++)
		for (unsigned i = 0; i < n && !ret; i++) {
			unsigned v = order[(r + i) % n];

			ret = run_variant(b, v, p, &res[v][r]);
			if (!ret && res[v][r].frames == 0)
				ret = -ENODATA;
		}
	for (unsigned i = 0; i < n && !ret; i++)
		summarize(res[order[i]], b->o.rounds, &sum[order[i]]);
	return ret;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_net [--seconds S] [--rounds N] [--pattern TEXT] [--sandboxed]\n"
		"  --seconds S    duration of each run (default 1)\n"
		"  --rounds N     runs of each variant, in turn; medians shown (default 3, at "
		"most %d)\n"
		"  --pattern TEXT only the patterns whose name contains TEXT (\"64 B\", \"1514\", "
		"\"TSO\")\n"
		"  --sandboxed    also run the device in its jailed process, as the VMM does\n"
		"Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) for its own network namespace.\n",
		MAX_ROUNDS);
}

static int parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"seconds", required_argument, NULL, 't'}, {"rounds", required_argument, NULL, 'r'},
		{"pattern", required_argument, NULL, 'p'}, {"sandboxed", no_argument, NULL, 'x'},
		{"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0},
	};
	unsigned long long v;
	int c;

	*o = (struct options){.seconds = 1, .rounds = 3};
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end = NULL;

		switch (c) {
		case 't':
			o->seconds = strtod(optarg, &end);
			if (!end || *end || !(o->seconds > 0 && o->seconds <= 3600))
				return -EINVAL;
			break;
		case 'r':
			v = strtoull(optarg, &end, 10);
			if (!end || *end || v < 1 || v > MAX_ROUNDS)
				return -EINVAL;
			o->rounds = (unsigned)v;
			break;
		case 'p':
			o->only = optarg;
			break;
		case 'x':
			o->sandboxed = true;
			break;
		default:
			return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

/* The namespace, both TAPs up, the device on one, the raw loop's fd on the other. */
/* The namespace, the TAPs up, the devices on theirs, the raw loop's fd on its own. */
static int setup(struct bench *b, uint64_t *features)
{
	int ret;

	if (unshare(CLONE_NEWNET) < 0) {
		ret = -errno;
		fprintf(stderr,
			"bench_net: cannot make a network namespace: %s (needs root, or "
			"CAP_SYS_ADMIN)\n",
			strerror(-ret));
		return ret;
	}
	/* No IPv6 autoconfiguration traffic on the TAPs (this namespace's setting). */
	(void)write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	evthread_use_pthreads();
	ret = tap_open_name(&b->raw, RAW_TAP, 1, &b->lg);
	if (ret)
		return ret;
	/* The device takes every offload the TAP does (wanted_features): the raw TAP too. */
	ret = tap_set_offload(&b->raw, b->raw.offloads);
	if (ret)
		return ret;
	/* The sandboxed device first: its process is cloned from this one, still one thread. */
	if (b->o.sandboxed) {
		ret = bench_jail_setup(&b->jail, "bench_net");
		if (!ret)
			ret = side_create(b, &b->side[SBX], features);
		if (ret)
			return ret;
	}
	ret = side_create(b, &b->side[PLAIN], features);
	if (!ret)
		ret = link_up(RAW_TAP);
	if (ret)
		return ret;
	for (unsigned i = 0; i < NR_SIDES; i++) {
		struct side *s = &b->side[i];

		if (i == SBX && !b->o.sandboxed)
			continue;
		ret = link_up(s->tap);
		if (ret)
			return ret;
		s->sock = packet_socket(s->tap);
		if (s->sock < 0)
			return s->sock;
	}
	b->raw_sock = packet_socket(RAW_TAP);
	return b->raw_sock < 0 ? b->raw_sock : 0;
}

int main(int argc, char **argv)
{
	static const struct pattern patterns[NR_PATTERNS] = {
		{"64 B", 64, false},
		{"1514 B", 1514, false},
		{"64 KiB TSO", MAX_FRAME, true},
	};
	struct summary sum[NR_PATTERNS][NR_VARIANTS];
	bool ran[NR_PATTERNS] = {false};
	struct bench *b = calloc(1, sizeof(*b));
	int64_t rx0[NR_SIDES + 1], rx1[NR_SIDES + 1];
	const char *taps[NR_SIDES + 1] = {DEV_TAP, SBX_TAP, RAW_TAP};
	uint64_t features = 0;
	int ret;

	if (!b)
		return 1;
	if (parse(argc, argv, &b->o)) {
		usage();
		free(b);
		return 2;
	}
	b->raw_sock = -1;
	for (unsigned i = 0; i < TAP_MAX_QUEUES; i++)
		b->raw.fds[i] = -1;
	b->side[PLAIN] = (struct side){.label = "virtio-net0", .tap = DEV_TAP, .sock = -1};
	b->side[SBX] = (struct side){
		.label = "virtio-net1", .tap = SBX_TAP, .sandboxed = true, .sock = -1};
	log_init(&b->lg);
	b->lg.level = LOG_LVL_WARN;
	ret = setup(b, &features);
	if (ret) {
		fprintf(stderr, "bench_net: cannot set up: %s\n", strerror(-ret));
		goto out;
	}
	print_machine(b, features);
	for (unsigned i = 0; i <= NR_SIDES; i++)
		rx0[i] = kernel_rx_frames(taps[i]);
	for (size_t i = 0; i < NR_PATTERNS && !ret; i++) {
		ran[i] = !b->o.only || strstr(patterns[i].name, b->o.only);
		if (ran[i])
			ret = run_pattern(b, &patterns[i], sum[i]);
	}
	if (ret) {
		fprintf(stderr, "bench_net: run failed: %s\n", strerror(-ret));
		goto out;
	}
	for (unsigned i = 0; i <= NR_SIDES; i++)
		rx1[i] = kernel_rx_frames(taps[i]);
	print_tables(b, patterns, ran, sum);
	printf("\nf/s = frames per second; Gbit/s of Ethernet frames (no virtio header); cpu us = "
	       "CPU time per frame of\nthe thread moving the frames (the device's event loop, "
	       "not the driver's; sbx: the device's whole\nprocess; or the raw loop's); flood "
	       "f/s = frames the packet socket put into the TAP (what\nits queue could not hold, "
	       "it dropped); dev/raw = frames/s ratio\nsink check: the kernel received %lld of "
	       "the %llu frames the device sent, %lld of the raw writer's %llu\n",
	       (long long)(rx1[PLAIN] - rx0[PLAIN]), (unsigned long long)b->side[PLAIN].sent,
	       (long long)(rx1[NR_SIDES] - rx0[NR_SIDES]), (unsigned long long)b->raw_sent);
	if (b->o.sandboxed)
		printf("            %lld of the sandboxed device's %llu\n",
		       (long long)(rx1[SBX] - rx0[SBX]), (unsigned long long)b->side[SBX].sent);
out:
	sides_destroy(b);
	if (b->raw_sock >= 0)
		close(b->raw_sock);
	tap_close(&b->raw);
	free(b);
	return ret ? 1 : 0;
}
