/*
 * virtio_net: drives the virtio network device (1af4:1041) at its protocol edges, with a
 * host-side test reading and writing the TAP behind it (test/integration/test_virtio_net.py).
 * It negotiates VERSION_1 and MAC only (no offloads, no MRG_RXBUF, no control queue), so every
 * frame carries a plain 12-byte virtio_net_hdr_v1 with nothing set.
 *
 * Transmit: a good frame (tag "good.start"), then each malformed chain of bad_names[] followed
 * by a good frame tagged "good.KIND". Every malformed chain must come back used without the
 * device needing a reset; the host checks that only the good frames reached the TAP, in order.
 * Receive: the guest posts no receive buffers at first. It prints `READY norx` and waits for a
 * byte on COM1, meanwhile the host writes vnet.rx_early frames into the TAP. Then it sends
 * "norx.alive" (the device still transmits), posts a zero-length and a device-readable
 * receive chain (each must come back used with length 0) and NET_RX_BUFS good 2 KiB buffers,
 * prints `READY rx`; the host writes vnet.rx_late more frames. Frame n is "rx.n" of
 * rx_frame_len(n) bytes, the last one a full 1514-byte frame. They must arrive in order and
 * intact, all of the late ones; of the early ones only a tail may be missing (what the TAP
 * dropped while its queue was full: the device must not have read them into a queue of its
 * own meanwhile).
 *
 * Frames (both ways): destination, source, EtherType 0x88b5 (local experimental), a 32-byte
 * NUL-padded tag, then byte i of the frame (from its start) is (i * 7 + 0x5a) & 0xff.
 *
 * Keys: vnet.timeout_ms=T (how long to wait for the host, default 30000), vnet.rx_early=N
 * (default 4, at most 64), vnet.rx_late=M (default 4, 1 to 64), plus the driver keys of
 * lib/virtio.h.
 * INFO: net.dev=BDF, net.features=0x.. (negotiated), net.mac=xx:..:xx, net.mtu=N,
 * net.bad.KIND=used:LEN|needs_reset|ignored|queue_failed, net.rx_bad.KIND=used:LEN,
 * net.rx_num_buffers=N (of the first frame), net.rx_foreign=N (frames that were not ours),
 * net.rx_early_got=K (early frames received).
 * PASS/FAIL: net_found, net_init, net_tx, net_tx_bad_chains, net_norx_tx, net_rx_bad_chains,
 * net_rx.
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/fmt.h"
#include "lib/serial.h"
#include "lib/str.h"
#include "lib/virtio.h"

#define VIRTIO_NET_F_MAC    5
#define NET_CFG_MAC	    0
#define NET_CFG_MTU	    10
#define NET_HDR_LEN	    12
#define NET_HDR_GSO_TYPE    1
#define NET_HDR_GSO_SIZE    4
#define NET_HDR_CSUM_START  6
#define NET_HDR_CSUM_OFFSET 8
#define NET_HDR_NUM_BUFS    10
#define NET_RXQ		    0
#define NET_TXQ		    1
#define NET_QSIZE	    64
#define ETH_HLEN	    14
#define ETH_TYPE_TEST	    0x88b5
#define TAG_OFF		    ETH_HLEN
#define TAG_LEN		    32
#define SMALL_FRAME	    64
#define MTU_FRAME	    1600  /* over 1514 + a VLAN tag, and no GSO */
#define HUGE_FRAME	    65600 /* over virtio's 65550 */
#define RX_BUF_LEN	    2048  /* a header and a 1514-byte frame, without MRG_RXBUF */
#define NET_RX_BUFS	    16
#define NET_RX_EARLY	    4
#define NET_RX_LATE	    4
#define NET_RX_MAX	    64 /* of each */
#define NET_WAIT_MS	    5000
#define BAD_OOB_ADDR	    (1ull << 39) /* far above RAM and any PCI window */
#define HOST_TIMEOUT_MS	    30000

enum bad_kind {
	BAD_OOB,
	BAD_LOOP,
	BAD_NEXT_RANGE,
	BAD_WRITABLE,
	BAD_ZERO_LEN,
	BAD_SHORT_HDR,
	BAD_HDR_ONLY,
	BAD_GSO,
	BAD_CSUM,
	BAD_MTU,
	BAD_HUGE,
	NR_BAD
};

static const char *const bad_names[NR_BAD] = {"oob_addr", "loop",      "next_range", "writable",
					      "zero_len", "short_hdr", "hdr_only",   "bad_gso",
					      "bad_csum", "mtu",       "huge"};

