/*
 * demo: the interactive guest of the README. A small monitor on COM1: a prompt, line
 * editing with backspace, and the commands listed in cmds[] below.
 *
 * Command line keys:
 *   demo.oneshot     print "crosvm demo guest: hello" and power off at once (start-up
 *                    benchmark)
 *   demo.run=<cmd>   run one command (e.g. poweroff, reset, panic, triplefault, mem) and
 *                    power off if it returns; "_" in <cmd> stands for a space
 */
#include "lib/cmdline.h"
#include "lib/console.h"
#include "lib/guest.h"
#include "lib/io.h"
#include "lib/ioapic.h"
#include "lib/power.h"
#include "lib/rtc.h"
#include "lib/str.h"

#define LINE_MAX      120
#define IDLE_WAKE_US  50000 /* input is noticed within this even without a UART interrupt */
#define COM1_IRQ      4
#define KEY_BACKSPACE 0x08
#define KEY_DELETE    0x7f
#define KEY_CTRL_C    0x03

struct demo {
	struct guest *g;
	bool rx_irq; /* COM1 receive interrupts wake us from hlt */
};

struct cmd {
	const char *name;
	const char *help;
	void (*run)(struct demo *d, const char *args);
};

static void cmd_help(struct demo *d, const char *args);

static void cmd_mem(struct demo *d, const char *args)
{
	const struct boot_info *bi = &d->g->boot;

	(void)args;
	for (uint32_t i = 0; i < bi->e820_count; i++) {
		const struct e820_ent *e = &bi->e820[i];

		con_printf(d->g, "  %016lx-%016lx %-8s %lu KiB\n", e->addr, e->addr + e->size,
			   e820_type_name(e->type), e->size >> 10);
	}
	con_printf(d->g, "RAM: %lu MiB\n", bootinfo_mem_total(bi) >> 20);
}

static void cmd_cpus(struct demo *d, const char *args)
{
	struct guest *g = d->g;

	(void)args;
	con_printf(g, "%u CPU%s (MADT):", g->ncpus, g->ncpus == 1 ? "" : "s");
	for (uint32_t i = 0; i < g->ncpus; i++)
		con_printf(g, " apic%u%s", g->cpus[i].apic_id, &g->cpus[i] == g->bsp ? "*" : "");
	con_printf(g, "\n");
}

static void cmd_time(struct demo *d, const char *args)
{
	struct rtc_time t;

	(void)args;
	if (rtc_read(d->g, &t)) {
		con_printf(d->g, "the RTC does not answer\n");
		return;
	}
	con_printf(d->g, "%04u-%02u-%02u %02u:%02u:%02u\n", t.year, t.month, t.day, t.hour, t.min,
		   t.sec);
}

static void cmd_cmdline(struct demo *d, const char *args)
{
	(void)args;
	con_printf(d->g, "%s\n", d->g->boot.cmdline);
}

static void cmd_echo(struct demo *d, const char *args)
{
	con_printf(d->g, "%s\n", args);
}

static void cmd_reset(struct demo *d, const char *args)
{
	(void)args;
	con_printf(d->g, "resetting\n");
	power_reset(d->g);
}

static void cmd_poweroff(struct demo *d, const char *args)
{
	(void)args;
	con_printf(d->g, "powering off\n");
	guest_finish(d->g);
}

static void cmd_panic(struct demo *d, const char *args)
{
	(void)args;
	con_printf(d->g, "signalling a guest panic (pvpanic)\n");
	power_panic(d->g);
	report_fail(d->g, "panic", "pvpanic at port 0x%x had no effect", PVPANIC_PORT);
	power_off(d->g);
}

/*
 * Makes one request that ends the VM (poweroff: ACPI S5; reset: the FADT reset register;
 * panic: pvpanic) and then at once writes a FAIL line to COM1 over and over, straight to the
 * data port: a VMM that stops the vCPU on the request never lets one byte of it out.
 */
static void cmd_runon(struct demo *d, const char *args)
{
	static const char line[] = "FAIL ranon: the vCPU ran on after its request\n";
	int rc = 0;

	cpu_cli();
	if (!strcmp(args, "poweroff")) {
		rc = power_off_request(d->g);
	} else if (!strcmp(args, "reset")) {
		rc = power_reset_request(d->g);
	} else if (!strcmp(args, "panic")) {
		outb(PVPANIC_PORT, PVPANIC_PANICKED);
	} else {
		con_printf(d->g, "runon takes poweroff, reset or panic\n");
		return;
	}
	if (rc == 0)
		for (unsigned i = 0; i < 100; i++)
			for (const char *p = line; *p; p++)
				outb(d->g->com1.port + UART_THR, (uint8_t)*p);
	report_fail(d->g, "runon", "the %s request could not be made or had no effect (%d)", args,
		    rc);
	power_triple_fault();
}

