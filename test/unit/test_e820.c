/* The e820 map the guest sees for several memory sizes. */
#include "core/boot/e820.h"
#include "core/layout.h"
#include "test/unit/testutil.h"

struct want {
	uint64_t addr, size;
	uint32_t type;
};

static void check_map(uint64_t ram, const struct want *w, unsigned n)
{
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_mem m;
	unsigned nr = 0;

	ck_assert_int_eq(guest_mem_create(&m, ram), 0);
	ck_assert_int_eq(e820_build(&m, map, E820_MAX_ENTRIES, &nr), 0);
	ck_assert_uint_eq(nr, n);
	for (unsigned i = 0; i < n; i++) {
		ck_assert_msg(map[i].addr == w[i].addr && map[i].size == w[i].size &&
				      map[i].type == w[i].type,
			      "entry %u: [0x%llx, +0x%llx) type %u", i,
			      (unsigned long long)map[i].addr, (unsigned long long)map[i].size,
			      map[i].type);
	}
	guest_mem_destroy(&m);
}

#define LOW_RAM                                                                                    \
	{                                                                                          \
		0, LAYOUT_EBDA, E820_RAM                                                           \
	}
#define BIOS                                                                                       \
	{                                                                                          \
		LAYOUT_EBDA, MiB(1) - LAYOUT_EBDA, E820_RESERVED                                   \
	}
#define ECAM                                                                                       \
	{                                                                                          \
		LAYOUT_PCIE_ECAM, LAYOUT_PCIE_ECAM_SIZE, E820_RESERVED                             \
	}
#define APIC_TSS                                                                                   \
	{                                                                                          \
		LAYOUT_IOAPIC, LAYOUT_4G - LAYOUT_IOAPIC, E820_RESERVED                            \
	}

START_TEST(default_256m)
{
	const struct want w[] = {LOW_RAM, BIOS, {MiB(1), MiB(255), E820_RAM}, ECAM, APIC_TSS};

	check_map(MiB(256), w, 5);
}
END_TEST

START_TEST(small_guests)
{
	const struct want two[] = {LOW_RAM, BIOS, {MiB(1), MiB(1), E820_RAM}, ECAM, APIC_TSS};
	const struct want one[] = {LOW_RAM, BIOS, ECAM, APIC_TSS};
	const struct want half[] = {{0, KiB(512), E820_RAM}, BIOS, ECAM, APIC_TSS};

	check_map(MiB(2), two, 5);
	check_map(MiB(1), one, 4);
	check_map(KiB(512), half, 4);
}
END_TEST

/* Up to the 32-bit hole everything is low RAM; beyond it, RAM resumes at 4 GiB. */
START_TEST(around_the_hole)
{
	const uint64_t low = LAYOUT_MEM_32BIT_GAP;
	const struct want full[] = {
		LOW_RAM, BIOS, {MiB(1), low - MiB(1), E820_RAM}, ECAM, APIC_TSS};
	const struct want over[] = {LOW_RAM, BIOS,     {MiB(1), low - MiB(1), E820_RAM},
				    ECAM,    APIC_TSS, {LAYOUT_4G, MiB(1), E820_RAM}};
	const struct want big[] = {LOW_RAM, BIOS,     {MiB(1), low - MiB(1), E820_RAM},
				   ECAM,    APIC_TSS, {LAYOUT_4G, GiB(8) - low, E820_RAM}};

	check_map(low, full, 5);
	check_map(low + MiB(1), over, 6);
	check_map(GiB(8), big, 6);
}
END_TEST

/* Sorted, non-overlapping, and the RAM adds up to what the guest has minus the BIOS area. */
START_TEST(invariants)
{
	static const uint64_t sizes[] = {MiB(16), MiB(256), MiB(3000), GiB(4), GiB(16)};

	for (unsigned s = 0; s < ARRAY_SIZE(sizes); s++) {
		struct e820_entry map[E820_MAX_ENTRIES];
		struct guest_mem m;
		uint64_t ram = 0;
		unsigned nr;

		ck_assert_int_eq(guest_mem_create(&m, sizes[s]), 0);
		ck_assert_int_eq(e820_build(&m, map, E820_MAX_ENTRIES, &nr), 0);
		for (unsigned i = 0; i < nr; i++) {
			ck_assert_uint_gt(map[i].size, 0);
			if (i)
				ck_assert_uint_le(map[i - 1].addr + map[i - 1].size, map[i].addr);
			if (map[i].type == E820_RAM) {
				ram += map[i].size;
				ck_assert(guest_mem_valid(&m, map[i].addr, map[i].size));
			}
		}
		ck_assert_uint_eq(ram, sizes[s] - (MiB(1) - LAYOUT_EBDA));
		guest_mem_destroy(&m);
	}
}
END_TEST

START_TEST(too_small_table)
{
	struct e820_entry map[6];
	struct guest_mem m;
	unsigned nr = 99;

	ck_assert_int_eq(guest_mem_create(&m, GiB(8)), 0);
	ck_assert_int_eq(e820_build(&m, map, 5, &nr), -ENOSPC);
	ck_assert_uint_eq(nr, 99);
	ck_assert_int_eq(e820_build(&m, map, 6, &nr), 0);
	ck_assert_uint_eq(nr, 6);
	ck_assert_int_eq(e820_build(&m, map, 0, &nr), -ENOSPC);
	guest_mem_destroy(&m);
}
END_TEST

/* RAM laid over an MMIO window would be a lie to the guest. */
START_TEST(ram_over_mmio_is_refused)
{
	const struct guest_region over_ecam[] = {{.gpa = 0, .size = LAYOUT_PCIE_ECAM + 4096}};
	const struct guest_region over_apic[] = {{.gpa = 0, .size = MiB(16)},
						 {.gpa = LAYOUT_IOAPIC, .size = 4096}};
	struct e820_entry map[E820_MAX_ENTRIES];
	struct guest_mem m;
	unsigned nr;

	ck_assert_int_eq(guest_mem_create_regions(&m, over_ecam, 1), 0);
	ck_assert_int_eq(e820_build(&m, map, E820_MAX_ENTRIES, &nr), -EINVAL);
	guest_mem_destroy(&m);
	ck_assert_int_eq(guest_mem_create_regions(&m, over_apic, 2), 0);
	ck_assert_int_eq(e820_build(&m, map, E820_MAX_ENTRIES, &nr), -EINVAL);
	guest_mem_destroy(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("e820");
	TCase *tc = tcase_create("map");

	tcase_add_test(tc, default_256m);
	tcase_add_test(tc, small_guests);
	tcase_add_test(tc, around_the_hole);
	tcase_add_test(tc, invariants);
	tcase_add_test(tc, too_small_table);
	tcase_add_test(tc, ram_over_mmio_is_refused);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
