/*
 * The user-space virtio-vsock device behind the virtio-pci transport, with this test as the
 * guest's driver (Linux's buffer shapes: 44-byte header plus 4 KiB receive buffers) and as
 * the host programs (real UNIX sockets in a temporary directory): both directions of
 * Firecracker's protocol, data and credit, shutdowns, refusals, garbage, overruns, malformed
 * and spoofed packets, a reset, and the wire-format helpers.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <event2/event.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>

#include "core/guest_mem.h"
#include "core/iov.h"
#include "test/unit/testutil.h"
#include "test/unit/virtio_env.h"
#include "test/unit/virtq_driver.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"
#include "virtio/vsock_mux.h"
#include "virtio/vsock_pkt.h"

#define RAM_SIZE 0x2000000ULL
#define RING_GPA 0x10000ULL
#define DATA_GPA 0x100000ULL
#define DATA_LEN 0x800000ULL /* per queue */
#define QSIZE	 64
#define CID	 3
#define RX_SLOT	 0x2000u /* one receive buffer: header, then 4 KiB at +64 */
#define TX_SLOT	 0x11000u

static const struct guest_region ram[] = {{.gpa = 0, .size = RAM_SIZE}};

struct g {
	struct virtio_env e;
	void *dev;
	char dir[32];
	char path[64];
	uint64_t rx_gpa[QSIZE];
	unsigned rx_slot, tx_slot;
};

static void spin(struct g *g)
{
	for (int i = 0; i < 8; i++)
		virtio_env_run_loop(&g->e);
}

