#include "power.h"
#include "console.h"
#include "io.h"

#define SLP_EN_PM1	(1u << 13)
#define SLP_TYP_SHIFT	10
#define SLEEP_CTL_EN	(1u << 5)
#define SLEEP_CTL_SHIFT 2
#define GRACE_US	2000000

/*
 * Gives the VMM time to act on a request before we call it ignored: generous, since a busy
 * host may take a while to stop the vCPU, and the wait only happens when something is wrong.
 */
static void grace(struct guest *g)
{
	lapic_delay_us(&g->lapic, GRACE_US);
}

static void panic_line(struct guest *g, const char *what, const char *why)
{
	__atomic_add_fetch(&g->nfail, 1, __ATOMIC_RELAXED);
	con_break_own_lock(g);
	con_printf(g, "FAIL %s: %s\n", what, why);
}

void power_triple_fault(void)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} PACKED null_idt = {0, 0};

	cpu_cli();
	__asm__ volatile("lidt %0" : : "m"(null_idt));
	/* Any fault now escalates to a triple fault: touch the unmapped page above 4 GiB. */
	for (;;)
		(void)*(volatile uint8_t *)phys_to_ptr(GUEST_MAPPED_LIMIT + 0x1000);
}

static int acpi_s5(struct guest *g)
{
	const struct acpi_info *a = &g->acpi;
	bool hw_reduced = a->fadt_flags & FADT_F_HW_REDUCED_ACPI;
	uint8_t typa = a->s5_typa, typb = a->s5_typb;

	if (!g->have_acpi || !a->fadt)
		return -ENOENT;
	if (!a->s5_found)
		return -ENODATA;
	if ((hw_reduced || !a->pm1a_cnt.addr) && a->sleep_ctl.addr) {
		uint8_t v = (uint8_t)(((typa & 7) << SLEEP_CTL_SHIFT) | SLEEP_CTL_EN);
		struct acpi_gas r = a->sleep_ctl;

		/* The sleep control register is one byte whatever width the FADT gives. */
		r.bit_width = 8;
		r.access_size = 1;
		return acpi_gas_write(&r, v);
	}
	if (!a->pm1a_cnt.addr)
		return -ENOENT;
	if (a->pm1b_cnt.addr)
		acpi_gas_write(&a->pm1b_cnt, ((uint32_t)(typb & 7) << SLP_TYP_SHIFT) | SLP_EN_PM1);
	return acpi_gas_write(&a->pm1a_cnt, ((uint32_t)(typa & 7) << SLP_TYP_SHIFT) | SLP_EN_PM1);
}

int power_off_request(struct guest *g)
{
	return acpi_s5(g);
}

void power_off(struct guest *g)
{
	int rc;

	cpu_cli();
	rc = acpi_s5(g);
	if (rc == 0) {
		grace(g);
		panic_line(g, "poweroff", "ACPI S5 request had no effect");
	} else if (rc == -ENODATA) {
		panic_line(g, "poweroff", "the DSDT has no \\_S5_ package");
	} else {
		panic_line(g, "poweroff", "no usable ACPI sleep register");
	}
	power_triple_fault();
}

int power_reset_request(struct guest *g)
{
	const struct acpi_info *a = &g->acpi;
	struct acpi_gas r = a->reset_reg;

	if (!g->have_acpi || !(a->fadt_flags & FADT_F_RESET_REG_SUP) || !a->reset_reg.addr)
		return -ENOENT;
	/* RESET_VALUE is one byte; some tables leave the width at 0. */
	if (!r.bit_width && !r.access_size)
		r.bit_width = 8;
	return acpi_gas_write(&r, a->reset_value);
}

void power_reset(struct guest *g)
{
	cpu_cli();
	if (power_reset_request(g) == 0)
		grace(g);
	outb(I8042_COMMAND, I8042_CMD_RESET);
	grace(g);
	panic_line(g, "reset", "neither the FADT reset register nor the i8042 reset the VM");
	power_triple_fault();
}

int power_panic(struct guest *g)
{
	outb(PVPANIC_PORT, PVPANIC_PANICKED);
	grace(g);
	return 0;
}
