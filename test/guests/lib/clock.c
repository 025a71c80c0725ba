#include "clock.h"
#include "io.h"

#define TIMER_DIV_1 0xb /* divide by 1 */

static int on_wake(struct guest *g, struct irq_frame *f, void *arg)
{
	struct clock *c = arg;

	(void)g;
	(void)f;
	c->wakes++;
	return 0;
}

/*
 * Pairs TSC reads with reads of the running LAPIC count, so the set-up of the timer (a
 * VM exit of unknown length) is outside the measured interval.
 */
int clock_init(struct guest *g, struct clock *c)
{
	const struct lapic *l = &g->lapic;
	uint32_t c0, c1, want = CLOCK_CALIBRATE_US * (uint32_t)(LAPIC_TIMER_HZ / 1000000);
	uint64_t t0, t1, polls = 0;

	*c = (struct clock){.g = g};
	lapic_write(l, LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | VEC_CLOCK_WAKE);
	lapic_write(l, LAPIC_TIMER_DIV, TIMER_DIV_1);
	lapic_write(l, LAPIC_TIMER_INIT, UINT32_MAX);
	c0 = lapic_read(l, LAPIC_TIMER_CUR);
	t0 = rdtsc();
	/* Bounded: a timer that does not count must not hang us (each read takes >= 1 ns). */
	do {
		c1 = lapic_read(l, LAPIC_TIMER_CUR);
		t1 = rdtsc();
	} while (c0 - c1 < want && c1 && ++polls < 2ull * want);
	lapic_write(l, LAPIC_TIMER_INIT, 0);
	if (t1 <= t0 || c0 - c1 < want)
		return -EIO;
	c->tsc0 = t0;
	c->tsc_per_ms = (t1 - t0) * (LAPIC_TIMER_HZ / 1000) / (c0 - c1);
	if (!c->tsc_per_ms)
		return -EIO;
	return idt_set_handler(g, VEC_CLOCK_WAKE, on_wake, c);
}

uint64_t clock_now_us(const struct clock *c)
{
	uint64_t d = rdtsc() - c->tsc0;

	/* Split so the product cannot overflow (no 128-bit division without libgcc). */
	return d / c->tsc_per_ms * 1000 + d % c->tsc_per_ms * 1000 / c->tsc_per_ms;
}

uint64_t clock_now_ms(const struct clock *c)
{
	return (rdtsc() - c->tsc0) / c->tsc_per_ms;
}

void clock_halt(struct clock *c, uint32_t max_us)
{
	if (max_us > CLOCK_MAX_HALT_US)
		max_us = CLOCK_MAX_HALT_US;
	lapic_timer_oneshot(&c->g->lapic, VEC_CLOCK_WAKE, max_us ? max_us : 1);
	cpu_sti_hlt();
	cpu_cli();
	lapic_timer_stop(&c->g->lapic);
}
