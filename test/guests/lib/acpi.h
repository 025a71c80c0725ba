/*
 * ACPI discovery: the RSDP (from the boot info, else a scan of 0xe0000-0xfffff), the
 * RSDT/XSDT with checksum checks, and what the guests need from FADT, MADT, MCFG and the
 * DSDT's \_S5_ package. Tables come from the VMM and are treated as untrusted: every length
 * and address is checked before use and problems are recorded in errors[].
 */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include "memlayout.h"
#include "util.h"

#define ACPI_MAX_TABLES	 32
#define ACPI_MAX_IOAPICS 4
#define ACPI_MAX_ISOS	 16
#define ACPI_MAX_MCFG	 4
#define ACPI_ERRORS_MAX	 8

#define ACPI_GAS_MEMORY 0
#define ACPI_GAS_IO	1

#define FADT_F_RESET_REG_SUP   (1u << 10)
#define FADT_F_HW_REDUCED_ACPI (1u << 20)

/* MADT interrupt source override flags (MPS INTI flags). */
#define MPS_POLARITY_MASK 0x3
#define MPS_POLARITY_LOW  0x3
#define MPS_TRIGGER_MASK  0xc
#define MPS_TRIGGER_LEVEL 0xc

struct acpi_gas {
	uint8_t space, bit_width, bit_offset, access_size;
	uint64_t addr;
};

struct acpi_table {
	char sig[5];
	uint64_t addr;
	uint32_t len;
	bool csum_ok;
};

struct acpi_cpu {
	uint32_t apic_id;
	uint32_t uid;
	uint32_t flags; /* bit 0 enabled, bit 1 online capable */
	bool x2apic;
};

struct acpi_ioapic {
	uint32_t id, addr, gsi_base;
};

struct acpi_iso {
	uint8_t bus, source;
	uint32_t gsi;
	uint16_t flags;
};

struct acpi_info {
	bool found;
	uint64_t rsdp;
	bool rsdp_from_scan;
	uint8_t revision;
	char oem_id[7];
	bool use_xsdt;
	uint64_t root;

	struct acpi_table tables[ACPI_MAX_TABLES];
	uint32_t ntables;

	/* FADT */
	uint64_t fadt;
	uint32_t fadt_len;
	uint32_t fadt_flags;
	uint16_t sci_int;
	uint8_t century;
	uint16_t iapc_boot_arch;
	struct acpi_gas pm1a_cnt, pm1b_cnt, sleep_ctl, reset_reg;
	uint8_t reset_value;
	uint64_t dsdt;
	uint32_t dsdt_len;
	bool s5_found;
	uint8_t s5_typa, s5_typb;

	/* MADT */
	uint64_t madt;
	uint64_t lapic_addr;
	uint32_t madt_flags;
	struct acpi_cpu cpus[GUEST_MAX_CPUS];
	uint32_t ncpus;
	uint32_t ncpus_dropped; /* more CPUs than GUEST_MAX_CPUS */
	struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
	uint32_t nioapics;
	struct acpi_iso isos[ACPI_MAX_ISOS];
	uint32_t nisos;

	/* MCFG */
	struct {
		uint64_t base;
		uint16_t segment;
		uint8_t bus_start, bus_end;
	} mcfg[ACPI_MAX_MCFG];
	uint32_t nmcfg;

	const char *errors[ACPI_ERRORS_MAX];
	uint32_t nerrors;
};

/* Finds and parses the tables. -ENOENT without an RSDP; other problems go to errors[]. */
int acpi_init(struct acpi_info *a, uint64_t rsdp_hint);
/* The table with this signature (first match), or NULL. */
const struct acpi_table *acpi_find(const struct acpi_info *a, const char *sig);
/* Writes val to a generic address (I/O or memory space, 8/16/32/64-bit). */
int acpi_gas_write(const struct acpi_gas *r, uint64_t val);
/* Looks up the override for an ISA IRQ: fills gsi and MPS flags (identity if none). */
void acpi_isa_irq(const struct acpi_info *a, uint8_t irq, uint32_t *gsi, uint16_t *flags);
/* Parses the first element pair of a \_S5_ package in an AML blob: 0 or -ENOENT. */
int acpi_parse_s5(const uint8_t *aml, uint32_t len, uint8_t *typa, uint8_t *typb);

#endif
