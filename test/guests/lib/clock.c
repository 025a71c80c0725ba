#include "clock.h"
#include "io.h"

static int on_wake(struct guest *g, struct irq_frame *f, void *arg)
{
	struct clock *c = arg;

	(void)g;
	(void)f;
	c->wakes++;
	return 0;
}

int clock_init(struct guest *g, struct clock *c)
{
	uint64_t t0, t1;

	*c = (struct clock){.g = g};
	t0 = rdtsc();
	lapic_delay_us(&g->lapic, CLOCK_CALIBRATE_US);
	t1 = rdtsc();
	if (t1 <= t0)
		return -EIO;
	c->tsc0 = t0;
	c->tsc_per_ms = (t1 - t0) / (CLOCK_CALIBRATE_US / 1000);
	if (!c->tsc_per_ms)
		return -EIO;
	return idt_set_handler(g, VEC_CLOCK_WAKE, on_wake, c);
}

uint64_t clock_now_us(const struct clock *c)
{
	return (uint64_t)((unsigned __int128)(rdtsc() - c->tsc0) * 1000 / c->tsc_per_ms);
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
