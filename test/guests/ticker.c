/*
 * ticker: prints a line every period from the LAPIC timer (periodic mode), for the host's
 * stop/suspend/resume tests: while the VM is suspended no lines come, and the TSC and RTC in
 * the first line after resume show how much time the guest saw pass.
 *
 *   TICK <n> tsc=<rdtsc, decimal> rtc=<hh:mm:ss | none>
 *
 * Keys: ticker.count=N (stop after N ticks, then DONE; default 0 = forever),
 * ticker.period_ms=P (default 50, at most 4000).
 * INFO: ticker.tsc_khz (calibrated against the LAPIC timer), ticker.period_ms.
 */
#include "lib/clock.h"
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/io.h"
#include "lib/rtc.h"

#define DEFAULT_PERIOD_MS 50
#define MAX_PERIOD_MS	  4000
#define LVT_PERIODIC	  (1u << 17)
#define TIMER_DIV_1	  0xb

struct ticker {
	volatile uint64_t ticks;
};

static int on_tick(struct guest *g, struct irq_frame *f, void *arg)
{
	struct ticker *t = arg;

	(void)g;
	(void)f;
	t->ticks++;
	return 0;
}

int guest_main(struct guest *g)
{
	struct ticker t = {0};
	struct clock c;
	uint64_t count = cmdline_u64(g->boot.cmdline, "ticker.count", 0);
	uint64_t period = cmdline_u64(g->boot.cmdline, "ticker.period_ms", DEFAULT_PERIOD_MS);
	bool have_rtc = true;
	uint64_t printed = 0;

	if (!period || period > MAX_PERIOD_MS)
		period = DEFAULT_PERIOD_MS;
	if (clock_init(g, &c)) {
		report_fail(g, "ticker", "the TSC does not advance");
		return 0;
	}
	report_info(g, "ticker.tsc_khz=%lu", c.tsc_per_ms);
	report_info(g, "ticker.period_ms=%lu", period);
	cpu_cli();
	idt_set_handler(g, VEC_LAPIC_TIMER, on_tick, &t);
	lapic_write(&g->lapic, LAPIC_TIMER_DIV, TIMER_DIV_1);
	lapic_write(&g->lapic, LAPIC_LVT_TIMER, VEC_LAPIC_TIMER | LVT_PERIODIC);
	lapic_write(&g->lapic, LAPIC_TIMER_INIT, (uint32_t)(period * 1000000));
	while (!count || printed < count) {
		struct rtc_time r;
		int rc = -ENODEV;

		while (t.ticks == printed) {
			cpu_sti_hlt();
			cpu_cli();
		}
		/* Ticks that came while we printed are folded into the next line, not queued. */
		printed = t.ticks;
		if (have_rtc) {
			rc = rtc_read(g, &r);
			have_rtc = rc != -ENODEV;
		}
		if (rc == 0)
			con_printf(g, "TICK %lu tsc=%lu rtc=%02u:%02u:%02u\n", printed, rdtsc(),
				   r.hour, r.min, r.sec);
		else
			con_printf(g, "TICK %lu tsc=%lu rtc=none\n", printed, rdtsc());
	}
	lapic_timer_stop(&g->lapic);
	return 0;
}