struct net_guest {
	struct guest *g;
	struct virtio_bus bus;
	struct virtio_dev dev;
	uint8_t mac[6];
	uint64_t hdr_pa;   /* the transmit header */
	uint64_t frame_pa; /* a transmit frame up to MTU_FRAME */
	uint64_t huge_pa;  /* HUGE_FRAME bytes */
	uint64_t rx_pa;	   /* NET_RX_BUFS receive buffers of RX_BUF_LEN */
	uint64_t rx_bad_pa;
	uint64_t timeout_ms;
	unsigned rx_early, rx_late; /* frames the host writes before and after READY rx */
};

static const uint8_t host_mac[6] = {0x02, 0, 0, 0, 0, 0x01};

static uint8_t pattern(uint32_t i)
{
	return (uint8_t)(i * 7 + 0x5a);
}

static uint32_t rx_frame_len(unsigned n, unsigned total)
{
	return n == total ? 1514 : 60 + (97 * n) % 1400;
}

/* A test frame of len bytes at pa from us to the broadcast address. */
static void build_frame(struct net_guest *ng, uint64_t pa, uint32_t len, const char *tag)
{
	uint8_t *f = phys_to_ptr(pa);

	memset(f, 0xff, 6);
	memcpy(f + 6, ng->mac, 6);
	f[12] = ETH_TYPE_TEST >> 8;
	f[13] = ETH_TYPE_TEST & 0xff;
	memset(f + TAG_OFF, 0, TAG_LEN);
	str_copy((char *)f + TAG_OFF, tag, TAG_LEN);
	for (uint32_t i = TAG_OFF + TAG_LEN; i < len; i++)
		f[i] = pattern(i);
}

static void clear_header(struct net_guest *ng)
{
	memset(phys_to_ptr(ng->hdr_pa), 0, NET_HDR_LEN);
}

/* A good frame tagged tag: header and frame in two buffers. */
static int send_good(struct net_guest *ng, const char *tag)
{
	struct virtq_buf b[2] = {{ng->hdr_pa, NET_HDR_LEN, false},
				 {ng->frame_pa, SMALL_FRAME, false}};
	uint32_t len;

	clear_header(ng);
	build_frame(ng, ng->frame_pa, SMALL_FRAME, tag);
	return virtio_request(&ng->dev, NET_TXQ, b, 2, NET_WAIT_MS, &len);
}

static int submit_bad(struct net_guest *ng, enum bad_kind k)
{
	struct virtio_dev *d = &ng->dev;
	struct virtq *q = d->vq[NET_TXQ];
	uint8_t *h = phys_to_ptr(ng->hdr_pa);
	struct virtq_desc c[2] = {
		{ng->hdr_pa, NET_HDR_LEN, VIRTQ_DESC_F_NEXT, 1},
		{ng->frame_pa, SMALL_FRAME, 0, 0},
	};
	char tag[TAG_LEN];
	uint32_t flen = SMALL_FRAME;
	unsigned n = 2;
	uint16_t head;
	int rc;

	clear_header(ng);
	switch (k) {
	case BAD_OOB:
		c[1].addr = BAD_OOB_ADDR;
		break;
	case BAD_LOOP:
		/* Back to the header: each step is valid, only the length is endless. */
		c[1].flags = VIRTQ_DESC_F_NEXT;
		c[1].next = 0;
		break;
	case BAD_NEXT_RANGE:
		c[0].next = 0x7fff; /* outside d[]: passed through, beyond the queue */
		n = 1;
		break;
	case BAD_WRITABLE:
		c[1].flags = VIRTQ_DESC_F_WRITE;
		break;
	case BAD_ZERO_LEN:
		c[0] = (struct virtq_desc){ng->hdr_pa, 0, 0, 0};
		n = 1;
		break;
	case BAD_SHORT_HDR:
		c[0] = (struct virtq_desc){ng->hdr_pa, NET_HDR_LEN - 4, 0, 0};
		n = 1;
		break;
	case BAD_HDR_ONLY:
		c[0].flags = 0;
		n = 1;
		break;
	case BAD_GSO:
		/* TCPv4 segmentation, which we did not negotiate (HOST_TSO4). */
		h[NET_HDR_GSO_TYPE] = 1;
		h[NET_HDR_GSO_SIZE] = 0xe8;
		h[NET_HDR_GSO_SIZE + 1] = 0x03;
		break;
	case BAD_CSUM:
		/* Checksum offload, which we did not negotiate (CSUM); unknown flags are ignored.
		 */
		h[0] = 1 | 0x80;
		h[NET_HDR_CSUM_START] = 34;
		h[NET_HDR_CSUM_OFFSET] = 16;
		break;
	case BAD_MTU:
		flen = MTU_FRAME;
		c[1].len = flen;
		break;
	default:
		flen = HUGE_FRAME;
		c[1] = (struct virtq_desc){ng->huge_pa, flen, 0, 0};
		break;
	}
	fmt_snprintf(tag, sizeof(tag), "bad.%s", bad_names[k]);
	build_frame(ng, k == BAD_HUGE ? ng->huge_pa : ng->frame_pa, flen, tag);
	rc = virtq_add_raw(q, c, n, &head);
	if (rc)
		return rc;
	d->irq_mark[NET_TXQ] = virtio_queue_irqs(d, NET_TXQ);
	virtq_kick(q);
	return 0;
}

