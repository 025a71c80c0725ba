/* The GDB remote protocol's framing and payload codings (vcpu/gdb/packet.c). */
#include "test/unit/testutil.h"

#include <stdio.h>
#include <string.h>

#include "vcpu/gdb/packet.h"

/* Feeds a string; returns the last event that was not GDB_RX_NONE (or NONE). */
static enum gdb_rx_event feed(struct gdb_rx *rx, const char *s, size_t n)
{
	enum gdb_rx_event last = GDB_RX_NONE;

	for (size_t i = 0; i < n; i++) {
		enum gdb_rx_event e = gdb_rx_feed(rx, (uint8_t)s[i]);

		if (e != GDB_RX_NONE)
			last = e;
	}
	return last;
}

#define FEED(rx, s) feed(rx, s, strlen(s))

START_TEST(good_packets)
{
	struct gdb_rx rx;

	gdb_rx_init(&rx);
	ck_assert_int_eq(FEED(&rx, "$g#67"), GDB_RX_PACKET);
	ck_assert_str_eq(rx.buf, "g");
	ck_assert_uint_eq(rx.len, 1);
	/* Either case of checksum digit; the empty packet. */
	ck_assert_int_eq(FEED(&rx, "$qSupported:hwbreak+#80"), GDB_RX_PACKET);
	ck_assert_str_eq(rx.buf, "qSupported:hwbreak+");
	ck_assert_int_eq(FEED(&rx, "$#00"), GDB_RX_PACKET);
	ck_assert_uint_eq(rx.len, 0);
	/* Binary payload bytes (even NUL) are kept, and counted in the checksum. */
	{
		const char pkt[] = "$X0,2:\0\x7f#9F";

		ck_assert_int_eq(feed(&rx, pkt, sizeof(pkt) - 1), GDB_RX_PACKET);
		ck_assert_uint_eq(rx.len, 7);
		ck_assert_mem_eq(rx.buf, "X0,2:\0\x7f", 7);
	}
}
END_TEST

START_TEST(events_between_packets)
{
	struct gdb_rx rx;

	gdb_rx_init(&rx);
	ck_assert_int_eq(gdb_rx_feed(&rx, 0x03), GDB_RX_INTERRUPT);
	ck_assert_int_eq(gdb_rx_feed(&rx, '+'), GDB_RX_ACK);
	ck_assert_int_eq(gdb_rx_feed(&rx, '-'), GDB_RX_NAK);
	ck_assert_int_eq(gdb_rx_feed(&rx, 'x'), GDB_RX_GARBAGE);
	ck_assert_int_eq(gdb_rx_feed(&rx, '#'), GDB_RX_GARBAGE);
	/* 0x03 inside a packet is data. */
	ck_assert_int_eq(FEED(&rx, "$\x03#03"), GDB_RX_PACKET);
	ck_assert_uint_eq(rx.len, 1);
}
END_TEST

START_TEST(bad_checksums)
{
	struct gdb_rx rx;

	gdb_rx_init(&rx);
	ck_assert_int_eq(FEED(&rx, "$g#68"), GDB_RX_BAD);
	ck_assert_int_eq(FEED(&rx, "$g#6z"), GDB_RX_BAD);
	/* A bad first digit ends the packet there; the second digit is then garbage. */
	ck_assert_int_eq(gdb_rx_feed(&rx, '$'), GDB_RX_NONE);
	ck_assert_int_eq(gdb_rx_feed(&rx, 'g'), GDB_RX_NONE);
	ck_assert_int_eq(gdb_rx_feed(&rx, '#'), GDB_RX_NONE);
	ck_assert_int_eq(gdb_rx_feed(&rx, 'q'), GDB_RX_BAD);
	ck_assert_int_eq(gdb_rx_feed(&rx, '7'), GDB_RX_GARBAGE);
	/* A '$' inside a packet: the broken one is reported, the new one is read. */
	ck_assert_int_eq(FEED(&rx, "$abc"), GDB_RX_NONE);
	ck_assert_int_eq(gdb_rx_feed(&rx, '$'), GDB_RX_BAD);
	ck_assert_int_eq(FEED(&rx, "g#67"), GDB_RX_PACKET);
	ck_assert_str_eq(rx.buf, "g");
}
END_TEST

