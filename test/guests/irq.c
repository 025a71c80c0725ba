/*
 * irq: interrupt delivery through the guest's IDT, LAPIC and IOAPIC. Checks that the LAPIC
 * timer interrupts, that COM1's IRQ 4 (through any MADT override) reaches its vector when
 * the UART's transmitter-empty interrupt is enabled, and reads the CMOS clock.
 */
#include "lib/console.h"
#include "lib/guest.h"
#include "lib/io.h"
#include "lib/ioapic.h"
#include "lib/rtc.h"

#define TIMER_TEST_US  10000
#define SERIAL_WAIT_US 1000000
#define COM1_IRQ       4

struct irq_state {
	volatile uint32_t timer_hits;
	volatile uint32_t serial_hits;
	volatile uint8_t iir;
};

static int on_timer(struct guest *g, struct irq_frame *f, void *arg)
{
	struct irq_state *s = arg;

	(void)g;
	(void)f;
	s->timer_hits++;
	return 0;
}

static int on_serial(struct guest *g, struct irq_frame *f, void *arg)
{
	struct irq_state *s = arg;

	(void)f;
	/* Reading IIR acknowledges THRE; turning it off keeps later prints from re-raising it. */
	s->iir = serial_read_iir(&g->com1);
	serial_set_ier(&g->com1, 0);
	s->serial_hits++;
	return 0;
}

/* Polls (interrupts on) until the one-shot timer has run out, plus a margin for delivery. */
static void test_timer(struct guest *g, struct irq_state *s)
{
	uint32_t margin = 0;

	cpu_cli();
	lapic_timer_oneshot(&g->lapic, VEC_LAPIC_TIMER, TIMER_TEST_US);
	cpu_sti();
	for (uint64_t i = 0; i < TIMER_TEST_US * 1000ULL && !s->timer_hits; i++) {
		if (lapic_read(&g->lapic, LAPIC_TIMER_CUR) == 0 && ++margin > 1000)
			break;
		cpu_pause();
	}
	cpu_cli();
	lapic_timer_stop(&g->lapic);
	report_check(g, s->timer_hits == 1, "lapic_timer", "%u timer interrupts, expected 1",
		     s->timer_hits);
}

static void test_serial(struct guest *g, struct irq_state *s, bool timer_ok)
{
	struct ioapic_route r;
	int rc;

	rc = ioapic_route_isa(g, COM1_IRQ, VEC_SERIAL, g->bsp->apic_id, &r);
	if (rc) {
		report_fail(g, "serial_irq", "no IOAPIC serves IRQ %u (%d)", COM1_IRQ, rc);
		return;
	}
	report_info(g, "com1_gsi=%u", r.gsi);
	report_info(g, "com1_trigger=%s,%s", r.level ? "level" : "edge",
		    r.active_low ? "low" : "high");
	(void)serial_read_iir(&g->com1);

	cpu_cli();
	s->timer_hits = 0;
	serial_set_ier(&g->com1, UART_IER_THRI);
	if (timer_ok) {
		/* The timer bounds the wait: hlt wakes on whichever interrupt comes first. */
		lapic_timer_oneshot(&g->lapic, VEC_LAPIC_TIMER, SERIAL_WAIT_US);
		while (!s->serial_hits && !s->timer_hits)
			cpu_sti_hlt();
	} else {
		cpu_sti();
		for (uint32_t i = 0; i < 1000000 && !s->serial_hits; i++)
			cpu_pause();
	}
	cpu_cli();
	lapic_timer_stop(&g->lapic);
	serial_set_ier(&g->com1, 0);
	ioapic_mask(&r);
	report_check(g, s->serial_hits >= 1, "serial_irq",
		     "no interrupt from the UART on GSI %u within %u ms", r.gsi,
		     SERIAL_WAIT_US / 1000);
	if (s->serial_hits)
		report_check(g, (s->iir & UART_IIR_ID) == UART_IIR_THRI, "serial_iir",
			     "IIR was 0x%02x in the handler, expected THRI", s->iir);
}

static void test_rtc(struct guest *g)
{
	struct rtc_time t;
	int rc = rtc_read(g, &t);

	if (rc == -ENODEV) {
		report_fail(g, "rtc", "no CMOS clock answers at port 0x%x", CMOS_INDEX);
		return;
	}
	if (rc) {
		report_fail(g, "rtc", "the clock never settled (%d)", rc);
		return;
	}
	report_info(g, "rtc=%04u-%02u-%02uT%02u:%02u:%02u", t.year, t.month, t.day, t.hour, t.min,
		    t.sec);
	report_info(g, "rtc_mode=%s,%s", t.reg_b & 0x04 ? "binary" : "bcd",
		    t.reg_b & 0x02 ? "24h" : "12h");
	report_check(g, rtc_plausible(&t), "rtc", "implausible date");
}

int guest_main(struct guest *g)
{
	struct irq_state s = {0};

	report_info(g, "lapic=0x%lx id=%u version=0x%x", g->lapic.base, lapic_id(&g->lapic),
		    lapic_read(&g->lapic, LAPIC_VERSION));
	idt_set_handler(g, VEC_LAPIC_TIMER, on_timer, &s);
	idt_set_handler(g, VEC_SERIAL, on_serial, &s);
	test_timer(g, &s);
	test_serial(g, &s, s.timer_hits == 1);
	test_rtc(g);
	return 0;
}
