/*
 * libFuzzer target for the user-space vsock device's packet parser and connection logic
 * (virtio/vsock_pkt.c, virtio/vsock_mux.c), with real UNIX sockets: a host program listens
 * on PATH_1 (never accepting), so guest connections to port 1 open and everything else is
 * refused; host programs connect to PATH and send lines from the input.
 *
 * The input is a sequence of actions, each starting with a byte whose low 2 bits choose:
 *   0  a guest packet: [flags][len lo][len hi][len bytes] parsed across (flags & 7) + 1
 *      buffers; flags bit 3 forces the guest's source CID, bit 4 the host's destination CID
 *      and stream type, bit 5 a valid op (from the first byte's high bits), bit 6 port 1
 *   1  a host program connects and writes [n][n bytes] (n < 48), e.g. "CONNECT 7\n"
 *   2  the event loop runs once (accepts, reads, timers already due)
 *   3  the guest gives receive buffers: [count][size]
 * What the device promises, checked on every packet it gives the guest: at least a header,
 * exactly header + len bytes written, from CID 2 (or the address a refused packet went to)
 * to the guest's CID, a known op, stream type, a payload only on RW and never above 64 KiB.
 */
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/iov.h"
#include "core/log.h"
#include "virtio/vsock_mux.h"
#include "virtio/vsock_pkt.h"

#define GUEST_CID   3
#define MAX_ACTIONS 64
#define MAX_HOSTS   8
#define MAX_PKT	    1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct env {
	char path[64];
	int listen_fd, port1_fd;
	struct event_base *eb;
	struct logger lg;
};

struct run {
	struct vsock_mux *m;
	int hosts[MAX_HOSTS];
	unsigned nr_hosts;
	unsigned wanted;
};

static struct env *env_get(void)
{
	static struct env e;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[] = "/tmp/fuzz-vsock.XXXXXX";