/* What the device made of a malformed chain; true when it gave it back and carries on. */
static bool bad_outcome(struct net_guest *ng, enum bad_kind k)
{
	struct virtio_dev *d = &ng->dev;
	uint16_t head;
	uint32_t len;
	int rc = virtio_wait(d, NET_TXQ, NET_WAIT_MS, &head, &len);

	if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET) {
		report_info(ng->g, "net.bad.%s=needs_reset", bad_names[k]);
		return false;
	}
	if (rc == -ETIMEDOUT) {
		report_info(ng->g, "net.bad.%s=ignored", bad_names[k]);
		return false;
	}
	if (rc) {
		report_info(ng->g, "net.bad.%s=bad_id", bad_names[k]);
		return false;
	}
	report_info(ng->g, "net.bad.%s=used:%u", bad_names[k], len);
	return len == 0;
}

static void do_tx(struct net_guest *ng)
{
	struct guest *g = ng->g;
	bool ok = true;
	int rc = send_good(ng, "good.start");

	if (report_check(g, rc == 0, "net_tx", "a good frame was not sent back (%d)", rc))
		return;
	for (unsigned k = 0; k < NR_BAD; k++) {
		char tag[TAG_LEN];

		rc = submit_bad(ng, k);
		if (rc) {
			report_info(g, "net.bad.%s=queue_failed", bad_names[k]);
			ok = false;
			break;
		}
		if (!bad_outcome(ng, k))
			ok = false;
		fmt_snprintf(tag, sizeof(tag), "good.%s", bad_names[k]);
		rc = send_good(ng, tag);
		if (rc) {
			report_fail(g, "net_tx_bad_chains", "no good frame after %s (%d)",
				    bad_names[k], rc);
			return;
		}
	}
	report_check(g, ok, "net_tx_bad_chains", "a malformed chain was not given back empty");
}

/* Waits for a byte on COM1 from the host: 0, or -ETIMEDOUT. */
static int wait_host(struct net_guest *ng)
{
	struct clock *c = &ng->bus.clock;
	uint64_t start = clock_now_ms(c);

	while (clock_now_ms(c) - start < ng->timeout_ms) {
		if (serial_getc(&ng->g->com1) >= 0)
			return 0;
		clock_halt(c, 10000);
	}
	return -ETIMEDOUT;
}

static int post_rx(struct net_guest *ng, unsigned i)
{
	struct virtq_buf b = {ng->rx_pa + (uint64_t)i * RX_BUF_LEN, RX_BUF_LEN, true};
	uint16_t head;

	return virtq_add(ng->dev.vq[NET_RXQ], &b, 1, false, &head);
}

/*
 * Checks one received frame: its sequence number n (rx.n) in *seq when it is ours and intact,
 * 1; 0 for a frame of another EtherType; -EIO for a damaged one.
 */
