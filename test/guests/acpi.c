/*
 * acpi: reports the ACPI tables the VMM built (RSDP, root table, each table with its
 * checksum, FADT power registers, the \_S5_ sleep type, MADT CPUs, IOAPICs and overrides,
 * MCFG) so a host test can compare them with what it configured, and checks the parts the
 * other guests rely on.
 */
#include "lib/console.h"
#include "lib/fmt.h"
#include "lib/guest.h"
#include "lib/ioapic.h"

static void gas_str(char *buf, size_t size, const struct acpi_gas *r)
{
	if (!r->addr) {
		fmt_snprintf(buf, size, "none");
		return;
	}
	fmt_snprintf(buf, size, "%s:0x%lx/%u",
		     r->space == ACPI_GAS_IO	   ? "io"
		     : r->space == ACPI_GAS_MEMORY ? "mem"
						   : "other",
		     r->addr, r->bit_width);
}

static void report_tables(struct guest *g)
{
	const struct acpi_info *a = &g->acpi;
	char list[ACPI_MAX_TABLES * 5 + 1];
	size_t pos = 0;
	bool sums_ok = true;

	report_info(g, "acpi.rsdp=0x%lx", a->rsdp);
	report_info(g, "acpi.revision=%u", a->revision);
	report_info(g, "acpi.oem=%s", a->oem_id);
	report_info(g, "acpi.root=%s@0x%lx", a->use_xsdt ? "XSDT" : "RSDT", a->root);
	for (uint32_t i = 0; i < a->ntables; i++) {
		const struct acpi_table *t = &a->tables[i];

		pos += (size_t)fmt_snprintf(list + pos, sizeof(list) - pos, "%s%s", i ? "," : "",
					    t->sig);
		report_info(g, "acpi.table.%s=0x%lx,%u", t->sig, t->addr, t->len);
		if (!t->csum_ok) {
			report_fail(g, "acpi_checksum", "table %s at 0x%lx", t->sig, t->addr);
			sums_ok = false;
		}
	}
	report_info(g, "acpi.tables=%s", a->ntables ? list : "none");
	if (sums_ok)
		report_pass(g, "acpi_checksums");
	for (uint32_t i = 0; i < a->nerrors; i++)
		report_fail(g, "acpi", "%s", a->errors[i]);
}

/* The register power_off() (lib/power.c) will use. */
static const char *poweroff_via(const struct acpi_info *a)
{
	if (((a->fadt_flags & FADT_F_HW_REDUCED_ACPI) || !a->pm1a_cnt.addr) && a->sleep_ctl.addr)
		return "sleep_ctl";
	return a->pm1a_cnt.addr ? "pm1_cnt" : "none";
}

static void report_fadt(struct guest *g)
{
	const struct acpi_info *a = &g->acpi;
	bool hw_reduced = a->fadt_flags & FADT_F_HW_REDUCED_ACPI;
	char buf[48];

	if (report_check(g, a->fadt != 0, "fadt_present", "no FACP table"))
		return;
	report_info(g, "fadt.revision=%u", *(const volatile uint8_t *)phys_to_ptr(a->fadt + 8));
	report_info(g, "fadt.flags=0x%x", a->fadt_flags);
	report_info(g, "fadt.hw_reduced=%s", hw_reduced ? "yes" : "no");
	report_info(g, "fadt.sci=%u", a->sci_int);
	report_info(g, "fadt.century=0x%x", a->century);
	report_info(g, "fadt.boot_arch=0x%x", a->iapc_boot_arch);
	gas_str(buf, sizeof(buf), &a->pm1a_cnt);
	report_info(g, "fadt.pm1a_cnt=%s", buf);
	gas_str(buf, sizeof(buf), &a->sleep_ctl);
	report_info(g, "fadt.sleep_ctl=%s", buf);
	if (a->fadt_flags & FADT_F_RESET_REG_SUP) {
		gas_str(buf, sizeof(buf), &a->reset_reg);
		report_info(g, "fadt.reset=%s,0x%x", buf, a->reset_value);
	} else {
		report_info(g, "fadt.reset=none");
	}
	if (!report_check(g, a->dsdt != 0, "dsdt_present", "the FADT names no valid DSDT"))
		report_info(g, "acpi.dsdt=0x%lx,%u", a->dsdt, a->dsdt_len);
	if (!report_check(g, a->s5_found, "s5_present", "no \\_S5_ package in the DSDT"))
		report_info(g, "acpi.s5=%u,%u", a->s5_typa, a->s5_typb);
	report_info(g, "poweroff_via=%s", poweroff_via(a));
}

static void report_madt(struct guest *g)
{
	const struct acpi_info *a = &g->acpi;
	char list[GUEST_MAX_CPUS * 11 + 1];
	size_t pos = 0;

	if (report_check(g, a->madt != 0, "madt_present", "no APIC table"))
		return;
	report_info(g, "madt.lapic=0x%lx", a->lapic_addr);
	report_info(g, "madt.flags=0x%x", a->madt_flags);
	report_info(g, "madt.cpus=%u", a->ncpus + a->ncpus_dropped);
	for (uint32_t i = 0; i < a->ncpus; i++)
		pos += (size_t)fmt_snprintf(list + pos, sizeof(list) - pos, "%s%u", i ? "," : "",
					    a->cpus[i].apic_id);
	report_info(g, "madt.apic_ids=%s", a->ncpus ? list : "none");
	for (uint32_t i = 0; i < a->nioapics; i++) {
		const struct acpi_ioapic *io = &a->ioapics[i];
		uint32_t pins = phys_range_ok(io->addr, 0x20) ? ioapic_pins(io->addr) : 0;

		report_info(g, "madt.ioapic.%u=%u,0x%x,%u,%u", i, io->id, io->addr, io->gsi_base,
			    pins);
		/* A missing IOAPIC reads as all ones: 256 pins. */
		report_check(g, pins > 0 && pins < 256, "ioapic_responds",
			     "IOAPIC %u at 0x%x does not answer", io->id, io->addr);
	}
	report_check(g, a->nioapics > 0, "ioapic_present", "the MADT lists no IOAPIC");
	for (uint32_t i = 0; i < a->nisos; i++)
		report_info(g, "madt.iso.%u=%u,%u,%u,0x%x", i, a->isos[i].bus, a->isos[i].source,
			    a->isos[i].gsi, a->isos[i].flags);
}

int guest_main(struct guest *g)
{
	const struct acpi_info *a = &g->acpi;

	if (report_check(g, g->have_acpi, "acpi_rsdp", "no RSDP in the boot info or BIOS area"))
		return 0;
	report_info(g, "acpi.rsdp_source=%s", a->rsdp_from_scan ? "scan" : "bootinfo");
	report_tables(g);
	report_fadt(g);
	report_madt(g);
	for (uint32_t i = 0; i < a->nmcfg; i++)
		report_info(g, "mcfg.%u=0x%lx,%u,%u-%u", i, a->mcfg[i].base, a->mcfg[i].segment,
			    a->mcfg[i].bus_start, a->mcfg[i].bus_end);
	if (!a->nmcfg)
		report_info(g, "mcfg=none");
	return 0;
}
