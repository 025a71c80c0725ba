#include "bootinfo.h"
#include "memlayout.h"
#include "str.h"

/* struct boot_params offsets (Documentation/arch/x86/zero-page.rst, boot.rst). */
#define BP_ACPI_RSDP	    0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMDLINE	    0x0c8
#define BP_E820_ENTRIES	    0x1e8
#define BP_HDR_VERSION	    0x206
#define BP_TYPE_OF_LOADER   0x210
#define BP_RAMDISK_IMAGE    0x218
#define BP_RAMDISK_SIZE	    0x21c
#define BP_CMD_LINE_PTR	    0x228
#define BP_SETUP_DATA	    0x250
#define BP_E820_TABLE	    0x2d0
#define BP_SIZE		    0x1000
#define BP_E820_ENTRY_SIZE  20

/* struct hvm_start_info offsets (xen/include/public/arch-x86/hvm/start_info.h). */
#define HVM_MAGIC	   0
#define HVM_VERSION	   4
#define HVM_NR_MODULES	   12
#define HVM_MODLIST	   16
#define HVM_CMDLINE	   24
#define HVM_RSDP	   32
#define HVM_MEMMAP	   40
#define HVM_MEMMAP_ENTRIES 48
#define HVM_SIZE_V1	   56
#define HVM_MODLIST_ENTRY  32
#define HVM_MEMMAP_ENTRY   24

#define SETUP_DATA_HDR 16

static uint8_t rd8(uint64_t a)
{
	return *(const volatile uint8_t *)phys_to_ptr(a);
}

static uint16_t rd16(uint64_t a)
{
	return *(const volatile uint16_t *)phys_to_ptr(a);
}

static uint32_t rd32(uint64_t a)
{
	return *(const volatile uint32_t *)phys_to_ptr(a);
}

static uint64_t rd64(uint64_t a)
{
	return *(const volatile uint64_t *)phys_to_ptr(a);
}

static void add_error(struct boot_info *bi, const char *msg)
{
	if (bi->nerrors < BOOT_ERRORS_MAX)
		bi->errors[bi->nerrors++] = msg;
}

/* Copies a NUL-terminated command line of at most BOOT_CMDLINE_MAX-1 characters. */
static void copy_cmdline(struct boot_info *bi, uint64_t addr)
{
	uint32_t n = 0;

	bi->cmdline_addr = addr;
	if (!addr)
		return;
	if (!phys_range_ok(addr, 1)) {
		add_error(bi, "cmdline address is outside the first 4 GiB");
		return;
	}
	for (; n < BOOT_CMDLINE_MAX - 1 && phys_range_ok(addr + n, 1); n++) {
		char c = (char)rd8(addr + n);

		if (!c)
			break;
		bi->cmdline[n] = c;
	}
	bi->cmdline[n] = '\0';
	bi->cmdline_len = n;
	if (n == BOOT_CMDLINE_MAX - 1 && phys_range_ok(addr + n, 1) && rd8(addr + n))
		add_error(bi, "cmdline is not terminated within 2047 bytes");
}

static void add_e820(struct boot_info *bi, uint64_t addr, uint64_t size, uint32_t type)
{
	if (bi->e820_count >= BOOT_E820_MAX) {
		add_error(bi, "more memory map entries than the guest keeps");
		return;
	}
	bi->e820[bi->e820_count++] = (struct e820_ent){addr, size, type};
}

static void walk_setup_data(struct boot_info *bi, uint64_t next)
{
	uint32_t count = 0;

	for (; next; count++) {
		uint32_t type, len;

		if (count == BOOT_SETUP_MAX) {
			add_error(bi, "setup_data list too long or looping");
			return;
		}
		if (!phys_range_ok(next, SETUP_DATA_HDR)) {
			add_error(bi, "setup_data entry outside the first 4 GiB");
			return;
		}
		type = rd32(next + 8);
		len = rd32(next + 12);
		if (!phys_range_ok(next + SETUP_DATA_HDR, len)) {
			add_error(bi, "setup_data payload outside the first 4 GiB");
			return;
		}
		bi->setup_types[bi->setup_count++] = type;
		if (type == SETUP_RNG_SEED) {
			bi->has_rng_seed = true;
			bi->rng_seed_len = len;
		} else if (type == SETUP_DTB && len >= 4) {
			uint32_t be = rd32(next + SETUP_DATA_HDR);

			bi->has_dtb = true;
			bi->dtb_magic = __builtin_bswap32(be);
		}
		next = rd64(next);
	}
}