START_TEST(oversized)
{
	static char big[GDB_PACKET_MAX + 100];
	struct gdb_rx rx;
	enum gdb_rx_event e;

	gdb_rx_init(&rx);
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(gdb_rx_feed(&rx, '$'), GDB_RX_NONE);
	ck_assert_int_eq(feed(&rx, big, sizeof(big)), GDB_RX_NONE);
	/* Even with the right checksum it is dropped. */
	e = FEED(&rx, "#00");
	ck_assert_int_eq(e, GDB_RX_OVERSIZED);
	ck_assert_int_eq(FEED(&rx, "$g#67"), GDB_RX_PACKET);
	/* Exactly GDB_PACKET_MAX bytes is fine. */
	{
		uint8_t sum = (uint8_t)('a' * GDB_PACKET_MAX);
		char tail[8];

		snprintf(tail, sizeof(tail), "#%02x", sum);
		gdb_rx_feed(&rx, '$');
		feed(&rx, big, GDB_PACKET_MAX);
		ck_assert_int_eq(FEED(&rx, tail), GDB_RX_PACKET);
		ck_assert_uint_eq(rx.len, GDB_PACKET_MAX);
	}
}
END_TEST

START_TEST(framing)
{
	char out[GDB_FRAME_MAX];
	size_t n = gdb_frame("OK", 2, out);

	ck_assert_uint_eq(n, 6);
	ck_assert_mem_eq(out, "$OK#9a", 6);
	n = gdb_frame("", 0, out);
	ck_assert_mem_eq(out, "$#00", 4);
	ck_assert_uint_eq(n, 4);
}
END_TEST

START_TEST(hex)
{
	uint8_t b[4];
	char h[9] = {0};
	const char *p;
	uint64_t v;

	gdb_hex_encode("\x00\xab\x10\xff", 4, h);
	ck_assert_str_eq(h, "00ab10ff");
	ck_assert_int_eq(gdb_hex_decode("00AB10ff", 8, b), 0);
	ck_assert_mem_eq(b, "\x00\xab\x10\xff", 4);
	ck_assert_int_eq(gdb_hex_decode("abc", 3, b), -EINVAL);
	ck_assert_int_eq(gdb_hex_decode("0g", 2, b), -EINVAL);
	p = "ffffffff81000000,4";
	ck_assert_int_eq(gdb_parse_hex(&p, &v), 0);
	ck_assert_uint_eq(v, 0xffffffff81000000ull);
	ck_assert_str_eq(p, ",4");
	p = "10000000000000000";
	ck_assert_int_eq(gdb_parse_hex(&p, &v), -EINVAL);
	p = ",1";
	ck_assert_int_eq(gdb_parse_hex(&p, &v), -EINVAL);
	p = "";
	ck_assert_int_eq(gdb_parse_hex(&p, &v), -EINVAL);
}
END_TEST

START_TEST(binary_escapes)
{
	const uint8_t in[] = {'a', '#', '$', '}', '*', 0, 0x7d ^ 0x20};
	char out[32];
	uint8_t back[32];
	size_t used, n, m;

	n = gdb_escape(in, sizeof(in), out, sizeof(out), &used);
	ck_assert_uint_eq(used, sizeof(in));
	ck_assert_uint_eq(n, sizeof(in) + 4);
	ck_assert_mem_eq(out, "a}\x03}\x04}]}\x0a\0]", n);
	ck_assert_int_eq(gdb_unescape(out, n, back, &m), 0);
	ck_assert_uint_eq(m, sizeof(in));
	ck_assert_mem_eq(back, in, m);
	/* An escape never splits at the end of the room. */
	n = gdb_escape(in, sizeof(in), out, 2, &used);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(used, 1);
	ck_assert_int_eq(gdb_unescape("ab}", 3, back, &m), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gdb_packet");
	TCase *tc = tcase_create("packet");

	tcase_add_test(tc, good_packets);
	tcase_add_test(tc, events_between_packets);
	tcase_add_test(tc, bad_checksums);
	tcase_add_test(tc, oversized);
	tcase_add_test(tc, framing);
	tcase_add_test(tc, hex);
	tcase_add_test(tc, binary_escapes);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
