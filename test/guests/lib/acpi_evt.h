/*
 * The ACPI fixed-event and general-purpose-event registers an OS services on an SCI: PM1
 * status/enable (power and sleep buttons) and GPE0 status/enable, located from the FADT
 * (X_ blocks when present, else the legacy 32-bit ones). The FADT comes from the VMM and is
 * checked: lengths must be even and the blocks inside I/O space or the identity map.
 */
#ifndef GUEST_ACPI_EVT_H
#define GUEST_ACPI_EVT_H

#include "guest.h"

#define ACPI_PM1_PWRBTN (1u << 8)
#define ACPI_PM1_SLPBTN (1u << 9)
#define ACPI_PM1_SCI_EN (1u << 0)
#define ACPI_GPE_MAX	128 /* GPE0 status bytes we look at: 16 */

struct acpi_evt {
	struct acpi_gas pm1a_evt, pm1b_evt; /* status at +0, enable at +len/2 */
	uint8_t pm1_len;
	struct acpi_gas gpe0; /* status bytes, then enable bytes */
	uint8_t gpe0_len;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
};

/* Reads the FADT. -ENOENT without one, -EINVAL for a hardware-reduced or malformed one. */
int acpi_evt_init(const struct guest *g, struct acpi_evt *e);
/* Sets SCI_EN through SMI_CMD if the firmware left ACPI mode off; *was_on tells which. */
int acpi_evt_enable_acpi(struct guest *g, const struct acpi_evt *e, bool *was_on);
uint16_t acpi_evt_pm1_status(const struct acpi_evt *e);
/* Write-1-to-clear. */
void acpi_evt_pm1_clear(const struct acpi_evt *e, uint16_t bits);
void acpi_evt_pm1_enable(const struct acpi_evt *e, uint16_t bits);
uint16_t acpi_evt_pm1_enabled(const struct acpi_evt *e);
/* Number of GPE0 events (8 per status byte). */
unsigned acpi_evt_gpe_count(const struct acpi_evt *e);
uint8_t acpi_evt_gpe_status(const struct acpi_evt *e, unsigned byte);
void acpi_evt_gpe_clear(const struct acpi_evt *e, unsigned byte, uint8_t bits);
void acpi_evt_gpe_enable(const struct acpi_evt *e, unsigned byte, uint8_t bits);
uint8_t acpi_evt_gpe_enabled(const struct acpi_evt *e, unsigned byte);
/* Reads a GAS register (I/O or memory) of width 8, 16 or 32 at byte offset off. */
uint32_t acpi_evt_read(const struct acpi_gas *r, uint32_t off, unsigned width);
void acpi_evt_write(const struct acpi_gas *r, uint32_t off, unsigned width, uint32_t v);

#endif
