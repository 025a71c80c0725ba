/*
 * From entry.S to guest_main(): builds the guest context on the boot stack, sets up the
 * console, exception handling, boot info, ACPI, the LAPIC and the CPU table, then runs the
 * guest and ends with DONE and a poweroff.
 */
#include "console.h"
#include "guest.h"
#include "io.h"
#include "power.h"
#include "str.h"

extern const char __image_start[], __image_end[];

void cpu_set_current(struct cpu *c)
{
	wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)c);
}

static void init_cpu(struct guest *g, struct cpu *c, uint32_t index, uint32_t apic_id)
{
	c->self = c;
	c->g = g;
	c->index = index;
	c->apic_id = apic_id;
}

/*
 * CPUs come from the MADT in table order; the BSP is whichever of them has our APIC id. A
 * BSP missing from the MADT is added at the end so this_cpu() still works.
 */
static void setup_cpus(struct guest *g)
{
	uint32_t my_id = lapic_id(&g->lapic);
	struct cpu *bsp = NULL;
	uint32_t n = 0;

	for (uint32_t i = 0; i < g->acpi.ncpus; i++) {
		init_cpu(g, &g->cpus[n], n, g->acpi.cpus[i].apic_id);
		if (g->acpi.cpus[i].apic_id == my_id && !bsp)
			bsp = &g->cpus[n];
		n++;
	}
	if (!bsp) {
		if (g->acpi.ncpus)
			report_fail(g, "madt_bsp", "the boot CPU (APIC id %u) is not in the MADT",
				    my_id);
		if (n == GUEST_MAX_CPUS)
			n--;
		bsp = &g->cpus[n];
		init_cpu(g, bsp, n, my_id);
		n++;
	}
	bsp->online = 1;
	g->ncpus = n;
	g->bsp = bsp;
	cpu_set_current(bsp);
}

void guest_start(uint32_t proto, uint64_t info)
{
	struct guest g;
	int rc;

	memset(&g, 0, sizeof(g));
	/* Until the MADT is read, this CPU is cpus[0]; exceptions need this_cpu(). */
	init_cpu(&g, &g.cpus[0], 0, 0);
	cpu_set_current(&g.cpus[0]);
	g.lapic.base = LAPIC_DEFAULT_BASE;
	g.image_start = (uint64_t)(uintptr_t)__image_start;
	g.image_end = (uint64_t)(uintptr_t)__image_end;
	spin_init(&g.console_lock);
	serial_init(&g.com1, SERIAL_COM1);
	/* Firmware may have left a partial line (SeaBIOS does): start ours on a fresh one. */
	serial_putc(&g.com1, '\n');
	idt_init(&g);

	rc = bootinfo_parse(&g.boot, proto, info);
	if (rc)
		report_fail(&g, "bootinfo", "the %s boot structure at 0x%lx is invalid (%d)",
			    proto == GUEST_BOOT_PVH ? "PVH" : "zero page", info, rc);
	g.have_acpi = acpi_init(&g.acpi, g.boot.rsdp) == 0;
	lapic_setup(&g.lapic, g.have_acpi ? g.acpi.lapic_addr : 0);
	lapic_init_cpu(&g.lapic);
	setup_cpus(&g);

	guest_main(&g);
	guest_finish(&g);
}

void guest_finish(struct guest *g)
{
	con_printf(g, "DONE\n");
	power_off(g);
}

void guest_ap_start(struct cpu *c)
{
	struct guest *g = c->g;

	cpu_set_current(c);
	idt_load(&g->idt);
	lapic_init_cpu(&g->lapic);
	if (g->ap_main)
		g->ap_main(g, c);
	__atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
	for (;;) {
		cpu_cli();
		cpu_hlt();
	}
}
