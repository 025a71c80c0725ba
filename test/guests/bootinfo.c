/*
 * bootinfo: reports what the loader handed over (protocol, command line, memory map,
 * initrd with its CRC-32, zero-page details, RSDP) and checks the memory map makes sense;
 * then what the boot CPU says about itself (lib/cpuinfo.h: CPUID brand, features, caches,
 * the MTRRs the VMM set).
 *
 * Command line keys: bootinfo.crc_max=<bytes> (largest initrd to checksum, default 4 MiB:
 * the emulated CPU needs about 7 instructions per byte).
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/cpuinfo.h"
#include "lib/crc32.h"
#include "lib/fmt.h"
#include "lib/guest.h"

#define CRC_MAX_DEFAULT MiB(4)

/* True when no two non-empty entries overlap (whatever their order). */
static bool e820_disjoint(const struct boot_info *bi)
{
	for (uint32_t i = 0; i < bi->e820_count; i++) {
		const struct e820_ent *a = &bi->e820[i];

		if (a->addr + a->size < a->addr)
			return false;
		for (uint32_t j = i + 1; j < bi->e820_count; j++) {
			const struct e820_ent *b = &bi->e820[j];

			if (a->size && b->size && a->addr < b->addr + b->size &&
			    b->addr < a->addr + a->size)
				return false;
		}
	}
	return true;
}

static void report_e820(struct guest *g)
{
	const struct boot_info *bi = &g->boot;
	bool sorted = true;

	for (uint32_t i = 0; i < bi->e820_count; i++) {
		const struct e820_ent *e = &bi->e820[i];

		report_info(g, "e820.%u=0x%lx,0x%lx,%u", i, e->addr, e->size, e->type);
		if (i && bi->e820[i - 1].addr + bi->e820[i - 1].size > e->addr)
			sorted = false;
	}
	report_info(g, "e820_count=%u", bi->e820_count);
	/* Linux sorts the map itself, so order is a fact to report, not a requirement. */
	report_info(g, "e820_sorted=%s", sorted ? "yes" : "no");
	report_info(g, "mem_total=%lu", bootinfo_mem_total(bi));
	report_check(g, bi->e820_count > 0, "e820_present", "the loader gave no memory map");
	report_check(g, e820_disjoint(bi), "e820_disjoint", "memory map entries overlap");
	report_check(g, bootinfo_range_is(bi, MiB(1), MiB(15), E820_RAM), "e820_low_ram",
		     "[1 MiB, 16 MiB) is not all RAM");
	report_check(g,
		     bootinfo_range_is(bi, g->image_start, g->image_end - g->image_start, E820_RAM),
		     "image_in_ram", "the guest image [0x%lx, 0x%lx) is not in RAM", g->image_start,
		     g->image_end);
}

static void report_initrd(struct guest *g)
{
	const struct boot_info *bi = &g->boot;
	uint64_t max = cmdline_u64(bi->cmdline, "bootinfo.crc_max", CRC_MAX_DEFAULT);
	uint64_t a = bi->initrd_addr, n = bi->initrd_size;

	if (!bi->has_initrd) {
		report_info(g, "initrd=none");
		return;
	}
	if (!phys_range_ok(a, n)) {
		report_info(g, "initrd=0x%lx,%lu,unmapped", a, n);
		report_fail(g, "initrd_mapped", "initrd lies beyond the first 4 GiB");
		return;
	}
	if (n > max)
		report_info(g, "initrd=0x%lx,%lu,skipped", a, n);
	else
		report_info(g, "initrd=0x%lx,%lu,%08x", a, n, crc32_update(0, phys_to_ptr(a), n));
	report_check(g, bootinfo_range_is(bi, a, n, E820_RAM), "initrd_in_ram",
		     "initrd [0x%lx, 0x%lx) is not in RAM", a, a + n);
	report_check(g, a >= g->image_end || a + n <= g->image_start, "initrd_no_overlap",
		     "initrd overlaps the guest image");
}

static void report_zero_page(struct guest *g)
{
	const struct boot_info *bi = &g->boot;
	char list[BOOT_SETUP_MAX * 11 + 1];
	size_t pos = 0;

	report_info(g, "loader_type=0x%02x", bi->loader_type);
	report_info(g, "boot_version=0x%04x", bi->boot_version);
	for (uint32_t i = 0; i < bi->setup_count; i++)
		pos += (size_t)fmt_snprintf(list + pos, sizeof(list) - pos, "%s%u", i ? "," : "",
					    bi->setup_types[i]);
	report_info(g, "setup_data=%s", bi->setup_count ? list : "none");
	report_info(g, "rng_seed_len=%u", bi->has_rng_seed ? bi->rng_seed_len : 0);
	if (bi->has_dtb)
		report_info(g, "dtb_magic=0x%08x", bi->dtb_magic);
}

int guest_main(struct guest *g)
{
	const struct boot_info *bi = &g->boot;
	static const char pvh[] = "pvh", linux64[] = "linux64";
	char esc[4 * BOOT_CMDLINE_MAX + 1];

	report_info(g, "boot=%s", bi->proto == GUEST_BOOT_PVH ? pvh : linux64);
	con_escape(esc, sizeof(esc), bi->cmdline);
	report_info(g, "cmdline=%s", esc);
	report_e820(g);
	report_initrd(g);
	if (bi->proto == GUEST_BOOT_LINUX64)
		report_zero_page(g);
	else
		report_info(g, "pvh_version=%u", bi->pvh_version);
	if (g->have_acpi) {
		report_info(g, "rsdp=0x%lx", g->acpi.rsdp);
		report_info(g, "rsdp_source=%s", g->acpi.rsdp_from_scan ? "scan" : "bootinfo");
	} else {
		report_info(g, "rsdp=none");
	}
	for (uint32_t i = 0; i < bi->nerrors; i++)
		report_fail(g, "bootinfo", "%s", bi->errors[i]);
	for (uint32_t i = 0; i < g->acpi.nerrors; i++)
		report_fail(g, "acpi", "%s", g->acpi.errors[i]);
	report_check(g, g->have_acpi, "acpi_rsdp", "no RSDP in the boot info or the BIOS area");
	cpuinfo_report(g);
	return 0;
}
