#include "lapic.h"
#include "idt.h"
#include "io.h"

#define APIC_BASE_ENABLE (1ULL << 11)
#define APIC_BASE_ADDR	 0x000ffffffffff000ULL
#define SVR_ENABLE	 (1u << 8)
#define LVT_NMI		 (4u << 8)
#define TIMER_DIV_1	 0xb
#define IPI_POLL_LIMIT	 100000

static uint32_t us_to_count(uint32_t us)
{
	uint64_t c = (uint64_t)us * (LAPIC_TIMER_HZ / 1000000);

	return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

int lapic_setup(struct lapic *l, uint64_t madt_base)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);

	if (!(msr & APIC_BASE_ENABLE))
		wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
	l->base = madt_base ? madt_base : (msr & APIC_BASE_ADDR);
	if (!l->base || !phys_range_ok(l->base, 0x1000))
		l->base = LAPIC_DEFAULT_BASE;
	return 0;
}

uint32_t lapic_read(const struct lapic *l, uint32_t reg)
{
	return mmio_read32(l->base + reg);
}

void lapic_write(const struct lapic *l, uint32_t reg, uint32_t v)
{
	mmio_write32(l->base + reg, v);
}

int lapic_init_cpu(const struct lapic *l)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);

	if (!(msr & APIC_BASE_ENABLE))
		wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
	lapic_write(l, LAPIC_SVR, SVR_ENABLE | VEC_LAPIC_SPURIOUS);
	lapic_write(l, LAPIC_TPR, 0);
	/*
	 * KVM resets the BSP's LINT0 to ExtINT: an uninitialised PIC would then deliver ISA
	 * interrupts with vector base 0, i.e. as exceptions. We route through the IOAPIC.
	 */
	lapic_write(l, LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
	lapic_write(l, LAPIC_LVT_LINT1, LVT_NMI);
	lapic_write(l, LAPIC_LVT_ERROR, LAPIC_LVT_MASKED);
	lapic_write(l, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_LAPIC_TIMER);
	lapic_write(l, LAPIC_TIMER_DIV, TIMER_DIV_1);
	lapic_write(l, LAPIC_EOI, 0);
	return 0;
}

uint32_t lapic_id(const struct lapic *l)
{
	return lapic_read(l, LAPIC_ID) >> 24;
}

void lapic_eoi(const struct lapic *l)
{
	lapic_write(l, LAPIC_EOI, 0);
}

int lapic_send_ipi(const struct lapic *l, uint32_t apic_id, uint32_t icr_lo)
{
	lapic_write(l, LAPIC_ICR_HI, apic_id << 24);
	lapic_write(l, LAPIC_ICR_LO, icr_lo);
	for (unsigned i = 0; i < IPI_POLL_LIMIT; i++) {
		if (!(lapic_read(l, LAPIC_ICR_LO) & LAPIC_ICR_PENDING))
			return 0;
		cpu_pause();
	}
	return -ETIMEDOUT;
}

void lapic_delay_us(const struct lapic *l, uint32_t us)
{
	uint32_t count = us_to_count(us);
	/* A timer that never counts down must not hang us: each read takes at least 1 ns. */
	uint64_t limit = (uint64_t)count + 1000;

	if (!count)
		return;
	lapic_write(l, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_LAPIC_TIMER);
	lapic_write(l, LAPIC_TIMER_DIV, TIMER_DIV_1);
	lapic_write(l, LAPIC_TIMER_INIT, count);
	for (uint64_t i = 0; i < limit; i++) {
		if (!lapic_read(l, LAPIC_TIMER_CUR))
			break;
		cpu_pause();
	}
	lapic_write(l, LAPIC_TIMER_INIT, 0);
}

void lapic_timer_oneshot(const struct lapic *l, uint8_t vector, uint32_t us)
{
	lapic_write(l, LAPIC_TIMER_INIT, 0);
	lapic_write(l, LAPIC_TIMER_DIV, TIMER_DIV_1);
	lapic_write(l, LAPIC_LVT_TIMER, vector);
	lapic_write(l, LAPIC_TIMER_INIT, us_to_count(us) ? us_to_count(us) : 1);
}

void lapic_timer_stop(const struct lapic *l)
{
	lapic_write(l, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_LAPIC_TIMER);
	lapic_write(l, LAPIC_TIMER_INIT, 0);
}
