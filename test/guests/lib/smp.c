#include "smp.h"
#include "console.h"
#include "io.h"
#include "str.h"

extern const char tramp_start[], tramp_end[], tramp_params[];
extern const char boot_gdt[];
extern const char ap_stacks[];

#define INIT_DELAY_US 10000 /* Intel SDM / MP spec: 10 ms after INIT */
#define SIPI_DELAY_US 200   /* and 200 us between the two SIPIs */
#define POLL_US	      100
#define GDT_LIMIT     (4 * 8 - 1)

static int install_trampoline(struct guest *g)
{
	size_t size = (size_t)(tramp_end - tramp_start);
	uint8_t *dst = phys_to_ptr(GUEST_TRAMP_BASE);
	uint8_t *params = dst + (tramp_params - tramp_start);
	uint64_t gdt = (uint64_t)(uintptr_t)boot_gdt;
	uint32_t cr3 = (uint32_t)read_cr3();

	if (size > GUEST_TRAMP_MAX)
		return -E2BIG;
	memcpy(dst, tramp_start, size);
	*(uint16_t *)(params + TRAMP_P_GDTR) = GDT_LIMIT;
	*(uint32_t *)(params + TRAMP_P_GDTR + 2) = (uint32_t)gdt;
	*(uint32_t *)(params + TRAMP_P_CR3) = cr3;
	*(uint64_t *)(params + TRAMP_P_LAPIC) = g->lapic.base;
	*(uint64_t *)(params + TRAMP_P_TABLE) = (uint64_t)(uintptr_t)g->ap_slots;
	return 0;
}

static bool wait_online(struct guest *g, struct cpu *c, uint32_t timeout_ms)
{
	uint64_t polls = (uint64_t)timeout_ms * 1000 / POLL_US;

	for (uint64_t i = 0; i <= polls; i++) {
		if (__atomic_load_n(&c->online, __ATOMIC_ACQUIRE))
			return true;
		lapic_delay_us(&g->lapic, POLL_US);
	}
	return false;
}

static int start_one(struct guest *g, struct cpu *c, uint32_t timeout_ms)
{
	uint32_t sipi = LAPIC_ICR_STARTUP | (GUEST_TRAMP_BASE >> 12);
	int rc;

	rc = lapic_send_ipi(&g->lapic, c->apic_id, LAPIC_ICR_INIT | LAPIC_ICR_ASSERT);
	if (rc)
		return rc;
	lapic_delay_us(&g->lapic, INIT_DELAY_US);
	for (int i = 0; i < 2 && !READ_ONCE(c->online); i++) {
		rc = lapic_send_ipi(&g->lapic, c->apic_id, sipi);
		if (rc)
			return rc;
		lapic_delay_us(&g->lapic, SIPI_DELAY_US);
	}
	return wait_online(g, c, timeout_ms) ? 0 : -ETIMEDOUT;
}

int smp_start_aps(struct guest *g, uint32_t timeout_ms, uint32_t *online)
{
	uint32_t up = 1;
	int rc, ret = 0;

	rc = install_trampoline(g);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < g->ncpus; i++) {
		struct cpu *c = &g->cpus[i];

		if (c == g->bsp)
			continue;
		if (c->apic_id > 255) {
			report_fail(g, "smp", "cpu%u has x2APIC id %u, out of xAPIC reach", i,
				    c->apic_id);
			ret = -ERANGE;
			continue;
		}
		c->stack_top =
			(uint64_t)(uintptr_t)ap_stacks + (uint64_t)(i + 1) * GUEST_AP_STACK_SIZE;
		g->ap_slots[c->apic_id] = (struct ap_slot){c, c->stack_top};
		barrier();
		rc = start_one(g, c, timeout_ms);
		if (rc == 0)
			up++;
		else
			ret = rc;
	}
	*online = up;
	return ret;
}