static int parse_zero_page(struct boot_info *bi, uint64_t bp)
{
	uint64_t cmd, img, size;
	uint32_t n;

	if (!bp || !phys_range_ok(bp, BP_SIZE))
		return -EINVAL;
	cmd = rd32(bp + BP_CMD_LINE_PTR) | ((uint64_t)rd32(bp + BP_EXT_CMDLINE) << 32);
	copy_cmdline(bi, cmd);

	n = rd8(bp + BP_E820_ENTRIES);
	if (n > BOOT_E820_MAX) {
		add_error(bi, "e820_entries is larger than the zero page table");
		n = BOOT_E820_MAX;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t e = bp + BP_E820_TABLE + (uint64_t)i * BP_E820_ENTRY_SIZE;

		add_e820(bi, rd64(e), rd64(e + 8), rd32(e + 16));
	}

	img = rd32(bp + BP_RAMDISK_IMAGE) | ((uint64_t)rd32(bp + BP_EXT_RAMDISK_IMG) << 32);
	size = rd32(bp + BP_RAMDISK_SIZE) | ((uint64_t)rd32(bp + BP_EXT_RAMDISK_SIZE) << 32);
	if (img && size) {
		bi->has_initrd = true;
		bi->initrd_addr = img;
		bi->initrd_size = size;
	}
	bi->rsdp = rd64(bp + BP_ACPI_RSDP);
	bi->loader_type = rd8(bp + BP_TYPE_OF_LOADER);
	bi->boot_version = rd16(bp + BP_HDR_VERSION);
	walk_setup_data(bi, rd64(bp + BP_SETUP_DATA));
	return 0;
}

static int parse_pvh(struct boot_info *bi, uint64_t si)
{
	uint32_t n;

	if (!si || !phys_range_ok(si, HVM_SIZE_V1) || rd32(si + HVM_MAGIC) != HVM_START_MAGIC)
		return -EINVAL;
	bi->pvh_version = rd32(si + HVM_VERSION);
	copy_cmdline(bi, rd64(si + HVM_CMDLINE));
	bi->rsdp = rd64(si + HVM_RSDP);

	bi->pvh_nr_modules = rd32(si + HVM_NR_MODULES);
	if (bi->pvh_nr_modules) {
		uint64_t mod = rd64(si + HVM_MODLIST);

		if (!phys_range_ok(mod, HVM_MODLIST_ENTRY)) {
			add_error(bi, "PVH module list outside the first 4 GiB");
		} else {
			bi->has_initrd = true;
			bi->initrd_addr = rd64(mod);
			bi->initrd_size = rd64(mod + 8);
		}
	}

	if (bi->pvh_version < 1) {
		add_error(bi, "PVH start info version 0 has no memory map");
		return 0;
	}
	n = rd32(si + HVM_MEMMAP_ENTRIES);
	if (n) {
		uint64_t map = rd64(si + HVM_MEMMAP);

		if (n > BOOT_E820_MAX) {
			add_error(bi, "PVH memmap has more entries than the guest keeps");
			n = BOOT_E820_MAX;
		}
		if (!phys_range_ok(map, (uint64_t)n * HVM_MEMMAP_ENTRY)) {
			add_error(bi, "PVH memmap outside the first 4 GiB");
			return 0;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint64_t e = map + (uint64_t)i * HVM_MEMMAP_ENTRY;

			add_e820(bi, rd64(e), rd64(e + 8), rd32(e + 16));
		}
	}
	return 0;
}

int bootinfo_parse(struct boot_info *bi, uint32_t proto, uint64_t addr)
{
	memset(bi, 0, sizeof(*bi));
	bi->proto = proto;
	bi->info_addr = addr;
	if (proto == GUEST_BOOT_PVH)
		return parse_pvh(bi, addr);
	if (proto == GUEST_BOOT_LINUX64)
		return parse_zero_page(bi, addr);
	return -EINVAL;
}

uint64_t bootinfo_mem_total(const struct boot_info *bi)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < bi->e820_count; i++) {
		if (bi->e820[i].type == E820_RAM)
			total += bi->e820[i].size;
	}
	return total;
}

bool bootinfo_range_is(const struct boot_info *bi, uint64_t addr, uint64_t len, uint32_t type)
{
	uint64_t cur = addr, end = addr + len;

	if (end < addr)
		return false;
	/* Adjacent entries may split the range; each pass moves cur past one of them. */
	for (uint32_t pass = 0; cur < end && pass <= bi->e820_count; pass++) {
		for (uint32_t i = 0; i < bi->e820_count; i++) {
			const struct e820_ent *e = &bi->e820[i];

			if (e->type == type && cur >= e->addr && cur - e->addr < e->size) {
				cur = e->addr + e->size < e->addr ? UINT64_MAX : e->addr + e->size;
				break;
			}
		}
	}
	return cur >= end;
}

const char *e820_type_name(uint32_t type)
{
	switch (type) {
	case E820_RAM:
		return "ram";
	case E820_RESERVED:
		return "reserved";
	case E820_ACPI:
		return "acpi";
	case E820_NVS:
		return "nvs";
	case E820_UNUSABLE:
		return "unusable";
	default:
		return "other";
	}
}
