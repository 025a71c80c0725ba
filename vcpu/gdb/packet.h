/*
 * The GDB remote serial protocol's framing: "$payload#cs" packets with a modulo-256 checksum
 * in two hex digits, acknowledged with '+' or '-'; 0x03 outside a packet is an interrupt. The
 * receiver is a byte-at-a-time state machine with a fixed buffer, so any byte stream a client
 * sends (garbage, endless packets, bad checksums) costs bounded memory and ends in an event.
 * Also the payload codings: hex, and binary data with '}' escapes.
 */
#ifndef CROSVM_VCPU_GDB_PACKET_H
#define CROSVM_VCPU_GDB_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

/* Payload bytes a packet may have, both ways (announced as PacketSize). */
#define GDB_PACKET_MAX 0x4000
/* A framed packet: '$', payload, '#', two checksum digits. */
#define GDB_FRAME_MAX (GDB_PACKET_MAX + 4)

#define GDB_INTERRUPT 0x03

enum gdb_rx_event {
	GDB_RX_NONE,	  /* byte taken, nothing complete yet */
	GDB_RX_PACKET,	  /* a packet with a good checksum: buf[0..len), NUL-terminated */
	GDB_RX_BAD,	  /* a packet whose checksum is wrong or not hex: answer '-' */
	GDB_RX_OVERSIZED, /* a packet longer than GDB_PACKET_MAX, dropped: answer '-' */
	GDB_RX_INTERRUPT, /* 0x03 between packets */
	GDB_RX_ACK,	  /* '+' */
	GDB_RX_NAK,	  /* '-': send the last packet again */
	GDB_RX_GARBAGE,	  /* any other byte between packets */
};

struct gdb_rx {
	int state;
	size_t len;
	uint8_t sum;  /* of the payload so far */
	uint8_t csum; /* the received checksum's first digit */
	bool overflow;
	char buf[GDB_PACKET_MAX + 1];
};

void gdb_rx_init(struct gdb_rx *rx);
enum gdb_rx_event gdb_rx_feed(struct gdb_rx *rx, uint8_t c);

/* Frames len payload bytes into out (GDB_FRAME_MAX bytes at least); returns the frame size. */
size_t gdb_frame(const void *payload, size_t len, char *out);

/* Hex digits, lower case, two per byte; out gets 2 * len characters (no NUL). */
void gdb_hex_encode(const void *in, size_t len, char *out);
/* Exactly hexlen (even) hex digits into hexlen / 2 bytes; -EINVAL otherwise. */
int gdb_hex_decode(const char *hex, size_t hexlen, void *out) MUST_CHECK;
/* A hex number at *p (at least one digit, at most 64 bits); *p moves past it. -EINVAL. */
int gdb_parse_hex(const char **p, uint64_t *v) MUST_CHECK;

/*
 * Binary data as the protocol carries it: '#', '$', '}' and '*' become '}' then the byte XOR
 * 0x20. Escapes bytes of in while they fit in cap bytes of out; *used says how many of in.
 */
size_t gdb_escape(const uint8_t *in, size_t len, char *out, size_t cap, size_t *used);
/* Undoes the escapes of len bytes of in into out (len bytes at most); -EINVAL on a lone '}'. */
int gdb_unescape(const char *in, size_t len, uint8_t *out, size_t *outlen) MUST_CHECK;

#endif