static void g_init(struct g *g)
{
	const struct virtio_env_params p = {.ram = ram,
					    .nr_ram = ARRAY_SIZE(ram),
					    .queue_size = QSIZE,
					    .ring_gpa = RING_GPA,
					    .data_gpa = DATA_GPA,
					    .data_len = DATA_LEN};
	const struct virtio_dev_ops *ops;
	void *dev;

	memset(g, 0, sizeof(*g));
	snprintf(g->dir, sizeof(g->dir), "/tmp/vsock-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g->dir));
	snprintf(g->path, sizeof(g->path), "%s/v.sock", g->dir);
	ck_assert_int_eq(virtio_env_create(&g->e, &p), 0);
	ck_assert_int_eq(virtio_vsock_create(CID, g->path, &g->e.lg, &ops, &dev), 0);
	g->dev = dev;
	ck_assert_int_eq(virtio_env_attach(&g->e, ops, dev, "virtio-vsock"), 0);
	ck_assert_int_eq(virtio_env_start(&g->e, true), 0);
	virtio_env_init(&g->e, BIT(VIRTIO_F_VERSION_1), VSOCK_NR_QUEUES);
	spin(g);
}

static void g_fini(struct g *g)
{
	char cmd[128];

	virtio_env_destroy(&g->e);
	/* The device removed its socket; anything else the test made goes too. */
	ck_assert_int_ne(access(g->path, F_OK), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* n receive buffers as Linux 6.1 posts them: header and 4 KiB payload, two descriptors. */
static void post_rx(struct g *g, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = DATA_GPA + (uint64_t)(g->rx_slot++ % 256) * RX_SLOT;
		const struct virtq_buf b[] = {{gpa, VSOCK_HDR_SIZE, true}, {gpa + 64, 4096, true}};
		uint16_t head = virtio_env_add(&g->e, VSOCK_Q_RX, b, 2);

		g->rx_gpa[head] = gpa;
	}
	virtio_env_kick(&g->e, VSOCK_Q_RX);
	spin(g);
}

static struct vsock_hdr hdr(uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	return (struct vsock_hdr){.src_cid = CID,
				  .dst_cid = VSOCK_HOST_CID,
				  .src_port = src_port,
				  .dst_port = dst_port,
				  .type = VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = 65536};
}

/* One packet on the tx queue (header and payload in one buffer), then the loop runs. */
static void send_pkt(struct g *g, const struct vsock_hdr *h, const void *data, uint32_t len)
{
	uint64_t gpa = DATA_GPA + DATA_LEN + (uint64_t)(g->tx_slot++ % 32) * TX_SLOT;
	struct virtq_buf b = {gpa, VSOCK_HDR_SIZE + len, false};
	uint16_t id;
	uint32_t used;

	vsock_hdr_encode(h, virtio_env_ptr(&g->e, gpa, VSOCK_HDR_SIZE));
	if (len)
		memcpy(virtio_env_ptr(&g->e, gpa + VSOCK_HDR_SIZE, len), data, len);
	virtio_env_add(&g->e, VSOCK_Q_TX, &b, 1);
	virtio_env_kick(&g->e, VSOCK_Q_TX);
	spin(g);
	/* The device gives every tx buffer back, unwritten. */
	while (virtq_driver_get_used(&g->e.drv[VSOCK_Q_TX], &id, &used) == 0)
		ck_assert_uint_eq(used, 0);
}

/* The next packet the device gave the guest: false if none. */
static bool recv_pkt(struct g *g, struct vsock_hdr *h, void *data, uint32_t *len)
{
	uint16_t id;
	uint32_t used;
	uint64_t gpa;

	spin(g);
	if (virtq_driver_get_used(&g->e.drv[VSOCK_Q_RX], &id, &used) < 0)
		return false;
	gpa = g->rx_gpa[id];
	ck_assert_uint_ge(used, VSOCK_HDR_SIZE);
	vsock_hdr_decode(virtio_env_ptr(&g->e, gpa, VSOCK_HDR_SIZE), h);
	ck_assert_uint_eq(used, VSOCK_HDR_SIZE + h->len);
	ck_assert_uint_le(h->len, 4096);
	if (h->len && data)
		memcpy(data, virtio_env_ptr(&g->e, gpa + 64, h->len), h->len);
	if (len)
		*len = h->len;
	ck_assert_uint_eq(h->dst_cid, CID);
	ck_assert_uint_eq(h->type, VSOCK_TYPE_STREAM);
	return true;
}

static struct vsock_hdr expect_pkt(struct g *g, uint16_t op)
{
	struct vsock_hdr h;

	ck_assert_msg(recv_pkt(g, &h, NULL, NULL), "no packet (wanted op %u)", op);
	ck_assert_uint_eq(h.op, op);
	ck_assert_uint_eq(h.src_cid, VSOCK_HOST_CID);
	return h;
}

static void expect_nothing(struct g *g)
{
	struct vsock_hdr h;

	ck_assert_msg(!recv_pkt(g, &h, NULL, NULL), "unexpected packet op %u", h.op);
}

static int host_listen(struct g *g, uint32_t port)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", g->path, port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	return fd;
}

static int host_connect(struct g *g)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g->path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads what is there (after letting the device run), without blocking. */
static ssize_t host_read(struct g *g, int fd, void *buf, size_t len)
{
	spin(g);
	return recv(fd, buf, len, MSG_DONTWAIT);
}

static void host_write(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
}

/* The guest connects to host port `port` from guest port 1000: the accepted socket. */
static int guest_connects(struct g *g, int lfd, uint32_t port)
{
	struct vsock_hdr h = hdr(VSOCK_OP_REQUEST, 1000, port);
	int fd;

	send_pkt(g, &h, NULL, 0);
	h = expect_pkt(g, VSOCK_OP_RESPONSE);
	ck_assert_uint_eq(h.src_port, port);
	ck_assert_uint_eq(h.dst_port, 1000);
	ck_assert_uint_eq(h.buf_alloc, VSOCK_BUF_ALLOC);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(test_identity_and_cid)
{
	struct g g;

	g_init(&g);
	ck_assert_uint_eq(g.e.ops->device_type, VIRTIO_ID_VSOCK);
	ck_assert_uint_eq(g.e.ops->nr_queues, 3);
	ck_assert_uint_eq(virtio_env_rd(&g.e, VIRTIO_PCI_DEVICE_OFF, 8), CID);
	ck_assert_uint_eq(virtio_env_rd(&g.e, VIRTIO_PCI_DEVICE_OFF + 4, 4), 0);
	/* Stream only: no device feature bits. */
	virtio_env_wr(&g.e, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	ck_assert_uint_eq(virtio_env_rd(&g.e, VIRTIO_PCI_COMMON_DF, 4) & 0xffffff, 0);
	ck_assert_str_eq(g.e.dev->jail_dir, g.dir);
	g_fini(&g);
}
END_TEST

START_TEST(test_cid_rules)
{
	ck_assert_ptr_nonnull(vsock_cid_invalid(0));
	ck_assert_ptr_nonnull(vsock_cid_invalid(1));
	ck_assert_ptr_nonnull(vsock_cid_invalid(2));
	ck_assert_ptr_null(vsock_cid_invalid(3));
	ck_assert_ptr_null(vsock_cid_invalid(UINT32_MAX - 1));
	ck_assert_ptr_nonnull(vsock_cid_invalid(UINT32_MAX));
	ck_assert_ptr_nonnull(vsock_cid_invalid(1ULL << 32));
}
END_TEST

START_TEST(test_guest_to_host_stream)
{
	char buf[64];
	struct vsock_hdr h;
	uint32_t len;
	struct g g;
	int lfd, fd;

	g_init(&g);
	post_rx(&g, 8);
	lfd = host_listen(&g, 52);
	fd = guest_connects(&g, lfd, 52);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 1);

	h = hdr(VSOCK_OP_RW, 1000, 52);
	h.len = 5;
	send_pkt(&g, &h, "hello", 5);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 5);
	ck_assert_mem_eq(buf, "hello", 5);

	host_write(fd, "world!", 6);
	ck_assert(recv_pkt(&g, &h, buf, &len));
	ck_assert_uint_eq(h.op, VSOCK_OP_RW);
	ck_assert_uint_eq(len, 6);
	ck_assert_mem_eq(buf, "world!", 6);
	ck_assert_uint_eq(h.fwd_cnt, 5); /* what reached the host so far */

	/* The host closes: the guest hears it will get no more, then closes, then gets RST. */
	close(fd);
	h = expect_pkt(&g, VSOCK_OP_SHUTDOWN);
	ck_assert_uint_eq(h.flags, VSOCK_SHUTDOWN_SEND);
	h = hdr(VSOCK_OP_SHUTDOWN, 1000, 52);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	send_pkt(&g, &h, NULL, 0);
	expect_pkt(&g, VSOCK_OP_RST);
	expect_nothing(&g);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	close(lfd);
	g_fini(&g);
}
END_TEST

START_TEST(test_refused_gets_rst)
{
	struct vsock_hdr h = hdr(VSOCK_OP_REQUEST, 1001, 99);
	struct g g;

	g_init(&g);
	post_rx(&g, 4);
	send_pkt(&g, &h, NULL, 0); /* nothing listens on PATH_99 */
	h = expect_pkt(&g, VSOCK_OP_RST);
	ck_assert_uint_eq(h.src_port, 99);
	ck_assert_uint_eq(h.dst_port, 1001);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	/* Data for a connection that does not exist gets a RST too; a RST gets nothing. */
	h = hdr(VSOCK_OP_RW, 1001, 99);
	h.len = 3;
	send_pkt(&g, &h, "abc", 3);
	expect_pkt(&g, VSOCK_OP_RST);
	h = hdr(VSOCK_OP_RST, 1001, 99);
	send_pkt(&g, &h, NULL, 0);
	expect_nothing(&g);
	g_fini(&g);
}
END_TEST

/* A host program connects: the guest is asked, accepts, and the stream flows both ways. */
static int host_connects(struct g *g, uint32_t port, uint32_t *local)
{
	char line[32], want[32];
	struct vsock_hdr h;
	int fd = host_connect(g);

	snprintf(line, sizeof(line), "CONNECT %u\n", port);
	host_write(fd, line, strlen(line));
	h = expect_pkt(g, VSOCK_OP_REQUEST);
	ck_assert_uint_eq(h.dst_port, port);
	ck_assert_uint_ge(h.src_port, VSOCK_LOCAL_PORT_FIRST);
	ck_assert_uint_lt(h.src_port, VSOCK_LOCAL_PORT_END);
	*local = h.src_port;
	h = (struct vsock_hdr){.src_cid = CID,
			       .dst_cid = VSOCK_HOST_CID,
			       .src_port = port,
			       .dst_port = *local,
			       .type = VSOCK_TYPE_STREAM,
			       .op = VSOCK_OP_RESPONSE,
			       .buf_alloc = 65536};
	send_pkt(g, &h, NULL, 0);
	snprintf(want, sizeof(want), "OK %u\n", *local);
	memset(line, 0, sizeof(line));
	ck_assert_int_eq(host_read(g, fd, line, sizeof(line)), (ssize_t)strlen(want));
	ck_assert_str_eq(line, want);
	return fd;
}

START_TEST(test_host_to_guest_stream)
{
	struct vsock_hdr h;
	char buf[64];
	uint32_t local, len;
	struct g g;
	int fd;

	g_init(&g);
	post_rx(&g, 8);
	fd = host_connects(&g, 1234, &local);
	host_write(fd, "ping", 4);
	ck_assert(recv_pkt(&g, &h, buf, &len));
	ck_assert_uint_eq(h.op, VSOCK_OP_RW);
	ck_assert_uint_eq(h.src_port, local);
	ck_assert_uint_eq(h.dst_port, 1234);
	ck_assert_mem_eq(buf, "ping", 4);
	h = (struct vsock_hdr){.src_cid = CID,
			       .dst_cid = VSOCK_HOST_CID,
			       .src_port = 1234,
			       .dst_port = local,
			       .type = VSOCK_TYPE_STREAM,
			       .op = VSOCK_OP_RW,
			       .len = 4,
			       .buf_alloc = 65536,
			       .fwd_cnt = 4};
	send_pkt(&g, &h, "pong", 4);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "pong", 4);
	/* The guest resets: the program's socket closes. */
	h.op = VSOCK_OP_RST;
	h.len = 0;
	send_pkt(&g, &h, NULL, 0);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	close(fd);
	g_fini(&g);
}
END_TEST

