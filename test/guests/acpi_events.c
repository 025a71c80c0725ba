/*
 * acpi_events: services ACPI events the way an ACPI OS does, for the host's powerbtn,
 * sleepbtn and gpe commands. It turns ACPI mode on if the firmware left it off, routes the
 * SCI (FADT SCI_INT through any MADT override; level triggered unless the override says
 * otherwise) on the IOAPIC, enables the power and sleep button events and every GPE0 event,
 * prints "READY acpi", and halts. On an SCI it acknowledges (write-1-to-clear) what is both
 * set and enabled and reports it; the power button ends the guest with an S5 poweroff.
 *
 * Keys: acpi.timeout_ms=T (default 60000; 0 waits forever).
 * INFO: acpi.sci=IRQ,gsi=GSI,level|edge, acpi.pm1_evt=io:0xPORT/LEN (or mem:),
 * acpi.gpe0=io:0xPORT/LEN, acpi.mode=already|enabled, acpi.end=timeout.
 * PASS/FAIL: acpi_events_init, sleepbtn, gpeN (one per GPE, each time it fires),
 * powerbtn_sci (then DONE and the poweroff).
 */
#include "lib/acpi_evt.h"
#include "lib/clock.h"
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/gsi.h"

#define VEC_SCI		0x30
#define DEFAULT_TIMEOUT 60000
#define HALT_US		100000

struct events {
	struct acpi_evt e;
	struct clock clock;
	struct gsi_route sci;
	volatile uint16_t pm1;			/* PM1 events acknowledged, not yet reported */
	volatile uint8_t gpe[ACPI_GPE_MAX / 8]; /* likewise, per GPE0 status byte */
	volatile uint32_t scis, spurious;
};

static int on_sci(struct guest *g, struct irq_frame *f, void *arg)
{
	struct events *ev = arg;
	uint16_t pm1 = acpi_evt_pm1_status(&ev->e) & acpi_evt_pm1_enabled(&ev->e) &
		       (ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN);
	bool any = pm1 != 0;

	(void)g;
	(void)f;
	ev->scis++;
	/* Acknowledge before the EOI, or the level-triggered line fires again at once. */
	if (pm1) {
		acpi_evt_pm1_clear(&ev->e, pm1);
		ev->pm1 |= pm1;
	}
	for (unsigned i = 0; i < acpi_evt_gpe_count(&ev->e) / 8; i++) {
		uint8_t s = acpi_evt_gpe_status(&ev->e, i) & acpi_evt_gpe_enabled(&ev->e, i);

		if (s) {
			acpi_evt_gpe_clear(&ev->e, i, s);
			ev->gpe[i] |= s;
			any = true;
		}
	}
	if (!any)
		ev->spurious++;
	return 0;
}

static int setup(struct guest *g, struct events *ev)
{
	uint16_t flags;
	bool was_on = false;
	int rc;

	rc = acpi_evt_init(g, &ev->e);
	if (rc) {
		report_fail(g, "acpi_events_init", "no usable FADT event blocks (%d)", rc);
		return rc;
	}
	rc = acpi_evt_enable_acpi(g, &ev->e, &was_on);
	if (rc) {
		report_fail(g, "acpi_events_init", "SCI_EN is off and SMI_CMD cannot set it (%d)",
			    rc);
		return rc;
	}
	report_info(g, "acpi.mode=%s", was_on ? "already" : "enabled");
	rc = clock_init(g, &ev->clock);
	if (rc) {
		report_fail(g, "acpi_events_init", "no clock (%d)", rc);
		return rc;
	}
	/* The SCI is a shareable, level-triggered, active-low interrupt unless overridden. */
	acpi_isa_irq(&g->acpi, (uint8_t)ev->e.sci_int, &ev->sci.gsi, &flags);
	ev->sci.vector = VEC_SCI;
	ev->sci.level = (flags & MPS_TRIGGER_MASK) != 0x4;
	ev->sci.active_low = (flags & MPS_POLARITY_MASK) != 0x1;
	/* Clear stale events first, so only what happens after READY is reported. */
	acpi_evt_pm1_clear(&ev->e, ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN);
	for (unsigned i = 0; i < acpi_evt_gpe_count(&ev->e) / 8; i++) {
		acpi_evt_gpe_clear(&ev->e, i, 0xff);
		acpi_evt_gpe_enable(&ev->e, i, 0xff);
	}
	acpi_evt_pm1_enable(&ev->e, ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN);
	idt_set_handler(g, VEC_SCI, on_sci, ev);
	rc = gsi_route(g, &ev->sci);
	if (rc) {
		report_fail(g, "acpi_events_init", "no IOAPIC pin for SCI GSI %u", ev->sci.gsi);
		return rc;
	}
	report_info(g, "acpi.sci=%u,gsi=%u,%s", ev->e.sci_int, ev->sci.gsi,
		    ev->sci.level ? "level" : "edge");
	report_info(g, "acpi.pm1_evt=%s:0x%lx/%u", ev->e.pm1a_evt.space ? "io" : "mem",
		    ev->e.pm1a_evt.addr, ev->e.pm1_len);
	report_info(g, "acpi.gpe0=%s:0x%lx/%u", ev->e.gpe0.space ? "io" : "mem", ev->e.gpe0.addr,
		    ev->e.gpe0_len);
	report_pass(g, "acpi_events_init");
	return 0;
}

/* Reports what the handler collected; true when the power button was pressed. */
static bool report_events(struct guest *g, struct events *ev)
{
	uint16_t pm1 = ev->pm1;
	bool power = false;

	ev->pm1 = 0;
	if (pm1 & ACPI_PM1_SLPBTN)
		report_pass(g, "sleepbtn");
	for (unsigned i = 0; i < ACPI_GPE_MAX / 8; i++) {
		uint8_t s = ev->gpe[i];

		ev->gpe[i] = 0;
		for (unsigned b = 0; b < 8; b++)
			if (s & (1u << b))
				report_pass(g, "gpe%u", i * 8 + b);
	}
	if (pm1 & ACPI_PM1_PWRBTN) {
		report_pass(g, "powerbtn_sci");
		power = true;
	}
	return power;
}

int guest_main(struct guest *g)
{
	struct events ev = {0};
	uint64_t timeout = cmdline_u64(g->boot.cmdline, "acpi.timeout_ms", DEFAULT_TIMEOUT);
	uint64_t start;

	cpu_cli();
	if (setup(g, &ev))
		return 0;
	con_printf(g, "READY acpi\n");
	start = clock_now_ms(&ev.clock);
	for (;;) {
		if (report_events(g, &ev))
			break;
		if (timeout && clock_now_ms(&ev.clock) - start >= timeout) {
			report_info(g, "acpi.end=timeout");
			break;
		}
		clock_halt(&ev.clock, HALT_US);
	}
	gsi_mask(&ev.sci);
	if (ev.spurious)
		report_info(g, "acpi.spurious_sci=%u", ev.spurious);
	/* Back in guest_start: DONE, then S5 through PM1_CNT like an OS's orderly shutdown. */
	return 0;
}
