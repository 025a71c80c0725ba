/* hvm_start_info for PVH guests: the fields and the memory map, read back from guest memory. */
#include "core/boot/e820.h"
#include "core/layout.h"
#include "core/boot/pvh.h"
#include "test/unit/testutil.h"

#include <string.h>

static struct hvm_start_info read_si(const struct guest_mem *m, uint64_t at)
{
	struct hvm_start_info si;

	ck_assert_int_eq(guest_mem_read(m, at, &si, sizeof(si)), 0);
	return si;
}

START_TEST(start_info_fields)
{
	const struct boot_config bc = {.cmdline = "console=ttyS0",
				       .initrd_gpa = 0xc000000,
				       .initrd_size = 0x2345,
				       .acpi_rsdp = LAYOUT_ACPI_RSDP};
	struct hvm_modlist_entry mod;
	struct hvm_start_info si;
	struct guest_mem m;
	uint64_t at = 0;
	char cmdline[32];

	ck_assert_int_eq(guest_mem_create(&m, MiB(256)), 0);
	ck_assert_int_eq(guest_mem_fill(&m, LAYOUT_PVH_START_INFO, 0xee, 4096), 0);
	ck_assert_int_eq(pvh_write(&m, &bc, &at), 0);
	ck_assert_uint_eq(at, LAYOUT_PVH_START_INFO);
	si = read_si(&m, at);
	ck_assert_uint_eq(si.magic, 0x336ec578);
	ck_assert_uint_eq(si.version, 1);
	ck_assert_uint_eq(si.flags, 0);
	ck_assert_uint_eq(si.rsdp_paddr, LAYOUT_ACPI_RSDP);
	ck_assert_uint_eq(si.reserved, 0);
	ck_assert_uint_eq(si.cmdline_paddr, LAYOUT_CMDLINE);
	ck_assert_int_eq(guest_mem_read(&m, si.cmdline_paddr, cmdline, sizeof(cmdline)), 0);
	ck_assert_str_eq(cmdline, "console=ttyS0");
	ck_assert_uint_eq(si.nr_modules, 1);
	ck_assert_int_eq(guest_mem_read(&m, si.modlist_paddr, &mod, sizeof(mod)), 0);
	ck_assert_uint_eq(mod.paddr, 0xc000000);
	ck_assert_uint_eq(mod.size, 0x2345);
	ck_assert_uint_eq(mod.cmdline_paddr, 0);
	ck_assert_uint_eq(mod.reserved, 0);
	guest_mem_destroy(&m);
}
END_TEST

/* The memory map is the e820 map, and all of it lies in the page before the zero page. */
START_TEST(memmap_matches_e820)
{
	static const uint64_t sizes[] = {MiB(256), GiB(6)};

	for (unsigned s = 0; s < ARRAY_SIZE(sizes); s++) {
		struct e820_entry e820[E820_MAX_ENTRIES];
		struct hvm_memmap_table_entry map[E820_MAX_ENTRIES];
		struct hvm_start_info si;
		struct guest_mem m;
		uint64_t at;
		unsigned nr;

		ck_assert_int_eq(guest_mem_create(&m, sizes[s]), 0);
		ck_assert_int_eq(pvh_write(&m, &(struct boot_config){.cmdline = ""}, &at), 0);
		si = read_si(&m, at);
		ck_assert_int_eq(e820_build(&m, e820, E820_MAX_ENTRIES, &nr), 0);
		ck_assert_uint_eq(si.memmap_entries, nr);
		ck_assert_uint_ge(si.memmap_paddr, at + sizeof(si));
		ck_assert_uint_le(si.memmap_paddr + nr * sizeof(map[0]), LAYOUT_ZERO_PAGE);
		ck_assert_int_eq(guest_mem_read(&m, si.memmap_paddr, map, nr * sizeof(map[0])), 0);
		for (unsigned i = 0; i < nr; i++) {
			ck_assert_uint_eq(map[i].addr, e820[i].addr);
			ck_assert_uint_eq(map[i].size, e820[i].size);
			ck_assert_uint_eq(map[i].type, e820[i].type);
			ck_assert_uint_eq(map[i].reserved, 0);
		}
		ck_assert_uint_eq(map[nr - 1].type, sizes[s] > GiB(4) ? E820_RAM : E820_RESERVED);
		guest_mem_destroy(&m);
	}
}
END_TEST

START_TEST(no_initrd_no_module)
{
	struct hvm_start_info si;
	struct guest_mem m;
	uint64_t at;

	ck_assert_int_eq(guest_mem_create(&m, MiB(64)), 0);
	ck_assert_int_eq(guest_mem_fill(&m, LAYOUT_PVH_START_INFO, 0xee, 4096), 0);
	ck_assert_int_eq(pvh_write(&m, &(struct boot_config){0}, &at), 0);
	si = read_si(&m, at);
	ck_assert_uint_eq(si.nr_modules, 0);
	ck_assert_uint_eq(si.modlist_paddr, 0);
	ck_assert_uint_eq(si.rsdp_paddr, 0);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(cmdline_too_long)
{
	char line[LAYOUT_CMDLINE_MAX + 1];
	struct guest_mem m;
	uint64_t at = 0;

	memset(line, 'y', sizeof(line));
	line[LAYOUT_CMDLINE_MAX - 1] = '\0';
	ck_assert_int_eq(guest_mem_create(&m, MiB(64)), 0);
	ck_assert_int_eq(pvh_write(&m, &(struct boot_config){.cmdline = line}, &at), 0);
	line[LAYOUT_CMDLINE_MAX - 1] = 'y';
	line[LAYOUT_CMDLINE_MAX] = '\0';
	at = 0;
	ck_assert_int_eq(pvh_write(&m, &(struct boot_config){.cmdline = line}, &at), -E2BIG);
	ck_assert_uint_eq(at, 0);
	guest_mem_destroy(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pvh");
	TCase *tc = tcase_create("start_info");

	tcase_add_test(tc, start_info_fields);
	tcase_add_test(tc, memmap_matches_e820);
	tcase_add_test(tc, no_initrd_no_module);
	tcase_add_test(tc, cmdline_too_long);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