/* Garbage instead of CONNECT, or a line that never ends: closed, the guest hears nothing. */
START_TEST(test_garbage_lines_close)
{
	static const char *const bad[] = {
		"GET / HTTP/1.0\n",
		"CONNECT\n",
		"CONNECT x\n",
		"CONNECT 1 \n",
		"CONNECT 4294967296\n",
		"CONNECTING 5\n",
		"CONNECT 000000000000000000000000000000000005\n", /* longer than 32 bytes */
	};
	char buf[16];
	struct g g;

	g_init(&g);
	post_rx(&g, 4);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		int fd = host_connect(&g);

		host_write(fd, bad[i], strlen(bad[i]));
		ssize_t r = host_read(&g, fd, buf, sizeof(buf));

		/* Closed: EOF, or a reset when unread bytes were left behind. */
		ck_assert_msg(r == 0 || (r < 0 && errno == ECONNRESET), "%s: %zd %s", bad[i], r,
			      r < 0 ? strerror(errno) : "");
		close(fd);
	}
	expect_nothing(&g);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	g_fini(&g);
}
END_TEST

/* Runs the loop, blocking, until ms have passed. */
static void wait_ms(struct g *g, unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	event_base_loopexit(g->e.eb, &tv);
	ck_assert_int_ge(event_base_dispatch(g->e.eb), 0);
}

