#include "vcpu/gdb/packet.h"

enum { RX_IDLE, RX_DATA, RX_CSUM1, RX_CSUM2 };

void gdb_rx_init(struct gdb_rx *rx)
{
	rx->state = RX_IDLE;
	rx->len = 0;
	rx->sum = 0;
	rx->csum = 0;
	rx->overflow = false;
	rx->buf[0] = '\0';
}

static void start_packet(struct gdb_rx *rx)
{
	rx->state = RX_DATA;
	rx->len = 0;
	rx->sum = 0;
	rx->overflow = false;
}

enum gdb_rx_event gdb_rx_feed(struct gdb_rx *rx, uint8_t c)
{
	int v;

	switch (rx->state) {
	case RX_IDLE:
		switch (c) {
		case '$':
			start_packet(rx);
			return GDB_RX_NONE;
		case GDB_INTERRUPT:
			return GDB_RX_INTERRUPT;
		case '+':
			return GDB_RX_ACK;
		case '-':
			return GDB_RX_NAK;
		default:
			return GDB_RX_GARBAGE;
		}
	case RX_DATA:
		if (c == '#') {
			rx->state = RX_CSUM1;
			return GDB_RX_NONE;
		}
		if (c == '$') {
			/* A frame start inside a packet: what came before was a broken packet. */
			start_packet(rx);
			return GDB_RX_BAD;
		}
		rx->sum = (uint8_t)(rx->sum + c);
		if (rx->len >= GDB_PACKET_MAX) {
			rx->overflow = true; /* keep counting until '#', keep nothing */
			return GDB_RX_NONE;
		}
		rx->buf[rx->len++] = (char)c;
		return GDB_RX_NONE;
	case RX_CSUM1:
		v = hex_digit(c);
		rx->csum = (uint8_t)(v < 0 ? 0 : v);
		rx->state = v < 0 ? RX_IDLE : RX_CSUM2;
		return v < 0 ? GDB_RX_BAD : GDB_RX_NONE;
	case RX_CSUM2:
		rx->state = RX_IDLE;
		v = hex_digit(c);
		if (rx->overflow) {
			rx->len = 0;
			rx->buf[0] = '\0';
			return GDB_RX_OVERSIZED;
		}
		if (v < 0 || (uint8_t)(rx->csum << 4 | v) != rx->sum)
			return GDB_RX_BAD;
		rx->buf[rx->len] = '\0';
		return GDB_RX_PACKET;
	default:
		gdb_rx_init(rx);
		return GDB_RX_GARBAGE;
	}
}

static const char hexdig[] = "0123456789abcdef";

size_t gdb_frame(const void *payload, size_t len, char *out)
{
	const uint8_t *p = payload;
	uint8_t sum = 0;

	if (len > GDB_PACKET_MAX)
		len = GDB_PACKET_MAX;
	out[0] = '$';
	for (size_t i = 0; i < len; i++) {
		out[1 + i] = (char)p[i];
		sum = (uint8_t)(sum + p[i]);
	}
	out[1 + len] = '#';
	out[2 + len] = hexdig[sum >> 4];
	out[3 + len] = hexdig[sum & 15];
	return len + 4;
}

void gdb_hex_encode(const void *in, size_t len, char *out)
{
	const uint8_t *p = in;

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hexdig[p[i] >> 4];
		out[2 * i + 1] = hexdig[p[i] & 15];
	}
}

int gdb_hex_decode(const char *hex, size_t hexlen, void *out)
{
	uint8_t *o = out;

	if (hexlen % 2)
		return -EINVAL;
	for (size_t i = 0; i < hexlen / 2; i++) {
		int hi = hex_digit((uint8_t)hex[2 * i]), lo = hex_digit((uint8_t)hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		o[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int gdb_parse_hex(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	int d;

	if (hex_digit((uint8_t)*s) < 0)
		return -EINVAL;
	for (; (d = hex_digit((uint8_t)*s)) >= 0; s++) {
		if (x >> 60)
			return -EINVAL;
		x = x << 4 | (uint64_t)d;
	}
	*v = x;
	*p = s;
	return 0;
}

static bool needs_escape(uint8_t c)
{
	return c == '#' || c == '$' || c == '}' || c == '*';
}

size_t gdb_escape(const uint8_t *in, size_t len, char *out, size_t cap, size_t *used)
{
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		if (needs_escape(in[i])) {
			if (o + 2 > cap)
				break;
			out[o++] = '}';
			out[o++] = (char)(in[i] ^ 0x20);
		} else {
			if (o + 1 > cap)
				break;
			out[o++] = (char)in[i];
		}
	}
	*used = i;
	return o;
}

int gdb_unescape(const char *in, size_t len, uint8_t *out, size_t *outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (in[i] == '}') {
			if (++i >= len)
				return -EINVAL;
			out[o++] = (uint8_t)(in[i] ^ 0x20);
		} else {
			out[o++] = (uint8_t)in[i];
		}
	}
	*outlen = o;
	return 0;
}
