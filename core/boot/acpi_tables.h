/*
 * The binary layout of the ACPI tables the VMM builds (ACPI 6.5, chapter 5.2). Every
 * structure is packed and its size checked at compile time, because a guest parses these
 * bytes at fixed offsets. Multi-byte fields are little-endian, as is the host.
 */
#ifndef CROSVM_CORE_BOOT_ACPI_TABLES_H
#define CROSVM_CORE_BOOT_ACPI_TABLES_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_PACKED __attribute__((packed))

/* Generic Address Structure (5.2.3.2). */
struct acpi_gas {
	uint8_t space_id;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t address;
} ACPI_PACKED;

#define ACPI_GAS_SPACE_MEMORY 0
#define ACPI_GAS_SPACE_IO     1
#define ACPI_GAS_ACCESS_BYTE  1
#define ACPI_GAS_ACCESS_WORD  2
#define ACPI_GAS_ACCESS_DWORD 3

/* Root System Description Pointer (5.2.5.3). */
struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision; /* 2: ACPI 2.0 and later, has the XSDT */
	uint32_t rsdt_address;
	uint32_t length;
	uint64_t xsdt_address;
	uint8_t ext_checksum; /* over the whole structure */
	uint8_t reserved[3];
} ACPI_PACKED;

#define ACPI_RSDP_SIGNATURE "RSD PTR "
#define ACPI_RSDP_V1_LEN    20

/* System Description Table Header (5.2.6). */
struct acpi_header {
	char signature[4];
	uint32_t length; /* of the whole table, header included */
	uint8_t revision;
	uint8_t checksum; /* the whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} ACPI_PACKED;

/* Extended System Description Table (5.2.8): the header, then 64-bit table addresses. */
struct acpi_xsdt {
	struct acpi_header h;
	uint64_t entry[];
} ACPI_PACKED;

/* Fixed ACPI Description Table (5.2.9), revision 6. */
struct acpi_fadt {
	struct acpi_header h;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} ACPI_PACKED;

#define ACPI_FADT_REVISION	 6
#define ACPI_FADT_MINOR_REVISION 3 /* ACPI 6.3, what iasl 20200925 knows */

/* FADT flags (5.2.9, table 5.10). */
#define ACPI_FADT_F_WBINVD	  (1u << 0)
#define ACPI_FADT_F_PROC_C1	  (1u << 2)
#define ACPI_FADT_F_PWR_BUTTON	  (1u << 4) /* set: the power button is NOT a fixed feature */
#define ACPI_FADT_F_SLP_BUTTON	  (1u << 5) /* set: the sleep button is NOT a fixed feature */
#define ACPI_FADT_F_FIX_RTC	  (1u << 6) /* set: no RTC_STS in PM1 */
#define ACPI_FADT_F_RESET_REG_SUP (1u << 10)
#define ACPI_FADT_F_HW_REDUCED	  (1u << 20)

/* IA-PC boot architecture flags (5.2.9.3). */
#define ACPI_IAPC_LEGACY_DEVICES  (1u << 0)
#define ACPI_IAPC_8042		  (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT (1u << 2)
#define ACPI_IAPC_MSI_NOT_SUPP	  (1u << 3)
#define ACPI_IAPC_CMOS_RTC_ABSENT (1u << 5)

/* C2/C3 latencies above these limits mean "not supported". */
#define ACPI_FADT_NO_C2_LATENCY 101
#define ACPI_FADT_NO_C3_LATENCY 1001

/* Firmware ACPI Control Structure (5.2.10): 64 bytes, 64-byte aligned, no checksum. */
struct acpi_facs {
	char signature[4]; /* "FACS" */
	uint32_t length;
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} ACPI_PACKED;

#define ACPI_FACS_VERSION 2
#define ACPI_FACS_ALIGN	  64

/* Multiple APIC Description Table (5.2.12). */
struct acpi_madt {
	struct acpi_header h;
	uint32_t lapic_address;
	uint32_t flags;
} ACPI_PACKED;

#define ACPI_MADT_REVISION	 5
#define ACPI_MADT_PCAT_COMPAT	 (1u << 0)
#define ACPI_MADT_TYPE_LAPIC	 0
#define ACPI_MADT_TYPE_IOAPIC	 1
#define ACPI_MADT_TYPE_ISO	 2
#define ACPI_MADT_TYPE_LAPIC_NMI 4
#define ACPI_MADT_LAPIC_ENABLED	 (1u << 0)

/* MPS INTI flags of an interrupt source override or NMI source (table 5.26). */
#define ACPI_MPS_POLARITY_HIGH (1u << 0)
#define ACPI_MPS_POLARITY_LOW  (3u << 0)
#define ACPI_MPS_TRIGGER_EDGE  (1u << 2)
#define ACPI_MPS_TRIGGER_LEVEL (3u << 2)

/* Processor UID that means "all processors" in a Local APIC NMI structure. */
#define ACPI_MADT_ALL_PROCESSORS 0xff

struct acpi_madt_lapic {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;
} ACPI_PACKED;

struct acpi_madt_ioapic {
	uint8_t type;
	uint8_t length;
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} ACPI_PACKED;

struct acpi_madt_iso {
	uint8_t type;
	uint8_t length;
	uint8_t bus; /* 0: ISA */
	uint8_t source;
	uint32_t gsi;
	uint16_t flags;
} ACPI_PACKED;

struct acpi_madt_lapic_nmi {
	uint8_t type;
	uint8_t length;
	uint8_t processor_uid;
	uint16_t flags;
	uint8_t lint;
} ACPI_PACKED;

/* PCI Express memory-mapped configuration space table (PCI Firmware Spec 3.3, 4.1.2). */
struct acpi_mcfg {
	struct acpi_header h;
	uint8_t reserved[8];
} ACPI_PACKED;

struct acpi_mcfg_alloc {
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus;
	uint8_t end_bus;
	uint32_t reserved;
} ACPI_PACKED;

_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");
_Static_assert(sizeof(struct acpi_header) == 36, "table header size");
_Static_assert(sizeof(struct acpi_xsdt) == 36, "XSDT header size");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 size");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "FADT RESET_REG offset");
_Static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "FADT minor version offset");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT offset");
_Static_assert(offsetof(struct acpi_fadt, x_gpe0_blk) == 220, "FADT X_GPE0_BLK offset");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "FADT vendor offset");
_Static_assert(sizeof(struct acpi_facs) == 64, "FACS size");
_Static_assert(offsetof(struct acpi_facs, version) == 32, "FACS version offset");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT header size");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "MADT Local APIC size");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "MADT I/O APIC size");
_Static_assert(sizeof(struct acpi_madt_iso) == 10, "MADT interrupt source override size");
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT Local APIC NMI size");
_Static_assert(sizeof(struct acpi_mcfg) == 44, "MCFG header size");
_Static_assert(sizeof(struct acpi_mcfg_alloc) == 16, "MCFG allocation size");

#endif