START_TEST(test_guest_silence_times_out)
{
	struct vsock_hdr h;
	char buf[16];
	struct g g;
	int fd, quiet;

	g_init(&g);
	post_rx(&g, 4);
	fd = host_connect(&g);
	host_write(fd, "CONNECT 7\n", 10);
	h = expect_pkt(&g, VSOCK_OP_REQUEST);
	quiet = host_connect(&g); /* and one that never sends its line */
	wait_ms(&g, VSOCK_TIMEOUT_MS + 500);
	/* The guest gets a RST for its half-open connection; both programs are closed. */
	ck_assert_uint_eq(expect_pkt(&g, VSOCK_OP_RST).src_port, h.src_port);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 0);
	ck_assert_int_eq(host_read(&g, quiet, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	close(fd);
	close(quiet);
	g_fini(&g);
}
END_TEST

/* Host data goes only as far as the guest's credit; a credit update releases more. */
START_TEST(test_guest_credit_limits_host_data)
{
	struct vsock_hdr h = hdr(VSOCK_OP_REQUEST, 1000, 52);
	char buf[64];
	uint32_t len;
	struct g g;
	int lfd, fd;

	g_init(&g);
	post_rx(&g, 8);
	lfd = host_listen(&g, 52);
	h.buf_alloc = 10;
	send_pkt(&g, &h, NULL, 0);
	expect_pkt(&g, VSOCK_OP_RESPONSE);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	host_write(fd, "0123456789abcdefghijklmno", 25);
	ck_assert(recv_pkt(&g, &h, buf, &len));
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(buf, "0123456789", 10);
	expect_nothing(&g);
	h = hdr(VSOCK_OP_CREDIT_UPDATE, 1000, 52);
	h.buf_alloc = 10;
	h.fwd_cnt = 10;
	send_pkt(&g, &h, NULL, 0);
	ck_assert(recv_pkt(&g, &h, buf, &len));
	ck_assert_uint_eq(len, 10);
	ck_assert_mem_eq(buf, "abcdefghij", 10);
	/* A guest that claims to have consumed more than it got gets no credit at all. */
	h = hdr(VSOCK_OP_CREDIT_UPDATE, 1000, 52);
	h.buf_alloc = 10;
	h.fwd_cnt = 1000;
	send_pkt(&g, &h, NULL, 0);
	expect_nothing(&g);
	h.fwd_cnt = 20;
	send_pkt(&g, &h, NULL, 0);
	ck_assert(recv_pkt(&g, &h, buf, &len));
	ck_assert_uint_eq(len, 5);
	close(fd);
	close(lfd);
	g_fini(&g);
}
END_TEST

/* Forwarded guest data is reported back through credit updates. */
START_TEST(test_credit_update_to_guest)
{
	static char data[40000];
	struct vsock_hdr h;
	struct g g;
	int lfd, fd;
	ssize_t got = 0, n;

	g_init(&g);
	post_rx(&g, 8);
	lfd = host_listen(&g, 52);
	fd = guest_connects(&g, lfd, 52);
	for (int i = 0; i < 2; i++) {
		h = hdr(VSOCK_OP_RW, 1000, 52);
		h.len = sizeof(data);
		send_pkt(&g, &h, data, sizeof(data));
	}
	while ((n = host_read(&g, fd, data, sizeof(data))) > 0)
		got += n;
	ck_assert_int_eq(got, 2 * (ssize_t)sizeof(data));
	h = expect_pkt(&g, VSOCK_OP_CREDIT_UPDATE);
	ck_assert_uint_eq(h.fwd_cnt, 2 * sizeof(data));
	expect_nothing(&g);
	close(fd);
	close(lfd);
	g_fini(&g);
}
END_TEST

/*
 * A host program that never reads: its socket fills, then the connection's bounded buffer;
 * a guest that ignores its credit and keeps sending is reset, and nothing grows without end.
 */
START_TEST(test_guest_overrun_is_reset)
{
	static char data[VSOCK_MAX_PAYLOAD];
	struct vsock_hdr h;
	struct g g;
	int lfd, fd, i;
	bool reset = false;

	g_init(&g);
	post_rx(&g, 16);
	lfd = host_listen(&g, 52);
	fd = guest_connects(&g, lfd, 52);
	for (i = 0; i < 256 && !reset; i++) {
		h = hdr(VSOCK_OP_RW, 1000, 52);
		h.len = sizeof(data);
		send_pkt(&g, &h, data, sizeof(data));
		while (recv_pkt(&g, &h, NULL, NULL)) {
			reset |= h.op == VSOCK_OP_RST;
			post_rx(&g, 1);
		}
	}
	ck_assert_msg(reset, "no RST after %d packets of 64 KiB", i);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	close(fd);
	close(lfd);
	g_fini(&g);
}
END_TEST

/* SHUTDOWN both ways: what the guest sent still reaches the host, then EOF, then a RST. */
START_TEST(test_guest_close_flushes)
{
	struct vsock_hdr h;
	char buf[16];
	struct g g;
	int lfd, fd;

	g_init(&g);
	post_rx(&g, 8);
	lfd = host_listen(&g, 52);
	fd = guest_connects(&g, lfd, 52);
	h = hdr(VSOCK_OP_RW, 1000, 52);
	h.len = 3;
	send_pkt(&g, &h, "bye", 3);
	h = hdr(VSOCK_OP_SHUTDOWN, 1000, 52);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	send_pkt(&g, &h, NULL, 0);
	expect_pkt(&g, VSOCK_OP_RST);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 3);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	close(fd);
	close(lfd);
	g_fini(&g);
}
END_TEST

