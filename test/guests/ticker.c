/*
 * ticker: prints a line every period from the LAPIC timer (periodic mode), for the host's
 * stop/suspend/resume tests: while the VM is suspended no lines come, and the TSC and RTC in
 * the first line after resume show how much time the guest saw pass.
 *
 *   TICK <n> tsc=<rdtsc, decimal> rtc=<hh:mm:ss | none>
 *
 * Keys: ticker.count=N (stop after N ticks, then DONE; default 0 = forever),
 * ticker.period_ms=P (default 50, at most 4000), ticker.kvmclock (register a kvmclock page
 * and end the first line after the VMM said it paused us, the page's PVCLOCK_GUEST_STOPPED
 * flag, with " paused": the flag a Linux guest's watchdog clears and forgives the pause for).
 * INFO: ticker.tsc_khz (calibrated against the LAPIC timer), ticker.period_ms,
 * ticker.kvmclock=on|unsupported.
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

#define KVM_CPUID_SIGNATURE	 0x40000000
#define KVM_CPUID_FEATURES	 0x40000001
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)
#define MSR_KVM_SYSTEM_TIME_NEW	 0x4b564d01
#define PVCLOCK_GUEST_STOPPED	 (1u << 1)

/* struct pvclock_vcpu_time_info (Linux's ABI): KVM writes it, the guest reads it. */
struct pvclock {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} PACKED;

struct ticker {
	volatile uint64_t ticks;
};

static struct pvclock kvmclock __attribute__((aligned(64)));

static bool kvmclock_start(void)
{
	uint32_t a, b, c, d;

	cpuid(KVM_CPUID_SIGNATURE, 0, &a, &b, &c, &d);
	/* "KVMKVMKVM\0\0\0" */
	if (b != 0x4b4d564b || c != 0x564b4d56 || d != 0x4d || a < KVM_CPUID_FEATURES)
		return false;
	cpuid(KVM_CPUID_FEATURES, 0, &a, &b, &c, &d);
	if (!(a & KVM_FEATURE_CLOCKSOURCE2))
		return false;
	/* Bit 0 enables; the guest is identity mapped, so the address is physical. */
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&kvmclock | 1);
	return true;
}

/* Reads and clears the paused flag, as Linux's kvm_check_and_clear_guest_paused does. */
static bool kvmclock_was_paused(void)
{
	volatile uint8_t *flags = &kvmclock.flags;

	if (!(*flags & PVCLOCK_GUEST_STOPPED))
		return false;
	*flags &= (uint8_t)~PVCLOCK_GUEST_STOPPED;
	return true;
}

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
	bool have_rtc = true, clock = false;
	uint64_t printed = 0;

	if (!period || period > MAX_PERIOD_MS)
		period = DEFAULT_PERIOD_MS;
	if (clock_init(g, &c)) {
		report_fail(g, "ticker", "the TSC does not advance");
		return 0;
	}
	report_info(g, "ticker.tsc_khz=%lu", c.tsc_per_ms);
	report_info(g, "ticker.period_ms=%lu", period);
	if (cmdline_has(g->boot.cmdline, "ticker.kvmclock")) {
		clock = kvmclock_start();
		report_info(g, "ticker.kvmclock=%s", clock ? "on" : "unsupported");
	}
	cpu_cli();
	idt_set_handler(g, VEC_LAPIC_TIMER, on_tick, &t);
	lapic_write(&g->lapic, LAPIC_TIMER_DIV, TIMER_DIV_1);
	lapic_write(&g->lapic, LAPIC_LVT_TIMER, VEC_LAPIC_TIMER | LVT_PERIODIC);
	lapic_write(&g->lapic, LAPIC_TIMER_INIT, (uint32_t)(period * 1000000));
	while (!count || printed < count) {
		struct rtc_time r;
		const char *paused;
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
		paused = clock && kvmclock_was_paused() ? " paused" : "";
		if (rc == 0)
			con_printf(g, "TICK %lu tsc=%lu rtc=%02u:%02u:%02u%s\n", printed, rdtsc(),
				   r.hour, r.min, r.sec, paused);
		else
			con_printf(g, "TICK %lu tsc=%lu rtc=none%s\n", printed, rdtsc(), paused);
	}
	lapic_timer_stop(&g->lapic);
	return 0;
}