static int check_rx(struct net_guest *ng, const uint8_t *buf, uint32_t len, unsigned *seq)
{
	const uint8_t *f = buf + NET_HDR_LEN;
	unsigned total = ng->rx_early + ng->rx_late;
	char tag[TAG_LEN];
	uint64_t n = 0;
	uint32_t flen;

	if (len < NET_HDR_LEN + TAG_OFF + TAG_LEN || f[12] != ETH_TYPE_TEST >> 8 ||
	    f[13] != (ETH_TYPE_TEST & 0xff))
		return 0;
	flen = len - NET_HDR_LEN;
	memcpy(tag, f + TAG_OFF, TAG_LEN);
	tag[TAG_LEN - 1] = 0;
	if (!str_starts_with(tag, "rx.") || str_to_u64(tag + 3, &n) || !n || n > total) {
		report_fail(ng->g, "net_rx", "a frame tagged %s", tag);
		return -EIO;
	}
	if (buf[0] || buf[NET_HDR_GSO_TYPE]) {
		report_fail(ng->g, "net_rx", "%s: header flags 0x%x gso_type 0x%x", tag, buf[0],
			    buf[NET_HDR_GSO_TYPE]);
		return -EIO;
	}
	if (flen != rx_frame_len((unsigned)n, total) || memcmp(f, ng->mac, 6) ||
	    memcmp(f + 6, host_mac, 6)) {
		report_fail(ng->g, "net_rx", "%s: %u bytes (expected %u) or wrong addresses", tag,
			    flen, rx_frame_len((unsigned)n, total));
		return -EIO;
	}
	for (uint32_t i = TAG_OFF + TAG_LEN; i < flen; i++) {
		if (f[i] != pattern(i)) {
			report_fail(ng->g, "net_rx", "%s: byte %u is 0x%02x", tag, i, f[i]);
			return -EIO;
		}
	}
	*seq = (unsigned)n;
	return 1;
}

static void do_rx(struct net_guest *ng)
{
	struct guest *g = ng->g;
	struct virtio_dev *d = &ng->dev;
	struct virtq *q = d->vq[NET_RXQ];
	struct virtq_desc zero = {ng->rx_bad_pa, 0, VIRTQ_DESC_F_WRITE, 0};
	struct virtq_desc readable = {ng->rx_bad_pa, RX_BUF_LEN, 0, 0};
	uint16_t bad_head[2], head;
	uint32_t bad_len[2] = {~0u, ~0u}, len;
	unsigned total = ng->rx_early + ng->rx_late, last = 0, early_got = 0, foreign = 0;
	int rc;

	con_printf(g, "READY norx\n");
	rc = wait_host(ng);
	if (rc) {
		report_fail(g, "net_norx_tx", "the host did not answer (%d)", rc);
		return;
	}
	rc = send_good(ng, "norx.alive");
	if (report_check(g, rc == 0, "net_norx_tx", "no transmit without receive buffers (%d)", rc))
		return;

	rc = virtq_add_raw(q, &zero, 1, &bad_head[0]);
	if (!rc)
		rc = virtq_add_raw(q, &readable, 1, &bad_head[1]);
	for (unsigned i = 0; !rc && i < NET_RX_BUFS; i++)
		rc = post_rx(ng, i);
	if (rc) {
		report_fail(g, "net_rx", "cannot post receive buffers (%d)", rc);
		return;
	}
	d->irq_mark[NET_RXQ] = virtio_queue_irqs(d, NET_RXQ);
	virtq_kick(q);
	con_printf(g, "READY rx\n");

	/* Bounded: each pass takes one used entry. */
	for (unsigned pass = 0; last < total && pass < 4 * (NET_QSIZE + NET_RX_MAX); pass++) {
		uint64_t buf;
		unsigned seq = 0;

		rc = virtio_wait(d, NET_RXQ, ng->timeout_ms, &head, &len);
		if (rc) {
			report_fail(g, "net_rx", "waiting for the frame after rx.%u: %d", last, rc);
			return;
		}
		if (head == bad_head[0] || head == bad_head[1]) {
			bad_len[head == bad_head[1]] = len;
			continue;
		}
		/* Our buffers are single direct descriptors: the head names the buffer. */
		buf = q->desc[head].addr;
		if (buf < ng->rx_pa || buf >= ng->rx_pa + NET_RX_BUFS * RX_BUF_LEN ||
		    len > RX_BUF_LEN) {
			report_fail(g, "net_rx", "used entry %u: buffer 0x%lx, length %u", head,
				    buf, len);
			return;
		}
		if (!last && len >= NET_HDR_LEN)
			report_info(g, "net.rx_num_buffers=%u",
				    *(uint16_t *)phys_to_ptr(buf + NET_HDR_NUM_BUFS));
		rc = check_rx(ng, phys_to_ptr(buf), len, &seq);
		if (rc < 0)
			return;
		if (!rc) {
			foreign++;
		} else if (seq != last + 1 && !(last <= ng->rx_early && seq == ng->rx_early + 1)) {
			/*
			 * In order, and only the early frames' tail may be missing: those the TAP
			 * dropped while its queue was full and we had posted no buffers.
			 */
			report_fail(g, "net_rx", "rx.%u after rx.%u", seq, last);
			return;
		} else {
			early_got += seq <= ng->rx_early;
			last = seq;
		}
		rc = post_rx(ng, (unsigned)((buf - ng->rx_pa) / RX_BUF_LEN));
		if (rc) {
			report_fail(g, "net_rx", "cannot post a buffer again (%d)", rc);
			return;
		}
		virtq_kick(q);
	}
	report_info(g, "net.rx_foreign=%u", foreign);
	report_info(g, "net.rx_early_got=%u", early_got);
	report_info(g, "net.rx_bad.zero_len=used:%d", (int)bad_len[0]);
	report_info(g, "net.rx_bad.readable=used:%d", (int)bad_len[1]);
	report_check(g, !bad_len[0] && !bad_len[1], "net_rx_bad_chains",
		     "malformed receive chains not given back empty");
	report_check(g, last == total, "net_rx", "the last frame was rx.%u of %u", last, total);
}

