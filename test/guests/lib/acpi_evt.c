#include "acpi_evt.h"
#include "io.h"

/* FADT offsets (ACPI 6.5, 5.2.9). */
#define FADT_SCI_INT	 46
#define FADT_SMI_CMD	 48
#define FADT_ACPI_ENABLE 52
#define FADT_PM1A_EVT	 56
#define FADT_PM1B_EVT	 60
#define FADT_GPE0_BLK	 80
#define FADT_PM1_EVT_LEN 88
#define FADT_GPE0_LEN	 92
#define FADT_X_PM1A_EVT	 148
#define FADT_X_PM1B_EVT	 160
#define FADT_X_GPE0	 220
#define GAS_LEN		 12
#define SCI_EN_POLLS	 100000

static uint8_t rd8(uint64_t a)
{
	return *(const volatile uint8_t *)phys_to_ptr(a);
}

static uint32_t rd32(uint64_t a)
{
	return *(const volatile uint32_t *)phys_to_ptr(a);
}

static struct acpi_gas read_gas(uint64_t p)
{
	return (struct acpi_gas){.space = rd8(p),
				 .bit_width = rd8(p + 1),
				 .bit_offset = rd8(p + 2),
				 .access_size = rd8(p + 3),
				 .addr = *(const volatile uint64_t *)phys_to_ptr(p + 4)};
}

/* The X_ block when the FADT is long enough and fills it in, else the legacy port. */
static struct acpi_gas block(const struct guest *g, uint32_t x_off, uint32_t legacy_off)
{
	uint64_t f = g->acpi.fadt;

	if (g->acpi.fadt_len >= x_off + GAS_LEN) {
		struct acpi_gas x = read_gas(f + x_off);

		if (x.addr)
			return x;
	}
	return (struct acpi_gas){.space = ACPI_GAS_IO, .addr = rd32(f + legacy_off)};
}

static bool block_ok(const struct acpi_gas *r, uint32_t len)
{
	if (!r->addr || !len)
		return false;
	if (r->space == ACPI_GAS_IO)
		return r->addr <= 0xffff && len <= 0x10000 - r->addr;
	return r->space == ACPI_GAS_MEMORY && phys_range_ok(r->addr, len);
}

int acpi_evt_init(const struct guest *g, struct acpi_evt *e)
{
	uint64_t f = g->acpi.fadt;

	*e = (struct acpi_evt){0};
	if (!g->have_acpi || !f || g->acpi.fadt_len < FADT_GPE0_LEN + 1)
		return -ENOENT;
	if (g->acpi.fadt_flags & FADT_F_HW_REDUCED_ACPI)
		return -EINVAL;
	e->sci_int = *(const volatile uint16_t *)phys_to_ptr(f + FADT_SCI_INT);
	e->smi_cmd = rd32(f + FADT_SMI_CMD);
	e->acpi_enable = rd8(f + FADT_ACPI_ENABLE);
	e->pm1_len = rd8(f + FADT_PM1_EVT_LEN);
	e->gpe0_len = rd8(f + FADT_GPE0_LEN);
	e->pm1a_evt = block(g, FADT_X_PM1A_EVT, FADT_PM1A_EVT);
	e->pm1b_evt = block(g, FADT_X_PM1B_EVT, FADT_PM1B_EVT);
	e->gpe0 = block(g, FADT_X_GPE0, FADT_GPE0_BLK);
	if (e->pm1_len < 4 || (e->pm1_len & 1) || !block_ok(&e->pm1a_evt, e->pm1_len))
		return -EINVAL;
	if (e->pm1b_evt.addr && !block_ok(&e->pm1b_evt, e->pm1_len))
		e->pm1b_evt.addr = 0;
	if ((e->gpe0_len & 1) || !block_ok(&e->gpe0, e->gpe0_len))
		e->gpe0_len = 0;
	if (e->gpe0_len > 2 * ACPI_GPE_MAX / 8)
		e->gpe0_len = 2 * ACPI_GPE_MAX / 8;
	return 0;
}

uint32_t acpi_evt_read(const struct acpi_gas *r, uint32_t off, unsigned width)
{
	uint64_t a = r->addr + off;

	if (r->space == ACPI_GAS_IO)
		return width == 8    ? inb((uint16_t)a)
		       : width == 16 ? inw((uint16_t)a)
				     : inl((uint16_t)a);
	return width == 8 ? mmio_read8(a) : width == 16 ? mmio_read16(a) : mmio_read32(a);
}

