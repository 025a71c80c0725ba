/*
 * The guest's physical memory map as the BIOS e820 call would report it. Linux reads it from
 * the zero page (boot_params.e820_table) and a PVH guest from hvm_start_info's memmap, which
 * uses the same type numbers.
 */
#ifndef CROSVM_CORE_BOOT_E820_H
#define CROSVM_CORE_BOOT_E820_H

#include <stdint.h>
#include "core/guest_mem.h"

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4
#define E820_UNUSABLE 5

/* The zero page has room for this many entries. */
#define E820_MAX_ENTRIES 128

/* Layout of boot_params.e820_table[] (20 bytes, packed). */
struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));

/*
 * Fills out[0..*nr) with the map of the crosvm x86_64 layout for the RAM in m: RAM
 * [0, 0x9fc00), reserved [0x9fc00, 1 MiB) (EBDA, ACPI tables, BIOS area), RAM from 1 MiB to
 * the end of low RAM, reserved PCIe ECAM, reserved [0xfec00000, 4 GiB) (IOAPIC, LAPIC,
 * identity map/TSS), RAM above 4 GiB. Sorted by address, non-overlapping. -ENOSPC when more
 * than max entries are needed, -EINVAL if a RAM region overlaps a reserved MMIO range.
 */
int e820_build(const struct guest_mem *m, struct e820_entry *out, unsigned max, unsigned *nr);

#endif
