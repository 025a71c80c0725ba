/*
 * smp: starts every CPU the MADT lists with INIT/SIPI/SIPI; each AP enters long mode on the
 * guest's own tables and prints "PASS ap<N> apic=<id>" (N is its MADT position); the BSP
 * waits for each in turn (bounded) and prints "PASS smp cpus=<N>" or FAIL with the missing.
 * Each AP also reports its IA32_MTRR_DEF_TYPE (INFO ap<N>.mtrr_def_type) when it has MTRRs.
 *
 * Command line keys: smp.timeout_ms=<ms> (per AP, default 2000).
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/cpuinfo.h"
#include "lib/fmt.h"
#include "lib/guest.h"
#include "lib/smp.h"

#define TIMEOUT_MS_DEFAULT 2000

static void ap_main(struct guest *g, struct cpu *c)
{
	uint32_t id = lapic_id(&g->lapic);

	if (id != c->apic_id)
		report_fail(g, "ap_apic_id", "ap%u runs with APIC id %u, the MADT says %u",
			    c->index, id, c->apic_id);
	/* Firmware sets the MTRRs of every CPU alike; so must the VMM. */
	if (cpuinfo_has_mtrr())
		report_info(g, "ap%u.mtrr_def_type=0x%lx", c->index, rdmsr(MSR_MTRR_DEF_TYPE));
	report_pass(g, "ap%u apic=%u", c->index, id);
}

int guest_main(struct guest *g)
{
	uint32_t timeout =
		(uint32_t)cmdline_u64(g->boot.cmdline, "smp.timeout_ms", TIMEOUT_MS_DEFAULT);
	char missing[GUEST_MAX_CPUS * 6 + 1] = "";
	size_t pos = 0;
	uint32_t online = 0;
	int rc;

	report_info(g, "cpus_madt=%u", g->ncpus);
	report_info(g, "bsp=%u apic=%u", g->bsp->index, g->bsp->apic_id);
	if (g->acpi.ncpus_dropped)
		report_info(g, "cpus_ignored=%u", g->acpi.ncpus_dropped);
	g->ap_main = ap_main;
	rc = smp_start_aps(g, timeout, &online);
	for (uint32_t i = 0; i < g->ncpus; i++) {
		if (!g->cpus[i].online)
			pos += (size_t)fmt_snprintf(missing + pos, sizeof(missing) - pos, " ap%u",
						    i);
	}
	if (rc == 0 && online == g->ncpus)
		report_pass(g, "smp cpus=%u", online);
	else
		report_fail(g, "smp", "%u of %u CPUs online, missing:%s (%d)", online, g->ncpus,
			    missing, rc);
	return 0;
}
