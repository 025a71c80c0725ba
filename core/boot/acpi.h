/*
 * ACPI tables for the x86_64 guest: RSDP, XSDT, FADT, FACS, MADT, MCFG and the DSDT (written
 * in ASL, core/boot/dsdt.asl, compiled by iasl at build time). They describe the platform of
 * core/layout.h: one IOAPIC with identity GSI routing, the PCIe host bridge with its ECAM and
 * windows, the ACPI PM block of legacy/acpi_pm.h, the legacy devices. Everything is placed
 * in [LAYOUT_ACPI_RSDP, LAYOUT_ACPI_END), which the e820 map must mark reserved.
 */
#ifndef CROSVM_CORE_BOOT_ACPI_H
#define CROSVM_CORE_BOOT_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

struct guest_mem;
struct logger;

/* xAPIC: APIC ids 0..254 (0xff is the broadcast id). */
#define ACPI_MAX_CPUS 255
/* The MADT IOAPIC id: 0, what KVM's IOAPIC ID register resets to (see acpi.c). */
#define ACPI_IOAPIC_ID 0
/* Highest PCI bus behind the host bridge (LAYOUT_PCIE_ECAM_SIZE / 1 MiB - 1). */
#define ACPI_PCI_LAST_BUS 63

struct acpi_params {
	unsigned nr_cpus; /* 1..ACPI_MAX_CPUS */
	bool has_i8042, has_rtc;
	/* The 64-bit PCI window: page aligned, above 4 GiB and the RAM, below 2^52. */
	uint64_t mmio64_base, mmio64_size;
};

/*
 * Builds all tables into guest memory at LAYOUT_ACPI_RSDP; returns the RSDP address. The
 * whole window is rewritten (zeroes after the last table). -EINVAL for a configuration the
 * tables cannot describe, -ENOSPC if they do not fit in the window, -EFAULT if the window
 * is not guest RAM.
 */
int acpi_build(const struct guest_mem *m, const struct acpi_params *p, uint64_t *rsdp,
	       const struct logger *lg) MUST_CHECK;

/*
 * Writes each table found from the RSDP in guest memory to DIR/<SIG>.dat (RSDP.dat, XSDT.dat,
 * FACP.dat, FACS.dat, APIC.dat, MCFG.dat, DSDT.dat), creating DIR (not its parents) if
 * needed. The tables are read as untrusted input: lengths and addresses are checked and a
 * signature must be 4 characters of [A-Z0-9_] to become a file name.
 */
int acpi_dump(const struct guest_mem *m, uint64_t rsdp, const char *dir,
	      const struct logger *lg) MUST_CHECK;

/* Bits of the DSDT feature word (FEAT in core/boot/dsdt.asl). */
#define ACPI_DSDT_FEAT_RTC   (1u << 0)
#define ACPI_DSDT_FEAT_I8042 (1u << 1)

/* The QWord placeholders in core/boot/dsdt.asl that acpi_build() replaces; keep them in sync. */
#define ACPI_DSDT_PH_FEAT	0x7E3A19C4D2B85F60ULL
#define ACPI_DSDT_PH_MMIO64_MIN 0x3C5A96E100000000ULL
#define ACPI_DSDT_PH_MMIO64_MAX 0x3C5A97D81B2C2FFFULL /* MIN + LEN - 1: iasl checks it */
#define ACPI_DSDT_PH_MMIO64_LEN 0x000000F71B2C3000ULL

/* One QWord placeholder of an AML image and the value that replaces it. */
struct acpi_patch {
	uint64_t placeholder;
	uint64_t value;
};

/*
 * Replaces, in aml[0..len), each placeholder (8 bytes, little-endian) with its value. All of
 * them are located before anything is written, so a value may equal another placeholder.
 * -ENOENT if one is missing, -EEXIST if one occurs more than once (or two overlap); aml is
 * unchanged on error. Does not touch the table checksum.
 */
int acpi_patch_qwords(uint8_t *aml, size_t len, const struct acpi_patch *patches,
		      unsigned nr) MUST_CHECK;

#endif