static void cmd_triplefault(struct demo *d, const char *args)
{
	(void)args;
	con_printf(d->g, "triple fault\n");
	power_triple_fault();
}

static const struct cmd cmds[] = {
	{"help", "this list", cmd_help},
	{"mem", "the memory map", cmd_mem},
	{"cpus", "the CPUs the MADT lists", cmd_cpus},
	{"time", "the CMOS clock", cmd_time},
	{"cmdline", "the kernel command line", cmd_cmdline},
	{"echo", "echo <text>: print text", cmd_echo},
	{"reset", "reset the VM", cmd_reset},
	{"poweroff", "ACPI poweroff", cmd_poweroff},
	{"panic", "report a guest panic through pvpanic", cmd_panic},
	{"triplefault", "load an empty IDT and fault", cmd_triplefault},
	{"runon", "runon poweroff|reset|panic: the request, then print at once", cmd_runon},
};

static void cmd_help(struct demo *d, const char *args)
{
	(void)args;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		con_printf(d->g, "  %-12s %s\n", cmds[i].name, cmds[i].help);
}

/* Runs one command line: 0, or -ENOENT for an unknown command (after saying so). */
static int run_line(struct demo *d, const char *line)
{
	size_t n;

	while (*line == ' ')
		line++;
	if (!*line)
		return 0;
	for (n = 0; line[n] && line[n] != ' '; n++)
		;
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (strlen(cmds[i].name) == n && !strncmp(cmds[i].name, line, n)) {
			const char *args = line + n;

			while (*args == ' ')
				args++;
			cmds[i].run(d, args);
			return 0;
		}
	}
	con_printf(d->g, "unknown command '%.*s' (try help)\n", (int)n, line);
	return -ENOENT;
}

static int on_serial(struct guest *g, struct irq_frame *f, void *arg)
{
	(void)f;
	(void)arg;
	/* Only wakes the main loop, which drains the receiver by polling. */
	(void)serial_read_iir(&g->com1);
	return 0;
}

static int on_timer(struct guest *g, struct irq_frame *f, void *arg)
{
	(void)g;
	(void)f;
	(void)arg;
	return 0;
}

static void setup_rx_irq(struct demo *d)
{
	struct guest *g = d->g;

	idt_set_handler(g, VEC_SERIAL, on_serial, d);
	idt_set_handler(g, VEC_LAPIC_TIMER, on_timer, d);
	if (ioapic_route_isa(g, COM1_IRQ, VEC_SERIAL, g->bsp->apic_id, NULL) == 0) {
		serial_set_ier(&g->com1, UART_IER_RDI);
		d->rx_irq = true;
	}
}

/* Blocks until a byte arrives: hlt between checks, woken by the UART or the idle timer. */
static char read_char(struct demo *d)
{
	struct guest *g = d->g;

	for (;;) {
		int c;

		cpu_cli();
		c = serial_getc(&g->com1);
		if (c >= 0)
			return (char)c;
		lapic_timer_oneshot(&g->lapic, VEC_LAPIC_TIMER, IDLE_WAKE_US);
		cpu_sti_hlt();
	}
}

static void read_line(struct demo *d, char *buf, size_t size)
{
	struct guest *g = d->g;
	size_t len = 0;

	for (;;) {
		char c = read_char(d);

		if (c == '\r' || c == '\n') {
			con_write(g, "\n", 1);
			break;
		}
		if (c == KEY_BACKSPACE || c == KEY_DELETE) {
			if (len) {
				len--;
				con_write(g, "\b \b", 3);
			}
		} else if (c == KEY_CTRL_C) {
			con_write(g, "^C\n", 3);
			len = 0;
			break;
		} else if (c >= 0x20 && c < 0x7f && len + 1 < size) {
			buf[len++] = c;
			con_write(g, &c, 1);
		}
	}
	buf[len] = '\0';
}

int guest_main(struct guest *g)
{
	struct demo d = {.g = g};
	char line[LINE_MAX + 1];

	if (cmdline_has(g->boot.cmdline, "demo.oneshot")) {
		con_printf(g, "crosvm demo guest: hello\n");
		return 0;
	}
	if (cmdline_get(g->boot.cmdline, "demo.run", line, sizeof(line)) == 0) {
		for (char *p = line; *p; p++) {
			if (*p == '_')
				*p = ' ';
		}
		if (run_line(&d, line))
			report_fail(g, "demo_run", "unknown command");
		return 0;
	}

	setup_rx_irq(&d);
	con_printf(g, "crosvm demo guest: %u CPU%s, %lu MiB RAM, booted by %s. Type help.\n",
		   g->ncpus, g->ncpus == 1 ? "" : "s", bootinfo_mem_total(&g->boot) >> 20,
		   g->boot.proto == GUEST_BOOT_PVH ? "PVH" : "the Linux 64-bit protocol");
	for (;;) {
		con_printf(g, "demo> ");
		read_line(&d, line, sizeof(line));
		run_line(&d, line);
	}
}
