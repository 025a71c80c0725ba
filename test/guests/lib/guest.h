/*
 * The one context object of a test guest. guest_start() (start.c) builds it on the boot
 * stack, then calls the guest's guest_main(); everything else reaches it through a pointer
 * argument, or, in interrupt handlers, through the per-CPU struct cpu at %gs:0.
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include "acpi.h"
#include "bootinfo.h"
#include "idt.h"
#include "lapic.h"
#include "memlayout.h"
#include "serial.h"
#include "spinlock.h"
#include "util.h"

struct guest;

struct cpu {
	struct cpu *self; /* must stay first: this_cpu() reads %gs:0 */
	struct guest *g;
	uint32_t index; /* position in the MADT (0 when there is no MADT) */
	uint32_t apic_id;
	volatile uint32_t online;
	volatile uint32_t in_exception;
	uint64_t stack_top;
};

/* Slot of the AP boot table the trampoline reads, indexed by APIC id. */
struct ap_slot {
	struct cpu *cpu;
	uint64_t stack_top;
};

typedef void (*ap_main_fn)(struct guest *g, struct cpu *c);

struct guest {
	struct serial com1;
	struct spinlock console_lock;
	struct boot_info boot;
	struct acpi_info acpi;
	bool have_acpi;
	struct lapic lapic;
	struct idt idt;
	struct cpu cpus[GUEST_MAX_CPUS];
	uint32_t ncpus;
	struct cpu *bsp;
	struct ap_slot ap_slots[256];
	ap_main_fn ap_main; /* what an AP runs once it is up (smp.c) */
	volatile uint32_t nfail;
	uint64_t image_start, image_end;
};

/* Implemented by each guest: returns when its checks are done (DONE and poweroff follow). */
int guest_main(struct guest *g);

/* C entry points called from entry.S. */
NORETURN void guest_start(uint32_t proto, uint64_t info);
NORETURN void guest_ap_start(struct cpu *c);

/* Prints DONE and powers off. */
NORETURN void guest_finish(struct guest *g);

static inline struct cpu *this_cpu(void)
{
	struct cpu *c;

	__asm__ volatile("mov %%gs:0, %0" : "=r"(c));
	return c;
}

/* Sets %gs so this_cpu() works on the calling CPU. */
void cpu_set_current(struct cpu *c);

#endif