/* A guest that half-closes: the host sees EOF but can still answer. */
START_TEST(test_guest_half_close)
{
	struct vsock_hdr h;
	char buf[16];
	uint32_t len;
	struct g g;
	int lfd, fd;

	g_init(&g);
	post_rx(&g, 8);
	lfd = host_listen(&g, 52);
	fd = guest_connects(&g, lfd, 52);
	h = hdr(VSOCK_OP_SHUTDOWN, 1000, 52);
	h.flags = VSOCK_SHUTDOWN_SEND;
	send_pkt(&g, &h, NULL, 0);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 0);
	host_write(fd, "late", 4);
	ck_assert(recv_pkt(&g, &h, buf, &len));
	ck_assert_uint_eq(h.op, VSOCK_OP_RW);
	ck_assert_uint_eq(len, 4);
	/* Data after its own SHUTDOWN(SEND) breaks the rules: RST. */
	h = hdr(VSOCK_OP_RW, 1000, 52);
	h.len = 1;
	send_pkt(&g, &h, "x", 1);
	expect_pkt(&g, VSOCK_OP_RST);
	close(fd);
	close(lfd);
	g_fini(&g);
}
END_TEST

START_TEST(test_spoofed_and_malformed)
{
	uint8_t raw[VSOCK_HDR_SIZE];
	struct vsock_hdr h;
	struct g g;

	g_init(&g);
	post_rx(&g, 8);
	/* Another source CID: dropped without a word. */
	h = hdr(VSOCK_OP_REQUEST, 1000, 52);
	h.src_cid = 7;
	send_pkt(&g, &h, NULL, 0);
	expect_nothing(&g);
	/* An unknown op, a payload longer than its buffer, one above 64 KiB: RST. */
	h = hdr(9, 1000, 52);
	send_pkt(&g, &h, NULL, 0);
	ck_assert_uint_eq(expect_pkt(&g, VSOCK_OP_RST).dst_port, 1000);
	h = hdr(VSOCK_OP_RW, 1000, 52);
	h.len = 100;
	send_pkt(&g, &h, "short", 5);
	expect_pkt(&g, VSOCK_OP_RST);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	send_pkt(&g, &h, NULL, 0);
	expect_pkt(&g, VSOCK_OP_RST);
	/* Another CID than the host's: RST from that address; SEQPACKET: RST too. */
	h = hdr(VSOCK_OP_REQUEST, 1000, 52);
	h.dst_cid = 5;
	send_pkt(&g, &h, NULL, 0);
	ck_assert(recv_pkt(&g, &h, NULL, NULL));
	ck_assert_uint_eq(h.op, VSOCK_OP_RST);
	ck_assert_uint_eq(h.src_cid, 5);
	h = hdr(VSOCK_OP_REQUEST, 1000, 52);
	h.type = 2;
	send_pkt(&g, &h, NULL, 0);
	expect_pkt(&g, VSOCK_OP_RST);
	/* Shorter than a header: dropped. */
	vsock_hdr_encode(&h, raw);
	{
		uint64_t gpa = DATA_GPA + DATA_LEN;
		struct virtq_buf b = {gpa, 20, false};

		memcpy(virtio_env_ptr(&g.e, gpa, sizeof(raw)), raw, sizeof(raw));
		virtio_env_add(&g.e, VSOCK_Q_TX, &b, 1);
		virtio_env_kick(&g.e, VSOCK_Q_TX);
	}
	expect_nothing(&g);
	ck_assert_uint_eq(virtio_env_status(&g.e), VIRTIO_ENV_S_LIVE);
	g_fini(&g);
}
END_TEST

