/*
 * libFuzzer target for virtio-net's transmit path (net_tx_chain): the input is what the driver
 * negotiated, the back end's kind, one transmit chain's shape and the guest's bytes in it.
 * The frame goes to one end of a SOCK_SEQPACKET pair, as to a TAP queue.
 *
 *   [0]      flags: bit 0 the back end carries the virtio header (a TAP with IFF_VNET_HDR)
 *   [1..8]   the negotiated features (little-endian)
 *   [9..10]  the MTU (little-endian)
 *   [11]     readable buffers (low nibble + high nibble: 0..30), bit 7 of [12] adds one
 *            writable buffer
 *   [12..]   2 bytes of length per buffer (little-endian, mod MAX_BUF_LEN + 1)
 *   [...]    the readable bytes (as many as the buffers hold, or what is left)
 *
 * What the device promises: a chain it sends arrived whole, as one message holding the
 * frame (after the header the device copied, when the back end takes one, with the flag bits
 * it does not know cleared: virtio 1.2 5.1.6.2.2) and nothing else;
 * a chain it refuses sent nothing and is counted once; it never reads past the chain.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/virtio_net.h>

#include "core/log.h"
#include "core/util.h"
#include "test/fuzz/chain.h"
#include "virtio/net_internal.h"

#define MAX_BUFS    31u
#define MAX_BUF_LEN 8192u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz {
	struct net n;
	struct iovec chain_iov[MAX_BUFS];
	struct iovec tx_iov[NET_QUEUE_SIZE + 1];
	uint8_t arena[MAX_BUFS * MAX_BUF_LEN];
	uint8_t got[MAX_BUFS * MAX_BUF_LEN + 1];
	uint8_t flat[MAX_BUFS * MAX_BUF_LEN];
};

/* The chain's readable bytes in order, whatever buffers they are in. */
static size_t flatten(const struct virtq_chain *c, uint8_t *out)
{
	size_t len = 0;

	for (unsigned i = 0; i < c->nr_out; i++) {
		memcpy(out + len, c->iov[i].iov_base, c->iov[i].iov_len);
		len += c->iov[i].iov_len;
	}
	return len;
}

static void check(struct fuzz *f, const struct virtq_chain *c, int sv[2])
{
	struct net *n = &f->n;
	int ret = net_tx_chain(n, sv[0], f->tx_iov, c);
	ssize_t r = recv(sv[1], f->got, sizeof(f->got), MSG_DONTWAIT | MSG_TRUNC);
	size_t len = flatten(c, f->flat), skip = n->vnet_hdr ? 0 : NET_HDR_LEN;

	/* The header the back end may see: only NEEDS_CSUM of the flags survives. */
	if (len >= NET_HDR_LEN)
		f->flat[offsetof(struct virtio_net_hdr, flags)] &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
	if (ret == 0) {
		if (c->nr_in || len < NET_HDR_LEN + NET_ETH_HLEN ||
		    len > NET_HDR_LEN + NET_MAX_FRAME)
			__builtin_trap();
		if (r != (ssize_t)(len - skip) || memcmp(f->got, f->flat + skip, len - skip) != 0)
			__builtin_trap();
		if (n->stats.tx_frames != 1 || n->stats.tx_malformed || n->stats.tx_errors)
			__builtin_trap();
		/* The second message, if any, would be a duplicate. */
		if (recv(sv[1], f->got, 1, MSG_DONTWAIT) >= 0)
			__builtin_trap();
		return;
	}
	if (r >= 0)
		__builtin_trap();
	if (ret == -EBADMSG && (n->stats.tx_malformed != 1 || n->stats.tx_frames))
		__builtin_trap();
	if (ret != -EBADMSG && ret != -EAGAIN && n->stats.tx_errors != 1)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq_chain c = {0};
	const uint8_t *p = data + 12, *end = data + size;
	struct logger lg;
	struct fuzz *f;
	unsigned nr_out, nr_in;
	int sv[2];

	if (size < 12)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return 0;
	log_init(&lg);
	lg.level = LOG_LVL_OFF;
	f->n.log = &lg;
	f->n.vnet_hdr = data[0] & 1;
	f->n.acked = get_le(data + 1, 8);
	f->n.mtu = (uint16_t)get_le(data + 9, 2);
	nr_out = (data[11] & 0xf) + (data[11] >> 4);
	nr_in = size > 12 && (data[12] & 0x80) ? 1 : 0;
	c.iov = f->chain_iov;
	c.iov_cap = MAX_BUFS;
	if (fuzz_chain_build(&c, nr_out, nr_in, MAX_BUF_LEN, f->arena, sizeof(f->arena), &p, end))
		goto out_free;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		goto out_free;
	check(f, &c, sv);
	close(sv[0]);
	close(sv[1]);
out_free:
	free(f);
	return 0;
}
