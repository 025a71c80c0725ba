/* The zero page a Linux guest reads at its 64-bit entry, and the setup_data list. */
#include "core/boot/boot_params.h"
#include "core/layout.h"
#include "test/unit/testutil.h"

#include <stdlib.h>
#include <string.h>

#define RAM MiB(256)

static struct boot_params read_zero_page(const struct guest_mem *m)
{
	struct boot_params bp;

	ck_assert_int_eq(guest_mem_read(m, LAYOUT_ZERO_PAGE, &bp, sizeof(bp)), 0);
	return bp;
}

/* What kernel_load reports for a current bzImage at 16 MiB. */
static struct kernel_info bz_info(void)
{
	struct kernel_info ki = {.kind = KERNEL_BZIMAGE,
				 .entry = MiB(16) + 0x200,
				 .start = MiB(16),
				 .end = MiB(48),
				 .has_setup_header = true,
				 .initrd_addr_max = 0x7fffffff,
				 .cmdline_size = 2047};

	ki.hdr = (struct setup_header){.setup_sects = 39,
				       .syssize = 0xd8220,
				       .boot_flag = BOOT_FLAG_MAGIC,
				       .jump = 0x6aeb,
				       .header = BOOT_HDRS_MAGIC,
				       .version = 0x020f,
				       .loadflags = BOOT_LOADED_HIGH | BOOT_CAN_USE_HEAP,
				       .heap_end_ptr = 0x1234,
				       .initrd_addr_max = 0x7fffffff,
				       .kernel_alignment = MiB(2),
				       .relocatable_kernel = 1,
				       .xloadflags = BOOT_XLF_KERNEL_64,
				       .cmdline_size = 2047,
				       .pref_address = MiB(16),
				       .init_size = MiB(32)};
	return ki;
}

static struct kernel_info elf_info(void)
{
	return (struct kernel_info){.kind = KERNEL_ELF64,
				    .entry = MiB(16),
				    .start = MiB(16),
				    .end = MiB(62),
				    .initrd_addr_max = LOADER_INITRD_ADDR_MAX_DEFAULT,
				    .cmdline_size = LOADER_CMDLINE_SIZE_DEFAULT};
}