/* A driver reset closes every connection; the next driver starts afresh. */
START_TEST(test_reset_closes_connections)
{
	char buf[16];
	struct g g;
	int lfd, fd;

	g_init(&g);
	post_rx(&g, 8);
	lfd = host_listen(&g, 52);
	fd = guest_connects(&g, lfd, 52);
	virtio_env_wr(&g.e, VIRTIO_PCI_COMMON_STATUS, 1, 0);
	ck_assert_int_eq(host_read(&g, fd, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), 0);
	close(fd);
	virtio_env_init(&g.e, BIT(VIRTIO_F_VERSION_1), VSOCK_NR_QUEUES);
	spin(&g);
	post_rx(&g, 8);
	fd = guest_connects(&g, lfd, 52);
	close(fd);
	close(lfd);
	g_fini(&g);
}
END_TEST

/* At most VSOCK_MAX_CONNS connections: the next guest connection is refused with a RST. */
START_TEST(test_connection_limit)
{
	struct vsock_hdr h;
	struct g g;
	int lfd, fds[VSOCK_MAX_CONNS];

	g_init(&g);
	lfd = host_listen(&g, 52);
	ck_assert_int_eq(listen(lfd, VSOCK_MAX_CONNS + 8), 0);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		h = hdr(VSOCK_OP_REQUEST, 2000 + i, 52);
		post_rx(&g, 1);
		send_pkt(&g, &h, NULL, 0);
		expect_pkt(&g, VSOCK_OP_RESPONSE);
		fds[i] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
	}
	ck_assert_uint_eq(virtio_vsock_nr_conns(g.dev), VSOCK_MAX_CONNS);
	h = hdr(VSOCK_OP_REQUEST, 9999, 52);
	post_rx(&g, 1);
	send_pkt(&g, &h, NULL, 0);
	expect_pkt(&g, VSOCK_OP_RST);
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++)
		close(fds[i]);
	close(lfd);
	g_fini(&g);
}
END_TEST