void acpi_evt_write(const struct acpi_gas *r, uint32_t off, unsigned width, uint32_t v)
{
	uint64_t a = r->addr + off;

	if (r->space == ACPI_GAS_IO) {
		if (width == 8)
			outb((uint16_t)a, (uint8_t)v);
		else if (width == 16)
			outw((uint16_t)a, (uint16_t)v);
		else
			outl((uint16_t)a, v);
		return;
	}
	if (width == 8)
		mmio_write8(a, (uint8_t)v);
	else if (width == 16)
		mmio_write16(a, (uint16_t)v);
	else
		mmio_write32(a, v);
}

/* PM1 registers are 16 bits wide; some VMMs (QEMU) take no narrower access. */
uint16_t acpi_evt_pm1_status(const struct acpi_evt *e)
{
	uint16_t v = (uint16_t)acpi_evt_read(&e->pm1a_evt, 0, 16);

	if (e->pm1b_evt.addr)
		v |= (uint16_t)acpi_evt_read(&e->pm1b_evt, 0, 16);
	return v;
}

void acpi_evt_pm1_clear(const struct acpi_evt *e, uint16_t bits)
{
	acpi_evt_write(&e->pm1a_evt, 0, 16, bits);
	if (e->pm1b_evt.addr)
		acpi_evt_write(&e->pm1b_evt, 0, 16, bits);
}

uint16_t acpi_evt_pm1_enabled(const struct acpi_evt *e)
{
	return (uint16_t)acpi_evt_read(&e->pm1a_evt, e->pm1_len / 2, 16);
}

void acpi_evt_pm1_enable(const struct acpi_evt *e, uint16_t bits)
{
	acpi_evt_write(&e->pm1a_evt, e->pm1_len / 2, 16, bits);
	if (e->pm1b_evt.addr)
		acpi_evt_write(&e->pm1b_evt, e->pm1_len / 2, 16, bits);
}

unsigned acpi_evt_gpe_count(const struct acpi_evt *e)
{
	return e->gpe0_len / 2 * 8;
}

uint8_t acpi_evt_gpe_status(const struct acpi_evt *e, unsigned byte)
{
	return byte < e->gpe0_len / 2u ? (uint8_t)acpi_evt_read(&e->gpe0, byte, 8) : 0;
}

void acpi_evt_gpe_clear(const struct acpi_evt *e, unsigned byte, uint8_t bits)
{
	if (byte < e->gpe0_len / 2u)
		acpi_evt_write(&e->gpe0, byte, 8, bits);
}

uint8_t acpi_evt_gpe_enabled(const struct acpi_evt *e, unsigned byte)
{
	return byte < e->gpe0_len / 2u ? (uint8_t)acpi_evt_read(&e->gpe0, e->gpe0_len / 2 + byte, 8)
				       : 0;
}

void acpi_evt_gpe_enable(const struct acpi_evt *e, unsigned byte, uint8_t bits)
{
	if (byte < e->gpe0_len / 2u)
		acpi_evt_write(&e->gpe0, e->gpe0_len / 2 + byte, 8, bits);
}

int acpi_evt_enable_acpi(struct guest *g, const struct acpi_evt *e, bool *was_on)
{
	const struct acpi_gas *cnt = &g->acpi.pm1a_cnt;

	if (!cnt->addr || (cnt->space == ACPI_GAS_IO && cnt->addr > 0xfffe) ||
	    (cnt->space == ACPI_GAS_MEMORY && !phys_range_ok(cnt->addr, 2)))
		return -ENOENT;
	*was_on = acpi_evt_read(cnt, 0, 16) & ACPI_PM1_SCI_EN;
	if (*was_on)
		return 0;
	if (!e->smi_cmd || e->smi_cmd > 0xffff || !e->acpi_enable)
		return -ENODEV;
	/* What an OS does at boot (ACPI 6.5, 4.8.2.1.1): ask the firmware to hand over. */
	outb((uint16_t)e->smi_cmd, e->acpi_enable);
	for (unsigned i = 0; i < SCI_EN_POLLS; i++) {
		if (acpi_evt_read(cnt, 0, 16) & ACPI_PM1_SCI_EN)
			return 0;
		cpu_pause();
	}
	return -ETIMEDOUT;
}
