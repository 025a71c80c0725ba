#include "virtio/vsock_pkt.h"

#include <ctype.h>
#include <string.h>

#include "core/iov.h"

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE])
{
	put_le(out + 0, h->src_cid, 8);
	put_le(out + 8, h->dst_cid, 8);
	put_le(out + 16, h->src_port, 4);
	put_le(out + 20, h->dst_port, 4);
	put_le(out + 24, h->len, 4);
	put_le(out + 28, h->type, 2);
	put_le(out + 30, h->op, 2);
	put_le(out + 32, h->flags, 4);
	put_le(out + 36, h->buf_alloc, 4);
	put_le(out + 40, h->fwd_cnt, 4);
}

void vsock_hdr_decode(const uint8_t in[VSOCK_HDR_SIZE], struct vsock_hdr *h)
{
	h->src_cid = get_le(in + 0, 8);
	h->dst_cid = get_le(in + 8, 8);
	h->src_port = (uint32_t)get_le(in + 16, 4);
	h->dst_port = (uint32_t)get_le(in + 20, 4);
	h->len = (uint32_t)get_le(in + 24, 4);
	h->type = (uint16_t)get_le(in + 28, 2);
	h->op = (uint16_t)get_le(in + 30, 2);
	h->flags = (uint32_t)get_le(in + 32, 4);
	h->buf_alloc = (uint32_t)get_le(in + 36, 4);
	h->fwd_cnt = (uint32_t)get_le(in + 40, 4);
}

enum vsock_pkt_error vsock_pkt_parse(struct iov_cursor *cur, uint64_t guest_cid,
				     struct vsock_hdr *h)
{
	uint8_t raw[VSOCK_HDR_SIZE];

	/* One copy: the guest may rewrite its buffer while we look. */
	if (iov_read(cur, raw, sizeof(raw)) < 0)
		return VSOCK_PKT_SHORT;
	vsock_hdr_decode(raw, h);
	/* The spec keeps the upper 32 bits of a CID reserved (zero). */
	if (h->src_cid != guest_cid)
		return VSOCK_PKT_SPOOFED;
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return VSOCK_PKT_BAD_OP;
	if (h->op != VSOCK_OP_RW)
		return VSOCK_PKT_OK; /* only RW carries a payload; anything after is ignored */
	if (h->len > VSOCK_MAX_PAYLOAD)
		return VSOCK_PKT_TOO_BIG;
	if (h->len > iov_remaining(cur))
		return VSOCK_PKT_TRUNCATED;
	return VSOCK_PKT_OK;
}

const char *vsock_pkt_error_str(enum vsock_pkt_error e)
{
	switch (e) {
	case VSOCK_PKT_OK:
		return "ok";
	case VSOCK_PKT_SHORT:
		return "shorter than a header";
	case VSOCK_PKT_SPOOFED:
		return "source CID is not the guest's";
	case VSOCK_PKT_TOO_BIG:
		return "payload larger than 64 KiB";
	case VSOCK_PKT_TRUNCATED:
		return "payload longer than its buffers";
	case VSOCK_PKT_BAD_OP:
		return "unknown operation";
	}
	return "?";
}

int vsock_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char kw[] = "connect";
	uint64_t v = 0;
	size_t i = 0;

	if (len < sizeof(kw) - 1)
		return -EINVAL;
	for (; i < sizeof(kw) - 1; i++)
		if (tolower((unsigned char)line[i]) != kw[i])
			return -EINVAL;
	if (i >= len || line[i] != ' ')
		return -EINVAL;
	while (i < len && line[i] == ' ')
		i++;
	if (i >= len)
		return -EINVAL;
	for (; i < len; i++) {
		if (line[i] < '0' || line[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
	}
	*port = (uint32_t)v;
	return 0;
}