	if (e.eb)
		return &e;
	if (!mkdtemp(dir))
		abort();
	snprintf(e.path, sizeof(e.path), "%s/v", dir);
	memcpy(sa.sun_path, e.path, strlen(e.path) + 1);
	e.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (e.listen_fd < 0 || bind(e.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(e.listen_fd, 64))
		abort();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_1", e.path);
	e.port1_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (e.port1_fd < 0 || bind(e.port1_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(e.port1_fd, 4096))
		abort();
	e.eb = event_base_new();
	if (!e.eb)
		abort();
	log_init(&e.lg);
	e.lg.level = LOG_LVL_OFF;
	return &e;
}

static void want_rx(void *ctx)
{
	((struct run *)ctx)->wanted++;
}

static void check_pkt(const uint8_t *buf, uint32_t written, size_t room)
{
	struct vsock_hdr h;

	if (written < VSOCK_HDR_SIZE || written > room)
		__builtin_trap();
	vsock_hdr_decode(buf, &h);
	if (h.dst_cid != GUEST_CID || h.type != VSOCK_TYPE_STREAM)
		__builtin_trap();
	if (h.op < VSOCK_OP_REQUEST || h.op > VSOCK_OP_CREDIT_REQUEST)
		__builtin_trap();
	if (written != VSOCK_HDR_SIZE + h.len || h.len > VSOCK_MAX_PAYLOAD)
		__builtin_trap();
	if (h.len && h.op != VSOCK_OP_RW)
		__builtin_trap();
	if (h.src_cid != VSOCK_HOST_CID && h.op != VSOCK_OP_RST)
		__builtin_trap();
}

/* The guest gives count buffers of size bytes (split in two, as Linux 6.1 does). */
static void drain(struct run *r, unsigned count, size_t size)
{
	static uint8_t buf[VSOCK_HDR_SIZE + 8192];
	struct iovec v[2];
	struct iov_cursor cur;
	uint32_t written;

	size = VSOCK_HDR_SIZE + size % (sizeof(buf) - VSOCK_HDR_SIZE + 1);
	for (unsigned i = 0; i < count && vsock_mux_has_rx(r->m); i++) {
		v[0] = (struct iovec){buf, VSOCK_HDR_SIZE};
		v[1] = (struct iovec){buf + VSOCK_HDR_SIZE, size - VSOCK_HDR_SIZE};
		iov_cursor_init(&cur, v, 2);
		memset(buf, 0xa5, VSOCK_HDR_SIZE);
		if (vsock_mux_rx(r->m, &cur, &written))
			check_pkt(buf, written, size);
	}
}

static void guest_packet(struct run *r, uint8_t sel, const uint8_t **p, const uint8_t *end)
{
	static uint8_t pkt[MAX_PKT];
	struct iovec v[8];
	struct iov_cursor cur;
	struct vsock_hdr h;
	enum vsock_pkt_error e;
	unsigned nr, flags;
	size_t len, off = 0;

	if (end - *p < 3)
		return;
	flags = (*p)[0];
	len = ((size_t)(*p)[1] | (size_t)(*p)[2] << 8) % (MAX_PKT + 1);
	*p += 3;
	len = MIN(len, (size_t)(end - *p));
	memcpy(pkt, *p, len);
	*p += len;
	if (len >= VSOCK_HDR_SIZE) {
		vsock_hdr_decode(pkt, &h);
		if (flags & 8)
			h.src_cid = GUEST_CID;
		if (flags & 16) {
			h.dst_cid = VSOCK_HOST_CID;
			h.type = VSOCK_TYPE_STREAM;
		}
		if (flags & 32)
			h.op = (uint16_t)(VSOCK_OP_REQUEST + (sel >> 2) % 7);
		if (flags & 64)
			h.dst_port = 1;
		vsock_hdr_encode(&h, pkt);
	}
	nr = (flags & 7) + 1;
	for (unsigned i = 0; i < nr; i++) {
		size_t part = i + 1 == nr ? len - off : MIN(len - off, (len / nr) + i);

		v[i] = (struct iovec){pkt + off, part};
		off += part;
	}
	iov_cursor_init(&cur, v, nr);
	e = vsock_pkt_parse(&cur, GUEST_CID, &h);
	if (e == VSOCK_PKT_OK) {
		if (h.op == VSOCK_OP_RW && h.len > iov_remaining(&cur))
			__builtin_trap();
		vsock_mux_tx(r->m, &h, &cur);
	} else if (e != VSOCK_PKT_SHORT && e != VSOCK_PKT_SPOOFED) {
		h.op = VSOCK_OP_INVALID;
		h.len = 0;
		vsock_mux_tx(r->m, &h, &cur);
	}
}

static void host_client(struct env *e, struct run *r, const uint8_t **p, const uint8_t *end)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int fd;

	if (*p >= end || r->nr_hosts == MAX_HOSTS)
		return;
	n = MIN((size_t)(**p % 48), (size_t)(end - *p - 1));
	memcpy(sa.sun_path, e->path, strlen(e->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && n)
		(void)!write(fd, *p + 1, n);
	*p += n + 1;
	r->hosts[r->nr_hosts++] = fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env *e = env_get();
	struct run r = {0};
	const uint8_t *p = data, *end = data + size;
	int fd;

	if (vsock_mux_create(&(struct vsock_mux_params){.guest_cid = GUEST_CID,
							.listen_fd = e->listen_fd,
							.path = e->path,
							.max_conns = 16,
							.want_rx = want_rx,
							.ctx = &r,
							.log = &e->lg},
			     &r.m) < 0)
		return 0;
	if (vsock_mux_start(r.m, e->eb) < 0)
		abort();
	vsock_mux_set_active(r.m, true);
	for (unsigned i = 0; i < MAX_ACTIONS && p < end; i++) {
		uint8_t sel = *p++;

		switch (sel & 3) {
		case 0:
			guest_packet(&r, sel, &p, end);
			break;
		case 1:
			host_client(e, &r, &p, end);
			break;
		case 2:
			event_base_loop(e->eb, EVLOOP_NONBLOCK);
			break;
		default:
			if (end - p >= 2) {
				drain(&r, p[0] % 8, p[1] * 32u);
				p += 2;
			}
			break;
		}
	}
	drain(&r, 64, 4096);
	vsock_mux_destroy(r.m);
	for (unsigned i = 0; i < r.nr_hosts; i++)
		close(r.hosts[i]);
	/* Guest connections left pending on PATH_1 go too, so every input starts alike. */
	while ((fd = accept4(e->port1_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
		close(fd);
	/* Let the listener's backlog empty of this input's host programs. */
	while ((fd = accept4(e->listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
		close(fd);
	return 0;
}
