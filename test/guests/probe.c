/*
 * probe: a guest that touches what nothing claims, the way a probing OS or a hostile guest
 * does, and checks the VMM shrugs it off. It reads every I/O port, writes 0xff to the ports
 * no device owns (and to the harmless debug ports), and reads and writes MMIO addresses
 * outside RAM and outside every device (the PCI hole above the BARs, past ECAM, a missing
 * HPET, ECAM of absent buses and functions). Unclaimed reads must give all ones.
 *
 * It never writes the ports that end or disturb the VM on purpose: the i8042 command and
 * data ports, PCI configuration and reset (0xcf8-0xcff), the ACPI PM block (S5), pvpanic,
 * COM1 (its console), the CMOS index/data, and the PIC/PIT ports KVM owns.
 *
 * PASS: probe_ports_read, probe_ports_write, probe_unclaimed_reads_ones, probe_mmio.
 */
#include "lib/console.h"
#include "lib/io.h"

struct range {
	uint16_t lo, hi; /* inclusive */
};

/* Ports a write must not touch (see above). */
static const struct range keep_out[] = {
	{0x20, 0x21},	{0x40, 0x43},	{0x60, 0x64},	{0x70, 0x71},
	{0x92, 0x92},	{0xa0, 0xa1},	{0x3f8, 0x3ff}, {0x4d0, 0x4d1},
	{0x505, 0x505}, {0x600, 0x61f}, {0xcf8, 0xcff},
};

/* Port ranges no device of a crosvm-like VM claims: reads there must give 0xff. */
static const struct range unclaimed[] = {
	{0x100, 0x1ff},
	{0x700, 0x7ff},
	{0x1000, 0x10ff},
	{0xf000, 0xf0ff},
};

/* MMIO addresses outside RAM and outside every device. */
static const uint64_t holes[] = {
	0xe0000000ull, /* the 32-bit PCI window, far above the first BARs */
	0xf3fff000ull, /* its last page */
	0xf8000000ull, /* just past the 64 MiB of ECAM */
	0xfed00000ull, /* where an HPET would be: there is none */
	0xfe000000ull,
};

static bool kept_out(uint32_t port)
{
	for (unsigned i = 0; i < sizeof(keep_out) / sizeof(keep_out[0]); i++)
		if (port >= keep_out[i].lo && port <= keep_out[i].hi)
			return true;
	return false;
}

int guest_main(struct guest *g)
{
	uint32_t sum = 0, bad = 0;

	/* Every port, read: nothing may end the VM. */
	for (uint32_t port = 0; port <= 0xffff; port++)
		if (port < 0x3f8 || port > 0x3ff)
			sum += inb((uint16_t)port);
	report_info(g, "probe.read_sum=0x%x", sum);
	report_pass(g, "probe_ports_read");

	for (unsigned i = 0; i < sizeof(unclaimed) / sizeof(unclaimed[0]); i++) {
		for (uint32_t p = unclaimed[i].lo; p <= unclaimed[i].hi; p++) {
			bad += inb((uint16_t)p) != 0xff;
			bad += inw((uint16_t)(p & ~1u)) != 0xffff;
			bad += inl((uint16_t)(p & ~3u)) != 0xffffffffu;
		}
	}
	if (bad)
		report_fail(g, "probe_unclaimed_reads_ones", "%u reads were not all ones", bad);
	else
		report_pass(g, "probe_unclaimed_reads_ones");

	/* Writes of all ones to everything but the keep-out list (every 3rd port: speed). */
	for (uint32_t port = 0; port <= 0xffff; port += 3)
		if (!kept_out(port))
			outb((uint16_t)port, 0xff);
	report_pass(g, "probe_ports_write");

	bad = 0;
	for (unsigned i = 0; i < sizeof(holes) / sizeof(holes[0]); i++) {
		mmio_write32(holes[i], 0xdeadbeef);
		mmio_write8(holes[i] + 3, 0x5a);
		bad += mmio_read32(holes[i]) != 0xffffffffu;
		bad += mmio_read8(holes[i] + 1) != 0xff;
	}
	/* ECAM of a bus and a function that do not exist: all ones, writes ignored. */
	mmio_write32(0xf4000000ull + (63ull << 20) + 0x10, 0x12345678);
	bad += mmio_read32(0xf4000000ull + (63ull << 20)) != 0xffffffffu;
	bad += mmio_read32(0xf4000000ull + (1ull << 15) + (7ull << 12)) != 0xffffffffu;
	if (bad)
		report_fail(g, "probe_mmio", "%u unclaimed MMIO reads were not all ones", bad);
	else
		report_pass(g, "probe_mmio");
	return 0;
}
