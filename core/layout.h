/*
 * The x86_64 guest physical memory layout. It follows crosvm's so that a guest which
 * boots under crosvm finds everything where it expects (reference/crosvm.md, section 6).
 */
#ifndef CROSVM_CORE_LAYOUT_H
#define CROSVM_CORE_LAYOUT_H

#include "core/util.h"

/* Low memory used by the boot path. */
#define LAYOUT_GDT	      0x500ULL
#define LAYOUT_IDT	      0x540ULL	/* after the 5-entry GDT */
#define LAYOUT_PVH_START_INFO 0x6000ULL /* hvm_start_info + memmap + module list */
#define LAYOUT_ZERO_PAGE      0x7000ULL /* struct boot_params */
#define LAYOUT_BOOT_STACK     0x8000ULL /* initial RSP (stack grows down below it) */
#define LAYOUT_PML4	      0x9000ULL /* PML4 0x9000, PDPT 0xa000, PDs 0xb000..0xefff */
#define LAYOUT_PDPT	      0xa000ULL
#define LAYOUT_PD	      0xb000ULL /* 4 pages of 2 MiB entries: identity map of 4 GiB */
#define LAYOUT_CMDLINE	      0x20000ULL
#define LAYOUT_CMDLINE_MAX    0x800ULL	 /* 2 KiB, as crosvm */
#define LAYOUT_SETUP_DATA     0x20800ULL /* setup_data list, up to LAYOUT_SETUP_DATA_END */
#define LAYOUT_SETUP_DATA_END 0x9e800ULL
#define LAYOUT_EBDA	      0x9fc00ULL /* conventional memory ends here (640 KiB) */
#define LAYOUT_LOW_RAM_END    0xa0000ULL
#define LAYOUT_ACPI_RSDP      0xe0000ULL /* RSDP and the ACPI tables after it */
#define LAYOUT_ACPI_END	      0x100000ULL
#define LAYOUT_HIGH_MEM_START 0x100000ULL /* 1 MiB */
#define LAYOUT_KERNEL_DEFAULT 0x200000ULL /* where crosvm loads a kernel without a better hint */

/* The 32-bit hole: guest RAM stops at 0xd0000000 and resumes at 4 GiB. */
#define LAYOUT_MEM_32BIT_GAP	0xd0000000ULL
#define LAYOUT_4G		0x100000000ULL
#define LAYOUT_PCI_MMIO32_START 0xd0000000ULL
#define LAYOUT_PCI_MMIO32_END	0xf4000000ULL
#define LAYOUT_PCIE_ECAM	0xf4000000ULL
#define LAYOUT_PCIE_ECAM_SIZE	0x4000000ULL /* 64 MiB: buses 0..63 */
#define LAYOUT_IOAPIC		0xfec00000ULL
#define LAYOUT_LAPIC		0xfee00000ULL
#define LAYOUT_IDENTITY_MAP	0xfeffc000ULL /* KVM_SET_IDENTITY_MAP_ADDR (one page) */
#define LAYOUT_TSS		0xfeffd000ULL /* KVM_SET_TSS_ADDR (three pages) */
/* 64-bit PCI window: starts at the first 1 GiB boundary above the high RAM. */
#define LAYOUT_PCI_MMIO64_SIZE GiB(64)

/* Legacy I/O ports. */
#define LAYOUT_PORT_COM1       0x3f8
#define LAYOUT_PORT_COM2       0x2f8
#define LAYOUT_PORT_COM3       0x3e8
#define LAYOUT_PORT_COM4       0x2e8
#define LAYOUT_PORT_I8042      0x60  /* 0x60 and 0x64 */
#define LAYOUT_PORT_CMOS       0x70  /* 0x70, 0x71 */
#define LAYOUT_PORT_ACPI_PM    0x600 /* PM1a_EVT (4), PM1a_CNT (2), GPE0 (16): see acpi_pm */
#define LAYOUT_PORT_PVPANIC    0x505
#define LAYOUT_PORT_PCI_CONFIG 0xcf8 /* 0xcf8..0xcff, with 0xcf9 the reset control */

/* Interrupts. */
#define LAYOUT_IRQ_COM1	     4
#define LAYOUT_IRQ_COM2	     3
#define LAYOUT_IRQ_RTC	     8
#define LAYOUT_IRQ_SCI	     5	/* ACPI SCI (crosvm uses 5): level-triggered, shareable */
#define LAYOUT_IRQ_PCI_FIRST 16 /* INTA..INTD of PCI slots swizzle over GSI 16..19 */
#define LAYOUT_IRQ_PCI_COUNT 4
#define LAYOUT_IOAPIC_PINS   24
#define LAYOUT_GSI_MSI_FIRST 24 /* GSIs above the IOAPIC pins carry MSI routes */

struct guest_mem;
/* The 64-bit PCI MMIO window for this guest: the first 1 GiB boundary above RAM (and 4 GiB). */
void layout_mmio64(const struct guest_mem *m, uint64_t *base, uint64_t *size);

#endif