/* A live socket at PATH is refused; a stale one is replaced; a non-socket is refused. */
START_TEST(test_socket_path_rules)
{
	struct logger lg = {.level = LOG_LVL_OFF};
	const struct virtio_dev_ops *ops;
	char dir[] = "/tmp/vsock-path.XXXXXX", path[128], cmd[160];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	void *dev;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(virtio_vsock_create(CID, path, &lg, &ops, &dev), -EADDRINUSE);
	close(fd); /* now stale */
	ck_assert_int_eq(virtio_vsock_create(CID, path, &lg, &ops, &dev), 0);
	ops->destroy(dev);
	ck_assert_int_ne(access(path, F_OK), 0);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(virtio_vsock_create(CID, path, &lg, &ops, &dev), -EEXIST);
	ck_assert_int_eq(virtio_vsock_create(CID, "/nonexistent/dir/v.sock", &lg, &ops, &dev),
			 -ENOENT);
	ck_assert_int_eq(virtio_vsock_create(2, path, &lg, &ops, &dev), -EINVAL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_wire_format)
{
	struct vsock_hdr h, d;
	uint8_t raw[VSOCK_HDR_SIZE + 8];
	struct iovec v = {raw, sizeof(raw)};
	struct iov_cursor cur;
	uint32_t port;

	memset(&h, 0, sizeof(h));
	memset(&d, 0xff, sizeof(d));
	h = (struct vsock_hdr){1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	vsock_hdr_encode(&h, raw);
	vsock_hdr_decode(raw, &d);
	ck_assert(d.src_cid == 1 && d.dst_cid == 2 && d.src_port == 3 && d.dst_port == 4 &&
		  d.len == 5 && d.type == 6 && d.op == 7 && d.flags == 8 && d.buf_alloc == 9 &&
		  d.fwd_cnt == 10);
	ck_assert_uint_eq(raw[24], 5); /* len, little-endian at 24 */
	/* Parsing: the guest's CID, a known op, a payload that fits. */
	h = (struct vsock_hdr){.src_cid = CID, .op = VSOCK_OP_RW, .len = 8};
	vsock_hdr_encode(&h, raw);
	iov_cursor_init(&cur, &v, 1);
	ck_assert_int_eq(vsock_pkt_parse(&cur, CID, &d), VSOCK_PKT_OK);
	ck_assert_uint_eq(iov_remaining(&cur), 8);
	iov_cursor_init(&cur, &v, 1);
	ck_assert_int_eq(vsock_pkt_parse(&cur, CID + 1, &d), VSOCK_PKT_SPOOFED);
	h.len = 9;
	vsock_hdr_encode(&h, raw);
	iov_cursor_init(&cur, &v, 1);
	ck_assert_int_eq(vsock_pkt_parse(&cur, CID, &d), VSOCK_PKT_TRUNCATED);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	vsock_hdr_encode(&h, raw);
	iov_cursor_init(&cur, &v, 1);
	ck_assert_int_eq(vsock_pkt_parse(&cur, CID, &d), VSOCK_PKT_TOO_BIG);
	h.op = 8;
	vsock_hdr_encode(&h, raw);
	iov_cursor_init(&cur, &v, 1);
	ck_assert_int_eq(vsock_pkt_parse(&cur, CID, &d), VSOCK_PKT_BAD_OP);
	v.iov_len = VSOCK_HDR_SIZE - 1;
	iov_cursor_init(&cur, &v, 1);
	ck_assert_int_eq(vsock_pkt_parse(&cur, CID, &d), VSOCK_PKT_SHORT);
	/* The CONNECT line. */
	ck_assert_int_eq(vsock_parse_connect("CONNECT 52", 10, &port), 0);
	ck_assert_uint_eq(port, 52);
	ck_assert_int_eq(vsock_parse_connect("connect   4294967295", 20, &port), 0);
	ck_assert_uint_eq(port, UINT32_MAX);
	ck_assert_int_eq(vsock_parse_connect("CONNECT 4294967296", 18, &port), -EINVAL);
	ck_assert_int_eq(vsock_parse_connect("CONNECT -1", 10, &port), -EINVAL);
	ck_assert_int_eq(vsock_parse_connect("CONNECT", 7, &port), -EINVAL);
	ck_assert_int_eq(vsock_parse_connect("CONNECT 5\r", 10, &port), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_vsock");
	TCase *tc = tcase_create("vsock");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_identity_and_cid);
	tcase_add_test(tc, test_cid_rules);
	tcase_add_test(tc, test_guest_to_host_stream);
	tcase_add_test(tc, test_refused_gets_rst);
	tcase_add_test(tc, test_host_to_guest_stream);
	tcase_add_test(tc, test_garbage_lines_close);
	tcase_add_test(tc, test_guest_silence_times_out);
	tcase_add_test(tc, test_guest_credit_limits_host_data);
	tcase_add_test(tc, test_credit_update_to_guest);
	tcase_add_test(tc, test_guest_overrun_is_reset);
	tcase_add_test(tc, test_guest_close_flushes);
	tcase_add_test(tc, test_guest_half_close);
	tcase_add_test(tc, test_spoofed_and_malformed);
	tcase_add_test(tc, test_reset_closes_connections);
	tcase_add_test(tc, test_connection_limit);
	tcase_add_test(tc, test_socket_path_rules);
	tcase_add_test(tc, test_wire_format);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
