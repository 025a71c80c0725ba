/*
 * What the loader told the guest, copied out of low memory at start from either protocol:
 * the Linux zero page (struct boot_params) or the PVH struct hvm_start_info. Every pointer
 * in them is checked against the identity map before it is followed; what was wrong is
 * recorded in errors[] for the guest to report.
 */
#ifndef GUEST_BOOTINFO_H
#define GUEST_BOOTINFO_H

#include "util.h"

#define BOOT_CMDLINE_MAX 2048 /* including the NUL */
#define BOOT_E820_MAX	 128
#define BOOT_SETUP_MAX	 32
#define BOOT_ERRORS_MAX	 8

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4
#define E820_UNUSABLE 5

#define SETUP_DTB      2
#define SETUP_RNG_SEED 9

#define HVM_START_MAGIC 0x336ec578
#define FDT_MAGIC	0xd00dfeed

struct e820_ent {
	uint64_t addr, size;
	uint32_t type;
};

struct boot_info {
	uint32_t proto;	    /* GUEST_BOOT_PVH or GUEST_BOOT_LINUX64 */
	uint64_t info_addr; /* hvm_start_info or boot_params */

	char cmdline[BOOT_CMDLINE_MAX];
	uint32_t cmdline_len;
	uint64_t cmdline_addr;

	struct e820_ent e820[BOOT_E820_MAX];
	uint32_t e820_count;

	bool has_initrd;
	uint64_t initrd_addr, initrd_size;

	uint64_t rsdp; /* 0: not given */

	/* Zero page only. */
	uint8_t loader_type;
	uint16_t boot_version;
	uint32_t setup_types[BOOT_SETUP_MAX];
	uint32_t setup_count;
	bool has_rng_seed;
	uint32_t rng_seed_len;
	bool has_dtb;
	uint32_t dtb_magic;

	/* PVH only. */
	uint32_t pvh_version;
	uint32_t pvh_nr_modules;

	const char *errors[BOOT_ERRORS_MAX];
	uint32_t nerrors;
};

/* Fills bi from the boot structure at addr. -EINVAL if the structure itself is unusable. */
int bootinfo_parse(struct boot_info *bi, uint32_t proto, uint64_t addr);
/* Sum of the sizes of E820_RAM entries. */
uint64_t bootinfo_mem_total(const struct boot_info *bi);
/* True when entries of the given type cover all of [addr, addr+len). */
bool bootinfo_range_is(const struct boot_info *bi, uint64_t addr, uint64_t len, uint32_t type);
const char *e820_type_name(uint32_t type);

#endif