START_TEST(bzimage_header_and_loader_fields)
{
	struct kernel_info ki = bz_info();
	const struct boot_config bc = {.cmdline = "console=ttyS0 panic=-1",
				       .initrd_gpa = 0x0f000000,
				       .initrd_size = 0x123456,
				       .acpi_rsdp = LAYOUT_ACPI_RSDP};
	struct e820_entry map[E820_MAX_ENTRIES];
	struct boot_params bp;
	struct guest_mem m;
	char cmdline[64];
	unsigned nr;

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	/* Stale bytes everywhere: every field not written must come out zero. */
	ck_assert_int_eq(guest_mem_fill(&m, LAYOUT_ZERO_PAGE, 0xee, 4096), 0);
	ck_assert_int_eq(boot_params_write(&m, &ki, &bc, NULL), 0);
	bp = read_zero_page(&m);
	ck_assert_uint_eq(bp.hdr.boot_flag, BOOT_FLAG_MAGIC);
	ck_assert_uint_eq(bp.hdr.header, BOOT_HDRS_MAGIC);
	ck_assert_uint_eq(bp.hdr.version, 0x020f);
	ck_assert_uint_eq(bp.hdr.setup_sects, 39);
	ck_assert_uint_eq(bp.hdr.syssize, 0xd8220);
	ck_assert_uint_eq(bp.hdr.kernel_alignment, MiB(2));
	ck_assert_uint_eq(bp.hdr.init_size, MiB(32));
	ck_assert_uint_eq(bp.hdr.type_of_loader, 0xff);
	/* No heap is set up, so the kernel must not be told there is one. */
	ck_assert_uint_eq(bp.hdr.loadflags & BOOT_CAN_USE_HEAP, 0);
	ck_assert_uint_eq(bp.hdr.loadflags & BOOT_LOADED_HIGH, BOOT_LOADED_HIGH);
	ck_assert_uint_eq(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	ck_assert_uint_eq(bp.ext_cmd_line_ptr, 0);
	ck_assert_uint_eq(bp.hdr.ramdisk_image, 0x0f000000);
	ck_assert_uint_eq(bp.hdr.ramdisk_size, 0x123456);
	ck_assert_uint_eq(bp.ext_ramdisk_image, 0);
	ck_assert_uint_eq(bp.ext_ramdisk_size, 0);
	ck_assert_uint_eq(bp.acpi_rsdp_addr, LAYOUT_ACPI_RSDP);
	ck_assert_uint_eq(bp.hdr.setup_data, 0);
	ck_assert_uint_eq(bp.sentinel, 0);
	ck_assert_uint_eq(bp.alt_mem_k, 0);
	ck_assert_int_eq(guest_mem_read(&m, LAYOUT_CMDLINE, cmdline, sizeof(cmdline)), 0);
	ck_assert_str_eq(cmdline, "console=ttyS0 panic=-1");

	ck_assert_int_eq(e820_build(&m, map, E820_MAX_ENTRIES, &nr), 0);
	ck_assert_uint_eq(bp.e820_entries, nr);
	ck_assert_mem_eq(bp.e820_table, map, nr * sizeof(map[0]));
	ck_assert_uint_eq(bp.e820_table[0].addr, 0);
	ck_assert_uint_eq(bp.e820_table[0].type, E820_RAM);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(elf_gets_a_synthesized_header)
{
	struct kernel_info ki = elf_info();
	const struct boot_config bc = {.cmdline = "root=/dev/vda"};
	struct boot_params bp;
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(boot_params_write(&m, &ki, &bc, NULL), 0);
	bp = read_zero_page(&m);
	ck_assert_uint_eq(bp.hdr.boot_flag, BOOT_FLAG_MAGIC);
	ck_assert_uint_eq(bp.hdr.header, BOOT_HDRS_MAGIC);
	ck_assert_uint_eq(bp.hdr.version, 0x020f);
	ck_assert_uint_eq(bp.hdr.type_of_loader, 0xff);
	ck_assert_uint_eq(bp.hdr.kernel_alignment, MiB(16));
	ck_assert_uint_eq(bp.hdr.cmdline_size, 2047);
	ck_assert_uint_eq(bp.hdr.initrd_addr_max, 0x37ffffff);
	ck_assert_uint_eq(bp.hdr.loadflags, BOOT_LOADED_HIGH);
	ck_assert_uint_eq(bp.hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	ck_assert_uint_eq(bp.hdr.ramdisk_image, 0);
	ck_assert_uint_eq(bp.hdr.ramdisk_size, 0);
	ck_assert_uint_eq(bp.acpi_rsdp_addr, 0);
	ck_assert_uint_gt(bp.e820_entries, 0);
	guest_mem_destroy(&m);
}
END_TEST

/* An initrd above 4 GiB is split between ramdisk_* and ext_ramdisk_*. */
START_TEST(initrd_above_4g_uses_ext_fields)
{
	struct kernel_info ki = bz_info();
	const struct boot_config bc = {
		.cmdline = "", .initrd_gpa = 0x123456000ULL, .initrd_size = 0x100000001ULL};
	struct boot_params bp;
	struct guest_mem m;

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ck_assert_int_eq(boot_params_write(&m, &ki, &bc, NULL), 0);
	bp = read_zero_page(&m);
	ck_assert_uint_eq(bp.hdr.ramdisk_image, 0x23456000);
	ck_assert_uint_eq(bp.ext_ramdisk_image, 0x1);
	ck_assert_uint_eq(bp.hdr.ramdisk_size, 0x1);
	ck_assert_uint_eq(bp.ext_ramdisk_size, 0x1);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(cmdline_must_fit_the_kernel_limit)
{
	struct kernel_info ki = bz_info();
	struct guest_mem m;
	char line[4096], got[16];

	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	ki.hdr.cmdline_size = ki.cmdline_size = 10;
	ck_assert_int_eq(
		boot_params_write(&m, &ki, &(struct boot_config){.cmdline = "0123456789"}, NULL),
		0);
	ck_assert_int_eq(guest_mem_read(&m, LAYOUT_CMDLINE, got, 11), 0);
	ck_assert_str_eq(got, "0123456789");
	ck_assert_int_eq(
		boot_params_write(&m, &ki, &(struct boot_config){.cmdline = "0123456789a"}, NULL),
		-E2BIG);
	/* A kernel that allows more still gets at most the 2 KiB crosvm reserves. */
	ki.cmdline_size = 4095;
	memset(line, 'x', sizeof(line));
	line[2047] = '\0';
	ck_assert_int_eq(boot_params_write(&m, &ki, &(struct boot_config){.cmdline = line}, NULL),
			 0);
	line[2047] = 'x';
	line[2048] = '\0';
	ck_assert_int_eq(boot_params_write(&m, &ki, &(struct boot_config){.cmdline = line}, NULL),
			 -E2BIG);
	/* No command line at all is an empty one. */
	ck_assert_int_eq(boot_params_write(&m, &ki, &(struct boot_config){0}, NULL), 0);
	ck_assert_int_eq(guest_mem_read(&m, LAYOUT_CMDLINE, got, 1), 0);
	ck_assert_int_eq(got[0], '\0');
	guest_mem_destroy(&m);
}
END_TEST

/* Walks the list the way the kernel does and checks each entry stays in the window. */
static unsigned walk(const struct guest_mem *m, uint64_t head, uint32_t *types, uint32_t *lens,
		     uint64_t *data, unsigned max)
{
	unsigned n = 0;

	for (uint64_t at = head; at; n++) {
		struct setup_data sd;

		ck_assert_uint_lt(n, max);
		ck_assert(IS_ALIGNED(at, 8));
		ck_assert_uint_ge(at, LAYOUT_SETUP_DATA);
		ck_assert_int_eq(guest_mem_read(m, at, &sd, sizeof(sd)), 0);
		ck_assert_uint_le(at + sizeof(sd) + sd.len, LAYOUT_SETUP_DATA_END);
		types[n] = sd.type;
		lens[n] = sd.len;
		data[n] = at + sizeof(sd);
		at = sd.next;
	}
	return n;
}

START_TEST(setup_data_chain)
{
	struct kernel_info ki = bz_info();
	uint8_t dtb[13], seed[32], got[32];
	uint32_t types[4], lens[4];
	uint64_t data[4];
	struct boot_params bp;
	struct guest_mem m;

	for (unsigned i = 0; i < sizeof(dtb); i++)
		dtb[i] = (uint8_t)(0xd0 + i);
	for (unsigned i = 0; i < sizeof(seed); i++)
		seed[i] = (uint8_t)(0x50 + i);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	/* Stale links in the window must not leak into the list. */
	ck_assert_int_eq(guest_mem_fill(&m, LAYOUT_SETUP_DATA, 0x20, 4096), 0);
	ck_assert_int_eq(boot_params_write(&m, &ki,
					   &(struct boot_config){.cmdline = "x",
								 .dtb = dtb,
								 .dtb_size = sizeof(dtb),
								 .rng_seed = seed,
								 .rng_seed_size = sizeof(seed)},
					   NULL),
			 0);
	bp = read_zero_page(&m);
	ck_assert_uint_eq(bp.hdr.setup_data, LAYOUT_SETUP_DATA);
	ck_assert_uint_eq(walk(&m, bp.hdr.setup_data, types, lens, data, 4), 2);
	ck_assert_uint_eq(types[0], SETUP_DTB);
	ck_assert_uint_eq(lens[0], sizeof(dtb));
	ck_assert_int_eq(guest_mem_read(&m, data[0], got, sizeof(dtb)), 0);
	ck_assert_mem_eq(got, dtb, sizeof(dtb));
	ck_assert_uint_eq(types[1], SETUP_RNG_SEED);
	ck_assert_uint_eq(lens[1], sizeof(seed));
	ck_assert_int_eq(guest_mem_read(&m, data[1], got, sizeof(seed)), 0);
	ck_assert_mem_eq(got, seed, sizeof(seed));

	/* The seed alone (crosvm always passes one). */
	ck_assert_int_eq(boot_params_write(&m, &ki,
					   &(struct boot_config){.rng_seed = seed,
								 .rng_seed_size = sizeof(seed)},
					   NULL),
			 0);
	bp = read_zero_page(&m);
	ck_assert_uint_eq(walk(&m, bp.hdr.setup_data, types, lens, data, 4), 1);
	ck_assert_uint_eq(types[0], SETUP_RNG_SEED);
	guest_mem_destroy(&m);
}
END_TEST

START_TEST(setup_data_must_fit_the_window)
{
	const size_t window = LAYOUT_SETUP_DATA_END - LAYOUT_SETUP_DATA;
	struct kernel_info ki = bz_info();
	uint8_t seed[32] = {1};
	uint8_t *dtb = calloc(1, window);
	struct guest_mem m;
	uint8_t after[8], zero[8] = {0};

	ck_assert_ptr_nonnull(dtb);
	ck_assert_int_eq(guest_mem_create(&m, RAM), 0);
	/* Exactly full. */
	ck_assert_int_eq(
		boot_params_write(&m, &ki,
				  &(struct boot_config){.dtb = dtb, .dtb_size = window - 16}, NULL),
		0);
	ck_assert_int_eq(
		boot_params_write(&m, &ki,
				  &(struct boot_config){.dtb = dtb, .dtb_size = window - 15}, NULL),
		-E2BIG);
	ck_assert_int_eq(guest_mem_read(&m, LAYOUT_SETUP_DATA_END, after, sizeof(after)), 0);
	ck_assert_mem_eq(after, zero, sizeof(after));
	/* The DTB fits but leaves no room for the seed. */
	ck_assert_int_eq(boot_params_write(&m, &ki,
					   &(struct boot_config){.dtb = dtb,
								 .dtb_size = window - 40,
								 .rng_seed = seed,
								 .rng_seed_size = sizeof(seed)},
					   NULL),
			 -E2BIG);
	ck_assert_int_eq(boot_params_write(&m, &ki,
					   &(struct boot_config){.dtb = dtb, .dtb_size = SIZE_MAX},
					   NULL),
			 -E2BIG);
	guest_mem_destroy(&m);
	free(dtb);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("boot_params");
	TCase *tc = tcase_create("zero_page");

	tcase_add_test(tc, bzimage_header_and_loader_fields);
	tcase_add_test(tc, elf_gets_a_synthesized_header);
	tcase_add_test(tc, initrd_above_4g_uses_ext_fields);
	tcase_add_test(tc, cmdline_must_fit_the_kernel_limit);
	tcase_add_test(tc, setup_data_chain);
	tcase_add_test(tc, setup_data_must_fit_the_window);
	suite_add_tcase(s, tc);
	return testutil_run(s);
}