static int net_start(struct net_guest *ng)
{
	struct virtio_dev *d = &ng->dev;
	uint64_t v;
	int rc = virtio_begin(d, VIRTIO_BIT(VIRTIO_NET_F_MAC));

	if (!rc)
		rc = virtio_setup_queue(d, NET_RXQ, NET_QSIZE);
	if (!rc)
		rc = virtio_setup_queue(d, NET_TXQ, NET_QSIZE);
	if (!rc && !virtio_has(d, VIRTIO_NET_F_MAC))
		rc = -ENODEV; /* we need the MAC to address frames */
	for (unsigned i = 0; !rc && i < 6; i++) {
		rc = virtio_cfg_read(d, NET_CFG_MAC + i, 1, &v);
		ng->mac[i] = (uint8_t)v;
	}
	if (!rc)
		rc = virtio_driver_ok(d);
	return rc;
}

int guest_main(struct guest *g)
{
	struct net_guest storage, *ng = &storage;
	uint64_t mtu = 0;
	int rc;

	memset(ng, 0, sizeof(*ng));
	ng->g = g;
	ng->timeout_ms = cmdline_u64(g->boot.cmdline, "vnet.timeout_ms", HOST_TIMEOUT_MS);
	ng->rx_early = (unsigned)MIN(cmdline_u64(g->boot.cmdline, "vnet.rx_early", NET_RX_EARLY),
				     NET_RX_MAX);
	ng->rx_late = (unsigned)MIN(cmdline_u64(g->boot.cmdline, "vnet.rx_late", NET_RX_LATE),
				    NET_RX_MAX);
	if (!ng->rx_late)
		ng->rx_late = 1; /* the last frame ends the receive check */
	if (virtio_bus_init(g, &ng->bus))
		return 0;
	rc = virtio_find(&ng->bus, VIRTIO_ID_NET, 0, &ng->dev);
	if (report_check(g, rc == 0, "net_found", "no usable virtio-net (%d)", rc))
		return 0;
	str_copy(ng->dev.name, "net", sizeof(ng->dev.name));
	report_info(g, "net.dev=%s", ng->dev.bdf);
	if (dma_alloc(&ng->bus.pool, NET_HDR_LEN, 16, &ng->hdr_pa) ||
	    dma_alloc(&ng->bus.pool, MTU_FRAME, 64, &ng->frame_pa) ||
	    dma_alloc(&ng->bus.pool, HUGE_FRAME, 64, &ng->huge_pa) ||
	    dma_alloc(&ng->bus.pool, NET_RX_BUFS * RX_BUF_LEN, 64, &ng->rx_pa) ||
	    dma_alloc(&ng->bus.pool, RX_BUF_LEN, 64, &ng->rx_bad_pa)) {
		report_fail(g, "dma_pool", "out of DMA memory");
		return 0;
	}
	rc = net_start(ng);
	if (report_check(g, rc == 0, "net_init", "initialisation failed (%d)", rc))
		return 0;
	report_info(g, "net.features=0x%lx", ng->dev.features);
	report_info(g, "net.mac=%02x:%02x:%02x:%02x:%02x:%02x", ng->mac[0], ng->mac[1], ng->mac[2],
		    ng->mac[3], ng->mac[4], ng->mac[5]);
	if (!virtio_cfg_read(&ng->dev, NET_CFG_MTU, 2, &mtu))
		report_info(g, "net.mtu=%lu", mtu);
	do_tx(ng);
	do_rx(ng);
	virtio_reset(&ng->dev);
	return 0;
}
