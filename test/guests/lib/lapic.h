/*
 * The local APIC in xAPIC (MMIO) mode: enable, EOI, IPIs and the timer. The timer is the
 * guests' only clock: KVM's APIC bus runs at 1 GHz (one count per nanosecond with divide 1),
 * which is what every VMM on KVM gives the guest, so delays need no PIT to calibrate.
 */
#ifndef GUEST_LAPIC_H
#define GUEST_LAPIC_H

#include "util.h"

#define LAPIC_DEFAULT_BASE 0xfee00000ULL
#define LAPIC_TIMER_HZ	   1000000000ULL

#define LAPIC_ID	 0x020
#define LAPIC_VERSION	 0x030
#define LAPIC_TPR	 0x080
#define LAPIC_EOI	 0x0b0
#define LAPIC_SVR	 0x0f0
#define LAPIC_ESR	 0x280
#define LAPIC_ICR_LO	 0x300
#define LAPIC_ICR_HI	 0x310
#define LAPIC_LVT_TIMER	 0x320
#define LAPIC_LVT_LINT0	 0x350
#define LAPIC_LVT_LINT1	 0x360
#define LAPIC_LVT_ERROR	 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR	 0x390
#define LAPIC_TIMER_DIV	 0x3e0

#define LAPIC_LVT_MASKED  (1u << 16)
#define LAPIC_ICR_PENDING (1u << 12)
#define LAPIC_ICR_ASSERT  (1u << 14)
#define LAPIC_ICR_INIT	  0x500u
#define LAPIC_ICR_STARTUP 0x600u
#define LAPIC_ICR_FIXED	  0x000u

struct lapic {
	uint64_t base;
};

/* Picks the base (MADT value if nonzero, else IA32_APIC_BASE) and makes sure it is enabled. */
int lapic_setup(struct lapic *l, uint64_t madt_base);
/* Per CPU: software enable, spurious vector, LINT0 (the PIC) masked, timer masked. */
int lapic_init_cpu(const struct lapic *l);
uint32_t lapic_read(const struct lapic *l, uint32_t reg);
void lapic_write(const struct lapic *l, uint32_t reg, uint32_t v);
uint32_t lapic_id(const struct lapic *l);
void lapic_eoi(const struct lapic *l);
/* Sends an IPI and waits (bounded) for the delivery status to clear: 0 or -ETIMEDOUT. */
int lapic_send_ipi(const struct lapic *l, uint32_t apic_id, uint32_t icr_lo);
void lapic_delay_us(const struct lapic *l, uint32_t us);
/* One-shot timer: vector fires after us microseconds (at most ~4 s). */
void lapic_timer_oneshot(const struct lapic *l, uint8_t vector, uint32_t us);
void lapic_timer_stop(const struct lapic *l);

#endif
