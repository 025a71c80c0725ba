/*
 * Elapsed time from the TSC, calibrated once against the LAPIC timer (whose 1 GHz rate KVM
 * fixes), and halting waits: the CPU sleeps in hlt until an interrupt or a one-shot LAPIC
 * wake-up, so waiting costs a few emulated instructions per wake rather than a busy loop.
 */
#ifndef GUEST_CLOCK_H
#define GUEST_CLOCK_H

#include "guest.h"

#define VEC_CLOCK_WAKE	   0x21
#define CLOCK_CALIBRATE_US 10000
#define CLOCK_MAX_HALT_US  1000000 /* one-shot timer reach at divide 1, with margin */

struct clock {
	struct guest *g;
	uint64_t tsc0; /* TSC at calibration: times count from there */
	uint64_t tsc_per_ms;
	volatile uint32_t wakes; /* one-shot wake-ups taken */
};

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/* Calibrates and installs the wake-up vector. -EIO when the TSC does not advance. */
int clock_init(struct guest *g, struct clock *c);
/* Time since clock_init. */
uint64_t clock_now_us(const struct clock *c);
uint64_t clock_now_ms(const struct clock *c);
/*
 * Enables interrupts and halts until one arrives or max_us passed; returns with interrupts
 * off. The caller checks its condition with interrupts off before calling, so a wake-up
 * cannot be lost between the check and the hlt (sti; hlt is atomic).
 */
void clock_halt(struct clock *c, uint32_t max_us);

#endif
