/*
 * The interrupt descriptor table shared by all CPUs, with a stub per vector (isr.S) and a
 * C dispatcher. Exceptions without a registered handler are fatal: the guest prints
 * "FAIL exception: ..." and powers off. Interrupts (vector 32 and up) go to registered
 * handlers and are acknowledged at the LAPIC after the handler; the spurious vector is not.
 */
#ifndef GUEST_IDT_H
#define GUEST_IDT_H

#include "util.h"

#define IDT_VECTORS	   256
#define IDT_FIRST_IRQ	   32
#define VEC_LAPIC_TIMER	   0x20
#define VEC_SERIAL	   0x24
#define VEC_IPI		   0x40
#define VEC_LAPIC_SPURIOUS 0xff

/* What isr.S pushes: general registers (last pushed first), then vector and error code. */
struct irq_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} PACKED;

struct guest;
/* Returns 0 when it handled the event (an exception handler may change f->rip to resume). */
typedef int (*irq_handler_fn)(struct guest *g, struct irq_frame *f, void *arg);

struct idt {
	struct idt_gate gates[IDT_VECTORS] __attribute__((aligned(16)));
	struct {
		irq_handler_fn fn;
		void *arg;
	} handlers[IDT_VECTORS];
	volatile uint64_t reported[IDT_VECTORS / 64]; /* unexpected vectors already reported */
};

/* Fills the gates and loads the IDT on the calling CPU. */
int idt_init(struct guest *g);
/* Loads an already filled IDT on the calling CPU (APs). */
void idt_load(const struct idt *idt);
int idt_set_handler(struct guest *g, unsigned vector, irq_handler_fn fn, void *arg);
const char *exception_name(unsigned vector);
/* Called by isr.S. */
void idt_dispatch(struct irq_frame *f);

#endif
