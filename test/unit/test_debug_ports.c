#include "test/unit/testutil.h"

#include "core/device.h"
#include "core/layout.h"
#include "core/log.h"
#include "legacy/debug_ports.h"

static const struct logger quiet = {.level = LOG_LVL_ERROR, .to_stderr = true, .tag = "test"};

static int find(const struct port_range *r, unsigned nr, uint16_t port)
{
	for (unsigned i = 0; i < nr; i++)
		if (port >= r[i].base && port - r[i].base < r[i].len)
			return (int)i;
	return -1;
}

START_TEST(claims_only_free_ports)
{
	/* KVM's irqchip and PIT, and the other devices of the platform. */
	static const struct port_range taken[] = {
		{0x20, 2},
		{0xa0, 2},
		{0x40, 4},
		{0x61, 1},
		{0x4d0, 2},
		{0x60, 1},
		{0x64, 1},
		{LAYOUT_PORT_CMOS, 2},
		{0x3f8, 8},
		{0x2f8, 8},
		{0x3e8, 8},
		{0x2e8, 8},
		{LAYOUT_PORT_PVPANIC, 1},
		{LAYOUT_PORT_PCI_CONFIG, 8},
		{LAYOUT_PORT_ACPI_PM, 22},
	};
	static const uint16_t wanted[] = {0x80, 0x87, 0x92, 0xed, 0x3c0, 0x3df, 0x402};
	const struct port_range *r;
	struct device *d;
	unsigned nr;

	ck_assert_int_eq(debug_ports_create(&quiet, &d, &r, &nr), 0);
	for (unsigned i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
		ck_assert_int_ge(find(r, nr, wanted[i]), 0);
	for (unsigned i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		for (unsigned p = taken[i].base; p < taken[i].base + taken[i].len; p++)
			ck_assert_int_lt(find(r, nr, (uint16_t)p), 0);
	for (unsigned i = 0; i < nr; i++)
		for (unsigned j = i + 1; j < nr; j++)
			ck_assert(!ranges_overlap(r[i].base, r[i].len, r[j].base, r[j].len));
	device_destroy(d);
}
END_TEST

START_TEST(harmless_answers)
{
	const struct port_range *r;
	struct device *d;
	unsigned nr;
	int post, a20, vga;
	uint8_t v;
	uint16_t w = 0;

	ck_assert_int_eq(debug_ports_create(&quiet, &d, &r, &nr), 0);
	post = find(r, nr, 0x80);
	a20 = find(r, nr, 0x92);
	vga = find(r, nr, 0x3c0);
	for (uint8_t i = 0; i < 4; i++)
		ck_assert_int_eq(device_io(d, (unsigned)post, 0, &i, 1, true), 0);
	ck_assert_int_eq(device_io(d, (unsigned)post, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0xff);
	/* Port 0x92: A20 is on and stays as written; the fast-reset bit does nothing. */
	ck_assert_int_eq(device_io(d, (unsigned)a20, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0x02);
	v = 0x03;
	ck_assert_int_eq(device_io(d, (unsigned)a20, 0, &v, 1, true), 0);
	ck_assert_int_eq(device_io(d, (unsigned)a20, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0x02);
	v = 0x00;
	ck_assert_int_eq(device_io(d, (unsigned)a20, 0, &v, 1, true), 0);
	ck_assert_int_eq(device_io(d, (unsigned)a20, 0, &v, 1, false), 0);
	ck_assert_uint_eq(v, 0x00);
	/* No VGA: every register floats high, whatever the access width. */
	ck_assert_int_eq(device_io(d, (unsigned)vga, 0x1e, &w, 2, false), 0);
	ck_assert_uint_eq(w, 0xffff);
	ck_assert_int_eq(device_io(d, (unsigned)vga, 0x1f, &w, 2, false), -EINVAL);
	ck_assert_int_eq(device_io(d, nr, 0, &v, 1, false), -EINVAL);
	device_destroy(d);
}
END_TEST

static Suite *debug_ports_suite(void)
{
	Suite *s = suite_create("debug_ports");
	TCase *tc = tcase_create("debug_ports");

	tcase_add_test(tc, claims_only_free_ports);
	tcase_add_test(tc, harmless_answers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return testutil_run(debug_ports_suite());
}
