#include "idt.h"
#include "console.h"
#include "guest.h"
#include "io.h"
#include "power.h"

#define GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate */

extern const char isr_stubs[];

static const char *const exception_names[32] = {
	"#DE divide error",
	"#DB debug",
	"NMI",
	"#BP breakpoint",
	"#OF overflow",
	"#BR bound range",
	"#UD invalid opcode",
	"#NM device not available",
	"#DF double fault",
	"coprocessor segment overrun",
	"#TS invalid TSS",
	"#NP segment not present",
	"#SS stack fault",
	"#GP general protection",
	"#PF page fault",
	"reserved 15",
	"#MF x87 error",
	"#AC alignment check",
	"#MC machine check",
	"#XM SIMD error",
	"#VE virtualization",
	"#CP control protection",
	"reserved 22",
	"reserved 23",
	"reserved 24",
	"reserved 25",
	"reserved 26",
	"reserved 27",
	"#HV hypervisor injection",
	"#VC VMM communication",
	"#SX security",
	"reserved 31",
};

const char *exception_name(unsigned vector)
{
	return vector < 32 ? exception_names[vector] : "interrupt";
}

void idt_load(const struct idt *idt)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} PACKED idtr = {sizeof(idt->gates) - 1, (uint64_t)(uintptr_t)idt->gates};

	__asm__ volatile("lidt %0" : : "m"(idtr));
}

int idt_init(struct guest *g)
{
	struct idt *idt = &g->idt;

	for (unsigned v = 0; v < IDT_VECTORS; v++) {
		uint64_t addr = (uint64_t)(uintptr_t)(isr_stubs + 16 * v);

		idt->gates[v] = (struct idt_gate){
			.off_lo = (uint16_t)addr,
			.sel = GUEST_CS64,
			.type = GATE_INTERRUPT,
			.off_mid = (uint16_t)(addr >> 16),
			.off_hi = (uint32_t)(addr >> 32),
		};
	}
	idt_load(idt);
	return 0;
}

int idt_set_handler(struct guest *g, unsigned vector, irq_handler_fn fn, void *arg)
{
	if (vector >= IDT_VECTORS)
		return -EINVAL;
	/* The pair is read by the handler: clear fn first so it never sees a stale arg. */
	WRITE_ONCE(g->idt.handlers[vector].fn, NULL);
	barrier();
	g->idt.handlers[vector].arg = arg;
	barrier();
	WRITE_ONCE(g->idt.handlers[vector].fn, fn);
	return 0;
}

static NORETURN void fatal_exception(struct guest *g, struct cpu *c, struct irq_frame *f)
{
	/* A fault while reporting a fault: give up at once rather than loop. */
	if (c->in_exception++)
		power_triple_fault();
	__atomic_add_fetch(&g->nfail, 1, __ATOMIC_RELAXED);
	con_break_own_lock(g);
	con_printf(g, "FAIL exception: vector=%lu (%s) rip=0x%lx err=0x%lx cr2=0x%lx cpu=%u\n",
		   f->vector, exception_name((unsigned)f->vector), f->rip, f->error, read_cr2(),
		   c->index);
	power_off(g);
}

static bool first_report(struct idt *idt, unsigned vector)
{
	uint64_t bit = 1ULL << (vector % 64);

	return !(__atomic_fetch_or(&idt->reported[vector / 64], bit, __ATOMIC_RELAXED) & bit);
}

void idt_dispatch(struct irq_frame *f)
{
	struct cpu *c = this_cpu();
	struct guest *g = c->g;
	unsigned v = (unsigned)f->vector & 0xff;
	irq_handler_fn fn = READ_ONCE(g->idt.handlers[v].fn);
	int rc = -ENOENT;

	if (fn)
		rc = fn(g, f, g->idt.handlers[v].arg);
	if (v < IDT_FIRST_IRQ) {
		if (rc)
			fatal_exception(g, c, f);
		return;
	}
	if (v == VEC_LAPIC_SPURIOUS)
		return;
	/* Reported once; not at all if we interrupted this CPU's own printing (deadlock). */
	if (rc && !con_held_here(g) && first_report(&g->idt, v))
		report_fail(g, "unexpected_interrupt", "vector=%u cpu=%u", v, c->index);
	lapic_eoi(&g->lapic);
}
