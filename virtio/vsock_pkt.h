/*
 * virtio-vsock's wire format (virtio 1.2, section 5.10.6) and the host side of Firecracker's
 * UNIX socket protocol ("CONNECT <port>\n" in, "OK <port>\n" out). Pure functions over bytes:
 * everything a guest or a host client sends is parsed here first, so the fuzz target
 * (test/fuzz/fuzz_vsock.c) covers them.
 */
#ifndef CROSVM_VIRTIO_VSOCK_PKT_H
#define CROSVM_VIRTIO_VSOCK_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

struct iov_cursor;

#define VSOCK_HDR_SIZE 44u
#define VSOCK_HOST_CID 2u
/* Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE: no packet carries more. */
#define VSOCK_MAX_PAYLOAD (64u * 1024u)
/* The CONNECT line, '\n' included, is at most this long (as Firecracker). */
#define VSOCK_CONNECT_LINE 32u

enum {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_TYPE_STREAM   1u
#define VSOCK_SHUTDOWN_RCV  1u
#define VSOCK_SHUTDOWN_SEND 2u
#define VSOCK_SHUTDOWN_BOTH (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

/* A header in host byte order. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_SIZE]);
void vsock_hdr_decode(const uint8_t in[VSOCK_HDR_SIZE], struct vsock_hdr *h);

/* Why a packet from the guest was refused (vsock_pkt_parse). */
enum vsock_pkt_error {
	VSOCK_PKT_OK = 0,
	VSOCK_PKT_SHORT,     /* fewer than 44 readable bytes: not a packet */
	VSOCK_PKT_SPOOFED,   /* src_cid is not the guest's: dropped, never answered */
	VSOCK_PKT_TOO_BIG,   /* len above VSOCK_MAX_PAYLOAD */
	VSOCK_PKT_TRUNCATED, /* len above the bytes that follow the header */
	VSOCK_PKT_BAD_OP,    /* an op this spec does not have */
};

/*
 * Reads the header at the cursor (the chain's device-readable part) and checks it against
 * the rules every packet obeys; the cursor is left at the payload. A packet for another CID
 * or type, or an op out of place, is well-formed here: the connection logic answers it.
 */
enum vsock_pkt_error vsock_pkt_parse(struct iov_cursor *cur, uint64_t guest_cid,
				     struct vsock_hdr *h);
const char *vsock_pkt_error_str(enum vsock_pkt_error e);

/*
 * A host client's first line, without its '\n': "CONNECT <port>", the keyword in any case,
 * one or more spaces, the port a decimal u32 with nothing after it. 0 and *port, or -EINVAL.
 */
int vsock_parse_connect(const char *line, size_t len, uint32_t *port) MUST_CHECK;

#endif
